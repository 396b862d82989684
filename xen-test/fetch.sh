#!/bin/sh
# xen-test/fetch.sh: downloads the Debian packages the test system is made of,
# into xen-test/cache/ (kept between runs; nothing is installed on the host).
#   - Xen 4.20 hypervisor, tools and their libraries from Debian 13 (trixie),
#     through a private apt configuration (own sources list, lists and cache);
#   - the Debian 12 kernel that linux-image-amd64 depends on, from the host's
#     own apt sources.
# Unpacks everything into cache/xenroot/ (trixie) and cache/kernel/ (bookworm).
# Idempotent: a stamp file per unpacked tree.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/cache"
mkdir -p "$cache"

TRIXIE_PKGS="xen-hypervisor-4.20-amd64 xen-utils-4.20 xen-utils-common xenstore-utils
libxenmisc4.20 libxenstore4 libxencall1 libxengnttab1 libxenevtchn1 libxenforeignmemory1
libxentoolcore1 libxentoollog1 libxenhypfs1 libxendevicemodel1 libyajl2
libc6 libgcc-s1 zlib1g liblzma5 libzstd1 libuuid1 libbz2-1.0 libnl-3-200 libnl-route-3-200"

apt_trixie() {
	apt-get -q -o Dir::Etc::sourcelist="$cache/apt/trixie.list" -o Dir::Etc::sourceparts=- \
	  -o Dir::State::Lists="$cache/apt/lists" -o Dir::Cache="$cache/apt/cache" \
	  -o APT::Get::List-Cleanup=0 "$@"
}

# A stamp holds what it was made from: a changed package list refetches.
stamp_ok() { [ -e "$1" ] && [ "$(cat "$1")" = "$2" ]; }
if ! stamp_ok "$cache/xenroot.stamp" "$TRIXIE_PKGS"; then
	mkdir -p "$cache/apt/lists/partial" "$cache/apt/cache/archives/partial" "$cache/debs/trixie"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
	  > "$cache/apt/trixie.list"
	apt_trixie update >"$cache/apt/update.log" 2>&1 || { tail -5 "$cache/apt/update.log"; exit 1; }
	(cd "$cache/debs/trixie" && apt_trixie download $TRIXIE_PKGS) >"$cache/apt/download.log" 2>&1 \
	  || { tail -5 "$cache/apt/download.log"; exit 1; }
	rm -rf "$cache/xenroot"; mkdir -p "$cache/xenroot"
	for d in "$cache"/debs/trixie/*.deb; do dpkg -x "$d" "$cache/xenroot"; done
	echo "$TRIXIE_PKGS" >"$cache/xenroot.stamp"
fi

if [ ! -e "$cache/kernel.stamp" ]; then
	mkdir -p "$cache/debs/bookworm"
	kpkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
	[ -n "$kpkg" ] || { echo "fetch: cannot tell which kernel linux-image-amd64 depends on (apt-get update?)"; exit 1; }
	(cd "$cache/debs/bookworm" && apt-get -q download "$kpkg") >"$cache/apt/kernel.log" 2>&1 \
	  || { apt-get -qq update && (cd "$cache/debs/bookworm" && apt-get -q download "$kpkg"); } \
	  >>"$cache/apt/kernel.log" 2>&1 || { tail -5 "$cache/apt/kernel.log"; exit 1; }
	rm -rf "$cache/kernel"; mkdir -p "$cache/kernel"
	dpkg -x "$cache"/debs/bookworm/"$kpkg"_*.deb "$cache/kernel"
	touch "$cache/kernel.stamp"
fi
