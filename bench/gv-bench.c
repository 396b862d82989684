/*
 * bench/gv-bench.c: the benchmark driver of `make bench` (bench/run.sh).
 *
 *   gv-bench run ROW [options]   attach as a guest, run every workload, print
 *                                one tab-separated result line per workload
 *   gv-bench memcpy [options]    the copy limit: single-core memcpy at the
 *                                workloads' buffer sizes, same line format
 *   gv-bench report FILE...      read those lines, print the table with each
 *                                row's ratio to `direct`, write JSON and the
 *                                gnuplot data file
 *   gv-bench rss ROW [options]   gv-backend's resident memory before and after
 *                                --size (default 10^6) 4 KiB requests at QD32
 *   gv-bench seqread [options]   attach (simulated or real Xen), write a
 *                                region, then time one sequential read pass
 *                                of it: `make xen-bench`'s guest side
 *                                (xen-test/bench.sh); prints "bench: read ..."
 *
 * `run` is an ordinary application of the frontend library (grant_virtio.h):
 * every row goes through the same gv_blk_submit / gv_poll calls, the same
 * virtqueue and the same backend request code; rows differ only in the DMA
 * strategy and in how the backend was started (bench/run.sh says which).
 * Latency is per application request, submit to completion callback. CPU
 * time is read for the three processes: this one (the guest), gv-backend
 * and gv-simxen (the simulated hypervisor), from the kernel's per-task
 * run-time accounting, so it counts what each really spent in the window.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include "../frontend/grant_virtio.h"
#include "log.h"

#define MAX_DEPTH 64

struct workload {
	const char *name;       /* also the chart's x label */
	bool write, random;
	size_t size;
	unsigned depth;
};

/* The workloads, in the order of the table. */
static const struct workload workloads[] = {
	{ "4k-randread-qd1",   false, true,  4096,    1 },
	{ "4k-randwrite-qd1",  true,  true,  4096,    1 },
	{ "4k-randread-qd32",  false, true,  4096,    32 },
	{ "4k-randwrite-qd32", true,  true,  4096,    32 },
	{ "64k-seqread-qd8",   false, false, 65536,   8 },
	{ "64k-seqwrite-qd8",  true,  false, 65536,   8 },
	{ "1m-seqread-qd2",    false, false, 1 << 20, 2 },
	{ "1m-seqwrite-qd2",   true,  false, 1 << 20, 2 },
};
#define NWORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t self_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time of another process in ns: the sum of its threads' schedstat run
 * time (ns resolution, unlike the tick counts of /proc/PID/stat). 0 if the
 * pid is 0 or unreadable: the column then says nothing rather than lying. */
static uint64_t proc_cpu_ns(int pid)
{
	char path[64];
	uint64_t sum = 0;
	struct dirent *e;
	DIR *dir;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = opendir(path);
	if (!dir)
		return 0;
	while ((e = readdir(dir))) {
		char p2[300];
		unsigned long long run;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p2, sizeof(p2), "/proc/%d/task/%s/schedstat", pid, e->d_name);
		f = fopen(p2, "r");
		if (!f)
			continue;
		if (fscanf(f, "%llu", &run) == 1)
			sum += run;
		fclose(f);
	}
	closedir(dir);
	return sum;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return x < y ? -1 : x > y;
}

/* ---- one workload against the device ---- */

struct slot {
	struct gv_blk_io io;
	void *buf;
	double t0;
	bool busy;
};

struct run {
	struct gv_device *d;
	unsigned q;             /* the queue this run's thread drives (mq: one each) */
	const struct workload *w;
	uint64_t region;        /* bytes of the disk the workload covers */
	uint64_t next_off;      /* sequential position */
	uint64_t rng;
	bool record;
	float *lat;             /* microseconds, one per completed request */
	size_t nlat, cap;
	uint64_t ops, errors;
	uint64_t limit;         /* bytes to submit in all; 0: until the time is up */
	uint64_t submitted;
};

/* Another request may go out: time left, and bytes left if there is a limit. */
static bool more_to_submit(const struct run *r, double until)
{
	return now_s() < until && (!r->limit || r->submitted < r->limit);
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void on_done(struct gv_blk_io *io)
{
	struct slot *s = io->priv;

	s->busy = false;
	s->t0 = now_s() - s->t0;        /* the latency, picked up by the loop */
}

static int submit(struct run *r, struct slot *s)
{
	uint64_t off;

	if (r->w->random) {
		off = xorshift(&r->rng) % (r->region / r->w->size) * r->w->size;
	} else {
		off = r->next_off;
		r->next_off += r->w->size;
		if (r->next_off + r->w->size > r->region)
			r->next_off = 0;
	}
	memset(&s->io, 0, sizeof(s->io));
	s->io.op = r->w->write ? GV_BLK_WRITE : GV_BLK_READ;
	s->io.sector = off / 512;
	s->io.buf = s->buf;
	s->io.len = r->w->size;
	s->io.done = on_done;
	s->io.priv = s;
	s->busy = true;
	s->t0 = now_s();
	r->submitted += r->w->size;
	return gv_blk_submit_queue(r->d, r->q, &s->io);
}

/* Keeps depth requests in flight until `until`; then drains. Completions
 * are harvested after each gv_poll (not inside the callback) so that the
 * library never sees a submit from within its own completion path. */
static int drive(struct run *r, struct slot *slots, double until)
{
	unsigned depth = r->w->depth, inflight = 0;
	int rc;

	for (unsigned i = 0; i < depth && more_to_submit(r, until); i++) {
		rc = submit(r, &slots[i]);
		if (rc < 0)
			return rc;
		inflight++;
	}
	while (inflight) {
		bool more = more_to_submit(r, until);

		rc = gv_poll_queue(r->d, r->q, -1);
		if (rc < 0)
			return rc;
		for (unsigned i = 0; i < depth; i++) {
			struct slot *s = &slots[i];

			if (s->busy || s->t0 < 0)
				continue;
			inflight--;
			if (s->io.result)
				r->errors++;
			if (r->record) {
				if (r->nlat == r->cap) {
					size_t nc = r->cap ? r->cap * 2 : 1 << 16;
					float *nl = realloc(r->lat, nc * sizeof(*nl));

					if (!nl)
						return -ENOMEM;
					r->lat = nl;
					r->cap = nc;
				}
				r->lat[r->nlat++] = (float)(s->t0 * 1e6);
				r->ops++;
			}
			s->t0 = -1;     /* harvested */
			if (more) {
				rc = submit(r, s);
				if (rc < 0)
					return rc;
				inflight++;
			}
		}
	}
	return 0;
}

struct run_opts {
	const char *row;
	double secs, warm;
	int be_pid, hv_pid;
	bool app_pool;
	uint64_t region;
};

static void print_line(const char *row, const char *wl, uint64_t ops, double secs, uint64_t bytes,
                       double p50, double p99, uint64_t fe, uint64_t be, uint64_t hv,
                       uint64_t errors)
{
	printf("%s\t%s\t%" PRIu64 "\t%.6f\t%" PRIu64 "\t%.3f\t%.3f\t%" PRIu64 "\t%" PRIu64
	       "\t%" PRIu64 "\t%" PRIu64 "\n", row, wl, ops, secs, bytes, p50, p99, fe, be, hv,
	       errors);
	fflush(stdout);
}

static int run_workload(struct gv_device *d, const struct workload *w, const struct run_opts *o)
{
	struct slot slots[MAX_DEPTH];
	struct run r = { .d = d, .w = w, .region = o->region, .rng = 0x9e3779b97f4a7c15ull };
	uint64_t fe0, be0, hv0, fe1, be1, hv1;
	double t0, t1;
	int rc = 0;

	memset(slots, 0, sizeof(slots));
	for (unsigned i = 0; i < w->depth; i++) {
		slots[i].buf = o->app_pool ? gv_pool_alloc(d, w->size) : aligned_alloc(4096, w->size);
		if (!slots[i].buf) {
			fprintf(stderr, "gv-bench: %s: cannot allocate buffer %u of %zu bytes%s\n",
			        w->name, i, w->size, o->app_pool ? " in the pool" : "");
			rc = -ENOMEM;
			goto free_bufs;
		}
		memset(slots[i].buf, 0x5a + i, w->size);
		slots[i].t0 = -1;
	}
	/* warm-up: maps made on first touch (map cache, direct table) and the
	 * page cache of the image are settled before anything is measured */
	rc = drive(&r, slots, now_s() + o->warm);
	if (rc < 0)
		goto free_bufs;
	r.record = true;
	fe0 = self_cpu_ns();
	be0 = proc_cpu_ns(o->be_pid);
	hv0 = proc_cpu_ns(o->hv_pid);
	t0 = now_s();
	rc = drive(&r, slots, t0 + o->secs);
	t1 = now_s();
	fe1 = self_cpu_ns();
	be1 = proc_cpu_ns(o->be_pid);
	hv1 = proc_cpu_ns(o->hv_pid);
	if (rc < 0)
		goto free_bufs;
	qsort(r.lat, r.nlat, sizeof(*r.lat), cmp_float);
	print_line(o->row, w->name, r.ops, t1 - t0, r.ops * w->size,
	           r.nlat ? r.lat[r.nlat / 2] : 0, r.nlat ? r.lat[(size_t)(r.nlat * 0.99)] : 0,
	           fe1 - fe0, be1 - be0, hv1 - hv0, r.errors);
	if (r.errors)
		rc = -EIO;
free_bufs:
	for (unsigned i = 0; i < w->depth; i++) {
		if (!slots[i].buf)
			continue;
		if (o->app_pool)
			gv_pool_free(d, slots[i].buf, w->size);
		else
			free(slots[i].buf);
	}
	free(r.lat);
	return rc;
}

/* ---- multi-queue: one thread per queue ---- */

#define MQ_MAX 8

struct mq_worker {
	struct run r;
	struct workload w;
	struct slot slots[MAX_DEPTH];
	const struct run_opts *o;
	pthread_t tid;
	pthread_barrier_t *start;
	double t0, t1;
	int rc;
};

static void *mq_worker_main(void *arg)
{
	struct mq_worker *k = arg;

	k->rc = drive(&k->r, k->slots, now_s() + k->o->warm);
	pthread_barrier_wait(k->start);     /* everyone warm: measure together */
	k->r.record = true;
	k->t0 = now_s();
	if (!k->rc)
		k->rc = drive(&k->r, k->slots, k->t0 + k->o->secs);
	k->t1 = now_s();
	return NULL;
}

/* 4 KiB random reads at a total depth of `depth`, spread over nq threads,
 * thread i keeping depth/nq requests in flight on queue i (the device was
 * attached with nq queues). One result line, workload
 * 4k-randread-qd<depth>-<nq>q, the latency percentiles over all threads. */
static int run_mq(struct gv_device *d, unsigned nq, unsigned depth, const struct run_opts *o)
{
	struct mq_worker *k = calloc(nq, sizeof(*k));
	pthread_barrier_t start;
	uint64_t fe0, be0, hv0, fe1, be1, hv1, ops = 0, errors = 0;
	double t0 = 0, t1 = 0;
	float *lat = NULL;
	size_t nlat = 0;
	char name[48];
	int rc = 0;

	if (!k)
		return -ENOMEM;
	snprintf(name, sizeof(name), "4k-randread-qd%u-%uq", depth, nq);
	pthread_barrier_init(&start, NULL, nq + 1);
	for (unsigned q = 0; q < nq; q++) {
		k[q].w = (struct workload){ name, false, true, 4096, depth / nq };
		k[q].r = (struct run){ .d = d, .q = q, .w = &k[q].w, .region = o->region,
		                       .rng = 0x9e3779b97f4a7c15ull * (q + 1) };
		k[q].o = o;
		k[q].start = &start;
		for (unsigned i = 0; i < k[q].w.depth; i++) {
			k[q].slots[i].buf = o->app_pool ? gv_pool_alloc(d, 4096) : aligned_alloc(4096, 4096);
			if (!k[q].slots[i].buf) {
				rc = -ENOMEM;
				goto free_bufs;
			}
			memset(k[q].slots[i].buf, 0x5a, 4096);
			k[q].slots[i].t0 = -1;
		}
	}
	for (unsigned q = 0; q < nq; q++)
		if (pthread_create(&k[q].tid, NULL, mq_worker_main, &k[q]))
			abort();        /* the barrier would wait for ever */
	pthread_barrier_wait(&start);
	fe0 = self_cpu_ns();
	be0 = proc_cpu_ns(o->be_pid);
	hv0 = proc_cpu_ns(o->hv_pid);
	for (unsigned q = 0; q < nq; q++)
		pthread_join(k[q].tid, NULL);
	fe1 = self_cpu_ns();
	be1 = proc_cpu_ns(o->be_pid);
	hv1 = proc_cpu_ns(o->hv_pid);
	for (unsigned q = 0; q < nq; q++) {
		if (k[q].rc && !rc)
			rc = k[q].rc;
		ops += k[q].r.ops;
		errors += k[q].r.errors;
		nlat += k[q].r.nlat;
		t0 = q && t0 < k[q].t0 ? t0 : k[q].t0;  /* the earliest start ... */
		t1 = k[q].t1 > t1 ? k[q].t1 : t1;       /* ... to the last end */
	}
	lat = malloc((nlat ? nlat : 1) * sizeof(*lat));
	if (!lat && !rc)
		rc = -ENOMEM;
	if (!rc) {
		size_t n = 0;

		for (unsigned q = 0; q < nq; q++) {
			memcpy(lat + n, k[q].r.lat, k[q].r.nlat * sizeof(*lat));
			n += k[q].r.nlat;
		}
		qsort(lat, nlat, sizeof(*lat), cmp_float);
		print_line(o->row, name, ops, t1 - t0, ops * 4096, nlat ? lat[nlat / 2] : 0,
		           nlat ? lat[(size_t)(nlat * 0.99)] : 0, fe1 - fe0, be1 - be0, hv1 - hv0,
		           errors);
		if (errors)
			rc = -EIO;
	}
free_bufs:
	for (unsigned q = 0; q < nq; q++) {
		for (unsigned i = 0; i < k[q].w.depth; i++) {
			if (!k[q].slots[i].buf)
				continue;
			if (o->app_pool)
				gv_pool_free(d, k[q].slots[i].buf, 4096);
			else
				free(k[q].slots[i].buf);
		}
		free(k[q].r.lat);
	}
	pthread_barrier_destroy(&start);
	free(lat);
	free(k);
	return rc;
}

/* ---- backend memory over many requests ---- */

/* RssAnon of pid in kB (its private memory: an image on tmpfs the
 * backend maps counts in VmRSS as the image's pages), or -1. */
static long proc_rss_kb(int pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* 4 KiB random reads and writes at depth 32, alternating in rounds of
 * 10,000: a warm-up of 20,000 requests, the backend's resident memory,
 * then `count` more, and its resident memory again. A print, not a test:
 * growth per request is what to look at. */
static int run_rss(struct gv_device *d, const struct run_opts *o, uint64_t count)
{
	static const struct workload wl[2] = {
		{ "4k-randread-qd32", false, true, 4096, 32 },
		{ "4k-randwrite-qd32", true, true, 4096, 32 },
	};
	struct slot slots[32];
	uint64_t done = 0, errors = 0;
	long before = -1, after;
	double t0 = 0, t1;
	int rc = 0;

	memset(slots, 0, sizeof(slots));
	for (unsigned i = 0; i < 32; i++) {
		slots[i].buf = aligned_alloc(4096, 4096);
		if (!slots[i].buf) {
			rc = -ENOMEM;
			goto out;
		}
		memset(slots[i].buf, 0x5a, 4096);
		slots[i].t0 = -1;
	}
	for (int phase = 0; phase < 2; phase++) {
		uint64_t want = phase ? count : 20000;

		if (phase) {
			before = proc_rss_kb(o->be_pid);
			t0 = now_s();
		}
		for (uint64_t at = 0; at < want && rc == 0; at += 10000) {
			struct run r = { .d = d, .w = &wl[(at / 10000) % 2], .region = o->region,
			                 .rng = 0x9e3779b97f4a7c15ull + at,
			                 .limit = (want - at < 10000 ? want - at : 10000) * 4096 };

			rc = drive(&r, slots, now_s() + 3600);
			errors += r.errors;
			if (phase)
				done += r.submitted / 4096;
		}
	}
	t1 = now_s();
	after = proc_rss_kb(o->be_pid);
	if (rc == 0)
		printf("rss: %s: gv-backend RssAnon %ld kB after a 20,000-request warm-up, %ld kB after "
		       "%" PRIu64 " more 4 KiB requests at QD32 (%+ld kB, %.0f requests/s), %" PRIu64
		       " errors\n", o->row, before, after, done, after - before, done / (t1 - t0),
		       errors);
	if (errors)
		rc = -EIO;
out:
	for (unsigned i = 0; i < 32; i++)
		free(slots[i].buf);
	return rc;
}

/* ---- one sequential read pass, by size (make xen-bench) ---- */

/* Writes [0, size) in io_size requests at depth, then times reading it
 * back the same way. The data is not checked (gv-frontend verify does
 * that): the timed pass only moves data, as a raw O_DIRECT reader does,
 * so the pair's figure compares with gv-rawread's. */
static int run_seqread(struct gv_device *d, uint64_t size, size_t io_size, unsigned depth,
                       bool app_pool, const char *dma)
{
	struct workload w = { "seqread", true, false, io_size, depth };
	struct slot slots[MAX_DEPTH];
	struct run r = { .d = d, .w = &w, .region = size, .limit = size };
	double t0, t1;
	int rc = 0;

	memset(slots, 0, sizeof(slots));
	for (unsigned i = 0; i < depth; i++) {
		slots[i].buf = app_pool ? gv_pool_alloc(d, io_size) : aligned_alloc(4096, io_size);
		if (!slots[i].buf) {
			fprintf(stderr, "gv-bench: seqread: cannot allocate buffer %u of %zu bytes%s\n",
			        i, io_size, app_pool ? " in the pool" : "");
			rc = -ENOMEM;
			goto free_bufs;
		}
		memset(slots[i].buf, 0x5a + i, io_size);
		slots[i].t0 = -1;
	}
	rc = drive(&r, slots, HUGE_VAL);            /* the region, written */
	if (rc < 0)
		goto free_bufs;
	w.write = false;
	r.next_off = r.submitted = 0;
	t0 = now_s();
	rc = drive(&r, slots, HUGE_VAL);
	t1 = now_s();
	if (rc < 0)
		goto free_bufs;
	if (r.errors) {
		rc = -EIO;
		goto free_bufs;
	}
	printf("bench: read %.1f MiB in %zu-byte requests at %.2f MiB/s (dma %s)\n",
	       (double)size / 1048576, io_size, (double)size / 1048576 / (t1 - t0 + 1e-9), dma);
free_bufs:
	for (unsigned i = 0; i < depth; i++) {
		if (!slots[i].buf)
			continue;
		if (app_pool)
			gv_pool_free(d, slots[i].buf, io_size);
		else
			free(slots[i].buf);
	}
	free(r.lat);
	return rc;
}

/* SIZE with an optional K, M or G suffix (powers of 1024). 0 or -EINVAL. */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

/* ---- the copy limit ---- */

/* One core copying buffers of each workload's size back and forth, timed
 * in batches so the clock does not dominate 4 KiB copies. The latency
 * columns are the per-copy time of the median and 99th-percentile batch. */
static int run_memcpy(double secs)
{
	for (unsigned k = 0; k < NWORKLOADS; k++) {
		const struct workload *w = &workloads[k];
		size_t batch = w->size >= (1 << 20) ? 1 : (1 << 20) / w->size;
		char *a = aligned_alloc(4096, w->size), *b = aligned_alloc(4096, w->size);
		float *lat = NULL;
		size_t nlat = 0, cap = 0;
		uint64_t ops = 0, fe0;
		double t0, t1, t;

		if (!a || !b)
			return -ENOMEM;
		memset(a, 1, w->size);
		memset(b, 2, w->size);
		fe0 = self_cpu_ns();
		t0 = t = now_s();
		do {
			double s = t;

			for (size_t i = 0; i < batch; i++) {
				memcpy(i & 1 ? a : b, i & 1 ? b : a, w->size);
				/* keep the compiler from proving the copies dead */
				__asm__ __volatile__("" : : "r"(a), "r"(b) : "memory");
			}
			t = now_s();
			ops += batch;
			if (nlat == cap) {
				cap = cap ? cap * 2 : 4096;
				lat = realloc(lat, cap * sizeof(*lat));
				if (!lat)
					return -ENOMEM;
			}
			lat[nlat++] = (float)((t - s) / (double)batch * 1e6);
		} while (t - t0 < secs);
		t1 = t;
		qsort(lat, nlat, sizeof(*lat), cmp_float);
		print_line("memcpy", w->name, ops, t1 - t0, ops * w->size, lat[nlat / 2],
		           lat[(size_t)(nlat * 0.99)], self_cpu_ns() - fe0, 0, 0, 0);
		free(lat);
		free(a);
		free(b);
	}
	return 0;
}

/* ---- the report ---- */

#define MAX_ROWS 8

struct cell {
	bool have;
	double iops, mibs, p50, p99, fe_us, be_us, hv_us;
	uint64_t errors;
};

struct table {
	char rows[MAX_ROWS][32];
	unsigned nrows;
	struct cell c[MAX_ROWS][NWORKLOADS];
};

static int row_index(struct table *t, const char *name)
{
	for (unsigned i = 0; i < t->nrows; i++)
		if (!strcmp(t->rows[i], name))
			return (int)i;
	if (t->nrows == MAX_ROWS)
		return -1;
	snprintf(t->rows[t->nrows], sizeof(t->rows[0]), "%s", name);
	return (int)t->nrows++;
}

static int row_find(const struct table *t, const char *name)
{
	for (unsigned i = 0; i < t->nrows; i++)
		if (!strcmp(t->rows[i], name))
			return (int)i;
	return -1;
}

static int wl_index(const char *name)
{
	for (unsigned k = 0; k < NWORKLOADS; k++)
		if (!strcmp(workloads[k].name, name))
			return (int)k;
	return -1;
}

static int read_results(const char *file, struct table *t)
{
	char line[512], row[64], wl[64];
	FILE *f = fopen(file, "r");

	if (!f) {
		fprintf(stderr, "gv-bench: %s: %s\n", file, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long long ops, bytes, fe, be, hv, err;
		double secs, p50, p99;
		struct cell *c;
		int ri, wi;

		if (sscanf(line, "%63[^\t]\t%63[^\t]\t%llu\t%lf\t%llu\t%lf\t%lf\t%llu\t%llu\t%llu\t%llu",
		           row, wl, &ops, &secs, &bytes, &p50, &p99, &fe, &be, &hv, &err) != 11)
			continue;       /* not a result line (logs, progress) */
		ri = row_index(t, row);
		wi = wl_index(wl);
		if (ri < 0 || wi < 0 || !ops || secs <= 0)
			continue;
		c = &t->c[ri][wi];
		c->have = true;
		c->iops = (double)ops / secs;
		c->mibs = (double)bytes / secs / 1048576;
		c->p50 = p50;
		c->p99 = p99;
		c->fe_us = (double)fe / 1e3 / (double)ops;
		c->be_us = (double)be / 1e3 / (double)ops;
		c->hv_us = (double)hv / 1e3 / (double)ops;
		c->errors = err;
	}
	fclose(f);
	return 0;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static int report(const char *in, const char *json, const char *dat, const char *command,
                  const char *machine)
{
	struct table t;
	int direct;
	FILE *f;

	memset(&t, 0, sizeof(t));
	if (read_results(in, &t) < 0)
		return 1;
	direct = row_index(&t, "direct");

	printf("\n%-18s %-15s %10s %9s %9s %9s %8s %8s %8s %7s\n", "workload", "row", "IOPS",
	       "MiB/s", "p50 us", "p99 us", "fe us/r", "be us/r", "hv us/r", "x direct");
	for (unsigned k = 0; k < NWORKLOADS; k++) {
		for (unsigned i = 0; i < t.nrows; i++) {
			const struct cell *c = &t.c[i][k], *dc = &t.c[direct][k];

			if (!c->have)
				continue;
			printf("%-18s %-15s %10.0f %9.1f %9.1f %9.1f %8.2f %8.2f %8.2f %7.2f%s\n",
			       workloads[k].name, t.rows[i], c->iops, c->mibs, c->p50, c->p99,
			       c->fe_us, c->be_us, c->hv_us, dc->have ? c->iops / dc->iops : NAN,
			       c->errors ? "  ERRORS" : "");
		}
		printf("\n");
	}

	/* the grant strategy's two backend paths, same run */
	if (row_find(&t, "grant-copy") >= 0 && row_find(&t, "grant") >= 0) {
		int gc = row_find(&t, "grant-copy"), gm = row_find(&t, "grant");

		printf("grant copy vs map+unmap (IOPS of grant-copy / IOPS of grant, same run):\n");
		for (unsigned k = 0; k < NWORKLOADS; k++)
			if (t.c[gc][k].have && t.c[gm][k].have)
				printf("  %-18s %6.2f  (be us/r %.2f vs %.2f, hv us/r %.2f vs %.2f)\n",
				       workloads[k].name, t.c[gc][k].iops / t.c[gm][k].iops,
				       t.c[gc][k].be_us, t.c[gm][k].be_us, t.c[gc][k].hv_us,
				       t.c[gm][k].hv_us);
		printf("\n");
	}

	f = fopen(json, "w");
	if (!f) {
		fprintf(stderr, "gv-bench: %s: %s\n", json, strerror(errno));
		return 1;
	}
	fprintf(f, "{\n  \"command\": ");
	json_str(f, command);
	fprintf(f, ",\n  \"machine\": ");
	json_str(f, machine);
	fprintf(f, ",\n  \"units\": {\"latency\": \"us\", \"cpu\": \"us per request\", "
	        "\"ratio_to_direct\": \"IOPS / IOPS of direct, same workload, same run\"},\n"
	        "  \"results\": [\n");
	for (unsigned k = 0, first = 1; k < NWORKLOADS; k++) {
		for (unsigned i = 0; i < t.nrows; i++) {
			const struct cell *c = &t.c[i][k], *dc = &t.c[direct][k];

			if (!c->have)
				continue;
			fprintf(f, "%s    {\"workload\": \"%s\", \"row\": \"%s\", \"iops\": %.1f, "
			        "\"mib_s\": %.2f, \"lat_p50\": %.2f, \"lat_p99\": %.2f, "
			        "\"cpu_frontend\": %.3f, \"cpu_backend\": %.3f, \"cpu_hypervisor\": %.3f, "
			        "\"ratio_to_direct\": %.3f, \"errors\": %" PRIu64 "}",
			        first ? "" : ",\n", workloads[k].name, t.rows[i], c->iops, c->mibs,
			        c->p50, c->p99, c->fe_us, c->be_us, c->hv_us,
			        dc->have ? c->iops / dc->iops : 0.0, c->errors);
			first = 0;
		}
	}
	fprintf(f, "\n  ]\n}\n");
	fclose(f);

	/* gnuplot data: one line per workload, one column per row: the ratio
	 * to direct, then the same columns in MiB/s (memcpy only there: as a
	 * ratio it would flatten every other bar) */
	f = fopen(dat, "w");
	if (!f) {
		fprintf(stderr, "gv-bench: %s: %s\n", dat, strerror(errno));
		return 1;
	}
	fprintf(f, "workload");
	for (unsigned i = 0; i < t.nrows; i++)
		if (strcmp(t.rows[i], "memcpy"))
			fprintf(f, "\t%s", t.rows[i]);
	for (unsigned i = 0; i < t.nrows; i++)
		fprintf(f, "\t%s", t.rows[i]);
	fprintf(f, "\n");
	for (unsigned k = 0; k < NWORKLOADS; k++) {
		fprintf(f, "%s", workloads[k].name);
		for (unsigned i = 0; i < t.nrows; i++) {
			const struct cell *c = &t.c[i][k], *dc = &t.c[direct][k];

			if (!strcmp(t.rows[i], "memcpy"))
				continue;
			fprintf(f, "\t%.3f", c->have && dc->have ? c->iops / dc->iops : 0.0);
		}
		for (unsigned i = 0; i < t.nrows; i++)
			fprintf(f, "\t%.1f", t.c[i][k].have ? t.c[i][k].mibs : 0.0);
		fprintf(f, "\n");
	}
	fclose(f);
	return 0;
}

/* ---- main ---- */

/* --workloads: a list of workload names separated by commas or spaces. */
static bool workload_listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; *p; ) {
		size_t len = strcspn(p, ", ");

		if (len == n && !strncmp(p, name, n))
			return true;
		p += len;
		p += strspn(p, ", ");
	}
	return false;
}

static int check_workloads(const char *list)
{
	int rc = 0;

	for (const char *p = list + strspn(list, ", "); *p; ) {
		size_t len = strcspn(p, ", ");
		unsigned k;

		for (k = 0; k < NWORKLOADS; k++)
			if (strlen(workloads[k].name) == len && !strncmp(p, workloads[k].name, len))
				break;
		if (k == NWORKLOADS) {
			fprintf(stderr, "gv-bench: no workload %.*s\n", (int)len, p);
			rc = -1;
		}
		p += len;
		p += strspn(p, ", ");
	}
	return rc;
}

static const char usage[] =
"usage: gv-bench run ROW --dma STRATEGY [--app-pool] [--devid N] [--secs S] [--warm S]\n"
"                [--region BYTES] [--backend-pid PID] [--hv-pid PID] [--workloads W,W...]\n"
"       gv-bench mq ROW --queues N --dma STRATEGY [--app-pool] [--depth D] [--secs S]\n"
"                [--warm S] [--region BYTES] [--backend-pid PID] [--hv-pid PID]\n"
"       gv-bench memcpy [--secs S]\n"
"       gv-bench rss ROW --dma STRATEGY --backend-pid PID [--size REQUESTS]\n"
"       gv-bench report RESULTS.tsv OUT.json OUT.dat COMMAND MACHINE\n"
"       gv-bench seqread [--platform sim|xen] [--devid N] [--dma STRATEGY] [--app-pool]\n"
"                [--size SIZE] [--io-size SIZE] [--depth N] [--timeout MS]\n"
"Normally started by bench/run.sh (make bench); seqread by xen-test/bench.sh\n"
"(make xen-bench). SIZE takes K, M, G suffixes.\n";

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dma", required_argument, NULL, 'd' },
		{ "app-pool", no_argument, NULL, 'a' },
		{ "devid", required_argument, NULL, 'i' },
		{ "secs", required_argument, NULL, 's' },
		{ "warm", required_argument, NULL, 'w' },
		{ "region", required_argument, NULL, 'r' },
		{ "backend-pid", required_argument, NULL, 'b' },
		{ "hv-pid", required_argument, NULL, 'h' },
		{ "platform", required_argument, NULL, 'P' },
		{ "size", required_argument, NULL, 'S' },
		{ "io-size", required_argument, NULL, 'I' },
		{ "depth", required_argument, NULL, 'D' },
		{ "timeout", required_argument, NULL, 't' },
		{ "queues", required_argument, NULL, 'Q' },
		{ "workloads", required_argument, NULL, 'W' },
		{ 0 }
	};
	struct run_opts o = { .secs = 2, .warm = 0.2, .region = 256ull << 20 };
	uint64_t seq_size = 64ull << 20, seq_io = 128 * 1024, seq_depth = 1;
	unsigned mq_queues = 0;
	struct gv_attach_opts ao;
	struct gv_device_info info;
	struct gv_device *d;
	const char *cmd, *only = NULL;
	char err[512];
	int c, rc, status = 0;

	gv_log_set_program("gv-bench");
	if (argc < 2) {
		fputs(usage, stderr);
		return 2;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "report")) {
		if (argc != 7) {
			fputs(usage, stderr);
			return 2;
		}
		return report(argv[2], argv[3], argv[4], argv[5], argv[6]);
	}
	gv_attach_opts_init(&ao);
	if (!strcmp(cmd, "run") || !strcmp(cmd, "rss") || !strcmp(cmd, "mq")) {
		if (argc < 3) {
			fputs(usage, stderr);
			return 2;
		}
		o.row = argv[2];
		optind = 3;
		if (!strcmp(cmd, "rss"))
			seq_size = 1000000;     /* --size: the requests counted */
	} else {
		optind = 2;
	}
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': ao.dma = optarg; break;
		case 'a': o.app_pool = true; break;
		case 'i': ao.devid = (unsigned)atoi(optarg); break;
		case 's': o.secs = atof(optarg); break;
		case 'w': o.warm = atof(optarg); break;
		case 'r': o.region = strtoull(optarg, NULL, 0); break;
		case 'b': o.be_pid = atoi(optarg); break;
		case 'h': o.hv_pid = atoi(optarg); break;
		case 'P':
			if (!strcmp(optarg, "sim"))
				ao.platform = GV_PLATFORM_SIM;
			else if (!strcmp(optarg, "xen"))
				ao.platform = GV_PLATFORM_XEN;
			else
				goto bad_usage;
			break;
		case 'S':
			if (parse_size(optarg, &seq_size) || !seq_size)
				goto bad_usage;
			break;
		case 'I':
			if (parse_size(optarg, &seq_io) || !seq_io || seq_io % 512 || seq_io > 1u << 30)
				goto bad_usage;
			break;
		case 'D':
			if (parse_size(optarg, &seq_depth) || !seq_depth || seq_depth > MAX_DEPTH)
				goto bad_usage;
			break;
		case 't': ao.timeout_ms = atoi(optarg); break;
		case 'Q':
			mq_queues = (unsigned)atoi(optarg);
			if (!mq_queues || mq_queues > MQ_MAX)
				goto bad_usage;
			break;
		case 'W': only = optarg; break;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (!strcmp(cmd, "memcpy"))
		return run_memcpy(o.secs) < 0 ? 1 : 0;
	if (strcmp(cmd, "run") && strcmp(cmd, "seqread") && strcmp(cmd, "rss") && strcmp(cmd, "mq"))
		goto bad_usage;
	if (!strcmp(cmd, "mq")) {
		if (!mq_queues)
			goto bad_usage;
		if (seq_depth == 1)
			seq_depth = 32;     /* --depth: the total, spread over the queues */
		if (seq_depth % mq_queues)
			goto bad_usage;
	}
	if (!strcmp(cmd, "rss") && o.be_pid <= 0)
		goto bad_usage;

	rc = gv_attach_queues(&ao, mq_queues ? mq_queues : 1, &d, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "gv-bench: cannot attach: %s\n", err);
		return 3;
	}
	gv_get_info(d, &info);
	if (mq_queues && info.num_queues != mq_queues) {
		fprintf(stderr, "gv-bench: mq: asked for %u queues, the device gave %u\n", mq_queues,
		        info.num_queues);
		gv_detach(d);
		return 3;
	}
	if (!strcmp(cmd, "seqread")) {
		if (seq_size > info.capacity * 512)
			seq_size = info.capacity * 512;
		seq_size -= seq_size % seq_io;     /* whole requests only */
		rc = seq_size ? run_seqread(d, seq_size, (size_t)seq_io, (unsigned)seq_depth,
		                            o.app_pool, info.dma) : -ENOSPC;
		if (rc < 0)
			fprintf(stderr, "gv-bench: seqread: %s%s%s\n", strerror(-rc),
			        gv_device_broken(d) ? ": " : "", gv_device_error(d));
		status = rc < 0;
		if (gv_detach(d) < 0)
			status = 1;
		return status;
	}
	if (o.region > info.capacity * 512)
		o.region = info.capacity * 512;
	if (!strcmp(cmd, "mq")) {
		fprintf(stderr, "  %-8s 4k-randread-qd%u-%uq ...\n", o.row, (unsigned)seq_depth,
		        mq_queues);
		rc = run_mq(d, mq_queues, (unsigned)seq_depth, &o);
		if (rc < 0)
			fprintf(stderr, "gv-bench: mq: %s%s%s\n", strerror(-rc),
			        gv_device_broken(d) ? ": " : "", gv_device_error(d));
		status = rc < 0;
		if (gv_detach(d) < 0)
			status = 1;
		return status;
	}
	if (!strcmp(cmd, "rss")) {
		rc = run_rss(d, &o, seq_size);
		if (rc < 0)
			fprintf(stderr, "gv-bench: rss: %s%s%s\n", strerror(-rc),
			        gv_device_broken(d) ? ": " : "", gv_device_error(d));
		status = rc < 0;
		if (gv_detach(d) < 0)
			status = 1;
		return status;
	}
	if (only && check_workloads(only) < 0)
		status = 1;
	for (unsigned k = 0; k < NWORKLOADS && !status; k++) {
		if (only && !workload_listed(only, workloads[k].name))
			continue;
		fprintf(stderr, "  %-8s %-18s ...\n", o.row, workloads[k].name);
		rc = run_workload(d, &workloads[k], &o);
		if (rc < 0) {
			fprintf(stderr, "gv-bench: %s %s: %s%s%s\n", o.row, workloads[k].name,
			        strerror(-rc), gv_device_broken(d) ? ": " : "",
			        gv_device_error(d));
			status = 1;
		}
	}
	if (gv_detach(d) < 0)
		status = 1;
	return status;

bad_usage:
	fputs(usage, stderr);
	return 2;
}
