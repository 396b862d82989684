/*
 * test/test_hostile_frontend.c: the real gv-backend attacked by a frontend
 * that lies (hostile_frontend.c), while a second guest runs gv-frontend
 * verify on the same backend and must pass untouched.
 *
 * Each test is one misbehaviour with its expected outcome from
 * docs/transport.md: a structural ring error breaks the device (BE=Closing,
 * device-status 64, one line of error, exactly one "device broken" line in
 * the backend's log); a request-level error is answered in the status byte
 * and the device goes on serving. Every test then checks that the backend
 * released every mapping of the hostile domain (the simulated hypervisor's
 * count of its pages mapped by others is 0, and every grant ends without
 * -EBUSY), that the backend process is alive, and that the other guest's
 * verify exited 0.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xenstore.h>
#include "check.h"
#include "sim_harness.h"
#include "hostile_frontend.h"
#include "platform_sim.h"
#include "dma_addr.h"
#include "xs_keys.h"
#include "xs_util.h"

#define QSZ 8
#define DISK_BYTES (4u << 20)

static struct sim_env env;
static pid_t backend = -1, good = -1;
static char logfile[160], goodlog[160], hdisk[160];
static struct gv_platform *dom0;
static domid_t hdom, gdom;
static unsigned broken_before;

/* ---- the world: simulated Xen, the backend, two guests ---------------------- */

static uint8_t disk_byte(uint64_t o)
{
	/* different in every byte and every sector: a read names its source */
	return (uint8_t)(o * 7 + o / 512 * 13 + 1);
}

/* the cases after t_queue_threads_on: gv-backend --queue-threads on, each
 * queue served (and broken) in a thread of its own */
static bool queue_threads;

static pid_t start_backend(const char *cfg)
{
	return spawn_ready("gv-backend", (const char *[]){ "--config", cfg, "--queue-threads",
	                   queue_threads ? "on" : "off", NULL }, logfile, 10);
}

static int make_disk(const char *path, bool pattern)
{
	static uint8_t buf[DISK_BYTES];
	int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);

	if (fd < 0)
		return -1;
	for (uint64_t o = 0; o < DISK_BYTES; o++)
		buf[o] = pattern ? disk_byte(o) : 0;
	if (write(fd, buf, DISK_BYTES) != (ssize_t)DISK_BYTES) {
		close(fd);
		return -1;
	}
	return close(fd);
}

static int world_up(void)
{
	char gdisk[160], cfg[160];
	FILE *f;
	int id;

	if (sim_start(&env, NULL) < 0)
		return -1;
	snprintf(hdisk, sizeof(hdisk), "%s/hostile.img", env.dir);
	snprintf(gdisk, sizeof(gdisk), "%s/good.img", env.dir);
	snprintf(cfg, sizeof(cfg), "%s/backend.conf", env.dir);
	snprintf(logfile, sizeof(logfile), "%s.backend.log", env.dir);
	snprintf(goodlog, sizeof(goodlog), "%s.good.log", env.dir);
	if (make_disk(hdisk, true) < 0 || make_disk(gdisk, false) < 0)
		return -1;
	f = fopen(cfg, "w");
	if (!f)
		return -1;
	fprintf(f, "disk hostile:0 %s\ndisk good:0 %s\n", hdisk, gdisk);
	fclose(f);
	if (!(dom0 = sim_open_domain(0)))
		return -1;
	backend = start_backend(cfg);
	if (backend < 0)
		return -1;
	if ((id = sim_create_guest(&env, "hostile", "2")) <= 0)
		return -1;
	hdom = (domid_t)id;
	if ((id = sim_create_guest(&env, "good", "2")) <= 0)
		return -1;
	gdom = (domid_t)id;
	return 0;
}

static void world_down(void)
{

	if (good > 0)
		wait_prog(good, 10);
	stop_daemon(&backend, "gv-backend");
	if (dom0)
		gv_platform_close(dom0);
	sim_stop(&env);
	if (getenv("GV_TEST_VERBOSE"))
		print_log(logfile);
	unlink(logfile);
	unlink(goodlog);
}

static struct sim_domain_info *dom_info(domid_t id)
{
	static struct sim_domain_info info[SIM_MAX_LIST];
	int n = gv_sim_domain_list(dom0, info, SIM_MAX_LIST);

	for (int i = 0; i < n; i++)
		if (info[i].domid == id)
			return &info[i];
	return NULL;
}

static unsigned log_count(const char *what)
{
	char line[1024];
	unsigned n = 0;
	FILE *f = fopen(logfile, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, what) != NULL;
	fclose(f);
	return n;
}

static bool backend_alive(void)
{
	return waitpid(backend, NULL, WNOHANG) == 0;
}

/* backend CPU time (user + system) in ms, from /proc/PID/stat */
static long backend_cpu_ms(void)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)backend);
	f = fopen(path, "r");
	if (!f)
		return -1;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!p || !(p = strrchr(buf, ')')))
		return -1;
	/* fields after the name: state(3) ... utime(14) stime(15) */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (long)((ut + st) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
}

/* ---- each case: begin (the other guest starts verifying), end (checks) ------- */

static int good_rc;             /* when a case waited for the other guest itself */
static struct hf *open_hf;      /* closed by the next case if a check failed */

static int case_begin(struct hf *h)
{
	char dom[16];

	if (open_hf && open_hf->p)
		hf_close(open_hf);
	if (good > 0)
		wait_prog(good, 30);
	open_hf = h;

	snprintf(dom, sizeof(dom), "%u", gdom);
	unlink(goodlog);
	good = spawn_prog("gv-frontend", (const char *[]){ "--domid", dom, "--dma", "grant",
	                  "verify", "--size", "2M", "--random", NULL }, NULL, goodlog);
	CHECK(good > 0);
	broken_before = log_count("device broken");
	CHECK_EQ(hf_open(h, env.dir, hdom, QSZ), 0);
	return 0;
}

static int case_end(struct hf *h, unsigned breaks, bool expect_leak)
{
	long leaked;
	int rc;

	leaked = hf_close(h);
	CHECK_MSG(leaked >= 0, "the backend never closed the device");
	if (!expect_leak)
		CHECK_EQ(leaked, 0);
	CHECK(backend_alive());
	CHECK_EQ(dom_info(hdom)->pages_mapped_by_others, 0);
	CHECK_EQ(log_count("device broken") - broken_before, breaks);
	rc = good > 0 ? wait_prog(good, 60) : good_rc;
	good = -1;
	if (rc != 0) {
		char line[512];
		FILE *f = fopen(goodlog, "r");

		while (f && fgets(line, sizeof(line), f))
			printf("  good| %s", line);
		if (f)
			fclose(f);
	}
	CHECK_MSG(rc == 0, "the other guest's verify failed (exit %d)", rc);
	return 0;
}

/* An honest read of 512 bytes at sector 3 is served: the device still works. */
static int still_serves(struct hf *h)
{
	uint32_t id;

	memset(h->data + GV_PAGE_SIZE, 0, 512);
	hf_submit(h, hf_blk_in(h, 0, 3, 1, 512));
	CHECK_EQ(hf_wait_used(h, 5000, &id), 513);
	CHECK_EQ(id, 0);
	CHECK_EQ(h->data[200], VIRTIO_BLK_S_OK);
	for (unsigned i = 0; i < 512; i++)
		CHECK_EQ(h->data[GV_PAGE_SIZE + i], disk_byte(3 * 512 + i));
	return 0;
}

/* ---- structural errors: the device breaks ------------------------------------ */

enum bend {
	AVAIL_JUMP, HEAD_OOR, NEXT_OOR, LOOP_DIRECT, LOOP_INDIRECT, NESTED_INDIRECT,
	INDIRECT_NEXT, INDIRECT_LEN_ODD, INDIRECT_EMPTY, INDIRECT_HUGE, LEN_OVERFLOW,
	NO_GRANT_BIT, INDIRECT_NO_GRANT_BIT, GRANT_BITS_HIGH,
};

static void bend_ring(struct hf *h, enum bend b)
{
	struct vring_desc *it = (struct vring_desc *)(h->data + 3 * GV_PAGE_SIZE);
	uint64_t itab = gv_grant_to_dma(h->data_ref[3], 0);

	hf_blk_in(h, 0, 0, 1, 512);
	switch (b) {
	case AVAIL_JUMP:
		h->avail_idx += QSZ + 1;    /* nine new entries in a ring of eight */
		h->avail->idx = h->avail_idx;
		gv_evtchn_notify(h->p, h->qport);
		return;
	case HEAD_OOR:
		hf_submit(h, QSZ);
		return;
	case NEXT_OOR:
		h->desc[1].next = 0xffff;
		break;
	case LOOP_DIRECT:
		h->desc[2].flags |= VRING_DESC_F_NEXT;
		h->desc[2].next = 1;        /* 0 -> 1 -> 2 -> 1 -> ... all writable */
		break;
	case LOOP_INDIRECT:
	case NESTED_INDIRECT:
		memcpy(it, h->desc, 3 * sizeof(*it));
		if (b == LOOP_INDIRECT) {
			it[2].flags |= VRING_DESC_F_NEXT;
			it[2].next = 1;
		} else {
			it[1] = (struct vring_desc){ itab, 48, VRING_DESC_F_INDIRECT, 0 };
		}
		h->desc[0] = (struct vring_desc){ itab, 48, VRING_DESC_F_INDIRECT, 0 };
		break;
	case INDIRECT_NEXT:
		memcpy(it, h->desc, 3 * sizeof(*it));
		h->desc[0] = (struct vring_desc){ itab, 48, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT,
		                                  1 };
		break;
	case INDIRECT_LEN_ODD:
		memcpy(it, h->desc, 3 * sizeof(*it));
		h->desc[0] = (struct vring_desc){ itab, 47, VRING_DESC_F_INDIRECT, 0 };
		break;
	case INDIRECT_EMPTY:
		h->desc[0] = (struct vring_desc){ itab, 0, VRING_DESC_F_INDIRECT, 0 };
		break;
	case INDIRECT_HUGE:
		h->desc[0] = (struct vring_desc){ itab, 0xfffffff0u, VRING_DESC_F_INDIRECT, 0 };
		break;
	case LEN_OVERFLOW:
		/* 16 + 0xfffffff0 + 0x20 > 2^32: each length fine, the sum is not */
		h->desc[1].len = 0xfffffff0u;
		h->desc[2].len = 0x20;
		break;
	case NO_GRANT_BIT:
		h->desc[1].addr = 0x12345000;  /* a guest-physical address */
		break;
	case INDIRECT_NO_GRANT_BIT:
		h->desc[0] = (struct vring_desc){ 0x5000, 48, VRING_DESC_F_INDIRECT, 0 };
		break;
	case GRANT_BITS_HIGH:
		h->desc[1].addr |= 1ULL << 50;  /* bits 44-62 must be zero */
		break;
	}
	hf_submit(h, 0);
}

static int ring_case(enum bend b, const char *expect)
{
	static struct hf h;   /* outlives a failed check: the next case closes it */
	char err[512];

	CHECK_EQ(case_begin(&h), 0);
	CHECK_EQ(hf_write_keys(&h, NULL, 0), 0);
	CHECK_EQ(hf_wait_connect(&h, 5000), 4);
	CHECK_EQ(still_serves(&h), 0);
	/* served by a queue thread from t_queue_threads_on on */
	CHECK(!queue_threads || log_count(": 1 queue thread") > 0);
	bend_ring(&h, b);
	CHECK_MSG(hf_wait_broken(&h, 5000, err, sizeof(err)),
	          "the device did not break (case %d)", (int)b);
	CHECK_MSG(strstr(err, expect), "error \"%s\" lacks \"%s\"", err, expect);
	printf("case %d: error = %s\n", (int)b, err);
	CHECK_EQ(dom_info(hdom)->pages_mapped_by_others, 0);  /* unmapped before Closing */
	return case_end(&h, 1, false);
}

static int t_avail_jump(void)      { return ring_case(AVAIL_JUMP, "more than the queue size"); }
static int t_head_out_of_range(void) { return ring_case(HEAD_OOR, "head index 8 out of range"); }
static int t_next_out_of_range(void) { return ring_case(NEXT_OOR, "next index 65535 out of range"); }
static int t_loop_direct(void)     { return ring_case(LOOP_DIRECT, "a loop"); }
static int t_loop_indirect(void)   { return ring_case(LOOP_INDIRECT, "a loop"); }
static int t_nested_indirect(void) { return ring_case(NESTED_INDIRECT, "nested indirect"); }
static int t_indirect_and_next(void) { return ring_case(INDIRECT_NEXT, "both INDIRECT and NEXT"); }
static int t_indirect_len_odd(void) { return ring_case(INDIRECT_LEN_ODD, "multiple of 16"); }
static int t_indirect_empty(void)  { return ring_case(INDIRECT_EMPTY, "multiple of 16"); }
static int t_indirect_huge(void)   { return ring_case(INDIRECT_HUGE, "at most 8"); }
static int t_length_overflow(void) { return ring_case(LEN_OVERFLOW, "overflow 32 bits"); }
static int t_no_grant_bit(void)    { return ring_case(NO_GRANT_BIT, "not a grant reference"); }
static int t_indirect_no_grant_bit(void)
{
	return ring_case(INDIRECT_NO_GRANT_BIT, "not a grant reference");
}
static int t_grant_bits_high(void) { return ring_case(GRANT_BITS_HIGH, "not a grant DMA address"); }

/* ---- request-level errors: the status byte says it, the device goes on -------- */

static int t_request_errors(void)
{
	static struct hf h;   /* outlives a failed check: the next case closes it */
	grant_ref_t foreign;
	void *fpage;
	uint32_t id;

	CHECK_EQ(case_begin(&h), 0);
	CHECK_EQ(hf_write_keys(&h, NULL, 0), 0);
	CHECK_EQ(hf_wait_connect(&h, 5000), 4);

	/* a device-writable descriptor on a read-only grant: the map is refused */
	memset(h.ro, 0x5a, GV_PAGE_SIZE);
	hf_blk_in(&h, 0, 0, 1, 512);
	h.desc[1].addr = gv_grant_to_dma(h.ro_ref[0], 0);
	hf_submit(&h, 0);
	CHECK_EQ(hf_wait_used(&h, 5000, &id), 1);
	CHECK_EQ(h.data[200], VIRTIO_BLK_S_IOERR);
	for (unsigned i = 0; i < GV_PAGE_SIZE; i++)
		CHECK_EQ(h.ro[i], 0x5a);

	/* grant refs that do not exist: in range of grant_ref_t, never granted */
	const grant_ref_t bogus[] = { 0, 7, 0xfffff, 0xfffffffe, 0xffffffff };
	for (unsigned k = 0; k < sizeof(bogus) / sizeof(bogus[0]); k++) {
		hf_blk_in(&h, 0, 0, 1, 512);
		h.desc[1].addr = gv_grant_to_dma(bogus[k], 0);
		hf_submit(&h, 0);
		CHECK_EQ(hf_wait_used(&h, 5000, &id), 1);
		CHECK_EQ(h.data[200], VIRTIO_BLK_S_IOERR);
	}

	/* a page granted to another domain (the good guest), not to the backend */
	CHECK_EQ(gv_grant_alloc(h.p, gdom, 1, 0, NULL, &foreign, &fpage), 0);
	hf_blk_in(&h, 0, 0, 1, 512);
	h.desc[1].addr = gv_grant_to_dma(foreign, 0);
	hf_submit(&h, 0);
	CHECK_EQ(hf_wait_used(&h, 5000, &id), 1);
	CHECK_EQ(h.data[200], VIRTIO_BLK_S_IOERR);
	CHECK_EQ(gv_grant_end(h.p, fpage, 1), 0);

	/* zero-length data: nothing to move; answered, not fatal */
	hf_blk_in(&h, 0, 0, 1, 0);
	hf_submit(&h, 0);
	CHECK_EQ(hf_wait_used(&h, 5000, &id), 1);
	CHECK(h.data[200] == VIRTIO_BLK_S_OK || h.data[200] == VIRTIO_BLK_S_IOERR);

	/* zero-length status: nowhere to answer; used len counts only data, our
	 * status byte untouched */
	hf_blk_in(&h, 0, 0, 1, 512);
	h.desc[2].len = 0;
	hf_submit(&h, 0);
	CHECK(hf_wait_used(&h, 5000, &id) <= 512);
	CHECK_EQ(h.data[200], 0xff);

	/* zero-length header, and a chain of a single zero-length descriptor */
	hf_blk_in(&h, 0, 0, 1, 512);
	h.desc[0].len = 0;
	hf_submit(&h, 0);
	CHECK_EQ(hf_wait_used(&h, 5000, &id), 1);
	CHECK_EQ(h.data[200], VIRTIO_BLK_S_IOERR);
	h.desc[0] = (struct vring_desc){ gv_grant_to_dma(h.data_ref[0], 0), 0, 0, 0 };
	hf_submit(&h, 0);
	CHECK_EQ(hf_wait_used(&h, 5000, &id), 0);

	/* a sector past the end, and an unknown type */
	hf_blk_in(&h, 0, DISK_BYTES / 512, 1, 512);
	hf_submit(&h, 0);
	CHECK_EQ(hf_wait_used(&h, 5000, &id), 1);
	CHECK_EQ(h.data[200], VIRTIO_BLK_S_IOERR);
	hf_blk_in(&h, 0, 0, 1, 512);
	((struct virtio_blk_outhdr *)h.data)->type = 0x7777;
	hf_submit(&h, 0);
	CHECK(hf_wait_used(&h, 5000, &id) >= 1);
	CHECK(h.data[200] == VIRTIO_BLK_S_UNSUPP || h.data[200] == VIRTIO_BLK_S_IOERR);

	CHECK_EQ(still_serves(&h), 0);
	return case_end(&h, 0, false);
}

/* Grants ended while the backend may be using them (XSA-396's race, from the
 * guest side): the end either succeeds (the backend had not mapped them yet:
 * its map then fails and the request is IOERR) or says -EBUSY (it maps them:
 * the pages leak on purpose). The backend neither crashes nor breaks. */
static int t_revoke_mid_request(void)
{
	static struct hf h;   /* outlives a failed check: the next case closes it */
	unsigned busy = 0, ok = 0, ioerr = 0;

	CHECK_EQ(case_begin(&h), 0);
	CHECK_EQ(hf_write_keys(&h, NULL, 0), 0);
	CHECK_EQ(hf_wait_connect(&h, 5000), 4);
	for (unsigned round = 0; round < 200; round++) {
		grant_ref_t refs[16];
		void *addr;
		uint32_t id;
		int rc;

		CHECK_EQ(gv_grant_alloc(h.p, 0, 16, 0, NULL, refs, &addr), 0);
		/* header -> 5 pages of the fresh allocation -> status: refs may be
		 * scattered, so one descriptor per page keeps the contiguity rule */
		hf_blk_in(&h, 0, 0, 1, 0);
		h.desc[0].next = 3;
		for (unsigned k = 0; k < 5; k++)
			h.desc[3 + k] = (struct vring_desc){ gv_grant_to_dma(refs[k], 0), GV_PAGE_SIZE,
			                                     VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
			                                     (uint16_t)(k < 4 ? 4 + k : 2) };
		hf_submit(&h, 0);
		/* end at once, racing the backend's map */
		rc = gv_grant_end(h.p, addr, 16);
		CHECK(rc == 0 || rc == -EBUSY);
		busy += rc == -EBUSY;
		CHECK_EQ(hf_wait_used(&h, 5000, &id) >= 1, 1);
		CHECK(h.data[200] == VIRTIO_BLK_S_OK || h.data[200] == VIRTIO_BLK_S_IOERR);
		ok += h.data[200] == VIRTIO_BLK_S_OK;
		ioerr += h.data[200] == VIRTIO_BLK_S_IOERR;
	}
	printf("revoked mid-request 200 times: end -EBUSY %u (pages leaked on purpose), "
	       "served %u, IOERR %u\n", busy, ok, ioerr);
	/* only the 5 pages the backend maps can be busy; the other 11 end */
	CHECK_EQ(h.p->ctr.grants_leaked, (uint64_t)busy * 5);
	CHECK_EQ(still_serves(&h), 0);
	CHECK_EQ(case_end(&h, 0, false), 0);
	/* leaked pages are kept by the hypervisor, never mapped by anyone now */
	CHECK_EQ(dom_info(hdom)->pages_mapped_by_others, 0);
	return 0;
}

/* ---- the double fetch (XSA-155): a second thread rewrites the request ---------- */

struct flipper {
	struct hf *h;
	bool stop;                      /* __atomic */
	unsigned long flips;
};

static void *flip_thread(void *arg)
{
	struct flipper *f = arg;
	volatile struct vring_desc *d = f->h->desc;
	volatile struct virtio_blk_outhdr *hdr = (volatile struct virtio_blk_outhdr *)f->h->data;

	while (!__atomic_load_n(&f->stop, __ATOMIC_RELAXED)) {
		/* the data length, and the sector in the header */
		d[1].len = 512;
		hdr->sector = 8;
		d[1].len = 4096;
		hdr->sector = 0;
		f->flips++;
	}
	return NULL;
}

static int t_rewrite_after_notify(void)
{
	struct flipper f = { 0 };
	static struct hf h;   /* outlives a failed check: the next case closes it */
	pthread_t th;
	unsigned seen[2] = { 0, 0 };

	CHECK_EQ(case_begin(&h), 0);
	CHECK_EQ(hf_write_keys(&h, NULL, 0), 0);
	CHECK_EQ(hf_wait_connect(&h, 5000), 4);
	f.h = &h;
	hf_blk_in(&h, 0, 0, 1, 4096);
	CHECK_EQ(pthread_create(&th, NULL, flip_thread, &f), 0);
	for (unsigned round = 0; round < 1000; round++) {
		uint8_t *buf = h.data + GV_PAGE_SIZE;
		uint32_t id;
		long len;
		unsigned n, base;

		memset(buf, 0xee, GV_PAGE_SIZE);
		h.data[200] = 0xff;
		hf_submit(&h, 0);
		len = hf_wait_used(&h, 5000, &id);
		if (len < 0)
			__atomic_store_n(&f.stop, true, __ATOMIC_RELAXED);
		CHECK(len >= 0);
		CHECK_EQ(h.data[200], VIRTIO_BLK_S_OK);
		/* the used length says which copy the backend acted on: exactly
		 * that many bytes moved, all from one sector, the rest untouched */
		n = (unsigned)len - 1;
		CHECK_MSG(n == 512 || n == 4096, "used len %ld", len);
		base = buf[0] == disk_byte(8 * 512) ? 8 : 0;
		for (unsigned i = 0; i < n; i++)
			CHECK_MSG(buf[i] == disk_byte(base * 512 + i),
			          "byte %u of a %u-byte read of sector %u is not the disk's", i, n,
			          base);
		for (unsigned i = n; i < GV_PAGE_SIZE; i++)
			CHECK_MSG(buf[i] == 0xee, "byte %u written beyond the used length %ld", i, len);
		seen[n == 4096]++;
	}
	__atomic_store_n(&f.stop, true, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	printf("rewritten while served: %lu flips, used len 513 x%u, 4097 x%u, "
	       "every one consistent\n", f.flips, seen[0], seen[1]);
	hf_blk_in(&h, 0, 0, 1, 512);
	CHECK_EQ(still_serves(&h), 0);
	return case_end(&h, 0, false);
}

/* ---- floods ---------------------------------------------------------------------- */

/* 100,000 kicks on the queue port and 100,000 on the device port, with
 * nothing to do (XSA-332): bounded CPU, still serving, no spin after. */
static int t_event_storm(void)
{
	static struct hf h;   /* outlives a failed check: the next case closes it */
	long c0, cs, c1, c2;
	double t0, t1;

	CHECK_EQ(case_begin(&h), 0);
	CHECK_EQ(hf_write_keys(&h, NULL, 0), 0);
	CHECK_EQ(hf_wait_connect(&h, 5000), 4);
	c0 = backend_cpu_ms();
	t0 = gv_now_ms();
	for (unsigned i = 0; i < 100000; i++) {
		CHECK_EQ(gv_evtchn_notify(h.p, h.qport), 0);
		CHECK_EQ(gv_evtchn_notify(h.p, h.dport), 0);
	}
	t1 = gv_now_ms();
	CHECK_EQ(still_serves(&h), 0);
	cs = backend_cpu_ms();
	/* the other guest's verify must have passed through the storm; once it
	 * is done the backend has nothing to do */
	good_rc = wait_prog(good, 60);
	good = -1;
	c1 = backend_cpu_ms();
	/* a measurement window, not a synchronisation: the backend must be idle */
	poll(NULL, 0, 300);
	c2 = backend_cpu_ms();
	printf("event storm: 200,000 notifies in %.0f ms; backend CPU %ld ms during, %ld ms in "
	       "the 300 ms after\n", t1 - t0, cs - c0, c2 - c1);
	CHECK(c0 >= 0 && cs >= 0 && c1 >= 0 && c2 >= 0);
	CHECK_MSG(cs - c0 <= (long)(t1 - t0) + 500, "backend CPU %ld ms for a %.0f ms storm",
	          cs - c0, t1 - t0);
	CHECK_MSG(c2 - c1 <= 60, "backend still busy after the storm: %ld ms", c2 - c1);
	return case_end(&h, 0, false);
}

/* 100,000 writes of the frontend state (XSA-349's watch flood): the backend
 * keeps up, stays bounded, and the device and the other guest still work. */
static int t_state_flips(void)
{
	static const char *const vals[] = { "3", "4", "banana", "4", "99", "4", "", "4" };
	static struct hf h;   /* outlives a failed check: the next case closes it */
	long c0, c1;
	double t0, t1;
	char st[8];

	CHECK_EQ(case_begin(&h), 0);
	CHECK_EQ(hf_write_keys(&h, NULL, 0), 0);
	CHECK_EQ(hf_wait_connect(&h, 5000), 4);
	c0 = backend_cpu_ms();
	t0 = gv_now_ms();
	for (unsigned i = 0; i < 100000; i++)
		CHECK_EQ(gv_xs_write_str(h.xs, XBT_NULL, h.fe, GV_XS_FE_STATE, vals[i % 8]), 0);
	t1 = gv_now_ms();
	c1 = backend_cpu_ms();
	printf("100,000 state flips in %.0f ms; backend CPU %ld ms\n", t1 - t0, c1 - c0);
	CHECK(backend_alive());
	/* the last value written was 4 (Connected): whatever the backend made of
	 * the garbage, it is connected now or it closed the device cleanly */
	CHECK_EQ(gv_xs_read_str(h.xs, XBT_NULL, h.be, GV_XS_STATE, st, sizeof(st)), 0);
	if (!strcmp(st, "4"))
		CHECK_EQ(still_serves(&h), 0);
	else
		printf("backend state after the flood: %s\n", st);
	CHECK_MSG(c1 - c0 <= (long)(t1 - t0) * 2 + 1000, "backend CPU %ld ms", c1 - c0);
	return case_end(&h, log_count("device broken") - broken_before, false);
}

/* ---- garbage in every key the backend reads ----------------------------------- */

static int t_garbage_keys(void)
{
	char big[3000], lots[4000], ro_desc[16], nongrant[16];
	const char *num = GV_XS_FE_NUM_QUEUES, *qs = "queue-0/size", *dr = "queue-0/desc-refs",
	           *ar = "queue-0/avail-refs", *ur = "queue-0/used-refs",
	           *qe = "queue-0/event-channel", *df = GV_XS_DRIVER_FEATURES,
	           *pp = GV_XS_PERSISTENT_POOL, *ec = GV_XS_EVENT_CHANNEL,
	           *lr = GV_XS_LIVENESS_REF;
	struct { const char *key, *val; int want; } cases[] = {
		{ df, "", 5 }, { df, "banana", 5 }, { df, "0x", 5 }, { df, "-1", 5 },
		{ df, "0x1ffffffffffffffff", 5 }, { df, "18446744073709551616", 5 },
		{ df, "0x1", 5 }, { df, "0xffffffffffffffff", 5 }, { df, " 0x100000001", 5 },
		{ df, NULL, 5 },
		{ pp, "2", 5 }, { pp, "yes", 5 }, { pp, "", 5 }, { pp, NULL, 4 }, { pp, "0x0", 4 },
		{ ec, "banana", 5 }, { ec, "4294967295", 5 }, { ec, "99999", 5 }, { ec, "", 5 },
		{ ec, NULL, 5 }, { ec, "-3", 5 },
		{ lr, "x", 5 }, { lr, "4294967296", 5 }, { lr, "123456", 5 }, { lr, NULL, 5 },
		{ lr, ro_desc, 5 },
		/* the disk offers 2 queues: 2 without any queue-1/ key, 3 and 9
		 * more than offered */
		{ num, "0", 5 }, { num, "2", 5 }, { num, "3", 5 }, { num, "9", 5 },
		{ num, "99999999999999999999", 5 },
		{ num, "1x", 5 }, { num, NULL, 5 },
		{ qs, "0", 5 }, { qs, "3", 5 }, { qs, "512", 5 }, { qs, "-8", 5 }, { qs, "8 8", 5 },
		{ qs, big, 5 }, { qs, NULL, 5 },
		{ dr, "", 5 }, { dr, "1 2", 5 }, { dr, "banana", 5 }, { dr, "4294967296", 5 },
		{ dr, "77777", 5 }, { dr, lots, 5 }, { dr, NULL, 5 }, { dr, nongrant, 5 },
		{ ar, "  ", 5 }, { ar, "0x", 5 }, { ar, "77777", 5 },
		{ ur, ro_desc, 5 }, { ur, "1,2", 5 },
		{ qe, "banana", 5 }, { qe, "88888", 5 }, { qe, NULL, 5 },
		{ GV_XS_DMA_STRATEGY, "\x01\x02 not a strategy", 4 },
	};
	unsigned n = sizeof(cases) / sizeof(cases[0]), breaks = 0;
	static struct hf h;   /* outlives a failed check: the next case closes it */

	memset(big, '7', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	for (unsigned i = 0; i + 2 < sizeof(lots); i += 2)
		memcpy(lots + i, "1 ", 2);
	lots[sizeof(lots) - 2] = 0;
	CHECK_EQ(case_begin(&h), 0);
	for (unsigned c = 0; c < n; c++) {
		struct hf_key ov = { cases[c].key, cases[c].val };
		char err[512];
		int st;

		if (c) {
			broken_before = log_count("device broken") - breaks;
			CHECK_EQ(hf_open(&h, env.dir, hdom, QSZ), 0);
		}
		snprintf(ro_desc, sizeof(ro_desc), "%u", h.dref);   /* read-only grant */
		/* a ref the guest granted to the other guest, not to the backend */
		snprintf(nongrant, sizeof(nongrant), "%u", h.ro_ref[1] + 1000);
		CHECK_EQ(hf_write_keys(&h, &ov, 1), 0);
		st = hf_wait_connect(&h, 5000);
		CHECK_MSG(st == cases[c].want, "key %s = \"%.40s\": backend state %d, expected %d",
		          cases[c].key, cases[c].val ? cases[c].val : "(missing)", st,
		          cases[c].want);
		if (st == 5) {
			CHECK_MSG(hf_wait_broken(&h, 1000, err, sizeof(err)),
			          "key %s: no error line", cases[c].key);
			breaks++;
		} else {
			CHECK_EQ(still_serves(&h), 0);
		}
		if (st == 5)   /* broken: unmapped before it said Closing */
			CHECK_EQ(dom_info(hdom)->pages_mapped_by_others, 0);
		if (c + 1 < n) {
			CHECK_EQ(hf_close(&h), 0);
			CHECK_EQ(dom_info(hdom)->pages_mapped_by_others, 0);
		}
	}
	printf("garbage keys: %u cases, %u refused with an error line\n", n, breaks);
	broken_before = log_count("device broken") - breaks;
	return case_end(&h, breaks, false);
}

/* ---- a second queue with a key missing -------------------------------------------- */

/* The disk offers 2 queues. num-queues = 2 with queue-1's keys all there
 * (its rings in three zeroed data pages, its own unbound port) connects
 * and serves; with any one of queue-1's keys missing, the device is refused
 * with an error line and nothing stays mapped. */
static int t_queue_keys_missing(void)
{
	static const char *const q1[] = { "queue-1/size", "queue-1/desc-refs", "queue-1/avail-refs",
	                                  "queue-1/used-refs", "queue-1/event-channel" };
	static struct hf h;
	unsigned breaks = 0, ncase = 1 + sizeof(q1) / sizeof(q1[0]);

	CHECK_EQ(case_begin(&h), 0);
	for (unsigned c = 0; c < ncase; c++) {
		char size[16], dref[16], aref[16], uref[16], port[16], err[512];
		const char *vals[5] = { size, dref, aref, uref, port };
		struct hf_key ov[6] = { { GV_XS_FE_NUM_QUEUES, "2" } };
		evtchn_port_t p1;
		int st;

		if (c) {
			broken_before = log_count("device broken") - breaks;
			CHECK_EQ(hf_open(&h, env.dir, hdom, QSZ), 0);
		}
		CHECK_EQ(gv_evtchn_alloc_unbound(h.p, 0, &p1), 0);
		/* queue 1's rings: the last three data pages, zeroed */
		memset(h.data + (HF_NDATA - 3) * GV_PAGE_SIZE, 0, 3 * GV_PAGE_SIZE);
		snprintf(size, sizeof(size), "%u", h.qsz);
		snprintf(dref, sizeof(dref), "%u", h.data_ref[HF_NDATA - 3]);
		snprintf(aref, sizeof(aref), "%u", h.data_ref[HF_NDATA - 2]);
		snprintf(uref, sizeof(uref), "%u", h.data_ref[HF_NDATA - 1]);
		snprintf(port, sizeof(port), "%u", p1);
		for (unsigned k = 0; k < 5; k++)
			ov[1 + k] = (struct hf_key){ q1[k], c == k + 1 ? NULL : vals[k] };
		CHECK_EQ(hf_write_keys(&h, ov, 6), 0);
		st = hf_wait_connect(&h, 5000);
		CHECK_MSG(st == (c ? 5 : 4), "%s missing: backend state %d", c ? q1[c - 1] : "nothing",
		          st);
		if (st == 5) {
			CHECK_MSG(hf_wait_broken(&h, 1000, err, sizeof(err)), "%s: no error line",
			          q1[c - 1]);
			printf("%s missing: %s\n", q1[c - 1], err);
			breaks++;
			CHECK_EQ(dom_info(hdom)->pages_mapped_by_others, 0);
		} else {
			CHECK_EQ(still_serves(&h), 0);
		}
		/* queue-1's keys are not the next case's business unless it
		 * writes them again */
		for (unsigned k = 0; k < 5; k++)
			gv_xs_rm(h.xs, XBT_NULL, h.fe, q1[k]);
		if (c + 1 < ncase) {
			CHECK_EQ(hf_close(&h), 0);
			CHECK_EQ(dom_info(hdom)->pages_mapped_by_others, 0);
		}
	}
	broken_before = log_count("device broken") - breaks;
	return case_end(&h, breaks, false);
}

/* ---- a lying in-flight record at a backend restart ------------------------------ */

/* The hostile guest grants a record (its data page 7), the backend keeps it;
 * the backend is killed, the guest garbles the record, a new backend starts:
 * it must refuse that device (broken, "in-flight record"), release all of
 * its pages, and take the other guest's device over (its verify, running
 * across the kill, must pass). Each garbling in turn. */
static int inflight_case(unsigned how)
{
	static struct hf h;
	volatile struct gv_inflight *rec;
	char ref[16], err[512], cfg[160];
	uint32_t id;

	CHECK_EQ(case_begin(&h), 0);
	rec = (volatile struct gv_inflight *)(h.data + 7 * GV_PAGE_SIZE);
	memset(h.data + 7 * GV_PAGE_SIZE, 0xa5, GV_PAGE_SIZE);
	snprintf(ref, sizeof(ref), "%u", h.data_ref[7]);
	CHECK_EQ(hf_write_keys(&h, (const struct hf_key[]){ { "queue-0/inflight-ref", ref } }, 1),
	         0);
	CHECK_EQ(hf_wait_connect(&h, 5000), 4);
	CHECK_EQ(rec->num, QSZ);            /* the backend started the record afresh */
	CHECK_EQ(still_serves(&h), 0);
	CHECK_EQ(rec->used_idx, 1);
	CHECK_EQ(rec->last_avail, 1);
	CHECK_EQ(rec->head[0], 0);
	/* one request on the ring the backend will not see before it dies */
	hf_blk_in(&h, 0, 5, 1, 512);
	CHECK_EQ(kill(backend, SIGKILL), 0);
	CHECK_EQ(waitpid(backend, NULL, 0), backend);
	backend = -1;
	hf_submit(&h, 0);
	switch (how) {
	case 0:                             /* every head marked, indices wild */
		for (unsigned k = 0; k < QSZ; k++)
			rec->head[k] = 1;
		rec->last_avail = 0x8000;
		break;
	case 1:                             /* a head byte that is no flag */
		rec->head[3] = 0x80;
		break;
	case 2:                             /* says queue size 4096 */
		rec->num = 4096;
		break;
	case 3:                             /* plausible indices, one head too many */
		rec->head[5] = 1;
		rec->last_avail = 1;
		break;
	}
	snprintf(cfg, sizeof(cfg), "%s/backend.conf", env.dir);
	backend = start_backend(cfg);
	CHECK(backend > 0);
	CHECK_MSG(hf_wait_broken(&h, 5000, err, sizeof(err)), "the device was taken over (case %u)",
	          how);
	CHECK_MSG(strstr(err, "in-flight record"), "error \"%s\" lacks \"in-flight record\"", err);
	printf("in-flight case %u: error = %s\n", how, err);
	CHECK_EQ(hf_wait_used(&h, 200, &id), -1);  /* nothing served on a bad record */
	CHECK_EQ(dom_info(hdom)->pages_mapped_by_others, 0);
	return case_end(&h, 1, false);
}

static int t_inflight_wild(void)      { return inflight_case(0); }
static int t_inflight_bad_flag(void)  { return inflight_case(1); }
static int t_inflight_bad_num(void)   { return inflight_case(2); }
static int t_inflight_extra_head(void) { return inflight_case(3); }

/* From here on the backend serves each queue in a thread of its own: the
 * thread finds the ring broken, the loop breaks the device and unmaps
 * what the thread's handle mapped; the same cases again. */
static int t_queue_threads_on(void)
{
	char cfg[160];

	stop_daemon(&backend, "gv-backend");
	queue_threads = true;
	snprintf(cfg, sizeof(cfg), "%s/backend.conf", env.dir);
	backend = start_backend(cfg);
	CHECK(backend > 0);
	return 0;
}

static const struct gv_test tests[] = {
	TEST(t_avail_jump),
	TEST(t_head_out_of_range),
	TEST(t_next_out_of_range),
	TEST(t_loop_direct),
	TEST(t_loop_indirect),
	TEST(t_nested_indirect),
	TEST(t_indirect_and_next),
	TEST(t_indirect_len_odd),
	TEST(t_indirect_empty),
	TEST(t_indirect_huge),
	TEST(t_length_overflow),
	TEST(t_no_grant_bit),
	TEST(t_indirect_no_grant_bit),
	TEST(t_grant_bits_high),
	TEST(t_request_errors),
	TEST(t_revoke_mid_request),
	TEST(t_rewrite_after_notify),
	TEST(t_event_storm),
	TEST(t_state_flips),
	TEST(t_garbage_keys),
	TEST(t_queue_keys_missing),
	TEST(t_inflight_wild),
	TEST(t_inflight_bad_flag),
	TEST(t_inflight_bad_num),
	TEST(t_inflight_extra_head),
	TEST(t_queue_threads_on),
	{ "t_avail_jump_qt", t_avail_jump, NULL, NULL },
	{ "t_loop_indirect_qt", t_loop_indirect, NULL, NULL },
	{ "t_no_grant_bit_qt", t_no_grant_bit, NULL, NULL },
	{ "t_request_errors_qt", t_request_errors, NULL, NULL },
	{ "t_revoke_mid_request_qt", t_revoke_mid_request, NULL, NULL },
	{ "t_rewrite_after_notify_qt", t_rewrite_after_notify, NULL, NULL },
	{ "t_event_storm_qt", t_event_storm, NULL, NULL },
	{ "t_inflight_wild_qt", t_inflight_wild, NULL, NULL },
	{ 0 }
};

int main(int argc, char **argv)
{
	int rc;

	signal(SIGPIPE, SIG_IGN);
	if (world_up() < 0) {
		printf("FAIL setup: simulated Xen, backend or guests did not start\n");
		world_down();
		return 1;
	}
	rc = gv_test_main(argc, argv, tests);
	if (open_hf && open_hf->p)
		hf_close(open_hf);
	world_down();
	return rc;
}
