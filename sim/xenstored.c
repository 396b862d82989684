/*
 * sim/xenstored.c: the simulated xenstored's sockets and wire protocol.
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
 * The store itself is in xenstored_tree.c.
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
#include <sys/un.h>
#include <unistd.h>
#include "log.h"
#include "simxen.h"
#include "xenstored.h"

#define XS_MAX_WATCHES       128     /* per connection; more: E2BIG */
#define XS_MAX_TRANS         10      /* open per connection; more: ENOSPC */
#define XS_MAX_CONNS         256     /* per domain */
#define XS_MAX_DOM_TRANS     64      /* open per domain: each holds a copy of the store */
#define XS_TX_MAX_ACCESS     4096    /* nodes one transaction may touch */
#define XS_TX_MAX_OPS        1024    /* changes one transaction may make */
#define XS_OUT_MAX           (1u << 20)  /* queued output that drops a connection */
#define XS_OUT_PAUSE         (64u << 10) /* queued output that pauses reading it */
#define XS_HDR               sizeof(struct xsd_sockmsg)
#define XS_IN_CAP            (2 * (XS_HDR + XENSTORE_PAYLOAD_MAX))

struct xs_watch {
	struct xs_watch *next;
	char *path;          /* canonical, or "@introduceDomain"/"@releaseDomain" */
	char *token;
	size_t strip;        /* a relative watch reports paths without this many chars */
};

/* A node a transaction used, and its generation then (0: it did not exist). */
struct xs_access {
	char *path;
	uint64_t gen;
};

enum xs_txop_type { TXOP_WRITE, TXOP_MKDIR, TXOP_RM, TXOP_SET_PERMS };

/* A change made in a transaction, replayed on the live tree at commit. */
struct xs_txop {
	enum xs_txop_type type;
	char *path;
	char *data;                  /* TXOP_WRITE */
	unsigned len;
	struct xs_perm *perms;       /* TXOP_SET_PERMS */
	unsigned nperms;
};

struct xs_trans {
	struct xs_trans *next;
	uint32_t id;
	struct xs_tree tree;         /* private snapshot plus own changes */
	struct xs_access *acc;
	unsigned nacc, acc_cap;
	struct xs_txop *ops;
	unsigned nops, ops_cap;
	unsigned created;            /* nodes made, for the quota */
};

struct xs_domain;

struct xs_conn {
	struct xs_conn *next;
	struct xs_domain *dom;
	domid_t domid;
	int fd;
	uint32_t events;             /* what the loop watches for now */
	bool dead;                   /* close at the next reap */
	bool closing;                /* protocol violation: close once flushed */
	bool held;                   /* complete requests wait for output to drain */
	bool warned;                 /* one log line per connection for bad requests */
	uint8_t in[XS_IN_CAP];
	size_t inlen;
	uint8_t *out;
	size_t outhead, outlen, outcap;
	struct xs_watch *watches;
	unsigned nwatches;
	struct xs_trans *trans;
	unsigned ntrans;
	uint32_t next_tx;
};

struct xs_domain {
	struct xs_domain *next;
	domid_t domid;
	int lfd;
	unsigned nconns;
	unsigned ntrans;             /* open transactions of all its connections */
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static struct xs_tree live = { .live = true };
static struct xs_conn *conns;
static struct xs_domain *domains;
static bool reap_needed;
static bool initialised;
static int spare_fd = -1;   /* given up to refuse a client when out of descriptors */

static const char *type_name(uint32_t type)
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

static void conn_kill(struct xs_conn *c, const char *why)
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
			conn_kill(c, "cannot update the event loop");
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
			conn_kill(c, NULL);   /* the peer went away: nothing to report */
			return;
		}
	}
	if (c->outhead == c->outlen)
		c->outhead = c->outlen = 0;
	if (c->closing && !c->outlen) {
		conn_kill(c, NULL);
		return;
	}
	conn_set_events(c);
}

static void send_msg(struct xs_conn *c, uint32_t type, uint32_t req_id, uint32_t tx_id,
                     const void *body, size_t len)
{
	struct xsd_sockmsg h = { .type = type, .req_id = req_id, .tx_id = tx_id,
	                         .len = (uint32_t)len };
	size_t need;

	if (c->dead)
		return;
	if (c->outlen - c->outhead + XS_HDR + len > XS_OUT_MAX) {
		conn_kill(c, "more than 1 MiB of replies and watch events unread");
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
			conn_kill(c, "out of memory");
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

static void send_error(struct xs_conn *c, const struct xsd_sockmsg *req, int err)
{
	const char *name = "EINVAL";

	/* the names are the ones the client library maps back (xs_wire.h) */
	for (size_t i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++)
		if (xsd_errors[i].errnum == -err) {
			name = xsd_errors[i].errstring;
			break;
		}
	gv_debug("xenstored: dom%u: %s req %u: %s", (unsigned)c->domid, type_name(req->type),
	         req->req_id, name);
	send_msg(c, XS_ERROR, req->req_id, req->tx_id, name, strlen(name) + 1);
}

static void send_ok(struct xs_conn *c, const struct xsd_sockmsg *req)
{
	send_msg(c, req->type, req->req_id, req->tx_id, "OK", 3);
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
	send_msg(c, XS_WATCH_EVENT, 0, 0, body, (size_t)n + 1);
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

static void watch_free(struct xs_watch *w)
{
	free(w->path);
	free(w->token);
	free(w);
}

/* ---- transactions -------------------------------------------------------- */

static void trans_free(struct xs_trans *t)
{
	xs_tree_free(&t->tree);
	for (unsigned i = 0; i < t->nacc; i++)
		free(t->acc[i].path);
	for (unsigned i = 0; i < t->nops; i++) {
		free(t->ops[i].path);
		free(t->ops[i].data);
		free(t->ops[i].perms);
	}
	free(t->acc);
	free(t->ops);
	free(t);
}

static struct xs_trans *trans_find(struct xs_conn *c, uint32_t id)
{
	for (struct xs_trans *t = c->trans; t; t = t->next)
		if (t->id == id)
			return t;
	return NULL;
}

static void trans_unlink(struct xs_conn *c, struct xs_trans *t)
{
	for (struct xs_trans **pp = &c->trans; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			c->ntrans--;
			if (c->dom)
				c->dom->ntrans--;
			return;
		}
}

/* Remembers the generation path had in the snapshot, the first time the
 * transaction uses it: every change records before it changes, so the first
 * record is always the state at the start. */
static int trans_note(struct xs_trans *t, const char *path)
{
	const struct xs_node *n;

	if (!t)
		return 0;
	for (unsigned i = 0; i < t->nacc; i++)
		if (!strcmp(t->acc[i].path, path))
			return 0;
	if (t->nacc == XS_TX_MAX_ACCESS)
		return -ENOSPC;
	if (t->nacc == t->acc_cap) {
		unsigned cap = t->acc_cap ? 2 * t->acc_cap : 16;
		struct xs_access *a = realloc(t->acc, cap * sizeof(*a));

		if (!a)
			return -ENOMEM;
		t->acc = a;
		t->acc_cap = cap;
	}
	n = xs_lookup(&t->tree, path);
	t->acc[t->nacc].path = strdup(path);
	if (!t->acc[t->nacc].path)
		return -ENOMEM;
	t->acc[t->nacc++].gen = n ? n->gen : 0;
	return 0;
}

/* Before creating path: it and its missing ancestors must stay absent, and
 * the nearest existing ancestor (whose children change) must stay as it is. */
static int trans_note_create(struct xs_trans *t, const char *path)
{
	char p[XENSTORE_ABS_PATH_MAX + 1];
	int rc;

	if (!t)
		return 0;
	snprintf(p, sizeof(p), "%s", path);
	for (;;) {
		char *slash;

		rc = trans_note(t, p);
		if (rc || xs_lookup(&t->tree, p))
			return rc;
		slash = strrchr(p, '/');
		if (slash == p)
			slash[1] = 0;
		else
			*slash = 0;
	}
}

static int trans_log(struct xs_trans *t, enum xs_txop_type type, const char *path,
                     const void *data, unsigned len, const struct xs_perm *perms,
                     unsigned nperms)
{
	struct xs_txop *op;

	if (t->nops == XS_TX_MAX_OPS)
		return -ENOSPC;
	if (t->nops == t->ops_cap) {
		unsigned cap = t->ops_cap ? 2 * t->ops_cap : 8;
		struct xs_txop *o = realloc(t->ops, cap * sizeof(*o));

		if (!o)
			return -ENOMEM;
		t->ops = o;
		t->ops_cap = cap;
	}
	op = &t->ops[t->nops];
	memset(op, 0, sizeof(*op));
	op->type = type;
	op->path = strdup(path);
	if (data) {
		op->data = malloc(len + 1);
		if (op->data)
			memcpy(op->data, data, len);
		op->len = len;
	}
	if (perms) {
		op->perms = malloc(nperms * sizeof(*perms));
		if (op->perms)
			memcpy(op->perms, perms, nperms * sizeof(*perms));
		op->nperms = nperms;
	}
	if (!op->path || (data && !op->data) || (perms && !op->perms)) {
		free(op->path);
		free(op->data);
		free(op->perms);
		return -ENOMEM;
	}
	t->nops++;
	return 0;
}

/* Commit: -EAGAIN if any node the transaction used changed meanwhile (per-node
 * generations, so unrelated traffic does not fail it); else the logged changes
 * are replayed on the live tree, which fires the watches. */
static int trans_commit(struct xs_conn *c, struct xs_trans *t)
{
	for (unsigned i = 0; i < t->nacc; i++) {
		const struct xs_node *n = xs_lookup(&live, t->acc[i].path);

		if ((n ? n->gen : 0) != t->acc[i].gen) {
			gv_debug("xenstored: dom%u transaction %u: %s changed: EAGAIN",
			         (unsigned)c->domid, t->id, t->acc[i].path);
			return -EAGAIN;
		}
	}
	for (unsigned i = 0; i < t->nops; i++) {
		const struct xs_txop *op = &t->ops[i];
		int rc = 0;

		switch (op->type) {
		case TXOP_WRITE: rc = xs_do_write(&live, op->path, op->data, op->len, c->domid); break;
		case TXOP_MKDIR: rc = xs_do_mkdir(&live, op->path, c->domid); break;
		case TXOP_RM: rc = xs_do_rm(&live, op->path); break;
		case TXOP_SET_PERMS: rc = xs_do_set_perms(&live, op->path, op->perms, op->nperms); break;
		}
		/* checked in the snapshot, and nothing used changed: only ENOMEM */
		if (rc && rc != -ENOENT)
			gv_warn("xenstored: dom%u transaction %u: replaying a change of %s: %s",
			        (unsigned)c->domid, t->id, op->path, strerror(-rc));
	}
	return 0;
}

/* ---- requests ------------------------------------------------------------ */

/* Splits a payload of NUL-terminated strings; -EINVAL unless it ends in NUL. */
static int split_args(char *body, size_t len, char **argv, int max)
{
	int n = 0;

	if (!len || body[len - 1])
		return -EINVAL;
	for (size_t off = 0; off < len; off += strlen(body + off) + 1) {
		if (n == max)
			return -EINVAL;
		argv[n++] = body + off;
	}
	return n;
}

static int one_arg(char *body, size_t len, char **arg)
{
	return split_args(body, len, arg, 1) == 1 ? 0 : -EINVAL;
}

static int parse_domid(const char *s, domid_t *out)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v >= DOMID_FIRST_RESERVED)
		return -EINVAL;
	*out = (domid_t)v;
	return 0;
}

static size_t list_children(const struct xs_node *n, char *buf, size_t cap, bool *fits)
{
	size_t used = 0;

	*fits = true;
	for (unsigned i = 0; i < n->nchildren; i++) {
		size_t l = strlen(n->children[i]->name) + 1;

		if (used + l > cap) {
			*fits = false;
			break;
		}
		memcpy(buf + used, n->children[i]->name, l);
		used += l;
	}
	return used;
}

static int do_read(struct xs_conn *c, struct xs_trans *t, const struct xsd_sockmsg *h,
                   char *body)
{
	struct xs_tree *tree = t ? &t->tree : &live;
	char path[XENSTORE_ABS_PATH_MAX + 1], *arg;
	struct xs_node *n;
	int rc;

	if ((rc = one_arg(body, h->len, &arg)) ||
	    (rc = xs_canonical_path(c->domid, arg, path, sizeof(path))))
		return rc;
	n = xs_get_node(tree, path, c->domid, XS_PERM_READ, &rc);
	if (!n) {
		if (rc == -ENOENT)
			trans_note(t, path);   /* its appearing is a conflict too */
		return rc;
	}
	if ((rc = trans_note(t, path)))
		return rc;

	switch (h->type) {
	case XS_READ:
		send_msg(c, h->type, h->req_id, h->tx_id, n->value, n->vlen);
		return 0;
	case XS_GET_PERMS: {
		char buf[XENSTORE_PAYLOAD_MAX];

		send_msg(c, h->type, h->req_id, h->tx_id, buf, xs_format_perms(n, buf, sizeof(buf)));
		return 0;
	}
	default: {   /* XS_DIRECTORY */
		char buf[XENSTORE_PAYLOAD_MAX];
		bool fits;
		size_t len = list_children(n, buf, sizeof(buf), &fits);

		/* too long for one reply: the client library then asks for
		 * XS_DIRECTORY_PART, as with xenstored */
		if (!fits)
			return -E2BIG;
		send_msg(c, h->type, h->req_id, h->tx_id, buf, len);
		return 0;
	}
	}
}

/*
 * XS_DIRECTORY_PART path\0offset\0: the reply is the node's generation as a
 * decimal string, then as many whole child names (each NUL-terminated) from
 * byte offset of the list as fit, then one more NUL if that ends the list. A
 * client restarts when the generation changes between parts.
 */
static int do_directory_part(struct xs_conn *c, struct xs_trans *t,
                             const struct xsd_sockmsg *h, char *body)
{
	struct xs_tree *tree = t ? &t->tree : &live;
	char path[XENSTORE_ABS_PATH_MAX + 1], *argv[2], out[XENSTORE_PAYLOAD_MAX];
	unsigned long off, pos = 0;
	struct xs_node *n;
	unsigned i;
	size_t used;
	char *end;
	int rc;

	if (split_args(body, h->len, argv, 2) != 2)
		return -EINVAL;
	if ((rc = xs_canonical_path(c->domid, argv[0], path, sizeof(path))))
		return rc;
	errno = 0;
	off = strtoul(argv[1], &end, 10);
	if (errno || *end || !*argv[1])
		return -EINVAL;
	n = xs_get_node(tree, path, c->domid, XS_PERM_READ, &rc);
	if (!n) {
		if (rc == -ENOENT)
			trans_note(t, path);   /* its appearing is a conflict too */
		return rc;
	}
	if ((rc = trans_note(t, path)))
		return rc;
	used = (size_t)snprintf(out, sizeof(out), "%llu", (unsigned long long)n->gen) + 1;
	for (i = 0; i < n->nchildren; i++) {
		size_t l = strlen(n->children[i]->name) + 1;

		if (pos >= off) {
			/* keep room for the closing NUL */
			if (used + l + 1 > sizeof(out))
				break;
			memcpy(out + used, n->children[i]->name, l);
			used += l;
		}
		pos += l;
	}
	if (i == n->nchildren)
		out[used++] = 0;   /* the list ends in this reply */
	send_msg(c, h->type, h->req_id, h->tx_id, out, used);
	return 0;
}

static int do_write(struct xs_conn *c, struct xs_trans *t, const struct xsd_sockmsg *h,
                    char *body)
{
	struct xs_tree *tree = t ? &t->tree : &live;
	char path[XENSTORE_ABS_PATH_MAX + 1];
	size_t plen = strnlen(body, h->len);
	const char *val;
	unsigned vlen, missing;
	struct xs_node *n;
	int rc;

	if (h->type == XS_WRITE) {
		if (plen == h->len)
			return -EINVAL;   /* no NUL after the path */
		val = body + plen + 1;
		vlen = h->len - (unsigned)plen - 1;
	} else {
		char *arg;

		if ((rc = one_arg(body, h->len, &arg)))
			return rc;
		val = NULL;
		vlen = 0;
	}
	if ((rc = xs_canonical_path(c->domid, body, path, sizeof(path))))
		return rc;
	n = xs_get_node(tree, path, c->domid, XS_PERM_WRITE, &rc);
	if (!n && rc != -ENOENT)
		return rc;
	if (n && h->type == XS_MKDIR) {
		if ((rc = trans_note(t, path)))
			return rc;
		send_ok(c, h);
		return 0;
	}
	missing = xs_missing_nodes(tree, path);
	if (missing && (rc = xs_check_quota(tree, path, c->domid, t ? t->created : 0)))
		return rc;
	if ((rc = n ? trans_note(t, path) : trans_note_create(t, path)))
		return rc;
	if (t && (rc = trans_log(t, h->type == XS_WRITE ? TXOP_WRITE : TXOP_MKDIR, path,
	                         h->type == XS_WRITE ? val : NULL, vlen, NULL, 0)))
		return rc;
	if (h->type == XS_WRITE)
		rc = xs_do_write(tree, path, val, vlen, c->domid);
	else
		rc = xs_do_mkdir(tree, path, c->domid);
	if (rc)
		return rc;
	if (t && c->domid)
		t->created += missing;
	send_ok(c, h);
	return 0;
}

static int do_rm(struct xs_conn *c, struct xs_trans *t, const struct xsd_sockmsg *h, char *body)
{
	struct xs_tree *tree = t ? &t->tree : &live;
	char path[XENSTORE_ABS_PATH_MAX + 1], parent[XENSTORE_ABS_PATH_MAX + 1], *arg, *slash;
	struct xs_node *n;
	int rc;

	if ((rc = one_arg(body, h->len, &arg)) ||
	    (rc = xs_canonical_path(c->domid, arg, path, sizeof(path))))
		return rc;
	if (!strcmp(path, "/"))
		return -EINVAL;
	snprintf(parent, sizeof(parent), "%s", path);
	slash = strrchr(parent, '/');
	slash[slash == parent ? 1 : 0] = 0;
	n = xs_get_node(tree, path, c->domid, XS_PERM_WRITE, &rc);
	if (!n) {
		if (rc != -ENOENT)
			return rc;
		/* as xenstored: removing what is not there is fine if its
		 * parent exists */
		if (!xs_lookup(tree, parent))
			return -ENOENT;
		if ((rc = trans_note(t, path)))
			return rc;
		send_ok(c, h);
		return 0;
	}
	if ((rc = trans_note(t, path)) || (rc = trans_note(t, parent)))
		return rc;
	if (t && (rc = trans_log(t, TXOP_RM, path, NULL, 0, NULL, 0)))
		return rc;
	if ((rc = xs_do_rm(tree, path)))
		return rc;
	send_ok(c, h);
	return 0;
}

static int do_set_perms(struct xs_conn *c, struct xs_trans *t, const struct xsd_sockmsg *h,
                        char *body)
{
	struct xs_tree *tree = t ? &t->tree : &live;
	char path[XENSTORE_ABS_PATH_MAX + 1], *argv[XS_MAX_PERMS + 1];
	struct xs_perm perms[XS_MAX_PERMS];
	struct xs_node *n;
	int argc = split_args(body, h->len, argv, XS_MAX_PERMS + 1), rc;

	if (argc < 2)
		return -EINVAL;
	if ((rc = xs_canonical_path(c->domid, argv[0], path, sizeof(path))))
		return rc;
	for (int i = 1; i < argc; i++)
		if ((rc = xs_parse_perm(argv[i], &perms[i - 1])))
			return rc;
	n = xs_get_node(tree, path, c->domid, XS_PERM_WRITE, &rc);
	if (!n)
		return rc;
	/* only the owner (or dom0) sets permissions, and only dom0 gives a node away */
	if (c->domid && c->domid != n->perms[0].id)
		return -EACCES;
	if (c->domid && perms[0].id != n->perms[0].id)
		return -EPERM;
	if ((rc = trans_note(t, path)))
		return rc;
	if (t && (rc = trans_log(t, TXOP_SET_PERMS, path, NULL, 0, perms, (unsigned)argc - 1)))
		return rc;
	if ((rc = xs_do_set_perms(tree, path, perms, (unsigned)argc - 1)))
		return rc;
	send_ok(c, h);
	return 0;
}

/* The stored form of a watch path: canonical, or one of the two special
 * names; *strip says how much a relative watch drops from reported paths. */
static int watch_path(struct xs_conn *c, const char *in, char *out, size_t len, size_t *strip)
{
	int rc;

	*strip = 0;
	if (in[0] == '@') {
		if (strcmp(in, "@introduceDomain") && strcmp(in, "@releaseDomain"))
			return -EINVAL;
		memcpy(out, in, strlen(in) + 1);   /* one of the two short names */
		return 0;
	}
	if ((rc = xs_canonical_path(c->domid, in, out, len)))
		return rc;
	if (in[0] != '/')
		*strip = strlen(out) - strlen(in);
	return 0;
}

static int do_watch(struct xs_conn *c, const struct xsd_sockmsg *h, char *body)
{
	char path[XENSTORE_ABS_PATH_MAX + 1], *argv[2];
	struct xs_watch *w, **pp;
	size_t strip;
	int rc;

	if (split_args(body, h->len, argv, 2) != 2)
		return -EINVAL;
	if ((rc = watch_path(c, argv[0], path, sizeof(path), &strip)))
		return rc;
	for (pp = &c->watches; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->path, path) && !strcmp((*pp)->token, argv[1])) {
			if (h->type == XS_WATCH)
				return -EEXIST;
			w = *pp;
			*pp = w->next;
			watch_free(w);
			c->nwatches--;
			send_ok(c, h);
			return 0;
		}
	if (h->type == XS_UNWATCH)
		return -ENOENT;
	if (c->nwatches >= XS_MAX_WATCHES)
		return -E2BIG;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->path = strdup(path);
	w->token = strdup(argv[1]);
	w->strip = strip;
	if (!w->path || !w->token) {
		watch_free(w);
		return -ENOMEM;
	}
	/* append: events then come in the order watches were made */
	*pp = w;
	c->nwatches++;
	send_ok(c, h);
	/* as xenstored: one event right away, with the path as given */
	send_msg(c, XS_WATCH_EVENT, 0, 0, body, h->len);
	return 0;
}

static void drop_watches_and_transactions(struct xs_conn *c)
{
	while (c->watches) {
		struct xs_watch *w = c->watches;

		c->watches = w->next;
		watch_free(w);
	}
	c->nwatches = 0;
	while (c->trans) {
		struct xs_trans *t = c->trans;

		c->trans = t->next;
		trans_free(t);
		if (c->dom)
			c->dom->ntrans--;
	}
	c->ntrans = 0;
}

static int do_transaction(struct xs_conn *c, const struct xsd_sockmsg *h, char *body)
{
	struct xs_trans *t;
	char *arg, reply[16];
	int rc;

	if ((rc = one_arg(body, h->len, &arg)))
		return rc;
	if (h->type == XS_TRANSACTION_END) {
		if (strcmp(arg, "T") && strcmp(arg, "F"))
			return -EINVAL;
		t = trans_find(c, h->tx_id);
		if (!t)
			return -ENOENT;
		trans_unlink(c, t);
		rc = arg[0] == 'T' ? trans_commit(c, t) : 0;
		trans_free(t);
		if (rc)
			return rc;
		send_ok(c, h);
		return 0;
	}
	if (h->tx_id)
		return -EBUSY;   /* no nesting */
	if (c->ntrans >= XS_MAX_TRANS || (c->dom && c->dom->ntrans >= XS_MAX_DOM_TRANS))
		return -ENOSPC;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	if (xs_tree_clone(&t->tree, &live) < 0) {
		free(t);
		return -ENOMEM;
	}
	do {
		t->id = ++c->next_tx;
	} while (!t->id || trans_find(c, t->id));
	t->next = c->trans;
	c->trans = t;
	c->ntrans++;
	if (c->dom)
		c->dom->ntrans++;
	snprintf(reply, sizeof(reply), "%u", t->id);
	send_msg(c, h->type, h->req_id, h->tx_id, reply, strlen(reply) + 1);
	return 0;
}

static int do_domain_query(struct xs_conn *c, const struct xsd_sockmsg *h, char *body)
{
	char *arg, reply[32];
	domid_t domid;
	int rc;

	if ((rc = one_arg(body, h->len, &arg)) || (rc = parse_domid(arg, &domid)))
		return rc;
	if (h->type == XS_GET_DOMAIN_PATH)
		snprintf(reply, sizeof(reply), "/local/domain/%u", (unsigned)domid);
	else
		snprintf(reply, sizeof(reply), "%s", hv_domain_exists(domid) ? "T" : "F");
	send_msg(c, h->type, h->req_id, h->tx_id, reply, strlen(reply) + 1);
	return 0;
}

static int do_control(struct xs_conn *c, const struct xsd_sockmsg *h, char *body)
{
	char *argv[8];
	int argc;

	if (c->domid)
		return -EACCES;
	argc = split_args(body, h->len, argv, 8);
	if (argc < 1)
		return -EINVAL;
	if (!strcmp(argv[0], "check") || !strcmp(argv[0], "log")) {
		send_ok(c, h);
		return 0;
	}
	if (!strcmp(argv[0], "print") && argc >= 2) {
		gv_info("xenstored: control print: %s", argv[1]);
		send_ok(c, h);
		return 0;
	}
	return -EINVAL;
}

static void handle_msg(struct xs_conn *c, const struct xsd_sockmsg *h, char *body)
{
	struct xs_trans *t = NULL;
	int rc;

	if (gv_log_threshold >= GV_LOG_DEBUG) {
		/* the first argument (usually the path), printable for the log */
		char arg[81];
		size_t i;

		for (i = 0; i + 1 < sizeof(arg) && i < h->len && body[i]; i++)
			arg[i] = body[i] >= 0x20 && body[i] < 0x7f ? body[i] : '?';
		arg[i] = 0;
		gv_debug("xenstored: dom%u: %s req %u tx %u len %u '%s'", (unsigned)c->domid,
		         type_name(h->type), h->req_id, h->tx_id, h->len, arg);
	}
	switch (h->type) {
	case XS_READ: case XS_WRITE: case XS_MKDIR: case XS_RM: case XS_DIRECTORY:
	case XS_DIRECTORY_PART: case XS_GET_PERMS: case XS_SET_PERMS:
		if (h->tx_id && !(t = trans_find(c, h->tx_id))) {
			rc = -ENOENT;
			break;
		}
		switch (h->type) {
		case XS_READ: case XS_DIRECTORY: case XS_GET_PERMS:
			rc = do_read(c, t, h, body);
			break;
		case XS_DIRECTORY_PART:
			rc = do_directory_part(c, t, h, body);
			break;
		case XS_WRITE: case XS_MKDIR:
			rc = do_write(c, t, h, body);
			break;
		case XS_RM:
			rc = do_rm(c, t, h, body);
			break;
		default:
			rc = do_set_perms(c, t, h, body);
			break;
		}
		break;
	case XS_WATCH: case XS_UNWATCH:
		rc = do_watch(c, h, body);
		break;
	case XS_TRANSACTION_START: case XS_TRANSACTION_END:
		rc = do_transaction(c, h, body);
		break;
	case XS_GET_DOMAIN_PATH: case XS_IS_DOMAIN_INTRODUCED:
		rc = do_domain_query(c, h, body);
		break;
	case XS_RESET_WATCHES:
		drop_watches_and_transactions(c);
		send_ok(c, h);
		rc = 0;
		break;
	case XS_CONTROL:
		rc = do_control(c, h, body);
		break;
	case XS_INTRODUCE: case XS_RELEASE:
		/* the simulated hypervisor introduces and releases domains itself */
		rc = c->domid ? -EACCES : 0;
		if (!rc)
			send_ok(c, h);
		break;
	default:
		gv_log(c->warned ? GV_LOG_DEBUG : GV_LOG_WARN,
		       "xenstored: dom%u connection (fd %d): unsupported message type %u (%s)%s",
		       (unsigned)c->domid, c->fd, h->type, type_name(h->type),
		       c->warned ? "" : "; more go to the debug log");
		c->warned = true;
		rc = -EINVAL;
		break;
	}
	if (rc)
		send_error(c, h, rc);
}

/* ---- connections --------------------------------------------------------- */

static void conn_free(struct xs_conn *c)
{
	gv_debug("xenstored: dom%u connection (fd %d) closed", (unsigned)c->domid, c->fd);
	drop_watches_and_transactions(c);
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
			        (unsigned)c->domid, type_name(h.type), h.len, XENSTORE_PAYLOAD_MAX);
			send_error(c, &h, -E2BIG);
			c->closing = true;
			conn_flush(c);
			break;
		}
		if (c->inlen - off < XS_HDR + h.len)
			break;
		memcpy(body, c->in + off + XS_HDR, h.len);
		body[h.len] = 0;   /* string helpers never run past the payload */
		off += XS_HDR + h.len;
		handle_msg(c, &h, body);
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
			conn_kill(c, NULL);   /* the client closed */
		}
	} else if ((events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN)) {
		conn_kill(c, NULL);
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
	return xs_do_write(&live, path, val, (unsigned)strlen(val), 0);
}

int xs_server_init(void)
{
	int rc;

	if (initialised)
		return -EALREADY;
	live.live = true;
	if ((rc = xs_tree_init(&live)))
		return rc;
	/* what xenstored and xen-init-dom0 leave at boot, all dom0's alone */
	if ((rc = xs_do_mkdir(&live, "/local/domain", 0)) || (rc = xs_do_mkdir(&live, "/tool", 0)) ||
	    (rc = write_dom0_node("/local/domain/0/name", "Domain-0")) ||
	    (rc = write_dom0_node("/local/domain/0/domid", "0"))) {
		xs_tree_free(&live);
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
			conn_kill(c, NULL);
		}
	reap();
	sim_loop_del(d->lfd);
	close(d->lfd);
	unlink(d->sock);
	rmdir(d->dir);   /* only if empty: the hypervisor socket may still be there */
	free(d);
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
		xs_tree_free(&live);
	if (spare_fd >= 0)
		close(spare_fd);
	spare_fd = -1;
	initialised = false;
}
