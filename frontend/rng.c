/*
 * frontend/rng.c: the virtio-rng driver (virtio 1.x 5.4): one
 * device-writable buffer per request; the used length says how many bytes
 * the device filled (bounded by the buffer: virtqueue.c checks it).
 */
#include <pthread.h>
#include <string.h>
#include "device.h"

#define RNG_MAX_REQ (64u * 1024)

struct rng_req {
	struct gvfe_dma_map map;
	bool done;
	bool requeued;              /* its ring went with a restored domain: add it again */
	uint32_t len;
	int err;
};

static void rng_complete(struct gv_device *d, unsigned qi, void *token, uint32_t len, int err)
{
	struct rng_req *r = token;
	int rc;

	/* Copies the filled bytes out (bounce) or ends the grants (grant). */
	rc = gvfe_dma_unmap(&d->dma, &r->map);
	if (rc < 0 && !err)
		err = -EIO;
	r->err = err;
	r->len = err ? 0 : len;
	r->done = true;
	gvfe_dev_finished(d, qi, NULL);
	d->st.requests++;
	if (err)
		d->st.request_errors++;
}

/* The domain was restored: the read is mapped and added again by its
 * caller (gv_rng_read) on the new ring. */
static void rng_requeue(struct gv_device *d, unsigned qi, void *token)
{
	struct rng_req *r = token;

	(void)qi;
	gvfe_dma_unmap(&d->dma, &r->map);
	r->requeued = true;
}

/* No configuration and no state of its own: only completions. */
const struct gvfe_driver gvfe_rng_driver = {
	.name = "virtio-rng",
	.type = "virtio,device4",
	.virtio_id = VIRTIO_ID_RNG,
	.features = 0,
	.complete = rng_complete,
	.requeue = rng_requeue,
};

ssize_t gv_rng_read(struct gv_device *d, void *buf, size_t len)
{
	struct gvfe_dma_seg segs[64];
	struct rng_req r = { 0 };
	struct gvfe_vq *vq;
	unsigned nsegs;
	int rc;

	if (d->drv != &gvfe_rng_driver)
		return -ENODEV;
	if (!len)
		return 0;
	if (len > RNG_MAX_REQ)
		len = RNG_MAX_REQ;
	pthread_mutex_lock(&d->lock);
add:
	vq = d->q[0].vq;
	if (d->broken || d->closing || !vq) {
		pthread_mutex_unlock(&d->lock);
		return -EIO;
	}
	if (len > vq->num * GV_PAGE_SIZE / 2)
		len = vq->num * GV_PAGE_SIZE / 2;
	r.requeued = false;
	rc = gvfe_dma_map(&d->dma, buf, len, GVFE_DMA_FROM_DEVICE, &r.map, segs,
	                  gvfe_vq_num_free(vq) < 64 ? gvfe_vq_num_free(vq) : 64, &nsegs);
	if (rc == 0 && !gvfe_vq_in_flight(vq))
		gvfe_dev_started_io(d);
	if (rc == 0) {
		rc = gvfe_vq_add(vq, segs, 0, nsegs, &r);
		if (rc < 0)
			gvfe_dma_unmap(&d->dma, &r.map);
	}
	if (rc < 0) {
		pthread_mutex_unlock(&d->lock);
		return rc;
	}
	rc = gvfe_vq_kick(vq, d->p);
	if (rc < 0)
		gvfe_dev_fail(d, "cannot notify the backend: %s", strerror(-rc));
	gvfe_dev_unlock_run_done(d, 0);
	rc = 0;
	for (;;) {
		/* r is written under the lock (rng_complete, rng_requeue); it is
		 * looked at before each wait: another thread may have re-attached */
		pthread_mutex_lock(&d->lock);
		if (r.done)
			break;
		if (r.requeued)
			goto add;   /* the domain was restored: on the new ring (or -EIO) */
		if (rc < 0) {
			pthread_mutex_unlock(&d->lock);
			return rc;
		}
		pthread_mutex_unlock(&d->lock);
		rc = gv_poll(d, -1);
	}
	pthread_mutex_unlock(&d->lock);
	return r.err ? r.err : (ssize_t)r.len;
}
