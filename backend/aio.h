/*
 * backend/aio.h: asynchronous I/O on the backing store through io_uring
 * (liburing), one ring per queue (aio.c).
 *
 * A device type queues operations (gvbe_aio_sqe + liburing's io_uring_prep_*),
 * submits the batch in one io_uring_enter (gvbe_aio_submit), and learns of
 * completions through gvbe_aio_reap, which calls each operation's done
 * callback. The ring is the queue's own, so IOSQE_IO_DRAIN (a FLUSH after
 * the writes it covers) never waits for another device or queue, and a slow
 * backing store holds only its own device's requests. A shared eventfd
 * (registered on the rings of the loop's queues; a queue thread's ring has
 * its own) wakes the loop when any ring has completions.
 */
#ifndef GVBE_AIO_H
#define GVBE_AIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct io_uring_sqe;
struct gvbe_aio;

struct gvbe_aio_op {
	void (*done)(struct gvbe_aio_op *op, int res);   /* res: bytes or -errno */
};

/* A ring for up to entries operations in flight; eventfd (or -1) is
 * signalled on completions. 0, or negative errno with err set (the caller
 * falls back to synchronous I/O). */
int  gvbe_aio_create(unsigned entries, int eventfd, struct gvbe_aio **out,
                     char *err, size_t errlen);
/* Cancels what is in flight and waits for every completion (calling done),
 * at most timeout_ms in all; then frees. Returns the number of operations
 * still in flight when the time ran out (then the ring is NOT freed: their
 * buffers may still be written; the caller must keep them mapped). */
unsigned gvbe_aio_destroy(struct gvbe_aio *a, int timeout_ms);
/* A submission entry for op (user data set), submitting the queued ones
 * first if the submission queue is full. NULL if the ring is full of work
 * in flight (the caller answers the request with an error). */
struct io_uring_sqe *gvbe_aio_sqe(struct gvbe_aio *a, struct gvbe_aio_op *op);
/* Submits every queued entry in one io_uring_enter. */
int  gvbe_aio_submit(struct gvbe_aio *a);
/* Calls done for every completion waiting; returns how many. Never blocks. */
unsigned gvbe_aio_reap(struct gvbe_aio *a);
/* Waits at most timeout_ms for one completion, then reaps (tests). */
unsigned gvbe_aio_wait(struct gvbe_aio *a, int timeout_ms);
unsigned gvbe_aio_inflight(const struct gvbe_aio *a);
/* Completions waiting to be reaped (reads the ring only: no system call). */
unsigned gvbe_aio_ready(struct gvbe_aio *a);

#endif
