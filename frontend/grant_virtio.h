/*
 * frontend/grant_virtio.h: the guest library's public interface: attach to
 * a grant-virtio device (docs/transport.md), do block or entropy I/O, detach.
 *
 * One struct gv_device per attached device; it owns its own platform
 * handle, xenstore handle and event channels. Threads: see "Multi-queue"
 * below; a device attached with gv_attach (one queue) is used by one
 * thread at a time. Every function returns 0 (or a count, where said) on success and
 * a negative errno on failure; logging is said per function (to stderr, via
 * common/log.h). A device that the backend stopped (DEVICE_NEEDS_RESET,
 * BE=Closing) or that lost its backend fails every request with -EIO from
 * then on; gv_device_error() says why; only gv_detach() remains useful.
 *
 * Installed (make install, Debian's libgrant-virtio-dev) as
 * <grant_virtio.h> with its companion <grant_virtio_types.h>; a program
 * builds with `pkg-config --cflags --libs grant-virtio` and links
 * libgrant-virtio.so.0, which needs libxenstore, libxengnttab and
 * libxenevtchn, never dom0's libxenctrl. Only the functions declared here
 * are exported (frontend/libgrant-virtio.map). See examples/gv-read.c.
 */
#ifndef GV_GRANT_VIRTIO_H
#define GV_GRANT_VIRTIO_H

#include <errno.h>          /* results are negative errno values */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "grant_virtio_types.h"

#ifdef __cplusplus
extern "C" {
#endif

struct gv_device;
struct gv_stats;

struct gv_attach_opts {
	enum gv_platform_kind platform; /* GV_PLATFORM_AUTO: see grant_virtio_types.h */
	const char *sim_dir;        /* simulation directory, NULL: default */
	int domid;                  /* simulation: this guest's domain id; -1: $GV_DOMID or 0 */
	unsigned devid;             /* device/virtio/<devid> (xl_disk: device/virtio_disk/<devid>) */
	const char *dma;            /* "bounce" (NULL), "grant", "pool" or "bypass" */
	unsigned queue_size;        /* 0: min(256, max-queue-size); else a power of two */
	unsigned pool_pages;        /* bounce/pool: pages of the granted pool; 0: 768 (3 MiB) */
	int timeout_ms;             /* each handshake wait; 0: 10000 */
	int io_timeout_ms;          /* requests in flight and none completed for this
	                               long: the device breaks (-EIO); 0: 30000 */
	int restart_timeout_ms;     /* the backend went away while connected (its
	                               liveness byte cleared) and offers takeover
	                               (feature-inflight): requests wait this long for
	                               a new backend to take the device over, then the
	                               device breaks (-EIO); 0: 30000; -1: no waiting,
	                               no in-flight record (fail at once, as before) */
	bool xl_disk;               /* a disk from xl's disk = ["...,specification=virtio,
	                               backendtype=standalone,..."]: devid is its vdev
	                               (51712 for xvda) under device/virtio_disk */
};

/* Fills o with the defaults above. */
void gv_attach_opts_init(struct gv_attach_opts *o);

/* Attaches to the device: opens the platform, runs the handshake to
 * Connected. On failure returns -errno, writes a one-line explanation to
 * err (the backend's `error` text when it refused, e.g. the bypass
 * refusal), logs nothing beyond that, and leaves no grant, port or watch
 * behind (FE is left Closed if it was moved). -ECONNREFUSED: the backend
 * refused (see err); -ETIMEDOUT: no backend answered; -ENODEV: no such
 * device in xenstore. Logs one info line with the platform on success. */
int gv_attach(const struct gv_attach_opts *o, struct gv_device **out, char *err, size_t errlen);

/* ---- Multi-queue (GRANT_VIRTIO_0.3) ----
 * A block device whose backend offers VIRTIO_BLK_F_MQ can be attached with
 * several virtqueues, each with its own ring, event channel and in-flight
 * record (xenstore queue-<n>/..., docs/transport.md). The contract is one
 * queue per thread:
 *  - thread i submits with gv_blk_submit_queue(d, i, ...) and waits with
 *    gv_poll_queue(d, i, ...); the callbacks of queue i's requests run in
 *    the thread that calls those two on queue i, never in another one,
 *    and with no library lock held (a callback may submit again);
 *  - the calls without a queue argument (gv_blk_submit, gv_blk_read,
 *    gv_blk_write, gv_blk_flush, gv_blk_discard, gv_blk_write_zeroes,
 *    gv_blk_get_id) use queue 0: only queue 0's thread calls them;
 *  - gv_poll (every queue) and gv_device_fd are for a program that drives
 *    all queues from one thread; do not mix them with per-queue threads;
 *  - gv_get_info, gv_get_stats, gv_get_queue_stats, gv_pool_alloc,
 *    gv_pool_free, gv_device_broken and gv_device_error may be called from
 *    any thread; gv_detach only once every other thread stopped using d.
 * The library serialises its own bookkeeping with one lock per device (a
 * few microseconds per request); the waiting, and the backend's work for
 * each queue, go on in parallel. No callback (request or config change)
 * runs with that lock held.
 *
 * gv_attach_queues: as gv_attach, with num_queues virtqueues: 0 asks for
 * one per online CPU; the device gives at most its num-queues (1 without
 * VIRTIO_BLK_F_MQ, and for entropy devices) and the library at most 8;
 * gv_get_info's num_queues says how many it got. gv_attach is
 * gv_attach_queues(o, 1, ...). */
int gv_attach_queues(const struct gv_attach_opts *o, unsigned num_queues, struct gv_device **out,
                     char *err, size_t errlen);

/* Closes the device (FE Closing, waits for BE Closed, ends every grant, FE
 * Closed) and frees it. In-flight requests are waited for (bounded), then
 * failed with -EIO and their callbacks run. Returns 0, or the first error
 * (-EBUSY: some grants could not be ended and are leaked, counted in
 * grants_leaked); d is freed either way. Logs a warning on a timeout. */
int gv_detach(struct gv_device *d);
/* The same, filling *after (if not NULL) with the counters as they are
 * once every grant was ended and before the platform is closed: a clean
 * detach has after->platform.grants_active == 0 (leaked pages, if any, are
 * in grants_leaked). Logs a warning if grants are still active. */
int gv_detach_stats(struct gv_device *d, struct gv_stats *after);

struct gv_device_info {
	const char *platform;       /* the platform's description */
	unsigned devid;
	unsigned domid, backend_id;
	unsigned virtio_id;         /* 2 block, 4 entropy */
	uint64_t device_features, driver_features;
	const char *dma;            /* strategy name */
	bool persistent_pool;
	unsigned num_queues, queue_size, max_queue_size, max_persistent_grants;
	/* blk only (VIRTIO_BLK_F_* said which are valid) */
	uint64_t capacity;          /* 512-byte sectors */
	unsigned blk_size, seg_max, size_max;
	bool read_only;
	/* VIRTIO_BLK_F_DISCARD / VIRTIO_BLK_F_WRITE_ZEROES */
	unsigned max_discard_sectors, max_discard_seg, discard_sector_alignment;
	unsigned max_write_zeroes_sectors, max_write_zeroes_seg;
	bool write_zeroes_may_unmap;
};
void gv_get_info(const struct gv_device *d, struct gv_device_info *info);

struct gv_stats {
	struct gv_counters platform;    /* grants_active, grants_leaked, events, ... */
	uint64_t requests, request_errors;
	uint64_t kicks, kicks_suppressed, interrupts;
	uint64_t dma_bytes_copied_in, dma_bytes_copied_out, dma_pool_full, dma_pool_fallbacks;
	uint64_t dma_pages_leaked;
	uint64_t indirect_chains;   /* requests sent through an indirect table */
	/* backend restarts survived: times a new backend took the device over,
	 * and how long the requests waited for one (longest, total) */
	uint64_t backend_restarts, restart_wait_ms_max, restart_wait_ms_total;
	/* save/restore survived (xl save + xl restore, or a migration): times
	 * the library found its domain restored in a new domain and attached
	 * the device anew (new grants, event channels, handshake), requests in
	 * flight then issued again; the longest re-attach, in ms */
	uint64_t domain_restores, restore_ms_max;
};
void gv_get_stats(const struct gv_device *d, struct gv_stats *s);

/* The virtqueues now: virtio requests (descriptor chains) in flight on
 * every queue, and queue 0's free descriptors; zeros when the device has
 * no queue. */
struct gv_queue_state {
	unsigned in_flight, free_descriptors;
};
void gv_get_queue_state(const struct gv_device *d, struct gv_queue_state *q);

/* One queue's state and counters (GRANT_VIRTIO_0.3). 0, or -EINVAL when
 * the device has no queue q. */
struct gv_queue_stats {
	unsigned in_flight, free_descriptors;
	unsigned event_channel;     /* its port (queue-<q>/event-channel) */
	uint64_t added;             /* virtio requests put on its ring */
	uint64_t kicks;             /* notifications sent on its port */
	uint64_t interrupts;        /* events received on its port */
};
int gv_get_queue_stats(const struct gv_device *d, unsigned q, struct gv_queue_stats *s);

/* Writes the names of the feature bits in f ("VERSION_1 ACCESS_PLATFORM
 * ...", unknown bits as "bit42") into buf; returns buf. */
const char *gv_feature_names(uint64_t f, unsigned virtio_id, char *buf, size_t len);

/* true once the device stopped (backend error, broken ring, backend gone). */
bool gv_device_broken(const struct gv_device *d);
/* The reason: the backend's `error` text, or the frontend's own; "" if none. */
const char *gv_device_error(const struct gv_device *d);
/* true while the backend is gone and the device waits (at most the restart
 * timeout) for a new backend to take it over; requests stay queued. */
bool gv_backend_away(const struct gv_device *d);

/* Config changes (virtio's configuration-change notification): the backend
 * changed the device's configuration while attached, e.g. a disk's capacity
 * after an online resize (gv-backend --resize). The library notices it
 * inside gv_poll (and the synchronous calls, which poll), reads the new
 * values (gv_get_info reports them from then on, and requests are checked
 * against them), logs one info line and calls cb(d, priv) there (at the
 * end of that call, with no library lock held; with several queues, in
 * whichever thread noticed it). cb NULL: no callback. Neither function
 * logs or fails. */
void gv_set_config_callback(struct gv_device *d, void (*cb)(struct gv_device *d, void *priv),
                            void *priv);
/* How many config changes the device has seen since it was attached. */
unsigned gv_config_changes(const struct gv_device *d);

/* The event-channel fd, to poll() with other fds; then call gv_poll(d, 0).
 * It changes when the domain was saved and restored (the library then
 * binds its event channels anew on a new handle): ask again after each
 * gv_poll rather than keeping it. */
int gv_device_fd(const struct gv_device *d);
/* Processes events and completions, waiting at most timeout_ms for at
 * least one. -1: no deadline of the caller's, but the wait is still bounded:
 * with requests in flight, until one completes or none has for
 * io_timeout_ms (the device then breaks: -EIO); with none in flight, at most
 * io_timeout_ms (returns 0). Returns the number of requests completed (their
 * callbacks ran), or -EIO when the device is broken. Logs once when the
 * device breaks or the backend goes away. After the library attached the
 * device again in a restored domain (xl save / xl restore) it returns at
 * once, possibly 0: the requests in flight were issued again on the new
 * rings, and gv_device_fd may have changed. */
int gv_poll(struct gv_device *d, int timeout_ms);
/* The same for queue q only (GRANT_VIRTIO_0.3, "Multi-queue" above): runs
 * only q's callbacks and returns how many ran, or -EIO (broken), -EINVAL
 * (no queue q). Any number of threads may wait at once, each on its own
 * queue; a re-attach after a restore (done by whichever thread saw it,
 * rebuilding every queue, each queue's requests issued again on it)
 * returns every thread's wait at once, as gv_poll's. */
int gv_poll_queue(struct gv_device *d, unsigned q, int timeout_ms);

/* ---- virtio-blk ---- */
enum gv_blk_op {
	GV_BLK_READ = 0,            /* VIRTIO_BLK_T_IN */
	GV_BLK_WRITE = 1,           /* VIRTIO_BLK_T_OUT */
	GV_BLK_FLUSH = 4,           /* VIRTIO_BLK_T_FLUSH */
	GV_BLK_GET_ID = 8,          /* VIRTIO_BLK_T_GET_ID: 20 bytes */
	GV_BLK_DISCARD = 11,        /* VIRTIO_BLK_T_DISCARD: len bytes at sector, no buf */
	GV_BLK_WRITE_ZEROES = 13,   /* VIRTIO_BLK_T_WRITE_ZEROES: len bytes at sector, no buf */
};
#define GV_BLK_ZEROES_UNMAP 1u      /* gv_blk_io.flags: the zeroed range may be freed */

struct gv_blk_io {
	/* set by the caller */
	enum gv_blk_op op;
	uint64_t sector;            /* 512-byte units */
	void *buf;                  /* any alignment; pool buffers avoid the copy */
	size_t len;                 /* a multiple of 512 for READ/WRITE/DISCARD/WRITE_ZEROES;
	                               20 for GET_ID; 0 for FLUSH */
	unsigned flags;             /* WRITE_ZEROES: GV_BLK_ZEROES_UNMAP or 0 */
	void (*done)(struct gv_blk_io *io);   /* runs inside gv_poll, gv_detach, or gv_blk_submit
	                                         (a piece that failed at once); may be NULL */
	void *priv;
	/* set before done runs */
	int result;                 /* 0, -EIO (device error or broken), -EOPNOTSUPP, -EROFS */
	/* private to the library */
	size_t issued, finished;
	unsigned chunks;
	bool queued;
	struct gv_blk_io *next;
};

/* Queues io; requests larger than a page, than size-max or than the queue
 * are split into several virtio requests; as many are in flight as the
 * queue and the DMA pool hold, the rest go out as completions free room
 * (inside gv_poll). 0: queued, done will run exactly once; -EINVAL (bad
 * length or op), -ENOSPC (past the disk's end), -EROFS, -EIO (broken):
 * done will not run. Does not log. */
int gv_blk_submit(struct gv_device *d, struct gv_blk_io *io);
/* The same on queue q (GRANT_VIRTIO_0.3; gv_blk_submit is queue 0): the
 * request's pieces all go on q's ring and its callback runs in q's thread.
 * -EINVAL also when the device has no queue q. */
int gv_blk_submit_queue(struct gv_device *d, unsigned q, struct gv_blk_io *io);

/* Synchronous, byte-granular: reads/writes len bytes at byte offset off
 * (unaligned ends are read-modify-written). 0 or -errno; a failed write
 * may have written part of the range. */
int gv_blk_read(struct gv_device *d, uint64_t off, void *buf, size_t len);
int gv_blk_write(struct gv_device *d, uint64_t off, const void *buf, size_t len);
int gv_blk_flush(struct gv_device *d);
/* Synchronous, sector-granular (off and len multiples of 512): gives the
 * range back (DISCARD: it may read as zeros or as before afterwards), or
 * makes it read as zeros (WRITE_ZEROES; unmap: the device may free it).
 * -EOPNOTSUPP when the device does not offer it (read-only disks do not). */
int gv_blk_discard(struct gv_device *d, uint64_t off, uint64_t len);
int gv_blk_write_zeroes(struct gv_device *d, uint64_t off, uint64_t len, bool unmap);
/* The device id string, NUL-terminated (at most 20 bytes + NUL). */
int gv_blk_get_id(struct gv_device *d, char id[21]);

/* ---- virtio-rng ---- */
/* Reads up to len random bytes; returns how many the device filled (> 0),
 * or -errno. */
ssize_t gv_rng_read(struct gv_device *d, void *buf, size_t len);

/* ---- zero-copy buffers (bounce and pool strategies) ---- */
/* A buffer of len bytes inside the granted pool: I/O on it is not copied.
 * NULL with errno ENOMEM (never fits), EAGAIN (pool full now), EINVAL (no
 * pool: grant or bypass strategy). Does not log. */
void *gv_pool_alloc(struct gv_device *d, size_t len);
void gv_pool_free(struct gv_device *d, void *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
