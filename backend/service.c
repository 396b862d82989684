/*
 * backend/service.c: what gv-backend needs to be a well-behaved system
 * service (see service.h): building the disk list from --disk and --config,
 * the pidfile, the systemd notification protocol, and SIGHUP reload.
 *
 * The notification protocol is one datagram of "KEY=VALUE\n" lines to the
 * AF_UNIX socket named by $NOTIFY_SOCKET (a leading '@' means the abstract
 * namespace); that is all Type=notify needs, so no libsystemd.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "device.h"
#include "log.h"
#include "service.h"

int gvbe_service_load(const struct gvbe_service *s, struct gvbe_disk_cfg **out,
                    char *err, size_t errlen)
{
	struct gvbe_disk_cfg *list = NULL;
	int rc = 0;

	for (const struct gvbe_disk_cfg *d = s->cli; d && !rc; d = d->next) {
		rc = gvbe_disk_append(&list, d) ? 0 : -ENOMEM;
		if (rc)
			snprintf(err, errlen, "out of memory");
	}
	if (!rc && s->config)
		rc = gvbe_disk_parse_file(s->config, &list, err, errlen);
	/* two lines for one device: the second would silently never apply */
	if (!rc && gvbe_disk_check(list, false, NULL, err, errlen) > 0)
		rc = -EINVAL;
	if (rc) {
		gvbe_disk_free(list);
		list = NULL;
	}
	*out = list;
	return rc;
}

/* ---- pidfile ------------------------------------------------------------------- */

int gvbe_pidfile_write(struct gvbe_service *s, char *err, size_t errlen)
{
	char buf[32];
	int fd, n, saved;

	if (!s->pidfile)
		return 0;
	fd = open(s->pidfile, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		goto fail;
	/* the lock lives as long as we do: a second daemon cannot take it, and a
	 * pidfile left by a crash is simply taken over */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		saved = errno;
		n = (int)read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = 0;
		buf[strcspn(buf, "\n")] = 0;
		snprintf(err, errlen, "--pidfile %s: another gv-backend (pid %s) is running",
		         s->pidfile, buf[0] ? buf : "?");
		close(fd);
		return saved == EWOULDBLOCK ? -EEXIST : -saved;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || write(fd, buf, (size_t)n) != n)
		goto fail_fd;
	/* deliberately left open (and locked) until exit */
	s->pidfile_written = true;
	return 0;
fail_fd:
	saved = errno;
	close(fd);
	errno = saved;
fail:
	saved = errno;
	snprintf(err, errlen, "--pidfile %s: %s", s->pidfile, strerror(saved));
	return -saved;
}

void gvbe_pidfile_remove(struct gvbe_service *s)
{
	if (s->pidfile && s->pidfile_written)
		unlink(s->pidfile);
	s->pidfile_written = false;
}

/* ---- systemd notification -------------------------------------------------------- */

void gvbe_sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t salen;
	size_t len;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@'))
		return;
	len = strlen(path);
	if (len >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = 0;
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0)
		gv_debug("NOTIFY_SOCKET %s: %s", path, strerror(errno));
	close(fd);
}

/* ---- SIGHUP reload -------------------------------------------------------------- */

static bool disk_same(const struct gvbe_disk_cfg *a, const struct gvbe_disk_cfg *b)
{
	if (!a || !b)
		return a == b;
	return !strcmp(a->path, b->path) && a->ro == b->ro && a->allow_bypass == b->allow_bypass &&
	       a->buffered == b->buffered && a->queues == b->queues;
}

static void log_disk_changes(const struct gvbe_disk_cfg *old, const struct gvbe_disk_cfg *new)
{
	for (const struct gvbe_disk_cfg *n = new; n; n = n->next) {
		const struct gvbe_disk_cfg *o = NULL;

		if (n->xl_dir) {
			for (const struct gvbe_disk_cfg *k = old; k && !o; k = k->next)
				if (k->xl_dir && !strcmp(k->path, n->path))
					o = k;
			if (!o)
				gv_info("reload: added xl-disk-dir %s (%s)", n->path, n->origin);
			continue;
		}
		for (const struct gvbe_disk_cfg *k = old; k; k = k->next)
			if (k->devid == n->devid && !strcmp(k->guest, n->guest))
				o = k;
		if (!o)
			gv_info("reload: added disk %s:%u = %s%s (%s)", n->guest, n->devid, n->path,
			        n->ro ? ",ro" : "", n->origin);
		else if (!disk_same(o, n))
			gv_info("reload: changed disk %s:%u = %s%s%s (was %s%s%s)", n->guest,
			        n->devid, n->path, n->ro ? ",ro" : "",
			        n->allow_bypass ? ",allow-bypass" : "", o->path, o->ro ? ",ro" : "",
			        o->allow_bypass ? ",allow-bypass" : "");
	}
	for (const struct gvbe_disk_cfg *o = old; o; o = o->next) {
		bool kept = false;

		for (const struct gvbe_disk_cfg *n = new; n; n = n->next)
			kept |= o->xl_dir ? n->xl_dir && !strcmp(n->path, o->path)
			                  : !n->xl_dir && n->devid == o->devid &&
			                    !strcmp(n->guest, o->guest);
		if (!kept && o->xl_dir)
			gv_info("reload: removed xl-disk-dir %s", o->path);
		else if (!kept)
			gv_info("reload: removed disk %s:%u (was %s)", o->guest, o->devid, o->path);
	}
}

int gvbe_service_reload(struct gvbe_backend *be, struct gvbe_service *s)
{
	struct gvbe_disk_cfg *list, *old = be->disks;
	char err[512];

	gvbe_sd_notify("RELOADING=1");
	if (gvbe_service_load(s, &list, err, sizeof(err)) < 0) {
		gv_err("reload rejected, keeping the previous configuration: %s", err);
		gvbe_sd_notify("READY=1\nSTATUS=reload rejected: see the log");
		return -EINVAL;
	}
	log_disk_changes(old, list);
	be->disks = list;
	s->reloads++;

	for (struct gvbe_dev *d = be->devs, *next; d; d = next) {
		const struct gvbe_disk_cfg *o, *n;

		next = d->next;
		if (d->virtio_id != VIRTIO_ID_BLOCK)
			continue;
		if (d->kind == GVBE_KIND_XL_DISK) {
			/* its image is the domain config's; only the xl-disk-dir
			 * allow-list may have changed: re-check it unless in use */
			o = n = NULL;
		} else {
			o = gvbe_disk_find(old, d->name, d->fe, d->devid);
			n = gvbe_disk_find(list, d->name, d->fe, d->devid);
		}
		/* a refused disk is retried: the admin may have fixed its image */
		if (d->kind != GVBE_KIND_XL_DISK && disk_same(o, n) && d->phase != GVBE_DEV_REFUSED)
			continue;
		switch (d->phase) {
		case GVBE_DEV_CONNECTED:
		case GVBE_DEV_BROKEN:
			/* never pull an image from under a guest that uses it */
			gv_info("reload: %s is connected: keeps its current image until the guest "
			        "detaches", d->label);
			break;
		case GVBE_DEV_INITWAIT:
		case GVBE_DEV_OPENING:          /* its connection is abandoned */
		case GVBE_DEV_CLOSED:
		case GVBE_DEV_REFUSED:
			/* not in use: publish again with the new settings (or refuse) */
			gv_info("reload: %s: applying the new configuration", d->label);
			gvbe_blk_close(&d->blk);
			d->blk.fd = -1;
			d->phase = GVBE_DEV_NEW;
			gvbe_dev_reconcile(be, d->kind, d->fe, d->devid);
			break;
		case GVBE_DEV_NEW:
		case GVBE_DEV_GONE:
			break;          /* picked up when it is next published */
		}
	}
	gvbe_disk_free(old);
	gv_info("reload: configuration applied (%u reload%s so far)", s->reloads,
	        s->reloads > 1 ? "s" : "");
	gvbe_sd_notify("READY=1\nSTATUS=serving");
	return 0;
}
