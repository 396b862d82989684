// SPDX-License-Identifier: GPL-2.0
/*
 * frontend/linux/gvk_dma.c: DMA ops whose addresses are grants.
 *
 *   grant   every mapping grants its pages to the backend on consecutive refs
 *           (gnttab_alloc_grant_reference_seq) and ends them on unmap. A grant
 *           the backend still maps cannot be ended: it is counted as leaked
 *           and handed to gnttab_end_foreign_access(), which keeps the ref
 *           (and a reference to the page) until the backend lets go, so the
 *           ref is never reused while mapped.
 *   bounce  a pool granted once at probe on consecutive refs, published as a
 *           persistent pool; mappings are copies into it (swiotlb style).
 *   both    coherent allocations (the rings) are pages granted on consecutive
 *           refs, as in grant.
 */
#include <linux/dma-map-ops.h>
#include <linux/mm.h>
#include <linux/bitmap.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <xen/page.h>
#include "gvk.h"

static unsigned int pool_kb = 4096;
module_param(pool_kb, uint, 0444);
MODULE_PARM_DESC(pool_kb, "bounce strategy: pool size per device in KiB (granted once; default 4096)");

static inline struct gvk_dev *to_gd(struct device *dev)
{
	return dev_get_drvdata(dev);
}

/* Grants NR pages starting at PAGE (physically contiguous) on consecutive refs. */
int gvk_grant_pages(struct gvk_dev *gd, struct page *page, unsigned int nr, bool readonly,
                    grant_ref_t *first)
{
	grant_ref_t ref;
	unsigned int i;
	int rc;

	rc = gnttab_alloc_grant_reference_seq(nr, &ref);
	if (rc < 0)
		return rc;
	for (i = 0; i < nr; i++) {
		rc = xa_err(xa_store(&gd->pages, ref + i, page + i, GFP_ATOMIC));
		if (rc < 0) {
			while (i--)
				xa_erase(&gd->pages, ref + i);
			gnttab_free_grant_reference_seq(ref, nr);
			return rc;
		}
		gnttab_grant_foreign_access_ref(ref + i, gd->be_domid, xen_page_to_gfn(page + i),
		                                 readonly);
	}
	atomic_add(nr, &gd->grants_active);
	*first = ref;
	return 0;
}

/* Ends NR grants from FIRST. One the backend still maps is never freed here. */
void gvk_end_pages(struct gvk_dev *gd, grant_ref_t first, unsigned int nr)
{
	unsigned int i;

	for (i = 0; i < nr; i++) {
		grant_ref_t ref = first + i;

		if (!xa_erase(&gd->pages, ref)) {
			dev_err(&gd->xb->dev, "end of grant %u that this device does not hold\n", ref);
			continue;
		}
		atomic_dec(&gd->grants_active);
		if (gnttab_end_foreign_access_ref(ref)) {
			gnttab_free_grant_reference(ref);
		} else {
			atomic_inc(&gd->grants_leaked);
			dev_warn_ratelimited(&gd->xb->dev,
			                     "grant %u still mapped by the backend: not reused until it is unmapped\n",
			                     ref);
			gnttab_end_foreign_access(ref, NULL);
		}
	}
}

/* ---- coherent allocations (the rings), both strategies ---------------------------- */

static void *gvk_alloc(struct device *dev, size_t size, dma_addr_t *dma, gfp_t gfp,
                       unsigned long attrs)
{
	struct gvk_dev *gd = to_gd(dev);
	unsigned int nr = PFN_UP(size);
	grant_ref_t ref;
	void *va;

	va = alloc_pages_exact(nr << PAGE_SHIFT, (gfp & ~__GFP_HIGHMEM) | __GFP_ZERO);
	if (!va)
		return NULL;
	if (gvk_grant_pages(gd, virt_to_page(va), nr, false, &ref) < 0) {
		free_pages_exact(va, nr << PAGE_SHIFT);
		atomic_inc(&gd->map_errors);
		return NULL;
	}
	*dma = GV_DMA_ADDR(ref, 0);
	return va;
}

static void gvk_free(struct device *dev, size_t size, void *va, dma_addr_t dma,
                     unsigned long attrs)
{
	struct gvk_dev *gd = to_gd(dev);
	unsigned int nr = PFN_UP(size), i;
	grant_ref_t first = GV_DMA_REF(dma);

	for (i = 0; i < nr; i++)
		gvk_end_page_free(gd, first + i, virt_to_page(va + (i << PAGE_SHIFT)));
}

/* ---- grant: a grant per mapping --------------------------------------------------- */

static dma_addr_t grant_map(struct gvk_dev *gd, struct page *page, unsigned long off,
                            size_t size, enum dma_data_direction dir)
{
	unsigned int nr;
	grant_ref_t ref;

	page += off >> PAGE_SHIFT;
	off &= ~PAGE_MASK;
	nr = PFN_UP(off + size);
	if (gvk_grant_pages(gd, page, nr, dir == DMA_TO_DEVICE, &ref) < 0) {
		atomic_inc(&gd->map_errors);
		return DMA_MAPPING_ERROR;
	}
	return GV_DMA_ADDR(ref, off);
}

static void grant_unmap(struct gvk_dev *gd, dma_addr_t dma, size_t size)
{
	gvk_end_pages(gd, GV_DMA_REF(dma), PFN_UP(GV_DMA_OFF(dma) + size));
}

/* ---- bounce: copies into a pool granted once -------------------------------------- */

int gvk_dma_init(struct gvk_dev *gd)
{
	unsigned int bytes;
	int rc;

	if (gd->strategy != GVK_BOUNCE)
		return 0;
	bytes = clamp(pool_kb, 64u, 16384u) * 1024u;
	gd->pool = alloc_pages_exact(bytes, GFP_KERNEL | __GFP_ZERO);
	if (!gd->pool)
		return -ENOMEM;
	gd->pool_pages = bytes >> PAGE_SHIFT;
	gd->pool_slots = bytes >> GVK_SLOT_SHIFT;
	gd->pool_map = bitmap_zalloc(gd->pool_slots, GFP_KERNEL);
	gd->pool_orig = kvcalloc(gd->pool_slots, sizeof(*gd->pool_orig), GFP_KERNEL);
	if (!gd->pool_map || !gd->pool_orig) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = gvk_grant_pages(gd, virt_to_page(gd->pool), gd->pool_pages, false, &gd->pool_ref);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	bitmap_free(gd->pool_map);
	kvfree(gd->pool_orig);
	free_pages_exact(gd->pool, bytes);
	gd->pool = NULL;
	gd->pool_map = NULL;
	gd->pool_orig = NULL;
	return rc;
}

void gvk_dma_exit(struct gvk_dev *gd)
{
	unsigned int i;

	if (gd->pool) {
		/* pages whose grant cannot be ended go with it (freed when it ends) */
		for (i = 0; i < gd->pool_pages; i++) {
			grant_ref_t ref = gd->pool_ref + i;
			struct page *pg = virt_to_page(gd->pool + (i << PAGE_SHIFT));

			xa_erase(&gd->pages, ref);
			atomic_dec(&gd->grants_active);
			if (gnttab_end_foreign_access_ref(ref)) {
				gnttab_free_grant_reference(ref);
				__free_page(pg);
			} else {
				atomic_inc(&gd->grants_leaked);
				gnttab_end_foreign_access(ref, pg);
			}
		}
		if (atomic_read(&gd->grants_leaked))
			dev_warn(&gd->xb->dev, "bounce pool: %d grants still mapped at release\n",
			         atomic_read(&gd->grants_leaked));
		gd->pool = NULL;
		bitmap_free(gd->pool_map);
		kvfree(gd->pool_orig);
	}
}

/* The pool offset of a bounce DMA address, or -1 if it is not in the pool. */
static long pool_offset(struct gvk_dev *gd, dma_addr_t dma, size_t size)
{
	unsigned long long ref = GV_DMA_REF(dma);
	unsigned long off;

	if (!gd->pool || !GV_DMA_HAS_GRANT(dma) || ref < gd->pool_ref ||
	    ref >= (unsigned long long)gd->pool_ref + gd->pool_pages)
		return -1;
	off = ((ref - gd->pool_ref) << PAGE_SHIFT) + GV_DMA_OFF(dma);
	if (size > ((unsigned long)gd->pool_pages << PAGE_SHIFT) - off)
		return -1;
	return off;
}

static dma_addr_t bounce_map(struct gvk_dev *gd, phys_addr_t phys, size_t size,
                             enum dma_data_direction dir)
{
	unsigned int n = DIV_ROUND_UP(size, 1u << GVK_SLOT_SHIFT);
	unsigned long idx, flags, off;

	spin_lock_irqsave(&gd->pool_lock, flags);
	idx = bitmap_find_next_zero_area(gd->pool_map, gd->pool_slots, gd->pool_hint, n, 0);
	if (idx >= gd->pool_slots)
		idx = bitmap_find_next_zero_area(gd->pool_map, gd->pool_slots, 0, n, 0);
	if (idx >= gd->pool_slots) {
		spin_unlock_irqrestore(&gd->pool_lock, flags);
		atomic_inc(&gd->map_errors);
		return DMA_MAPPING_ERROR;
	}
	bitmap_set(gd->pool_map, idx, n);
	gd->pool_hint = idx + n;
	gd->pool_orig[idx] = phys;
	spin_unlock_irqrestore(&gd->pool_lock, flags);
	off = idx << GVK_SLOT_SHIFT;
	if (dir == DMA_TO_DEVICE || dir == DMA_BIDIRECTIONAL) {
		memcpy(gd->pool + off, phys_to_virt(phys), size);
		atomic64_add(size, &gd->bounced_bytes);
	}
	return GV_DMA_ADDR(gd->pool_ref + (off >> PAGE_SHIFT), off & ~PAGE_MASK);
}

static void bounce_unmap(struct gvk_dev *gd, dma_addr_t dma, size_t size,
                         enum dma_data_direction dir)
{
	long off = pool_offset(gd, dma, size);
	unsigned int n = DIV_ROUND_UP(size, 1u << GVK_SLOT_SHIFT);
	unsigned long idx, flags;

	if (off < 0 || (off & ((1 << GVK_SLOT_SHIFT) - 1))) {
		dev_err(&gd->xb->dev, "unmap of %pad (%zu bytes): not a mapping of the bounce pool\n",
		        &dma, size);
		return;
	}
	idx = off >> GVK_SLOT_SHIFT;
	if (dir == DMA_FROM_DEVICE || dir == DMA_BIDIRECTIONAL) {
		memcpy(phys_to_virt(gd->pool_orig[idx]), gd->pool + off, size);
		atomic64_add(size, &gd->bounced_bytes);
	}
	spin_lock_irqsave(&gd->pool_lock, flags);
	bitmap_clear(gd->pool_map, idx, n);
	spin_unlock_irqrestore(&gd->pool_lock, flags);
}

static void bounce_sync(struct gvk_dev *gd, dma_addr_t dma, size_t size, bool to_device)
{
	long off = pool_offset(gd, dma, size);
	long start;
	unsigned long idx;

	if (off < 0)
		return;
	/* the mapping starts at the slot whose original is set at or before off */
	idx = off >> GVK_SLOT_SHIFT;
	start = off & ((1 << GVK_SLOT_SHIFT) - 1);
	if (to_device)
		memcpy(gd->pool + off, phys_to_virt(gd->pool_orig[idx] + start), size);
	else
		memcpy(phys_to_virt(gd->pool_orig[idx] + start), gd->pool + off, size);
	atomic64_add(size, &gd->bounced_bytes);
}

/* ---- the ops ------------------------------------------------------------------------ */

static dma_addr_t gvk_map_page(struct device *dev, struct page *page, unsigned long off,
                               size_t size, enum dma_data_direction dir, unsigned long attrs)
{
	struct gvk_dev *gd = to_gd(dev);

	if (!size)
		return DMA_MAPPING_ERROR;
	if (gd->strategy == GVK_BOUNCE)
		return bounce_map(gd, page_to_phys(page) + off, size, dir);
	return grant_map(gd, page, off, size, dir);
}

static void gvk_unmap_page(struct device *dev, dma_addr_t dma, size_t size,
                           enum dma_data_direction dir, unsigned long attrs)
{
	struct gvk_dev *gd = to_gd(dev);

	if (!GV_DMA_HAS_GRANT(dma)) {
		dev_err(dev, "unmap of %pad: not a grant DMA address\n", &dma);
		return;
	}
	if (gd->strategy == GVK_BOUNCE)
		bounce_unmap(gd, dma, size, dir);
	else
		grant_unmap(gd, dma, size);
}

static int gvk_map_sg(struct device *dev, struct scatterlist *sgl, int nents,
                      enum dma_data_direction dir, unsigned long attrs)
{
	struct scatterlist *sg;
	int i;

	for_each_sg(sgl, sg, nents, i) {
		sg->dma_address = gvk_map_page(dev, sg_page(sg), sg->offset, sg->length, dir, attrs);
		if (sg->dma_address == DMA_MAPPING_ERROR)
			goto fail;
		sg_dma_len(sg) = sg->length;
	}
	return nents;
fail:
	{
		struct scatterlist *s;
		int j;

		for_each_sg(sgl, s, i, j)
			gvk_unmap_page(dev, s->dma_address, sg_dma_len(s), dir, attrs);
	}
	return -EIO;
}

static void gvk_unmap_sg(struct device *dev, struct scatterlist *sgl, int nents,
                         enum dma_data_direction dir, unsigned long attrs)
{
	struct scatterlist *sg;
	int i;

	for_each_sg(sgl, sg, nents, i)
		gvk_unmap_page(dev, sg->dma_address, sg_dma_len(sg), dir, attrs);
}

static void gvk_sync_for_cpu(struct device *dev, dma_addr_t dma, size_t size,
                             enum dma_data_direction dir)
{
	struct gvk_dev *gd = to_gd(dev);

	if (gd->strategy == GVK_BOUNCE && (dir == DMA_FROM_DEVICE || dir == DMA_BIDIRECTIONAL))
		bounce_sync(gd, dma, size, false);
}

static void gvk_sync_for_device(struct device *dev, dma_addr_t dma, size_t size,
                                enum dma_data_direction dir)
{
	struct gvk_dev *gd = to_gd(dev);

	if (gd->strategy == GVK_BOUNCE && (dir == DMA_TO_DEVICE || dir == DMA_BIDIRECTIONAL))
		bounce_sync(gd, dma, size, true);
}

static int gvk_dma_supported(struct device *dev, u64 mask)
{
	return mask == DMA_BIT_MASK(64);
}

static size_t gvk_max_mapping_size(struct device *dev)
{
	struct gvk_dev *gd = to_gd(dev);

	/* a bounced mapping must fit a quarter of the pool; a granted one has
	 * no limit of its own (the device's size-max applies) */
	if (gd->strategy == GVK_BOUNCE)
		return (size_t)gd->pool_pages << (PAGE_SHIFT - 2);
	return SIZE_MAX;
}

const struct dma_map_ops gvk_dma_ops = {
	.alloc = gvk_alloc,
	.free = gvk_free,
	.map_page = gvk_map_page,
	.unmap_page = gvk_unmap_page,
	.map_sg = gvk_map_sg,
	.unmap_sg = gvk_unmap_sg,
	.sync_single_for_cpu = gvk_sync_for_cpu,
	.sync_single_for_device = gvk_sync_for_device,
	.dma_supported = gvk_dma_supported,
	.max_mapping_size = gvk_max_mapping_size,
};

/* The CPU address of LEN bytes at a DMA address this device handed out
 * (for gvk_dead.c), or NULL. */
void *gvk_dma_to_virt(struct gvk_dev *gd, dma_addr_t dma, size_t len)
{
	struct page *pg;
	long off;

	if (!GV_DMA_HAS_GRANT(dma) || GV_DMA_REF(dma) > U32_MAX)
		return NULL;
	off = pool_offset(gd, dma, len);
	if (off >= 0)
		return gd->pool + off;
	pg = xa_load(&gd->pages, (unsigned long)GV_DMA_REF(dma));
	if (!pg)
		return NULL;
	return page_address(pg) + GV_DMA_OFF(dma);
}

/* After a restore from `xl save` the guest runs in a new domain whose grant
 * table is empty: every grant the old one held is gone (and nothing maps them:
 * the backend unmapped the pool when the device closed before the save). The
 * bounce pool keeps its refs, so each pool page is granted again on its ref,
 * with the frame the page has now (a PV guest's frames change in a restore). */
void gvk_dma_resume(struct gvk_dev *gd)
{
	unsigned int i;

	if (!gd->pool)
		return;
	for (i = 0; i < gd->pool_pages; i++)
		gnttab_grant_foreign_access_ref(gd->pool_ref + i, gd->be_domid,
		                                 xen_page_to_gfn(virt_to_page(gd->pool + (i << PAGE_SHIFT))),
		                                 0);
}

/* Ends the grant of one page this device allocated and frees the page; a page
 * the backend still maps goes with its grant, freed when the grant ends. */
void gvk_end_page_free(struct gvk_dev *gd, grant_ref_t ref, struct page *page)
{
	if (!xa_erase(&gd->pages, ref)) {
		dev_err(&gd->xb->dev, "end of grant %u that this device does not hold\n", ref);
		return;
	}
	atomic_dec(&gd->grants_active);
	if (gnttab_end_foreign_access_ref(ref)) {
		gnttab_free_grant_reference(ref);
		__free_page(page);
	} else {
		atomic_inc(&gd->grants_leaked);
		dev_warn(&gd->xb->dev, "grant %u still mapped by the backend: page kept until unmapped\n", ref);
		gnttab_end_foreign_access(ref, page);
	}
}
