/*
 * test/test_mapcache.c: the backend's map cache (backend/mapcache.c): hits,
 * LRU eviction by unmapping, the page bound, pinning of the request in
 * flight, read-only vs writable, flush. A fake platform counts mappings.
 */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "../backend/mapcache.h"

static unsigned unmaps;

static int fake_unmap(struct gv_platform *p, void *addr, unsigned count)
{
	p->ctr.maps_active -= count;
	unmaps++;
	free(addr);
	return 0;
}

static const struct gv_platform_ops fake_ops = { .name = "fake", .unmap = fake_unmap };
static struct gv_platform fake = { .ops = &fake_ops };

/* a "mapping" of n pages the cache will own */
static void *fake_map(unsigned n)
{
	fake.ctr.maps_active += n;
	return calloc(n, GV_PAGE_SIZE);
}

static int t_hit_and_miss(void)
{
	struct gvbe_mapcache *mc;
	struct gvbe_mapcache_stats st;
	grant_ref_t refs[2] = { 10, 11 };
	void *a = fake_map(2);

	CHECK_EQ(gvbe_mapcache_create(&fake, 1, 4, &mc), 0);
	gvbe_mapcache_begin(mc);
	CHECK(!gvbe_mapcache_lookup(mc, 10, false));
	CHECK_EQ(gvbe_mapcache_insert(mc, a, refs, 2, false), 1);
	CHECK(gvbe_mapcache_lookup(mc, 11, false) == (char *)a + GV_PAGE_SIZE);
	/* read-only mapping cannot serve a write */
	CHECK(!gvbe_mapcache_lookup(mc, 10, true));
	gvbe_mapcache_get_stats(mc, &st);
	CHECK_EQ(st.hits, 1);
	CHECK_EQ(st.misses, 2);
	CHECK_EQ(st.pages, 2);
	gvbe_mapcache_destroy(mc);
	CHECK_EQ(fake.ctr.maps_active, 0);
	return 0;
}

static int t_lru_eviction_bounded(void)
{
	struct gvbe_mapcache *mc;
	struct gvbe_mapcache_stats st;

	CHECK_EQ(gvbe_mapcache_create(&fake, 1, 8, &mc), 0);
	for (grant_ref_t r = 0; r < 1000; r++) {
		gvbe_mapcache_begin(mc);
		CHECK_EQ(gvbe_mapcache_insert(mc, fake_map(1), &r, 1, true), 1);
		/* keep ref 0 hot: it must survive */
		gvbe_mapcache_begin(mc);
		CHECK(gvbe_mapcache_lookup(mc, 0, true));
		CHECK(fake.ctr.maps_active <= 8);
	}
	gvbe_mapcache_get_stats(mc, &st);
	CHECK_EQ(st.pages, 8);
	CHECK_EQ(st.evictions, 1000 - 8);
	/* the most recent ones are there, an old cold one is gone */
	CHECK(gvbe_mapcache_lookup(mc, 999, false));
	CHECK(!gvbe_mapcache_lookup(mc, 500, false));
	gvbe_mapcache_flush(mc);
	CHECK_EQ(fake.ctr.maps_active, 0);
	gvbe_mapcache_destroy(mc);
	return 0;
}

static int t_pinned_not_evicted(void)
{
	struct gvbe_mapcache *mc;
	grant_ref_t a[3] = { 1, 2, 3 }, b[2] = { 4, 5 };
	void *ma = fake_map(3), *mb = fake_map(2);

	CHECK_EQ(gvbe_mapcache_create(&fake, 1, 4, &mc), 0);
	gvbe_mapcache_begin(mc);
	CHECK_EQ(gvbe_mapcache_insert(mc, ma, a, 3, false), 1);
	/* same request: 3 pinned + 2 > 4: refused, caller unmaps */
	CHECK_EQ(gvbe_mapcache_insert(mc, mb, b, 2, false), 0);
	CHECK(gvbe_mapcache_lookup(mc, 1, false));
	/* next request: the old batch can go */
	gvbe_mapcache_begin(mc);
	CHECK_EQ(gvbe_mapcache_insert(mc, mb, b, 2, false), 1);
	CHECK(!gvbe_mapcache_lookup(mc, 1, false));
	CHECK_EQ(fake.ctr.maps_active, 2);
	/* larger than the whole cache: refused */
	{
		grant_ref_t big[5] = { 20, 21, 22, 23, 24 };
		void *m = fake_map(5);

		gvbe_mapcache_begin(mc);
		CHECK_EQ(gvbe_mapcache_insert(mc, m, big, 5, false), 0);
		fake_unmap(&fake, m, 5);
	}
	gvbe_mapcache_destroy(mc);
	CHECK_EQ(fake.ctr.maps_active, 0);
	return 0;
}

static int t_writable_shadows(void)
{
	struct gvbe_mapcache *mc;
	grant_ref_t r = 7;
	void *ro = fake_map(1), *rw = fake_map(1);

	CHECK_EQ(gvbe_mapcache_create(&fake, 1, 4, &mc), 0);
	gvbe_mapcache_begin(mc);
	CHECK_EQ(gvbe_mapcache_insert(mc, ro, &r, 1, false), 1);
	CHECK_EQ(gvbe_mapcache_insert(mc, rw, &r, 1, true), 1);
	CHECK(gvbe_mapcache_lookup(mc, 7, true) == rw);
	CHECK(gvbe_mapcache_lookup(mc, 7, false) == rw);
	gvbe_mapcache_destroy(mc);
	CHECK_EQ(fake.ctr.maps_active, 0);
	return 0;
}

static const struct gv_test tests[] = {
	TEST(t_hit_and_miss),
	TEST(t_lru_eviction_bounded),
	TEST(t_pinned_not_evicted),
	TEST(t_writable_shadows),
	{ 0 }
};

int main(int argc, char **argv)
{
	return gv_test_main(argc, argv, tests);
}
