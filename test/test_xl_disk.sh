#!/bin/sh
# test/test_xl_disk.sh: disks from xl's own syntax on the simulated Xen,
# disk = [ "vdev=xvda,access=rw,specification=virtio,backendtype=standalone,
# grant_usage=1,target=PATH" ]: gv-xl writes what libxl 4.20 writes
# (backend/virtio_disk, xenstore-schema/virtio-disk-standalone.md) and waits
# for InitWait as libxl does; gv-backend serves PATH when it lies under an
# xl-disk-dir; the user-space frontend (--xl-disk) writes and reads it, and
# the bytes land in PATH. Refusals, each with the backend's error text in
# gv-xl's failure: grant_usage=0 (libxl's default for a dom0 backend), a
# target outside every xl-disk-dir (directly and through a symlink), and a
# backend configured with no xl-disk-dir. gv-schema checks the live store.
# PASS/FAIL lines for test/run-tests.sh; every wait bounded, no sleeps.
set -u
B=${GV_BUILD:-build}
. "$(dirname "$0")/lib.sh"
gv_test_init xldisk
start() { # start NAME LOG ARGS...: background with --ready-fd; sets pid
	name=$1 log=$2; shift 2
	mkfifo "$work/ready"
	"$B/$name" "$@" --ready-fd 9 9>"$work/ready" 2>>"$log" &
	pid=$!
	timeout 10 head -c 1 "$work/ready" >/dev/null || { echo "FAIL $name did not start"; cat "$log"; exit 1; }
	rm -f "$work/ready"
}
xsread() { XENSTORED_PATH="$GV_SIM_DIR/dom0/xenstored" xenstore-read "$1" 2>/dev/null; }
cfg() { # cfg FILE NAME DISKSPEC
	printf 'name = "%s"\ntype = "pv"\ndisk = [ "%s" ]\n' "$2" "$3" > "$1"
}
spec="vdev=xvda,format=raw,access=rw,specification=virtio,backendtype=standalone"

mkdir -p "$work/images" "$work/other"
truncate -s 6M "$work/images/disk.img"
truncate -s 1M "$work/other/secret.img"
ln -s ../other/secret.img "$work/images/escape.img"

# ---- the allow-list in the configuration: --check-config reports it -------
printf 'xl-disk-dir %s\nxl-disk-dir %s/missing\nxl-disk-dir relative\n' "$work/images" "$work" > "$work/bad.conf"
out=$("$B/gv-backend" --check-config --config "$work/bad.conf" 2>&1); rc=$?
check check_config_relative_dir sh -c '[ "$2" -eq 1 ] && echo "$1" | grep -q "bad.conf:3: xl-disk-dir relative: expected an absolute directory"' sh "$out" "$rc"
sed -i '/relative/d' "$work/bad.conf"
out=$("$B/gv-backend" --check-config --config "$work/bad.conf" 2>&1); rc=$?
check check_config_missing_dir sh -c '[ "$2" -eq 1 ] && echo "$1" | grep -q "bad.conf:2: xl-disk-dir .*/missing: No such file"' sh "$out" "$rc"
printf 'xl-disk-dir %s\n' "$work/images" > "$work/be.conf"
out=$("$B/gv-backend" --check-config --config "$work/be.conf" 2>&1); rc=$?
check check_config_dir_ok sh -c '[ "$2" -eq 0 ] && echo "$1" | grep -q "^xl-disk-dir $3 "' sh "$out" "$rc" "$work/images"

start gv-simxen "$work/sim.log"; simpid=$pid
start gv-backend "$work/be.log" --config "$work/be.conf" --control none; bepid=$pid

# ---- a guest with an xl disk: created, served, written, read ----------------
cfg "$work/g1.cfg" xg1 "$spec,grant_usage=1,target=$work/images/disk.img"
dom=$("$B/gv-xl" create "$work/g1.cfg" 2>"$work/xl.err"); rc=$?
check create_with_xl_disk_ok [ "$rc" -eq 0 ]
be=/local/domain/0/backend/virtio_disk/$dom/51712
fe=/local/domain/$dom/device/virtio_disk/51712
keys_ok() {
	[ "$(xsread "$be/params")" = "$work/images/disk.img" ] &&
	[ "$(xsread "$be/type")" = standalone ] && [ "$(xsread "$be/specification")" = virtio ] &&
	[ "$(xsread "$be/mode")" = w ] && [ "$(xsread "$be/dev")" = xvda ] &&
	[ "$(xsread "$be/grant_usage")" = 1 ] &&
	[ "$(xsread "$fe/virtual-device")" = 51712 ] && [ "$(xsread "$fe/backend")" = "$be" ]
}
check libxl_keys_written keys_ok
check backend_initwait [ "$(xsread "$be/state")" = 2 ]
check capacity_of_target [ "$(xsread "$be/config/capacity")" = 12288 ]
out=$(GV_DOMID=$dom "$B/gv-frontend" --xl-disk 51712 info 2>&1)
check frontend_info_capacity sh -c 'echo "$1" | grep -q "12288"' sh "$out"
out=$(GV_DOMID=$dom "$B/gv-frontend" --xl-disk 51712 --dma grant verify --size 2M 2>&1); rc=$?
check frontend_verify_grant sh -c '[ "$2" -eq 0 ]' sh "$out" "$rc" || echo "$out"
printf 'xl-disk-marker-5' | GV_DOMID=$dom "$B/gv-frontend" --xl-disk 51712 write --offset 4194304 >/dev/null 2>&1
check bytes_land_in_target sh -c '[ "$(dd if="$1" bs=1 skip=4194304 count=16 2>/dev/null)" = xl-disk-marker-5 ]' \
	sh "$work/images/disk.img"
out=$(GV_DOMID=$dom "$B/gv-frontend" --xl-disk 51712 read --offset 4194304 --length 16 --raw 2>"$work/fe.err")
check frontend_reads_back [ "$(printf "%s" "$out" | head -c 16)" = xl-disk-marker-5 ]
check served_from_xl_config grep -q "xl disk 51712: disk $work/images/disk.img (read-write" "$work/be.log"
out=$("$B/gv-schema" 2>&1); rc=$?
check schema_clean sh -c '[ "$2" -eq 0 ] && echo "$1" | grep -q "1 device of backend domain 0 checked.*: clean"' sh "$out" "$rc" || echo "$out"

# read-only: access=ro gives mode r, VIRTIO_BLK_F_RO, writes refused
cfg "$work/g2.cfg" xg2 "vdev=xvdb,access=ro,specification=virtio,backendtype=standalone,grant_usage=1,target=$work/images/disk.img"
dom2=$("$B/gv-xl" create "$work/g2.cfg" 2>>"$work/xl.err"); rc=$?
check create_ro_ok [ "$rc" -eq 0 ]
check ro_mode_r [ "$(xsread "/local/domain/0/backend/virtio_disk/$dom2/51728/mode")" = r ]
printf 'x' | GV_DOMID=$dom2 "$B/gv-frontend" --xl-disk 51728 write --offset 0 >/dev/null 2>&1; rc=$?
check ro_write_fails [ "$rc" -ne 0 ]
"$B/gv-xl" destroy xg2 >/dev/null 2>&1

# ---- refusals: gv-xl create fails (as xl does), the error names the reason --
refused() { # refused NAME CFGNAME DISKSPEC PATTERN
	cfg "$work/$2.cfg" "$2" "$3"
	out=$("$B/gv-xl" create "$work/$2.cfg" 2>&1); rc=$?
	check "$1" sh -c '[ "$2" -ne 0 ] && echo "$1" | grep -q "unable to add disk xvda" &&
		echo "$1" | grep -q -- "$3"' sh "$out" "$rc" "$4" || echo "$out"
}
refused refuse_grant_usage_0 xr1 "$spec,target=$work/images/disk.img" \
	"backend error: grant_usage is not 1 (libxl's default for a backend in dom0 is 0"
refused refuse_outside_dir xr2 "$spec,grant_usage=1,target=$work/other/secret.img" \
	"is not under a directory this backend allows for disks from a guest's xl config"
refused refuse_symlink_escape xr3 "$spec,grant_usage=1,target=$work/images/escape.img" \
	"(.*other/secret.img) is not under a directory this backend allows"
refused refuse_relative xr4 "$spec,grant_usage=1,target=images/disk.img" "not an absolute path"
check refused_domains_destroyed sh -c '! "$1/gv-xl" list | grep -q "^xr"' sh "$B"

# ---- a backend that allows no xl disk; then --xl-disk-dir on the command line
kill -TERM "$bepid"; wait "$bepid"; bepid=
start gv-backend "$work/be2.log" --control none; bepid=$pid
refused refuse_no_xl_disk_dir xr5 "$spec,grant_usage=1,target=$work/images/disk.img" \
	"serves no disk from a guest's xl config (add 'xl-disk-dir DIR'"
kill -TERM "$bepid"; wait "$bepid"; bepid=
start gv-backend "$work/be3.log" --xl-disk-dir "$work/images/" --control none; bepid=$pid
check xl_disk_dir_option sh -c '"$1/gv-xl" create "$2" >/dev/null 2>&1' sh "$B" "$work/g2.cfg"

# ---- destroy: every directory gone -------------------------------------------
"$B/gv-xl" destroy xg1 >/dev/null 2>&1; rc=$?
gone() { [ "$rc" -eq 0 ] && ! xsread "$be/params" >/dev/null && ! xsread "$fe/state" >/dev/null; }
check destroy_ok gone
