#!/bin/sh
# bench/disk.sh: the real-disk section of `make bench` (issue 11): the pair on
# an image file on this machine's own disk, against fio on the same file in
# the same run.
#
# One image of random data on the root file system (not tmpfs), the page
# cache dropped before every measurement where the kernel lets us
# (/proc/sys/vm/drop_caches), then for each workload of gv-bench (4 KiB
# random read and write at QD1 and QD32, 64 KiB sequential at QD8, 1 MiB
# sequential at QD2):
#   fio     --ioengine=libaio --direct=1, the same block size, depth, pattern
#           and span of the file: what the disk gives a local program
#   rows    gv-backend on the simulated Xen serving the image (io_uring,
#           O_DIRECT when aligned, the default) to gv-bench in a guest, for
#           the DMA strategies pool and bounce; and pool with
#           gv-backend --io sync (one pread/pwrite at a time, O_DIRECT too:
#           how the daemon served before issue 11, without the page cache
#           flattering it), for comparison
# Every row's IOPS is printed with its ratio to fio's, and the backend's
# kicks and interrupts per request (gv-backend --status).
#
#   sh bench/disk.sh [--secs S] [--size BYTES] [--rows "pool bounce sync"]
#                    [--workloads "4k-randread-qd1 ..."]
# A row may end in -poll: gv-backend --poll-us P, P = $GV_BENCH_POLL_US
# (default 50). --workloads: only those workloads (fio too).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
B=${GV_BUILD:-$top/build}
out=$top/bench/out
SECS=5 WARM=0.5 SIZE=$((4096 * 1024 * 1024)) WORKLOADS=
ROWS="pool bounce sync"
while [ $# -gt 0 ]; do
	case $1 in
	--secs) SECS=${2:?}; shift ;;
	--size) SIZE=${2:?}; shift ;;
	--rows) ROWS=${2:?}; shift ;;
	--workloads) WORKLOADS=${2:?}; shift ;;
	--quick) SECS=1 WARM=0.2 SIZE=$((256 * 1024 * 1024)) ;;
	*) echo "usage: sh bench/disk.sh [--quick] [--secs S] [--size BYTES] [--rows \"ROW...\"]"
	   exit 2 ;;
	esac
	shift
done
for p in gv-simxen gv-backend gv-xl gv-bench; do
	[ -x "$B/$p" ] || { echo "disk bench: $B/$p is missing: run make first"; exit 1; }
done
command -v fio >/dev/null 2>&1 || { echo "disk bench: fio is missing (sh tools/install-deps.sh --bench)"; exit 1; }

mkdir -p "$out"
work=$(mktemp -d /tmp/gv-disk-XXXXXX)
export GV_PLATFORM=sim GV_SIM_DIR="$work/xen"
# /var/tmp: on the root file system, on the machine's disk (never tmpfs here)
img_dir=${GV_DISK_DIR:-/var/tmp}
img=$(mktemp "$img_dir/gv-disk-bench-XXXXXX.img")
simpid= bepid= failed=0
cleanup() {
	[ -n "$bepid" ] && kill "$bepid" 2>/dev/null && wait "$bepid" 2>/dev/null
	[ -n "$simpid" ] && kill "$simpid" 2>/dev/null && wait "$simpid" 2>/dev/null
	rm -rf "$work" "$img"
}
trap cleanup EXIT INT TERM
. "$top/tools/lib.sh"

fs=$(df -P "$img_dir" | awk 'NR==2 {print $1}')
fstype=$(stat -f -c %T "$img_dir")
echo "disk bench: $((SIZE >> 20)) MiB of random data in $img_dir ($fs, $fstype), ${SECS}s per run"
[ "$fstype" = tmpfs ] && echo "disk bench: WARNING: $img_dir is tmpfs, not a disk"
head -c "$SIZE" /dev/urandom > "$img" || { echo "disk bench: cannot write $img"; exit 1; }
sync

drop_caches() {
	sync
	if echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; then dropped=yes; else dropped=no; fi
}
drop_caches
echo "disk bench: page cache dropped before each run: $dropped"

results=$out/disk.tsv
: > "$results"

# fio: the workloads of gv-bench, same names
fio_run() {   # name rw bs depth
	[ -z "$WORKLOADS" ] || case " $(echo "$WORKLOADS" | tr , ' ') " in *" $1 "*) ;; *) return ;; esac
	drop_caches
	fio --name="$1" --filename="$img" --ioengine=libaio --direct=1 --rw="$2" --bs="$3" \
		--iodepth="$4" --size="$SIZE" --runtime="$SECS" --ramp_time="$WARM" --time_based \
		--norandommap --randrepeat=0 --minimal > "$work/fio.out" 2>&1 || {
		echo "disk bench: fio $1 failed:"; cat "$work/fio.out"; failed=1; return; }
	# terse v3: field 8 read IOPS, field 49 write IOPS
	awk -F';' -v n="$1" '{ printf "fio\t%s\t%.1f\n", n, $8 + $49 }' "$work/fio.out" >> "$results"
}
echo "[fio] libaio, O_DIRECT, on $img"
fio_run 4k-randread-qd1 randread 4k 1
fio_run 4k-randwrite-qd1 randwrite 4k 1
fio_run 4k-randread-qd32 randread 4k 32
fio_run 4k-randwrite-qd32 randwrite 4k 32
fio_run 64k-seqread-qd8 read 64k 8
fio_run 64k-seqwrite-qd8 write 64k 8
fio_run 1m-seqread-qd2 read 1m 2
fio_run 1m-seqwrite-qd2 write 1m 2

start_daemon gv-simxen "$work/simxen.log"; simpid=$pid
for row in $ROWS; do
	be_poll=
	case $row in
	*-poll) be_poll="--poll-us ${GV_BENCH_POLL_US:-50}" ;;
	esac
	case ${row%-poll} in
	pool) be_args= fe_args="--dma pool --app-pool" ;;
	bounce) be_args= fe_args="--dma bounce" ;;
	sync) be_args="--io sync" fe_args="--dma pool --app-pool" ;;
	*) echo "disk bench: unknown row $row"; exit 2 ;;
	esac
	be_args="$be_args $be_poll"
	echo "[$row] gv-backend $be_args / gv-bench $fe_args"
	drop_caches
	be_args="$be_args ${GV_BENCH_BE_ARGS:-}"
	start_daemon gv-backend "$work/backend-$row.log" --disk "disk-$row:0=$img" $be_args \
		--control none
	bepid=$pid
	cat > "$work/$row.cfg" <<-EOF
	name = "disk-$row"
	virtio = [ "backend=0,type=virtio,device2,transport=mmio,grant_usage=1" ]
	EOF
	domid=$("$B/gv-xl" create "$work/$row.cfg") || { echo "disk bench: gv-xl create failed"; exit 1; }
	GV_DOMID=$domid "$B/gv-bench" run "$row" $fe_args --secs "$SECS" --warm "$WARM" \
		--region "$SIZE" --backend-pid "$bepid" --hv-pid "$simpid" \
		${WORKLOADS:+--workloads "$WORKLOADS"} > "$work/$row.tsv" || {
		echo "disk bench: row $row failed; backend log:"; tail -n 20 "$work/backend-$row.log"
		failed=1
	}
	awk -F"\t" '{ printf "%s\t%s\t%.1f\n", $1, $2, ($4 > 0 ? $3 / $4 : 0) }' "$work/$row.tsv" >> "$results"
	cp "$work/$row.tsv" "$out/disk-$row.tsv"
	"$B/gv-xl" destroy "disk-$row" >/dev/null || failed=1
	kill "$bepid"; wait "$bepid"; bepid=
	# the backend's notifications per request, logged as each queue closed
	sed -n 's/.*device 0: \(queue [0-9]*: [0-9]* requests.*\)/\1/p' "$work/backend-$row.log" |
		grep -v ': 0 requests' | sed "s/^/    $row backend: /"
done

echo
echo "real disk: IOPS, and each row's ratio to fio (libaio, O_DIRECT, same file, same run)"
awk -F'\t' -v rows="$ROWS" '
	{ v[$1 "/" $2] = $3; if (!($2 in seen)) { seen[$2] = 1; order[n++] = $2 } }
	END {
		nr = split(rows, r, " ")
		printf "%-18s %10s", "workload", "fio"
		for (i = 1; i <= nr; i++) printf " %10s %6s", r[i], "ratio"
		printf "\n"
		for (k = 0; k < n; k++) {
			w = order[k]; f = v["fio/" w]
			printf "%-18s %10.0f", w, f
			for (i = 1; i <= nr; i++) {
				x = v[r[i] "/" w]
				printf " %10.0f %6.2f", x, (f > 0 ? x / f : 0)
			}
			printf "\n"
		}
	}' "$results" | tee "$out/disk.txt"
echo "raw: $results; table: $out/disk.txt"
[ "$failed" -eq 0 ] || { echo "disk bench: FAILED (see above)"; exit 1; }
