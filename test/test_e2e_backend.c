/*
 * test/test_e2e_backend.c: the real gv-backend daemon against gv-simxen and
 * gv-xl, with a small driver written here (the guest side of
 * docs/transport.md over the platform API) so that the test controls every
 * key and every descriptor: refusal of a driver without
 * VIRTIO_F_ACCESS_PLATFORM while another guest is served, the descriptor
 * explanation under allow-bypass, teardown on detach / guest process killed
 * / backend killed and restarted / node removed (each ending with nothing
 * mapped by the backend), and resident memory over 10,000 requests.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>
#include "check.h"
#include "sim_harness.h"
#include "platform.h"
#include "platform_sim.h"
#include "dma_addr.h"
#include "xs_keys.h"
#include "xs_util.h"

static struct sim_env env;
static pid_t backend = -1;
static pid_t guest_child = -1;     /* a guest process of a test, killed at teardown */
static char disk[160], cfgfile[160], logfile[160];
static struct gv_platform *dom0;
/* queues the next drv_attach sets up (1, or 2 with VIRTIO_BLK_F_MQ) */
static unsigned attach_nq = 1;
static struct xs_handle *xs0;

static pid_t start_backend(const char *extra)
{
	const char *args[] = { "--config", cfgfile, extra, NULL };

	return spawn_ready("gv-backend", args, logfile, 10);
}

static int setup(const char *extra)
{
	FILE *f;
	int fd;

	CHECK_EQ(sim_start(&env, NULL), 0);
	snprintf(disk, sizeof(disk), "%s/disk.img", env.dir);
	snprintf(cfgfile, sizeof(cfgfile), "%s/backend.conf", env.dir);
	snprintf(logfile, sizeof(logfile), "%s.backend.log", env.dir);
	fd = open(disk, O_CREAT | O_RDWR, 0644);
	CHECK(fd >= 0);
	CHECK_EQ(ftruncate(fd, 1 << 20), 0);
	close(fd);
	f = fopen(cfgfile, "w");
	CHECK(f);
	fprintf(f, "# disks of the e2e test\n"
	        "disk blkguest:0 %s\n"
	        "disk bypassguest:0 %s allow-bypass   # shows the descriptor failure\n", disk, disk);
	fclose(f);
	CHECK((dom0 = sim_open_domain(0)));
	xs0 = gv_xs_open(dom0);
	CHECK(xs0);
	backend = start_backend(extra);
	CHECK(backend > 0);
	return 0;
}

static void close_open_drvs(void);

static void teardown(void)
{
	attach_nq = 1;
	if (guest_child > 0) {
		kill(guest_child, SIGKILL);
		waitpid(guest_child, NULL, 0);
		guest_child = -1;
	}
	close_open_drvs();
	stop_daemon(&backend, "gv-backend");
	if (xs0)
		xs_close(xs0);
	xs0 = NULL;
	if (dom0)
		gv_platform_close(dom0);
	dom0 = NULL;
	sim_stop(&env);
	print_log(logfile);   /* the backend's side, for a failing run */
	unlink(logfile);
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

/* ---- the test driver: the guest side, as bare as the contract allows -------- */
#define QSZ 8
#define NDATA 4
struct drv {
	struct gv_platform *p;
	struct xs_handle *xs;
	domid_t dom;
	char fe[96], be[96];
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	volatile uint8_t *live;
	uint8_t *data;
	grant_ref_t dref, aref, uref, lref, data_ref[NDATA];
	evtchn_port_t dport, qport;
	uint16_t last_used;
	struct {                        /* queue 1, when attached with 2 queues */
		struct vring_desc *desc;
		struct vring_avail *avail;
		struct vring_used *used;
		grant_ref_t dref, aref, uref;
		evtchn_port_t qport;
		uint16_t last_used;
	} q1;
};



/* drivers still open, closed by teardown whatever a test did */
static struct drv *open_drvs[8];

static void drv_close(struct drv *d);

/* Attaches to device 0 of domain dom; accept_platform: whether the driver
 * accepts VIRTIO_F_ACCESS_PLATFORM. Returns the BE state reached (4, or 5
 * when refused), -1 on a setup failure. */
static int drv_attach(struct drv *d, domid_t dom, bool accept_platform)
{
	struct gv_platform_opts o = { GV_PLATFORM_SIM, env.dir, dom };
	struct gv_notify ln;
	char err[256], st[8];
	uint64_t feat;
	void *a;

	memset(d, 0, sizeof(*d));
	d->dom = dom;
	for (unsigned i = 0; i < 8; i++)
		if (!open_drvs[i]) {
			open_drvs[i] = d;
			break;
		}
	if (gv_platform_open(&o, &d->p, err, sizeof(err)) < 0) {
		printf("guest platform: %s\n", err);
		return -1;
	}
	d->xs = gv_xs_open(d->p);
	if (!d->xs)
		return -1;
	snprintf(d->fe, sizeof(d->fe), GV_XS_FRONTEND_DIR_FMT, (unsigned)dom, 0u);
	snprintf(d->be, sizeof(d->be), GV_XS_BACKEND_DIR_FMT, 0u, (unsigned)dom, 0u);
	if (!xs_wait_key(d->xs, d->be, GV_XS_STATE, "2", 5000) ||
	    gv_xs_read_u64(d->xs, XBT_NULL, d->be, GV_XS_FEATURES, UINT64_MAX, &feat) < 0)
		return -1;
	if (attach_nq > 1 && !(feat & (1ULL << VIRTIO_BLK_F_MQ)))
		return -1;
	feat &= (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_ACCESS_PLATFORM) |
	        (attach_nq > 1 ? 1ULL << VIRTIO_BLK_F_MQ : 0);
	if (!accept_platform)
		feat &= ~(1ULL << VIRTIO_F_ACCESS_PLATFORM);
	if (gv_evtchn_alloc_unbound(d->p, 0, &d->dport) < 0 ||
	    gv_evtchn_alloc_unbound(d->p, 0, &d->qport) < 0)
		return -1;
	ln.offset = 0;
	ln.port = d->dport;
	if (gv_grant_alloc(d->p, 0, 1, GV_GRANT_READONLY, NULL, &d->dref, &a) < 0)
		return -1;
	d->desc = a;
	if (gv_grant_alloc(d->p, 0, 1, GV_GRANT_READONLY, NULL, &d->aref, &a) < 0)
		return -1;
	d->avail = a;
	if (gv_grant_alloc(d->p, 0, 1, 0, NULL, &d->uref, &a) < 0)
		return -1;
	d->used = a;
	if (gv_grant_alloc(d->p, 0, 1, 0, &ln, &d->lref, &a) < 0)
		return -1;
	d->live = a;
	d->live[0] = 1;
	if (gv_grant_alloc(d->p, 0, NDATA, 0, NULL, d->data_ref, &a) < 0)
		return -1;
	d->data = a;
	if (attach_nq > 1) {
		if (gv_evtchn_alloc_unbound(d->p, 0, &d->q1.qport) < 0 ||
		    gv_grant_alloc(d->p, 0, 1, GV_GRANT_READONLY, NULL, &d->q1.dref, &a) < 0)
			return -1;
		d->q1.desc = a;
		if (gv_grant_alloc(d->p, 0, 1, GV_GRANT_READONLY, NULL, &d->q1.aref, &a) < 0)
			return -1;
		d->q1.avail = a;
		if (gv_grant_alloc(d->p, 0, 1, 0, NULL, &d->q1.uref, &a) < 0)
			return -1;
		d->q1.used = a;
		if (gv_xs_printf(d->xs, XBT_NULL, d->fe, "queue-1/size", "%u", QSZ) ||
		    gv_xs_printf(d->xs, XBT_NULL, d->fe, "queue-1/desc-refs", "%u", d->q1.dref) ||
		    gv_xs_printf(d->xs, XBT_NULL, d->fe, "queue-1/avail-refs", "%u", d->q1.aref) ||
		    gv_xs_printf(d->xs, XBT_NULL, d->fe, "queue-1/used-refs", "%u", d->q1.uref) ||
		    gv_xs_printf(d->xs, XBT_NULL, d->fe, "queue-1/event-channel", "%u",
		                 d->q1.qport))
			return -1;
	}
	if (gv_xs_printf(d->xs, XBT_NULL, d->fe, GV_XS_DRIVER_FEATURES, "0x%llx",
	                 (unsigned long long)feat) ||
	    gv_xs_write_str(d->xs, XBT_NULL, d->fe, GV_XS_DMA_STRATEGY, "grant") ||
	    gv_xs_write_str(d->xs, XBT_NULL, d->fe, GV_XS_PERSISTENT_POOL, "0") ||
	    gv_xs_printf(d->xs, XBT_NULL, d->fe, GV_XS_EVENT_CHANNEL, "%u", d->dport) ||
	    gv_xs_printf(d->xs, XBT_NULL, d->fe, GV_XS_LIVENESS_REF, "%u", d->lref) ||
	    gv_xs_printf(d->xs, XBT_NULL, d->fe, GV_XS_FE_NUM_QUEUES, "%u", attach_nq) ||
	    gv_xs_printf(d->xs, XBT_NULL, d->fe, "queue-0/size", "%u", QSZ) ||
	    gv_xs_printf(d->xs, XBT_NULL, d->fe, "queue-0/desc-refs", "%u", d->dref) ||
	    gv_xs_printf(d->xs, XBT_NULL, d->fe, "queue-0/avail-refs", "%u", d->aref) ||
	    gv_xs_printf(d->xs, XBT_NULL, d->fe, "queue-0/used-refs", "%u", d->uref) ||
	    gv_xs_printf(d->xs, XBT_NULL, d->fe, "queue-0/event-channel", "%u", d->qport) ||
	    gv_xs_write_str(d->xs, XBT_NULL, d->fe, GV_XS_FE_STATE, "3"))
		return -1;
	for (double end = gv_now_ms() + 5000; gv_now_ms() < end;) {
		if (xs_wait_key(d->xs, d->be, GV_XS_STATE, "4", 50))
			break;
		if (gv_xs_read_str(d->xs, XBT_NULL, d->be, GV_XS_STATE, st, sizeof(st)) == 0 &&
		    !strcmp(st, "5"))
			return 5;
	}
	if (gv_xs_read_str(d->xs, XBT_NULL, d->be, GV_XS_STATE, st, sizeof(st)) < 0 ||
	    strcmp(st, "4"))
		return -1;
	gv_xs_write_str(d->xs, XBT_NULL, d->fe, GV_XS_FE_STATE, "4");
	return 4;
}

/* Waits, woken by events on the device channel, until the backend's byte of
 * the liveness page reads 0 (its platform clears it as the backend unmaps the
 * page); at most ms. */
static bool drv_wait_backend_unmapped(struct drv *d, int ms)
{
	double end = gv_now_ms() + ms;
	int efd = gv_evtchn_fd(d->p);

	while (d->live[1]) {
		struct pollfd p = { efd, POLLIN, 0 };
		evtchn_port_t port;
		double left = end - gv_now_ms();

		if (left <= 0)
			return false;
		poll(&p, 1, (int)left + 1);
		while (gv_evtchn_pending(d->p, &port) == 1)
			gv_evtchn_unmask(d->p, port);
	}
	return true;
}

/* One request of nseg descriptors (addresses given), waits for its completion;
 * returns the used length or -1. */
static long drv_request(struct drv *d, const struct vring_desc *chain, unsigned n)
{
	double end = gv_now_ms() + 5000;
	int efd = gv_evtchn_fd(d->p);

	for (unsigned i = 0; i < n; i++) {
		d->desc[i] = chain[i];
		if (i + 1 < n) {
			d->desc[i].flags |= VRING_DESC_F_NEXT;
			d->desc[i].next = (uint16_t)(i + 1);
		}
	}
	d->avail->ring[d->avail->idx % QSZ] = 0;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	d->avail->idx++;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!(d->used->flags & VRING_USED_F_NO_NOTIFY))
		gv_evtchn_notify(d->p, d->qport);
	while (*(volatile uint16_t *)&d->used->idx == d->last_used) {
		struct pollfd p = { efd, POLLIN, 0 };
		evtchn_port_t port;

		if (gv_now_ms() > end)
			return -1;
		poll(&p, 1, 20);
		while (gv_evtchn_pending(d->p, &port) == 1)
			gv_evtchn_unmask(d->p, port);
	}
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return d->used->ring[d->last_used++ % QSZ].len;
}

static long drv_blk_read(struct drv *d, uint64_t sector, uint32_t len)
{
	struct virtio_blk_outhdr *h = (struct virtio_blk_outhdr *)d->data;
	struct vring_desc c[3] = {
		{ gv_grant_to_dma(d->data_ref[0], 0), 16, 0, 0 },
		{ gv_grant_to_dma(d->data_ref[1], 0), len, VRING_DESC_F_WRITE, 0 },
		{ gv_grant_to_dma(d->data_ref[0], 100), 1, VRING_DESC_F_WRITE, 0 },
	};

	h->type = VIRTIO_BLK_T_IN;
	h->ioprio = 0;
	h->sector = sector;
	d->data[100] = 0xff;
	return drv_request(d, c, 3);
}

static void drv_close(struct drv *d)
{
	for (unsigned i = 0; i < 8; i++)
		if (open_drvs[i] == d)
			open_drvs[i] = NULL;
	if (d->xs)
		xs_close(d->xs);
	if (d->p)
		gv_platform_close(d->p);
	d->xs = NULL;
	d->p = NULL;
}

static void close_open_drvs(void)
{
	for (unsigned i = 0; i < 8; i++)
		if (open_drvs[i])
			drv_close(open_drvs[i]);
}

static bool be_is(const char *dir, const char *key, const char *want)
{
	return xs_wait_key(xs0, dir, key, want, 5000);
}

/* ---- tests ---------------------------------------------------------------------- */

static int t_refuse_bypass_serve_other_body(void)
{
	struct drv a, b;
	char err[512], rngbe[96];
	int ida, idb;

	ida = sim_create_guest(&env, "nobypass", "4");
	idb = sim_create_guest(&env, "rngguest", "4");
	CHECK(ida > 0 && idb > 0);
	CHECK_EQ(drv_attach(&a, (domid_t)ida, false), 5);
	CHECK_EQ(gv_xs_read_str(xs0, XBT_NULL, a.be, GV_XS_ERROR, err, sizeof(err)), 0);
	CHECK_MSG(!strcmp(err, "driver did not accept VIRTIO_F_ACCESS_PLATFORM: under Xen a "
	                  "backend can reach only guest memory that the guest granted to it; use "
	                  "a DMA strategy that grants (bounce, grant, pool)"), "error: %s", err);
	CHECK(be_is(a.be, GV_XS_DEVICE_STATUS, "64"));
	CHECK_EQ(dom_info((domid_t)ida)->pages_mapped_by_others, 0);
	/* the other guest is served */
	CHECK_EQ(drv_attach(&b, (domid_t)idb, true), 4);
	{
		struct vring_desc c = { gv_grant_to_dma(b.data_ref[0], 10), 300, VRING_DESC_F_WRITE, 0 };

		CHECK_EQ(drv_request(&b, &c, 1), 300);
	}
	snprintf(rngbe, sizeof(rngbe), "%s", b.be);
	/* the refused frontend closes: backend Closed, then InitWait again */
	gv_xs_write_str(a.xs, XBT_NULL, a.fe, GV_XS_FE_STATE, "5");
	CHECK(be_is(a.be, GV_XS_STATE, "6"));
	gv_xs_write_str(a.xs, XBT_NULL, a.fe, GV_XS_FE_STATE, "6");
	CHECK(be_is(a.be, GV_XS_STATE, "2"));
	CHECK(be_is(a.be, GV_XS_DEVICE_STATUS, "0"));
	drv_close(&a);
	drv_close(&b);
	return 0;
}

static int t_allow_bypass_descriptor_body(void)
{
	struct drv a;
	char err[512];
	int id;

	id = sim_create_guest(&env, "bypassguest", "2");
	CHECK(id > 0);
	CHECK_EQ(drv_attach(&a, (domid_t)id, false), 4);
	{
		struct vring_desc c[3] = {
			{ 0x7f000, 16, 0, 0 },         /* a guest-physical address */
			{ gv_grant_to_dma(a.data_ref[1], 0), 512, VRING_DESC_F_WRITE, 0 },
			{ gv_grant_to_dma(a.data_ref[0], 100), 1, VRING_DESC_F_WRITE, 0 },
		};

		for (unsigned i = 0; i < 3; i++) {
			a.desc[i] = c[i];
			a.desc[i].flags |= i < 2 ? VRING_DESC_F_NEXT : 0;
			a.desc[i].next = (uint16_t)(i + 1);
		}
		a.avail->ring[0] = 0;
		a.avail->idx = 1;
		gv_evtchn_notify(a.p, a.qport);
	}
	CHECK(be_is(a.be, GV_XS_STATE, "5"));
	CHECK(be_is(a.be, GV_XS_DEVICE_STATUS, "64"));
	CHECK_EQ(gv_xs_read_str(xs0, XBT_NULL, a.be, GV_XS_ERROR, err, sizeof(err)), 0);
	CHECK_MSG(!strcmp(err, "descriptor address 0x7f000 is not a grant reference: the driver "
	                  "bypassed the DMA API (VIRTIO_F_ACCESS_PLATFORM not negotiated); under "
	                  "Xen a backend can reach only guest memory that the guest granted to it"),
	          "error: %s", err);
	/* broken means unmapped first */
	CHECK_EQ(dom_info((domid_t)id)->pages_mapped_by_others, 0);
	drv_close(&a);
	return 0;
}

static int t_teardown_detach_body(void)
{
	struct drv a;
	int id;

	id = sim_create_guest(&env, "blkguest", "2");
	CHECK(id > 0);
	CHECK_EQ(drv_attach(&a, (domid_t)id, true), 4);
	CHECK_EQ(drv_blk_read(&a, 2, 4096), 4097);
	CHECK_EQ(a.data[100], VIRTIO_BLK_S_OK);
	CHECK(dom_info((domid_t)id)->pages_mapped_by_others > 0);
	gv_xs_write_str(a.xs, XBT_NULL, a.fe, GV_XS_FE_STATE, "5");
	CHECK(be_is(a.be, GV_XS_STATE, "6"));
	CHECK_EQ(dom_info((domid_t)id)->pages_mapped_by_others, 0);
	CHECK_EQ(dom_info(0)->maps_active, 0);
	gv_xs_write_str(a.xs, XBT_NULL, a.fe, GV_XS_FE_STATE, "6");
	CHECK(be_is(a.be, GV_XS_STATE, "2"));
	drv_close(&a);
	return 0;
}

static int t_teardown_guest_killed_body(void)
{
	char be[96];
	int id, pfd[2];
	pid_t child;
	char c;

	id = sim_create_guest(&env, "rngguest", "4");
	CHECK(id > 0);
	CHECK_EQ(pipe(pfd), 0);
	child = guest_child = fork();
	if (child == 0) {
		struct drv a;

		close(pfd[0]);
		if (drv_attach(&a, (domid_t)id, true) == 4)
			c = 'y';
		else
			c = 'n';
		if (write(pfd[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	CHECK_EQ(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	CHECK_EQ(c, 'y');
	snprintf(be, sizeof(be), GV_XS_BACKEND_DIR_FMT, 0u, (unsigned)id, 0u);
	CHECK(be_is(be, GV_XS_STATE, "4"));
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	guest_child = -1;
	/* the liveness page tells the backend: it unmaps and closes */
	CHECK(be_is(be, GV_XS_STATE, "6"));
	CHECK_EQ(dom_info(0)->maps_active, 0);
	return 0;
}

static int t_teardown_backend_restart_body(void)
{
	struct drv a;
	int id;

	id = sim_create_guest(&env, "blkguest", "2");
	CHECK(id > 0);
	CHECK_EQ(drv_attach(&a, (domid_t)id, true), 4);
	CHECK_EQ(drv_blk_read(&a, 0, 512), 513);
	kill(backend, SIGKILL);
	waitpid(backend, NULL, 0);
	backend = -1;
	/* the platform undid the dead backend's mappings and told the guest */
	CHECK_EQ(dom_info((domid_t)id)->pages_mapped_by_others, 0);
	CHECK_EQ(a.live[1], 0);
	/* the guest closes as the contract says; a new backend publishes again */
	gv_xs_write_str(a.xs, XBT_NULL, a.fe, GV_XS_FE_STATE, "6");
	backend = start_backend(NULL);
	CHECK(backend > 0);
	CHECK(be_is(a.be, GV_XS_STATE, "2"));
	drv_close(&a);
	/* and it serves a new attach */
	CHECK_EQ(drv_attach(&a, (domid_t)id, true), 4);
	CHECK_EQ(drv_blk_read(&a, 1, 512), 513);
	drv_close(&a);
	return 0;
}

static int t_teardown_node_removed_body(void)
{
	struct drv a;
	int id;

	id = sim_create_guest(&env, "rngguest", "4");
	CHECK(id > 0);
	CHECK_EQ(drv_attach(&a, (domid_t)id, true), 4);
	CHECK(dom_info((domid_t)id)->pages_mapped_by_others > 0);
	xs_rm(xs0, XBT_NULL, a.be);
	/* no state key to wait on: the backend unmaps the liveness page last of
	 * all its mappings of the device, and the platform then clears its byte
	 * and signals the device channel; from there nothing may be mapped */
	CHECK_MSG(drv_wait_backend_unmapped(&a, 5000),
	          "the backend kept the liveness page mapped 5 s after its directory went");
	CHECK_EQ(dom_info((domid_t)id)->pages_mapped_by_others, 0);
	CHECK_EQ(dom_info(0)->maps_active, 0);
	drv_close(&a);
	/* gv-xl destroy of a guest whose backend closes as asked */
	return 0;
}

static bool sanitized(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	return true;
#else
	return false;
#endif
#else
	return false;
#endif
}

static long rss_kb(pid_t pid)
{
	char path[64], line[128];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static int t_memory_bounded_body(void)
{
	struct drv a;
	long r1k = -1, r10k;
	int id;
	double t0;

	id = sim_create_guest(&env, "blkguest", "2");
	CHECK(id > 0);
	CHECK_EQ(drv_attach(&a, (domid_t)id, true), 4);
	t0 = gv_now_ms();
	for (int i = 0; i < 10000; i++) {
		CHECK_EQ(drv_blk_read(&a, (uint64_t)(i % 2040), 4096), 4097);
		if (i == 999)
			r1k = rss_kb(backend);
	}
	r10k = rss_kb(backend);
	/* RssAnon: its private memory (an image on tmpfs, mapped by the
	 * backend, counts in VmRSS as the image's own pages) */
	printf("gv-backend RssAnon: %ld kB after 1,000 requests, %ld kB after 10,000 "
	       "(%.0f requests/s, map and unmap per request)\n", r1k, r10k,
	       10000 / ((gv_now_ms() - t0) / 1000));
	CHECK(r1k > 0 && r10k > 0);
	/* AddressSanitizer's quarantine keeps freed blocks resident for a while */
	CHECK_MSG(r10k - r1k < (sanitized() ? 16384 : 512), "RSS grew by %ld kB", r10k - r1k);
	/* the three vring pages and the liveness page: nothing kept between requests */
	CHECK_EQ(dom_info(0)->maps_active, 4);
	drv_close(&a);
	return 0;
}

/* Issue 13 defect 2: one guest rewriting its frontend state key in a loop
 * (Connected, Initialised, ...: each write fires the backend's watch) must
 * not stall another guest's I/O. Before the fix every event was handled at
 * once with xenstore round trips before any ring: a 4 s flood stalled the
 * other guest for 7.5 s. The bound asserted, a quarter of the flood's
 * length, is generous (a normal read takes a few ms) yet far below what
 * the old behaviour gives. The flooder is a forked process of the guest's
 * domain, so it runs while this process measures. */
#define FLOOD_MS 3000
static int t_watch_flood_body(void)
{
	static struct drv a, b;         /* teardown closes them even after a failed check */
	int ida, idb, st, pfd[2];
	unsigned reads = 0, after = 0;
	double max_ms = 0, t_start, flood_ms = 0;
	long writes = -1, rss0, rss1, rss_mid = -1;
	pid_t pid;

	if (sanitized()) {
		/* AddressSanitizer keeps freed blocks resident in a quarantine of
		 * up to 256 MB, which would fake growth per event: the daemon
		 * measured here runs without one */
		const char *old = getenv("ASAN_OPTIONS");
		char opts[512];

		snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=0", old ? old : "",
		         old && *old ? ":" : "");
		stop_daemon(&backend, "gv-backend");
		setenv("ASAN_OPTIONS", opts, 1);
		backend = start_backend(NULL);
		if (old)
			setenv("ASAN_OPTIONS", old, 1);
		else
			unsetenv("ASAN_OPTIONS");
		CHECK(backend > 0);
	}
	ida = sim_create_guest(&env, "blkguest", "2");
	idb = sim_create_guest(&env, "bypassguest", "2");
	CHECK(ida > 0 && idb > 0);
	CHECK_EQ(drv_attach(&a, (domid_t)ida, true), 4);
	CHECK_EQ(drv_attach(&b, (domid_t)idb, true), 4);
	CHECK_EQ(drv_blk_read(&a, 0, 4096), 4097);
	rss0 = rss_kb(backend);
	CHECK_EQ(pipe(pfd), 0);
	t_start = gv_now_ms();
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct gv_platform_opts o = { GV_PLATFORM_SIM, env.dir, (domid_t)idb };
		struct gv_platform *p;
		struct xs_handle *xs;
		char err[256];
		long n = 0;

		close(pfd[0]);
		if (gv_platform_open(&o, &p, err, sizeof(err)) < 0 || !(xs = gv_xs_open(p)))
			_exit(2);
		for (double end = gv_now_ms() + FLOOD_MS; gv_now_ms() < end; n++)
			if (gv_xs_write_str(xs, XBT_NULL, b.fe, GV_XS_FE_STATE, n & 1 ? "3" : "4") < 0)
				_exit(3);
		gv_xs_write_str(xs, XBT_NULL, b.fe, GV_XS_FE_STATE, "4");
		if (write(pfd[1], &n, sizeof(n)) != sizeof(n))
			_exit(4);
		_exit(0);
	}
	guest_child = pid;
	close(pfd[1]);
	/* guest a reads while the flood runs, and 20 reads more after it */
	for (;;) {
		double t0 = gv_now_ms(), dt;
		long len = drv_blk_read(&a, reads % 2040, 4096);

		dt = gv_now_ms() - t0;
		CHECK_MSG(len == 4097, "read %u during the flood: %ld", reads, len);
		if (dt > max_ms)
			max_ms = dt;
		reads++;
		/* a third into the flood: allocators and caches have warmed up,
		 * growth from here on would be growth per event */
		if (rss_mid < 0 && gv_now_ms() - t_start > FLOOD_MS / 3)
			rss_mid = rss_kb(backend);
		if (guest_child > 0 && waitpid(pid, &st, WNOHANG) == pid) {
			guest_child = -1;
			CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "flooder status 0x%x", st);
			flood_ms = gv_now_ms() - t_start;
		}
		if (guest_child < 0 && ++after == 20)
			break;
		CHECK_MSG(gv_now_ms() - t_start < 60000, "flood test still running after 60 s");
	}
	CHECK_EQ(read(pfd[0], &writes, sizeof(writes)), (ssize_t)sizeof(writes));
	close(pfd[0]);
	rss1 = rss_kb(backend);
	printf("xenstore flood: %ld state writes by guest %d in %.0f ms; guest %d did %u reads, "
	       "longest %.1f ms; gv-backend RssAnon %ld -> %ld (a third in) -> %ld kB\n", writes, idb,
	       flood_ms, ida, reads, max_ms, rss0, rss_mid, rss1);
	CHECK_MSG(writes >= 1000, "only %ld writes: not a flood", writes);
	CHECK_MSG(reads - after >= 10, "only %u reads during the flood", reads - after);
	CHECK_MSG(max_ms < flood_ms / 4, "a read of guest %d waited %.0f ms during a %.0f ms flood",
	          ida, max_ms, flood_ms);
	/* events coalesce: no memory per event (the old handling grew by
	 * about 2 MB in this test, steadily; the fixed one by less than 100 kB).
	 * Under AddressSanitizer its own allocator keeps growing by up to about
	 * 2 MB at this allocation rate even without a quarantine, so there the
	 * bound is looser; the plain build is the one that tells. */
	CHECK(rss_mid > 0);
	CHECK_MSG(rss1 - rss_mid < (sanitized() ? 4096 : 1024),
	          "RSS grew by %ld kB in the last two thirds of the flood", rss1 - rss_mid);
	CHECK_EQ(drv_blk_read(&b, 0, 4096), 4097);     /* the flooder is still served */
	drv_close(&a);
	drv_close(&b);
	return 0;
}

/* VIRTIO_BLK_F_MQ: a driver with two queues, each its own rings and event
 * channel, requests in flight on both at once, data written through one
 * read back through the other. */
static int t_multiqueue_body(void)
{
	static struct drv a;
	struct virtio_blk_outhdr *h0, *h1;
	double end;
	int id, efd;

	id = sim_create_guest(&env, "blkguest", "2");
	CHECK(id > 0);
	attach_nq = 2;
	CHECK_EQ(drv_attach(&a, (domid_t)id, true), 4);
	attach_nq = 1;
	/* queue 0 writes sector 8 (page 2 of data: 0x6b), then queue 1 reads it
	 * into page 3 while queue 0 reads sector 0 */
	memset(a.data + 2 * GV_PAGE_SIZE, 0x6b, GV_PAGE_SIZE);
	h0 = (struct virtio_blk_outhdr *)a.data;
	*h0 = (struct virtio_blk_outhdr){ VIRTIO_BLK_T_OUT, 0, 8 };
	{
		struct vring_desc c[3] = {
			{ gv_grant_to_dma(a.data_ref[0], 0), 16, 0, 0 },
			{ gv_grant_to_dma(a.data_ref[2], 0), 4096, 0, 0 },
			{ gv_grant_to_dma(a.data_ref[0], 100), 1, VRING_DESC_F_WRITE, 0 },
		};
		CHECK_EQ(drv_request(&a, c, 3), 1);
		CHECK_EQ(a.data[100], VIRTIO_BLK_S_OK);
	}
	h1 = (struct virtio_blk_outhdr *)(a.data + 200);
	*h1 = (struct virtio_blk_outhdr){ VIRTIO_BLK_T_IN, 0, 8 };
	a.q1.desc[0] = (struct vring_desc){ gv_grant_to_dma(a.data_ref[0], 200), 16,
	                                    VRING_DESC_F_NEXT, 1 };
	a.q1.desc[1] = (struct vring_desc){ gv_grant_to_dma(a.data_ref[3], 0), 4096,
	                                    VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2 };
	a.q1.desc[2] = (struct vring_desc){ gv_grant_to_dma(a.data_ref[0], 300), 1,
	                                    VRING_DESC_F_WRITE, 0 };
	a.data[300] = 0xff;
	a.q1.avail->ring[0] = 0;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	a.q1.avail->idx = 1;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	gv_evtchn_notify(a.p, a.q1.qport);
	/* queue 0 meanwhile: a read of sector 0, while queue 1's is in flight */
	CHECK_EQ(drv_blk_read(&a, 0, 4096), 4097);
	efd = gv_evtchn_fd(a.p);
	for (end = gv_now_ms() + 5000; *(volatile uint16_t *)&a.q1.used->idx == 0;) {
		struct pollfd pfd = { efd, POLLIN, 0 };
		evtchn_port_t port;

		CHECK_MSG(gv_now_ms() < end, "queue 1's request not completed in 5 s");
		poll(&pfd, 1, 20);
		while (gv_evtchn_pending(a.p, &port) == 1)
			gv_evtchn_unmask(a.p, port);
	}
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	CHECK_EQ(a.q1.used->ring[0].id, 0);
	CHECK_EQ(a.q1.used->ring[0].len, 4097);
	CHECK_EQ(a.data[300], VIRTIO_BLK_S_OK);
	CHECK_EQ((unsigned char)a.data[3 * GV_PAGE_SIZE], 0x6b);
	CHECK_EQ((unsigned char)a.data[4 * GV_PAGE_SIZE - 1], 0x6b);
	drv_close(&a);
	return 0;
}

static int t_xl_config_and_destroy_body(void)
{
	char cfg[200], out[1024], be[96];
	const char *args[3] = { "create", cfg, NULL };
	const char *dargs[3] = { "destroy", "rngguest", NULL };
	const char *largs[2] = { "list", NULL };
	FILE *f;
	int id;

	snprintf(cfg, sizeof(cfg), "%s/bad.cfg", env.dir);
	f = fopen(cfg, "w");
	CHECK(f);
	fprintf(f, "name = \"bad\"\n# a comment\nvirtio = [ \"backend=0,type=virtio,device2,"
	        "transport=pci\" ]\n");
	fclose(f);
	CHECK(run_prog("gv-xl", args, NULL, out, sizeof(out), 10) != 0);
	CHECK_MSG(strstr(out, "bad.cfg:3: virtio spec: transport=pci"), "gv-xl said: %s", out);
	id = sim_create_guest(&env, "rngguest", "4");
	CHECK(id > 0);
	/* a second domain with the same name is refused */
	snprintf(cfg, sizeof(cfg), "%s/rngguest.cfg", env.dir);
	CHECK(run_prog("gv-xl", args, NULL, out, sizeof(out), 10) != 0);
	CHECK_MSG(strstr(out, "already exists"), "gv-xl said: %s", out);
	snprintf(be, sizeof(be), GV_XS_BACKEND_DIR_FMT, 0u, (unsigned)id, 0u);
	CHECK(be_is(be, GV_XS_STATE, "2"));
	CHECK_EQ(run_prog("gv-xl", largs, NULL, out, sizeof(out), 10), 0);
	CHECK_MSG(strstr(out, "rngguest"), "gv-xl list: %s", out);
	/* destroy: the backend closes the device, the nodes and the domain go */
	CHECK_EQ(run_prog("gv-xl", dargs, NULL, out, sizeof(out), 30), 0);
	CHECK_MSG(!strstr(out, "did not close"), "gv-xl destroy: %s", out);
	CHECK(be_is(be, GV_XS_STATE, NULL));
	CHECK(!dom_info((domid_t)id));
	return 0;
}

/* every test runs between a fresh gv-simxen + gv-backend and their cleanup,
 * pass or fail */
static int with_daemons(int (*body)(void))
{
	int rc = setup(NULL);

	if (rc == 0)
		rc = body();
	teardown();
	return rc;
}

static int t_refuse_bypass_serve_other(void) { return with_daemons(t_refuse_bypass_serve_other_body); }
static int t_allow_bypass_descriptor(void) { return with_daemons(t_allow_bypass_descriptor_body); }
static int t_teardown_detach(void) { return with_daemons(t_teardown_detach_body); }
static int t_teardown_guest_killed(void) { return with_daemons(t_teardown_guest_killed_body); }
static int t_teardown_backend_restart(void) { return with_daemons(t_teardown_backend_restart_body); }
static int t_teardown_node_removed(void) { return with_daemons(t_teardown_node_removed_body); }
static int t_memory_bounded(void) { return with_daemons(t_memory_bounded_body); }
static int t_watch_flood(void) { return with_daemons(t_watch_flood_body); }
static int t_multiqueue(void) { return with_daemons(t_multiqueue_body); }

static int t_xl_config_and_destroy(void) { return with_daemons(t_xl_config_and_destroy_body); }

static const struct gv_test tests[] = {
	TEST(t_xl_config_and_destroy),
	TEST(t_refuse_bypass_serve_other),
	TEST(t_allow_bypass_descriptor),
	TEST(t_teardown_detach),
	TEST(t_teardown_guest_killed),
	TEST(t_teardown_backend_restart),
	TEST(t_teardown_node_removed),
	TEST(t_memory_bounded),
	TEST(t_watch_flood),
	TEST(t_multiqueue),
	{ 0 }
};

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	return gv_test_main(argc, argv, tests);
}
