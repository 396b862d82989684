/*
 * backend/blk.c: virtio-blk requests (virtio 1.x 5.2.6) served from a raw
 * image file or block device with pread/pwrite.
 *
 * A request is [header (readable, 16 bytes)] [data...] [status (writable)].
 * Request-level problems (bad shape, sector out of range, too many or too
 * large segments, a grant that cannot be mapped) are answered IOERR in the
 * status byte and do not break the device. Data goes straight between the
 * file and the mapped guest pages: no private buffer is ever copied into
 * a response, so nothing stale can leak (XSA-216).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "backend.h"

#define SECTOR 512u

int gv_blk_open(struct gv_blk *b, const char *path, bool ro, unsigned devid,
                char *err, size_t errlen)
{
	struct stat st;
	uint64_t bytes;
	const char *base;
	int saved;

	memset(b, 0, sizeof(*b));
	b->fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0) {
		saved = errno;
		snprintf(err, errlen, "cannot open disk image %s: %s", path, strerror(saved));
		return -saved;
	}
	if (fstat(b->fd, &st) < 0)
		goto fail_close;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(b->fd, BLKGETSIZE64, &bytes) < 0)
			goto fail_close;
	} else if (S_ISREG(st.st_mode)) {
		bytes = (uint64_t)st.st_size;
	} else {
		close(b->fd);
		b->fd = -1;
		snprintf(err, errlen, "disk image %s is neither a regular file nor a block device",
		         path);
		return -EINVAL;
	}
	b->ro = ro;
	b->capacity = bytes / SECTOR;
	/* GET_ID: up to 20 bytes, not NUL terminated when all 20 are used */
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	memset(b->id, 0, sizeof(b->id));
	snprintf(b->id, sizeof(b->id), "gv%u-%s", devid, base);
	return 0;

fail_close:
	saved = errno;
	snprintf(err, errlen, "disk image %s: %s", path, strerror(saved));
	close(b->fd);
	b->fd = -1;
	return -saved;
}

void gv_blk_close(struct gv_blk *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
}

/* Reads (or writes) the whole iovec at off; returns bytes moved or -errno. */
static int64_t io_full(int fd, struct iovec *iov, int n, uint64_t off, bool write)
{
	int64_t done = 0;

	for (int k = 0; k < n; k++) {
		char *p = iov[k].iov_base;
		size_t left = iov[k].iov_len;

		while (left) {
			ssize_t got = write ? pwrite(fd, p, left, (off_t)off)
			                    : pread(fd, p, left, (off_t)off);

			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				return -errno;
			if (got == 0)
				return -EIO;    /* the image shrank under us */
			p += got;
			left -= (size_t)got;
			off += (uint64_t)got;
			done += got;
		}
	}
	return done;
}

/* Answers status in the last segment, mapping it alone if needed.
 * Returns the used length. */
static uint32_t finish(struct gv_req *r, bool mapped, uint8_t status, uint32_t data_written)
{
	unsigned last = r->ch->nseg - 1;

	if (!r->ch->nseg || !r->ch->seg[last].write || r->ch->seg[last].len < 1)
		return data_written;    /* nowhere to put a status */
	if (!mapped && gv_req_map(r, last, 1) < 0)
		return data_written;
	if (gv_req_copy_to(r, last, 0, &status, 1) < 0)
		return data_written;
	return data_written + 1;
}

uint32_t gv_blk_handle(void *ctx, struct gv_req *r)
{
	static struct iovec iov[GV_BE_REQ_MAX_PAGES];
	struct gv_blk *b = ctx;
	struct gv_chain *ch = r->ch;
	struct virtio_blk_outhdr hdr;
	unsigned ndata, first = 1, last;
	uint64_t bytes = 0, sector;
	int niov = 0;
	int64_t moved;

	/* shape: header, data..., status (writable, its own descriptor) */
	if (ch->nseg < 2 || ch->nread < 1 || ch->seg[0].len != sizeof(hdr) ||
	    !ch->seg[ch->nseg - 1].write)
		return finish(r, false, VIRTIO_BLK_S_IOERR, 0);
	last = ch->nseg - 1;
	ndata = ch->nseg - 2;
	if (ndata > GV_BE_BLK_SEG_MAX)
		return finish(r, false, VIRTIO_BLK_S_IOERR, 0);
	for (unsigned s = first; s < last; s++) {
		if (ch->seg[s].len > GV_BE_BLK_SIZE_MAX)
			return finish(r, false, VIRTIO_BLK_S_IOERR, 0);
		bytes += ch->seg[s].len;
	}
	/* every page of the request, in one batch per direction */
	if (gv_req_map(r, 0, ch->nseg) < 0)
		return finish(r, false, VIRTIO_BLK_S_IOERR, 0);
	if (gv_req_copy_from(r, 0, 0, &hdr, sizeof(hdr)) < 0)   /* our private copy */
		return finish(r, true, VIRTIO_BLK_S_IOERR, 0);
	sector = hdr.sector;

	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT: {
		bool out = hdr.type == VIRTIO_BLK_T_OUT;

		if (out && b->ro)
			return finish(r, true, VIRTIO_BLK_S_IOERR, 0);
		/* data must all be device-writable for IN, all device-readable for OUT */
		if (out ? ch->nread != last : ch->nread != 1)
			return finish(r, true, VIRTIO_BLK_S_IOERR, 0);
		if (bytes % SECTOR || sector > b->capacity || bytes / SECTOR > b->capacity - sector)
			return finish(r, true, VIRTIO_BLK_S_IOERR, 0);
		for (unsigned s = first; s < last; s++) {
			int n = gv_req_iov(r, s, 0, ch->seg[s].len, iov + niov,
			                   (int)GV_BE_REQ_MAX_PAGES - niov);

			if (n < 0)
				return finish(r, true, VIRTIO_BLK_S_IOERR, 0);
			niov += n;
		}
		moved = io_full(b->fd, iov, niov, sector * SECTOR, out);
		if (moved < 0)
			/* pread may have filled part of the buffers: count it */
			return finish(r, true, VIRTIO_BLK_S_IOERR, 0);
		return finish(r, true, VIRTIO_BLK_S_OK, out ? 0 : (uint32_t)moved);
	}
	case VIRTIO_BLK_T_FLUSH:
		if (ndata)
			return finish(r, true, VIRTIO_BLK_S_IOERR, 0);
		return finish(r, true, fdatasync(b->fd) < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK, 0);
	case VIRTIO_BLK_T_GET_ID: {
		uint32_t n;

		if (ndata != 1 || !ch->seg[1].write)
			return finish(r, true, VIRTIO_BLK_S_IOERR, 0);
		n = ch->seg[1].len < VIRTIO_BLK_ID_BYTES ? ch->seg[1].len : VIRTIO_BLK_ID_BYTES;
		if (gv_req_copy_to(r, 1, 0, b->id, n) < 0)
			return finish(r, true, VIRTIO_BLK_S_IOERR, 0);
		return finish(r, true, VIRTIO_BLK_S_OK, n);
	}
	default:
		return finish(r, true, VIRTIO_BLK_S_UNSUPP, 0);
	}
}
