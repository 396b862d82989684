#!/bin/sh
# tools/check.sh: everything that proves the project works, as CI runs it
# (make check):
#   1. the tests on the simulated Xen           (make test)
#   2. the same tests under ASan + UBSan         (make asan-test)
#   3. the pair on real Xen 4.20 under QEMU      (make xen-test; needs root)
# Each part prints its own "N passed, M failed"; the last line adds them up.
# Exit status 0 only if every part ran and nothing failed.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
total_p=0 total_f=0 status=0

# part NAME COMMAND...: runs it, shows its output, adds its count line
part() {
	name=$1; shift
	echo "== $name: $*"
	log=$(mktemp)
	{ "$@" 2>&1; echo "$?" >"$log.rc"; } | tee "$log"
	rc=$(cat "$log.rc"); rm -f "$log.rc"
	line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	rm -f "$log"
	p=$(echo "$line" | sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed, ([0-9]+) failed.*/\2/')
	f=$(echo "$line" | sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed, ([0-9]+) failed.*/\3/')
	if [ -z "$line" ]; then
		echo "== $name: no count line (exit $rc): counted as one failure"
		p=0 f=1
	elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "== $name: exit $rc with no failed test: counted as one failure"
		f=1
	fi
	total_p=$((total_p + p)); total_f=$((total_f + f))
	[ "$f" -eq 0 ] || status=1
}

part tests make -j2 test
part asan-tests make -j2 asan-test
part real-xen make xen-test
echo "check: $total_p passed, $total_f failed"
exit $status
