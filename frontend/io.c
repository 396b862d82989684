/*
 * frontend/io.c: the device's event loop: event channels (queue interrupts,
 * the device channel that carries liveness), the xenstore watch on the
 * backend, reaping completions with notification suppression, and the one
 * place where the device turns broken and its requests fail with -EIO.
 *
 * It calls the device-type driver only through d->drv (device.h) and
 * nothing in transport.c: set-up calls down into here, never the reverse.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "barrier.h"
#include "device.h"
#include "log.h"
#include "xs_keys.h"
#include "xs_util.h"

static void dev_fail(struct gv_device *d, bool log, const char *fmt, va_list ap)
{
	char why[256];

	if (d->broken)
		return;
	d->broken = true;
	vsnprintf(why, sizeof(why), fmt, ap);
	if (!*d->error)
		snprintf(d->error, sizeof(d->error), "%s", why);
	if (log) {
		if (strcmp(d->error, why))
			gv_err("device %u: %s: %s", d->devid, why, d->error);
		else
			gv_err("device %u: %s", d->devid, why);
	}
	/* Stop the rings without a second log line: nothing more is added. */
	for (unsigned i = 0; i < d->nq; i++)
		if (d->q[i].vq)
			d->q[i].vq->broken = true;
	/* The backend unmapped everything before it reported the error, or it
	 * is gone (its platform unmapped), or it broke our ring: in the last
	 * case the grant strategy's ends may fail with -EBUSY, and those pages
	 * leak on purpose (counted); bounce slots are not reused because a
	 * broken device maps nothing more. */
	gvfe_dev_fail_inflight(d);
}

void gvfe_dev_fail(struct gv_device *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dev_fail(d, true, fmt, ap);
	va_end(ap);
}

static void dev_fail_quiet(struct gv_device *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void dev_fail_quiet(struct gv_device *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dev_fail(d, false, fmt, ap);
	va_end(ap);
}

void gvfe_dev_fail_inflight(struct gv_device *d)
{
	void *token;

	if (!d->drv)
		return;
	for (unsigned i = 0; i < d->nq; i++) {
		while (d->q[i].vq && (token = gvfe_vq_detach_unused(d->q[i].vq)))
			d->drv->complete(d, i, token, 0, -EIO);
		/* fails what was waiting to be issued (with no queue, as after
		 * a failed re-attach: all of it); not after teardown freed the
		 * driver's state */
		if (d->drv->pump && d->drv_priv)
			d->drv->pump(d, i);
	}
}

unsigned gvfe_dev_in_flight(const struct gv_device *d)
{
	unsigned n = 0;

	for (unsigned i = 0; i < d->nq; i++)
		if (d->q[i].vq)
			n += gvfe_vq_in_flight(d->q[i].vq);
	return n;
}

void gvfe_dev_finished(struct gv_device *d, unsigned qi, struct gv_blk_io *io)
{
	struct gvfe_queue *q = &d->q[qi];

	if (!io) {
		q->done_other++;
		return;
	}
	io->next = NULL;
	if (q->done_tail)
		q->done_tail->next = io;
	else
		q->done_head = io;
	q->done_tail = io;
}

static bool has_done(const struct gv_device *d, int qi)
{
	for (unsigned i = 0; i < d->nq; i++)
		if ((qi < 0 || (unsigned)qi == i) && (d->q[i].done_head || d->q[i].done_other))
			return true;
	return false;
}

int gvfe_dev_unlock_run_done(struct gv_device *d, int qi)
{
	struct gv_blk_io *head = NULL, *tail = NULL, *io;
	void (*cfg_cb)(struct gv_device *d, void *priv);
	void *cfg_priv;
	int n = 0;

	for (unsigned i = 0; i < d->nq; i++) {
		struct gvfe_queue *q = &d->q[i];

		if (qi >= 0 && (unsigned)qi != i)
			continue;
		n += (int)q->done_other;
		q->done_other = 0;
		if (!q->done_head)
			continue;
		if (tail)
			tail->next = q->done_head;
		else
			head = q->done_head;
		tail = q->done_tail;
		q->done_head = q->done_tail = NULL;
	}
	/* Another queue's requests finished here (the device broke, say): its
	 * thread may be waiting on cond rather than on the event fd. */
	if (d->nq > 1 && (d->broken || has_done(d, -1)))
		pthread_cond_broadcast(&d->cond);
	cfg_cb = d->cfg_cb_due ? d->cfg_cb : NULL;
	cfg_priv = d->cfg_cb_priv;
	d->cfg_cb_due = false;
	pthread_mutex_unlock(&d->lock);
	if (cfg_cb)
		cfg_cb(d, cfg_priv);
	while ((io = head)) {
		head = io->next;
		io->next = NULL;
		n++;
		if (io->done)
			io->done(io);   /* may free io, or submit it again */
	}
	return n;
}

void gvfe_dev_read_be_error(struct gv_device *d)
{
	char buf[sizeof(d->error)];

	if (gv_xs_read_str(d->xs, XBT_NULL, d->be_dir, GV_XS_ERROR, buf, sizeof(buf)) == 0 && *buf)
		snprintf(d->error, sizeof(d->error), "%s", buf);
}

/* This domain's id as the store sees it now: the relative key "domid"
 * resolves in the home of the domain the connection belongs to, which a
 * restore moved. 0 and *out, or -errno. */
static int read_own_domid(struct gv_device *d, domid_t *out)
{
	uint64_t v;
	char buf[16];
	int rc = gv_xs_read_str(d->xs, XBT_NULL, "domid", NULL, buf, sizeof(buf));

	if (rc == 0)
		rc = gv_parse_u64(buf, DOMID_FIRST_RESERVED - 1, &v);
	if (rc == 0)
		*out = (domid_t)v;
	return rc;
}

bool gvfe_dev_check_restored(struct gv_device *d)
{
	domid_t now = 0;

	if (d->reattaching || !d->reattach || !d->published || d->closing || d->broken)
		return false;
	if (read_own_domid(d, &now) < 0 || now == d->p->domid)
		return false;
	d->reattach(d, now);
	return true;
}

int gvfe_dev_refresh_backend(struct gv_device *d)
{
	enum xenbus_state s;
	uint64_t status = 0;
	int rc;

	rc = gv_xs_read_state(d->xs, XBT_NULL, d->be_dir, GV_XS_STATE, &s);
	/* A backend directory gone may be the old domain's, after a restore:
	 * the device is then attached anew, not failed. */
	if ((rc == -ENOENT || rc == -EACCES) && d->connected && !d->closing && !d->broken &&
	    gvfe_dev_check_restored(d))
		return d->broken ? rc : (int)d->be_state;
	if ((rc == -ENOENT || rc == -EACCES) && d->connected && !d->closing && !d->broken) {
		/* the toolstack removed the device: no backend will take it over
		 * (EACCES: what Xen's xenstored answers, it seems, for a removed
		 * node whose parent directory the guest cannot read) */
		gvfe_dev_fail(d, "the device was removed (its backend directory is gone)");
		return rc;
	}
	if (rc < 0)
		return rc;
	d->be_state = s;
	/* The backend sets its liveness byte before it writes Connected: once
	 * it answered our published keys with Connected it was alive, and a 0
	 * in its byte from then on means it is gone, whether or not we ever
	 * read the byte as 1 (it may have died before we looked). */
	if (s == XenbusStateConnected && d->published)
		d->backend_seen_alive = true;
	if (!d->connected || d->closing)
		return (int)s;      /* Closing/Closed is what we asked for now */
	rc = gv_xs_read_u64(d->xs, XBT_NULL, d->be_dir, GV_XS_DEVICE_STATUS, UINT32_MAX, &status);
	if ((rc == 0 && (status & VIRTIO_CONFIG_S_NEEDS_RESET)) ||
	    s == XenbusStateClosing || s == XenbusStateClosed) {
		gvfe_dev_read_be_error(d);
		gvfe_dev_fail(d, "the backend stopped the device (state %s, device-status %llu)",
		              gv_xenbus_state_name(s), (unsigned long long)status);
	}
	return (int)s;
}

int gvfe_dev_read_be_u64(struct gv_device *d, const char *key, uint64_t max, bool required,
                         uint64_t *out, char *err, size_t errlen)
{
	int rc = gv_xs_read_u64(d->xs, XBT_NULL, d->be_dir, key, max, out);

	if (rc == 0)
		return 1;
	if (rc == -ENOENT && !required)
		return 0;
	snprintf(err, errlen, "backend key %s/%s: %s", d->be_dir, key, strerror(-rc));
	return rc;
}

int gvfe_dev_read_cfg_gen(struct gv_device *d, uint64_t *gen)
{
	int rc = gv_xs_read_u64(d->xs, XBT_NULL, d->be_dir, GV_XS_CFG_GENERATION, UINT32_MAX, gen);

	if (rc == -ENOENT) {
		*gen = 0;           /* a backend without config changes */
		return 0;
	}
	return rc;
}

/* The backend's config-generation moved: the configuration keys are read
 * again (until the generation holds still around the reading, as virtio's
 * config generation is used) and the caller's callback runs. A generation
 * or a key the backend garbled breaks the device: its configuration can no
 * longer be trusted. */
static void check_config(struct gv_device *d)
{
	uint64_t before, after;
	int rc, tries = 0;

	if (!d->connected || d->closing || d->broken || !d->drv->config_changed)
		return;
	if (gvfe_dev_read_cfg_gen(d, &before) < 0) {
		gvfe_dev_fail(d, "the backend's %s is malformed", GV_XS_CFG_GENERATION);
		return;
	}
	if (before == d->cfg_gen)
		return;
	for (;;) {
		rc = d->drv->config_changed(d);
		if (rc < 0) {
			gvfe_dev_fail(d, "the backend raised a config change whose keys cannot be "
			              "read: %s", strerror(-rc));
			return;
		}
		if (gvfe_dev_read_cfg_gen(d, &after) < 0) {
			gvfe_dev_fail(d, "the backend's %s is malformed", GV_XS_CFG_GENERATION);
			return;
		}
		if (after == before)
			break;
		if (++tries == 8) {
			gvfe_dev_fail(d, "the backend's %s keeps changing", GV_XS_CFG_GENERATION);
			return;
		}
		before = after;
	}
	d->cfg_gen = after;
	d->cfg_changes++;
	gv_info("device %u: the backend changed the device's configuration (config-generation "
	        "%llu)", d->devid, (unsigned long long)after);
	d->cfg_cb_due = true;       /* the callback runs once the lock is let go */
}

void gv_set_config_callback(struct gv_device *d, void (*cb)(struct gv_device *d, void *priv),
                            void *priv)
{
	pthread_mutex_lock(&d->lock);
	d->cfg_cb = cb;
	d->cfg_cb_priv = priv;
	pthread_mutex_unlock(&d->lock);
}

unsigned gv_config_changes(const struct gv_device *d)
{
	unsigned n;

	pthread_mutex_lock((pthread_mutex_t *)&d->lock);
	n = d->cfg_changes;
	pthread_mutex_unlock((pthread_mutex_t *)&d->lock);
	return n;
}

/* The backend's liveness byte went to 0 while connected. A backend that
 * stops the device also unmaps the page, before it writes `error` and
 * device-status: give xenstore a moment to say so, so the guest reports
 * the backend's reason rather than a death. A dead backend writes nothing. */
#define VANISH_GRACE_MS 500
static void backend_vanished(struct gv_device *d)
{
	long long deadline = gv_now_ms() + VANISH_GRACE_MS;

	for (;;) {
		struct pollfd pfd = { d->xs_fd, POLLIN, 0 };
		long long left;
		char **w;

		gvfe_dev_refresh_backend(d);
		if (d->broken)
			return;
		left = deadline - gv_now_ms();
		if (left <= 0 || d->xs_fd < 0)
			break;
		if (poll(&pfd, 1, (int)left) > 0)
			while ((w = xs_check_watch(d->xs)))
				free(w);
	}
	gvfe_dev_fail(d, "backend went away (its liveness byte was cleared)");
}

/* A new backend set its liveness byte: it took the device over (it
 * mapped our rings and the in-flight record first) and serves again what
 * was in flight; the requests go on. */
static void backend_back(struct gv_device *d)
{
	long long waited = gv_now_ms() - d->away_since_ms;

	d->backend_away = false;
	d->st.backend_restarts++;
	d->st.restart_wait_ms_total += (uint64_t)waited;
	if ((uint64_t)waited > d->st.restart_wait_ms_max)
		d->st.restart_wait_ms_max = (uint64_t)waited;
	/* The requests' clock was paused while no backend ran; the time away
	 * counts against restart_timeout_ms until something completes, so a
	 * backend that keeps vanishing and coming back without completing
	 * anything cannot hold the requests for longer than both bounds. */
	d->last_progress_ms += waited;
	d->away_spent_ms += waited;
	gv_info("device %u: a backend took the device over after %lld ms; %u requests in flight "
	        "go on", d->devid, waited, gvfe_dev_in_flight(d));
}

int gvfe_dev_check_backend(struct gv_device *d)
{
	uint8_t alive;

	if (!d->live.npages)
		return 0;
	/* Acquire: pairs with the platform's clear; what the backend wrote
	 * before dying is not needed, but the order costs nothing here. */
	alive = gv_load_acquire((uint8_t *)d->live.cpu + 1);
	if (alive) {
		d->backend_seen_alive = true;
		if (d->backend_away)
			backend_back(d);
		return 0;
	}
	if (!d->backend_seen_alive)
		return 0;           /* not mapped yet: nothing to conclude */
	if (d->closing)
		return -EPIPE;      /* step 6 unmaps it too: not a death while closing */
	if (d->restartable && d->published && !d->broken) {
		/* The backend can be taken over: the requests wait (bounded by
		 * restart_timeout_ms, gv_poll). A backend that stopped the
		 * device on purpose says so in xenstore (Closing, Closed,
		 * device-status), and the watch fails the device then. */
		if (!d->backend_away) {
			unsigned gen = d->reattach_gen;

			/* On real Xen the guest got no usable watch event when the
			 * toolstack removed the backend's directory (Xen's xenstored
			 * tells of a removed node only a domain that may read its
			 * parent, it seems) and waited the whole restart timeout:
			 * look once whether the device itself is gone, which no new
			 * backend would take over */
			gvfe_dev_refresh_backend(d);
			if (d->broken)
				return -EPIPE;
			if (d->reattach_gen != gen)
				return 0;   /* the domain was restored: attached anew */
			d->backend_away = true;
			d->away_since_ms = gv_now_ms();
			gv_info("device %u: the backend went away; waiting up to %d ms for a new one "
			        "to take the device over", d->devid, d->restart_timeout_ms);
		}
		return 0;
	}
	if (!d->broken)
		backend_vanished(d);
	return -EPIPE;
}

void gvfe_dev_started_io(struct gv_device *d)
{
	/* while no backend runs, the clock is paused from the death on (the
	 * return adds the whole time away) */
	d->last_progress_ms = d->backend_away ? d->away_since_ms : gv_now_ms();
	d->away_spent_ms = 0;
}

static void reap_one(struct gv_device *d, unsigned qi)
{
	struct gvfe_vq *vq = d->q[qi].vq;
	void *token;
	uint32_t len;
	bool any = false;
	int rc;

	if (!vq)
		return;
	while ((rc = gvfe_vq_get_buf(vq, &token, &len)) == 1) {
		any = true;
		d->drv->complete(d, qi, token, len, 0);
	}
	if (any) {
		d->last_progress_ms = gv_now_ms();
		d->away_spent_ms = 0;
	}
	if (rc < 0 && !d->broken)
		dev_fail_quiet(d, "the backend broke virtqueue %u (see the line above)", vq->index);
	if (d->drv->pump)
		d->drv->pump(d, qi);
}

/* The queues a poll serves: qi, or every queue (qi < 0). */
#define FOR_QUEUES(d, qi, i) \
	for (unsigned i = (qi) < 0 ? 0 : (unsigned)(qi); \
	     i < ((qi) < 0 ? (d)->nq : (unsigned)(qi) + 1); i++)

static void reap(struct gv_device *d, int qi)
{
	FOR_QUEUES(d, qi, i) {
		if (d->q[i].vq)
			gvfe_vq_disable_cb(d->q[i].vq);
		reap_one(d, i);
	}
}

/* Re-enables interrupts on the queues; false when one has completions
 * already (they would raise no event). */
static bool enable_cb(struct gv_device *d, int qi)
{
	bool ok = true;

	FOR_QUEUES(d, qi, i)
		if (d->q[i].vq && !gvfe_vq_enable_cb(d->q[i].vq))
			ok = false;
	return ok;
}

static int dev_events(struct gv_device *d, const struct pollfd *pfd, int n);

static int dev_poll_fds(struct gv_device *d, struct pollfd *pfd)
{
	int n = 0;

	pfd[n].fd = gv_evtchn_fd(d->p);
	pfd[n++].events = POLLIN;
	if (d->xs_fd >= 0) {
		pfd[n].fd = d->xs_fd;
		pfd[n++].events = POLLIN;
	}
	return n;
}

int gvfe_dev_wait_event(struct gv_device *d, int timeout_ms)
{
	struct pollfd pfd[2];
	int n = 0, rc;

	pfd[n].fd = gv_evtchn_fd(d->p);
	pfd[n++].events = POLLIN;
	if (d->xs_fd >= 0) {
		pfd[n].fd = d->xs_fd;
		pfd[n++].events = POLLIN;
	}
	rc = poll(pfd, (nfds_t)n, timeout_ms);
	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	return dev_events(d, pfd, n);
}

/* After poll: drains the ports and the watch. */
static int dev_events(struct gv_device *d, const struct pollfd *pfd, int n)
{
	evtchn_port_t port;

	/* Drain every pending port, unmasking each (a delivered port stays
	 * masked until then; events meanwhile are coalesced, not lost). */
	while (gv_evtchn_pending(d->p, &port) == 1) {
		for (unsigned i = 0; i < d->nq; i++) {
			if (port == d->q[i].port) {
				d->st.interrupts++;
				d->q[i].interrupts++;
			}
		}
		gv_evtchn_unmask(d->p, port);
	}
	if (n > 1 && (pfd[1].revents & POLLIN)) {
		char **w;
		bool changed = false;

		while ((w = xs_check_watch(d->xs))) {
			changed = true;
			free(w);
		}
		/* After a restore every watch fires once (the guest kernel
		 * registers them again in the new domain): the first thing
		 * to ask is whether this is still the same domain. */
		if (changed && !gvfe_dev_check_restored(d)) {
			gvfe_dev_refresh_backend(d);
			check_config(d);
		}
	}
	/* The device channel also carries the backend's death notice: a
	 * cheap re-read of its liveness byte on every wake-up covers it. */
	gvfe_dev_check_backend(d);
	return 0;
}

/* Requests in flight and no completion for io_timeout_ms: the backend
 * stopped serving this device (stuck, or dead without our noticing). Virtio
 * has no way to cancel one request, so the device breaks and every request
 * fails with -EIO, as after a backend death. */
static void check_io_timeout(struct gv_device *d, long long now)
{
	/* a restore whose watch event never came: silent rings in a new domain */
	if (!d->broken && (d->backend_away ? now - d->away_since_ms + d->away_spent_ms >=
	                                     d->restart_timeout_ms
	                                   : gvfe_dev_in_flight(d) &&
	                                     now - d->last_progress_ms >= d->io_timeout_ms) &&
	    gvfe_dev_check_restored(d))
		return;
	if (d->backend_away && !d->broken &&
	    now - d->away_since_ms + d->away_spent_ms >= d->restart_timeout_ms) {
		gvfe_dev_fail(d, "backend went away and no backend took the device over in %d ms",
		              d->restart_timeout_ms);
		return;
	}
	if (d->broken || d->backend_away || !gvfe_dev_in_flight(d) ||
	    now - d->last_progress_ms < d->io_timeout_ms)
		return;
	gvfe_dev_fail(d, "the backend completed none of %u requests in %d ms",
	              gvfe_dev_in_flight(d), d->io_timeout_ms);
}

/* How long the next wait may be: up to the caller's deadline (none: -1),
 * and never past the point where the requests in flight time out. */
static int wait_budget(struct gv_device *d, int timeout_ms, long long deadline, long long now)
{
	long long left = timeout_ms < 0 ? d->io_timeout_ms : deadline - now;

	if (d->backend_away) {
		long long end = d->away_since_ms + d->restart_timeout_ms - d->away_spent_ms;

		if (end - now < left)
			left = end - now;
	} else if (gvfe_dev_in_flight(d) && d->last_progress_ms + d->io_timeout_ms - now < left) {
		left = d->last_progress_ms + d->io_timeout_ms - now;
	}
	return left < 0 ? 0 : (int)left;
}

/* One wait of a poll, with the lock held on entry and on return: the
 * first thread to get here waits on the event fd (without the lock) and
 * handles what it brings; the others wait for its broadcast. */
static void wait_once(struct gv_device *d, int budget_ms)
{
	if (!d->waiter) {
		struct pollfd pfd[2];
		int n = dev_poll_fds(d, pfd), rc;

		d->waiter = true;
		pthread_mutex_unlock(&d->lock);
		rc = poll(pfd, (nfds_t)n, budget_ms);
		pthread_mutex_lock(&d->lock);
		d->waiter = false;
		if (rc >= 0 || errno == EINTR)
			dev_events(d, pfd, rc > 0 ? n : 0);
		pthread_cond_broadcast(&d->cond);
	} else {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += budget_ms / 1000;
		ts.tv_nsec += (long)(budget_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&d->cond, &d->lock, &ts);
	}
}

int gvfe_dev_poll(struct gv_device *d, int qi, int timeout_ms)
{
	long long start = gv_now_ms(), deadline = start + (timeout_ms < 0 ? 0 : timeout_ms);
	unsigned gen;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	if (qi >= (int)d->nq || !d->q[qi < 0 ? 0 : qi].vq) {
		pthread_mutex_unlock(&d->lock);
		return qi >= (int)d->nq ? -EINVAL : -EIO;
	}
	gen = d->reattach_gen;
	reap(d, qi);
	for (;;) {
		long long now;

		if (has_done(d, qi))
			break;
		if (d->broken) {
			rc = -EIO;
			break;
		}
		/* Re-enable interrupts, then re-check: a completion that landed
		 * before the device saw the flag would raise no event. */
		if (!enable_cb(d, qi)) {
			reap(d, qi);
			continue;
		}
		wait_once(d, wait_budget(d, timeout_ms, deadline, gv_now_ms()));
		/* Attached again after a restore (in this thread or another):
		 * the requests were issued anew on every queue; the caller
		 * looks at its own again (and asks gv_device_fd again). */
		if (d->reattach_gen != gen)
			break;
		reap(d, qi);
		if (has_done(d, qi))
			break;
		now = gv_now_ms();
		check_io_timeout(d, now);
		if (d->reattach_gen != gen)
			break;
		if (d->broken) {
			rc = -EIO;
			break;
		}
		if (timeout_ms >= 0 && now >= deadline)
			break;
		/* No deadline and nothing in flight: nothing can complete, so
		 * waiting longer than one request's bound would be for ever. */
		if (timeout_ms < 0 && !gvfe_dev_in_flight(d) && now - start >= d->io_timeout_ms)
			break;
	}
	/* What finished runs first; -EIO only when nothing did. */
	{
		int n = gvfe_dev_unlock_run_done(d, qi);

		return n ? n : rc;
	}
}

int gv_poll(struct gv_device *d, int timeout_ms)
{
	return gvfe_dev_poll(d, -1, timeout_ms);
}

int gv_poll_queue(struct gv_device *d, unsigned q, int timeout_ms)
{
	if (q >= d->nq)
		return -EINVAL;
	return gvfe_dev_poll(d, (int)q, timeout_ms);
}
