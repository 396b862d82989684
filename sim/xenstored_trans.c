/*
 * sim/xenstored_trans.c: the simulated xenstored's transactions. A
 * transaction works on a private copy of the store taken at its start,
 * records the generation of every node it reads or changes the first time it
 * uses it, and logs its changes; commit fails with EAGAIN if any of those
 * nodes changed meanwhile (per-node generations, so unrelated traffic does
 * not fail it), else replays the log on the live store, which fires watches.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "xenstored_server.h"

void xs_trans_free(struct xs_trans *t)
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

struct xs_trans *xs_trans_find(struct xs_conn *c, uint32_t id)
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
int xs_trans_note(struct xs_trans *t, const char *path)
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
int xs_trans_note_create(struct xs_trans *t, const char *path)
{
	char p[XENSTORE_ABS_PATH_MAX + 1];
	int rc;

	if (!t)
		return 0;
	snprintf(p, sizeof(p), "%s", path);
	for (;;) {
		char *slash;

		rc = xs_trans_note(t, p);
		if (rc || xs_lookup(&t->tree, p))
			return rc;
		slash = strrchr(p, '/');
		if (slash == p)
			slash[1] = 0;
		else
			*slash = 0;
	}
}

int xs_trans_log(struct xs_trans *t, enum xs_txop_type type, const char *path,
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
		const struct xs_node *n = xs_lookup(&xs_live, t->acc[i].path);

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
		case TXOP_WRITE: rc = xs_do_write(&xs_live, op->path, op->data, op->len, c->domid); break;
		case TXOP_MKDIR: rc = xs_do_mkdir(&xs_live, op->path, c->domid); break;
		case TXOP_RM: rc = xs_do_rm(&xs_live, op->path); break;
		case TXOP_SET_PERMS: rc = xs_do_set_perms(&xs_live, op->path, op->perms, op->nperms); break;
		}
		/* checked in the snapshot, and nothing used changed: only ENOMEM */
		if (rc && rc != -ENOENT)
			gv_warn("xenstored: dom%u transaction %u: replaying a change of %s: %s",
			        (unsigned)c->domid, t->id, op->path, strerror(-rc));
	}
	return 0;
}


int xs_trans_start(struct xs_conn *c, uint32_t *id)
{
	struct xs_trans *t;

	if (c->ntrans >= XS_MAX_TRANS || (c->dom && c->dom->ntrans >= XS_MAX_DOM_TRANS))
		return -ENOSPC;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	if (xs_tree_clone(&t->tree, &xs_live) < 0) {
		free(t);
		return -ENOMEM;
	}
	do {
		t->id = ++c->next_tx;
	} while (!t->id || xs_trans_find(c, t->id));
	t->next = c->trans;
	c->trans = t;
	c->ntrans++;
	if (c->dom)
		c->dom->ntrans++;
	*id = t->id;
	return 0;
}

int xs_trans_end(struct xs_conn *c, uint32_t id, bool commit)
{
	struct xs_trans *t = xs_trans_find(c, id);
	int rc;

	if (!t)
		return -ENOENT;
	trans_unlink(c, t);
	rc = commit ? trans_commit(c, t) : 0;
	xs_trans_free(t);
	return rc;
}

void xs_trans_drop_all(struct xs_conn *c)
{
	while (c->trans) {
		struct xs_trans *t = c->trans;

		c->trans = t->next;
		xs_trans_free(t);
		if (c->dom)
			c->dom->ntrans--;
	}
	c->ntrans = 0;
}
