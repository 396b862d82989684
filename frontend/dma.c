/*
 * frontend/dma.c: the strategy-independent part of the guest's DMA API:
 * the strategy's ops chosen by name, dispatch to them, coherent
 * allocations, the persistent pool's set-up and its zero-copy buffers. What
 * the strategies themselves share (slot allocator, grant-contiguous
 * segments, the broken mark) is in dma_common.c, so a strategy never calls
 * back into this file that called it.
 */
#include <stdlib.h>
#include <string.h>
#include "abi.h"
#include "dma.h"
#include "dma_addr.h"
#include "log.h"

static const char *const strategy_names[] = {
	[GVFE_DMA_BOUNCE] = "bounce",
	[GVFE_DMA_GRANT] = "grant",
	[GVFE_DMA_POOL] = "pool",
	[GVFE_DMA_BYPASS] = "bypass",
};

const char *gvfe_dma_strategy_name(enum gvfe_dma_strategy s)
{
	return (unsigned)s < sizeof(strategy_names) / sizeof(strategy_names[0]) ?
		strategy_names[s] : "unknown";
}

int gvfe_dma_strategy_parse(const char *name, enum gvfe_dma_strategy *s)
{
	for (unsigned i = 0; i < sizeof(strategy_names) / sizeof(strategy_names[0]); i++) {
		if (name && !strcmp(name, strategy_names[i])) {
			*s = (enum gvfe_dma_strategy)i;
			return 0;
		}
	}
	return -EINVAL;
}

static int pool_init(struct gvfe_dma_dev *d, unsigned npages)
{
	struct gvfe_dma_pool *pool = &d->pool;
	void *addr;
	int rc;

	pool->refs = calloc(npages, sizeof(*pool->refs));
	pool->nslots = npages << (GV_PAGE_SHIFT - GVFE_DMA_SLOT_SHIFT);
	pool->bitmap = calloc((pool->nslots + 63) / 64, sizeof(uint64_t));
	if (!pool->refs || !pool->bitmap) {
		rc = -ENOMEM;
		goto free_arrays;
	}
	/* Writable: the same slots carry device-readable and device-writable data. */
	rc = gv_grant_alloc(d->p, d->backend, npages, 0, NULL, pool->refs, &addr);
	if (rc < 0)
		goto free_arrays;
	pool->base = addr;
	pool->npages = npages;
	pool->free_slots = pool->nslots;
	pool->hint = 0;
	return 0;

free_arrays:
	free(pool->bitmap);
	free(pool->refs);
	memset(pool, 0, sizeof(*pool));
	return rc;
}

const struct gvfe_dma_ops *gvfe_dma_ops_of(enum gvfe_dma_strategy s)
{
	static const struct gvfe_dma_ops *const ops[] = {
		[GVFE_DMA_BOUNCE] = &gvfe_dma_bounce_ops,
		[GVFE_DMA_GRANT] = &gvfe_dma_grant_ops,
		[GVFE_DMA_POOL] = &gvfe_dma_pool_ops,
		[GVFE_DMA_BYPASS] = &gvfe_dma_bypass_ops,
	};

	return (unsigned)s < sizeof(ops) / sizeof(ops[0]) ? ops[s] : NULL;
}

int gvfe_dma_dev_init(struct gvfe_dma_dev *d, struct gv_platform *p, domid_t backend,
                      enum gvfe_dma_strategy s, unsigned pool_pages)
{
	const struct gvfe_dma_ops *ops = gvfe_dma_ops_of(s);

	if (!ops)
		return -EINVAL;
	memset(d, 0, sizeof(*d));
	d->p = p;
	d->backend = backend;
	d->ops = ops;
	d->max_seg_len = UINT32_MAX;
	d->grant_budget = pool_pages ? pool_pages : GVFE_DMA_DEFAULT_POOL_PAGES;
	if (d->ops->persistent)
		return pool_init(d, pool_pages ? pool_pages : GVFE_DMA_DEFAULT_POOL_PAGES);
	return 0;
}

int gvfe_dma_dev_destroy(struct gvfe_dma_dev *d)
{
	struct gvfe_dma_pool *pool = &d->pool;
	int rc = 0;

	if (pool->npages) {
		rc = gv_grant_end(d->p, pool->base, pool->npages);
		if (rc == -EBUSY) {
			d->stats.pages_leaked += pool->npages;
			gvfe_dma_mark_broken(d, "the backend still maps the DMA pool; its pages are leaked");
		}
	}
	free(pool->bitmap);
	free(pool->refs);
	memset(pool, 0, sizeof(*pool));
	return rc;
}

int gvfe_dma_map(struct gvfe_dma_dev *d, void *buf, size_t len, enum gvfe_dma_dir dir,
                 struct gvfe_dma_map *m, struct gvfe_dma_seg *segs, unsigned max_segs,
               unsigned *nsegs)
{
	int rc;

	if (d->broken)
		return -EIO;
	if (!len || (dir & ~GVFE_DMA_BIDIRECTIONAL) || !dir)
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	m->cpu = buf;
	m->len = len;
	m->dir = dir;
	rc = d->ops->map(d, buf, len, dir, m, segs, max_segs, nsegs);
	if (rc == 0)
		d->stats.maps++;
	else if (rc == -EAGAIN)
		d->stats.pool_full++;
	return rc;
}

int gvfe_dma_unmap(struct gvfe_dma_dev *d, struct gvfe_dma_map *m)
{
	d->stats.unmaps++;
	return d->ops->unmap(d, m);
}

void gvfe_dma_sync_for_device(struct gvfe_dma_dev *d, struct gvfe_dma_map *m)
{
	if (m->bounced && (m->dir & GVFE_DMA_TO_DEVICE)) {
		memcpy(m->dev_cpu, m->cpu, m->len);
		d->stats.bytes_copied_in += m->len;
	}
}

void gvfe_dma_sync_for_cpu(struct gvfe_dma_dev *d, struct gvfe_dma_map *m)
{
	if (m->bounced && (m->dir & GVFE_DMA_FROM_DEVICE)) {
		memcpy(m->cpu, m->dev_cpu, m->len);
		d->stats.bytes_copied_out += m->len;
	}
}

/* ---- coherent memory ---- */

int gvfe_dma_alloc_coherent(struct gvfe_dma_dev *d, size_t size, bool readonly,
                            struct gvfe_dma_coherent *c)
{
	unsigned npages = gv_pages_for(size);
	void *addr;
	int rc;

	memset(c, 0, sizeof(*c));
	if (!npages)
		return -EINVAL;
	c->refs = calloc(npages, sizeof(*c->refs));
	if (!c->refs)
		return -ENOMEM;
	rc = gv_grant_alloc(d->p, d->backend, npages, readonly ? GV_GRANT_READONLY : 0, NULL,
	                    c->refs, &addr);
	if (rc < 0) {
		free(c->refs);
		c->refs = NULL;
		return rc;
	}
	c->cpu = addr;
	c->size = size;
	c->npages = npages;
	c->readonly = readonly;
	return 0;
}

int gvfe_dma_free_coherent(struct gvfe_dma_dev *d, struct gvfe_dma_coherent *c)
{
	int rc = 0;

	if (c->npages) {
		rc = gv_grant_end(d->p, c->cpu, c->npages);
		if (rc == -EBUSY) {
			d->stats.pages_leaked += c->npages;
			gvfe_dma_mark_broken(d, "the backend still maps coherent memory; its pages are leaked");
		}
	}
	free(c->refs);
	memset(c, 0, sizeof(*c));
	return rc;
}

uint64_t gvfe_dma_coherent_addr(struct gvfe_dma_dev *d, const struct gvfe_dma_coherent *c,
                                size_t off)
{
	if (d->ops->coherent_addr)
		return d->ops->coherent_addr(d, c, off);
	return gv_grant_to_dma(c->refs[off >> GV_PAGE_SHIFT], (uint32_t)(off & GV_PAGE_MASK));
}

/* ---- the zero-copy pool API ---- */

void *gvfe_dma_pool_alloc(struct gvfe_dma_dev *d, size_t len)
{
	uint32_t slot, nslots;
	int rc;

	if (!d->pool.npages) {
		errno = EINVAL;
		return NULL;
	}
	rc = gvfe_dma_slot_alloc(&d->pool, len, &slot, &nslots);
	if (rc < 0) {
		errno = -rc;
		return NULL;
	}
	d->user_buffers++;
	return d->pool.base + ((size_t)slot << GVFE_DMA_SLOT_SHIFT);
}

void gvfe_dma_pool_free(struct gvfe_dma_dev *d, void *buf, size_t len)
{
	size_t off;
	uint64_t n;

	if (!buf || !gvfe_dma_in_pool(&d->pool, buf, len))
		return;
	off = (size_t)((uint8_t *)buf - d->pool.base);
	n = (len + GVFE_DMA_SLOT_SIZE - 1) >> GVFE_DMA_SLOT_SHIFT;
	gvfe_dma_slot_free(&d->pool, (uint32_t)(off >> GVFE_DMA_SLOT_SHIFT), n ? (uint32_t)n : 1);
	if (d->user_buffers)
		d->user_buffers--;
}
