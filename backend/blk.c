/*
 * backend/blk.c: virtio-blk requests (virtio 1.x 5.2.6) served from a raw
 * image file or block device.
 *
 * With VIRTIO_F_VERSION_1 a device must not assume how a request is framed
 * into descriptors (virtio 1.x 2.7.4): the request is the 16-byte header at
 * the start of the device-readable part, then data (readable for OUT,
 * writable for IN and GET_ID), and the status is the LAST BYTE of the
 * device-writable part, wherever the descriptors split it (it may share a
 * descriptor with data; the header may share one with OUT data). So this
 * file addresses the request as two byte streams, never by descriptor.
 *
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
#include "blk.h"

#define SECTOR 512u

int gvbe_blk_open(struct gvbe_blk *b, const char *path, bool ro, unsigned devid,
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

void gvbe_blk_close(struct gvbe_blk *b)
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

/* Copies len bytes between buf and bytes [off, off+len) of one part of the
 * (mapped) request. */
static int stream_copy(struct gvbe_req *r, bool writable, uint64_t off, void *buf,
                       uint32_t len, bool to_guest)
{
	struct iovec iov[8];
	int n = gvbe_req_stream_iov(r, writable, off, len, iov, 8);

	if (n < 0)
		return n;
	for (int k = 0; k < n; k++) {
		if (to_guest)
			memcpy(iov[k].iov_base, buf, iov[k].iov_len);
		else
			memcpy(buf, iov[k].iov_base, iov[k].iov_len);
		buf = (char *)buf + iov[k].iov_len;
	}
	return 0;
}

uint32_t gvbe_blk_finish(struct gvbe_req *r, uint8_t status, uint32_t data_written)
{
	uint64_t wbytes = r->ch->write_bytes;

	/* nowhere to put a status, or its page cannot be mapped: the driver
	 * sees a used length without it and knows the request failed */
	if (!wbytes)
		return 0;
	if (!r->mapped) {
		/* map only the descriptor holding the status: the others may be
		 * what could not be mapped */
		unsigned s = r->ch->nseg - 1;

		while (s > 0 && !r->ch->seg[s].len)
			s--;
		if (gvbe_req_map(r, s, 1) < 0)
			return 0;
		r->mapped = true;
	}
	if (stream_copy(r, true, wbytes - 1, &status, 1, true) < 0)
		return 0;
	return data_written + 1;
}

int gvbe_blk_prepare(struct gvbe_blk *b, struct gvbe_req *r, struct gvbe_blk_io *io)
{
	struct gvbe_chain *ch = r->ch;
	struct virtio_blk_outhdr hdr;
	uint64_t rbytes = ch->read_bytes, wbytes = ch->write_bytes, data;
	int n;

	memset(io, 0, sizeof(*io));
	io->status = VIRTIO_BLK_S_IOERR;
	/* the status byte is the last writable byte; the header the first 16 readable */
	if (!wbytes || rbytes < sizeof(hdr))
		return GVBE_BLK_DONE;
	if (ch->nseg > GVBE_BLK_SEG_MAX + 2)
		return GVBE_BLK_DONE;
	for (unsigned s = 0; s < ch->nseg; s++)
		if (ch->seg[s].len > GVBE_BLK_SIZE_MAX)
			return GVBE_BLK_DONE;
	/* every page of the request, in one batch per direction */
	if (gvbe_req_map(r, 0, ch->nseg) < 0)
		return GVBE_BLK_DONE;
	r->mapped = true;
	if (stream_copy(r, false, 0, &hdr, sizeof(hdr), false) < 0)   /* our private copy */
		return GVBE_BLK_DONE;

	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT: {
		bool out = hdr.type == VIRTIO_BLK_T_OUT;

		if (out && b->ro)
			return GVBE_BLK_DONE;
		/* IN: data is the writable part but its last byte; OUT: the readable
		 * part after the header, and the writable part is the status alone */
		if (out ? wbytes != 1 : rbytes != sizeof(hdr))
			return GVBE_BLK_DONE;
		data = out ? rbytes - sizeof(hdr) : wbytes - 1;
		if (data % SECTOR || hdr.sector > b->capacity || data / SECTOR > b->capacity - hdr.sector)
			return GVBE_BLK_DONE;
		n = gvbe_req_stream_iov(r, !out, out ? sizeof(hdr) : 0, data, r->iov,
		                        GVBE_REQ_MAX_PAGES);
		if (n < 0)
			return GVBE_BLK_DONE;
		io->niov = n;
		io->off = hdr.sector * SECTOR;
		io->len = data;
		return out ? GVBE_BLK_WRITE : GVBE_BLK_READ;
	}
	case VIRTIO_BLK_T_FLUSH:
		if (rbytes != sizeof(hdr) || wbytes != 1)
			return GVBE_BLK_DONE;
		return GVBE_BLK_FLUSH;
	case VIRTIO_BLK_T_GET_ID: {
		uint32_t len;

		if (rbytes != sizeof(hdr) || wbytes < 2)
			return GVBE_BLK_DONE;
		len = wbytes - 1 < VIRTIO_BLK_ID_BYTES ? (uint32_t)wbytes - 1 : VIRTIO_BLK_ID_BYTES;
		if (stream_copy(r, true, 0, b->id, len, true) < 0)
			return GVBE_BLK_DONE;
		io->status = VIRTIO_BLK_S_OK;
		io->written = len;
		return GVBE_BLK_DONE;
	}
	default:
		io->status = VIRTIO_BLK_S_UNSUPP;
		return GVBE_BLK_DONE;
	}
}

uint32_t gvbe_blk_handle(void *ctx, struct gvbe_req *r)
{
	struct gvbe_blk *b = ctx;
	struct gvbe_blk_io io;
	int64_t moved;
	int kind = gvbe_blk_prepare(b, r, &io);

	switch (kind) {
	case GVBE_BLK_READ:
	case GVBE_BLK_WRITE: {
		bool out = kind == GVBE_BLK_WRITE;

		moved = io_full(b->fd, r->iov, io.niov, io.off, out);
		if (moved < 0)
			/* pread may have filled part of the buffers, but on IOERR their
			 * content means nothing: report only the status byte (a used
			 * length below what was written is allowed, above it is not) */
			return gvbe_blk_finish(r, VIRTIO_BLK_S_IOERR, 0);
		return gvbe_blk_finish(r, VIRTIO_BLK_S_OK, out ? 0 : (uint32_t)moved);
	}
	case GVBE_BLK_FLUSH:
		return gvbe_blk_finish(r, fdatasync(b->fd) < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK, 0);
	default:
		return gvbe_blk_finish(r, io.status, io.written);
	}
}
