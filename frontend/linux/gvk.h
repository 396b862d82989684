/* SPDX-License-Identifier: GPL-2.0 */
/*
 * frontend/linux/gvk.h: grant_virtio.ko, the guest kernel side of grant-virtio.
 *
 * A xenbus frontend for device/virtio/<n> (what xl writes for virtio = [...]),
 * speaking docs/transport.md to gv-backend, that registers one virtio_device
 * per xenbus device. The virtio device's parent (the xenbus device) carries DMA
 * ops of this module, so every address the kernel's own virtio_ring and
 * drivers (virtio_blk, virtio-rng) hand the device is a grant DMA address
 * (common/dma_addr_bits.h).
 */
#ifndef GVK_H
#define GVK_H

#include <linux/types.h>
#include <linux/spinlock.h>
#include <linux/xarray.h>
#include <linux/completion.h>
#include <linux/workqueue.h>
#include <linux/mutex.h>
#include <linux/wait.h>
#include <linux/virtio.h>
#include <linux/virtio_blk.h>
#include <xen/xenbus.h>
#include <xen/grant_table.h>

#include "dma_addr_bits.h"

#define GVK_MAX_VQS     2
#define GVK_QUEUE_SIZE  256     /* desc | avail | used each start a page (docs/transport.md) */
#define GVK_SLOT_SHIFT  9       /* bounce pool allocation unit: 512 bytes */

enum gvk_strategy { GVK_GRANT, GVK_BOUNCE, GVK_BYPASS };

/* Where the device is in the handshake of docs/transport.md. */
enum gvk_phase {
	GVK_IDLE,         /* waiting for the backend's InitWait */
	GVK_REGISTERED,   /* virtio device registered, not (yet) connected */
	GVK_CONNECTING,   /* FE=Initialised, waiting for BE=Connected */
	GVK_CONNECTED,
	GVK_CLOSING,      /* FE=Closing, waiting for BE=Closed */
	GVK_STOPPED,      /* refused, dead or removed: no new attach until reload */
};

struct gvk_dev;

struct gvk_vq {
	struct gvk_dev *gd;
	struct virtqueue *vq;
	evtchn_port_t port;
	int irq;
	/* In-flight bookkeeping for failing requests when the backend dies
	 * (gvk_dead.c): per head, times it was made available minus times it
	 * was used, as seen by scanning the rings. */
	spinlock_t track_lock;
	u16 avail_seen, used_seen;
	s16 *inflight;
	/* the backend's in-flight record of this queue (docs/transport.md,
	 * Backend restart): a zeroed page granted writable, written only by the
	 * backend; NULL when the backend offers no takeover */
	void *record;
	grant_ref_t record_ref;
	/* bypass only: the ring pages granted by hand (dma-direct gave no grants) */
	grant_ref_t bypass_ref;
	unsigned int bypass_nr;
};

/* One registration of a virtio device (a new one after each detach). */
struct gvk_vdev {
	struct virtio_device vdev;
	struct gvk_dev *gd;
};

struct gvk_dev {
	struct xenbus_device *xb;
	enum gvk_strategy strategy;
	domid_t be_domid;
	u64 dma_mask;

	struct mutex lock;            /* phase changes from works and callbacks */
	enum gvk_phase phase;
	int be_state;                 /* last backend state seen */
	struct completion conn_done;  /* BE Connected, Closing or Closed while connecting */
	struct completion closed;     /* BE Closed while closing */
	wait_queue_head_t state_wq;   /* woken at every backend state change */
	bool resumed;                 /* restored from a save: re-read the device before connecting */
	bool refused;
	bool dead;                    /* backend went away while connected */
	bool be_inflight;             /* backend offers feature-inflight (takeover) */
	bool away;                    /* backend gone, waiting for one to take the device over */
	unsigned long away_since;     /* jiffies */
	unsigned int restarts;        /* takeovers survived */
	struct delayed_work restart_work;  /* no backend came back in time: go dead */
	struct work_struct register_work;
	struct work_struct live_work;
	struct work_struct fail_work;

	struct gvk_vdev *gv;          /* registered virtio device or NULL */
	u32 virtio_id;
	u64 dev_features;
	unsigned int be_nq, max_qsize;
	u8 status;
	struct virtio_blk_config blkcfg;
	/* config changes (online resize): a watch on the backend's
	 * config-generation; the generation the config space was read at */
	struct xenbus_watch cfg_watch;
	bool cfg_watched;
	u32 cfg_gen;

	/* liveness page and device event channel (docs/transport.md, Liveness) */
	u8 *live;
	grant_ref_t live_ref;
	bool live_granted;
	evtchn_port_t dev_port;
	int dev_irq;

	struct gvk_vq vqs[GVK_MAX_VQS];
	unsigned int nvqs;

	/* DMA (gvk_dma.c) */
	struct xarray pages;          /* granted ref -> struct page *, for every ref of this device */
	spinlock_t pool_lock;
	u8 *pool;                     /* bounce: pool_pages pages granted once, refs pool_ref.. */
	unsigned int pool_pages;
	grant_ref_t pool_ref;
	unsigned long *pool_map;      /* one bit per 512-byte slot */
	unsigned int pool_slots, pool_hint;
	phys_addr_t *pool_orig;       /* per slot: the original buffer of a mapping starting there */
	atomic_t grants_active;
	atomic_t grants_leaked;
	atomic64_t bounced_bytes;
	atomic_t map_errors;
};

extern const struct dma_map_ops gvk_dma_ops;
int gvk_dma_init(struct gvk_dev *gd);           /* bounce: the pool */
void gvk_dma_exit(struct gvk_dev *gd);          /* ends what is left */
int gvk_grant_pages(struct gvk_dev *gd, struct page *page, unsigned int nr, bool readonly,
                    grant_ref_t *first);
void gvk_end_pages(struct gvk_dev *gd, grant_ref_t first, unsigned int nr);
void gvk_end_page_free(struct gvk_dev *gd, grant_ref_t ref, struct page *page);
void *gvk_dma_to_virt(struct gvk_dev *gd, dma_addr_t dma, size_t len);

void gvk_dma_resume(struct gvk_dev *gd);        /* grants the bounce pool again after a restore */

void gvk_track(struct gvk_vq *q);                /* scan avail and used (gvk_dead.c) */
void gvk_fail_inflight(struct work_struct *w);   /* the backend is gone */
unsigned int gvk_drain(struct gvk_dev *gd, unsigned long timeout);  /* requests still in flight */

void gvk_shut(struct gvk_dev *gd);               /* drain, close, fail what is left (gvk_main.c) */

/* gvk_pm.c: guest shutdown, save and restore */
int gvk_pm_init(struct xenbus_driver *drv);
void gvk_pm_exit(void);
int gvk_xb_resume(struct xenbus_device *xb);
extern struct dev_pm_domain gvk_vdev_pm_domain;

const char *gvk_strategy_name(enum gvk_strategy s);

#endif
