/*
 * examples/gv-read.c: the smallest program using libgrant-virtio, the
 * grant-virtio guest library. It attaches to a virtio-blk device, reads a
 * few sectors, prints them as a hex dump and detaches.
 *
 *   cc -o gv-read gv-read.c $(pkg-config --cflags --libs grant-virtio)
 *   gv-read [DEVID [SECTOR [COUNT]]]     (defaults: 0 0 1)
 *
 * It runs in a Xen guest (the grant drivers: modprobe xen-gntalloc
 * xen-gntdev xen-evtchn), or on the simulated Xen as domain N with
 * GV_PLATFORM=sim GV_SIM_DIR=DIR GV_DOMID=N (see gv-frontend(1)).
 * Exit status: 0, 1 bad arguments, 2 the device could not be attached or
 * read.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grant_virtio.h>

#define SECTOR 512u

static int number(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 0);
	return *s && !*end && !errno && *out <= max ? 0 : -1;
}

/* 16 bytes a line: offset, hex, text; runs of identical lines as "*" */
static void hexdump(const unsigned char *p, size_t len, uint64_t base)
{
	bool starred = false;

	for (size_t off = 0; off < len; off += 16) {
		if (off && off + 16 <= len && !memcmp(p + off, p + off - 16, 16)) {
			if (!starred)
				printf("*\n");
			starred = true;
			continue;
		}
		starred = false;
		printf("%08" PRIx64 " ", base + off);
		for (size_t k = 0; k < 16; k++)
			printf(off + k < len ? " %02x" : "   ", p[off + k]);
		printf("  |");
		for (size_t k = 0; k < 16 && off + k < len; k++)
			putchar(p[off + k] >= 0x20 && p[off + k] < 0x7f ? p[off + k] : '.');
		printf("|\n");
	}
	printf("%08" PRIx64 "\n", base + len);
}

int main(int argc, char **argv)
{
	unsigned long devid = 0, sector = 0, count = 1;
	struct gv_attach_opts o;
	struct gv_device_info info;
	struct gv_device *d;
	unsigned char *buf;
	char err[256];
	int rc;

	if (argc > 4 || (argc > 1 && number(argv[1], 65535, &devid)) ||
	    (argc > 2 && number(argv[2], UINT32_MAX, &sector)) ||
	    (argc > 3 && (number(argv[3], 1024, &count) || !count))) {
		fprintf(stderr, "usage: gv-read [DEVID [SECTOR [COUNT (1..1024)]]]\n");
		return 1;
	}
	gv_attach_opts_init(&o);        /* bounce buffers, platform from the environment */
	o.devid = (unsigned)devid;
	rc = gv_attach(&o, &d, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "gv-read: device %lu: %s\n", devid, err);
		return 2;
	}
	gv_get_info(d, &info);
	if (info.virtio_id != 2) {
		fprintf(stderr, "gv-read: device %lu is not a block device (virtio id %u)\n",
		        devid, info.virtio_id);
		gv_detach(d);
		return 2;
	}
	printf("device %u: %" PRIu64 " sectors, %s, on %s\n", info.devid, info.capacity,
	       info.read_only ? "read-only" : "read-write", info.platform);
	if (sector + count > info.capacity) {
		fprintf(stderr, "gv-read: sectors %lu..%lu are past the end (%" PRIu64 ")\n",
		        sector, sector + count - 1, info.capacity);
		gv_detach(d);
		return 1;
	}
	buf = malloc(count * SECTOR);
	if (!buf) {
		gv_detach(d);
		return 2;
	}
	rc = gv_blk_read(d, (uint64_t)sector * SECTOR, buf, count * SECTOR);
	if (rc < 0)
		fprintf(stderr, "gv-read: read: %s (%s)\n", strerror(-rc), gv_device_error(d));
	else
		hexdump(buf, count * SECTOR, (uint64_t)sector * SECTOR);
	free(buf);
	if (gv_detach(d) < 0 && rc == 0)
		rc = -EIO;
	return rc < 0 ? 2 : 0;
}
