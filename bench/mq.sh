#!/bin/sh
# bench/mq.sh: the multi-queue rows of `make bench` (issue 11, item 3):
# 4 KiB random reads at a total queue depth of 32 through one queue (one
# frontend thread, QD32) and through two (two threads, each QD16 on its own
# virtqueue and event channel: gv-bench mq, gv_attach_queues), against
#   RAM    an image in /dev/shm, gv-backend-bench; the reference is the
#          `direct` row (backend --bench-direct, guest --dma pool, one queue)
#          measured in this run
#   disk   an image of random data on this machine's disk, page cache dropped
#          before each run where permitted; the reference is fio (libaio,
#          O_DIRECT) on the same file in this run, QD32 in one job, and also
#          two jobs of QD16 (what two threads give a local program)
# Each pool and bounce row runs twice: with the backend's one loop serving
# every queue (the default), and with `--queue-threads on` (rows -qt: each
# queue served by a thread of its own, backend/qthread.c), so the two are
# compared in the same run.
# Every row is printed with its IOPS and its ratio to the reference, the CPU
# the three processes spent per request, and how busy gv-backend was (be %:
# its CPU time over the run's time; near 100 with one loop, the loop is what
# limits; with queue threads it may pass 100).
#
#   sh bench/mq.sh [--quick] [--secs S] [--no-disk]
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
B=${GV_BUILD:-$top/build}
out=$top/bench/out
SECS=3 WARM=0.3 SIZE=$((1024 * 1024 * 1024)) disk=1
while [ $# -gt 0 ]; do
	case $1 in
	--quick) SECS=1 WARM=0.2 SIZE=$((256 * 1024 * 1024)) ;;
	--secs) SECS=${2:?--secs needs a value}; shift ;;
	--no-disk) disk=0 ;;
	*) echo "usage: sh bench/mq.sh [--quick] [--secs S] [--no-disk]"; exit 2 ;;
	esac
	shift
done
for p in gv-simxen gv-backend gv-backend-bench gv-xl gv-bench; do
	[ -x "$B/$p" ] || { echo "mq bench: $B/$p is missing: run make first"; exit 1; }
done
mkdir -p "$out"
work=$(mktemp -d /tmp/gv-mq-XXXXXX)
export GV_PLATFORM=sim GV_SIM_DIR="$work/xen"
ram_dir=/dev/shm; [ -d /dev/shm ] && [ -w /dev/shm ] || ram_dir=$work
ram=$(mktemp "$ram_dir/gv-mq-ram-XXXXXX")
dimg=
simpid= bepid= failed=0
cleanup() {
	[ -n "$bepid" ] && kill "$bepid" 2>/dev/null && wait "$bepid" 2>/dev/null
	[ -n "$simpid" ] && kill "$simpid" 2>/dev/null && wait "$simpid" 2>/dev/null
	rm -rf "$work" "$ram" ${dimg:+"$dimg"}
}
trap cleanup EXIT INT TERM
. "$top/tools/lib.sh"

echo "mq bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
results=$out/mq.tsv
: > "$results"
truncate -s 1G "$ram"
dd if=/dev/zero of="$ram" bs=1M count=256 conv=notrunc status=none
start_daemon gv-simxen "$work/simxen.log"; simpid=$pid

dropped=no
drop_caches() {
	sync
	if echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; then dropped=yes; else dropped=no; fi
}

# one row: section row backend image queues backend-args -- gv-bench-args
row() {
	r_sec=$1 r_name=$2 r_be=$3 r_img=$4 r_nq=$5 r_args=$6; shift 6
	[ "$r_sec" = disk ] && drop_caches
	start_daemon "$r_be" "$work/backend-$r_sec-$r_name.log" --disk "mq-$r_sec-$r_name:0=$r_img" $r_args \
		--control none
	bepid=$pid
	printf 'name = "mq-%s-%s"\nvirtio = [ "backend=0,type=virtio,device2,transport=mmio,grant_usage=1" ]\n' \
		"$r_sec" "$r_name" > "$work/$r_sec-$r_name.cfg"
	domid=$("$B/gv-xl" create "$work/$r_sec-$r_name.cfg") || { echo "mq bench: gv-xl create failed"; exit 1; }
	GV_DOMID=$domid "$B/gv-bench" mq "$r_name" --queues "$r_nq" --depth 32 "$@" --secs "$SECS" \
		--warm "$WARM" --backend-pid "$bepid" --hv-pid "$simpid" > "$work/line" || {
		echo "mq bench: $r_sec $r_name failed; backend log:"; tail -n 20 "$work/backend-$r_sec-$r_name.log"
		failed=1
	}
	sed "s/^/$r_sec\t/" "$work/line" >> "$results"
	"$B/gv-xl" destroy "mq-$r_sec-$r_name" >/dev/null || failed=1
	kill "$bepid"; wait "$bepid"; bepid=
}

echo "[ram] image in $ram_dir"
row ram direct-1q gv-backend-bench "$ram" 1 --bench-direct --dma pool --app-pool
for qt in off on; do
	sfx=; [ $qt = on ] && sfx=-qt
	for nq in 1 2; do
		row ram pool-${nq}q$sfx gv-backend-bench "$ram" "$nq" "--queue-threads $qt" --dma pool --app-pool
		row ram bounce-${nq}q$sfx gv-backend-bench "$ram" "$nq" "--queue-threads $qt" --dma bounce
	done
done

if [ "$disk" = 1 ] && command -v fio >/dev/null 2>&1; then
	img_dir=${GV_DISK_DIR:-/var/tmp}
	dimg=$(mktemp "$img_dir/gv-mq-disk-XXXXXX.img")
	echo "[disk] $((SIZE >> 20)) MiB of random data in $img_dir ($(df -P "$img_dir" | awk 'NR==2 {print $1}'), $(stat -f -c %T "$img_dir"))"
	head -c "$SIZE" /dev/urandom > "$dimg" || { echo "mq bench: cannot write $dimg"; exit 1; }
	for jobs in 1 2; do
		drop_caches
		fio --name=mq --filename="$dimg" --ioengine=libaio --direct=1 --rw=randread --bs=4k \
			--iodepth=$((32 / jobs)) --numjobs=$jobs --group_reporting --size="$SIZE" \
			--runtime="$SECS" --ramp_time="$WARM" --time_based --norandommap --randrepeat=0 \
			--minimal > "$work/fio.out" 2>&1 || { echo "mq bench: fio failed:"; cat "$work/fio.out"; failed=1; }
		# terse v3: field 8 read IOPS
		awk -F';' -v j=$jobs '{ printf "disk\tfio-%dj\t4k-randread-qd32-%dj\t%.0f\t1\n", j, j, $8 }' \
			"$work/fio.out" >> "$results"
	done
	for qt in off on; do
		sfx=; [ $qt = on ] && sfx=-qt
		for nq in 1 2; do
			row disk pool-${nq}q$sfx gv-backend "$dimg" "$nq" "--queue-threads $qt" --dma pool \
				--app-pool --region "$SIZE"
			row disk bounce-${nq}q$sfx gv-backend "$dimg" "$nq" "--queue-threads $qt" --dma bounce \
				--region "$SIZE"
		done
	done
	echo "[disk] page cache dropped before each run: $dropped"
fi

echo
echo "multi-queue: 4 KiB random read, total QD32, 1 queue (1 thread) vs 2 queues (2 threads x QD16);"
echo "-qt: gv-backend --queue-threads on (a thread per queue), else its one loop serves every queue"
echo "ratio: to direct-1q (RAM) or to fio-1j (disk), same run; CPU: us per request (guest, backend, simxen)"
awk -F'\t' '
	$2 == "direct-1q" || $2 == "fio-1j" { ref[$1] = $4 / $5 }
	{ sec[NR] = $1; name[NR] = $2; iops[NR] = $4 / $5; ops[NR] = $4; secs[NR] = $5
	  fe[NR] = $9; be[NR] = $10; hv[NR] = $11; p50[NR] = $7; p99[NR] = $8; fio[NR] = $2 ~ /^fio/ }
	END {
		printf "%-5s %-13s %10s %6s %8s %8s %18s %6s\n", "", "row", "IOPS", "ratio", "p50 us", "p99 us",
		       "CPU fe/be/hv us", "be %"
		for (i = 1; i <= NR; i++) {
			r = ref[sec[i]] > 0 ? iops[i] / ref[sec[i]] : 0
			if (fio[i])
				printf "%-5s %-13s %10.0f %6.2f %8s %8s %18s %6s\n", sec[i], name[i], iops[i], r, "-", "-", "-", "-"
			else
				printf "%-5s %-13s %10.0f %6.2f %8.1f %8.1f %6.2f/%5.2f/%5.2f %6.0f\n", sec[i], name[i], iops[i], r,
				       p50[i], p99[i], fe[i] / ops[i] / 1000, be[i] / ops[i] / 1000, hv[i] / ops[i] / 1000,
				       be[i] / secs[i] / 1e7
		}
	}' "$results" | tee "$out/mq.txt"
echo "mq bench: load average after: $(cut -d' ' -f1-3 /proc/loadavg); raw: $results"
[ "$failed" -eq 0 ] || { echo "mq bench: FAILED (see above)"; exit 1; }
