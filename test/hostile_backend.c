/*
 * test/hostile_backend.c: the fake backend of hostile_backend.h: an honest
 * dom0 half of docs/transport.md over the platform API, run in a forked
 * child, bent at completion time by one switch per misbehaviour.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "sim_harness.h"
#include <time.h>
#include <unistd.h>
#include <xenstore.h>
#include "hostile_backend.h"
#include "dma_addr.h"
#include "xs_keys.h"
#include "xs_util.h"

#define HB_MAX_MAPS 64

struct hb_map {
	void *addr;
	unsigned count;
	grant_ref_t ref;            /* first ref */
};

enum hb_phase { PH_INITWAIT, PH_CONNECTED, PH_CLOSED };

struct hb {
	struct gv_platform *p;
	struct xs_handle *xs;
	domid_t dom;
	enum hb_mode mode;
	int report;
	char fe[96], be[96];
	enum hb_phase phase;
	unsigned sessions;          /* connections so far, this one included */
	unsigned qsz;
	evtchn_port_t dport, qport; /* our bound ends */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	volatile uint8_t *live;
	struct hb_map rings[4];     /* desc, avail, used, liveness */
	struct hb_map held[HB_MAX_MAPS];    /* data mappings kept across requests */
	unsigned nheld;
	uint16_t last_avail, used_idx;
	bool lied;                  /* the one misbehaviour was done */
	struct hb_map leak;         /* HB_KEEP_GRANT: never unmapped */
	unsigned reused;            /* leaked ref seen again, or canary in a fresh page */
	uint8_t disk[HB_DISK_BYTES];
};

static void say(struct hb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct hb *b, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(b->report, line, (size_t)n) != n)
		_exit(3);   /* the test is gone */
}

static int publish(struct hb *b)
{
	/* EVENT_IDX offered: the library's event-index path runs against every
	 * misbehaviour here (the real backend, without it, covers the flags) */
	uint64_t feat = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_ACCESS_PLATFORM |
	                1ULL << VIRTIO_BLK_F_FLUSH | 1ULL << VIRTIO_RING_F_EVENT_IDX;

	gv_xs_rm(b->xs, XBT_NULL, b->be, GV_XS_ERROR);
	if (b->mode == HB_FLAP)
		gv_xs_write_str(b->xs, XBT_NULL, b->be, GV_XS_FEATURE_INFLIGHT, "1");
	else
		gv_xs_rm(b->xs, XBT_NULL, b->be, GV_XS_FEATURE_INFLIGHT);
	if (gv_xs_printf(b->xs, XBT_NULL, b->be, GV_XS_FEATURES, "0x%llx",
	                 (unsigned long long)feat) ||
	    gv_xs_write_str(b->xs, XBT_NULL, b->be, GV_XS_NUM_QUEUES, "1") ||
	    gv_xs_printf(b->xs, XBT_NULL, b->be, GV_XS_MAX_QUEUE_SIZE, "%u", HB_QMAX) ||
	    gv_xs_printf(b->xs, XBT_NULL, b->be, GV_XS_CFG_CAPACITY, "%u", HB_DISK_BYTES / 512) ||
	    gv_xs_write_str(b->xs, XBT_NULL, b->be, GV_XS_DEVICE_STATUS, "0") ||
	    gv_xs_write_str(b->xs, XBT_NULL, b->be, GV_XS_STATE, "2"))
		return -1;
	b->phase = PH_INITWAIT;
	say(b, "ready");
	return 0;
}

static int map_area(struct hb *b, const char *key, unsigned flags, const struct gv_notify *n,
                    struct hb_map *m)
{
	grant_ref_t refs[8];
	unsigned cnt;
	int rc;

	rc = gv_xs_read_refs(b->xs, XBT_NULL, b->fe, key, refs, 8, &cnt);
	if (rc < 0)
		return rc;
	rc = gv_map(b->p, b->dom, cnt, refs, flags, n, &m->addr);
	if (rc < 0)
		return rc;
	m->count = cnt;
	m->ref = refs[0];
	return 0;
}

static int connect_fe(struct hb *b)
{
	uint64_t v, rdport, rqport;
	struct gv_notify ln;
	char key[64];

	if (gv_xs_read_u64(b->xs, XBT_NULL, b->fe, GV_XS_EVENT_CHANNEL, UINT32_MAX, &rdport) ||
	    gv_xs_read_u64(b->xs, XBT_NULL, b->fe, "queue-0/event-channel", UINT32_MAX, &rqport) ||
	    gv_xs_read_u64(b->xs, XBT_NULL, b->fe, "queue-0/size", HB_QMAX, &v))
		return -1;
	b->qsz = (unsigned)v;
	if (gv_evtchn_bind(b->p, b->dom, (evtchn_port_t)rdport, &b->dport) < 0 ||
	    gv_evtchn_bind(b->p, b->dom, (evtchn_port_t)rqport, &b->qport) < 0)
		return -1;
	/* our liveness byte is 1 while we map the page; the platform clears it */
	ln.offset = 1;
	ln.port = b->dport;
	if (map_area(b, GV_XS_LIVENESS_REF, GV_MAP_WRITE, &ln, &b->rings[3]) < 0)
		return -1;
	snprintf(key, sizeof(key), GV_XS_QUEUE_DESC_FMT, 0u);
	if (map_area(b, key, 0, NULL, &b->rings[0]) < 0)
		return -1;
	snprintf(key, sizeof(key), GV_XS_QUEUE_AVAIL_FMT, 0u);
	if (map_area(b, key, 0, NULL, &b->rings[1]) < 0)
		return -1;
	snprintf(key, sizeof(key), GV_XS_QUEUE_USED_FMT, 0u);
	if (map_area(b, key, GV_MAP_WRITE, NULL, &b->rings[2]) < 0)
		return -1;
	b->desc = b->rings[0].addr;
	b->avail = b->rings[1].addr;
	b->used = b->rings[2].addr;
	b->live = b->rings[3].addr;
	/* HB_DIE_UNSEEN: the guest never reads this byte as 1, as when the
	 * backend dies between writing Connected and the guest's first look */
	b->live[1] = b->mode == HB_DIE_UNSEEN ? 0 : 1;
	b->last_avail = 0;
	b->used_idx = 0;
	b->sessions++;
	b->phase = PH_CONNECTED;
	if (gv_xs_write_str(b->xs, XBT_NULL, b->be, GV_XS_STATE, "4"))
		return -1;
	say(b, "connected %u", b->sessions);
	return 0;
}

static void unmap_one(struct hb *b, struct hb_map *m)
{
	if (m->addr)
		gv_unmap(b->p, m->addr, m->count);
	m->addr = NULL;
}

/* Unmaps every grant of the session (the leak kept on purpose excepted). */
static void disconnect(struct hb *b)
{
	for (unsigned i = 0; i < b->nheld; i++)
		unmap_one(b, &b->held[i]);
	b->nheld = 0;
	for (unsigned i = 0; i < 4; i++)
		unmap_one(b, &b->rings[i]);
	b->desc = NULL;
	b->avail = NULL;
	b->used = NULL;
	b->live = NULL;
	gv_evtchn_unbind(b->p, b->dport);
	gv_evtchn_unbind(b->p, b->qport);
}

/* Distinct pages we map now (rings and held data), for the stuck case. */
static unsigned pages_mapped(struct hb *b)
{
	grant_ref_t seen[HB_MAX_MAPS * 4];
	unsigned n = 0;
	struct hb_map *all[4 + HB_MAX_MAPS];
	unsigned na = 0;

	for (unsigned i = 0; i < 4; i++)
		all[na++] = &b->rings[i];
	for (unsigned i = 0; i < b->nheld; i++)
		all[na++] = &b->held[i];
	for (unsigned i = 0; i < na; i++) {
		for (unsigned k = 0; all[i]->addr && k < all[i]->count; k++) {
			grant_ref_t r = all[i]->ref + k;
			unsigned j;

			for (j = 0; j < n && seen[j] != r; j++)
				;
			if (j == n && n < sizeof(seen) / sizeof(seen[0]))
				seen[n++] = r;
		}
	}
	return n;
}

static void put_used(struct hb *b, uint32_t id, uint32_t len)
{
	struct vring_used_elem *e = &b->used->ring[b->used_idx % b->qsz];

	e->id = id;
	e->len = len;
	b->used_idx++;
	/* the element is visible before the index that publishes it */
	__atomic_store_n(&b->used->idx, b->used_idx, __ATOMIC_RELEASE);
}

static void kick(struct hb *b)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	gv_evtchn_notify(b->p, b->qport);
}

static void canary(struct hb *b)
{
	if (b->leak.addr)
		memset(b->leak.addr, HB_CANARY, (size_t)b->leak.count * GV_PAGE_SIZE);
}

struct req_seg {
	uint8_t *va;
	uint32_t len;
	bool write;
	struct hb_map m;
};

/* Serves the chain at head; returns the used length, or -1 if the chain
 * could not be mapped. Mappings are left in segs for the caller. */
static long serve_one(struct hb *b, uint16_t head, struct req_seg *seg, unsigned *nseg)
{
	struct virtio_blk_outhdr hdr;
	uint64_t pos;
	uint32_t written = 0;
	unsigned n = 0;
	uint16_t i = head;

	for (unsigned k = 0; k < b->qsz; k++) {
		struct vring_desc d = b->desc[i];     /* copy, then use */
		grant_ref_t ref, refs[HB_MAX_MAPS];
		uint32_t off;
		unsigned np;

		if (gv_dma_to_grant(d.addr, &ref, &off) < 0 || !d.len)
			return -1;
		np = (off + d.len + GV_PAGE_SIZE - 1) / GV_PAGE_SIZE;
		if (np > HB_MAX_MAPS)
			return -1;
		for (unsigned j = 0; j < np; j++) {
			refs[j] = ref + j;
			/* a page the guest gave up while we keep it must never come back */
			if (b->leak.addr && refs[j] >= b->leak.ref &&
			    refs[j] < b->leak.ref + b->leak.count)
				b->reused++;
		}
		seg[n].write = d.flags & VRING_DESC_F_WRITE;
		if (gv_map(b->p, b->dom, np, refs, seg[n].write ? GV_MAP_WRITE : 0, NULL,
		           &seg[n].m.addr) < 0)
			return -1;
		seg[n].m.count = np;
		seg[n].m.ref = ref;
		seg[n].va = (uint8_t *)seg[n].m.addr + off;
		seg[n].len = d.len;
		n++;
		*nseg = n;
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		i = d.next;
		if (i >= b->qsz)
			return -1;
	}
	if (n < 2 || seg[0].write || seg[0].len < sizeof(hdr) || !seg[n - 1].write)
		return -1;
	memcpy(&hdr, seg[0].va, sizeof(hdr));
	pos = hdr.sector * 512;
	for (unsigned k = 1; k + 1 < n; k++) {
		if (pos + seg[k].len > HB_DISK_BYTES) {
			*seg[n - 1].va = VIRTIO_BLK_S_IOERR;
			return 1;
		}
		if (hdr.type == VIRTIO_BLK_T_IN && seg[k].write) {
			/* a fresh grant is zeroed: the canary there means reuse */
			for (uint32_t j = 0; b->leak.addr && j < seg[k].len; j++)
				if (seg[k].va[j] == HB_CANARY) {
					b->reused++;
					break;
				}
			memcpy(seg[k].va, b->disk + pos, seg[k].len);
			written += seg[k].len;
		} else if (hdr.type == VIRTIO_BLK_T_OUT && !seg[k].write) {
			memcpy(b->disk + pos, seg[k].va, seg[k].len);
		}
		pos += seg[k].len;
	}
	*seg[n - 1].va = VIRTIO_BLK_S_OK;
	return written + 1;
}

static void serve_batch(struct hb *b);

/* Serves until the avail ring is empty; with EVENT_IDX, asks for a kick at
 * the next index (avail_event) and re-checks after, so a request added
 * while it looked is not left waiting. Interrupts are always sent (a device
 * may send more than the guest asked for). */
static void serve(struct hb *b)
{
	for (;;) {
		serve_batch(b);
		if (b->phase != PH_CONNECTED || b->lied)
			return;
		__atomic_store_n((uint16_t *)&b->used->ring[b->qsz], b->last_avail, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(&b->avail->idx, __ATOMIC_ACQUIRE) == b->last_avail)
			return;
	}
}

static void serve_batch(struct hb *b)
{
	uint16_t avail_idx;

	/* after the one lie: silent, so what the guest ends is deterministic */
	if (b->phase != PH_CONNECTED || b->lied)
		return;
	/* acquire: the ring entries and descriptors after the index */
	avail_idx = __atomic_load_n(&b->avail->idx, __ATOMIC_ACQUIRE);
	if (b->mode == HB_USED_ID_DUP && !b->lied && (uint16_t)(avail_idx - b->last_avail) < 2)
		return;     /* two requests in flight before the lie */
	while (b->last_avail != avail_idx) {
		uint16_t head = b->avail->ring[b->last_avail % b->qsz];
		struct req_seg seg[HB_MAX_MAPS];
		unsigned nseg = 0;
		long len;

		b->last_avail++;
		if (head >= b->qsz)
			return;
		len = serve_one(b, head, seg, &nseg);
		if (b->mode == HB_DIE_UNSEEN) {
			/* exit with the request taken: the platform unmaps
			 * everything and signals the guest, as on a crash */
			say(b, "dying");
			_exit(0);
		}
		if (b->mode == HB_NEVER_COMPLETE || b->mode == HB_STUCK || b->mode == HB_FLAP ||
		    (b->mode == HB_CLOSE_MID_IO && b->sessions == 1)) {
			/* keep the request and its mappings: it never completes */
			for (unsigned k = 0; k < nseg && b->nheld < HB_MAX_MAPS; k++)
				b->held[b->nheld++] = seg[k].m;
			if (b->mode == HB_CLOSE_MID_IO) {
				disconnect(b);
				gv_xs_write_str(b->xs, XBT_NULL, b->be, GV_XS_STATE, "6");
				b->phase = PH_CLOSED;
				say(b, "flipped");
				return;
			}
			say(b, "took pages=%u", pages_mapped(b));
			continue;
		}
		if (b->mode == HB_KEEP_GRANT && !b->leak.addr && nseg > 2 && seg[1].write) {
			/* keep the first data page mapped past the completion */
			b->leak = seg[1].m;
			seg[1].m.addr = NULL;
			say(b, "leak %u %u", b->leak.ref, b->leak.count);
		}
		for (unsigned k = 0; k < nseg; k++)
			unmap_one(b, &seg[k].m);
		if (len < 0)
			len = 0;
		if (b->mode != HB_USED_ID_OOR && b->mode != HB_USED_ID_DUP &&
		    b->mode != HB_USED_LEN_BIG && b->mode != HB_USED_IDX_JUMP) {
			put_used(b, head, (uint32_t)len);
			continue;
		}
		b->lied = true;
		switch (b->mode) {
		case HB_USED_ID_OOR:
			put_used(b, b->qsz + 3, (uint32_t)len);
			break;
		case HB_USED_ID_DUP:
			put_used(b, head, (uint32_t)len);
			put_used(b, head, (uint32_t)len);
			break;
		case HB_USED_LEN_BIG:
			put_used(b, head, (uint32_t)len + GV_PAGE_SIZE);
			break;
		case HB_USED_IDX_JUMP:
			put_used(b, head, (uint32_t)len);
			b->used_idx += b->qsz;
			__atomic_store_n(&b->used->idx, b->used_idx, __ATOMIC_RELEASE);
			break;
		default:
			break;
		}
		say(b, "lied");
		kick(b);
		return;     /* the rest stays unanswered: the guest gave up */
	}
	kick(b);
}

static void fe_changed(struct hb *b)
{
	enum xenbus_state s;

	if (gv_xs_read_state(b->xs, XBT_NULL, b->fe, GV_XS_FE_STATE, &s) < 0)
		return;
	switch (b->phase) {
	case PH_INITWAIT:
		if (s == XenbusStateInitialised && connect_fe(b) < 0) {
			say(b, "connect failed");
			_exit(4);
		}
		break;
	case PH_CONNECTED:
		if (s != XenbusStateClosing && s != XenbusStateClosed &&
		    s != XenbusStateInitialising)
			break;
		if (b->mode == HB_STUCK) {
			say(b, "ignored closing pages=%u", pages_mapped(b));
			b->phase = PH_CLOSED;   /* and keeps everything mapped */
			break;
		}
		/* the guest gave up any page still kept: now the canary */
		canary(b);
		disconnect(b);
		gv_xs_write_str(b->xs, XBT_NULL, b->be, GV_XS_STATE, "6");
		b->phase = PH_CLOSED;
		say(b, "closed reused=%u", b->reused);
		break;
	case PH_CLOSED:
		if (b->mode != HB_STUCK &&
		    (s == XenbusStateInitialising || s == XenbusStateClosed))
			publish(b);
		break;
	}
}

static void run(struct hb *b)
{
	char path[160];
	int efd = gv_evtchn_fd(b->p);

	gv_xs_join(path, sizeof(path), b->fe, GV_XS_FE_STATE);
	if (!xs_watch(b->xs, path, "hb") || publish(b) < 0) {
		say(b, "cannot publish");
		_exit(5);
	}
	for (;;) {
		struct pollfd pfd[2] = { { efd, POLLIN, 0 }, { xs_fileno(b->xs), POLLIN, 0 } };
		evtchn_port_t port;
		char **w;

		/* the timeout only re-checks the ring, in case a kick was coalesced */
		poll(pfd, 2, b->mode == HB_FLAP ? 50 : 100);
		if (b->mode == HB_FLAP && b->phase == PH_CONNECTED && b->live) {
			/* gone, back, gone, ...: each change notified */
			b->live[1] ^= 1;
			gv_evtchn_notify(b->p, b->dport);
		}
		while (gv_evtchn_pending(b->p, &port) == 1)
			gv_evtchn_unmask(b->p, port);
		while ((w = xs_check_watch(b->xs)))
			free(w);
		fe_changed(b);
		serve(b);
		canary(b);
	}
}

int hb_start(struct hb_child *c, const char *sim_dir, domid_t dom, enum hb_mode mode)
{
	int pfd[2];
	char line[128];

	memset(c, 0, sizeof(*c));
	c->pid = -1;
	c->rfd = -1;
	if (pipe(pfd) < 0)
		return -1;
	c->pid = fork();
	if (c->pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (c->pid == 0) {
		struct gv_platform_opts o = { GV_PLATFORM_SIM, sim_dir, 0 };
		static struct hb b;
		char err[256];

		close(pfd[0]);
		/* the test's end, or its crash, ends us */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGTERM, SIG_DFL);
		memset(&b, 0, sizeof(b));
		b.report = pfd[1];
		b.dom = dom;
		b.mode = mode;
		for (uint64_t i = 0; i < HB_DISK_BYTES; i++)
			b.disk[i] = hb_disk_byte(i);
		snprintf(b.fe, sizeof(b.fe), GV_XS_FRONTEND_DIR_FMT, (unsigned)dom, 0u);
		snprintf(b.be, sizeof(b.be), GV_XS_BACKEND_DIR_FMT, 0u, (unsigned)dom, 0u);
		if (gv_platform_open(&o, &b.p, err, sizeof(err)) < 0) {
			say(&b, "platform: %s", err);
			_exit(2);
		}
		b.xs = gv_xs_open(b.p);
		if (!b.xs) {
			say(&b, "no xenstore");
			_exit(2);
		}
		run(&b);
		_exit(0);
	}
	close(pfd[1]);
	c->rfd = pfd[0];
	if (!hb_expect(c, "ready", line, sizeof(line), 5000)) {
		printf("hostile backend: never ready\n");
		hb_stop(c);
		return -1;
	}
	return 0;
}

bool hb_expect(struct hb_child *c, const char *want, char *line, size_t len, int ms)
{
	double end = gv_now_ms() + ms;

	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		struct pollfd p = { c->rfd, POLLIN, 0 };
		ssize_t r;
		int left;

		if (nl) {
			size_t n = (size_t)(nl - c->buf);
			bool match;

			*nl = 0;
			match = !strncmp(c->buf, want, strlen(want));
			if (match && line)
				snprintf(line, len, "%s", c->buf);
			if (getenv("GV_TEST_VERBOSE"))
				printf("  hb| %s\n", c->buf);
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			if (match)
				return true;
			continue;
		}
		left = (int)(end - gv_now_ms());
		if (left <= 0 || c->len == sizeof(c->buf))
			return false;
		if (poll(&p, 1, left) != 1)
			return false;
		r = read(c->rfd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (r <= 0)
			return false;
		c->len += (size_t)r;
	}
}

int hb_stop(struct hb_child *c)
{
	int st = 0;

	if (c->rfd >= 0)
		close(c->rfd);
	c->rfd = -1;
	if (c->pid <= 0)
		return 0;
	kill(c->pid, SIGTERM);
	for (double end = gv_now_ms() + 5000; waitpid(c->pid, &st, WNOHANG) == 0;) {
		if (gv_now_ms() > end) {
			kill(c->pid, SIGKILL);
			waitpid(c->pid, &st, 0);
			break;
		}
		/* waitpid has no timeout of its own */
		poll(NULL, 0, 5);
	}
	c->pid = -1;
	if (WIFSIGNALED(st))
		return WTERMSIG(st) == SIGTERM ? 0 : -1;
	return WEXITSTATUS(st);
}
