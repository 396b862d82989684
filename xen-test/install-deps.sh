#!/bin/sh
# xen-test/install-deps.sh: host packages the QEMU Xen harness needs (Debian 12).
# Installs only what is missing; run as root. `make xen-test` calls it.
set -eu
# gcc-12 make: build-kmod.sh builds the guest module against the fetched headers
PKGS="qemu-system-x86 busybox-static cpio debootstrap gzip xz-utils zstd ca-certificates gcc-12 make"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "xen-test/install-deps: missing:$missing; run as root" >&2
	exit 1
fi
echo "xen-test/install-deps: installing:$missing"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
