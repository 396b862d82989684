# tools/lib.sh: shell helpers shared by tools/demo.sh, tools/gv-stress.sh and
# bench/run.sh (sourced). They expect $B (the build directory) and $work (a
# private scratch directory).

# start_daemon NAME LOG ARGS...: starts $B/NAME (installed: daemons live in
# ../sbin beside bin) ARGS --ready-fd 9 in the
# background, output appended to LOG, sets $pid, and returns once it serves
# (it wrote its byte). If it does not within 20 s, or dies first (the fifo
# then reads empty), prints the end of LOG and exits 1.
start_daemon() {
	name=$1 log=$2; shift 2
	fifo="$work/$name.ready"
	rm -f "$fifo"
	mkfifo "$fifo"
	prog=$B/$name
	[ -x "$prog" ] || [ ! -x "$B/../sbin/$name" ] || prog=$B/../sbin/$name
	"$prog" "$@" --ready-fd 9 9>"$fifo" >>"$log" 2>&1 &
	pid=$!
	ready=$(timeout 20 head -c 1 "$fifo" 2>/dev/null)
	rm -f "$fifo"
	if [ -z "$ready" ]; then
		echo "$(basename "$0"): $name did not start; the end of its log:"
		tail -n 20 "$log"
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		exit 1
	fi
}

# wait_bounded PID SECONDS: waits for PID (a child of this shell) at most
# SECONDS; a process still running then is killed (SIGKILL) with a line
# saying so, so a stuck child fails its caller instead of hanging it.
# Returns PID's exit status (137 when it had to be killed).
wait_bounded() {
	if ! timeout "$2" tail --pid="$1" -s 0.02 -f /dev/null 2>/dev/null; then
		echo "$(basename "$0"): process $1 still running after $2 s: killed" >&2
		kill -9 "$1" 2>/dev/null
	fi
	wait "$1"
}
