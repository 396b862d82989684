// SPDX-License-Identifier: GPL-2.0
/*
 * frontend/linux/gvk_dead.c: when the backend goes away while requests are in
 * flight (docs/transport.md, Liveness: "the frontend fails in-flight requests
 * with -EIO"). Stock virtio_blk of 6.1 has no request timeout: a request the
 * device never completes waits for ever, and a broken virtqueue returns no more
 * buffers at all. So the transport completes them itself, as a device that
 * fails everything: for every request the driver made available and the dead
 * backend never used, it writes VIRTIO_BLK_S_IOERR into the request's status
 * byte (the last byte of its last device-writable buffer; a virtio-rng buffer
 * just comes back empty) and puts it in the used ring, then runs the queue's
 * callback. New requests after that are failed the same way when kicked.
 *
 * Which heads are in flight is not something virtio_ring exports, so the
 * transport counts them itself: each kick and each interrupt scans the avail
 * ring from where it last looked (+1 per head) and the used ring (-1 per head).
 */
#include <linux/virtio_ring.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/delay.h>
#include "gvk.h"

/* Scans the rings since the last scan. Called before each kick and each
 * interrupt; the caller holds nothing (q->track_lock is taken here). */
void gvk_track(struct gvk_vq *q)
{
	const struct vring *vr = virtqueue_get_vring(q->vq);
	unsigned long flags;
	u16 a, u, num = vr->num;

	spin_lock_irqsave(&q->track_lock, flags);
	a = le16_to_cpu(READ_ONCE(vr->avail->idx));
	virt_rmb();
	/* at most num heads can be in flight: older entries were overwritten only
	 * after completing, and their used entries cancel them below */
	if ((u16)(a - q->avail_seen) > num)
		q->avail_seen = a - num;
	for (; q->avail_seen != a; q->avail_seen++) {
		u16 h = le16_to_cpu(READ_ONCE(vr->avail->ring[q->avail_seen % num]));

		if (h < num)
			q->inflight[h]++;
	}
	u = le16_to_cpu(READ_ONCE(vr->used->idx));
	virt_rmb();
	if ((u16)(u - q->used_seen) > num)
		q->used_seen = u - num;
	for (; q->used_seen != u; q->used_seen++) {
		u32 h = le32_to_cpu(READ_ONCE(vr->used->ring[q->used_seen % num].id));

		if (h < num && q->inflight[h] > 0)
			q->inflight[h]--;
	}
	spin_unlock_irqrestore(&q->track_lock, flags);
}

/* The status byte of a blk request: last byte of its last device-writable
 * descriptor (direct chain or indirect table). */
static u8 *blk_status_byte(struct gvk_dev *gd, const struct vring *vr, u16 head)
{
	struct vring_desc *d = &vr->desc[head];
	u64 addr = 0;
	u32 len = 0;
	unsigned int steps = 0;

	if (le16_to_cpu(d->flags) & VRING_DESC_F_INDIRECT) {
		u32 tlen = le32_to_cpu(d->len), i, n = tlen / sizeof(struct vring_desc);
		struct vring_desc *t = gvk_dma_to_virt(gd, le64_to_cpu(d->addr), tlen);

		if (!t || !n)
			return NULL;
		for (i = 0; i < n; i++)
			if (le16_to_cpu(t[i].flags) & VRING_DESC_F_WRITE) {
				addr = le64_to_cpu(t[i].addr);
				len = le32_to_cpu(t[i].len);
			}
	} else {
		for (;;) {
			if (le16_to_cpu(d->flags) & VRING_DESC_F_WRITE) {
				addr = le64_to_cpu(d->addr);
				len = le32_to_cpu(d->len);
			}
			if (!(le16_to_cpu(d->flags) & VRING_DESC_F_NEXT) || ++steps >= vr->num)
				break;
			if (le16_to_cpu(d->next) >= vr->num)
				return NULL;
			d = &vr->desc[le16_to_cpu(d->next)];
		}
	}
	if (!len)
		return NULL;
	return gvk_dma_to_virt(gd, addr + len - 1, 1);
}

static unsigned int fail_queue(struct gvk_dev *gd, struct gvk_vq *q)
{
	const struct vring *vr = virtqueue_get_vring(q->vq);
	unsigned long flags;
	unsigned int n = 0;
	u16 h, num = vr->num, uidx;

	gvk_track(q);
	spin_lock_irqsave(&q->track_lock, flags);
	/* nobody else writes the used ring now: the backend's mappings are gone */
	vr->used->flags = 0;     /* no VRING_USED_F_NO_NOTIFY: every new request kicks */
	uidx = le16_to_cpu(vr->used->idx);
	for (h = 0; h < num; h++) {
		while (q->inflight[h] > 0) {
			if (gd->virtio_id == VIRTIO_ID_BLOCK) {
				u8 *st = blk_status_byte(gd, vr, h);

				if (st)
					*st = VIRTIO_BLK_S_IOERR;
			}
			vr->used->ring[uidx % num].id = cpu_to_le32(h);
			vr->used->ring[uidx % num].len = cpu_to_le32(gd->virtio_id == VIRTIO_ID_BLOCK ? 1 : 0);
			uidx++;
			q->inflight[h]--;
			n++;
		}
	}
	virt_wmb();
	vr->used->idx = cpu_to_le16(uidx);
	q->used_seen = uidx;
	spin_unlock_irqrestore(&q->track_lock, flags);
	return n;
}

void gvk_fail_inflight(struct work_struct *w)
{
	struct gvk_dev *gd = container_of(w, struct gvk_dev, fail_work);
	unsigned int i, n;

	for (i = 0; i < gd->nvqs; i++) {
		struct gvk_vq *q = &gd->vqs[i];

		if (!q->vq)
			continue;
		n = fail_queue(gd, q);
		if (n)
			dev_warn_ratelimited(&gd->xb->dev,
			                     "backend gone: %u request%s of queue %u failed with an I/O error\n",
			                     n, n == 1 ? "" : "s", i);
		vring_interrupt(q->irq, q->vq);
	}
}

/* Requests the driver made available that the backend has not used yet, over
 * every queue of the device. */
static unsigned int inflight_now(struct gvk_dev *gd)
{
	unsigned int i, h, n = 0;
	unsigned long flags;

	for (i = 0; i < gd->nvqs; i++) {
		struct gvk_vq *q = &gd->vqs[i];

		if (!q->vq || !q->inflight)
			continue;
		gvk_track(q);
		spin_lock_irqsave(&q->track_lock, flags);
		for (h = 0; h < virtqueue_get_vring_size(q->vq); h++)
			n += max_t(s16, q->inflight[h], 0);
		spin_unlock_irqrestore(&q->track_lock, flags);
	}
	return n;
}

/* Before the device is closed (driver reset: unbind, freeze for a save,
 * guest shutdown): waits up to TIMEOUT jiffies for the backend to use every
 * request in flight, so that none is lost with the rings. Stock virtio_blk of
 * 6.1 resets the device in its freeze callback without waiting for its
 * requests. Returns how many are still in flight (the caller fails them once
 * the backend has let go of the rings). */
unsigned int gvk_drain(struct gvk_dev *gd, unsigned long timeout)
{
	unsigned long end = jiffies + timeout;
	unsigned int n;

	while ((n = inflight_now(gd)) && !READ_ONCE(gd->dead) && time_before(jiffies, end))
		msleep(5);
	return n;
}
