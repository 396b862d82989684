#!/bin/sh
# xen-test/build-images.sh: the two initramfs images, from cache/ (fetch.sh) and
# out/build-xen (build-project.sh):
#   out/guest.cpio.gz  busybox, trixie's libc + Xen libraries and xenstore
#                      tools, the Xen modules, the project's binaries, guest-init.sh
#   out/dom0.cpio.gz   the same plus Xen 4.20's toolstack (xl, xenstored,
#                      xenconsoled, xen-init-dom0), e2fsck, the scenario files, and the
#                      guest kernel + guest.cpio.gz in /gv/guest/
# and out/xen (the hypervisor, gunzipped: QEMU loads it as a multiboot kernel),
# out/vmlinuz (Debian 12's kernel, for dom0 and the guest).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/cache"
out="$here/out"
xr="$cache/xenroot"
kver=$(ls "$cache/kernel/lib/modules" | head -1)
busybox=$(command -v busybox)

common_tree() { # $1: root to fill
	r=$1
	rm -rf "$r"
	mkdir -p "$r/bin" "$r/sbin" "$r/usr/bin" "$r/usr/sbin" "$r/usr/lib" "$r/lib/modules/xen" \
	  "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/run" "$r/etc" "$r/gv" "$r/var"
	cp "$busybox" "$r/bin/busybox"
	ln -s busybox "$r/bin/sh"
	ln -s usr/lib64 "$r/lib64"
	cp -a "$xr/usr/lib64" "$r/usr/"
	cp -a "$xr/usr/lib/x86_64-linux-gnu" "$r/usr/lib/"
	rm -rf "$r/usr/lib/x86_64-linux-gnu/gconv"
	# sanitizer runtimes, for the *.asan test builds (build-project.sh)
	cp -a "$cache"/trixie-root/usr/lib/x86_64-linux-gnu/libasan.so.8* \
	  "$cache"/trixie-root/usr/lib/x86_64-linux-gnu/libubsan.so.1* \
	  "$cache"/trixie-root/usr/lib/x86_64-linux-gnu/libstdc++.so.6* "$r/usr/lib/x86_64-linux-gnu/"
	# gv-backend's io_uring library, from the root it was built in
	cp -a "$cache"/trixie-root/usr/lib/x86_64-linux-gnu/liburing.so.2* "$r/usr/lib/x86_64-linux-gnu/"
	cp -a "$xr"/usr/bin/xenstore* "$r/usr/bin/"
	for m in xen-evtchn xen-privcmd xenfs/xenfs xen-gntdev xen-gntalloc; do
		cp "$cache/kernel/lib/modules/$kver/kernel/drivers/xen/$m.ko" "$r/lib/modules/xen/"
	done
	# for make xen-bench (bench.sh): a dom0 ramdisk, Linux's block backend and frontend
	for m in brd xen-blkback/xen-blkback xen-blkfront; do
		cp "$cache/kernel/lib/modules/$kver/kernel/drivers/block/$m.ko" "$r/lib/modules/xen/"
	done
	cp -a "$out/build-xen" "$r/gv/build-xen"
	echo "root:x:0:0:root:/:/bin/sh" >"$r/etc/passwd"
	echo "root:x:0:" >"$r/etc/group"
}

mkcpio() { # $1: root, $2: output
	(cd "$1" && find . | cpio -o -H newc --quiet | gzip -1) >"$2.tmp"
	mv "$2.tmp" "$2"
}

# guest
g="$out/guest-root"
common_tree "$g"
# the guest kernel module (build-kmod.sh) and the stock modules it is used
# with, from the same kernel package; ext4 (which mounts ext2) and its
# dependencies for the file system checks
mkdir -p "$g/lib/modules/gv"
kmods="drivers/virtio/virtio drivers/virtio/virtio_ring drivers/block/virtio_blk
drivers/char/hw_random/virtio-rng lib/crc16 fs/mbcache fs/jbd2/jbd2 crypto/crc32c_generic fs/ext4/ext4"
for m in $kmods; do
	cp "$cache/kernel/lib/modules/$kver/kernel/$m.ko" "$g/lib/modules/gv/"
done
if [ -f "$out/kmod/grant_virtio.ko" ]; then cp "$out/kmod/grant_virtio.ko" "$g/lib/modules/gv/"; fi
cp "$here/kmod-guest.sh" "$g/gv/kmod-guest.sh"
cp "$here/guest-init.sh" "$g/init"
chmod 755 "$g/init"
mkcpio "$g" "$out/guest.cpio.gz"

# dom0
d="$out/dom0-root"
common_tree "$d"
mkdir -p "$d/usr/lib/xen-4.20" "$d/var/lib/xen" "$d/var/lib/xenstored" "$d/var/log/xen" "$d/gv/guest"
cp -a "$xr/usr/lib/xen-4.20/bin" "$d/usr/lib/xen-4.20/"
rm -f "$d/usr/lib/xen-4.20/bin/oxenstored" "$d/usr/lib/xen-4.20/bin/pygrub"
cp -a "$xr/etc/xen" "$d/etc/"
# e2fsck (fetch.sh: trixie's e2fsprogs), for e2fsck -fn of the guests' disk
# images; the libraries it links that xenroot lacks (libuuid is there)
cp "$cache/e2fsroot/usr/sbin/e2fsck" "$d/usr/sbin/"
cp -a "$cache"/e2fsroot/usr/lib/x86_64-linux-gnu/libext2fs.so.2* "$cache"/e2fsroot/usr/lib/x86_64-linux-gnu/libe2p.so.2* \
  "$cache"/e2fsroot/usr/lib/x86_64-linux-gnu/libcom_err.so.2* "$cache"/e2fsroot/usr/lib/x86_64-linux-gnu/libblkid.so.1* \
  "$d/usr/lib/x86_64-linux-gnu/"
cp "$here/dom0-init.sh" "$d/init"
chmod 755 "$d/init"
# run.sh leaves the selected scenarios in out/scenarios.list
if [ -f "$out/scenarios.list" ]; then cp "$out/scenarios.list" "$d/gv/"; else cp "$here/scenarios.list" "$d/gv/"; fi
cp "$here/scenario-lib.sh" "$here/scenarios.sh" "$here/bench.sh" "$d/gv/"
cp "$here/stress.sh" "$d/gv/"
cp "$cache/kernel/boot/vmlinuz-$kver" "$d/gv/guest/vmlinuz"
cp "$out/guest.cpio.gz" "$d/gv/guest/initrd.gz"
# tells the scenarios whether the guest image carries grant_virtio.ko
if [ -f "$out/kmod/grant_virtio.ko" ]; then : >"$d/gv/guest/kmod"; fi
mkcpio "$d" "$out/dom0.cpio.gz"

gzip -dc "$xr"/boot/xen-4.20-amd64.gz >"$out/xen"
cp "$cache/kernel/boot/vmlinuz-$kver" "$out/vmlinuz"
echo "images: dom0 $(du -h "$out/dom0.cpio.gz" | cut -f1), guest $(du -h "$out/guest.cpio.gz" | cut -f1)"
