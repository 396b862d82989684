/*
 * bench/gv-rawread.c: sequential (or random) O_DIRECT reads of a block device
 * at queue depth 1, for `make xen-bench` (xen-test/bench.sh): the same
 * workload the pair's `gv-bench seqread --depth 1` runs, but through the
 * kernel's own block path (xen-blkfront in a guest, /dev/ram0 in dom0).
 *
 *   gv-rawread DEVICE BLOCK_SIZE SIZE [random]
 *
 * Reads [0, SIZE) in BLOCK_SIZE preads (or SIZE / BLOCK_SIZE preads at random
 * aligned offsets in [0, SIZE)), one at a time, and prints one line:
 *   rawread DEVICE bs=N bytes=N secs=S mibs=M iops=I
 * O_DIRECT so that neither the guest's nor dom0's page cache answers a read:
 * every request goes down to the device. BusyBox dd cannot do that.
 * SIZE and BLOCK_SIZE take K, M, G suffixes (powers of 1024).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_size(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'G': n <<= 10; /* fall through */
	case 'M': n <<= 10; /* fall through */
	case 'K': n <<= 10; end++; break;
	default: break;
	}
	if (*end)
		return -1;
	*v = n;
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t bs, size, nreq, i, rng = 0x9e3779b97f4a7c15ull;
	bool random;
	double t0, secs;
	void *buf;
	int fd;

	if (argc < 4 || argc > 5 || parse_size(argv[2], &bs) || parse_size(argv[3], &size) ||
	    !bs || bs % 512 || size < bs || (argc == 5 && strcmp(argv[4], "random"))) {
		fprintf(stderr, "usage: gv-rawread DEVICE BLOCK_SIZE SIZE [random]\n");
		return 2;
	}
	random = argc == 5;
	nreq = size / bs;
	fd = open(argv[1], O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "gv-rawread: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	/* O_DIRECT wants an aligned buffer; a page is enough for any device */
	if (posix_memalign(&buf, 4096, bs)) {
		fprintf(stderr, "gv-rawread: cannot allocate %" PRIu64 " bytes\n", bs);
		return 1;
	}
	memset(buf, 0, bs);
	t0 = now_s();
	for (i = 0; i < nreq; i++) {
		uint64_t off = i * bs;
		ssize_t got;

		if (random) {
			/* xorshift64: cheap, so the loop measures the device path */
			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			off = rng % nreq * bs;
		}
		got = pread(fd, buf, bs, (off_t)off);
		if (got != (ssize_t)bs) {
			fprintf(stderr, "gv-rawread: %s: read at %" PRIu64 ": %s\n", argv[1], off,
			        got < 0 ? strerror(errno) : "short read");
			return 1;
		}
	}
	secs = now_s() - t0;
	printf("rawread %s bs=%" PRIu64 " bytes=%" PRIu64 " secs=%.3f mibs=%.1f iops=%.0f\n",
	       argv[1], bs, nreq * bs, secs, nreq * bs / 1048576.0 / secs, nreq / secs);
	free(buf);
	close(fd);
	return 0;
}
