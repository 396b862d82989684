/*
 * common/dma_addr.h: the one place where a grant reference is put into, and
 * taken out of, a DMA address.
 *
 * The encoding is Linux's grant-dma-ops (drivers/xen/grant-dma-ops.c), so an
 * address means the same thing as one a Linux guest puts in a descriptor:
 *
 *    63  62 ............ 44 43 ..................... 12 11 ........ 0
 *   [ 1 |    must be zero   |   grant reference       |  page offset ]
 *
 * A buffer that spans pages is addressed with consecutive grant references
 * (address + k * 4096 names ref + k), as grant-dma-ops allocates them.
 */
#ifndef GV_COMMON_DMA_ADDR_H
#define GV_COMMON_DMA_ADDR_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include "abi.h"

#define GV_DMA_GRANT_BIT (1ULL << 63)

static inline uint64_t gv_grant_to_dma(grant_ref_t gref, uint32_t offset)
{
	return GV_DMA_GRANT_BIT | ((uint64_t)gref << GV_PAGE_SHIFT) | (offset & GV_PAGE_MASK);
}

/* Whether the address carries a grant at all. Without it, it is a
 * guest-physical address: the driver bypassed the DMA API. */
static inline bool gv_dma_is_grant(uint64_t dma)
{
	return (dma & GV_DMA_GRANT_BIT) != 0;
}

/* Returns 0, or -EINVAL when the address does not carry a grant (bit 63 clear:
 * a guest-physical address, which a Xen backend cannot reach) or when the
 * reference does not fit a grant_ref_t. */
static inline int gv_dma_to_grant(uint64_t dma, grant_ref_t *gref, uint32_t *offset)
{
	uint64_t ref;

	if (!gv_dma_is_grant(dma))
		return -EINVAL;
	ref = (dma & ~GV_DMA_GRANT_BIT) >> GV_PAGE_SHIFT;
	if (ref > UINT32_MAX)
		return -EINVAL;
	*gref = (grant_ref_t)ref;
	*offset = (uint32_t)(dma & GV_PAGE_MASK);
	return 0;
}

#endif
