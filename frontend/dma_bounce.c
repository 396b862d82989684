/*
 * frontend/dma_bounce.c: the bounce strategy, as swiotlb-xen does it.
 *
 * A pool of pages is granted (writable) to the backend once, when the device
 * is set up (dma.c); a mapping takes a run of 512-byte slots from it, copies
 * the data in for TO_DEVICE/BIDIRECTIONAL, and unmap copies it out for
 * FROM_DEVICE/BIDIRECTIONAL. No grant operation on the data path, and the
 * backend may keep the pool mapped (persistent-pool = 1).
 */
#include <string.h>
#include "dma.h"

int gvfe_dma_bounce_map_common(struct gvfe_dma_dev *d, void *buf, size_t len, enum gvfe_dma_dir dir,
                               struct gvfe_dma_map *m, struct gvfe_dma_seg *segs, unsigned max_segs,
                             unsigned *nsegs)
{
	size_t off;
	int rc;

	rc = gvfe_dma_slot_alloc(&d->pool, len, &m->slot, &m->nslots);
	if (rc < 0)
		return rc;
	off = (size_t)m->slot << GVFE_DMA_SLOT_SHIFT;
	rc = gvfe_dma_segs_from_refs(d->pool.refs, off, len, d->max_seg_len, segs, max_segs, nsegs);
	if (rc < 0) {
		gvfe_dma_slot_free(&d->pool, m->slot, m->nslots);
		m->nslots = 0;
		return rc;
	}
	m->dev_cpu = d->pool.base + off;
	m->bounced = true;
	if (dir & GVFE_DMA_TO_DEVICE) {
		memcpy(m->dev_cpu, buf, len);
		d->stats.bytes_copied_in += len;
	}
	return 0;
}

static int bounce_map(struct gvfe_dma_dev *d, void *buf, size_t len, enum gvfe_dma_dir dir,
                      struct gvfe_dma_map *m, struct gvfe_dma_seg *segs, unsigned max_segs,
                      unsigned *nsegs)
{
	return gvfe_dma_bounce_map_common(d, buf, len, dir, m, segs, max_segs, nsegs);
}

int gvfe_dma_bounce_unmap_common(struct gvfe_dma_dev *d, struct gvfe_dma_map *m)
{
	if (m->bounced && (m->dir & GVFE_DMA_FROM_DEVICE)) {
		memcpy(m->cpu, m->dev_cpu, m->len);
		d->stats.bytes_copied_out += m->len;
	}
	if (m->nslots)
		gvfe_dma_slot_free(&d->pool, m->slot, m->nslots);
	m->nslots = 0;
	m->dev_cpu = NULL;
	return 0;
}

static int bounce_unmap(struct gvfe_dma_dev *d, struct gvfe_dma_map *m)
{
	return gvfe_dma_bounce_unmap_common(d, m);
}

const struct gvfe_dma_ops gvfe_dma_bounce_ops = {
	.name = "bounce",
	.persistent = true,
	.access_platform = true,
	.pool_buffers = false,   /* in-pool buffers are still copied (slots of their own) */
	.map = bounce_map,
	.unmap = bounce_unmap,
};
