/*
 * backend/blk.h: the device types' request handlers: virtio-blk from an image file
 * or block device (blk.c), virtio-rng from getrandom (rng.c).
 */
#ifndef GVBE_BLK_H
#define GVBE_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vring.h"

#define GVBE_BLK_SEG_MAX      32u    /* config/seg-max */
#define GVBE_BLK_SIZE_MAX     65536u /* config/size-max */
/* DISCARD and WRITE_ZEROES (config/max-discard-*, max-write-zeroes-*) */
#define GVBE_BLK_RANGE_SEG_MAX   GVBE_REQ_MAX_RANGES
#define GVBE_BLK_RANGE_SECTORS   (1u << 22)   /* 2 GiB a segment */
#define GVBE_BLK_DISCARD_ALIGN   8u           /* sectors: the file system's 4 KiB block */

struct gvbe_aio;
struct gvbe_nbd;

struct gvbe_blk {
	int fd;                         /* buffered */
	int fd_direct;                  /* O_DIRECT, or -1 (option buffered, or refused) */
	unsigned dio_align;             /* O_DIRECT needs offset, address and length aligned */
	bool ro;
	bool is_bdev;                   /* a block device (else a regular file) */
	bool in_memory;                 /* on tmpfs: served in the loop, never waits */
	uint8_t *map;                   /* in_memory: the image mapped (MAP_SHARED), or NULL */
	uint64_t map_len;               /* bytes mapped: the size at open */
	bool map_off;                   /* __atomic: the mapping faulted (the image was
	                                   truncated): read and write with syscalls */
	uint64_t capacity;              /* sectors */
	char id[21];                    /* GET_ID answer, NUL padded */
	bool nowait_off;                      /* every transfer through io_uring (tests) */
	bool discard_ok, zeroes_ok;           /* VIRTIO_BLK_F_DISCARD / _WRITE_ZEROES offered */
	struct gvbe_nbd *nbd;                 /* an NBD disk (nbd.c): fd is -1 */
	bool nbd_async;                       /* its completions signalled to the loop */
	bool nbd_connecting;                  /* its thread is connecting (open_nowait) */
};
/* One queue's side of the disk: its own io_uring and counters, the
 * request handler's context. A queue is served by one thread at a time
 * (the daemon's loop, or the queue's own thread: qthread.c), so nothing
 * here is shared; the struct gvbe_blk all the queues of a disk share is
 * only read while they are served (a resize takes every queue's lock). An
 * NBD disk has one connection for all its queues: each queue's calls
 * reach it (its thread is the only one that touches it). */
struct gvbe_blk_queue {
	struct gvbe_blk *disk;
	struct gvbe_aio *aio;           /* io_uring while connected; NULL: synchronous */
	bool direct_off;                /* the image refused O_DIRECT once: buffered from then on */
	uint64_t direct_ios, buffered_ios;     /* transfers on each descriptor */
	uint64_t nowait_ios;                  /* buffered ones done at once (page cache) */
	uint64_t discards, zeroes;            /* ranges given back / zeroed */
};
struct gvbe_blk_opts {
	bool ro;
	bool buffered;                  /* never O_DIRECT (default: O_DIRECT when aligned) */
};
/* path: an image file, a block device, or an NBD URI (nbd.h). */
int  gvbe_blk_open(struct gvbe_blk *b, const char *path, const struct gvbe_blk_opts *o,
                   unsigned devid, char *err, size_t errlen);
/* The same without waiting for an NBD server (anything else is opened as
 * above): -EINPROGRESS, the connection made by the disk's own thread, which
 * writes notify_efd when it is made or failed; then gvbe_blk_open_finish. */
int  gvbe_blk_open_nowait(struct gvbe_blk *b, const char *path, const struct gvbe_blk_opts *o,
                          unsigned devid, int notify_efd, char *err, size_t errlen);
/* 0: open (at once for anything but a connecting NBD disk); -EINPROGRESS:
 * still connecting; else negative errno with err set, b closed. */
int  gvbe_blk_open_finish(struct gvbe_blk *b, const char *path, unsigned devid,
                          char *err, size_t errlen);
/* The image's size now, in sectors (fstat, BLKGETSIZE64): for an online
 * resize. -ENOTSUP for an NBD disk (a server tells its size only when a
 * client connects), else 0 or negative errno. b->capacity is not changed. */
int  gvbe_blk_current_size(const struct gvbe_blk *b, uint64_t *sectors);
void gvbe_blk_close(struct gvbe_blk *b);

/* ---- one queue of the disk ---- */
void gvbe_blk_queue_init(struct gvbe_blk_queue *q, struct gvbe_blk *b);
/* Asynchronous I/O for up to entries requests of this queue in flight (its
 * own io_uring: a FLUSH waits only for the writes of its queue that came
 * before it, IOSQE_IO_DRAIN being per ring), completions signalled on
 * eventfd. 0, or negative errno with err set: then the queue's requests
 * are served synchronously (the caller logs it). */
int  gvbe_blk_start_aio(struct gvbe_blk_queue *q, unsigned entries, int eventfd,
                        char *err, size_t errlen);
/* Requests may complete later (io_uring, or an NBD disk's thread): the
 * caller reaps on the completion eventfd. */
bool gvbe_blk_async(const struct gvbe_blk_queue *q);
unsigned gvbe_blk_inflight(const struct gvbe_blk_queue *q);
/* Completions waiting (a hint, without a system call). */
bool gvbe_blk_ready(const struct gvbe_blk_queue *q);
/* Submits the requests queued since the last call (one io_uring_enter). */
void gvbe_blk_submit(struct gvbe_blk_queue *q);
/* Completes the requests whose I/O finished (gvbe_req_complete); the caller
 * publishes the queues. Returns how many. */
unsigned gvbe_blk_reap(struct gvbe_blk_queue *q);
/* Before the queue and its mappings go: cancels and waits for the I/O in
 * flight (at most timeout_ms), completing its requests, and stops
 * asynchronous I/O. Returns the number still in flight when time ran out
 * (their pages must then stay mapped: the caller leaks them knowingly). */
unsigned gvbe_blk_quiesce(struct gvbe_blk_queue *q, int timeout_ms);
/* The hand-over (SIGTERM): waits (at most timeout_ms) for the I/O in flight
 * to finish, completing its requests (gvbe_req_complete); cancels nothing.
 * The caller publishes the queues. Returns the number still in flight. */
unsigned gvbe_blk_drain(struct gvbe_blk_queue *q, int timeout_ms);

/* What a request asks of the backing store, once parsed and mapped. */
enum { GVBE_BLK_DONE, GVBE_BLK_READ, GVBE_BLK_WRITE, GVBE_BLK_FLUSH, GVBE_BLK_DISCARD,
       GVBE_BLK_WRITE_ZEROES };
struct gvbe_blk_io {
	uint64_t off, len;              /* READ/WRITE: bytes of the image */
	int niov;                       /* READ/WRITE: r->iov[0..niov) */
	uint8_t status;                 /* DONE: the answer */
	uint32_t written;               /* DONE: data bytes written (GET_ID) */
};
/* Parses and maps request r (the framing rules are in blk.c); returns what
 * to do. DONE: answer io->status at once (gvbe_blk_finish). DISCARD and
 * WRITE_ZEROES: the validated ranges are in r->range[0..nrange). */
int  gvbe_blk_prepare(struct gvbe_blk *b, struct gvbe_req *r, struct gvbe_blk_io *io);
/* Writes status into the last writable byte; returns the used length
 * (data_written + 1, or less if there is nowhere to put it). */
uint32_t gvbe_blk_finish(struct gvbe_req *r, uint8_t status, uint32_t data_written);
/* The request handler (ctx: the queue's struct gvbe_blk_queue): serves r
 * through the queue's io_uring, or with pread/pwrite/fdatasync without one. */
uint32_t gvbe_blk_handle(void *ctx, struct gvbe_req *r);
uint32_t gvbe_rng_handle(void *ctx, struct gvbe_req *r);

#endif
