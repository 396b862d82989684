/*
 * test/hostile_frontend.c: the plumbing of the hostile frontend (see
 * hostile_frontend.h): an honest handshake that a test can bend at any step.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xenstore.h>
#include "hostile_frontend.h"
#include "sim_harness.h"
#include "dma_addr.h"
#include "xs_keys.h"
#include "xs_util.h"

static int grant(struct hf *h, unsigned n, unsigned flags, const struct gv_notify *nt,
                 grant_ref_t *refs, void **addr)
{
	int rc = gv_grant_alloc(h->p, 0, n, flags, nt, refs, addr);

	if (rc < 0)
		printf("hostile frontend: grant_alloc of %u pages: %s\n", n, strerror(-rc));
	return rc;
}

int hf_open(struct hf *h, const char *sim_dir, domid_t dom, unsigned qsz)
{
	struct gv_platform_opts o = { GV_PLATFORM_SIM, sim_dir, dom };
	struct gv_notify ln;
	char err[256];
	void *a;

	memset(h, 0, sizeof(*h));
	h->dom = dom;
	h->qsz = qsz;
	if (gv_platform_open(&o, &h->p, err, sizeof(err)) < 0) {
		printf("hostile frontend: platform: %s\n", err);
		return -1;
	}
	h->xs = gv_xs_open(h->p);
	if (!h->xs)
		return -1;
	snprintf(h->fe, sizeof(h->fe), GV_XS_FRONTEND_DIR_FMT, (unsigned)dom, 0u);
	snprintf(h->be, sizeof(h->be), GV_XS_BACKEND_DIR_FMT, 0u, (unsigned)dom, 0u);
	if (!xs_wait_key(h->xs, h->be, GV_XS_STATE, "2", 5000)) {
		printf("hostile frontend: dom%u: the backend never reached InitWait\n", dom);
		return -1;
	}
	if (gv_evtchn_alloc_unbound(h->p, 0, &h->dport) < 0 ||
	    gv_evtchn_alloc_unbound(h->p, 0, &h->qport) < 0)
		return -1;
	ln.offset = 0;
	ln.port = h->dport;
	if (grant(h, 1, GV_GRANT_READONLY, NULL, &h->dref, &h->ring_addr[0]) < 0 ||
	    grant(h, 1, GV_GRANT_READONLY, NULL, &h->aref, &h->ring_addr[1]) < 0 ||
	    grant(h, 1, 0, NULL, &h->uref, &h->ring_addr[2]) < 0 ||
	    grant(h, 1, 0, &ln, &h->lref, &h->ring_addr[3]) < 0)
		return -1;
	h->desc = h->ring_addr[0];
	h->avail = h->ring_addr[1];
	h->used = h->ring_addr[2];
	h->live = h->ring_addr[3];
	h->live[0] = 1;
	if (grant(h, HF_NDATA, 0, NULL, h->data_ref, &a) < 0)
		return -1;
	h->data = a;
	if (grant(h, HF_NRO, GV_GRANT_READONLY, NULL, h->ro_ref, &a) < 0)
		return -1;
	h->ro = a;
	return 0;
}

int hf_write_keys(struct hf *h, const struct hf_key *ov, unsigned nov)
{
	struct xs_handle *xs = h->xs;
	uint64_t feat;
	int rc;

	if (gv_xs_read_u64(xs, XBT_NULL, h->be, GV_XS_FEATURES, UINT64_MAX, &feat) < 0)
		return -1;
	feat &= (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_ACCESS_PLATFORM) |
	        (1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	rc = gv_xs_printf(xs, XBT_NULL, h->fe, GV_XS_DRIVER_FEATURES, "0x%llx",
	                  (unsigned long long)feat) ||
	     gv_xs_write_str(xs, XBT_NULL, h->fe, GV_XS_DMA_STRATEGY, "grant") ||
	     gv_xs_write_str(xs, XBT_NULL, h->fe, GV_XS_PERSISTENT_POOL, "0") ||
	     gv_xs_printf(xs, XBT_NULL, h->fe, GV_XS_EVENT_CHANNEL, "%u", h->dport) ||
	     gv_xs_printf(xs, XBT_NULL, h->fe, GV_XS_LIVENESS_REF, "%u", h->lref) ||
	     gv_xs_write_str(xs, XBT_NULL, h->fe, GV_XS_FE_NUM_QUEUES, "1") ||
	     gv_xs_printf(xs, XBT_NULL, h->fe, "queue-0/size", "%u", h->qsz) ||
	     gv_xs_printf(xs, XBT_NULL, h->fe, "queue-0/desc-refs", "%u", h->dref) ||
	     gv_xs_printf(xs, XBT_NULL, h->fe, "queue-0/avail-refs", "%u", h->aref) ||
	     gv_xs_printf(xs, XBT_NULL, h->fe, "queue-0/used-refs", "%u", h->uref) ||
	     gv_xs_printf(xs, XBT_NULL, h->fe, "queue-0/event-channel", "%u", h->qport);
	/* no in-flight record unless an override grants one (and none left
	 * by an earlier case) */
	if (!rc)
		gv_xs_rm(xs, XBT_NULL, h->fe, "queue-0/inflight-ref");
	for (unsigned i = 0; !rc && i < nov; i++) {
		if (ov[i].val)
			rc = gv_xs_write_str(xs, XBT_NULL, h->fe, ov[i].key, ov[i].val);
		else
			rc = gv_xs_rm(xs, XBT_NULL, h->fe, ov[i].key) == -ENOENT ? 0 : 0;
	}
	if (rc)
		return -1;
	return gv_xs_write_str(xs, XBT_NULL, h->fe, GV_XS_FE_STATE, "3") ? -1 : 0;
}

int hf_wait_connect(struct hf *h, int ms)
{
	char st[8];

	for (double end = gv_now_ms() + ms; gv_now_ms() < end;) {
		if (xs_wait_key(h->xs, h->be, GV_XS_STATE, "4", 20)) {
			gv_xs_write_str(h->xs, XBT_NULL, h->fe, GV_XS_FE_STATE, "4");
			return 4;
		}
		if (gv_xs_read_str(h->xs, XBT_NULL, h->be, GV_XS_STATE, st, sizeof(st)) == 0 &&
		    (!strcmp(st, "5") || !strcmp(st, "6")))
			return atoi(st);
	}
	return -1;
}

void hf_submit(struct hf *h, uint16_t head)
{
	h->avail->ring[h->avail_idx % h->qsz] = head;
	/* the entry is visible before the index that publishes it */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	h->avail->idx = ++h->avail_idx;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!(*(volatile uint16_t *)&h->used->flags & VRING_USED_F_NO_NOTIFY))
		gv_evtchn_notify(h->p, h->qport);
}

long hf_wait_used(struct hf *h, int ms, uint32_t *id)
{
	double end = gv_now_ms() + ms;
	int efd = gv_evtchn_fd(h->p);
	struct vring_used_elem e;

	while (*(volatile uint16_t *)&h->used->idx == h->last_used) {
		struct pollfd p = { efd, POLLIN, 0 };
		evtchn_port_t port;

		if (gv_now_ms() > end)
			return -1;
		/* the event fd wakes us; the short timeout covers a suppressed kick */
		poll(&p, 1, 20);
		while (gv_evtchn_pending(h->p, &port) == 1)
			gv_evtchn_unmask(h->p, port);
	}
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	e = h->used->ring[h->last_used++ % h->qsz];
	if (id)
		*id = e.id;
	return e.len;
}

uint16_t hf_blk_in(struct hf *h, uint16_t first, uint64_t sector, unsigned dpage, uint32_t len)
{
	struct virtio_blk_outhdr *hdr = (struct virtio_blk_outhdr *)h->data;

	hdr->type = VIRTIO_BLK_T_IN;
	hdr->ioprio = 0;
	hdr->sector = sector;
	h->data[200] = 0xff;
	h->desc[first] = (struct vring_desc){ gv_grant_to_dma(h->data_ref[0], 0), 16,
	                                      VRING_DESC_F_NEXT, (uint16_t)(first + 1) };
	h->desc[first + 1] = (struct vring_desc){ gv_grant_to_dma(h->data_ref[dpage], 0), len,
	                                          VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
	                                          (uint16_t)(first + 2) };
	h->desc[first + 2] = (struct vring_desc){ gv_grant_to_dma(h->data_ref[0], 200), 1,
	                                          VRING_DESC_F_WRITE, 0 };
	return first;
}

bool hf_wait_broken(struct hf *h, int ms, char *err, size_t errlen)
{
	char st[16];

	if (!xs_wait_key(h->xs, h->be, GV_XS_STATE, "5", ms))
		return false;
	if (gv_xs_read_str(h->xs, XBT_NULL, h->be, GV_XS_DEVICE_STATUS, st, sizeof(st)) < 0 ||
	    strtoul(st, NULL, 0) != VIRTIO_CONFIG_S_NEEDS_RESET)
		return false;
	if (gv_xs_read_str(h->xs, XBT_NULL, h->be, GV_XS_ERROR, err, errlen) < 0)
		return false;
	/* one human line: no newline, not empty */
	return err[0] && !strchr(err, '\n');
}

static void end_all(struct hf *h)
{
	for (unsigned k = 0; k < 4; k++)
		if (h->ring_addr[k] && gv_grant_end(h->p, h->ring_addr[k], 1) == -EBUSY)
			h->leaked++;
	if (h->data && !h->data_ended && gv_grant_end(h->p, h->data, HF_NDATA) == -EBUSY)
		h->leaked += HF_NDATA;
	if (h->ro && gv_grant_end(h->p, h->ro, HF_NRO) == -EBUSY)
		h->leaked += HF_NRO;
	memset(h->ring_addr, 0, sizeof(h->ring_addr));
	h->data = h->ro = NULL;
}

void hf_abandon(struct hf *h)
{
	if (h->xs)
		xs_close(h->xs);
	if (h->p)
		gv_platform_close(h->p);
	h->xs = NULL;
	h->p = NULL;
}

long hf_close(struct hf *h)
{
	bool closed;

	gv_xs_write_str(h->xs, XBT_NULL, h->fe, GV_XS_FE_STATE, "5");
	closed = xs_wait_key(h->xs, h->be, GV_XS_STATE, "6", 5000);
	if (closed)
		end_all(h);
	gv_xs_write_str(h->xs, XBT_NULL, h->fe, GV_XS_FE_STATE, "6");
	/* Initialising: the backend publishes again for the next attach (step 8) */
	gv_xs_write_str(h->xs, XBT_NULL, h->fe, GV_XS_FE_STATE, "1");
	hf_abandon(h);
	if (!closed) {
		printf("hostile frontend: dom%u: the backend never reached Closed\n", h->dom);
		return -1;
	}
	return (long)h->leaked;
}
