/* backend/aio.c: see aio.h. */
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "aio.h"

struct gvbe_aio {
	struct io_uring ring;
	unsigned entries;
	unsigned inflight;              /* prepared or submitted, not yet reaped */
	unsigned queued;                /* prepared, not yet submitted */
};

int gvbe_aio_create(unsigned entries, int eventfd, struct gvbe_aio **out,
                    char *err, size_t errlen)
{
	struct gvbe_aio *a = calloc(1, sizeof(*a));
	struct io_uring_params prm;
	int rc;

	if (!a) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memset(&prm, 0, sizeof(prm));
	/* completions may outnumber the submission queue: twice as many CQEs,
	 * and the kernel keeps any overflow (IORING_FEAT_NODROP) */
	prm.flags = IORING_SETUP_CQSIZE;
	prm.cq_entries = 2 * entries;
	rc = io_uring_queue_init_params(entries, &a->ring, &prm);
	if (rc < 0) {
		snprintf(err, errlen, "io_uring_queue_init(%u): %s", entries, strerror(-rc));
		free(a);
		return rc;
	}
	if (eventfd >= 0) {
		rc = io_uring_register_eventfd(&a->ring, eventfd);
		if (rc < 0) {
			snprintf(err, errlen, "io_uring_register_eventfd: %s", strerror(-rc));
			io_uring_queue_exit(&a->ring);
			free(a);
			return rc;
		}
	}
	a->entries = entries;
	*out = a;
	return 0;
}

struct io_uring_sqe *gvbe_aio_sqe(struct gvbe_aio *a, struct gvbe_aio_op *op)
{
	struct io_uring_sqe *sqe;

	if (a->inflight >= a->entries)
		return NULL;
	sqe = io_uring_get_sqe(&a->ring);
	if (!sqe) {
		gvbe_aio_submit(a);
		sqe = io_uring_get_sqe(&a->ring);
		if (!sqe)
			return NULL;
	}
	io_uring_sqe_set_data(sqe, op);
	a->inflight++;
	a->queued++;
	return sqe;
}

int gvbe_aio_submit(struct gvbe_aio *a)
{
	int rc;

	if (!a->queued)
		return 0;
	do
		rc = io_uring_submit(&a->ring);
	while (rc == -EINTR);
	if (rc >= 0)
		a->queued = 0;
	return rc < 0 ? rc : 0;
}

unsigned gvbe_aio_reap(struct gvbe_aio *a)
{
	struct io_uring_cqe *cqe;
	unsigned n = 0;

	while (io_uring_peek_cqe(&a->ring, &cqe) == 0) {
		struct gvbe_aio_op *op = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&a->ring, cqe);
		n++;
		if (!op)
			continue;       /* a cancel request's own completion */
		a->inflight--;
		op->done(op, res);  /* may queue more (a short transfer's rest) */
	}
	return n;
}

unsigned gvbe_aio_wait(struct gvbe_aio *a, int timeout_ms)
{
	struct __kernel_timespec ts = { timeout_ms / 1000, (long long)(timeout_ms % 1000) * 1000000 };
	struct io_uring_cqe *cqe;

	gvbe_aio_submit(a);
	if (io_uring_wait_cqe_timeout(&a->ring, &cqe, &ts) < 0)
		return 0;
	return gvbe_aio_reap(a);
}

unsigned gvbe_aio_ready(struct gvbe_aio *a)
{
	return a ? io_uring_cq_ready(&a->ring) : 0;
}

unsigned gvbe_aio_inflight(const struct gvbe_aio *a)
{
	return a ? a->inflight : 0;
}

unsigned gvbe_aio_destroy(struct gvbe_aio *a, int timeout_ms)
{
	struct io_uring_sqe *sqe;
	int waited = 0;

	if (!a)
		return 0;
	gvbe_aio_submit(a);
	if (a->inflight) {
		/* cancel what has not started; the rest completes on its own */
		sqe = io_uring_get_sqe(&a->ring);
		if (sqe) {
			io_uring_prep_cancel(sqe, NULL, IORING_ASYNC_CANCEL_ANY);
			io_uring_sqe_set_data(sqe, NULL);
			io_uring_submit(&a->ring);
		}
	}
	while (a->inflight && waited < timeout_ms) {
		/* at most 100 ms a turn, so the bound holds whatever completes */
		if (!gvbe_aio_wait(a, 100))
			waited += 100;
	}
	if (a->inflight)
		return a->inflight;
	io_uring_queue_exit(&a->ring);
	free(a);
	return 0;
}
