/*
 * sim/xenstored_req.c: the simulated xenstored's request handlers, one per
 * message type of <xen/io/xs_wire.h>: each parses its payload (NUL-separated
 * strings), checks permissions and quotas on the store or the transaction's
 * snapshot, and queues its reply. Framing and sending are xenstored_conn.c's,
 * transactions xenstored_trans.c's, the store xenstored_tree.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "simxen.h"
#include "xenstored_server.h"

static void watch_free(struct xs_watch *w)
{
	free(w->path);
	free(w->token);
	free(w);
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
	struct xs_tree *tree = t ? &t->tree : &xs_live;
	char path[XENSTORE_ABS_PATH_MAX + 1], *arg;
	struct xs_node *n;
	int rc;

	if ((rc = one_arg(body, h->len, &arg)) ||
	    (rc = xs_canonical_path(c->domid, arg, path, sizeof(path))))
		return rc;
	n = xs_get_node(tree, path, c->domid, XS_PERM_READ, &rc);
	if (!n) {
		if (rc == -ENOENT)
			xs_trans_note(t, path);   /* its appearing is a conflict too */
		return rc;
	}
	if ((rc = xs_trans_note(t, path)))
		return rc;

	switch (h->type) {
	case XS_READ:
		xs_send_msg(c, h->type, h->req_id, h->tx_id, n->value, n->vlen);
		return 0;
	case XS_GET_PERMS: {
		char buf[XENSTORE_PAYLOAD_MAX];

		xs_send_msg(c, h->type, h->req_id, h->tx_id, buf, xs_format_perms(n, buf, sizeof(buf)));
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
		xs_send_msg(c, h->type, h->req_id, h->tx_id, buf, len);
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
	struct xs_tree *tree = t ? &t->tree : &xs_live;
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
			xs_trans_note(t, path);   /* its appearing is a conflict too */
		return rc;
	}
	if ((rc = xs_trans_note(t, path)))
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
	xs_send_msg(c, h->type, h->req_id, h->tx_id, out, used);
	return 0;
}

static int do_write(struct xs_conn *c, struct xs_trans *t, const struct xsd_sockmsg *h,
                    char *body)
{
	struct xs_tree *tree = t ? &t->tree : &xs_live;
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
		if ((rc = xs_trans_note(t, path)))
			return rc;
		xs_send_ok(c, h);
		return 0;
	}
	missing = xs_missing_nodes(tree, path);
	if (missing && (rc = xs_check_quota(tree, path, c->domid, t ? t->created : 0)))
		return rc;
	if ((rc = n ? xs_trans_note(t, path) : xs_trans_note_create(t, path)))
		return rc;
	if (t && (rc = xs_trans_log(t, h->type == XS_WRITE ? TXOP_WRITE : TXOP_MKDIR, path,
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
	xs_send_ok(c, h);
	return 0;
}

static int do_rm(struct xs_conn *c, struct xs_trans *t, const struct xsd_sockmsg *h, char *body)
{
	struct xs_tree *tree = t ? &t->tree : &xs_live;
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
		if ((rc = xs_trans_note(t, path)))
			return rc;
		xs_send_ok(c, h);
		return 0;
	}
	if ((rc = xs_trans_note(t, path)) || (rc = xs_trans_note(t, parent)))
		return rc;
	if (t && (rc = xs_trans_log(t, TXOP_RM, path, NULL, 0, NULL, 0)))
		return rc;
	if ((rc = xs_do_rm(tree, path)))
		return rc;
	xs_send_ok(c, h);
	return 0;
}

static int do_set_perms(struct xs_conn *c, struct xs_trans *t, const struct xsd_sockmsg *h,
                        char *body)
{
	struct xs_tree *tree = t ? &t->tree : &xs_live;
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
	if ((rc = xs_trans_note(t, path)))
		return rc;
	if (t && (rc = xs_trans_log(t, TXOP_SET_PERMS, path, NULL, 0, perms, (unsigned)argc - 1)))
		return rc;
	if ((rc = xs_do_set_perms(tree, path, perms, (unsigned)argc - 1)))
		return rc;
	xs_send_ok(c, h);
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
			xs_send_ok(c, h);
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
	xs_send_ok(c, h);
	/* as xenstored: one event right away, with the path as given */
	xs_send_msg(c, XS_WATCH_EVENT, 0, 0, body, h->len);
	return 0;
}

void xs_conn_drop_state(struct xs_conn *c)
{
	while (c->watches) {
		struct xs_watch *w = c->watches;

		c->watches = w->next;
		watch_free(w);
	}
	c->nwatches = 0;
	xs_trans_drop_all(c);
}

/* TRANSACTION_START "" answers the new id; TRANSACTION_END "T" commits, "F"
 * abandons (the id is the message's tx_id). */
static int do_transaction(struct xs_conn *c, const struct xsd_sockmsg *h, char *body)
{
	char *arg, reply[16];
	uint32_t id;
	int rc;

	if ((rc = one_arg(body, h->len, &arg)))
		return rc;
	if (h->type == XS_TRANSACTION_END) {
		if (strcmp(arg, "T") && strcmp(arg, "F"))
			return -EINVAL;
		if ((rc = xs_trans_end(c, h->tx_id, arg[0] == 'T')))
			return rc;
		xs_send_ok(c, h);
		return 0;
	}
	if (h->tx_id)
		return -EBUSY;   /* no nesting */
	if ((rc = xs_trans_start(c, &id)))
		return rc;
	snprintf(reply, sizeof(reply), "%u", id);
	xs_send_msg(c, h->type, h->req_id, h->tx_id, reply, strlen(reply) + 1);
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
	xs_send_msg(c, h->type, h->req_id, h->tx_id, reply, strlen(reply) + 1);
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
		xs_send_ok(c, h);
		return 0;
	}
	if (!strcmp(argv[0], "print") && argc >= 2) {
		gv_info("xenstored: control print: %s", argv[1]);
		xs_send_ok(c, h);
		return 0;
	}
	return -EINVAL;
}

void xs_handle_msg(struct xs_conn *c, const struct xsd_sockmsg *h, char *body)
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
		         xs_msg_type_name(h->type), h->req_id, h->tx_id, h->len, arg);
	}
	switch (h->type) {
	case XS_READ: case XS_WRITE: case XS_MKDIR: case XS_RM: case XS_DIRECTORY:
	case XS_DIRECTORY_PART: case XS_GET_PERMS: case XS_SET_PERMS:
		if (h->tx_id && !(t = xs_trans_find(c, h->tx_id))) {
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
		xs_conn_drop_state(c);
		xs_send_ok(c, h);
		rc = 0;
		break;
	case XS_CONTROL:
		rc = do_control(c, h, body);
		break;
	case XS_INTRODUCE: case XS_RELEASE:
		/* the simulated hypervisor introduces and releases domains itself */
		rc = c->domid ? -EACCES : 0;
		if (!rc)
			xs_send_ok(c, h);
		break;
	default:
		gv_log(c->warned ? GV_LOG_DEBUG : GV_LOG_WARN,
		       "xenstored: dom%u connection (fd %d): unsupported message type %u (%s)%s",
		       (unsigned)c->domid, c->fd, h->type, xs_msg_type_name(h->type),
		       c->warned ? "" : "; more go to the debug log");
		c->warned = true;
		rc = -EINVAL;
		break;
	}
	if (rc)
		xs_send_error(c, h, rc);
}

