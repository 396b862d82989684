/*
 * frontend/io.c: the device's event loop: event channels (queue interrupts,
 * the device channel that carries liveness), the xenstore watch on the
 * backend, reaping completions with notification suppression, and the one
 * place where the device turns broken and its requests fail with -EIO.
 */
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "barrier.h"
#include "device.h"
#include "log.h"

void gvfe_dev_backend_changed(struct gv_device *d);     /* transport.c */
void gvfe_dev_backend_vanished(struct gv_device *d);    /* transport.c */

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

	if (!d->vq || !d->complete)
		return;
	while ((token = gvfe_vq_detach_unused(d->vq)))
		d->complete(d, token, 0, -EIO);
	if (d->virtio_id == VIRTIO_ID_BLOCK)
		gvfe_blk_pump(d);     /* fails what was waiting to be issued */
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
		return 0;
	}
	if (!d->backend_seen_alive)
		return 0;           /* not mapped yet: nothing to conclude */
	if (d->closing)
		return -EPIPE;      /* step 6 unmaps it too: not a death while closing */
	if (!d->broken)
		gvfe_dev_backend_vanished(d);
	return -EPIPE;
}

void gvfe_dev_reap(struct gv_device *d)
{
	void *token;
	uint32_t len;
	int rc;

	if (!d->vq)
		return;
	while ((rc = gvfe_vq_get_buf(d->vq, &token, &len)) == 1)
		d->complete(d, token, len, 0);
	if (rc < 0 && !d->broken)
		dev_fail_quiet(d, "the backend broke virtqueue %u (see the line above)", d->vq->index);
	if (d->virtio_id == VIRTIO_ID_BLOCK)
		gvfe_blk_pump(d);
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
		if (changed)
			gvfe_dev_backend_changed(d);
	}
	/* The device channel also carries the backend's death notice: a
	 * cheap re-read of its liveness byte on every wake-up covers it. */
	gvfe_dev_check_backend(d);
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int gv_poll(struct gv_device *d, int timeout_ms)
{
	long long deadline = timeout_ms < 0 ? 0 : now_ms() + timeout_ms;

	d->ios_completed = 0;
	if (!d->vq)
		return -EIO;
	gvfe_vq_disable_cb(d->vq);
	gvfe_dev_reap(d);
	for (;;) {
		int left;

		if (d->ios_completed)
			return d->ios_completed;
		if (d->broken)
			return -EIO;
		/* Re-enable interrupts, then re-check: a completion that landed
		 * before the device saw the flag would raise no event. */
		if (!gvfe_vq_enable_cb(d->vq)) {
			gvfe_vq_disable_cb(d->vq);
			gvfe_dev_reap(d);
			continue;
		}
		left = timeout_ms < 0 ? -1 : (int)(deadline - now_ms());
		if (timeout_ms >= 0 && left < 0)
			left = 0;
		gvfe_dev_wait_event(d, left);
		gvfe_vq_disable_cb(d->vq);
		gvfe_dev_reap(d);
		if (!d->ios_completed && timeout_ms >= 0 && now_ms() >= deadline)
			return d->broken ? -EIO : 0;
	}
}
