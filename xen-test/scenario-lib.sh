# xen-test/scenario-lib.sh: shell functions for scenarios (sourced in dom0 by
# the scenario runner of dom0-init.sh before each command of scenarios.list,
# and by scenarios.sh). A scenario passes when its command exits 0; the last
# non-empty line of its output is the failure reason otherwise.
#
#   gv_guest_start [cfg line...]   xl create a paused PV guest (busybox root with
#                                  the project's binaries in /gv) with the base
#                                  config plus the given lines; sets GV_DOMID
#   gv_guest_cmd CMD               leave CMD for the guest (data/gv-cmd), unpause;
#                                  with GV_GNTALLOC_LIMIT=N set, the guest loads
#                                  xen-gntalloc with limit=N (default 1024)
#   gv_guest_wait SECS             wait for the guest's data/gv-result; prints its
#                                  output and console log; returns its status
#   gv_guest_run CMD [cfg line...] the three above; the guest stays alive (the
#                                  runner destroys it after the scenario) so the
#                                  caller can inspect xenstore/Xen first
#   gv_xs_wait PATH SECS           wait for a xenstore key to exist
#   gv_xs_wait_value PATH VAL SECS wait for a xenstore key to hold VAL
#   gv_grants_active DOMID [user_only]  active grant entries Xen reports for
#                                  DOMID (`xl debug-keys g` + `xl dmesg`)
#   gv_no_null_domains             fails if `xl list` shows a "(null)" domain
#   gv_bg_start/gv_bg_stop/gv_bg_log  daemons (gv-backend...) in the background
#   gv_guest_destroy               xl destroy the guest, wait until it is gone
#   gv_guest_shutdown SECS         xl shutdown -w the guest, bounded; it is gone
#   gv_wait_log TAG PATTERN SECS   wait for a line in a background program's log
#   gv_guest_reason                repeat why the last gv_guest_wait failed
#   gv_cleanup_guests              destroy every domain but dom0, stop what
#                                  gv_bg_start started (the runner calls it)
GV_GUEST_NAME=gvguest

gv_xs_wait() {
	_n=$(( $2 * 10 ))
	until xenstore-exists "$1" 2>/dev/null; do
		_n=$((_n - 1)); [ $_n -gt 0 ] || { echo "gv_xs_wait: $1 not there after $2 s"; return 1; }
		sleep 0.1
	done
}

# Waits (SECS) for xenstore key PATH to hold VALUE.
gv_xs_wait_value() {
	_n=$(( $3 * 10 ))
	until [ "$(xenstore-read "$1" 2>/dev/null)" = "$2" ]; do
		_n=$((_n - 1))
		[ $_n -gt 0 ] || { echo "gv_xs_wait_value: $1 is \"$(xenstore-read "$1" 2>&1)\", not \"$2\", after $3 s"; return 1; }
		sleep 0.1
	done
}

gv_guest_start() {
	_cfg=/tmp/$GV_GUEST_NAME.cfg
	{
		echo "name = \"$GV_GUEST_NAME\""
		echo 'type = "pv"'
		echo 'kernel = "/gv/guest/vmlinuz"'
		echo 'ramdisk = "/gv/guest/initrd.gz"'
		echo 'extra = "console=hvc0 quiet"'
		echo 'memory = 256'
		echo "vcpus = ${GV_GUEST_VCPUS:-1}"
		echo 'on_crash = "destroy"'
		for _l in "$@"; do echo "$_l"; done
	} >"$_cfg"
	echo "--- guest config"; cat "$_cfg"; echo "---"
	xl create -p "$_cfg" || { echo "xl create failed"; return 1; }
	GV_DOMID=$(xl domid "$GV_GUEST_NAME") || { echo "xl domid failed"; return 1; }
	export GV_DOMID
	echo "guest domid $GV_DOMID"
}

gv_guest_cmd() {
	xenstore-write "/local/domain/$GV_DOMID/data/gv-cmd" "$1" || { echo "cannot write gv-cmd"; return 1; }
	if [ -n "${GV_GNTALLOC_LIMIT:-}" ]; then
		xenstore-write "/local/domain/$GV_DOMID/data/gv-gntalloc-limit" "$GV_GNTALLOC_LIMIT" || return 1
	fi
	xl unpause "$GV_DOMID" || { echo "xl unpause failed"; return 1; }
}

gv_guest_wait() {
	_r=/local/domain/$GV_DOMID/data/gv-result
	echo "guest $GV_DOMID gave no result in $1 s" >/tmp/gv-guest-reason
	if ! gv_xs_wait "$_r" "$1"; then
		echo "--- guest console (no result)"; cat /var/log/xen/console/guest-$GV_GUEST_NAME.log 2>/dev/null
		gv_guest_reason
		return 1
	fi
	_rc=$(xenstore-read "$_r")
	echo "--- guest console"; cat /var/log/xen/console/guest-$GV_GUEST_NAME.log 2>/dev/null; echo "---"
	if [ "$_rc" != 0 ]; then
		_last=$(xenstore-read "/local/domain/$GV_DOMID/data/gv-output" 2>/dev/null | sed 's/\\n/\n/g' |
		        grep -v '^[[:space:]]*$' | tail -n 1)
		echo "guest command failed (status $_rc): $_last" >/tmp/gv-guest-reason
		gv_guest_reason
	fi
	return "$_rc"
}

# Repeats why the last gv_guest_wait failed (for a scenario that prints more
# after it: the runner takes the last output line as the reason).
gv_guest_reason() {
	cat /tmp/gv-guest-reason 2>/dev/null
}

gv_guest_run() {
	_cmd=$1; shift
	gv_guest_start "$@" || return 1
	gv_guest_cmd "$_cmd" || return 1
	gv_guest_wait "${GV_GUEST_TIMEOUT:-120}"
}

# Xen's own grant-table dump (debug key g), printed to its console ring.
# Prints the rows of "grant-table for remote d<DOMID>": one per active entry,
# "[0xREF] localdom mfn pin localdom gmfn flags". Waits (5 s) for the dump's end.
gv_grant_rows() {
	xl dmesg -c >/dev/null 2>&1
	xl debug-keys g || { echo "xl debug-keys g failed" >&2; return 1; }
	_n=50
	until xl dmesg >/tmp/gv-dmesg 2>&1 && grep -q 'gnttab_usage_print_all \] done' /tmp/gv-dmesg; do
		_n=$((_n - 1)); [ $_n -gt 0 ] || { echo "no grant table dump in xl dmesg after 5 s" >&2; return 1; }
		sleep 0.1
	done
	awk -v d="$1" '
		/grant-table for remote d[0-9]+/ { cur = $0; sub(/.*remote d/, "", cur); sub(/[^0-9].*/, "", cur); next }
		/^\(XEN\)[[:space:]]+\[0x[0-9a-f]+\]/ { if (cur == d) print }' /tmp/gv-dmesg
}

# Active grant entries of DOMID (its pages someone has mapped), as a number.
# With user_only, refs below 8 are left out: Xen's reserved entries, of which
# a live PV guest always has two in use (0: console ring, 1: xenstore ring).
gv_grants_active() {
	gv_grant_rows "$1" >/tmp/gv-rows || return 1
	if [ "${2:-}" = user_only ]; then
		awk 'function hex(s,  i, v) { v = 0; for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1; return v }
		     { r = tolower($2); gsub(/[][]|0x/, "", r); if (hex(r) >= 8) n++ } END { print n + 0 }' /tmp/gv-rows
	else
		wc -l </tmp/gv-rows | tr -d ' '
	fi
}

# Fails if `xl list` shows a domain as "(null)": destroyed but its pages
# still held by someone (a leaked mapping).
gv_no_null_domains() {
	xl list >/tmp/gv-xl-list 2>&1
	if grep -q '(null)' /tmp/gv-xl-list; then
		cat /tmp/gv-xl-list
		echo "a destroyed domain lingers as (null): someone still maps its pages"
		return 1
	fi
}

# Background programs (daemons) for a scenario: output to /tmp/gv-<tag>.log.
#   gv_bg_start TAG CMD...   starts it, remembers its pid
#   gv_bg_stop TAG [SECS]    SIGTERM, waits (5 s), SIGKILL; returns its exit status
#   gv_bg_log TAG            prints its log, each line prefixed with the tag
gv_bg_start() {
	_tag=$1; shift
	"$@" </dev/null >"/tmp/gv-$_tag.log" 2>&1 &
	echo $! >"/tmp/gv-$_tag.pid"
	echo "started $_tag (pid $!): $*"
}
gv_bg_stop() {
	_pid=$(cat "/tmp/gv-$1.pid" 2>/dev/null) || { echo "gv_bg_stop: $1 was not started"; return 1; }
	kill "$_pid" 2>/dev/null
	_n=$(( ${2:-5} * 10 ))
	while kill -0 "$_pid" 2>/dev/null; do
		_n=$((_n - 1))
		if [ $_n -le 0 ]; then kill -9 "$_pid" 2>/dev/null; echo "$1 did not stop on SIGTERM: killed"; break; fi
		sleep 0.1
	done
	rm -f "/tmp/gv-$1.pid"
	wait "$_pid"
}
gv_bg_log() {
	sed "s|^|<$1> |" "/tmp/gv-$1.log"
}

# xl destroy the scenario's guest and wait (10 s) until Xen no longer lists it
# under its name (a "(null)" leftover is gv_no_null_domains' business).
gv_guest_destroy() {
	xl destroy "$GV_DOMID" || { echo "xl destroy $GV_DOMID failed"; return 1; }
	_n=100
	while xl list "$GV_GUEST_NAME" >/dev/null 2>&1; do
		_n=$((_n - 1)); [ $_n -gt 0 ] || { echo "guest $GV_DOMID still listed 10 s after xl destroy"; return 1; }
		sleep 0.1
	done
}

# xl shutdown -w of the scenario's guest, bounded (SECS): the guest powers
# itself off (its /sbin/poweroff, guest-init.sh); then Xen no longer lists it.
gv_guest_shutdown() {
	_t=$(cut -d' ' -f1 /proc/uptime)
	if ! timeout "$1" xl shutdown -w "$GV_DOMID"; then
		echo "--- guest console"; tail -n 20 /var/log/xen/console/guest-$GV_GUEST_NAME.log 2>/dev/null
		echo "xl shutdown -w of guest $GV_DOMID did not finish within $1 s"
		return 1
	fi
	_n=100
	while xl list "$GV_DOMID" >/dev/null 2>&1; do
		_n=$((_n - 1)); [ $_n -gt 0 ] || { xl list; echo "guest $GV_DOMID still listed 10 s after xl shutdown -w"; return 1; }
		sleep 0.1
	done
	echo "xl shutdown -w of guest $GV_DOMID took $(awk -v a="$_t" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }') s"
}

# Waits (SECS) for a line matching PATTERN (grep -E) in a gv_bg_start log.
gv_wait_log() {
	_n=$(( $3 * 10 ))
	until grep -qE "$2" "/tmp/gv-$1.log" 2>/dev/null; do
		_n=$((_n - 1)); [ $_n -gt 0 ] || { echo "no \"$2\" from $1 after $3 s"; return 1; }
		sleep 0.1
	done
}

gv_cleanup_guests() {
	for _d in $(xl list 2>/dev/null | awk 'NR > 1 && $2 != 0 { print $2 }'); do
		xl destroy "$_d" >/dev/null 2>&1
	done
	rm -f /var/log/xen/console/guest-*.log /tmp/gv-guest-reason
	# background programs a failed scenario left running (gv_bg_start)
	for _f in /tmp/gv-*.pid; do
		[ -e "$_f" ] || continue
		_pid=$(cat "$_f")
		if kill -0 "$_pid" 2>/dev/null; then
			echo "cleanup: stopping $(basename "$_f" .pid) (pid $_pid), left running"
			kill "$_pid" 2>/dev/null
			_n=50
			while kill -0 "$_pid" 2>/dev/null && [ $_n -gt 0 ]; do sleep 0.1; _n=$((_n - 1)); done
			kill -9 "$_pid" 2>/dev/null
		fi
		rm -f "$_f"
	done
}

# gv_since T: seconds (one decimal) since T, a first field of /proc/uptime
gv_since() {
	awk -v a="$1" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }'
}

# gv_wait_count NAME TEXT N SECONDS: until the log of background program NAME
# has N lines containing TEXT (a fixed string); at most SECONDS
gv_wait_count() {
	_n=$(( $4 * 10 ))
	until [ "$(grep -cF -- "$2" "/tmp/gv-$1.log" 2>/dev/null)" -ge "$3" ]; do
		_n=$((_n - 1)); [ $_n -gt 0 ] || { echo "fewer than $3 \"$2\" from $1 after $4 s"; return 1; }
		sleep 0.1
	done
}
