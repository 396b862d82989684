/*
 * test/test_hostile_backend.c: the real frontend library, in this process
 * as the guest, attacked by a backend that lies (hostile_backend.c, a
 * forked child speaking as dom0).
 *
 * Each test is one misbehaviour with its expected outcome from
 * docs/transport.md and virtqueue.h: a bad used element (id out of range,
 * id not in flight, length past the buffer, index jump) breaks the queue
 * with one log line naming it, the request and every later one fail with
 * -EIO, and detach ends every grant (the backend unmapped them). A data
 * grant the backend keeps mapped after completing is leaked on purpose:
 * counted exactly, the device broken, that page never handed out again (a
 * later session sees neither its ref nor the canary the backend writes
 * into it). A backend that never completes, or that also ignores Closing,
 * cannot hold detach past its timeout; what it still maps is counted as
 * leaked, the rest ended. A backend that flips to Closed mid-I/O fails the
 * request, and the device attaches again afterwards.
 *
 * Run it under `make asan` (build-asan/test/) too: a use of a page after
 * its grant was given up, or of a freed request, shows there.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "check.h"
#include "sim_harness.h"
#include "hostile_backend.h"
#include "../frontend/grant_virtio.h"

#define TIMEOUT_MS 1000

static struct sim_env env;
static char errlog[160];
static int saved_stderr = -1;
static unsigned nguests;

/* ---- per case: a fresh guest, the fake backend, the library's log ----------- */

static int create_guest(void)
{
	char name[32];

	snprintf(name, sizeof(name), "hb%u", ++nguests);
	return sim_create_guest(&env, name, "2");
}

/* The library logs to stderr: keep this case's lines in a file to count. */
static void log_capture(void)
{
	int fd = open(errlog, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	fflush(stderr);
	if (fd < 0)
		return;
	if (saved_stderr < 0)
		saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
}

static void log_release(void)
{
	char line[512];
	FILE *f;

	fflush(stderr);
	if (saved_stderr >= 0) {
		dup2(saved_stderr, 2);
		close(saved_stderr);
		saved_stderr = -1;
	}
	if (getenv("GV_TEST_VERBOSE") && (f = fopen(errlog, "r"))) {
		while (fgets(line, sizeof(line), f))
			printf("  fe| %s", line);
		fclose(f);
	}
}

static unsigned log_count(const char *what)
{
	char line[1024];
	unsigned n = 0;
	FILE *f;

	fflush(stderr);
	f = fopen(errlog, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, what) != NULL;
	fclose(f);
	return n;
}

static struct hb_child hb = { .pid = -1, .rfd = -1 };
static int io_timeout_ms;      /* 0: the library's default (30 s) */
static int restart_timeout_ms; /* 0: the library's default (30 s) */
static struct gv_device *dev;
static int dom;

static int attach(const char *dma, struct gv_device **out)
{
	struct gv_attach_opts o;
	char err[512];
	int rc;

	gv_attach_opts_init(&o);
	o.platform = GV_PLATFORM_SIM;
	o.sim_dir = env.dir;
	o.domid = dom;
	o.dma = dma;
	o.pool_pages = 64;
	o.timeout_ms = TIMEOUT_MS;
	o.io_timeout_ms = io_timeout_ms;
	o.restart_timeout_ms = restart_timeout_ms;
	rc = gv_attach(&o, out, err, sizeof(err));
	if (rc < 0)
		printf("attach (%s): %s\n", dma, err);
	return rc;
}

static int case_begin(enum hb_mode mode, const char *dma)
{
	/* what a failed check of the previous case left behind */
	if (dev)
		gv_detach(dev);
	dev = NULL;
	hb_stop(&hb);
	log_release();

	dom = create_guest();
	CHECK(dom > 0);
	log_capture();
	CHECK_EQ(hb_start(&hb, env.dir, (domid_t)dom, mode), 0);
	CHECK_EQ(attach(dma, &dev), 0);
	CHECK(hb_expect(&hb, "connected", NULL, 0, 5000));
	return 0;
}

/* Detach (timed), then the common outcome: every grant ended or counted. */
static int case_detach(struct gv_stats *after, double *ms, int *rc)
{
	double t0 = gv_now_ms();

	*rc = gv_detach_stats(dev, after);
	dev = NULL;
	*ms = gv_now_ms() - t0;
	CHECK_EQ(after->platform.grants_active, 0);
	return 0;
}

static int case_end(void)
{
	CHECK_EQ(hb_stop(&hb), 0);
	log_release();
	return 0;
}

/* A broken device refuses new work at once, with -EIO. */
static int refuses_io(void)
{
	static uint8_t buf[4096];
	char id[21];

	CHECK(gv_device_broken(dev));
	CHECK_EQ(gv_blk_read(dev, 0, buf, sizeof(buf)), -EIO);
	CHECK_EQ(gv_blk_write(dev, 512, buf, 512), -EIO);
	CHECK_EQ(gv_blk_get_id(dev, id), -EIO);
	CHECK_EQ(gv_poll(dev, 0), -EIO);
	return 0;
}

static int check_pattern(const uint8_t *buf, uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		CHECK_MSG(buf[i] == hb_disk_byte(off + i), "byte %zu of a read at %llu: 0x%02x, "
		          "disk has 0x%02x", i, (unsigned long long)off, buf[i],
		          hb_disk_byte(off + i));
	return 0;
}

/* ---- a bad used element: the queue breaks ---------------------------------- */

static int lie_case(enum hb_mode mode, const char *dma, const char *expect)
{
	static uint8_t buf[512];
	struct gv_stats after;
	char line[128];
	double ms;
	int rc;

	CHECK_EQ(case_begin(mode, dma), 0);
	memset(buf, 0xee, sizeof(buf));
	CHECK_EQ(gv_blk_read(dev, 0, buf, sizeof(buf)), -EIO);
	CHECK(hb_expect(&hb, "lied", NULL, 0, 1000));
	CHECK_MSG(log_count(expect) == 1, "the log has %u lines with \"%s\"", log_count(expect),
	          expect);
	CHECK_EQ(log_count("broken"), 1);   /* once, not once per request */
	CHECK_EQ(refuses_io(), 0);
	CHECK(strstr(gv_device_error(dev), "broke virtqueue 0"));
	CHECK_EQ(case_detach(&after, &ms, &rc), 0);
	/* the backend unmapped each request before its (lying) completion */
	CHECK_EQ(rc, 0);
	CHECK_EQ(after.platform.grants_leaked, 0);
	CHECK_EQ(after.dma_pages_leaked, 0);
	CHECK(hb_expect(&hb, "closed", line, sizeof(line), 2000));
	return case_end();
}

static int t_used_id_out_of_range(void)
{
	return lie_case(HB_USED_ID_OOR, "grant", "used id 11 out of range (queue size 8)");
}

static int t_used_id_out_of_range_bounce(void)
{
	return lie_case(HB_USED_ID_OOR, "bounce", "used id 11 out of range (queue size 8)");
}

static int t_used_len_too_big(void)
{
	return lie_case(HB_USED_LEN_BIG, "grant",
	                "used length 4609 larger than the 513 device-writable bytes of id 0");
}

static int t_used_len_too_big_pool(void)
{
	return lie_case(HB_USED_LEN_BIG, "pool",
	                "used length 4609 larger than the 513 device-writable bytes of id 0");
}

static int t_used_idx_jump(void)
{
	return lie_case(HB_USED_IDX_JUMP, "grant", "used index moved by 9 with 1 requests in flight");
}

static void count_done(struct gv_blk_io *io)
{
	(*(int *)io->priv)++;
}

/* Two requests in flight; the first completed twice. The first is served,
 * the duplicate breaks the queue, the second fails with -EIO. */
static int t_used_id_not_in_flight(void)
{
	static uint8_t a[512], b[512];
	struct gv_blk_io ioa = { .op = GV_BLK_READ, .sector = 0, .buf = a, .len = sizeof(a) };
	struct gv_blk_io iob = { .op = GV_BLK_READ, .sector = 8, .buf = b, .len = sizeof(b) };
	int na = 0, nb = 0, rc;
	struct gv_stats after;
	double ms, end;

	CHECK_EQ(case_begin(HB_USED_ID_DUP, "grant"), 0);
	ioa.done = iob.done = count_done;
	ioa.priv = &na;
	iob.priv = &nb;
	CHECK_EQ(gv_blk_submit(dev, &ioa), 0);
	CHECK_EQ(gv_blk_submit(dev, &iob), 0);
	end = gv_now_ms() + 5000;
	while ((!na || !nb) && gv_now_ms() < end)
		gv_poll(dev, 100);
	CHECK_EQ(na, 1);
	CHECK_EQ(nb, 1);
	CHECK_EQ(ioa.result, 0);
	CHECK_EQ(check_pattern(a, 0, sizeof(a)), 0);
	CHECK_EQ(iob.result, -EIO);
	CHECK_EQ(log_count("used id 0 is not in flight"), 1);
	CHECK_EQ(refuses_io(), 0);
	CHECK_EQ(case_detach(&after, &ms, &rc), 0);
	CHECK_EQ(rc, 0);
	CHECK_EQ(after.platform.grants_leaked, 0);
	/* the callbacks ran exactly once, none again at detach */
	CHECK_EQ(na, 1);
	CHECK_EQ(nb, 1);
	CHECK(hb_expect(&hb, "closed", NULL, 0, 2000));
	return case_end();
}

/* ---- a data grant kept mapped after the completion --------------------------- */

static int t_grant_kept_mapped(void)
{
	struct gv_device_info info;
	static uint8_t buf[64 << 10], wbuf[8192];
	unsigned leak_ref, leak_pages;
	struct gv_stats after;
	char line[128];
	double ms;
	int rc;

	CHECK_EQ(case_begin(HB_KEEP_GRANT, "grant"), 0);
	/* one page: one grant, kept by the backend */
	CHECK_EQ(gv_blk_read(dev, 4096, buf, 4096), -EIO);
	CHECK(hb_expect(&hb, "leak", line, sizeof(line), 1000));
	CHECK_EQ(sscanf(line, "leak %u %u", &leak_ref, &leak_pages), 2);
	CHECK_EQ(leak_pages, 1);
	CHECK_EQ(log_count("grant still in use by the backend"), 1);
	CHECK_EQ(refuses_io(), 0);
	CHECK(strstr(gv_device_error(dev), "a data grant could not be ended"));
	CHECK_EQ(case_detach(&after, &ms, &rc), 0);
	CHECK_EQ(after.platform.grants_leaked, leak_pages);
	CHECK_EQ(after.dma_pages_leaked, leak_pages);
	/* the backend writes its canary into the kept page from now on */
	CHECK(hb_expect(&hb, "closed reused=0", NULL, 0, 2000));

	/* A second attach to the same backend: plenty of fresh grants, none of
	 * them the leaked page (the backend checks refs and zeroed contents),
	 * and no canary in anything the guest reads. */
	CHECK(hb_expect(&hb, "ready", NULL, 0, 2000));
	CHECK_EQ(attach("grant", &dev), 0);
	CHECK(hb_expect(&hb, "connected 2", NULL, 0, 2000));
	/* this backend offers EVENT_IDX: the library takes it */
	gv_get_info(dev, &info);
	CHECK(info.driver_features & (1ULL << VIRTIO_RING_F_EVENT_IDX));
	for (unsigned i = 0; i < 64; i++) {
		uint64_t off = (uint64_t)(i * 7919 % 200) * 4096 + (i % 3) * 512;
		size_t len = 512 + (i * 4096 % sizeof(buf));

		memset(buf, 0, sizeof(buf));
		CHECK_EQ(gv_blk_read(dev, off, buf, len), 0);
		CHECK_EQ(check_pattern(buf, off, len), 0);
	}
	for (unsigned i = 0; i < sizeof(wbuf); i++)
		wbuf[i] = hb_disk_byte(220 * 4096 + i);  /* what the disk holds: reads stay checkable */
	CHECK_EQ(gv_blk_write(dev, 220 * 4096, wbuf, sizeof(wbuf)), 0);
	CHECK_EQ(gv_blk_read(dev, 220 * 4096, buf, sizeof(wbuf)), 0);
	CHECK_EQ(check_pattern(buf, 220 * 4096, sizeof(wbuf)), 0);
	CHECK(!gv_device_broken(dev));
	CHECK_EQ(case_detach(&after, &ms, &rc), 0);
	CHECK_EQ(rc, 0);
	CHECK_EQ(after.platform.grants_leaked, 0);
	CHECK(hb_expect(&hb, "closed reused=0", NULL, 0, 2000));
	return case_end();
}

/* ---- a backend that never completes ------------------------------------------- */

static int t_never_completes(void)
{
	static uint8_t buf[8192];
	struct gv_blk_io io = { .op = GV_BLK_READ, .sector = 0, .buf = buf, .len = sizeof(buf) };
	struct gv_stats after;
	int n = 0, rc;
	double ms;

	CHECK_EQ(case_begin(HB_NEVER_COMPLETE, "grant"), 0);
	io.done = count_done;
	io.priv = &n;
	CHECK_EQ(gv_blk_submit(dev, &io), 0);
	CHECK(hb_expect(&hb, "took", NULL, 0, 2000));
	CHECK_EQ(gv_poll(dev, 50), 0);
	CHECK_EQ(n, 0);
	CHECK_EQ(case_detach(&after, &ms, &rc), 0);
	printf("never completes: detach took %.0f ms (timeout %d ms)\n", ms, TIMEOUT_MS);
	CHECK_MSG(ms < 2 * TIMEOUT_MS + 500, "detach took %.0f ms", ms);
	CHECK_EQ(n, 1);
	CHECK_EQ(io.result, -EIO);
	/* it closed politely, unmapping: every grant ends */
	CHECK_EQ(rc, 0);
	CHECK_EQ(after.platform.grants_leaked, 0);
	CHECK_EQ(log_count("still in flight after"), 1);
	CHECK(hb_expect(&hb, "closed", NULL, 0, 2000));
	return case_end();
}

/* ... and also ignores Closing, keeping every page mapped: detach gives up
 * at its timeouts, ends what can be ended, counts exactly what it cannot. */
static int t_stuck_backend(void)
{
	static uint8_t buf[8192];
	struct gv_blk_io io = { .op = GV_BLK_READ, .sector = 0, .buf = buf, .len = sizeof(buf) };
	struct gv_stats after;
	unsigned pages;
	char line[128];
	int n = 0, rc;
	double ms;

	CHECK_EQ(case_begin(HB_STUCK, "grant"), 0);
	io.done = count_done;
	io.priv = &n;
	CHECK_EQ(gv_blk_submit(dev, &io), 0);
	CHECK(hb_expect(&hb, "took", NULL, 0, 2000));
	CHECK_EQ(case_detach(&after, &ms, &rc), 0);
	printf("stuck backend: detach took %.0f ms (timeout %d ms), rc %d\n", ms, TIMEOUT_MS, rc);
	/* one timeout for the request, one for BE=Closed */
	CHECK_MSG(ms < 2 * TIMEOUT_MS + 1000, "detach took %.0f ms", ms);
	CHECK(rc < 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(io.result, -EIO);
	CHECK(hb_expect(&hb, "ignored closing", line, sizeof(line), 2000));
	CHECK_EQ(sscanf(line, "ignored closing pages=%u", &pages), 1);
	/* rings (desc, avail, used), liveness, the header page, two data pages */
	CHECK_EQ(pages, 7);
	CHECK_EQ(after.platform.grants_leaked, pages);
	return case_end();
}

/* ... and, with a request timeout, a synchronous read on it fails with
 * -EIO at that bound instead of waiting for ever (issue 13, defect 1: every
 * wait in the library is bounded). */
static int t_never_completes_io_timeout(void)
{
	static uint8_t buf[4096];
	struct gv_stats after;
	double t0, ms;
	int rc;

	io_timeout_ms = 400;
	rc = case_begin(HB_NEVER_COMPLETE, "bounce");
	io_timeout_ms = 0;
	CHECK_EQ(rc, 0);
	/* nothing in flight: gv_poll(-1) returns after that bound, with 0 */
	t0 = gv_now_ms();
	CHECK_EQ(gv_poll(dev, -1), 0);
	ms = gv_now_ms() - t0;
	CHECK_MSG(ms >= 398 && ms < 400 + 2000, "an idle gv_poll(-1) returned after %.1f ms", ms);
	CHECK(!gv_device_broken(dev));
	t0 = gv_now_ms();
	CHECK_EQ(gv_blk_read(dev, 0, buf, sizeof(buf)), -EIO);
	ms = gv_now_ms() - t0;
	printf("never completes, io timeout 400 ms: the read failed after %.0f ms\n", ms);
	/* the library counts whole milliseconds: a truncation early at most */
	CHECK_MSG(ms >= 398 && ms < 400 + 2000, "the read failed after %.1f ms", ms);
	CHECK_MSG(strstr(gv_device_error(dev), "completed none of 1 requests in 400 ms"),
	          "error: %s", gv_device_error(dev));
	CHECK_EQ(refuses_io(), 0);
	CHECK_EQ(case_detach(&after, &ms, &rc), 0);
	CHECK_EQ(rc, 0);
	CHECK_EQ(after.platform.grants_leaked, 0);
	CHECK(hb_expect(&hb, "closed", NULL, 0, 2000));
	return case_end();
}

/* ---- a backend that dies before the guest ever saw it alive ------------------- */

/* Issue 13, defect 1: the backend wrote Connected (so it was alive: it sets
 * its liveness byte first), then died before the guest read the byte as 1.
 * The guest must take the cleared byte as the death it is and fail the
 * request with -EIO at once, not wait for ever (nor for the 30 s request
 * timeout, left at its default here). */
static int t_backend_dies_unseen(void)
{
	static uint8_t buf[4096];
	struct gv_stats after;
	double t0, ms;
	int rc;

	CHECK_EQ(case_begin(HB_DIE_UNSEEN, "grant"), 0);
	t0 = gv_now_ms();
	CHECK_EQ(gv_blk_read(dev, 0, buf, sizeof(buf)), -EIO);
	ms = gv_now_ms() - t0;
	printf("backend died unseen: the read failed after %.0f ms\n", ms);
	CHECK_MSG(ms < 5000, "the read failed only after %.0f ms", ms);
	CHECK_MSG(strstr(gv_device_error(dev), "backend went away"), "error: %s",
	          gv_device_error(dev));
	CHECK_EQ(refuses_io(), 0);
	/* nobody answers Closing: detach waits its bounded time, then every
	 * grant ends (the platform unmapped the dead backend's mappings) */
	CHECK_EQ(case_detach(&after, &ms, &rc), 0);
	CHECK_MSG(ms < 2 * TIMEOUT_MS + 1000, "detach took %.0f ms", ms);
	CHECK_EQ(after.platform.grants_leaked, 0);
	return case_end();
}

/* ---- a backend that keeps "restarting" ----------------------------------------- */

/* It offers takeover, takes the request, completes nothing, and clears and
 * sets its liveness byte every 50 ms. Each return must not restart the
 * request's clock: the time present counts against the request timeout,
 * the time away against the restart timeout, so the read fails with -EIO
 * within both bounds instead of waiting for ever. */
static int t_backend_flaps(void)
{
	static uint8_t buf[4096];
	struct gv_stats st, after;
	double t0, ms;
	int rc;

	io_timeout_ms = 600;
	restart_timeout_ms = 600;
	rc = case_begin(HB_FLAP, "grant");
	io_timeout_ms = restart_timeout_ms = 0;
	CHECK_EQ(rc, 0);
	t0 = gv_now_ms();
	CHECK_EQ(gv_blk_read(dev, 0, buf, sizeof(buf)), -EIO);
	ms = gv_now_ms() - t0;
	gv_get_stats(dev, &st);
	printf("flapping backend: the read failed after %.0f ms, %llu returns seen (%s)\n", ms,
	       (unsigned long long)st.backend_restarts, gv_device_error(dev));
	CHECK_MSG(st.backend_restarts >= 2, "only %llu returns seen",
	          (unsigned long long)st.backend_restarts);
	CHECK_MSG(ms < 600 + 600 + 2000, "the read failed only after %.0f ms", ms);
	CHECK_EQ(refuses_io(), 0);
	CHECK_EQ(case_detach(&after, &ms, &rc), 0);
	/* the read's one data page: the backend held it mapped when the device
	 * broke, so its grant could not be ended and leaks, counted */
	CHECK_EQ(after.platform.grants_leaked, 1);
	return case_end();
}

/* ---- a backend that flips to Closed mid-I/O ----------------------------------- */

static int closed_mid_io(const char *dma)
{
	static uint8_t buf[4096];
	struct gv_stats after;
	double ms;
	int rc;

	CHECK_EQ(case_begin(HB_CLOSE_MID_IO, dma), 0);
	CHECK_EQ(gv_blk_read(dev, 0, buf, sizeof(buf)), -EIO);
	CHECK(hb_expect(&hb, "flipped", NULL, 0, 1000));
	CHECK_EQ(refuses_io(), 0);
	CHECK_MSG(strstr(gv_device_error(dev), "the backend stopped the device"), "error: %s",
	          gv_device_error(dev));
	CHECK_EQ(case_detach(&after, &ms, &rc), 0);
	CHECK_EQ(rc, 0);
	CHECK_EQ(after.platform.grants_leaked, 0);
	/* the device is usable again once the backend publishes */
	CHECK(hb_expect(&hb, "ready", NULL, 0, 2000));
	CHECK_EQ(attach(dma, &dev), 0);
	CHECK_EQ(gv_blk_read(dev, 4096, buf, sizeof(buf)), 0);
	CHECK_EQ(check_pattern(buf, 4096, sizeof(buf)), 0);
	CHECK_EQ(case_detach(&after, &ms, &rc), 0);
	CHECK_EQ(rc, 0);
	CHECK_EQ(after.platform.grants_leaked, 0);
	return case_end();
}

static int t_closed_mid_io(void)        { return closed_mid_io("grant"); }
static int t_closed_mid_io_bounce(void) { return closed_mid_io("bounce"); }

static const struct gv_test tests[] = {
	TEST(t_used_id_out_of_range),
	TEST(t_used_id_out_of_range_bounce),
	TEST(t_used_id_not_in_flight),
	TEST(t_used_len_too_big),
	TEST(t_used_len_too_big_pool),
	TEST(t_used_idx_jump),
	TEST(t_grant_kept_mapped),
	TEST(t_never_completes),
	TEST(t_stuck_backend),
	TEST(t_never_completes_io_timeout),
	TEST(t_backend_dies_unseen),
	TEST(t_backend_flaps),
	TEST(t_closed_mid_io),
	TEST(t_closed_mid_io_bounce),
	{ 0 }
};

int main(int argc, char **argv)
{
	int rc;

	signal(SIGPIPE, SIG_IGN);
	if (sim_start(&env, NULL) < 0) {
		printf("FAIL setup: the simulated Xen did not start\n");
		return 1;
	}
	snprintf(errlog, sizeof(errlog), "%s.frontend.log", env.dir);
	/* stderr (the library's log, and a sanitizer's report) goes to errlog
	 * during each case: say where, line-buffered so a crash keeps it */
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("the library's stderr during each case: %s (kept if this program dies)\n", errlog);
	rc = gv_test_main(argc, argv, tests);
	if (dev)
		gv_detach(dev);
	hb_stop(&hb);
	log_release();
	sim_stop(&env);
	unlink(errlog);
	return rc;
}
