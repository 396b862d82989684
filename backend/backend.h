/*
 * backend/backend.h: how the parts of the gv-backend daemon meet.
 *
 *   gv-backend.c  command line, the poll loop, xenstore watches, signals
 *   config.c      which image serves which guest's disk (--disk, --config)
 *   device.c      set-up: the xenbus handshake, mapping the rings and the
 *                 liveness page, binding event channels, teardown
 *   vring.c       the hot path: device side of the split virtqueue (copy the
 *                 chain out of shared memory once, validate the copy, map the
 *                 request's grants, publish the used element, notify)
 *   mapcache.c    bounded LRU of persistent-pool mappings
 *   direct.c      bench-only --bench-direct: the pool mapped once (no grants per request)
 *   blk.c rng.c   the device types
 *
 * Everything runs on one thread (see gv-backend.c for why); nothing here
 * is thread-safe.
 */
#ifndef GV_BACKEND_BACKEND_H
#define GV_BACKEND_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include "abi.h"
#include "platform.h"

/* ---- limits the backend offers ------------------------------------------- */
#define GV_BE_MAX_QUEUE_SIZE   256u   /* max-queue-size */
#define GV_BE_MAX_PERSISTENT   1024u  /* max-persistent-grants (pages) */
#define GV_BE_BLK_SEG_MAX      32u    /* config/seg-max */
#define GV_BE_BLK_SIZE_MAX     65536u /* config/size-max */
#define GV_BE_REQ_MAX_PAGES    640u   /* pages one request may map (<= SIM_MAX_BATCH) */

/* ---- mapcache.c: persistent-pool mappings, bounded, LRU ------------------- */
struct gv_mapcache;
struct gv_mapcache_stats {
	uint64_t hits, misses, evictions;
	unsigned pages;                 /* pages mapped by the cache now */
	unsigned capacity;
};

/* A cache for grants of domain `from`, holding at most capacity pages. */
int  gv_mapcache_create(struct gv_platform *p, domid_t from, unsigned capacity,
                        struct gv_mapcache **out);
/* Unmaps everything and frees the cache; NULL is fine. */
void gv_mapcache_destroy(struct gv_mapcache *mc);
/* Starts a request: mappings used (looked up or inserted) from now on are
 * pinned (never evicted) until the next begin. */
void gv_mapcache_begin(struct gv_mapcache *mc);
/* The page of ref mapped (writable if write), or NULL. A hit counts and
 * moves its mapping to the front of the LRU. */
void *gv_mapcache_lookup(struct gv_mapcache *mc, grant_ref_t ref, bool write);
/* Hands the cache a batch just mapped (addr, refs[n], write). Returns 1 if
 * the cache keeps it (it will unmap it on eviction), 0 if it cannot (more
 * than fits beside the pinned mappings): the caller unmaps it. Evicts LRU
 * mappings by unmapping them. */
int  gv_mapcache_insert(struct gv_mapcache *mc, void *addr, const grant_ref_t *refs,
                        unsigned n, bool write);
/* Unmaps every mapping (the device disconnects). */
void gv_mapcache_flush(struct gv_mapcache *mc);
void gv_mapcache_get_stats(const struct gv_mapcache *mc, struct gv_mapcache_stats *st);

/* ---- direct.c: bench-only, the pool mapped once (make bench's `direct`) ---- */
struct gv_direct;
int  gv_direct_create(struct gv_platform *p, domid_t from, struct gv_direct **out);
/* Unmaps every page and frees; NULL is fine. */
void gv_direct_destroy(struct gv_direct *dt);
/* The page of ref (writable if write), mapped on first touch and kept. NULL
 * if it cannot be mapped. */
void *gv_direct_page(struct gv_direct *dt, grant_ref_t ref, bool write);

/* ---- vring.c: a descriptor chain, copied and validated ------------------- */
/* One buffer of a request, from the private copy of its descriptor. */
struct gv_seg {
	grant_ref_t gref;               /* first page's grant ref */
	uint32_t off;                   /* offset in that page */
	uint32_t len;
	bool write;                     /* device-writable */
	unsigned npages;                /* refs gref .. gref+npages-1 */
	unsigned page0;                 /* index of its first page in gv_req.pages */
};

/* How the parser reaches an indirect table: copy len bytes at the grant
 * (gref, off) into dst. Negative errno if it cannot be mapped. */
struct gv_vq_mem {
	int (*copy_in)(void *ctx, grant_ref_t gref, uint32_t off, void *dst, size_t len);
	void *ctx;
};

struct gv_chain {
	uint16_t head;
	unsigned nseg, nread;           /* nread: readable segments come first */
	uint64_t read_bytes, write_bytes;
	unsigned max_seg;               /* capacity of seg[] */
	struct gv_seg *seg;
	struct vring_desc *itable;      /* private copy of an indirect table */
};

/* Parses the chain starting at head of the shared descriptor table `desc`
 * (num entries): every descriptor is read once into private memory, and only
 * that copy is checked and used. 0: ch filled. -EPROTO: the driver broke the
 * ring; why says how (one line). Does not log. */
int gv_vq_parse_chain(const volatile struct vring_desc *desc, unsigned num, uint16_t head,
                      bool indirect_ok, const struct gv_vq_mem *mem, struct gv_chain *ch,
                      char *why, size_t whylen);
/* Allocates the chain's private buffers for a queue of num entries. */
int  gv_chain_init(struct gv_chain *ch, unsigned num);
void gv_chain_fini(struct gv_chain *ch);

/* One request being served: its chain and the pages mapped for it. */
struct gv_vq;
struct gv_req {
	struct gv_vq *vq;
	struct gv_chain *ch;
	void *pages[GV_BE_REQ_MAX_PAGES];
	unsigned npages;                /* pages[] entries assigned (page0 indexes) */
	struct { void *addr; unsigned count; } unmap[8]; /* batches to unmap after */
	unsigned nunmap;
	/* scratch for one batch: distinct refs, and each page's slot among them */
	grant_ref_t uref[GV_BE_REQ_MAX_PAGES];
	uint16_t slot[GV_BE_REQ_MAX_PAGES];
	/* map_batch 1 (bench only): pages mapped one per call, unmapped after */
	void *single[GV_BE_REQ_MAX_PAGES];
	unsigned nsingle;
};

/* Maps the pages of segments [first, first+n) of the request: readable ones
 * read-only, writable ones writable, each set in one batch (or from the
 * map cache). 0, -E2BIG (too many pages), or the platform's error. */
int  gv_req_map(struct gv_req *r, unsigned first, unsigned n);
/* iovecs covering len bytes of segment s from offset off (it must be mapped).
 * Returns the number of iovecs used (adjacent pages merged), at most max. */
int  gv_req_iov(struct gv_req *r, unsigned s, uint32_t off, uint32_t len,
                struct iovec *iov, int max);
int  gv_req_copy_from(struct gv_req *r, unsigned s, uint32_t off, void *dst, uint32_t len);
int  gv_req_copy_to(struct gv_req *r, unsigned s, uint32_t off, const void *src, uint32_t len);

/* A device type's request handler: serves r, returns the used length (bytes
 * written to device-writable buffers). It maps what it needs with gv_req_map. */
typedef uint32_t (*gv_req_handler)(void *ctx, struct gv_req *r);

struct gv_vq {
	unsigned index;
	unsigned num;
	struct gv_platform *p;
	domid_t from;
	const volatile struct vring_desc *desc;   /* shared, read-only mapping */
	const volatile struct vring_avail *avail; /* shared, read-only mapping */
	volatile struct vring_used *used;         /* shared, writable mapping */
	uint16_t last_avail;            /* next avail entry to take */
	uint16_t used_idx;              /* private copy of used->idx */
	uint16_t used_flags;            /* private copy of used->flags */
	bool indirect_ok;
	bool more;                      /* stopped at the batch limit: come back */
	struct gv_chain ch;
	struct gv_req *req;             /* private; one request at a time */
	struct gv_mapcache *cache;      /* NULL: map and unmap per request */
	struct gv_direct *direct;       /* bench only: set after gv_vq_init, replaces cache */
	unsigned map_batch;             /* bench only: 1 = one page per map call; 0 = batched */
	evtchn_port_t port;             /* local port, kicks and interrupts */
	gv_req_handler handler;
	void *handler_ctx;
	uint64_t requests;
	/* set once when the driver breaks the ring */
	bool broken;
	char why[320];
};

/* Sets up vq over the three mapped areas. Does not map anything itself. */
int  gv_vq_init(struct gv_vq *vq, struct gv_platform *p, domid_t from, unsigned index,
                unsigned num, const void *desc, const void *avail, void *used,
                bool indirect_ok, struct gv_mapcache *cache);
void gv_vq_fini(struct gv_vq *vq);
/* Serves up to `budget` available requests, publishes them, notifies the
 * driver unless it suppressed that. Returns the number served, or -EPROTO
 * when the ring is broken (vq->why says why; sticky: later calls return
 * -EPROTO at once). Sets vq->more if it stopped at the budget. */
int  gv_vq_serve(struct gv_vq *vq, unsigned budget);

/* ---- config.c: disks ------------------------------------------------------ */
struct gv_disk_cfg {
	char guest[64];                 /* a domain name, or a domain id in decimal */
	unsigned devid;
	char path[512];
	bool ro;
	bool allow_bypass;
	char origin[160];               /* "--disk" or "FILE:LINE", for messages */
	struct gv_disk_cfg *next;
};

/* Parses "GUEST:DEVID=PATH[,ro][,allow-bypass]" (the --disk syntax). */
int gv_disk_parse_opt(const char *arg, struct gv_disk_cfg *d, char *err, size_t errlen);
/* Parses "disk GUEST:DEVID PATH [ro] [allow-bypass]" lines (# comments) of
 * file, appending to *list. err gets "FILE:LINE: what". */
int gv_disk_parse_file(const char *file, struct gv_disk_cfg **list, char *err, size_t errlen);
/* The disk configured for guest (name, id) device devid, or NULL. */
const struct gv_disk_cfg *gv_disk_find(const struct gv_disk_cfg *list, const char *name,
                                       domid_t id, unsigned devid);
void gv_disk_free(struct gv_disk_cfg *list);

/* ---- blk.c / rng.c --------------------------------------------------------- */
struct gv_blk {
	int fd;
	bool ro;
	uint64_t capacity;              /* sectors */
	char id[21];                    /* GET_ID answer, NUL padded */
};
int  gv_blk_open(struct gv_blk *b, const char *path, bool ro, unsigned devid,
                 char *err, size_t errlen);
void gv_blk_close(struct gv_blk *b);
uint32_t gv_blk_handle(void *ctx, struct gv_req *r);
uint32_t gv_rng_handle(void *ctx, struct gv_req *r);

/* ---- device.c: one device of one guest, set-up and teardown --------------- */
#define GV_BE_MAX_QUEUES 2u

enum gv_dev_phase {
	GV_DEV_NEW,             /* seen, not yet published */
	GV_DEV_INITWAIT,        /* published, waiting for the frontend */
	GV_DEV_CONNECTED,
	GV_DEV_BROKEN,          /* fatal error: everything unmapped, BE=Closing */
	GV_DEV_CLOSED,          /* disconnected, BE=Closed; republished when the FE allows */
	GV_DEV_REFUSED,         /* unsupported type / no disk: BE=Closed until recreated */
	GV_DEV_GONE,            /* online=0 or the domain died: forgotten until online again */
};

struct gv_backend;

struct gv_dev_area { void *addr; unsigned count; };

struct gv_dev {
	struct gv_backend *be;
	domid_t fe;
	unsigned devid;
	char be_dir[96], fe_dir[96];
	char name[64];                  /* the guest's name, for messages and --disk */
	char label[96];                 /* "guest NAME device N", for logs */
	unsigned virtio_id;
	enum gv_dev_phase phase;
	uint64_t features;              /* offered */
	unsigned nq;                    /* offered */
	bool allow_bypass;
	bool fe_watched;
	struct gv_blk blk;
	/* while connected */
	uint64_t driver_features;
	bool persistent;
	unsigned fe_nq;
	evtchn_port_t dev_port;         /* local end of the device event channel */
	volatile uint8_t *liveness;     /* byte 0: frontend alive, byte 1: us */
	struct gv_dev_area area[GV_BE_MAX_QUEUES][3];
	struct gv_vq vq[GV_BE_MAX_QUEUES];
	bool vq_live[GV_BE_MAX_QUEUES];
	struct gv_mapcache *cache;
	struct gv_direct *direct;       /* --bench-direct with a persistent pool */
	struct gv_dev *next;
};

struct gv_backend {
	struct gv_platform *p;
	struct xs_handle *xs;
	char root[64];                  /* /local/domain/<self>/backend/virtio */
	struct gv_disk_cfg *disks;
	bool allow_bypass;              /* --allow-bypass: every device */
	bool bench_direct;              /* --bench-direct (simulation only; make bench) */
	unsigned map_batch;             /* --map-batch 1 (make bench); 0: batched */
	struct gv_dev *devs;
};

/* Looks at device (fe, devid) afresh (creating it if its BE dir exists) and
 * moves it along the handshake. Never fails: problems are the device's. */
void gv_dev_reconcile(struct gv_backend *be, domid_t fe, unsigned devid);
/* Every device under root, and every known one (some may have vanished). */
void gv_dev_scan(struct gv_backend *be);
/* @releaseDomain: forgets the devices of domains that are gone. */
void gv_dev_release_domains(struct gv_backend *be);
/* An event on a local port: liveness/status or a queue kick. */
void gv_dev_event(struct gv_backend *be, evtchn_port_t port);
/* Serves queues that stopped at their batch budget; true if any still has more. */
bool gv_dev_serve_pending(struct gv_backend *be);
/* Closes every device (unmap all, BE=Closed) and frees them. */
void gv_dev_shutdown_all(struct gv_backend *be);

#endif
