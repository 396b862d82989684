/*
 * frontend/gv-frontend.c: the guest command: attaches to one grant-virtio
 * device through the library (grant_virtio.h), runs one command, detaches
 * on every path (signals included).
 */
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "grant_virtio.h"
#include "log.h"

static const char usage[] =
"NAME\n"
"    gv-frontend - grant-virtio guest: virtio-blk and virtio-rng over Xen grants\n"
"\n"
"SYNOPSIS\n"
"    gv-frontend [--platform sim|xen] [--domid N] [--devid N | --xl-disk VDEV]\n"
"                [--dma bounce|grant|pool|bypass] [--queue-size N] [--queues N]\n"
"                [--pool-pages N]\n"
"                [--timeout MS] [--io-timeout MS] [--restart-timeout MS] [--hold]\n"
"                [--verbose] COMMAND [ARGS]\n"
"\n"
"DESCRIPTION\n"
"    Attaches to the virtio device DEVID of this guest (docs/transport.md): the\n"
"    handshake through xenstore, vring areas granted to the backend, every data\n"
"    address a grant reference made by the chosen DMA strategy. Runs COMMAND,\n"
"    then detaches (also on SIGINT/SIGTERM), ending every grant it made.\n"
"\n"
"COMMANDS\n"
"    info                  features (by name), device config, grant counters\n"
"    verify --size SIZE [--seed S] [--random] [--ops N] [--io-size SIZE] [--depth N]\n"
"                          writes a pattern over the first SIZE bytes (async,\n"
"                          up to N requests in flight), reads it back, compares;\n"
"                          --random adds random writes and reads at random byte\n"
"                          offsets, 1 byte to 4 MiB long, checked against a\n"
"                          shadow copy, at least N requests (--ops; default\n"
"                          200 and twice SIZE; SIGUSR1 ends them early, then\n"
"                          the final check runs). Prints MiB/s and counters.\n"
"    read --offset O --length L [--raw]\n"
"                          prints the bytes as hex (raw: to stdout)\n"
"    write --offset O [--length L] [--seed S]\n"
"                          writes L bytes from stdin (with --seed: a pattern)\n"
"    flush                 VIRTIO_BLK_T_FLUSH\n"
"    id                    the device id string (VIRTIO_BLK_T_GET_ID)\n"
"    rng --bytes N [--raw] random bytes from a virtio-rng device\n"
"    (throughput benchmarks: gv-bench, see docs/benchmarks.md)\n"
"\n"
"OPTIONS\n"
"    --platform sim|xen    hypervisor interface (default: $GV_PLATFORM, else xen\n"
"                          when /dev/xen/gntdev exists, else sim)\n"
"    --domid N             simulation: the guest's domain id (default $GV_DOMID)\n"
"    --devid N             device index under device/virtio (default 0)\n"
"    --xl-disk VDEV        the disk of xl's disk = [\"...,specification=virtio,\n"
"                          ...\"] under device/virtio_disk (VDEV: 51712 = xvda)\n"
"    --dma STRATEGY        bounce (default): a granted pool, copies (swiotlb-xen);\n"
"                          grant: fresh grants per request (grant-dma-ops);\n"
"                          pool: zero copy from buffers in the granted pool;\n"
"                          bypass: no DMA API, guest-physical addresses: refused\n"
"                          by a Xen backend (a demonstration)\n"
"    --queue-size N        virtqueue size, a power of two (default 256)\n"
"    --queues N            virtqueues to use when the disk offers several\n"
"                          (VIRTIO_BLK_F_MQ; at most what it offers and 8;\n"
"                          0: one per online CPU); verify's sequential pass\n"
"                          then runs a thread per queue, each on its own slice\n"
"                          (default 1: the other commands use one thread, and\n"
"                          a queue no thread drives only costs grants and an\n"
"                          event channel)\n"
"    --pool-pages N        size of the granted pool (default 768 = 3 MiB)\n"
"    --timeout MS          each handshake wait (default 10000)\n"
"    --io-timeout MS       requests in flight and none completed for MS: the\n"
"                          device is taken as broken, requests fail (default 30000)\n"
"    --restart-timeout MS  the backend went away: wait MS for a new one to take\n"
"                          the device over (requests go on), then fail them\n"
"                          (default 30000; 0: fail at once, keep no record)\n"
"    --hold                after COMMAND, stay attached (idle) until stdin\n"
"                          reaches end of file, then detach: to look at the\n"
"                          backend's gv-backend --status of a connected device;\n"
"                          a config change (gv-backend --resize) is printed\n"
"                          as it comes: config change N: capacity S sectors\n"
"    SIZE and offsets take K, M, G suffixes (powers of 1024).\n"
"\n"
"EXIT STATUS\n"
"    0 on success; 1 on a failed command or data mismatch; 2 on a usage error;\n"
"    3 when the device was refused or broke (the backend's error is printed).\n";

static volatile sig_atomic_t stop_signal;

static volatile sig_atomic_t finish_signal;

static void on_finish(int sig)
{
	finish_signal = sig;
}

static void on_signal(int sig)
{
	stop_signal = sig;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end == 'B')
		end++;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

/* xorshift64*: reproducible from --seed */
static uint64_t rnd_state;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 0x2545F4914F6CDD1DULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_counters(const char *when, const struct gv_stats *s)
{
	printf("%s: grants_active=%" PRIu64 " grants_leaked=%" PRIu64 " events_sent=%" PRIu64
	       " events_received=%" PRIu64 " requests=%" PRIu64 " errors=%" PRIu64
	       " kicks=%" PRIu64 " kicks_suppressed=%" PRIu64 " copied_in=%" PRIu64
	       " copied_out=%" PRIu64 " pool_full=%" PRIu64 " indirect=%" PRIu64
	       " backend_restarts=%" PRIu64 " restart_wait_max_ms=%" PRIu64
	       " restart_wait_total_ms=%" PRIu64 " domain_restores=%" PRIu64
	       " restore_max_ms=%" PRIu64 "\n", when,
	       s->platform.grants_active, s->platform.grants_leaked, s->platform.events_sent,
	       s->platform.events_received, s->requests, s->request_errors, s->kicks,
	       s->kicks_suppressed, s->dma_bytes_copied_in, s->dma_bytes_copied_out,
	       s->dma_pool_full, s->indirect_chains, s->backend_restarts,
	       s->restart_wait_ms_max, s->restart_wait_ms_total, s->domain_restores,
	       s->restore_ms_max);
}

struct cmd_args {
	uint64_t size, offset, length, bytes, seed, io_size, depth, ops;
	bool random, raw, have_length, have_seed;
};

/* A config change (an online resize): said at once, whatever runs. */
static void on_config_change(struct gv_device *d, void *priv)
{
	struct gv_device_info i;

	(void)priv;
	gv_get_info(d, &i);
	if (i.virtio_id == 2)
		printf("config change %u: capacity %" PRIu64 " sectors (%.1f MiB)\n",
		       gv_config_changes(d), i.capacity, (double)i.capacity / 2048);
	else
		printf("config change %u\n", gv_config_changes(d));
	fflush(stdout);
}

static int cmd_info(struct gv_device *d)
{
	struct gv_device_info i;
	struct gv_stats s;
	char names[1024];

	gv_get_info(d, &i);
	printf("platform: %s\n", i.platform);
	printf("device: %u (%s), domain %u, backend domain %u\n", i.devid,
	       i.virtio_id == 2 ? "virtio-blk" : "virtio-rng", i.domid, i.backend_id);
	printf("device features: 0x%016" PRIx64 " %s\n", i.device_features,
	       gv_feature_names(i.device_features, i.virtio_id, names, sizeof(names)));
	printf("driver features: 0x%016" PRIx64 " %s\n", i.driver_features,
	       gv_feature_names(i.driver_features, i.virtio_id, names, sizeof(names)));
	printf("dma: %s (persistent-pool %d)\n", i.dma, i.persistent_pool);
	printf("queues: %u of %u entries (max %u); max-persistent-grants %u\n", i.num_queues,
	       i.queue_size, i.max_queue_size, i.max_persistent_grants);
	if (i.virtio_id == 2)
		printf("disk: capacity %" PRIu64 " sectors (%.1f MiB), blk-size %u, seg-max %u, "
		       "size-max %u%s\n", i.capacity, (double)i.capacity / 2048, i.blk_size,
		       i.seg_max, i.size_max, i.read_only ? ", read-only" : "");
	gv_get_stats(d, &s);
	print_counters("counters", &s);
	return 0;
}

static void pattern(uint8_t *b, size_t len, uint64_t off, uint64_t seed)
{
	for (size_t i = 0; i < len; i++) {
		uint64_t x = (off + i) ^ (seed * 0x9E3779B97F4A7C15ULL);

		b[i] = (uint8_t)(x ^ (x >> 8) ^ (x >> 17) ^ (x >> 29));
	}
}

struct slot {
	struct gv_blk_io io;
	uint8_t *buf;
	bool busy;
	int *errors;
};

static unsigned seq_depth;     /* requests the last pass had in flight at most */

static void slot_done(struct gv_blk_io *io)
{
	struct slot *s = io->priv;

	s->busy = false;
	if (io->result) {
		(*s->errors)++;
		gv_err("request at sector %" PRIu64 " failed: %s", io->sector, strerror(-io->result));
	}
}

/* Sequential pass over [start, size) with up to depth async requests on
 * queue q; write fills each with the pattern, read clears its buffer first
 * and checks it against the pattern on completion. */
static int seq_pass(struct gv_device *d, unsigned q, bool write, uint64_t start, uint64_t size,
                    size_t io_size, unsigned depth, uint64_t seed, bool pool, uint64_t *mismatch)
{
	struct slot *slots = calloc(depth, sizeof(*slots));
	uint8_t *check = malloc(io_size);
	uint64_t next = start;
	unsigned n = 0, inflight = 0;
	int errors = 0, rc = 0;

	if (!slots || !check) {
		free(slots);
		free(check);
		return -ENOMEM;
	}
	for (n = 0; n < depth; n++) {
		slots[n].buf = pool ? gv_pool_alloc(d, io_size) : malloc(io_size);
		if (!slots[n].buf)
			break;
		slots[n].errors = &errors;
	}
	if (!n) {
		rc = -ENOMEM;
		goto out;
	}
	if (!q)
		seq_depth = n;  /* fewer than asked when the DMA pool holds fewer buffers */
	for (;;) {
		for (unsigned i = 0; i < n && next < size && !stop_signal; i++) {
			struct slot *s = &slots[i];
			size_t len;

			if (s->busy)
				continue;
			len = size - next < io_size ? (size_t)(size - next) : io_size;
			memset(&s->io, 0, sizeof(s->io));
			s->io.op = write ? GV_BLK_WRITE : GV_BLK_READ;
			s->io.sector = next / 512;
			s->io.buf = s->buf;
			s->io.len = len;
			s->io.done = slot_done;
			s->io.priv = s;
			if (write)
				pattern(s->buf, len, next, seed);
			else
				memset(s->buf, 0, len);
			s->busy = true;
			rc = gv_blk_submit_queue(d, q, &s->io);
			if (rc < 0) {
				s->busy = false;
				goto out;
			}
			next += len;
		}
		inflight = 0;
		for (unsigned i = 0; i < n; i++)
			inflight += slots[i].busy;
		if (!inflight && (next >= size || stop_signal))
			break;
		rc = gv_poll_queue(d, q, -1);
		if (rc < 0)
			goto out;
		rc = 0;
		if (!write) {
			for (unsigned i = 0; i < n; i++) {
				struct slot *s = &slots[i];

				if (s->busy || !s->io.len)
					continue;
				if (!s->io.result) {
					pattern(check, s->io.len, s->io.sector * 512, seed);
					if (memcmp(check, s->buf, s->io.len))
						(*mismatch)++;
				}
				s->io.len = 0;      /* checked */
			}
		}
	}
	if (errors)
		rc = -EIO;
out:
	for (unsigned i = 0; i < n; i++) {
		if (pool)
			gv_pool_free(d, slots[i].buf, io_size);
		else
			free(slots[i].buf);
	}
	free(slots);
	free(check);
	return stop_signal && !rc ? -EINTR : rc;
}

/* --queues N: the pass in N threads, thread i on queue i over its own
 * slice of [0, size) (whole requests), depth/N requests each. */
struct seq_part {
	struct gv_device *d;
	unsigned q, depth;
	bool write, pool;
	uint64_t start, end, seed, mismatch;
	size_t io_size;
	pthread_t tid;
	int rc;
};

static void *seq_part_main(void *arg)
{
	struct seq_part *p = arg;

	p->rc = seq_pass(p->d, p->q, p->write, p->start, p->end, p->io_size, p->depth, p->seed,
	                 p->pool, &p->mismatch);
	return NULL;
}

static int seq_pass_queues(struct gv_device *d, unsigned nq, bool write, uint64_t size,
                           size_t io_size, unsigned depth, uint64_t seed, bool pool,
                           uint64_t *mismatch)
{
	struct seq_part p[8];
	uint64_t reqs = (size + io_size - 1) / io_size, at = 0;
	unsigned started = 0;
	int rc = 0;

	if (nq <= 1 || nq > 8)
		return seq_pass(d, 0, write, 0, size, io_size, depth, seed, pool, mismatch);
	for (unsigned q = 0; q < nq; q++) {
		uint64_t end = q + 1 == nq ? size : at + reqs / nq * io_size;

		p[q] = (struct seq_part){ .d = d, .q = q, .write = write, .pool = pool, .start = at,
		                          .end = end, .seed = seed, .io_size = io_size,
		                          .depth = depth / nq ? depth / nq : 1 };
		at = end;
	}
	for (unsigned q = 0; q < nq; q++, started++)
		if (pthread_create(&p[q].tid, NULL, seq_part_main, &p[q])) {
			rc = -EAGAIN;
			break;
		}
	for (unsigned q = 0; q < started; q++) {
		pthread_join(p[q].tid, NULL);
		*mismatch += p[q].mismatch;
		if (p[q].rc < 0 && !rc)
			rc = p[q].rc;
	}
	return rc;
}

static int cmd_verify(struct gv_device *d, const struct cmd_args *a, bool pool)
{
	struct gv_device_info info;
	struct gv_stats before, after;
	uint64_t size = a->size, mismatch = 0, bytes = 0;
	size_t io_size = a->io_size ? a->io_size : 64 * 1024;
	unsigned depth;
	double t0, t1, t2;
	int rc;

	gv_get_info(d, &info);
	if (info.virtio_id != 2) {
		fprintf(stderr, "verify needs a virtio-blk device\n");
		return 2;
	}
	if (!size || size % 512 || size > info.capacity * 512 || io_size % 512) {
		fprintf(stderr, "verify: --size must be a non-zero multiple of 512 up to the disk's "
		        "%" PRIu64 " bytes, --io-size a multiple of 512\n", info.capacity * 512);
		return 2;
	}
	depth = a->depth ? (unsigned)a->depth : info.queue_size;
	gv_get_stats(d, &before);
	print_counters("before", &before);
	t0 = now_s();
	rc = seq_pass_queues(d, info.num_queues, true, size, io_size, depth, a->seed, pool,
	                     &mismatch);
	t1 = now_s();
	if (rc == 0)
		rc = seq_pass_queues(d, info.num_queues, false, size, io_size, depth, a->seed, pool,
		                     &mismatch);
	t2 = now_s();
	if (rc < 0) {
		fprintf(stderr, "verify: sequential pass failed: %s\n", strerror(-rc));
		return 1;
	}
	printf("sequential: wrote %.1f MiB at %.1f MiB/s, read at %.1f MiB/s, depth %u x %zu bytes%s, "
	       "%u queue%s, %" PRIu64 " mismatching requests\n", (double)size / 1048576,
	       (double)size / 1048576 / (t1 - t0 + 1e-9), (double)size / 1048576 / (t2 - t1 + 1e-9),
	       seq_depth, io_size, info.num_queues > 1 ? " per queue" : "", info.num_queues,
	       info.num_queues > 1 ? "s (a thread each)" : "", mismatch);
	if (mismatch)
		return 1;

	if (a->random) {
		size_t maxlen = 4u << 20;
		uint8_t *shadow = malloc(size), *buf, *raw = NULL;
		uint64_t ops = 0, bad = 0;
		size_t bufsize;

		if (!shadow)
			return 1;
		pattern(shadow, size, 0, a->seed);
		if (pool) {
			/* zero copy: the buffer lives in the granted pool */
			for (bufsize = maxlen + 4096; bufsize >= 8192; bufsize /= 2) {
				raw = gv_pool_alloc(d, bufsize);
				if (raw)
					break;
			}
			if (!raw) {
				fprintf(stderr, "verify: no room in the DMA pool\n");
				free(shadow);
				return 1;
			}
			maxlen = bufsize - 4096;
		} else {
			bufsize = maxlen + 4096;
			raw = malloc(bufsize);
		}
		rnd_state = a->seed * 2654435761u + 1;
		t0 = now_s();
		while ((bytes < 2 * size || ops < 200 || ops < a->ops) && !stop_signal &&
		       !(finish_signal && ops >= 200) && !rc) {
			size_t len = 1 + (size_t)(rnd() % (rnd() % 4 ? 65536 : maxlen));
			uint64_t off;
			size_t mis = (size_t)(rnd() % 4096);

			if (len > maxlen)
				len = maxlen;
			if (len > size)
				len = (size_t)size;
			off = rnd() % (size - len + 1);
			buf = raw + mis;       /* page-crossing, unaligned buffers */
			if (rnd() % 2) {
				for (size_t i = 0; i < len; i++)
					buf[i] = (uint8_t)rnd();
				rc = gv_blk_write(d, off, buf, len);
				if (!rc)
					memcpy(shadow + off, buf, len);
			} else {
				rc = gv_blk_read(d, off, buf, len);
				if (!rc && memcmp(buf, shadow + off, len)) {
					bad++;
					gv_err("mismatch reading %zu bytes at %" PRIu64, len, off);
				}
			}
			bytes += len;
			ops++;
		}
		t1 = now_s();
		/* the whole region against the shadow */
		for (uint64_t off = 0; off < size && !rc; off += maxlen) {
			size_t len = size - off < maxlen ? (size_t)(size - off) : maxlen;

			rc = gv_blk_read(d, off, raw, len);
			if (!rc && memcmp(raw, shadow + off, len)) {
				bad++;
				gv_err("final check: mismatch in %zu bytes at %" PRIu64, len, off);
			}
		}
		printf("random: %" PRIu64 " requests, %.1f MiB at %.1f MiB/s, %" PRIu64 " mismatches\n",
		       ops, (double)bytes / 1048576, (double)bytes / 1048576 / (t1 - t0 + 1e-9), bad);
		if (pool)
			gv_pool_free(d, raw, bufsize);
		else
			free(raw);
		free(shadow);
		if (rc < 0) {
			fprintf(stderr, "verify: random pass failed: %s\n", strerror(-rc));
			return 1;
		}
		if (bad)
			return 1;
	}
	gv_get_stats(d, &after);
	print_counters("after", &after);
	printf("verify: OK\n");
	return 0;
}

static void hexdump(const uint8_t *b, size_t len, uint64_t base)
{
	for (size_t i = 0; i < len; i += 16) {
		printf("%08" PRIx64 ":", base + i);
		for (size_t j = i; j < i + 16 && j < len; j++)
			printf(" %02x", b[j]);
		printf("\n");
	}
}

static int cmd_read(struct gv_device *d, const struct cmd_args *a)
{
	uint8_t *buf = malloc(a->length ? a->length : 1);
	int rc;

	if (!buf)
		return 1;
	rc = gv_blk_read(d, a->offset, buf, a->length);
	if (rc < 0) {
		fprintf(stderr, "read: %s\n", strerror(-rc));
		free(buf);
		return 1;
	}
	if (a->raw)
		fwrite(buf, 1, a->length, stdout);
	else
		hexdump(buf, a->length, a->offset);
	free(buf);
	return 0;
}

static int cmd_write(struct gv_device *d, const struct cmd_args *a)
{
	size_t cap = a->have_length ? a->length : 1 << 20, len = 0;
	uint8_t *buf = malloc(cap ? cap : 1);
	int rc;

	if (!buf)
		return 1;
	if (a->have_seed) {
		pattern(buf, cap, a->offset, a->seed);
		len = cap;
	} else {
		while (len < cap) {
			size_t n = fread(buf + len, 1, cap - len, stdin);

			if (!n)
				break;
			len += n;
		}
	}
	rc = gv_blk_write(d, a->offset, buf, len);
	free(buf);
	if (rc < 0) {
		fprintf(stderr, "write: %s\n", strerror(-rc));
		return 1;
	}
	printf("wrote %zu bytes at offset %" PRIu64 "\n", len, a->offset);
	return 0;
}

static int cmd_rng(struct gv_device *d, const struct cmd_args *a)
{
	uint8_t *buf = malloc(a->bytes ? a->bytes : 1);
	size_t got = 0;

	if (!buf)
		return 1;
	while (got < a->bytes && !stop_signal) {
		ssize_t n = gv_rng_read(d, buf + got, a->bytes - got);

		if (n < 0) {
			fprintf(stderr, "rng: %s\n", strerror((int)-n));
			free(buf);
			return 1;
		}
		got += (size_t)n;
	}
	if (a->raw)
		fwrite(buf, 1, got, stdout);
	else
		hexdump(buf, got, 0);
	free(buf);
	return got == a->bytes ? 0 : 1;
}

static const char bypass_explanation[] =
	"why: the bypass driver skipped the DMA API: it did not accept "
	"VIRTIO_F_ACCESS_PLATFORM and put guest-physical addresses in its descriptors. "
	"Under Xen a backend runs in another domain and can reach only the guest "
	"memory the guest granted to it (grant references), so such addresses mean "
	"nothing to it: Linux guests use grant-dma-ops or swiotlb-xen for exactly this. "
	"Use --dma bounce, grant or pool.";

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "platform", required_argument, NULL, 'P' },
		{ "domid", required_argument, NULL, 'D' },
		{ "devid", required_argument, NULL, 'd' },
		{ "xl-disk", required_argument, NULL, 'x' },
		{ "dma", required_argument, NULL, 'm' },
		{ "queue-size", required_argument, NULL, 'q' },
		{ "pool-pages", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{ "io-timeout", required_argument, NULL, 'T' },
		{ "restart-timeout", required_argument, NULL, 'W' },
		{ "ops", required_argument, NULL, 'O' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "size", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'S' },
		{ "random", no_argument, NULL, 'r' },
		{ "offset", required_argument, NULL, 'o' },
		{ "length", required_argument, NULL, 'l' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "raw", no_argument, NULL, 'R' },
		{ "io-size", required_argument, NULL, 'i' },
		{ "depth", required_argument, NULL, 'n' },
		{ "hold", no_argument, NULL, 'H' },
		{ "queues", required_argument, NULL, 'Q' },
		{ NULL, 0, NULL, 0 }
	};
	struct gv_attach_opts ao;
	struct cmd_args a = { .seed = 1 };
	struct gv_stats after;
	struct gv_device *d;
	struct sigaction sa;
	const char *cmd;
	char err[1024];
	uint64_t v;
	int c, rc, status;
	bool bypass, hold = false;
	unsigned nqueues = 1;

	gv_log_set_program("gv-frontend");
	gv_attach_opts_init(&ao);
	while ((c = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
		const char *arg = optarg;

		switch (c) {
		case 'P':
			if (!strcmp(arg, "sim"))
				ao.platform = GV_PLATFORM_SIM;
			else if (!strcmp(arg, "xen"))
				ao.platform = GV_PLATFORM_XEN;
			else
				goto bad_usage;
			break;
		case 'm':
			ao.dma = arg;
			break;
		case 'v':
			gv_log_threshold = GV_LOG_DEBUG;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'r':
			a.random = true;
			break;
		case 'R':
			a.raw = true;
			break;
		case 'H':
			hold = true;
			break;
		case '?':
			goto bad_usage;
		default:
			if (parse_size(arg, &v))
				goto bad_usage;
			switch (c) {
			case 'D': ao.domid = (int)v; break;
			case 'd': ao.devid = (unsigned)v; break;
			case 'x': ao.devid = (unsigned)v; ao.xl_disk = true; break;
			case 'q': ao.queue_size = (unsigned)v; break;
			case 'Q':
				if (v > 8)
					goto bad_usage;
				nqueues = (unsigned)v;
				break;
			case 'p': ao.pool_pages = (unsigned)v; break;
			case 't': ao.timeout_ms = (int)v; break;
			case 'T': ao.io_timeout_ms = (int)v; break;
			case 'W': ao.restart_timeout_ms = v ? (int)v : -1; break;
			case 'O': a.ops = v; break;
			case 's': a.size = v; break;
			case 'S': a.seed = v; a.have_seed = true; break;
			case 'o': a.offset = v; break;
			case 'l': a.length = v; a.have_length = true; break;
			case 'b': a.bytes = v; break;
			case 'i': a.io_size = v; break;
			case 'n': a.depth = v; break;
			}
		}
	}
	if (optind != argc - 1)
		goto bad_usage;
	cmd = argv[optind];
	if (strcmp(cmd, "info") && strcmp(cmd, "verify") && strcmp(cmd, "read") &&
	    strcmp(cmd, "write") && strcmp(cmd, "flush") && strcmp(cmd, "id") &&
	    strcmp(cmd, "rng"))
		goto bad_usage;
	if (!strcmp(cmd, "verify") && !a.size)
		goto bad_usage;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;     /* no SA_RESTART: poll() returns EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_finish;
	sigaction(SIGUSR1, &sa, NULL);

	{
		/* The choice gv_platform_open will make, said before anything runs. */
		const char *env = getenv("GV_PLATFORM");
		const char *kind = ao.platform == GV_PLATFORM_SIM ? "sim" :
			ao.platform == GV_PLATFORM_XEN ? "xen" :
			env && *env && strcmp(env, "auto") ? env :
			access("/dev/xen/gntdev", F_OK) == 0 ? "xen" : "sim";

		gv_info("platform: %s (%s)", kind, !strcmp(kind, "xen") ?
		        "real Xen: gntalloc/gntdev, event channels, xenstore" :
		        "simulated Xen: gv-simxen");
	}
	bypass = ao.dma && !strcmp(ao.dma, "bypass");
	rc = gv_attach_queues(&ao, nqueues, &d, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "gv-frontend: attach failed: %s\n", err);
		if (bypass)
			fprintf(stderr, "%s\n", bypass_explanation);
		return rc == -ECONNREFUSED ? 3 : 1;
	}

	gv_set_config_callback(d, on_config_change, NULL);
	if (!strcmp(cmd, "info"))
		status = cmd_info(d);
	else if (!strcmp(cmd, "verify"))
		status = cmd_verify(d, &a, ao.dma && !strcmp(ao.dma, "pool"));
	else if (!strcmp(cmd, "read"))
		status = cmd_read(d, &a);
	else if (!strcmp(cmd, "write"))
		status = cmd_write(d, &a);
	else if (!strcmp(cmd, "flush")) {
		rc = gv_blk_flush(d);
		if (rc < 0)
			fprintf(stderr, "flush: %s\n", strerror(-rc));
		else
			printf("flush: OK\n");
		status = rc < 0;
	} else if (!strcmp(cmd, "id")) {
		char id[21];

		rc = gv_blk_get_id(d, id);
		if (rc < 0)
			fprintf(stderr, "id: %s\n", strerror(-rc));
		else
			printf("id: %s\n", id);
		status = rc < 0;
	} else
		status = cmd_rng(d, &a);

	if (gv_device_broken(d)) {
		fprintf(stderr, "gv-frontend: the device stopped: %s\n", gv_device_error(d));
		if (bypass)
			fprintf(stderr, "%s\n", bypass_explanation);
		status = 3;
	}
	if (hold && !stop_signal) {
		char buf[256];
		ssize_t n;

		/* attached and idle, for a look at the backend's --status; the
		 * device's events are served meanwhile (a config change is
		 * printed as it comes) */
		printf("holding the device until stdin closes\n");
		fflush(stdout);
		for (;;) {
			struct pollfd pfd[2] = { { STDIN_FILENO, POLLIN, 0 },
			                         { gv_device_fd(d), POLLIN, 0 } };

			if (poll(pfd, 2, 1000) < 0 && errno == EINTR && stop_signal)
				break;
			if (pfd[0].revents) {
				n = read(STDIN_FILENO, buf, sizeof(buf));
				if (n == 0 || (n < 0 && errno != EINTR))
					break;
			}
			/* the watch's events come with the device's own fd polled
			 * inside gv_poll: a short look each second or on an event */
			if (gv_poll(d, 0) < 0)
				break;
		}
	}
	if (stop_signal) {
		fprintf(stderr, "gv-frontend: %s: detaching\n", strsignal(stop_signal));
		if (!status)
			status = 1;
	}
	fflush(stdout);     /* what was measured is out before the teardown */
	rc = gv_detach_stats(d, &after);
	print_counters("after detach", &after);
	if (rc < 0) {
		fprintf(stderr, "gv-frontend: detach: %s\n", strerror(-rc));
		if (!status)
			status = 1;
	}
	return status;

bad_usage:
	fputs(usage, stderr);
	return 2;
}
