/*
 * tools/gv-xl.c: the simulated toolstack, a small `xl` for gv-simxen.
 *
 *   gv-xl create CONFIG      create a domain from an xl config; prints its id
 *   gv-xl destroy NAME|ID    close its devices as libxl does, destroy it
 *   gv-xl list               domains, with dying ones
 *
 * create writes exactly the xenstore nodes Xen 4.20's libxl writes for
 * `virtio = [ "backend=0,type=virtio,device2,transport=mmio,grant_usage=1" ]`
 * (libxl_virtio.c and libxl_device.c in Xen 4.20; xenstore-schema/virtio.tsv
 * lists each key), and for `disk = [ "...,specification=virtio,
 * backendtype=standalone,grant_usage=1,target=PATH" ]` what it writes under
 * backend/virtio_disk (xenstore-schema/virtio-disk-standalone.md), with
 * the same permissions: backend keys n<be>,r<fe>; frontend keys n<fe>,r<be>;
 * the domain and its home /local/domain/<id> come from tools/toolstack.c.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xenstore.h>
#include "clock.h"
#include "platform.h"
#include "platform_sim.h"
#include "toolstack.h"
#include "xs_keys.h"
#include "xs_util.h"

#define MAX_VIRTIO 16

struct xl_virtio {
	unsigned backend;               /* backend domid */
	char type[64];
	char transport[16];
	unsigned grant_usage;
};

/* disk = [ "vdev=xvda,format=raw,access=rw,specification=virtio,
 *            backendtype=standalone,grant_usage=1,target=PATH" ] */
struct xl_disk {
	unsigned backend;
	char dev[16];                   /* xvda */
	unsigned vdev;                  /* 51712 */
	char mode[2];                   /* "w" or "r" */
	unsigned grant_usage;
	char target[512];
};

struct xl_config {
	char name[SIM_NAME_MAX];
	struct xl_virtio dev[MAX_VIRTIO];
	unsigned ndev;
	struct xl_disk disk[MAX_VIRTIO];
	unsigned ndisk;
};

/* ---- the xl config syntax: key = value, value a string, number or list ---- */

struct lexer {
	const char *file;
	const char *s;
	unsigned line;
	char err[512];
};

enum tok { T_EOF, T_IDENT, T_STRING, T_NUMBER, T_PUNCT, T_ERR };

static int isalnum_ascii(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static enum tok next_tok(struct lexer *lx, char *buf, size_t len)
{
	size_t n = 0;

	for (;;) {
		while (*lx->s == ' ' || *lx->s == '\t' || *lx->s == '\r' || *lx->s == '\n' ||
		       *lx->s == ';') {
			if (*lx->s == '\n')
				lx->line++;
			lx->s++;
		}
		if (*lx->s != '#')
			break;
		while (*lx->s && *lx->s != '\n')
			lx->s++;
	}
	if (!*lx->s)
		return T_EOF;
	if (*lx->s == '"' || *lx->s == '\'') {
		char q = *lx->s++;

		while (*lx->s && *lx->s != q && *lx->s != '\n') {
			if (n + 1 >= len) {
				snprintf(lx->err, sizeof(lx->err), "%s:%u: string too long", lx->file,
				         lx->line);
				return T_ERR;
			}
			buf[n++] = *lx->s++;
		}
		if (*lx->s != q) {
			snprintf(lx->err, sizeof(lx->err), "%s:%u: unterminated string", lx->file,
			         lx->line);
			return T_ERR;
		}
		lx->s++;
		buf[n] = 0;
		return T_STRING;
	}
	if (strchr("=[],", *lx->s)) {
		buf[0] = *lx->s++;
		buf[1] = 0;
		return T_PUNCT;
	}
	while (*lx->s && (isalnum_ascii(*lx->s) || strchr("_.-+", *lx->s))) {
		if (n + 1 >= len) {
			snprintf(lx->err, sizeof(lx->err), "%s:%u: word too long", lx->file, lx->line);
			return T_ERR;
		}
		buf[n++] = *lx->s++;
	}
	if (!n) {
		snprintf(lx->err, sizeof(lx->err), "%s:%u: unexpected character '%c'", lx->file,
		         lx->line, *lx->s);
		return T_ERR;
	}
	buf[n] = 0;
	return (buf[0] >= '0' && buf[0] <= '9') || buf[0] == '-' ? T_NUMBER : T_IDENT;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (!*s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return *end || errno || *out > max ? -EINVAL : 0;
}

/* "backend=0,type=virtio,device2,transport=mmio,grant_usage=1": the type
 * value itself holds a comma, so a word without '=' continues the type. */
static int parse_virtio(const char *spec, struct xl_virtio *v, char *err, size_t errlen)
{
	char buf[512], *save, *last_key = NULL;
	unsigned long n;
	uint32_t id;

	memset(v, 0, sizeof(*v));
	strcpy(v->transport, "mmio");
	if (strlen(spec) >= sizeof(buf)) {
		snprintf(err, errlen, "virtio spec too long");
		return -EINVAL;
	}
	strcpy(buf, spec);
	for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(w, '=');

		while (*w == ' ')
			w++;
		if (!eq) {
			if (last_key && !strcmp(last_key, "type") &&
			    strlen(v->type) + 1 + strlen(w) < sizeof(v->type)) {
				strcat(v->type, ",");
				strcat(v->type, w);
				continue;
			}
			snprintf(err, errlen, "virtio spec: '%s' is not key=value", w);
			return -EINVAL;
		}
		*eq = 0;
		last_key = w;
		if (!strcmp(w, "backend")) {
			if (parse_uint(eq + 1, DOMID_FIRST_RESERVED - 1, &n) < 0) {
				snprintf(err, errlen, "virtio spec: backend=%s: expected a domain id "
				         "(backend domains by name are not supported)", eq + 1);
				return -EINVAL;
			}
			v->backend = (unsigned)n;
		} else if (!strcmp(w, "type")) {
			snprintf(v->type, sizeof(v->type), "%s", eq + 1);
		} else if (!strcmp(w, "transport")) {
			if (strcmp(eq + 1, "mmio")) {
				snprintf(err, errlen, "virtio spec: transport=%s: only mmio is supported",
				         eq + 1);
				return -EINVAL;
			}
		} else if (!strcmp(w, "grant_usage")) {
			if (parse_uint(eq + 1, 1, &n) < 0) {
				snprintf(err, errlen, "virtio spec: grant_usage=%s: expected 0 or 1", eq + 1);
				return -EINVAL;
			}
			v->grant_usage = (unsigned)n;
		} else if (!strcmp(w, "irq") || !strcmp(w, "base") || !strcmp(w, "backend_type")) {
			/* device-model details the simulation does not use */
		} else {
			snprintf(err, errlen, "virtio spec: unknown key '%s'", w);
			return -EINVAL;
		}
	}
	if (gv_virtio_type_parse(v->type, &id) < 0) {
		snprintf(err, errlen, "virtio spec: type=%s: expected virtio,deviceN (N the virtio "
		         "device id in lower-case hexadecimal)", v->type);
		return -EINVAL;
	}
	return 0;
}

/* xvdX (X a..z, then aa..): the Xen virtual-device number as libxl computes
 * it (202 << 8 | index << 4; from index 16 on, 1 << 28 | index << 8) */
static int parse_vdev(const char *name, unsigned *out)
{
	unsigned idx = 0;
	size_t n = strlen(name);

	if (n < 4 || n > 6 || strncmp(name, "xvd", 3))
		return -EINVAL;
	for (const char *c = name + 3; *c; c++) {
		if (*c < 'a' || *c > 'z')
			return -EINVAL;
		idx = (c == name + 3 ? 0 : (idx + 1) * 26) + (unsigned)(*c - 'a');
	}
	*out = idx < 16 ? 202u << 8 | idx << 4 : 1u << 28 | idx << 8;
	return 0;
}

/* A disk spec in xl's key=value syntax (xl-disk-configuration(5)); target=
 * must come last and takes the rest of the string, commas and all. Only
 * specification=virtio disks are simulated (what gv-backend serves). */
static int parse_disk(const char *spec, struct xl_disk *k, char *err, size_t errlen)
{
	char buf[1024], *save, *target, spec_s[16] = "xen", bt[16] = "";
	unsigned long n;
	bool have_gu = false;

	memset(k, 0, sizeof(*k));
	strcpy(k->mode, "w");
	if (strlen(spec) >= sizeof(buf)) {
		snprintf(err, errlen, "disk spec too long");
		return -EINVAL;
	}
	strcpy(buf, spec);
	target = strstr(buf, "target=");
	if (!target || (target != buf && target[-1] != ',')) {
		snprintf(err, errlen, "disk spec: no target=PATH (it must be the last item)");
		return -EINVAL;
	}
	if (target != buf)
		target[-1] = 0;
	else
		buf[0] = 0;
	target += strlen("target=");
	if (!*target || strlen(target) >= sizeof(k->target)) {
		snprintf(err, errlen, "disk spec: target= empty or too long");
		return -EINVAL;
	}
	strcpy(k->target, target);
	for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(w, '='), *v;

		while (*w == ' ')
			w++;
		if (!eq) {
			snprintf(err, errlen, "disk spec: '%s' is not key=value (positional disk "
			         "syntax is not simulated)", w);
			return -EINVAL;
		}
		*eq = 0;
		v = eq + 1;
		if (!strcmp(w, "vdev")) {
			if (parse_vdev(v, &k->vdev) < 0) {
				snprintf(err, errlen, "disk spec: vdev=%s: expected xvdX", v);
				return -EINVAL;
			}
			snprintf(k->dev, sizeof(k->dev), "%s", v);
		} else if (!strcmp(w, "access")) {
			if (!strcmp(v, "rw") || !strcmp(v, "w"))
				strcpy(k->mode, "w");
			else if (!strcmp(v, "ro") || !strcmp(v, "r"))
				strcpy(k->mode, "r");
			else {
				snprintf(err, errlen, "disk spec: access=%s: expected rw or ro", v);
				return -EINVAL;
			}
		} else if (!strcmp(w, "backend")) {
			if (parse_uint(v, DOMID_FIRST_RESERVED - 1, &n) < 0) {
				snprintf(err, errlen, "disk spec: backend=%s: expected a domain id", v);
				return -EINVAL;
			}
			k->backend = (unsigned)n;
		} else if (!strcmp(w, "specification")) {
			snprintf(spec_s, sizeof(spec_s), "%s", v);
		} else if (!strcmp(w, "backendtype")) {
			snprintf(bt, sizeof(bt), "%s", v);
		} else if (!strcmp(w, "grant_usage")) {
			if (parse_uint(v, 1, &n) < 0) {
				snprintf(err, errlen, "disk spec: grant_usage=%s: expected 0 or 1", v);
				return -EINVAL;
			}
			k->grant_usage = (unsigned)n;
			have_gu = true;
		} else if (!strcmp(w, "format") || !strcmp(w, "devtype") ||
		           !strcmp(w, "transport")) {
			/* raw disks only; mmio only: nothing the simulation writes differs */
		} else {
			snprintf(err, errlen, "disk spec: unknown key '%s'", w);
			return -EINVAL;
		}
	}
	if (strcmp(spec_s, "virtio") || strcmp(bt, "standalone")) {
		snprintf(err, errlen, "disk spec: only specification=virtio,backendtype=standalone "
		         "disks are simulated (got specification=%s backendtype=%s)", spec_s,
		         bt[0] ? bt : "(default)");
		return -EINVAL;
	}
	if (!k->dev[0]) {
		snprintf(err, errlen, "disk spec: no vdev=xvdX");
		return -EINVAL;
	}
	/* libxl 4.20: grants by default only for a backend outside dom0 */
	if (!have_gu)
		k->grant_usage = k->backend != 0;
	return 0;
}

static int parse_config(const char *file, struct xl_config *cfg, char *err, size_t errlen)
{
	struct lexer lx = { file, NULL, 1, "" };
	char key[128], tok[1024], *text;
	FILE *f = fopen(file, "re");
	long size;
	enum tok t;
	int rc = -EINVAL;

	memset(cfg, 0, sizeof(*cfg));
	if (!f) {
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return -errno;
	}
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	if (size < 0 || size > (1 << 20) || !(text = calloc(1, (size_t)size + 1))) {
		fclose(f);
		snprintf(err, errlen, "%s: cannot read (too large?)", file);
		return -EINVAL;
	}
	if (fread(text, 1, (size_t)size, f) != (size_t)size) {
		snprintf(err, errlen, "%s: read error", file);
		goto out;
	}
	lx.s = text;
	for (;;) {
		unsigned kline;

		t = next_tok(&lx, key, sizeof(key));
		if (t == T_EOF)
			break;
		kline = lx.line;
		if (t != T_IDENT) {
			if (t != T_ERR)
				snprintf(lx.err, sizeof(lx.err), "%s:%u: expected a setting name, found '%s'",
				         file, lx.line, key);
			goto bad;
		}
		t = next_tok(&lx, tok, sizeof(tok));
		if (t != T_PUNCT || tok[0] != '=') {
			if (t != T_ERR)
				snprintf(lx.err, sizeof(lx.err), "%s:%u: expected '=' after %s", file,
				         kline, key);
			goto bad;
		}
		t = next_tok(&lx, tok, sizeof(tok));
		if (t == T_STRING || t == T_NUMBER || t == T_IDENT) {
			if (!strcmp(key, "name")) {
				if (t != T_STRING || !tok[0] || strlen(tok) >= sizeof(cfg->name)) {
					snprintf(lx.err, sizeof(lx.err), "%s:%u: name must be a non-empty "
					         "string of at most %zu characters", file, kline,
					         sizeof(cfg->name) - 1);
					goto bad;
				}
				strcpy(cfg->name, tok);
			} else if (!strcmp(key, "virtio") || !strcmp(key, "disk")) {
				snprintf(lx.err, sizeof(lx.err), "%s:%u: %s must be a list "
				         "[ \"...\", ... ]", file, kline, key);
				goto bad;
			}
			continue;
		}
		if (t != T_PUNCT || tok[0] != '[') {
			if (t != T_ERR)
				snprintf(lx.err, sizeof(lx.err), "%s:%u: expected a value after %s =",
				         file, kline, key);
			goto bad;
		}
		/* a list */
		for (;;) {
			unsigned vline;

			t = next_tok(&lx, tok, sizeof(tok));
			vline = lx.line;
			if (t == T_PUNCT && tok[0] == ']')
				break;
			if (t == T_PUNCT && tok[0] == ',')
				continue;
			if (t == T_ERR)
				goto bad;
			if (t == T_EOF || t == T_PUNCT) {
				snprintf(lx.err, sizeof(lx.err), "%s:%u: list of %s not closed with ']'",
				         file, vline, key);
				goto bad;
			}
			if (!strcmp(key, "virtio")) {
				char what[300];

				if (t != T_STRING) {
					snprintf(lx.err, sizeof(lx.err), "%s:%u: virtio entries are strings",
					         file, vline);
					goto bad;
				}
				if (cfg->ndev == MAX_VIRTIO) {
					snprintf(lx.err, sizeof(lx.err), "%s:%u: more than %d virtio devices",
					         file, vline, MAX_VIRTIO);
					goto bad;
				}
				if (parse_virtio(tok, &cfg->dev[cfg->ndev], what, sizeof(what)) < 0) {
					snprintf(lx.err, sizeof(lx.err), "%s:%u: %s", file, vline, what);
					goto bad;
				}
				cfg->ndev++;
			} else if (!strcmp(key, "disk")) {
				char what[300];

				if (t != T_STRING || cfg->ndisk == MAX_VIRTIO) {
					snprintf(lx.err, sizeof(lx.err), "%s:%u: disk entries are strings, "
					         "at most %d", file, vline, MAX_VIRTIO);
					goto bad;
				}
				if (parse_disk(tok, &cfg->disk[cfg->ndisk], what, sizeof(what)) < 0) {
					snprintf(lx.err, sizeof(lx.err), "%s:%u: %s", file, vline, what);
					goto bad;
				}
				for (unsigned j = 0; j < cfg->ndisk; j++)
					if (cfg->disk[j].vdev == cfg->disk[cfg->ndisk].vdev) {
						snprintf(lx.err, sizeof(lx.err), "%s:%u: disk %s twice", file,
						         vline, cfg->disk[j].dev);
						goto bad;
					}
				cfg->ndisk++;
			}
		}
	}
	if (!cfg->name[0]) {
		snprintf(err, errlen, "%s: no name = \"...\" setting", file);
		goto out;
	}
	rc = 0;
	goto out;
bad:
	snprintf(err, errlen, "%s", lx.err);
out:
	free(text);
	fclose(f);
	return rc;
}

/* ---- xenstore ------------------------------------------------------------------ */

static int put(struct xs_handle *xs, xs_transaction_t t, const char *dir, const char *key,
               const char *val, unsigned owner, unsigned reader)
{
	struct xs_permissions perms[2] = {
		{ .id = owner, .perms = XS_PERM_NONE },
		{ .id = reader, .perms = XS_PERM_READ },
	};
	char path[256];

	if (gv_xs_join(path, sizeof(path), dir, key) < 0)
		return -ENAMETOOLONG;
	if (!xs_write(xs, t, path, val, strlen(val)) ||
	    !xs_set_permissions(xs, t, path, perms, owner == reader ? 1 : 2))
		return errno ? -errno : -EIO;
	return 0;
}

struct create_ctx {
	const struct xl_config *cfg;
	domid_t domid;
};

/* What every device of both kinds has: the two parent directories, the
 * backend directory (n<be>,r<fe>) with its frontend link, frontend-id,
 * online, state, irq, base and grant_usage, the frontend directory
 * (n<fe>,r<be>) with its backend link, backend-id and state, and the
 * toolstack's private copy /libxl/<fe>/device/<kind>/<name>. One transaction:
 * the order of the writes does not matter to a watcher. */
static int write_pair(struct xs_handle *xs, xs_transaction_t t, const char *kind, unsigned be,
                      unsigned fe, const char *bdir, const char *fdir, unsigned name,
                      bool grant_usage)
{
	char parent[128], feid[16], beid[16];
	int rc;

	snprintf(feid, sizeof(feid), "%u", fe);
	snprintf(beid, sizeof(beid), "%u", be);
	snprintf(parent, sizeof(parent), "/local/domain/%u/device/%s", fe, kind);
	if ((rc = put(xs, t, parent, NULL, "", fe, be)))
		return rc;
	snprintf(parent, sizeof(parent), "/local/domain/%u/backend/%s/%u", be, kind, fe);
	if ((rc = put(xs, t, parent, NULL, "", be, fe)))
		return rc;
	if ((rc = put(xs, t, bdir, NULL, "", be, fe)) ||
	    (rc = put(xs, t, bdir, GV_XS_FRONTEND, fdir, be, fe)) ||
	    (rc = put(xs, t, bdir, GV_XS_FRONTEND_ID, feid, be, fe)) ||
	    (rc = put(xs, t, bdir, GV_XS_ONLINE, "1", be, fe)) ||
	    (rc = put(xs, t, bdir, GV_XS_STATE, "1", be, fe)) ||
	    (rc = put(xs, t, bdir, GV_XS_IRQ, "0", be, fe)) ||
	    (rc = put(xs, t, bdir, GV_XS_BASE, "0", be, fe)) ||
	    (rc = put(xs, t, bdir, GV_XS_GRANT_USAGE, grant_usage ? "1" : "0", be, fe)))
		return rc;
	if ((rc = put(xs, t, fdir, NULL, "", fe, be)) ||
	    (rc = put(xs, t, fdir, GV_XS_BACKEND, bdir, fe, be)) ||
	    (rc = put(xs, t, fdir, GV_XS_BACKEND_ID, beid, fe, be)) ||
	    (rc = put(xs, t, fdir, GV_XS_FE_STATE, "1", fe, be)))
		return rc;
	snprintf(parent, sizeof(parent), "/libxl/%u/device/%s/%u", fe, kind, name);
	if ((rc = put(xs, t, parent, "frontend", fdir, 0, 0)) ||
	    (rc = put(xs, t, parent, "backend", bdir, 0, 0)))
		return rc;
	return 0;
}

static int write_domain(struct xs_handle *xs, xs_transaction_t t, void *arg)
{
	struct create_ctx *c = arg;
	unsigned fe = c->domid;
	int rc;

	for (unsigned i = 0; i < c->cfg->ndev; i++) {
		const struct xl_virtio *v = &c->cfg->dev[i];
		unsigned be = v->backend;
		char bdir[128], fdir[128];

		snprintf(bdir, sizeof(bdir), GV_XS_BACKEND_DIR_FMT, be, fe, i);
		snprintf(fdir, sizeof(fdir), GV_XS_FRONTEND_DIR_FMT, fe, i);
		if ((rc = write_pair(xs, t, "virtio", be, fe, bdir, fdir, i, v->grant_usage)) ||
		    (rc = put(xs, t, bdir, GV_XS_TYPE, v->type, be, fe)) ||
		    (rc = put(xs, t, bdir, GV_XS_TRANSPORT, v->transport, be, fe)))
			return rc;
	}
	for (unsigned i = 0; i < c->cfg->ndisk; i++) {
		const struct xl_disk *k = &c->cfg->disk[i];
		unsigned be = k->backend;
		char bdir[128], fdir[128], vd[16];

		/* as libxl 4.20 for specification=virtio,backendtype=standalone
		 * (xenstore-schema/virtio-disk-standalone.md, measured) */
		snprintf(bdir, sizeof(bdir), GV_XS_DISK_BACKEND_DIR_FMT, be, fe, k->vdev);
		snprintf(fdir, sizeof(fdir), GV_XS_DISK_FRONTEND_DIR_FMT, fe, k->vdev);
		snprintf(vd, sizeof(vd), "%u", k->vdev);
		if ((rc = write_pair(xs, t, "virtio_disk", be, fe, bdir, fdir, k->vdev, k->grant_usage)) ||
		    (rc = put(xs, t, bdir, GV_XS_PARAMS, k->target, be, fe)) ||
		    (rc = put(xs, t, bdir, GV_XS_REMOVABLE, "0", be, fe)) ||
		    (rc = put(xs, t, bdir, GV_XS_BOOTABLE, "1", be, fe)) ||
		    (rc = put(xs, t, bdir, GV_XS_DEV, k->dev, be, fe)) ||
		    (rc = put(xs, t, bdir, GV_XS_TYPE, "standalone", be, fe)) ||
		    (rc = put(xs, t, bdir, GV_XS_MODE, k->mode, be, fe)) ||
		    (rc = put(xs, t, bdir, GV_XS_DEVICE_TYPE, "disk", be, fe)) ||
		    (rc = put(xs, t, bdir, GV_XS_DISCARD_ENABLE, "1", be, fe)) ||
		    (rc = put(xs, t, bdir, GV_XS_SPECIFICATION, "virtio", be, fe)) ||
		    (rc = put(xs, t, bdir, GV_XS_TRANSPORT, "mmio", be, fe)))
			return rc;
		if ((rc = put(xs, t, fdir, GV_XS_VIRTUAL_DEVICE, vd, fe, be)) ||
		    (rc = put(xs, t, fdir, GV_XS_DEVICE_TYPE, "disk", fe, be)) ||
		    (rc = put(xs, t, fdir, GV_XS_TRUSTED, "1", fe, be)) ||
		    (rc = put(xs, t, fdir, GV_XS_PROTOCOL, "x86_64-abi", fe, be)))
			return rc;
	}
	return 0;
}

static bool wait_state(struct xs_handle *xs, const char *dir, int want, int ms);
static int destroy_id(struct gv_platform *p, struct xs_handle *xs, unsigned long id);

/* libxl waits 10 s for each disk's backend to reach InitWait and fails the
 * create (the domain is destroyed) otherwise: the same here, with the
 * backend's error key shown. 0 or -1. */
static int wait_disks(struct xs_handle *xs, const struct create_ctx *c)
{
	for (unsigned i = 0; i < c->cfg->ndisk; i++) {
		const struct xl_disk *k = &c->cfg->disk[i];
		char bdir[128], err[512] = "";
		enum xenbus_state s = XenbusStateUnknown;

		snprintf(bdir, sizeof(bdir), GV_XS_DISK_BACKEND_DIR_FMT, k->backend,
		         (unsigned)c->domid, k->vdev);
		if (wait_state(xs, bdir, XenbusStateInitWait, 10000) &&
		    gv_xs_read_state(xs, XBT_NULL, bdir, GV_XS_STATE, &s) == 0 &&
		    s == XenbusStateInitWait)
			continue;
		gv_xs_read_state(xs, XBT_NULL, bdir, GV_XS_STATE, &s);
		gv_xs_read_str(xs, XBT_NULL, bdir, GV_XS_ERROR, err, sizeof(err));
		fprintf(stderr, "gv-xl: unable to add disk %s (virtio_disk %u): the backend did not "
		        "reach InitWait within 10 s (state %d)%s%s\n", k->dev, k->vdev, (int)s,
		        err[0] ? "; backend error: " : "", err);
		return -1;
	}
	return 0;
}

static int open_dom0(struct gv_platform **p, struct xs_handle **xs)
{
	struct gv_platform_opts o = { GV_PLATFORM_SIM, NULL, 0 };
	char err[300];
	int rc = gv_platform_open(&o, p, err, sizeof(err));

	if (rc < 0) {
		fprintf(stderr, "gv-xl: %s\n", err);
		return rc;
	}
	*xs = gv_xs_open(*p);
	if (!*xs) {
		fprintf(stderr, "gv-xl: cannot open xenstore: %s\n", strerror(errno));
		gv_platform_close(*p);
		return -EIO;
	}
	return 0;
}

static int list_domains(struct gv_platform *p, struct sim_domain_info **out)
{
	struct sim_domain_info *info = calloc(SIM_MAX_LIST, sizeof(*info));
	int n;

	if (!info)
		return -ENOMEM;
	n = gv_sim_domain_list(p, info, SIM_MAX_LIST);
	if (n < 0) {
		free(info);
		return n;
	}
	*out = info;
	return n > (int)SIM_MAX_LIST ? (int)SIM_MAX_LIST : n;
}

/* *id: the live (not dying) domain named NAME, ~0ul when there is none.
 * -1 (said why) when the domains cannot be listed, else 0. */
static int live_domain(struct gv_platform *p, const char *name, unsigned long *id)
{
	struct sim_domain_info *info;
	int n = list_domains(p, &info);

	*id = ~0ul;
	if (n < 0) {
		fprintf(stderr, "gv-xl: cannot list domains: %s\n", strerror(-n));
		return -1;
	}
	for (int i = 0; i < n; i++)
		if (!strcmp(info[i].name, name) && !info[i].dying)
			*id = info[i].domid;
	free(info);
	return 0;
}

static int cmd_create(const char *file)
{
	struct xl_config cfg;
	struct create_ctx c = { &cfg, 0 };
	struct gv_platform *p;
	struct xs_handle *xs;
	unsigned long id;
	char err[600];
	int rc;

	if (parse_config(file, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "gv-xl: %s\n", err);
		return 1;
	}
	if (open_dom0(&p, &xs) < 0)
		return 1;
	if (live_domain(p, cfg.name, &id) < 0) {
		rc = 1;
		goto out;
	}
	if (id != ~0ul) {
		fprintf(stderr, "gv-xl: %s: a domain named %s already exists (domain %lu)\n",
		        file, cfg.name, id);
		rc = 1;
		goto out;
	}
	rc = gv_toolstack_domain_create(p, cfg.name, &c.domid);
	if (rc < 0) {
		fprintf(stderr, "gv-xl: cannot create domain %s: %s\n", cfg.name, strerror(-rc));
		rc = 1;
		goto out;
	}
	rc = gv_xs_transaction(xs, write_domain, &c);
	if (rc < 0) {
		fprintf(stderr, "gv-xl: cannot write the xenstore nodes of %s: %s\n", cfg.name,
		        strerror(-rc));
		gv_toolstack_domain_destroy(p, c.domid);
		rc = 1;
		goto out;
	}
	if (wait_disks(xs, &c) < 0) {
		destroy_id(p, xs, c.domid);
		rc = 1;
		goto out;
	}
	printf("%u\n", (unsigned)c.domid);
	rc = 0;
out:
	xs_close(xs);
	gv_platform_close(p);
	return rc;
}

/* Waits (at most ms), woken by a watch on it, until dir/state reads `want`. */
static bool wait_state(struct xs_handle *xs, const char *dir, int want, int ms)
{
	int64_t deadline = gv_now_ms() + ms;
	char path[256];
	bool ok = false;

	if (gv_xs_join(path, sizeof(path), dir, GV_XS_STATE) < 0 || !xs_watch(xs, path, "gv-xl"))
		return false;
	for (;;) {
		enum xenbus_state s;
		struct pollfd pfd = { xs_fileno(xs), POLLIN, 0 };
		int64_t left;
		char **w;

		if (gv_xs_read_state(xs, XBT_NULL, dir, GV_XS_STATE, &s) < 0 || (int)s == want ||
		    (want == XenbusStateInitWait && s == XenbusStateClosed)) {
			ok = true;      /* gone counts: nothing left to close */
			break;
		}
		left = deadline - gv_now_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) < 0)
			break;
		while ((w = xs_check_watch(xs)))
			free(w);
	}
	xs_unwatch(xs, path, "gv-xl");
	return ok;
}

static void rm_tree(struct xs_handle *xs, const char *path)
{
	xs_rm(xs, XBT_NULL, path);
}

/* As libxl: each backend to Closing with online=0, wait for Closed, then
 * remove both directories; then the domain. 0 or -1. */
/* libxl's device removal of a domain going away: online=0, BE Closing, up
 * to 10 s for Closed, then the frontend and backend nodes go. */
static void remove_devices(struct xs_handle *xs, unsigned long id)
{
	static const char *const kinds[] = { "virtio", "virtio_disk" };
	char dir[128], **devs;
	unsigned ndev = 0;

	for (unsigned k = 0; k < 2; k++) {
		snprintf(dir, sizeof(dir), "/local/domain/%lu/device/%s", id, kinds[k]);
		devs = xs_directory(xs, XBT_NULL, dir, &ndev);
		for (unsigned i = 0; devs && i < ndev; i++) {
			char fdir[160], bdir[160];
			enum xenbus_state s;

			snprintf(fdir, sizeof(fdir), "%s/%s", dir, devs[i]);
			if (gv_xs_read_str(xs, XBT_NULL, fdir, GV_XS_BACKEND, bdir, sizeof(bdir)) == 0) {
				gv_xs_write_str(xs, XBT_NULL, bdir, GV_XS_ONLINE, "0");
				if (gv_xs_read_state(xs, XBT_NULL, bdir, GV_XS_STATE, &s) == 0 &&
				    s != XenbusStateClosed) {
					gv_xs_write_str(xs, XBT_NULL, bdir, GV_XS_STATE, "5");
					/* 10 s, libxl's own bound for a device to close (LIBXL_DESTROY_TIMEOUT) */
					if (!wait_state(xs, bdir, XenbusStateClosed, 10000))
						fprintf(stderr, "gv-xl: %s did not close within 10 s; "
						        "removing it anyway\n", bdir);
				}
				rm_tree(xs, bdir);
			}
			rm_tree(xs, fdir);
		}
		free(devs);
		snprintf(dir, sizeof(dir), "/local/domain/0/backend/%s/%lu", kinds[k], id);
		rm_tree(xs, dir);
	}
	snprintf(dir, sizeof(dir), "/libxl/%lu", id);
	rm_tree(xs, dir);
}

static int destroy_id(struct gv_platform *p, struct xs_handle *xs, unsigned long id)
{
	int n;

	remove_devices(xs, id);
	n = gv_toolstack_domain_destroy(p, (domid_t)id);
	if (n < 0) {
		fprintf(stderr, "gv-xl: cannot destroy domain %lu: %s\n", id, strerror(-n));
		return -1;
	}
	return 0;
}

static int cmd_destroy(const char *who)
{
	struct gv_platform *p;
	struct xs_handle *xs;
	unsigned long id;
	int rc = 1;

	if (open_dom0(&p, &xs) < 0)
		return 1;
	if (live_domain(p, who, &id) < 0)
		goto out;
	if (id == ~0ul && parse_uint(who, DOMID_FIRST_RESERVED - 1, &id) < 0)
		id = ~0ul;
	if (id == ~0ul || id == 0) {
		fprintf(stderr, "gv-xl: %s: no such domain%s\n", who, id == 0 ? " (domain 0 stays)" : "");
		goto out;
	}
	rc = destroy_id(p, xs, id) < 0 ? 1 : 0;
out:
	xs_close(xs);
	gv_platform_close(p);
	return rc;
}

/* xl save + xl restore of a running guest, its processes going on: the old
 * domain's devices are removed (the backend lets go of them), a new domain
 * of the same name takes the guest over (gv-simxen moves its xenstore
 * connections; the old one is destroyed) and gets the devices of CONFIG
 * anew, as xl restore creates them from the saved config. */
static int cmd_restore(const char *file)
{
	struct xl_config cfg;
	struct create_ctx c = { &cfg, 0 };
	struct gv_platform *p;
	struct xs_handle *xs;
	unsigned long old;
	char err[600];
	int n, rc = 1;

	if (parse_config(file, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "gv-xl: %s\n", err);
		return 1;
	}
	if (open_dom0(&p, &xs) < 0)
		return 1;
	if (live_domain(p, cfg.name, &old) < 0)
		goto out;
	if (old == ~0ul || old == 0) {
		fprintf(stderr, "gv-xl: %s: no running domain named %s\n", file, cfg.name);
		goto out;
	}
	remove_devices(xs, old);
	n = gv_toolstack_domain_restore(p, (domid_t)old, cfg.name, &c.domid);
	if (n < 0) {
		fprintf(stderr, "gv-xl: cannot restore domain %lu: %s\n", old, strerror(-n));
		goto out;
	}
	n = gv_xs_transaction(xs, write_domain, &c);
	if (n < 0) {
		fprintf(stderr, "gv-xl: cannot write the xenstore nodes of %s: %s\n", cfg.name,
		        strerror(-n));
		destroy_id(p, xs, c.domid);
		goto out;
	}
	if (wait_disks(xs, &c) < 0) {
		destroy_id(p, xs, c.domid);
		goto out;
	}
	printf("%u\n", (unsigned)c.domid);
	rc = 0;
out:
	xs_close(xs);
	gv_platform_close(p);
	return rc;
}

static int cmd_list(void)
{
	struct sim_domain_info *info;
	struct gv_platform *p;
	struct xs_handle *xs;
	int n;

	if (open_dom0(&p, &xs) < 0)
		return 1;
	n = list_domains(p, &info);
	if (n < 0) {
		fprintf(stderr, "gv-xl: cannot list domains: %s\n", strerror(-n));
		xs_close(xs);
		gv_platform_close(p);
		return 1;
	}
	printf("%-24s %5s %-8s %8s %8s %8s\n", "Name", "ID", "State", "Granted", "Maps",
	       "MappedBy");
	for (int i = 0; i < n; i++)
		printf("%-24s %5u %-8s %8llu %8llu %8llu\n",
		       info[i].name[0] ? info[i].name : "(null)", info[i].domid,
		       info[i].dying ? "dying" : "running",
		       (unsigned long long)info[i].grants_active,
		       (unsigned long long)info[i].maps_active,
		       (unsigned long long)info[i].pages_mapped_by_others);
	free(info);
	xs_close(xs);
	gv_platform_close(p);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
	"usage: gv-xl create CONFIG | destroy NAME|ID | list | restore CONFIG\n"
	"\n"
	"The simulated toolstack of grant-virtio (talks to gv-simxen, $GV_SIM_DIR).\n"
	"  create CONFIG   create a domain from an xl config: name = \"...\" and\n"
	"                  virtio = [ \"backend=0,type=virtio,device2,transport=mmio,\n"
	"                  grant_usage=1\", ... ] and disk = [ \"vdev=xvda,access=rw,\n"
	"                  specification=virtio,backendtype=standalone,grant_usage=1,\n"
	"                  target=PATH\", ... ] (other keys are ignored); writes the\n"
	"                  xenstore nodes xl writes; waits 10 s for each disk's\n"
	"                  backend to reach InitWait, as libxl does (else fails and\n"
	"                  destroys the domain); prints the new domain id\n"
	"  destroy NAME|ID closes its devices (online=0, state Closing, waits for\n"
	"                  Closed), removes its xenstore nodes, destroys it\n"
	"  list            domains with their state (dying: pages still mapped)\n"
	"  restore CONFIG  xl save + xl restore of the running domain of CONFIG's\n"
	"                  name, its processes going on: its devices are removed,\n"
	"                  a new domain takes over its xenstore connections, the old\n"
	"                  one is destroyed, the devices are created anew; prints\n"
	"                  the new domain id\n");
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "create"))
		return cmd_create(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "destroy"))
		return cmd_destroy(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "list"))
		return cmd_list();
	if (argc == 3 && !strcmp(argv[1], "restore"))
		return cmd_restore(argv[2]);
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 1;
}
