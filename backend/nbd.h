/*
 * backend/nbd.h: a disk served from an NBD server through libnbd (nbd.c):
 * nbd://HOST[:PORT][/EXPORT] or nbd+unix:///EXPORT?socket=PATH.
 */
#ifndef GVBE_NBD_H
#define GVBE_NBD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gvbe_req;
struct gvbe_nbd;

#define GVBE_NBD_CONNECT_MS 5000        /* connecting and the handshake, at most */

/* true if path is meant as an NBD URI (nbd:, nbd+unix:, ... any "nbd" scheme) */
bool gvbe_nbd_is_uri(const char *path);
/* Checks the URI's syntax (scheme nbd or nbd+unix, a host or a socket=
 * path, a port number). 0, or -EINVAL with err set. */
int  gvbe_nbd_check_uri(const char *uri, char *err, size_t errlen);
/* Starts the disk's I/O thread, which connects first (at most
 * GVBE_NBD_CONNECT_MS, or until the handle is closed): the caller never
 * waits for the server. notify_efd (-1: none) is written once when the
 * connection is made or failed; then gvbe_nbd_connected says which. 0, or
 * negative errno with err set (a bad URI, no memory). */
int  gvbe_nbd_start(const char *uri, bool ro, int notify_efd, struct gvbe_nbd **out,
                    char *err, size_t errlen);
struct gvbe_nbd_info;
/* -EINPROGRESS while connecting; 0 and *info once connected; else negative
 * errno with err set (close the handle). */
int  gvbe_nbd_connected(struct gvbe_nbd *n, struct gvbe_nbd_info *info, char *err,
                        size_t errlen);
/* Connects (at most GVBE_NBD_CONNECT_MS, waiting) and starts the disk's I/O thread;
 * completions are signalled on done_efd (-1: none, the caller polls). On
 * success fills the size in bytes and what the server can do. */
struct gvbe_nbd_info {
	uint64_t size;
	bool ro, can_flush, can_trim, can_zero;
};
int  gvbe_nbd_open(const char *uri, bool ro, int done_efd, struct gvbe_nbd **out,
                   struct gvbe_nbd_info *info, char *err, size_t errlen);
/* Connects and disconnects (for --check-config). */
int  gvbe_nbd_probe(const char *uri, bool ro, char *err, size_t errlen);
/* Sets the eventfd signalled on completions (after open). */
void gvbe_nbd_set_efd(struct gvbe_nbd *n, int done_efd);
/* Queues r (its kind, iov or ranges set by blk.c) for the I/O thread. */
void gvbe_nbd_queue(struct gvbe_nbd *n, struct gvbe_req *r);
/* Hands the queued requests to the I/O thread (one wake-up a batch). */
void gvbe_nbd_submit(struct gvbe_nbd *n);
/* Completes the finished requests (gvbe_req_complete); returns how many. */
unsigned gvbe_nbd_reap(struct gvbe_nbd *n);
unsigned gvbe_nbd_inflight(const struct gvbe_nbd *n);
/* Waits at most timeout_ms for every request to complete (reaping them);
 * returns the number still in flight. */
unsigned gvbe_nbd_quiesce(struct gvbe_nbd *n, int timeout_ms);
/* Stops the thread and disconnects. The requests must have been quiesced. */
void gvbe_nbd_close(struct gvbe_nbd *n);
/* true once the connection is gone (every request fails from then on) */
bool gvbe_nbd_dead(const struct gvbe_nbd *n);

#endif
