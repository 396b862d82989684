/*
 * frontend/transport.c: attaching to and detaching from a grant-virtio
 * device, following docs/transport.md step by step: the xenbus state
 * machine, feature negotiation, granting the vring areas and the liveness
 * page, allocating unbound event channels for the backend, publishing it
 * all in one xenstore transaction, and the orderly close that leaves no
 * grant behind. Set-up only: the per-request path is in io.c, blk.c, rng.c
 * and virtqueue.c.
 */
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "barrier.h"
#include "device.h"
#include "log.h"
#include "xs_keys.h"
#include "xs_util.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_IO_TIMEOUT_MS 30000     /* as Linux's block layer's default request timeout */
#define DEFAULT_RESTART_TIMEOUT_MS 30000 /* as long as one request may take */
#define DEFAULT_QUEUE_SIZE 256u
/* How long a Closed backend with an `error` may take to republish after we
 * wrote FE=Initialising before we take the error as its answer. */
#define REFUSAL_GRACE_MS   1000

void gv_attach_opts_init(struct gv_attach_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->platform = GV_PLATFORM_AUTO;
	o->domid = -1;
}

static int set_fe_state(struct gv_device *d, enum xenbus_state s)
{
	return gv_xs_printf(d->xs, XBT_NULL, d->fe_dir, GV_XS_FE_STATE, "%d", (int)s);
}

enum wait_for { WAIT_INITWAIT, WAIT_CONNECTED, WAIT_CLOSED };

static int wait_backend(struct gv_device *d, enum wait_for what)
{
	long long start = gv_now_ms(), deadline = start + d->timeout_ms;

	for (;;) {
		int s = gvfe_dev_refresh_backend(d);
		long long left;

		if (s == -ENOENT && what == WAIT_CLOSED)
			return 0;           /* the toolstack removed the device: nothing maps */
		if (s < 0 && s != -ENOENT)
			return s;
		switch (what) {
		case WAIT_INITWAIT:
			if (s == XenbusStateInitWait)
				return 0;
			if (s == XenbusStateClosed && gv_now_ms() - start >= REFUSAL_GRACE_MS) {
				gvfe_dev_read_be_error(d);
				if (*d->error)
					return -ECONNREFUSED;
			}
			break;
		case WAIT_CONNECTED:
			if (s == XenbusStateConnected)
				return 0;
			if (s == XenbusStateClosing || s == XenbusStateClosed) {
				gvfe_dev_read_be_error(d);
				return -ECONNREFUSED;
			}
			break;
		case WAIT_CLOSED:
			if (s == XenbusStateClosed)
				return 0;
			break;
		}
		if (what != WAIT_INITWAIT && gvfe_dev_check_backend(d) < 0) {
			if (what != WAIT_CLOSED)
				return -EPIPE;      /* the backend died */
			/* Its mapping of the liveness page is gone: an orderly
			 * close is about to write Closed, a dead backend never
			 * will (its platform unmapped everything): wait briefly. */
			if (deadline > gv_now_ms() + REFUSAL_GRACE_MS)
				deadline = gv_now_ms() + REFUSAL_GRACE_MS;
		}
		left = deadline - gv_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		gvfe_dev_wait_event(d, (int)left);
	}
}

static const struct gvfe_driver *const drivers[] = { &gvfe_blk_driver, &gvfe_rng_driver };

static int read_type(struct gv_device *d, char *err, size_t errlen)
{
	char type[64];
	int rc;

	rc = gv_xs_read_str(d->xs, XBT_NULL, d->be_dir, GV_XS_TYPE, type, sizeof(type));
	if (rc == 0 && d->xl_disk) {
		/* an xl disk (backendtype standalone) is a block device */
		if (strcmp(type, "standalone")) {
			snprintf(err, errlen, "xl disk of backendtype \"%s\": only standalone "
			         "(specification=virtio) disks are grant-virtio's", type);
			return -ENODEV;
		}
		snprintf(type, sizeof(type), "virtio,device2");
	}
	if (rc < 0) {
		snprintf(err, errlen, "cannot read %s/%s: %s", d->be_dir, GV_XS_TYPE, strerror(-rc));
		return rc;
	}
	for (unsigned i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
		if (!strcmp(type, drivers[i]->type)) {
			d->drv = drivers[i];
			d->virtio_id = drivers[i]->virtio_id;
			return 0;
		}
	}
	snprintf(err, errlen, "device type \"%s\" is not supported by this frontend "
	         "(virtio,device2 block and virtio,device4 entropy are)", type);
	return -ENODEV;
}

static int read_device(struct gv_device *d, char *err, size_t errlen)
{
	uint64_t v;
	int rc;

#define RD(key, max, dst, required) do { \
		rc = gvfe_dev_read_be_u64(d, key, max, required, &v, err, errlen); \
		if (rc < 0) \
			return rc; \
		if (rc) \
			dst = v; \
	} while (0)
	RD(GV_XS_FEATURES, UINT64_MAX, d->dev_features, true);
	RD(GV_XS_NUM_QUEUES, 64, d->dev_num_queues, true);
	RD(GV_XS_MAX_QUEUE_SIZE, 32768, d->max_queue_size, true);
	RD(GV_XS_MAX_PERSISTENT, UINT32_MAX, d->max_persistent, false);
	v = 0;
	RD(GV_XS_FEATURE_INFLIGHT, 1, v, false);
	d->restartable = v == 1 && d->restart_timeout_ms > 0;
#undef RD
	if (!d->dev_num_queues || d->max_queue_size < 2 ||
	    (d->max_queue_size & (d->max_queue_size - 1))) {
		snprintf(err, errlen, "backend offers %u queues of at most %u entries: unusable",
		         d->dev_num_queues, d->max_queue_size);
		return -EPROTO;
	}
	return 0;
}

static int negotiate(struct gv_device *d, const struct gvfe_dma_ops *dma, char *err,
                     size_t errlen)
{
	uint64_t want = 1ULL << VIRTIO_F_VERSION_1;

	if (!(d->dev_features & (1ULL << VIRTIO_F_VERSION_1))) {
		snprintf(err, errlen, "device does not offer VIRTIO_F_VERSION_1");
		return -EPROTO;
	}
	if (dma->access_platform) {
		if (!(d->dev_features & (1ULL << VIRTIO_F_ACCESS_PLATFORM))) {
			snprintf(err, errlen, "device does not offer VIRTIO_F_ACCESS_PLATFORM: "
			         "it could not reach granted memory");
			return -EPROTO;
		}
		want |= 1ULL << VIRTIO_F_ACCESS_PLATFORM;
	}
	/* Ring features only when offered: a backend without EVENT_IDX gets
	 * flags-based suppression, one without INDIRECT_DESC direct chains. */
	want |= 1ULL << VIRTIO_RING_F_EVENT_IDX | 1ULL << VIRTIO_RING_F_INDIRECT_DESC;
	want |= d->drv->features;
	/* Several queues: VIRTIO_BLK_F_MQ, which says num-queues is valid. */
	if (d->virtio_id == VIRTIO_ID_BLOCK && d->nq > 1)
		want |= 1ULL << VIRTIO_BLK_F_MQ;
	d->drv_features = d->dev_features & want;
	return 0;
}

/* How many queues to set up: what the caller asked (0: one per online CPU),
 * at most what the device offers (a block device with VIRTIO_BLK_F_MQ;
 * anything else has one) and GVFE_MAX_QUEUES. */
static unsigned pick_num_queues(const struct gv_device *d, unsigned want)
{
	unsigned n = want;

	if (!n) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		n = cpus > 0 ? (unsigned)cpus : 1;
	}
	if (d->virtio_id != VIRTIO_ID_BLOCK || !(d->dev_features & (1ULL << VIRTIO_BLK_F_MQ)))
		return 1;
	if (n > d->dev_num_queues)
		n = d->dev_num_queues;
	if (n > GVFE_MAX_QUEUES)
		n = GVFE_MAX_QUEUES;
	return n ? n : 1;
}

struct publish_ctx {
	struct gv_device *d;
};

static int publish_keys(struct xs_handle *xs, xs_transaction_t t, void *arg)
{
	struct gv_device *d = ((struct publish_ctx *)arg)->d;
	const char *dir = d->fe_dir;
	char key[64];
	int rc;

	rc = gv_xs_printf(xs, t, dir, GV_XS_DRIVER_FEATURES, "0x%016llx",
	                  (unsigned long long)d->drv_features);
	if (!rc)
		rc = gv_xs_write_str(xs, t, dir, GV_XS_DMA_STRATEGY, d->dma.ops->name);
	if (!rc)
		rc = gv_xs_printf(xs, t, dir, GV_XS_PERSISTENT_POOL, "%d", d->dma.ops->persistent);
	if (!rc)
		rc = gv_xs_printf(xs, t, dir, GV_XS_EVENT_CHANNEL, "%u", d->dev_port);
	if (!rc)
		rc = gv_xs_printf(xs, t, dir, GV_XS_LIVENESS_REF, "%u", d->live.refs[0]);
	if (!rc)
		rc = gv_xs_printf(xs, t, dir, GV_XS_FE_NUM_QUEUES, "%u", d->nq);
	for (unsigned q = 0; !rc && q < GVFE_MAX_QUEUES; q++) {
		struct gvfe_vq *vq = d->q[q].vq;

		if (q >= d->nq) {
			/* an earlier frontend's queue-<q> with more queues is not ours */
			snprintf(key, sizeof(key), "queue-%u", q);
			if ((rc = gv_xs_rm(xs, t, dir, key)) == -ENOENT)
				rc = 0;
			continue;
		}
		snprintf(key, sizeof(key), GV_XS_QUEUE_SIZE_FMT, q);
		rc = gv_xs_printf(xs, t, dir, key, "%u", vq->num);
		snprintf(key, sizeof(key), GV_XS_QUEUE_DESC_FMT, q);
		if (!rc)
			rc = gv_xs_write_refs(xs, t, dir, key, vq->desc_area.refs, vq->desc_area.npages);
		snprintf(key, sizeof(key), GV_XS_QUEUE_AVAIL_FMT, q);
		if (!rc)
			rc = gv_xs_write_refs(xs, t, dir, key, vq->avail_area.refs,
			                      vq->avail_area.npages);
		snprintf(key, sizeof(key), GV_XS_QUEUE_USED_FMT, q);
		if (!rc)
			rc = gv_xs_write_refs(xs, t, dir, key, vq->used_area.refs, vq->used_area.npages);
		snprintf(key, sizeof(key), GV_XS_QUEUE_EVTCHN_FMT, q);
		if (!rc)
			rc = gv_xs_printf(xs, t, dir, key, "%u", d->q[q].port);
		snprintf(key, sizeof(key), GV_XS_QUEUE_INFLIGHT_FMT, q);
		if (!rc && d->restartable)
			rc = gv_xs_printf(xs, t, dir, key, "%u", d->q[q].inflight.refs[0]);
		else if (!rc && (rc = gv_xs_rm(xs, t, dir, key)) == -ENOENT)
			rc = 0;             /* an earlier frontend's record is not ours */
	}
	return rc;
}

static unsigned pick_queue_size(const struct gv_device *d, unsigned want)
{
	unsigned n = want ? want : DEFAULT_QUEUE_SIZE;

	if (n > d->max_queue_size)
		n = d->max_queue_size;
	/* round down to a power of two */
	while (n & (n - 1))
		n &= n - 1;
	return n < 2 ? 2 : n;
}

/* What attach granted and bound, released in reverse, on every queue; safe
 * on a half-built device. keep_driver: only the driver's grants go
 * (unsetup), its configuration and waiting requests stay (a re-attach).
 * unbind: the ports are this domain's (not after a restore: the platform
 * forgot them). */
static int release_grants(struct gv_device *d, bool keep_driver, bool unbind)
{
	int rc = 0, r;

	if (d->drv && d->drv_priv) {
		if (!keep_driver && d->drv->teardown)
			d->drv->teardown(d);
		else if (keep_driver && d->drv->unsetup)
			d->drv->unsetup(d);
	}
	for (unsigned q = 0; q < d->nq; q++) {
		struct gvfe_queue *vq = &d->q[q];

		if (vq->vq) {
			/* kept for gv_detach_stats, and across re-attaches */
			d->st.kicks += vq->vq->stats.kicks;
			d->st.kicks_suppressed += vq->vq->stats.kicks_suppressed;
			d->st.indirect_chains += vq->vq->stats.indirect;
			r = gvfe_vq_destroy(vq->vq);
			rc = rc ? rc : r;
			vq->vq = NULL;
		}
		if (vq->inflight.npages) {
			r = gvfe_dma_free_coherent(&d->dma, &vq->inflight);
			rc = rc ? rc : r;
		}
	}
	if (d->live.npages) {
		r = gvfe_dma_free_coherent(&d->dma, &d->live);
		rc = rc ? rc : r;
	}
	if (d->dma_ready) {
		r = gvfe_dma_dev_destroy(&d->dma);
		rc = rc ? rc : r;
		d->dma_ready = false;
	}
	/* the DMA layer's counters outlive its device (a re-attach makes a new one) */
	{
		const struct gvfe_dma_stats *ds = &d->dma.stats;

		d->dma_stats_before.bytes_copied_in += ds->bytes_copied_in;
		d->dma_stats_before.bytes_copied_out += ds->bytes_copied_out;
		d->dma_stats_before.pool_full += ds->pool_full;
		d->dma_stats_before.pool_fallbacks += ds->pool_fallbacks;
		d->dma_stats_before.pages_leaked += ds->pages_leaked;
		memset(&d->dma.stats, 0, sizeof(d->dma.stats));
	}
	for (unsigned q = 0; q < d->nq; q++) {
		if (unbind && d->q[q].port != GV_NO_PORT)
			gv_evtchn_unbind(d->p, d->q[q].port);
		d->q[q].port = GV_NO_PORT;
	}
	if (unbind && d->dev_port != GV_NO_PORT)
		gv_evtchn_unbind(d->p, d->dev_port);
	d->dev_port = GV_NO_PORT;
	return rc;
}

/* Everything attach built, undone in reverse; safe on a half-built device.
 * handshake: the backend may have mapped our grants: close with it first. */
static int teardown(struct gv_device *d, bool handshake)
{
	int rc = 0, r;

	d->closing = true;
	if (handshake) {
		set_fe_state(d, XenbusStateClosing);
		r = wait_backend(d, WAIT_CLOSED);
		if (r < 0) {
			gv_warn("backend %s did not reach Closed (%s): grants it still maps will leak",
			        d->be_dir, strerror(-r));
			rc = r;
		}
	}
	/* Nothing is mapped any more (or the grants leak, counted): give the
	 * requests still in flight back to their callers. */
	for (unsigned q = 0; q < d->nq; q++)
		if (d->q[q].vq)
			d->q[q].vq->broken = true;  /* stopped: what waits to be issued fails too */
	gvfe_dev_fail_inflight(d);
	r = release_grants(d, false, true);
	return rc ? rc : r;
}

static void release(struct gv_device *d)
{
	/* callbacks of requests failed on the way out */
	if (d->lock_ready) {
		pthread_mutex_lock(&d->lock);
		gvfe_dev_unlock_run_done(d, -1);
		pthread_cond_destroy(&d->cond);
		pthread_mutex_destroy(&d->lock);
	}
	if (d->watching)
		xs_unwatch(d->xs, d->be_dir, d->watch_token);
	if (d->xs)
		xs_close(d->xs);
	if (d->p)
		gv_platform_close(d->p);
	free(d);
}

int gv_attach(const struct gv_attach_opts *o, struct gv_device **out, char *err, size_t errlen)
{
	return gv_attach_queues(o, 1, out, err, errlen);
}

static int init_lock(struct gv_device *d)
{
	pthread_condattr_t ca;
	int rc;

	rc = pthread_condattr_init(&ca);
	if (rc)
		return -rc;
	rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (!rc)
		rc = pthread_cond_init(&d->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (rc)
		return -rc;
	rc = pthread_mutex_init(&d->lock, NULL);
	if (rc) {
		pthread_cond_destroy(&d->cond);
		return -rc;
	}
	d->lock_ready = true;
	return 0;
}

/* The handshake, steps 1-4, from the device's keys to Connected, in the
 * domain the platform handle runs in now: gv_attach_queues, and reattach
 * after a restore (a device of the same type and at least as many queues:
 * the driver's state is kept). On failure: -errno and a line in err; what
 * was built is left for teardown (*published: the backend may map it);
 * *fe_moved: FE state was written. */
static int connect_device(struct gv_device *d, char *err, size_t errlen, bool *fe_moved,
                          bool *published)
{
	const struct gvfe_driver *drv_before = d->drv;
	struct gv_notify live_notify;
	struct publish_ctx ctx;
	enum xenbus_state fe_state;
	uint64_t backend_id;
	unsigned nq;
	int rc;

	if (d->xl_disk)
		snprintf(d->fe_dir, sizeof(d->fe_dir), GV_XS_DISK_FRONTEND_DIR_FMT,
		         (unsigned)d->p->domid, d->devid);
	else
		snprintf(d->fe_dir, sizeof(d->fe_dir), GV_XS_FRONTEND_DIR_FMT,
		         (unsigned)d->p->domid, d->devid);
	rc = gv_xs_read_str(d->xs, XBT_NULL, d->fe_dir, GV_XS_BACKEND, d->be_dir, sizeof(d->be_dir));
	if (rc == 0)
		rc = gv_xs_read_u64(d->xs, XBT_NULL, d->fe_dir, GV_XS_BACKEND_ID,
		                    DOMID_FIRST_RESERVED - 1, &backend_id);
	if (rc < 0) {
		snprintf(err, errlen, "no virtio device %u for domain %u (%s/%s: %s); "
		         "was the guest created with it (gv-xl create)?", d->devid,
		         (unsigned)d->p->domid, d->fe_dir, GV_XS_BACKEND, strerror(-rc));
		return rc == -ENOENT ? -ENODEV : rc;
	}
	d->backend_id = (domid_t)backend_id;
	rc = read_type(d, err, errlen);
	if (rc < 0)
		return rc;
	if (drv_before && d->drv != drv_before) {
		snprintf(err, errlen, "the device is a %s now, not the %s it was", d->drv->name,
		         drv_before->name);
		d->drv = drv_before;    /* its state is the old driver's */
		return -ENODEV;
	}
	snprintf(d->watch_token, sizeof(d->watch_token), "gv-fe-%u", d->devid);
	if (!xs_watch(d->xs, d->be_dir, d->watch_token)) {
		rc = errno ? -errno : -EIO;
		snprintf(err, errlen, "cannot watch %s: %s", d->be_dir, strerror(-rc));
		return rc;
	}
	d->watching = true;
	d->xs_fd = xs_fileno(d->xs);

	/* Step 2: FE=Initialising (also tells a backend still Connected to an
	 * old, dead frontend to disconnect), then wait for BE=InitWait. */
	rc = gv_xs_read_state(d->xs, XBT_NULL, d->fe_dir, GV_XS_FE_STATE, &fe_state);
	if (rc < 0 || fe_state != XenbusStateInitialising) {
		rc = set_fe_state(d, XenbusStateInitialising);
		if (rc < 0) {
			snprintf(err, errlen, "cannot write %s/state: %s", d->fe_dir, strerror(-rc));
			return rc;
		}
	}
	*fe_moved = true;
	rc = wait_backend(d, WAIT_INITWAIT);
	if (rc < 0) {
		if (rc == -ECONNREFUSED)
			snprintf(err, errlen, "backend refused the device: %s", d->error);
		else
			snprintf(err, errlen, "backend %s did not reach InitWait (state %s): %s",
			         d->be_dir, gv_xenbus_state_name(d->be_state), strerror(-rc));
		return rc;
	}
	rc = read_device(d, err, errlen);
	/* the generation before the keys: a change while they are read is
	 * seen as one later (check_config in io.c) */
	if (rc == 0 && gvfe_dev_read_cfg_gen(d, &d->cfg_gen) < 0) {
		snprintf(err, errlen, "backend key %s/%s: malformed", d->be_dir, GV_XS_CFG_GENERATION);
		rc = -EINVAL;
	}
	if (rc < 0)
		return rc;
	nq = pick_num_queues(d, d->opt_num_queues);
	if (d->nq && nq < d->nq) {
		/* after a restore: each queue is some thread's, with its requests */
		snprintf(err, errlen, "the device offers %u queue%s now; %u were in use", nq,
		         nq > 1 ? "s" : "", d->nq);
		return -EPROTO;
	}
	if (!d->nq)
		d->nq = nq;
	if (d->drv->probe)
		rc = d->drv->probe(d, err, errlen);
	if (rc < 0)
		return rc;
	rc = negotiate(d, gvfe_dma_ops_of(d->strategy), err, errlen);
	if (rc < 0)
		return rc;

	rc = gvfe_dma_dev_init(&d->dma, d->p, d->backend_id, d->strategy, d->opt_pool_pages);
	if (rc < 0) {
		snprintf(err, errlen, "cannot set up %s DMA: %s", gvfe_dma_strategy_name(d->strategy),
		         strerror(-rc));
		return rc;
	}
	d->dma_ready = true;
	rc = gv_evtchn_alloc_unbound(d->p, d->backend_id, &d->dev_port);
	for (unsigned q = 0; rc == 0 && q < d->nq; q++)
		rc = gv_evtchn_alloc_unbound(d->p, d->backend_id, &d->q[q].port);
	if (rc < 0) {
		snprintf(err, errlen, "cannot allocate event channels: %s", strerror(-rc));
		return rc;
	}
	/* The liveness page: if we die, the platform clears byte 0 and
	 * notifies the backend through our device channel. */
	live_notify.offset = 0;
	live_notify.port = d->dev_port;
	d->live.refs = calloc(1, sizeof(*d->live.refs));
	if (!d->live.refs) {
		rc = -ENOMEM;
	} else {
		void *addr;

		rc = gv_grant_alloc(d->p, d->backend_id, 1, 0, &live_notify, d->live.refs, &addr);
		if (rc == 0) {
			d->live.cpu = addr;
			d->live.size = GV_PAGE_SIZE;
			d->live.npages = 1;
		} else {
			free(d->live.refs);
			d->live.refs = NULL;
		}
	}
	if (rc < 0) {
		snprintf(err, errlen, "cannot grant the liveness page: %s", strerror(-rc));
		return rc;
	}
	gv_store_release((uint8_t *)d->live.cpu, 1);

	for (unsigned q = 0; q < d->nq; q++) {
		struct gvfe_vq *vq;

		rc = gvfe_vq_create(&d->dma, q, pick_queue_size(d, d->opt_queue_size), &d->q[q].vq);
		if (rc < 0) {
			snprintf(err, errlen, "cannot allocate virtqueue %u: %s", q, strerror(-rc));
			return rc;
		}
		vq = d->q[q].vq;
		vq->port = d->q[q].port;
		if (d->drv_features & (1ULL << VIRTIO_RING_F_EVENT_IDX))
			gvfe_vq_use_event_idx(vq);
	}
	/* Tables for long chains; without the grants for them (not yet
	 * published), the feature is simply not accepted. */
	for (unsigned q = 0; q < d->nq; q++)
		if ((d->drv_features & (1ULL << VIRTIO_RING_F_INDIRECT_DESC)) &&
		    gvfe_vq_use_indirect(d->q[q].vq, GVFE_VQ_INDIRECT_TABLES) < 0)
			d->drv_features &= ~(1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	/* The in-flight record (one per queue) a restarted backend takes the
	 * device over with: our memory, so it outlives any backend; without
	 * it, a backend's death fails the requests at once. */
	for (unsigned q = 0; d->restartable && q < d->nq; q++) {
		if (gvfe_dma_alloc_coherent(&d->dma, GV_PAGE_SIZE, false, &d->q[q].inflight) < 0) {
			gv_warn("cannot grant an in-flight record: a backend restart will fail the "
			        "requests in flight");
			d->restartable = false;
		}
	}
	rc = d->drv->setup ? d->drv->setup(d) : 0;
	if (rc < 0) {
		snprintf(err, errlen, "cannot set up %s: %s", d->drv->name, strerror(-rc));
		return rc;
	}

	/* Step 2, the keys in one transaction; then FE=Initialised. */
	ctx.d = d;
	rc = gv_xs_transaction(d->xs, publish_keys, &ctx);
	if (rc < 0) {
		snprintf(err, errlen, "cannot publish the frontend keys in %s: %s", d->fe_dir,
		         strerror(-rc));
		return rc;
	}
	rc = set_fe_state(d, XenbusStateInitialised);
	if (rc < 0) {
		snprintf(err, errlen, "cannot write %s/state: %s", d->fe_dir, strerror(-rc));
		return rc;
	}
	*published = true;
	d->published = true;
	/* Steps 3-4. */
	rc = wait_backend(d, WAIT_CONNECTED);
	if (rc < 0) {
		if (rc == -ECONNREFUSED)
			snprintf(err, errlen, "backend refused the device: %s",
			         *d->error ? d->error : "(no error text)");
		else
			snprintf(err, errlen, "backend %s did not connect (state %s): %s", d->be_dir,
			         gv_xenbus_state_name(d->be_state), strerror(-rc));
		return rc;
	}
	rc = set_fe_state(d, XenbusStateConnected);
	if (rc < 0) {
		snprintf(err, errlen, "cannot write %s/state: %s", d->fe_dir, strerror(-rc));
		return rc;
	}
	d->connected = true;
	gvfe_dev_check_backend(d);
	return 0;
}

/* The domain was saved and restored (io.c saw this domain's id change): the
 * old domain's grant table, event channels and backend are gone, the
 * toolstack made the device again for the new domain (FE and BE
 * Initialising), and nothing of the old rings will ever complete. As a
 * kernel frontend resumes (blkfront's recovery): the requests in flight on
 * every queue go back to the driver (each to its own queue), the old grants
 * are ended (their entries went with the old table: the end succeeds, and
 * the refs were never granted in the new one, so none is reused while a
 * peer could hold it), the platform binds in the new domain, and the
 * handshake runs again with new grants for every queue's rings and
 * in-flight record, the liveness page and the pool, and new event channels;
 * then every queue's requests are issued again (block requests and entropy
 * reads may be repeated). Each wait is bounded by the handshake timeout; on
 * failure the device breaks and every request fails with -EIO.
 *
 * Called by io.c with d->lock held, and it keeps it throughout: the other
 * threads (submitting, or polling their queue) wait for the device to be
 * whole again; no callback runs here (what fails is put on the queues'
 * finished lists, run after the lock is let go). */
static int reattach(struct gv_device *d, domid_t new_domid)
{
	long long t0 = gv_now_ms();
	domid_t old = d->p->domid;
	bool fe_moved = false, published = false;
	unsigned requeued = 0;
	char err[384];
	void *token;
	int rc;

	d->reattaching = true;
	gv_info("device %u: this domain was saved and restored (domain %u is now domain %u): "
	        "attaching the device again", d->devid, (unsigned)old, (unsigned)new_domid);
	/* The platform in the new domain first: it forgets the old ports
	 * (their numbers may name other channels now), which are never
	 * unbound, notified or waited on again, on any path below. */
	rc = gv_platform_resume(d->p, new_domid);
	d->dev_port = GV_NO_PORT;
	for (unsigned q = 0; q < d->nq; q++) {
		d->q[q].port = GV_NO_PORT;
		if (d->q[q].vq)
			d->q[q].vq->port = GV_NO_PORT;
	}
	if (rc < 0) {
		snprintf(err, sizeof(err), "the platform cannot follow the domain into the new one: %s",
		         strerror(-rc));
		goto fail;
	}
	if (d->dma.user_buffers || !d->drv->requeue) {
		/* the program's pool buffers are pages of the old grants; they
		 * cannot become the new pool without moving under its feet */
		if (d->drv->requeue)
			snprintf(err, sizeof(err), "the program holds %u buffers of the granted pool "
			         "(gv_pool_alloc), which cannot move to new grants", d->dma.user_buffers);
		else
			snprintf(err, sizeof(err), "the driver cannot issue its requests again");
		rc = -EBUSY;
		goto fail;
	}
	for (unsigned q = 0; q < d->nq; q++) {
		while (d->q[q].vq && (token = gvfe_vq_detach_unused(d->q[q].vq))) {
			requeued++;
			d->drv->requeue(d, q, token);
		}
	}
	if (d->watching)
		xs_unwatch(d->xs, d->be_dir, d->watch_token);
	d->watching = false;
	release_grants(d, true, false);         /* the old domain's grants, every queue's */
	d->connected = d->published = d->backend_seen_alive = d->backend_away = false;
	d->be_state = XenbusStateUnknown;
	d->error[0] = 0;
	rc = connect_device(d, err, sizeof(err), &fe_moved, &published);
	if (rc < 0)
		goto fail;
	d->st.domain_restores++;
	if ((uint64_t)(gv_now_ms() - t0) > d->st.restore_ms_max)
		d->st.restore_ms_max = (uint64_t)(gv_now_ms() - t0);
	gv_info("device %u: attached again in domain %u after %lld ms (dma %s, backend domain %u, "
	        "%u queue%s); %u requests issued again", d->devid, (unsigned)new_domid,
	        gv_now_ms() - t0, d->dma.ops->name, (unsigned)d->backend_id, d->nq,
	        d->nq > 1 ? "s" : "", requeued);
	d->last_progress_ms = gv_now_ms();
	d->away_spent_ms = 0;
	d->reattaching = false;
	d->reattach_gen++;
	if (d->drv->pump)
		for (unsigned q = 0; q < d->nq; q++)
			d->drv->pump(d, q);
	/* the threads waiting on cond (their queues' polls) look again */
	pthread_cond_broadcast(&d->cond);
	return 0;

fail:
	d->reattaching = false;
	/* Every request fails with -EIO and the reason; what a new attempt
	 * built is closed with the new backend (it may map it) and released,
	 * the old grants are ended (their entries are gone with the old table). */
	gvfe_dev_fail(d, "the domain was restored (domain %u is now %u) and the device could "
	              "not be attached again: %s", (unsigned)old, (unsigned)new_domid, err);
	teardown(d, published);
	if (fe_moved)
		set_fe_state(d, XenbusStateClosed);
	pthread_cond_broadcast(&d->cond);
	return rc;
}

int gv_attach_queues(const struct gv_attach_opts *o, unsigned num_queues, struct gv_device **out,
                     char *err, size_t errlen)
{
	struct gv_platform_opts popts = { o->platform, o->sim_dir, o->domid };
	enum gvfe_dma_strategy strategy = GVFE_DMA_BOUNCE;
	struct gv_device *d;
	bool fe_moved = false, published = false;
	int rc;

	if (o->dma && gvfe_dma_strategy_parse(o->dma, &strategy)) {
		snprintf(err, errlen, "unknown DMA strategy \"%s\" (bounce, grant, pool, bypass)", o->dma);
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	d->devid = o->devid;
	d->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
	d->io_timeout_ms = o->io_timeout_ms > 0 ? o->io_timeout_ms : DEFAULT_IO_TIMEOUT_MS;
	d->restart_timeout_ms = o->restart_timeout_ms > 0 ? o->restart_timeout_ms
	                        : o->restart_timeout_ms < 0 ? -1 : DEFAULT_RESTART_TIMEOUT_MS;
	d->strategy = strategy;
	d->opt_pool_pages = o->pool_pages;
	d->opt_queue_size = o->queue_size;
	d->opt_num_queues = num_queues;
	d->dev_port = GV_NO_PORT;
	for (unsigned q = 0; q < GVFE_MAX_QUEUES; q++)
		d->q[q].port = GV_NO_PORT;
	d->xs_fd = -1;
	rc = init_lock(d);
	if (rc < 0) {
		snprintf(err, errlen, "cannot set up the device lock: %s", strerror(-rc));
		free(d);
		return rc;
	}
	rc = gv_platform_open(&popts, &d->p, err, errlen);
	if (rc < 0) {
		d->nq = 0;
		release(d);
		return rc;
	}
	d->xs = gv_xs_open(d->p);
	if (!d->xs) {
		rc = errno ? -errno : -EIO;
		snprintf(err, errlen, "cannot open xenstore: %s", strerror(-rc));
		goto release;
	}
	d->xl_disk = o->xl_disk;
	rc = connect_device(d, err, errlen, &fe_moved, &published);
	if (rc < 0)
		goto teardown;
	d->reattach = reattach;
	gv_info("attached %s device %u of domain %u on %s: backend domain %u, dma %s, "
	        "%u queue%s of %u", d->drv->name,
	        d->devid, (unsigned)d->p->domid, d->p->desc, (unsigned)d->backend_id,
	        d->dma.ops->name, d->nq, d->nq > 1 ? "s" : "", d->q[0].vq->num);
	*out = d;
	return 0;

teardown:
	teardown(d, published);
	if (fe_moved)
		set_fe_state(d, XenbusStateClosed);
release:
	release(d);
	return rc;
}

int gv_detach(struct gv_device *d)
{
	return gv_detach_stats(d, NULL);
}

int gv_detach_stats(struct gv_device *d, struct gv_stats *after)
{
	long long deadline = gv_now_ms() + d->timeout_ms;
	int rc;

	if (!d)
		return 0;
	/* Step 5: no new requests; let those in flight finish. */
	d->closing = true;
	while (!d->broken && d->q[0].vq &&
	       (gvfe_dev_in_flight(d) || (d->drv->pending && d->drv->pending(d)))) {
		long long left = deadline - gv_now_ms();

		if (left <= 0) {
			gv_warn("detach: %u requests still in flight after %d ms; failing them",
			        gvfe_dev_in_flight(d), d->timeout_ms);
			break;
		}
		gv_poll(d, (int)left);
	}
	rc = teardown(d, true);
	set_fe_state(d, XenbusStateClosed);
	if (d->p->ctr.grants_active) {
		gv_warn("detach: %llu grants still active after teardown",
		        (unsigned long long)d->p->ctr.grants_active);
		rc = rc ? rc : -EBUSY;
	}
	if (after)
		gv_get_stats(d, after);
	release(d);
	return rc;
}

void gv_get_info(const struct gv_device *d, struct gv_device_info *i)
{
	pthread_mutex_lock((pthread_mutex_t *)&d->lock);
	memset(i, 0, sizeof(*i));
	i->platform = d->p->desc;
	i->devid = d->devid;
	i->domid = d->p->domid;
	i->backend_id = d->backend_id;
	i->virtio_id = d->virtio_id;
	i->device_features = d->dev_features;
	i->driver_features = d->drv_features;
	i->dma = d->dma.ops ? d->dma.ops->name : "none";
	i->persistent_pool = d->dma.ops && d->dma.ops->persistent;
	i->num_queues = d->nq;
	i->queue_size = d->q[0].vq ? d->q[0].vq->num : 0;
	i->max_queue_size = d->max_queue_size;
	i->max_persistent_grants = d->max_persistent;
	if (d->drv && d->drv->info && d->drv_priv)
		d->drv->info(d, i);
	pthread_mutex_unlock((pthread_mutex_t *)&d->lock);
}

void gv_get_stats(const struct gv_device *d, struct gv_stats *s)
{
	pthread_mutex_lock((pthread_mutex_t *)&d->lock);
	*s = d->st;
	s->platform = d->p->ctr;
	/* the queues now, plus those released before (a re-attach, detach) */
	for (unsigned q = 0; q < d->nq; q++) {
		if (!d->q[q].vq)
			continue;
		s->kicks += d->q[q].vq->stats.kicks;
		s->kicks_suppressed += d->q[q].vq->stats.kicks_suppressed;
		s->indirect_chains += d->q[q].vq->stats.indirect;
	}
	s->dma_bytes_copied_in = d->dma_stats_before.bytes_copied_in + d->dma.stats.bytes_copied_in;
	s->dma_bytes_copied_out = d->dma_stats_before.bytes_copied_out +
	                          d->dma.stats.bytes_copied_out;
	s->dma_pool_full = d->dma_stats_before.pool_full + d->dma.stats.pool_full;
	s->dma_pool_fallbacks = d->dma_stats_before.pool_fallbacks + d->dma.stats.pool_fallbacks;
	s->dma_pages_leaked = d->dma_stats_before.pages_leaked + d->dma.stats.pages_leaked;
	pthread_mutex_unlock((pthread_mutex_t *)&d->lock);
}

int gv_get_queue_stats(const struct gv_device *d, unsigned q, struct gv_queue_stats *s)
{
	const struct gvfe_queue *vq;

	memset(s, 0, sizeof(*s));
	if (q >= d->nq)
		return -EINVAL;
	vq = &d->q[q];
	/* under the lock: a re-attach replaces the rings */
	pthread_mutex_lock((pthread_mutex_t *)&d->lock);
	if (!vq->vq) {
		pthread_mutex_unlock((pthread_mutex_t *)&d->lock);
		return -EINVAL;
	}
	s->in_flight = gvfe_vq_in_flight(vq->vq);
	s->free_descriptors = gvfe_vq_num_free(vq->vq);
	s->event_channel = vq->port;
	s->added = vq->vq->stats.added;
	s->kicks = vq->vq->stats.kicks;
	s->interrupts = vq->interrupts;
	pthread_mutex_unlock((pthread_mutex_t *)&d->lock);
	return 0;
}

void gv_get_queue_state(const struct gv_device *d, struct gv_queue_state *q)
{
	const struct gvfe_vq *vq;

	pthread_mutex_lock((pthread_mutex_t *)&d->lock);
	vq = d->q[0].vq;        /* under the lock: a re-attach replaces it */
	q->in_flight = vq ? gvfe_dev_in_flight(d) : 0;
	q->free_descriptors = vq ? gvfe_vq_num_free(vq) : 0;
	pthread_mutex_unlock((pthread_mutex_t *)&d->lock);
}

const char *gv_feature_names(uint64_t f, unsigned virtio_id, char *buf, size_t len)
{
	static const struct { unsigned bit; const char *name; bool blk; } names[] = {
		{ VIRTIO_BLK_F_SIZE_MAX, "BLK_F_SIZE_MAX", true },
		{ VIRTIO_BLK_F_SEG_MAX, "BLK_F_SEG_MAX", true },
		{ VIRTIO_BLK_F_GEOMETRY, "BLK_F_GEOMETRY", true },
		{ VIRTIO_BLK_F_RO, "BLK_F_RO", true },
		{ VIRTIO_BLK_F_BLK_SIZE, "BLK_F_BLK_SIZE", true },
		{ VIRTIO_BLK_F_FLUSH, "BLK_F_FLUSH", true },
		{ VIRTIO_BLK_F_TOPOLOGY, "BLK_F_TOPOLOGY", true },
		{ VIRTIO_BLK_F_CONFIG_WCE, "BLK_F_CONFIG_WCE", true },
		{ VIRTIO_BLK_F_MQ, "BLK_F_MQ", true },
		{ VIRTIO_BLK_F_DISCARD, "BLK_F_DISCARD", true },
		{ VIRTIO_BLK_F_WRITE_ZEROES, "BLK_F_WRITE_ZEROES", true },
		{ VIRTIO_RING_F_INDIRECT_DESC, "RING_F_INDIRECT_DESC", false },
		{ VIRTIO_RING_F_EVENT_IDX, "RING_F_EVENT_IDX", false },
		{ VIRTIO_F_VERSION_1, "F_VERSION_1", false },
		{ VIRTIO_F_ACCESS_PLATFORM, "F_ACCESS_PLATFORM", false },
		{ VIRTIO_F_RING_PACKED, "F_RING_PACKED", false },
		{ VIRTIO_F_IN_ORDER, "F_IN_ORDER", false },
	};
	size_t used = 0;

	buf[0] = 0;
	for (unsigned bit = 0; bit < 64; bit++) {
		const char *name = NULL;
		char tmp[16];
		int k;

		if (!(f & (1ULL << bit)))
			continue;
		for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (names[i].bit == bit && (!names[i].blk || virtio_id == VIRTIO_ID_BLOCK))
				name = names[i].name;
		if (!name) {
			snprintf(tmp, sizeof(tmp), "bit%u", bit);
			name = tmp;
		}
		k = snprintf(buf + used, len - used, "%s%s", used ? " " : "", name);
		if (k < 0 || (size_t)k >= len - used)
			break;
		used += (size_t)k;
	}
	return buf;
}

bool gv_device_broken(const struct gv_device *d)
{
	return d->broken;
}

const char *gv_device_error(const struct gv_device *d)
{
	return d->error;
}

bool gv_backend_away(const struct gv_device *d)
{
	return d->backend_away && !d->broken;
}

int gv_device_fd(const struct gv_device *d)
{
	int fd;

	/* under the lock: a re-attach after a restore may open a new handle */
	pthread_mutex_lock((pthread_mutex_t *)&d->lock);
	fd = gv_evtchn_fd(d->p);
	pthread_mutex_unlock((pthread_mutex_t *)&d->lock);
	return fd;
}
