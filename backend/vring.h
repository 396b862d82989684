/*
 * backend/vring.h: the device side of a split virtqueue (vring.c): a descriptor
 * chain copied out of shared memory and validated, the request being served
 * and its mapped pages, the queue. What a device type's request handler
 * (blk.c, rng.c) sees; nothing about xenstore, the daemon or its configuration.
 */
#ifndef GVBE_VRING_H
#define GVBE_VRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include "abi.h"
#include "aio.h"
#include "platform.h"
#include "stats.h"

#define GVBE_MAX_QUEUE_SIZE   256u   /* max-queue-size */
#define GVBE_REQ_MAX_PAGES    640u   /* pages one request may map (<= SIM_MAX_BATCH) */
#define GVBE_REQ_MAX_RANGES   16u    /* discard / write-zeroes segments of one request */
/* Grant copy instead of map + unmap (requests outside a persistent pool):
 * the most bytes a request may have to be copied, at most */
#define GVBE_COPY_MAX_LIMIT   (128u * 1024)
#define GVBE_COPY_MAX_PAGES   (GVBE_COPY_MAX_LIMIT / GV_PAGE_SIZE + 8)
/* requests of one queue that keep a copy buffer (the others map): 32 x
 * 160 KiB = 5 MiB a queue at most */
#define GVBE_COPY_BUFS        32u
/* what a request may have beside its data and still count as copy_max
 * bytes: a virtio-blk header (16) and status (1) */
#define GVBE_COPY_SLACK       512u

struct gvbe_mapcache;
#ifdef GVBE_BENCH
struct gvbe_direct;
#endif

/* One buffer of a request, from the private copy of its descriptor. */
struct gvbe_seg {
	grant_ref_t gref;               /* first page's grant ref */
	uint32_t off;                   /* offset in that page */
	uint32_t len;
	bool write;                     /* device-writable */
	unsigned npages;                /* refs gref .. gref+npages-1 */
	unsigned page0;                 /* index of its first page in gvbe_req.pages */
};

/* How the parser reaches an indirect table: copy len bytes at the grant
 * (gref, off) into dst. Negative errno if it cannot be mapped. */
struct gvbe_vq_mem {
	int (*copy_in)(void *ctx, grant_ref_t gref, uint32_t off, void *dst, size_t len);
	void *ctx;
};

struct gvbe_chain {
	uint16_t head;
	unsigned nseg, nread;           /* nread: readable segments come first */
	uint64_t read_bytes, write_bytes;
	unsigned max_seg;               /* capacity of seg[] */
	struct gvbe_seg *seg;
	struct vring_desc *itable;      /* private copy of an indirect table */
};

/* Parses the chain starting at head of the shared descriptor table `desc`
 * (num entries): every descriptor is read once into private memory, and only
 * that copy is checked and used. 0: ch filled. -EPROTO: the driver broke the
 * ring; why says how (one line). Does not log. */
int gvbe_vq_parse_chain(const volatile struct vring_desc *desc, unsigned num, uint16_t head,
                      bool indirect_ok, const struct gvbe_vq_mem *mem, struct gvbe_chain *ch,
                      char *why, size_t whylen);
/* Allocates the chain's private buffers for a queue of num entries. */
int  gvbe_chain_init(struct gvbe_chain *ch, unsigned num);
void gvbe_chain_fini(struct gvbe_chain *ch);

/* One request being served: its chain and the pages mapped for it. A
 * queue keeps up to its size of them, so the driver's whole queue can be in
 * flight; they are allocated as the queue depth first needs them. */
struct gvbe_vq;
struct gvbe_req {
	struct gvbe_vq *vq;
	struct gvbe_chain *ch;          /* &own_ch */
	struct gvbe_chain own_ch;
	struct gvbe_req *next_free;
	uint64_t gen;                   /* map cache generation (pins its batches) */
	bool inflight;
	uint64_t t0;                    /* taken from the ring (gvbe_now_ns), for the latency */
	/* the device type's state for an asynchronous request */
	struct gvbe_aio_op op;
	int kind;
	uint64_t off, len, moved;
	int niov, iov_at;               /* iov[iov_at..niov): what is left to move */
	bool direct;                    /* on the O_DIRECT descriptor */
	/* DISCARD / WRITE_ZEROES: the validated private copy of the ranges
	 * (bytes of the image), done one after another from range_at */
	struct { uint64_t off, len; bool unmap; } range[GVBE_REQ_MAX_RANGES];
	unsigned nrange, range_at;
	/* NBD (nbd.c, its I/O thread's while issued): commands not yet
	 * completed, and whether one failed */
	unsigned pending;
	bool failed;
	void *pages[GVBE_REQ_MAX_PAGES];
	unsigned npages;                /* pages[] entries assigned (page0 indexes) */
	struct { void *addr; unsigned count; } unmap[8]; /* batches to unmap after */
	unsigned nunmap;
	bool mapped;                    /* the handler mapped every segment */
	/* grant copy (vq->copy_max): pages[] point into cbuf, a private
	 * page-aligned buffer copied in at map time (device-readable
	 * segments) and out at completion (device-writable ones) */
	bool copy;
	unsigned ncopy_out;             /* writable segments set up for copying out */
	uint16_t copy_out[GVBE_COPY_MAX_PAGES];   /* their indices in ch->seg */
	uint8_t *cbuf;                  /* GVBE_COPY_MAX_PAGES pages, allocated on first use */
	struct iovec iov[GVBE_REQ_MAX_PAGES];   /* the handler's data iovecs */
	/* scratch for one batch: distinct refs, and each page's slot among them */
	grant_ref_t uref[GVBE_REQ_MAX_PAGES];
	uint16_t slot[GVBE_REQ_MAX_PAGES];
#ifdef GVBE_BENCH
	/* map_batch 1 (bench only): pages mapped one per call, unmapped after */
	void *single[GVBE_REQ_MAX_PAGES];
	unsigned nsingle;
#endif
};

/* Maps the pages of segments [first, first+n) of the request: readable ones
 * read-only, writable ones writable, each set in one batch (or from the
 * map cache). 0, -E2BIG (too many pages), or the platform's error. */
int  gvbe_req_map(struct gvbe_req *r, unsigned first, unsigned n);
/* iovecs covering len bytes of segment s from offset off (it must be mapped).
 * Returns the number of iovecs used (adjacent pages merged), at most max. */
int  gvbe_req_iov(struct gvbe_req *r, unsigned s, uint32_t off, uint32_t len,
                struct iovec *iov, int max);
/* iovecs covering bytes [off, off+len) of the request's device-readable
 * (writable false) or device-writable part, whatever descriptors split it
 * (the segments must be mapped). Number of iovecs, or -EINVAL/-E2BIG. */
int  gvbe_req_stream_iov(struct gvbe_req *r, bool writable, uint64_t off, uint64_t len,
                         struct iovec *iov, int max);
int  gvbe_req_copy_from(struct gvbe_req *r, unsigned s, uint32_t off, void *dst, uint32_t len);
int  gvbe_req_copy_to(struct gvbe_req *r, unsigned s, uint32_t off, const void *src, uint32_t len);

/* A device type's request handler: serves r, returns the used length (bytes
 * written to device-writable buffers), or GVBE_REQ_ASYNC when it took r
 * over and will call gvbe_req_complete later. It maps what it needs with
 * gvbe_req_map. */
#define GVBE_REQ_ASYNC UINT32_MAX
typedef uint32_t (*gvbe_req_handler)(void *ctx, struct gvbe_req *r);
/* Ends an asynchronous request: unmaps its pages, puts its used element
 * (len clamped to the writable bytes) in the ring, frees r. The element is
 * visible to the driver at the next gvbe_vq_publish. */
void gvbe_req_complete(struct gvbe_req *r, uint32_t len);

struct gvbe_vq {
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
	uint16_t published_idx;         /* used idx the driver was last shown */
	bool indirect_ok;
	bool event_idx;                 /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool kicks_off;                 /* serving: no kicks asked for (flag or avail_event) */
	bool more;                      /* stopped at the batch limit: come back */
	struct gvbe_req **reqs;         /* num slots, allocated on first use */
	unsigned nreqs;                 /* allocated */
	struct gvbe_req *free_reqs;
	unsigned inflight;              /* taken from the ring, not yet completed */
	struct gvbe_mapcache *cache;    /* NULL: map and unmap per request */
	uint32_t copy_max;              /* without a cache: requests of at most this many
	                                   bytes (all descriptors, less GVBE_COPY_SLACK) are
	                                   grant-copied, not mapped; 0: never
	                                   (gvbe_vq_init: GVBE_COPY_MAX_DEFAULT) */
	uint64_t copied_reqs, copy_errors;
	unsigned ncbufs;                /* requests holding a copy buffer */
	int fail_status;                /* a grant-copied request whose data cannot be
	                                   copied out gets this in its last writable
	                                   byte (virtio-blk: IOERR); -1: none */
#ifdef GVBE_BENCH
	struct gvbe_direct *direct;     /* bench only: set after gvbe_vq_init, replaces cache */
	unsigned map_batch;             /* bench only: 1 = one page per map call; 0 = batched */
#endif
	evtchn_port_t port;             /* local port, kicks and interrupts */
	/* the in-flight record (NULL: the driver keeps none), and the heads of
	 * the used elements not yet published, by used index % num (private) */
	volatile struct gv_inflight *rec;
	uint16_t *done;
	unsigned recovered;             /* heads served again at a takeover */
	gvbe_req_handler handler;
	void *handler_ctx;
	uint64_t requests;
	uint64_t kicks, interrupts;     /* notifications received and sent */
	struct gvbe_qstats st;          /* by type, bytes, errors, latency (stats.h) */
	/* set once when the driver breaks the ring */
	bool broken;
	char why[320];
};

/* The default of copy_max (--grant-copy-max), from bench/run.sh's grant-map and
 * grant-copy rows (docs/benchmarks.md) */
#define GVBE_COPY_MAX_DEFAULT (128u * 1024)

/* Sets up vq over the three mapped areas. Does not map anything itself. */
int  gvbe_vq_init(struct gvbe_vq *vq, struct gv_platform *p, domid_t from, unsigned index,
                unsigned num, const void *desc, const void *avail, void *used,
                bool indirect_ok, struct gvbe_mapcache *cache);
void gvbe_vq_fini(struct gvbe_vq *vq);
/* Serves up to `budget` available requests, publishes them, notifies the
 * driver unless it suppressed that. Returns the number served, or -EPROTO
 * when the ring is broken (vq->why says why; sticky: later calls return
 * -EPROTO at once). Sets vq->more if it stopped at the budget. */
int  gvbe_vq_serve(struct gvbe_vq *vq, unsigned budget);
/* Shows the driver every used element completed so far (used->idx) and
 * notifies it unless it suppressed that (flag, or its used_event with
 * VIRTIO_RING_F_EVENT_IDX). */
void gvbe_vq_publish(struct gvbe_vq *vq);
/* Keeps the in-flight record rec (a page the driver granted) from now on,
 * starting it afresh: for a queue the driver has just set up. */
void gvbe_vq_track(struct gvbe_vq *vq, void *rec);
/* Takes the queue over from a backend that died: copies the record rec
 * once, checks it against the rings (avail and used indices, the used
 * elements published since the record was last brought up to date), resumes
 * at the recorded avail and used indices and serves again every head still
 * marked (block and entropy requests may be repeated). Returns the number of
 * heads served again, or -EPROTO (vq->why says why: a record that does not
 * agree with the rings breaks only this device). The record is kept from now
 * on. Call before the first gvbe_vq_serve. */
int  gvbe_vq_recover(struct gvbe_vq *vq, void *rec);
/* Bytes of private memory the queue holds now (requests and chains). */
size_t gvbe_vq_memory(const struct gvbe_vq *vq);

#endif
