#!/bin/sh
# tools/gv-stress.sh: cycles of attach, I/O, detach between the real
# gv-frontend and gv-backend on the simulated Xen, with faults injected
# between and during requests, and the invariants checked after every cycle.
# Stops at the first violation with a report.
#
#   sh tools/gv-stress.sh [-n CYCLES] [-s SEED]      (default 200 cycles)
#   make stress                                      (200 cycles, ~2 minutes)
#   sh tools/gv-stress.sh -n 20000                   (the long run)
#
# Each cycle: gv-frontend verify (random I/O) in one DMA strategy (bounce,
# grant, pool in turn), and one fault drawn at random:
#   none          the verify must pass
#   kill-guest    SIGKILL of the guest process during its I/O
#   kill-backend  SIGKILL of gv-backend during the I/O, then a new gv-backend
#                 takes the device over: the verify must pass
#   term-backend  SIGTERM of gv-backend during the I/O (the hand-over of a
#                 restart: exit 0), then a new gv-backend takes the device
#                 over: the verify must pass
#   rm-node       the device's backend node removed from xenstore during the
#                 I/O; the guest is then destroyed and created again (gv-xl)
# gv-simxen itself is not restarted: it is the hypervisor and xenstored
# together, and every domain, grant and connection dies with it (as with a
# real Xen host), so there is nothing to survive; a new world is a new run.
# Invariants after each cycle (once the device is back in InitWait):
#   - dom0 (the backend) maps no page; the guest has no grant active
#     (leaked grants, counted by the hypervisor, are reported apart)
#   - gv-backend's open fds and RSS do not grow (baseline: its first cycle)
#   - the xenstore tree holds only keys of xenstore-schema/virtio.tsv
set -u
# Run from the source tree (tools/gv-stress.sh: programs in build/) or
# installed (PREFIX/bin/gv-stress: programs beside it, lib.sh and the schema
# in PREFIX/share/grant-virtio).
here=$(cd "$(dirname "$0")" && pwd)
if [ -f "$here/../xenstore-schema/virtio.tsv" ]; then
	B=${GV_BUILD:-$here/../build} share=$here schema=$here/../xenstore-schema/virtio.tsv
else
	B=${GV_BUILD:-$here} share=$here/../share/grant-virtio
	schema=$share/virtio.tsv
fi
usage() {
	echo "usage: gv-stress [-n CYCLES] [-s SEED]   (see man gv-stress)"
}
cycles=200 seed=$$
while getopts n:s:h o; do
	case $o in
	n) cycles=$OPTARG ;;
	s) seed=$OPTARG ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
case "$cycles$seed" in
*[!0-9]*|'') usage >&2; echo "gv-stress: -n and -s take whole numbers" >&2; exit 2 ;;
esac
work=$(mktemp -d /tmp/gv-stress-XXXXXX)
export GV_PLATFORM=sim GV_SIM_DIR="$work/xen" XENSTORED_PATH="$work/xen/dom0/xenstored"
simpid= bepid= fepid= failed=0

cleanup() {
	[ -n "$fepid" ] && kill -9 "$fepid" 2>/dev/null && wait "$fepid" 2>/dev/null
	[ -n "$bepid" ] && kill "$bepid" 2>/dev/null && wait_bounded "$bepid" 20 2>/dev/null
	[ -n "$simpid" ] && kill "$simpid" 2>/dev/null && wait_bounded "$simpid" 20 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

. "$share/lib.sh"

# a small deterministic random number generator (the seed makes a run repeatable)
# (sets r: a $(...) subshell would lose the state)
rnd() { seed=$(( (seed * 1103515245 + 12345) % 2147483648 )); r=$(( seed / 65536 % $1 )); }

img="$work/disk.img"
truncate -s 8M "$img"
cfg="$work/guest.cfg"
printf 'name = "stress"\nvirtio = [ "backend=0,type=virtio,device2,transport=mmio,grant_usage=1" ]\n' >"$cfg"
start_daemon gv-simxen "$work/simxen.log" --dir "$GV_SIM_DIR"; simpid=$pid
start_daemon gv-backend "$work/backend.log" --disk "stress:0=$img"; bepid=$pid
dom=$("$B/gv-xl" create "$cfg") || { echo "gv-stress: gv-xl create failed"; exit 1; }

# allowed keys, as regular expressions, from the schema
be_re=$(awk -F'\t' '$1=="BE"{gsub(/<n>/,"[0-9]+",$2); printf "%s|", $2}' "$schema")
fe_re=$(awk -F'\t' '$1=="FE"{gsub(/<n>/,"[0-9]+",$2); printf "%s|", $2}' "$schema")

violation() {
	echo "gv-stress: VIOLATION in cycle $i (fault $fault, dma $dma): $*"
	echo "--- gv-xl list"; "$B/gv-xl" list
	echo "--- backend log (last 25 lines)"; tail -25 "$work/backend.log"
	failed=1
}

# The device at rest: InitWait; or Closed after its frontend died (it waits
# for the next frontend to write Initialising, docs/transport.md step 8); or
# refused: a guest killed during the handshake leaves Initialised keys whose
# grants and ports died with it, so the backend cannot connect and refuses the
# device as it would a hostile frontend's (Closing, device-status 64, error);
# the next frontend's Initialising resets it, which the next cycle checks.
# At most 10 s, woken by a xenstore watch on the device's directory (it fires
# once when set, then on every change below it).
settle() {
	be="/local/domain/0/backend/virtio/$dom/0"
	rm -f "$work/watch"; mkfifo "$work/watch"
	timeout 10 xenstore-watch "$be" >"$work/watch" &
	wpid=$! at_rest=1
	while read -r _; do
		st=$(xenstore-read "$be/state" 2>/dev/null) || break
		case $st in
		2|6) at_rest=0; break ;;
		5) if [ "$(xenstore-read "$be/device-status" 2>/dev/null)" = 64 ] &&
		      xenstore-read "$be/error" >/dev/null 2>&1; then
			refused=$((refused + 1)); at_rest=0; break
		   fi ;;
		esac
	done <"$work/watch"
	kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null
	rm -f "$work/watch"
	return $at_rest
}

check() {
	list=$("$B/gv-xl" list) || { violation "gv-xl list failed"; return; }
	maps=$(echo "$list" | awk '$1=="Domain-0"{print $5}')
	granted=$(echo "$list" | awk -v d="$dom" '$2==d{print $4}')
	[ "$maps" = 0 ] || { violation "the backend still maps $maps pages"; return; }
	[ "${granted:-0}" = 0 ] || { violation "the guest still has $granted grants active"; return; }
	fds=$(ls "/proc/$bepid/fd" | wc -l)
	rss=$(awk '/RssAnon/{print $2}' "/proc/$bepid/status")   # private memory
	if [ -z "$base_fds" ]; then base_fds=$fds base_rss=$rss; fi
	[ "$fds" -le $((base_fds + 2)) ] || { violation "gv-backend fds grew from $base_fds to $fds"; return; }
	[ "$rss" -le $((base_rss + 4096)) ] || { violation "gv-backend RSS grew from $base_rss to $rss kB"; return; }
	bad=$(xenstore-ls -f "/local/domain/0/backend/virtio/$dom/0" 2>/dev/null | sed 's/ = .*//' |
	      sed "s|^/local/domain/0/backend/virtio/$dom/0/||" | grep -Ev "^(${be_re%|}|config)$")
	[ -z "$bad" ] || { violation "keys not in the schema under BE: $bad"; return; }
	bad=$(xenstore-ls -f "/local/domain/$dom/device/virtio/0" 2>/dev/null | sed 's/ = .*//' |
	      sed "s|^/local/domain/$dom/device/virtio/0/||" | grep -Ev "^(${fe_re%|}|queue-[0-9]+)$")
	[ -z "$bad" ] || { violation "keys not in the schema under FE: $bad"; return; }
}

seed0=$seed faults=0 none=0 kg=0 kb=0 tb=0 rn=0 refused=0 base_fds= base_rss=
t0=$(date +%s)
i=0
while [ $i -lt "$cycles" ] && [ $failed = 0 ]; do
	i=$((i + 1))
	case $((i % 3)) in 0) dma=bounce ;; 1) dma=grant ;; 2) dma=pool ;; esac
	rnd 8
	case $r in 0|1) fault=kill-guest ;; 2) fault=kill-backend ;; 3) fault=rm-node ;; 4) fault=term-backend ;; *) fault=none ;; esac
	settle || { violation "the device did not come to rest (state ${st:-none})"; break; }
	"$B/gv-frontend" --domid "$dom" --dma "$dma" --timeout 5000 --io-timeout 10000 \
		verify --size 256K --random \
		--seed "$i" >"$work/fe.log" 2>&1 &
	fepid=$!
	# the fault lands at a random point of the I/O (0-40 ms in): random
	# timing on purpose, not a synchronisation
	rnd 40
	[ $fault != none ] && sleep "$(printf '0.%03d' $r)"
	case $fault in
	none)
		none=$((none + 1))
		wait_bounded $fepid 60; rc=$?; fepid=
		[ $rc = 0 ] || { violation "verify failed (exit $rc): $(tail -3 "$work/fe.log")"; break; } ;;
	kill-guest)
		kg=$((kg + 1)); faults=$((faults + 1))
		kill -9 $fepid 2>/dev/null; wait_bounded $fepid 10; fepid= ;;
	kill-backend)
		kb=$((kb + 1)); faults=$((faults + 1))
		# a new backend takes the device over: the I/O must succeed
		kill -9 $bepid; wait_bounded $bepid 10 2>/dev/null
		start_daemon gv-backend "$work/backend.log" --disk "stress:0=$img"; bepid=$pid
		wait_bounded $fepid 60; rc=$?; fepid=
		[ $rc = 0 ] || { violation "verify across a backend restart failed (exit $rc): $(tail -3 "$work/fe.log")"; break; }
		base_fds= ;;
	term-backend)
		tb=$((tb + 1)); faults=$((faults + 1))
		kill -TERM $bepid; wait_bounded $bepid 20; rc=$?
		[ $rc = 0 ] || { violation "gv-backend exited $rc on SIGTERM"; break; }
		start_daemon gv-backend "$work/backend.log" --disk "stress:0=$img"; bepid=$pid
		wait_bounded $fepid 60; rc=$?; fepid=
		[ $rc = 0 ] || { violation "verify across a SIGTERM hand-over failed (exit $rc): $(tail -3 "$work/fe.log")"; break; }
		base_fds= ;;
	rm-node)
		rn=$((rn + 1)); faults=$((faults + 1))
		xenstore-rm "/local/domain/0/backend/virtio/$dom/0"
		wait_bounded $fepid 60; fepid=
		"$B/gv-xl" destroy "$dom" >/dev/null 2>&1
		dom=$("$B/gv-xl" create "$cfg") || { violation "gv-xl create failed"; break; } ;;
	esac
	settle || { violation "the device did not come to rest (state ${st:-none})"; break; }
	check
	[ $((i % 50)) = 0 ] && echo "gv-stress: $i cycles, $faults faults (kill-guest $kg, kill-backend $kb, term-backend $tb, rm-node $rn), $(( $(date +%s) - t0 )) s"
done
echo "gv-stress: summary: $i cycles, $none clean, $faults faults injected (kill-guest $kg, kill-backend $kb, term-backend $tb, rm-node $rn), $refused refused handshakes of killed guests, $failed violations, $(( $(date +%s) - t0 )) s, seed $seed0"
[ $failed = 0 ]
