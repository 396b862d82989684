/*
 * common/abi.h: the binary interface both sides share, taken from the real headers.
 *
 * Nothing here is a hand copy: grant entries and GTF_* flags come from Xen's
 * <xen/grant_table.h>, xenbus states from <xen/io/xenbus.h>, the xenstore wire
 * format from <xen/io/xs_wire.h> (libxen-dev); the split virtqueue layout and
 * feature bits from <linux/virtio_*.h> (linux-libc-dev). This file only pulls
 * them together and pins the sizes the project depends on.
 *
 *   split virtqueue of size N (virtio 1.x, 2.7):
 *     descriptor table  16 * N bytes, align 16   struct vring_desc[N]
 *     driver area        6 + 2 * N,   align 2    struct vring_avail (+ used_event)
 *     device area        6 + 8 * N,   align 4    struct vring_used  (+ avail_event)
 */
#ifndef GV_COMMON_ABI_H
#define GV_COMMON_ABI_H

#include <stdint.h>
#include <stddef.h>
#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/event_channel.h>
#include <xen/io/xenbus.h>
#include <xen/io/xs_wire.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>

#define GV_PAGE_SHIFT 12
#define GV_PAGE_SIZE  (1u << GV_PAGE_SHIFT)
#define GV_PAGE_MASK  (GV_PAGE_SIZE - 1)

/* Xen's grant_ref_t is uint32_t; domid_t is uint16_t (xen/xen.h). */
_Static_assert(sizeof(struct grant_entry_v1) == 8, "grant_entry_v1 is 8 bytes");
_Static_assert(offsetof(struct grant_entry_v1, flags) == 0, "flags first");
_Static_assert(offsetof(struct grant_entry_v1, domid) == 2, "domid at 2");
_Static_assert(offsetof(struct grant_entry_v1, frame) == 4, "frame at 4");
_Static_assert(sizeof(struct vring_desc) == 16, "vring_desc is 16 bytes");
_Static_assert(sizeof(struct vring_used_elem) == 8, "vring_used_elem is 8 bytes");
_Static_assert(sizeof(struct virtio_blk_outhdr) == 16, "virtio_blk_outhdr is 16 bytes");

/* Sizes of the three areas of a split virtqueue of num entries (virtio 1.x 2.7),
 * including the event-index word at the end of the driver and device areas. */
static inline size_t gv_vring_desc_size(unsigned num)  { return 16u * num; }
static inline size_t gv_vring_avail_size(unsigned num) { return 6u + 2u * num; }
static inline size_t gv_vring_used_size(unsigned num)  { return 6u + 8u * num; }

/* The in-flight record of one virtqueue (docs/transport.md, "Backend
 * restart"): a page the FRONTEND grants writable (queue-<n>/inflight-ref)
 * and only the backend writes, so that it outlives the backend process. The
 * backend marks a head before it acts on the request, then records the avail
 * entries it took; after it published used elements it clears their heads and
 * records the used index it published up to. A new backend reads the page
 * once into private memory, checks it against the rings, and serves again
 * exactly the heads still marked. Our own layout, little-endian as the rings. */
struct gv_inflight {
	uint16_t last_avail;        /* avail entries taken */
	uint16_t used_idx;          /* used index published, heads cleared up to here */
	uint16_t num;               /* queue size, written at connect (a check only) */
	uint16_t reserved;
	uint8_t head[];             /* [num]: 1 taken, used element not yet published */
};
#define GV_INFLIGHT_MAX_NUM (GV_PAGE_SIZE - sizeof(struct gv_inflight))
_Static_assert(sizeof(struct gv_inflight) == 8, "gv_inflight header is 8 bytes");

static inline unsigned gv_pages_for(size_t bytes)
{
	return (unsigned)((bytes + GV_PAGE_SIZE - 1) >> GV_PAGE_SHIFT);
}

#endif
