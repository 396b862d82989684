/*
 * sim/xenstored.h: the store of the simulated xenstored, xenstored_tree.c
 * (nodes, paths, permissions, quotas), as the server side uses it
 * (xenstored_server.h: sockets, requests, watches, transactions).
 *
 * The semantics follow Xen's C xenstored (docs/misc/xenstore.txt): a node
 * has a value (bytes), children (kept in creation order) and a permission
 * list whose first entry names the owner and the access of everyone not
 * listed. Domain 0 is privileged and may do anything.
 */
#ifndef GV_SIM_XENSTORED_H
#define GV_SIM_XENSTORED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "abi.h"

#define XS_PERM_NONE  0u
#define XS_PERM_READ  1u
#define XS_PERM_WRITE 2u
#define XS_PERM_BOTH  (XS_PERM_READ | XS_PERM_WRITE)

/* Limits. Domain 0 is exempt from the per-domain quotas, as in xenstored. */
#define XS_MAX_PERMS          32     /* entries of one permission list */
#define XS_QUOTA_NODES        1000   /* nodes an unprivileged domain may own */
#define XS_QUOTA_CHILDREN     1024   /* children of one node (unprivileged creator) */
#define XS_MAX_DEPTH          64     /* path components */
#define XS_MAX_NODES_TOTAL    200000 /* whole store: a safety net for dom0 too */

struct xs_perm {
	domid_t id;
	uint8_t perm;        /* XS_PERM_* */
};

struct xs_node {
	char *name;                  /* last path component; "" for the root */
	struct xs_node *parent;
	struct xs_node **children;   /* creation order: directory listings keep it */
	unsigned nchildren, children_cap;
	char *value;                 /* binary safe, vlen bytes (+ a NUL for convenience) */
	unsigned vlen;
	struct xs_perm *perms;       /* perms[0] is the owner and the default */
	unsigned nperms;
	uint64_t gen;                /* store generation of its last change */
};

/*
 * A tree: the store itself (live) or a transaction's private snapshot.
 * Only the live tree counts nodes per owner and fires watches.
 */
struct xs_tree {
	struct xs_node *root;
	bool live;
};

/* xenstored_tree.c */
extern unsigned xs_nodes_total;

int  xs_tree_init(struct xs_tree *t);
void xs_tree_free(struct xs_tree *t);
int  xs_tree_clone(struct xs_tree *dst, const struct xs_tree *src);
unsigned xs_owned_nodes(domid_t owner);

/* Turns a client path (absolute, or relative to /local/domain/<domid>) into a
 * canonical absolute path in out. Returns 0 or -EINVAL (bad characters, "//",
 * a trailing "/", too long). */
int  xs_canonical_path(domid_t domid, const char *in, char *out, size_t outlen);
bool xs_is_child(const char *child, const char *parent);   /* or equal */

struct xs_node *xs_lookup(const struct xs_tree *t, const char *path);
unsigned xs_perm_for(const struct xs_node *n, domid_t domid);
/* The node at path if domid has all of perm on it. Otherwise NULL with *err
 * -EACCES if it may not, or -ENOENT if it does not exist (-EACCES instead when
 * its nearest existing ancestor does not grant perm either: whether a node
 * exists is itself information). */
struct xs_node *xs_get_node(const struct xs_tree *t, const char *path, domid_t domid,
                            unsigned perm, int *err);
/* How many nodes a write to path would create (0 if it exists). */
unsigned xs_missing_nodes(const struct xs_tree *t, const char *path);
/* May creator create the missing nodes of path? It would own them (or their
 * parent's owner would, for dom0); extra_owned counts nodes it already made
 * in an open transaction. Returns 0 or -ENOSPC. */
int  xs_check_quota(const struct xs_tree *t, const char *path, domid_t creator,
                    unsigned extra_owned);

/*
 * Raw changes: no permission checks (the caller made them), limits only for
 * what could break the store. A created node inherits its parent's permissions,
 * and an unprivileged creator becomes its owner. On the live tree they keep
 * the per-owner counts and fire watches. Return 0 or a negative errno.
 */
int  xs_do_write(struct xs_tree *t, const char *path, const void *val, unsigned len,
                 domid_t creator);
int  xs_do_mkdir(struct xs_tree *t, const char *path, domid_t creator);
int  xs_do_rm(struct xs_tree *t, const char *path);
int  xs_do_set_perms(struct xs_tree *t, const char *path, const struct xs_perm *p,
                     unsigned n);

/* "r5" -> { 5, READ }; returns 0 or -EINVAL. */
int  xs_parse_perm(const char *s, struct xs_perm *p);
/* Appends "r5\0"-style strings for n's permissions to buf; returns bytes. */
size_t xs_format_perms(const struct xs_node *n, char *buf, size_t len);

/* xenstored_conn.c: called by the live tree on every change. exact: fire only for
 * watches on exactly path (a node removed below the removed one), else for
 * watches on path and its ancestors. old is NULL or the permissions the node
 * had before the change: a watcher that could read either version, or may
 * read the node's parent, hears. */
void xs_fire_watches(const char *path, const struct xs_node *n, const struct xs_perm *old,
                     unsigned nold, bool exact);

#endif
