#!/bin/sh
# test/test_link.sh: each program links only what it uses (issue 12). A guest
# program (gv-frontend, gv-bench, the frontend's tests) must not need dom0's
# libxenctrl; gv-backend, which runs in dom0, carries the domain query
# (common/platform_xen_dom0.c) that needs it. And inside the frontend library
# a request goes one way: no file calls back by name into one that calls it
# (drivers are reached through their ops table only). Reads the built files'
# dynamic sections and symbol tables; prints PASS/FAIL lines for
# test/run-tests.sh.
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
# The named-call graph of libfrontend's objects (A -> B: A refers to a symbol
# B defines; an ops table is data, so a driver reached through one adds no
# edge back) has no cycle: tsort reports none.
call_graph() {
	for o in "$B"/frontend/*.o; do
		case $o in */gv-*) continue ;; esac
		n=$(basename "$o" .o)
		nm --defined-only "$o" | awk -v n="$n" '$2 ~ /[TDRB]/ { print "D", n, $3 }'
		nm -u "$o" | awk -v n="$n" '{ print "U", n, $2 }'
	done | awk '$1 == "D" { def[$3] = def[$3] " " $2; next }
	            { use[++nu] = $2 " " $3 }
	            END { for (i = 1; i <= nu; i++) { split(use[i], u, " "); k = split(def[u[2]], d, " ")
	                  for (j = 1; j <= k; j++) if (d[j] != u[1]) print u[1], d[j] } }' | sort -u
}
graph=$(call_graph)
no_cycle() { [ -n "$graph" ] && echo "$graph" | tsort >/dev/null 2>&1; }
check "libfrontend: no call cycle between its files ($(echo "$graph" | wc -l) edges)" no_cycle
