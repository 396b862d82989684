/*
 * frontend/device.h: the library's private device state, shared by the
 * setup code (transport.c), the event/completion loop (io.c) and the
 * drivers (blk.c, rng.c). Not installed; see grant_virtio.h for the API.
 */
#ifndef GVFE_DEVICE_H
#define GVFE_DEVICE_H

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
	/* One ring token completed (len valid when err == 0), or failed. */
	void (*complete)(struct gv_device *d, void *token, uint32_t len, int err);
	/* Issues what waits for room; with the device broken or stopped, fails
	 * it. NULL: requests never wait. */
	void (*pump)(struct gv_device *d);
	/* true while requests were accepted but are not on the ring yet. */
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
	 * request behind token was on a ring whose backend is gone with the
	 * old domain and will never complete it. The driver releases its DMA
	 * mapping and issues it again (from pump) once the device is attached
	 * anew. Required: a device without it fails its requests instead. */
	void (*requeue)(struct gv_device *d, void *token);
	/* Undoes setup only (the old domain's grants), keeping what probe read
	 * and the requests waiting to be issued: probe (which then reuses
	 * d->drv_priv) and setup follow in the new domain. NULL: nothing. */
	void (*unsetup)(struct gv_device *d);
};

extern const struct gvfe_driver gvfe_blk_driver, gvfe_rng_driver;

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
	struct gvfe_vq *vq;           /* one queue: blk and rng both use queue 0 */
	evtchn_port_t dev_port, vq_port;
	struct gvfe_dma_coherent live; /* byte 0: us, byte 1: the backend */
	struct gvfe_dma_coherent inflight; /* queue 0's in-flight record (feature-inflight) */
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

	int ios_completed;          /* by the current gv_poll */
	int io_timeout_ms;          /* no completion for this long with requests in flight: broken */
	long long last_progress_ms; /* a completion, or the first request into an idle ring */

	struct gv_stats st;

	/* what gv_attach was asked for: a re-attach after a restore asks again */
	enum gvfe_dma_strategy strategy;
	unsigned opt_pool_pages, opt_queue_size;
	/* Save/restore (transport.c): set by gv_attach, called by io.c when this
	 * domain's id changed under a connected device (the toolstack restored
	 * the guest in a new domain). 0: attached anew, the requests go on;
	 * -errno: the device is broken. */
	int (*reattach)(struct gv_device *d, domid_t new_domid);
	bool reattaching;           /* inside reattach: no second one */
	bool reattached;            /* gv_poll returns at once after a re-attach */

	/* config changes (docs/transport.md, "Config changes") */
	uint64_t cfg_gen;           /* the backend's config-generation last read */
	unsigned cfg_changes;       /* seen since attach */
	void (*cfg_cb)(struct gv_device *d, void *priv);
	void *cfg_cb_priv;
};

/* io.c: the event loop; transport.c and the drivers call it, it calls a
 * driver only through d->drv. */
void gvfe_dev_fail(struct gv_device *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gvfe_dev_fail_inflight(struct gv_device *d);
int gvfe_dev_check_backend(struct gv_device *d);
/* Re-reads BE state and device-status; a stopped device is marked broken.
 * Returns the state read, or -errno (-ENOENT: the BE directory is gone). */
int gvfe_dev_refresh_backend(struct gv_device *d);
/* Copies the backend's `error` key (if any) into d->error. */
void gvfe_dev_read_be_error(struct gv_device *d);
/* Waits for an event (evtchn or xenstore watch) at most timeout_ms (>= 0)
 * and processes it. 0, or -errno from poll. */
int gvfe_dev_wait_event(struct gv_device *d, int timeout_ms);
/* Reads the backend's config-generation (absent: 0) into *gen. */
int gvfe_dev_read_cfg_gen(struct gv_device *d, uint64_t *gen);
/* A driver put requests on an idle ring: the completion clock starts. */
void gvfe_dev_started_io(struct gv_device *d);
/* Reads this domain's id as xenstore now sees it (the relative key
 * "domid"); if it is not the one the device was attached in, the domain was
 * saved and restored (xl save / xl restore, xl migrate): calls d->reattach.
 * true when a restore was seen (attached anew or broken). */
bool gvfe_dev_check_restored(struct gv_device *d);

#endif
