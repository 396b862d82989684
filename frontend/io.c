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
	/* Stop the ring without a second log line: nothing more is added. */
	if (d->vq)
		d->vq->broken = true;
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

	if (!d->drv || !d->drv_priv)
		return;
	while (d->vq && (token = gvfe_vq_detach_unused(d->vq)))
		d->drv->complete(d, token, 0, -EIO);
	if (d->drv->pump)
		d->drv->pump(d);    /* fails what was waiting to be issued (no queue: all) */
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
	if (d->cfg_cb)
		d->cfg_cb(d, d->cfg_cb_priv);
}

void gv_set_config_callback(struct gv_device *d, void (*cb)(struct gv_device *d, void *priv),
                            void *priv)
{
	d->cfg_cb = cb;
	d->cfg_cb_priv = priv;
}

unsigned gv_config_changes(const struct gv_device *d)
{
	return d->cfg_changes;
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
	        "go on", d->devid, waited, d->vq ? gvfe_vq_in_flight(d->vq) : 0);
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
			/* On real Xen the guest got no usable watch event when the
			 * toolstack removed the backend's directory (Xen's xenstored
			 * tells of a removed node only a domain that may read its
			 * parent, it seems) and waited the whole restart timeout:
			 * look once whether the device itself is gone, which no new
			 * backend would take over */
			gvfe_dev_refresh_backend(d);
			if (d->broken)
				return -EPIPE;
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

static void reap(struct gv_device *d)
{
	void *token;
	uint32_t len;
	bool any = false;
	int rc;

	if (!d->vq)
		return;
	while ((rc = gvfe_vq_get_buf(d->vq, &token, &len)) == 1) {
		any = true;
		d->drv->complete(d, token, len, 0);
	}
	if (any) {
		d->last_progress_ms = gv_now_ms();
		d->away_spent_ms = 0;
	}
	if (rc < 0 && !d->broken)
		dev_fail_quiet(d, "the backend broke virtqueue %u (see the line above)", d->vq->index);
	if (d->drv->pump)
		d->drv->pump(d);
}

int gvfe_dev_wait_event(struct gv_device *d, int timeout_ms)
{
	struct pollfd pfd[2];
	evtchn_port_t port;
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
	/* Drain every pending port, unmasking each (a delivered port stays
	 * masked until then; events meanwhile are coalesced, not lost). */
	while (gv_evtchn_pending(d->p, &port) == 1) {
		if (port == d->vq_port)
			d->st.interrupts++;
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
	                                   : gvfe_vq_in_flight(d->vq) &&
	                                     now - d->last_progress_ms >= d->io_timeout_ms) &&
	    gvfe_dev_check_restored(d))
		return;
	if (d->backend_away && !d->broken &&
	    now - d->away_since_ms + d->away_spent_ms >= d->restart_timeout_ms) {
		gvfe_dev_fail(d, "backend went away and no backend took the device over in %d ms",
		              d->restart_timeout_ms);
		return;
	}
	if (d->broken || d->backend_away || !gvfe_vq_in_flight(d->vq) ||
	    now - d->last_progress_ms < d->io_timeout_ms)
		return;
	gvfe_dev_fail(d, "the backend completed none of %u requests in %d ms",
	              gvfe_vq_in_flight(d->vq), d->io_timeout_ms);
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
	} else if (gvfe_vq_in_flight(d->vq) && d->last_progress_ms + d->io_timeout_ms - now < left) {
		left = d->last_progress_ms + d->io_timeout_ms - now;
	}
	return left < 0 ? 0 : (int)left;
}

int gv_poll(struct gv_device *d, int timeout_ms)
{
	long long start = gv_now_ms(), deadline = start + (timeout_ms < 0 ? 0 : timeout_ms);

	d->ios_completed = 0;
	if (!d->vq)
		return -EIO;
	gvfe_vq_disable_cb(d->vq);
	reap(d);
	for (;;) {
		long long now;

		if (d->ios_completed)
			return d->ios_completed;
		if (d->broken)
			return -EIO;
		/* Re-enable interrupts, then re-check: a completion that landed
		 * before the device saw the flag would raise no event. */
		if (!gvfe_vq_enable_cb(d->vq)) {
			gvfe_vq_disable_cb(d->vq);
			reap(d);
			continue;
		}
		gvfe_dev_wait_event(d, wait_budget(d, timeout_ms, deadline, gv_now_ms()));
		if (d->broken || !d->vq)
			return -EIO;
		if (d->reattached) {
			/* attached again after a restore: the requests were issued
			 * anew; the caller looks at them again */
			d->reattached = false;
			return d->ios_completed;
		}
		gvfe_vq_disable_cb(d->vq);
		reap(d);
		if (d->ios_completed)
			return d->ios_completed;
		now = gv_now_ms();
		check_io_timeout(d, now);
		if (d->broken)
			return -EIO;
		if (timeout_ms >= 0 && now >= deadline)
			return 0;
		/* No deadline and nothing in flight: nothing can complete, so
		 * waiting longer than one request's bound would be for ever. */
		if (timeout_ms < 0 && !gvfe_vq_in_flight(d->vq) && now - start >= d->io_timeout_ms)
			return 0;
	}
}
