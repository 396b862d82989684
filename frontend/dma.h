/*
 * frontend/dma.h: the guest's DMA API, in the shape of Linux's dma_map_ops
 * as drivers/xen/grant-dma-ops.c and swiotlb-xen.c implement it.
 *
 * A driver never puts a pointer in a descriptor: it maps a buffer for a
 * direction and gets a list of segments, each a (DMA address, length) run
 * that is contiguous in grant-reference space (common/dma_addr.h), cut where
 * references are not consecutive (real Xen does not promise that they are)
 * and where a segment would exceed the device's size-max.
 *
 * One strategy per device (struct gvfe_dma_ops, one file each):
 *   bounce  (dma_bounce.c) swiotlb-xen: a pool granted once; copy in/out
 *   pool    (dma_pool.c)   zero copy: buffers allocated from that pool
 *   grant   (dma_grant.c)  grant-dma-ops: fresh pages granted per mapping
 *   bypass  (dma_bypass.c) no DMA API at all: the failure under Xen
 *
 * Coherent memory (vring areas, request headers and status bytes) is a
 * separate allocation granted to the backend for its whole life.
 *
 * Conventions: negative errno, no logging except the one line that marks
 * the device broken; a handle is used by one thread at a time.
 */
#ifndef GVFE_DMA_H
#define GVFE_DMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "platform.h"

enum gvfe_dma_dir {
	GVFE_DMA_TO_DEVICE = 1,       /* device reads: copy in before, nothing after */
	GVFE_DMA_FROM_DEVICE = 2,     /* device writes: copy out after */
	GVFE_DMA_BIDIRECTIONAL = 3,
};

enum gvfe_dma_strategy {
	GVFE_DMA_BOUNCE = 0,
	GVFE_DMA_GRANT,
	GVFE_DMA_POOL,
	GVFE_DMA_BYPASS,
};

const char *gvfe_dma_strategy_name(enum gvfe_dma_strategy s);
/* The strategy's ops (what a caller may ask before the device exists), or
 * NULL for an unknown value. */
const struct gvfe_dma_ops *gvfe_dma_ops_of(enum gvfe_dma_strategy s);
/* 0 and *s, or -EINVAL for an unknown name. */
int gvfe_dma_strategy_parse(const char *name, enum gvfe_dma_strategy *s);

struct gvfe_dma_seg {
	uint64_t addr;              /* grant DMA address (bypass: pretend guest-physical) */
	uint32_t len;
};

/* The slot allocator of the persistent pool: 512-byte slots, a bitmap,
 * first fit from a rotating hint. Slots may span pages. */
#define GVFE_DMA_SLOT_SHIFT 9
#define GVFE_DMA_SLOT_SIZE  (1u << GVFE_DMA_SLOT_SHIFT)

struct gvfe_dma_pool {
	uint8_t *base;              /* npages mapped here by grant_alloc */
	unsigned npages;
	grant_ref_t *refs;          /* refs[i] names page i */
	uint64_t *bitmap;           /* 1 = slot in use */
	uint32_t nslots, free_slots, hint;
};

/* One mapping (the driver keeps it until unmap). */
struct gvfe_dma_map {
	void *cpu;                  /* the caller's buffer */
	size_t len;
	enum gvfe_dma_dir dir;
	uint8_t *dev_cpu;           /* where the device's copy lives (== cpu: no copy) */
	uint32_t slot, nslots;      /* bounce/pool: slots taken; nslots 0: none */
	unsigned npages;            /* grant: pages granted for this mapping */
	bool bounced;               /* data is copied between cpu and dev_cpu */
};

struct gvfe_dma_dev;
struct gvfe_dma_coherent;

/* What differs between strategies is answered here, never by switching on
 * enum gvfe_dma_strategy outside dma.c. */
struct gvfe_dma_ops {
	const char *name;
	bool persistent;            /* every data address lies in the pool */
	bool access_platform;       /* addresses are grants: the driver accepts
	                               VIRTIO_F_ACCESS_PLATFORM and needs it offered */
	bool pool_buffers;          /* a buffer from gvfe_dma_pool_alloc maps without a copy */
	int (*map)(struct gvfe_dma_dev *d, void *buf, size_t len, enum gvfe_dma_dir dir,
	           struct gvfe_dma_map *m, struct gvfe_dma_seg *segs, unsigned max_segs,
	           unsigned *nsegs);
	/* Copies out (if the direction says so) and releases; 0 or -errno. */
	int (*unmap)(struct gvfe_dma_dev *d, struct gvfe_dma_map *m);
	/* The device address of byte off of coherent memory; NULL: its grant
	 * address (common/dma_addr.h). */
	uint64_t (*coherent_addr)(struct gvfe_dma_dev *d, const struct gvfe_dma_coherent *c,
	                          size_t off);
};

struct gvfe_dma_stats {
	uint64_t maps, unmaps;
	uint64_t bytes_copied_in, bytes_copied_out;
	uint64_t pool_full;         /* map answered -EAGAIN: pool momentarily full */
	uint64_t pool_fallbacks;    /* pool strategy: buffer outside the pool, bounced */
	uint64_t pages_leaked;      /* grant_end -EBUSY: leaked on purpose, never reused */
};

struct gvfe_dma_dev {
	struct gv_platform *p;
	domid_t backend;
	const struct gvfe_dma_ops *ops;
	uint32_t max_seg_len;       /* device size-max; segments are cut there */
	struct gvfe_dma_pool pool;    /* bounce and pool strategies; npages 0 otherwise */
	unsigned grant_budget;      /* grant strategy: most pages granted at once */
	unsigned grant_pages_out;   /* grant strategy: pages granted now */
	unsigned user_buffers;      /* pool buffers the program holds (gvfe_dma_pool_alloc) */
	bool broken;                /* sticky: a grant could not be ended */
	struct gvfe_dma_stats stats;
};

/* A coherent allocation: pages granted once to the backend. */
struct gvfe_dma_coherent {
	void *cpu;
	size_t size;
	unsigned npages;
	grant_ref_t *refs;
	bool readonly;              /* granted read-only (device never writes it) */
};

/* Creates the DMA device for a strategy. pool_pages: size of the persistent
 * pool for bounce and pool, and for grant the most pages granted at once
 * (0: GVFE_DMA_DEFAULT_POOL_PAGES, so every strategy stays within the same
 * gntalloc limit); ignored by bypass. Grants the pool (writable) to backend. 0 or -errno; nothing
 * is left behind on failure. */
/* 3 MiB: fits Linux's gntalloc limit (1024) with the vrings */
#define GVFE_DMA_DEFAULT_POOL_PAGES 768u
int gvfe_dma_dev_init(struct gvfe_dma_dev *d, struct gv_platform *p, domid_t backend,
                      enum gvfe_dma_strategy s, unsigned pool_pages);
/* Ends the pool's grants. Call only when the backend has unmapped them
 * (BE=Closed, or the backend is gone). -EBUSY: leaked (counted). */
int gvfe_dma_dev_destroy(struct gvfe_dma_dev *d);

/* Maps buf[0..len) for dir and fills segs[0..*nsegs). Errors:
 *   -EAGAIN  the pool is momentarily full: retry after completions
 *   -ENOMEM  the buffer can never fit (larger than the pool), or no memory
 *   -E2BIG   more than max_segs segments would be needed; nothing mapped
 *   -EIO     the DMA device is broken
 * Nothing is left mapped on failure. */
int gvfe_dma_map(struct gvfe_dma_dev *d, void *buf, size_t len, enum gvfe_dma_dir dir,
                 struct gvfe_dma_map *m, struct gvfe_dma_seg *segs, unsigned max_segs,
               unsigned *nsegs);
/* Copies FROM_DEVICE/BIDIRECTIONAL data back to the caller's buffer and
 * releases the mapping. grant: -EBUSY when the backend still maps a page
 * (device marked broken, pages leaked and counted). */
int gvfe_dma_unmap(struct gvfe_dma_dev *d, struct gvfe_dma_map *m);
/* Hand the buffer to the device again after the CPU wrote it (copy in),
 * or to the CPU after the device wrote it (copy out), without unmapping. */
void gvfe_dma_sync_for_device(struct gvfe_dma_dev *d, struct gvfe_dma_map *m);
void gvfe_dma_sync_for_cpu(struct gvfe_dma_dev *d, struct gvfe_dma_map *m);

/* Coherent memory: size bytes in fresh zeroed pages granted to the backend
 * (read-only when readonly). 0 or -errno. */
int gvfe_dma_alloc_coherent(struct gvfe_dma_dev *d, size_t size, bool readonly,
                            struct gvfe_dma_coherent *c);
/* Ends the grants; -EBUSY: leaked (counted, device broken). */
int gvfe_dma_free_coherent(struct gvfe_dma_dev *d, struct gvfe_dma_coherent *c);
/* The DMA address of byte off of a coherent area, for a run of len bytes
 * that does not cross a page (bypass: the pretend guest-physical address). */
uint64_t gvfe_dma_coherent_addr(struct gvfe_dma_dev *d, const struct gvfe_dma_coherent *c,
                                size_t off);

/* Zero-copy buffers from the persistent pool (bounce and pool strategies).
 * NULL with errno ENOMEM/EAGAIN when it does not fit, EINVAL without a pool. */
void *gvfe_dma_pool_alloc(struct gvfe_dma_dev *d, size_t len);
void gvfe_dma_pool_free(struct gvfe_dma_dev *d, void *buf, size_t len);

/* ---- internals shared by the strategy files (dma_common.c unless said) ---- */
extern const struct gvfe_dma_ops gvfe_dma_bounce_ops, gvfe_dma_grant_ops, gvfe_dma_pool_ops,
	gvfe_dma_bypass_ops;

/* Segments for bytes [off, off+len) of an area whose page i has refs[i]:
 * one per run of consecutive refs, cut at max_seg_len. -E2BIG past max. */
int gvfe_dma_segs_from_refs(const grant_ref_t *refs, size_t off, size_t len, uint32_t max_seg_len,
                            struct gvfe_dma_seg *segs, unsigned max_segs, unsigned *nsegs);
int gvfe_dma_slot_alloc(struct gvfe_dma_pool *pool, size_t len, uint32_t *slot, uint32_t *nslots);
void gvfe_dma_slot_free(struct gvfe_dma_pool *pool, uint32_t slot, uint32_t nslots);
bool gvfe_dma_in_pool(const struct gvfe_dma_pool *pool, const void *buf, size_t len);
/* The bounce path, shared by bounce and by pool's fallback (dma_bounce.c). */
int gvfe_dma_bounce_map_common(struct gvfe_dma_dev *d, void *buf, size_t len, enum gvfe_dma_dir dir,
                               struct gvfe_dma_map *m, struct gvfe_dma_seg *segs, unsigned max_segs,
                             unsigned *nsegs);
int gvfe_dma_bounce_unmap_common(struct gvfe_dma_dev *d, struct gvfe_dma_map *m);
/* Marks the device broken once, with one log line. */
void gvfe_dma_mark_broken(struct gvfe_dma_dev *d, const char *why);

#endif
