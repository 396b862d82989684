#!/bin/sh
# tools/install-deps.sh: the one step that installs what grant-virtio needs on
# Debian 12 (bookworm). Run as root. The test command and .ci/run call it.
set -eu
# debhelper dh-dkms: only to build the Debian packages (debian/, grant-virtio-dkms)
PKGS="build-essential clang libxen-dev linux-libc-dev xenstore-utils valgrind debhelper dh-dkms"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "install-deps: all present:$(echo " $PKGS")"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing:$missing; run as root (or: sudo sh tools/install-deps.sh)" >&2
	exit 1
fi
echo "install-deps: installing:$missing"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
