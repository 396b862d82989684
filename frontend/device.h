/*
 * frontend/device.h: the library's private device state, shared by the
 * setup code (transport.c), the event/completion loop (io.c) and the
 * drivers (blk.c, rng.c). Not installed; see grant_virtio.h for the API.
 */
#ifndef GVFE_DEVICE_H
#define GVFE_DEVICE_H

#include <pthread.h>
#include <xenstore.h>
#include "clock.h"
#include "grant_virtio.h"
#include "dma.h"
#include "virtqueue.h"

struct gv_device;

/* A device-type driver (blk.c, rng.c), in the manner of Linux's struct
 * virtio_driver: the generic code (transport.c, io.c) calls it only through
 * this table and never names a driver; the driver keeps its own state in
 * d->drv_priv. Order: probe (after BE=InitWait), features negotiated, the
 * queue created, setup; then pump/complete from the event loop; teardown
 * once, on every path after probe was called. Only complete is required;
 * an operation left NULL has nothing to do. */
struct gvfe_driver {
	const char *name;           /* "virtio-blk" */
	const char *type;           /* the backend's `type` key: "virtio,device2" */
	unsigned virtio_id;
	uint64_t features;          /* device-type feature bits the driver accepts */
	/* Allocates d->drv_priv and reads the device's configuration keys.
	 * 0 or -errno with a line in err. */
	int (*probe)(struct gv_device *d, char *err, size_t errlen);
	/* After negotiation (d->drv_features) and the queue: the driver's
	 * DMA-dependent state. 0 or -errno. */
	int (*setup)(struct gv_device *d);
	/* One ring token of queue qi completed (len valid when err == 0), or
	 * failed. */
	void (*complete)(struct gv_device *d, unsigned qi, void *token, uint32_t len, int err);
	/* Issues what waits for room on queue qi; with the device broken or
	 * stopped, fails it. NULL: requests never wait. */
	void (*pump)(struct gv_device *d, unsigned qi);
	/* true while requests were accepted but are not on a ring yet. */
	bool (*pending)(const struct gv_device *d);
	/* The backend announced a config change (config-generation): reads the
	 * device's configuration keys that may change again. 0 or -errno.
	 * NULL: nothing of the device's configuration changes. */
	int (*config_changed)(struct gv_device *d);
	/* Device-type fields of gv_get_info. */
	void (*info)(const struct gv_device *d, struct gv_device_info *i);
	/* Undoes setup and probe; frees d->drv_priv. */
	void (*teardown)(struct gv_device *d);
	/* The domain was saved and restored (transport.c, reattach): the
	 * request behind token was on queue qi's ring, whose backend is gone
	 * with the old domain and will never complete it. The driver releases
	 * its DMA mapping and issues it again on the same queue (from pump)
	 * once the device is attached anew. With the lock held; it runs no
	 * callback. Required: a device without it fails its requests instead. */
	void (*requeue)(struct gv_device *d, unsigned qi, void *token);
	/* Undoes setup only (the old domain's grants), keeping what probe read
	 * and the requests waiting to be issued: probe (which then reuses
	 * d->drv_priv) and setup follow in the new domain. NULL: nothing. */
	void (*unsetup)(struct gv_device *d);
};

extern const struct gvfe_driver gvfe_blk_driver, gvfe_rng_driver;

/* Most virtqueues one device uses (VIRTIO_BLK_F_MQ). */
#define GVFE_MAX_QUEUES 8u

/* One virtqueue with its own event channel and in-flight record. */
struct gvfe_queue {
	struct gvfe_vq *vq;
	evtchn_port_t port;
	struct gvfe_dma_coherent inflight; /* its in-flight record (feature-inflight) */
	uint64_t interrupts;        /* events on port */
	/* requests of this queue that finished: their callbacks run, outside
	 * the device lock, in the thread that polls or submits on this queue */
	struct gv_blk_io *done_head, *done_tail;
	unsigned done_other;        /* finished requests without a gv_blk_io (rng) */
};

struct gv_device {
	struct gv_platform *p;
	struct xs_handle *xs;
	int xs_fd;
	char fe_dir[128], be_dir[160];
	char watch_token[48];
	bool watching;
	bool xl_disk;                   /* device/virtio_disk (xl's disk= syntax) */
	unsigned devid;
	domid_t backend_id;
	unsigned virtio_id;
	const struct gvfe_driver *drv;
	void *drv_priv;             /* the driver's own state */
	uint64_t dev_features, drv_features;
	unsigned dev_num_queues, max_queue_size, max_persistent;

	struct gvfe_dma_dev dma;
	bool dma_ready;
	struct gvfe_dma_stats dma_stats_before; /* of DMA devices before a re-attach */
	struct gvfe_queue q[GVFE_MAX_QUEUES]; /* nq used; rng uses queue 0 only */
	unsigned nq;
	evtchn_port_t dev_port;
	struct gvfe_dma_coherent live; /* byte 0: us, byte 1: the backend */
	/* Threads (grant_virtio.h): every field is used with lock held, except
	 * in attach and detach (one thread). One thread at a time waits on the
	 * event fd (waiter); the others wait on cond, which it broadcasts
	 * after each wake-up. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool lock_ready, waiter;
	bool restartable;           /* the record is granted: a new backend may take over */
	bool backend_away;          /* its liveness byte cleared: waiting for a successor */
	long long away_since_ms;
	long long away_spent_ms;    /* time away since the last completion: one budget */
	int restart_timeout_ms;
	int timeout_ms;

	enum xenbus_state be_state;
	bool published;             /* FE=Initialised written: a Connected now answers us */
	bool connected;
	bool backend_seen_alive;    /* byte 1 was 1 once: its 0 now means gone */
	bool broken;                /* sticky */
	bool closing;               /* detach started: no new requests */
	char error[512];

	int io_timeout_ms;          /* no completion for this long with requests in flight: broken */
	long long last_progress_ms; /* a completion, or the first request into an idle ring */

	struct gv_stats st;

	/* what gv_attach was asked for: a re-attach after a restore asks again */
	enum gvfe_dma_strategy strategy;
	unsigned opt_pool_pages, opt_queue_size, opt_num_queues;
	/* Save/restore (transport.c): set by gv_attach, called by io.c when this
	 * domain's id changed under a connected device (the toolstack restored
	 * the guest in a new domain). 0: attached anew, the requests go on;
	 * -errno: the device is broken. Runs with lock held (the whole
	 * handshake: the other threads wait), every queue rebuilt; callbacks
	 * of what failed run after the lock is let go, as always. */
	int (*reattach)(struct gv_device *d, domid_t new_domid);
	bool reattaching;           /* inside reattach: no second one */
	/* re-attaches done: a gv_poll (on any queue) that a re-attach spans
	 * returns at once, so that its caller looks at its requests again and
	 * asks gv_device_fd again */
	unsigned reattach_gen;

	/* config changes (docs/transport.md, "Config changes") */
	uint64_t cfg_gen;           /* the backend's config-generation last read */
	unsigned cfg_changes;       /* seen since attach */
	void (*cfg_cb)(struct gv_device *d, void *priv);
	void *cfg_cb_priv;
	bool cfg_cb_due;            /* a change seen: cfg_cb runs after the lock is let go */
};

/* io.c: the event loop; transport.c and the drivers call it, it calls a
 * driver only through d->drv. */
void gvfe_dev_fail(struct gv_device *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gvfe_dev_fail_inflight(struct gv_device *d);
int gvfe_dev_check_backend(struct gv_device *d);
/* Re-reads BE state and device-status; a stopped device is marked broken.
 * Returns the state read, or -errno (-ENOENT: the BE directory is gone). */
int gvfe_dev_refresh_backend(struct gv_device *d);
/* Reads the backend's key (at most max) into *out: 1 read, 0 absent and not
 * required, else negative errno with "backend key DIR/KEY: why" in err. */
int gvfe_dev_read_be_u64(struct gv_device *d, const char *key, uint64_t max, bool required,
                         uint64_t *out, char *err, size_t errlen);
/* Copies the backend's `error` key (if any) into d->error. */
void gvfe_dev_read_be_error(struct gv_device *d);
/* Waits for an event (evtchn or xenstore watch) at most timeout_ms (>= 0)
 * and processes it. 0, or -errno from poll. */
int gvfe_dev_wait_event(struct gv_device *d, int timeout_ms);
/* Reads the backend's config-generation (absent: 0) into *gen. */
int gvfe_dev_read_cfg_gen(struct gv_device *d, uint64_t *gen);
/* A driver put requests on an idle ring: the completion clock starts. */
void gvfe_dev_started_io(struct gv_device *d);
/* Requests in flight on every queue. */
unsigned gvfe_dev_in_flight(const struct gv_device *d);
/* A request of queue qi finished: its callback runs once the lock is let
 * go (gvfe_dev_run_done). NULL io: a finished request without a callback. */
void gvfe_dev_finished(struct gv_device *d, unsigned qi, struct gv_blk_io *io);
/* Takes the finished requests of queue qi (all queues: qi < 0) with the
 * lock held, then lets it go and runs their callbacks. Returns how many. */
int gvfe_dev_unlock_run_done(struct gv_device *d, int qi);
/* gv_poll on queue qi, or on every queue (qi < 0). */
int gvfe_dev_poll(struct gv_device *d, int qi, int timeout_ms);
/* Reads this domain's id as xenstore now sees it (the relative key
 * "domid"); if it is not the one the device was attached in, the domain was
 * saved and restored (xl save / xl restore, xl migrate): calls d->reattach.
 * true when a restore was seen (attached anew or broken). */
bool gvfe_dev_check_restored(struct gv_device *d);

#endif
