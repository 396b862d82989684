/*
 * test/hostile_frontend.h: a frontend that lies, for attacking the real
 * gv-backend in the simulation.
 *
 * It does the guest side of docs/transport.md by hand over the platform API
 * (grants the vring areas and the liveness page, allocates the event
 * channels, writes the keys) so that a test controls every key, every
 * descriptor and every index, and can break any of them on purpose: the
 * misbehaviour switches live in the test (test_hostile_frontend.c); this
 * file is the honest plumbing they bend.
 *
 * Pages a hostile frontend owns (all granted to the backend, domain 0):
 *   desc, avail        read-only, one page each (queue size <= 256)
 *   used, liveness     writable
 *   data[HF_NDATA]     writable data pages, consecutive refs
 *   ro[HF_NRO]         read-only data pages (for "write into a read-only grant")
 */
#ifndef GV_TEST_HOSTILE_FRONTEND_H
#define GV_TEST_HOSTILE_FRONTEND_H

#include <stdbool.h>
#include <stdint.h>
#include "platform.h"

#define HF_NDATA 8
#define HF_NRO   2

struct hf {
	struct gv_platform *p;
	struct xs_handle *xs;
	domid_t dom;
	unsigned qsz;
	char fe[96], be[96];
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	volatile uint8_t *live;
	uint8_t *data, *ro;
	void *ring_addr[4];             /* desc, avail, used, liveness allocations */
	grant_ref_t dref, aref, uref, lref;
	grant_ref_t data_ref[HF_NDATA], ro_ref[HF_NRO];
	evtchn_port_t dport, qport;
	uint16_t avail_idx, last_used;
	bool data_ended;                /* the test ended the data pages itself */
	uint64_t leaked;                /* pages whose grant_end said -EBUSY */
};

/* One key override for hf_write_keys: val NULL leaves the key out. */
struct hf_key {
	const char *key;
	const char *val;
};

/* Opens the platform as domain dom of the simulation at sim_dir, waits for
 * BE=InitWait of device 0, grants every page and allocates both ports.
 * 0 or -1 (a line printed). */
int  hf_open(struct hf *h, const char *sim_dir, domid_t dom, unsigned qsz);
/* Writes every frontend key (honest values), then the overrides (applied in
 * order, each replacing or removing one key), then FE=Initialised. */
int  hf_write_keys(struct hf *h, const struct hf_key *ov, unsigned nov);
/* Waits for BE=Connected (then writes FE=Connected) or BE=Closing/Closed.
 * Returns the backend state reached, or -1 after ms. */
int  hf_wait_connect(struct hf *h, int ms);
/* Puts head in the avail ring, publishes it (release), kicks unless the
 * backend suppressed kicks. */
void hf_submit(struct hf *h, uint16_t head);
/* Waits for the next used element; returns its len (and id in *id) or -1. */
long hf_wait_used(struct hf *h, int ms, uint32_t *id);
/* Fills descriptors first..first+2 with a blk IN request of len bytes at
 * sector into data page dpage, status byte at data page 0 offset 200,
 * header at data page 0 offset 0. Returns the head (first). */
uint16_t hf_blk_in(struct hf *h, uint16_t first, uint64_t sector, unsigned dpage, uint32_t len);
/* The backend broke the device: BE=Closing with device-status 64 and one
 * line of error (copied to err). */
bool hf_wait_broken(struct hf *h, int ms, char *err, size_t errlen);
/* The polite end: FE=Closing, wait BE=Closed, end every grant (counting any
 * -EBUSY in h->leaked), FE=Closed then FE=Initialising so the backend
 * publishes again. Returns the number of pages whose end failed, -1 if the
 * backend never closed. Closes the handles. */
long hf_close(struct hf *h);
/* Tears down without the handshake (the test failed half way). */
void hf_abandon(struct hf *h);

#endif
