#!/bin/sh
# xen-test/dom0-init.sh: /init of the dom0 initramfs (busybox sh).
# Brings up the Xen toolstack, then runs every scenario of /gv/scenarios.list
# in order and reports each on the console as one marker line, which
# xen-test/run.sh reads from the serial log:
#   GV-DOM0-UP                    toolstack is up
#   GV-RESULT PASS <name> <secs>
#   GV-RESULT FAIL <name>: <reason>
#   GV-DONE                       all scenarios ran; the machine reboots (QEMU exits)
export PATH=/usr/lib/xen-4.20/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu
/bin/busybox --install -s /bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run /tmp /var/log/xen/console /var/lib/xen
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/xen /run/xenstored /run/lock
# libxl keeps its locks under /var/run/xen: one /run for all.
rm -rf /var/run /var/lock
ln -s /run /var/run
ln -s /run/lock /var/lock

uptime_s() { cut -d' ' -f1 /proc/uptime; }
fatal() { echo "GV-RESULT FAIL dom0_boot: $*"; echo "GV-DONE"; reboot -f; }

# Module order matters: xenfs needs privcmd.
for m in xen-evtchn xen-privcmd xenfs xen-gntdev xen-gntalloc; do
	insmod "/lib/modules/xen/$m.ko" || fatal "insmod $m failed"
done
mount -t xenfs xenfs /proc/xen || fatal "mount xenfs failed"

# C xenstored (oxenstored hung in this image), then dom0's own keys, then consoles.
xenstored --pid-file /run/xenstored.pid || fatal "xenstored did not start"
i=0
until xenstore-read / >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -le 100 ] || fatal "xenstored not answering after 10 s"
	sleep 0.1
done
xen-init-dom0 >/tmp/xen-init-dom0.log 2>&1 || { cat /tmp/xen-init-dom0.log; fatal "xen-init-dom0 failed"; }
xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console \
  || fatal "xenconsoled did not start"
echo "GV-DOM0-UP at $(uptime_s) s uptime"

cd /gv
. /gv/scenario-lib.sh; . /gv/scenarios.sh; . /gv/stress.sh
# Each line: <name> <timeout seconds> <command...>; '#' comments, blank lines ignored.
grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' /gv/scenarios.list >/tmp/scenarios
while read -r name limit cmd; do
	echo "GV-BEGIN $name"
	t0=$(uptime_s)
	timeout -s KILL "$limit" sh -c ". /gv/scenario-lib.sh; . /gv/scenarios.sh; . /gv/stress.sh; $cmd" </dev/null >/tmp/sc.out 2>&1
	rc=$?
	t1=$(uptime_s)
	sed "s|^|[$name] |" /tmp/sc.out
	secs=$(echo "$t0 $t1" | awk '{ printf "%.1f", $2 - $1 }')
	if [ $rc -eq 0 ]; then
		echo "GV-RESULT PASS $name ${secs}s"
	else
		if [ $rc -eq 137 ]; then
			why="timed out after ${limit}s"
		else
			why="exit $rc: $(grep -v '^[[:space:]]*$' /tmp/sc.out | tail -n 1)"
		fi
		echo "GV-RESULT FAIL $name: $why"
	fi
	gv_cleanup_guests </dev/null
done </tmp/scenarios
echo "GV-DONE"
sync
reboot -f
