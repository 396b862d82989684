/*
 * backend/gv-backend.c: the grant-virtio backend daemon.
 *
 * Serves every virtio-blk and virtio-rng device that a toolstack puts under
 * /local/domain/<self>/backend/virtio, for any number of guests, until
 * SIGTERM/SIGINT. See --help, docs/transport.md and backend/backend.h.
 *
 * One thread, one poll() loop over the xenstore watch fd, the event-channel
 * fd (every port of every device), a signalfd and a few eventfds. Why not a
 * thread per device: the platform handle is used by one thread at a time
 * (platform.h), devices share it and the xenstore handle, and the work per
 * request is an io_uring submission or a getrandom; a queue is served at
 * most one queue-size of requests per turn, so no guest can starve another.
 * --queue-threads on moves each disk queue's serving to a thread with its
 * own handle (qthread.h); measured no faster on 2 cores, so off by default.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <xenstore.h>
#include "aio.h"
#include "device.h"
#include "log.h"
#include "service.h"
#include "xs_util.h"

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void usage(FILE *f)
{
	fprintf(f,
	"NAME\n"
	"    gv-backend - grant-virtio backend: virtio-blk and virtio-rng over Xen grants\n"
	"\n"
	"SYNOPSIS\n"
	"    gv-backend [--disk GUEST:DEVID=PATH[,ro][,allow-bypass]]... [--config FILE]\n"
	"               [--allow-bypass] [--platform xen|sim] [--sim-dir DIR]\n"
	"               [--ready-fd N] [--verbose] [--help] [--io io_uring|sync]\n"
	"               [--foreground] [--pidfile FILE] [--control PATH|none]\n"
	"    gv-backend --check-config [--config FILE] [--disk ...]\n"
	"    gv-backend --status [--json] [--control PATH] [--platform xen|sim] [--sim-dir DIR]\n"
	"    gv-backend --resize GUEST:DEVID|all [--control PATH] [--platform xen|sim] [--sim-dir DIR]\n"
	"\n"
	"DESCRIPTION\n"
	"    Watches /local/domain/<self>/backend/virtio in xenstore and serves every\n"
	"    device of type virtio,device2 (block) or virtio,device4 (entropy) that a\n"
	"    toolstack (xl create, or gv-xl create in the simulation) puts there, for\n"
	"    every guest, including devices that appear later; and backend/virtio_disk,\n"
	"    the disks of xl's disk= syntax with specification=virtio (--xl-disk-dir).\n"
	"    Each device follows the handshake of docs/transport.md: the guest grants\n"
	"    its vring areas, and every buffer address in a descriptor must be a grant\n"
	"    reference. The backend maps only grants, never guest memory by address.\n"
	"\n"
	"    A device is torn down (every grant unmapped, backend state Closed) when the\n"
	"    frontend closes, when the guest dies or its frontend process goes away\n"
	"    (liveness page), when online becomes 0 or the node is removed. A driver that\n"
	"    breaks the ring gets error, device-status=64 and state Closing.\n"
	"\n"
	"OPTIONS\n"
	"    --disk GUEST:DEVID=PATH[,OPTION]...\n"
	"        Serve the virtio-blk device DEVID of guest GUEST (a domain name or id)\n"
	"        from the raw image or block device PATH. ro: read-only (VIRTIO_BLK_F_RO;\n"
	"        writes fail with IOERR). allow-bypass: see --allow-bypass, for this\n"
	"        device only. direct (default): O_DIRECT for every aligned read and write\n"
	"        (the guest caches; dom0 does not cache again); buffered: never O_DIRECT.\n"
	"        queues=N: offer up to N virtqueues (VIRTIO_BLK_F_MQ when N > 1; 1..8,\n"
	"        default 2). Repeatable.\n"
	"    --xl-disk-dir DIR\n"
	"        Serve disks that a guest's xl config names (backend/virtio_disk, from\n"
	"        disk = [\"...,specification=virtio,backendtype=standalone,grant_usage=1,\n"
	"        target=PATH\"]) when PATH resolves into DIR. Repeatable; also\n"
	"        xl-disk-dir DIR in --config. Without any, such disks are refused.\n"
	"    --grant-copy-max BYTES\n"
	"        A request of a driver without a persistent pool (grant strategy) with\n"
	"        at most BYTES of data is served by grant copy (GNTTABOP_copy: no\n"
	"        mapping), larger ones by map and unmap. 0: always map. Default and\n"
	"        most 131072 (measured: docs/benchmarks.md).\n"
	"    --poll-us N\n"
	"        While I/O is in flight or a request came within the last N microseconds,\n"
	"        look at the rings for up to N us before sleeping (0..1000, default 0:\n"
	"        never; costs CPU, saves wake-ups).\n"
	"    --queue-threads on|off\n"
	"        on: each queue of a disk (not an NBD disk) is served by a thread of its\n"
	"        own, with its own event channel handle and io_uring; the daemon's loop\n"
	"        keeps xenstore, the control socket and every teardown. off (default):\n"
	"        the loop serves every queue (measured: docs/benchmarks.md).\n"
	"    --io io_uring|sync\n"
	"        How block I/O reaches the images: io_uring (default; every request of\n"
	"        every queue in flight at once, one io_uring_enter per batch) or sync\n"
	"        (pread/pwrite in the loop, one request at a time). Without io_uring in\n"
	"        the kernel, sync is used and the log says so.\n"
	"    --config FILE\n"
	"        Read disks from FILE, one per line:\n"
	"            disk GUEST:DEVID PATH [ro] [allow-bypass] [direct|buffered] [queues=N]\n"
	"            xl-disk-dir DIR\n"
	"        Blank lines and text after # are ignored. Errors name FILE:LINE.\n"
	"        Re-read on SIGHUP (--disk entries are kept). The packaged service\n"
	"        uses /etc/grant-virtio/backend.conf.\n"
	"    --check-config\n"
	"        Parse --config and --disk, check that no device is configured twice\n"
	"        and that every image can be opened as configured; print each error\n"
	"        as FILE:LINE: what, and exit 0 (valid) or 1.\n"
	"    --status\n"
	"        Ask the running daemon (through its control socket) for its table of\n"
	"        guests and devices: state, negotiated features, queues, requests,\n"
	"        map-cache use, backing image, per-queue latency; and its grant\n"
	"        counters. Exit 3 if no daemon answers.\n"
	"    --json\n"
	"        With --status: the same as one JSON object for monitors: per device\n"
	"        and per queue, requests by type, bytes read and written, errors, in\n"
	"        flight, map-cache pages, latency p50/p99/max (docs/admin.md lists\n"
	"        every field).\n"
	"    --resize GUEST:DEVID|all\n"
	"        Online resize, after the image grew (truncate -s, fallocate, lvextend):\n"
	"        ask the running daemon to look at the size of disk DEVID of GUEST (a\n"
	"        name or domain id), or of every disk, again. A larger image is\n"
	"        published to the guest at once (config/capacity, config-generation;\n"
	"        Linux's virtio_blk resizes /dev/vda). Refused, nothing changed: an\n"
	"        image that shrank, a read-only disk, an NBD disk (its server reports\n"
	"        a size only when connecting). One line per disk; exit 1 if refused.\n"
	"    --control PATH|none\n"
	"        The control socket (default /run/grant-virtio/backend.sock on Xen,\n"
	"        SIMDIR/gv-backend.sock on the simulated Xen); none: no socket.\n"
	"    --pidfile FILE\n"
	"        Write the daemon's pid to FILE (locked while it runs; removed at exit).\n"
	"    --foreground\n"
	"        Accepted for service managers: gv-backend never forks into the\n"
	"        background. Under systemd (Type=notify) it reports READY=1 once serving.\n"
	"    --allow-bypass\n"
	"        Do not refuse a driver that did not accept VIRTIO_F_ACCESS_PLATFORM; its\n"
	"        first descriptor holding a guest-physical address then breaks the device\n"
	"        with an explanation (a demonstration of why grants are needed).\n"
	"    --platform xen|sim, --sim-dir DIR\n"
	"        Which hypervisor interface to use (default: $GV_PLATFORM, else xen when\n"
	"        /dev/xen/gntdev exists, else sim; DIR default $GV_SIM_DIR).\n"
	"    --ready-fd N\n"
	"        Write one byte to file descriptor N and close it once serving.\n"
	"    --verbose\n"
	"        Log every state change.\n"
	"\n"
#ifdef GVBE_BENCH
	"BENCHMARK OPTIONS (gv-backend-bench only; the installed gv-backend has none)\n"
	"    --bench-direct\n"
	"        Refused on real Xen: for drivers with a persistent pool, map each pool\n"
	"        page once and keep it, so requests cost no grant operation at all (the\n"
	"        upper bound of make bench; gives up isolation).\n"
	"    --map-batch 1\n"
	"        Map a request's pages one per map call instead of in one batch, to\n"
	"        measure what batching buys.\n"
	"\n"
#endif
	"SIGNALS\n"
	"    SIGTERM: hand the connected devices over to the next gv-backend (a restart\n"
	"    or an upgrade): no new request is taken, those in flight finish (at most\n"
	"    5 s), every grant is unmapped but the devices stay Connected; the guests\n"
	"    wait (their restart timeout, 30 s by default) for a new instance to take\n"
	"    them over. No device state is written. Exit 0.\n"
	"    SIGINT: close every device properly (unmap all grants, backend state\n"
	"    Closed; the guests' requests fail) and exit 0.\n"
	"    SIGHUP: re-read --config; a bad file is rejected (FILE:LINE in the log)\n"
	"    and the running configuration kept. Devices not connected take the new\n"
	"    settings at once; connected ones keep their image until they detach.\n"
	"    Then every disk's size is looked at again, as --resize all does.\n"
	"\n"
	"EXIT STATUS\n"
	"    0 clean stop, 1 usage or configuration error, 2 platform or xenstore error,\n"
	"    3 --status or --resize found no daemon; --resize: 1 refused.\n");
}

/* SIGTERM: how long the I/O in flight may take to finish before the daemon
 * exits anyway (well within systemd's TimeoutStopSec of the packaged unit) */
#define HANDOVER_DRAIN_MS 5000

/* A watch fired: path under root names a device, or something bigger. */
static void on_watch(struct gvbe_backend *be, const char *path, const char *token)
{
	enum gvbe_dev_kind kind;
	unsigned devid;
	domid_t fe;
	int rc;

	if (!strcmp(path, "@releaseDomain")) {
		be->release_pending = true;
		return;
	}
	/* a frontend state watch: the token is the device's backend dir */
	rc = gvbe_dev_parse_path(be, path, &kind, &fe, &devid);
	if (rc < 0)
		rc = gvbe_dev_parse_path(be, token, &kind, &fe, &devid);
	if (rc == 1)
		gvbe_dev_note_watch(be, kind, fe, devid);
	else if (rc == 0)
		be->scan_pending = true;
}

/* Watch events read per loop pass, and device reconciles (each a few
 * xenstore round trips) done per pass, before the rings are served again.
 * Reading an event costs a microsecond (libxenstore's thread already
 * queued it) and only sets a flag; the events a guest can cause (its
 * frontend's state key) coalesce into one reconcile of its device, at most
 * one per GVBE_WATCH_INTERVAL_MS. So whatever a guest does in xenstore, a
 * ring waits at most one bounded pass, and the events cannot pile up in
 * libxenstore's queue faster than they are read (issue 13, defect 2). */
#define WATCH_EVENTS_PER_PASS   4096
#define WATCH_RECONCILES_PER_PASS 8

/* 0, or negative errno when the xenstore connection is lost. */
static int drain_watches(struct gvbe_backend *be)
{
	char **w;

	for (unsigned n = 0; n < WATCH_EVENTS_PER_PASS; n++) {
		w = xs_check_watch(be->xs);
		if (!w)
			return errno == EAGAIN ? 0 : -errno;
		on_watch(be, w[XS_WATCH_PATH], w[XS_WATCH_TOKEN]);
		free(w);
	}
	return 0;       /* more may wait: the fd stays readable */
}

static void drain_events(struct gvbe_backend *be)
{
	evtchn_port_t port;

	while (gv_evtchn_pending(be->p, &port) == 1) {
		gvbe_dev_event(be, port);
		/* delivered ports stay masked until unmasked: after serving, so a
		 * kick during the pass re-arms us */
		gv_evtchn_unmask(be->p, port);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "disk", required_argument, NULL, 'd' },
		{ "xl-disk-dir", required_argument, NULL, 'X' },
		{ "config", required_argument, NULL, 'c' },
		{ "allow-bypass", no_argument, NULL, 'b' },
		{ "platform", required_argument, NULL, 'p' },
		{ "sim-dir", required_argument, NULL, 's' },
		{ "ready-fd", required_argument, NULL, 'r' },
		{ "verbose", no_argument, NULL, 'v' },
#ifdef GVBE_BENCH
		{ "bench-direct", no_argument, NULL, 'D' },
		{ "map-batch", required_argument, NULL, 'M' },
#endif
		{ "help", no_argument, NULL, 'h' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "status", no_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'J' },
		{ "resize", required_argument, NULL, 'R' },
		{ "control", required_argument, NULL, 'K' },
		{ "pidfile", required_argument, NULL, 'P' },
		{ "foreground", no_argument, NULL, 'F' },
		{ "io", required_argument, NULL, 'I' },
		{ "poll-us", required_argument, NULL, 'W' },
		{ "queue-threads", required_argument, NULL, 'T' },
		{ "grant-copy-max", required_argument, NULL, 'G' },
		{ 0 }
	};
	struct gv_platform_opts popts = { GV_PLATFORM_AUTO, NULL, -1 };
	struct gvbe_backend be = { .aio_efd = -1, .open_efd = -1, .qt_efd = -1,
	                            .grant_copy_max = GVBE_COPY_MAX_DEFAULT };
	struct gvbe_service svc = { .control_fd = -1 };
	struct gvbe_disk_cfg d;
	char err[512], ctlbuf[300];
	const char *kind = NULL;
	bool check_config = false, want_status = false, want_json = false, want_aio = true;
	const char *resize = NULL;
	int poll_us = 0;
	double last_work = 0;
	sigset_t sigs;
	int ready_fd = -1, sfd, efd, xfd, rc, c, status = 0;
	bool stop = false, handover = false;

	gv_log_set_program("gv-backend");
	while ((c = getopt_long(argc, argv, "d:c:bvh", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (gvbe_disk_parse_opt(optarg, &d, err, sizeof(err)) < 0) {
				fprintf(stderr, "gv-backend: %s\n", err);
				return 1;
			}
			if (!gvbe_disk_append(&svc.cli, &d))
				return 1;
			break;
		case 'X':
			if (gvbe_xl_dir_parse(optarg, &d, err, sizeof(err)) < 0) {
				fprintf(stderr, "gv-backend: %s\n", err);
				return 1;
			}
			if (!gvbe_disk_append(&svc.cli, &d))
				return 1;
			break;
		case 'c':
			svc.config = optarg;
			break;
		case 'C':
			check_config = true;
			break;
		case 'S':
			want_status = true;
			break;
		case 'J':
			want_json = true;
			break;
		case 'R':
			resize = optarg;
			break;
		case 'K':
			svc.control = optarg;
			break;
		case 'P':
			svc.pidfile = optarg;
			break;
		case 'F':
			break;
		case 'W': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || v < 0 || v > 1000) {
				fprintf(stderr, "gv-backend: --poll-us %s: expected 0..1000\n", optarg);
				return 1;
			}
			poll_us = (int)v;
			break;
		}
		case 'T':
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "gv-backend: --queue-threads %s: expected on or off\n",
				        optarg);
				return 1;
			}
			be.queue_threads = !strcmp(optarg, "on");
			break;
		case 'I':
			if (!strcmp(optarg, "sync"))
				want_aio = false;
			else if (!strcmp(optarg, "io_uring"))
				want_aio = true;
			else {
				fprintf(stderr, "gv-backend: --io %s: expected io_uring or sync\n", optarg);
				return 1;
			}
			break;
		case 'b':
			be.allow_bypass = true;
			break;
		case 'p':
			kind = optarg;
			if (!strcmp(optarg, "xen"))
				popts.kind = GV_PLATFORM_XEN;
			else if (!strcmp(optarg, "sim"))
				popts.kind = GV_PLATFORM_SIM;
			else {
				fprintf(stderr, "gv-backend: --platform %s: expected xen or sim\n", optarg);
				return 1;
			}
			break;
		case 's':
			popts.sim_dir = optarg;
			break;
		case 'r': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || v < 0 || v > 65535) {
				fprintf(stderr, "gv-backend: --ready-fd %s: expected a descriptor\n",
				        optarg);
				return 1;
			}
			ready_fd = (int)v;
			break;
		}
		case 'v':
			gv_log_threshold = GV_LOG_DEBUG;
			break;
		case 'G': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (end == optarg || *end || v > GVBE_COPY_MAX_LIMIT) {
				fprintf(stderr, "gv-backend: --grant-copy-max %s: expected 0..%u bytes\n",
				        optarg, GVBE_COPY_MAX_LIMIT);
				return 1;
			}
			be.grant_copy_max = (uint32_t)v;
			break;
		}
#ifdef GVBE_BENCH
		case 'D':
			be.bench_direct = true;
			break;
		case 'M':
			if (strcmp(optarg, "1") && strcmp(optarg, "0")) {
				fprintf(stderr, "gv-backend: --map-batch %s: expected 1 (unbatched) "
				        "or 0 (batched)\n", optarg);
				return 1;
			}
			be.map_batch = (unsigned)atoi(optarg);
			break;
#endif
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "gv-backend: unexpected argument %s (see --help)\n", argv[optind]);
		return 1;
	}
	if (!svc.control)
		svc.control = gvbe_control_default_path(kind, popts.sim_dir, ctlbuf, sizeof(ctlbuf));
	else if (!strcmp(svc.control, "none"))
		svc.control = NULL;
	if (want_json && !want_status) {
		fprintf(stderr, "gv-backend: --json goes with --status\n");
		return 1;
	}
	if (resize) {
		char req[64], *colon = strrchr(resize, ':');
		char *end;
		unsigned long devid = colon ? strtoul(colon + 1, &end, 10) : 0;

		if (!svc.control) {
			fprintf(stderr, "gv-backend: --resize needs a control socket\n");
			return 1;
		}
		if (!strcmp(resize, "all")) {
			snprintf(req, sizeof(req), "resize");
		} else if (!colon || colon == resize || !colon[1] || *end || devid > 65535 ||
		           colon - resize > 40 || strpbrk(resize, " \t\n")) {
			fprintf(stderr, "gv-backend: --resize %s: expected GUEST:DEVID (a guest's name "
			        "or domain id, and its device number) or all\n", resize);
			return 1;
		} else {
			snprintf(req, sizeof(req), "resize %.*s %lu", (int)(colon - resize), resize, devid);
		}
		return gvbe_control_client(svc.control, req);
	}
	if (want_status) {
		if (!svc.control) {
			fprintf(stderr, "gv-backend: --status needs a control socket\n");
			return 1;
		}
		return gvbe_status_client(svc.control, want_json);
	}
	if (!check_config && gvbe_service_load(&svc, &be.disks, err, sizeof(err)) < 0) {
		fprintf(stderr, "gv-backend: %s\n", err);
		return 1;
	}
	if (check_config) {
		/* every problem, not just the first: the admin fixes them in one go */
		struct gvbe_disk_cfg *all = NULL;
		unsigned n = 0;
		int errors;

		for (struct gvbe_disk_cfg *k = svc.cli; k; k = k->next)
			gvbe_disk_append(&all, k);
		if (svc.config && gvbe_disk_parse_file(svc.config, &all, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			gvbe_disk_free(all);
			return 1;
		}
		errors = gvbe_disk_check(all, true, stderr, NULL, 0);
		for (struct gvbe_disk_cfg *k = all; k; k = k->next) {
			if (k->xl_dir) {
				printf("xl-disk-dir %s (%s)\n", k->path, k->origin);
				continue;
			}
			n++;
			printf("disk %s:%u = %s%s%s (%s)\n", k->guest, k->devid, k->path,
			       k->ro ? ",ro" : "", k->allow_bypass ? ",allow-bypass" : "", k->origin);
		}
		if (errors)
			fprintf(stderr, "gv-backend: %s: %d error%s\n",
			        svc.config ? svc.config : "--disk", errors, errors > 1 ? "s" : "");
		else
			printf("configuration OK: %u disk%s\n", n, n == 1 ? "" : "s");
		gvbe_disk_free(all);
		gvbe_disk_free(be.disks);
		gvbe_disk_free(svc.cli);
		return errors ? 1 : 0;
	}

	rc = gv_platform_open(&popts, &be.p, err, sizeof(err));
	if (rc < 0) {
		gv_err("%s", err);
		return 2;
	}
	gv_info("platform: %s", be.p->desc);
#ifdef GVBE_BENCH
	if (be.bench_direct && strcmp(be.p->ops->name, "sim")) {
		/* it keeps guest pages mapped without bound: never on a real host */
		gv_err("--bench-direct is for benchmarks on the simulated Xen only");
		gv_platform_close(be.p);
		return 1;
	}
	if (be.bench_direct)
		gv_warn("--bench-direct: benchmark mode, pool pages stay mapped (no isolation)");
	if (be.map_batch == 1)
		gv_warn("--map-batch 1: benchmark mode, one map call per page");
#endif
	for (struct gvbe_disk_cfg *k = be.disks; k; k = k->next)
		if (!k->xl_dir)
			gv_debug("disk %s:%u = %s%s%s (%s)", k->guest, k->devid, k->path,
		         k->ro ? ",ro" : "", k->allow_bypass ? ",allow-bypass" : "", k->origin);

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	be.xs = gv_xs_open(be.p);
	if (sfd < 0 || !be.xs) {
		gv_err("cannot open %s: %s", sfd < 0 ? "a signalfd" : "xenstore", strerror(errno));
		status = 2;
		goto out_platform;
	}
	snprintf(be.root, sizeof(be.root), "/local/domain/%u/backend/virtio",
	         (unsigned)be.p->domid);
	snprintf(be.disk_root, sizeof(be.disk_root), "/local/domain/%u/backend/virtio_disk",
	         (unsigned)be.p->domid);
	if (!xs_watch(be.xs, be.root, "root") || !xs_watch(be.xs, be.disk_root, "disk-root") ||
	    !xs_watch(be.xs, "@releaseDomain", "release")) {
		gv_err("cannot watch %s: %s", be.root, strerror(errno));
		status = 2;
		goto out_xs;
	}
	if (want_aio) {
		struct gvbe_aio *probe;

		/* one eventfd for every device's ring; probe io_uring once */
		be.aio_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (be.aio_efd < 0 || gvbe_aio_create(4, be.aio_efd, &probe, err, sizeof(err)) < 0) {
			gv_warn("io_uring unavailable (%s): block I/O is synchronous",
			        be.aio_efd < 0 ? strerror(errno) : err);
			if (be.aio_efd >= 0)
				close(be.aio_efd);
			be.aio_efd = -1;
		} else {
			gvbe_aio_destroy(probe, 0);
		}
	}
	gv_info("block I/O: %s", be.aio_efd >= 0 ? "io_uring" : "synchronous");
	be.open_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	be.qt_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	be.popts = popts;       /* a queue thread's handle: the same platform, decided */
	be.popts.kind = strcmp(be.p->ops->name, "sim") ? GV_PLATFORM_XEN : GV_PLATFORM_SIM;
	be.poll_us = (unsigned)poll_us;
	if (be.queue_threads)
		gv_info("a thread per queue (--queue-threads on)");
	if (be.open_efd < 0 || be.qt_efd < 0) {
		gv_err("cannot open an eventfd: %s", strerror(errno));
		status = 2;
		goto out_xs;
	}
	xfd = xs_fileno(be.xs);
	efd = gv_evtchn_fd(be.p);
	if (xfd < 0 || efd < 0) {
		gv_err("no pollable xenstore or event-channel descriptor");
		status = 2;
		goto out_xs;
	}
	if (gvbe_pidfile_write(&svc, err, sizeof(err)) < 0) {
		gv_err("%s", err);
		status = 1;
		goto out_xs;
	}
	if (svc.control) {
		svc.control_fd = gvbe_control_listen(svc.control, err, sizeof(err));
		if (svc.control_fd < 0)
			gv_warn("%s; --status will not reach this daemon", err);
	}
	gvbe_dev_scan(&be);
	gv_info("serving %s and %s%s%s", be.root, be.disk_root,
	        svc.control_fd >= 0 ? ", control socket " : "", svc.control_fd >= 0 ? svc.control : "");
	gvbe_sd_notify("READY=1\nSTATUS=serving");
	if (ready_fd >= 0) {
		if (write(ready_fd, "r", 1) != 1)
			gv_warn("--ready-fd %d: %s", ready_fd, strerror(errno));
		close(ready_fd);
	}

	while (!stop) {
		/* then the control socket and its clients (gvbe_control_pollfds) */
		struct pollfd pfd[6 + 1 + GVBE_CONTROL_CLIENTS] = {
			{ xfd, POLLIN, 0 }, { efd, POLLIN, 0 }, { sfd, POLLIN, 0 },
			{ be.aio_efd, POLLIN, 0 }, { be.open_efd, POLLIN, 0 }, { be.qt_efd, POLLIN, 0 },
		};
		unsigned nctl = gvbe_control_pollfds(&svc, pfd + 6, 1 + GVBE_CONTROL_CLIENTS);
		bool more = gvbe_dev_serve_pending(&be);
		int watch_wait = gvbe_dev_watch_work(&be, WATCH_RECONCILES_PER_PASS);

		more |= watch_wait == 0;
		/* --poll-us: while I/O is in flight or work came within the last
		 * poll interval, look at the rings for up to poll_us before
		 * sleeping, so a completion or a request costs no wake-up */
		if (poll_us && !more && (gvbe_dev_busy(&be) || now_us() - last_work < poll_us)) {
			double end = now_us() + poll_us;

			while (!more && now_us() < end)
				more = gvbe_dev_poll(&be);
			if (more)
				last_work = now_us();
		}
		if (!more) {
			int ctl_wait = gvbe_control_timeout(&svc);

			if (ctl_wait >= 0 && (watch_wait < 0 || ctl_wait < watch_wait))
				watch_wait = ctl_wait;
		}
		rc = poll(pfd, 6 + nctl, more ? 0 : watch_wait);
		if (rc < 0 && errno != EINTR) {
			gv_err("poll: %s", strerror(errno));
			status = 2;
			break;
		}
		if (pfd[2].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					gv_info("SIGHUP: reloading the configuration");
					gvbe_service_reload(&be, &svc);
					/* and an image that grew is published (online resize) */
					gvbe_dev_resize_all(&be, NULL);
				} else if (si.ssi_signo == SIGTERM) {
					gv_info("SIGTERM: handing the connected devices over to the next "
					        "gv-backend");
					gvbe_sd_notify("STOPPING=1");
					stop = handover = true;
				} else {
					gv_info("signal %u: closing every device", si.ssi_signo);
					gvbe_sd_notify("STOPPING=1");
					stop = true;
				}
			}
		}
		gvbe_control_work(&be, &svc, pfd + 6, nctl);
		if (pfd[5].revents & POLLIN) {
			uint64_t n;

			/* a queue thread found its ring broken */
			if (read(be.qt_efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
				gv_warn("eventfd: %s", strerror(errno));
			gvbe_dev_queue_work(&be);
		}
		if (pfd[4].revents & POLLIN) {
			uint64_t n;

			/* an NBD disk's connection was made (or failed) */
			if (read(be.open_efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
				gv_warn("eventfd: %s", strerror(errno));
			gvbe_dev_open_done(&be);
		}
		if (pfd[1].revents & POLLIN || pfd[3].revents & POLLIN)
			last_work = now_us();
		if (pfd[3].revents & POLLIN) {
			uint64_t n;

			/* completions first: they free slots and are what guests wait for */
			if (read(be.aio_efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
				gv_warn("eventfd: %s", strerror(errno));
			gvbe_dev_reap(&be);
		}
		if (pfd[1].revents & POLLIN)
			drain_events(&be);
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			rc = drain_watches(&be);
			if (rc < 0) {
				gv_err("xenstore connection lost: %s", strerror(-rc));
				status = 2;
				break;
			}
		}
	}
	if (handover) {
		unsigned n = gvbe_dev_handover_all(&be, HANDOVER_DRAIN_MS);

		gv_info("%u connected device%s handed over; exiting", n, n == 1 ? "" : "s");
	} else {
		gvbe_dev_shutdown_all(&be);
		if (!status)
			gv_info("every device closed; exiting");
	}
	gvbe_control_close(&svc);
	gvbe_pidfile_remove(&svc);
out_xs:
	xs_close(be.xs);
out_platform:
	if (sfd >= 0)
		close(sfd);
	if (be.aio_efd >= 0)
		close(be.aio_efd);
	if (be.open_efd >= 0)
		close(be.open_efd);
	if (be.qt_efd >= 0)
		close(be.qt_efd);
	gv_platform_close(be.p);
	gvbe_disk_free(be.disks);
	gvbe_disk_free(svc.cli);
	return status;
}
