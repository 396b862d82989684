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
 * I/O is asynchronous when the daemon gave the device an io_uring
 * (gvbe_blk_start_aio): the handler queues a readv/writev straight between
 * the image and the mapped guest pages, the queue's whole batch goes to
 * the kernel in one io_uring_enter, and each request is completed when its
 * CQE arrives (out of order). FLUSH is an fdatasync with IOSQE_IO_DRAIN: it
 * starts only after every operation submitted before it on this device's
 * ring, i.e. after the writes it covers. Without a ring (io_uring
 * unavailable, or the unit tests) the same requests are served with
 * pread/pwrite/fdatasync.
 *
 * A buffered transfer first tries RWF_NOWAIT (done at once if the page
 * cache has it); an image on tmpfs is served in the loop (it cannot wait
 * for a device, and io_uring would hand it to worker threads), by memcpy
 * from a mapping of the image (map_copy, below).
 *
 * O_DIRECT: a second descriptor opened O_DIRECT serves every read and
 * write whose offset, buffers and length are aligned to dio_align; others
 * use the buffered descriptor (Linux keeps the two coherent). Default on,
 * per-disk option `buffered` to turn it off: the guest has its own page
 * cache, so caching again in dom0 doubles memory and makes the guest's
 * latency and flushes depend on dom0's writeback (xen-blkback submits bios
 * without a cache too).
 *
 * DISCARD and WRITE_ZEROES (VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES):
 * the request is the header, then n 16-byte struct virtio_blk_discard_write_zeroes
 * segments (device-readable), then the status. The segments are copied
 * out once and only the copy is judged: n in 1..GVBE_BLK_RANGE_SEG_MAX and
 * flags known (else UNSUPP, as the unmap flag on a DISCARD), every range
 * inside the disk and at most GVBE_BLK_RANGE_SECTORS (else IOERR). The
 * ranges are done one after another: on a file fallocate(PUNCH_HOLE |
 * KEEP_SIZE) for DISCARD and for WRITE_ZEROES with unmap, ZERO_RANGE |
 * KEEP_SIZE for the rest (punch where the file system has no ZERO_RANGE,
 * e.g. tmpfs: a hole reads as zeros); on a block device BLKDISCARD and
 * ZERO_RANGE (the kernel's BLKZEROOUT). With io_uring each is an
 * IORING_OP_FALLOCATE, so the loop does not wait; only BLKDISCARD, an ioctl
 * io_uring cannot queue here, is done in the loop. A discard the backing
 * store cannot do (EOPNOTSUPP) is answered OK: it is a hint, the data
 * stays readable, which virtio allows.
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
#include <limits.h>
#include <liburing.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <unistd.h>
#include "aio.h"
#include "blk.h"
#include "clock.h"
#include "nbd.h"

#define SECTOR 512u
#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

/* ---- an image in memory (tmpfs), mapped ----
 * A tmpfs image is mapped once (MAP_SHARED: its page-cache pages
 * themselves, no copy of the image) and each request is a memcpy between
 * the mapping and the guest's pages: no system call and no page-cache
 * lookup per request (perf, 4 KiB random reads from a RAM image: preadv's
 * own cost and shmem's lookup were about 38 % of the backend's CPU). A file
 * truncated under the mapping raises SIGBUS at an access past its new end:
 * the copy runs under a per-thread recovery point that the SIGBUS handler
 * jumps back to, the request is answered IOERR and the disk goes back to
 * pread/pwrite, which see the short file. Only tmpfs: on a disk a page
 * fault would wait for the device in the loop. */
static __thread sigjmp_buf *bus_jmp;    /* set only around map_copy's memcpy */

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	if (bus_jmp)
		siglongjmp(*bus_jmp, 1);
	/* not a copy of ours: the default action when the access repeats */
	signal(sig, SIG_DFL);
}

static void sigbus_install(void)
{
	/* SA_NODEFER: the jump out leaves SIGBUS unblocked (sigsetjmp saves
	 * no mask: no system call per copy) */
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO | SA_NODEFER };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

static void map_image(struct gvbe_blk *b, uint64_t bytes)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	void *m;

	if (!bytes || bytes > SIZE_MAX)
		return;
	m = mmap(NULL, (size_t)bytes, PROT_READ | (b->ro ? 0 : PROT_WRITE), MAP_SHARED, b->fd, 0);
	if (m == MAP_FAILED)
		return;                 /* served with pread/pwrite */
	pthread_once(&once, sigbus_install);
	b->map = m;
	b->map_len = bytes;
}

static void copy_iov(uint8_t *at, const struct iovec *iov, int n, bool write)
{
	for (int k = 0; k < n; k++) {
		if (write)
			memcpy(at, iov[k].iov_base, iov[k].iov_len);
		else
			memcpy(iov[k].iov_base, at, iov[k].iov_len);
		at += iov[k].iov_len;
	}
}

/* Copies the request's iovec to (write) or from the image at off through
 * the mapping; 0, or -EIO when the image was cut under it (then the
 * mapping is not used again). */
static int map_copy(struct gvbe_blk *const volatile b, const struct iovec *const volatile iov,
                    const volatile int n, const volatile uint64_t off, const volatile bool write)
{
	/* volatile: what is read after sigsetjmp lives in memory, not in a
	 * register the jump back would restore */
	sigjmp_buf jb;

	if (sigsetjmp(jb, 0)) {
		bus_jmp = NULL;
		__atomic_store_n(&b->map_off, true, __ATOMIC_RELAXED);
		return -EIO;
	}
	bus_jmp = &jb;
	copy_iov(b->map + off, iov, n, write);
	bus_jmp = NULL;
	return 0;
}

/* An NBD disk whose connection is made: what the server can do. */
static void nbd_opened(struct gvbe_blk *b, const struct gvbe_nbd_info *info, const char *path,
                       unsigned devid)
{
	const char *exp;

	b->nbd_connecting = false;
	b->ro = info->ro;
	b->capacity = info->size / SECTOR;
	b->discard_ok = !b->ro && info->can_trim;
	b->zeroes_ok = !b->ro;
	/* the export name (after the authority), for GET_ID */
	exp = strchr(path + strcspn(path, ":") + 3, '/');
	exp = exp && exp[1] && exp[1] != '?' ? exp + 1 : "nbd";
	memset(b->id, 0, sizeof(b->id));
	snprintf(b->id, sizeof(b->id), "gv%u-%.*s", devid, (int)strcspn(exp, "?"), exp);
}

int gvbe_blk_open_nowait(struct gvbe_blk *b, const char *path, const struct gvbe_blk_opts *o,
                         unsigned devid, int notify_efd, char *err, size_t errlen)
{
	int rc;

	if (!gvbe_nbd_is_uri(path) || notify_efd < 0)
		return gvbe_blk_open(b, path, o, devid, err, errlen);
	memset(b, 0, sizeof(*b));
	b->fd = b->fd_direct = -1;
	rc = gvbe_nbd_start(path, o->ro, notify_efd, &b->nbd, err, errlen);
	if (rc < 0) {
		b->nbd = NULL;
		return rc;
	}
	b->nbd_connecting = true;
	return -EINPROGRESS;
}

int gvbe_blk_open_finish(struct gvbe_blk *b, const char *path, unsigned devid,
                         char *err, size_t errlen)
{
	struct gvbe_nbd_info info;
	int rc;

	if (!b->nbd_connecting)
		return 0;
	rc = gvbe_nbd_connected(b->nbd, &info, err, errlen);
	if (rc == -EINPROGRESS)
		return rc;
	if (rc < 0) {
		gvbe_blk_close(b);
		return rc;
	}
	nbd_opened(b, &info, path, devid);
	return 0;
}

int gvbe_blk_open(struct gvbe_blk *b, const char *path, const struct gvbe_blk_opts *o,
                  unsigned devid, char *err, size_t errlen)
{
	struct stat st;
	struct statfs sfs;
	uint64_t bytes;
	const char *base;
	bool ro = o->ro;
	int saved;

	memset(b, 0, sizeof(*b));
	b->fd_direct = -1;
	if (gvbe_nbd_is_uri(path)) {
		struct gvbe_nbd_info info;
		int rc = gvbe_nbd_open(path, ro, -1, &b->nbd, &info, err, errlen);

		b->fd = -1;
		if (rc < 0)
			return rc;
		nbd_opened(b, &info, path, devid);
		return 0;
	}
	b->fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0) {
		saved = errno;
		snprintf(err, errlen, "cannot open disk image %s: %s", path, strerror(saved));
		return -saved;
	}
	if (fstat(b->fd, &st) < 0)
		goto fail_close;
	if (S_ISBLK(st.st_mode)) {
		int lbs = 0;

		if (ioctl(b->fd, BLKGETSIZE64, &bytes) < 0)
			goto fail_close;
		b->dio_align = ioctl(b->fd, BLKSSZGET, &lbs) == 0 && lbs >= 512 ? (unsigned)lbs : 4096;
		b->is_bdev = true;
	} else if (S_ISREG(st.st_mode)) {
		bytes = (uint64_t)st.st_size;
		/* the file system's block size is always enough for O_DIRECT */
		b->dio_align = 4096;
	} else {
		close(b->fd);
		b->fd = -1;
		snprintf(err, errlen, "disk image %s is neither a regular file nor a block device",
		         path);
		return -EINVAL;
	}
	b->ro = ro;
	b->discard_ok = b->zeroes_ok = !ro;
	b->capacity = bytes / SECTOR;
	/* GET_ID: up to 20 bytes, not NUL terminated when all 20 are used */
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	memset(b->id, 0, sizeof(b->id));
	snprintf(b->id, sizeof(b->id), "gv%u-%s", devid, base);
	/* a file system without O_DIRECT refuses the open: buffered it is; on
	 * tmpfs the page cache is the storage, O_DIRECT would only add work */
	b->in_memory = fstatfs(b->fd, &sfs) == 0 && sfs.f_type == TMPFS_MAGIC;
	if (!o->buffered && !b->in_memory)
		b->fd_direct = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_DIRECT);
	if (b->in_memory && S_ISREG(st.st_mode))
		map_image(b, bytes);
	return 0;

fail_close:
	saved = errno;
	snprintf(err, errlen, "disk image %s: %s", path, strerror(saved));
	close(b->fd);
	b->fd = -1;
	return -saved;
}

int gvbe_blk_current_size(const struct gvbe_blk *b, uint64_t *sectors)
{
	struct stat st;
	uint64_t bytes;

	if (b->nbd)
		return -ENOTSUP;
	if (b->fd < 0)
		return -EBADF;
	if (fstat(b->fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(b->fd, BLKGETSIZE64, &bytes) < 0)
			return -errno;
	} else {
		bytes = (uint64_t)st.st_size;
	}
	*sectors = bytes / SECTOR;
	return 0;
}

void gvbe_blk_close(struct gvbe_blk *b)
{
	if (b->nbd) {
		gvbe_nbd_quiesce(b->nbd, 5000);
		gvbe_nbd_close(b->nbd);
		b->nbd = NULL;
		b->nbd_async = false;
		b->nbd_connecting = false;
	}
	if (b->map)
		munmap(b->map, (size_t)b->map_len);
	b->map = NULL;
	b->map_len = 0;
	if (b->fd >= 0)
		close(b->fd);
	if (b->fd_direct >= 0)
		close(b->fd_direct);
	b->fd = b->fd_direct = -1;
}

void gvbe_blk_queue_init(struct gvbe_blk_queue *q, struct gvbe_blk *b)
{
	memset(q, 0, sizeof(*q));
	q->disk = b;
}

int gvbe_blk_start_aio(struct gvbe_blk_queue *q, unsigned entries, int eventfd,
                       char *err, size_t errlen)
{
	struct gvbe_blk *b = q->disk;

	if (b->nbd) {
		/* its own thread: only the completions come through eventfd */
		gvbe_nbd_set_efd(b->nbd, eventfd);
		b->nbd_async = eventfd >= 0;
		return 0;
	}
	if (q->aio)
		return 0;
	return gvbe_aio_create(entries, eventfd, &q->aio, err, errlen);
}

bool gvbe_blk_async(const struct gvbe_blk_queue *q)
{
	return q->aio || q->disk->nbd_async;
}

unsigned gvbe_blk_inflight(const struct gvbe_blk_queue *q)
{
	return q->disk->nbd ? gvbe_nbd_inflight(q->disk->nbd) : gvbe_aio_inflight(q->aio);
}

bool gvbe_blk_ready(const struct gvbe_blk_queue *q)
{
	/* an NBD disk's completions always come with an eventfd write */
	return q->aio && gvbe_aio_ready(q->aio);
}

void gvbe_blk_submit(struct gvbe_blk_queue *q)
{
	if (q->disk->nbd)
		gvbe_nbd_submit(q->disk->nbd);
	if (q->aio)
		gvbe_aio_submit(q->aio);
}

unsigned gvbe_blk_reap(struct gvbe_blk_queue *q)
{
	unsigned n;

	if (q->disk->nbd)
		return gvbe_nbd_reap(q->disk->nbd);
	if (!q->aio)
		return 0;
	n = gvbe_aio_reap(q->aio);
	gvbe_aio_submit(q->aio);        /* the rest of short transfers */
	return n;
}

unsigned gvbe_blk_quiesce(struct gvbe_blk_queue *q, int timeout_ms)
{
	unsigned left;

	if (q->disk->nbd)
		return gvbe_nbd_quiesce(q->disk->nbd, timeout_ms);
	if (!q->aio)
		return 0;
	left = gvbe_aio_destroy(q->aio, timeout_ms);
	if (!left)
		q->aio = NULL;
	return left;
}

/* The hand-over (SIGTERM): waits (bounded) for the I/O in flight to finish,
 * each request completed as it does; nothing is cancelled (a cancelled
 * request would reach the guest as an error). Returns how many are left. */
unsigned gvbe_blk_drain(struct gvbe_blk_queue *q, int timeout_ms)
{
	int64_t end = gv_now_ms() + timeout_ms;

	if (q->disk->nbd)
		return gvbe_nbd_quiesce(q->disk->nbd, timeout_ms);
	while (q->aio && gvbe_aio_inflight(q->aio) && gv_now_ms() < end)
		gvbe_aio_wait(q->aio, 100);
	return gvbe_blk_inflight(q);
}

/* O_DIRECT if every piece is aligned (and the image allows it). */
static bool direct_ok(const struct gvbe_blk_queue *q, const struct iovec *iov, int n,
                      uint64_t off)
{
	uint64_t a = q->disk->dio_align;

	if (q->disk->fd_direct < 0 || q->direct_off || off % a)
		return false;
	for (int k = 0; k < n; k++)
		if ((uintptr_t)iov[k].iov_base % a || iov[k].iov_len % a)
			return false;
	return true;
}

/* Reads (or writes) the whole iovec at off, one preadv/pwritev for all of
 * it where the kernel moves it at once (a request's pages are often not
 * contiguous in our mappings: one system call per page otherwise); returns
 * bytes moved or -errno. iov itself is not changed. */
static int64_t io_full(int fd, const struct iovec *iov, int n, uint64_t off, bool write)
{
	struct iovec v[GVBE_REQ_MAX_PAGES];
	int64_t done = 0;
	int at = 0;

	if (n < 0 || n > (int)GVBE_REQ_MAX_PAGES)
		return -EINVAL;
	memcpy(v, iov, (size_t)n * sizeof(*v));
	for (;;) {
		ssize_t got;
		int cnt;

		while (at < n && !v[at].iov_len)
			at++;
		if (at == n)
			return done;
		cnt = n - at < IOV_MAX ? n - at : IOV_MAX;
		got = write ? pwritev(fd, v + at, cnt, (off_t)off) : preadv(fd, v + at, cnt, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			return -EIO;    /* the image shrank under us */
		done += got;
		off += (uint64_t)got;
		/* skip what moved; a short transfer goes on from there */
		while (got > 0) {
			size_t take = (size_t)got < v[at].iov_len ? (size_t)got : v[at].iov_len;

			v[at].iov_base = (char *)v[at].iov_base + take;
			v[at].iov_len -= take;
			got -= (ssize_t)take;
			if (!v[at].iov_len)
				at++;
		}
	}
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
	static const enum gvbe_stat_op stat_op[] = {
		[GVBE_BLK_DONE] = GVBE_STAT_OTHER, [GVBE_BLK_READ] = GVBE_STAT_READ,
		[GVBE_BLK_WRITE] = GVBE_STAT_WRITE, [GVBE_BLK_FLUSH] = GVBE_STAT_FLUSH,
	};
	uint64_t wbytes = r->ch->write_bytes;
	bool ok = status == VIRTIO_BLK_S_OK;

	/* every request ends here once: count it (gvbe_blk_handle set kind, len) */
	gvbe_qstats_request(&r->vq->st, r->kind >= 0 && r->kind <= GVBE_BLK_FLUSH ?
	                    stat_op[r->kind] : GVBE_STAT_OTHER, ok ? r->len : 0, !ok);
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

/* DISCARD / WRITE_ZEROES (mapped, header read): copies the segments out
 * and validates the copy into r->range. */
static int prepare_ranges(struct gvbe_blk *b, struct gvbe_req *r, bool wz, struct gvbe_blk_io *io)
{
	struct virtio_blk_discard_write_zeroes seg[GVBE_BLK_RANGE_SEG_MAX];
	uint64_t rbytes = r->ch->read_bytes, n;
	uint32_t allowed = wz ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;

	r->nrange = r->range_at = 0;
	if (b->ro || !(wz ? b->zeroes_ok : b->discard_ok)) {
		io->status = VIRTIO_BLK_S_UNSUPP;     /* not offered (read-only disk) */
		return GVBE_BLK_DONE;
	}
	if (r->ch->write_bytes != 1 || (rbytes - sizeof(struct virtio_blk_outhdr)) % sizeof(seg[0]))
		return GVBE_BLK_DONE;
	n = (rbytes - sizeof(struct virtio_blk_outhdr)) / sizeof(seg[0]);
	if (!n)
		return GVBE_BLK_DONE;                 /* IOERR: no segment at all */
	if (n > GVBE_BLK_RANGE_SEG_MAX) {
		io->status = VIRTIO_BLK_S_UNSUPP;     /* more than max-*-seg */
		return GVBE_BLK_DONE;
	}
	if (stream_copy(r, false, sizeof(struct virtio_blk_outhdr), seg,
	                (uint32_t)(n * sizeof(seg[0])), false) < 0)
		return GVBE_BLK_DONE;
	for (unsigned k = 0; k < n; k++) {
		/* the private copy only, from here on */
		uint64_t sector = seg[k].sector;
		uint32_t num = seg[k].num_sectors, flags = seg[k].flags;

		if (flags & ~allowed) {
			io->status = VIRTIO_BLK_S_UNSUPP;
			return GVBE_BLK_DONE;
		}
		if (!num || num > GVBE_BLK_RANGE_SECTORS || sector > b->capacity ||
		    num > b->capacity - sector)
			return GVBE_BLK_DONE;   /* IOERR */
		r->range[k].off = sector * SECTOR;
		r->range[k].len = (uint64_t)num * SECTOR;
		r->range[k].unmap = !wz || (flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	}
	r->nrange = (unsigned)n;
	return wz ? GVBE_BLK_WRITE_ZEROES : GVBE_BLK_DISCARD;
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
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return prepare_ranges(b, r, hdr.type == VIRTIO_BLK_T_WRITE_ZEROES, io);
	default:
		io->status = VIRTIO_BLK_S_UNSUPP;
		return GVBE_BLK_DONE;
	}
}

/* ---- DISCARD and WRITE_ZEROES: r->range[range_at..nrange) ---- */

static int range_mode(const struct gvbe_blk *b, int kind, bool unmap)
{
	/* a block device's PUNCH_HOLE only zeroes where the device promises
	 * zeros after a discard: ZERO_RANGE (BLKZEROOUT) is the sure one */
	if (!b->is_bdev && (kind == GVBE_BLK_DISCARD || unmap))
		return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	return FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
}

/* One range in the loop; 0 or -errno. */
static int range_sync(struct gvbe_blk *b, int kind, uint64_t off, uint64_t len, bool unmap)
{
	int mode;

	if (b->is_bdev && kind == GVBE_BLK_DISCARD) {
		uint64_t rg[2] = { off, len };

		return ioctl(b->fd, BLKDISCARD, rg) < 0 ? -errno : 0;
	}
	mode = range_mode(b, kind, unmap);
	if (fallocate(b->fd, mode, (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno == EOPNOTSUPP && !b->is_bdev && (mode & FALLOC_FL_ZERO_RANGE))
		/* no ZERO_RANGE here (tmpfs): a hole reads as zeros too */
		return fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
		                 (off_t)len) < 0 ? -errno : 0;
	return -errno;
}

/* The result of the current range: counts it and moves on; false: IOERR. */
static bool range_result(struct gvbe_blk_queue *q, struct gvbe_req *r, int res)
{
	if (res == -EOPNOTSUPP && r->kind == GVBE_BLK_DISCARD)
		res = 0;        /* a hint the store cannot take: the data stays, allowed */
	else if (res < 0)
		return false;
	else if (r->kind == GVBE_BLK_DISCARD)
		q->discards++;
	else
		q->zeroes++;
	r->range_at++;
	return true;
}

/* Goes on with r's ranges: each in the loop without a ring (and
 * BLKDISCARD, which io_uring cannot queue), else the next one queued.
 * Returns GVBE_REQ_ASYNC when one was queued (range_done continues), else
 * the status to answer. */
static uint32_t ranges_go(struct gvbe_blk_queue *q, struct gvbe_req *r, bool async)
{
	struct gvbe_blk *b = q->disk;

	while (r->range_at < r->nrange) {
		uint64_t off = r->range[r->range_at].off, len = r->range[r->range_at].len;
		bool unmap = r->range[r->range_at].unmap;

		if (async && !(b->is_bdev && r->kind == GVBE_BLK_DISCARD)) {
			struct io_uring_sqe *sqe = gvbe_aio_sqe(q->aio, &r->op);

			if (!sqe)
				return VIRTIO_BLK_S_IOERR;
			io_uring_prep_fallocate(sqe, b->fd, range_mode(b, r->kind, unmap), (off_t)off,
			                        (off_t)len);
			return GVBE_REQ_ASYNC;
		}
		if (!range_result(q, r, range_sync(b, r->kind, off, len, unmap)))
			return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

static void range_done(struct gvbe_blk_queue *q, struct gvbe_req *r, int res)
{
	uint32_t st;

	if (res == -EOPNOTSUPP && r->kind == GVBE_BLK_WRITE_ZEROES && !q->disk->is_bdev &&
	    !r->range[r->range_at].unmap) {
		/* no ZERO_RANGE on this file system: punch instead (zeros too) */
		r->range[r->range_at].unmap = true;
		st = ranges_go(q, r, true);
	} else if (!range_result(q, r, res)) {
		st = VIRTIO_BLK_S_IOERR;
	} else {
		st = ranges_go(q, r, true);
	}
	if (st != GVBE_REQ_ASYNC)
		gvbe_req_complete(r, gvbe_blk_finish(r, (uint8_t)st, 0));
}

/* Queues the rest of r's transfer: iov[iov_at..niov) at off + moved. */
static bool queue_rw(struct gvbe_blk_queue *q, struct gvbe_req *r)
{
	struct io_uring_sqe *sqe = gvbe_aio_sqe(q->aio, &r->op);
	int fd = r->direct ? q->disk->fd_direct : q->disk->fd;
	unsigned n = (unsigned)(r->niov - r->iov_at);

	if (!sqe)
		return false;
	if (r->kind == GVBE_BLK_WRITE)
		io_uring_prep_writev(sqe, fd, r->iov + r->iov_at, n, r->off + r->moved);
	else
		io_uring_prep_readv(sqe, fd, r->iov + r->iov_at, n, r->off + r->moved);
	return true;
}

/* n more bytes of r moved: skip them in r->iov. */
static void advance(struct gvbe_req *r, uint64_t n)
{
	r->moved += n;
	while (r->iov_at < r->niov && n >= r->iov[r->iov_at].iov_len)
		n -= r->iov[r->iov_at++].iov_len;
	if (n) {
		r->iov[r->iov_at].iov_base = (char *)r->iov[r->iov_at].iov_base + n;
		r->iov[r->iov_at].iov_len -= n;
	}
}

static void blk_done(struct gvbe_aio_op *op, int res)
{
	struct gvbe_req *r = container_of(op, struct gvbe_req, op);
	struct gvbe_blk_queue *q = r->vq->handler_ctx;

	if (r->kind == GVBE_BLK_DISCARD || r->kind == GVBE_BLK_WRITE_ZEROES)
		return range_done(q, r, res);
	if (r->kind == GVBE_BLK_FLUSH) {
		gvbe_req_complete(r, gvbe_blk_finish(r, res < 0 ? VIRTIO_BLK_S_IOERR
		                                                 : VIRTIO_BLK_S_OK, 0));
		return;
	}
	if (res == -EINVAL && r->direct && !r->moved) {
		/* the image refused this alignment for O_DIRECT: buffered from
		 * now on (this queue's; the disk's descriptor is shared) */
		q->direct_off = true;
		r->direct = false;
		if (queue_rw(q, r))
			return;
	}
	if (res <= 0)
		/* an error (or the image shrank under us): IOERR; data partly
		 * transferred means nothing, only the status byte is reported */
		goto ioerr;
	advance(r, (uint64_t)res);
	if (r->moved < r->len) {
		/* a short transfer: queue the rest */
		if (r->iov_at < r->niov && queue_rw(q, r))
			return;
		goto ioerr;
	}
	gvbe_req_complete(r, gvbe_blk_finish(r, VIRTIO_BLK_S_OK,
	                                     r->kind == GVBE_BLK_READ ? (uint32_t)r->moved : 0));
	return;
ioerr:
	gvbe_req_complete(r, gvbe_blk_finish(r, VIRTIO_BLK_S_IOERR, 0));
}

/* Takes r over: its I/O is queued on the device's ring. False if the ring
 * has no room (never with entries >= the requests the queues can hold). */
static bool queue_async(struct gvbe_blk_queue *q, struct gvbe_req *r, int kind,
                        const struct gvbe_blk_io *io)
{
	r->op.done = blk_done;
	r->kind = kind;
	(void)io;
	if (kind == GVBE_BLK_FLUSH) {
		struct io_uring_sqe *sqe = gvbe_aio_sqe(q->aio, &r->op);

		if (!sqe)
			return false;
		io_uring_prep_fsync(sqe, q->disk->fd, IORING_FSYNC_DATASYNC);
		/* after everything submitted before it on this queue's ring:
		 * the writes the driver saw completed before it sent the flush
		 * are done (those of other queues too: their completion came
		 * from the kernel), and fdatasync covers the whole file */
		io_uring_sqe_set_flags(sqe, IOSQE_IO_DRAIN);
		return true;
	}
	return queue_rw(q, r);
}

/* A buffered transfer first tries to complete at once without blocking
 * (RWF_NOWAIT: the data is in the page cache, or the write fits in it), as
 * QEMU does: a system call instead of a trip through io_uring's workers.
 * Never for O_DIRECT, whose transfer always waits for the device. Returns
 * true if all of it moved. */
static bool try_nowait(struct gvbe_blk_queue *q, struct gvbe_req *r)
{
	struct gvbe_blk *b = q->disk;
	ssize_t got;

	if (r->direct || b->nowait_off)
		return false;
	got = r->kind == GVBE_BLK_WRITE
	      ? pwritev2(b->fd, r->iov, r->niov, (off_t)r->off, RWF_NOWAIT)
	      : preadv2(b->fd, r->iov, r->niov, (off_t)r->off, RWF_NOWAIT);
	if (got <= 0)
		return false;           /* EAGAIN and the rest: io_uring it is */
	advance(r, (uint64_t)got);
	if (r->moved == r->len)
		q->nowait_ios++;
	return r->moved == r->len;
}

uint32_t gvbe_blk_handle(void *ctx, struct gvbe_req *r)
{
	struct gvbe_blk_queue *q = ctx;
	struct gvbe_blk *b = q->disk;
	struct gvbe_blk_io io;
	int64_t moved;
	int kind = gvbe_blk_prepare(b, r, &io);

	r->kind = kind;                 /* for the counters (gvbe_blk_finish) */
	r->len = io.len;
	if (b->nbd && kind != GVBE_BLK_DONE) {
		r->off = io.off;
		r->niov = io.niov;
		gvbe_nbd_queue(b->nbd, r);
		if (!b->nbd_async) {
			/* no completion eventfd (no daemon loop): wait for it here,
			 * bounded; it completes r */
			gvbe_nbd_quiesce(b->nbd, 30000);
		}
		return GVBE_REQ_ASYNC;
	}

	/* an image in memory (tmpfs) never waits for a device: a copy in the
	 * loop is cheaper than any trip through io_uring (whose workers tmpfs
	 * would need: it has no RWF_NOWAIT) */
	if (q->aio && !b->in_memory && (kind == GVBE_BLK_READ || kind == GVBE_BLK_WRITE)) {
		r->off = io.off;
		r->len = io.len;
		r->niov = io.niov;
		r->iov_at = 0;
		r->moved = 0;
		r->kind = kind;
		r->direct = direct_ok(q, r->iov, r->niov, r->off);
		if (r->direct)
			q->direct_ios++;
		else
			q->buffered_ios++;
		if (try_nowait(q, r))
			return gvbe_blk_finish(r, VIRTIO_BLK_S_OK,
			                       kind == GVBE_BLK_READ ? (uint32_t)r->moved : 0);
	}
	if (kind == GVBE_BLK_DISCARD || kind == GVBE_BLK_WRITE_ZEROES) {
		uint32_t st;

		r->kind = kind;
		r->op.done = blk_done;
		st = ranges_go(q, r, q->aio && !b->in_memory);
		return st == GVBE_REQ_ASYNC ? st : gvbe_blk_finish(r, (uint8_t)st, 0);
	}
	if (q->aio && !b->in_memory && kind != GVBE_BLK_DONE && queue_async(q, r, kind, &io))
		return GVBE_REQ_ASYNC;
	switch (kind) {
	case GVBE_BLK_READ:
	case GVBE_BLK_WRITE: {
		bool out = kind == GVBE_BLK_WRITE;

		/* O_DIRECT when aligned here too: the disk option means the same
		 * whichever way the I/O is issued (io_full does not touch r->iov,
		 * so a refused O_DIRECT transfer is simply done again buffered) */
		if (b->map && io.off + io.len <= b->map_len &&
		    !__atomic_load_n(&b->map_off, __ATOMIC_RELAXED)) {
			/* tmpfs: through the mapping (map_copy) */
			q->buffered_ios++;
			if (map_copy(b, r->iov, io.niov, io.off, out) < 0)
				return gvbe_blk_finish(r, VIRTIO_BLK_S_IOERR, 0);
			return gvbe_blk_finish(r, VIRTIO_BLK_S_OK, out ? 0 : (uint32_t)io.len);
		}
		moved = -EINVAL;
		if (direct_ok(q, r->iov, io.niov, io.off)) {
			moved = io_full(b->fd_direct, r->iov, io.niov, io.off, out);
			q->direct_ios++;
		}
		if (moved == -EINVAL) {
			moved = io_full(b->fd, r->iov, io.niov, io.off, out);
			q->buffered_ios++;
		}
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
