/*
 * frontend/virtqueue.h: the driver side of a split virtqueue (virtio 1.x
 * 2.7), in the manner of Linux's drivers/virtio/virtio_ring.c.
 *
 * The three areas are coherent DMA memory: the descriptor table and the
 * driver (avail) area granted read-only, the device (used) area writable
 * (docs/transport.md, Virtqueues). The used area is written by an untrusted
 * backend: every element is copied once into private memory and only the
 * copy is checked; a bad element breaks the queue (sticky, one log line)
 * like virtio_ring.c's BAD_RING.
 *
 * Hot path only: the transport (transport.c) creates queues, publishes their
 * refs and event channels, and tears them down.
 */
#ifndef GVFE_VIRTQUEUE_H
#define GVFE_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include "dma.h"

struct gvfe_vq_slot {
	void *token;                /* the caller's request; NULL: not in flight */
	int table;                  /* its indirect table, or -1: a direct chain */
	uint16_t ndesc;             /* descriptors in the chain */
	uint16_t last;              /* last descriptor of the chain */
	uint32_t in_len;            /* device-writable bytes: the used length's bound */
};

struct gvfe_vq_stats {
	uint64_t added, completed;
	uint64_t indirect;          /* chains added through an indirect table */
	uint64_t kicks, kicks_suppressed;
};

struct gvfe_vq {
	struct gvfe_dma_dev *dma;
	unsigned index;             /* queue number */
	uint16_t num;               /* size, a power of two */
	evtchn_port_t port;         /* set by the transport; GV_NO_PORT until then */
	struct gvfe_dma_coherent desc_area, avail_area, used_area;
	struct vring_desc *desc;    /* shared, device reads */
	struct vring_avail *avail;  /* shared, device reads */
	struct vring_used *used;    /* shared, device writes: untrusted */
	/* Private state: never read back from shared memory. */
	uint16_t free_head, num_free;
	uint16_t avail_idx;         /* our copy of avail->idx */
	uint16_t last_used;         /* next used element to consume */
	uint16_t chains;            /* chains in flight */
	uint16_t *next;             /* free list and chain links */
	struct gvfe_vq_slot *slot;    /* per head descriptor */
	bool event_idx;             /* VIRTIO_RING_F_EVENT_IDX negotiated: the event
	                               words, not the flags, suppress notifications */
	uint16_t kicked_avail;      /* avail_idx at the last kick decision */
	/* VIRTIO_RING_F_INDIRECT_DESC: one-page tables in one coherent area
	 * granted read-only; a chain of at least GVFE_VQ_INDIRECT_MIN buffers
	 * takes one ring descriptor and a table, while a table is free. */
	struct gvfe_dma_coherent ind_area;
	unsigned ind_tables, ind_entries;   /* tables, entries per table; 0: off */
	uint64_t ind_free;          /* bit t: table t free */
	bool broken;
	struct gvfe_vq_stats stats;
};

/* Allocates a queue of num entries (a power of two, 2..32768): three
 * coherent allocations granted to the DMA device's backend. 0 or -errno;
 * nothing is left behind on failure. Does not log. */
int gvfe_vq_create(struct gvfe_dma_dev *dma, unsigned index, unsigned num, struct gvfe_vq **out);
/* Ends the areas' grants and frees. Call only when the backend no longer
 * maps them (BE=Closed or backend gone). -EBUSY: the areas are leaked
 * (counted by the DMA layer); the queue is freed either way. */
int gvfe_vq_destroy(struct gvfe_vq *vq);

/* Adds a chain: sg[0..nout) device-readable, then sg[nout..nout+nin)
 * device-writable. token identifies it in gvfe_vq_get_buf (not NULL).
 * -ENOSPC: not enough free descriptors; -EIO: broken; -EINVAL. */
int gvfe_vq_add(struct gvfe_vq *vq, const struct gvfe_dma_seg *sg, unsigned nout, unsigned nin,
                void *token);
/* Chains of at least this many buffers go through an indirect table. */
#define GVFE_VQ_INDIRECT_MIN 8u
/* Most indirect tables per queue (each a granted page). */
#define GVFE_VQ_INDIRECT_TABLES 16u
/* Turns on indirect chains (VIRTIO_RING_F_INDIRECT_DESC negotiated): grants
 * tables one-page tables. 0 or -errno (the queue then stays direct). */
int gvfe_vq_use_indirect(struct gvfe_vq *vq, unsigned tables);
/* The most buffers one chain may have now: an indirect table's entries if
 * one is free, else the free descriptors. */
unsigned gvfe_vq_chain_room(const struct gvfe_vq *vq);
/* Switches notification suppression to the event words (virtio 1.x
 * 2.7.10, VIRTIO_RING_F_EVENT_IDX); call before the first add, once the
 * feature was negotiated. */
void gvfe_vq_use_event_idx(struct gvfe_vq *vq);
/* true if the device wants a notification for what was added. */
bool gvfe_vq_kick_prepare(struct gvfe_vq *vq);
/* kick_prepare, then notify the event channel if wanted. 0 or -errno. */
int gvfe_vq_kick(struct gvfe_vq *vq, struct gv_platform *p);

/* 1: *token and *len of a completed chain (its descriptors are free
 * again); 0: nothing completed; -EIO: the queue is broken (now or before). */
int gvfe_vq_get_buf(struct gvfe_vq *vq, void **token, uint32_t *len);
/* Notification suppression for completions. enable returns false when
 * completions arrived meanwhile (the caller must reap before sleeping). */
void gvfe_vq_disable_cb(struct gvfe_vq *vq);
bool gvfe_vq_enable_cb(struct gvfe_vq *vq);
/* After the device stopped (backend unmapped everything or is gone): hands
 * back the token of one chain still in flight and frees its descriptors;
 * NULL when none is left. */
void *gvfe_vq_detach_unused(struct gvfe_vq *vq);

unsigned gvfe_vq_num_free(const struct gvfe_vq *vq);
/* Chains (requests) in flight. */
unsigned gvfe_vq_in_flight(const struct gvfe_vq *vq);
/* Marks the queue broken once with one log line; every entry point then fails. */
void gvfe_vq_mark_broken(struct gvfe_vq *vq, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
