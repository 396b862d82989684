/*
 * frontend/virtqueue.c: the driver side of a split virtqueue: adding chains,
 * kicking, reaping completions, with the used area treated as hostile.
 *
 * Barriers and shared-memory accesses are common/barrier.h's; each use says
 * what it orders.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "barrier.h"
#include "log.h"
#include "virtqueue.h"

void gvfe_vq_mark_broken(struct gvfe_vq *vq, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	if (vq->broken)
		return;
	vq->broken = true;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	gv_err("virtqueue %u: broken: %s", vq->index, why);
}

int gvfe_vq_create(struct gvfe_dma_dev *dma, unsigned index, unsigned num, struct gvfe_vq **out)
{
	struct gvfe_vq *vq;
	int rc;

	if (num < 2 || num > 32768 || (num & (num - 1)))
		return -EINVAL;
	vq = calloc(1, sizeof(*vq));
	if (!vq)
		return -ENOMEM;
	vq->dma = dma;
	vq->index = index;
	vq->num = (uint16_t)num;
	vq->port = GV_NO_PORT;
	vq->next = calloc(num, sizeof(*vq->next));
	vq->slot = calloc(num, sizeof(*vq->slot));
	if (!vq->next || !vq->slot) {
		rc = -ENOMEM;
		goto free_vq;
	}
	/* The device never writes the descriptor table or the driver area. */
	rc = gvfe_dma_alloc_coherent(dma, gv_vring_desc_size(num), true, &vq->desc_area);
	if (rc < 0)
		goto free_vq;
	rc = gvfe_dma_alloc_coherent(dma, gv_vring_avail_size(num), true, &vq->avail_area);
	if (rc < 0)
		goto free_desc;
	rc = gvfe_dma_alloc_coherent(dma, gv_vring_used_size(num), false, &vq->used_area);
	if (rc < 0)
		goto free_avail;
	vq->desc = vq->desc_area.cpu;
	vq->avail = vq->avail_area.cpu;
	vq->used = vq->used_area.cpu;
	for (unsigned i = 0; i < num; i++) {
		vq->next[i] = (uint16_t)(i + 1);
		vq->slot[i].table = -1;
	}
	vq->free_head = 0;
	vq->num_free = (uint16_t)num;
	*out = vq;
	return 0;

free_avail:
	gvfe_dma_free_coherent(dma, &vq->avail_area);
free_desc:
	gvfe_dma_free_coherent(dma, &vq->desc_area);
free_vq:
	free(vq->slot);
	free(vq->next);
	free(vq);
	return rc;
}

int gvfe_vq_destroy(struct gvfe_vq *vq)
{
	int rc = 0, r;

	if (!vq)
		return 0;
	r = gvfe_dma_free_coherent(vq->dma, &vq->used_area);
	rc = rc ? rc : r;
	r = gvfe_dma_free_coherent(vq->dma, &vq->avail_area);
	rc = rc ? rc : r;
	r = gvfe_dma_free_coherent(vq->dma, &vq->desc_area);
	rc = rc ? rc : r;
	if (vq->ind_area.npages) {
		r = gvfe_dma_free_coherent(vq->dma, &vq->ind_area);
		rc = rc ? rc : r;
	}
	free(vq->slot);
	free(vq->next);
	free(vq);
	return rc;
}

int gvfe_vq_use_indirect(struct gvfe_vq *vq, unsigned tables)
{
	int rc;

	if (!tables || tables > 64 || vq->ind_tables)
		return -EINVAL;
	/* The device reads tables, never writes them. */
	rc = gvfe_dma_alloc_coherent(vq->dma, (size_t)tables * GV_PAGE_SIZE, true, &vq->ind_area);
	if (rc < 0)
		return rc;
	vq->ind_tables = tables;
	/* A table is one page, and a device takes at most num buffers a chain. */
	vq->ind_entries = GV_PAGE_SIZE / sizeof(struct vring_desc);
	if (vq->ind_entries > vq->num)
		vq->ind_entries = vq->num;
	vq->ind_free = tables == 64 ? ~0ULL : (1ULL << tables) - 1;
	return 0;
}

unsigned gvfe_vq_chain_room(const struct gvfe_vq *vq)
{
	if (vq->ind_free && vq->num_free)
		return vq->ind_entries > vq->num_free ? vq->ind_entries : vq->num_free;
	return vq->num_free;
}

/* Fills an indirect table d[0..total) from sg: device-readable first, each
 * entry's next the following entry. Returns the device-writable bytes. */
static uint32_t fill_table(struct vring_desc *d, const struct gvfe_dma_seg *sg, unsigned nout,
                           unsigned total)
{
	uint32_t in_len = 0;

	for (unsigned k = 0; k < total; k++) {
		uint16_t flags = k < nout ? 0 : VRING_DESC_F_WRITE;

		if (k + 1 < total)
			flags |= VRING_DESC_F_NEXT;
		if (k >= nout)
			in_len += sg[k].len;
		d[k].addr = sg[k].addr;
		d[k].len = sg[k].len;
		d[k].flags = flags;
		d[k].next = k + 1 < total ? (uint16_t)(k + 1) : 0;
	}
	return in_len;
}

/* Adds the chain through a free indirect table, in one ring descriptor:
 * a long chain, or one the ring has no room for. false: a direct chain. */
static bool add_indirect(struct gvfe_vq *vq, const struct gvfe_dma_seg *sg, unsigned nout,
                         unsigned total, uint16_t head, uint32_t *in_len, int *table)
{
	struct vring_desc *tbl;
	int t;

	if (!vq->ind_free || total > vq->ind_entries ||
	    (total < GVFE_VQ_INDIRECT_MIN && total <= vq->num_free))
		return false;
	t = __builtin_ctzll(vq->ind_free);
	vq->ind_free &= ~(1ULL << t);
	tbl = (struct vring_desc *)((uint8_t *)vq->ind_area.cpu + (size_t)t * GV_PAGE_SIZE);
	*in_len = fill_table(tbl, sg, nout, total);
	vq->desc[head].addr = gvfe_dma_coherent_addr(vq->dma, &vq->ind_area,
	                                             (size_t)t * GV_PAGE_SIZE);
	vq->desc[head].len = (uint32_t)(total * sizeof(struct vring_desc));
	vq->desc[head].flags = VRING_DESC_F_INDIRECT;
	vq->desc[head].next = 0;
	*table = t;
	vq->stats.indirect++;
	return true;
}

unsigned gvfe_vq_num_free(const struct gvfe_vq *vq)
{
	return vq->num_free;
}

unsigned gvfe_vq_in_flight(const struct gvfe_vq *vq)
{
	return vq->chains;
}

int gvfe_vq_add(struct gvfe_vq *vq, const struct gvfe_dma_seg *sg, unsigned nout, unsigned nin,
                void *token)
{
	unsigned total = nout + nin;
	uint16_t head, i, prev = 0;
	uint32_t in_len = 0;

	int table = -1;

	if (vq->broken)
		return -EIO;
	if (!token || !total || total > vq->num)
		return -EINVAL;
	if (!vq->num_free)
		return -ENOSPC;
	head = vq->free_head;
	if (add_indirect(vq, sg, nout, total, head, &in_len, &table)) {
		prev = head;
		i = vq->next[head];
		total = 1;                  /* ring descriptors taken */
	} else {
		if (total > vq->num_free)
			return -ENOSPC;
		i = head;
		for (unsigned k = 0; k < total; k++) {
			struct vring_desc *d = &vq->desc[i];
			uint16_t flags = k < nout ? 0 : VRING_DESC_F_WRITE;

			if (k + 1 < total)
				flags |= VRING_DESC_F_NEXT;
			if (k >= nout)
				in_len += sg[k].len;
			d->addr = sg[k].addr;
			d->len = sg[k].len;
			d->flags = flags;
			d->next = k + 1 < total ? vq->next[i] : 0;
			prev = i;
			i = vq->next[i];
		}
	}
	vq->free_head = i;
	vq->num_free -= (uint16_t)total;
	vq->slot[head].token = token;
	vq->slot[head].table = table;
	vq->slot[head].ndesc = (uint16_t)total;
	vq->slot[head].last = prev;
	vq->slot[head].in_len = in_len;
	vq->chains++;

	vq->avail->ring[vq->avail_idx & (vq->num - 1)] = head;
	vq->avail_idx++;
	/* Release: the descriptors and the ring entry above are visible to
	 * the device before the index that publishes them (virtio_wmb). */
	gv_store_release(&vq->avail->idx, vq->avail_idx);
	vq->stats.added++;
	return 0;
}

/* The event words after the rings (virtio 1.x 2.7.10): the driver's
 * used_event after avail->ring[num], the device's avail_event after
 * used->ring[num]; both areas are allocated with room for them (abi.h). */
static uint16_t *used_event(struct gvfe_vq *vq)
{
	return &vq->avail->ring[vq->num];
}

static uint16_t *avail_event(struct gvfe_vq *vq)
{
	return (uint16_t *)&vq->used->ring[vq->num];
}

void gvfe_vq_use_event_idx(struct gvfe_vq *vq)
{
	vq->event_idx = true;
	vq->kicked_avail = vq->avail_idx;
}

bool gvfe_vq_kick_prepare(struct gvfe_vq *vq)
{
	uint16_t flags, event, old = vq->kicked_avail;
	bool kick;

	/* Full barrier: our avail->idx store is ordered before the load of
	 * used->flags (or avail_event), else the device could ask for no
	 * notification, miss our new index and sleep while we skip the kick
	 * (virtio_mb in kick_prepare). */
	gv_mb();
	if (vq->event_idx) {
		/* Read once; any value is harmless: at worst a kick too many
		 * or one the device said it did not need. */
		event = gv_read_once(avail_event(vq));
		vq->kicked_avail = vq->avail_idx;
		kick = vring_need_event(event, vq->avail_idx, old);
	} else {
		flags = gv_read_once(&vq->used->flags);
		kick = !(flags & VRING_USED_F_NO_NOTIFY);
	}
	if (!kick)
		vq->stats.kicks_suppressed++;
	return kick;
}

int gvfe_vq_kick(struct gvfe_vq *vq, struct gv_platform *p)
{
	if (vq->broken)
		return -EIO;
	if (!gvfe_vq_kick_prepare(vq))
		return 0;
	vq->stats.kicks++;
	return gv_evtchn_notify(p, vq->port);
}

static void free_chain(struct gvfe_vq *vq, uint16_t head)
{
	struct gvfe_vq_slot *s = &vq->slot[head];

	/* The chain's links are in our private next[], never in the table. */
	vq->next[s->last] = vq->free_head;
	vq->free_head = head;
	vq->num_free += s->ndesc;
	vq->chains--;
	if (s->table >= 0)
		vq->ind_free |= 1ULL << s->table;
	s->table = -1;
	s->token = NULL;
}

int gvfe_vq_get_buf(struct gvfe_vq *vq, void **token, uint32_t *len)
{
	struct vring_used_elem elem;
	uint16_t used_idx, pending;

	if (vq->broken)
		return -EIO;
	/* Acquire: the element reads below come after the index read that
	 * says they were written (virtio_rmb). */
	used_idx = gv_load_acquire(&vq->used->idx);
	pending = (uint16_t)(used_idx - vq->last_used);
	if (!pending)
		return 0;
	if (pending > gvfe_vq_in_flight(vq)) {
		gvfe_vq_mark_broken(vq, "used index moved by %u with %u requests in flight",
		                    pending, gvfe_vq_in_flight(vq));
		return -EIO;
	}
	/* Copy the element once; only the private copy is checked and used. */
	elem.id = gv_read_once(&vq->used->ring[vq->last_used & (vq->num - 1)].id);
	elem.len = gv_read_once(&vq->used->ring[vq->last_used & (vq->num - 1)].len);
	if (elem.id >= vq->num) {
		gvfe_vq_mark_broken(vq, "used id %u out of range (queue size %u)", elem.id, vq->num);
		return -EIO;
	}
	if (!vq->slot[elem.id].token) {
		gvfe_vq_mark_broken(vq, "used id %u is not in flight", elem.id);
		return -EIO;
	}
	if (elem.len > vq->slot[elem.id].in_len) {
		gvfe_vq_mark_broken(vq, "used length %u larger than the %u device-writable bytes of id %u",
		                    elem.len, vq->slot[elem.id].in_len, elem.id);
		return -EIO;
	}
	vq->last_used++;
	*token = vq->slot[elem.id].token;
	*len = elem.len;
	free_chain(vq, (uint16_t)elem.id);
	vq->stats.completed++;
	return 1;
}

void gvfe_vq_disable_cb(struct gvfe_vq *vq)
{
	/* Only a hint to the device: no ordering needed. With event indexes,
	 * an event one behind what we consumed lies behind every index the
	 * device can publish next, so it asks for no interrupt. */
	if (vq->event_idx)
		gv_write_once(used_event(vq), (uint16_t)(vq->last_used - 1));
	else
		gv_write_once(&vq->avail->flags, VRING_AVAIL_F_NO_INTERRUPT);
}

bool gvfe_vq_enable_cb(struct gvfe_vq *vq)
{
	/* An interrupt as soon as the device publishes past last_used. */
	if (vq->event_idx)
		gv_write_once(used_event(vq), vq->last_used);
	else
		gv_write_once(&vq->avail->flags, 0);
	/* Full barrier: the flag store is ordered before the used->idx load,
	 * so a completion published before the device saw the flag is seen
	 * here, and one published after it gets an interrupt. */
	gv_mb();
	return gv_read_once(&vq->used->idx) == vq->last_used;
}

void *gvfe_vq_detach_unused(struct gvfe_vq *vq)
{
	for (unsigned i = 0; i < vq->num; i++) {
		void *token = vq->slot[i].token;

		if (token) {
			free_chain(vq, (uint16_t)i);
			return token;
		}
	}
	return NULL;
}
