/*
 * backend/control.c: the control socket and `gv-backend --status [--json]`.
 *
 * The daemon listens on a Unix stream socket (service.h says where). A
 * client writes one request line ("status" or "status json") and is
 * answered, and the socket closed. The clients whose line has not come yet
 * wait in a small fixed table, polled by the daemon's loop with a deadline
 * each: a hostile or stuck client cannot make the single-threaded daemon
 * wait on it, nor make it allocate. The socket is 0600: the answer names
 * guests and image paths.
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
#include "clock.h"
#include "device.h"
#include "mapcache.h"
#include "nbd.h"
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
	for (unsigned k = 0; k < GVBE_CONTROL_CLIENTS; k++) {
		if (s->clients[k].busy)
			close(s->clients[k].fd);
		s->clients[k].busy = false;
	}
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
	case GVBE_DEV_OPENING:    return "connecting";
	case GVBE_DEV_INITWAIT:   return "InitWait";
	case GVBE_DEV_CONNECTED:  return "Connected";
	case GVBE_DEV_BROKEN:     return "broken";
	case GVBE_DEV_CLOSED:     return "Closed";
	case GVBE_DEV_REFUSED:    return "refused";
	case GVBE_DEV_GONE:       return "gone";
	}
	return "?";
}

/* How a connected disk's requests reach its backing store (io: the
 * queues' counters, summed). */
static const char *io_engine(const struct gvbe_dev *d, const struct gvbe_blk_queue *io)
{
	return d->blk.nbd ? "nbd" : io->aio ? "io_uring" : "synchronous";
}

/* A device's queues are read between these (a queue thread waits): only
 * into memory (open_memstream), never while a client is written to. */
static void dev_lock(struct gvbe_dev *d)
{
	for (unsigned q = 0; q < GVBE_MAX_QUEUES; q++)
		gvbe_dev_queue_lock(d, q);
}

static void dev_unlock(struct gvbe_dev *d)
{
	for (unsigned q = 0; q < GVBE_MAX_QUEUES; q++)
		gvbe_dev_queue_unlock(d, q);
}

static const char *type_name(unsigned virtio_id)
{
	return virtio_id == VIRTIO_ID_BLOCK ? "blk" : virtio_id == VIRTIO_ID_RNG ? "rng" : "?";
}

void gvbe_status_write(struct gvbe_backend *be, const struct gvbe_service *s, FILE *f)
{
	struct gv_counters ctr, *c = &ctr;
	unsigned ndisks = 0, ndevs = 0;

	for (const struct gvbe_disk_cfg *d = be->disks; d; d = d->next)
		ndisks++;
	for (const struct gvbe_dev *d = be->devs; d; d = d->next)
		ndevs++;
	gvbe_dev_counters(be, &ctr);
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
		struct gvbe_blk_queue io;

		gvbe_dev_blk_counters(d, &io);
		dev_lock(d);

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
				        "per request%s, %u in flight, %zu kB; latency p50 %.1f us, "
				        "p99 %.1f us\n", q,
				        (unsigned long long)vq->requests, vq->kicks / n,
				        vq->interrupts / n, vq->event_idx ? " (event idx)" : "",
				        vq->inflight, gvbe_vq_memory(vq) / 1024,
				        gvbe_qstats_percentile(&vq->st, 500) / 1000.0,
				        gvbe_qstats_percentile(&vq->st, 990) / 1000.0);
			}
			if (d->virtio_id == VIRTIO_ID_BLOCK && d->blk.nbd)
				fprintf(f, "    io: nbd (libnbd, asynchronous, its own thread)%s, %llu "
				        "sectors\n", gvbe_nbd_dead(d->blk.nbd) ? ", connection lost" : "",
				        (unsigned long long)d->blk.capacity);
			else if (d->virtio_id == VIRTIO_ID_BLOCK)
				fprintf(f, "    io: %s%s, %llu O_DIRECT and %llu buffered transfers, "
				        "%llu sectors\n", io_engine(d, &io),
				        d->qt[0] ? ", a thread per queue" : "",
				        (unsigned long long)io.direct_ios,
				        (unsigned long long)io.buffered_ios,
				        (unsigned long long)d->blk.capacity);
		}
		if (d->phase == GVBE_DEV_BROKEN) {
			for (unsigned q = 0; q < GVBE_MAX_QUEUES; q++)
				if (d->vq[q].broken)
					fprintf(f, "    queue %u broken: %s\n", q, d->vq[q].why);
		}
		dev_unlock(d);
	}
}

/* ---- JSON ------------------------------------------------------------------ */

/* str as a JSON string: quotes, backslashes and control characters escaped;
 * bytes that are not valid UTF-8 (a guest's name comes from xenstore)
 * become U+FFFD, so that the output always parses. */
void gvbe_json_str(FILE *f, const char *str)
{
	const unsigned char *p = (const unsigned char *)str;

	if (!str) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	while (*p) {
		unsigned c = *p, n = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 :
		             (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 9;
		unsigned k;

		if (!n) {
			if (c == '"' || c == '\\')
				fprintf(f, "\\%c", c);
			else if (c < 0x20 || c == 0x7f)
				fprintf(f, "\\u%04x", c);
			else
				fputc((int)c, f);
			p++;
			continue;
		}
		for (k = 1; n <= 3 && k <= n; k++)
			if ((p[k] & 0xc0) != 0x80)
				break;
		/* overlong forms and surrogates are not rejected one by one:
		 * what matters is that the framing is right for the parser */
		if (n > 3 || k <= n || (c == 0xc0 || c == 0xc1) || c > 0xf4) {
			fputs("\\ufffd", f);
			p++;
			continue;
		}
		fwrite(p, 1, n + 1, f);
		p += n + 1;
	}
	fputc('"', f);
}

static void json_u64(FILE *f, const char *key, uint64_t v, bool comma)
{
	fprintf(f, "\"%s\": %llu%s", key, (unsigned long long)v, comma ? ", " : "");
}

/* latency percentiles in microseconds, 0.001 resolution */
static void json_latency(FILE *f, const struct gvbe_qstats *st)
{
	uint64_t p50 = gvbe_qstats_percentile(st, 500), p99 = gvbe_qstats_percentile(st, 990);

	fprintf(f, "\"latency_us\": {\"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f}",
	        p50 / 1000.0, p99 / 1000.0, st->lat_max_ns / 1000.0);
}

/* the counters of stats.h and the requests (completions) they add up to */
static void json_counters(FILE *f, uint64_t requests, const struct gvbe_qstats *st)
{
	json_u64(f, "requests", requests, true);
	json_u64(f, "reads", st->reads, true);
	json_u64(f, "writes", st->writes, true);
	json_u64(f, "flushes", st->flushes, true);
	json_u64(f, "other_requests", st->others, true);
	json_u64(f, "bytes_read", st->bytes_read, true);
	json_u64(f, "bytes_written", st->bytes_written, true);
	json_u64(f, "errors", st->errors, true);
	json_latency(f, st);
}

static void json_device(FILE *f, struct gvbe_backend *be, struct gvbe_dev *d,
                        const struct gvbe_blk_queue *io)
{
	bool live = d->phase == GVBE_DEV_CONNECTED;
	struct gvbe_qstats total = d->retired;
	uint64_t requests = d->retired_requests, inflight = 0;
	unsigned cache_pages = 0, nq = live ? d->fe_nq : 0;
	char feat[24];

	if (nq > GVBE_MAX_QUEUES)
		nq = GVBE_MAX_QUEUES;
	fprintf(f, "{\"guest\": ");
	gvbe_json_str(f, d->name);
	fprintf(f, ", \"domid\": %u, \"devid\": %u, \"type\": \"%s\", \"state\": \"%s\", ",
	        (unsigned)d->fe, d->devid, type_name(d->virtio_id), phase_name(d->phase));
	snprintf(feat, sizeof(feat), "0x%llx", (unsigned long long)d->driver_features);
	fprintf(f, "\"features\": ");
	gvbe_json_str(f, live ? feat : NULL);
	fprintf(f, ", \"backing\": ");
	if (d->virtio_id == VIRTIO_ID_BLOCK) {
		const struct gvbe_disk_cfg *cfg = gvbe_disk_find(be->disks, d->name, d->fe, d->devid);

		if (cfg) {
			fprintf(f, "{\"path\": ");
			gvbe_json_str(f, cfg->path);
			fprintf(f, ", \"read_only\": %s, \"allow_bypass\": %s}",
			        cfg->ro ? "true" : "false", cfg->allow_bypass ? "true" : "false");
		} else {
			fputs("null", f);
		}
		fprintf(f, ", \"io\": ");
		gvbe_json_str(f, !live ? NULL : io_engine(d, io));
		fprintf(f, ", \"queue_threads\": %s", live && d->qt[0] ? "true" : "false");
		fprintf(f, ", \"capacity_sectors\": %llu, \"config_generation\": %u, ",
		        (unsigned long long)d->blk.capacity, d->cfg_gen);
		json_u64(f, "direct_ios", io->direct_ios, true);
		json_u64(f, "buffered_ios", io->buffered_ios, true);
	} else {
		gvbe_json_str(f, d->virtio_id == VIRTIO_ID_RNG ? "getrandom" : NULL);
		fprintf(f, ", ");
	}
	fprintf(f, "\"queues\": [");
	for (unsigned q = 0; q < nq; q++) {
		const struct gvbe_vq *vq = &d->vq[q];

		fprintf(f, "%s{\"index\": %u, \"size\": %u, ", q ? ", " : "", q, vq->num);
		json_counters(f, vq->requests, &vq->st);
		fprintf(f, ", ");
		json_u64(f, "in_flight", vq->inflight, true);
		json_u64(f, "kicks", vq->kicks, true);
		json_u64(f, "interrupts", vq->interrupts, true);
		fprintf(f, "\"event_idx\": %s, ", vq->event_idx ? "true" : "false");
		json_u64(f, "memory_bytes", gvbe_vq_memory(vq), true);
		json_u64(f, "grant_copied", vq->copied_reqs, true);
		json_u64(f, "grant_copy_errors", vq->copy_errors, true);
		fprintf(f, "\"map_cache\": ");
		if (d->cache[q]) {
			struct gvbe_mapcache_stats ms;

			gvbe_mapcache_get_stats(d->cache[q], &ms);
			cache_pages += ms.pages;
			fprintf(f, "{");
			json_u64(f, "pages", ms.pages, true);
			json_u64(f, "capacity", ms.capacity, true);
			json_u64(f, "hits", ms.hits, true);
			json_u64(f, "misses", ms.misses, true);
			json_u64(f, "evictions", ms.evictions, false);
			fprintf(f, "}");
		} else {
			fputs("null", f);
		}
		fprintf(f, "}");
		gvbe_qstats_add(&total, &vq->st);
		requests += vq->requests;
		inflight += vq->inflight;
	}
	fprintf(f, "], ");
	json_u64(f, "in_flight", inflight, true);
	json_u64(f, "map_cache_pages", cache_pages, true);
	fprintf(f, "\"error\": ");
	{
		const char *why = NULL;

		if (d->phase == GVBE_DEV_BROKEN)
			for (unsigned q = 0; q < GVBE_MAX_QUEUES && !why; q++)
				if (d->vq[q].broken)
					why = d->vq[q].why;
		gvbe_json_str(f, why);
	}
	fprintf(f, ", \"total\": {");
	json_counters(f, requests, &total);
	fprintf(f, "}}");
}

void gvbe_status_write_json(struct gvbe_backend *be, const struct gvbe_service *s, FILE *f)
{
	struct gv_counters ctr, *c = &ctr;
	unsigned ndisks = 0;
	bool first = true;

	for (const struct gvbe_disk_cfg *d = be->disks; d; d = d->next)
		ndisks++;
	gvbe_dev_counters(be, &ctr);
	fprintf(f, "{\"format\": 1, \"pid\": %ld, \"platform\": ", (long)getpid());
	gvbe_json_str(f, be->p->desc);
	fprintf(f, ", \"root\": ");
	gvbe_json_str(f, be->root);
	fprintf(f, ", \"config\": ");
	gvbe_json_str(f, s->config);
	fprintf(f, ", \"disks_configured\": %u, \"reloads\": %u, \"grants\": {", ndisks, s->reloads);
	json_u64(f, "mapped_now", c->maps_active, true);
	json_u64(f, "mapped", c->maps_done, true);
	json_u64(f, "unmapped", c->unmaps_done, true);
	json_u64(f, "map_calls", c->map_calls, false);
	fprintf(f, "}, \"events\": {");
	json_u64(f, "sent", c->events_sent, true);
	json_u64(f, "received", c->events_received, false);
	fprintf(f, "},\n\"devices\": [");
	for (struct gvbe_dev *d = be->devs; d; d = d->next) {
		struct gvbe_blk_queue io;

		fprintf(f, "%s\n  ", first ? "" : ",");
		gvbe_dev_blk_counters(d, &io);
		dev_lock(d);
		json_device(f, be, d, &io);
		dev_unlock(d);
		first = false;
	}
	fprintf(f, "%s]}\n", first ? "" : "\n");
}

/* ---- the socket's clients ---------------------------------------------------- */

unsigned gvbe_control_pollfds(const struct gvbe_service *s, struct pollfd *pfd, unsigned max)
{
	unsigned n = 0;

	if (s->control_fd < 0 || !max)
		return 0;
	pfd[n++] = (struct pollfd){ s->control_fd, POLLIN, 0 };
	for (unsigned k = 0; k < GVBE_CONTROL_CLIENTS && n < max; k++)
		if (s->clients[k].busy)
			pfd[n++] = (struct pollfd){ s->clients[k].fd, POLLIN, 0 };
	return n;
}

int gvbe_control_timeout(const struct gvbe_service *s)
{
	int64_t now = gv_now_ms(), first = -1;

	for (unsigned k = 0; k < GVBE_CONTROL_CLIENTS; k++) {
		const struct gvbe_control_client *c = &s->clients[k];
		int64_t left;

		if (!c->busy)
			continue;
		left = c->deadline > now ? c->deadline - now : 0;
		if (first < 0 || left < first)
			first = left;
	}
	return (int)first;
}

/* Sends all of buf (the socket is cut off after 1 s without progress) and
 * closes fd. */
static void send_close(int fd, const char *buf, size_t len)
{
	struct timeval tv = { 1, 0 };

	/* a client that does not read gets cut off, it cannot stall us */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	for (size_t off = 0; off < len;) {
		ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	/* what the client sent past its request, already here, is read away:
	 * closing with unread data would reset the connection and could lose
	 * the answer on its way */
	for (unsigned k = 0; k < 16; k++) {
		char junk[4096];

		if (recv(fd, junk, sizeof(junk), MSG_DONTWAIT) <= 0)
			break;
	}
	close(fd);
}

/* "resize" (every disk) or "resize GUEST DEVID" (GUEST a name or domain
 * id): the image's size looked at again (gvbe_dev_resize); one line per
 * disk, "error: ..." for a refusal. */
static void resize(struct gvbe_backend *be, int fd, const char *args)
{
	char guest[64], extra[2], *buf = NULL;
	unsigned devid;
	size_t len = 0;
	FILE *mem;
	int n;

	mem = open_memstream(&buf, &len);
	if (!mem) {
		close(fd);
		return;
	}
	n = sscanf(args, " %63s %u %1s", guest, &devid, extra);
	if (n <= 0) {
		gv_info("control socket: resize of every disk");
		gvbe_dev_resize_all(be, mem);
	} else if (n != 2) {
		fprintf(mem, "error: resize takes no argument (every disk) or GUEST DEVID (a guest's "
		        "name or domain id, and its device number), not '%.64s'\n", args + 1);
	} else {
		struct gvbe_dev *d = gvbe_dev_lookup(be, guest, devid);
		char msg[800];
		int rc;

		if (!d) {
			fprintf(mem, "error: no device %u of guest %s is known to this backend\n", devid,
			        guest);
		} else {
			rc = gvbe_dev_resize(d, msg, sizeof(msg));
			if (rc > 0)
				gv_info("%s", msg);
			else if (rc < 0)
				gv_warn("resize refused: %s", msg);
			fprintf(mem, "%s%s\n", rc < 0 ? "error: " : "", msg);
		}
	}
	fclose(mem);
	send_close(fd, buf, len);
	free(buf);
}

/* Answers request line req (without its newline) on fd and closes it. */
static void answer(struct gvbe_backend *be, struct gvbe_service *s, int fd, const char *req)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *mem;

	if (!strncmp(req, "resize", 6) && (!req[6] || req[6] == ' ')) {
		resize(be, fd, req + 6);
		return;
	}
	if (strcmp(req, "") && strcmp(req, "status") && strcmp(req, "status json")) {
		char line[200];
		int n = snprintf(line, sizeof(line), "error: unknown request '%.64s' (expected: "
		                 "status, status json, resize, resize GUEST DEVID)\n", req);

		send_close(fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
		return;
	}
	mem = open_memstream(&buf, &len);
	if (!mem) {
		close(fd);
		return;
	}
	if (!strcmp(req, "status json"))
		gvbe_status_write_json(be, s, mem);
	else
		gvbe_status_write(be, s, mem);
	fclose(mem);
	send_close(fd, buf, len);
	free(buf);
}

/* Reads what client c sent; answers it once its line is complete (or the
 * client shut its side, or broke the rules). */
static void client_read(struct gvbe_backend *be, struct gvbe_service *s,
                        struct gvbe_control_client *c)
{
	ssize_t n = recv(c->fd, c->req + c->len, sizeof(c->req) - 1 - c->len, MSG_DONTWAIT);
	char *nl;

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n > 0) {
		c->len += (size_t)n;
		c->req[c->len] = 0;
		nl = memchr(c->req, '\n', c->len);
		if (!nl && memchr(c->req, 0, c->len))
			nl = c->req + strlen(c->req);           /* a NUL ends it too */
		if (!nl && c->len < sizeof(c->req) - 1)
			return;                                 /* more to come */
		if (!nl) {
			send_close(c->fd, "error: request line too long\n", 29);
			c->busy = false;
			return;
		}
		*nl = 0;
		if (nl > c->req && nl[-1] == '\r')
			nl[-1] = 0;
	} else {
		c->req[c->len] = 0;                             /* EOF (or an error): what came */
	}
	answer(be, s, c->fd, c->req);
	c->busy = false;
}

static void accept_clients(struct gvbe_service *s)
{
	int cfd;

	while ((cfd = accept4(s->control_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		struct gvbe_control_client *c = NULL;
		int fl;

		for (unsigned k = 0; k < GVBE_CONTROL_CLIENTS && !c; k++)
			if (!s->clients[k].busy)
				c = &s->clients[k];
		/* answers are sent blocking, with a send timeout */
		fl = fcntl(cfd, F_GETFL);
		if (fl >= 0)
			fcntl(cfd, F_SETFL, fl & ~O_NONBLOCK);
		if (!c) {
			static const char busy[] = "error: too many clients waiting; try again\n";

			send_close(cfd, busy, sizeof(busy) - 1);
			continue;
		}
		*c = (struct gvbe_control_client){ .busy = true, .fd = cfd,
		                                   .deadline = gv_now_ms() + GVBE_CONTROL_WAIT_MS };
	}
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		gv_warn("control socket: accept: %s", strerror(errno));
}

void gvbe_control_work(struct gvbe_backend *be, struct gvbe_service *s,
                       const struct pollfd *pfd, unsigned n)
{
	int64_t now;

	if (s->control_fd < 0)
		return;
	/* the clients polled (pfd[1..n)) first: accepting reuses their slots */
	for (unsigned i = 1; i < n; i++) {
		if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		for (unsigned k = 0; k < GVBE_CONTROL_CLIENTS; k++)
			if (s->clients[k].busy && s->clients[k].fd == pfd[i].fd)
				client_read(be, s, &s->clients[k]);
	}
	now = gv_now_ms();
	for (unsigned k = 0; k < GVBE_CONTROL_CLIENTS; k++) {
		struct gvbe_control_client *c = &s->clients[k];

		if (c->busy && c->deadline <= now) {
			/* said nothing (or not a whole line): the table, as for "status" */
			c->req[c->len] = 0;
			answer(be, s, c->fd, "");
			c->busy = false;
		}
	}
	if (n && (pfd[0].revents & POLLIN))
		accept_clients(s);
}

int gvbe_control_client(const char *path, const char *req)
{
	struct timeval tv = { 10, 0 };
	struct sockaddr_un sa;
	char buf[4096], last = '\n', pre[7] = "";
	size_t npre = 0;
	bool refused = false;
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
	/* a daemon that does not answer within 10 s is as good as none */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0 || send(fd, "\n", 1, MSG_NOSIGNAL) < 0) {
		fprintf(stderr, "gv-backend: %s: %s\n", path, strerror(errno));
		close(fd);
		return 3;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		/* an answer line starting "error: " makes the exit status 1 */
		for (ssize_t k = 0; k < n; k++) {
			if (last == '\n')
				npre = 0;
			if (npre < 6)
				pre[npre++] = buf[k];
			if (npre == 6 && !memcmp(pre, "error:", 6))
				refused = true;
			last = buf[k];
		}
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			break;
	}
	if (n < 0)
		fprintf(stderr, "gv-backend: %s: %s\n", path,
		        errno == EAGAIN ? "no answer within 10 s" : strerror(errno));
	close(fd);
	return n < 0 ? 3 : refused ? 1 : 0;
}

int gvbe_status_client(const char *path, bool json)
{
	int rc = gvbe_control_client(path, json ? "status json" : "status");

	return rc == 1 ? 0 : rc;
}
