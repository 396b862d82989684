/*
 * frontend/dma_pool.c: the zero-copy pool strategy, as SPDK applications
 * allocate their DMA memory.
 *
 * The application allocates its I/O buffers from the persistent pool
 * (gvfe_dma_pool_alloc, public as gv_pool_alloc); mapping such a buffer is a
 * lookup of the refs under it, without a copy. A buffer from elsewhere is
 * bounced through the same pool (counted in pool_fallbacks) rather than
 * refused, so a caller that mixes buffers still works, only slower.
 */
#include "dma.h"

static int pool_map(struct gvfe_dma_dev *d, void *buf, size_t len, enum gvfe_dma_dir dir,
                    struct gvfe_dma_map *m, struct gvfe_dma_seg *segs, unsigned max_segs,
                    unsigned *nsegs)
{
	size_t off;
	int rc;

	if (!gvfe_dma_in_pool(&d->pool, buf, len)) {
		rc = gvfe_dma_bounce_map_common(d, buf, len, dir, m, segs, max_segs, nsegs);
		if (rc == 0)
			d->stats.pool_fallbacks++;
		return rc;
	}
	off = (size_t)((uint8_t *)buf - d->pool.base);
	rc = gvfe_dma_segs_from_refs(d->pool.refs, off, len, d->max_seg_len, segs, max_segs, nsegs);
	if (rc < 0)
		return rc;
	m->dev_cpu = buf;           /* the device works on the caller's memory */
	return 0;
}

static int pool_unmap(struct gvfe_dma_dev *d, struct gvfe_dma_map *m)
{
	/* Zero copy: nothing to copy back, the slots belong to the application. */
	return gvfe_dma_bounce_unmap_common(d, m);
}

const struct gvfe_dma_ops gvfe_dma_pool_ops = {
	.name = "pool",
	.persistent = true,
	.access_platform = true,
	.pool_buffers = true,
	.map = pool_map,
	.unmap = pool_unmap,
};
