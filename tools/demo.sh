#!/bin/sh
# tools/demo.sh: the main job of grant-virtio, on the simulated Xen by default.
#
# Starts the simulated hypervisor (gv-simxen), the dom0 backend daemon
# (gv-backend) serving a RAM-backed disk image, and a guest created from
# examples/guest.cfg by the simulated toolstack (gv-xl create: the same nodes
# xl writes). In the guest, gv-frontend writes, reads back and verifies 64 MiB
# with each DMA strategy, reads entropy, and then runs the bypass driver,
# which must fail with the explanation. Everything is stopped at the end and
# checked for leaks. Exit status 0 only if every step did what it should.
#
#   sh tools/demo.sh [--size SIZE]      (make demo)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
B=${GV_BUILD:-$top/build}
SIZE=64M
[ "${1:-}" = "--size" ] && SIZE=${2:?--size needs a value}

work=$(mktemp -d /tmp/gv-demo-XXXXXX)
export GV_PLATFORM=sim GV_SIM_DIR="$work/xen"
img_dir=/dev/shm; [ -d /dev/shm ] && [ -w /dev/shm ] || img_dir=$work
img=$(mktemp "$img_dir/gv-demo-disk-XXXXXX")
simpid= bepid= failed=0

step() { printf '\n== %s\n' "$*"; }
fail() { echo "demo: FAILED: $*"; failed=1; }

cleanup() {
	[ -n "$bepid" ] && kill "$bepid" 2>/dev/null && wait "$bepid" 2>/dev/null
	[ -n "$simpid" ] && kill "$simpid" 2>/dev/null && wait "$simpid" 2>/dev/null
	rm -rf "$work" "$img"
}
trap cleanup EXIT INT TERM

. "$top/tools/lib.sh"

for p in gv-simxen gv-backend gv-xl gv-frontend gv-schema; do
	[ -x "$B/$p" ] || { echo "demo: $B/$p is missing: run make first"; exit 1; }
done

step "simulated Xen: gv-simxen --dir $GV_SIM_DIR"
start_daemon gv-simxen "$work/simxen.log"; simpid=$pid
head -n 1 "$work/simxen.log"

step "dom0 backend: gv-backend --disk guest1:0=$img (a $SIZE image in RAM)"
truncate -s "$SIZE" "$img"
truncate -s +1M "$img"
start_daemon gv-backend "$work/backend.log" --disk "guest1:0=$img"; bepid=$pid
head -n 1 "$work/backend.log"

step "toolstack: gv-xl create examples/guest.cfg"
grep -v '^#' "$top/examples/guest.cfg" | grep -A3 '^virtio'
domid=$("$B/gv-xl" create "$top/examples/guest.cfg") || { fail "gv-xl create"; exit 1; }
echo "guest1 is domain $domid"
echo "gv-schema check (as dom0): the xenstore nodes against xenstore-schema/virtio.tsv"
GV_DOMID=0 "$B/gv-schema" check --backend-domid 0 || fail "xenstore does not match the schema after create"
export GV_DOMID="$domid"

seed=1
for dma in bounce grant pool; do
	seed=$((seed + 1))
	step "guest: gv-frontend --devid 0 --dma $dma verify --size $SIZE"
	"$B/gv-frontend" --devid 0 --dma "$dma" verify --size "$SIZE" --seed "$seed" 2>&1 \
		|| fail "verify with the $dma strategy"
done

step "guest: gv-frontend --devid 1 rng --bytes 32 (virtio-rng)"
"$B/gv-frontend" --devid 1 rng --bytes 32 2>&1 || fail "rng"

step "guest: gv-frontend --devid 0 --dma bypass verify --size 1M (must fail)"
out=$("$B/gv-frontend" --devid 0 --dma bypass verify --size 1M 2>&1); rc=$?
echo "$out"
if [ "$rc" -ne 3 ]; then
	fail "the bypass driver should have been refused (exit 3), got exit $rc"
elif ! echo "$out" | grep -q "VIRTIO_F_ACCESS_PLATFORM"; then
	fail "the bypass refusal did not explain itself"
else
	echo "-> refused as expected: without the DMA API there is no grant, and a Xen backend can reach nothing else"
fi

step "the grant path still works after the refusal"
"$B/gv-frontend" --devid 0 info 2>&1 | sed -n '1,40p' || fail "info after bypass"

step "teardown: gv-xl destroy guest1, stop the backend and the hypervisor"
"$B/gv-xl" destroy guest1 || fail "gv-xl destroy"
GV_DOMID=0 "$B/gv-schema" check --backend-domid 0 || fail "xenstore does not match the schema after destroy"
listing=$("$B/gv-xl" list 2>&1); echo "$listing"
echo "$listing" | grep -qi dying && fail "a domain is left dying: pages still mapped"
kill "$bepid"; wait_bounded "$bepid" 20; rc=$?; bepid=
[ "$rc" -eq 0 ] || fail "gv-backend exited $rc on SIGTERM"
tail -n 3 "$work/backend.log"
kill "$simpid"; wait_bounded "$simpid" 20; rc=$?; simpid=
[ "$rc" -eq 0 ] || fail "gv-simxen exited $rc on SIGTERM"
[ -e "$GV_SIM_DIR" ] && fail "gv-simxen left $GV_SIM_DIR behind"

if [ "$failed" -ne 0 ]; then
	echo; echo "demo: FAILED (logs were in $work)"; exit 1
fi
echo; echo "demo: every step passed; nothing left running, no grant left active"
