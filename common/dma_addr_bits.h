/*
 * common/dma_addr_bits.h: the grant DMA address encoding as plain macros, with
 * no include at all, so that both user space (common/dma_addr.h) and the guest
 * kernel module (frontend/linux/) use the one definition.
 *
 *    63  62 ............ 44 43 ..................... 12 11 ........ 0
 *   [ 1 |    must be zero   |   grant reference       |  page offset ]
 *
 * This is Linux's grant-dma-ops encoding (drivers/xen/grant-dma-ops.c): a
 * buffer that spans pages is addressed with consecutive grant references
 * (address + k * 4096 names ref + k).
 */
#ifndef GV_COMMON_DMA_ADDR_BITS_H
#define GV_COMMON_DMA_ADDR_BITS_H

#define GV_DMA_GRANT_BIT   (1ULL << 63)
#define GV_DMA_REF_SHIFT   12
#define GV_DMA_OFF_MASK    0xfffULL

/* The address of byte OFF (0..4095) of the page granted as REF. */
#define GV_DMA_ADDR(ref, off) \
	(GV_DMA_GRANT_BIT | ((unsigned long long)(ref) << GV_DMA_REF_SHIFT) | \
	 ((unsigned long long)(off) & GV_DMA_OFF_MASK))
/* Whether a DMA address carries a grant (bit 63). */
#define GV_DMA_HAS_GRANT(dma)  (((unsigned long long)(dma) & GV_DMA_GRANT_BIT) != 0)
/* The reference and the offset of a grant DMA address (check GV_DMA_HAS_GRANT
 * first; the reference may not fit 32 bits in a hostile address). */
#define GV_DMA_REF(dma)  (((unsigned long long)(dma) & ~GV_DMA_GRANT_BIT) >> GV_DMA_REF_SHIFT)
#define GV_DMA_OFF(dma)  ((unsigned long long)(dma) & GV_DMA_OFF_MASK)

#endif
