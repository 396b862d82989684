/* common/xs_util.c: see xs_util.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "xs_util.h"

int gv_xs_join(char *buf, size_t len, const char *dir, const char *key)
{
	int n = key ? snprintf(buf, len, "%s/%s", dir, key) : snprintf(buf, len, "%s", dir);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int gv_xs_read_str(struct xs_handle *xs, xs_transaction_t t, const char *dir, const char *key,
                   char *buf, size_t len)
{
	char path[256];
	unsigned int n;
	char *v;
	int rc = gv_xs_join(path, sizeof(path), dir, key);

	if (rc)
		return rc;
	v = xs_read(xs, t, path, &n);
	if (!v)
		return errno ? -errno : -EIO;
	if (n >= len || memchr(v, 0, n)) {
		free(v);
		return n >= len ? -ERANGE : -EINVAL;
	}
	memcpy(buf, v, n);
	buf[n] = 0;
	free(v);
	return 0;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	int base = 10;
	uint64_t v = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return -EINVAL;
		if (v > (UINT64_MAX - d) / (unsigned)base)
			return -ERANGE;
		v = v * (unsigned)base + d;
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int gv_xs_read_u64(struct xs_handle *xs, xs_transaction_t t, const char *dir, const char *key,
                   uint64_t max, uint64_t *out)
{
	char buf[32];
	int rc = gv_xs_read_str(xs, t, dir, key, buf, sizeof(buf));

	if (rc)
		return rc == -ERANGE ? -EINVAL : rc;
	return parse_u64(buf, max, out);
}

int gv_xs_read_state(struct xs_handle *xs, xs_transaction_t t, const char *dir,
                     const char *key, enum xenbus_state *out)
{
	uint64_t v;
	int rc = gv_xs_read_u64(xs, t, dir, key, XenbusStateReconfigured, &v);

	if (rc)
		return rc;
	*out = (enum xenbus_state)v;
	return 0;
}

int gv_xs_read_refs(struct xs_handle *xs, xs_transaction_t t, const char *dir, const char *key,
                    grant_ref_t *refs, unsigned max, unsigned *n)
{
	char buf[GV_XS_VALUE_MAX + 1];
	int rc = gv_xs_read_str(xs, t, dir, key, buf, sizeof(buf));

	if (rc)
		return rc;
	return gv_parse_refs(buf, refs, max, n);
}

int gv_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	return parse_u64(s, max, out);
}

int gv_parse_decimal(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!len || (s[0] == '0' && len > 1))
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int gv_xs_parse_device_path(const char *path, const char *root, domid_t *fe, unsigned *devid)
{
	size_t rl = strlen(root), n;
	uint64_t a, b;

	if (strncmp(path, root, rl) || (path[rl] != '/' && path[rl] != 0))
		return -EINVAL;
	path += rl;
	if (!*path++)
		return 0;               /* root itself */
	n = strcspn(path, "/");
	if (gv_parse_decimal(path, n, DOMID_FIRST_RESERVED - 1, &a) < 0 || path[n] != '/')
		return 0;
	path += n + 1;
	n = strcspn(path, "/");
	if (gv_parse_decimal(path, n, 65535, &b) < 0)
		return 0;
	*fe = (domid_t)a;
	*devid = (unsigned)b;
	return 1;
}

int gv_virtio_type_parse(const char *type, uint32_t *virtio_id)
{
	static const char prefix[] = "virtio,device";
	const char *s;
	uint32_t id = 0;
	size_t n;

	if (strncmp(type, prefix, sizeof(prefix) - 1))
		return -EINVAL;
	s = type + sizeof(prefix) - 1;
	n = strlen(s);
	/* 1..8 digits, no leading zero: one spelling per id */
	if (n == 0 || n > 8 || s[0] == '0')
		return -EINVAL;
	for (; *s; s++) {
		if (*s >= '0' && *s <= '9')
			id = id << 4 | (uint32_t)(*s - '0');
		else if (*s >= 'a' && *s <= 'f')
			id = id << 4 | (uint32_t)(*s - 'a' + 10);
		else
			return -EINVAL;
	}
	*virtio_id = id;
	return 0;
}

int gv_parse_refs(char *buf, grant_ref_t *refs, unsigned max, unsigned *n)
{
	char *save = NULL, *tok;
	unsigned count = 0;
	int rc;

	for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		uint64_t v;

		if (count == max)
			return -ERANGE;
		rc = parse_u64(tok, UINT32_MAX, &v);
		if (rc)
			return rc;
		refs[count++] = (grant_ref_t)v;
	}
	if (!count)
		return -EINVAL;
	*n = count;
	return 0;
}

int gv_xs_write_str(struct xs_handle *xs, xs_transaction_t t, const char *dir, const char *key,
                    const char *val)
{
	char path[256];
	int rc = gv_xs_join(path, sizeof(path), dir, key);

	if (rc)
		return rc;
	if (!xs_write(xs, t, path, val, (unsigned)strlen(val)))
		return errno ? -errno : -EIO;
	return 0;
}

int gv_xs_printf(struct xs_handle *xs, xs_transaction_t t, const char *dir, const char *key,
                 const char *fmt, ...)
{
	char val[GV_XS_VALUE_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(val))
		return -E2BIG;
	return gv_xs_write_str(xs, t, dir, key, val);
}

int gv_xs_write_refs(struct xs_handle *xs, xs_transaction_t t, const char *dir, const char *key,
                     const grant_ref_t *refs, unsigned n)
{
	char val[GV_XS_VALUE_MAX];
	size_t used = 0;

	for (unsigned i = 0; i < n; i++) {
		int k = snprintf(val + used, sizeof(val) - used, i ? " %u" : "%u", refs[i]);

		if (k < 0 || (size_t)k >= sizeof(val) - used)
			return -E2BIG;
		used += (size_t)k;
	}
	return gv_xs_write_str(xs, t, dir, key, val);
}

int gv_xs_rm(struct xs_handle *xs, xs_transaction_t t, const char *dir, const char *key)
{
	char path[256];
	int rc = gv_xs_join(path, sizeof(path), dir, key);

	if (rc)
		return rc;
	if (!xs_rm(xs, t, path) && errno != ENOENT)
		return -errno;
	return 0;
}

int gv_xs_transaction(struct xs_handle *xs,
                      int (*fn)(struct xs_handle *xs, xs_transaction_t t, void *ctx), void *ctx)
{
	for (int attempt = 0; attempt < 64; attempt++) {
		xs_transaction_t t = xs_transaction_start(xs);
		int rc;

		if (t == XBT_NULL)
			return errno ? -errno : -EIO;
		rc = fn(xs, t, ctx);
		if (rc < 0) {
			xs_transaction_end(xs, t, true);
			return rc;
		}
		if (xs_transaction_end(xs, t, false))
			return 0;
		if (errno != EAGAIN)
			return -errno;
	}
	return -EAGAIN;
}

const char *gv_xenbus_state_name(enum xenbus_state s)
{
	static const char *const names[] = {
		"Unknown", "Initialising", "InitWait", "Initialised", "Connected",
		"Closing", "Closed", "Reconfiguring", "Reconfigured"
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "Invalid";
}
