/*
 * backend/control.c: the control socket and `gv-backend --status`.
 *
 * The daemon listens on a Unix stream socket (service.h says where). A
 * client that connects is written the status table at once and the socket
 * is closed: there is no request to parse, so a hostile or stuck client
 * cannot make the single-threaded daemon wait on it. The socket is 0600:
 * the table names guests and image paths.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "device.h"
#include "mapcache.h"
#include "log.h"
#include "platform.h"
#include "service.h"

const char *gvbe_control_default_path(const char *kind, const char *sim_dir,
                                    char *buf, size_t len)
{
	char dirbuf[256];

	if (!kind || !*kind || !strcmp(kind, "auto"))
		kind = getenv("GV_PLATFORM");
	if (!kind || !*kind || !strcmp(kind, "auto"))
		kind = access("/dev/xen/gntdev", F_OK) == 0 ? "xen" : "sim";
	if (!strcmp(kind, "xen")) {
		snprintf(buf, len, "/run/grant-virtio/backend.sock");
		return buf;
	}
	if (!sim_dir || !*sim_dir)
		sim_dir = getenv("GV_SIM_DIR");
	if (!sim_dir || !*sim_dir)
		sim_dir = gv_sim_default_dir(dirbuf, sizeof(dirbuf));
	snprintf(buf, len, "%s/gv-backend.sock", sim_dir);
	return buf;
}

static int control_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

int gvbe_control_listen(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	char dir[sizeof(sa.sun_path)], *slash;
	int fd, rc;

	rc = control_addr(path, &sa);
	if (rc < 0) {
		snprintf(err, errlen, "control socket %s: path too long", path);
		return rc;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			rc = -errno;
			snprintf(err, errlen, "control socket directory %s: %s", dir, strerror(-rc));
			return rc;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		/* in use, or left by a daemon that died: only a live one answers */
		int probe;

		if (errno != EADDRINUSE)
			goto fail_fd;
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			close(fd);
			snprintf(err, errlen, "control socket %s: another gv-backend is listening "
			         "there", path);
			return -EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
		unlink(path);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			goto fail_fd;
	}
	if (chmod(path, 0600) < 0 || listen(fd, 8) < 0)
		goto fail_fd;
	return fd;
fail_fd:
	rc = -errno;
	close(fd);
	errno = -rc;
fail:
	rc = -errno;
	snprintf(err, errlen, "control socket %s: %s", path, strerror(-rc));
	return rc;
}

void gvbe_control_close(struct gvbe_service *s)
{
	if (s->control_fd < 0)
		return;
	close(s->control_fd);
	s->control_fd = -1;
	if (s->control)
		unlink(s->control);
}

static const char *phase_name(enum gvbe_dev_phase ph)
{
	switch (ph) {
	case GVBE_DEV_NEW:        return "new";
	case GVBE_DEV_INITWAIT:   return "InitWait";
	case GVBE_DEV_CONNECTED:  return "Connected";
	case GVBE_DEV_BROKEN:     return "broken";
	case GVBE_DEV_CLOSED:     return "Closed";
	case GVBE_DEV_REFUSED:    return "refused";
	case GVBE_DEV_GONE:       return "gone";
	}
	return "?";
}

static const char *type_name(unsigned virtio_id)
{
	return virtio_id == VIRTIO_ID_BLOCK ? "blk" : virtio_id == VIRTIO_ID_RNG ? "rng" : "?";
}

void gvbe_status_write(struct gvbe_backend *be, const struct gvbe_service *s, FILE *f)
{
	const struct gv_counters *c = &be->p->ctr;
	unsigned ndisks = 0, ndevs = 0;

	for (const struct gvbe_disk_cfg *d = be->disks; d; d = d->next)
		ndisks++;
	for (const struct gvbe_dev *d = be->devs; d; d = d->next)
		ndevs++;
	fprintf(f, "gv-backend pid %ld, platform %s\n", (long)getpid(), be->p->desc);
	fprintf(f, "serving %s: %u device%s; %u disk%s configured (%s%s), %u reload%s\n",
	        be->root, ndevs, ndevs == 1 ? "" : "s", ndisks, ndisks == 1 ? "" : "s",
	        s->config ? "--config " : "", s->config ? s->config : "command line only",
	        s->reloads, s->reloads == 1 ? "" : "s");
	fprintf(f, "grants: %llu pages mapped now, %llu mapped and %llu unmapped ever "
	        "(%llu map calls); events %llu sent, %llu received\n",
	        (unsigned long long)c->maps_active, (unsigned long long)c->maps_done,
	        (unsigned long long)c->unmaps_done, (unsigned long long)c->map_calls,
	        (unsigned long long)c->events_sent, (unsigned long long)c->events_received);
	if (!ndevs)
		return;
	fprintf(f, "\n%-16s %5s %4s %4s %-10s %-18s %-7s %9s %-14s %s\n", "GUEST", "DOMID", "DEV",
	        "TYPE", "STATE", "FEATURES", "QUEUES", "REQUESTS", "MAP-CACHE", "BACKING");
	for (struct gvbe_dev *d = be->devs; d; d = d->next) {
		char feat[24] = "-", queues[16] = "-", cache[32] = "-", backing[600] = "-";
		unsigned long long reqs = 0;
		bool live = d->phase == GVBE_DEV_CONNECTED;

		if (live) {
			snprintf(feat, sizeof(feat), "0x%llx", (unsigned long long)d->driver_features);
			snprintf(queues, sizeof(queues), "%ux%u", d->fe_nq, d->vq[0].num);
			for (unsigned q = 0; q < d->fe_nq && q < GVBE_MAX_QUEUES; q++)
				reqs += d->vq[q].requests;
			if (d->cache[0]) {
				unsigned pages = 0, cap = 0;

				for (unsigned q = 0; q < d->fe_nq && q < GVBE_MAX_QUEUES; q++) {
					struct gvbe_mapcache_stats st;

					gvbe_mapcache_get_stats(d->cache[q], &st);
					pages += st.pages;
					cap += st.capacity;
				}
				snprintf(cache, sizeof(cache), "%u/%u pages", pages, cap);
			} else {
				snprintf(cache, sizeof(cache), "per-request");
			}
		}
		if (d->virtio_id == VIRTIO_ID_BLOCK && d->kind == GVBE_KIND_XL_DISK) {
			snprintf(backing, sizeof(backing), "%s (%s, xl config)", d->image,
			         d->blk.ro ? "ro" : "rw");
		} else if (d->virtio_id == VIRTIO_ID_BLOCK) {
			const struct gvbe_disk_cfg *cfg = gvbe_disk_find(be->disks, d->name, d->fe,
			                                             d->devid);

			if (cfg)
				snprintf(backing, sizeof(backing), "%s (%s%s)", cfg->path,
				         cfg->ro ? "ro" : "rw", cfg->allow_bypass ? ",allow-bypass" : "");
			else
				snprintf(backing, sizeof(backing), "(no disk configured)");
		} else if (d->virtio_id == VIRTIO_ID_RNG) {
			snprintf(backing, sizeof(backing), "getrandom");
		}
		fprintf(f, "%-16s %5u %4u %4s %-10s %-18s %-7s %9llu %-14s %s\n", d->name,
		        (unsigned)d->fe, d->devid, type_name(d->virtio_id), phase_name(d->phase),
		        feat, queues, reqs, cache, backing);
		if (live) {
			/* per queue: notifications per request (what event idx and
			 * NO_NOTIFY save), in flight, private memory (bounded: it
			 * grows with the queue depth used, to the queue size) */
			for (unsigned q = 0; q < d->fe_nq && q < GVBE_MAX_QUEUES; q++) {
				const struct gvbe_vq *vq = &d->vq[q];
				double n = vq->requests ? (double)vq->requests : 1;

				fprintf(f, "    queue %u: %llu requests, %.3f kicks and %.3f interrupts "
				        "per request%s, %u in flight, %zu kB\n", q,
				        (unsigned long long)vq->requests, vq->kicks / n,
				        vq->interrupts / n, vq->event_idx ? " (event idx)" : "",
				        vq->inflight, gvbe_vq_memory(vq) / 1024);
			}
			if (d->virtio_id == VIRTIO_ID_BLOCK)
				fprintf(f, "    io: %s, %llu O_DIRECT and %llu buffered transfers\n",
				        d->blk.aio ? "io_uring" : "synchronous",
				        (unsigned long long)d->blk.direct_ios,
				        (unsigned long long)d->blk.buffered_ios);
		}
		if (d->phase == GVBE_DEV_BROKEN) {
			for (unsigned q = 0; q < GVBE_MAX_QUEUES; q++)
				if (d->vq[q].broken)
					fprintf(f, "    queue %u broken: %s\n", q, d->vq[q].why);
		}
	}
}

void gvbe_control_serve(struct gvbe_backend *be, struct gvbe_service *s, int lfd)
{
	int cfd;

	while ((cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		struct timeval tv = { 1, 0 };
		char *buf = NULL;
		size_t len = 0;
		FILE *mem = open_memstream(&buf, &len);

		/* a client that does not read gets cut off, it cannot stall us */
		setsockopt(cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (mem) {
			gvbe_status_write(be, s, mem);
			fclose(mem);
			for (size_t off = 0; off < len;) {
				ssize_t n = send(cfd, buf + off, len - off, MSG_NOSIGNAL);

				if (n <= 0)
					break;
				off += (size_t)n;
			}
			free(buf);
		}
		close(cfd);
	}
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		gv_warn("control socket: accept: %s", strerror(errno));
}

int gvbe_status_client(const char *path)
{
	struct sockaddr_un sa;
	char buf[4096];
	ssize_t n;
	int fd;

	if (control_addr(path, &sa) < 0) {
		fprintf(stderr, "gv-backend: --control %s: path too long\n", path);
		return 3;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		fprintf(stderr, "gv-backend: no backend answers on %s: %s%s\n", path, strerror(e),
		        e == ENOENT || e == ECONNREFUSED ?
		        " (is gv-backend running? with another --control path or platform?)" :
		        e == EACCES ? " (run as root)" : "");
		if (fd >= 0)
			close(fd);
		return 3;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			break;
	close(fd);
	return n < 0 ? 3 : 0;
}
