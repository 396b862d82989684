#!/bin/sh
# test/test_fuzz_corpus.sh: replays every committed fuzz input
# (fuzz/corpus/<target>/) through its target, built without libFuzzer in the
# ordinary build ($GV_BUILD/fuzz/replay_<target>; under make asan-test, with
# the sanitizers). A crash or a broken invariant fails the test.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
B=${GV_BUILD:-$top/build}
fail=0
for dir in "$top"/fuzz/corpus/*/; do
	t=$(basename "$dir")
	if [ ! -x "$B/fuzz/replay_$t" ]; then
		echo "FAIL replay_$t: $B/fuzz/replay_$t not built"
		fail=1
		continue
	fi
	out=$("$B/fuzz/replay_$t" "$dir" 2>&1); rc=$?
	if [ $rc -ne 0 ]; then
		echo "$out" | tail -n 20
		echo "FAIL replay_$t: exit status $rc"
		fail=1
	else
		echo "$out" | grep '^PASS '
	fi
done
exit $fail
