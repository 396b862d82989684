// SPDX-License-Identifier: GPL-2.0
/*
 * frontend/linux/gvk_main.c: the xenbus frontend and the virtio transport.
 *
 * Handshake (docs/transport.md): probe sets FE=Initialising; the backend's
 * InitWait schedules a work item that reads the device's features and config
 * and registers a virtio_device (not from the xenbus watch thread: find_vqs
 * waits for BE=Connected, an event that thread delivers). find_vqs creates the
 * split rings (256 entries, page aligned: desc, avail and used each start a
 * page of the one coherent allocation), grants the liveness page, allocates
 * the event channels, writes every frontend key in one transaction, sets
 * FE=Initialised and waits for BE=Connected, or for the backend's refusal
 * (BE=Closing with `error`, which goes to the kernel log). The driver's reset
 * closes (FE=Closing, BE=Closed: the backend has unmapped everything) before
 * del_vqs ends the grants.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/dma-map-ops.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_ids.h>
#include <xen/xen.h>
#include <xen/events.h>
#include <xen/page.h>
#include "gvk.h"

static char *dma = "grant";
module_param(dma, charp, 0444);
MODULE_PARM_DESC(dma, "DMA strategy: grant | bounce | bypass, for every device, or a list "
                      "\"<devid>:<strategy>,...\" (an entry without devid is the default)");
static unsigned int connect_timeout = 30;
module_param(connect_timeout, uint, 0644);
MODULE_PARM_DESC(connect_timeout, "seconds to wait for the backend to connect or to close (default 30)");
static unsigned int restart_timeout = 30;
module_param(restart_timeout, uint, 0644);
MODULE_PARM_DESC(restart_timeout, "seconds requests wait for a new backend to take a device over after "
                                  "the backend went away (default 30; 0: fail them at once)");

static const char *const strategy_names[] = {
	[GVK_GRANT] = "grant", [GVK_BOUNCE] = "bounce", [GVK_BYPASS] = "bypass",
};

const char *gvk_strategy_name(enum gvk_strategy s)
{
	return strategy_names[s];
}

static int parse_strategy(const char *s, size_t len, enum gvk_strategy *out)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(strategy_names); i++)
		if (strlen(strategy_names[i]) == len && !strncmp(s, strategy_names[i], len)) {
			*out = i;
			return 0;
		}
	return -EINVAL;
}

/* The strategy for device DEVID from the dma= parameter. */
static int strategy_for(unsigned int devid, enum gvk_strategy *out)
{
	const char *p = dma;
	enum gvk_strategy def = GVK_GRANT, s;
	bool have = false;

	while (p && *p) {
		const char *end = strchrnul(p, ','), *colon = memchr(p, ':', end - p);

		if (colon) {
			unsigned int id;
			char num[12];

			if (colon - p >= sizeof(num))
				return -EINVAL;
			memcpy(num, p, colon - p);
			num[colon - p] = 0;
			if (kstrtouint(num, 10, &id) || parse_strategy(colon + 1, end - colon - 1, &s))
				return -EINVAL;
			if (id == devid) {
				*out = s;
				have = true;
			}
		} else {
			if (parse_strategy(p, end - p, &def))
				return -EINVAL;
		}
		p = *end ? end + 1 : end;
	}
	if (!have)
		*out = def;
	return 0;
}

static struct gvk_dev *vdev_gd(struct virtio_device *vdev)
{
	return container_of(vdev, struct gvk_vdev, vdev)->gd;
}

/* ---- virtio config ops ---------------------------------------------------------------- */

static void gvk_get(struct virtio_device *vdev, unsigned int offset, void *buf, unsigned int len)
{
	struct gvk_dev *gd = vdev_gd(vdev);

	if (gd->virtio_id == VIRTIO_ID_BLOCK && offset <= sizeof(gd->blkcfg) &&
	    len <= sizeof(gd->blkcfg) - offset)
		memcpy(buf, (u8 *)&gd->blkcfg + offset, len);
	else
		memset(buf, 0, len);
}

static void gvk_set(struct virtio_device *vdev, unsigned int offset, const void *buf,
                    unsigned int len)
{
	/* no writable config field is offered */
}

static u32 gvk_generation(struct virtio_device *vdev)
{
	/* moves after the config space changed (gvk_cfg_changed) */
	return READ_ONCE(vdev_gd(vdev)->cfg_gen);
}

static u8 gvk_get_status(struct virtio_device *vdev)
{
	return vdev_gd(vdev)->status;
}

static void gvk_set_status(struct virtio_device *vdev, u8 status)
{
	vdev_gd(vdev)->status = status;
}

static u64 gvk_get_features(struct virtio_device *vdev)
{
	/* VIRTIO_RING_F_EVENT_IDX is kept from the driver: gvk_dead.c finds the
	 * requests a dead backend left by scanning the rings at every kick and
	 * interrupt, and with event suppression more than a ring's worth of
	 * entries can pass between two of them */
	return vdev_gd(vdev)->dev_features & ~(1ULL << VIRTIO_RING_F_EVENT_IDX);
}

static int gvk_finalize_features(struct virtio_device *vdev)
{
	struct gvk_dev *gd = vdev_gd(vdev);

	vring_transport_features(vdev);
	if (!__virtio_test_bit(vdev, VIRTIO_F_VERSION_1)) {
		dev_err(&gd->xb->dev, "the device does not offer VIRTIO_F_VERSION_1\n");
		return -ENODEV;
	}
	if (gd->strategy == GVK_BYPASS) {
		/* the demonstration: the driver neither accepts the feature nor grants */
		__virtio_clear_bit(vdev, VIRTIO_F_ACCESS_PLATFORM);
		dev_warn(&gd->xb->dev, "dma=bypass: VIRTIO_F_ACCESS_PLATFORM not accepted; "
		         "descriptors will carry pseudo-physical addresses\n");
	} else if (!__virtio_test_bit(vdev, VIRTIO_F_ACCESS_PLATFORM)) {
		dev_err(&gd->xb->dev, "the device does not offer VIRTIO_F_ACCESS_PLATFORM\n");
		return -ENODEV;
	}
	return 0;
}

static const char *gvk_bus_name(struct virtio_device *vdev)
{
	return dev_name(&vdev_gd(vdev)->xb->dev);
}

/* The backend's `error` key into the log. */
static void log_backend_error(struct gvk_dev *gd, const char *what)
{
	char *err = xenbus_read(XBT_NIL, gd->xb->otherend, "error", NULL);

	if (IS_ERR(err)) {
		dev_err(&gd->xb->dev, "%s (the backend gave no reason)\n", what);
		return;
	}
	dev_err(&gd->xb->dev, "%s: %s\n", what, err);
	kfree(err);
}

/* Whether the backend's state key says Closed (or the key is gone). */
static bool backend_closed(struct gvk_dev *gd)
{
	enum xenbus_state s = xenbus_read_driver_state(gd->xb->otherend);

	return s == XenbusStateClosed || s == XenbusStateUnknown;
}

/* FE=Closing and wait for BE=Closed (the backend unmaps every grant first),
 * unless the backend is gone. Called with gd->lock held; drops it to wait.
 * The state key is read as well as waited for: while a device is being
 * unbound the xenbus core has already dropped its watch on the backend. */
static void close_locked(struct gvk_dev *gd)
{
	unsigned long end = jiffies + connect_timeout * HZ;
	bool wait = !gd->dead && !gd->away && gd->be_state != XenbusStateClosed;

	gd->phase = GVK_CLOSING;
	reinit_completion(&gd->closed);
	xenbus_switch_state(gd->xb, XenbusStateClosing);
	if (wait) {
		mutex_unlock(&gd->lock);
		while (!backend_closed(gd)) {
			if (time_after(jiffies, end)) {
				dev_warn(&gd->xb->dev, "backend did not close within %u s; grants it still "
				         "maps are kept until it does\n", connect_timeout);
				break;
			}
			wait_for_completion_timeout(&gd->closed, HZ / 20);
		}
		mutex_lock(&gd->lock);
	}
	xenbus_switch_state(gd->xb, XenbusStateClosed);
	gd->phase = GVK_STOPPED;
}

/* Stops the device: waits (bounded) for the backend to finish what is in
 * flight, closes (the backend unmaps everything), then fails whatever the
 * backend left unused, so no request is lost with the rings. The driver's
 * reset (unbind, freeze before a save) and the guest's shutdown (gvk_pm.c). */
void gvk_shut(struct gvk_dev *gd)
{
	unsigned int left = 0;
	bool away = READ_ONCE(gd->away);
	bool connected = READ_ONCE(gd->phase) == GVK_CONNECTED;

	if (connected && !READ_ONCE(gd->dead) && !away)
		left = gvk_drain(gd, connect_timeout * HZ);
	cancel_delayed_work_sync(&gd->restart_work);
	mutex_lock(&gd->lock);
	if (gd->phase == GVK_CONNECTED || gd->phase == GVK_CONNECTING ||
	    (gd->phase == GVK_STOPPED && gd->xb->state != XenbusStateClosed))
		close_locked(gd);
	gd->away = false;
	mutex_unlock(&gd->lock);
	if (left)
		dev_warn(&gd->xb->dev, "%u request%s still in flight after %u s: failed with an I/O error\n",
		         left, left == 1 ? "" : "s", connect_timeout);
	/* hands the driver what the backend used but no interrupt delivered
	 * yet, and fails what it left */
	if (connected)
		gvk_fail_inflight(&gd->fail_work);
}

static void gvk_reset(struct virtio_device *vdev)
{
	struct gvk_dev *gd = vdev_gd(vdev);

	gvk_shut(gd);
	mutex_lock(&gd->lock);
	gd->status = 0;
	mutex_unlock(&gd->lock);
}

/* ---- virtqueues ----------------------------------------------------------------------- */

static bool gvk_notify(struct virtqueue *vq)
{
	struct gvk_vq *q = vq->priv;

	gvk_track(q);
	if (READ_ONCE(q->gd->dead)) {
		schedule_work(&q->gd->fail_work);
		return true;
	}
	notify_remote_via_irq(q->irq);
	return true;
}

static irqreturn_t gvk_vq_irq(int irq, void *data)
{
	struct gvk_vq *q = data;

	if (!q->vq)
		return IRQ_HANDLED;
	gvk_track(q);
	return vring_interrupt(irq, q->vq);
}

static irqreturn_t gvk_dev_irq(int irq, void *data)
{
	struct gvk_dev *gd = data;

	schedule_work(&gd->live_work);
	return IRQ_HANDLED;
}

/* Marks the device dead (backend gone): every in-flight and new request fails
 * with an I/O error (gvk_dead.c). Called with gd->lock held. */
static void go_dead_locked(struct gvk_dev *gd)
{
	WRITE_ONCE(gd->dead, true);
	gd->away = false;
	cancel_delayed_work(&gd->restart_work);
	gd->phase = GVK_STOPPED;
	xenbus_switch_state(gd->xb, XenbusStateClosing);
	schedule_work(&gd->fail_work);
}

/* The backend offered takeover and every queue has its in-flight record. */
static bool takeover_possible(struct gvk_dev *gd)
{
	unsigned int i;

	if (!gd->be_inflight || !restart_timeout || !gd->nvqs)
		return false;
	for (i = 0; i < gd->nvqs; i++)
		if (!gd->vqs[i].record)
			return false;
	return true;
}

/* No backend took the device over in time. */
static void gvk_restart_work(struct work_struct *w)
{
	struct gvk_dev *gd = container_of(to_delayed_work(w), struct gvk_dev, restart_work);

	mutex_lock(&gd->lock);
	if (gd->away && gd->phase == GVK_CONNECTED && !gd->dead) {
		dev_err(&gd->xb->dev, "no backend took the device over within %u s: in-flight and new "
		        "requests fail with I/O errors; unload the module to release the device\n",
		        restart_timeout);
		go_dead_locked(gd);
	}
	mutex_unlock(&gd->lock);
}

static void gvk_live_work(struct work_struct *w)
{
	struct gvk_dev *gd = container_of(w, struct gvk_dev, live_work);

	mutex_lock(&gd->lock);
	if (gd->phase != GVK_CONNECTED || gd->dead || !gd->live) {
		mutex_unlock(&gd->lock);
		return;
	}
	if (READ_ONCE(gd->live[1]) == 0 && !gd->away) {
		if (takeover_possible(gd)) {
			/* requests stay on the rings; kicks to the port the dead
			 * backend left unbound are dropped by Xen */
			gd->away = true;
			gd->away_since = jiffies;
			schedule_delayed_work(&gd->restart_work, restart_timeout * HZ);
			dev_warn(&gd->xb->dev, "backend went away: requests in flight wait up to %u s "
			         "for a new one to take the device over\n", restart_timeout);
		} else {
			dev_err(&gd->xb->dev, "backend went away (its liveness byte was cleared): in-flight "
			        "and new requests fail with I/O errors; unload the module to release the device\n");
			go_dead_locked(gd);
		}
	} else if (READ_ONCE(gd->live[1]) && gd->away) {
		/* a new backend mapped the rings and the records, set its
		 * byte and serves again what was in flight */
		unsigned int i;

		gd->away = false;
		gd->restarts++;
		cancel_delayed_work(&gd->restart_work);
		dev_warn(&gd->xb->dev, "a new backend took the device over after %u ms: requests "
		         "in flight go on\n", jiffies_to_msecs(jiffies - gd->away_since));
		for (i = 0; i < gd->nvqs; i++)
			if (gd->vqs[i].irq > 0)
				notify_remote_via_irq(gd->vqs[i].irq);
	}
	mutex_unlock(&gd->lock);
}

static void free_queues(struct gvk_dev *gd)
{
	unsigned int i;

	for (i = 0; i < GVK_MAX_VQS; i++) {
		struct gvk_vq *q = &gd->vqs[i];

		if (q->irq > 0) {
			unbind_from_irqhandler(q->irq, q);  /* closes the port too */
			q->irq = 0;
		} else if (q->port) {
			xenbus_free_evtchn(gd->xb, q->port);
		}
		q->port = 0;
		if (q->bypass_nr) {
			gvk_end_pages(gd, q->bypass_ref, q->bypass_nr);
			q->bypass_nr = 0;
		}
		if (q->record) {
			gvk_end_page_free(gd, q->record_ref, virt_to_page(q->record));
			q->record = NULL;
		}
		if (q->vq) {
			struct virtqueue *vq = q->vq;

			q->vq = NULL;
			vring_del_virtqueue(vq);     /* frees the ring: its grants end (gvk_free) */
		}
		kfree(q->inflight);
		q->inflight = NULL;
	}
	gd->nvqs = 0;
	if (gd->dev_irq > 0) {
		unbind_from_irqhandler(gd->dev_irq, gd);
		gd->dev_irq = 0;
	} else if (gd->dev_port) {
		xenbus_free_evtchn(gd->xb, gd->dev_port);
	}
	gd->dev_port = 0;
	if (gd->live) {
		if (gd->live_granted)
			gvk_end_pages(gd, gd->live_ref, 1);
		free_page((unsigned long)gd->live);
		gd->live = NULL;
		gd->live_granted = false;
	}
}

static void gvk_del_vqs(struct virtio_device *vdev)
{
	struct gvk_dev *gd = vdev_gd(vdev);

	cancel_work_sync(&gd->fail_work);
	mutex_lock(&gd->lock);
	if (gd->phase == GVK_CONNECTED || gd->phase == GVK_CONNECTING)
		close_locked(gd);
	mutex_unlock(&gd->lock);
	free_queues(gd);
}

/* The refs of the pages holding [dma, dma + bytes): the area must start a page.
 * READONLY: the device only reads this area (descriptor table, avail ring), so
 * its pages, granted writable by the coherent allocation, are granted again
 * read-only before the backend can map them (publish runs once per set of new
 * rings, before Initialised): a backend cannot write what it must only read. */
static int area_refs(struct gvk_dev *gd, struct gvk_vq *q, dma_addr_t dma, size_t bytes,
                     bool readonly, char *buf, size_t len)
{
	unsigned int n = PFN_UP(bytes), k;
	size_t used = 0;

	if (gd->strategy == GVK_BYPASS) {
		/* dma-direct address: grant the pages ourselves (only the data
		 * addresses are left ungranted in the demonstration) */
		return -EOPNOTSUPP;
	}
	if (!GV_DMA_HAS_GRANT(dma) || GV_DMA_OFF(dma)) {
		dev_err(&gd->xb->dev, "vring area at %pad does not start a granted page\n", &dma);
		return -EINVAL;
	}
	buf[0] = 0;
	for (k = 0; k < n; k++) {
		grant_ref_t ref = (grant_ref_t)(GV_DMA_REF(dma) + k);
		struct page *pg = xa_load(&gd->pages, ref);

		if (!pg) {
			dev_err(&gd->xb->dev, "vring page of grant %u is not this device's\n", ref);
			return -EINVAL;
		}
		if (readonly)
			gnttab_grant_foreign_access_ref(ref, gd->be_domid, xen_page_to_gfn(pg), 1);
		used += scnprintf(buf + used, len - used, "%s%u", k ? " " : "", ref);
	}
	return 0;
}

/* Bypass: the ring came from dma-direct; grant its pages so that the device
 * could at least be set up (the backend refuses it before mapping anyway). */
static int bypass_area_refs(struct gvk_dev *gd, void *ring, void *area, size_t bytes,
                            grant_ref_t base, char *buf, size_t len)
{
	unsigned long off = (unsigned long)((u8 *)area - (u8 *)ring);
	unsigned int n = PFN_UP(bytes), k;
	size_t used = 0;

	if (off & ~PAGE_MASK)
		return -EINVAL;
	buf[0] = 0;
	for (k = 0; k < n; k++)
		used += scnprintf(buf + used, len - used, "%s%u", k ? " " : "",
		                  base + (unsigned int)(off >> PAGE_SHIFT) + k);
	return 0;
}

static int publish(struct gvk_dev *gd, unsigned int nvqs)
{
	struct xenbus_transaction t;
	const char *fe = gd->xb->nodename;
	char refs[3][64], key[40];
	unsigned int i, a;
	int rc;

again:
	rc = xenbus_transaction_start(&t);
	if (rc)
		return rc;
	rc = xenbus_printf(t, fe, "driver-features", "0x%llx", (unsigned long long)gd->gv->vdev.features);
	rc = rc ?: xenbus_printf(t, fe, "dma-strategy", "%s", gvk_strategy_name(gd->strategy));
	rc = rc ?: xenbus_printf(t, fe, "persistent-pool", "%u", gd->strategy == GVK_BOUNCE);
	rc = rc ?: xenbus_printf(t, fe, "event-channel", "%u", gd->dev_port);
	rc = rc ?: xenbus_printf(t, fe, "liveness-ref", "%u", gd->live_ref);
	rc = rc ?: xenbus_printf(t, fe, "num-queues", "%u", nvqs);
	for (i = 0; !rc && i < nvqs; i++) {
		struct gvk_vq *q = &gd->vqs[i];
		struct virtqueue *vq = q->vq;
		unsigned int num = virtqueue_get_vring_size(vq);
		size_t sz[3] = { 16u * num, 6u + 2u * num, 6u + 8u * num };

		if (gd->strategy == GVK_BYPASS) {
			const struct vring *vr = virtqueue_get_vring(vq);
			void *va[3] = { vr->desc, vr->avail, vr->used };

			for (a = 0; !rc && a < 3; a++)
				rc = bypass_area_refs(gd, vr->desc, va[a], sz[a], q->bypass_ref,
				                      refs[a], sizeof(refs[a]));
		} else {
			dma_addr_t da[3] = { virtqueue_get_desc_addr(vq), virtqueue_get_avail_addr(vq),
			                     virtqueue_get_used_addr(vq) };

			for (a = 0; !rc && a < 3; a++)
				rc = area_refs(gd, q, da[a], sz[a], a < 2, refs[a], sizeof(refs[a]));
		}
		if (rc)
			break;
		snprintf(key, sizeof(key), "queue-%u/size", i);
		rc = xenbus_printf(t, fe, key, "%u", num);
		snprintf(key, sizeof(key), "queue-%u/desc-refs", i);
		rc = rc ?: xenbus_printf(t, fe, key, "%s", refs[0]);
		snprintf(key, sizeof(key), "queue-%u/avail-refs", i);
		rc = rc ?: xenbus_printf(t, fe, key, "%s", refs[1]);
		snprintf(key, sizeof(key), "queue-%u/used-refs", i);
		rc = rc ?: xenbus_printf(t, fe, key, "%s", refs[2]);
		snprintf(key, sizeof(key), "queue-%u/event-channel", i);
		rc = rc ?: xenbus_printf(t, fe, key, "%u", q->port);
		if (q->record) {
			snprintf(key, sizeof(key), "queue-%u/inflight-ref", i);
			rc = rc ?: xenbus_printf(t, fe, key, "%u", q->record_ref);
		}
	}
	if (rc) {
		xenbus_transaction_end(t, 1);
		return rc;
	}
	rc = xenbus_transaction_end(t, 0);
	if (rc == -EAGAIN)
		goto again;
	return rc;
}

static int read_device(struct gvk_dev *gd);

/* The queue's in-flight record for the backend (docs/transport.md, Backend
 * restart): a zeroed page granted writable, that only the backend writes. */
static int grant_record(struct gvk_dev *gd, struct gvk_vq *q)
{
	struct page *pg = alloc_page(GFP_KERNEL | __GFP_ZERO);
	int rc;

	if (!pg)
		return -ENOMEM;
	rc = gvk_grant_pages(gd, pg, 1, false, &q->record_ref);
	if (rc) {
		__free_page(pg);
		return rc;
	}
	q->record = page_address(pg);
	return 0;
}

/* Before connecting, the backend must offer the device (BE=InitWait): at once
 * the first time (the device was registered on InitWait), but after a close
 * the backend publishes it again only once FE=Closed, and after a restore in
 * a new domain it first sees the device libxl made anew. After a restore the
 * device keys are read again: the features the driver negotiated before the
 * save must still be offered. */
/* Waits (up to connect_timeout) until the backend's state is one of MASK
 * (bits 1 << state); returns the last state read. The state key is read here
 * as well as waited for on the watch: while the guest resumes from a save,
 * the xenbus watch thread is busy running the suspend itself (Linux runs it
 * from the control/shutdown watch), so no otherend_changed arrives before
 * every device is restored. */
static enum xenbus_state await_backend(struct gvk_dev *gd, unsigned int mask)
{
	unsigned long end = jiffies + connect_timeout * HZ;
	enum xenbus_state s;

	for (;;) {
		s = xenbus_read_driver_state(gd->xb->otherend);
		if ((mask & (1u << s)) || time_after(jiffies, end))
			return s;
		wait_event_timeout(gd->state_wq, mask & (1u << READ_ONCE(gd->be_state)), HZ / 20);
	}
}

static int backend_ready(struct gvk_dev *gd, struct virtio_device *vdev)
{
	enum xenbus_state s = await_backend(gd, 1u << XenbusStateInitWait);

	if (s != XenbusStateInitWait) {
		dev_err(&gd->xb->dev, "backend did not offer the device (InitWait) within %u s "
		        "(its state is %d)\n", connect_timeout, s);
		return -EIO;
	}
	if (!gd->resumed)
		return 0;
	gd->resumed = false;
	if (read_device(gd))
		return -EIO;
	if (vdev->features & ~gd->dev_features) {
		dev_err(&gd->xb->dev, "after the restore the backend no longer offers features 0x%llx "
		        "the driver uses\n", (unsigned long long)(vdev->features & ~gd->dev_features));
		return -EIO;
	}
	return 0;
}

static int gvk_find_vqs(struct virtio_device *vdev, unsigned int nvqs, struct virtqueue *vqs[],
                        vq_callback_t *callbacks[], const char *const names[], const bool *ctx,
                        struct irq_affinity *desc)
{
	struct gvk_dev *gd = vdev_gd(vdev);
	unsigned int i, n = 0;
	enum xenbus_state s;
	int rc;

	rc = backend_ready(gd, vdev);
	if (rc)
		return rc;
	if (nvqs > GVK_MAX_VQS || nvqs > gd->be_nq) {
		dev_err(&gd->xb->dev, "driver wants %u queues, the device has %u\n", nvqs, gd->be_nq);
		return -EINVAL;
	}
	gd->live = (u8 *)get_zeroed_page(GFP_KERNEL);
	if (!gd->live)
		return -ENOMEM;
	gd->live[0] = 1;
	rc = gvk_grant_pages(gd, virt_to_page(gd->live), 1, false, &gd->live_ref);
	if (rc)
		goto fail;
	gd->live_granted = true;
	rc = xenbus_alloc_evtchn(gd->xb, &gd->dev_port);
	if (rc)
		goto fail;
	rc = bind_evtchn_to_irqhandler(gd->dev_port, gvk_dev_irq, 0, "gvk-dev", gd);
	if (rc < 0)
		goto fail;
	gd->dev_irq = rc;

	for (i = 0; i < nvqs; i++) {
		struct gvk_vq *q;
		struct virtqueue *vq;

		if (!names[i]) {
			vqs[i] = NULL;
			continue;
		}
		q = &gd->vqs[n];
		q->gd = gd;
		spin_lock_init(&q->track_lock);
		q->avail_seen = q->used_seen = 0;
		q->inflight = kcalloc(GVK_QUEUE_SIZE, sizeof(*q->inflight), GFP_KERNEL);
		if (!q->inflight) {
			rc = -ENOMEM;
			goto fail;
		}
		rc = xenbus_alloc_evtchn(gd->xb, &q->port);
		if (rc)
			goto fail;
		if (gd->be_inflight && restart_timeout && gd->strategy != GVK_BYPASS) {
			rc = grant_record(gd, q);
			if (rc)
				goto fail;
		}
		vq = vring_create_virtqueue(n, GVK_QUEUE_SIZE, PAGE_SIZE, vdev, true, false,
		                            ctx ? ctx[i] : false, gvk_notify, callbacks[i], names[i]);
		if (!vq) {
			dev_err(&gd->xb->dev, "cannot create virtqueue %u (%u entries)\n", n, GVK_QUEUE_SIZE);
			rc = -ENOMEM;
			goto fail;
		}
		vq->priv = q;
		q->vq = vq;
		if (gd->strategy == GVK_BYPASS) {
			const struct vring *vr = virtqueue_get_vring(vq);
			size_t bytes = (u8 *)vr->used - (u8 *)vr->desc + 6u + 8u * GVK_QUEUE_SIZE;

			rc = gvk_grant_pages(gd, virt_to_page(vr->desc), PFN_UP(bytes), false,
			                     &q->bypass_ref);
			if (rc)
				goto fail;
			q->bypass_nr = PFN_UP(bytes);
		}
		rc = bind_evtchn_to_irqhandler(q->port, gvk_vq_irq, 0, names[i], q);
		if (rc < 0)
			goto fail;
		q->irq = rc;
		vqs[i] = vq;
		n++;
	}
	gd->nvqs = n;

	mutex_lock(&gd->lock);
	rc = publish(gd, n);
	if (rc) {
		mutex_unlock(&gd->lock);
		dev_err(&gd->xb->dev, "cannot write the frontend keys: %d\n", rc);
		goto fail;
	}
	gd->phase = GVK_CONNECTING;
	reinit_completion(&gd->conn_done);
	xenbus_switch_state(gd->xb, XenbusStateInitialised);
	mutex_unlock(&gd->lock);

	s = await_backend(gd, 1u << XenbusStateConnected | 1u << XenbusStateClosing |
	                      1u << XenbusStateClosed);
	if (s != XenbusStateConnected && s != XenbusStateClosing && s != XenbusStateClosed)
		dev_err(&gd->xb->dev, "backend did not connect within %u s\n", connect_timeout);
	mutex_lock(&gd->lock);
	gd->be_state = s;
	if (gd->be_state == XenbusStateConnected && gd->phase == GVK_CONNECTING) {
		gd->phase = GVK_CONNECTED;
		xenbus_switch_state(gd->xb, XenbusStateConnected);
		mutex_unlock(&gd->lock);
		dev_info(&gd->xb->dev, "connected: virtio device %u, %u queue%s of %u, dma %s, features 0x%llx\n",
		         gd->virtio_id, n, n == 1 ? "" : "s", GVK_QUEUE_SIZE,
		         gvk_strategy_name(gd->strategy), (unsigned long long)vdev->features);
		return 0;
	}
	gd->refused = true;
	if (gd->be_state == XenbusStateClosing || gd->be_state == XenbusStateClosed)
		log_backend_error(gd, "the backend refused the device");
	close_locked(gd);
	mutex_unlock(&gd->lock);
	rc = -EIO;
fail:
	free_queues(gd);
	return rc;
}

static const struct virtio_config_ops gvk_config_ops = {
	.get = gvk_get,
	.set = gvk_set,
	.generation = gvk_generation,
	.get_status = gvk_get_status,
	.set_status = gvk_set_status,
	.reset = gvk_reset,
	.find_vqs = gvk_find_vqs,
	.del_vqs = gvk_del_vqs,
	.get_features = gvk_get_features,
	.finalize_features = gvk_finalize_features,
	.bus_name = gvk_bus_name,
};

/* ---- registration of the virtio device ------------------------------------------------ */

static void gvk_vdev_release(struct device *dev)
{
	kfree(container_of(dev_to_virtio(dev), struct gvk_vdev, vdev));
}

static int read_u64(struct gvk_dev *gd, const char *key, unsigned long long *v)
{
	int n = xenbus_scanf(XBT_NIL, gd->xb->otherend, key, "%llu", v);

	if (n != 1) {
		dev_err(&gd->xb->dev, "backend key %s/%s missing or malformed\n", gd->xb->otherend, key);
		return -EINVAL;
	}
	return 0;
}

static int read_device(struct gvk_dev *gd)
{
	unsigned long long v, feat;
	unsigned int id;
	char *type;
	int rc;

	type = xenbus_read(XBT_NIL, gd->xb->otherend, "type", NULL);
	if (IS_ERR(type))
		return PTR_ERR(type);
	if (!strcmp(gd->xb->devicetype, "virtio_disk")) {
		/* xl's disk = ["...,specification=virtio,backendtype=standalone,..."]:
		 * a block device whose backend writes type = standalone */
		rc = strcmp(type, "standalone") ? 0 : 1;
		kfree(type);
		if (!rc) {
			dev_err(&gd->xb->dev, "virtio_disk backend type is not standalone\n");
			return -EINVAL;
		}
		id = VIRTIO_ID_BLOCK;
	} else {
		rc = sscanf(type, "virtio,device%u", &id);
		kfree(type);
	}
	if (rc != 1 || (id != VIRTIO_ID_BLOCK && id != VIRTIO_ID_RNG)) {
		dev_err(&gd->xb->dev, "backend type is not virtio,device2 or virtio,device4\n");
		return -EINVAL;
	}
	gd->virtio_id = id;
	if (xenbus_scanf(XBT_NIL, gd->xb->otherend, "features", "%llx", &feat) != 1) {
		dev_err(&gd->xb->dev, "backend key features missing or malformed\n");
		return -EINVAL;
	}
	gd->dev_features = feat;
	gd->be_inflight = xenbus_read_unsigned(gd->xb->otherend, "feature-inflight", 0) == 1;
	if (read_u64(gd, "num-queues", &v))
		return -EINVAL;
	gd->be_nq = min_t(unsigned long long, v, GVK_MAX_VQS);
	if (read_u64(gd, "max-queue-size", &v))
		return -EINVAL;
	gd->max_qsize = min_t(unsigned long long, v, 32768);
	if (gd->max_qsize < GVK_QUEUE_SIZE) {
		dev_err(&gd->xb->dev, "backend's max-queue-size %u is below %u: the kernel's ring layout "
		        "needs %u entries for page-aligned areas\n", gd->max_qsize, GVK_QUEUE_SIZE, GVK_QUEUE_SIZE);
		return -EINVAL;
	}
	memset(&gd->blkcfg, 0, sizeof(gd->blkcfg));
	/* before the config keys: a change while they are read is seen again
	 * by the config watch (absent: a backend without config changes) */
	if (xenbus_scanf(XBT_NIL, gd->xb->otherend, "config-generation", "%llu", &v) == 1)
		WRITE_ONCE(gd->cfg_gen, (u32)v);
	else
		WRITE_ONCE(gd->cfg_gen, 0);
	if (id == VIRTIO_ID_BLOCK) {
		if (read_u64(gd, "config/capacity", &v))
			return -EINVAL;
		gd->blkcfg.capacity = cpu_to_le64(v);
		if (!read_u64(gd, "config/blk-size", &v))
			gd->blkcfg.blk_size = cpu_to_le32(v);
		if (!read_u64(gd, "config/seg-max", &v))
			gd->blkcfg.seg_max = cpu_to_le32(v);
		if (!read_u64(gd, "config/size-max", &v))
			gd->blkcfg.size_max = cpu_to_le32(v);
		/* VIRTIO_BLK_F_MQ: virtio_blk reads how many queues it may ask
		 * for from the config space, which on this transport is the
		 * backend's num-queues (capped at what the module sets up) */
		if (feat & (1ULL << VIRTIO_BLK_F_MQ))
			gd->blkcfg.num_queues = cpu_to_le16(gd->be_nq);
		/* VIRTIO_BLK_F_DISCARD / _WRITE_ZEROES limits (absent: 0, the
		 * features are then not offered either) */
		if (!read_u64(gd, "config/max-discard-sectors", &v))
			gd->blkcfg.max_discard_sectors = cpu_to_le32(v);
		if (!read_u64(gd, "config/max-discard-seg", &v))
			gd->blkcfg.max_discard_seg = cpu_to_le32(v);
		if (!read_u64(gd, "config/discard-sector-alignment", &v))
			gd->blkcfg.discard_sector_alignment = cpu_to_le32(v);
		if (!read_u64(gd, "config/max-write-zeroes-sectors", &v))
			gd->blkcfg.max_write_zeroes_sectors = cpu_to_le32(v);
		if (!read_u64(gd, "config/max-write-zeroes-seg", &v))
			gd->blkcfg.max_write_zeroes_seg = cpu_to_le32(v);
		if (!read_u64(gd, "config/write-zeroes-may-unmap", &v))
			gd->blkcfg.write_zeroes_may_unmap = v ? 1 : 0;
	}
	return 0;
}

static void gvk_register_work(struct work_struct *w)
{
	struct gvk_dev *gd = container_of(w, struct gvk_dev, register_work);
	struct gvk_vdev *gv;
	int rc;

	if (read_device(gd)) {
		mutex_lock(&gd->lock);
		gd->phase = GVK_STOPPED;
		mutex_unlock(&gd->lock);
		xenbus_dev_fatal(gd->xb, -EINVAL, "reading the backend's device keys");
		return;
	}
	gv = kzalloc(sizeof(*gv), GFP_KERNEL);
	if (!gv)
		return;
	gv->gd = gd;
	gv->vdev.dev.parent = &gd->xb->dev;
	gv->vdev.dev.release = gvk_vdev_release;
	gv->vdev.id.device = gd->virtio_id;
	gv->vdev.id.vendor = 0x4756;  /* "GV" */
	gv->vdev.config = &gvk_config_ops;
	gv->vdev.dev.pm_domain = &gvk_vdev_pm_domain;   /* freeze/restore (gvk_pm.c) */
	gd->gv = gv;
	rc = register_virtio_device(&gv->vdev);
	if (rc) {
		dev_err(&gd->xb->dev, "register_virtio_device: %d\n", rc);
		gd->gv = NULL;
		put_device(&gv->vdev.dev);
	}
}

/* ---- config changes ------------------------------------------------------------------- */

/* The backend's config-generation moved (docs/transport.md, "Config
 * changes"): an online resize rewrote config/capacity before it. The config
 * space is served from those keys, so the capacity is read again, then the
 * virtio core is told as virtio-mmio's config interrupt would: virtio_blk's
 * config work re-reads the capacity and resizes the disk. Runs in the
 * xenwatch thread; the first call (at registration) finds nothing new. */
static void gvk_cfg_changed(struct xenbus_watch *w, const char *path, const char *token)
{
	struct gvk_dev *gd = container_of(w, struct gvk_dev, cfg_watch);
	struct virtio_device *vdev = NULL;
	unsigned long long gen, cap;

	if (xenbus_scanf(XBT_NIL, gd->xb->otherend, "config-generation", "%llu", &gen) != 1)
		return;
	mutex_lock(&gd->lock);
	/* connecting too: a change after read_device is not lost (the core
	 * holds it until the driver's probe has finished) */
	if (gd->gv && (gd->phase == GVK_CONNECTING || gd->phase == GVK_CONNECTED) &&
	    (u32)gen != gd->cfg_gen &&
	    gd->virtio_id == VIRTIO_ID_BLOCK) {
		if (xenbus_scanf(XBT_NIL, gd->xb->otherend, "config/capacity", "%llu", &cap) == 1) {
			gd->blkcfg.capacity = cpu_to_le64(cap);
			dev_info(&gd->xb->dev, "config change %llu from the backend: capacity %llu "
			         "sectors\n", gen, cap);
			vdev = &gd->gv->vdev;
		} else {
			dev_err(&gd->xb->dev, "config change %llu: config/capacity missing or "
			        "malformed; capacity left as it was\n", gen);
		}
		/* after the config space: virtio_cread retries across it */
		WRITE_ONCE(gd->cfg_gen, (u32)gen);
	}
	mutex_unlock(&gd->lock);
	if (vdev)
		virtio_config_changed(vdev);
}

static int gvk_cfg_watch(struct gvk_dev *gd)
{
	int rc = xenbus_watch_pathfmt(gd->xb, &gd->cfg_watch, NULL, gvk_cfg_changed,
	                              "%s/config-generation", gd->xb->otherend);

	gd->cfg_watched = !rc;
	return rc;
}

static void gvk_cfg_unwatch(struct gvk_dev *gd)
{
	if (!gd->cfg_watched)
		return;
	/* waits for a callback that runs now */
	unregister_xenbus_watch(&gd->cfg_watch);
	kfree(gd->cfg_watch.node);
	gd->cfg_watch.node = NULL;
	gd->cfg_watched = false;
}

/* ---- xenbus --------------------------------------------------------------------------- */

static void gvk_otherend_changed(struct xenbus_device *xb, enum xenbus_state state)
{
	struct gvk_dev *gd = dev_get_drvdata(&xb->dev);

	if (!gd)
		return;
	mutex_lock(&gd->lock);
	gd->be_state = state;
	wake_up_all(&gd->state_wq);
	switch (state) {
	case XenbusStateInitWait:
		if (gd->phase == GVK_IDLE && !gd->refused) {
			gd->phase = GVK_REGISTERED;
			schedule_work(&gd->register_work);
		}
		break;
	case XenbusStateConnected:
		if (gd->phase == GVK_CONNECTING)
			complete(&gd->conn_done);
		else if (gd->phase == GVK_CONNECTED && gd->away)
			schedule_work(&gd->live_work);   /* a takeover writes Connected again */
		break;
	case XenbusStateClosing:
	case XenbusStateClosed:
		if (gd->phase == GVK_CONNECTING)
			complete(&gd->conn_done);
		else if (gd->phase == GVK_CLOSING && state == XenbusStateClosed)
			complete(&gd->closed);
		else if (gd->phase == GVK_CONNECTED) {
			log_backend_error(gd, "the backend stopped the device");
			go_dead_locked(gd);
		} else if (gd->phase == GVK_STOPPED && state == XenbusStateClosed &&
		           xb->state == XenbusStateClosing) {
			xenbus_switch_state(xb, XenbusStateClosed);
		}
		break;
	default:
		break;
	}
	mutex_unlock(&gd->lock);
}

#define GVK_ATTR(name, fmt, expr)                                                                \
	static ssize_t name##_show(struct device *dev, struct device_attribute *attr, char *buf) \
	{                                                                                        \
		struct gvk_dev *gd = dev_get_drvdata(dev);                                       \
		return gd ? sysfs_emit(buf, fmt "\n", expr) : -ENODEV;                           \
	}                                                                                        \
	static DEVICE_ATTR_RO(name)
GVK_ATTR(gvk_grants_active, "%d", atomic_read(&gd->grants_active));
GVK_ATTR(gvk_grants_leaked, "%d", atomic_read(&gd->grants_leaked));
GVK_ATTR(gvk_bounced_bytes, "%lld", (long long)atomic64_read(&gd->bounced_bytes));
GVK_ATTR(gvk_map_errors, "%d", atomic_read(&gd->map_errors));
GVK_ATTR(gvk_dma_strategy, "%s", gvk_strategy_name(gd->strategy));
GVK_ATTR(gvk_backend_dead, "%d", READ_ONCE(gd->dead));
GVK_ATTR(gvk_backend_restarts, "%u", READ_ONCE(gd->restarts));

static struct attribute *gvk_attrs[] = {
	&dev_attr_gvk_grants_active.attr, &dev_attr_gvk_grants_leaked.attr,
	&dev_attr_gvk_bounced_bytes.attr, &dev_attr_gvk_map_errors.attr,
	&dev_attr_gvk_dma_strategy.attr, &dev_attr_gvk_backend_dead.attr,
	&dev_attr_gvk_backend_restarts.attr, NULL,
};
static const struct attribute_group gvk_attr_group = { .attrs = gvk_attrs };

static int gvk_probe(struct xenbus_device *xb, const struct xenbus_device_id *id)
{
	const char *slash = strrchr(xb->nodename, '/');
	struct gvk_dev *gd;
	unsigned int devid;
	int rc;

	if (!slash || kstrtouint(slash + 1, 10, &devid))
		return -EINVAL;
	gd = kzalloc(sizeof(*gd), GFP_KERNEL);
	if (!gd)
		return -ENOMEM;
	if (strategy_for(devid, &gd->strategy)) {
		dev_err(&xb->dev, "dma=%s: not grant, bounce, bypass or \"<devid>:<strategy>,...\"\n", dma);
		kfree(gd);
		return -EINVAL;
	}
	gd->xb = xb;
	gd->be_domid = xb->otherend_id;
	mutex_init(&gd->lock);
	init_completion(&gd->conn_done);
	init_completion(&gd->closed);
	init_waitqueue_head(&gd->state_wq);
	INIT_WORK(&gd->register_work, gvk_register_work);
	INIT_WORK(&gd->live_work, gvk_live_work);
	INIT_WORK(&gd->fail_work, gvk_fail_inflight);
	INIT_DELAYED_WORK(&gd->restart_work, gvk_restart_work);
	xa_init(&gd->pages);
	spin_lock_init(&gd->pool_lock);
	atomic_set(&gd->grants_active, 0);
	dev_set_drvdata(&xb->dev, gd);

	/* The xenbus device is the DMA device of the virtio device (vring_dma_dev
	 * is the parent). It has no DMA mask of its own. */
	gd->dma_mask = DMA_BIT_MASK(64);
	xb->dev.dma_mask = &gd->dma_mask;
	xb->dev.coherent_dma_mask = DMA_BIT_MASK(64);
	if (gd->strategy != GVK_BYPASS)
		set_dma_ops(&xb->dev, &gvk_dma_ops);
	rc = gvk_dma_init(gd);
	if (rc) {
		dev_err(&xb->dev, "bounce pool: %d\n", rc);
		goto fail;
	}
	rc = sysfs_create_group(&xb->dev.kobj, &gvk_attr_group);
	if (rc)
		goto fail_dma;
	rc = gvk_cfg_watch(gd);
	if (rc) {
		dev_err(&xb->dev, "watching the backend's config-generation: %d\n", rc);
		sysfs_remove_group(&xb->dev.kobj, &gvk_attr_group);
		goto fail_dma;
	}
	dev_info(&xb->dev, "grant-virtio frontend, dma %s, backend domain %u\n",
	         gvk_strategy_name(gd->strategy), gd->be_domid);
	xenbus_switch_state(xb, XenbusStateInitialising);
	return 0;
fail_dma:
	gvk_dma_exit(gd);
fail:
	set_dma_ops(&xb->dev, NULL);
	xb->dev.dma_mask = NULL;
	dev_set_drvdata(&xb->dev, NULL);
	kfree(gd);
	return rc;
}

static void gvk_remove(struct xenbus_device *xb)
{
	struct gvk_dev *gd = dev_get_drvdata(&xb->dev);

	if (!gd)
		return;
	mutex_lock(&gd->lock);
	gd->refused = true;   /* no new registration from here on */
	mutex_unlock(&gd->lock);
	gvk_cfg_unwatch(gd);
	cancel_work_sync(&gd->register_work);
	if (gd->gv) {
		unregister_virtio_device(&gd->gv->vdev);   /* driver remove: reset, del_vqs */
		gd->gv = NULL;
	}
	cancel_work_sync(&gd->live_work);
	cancel_delayed_work_sync(&gd->restart_work);
	cancel_work_sync(&gd->fail_work);
	mutex_lock(&gd->lock);
	if (xb->state != XenbusStateClosed && xb->state != XenbusStateInitialising)
		close_locked(gd);
	gd->phase = GVK_STOPPED;
	mutex_unlock(&gd->lock);
	free_queues(gd);
	gvk_dma_exit(gd);
	dev_info(&xb->dev, "removed: grants active %d, leaked %d, bounced %lld bytes\n",
	         atomic_read(&gd->grants_active), atomic_read(&gd->grants_leaked),
	         (long long)atomic64_read(&gd->bounced_bytes));
	sysfs_remove_group(&xb->dev.kobj, &gvk_attr_group);
	set_dma_ops(&xb->dev, NULL);
	xb->dev.dma_mask = NULL;
	dev_set_drvdata(&xb->dev, NULL);
	xa_destroy(&gd->pages);
	kfree(gd);
}

static const struct xenbus_device_id gvk_ids[] = {
	{ "virtio" },
	{ "virtio_disk" },      /* xl's disk= syntax with specification=virtio */
	{ "" }
};

static struct xenbus_driver gvk_driver = {
	.name = "grant-virtio",
	.ids = gvk_ids,
	.not_essential = true,
	.probe = gvk_probe,
	.remove = gvk_remove,
	.otherend_changed = gvk_otherend_changed,
	.resume = gvk_xb_resume,          /* gvk_pm.c: after xl restore */
};

static int __init gvk_init(void)
{
	int rc;

	if (!xen_domain())
		return -ENODEV;
	rc = gvk_pm_init(&gvk_driver);
	if (rc)
		return rc;
	rc = xenbus_register_frontend(&gvk_driver);
	if (rc)
		gvk_pm_exit();
	return rc;
}

static void __exit gvk_exit(void)
{
	xenbus_unregister_driver(&gvk_driver);
	gvk_pm_exit();
}

module_init(gvk_init);
module_exit(gvk_exit);
MODULE_DESCRIPTION("grant-virtio: virtio devices over Xen grants and xenbus (guest transport)");
MODULE_LICENSE("GPL");
MODULE_ALIAS("xen:virtio");
MODULE_ALIAS("xen:virtio_disk");
/* modprobe loads the drivers first: a xenbus frontend's load waits (30 s) for
 * its devices to connect, which needs the virtio driver bound */
MODULE_SOFTDEP("pre: virtio_blk virtio_rng");
