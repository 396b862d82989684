#!/bin/sh
# test/run-tests.sh: runs every test program (BUILD/test/test_*) and script
# (test/test_*.sh), each with a time limit, and prints the count line.
# A program that dies, times out, or ends without one PASS/FAIL line counts
# as one failure, and its output is shown.
set -u
BUILD=${BUILD:-build}
LIMIT=${GV_TEST_TIMEOUT:-300}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export GV_BUILD="$top/$BUILD"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
pass=0 fail=0
for t in "$BUILD"/test/test_* test/test_*.sh; do
	[ -e "$t" ] || continue
	case "$t" in *.o|*.d) continue ;; esac
	[ -x "$t" ] || case "$t" in *.sh) ;; *) continue ;; esac
	name=$(basename "$t")
	case "$t" in
	*.sh) timeout -k 10 "$LIMIT" sh "$t" >"$log" 2>&1; rc=$? ;;
	*)    timeout -k 10 "$LIMIT" "$t" >"$log" 2>&1; rc=$? ;;
	esac
	p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log")
	grep -E '^(PASS|FAIL) ' "$log" | sed "s|^|$name: |"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "$name: FAIL (exit status $rc$( [ $rc -eq 124 ] && echo ", timed out after ${LIMIT}s"))"
		f=1
	elif [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
		# exit 0 but no PASS/FAIL line: it tested nothing we can count
		echo "$name: FAIL (no result line)"
		f=1
	fi
	if [ "$f" -gt 0 ] || [ "$rc" -ne 0 ]; then
		echo "---- $name output (last 30 lines) ----"; tail -n 30 "$log"; echo "----"
	fi
	pass=$((pass + p)); fail=$((fail + f))
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
