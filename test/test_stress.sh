#!/bin/sh
# test/test_stress.sh: a short gv-stress run (40 cycles of attach, I/O in
# every DMA strategy, detach, with guest kills, backend kills and node
# removals) inside make test; tools/gv-stress.sh checks the invariants after
# every cycle and stops at the first violation.
top=$(cd "$(dirname "$0")/.." && pwd)
out=$(sh "$top/tools/gv-stress.sh" -n 40 -s 12345 2>&1); rc=$?
echo "$out" | tail -n 25
if [ $rc -eq 0 ]; then
	echo "PASS gv-stress 40 cycles"
else
	echo "FAIL gv-stress: $(echo "$out" | grep VIOLATION | head -1)"
fi
exit $rc
