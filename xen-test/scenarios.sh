# xen-test/scenarios.sh: scenarios longer than one line of scenarios.list,
# one shell function each (sc_<name>), sourced in dom0 with scenario-lib.sh.

# libxl's virtio devices: what `xl create` writes to xenstore for virtio = [...],
# checked key by key, and a guest that sees its frontend nodes.
sc_guest_virtio_keys() {
	gv_guest_run 'xenstore-ls -fp device; for d in 0 1; do xenstore-read device/virtio/$d/backend || exit 1; done' \
	  'virtio = [ "backend=0,type=virtio,device2,transport=mmio,grant_usage=1", "backend=0,type=virtio,device4,transport=mmio,grant_usage=1" ]' \
	  || return 1
	echo "--- xenstore-ls -fp after xl create with virtio = [...]"
	xenstore-ls -fp
	echo "---"
	b=/local/domain/0/backend/virtio/$GV_DOMID
	gv_expect "$b/0/type" "virtio,device2" || return 1
	gv_expect "$b/1/type" "virtio,device4" || return 1
	gv_expect "$b/0/transport" "mmio" || return 1
	gv_expect "$b/0/grant_usage" "1" || return 1
	gv_expect "$b/0/frontend-id" "$GV_DOMID" || return 1
	gv_expect "/local/domain/$GV_DOMID/device/virtio/0/backend-id" "0" || return 1
	gv_expect "/local/domain/$GV_DOMID/device/virtio/1/backend" "$b/1" || return 1
}

# Exploration: what libxl 4.20 writes for a disk with specification=virtio and
# backendtype=standalone (nobody serves it: the guest is only created, paused).
sc_virtio_disk_spec() {
	dd if=/dev/zero of=/tmp/vdisk.img bs=1M count=0 seek=16 2>/dev/null
	# target= takes the rest of the spec: it comes last
	gv_guest_start 'disk = [ "format=raw,vdev=xvda,access=rw,specification=virtio,backendtype=standalone,target=/tmp/vdisk.img" ]' \
	  || { echo "xl create refused the virtio/standalone disk"; return 1; }
	echo "--- xenstore-ls -fp after xl create -p with a virtio/standalone disk"
	xenstore-ls -fp
	echo "---"
	xenstore-ls -fp | grep -q "backend/virtio_disk/$GV_DOMID\|/device/virtio_disk/\|backend/vbd/$GV_DOMID" \
	  || { echo "no disk backend keys found for domain $GV_DOMID"; return 1; }
}

# Expects xenstore key $1 to hold exactly $2.
gv_expect() {
	_v=$(xenstore-read "$1" 2>/dev/null) || { echo "missing key $1"; return 1; }
	[ "$_v" = "$2" ] || { echo "$1 = \"$_v\", expected \"$2\""; return 1; }
}
