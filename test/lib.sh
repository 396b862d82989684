# test/lib.sh: the start every shell test on the simulated Xen shares
# (sourced after setting $B, the build directory).
#   gv_test_init NAME: a private scratch directory $work (/tmp/gv-NAME-*),
#   GV_PLATFORM=sim with the simulated store in $work/xen, and an exit trap
#   that runs test_cleanup (when the test defines one), stops the processes
#   in $fepid, $bepid and $simpid, and removes $work.
#   check NAME CONDITION...: prints PASS NAME or FAIL NAME (returns 1).
#   wait_log SECONDS FILE PATTERN: until a line of FILE matches, woken by
#   tail -f as lines come; at most SECONDS.

gv_test_exit() {
	command -v test_cleanup >/dev/null 2>&1 && test_cleanup
	for p in "$fepid" "$bepid" "$simpid"; do
		[ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	rm -rf "$work"
}

gv_test_init() {
	work=$(mktemp -d "/tmp/gv-$1-XXXXXX")
	export GV_PLATFORM=sim GV_SIM_DIR="$work/xen"
	simpid= bepid= fepid=
	trap gv_test_exit EXIT
	trap 'exit 1' INT TERM
}

check() {
	name=$1; shift
	if "$@"; then echo "PASS $name"; else echo "FAIL $name"; return 1; fi
}

wait_log() {
	timeout "$1" tail -n +1 -f "$2" | grep -q -- "$3"
}
