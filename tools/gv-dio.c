/*
 * tools/gv-dio.c: O_DIRECT checks and reads on a block device, for the guest
 * kernel module's scenarios (xen-test/kmod-guest.sh) and `make xen-bench`.
 *
 *   gv-dio verify DEVICE
 *       O_DIRECT writes of a seeded pattern at several sizes (512 B .. 256 KiB)
 *       and offsets (0, sector aligned, not page aligned, the end of the device), each read back with O_DIRECT into a different
 *       buffer and compared; buffers at page and at sub-page (512) alignment.
 *       Prints one line per case and "dio verify: N cases ok"; exit 1 on the
 *       first mismatch or error.
 *   gv-dio read DEVICE BLOCK_SIZE SIZE DEPTH
 *       DEPTH threads, each reading its share of [0, SIZE) with O_DIRECT
 *       preads of BLOCK_SIZE, one at a time (queue depth DEPTH in total);
 *       prints "dio read DEVICE bs=N bytes=N depth=D secs=S mibs=M iops=I".
 * Sizes take K and M suffixes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <time.h>
#include <unistd.h>

static int parse_size(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	if (*end == 'K' || *end == 'k')
		n <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		n <<= 20, end++;
	if (*end || n == 0)
		return -1;
	*v = n;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fill(unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)x;
	}
}

static int verify(const char *dev)
{
	static const size_t sizes[] = { 512, 4096, 4096 * 3 + 512, 65536, 256 << 10 };
	static const size_t bufoffs[] = { 0, 512 };
	uint64_t devsize;
	unsigned char *wbuf, *rbuf;
	unsigned cases = 0;
	int fd = open(dev, O_RDWR | O_DIRECT);

	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &devsize) < 0) {
		fprintf(stderr, "dio verify: %s: %s\n", dev, strerror(errno));
		return 1;
	}
	if (posix_memalign((void **)&wbuf, 4096, (2 << 20) + 4096) ||
	    posix_memalign((void **)&rbuf, 4096, (2 << 20) + 4096)) {
		fprintf(stderr, "dio verify: out of memory\n");
		return 1;
	}
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t sz = sizes[s];
		uint64_t offs[] = { 0, 512, 4096 + 1536, devsize - sz };

		for (size_t o = 0; o < sizeof(offs) / sizeof(offs[0]); o++) {
			for (size_t b = 0; b < 2; b++) {
				unsigned char *w = wbuf + bufoffs[b], *r = rbuf + bufoffs[1 - b];
				uint64_t off = offs[o];
				ssize_t n;

				if (off + sz > devsize)
					continue;
				fill(w, sz, cases + 1);
				memset(r, 0xa5, sz);
				n = pwrite(fd, w, sz, (off_t)off);
				if (n != (ssize_t)sz) {
					fprintf(stderr, "dio verify: pwrite %zu at %" PRIu64 ": %s\n", sz, off,
					        n < 0 ? strerror(errno) : "short");
					return 1;
				}
				n = pread(fd, r, sz, (off_t)off);
				if (n != (ssize_t)sz) {
					fprintf(stderr, "dio verify: pread %zu at %" PRIu64 ": %s\n", sz, off,
					        n < 0 ? strerror(errno) : "short");
					return 1;
				}
				if (memcmp(w, r, sz)) {
					size_t i = 0;

					while (w[i] == r[i])
						i++;
					fprintf(stderr, "dio verify: %zu bytes at %" PRIu64 " (buffer +%zu): "
					        "byte %zu differs (wrote %02x, read %02x)\n", sz, off, bufoffs[b],
					        i, w[i], r[i]);
					return 1;
				}
				printf("dio ok: %zu bytes at %" PRIu64 ", buffers +%zu/+%zu\n", sz, off,
				       bufoffs[b], bufoffs[1 - b]);
				cases++;
			}
		}
	}
	close(fd);
	printf("dio verify: %u cases ok\n", cases);
	return 0;
}

struct reader {
	int fd;
	uint64_t bs, from, to;
	int err;
};

static void *read_range(void *arg)
{
	struct reader *r = arg;
	unsigned char *buf;

	if (posix_memalign((void **)&buf, 4096, r->bs)) {
		r->err = ENOMEM;
		return NULL;
	}
	for (uint64_t off = r->from; off < r->to; off += r->bs) {
		if (pread(r->fd, buf, r->bs, (off_t)off) != (ssize_t)r->bs) {
			r->err = errno ? errno : EIO;
			break;
		}
	}
	free(buf);
	return NULL;
}

static int bench(const char *dev, uint64_t bs, uint64_t size, unsigned depth)
{
	pthread_t th[64];
	struct reader rd[64];
	uint64_t per;
	double t0, t;
	int fd = open(dev, O_RDONLY | O_DIRECT);

	if (fd < 0) {
		fprintf(stderr, "dio read: %s: %s\n", dev, strerror(errno));
		return 1;
	}
	if (depth < 1 || depth > 64 || size % (bs * depth)) {
		fprintf(stderr, "dio read: SIZE must be a multiple of BLOCK_SIZE * DEPTH, DEPTH 1..64\n");
		return 1;
	}
	per = size / depth;
	t0 = now_s();
	for (unsigned i = 0; i < depth; i++) {
		rd[i] = (struct reader){ .fd = fd, .bs = bs, .from = i * per, .to = (i + 1) * per };
		if (pthread_create(&th[i], NULL, read_range, &rd[i])) {
			fprintf(stderr, "dio read: cannot start thread %u\n", i);
			return 1;
		}
	}
	for (unsigned i = 0; i < depth; i++)
		pthread_join(th[i], NULL);
	t = now_s() - t0;
	for (unsigned i = 0; i < depth; i++)
		if (rd[i].err) {
			fprintf(stderr, "dio read: %s: %s\n", dev, strerror(rd[i].err));
			return 1;
		}
	printf("dio read %s bs=%" PRIu64 " bytes=%" PRIu64 " depth=%u secs=%.3f mibs=%.1f iops=%.0f\n",
	       dev, bs, size, depth, t, size / t / 1048576.0, size / bs / t);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t bs, size;

	if (argc == 3 && !strcmp(argv[1], "verify"))
		return verify(argv[2]);
	if (argc == 6 && !strcmp(argv[1], "read") && !parse_size(argv[3], &bs) &&
	    !parse_size(argv[4], &size) && atoi(argv[5]) > 0)
		return bench(argv[2], bs, size, (unsigned)atoi(argv[5]));
	fprintf(stderr, "usage: gv-dio verify DEVICE | gv-dio read DEVICE BLOCK_SIZE SIZE DEPTH\n");
	return 2;
}
