/*
 * sim/xenstored_tree.c: the store of the simulated xenstored: a tree of
 * nodes with values and permission lists, path rules, permission checks,
 * quotas, and the raw changes (write, mkdir, rm, set_perms) that the wire
 * protocol in xenstored_req.c performs after checking who may do what.
 *
 * A transaction works on a deep copy of the live tree (the store is small:
 * thousands of nodes at most), so the same raw changes serve both.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "xenstored.h"

unsigned xs_nodes_total;
/* Nodes per owning domain, live tree only: the per-domain node quota. */
static uint32_t owned[1u << 16];
/* Store-wide generation: every change stamps the nodes it touches, so a
 * transaction can tell whether a node it used changed since. */
static uint64_t next_gen = 1;

unsigned xs_owned_nodes(domid_t owner)
{
	return owned[owner];
}

static void node_free(struct xs_node *n, bool live)
{
	if (!n)
		return;
	for (unsigned i = 0; i < n->nchildren; i++)
		node_free(n->children[i], live);
	if (live && n->nperms) {
		owned[n->perms[0].id]--;
		xs_nodes_total--;
	}
	free(n->children);
	free(n->name);
	free(n->value);
	free(n->perms);
	free(n);
}

static struct xs_node *node_alloc(const char *name, size_t nlen, const struct xs_perm *perms,
                                  unsigned nperms)
{
	struct xs_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->name = strndup(name, nlen);
	n->value = calloc(1, 1);
	n->perms = malloc(nperms * sizeof(*perms));
	if (!n->name || !n->value || !n->perms) {
		node_free(n, false);
		return NULL;
	}
	memcpy(n->perms, perms, nperms * sizeof(*perms));
	n->nperms = nperms;
	n->gen = next_gen++;
	return n;
}

static int add_child(struct xs_node *parent, struct xs_node *child)
{
	if (parent->nchildren == parent->children_cap) {
		unsigned cap = parent->children_cap ? 2 * parent->children_cap : 4;
		struct xs_node **c = realloc(parent->children, cap * sizeof(*c));

		if (!c)
			return -ENOMEM;
		parent->children = c;
		parent->children_cap = cap;
	}
	parent->children[parent->nchildren++] = child;
	child->parent = parent;
	parent->gen = next_gen++;
	return 0;
}

int xs_tree_init(struct xs_tree *t)
{
	static const struct xs_perm dom0_only = { 0, XS_PERM_NONE };

	t->root = node_alloc("", 0, &dom0_only, 1);
	if (!t->root)
		return -ENOMEM;
	if (t->live) {
		owned[0]++;
		xs_nodes_total++;
	}
	return 0;
}

void xs_tree_free(struct xs_tree *t)
{
	node_free(t->root, t->live);
	t->root = NULL;
}

static struct xs_node *node_clone(const struct xs_node *src, struct xs_node *parent)
{
	struct xs_node *n = node_alloc(src->name, strlen(src->name), src->perms, src->nperms);

	if (!n)
		return NULL;
	free(n->value);
	n->value = malloc(src->vlen + 1);
	n->children = src->nchildren ? malloc(src->nchildren * sizeof(*n->children)) : NULL;
	if (!n->value || (src->nchildren && !n->children)) {
		node_free(n, false);
		return NULL;
	}
	memcpy(n->value, src->value, src->vlen + 1);
	n->vlen = src->vlen;
	n->gen = src->gen;
	n->parent = parent;
	n->children_cap = src->nchildren;
	for (unsigned i = 0; i < src->nchildren; i++) {
		n->children[i] = node_clone(src->children[i], n);
		if (!n->children[i]) {
			node_free(n, false);
			return NULL;
		}
		n->nchildren++;
	}
	return n;
}

int xs_tree_clone(struct xs_tree *dst, const struct xs_tree *src)
{
	dst->live = false;
	dst->root = node_clone(src->root, NULL);
	return dst->root ? 0 : -ENOMEM;
}

static bool valid_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '/' || c == '_' || c == '@';
}

int xs_canonical_path(domid_t domid, const char *in, char *out, size_t outlen)
{
	unsigned depth = 0;
	size_t len;
	int n;

	if (!*in)
		return -EINVAL;
	if (in[0] == '/') {
		n = snprintf(out, outlen, "%s", in);
	} else {
		if (strlen(in) > XENSTORE_REL_PATH_MAX)
			return -EINVAL;
		n = snprintf(out, outlen, "/local/domain/%u/%s", (unsigned)domid, in);
	}
	if (n < 0 || (size_t)n >= outlen || n > XENSTORE_ABS_PATH_MAX)
		return -EINVAL;
	len = (size_t)n;
	if (len > 1 && out[len - 1] == '/')
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (!valid_char(out[i]))
			return -EINVAL;
		if (out[i] == '/') {
			if (out[i + 1] == '/')
				return -EINVAL;
			depth++;
		}
	}
	return depth > XS_MAX_DEPTH ? -EINVAL : 0;
}

bool xs_is_child(const char *child, const char *parent)
{
	size_t plen = strlen(parent);

	if (plen == 1 && parent[0] == '/')
		return child[0] == '/';
	return !strncmp(child, parent, plen) && (child[plen] == '/' || !child[plen]);
}

static struct xs_node *find_child(const struct xs_node *n, const char *name, size_t len)
{
	for (unsigned i = 0; i < n->nchildren; i++) {
		const char *c = n->children[i]->name;

		if (!strncmp(c, name, len) && !c[len])
			return n->children[i];
	}
	return NULL;
}

/* The deepest existing node on the way to path; *rest points at the first
 * component that does not exist ("" if path exists). path is canonical. */
static struct xs_node *walk(const struct xs_tree *t, const char *path, const char **rest)
{
	struct xs_node *n = t->root;
	const char *p = path + 1;

	while (*p) {
		size_t len = strcspn(p, "/");
		struct xs_node *c = find_child(n, p, len);

		if (!c)
			break;
		n = c;
		p += len;
		if (*p == '/')
			p++;
	}
	*rest = p;
	return n;
}

struct xs_node *xs_lookup(const struct xs_tree *t, const char *path)
{
	const char *rest;
	struct xs_node *n = walk(t, path, &rest);

	return *rest ? NULL : n;
}

unsigned xs_perm_for(const struct xs_node *n, domid_t domid)
{
	/* dom0 is privileged; the owner may do anything with what it owns */
	if (domid == 0 || domid == n->perms[0].id)
		return XS_PERM_BOTH;
	for (unsigned i = 1; i < n->nperms; i++)
		if (n->perms[i].id == domid)
			return n->perms[i].perm;
	return n->perms[0].perm;
}

struct xs_node *xs_get_node(const struct xs_tree *t, const char *path, domid_t domid,
                            unsigned perm, int *err)
{
	const char *rest;
	struct xs_node *n = walk(t, path, &rest);

	if (*rest) {
		/* it does not exist; may domid know that? */
		*err = (xs_perm_for(n, domid) & perm) == perm ? -ENOENT : -EACCES;
		return NULL;
	}
	if ((xs_perm_for(n, domid) & perm) != perm) {
		*err = -EACCES;
		return NULL;
	}
	*err = 0;
	return n;
}

unsigned xs_missing_nodes(const struct xs_tree *t, const char *path)
{
	const char *rest;
	unsigned count = 0;

	walk(t, path, &rest);
	if (!*rest)
		return 0;
	for (count = 1; *rest; rest++)
		count += *rest == '/';
	return count;
}

int xs_check_quota(const struct xs_tree *t, const char *path, domid_t creator,
                   unsigned extra_owned)
{
	const char *rest;
	struct xs_node *n = walk(t, path, &rest);
	unsigned missing = xs_missing_nodes(t, path);

	if (!missing)
		return 0;
	if (xs_nodes_total + missing > XS_MAX_NODES_TOTAL)
		return -ENOSPC;
	if (creator == 0)
		return 0;
	if (n->nchildren >= XS_QUOTA_CHILDREN)
		return -ENOSPC;
	if (owned[creator] + extra_owned + missing > XS_QUOTA_NODES)
		return -ENOSPC;
	return 0;
}

/* Creates what is missing of path (each new node inheriting its parent's
 * permissions, an unprivileged creator becoming the owner). */
static struct xs_node *make_node(struct xs_tree *t, const char *path, domid_t creator, int *err)
{
	const char *rest;
	struct xs_node *n = walk(t, path, &rest);

	while (*rest) {
		size_t len = strcspn(rest, "/");
		struct xs_node *c = node_alloc(rest, len, n->perms, n->nperms);

		if (!c) {
			*err = -ENOMEM;
			return NULL;
		}
		if (creator != 0)
			c->perms[0].id = creator;
		if (add_child(n, c) < 0) {
			node_free(c, false);
			*err = -ENOMEM;
			return NULL;
		}
		if (t->live) {
			owned[c->perms[0].id]++;
			xs_nodes_total++;
		}
		n = c;
		rest += len;
		if (*rest == '/')
			rest++;
	}
	*err = 0;
	return n;
}

int xs_do_write(struct xs_tree *t, const char *path, const void *val, unsigned len,
                domid_t creator)
{
	int err;
	struct xs_node *n = make_node(t, path, creator, &err);
	char *v;

	if (!n)
		return err;
	v = malloc(len + 1);
	if (!v)
		return -ENOMEM;
	memcpy(v, val, len);
	v[len] = 0;
	free(n->value);
	n->value = v;
	n->vlen = len;
	n->gen = next_gen++;
	if (t->live)
		xs_fire_watches(path, n, NULL, 0, false);
	return 0;
}

int xs_do_mkdir(struct xs_tree *t, const char *path, domid_t creator)
{
	int err;
	struct xs_node *n;

	if (xs_lookup(t, path))
		return 0;   /* as xenstored: no change, no event */
	n = make_node(t, path, creator, &err);
	if (!n)
		return err;
	if (t->live)
		xs_fire_watches(path, n, NULL, 0, false);
	return 0;
}

/* Watches exactly on a removed descendant hear about it too; path holds the
 * node's path on entry (buffer of XENSTORE_ABS_PATH_MAX + 1 bytes). */
static void fire_removed_below(struct xs_node *n, char *path, size_t len)
{
	for (unsigned i = 0; i < n->nchildren; i++) {
		struct xs_node *c = n->children[i];
		int k = snprintf(path + len, XENSTORE_ABS_PATH_MAX + 1 - len, "%s%s",
		                 len == 1 ? "" : "/", c->name);

		if (k < 0 || len + (size_t)k > XENSTORE_ABS_PATH_MAX)
			continue;   /* cannot happen: paths are validated when made */
		fire_removed_below(c, path, len + (size_t)k);
		xs_fire_watches(path, c, NULL, 0, true);
		path[len] = 0;
	}
}

int xs_do_rm(struct xs_tree *t, const char *path)
{
	struct xs_node *n = xs_lookup(t, path), *p;

	if (!n)
		return -ENOENT;
	p = n->parent;
	if (!p)
		return -EINVAL;   /* the root stays */
	if (t->live) {
		char buf[XENSTORE_ABS_PATH_MAX + 1];

		snprintf(buf, sizeof(buf), "%s", path);
		fire_removed_below(n, buf, strlen(buf));
		xs_fire_watches(path, n, NULL, 0, false);
	}
	for (unsigned i = 0; i < p->nchildren; i++)
		if (p->children[i] == n) {
			memmove(&p->children[i], &p->children[i + 1],
			        (p->nchildren - i - 1) * sizeof(*p->children));
			p->nchildren--;
			break;
		}
	p->gen = next_gen++;
	node_free(n, t->live);
	return 0;
}

int xs_do_set_perms(struct xs_tree *t, const char *path, const struct xs_perm *perms,
                    unsigned nperms)
{
	struct xs_node *n = xs_lookup(t, path);
	struct xs_perm *p, *old;
	unsigned nold;

	if (!n)
		return -ENOENT;
	if (!nperms || nperms > XS_MAX_PERMS)
		return -EINVAL;
	p = malloc(nperms * sizeof(*p));
	if (!p)
		return -ENOMEM;
	memcpy(p, perms, nperms * sizeof(*p));
	old = n->perms;
	nold = n->nperms;
	n->perms = p;
	n->nperms = nperms;
	n->gen = next_gen++;
	if (t->live) {
		owned[old[0].id]--;
		owned[p[0].id]++;
		xs_fire_watches(path, n, old, nold, false);
	}
	free(old);
	return 0;
}

int xs_parse_perm(const char *s, struct xs_perm *p)
{
	unsigned long id;
	char *end;

	switch (s[0]) {
	case 'n': p->perm = XS_PERM_NONE; break;
	case 'r': p->perm = XS_PERM_READ; break;
	case 'w': p->perm = XS_PERM_WRITE; break;
	case 'b': p->perm = XS_PERM_BOTH; break;
	default: return -EINVAL;
	}
	if (s[1] < '0' || s[1] > '9')
		return -EINVAL;
	errno = 0;
	id = strtoul(s + 1, &end, 10);
	if (errno || *end || id > UINT16_MAX)
		return -EINVAL;
	p->id = (domid_t)id;
	return 0;
}

size_t xs_format_perms(const struct xs_node *n, char *buf, size_t len)
{
	static const char letter[] = "nrwb";
	size_t used = 0;

	for (unsigned i = 0; i < n->nperms; i++) {
		int k = snprintf(buf + used, len - used, "%c%u", letter[n->perms[i].perm & 3],
		                 (unsigned)n->perms[i].id);

		if (k < 0 || used + (size_t)k + 1 > len)
			break;
		used += (size_t)k + 1;   /* keep the NUL: each entry is a string */
	}
	return used;
}
