/*
 * backend/rng.c: virtio-rng (virtio 1.x 5.4): fills the device-writable
 * buffers of each request from getrandom(), straight into the mapped guest
 * pages. The used length is the number of bytes filled; a request larger
 * than one mapping batch is filled only as far as fits.
 */
#include <errno.h>
#include <sys/random.h>
#include "blk.h"

static uint32_t rng_fill(struct gvbe_req *r)
{
	struct gvbe_chain *ch = r->ch;
	uint64_t pages = 0;
	uint32_t filled = 0;
	unsigned first = ch->nread, n = 0;

	/* readable buffers mean nothing to an entropy device: skip them */
	while (first + n < ch->nseg && pages + ch->seg[first + n].npages <= GVBE_REQ_MAX_PAGES)
		pages += ch->seg[first + n++].npages;
	if (!n || gvbe_req_map(r, first, n) < 0)
		return 0;
	for (unsigned s = first; s < first + n; s++) {
		struct iovec iov[GVBE_REQ_MAX_PAGES];
		int niov = gvbe_req_iov(r, s, 0, ch->seg[s].len, iov, GVBE_REQ_MAX_PAGES);

		for (int k = 0; k < niov; k++) {
			char *p = iov[k].iov_base;
			size_t left = iov[k].iov_len;

			while (left) {
				ssize_t got = getrandom(p, left, 0);

				if (got < 0 && errno == EINTR)
					continue;
				if (got <= 0)
					return filled;
				p += got;
				left -= (size_t)got;
				filled += (uint32_t)got;
			}
		}
	}
	return filled;
}

uint32_t gvbe_rng_handle(void *ctx, struct gvbe_req *r)
{
	uint32_t filled = rng_fill(r);

	(void)ctx;
	/* nothing filled: no writable buffer, or getrandom failed */
	gvbe_qstats_request(&r->vq->st, GVBE_STAT_READ, filled, !filled);
	return filled;
}
