/*
 * backend/config.c: which image file serves which guest's virtio-blk device,
 * from the command line (--disk GUEST:DEVID=PATH[,ro][,allow-bypass]) and
 * from a config file (one "disk GUEST:DEVID PATH [ro] [allow-bypass]" per
 * line, # comments). GUEST is a domain name or a domain id.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "config.h"
#include "nbd.h"
#include "xs_util.h"

/* "GUEST:DEVID" */
static int parse_target(const char *s, size_t len, struct gvbe_disk_cfg *d, char *err, size_t errlen)
{
	const char *colon = memchr(s, ':', len);
	char num[16], *end;
	unsigned long v;
	size_t glen;

	if (!colon) {
		snprintf(err, errlen, "'%.*s': expected GUEST:DEVID", (int)len, s);
		return -EINVAL;
	}
	glen = (size_t)(colon - s);
	if (!glen || glen >= sizeof(d->guest)) {
		snprintf(err, errlen, "'%.*s': guest name empty or longer than %zu", (int)len, s,
		         sizeof(d->guest) - 1);
		return -EINVAL;
	}
	memcpy(d->guest, s, glen);
	d->guest[glen] = 0;
	len -= glen + 1;
	if (!len || len >= sizeof(num)) {
		snprintf(err, errlen, "'%s': device id missing or too long", d->guest);
		return -EINVAL;
	}
	memcpy(num, colon + 1, len);
	num[len] = 0;
	errno = 0;
	v = strtoul(num, &end, 10);
	if (*end || errno || v > 65535 || num[0] == '-' || num[0] == '+') {
		snprintf(err, errlen, "'%s': device id must be a number 0..65535", num);
		return -EINVAL;
	}
	d->devid = (unsigned)v;
	return 0;
}

static int parse_flag(const char *f, size_t len, struct gvbe_disk_cfg *d, char *err, size_t errlen)
{
	if (len == 2 && !memcmp(f, "ro", 2))
		d->ro = true;
	else if (len == 2 && !memcmp(f, "rw", 2))
		d->ro = false;
	else if (len == 12 && !memcmp(f, "allow-bypass", 12))
		d->allow_bypass = true;
	else if (len == 8 && !memcmp(f, "buffered", 8))
		d->buffered = true;
	else if (len == 6 && !memcmp(f, "direct", 6))
		d->buffered = false;
	else if (len > 7 && !memcmp(f, "queues=", 7)) {
		uint64_t q;

		if (gv_parse_decimal(f + 7, len - 7, GVBE_DISK_MAX_QUEUES, &q) < 0 || !q) {
			snprintf(err, errlen, "disk option '%.*s': queues must be 1..%u", (int)len, f,
			         GVBE_DISK_MAX_QUEUES);
			return -EINVAL;
		}
		d->queues = (unsigned)q;
	} else {
		snprintf(err, errlen, "unknown disk option '%.*s' (expected ro, rw, allow-bypass, "
		         "direct, buffered or queues=N)", (int)len, f);
		return -EINVAL;
	}
	return 0;
}

static int set_path(struct gvbe_disk_cfg *d, const char *p, size_t len, char *err, size_t errlen)
{
	if (!len || len >= sizeof(d->path)) {
		snprintf(err, errlen, "disk path empty or too long");
		return -EINVAL;
	}
	memcpy(d->path, p, len);
	d->path[len] = 0;
	if (gvbe_nbd_is_uri(d->path))
		return gvbe_nbd_check_uri(d->path, err, errlen);
	return 0;
}

int gvbe_disk_parse_opt(const char *arg, struct gvbe_disk_cfg *d, char *err, size_t errlen)
{
	const char *eq = strchr(arg, '='), *p, *comma;
	int rc;

	memset(d, 0, sizeof(*d));
	d->queues = GVBE_DISK_DEFAULT_QUEUES;
	snprintf(d->origin, sizeof(d->origin), "--disk %s", arg);
	if (!eq) {
		snprintf(err, errlen, "--disk %s: expected GUEST:DEVID=PATH[,ro][,allow-bypass]", arg);
		return -EINVAL;
	}
	rc = parse_target(arg, (size_t)(eq - arg), d, err, errlen);
	if (rc < 0)
		return rc;
	p = eq + 1;
	comma = strchr(p, ',');
	rc = set_path(d, p, comma ? (size_t)(comma - p) : strlen(p), err, errlen);
	while (!rc && comma) {
		p = comma + 1;
		comma = strchr(p, ',');
		rc = parse_flag(p, comma ? (size_t)(comma - p) : strlen(p), d, err, errlen);
	}
	return rc;
}

int gvbe_xl_dir_parse(const char *dir, struct gvbe_disk_cfg *d, char *err, size_t errlen)
{
	memset(d, 0, sizeof(*d));
	d->xl_dir = true;
	snprintf(d->origin, sizeof(d->origin), "--xl-disk-dir %s", dir);
	if (dir[0] != '/') {
		snprintf(err, errlen, "xl-disk-dir %s: expected an absolute directory", dir);
		return -EINVAL;
	}
	return set_path(d, dir, strlen(dir), err, errlen);
}

static int parse_line(char *line, struct gvbe_disk_cfg *d, char *err, size_t errlen)
{
	char *save, *w[8];
	int n = 0, rc;
	char *hash = strchr(line, '#');

	if (hash)
		*hash = 0;
	for (char *t = strtok_r(line, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
		if (n == 8) {
			snprintf(err, errlen, "too many words");
			return -EINVAL;
		}
		w[n++] = t;
	}
	if (!n)
		return 0;               /* blank or comment */
	if (!strcmp(w[0], "xl-disk-dir")) {
		if (n != 2) {
			snprintf(err, errlen, "expected: xl-disk-dir DIR");
			return -EINVAL;
		}
		return gvbe_xl_dir_parse(w[1], d, err, errlen) < 0 ? -EINVAL : 1;
	}
	if (strcmp(w[0], "disk")) {
		snprintf(err, errlen, "unknown directive '%s' (expected: disk GUEST:DEVID PATH "
		         "[ro] [allow-bypass], or xl-disk-dir DIR)", w[0]);
		return -EINVAL;
	}
	if (n < 3) {
		snprintf(err, errlen, "expected: disk GUEST:DEVID PATH [ro] [allow-bypass]");
		return -EINVAL;
	}
	memset(d, 0, sizeof(*d));
	d->queues = GVBE_DISK_DEFAULT_QUEUES;
	rc = parse_target(w[1], strlen(w[1]), d, err, errlen);
	if (!rc)
		rc = set_path(d, w[2], strlen(w[2]), err, errlen);
	for (int k = 3; !rc && k < n; k++)
		rc = parse_flag(w[k], strlen(w[k]), d, err, errlen);
	return rc < 0 ? rc : 1;
}

struct gvbe_disk_cfg *gvbe_disk_append(struct gvbe_disk_cfg **list, const struct gvbe_disk_cfg *d)
{
	struct gvbe_disk_cfg *copy = malloc(sizeof(*copy)), **tail;

	if (!copy)
		return NULL;
	*copy = *d;
	copy->next = NULL;
	for (tail = list; *tail; tail = &(*tail)->next)
		;
	*tail = copy;
	return copy;
}

int gvbe_disk_parse_file(const char *file, struct gvbe_disk_cfg **list, char *err, size_t errlen)
{
	FILE *f = fopen(file, "re");
	char line[1024], what[256];
	unsigned lineno = 0;
	int rc = 0, saved;

	if (!f) {
		saved = errno;
		snprintf(err, errlen, "%s: %s", file, strerror(saved));
		return -saved;
	}
	while (fgets(line, sizeof(line), f)) {
		struct gvbe_disk_cfg d;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%u: line too long", file, lineno);
			rc = -EINVAL;
			break;
		}
		rc = parse_line(line, &d, what, sizeof(what));
		if (rc < 0) {
			snprintf(err, errlen, "%s:%u: %s", file, lineno, what);
			break;
		}
		if (!rc)
			continue;
		rc = 0;
		snprintf(d.origin, sizeof(d.origin), "%s:%u", file, lineno);
		if (!gvbe_disk_append(list, &d)) {
			rc = -ENOMEM;
			snprintf(err, errlen, "out of memory");
			break;
		}
	}
	fclose(f);
	return rc;
}

const struct gvbe_disk_cfg *gvbe_disk_find(const struct gvbe_disk_cfg *list, const char *name,
                                       domid_t id, unsigned devid)
{
	char idbuf[8];

	snprintf(idbuf, sizeof(idbuf), "%u", (unsigned)id);
	for (; list; list = list->next)
		if (!list->xl_dir && list->devid == devid &&
		    ((name && !strcmp(list->guest, name)) || !strcmp(list->guest, idbuf)))
			return list;
	return NULL;
}

void gvbe_disk_free(struct gvbe_disk_cfg *list)
{
	while (list) {
		struct gvbe_disk_cfg *next = list->next;

		free(list);
		list = next;
	}
}

int gvbe_disk_check(const struct gvbe_disk_cfg *list, bool check_paths, FILE *f,
                  char *err, size_t errlen)
{
	char msg[1200];
	int errors = 0;

	for (const struct gvbe_disk_cfg *d = list; d; d = d->next) {
		const struct gvbe_disk_cfg *first = NULL;

		msg[0] = 0;
		if (d->xl_dir) {
			struct stat st;

			errno = 0;
			if (check_paths && (stat(d->path, &st) < 0 || !S_ISDIR(st.st_mode)))
				snprintf(msg, sizeof(msg), "%s: xl-disk-dir %s: %s", d->origin, d->path,
				         errno ? strerror(errno) : "not a directory");
			goto report;
		}
		for (const struct gvbe_disk_cfg *k = list; k != d; k = k->next)
			if (!k->xl_dir && k->devid == d->devid && !strcmp(k->guest, d->guest)) {
				first = k;
				break;
			}
		if (first)
			snprintf(msg, sizeof(msg), "%s: disk %s:%u is already configured at %s",
			         d->origin, d->guest, d->devid, first->origin);
		else if (check_paths && gvbe_nbd_is_uri(d->path)) {
			char why[600];

			/* connects (bounded): an unreachable server is said now */
			if (gvbe_nbd_probe(d->path, d->ro, why, sizeof(why)) < 0)
				snprintf(msg, sizeof(msg), "%s: %s", d->origin, why);
		} else if (check_paths && access(d->path, d->ro ? R_OK : R_OK | W_OK) < 0)
			snprintf(msg, sizeof(msg), "%s: %s: %s%s", d->origin, d->path, strerror(errno),
			         errno == EACCES && !d->ro ? " (add ro to serve it read-only)" : "");
report:
		if (!msg[0])
			continue;
		if (!errors++ && err)
			snprintf(err, errlen, "%s", msg);
		if (f)
			fprintf(f, "%s\n", msg);
	}
	return errors;
}
