#!/bin/sh
# xen-test/fetch.sh: downloads the Debian packages the test system is made of,
# into xen-test/cache/ (kept between runs; nothing is installed on the host).
#   - Xen 4.20 hypervisor, tools and their libraries from Debian 13 (trixie),
#     through a private apt configuration (own sources list, lists and cache);
#   - the Debian 12 kernel that linux-image-amd64 depends on, and its headers
#     (for frontend/linux/), from the host's own apt sources.
#   - e2fsck (trixie's e2fsprogs and its libraries), for dom0.
# Unpacks everything into cache/xenroot/ and cache/e2fsroot/ (trixie) and
# cache/kernel/ (bookworm).
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

# e2fsck for dom0 (e2fsck -fn of a guest's file system image after the kmod
# scenarios; busybox has none): trixie's e2fsprogs and the libraries e2fsck
# links that xenroot lacks, unpacked into cache/e2fsroot/. Its own apt state
# (cache/apt/e2fs/) and stamp, so that an existing xenroot is left as it is.
E2FS_PKGS="e2fsprogs libext2fs2t64 libcom-err2 libblkid1"
apt_e2fs() {
	apt-get -q -o Dir::Etc::sourcelist="$cache/apt/e2fs/trixie.list" -o Dir::Etc::sourceparts=- \
	  -o Dir::State::Lists="$cache/apt/e2fs/lists" -o Dir::Cache="$cache/apt/e2fs/cache" \
	  -o APT::Get::List-Cleanup=0 "$@"
}
if ! stamp_ok "$cache/e2fsroot.stamp" "$E2FS_PKGS"; then
	rm -rf "$cache/debs/e2fs"
	mkdir -p "$cache/apt/e2fs/lists/partial" "$cache/apt/e2fs/cache/archives/partial" "$cache/debs/e2fs"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
	  > "$cache/apt/e2fs/trixie.list"
	apt_e2fs update >"$cache/apt/e2fs/update.log" 2>&1 || { tail -5 "$cache/apt/e2fs/update.log"; exit 1; }
	(cd "$cache/debs/e2fs" && apt_e2fs download $E2FS_PKGS) >"$cache/apt/e2fs/download.log" 2>&1 \
	  || { tail -5 "$cache/apt/e2fs/download.log"; exit 1; }
	rm -rf "$cache/e2fsroot"; mkdir -p "$cache/e2fsroot"
	for d in "$cache"/debs/e2fs/*.deb; do dpkg -x "$d" "$cache/e2fsroot"; done
	[ -x "$cache/e2fsroot/usr/sbin/e2fsck" ] || { echo "fetch: no usr/sbin/e2fsck in $E2FS_PKGS"; exit 1; }
	echo "$E2FS_PKGS" >"$cache/e2fsroot.stamp"
fi

# The kernel and, in the same step (so they never drift apart), its headers
# for building frontend/linux/ (grant_virtio.ko): linux-headers-<ver>-amd64,
# -common and linux-kbuild-6.1 of exactly the image's version. The stamp names
# all four; an older stamp (image only) gets the headers added to the same tree.
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
if [ -z "$kpkg" ]; then
	apt-get -qq update >>"$cache/apt/kernel.log" 2>&1 || true
	kpkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
fi
[ -n "$kpkg" ] || { echo "fetch: cannot tell which kernel linux-image-amd64 depends on (apt-get update?)"; exit 1; }
kabi=${kpkg#linux-image-}; kabi=${kabi%-amd64}                    # 6.1.0-57
kver=$(apt-cache show --no-all-versions "$kpkg" | sed -n 's/^Version: //p' | head -1)  # 6.1.192-3
kser=$(echo "$kabi" | cut -d. -f1-2)                               # 6.1
KPKGS="$kpkg=$kver linux-headers-$kabi-amd64=$kver linux-headers-$kabi-common=$kver linux-kbuild-$kser=$kver"
if ! stamp_ok "$cache/kernel.stamp" "$KPKGS"; then
	mkdir -p "$cache/debs/bookworm" "$cache/apt"
	(cd "$cache/debs/bookworm" && apt-get -q download $KPKGS) >"$cache/apt/kernel.log" 2>&1 \
	  || { apt-get -qq update && (cd "$cache/debs/bookworm" && apt-get -q download $KPKGS); } \
	  >>"$cache/apt/kernel.log" 2>&1 || { tail -5 "$cache/apt/kernel.log"; exit 1; }
	# A tree holding exactly this kernel only gets the headers added (other
	# checkouts may be using it); anything else is unpacked afresh.
	if [ "$(ls "$cache/kernel/lib/modules" 2>/dev/null)" != "$kabi-amd64" ]; then
		rm -rf "$cache/kernel"; mkdir -p "$cache/kernel"
		dpkg -x "$cache"/debs/bookworm/"$kpkg"_"$kver"_*.deb "$cache/kernel"
	fi
	for p in linux-headers-$kabi-amd64 linux-headers-$kabi-common linux-kbuild-$kser; do
		dpkg -x "$cache"/debs/bookworm/"$p"_"$kver"_*.deb "$cache/kernel"
	done
	# Debian's headers include their -common half by absolute path
	# (/usr/src/...); in the cache it sits next to it.
	sed -i "s|^include /usr/src/linux-headers-$kabi-common/Makefile|include ../linux-headers-$kabi-common/Makefile|" \
	  "$cache/kernel/usr/src/linux-headers-$kabi-amd64/Makefile"
	echo "$KPKGS" >"$cache/kernel.stamp"
fi
