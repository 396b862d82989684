#!/bin/sh
# bench/run.sh: `make bench`: the benchmark of issue 6 on the simulated Xen.
#
# One simulated hypervisor (gv-simxen), one RAM image (/dev/shm), and for each
# row a fresh gv-backend-bench (started the way that row needs) and a fresh guest
# (gv-xl create) in which gv-bench runs every workload through the frontend
# library. Rows, all through the same virtqueue and virtio-blk code:
#   direct           backend --bench-direct, guest --dma pool, app buffers in the pool
#   pool             guest --dma pool, app buffers in the pool (zero copy), map cache
#   bounce           guest --dma bounce (one copy in the guest), map cache
#   grant            guest --dma grant: map+unmap per request, one batch per direction
#                    (backend --grant-copy-max 0)
#   grant-copy       guest --dma grant, backend --grant-copy-max 131072: grant copy for
#                    requests up to 128 KiB (1 MiB ones are still mapped)
#   grant-unbatched  the same, backend --map-batch 1: one map call per page
#   memcpy           the copy limit: one core copying buffers of the same sizes
# then gv-grantops (one grant operation's cost per size, same gv-simxen) and
# gv-bench rss (gv-backend's memory over 10^6 requests).
# Then gv-bench report prints the table (ratios to direct), writes
# bench/out/results.json, and gnuplot draws bench/out/chart.png.
#
# Then the real-disk section (bench/disk.sh): the pair on an image on this
# machine's disk against fio on the same file, same run; then the multi-queue
# rows (bench/mq.sh): 4 KiB random read QD32 through 1 and 2 queues.
#
#   sh bench/run.sh [--quick] [--secs S] [--rows "direct pool ..."] [--no-disk | --disk-only]
#                   [--workloads "1m-seqread-qd2 ..."]
# --workloads runs only those workloads of each row and leaves out gv-grantops
# and the memory print (a short run for one question).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
B=${GV_BUILD:-$top/build}
out=$top/bench/out
SECS=3 WARM=0.3 quick=0 disk=1 ram=1 WORKLOADS=
ROWS="direct pool bounce grant grant-copy grant-unbatched"
cmdline="make bench${*:+ BENCH_ARGS=\"$*\"}"
while [ $# -gt 0 ]; do
	case $1 in
	--quick) SECS=0.6 WARM=0.1 quick=1 ;;
	--secs) SECS=${2:?--secs needs a value}; shift ;;
	--rows) ROWS=${2:?--rows needs a value}; shift ;;
	--workloads) WORKLOADS=${2:?--workloads needs a value}; shift ;;
	--no-disk) disk=0 ;;
	--disk-only) ram=0 ;;
	*) echo "usage: sh bench/run.sh [--quick] [--secs S] [--rows \"ROW...\"] [--no-disk|--disk-only] [--workloads \"W...\"]"
	   exit 2 ;;
	esac
	shift
done

if [ "$ram" = 0 ]; then
	exec sh "$top/bench/disk.sh" $([ "$quick" = 1 ] && echo --quick)
fi
for p in gv-simxen gv-backend-bench gv-xl gv-bench; do
	[ -x "$B/$p" ] || { echo "bench: $B/$p is missing: run make first"; exit 1; }
done
sh "$top/tools/install-deps.sh" --bench || echo "bench: gnuplot could not be installed: no chart"

mkdir -p "$out"
work=$(mktemp -d /tmp/gv-bench-XXXXXX)
export GV_PLATFORM=sim GV_SIM_DIR="$work/xen"
img_dir=/dev/shm; [ -d /dev/shm ] && [ -w /dev/shm ] || img_dir=$work
img=$(mktemp "$img_dir/gv-bench-disk-XXXXXX")
simpid= bepid= failed=0

cleanup() {
	[ -n "$bepid" ] && kill "$bepid" 2>/dev/null && wait "$bepid" 2>/dev/null
	[ -n "$simpid" ] && kill "$simpid" 2>/dev/null && wait "$simpid" 2>/dev/null
	rm -rf "$work" "$img"
}
trap cleanup EXIT INT TERM

. "$top/tools/lib.sh"

# The machine, printed with the results (and kept in the JSON).
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
machine="$cpu; $(nproc) cores online; $(uname -sr); $(sed -n 's/^MemTotal: *//p' /proc/meminfo) RAM; image on $(df -P "$img_dir" | awk 'NR==2 {print $1}') ($img_dir)"
echo "bench: $cmdline"
echo "machine: $machine"
nrows=$(echo $ROWS | wc -w)
echo "bench: $nrows rows x 8 workloads x ${SECS}s (+${WARM}s warm-up each), then memcpy"

# 1 GiB image in RAM; the random workloads cover its first 256 MiB.
truncate -s 1G "$img"
dd if=/dev/zero of="$img" bs=1M count=256 conv=notrunc status=none
start_daemon gv-simxen "$work/simxen.log"; simpid=$pid

results=$out/results.tsv
: > "$results"
i=0
for row in $ROWS; do
	i=$((i + 1))
	case $row in
	direct) be_args=--bench-direct fe_args="--dma pool --app-pool" ;;
	pool) be_args= fe_args="--dma pool --app-pool" ;;
	bounce) be_args= fe_args="--dma bounce" ;;
	grant) be_args="--grant-copy-max 0" fe_args="--dma grant" ;;
	grant-copy) be_args="--grant-copy-max 131072" fe_args="--dma grant" ;;
	grant-unbatched) be_args="--map-batch 1 --grant-copy-max 0" fe_args="--dma grant" ;;
	*) echo "bench: unknown row $row"; exit 2 ;;
	esac
	be_args="$be_args ${GV_BENCH_BE_ARGS:-}"
	echo "[$i/$nrows] $row: gv-backend-bench $be_args / gv-bench $fe_args"
	start_daemon gv-backend-bench "$work/backend-$row.log" --disk "bench-$row:0=$img${GV_BENCH_DISK_OPTS:-}" $be_args
	bepid=$pid
	cat > "$work/$row.cfg" <<-EOF
	name = "bench-$row"
	virtio = [ "backend=0,type=virtio,device2,transport=mmio,grant_usage=1" ]
	EOF
	domid=$("$B/gv-xl" create "$work/$row.cfg") || { echo "bench: gv-xl create failed"; exit 1; }
	GV_DOMID=$domid "$B/gv-bench" run "$row" $fe_args --secs "$SECS" --warm "$WARM" \
		--backend-pid "$bepid" --hv-pid "$simpid" ${WORKLOADS:+--workloads "$WORKLOADS"} >> "$results" || {
		echo "bench: row $row failed; backend log:"; tail -n 20 "$work/backend-$row.log"
		failed=1
	}
	"$B/gv-xl" destroy "bench-$row" >/dev/null || failed=1
	kill "$bepid"; wait "$bepid"; bepid=
done
echo "[memcpy] the copy limit, one core"
"$B/gv-bench" memcpy --secs "$SECS" >> "$results" || failed=1

# One grant operation's cost per size on this simulated Xen (docs/benchmarks.md,
# "How the simulation's costs relate to Xen's"), against its null round trip.
echo "[grantops] one grant operation per size"
grantops=
[ -n "$WORKLOADS" ] || grantops=$("$B/gv-grantops" --iters "$([ "$quick" = 1 ] && echo 200 || echo 1000)") ||
	{ echo "bench: gv-grantops failed"; failed=1; }

# Backend memory bounded: gv-backend's resident memory before and after many
# 4 KiB requests (a print, not a test): 10^6 through bounce (the map cache)
# and 10^6 through grant (grant copy; ~90 s here) (--quick: 10^5 each).
rss_lines=
rss_specs="bounce:${GV_BENCH_RSS_BOUNCE:-1000000} grant:${GV_BENCH_RSS_GRANT:-1000000}"
[ -z "$WORKLOADS" ] || rss_specs=
for spec in $rss_specs; do
	set -- ${spec%%:*} ${spec#*:}
	n=$2
	[ "$quick" = 1 ] && n=$((n / 10))
	echo "[rss] $1: $n requests"
	start_daemon gv-backend-bench "$work/backend-rss-$1.log" --disk "bench-rss-$1:0=$img"
	bepid=$pid
	printf 'name = "bench-rss-%s"\nvirtio = [ "backend=0,type=virtio,device2,transport=mmio,grant_usage=1" ]\n' \
		"$1" > "$work/rss-$1.cfg"
	domid=$("$B/gv-xl" create "$work/rss-$1.cfg") || { echo "bench: gv-xl create failed"; exit 1; }
	line=$(GV_DOMID=$domid "$B/gv-bench" rss "$1" --dma "$1" --backend-pid "$bepid" --size "$n") ||
		{ echo "bench: rss $1 failed"; tail -n 20 "$work/backend-rss-$1.log"; failed=1; }
	rss_lines="$rss_lines$line
"
	"$B/gv-xl" destroy "bench-rss-$1" >/dev/null || failed=1
	kill "$bepid"; wait "$bepid"; bepid=
done

"$B/gv-bench" report "$results" "$out/results.json" "$out/chart.dat" "$cmdline" "$machine" ||
	failed=1
printf '%s\n\n' "$grantops"
printf '%s' "$rss_lines"
echo "bench: $cmdline"
echo "machine: $machine"
echo "results: $out/results.json (raw lines: $results)"

if command -v gnuplot >/dev/null 2>&1; then
	title="grant-virtio on the simulated Xen: IOPS relative to direct (same run)"
	[ "$quick" = 1 ] && title="$title, --quick"
	nratio=$(head -n 1 "$out/chart.dat" | tr '\t' '\n' | grep -c -v -e '^workload$' -e '^memcpy$')
	nratio=$((nratio / 2))   # the row names appear twice: ratios, then MiB/s
	gnuplot -e "datafile='$out/chart.dat'; outfile='$out/chart.png'; charttitle='$title'; machine='$(echo "$machine" | tr -d "'")'; nratio=$nratio" \
		"$top/bench/chart.gp" && echo "chart: $out/chart.png"
fi
if [ "$disk" = 1 ]; then
	echo
	echo "bench: the real-disk section (bench/disk.sh)"
	sh "$top/bench/disk.sh" $([ "$quick" = 1 ] && echo --quick) || failed=1
fi
echo
echo "bench: the multi-queue rows (bench/mq.sh)"
sh "$top/bench/mq.sh" $([ "$quick" = 1 ] && echo --quick) $([ "$disk" = 0 ] && echo --no-disk) ||
	failed=1
[ "$failed" -eq 0 ] || { echo "bench: FAILED (see above)"; exit 1; }
