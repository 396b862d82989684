/*
 * test/test_dma.c: unit tests of the frontend's DMA layer (frontend/dma*.c)
 * over a fake platform (test_fe_fake.h): every strategy's map/unmap/sync,
 * segments cut where refs are not consecutive, pool exhaustion, and the
 * grant strategy's leak-on-EBUSY (leaked memory is PROT_NONE in the fake,
 * so touching it again would crash this test).
 */
#include <stdlib.h>
#include "check.h"
#include "../frontend/dma.h"
#include "test_fe_fake.h"

#define MAXSEG 1100

static struct gvfe_dma_seg segs[MAXSEG];

static void fill(uint8_t *b, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

/* The backend's gather/scatter over the segments, through the refs. */
static int dev_read(struct fake_plat *f, const struct gvfe_dma_seg *s, unsigned n, uint8_t *out)
{
	for (unsigned k = 0; k < n; k++)
		for (uint32_t i = 0; i < s[k].len; i++) {
			uint8_t *b = fake_dma_byte(f, s[k].addr, i);

			if (!b)
				return -1;
			*out++ = *b;
		}
	return 0;
}

static int dev_write(struct fake_plat *f, const struct gvfe_dma_seg *s, unsigned n,
                     const uint8_t *in)
{
	for (unsigned k = 0; k < n; k++)
		for (uint32_t i = 0; i < s[k].len; i++) {
			uint8_t *b = fake_dma_byte(f, s[k].addr, i);

			if (!b)
				return -1;
			*b = *in++;
		}
	return 0;
}

static int t_segs_from_refs(void)
{
	const grant_ref_t consec[] = { 10, 11, 12, 13 };
	const grant_ref_t gaps[] = { 10, 11, 20, 21, 22, 5 };
	unsigned n = 0;
	grant_ref_t r;
	uint32_t off;

	CHECK_EQ(gvfe_dma_segs_from_refs(consec, 100, 3 * GV_PAGE_SIZE, 0, segs, MAXSEG, &n), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(segs[0].len, 3 * GV_PAGE_SIZE);
	CHECK_EQ(gv_dma_to_grant(segs[0].addr, &r, &off), 0);
	CHECK_EQ(r, 10);
	CHECK_EQ(off, 100);

	/* offset 4000 in page 0, to the middle of page 5: runs 10-11, 20-22, 5 */
	CHECK_EQ(gvfe_dma_segs_from_refs(gaps, 4000, 5 * GV_PAGE_SIZE, 0, segs, MAXSEG, &n), 0);
	CHECK_EQ(n, 3);
	CHECK_EQ(segs[0].len, 96 + GV_PAGE_SIZE);
	CHECK_EQ(segs[1].addr, gv_grant_to_dma(20, 0));
	CHECK_EQ(segs[1].len, 3 * GV_PAGE_SIZE);
	CHECK_EQ(segs[2].addr, gv_grant_to_dma(5, 0));
	CHECK_EQ(segs[2].len, 5 * GV_PAGE_SIZE - (96 + 4 * GV_PAGE_SIZE));

	/* size-max cuts a run */
	CHECK_EQ(gvfe_dma_segs_from_refs(consec, 0, 4 * GV_PAGE_SIZE, 6000, segs, MAXSEG, &n), 0);
	CHECK_EQ(n, 3);
	CHECK_EQ(segs[0].len, 6000);
	CHECK_EQ(segs[1].addr, gv_grant_to_dma(11, 6000 - GV_PAGE_SIZE));
	CHECK_EQ(segs[2].len, 4 * GV_PAGE_SIZE - 12000);

	CHECK_EQ(gvfe_dma_segs_from_refs(gaps, 0, 6 * GV_PAGE_SIZE, 0, segs, 2, &n), -E2BIG);
	return 0;
}

static int roundtrip(enum gvfe_dma_strategy s, bool scatter, size_t len, size_t misalign)
{
	struct fake_plat *f = fake_new(scatter);
	struct gvfe_dma_dev d;
	struct gvfe_dma_map m;
	uint8_t *raw = malloc(len + misalign), *buf = raw + misalign;
	uint8_t *seen = malloc(len), *from_dev = malloc(len);
	unsigned n = 0, pages_min;
	uint64_t base;

	/* grant: a budget that holds this one mapping (t_grant_budget tests it) */
	CHECK_EQ(gvfe_dma_dev_init(&d, &f->p, 0, s, s == GVFE_DMA_GRANT ? gv_pages_for(len) + 1 : 0), 0);
	base = f->p.ctr.grants_active;
	fill(buf, len, 1);
	fill(from_dev, len, 2);

	CHECK_EQ(gvfe_dma_map(&d, buf, len, GVFE_DMA_BIDIRECTIONAL, &m, segs, MAXSEG, &n), 0);
	CHECK(n >= 1);
	/* every segment lies in a run of consecutive refs: the backend's
	 * gather through ref + k reproduces the buffer exactly */
	CHECK_EQ(dev_read(f, segs, n, seen), 0);
	CHECK(!memcmp(seen, buf, len));
	pages_min = gv_pages_for(len);
	if (scatter && pages_min > 2)
		CHECK_MSG(n >= pages_min / 2, "%u segments for %u scattered pages", n, pages_min);
	if (!scatter && s != GVFE_DMA_BYPASS)
		CHECK_EQ(n, 1);
	/* sync_for_cpu after the device wrote: the CPU sees it */
	CHECK_EQ(dev_write(f, segs, n, from_dev), 0);
	gvfe_dma_sync_for_cpu(&d, &m);
	CHECK(!memcmp(buf, from_dev, len));
	/* the CPU writes, sync_for_device: the device sees it */
	fill(buf, len, 3);
	gvfe_dma_sync_for_device(&d, &m);
	CHECK_EQ(dev_read(f, segs, n, seen), 0);
	CHECK(!memcmp(seen, buf, len));
	/* device writes once more; unmap copies it out */
	fill(from_dev, len, 4);
	CHECK_EQ(dev_write(f, segs, n, from_dev), 0);
	CHECK_EQ(gvfe_dma_unmap(&d, &m), 0);
	CHECK(!memcmp(buf, from_dev, len));
	/* grant: the mapping's grants are ended at unmap */
	CHECK_EQ(f->p.ctr.grants_active, base);
	CHECK_EQ(gvfe_dma_dev_destroy(&d), 0);
	CHECK_EQ(f->p.ctr.grants_active, 0);
	free(raw);
	free(seen);
	free(from_dev);
	fake_free(f);
	return 0;
}

static int t_bounce_roundtrip(void)
{
	static const size_t lens[] = { 1, 511, 512, 4096, 4097, 12345, 1 << 20 };

	for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		for (size_t mis = 0; mis < 4096; mis += 1365) {
			CHECK_EQ(roundtrip(GVFE_DMA_BOUNCE, false, lens[i], mis), 0);
			CHECK_EQ(roundtrip(GVFE_DMA_BOUNCE, true, lens[i], mis), 0);
		}
	return 0;
}

static int t_grant_roundtrip(void)
{
	static const size_t lens[] = { 1, 4096, 4097, 70000, 4 << 20 };

	for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		CHECK_EQ(roundtrip(GVFE_DMA_GRANT, false, lens[i], 7), 0);
		CHECK_EQ(roundtrip(GVFE_DMA_GRANT, true, lens[i], 4000), 0);
	}
	return 0;
}

/* The grant strategy keeps the pages granted at once within its budget (a
 * guest kernel's gntalloc limit): over it -EAGAIN until a completion, a
 * mapping larger than the budget -ENOMEM; nothing is granted either way. */
static int t_grant_budget(void)
{
	struct fake_plat *f = fake_new(false);
	struct gvfe_dma_dev d;
	struct gvfe_dma_map m[4], big;
	uint8_t *buf = calloc(1, 16 * GV_PAGE_SIZE);
	unsigned n;

	CHECK_EQ(gvfe_dma_dev_init(&d, &f->p, 0, GVFE_DMA_GRANT, 8), 0);
	CHECK_EQ(gvfe_dma_map(&d, buf, 9 * GV_PAGE_SIZE, GVFE_DMA_TO_DEVICE, &big, segs, MAXSEG, &n),
	         -ENOMEM);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(gvfe_dma_map(&d, buf, 3 * GV_PAGE_SIZE, GVFE_DMA_TO_DEVICE, &m[i], segs, MAXSEG, &n), 0);
	CHECK_EQ(f->p.ctr.grants_active, 6);
	CHECK_EQ(gvfe_dma_map(&d, buf, 3 * GV_PAGE_SIZE, GVFE_DMA_TO_DEVICE, &m[2], segs, MAXSEG, &n),
	         -EAGAIN);
	CHECK_EQ(d.stats.pool_full, 1);
	CHECK_EQ(f->p.ctr.grants_active, 6);
	/* two pages still fit, and a completion frees room for three */
	CHECK_EQ(gvfe_dma_map(&d, buf, 2 * GV_PAGE_SIZE, GVFE_DMA_FROM_DEVICE, &m[2], segs, MAXSEG,
	                      &n), 0);
	CHECK_EQ(gvfe_dma_unmap(&d, &m[0]), 0);
	CHECK_EQ(gvfe_dma_map(&d, buf, 3 * GV_PAGE_SIZE, GVFE_DMA_TO_DEVICE, &m[3], segs, MAXSEG, &n), 0);
	for (int i = 1; i < 4; i++)
		CHECK_EQ(gvfe_dma_unmap(&d, &m[i]), 0);
	CHECK_EQ(d.grant_pages_out, 0);
	CHECK_EQ(f->p.ctr.grants_active, 0);
	CHECK_EQ(gvfe_dma_dev_destroy(&d), 0);
	free(buf);
	fake_free(f);
	return 0;
}

static int t_directions(void)
{
	struct fake_plat *f = fake_new(false);
	struct gvfe_dma_dev d;
	struct gvfe_dma_map m;
	uint8_t buf[3000], dev[3000], orig[3000];
	unsigned n;

	CHECK_EQ(gvfe_dma_dev_init(&d, &f->p, 0, GVFE_DMA_GRANT, 0), 0);
	fill(buf, sizeof(buf), 5);
	memcpy(orig, buf, sizeof(buf));
	/* TO_DEVICE: granted read-only, data copied in, nothing copied out */
	CHECK_EQ(gvfe_dma_map(&d, buf, sizeof(buf), GVFE_DMA_TO_DEVICE, &m, segs, MAXSEG, &n), 0);
	CHECK(fake_region_of_dma(f, segs[0].addr)->flags & GV_GRANT_READONLY);
	CHECK_EQ(dev_read(f, segs, n, dev), 0);
	CHECK(!memcmp(dev, buf, sizeof(buf)));
	*fake_dma_byte(f, segs[0].addr, 0) ^= 0xff;     /* (a real backend could not) */
	CHECK_EQ(gvfe_dma_unmap(&d, &m), 0);
	CHECK(!memcmp(buf, orig, sizeof(buf)));
	/* FROM_DEVICE: writable, nothing copied in, copied out */
	CHECK_EQ(gvfe_dma_map(&d, buf, sizeof(buf), GVFE_DMA_FROM_DEVICE, &m, segs, MAXSEG, &n), 0);
	CHECK(!(fake_region_of_dma(f, segs[0].addr)->flags & GV_GRANT_READONLY));
	CHECK_EQ(dev_read(f, segs, n, dev), 0);
	CHECK(dev[0] == 0 && dev[2999] == 0);            /* fresh zeroed pages, not our data */
	fill(dev, sizeof(dev), 6);
	CHECK_EQ(dev_write(f, segs, n, dev), 0);
	CHECK_EQ(gvfe_dma_unmap(&d, &m), 0);
	CHECK(!memcmp(buf, dev, sizeof(buf)));
	CHECK_EQ(d.stats.bytes_copied_in, 3000);
	CHECK_EQ(d.stats.bytes_copied_out, 3000);
	CHECK_EQ(f->p.ctr.grants_active, 0);
	CHECK_EQ(gvfe_dma_map(&d, buf, 0, GVFE_DMA_TO_DEVICE, &m, segs, MAXSEG, &n), -EINVAL);
	gvfe_dma_dev_destroy(&d);
	fake_free(f);
	return 0;
}

static int t_pool_exhaustion(void)
{
	struct fake_plat *f = fake_new(true);
	struct gvfe_dma_dev d;
	struct gvfe_dma_map m[20], big;
	uint8_t *buf = calloc(1, 64 * GV_PAGE_SIZE);
	unsigned n, i;

	/* a 16-page pool: 15 maps of one page each plus a bit, then full */
	CHECK_EQ(gvfe_dma_dev_init(&d, &f->p, 0, GVFE_DMA_BOUNCE, 16), 0);
	CHECK_EQ(f->p.ctr.grants_active, 16);
	for (i = 0; i < 20; i++) {
		int rc = gvfe_dma_map(&d, buf, GV_PAGE_SIZE + 1, GVFE_DMA_TO_DEVICE, &m[i], segs, MAXSEG, &n);

		if (rc == -EAGAIN)
			break;
		CHECK_EQ(rc, 0);
	}
	/* 9 slots per map (4097 bytes) in 128 slots: 14 fit */
	CHECK_EQ(i, 14);
	CHECK_EQ(d.stats.pool_full, 1);
	/* never fits, whatever completes: -ENOMEM, not -EAGAIN */
	CHECK_EQ(gvfe_dma_map(&d, buf, 17 * GV_PAGE_SIZE, GVFE_DMA_TO_DEVICE, &big, segs, MAXSEG, &n),
	         -ENOMEM);
	/* a completion frees room */
	CHECK_EQ(gvfe_dma_unmap(&d, &m[3]), 0);
	CHECK_EQ(gvfe_dma_map(&d, buf, GV_PAGE_SIZE + 1, GVFE_DMA_TO_DEVICE, &m[3], segs, MAXSEG, &n), 0);
	for (unsigned k = 0; k < i; k++)
		CHECK_EQ(gvfe_dma_unmap(&d, &m[k]), 0);
	CHECK_EQ(d.pool.free_slots, d.pool.nslots);
	/* the whole pool in one mapping, cut at the scattered refs: 8 runs */
	CHECK_EQ(gvfe_dma_map(&d, buf, 16 * GV_PAGE_SIZE, GVFE_DMA_FROM_DEVICE, &big, segs, MAXSEG,
	                      &n), 0);
	CHECK_EQ(n, 8);
	/* -E2BIG leaves nothing mapped */
	CHECK_EQ(gvfe_dma_unmap(&d, &big), 0);
	CHECK_EQ(gvfe_dma_map(&d, buf, 16 * GV_PAGE_SIZE, GVFE_DMA_FROM_DEVICE, &big, segs, 4, &n),
	         -E2BIG);
	CHECK_EQ(d.pool.free_slots, d.pool.nslots);
	CHECK_EQ(gvfe_dma_dev_destroy(&d), 0);
	CHECK_EQ(f->p.ctr.grants_active, 0);
	free(buf);
	fake_free(f);
	return 0;
}

/* The slot allocator against a bit-per-slot model: random maps and unmaps
 * of 1 to 250 slots in a pool whose slot count is not a multiple of 64;
 * every mapping's slots are free in the model when taken, set while held,
 * and the pool's count of free slots matches the model throughout. */
static int t_pool_slots_model(void)
{
	struct fake_plat *f = fake_new(true);
	struct gvfe_dma_dev d;
	enum { NPAGES = 37, NM = 24 };
	static struct gvfe_dma_map m[NM];
	static struct gvfe_dma_seg sg[NPAGES + 2];
	bool held[NM] = { false }, model[NPAGES * GV_PAGE_SIZE / GVFE_DMA_SLOT_SIZE] = { false };
	uint8_t *buf = calloc(1, NPAGES * GV_PAGE_SIZE);
	uint64_t rng = 12345;
	unsigned n, nslots, free_model, maps = 0;

	CHECK(buf != NULL);
	CHECK_EQ(gvfe_dma_dev_init(&d, &f->p, 0, GVFE_DMA_BOUNCE, NPAGES), 0);
	nslots = d.pool.nslots;
	CHECK_EQ(nslots, (unsigned)(sizeof(model) / sizeof(model[0])));
	free_model = nslots;
	for (unsigned step = 0; step < 20000; step++) {
		unsigned k;

		rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
		k = (unsigned)(rng % NM);
		if (held[k]) {
			for (unsigned s = 0; s < m[k].nslots; s++)
				model[m[k].slot + s] = false;
			free_model += m[k].nslots;
			CHECK_EQ(gvfe_dma_unmap(&d, &m[k]), 0);
			held[k] = false;
		} else {
			size_t len = 1 + (size_t)((rng >> 20) % (250 * GVFE_DMA_SLOT_SIZE));
			int rc = gvfe_dma_map(&d, buf, len, GVFE_DMA_TO_DEVICE, &m[k], sg,
			                      NPAGES + 2, &n);

			if (rc == -EAGAIN)
				continue;
			CHECK_EQ(rc, 0);
			CHECK_EQ(m[k].nslots, (unsigned)((len + GVFE_DMA_SLOT_SIZE - 1) / GVFE_DMA_SLOT_SIZE));
			CHECK(m[k].slot + m[k].nslots <= nslots);
			for (unsigned s = 0; s < m[k].nslots; s++) {
				CHECK(!model[m[k].slot + s]);
				model[m[k].slot + s] = true;
			}
			free_model -= m[k].nslots;
			held[k] = true;
			maps++;
		}
		CHECK_EQ(d.pool.free_slots, free_model);
		for (unsigned s = 0; s < nslots; s++)
			CHECK_EQ(d.pool.bitmap[s / 64] >> (s % 64) & 1, (uint64_t)model[s]);
	}
	CHECK(maps > 1000);
	for (unsigned k = 0; k < NM; k++)
		if (held[k])
			CHECK_EQ(gvfe_dma_unmap(&d, &m[k]), 0);
	CHECK_EQ(d.pool.free_slots, nslots);
	CHECK_EQ(gvfe_dma_dev_destroy(&d), 0);
	free(buf);
	fake_free(f);
	return 0;
}

static int t_pool_zero_copy(void)
{
	struct fake_plat *f = fake_new(true);
	struct gvfe_dma_dev d;
	struct gvfe_dma_map m;
	uint8_t *a, *b, outside[100], seen[10000];
	unsigned n;

	CHECK_EQ(gvfe_dma_dev_init(&d, &f->p, 0, GVFE_DMA_POOL, 8), 0);
	a = gvfe_dma_pool_alloc(&d, 10000);
	CHECK(a != NULL);
	CHECK(gvfe_dma_pool_alloc(&d, 8 * GV_PAGE_SIZE) == NULL && errno == EAGAIN);
	CHECK(gvfe_dma_pool_alloc(&d, 9 * GV_PAGE_SIZE) == NULL && errno == ENOMEM);
	fill(a, 10000, 7);
	/* mapping a pool buffer (at an odd offset) is a lookup: no copy */
	CHECK_EQ(gvfe_dma_map(&d, a + 3, 9000, GVFE_DMA_BIDIRECTIONAL, &m, segs, MAXSEG, &n), 0);
	CHECK(m.dev_cpu == a + 3);
	CHECK(!m.bounced);
	CHECK_EQ(dev_read(f, segs, n, seen), 0);
	CHECK(!memcmp(seen, a + 3, 9000));
	CHECK_EQ(gvfe_dma_unmap(&d, &m), 0);
	CHECK_EQ(d.stats.bytes_copied_in + d.stats.bytes_copied_out, 0);
	/* a buffer from elsewhere is bounced through the pool, counted */
	b = gvfe_dma_pool_alloc(&d, 512);
	CHECK(b != NULL && b != a);
	fill(outside, sizeof(outside), 8);
	CHECK_EQ(gvfe_dma_map(&d, outside, sizeof(outside), GVFE_DMA_TO_DEVICE, &m, segs, MAXSEG, &n), 0);
	CHECK_EQ(d.stats.pool_fallbacks, 1);
	CHECK_EQ(dev_read(f, segs, n, seen), 0);
	CHECK(!memcmp(seen, outside, sizeof(outside)));
	CHECK_EQ(gvfe_dma_unmap(&d, &m), 0);
	gvfe_dma_pool_free(&d, a, 10000);
	gvfe_dma_pool_free(&d, b, 512);
	CHECK_EQ(d.pool.free_slots, d.pool.nslots);
	CHECK_EQ(gvfe_dma_dev_destroy(&d), 0);
	fake_free(f);
	return 0;
}

static int t_grant_leak_on_ebusy(void)
{
	struct fake_plat *f = fake_new(false);
	struct gvfe_dma_dev d;
	struct gvfe_dma_map m, m2;
	uint8_t buf[5000];
	grant_ref_t leaked_ref;
	uint32_t off;
	unsigned n;

	CHECK_EQ(gvfe_dma_dev_init(&d, &f->p, 0, GVFE_DMA_GRANT, 0), 0);
	fill(buf, sizeof(buf), 9);
	CHECK_EQ(gvfe_dma_map(&d, buf, sizeof(buf), GVFE_DMA_FROM_DEVICE, &m, segs, MAXSEG, &n), 0);
	CHECK_EQ(gvfe_dma_map(&d, buf, 100, GVFE_DMA_TO_DEVICE, &m2, segs + 4, MAXSEG - 4, &n), 0);
	CHECK_EQ(gv_dma_to_grant(segs[0].addr, &leaked_ref, &off), 0);
	fake_region_of_dma(f, segs[0].addr)->peer_maps = true;   /* backend never unmapped */
	CHECK_EQ(gvfe_dma_unmap(&d, &m), -EBUSY);
	CHECK(d.broken);
	CHECK_EQ(d.stats.pages_leaked, 2);
	CHECK_EQ(f->p.ctr.grants_leaked, 2);
	/* the leaked pages are PROT_NONE in the fake: the layer never touches
	 * them again; a broken device maps nothing more */
	CHECK(m.dev_cpu == NULL);
	CHECK_EQ(gvfe_dma_map(&d, buf, 10, GVFE_DMA_TO_DEVICE, &m, segs, MAXSEG, &n), -EIO);
	/* mappings made before still unmap (their grants end) */
	CHECK_EQ(gvfe_dma_unmap(&d, &m2), 0);
	CHECK_EQ(f->p.ctr.grants_active, 0);
	gvfe_dma_dev_destroy(&d);
	/* a new device never gets the leaked ref back */
	CHECK_EQ(gvfe_dma_dev_init(&d, &f->p, 0, GVFE_DMA_GRANT, 0), 0);
	for (int i = 0; i < 50; i++) {
		grant_ref_t r;

		CHECK_EQ(gvfe_dma_map(&d, buf, sizeof(buf), GVFE_DMA_TO_DEVICE, &m, segs, MAXSEG, &n), 0);
		CHECK_EQ(gv_dma_to_grant(segs[0].addr, &r, &off), 0);
		CHECK(r != leaked_ref && r != leaked_ref + 1);
		CHECK_EQ(gvfe_dma_unmap(&d, &m), 0);
	}
	gvfe_dma_dev_destroy(&d);
	fake_free(f);
	return 0;
}

static int t_bypass(void)
{
	struct fake_plat *f = fake_new(false);
	struct gvfe_dma_dev d;
	struct gvfe_dma_map m;
	uint8_t buf[10000];
	grant_ref_t r;
	uint32_t off;
	unsigned n;

	CHECK_EQ(gvfe_dma_dev_init(&d, &f->p, 0, GVFE_DMA_BYPASS, 0), 0);
	CHECK_EQ(f->p.ctr.grants_active, 0);
	CHECK_EQ(gvfe_dma_map(&d, buf, sizeof(buf), GVFE_DMA_TO_DEVICE, &m, segs, MAXSEG, &n), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(segs[0].addr, (uint64_t)(uintptr_t)buf);
	/* no grant bit: nothing a Xen backend can map */
	CHECK_EQ(gv_dma_to_grant(segs[0].addr, &r, &off), -EINVAL);
	CHECK_EQ(f->p.ctr.grants_active, 0);
	CHECK_EQ(gvfe_dma_unmap(&d, &m), 0);
	gvfe_dma_dev_destroy(&d);
	fake_free(f);
	return 0;
}

static int t_coherent(void)
{
	struct fake_plat *f = fake_new(true);
	struct gvfe_dma_dev d;
	struct gvfe_dma_coherent ro, rw;

	CHECK_EQ(gvfe_dma_dev_init(&d, &f->p, 0, GVFE_DMA_GRANT, 0), 0);
	CHECK_EQ(gvfe_dma_alloc_coherent(&d, 3 * GV_PAGE_SIZE + 1, true, &ro), 0);
	CHECK_EQ(gvfe_dma_alloc_coherent(&d, 100, false, &rw), 0);
	CHECK_EQ(ro.npages, 4);
	CHECK_EQ(f->p.ctr.grants_active, 5);
	CHECK(f->region[0].flags & GV_GRANT_READONLY);
	CHECK(!(f->region[1].flags & GV_GRANT_READONLY));
	((uint8_t *)ro.cpu)[2 * GV_PAGE_SIZE + 5] = 0x5a;
	CHECK_EQ(*fake_dma_byte(f, gvfe_dma_coherent_addr(&d, &ro, 2 * GV_PAGE_SIZE + 5), 0), 0x5a);
	/* a failed allocation leaves nothing */
	f->fail_alloc_after = 0;
	{
		struct gvfe_dma_coherent failed;

		CHECK_EQ(gvfe_dma_alloc_coherent(&d, 100, false, &failed), -ENOSPC);
		CHECK(failed.refs == NULL && failed.npages == 0);
		CHECK_EQ(f->p.ctr.grants_active, 5);
	}
	f->fail_alloc_after = -1;
	CHECK_EQ(gvfe_dma_free_coherent(&d, &ro), 0);
	CHECK_EQ(f->p.ctr.grants_active, 1);
	CHECK_EQ(gvfe_dma_free_coherent(&d, &rw), 0);
	CHECK_EQ(f->p.ctr.grants_active, 0);
	gvfe_dma_dev_destroy(&d);
	fake_free(f);
	return 0;
}

static int t_strategy_names(void)
{
	enum gvfe_dma_strategy s;

	CHECK_EQ(gvfe_dma_strategy_parse("pool", &s), 0);
	CHECK_EQ(s, GVFE_DMA_POOL);
	CHECK(!strcmp(gvfe_dma_strategy_name(GVFE_DMA_BYPASS), "bypass"));
	CHECK_EQ(gvfe_dma_strategy_parse("swiotlb", &s), -EINVAL);
	return 0;
}

static const struct gv_test tests[] = {
	TEST(t_segs_from_refs),
	TEST(t_bounce_roundtrip),
	TEST(t_grant_roundtrip),
	TEST(t_grant_budget),
	TEST(t_directions),
	TEST(t_pool_exhaustion),
	TEST(t_pool_slots_model),
	TEST(t_pool_zero_copy),
	TEST(t_grant_leak_on_ebusy),
	TEST(t_bypass),
	TEST(t_coherent),
	TEST(t_strategy_names),
	{ 0 }
};

int main(int argc, char **argv)
{
	return gv_test_main(argc, argv, tests);
}
