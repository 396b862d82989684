# xen-test/scenario-lib.sh: shell functions for scenarios (sourced in dom0 by
# the scenario runner of dom0-init.sh before each command of scenarios.list,
# and by scenarios.sh). A scenario passes when its command exits 0; the last
# non-empty line of its output is the failure reason otherwise.
#
#   gv_guest_start [cfg line...]   xl create a paused PV guest (busybox root with
#                                  the project's binaries in /gv) with the base
#                                  config plus the given lines; sets GV_DOMID
#   gv_guest_cmd CMD               leave CMD for the guest (data/gv-cmd), unpause
#   gv_guest_wait SECS             wait for the guest's data/gv-result; prints its
#                                  output and console log; returns its status
#   gv_guest_run CMD [cfg line...] the three above; the guest stays alive (the
#                                  runner destroys it after the scenario) so the
#                                  caller can inspect xenstore/Xen first
#   gv_xs_wait PATH SECS           wait for a xenstore key to exist
#   gv_grants_active DOMID         active grant entries Xen reports for DOMID
#                                  (from `xl debug-keys g`; prints a number)
#   gv_cleanup_guests              destroy every domain but dom0
GV_GUEST_NAME=gvguest

gv_xs_wait() {
	_n=$(( $2 * 10 ))
	until xenstore-exists "$1" 2>/dev/null; do
		_n=$((_n - 1)); [ $_n -gt 0 ] || { echo "gv_xs_wait: $1 not there after $2 s"; return 1; }
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
		echo 'vcpus = 1'
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
	xl unpause "$GV_DOMID" || { echo "xl unpause failed"; return 1; }
}

gv_guest_wait() {
	_r=/local/domain/$GV_DOMID/data/gv-result
	if ! gv_xs_wait "$_r" "$1"; then
		echo "--- guest console (no result)"; cat /var/log/xen/console/guest-$GV_GUEST_NAME.log 2>/dev/null
		echo "guest gave no result in $1 s"
		return 1
	fi
	_rc=$(xenstore-read "$_r")
	echo "--- guest console"; cat /var/log/xen/console/guest-$GV_GUEST_NAME.log 2>/dev/null; echo "---"
	if [ "$_rc" != 0 ]; then
		echo "guest command failed with status $_rc; its output ends:"
		xenstore-read "/local/domain/$GV_DOMID/data/gv-output" | tail -n 5
	fi
	return "$_rc"
}

gv_guest_run() {
	_cmd=$1; shift
	gv_guest_start "$@" || return 1
	gv_guest_cmd "$_cmd" || return 1
	gv_guest_wait "${GV_GUEST_TIMEOUT:-120}"
}

gv_grants_active() {
	xl debug-keys g >/dev/null 2>&1
	xl dmesg -c | awk -v d="$1" '
		/grant-table for remote d/ { cur = $0; sub(/.*remote d/, "", cur); sub(/[^0-9].*/, "", cur) }
		/active entries|--------/ { }
		/^\(XEN\)[[:space:]]+\[/ { if (cur == d) n++ }
		END { print n + 0 }'
}

gv_cleanup_guests() {
	for _d in $(xl list 2>/dev/null | awk 'NR > 1 && $2 != 0 { print $2 }'); do
		xl destroy "$_d" >/dev/null 2>&1
	done
	rm -f /var/log/xen/console/guest-*.log
}
