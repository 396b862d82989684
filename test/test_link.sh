#!/bin/sh
# test/test_link.sh: each program links only what it uses (issue 12). A guest
# program (gv-frontend, gv-bench, the frontend's tests) must not need dom0's
# libxenctrl; gv-backend, which runs in dom0, carries the domain query
# (common/platform_xen_dom0.c) that needs it. Reads the built files' dynamic
# sections and symbol tables; prints PASS/FAIL lines for test/run-tests.sh.
set -u
B=${GV_BUILD:-build}
check() { # check NAME CONDITION...
	name=$1; shift
	if "$@"; then echo "PASS $name"; else echo "FAIL $name"; fi
}
needs_xenctrl() { readelf -d "$1" | grep -q 'NEEDED.*libxenctrl'; }
no_xenctrl() { [ -x "$1" ] && ! needs_xenctrl "$1"; }
for p in gv-frontend gv-bench test/test_virtqueue test/test_dma test/test_e2e_frontend \
         test/test_hostile_backend; do
	check "$(basename "$p") does not need libxenctrl" no_xenctrl "$B/$p"
done
has_dom0_part() { nm "$B/gv-backend" | grep -q ' T gv_xen_dom0_domain_exists$' && needs_xenctrl "$B/gv-backend"; }
check "gv-backend carries dom0's domain query and libxenctrl" has_dom0_part
# the library alone: no object of libfrontend refers to libxenctrl or the dom0 part
lib_clean() { ! nm -u "$B/libfrontend.a" | grep -q 'xc_\|gv_xen_dom0'; }
check "libfrontend refers to nothing of dom0's" lib_clean
