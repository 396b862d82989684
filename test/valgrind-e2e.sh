#!/bin/sh
# test/valgrind-e2e.sh: the three main programs under valgrind memcheck in
# an end-to-end flow on the simulated Xen (make valgrind; not part of
# make test: it takes about a minute).
#
# gv-simxen, gv-backend and every gv-frontend run all under memcheck at
# once (each with --error-exitcode=99, definite leaks counted as errors):
# a guest created by gv-xl verifies SIZE bytes (plain and --random) through
# each DMA strategy, reads entropy, is refused as bypass, then the backend
# and the hypervisor are stopped with SIGTERM and must exit 0. Any memcheck
# error (invalid read/write, uninitialised value used, bad free, a definite
# leak) makes its program exit 99; the log of each program is printed then.
#
#   sh test/valgrind-e2e.sh [--size SIZE]      (GV_BUILD: the build directory)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
B=${GV_BUILD:-$top/build}
SIZE=2M
[ "${1:-}" = "--size" ] && SIZE=${2:?--size needs a value}

command -v valgrind >/dev/null || { echo "valgrind-e2e: valgrind is not installed (apt-get install valgrind)"; exit 2; }
for p in gv-simxen gv-backend gv-xl gv-frontend; do
	[ -x "$B/$p" ] || { echo "valgrind-e2e: $B/$p is missing: run make first"; exit 2; }
done

work=$(mktemp -d /tmp/gv-vg-XXXXXX)
export GV_PLATFORM=sim GV_SIM_DIR="$work/xen"
simpid= bepid= failed=0 n=0
VG="valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --track-fds=no --num-callers=30"

fail() { echo "valgrind-e2e: FAIL: $*"; failed=1; }

cleanup() {
	[ -n "$bepid" ] && kill -9 "$bepid" 2>/dev/null
	[ -n "$simpid" ] && kill -9 "$simpid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

# vgrun NAME ARGS...: BUILD/NAME under memcheck, its report in work/vg-NAME-N.log
vgrun() {
	name=$1; shift
	n=$((n + 1))
	vglog="$work/vg-$name-$n.log"
	$VG --log-file="$vglog" "$B/$name" "$@"
}

# show_if_errors LOG: prints a memcheck log that holds an error
show_if_errors() {
	if ! grep -q 'ERROR SUMMARY: 0 errors' "$1"; then
		echo "---- $1 ----"; grep -v '^==[0-9]*== *$' "$1" | tail -n 60; echo "----"
	fi
}

# start_daemon NAME LOG ARGS...: NAME under memcheck with --ready-fd; returns once it serves
start_daemon() {
	name=$1 log=$2; shift 2
	fifo="$work/$name.ready"
	mkfifo "$fifo"
	n=$((n + 1))
	vglog="$work/vg-$name-$n.log"   # set here: a background vgrun's would be lost
	$VG --log-file="$vglog" "$B/$name" "$@" --ready-fd 9 9>"$fifo" >>"$log" 2>&1 &
	pid=$!
	if ! timeout 60 head -c 1 "$fifo" >/dev/null; then
		echo "valgrind-e2e: $name did not start; its log:"; cat "$log"
		exit 1
	fi
	rm -f "$fifo"
}

start=$(date +%s)
start_daemon gv-simxen "$work/simxen.log"; simpid=$pid; simvg=$vglog
img="$work/disk.img"
truncate -s "$SIZE" "$img" && truncate -s +1M "$img"
start_daemon gv-backend "$work/backend.log" --disk "vg:0=$img"; bepid=$pid; bevg=$vglog
cfg="$work/vg.cfg"
cat >"$cfg" <<EOF
name = "vg"
virtio = [ "backend=0,type=virtio,device2,transport=mmio,grant_usage=1",
           "backend=0,type=virtio,device4,transport=mmio,grant_usage=1" ]
EOF
domid=$("$B/gv-xl" create "$cfg") || { fail "gv-xl create"; exit 1; }
export GV_DOMID="$domid"

fe() {
	what=$1; shift
	vgrun gv-frontend --timeout 30000 "$@" >"$work/fe.out" 2>&1
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "gv-frontend $what: exit $rc, expected $want"
		tail -n 20 "$work/fe.out"
		show_if_errors "$vglog"
	else
		echo "ok   gv-frontend $what (memcheck clean)"
	fi
}

want=0
for dma in bounce grant pool; do
	fe "--dma $dma verify --size $SIZE" --devid 0 --dma "$dma" verify --size "$SIZE"
	fe "--dma $dma verify --random" --devid 0 --dma "$dma" verify --size "$SIZE" --random --seed 7
done
fe "rng" --devid 1 rng --bytes 64
want=3
fe "--dma bypass (refused)" --devid 0 --dma bypass verify --size 1M

"$B/gv-xl" destroy vg || fail "gv-xl destroy"
kill "$bepid"; wait "$bepid"; rc=$?; bepid=
if [ "$rc" -ne 0 ]; then
	fail "gv-backend under memcheck exited $rc on SIGTERM (99: memcheck errors)"
	show_if_errors "$bevg"; tail -n 5 "$work/backend.log"
else
	echo "ok   gv-backend (memcheck clean, exit 0 on SIGTERM)"
fi
kill "$simpid"; wait "$simpid"; rc=$?; simpid=
if [ "$rc" -ne 0 ]; then
	fail "gv-simxen under memcheck exited $rc on SIGTERM (99: memcheck errors)"
	show_if_errors "$simvg"; tail -n 5 "$work/simxen.log"
else
	echo "ok   gv-simxen (memcheck clean, exit 0 on SIGTERM)"
fi
# every program ran under memcheck and said so, not only exited well
for l in "$work"/vg-*.log; do
	grep -q 'ERROR SUMMARY: 0 errors' "$l" || { fail "$(basename "$l"): no clean summary"; show_if_errors "$l"; }
done
logs=$(ls "$work"/vg-*.log | wc -l)
[ "$logs" -eq "$n" ] || fail "$n programs started under memcheck, $logs reports"
echo "valgrind-e2e: $n programs under memcheck, $(( $(date +%s) - start )) s"
if [ "$failed" -ne 0 ]; then
	echo "valgrind-e2e: FAILED"
	exit 1
fi
echo "valgrind-e2e: every program memcheck clean"
