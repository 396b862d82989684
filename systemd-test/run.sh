#!/bin/sh
# systemd-test/run.sh: grant-virtio-backend.service under a real systemd, on
# the simulated Xen (make systemd-test; needs root).
#
# A Debian 12 root (debootstrap --variant=minbase with systemd, systemd-sysv,
# dbus and the Xen runtime libraries; made once, cached in systemd-test/cache/)
# is copied, the project installed into the copy (make install DESTDIR=...),
# and booted with systemd-nspawn --boot; the host drives it with nsenter (no
# machined here). Inside: gv-simxen and a guest from the example xl config,
# then the unit: Type=notify readiness, reload (good and bad configuration),
# Restart=on-failure after SIGKILL, restart under a guest doing I/O (the
# SIGTERM hand-over: no error for the guest), stop (the same hand-over, exit
# 0), SIGINT (devices Closed, exit 0).
#
# Prints PASS/FAIL lines and "systemd-test: N passed, M failed"; exit 0 only
# if nothing failed. Every wait is on an event (systemctl's own, a ready fd,
# a xenstore watch, journalctl -f) and bounded; the whole run is bounded by
# SYSTEMD_TEST_LIMIT seconds (default 600). Measured on a 2-core machine:
# the root 70-165 s (once), the run itself about 85 s (30 s of it the boot).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
cache="$here/cache"
base="$cache/bookworm-root"
limit=${SYSTEMD_TEST_LIMIT:-600}
t_start=$(date +%s)
B=${BUILD:-build}
pass=0 fail=0 nspawn= leader= work=

say() { echo "systemd-test: $*"; }
left() { echo $((limit - ($(date +%s) - t_start))); }
check() { # check NAME COMMAND...
	name=$1; shift
	if "$@"; then echo "PASS $name"; pass=$((pass + 1)); else echo "FAIL $name"; fail=$((fail + 1)); fi
}
finish() {
	if [ -n "$leader" ] && [ "$fail" -gt 0 ]; then
		say "the unit's journal:"
		inside journalctl -q --no-pager -u grant-virtio-backend -n 40 | sed 's/^/  | /'
	fi
	if [ -n "$nspawn" ] && kill -0 "$nspawn" 2>/dev/null; then
		[ -n "$leader" ] && timeout 10 nsenter -t "$leader" -a systemctl poweroff >/dev/null 2>&1
		timeout 30 sh -c 'while kill -0 "$1" 2>/dev/null; do wait "$1" 2>/dev/null || :; done' sh "$nspawn" ||
			kill -KILL "$nspawn" 2>/dev/null
		wait "$nspawn" 2>/dev/null
	fi
	[ -n "$work" ] && rm -rf "$work"
	say "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit $?
}
trap 'fail=$((fail + 1)); finish' INT TERM
abort() { echo "FAIL $1"; fail=$((fail + 1)); finish; }

[ "$(id -u)" -eq 0 ] || abort "setup: needs root (debootstrap, systemd-nspawn, nsenter)"
sh "$top/tools/install-deps.sh" --systemd-test >/dev/null || abort "setup: tools/install-deps.sh --systemd-test"

# 1. the Debian 12 root, once; the stamp holds the package list it was made
# with: a root made from an older list gets what is missing with apt-get
# inside it (the daemon's runtime libraries grew: liburing2, libnbd0)
PKGS="systemd,systemd-sysv,dbus,xenstore-utils,libxenmisc4.17,libxenstore4,liburing2,libnbd0"
if [ -e "$base.stamp" ] && [ "$(cat "$base.stamp")" != "$PKGS" ] && [ -x "$base/usr/bin/apt-get" ]; then
	t=$(date +%s)
	timeout -k 10 "$(left)" sh -c 'chroot "$1" apt-get update -qq && chroot "$1" env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $2' sh "$base" "$(echo "$PKGS" | tr , ' ')" \
	  >"$cache/root-upgrade.log" 2>&1 ||
		{ tail -5 "$cache/root-upgrade.log"; abort "setup: apt-get in the root (log: $cache/root-upgrade.log)"; }
	echo "$PKGS" >"$base.stamp"
	say "root brought up to the package list in $(($(date +%s) - t)) s"
fi
if [ ! -e "$base.stamp" ] || [ "$(cat "$base.stamp")" != "$PKGS" ]; then
	t=$(date +%s)
	rm -rf "$base"; mkdir -p "$cache"
	timeout -k 10 "$(left)" debootstrap --variant=minbase --include="$PKGS" \
	  bookworm "$base" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 ||
		{ tail -5 "$cache/debootstrap.log"; abort "setup: debootstrap (log: $cache/debootstrap.log)"; }
	echo "$PKGS" >"$base.stamp"
	say "root made in $(($(date +%s) - t)) s"
fi

# 2. a copy with the project installed; the simulation's settings
work=$(mktemp -d /tmp/gv-systemd-XXXXXX)
root="$work/root"
cp -a "$base" "$root" || abort "setup: copy of the root"
make -C "$top" -s -j2 BUILD="$B" >"$work/make.log" 2>&1 &&
	make -C "$top" -s BUILD="$B" install DESTDIR="$root" PREFIX=/usr SYSCONFDIR=/etc \
	  UNITDIR=/lib/systemd/system >>"$work/make.log" 2>&1 ||
	{ tail -5 "$work/make.log"; abort "setup: make install"; }
cat >"$root/etc/default/grant-virtio-backend" <<'EOF'
GV_PLATFORM=sim
GV_SIM_DIR=/run/grant-virtio-sim
GV_BACKEND_OPTS=""
EOF
mkdir -p "$root/var/lib/grant-virtio"
truncate -s 8M "$root/var/lib/grant-virtio/guest1.img"
truncate -s 4M "$root/var/lib/grant-virtio/other.img"

# 3. boot
t=$(date +%s)
systemd-nspawn -D "$root" --boot --register=no --keep-unit --console=pipe -q \
  >"$work/console.log" 2>&1 </dev/null &
nspawn=$!
# the container's PID 1 is nspawn's child (a new PID namespace); it exists
# once systemd printed its first console line (tail -f: inotify), at most 30 s
timeout 30 tail -n +1 -f "$work/console.log" | head -c 1 >/dev/null
leader=$(ps -o pid= --ppid "$nspawn" 2>/dev/null | head -n 1 | tr -d ' ')
[ -n "$leader" ] || { cat "$work/console.log"; abort "boot: no container"; }
# every command inside is bounded too (systemctl waits for jobs; 60 s is more
# than any of them needs)
inside() {
	timeout -k 5 60 nsenter -t "$leader" -a env GV_PLATFORM=sim GV_SIM_DIR=/run/grant-virtio-sim "$@"
}
# is-system-running --wait blocks until the boot finished, whatever the outcome
st=$(timeout 60 nsenter -t "$leader" -a systemctl is-system-running --wait 2>/dev/null)
booted() { [ "$st" = running ] || [ "$st" = degraded ]; }
check boot_finished booted
say "booted in $(($(date +%s) - t)) s ($st)"
booted || abort "boot: systemd did not finish booting (state: $st)"

# helpers run inside
prop() { inside systemctl show -P "$1" grant-virtio-backend; }
# wait_xs PATH VALUE: until dom0's xenstore PATH reads VALUE (a watch), 10 s
wait_xs() {
	inside env XENSTORED_PATH=/run/grant-virtio-sim/dom0/xenstored sh -c '
		f=/run/gv-watch.$$; mkfifo $f
		timeout 10 xenstore-watch "$1" >$f & w=$!; r=1
		while read -r _; do
			[ "$(xenstore-read "$1" 2>/dev/null)" = "$2" ] && { r=0; break; }
		done <$f
		kill $w 2>/dev/null; rm -f $f; exit $r' sh "$1" "$2"
}
# wait_log N PATTERN: until the unit's journal has N lines matching, 15 s
wait_log() {
	inside sh -c '
		f=/run/gv-journal.$$; mkfifo $f
		timeout 15 journalctl -q -f -n all -o cat -u grant-virtio-backend >$f & j=$!
		awk -v n="$1" -v p="$2" "index(\$0, p) && ++c == n { found = 1; exit } END { exit !found }" <$f; r=$?
		kill $j 2>/dev/null; rm -f $f; exit $r' sh "$1" "$2"
}

# 4. gv-simxen (ready fd) and a guest
inside sh -c 'f=/run/gv-simxen.ready; mkfifo $f
	setsid gv-simxen --dir /run/grant-virtio-sim --ready-fd 3 3>$f >/run/gv-simxen.log 2>&1 &
	timeout 10 head -c 1 $f >/dev/null; r=$?; rm -f $f; exit $r' ||
	abort "gv-simxen did not start"
dom=$(inside gv-xl create /usr/share/doc/grant-virtio/examples/guest.cfg) || abort "gv-xl create"
be=/local/domain/0/backend/virtio/$dom

status_has() { inside gv-backend --status | grep -Eq "$1"; }
is() { [ "$(prop "$1")" = "$2" ]; }
published() { wait_xs "$be/0/state" "$1" && wait_xs "$be/1/state" "$1"; }

# 5. Type=notify: start returns once the daemon said READY=1, serving
inside systemctl start grant-virtio-backend
check start_active is SubState running
check start_status_serving is StatusText serving
check start_control_answers status_has "^serving /local/domain/0/backend/virtio"
check start_devices_published published 2
pid1=$(prop MainPID)
check start_pidfile [ "$(inside cat /run/grant-virtio/backend.pid)" = "$pid1" ]

# 6. reload: a bad file is rejected (old one kept), a good one applied
printf 'disk guest1:0 /var/lib/grant-virtio/guest1.img\nbogus\n' >"$root/etc/grant-virtio/backend.conf"
inside systemctl reload grant-virtio-backend
check reload_bad_rejected wait_log 1 "reload rejected, keeping the previous configuration"
check reload_bad_status is StatusText "reload rejected: see the log"
check reload_bad_still_active is ActiveState active
printf 'disk guest1:0 /var/lib/grant-virtio/other.img ro\n' >"$root/etc/grant-virtio/backend.conf"
inside systemctl reload grant-virtio-backend
check reload_good_applied wait_log 1 "reload: configuration applied"
check reload_good_status is StatusText serving
check reload_good_active is ActiveState active
check reload_same_pid is MainPID "$pid1"
check reload_new_disk_served status_has "guest1 +$dom +0 +blk .*other.img \(ro\)"

# 7. Restart=on-failure after SIGKILL: a new daemon, serving again
inside systemctl kill --signal=KILL grant-virtio-backend
check restart_after_kill wait_log 2 "serving /local/domain/0/backend/virtio"
# the new instance is active once it said READY=1; systemctl start waits for that
inside systemctl start grant-virtio-backend
pid2=$(prop MainPID)
check restart_counted is NRestarts 1
check restart_new_pid [ "$pid2" != "$pid1" -a "$pid2" -gt 0 ]
check restart_active is SubState running
check restart_serves status_has "guest1 +$dom +1 +rng"

# 8. restart under a guest doing I/O: SIGTERM is a hand-over (the device
# stays Connected, I/O in flight finishes first), the new instance takes the
# device over with nothing to serve again, the guest's random verified I/O
# goes on with no error
printf 'disk guest1:0 /var/lib/grant-virtio/guest1.img\n' >"$root/etc/grant-virtio/backend.conf"
inside systemctl reload grant-virtio-backend
check handover_rw_disk wait_log 2 "reload: configuration applied"
inside sh -c 'setsid sh -c "gv-frontend --domid $1 --devid 0 --restart-timeout 20000 verify --size 2M --random --ops 100000000 >/run/gv-fe.log 2>&1 & echo \$! >/run/gv-fe.pid; wait \$!; echo \$? >/run/gv-fe.rc" </dev/null >/dev/null 2>&1 &' sh "$dom"
check handover_guest_connected wait_xs "/local/domain/$dom/device/virtio/0/state" 4
inside systemctl restart grant-virtio-backend
pid3=$(prop MainPID)
check handover_new_pid [ "$pid3" != "$pid2" -a "$pid3" -gt 0 ]
check handover_logged wait_log 1 "handed over: left Connected for the next gv-backend"
check handover_taken_over wait_log 1 "taken over from an earlier backend, 0 requests in flight served again"
# the old instance ended with status 0 (systemd: not a failure)
check handover_old_exit_0 wait_log 1 "Deactivated successfully"
fe_end() {
	inside sh -c 'kill -USR1 "$(cat /run/gv-fe.pid)" && timeout 60 tail --pid="$(cat /run/gv-fe.pid)" -f /dev/null; cat /run/gv-fe.rc' 2>/dev/null
}
check handover_guest_exit_0 [ "$(fe_end)" = 0 ]
fe_log() { inside cat /run/gv-fe.log; }
check handover_guest_verify_ok sh -c 'echo "$1" | grep -q "^verify: OK" && echo "$1" | grep "^after:" | grep -q " errors=0 " &&
	! echo "$1" | grep "^after:" | grep -q " backend_restarts=0 "' sh "$(fe_log)"
[ "$fail" -eq 0 ] || fe_log | tail -n 5 | sed 's/^/  | /'

# 9. stop: the same hand-over (SIGTERM), no device state written (they wait
# in InitWait for a next instance), exit 0, pidfile and control socket gone
inside systemctl stop grant-virtio-backend
absent() { ! inside test -e "$1"; }
check stop_inactive is ActiveState inactive
check stop_result_success is Result success
check stop_exit_0 is ExecMainStatus 0
check stop_devices_left published 2
check stop_pidfile_removed absent /run/grant-virtio/backend.pid
check stop_control_socket_removed absent /run/grant-virtio-sim/gv-backend.sock

# 10. SIGINT: every device Closed for good, exit 0 (no restart)
inside systemctl start grant-virtio-backend
check sigint_started is SubState running
inside systemctl kill --signal=SIGINT grant-virtio-backend
check sigint_devices_closed published 6
check sigint_logged wait_log 1 "every device closed; exiting"
# the unit goes inactive once systemd reaped the daemon (a state, not a job:
# wait for it on the journal's line)
check sigint_deactivated wait_log 2 "Deactivated successfully"
check sigint_inactive is ActiveState inactive
check sigint_exit_0 is ExecMainStatus 0

say "run took $(($(date +%s) - t_start)) s"
finish
