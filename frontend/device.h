/*
 * frontend/device.h: the library's private device state, shared by the
 * setup code (transport.c), the event/completion loop (io.c) and the
 * drivers (blk.c, rng.c). Not installed; see grant_virtio.h for the API.
 */
#ifndef GVFE_DEVICE_H
#define GVFE_DEVICE_H

#include <xenstore.h>
#include "grant_virtio.h"
#include "dma.h"
#include "virtqueue.h"

/* One virtio-blk request on the ring: a piece of a struct gv_blk_io. */
struct blk_chunk {
	struct gv_blk_io *io;
	size_t len;                 /* data bytes */
	struct gvfe_dma_map map;
	bool mapped;
	unsigned index;             /* its header slot */
	struct blk_chunk *next_free;
};

/* Header slot in coherent memory: device-readable outhdr, device-writable status. */
struct blk_hdr_slot {
	struct virtio_blk_outhdr hdr;
	uint8_t status;
	uint8_t pad[15];
};

struct gv_device {
	struct gv_platform *p;
	struct xs_handle *xs;
	int xs_fd;
	char fe_dir[128], be_dir[160];
	char watch_token[48];
	bool watching;
	unsigned devid;
	domid_t backend_id;
	unsigned virtio_id;
	uint64_t dev_features, drv_features;
	unsigned dev_num_queues, max_queue_size, max_persistent;
	struct {
		uint64_t capacity;
		unsigned blk_size, seg_max, size_max;
		bool ro;
	} blk;

	struct gvfe_dma_dev dma;
	bool dma_ready;
	struct gvfe_vq *vq;           /* one queue: blk and rng both use queue 0 */
	evtchn_port_t dev_port, vq_port;
	struct gvfe_dma_coherent live; /* byte 0: us, byte 1: the backend */
	int timeout_ms;

	enum xenbus_state be_state;
	bool connected;
	bool backend_seen_alive;    /* byte 1 was 1 once: its 0 now means gone */
	bool broken;                /* sticky */
	bool closing;               /* detach started: no new requests */
	char error[512];

	/* completion of one ring token: len valid when err == 0 */
	void (*complete)(struct gv_device *d, void *token, uint32_t len, int err);
	int ios_completed;          /* by the current gv_poll */

	/* blk */
	struct gvfe_dma_coherent hdrs;
	struct blk_chunk *chunks, *free_chunks;
	struct gv_blk_io *pend_head, *pend_tail;
	struct gvfe_dma_seg *segs;
	unsigned seg_limit;
	size_t chunk_max;

	struct gv_stats st;
};

/* io.c */
void gvfe_dev_fail(struct gv_device *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gvfe_dev_fail_inflight(struct gv_device *d);
int gvfe_dev_check_backend(struct gv_device *d);
void gvfe_dev_reap(struct gv_device *d);
/* Waits for an event (evtchn or xenstore watch) at most timeout_ms and
 * processes it. 0, or -errno from poll. */
int gvfe_dev_wait_event(struct gv_device *d, int timeout_ms);

/* blk.c / rng.c */
int gvfe_blk_setup(struct gv_device *d);
void gvfe_blk_teardown(struct gv_device *d);
void gvfe_blk_pump(struct gv_device *d);
void gvfe_rng_setup(struct gv_device *d);

#endif
