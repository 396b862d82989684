/*
 * test/test_platform_xen.c: the real-Xen platform (common/platform_xen.c).
 *
 * One binary, two modes, chosen by whether /dev/xen/gntdev exists:
 *  - no Xen (the development machine): opening the "xen" platform fails with
 *    the one documented line and leaves nothing behind (no fd, no handle);
 *  - Xen (dom0 of the QEMU test system, xen-test/): real grants to the own
 *    domain, mapped back, data checked both ways, ended, counters exact;
 *    loopback event channels; unmap notification; the refusals.
 * The mode is printed first; both modes assert, neither skips.
 */
#include <dirent.h>
#include <poll.h>
#include <stdint.h>
#include <unistd.h>
#include <xenstore.h>
#include "check.h"
#include "platform.h"

#define NO_XEN_MSG "no /dev/xen/gntdev: not running in a Xen domain; use the simulated platform"

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static struct gv_platform *open_xen(void)
{
	struct gv_platform_opts o = { GV_PLATFORM_XEN, NULL, -1 };
	struct gv_platform *p = NULL;
	char err[256] = "";
	int rc = gv_platform_open(&o, &p, err, sizeof(err));

	if (rc < 0) {
		fprintf(stderr, "gv_platform_open(xen): %d: %s\n", rc, err);
		return NULL;
	}
	return p;
}

/* ---------------- without Xen ---------------- */

static int t_noxen_open_fails_with_message(void)
{
	struct gv_platform_opts o = { GV_PLATFORM_XEN, NULL, -1 };
	struct gv_platform *p = NULL;
	char err[256];
	int fds = count_fds();
	int rc;

	memset(err, 'x', sizeof(err));
	rc = gv_platform_open(&o, &p, err, sizeof(err));
	CHECK(rc < 0);
	CHECK_EQ(rc, -ENODEV);
	CHECK(p == NULL);
	CHECK_MSG(!strcmp(err, NO_XEN_MSG), "message was \"%s\"", err);
	CHECK_EQ(count_fds(), fds);
	return 0;
}

static int t_noxen_env_choice_fails_too(void)
{
	/* GV_PLATFORM=xen with kind AUTO takes the same path. */
	struct gv_platform *p = NULL;
	char err[256] = "";
	int fds = count_fds();
	int rc;

	CHECK_EQ(setenv("GV_PLATFORM", "xen", 1), 0);
	rc = gv_platform_open(NULL, &p, err, sizeof(err));
	unsetenv("GV_PLATFORM");
	CHECK_EQ(rc, -ENODEV);
	CHECK(p == NULL);
	CHECK_MSG(!strcmp(err, NO_XEN_MSG), "message was \"%s\"", err);
	CHECK_EQ(count_fds(), fds);
	return 0;
}

static int t_noxen_direct_open_leaves_handle_untouched(void)
{
	struct gv_platform p;
	char err[8];    /* too short: truncated, still terminated */

	memset(&p, 0, sizeof(p));
	CHECK_EQ(gv_platform_xen_open(&p, err, sizeof(err)), -ENODEV);
	CHECK(p.ops == NULL);
	CHECK(p.priv == NULL);
	CHECK_EQ(strlen(err), sizeof(err) - 1);
	CHECK(!strncmp(err, NO_XEN_MSG, sizeof(err) - 1));
	return 0;
}

/* ---------------- with Xen ---------------- */

static int t_xen_open_close(void)
{
	int fds = count_fds();
	struct gv_platform *p = open_xen();
	struct xs_handle *xs;

	CHECK(p != NULL);
	CHECK(!strcmp(p->ops->name, "xen"));
	printf("platform: %s\n", p->desc);
	CHECK(gv_evtchn_fd(p) >= 0);
	xs = gv_xs_open(p);
	CHECK(xs != NULL);
	xs_close(xs);
	CHECK_EQ(gv_domain_exists(p, p->domid), 1);
	if (p->domid == 0)   /* only dom0 may ask about others */
		CHECK_EQ(gv_domain_exists(p, DOMID_FIRST_RESERVED - 1), 0);
	else
		CHECK_EQ(gv_domain_exists(p, 0), -ENOSYS);
	gv_platform_close(p);
	CHECK_EQ(count_fds(), fds);
	return 0;
}

/* Grants `count` pages to the own domain, maps them, checks data both ways. */
static int grant_map_roundtrip(unsigned count)
{
	struct gv_platform *p = open_xen();
	grant_ref_t refs[32];
	unsigned char *g = NULL, *m = NULL;

	CHECK(p != NULL);
	CHECK(count <= 32);
	CHECK_EQ(gv_grant_alloc(p, p->domid, count, 0, NULL, refs, (void **)&g), 0);
	CHECK(g != NULL);
	CHECK_EQ(p->ctr.grants_active, count);
	for (unsigned i = 0; i < count * GV_PAGE_SIZE; i++)
		CHECK_MSG(g[i] == 0, "granted page byte %u not zeroed", i);

	CHECK_EQ(gv_map(p, p->domid, count, refs, GV_MAP_WRITE, NULL, (void **)&m), 0);
	CHECK(m != NULL && m != g);
	CHECK_EQ(p->ctr.maps_active, count);
	CHECK_EQ(p->ctr.maps_done, count);
	CHECK_EQ(p->ctr.map_calls, 1);

	/* granter -> mapper, then mapper -> granter, every page */
	for (unsigned i = 0; i < count; i++) {
		g[i * GV_PAGE_SIZE + 7] = (unsigned char)(0x40 + i);
		g[i * GV_PAGE_SIZE + GV_PAGE_SIZE - 1] = 0x5a;
	}
	for (unsigned i = 0; i < count; i++) {
		CHECK_EQ(m[i * GV_PAGE_SIZE + 7], 0x40 + i);
		CHECK_EQ(m[i * GV_PAGE_SIZE + GV_PAGE_SIZE - 1], 0x5a);
		m[i * GV_PAGE_SIZE + 100] = (unsigned char)(0xc0 + i);
	}
	for (unsigned i = 0; i < count; i++)
		CHECK_EQ(g[i * GV_PAGE_SIZE + 100], 0xc0 + i);

	CHECK_EQ(gv_unmap(p, m, count), 0);
	CHECK_EQ(p->ctr.maps_active, 0);
	CHECK_EQ(p->ctr.unmaps_done, count);
	CHECK_EQ(gv_grant_end(p, g, count), 0);
	CHECK_EQ(p->ctr.grants_active, 0);
	CHECK_EQ(p->ctr.grants_leaked, 0);
	gv_platform_close(p);
	return 0;
}

static int t_xen_grant_self_1(void)  { return grant_map_roundtrip(1); }
static int t_xen_grant_self_4(void)  { return grant_map_roundtrip(4); }
static int t_xen_grant_self_32(void) { return grant_map_roundtrip(32); }

static int t_xen_refusals(void)
{
	struct gv_platform *p = open_xen();
	struct gv_notify n = { 0, GV_NO_PORT };
	grant_ref_t refs[2], bad = 0;
	void *g = NULL, *m = NULL, *x = NULL;
	int rc;

	CHECK(p != NULL);
	/* notify needs a single page */
	CHECK_EQ(gv_grant_alloc(p, p->domid, 2, 0, &n, refs, &g), -EINVAL);
	CHECK_EQ(p->ctr.grants_active, 0);
	/* a readonly grant maps readonly, not writable */
	CHECK_EQ(gv_grant_alloc(p, p->domid, 1, GV_GRANT_READONLY, NULL, refs, &g), 0);
	CHECK_EQ(gv_map(p, p->domid, 1, refs, 0, NULL, &m), 0);
	CHECK_EQ(gv_unmap(p, m, 1), 0);
	rc = gv_map(p, p->domid, 1, refs, GV_MAP_WRITE, NULL, &x);
	CHECK_EQ(rc, -EACCES);   /* gntdev says EINVAL; platform_xen sorts it out */
	CHECK_EQ(p->ctr.maps_active, 0);
	CHECK_EQ(p->ctr.map_calls, 1);
	/* a ref never granted: refuse, all or nothing */
	bad = refs[0] + 1000;
	CHECK_EQ(gv_map(p, p->domid, 1, &bad, 0, NULL, &x), -EINVAL);
	/* a domain that does not exist: -ESRCH where domain_exists may ask (dom0),
	 * gntdev's -EINVAL elsewhere */
	rc = gv_map(p, DOMID_FIRST_RESERVED - 1, 1, refs, 0, NULL, &x);
	CHECK_EQ(rc, p->domid == 0 ? -ESRCH : -EINVAL);
	CHECK_EQ(p->ctr.maps_active, 0);
	/* unknown regions */
	CHECK_EQ(gv_unmap(p, g, 1), -EINVAL);
	CHECK_EQ(gv_grant_end(p, g, 2), -EINVAL);
	CHECK_EQ(gv_grant_end(p, g, 1), 0);
	CHECK_EQ(gv_grant_end(p, g, 1), -EINVAL);
	CHECK_EQ(p->ctr.grants_active, 0);
	CHECK_EQ(p->ctr.maps_active, 0);
	gv_platform_close(p);
	return 0;
}

/* Waits (at most 5 s) for an event; returns the port or -1. */
static long wait_event(struct gv_platform *p)
{
	struct pollfd pfd = { gv_evtchn_fd(p), POLLIN, 0 };
	evtchn_port_t port;

	for (int i = 0; i < 50; i++) {
		int rc = gv_evtchn_pending(p, &port);

		if (rc == 1)
			return port;
		if (rc < 0)
			return -1;
		poll(&pfd, 1, 100);
	}
	return -1;
}

/* A loopback channel a <-> b in the own domain. Xen marks the binding end
 * (b) pending when bind_interdomain succeeds, so that an event sent before
 * the bind is not lost (xen/common/event_channel.c): that first event is
 * consumed here, asserted, and b unmasked. Callers of the platform see the
 * same spurious first event on every evtchn_bind. */
static int loopback(struct gv_platform *p, evtchn_port_t *a, evtchn_port_t *b)
{
	uint64_t before = p->ctr.events_received;

	CHECK_EQ(gv_evtchn_alloc_unbound(p, p->domid, a), 0);
	CHECK_EQ(gv_evtchn_bind(p, p->domid, *a, b), 0);
	CHECK(*a != *b);
	CHECK_EQ(wait_event(p), *b);
	CHECK_EQ(gv_evtchn_unmask(p, *b), 0);
	CHECK_EQ(p->ctr.events_received, before + 1);
	return 0;
}

static int t_xen_evtchn_loopback(void)
{
	struct gv_platform *p = open_xen();
	evtchn_port_t a, b, port;

	CHECK(p != NULL);
	CHECK_EQ(loopback(p, &a, &b), 0);
	CHECK_EQ(gv_evtchn_pending(p, &port), 0);
	CHECK_EQ(gv_evtchn_notify(p, a), 0);
	CHECK_EQ(wait_event(p), b);
	CHECK_EQ(gv_evtchn_pending(p, &port), 0);
	/* while b is masked, events coalesce and stay pending */
	CHECK_EQ(gv_evtchn_notify(p, a), 0);
	CHECK_EQ(gv_evtchn_notify(p, a), 0);
	CHECK_EQ(gv_evtchn_unmask(p, b), 0);
	CHECK_EQ(wait_event(p), b);
	CHECK_EQ(gv_evtchn_pending(p, &port), 0);
	CHECK_EQ(gv_evtchn_unmask(p, b), 0);
	CHECK_EQ(gv_evtchn_notify(p, b), 0);
	CHECK_EQ(wait_event(p), a);
	CHECK_EQ(gv_evtchn_unmask(p, a), 0);
	CHECK_EQ(p->ctr.events_sent, 4);
	CHECK_EQ(p->ctr.events_received, 4);   /* bind, first notify, the coalesced pair, last */
	CHECK_EQ(gv_evtchn_unbind(p, b), 0);
	CHECK_EQ(gv_evtchn_unbind(p, b), -EINVAL);
	/* a is left bound: close must release it */
	gv_platform_close(p);
	return 0;
}

static int t_xen_unmap_notify(void)
{
	struct gv_platform *p = open_xen();
	struct gv_notify n;
	evtchn_port_t a, b;
	grant_ref_t ref;
	unsigned char *g = NULL, *m = NULL;

	CHECK(p != NULL);
	CHECK_EQ(loopback(p, &a, &b), 0);
	CHECK_EQ(gv_grant_alloc(p, p->domid, 1, 0, NULL, &ref, (void **)&g), 0);
	n.offset = 64;
	n.port = a;
	CHECK_EQ(gv_map(p, p->domid, 1, &ref, 0, &n, (void **)&m), -EINVAL); /* needs WRITE */
	CHECK_EQ(gv_map(p, p->domid, 1, &ref, GV_MAP_WRITE, &n, (void **)&m), 0);
	m[64] = 1;
	CHECK_EQ(g[64], 1);
	/* the mapper goes away: byte 64 cleared, port a notified (arrives on b) */
	CHECK_EQ(gv_unmap(p, m, 1), 0);
	CHECK_EQ(g[64], 0);
	CHECK_EQ(wait_event(p), b);
	CHECK_EQ(gv_grant_end(p, g, 1), 0);

	/* granter side notify: ending the share clears the byte in the mapping */
	n.offset = 10;
	n.port = b;
	CHECK_EQ(gv_evtchn_unmask(p, b), 0);
	CHECK_EQ(gv_grant_alloc(p, p->domid, 1, 0, &n, &ref, (void **)&g), 0);
	CHECK_EQ(gv_map(p, p->domid, 1, &ref, GV_MAP_WRITE, NULL, (void **)&m), 0);
	g[10] = 1;
	CHECK_EQ(m[10], 1);
	CHECK_EQ(gv_grant_end(p, g, 1), 0);
	CHECK_EQ(wait_event(p), a);
	/* the page stays mapped here (gntalloc deferred its release) and the
	 * notify byte was cleared in it */
	CHECK_EQ(m[10], 0);
	CHECK_EQ(p->ctr.grants_active, 0);
	CHECK_EQ(gv_unmap(p, m, 1), 0);
	gv_platform_close(p);
	return 0;
}

static const struct gv_test no_xen_tests[] = {
	TEST(t_noxen_open_fails_with_message),
	TEST(t_noxen_env_choice_fails_too),
	TEST(t_noxen_direct_open_leaves_handle_untouched),
	{ 0 }
};

static const struct gv_test xen_tests[] = {
	TEST(t_xen_open_close),
	TEST(t_xen_grant_self_1),
	TEST(t_xen_grant_self_4),
	TEST(t_xen_grant_self_32),
	TEST(t_xen_refusals),
	TEST(t_xen_evtchn_loopback),
	TEST(t_xen_unmap_notify),
	{ 0 }
};

/* Not a test: `test_platform_xen --hold N` grants N pages to the own domain,
 * maps them, prints "holding N" and waits for a signal. The QEMU harness uses
 * it to check its grant-leak oracle (xl debug-keys g) both ways: N active
 * entries while held, none once the process is killed (the kernel's gntdev
 * and gntalloc clean up after a dead process). */
static int hold(unsigned n)
{
	struct gv_platform *p = open_xen();
	grant_ref_t refs[64];
	void *g, *m;

	if (!p || n == 0 || n > 64)
		return 2;
	if (gv_grant_alloc(p, p->domid, n, 0, NULL, refs, &g) < 0 ||
	    gv_map(p, p->domid, n, refs, GV_MAP_WRITE, NULL, &m) < 0) {
		fprintf(stderr, "hold: grant or map failed\n");
		return 1;
	}
	printf("holding %u first ref %u\n", n, refs[0]);
	fflush(stdout);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	bool xen = access("/dev/xen/gntdev", F_OK) == 0;

	if (argc == 3 && !strcmp(argv[1], "--hold"))
		return hold((unsigned)atoi(argv[2]));

	printf("mode: %s\n", xen ? "xen (/dev/xen/gntdev present: real grants to the own domain)"
	                         : "no-xen (/dev/xen/gntdev absent: asserting the error path)");
	return gv_test_main(argc, argv, xen ? xen_tests : no_xen_tests);
}
