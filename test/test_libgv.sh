#!/bin/sh
# test/test_libgv.sh: libgrant-virtio as a user gets it. `make install
# DESTDIR=<tmp>` (PREFIX=/usr), then only the installed files: the shared
# library with its soname and links, exporting exactly the functions of the
# installed grant_virtio.h (no gvfe_ or common/ symbol), not needing dom0's
# libxenctrl; the header self-contained (C99 -pedantic, and C++); the
# pkg-config file; examples/gv-read.c (as installed) built with
# `pkg-config --cflags --libs grant-virtio` against that tree and run on the
# simulated Xen against gv-backend, reading back what was put in the image.
# Prints PASS/FAIL lines for test/run-tests.sh; every wait is bounded.
# GV_TEST_CC / GV_TEST_SANITIZE: the compiler and sanitizer flags the build
# used (make test and make asan-test set them).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
B=${GV_BUILD:-$top/build}
case $B in /*) ;; *) B=$top/$B ;; esac
CC=${GV_TEST_CC:-cc}
SAN=${GV_TEST_SANITIZE:-}
. "$top/test/lib.sh"
gv_test_init libgv
root=$work/root

# make install into a private tree; the build is up to date (make test built it)
rel=${B#"$top"/}
if ! (cd "$top" && unset MAKEFLAGS MAKELEVEL MFLAGS &&
      make -s BUILD="$rel" install DESTDIR="$root" PREFIX=/usr LIBDIR=/usr/lib) >"$work/install.log" 2>&1; then
	echo "FAIL make install DESTDIR"; cat "$work/install.log"; exit 1
fi
echo "PASS make install DESTDIR"
lib=$root/usr/lib
real=$(cd "$lib" && ls libgrant-virtio.so.0.* 2>/dev/null)
check "installed: the library, its soname link and the dev link" sh -c '
	[ -f "$1/$2" ] && [ ! -L "$1/$2" ] &&
	[ "$(readlink "$1/libgrant-virtio.so.0")" = "$2" ] &&
	[ "$(readlink "$1/libgrant-virtio.so")" = libgrant-virtio.so.0 ]' sh "$lib" "$real"
check "installed: grant_virtio.h, grant_virtio_types.h, grant-virtio.pc" \
	test -f "$root/usr/include/grant_virtio.h" -a -f "$root/usr/include/grant_virtio_types.h" \
	     -a -f "$lib/pkgconfig/grant-virtio.pc"
check "installed: libgrant-virtio(3) and the example" \
	test -f "$root/usr/share/man/man3/libgrant-virtio.3" -a -f "$root/usr/share/doc/grant-virtio/examples/gv-read.c"
check "no internal header installed" sh -c '[ "$(ls "$1/usr/include" | wc -l)" -eq 2 ]' sh "$root"
check "soname is libgrant-virtio.so.0" sh -c \
	'readelf -d "$1" | grep -q "SONAME.*\[libgrant-virtio.so.0\]"' sh "$lib/$real"
check "the library does not need libxenctrl" sh -c '! readelf -d "$1" | grep -q "NEEDED.*libxenctrl"' \
	sh "$lib/$real"

# exported = declared: the functions of the installed header, and no other
nm -D --defined-only "$lib/$real" | awk '$2 == "T" || $2 == "D" || $2 == "B" { sub(/@.*/, "", $3); print $3 }' |
	sort >"$work/exported"
grep -E '^[a-z].*[ *]gv_[a-z_]+\(' "$root/usr/include/grant_virtio.h" |
	sed -E 's/.*[ *](gv_[a-z_]+)\(.*/\1/' | sort >"$work/declared"
check "exports exactly the header's $(wc -l <"$work/declared") functions" sh -c \
	'[ -s "$1" ] && cmp -s "$1" "$2" || { diff "$1" "$2"; false; }' sh "$work/declared" "$work/exported"
# the version nodes of libgrant-virtio.map as Debian's symbols file lists them
nm -D --defined-only "$lib/$real" | awk '$2 == "T" { print $3 } $2 == "A" { print $3 "@" $3 }' | sed 's/@@/@/' |
	sort >"$work/versioned"
grep '^ ' "$top/debian/libgrant-virtio0.symbols" | awk '{ print $1 }' | sort >"$work/symbols"
check "debian/libgrant-virtio0.symbols lists every exported symbol with its version node" sh -c \
	'[ -s "$1" ] && cmp -s "$1" "$2" || { diff "$1" "$2"; false; }' sh "$work/symbols" "$work/versioned"
check "no gvfe_ or common/ symbol exported" sh -c \
	'! nm -D --defined-only "$1" | grep -Eq " (gvfe_|gv_platform|gv_log|gv_xs_|gv_sim)"' sh "$lib/$real"

# the header alone, strictly, as C and as C++
printf '#include <grant_virtio.h>\nint main(void) { struct gv_attach_opts o; gv_attach_opts_init(&o); return o.devid; }\n' \
	>"$work/hdr.c"
check "grant_virtio.h compiles alone (C99 -pedantic)" \
	$CC -std=c99 -pedantic-errors -Wall -Wextra -Werror -I"$root/usr/include" -fsyntax-only "$work/hdr.c"
if command -v c++ >/dev/null 2>&1; then
	check "grant_virtio.h compiles alone (C++)" \
		c++ -x c++ -Wall -Wextra -Werror -I"$root/usr/include" -fsyntax-only "$work/hdr.c"
fi

# the example, as installed, built through pkg-config against the tree only
pc() {
	PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR="$lib/pkgconfig:$(pkg-config --variable pc_path pkg-config)" \
		PKG_CONFIG_SYSROOT_DIR="$root" pkg-config "$@" grant-virtio
}
flags=$(pc --cflags --libs)
check "pkg-config --cflags --libs grant-virtio points into the tree" sh -c \
	'[ "$1" = "-I$2/usr/include -L$2/usr/lib -lgrant-virtio" ]' sh "$(echo $flags)" "$root"
check "pkg-config --modversion" sh -c '[ "$1" = "${2#libgrant-virtio.so.}" ]' sh "$(pc --modversion)" "$real"
example=$root/usr/share/doc/grant-virtio/examples/gv-read.c
if $CC -Wall -Wextra -Werror $SAN -o "$work/gv-read" "$example" $flags >"$work/cc.log" 2>&1; then
	echo "PASS examples/gv-read.c builds with pkg-config against the installed files"
else
	echo "FAIL examples/gv-read.c builds with pkg-config against the installed files"; cat "$work/cc.log"
fi
check "gv-read needs libgrant-virtio.so.0" sh -c \
	'readelf -d "$1" | grep -q "NEEDED.*\[libgrant-virtio.so.0\]"' sh "$work/gv-read"
check "gv-read and what it loads do not need libxenctrl" sh -c \
	'out=$(LD_LIBRARY_PATH="$2" ldd "$1") && echo "$out" | grep -q "libgrant-virtio.so.0 => $2/" &&
	 ! echo "$out" | grep -q libxenctrl' sh "$work/gv-read" "$lib"

# run it: a disk with a known sector, served by gv-backend on the simulated Xen
. "$top/tools/lib.sh"
truncate -s 4M "$work/disk.img"
printf 'libgrant-virtio example sector' | dd of="$work/disk.img" bs=512 seek=3 conv=notrunc 2>/dev/null
start_daemon gv-simxen "$work/sim.log" --dir "$GV_SIM_DIR"; simpid=$pid
start_daemon gv-backend "$work/be.log" --disk "guest1:0=$work/disk.img"; bepid=$pid
"$B/gv-xl" create "$top/examples/guest.cfg" >"$work/xl.log" 2>&1 || { echo "FAIL gv-xl create"; cat "$work/xl.log"; }
GV_DOMID=1 LD_LIBRARY_PATH="$lib" timeout 30 "$work/gv-read" 0 2 2 >"$work/out" 2>"$work/err"; rc=$?
check "gv-read exits 0" [ "$rc" -eq 0 ]
check "gv-read reports the disk (8192 sectors)" grep -q "^device 0: 8192 sectors, read-write, on sim" "$work/out"
check "gv-read prints sector 3 as written" grep -q "^00000600  6c 69 62 67 72 61 6e 74 .*|libgrant-virtio |" "$work/out"
check "gv-read prints sector 2 as zeros" sh -c 'sed -n 2p "$1" | grep -q "^00000400  00 00 00"' sh "$work/out"
sed "s/^/  | /" "$work/out" "$work/err"
check "gv-read detached: the backend holds no grant" sh -c \
	'"$1/gv-backend" --status | grep -q "^grants: 0 pages mapped now, [1-9][0-9]* mapped"' sh "$B"
GV_DOMID=1 LD_LIBRARY_PATH="$lib" timeout 30 "$work/gv-read" 1 >"$work/out" 2>&1; rc=$?
check "gv-read refuses the rng device (exit 2, says why)" sh -c \
	'[ "$1" -eq 2 ] && grep -q "device 1 is not a block device" "$2"' sh "$rc" "$work/out"
