/*
 * tools/gv-schema.c: checks a live xenstore against xenstore-schema/virtio.tsv.
 *
 *   gv-schema [check] [--backend-domid N]
 *
 * check walks every grant-virtio device of one backend domain (simulated or
 * real Xen, through the platform's libxenstore handle) and prints every
 * violation as "PATH: rule (found: VALUE)"; exit 1 if any, 0 if clean, 2 on
 * a usage or platform error. The rules come from the schema at build time:
 * xenstore-schema/gen.sh, the one reader of virtio.tsv, writes them into
 * build/gen/xs_rules.h (as it writes xs_keys.h and the Markdown table).
 *
 * The rules (also in --help and man/gv-schema.1):
 *  presence  a key whose `when` is "create" must exist while its directory
 *            exists; `state` (the only "any" key of format state) likewise;
 *            other "any" keys (device-status, error) are optional. A key
 *            written in state S must exist while its writer's state is >= S
 *            and not Closed (6); keys may outlive that (a closed frontend
 *            leaves its keys behind), so presence is never an error by state.
 *            queue-<n>/ keys are required for n < the frontend's num-queues.
 *  device    keys of device blk or rng exist only on that device type
 *            (BE type virtio,device2 or virtio,device4).
 *  format    every present key parses as its format, with xs_util's parsers.
 *  perms     xs_get_permissions equals the perms column, BE/FE replaced by
 *            the domain ids (owner first); the BE and FE directories and the
 *            directories between them and their keys (config, queue-<n>)
 *            carry their side's list: nBE,rFE and nFE,rBE.
 *  unknown   every node under a BE or FE directory is a schema key or a
 *            directory on the way to one. The DOM directory holds much more
 *            than grant-virtio's keys: only its schema keys are checked.
 *  cross     BE frontend is the FE directory, BE frontend-id the domain in
 *            the BE path, FE backend the BE directory, FE backend-id the
 *            backend domain; an FE directory naming this backend has a BE
 *            directory; while FE is Initialised..Closing: driver-features
 *            a subset of features, FE num-queues <= BE num-queues, every
 *            queue size a power of two <= max-queue-size.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xenstore.h>
#include "platform.h"
#include "xs_keys.h"
#include "xs_util.h"

#define MAX_PERMS  4
#define MAX_SEEN   1024
#define MAX_QUEUES 64
#define WHEN_CREATE (-1)
#define WHEN_ANY    (-2)

enum dir_kind { DIR_DOM, DIR_BE, DIR_FE, DIR_DBE, DIR_DFE };   /* DBE/DFE: xl's virtio_disk */
enum side { SIDE_BE, SIDE_FE, SIDE_ID };
enum writer { W_TOOLSTACK, W_BACKEND, W_FRONTEND };
enum devtype { DEV_ALL, DEV_BLK, DEV_RNG, DEV_UNKNOWN };
enum fmt { F_PATH, F_DOMID, F_UINT, F_BOOL, F_HEX64, F_STATE, F_STRING, F_TEXT, F_REF,
           F_REF_LIST, F_PORT };

static const char *const fmt_names[] = {
	"path", "domid", "uint", "bool", "hex64", "state", "string", "text", "ref", "ref-list",
	"port",
};
static const char *const fmt_rules[] = {
	"an absolute xenstore path",
	"a domain id below 0x7FF0",
	"an unsigned decimal (or 0x hex) number",
	"0 or 1",
	"0x and 1 to 16 hex digits",
	"a xenbus state 0..8",
	"non-empty printable text on one line",
	"printable text on one line",
	"a grant reference",
	"grant references separated by single spaces",
	"an event channel port",
};

struct perm {
	enum side side;         /* BE, FE, or SIDE_ID: the fixed domain `id` */
	unsigned id;
	unsigned perm;          /* XS_PERM_NONE/READ/WRITE/(READ|WRITE) */
};

struct rule {
	enum dir_kind dir;
	const char *key;
	enum writer writer;
	struct perm perms[MAX_PERMS];
	unsigned nperms;
	enum fmt fmt;
	int when;               /* a xenbus state, WHEN_CREATE or WHEN_ANY */
	enum devtype dev;
};

#include "xs_rules.h"       /* schema_rules[], generated from virtio.tsv */

#define NRULES (sizeof(schema_rules) / sizeof(schema_rules[0]))

struct ctx {
	struct xs_handle *xs;
	unsigned be;
	unsigned violations, devices;
	struct { unsigned fe, devid; bool disk; } seen[MAX_SEEN];
	unsigned nseen;
};

/* ---- names ----------------------------------------------------------- */

static const char *const state_names[] = {
	"Unknown", "Initialising", "InitWait", "Initialised", "Connected", "Closing", "Closed",
	"Reconfiguring", "Reconfigured",
};

static const char *state_name(int s)
{
	return s >= 0 && s <= XenbusStateReconfigured ? state_names[s] : "unreadable";
}

/* ---- check ------------------------------------------------------------------- */

static void violation(struct ctx *c, const char *path, const char *found, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void violation(struct ctx *c, const char *path, const char *found, const char *fmt, ...)
{
	char shown[104];
	size_t n = 0;
	va_list ap;

	/* the value may come from a hostile guest: shown escaped and cut */
	if (found) {
		for (const unsigned char *p = (const unsigned char *)found; *p && n < 96; p++) {
			if (*p >= 0x20 && *p < 0x7f && *p != '\\')
				shown[n++] = (char)*p;
			else
				n += (size_t)snprintf(shown + n, sizeof(shown) - n, "\\x%02x", *p);
		}
		if (n >= 96)
			n = (size_t)snprintf(shown + 96, sizeof(shown) - 96, "...") + 96;
		shown[n] = 0;
	}
	printf("%s: ", path);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (found)
		printf(" (found: \"%s\")\n", shown);
	else
		printf(" (found: nothing)\n");
	c->violations++;
}

static bool printable_line(const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return false;
	return true;
}

static bool format_ok(enum fmt f, const char *v)
{
	grant_ref_t refs[64];
	char copy[GV_XS_VALUE_MAX + 1];
	uint64_t x;
	unsigned n;

	switch (f) {
	case F_PATH:
		return v[0] == '/' && v[1] && !strstr(v, "//") && v[strlen(v) - 1] != '/' &&
		       printable_line(v) && !strchr(v, ' ');
	case F_DOMID:
		return gv_parse_u64(v, DOMID_FIRST_RESERVED - 1, &x) == 0;
	case F_UINT:
		return gv_parse_u64(v, UINT64_MAX, &x) == 0;
	case F_BOOL:
		return !strcmp(v, "0") || !strcmp(v, "1");
	case F_HEX64:
		return v[0] == '0' && v[1] == 'x' && strlen(v) <= 18 &&
		       gv_parse_u64(v, UINT64_MAX, &x) == 0;
	case F_STATE:
		return gv_parse_u64(v, XenbusStateReconfigured, &x) == 0;
	case F_STRING:
		return *v && printable_line(v);
	case F_TEXT:
		return printable_line(v);
	case F_REF:
		return gv_parse_u64(v, UINT32_MAX, &x) == 0;
	case F_REF_LIST:
		/* gv_parse_refs cuts its buffer; a doubled, leading or trailing space
		 * would be skipped by strtok, so it is refused here */
		if (!*v || v[0] == ' ' || v[strlen(v) - 1] == ' ' || strstr(v, "  ") ||
		    strlen(v) >= sizeof(copy))
			return false;
		strcpy(copy, v);
		return gv_parse_refs(copy, refs, 64, &n) == 0 && n > 0;
	case F_PORT:
		return gv_parse_u64(v, UINT32_MAX - 1, &x) == 0;
	}
	return false;
}

static unsigned side_domid(const struct ctx *c, const struct perm *p, unsigned fe)
{
	return p->side == SIDE_BE ? c->be : p->side == SIDE_FE ? fe : p->id;
}

static void perms_str(const struct xs_permissions *p, unsigned n, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = 0;
	for (unsigned i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%c%u", i ? "," : "",
		                      "nrwb"[p[i].perms & 3], p[i].id);
}

/* Compares the node's permissions with want[0..nwant) (BE/FE resolved). A
 * list whose owner is also its reader collapses to the owner alone, as
 * xl writes it for a domain serving itself. */
static void check_perms(struct ctx *c, const char *path, const struct perm *want, unsigned nwant,
                        unsigned fe, const char *what)
{
	struct xs_permissions exp[MAX_PERMS], *got;
	char gs[96], es[96], spec[48] = "";
	unsigned n = 0, ngot = 0;
	bool ok;

	for (unsigned i = 0; i < nwant; i++) {
		unsigned id = side_domid(c, &want[i], fe);
		bool dup = false;

		for (unsigned j = 0; j < n; j++)
			dup |= exp[j].id == id;
		char who[16];

		if (want[i].side == SIDE_ID)
			snprintf(who, sizeof(who), "%u", want[i].id);
		else
			strcpy(who, want[i].side == SIDE_BE ? "BE" : "FE");
		snprintf(spec + strlen(spec), sizeof(spec) - strlen(spec), "%s%c%s", i ? "," : "",
		         "nrwb"[want[i].perm], who);
		if (dup)
			continue;
		exp[n].id = id;
		exp[n].perms = want[i].perm;
		n++;
	}
	got = xs_get_permissions(c->xs, XBT_NULL, path, &ngot);
	if (!got) {
		violation(c, path, strerror(errno), "%s must be readable as %s", what, spec);
		return;
	}
	ok = ngot == n;
	for (unsigned i = 0; ok && i < n; i++)
		ok = got[i].id == exp[i].id && (got[i].perms & 3) == exp[i].perms;
	if (!ok) {
		perms_str(got, ngot, gs, sizeof(gs));
		perms_str(exp, n, es, sizeof(es));
		violation(c, path, gs, "%s must be %s = %s", what, spec, es);
	}
	free(got);
}

/* "queue-<n>/size" against "queue-12/size": true and *n = 12. A rule key
 * without <n> matches itself only. */
static bool key_match(const char *rule, const char *key, unsigned *n)
{
	const char *p = strstr(rule, "<n>");
	uint64_t v;
	char num[12];
	size_t i = 0;

	if (!p)
		return !strcmp(rule, key);
	if (strncmp(rule, key, (size_t)(p - rule)))
		return false;
	key += p - rule;
	while (key[i] >= '0' && key[i] <= '9' && i < sizeof(num) - 1) {
		num[i] = key[i];
		i++;
	}
	num[i] = 0;
	if (!i || (i > 1 && num[0] == '0') || gv_parse_u64(num, MAX_QUEUES - 1, &v) < 0)
		return false;
	*n = (unsigned)v;
	return !strcmp(key + i, p + 3);
}

/* Is rel a directory on the way to some key of this dir (config, queue-3)? */
static bool key_prefix(enum dir_kind dir, const char *rel)
{
	size_t len = strlen(rel);
	unsigned n;

	for (unsigned i = 0; i < NRULES; i++) {
		const struct rule *r = &schema_rules[i];
		const char *slash = strrchr(r->key, '/');
		char head[96];

		if (r->dir != dir || !slash || (size_t)(slash - r->key) >= sizeof(head))
			continue;
		memcpy(head, r->key, (size_t)(slash - r->key));
		head[slash - r->key] = 0;
		if (key_match(head, rel, &n) && len)
			return true;
	}
	return false;
}

struct devstate {
	unsigned fe, devid;
	enum devtype type;
	int be_state, fe_state;         /* -1: missing or malformed */
	int fe_queues;                  /* FE num-queues, -1 unknown */
};

static bool dev_matches(enum devtype rule, enum devtype dev)
{
	return rule == DEV_ALL || rule == dev;
}

static int writer_state(const struct rule *r, const struct devstate *d)
{
	return r->writer == W_BACKEND ? d->be_state : r->writer == W_FRONTEND ? d->fe_state : -1;
}

static const char *writer_name(enum writer w)
{
	return w == W_BACKEND ? "backend" : w == W_FRONTEND ? "frontend" : "toolstack";
}

/* The presence rule of the file comment. */
static bool required(const struct rule *r, const struct devstate *d)
{
	int st;

	if (r->when == WHEN_CREATE)
		return true;
	if (r->when == WHEN_ANY)
		return r->fmt == F_STATE;
	st = writer_state(r, d);
	return st >= r->when && st != XenbusStateClosed;
}

static void check_key(struct ctx *c, const struct rule *r, const char *dir, const char *key,
                      const struct devstate *d)
{
	char path[256], *v;
	unsigned len;

	if (gv_xs_join(path, sizeof(path), dir, key) < 0)
		return;
	v = xs_read(c->xs, XBT_NULL, path, &len);
	if (!v) {
		if (errno != ENOENT)
			violation(c, path, strerror(errno), "must be readable by this domain");
		else if (!required(r, d))
			;
		else if (r->when < 0)
			violation(c, path, NULL, "required: written by the toolstack at domain "
			          "creation");
		else
			violation(c, path, NULL, "required: written by the %s in state %s, "
			          "its state is %s", writer_name(r->writer), state_name(r->when),
			          state_name(writer_state(r, d)));
		return;
	}
	if (memchr(v, 0, len))
		violation(c, path, v, "format %s: must not contain a NUL byte", fmt_names[r->fmt]);
	else if (!format_ok(r->fmt, v))
		violation(c, path, v, "format %s: %s", fmt_names[r->fmt], fmt_rules[r->fmt]);
	free(v);
	check_perms(c, path, r->perms, r->nperms, d->fe, "permissions");
}

/* Walks the nodes under dir (depth-first, at most three levels), reporting
 * those that are neither a key of the schema for this device nor a
 * directory on the way to one. */
static void check_unknown(struct ctx *c, enum dir_kind kind, const char *dir, const char *rel,
                          const struct devstate *d, const struct perm *side_perms, int depth)
{
	char path[256], sub[160];
	char **ents;
	unsigned n = 0;

	if ((rel[0] ? snprintf(path, sizeof(path), "%s/%s", dir, rel)
	            : snprintf(path, sizeof(path), "%s", dir)) >= (int)sizeof(path))
		return;
	ents = xs_directory(c->xs, XBT_NULL, path, &n);
	for (unsigned i = 0; ents && i < n; i++) {
		bool known = false, wrong_dev = false;
		char child[300];
		unsigned q;

		if ((rel[0] ? snprintf(sub, sizeof(sub), "%s/%s", rel, ents[i])
		            : snprintf(sub, sizeof(sub), "%s", ents[i])) >= (int)sizeof(sub))
			continue;
		snprintf(child, sizeof(child), "%s/%s", dir, sub);
		for (unsigned j = 0; j < NRULES; j++) {
			const struct rule *r = &schema_rules[j];

			if (r->dir != kind || !key_match(r->key, sub, &q))
				continue;
			if (!dev_matches(r->dev, d->type)) {
				wrong_dev = true;
				continue;
			}
			known = true;
			if (strstr(r->key, "<n>") && d->fe_queues >= 0 && q >= (unsigned)d->fe_queues)
				violation(c, child, NULL, "queue %u is beyond the frontend's "
				          "num-queues (%d)", q, d->fe_queues);
		}
		if (known)
			continue;
		if (wrong_dev) {
			violation(c, child, NULL, "key for another device type: this device's "
			          "type is not %s", d->type == DEV_BLK ? "rng" : "blk");
		} else if (key_prefix(kind, sub) && depth < 3) {
			check_perms(c, child, side_perms, 2, d->fe, "directory permissions");
			check_unknown(c, kind, dir, sub, d, side_perms, depth + 1);
		} else {
			violation(c, child, NULL, "unknown key: not in the schema %s",
			          kind == DIR_BE ? "for BE" : kind == DIR_FE ? "for FE" :
			          kind == DIR_DBE ? "for DBE" : "for DFE");
		}
	}
	free(ents);
}

static void check_dir(struct ctx *c, enum dir_kind kind, const char *dir, const struct devstate *d)
{
	static const struct perm be_perms[2] = { { SIDE_BE, 0, 0 }, { SIDE_FE, 0, 1 } };
	static const struct perm fe_perms[2] = { { SIDE_FE, 0, 0 }, { SIDE_BE, 0, 1 } };
	const struct perm *sp = kind == DIR_BE || kind == DIR_DBE ? be_perms : fe_perms;
	char key[96];

	check_perms(c, dir, sp, 2, d->fe, "directory permissions");
	for (unsigned i = 0; i < NRULES; i++) {
		const struct rule *r = &schema_rules[i];
		const char *p = strstr(r->key, "<n>");

		if (r->dir != kind || !dev_matches(r->dev, d->type))
			continue;
		if (!p) {
			check_key(c, r, dir, r->key, d);
			continue;
		}
		for (int q = 0; q < d->fe_queues; q++) {
			snprintf(key, sizeof(key), "%.*s%d%s", (int)(p - r->key), r->key, q, p + 3);
			check_key(c, r, dir, key, d);
		}
	}
	check_unknown(c, kind, dir, "", d, sp, 1);
}

/* dir/key as a number, or -1 when missing or malformed (reported elsewhere). */
static long long read_num(struct ctx *c, const char *dir, const char *key, uint64_t max)
{
	uint64_t v;

	return gv_xs_read_u64(c->xs, XBT_NULL, dir, key, max, &v) == 0 ? (long long)v : -1;
}

static void check_cross(struct ctx *c, const char *bdir, const char *fdir, bool have_be,
                        bool have_fe, const struct devstate *d)
{
	char v[256], path[300];
	long long x, y;

	if (have_be && gv_xs_read_str(c->xs, XBT_NULL, bdir, GV_XS_FRONTEND, v, sizeof(v)) == 0 &&
	    strcmp(v, fdir)) {
		snprintf(path, sizeof(path), "%s/%s", bdir, GV_XS_FRONTEND);
		violation(c, path, v, "must name the FE directory %s", fdir);
	}
	if (have_be && (x = read_num(c, bdir, GV_XS_FRONTEND_ID, UINT64_MAX)) >= 0 &&
	    x != d->fe) {
		snprintf(path, sizeof(path), "%s/%s", bdir, GV_XS_FRONTEND_ID);
		snprintf(v, sizeof(v), "%lld", x);
		violation(c, path, v, "must be the frontend domain of the BE path, %u", d->fe);
	}
	if (have_fe && gv_xs_read_str(c->xs, XBT_NULL, fdir, GV_XS_BACKEND, v, sizeof(v)) == 0 &&
	    strcmp(v, bdir)) {
		snprintf(path, sizeof(path), "%s/%s", fdir, GV_XS_BACKEND);
		violation(c, path, v, "must name the BE directory %s", bdir);
	}
	if (have_fe && (x = read_num(c, fdir, GV_XS_BACKEND_ID, UINT64_MAX)) >= 0 && x != c->be) {
		snprintf(path, sizeof(path), "%s/%s", fdir, GV_XS_BACKEND_ID);
		snprintf(v, sizeof(v), "%lld", x);
		violation(c, path, v, "must be the backend domain, %u", c->be);
	}
	if (!have_be || !have_fe || d->fe_state < XenbusStateInitialised ||
	    d->fe_state > XenbusStateClosing)
		return;
	/* a connecting or connected pair: the driver's choices fit the device's offer */
	{
		uint64_t dev = 0, drv = 0;

		if (gv_xs_read_u64(c->xs, XBT_NULL, bdir, GV_XS_FEATURES, UINT64_MAX, &dev) == 0 &&
		    gv_xs_read_u64(c->xs, XBT_NULL, fdir, GV_XS_DRIVER_FEATURES, UINT64_MAX,
		                   &drv) == 0 && (drv & ~dev)) {
			snprintf(path, sizeof(path), "%s/%s", fdir, GV_XS_DRIVER_FEATURES);
			snprintf(v, sizeof(v), "0x%llx", (unsigned long long)drv);
			violation(c, path, v, "must be a subset of the BE features 0x%llx",
			          (unsigned long long)dev);
		}
	}
	x = read_num(c, bdir, GV_XS_NUM_QUEUES, UINT32_MAX);
	if (x >= 0 && d->fe_queues > x) {
		snprintf(path, sizeof(path), "%s/%s", fdir, GV_XS_FE_NUM_QUEUES);
		snprintf(v, sizeof(v), "%d", d->fe_queues);
		violation(c, path, v, "must be at most the BE num-queues, %lld", x);
	}
	y = read_num(c, bdir, GV_XS_MAX_QUEUE_SIZE, UINT32_MAX);
	for (int q = 0; q < d->fe_queues; q++) {
		char key[64];

		snprintf(key, sizeof(key), GV_XS_QUEUE_SIZE_FMT, (unsigned)q);
		x = read_num(c, fdir, key, UINT32_MAX);
		if (x < 0 || (x && !(x & (x - 1)) && (y < 0 || x <= y)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", fdir, key);
		snprintf(v, sizeof(v), "%lld", x);
		violation(c, path, v, "must be a power of two at most the BE max-queue-size (%lld)",
		          y);
	}
}

static bool exists(struct ctx *c, const char *path)
{
	unsigned len;
	char *v = xs_read(c->xs, XBT_NULL, path, &len);

	free(v);
	return v != NULL;
}

static bool seen(struct ctx *c, bool disk, unsigned fe, unsigned devid, bool add)
{
	for (unsigned i = 0; i < c->nseen; i++)
		if (c->seen[i].fe == fe && c->seen[i].devid == devid && c->seen[i].disk == disk)
			return true;
	if (add && c->nseen < MAX_SEEN) {
		c->seen[c->nseen].fe = fe;
		c->seen[c->nseen].devid = devid;
		c->seen[c->nseen].disk = disk;
		c->nseen++;
	}
	return false;
}

static void check_dom(struct ctx *c, unsigned fe)
{
	struct devstate d = { .fe = fe, .type = DEV_ALL, .be_state = -1, .fe_state = -1,
	                      .fe_queues = -1 };
	char dir[64];

	snprintf(dir, sizeof(dir), GV_XS_DOMAIN_DIR_FMT, fe);
	for (unsigned i = 0; i < NRULES; i++)
		if (schema_rules[i].dir == DIR_DOM)
			check_key(c, &schema_rules[i], dir, schema_rules[i].key, &d);
}

/* disk: a virtio_disk from xl's disk= syntax (DBE/DFE), else a virtio device */
static void check_device(struct ctx *c, bool disk, unsigned fe, unsigned devid)
{
	struct devstate d = { .fe = fe, .devid = devid, .type = DEV_UNKNOWN, .be_state = -1,
	                      .fe_state = -1, .fe_queues = -1 };
	char bdir[128], fdir[128], type[64];
	bool have_be, have_fe;
	enum xenbus_state st;
	uint32_t id;
	long long q;

	if (disk) {
		snprintf(bdir, sizeof(bdir), GV_XS_DISK_BACKEND_DIR_FMT, c->be, fe, devid);
		snprintf(fdir, sizeof(fdir), GV_XS_DISK_FRONTEND_DIR_FMT, fe, devid);
	} else {
		snprintf(bdir, sizeof(bdir), GV_XS_BACKEND_DIR_FMT, c->be, fe, devid);
		snprintf(fdir, sizeof(fdir), GV_XS_FRONTEND_DIR_FMT, fe, devid);
	}
	have_be = exists(c, bdir);
	have_fe = exists(c, fdir);
	c->devices++;
	if (disk)
		d.type = DEV_BLK;       /* a virtio_disk is a block device whatever its type says */
	else if (gv_xs_read_str(c->xs, XBT_NULL, bdir, GV_XS_TYPE, type, sizeof(type)) == 0 &&
	    gv_virtio_type_parse(type, &id) == 0)
		d.type = id == VIRTIO_ID_BLOCK ? DEV_BLK : id == VIRTIO_ID_RNG ? DEV_RNG : DEV_UNKNOWN;
	if (gv_xs_read_state(c->xs, XBT_NULL, bdir, GV_XS_STATE, &st) == 0)
		d.be_state = (int)st;
	if (gv_xs_read_state(c->xs, XBT_NULL, fdir, GV_XS_FE_STATE, &st) == 0)
		d.fe_state = (int)st;
	q = read_num(c, fdir, GV_XS_FE_NUM_QUEUES, MAX_QUEUES);
	d.fe_queues = (int)q;
	if (have_be)
		check_dir(c, disk ? DIR_DBE : DIR_BE, bdir, &d);
	else
		violation(c, bdir, NULL, "required: the BE directory of %s (its backend-id is %u)",
		          fdir, c->be);
	if (have_fe)
		check_dir(c, disk ? DIR_DFE : DIR_FE, fdir, &d);
	else
		violation(c, fdir, NULL, "required: the FE directory of %s", bdir);
	check_cross(c, bdir, fdir, have_be, have_fe, &d);
}

/* Names under path that are decimal numbers below max; others reported. */
static char **list_ids(struct ctx *c, const char *path, unsigned *n)
{
	return xs_directory(c->xs, XBT_NULL, path, n);
}

static bool id_ok(struct ctx *c, const char *parent, const char *name, uint64_t max,
                  unsigned *out)
{
	char path[256];
	uint64_t v;

	if (!(name[0] == '0' && name[1]) && name[0] != '+' &&
	    strspn(name, "0123456789") == strlen(name) && gv_parse_u64(name, max, &v) == 0) {
		*out = (unsigned)v;
		return true;
	}
	snprintf(path, sizeof(path), "%s/%s", parent, name);
	violation(c, path, NULL, "unknown key: expected a decimal %s",
	          max == DOMID_FIRST_RESERVED - 1 ? "domain id" : "device id");
	return false;
}

static void check_kind(struct ctx *c, bool disk)
{
	const char *kind = disk ? "virtio_disk" : "virtio";
	char path[128], sub[192];
	char **fes, **doms;
	unsigned nfe = 0, ndom = 0;

	snprintf(path, sizeof(path), "/local/domain/%u/backend/%s", c->be, kind);
	fes = list_ids(c, path, &nfe);
	for (unsigned i = 0; fes && i < nfe; i++) {
		char **devs;
		unsigned fe, ndev = 0;

		if (!id_ok(c, path, fes[i], DOMID_FIRST_RESERVED - 1, &fe))
			continue;
		check_dom(c, fe);
		snprintf(sub, sizeof(sub), "%s/%u", path, fe);
		check_perms(c, sub, (const struct perm[]){ { SIDE_BE, 0, 0 }, { SIDE_FE, 0, 1 } }, 2, fe,
		            "directory permissions");
		devs = list_ids(c, sub, &ndev);
		for (unsigned j = 0; devs && j < ndev; j++) {
			unsigned devid;

			if (!id_ok(c, sub, devs[j], UINT32_MAX, &devid))
				continue;
			seen(c, disk, fe, devid, true);
			check_device(c, disk, fe, devid);
		}
		free(devs);
	}
	free(fes);

	/* frontends that name this backend but have no BE directory */
	doms = xs_directory(c->xs, XBT_NULL, "/local/domain", &ndom);
	for (unsigned i = 0; doms && i < ndom; i++) {
		char **devs;
		unsigned fe, ndev = 0;
		uint64_t v;

		if (gv_parse_u64(doms[i], DOMID_FIRST_RESERVED - 1, &v) < 0)
			continue;
		fe = (unsigned)v;
		snprintf(sub, sizeof(sub), "/local/domain/%u/device/%s", fe, kind);
		devs = xs_directory(c->xs, XBT_NULL, sub, &ndev);
		for (unsigned j = 0; devs && j < ndev; j++) {
			char fdir[256];
			uint64_t devid, beid;

			if (gv_parse_u64(devs[j], UINT32_MAX, &devid) < 0 ||
			    seen(c, disk, fe, (unsigned)devid, false))
				continue;
			snprintf(fdir, sizeof(fdir), "%s/%s", sub, devs[j]);
			if (gv_xs_read_u64(c->xs, XBT_NULL, fdir, GV_XS_BACKEND_ID,
			                   DOMID_FIRST_RESERVED - 1, &beid) < 0 || beid != c->be)
				continue;
			check_dom(c, fe);
			check_device(c, disk, fe, (unsigned)devid);
		}
		free(devs);
	}
	free(doms);
}

static void check_all(struct ctx *c)
{
	check_kind(c, false);
	check_kind(c, true);
}

static int cmd_check(long be_opt)
{
	struct gv_platform *p;
	struct ctx *c;
	char err[300];
	int rc;

	rc = gv_platform_open(NULL, &p, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "gv-schema: %s\n", err);
		return 2;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		gv_platform_close(p);
		return 2;
	}
	c->be = be_opt >= 0 ? (unsigned)be_opt : p->domid;
	c->xs = gv_xs_open(p);
	if (!c->xs) {
		fprintf(stderr, "gv-schema: cannot open xenstore on %s: %s\n", p->desc,
		        strerror(errno));
		free(c);
		gv_platform_close(p);
		return 2;
	}
	check_all(c);
	printf("gv-schema: %u device%s of backend domain %u checked against the schema "
	       "(%zu keys): ", c->devices, c->devices == 1 ? "" : "s", c->be, NRULES);
	if (c->violations)
		printf("%u violation%s\n", c->violations, c->violations == 1 ? "" : "s");
	else
		printf("clean\n");
	rc = c->violations ? 1 : 0;
	xs_close(c->xs);
	free(c);
	gv_platform_close(p);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f,
"NAME\n"
"    gv-schema - check a live xenstore against the grant-virtio key schema\n"
"\n"
"SYNOPSIS\n"
"    gv-schema [check] [--backend-domid N]\n"
"    gv-schema --help\n"
"\n"
"DESCRIPTION\n"
"    check (the default) walks every device under\n"
"    /local/domain/<be>/backend/virtio/<fe>/<devid>, its frontend directory\n"
"    /local/domain/<fe>/device/virtio/<devid> (and frontends naming <be>\n"
"    without a backend directory), the same for xl's disks under\n"
"    backend/virtio_disk and device/virtio_disk (disk = [\"...,specification=\n"
"    virtio,...\"]), and /local/domain/<fe>, and prints one line\n"
"    per violation:  PATH: rule (found: VALUE)\n"
"    The platform is chosen as for the other programs: GV_PLATFORM=xen|sim,\n"
"    GV_SIM_DIR, GV_DOMID for the simulation; real Xen through libxenstore.\n"
"    The schema (xenstore-schema/virtio.tsv) is built into the program; its\n"
"    table is xenstore-schema/README.md.\n"
"\n"
"RULES\n"
"    presence  'create' keys and 'state' exist while their directory does;\n"
"              a key written in state S exists while its writer's state is\n"
"              >= S and not Closed; other 'any' keys are optional;\n"
"              queue-<n>/ keys for n below the frontend's num-queues.\n"
"    device    blk or rng keys only on that device type (BE type).\n"
"    format    path domid uint bool hex64 state string text ref ref-list port,\n"
"              parsed strictly.\n"
"    perms     the perms column with BE/FE replaced by the domain ids, owner\n"
"              first; BE and FE directories nBE,rFE and nFE,rBE.\n"
"    unknown   every node under a BE or FE directory is in the schema.\n"
"    cross     frontend/backend paths point at each other, frontend-id and\n"
"              backend-id match the paths, driver-features within features,\n"
"              num-queues and queue sizes within the device's limits.\n"
"\n"
"OPTIONS\n"
"    --backend-domid N  the backend domain to check (default: this domain)\n"
"    -h, --help         this text\n"
"\n"
"EXIT STATUS\n"
"    0 clean, 1 violations found, 2 usage or platform error.\n"
"\n"
"SEE ALSO\n"
"    gv-backend(8), gv-frontend(1), xenstore-ls(1)\n");
}

int main(int argc, char **argv)
{
	long be = -1;
	int i = 1;

	if (argc > 1 && argv[1][0] != '-') {
		if (strcmp(argv[1], "check")) {
			fprintf(stderr, "gv-schema: unknown command '%s' (check; see --help)\n",
			        argv[1]);
			return 2;
		}
		i = 2;
	}
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--backend-domid") && i + 1 < argc) {
			uint64_t v;

			if (gv_parse_u64(argv[++i], DOMID_FIRST_RESERVED - 1, &v) < 0) {
				fprintf(stderr, "gv-schema: --backend-domid %s: expected a domain id\n",
				        argv[i]);
				return 2;
			}
			be = (long)v;
		} else {
			fprintf(stderr, "gv-schema: unexpected argument '%s' (see --help)\n", argv[i]);
			return 2;
		}
	}
	return cmd_check(be);
}
