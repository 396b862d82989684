/*
 * backend/qthread.c: a thread per queue (qthread.h says who owns what).
 *
 * The thread's loop is the daemon's loop cut down to one queue: poll its
 * handle's event channel (the queue's kicks), its io_uring's eventfd and a
 * stop eventfd; serve the ring (one batch of the queue's size, submitted in
 * one io_uring_enter), reap, publish, unmask the port after serving (a kick
 * during the pass re-arms it). It never waits for anything but poll.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "blk.h"
#include "log.h"
#include "qthread.h"
#include "stats.h"
#include "vring.h"

struct gvbe_qthread {
	struct gv_platform *p;
	int aio_efd, stop_efd, notify_efd;
	pthread_t tid;
	bool running;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool parked, exit_req;          /* under lock: stopped serving; may return */
	struct gvbe_vq *vq;
	struct gvbe_blk_queue *bq;
	unsigned poll_us;
	bool broken;                    /* __atomic: set by the thread, read by the loop */
};

void gvbe_counters_add(struct gv_counters *a, const struct gv_counters *b)
{
	a->grants_active += b->grants_active;
	a->grants_leaked += b->grants_leaked;
	a->maps_active += b->maps_active;
	a->maps_done += b->maps_done;
	a->unmaps_done += b->unmaps_done;
	a->map_calls += b->map_calls;
	a->events_sent += b->events_sent;
	a->events_received += b->events_received;
}

int gvbe_qthread_create(const struct gv_platform_opts *popts, domid_t self, int notify_efd,
                        struct gvbe_qthread **out, char *err, size_t errlen)
{
	struct gvbe_qthread *t = calloc(1, sizeof(*t));
	struct gv_platform_opts o = *popts;
	char perr[200];
	int rc;

	*out = NULL;
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	t->aio_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	t->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->aio_efd < 0 || t->stop_efd < 0) {
		rc = -errno;
		snprintf(err, errlen, "a queue thread's eventfd: %s", strerror(-rc));
		goto fail;
	}
	/* the same platform as the loop's, as the same domain */
	o.sim_domid = self;
	rc = gv_platform_open(&o, &t->p, perr, sizeof(perr));
	if (rc < 0) {
		snprintf(err, errlen, "a queue thread's platform handle: %s", perr);
		goto fail;
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	t->notify_efd = notify_efd;
	*out = t;
	return 0;
fail:
	if (t->aio_efd >= 0)
		close(t->aio_efd);
	if (t->stop_efd >= 0)
		close(t->stop_efd);
	free(t);
	return rc;
}

struct gv_platform *gvbe_qthread_platform(struct gvbe_qthread *t)
{
	return t->p;
}

int gvbe_qthread_aio_efd(const struct gvbe_qthread *t)
{
	return t->aio_efd;
}

static void drain_efd(int fd)
{
	uint64_t n;

	if (read(fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: someone read it already; nothing else can fail here */
	}
}

/* Completes what the queue's I/O finished and shows it to the driver. */
static void reap(struct gvbe_qthread *t)
{
	if (t->bq && gvbe_blk_async(t->bq) && gvbe_blk_reap(t->bq))
		gvbe_vq_publish(t->vq);
}

/* The queue cannot be served any more (vq->why says why): the loop is
 * told, and breaks the device. */
static void broke(struct gvbe_qthread *t)
{
	uint64_t one = 1;

	__atomic_store_n(&t->broken, true, __ATOMIC_RELEASE);
	if (write(t->notify_efd, &one, sizeof(one)) < 0) {
		/* a full counter still wakes the loop */
	}
}

/* One batch of the ring; false once the queue is broken. */
static bool serve(struct gvbe_qthread *t)
{
	if (gvbe_vq_serve(t->vq, t->vq->num) == -EPROTO) {
		broke(t);
		return false;
	}
	if (t->bq && gvbe_blk_async(t->bq)) {
		gvbe_blk_submit(t->bq);
		reap(t);
	}
	return true;
}

/* --poll-us: look at the ring and the io_uring for up to poll_us before
 * sleeping, while I/O is in flight. True if work came. */
static bool poll_briefly(struct gvbe_qthread *t)
{
	uint64_t end;

	if (!t->poll_us || !t->bq || !gvbe_blk_inflight(t->bq))
		return false;
	end = gvbe_now_ns() + (uint64_t)t->poll_us * 1000;
	while (gvbe_now_ns() < end) {
		if (gvbe_blk_ready(t->bq))
			return true;
		if (t->vq->avail->idx != t->vq->last_avail) {
			t->vq->more = true;     /* a hint: serving reads the index again */
			return true;
		}
	}
	return false;
}

/* Stopped: tells the loop, and waits (serving nothing) until it may
 * return. The thread must outlive what it submitted: Linux cancels a
 * task's io_uring work when the task exits (a buffered read then fails
 * EFAULT under the loop's drain at a hand-over, seen in test_restart.sh). */
static void *park(struct gvbe_qthread *t)
{
	pthread_mutex_lock(&t->lock);
	t->parked = true;
	pthread_cond_broadcast(&t->cond);
	while (!t->exit_req)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

static void *qthread_main(void *arg)
{
	struct gvbe_qthread *t = arg;
	struct gvbe_vq *vq = t->vq;
	bool ok;
	struct pollfd pfd[3] = {
		{ gv_evtchn_fd(t->p), POLLIN, 0 }, { t->aio_efd, POLLIN, 0 }, { t->stop_efd, POLLIN, 0 },
	};

	/* requests queued before the queue was connected got no kick we saw */
	pthread_mutex_lock(&t->lock);
	ok = serve(t);
	pthread_mutex_unlock(&t->lock);
	while (ok) {
		bool more = vq->more || poll_briefly(t);

		if (poll(pfd, 3, more ? 0 : -1) < 0) {
			if (errno == EINTR)
				continue;
			pthread_mutex_lock(&t->lock);
			vq->broken = true;
			snprintf(vq->why, sizeof(vq->why), "queue %u's thread: poll: %s", vq->index,
			         strerror(errno));
			pthread_mutex_unlock(&t->lock);
			broke(t);
			break;
		}
		if (pfd[2].revents & POLLIN)
			return park(t);
		pthread_mutex_lock(&t->lock);
		if (pfd[1].revents & POLLIN) {
			/* completions first: they free slots and are what the guest waits for */
			drain_efd(t->aio_efd);
			reap(t);
		} else if (more && t->bq && gvbe_blk_ready(t->bq)) {
			reap(t);
		}
		if (pfd[0].revents & POLLIN) {
			evtchn_port_t port;

			/* only this queue's port is bound on the handle */
			while (ok && gv_evtchn_pending(t->p, &port) == 1) {
				vq->kicks++;
				ok = serve(t);
				gv_evtchn_unmask(t->p, port);
			}
		} else if (vq->more) {
			ok = serve(t);
		}
		pthread_mutex_unlock(&t->lock);
	}
	/* broken: the loop tears the device down; wait to be stopped */
	pfd[2].events = POLLIN;
	while (poll(&pfd[2], 1, -1) < 0 && errno == EINTR)
		;
	return park(t);
}

int gvbe_qthread_start(struct gvbe_qthread *t, struct gvbe_vq *vq, struct gvbe_blk_queue *bq,
                       unsigned poll_us)
{
	int rc;

	if (t->running)
		return -EBUSY;
	t->vq = vq;
	t->bq = bq;
	t->poll_us = poll_us;
	t->broken = false;
	t->parked = t->exit_req = false;
	drain_efd(t->stop_efd);
	rc = pthread_create(&t->tid, NULL, qthread_main, t);
	if (rc)
		return -rc;
	t->running = true;
	return 0;
}

void gvbe_qthread_stop(struct gvbe_qthread *t)
{
	uint64_t one = 1;

	if (!t || !t->running)
		return;
	if (write(t->stop_efd, &one, sizeof(one)) < 0) {
		/* cannot fail: the counter is read before each start */
	}
	pthread_mutex_lock(&t->lock);
	while (!t->parked)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
}

/* Lets a stopped thread return, and joins it. */
static void qthread_join(struct gvbe_qthread *t)
{
	if (!t->running)
		return;
	gvbe_qthread_stop(t);
	pthread_mutex_lock(&t->lock);
	t->exit_req = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->tid, NULL);
	t->running = false;
}

bool gvbe_qthread_broken(const struct gvbe_qthread *t)
{
	return t && __atomic_load_n(&t->broken, __ATOMIC_ACQUIRE);
}

void gvbe_qthread_lock(struct gvbe_qthread *t)
{
	if (t)
		pthread_mutex_lock(&t->lock);
}

void gvbe_qthread_unlock(struct gvbe_qthread *t)
{
	if (t)
		pthread_mutex_unlock(&t->lock);
}

void gvbe_qthread_counters(struct gvbe_qthread *t, struct gv_counters *c)
{
	gvbe_qthread_lock(t);
	*c = t->p->ctr;
	gvbe_qthread_unlock(t);
}

void gvbe_qthread_destroy(struct gvbe_qthread *t, struct gv_counters *retired)
{
	if (!t)
		return;
	qthread_join(t);
	if (retired)
		gvbe_counters_add(retired, &t->p->ctr);
	gv_platform_close(t->p);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
	close(t->aio_efd);
	close(t->stop_efd);
	free(t);
}
