#!/bin/sh
# xen-test/build-root.sh: a Debian 13 (trixie) build root in xen-test/cache/trixie-root,
# made once with debootstrap, in which the project is compiled for the test
# system (its libxenctrl is 4.20's, the one the image runs; Debian 12's is 4.17).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root="$here/cache/trixie-root"
# The stamp holds the package list the root was made with: a root made from
# an older list gets what is missing with apt-get inside it (no new debootstrap).
PKGS="gcc,make,libc6-dev,libxen-dev,linux-libc-dev,liburing-dev"
stamp="$here/cache/trixie-root.stamp"
if [ -e "$stamp" ] && [ "$(cat "$stamp")" = "$PKGS" ]; then
	exit 0
fi
if [ -e "$stamp" ] && [ -x "$root/usr/bin/apt-get" ]; then
	chroot "$root" apt-get update -qq >"$here/cache/root-upgrade.log" 2>&1 &&
	  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $(echo "$PKGS" | tr , ' ') >>"$here/cache/root-upgrade.log" 2>&1 \
	  || { echo "apt-get in the build root failed:"; tail -5 "$here/cache/root-upgrade.log"; exit 1; }
	echo "$PKGS" >"$stamp"
	exit 0
fi
rm -rf "$root"
mkdir -p "$here/cache"
debootstrap --variant=minbase --include="$PKGS" \
  trixie "$root" http://deb.debian.org/debian >"$here/cache/debootstrap.log" 2>&1 \
  || { echo "debootstrap failed:"; tail -5 "$here/cache/debootstrap.log"; exit 1; }
echo "$PKGS" >"$stamp"
