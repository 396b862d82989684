#!/bin/sh
# tools/install-deps.sh: the one script that installs the Debian 12 (bookworm)
# packages grant-virtio needs. Installs only what is missing (apt-get update
# first, then apt-get install); run as root. A no-op when all are present.
#
#   sh tools/install-deps.sh [GROUP...]
#     --build      (the default) building, `make test`, `make asan-test`:
#                  compilers, libxen-dev, linux-libc-dev, liburing-dev, libnbd-dev,
#                  xenstore-utils, valgrind, qemu-utils (qemu-nbd and qemu-img for the NBD tests),
#                  pkgconf (the installed library's test), python3 (parses --status --json)
#     --xen-test   `make xen-test` on the host: QEMU, debootstrap, busybox,
#                  cpio, compressors, gcc-12 for the guest module (xen-test/run.sh asks for it)
#     --bench      `make bench`: gnuplot-nox for the chart, fio for the real-disk reference (bench/run.sh asks)
#     --packaging  `dpkg-buildpackage -us -uc -b`: debhelper, dh-dkms, fakeroot, ...
#     --systemd-test  `make systemd-test`: systemd-nspawn, debootstrap
#     --all        every group
#
# CI runs `sh tools/install-deps.sh && make check`; make check's xen-test
# part installs its own group through xen-test/run.sh.
set -eu

BUILD="build-essential clang libxen-dev linux-libc-dev xenstore-utils valgrind liburing-dev libnbd-dev qemu-utils pkgconf python3"
XEN_TEST="qemu-system-x86 busybox-static cpio debootstrap gzip xz-utils zstd ca-certificates gcc-12 make"
BENCH="gnuplot-nox fio"
PACKAGING="build-essential debhelper dh-dkms dpkg-dev fakeroot libxen-dev linux-libc-dev liburing-dev libnbd-dev man-db"
SYSTEMD_TEST="systemd-container debootstrap ca-certificates"

usage() {
	sed -n '2,18s/^# \{0,1\}//p' "$0"
}

pkgs="" groups=""
[ $# -gt 0 ] || set -- --build
for g in "$@"; do
	case $g in
	--build) pkgs="$pkgs $BUILD" ;;
	--xen-test) pkgs="$pkgs $XEN_TEST" ;;
	--bench) pkgs="$pkgs $BENCH" ;;
	--packaging) pkgs="$pkgs $PACKAGING" ;;
	--systemd-test) pkgs="$pkgs $SYSTEMD_TEST" ;;
	--all) pkgs="$pkgs $BUILD $XEN_TEST $BENCH $PACKAGING $SYSTEMD_TEST" ;;
	-h|--help) usage; exit 0 ;;
	*) echo "install-deps: unknown group '$g'" >&2; usage >&2; exit 2 ;;
	esac
	groups="$groups ${g#--}"
done

missing=""
for p in $pkgs; do
	case " $missing " in *" $p "*) continue ;; esac
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "install-deps:$groups: all present"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-deps:$groups: missing:$missing; run as root (or: sudo sh $0$(printf ' %s' "$@"))" >&2
	exit 1
fi
echo "install-deps:$groups: installing:$missing"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
