/*
 * backend/qthread.h: a thread per queue (qthread.c), gv-backend
 * --queue-threads.
 *
 * Without it the daemon's one loop serves every queue of every device.
 * With it each queue of a block device (not an NBD disk, whose connection
 * is one for all its queues) is served by a thread of its own, with a
 * platform handle of its own (platform.h: a handle is used by one thread
 * at a time): the queue's rings, in-flight record and request pages are
 * mapped, and its event channel bound, through that handle, so the thread
 * takes kicks, maps, grant-copies, does the I/O (the queue's own io_uring)
 * and notifies without the loop. The loop keeps the rest: xenstore, the
 * device's liveness channel, the control socket, and every teardown.
 *
 * Ownership, in order:
 *   gvbe_qthread_create   the loop opens the handle; it maps and binds the
 *                         queue through it (gvbe_qthread_platform) while no
 *                         thread runs;
 *   gvbe_qthread_start    the thread owns the queue (vq, its blk queue and
 *                         map cache) from now on; the loop reads its
 *                         counters only under gvbe_qthread_lock;
 *   gvbe_qthread_stop     the thread stops serving and waits, alive: the
 *                         loop owns the queue again (drains, quiesces,
 *                         unmaps through the handle); the thread must live
 *                         until its io_uring is empty, since Linux cancels
 *                         an exiting task's io_uring work;
 *   gvbe_qthread_destroy  joins the thread, closes the handle (after every
 *                         unmap) and frees. A queue whose I/O never ends
 *                         keeps its thread and handle until the process exits.
 * A queue the thread finds broken (a corrupt ring) is only marked: the
 * thread writes the daemon's eventfd and the loop breaks the device.
 */
#ifndef GVBE_QTHREAD_H
#define GVBE_QTHREAD_H

#include <stdbool.h>
#include <stddef.h>
#include "platform.h"

struct gvbe_vq;
struct gvbe_blk_queue;
struct gvbe_qthread;

/* A handle opened with popts for the domain self, and the eventfd the
 * queue's io_uring will signal. notify_efd: written once when the queue
 * breaks. 0 or negative errno with err set. */
int  gvbe_qthread_create(const struct gv_platform_opts *popts, domid_t self, int notify_efd,
                         struct gvbe_qthread **out, char *err, size_t errlen);
struct gv_platform *gvbe_qthread_platform(struct gvbe_qthread *t);
/* The eventfd for the queue's io_uring completions (gvbe_blk_start_aio). */
int  gvbe_qthread_aio_efd(const struct gvbe_qthread *t);
/* Starts the thread serving vq (whose port is bound on the thread's
 * handle) and bq (NULL: no block I/O of its own); it serves what is in the
 * ring already first. poll_us: gv-backend --poll-us. 0 or negative errno
 * (then nothing runs and the loop still owns the queue). */
int  gvbe_qthread_start(struct gvbe_qthread *t, struct gvbe_vq *vq, struct gvbe_blk_queue *bq,
                        unsigned poll_us);
/* Stops the thread serving (no-op if not running): when it returns the
 * thread touches nothing of the queue, and stays alive (parked) until
 * gvbe_qthread_destroy. What it left in flight stays in the queue's
 * io_uring for the caller. */
void gvbe_qthread_stop(struct gvbe_qthread *t);
/* True once the thread found the queue broken (vq->why says why). */
bool gvbe_qthread_broken(const struct gvbe_qthread *t);
/* Held by the thread while it serves; the loop takes it to read the
 * queue's counters (status) or change what the queue reads (a resize). */
void gvbe_qthread_lock(struct gvbe_qthread *t);
void gvbe_qthread_unlock(struct gvbe_qthread *t);
/* The handle's counters (under the lock while the thread runs). */
void gvbe_qthread_counters(struct gvbe_qthread *t, struct gv_counters *c);
/* Stops and joins the thread, adds its handle's counters to *retired (may be NULL),
 * closes the handle (what is still mapped or bound through it goes with
 * it) and frees t. NULL: no-op. */
void gvbe_qthread_destroy(struct gvbe_qthread *t, struct gv_counters *retired);
/* Adds b's counters to a. */
void gvbe_counters_add(struct gv_counters *a, const struct gv_counters *b);

#endif
