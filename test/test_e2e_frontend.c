/*
 * test/test_e2e_frontend.c: the frontend (gv-frontend and the library in
 * this process) against the real gv-simxen, gv-xl and gv-backend: data
 * integrity for each DMA strategy (random byte offsets, lengths 1 B..4 MiB,
 * page-crossing buffers), scattered grant refs, a full queue in flight,
 * two guests at once, bypass refused with its explanation (and broken at
 * the first descriptor under allow-bypass), virtio-rng, detach leaving
 * zero active grants, the backend's death seen through liveness, and the
 * library across a save/restore of its domain (gv-xl restore).
 */
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"
#include "sim_harness.h"
#include "../frontend/grant_virtio.h"
#include "platform.h"
#include "platform_sim.h"
#include "xs_keys.h"
#include "xs_util.h"

#define GV_STR_(x) #x
#define GV_STR(x) GV_STR_(x)

static struct sim_env env;
static pid_t backend = -1;
static char logfile[160];
static char out[16384];

/* where g1's image is made (a test sets it; NULL: the simulation's directory) */
static const char *g1_dir = NULL;
static char g1_path[160];

static int make_disk(const char *name, size_t size, char *path, size_t len)
{
	int fd;

	if (!strcmp(name, "g1.img") && g1_dir)
		snprintf(path, len, "%s/gvt-%d-%s", g1_dir, (int)getpid(), name);
	else
		snprintf(path, len, "%s/%s", env.dir, name);
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		return -1;
	close(fd);
	return 0;
}

/* gv-backend's own options beyond --config (a test sets them) */
static const char *backend_opt = NULL, *backend_val = NULL;

/* gv-backend with the given config text; waits for its --ready-fd byte. */
static pid_t start_backend(const char *config)
{
	char cfg[160];
	FILE *f;

	snprintf(cfg, sizeof(cfg), "%s/backend.conf", env.dir);
	f = fopen(cfg, "w");
	if (!f)
		return -1;
	fputs(config, f);
	fclose(f);
	return spawn_ready("gv-backend", (const char *[]){ "--config", cfg, backend_opt, backend_val,
	                                                   NULL }, logfile, 10);
}

/* A simulation with guest g1 (blk 0 + rng 1), g2 (blk 0), bp (blk 0, allow-bypass). */
static int domid_g1, domid_g2, domid_bp;
static const char *g1_opts = "";    /* options of g1's disk line (a test sets them) */

static int setup(const char *const *simargs)
{
	char d1[160], d2[160], config[800];

	CHECK_EQ(sim_start(&env, simargs), 0);
	snprintf(logfile, sizeof(logfile), "%s.backend.log", env.dir);
	CHECK_EQ(make_disk("g1.img", 32 << 20, d1, sizeof(d1)), 0);
	snprintf(g1_path, sizeof(g1_path), "%s", d1);
	CHECK_EQ(make_disk("g2.img", 16 << 20, d2, sizeof(d2)), 0);
	snprintf(config, sizeof(config), "disk g1:0 %s%s\ndisk g2:0 %s\ndisk bp:0 %s allow-bypass\n",
	         d1, g1_opts, d2, d2);
	backend = start_backend(config);
	CHECK(backend > 0);
	domid_g1 = sim_create_guest(&env, "g1", "24");
	domid_g2 = sim_create_guest(&env, "g2", "2");
	domid_bp = sim_create_guest(&env, "bp", "2");
	CHECK(domid_g1 > 0 && domid_g2 > 0 && domid_bp > 0);
	return 0;
}

static void teardown(void)
{
	stop_daemon(&backend, "gv-backend");
	if (g1_dir)
		unlink(g1_path);
	sim_stop(&env);
	print_log(logfile);
	unlink(logfile);
}

/* gv-frontend --domid D ARGS...; returns its exit status, output in out. */
static int frontend(int domid, const char *const *args)
{
	const char *argv[24];
	char dom[16];
	int n = 0;

	snprintf(dom, sizeof(dom), "%d", domid);
	argv[n++] = "--domid";
	argv[n++] = dom;
	while (*args && n < 23)
		argv[n++] = *args++;
	argv[n] = NULL;
	return run_prog("gv-frontend", argv, NULL, out, sizeof(out), 120);
}

/* many_segments: the platform scatters grant refs, so the random pass's
 * large requests have many segments and must go through indirect tables. */
static int verify_strategy(int domid, const char *dma, const char *size, bool many_segments)
{
	const char *args[] = { "--dma", dma, "verify", "--size", size, "--random", "--seed", "7",
	                       NULL };
	int rc = frontend(domid, args);
	const char *line, *ind;
	unsigned long long n = 0;

	CHECK_MSG(rc == 0, "gv-frontend --dma %s verify: exit %d:\n%s", dma, rc, out);
	CHECK(strstr(out, "verify: OK"));
	CHECK(strstr(out, " 0 mismatches"));
	/* detach ended every grant it made */
	CHECK_MSG(strstr(out, "after detach: grants_active=0 grants_leaked=0"), "%s", out);
	/* gv-backend offers INDIRECT_DESC: with scattered refs, requests of
	 * many segments (the random pass goes up to 4 MiB) take indirect tables */
	line = strstr(out, "\nafter: ");
	CHECK_MSG(line && (ind = strstr(line, " indirect=")) && sscanf(ind, " indirect=%llu", &n) == 1,
	          "%s", out);
	printf("%s: %llu requests through indirect tables\n", dma, n);
	CHECK(!many_segments || n > 0);
	return 0;
}

/* g1's 8 MiB verified through each DMA strategy (rc: the set-up's) */
static int verify_strategies(int rc)
{
	static const char *const dma[] = { "bounce", "grant", "pool" };

	for (unsigned k = 0; k < 3 && !rc; k++)
		rc = verify_strategy(domid_g1, dma[k], "8M", false);
	return rc;
}

static int t_verify_each_strategy(void)
{
	int rc = verify_strategies(setup(NULL));

	teardown();
	return rc;
}

/* An image on tmpfs: gv-backend maps it and serves requests by memcpy
 * (blk.c, map_copy); the same verified I/O through every strategy. */
static int t_verify_tmpfs_image(void)
{
	struct statfs sfs;
	int rc;

	CHECK_MSG(statfs("/dev/shm", &sfs) == 0 && sfs.f_type == TMPFS_MAGIC, "/dev/shm is not tmpfs");
	g1_dir = "/dev/shm";
	rc = setup(NULL);
	if (!rc) {
		char cmd[400];

		/* the backend said so when it published the disk */
		snprintf(cmd, sizeof(cmd), "grep -q 'gvt-%d-g1.img (read-write, in memory, mapped' %s",
		         (int)getpid(), logfile);
		rc = system(cmd) == 0 ? 0 : 1;
		if (rc)
			printf("the image on tmpfs was not mapped (%s)\n", logfile);
	}
	rc = verify_strategies(rc);
	teardown();
	g1_dir = NULL;
	return rc;
}

/* The grant strategy's data both ways through the backend's two paths:
 * requests of at most --grant-copy-max bytes (default 64 KiB) by grant
 * copy, larger ones by map and unmap; the backend's log counts the copied
 * ones per queue when the device disconnects. */
static int grant_copy_counts(void)
{
	unsigned long long total = 0, copied = 0, errors = 0;
	char line[512];
	FILE *f = fopen(logfile, "r");

	CHECK(f);
	while (fgets(line, sizeof(line), f)) {
		const char *q = strstr(line, ": queue ");
		unsigned long long n, c, e;
		unsigned idx;

		if (q && sscanf(q, ": queue %u: %llu requests (%llu by grant copy, %llu copy "
		                "errors)", &idx, &n, &c, &e) == 4) {
			total += n;
			copied += c;
			errors += e;
		}
	}
	fclose(f);
	printf("grant: %llu requests, %llu by grant copy, %llu copy errors\n", total, copied, errors);
	CHECK(total > 0);
	CHECK(copied > 0);          /* the small ones were copied */
	CHECK(copied < total);      /* the large ones (up to 4 MiB) were mapped */
	CHECK_EQ(errors, 0);
	return 0;
}

static int t_verify_grant_copy_and_map(void)
{
	int rc = setup(NULL);

	if (!rc)
		rc = verify_strategy(domid_g1, "grant", "8M", false);
	if (!rc)
		rc = grant_copy_counts();
	teardown();
	return rc;
}

static int t_verify_scattered_refs(void)
{
	static const char *const sim[] = { "--scatter-refs", NULL };
	int rc = setup(sim);

	if (!rc)
		rc = verify_strategy(domid_g1, "bounce", "4M", true);
	if (!rc)
		rc = verify_strategy(domid_g1, "grant", "4M", true);
	if (!rc)
		rc = verify_strategy(domid_g1, "pool", "4M", true);
	teardown();
	return rc;
}

static int t_two_guests_at_once(void)
{
	char log1[200], log2[200], dom1[16], dom2[16], buf[8192];
	const char *a1[] = { "--domid", dom1, "--dma", "grant", "verify", "--size", "8M",
	                     "--random", NULL };
	const char *a2[] = { "--domid", dom2, "verify", "--size", "8M", "--random", "--seed",
	                     "3", NULL };
	pid_t p1, p2;
	int rc = setup(NULL), s1, s2;
	FILE *f;
	size_t n;

	if (rc)
		goto out;
	snprintf(dom1, sizeof(dom1), "%d", domid_g1);
	snprintf(dom2, sizeof(dom2), "%d", domid_g2);
	snprintf(log1, sizeof(log1), "%s/fe1.log", env.dir);
	snprintf(log2, sizeof(log2), "%s/fe2.log", env.dir);
	p1 = spawn_prog("gv-frontend", a1, NULL, log1);
	p2 = spawn_prog("gv-frontend", a2, NULL, log2);
	s1 = wait_prog(p1, 120);
	s2 = wait_prog(p2, 120);
	for (int i = 0; i < 2; i++) {
		f = fopen(i ? log2 : log1, "r");
		n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
		buf[n] = 0;
		if (f)
			fclose(f);
		if ((i ? s2 : s1) != 0 || !strstr(buf, "verify: OK")) {
			printf("guest %d: exit %d:\n%s\n", i + 1, i ? s2 : s1, buf);
			rc = -1;
		}
	}
out:
	teardown();
	return rc;
}

static int t_bypass_refused(void)
{
	const char *args[] = { "--dma", "bypass", "read", "--offset", "0", "--length", "512", NULL };
	int rc = setup(NULL), st;

	if (rc)
		goto out;
	st = frontend(domid_g1, args);
	if (st != 3 || !strstr(out, "did not accept VIRTIO_F_ACCESS_PLATFORM") ||
	    !strstr(out, "why: the bypass driver skipped the DMA API")) {
		printf("bypass refused: exit %d:\n%s\n", st, out);
		rc = -1;
		goto out;
	}
	/* allowed by policy: negotiation goes on, the first descriptor breaks it */
	st = frontend(domid_bp, args);
	if (st != 3 || !strstr(out, "is not a grant reference") ||
	    !strstr(out, "after detach: grants_active=0")) {
		printf("bypass allowed: exit %d:\n%s\n", st, out);
		rc = -1;
		goto out;
	}
	/* the device serves a correct driver afterwards */
	rc = verify_strategy(domid_bp, "bounce", "1M", false);
out:
	teardown();
	return rc;
}

static int t_rng(void)
{
	const char *args[] = { "--devid", "1", "rng", "--bytes", "2000", NULL };
	int rc = setup(NULL), st;

	if (rc)
		goto out;
	st = frontend(domid_g1, args);
	if (st != 0 || !strstr(out, "000007c0:") || !strstr(out, "grants_active=0")) {
		printf("rng: exit %d:\n%s\n", st, out);
		rc = -1;
	}
out:
	teardown();
	return rc;
}

struct probe {
	int done;
	int errors;
};

static void probe_done(struct gv_blk_io *io)
{
	struct probe *p = io->priv;

	p->done++;
	if (io->result)
		p->errors++;
}

/* In this process: a full queue in flight, then detach with zero grants. */
static int lib_full_queue(const char *dma)
{
	enum { NIO = 64 };
	struct gv_attach_opts o;
	struct gv_device *d;
	struct gv_blk_io io[NIO];
	struct probe pr = { 0 };
	struct gv_stats after;
	struct gv_queue_state q;
	static uint8_t wbuf[NIO][4096 + 512], rbuf[NIO][4096 + 512];
	char err[512];
	int rc;

	gv_attach_opts_init(&o);
	o.domid = domid_g1;
	o.dma = dma;
	o.queue_size = 32;
	CHECK_MSG(gv_attach(&o, &d, err, sizeof(err)) == 0, "attach: %s", err);
	for (int i = 0; i < NIO; i++) {
		for (int k = 0; k < 4096 + 512; k++)
			wbuf[i][k] = (uint8_t)(i * 31 + k * 7 + 1);
		memset(&io[i], 0, sizeof(io[i]));
		io[i].op = GV_BLK_WRITE;
		io[i].sector = (uint64_t)i * 9;
		io[i].buf = wbuf[i] + 3;            /* not aligned, crosses a page */
		io[i].len = 4096 + 512 - 512;
		io[i].done = probe_done;
		io[i].priv = &pr;
		CHECK_EQ(gv_blk_submit(d, &io[i]), 0);
	}
	/* a 32-entry queue of 3-descriptor requests: 10 direct chains, and the
	 * last 2 descriptors each carry one more through an indirect table
	 * (gv-backend offers INDIRECT_DESC); full, the rest waits */
	gv_get_queue_state(d, &q);
	CHECK_EQ(q.free_descriptors, 0);
	CHECK_EQ(q.in_flight, 12);
	while (pr.done < NIO) {
		rc = gv_poll(d, 10000);
		CHECK_MSG(rc > 0, "gv_poll: %d (%s)", rc, gv_device_error(d));
	}
	CHECK_EQ(pr.errors, 0);
	pr.done = 0;
	for (int i = 0; i < NIO; i++) {
		io[i].op = GV_BLK_READ;
		io[i].buf = rbuf[i] + 511;
		CHECK_EQ(gv_blk_submit(d, &io[i]), 0);
	}
	while (pr.done < NIO)
		CHECK(gv_poll(d, 10000) > 0);
	CHECK_EQ(pr.errors, 0);
	for (int i = 0; i < NIO; i++)
		CHECK_MSG(!memcmp(rbuf[i] + 511, wbuf[i] + 3, 4096), "request %d differs", i);
	CHECK_EQ(gv_detach_stats(d, &after), 0);
	CHECK_EQ(after.platform.grants_active, 0);
	CHECK_EQ(after.platform.grants_leaked, 0);
	CHECK_EQ(after.requests, 2 * NIO);
	return 0;
}

static int t_lib_full_queue_zero_grants(void)
{
	int rc = setup(NULL);

	if (!rc)
		rc = lib_full_queue("bounce");
	if (!rc)
		rc = lib_full_queue("grant");
	teardown();
	return rc;
}

static long long blocks_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long long)st.st_blocks : -1;
}

/* The library's discard and write-zeroes against gv-backend: a discard
 * gives the image's blocks back (st_blocks, what du counts) and the range
 * reads as zeros; write-zeroes zeroes exactly its range; bad ranges are
 * refused at submit. */
static int t_lib_discard_write_zeroes(void)
{
	enum { MB = 1 << 20 };
	static uint8_t buf[4 * MB], back[4 * MB];
	struct gv_attach_opts o;
	struct gv_device_info info;
	struct gv_device *d;
	char err[512], img[200];
	long long full, after;
	int rc = setup(NULL);

	if (rc) {
		teardown();
		return rc;
	}
	snprintf(img, sizeof(img), "%s/g1.img", env.dir);
	gv_attach_opts_init(&o);
	o.domid = domid_g1;
	CHECK_MSG(gv_attach(&o, &d, err, sizeof(err)) == 0, "attach: %s", err);
	gv_get_info(d, &info);
	CHECK(info.driver_features & (1ULL << VIRTIO_BLK_F_DISCARD));
	CHECK(info.driver_features & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES));
	CHECK(info.max_discard_sectors >= 8 && info.max_discard_seg >= 1);
	CHECK(info.max_write_zeroes_sectors >= 8 && info.write_zeroes_may_unmap);
	for (size_t k = 0; k < sizeof(buf); k++)
		buf[k] = (uint8_t)(k * 13 + k / 4096 + 1);
	CHECK_EQ(gv_blk_write(d, 4 * MB, buf, sizeof(buf)), 0);
	CHECK_EQ(gv_blk_flush(d), 0);
	full = blocks_of(img);
	CHECK_MSG(full >= 8192, "%s: %lld blocks after writing 4 MiB", img, full);
	/* discard the 4 MiB: space given back, zeros read */
	CHECK_EQ(gv_blk_discard(d, 4 * MB, 4 * MB), 0);
	after = blocks_of(img);
	printf("allocated 512-byte blocks: %lld after writing 4 MiB, %lld after discarding it\n",
	       full, after);
	CHECK_MSG(after <= full - 8192, "%lld blocks after discard, %lld before", after, full);
	CHECK_EQ(gv_blk_read(d, 4 * MB, back, sizeof(back)), 0);
	for (size_t k = 0; k < sizeof(back); k++)
		CHECK_MSG(!back[k], "byte %zu after discard: %u", k, back[k]);
	/* write zeroes in the middle of data: only that range changes */
	CHECK_EQ(gv_blk_write(d, 12 * MB, buf, MB), 0);
	CHECK_EQ(gv_blk_write_zeroes(d, 12 * MB + 65536, 65536, false), 0);
	CHECK_EQ(gv_blk_write_zeroes(d, 12 * MB + 4 * 65536, 65536, true), 0);
	CHECK_EQ(gv_blk_read(d, 12 * MB, back, MB), 0);
	for (size_t k = 0; k < MB; k++) {
		bool zero = (k >= 65536 && k < 2 * 65536) || (k >= 4 * 65536 && k < 5 * 65536);

		CHECK_MSG(back[k] == (zero ? 0 : buf[k]), "byte %zu: %u", k, back[k]);
	}
	/* refused before anything is sent */
	CHECK_EQ(gv_blk_discard(d, 100, 512), -EINVAL);
	CHECK_EQ(gv_blk_discard(d, 32 * MB - 512, 1024), -ENOSPC);
	CHECK_EQ(gv_blk_write_zeroes(d, 32 * MB, 512, false), -ENOSPC);
	CHECK_EQ(gv_detach(d), 0);
	teardown();
	return 0;
}

/* The backend dies while we are attached: liveness tells us, I/O fails
 * with -EIO, detach still ends every grant (the platform unmapped them). */
static int t_lib_backend_death(void)
{
	struct gv_attach_opts o;
	struct gv_device *d = NULL;
	struct gv_stats after;
	char err[512], buf[4096];
	int rc = setup(NULL), drc;

	if (rc)
		goto out;
	gv_attach_opts_init(&o);
	o.domid = domid_g1;
	o.dma = "grant";
	o.restart_timeout_ms = -1;      /* no in-flight record: a death fails at once */
	rc = gv_attach(&o, &d, err, sizeof(err));
	if (rc) {
		printf("attach: %s\n", err);
		goto out;
	}
	rc = gv_blk_read(d, 0, buf, sizeof(buf));
	if (rc) {
		printf("read before: %d\n", rc);
		goto out_detach;
	}
	kill(backend, SIGKILL);
	wait_prog(backend, 10);
	backend = -1;
	/* the event arrives on the device channel; poll until it is seen */
	for (int i = 0; i < 50 && !gv_device_broken(d); i++)
		gv_poll(d, 200);
	if (!gv_device_broken(d) || !strstr(gv_device_error(d), "backend went away") ||
	    gv_blk_read(d, 0, buf, sizeof(buf)) != -EIO) {
		printf("backend death not seen: broken=%d error=%s\n", gv_device_broken(d),
		       gv_device_error(d));
		rc = -1;
	}
out_detach:
	/* Nobody answers Closing: detach gives up waiting for BE=Closed
	 * (-ETIMEDOUT) unless the toolstack removed the backend's directory
	 * first (0); anything else is a failure. */
	drc = gv_detach_stats(d, &after);
	if (drc != 0 && drc != -ETIMEDOUT) {
		printf("detach after the backend's death: %d (%s)\n", drc, strerror(-drc));
		rc = -1;
	}
	if (after.platform.grants_active != 0) {
		printf("grants still active after detach: %llu\n",
		       (unsigned long long)after.platform.grants_active);
		rc = -1;
	}
out:
	teardown();
	return rc;
}

/* The library across a backend restart (the default: an in-flight record
 * granted): a write made while no backend runs completes once a new one took
 * the device over, with no error, and reads back; the counters say so. */
static int t_lib_backend_restart(void)
{
	struct gv_attach_opts o;
	struct gv_device *d = NULL;
	struct gv_stats st;
	static char wbuf[65536], rbuf[65536];
	char err[512], config[160];
	int rc = setup(NULL), drc;

	if (rc)
		goto out;
	gv_attach_opts_init(&o);
	o.domid = domid_g1;
	o.dma = "grant";
	rc = gv_attach(&o, &d, err, sizeof(err));
	if (rc) {
		printf("attach: %s\n", err);
		goto out;
	}
	for (size_t i = 0; i < sizeof(wbuf); i++)
		wbuf[i] = (char)(i * 31 + 7);
	kill(backend, SIGKILL);
	wait_prog(backend, 10);
	backend = -1;
	/* the death is seen: the device waits for a new backend, unbroken */
	for (int i = 0; i < 50 && !gv_backend_away(d) && gv_poll(d, 100) >= 0; i++)
		;
	if (!gv_backend_away(d) || gv_device_broken(d)) {
		printf("the backend's death: away %d, broken %d (%s)\n", gv_backend_away(d),
		       gv_device_broken(d), gv_device_error(d));
		rc = -1;
		goto out_detach;
	}
	snprintf(config, sizeof(config), "%s/backend.conf", env.dir);
	backend = spawn_ready("gv-backend", (const char *[]){ "--config", config, NULL }, logfile,
	                      10);
	rc = gv_blk_write(d, 4096, wbuf, sizeof(wbuf));
	if (rc == 0)
		rc = gv_blk_read(d, 4096, rbuf, sizeof(rbuf));
	if (rc || memcmp(wbuf, rbuf, sizeof(rbuf))) {
		printf("I/O across the restart: %d (%s)\n", rc, rc ? strerror(-rc) : "data differs");
		rc = -1;
		goto out_detach;
	}
	gv_get_stats(d, &st);
	if (st.backend_restarts != 1 || st.request_errors) {
		printf("restarts %llu, errors %llu\n", (unsigned long long)st.backend_restarts,
		       (unsigned long long)st.request_errors);
		rc = -1;
	}
	printf("took over after %llu ms\n", (unsigned long long)st.restart_wait_ms_max);
out_detach:
	drc = gv_detach(d);
	if (drc != 0) {
		printf("detach: %d\n", drc);
		rc = -1;
	}
out:
	teardown();
	return rc;
}

/* Domain domid no longer exists, not even dying (nothing maps its pages). */
static bool domain_gone(int domid)
{
	struct gv_platform *p = sim_open_domain(0);
	struct sim_domain_info info[64];
	int n = p ? gv_sim_domain_list(p, info, 64) : -1;
	bool gone = n >= 0;

	for (int i = 0; i < n && i < 64; i++)
		if ((int)info[i].domid == domid)
			gone = false;
	if (p)
		gv_platform_close(p);
	return gone;
}

/* xl save + xl restore under the library's I/O (gv-xl restore: the guest
 * goes on in a new domain, its xenstore connection moved, the old domain
 * with its grant table, ports and devices destroyed): the requests that
 * were on the ring or waiting complete with no error once the library has
 * attached the device again with new grants and event channels, the data
 * reads back, the old domain is gone (gv-backend let go of its pages),
 * and detach leaves no grant. With no backend to answer in the new
 * domain, the re-attach gives up after the handshake timeout and every
 * request fails with -EIO: no hang. */
static int save_restore(const char *dma, bool backend_up)
{
	enum { NIO = 48 };
	struct gv_attach_opts o;
	struct gv_device *d;
	struct gv_blk_io io[NIO];
	struct probe pr = { 0 };
	struct gv_stats st;
	struct gv_queue_state q;
	static uint8_t wbuf[NIO][8192], rbuf[NIO][8192];
	char err[512], cfg[160];
	int old = domid_g1, now, rc;
	long long t0;

	gv_attach_opts_init(&o);
	o.domid = domid_g1;
	o.dma = dma;
	o.queue_size = 32;
	o.timeout_ms = 3000;
	CHECK_MSG(gv_attach(&o, &d, err, sizeof(err)) == 0, "attach: %s", err);
	for (int i = 0; i < NIO; i++) {
		for (int k = 0; k < 8192; k++)
			wbuf[i][k] = (uint8_t)(i * 13 + k * 5 + (dma[0] == 'g'));
		memset(&io[i], 0, sizeof(io[i]));
		io[i].op = GV_BLK_WRITE;
		io[i].sector = (uint64_t)i * 17;
		io[i].buf = wbuf[i];
		io[i].len = 8192;
		io[i].done = probe_done;
		io[i].priv = &pr;
		CHECK_EQ(gv_blk_submit(d, &io[i]), 0);
	}
	gv_get_queue_state(d, &q);
	CHECK(q.in_flight > 0);
	if (!backend_up)
		stop_daemon(&backend, "gv-backend");
	/* the guest is "frozen" (no gv_poll) while gv-xl saves and restores it */
	snprintf(cfg, sizeof(cfg), "%s/g1.cfg", env.dir);
	CHECK_MSG(run_prog("gv-xl", (const char *[]){ "restore", cfg, NULL }, NULL, out, sizeof(out),
	                   30) == 0, "gv-xl restore: %s", out);
	/* its last line (with no backend, a line for each device it could
	 * not close comes first) */
	{
		size_t n = strlen(out);
		const char *last;

		while (n && out[n - 1] == '\n')
			out[--n] = 0;
		last = strrchr(out, '\n');
		now = atoi(last ? last + 1 : out);
	}
	CHECK_MSG(now > 0 && now != old, "gv-xl restore printed %s", out);
	domid_g1 = now;
	t0 = gv_now_ms();
	while (pr.done < NIO && gv_now_ms() - t0 < 20000) {
		rc = gv_poll(d, 1000);
		if (rc < 0 && backend_up)
			break;
	}
	gv_get_stats(d, &st);
	if (!backend_up) {
		/* bounded: the handshake timeout, not the 30 s request timeout */
		CHECK_MSG(pr.done == NIO && pr.errors == NIO, "done %d of %d, %d errors", pr.done, NIO,
		          pr.errors);
		CHECK(gv_device_broken(d));
		CHECK_MSG(strstr(gv_device_error(d), "could not be attached again"), "%s",
		          gv_device_error(d));
		printf("no backend in domain %d: %d requests failed with -EIO after %lld ms (%s)\n",
		       now, NIO, gv_now_ms() - t0, gv_device_error(d));
		CHECK(gv_now_ms() - t0 < 15000);
		gv_detach_stats(d, &st);
		CHECK_EQ(st.platform.grants_active, 0);
		return 0;
	}
	CHECK_MSG(pr.done == NIO && pr.errors == 0, "done %d of %d, %d errors (%s)", pr.done, NIO,
	          pr.errors, gv_device_error(d));
	CHECK_EQ(st.domain_restores, 1);
	pr.done = 0;
	for (int i = 0; i < NIO; i++) {
		io[i].op = GV_BLK_READ;
		io[i].buf = rbuf[i];
		CHECK_EQ(gv_blk_submit(d, &io[i]), 0);
	}
	while (pr.done < NIO)
		CHECK(gv_poll(d, 10000) > 0);
	CHECK_EQ(pr.errors, 0);
	for (int i = 0; i < NIO; i++)
		CHECK_MSG(!memcmp(rbuf[i], wbuf[i], 8192), "request %d differs", i);
	printf("%s: restored in domain %d (was %d), re-attached in %llu ms, %d writes verified\n",
	       dma, now, old, (unsigned long long)st.restore_ms_max, NIO);
	CHECK_EQ(gv_detach_stats(d, &st), 0);
	CHECK_EQ(st.platform.grants_active, 0);
	CHECK_EQ(st.request_errors, 0);
	/* gv-backend unmapped every page of the old domain: it is gone */
	for (int i = 0; i < 100 && !domain_gone(old); i++)
		usleep(20000);      /* polling an oracle, not synchronisation */
	CHECK_MSG(domain_gone(old), "domain %d still listed (its pages still mapped)", old);
	return 0;
}

static int t_lib_save_restore(void)
{
	int rc = setup(NULL);

	if (!rc)
		rc = save_restore("grant", true);
	if (!rc)
		rc = save_restore("bounce", true);
	if (!rc)
		rc = save_restore("bounce", false);
	teardown();
	return rc;
}

/* ---- save/restore with several queues ---- */

#define SR_QUEUES 2

struct sr_thread {
	struct gv_device *d;
	unsigned q;
	pthread_t tid, self;
	unsigned n, done, errors, wrong_thread, polls_empty;
	int rc;
};

static void sr_done(struct gv_blk_io *io)
{
	struct sr_thread *t = io->priv;

	if (!pthread_equal(pthread_self(), t->self))
		t->wrong_thread++;
	if (io->result)
		t->errors++;
	t->done++;
}

/* Polls its own queue only until its requests finished (bounded: 20 s). */
static void *sr_thread_main(void *arg)
{
	struct sr_thread *t = arg;
	long long t0 = gv_now_ms();

	t->self = pthread_self();
	while (t->done < t->n && gv_now_ms() - t0 < 20000) {
		int rc = gv_poll_queue(t->d, t->q, 1000);

		if (rc < 0) {
			t->rc = rc;
			break;
		}
		if (rc == 0)
			t->polls_empty++;   /* a timeout, or the re-attach returned it */
	}
	if (!t->rc && t->done < t->n)
		t->rc = -ETIMEDOUT;
	return NULL;
}

/* Save/restore of a device with SR_QUEUES queues: 48 writes spread over the
 * queues (on both rings and waiting on both) when gv-xl restores the
 * domain; then one thread per queue polls only its own queue while the
 * library finds the domain restored, re-attaches (in whichever thread got
 * the watch; the other waits) and rebuilds every queue. Every write must
 * complete without an error in the thread of the queue it was submitted
 * on (requeued to its own queue), both new rings must carry requests, the
 * data reads back, and detach leaves no grant. */
static int save_restore_mq(const char *dma)
{
	enum { NIO = 48 };
	struct sr_thread th[SR_QUEUES];
	struct gv_attach_opts o;
	struct gv_device_info info;
	struct gv_queue_stats qs;
	struct gv_device *d;
	struct gv_blk_io io[NIO];
	struct gv_stats st;
	struct probe pr = { 0 };
	static uint8_t wbuf[NIO][8192], rbuf[NIO][8192];
	char err[512], cfg[160];
	int old = domid_g1, now;

	gv_attach_opts_init(&o);
	o.domid = domid_g1;
	o.dma = dma;
	o.queue_size = 32;
	o.timeout_ms = 3000;
	CHECK_MSG(gv_attach_queues(&o, SR_QUEUES, &d, err, sizeof(err)) == 0, "attach: %s", err);
	gv_get_info(d, &info);
	CHECK_EQ(info.num_queues, SR_QUEUES);
	memset(th, 0, sizeof(th));
	for (unsigned q = 0; q < SR_QUEUES; q++) {
		th[q].d = d;
		th[q].q = q;
	}
	/* no thread polls yet: submitted from here, before the threads exist */
	for (int i = 0; i < NIO; i++) {
		struct sr_thread *t = &th[i % SR_QUEUES];

		for (int k = 0; k < 8192; k++)
			wbuf[i][k] = (uint8_t)(i * 7 + k * 3 + (dma[0] == 'g'));
		memset(&io[i], 0, sizeof(io[i]));
		io[i].op = GV_BLK_WRITE;
		io[i].sector = (uint64_t)i * 17;
		io[i].buf = wbuf[i];
		io[i].len = 8192;
		io[i].done = sr_done;
		io[i].priv = t;
		t->n++;
		CHECK_EQ(gv_blk_submit_queue(d, t->q, &io[i]), 0);
	}
	for (unsigned q = 0; q < SR_QUEUES; q++) {
		CHECK_EQ(gv_get_queue_stats(d, q, &qs), 0);
		CHECK_MSG(qs.in_flight > 0, "queue %u: nothing in flight", q);
	}
	snprintf(cfg, sizeof(cfg), "%s/g1.cfg", env.dir);
	CHECK_MSG(run_prog("gv-xl", (const char *[]){ "restore", cfg, NULL }, NULL, out, sizeof(out),
	                   30) == 0, "gv-xl restore: %s", out);
	now = atoi(out);
	CHECK_MSG(now > 0 && now != old, "gv-xl restore printed %s", out);
	domid_g1 = now;
	for (unsigned q = 0; q < SR_QUEUES; q++)
		CHECK_EQ(pthread_create(&th[q].tid, NULL, sr_thread_main, &th[q]), 0);
	for (unsigned q = 0; q < SR_QUEUES; q++)
		CHECK_EQ(pthread_join(th[q].tid, NULL), 0);
	for (unsigned q = 0; q < SR_QUEUES; q++) {
		struct sr_thread *t = &th[q];

		CHECK_MSG(t->rc == 0 && t->done == t->n && t->errors == 0,
		          "queue %u: rc %d, %u of %u done, %u errors (%s)", q, t->rc, t->done, t->n,
		          t->errors, gv_device_error(d));
		CHECK_EQ(t->wrong_thread, 0);
		/* the new ring of this queue carried its requests again */
		CHECK_EQ(gv_get_queue_stats(d, q, &qs), 0);
		CHECK_MSG(qs.added > 0, "queue %u: nothing added to its new ring", q);
		printf("%s queue %u: %u writes completed in its own thread, %llu added on the new ring "
		       "(port %u), %u empty polls\n", dma, q, t->n, (unsigned long long)qs.added,
		       qs.event_channel, t->polls_empty);
	}
	gv_get_stats(d, &st);
	CHECK_EQ(st.domain_restores, 1);
	CHECK_EQ(st.request_errors, 0);
	/* read back, from this thread alone now (the queue threads are gone) */
	for (int i = 0; i < NIO; i++) {
		io[i].op = GV_BLK_READ;
		io[i].buf = rbuf[i];
		io[i].done = probe_done;
		io[i].priv = &pr;
		CHECK_EQ(gv_blk_submit_queue(d, (unsigned)i % SR_QUEUES, &io[i]), 0);
	}
	while (pr.done < NIO)
		CHECK(gv_poll(d, 10000) > 0);
	CHECK_EQ(pr.errors, 0);
	for (int i = 0; i < NIO; i++)
		CHECK_MSG(!memcmp(rbuf[i], wbuf[i], 8192), "request %d differs", i);
	printf("%s, %d queues: restored in domain %d (was %d), re-attached in %llu ms, %d writes "
	       "verified\n", dma, SR_QUEUES, now, old, (unsigned long long)st.restore_ms_max, NIO);
	CHECK_EQ(gv_detach_stats(d, &st), 0);
	CHECK_EQ(st.platform.grants_active, 0);
	CHECK_EQ(st.request_errors, 0);
	for (int i = 0; i < 100 && !domain_gone(old); i++)
		usleep(20000);      /* polling an oracle, not synchronisation */
	CHECK_MSG(domain_gone(old), "domain %d still listed (its pages still mapped)", old);
	return 0;
}

static int t_lib_save_restore_mq(void)
{
	int rc;

	g1_opts = " queues=" GV_STR(SR_QUEUES);
	rc = setup(NULL);
	g1_opts = "";
	if (!rc)
		rc = save_restore_mq("grant");
	if (!rc)
		rc = save_restore_mq("bounce");
	teardown();
	return rc;
}

/* The sequential read benchmark that make xen-bench runs in the guest
 * (gv-bench seqread, once gv-frontend bench): it writes the region, reads it
 * back timed, prints the line xen-test/bench.sh takes, and detaches clean. */
static int t_bench_seqread(void)
{
	const char *args[] = { "seqread", "--platform", "sim", "--dma", "pool", "--app-pool",
	                       "--size", "2M", "--io-size", "64K", "--depth", "2", NULL };
	char envdom[32];
	const char *envs[] = { envdom, NULL };
	double mibs = 0;
	const char *line;
	int rc = setup(NULL), st;

	if (rc)
		goto out;
	snprintf(envdom, sizeof(envdom), "GV_DOMID=%d", domid_g1);
	st = run_prog("gv-bench", args, envs, out, sizeof(out), 120);
	line = strstr(out, "bench: read 2.0 MiB in 65536-byte requests at ");
	if (st != 0 || !line || sscanf(line, "bench: read 2.0 MiB in 65536-byte requests at %lf",
	                               &mibs) != 1 || !(mibs > 0) || !strstr(line, "(dma pool)")) {
		printf("gv-bench seqread: exit %d, %.1f MiB/s:\n%s\n", st, mibs, out);
		rc = -1;
	}
	/* a size that is not a size is a usage error, before any attach */
	args[7] = "2Q";
	if (!rc && (st = run_prog("gv-bench", args, envs, out, sizeof(out), 30)) != 2) {
		printf("gv-bench seqread --size 2Q: exit %d, not 2:\n%s\n", st, out);
		rc = -1;
	}
out:
	teardown();
	return rc;
}

/* SIGTERM in the middle of I/O: gv-frontend stops, detaches, ends every
 * grant, leaves FE=Closed, and exits non-zero. */
static int t_sigterm_detaches(void)
{
	char dom[16], log[200], fe[128], buf[16384];
	const char *args[] = { "--domid", dom, "verify", "--size", "32M", "--io-size", "512",
	                       "--depth", "1", NULL };
	struct xs_handle *xs = NULL;
	int rc = setup(NULL), st;
	pid_t pid;
	FILE *f;
	size_t n;

	if (rc)
		goto out;
	snprintf(dom, sizeof(dom), "%d", domid_g1);
	snprintf(log, sizeof(log), "%s/fe.log", env.dir);
	snprintf(fe, sizeof(fe), GV_XS_FRONTEND_DIR_FMT, (unsigned)domid_g1, 0u);
	sim_use_domain_xenstore(&env, 0);
	xs = xs_open(0);
	unsetenv("XENSTORED_PATH");     /* only this handle speaks as dom0 */
	pid = spawn_prog("gv-frontend", args, NULL, log);
	if (!xs || pid < 0 || !xs_wait_key(xs, fe, GV_XS_FE_STATE, "4", 10000)) {
		printf("gv-frontend did not connect\n");
		rc = -1;
		if (pid > 0)
			wait_prog(pid, 0);
		goto out;
	}
	kill(pid, SIGTERM);
	st = wait_prog(pid, 20);
	f = fopen(log, "r");
	n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	buf[n] = 0;
	if (f)
		fclose(f);
	if (st != 1 || !strstr(buf, "detaching") ||
	    !strstr(buf, "after detach: grants_active=0 grants_leaked=0") ||
	    !xs_wait_key(xs, fe, GV_XS_FE_STATE, "6", 1000)) {
		printf("SIGTERM: exit %d:\n%s\n", st, buf);
		rc = -1;
	}
out:
	if (xs)
		xs_close(xs);
	teardown();
	return rc;
}

/* ---- multi-queue ---- */

#define MQ_QUEUES 3
#define MQ_DEPTH 8
#define MQ_ROUNDS 12    /* rounds of MQ_DEPTH writes then reads, per thread */

struct mq_thread {
	struct gv_device *d;
	unsigned q;
	pthread_t tid;
	unsigned done, errors, wrong_thread, mismatches;
	uint64_t requests;          /* virtio requests this thread put on its queue */
	int rc;                     /* first error of a call */
};

static void mq_done(struct gv_blk_io *io)
{
	struct mq_thread *t = io->priv;

	if (!pthread_equal(pthread_self(), t->tid))
		t->wrong_thread++;
	if (io->result)
		t->errors++;
	t->done++;
}

/* Waits, on the thread's own queue only, until n requests finished. */
static int mq_wait(struct mq_thread *t, unsigned n)
{
	while (t->done < n) {
		int rc = gv_poll_queue(t->d, t->q, 10000);

		if (rc <= 0)
			return rc < 0 ? rc : -ETIMEDOUT;
	}
	return 0;
}

/* Thread q: MQ_ROUNDS times, MQ_DEPTH 4 KiB writes of its own pattern into
 * its own 1 MiB region at once on queue q, then reads them back at once
 * and compares; callbacks must run in this thread. */
static void *mq_thread_main(void *arg)
{
	struct mq_thread *t = arg;
	static uint8_t wbuf[MQ_QUEUES][MQ_DEPTH][4096], rbuf[MQ_QUEUES][MQ_DEPTH][4096];
	struct gv_blk_io io[MQ_DEPTH];
	unsigned target = 0;
	int rc;

	for (unsigned r = 0; r < MQ_ROUNDS; r++) {
		for (unsigned op = 0; op < 2; op++) {
			for (unsigned i = 0; i < MQ_DEPTH; i++) {
				uint64_t sector = (uint64_t)t->q * 2048 + (r * MQ_DEPTH + i) % 256 * 8;

				if (!op)
					for (unsigned k = 0; k < 4096; k++)
						wbuf[t->q][i][k] = (uint8_t)(t->q * 101 + r * 7 + i * 3 + k);
				memset(&io[i], 0, sizeof(io[i]));
				io[i].op = op ? GV_BLK_READ : GV_BLK_WRITE;
				io[i].sector = sector;
				io[i].buf = op ? rbuf[t->q][i] : wbuf[t->q][i];
				io[i].len = 4096;
				io[i].done = mq_done;
				io[i].priv = t;
				rc = gv_blk_submit_queue(t->d, t->q, &io[i]);
				if (rc < 0) {
					t->rc = rc;
					return NULL;
				}
				t->requests++;
			}
			target += MQ_DEPTH;
			rc = mq_wait(t, target);
			if (rc < 0) {
				t->rc = rc;
				return NULL;
			}
		}
		for (unsigned i = 0; i < MQ_DEPTH; i++)
			if (memcmp(rbuf[t->q][i], wbuf[t->q][i], 4096))
				t->mismatches++;
	}
	return NULL;
}

/* The backend's --status line "queue N: R requests, ...": R, or -1. */
static long long backend_queue_requests(const char *status, unsigned q)
{
	char pat[32];
	const char *p;

	snprintf(pat, sizeof(pat), "    queue %u: ", q);
	p = strstr(status, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

/* The library with several queues against gv-backend offering MQ_QUEUES:
 * each queue its own keys and event channel in xenstore, one thread per
 * queue doing verified I/O at the same time, every callback in its own
 * queue's thread, each queue's ring and channel used (the backend counts
 * exactly each queue's requests), and detach ends every grant of every
 * queue. Asking for more queues than offered gives what is offered; an
 * entropy device and gv_attach get one. */
/* threads: gv-backend --queue-threads on (a thread and handle per queue) */
static int lib_multi_queue(bool threads)
{
	struct mq_thread t[MQ_QUEUES];
	struct gv_attach_opts o;
	struct gv_device_info info;
	struct gv_queue_stats qs[MQ_QUEUES], bad;
	struct gv_stats after;
	struct gv_device *d;
	struct xs_handle *xs = NULL;
	char err[512], fe[128], key[64], val[64];
	static char status[16384];
	int rc;

	g1_opts = " queues=" GV_STR(MQ_QUEUES);
	if (threads) {
		backend_opt = "--queue-threads";
		backend_val = "on";
	}
	rc = setup(NULL);
	g1_opts = "";
	backend_opt = backend_val = NULL;
	if (rc) {
		teardown();
		return rc;
	}
	gv_attach_opts_init(&o);
	o.domid = domid_g1;
	o.queue_size = 32;
	/* more than offered: what is offered */
	CHECK_MSG(gv_attach_queues(&o, 8, &d, err, sizeof(err)) == 0, "attach: %s", err);
	gv_get_info(d, &info);
	CHECK_EQ(info.num_queues, MQ_QUEUES);
	CHECK(info.device_features & (1ULL << VIRTIO_BLK_F_MQ));
	CHECK(info.driver_features & (1ULL << VIRTIO_BLK_F_MQ));
	CHECK_EQ(gv_get_queue_stats(d, MQ_QUEUES, &bad), -EINVAL);
	CHECK_EQ(gv_poll_queue(d, MQ_QUEUES, 0), -EINVAL);
	/* the keys, as the schema names them, one event channel per queue */
	snprintf(fe, sizeof(fe), GV_XS_FRONTEND_DIR_FMT, (unsigned)domid_g1, 0u);
	sim_use_domain_xenstore(&env, 0);
	xs = xs_open(0);
	unsetenv("XENSTORED_PATH");
	CHECK(xs);
	CHECK_EQ(gv_xs_read_str(xs, XBT_NULL, fe, GV_XS_FE_NUM_QUEUES, val, sizeof(val)), 0);
	CHECK_MSG(!strcmp(val, GV_STR(MQ_QUEUES)), "num-queues %s", val);
	for (unsigned q = 0; q < MQ_QUEUES; q++) {
		CHECK_EQ(gv_get_queue_stats(d, q, &qs[q]), 0);
		snprintf(key, sizeof(key), GV_XS_QUEUE_EVTCHN_FMT, q);
		CHECK_EQ(gv_xs_read_str(xs, XBT_NULL, fe, key, val, sizeof(val)), 0);
		CHECK_MSG(strtoul(val, NULL, 10) == qs[q].event_channel, "%s = %s, port %u", key,
		          val, qs[q].event_channel);
		for (unsigned p = 0; p < q; p++)
			CHECK(qs[p].event_channel != qs[q].event_channel);
		snprintf(key, sizeof(key), GV_XS_QUEUE_USED_FMT, q);
		CHECK_EQ(gv_xs_read_str(xs, XBT_NULL, fe, key, val, sizeof(val)), 0);
		CHECK_EQ(qs[q].added, 0);
	}
	snprintf(key, sizeof(key), GV_XS_QUEUE_SIZE_FMT, (unsigned)MQ_QUEUES);
	CHECK_EQ(gv_xs_read_str(xs, XBT_NULL, fe, key, val, sizeof(val)), -ENOENT);
	xs_close(xs);
	xs = NULL;

	/* one thread per queue, all at once */
	memset(t, 0, sizeof(t));
	for (unsigned q = 0; q < MQ_QUEUES; q++) {
		t[q].d = d;
		t[q].q = q;
		CHECK_EQ(pthread_create(&t[q].tid, NULL, mq_thread_main, &t[q]), 0);
	}
	for (unsigned q = 0; q < MQ_QUEUES; q++)
		CHECK_EQ(pthread_join(t[q].tid, NULL), 0);
	for (unsigned q = 0; q < MQ_QUEUES; q++) {
		CHECK_MSG(t[q].rc == 0, "queue %u: %d (%s)", q, t[q].rc, gv_device_error(d));
		CHECK_EQ(t[q].done, 2u * MQ_ROUNDS * MQ_DEPTH);
		CHECK_EQ(t[q].errors, 0);
		CHECK_EQ(t[q].mismatches, 0);
		CHECK_EQ(t[q].wrong_thread, 0);
		CHECK_EQ(gv_get_queue_stats(d, q, &qs[q]), 0);
		printf("queue %u: port %u, %llu added, %llu kicks, %llu interrupts\n", q,
		       qs[q].event_channel, (unsigned long long)qs[q].added,
		       (unsigned long long)qs[q].kicks, (unsigned long long)qs[q].interrupts);
		/* its own ring and channel were used, both ways */
		CHECK_EQ(qs[q].added, t[q].requests);
		CHECK(qs[q].kicks >= 1);
		CHECK(qs[q].interrupts >= 1);
		CHECK_EQ(qs[q].in_flight, 0);
	}
	/* the backend served each queue's requests on that queue */
	rc = run_prog("gv-backend", (const char *[]){ "--status", NULL }, NULL, status,
	              sizeof(status), 30);
	CHECK_MSG(rc == 0, "gv-backend --status: exit %d:\n%s", rc, status);
	for (unsigned q = 0; q < MQ_QUEUES; q++)
		CHECK_MSG(backend_queue_requests(status, q) == (long long)t[q].requests,
		          "queue %u: the frontend sent %llu, the backend says:\n%s", q,
		          (unsigned long long)t[q].requests, status);
	CHECK_MSG(!strstr(status, ", a thread per queue") == !threads, "%s", status);
	/* the synchronous calls (queue 0) still work */
	memset(val, 0x5a, sizeof(val));
	CHECK_EQ(gv_blk_write(d, 3 * 1048576 + 3, val, sizeof(val)), 0);
	memset(val, 0, sizeof(val));
	CHECK_EQ(gv_blk_read(d, 3 * 1048576 + 3, val, sizeof(val)), 0);
	for (unsigned k = 0; k < sizeof(val); k++)
		CHECK_EQ((unsigned char)val[k], 0x5a);
	CHECK_EQ(gv_detach_stats(d, &after), 0);
	CHECK_EQ(after.platform.grants_active, 0);
	CHECK_EQ(after.platform.grants_leaked, 0);
	/* every page the backend mapped (a queue thread's handle too) unmapped:
	 * the daemon's counters are its loop's and its queue threads' */
	rc = run_prog("gv-backend", (const char *[]){ "--status", NULL }, NULL, status,
	              sizeof(status), 30);
	CHECK_MSG(rc == 0 && strstr(status, "grants: 0 pages mapped now"),
	          "after detach: exit %d:\n%s", rc, status);
	CHECK_MSG(!strstr(status, "queue 0:"), "%s", status);
	{
		unsigned long long mapped = 0, unmapped = 0;
		const char *g = strstr(status, "mapped now, ");

		CHECK_MSG(g && sscanf(g, "mapped now, %llu mapped and %llu unmapped", &mapped,
		                      &unmapped) == 2, "%s", status);
		/* the queue threads' handles are closed, their counts kept */
		CHECK_MSG(mapped == unmapped && mapped > 0,
		          "%llu mapped, %llu unmapped:\n%s", mapped, unmapped, status);
	}

	/* two asked, two given; gv_attach: one, without VIRTIO_BLK_F_MQ */
	CHECK_MSG(gv_attach_queues(&o, 2, &d, err, sizeof(err)) == 0, "attach: %s", err);
	gv_get_info(d, &info);
	CHECK_EQ(info.num_queues, 2);
	CHECK_EQ(gv_detach(d), 0);
	CHECK_MSG(gv_attach(&o, &d, err, sizeof(err)) == 0, "attach: %s", err);
	gv_get_info(d, &info);
	CHECK_EQ(info.num_queues, 1);
	CHECK(!(info.driver_features & (1ULL << VIRTIO_BLK_F_MQ)));
	CHECK_EQ(gv_blk_submit_queue(d, 1, &(struct gv_blk_io){ .op = GV_BLK_FLUSH }), -EINVAL);
	CHECK_EQ(gv_detach(d), 0);
	/* gv-frontend --queues: verify's sequential pass in a thread per queue */
	rc = frontend(domid_g1, (const char *[]){ "--queues", "3", "--dma", "grant", "verify",
	                                          "--size", "6M", "--io-size", "16K",
	                                          "--depth", "12", NULL });
	CHECK_MSG(rc == 0 && strstr(out, "3 queues (a thread each), 0 mismatching") &&
	          strstr(out, "verify: OK") && strstr(out, "grants_active=0"),
	          "gv-frontend --queues 3 verify: exit %d:\n%s", rc, out);
	rc = frontend(domid_g1, (const char *[]){ "--queues", "9", "info", NULL });
	CHECK_MSG(rc == 2, "--queues 9: exit %d:\n%s", rc, out);
	/* the entropy device has one queue whatever is asked */
	o.devid = 1;
	CHECK_MSG(gv_attach_queues(&o, 4, &d, err, sizeof(err)) == 0, "attach rng: %s", err);
	gv_get_info(d, &info);
	CHECK_EQ(info.num_queues, 1);
	CHECK(gv_rng_read(d, val, 16) > 0);
	CHECK_EQ(gv_detach(d), 0);
	teardown();
	return 0;
}

static int t_lib_multi_queue(void)
{
	return lib_multi_queue(false);
}

static int t_lib_multi_queue_threads(void)
{
	return lib_multi_queue(true);
}

static const struct gv_test tests[] = {
	TEST(t_verify_each_strategy),
	TEST(t_verify_tmpfs_image),
	TEST(t_verify_scattered_refs),
	TEST(t_two_guests_at_once),
	TEST(t_bypass_refused),
	TEST(t_rng),
	TEST(t_verify_grant_copy_and_map), TEST(t_lib_full_queue_zero_grants),
	TEST(t_lib_discard_write_zeroes),
	TEST(t_lib_backend_death),
	TEST(t_lib_backend_restart),
	TEST(t_lib_save_restore),
	TEST(t_lib_save_restore_mq),
	TEST(t_bench_seqread),
	TEST(t_sigterm_detaches),
	TEST(t_lib_multi_queue),
	TEST(t_lib_multi_queue_threads),
	{ 0 }
};

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	return gv_test_main(argc, argv, tests);
}
