#!/bin/sh
# xen-test/run.sh: `make xen-test`. Boots Xen 4.20 + a Debian dom0 under QEMU
# (software emulation: KVM cannot run Xen on these machines), runs the
# scenarios of scenarios.list in dom0 and reports them:
#   PASS <name> / FAIL <name>: <reason>, then "N passed, M failed".
# The full serial console log is xen-test/out/serial.log. Every step has a
# time limit; the whole run stays under GV_XEN_TEST_LIMIT seconds (3000).
#   sh xen-test/run.sh [SCENARIO...]   (default: every scenario, in list order)
# XEN_SCENARIO_LIST=bench.list takes the scenarios from another list of this
# directory (make xen-bench); the default is scenarios.list.
set -u
here=$(cd "$(dirname "$0")" && pwd)
out="$here/out"
mkdir -p "$out"
limit=${GV_XEN_TEST_LIMIT:-3000}
log="$out/serial.log"
pass=0 fail=0
t_start=$(date +%s)

now() { date +%s.%N | cut -c1-14; }
elapsed() { echo "$1 $(now)" | awk '{ printf "%.1f", $2 - $1 }'; }
report_fail() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit
}

# The scenarios to run: all of scenarios.list, or those named on the command line.
list=${XEN_SCENARIO_LIST:-scenarios.list}
grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$here/$list" >"$out/scenarios.list" || { echo "no scenarios in xen-test/$list"; exit 2; }
if [ $# -gt 0 ]; then
	for n in "$@"; do
		grep -aq "^$n[[:space:]]" "$out/scenarios.list" || { echo "no scenario $n in xen-test/scenarios.list"; exit 2; }
	done
	pat=$(printf '%s\n' "$@" | sed 's/^/^/; s/$/[[:space:]]/')
	grep -e "$pat" "$out/scenarios.list" >"$out/scenarios.sel" || true
	mv "$out/scenarios.sel" "$out/scenarios.list"
fi

# Host side preparation; each step's own output goes to out/prepare.log.
: >"$out/prepare.log"
step() { # name, limit, command...
	_name=$1 _lim=$2; shift 2
	_t=$(now)
	if timeout -k 10 "$_lim" "$@" >>"$out/prepare.log" 2>&1; then
		echo "time: $_name $(elapsed "$_t") s"
		return 0
	fi
	report_fail "prepare_$_name" "failed or timed out (limit ${_lim}s); last lines of xen-test/out/prepare.log:"
	tail -n 8 "$out/prepare.log" | sed 's/^/  /'
	finish
}
step install_deps 300 sh "$here/../tools/install-deps.sh" --xen-test
step fetch 300 sh "$here/fetch.sh"
step build_root 300 sh "$here/build-root.sh"
step build_project 300 sh "$here/build-project.sh"
step build_kmod 300 sh "$here/build-kmod.sh"
grep -aE '^(build-project:|build-kmod:|  )' "$out/prepare.log"
step images 120 sh "$here/build-images.sh"

# Boot. QEMU runs in out/ so that the multiboot module names carry no paths
# (QEMU splits -initrd on commas and takes the first word as the file).
left=$((limit - ($(date +%s) - t_start)))
[ $left -gt 60 ] || { report_fail boot "no time left to boot (${left}s)"; finish; }
: >"$log"
t_boot=$(now)
(cd "$out" && exec timeout -k 5 "$left" qemu-system-x86_64 \
  -accel tcg,thread=multi -cpu qemu64,+svm -smp 2 -m 3072 -nographic -no-reboot \
  -kernel xen -append "dom0_mem=1536M,max:1536M console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all" \
  -initrd "vmlinuz console=hvc0 earlyprintk=xen quiet panic=1,dom0.cpio.gz" \
  </dev/null >"$log" 2>&1) &
qpid=$!

# Bounded polling of the log: dom0 up within 120 s, then GV-DONE or QEMU's end.
up=0 done=0
boot_deadline=$(( $(date +%s) + 120 ))
while kill -0 $qpid 2>/dev/null; do
	if [ $up -eq 0 ] && grep -aq 'GV-DOM0-UP' "$log"; then
		up=1
		echo "time: boot to dom0 toolstack $(elapsed "$t_boot") s"
	fi
	if grep -aq '^GV-DONE' "$log"; then done=1; break; fi
	if [ $up -eq 0 ] && [ "$(date +%s)" -gt $boot_deadline ]; then break; fi
	sleep 0.5
done
# After GV-DONE dom0 reboots and QEMU (-no-reboot) exits: give it 20 s.
n=40
while kill -0 $qpid 2>/dev/null && [ $done -eq 1 ] && [ $n -gt 0 ]; do sleep 0.5; n=$((n - 1)); done
if kill -0 $qpid 2>/dev/null; then
	kill $qpid 2>/dev/null        # timeout(1), which passes SIGTERM on to QEMU
fi
wait $qpid 2>/dev/null
grep -aq '^GV-DONE' "$log" && done=1
echo "time: QEMU ran $(elapsed "$t_boot") s"
grep -aq 'GV-DOM0-UP' "$log" && up=1
tr -d '\r' <"$log" >"$log.clean"

if [ $up -eq 0 ]; then
	report_fail boot "Xen/dom0 did not come up (log: xen-test/out/serial.log); its tail:"
	tail -n 25 "$log.clean" | sed 's/^/  /'
	finish
fi
pass=$((pass + 1)); echo "PASS boot"

# One line per scenario of scenarios.list, in its order.
for name in $(awk '{ print $1 }' "$out/scenarios.list"); do
	line=$(grep -aE "^GV-RESULT (PASS $name( |$)|FAIL $name:)" "$log.clean" | tail -n 1)
	case "$line" in
	"GV-RESULT PASS "*) pass=$((pass + 1)); echo "PASS $name (${line##* })" ;;
	"GV-RESULT FAIL "*) report_fail "$name" "${line#GV-RESULT FAIL $name: }"
	                    grep -aF "[$name] " "$log.clean" | tail -n 6 | sed 's/^/  /' ;;
	*) if grep -aq "^GV-BEGIN $name\$" "$log.clean"; then
	       report_fail "$name" "started but never reported (system hung or crashed); log tail:"
	   else
	       report_fail "$name" "never ran (system stopped before it)"
	   fi
	   tail -n 8 "$log.clean" | sed 's/^/  /' ;;
	esac
done
[ $done -eq 1 ] || report_fail shutdown "dom0 did not reach GV-DONE"
echo "time: total $(( $(date +%s) - t_start )) s"
finish
