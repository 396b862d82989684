#!/bin/sh
# packaging/install-deps.sh: installs what `dpkg-buildpackage -us -uc -b` needs
# to build grant-virtio's .deb on Debian 12, on top of tools/install-deps.sh
# (the compiler and libxen-dev). Run as root; a no-op when all are present.
set -eu
PKGS="build-essential debhelper dpkg-dev fakeroot libxen-dev linux-libc-dev man-db"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "packaging/install-deps: all present: $PKGS"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "packaging/install-deps: missing:$missing; run as root" >&2
	exit 1
fi
echo "packaging/install-deps: installing:$missing"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
