# xen-test/stress.sh: the grant-leak stress on real Xen (issue 13, item 6),
# the real-Xen counterpart of tools/gv-stress.sh. Sourced in dom0 beside
# scenario-lib.sh and scenarios.sh; scenarios.list runs `sc_grant_stress N`.
#
# gv-backend runs in dom0 serving a 16 MiB disk to guest "gvguest"; a PV guest
# runs gv-frontend verify --random (1 MiB, checked against a shadow copy) in
# the three DMA strategies in turn. Each cycle is attach / random verified
# I/O / detach, with one fault injected mid-I/O, the faults taken in turn from
# $GVS_FAULTS (the DMA strategy turns with period 3 and shifts by one every
# round of the faults, so every fault meets every strategy; the moment of the fault within the I/O is random, from $GVS_SEED):
#   none          the verify must pass (exit 0)
#   kill_fe       SIGKILL of gv-frontend inside the guest (the guest lives on)
#   kill_backend  SIGKILL of gv-backend, then a new gv-backend is started:
#                 it takes the device over, the verify must pass (exit 0)
#   term_backend  SIGTERM of gv-backend (the hand-over: exit 0), a new one
#                 started: it takes the device over with nothing left to
#                 serve again, the verify must pass (exit 0)
#   destroy       xl destroy of the guest; the next cycle creates a new one
#   rm_node       the device's backend node removed from xenstore, then the
#                 guest destroyed; the next cycle creates a new one
# With GVS_TRANSPORT=kmod (sc_grant_stress_kmod) the guest's transport is the
# kernel module grant_virtio.ko instead of gv-frontend: each cycle is one
# `kmod-guest.sh cycle` command (load the module with the cycle's DMA
# strategy, grant or bounce in turn; region A written; GVS_KMOD_PASSES
# verified O_DIRECT passes of 256 KiB on /dev/vda, GVS_KMOD_CLEAN in clean
# cycles; unload), and the faults are those that apply to it:
#   kmod_unload   the module unloaded mid-I/O (the disk unbound, grant_virtio
#                 removed while the passes and 8 MiB O_DIRECT writes run, once
#                 the disk has a request in flight), then, while it is out,
#                 Xen's dump must show no grant of the guest mapped and
#                 gv-backend no gntdev mapping; reloaded, region A must read
#                 back unchanged and GVS_KMOD_RESUME passes must pass
#   none, kill_backend, term_backend, destroy   as above (a backend restart
#                 must cost the module's I/O no error)
# A guest is reused across cycles while the fault lets it live (creating one
# costs seconds under TCG): it runs a command loop (GVS_GUEST_LOOP) that takes
# its n-th command from its own xenstore key data/gvs-cmd-<n>, answers in
# data/gvs-rc-<n> / data/gvs-out-<n>, and SIGKILLs it when data/gvs-kill-<n>
# appears.
#
# Oracles after EACH cycle (gvs_check), Xen's own first:
#   - `xl debug-keys g` + `xl dmesg` (gv_grant_rows): no active grant entry
#     of a gone guest (any ref), none of a live guest's beyond refs 0-7 (its
#     console and xenstore rings), mapped by dom0, once the device is at rest;
#     and no active grant of dom0 itself;
#   - `xl list` shows no "(null)" domain;
#   - gv-backend's /proc/<pid>/maps holds no /dev/xen/gntdev mapping (every
#     grant it maps is an mmap of the gntdev device: the kernel's view of what
#     the daemon still maps), and its open fds and private memory (RssAnon)
#     do not grow.
# A failing cycle prints which invariant broke and the relevant dump lines
# (the grant rows, `xl list`, the device's xenstore keys, the backend's log).
# Every wait has a limit (GVS_* below).
#
# Adding a fault (e.g. the kernel transport's module unload/reload): write a
# function gvs_fault_<name> and add <name> to GVS_FAULTS. It is called once
# the frontend command $gvs_n of guest $GV_DOMID has been sent; it injects the
# fault (gvs_mid_io first, to land during the I/O), and returns 0 when the
# cycle may be checked, non-zero with a reason as its last line otherwise. If
# it destroyed the guest it appends its domid to $gvs_gone and empties
# $GV_DOMID (the next cycle creates a guest); a guest left alive must have no
# frontend command running.

GVS_TRANSPORT=${GVS_TRANSPORT:-user}
if [ "$GVS_TRANSPORT" = kmod ]; then
	GVS_FAULTS=${GVS_FAULTS:-"none kmod_unload kill_backend term_backend destroy"}
else
	GVS_FAULTS=${GVS_FAULTS:-"none kill_fe kill_backend term_backend destroy rm_node"}
fi
# the kernel transport's cycles: verified passes of 256 KiB (kmod-guest.sh cycle;
# a pass costs a few seconds under TCG: each is several processes in a PV guest)
GVS_KMOD_PASSES=${GVS_KMOD_PASSES:-8}    # fault cycles: the fault lands among them
GVS_KMOD_CLEAN=${GVS_KMOD_CLEAN:-2}      # clean cycles
GVS_KMOD_RESUME=${GVS_KMOD_RESUME:-2}    # after the reload of a kmod_unload
GVS_SEED=${GVS_SEED:-1}
GVS_SIZE=${GVS_SIZE:-256K}
# verify's options: the random pass (at least 200 requests of up to 4 MiB,
# each checked against a shadow copy) where a fault interrupts the I/O; the
# sequential pass alone (write, read back, compare) in clean cycles, where the
# I/O must run to its end: the random pass costs 1-4 minutes under TCG.
GVS_IO_FAULT=${GVS_IO_FAULT:---random}
GVS_IO_CLEAN=${GVS_IO_CLEAN:-}
GVS_IO_LIMIT=${GVS_IO_LIMIT:-240}     # s: a frontend command to end (90 s seen for 256K under load)
GVS_REST_LIMIT=${GVS_REST_LIMIT:-20}  # s: the device to come to rest, a daemon to start
GVS_GONE_LIMIT=${GVS_GONE_LIMIT:-15}  # s: a destroyed guest to vanish, its mappings to go
GVS_VIRTIO='virtio = [ "backend=0,type=virtio,device2,transport=mmio,grant_usage=1" ]'
GVS_DISK=/tmp/gvs-disk.img

# The guest's command loop (one line: xenstore-read escapes newlines). It
# sleeps on xenstore watches, not polls: every process started in a PV guest
# under TCG costs a lot. Command n runs as its own process; a watcher waits
# for data/gvs-kill-<n> and SIGKILLs it if that says "kill" (the loop writes
# "done" there itself when the command ended, which ends the watcher). The
# 2 s timeout only covers a command key written before its watch was set.
GVS_GUEST_LOOP='n=1; while :; do until c=$(xenstore-read data/gvs-cmd-$n 2>/dev/null); do timeout 2 xenstore-watch -n 2 data/gvs-cmd-$n >/dev/null 2>&1; done; sh -c "exec $c" >/tmp/gvs.out 2>&1 & p=$!; (xenstore-watch -n 2 data/gvs-kill-$n >/dev/null 2>&1; [ "$(xenstore-read data/gvs-kill-$n 2>/dev/null)" = kill ] && kill -9 $p) & w=$!; wait $p; rc=$?; xenstore-write data/gvs-kill-$n done; wait $w; xenstore-write data/gvs-out-$n "$(tail -c 1000 /tmp/gvs.out)" data/gvs-rc-$n $rc; n=$((n + 1)); done'

# deterministic random numbers from GVS_SEED: sets gvs_r in [0, $1)
gvs_rnd() {
	gvs_seed=$(( (gvs_seed * 1103515245 + 12345) % 2147483648 ))
	gvs_r=$(( gvs_seed / 65536 % $1 ))
}

gvs_now() { cut -d' ' -f1 /proc/uptime; }
gvs_since() { echo "$1 $(gvs_now)" | awk '{ printf "%.1f", $2 - $1 }'; }

gvs_be_dir() { echo "/local/domain/0/backend/virtio/$1/0"; }
gvs_bepid() { cat /tmp/gv-backend.pid 2>/dev/null; }
# gntdev mappings of gv-backend, from the kernel (lines of /proc/<pid>/maps)
gvs_be_maps() { grep -c '/dev/xen/gntdev' "/proc/$(gvs_bepid)/maps" 2>/dev/null; }

gvs_backend_start() {
	gv_bg_start backend ./build-xen/gv-backend --platform xen --disk "$GV_GUEST_NAME:0=$GVS_DISK" || return 1
	gv_wait_log backend 'serving' "$GVS_REST_LIMIT" || { gv_bg_log backend | tail -n 20; return 1; }
	gvs_base_fds= gvs_base_rss=
}

# A new guest with the blk device, running the command loop; the device in InitWait.
gvs_guest_new() {
	_t=$(gvs_now)
	gv_guest_start "$GVS_VIRTIO" >/tmp/gvs-create.out 2>&1 || { cat /tmp/gvs-create.out; return 1; }
	GV_DOMID=$(xl domid "$GV_GUEST_NAME") || { echo "xl domid failed"; return 1; }
	GV_GNTALLOC_LIMIT=16384
	gv_guest_cmd "$GVS_GUEST_LOOP" || return 1
	unset GV_GNTALLOC_LIMIT
	gv_xs_wait_value "$(gvs_be_dir "$GV_DOMID")/state" 2 "$GVS_REST_LIMIT" || return 1
	gvs_n=0 gvs_guests=$((gvs_guests + 1))
	echo "guest d$GV_DOMID created in $(gvs_since "$_t") s"
}

# Sends the next frontend command to the guest (number $gvs_n): $1 DMA
# strategy, $2 seed, $3 verify's I/O options.
gvs_fe_start() {
	gvs_n=$((gvs_n + 1))
	if [ "$GVS_TRANSPORT" = kmod ]; then
		_np=$GVS_KMOD_PASSES
		[ "$gvs_fault" = none ] && _np=$GVS_KMOD_CLEAN
		xenstore-write "/local/domain/$GV_DOMID/data/gvs-cmd-$gvs_n" \
		  "sh /gv/kmod-guest.sh cycle $gvs_n $1 $_np $GVS_KMOD_RESUME"
		return
	fi
	xenstore-write "/local/domain/$GV_DOMID/data/gvs-cmd-$gvs_n" \
	  "./build-xen/gv-frontend --platform xen --devid 0 --dma $1 --timeout 5000 verify --size $GVS_SIZE --seed $2 $3"
}
gvs_fe_done() { xenstore-exists "/local/domain/$GV_DOMID/data/gvs-rc-$gvs_n" 2>/dev/null; }
gvs_fe_out() {
	xenstore-read "/local/domain/$GV_DOMID/data/gvs-out-$gvs_n" 2>/dev/null | sed 's/\\n/\n/g; s/^/  guest: /'
}
# Waits (SECS) for the frontend command's exit status: sets gvs_rc. Sleeps
# on a xenstore watch of the key, each watch bounded to 2 s, the whole to SECS.
gvs_fe_wait() {
	_rk=/local/domain/$GV_DOMID/data/gvs-rc-$gvs_n
	_now=$(gvs_now)
	_end=$(( ${_now%.*} + $1 ))
	until gvs_fe_done; do
		_now=$(gvs_now)
		[ "${_now%.*}" -lt "$_end" ] || { gvs_rc=; echo "the frontend (command $gvs_n of d$GV_DOMID) did not end within $1 s"; return 1; }
		timeout 2 xenstore-watch -n 2 "$_rk" >/dev/null 2>&1
	done
	gvs_rc=$(xenstore-read "$_rk")
	xenstore-rm "/local/domain/$GV_DOMID/data/gvs-cmd-$gvs_n" 2>/dev/null
	xenstore-rm "/local/domain/$GV_DOMID/data/gvs-kill-$gvs_n" 2>/dev/null
	return 0
}

# Waits until the I/O runs (the device Connected and gv-backend mapping guest
# pages), then a random 0-0.5 s more: the fault lands at a random point of the
# I/O (random timing on purpose, not a synchronisation). Counts a fault that
# came after the frontend had already ended as late.
gvs_mid_io() {
	_be=$(gvs_be_dir "$GV_DOMID")
	_k=$(( GVS_IO_LIMIT * 10 ))
	until [ "$(xenstore-read "$_be/state" 2>/dev/null)" = 4 ] && [ "$(gvs_be_maps)" -gt 0 ] &&
	      { [ "$GVS_TRANSPORT" != kmod ] || xenstore-exists "/local/domain/$GV_DOMID/data/gvs-pass-$gvs_n" 2>/dev/null; }; do
		gvs_fe_done && break
		_k=$((_k - 1))
		[ $_k -gt 0 ] || { echo "the I/O did not start within $GVS_IO_LIMIT s"; return 1; }
		sleep 0.2
	done
	gvs_rnd 500
	sleep "$(printf '0.%03d' "$gvs_r")"
	if gvs_fe_done; then
		gvs_late=$((gvs_late + 1)); gvs_when=late
	else
		gvs_when="mid-I/O, $(gvs_be_maps) gntdev mappings"
	fi
}

# The device at rest (bounded): InitWait; or Closed after its frontend died;
# or refused (Closing, device-status 64, error), as tools/gv-stress.sh.
gvs_settle() {
	_be=$(gvs_be_dir "$GV_DOMID")
	_k=$(( GVS_REST_LIMIT * 10 ))
	while :; do
		_st=$(xenstore-read "$_be/state" 2>/dev/null)
		case $_st in
		2|6) return 0 ;;
		5) [ "$(xenstore-read "$_be/device-status" 2>/dev/null)" = 64 ] && xenstore-read "$_be/error" >/dev/null 2>&1 &&
		     { gvs_refused=$((gvs_refused + 1)); return 0; } ;;
		esac
		_k=$((_k - 1))
		if [ $_k -le 0 ]; then
			echo "--- device keys"; xenstore-ls -fp "$_be"; xenstore-ls -fp "/local/domain/$GV_DOMID/device/virtio/0"
			echo "the device of d$GV_DOMID did not come to rest within $GVS_REST_LIMIT s (backend state ${_st:-none})"
			return 1
		fi
		sleep 0.1
	done
}

# A destroyed guest must vanish with everything that maps it (bounded): no
# "(null)" domain and no gntdev mapping left in gv-backend.
gvs_wait_gone() {
	_k=$(( GVS_GONE_LIMIT * 5 ))
	while [ "$(gvs_be_maps)" != 0 ]; do
		_k=$((_k - 1))
		[ $_k -gt 0 ] || return 0   # gvs_check reports what is left
		sleep 0.2
	done
	while xl list 2>/dev/null | grep -q '(null)'; do
		_k=$((_k - 1))
		[ $_k -gt 0 ] || return 0
		sleep 0.5
	done
}

gvs_destroy_guest() {
	xl destroy "$GV_DOMID" >/tmp/gvs-destroy.out 2>&1 || { echo "xl destroy d$GV_DOMID:"; cat /tmp/gvs-destroy.out; }
	_k=$(( GVS_GONE_LIMIT * 5 ))
	while xl list "$GV_GUEST_NAME" >/dev/null 2>&1; do
		_k=$((_k - 1))
		[ $_k -gt 0 ] || { echo "guest d$GV_DOMID still listed $GVS_GONE_LIMIT s after xl destroy"; return 1; }
		sleep 0.2
	done
	gvs_gone="$gvs_gone $GV_DOMID"
	GV_DOMID=
	gvs_wait_gone
}

# ---- the faults (see the top of this file) ------------------------------------------
gvs_fault_none() {
	gvs_fe_wait "$GVS_IO_LIMIT" || return 1
	[ "$gvs_rc" = 0 ] || { gvs_fe_out; echo "verify failed without a fault (exit $gvs_rc)"; return 1; }
	gvs_when="clean: $(gvs_fe_out | grep -oE '(sequential|random|passes): .*' | tr '\n' ' ')"
}

gvs_fault_kill_fe() {
	gvs_mid_io || return 1
	xenstore-write "/local/domain/$GV_DOMID/data/gvs-kill-$gvs_n" kill
	gvs_fe_wait "$GVS_IO_LIMIT" || return 1
}

# A backend stopped mid-I/O with signal $1 and a new one started: the new
# one takes the device over (docs/transport.md, "Backend restart") and the
# guest's verify must pass: 0 errors, the right data (exit 0), whatever the
# moment. Counts the takeovers and the requests served again.
gvs_backend_restart() {
	_ho= _tk=
	gvs_mid_io || return 1
	_pid=$(gvs_bepid)
	kill "-$1" "$_pid"; wait "$_pid"; _rc=$?
	cat /tmp/gv-backend.log >>/tmp/gvs-backend-old.log
	if [ "$1" = TERM ]; then
		[ $_rc -eq 0 ] || { tail -n 10 /tmp/gv-backend.log; echo "gv-backend exited $_rc on SIGTERM"; return 1; }
		_ho=$(grep -c 'handed over: left Connected' /tmp/gv-backend.log)
	fi
	gvs_backend_start || { echo "gv-backend did not start again after SIG$1"; return 1; }
	# the takeover happens before the new instance says it serves
	_tk=$(grep -o 'taken over from an earlier backend, [0-9]*' /tmp/gv-backend.log | awk '{ print $NF }')
	if [ -n "$_tk" ]; then
		gvs_takeovers=$((gvs_takeovers + 1)) gvs_again=$((gvs_again + _tk))
		[ "$1" = TERM ] && [ "$_tk" != 0 ] &&
			{ echo "after the SIGTERM hand-over the successor served $_tk requests again"; return 1; }
	fi
	gvs_fe_wait "$GVS_IO_LIMIT" || return 1
	[ "$gvs_rc" = 0 ] || { gvs_fe_out; echo "the guest's verify failed (exit $gvs_rc) across a backend restart by SIG$1"; return 1; }
	gvs_when="$gvs_when, ${_tk:+taken over ($_tk served again), }${_ho:+$_ho handed over, }frontend exit 0"
}

gvs_fault_kill_backend() {
	gvs_backend_restart KILL
}

gvs_fault_term_backend() {
	gvs_backend_restart TERM
}

gvs_fault_destroy() {
	gvs_mid_io || return 1
	gvs_destroy_guest
}

gvs_fault_rm_node() {
	gvs_mid_io || return 1
	xenstore-rm "$(gvs_be_dir "$GV_DOMID")" || { echo "xenstore-rm of the backend node failed"; return 1; }
	# the backend must drop the device: every mapping of it goes (bounded)
	_k=$(( GVS_REST_LIMIT * 5 ))
	until [ "$(gvs_be_maps)" = 0 ]; do
		_k=$((_k - 1))
		[ $_k -gt 0 ] || { grep gntdev "/proc/$(gvs_bepid)/maps"; echo "gv-backend still maps $(gvs_be_maps) areas $GVS_REST_LIMIT s after its node was removed"; return 1; }
		sleep 0.2
	done
	_t=$(gvs_now)
	gvs_fe_wait "$GVS_IO_LIMIT" || return 1
	# how the guest learnt it (the removed directory, or a timeout)
	gvs_when="$gvs_when, frontend exit $gvs_rc $(gvs_since "$_t") s after: $(gvs_fe_out | grep -E 'stopped|removed|took the device' | tail -n 1 | sed 's/^  guest: //')"
	gvs_destroy_guest
}

# The kernel module unloaded mid-I/O and loaded again (GVS_TRANSPORT=kmod;
# kmod-guest.sh cycle). While it is out (the guest waits for dom0's ack): the
# device at rest, Xen's dump shows no grant of the guest beyond refs 0-7
# mapped by dom0, gv-backend has no gntdev mapping. Then the guest reloads it
# and its command must end with exit 0 (region A unchanged, the resumed
# passes verified, detached with 0 grants left). A guest whose passes ended
# before it saw the request has not unloaded mid-I/O: counted as late.
gvs_fault_kmod_unload() {
	[ "$GVS_TRANSPORT" = kmod ] || { echo "kmod_unload needs GVS_TRANSPORT=kmod"; return 1; }
	gvs_mid_io || return 1
	_g=/local/domain/$GV_DOMID/data
	xenstore-write "$_g/gvs-fault-$gvs_n" unload
	_k=$(( GVS_IO_LIMIT / 2 ))
	until xenstore-exists "$_g/gvs-unloaded-$gvs_n" 2>/dev/null; do
		gvs_fe_done && break
		_k=$((_k - 1))
		[ $_k -gt 0 ] || { echo "the guest did not unload the module within $GVS_IO_LIMIT s"; return 1; }
		timeout 2 xenstore-watch -n 2 "$_g/gvs-unloaded-$gvs_n" >/dev/null 2>&1
	done
	if xenstore-exists "$_g/gvs-unloaded-$gvs_n" 2>/dev/null; then
		gvs_settle || { echo "the device did not come to rest with the module unloaded"; return 1; }
		gv_grant_rows 0 >/dev/null || { echo "no grant-table dump"; return 1; }
		_r=$(gvs_rows "$GV_DOMID" user_only)
		[ -z "$_r" ] || { echo "$_r"; echo "module unloaded: $(echo "$_r" | wc -l) grant entries of d$GV_DOMID (ref >= 8) still active toward dom0"; return 1; }
		_m=$(gvs_be_maps)
		[ "$_m" = 0 ] || { echo "module unloaded: gv-backend still has $_m gntdev mappings"; return 1; }
		gvs_unloads=$((gvs_unloads + 1))
		_u=$(xenstore-read "$_g/gvs-unloaded-$gvs_n")
		case $_u in *"in flight (read write) 0 0"*) ;; *) gvs_unload_inflight=$((gvs_unload_inflight + 1)) ;; esac
		case $_u in *"ended without error"*) ;; *) gvs_unload_ioerr=$((gvs_unload_ioerr + 1)) ;; esac
		xenstore-write "$_g/gvs-ack-$gvs_n" 1
		gvs_when="$gvs_when; $_u; nothing mapped while out"
	else
		gvs_late=$((gvs_late + 1)) gvs_when="late: the passes ended before the guest saw the request"
	fi
	gvs_fe_wait "$GVS_IO_LIMIT" || return 1
	[ "$gvs_rc" = 0 ] || { gvs_fe_out; echo "the guest's cycle failed (exit $gvs_rc) across the module's unload and reload"; return 1; }
	gvs_when="$gvs_when; $(gvs_fe_out | grep -oE 'reloaded: .*' | head -n 1)"
}

# ---- the oracles ---------------------------------------------------------------
gvs_violation() {
	echo "--- xl list"; xl list
	echo "--- gv-backend gntdev mappings"; grep gntdev "/proc/$(gvs_bepid)/maps" 2>/dev/null
	echo "--- gv-backend log (last 20 lines)"; gv_bg_log backend | tail -n 20
	echo "--- guest console (last 10 lines)"; tail -n 10 "/var/log/xen/console/guest-$GV_GUEST_NAME.log" 2>/dev/null
	echo "VIOLATION in cycle $gvs_i (fault $gvs_fault, dma $gvs_dma): $*"
}

# Active grant entries of domain $1 mapped by dom0 in the last dump
# (/tmp/gv-dmesg); with $2 = user_only, refs 0-7 are left out.
gvs_rows() {
	awk -v d="$1" -v u="${2:-}" '
		function hex(s,  i, v) { v = 0; for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1; return v }
		/grant-table for remote d[0-9]+/ { cur = $0; sub(/.*remote d/, "", cur); sub(/[^0-9].*/, "", cur); next }
		/^\(XEN\)[[:space:]]+\[0x[0-9a-f]+\]/ {
			if (cur != d || $3 != 0) next
			r = tolower($2); gsub(/[][]|0x/, "", r)
			if (u == "" || hex(r) >= 8) print }' /tmp/gv-dmesg
}

gvs_check() {
	[ -n "$GV_DOMID" ] && { gvs_settle || { gvs_violation "device not at rest"; return 1; }; }
	gv_grant_rows 0 >/dev/null || { gvs_violation "no grant-table dump"; return 1; }
	cp /tmp/gv-dmesg /tmp/gvs-dump-last
	for _d in $gvs_gone; do
		_r=$(gvs_rows "$_d")
		[ -z "$_r" ] || { echo "$_r"; gvs_violation "gone guest d$_d: $(echo "$_r" | wc -l) grant entries still active toward dom0"; return 1; }
	done
	if [ -n "$GV_DOMID" ]; then
		_r=$(gvs_rows "$GV_DOMID" user_only)
		[ -z "$_r" ] || { echo "$_r"; gvs_violation "live guest d$GV_DOMID, frontend ended: $(echo "$_r" | wc -l) grant entries (ref >= 8) still active toward dom0"; return 1; }
		gvs_rows "$GV_DOMID" >/tmp/gvs-live-rows
	fi
	_r=$(gvs_rows 0 user_only)
	[ -z "$_r" ] || { echo "$_r"; gvs_violation "dom0: $(echo "$_r" | wc -l) of its own grant entries active"; return 1; }
	gv_no_null_domains >/tmp/gvs-null.out || { cat /tmp/gvs-null.out; gvs_violation "a \"(null)\" domain in xl list"; return 1; }
	_pid=$(gvs_bepid)
	kill -0 "$_pid" 2>/dev/null || { gvs_violation "gv-backend died"; return 1; }
	_m=$(gvs_be_maps)
	[ "$_m" = 0 ] || { gvs_violation "gv-backend still has $_m gntdev mappings"; return 1; }
	_fds=$(ls "/proc/$_pid/fd" | wc -l)
	# RssAnon: the daemon's own memory (an image on tmpfs, as dom0's /tmp
	# is, is mapped by gv-backend: its pages count in VmRSS as the guest
	# touches them)
	_rss=$(awk '/RssAnon/ { print $2 }' "/proc/$_pid/status")
	[ -n "$gvs_base_fds" ] || { gvs_base_fds=$_fds gvs_base_rss=$_rss; }
	[ "$_fds" -le $((gvs_base_fds + 2)) ] || { ls -l "/proc/$_pid/fd"; gvs_violation "gv-backend fds grew from $gvs_base_fds to $_fds"; return 1; }
	[ "$_rss" -le $((gvs_base_rss + 4096)) ] || { gvs_violation "gv-backend RSS grew from $gvs_base_rss to $_rss kB"; return 1; }
	gvs_gone=
}

# ---- the scenario ------------------------------------------------------------------
# sc_grant_stress_kmod CYCLES [FAULTS]: the same with the guest kernel
# transport (GVS_TRANSPORT=kmod; FAULTS overrides GVS_FAULTS)
sc_grant_stress_kmod() {
	[ -f /gv/guest/kmod ] || { echo "grant_virtio.ko was not built (xen-test/out/kmod-build.log)"; return 1; }
	GVS_TRANSPORT=kmod
	GVS_FAULTS=${2:-"none kmod_unload kill_backend term_backend destroy"}
	sc_grant_stress "$1"
}

# sc_grant_stress CYCLES
sc_grant_stress() {
	_cycles=${1:-10}
	for _p in gv-backend gv-frontend; do
		[ -x ./build-xen/$_p ] || { echo "$_p was not built (see xen-test/out/build-xen.log)"; return 1; }
	done
	for gvs_fault in $GVS_FAULTS; do
		command -v "gvs_fault_$gvs_fault" >/dev/null || { echo "GVS_FAULTS: no function gvs_fault_$gvs_fault"; return 1; }
		case $GVS_TRANSPORT:$gvs_fault in
		kmod:kill_fe|kmod:rm_node) echo "GVS_FAULTS: $gvs_fault is a fault of the user-space frontend, not of grant_virtio.ko"; return 1 ;;
		esac
	done
	set -- $GVS_FAULTS
	_nf=$#
	gvs_seed=$GVS_SEED gvs_guests=0 gvs_late=0 gvs_refused=0 gvs_gone= GV_DOMID=
	gvs_takeovers=0 gvs_again=0 gvs_unloads=0 gvs_unload_inflight=0 gvs_unload_ioerr=0
	for gvs_fault in $GVS_FAULTS; do eval "gvs_count_$gvs_fault=0"; done
	dd if=/dev/zero of="$GVS_DISK" bs=1M count=0 seek=16 2>/dev/null
	: >/tmp/gvs-backend-old.log
	gvs_backend_start || return 1
	echo "grant stress: $_cycles cycles, transport $GVS_TRANSPORT, faults in turn: $GVS_FAULTS; seed $GVS_SEED"
	_t0=$(gvs_now)
	gvs_i=0
	while [ $gvs_i -lt "$_cycles" ]; do
		gvs_i=$((gvs_i + 1))
		_tc=$(gvs_now)
		if [ "$GVS_TRANSPORT" = kmod ]; then
			case $(( (gvs_i - 1 + (gvs_i - 1) / _nf) % 2 )) in 0) gvs_dma=grant ;; 1) gvs_dma=bounce ;; esac
		else
			case $(( (gvs_i - 1 + (gvs_i - 1) / _nf) % 3 )) in 0) gvs_dma=grant ;; 1) gvs_dma=pool ;; 2) gvs_dma=bounce ;; esac
		fi
		eval "gvs_fault=\${$(( (gvs_i - 1) % _nf + 1 ))}"
		if [ -z "$GV_DOMID" ]; then
			gvs_guest_new || { gvs_violation "no new guest"; return 1; }
		fi
		if [ "$gvs_fault" = none ]; then _io=$GVS_IO_CLEAN; else _io=$GVS_IO_FAULT; fi
		gvs_fe_start "$gvs_dma" "$gvs_i" "$_io" || { gvs_violation "cannot send the frontend command"; return 1; }
		gvs_when=
		_tf=$(gvs_now)
		"gvs_fault_$gvs_fault" || { gvs_fe_out; gvs_violation "fault $gvs_fault failed"; return 1; }
		_tk=$(gvs_now)
		gvs_check || return 1
		eval "gvs_count_$gvs_fault=\$((gvs_count_$gvs_fault + 1))"
		echo "cycle $gvs_i: $gvs_fault ($gvs_when), dma $gvs_dma, guest $([ -n "$GV_DOMID" ] && echo "d$GV_DOMID" || echo gone): invariants hold; $(gvs_since "$_tc") s (fault $(echo "$_tf $_tk" | awk '{ printf "%.1f", $2 - $1 }') s, checks $(gvs_since "$_tk") s)"
	done
	echo "--- the grant-table dump of the last check (xl debug-keys g; xl dmesg)"
	sed -n '/gnttab_usage_print_all \[/,/gnttab_usage_print_all \] done/p' /tmp/gvs-dump-last
	echo "---"
	_by=
	for gvs_fault in $GVS_FAULTS; do eval "_by=\"\$_by $gvs_fault \$gvs_count_$gvs_fault\""; done
	echo "grant stress: $gvs_i cycles in $(gvs_since "$_t0") s, by fault:$_by; $gvs_late faults came after the I/O ended; $gvs_takeovers takeovers by a new gv-backend ($gvs_again requests served again), 0 guest-visible errors across them; $gvs_refused refused handshakes; $gvs_guests guests created; seed $GVS_SEED"
	[ "$GVS_TRANSPORT" = kmod ] &&
		echo "grant stress (kernel transport): $gvs_unloads module unloads mid-I/O ($gvs_unload_inflight with requests in flight at the unbind, $gvs_unload_ioerr where the I/O running saw its disk go), each reloaded with the data verified"
	[ -z "$GV_DOMID" ] || { gvs_destroy_guest || return 1; }
	gvs_check || return 1
	gv_bg_stop backend; _rc=$?
	[ $_rc -eq 0 ] || { gv_bg_log backend | tail -n 20; echo "gv-backend exited with status $_rc on SIGTERM"; return 1; }
}
