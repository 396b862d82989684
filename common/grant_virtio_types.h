/*
 * common/grant_virtio_types.h: the two types the guest library's public
 * header (frontend/grant_virtio.h) shares with the platform layer
 * (common/platform.h): which hypervisor interface to open, and the counters
 * every platform handle keeps. Installed beside grant_virtio.h (make
 * install, libgrant-virtio-dev) so that the public header needs nothing of
 * the source tree; everything else of common/ stays private.
 */
#ifndef GV_GRANT_VIRTIO_TYPES_H
#define GV_GRANT_VIRTIO_TYPES_H

#include <stdint.h>

/* Which hypervisor interface: AUTO picks $GV_PLATFORM (xen|sim), else xen
 * when /dev/xen/gntdev exists, else the simulated Xen. */
enum gv_platform_kind { GV_PLATFORM_AUTO = 0, GV_PLATFORM_XEN, GV_PLATFORM_SIM };

/* Counters kept on every platform handle. "Pages" unless said otherwise. */
struct gv_counters {
	uint64_t grants_active;   /* granted by this handle, not yet ended */
	uint64_t grants_leaked;   /* end failed (peer still mapped): never reused */
	uint64_t maps_active;     /* pages of other domains mapped by this handle */
	uint64_t maps_done;       /* pages mapped, ever */
	uint64_t unmaps_done;     /* pages unmapped, ever */
	uint64_t map_calls;       /* batches passed to map, ever */
	uint64_t events_sent;
	uint64_t events_received;
};

#endif
