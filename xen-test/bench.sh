# xen-test/bench.sh: the benchmark scenario of `make xen-bench` (bench.list),
# sourced in dom0 after scenario-lib.sh and scenarios.sh.
#
# One guest, one dom0 ramdisk (brd, 256 MiB), two ways to it, measured in the
# same boot with the same workloads at queue depth 1:
#   blkfront       Linux's xen-blkfront in the guest, xen-blkback in dom0
#                  (a phy disk xvdb on /dev/ram0), O_DIRECT preads
#                  (build-xen/gv-rawread) of /dev/xvdb
#   pair-<dma>     gv-bench seqread --depth 1 in the guest (dma pool, grant,
#                  bounce), gv-backend in dom0 serving /dev/ram0
#   dom0-local     dom0's own O_DIRECT preads of /dev/ram0 (the ceiling)
# sc_xen_bench_kmod (second scenario of bench.list) is the guest kernel
# module's: workloads 4k-qd1, 64k-qd1, 4k-qd32, 64k-qd32 (O_DIRECT reads,
# QD32 = 32 threads of gv-dio read), rows
#   blkfront       xen-blkfront, gv-dio read of /dev/xvdb
#   kmod-<dma>     the guest's own virtio_blk over grant_virtio.ko (dma grant,
#                  bounce), gv-dio read of /dev/vda, gv-backend serving /dev/ram0
#   pair-pool      the user-space frontend, gv-bench seqread --dma pool
# sc_xen_bench_grant (third scenario) is the user-space `grant` strategy's
# backend choice, same workloads, two guests one after the other in the boot:
#   pair-grant-copy  gv-bench seqread --dma grant, gv-backend's default
#                    (--grant-copy-max 131072: these requests are grant-copied)
#   pair-grant-map   the same against gv-backend --grant-copy-max 0 (every
#                    request mapped and unmapped)
#   blkfront         in each guest, before its pair row (gv-dio read)
# Emulation (TCG) makes absolute figures meaningless; the ratios between rows
# of the same boot are what xen-test/bench-report.sh prints.
# Each result is one line on the console:
#   GV-BENCH <row> <workload> <MiB/s> <bytes per request>

# workload name, request size, bytes read
GV_BENCH_WORKLOADS='64k-seqread-qd1:64K:16M 1m-seqread-qd1:1M:32M 4k-seqread-qd1:4K:2M'
# Rounds: the first pass of each path pays its warm-up (blkback's persistent
# grants, the pair's map cache), so every row takes the best of three.
GV_BENCH_ROUNDS=${GV_BENCH_ROUNDS:-3}

# The guest's side, one shell command (it goes through xenstore's data/gv-cmd):
# load xen-blkfront, wait for /dev/xvdb, then per round and workload: blkfront
# first, then the pair with each DMA strategy. gv-bench seqread writes the
# region first (through gv-backend) and times only the reads, unchecked (pool:
# the buffers come from the granted pool, zero copy); blkfront reads
# the same ramdisk region. Lines "GVB <row> <workload> <tool output>", on
# the guest's console as they come (gv_guest_run's output includes it).
gv_bench_guest_cmd() {
	echo 'insmod /lib/modules/xen/xen-blkfront.ko; i=0;' \
	  'while [ ! -b /dev/xvdb ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done;' \
	  '[ -b /dev/xvdb ] || { echo "guest: no /dev/xvdb from xen-blkfront after 30 s"; exit 1; };' \
	  "k=0; while [ \$k -lt $GV_BENCH_ROUNDS ]; do k=\$((k + 1));" \
	  "for w in $GV_BENCH_WORKLOADS; do" 'n=${w%%:*}; r=${w#*:}; bs=${r%%:*}; sz=${r#*:};' \
	  'echo "GVB blkfront $n $(timeout 60 ./build-xen/gv-rawread /dev/xvdb $bs $sz 2>&1 | tail -n 1)" >/dev/console;' \
	  'for d in pool grant bounce; do ap=; [ $d = pool ] && ap=--app-pool;' \
	  'timeout 60 ./build-xen/gv-bench seqread --platform xen --devid 0 --dma $d $ap --size $sz --io-size $bs --depth 1 >/tmp/fe.out 2>&1;' \
	  'echo "GVB pair-$d $n $(grep "^bench: read" /tmp/fe.out || tail -n 1 /tmp/fe.out)" >/dev/console;' \
	  'done; done; done'
}

# Turns a "GVB row workload <output>" line into a GV-BENCH line, or reports
# the row as failed (MiB/s "-") with the tool's last line: GV-BENCH-TIMEOUT
# when the run was cut by its time limit (a slow row on a loaded machine is a
# figure, "-" in the table, not a failure), GV-BENCH-ERROR otherwise (the
# scenario fails).
gv_bench_line() {
	awk '
	/^GVB / {
		mibs = "-"
		if (match($0, /mibs=[0-9.]+/))
			mibs = substr($0, RSTART + 5, RLENGTH - 5)
		else if (match($0, /at [0-9.]+ MiB\/s/))
			mibs = substr($0, RSTART + 3, RLENGTH - 9)
		if (match($0, /bs=[0-9]+/))
			bs = substr($0, RSTART + 3, RLENGTH - 3)
		else if (match($0, /in [0-9]+-byte/))
			bs = substr($0, RSTART + 3, RLENGTH - 8)
		else
			bs = "-"
		print "GV-BENCH " $2 " " $3 " " mibs " " bs
		if (mibs == "-" && $0 ~ /(Terminated|Killed)$/)
			print "GV-BENCH-TIMEOUT " $0
		else if (mibs == "-")
			print "GV-BENCH-ERROR " $0
	}'
}

# dom0 reading its own ramdisk, every workload once: the local ceiling.
gv_bench_local() {
	for _w in $GV_BENCH_WORKLOADS; do
		_n=${_w%%:*} _r=${_w#*:}
		_bs=${_r%%:*} _sz=${_r#*:}
		echo "GVB dom0-local $_n $(timeout 60 ./build-xen/gv-rawread /dev/ram0 "$_bs" "$_sz" 2>&1 | tail -n 1)"
	done | gv_bench_line
}

# libxl's own block hotplug script (/etc/xen/scripts/block) needs bash and
# more tools than this busybox dom0 has. The disk names this one instead
# (script=): it does the part xen-blkback needs, the backend's
# physical-device (major:minor in hex, 1:0 for /dev/ram0), and tells libxl
# the device is connected. XENBUS_PATH is the vbd backend directory.
gv_bench_vbd_script() {
	cat >/tmp/gv-vbd-script <<'EOF'
#!/bin/sh
echo "gv-vbd-script $*: $XENBUS_PATH" >>/tmp/gv-vbd-script.log
[ "$1" = add ] || exit 0
/usr/bin/xenstore-write "$XENBUS_PATH/physical-device" 1:0 "$XENBUS_PATH/hotplug-status" connected
EOF
	chmod 755 /tmp/gv-vbd-script
}

# The dom0 side both scenarios share, idempotent (they run in one boot): the
# ramdisk (brd, 256 MiB), xen-blkback, and the vbd hotplug script. brd gives
# pages on first write and a never-written page reads as a cheap zero fill, so
# the whole disk is written once and every path reads real pages.
gv_bench_setup() {
	if [ ! -b /dev/ram0 ]; then
		insmod /lib/modules/xen/brd.ko rd_nr=1 rd_size=262144 || { echo "insmod brd failed"; return 1; }
		dd if=/dev/zero of=/dev/ram0 bs=1M count=256 2>/dev/null && sync || { echo "cannot fill /dev/ram0"; return 1; }
	fi
	grep -q '^xen_blkback ' /proc/modules ||
	  insmod /lib/modules/xen/xen-blkback.ko || { echo "insmod xen-blkback failed"; return 1; }
	gv_bench_vbd_script
}

# The guest's console as it comes, into the scenario's output (a run cut
# short by its time limit still shows how far it got), for at most $1 s.
gv_bench_console() {
	( timeout "$1" tail -F "/var/log/xen/console/guest-$GV_GUEST_NAME.log" 2>/dev/null | sed -u 's/^/console: /' ) &
}

sc_xen_bench() {
	[ -x ./build-xen/gv-rawread ] || { echo "gv-rawread was not built (see xen-test/out/build-xen.log)"; return 1; }
	[ -x ./build-xen/gv-backend ] && [ -x ./build-xen/gv-bench ] ||
	  { echo "gv-backend/gv-bench were not built"; return 1; }
	gv_bench_setup || return 1

	echo "--- dom0-local, before the guest"
	gv_bench_local

	gv_bg_start backend ./build-xen/gv-backend --platform xen --disk "$GV_GUEST_NAME:0=/dev/ram0"
	gv_wait_log backend 'serving' 20 || { gv_bg_log backend; return 1; }
	gv_bench_console 400
	GV_GUEST_TIMEOUT=300 gv_guest_run "$(gv_bench_guest_cmd)" \
	  'virtio = [ "backend=0,type=virtio,device2,transport=mmio,grant_usage=1" ]' \
	  'disk = [ "format=raw,vdev=xvdb,access=rw,script=/tmp/gv-vbd-script,target=/dev/ram0" ]' >/tmp/gv-bench-guest.out 2>&1
	_rc=$?
	cat /tmp/gv-bench-guest.out /tmp/gv-vbd-script.log 2>/dev/null
	tr -d '\r' </tmp/gv-bench-guest.out | gv_bench_line

	echo "--- dom0-local, after the guest"
	gv_bench_local
	[ -n "${GV_DOMID:-}" ] && gv_guest_destroy
	gv_bg_stop backend
	[ $_rc -eq 0 ] || { gv_bg_log backend | tail -n 20; gv_guest_reason; return 1; }
	! tr -d '\r' </tmp/gv-bench-guest.out | gv_bench_line | grep -q '^GV-BENCH-ERROR' ||
	  { echo "a benchmark row failed (GV-BENCH-ERROR above)"; return 1; }
}

# The guest kernel module against xen-blkfront and the user-space frontend, in
# one guest: blkfront first and last, then the module with dma=grant and
# dma=bounce, then gv-frontend (pool); two rounds each (medians).
gv_bench_kmod_guest_cmd() {
	echo 'insmod /lib/modules/xen/xen-blkfront.ko; i=0;' \
	  'while [ ! -b /dev/xvdb ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done;' \
	  '[ -b /dev/xvdb ] || { echo "guest: no /dev/xvdb from xen-blkfront after 30 s"; exit 1; };' \
	  'sh /gv/kmod-guest.sh bench blkfront /dev/xvdb 1 --' \
	  'load dma=grant -- wait_blk /dev/vda 268435456 -- bench kmod-grant /dev/vda 2 -- unload --' \
	  'load dma=bounce -- wait_blk /dev/vda 268435456 -- bench kmod-bounce /dev/vda 2 -- unload --' \
	  'bench blkfront /dev/xvdb 1 || exit 1;' \
	  'for w in 4k-qd1:4K:2M:1 64k-qd1:64K:32M:1 4k-qd32:4K:4M:32 64k-qd32:64K:64M:32; do' \
	  'n=${w%%:*}; r=${w#*:}; bs=${r%%:*}; r=${r#*:}; sz=${r%%:*}; qd=${r#*:};' \
	  'timeout 120 ./build-xen/gv-bench seqread --platform xen --devid 0 --dma pool --app-pool --size $sz --io-size $bs --depth $qd >/tmp/fe.out 2>&1;' \
	  'echo "GVB pair-pool $n $(grep "^bench: read" /tmp/fe.out || tail -n 1 /tmp/fe.out)" >/dev/console; done'
}

sc_xen_bench_kmod() {
	[ -x ./build-xen/gv-dio ] && [ -f /gv/guest/kmod ] || { echo "gv-dio or grant_virtio.ko was not built"; return 1; }
	gv_bench_setup || return 1
	gv_bg_start backend ./build-xen/gv-backend --platform xen --disk "$GV_GUEST_NAME:0=/dev/ram0"
	gv_wait_log backend 'serving' 20 || { gv_bg_log backend; return 1; }
	gv_bench_console 780
	GV_GUEST_TIMEOUT=700 gv_guest_run "$(gv_bench_kmod_guest_cmd)" \
	  'virtio = [ "backend=0,type=virtio,device2,transport=mmio,grant_usage=1" ]' \
	  'disk = [ "format=raw,vdev=xvdb,access=rw,script=/tmp/gv-vbd-script,target=/dev/ram0" ]' >/tmp/gv-bench-guest.out 2>&1
	_rc=$?
	cat /tmp/gv-bench-guest.out
	tr -d '\r' </tmp/gv-bench-guest.out | gv_bench_line
	[ -n "${GV_DOMID:-}" ] && gv_guest_destroy
	gv_bg_stop backend
	[ $_rc -eq 0 ] || { gv_bg_log backend | tail -n 20; gv_guest_reason; return 1; }
	! tr -d '\r' </tmp/gv-bench-guest.out | gv_bench_line | grep -q '^GV-BENCH-ERROR' ||
	  { echo "a benchmark row failed (GV-BENCH-ERROR above)"; return 1; }
}

# The grant strategy's backend choice (grant copy or map+unmap, issue 11):
# one guest per backend setting, each reading through blkfront and through
# gv-bench --dma grant at QD1 and QD32 (gv-bench keeps QD requests in flight
# in one process; gv-dio uses QD threads for blkfront), two rounds.
gv_bench_grant_guest_cmd() { # ROW
	echo 'insmod /lib/modules/xen/xen-blkfront.ko; i=0;' \
	  'while [ ! -b /dev/xvdb ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done;' \
	  '[ -b /dev/xvdb ] || { echo "guest: no /dev/xvdb from xen-blkfront after 30 s"; exit 1; };' \
	  'k=0; while [ $k -lt 2 ]; do k=$((k + 1));' \
	  'for w in 4k-qd1:4K:1M:1 64k-qd1:64K:8M:1 4k-qd32:4K:2M:32 64k-qd32:64K:16M:32; do' \
	  'n=${w%%:*}; r=${w#*:}; bs=${r%%:*}; r=${r#*:}; sz=${r%%:*}; qd=${r#*:};' \
	  'echo "GVB blkfront $n $(timeout 120 ./build-xen/gv-dio read /dev/xvdb $bs $sz $qd 2>&1 | tail -n 1)" >/dev/console;' \
	  'timeout 120 ./build-xen/gv-bench seqread --platform xen --devid 0 --dma grant --size $sz --io-size $bs --depth $qd >/tmp/fe.out 2>&1;' \
	  "echo \"GVB $1 \$n \$(grep \"^bench: read\" /tmp/fe.out || tail -n 1 /tmp/fe.out)\" >/dev/console; done; done"
}

sc_xen_bench_grant() {
	[ -x ./build-xen/gv-dio ] && [ -x ./build-xen/gv-backend ] && [ -x ./build-xen/gv-bench ] ||
	  { echo "gv-dio, gv-backend or gv-bench was not built"; return 1; }
	gv_bench_setup || return 1
	for _spec in pair-grant-copy: pair-grant-map:--grant-copy-max=0; do
		_row=${_spec%%:*} _opt=${_spec#*:}
		echo "--- $_row: gv-backend ${_opt:-(default)}"
		# both guests have the same name, hence the same console log: the
		# second guest's output must not carry the first one's lines
		: >"/var/log/xen/console/guest-$GV_GUEST_NAME.log" 2>/dev/null
		# shellcheck disable=SC2086
		gv_bg_start backend ./build-xen/gv-backend --platform xen $(echo "$_opt" | tr = ' ') \
		  --disk "$GV_GUEST_NAME:0=/dev/ram0"
		gv_wait_log backend 'serving' 20 || { gv_bg_log backend; return 1; }
		gv_bench_console 380
		GV_GUEST_TIMEOUT=360 gv_guest_run "$(gv_bench_grant_guest_cmd "$_row")" \
		  'virtio = [ "backend=0,type=virtio,device2,transport=mmio,grant_usage=1" ]' \
		  'disk = [ "format=raw,vdev=xvdb,access=rw,script=/tmp/gv-vbd-script,target=/dev/ram0" ]' >/tmp/gv-bench-guest.out 2>&1
		_rc=$?
		cat /tmp/gv-bench-guest.out
		tr -d '\r' </tmp/gv-bench-guest.out | gv_bench_line
		[ -n "${GV_DOMID:-}" ] && gv_guest_destroy
		gv_bg_stop backend
		gv_bg_log backend | grep -E 'requests' | tail -n 2
		[ $_rc -eq 0 ] || { gv_bg_log backend | tail -n 20; gv_guest_reason; return 1; }
		! tr -d '\r' </tmp/gv-bench-guest.out | gv_bench_line | grep -q '^GV-BENCH-ERROR' ||
		  { echo "a benchmark row failed (GV-BENCH-ERROR above)"; return 1; }
	done
}
