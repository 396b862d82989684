/*
 * frontend/dma_grant.c: the grant strategy, as drivers/xen/grant-dma-ops.c
 * does it: every mapping gets its own grants, ended at unmap.
 *
 * The kernel grants the caller's own pages. User space cannot: gntalloc
 * (and the simulated platform) only grant pages they allocate, so each
 * mapping allocates fresh pages granted to the backend (read-only for
 * TO_DEVICE), copies the data in, and unmap copies it out and ends the
 * grants. If ending fails with -EBUSY the backend still maps a page: the
 * platform leaks those pages on purpose and never reuses their refs, and
 * this layer marks the device broken and never touches that memory again
 * (as grant-dma-ops: "Grant still in use by backend domain, disabled for
 * further use").
 *
 * The pages granted at once are bounded by d->grant_budget: a guest kernel
 * limits what gntalloc may grant (1024 pages by default in Linux), and a
 * queue full of large requests would pass it. Over the budget, map answers
 * -EAGAIN (room comes back with completions), as a full bounce pool does.
 */
#include <stdlib.h>
#include <string.h>
#include "dma.h"

static int grant_map(struct gvfe_dma_dev *d, void *buf, size_t len, enum gvfe_dma_dir dir,
                     struct gvfe_dma_map *m, struct gvfe_dma_seg *segs, unsigned max_segs,
                     unsigned *nsegs)
{
	unsigned npages = gv_pages_for(len);
	grant_ref_t stack_refs[64], *refs = stack_refs;
	void *addr;
	int rc;

	if (npages > d->grant_budget)
		return -ENOMEM;            /* can never fit: the caller splits */
	if (d->grant_pages_out + npages > d->grant_budget)
		return -EAGAIN;
	if (npages > 64) {
		refs = malloc(npages * sizeof(*refs));
		if (!refs)
			return -ENOMEM;
	}
	rc = gv_grant_alloc(d->p, d->backend, npages,
	                    dir == GVFE_DMA_TO_DEVICE ? GV_GRANT_READONLY : 0, NULL, refs, &addr);
	if (rc == -ENOSPC)
		rc = -EAGAIN;              /* the platform's own limit: wait for completions */
	if (rc < 0)
		goto free_refs;
	rc = gvfe_dma_segs_from_refs(refs, 0, len, d->max_seg_len, segs, max_segs, nsegs);
	if (rc < 0) {
		/* The backend never saw these refs: ending cannot be refused. */
		gv_grant_end(d->p, addr, npages);
		goto free_refs;
	}
	m->dev_cpu = addr;
	m->npages = npages;
	d->grant_pages_out += npages;
	m->bounced = true;
	if (dir & GVFE_DMA_TO_DEVICE) {
		memcpy(m->dev_cpu, buf, len);
		d->stats.bytes_copied_in += len;
	}
free_refs:
	if (refs != stack_refs)
		free(refs);
	return rc;
}

static int grant_unmap(struct gvfe_dma_dev *d, struct gvfe_dma_map *m)
{
	int rc;

	if (!m->npages)
		return 0;
	if (m->dir & GVFE_DMA_FROM_DEVICE) {
		memcpy(m->cpu, m->dev_cpu, m->len);
		d->stats.bytes_copied_out += m->len;
	}
	rc = gv_grant_end(d->p, m->dev_cpu, m->npages);
	/* Leaked pages leave the budget too: gntalloc stops counting a gref
	 * once it is deallocated, even when the kernel defers its end. */
	d->grant_pages_out -= m->npages;
	if (rc == -EBUSY) {
		d->stats.pages_leaked += m->npages;
		gvfe_dma_mark_broken(d, "grant still in use by the backend; "
		                     "its pages are leaked and never reused");
	}
	/* Either way the pages are gone from here: never touch them again. */
	m->dev_cpu = NULL;
	m->npages = 0;
	return rc;
}

const struct gvfe_dma_ops gvfe_dma_grant_ops = {
	.name = "grant",
	.persistent = false,
	.access_platform = true,
	.pool_buffers = false,
	.map = grant_map,
	.unmap = grant_unmap,
};
