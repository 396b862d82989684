#!/bin/sh
# xen-test/kmod-guest.sh: the guest's side of the kernel module scenarios
# (sc_kmod_* in scenarios.sh); in the guest image as /gv/kmod-guest.sh, run
# through data/gv-cmd. The stock modules of the guest's kernel package and
# grant_virtio.ko are in /lib/modules/gv/.
#   kmod-guest.sh load [PARAMS]        insmod virtio_ring, virtio, virtio_blk, virtio-rng,
#                                      then grant_virtio PARAMS (drivers first: a xenbus
#                                      frontend's insmod waits up to 30 s for its devices
#                                      to connect, which they do only with a driver)
#   kmod-guest.sh wait_blk DEV BYTES   wait for DEV (60 s), check its size
#   kmod-guest.sh fs DEV               mke2fs, mount, random files, sync, umount,
#                                      remount, verify checksums, umount
#   kmod-guest.sh dio DEV              gv-dio verify (O_DIRECT sizes/offsets)
#   kmod-guest.sh rng                  /dev/hwrng is virtio and gives bytes
#   kmod-guest.sh counters             the module's sysfs counters, per device
#   kmod-guest.sh mq DEV N             virtio_blk runs DEV on N hardware queues (blk-mq:
#                                      /sys/block/DEV/mq has N entries; the guest needs
#                                      N vCPUs and the backend N queues)
#   kmod-guest.sh bench ROW DEV [N]    make xen-bench's O_DIRECT reads (gv-dio read)
#   kmod-guest.sh unload               rmmod the drivers and grant_virtio; the
#                                      module's own count of active grants was 0
#   kmod-guest.sh discard_info DEV     virtio_blk took VIRTIO_BLK_F_DISCARD through the
#                                      module: discard_max_bytes > 0
#   kmod-guest.sh tell KEY VALUE       xenstore data/KEY = VALUE, for dom0
#   kmod-guest.sh wait_ack VALUE       wait (120 s) for dom0's data/gv-ack = VALUE
#   kmod-guest.sh wait_size DEV BYTES  wait (90 s) until DEV has BYTES (online resize)
#   kmod-guest.sh last_sector DEV      write a marked last sector, read it back
#   kmod-guest.sh trim DEV MIB         ext2, a MIB MiB file, rm, fstrim; dom0 measures
#                                      the image between (data/kmod-step, data/gv-ack)
#   kmod-guest.sh mount_fs DEV         mke2fs, mount on /mnt, random files (left mounted:
#                                      the guest's shutdown must unmount it)
#   kmod-guest.sh across_save DEV      files on ext2 and a verified O_DIRECT loop running
#                                      while dom0 saves and restores the guest; waits for
#                                      dom0's data/kmod-go (written after the restore),
#                                      then stops the loop and verifies everything
#   kmod-guest.sh cycle N DMA PASSES RESUME
#                                      one cycle of the kernel-transport grant stress
#                                      (stress.sh, sc_grant_stress_kmod): load, I/O,
#                                      dom0's fault (unload mid-I/O, reload, resume), unload
# Several steps in one command: kmod-guest.sh load dma=bounce -- wait_blk /dev/vda 16777216 -- fs /dev/vda
M=/lib/modules/gv
t0=$(cut -d' ' -f1 /proc/uptime)

say() { echo "kmod: $*"; }
fail() { echo "kmod: FAIL: $*"; dmesg | grep -iE 'grant-virtio|virtio|gvk|vd[a-z]|xen:' | tail -n 15; exit 1; }
since() { awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.2f", b - a }'; }

do_load() {
	for m in virtio_ring virtio; do
		grep -q "^$m " /proc/modules || insmod "$M/$m.ko" || fail "insmod $m"
	done
	grep -q "^virtio_blk " /proc/modules || insmod "$M/virtio_blk.ko" || fail "insmod virtio_blk"
	grep -q "^virtio_rng " /proc/modules || insmod "$M/virtio-rng.ko" || fail "insmod virtio-rng"
	t0=$(cut -d' ' -f1 /proc/uptime)
	insmod "$M/grant_virtio.ko" "$@" || fail "insmod grant_virtio $*"
	say "modules loaded ($*); insmod grant_virtio took $(since) s"
}

do_wait_blk() { # DEV BYTES
	i=0
	while [ ! -b "$1" ]; do
		i=$((i + 1)); [ $i -le 600 ] || fail "no $1 after 60 s"
		sleep 0.1
	done
	sz=$(blockdev --getsize64 "$1") || fail "blockdev $1"
	[ "$sz" = "$2" ] || fail "$1 has $sz bytes, expected $2"
	say "$1 appeared with $sz bytes, +$(since) s after the modules were loaded (guest uptime $(cut -d' ' -f1 /proc/uptime) s)"
}

do_wait_two() { # DEV1 DEV2 BYTES1 BYTES2: both appear, sizes as a set (probe order may vary)
	i=0
	while [ ! -b "$1" ] || [ ! -b "$2" ]; do
		i=$((i + 1)); [ $i -le 600 ] || fail "no $1 and $2 after 60 s"
		sleep 0.1
	done
	got=$(for d in "$1" "$2"; do blockdev --getsize64 "$d"; done | sort -n | tr '\n' ' ')
	want=$(printf '%s\n' "$3" "$4" | sort -n | tr '\n' ' ')
	[ "$got" = "$want" ] || fail "$1 and $2 have sizes $got, expected $want"
	say "$1 and $2 appeared with sizes $got"
}

# The backend refuses (dma=bypass): its reason is in the kernel log.
do_expect_refused() {
	i=0
	until dmesg | grep -q 'the backend refused the device'; do
		i=$((i + 1)); [ $i -le 600 ] || fail "no refusal in the kernel log after 60 s"
		sleep 0.1
	done
	dmesg | grep 'the backend refused the device' | tail -n 1
	dmesg | grep 'the backend refused the device' | grep -q 'VIRTIO_F_ACCESS_PLATFORM' ||
	  fail "the refusal does not give the backend's reason"
	[ ! -b /dev/vda ] || fail "/dev/vda exists although the device was refused"
	say "bypass refused, with the backend's reason in the kernel log"
}

# xenbus holds a reference on a frontend module while a device is bound to
# it: unbind every device, then rmmod.
unbind_all() {
	for d in /sys/bus/xen/drivers/grant-virtio/virtio-* /sys/bus/xen/drivers/grant-virtio/virtio_disk-*; do
		[ -e "$d" ] || continue
		echo "${d##*/}" >/sys/bus/xen/drivers/grant-virtio/unbind || fail "unbind ${d##*/}"
	done
}

# rmmod the transport only and load it again with PARAMS
do_reload() {
	unbind_all
	rmmod grant_virtio || fail "rmmod grant_virtio"
	insmod "$M/grant_virtio.ko" "$@" || fail "insmod grant_virtio $*"
	say "grant_virtio reloaded ($*)"
}

# O_DIRECT writes in a loop; each pass counted in xenstore (data/kmod-pass)
# for dom0, which destroys the guest or kills the backend meanwhile.
# With "until_error": stops at the first failed write and checks what the
# guest saw; otherwise runs until the guest is destroyed.
do_hammer() { # DEV [until_error]
	n=0
	while [ $n -lt 100000 ]; do
		if ! dd if=/dev/urandom of="$1" bs=64k count=32 oflag=direct 2>/tmp/dd.err; then
			[ "$2" = until_error ] || fail "write error on $1: $(cat /tmp/dd.err)"
			say "pass $((n + 1)) failed: $(grep -v records /tmp/dd.err | head -n 1)"
			dmesg | grep -E 'backend went away|no backend took|backend gone|I/O error' | head -n 5
			dmesg | grep -q 'backend went away' || fail "write failed but the module saw no backend death"
			# new I/O fails fast, it does not hang
			t=$(cut -d' ' -f1 /proc/uptime)
			if timeout 20 dd if="$1" of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null; then
				fail "a read after the backend died succeeded"
			fi
			say "a new read fails in $(awk -v a="$t" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.2f", b - a }') s"
			return 0
		fi
		n=$((n + 1))
		xenstore-write data/kmod-pass "$n"
	done
	fail "no write error after $n passes"
}

load_ext4() {
	for m in crc16 mbcache jbd2 crc32c_generic ext4; do
		insmod "$M/$m.ko" 2>/dev/null || grep -q "^${m} " /proc/modules || fail "insmod $m"
	done
}

do_fs() { # DEV
	do_mount_fs "$1"
	umount /mnt || fail "umount"
	# drop whatever the page cache still holds of the device
	echo 3 >/proc/sys/vm/drop_caches
	mount -t ext2 "$1" /mnt || fail "remount $1"
	(cd /mnt && md5sum -c /tmp/sums) >/tmp/check 2>&1 || { cat /tmp/check; fail "checksums differ after remount"; }
	umount /mnt || fail "umount after check"
	say "fs on $1: $(wc -l </tmp/sums) random files written, remounted, checksums verified"
}

do_dio() { # DEV
	/gv/build-xen/gv-dio verify "$1" >/tmp/dio 2>&1 || { tail -n 3 /tmp/dio; fail "O_DIRECT verify on $1"; }
	tail -n 1 /tmp/dio
}

# ext2 on DEV with random files, left mounted on /mnt (sums in /tmp/sums)
do_mount_fs() { # DEV
	load_ext4
	mke2fs -q "$1" >/tmp/mke2fs.out 2>&1 || { cat /tmp/mke2fs.out; fail "mke2fs $1"; }
	mkdir -p /mnt
	mount -t ext2 "$1" /mnt || fail "mount $1"
	for i in 1 2 3 4; do
		dd if=/dev/urandom of=/mnt/file$i bs=1k count=$((i * 100 + 7)) 2>/dev/null || fail "write /mnt/file$i"
	done
	(cd /mnt && md5sum file*) >/tmp/sums
	sync
	say "ext2 on $1 mounted on /mnt with $(wc -l </tmp/sums) random files"
}

# One pass a loop: 1 MiB of random data written with O_DIRECT to a file of
# /mnt, read back with O_DIRECT and compared; passes counted in xenstore
# (data/kmod-pass). Stops after the pass during which /tmp/stop appeared;
# /tmp/io.rc: 0, or 1 after the first error (its reason in /tmp/io.err).
io_loop() {
	n=0
	dd if=/dev/urandom of=/tmp/pat bs=64k count=16 2>/dev/null
	while [ ! -e /tmp/stop ]; do
		n=$((n + 1))
		if ! dd if=/tmp/pat of=/mnt/loop bs=64k oflag=direct 2>/tmp/dd.err ||
		   ! dd if=/mnt/loop of=/tmp/back bs=64k iflag=direct 2>>/tmp/dd.err; then
			echo "pass $n: $(grep -v records /tmp/dd.err | head -n 1)" >/tmp/io.err
			echo 1 >/tmp/io.rc; return 1
		fi
		cmp -s /tmp/pat /tmp/back || { echo "pass $n: data read back differs" >/tmp/io.err; echo 1 >/tmp/io.rc; return 1; }
		xenstore-write data/kmod-pass "$n"
		# the next pass with other data
		dd if=/dev/urandom of=/tmp/pat bs=64k count=1 conv=notrunc seek=$((n % 16)) 2>/dev/null
	done
	echo "$n" >/tmp/io.passes
	echo 0 >/tmp/io.rc
}

do_across_save() { # DEV
	do_mount_fs "$1"
	rm -f /tmp/stop /tmp/io.rc /tmp/io.err
	io_loop &
	loop=$!
	say "O_DIRECT loop running (pid $loop); waiting for dom0's data/kmod-go"
	i=0
	until [ "$(xenstore-read data/kmod-go 2>/dev/null)" = 1 ]; do
		i=$((i + 1))
		[ $i -le 3000 ] || { touch /tmp/stop; fail "no data/kmod-go from dom0 after 300 s"; }
		[ -e /tmp/io.rc ] && { cat /tmp/io.err; fail "the O_DIRECT loop stopped before dom0 said go"; }
		sleep 0.1
	done
	say "guest is domain $(xenstore-read domid) now"
	touch /tmp/stop
	wait "$loop"
	[ "$(cat /tmp/io.rc 2>/dev/null)" = 0 ] || fail "O_DIRECT loop: $(cat /tmp/io.err 2>/dev/null)"
	say "O_DIRECT loop: $(cat /tmp/io.passes) passes written, read back and compared, none failed"
	(cd /mnt && md5sum -c /tmp/sums) >/tmp/check 2>&1 || { cat /tmp/check; fail "checksums differ after the restore"; }
	umount /mnt || fail "umount"
	echo 3 >/proc/sys/vm/drop_caches
	mount -t ext2 "$1" /mnt || fail "remount $1"
	(cd /mnt && md5sum -c /tmp/sums) >/tmp/check 2>&1 || { cat /tmp/check; fail "checksums differ after a remount"; }
	umount /mnt || fail "umount after check"
	say "files written before the save verified after the restore and after a remount"
	dmesg | grep -E 'grant-virtio|vbd|virtio-[0-9]' | grep -E 'restored|connected|closed|in flight' | tail -n 6
}

# after backend restarts (sc_kmod_backend_restart): device DEVID was taken
# over N times and the kernel saw no I/O error
do_expect_restarts() { # DEVID N
	r=$(cat "/sys/bus/xen/devices/virtio-$1/gvk_backend_restarts") || fail "no takeover counter for virtio-$1"
	[ "$r" = "$2" ] || fail "virtio-$1 was taken over $r times, expected $2"
	if dmesg | grep -qE 'I/O error|fail with I/O errors|still in flight'; then
		dmesg | grep -E 'I/O error|fail with I/O errors|still in flight' | head -n 5
		fail "I/O errors in the kernel log"
	fi
	say "virtio-$1 taken over $r times by a new backend, no I/O error in the kernel log"
}

# fs on whichever vd* has BYTES (probe order may vary)
do_fs_size() {
	for d in /dev/vd?; do
		[ "$(blockdev --getsize64 "$d")" = "$1" ] && { do_fs "$d"; return; }
	done
	fail "no /dev/vd? of $1 bytes"
}

do_dio_all() {
	for d in /dev/vd?; do do_dio "$d"; done
}

do_rng() {
	cur=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)
	case "$cur" in virtio_rng*) ;; *) fail "hw_random's current rng is \"$cur\", not virtio_rng" ;; esac
	n=$(dd if=/dev/hwrng bs=64 count=1 2>/dev/null | wc -c)
	[ "$n" = 64 ] || fail "/dev/hwrng gave $n bytes, not 64"
	say "/dev/hwrng ($cur) gave 64 bytes: $(dd if=/dev/hwrng bs=8 count=1 2>/dev/null | od -An -tx1 | tr -d ' ')"
}

do_mq() { # DEV N
	mq=/sys/block/$(basename "$1")/mq
	n=$(ls "$mq" 2>/dev/null | wc -l)
	[ "$n" = "$2" ] || fail "$1 has $n blk-mq hardware queues ($mq), expected $2 (vCPUs: $(nproc))"
	say "$1: $n hardware queues (vCPUs $(nproc)): $(for q in "$mq"/*; do printf '%s:cpus %s ' "$(basename "$q")" "$(cat "$q/cpu_list")"; done)"
}

do_counters() {
	for d in /sys/bus/xen/devices/virtio-* /sys/bus/xen/devices/virtio_disk-*; do
		[ -e "$d/gvk_grants_active" ] || continue
		say "$(basename "$d"): dma $(cat "$d/gvk_dma_strategy"), grants active $(cat "$d/gvk_grants_active"),"\
" leaked $(cat "$d/gvk_grants_leaked"), bounced $(cat "$d/gvk_bounced_bytes") bytes, map errors $(cat "$d/gvk_map_errors"),"\
" backend restarts $(cat "$d/gvk_backend_restarts")"
	done
}

do_unload() {
	do_counters
	unbind_all
	rmmod grant_virtio || fail "rmmod grant_virtio"
	rmmod virtio_blk virtio-rng 2>/dev/null || rmmod virtio_blk virtio_rng || fail "rmmod drivers"
	dmesg | grep 'removed: grants active' >/tmp/removed
	cat /tmp/removed
	[ -s /tmp/removed ] || fail "grant_virtio logged no removal"
	! grep -v 'grants active 0, leaked 0' /tmp/removed | grep -q . || fail "grants left after unload"
	say "unloaded: every device ended all its grants"
}

do_discard_info() { # DEV
	q=/sys/block/$(basename "$1")/queue
	dmb=$(cat "$q/discard_max_bytes") || fail "no $q/discard_max_bytes"
	[ "$dmb" -gt 0 ] || fail "$1: discard_max_bytes is 0: virtio_blk did not get VIRTIO_BLK_F_DISCARD"
	say "$1: discard_max_bytes $dmb, discard_granularity $(cat "$q/discard_granularity"), write_zeroes_max_bytes $(cat "$q/write_zeroes_max_bytes")"
}

do_tell() { # KEY VALUE
	xenstore-write "data/$1" "$2" || fail "xenstore-write data/$1"
}

# dom0 answers a step in data/gv-ack (120 s)
do_wait_ack() { wait_ack "$@"; }
wait_ack() { # VALUE
	i=0
	until [ "$(xenstore-read data/gv-ack 2>/dev/null)" = "$1" ]; do
		i=$((i + 1)); [ $i -le 1200 ] || fail "dom0 did not acknowledge \"$1\" in 120 s"
		sleep 0.1
	done
}

# Online resize: dom0 grows the image and sends gv-backend --resize; the
# module raises virtio's config change and virtio_blk resizes the disk.
do_wait_size() { # DEV BYTES
	t=$(cut -d' ' -f1 /proc/uptime)
	i=0
	until [ "$(blockdev --getsize64 "$1")" = "$2" ]; do
		i=$((i + 1)); [ $i -le 900 ] || fail "$1 has $(blockdev --getsize64 "$1") bytes after 90 s, not $2"
		sleep 0.1
	done
	say "$1 now has $2 bytes ($(cat /sys/block/$(basename "$1")/size) sectors), seen after $(awk -v a="$t" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }') s of waiting"
	dmesg | grep -E 'config change|capacity change|new size' | tail -n 3
}

do_last_sector() { # DEV
	n=$(cat /sys/block/$(basename "$1")/size)
	printf 'gv-last-sector-%s' "$n" | dd of="$1" bs=512 seek=$((n - 1)) conv=sync,fsync 2>/dev/null ||
		fail "writing sector $((n - 1)) of $1"
	blockdev --flushbufs "$1"
	echo 3 >/proc/sys/vm/drop_caches
	got=$(dd if="$1" bs=512 skip=$((n - 1)) count=1 2>/dev/null | tr -d '\000')
	[ "$got" = "gv-last-sector-$n" ] || fail "sector $((n - 1)) reads back as \"$got\""
	# one past the end does not exist
	[ "$(dd if="$1" bs=512 skip="$n" count=1 2>/dev/null | wc -c)" = 0 ] || fail "$1 reads past sector $((n - 1))"
	say "last sector $((n - 1)) of $1 written and read back"
}

do_trim() { # DEV MIB
	for m in crc16 mbcache jbd2 crc32c_generic ext4; do
		insmod "$M/$m.ko" 2>/dev/null || grep -q "^${m} " /proc/modules || fail "insmod $m"
	done
	mke2fs -q "$1" >/tmp/mke2fs.out 2>&1 || { cat /tmp/mke2fs.out; fail "mke2fs $1"; }
	mkdir -p /mnt
	mount -t ext2 "$1" /mnt || fail "mount $1"
	dd if=/dev/urandom of=/mnt/big bs=1M count="$2" 2>/dev/null || fail "write /mnt/big"
	sync
	say "ext2 on $1 with a $2 MiB file: $(df -k /mnt | awk 'NR == 2 { print $3 }') KiB used"
	do_tell kmod-step written; wait_ack written
	rm /mnt/big
	sync
	out=$(fstrim -v /mnt 2>&1) || fail "fstrim /mnt: $out"
	say "fstrim: $out"
	do_tell kmod-step trimmed; wait_ack trimmed
	umount /mnt || fail "umount"
}

# make xen-bench: O_DIRECT reads of DEV (gv-dio read) at 4 KiB and 64 KiB,
# queue depth 1 and 32, ROUNDS times; one line per run for bench.sh, on the
# console as it comes (a run cut short still leaves its lines in dom0's log):
#   GVB <row> <workload> <gv-dio output>
do_bench() { # ROW DEV [ROUNDS]
	k=0
	while [ $k -lt "${3:-3}" ]; do
		k=$((k + 1))
		for w in 4k-qd1:4K:2M:1 64k-qd1:64K:32M:1 4k-qd32:4K:4M:32 64k-qd32:64K:64M:32; do
			n=${w%%:*}; r=${w#*:}; bs=${r%%:*}; r=${r#*:}; sz=${r%%:*}; qd=${r#*:}
			echo "GVB $1 $n $(timeout 120 /gv/build-xen/gv-dio read "$2" "$bs" "$sz" "$qd" 2>&1 | tail -n 1)" >/dev/console
		done
	done
}

# PASSES passes of 256 KiB of random data written with O_DIRECT to DEV at
# 1 MiB + (pass % 8) * 256 KiB, read back with O_DIRECT and compared; each
# pass counted in xenstore data/KEY. Stops early once /tmp/stop exists.
# Leaves /tmp/io.passes, /tmp/io.rc: 0, or 1 after the first error
# (/tmp/io.err). The device node is checked before each pass: once the disk
# is gone, a dd to /dev/vda would create a regular file in devtmpfs.
blk_passes() { # DEV PASSES KEY
	n=0
	dd if=/dev/urandom of=/tmp/pat bs=64k count=4 2>/dev/null
	while [ $n -lt "$2" ] && [ ! -e /tmp/stop ]; do
		off=$((16 + (n % 8) * 4))
		n=$((n + 1))
		if [ ! -b "$1" ]; then
			echo "pass $n: $1 is gone" >/tmp/io.err
		elif ! dd if=/tmp/pat of="$1" bs=64k seek=$off oflag=direct conv=notrunc 2>/tmp/dd.err ||
		     ! dd if="$1" of=/tmp/back bs=64k skip=$off count=4 iflag=direct 2>>/tmp/dd.err; then
			echo "pass $n: $(grep -v records /tmp/dd.err | head -n 1)" >/tmp/io.err
		elif [ "$(wc -c </tmp/back)" != 262144 ]; then
			# a disk being removed has capacity 0: reads end at once
			echo "pass $n: the read back got $(wc -c </tmp/back) bytes of 262144 (the disk's capacity: $(cat /sys/block/$(basename "$1")/size 2>/dev/null || echo gone) sectors)" >/tmp/io.err
		elif ! cmp -s /tmp/pat /tmp/back; then
			echo "pass $n: the data read back differs" >/tmp/io.err
		else
			xenstore-write "data/$3" "$n"
			dd if=/dev/urandom of=/tmp/pat bs=64k count=1 conv=notrunc seek=$((n % 4)) 2>/dev/null
			continue
		fi
		echo $((n - 1)) >/tmp/io.passes; echo 1 >/tmp/io.rc; return 1
	done
	echo "$n" >/tmp/io.passes; echo 0 >/tmp/io.rc
}

# waits (SECS) for FILE to exist
wait_file() { # FILE SECS
	i=0
	until [ -e "$1" ]; do
		i=$((i + 1)); [ $i -le $(($2 * 10)) ] || return 1
		sleep 0.1
	done
}

# the removal the module logged last: every grant ended, none leaked
last_removal_clean() {
	r=$(dmesg | grep 'removed: grants active' | tail -n 1)
	[ -n "$r" ] || fail "grant_virtio logged no removal"
	case "$r" in *"grants active 0, leaked 0"*) ;; *) fail "grants left at unload: $r" ;; esac
}

kernel_log_clean() {
	if dmesg | grep -qE 'BUG:|WARNING:|Oops|general protection|Call Trace'; then
		dmesg | grep -E -A 12 'BUG:|WARNING:|Oops|general protection' | head -n 30
		fail "the kernel log has a BUG, WARNING or Oops"
	fi
}

# unbind every device of the module and remove it; $ut: the seconds it took
unload_transport() {
	t=$(cut -d' ' -f1 /proc/uptime)
	unbind_all
	rmmod grant_virtio || fail "rmmod grant_virtio"
	ut=$(awk -v a="$t" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.2f", b - a }')
}

# One cycle of the kernel-transport grant stress (stress.sh, GVS_TRANSPORT=kmod),
# command N of the guest's stress loop. grant_virtio dma=DMA loaded, /dev/vda
# waited for; region A (256 KiB of random data at offset 0) written, its md5
# kept; then PASSES verified passes (blk_passes) in the background while
# waiting for dom0's data/gvs-fault-N:
#   unload   the module is unloaded while the passes run and an 8 MiB
#            O_DIRECT write has requests in flight: the disk unbound and
#            grant_virtio removed (the block layer drains what is in flight
#            before the disk goes; the write and the pass on the vanishing disk
#            then fail, or the disk is gone for the next pass: that is the
#            fault, not an error). The
#            removal must count 0 grants active, 0 leaked. Tells dom0
#            (data/gvs-unloaded-N) and waits for its ack (data/gvs-ack-N),
#            given after dom0 checked Xen's grant dump; loads the module
#            again: region A must read back unchanged, RESUME passes must pass.
#   (none)   every pass must pass (across a backend restart, too).
# Ends with the cycle's detach: unbind and rmmod, 0 grants left; no BUG,
# WARNING or Oops in the kernel log.
do_cycle() { # N DMA PASSES RESUME
	n=$1 dma=$2
	rm -f /tmp/stop /tmp/io.rc /tmp/io.err /tmp/io.passes
	do_load dma="$dma"
	do_wait_blk /dev/vda 16777216
	dd if=/dev/urandom of=/tmp/a bs=64k count=4 2>/dev/null
	dd if=/tmp/a of=/dev/vda bs=64k oflag=direct conv=notrunc 2>/dev/null || fail "writing region A"
	asum=$(md5sum </tmp/a | cut -d' ' -f1)
	blk_passes /dev/vda "$3" "gvs-pass-$n" &
	loop=$!
	f=
	until [ -e /tmp/io.rc ]; do
		f=$(xenstore-read "data/gvs-fault-$n" 2>/dev/null) && break
		timeout 2 xenstore-watch -n 2 "data/gvs-fault-$n" >/dev/null 2>&1
	done
	if [ "$f" = unload ]; then
		p=$(xenstore-read "data/gvs-pass-$n" 2>/dev/null || echo 0)
		# O_DIRECT writes of 8 MiB (4-12 MiB, outside the passes' region)
		# in a loop until one fails, and the unbind as soon as the disk
		# has a request in flight (polled with shell builtins only, bounded
		# by 2000 reads), so that the unload meets requests in flight
		(while [ -b /dev/vda ] && dd if=/dev/zero of=/dev/vda bs=1M seek=4 count=8 oflag=direct conv=notrunc 2>/tmp/big.err; do :; done) &
		big=$!
		i=0
		while read -r ir iw </sys/block/vda/inflight && [ "$ir$iw" = 00 ] && [ $i -lt 2000 ]; do i=$((i + 1)); done
		unload_transport
		inf="$ir $iw"
		wait "$big"; bigrc=$?
		touch /tmp/stop
		wait_file /tmp/io.rc 60 || fail "the passes did not end within 60 s of the unload"
		wait "$loop"
		last_removal_clean
		if [ "$(cat /tmp/io.rc)" = 0 ]; then how="the passes ended without error"; else how="$(cat /tmp/io.err)"; fi
		[ -e /dev/vda ] && [ ! -b /dev/vda ] && rm -f /dev/vda
		bigout="the 8 MiB writes: $(grep -v records /tmp/big.err | head -n 1 | sed 's/^$/ended/')"
		info="unloaded after pass $p, in flight (read write) $inf, unbind+rmmod $ut s, $bigout; the passes: $how"
		say "$info"
		xenstore-write "data/gvs-unloaded-$n" "$info"
		i=0
		until xenstore-exists "data/gvs-ack-$n" 2>/dev/null; do
			i=$((i + 1)); [ $i -le 120 ] || fail "no ack from dom0 after 120 s"
			timeout 2 xenstore-watch -n 2 "data/gvs-ack-$n" >/dev/null 2>&1
		done
		t0=$(cut -d' ' -f1 /proc/uptime)
		insmod "$M/grant_virtio.ko" dma="$dma" || fail "insmod grant_virtio dma=$dma (reload)"
		do_wait_blk /dev/vda 16777216
		[ "$(dd if=/dev/vda bs=64k count=4 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)" = "$asum" ] ||
			fail "region A written before the unload reads back differently after the reload"
		rm -f /tmp/stop /tmp/io.rc
		blk_passes /dev/vda "$4" "gvs-pass-$n" || fail "after the reload: $(cat /tmp/io.err)"
		say "reloaded: region A unchanged; resumed: $(cat /tmp/io.passes) passes verified"
	else
		wait "$loop"
		[ "$(cat /tmp/io.rc)" = 0 ] || fail "$(cat /tmp/io.err)"
		[ "$(dd if=/dev/vda bs=64k count=4 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)" = "$asum" ] ||
			fail "region A reads back differently"
	fi
	do_counters
	unload_transport
	last_removal_clean
	kernel_log_clean
	say "passes: $(cat /tmp/io.passes) of 256 KiB verified, dma $dma, region A verified, detached (unbind+rmmod $ut s, 0 grants left)"
}

# steps separated by --
while [ $# -gt 0 ]; do
	step=$1; shift
	args=""
	while [ $# -gt 0 ] && [ "$1" != -- ]; do args="$args $1"; shift; done
	[ $# -gt 0 ] && shift
	# shellcheck disable=SC2086
	"do_$step" $args || exit 1
done
say "done"
