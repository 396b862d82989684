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
	for (unsigned i = 0; i < num; i++)
		vq->next[i] = (uint16_t)(i + 1);
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
	free(vq->slot);
	free(vq->next);
	free(vq);
	return rc;
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

	if (vq->broken)
		return -EIO;
	if (!token || !total || total > vq->num)
		return -EINVAL;
	if (total > vq->num_free)
		return -ENOSPC;
	head = vq->free_head;
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
	vq->free_head = i;
	vq->num_free -= (uint16_t)total;
	vq->slot[head].token = token;
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

bool gvfe_vq_kick_prepare(struct gvfe_vq *vq)
{
	uint16_t flags;

	/* Full barrier: our avail->idx store is ordered before the load of
	 * used->flags, else the device could set NO_NOTIFY, miss our new
	 * index and sleep while we skip the kick (virtio_mb in kick_prepare). */
	gv_mb();
	flags = gv_read_once(&vq->used->flags);
	if (flags & VRING_USED_F_NO_NOTIFY) {
		vq->stats.kicks_suppressed++;
		return false;
	}
	return true;
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
	/* Only a hint to the device: no ordering needed. */
	gv_write_once(&vq->avail->flags, VRING_AVAIL_F_NO_INTERRUPT);
}

bool gvfe_vq_enable_cb(struct gvfe_vq *vq)
{
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
