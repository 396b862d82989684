/*
 * frontend/dma_bypass.c: the driver that skips the DMA API (no
 * VIRTIO_F_ACCESS_PLATFORM), kept only to show what fails under Xen.
 *
 * Descriptors get the buffer's own address as its pretend guest-physical
 * address (bit 63 clear, no grant). A Xen backend can reach only memory the
 * guest granted to it, so it refuses the driver at negotiation, or breaks
 * the device on the first such descriptor (docs/transport.md, Bypass).
 */
#include "dma.h"

static int bypass_map(struct gvfe_dma_dev *d, void *buf, size_t len, enum gvfe_dma_dir dir,
                      struct gvfe_dma_map *m, struct gvfe_dma_seg *segs, unsigned max_segs,
                      unsigned *nsegs)
{
	uint64_t addr = (uint64_t)(uintptr_t)buf;
	uint32_t max = d->max_seg_len ? d->max_seg_len : UINT32_MAX;
	unsigned n = 0;

	(void)dir;
	while (len) {
		uint32_t take = len < max ? (uint32_t)len : max;

		if (n == max_segs)
			return -E2BIG;
		segs[n].addr = addr;
		segs[n++].len = take;
		addr += take;
		len -= take;
	}
	*nsegs = n;
	m->dev_cpu = buf;
	return 0;
}

static int bypass_unmap(struct gvfe_dma_dev *d, struct gvfe_dma_map *m)
{
	(void)d;
	m->dev_cpu = NULL;
	return 0;
}

/* Coherent memory too gets its pretend guest-physical address. */
static uint64_t bypass_coherent_addr(struct gvfe_dma_dev *d, const struct gvfe_dma_coherent *c,
                                     size_t off)
{
	(void)d;
	return (uint64_t)(uintptr_t)((uint8_t *)c->cpu + off);
}

const struct gvfe_dma_ops gvfe_dma_bypass_ops = {
	.name = "bypass",
	.persistent = false,
	.access_platform = false,   /* the point of it: a legacy driver's physical addresses */
	.pool_buffers = false,
	.map = bypass_map,
	.unmap = bypass_unmap,
	.coherent_addr = bypass_coherent_addr,
};
