/*
 * test/test_fe_fake.h: a tiny fake gv_platform for the frontend's unit tests
 * (test_dma, test_virtqueue) only: grant_alloc hands out mmap'd pages and
 * refs from a table, so a test can play the backend by resolving refs.
 *
 * Switches: scatter (refs come in runs of two with gaps, as real Xen may
 * hand them out), and a per-region "peer still maps it" flag that makes
 * grant_end answer -EBUSY. Ended regions are mprotect'ed PROT_NONE and
 * their refs never reused, so a layer that touches leaked memory crashes
 * the test.
 */
#ifndef GV_TEST_FE_FAKE_H
#define GV_TEST_FE_FAKE_H

#include <string.h>
#include <sys/mman.h>
#include "platform.h"
#include "dma_addr.h"

#define FAKE_MAX_REFS    65536u
#define FAKE_MAX_REGIONS 4096u

struct fake_region {
	uint8_t *addr;
	unsigned count;
	unsigned flags;
	bool peer_maps;             /* grant_end answers -EBUSY */
	bool ended;
};

struct fake_plat {
	struct gv_platform p;
	bool scatter;
	grant_ref_t next_ref;
	uint8_t *ref_page[FAKE_MAX_REFS];     /* NULL: never granted or ended */
	int ref_region[FAKE_MAX_REFS];
	struct fake_region region[FAKE_MAX_REGIONS];
	unsigned nregions;
	unsigned notifies[16];
	int fail_alloc_after;       /* >= 0: grant_alloc fails after this many */
};

static inline struct fake_plat *fake_of(struct gv_platform *p)
{
	return (struct fake_plat *)p;
}

static int fake_grant_alloc(struct gv_platform *p, domid_t to, unsigned count, unsigned flags,
                            const struct gv_notify *n, grant_ref_t *refs, void **addr)
{
	struct fake_plat *f = fake_of(p);
	struct fake_region *r;
	uint8_t *mem;

	(void)to;
	(void)n;
	if (f->fail_alloc_after == 0)
		return -ENOSPC;
	if (f->fail_alloc_after > 0)
		f->fail_alloc_after--;
	if (!count || f->nregions == FAKE_MAX_REGIONS || f->next_ref + 2 * count >= FAKE_MAX_REFS)
		return -ENOSPC;
	mem = mmap(NULL, (size_t)count * GV_PAGE_SIZE, PROT_READ | PROT_WRITE,
	           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return -ENOMEM;
	r = &f->region[f->nregions];
	r->addr = mem;
	r->count = count;
	r->flags = flags;
	for (unsigned i = 0; i < count; i++) {
		/* scatter: 0 1 _ 3 4 _ 6 7 ...: runs of two, then a gap */
		if (f->scatter && i && !(i % 2))
			f->next_ref++;
		refs[i] = f->next_ref++;
		f->ref_page[refs[i]] = mem + (size_t)i * GV_PAGE_SIZE;
		f->ref_region[refs[i]] = (int)f->nregions;
	}
	f->nregions++;
	p->ctr.grants_active += count;
	*addr = mem;
	return 0;
}

static int fake_grant_end(struct gv_platform *p, void *addr, unsigned count)
{
	struct fake_plat *f = fake_of(p);

	for (unsigned k = 0; k < f->nregions; k++) {
		struct fake_region *r = &f->region[k];

		if (r->addr != addr || r->ended || r->count != count)
			continue;
		r->ended = true;
		for (unsigned i = 0; i < FAKE_MAX_REFS; i++)
			if (f->ref_page[i] && f->ref_region[i] == (int)k)
				f->ref_page[i] = NULL;
		p->ctr.grants_active -= count;
		/* Never unmapped: a later touch faults instead of reusing it. */
		mprotect(addr, (size_t)count * GV_PAGE_SIZE, PROT_NONE);
		if (r->peer_maps) {
			p->ctr.grants_leaked += count;
			return -EBUSY;
		}
		return 0;
	}
	return -EINVAL;
}

static int fake_notify(struct gv_platform *p, evtchn_port_t port)
{
	if (port < 16)
		fake_of(p)->notifies[port]++;
	return 0;
}

static const struct gv_platform_ops fake_ops = {
	.name = "fake",
	.grant_alloc = fake_grant_alloc,
	.grant_end = fake_grant_end,
	.evtchn_notify = fake_notify,
};

static inline struct fake_plat *fake_new(bool scatter)
{
	struct fake_plat *f = calloc(1, sizeof(*f));

	f->p.ops = &fake_ops;
	f->p.domid = 1;
	f->scatter = scatter;
	f->next_ref = 8;            /* as Linux: the first refs are reserved */
	f->fail_alloc_after = -1;
	return f;
}

static inline void fake_free(struct fake_plat *f)
{
	for (unsigned k = 0; k < f->nregions; k++)
		munmap(f->region[k].addr, (size_t)f->region[k].count * GV_PAGE_SIZE);
	free(f);
}

/* The backend's view: the byte at a grant DMA address plus i, following the
 * grant-dma-ops contiguity rule (page k of a run is ref + k). NULL when the
 * address does not carry a granted ref. */
static inline uint8_t *fake_dma_byte(struct fake_plat *f, uint64_t dma, size_t i)
{
	grant_ref_t ref;
	uint32_t off;

	if (gv_dma_to_grant(dma, &ref, &off))
		return NULL;
	ref += (grant_ref_t)((off + i) >> GV_PAGE_SHIFT);
	if (ref >= FAKE_MAX_REFS || !f->ref_page[ref])
		return NULL;
	return f->ref_page[ref] + ((off + i) & GV_PAGE_MASK);
}

static inline struct fake_region *fake_region_of_dma(struct fake_plat *f, uint64_t dma)
{
	grant_ref_t ref;
	uint32_t off;

	if (gv_dma_to_grant(dma, &ref, &off) || ref >= FAKE_MAX_REFS || !f->ref_page[ref])
		return NULL;
	return &f->region[f->ref_region[ref]];
}

#endif
