/*
 * backend/mapcache.c: keeps the mappings of a persistent pool (the driver
 * set persistent-pool=1: its data pages are granted once for the device's
 * life) so that a request whose pages are already mapped costs no map and
 * no unmap, as xen-blkback's persistent grants do.
 *
 * The unit kept is a mapped batch (one gv_map call), because a batch can
 * only be unmapped as a whole. A hash finds a page by grant ref; an LRU list
 * of batches picks what to evict. The capacity counts pages, so the
 * backend's mappings of one device never exceed it: memory stays bounded
 * whatever the guest does. Batches used by the request in flight are pinned
 * (generation number) and never evicted under it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "mapcache.h"

struct mc_page {
	grant_ref_t gref;
	struct mc_batch *batch;
	struct mc_page *hnext;          /* hash chain */
};

struct mc_batch {
	void *addr;
	unsigned n;
	bool write;
	uint64_t gen;                   /* last request that used it */
	struct mc_batch *prev, *next;   /* LRU: head is the most recent */
	struct mc_page page[];
};

struct gvbe_mapcache {
	struct gv_platform *p;
	domid_t from;
	unsigned capacity, pages;
	uint64_t gen;
	uint64_t floor;                 /* batches used by gen >= floor are pinned */
	struct mc_batch *lru_head, *lru_tail;
	unsigned nbuckets;              /* power of two */
	struct mc_page **bucket;
	uint64_t hits, misses, evictions;
};

static unsigned hash_ref(const struct gvbe_mapcache *mc, grant_ref_t ref)
{
	return (unsigned)((ref * 2654435761u) & (mc->nbuckets - 1));
}

int gvbe_mapcache_create(struct gv_platform *p, domid_t from, unsigned capacity,
                       struct gvbe_mapcache **out)
{
	struct gvbe_mapcache *mc = calloc(1, sizeof(*mc));

	if (!mc)
		return -ENOMEM;
	mc->p = p;
	mc->from = from;
	mc->capacity = capacity;
	mc->nbuckets = 64;
	while (mc->nbuckets < capacity)
		mc->nbuckets <<= 1;
	mc->bucket = calloc(mc->nbuckets, sizeof(*mc->bucket));
	if (!mc->bucket) {
		free(mc);
		return -ENOMEM;
	}
	*out = mc;
	return 0;
}

static void lru_unlink(struct gvbe_mapcache *mc, struct mc_batch *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		mc->lru_head = b->next;
	if (b->next)
		b->next->prev = b->prev;
	else
		mc->lru_tail = b->prev;
	b->prev = b->next = NULL;
}

static void lru_push_front(struct gvbe_mapcache *mc, struct mc_batch *b)
{
	b->prev = NULL;
	b->next = mc->lru_head;
	if (mc->lru_head)
		mc->lru_head->prev = b;
	mc->lru_head = b;
	if (!mc->lru_tail)
		mc->lru_tail = b;
}

static void batch_drop(struct gvbe_mapcache *mc, struct mc_batch *b)
{
	for (unsigned k = 0; k < b->n; k++) {
		struct mc_page **pp = &mc->bucket[hash_ref(mc, b->page[k].gref)];

		while (*pp && *pp != &b->page[k])
			pp = &(*pp)->hnext;
		if (*pp)
			*pp = b->page[k].hnext;
	}
	lru_unlink(mc, b);
	gv_unmap(mc->p, b->addr, b->n);
	mc->pages -= b->n;
	free(b);
}

void gvbe_mapcache_flush(struct gvbe_mapcache *mc)
{
	if (!mc)
		return;
	while (mc->lru_tail)
		batch_drop(mc, mc->lru_tail);
}

void gvbe_mapcache_destroy(struct gvbe_mapcache *mc)
{
	if (!mc)
		return;
	gvbe_mapcache_flush(mc);
	free(mc->bucket);
	free(mc);
}

uint64_t gvbe_mapcache_begin(struct gvbe_mapcache *mc)
{
	mc->floor = ++mc->gen;
	return mc->gen;
}

void gvbe_mapcache_set_floor(struct gvbe_mapcache *mc, uint64_t floor)
{
	mc->floor = floor;
}

void *gvbe_mapcache_lookup(struct gvbe_mapcache *mc, grant_ref_t ref, bool write)
{
	for (struct mc_page *pg = mc->bucket[hash_ref(mc, ref)]; pg; pg = pg->hnext) {
		struct mc_batch *b = pg->batch;

		/* a writable mapping serves a read too; a read-only one only reads */
		if (pg->gref != ref || (write && !b->write))
			continue;
		mc->hits++;
		b->gen = mc->gen;
		if (mc->lru_head != b) {
			lru_unlink(mc, b);
			lru_push_front(mc, b);
		}
		return (char *)b->addr + (size_t)(pg - b->page) * GV_PAGE_SIZE;
	}
	mc->misses++;
	return NULL;
}

int gvbe_mapcache_insert(struct gvbe_mapcache *mc, void *addr, const grant_ref_t *refs,
                       unsigned n, bool write)
{
	struct mc_batch *b, *victim;
	unsigned pinned = 0;

	for (b = mc->lru_head; b; b = b->next)
		if (b->gen >= mc->floor)
			pinned += b->n;
	if (n > mc->capacity || pinned > mc->capacity - n)
		return 0;
	/* evict from the cold end, skipping what the request in flight uses */
	victim = mc->lru_tail;
	while (mc->pages + n > mc->capacity && victim) {
		struct mc_batch *prev = victim->prev;

		if (victim->gen < mc->floor) {
			batch_drop(mc, victim);
			mc->evictions++;
		}
		victim = prev;
	}
	b = calloc(1, sizeof(*b) + n * sizeof(b->page[0]));
	if (!b)
		return 0;
	b->addr = addr;
	b->n = n;
	b->write = write;
	b->gen = mc->gen;
	for (unsigned k = 0; k < n; k++) {
		unsigned h = hash_ref(mc, refs[k]);

		b->page[k].gref = refs[k];
		b->page[k].batch = b;
		/* newest first: a fresh writable mapping is found before an older one */
		b->page[k].hnext = mc->bucket[h];
		mc->bucket[h] = &b->page[k];
	}
	lru_push_front(mc, b);
	mc->pages += n;
	return 1;
}

void gvbe_mapcache_get_stats(const struct gvbe_mapcache *mc, struct gvbe_mapcache_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!mc)
		return;
	st->hits = mc->hits;
	st->misses = mc->misses;
	st->evictions = mc->evictions;
	st->pages = mc->pages;
	st->capacity = mc->capacity;
}
