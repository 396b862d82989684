#!/bin/sh
# xen-test/guest-init.sh: /init of the guest initramfs (busybox sh).
# Runs the one command dom0 left in this domain's xenstore key data/gv-cmd
# (written while the domain was paused), then reports through its own
# data/ directory, which dom0 reads:
#   data/gv-output  the last 1500 bytes of the command's output (xenstored
#                   refuses longer values from a guest: its quota is 2048)
#   data/gv-result  its exit status (written last)
# Then idles until dom0 destroys or shuts down the domain.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu
/bin/busybox --install -s /bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp /run
mount -t tmpfs tmpfs /tmp
for m in xen-evtchn xen-privcmd xenfs xen-gntdev; do
	insmod "/lib/modules/xen/$m.ko" || echo "guest: insmod $m failed"
done
mount -t xenfs xenfs /proc/xen
# gntalloc's limit (pages granted by all its users together; 1024 by default)
# may be set by dom0 in data/gv-gntalloc-limit before unpausing the guest.
limit=$(xenstore-read data/gv-gntalloc-limit 2>/dev/null)
insmod /lib/modules/xen/xen-gntalloc.ko ${limit:+limit=$limit} || echo "guest: insmod xen-gntalloc failed"
[ -n "$limit" ] && echo "guest: xen-gntalloc limit=$limit"
# `xl shutdown` writes control/shutdown = poweroff; Linux's PV shutdown handler
# then runs /sbin/poweroff (orderly_poweroff, kernel.poweroff_cmd) and drops
# the request if that fails: busybox's links are all in /bin, so without this
# a guest never shut down (xl shutdown -w waited for ever). This one does what
# an init would: unmount the guest's disks, sync, power off; the kernel then
# runs its reboot notifiers (grant_virtio.ko closes its devices there).
cat >/sbin/poweroff <<'EOF_POWEROFF'
#!/bin/sh
echo "guest: orderly poweroff" >/dev/console
for m in $(awk '$1 ~ /^\/dev\/vd/ { print $2 }' /proc/mounts); do
	umount "$m" || mount -o remount,ro "$m"
done
sync
exec /bin/busybox poweroff -f
EOF_POWEROFF
chmod 755 /sbin/poweroff
echo "GV-GUEST-UP domid $(xenstore-read domid)"

i=0
until cmd=$(xenstore-read data/gv-cmd 2>/dev/null); do
	i=$((i + 1))
	if [ $i -gt 300 ]; then
		xenstore-write data/gv-output "no data/gv-cmd after 30 s" data/gv-result 125
		cmd=""
		break
	fi
	sleep 0.1
done
if [ -n "$cmd" ]; then
	echo "guest: running: $cmd"
	cd /gv
	sh -c "$cmd" </dev/null >/tmp/out 2>&1
	rc=$?
	cat /tmp/out
	echo "guest: exit status $rc"
	xenstore-write data/gv-output "$(tail -c 1500 /tmp/out)"
	xenstore-write data/gv-result "$rc"
fi
trap 'poweroff -f' USR2 TERM
while :; do sleep 3600 & wait $!; done
