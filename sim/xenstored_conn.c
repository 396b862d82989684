/*
 * sim/xenstored_conn.c: the simulated xenstored's sockets and connection I/O.
 *
 * One Unix stream socket per simulated domain, DIR/dom<N>/xenstored; a client
 * speaks for the domain whose socket it connected to. Messages are the
 * struct xsd_sockmsg framing of <xen/io/xs_wire.h>, so Xen's own libxenstore
 * and xenstore-* tools work unchanged (XENSTORED_PATH=the socket).
 *
 * Everything runs on the daemon's single epoll loop: sockets are non-blocking,
 * each connection has its own input and output buffers, and a connection that
 * does not read its replies and watch events is dropped once it has more than
 * XS_OUT_MAX bytes queued, so one slow or hostile client costs bounded memory
 * and never stalls the others (the intent of Xen's XSA-349 fix).
 *
 * Requests are served by xenstored_req.c, transactions by xenstored_trans.c,
 * the store itself is xenstored_tree.c (xenstored_server.h says who does what).
 *
 * Where this differs from Xen's C xenstored (on purpose, for a simulator):
 *  - @introduceDomain/@releaseDomain reach every watcher of them (Xen limits
 *    unprivileged watchers to domains they have a say over);
 *  - XS_INTRODUCE and XS_RELEASE are accepted no-ops for dom0 (the simulated
 *    hypervisor tells this module itself); XS_SET_TARGET, XS_RESUME: EINVAL;
 *    XS_CONTROL knows only "check", "log" and "print";
 *  - a transaction works on a copy of the store taken at its start; quotas
 *    answer ENOSPC (xs_wire.h has no EQUOTA); nothing persists.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "log.h"
#include "simxen.h"
#include "xenstored_server.h"

struct xs_tree xs_live = { .live = true };
static struct xs_conn *conns;
static struct xs_domain *domains;
static bool reap_needed;
static bool initialised;
static int spare_fd = -1;   /* given up to refuse a client when out of descriptors */

const char *xs_msg_type_name(uint32_t type)
{
	static const char *const names[] = {
		[XS_CONTROL] = "CONTROL", [XS_DIRECTORY] = "DIRECTORY", [XS_READ] = "READ",
		[XS_GET_PERMS] = "GET_PERMS", [XS_WATCH] = "WATCH", [XS_UNWATCH] = "UNWATCH",
		[XS_TRANSACTION_START] = "TRANSACTION_START",
		[XS_TRANSACTION_END] = "TRANSACTION_END", [XS_INTRODUCE] = "INTRODUCE",
		[XS_RELEASE] = "RELEASE", [XS_GET_DOMAIN_PATH] = "GET_DOMAIN_PATH",
		[XS_WRITE] = "WRITE", [XS_MKDIR] = "MKDIR", [XS_RM] = "RM",
		[XS_SET_PERMS] = "SET_PERMS", [XS_WATCH_EVENT] = "WATCH_EVENT",
		[XS_ERROR] = "ERROR", [XS_IS_DOMAIN_INTRODUCED] = "IS_DOMAIN_INTRODUCED",
		[XS_RESUME] = "RESUME", [XS_SET_TARGET] = "SET_TARGET",
		[XS_RESET_WATCHES] = "RESET_WATCHES", [XS_DIRECTORY_PART] = "DIRECTORY_PART",
	};

	return type < sizeof(names) / sizeof(names[0]) && names[type] ? names[type] : "?";
}

/* ---- output ------------------------------------------------------------- */

void xs_conn_kill(struct xs_conn *c, const char *why)
{
	if (c->dead)
		return;
	if (why)
		gv_warn("xenstored: dom%u connection (fd %d): %s; closing it",
		        (unsigned)c->domid, c->fd, why);
	c->dead = true;
	reap_needed = true;
}

static void conn_event(void *ctx, uint32_t events);

static void conn_set_events(struct xs_conn *c)
{
	size_t pending = c->outlen - c->outhead;
	uint32_t want = 0;

	if (c->dead)
		return;
	if (pending)
		want |= EPOLLOUT;
	/* stop reading a client that does not read its replies: it then blocks
	 * in its own write instead of growing our queue */
	if (!c->closing && pending < XS_OUT_PAUSE)
		want |= EPOLLIN;
	if (want != c->events) {
		if (sim_loop_mod(c->fd, want, conn_event, c) < 0) {
			xs_conn_kill(c, "cannot update the event loop");
			return;
		}
		c->events = want;
	}
}

static void conn_flush(struct xs_conn *c)
{
	while (!c->dead && c->outhead < c->outlen) {
		ssize_t n = write(c->fd, c->out + c->outhead, c->outlen - c->outhead);

		if (n > 0) {
			c->outhead += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			break;
		} else {
			xs_conn_kill(c, NULL);   /* the peer went away: nothing to report */
			return;
		}
	}
	if (c->outhead == c->outlen)
		c->outhead = c->outlen = 0;
	if (c->closing && !c->outlen) {
		xs_conn_kill(c, NULL);
		return;
	}
	conn_set_events(c);
}

void xs_send_msg(struct xs_conn *c, uint32_t type, uint32_t req_id, uint32_t tx_id,
                     const void *body, size_t len)
{
	struct xsd_sockmsg h = { .type = type, .req_id = req_id, .tx_id = tx_id,
	                         .len = (uint32_t)len };
	size_t need;

	if (c->dead)
		return;
	if (c->outlen - c->outhead + XS_HDR + len > XS_OUT_MAX) {
		xs_conn_kill(c, "more than 1 MiB of replies and watch events unread");
		return;
	}
	need = c->outlen + XS_HDR + len;
	if (need > c->outcap && c->outhead) {
		/* reclaim what was sent before growing (not on every message:
		 * that would copy the queue over and over for a slow reader) */
		memmove(c->out, c->out + c->outhead, c->outlen - c->outhead);
		c->outlen -= c->outhead;
		c->outhead = 0;
		need = c->outlen + XS_HDR + len;
	}
	if (need > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 4096;
		uint8_t *o;

		while (cap < need)
			cap *= 2;
		o = realloc(c->out, cap);
		if (!o) {
			xs_conn_kill(c, "out of memory");
			return;
		}
		c->out = o;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, &h, XS_HDR);
	if (len)
		memcpy(c->out + c->outlen + XS_HDR, body, len);
	c->outlen += XS_HDR + len;
	conn_flush(c);
}

void xs_send_error(struct xs_conn *c, const struct xsd_sockmsg *req, int err)
{
	const char *name = "EINVAL";

	/* the names are the ones the client library maps back (xs_wire.h) */
	for (size_t i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++)
		if (xsd_errors[i].errnum == -err) {
			name = xsd_errors[i].errstring;
			break;
		}
	gv_debug("xenstored: dom%u: %s req %u: %s", (unsigned)c->domid, xs_msg_type_name(req->type),
	         req->req_id, name);
	xs_send_msg(c, XS_ERROR, req->req_id, req->tx_id, name, strlen(name) + 1);
}

void xs_send_ok(struct xs_conn *c, const struct xsd_sockmsg *req)
{
	xs_send_msg(c, req->type, req->req_id, req->tx_id, "OK", 3);
}

static void send_event(struct xs_conn *c, const struct xs_watch *w, const char *path)
{
	char body[XENSTORE_PAYLOAD_MAX];
	int n;

	if (w->strip && strlen(path) >= w->strip)
		path += w->strip;
	n = snprintf(body, sizeof(body), "%s%c%s", path, 0, w->token);
	if (n < 0 || (size_t)n >= sizeof(body))
		return;   /* both parts were limited when the watch was made */
	xs_send_msg(c, XS_WATCH_EVENT, 0, 0, body, (size_t)n + 1);
}

/* ---- watches ------------------------------------------------------------- */

static bool may_read(const struct xs_perm *p, unsigned n, domid_t domid)
{
	if (domid == 0 || domid == p[0].id)
		return true;
	for (unsigned i = 1; i < n; i++)
		if (p[i].id == domid)
			return p[i].perm & XS_PERM_READ;
	return p[0].perm & XS_PERM_READ;
}

void xs_fire_watches(const char *path, const struct xs_node *n, const struct xs_perm *old,
                     unsigned nold, bool exact)
{
	for (struct xs_conn *c = conns; c; c = c->next) {
		if (c->dead)
			continue;
		/* as xenstored: a watcher hears only of a node it may read (before
		 * or after the change), or whose parent it may read (so a new or
		 * removed child of a directory it watches is no secret) */
		if (!may_read(n->perms, n->nperms, c->domid) &&
		    !(old && may_read(old, nold, c->domid)) &&
		    !(n->parent && may_read(n->parent->perms, n->parent->nperms, c->domid)))
			continue;
		for (struct xs_watch *w = c->watches; w && !c->dead; w = w->next)
			if (exact ? !strcmp(path, w->path) : xs_is_child(path, w->path))
				send_event(c, w, path);
	}
}

/* @introduceDomain and @releaseDomain: only watches on exactly that name. */
static void fire_special(const char *name)
{
	for (struct xs_conn *c = conns; c; c = c->next)
		for (struct xs_watch *w = c->watches; w && !c->dead; w = w->next)
			if (!strcmp(w->path, name))
				send_event(c, w, name);
}

/* ---- connections --------------------------------------------------------- */

static void conn_free(struct xs_conn *c)
{
	gv_debug("xenstored: dom%u connection (fd %d) closed", (unsigned)c->domid, c->fd);
	xs_conn_drop_state(c);
	sim_loop_del(c->fd);
	close(c->fd);
	if (c->dom)
		c->dom->nconns--;
	free(c->out);
	free(c);
}

static void reap(void)
{
	if (!reap_needed)
		return;
	reap_needed = false;
	for (struct xs_conn **pp = &conns; *pp;) {
		struct xs_conn *c = *pp;

		if (c->dead) {
			*pp = c->next;
			conn_free(c);
		} else {
			pp = &c->next;
		}
	}
}

static void process_input(struct xs_conn *c)
{
	size_t off = 0;

	while (!c->dead && !c->closing && c->inlen - off >= XS_HDR &&
	       c->outlen - c->outhead < XS_OUT_PAUSE) {
		struct xsd_sockmsg h;
		char body[XENSTORE_PAYLOAD_MAX + 1];

		memcpy(&h, c->in + off, XS_HDR);
		if (h.len > XENSTORE_PAYLOAD_MAX) {
			/* the stream cannot be trusted past this: answer, then close */
			gv_warn("xenstored: dom%u: %s message of %u bytes (max %u); closing the connection",
			        (unsigned)c->domid, xs_msg_type_name(h.type), h.len, XENSTORE_PAYLOAD_MAX);
			xs_send_error(c, &h, -E2BIG);
			c->closing = true;
			conn_flush(c);
			break;
		}
		if (c->inlen - off < XS_HDR + h.len)
			break;
		memcpy(body, c->in + off + XS_HDR, h.len);
		body[h.len] = 0;   /* string helpers never run past the payload */
		off += XS_HDR + h.len;
		xs_handle_msg(c, &h, body);
	}
	c->held = !c->dead && !c->closing && c->inlen - off >= XS_HDR;
	if (off) {
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
	}
}

/* A client whose requests were held back while it owed us output may have
 * been drained by a write made for someone else (a watch event): serve it now,
 * outside any other connection's request, since no EPOLLOUT will come. */
static void resume_held(void)
{
	for (struct xs_conn *c = conns; c; c = c->next)
		if (c->held && !c->dead && c->outlen - c->outhead < XS_OUT_PAUSE) {
			process_input(c);
			conn_set_events(c);
		}
}

static void conn_event(void *ctx, uint32_t events)
{
	struct xs_conn *c = ctx;

	if (events & EPOLLOUT) {
		conn_flush(c);
		process_input(c);   /* requests held back while output was queued */
	}
	if (!c->dead && !c->closing && c->inlen < sizeof(c->in) &&
	    (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		ssize_t n = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);

		if (n > 0) {
			c->inlen += (size_t)n;
			process_input(c);
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			xs_conn_kill(c, NULL);   /* the client closed */
		}
	} else if ((events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN)) {
		xs_conn_kill(c, NULL);
	}
	if (!c->dead)
		conn_set_events(c);
	resume_held();
	reap();
}

static void accept_event(void *ctx, uint32_t events)
{
	struct xs_domain *d = ctx;

	(void)events;
	for (;;) {
		int fd = accept4(d->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct xs_conn *c;

		if (fd < 0 && (errno == EMFILE || errno == ENFILE) && spare_fd >= 0) {
			/* Out of descriptors: the listener would stay readable and
			 * the loop spin. Give up the spare one to accept the client
			 * and close it at once, so it sees EOF instead of hanging. */
			close(spare_fd);
			fd = accept4(d->lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				close(fd);
			spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			gv_warn("xenstored: dom%u: out of file descriptors; dropped a new connection",
			        (unsigned)d->domid);
			if (fd >= 0)
				continue;
			return;
		}
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				gv_warn("xenstored: dom%u: accept: %s", (unsigned)d->domid, strerror(errno));
			return;
		}
		if (d->nconns >= XS_MAX_CONNS) {
			gv_warn("xenstored: dom%u: %u connections already; refusing another",
			        (unsigned)d->domid, d->nconns);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->dom = d;
		c->domid = d->domid;
		c->events = EPOLLIN;
		if (sim_loop_add(fd, EPOLLIN, conn_event, c) < 0) {
			gv_warn("xenstored: dom%u: cannot watch a new connection", (unsigned)d->domid);
			close(fd);
			free(c);
			continue;
		}
		d->nconns++;
		c->next = conns;
		conns = c;
		gv_debug("xenstored: dom%u connection (fd %d) opened", (unsigned)d->domid, fd);
	}
}

/* ---- the module interface (simxen.h) -------------------------------------- */

static int write_dom0_node(const char *path, const char *val)
{
	return xs_do_write(&xs_live, path, val, (unsigned)strlen(val), 0);
}

int xs_server_init(void)
{
	int rc;

	if (initialised)
		return -EALREADY;
	xs_live.live = true;
	if ((rc = xs_tree_init(&xs_live)))
		return rc;
	/* what xenstored and xen-init-dom0 leave at boot, all dom0's alone */
	if ((rc = xs_do_mkdir(&xs_live, "/local/domain", 0)) || (rc = xs_do_mkdir(&xs_live, "/tool", 0)) ||
	    (rc = write_dom0_node("/local/domain/0/name", "Domain-0")) ||
	    (rc = write_dom0_node("/local/domain/0/domid", "0"))) {
		xs_tree_free(&xs_live);
		return rc;
	}
	spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	initialised = true;
	return 0;
}

static struct xs_domain *domain_find(domid_t domid)
{
	for (struct xs_domain *d = domains; d; d = d->next)
		if (d->domid == domid)
			return d;
	return NULL;
}

int xs_server_add_domain(domid_t domid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct xs_domain *d;
	int rc;

	if (!initialised)
		return -EINVAL;
	if (domain_find(domid))
		return -EEXIST;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->domid = domid;
	if (!sim_path(d->dir, sizeof(d->dir), domid, NULL) ||
	    !sim_path(d->sock, sizeof(d->sock), domid, "xenstored")) {
		gv_err("xenstored: dom%u: socket path too long", (unsigned)domid);
		rc = -ENAMETOOLONG;
		goto free_domain;
	}
	if (mkdir(d->dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		gv_err("xenstored: cannot create %s: %s", d->dir, strerror(errno));
		goto free_domain;
	}
	d->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->lfd < 0) {
		rc = -errno;
		goto remove_dir;
	}
	memcpy(sa.sun_path, d->sock, strlen(d->sock) + 1);
	unlink(d->sock);   /* a socket left by a killed daemon; the lock says none runs */
	if (bind(d->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(d->lfd, 64) < 0) {
		rc = -errno;
		gv_err("xenstored: cannot listen on %s: %s", d->sock, strerror(errno));
		goto close_socket;
	}
	if ((rc = sim_loop_add(d->lfd, EPOLLIN, accept_event, d)) < 0)
		goto unlink_socket;
	d->next = domains;
	domains = d;
	gv_info("xenstored: serving dom%u on %s", (unsigned)domid, d->sock);
	fire_special("@introduceDomain");
	reap();
	return 0;

unlink_socket:
	unlink(d->sock);
close_socket:
	close(d->lfd);
remove_dir:
	rmdir(d->dir);
free_domain:
	free(d);
	return rc;
}

static void domain_close(struct xs_domain *d)
{
	for (struct xs_conn *c = conns; c; c = c->next)
		if (c->dom == d) {
			c->dom = NULL;
			xs_conn_kill(c, NULL);
		}
	reap();
	sim_loop_del(d->lfd);
	close(d->lfd);
	unlink(d->sock);
	rmdir(d->dir);   /* only if empty: the hypervisor socket may still be there */
	free(d);
}

void xs_server_move_conns(domid_t from, domid_t to)
{
	struct xs_domain *a = domain_find(from), *b = domain_find(to);

	if (!a || !b)
		return;
	for (struct xs_conn *c = conns; c; c = c->next) {
		if (c->dom != a || c->dead)
			continue;
		c->dom = b;
		c->domid = to;
		a->nconns--;
		b->nconns++;
		for (struct xs_watch *w = c->watches; w && !c->dead; w = w->next)
			send_event(c, w, w->path);
	}
	gv_info("xenstored: dom%u's connections now belong to dom%u", (unsigned)from, (unsigned)to);
}

void xs_server_remove_domain(domid_t domid)
{
	for (struct xs_domain **pp = &domains; *pp; pp = &(*pp)->next) {
		struct xs_domain *d = *pp;

		if (d->domid != domid)
			continue;
		*pp = d->next;
		domain_close(d);
		gv_info("xenstored: dom%u released", (unsigned)domid);
		fire_special("@releaseDomain");
		reap();
		return;
	}
}

void xs_server_fini(void)
{
	while (domains) {
		struct xs_domain *d = domains;

		domains = d->next;
		domain_close(d);
	}
	if (initialised)
		xs_tree_free(&xs_live);
	if (spare_fd >= 0)
		close(spare_fd);
	spare_fd = -1;
	initialised = false;
}
