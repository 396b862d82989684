/*
 * backend/nbd.c: a virtio-blk disk served from an NBD server through libnbd
 * (qemu-nbd or qemu-storage-daemon for qcow2 and every format QEMU reads,
 * nbdkit, rbd-nbd, ...).
 *
 * Each NBD disk has its own I/O thread that owns the libnbd handle: it
 * issues the commands with libnbd's asynchronous calls (so the guest's
 * whole queue depth is in flight at the server), polls the socket
 * (nbd_aio_get_fd / nbd_aio_get_direction) together with an eventfd the
 * daemon's loop writes when it queued requests, and hands completed
 * requests back on a list, signalling the daemon's completion eventfd (the
 * one io_uring uses), where gvbe_blk_reap completes them. The loop never
 * waits for the server; libnbd's calls are made from one thread only.
 *
 * A request of n data pieces (the mapped guest pages, merged where
 * contiguous) is n NBD commands straight from/into guest memory, no copy.
 * FLUSH is NBD_CMD_FLUSH (covering every write completed before it, which
 * is what virtio asks), DISCARD is NBD_CMD_TRIM (nothing when the server
 * cannot trim: a hint), WRITE_ZEROES is NBD_CMD_WRITE_ZEROES (with
 * NO_HOLE unless the guest allowed unmapping; zeros written when the
 * server has no WRITE_ZEROES).
 *
 * A connection that dies (server killed, network gone) fails the commands
 * in flight and every later one: the guest sees I/O errors, other disks go
 * on. There is no reconnect: the device serves again once the guest
 * reattaches after the server is back (the disk is opened afresh).
 */
#include <errno.h>
#ifdef GVBE_HAVE_NBD
#include <libnbd.h>
#endif
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include "blk.h"
#include "nbd.h"
#include "vring.h"

bool gvbe_nbd_is_uri(const char *path)
{
	return !strncmp(path, "nbd", 3) && strstr(path, "://") && strcspn(path, ":") < 16;
}

int gvbe_nbd_check_uri(const char *uri, char *err, size_t errlen)
{
	const char *rest;

	if (!strncmp(uri, "nbd://", 6)) {
		const char *host = uri + 6, *end = host + strcspn(host, "/?#"), *colon;

		if (end == host || *host == ':') {
			snprintf(err, errlen, "NBD URI %s: no host (expected nbd://HOST[:PORT][/EXPORT])",
			         uri);
			return -EINVAL;
		}
		colon = host[0] == '[' ? strstr(host, "]:") : memchr(host, ':', (size_t)(end - host));
		if (colon && colon < end) {
			const char *p = colon + (host[0] == '[' ? 2 : 1);
			unsigned long port = 0;

			if (p == end)
				port = 0;
			for (; p < end && *p >= '0' && *p <= '9' && port <= 65535; p++)
				port = port * 10 + (unsigned long)(*p - '0');
			if (p != end || !port || port > 65535) {
				snprintf(err, errlen, "NBD URI %s: the port must be a number 1..65535", uri);
				return -EINVAL;
			}
		}
		if (*end == '?' || *end == '#') {
			snprintf(err, errlen, "NBD URI %s: nbd:// takes no query (a Unix socket is "
			         "nbd+unix:///EXPORT?socket=PATH)", uri);
			return -EINVAL;
		}
		return 0;
	}
	if (!strncmp(uri, "nbd+unix://", 11)) {
		const char *sock;

		rest = uri + 11;
		if (*rest != '/' && *rest != '?') {
			snprintf(err, errlen, "NBD URI %s: nbd+unix takes no host (expected "
			         "nbd+unix:///EXPORT?socket=PATH)", uri);
			return -EINVAL;
		}
		sock = strstr(rest, "?socket=");
		if (!sock)
			sock = strstr(rest, "&socket=");
		if (!sock || !sock[8] || sock[8] == '&') {
			snprintf(err, errlen, "NBD URI %s: no socket (expected "
			         "nbd+unix:///EXPORT?socket=PATH)", uri);
			return -EINVAL;
		}
		return 0;
	}
	snprintf(err, errlen, "NBD URI %s: unsupported scheme %.*s (expected nbd:// or nbd+unix://)",
	         uri, (int)strcspn(uri, ":"), uri);
	return -EINVAL;
}

#ifdef GVBE_HAVE_NBD
static const uint8_t zeros[1 << 20];    /* WRITE_ZEROES on a server without it */

struct gvbe_nbd {
	struct nbd_handle *h;
	struct gvbe_nbd_info info;
	pthread_t thread;
	bool thread_started;
	int wake;                       /* eventfd: requests queued, or stop */
	int done_efd;                   /* the daemon's completion eventfd, or -1 */
	pthread_mutex_t lock;
	struct gvbe_req *sub_head, *sub_tail;   /* for the thread (linked by next_free) */
	struct gvbe_req *done_head, *done_tail; /* for the loop */
	bool stop;
	bool dead;                      /* the connection is gone (read under lock) */
	/* the connection is made by the thread (the loop never waits for a
	 * server): until then connecting; then connect_rc and connect_err */
	char *uri;
	bool ro_wanted;
	int notify_efd;                 /* written once the connection is made or failed */
	bool connecting;
	int connect_rc;
	char connect_err[300];
	/* the loop's own */
	struct gvbe_req *q_head, *q_tail;       /* queued since the last submit */
	unsigned inflight;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static bool stopping(struct gvbe_nbd *n)
{
	bool stop;

	pthread_mutex_lock(&n->lock);
	stop = n->stop;
	pthread_mutex_unlock(&n->lock);
	return stop;
}

/* A connected handle (bounded wait), or NULL with err set. With n (its
 * thread connecting), n->wake is polled too: a stop ends the wait at once. */
static struct nbd_handle *connect_uri(const char *uri, struct gvbe_nbd *n, char *err,
                                      size_t errlen)
{
	struct nbd_handle *h;
	double end;

	if (gvbe_nbd_check_uri(uri, err, errlen) < 0)
		return NULL;
	h = nbd_create();
	if (!h) {
		snprintf(err, errlen, "NBD %s: %s", uri, nbd_get_error());
		return NULL;
	}
	if (nbd_aio_connect_uri(h, uri) < 0)
		goto fail;
	end = now_ms() + GVBE_NBD_CONNECT_MS;
	while (nbd_aio_is_connecting(h)) {
		double left = end - now_ms();
		struct pollfd pfd[2];
		int fd = nbd_aio_get_fd(h), dir = nbd_aio_get_direction(h);

		if (left <= 0) {
			snprintf(err, errlen, "NBD %s: no answer within %d ms", uri, GVBE_NBD_CONNECT_MS);
			nbd_close(h);
			return NULL;
		}
		if (fd < 0)
			goto fail;
		pfd[0] = (struct pollfd){ .fd = fd, .events =
			(short)((dir & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0) |
			        (dir & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0)) };
		pfd[1] = (struct pollfd){ .fd = n ? n->wake : -1, .events = POLLIN };
		if (poll(pfd, 2, (int)left + 1) < 0 && errno != EINTR)
			goto fail;
		if (n && stopping(n)) {
			snprintf(err, errlen, "NBD %s: connection abandoned (the disk was closed)", uri);
			nbd_close(h);
			return NULL;
		}
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (nbd_aio_notify_read(h) < 0 && !nbd_aio_is_connecting(h))
				break;
		} else if (pfd[0].revents & POLLOUT) {
			if (nbd_aio_notify_write(h) < 0 && !nbd_aio_is_connecting(h))
				break;
		}
	}
	if (!nbd_aio_is_ready(h)) {
		snprintf(err, errlen, "NBD %s: cannot connect: %s", uri,
		         nbd_get_error() ? nbd_get_error() : "closed by the server");
		nbd_close(h);
		return NULL;
	}
	return h;
fail:
	snprintf(err, errlen, "NBD %s: cannot connect: %s", uri, nbd_get_error());
	nbd_close(h);
	return NULL;
}

int gvbe_nbd_probe(const char *uri, bool ro, char *err, size_t errlen)
{
	struct nbd_handle *h = connect_uri(uri, NULL, err, errlen);
	int rc = 0;

	if (!h)
		return -EIO;
	if (!ro && nbd_is_read_only(h) == 1) {
		snprintf(err, errlen, "NBD %s: the export is read-only (add ro to serve it read-only)",
		         uri);
		rc = -EROFS;
	}
	nbd_close(h);
	return rc;
}

/* ---- the I/O thread ---- */

static void push_done(struct gvbe_nbd *n, struct gvbe_req *r)
{
	uint64_t one = 1;
	int efd;

	pthread_mutex_lock(&n->lock);
	r->next_free = NULL;
	if (n->done_tail)
		n->done_tail->next_free = r;
	else
		n->done_head = r;
	n->done_tail = r;
	efd = n->done_efd;
	pthread_mutex_unlock(&n->lock);
	if (efd >= 0 && write(efd, &one, sizeof(one)) < 0) {
		/* a full counter still wakes the loop */
	}
}

static struct gvbe_nbd *nbd_of(struct gvbe_req *r)
{
	return ((struct gvbe_blk_queue *)r->vq->handler_ctx)->disk->nbd;
}

static int cmd_done(void *user_data, int *error)
{
	struct gvbe_req *r = user_data;

	if (*error)
		r->failed = true;
	if (!--r->pending)
		push_done(nbd_of(r), r);
	return 1;       /* retire the command */
}

/* Issues one command through fn's result: counts it, or marks r failed. */
static void issued(struct gvbe_req *r, int64_t cookie)
{
	if (cookie < 0)
		r->failed = true;
	else
		r->pending++;
}

static void issue(struct gvbe_nbd *n, struct gvbe_req *r)
{
	nbd_completion_callback cb = { .callback = cmd_done, .user_data = r };
	uint64_t off = r->off;

	r->pending = 1;                 /* held until every command is issued */
	r->failed = false;
	switch (r->kind) {
	case GVBE_BLK_READ:
	case GVBE_BLK_WRITE:
		for (int k = 0; k < r->niov && !r->failed; k++) {
			if (r->kind == GVBE_BLK_READ)
				issued(r, nbd_aio_pread(n->h, r->iov[k].iov_base, r->iov[k].iov_len, off,
				                        cb, 0));
			else
				issued(r, nbd_aio_pwrite(n->h, r->iov[k].iov_base, r->iov[k].iov_len, off,
				                         cb, 0));
			off += r->iov[k].iov_len;
		}
		break;
	case GVBE_BLK_FLUSH:
		if (n->info.can_flush)
			issued(r, nbd_aio_flush(n->h, cb, 0));
		break;
	case GVBE_BLK_DISCARD:
		for (unsigned k = 0; k < r->nrange && n->info.can_trim && !r->failed; k++)
			issued(r, nbd_aio_trim(n->h, r->range[k].len, r->range[k].off, cb, 0));
		break;
	case GVBE_BLK_WRITE_ZEROES:
		for (unsigned k = 0; k < r->nrange && !r->failed; k++) {
			if (n->info.can_zero) {
				issued(r, nbd_aio_zero(n->h, r->range[k].len, r->range[k].off, cb,
				                       r->range[k].unmap ? 0 : LIBNBD_CMD_FLAG_NO_HOLE));
				continue;
			}
			for (uint64_t o = 0; o < r->range[k].len && !r->failed; o += sizeof(zeros)) {
				uint64_t len = r->range[k].len - o;

				issued(r, nbd_aio_pwrite(n->h, zeros, len < sizeof(zeros) ? len : sizeof(zeros),
				                         r->range[k].off + o, cb, 0));
			}
		}
		break;
	default:
		r->failed = true;
		break;
	}
	if (!--r->pending)
		push_done(n, r);
}

/* In the thread: connects and learns what the server can do; then tells
 * the loop (notify_efd). 0 or -EIO with n->connect_err set. */
static int thread_connect(struct gvbe_nbd *n)
{
	char err[sizeof(n->connect_err)];
	struct nbd_handle *h = connect_uri(n->uri, n, err, sizeof(err));
	int64_t size = -1;
	uint64_t one = 1;
	int rc = -EIO;

	if (h) {
		size = nbd_get_size(h);
		if (size < 0) {
			snprintf(err, sizeof(err), "NBD %s: no size: %s", n->uri, nbd_get_error());
			nbd_close(h);
			h = NULL;
		}
	}
	pthread_mutex_lock(&n->lock);
	if (h) {
		n->h = h;
		n->info.size = (uint64_t)size;
		n->info.ro = n->ro_wanted || nbd_is_read_only(h) == 1;
		n->info.can_flush = nbd_can_flush(h) == 1;
		n->info.can_trim = nbd_can_trim(h) == 1;
		n->info.can_zero = nbd_can_zero(h) == 1;
		rc = 0;
	} else {
		snprintf(n->connect_err, sizeof(n->connect_err), "%s", err);
		n->dead = true;
	}
	n->connect_rc = rc;
	n->connecting = false;
	pthread_mutex_unlock(&n->lock);
	if (n->notify_efd >= 0 && write(n->notify_efd, &one, sizeof(one)) < 0) {
		/* a full counter still wakes the loop */
	}
	return rc;
}

static void *io_thread(void *arg)
{
	struct gvbe_nbd *n = arg;

	if (thread_connect(n) < 0)
		return NULL;
	for (;;) {
		struct gvbe_req *list;
		struct pollfd pfd[2];
		unsigned nfd = 1;
		int fd, dir;
		bool stop, dead;

		pthread_mutex_lock(&n->lock);
		list = n->sub_head;
		n->sub_head = n->sub_tail = NULL;
		stop = n->stop;
		pthread_mutex_unlock(&n->lock);
		while (list) {
			struct gvbe_req *r = list;

			list = r->next_free;
			issue(n, r);
		}
		if (stop)
			break;
		dead = nbd_aio_is_dead(n->h) || nbd_aio_is_closed(n->h);
		if (dead && !n->dead) {
			pthread_mutex_lock(&n->lock);
			n->dead = true;
			pthread_mutex_unlock(&n->lock);
		}
		pfd[0] = (struct pollfd){ .fd = n->wake, .events = POLLIN };
		fd = dead ? -1 : nbd_aio_get_fd(n->h);
		dir = dead ? 0 : nbd_aio_get_direction(n->h);
		if (fd >= 0) {
			pfd[1] = (struct pollfd){ .fd = fd, .events =
				(short)((dir & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0) |
				        (dir & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0)) };
			nfd = 2;
		}
		if (poll(pfd, nfd, 1000) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents & POLLIN) {
			uint64_t v;

			if (read(n->wake, &v, sizeof(v)) < 0) {
				/* EAGAIN: someone else read it; nothing lost */
			}
		}
		if (nfd == 2) {
			if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))
				nbd_aio_notify_read(n->h);
			else if (pfd[1].revents & POLLOUT)
				nbd_aio_notify_write(n->h);
		}
	}
	return NULL;
}

int gvbe_nbd_start(const char *uri, bool ro, int notify_efd, struct gvbe_nbd **out,
                   char *err, size_t errlen)
{
	struct gvbe_nbd *n;
	int rc;

	if (gvbe_nbd_check_uri(uri, err, errlen) < 0)
		return -EINVAL;
	n = calloc(1, sizeof(*n));
	if (!n || !(n->uri = strdup(uri))) {
		free(n);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	n->done_efd = -1;
	n->notify_efd = notify_efd;
	n->ro_wanted = ro;
	n->connecting = true;
	n->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (n->wake < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	pthread_mutex_init(&n->lock, NULL);
	rc = pthread_create(&n->thread, NULL, io_thread, n);
	if (rc) {
		snprintf(err, errlen, "NBD %s: cannot start its thread: %s", uri, strerror(rc));
		pthread_mutex_destroy(&n->lock);
		goto fail;
	}
	n->thread_started = true;
	*out = n;
	return 0;
fail:
	if (n->wake >= 0)
		close(n->wake);
	free(n->uri);
	free(n);
	return -EIO;
}

int gvbe_nbd_connected(struct gvbe_nbd *n, struct gvbe_nbd_info *info, char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&n->lock);
	if (n->connecting)
		rc = -EINPROGRESS;
	else if ((rc = n->connect_rc) < 0)
		snprintf(err, errlen, "%s", n->connect_err);
	else
		*info = n->info;
	pthread_mutex_unlock(&n->lock);
	return rc;
}

int gvbe_nbd_open(const char *uri, bool ro, int done_efd, struct gvbe_nbd **out,
                  struct gvbe_nbd_info *info, char *err, size_t errlen)
{
	struct gvbe_nbd *n;
	int rc = gvbe_nbd_start(uri, ro, -1, &n, err, errlen);

	if (rc < 0)
		return rc;
	/* the caller waits (at most the connect bound): look every 2 ms */
	while ((rc = gvbe_nbd_connected(n, info, err, errlen)) == -EINPROGRESS)
		nanosleep(&(struct timespec){ 0, 2 * 1000 * 1000 }, NULL);
	if (rc < 0) {
		gvbe_nbd_close(n);
		return rc;
	}
	gvbe_nbd_set_efd(n, done_efd);
	*out = n;
	return 0;
}

void gvbe_nbd_set_efd(struct gvbe_nbd *n, int done_efd)
{
	pthread_mutex_lock(&n->lock);
	n->done_efd = done_efd;
	pthread_mutex_unlock(&n->lock);
}

void gvbe_nbd_queue(struct gvbe_nbd *n, struct gvbe_req *r)
{
	r->next_free = NULL;
	if (n->q_tail)
		n->q_tail->next_free = r;
	else
		n->q_head = r;
	n->q_tail = r;
	n->inflight++;
}

void gvbe_nbd_submit(struct gvbe_nbd *n)
{
	uint64_t one = 1;

	if (!n->q_head)
		return;
	pthread_mutex_lock(&n->lock);
	if (n->sub_tail)
		n->sub_tail->next_free = n->q_head;
	else
		n->sub_head = n->q_head;
	n->sub_tail = n->q_tail;
	pthread_mutex_unlock(&n->lock);
	n->q_head = n->q_tail = NULL;
	if (write(n->wake, &one, sizeof(one)) < 0) {
		/* a full counter still wakes the thread */
	}
}

unsigned gvbe_nbd_reap(struct gvbe_nbd *n)
{
	struct gvbe_req *list;
	unsigned count = 0;

	pthread_mutex_lock(&n->lock);
	list = n->done_head;
	n->done_head = n->done_tail = NULL;
	pthread_mutex_unlock(&n->lock);
	while (list) {
		struct gvbe_req *r = list;
		uint8_t st = r->failed ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;

		list = r->next_free;
		n->inflight--;
		count++;
		gvbe_req_complete(r, gvbe_blk_finish(r, st, !r->failed && r->kind == GVBE_BLK_READ
		                                            ? (uint32_t)r->len : 0));
	}
	return count;
}

unsigned gvbe_nbd_inflight(const struct gvbe_nbd *n)
{
	return n ? n->inflight : 0;
}

bool gvbe_nbd_dead(const struct gvbe_nbd *n)
{
	bool dead;

	pthread_mutex_lock((pthread_mutex_t *)&n->lock);
	dead = n->dead;
	pthread_mutex_unlock((pthread_mutex_t *)&n->lock);
	return dead;
}

unsigned gvbe_nbd_quiesce(struct gvbe_nbd *n, int timeout_ms)
{
	double end = now_ms() + timeout_ms;

	if (!n)
		return 0;
	gvbe_nbd_submit(n);
	gvbe_nbd_reap(n);
	while (n->inflight && now_ms() < end) {
		struct timespec ts = { 0, 2 * 1000 * 1000 };

		nanosleep(&ts, NULL);   /* the thread finishes them; look every 2 ms */
		gvbe_nbd_reap(n);
	}
	return n->inflight;
}

void gvbe_nbd_close(struct gvbe_nbd *n)
{
	uint64_t one = 1;

	if (!n)
		return;
	if (n->thread_started) {
		pthread_mutex_lock(&n->lock);
		n->stop = true;
		pthread_mutex_unlock(&n->lock);
		if (write(n->wake, &one, sizeof(one)) < 0) {
			/* the thread looks at stop every second anyway */
		}
		pthread_join(n->thread, NULL);
		pthread_mutex_destroy(&n->lock);
	}
	/* no NBD_CMD_DISC: it would wait for the server; closing the socket
	 * is a disconnect every server handles */
	if (n->h)
		nbd_close(n->h);
	close(n->wake);
	free(n->uri);
	free(n);
}

#else /* !GVBE_HAVE_NBD: built without libnbd */

int gvbe_nbd_open(const char *uri, bool ro, int done_efd, struct gvbe_nbd **out,
                  struct gvbe_nbd_info *info, char *err, size_t errlen)
{
	(void)ro, (void)done_efd, (void)out, (void)info;
	snprintf(err, errlen, "NBD %s: this gv-backend was built without libnbd (libnbd-dev)", uri);
	return -ENOTSUP;
}

int gvbe_nbd_probe(const char *uri, bool ro, char *err, size_t errlen)
{
	return gvbe_nbd_open(uri, ro, -1, NULL, NULL, err, errlen);
}

int gvbe_nbd_start(const char *uri, bool ro, int notify_efd, struct gvbe_nbd **out,
                   char *err, size_t errlen)
{
	(void)notify_efd;
	return gvbe_nbd_open(uri, ro, -1, out, NULL, err, errlen);
}

int gvbe_nbd_connected(struct gvbe_nbd *n, struct gvbe_nbd_info *info, char *err, size_t errlen)
{
	(void)n, (void)info, (void)err, (void)errlen;
	return -ENOTSUP;
}

void gvbe_nbd_set_efd(struct gvbe_nbd *n, int done_efd) { (void)n, (void)done_efd; }
void gvbe_nbd_queue(struct gvbe_nbd *n, struct gvbe_req *r) { (void)n, (void)r; }
void gvbe_nbd_submit(struct gvbe_nbd *n) { (void)n; }
unsigned gvbe_nbd_reap(struct gvbe_nbd *n) { (void)n; return 0; }
unsigned gvbe_nbd_inflight(const struct gvbe_nbd *n) { (void)n; return 0; }
unsigned gvbe_nbd_quiesce(struct gvbe_nbd *n, int timeout_ms) { (void)n, (void)timeout_ms; return 0; }
void gvbe_nbd_close(struct gvbe_nbd *n) { (void)n; }
bool gvbe_nbd_dead(const struct gvbe_nbd *n) { (void)n; return true; }

#endif
