#!/bin/sh
# test/test_service.sh: gv-backend as a service, on the simulated Xen:
# --check-config (every error with FILE:LINE), pidfile (written, locked against
# a second daemon, removed), --status through the control socket, SIGHUP reload
# (a bad file rejected and the old configuration kept; a good one applied to a
# device not yet connected), SIGTERM (the hand-over: exit 0, no device state
# written), SIGINT (devices Closed in xenstore, exit 0).
# Prints PASS/FAIL lines for test/run-tests.sh. No sleeps and no polling:
# readiness through --ready-fd, xenstore values through a xenstore watch, log
# lines through tail -f, each with a time limit.
set -u
B=${GV_BUILD:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/test/lib.sh"
gv_test_init service
# wait_xs SECONDS PATH VALUE: until dom0's xenstore PATH reads VALUE, woken by
# a xenstore watch on it (which also fires once when set); at most SECONDS
wait_xs() {
	rm -f "$work/watch"; mkfifo "$work/watch"
	XENSTORED_PATH="$GV_SIM_DIR/dom0/xenstored" timeout "$1" xenstore-watch "$2" >"$work/watch" &
	wpid=$! found=1
	while read -r _; do
		v=$(XENSTORED_PATH="$GV_SIM_DIR/dom0/xenstored" xenstore-read "$2" 2>/dev/null) &&
			[ "$v" = "$3" ] && { found=0; break; }
	done <"$work/watch"
	kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null
	rm -f "$work/watch"
	return $found
}
start() { # start NAME LOG ARGS...: background with --ready-fd; sets pid
	name=$1 log=$2; shift 2
	mkfifo "$work/ready"
	"$B/$name" "$@" --ready-fd 9 9>"$work/ready" 2>>"$log" &
	pid=$!
	timeout 10 head -c 1 "$work/ready" >/dev/null || { echo "FAIL $name did not start"; cat "$log"; exit 1; }
	rm -f "$work/ready"
}

truncate -s 4M "$work/a.img"; truncate -s 8M "$work/b.img"
printf '# test\ndisk guest1:0 %s\nfrobnicate\ndisk guest1:0 %s\ndisk guest2:0 %s/missing.img\n' \
	"$work/a.img" "$work/b.img" "$work" > "$work/bad.conf"
out=$("$B/gv-backend" --check-config --config "$work/bad.conf" 2>&1); rc=$?
check check_config_syntax_error_file_line [ "$rc" -eq 1 ]
check check_config_names_line3 sh -c 'echo "$1" | grep -q "bad.conf:3: unknown directive .frobnicate."' sh "$out"
sed -i '/frobnicate/d' "$work/bad.conf"
out=$("$B/gv-backend" --check-config --config "$work/bad.conf" 2>&1); rc=$?
check check_config_every_error sh -c '[ "$2" -eq 1 ] &&
	echo "$1" | grep -q "bad.conf:3: disk guest1:0 is already configured at .*bad.conf:2" &&
	echo "$1" | grep -q "bad.conf:4: .*missing.img: No such file" && echo "$1" | grep -q "2 errors"' sh "$out" "$rc"
printf 'disk guest1:0 %s\n' "$work/a.img" > "$work/be.conf"
check check_config_ok "$B/gv-backend" --check-config --config "$work/be.conf"

start gv-simxen "$work/sim.log"; simpid=$pid
start gv-backend "$work/be.log" --config "$work/be.conf" --pidfile "$work/be.pid"; bepid=$pid
check pidfile_has_pid [ "$(cat "$work/be.pid")" = "$bepid" ]
out=$("$B/gv-backend" --config "$work/be.conf" --pidfile "$work/be.pid" --control none 2>&1); rc=$?
check second_daemon_refused sh -c '[ "$2" -eq 1 ] && echo "$1" | grep -q "another gv-backend (pid $3) is running"' sh "$out" "$rc" "$bepid"
check status_answers sh -c '"$1/gv-backend" --status | grep -q "^serving /local/domain/0/backend/virtio: 0 devices"' sh "$B"

"$B/gv-xl" create "$top/examples/guest.cfg" >/dev/null
status_has() { "$B/gv-backend" --status | grep -Eq "$1"; }
be=/local/domain/0/backend/virtio/1
published() { wait_xs 10 "$be/0/state" 2 && wait_xs 10 "$be/1/state" 2; }
check devices_published published
check status_lists_devices status_has "guest1 +1 +0 +blk InitWait .*a.img \(rw\)"
check status_lists_rng status_has "guest1 +1 +1 +rng InitWait"

printf 'disk guest1:0 %s\nbogus line\n' "$work/b.img" > "$work/be.conf"
kill -HUP "$bepid"
check reload_bad_rejected wait_log 10 "$work/be.log" "reload rejected, keeping the previous configuration: .*be.conf:2: unknown directive"
check reload_bad_kept_old status_has "guest1 +1 +0 +blk InitWait .*a.img \(rw\)"
printf 'disk guest1:0 %s ro\n' "$work/b.img" > "$work/be.conf"
kill -HUP "$bepid"
check reload_good_logged wait_log 10 "$work/be.log" "reload: configuration applied"
check reload_good_applied status_has "guest1 +1 +0 +blk InitWait .*b.img \(ro\).*"
check reload_logged grep -q "reload: changed disk guest1:0 = .*b.img,ro" "$work/be.log"
check reload_capacity_republished sh -c 'XENSTORED_PATH="$1/dom0/xenstored" xenstore-read /local/domain/0/backend/virtio/1/0/config/capacity | grep -qx 16384' sh "$GV_SIM_DIR"

be_state() { XENSTORED_PATH="$GV_SIM_DIR/dom0/xenstored" xenstore-read /local/domain/0/backend/virtio/1/0/state; }
# SIGTERM, the hand-over: no device state written (InitWait stays for the
# next instance); the pidfile and control socket go
kill -TERM "$bepid"; wait "$bepid"; rc=$?; bepid=
check sigterm_exit_0 [ "$rc" -eq 0 ]
check sigterm_devices_left [ "$(be_state)" = 2 ]
check sigterm_logged grep -q "0 connected devices handed over; exiting" "$work/be.log"
check sigterm_pidfile_removed [ ! -e "$work/be.pid" ]
check sigterm_control_socket_removed [ ! -e "$GV_SIM_DIR/gv-backend.sock" ]
# SIGINT: every device closed for good
start gv-backend "$work/be.log" --config "$work/be.conf" --pidfile "$work/be.pid"; bepid=$pid
kill -INT "$bepid"; wait "$bepid"; rc=$?; bepid=
check sigint_exit_0 [ "$rc" -eq 0 ]
check sigint_devices_closed [ "$(be_state)" = 6 ]
check pidfile_removed [ ! -e "$work/be.pid" ]
check control_socket_removed [ ! -e "$GV_SIM_DIR/gv-backend.sock" ]
"$B/gv-backend" --status >/dev/null 2>&1; rc=$?
check status_without_daemon_exit_3 [ "$rc" -eq 3 ]
