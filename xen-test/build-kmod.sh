#!/bin/sh
# xen-test/build-kmod.sh: builds the guest kernel module (frontend/linux/,
# grant_virtio.ko) on this Debian 12 host with gcc-12, the compiler of the
# Debian kernel the test system boots, against that kernel's headers as
# fetch.sh unpacked them into cache/kernel/. Result: out/kmod/grant_virtio.ko.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
cache="$here/cache"
out="$here/out"
kabi=$(ls "$cache/kernel/lib/modules" | head -1)
kdir="$cache/kernel/usr/src/linux-headers-$kabi"
[ -f "$kdir/Makefile" ] || { echo "build-kmod: no headers for $kabi in $kdir (fetch.sh)"; exit 1; }
command -v gcc-12 >/dev/null || { echo "build-kmod: gcc-12 missing (sh tools/install-deps.sh --xen-test)"; exit 1; }
# Build in a copy, so the source tree stays free of Kbuild's outputs.
b="$out/kmod-build"
rm -rf "$b" "$out/kmod"
mkdir -p "$b/common" "$out/kmod"
cp "$top"/frontend/linux/Kbuild "$top"/frontend/linux/Makefile "$top"/frontend/linux/*.c \
  "$top"/frontend/linux/*.h "$b/"
cp "$top/common/dma_addr_bits.h" "$b/common/"
t0=$(date +%s.%N)
make -C "$b" KDIR="$kdir" >"$out/kmod-build.log" 2>&1 || { tail -n 20 "$out/kmod-build.log"; exit 1; }
if grep -q 'warning:' "$out/kmod-build.log"; then
	grep -A3 'warning:' "$out/kmod-build.log" | head -n 20
	echo "build-kmod: the module builds with warnings"; exit 1
fi
cp "$b/grant_virtio.ko" "$out/kmod/"
echo "build-kmod: grant_virtio.ko for $kabi in $(echo "$t0 $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }') s"
