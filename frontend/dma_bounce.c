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

int gv_dma_bounce_map_common(struct gv_dma_dev *d, void *buf, size_t len, enum gv_dma_dir dir,
                             struct gv_dma_map *m, struct gv_dma_seg *segs, unsigned max_segs,
                             unsigned *nsegs)
{
	size_t off;
	int rc;

	rc = gv_dma_slot_alloc(&d->pool, len, &m->slot, &m->nslots);
	if (rc < 0)
		return rc;
	off = (size_t)m->slot << GV_DMA_SLOT_SHIFT;
	rc = gv_dma_segs_from_refs(d->pool.refs, off, len, d->max_seg_len, segs, max_segs, nsegs);
	if (rc < 0) {
		gv_dma_slot_free(&d->pool, m->slot, m->nslots);
		m->nslots = 0;
		return rc;
	}
	m->dev_cpu = d->pool.base + off;
	m->bounced = true;
	if (dir & GV_DMA_TO_DEVICE) {
		memcpy(m->dev_cpu, buf, len);
		d->stats.bytes_copied_in += len;
	}
	return 0;
}

static int bounce_map(struct gv_dma_dev *d, void *buf, size_t len, enum gv_dma_dir dir,
                      struct gv_dma_map *m, struct gv_dma_seg *segs, unsigned max_segs,
                      unsigned *nsegs)
{
	return gv_dma_bounce_map_common(d, buf, len, dir, m, segs, max_segs, nsegs);
}

int gv_dma_bounce_unmap_common(struct gv_dma_dev *d, struct gv_dma_map *m)
{
	if (m->bounced && (m->dir & GV_DMA_FROM_DEVICE)) {
		memcpy(m->cpu, m->dev_cpu, m->len);
		d->stats.bytes_copied_out += m->len;
	}
	if (m->nslots)
		gv_dma_slot_free(&d->pool, m->slot, m->nslots);
	m->nslots = 0;
	m->dev_cpu = NULL;
	return 0;
}

static int bounce_unmap(struct gv_dma_dev *d, struct gv_dma_map *m)
{
	return gv_dma_bounce_unmap_common(d, m);
}

const struct gv_dma_ops gv_dma_bounce_ops = {
	.name = "bounce",
	.persistent = true,
	.map = bounce_map,
	.unmap = bounce_unmap,
};
