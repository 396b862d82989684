#!/bin/sh
# xen-test/build-project.sh: builds the project for the test system, inside the
# Debian 13 root (cache/trixie-root, see build-root.sh), so its binaries link
# Xen 4.20's libraries (libxenctrl.so.4.20). The working tree is copied in
# (build outputs left out), built with `make -k BUILD=build-xen`, and the result
# copied to out/build-xen/. -k: a half-written part elsewhere in the tree must
# not keep the rest (e.g. test_platform_xen) out of the image; scenarios that
# need a missing program fail on their own.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
root="$here/cache/trixie-root"
out="$here/out"
mkdir -p "$out"
# One source folder in the root per checkout, so two checkouts sharing one
# cache (git worktrees) never build over each other.
src=/src-$(printf '%s' "$top" | cksum | cut -d' ' -f1)
rm -rf "$root$src"
mkdir -p "$root$src"
(cd "$top" && tar cf - --exclude='./build*' --exclude='./xen-test/cache' --exclude='./xen-test/out' \
  --exclude='./.git' .) | (cd "$root$src" && tar xf -)
jobs=$(nproc 2>/dev/null || echo 2)
if chroot "$root" /bin/sh -c "cd $src && make -k -j$jobs BUILD=build-xen all" >"$out/build-xen.log" 2>&1; then
	echo "build-project: complete"
else
	echo "build-project: make -k reported errors (see xen-test/out/build-xen.log); using what was built:"
	grep -E 'error|Error' "$out/build-xen.log" | head -5 | sed 's/^/  /'
fi
# The platform's own test needs only common/: if the full build could not link
# it (another part of the tree broken), build it from common/ alone.
if [ ! -x "$root$src/build-xen/test/test_platform_xen" ]; then
	echo "build-project: test_platform_xen not built by make; building it from common/ alone"
	chroot "$root" /bin/sh -c "cd $src && make BUILD=build-xen build-xen/gen/xs_keys.h >/dev/null &&
	  mkdir -p build-xen/test && gcc -O2 -g -D_GNU_SOURCE -D__XEN_TOOLS__ -Icommon -Ibuild-xen/gen \
	  -Wall -Wextra -Werror -Wno-missing-field-initializers -o build-xen/test/test_platform_xen \
	  test/test_platform_xen.c test/check.c \$(ls common/*.c | grep -v /gv-) \
	  -lxenstore -lxengnttab -lxenevtchn -lxenctrl -lpthread -lm" >>"$out/build-xen.log" 2>&1 \
	  || echo "build-project: fallback build of test_platform_xen failed too"
fi
# The platform test once more with AddressSanitizer + UBSan (leaks included),
# to run on real Xen too; the images carry libasan/libubsan from the same root.
chroot "$root" /bin/sh -c "cd $src && make BUILD=build-xen build-xen/gen/xs_keys.h >/dev/null &&
  gcc -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
  -D_GNU_SOURCE -D__XEN_TOOLS__ -Icommon -Ibuild-xen/gen \
  -Wall -Wextra -Werror -Wno-missing-field-initializers -o build-xen/test/test_platform_xen.asan \
  test/test_platform_xen.c test/check.c \$(ls common/*.c | grep -v /gv-) \
  -lxenstore -lxengnttab -lxenevtchn -lxenctrl -lpthread -lm" >>"$out/build-xen.log" 2>&1 \
  || echo "build-project: sanitizer build of test_platform_xen failed"
rm -rf "$out/build-xen"
mkdir -p "$out/build-xen/test"
for f in "$root$src"/build-xen/gv-* "$root$src"/build-xen/test/test_*; do
	[ -f "$f" ] && [ -x "$f" ] || continue
	case "$f" in *.o|*.d) continue ;; esac
	[ -x "$f" ] || continue
	rel=${f#"$root$src/build-xen/"}
	cp "$f" "$out/build-xen/$rel"
done
ls "$out/build-xen" "$out/build-xen/test" | tr '\n' ' '; echo
