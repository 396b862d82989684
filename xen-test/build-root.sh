#!/bin/sh
# xen-test/build-root.sh: a Debian 13 (trixie) build root in xen-test/cache/trixie-root,
# made once with debootstrap, in which the project is compiled for the test
# system (its libxenctrl is 4.20's, the one the image runs; Debian 12's is 4.17).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root="$here/cache/trixie-root"
if [ -e "$here/cache/trixie-root.stamp" ]; then
	exit 0
fi
rm -rf "$root"
mkdir -p "$here/cache"
debootstrap --variant=minbase --include=gcc,make,libc6-dev,libxen-dev,linux-libc-dev \
  trixie "$root" http://deb.debian.org/debian >"$here/cache/debootstrap.log" 2>&1 \
  || { echo "debootstrap failed:"; tail -5 "$here/cache/debootstrap.log"; exit 1; }
touch "$here/cache/trixie-root.stamp"
