/*
 * common/dma_addr.h: the one place where a grant reference is put into, and
 * taken out of, a DMA address.
 *
 * The bits themselves are in common/dma_addr_bits.h (macros, no includes),
 * which the guest kernel module (frontend/linux/) includes too: one encoding.
 */
#ifndef GV_COMMON_DMA_ADDR_H
#define GV_COMMON_DMA_ADDR_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include "abi.h"
#include "dma_addr_bits.h"

_Static_assert(GV_PAGE_SHIFT == GV_DMA_REF_SHIFT, "one page size for grants and DMA addresses");

static inline uint64_t gv_grant_to_dma(grant_ref_t gref, uint32_t offset)
{
	return GV_DMA_ADDR(gref, offset);
}

/* Whether the address carries a grant at all. Without it, it is a
 * guest-physical address: the driver bypassed the DMA API. */
static inline bool gv_dma_is_grant(uint64_t dma)
{
	return GV_DMA_HAS_GRANT(dma);
}

/* Returns 0, or -EINVAL when the address does not carry a grant (bit 63 clear:
 * a guest-physical address, which a Xen backend cannot reach) or when the
 * reference does not fit a grant_ref_t. */
static inline int gv_dma_to_grant(uint64_t dma, grant_ref_t *gref, uint32_t *offset)
{
	uint64_t ref;

	if (!gv_dma_is_grant(dma))
		return -EINVAL;
	ref = GV_DMA_REF(dma);
	if (ref > UINT32_MAX)
		return -EINVAL;
	*gref = (grant_ref_t)ref;
	*offset = (uint32_t)GV_DMA_OFF(dma);
	return 0;
}

#endif
