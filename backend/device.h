/*
 * backend/device.h: how the parts of the gv-backend daemon meet, and the
 * device state machine (device.c).
 *
 *   gv-backend.c  command line, the poll loop, xenstore watches, signals
 *   config.c      which image serves which guest's disk (--disk, --config)
 *   service.c     pidfile, systemd notification, SIGHUP reload
 *   control.c     the control socket and --status
 *   device.c      set-up: the xenbus handshake, mapping the rings and the
 *                 liveness page, binding event channels, teardown
 *   vring.c       the hot path: device side of the split virtqueue (copy the
 *                 chain out of shared memory once, validate the copy, map the
 *                 request's grants, publish the used element, notify)
 *   qthread.c     --queue-threads: a queue served by a thread of its own
 *   mapcache.c    bounded LRU of persistent-pool mappings
 *   blk.c rng.c   the device types
 *   direct.c      gv-backend-bench only (GVBE_BENCH): the pool mapped once
 *
 * Headers: vring.h, mapcache.h and blk.h are all the per-request code sees;
 * config.h, device.h and service.h are the daemon's.
 */
#ifndef GVBE_DEVICE_H
#define GVBE_DEVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "abi.h"
#include "platform.h"
#include "blk.h"
#include "config.h"
#include "vring.h"

#define GVBE_MAX_QUEUES GVBE_DISK_MAX_QUEUES

enum gvbe_dev_phase {
	GVBE_DEV_NEW,             /* seen, not yet published */
	GVBE_DEV_OPENING,         /* its NBD disk's thread connects: published when done */
	GVBE_DEV_INITWAIT,        /* published, waiting for the frontend */
	GVBE_DEV_CONNECTED,
	GVBE_DEV_BROKEN,          /* fatal error: everything unmapped, BE=Closing */
	GVBE_DEV_CLOSED,          /* disconnected, BE=Closed; republished when the FE allows */
	GVBE_DEV_REFUSED,         /* unsupported type / no disk: BE=Closed until recreated */
	GVBE_DEV_GONE,            /* online=0 or the domain died: forgotten until online again */
};

struct gvbe_backend;

/* Where a device comes from (device.c's table of roots):
 *   GVBE_KIND_VIRTIO   backend/virtio/<fe>/<devid>, from xl's virtio = [...];
 *                      disks from --disk / backend.conf
 *   GVBE_KIND_XL_DISK  backend/virtio_disk/<fe>/<vdev>, from xl's disk = [
 *                      "...,specification=virtio,backendtype=standalone,..."]:
 *                      the image is the domain config's params (target=),
 *                      allowed only under an xl-disk-dir of the configuration */
enum gvbe_dev_kind { GVBE_KIND_VIRTIO, GVBE_KIND_XL_DISK, GVBE_KINDS };

struct gvbe_dev_area { void *addr; unsigned count; grant_ref_t ref0; };

struct gvbe_dev {
	struct gvbe_backend *be;
	domid_t fe;
	unsigned devid;
	enum gvbe_dev_kind kind;
	char be_dir[96], fe_dir[96];
	char name[64];                  /* the guest's name, for messages and --disk */
	char label[96];                 /* "guest NAME device N", for logs */
	unsigned virtio_id;
	enum gvbe_dev_phase phase;
	uint64_t features;              /* offered */
	unsigned nq;                    /* offered */
	bool allow_bypass;
	bool fe_watched;
	bool watch_pending;             /* a watch fired for it: reconcile (coalesced) */
	double watch_last;              /* when a watch last made us look (ms, monotonic) */
	struct gvbe_blk blk;
	struct gvbe_blk_queue bq[GVBE_MAX_QUEUES];  /* blk: each queue's side of the disk
	                                               (its io_uring, its counters) */
	char image[512];                /* the image served (an xl disk: params resolved) */
	uint32_t cfg_gen;               /* config-generation: config changes published */
	/* while connected */
	uint64_t driver_features;
	bool persistent;
	unsigned fe_nq;
	evtchn_port_t dev_port;         /* local end of the device event channel */
	volatile uint8_t *liveness;     /* byte 0: frontend alive, byte 1: us */
	struct gvbe_dev_area area[GVBE_MAX_QUEUES][3];
	volatile struct gv_inflight *inflight[GVBE_MAX_QUEUES]; /* the driver's record pages */
	struct gvbe_vq vq[GVBE_MAX_QUEUES];
	bool vq_live[GVBE_MAX_QUEUES];
	struct gvbe_mapcache *cache[GVBE_MAX_QUEUES];   /* persistent pool, per queue */
	/* --queue-threads: the queue's own thread and platform handle, through
	 * which everything of the queue is mapped and bound (qthread.h); NULL:
	 * the loop serves the queue through be->p */
	struct gvbe_qthread *qt[GVBE_MAX_QUEUES];
	/* the queues' counters of earlier connections (a queue's own start at
	 * 0 with each connection): the device's totals are these plus the
	 * live queues' (--status --json) */
	struct gvbe_qstats retired;
	uint64_t retired_requests;
#ifdef GVBE_BENCH
	struct gvbe_direct *direct;     /* --bench-direct with a persistent pool */
#endif
	struct gvbe_dev *next;
};

struct gvbe_backend {
	struct gv_platform *p;
	struct xs_handle *xs;
	char root[64];                  /* /local/domain/<self>/backend/virtio */
	char disk_root[64];             /* /local/domain/<self>/backend/virtio_disk */
	struct gvbe_disk_cfg *disks;
	bool allow_bypass;              /* --allow-bypass: every device */
	uint32_t grant_copy_max;        /* --grant-copy-max: requests outside a persistent
	                                   pool of at most this many bytes are grant-copied */
#ifdef GVBE_BENCH
	bool bench_direct;              /* --bench-direct (simulation only; make bench) */
	unsigned map_batch;             /* --map-batch 1 (make bench); 0: batched */
#endif
	struct gvbe_dev *devs;
	int aio_efd;                    /* eventfd of the loop's queues' io_urings; -1: synchronous I/O */
	/* --queue-threads: each queue of a block device (not NBD) served by a
	 * thread of its own, with a handle opened like be->p (popts) */
	bool queue_threads;
	unsigned poll_us;               /* --poll-us, for the queue threads too */
	struct gv_platform_opts popts;
	int qt_efd;                     /* a queue thread found its queue broken */
	struct gv_counters qt_retired;  /* the counters of the queue threads' closed handles */
	int open_efd;                   /* eventfd: an NBD disk's connection was made or failed */
	/* xenstore watch work, coalesced: a flag per device and two for the
	 * whole tree, so a flood of events costs no memory per event */
	bool scan_pending;              /* the root changed: scan everything */
	bool release_pending;           /* @releaseDomain fired */
	unsigned watch_pending;         /* devices with watch_pending set */
};

/* Looks at device (fe, devid) afresh (creating it if its BE dir exists) and
 * moves it along the handshake. Never fails: problems are the device's. */
void gvbe_dev_reconcile(struct gvbe_backend *be, enum gvbe_dev_kind kind, domid_t fe,
                        unsigned devid);
/* A watched path (or token) into a device: 1 and *kind, *fe, *devid set; 0: a
 * root or something above a device; -EINVAL: none of ours. */
int gvbe_dev_parse_path(const struct gvbe_backend *be, const char *path,
                        enum gvbe_dev_kind *kind, domid_t *fe, unsigned *devid);
/* Every device under root, and every known one (some may have vanished). */
void gvbe_dev_scan(struct gvbe_backend *be);
/* @releaseDomain: forgets the devices of domains that are gone. */
void gvbe_dev_release_domains(struct gvbe_backend *be);
/* Notes that a watch fired for device (fe, devid): its reconcile is due
 * (once, however many events came). Unknown devices make a scan due. */
void gvbe_dev_note_watch(struct gvbe_backend *be, enum gvbe_dev_kind kind, domid_t fe,
                         unsigned devid);
/* Does due watch work: @releaseDomain, a scan, then at most budget device
 * reconciles, each device at most once per GVBE_WATCH_INTERVAL_MS. Returns
 * -1 if nothing is left, else the milliseconds until the next is due (0:
 * now); the caller serves the rings and comes back within that. */
#define GVBE_WATCH_INTERVAL_MS 10
int  gvbe_dev_watch_work(struct gvbe_backend *be, unsigned budget);
/* open_efd fired: the devices whose NBD connection was made are published
 * (or refused with the reason). The loop never waits for a server. */
void gvbe_dev_open_done(struct gvbe_backend *be);
/* An event on a local port: liveness/status or a queue kick. */
void gvbe_dev_event(struct gvbe_backend *be, evtchn_port_t port);
/* Completes the requests whose asynchronous I/O finished, on every device,
 * and shows the drivers their used elements. Never blocks. */
void gvbe_dev_reap(struct gvbe_backend *be);
/* For the optional bounded poll: true if some connected device has I/O in
 * flight. */
bool gvbe_dev_busy(struct gvbe_backend *be);
/* Looks (without a system call) for work that needs no notification:
 * completions in a ring, requests in an avail ring. Marks such queues to
 * be served (as if stopped at their budget). True if it found any. */
bool gvbe_dev_poll(struct gvbe_backend *be);
/* qt_efd fired: breaks the devices whose queue thread found a queue broken. */
void gvbe_dev_queue_work(struct gvbe_backend *be);
/* The platform counters of the daemon: the loop's handle and every queue
 * thread's (live ones under their locks, closed ones retired). */
void gvbe_dev_counters(struct gvbe_backend *be, struct gv_counters *c);
/* Queue q of d is read (status) or what it reads is changed (a resize)
 * between these two: its thread, if it has one, waits. */
void gvbe_dev_queue_lock(struct gvbe_dev *d, unsigned q);
void gvbe_dev_queue_unlock(struct gvbe_dev *d, unsigned q);
/* The block I/O counters of d's queues, summed (under their locks). */
void gvbe_dev_blk_counters(struct gvbe_dev *d, struct gvbe_blk_queue *sum);
/* Serves queues that stopped at their batch budget; true if any still has more. */
bool gvbe_dev_serve_pending(struct gvbe_backend *be);
/* Online resize: looks at the size of the image of a published blk device
 * (InitWait or Connected) again. Grown: the new capacity and config-generation
 * + 1 are written (one transaction), the frontend raises a config change.
 * Refused, with nothing changed: the image shrank, a read-only disk, an NBD
 * export (its size is fixed when connecting), a device not published. The
 * one-line answer for the administrator goes to msg. Returns 1 resized, 0
 * unchanged, negative errno refused. */
int  gvbe_dev_resize(struct gvbe_dev *d, char *msg, size_t msglen);
/* The same for every blk device: SIGHUP and "resize" with no device. Each
 * answer is one line on f (NULL: only logged). Returns the refusals. */
unsigned gvbe_dev_resize_all(struct gvbe_backend *be, FILE *f);
/* The device (guest given as its name or domain id) or NULL. */
struct gvbe_dev *gvbe_dev_lookup(struct gvbe_backend *be, const char *guest, unsigned devid);
/* Closes every device (unmap all, BE=Closed) and frees them. */
void gvbe_dev_shutdown_all(struct gvbe_backend *be);
/* The hand-over to a successor (SIGTERM; docs/transport.md, "Backend
 * restart"): connected devices stay Connected, their I/O in flight finished
 * and published (at most timeout_ms in all), then every grant unmapped and
 * every port unbound, so the next gv-backend takes them over; no state is
 * written, of any device (one in InitWait is answered by the successor).
 * Frees them all, except a device whose I/O would not finish: its pages
 * stay mapped until the process exits and its requests stay marked in the
 * record for the successor. Returns the number of devices handed over. */
unsigned gvbe_dev_handover_all(struct gvbe_backend *be, int timeout_ms);

#endif
