#!/bin/sh
# test/test_restart.sh: gv-backend killed (SIGKILL) and started again while
# a guest does I/O, on the simulated Xen (docs/transport.md, "Backend
# restart"). The guest must see every request finish with no error and the
# right data:
#   1. random verified I/O (gv-frontend verify --random, checked against a
#      shadow copy, then the whole region read back) in each DMA strategy
#      while the backend is killed and restarted GV_RESTARTS times in all
#      (default 100) at random points of the I/O; then the same with
#      SIGTERM (the hand-over of a restart or an upgrade, GV_TERM_RESTARTS
#      times, default 30): exit 0, no page of the guest left mapped, and
#      nothing left in flight for the successor to serve again
#   1b. the same (GV_QT_RESTARTS, default 30 SIGKILL, and a third as many
#      SIGTERM) with gv-backend --queue-threads on: the queue served by a
#      thread of its own, stopped and joined before the hand-over drains it
#   2. a write submitted while the backend is stopped, the backend killed and
#      started again: the write completes and reads back
#   3. the restart timeout: no backend comes back, the guest's request fails
#      with -EIO once --restart-timeout has passed, not before, not never
#   4. an old frontend (no in-flight record: --restart-timeout 0) fails at
#      once as before, and the new backend publishes the device afresh
# Prints the figures: restarts, requests served again, guest-visible errors,
# the guest's longest and mean wait for a new backend.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
B=${GV_BUILD:-$top/build}
RESTARTS=${GV_RESTARTS:-100}
TERM_RESTARTS=${GV_TERM_RESTARTS:-30}
QT_RESTARTS=${GV_QT_RESTARTS:-30}
BE_OPTS=                # gv-backend's options beyond the disk (part 1b)
work=$(mktemp -d /tmp/gv-restart-XXXXXX)
export GV_PLATFORM=sim GV_SIM_DIR="$work/xen" XENSTORED_PATH="$work/xen/dom0/xenstored"
simpid= bepid= fepid=

cleanup() {
	[ -n "$fepid" ] && kill -9 "$fepid" 2>/dev/null && wait "$fepid" 2>/dev/null
	[ -n "$bepid" ] && kill -CONT "$bepid" 2>/dev/null
	[ -n "$bepid" ] && kill "$bepid" 2>/dev/null && wait_bounded "$bepid" 20 2>/dev/null
	[ -n "$simpid" ] && kill "$simpid" 2>/dev/null && wait_bounded "$simpid" 20 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT INT TERM
. "$top/tools/lib.sh"

seed=4711
rnd() { seed=$(( (seed * 1103515245 + 12345) % 2147483648 )); r=$(( seed / 65536 % $1 )); }

fail() {
	echo "FAIL $1: $2"
	echo "--- backend log (last 15 lines)"; tail -n 15 "$work/backend.log"
	for f in "$work"/fe*.log; do
		[ -e "$f" ] && { echo "--- $(basename "$f") (last 10 lines)"; tail -n 10 "$f"; }
	done
	exit 1
}

img="$work/disk.img"
truncate -s 8M "$img"
cfg="$work/guest.cfg"
printf 'name = "restart"\nvirtio = [ "backend=0,type=virtio,device2,transport=mmio,grant_usage=1" ]\n' >"$cfg"
start_daemon gv-simxen "$work/simxen.log" --dir "$GV_SIM_DIR"; simpid=$pid
start_daemon gv-backend "$work/backend.log" --disk "restart:0=$img" $BE_OPTS; bepid=$pid
dom=$("$B/gv-xl" create "$cfg") || fail setup "gv-xl create failed"
fe="/local/domain/$dom/device/virtio/0"
be="/local/domain/0/backend/virtio/$dom/0"

# wait_state DIR STATE: until DIR/state reads STATE, woken by a xenstore
# watch, at most 10 s
wait_state() {
	rm -f "$work/watch"; mkfifo "$work/watch"
	timeout 10 xenstore-watch "$1/state" >"$work/watch" &
	wpid=$! got=1
	while read -r _; do
		[ "$(xenstore-read "$1/state" 2>/dev/null)" = "$2" ] && { got=0; break; }
	done <"$work/watch"
	kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null
	rm -f "$work/watch"
	return $got
}

# the guest's active grants (gv-xl list: column 4 of its line)
guest_grants() { "$B/gv-xl" list | awk -v d="$dom" '$2==d{print $4}'; }

# restart_backend [SIGNAL]: the backend stopped with SIGNAL (default KILL:
# a crash; TERM: the hand-over of a restart or upgrade, which must exit 0),
# then a new one started
restart_backend() {
	if [ "${1:-KILL}" = TERM ]; then
		kill -TERM "$bepid"
		wait_bounded "$bepid" 20; rc=$?
		[ $rc = 0 ] || fail hand-over "gv-backend exited $rc on SIGTERM"
		# handed over: no mapping of the guest's pages is left (the sim's
		# own accounting), before any successor runs
		mb=$("$B/gv-xl" list | awk -v d="$dom" '$2==d{print $6}')
		[ "$mb" = 0 ] || fail hand-over "$mb pages of the guest still mapped after the hand-over"
	else
		kill -9 "$bepid"; wait_bounded "$bepid" 10 2>/dev/null
	fi
	start_daemon gv-backend "$work/backend.log" --disk "restart:0=$img" $BE_OPTS; bepid=$pid
}

# ---- 1. random verified I/O across restarts ------------------------------------
# restarts SIGNAL COUNT NAME: COUNT restarts (SIGNAL as restart_backend) at
# random points of random verified I/O, COUNT split over the three DMA
# strategies; the guest must see 0 errors and the right data
restarts() {
	sig=$1 count=$2 what=$3
	: >"$work/backend.log"
	total=0 restarts_seen=0 wait_max=0 wait_total=0 errors=0 n=0
	t0=$(date +%s)
	for dma in bounce grant pool; do
		n=$((n + 1))
		want=$((count / 3))
		[ $n = 1 ] && want=$((count - 2 * (count / 3)))
		felog="$work/fe-$sig-$dma.log"
		"$B/gv-frontend" --domid "$dom" --dma "$dma" --restart-timeout 20000 --io-timeout 20000 \
			verify --size 2M --random --ops 100000000 --seed $n >"$felog" 2>&1 &
		fepid=$!
		wait_state "$fe" 4 || fail "$what" "the $dma frontend did not connect"
		k=0
		while [ $k -lt "$want" ]; do
			# the stop lands at a random point of the I/O (0-30 ms after
			# the last takeover): random timing on purpose, not a
			# synchronisation
			rnd 30
			sleep "$(printf '0.%03d' $r)"
			kill -0 "$fepid" 2>/dev/null || fail "$what" "$dma: the guest stopped after $k restarts"
			restart_backend "$sig"
			k=$((k + 1)) total=$((total + 1))
		done
		kill -USR1 "$fepid"
		wait_bounded "$fepid" 60; rc=$?; fepid=
		[ $rc = 0 ] && grep -q '^verify: OK' "$felog" ||
			fail "$what" "$dma: verify failed (exit $rc) after $want restarts: $(grep -E 'verify|mismatch|stopped' "$felog" | head -3)"
		after=$(grep '^after:' "$felog")
		e=$(echo "$after" | sed -n 's/.* errors=\([0-9]*\).*/\1/p')
		s=$(echo "$after" | sed -n 's/.* backend_restarts=\([0-9]*\).*/\1/p')
		m=$(echo "$after" | sed -n 's/.* restart_wait_max_ms=\([0-9]*\).*/\1/p')
		w=$(echo "$after" | sed -n 's/.* restart_wait_total_ms=\([0-9]*\).*/\1/p')
		[ -n "$e" ] && [ -n "$s" ] || fail "$what" "$dma: no counters in the guest's output"
		[ "$e" = 0 ] || fail "$what" "$dma: $e requests failed"
		echo "$dma: $want restarts (SIG$sig), the guest saw $s of them (waited $m ms at most), $(grep '^random:' "$felog")"
		errors=$((errors + e)) restarts_seen=$((restarts_seen + s)) wait_total=$((wait_total + w))
		[ "$m" -gt $wait_max ] && wait_max=$m
		wait_state "$be" 2 || fail "$what" "$dma: the device did not come back to InitWait after detach"
	done
	again=$(grep -o 'taken over from an earlier backend, [0-9]*' "$work/backend.log" |
	        awk '{s += $NF} END {print s + 0}')
	takeovers=$(grep -c 'taken over from an earlier backend' "$work/backend.log")
	# the backend's own share of the wait: from finding the device to serving it
	tk_ms=$(sed -n 's/.*taken over from an earlier backend.*(\([0-9]*\) ms)$/\1/p' "$work/backend.log" |
	        awk '{s += $1; if ($1 > m) m = $1} END {printf "%d ms on average, %d ms at most", s / (NR ? NR : 1), m}')
	[ "$takeovers" -eq "$total" ] || fail "$what" "$takeovers takeovers logged for $total restarts"
	mean=0
	[ $restarts_seen -gt 0 ] && mean=$((wait_total / restarts_seen))
	echo "restarts (SIG$sig): $total backend restarts in $(( $(date +%s) - t0 )) s, $takeovers takeovers, $again requests in flight served again, $errors guest-visible errors; the guest noticed $restarts_seen restarts and waited $mean ms on average, $wait_max ms at most"
}

restarts KILL "$RESTARTS" restarts
[ "$again" -gt 0 ] || fail restarts "no restart found a request in flight: the test did not test recovery"
echo "PASS random verified I/O across $total backend restarts (SIGKILL), 0 errors ($again requests served again; the guest waited $mean ms on average, $wait_max ms at most; the takeover itself took $tk_ms)"

# SIGTERM: the hand-over finishes what is in flight before it goes, so the
# successor finds nothing to serve again
restarts TERM "$TERM_RESTARTS" hand-over
handed=$(grep -c 'handed over: left Connected' "$work/backend.log")
[ "$handed" -eq "$total" ] || fail hand-over "$handed hand-overs logged for $total SIGTERMs"
[ "$again" = 0 ] || fail hand-over "the successors served $again requests again: the hand-over left them unfinished"
echo "PASS random verified I/O across $total backend restarts by SIGTERM (hand-over), 0 errors, nothing left in flight, no page left mapped (the guest waited $mean ms on average, $wait_max ms at most; the takeover itself took $tk_ms)"

# ---- 1b. the same with a thread per queue ---------------------------------------
BE_OPTS="--queue-threads on"
restart_backend TERM
restarts KILL "$QT_RESTARTS" queue-threads
grep -q ': 1 queue thread' "$work/backend.log" || fail queue-threads "no queue thread served the device"
[ "$again" -gt 0 ] || fail queue-threads "no restart found a request in flight: the test did not test recovery"
echo "PASS random verified I/O across $total backend restarts (SIGKILL) with --queue-threads on, 0 errors ($again requests served again; the guest waited $mean ms on average, $wait_max ms at most)"
restarts TERM $((QT_RESTARTS / 3)) queue-threads-hand-over
handed=$(grep -c 'handed over: left Connected' "$work/backend.log")
[ "$handed" -eq "$total" ] || fail queue-threads-hand-over "$handed hand-overs logged for $total SIGTERMs"
[ "$again" = 0 ] || fail queue-threads-hand-over "the successors served $again requests again: the hand-over left them unfinished"
echo "PASS random verified I/O across $total backend restarts by SIGTERM with --queue-threads on, 0 errors, nothing left in flight, no page left mapped"
BE_OPTS=
restart_backend TERM

# ---- 2. a write in flight while the backend is stopped, then killed ------------
head -c 262144 /dev/urandom >"$work/data"
mkfifo "$work/stdin"
"$B/gv-frontend" --domid "$dom" --dma grant --restart-timeout 20000 \
	write --offset 1M --length 256K <"$work/stdin" >"$work/fe-write.log" 2>&1 &
fepid=$!
exec 8>"$work/stdin"
wait_state "$fe" 4 || fail write-in-flight "the frontend did not connect"
g0=$(guest_grants)
kill -STOP "$bepid"
cat "$work/data" >&8
exec 8>&-
# grant strategy: the write's 64 data pages are granted just before the
# request goes on the ring; wait (bounded) until they are
k=0
while [ "$(guest_grants)" -lt $((g0 + 64)) ] && [ $k -lt 500 ]; do sleep 0.02; k=$((k + 1)); done
[ "$(guest_grants)" -ge $((g0 + 64)) ] || fail write-in-flight "the write was not issued"
restart_backend
wait_bounded "$fepid" 30; rc=$?; fepid=
[ $rc = 0 ] || fail write-in-flight "write failed (exit $rc): $(tail -2 "$work/fe-write.log")"
"$B/gv-frontend" --domid "$dom" read --offset 1M --length 256K --raw >"$work/back" 2>"$work/fe-read.log" ||
	fail write-in-flight "read back failed"
# (after the raw bytes gv-frontend prints its counters line)
head -c 262144 "$work/back" | cmp -s "$work/data" - || fail write-in-flight "the data read back differs"
echo "PASS a write in flight across a backend kill completes and reads back"

# ---- 3. no backend comes back: -EIO after the restart timeout --------------------
"$B/gv-frontend" --domid "$dom" --restart-timeout 1500 --io-timeout 20000 \
	verify --size 2M --random --ops 100000000 >"$work/fe-timeout.log" 2>&1 &
fepid=$!
wait_state "$fe" 4 || fail restart-timeout "the frontend did not connect"
kill -9 "$bepid"; wait_bounded "$bepid" 10 2>/dev/null; bepid=
t1=$(date +%s%N)
wait_bounded "$fepid" 30; rc=$?; fepid=
ms=$(( ($(date +%s%N) - t1) / 1000000 ))
[ $rc = 3 ] || fail restart-timeout "exit $rc, expected 3 (device stopped)"
grep -q 'no backend took the device over in 1500 ms' "$work/fe-timeout.log" ||
	fail restart-timeout "no timeout message: $(grep stopped "$work/fe-timeout.log")"
[ $ms -ge 1400 ] && [ $ms -le 10000 ] || fail restart-timeout "failed after $ms ms, not after the timeout"
echo "PASS no backend back: the guest's requests fail with -EIO after the restart timeout ($ms ms)"
start_daemon gv-backend "$work/backend.log" --disk "restart:0=$img"; bepid=$pid
wait_state "$be" 2 || fail restart-timeout "the device was not published again"

# ---- 4. a frontend without the record: fails at once, as before -------------------
"$B/gv-frontend" --domid "$dom" --restart-timeout 0 \
	verify --size 2M --random --ops 100000000 >"$work/fe-old.log" 2>&1 &
fepid=$!
wait_state "$fe" 4 || fail no-record "the frontend did not connect"
[ -z "$(xenstore-read "$fe/queue-0/inflight-ref" 2>/dev/null)" ] || fail no-record "inflight-ref published"
restart_backend
wait_bounded "$fepid" 30; rc=$?; fepid=
[ $rc = 3 ] || fail no-record "exit $rc, expected 3"
grep -q 'backend went away' "$work/fe-old.log" || fail no-record "not a backend death"
wait_state "$be" 2 || fail no-record "the device was not published again"
grep -q 'keeps no in-flight record' "$work/backend.log" || fail no-record "no takeover refusal logged"
"$B/gv-frontend" --domid "$dom" verify --size 1M >"$work/fe-after.log" 2>&1 ||
	fail no-record "a new frontend cannot use the device"
echo "PASS a frontend without an in-flight record fails at once and the device is published afresh"

# ---- 5. SIGINT: the devices closed for good, the guest told at once ------------
"$B/gv-frontend" --domid "$dom" --restart-timeout 20000 --io-timeout 20000 \
	verify --size 2M --random --ops 100000000 >"$work/fe-int.log" 2>&1 &
fepid=$!
wait_state "$fe" 4 || fail sigint "the frontend did not connect"
kill -INT "$bepid"; wait_bounded "$bepid" 20; rc=$?; bepid=
[ $rc = 0 ] || fail sigint "gv-backend exited $rc on SIGINT"
t1=$(date +%s%N)
wait_bounded "$fepid" 30; rc=$?; fepid=
ms=$(( ($(date +%s%N) - t1) / 1000000 ))
[ $rc = 3 ] || fail sigint "exit $rc, expected 3 (device stopped)"
# the restart timeout is 20 s: a guest that waited for a successor took that long
[ $ms -lt 10000 ] || fail sigint "the guest's requests failed only after $ms ms"
[ "$(xenstore-read "$be/state")" = 6 ] || fail sigint "backend state $(xenstore-read "$be/state"), not Closed"
grep -q 'every device closed; exiting' "$work/backend.log" || fail sigint "no close logged"
[ "$(guest_grants)" = 0 ] || fail sigint "$(guest_grants) grants of the guest still active"
echo "PASS SIGINT closes the device: the guest's requests fail at once ($ms ms), every grant ended"
