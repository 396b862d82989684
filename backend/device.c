/*
 * backend/device.c: the set-up half of gv-backend, one struct gvbe_dev per
 * device of a guest: the xenbus handshake of docs/transport.md (publish,
 * validate the frontend's keys, map the liveness page and the vring areas,
 * bind the event channels), and teardown on close, peer death, online=0,
 * node removal or a broken ring. The per-request hot path is vring.c.
 *
 * Every key the frontend wrote is read through xs_util (copied, bounded,
 * parsed completely) and checked before anything is mapped. Teardown always
 * unmaps everything first (map cache included), then writes state, so a
 * frontend that sees Closed/Closing can end every grant.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xenstore.h>
#include "aio.h"
#include "clock.h"
#include "device.h"
#include "mapcache.h"
#include "nbd.h"
#include "qthread.h"
#ifdef GVBE_BENCH
#include "bench.h"
#endif
#include "log.h"
#include "xs_keys.h"
#include "xs_util.h"

/* virtio device ids (virtio 1.x 5): VIRTIO_ID_BLOCK 2, VIRTIO_ID_RNG 4 from <linux/virtio_ids.h> */
#define VIRTIO_ID_BLK VIRTIO_ID_BLOCK

static const char bypass_refusal[] =
	"driver did not accept VIRTIO_F_ACCESS_PLATFORM: under Xen a backend can reach only "
	"guest memory that the guest granted to it; use a DMA strategy that grants (bounce, "
	"grant, pool)";

/* The device kinds (device.h): where each lives in xenstore. */
static const struct {
	const char *fe_sub;             /* /local/domain/<fe>/device/<fe_sub>/<devid> */
	const char *what;               /* for labels */
} kinds[GVBE_KINDS] = {
	[GVBE_KIND_VIRTIO]  = { "virtio", "device" },
	[GVBE_KIND_XL_DISK] = { "virtio_disk", "xl disk" },
};

static const char *kind_root(const struct gvbe_backend *be, enum gvbe_dev_kind kind)
{
	return kind == GVBE_KIND_XL_DISK ? be->disk_root : be->root;
}

int gvbe_dev_parse_path(const struct gvbe_backend *be, const char *path,
                        enum gvbe_dev_kind *kind, domid_t *fe, unsigned *devid)
{
	for (unsigned k = 0; k < GVBE_KINDS; k++) {
		int rc = gv_xs_parse_device_path(path, kind_root(be, (enum gvbe_dev_kind)k), fe, devid);

		if (rc >= 0) {
			*kind = (enum gvbe_dev_kind)k;
			return rc;
		}
	}
	return -EINVAL;
}

static struct gvbe_dev *dev_find(struct gvbe_backend *be, enum gvbe_dev_kind kind, domid_t fe,
                                 unsigned devid)
{
	for (struct gvbe_dev *d = be->devs; d; d = d->next)
		if (d->kind == kind && d->fe == fe && d->devid == devid)
			return d;
	return NULL;
}

static void be_write(struct gvbe_dev *d, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void be_write(struct gvbe_dev *d, const char *key, const char *fmt, ...)
{
	char val[512];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	rc = gv_xs_write_str(d->be->xs, XBT_NULL, d->be_dir, key, val);
	if (rc < 0)
		gv_warn("%s: cannot write %s/%s: %s", d->label, d->be_dir, key, strerror(-rc));
}

static void set_state(struct gvbe_dev *d, enum xenbus_state s)
{
	gv_debug("%s: backend state %s", d->label, gv_xenbus_state_name(s));
	be_write(d, GV_XS_STATE, "%d", (int)s);
}

static enum xenbus_state fe_state(struct gvbe_dev *d)
{
	enum xenbus_state s;

	if (gv_xs_read_state(d->be->xs, XBT_NULL, d->fe_dir, GV_XS_FE_STATE, &s) < 0)
		return XenbusStateUnknown;
	return s;
}

/* ---- teardown ----------------------------------------------------------------- */

/* The handle through which queue q is mapped and bound: its thread's, or
 * the loop's. */
static struct gv_platform *queue_platform(struct gvbe_dev *d, unsigned q)
{
	return d->qt[q] ? gvbe_qthread_platform(d->qt[q]) : d->be->p;
}

/* Stops every queue thread of d: the loop owns all its queues after. */
static void dev_stop_threads(struct gvbe_dev *d)
{
	for (unsigned q = 0; q < GVBE_MAX_QUEUES; q++)
		gvbe_qthread_stop(d->qt[q]);
}

/* Cancels and waits for every queue's I/O in flight, 5 s in all; returns
 * how many operations are left. */
static unsigned dev_quiesce(struct gvbe_dev *d)
{
	int64_t end = gv_now_ms() + 5000;
	unsigned left = 0;

	for (unsigned q = 0; q < GVBE_MAX_QUEUES; q++) {
		int64_t ms = end - gv_now_ms();

		if (d->bq[q].disk)
			left += gvbe_blk_quiesce(&d->bq[q], ms > 0 ? (int)ms : 0);
	}
	return left;
}

/* Unmaps every grant of the device and unbinds its ports. Idempotent. */
static void dev_unmap_all(struct gvbe_dev *d)
{
	struct gv_platform *p = d->be->p;
	unsigned left;

	dev_stop_threads(d);
	left = dev_quiesce(d);
	if (left) {
		/* the backing store holds I/O into guest pages and will not let
		 * go: those pages must stay mapped, so this device's mappings are
		 * abandoned (leaked, never reused) rather than unmapped under it */
		gv_err("%s: %u I/O operations still in flight after 5 s: abandoning the "
		       "device's mappings", d->label, left);
		for (unsigned q = 0; q < GVBE_MAX_QUEUES; q++) {
			d->vq_live[q] = false;
			d->cache[q] = NULL;
			for (unsigned a = 0; a < 3; a++)
				d->area[q][a].addr = NULL;
			d->inflight[q] = NULL;
			d->bq[q].aio = NULL;
			/* a queue thread's handle holds such mappings: it stays
			 * open (stopped) until the process exits */
			d->qt[q] = NULL;
		}
	}
	for (unsigned q = 0; q < GVBE_MAX_QUEUES; q++) {
		struct gv_platform *qp = queue_platform(d, q);

		if (d->vq_live[q]) {
			const struct gvbe_vq *vq = &d->vq[q];
			double n = vq->requests ? (double)vq->requests : 1;

			/* what the queue cost: notifications per request (the figures
			 * of make bench) and its private memory at the deepest */
			gv_info("%s: queue %u: %llu requests (%llu by grant copy, %llu copy errors), "
			        "%.3f kicks and %.3f interrupts per request%s, %zu kB, %llu answered with "
			        "an error", d->label, q,
			        (unsigned long long)vq->requests, (unsigned long long)vq->copied_reqs,
			        (unsigned long long)vq->copy_errors, vq->kicks / n, vq->interrupts / n,
			        vq->event_idx ? " (event idx)" : "", gvbe_vq_memory(vq) / 1024,
			        (unsigned long long)vq->st.errors);
			if (d->cache[q]) {
				struct gvbe_mapcache_stats ms;

				gvbe_mapcache_get_stats(d->cache[q], &ms);
				gv_info("%s: queue %u: map cache %llu hits, %llu misses, %llu evictions, "
				        "%u of %u pages", d->label, q, (unsigned long long)ms.hits,
				        (unsigned long long)ms.misses, (unsigned long long)ms.evictions,
				        ms.pages, ms.capacity);
			}
			if (d->vq[q].port != GV_NO_PORT)
				gv_evtchn_unbind(qp, d->vq[q].port);
			gvbe_qstats_add(&d->retired, &vq->st);
			d->retired_requests += vq->requests;
			gvbe_vq_fini(&d->vq[q]);
			d->vq_live[q] = false;
		}
		for (unsigned a = 0; a < 3; a++) {
			if (d->area[q][a].addr)
				gv_unmap(qp, d->area[q][a].addr, d->area[q][a].count);
			d->area[q][a].addr = NULL;
		}
		if (d->inflight[q])
			gv_unmap(qp, (void *)d->inflight[q], 1);
		d->inflight[q] = NULL;
		gvbe_mapcache_destroy(d->cache[q]);
		d->cache[q] = NULL;
		/* everything of the queue is unmapped: its handle goes */
		gvbe_qthread_destroy(d->qt[q], &d->be->qt_retired);
		d->qt[q] = NULL;
	}
#ifdef GVBE_BENCH
	gvbe_direct_destroy(d->direct);
	d->direct = NULL;
#endif
	if (d->liveness) {
		/* the platform clears byte 1 and notifies the frontend as we unmap */
		gv_unmap(p, (void *)d->liveness, 1);
		d->liveness = NULL;
	}
	if (d->dev_port != GV_NO_PORT) {
		gv_evtchn_unbind(p, d->dev_port);
		d->dev_port = GV_NO_PORT;
	}
}

static void dev_close(struct gvbe_dev *d, const char *why)
{
	if (d->phase == GVBE_DEV_CONNECTED)
		gv_info("%s: disconnecting (%s)", d->label, why);
	dev_unmap_all(d);
	set_state(d, XenbusStateClosed);
	d->phase = GVBE_DEV_CLOSED;
}

/* The sticky broken state: one log line, unmap first, then tell the frontend. */
static void dev_break(struct gvbe_dev *d, const char *why)
{
	gv_err("%s: device broken: %s", d->label, why);
	dev_unmap_all(d);
	be_write(d, GV_XS_ERROR, "%s", why);
	be_write(d, GV_XS_DEVICE_STATUS, "%u", (unsigned)VIRTIO_CONFIG_S_NEEDS_RESET);
	set_state(d, XenbusStateClosing);
	d->phase = GVBE_DEV_BROKEN;
}

/* Refusal before publishing: the device cannot be served at all here. */
static void dev_refuse(struct gvbe_dev *d, const char *why)
{
	gv_err("%s: %s", d->label, why);
	be_write(d, GV_XS_ERROR, "%s", why);
	set_state(d, XenbusStateClosed);
	d->phase = GVBE_DEV_REFUSED;
}

static void dev_free(struct gvbe_backend *be, struct gvbe_dev *d)
{
	char path[128];

	dev_unmap_all(d);
	gvbe_blk_close(&d->blk);
	if (d->fe_watched && gv_xs_join(path, sizeof(path), d->fe_dir, GV_XS_FE_STATE) == 0)
		xs_unwatch(be->xs, path, d->be_dir);
	if (d->watch_pending)
		be->watch_pending--;
	for (struct gvbe_dev **pp = &be->devs; *pp; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	free(d);
}

/* ---- step 1: publish ------------------------------------------------------------ */

static void dev_offer(struct gvbe_dev *d, bool takeover);

/* Reads a key the toolstack wrote for an xl disk into v; a clear error if it
 * is missing or is not the value gv-backend serves (want NULL: any). */
static int xl_key(struct gvbe_dev *d, const char *key, const char *want, char *v, size_t vlen,
                  char *err, size_t errlen)
{
	int rc = gv_xs_read_str(d->be->xs, XBT_NULL, d->be_dir, key, v, vlen);

	if (rc < 0) {
		snprintf(err, errlen, "disk key %s: %s", key,
		         rc == -ENOENT ? "missing" : strerror(-rc));
		return rc;
	}
	if (want && strcmp(v, want)) {
		snprintf(err, errlen, "disk key %s is '%s': gv-backend serves only %s=%s disks "
		         "(disk = [\"...,specification=virtio,backendtype=standalone,"
		         "grant_usage=1,target=PATH\"])", key, v, key, want);
		return -EINVAL;
	}
	return 0;
}

/* A disk from the guest's xl config (GVBE_KIND_XL_DISK, docs/admin.md "Disks
 * configured in the guest's xl config"): checks what libxl wrote and opens
 * params, which must resolve into a directory the configuration allows
 * (xl-disk-dir). The toolstack's keys are trusted as far as the toolstack
 * (only dom0 can write backend/), but params is still a path the daemon
 * (root) opens: the allow-list keeps the backend's configuration the one
 * place that says which files it may serve. */
static int xl_disk_open(struct gvbe_dev *d, char *err, size_t errlen)
{
	const struct gvbe_disk_cfg *k;
	char v[64], params[512], *real;
	struct gvbe_blk_opts bo = { false, false };
	bool any = false;
	uint64_t usage;
	int rc;

	if (xl_key(d, GV_XS_SPECIFICATION, "virtio", v, sizeof(v), err, errlen) < 0 ||
	    xl_key(d, GV_XS_TYPE, "standalone", v, sizeof(v), err, errlen) < 0)
		return -EINVAL;
	rc = gv_xs_read_u64(d->be->xs, XBT_NULL, d->be_dir, GV_XS_GRANT_USAGE, 1, &usage);
	if (rc < 0 || usage != 1) {
		snprintf(err, errlen, "grant_usage is not 1 (libxl's default for a backend in "
		         "dom0 is 0: the device model would map guest memory by address); "
		         "gv-backend maps only pages the guest granted: add grant_usage=1 to "
		         "the disk spec in the guest's xl config");
		return -EINVAL;
	}
	if (xl_key(d, GV_XS_MODE, NULL, v, sizeof(v), err, errlen) < 0)
		return -EINVAL;
	if (strcmp(v, "r") && strcmp(v, "w")) {
		snprintf(err, errlen, "disk key mode is '%s': expected r or w", v);
		return -EINVAL;
	}
	bo.ro = v[0] == 'r';
	if (xl_key(d, GV_XS_PARAMS, NULL, params, sizeof(params), err, errlen) < 0)
		return -EINVAL;
	for (k = d->be->disks; k; k = k->next)
		any |= k->xl_dir;
	if (!any) {
		snprintf(err, errlen, "disk target %s: this backend serves no disk from a guest's "
		         "xl config (add 'xl-disk-dir DIR' to its configuration, "
		         "/etc/grant-virtio/backend.conf, to allow images under DIR)", params);
		return -EACCES;
	}
	real = params[0] == '/' ? realpath(params, NULL) : NULL;
	if (!real) {
		snprintf(err, errlen, "disk target %s: %s", params,
		         params[0] != '/' ? "not an absolute path" : strerror(errno));
		return -EINVAL;
	}
	for (k = d->be->disks; k; k = k->next) {
		/* both sides resolved: no .. or symlink leads out of the directory */
		char *dir = k->xl_dir ? realpath(k->path, NULL) : NULL;
		size_t n = dir ? strlen(dir) : 0;
		bool in = dir && !strncmp(real, dir, n) && (real[n] == '/' || (n == 1 && real[1]));

		free(dir);
		if (in)
			break;
	}
	if (!k) {
		/* the guest can read this error: it names its own target, not the
		 * directories dom0 allows (the log and --check-config have those) */
		snprintf(err, errlen, "disk target %s (%s) is not under a directory this backend "
		         "allows for disks from a guest's xl config (xl-disk-dir in its "
		         "configuration)", params, real);
		free(real);
		return -EACCES;
	}
	snprintf(d->image, sizeof(d->image), "%s", real);
	free(real);
	if (d->blk.fd < 0 &&
	    gvbe_blk_open(&d->blk, d->image, &bo, d->devid, err, errlen) < 0)
		return -EINVAL;
	return 0;
}

/* takeover: a backend before us connected the device (BE=Connected found
 * at start-up): the same checks and keys, but the state stays Connected */
static void dev_publish(struct gvbe_dev *d, bool takeover)
{
	struct gvbe_backend *be = d->be;
	char type[64], err[700];
	uint64_t usage;
	int rc;

	if (d->kind == GVBE_KIND_XL_DISK) {
		if (xl_disk_open(d, err, sizeof(err)) < 0)
			return dev_refuse(d, err);
		d->virtio_id = VIRTIO_ID_BLK;
		d->allow_bypass = be->allow_bypass;
		d->nq = GVBE_DISK_DEFAULT_QUEUES;
		return dev_offer(d, takeover);
	}
	rc = gv_xs_read_str(be->xs, XBT_NULL, d->be_dir, GV_XS_TYPE, type, sizeof(type));
	if (rc < 0) {
		snprintf(err, sizeof(err), "cannot read type: %s", strerror(-rc));
		return dev_refuse(d, err);
	}
	if (gv_virtio_type_parse(type, &d->virtio_id) < 0 ||
	    (d->virtio_id != VIRTIO_ID_BLK && d->virtio_id != VIRTIO_ID_RNG)) {
		snprintf(err, sizeof(err), "device type %s is not supported by gv-backend "
		         "(virtio,device2 block and virtio,device4 entropy are)", type);
		return dev_refuse(d, err);
	}
	rc = gv_xs_read_u64(be->xs, XBT_NULL, d->be_dir, GV_XS_GRANT_USAGE, 1, &usage);
	if (rc < 0 || usage != 1)
		return dev_refuse(d, "grant_usage is not 1: this backend serves only guests that "
		                  "use grants for DMA (grant_usage=1 in the xl config)");

	d->allow_bypass = be->allow_bypass;
	d->nq = 1;
	if (d->virtio_id == VIRTIO_ID_BLK) {
		const struct gvbe_disk_cfg *cfg = gvbe_disk_find(be->disks, d->name, d->fe, d->devid);

		if (!cfg) {
			snprintf(err, sizeof(err), "no disk configured for guest %s device %u "
			         "(use --disk %s:%u=PATH or a disk line in --config)",
			         d->name, d->devid, d->name, d->devid);
			return dev_refuse(d, err);
		}
		struct gvbe_blk_opts bo = { cfg->ro, cfg->buffered };

		if (d->blk.nbd && !d->blk.nbd_connecting && gvbe_nbd_dead(d->blk.nbd)) {
			/* the server went away while it served: connect afresh */
			gv_info("%s: NBD connection was lost; connecting again", d->label);
			gvbe_blk_close(&d->blk);
		}
		snprintf(d->image, sizeof(d->image), "%s", cfg->path);
		if (d->blk.fd < 0 && !d->blk.nbd) {
			/* an NBD server is connected to by the disk's own thread:
			 * the loop serves the other devices meanwhile */
			rc = gvbe_blk_open_nowait(&d->blk, cfg->path, &bo, d->devid, be->open_efd,
			                          err, sizeof(err));
			if (rc < 0 && rc != -EINPROGRESS)
				return dev_refuse(d, err);
			if (rc == -EINPROGRESS)
				gv_info("%s: connecting to %s", d->label, cfg->path);
		}
		if (d->blk.nbd_connecting) {
			d->phase = GVBE_DEV_OPENING;
			return;
		}
		d->nq = cfg->queues > 1 ? cfg->queues : 1;
		d->allow_bypass |= cfg->allow_bypass;
	}
	dev_offer(d, takeover);
}

/* Offers the device: features, queues, device config; BE=InitWait (or, on a
 * takeover, the keys only: the state stays Connected). */
static void dev_offer(struct gvbe_dev *d, bool takeover)
{
	d->features = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_ACCESS_PLATFORM) |
	              (1ULL << VIRTIO_RING_F_INDIRECT_DESC) | (1ULL << VIRTIO_RING_F_EVENT_IDX);
	if (d->virtio_id == VIRTIO_ID_BLK) {
		if (d->nq > 1)
			d->features |= 1ULL << VIRTIO_BLK_F_MQ;
		d->features |= (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_SIZE_MAX) |
		               (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_FLUSH);
		if (d->blk.ro)
			d->features |= 1ULL << VIRTIO_BLK_F_RO;
		if (d->blk.discard_ok) {
			d->features |= 1ULL << VIRTIO_BLK_F_DISCARD;
			be_write(d, GV_XS_CFG_MAX_DISCARD_SECTORS, "%u", GVBE_BLK_RANGE_SECTORS);
			be_write(d, GV_XS_CFG_MAX_DISCARD_SEG, "%u", GVBE_BLK_RANGE_SEG_MAX);
			be_write(d, GV_XS_CFG_DISCARD_ALIGNMENT, "%u", GVBE_BLK_DISCARD_ALIGN);
		}
		if (d->blk.zeroes_ok) {
			d->features |= 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
			be_write(d, GV_XS_CFG_MAX_WZ_SECTORS, "%u", GVBE_BLK_RANGE_SECTORS);
			be_write(d, GV_XS_CFG_MAX_WZ_SEG, "%u", GVBE_BLK_RANGE_SEG_MAX);
			be_write(d, GV_XS_CFG_WZ_MAY_UNMAP, "1");
		}
		if (!takeover && !d->blk.nbd) {
			/* the image stays open between connections: one that grew
			 * while no frontend used it is published at its new size */
			uint64_t now;

			if (gvbe_blk_current_size(&d->blk, &now) == 0 && now > d->blk.capacity) {
				gv_info("%s: %s grew from %llu to %llu sectors while not connected",
				        d->label, d->image, (unsigned long long)d->blk.capacity,
				        (unsigned long long)now);
				d->blk.capacity = now;
			}
		}
		{
			/* the generation goes on from what an earlier backend (a
			 * restart, a takeover) published, and moves if the size it
			 * published differs: a connected frontend then sees it */
			uint64_t g, cap;

			if (gv_xs_read_u64(d->be->xs, XBT_NULL, d->be_dir, GV_XS_CFG_GENERATION,
			                   UINT32_MAX - 1, &g) == 0 && g > d->cfg_gen)
				d->cfg_gen = (uint32_t)g;
			if (gv_xs_read_u64(d->be->xs, XBT_NULL, d->be_dir, GV_XS_CFG_CAPACITY,
			                   UINT64_MAX, &cap) == 0 && cap != d->blk.capacity)
				d->cfg_gen++;
		}
		be_write(d, GV_XS_CFG_CAPACITY, "%llu", (unsigned long long)d->blk.capacity);
		be_write(d, GV_XS_CFG_BLK_SIZE, "%u", 512u);
		be_write(d, GV_XS_CFG_SEG_MAX, "%u", GVBE_BLK_SEG_MAX);
		be_write(d, GV_XS_CFG_SIZE_MAX, "%u", GVBE_BLK_SIZE_MAX);
		/* after the config keys: a frontend that reads it reads them next */
		be_write(d, GV_XS_CFG_GENERATION, "%u", d->cfg_gen);
		gv_info("%s: disk %s (%s, %s, %u queue%s%s), %llu sectors", d->label, d->image,
		        d->blk.ro ? "read-only" : "read-write",
		        d->blk.nbd ? "NBD" : d->blk.fd_direct >= 0 ? "O_DIRECT when aligned"
		        : d->blk.map ? "in memory, mapped" : "buffered",
		        d->nq, d->nq > 1 ? "s" : "",
		        d->allow_bypass ? ", allow-bypass" : "",
		        (unsigned long long)d->blk.capacity);
	}
	be_write(d, GV_XS_FEATURES, "0x%llx", (unsigned long long)d->features);
	be_write(d, GV_XS_NUM_QUEUES, "%u", d->nq);
	be_write(d, GV_XS_MAX_QUEUE_SIZE, "%u", GVBE_MAX_QUEUE_SIZE);
	be_write(d, GV_XS_MAX_PERSISTENT, "%u", GVBE_MAX_PERSISTENT);
	be_write(d, GV_XS_FEATURE_INFLIGHT, "1");
	if (takeover)
		return;
	be_write(d, GV_XS_DEVICE_STATUS, "0");
	set_state(d, XenbusStateInitWait);
	d->phase = GVBE_DEV_INITWAIT;
}

/* ---- step 3: connect -------------------------------------------------------------- */

/* Reads a frontend key, with a human explanation of a failure in err. */
static int fe_u64(struct gvbe_dev *d, const char *key, uint64_t max, uint64_t *out,
                  char *err, size_t errlen)
{
	int rc = gv_xs_read_u64(d->be->xs, XBT_NULL, d->fe_dir, key, max, out);

	if (rc < 0)
		snprintf(err, errlen, "frontend key %s: %s", key,
		         rc == -ENOENT ? "missing" : rc == -ERANGE ? "out of range" : "malformed");
	return rc;
}

static int map_area(struct gvbe_dev *d, unsigned q, unsigned a, const char *fmt, size_t bytes,
                    bool write, char *err, size_t errlen)
{
	grant_ref_t refs[16];
	unsigned want = gv_pages_for(bytes), n;
	char key[48];
	void *addr;
	int rc;

	snprintf(key, sizeof(key), fmt, q);
	rc = gv_xs_read_refs(d->be->xs, XBT_NULL, d->fe_dir, key, refs, 16, &n);
	if (rc < 0 || n != want) {
		snprintf(err, errlen, "frontend key %s: %s (expected %u grant refs)", key,
		         rc == -ENOENT ? "missing" : "malformed or wrong count", want);
		return rc < 0 ? rc : -EINVAL;
	}
	rc = gv_map(queue_platform(d, q), d->fe, n, refs, write ? GV_MAP_WRITE : 0, NULL, &addr);
	if (rc < 0) {
		snprintf(err, errlen, "the vring area %s cannot be mapped%s: %s", key,
		         write ? " writable" : "", strerror(-rc));
		return rc;
	}
	d->area[q][a].addr = addr;
	d->area[q][a].count = n;
	d->area[q][a].ref0 = refs[0];
	return 0;
}

/* Binds the frontend's unbound port. At a takeover the hypervisor may not
 * yet have released the end the dead backend held (the port is unbound for
 * us again only then, as Xen's evtchn_close leaves it): a bounded wait. */
#define TAKEOVER_BIND_WAIT_MS 2000
static int bind_port(struct gvbe_dev *d, struct gv_platform *p, evtchn_port_t port,
                     bool takeover, evtchn_port_t *local)
{
	long long deadline = gv_now_ms() + TAKEOVER_BIND_WAIT_MS;
	int rc;

	for (;;) {
		rc = gv_evtchn_bind(p, d->fe, port, local);
		if (rc != -EINVAL || !takeover || gv_now_ms() >= deadline)
			return rc;
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
}

/* 0: connected. -EPROTO: err says why the device must break. -ESRCH: the
 * frontend is already gone. -ENOTSUP (takeover only): the frontend keeps no
 * in-flight record, nothing was mapped or bound. */
static int dev_connect(struct gvbe_dev *d, bool takeover, char *err, size_t errlen)
{
	struct gv_platform *p = d->be->p;
	struct gv_notify live;
	uint64_t v, port;
	grant_ref_t lref, iref[GVBE_MAX_QUEUES];
	unsigned have_inflight = 0;
	char aerr[200];
	void *addr;
	int rc;

	if (fe_u64(d, GV_XS_DRIVER_FEATURES, UINT64_MAX, &d->driver_features, err, errlen) < 0)
		return -EPROTO;
	if (d->driver_features & ~d->features) {
		snprintf(err, errlen, "driver accepted features 0x%llx that were not offered "
		         "(offered 0x%llx)", (unsigned long long)d->driver_features,
		         (unsigned long long)d->features);
		return -EPROTO;
	}
	if (!(d->driver_features & (1ULL << VIRTIO_F_VERSION_1))) {
		snprintf(err, errlen, "driver did not accept VIRTIO_F_VERSION_1 (legacy drivers are "
		         "not supported)");
		return -EPROTO;
	}
	if (!(d->driver_features & (1ULL << VIRTIO_F_ACCESS_PLATFORM))) {
		if (!d->allow_bypass) {
			snprintf(err, errlen, "%s", bypass_refusal);
			return -EPROTO;
		}
		gv_warn("%s: driver did not accept VIRTIO_F_ACCESS_PLATFORM; going on "
		        "(allow-bypass): its first descriptor will break the device", d->label);
	}
	rc = gv_xs_read_u64(d->be->xs, XBT_NULL, d->fe_dir, GV_XS_PERSISTENT_POOL, 1, &v);
	if (rc < 0 && rc != -ENOENT) {
		snprintf(err, errlen, "frontend key %s: malformed", GV_XS_PERSISTENT_POOL);
		return -EPROTO;
	}
	d->persistent = rc == 0 && v == 1;
	if (fe_u64(d, GV_XS_FE_NUM_QUEUES, d->nq, &v, err, errlen) < 0)
		return -EPROTO;
	if (!v) {
		snprintf(err, errlen, "frontend key %s: 0 queues", GV_XS_FE_NUM_QUEUES);
		return -EPROTO;
	}
	d->fe_nq = (unsigned)v;
	for (unsigned q = 0; q < d->fe_nq; q++) {
		char key[48];

		snprintf(key, sizeof(key), GV_XS_QUEUE_INFLIGHT_FMT, q);
		rc = gv_xs_read_u64(d->be->xs, XBT_NULL, d->fe_dir, key, UINT32_MAX, &v);
		if (rc < 0 && rc != -ENOENT) {
			snprintf(err, errlen, "frontend key %s: malformed", key);
			return -EPROTO;
		}
		iref[q] = (grant_ref_t)v;
		have_inflight += rc == 0;
	}
	if (have_inflight && have_inflight != d->fe_nq) {
		snprintf(err, errlen, "frontend granted in-flight records for %u of its %u queues",
		         have_inflight, d->fe_nq);
		return -EPROTO;
	}
	if (takeover && !have_inflight)
		return -ENOTSUP;
	if (fe_u64(d, GV_XS_EVENT_CHANNEL, UINT32_MAX - 1, &port, err, errlen) < 0 ||
	    fe_u64(d, GV_XS_LIVENESS_REF, UINT32_MAX, &v, err, errlen) < 0)
		return -EPROTO;
	lref = (grant_ref_t)v;

	rc = bind_port(d, p, (evtchn_port_t)port, takeover, &d->dev_port);
	if (rc < 0) {
		d->dev_port = GV_NO_PORT;
		snprintf(err, errlen, "cannot bind the device event channel %llu: %s",
		         (unsigned long long)port, strerror(-rc));
		return -EPROTO;
	}
	live.offset = 1;
	live.port = d->dev_port;
	rc = gv_map(p, d->fe, 1, &lref, GV_MAP_WRITE, &live, &addr);
	if (rc < 0) {
		snprintf(err, errlen, "the liveness page (ref %u) cannot be mapped writable: %s",
		         lref, strerror(-rc));
		return -EPROTO;
	}
	d->liveness = addr;
	if (d->liveness[0] != 1)
		return -ESRCH;      /* the frontend died between writing its keys and now */
	d->liveness[1] = 1;

	if (d->be->queue_threads && d->virtio_id == VIRTIO_ID_BLK && !d->blk.nbd
#ifdef GVBE_BENCH
	    && !d->be->bench_direct
#endif
	    ) {
		/* each queue its own thread and handle, made before anything of
		 * the queue is mapped through it (qthread.h) */
		for (unsigned q = 0; q < d->fe_nq; q++) {
			rc = gvbe_qthread_create(&d->be->popts, p->domid, d->be->qt_efd, &d->qt[q],
			                         aerr, sizeof(aerr));
			if (rc < 0) {
				snprintf(err, errlen, "queue %u: %s", q, aerr);
				return -EPROTO;
			}
		}
	}
#ifdef GVBE_BENCH
	if (d->persistent && d->be->bench_direct) {
		/* make bench's upper bound: the pool mapped once (direct.c) */
		rc = gvbe_direct_create(p, d->fe, &d->direct);
		if (rc < 0) {
			snprintf(err, errlen, "out of memory");
			return -EPROTO;
		}
	} else
#endif
	if (d->persistent) {
		/* one cache per queue (each queue is served on its own), each
		 * of max-persistent-grants pages: the frontend's persistent
		 * pool is one per device and any queue may use any page of it
		 * (its bounce slots are shared), so a cache of a share of the
		 * pool thrashed: 2 queues through bounce did 0.08x of one
		 * queue (docs/benchmarks.md, "Multi-queue") */
		for (unsigned q = 0; q < d->fe_nq; q++) {
			rc = gvbe_mapcache_create(queue_platform(d, q), d->fe, GVBE_MAX_PERSISTENT,
			                          &d->cache[q]);
			if (rc < 0) {
				snprintf(err, errlen, "out of memory");
				return -EPROTO;
			}
		}
	}
	for (unsigned q = 0; q < d->fe_nq; q++) {
		char key[48];
		unsigned num;
		struct gvbe_vq *vq = &d->vq[q];
		struct gv_platform *qp = queue_platform(d, q);

		snprintf(key, sizeof(key), GV_XS_QUEUE_SIZE_FMT, q);
		if (fe_u64(d, key, GVBE_MAX_QUEUE_SIZE, &v, err, errlen) < 0)
			return -EPROTO;
		num = (unsigned)v;
		if (!num || (num & (num - 1))) {
			snprintf(err, errlen, "frontend key %s: %u is not a power of two", key, num);
			return -EPROTO;
		}
		if (map_area(d, q, 0, GV_XS_QUEUE_DESC_FMT, gv_vring_desc_size(num), false,
		             err, errlen) < 0 ||
		    map_area(d, q, 1, GV_XS_QUEUE_AVAIL_FMT, gv_vring_avail_size(num), false,
		             err, errlen) < 0 ||
		    map_area(d, q, 2, GV_XS_QUEUE_USED_FMT, gv_vring_used_size(num), true,
		             err, errlen) < 0)
			return -EPROTO;
		snprintf(key, sizeof(key), GV_XS_QUEUE_EVTCHN_FMT, q);
		if (fe_u64(d, key, UINT32_MAX - 1, &port, err, errlen) < 0)
			return -EPROTO;
		rc = gvbe_vq_init(vq, qp, d->fe, q, num, d->area[q][0].addr, d->area[q][1].addr,
		                d->area[q][2].addr,
		                  d->driver_features & (1ULL << VIRTIO_RING_F_INDIRECT_DESC),
		                  d->cache[q]);
		if (rc < 0) {
			snprintf(err, errlen, "queue %u: %s", q, strerror(-rc));
			return -EPROTO;
		}
#ifdef GVBE_BENCH
		vq->direct = d->direct;
		vq->map_batch = d->be->map_batch;
#endif
		vq->event_idx = d->driver_features & (1ULL << VIRTIO_RING_F_EVENT_IDX);
		vq->copy_max = d->persistent ? 0 : d->be->grant_copy_max;
		if (vq->copy_max) {
			/* one byte of the descriptor area (granted to us for the
			 * queue's life): a platform that cannot grant-copy (an old
			 * gntdev) maps every request instead */
			uint8_t byte;
			struct gv_copy_seg seg = { .ref = d->area[q][0].ref0, .len = 1, .local = &byte };

			rc = gv_grant_copy(qp, d->fe, 1, &seg);
			if (rc < 0) {
				gv_warn("%s: queue %u: grant copy refused (%s): every request is "
				        "mapped", d->label, q, strerror(-rc));
				vq->copy_max = 0;
			}
		}
		d->vq_live[q] = true;
		if (have_inflight) {
			if (num > GV_INFLIGHT_MAX_NUM) {
				snprintf(err, errlen, "queue %u: %u entries do not fit an in-flight "
				         "record", q, num);
				return -EPROTO;
			}
			rc = gv_map(qp, d->fe, 1, &iref[q], GV_MAP_WRITE, NULL, &addr);
			if (rc < 0) {
				snprintf(err, errlen, "the in-flight record of queue %u (ref %u) cannot "
				         "be mapped writable: %s", q, iref[q], strerror(-rc));
				return -EPROTO;
			}
			d->inflight[q] = addr;
			/* at a takeover the record is read by gvbe_vq_recover */
			if (!takeover)
				gvbe_vq_track(vq, addr);
		}
		rc = bind_port(d, qp, (evtchn_port_t)port, takeover, &vq->port);
		if (rc < 0) {
			vq->port = GV_NO_PORT;
			snprintf(err, errlen, "cannot bind the event channel %llu of queue %u: %s",
			         (unsigned long long)port, q, strerror(-rc));
			return -EPROTO;
		}
		if (d->virtio_id == VIRTIO_ID_BLK) {
			struct gvbe_blk_queue *bq = &d->bq[q];
			int efd = d->qt[q] ? gvbe_qthread_aio_efd(d->qt[q]) : d->be->aio_efd;

			/* its counters go on across connections */
			if (!bq->disk)
				gvbe_blk_queue_init(bq, &d->blk);
			bq->direct_off = false;
			vq->handler = gvbe_blk_handle;
			vq->handler_ctx = bq;
			vq->fail_status = VIRTIO_BLK_S_IOERR;
			/* the queue's own io_uring, for every request it can hold */
			if (d->be->aio_efd >= 0 &&
			    gvbe_blk_start_aio(bq, num, efd, aerr, sizeof(aerr)) < 0)
				gv_warn("%s: queue %u: %s; serving with synchronous I/O", d->label, q,
				        aerr);
		} else {
			vq->handler = gvbe_rng_handle;
			vq->handler_ctx = NULL;
		}
	}
	return 0;
}

/* A queue the loop serves (live, without a thread of its own). */
static bool loop_queue(const struct gvbe_dev *d, unsigned q)
{
	return d->vq_live[q] && !d->qt[q];
}

/* Completes what the I/O of the loop's queues of d finished and shows it
 * to the driver (an NBD disk's completions, of any queue, come through
 * whichever queue reaps: every queue is published). */
static void dev_reap(struct gvbe_dev *d)
{
	unsigned n = 0;

	for (unsigned q = 0; q < GVBE_MAX_QUEUES; q++)
		if (loop_queue(d, q) && d->bq[q].disk && gvbe_blk_async(&d->bq[q]))
			n += gvbe_blk_reap(&d->bq[q]);
	if (!n)
		return;
	for (unsigned q = 0; q < GVBE_MAX_QUEUES; q++)
		if (loop_queue(d, q))
			gvbe_vq_publish(&d->vq[q]);
}

static void serve_queue(struct gvbe_dev *d, unsigned q)
{
	if (d->phase != GVBE_DEV_CONNECTED || !loop_queue(d, q))
		return;
	if (gvbe_vq_serve(&d->vq[q], d->vq[q].num) == -EPROTO)
		return dev_break(d, d->vq[q].why);
	/* the batch just taken from the ring, in one io_uring_enter; what
	 * completed inline (page cache, RAM) is published in the same pass */
	if (d->bq[q].disk && gvbe_blk_async(&d->bq[q])) {
		gvbe_blk_submit(&d->bq[q]);
		dev_reap(d);
	}
}

static void dev_try_connect(struct gvbe_dev *d, bool takeover)
{
	char err[400];
	unsigned again = 0;
	long long t0 = gv_now_ms();
	int rc;

	err[0] = 0;
	rc = dev_connect(d, takeover, err, sizeof(err));
	if (rc == -ENOTSUP) {
		gv_warn("%s: connected by an earlier backend, but the frontend keeps no in-flight "
		        "record: it sees the backend gone; publishing the device afresh", d->label);
		dev_unmap_all(d);
		dev_publish(d, false);
		return;
	}
	if (rc == -ESRCH) {
		dev_unmap_all(d);
		set_state(d, XenbusStateClosed);
		d->phase = GVBE_DEV_CLOSED;
		gv_info("%s: the frontend died before it connected", d->label);
		return;
	}
	if (rc < 0)
		return dev_break(d, err);
	for (unsigned q = 0; takeover && q < d->fe_nq; q++) {
		/* what the dead backend took and did not publish, served again */
		rc = gvbe_vq_recover(&d->vq[q], (void *)d->inflight[q]);
		if (rc < 0)
			return dev_break(d, d->vq[q].why);
		again += (unsigned)rc;
	}
	gv_xs_rm(d->be->xs, XBT_NULL, d->be_dir, GV_XS_ERROR);
	set_state(d, XenbusStateConnected);
	d->phase = GVBE_DEV_CONNECTED;
	if (takeover) {
		/* the frontend re-reads our liveness byte on this event */
		gv_evtchn_notify(d->be->p, d->dev_port);
		gv_info("%s: taken over from an earlier backend, %u request%s in flight served "
		        "again (%lld ms)", d->label, again, again == 1 ? "" : "s", gv_now_ms() - t0);
	}
	gv_info("%s: connected (%u queue%s of %u, features 0x%llx, %s)", d->label, d->fe_nq,
	        d->fe_nq > 1 ? "s" : "", d->vq[0].num, (unsigned long long)d->driver_features,
	        d->persistent ? "persistent pool, map cache" :
	        d->be->grant_copy_max ? "grant copy or map per request" : "map per request");
	/* requests queued before we connected got no kick we could see (a
	 * queue thread serves them first) */
	for (unsigned q = 0; q < d->fe_nq; q++) {
		if (!d->qt[q]) {
			serve_queue(d, q);
			continue;
		}
		rc = gvbe_qthread_start(d->qt[q], &d->vq[q], &d->bq[q], d->be->poll_us);
		if (rc < 0) {
			snprintf(err, sizeof(err), "cannot start the thread of queue %u: %s", q,
			         strerror(-rc));
			return dev_break(d, err);
		}
	}
	if (d->qt[0])
		gv_info("%s: %u queue thread%s", d->label, d->fe_nq, d->fe_nq > 1 ? "s" : "");
}

/* ---- the state machine -------------------------------------------------------------- */

static struct gvbe_dev *dev_new(struct gvbe_backend *be, enum gvbe_dev_kind kind, domid_t fe,
                                unsigned devid)
{
	struct gvbe_dev *d = calloc(1, sizeof(*d));
	char dom[64], path[128];

	if (!d)
		return NULL;
	d->be = be;
	d->fe = fe;
	d->devid = devid;
	d->kind = kind;
	d->blk.fd = -1;
	d->dev_port = GV_NO_PORT;
	for (unsigned q = 0; q < GVBE_MAX_QUEUES; q++)
		d->vq[q].port = GV_NO_PORT;
	snprintf(d->be_dir, sizeof(d->be_dir), "%s/%u/%u", kind_root(be, kind), (unsigned)fe, devid);
	snprintf(d->fe_dir, sizeof(d->fe_dir), "/local/domain/%u/device/%s/%u", (unsigned)fe,
	         kinds[kind].fe_sub, devid);
	snprintf(dom, sizeof(dom), GV_XS_DOMAIN_DIR_FMT, (unsigned)fe);
	if (gv_xs_read_str(be->xs, XBT_NULL, dom, GV_XS_DOM_NAME, d->name, sizeof(d->name)) < 0)
		snprintf(d->name, sizeof(d->name), "%u", (unsigned)fe);
	snprintf(d->label, sizeof(d->label), "guest %s (domain %u) %s %u", d->name,
	         (unsigned)fe, kinds[kind].what, devid);
	/* the frontend's state lives outside our directory: watch it too */
	if (gv_xs_join(path, sizeof(path), d->fe_dir, GV_XS_FE_STATE) == 0 &&
	    xs_watch(be->xs, path, d->be_dir))
		d->fe_watched = true;
	d->next = be->devs;
	be->devs = d;
	return d;
}

void gvbe_dev_reconcile(struct gvbe_backend *be, enum gvbe_dev_kind kind, domid_t fe,
                        unsigned devid)
{
	struct gvbe_dev *d = dev_find(be, kind, fe, devid);
	char be_dir[96];

	if (d && d->watch_pending) {
		/* this look is as good as the one a watch asked for */
		d->watch_pending = false;
		be->watch_pending--;
	}
	uint64_t online = 0;
	enum xenbus_state fs;
	int rc, alive;

	snprintf(be_dir, sizeof(be_dir), "%s/%u/%u", kind_root(be, kind), (unsigned)fe, devid);
	rc = gv_xs_read_u64(be->xs, XBT_NULL, be_dir, GV_XS_ONLINE, 1, &online);
	if (rc == -ENOENT) {
		char st[16];

		/* no online key: is the whole directory gone? */
		if (gv_xs_read_str(be->xs, XBT_NULL, be_dir, GV_XS_STATE, st, sizeof(st)) == -ENOENT) {
			if (d) {
				if (d->phase == GVBE_DEV_CONNECTED)
					gv_info("%s: backend node removed", d->label);
				dev_free(be, d);
			}
			return;
		}
		/* a directory still being written by the toolstack: wait for online */
		return;
	}
	if (!d) {
		d = dev_new(be, kind, fe, devid);
		if (!d) {
			gv_err("out of memory for device %u of domain %u", devid, (unsigned)fe);
			return;
		}
	}
	alive = gv_domain_exists(be->p, fe);
	if (alive == 0 || rc < 0 || online == 0) {
		if (d->phase != GVBE_DEV_GONE) {
			const char *why = alive == 0 ? "the guest domain is gone" : "online=0";

			if (d->phase == GVBE_DEV_CONNECTED || d->phase == GVBE_DEV_BROKEN)
				gv_info("%s: disconnecting (%s)", d->label, why);
			dev_unmap_all(d);
			set_state(d, XenbusStateClosed);
			d->phase = GVBE_DEV_GONE;
		} else if (rc == 0 && online == 0) {
			enum xenbus_state bs;

			/* the toolstack writes online=0, then state=Closing, and
			 * waits for Closed (libxl's device removal, gv-xl destroy):
			 * its Closing may land after our Closed; answer it again */
			if (gv_xs_read_state(be->xs, XBT_NULL, be_dir, GV_XS_STATE, &bs) == 0 &&
			    bs == XenbusStateClosing)
				set_state(d, XenbusStateClosed);
		}
		return;
	}
	if (d->phase == GVBE_DEV_GONE)
		d->phase = GVBE_DEV_NEW;

	fs = fe_state(d);
	switch (d->phase) {
	case GVBE_DEV_NEW: {
		enum xenbus_state bs;

		/* BE=Connected when we first see it: an earlier backend (killed,
		 * or upgraded) served it, and the frontend may still wait for
		 * what it had in flight: take the device over */
		if (gv_xs_read_state(be->xs, XBT_NULL, d->be_dir, GV_XS_STATE, &bs) < 0)
			bs = XenbusStateUnknown;
		gv_debug("%s: found the backend state %d, the frontend's %d", d->label, (int)bs,
		         (int)fs);
		if (bs == XenbusStateConnected &&
		    (fs == XenbusStateConnected || fs == XenbusStateInitialised)) {
			dev_publish(d, true);
			if (d->phase == GVBE_DEV_NEW)
				dev_try_connect(d, true);
			break;
		}
		dev_publish(d, false);
		if (d->phase == GVBE_DEV_INITWAIT && fs == XenbusStateInitialised)
			dev_try_connect(d, false);
		break;
	}
	case GVBE_DEV_INITWAIT:
		if (fs == XenbusStateInitialised)
			dev_try_connect(d, false);
		break;
	case GVBE_DEV_CONNECTED:
		if (fs == XenbusStateConnected || fs == XenbusStateInitialised)
			break;
		dev_close(d, fs == XenbusStateInitialising ? "a new frontend is initialising"
		          : "the frontend is closing");
		/* maybe publish again at once */
		__attribute__((fallthrough));
	case GVBE_DEV_CLOSED:
		if (fs == XenbusStateInitialising || fs == XenbusStateClosed)
			dev_publish(d, false);
		break;
	case GVBE_DEV_BROKEN:
		if (fs == XenbusStateClosing || fs == XenbusStateClosed ||
		    fs == XenbusStateInitialising) {
			set_state(d, XenbusStateClosed);
			d->phase = GVBE_DEV_CLOSED;
			if (fs != XenbusStateClosing)
				dev_publish(d, false);
		}
		break;
	case GVBE_DEV_OPENING:          /* gvbe_dev_open_done goes on */
	case GVBE_DEV_REFUSED:
	case GVBE_DEV_GONE:
		break;
	}
}

void gvbe_dev_open_done(struct gvbe_backend *be)
{
	for (struct gvbe_dev *d = be->devs, *next; d; d = next) {
		char err[400];
		int rc;

		next = d->next;
		if (d->phase != GVBE_DEV_OPENING)
			continue;
		rc = gvbe_blk_open_finish(&d->blk, d->image, d->devid, err, sizeof(err));
		if (rc == -EINPROGRESS)
			continue;
		if (rc < 0) {
			dev_refuse(d, err);
			continue;
		}
		/* connected: published (or taken over) as a device seen afresh */
		d->phase = GVBE_DEV_NEW;
		gvbe_dev_reconcile(be, d->kind, d->fe, d->devid);      /* may free d */
	}
}

static void scan_root(struct gvbe_backend *be, enum gvbe_dev_kind kind)
{
	const char *root = kind_root(be, kind);
	unsigned nfe = 0;
	char **fes = xs_directory(be->xs, XBT_NULL, root, &nfe);

	for (unsigned i = 0; fes && i < nfe; i++) {
		char dir[128];
		unsigned ndev = 0;
		uint64_t fe, devid;
		char **devs;

		if (gv_parse_decimal(fes[i], strlen(fes[i]), DOMID_FIRST_RESERVED - 1, &fe) < 0)
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", root, fes[i]);
		devs = xs_directory(be->xs, XBT_NULL, dir, &ndev);
		for (unsigned j = 0; devs && j < ndev; j++)
			if (gv_parse_decimal(devs[j], strlen(devs[j]), 65535, &devid) == 0)
				gvbe_dev_reconcile(be, kind, (domid_t)fe, (unsigned)devid);
		free(devs);
	}
	free(fes);
}

void gvbe_dev_scan(struct gvbe_backend *be)
{
	for (unsigned k = 0; k < GVBE_KINDS; k++)
		scan_root(be, (enum gvbe_dev_kind)k);
	/* the ones we know whose directories went away */
	for (struct gvbe_dev *d = be->devs, *next; d; d = next) {
		next = d->next;
		gvbe_dev_reconcile(be, d->kind, d->fe, d->devid);
	}
}

void gvbe_dev_release_domains(struct gvbe_backend *be)
{
	for (struct gvbe_dev *d = be->devs, *next; d; d = next) {
		next = d->next;
		if (gv_domain_exists(be->p, d->fe) == 0)
			gvbe_dev_reconcile(be, d->kind, d->fe, d->devid);
	}
}

void gvbe_dev_note_watch(struct gvbe_backend *be, enum gvbe_dev_kind kind, domid_t fe,
                         unsigned devid)
{
	struct gvbe_dev *d = dev_find(be, kind, fe, devid);

	if (!d) {
		be->scan_pending = true;
	} else if (!d->watch_pending) {
		d->watch_pending = true;
		be->watch_pending++;
	}
}

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int gvbe_dev_watch_work(struct gvbe_backend *be, unsigned budget)
{
	double now = mono_ms(), wait = -1;

	if (be->release_pending) {
		be->release_pending = false;
		gvbe_dev_release_domains(be);
	}
	if (be->scan_pending) {
		be->scan_pending = false;
		gvbe_dev_scan(be);      /* reconciles every device: clears their flags */
	}
	/* oldest devices are at the end of the list, but any order is fair
	 * enough: each due device is looked at within a few passes */
	for (struct gvbe_dev *d = be->devs, *next; d && be->watch_pending; d = next) {
		double due = d->watch_last + GVBE_WATCH_INTERVAL_MS - now;

		next = d->next;
		if (!d->watch_pending)
			continue;
		if (due > 0 || !budget) {
			/* looked at it a moment ago: later, however many events come
			 * (a guest rewriting its keys gets one look per interval) */
			if (due < 0)
				due = 0;
			if (wait < 0 || due < wait)
				wait = due;
			continue;
		}
		budget--;
		d->watch_last = now;
		gvbe_dev_reconcile(be, d->kind, d->fe, d->devid);    /* may free d */
	}
	if (be->scan_pending || be->release_pending)
		return 0;
	return wait < 0 ? -1 : (int)wait + 1;
}

void gvbe_dev_event(struct gvbe_backend *be, evtchn_port_t port)
{
	for (struct gvbe_dev *d = be->devs; d; d = d->next) {
		if (d->dev_port == port && d->phase == GVBE_DEV_CONNECTED) {
			/* the device channel: did the frontend go away? */
			if (d->liveness && d->liveness[0] == 0) {
				dev_close(d, "the frontend went away");
				return;
			}
			gvbe_dev_reconcile(be, d->kind, d->fe, d->devid);
			return;
		}
		for (unsigned q = 0; q < GVBE_MAX_QUEUES; q++)
			if (loop_queue(d, q) && d->vq[q].port == port) {
				d->vq[q].kicks++;
				serve_queue(d, q);
				return;
			}
	}
}

void gvbe_dev_reap(struct gvbe_backend *be)
{
	for (struct gvbe_dev *d = be->devs; d; d = d->next)
		if (d->phase == GVBE_DEV_CONNECTED)
			dev_reap(d);
}

bool gvbe_dev_busy(struct gvbe_backend *be)
{
	for (struct gvbe_dev *d = be->devs; d; d = d->next)
		for (unsigned q = 0; d->phase == GVBE_DEV_CONNECTED && q < GVBE_MAX_QUEUES; q++)
			if (loop_queue(d, q) && d->bq[q].disk && gvbe_blk_inflight(&d->bq[q]))
				return true;
	return false;
}

bool gvbe_dev_poll(struct gvbe_backend *be)
{
	bool found = false;

	for (struct gvbe_dev *d = be->devs; d; d = d->next) {
		if (d->phase != GVBE_DEV_CONNECTED)
			continue;
		for (unsigned q = 0; q < GVBE_MAX_QUEUES; q++)
			if (loop_queue(d, q) && d->bq[q].disk && gvbe_blk_ready(&d->bq[q])) {
				dev_reap(d);
				found = true;
				break;
			}
		for (unsigned q = 0; q < GVBE_MAX_QUEUES; q++)
			/* a hint only: serving reads the index again, once */
			if (loop_queue(d, q) && !d->vq[q].broken &&
			    d->vq[q].avail->idx != d->vq[q].last_avail) {
				d->vq[q].more = true;
				found = true;
			}
	}
	return found;
}

bool gvbe_dev_serve_pending(struct gvbe_backend *be)
{
	bool more = false;

	for (struct gvbe_dev *d = be->devs; d; d = d->next)
		for (unsigned q = 0; q < GVBE_MAX_QUEUES; q++)
			if (loop_queue(d, q) && d->vq[q].more) {
				serve_queue(d, q);
				more |= loop_queue(d, q) && d->vq[q].more;
			}
	return more;
}

void gvbe_dev_queue_work(struct gvbe_backend *be)
{
	for (struct gvbe_dev *d = be->devs; d; d = d->next)
		for (unsigned q = 0; d->phase == GVBE_DEV_CONNECTED && q < GVBE_MAX_QUEUES; q++)
			if (gvbe_qthread_broken(d->qt[q])) {
				/* the thread wrote why before it said so */
				dev_break(d, d->vq[q].why);
				break;
			}
}

void gvbe_dev_counters(struct gvbe_backend *be, struct gv_counters *c)
{
	*c = be->p->ctr;
	gvbe_counters_add(c, &be->qt_retired);
	for (struct gvbe_dev *d = be->devs; d; d = d->next)
		for (unsigned q = 0; q < GVBE_MAX_QUEUES; q++)
			if (d->qt[q]) {
				struct gv_counters t;

				gvbe_qthread_counters(d->qt[q], &t);
				gvbe_counters_add(c, &t);
			}
}

void gvbe_dev_queue_lock(struct gvbe_dev *d, unsigned q)
{
	gvbe_qthread_lock(d->qt[q]);
}

void gvbe_dev_queue_unlock(struct gvbe_dev *d, unsigned q)
{
	gvbe_qthread_unlock(d->qt[q]);
}

void gvbe_dev_blk_counters(struct gvbe_dev *d, struct gvbe_blk_queue *sum)
{
	memset(sum, 0, sizeof(*sum));
	sum->disk = &d->blk;
	for (unsigned q = 0; q < GVBE_MAX_QUEUES; q++) {
		const struct gvbe_blk_queue *bq = &d->bq[q];

		if (!bq->disk)
			continue;
		gvbe_dev_queue_lock(d, q);
		sum->aio = sum->aio ? sum->aio : bq->aio;
		sum->direct_ios += bq->direct_ios;
		sum->buffered_ios += bq->buffered_ios;
		sum->nowait_ios += bq->nowait_ios;
		sum->discards += bq->discards;
		sum->zeroes += bq->zeroes;
		gvbe_dev_queue_unlock(d, q);
	}
}

/* ---- online resize ------------------------------------------------------------------ */

struct resize_keys { const struct gvbe_dev *d; uint64_t capacity; uint32_t gen; };

static int write_resize(struct xs_handle *xs, xs_transaction_t t, void *ctx)
{
	const struct resize_keys *k = ctx;
	int rc;

	/* capacity first, then the generation that announces it: a frontend
	 * reading outside the transaction never sees the new generation with
	 * the old capacity */
	rc = gv_xs_printf(xs, t, k->d->be_dir, GV_XS_CFG_CAPACITY, "%llu",
	                  (unsigned long long)k->capacity);
	if (rc == 0)
		rc = gv_xs_printf(xs, t, k->d->be_dir, GV_XS_CFG_GENERATION, "%u", k->gen);
	return rc;
}

int gvbe_dev_resize(struct gvbe_dev *d, char *msg, size_t msglen)
{
	uint64_t now, old = d->blk.capacity;
	struct resize_keys k;
	int rc;

	if (d->virtio_id != VIRTIO_ID_BLK) {
		snprintf(msg, msglen, "%s: not a disk", d->label);
		return -EINVAL;
	}
	if (d->phase != GVBE_DEV_INITWAIT && d->phase != GVBE_DEV_CONNECTED) {
		snprintf(msg, msglen, "%s: not published (no frontend could use it now); its "
		         "size is read again when it is next published", d->label);
		return -EAGAIN;
	}
	if (d->blk.ro) {
		snprintf(msg, msglen, "%s: read-only disk: its capacity is not changed online "
		         "(%llu sectors); the guest sees a new size when it attaches again",
		         d->label, (unsigned long long)old);
		return -EROFS;
	}
	rc = gvbe_blk_current_size(&d->blk, &now);
	if (rc == -ENOTSUP) {
		snprintf(msg, msglen, "%s: NBD disk: its size (%llu sectors) is what the server "
		         "said when gv-backend connected; an NBD server reports a new size only "
		         "to a new connection (gv-backend connects afresh when the disk's "
		         "configuration line changes, with SIGHUP, while the guest is detached)",
		         d->label, (unsigned long long)old);
		return rc;
	}
	if (rc < 0) {
		snprintf(msg, msglen, "%s: cannot read the size of %s: %s", d->label, d->image,
		         strerror(-rc));
		return rc;
	}
	if (now < old) {
		snprintf(msg, msglen, "%s: %s shrank from %llu to %llu sectors: shrinking is "
		         "refused (the guest may keep data past the new end); still serving %llu "
		         "sectors, requests past the image's end fail", d->label, d->image,
		         (unsigned long long)old, (unsigned long long)now, (unsigned long long)old);
		return -EINVAL;
	}
	if (now == old) {
		snprintf(msg, msglen, "%s: unchanged, %llu sectors", d->label,
		         (unsigned long long)old);
		return 0;
	}
	k = (struct resize_keys){ d, now, d->cfg_gen + 1 };
	rc = gv_xs_transaction(d->be->xs, write_resize, &k);
	if (rc < 0) {
		snprintf(msg, msglen, "%s: cannot publish the new capacity: %s (still %llu "
		         "sectors)", d->label, strerror(-rc), (unsigned long long)old);
		return rc;
	}
	/* the request handlers check ranges against it from now on (a queue
	 * thread's between two batches) */
	for (unsigned q = 0; q < GVBE_MAX_QUEUES; q++)
		gvbe_dev_queue_lock(d, q);
	d->blk.capacity = now;
	for (unsigned q = 0; q < GVBE_MAX_QUEUES; q++)
		gvbe_dev_queue_unlock(d, q);
	d->cfg_gen = k.gen;
	/* virtio's configuration-change interrupt: the device channel wakes the
	 * frontend, which finds config-generation moved (its watch says so too) */
	if (d->phase == GVBE_DEV_CONNECTED && d->dev_port != GV_NO_PORT)
		gv_evtchn_notify(d->be->p, d->dev_port);
	snprintf(msg, msglen, "%s: resized from %llu to %llu sectors (config-generation %u)",
	         d->label, (unsigned long long)old, (unsigned long long)now, d->cfg_gen);
	return 1;
}

unsigned gvbe_dev_resize_all(struct gvbe_backend *be, FILE *f)
{
	unsigned refused = 0, disks = 0;
	char msg[800];

	for (struct gvbe_dev *d = be->devs; d; d = d->next) {
		int rc;

		if (d->virtio_id != VIRTIO_ID_BLK)
			continue;
		disks++;
		rc = gvbe_dev_resize(d, msg, sizeof(msg));
		/* a disk that cannot change size online (read-only, NBD, not
		 * published) is a note here: only a shrink or a failure is an
		 * error; only a change or an error is worth a log line */
		bool note = rc == -EAGAIN || rc == -ENOTSUP || rc == -EROFS, bad = rc < 0 && !note;

		if (rc > 0)
			gv_info("%s", msg);
		else if (bad)
			gv_warn("%s", msg);
		refused += bad;
		if (f)
			fprintf(f, "%s%s\n", bad ? "error: " : "", msg);
	}
	if (f && !disks)
		fprintf(f, "no disk is served\n");
	return refused;
}

struct gvbe_dev *gvbe_dev_lookup(struct gvbe_backend *be, const char *guest, unsigned devid)
{
	uint64_t id;
	bool numeric = gv_parse_decimal(guest, strlen(guest), DOMID_FIRST_RESERVED - 1, &id) == 0;

	for (struct gvbe_dev *d = be->devs; d; d = d->next)
		if (d->devid == devid && (numeric ? d->fe == id : !strcmp(d->name, guest)))
			return d;
	return NULL;
}

void gvbe_dev_shutdown_all(struct gvbe_backend *be)
{
	while (be->devs) {
		struct gvbe_dev *d = be->devs;

		if (d->phase != GVBE_DEV_GONE && d->phase != GVBE_DEV_REFUSED) {
			dev_unmap_all(d);
			set_state(d, XenbusStateClosed);
		}
		dev_free(be, d);
	}
}

unsigned gvbe_dev_handover_all(struct gvbe_backend *be, int timeout_ms)
{
	int64_t end = gv_now_ms() + timeout_ms;
	unsigned handed = 0;

	while (be->devs) {
		struct gvbe_dev *d = be->devs;

		if (d->phase == GVBE_DEV_CONNECTED) {
			unsigned left = 0;

			/* the loop owns every queue from here */
			dev_stop_threads(d);
			for (unsigned q = 0; q < GVBE_MAX_QUEUES; q++) {
				int64_t ms = end - gv_now_ms();

				if (d->bq[q].disk)
					left += gvbe_blk_drain(&d->bq[q], ms > 0 ? (int)ms : 0);
			}

			/* what finished is shown to the driver and cleared from
			 * the record before anything is unmapped */
			for (unsigned q = 0; q < GVBE_MAX_QUEUES; q++)
				if (d->vq_live[q])
					gvbe_vq_publish(&d->vq[q]);
			if (left) {
				/* the backing store holds guest pages: they stay mapped
				 * until we exit (the kernel lets go of them when the I/O
				 * ends); the successor serves these requests again */
				gv_warn("%s: %u request%s still in flight after %d ms: left marked "
				        "in the in-flight record for the next backend", d->label, left,
				        left == 1 ? "" : "s", timeout_ms);
				be->devs = d->next;
				continue;
			}
			dev_unmap_all(d);
			gv_info("%s: handed over: left Connected for the next gv-backend to take over",
			        d->label);
			handed++;
		} else {
			/* the state stays as it is: a frontend attaching now (InitWait,
			 * Initialised) is answered by the successor, as after a crash */
			dev_unmap_all(d);
		}
		dev_free(be, d);
	}
	return handed;
}
