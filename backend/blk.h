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

struct gvbe_blk {
	int fd;
	bool ro;
	uint64_t capacity;              /* sectors */
	char id[21];                    /* GET_ID answer, NUL padded */
};
int  gvbe_blk_open(struct gvbe_blk *b, const char *path, bool ro, unsigned devid,
                   char *err, size_t errlen);
void gvbe_blk_close(struct gvbe_blk *b);

/* What a request asks of the backing store, once parsed and mapped. */
enum { GVBE_BLK_DONE, GVBE_BLK_READ, GVBE_BLK_WRITE, GVBE_BLK_FLUSH };
struct gvbe_blk_io {
	uint64_t off, len;              /* READ/WRITE: bytes of the image */
	int niov;                       /* READ/WRITE: r->iov[0..niov) */
	uint8_t status;                 /* DONE: the answer */
	uint32_t written;               /* DONE: data bytes written (GET_ID) */
};
/* Parses and maps request r (the framing rules are in blk.c); returns what
 * to do. DONE: answer io->status at once (gvbe_blk_finish). */
int  gvbe_blk_prepare(struct gvbe_blk *b, struct gvbe_req *r, struct gvbe_blk_io *io);
/* Writes status into the last writable byte; returns the used length
 * (data_written + 1, or less if there is nowhere to put it). */
uint32_t gvbe_blk_finish(struct gvbe_req *r, uint8_t status, uint32_t data_written);
/* The synchronous handler: serves r with pread/pwrite/fdatasync. */
uint32_t gvbe_blk_handle(void *ctx, struct gvbe_req *r);
uint32_t gvbe_rng_handle(void *ctx, struct gvbe_req *r);

#endif
