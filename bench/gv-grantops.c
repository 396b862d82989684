/*
 * bench/gv-grantops.c: what one grant operation costs on a platform, per
 * size, in one run: the null round trip (domain_exists), the granting
 * side's grant_alloc + grant_end, the mapping side's map + touch + unmap
 * (a batch of N pages, one call each), and grant copy of the same N pages
 * (one call), for reads from the grant and writes into it. Printed in
 * microseconds per operation and as the ratio copy / (map + unmap), which
 * is what gv-backend --grant-copy-max decides on.
 *
 * On the simulation (bench/run.sh runs it with GV_PLATFORM=sim against its
 * gv-simxen): one process opens dom0 and a guest domain it creates. On
 * real Xen (dom0): the pages are granted by dom0 to itself, as in
 * xen-test's smoke test (docs/benchmarks.md).
 *
 *   gv-grantops [--iters N] [--pages "1 4 16 32"]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "platform.h"
#include "platform_sim.h"

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int fail(const char *what, int rc)
{
	fprintf(stderr, "gv-grantops: %s: %s\n", what, strerror(-rc));
	return 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "iters", required_argument, NULL, 'i' },
		{ "pages", required_argument, NULL, 'p' },
		{ 0 }
	};
	unsigned iters = 2000, sizes[16], nsizes = 0;
	const char *pages = "1 4 16 32";
	struct gv_platform *host, *guest;
	struct gv_platform_opts o = { GV_PLATFORM_AUTO, NULL, -1 };
	char err[256], *buf;
	domid_t gid;
	double t;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'i')
			iters = (unsigned)strtoul(optarg, NULL, 10);
		else if (c == 'p')
			pages = optarg;
		else {
			fprintf(stderr, "usage: gv-grantops [--iters N] [--pages \"1 4 16 32\"]\n");
			return 2;
		}
	}
	for (char *s = (char *)pages, *end; *s && nsizes < 16; s = end) {
		unsigned long v = strtoul(s, &end, 10);

		if (end == s)
			break;
		if (v && v <= 32)
			sizes[nsizes++] = (unsigned)v;
	}
	if (!iters || !nsizes) {
		fprintf(stderr, "gv-grantops: --iters and --pages (1..32 each) must not be empty\n");
		return 2;
	}
	if (gv_platform_open(&o, &host, err, sizeof(err)) < 0) {
		fprintf(stderr, "gv-grantops: %s\n", err);
		return 1;
	}
	guest = host;
	gid = host->domid;
	if (gv_platform_is_sim(host)) {
		struct gv_platform_opts g = { GV_PLATFORM_SIM, NULL, 0 };

		rc = gv_sim_domain_create(host, "grantops", &gid);
		if (rc < 0)
			return fail("create a domain", rc);
		g.sim_domid = gid;
		if (gv_platform_open(&g, &guest, err, sizeof(err)) < 0) {
			fprintf(stderr, "gv-grantops: %s\n", err);
			return 1;
		}
	}
	buf = aligned_alloc(GV_PAGE_SIZE, 32 * GV_PAGE_SIZE);
	if (!buf)
		return fail("buffer", -ENOMEM);
	memset(buf, 0x5a, 32 * GV_PAGE_SIZE);

	t = now_us();
	for (unsigned i = 0; i < iters; i++)
		if ((rc = gv_domain_exists(host, gid)) != 1)
			return fail("domain_exists", rc < 0 ? rc : -ESRCH);
	printf("platform %s, %u iterations per figure\n", host->ops->name, iters);
	printf("null round trip (domain_exists): %.2f us\n\n", (now_us() - t) / iters);
	printf("%6s %12s %12s %12s %12s %12s %10s %10s\n", "pages", "alloc+end", "map+unmap",
	       "map+unmap w", "copy from", "copy into", "from/map", "into/mapw");
	for (unsigned k = 0; k < nsizes; k++) {
		unsigned n = sizes[k];
		grant_ref_t refs[32];
		struct gv_copy_seg seg[32];
		double ta, tm = 0, tmw = 0, tcf = 0, tci = 0;
		void *g, *m;

		t = now_us();
		for (unsigned i = 0; i < iters; i++) {
			if ((rc = gv_grant_alloc(guest, host->domid, n, 0, NULL, refs, &g)) < 0)
				return fail("grant_alloc", rc);
			if ((rc = gv_grant_end(guest, g, n)) < 0)
				return fail("grant_end", rc);
		}
		ta = (now_us() - t) / iters;
		if ((rc = gv_grant_alloc(guest, host->domid, n, 0, NULL, refs, &g)) < 0)
			return fail("grant_alloc", rc);
		for (int w = 0; w < 2; w++) {
			t = now_us();
			for (unsigned i = 0; i < iters; i++) {
				if ((rc = gv_map(host, gid, n, refs, w ? GV_MAP_WRITE : 0, NULL, &m)) < 0)
					return fail("map", rc);
				/* what a backend does with it: reads (writes) every page */
				if (w)
					memcpy(m, buf, (size_t)n * GV_PAGE_SIZE);
				else
					memcpy(buf, m, (size_t)n * GV_PAGE_SIZE);
				if ((rc = gv_unmap(host, m, n)) < 0)
					return fail("unmap", rc);
			}
			if (w)
				tmw = (now_us() - t) / iters;
			else
				tm = (now_us() - t) / iters;
		}
		for (int into = 0; into < 2; into++) {
			t = now_us();
			for (unsigned i = 0; i < iters; i++) {
				for (unsigned j = 0; j < n; j++)
					seg[j] = (struct gv_copy_seg){ .ref = refs[j], .offset = 0,
					                               .len = GV_PAGE_SIZE,
					                               .flags = into ? GV_COPY_TO_GRANT : 0,
					                               .local = buf + (size_t)j * GV_PAGE_SIZE };
				if ((rc = gv_grant_copy(host, gid, n, seg)) < 0)
					return fail("grant_copy", rc);
			}
			if (into)
				tci = (now_us() - t) / iters;
			else
				tcf = (now_us() - t) / iters;
		}
		if ((rc = gv_grant_end(guest, g, n)) < 0)
			return fail("grant_end", rc);
		printf("%6u %12.2f %12.2f %12.2f %12.2f %12.2f %10.2f %10.2f\n", n, ta, tm, tmw, tcf,
		       tci, tcf / tm, tci / tmw);
	}
	printf("\n(us per operation; copy/map below 1: grant copy is the cheaper)\n");
	if (guest != host) {
		gv_platform_close(guest);
		gv_sim_domain_destroy(host, gid);
	}
	gv_platform_close(host);
	free(buf);
	return 0;
}
