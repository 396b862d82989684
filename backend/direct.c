/*
 * backend/direct.c: the bench-only "direct" mode of gv-backend (--bench-direct),
 * the upper bound that `make bench` compares every grant row against.
 *
 * Under KVM, a vhost-user backend maps all of guest memory once and turns a
 * descriptor address into a pointer with one table lookup; it never asks
 * the hypervisor anything per request. This file gives the same virtqueue
 * and virtio-blk code that shape: each page of the guest's persistent pool
 * is mapped once, on first touch, and kept for the device's life in a flat
 * table indexed by grant reference, so the per-request path does no map,
 * no unmap, no cache bookkeeping, no hypervisor call. First touches happen
 * during the benchmark's warm-up pass and are not measured.
 *
 * This throws away Xen's isolation on purpose (nothing is ever unmapped, no
 * bound on what stays mapped), so it is refused on real Xen (gv-backend
 * checks the platform) and only offered to drivers with a persistent pool,
 * whose grants stay valid while connected.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"

/* The table grows to the highest ref touched; the simulated grant table is
 * far smaller than this, so the bound is never what stops a real run. */
#define DIRECT_MAX_REFS (1u << 20)


/* First touches map an aligned block of refs around the page in one call,
 * largest first, so that a buffer of consecutive refs is contiguous here
 * (one iovec for pread/pwrite, as the pool row's batched maps give it);
 * a block holding refs not granted to us (or read-only, for a writable
 * map) fails as a whole and a smaller one is tried, down to one page. */
static const unsigned block_sizes[] = { 1024, 256, 64, 16, 4, 1 };

struct direct_block {
	void *addr;
	unsigned count;
	struct direct_block *next;
};

struct gvbe_direct {
	struct gv_platform *p;
	domid_t from;
	unsigned nrefs;                 /* entries of ro[] and rw[] */
	void **ro, **rw;                /* page of ref, mapped read-only / writable */
	struct direct_block *blocks;    /* every mapping, to unmap at the end */
};

int gvbe_direct_create(struct gv_platform *p, domid_t from, struct gvbe_direct **out)
{
	struct gvbe_direct *dt = calloc(1, sizeof(*dt));

	if (!dt)
		return -ENOMEM;
	dt->p = p;
	dt->from = from;
	*out = dt;
	return 0;
}

void gvbe_direct_destroy(struct gvbe_direct *dt)
{
	if (!dt)
		return;
	while (dt->blocks) {
		struct direct_block *b = dt->blocks;

		dt->blocks = b->next;
		gv_unmap(dt->p, b->addr, b->count);
		free(b);
	}
	free(dt->ro);
	free(dt->rw);
	free(dt);
}

static int grow(struct gvbe_direct *dt, grant_ref_t last)
{
	unsigned n = dt->nrefs ? dt->nrefs : 1024;
	void **ro, **rw;

	while (n <= last)
		n *= 2;
	ro = realloc(dt->ro, n * sizeof(*ro));
	if (!ro)
		return -ENOMEM;
	dt->ro = ro;
	rw = realloc(dt->rw, n * sizeof(*rw));
	if (!rw)
		return -ENOMEM;
	dt->rw = rw;
	memset(dt->ro + dt->nrefs, 0, (n - dt->nrefs) * sizeof(*ro));
	memset(dt->rw + dt->nrefs, 0, (n - dt->nrefs) * sizeof(*rw));
	dt->nrefs = n;
	return 0;
}

/* Maps the largest aligned block around ref whose pages are all unmapped
 * here in that mode; fills the table. */
static void map_block(struct gvbe_direct *dt, grant_ref_t ref, bool write)
{
	void **tab = write ? dt->rw : dt->ro;
	grant_ref_t refs[1024];

	for (unsigned b = 0; b < sizeof(block_sizes) / sizeof(block_sizes[0]); b++) {
		unsigned n = block_sizes[b], k;
		grant_ref_t first = ref / n * n;
		struct direct_block *blk;
		void *addr;

		if (first + n > dt->nrefs && grow(dt, first + n - 1) < 0)
			return;
		tab = write ? dt->rw : dt->ro;
		for (k = 0; k < n && !tab[first + k]; k++)
			refs[k] = first + k;
		if (k < n)
			continue;       /* part of it is mapped already: a smaller block */
		if (gv_map(dt->p, dt->from, n, refs, write ? GV_MAP_WRITE : 0, NULL, &addr) < 0)
			continue;
		blk = malloc(sizeof(*blk));
		if (!blk) {
			gv_unmap(dt->p, addr, n);
			return;
		}
		blk->addr = addr;
		blk->count = n;
		blk->next = dt->blocks;
		dt->blocks = blk;
		for (k = 0; k < n; k++)
			tab[first + k] = (char *)addr + (size_t)k * GV_PAGE_SIZE;
		return;
	}
}

/* Slow path: the first touch of a page maps it, writable if the grant
 * allows (then it serves reads too), else read-only. */
static void *first_touch(struct gvbe_direct *dt, grant_ref_t ref, bool write)
{
	if (ref >= DIRECT_MAX_REFS)
		return NULL;
	if (ref >= dt->nrefs || !dt->rw[ref])
		map_block(dt, ref, true);
	if (ref < dt->nrefs && dt->rw[ref])
		return dt->rw[ref];
	if (write)
		return NULL;
	if (!dt->ro[ref])
		map_block(dt, ref, false);
	return ref < dt->nrefs ? dt->ro[ref] : NULL;
}

void *gvbe_direct_page(struct gvbe_direct *dt, grant_ref_t ref, bool write)
{
	if (ref < dt->nrefs) {
		if (dt->rw[ref])
			return dt->rw[ref];
		if (!write && dt->ro[ref])
			return dt->ro[ref];
	}
	return first_touch(dt, ref, write);
}
