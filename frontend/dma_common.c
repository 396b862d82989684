/*
 * frontend/dma_common.c: what every DMA strategy (dma_*.c) and dma.c share:
 * the persistent pool's slot allocator (512-byte slots, a bitmap, first fit
 * from a rotating hint), the one function that turns a byte range of
 * granted pages into grant-contiguous segments, and the sticky broken mark.
 */
#include <stdlib.h>
#include <string.h>
#include "abi.h"
#include "dma.h"
#include "dma_addr.h"
#include "log.h"

void gvfe_dma_mark_broken(struct gvfe_dma_dev *d, const char *why)
{
	if (d->broken)
		return;
	d->broken = true;
	gv_err("dma (%s): device broken: %s", d->ops->name, why);
}

int gvfe_dma_segs_from_refs(const grant_ref_t *refs, size_t off, size_t len, uint32_t max_seg_len,
                            struct gvfe_dma_seg *segs, unsigned max_segs, unsigned *nsegs)
{
	unsigned n = 0;

	if (!max_seg_len)
		max_seg_len = UINT32_MAX;
	while (len) {
		size_t page = off >> GV_PAGE_SHIFT;
		grant_ref_t first = refs[page];
		uint32_t run = 0;

		if (n == max_segs)
			return -E2BIG;
		segs[n].addr = gv_grant_to_dma(first, (uint32_t)(off & GV_PAGE_MASK));
		/* Extend page by page while the next page's ref is the next ref
		 * (the backend addresses page k of a segment as ref + k). */
		for (;;) {
			size_t in_page = GV_PAGE_SIZE - (off & GV_PAGE_MASK);
			size_t take = len < in_page ? len : in_page;

			if (take > max_seg_len - run)
				take = max_seg_len - run;
			run += (uint32_t)take;
			off += take;
			len -= take;
			if (!len || run == max_seg_len || (off & GV_PAGE_MASK))
				break;
			if (refs[off >> GV_PAGE_SHIFT] != first + (grant_ref_t)((off >> GV_PAGE_SHIFT) - page))
				break;
		}
		segs[n++].len = run;
	}
	*nsegs = n;
	return 0;
}

/* ---- the persistent pool and its slot bitmap ---- */

static bool slot_used(const struct gvfe_dma_pool *pool, uint32_t i)
{
	return pool->bitmap[i / 64] >> (i % 64) & 1;
}

/* A word at a time: a 1 MiB bounce is 2048 slots, and setting them bit by
 * bit was a tenth of the guest's CPU per request (perf, make bench). */
static void slots_set(struct gvfe_dma_pool *pool, uint32_t first, uint32_t n, bool used)
{
	uint32_t i = first, end = first + n;

	while (i < end) {
		uint32_t bit = i % 64, take = 64 - bit;
		uint64_t mask;

		if (take > end - i)
			take = end - i;
		mask = take == 64 ? ~0ULL : ((1ULL << take) - 1) << bit;
		if (used)
			pool->bitmap[i / 64] |= mask;
		else
			pool->bitmap[i / 64] &= ~mask;
		i += take;
	}
}

int gvfe_dma_slot_alloc(struct gvfe_dma_pool *pool, size_t len, uint32_t *slot, uint32_t *nslots)
{
	uint64_t want64 = (len + GVFE_DMA_SLOT_SIZE - 1) >> GVFE_DMA_SLOT_SHIFT;
	uint32_t want, start, i, run = 0;

	if (!want64)
		want64 = 1;
	if (want64 > pool->nslots)
		return -ENOMEM;          /* can never fit: waiting would not help */
	want = (uint32_t)want64;
	if (want > pool->free_slots)
		return -EAGAIN;
	/* First fit from the hint, wrapping once; a run may not wrap. */
	start = pool->hint < pool->nslots ? pool->hint : 0;
	i = start;
	for (uint32_t scanned = 0; scanned < pool->nslots + want; scanned++) {
		if (i == pool->nslots) {
			i = 0;
			run = 0;
		}
		if (!(i % 64) && pool->bitmap[i / 64] == ~0ULL && i + 64 <= pool->nslots) {
			/* a full word: skip it whole */
			run = 0;
			i += 64;
			scanned += 63;
			continue;
		}
		if (!(i % 64) && !pool->bitmap[i / 64] && i + 64 <= pool->nslots && run + 64 < want) {
			/* an empty word that does not complete the run: take it whole */
			run += 64;
			i += 64;
			scanned += 63;
			continue;
		}
		if (slot_used(pool, i)) {
			run = 0;
		} else if (++run == want) {
			uint32_t first = i + 1 - want;

			slots_set(pool, first, want, true);
			pool->free_slots -= want;
			pool->hint = first + want;
			*slot = first;
			*nslots = want;
			return 0;
		}
		i++;
	}
	return -EAGAIN;                  /* fragmented: completions will free runs */
}

void gvfe_dma_slot_free(struct gvfe_dma_pool *pool, uint32_t slot, uint32_t nslots)
{
	slots_set(pool, slot, nslots, false);
	pool->free_slots += nslots;
}

bool gvfe_dma_in_pool(const struct gvfe_dma_pool *pool, const void *buf, size_t len)
{
	uintptr_t b = (uintptr_t)buf, base = (uintptr_t)pool->base;
	size_t size = (size_t)pool->npages << GV_PAGE_SHIFT;

	return pool->npages && b >= base && b - base <= size && len <= size - (b - base);
}
