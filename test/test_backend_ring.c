/*
 * test/test_backend_ring.c: the backend's virtqueue code (backend/vring.c,
 * the shipped code) against synthetic rings in ordinary memory: a hostile
 * driver's chains (loops, out-of-range indices, indirect misuse, length
 * overflow, addresses without the grant bit) must break the device with the
 * right explanation; good chains must be served, with every mapping undone
 * before the used element is published.
 *
 * A fake platform stands in for Xen: grant ref k is page k of `guest`;
 * map copies the pages into a fresh allocation (as a real mapping has its
 * own address) and unmap copies writable ones back.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "sim_harness.h"
#include "../backend/aio.h"
#include "../backend/blk.h"
#include "../backend/mapcache.h"
#include "../backend/vring.h"
#include "dma_addr.h"

#define NGUEST 64
static unsigned char guest[NGUEST][GV_PAGE_SIZE];
static bool guest_ro[NGUEST];
static unsigned notifies, map_calls;

struct fake_map {
	void *addr;
	unsigned count;
	bool write;
	grant_ref_t refs[GVBE_REQ_MAX_PAGES];
	struct fake_map *next;
};
static struct fake_map *maps;

static int fake_map(struct gv_platform *p, domid_t from, unsigned count, const grant_ref_t *refs,
                    unsigned flags, const struct gv_notify *n, void **addr)
{
	struct fake_map *m;

	(void)from; (void)n;
	if (!count || count > GVBE_REQ_MAX_PAGES)
		return -EINVAL;
	for (unsigned k = 0; k < count; k++) {
		if (refs[k] >= NGUEST)
			return -EINVAL;
		if ((flags & GV_MAP_WRITE) && guest_ro[refs[k]])
			return -EACCES;
	}
	m = calloc(1, sizeof(*m));
	m->addr = aligned_alloc(GV_PAGE_SIZE, (size_t)count * GV_PAGE_SIZE);
	m->count = count;
	m->write = flags & GV_MAP_WRITE;
	for (unsigned k = 0; k < count; k++) {
		m->refs[k] = refs[k];
		memcpy((char *)m->addr + (size_t)k * GV_PAGE_SIZE, guest[refs[k]], GV_PAGE_SIZE);
	}
	m->next = maps;
	maps = m;
	p->ctr.maps_active += count;
	map_calls++;
	*addr = m->addr;
	return 0;
}

static int fake_unmap(struct gv_platform *p, void *addr, unsigned count)
{
	for (struct fake_map **pp = &maps; *pp; pp = &(*pp)->next) {
		struct fake_map *m = *pp;

		if (m->addr != addr)
			continue;
		if (m->count != count)
			return -EINVAL;
		if (m->write)
			for (unsigned k = 0; k < count; k++)
				memcpy(guest[m->refs[k]], (char *)m->addr + (size_t)k * GV_PAGE_SIZE,
				       GV_PAGE_SIZE);
		*pp = m->next;
		free(m->addr);
		free(m);
		p->ctr.maps_active -= count;
		return 0;
	}
	return -EINVAL;
}

static int fake_notify(struct gv_platform *p, evtchn_port_t port)
{
	(void)p; (void)port;
	notifies++;
	return 0;
}

static const struct gv_platform_ops fake_ops = {
	.name = "fake", .map = fake_map, .unmap = fake_unmap, .evtchn_notify = fake_notify,
};
static struct gv_platform fake = { .ops = &fake_ops, .domid = 0 };

static uint64_t ga(grant_ref_t ref, uint32_t off) { return gv_grant_to_dma(ref, off); }

/* ---- parsing ---------------------------------------------------------------- */

#define QN 8
static struct vring_desc table[QN];
static struct gvbe_chain ch;
static char why[512];

static int copy_in_guest(void *ctx, grant_ref_t gref, uint32_t off, void *dst, size_t len)
{
	(void)ctx;
	if (gref >= NGUEST || off + len > (size_t)(NGUEST - gref) * GV_PAGE_SIZE)
		return -EINVAL;
	memcpy(dst, &guest[gref][off], len);
	return 0;
}
static const struct gvbe_vq_mem mem = { copy_in_guest, NULL };

static void setd(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	table[i].addr = addr;
	table[i].len = len;
	table[i].flags = flags;
	table[i].next = next;
}

static int parse(uint16_t head, bool indirect_ok)
{
	why[0] = 0;
	return gvbe_vq_parse_chain(table, QN, head, indirect_ok, &mem, &ch, why, sizeof(why));
}

static int setup(void)
{
	memset(table, 0, sizeof(table));
	memset(guest, 0, sizeof(guest));
	memset(guest_ro, 0, sizeof(guest_ro));
	gvbe_chain_fini(&ch);
	return gvbe_chain_init(&ch, QN);
}

static int t_good_chain(void)
{
	CHECK_EQ(setup(), 0);
	setd(0, ga(1, 0), 16, VRING_DESC_F_NEXT, 3);
	setd(3, ga(2, 100), 8192, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 5);
	setd(5, ga(9, 4095), 1, VRING_DESC_F_WRITE, 0);
	CHECK_EQ(parse(0, false), 0);
	CHECK_EQ(ch.nseg, 3);
	CHECK_EQ(ch.nread, 1);
	CHECK_EQ(ch.read_bytes, 16);
	CHECK_EQ(ch.write_bytes, 8193);
	CHECK_EQ(ch.seg[1].gref, 2);
	CHECK_EQ(ch.seg[1].off, 100);
	CHECK_EQ(ch.seg[1].npages, 3);     /* 100 + 8192 bytes span 3 pages */
	CHECK_EQ(ch.seg[2].npages, 1);
	CHECK(ch.seg[2].write && !ch.seg[0].write);
	return 0;
}

static int t_head_out_of_range(void)
{
	CHECK_EQ(setup(), 0);
	CHECK_EQ(parse(QN, false), -EPROTO);
	CHECK_MSG(strstr(why, "head index 8 out of range"), "why: %s", why);
	return 0;
}

static int t_next_out_of_range(void)
{
	CHECK_EQ(setup(), 0);
	setd(0, ga(1, 0), 16, VRING_DESC_F_NEXT, 200);
	CHECK_EQ(parse(0, false), -EPROTO);
	CHECK_MSG(strstr(why, "next index 200 out of range"), "why: %s", why);
	return 0;
}

static int t_loop(void)
{
	CHECK_EQ(setup(), 0);
	setd(0, ga(1, 0), 16, VRING_DESC_F_NEXT, 1);
	setd(1, ga(1, 0), 16, VRING_DESC_F_NEXT, 0);
	CHECK_EQ(parse(0, false), -EPROTO);
	CHECK_MSG(strstr(why, "longer than the queue size"), "why: %s", why);
	/* a self loop too */
	setd(2, ga(1, 0), 16, VRING_DESC_F_NEXT, 2);
	CHECK_EQ(parse(2, false), -EPROTO);
	return 0;
}

static int t_no_grant_bit(void)
{
	CHECK_EQ(setup(), 0);
	setd(0, 0x12345000ULL, 16, 0, 0);
	CHECK_EQ(parse(0, false), -EPROTO);
	CHECK_MSG(!strcmp(why, "descriptor address 0x12345000 is not a grant reference: the driver "
	                  "bypassed the DMA API (VIRTIO_F_ACCESS_PLATFORM not negotiated); under "
	                  "Xen a backend can reach only guest memory that the guest granted to it"),
	          "why: %s", why);
	/* bits 44-62 set: not a grant DMA address either */
	setd(0, GV_DMA_GRANT_BIT | (1ULL << 50), 16, 0, 0);
	CHECK_EQ(parse(0, false), -EPROTO);
	return 0;
}

static int t_length_overflow(void)
{
	CHECK_EQ(setup(), 0);
	setd(0, ga(1, 0), 0xffffffffu, VRING_DESC_F_NEXT, 1);
	setd(1, ga(1, 0), 0xffffffffu, VRING_DESC_F_WRITE, 0);
	CHECK_EQ(parse(0, false), -EPROTO);
	CHECK_MSG(strstr(why, "overflow"), "why: %s", why);
	/* a buffer running past grant ref 0xffffffff */
	setd(0, ga(0xffffffffu, 4000), 200, 0, 0);
	CHECK_EQ(parse(0, false), -EPROTO);
	CHECK_MSG(strstr(why, "past the last grant"), "why: %s", why);
	/* the same length inside one page is fine */
	setd(0, ga(0xffffffffu, 0), 200, 0, 0);
	CHECK_EQ(parse(0, false), 0);
	return 0;
}

static int t_readable_after_writable(void)
{
	CHECK_EQ(setup(), 0);
	setd(0, ga(1, 0), 16, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	setd(1, ga(2, 0), 16, 0, 0);
	CHECK_EQ(parse(0, false), -EPROTO);
	CHECK_MSG(strstr(why, "device-readable descriptor 1 after a device-writable"), "why: %s", why);
	return 0;
}

/* an indirect table in guest page 5: hdr, data, status */
static void put_itable(unsigned n)
{
	struct vring_desc *it = (struct vring_desc *)guest[5];

	it[0] = (struct vring_desc){ ga(1, 0), 16, VRING_DESC_F_NEXT, 1 };
	it[1] = (struct vring_desc){ ga(2, 0), 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2 };
	it[2] = (struct vring_desc){ ga(3, 0), 1, VRING_DESC_F_WRITE, 0 };
	(void)n;
}

static int t_indirect_good(void)
{
	CHECK_EQ(setup(), 0);
	put_itable(3);
	setd(4, ga(5, 0), 3 * 16, VRING_DESC_F_INDIRECT, 0);
	CHECK_EQ(parse(4, true), 0);
	CHECK_EQ(ch.nseg, 3);
	CHECK_EQ(ch.nread, 1);
	CHECK_EQ(ch.seg[2].gref, 3);
	/* without the feature it is a violation */
	CHECK_EQ(parse(4, false), -EPROTO);
	CHECK_MSG(strstr(why, "VIRTIO_RING_F_INDIRECT_DESC"), "why: %s", why);
	return 0;
}

static int t_indirect_bad(void)
{
	struct vring_desc *it = (struct vring_desc *)guest[5];

	CHECK_EQ(setup(), 0);
	put_itable(3);
	setd(4, ga(5, 0), 0, VRING_DESC_F_INDIRECT, 0);
	CHECK_EQ(parse(4, true), -EPROTO);                  /* length 0 */
	setd(4, ga(5, 0), 40, VRING_DESC_F_INDIRECT, 0);
	CHECK_EQ(parse(4, true), -EPROTO);                  /* not a multiple of 16 */
	setd(4, ga(5, 0), (QN + 1) * 16, VRING_DESC_F_INDIRECT, 0);
	CHECK_EQ(parse(4, true), -EPROTO);                  /* longer than the queue */
	CHECK_MSG(strstr(why, "non-zero multiple of 16"), "why: %s", why);
	setd(4, ga(5, 0), 48, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 0);
	CHECK_EQ(parse(4, true), -EPROTO);                  /* INDIRECT with NEXT */
	CHECK_MSG(strstr(why, "both INDIRECT and NEXT"), "why: %s", why);
	setd(4, 0x5000, 48, VRING_DESC_F_INDIRECT, 0);
	CHECK_EQ(parse(4, true), -EPROTO);                  /* table address not a grant */
	CHECK_MSG(strstr(why, "is not a grant reference"), "why: %s", why);
	setd(4, ga(NGUEST + 3, 0), 48, VRING_DESC_F_INDIRECT, 0);
	CHECK_EQ(parse(4, true), -EPROTO);                  /* table cannot be mapped */
	CHECK_MSG(strstr(why, "cannot be mapped"), "why: %s", why);
	/* nested: an entry of the table is itself indirect */
	it[1].flags = VRING_DESC_F_INDIRECT;
	setd(4, ga(5, 0), 48, VRING_DESC_F_INDIRECT, 0);
	CHECK_EQ(parse(4, true), -EPROTO);
	CHECK_MSG(strstr(why, "nested indirect"), "why: %s", why);
	/* a loop inside the table */
	put_itable(3);
	it[2].flags = VRING_DESC_F_WRITE | VRING_DESC_F_NEXT;
	it[2].next = 1;
	CHECK_EQ(parse(4, true), -EPROTO);
	CHECK_MSG(strstr(why, "longer than the queue size"), "why: %s", why);
	/* next out of the table */
	put_itable(3);
	it[2].flags = VRING_DESC_F_WRITE | VRING_DESC_F_NEXT;
	it[2].next = 3;
	CHECK_EQ(parse(4, true), -EPROTO);
	CHECK_MSG(strstr(why, "indirect table of 3 entries"), "why: %s", why);
	/* direct descriptors before the table count against the queue size */
	put_itable(3);
	for (unsigned i = 0; i < 6; i++)
		setd(i, ga(1, 0), 16, VRING_DESC_F_NEXT, (uint16_t)(i + 1));
	setd(6, ga(5, 0), 48, VRING_DESC_F_INDIRECT, 0);
	CHECK_EQ(parse(0, true), -EPROTO);
	return 0;
}

/* ---- a whole queue ----------------------------------------------------------- */

/* ring areas in guest pages 40 (desc), 41 (avail), 42 (used) */
#define DESC  ((struct vring_desc *)guest[40])
#define AVAIL ((struct vring_avail *)guest[41])
#define USED  ((struct vring_used *)guest[42])

static struct gvbe_vq vq;
static struct gvbe_blk blk;
static struct gvbe_blk_queue bq;         /* the queue's side of blk */
static char img[] = "/var/tmp/gvt-ring-XXXXXX";

/* tmpl: where the image is made (the length of img's template) */
static int start_blk_queue_at(bool ro, const char *tmpl)
{
	char err[256];
	int fd;

	CHECK_EQ(setup(), 0);
	CHECK_EQ(strlen(tmpl), strlen(img));
	notifies = map_calls = 0;
	strcpy(img, tmpl);                 /* a failed test may not have reset it */
	fd = mkstemp(img);
	CHECK(fd >= 0);
	CHECK_EQ(ftruncate(fd, 64 * 512), 0);
	for (unsigned s = 0; s < 64; s++) {
		unsigned char sec[512];

		memset(sec, (int)s, sizeof(sec));
		CHECK_EQ(pwrite(fd, sec, 512, s * 512), 512);
	}
	close(fd);
	struct gvbe_blk_opts bo = { .ro = ro };

	CHECK_EQ(gvbe_blk_open(&blk, img, &bo, 0, err, sizeof(err)), 0);
	CHECK_EQ(blk.capacity, 64);
	/* the backend works on its own mappings of the ring pages, as for real */
	CHECK_EQ(gvbe_vq_init(&vq, &fake, 1, 0, QN, DESC, AVAIL, USED, true, NULL), 0);
	vq.handler = gvbe_blk_handle;
	gvbe_blk_queue_init(&bq, &blk);
	vq.handler_ctx = &bq;
	vq.port = 7;
	return 0;
}

static int start_blk_queue(bool ro)
{
	return start_blk_queue_at(ro, "/var/tmp/gvt-ring-XXXXXX");
}

static void stop_blk_queue(void)
{
	gvbe_blk_quiesce(&bq, 1000);
	gvbe_vq_fini(&vq);
	gvbe_blk_close(&blk);
	unlink(img);
	strcpy(img, "/var/tmp/gvt-ring-XXXXXX");
}

/* puts a blk request at descriptors base.. and makes it available */
static void blk_req(unsigned base, uint32_t type, uint64_t sector, grant_ref_t data, uint32_t len,
                    grant_ref_t status)
{
	struct virtio_blk_outhdr *h = (struct virtio_blk_outhdr *)guest[10 + base];
	bool out = type == VIRTIO_BLK_T_OUT;

	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
	DESC[base] = (struct vring_desc){ ga(10 + base, 0), 16, VRING_DESC_F_NEXT,
	                                  (uint16_t)(base + 1) };
	DESC[base + 1] = (struct vring_desc){ ga(data, 0), len,
	                                      VRING_DESC_F_NEXT | (out ? 0 : VRING_DESC_F_WRITE),
	                                      (uint16_t)(base + 2) };
	DESC[base + 2] = (struct vring_desc){ ga(status, 7), 1, VRING_DESC_F_WRITE, 0 };
	AVAIL->ring[AVAIL->idx % QN] = (uint16_t)base;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	AVAIL->idx++;
}

static int t_serve_blk(void)
{
	CHECK_EQ(start_blk_queue(false), 0);
	guest[30][7] = 0xee;
	/* read sectors 3..10 into pages 20-21 */
	blk_req(0, VIRTIO_BLK_T_IN, 3, 20, 8 * 512, 30);
	/* write page 24 (filled with 0x5a) to sectors 40..47 */
	memset(guest[24], 0x5a, GV_PAGE_SIZE);
	blk_req(3, VIRTIO_BLK_T_OUT, 40, 24, 4096, 31);
	CHECK_EQ(gvbe_vq_serve(&vq, 64), 2);
	CHECK_EQ(fake.ctr.maps_active, 0);          /* all unmapped before publishing */
	CHECK_EQ(USED->idx, 2);
	CHECK_EQ(USED->ring[0].id, 0);
	CHECK_EQ(USED->ring[0].len, 8 * 512 + 1);   /* data written + status */
	CHECK_EQ(USED->ring[1].id, 3);
	CHECK_EQ(USED->ring[1].len, 1);             /* OUT: only the status byte */
	CHECK_EQ(guest[30][7], VIRTIO_BLK_S_OK);
	CHECK_EQ(guest[31][7], VIRTIO_BLK_S_OK);
	CHECK_EQ(guest[20][0], 3);
	CHECK_EQ(guest[20][4095], 10);
	CHECK_EQ(notifies, 1);
	/* read back what was written */
	blk_req(0, VIRTIO_BLK_T_IN, 40, 22, 512, 30);
	CHECK_EQ(gvbe_vq_serve(&vq, 64), 1);
	CHECK_EQ(guest[22][511], 0x5a);
	/* out of range: IOERR, the device lives on */
	blk_req(0, VIRTIO_BLK_T_IN, 63, 22, 1024, 30);
	CHECK_EQ(gvbe_vq_serve(&vq, 64), 1);
	CHECK_EQ(guest[30][7], VIRTIO_BLK_S_IOERR);
	CHECK_EQ(USED->ring[3].len, 1);
	/* a data grant that cannot be mapped: IOERR */
	blk_req(0, VIRTIO_BLK_T_IN, 0, NGUEST + 5, 512, 30);
	guest[30][7] = 0xee;
	CHECK_EQ(gvbe_vq_serve(&vq, 64), 1);
	CHECK_EQ(guest[30][7], VIRTIO_BLK_S_IOERR);
	/* unknown type: UNSUPP; GET_ID */
	blk_req(0, 77, 0, 22, 512, 30);
	CHECK_EQ(gvbe_vq_serve(&vq, 64), 1);
	CHECK_EQ(guest[30][7], VIRTIO_BLK_S_UNSUPP);
	blk_req(0, VIRTIO_BLK_T_GET_ID, 0, 22, 20, 30);
	CHECK_EQ(gvbe_vq_serve(&vq, 64), 1);
	CHECK_EQ(guest[30][7], VIRTIO_BLK_S_OK);
	CHECK(!memcmp(guest[22], "gv0-", 4));
	CHECK_EQ(fake.ctr.maps_active, 0);
	CHECK(!vq.broken);
	/* the driver asks for no interrupts: none sent */
	notifies = 0;
	AVAIL->flags = VRING_AVAIL_F_NO_INTERRUPT;
	blk_req(0, VIRTIO_BLK_T_FLUSH, 0, 22, 0, 30);
	DESC[1] = DESC[2];                          /* flush: header + status only */
	CHECK_EQ(gvbe_vq_serve(&vq, 64), 1);
	CHECK_EQ(notifies, 0);
	CHECK_EQ(guest[30][7], VIRTIO_BLK_S_OK);
	/* kicks re-enabled once the queue is drained */
	CHECK_EQ(USED->flags & VRING_USED_F_NO_NOTIFY, 0);
	stop_blk_queue();
	return 0;
}

/* Issue 13 defect 3: with VIRTIO_F_VERSION_1 the status is the last byte of
 * the device-writable part, wherever the descriptors split the request. */
static int t_blk_framing(void)
{
	struct virtio_blk_outhdr *h = (struct virtio_blk_outhdr *)guest[10];

	CHECK_EQ(start_blk_queue(false), 0);
	/* IN: header, then ONE writable descriptor of 512 data bytes + status */
	h->type = VIRTIO_BLK_T_IN;
	h->sector = 5;
	memset(guest[20], 0xee, GV_PAGE_SIZE);
	DESC[0] = (struct vring_desc){ ga(10, 0), 16, VRING_DESC_F_NEXT, 1 };
	DESC[1] = (struct vring_desc){ ga(20, 100), 513, VRING_DESC_F_WRITE, 0 };
	AVAIL->ring[AVAIL->idx % QN] = 0;
	AVAIL->idx++;
	CHECK_EQ(gvbe_vq_serve(&vq, 8), 1);
	CHECK_EQ(USED->ring[0].len, 513);
	CHECK_EQ(guest[20][100], 5);                 /* data: sector 5 */
	CHECK_EQ(guest[20][100 + 511], 5);
	CHECK_EQ(guest[20][100 + 512], VIRTIO_BLK_S_OK); /* the status right after it */
	CHECK_EQ(guest[20][99], 0xee);               /* nothing outside */
	CHECK_EQ(guest[20][100 + 513], 0xee);

	/* OUT: header and data in one readable descriptor, the header itself
	 * split over two (8 + 8 + 512 bytes), status alone */
	h = (struct virtio_blk_outhdr *)&guest[11][0];
	h->type = VIRTIO_BLK_T_OUT;
	h->sector = 9;
	memset(&guest[11][16], 0x77, 512);
	DESC[0] = (struct vring_desc){ ga(11, 0), 8, VRING_DESC_F_NEXT, 1 };
	DESC[1] = (struct vring_desc){ ga(11, 8), 8 + 512, VRING_DESC_F_NEXT, 2 };
	DESC[2] = (struct vring_desc){ ga(31, 3), 1, VRING_DESC_F_WRITE, 0 };
	guest[31][3] = 0xee;
	AVAIL->ring[AVAIL->idx % QN] = 0;
	AVAIL->idx++;
	CHECK_EQ(gvbe_vq_serve(&vq, 8), 1);
	CHECK_EQ(guest[31][3], VIRTIO_BLK_S_OK);
	CHECK_EQ(USED->ring[1].len, 1);

	/* read it back, data and status split over two writable descriptors
	 * in the middle of a data byte run (300 + 213 bytes) */
	h = (struct virtio_blk_outhdr *)guest[10];
	h->type = VIRTIO_BLK_T_IN;
	h->sector = 9;
	memset(guest[21], 0, GV_PAGE_SIZE);
	DESC[0] = (struct vring_desc){ ga(10, 0), 16, VRING_DESC_F_NEXT, 1 };
	DESC[1] = (struct vring_desc){ ga(21, 0), 300, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2 };
	DESC[2] = (struct vring_desc){ ga(22, 0), 213, VRING_DESC_F_WRITE, 0 };
	guest[22][212] = 0xee;
	AVAIL->ring[AVAIL->idx % QN] = 0;
	AVAIL->idx++;
	CHECK_EQ(gvbe_vq_serve(&vq, 8), 1);
	CHECK_EQ(USED->ring[2].len, 513);
	CHECK_EQ(guest[21][0], 0x77);
	CHECK_EQ(guest[21][299], 0x77);
	CHECK_EQ(guest[22][211], 0x77);
	CHECK_EQ(guest[22][212], VIRTIO_BLK_S_OK);

	/* a writable part that is not 512 * n + 1 bytes: IOERR in its last byte */
	DESC[2] = (struct vring_desc){ ga(22, 0), 100, VRING_DESC_F_WRITE, 0 };
	AVAIL->ring[AVAIL->idx % QN] = 0;
	AVAIL->idx++;
	CHECK_EQ(gvbe_vq_serve(&vq, 8), 1);
	CHECK_EQ(guest[22][99], VIRTIO_BLK_S_IOERR);
	CHECK_EQ(USED->ring[3].len, 1);
	CHECK_EQ(fake.ctr.maps_active, 0);
	CHECK(!vq.broken);
	stop_blk_queue();
	return 0;
}

/* Waits (at most 5 s) until the device's I/O in flight completed. */
static int reap_all(void)
{
	double end = gv_now_ms() + 5000;

	while (gvbe_aio_inflight(bq.aio) && gv_now_ms() < end) {
		gvbe_aio_wait(bq.aio, 100);
		gvbe_blk_reap(&bq);
	}
	CHECK_EQ(gvbe_aio_inflight(bq.aio), 0);
	gvbe_vq_publish(&vq);
	return 0;
}

/* An image on tmpfs is mapped and served by memcpy; cut under the mapping
 * (truncated by someone else), the access past the new end faults
 * (SIGBUS): that request is IOERR, the daemon lives, and the disk goes on
 * with pread/pwrite, which see the short file. */
static int t_serve_blk_tmpfs(void)
{
	unsigned char sec[512];
	int fd;

	CHECK_EQ(start_blk_queue_at(false, "/dev/shm/gvt-ring-XXXXXX"), 0);
	CHECK_MSG(blk.in_memory && blk.map && blk.map_len == 64 * 512,
	          "/dev/shm is not tmpfs, or the image was not mapped (%d, %p)", blk.in_memory,
	          (void *)blk.map);
	blk_req(0, VIRTIO_BLK_T_IN, 3, 20, 8 * 512, 30);        /* sectors 3..10 */
	memset(guest[24], 0x5a, GV_PAGE_SIZE);
	blk_req(3, VIRTIO_BLK_T_OUT, 40, 24, 4096, 31);         /* sectors 40..47 */
	CHECK_EQ(gvbe_vq_serve(&vq, 64), 2);
	CHECK_EQ(USED->idx, 2);
	CHECK_EQ(USED->ring[0].len, 8 * 512 + 1);
	CHECK_EQ(guest[30][7], VIRTIO_BLK_S_OK);
	CHECK_EQ(guest[31][7], VIRTIO_BLK_S_OK);
	CHECK_EQ(guest[20][0], 3);
	CHECK_EQ(guest[20][4095], 10);
	CHECK_EQ(bq.buffered_ios, 2);
	CHECK_EQ(fake.ctr.maps_active, 0);
	/* the write is in the file (the mapping is its page cache) */
	fd = open(img, O_RDWR);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, sec, 512, 47 * 512), 512);
	CHECK_EQ(sec[0], 0x5a);
	CHECK_EQ(sec[511], 0x5a);
	/* cut to 16 sectors under the mapping */
	CHECK_EQ(ftruncate(fd, 16 * 512), 0);
	close(fd);
	guest[30][7] = 0xee;
	blk_req(0, VIRTIO_BLK_T_IN, 40, 20, 512, 30);
	CHECK_EQ(gvbe_vq_serve(&vq, 64), 1);
	CHECK_EQ(guest[30][7], VIRTIO_BLK_S_IOERR);
	CHECK(blk.map_off);
	CHECK(!vq.broken);
	/* the rest with pread: inside the new end fine, past it IOERR */
	memset(guest[20], 0, GV_PAGE_SIZE);
	blk_req(0, VIRTIO_BLK_T_IN, 7, 20, 512, 30);
	CHECK_EQ(gvbe_vq_serve(&vq, 64), 1);
	CHECK_EQ(guest[30][7], VIRTIO_BLK_S_OK);
	CHECK_EQ(guest[20][511], 7);
	blk_req(0, VIRTIO_BLK_T_IN, 40, 20, 512, 30);
	CHECK_EQ(gvbe_vq_serve(&vq, 64), 1);
	CHECK_EQ(guest[30][7], VIRTIO_BLK_S_IOERR);
	CHECK_EQ(fake.ctr.maps_active, 0);
	stop_blk_queue();
	return 0;
}

/* The io_uring path: the batch is taken, in flight together, completed
 * and published only when the CQEs arrive; a FLUSH after the write. */
static int t_serve_blk_async(void)
{
	char err[200];

	CHECK_EQ(start_blk_queue(false), 0);
	CHECK_EQ(gvbe_blk_start_aio(&bq, QN, -1, err, sizeof(err)), 0);
	/* the image is in /var/tmp: on a disk, so the io_uring path is taken */
	CHECK_MSG(!blk.in_memory, "%s is on tmpfs: served in the loop", img);
	/* a buffered read found in the page cache completes at once */
	blk_req(0, VIRTIO_BLK_T_IN, 3, 20, 512, 30);
	CHECK_EQ(gvbe_vq_serve(&vq, 64), 1);
	CHECK_EQ(vq.inflight, 0);
	CHECK_EQ(USED->idx, 1);
	CHECK_EQ(bq.nowait_ios, 1);
	CHECK_EQ(guest[20][0], 3);
	CHECK_EQ(fake.ctr.maps_active, 0);
	/* the rest goes through io_uring whatever the page cache holds */
	blk.nowait_off = true;
	memset(guest[24], 0x3c, GV_PAGE_SIZE);
	memset(guest[20], 0, 2 * GV_PAGE_SIZE);
	blk_req(0, VIRTIO_BLK_T_IN, 3, 20, 8 * 512, 30);        /* sectors 3..10 */
	blk_req(3, VIRTIO_BLK_T_OUT, 40, 24, 4096, 31);         /* sectors 40..47 */
	CHECK_EQ(gvbe_vq_serve(&vq, 64), 2);
	CHECK_EQ(vq.inflight, 2);
	CHECK_EQ(USED->idx, 1);                 /* nothing shown before the I/O completed */
	CHECK_EQ(reap_all(), 0);
	CHECK_EQ(vq.inflight, 0);
	CHECK_EQ(USED->idx, 3);
	CHECK_EQ(fake.ctr.maps_active, 0);      /* unmapped before publishing */
	CHECK_EQ(guest[30][7], VIRTIO_BLK_S_OK);
	CHECK_EQ(guest[31][7], VIRTIO_BLK_S_OK);
	CHECK_EQ(guest[20][0], 3);
	CHECK_EQ(guest[20][4095], 10);
	for (unsigned k = 1; k < 3; k++)        /* in completion order: either head */
		CHECK_EQ(USED->ring[k].len, USED->ring[k].id == 0 ? 8 * 512 + 1 : 1);
	/* a write, then a flush (drained after it), then read it back */
	memset(guest[25], 0xa5, GV_PAGE_SIZE);
	blk_req(0, VIRTIO_BLK_T_OUT, 8, 25, 4096, 30);
	blk_req(3, VIRTIO_BLK_T_FLUSH, 0, 22, 0, 31);
	DESC[4] = DESC[5];
	guest[31][7] = 0xee;
	CHECK_EQ(gvbe_vq_serve(&vq, 64), 2);
	CHECK_EQ(reap_all(), 0);
	CHECK_EQ(guest[30][7], VIRTIO_BLK_S_OK);
	CHECK_EQ(guest[31][7], VIRTIO_BLK_S_OK);
	blk_req(0, VIRTIO_BLK_T_IN, 8, 26, 4096, 30);
	CHECK_EQ(gvbe_vq_serve(&vq, 64), 1);
	CHECK_EQ(reap_all(), 0);
	CHECK_EQ(guest[26][0], 0xa5);
	CHECK_EQ(guest[26][4095], 0xa5);
	/* an error from the image (past its end after it shrank): IOERR */
	CHECK_EQ(truncate(img, 8 * 512), 0);
	blk_req(0, VIRTIO_BLK_T_IN, 20, 26, 4096, 30);
	CHECK_EQ(gvbe_vq_serve(&vq, 64), 1);
	CHECK_EQ(reap_all(), 0);
	CHECK_EQ(guest[30][7], VIRTIO_BLK_S_IOERR);
	CHECK_EQ(USED->ring[6].len, 1);
	CHECK_EQ(gvbe_blk_quiesce(&bq, 1000), 0);
	CHECK_EQ(fake.ctr.maps_active, 0);
	stop_blk_queue();
	return 0;
}

/* puts a DISCARD / WRITE_ZEROES request with n segments (header and
 * segments in one readable descriptor, raw bytes: extra adds junk after
 * them) at descriptors base.. and makes it available */
static void range_req(unsigned base, uint32_t type, const struct virtio_blk_discard_write_zeroes *g,
                      unsigned n, unsigned extra, grant_ref_t status)
{
	struct virtio_blk_outhdr *h = (struct virtio_blk_outhdr *)guest[10 + base];

	h->type = type;
	h->ioprio = 0;
	h->sector = 0;
	memcpy(guest[10 + base] + 16, g, n * sizeof(*g));
	DESC[base] = (struct vring_desc){ ga(10 + base, 0), (uint32_t)(16 + n * sizeof(*g) + extra),
	                                  VRING_DESC_F_NEXT, (uint16_t)(base + 1) };
	DESC[base + 1] = (struct vring_desc){ ga(status, 7), 1, VRING_DESC_F_WRITE, 0 };
	guest[status][7] = 0xee;
	AVAIL->ring[AVAIL->idx % QN] = (uint16_t)base;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	AVAIL->idx++;
}


/* serves one range request; its status byte, or -1 */
static int range_status(uint32_t type, const struct virtio_blk_discard_write_zeroes *g, unsigned n,
                        unsigned extra)
{
	uint16_t idx = USED->idx;

	range_req(0, type, g, n, extra, 30);
	if (gvbe_vq_serve(&vq, 64) != 1 || reap_all() || USED->idx != (uint16_t)(idx + 1) ||
	    USED->ring[idx % QN].len != 1)
		return -1;
	return guest[30][7];
}

/* what sector s of the image holds: its fill byte if uniform, -1 if mixed */
static int sector_fill(unsigned s)
{
	unsigned char sec[512];
	int fd = open(img, O_RDONLY);
	ssize_t got = fd >= 0 ? pread(fd, sec, 512, s * 512) : -1;

	if (fd >= 0)
		close(fd);
	if (got != 512)
		return -1;
	for (unsigned k = 1; k < 512; k++)
		if (sec[k] != sec[0])
			return -1;
	return sec[0];
}

static long long img_blocks(void)
{
	struct stat st;

	return stat(img, &st) == 0 ? (long long)st.st_blocks : -1;
}

/* DISCARD and WRITE_ZEROES on a file: holes punched (allocated blocks go
 * down), ranges read back as zeros, neighbours untouched; hostile segment
 * lists (too many, bad flags, out of range, bad framing) answered
 * UNSUPP/IOERR with the device alive and the image unchanged. */
static int ranges_body(bool async)
{
	struct virtio_blk_discard_write_zeroes g[GVBE_BLK_RANGE_SEG_MAX + 1];
	long long before;
	char err[200];

	CHECK_EQ(start_blk_queue(false), 0);
	if (async) {
		CHECK_EQ(gvbe_blk_start_aio(&bq, QN, -1, err, sizeof(err)), 0);
		CHECK_MSG(!blk.in_memory, "%s is on tmpfs", img);
	}
	before = img_blocks();
	CHECK(before >= 64);                    /* every sector written: allocated */
	/* two ranges, 4 KiB each, aligned to the file system's blocks */
	g[0] = (struct virtio_blk_discard_write_zeroes){ 8, 8, 0 };
	g[1] = (struct virtio_blk_discard_write_zeroes){ 24, 8, 0 };
	CHECK_EQ(range_status(VIRTIO_BLK_T_DISCARD, g, 2, 0), VIRTIO_BLK_S_OK);
	CHECK_MSG(img_blocks() <= before - 16, "blocks %lld, before %lld", img_blocks(), before);
	CHECK_EQ(bq.discards, 2);
	CHECK_EQ(sector_fill(8), 0);
	CHECK_EQ(sector_fill(15), 0);
	CHECK_EQ(sector_fill(31), 0);
	CHECK_EQ(sector_fill(7), 7);
	CHECK_EQ(sector_fill(16), 16);
	CHECK_EQ(sector_fill(32), 32);
	/* write zeroes, without and with unmap */
	before = img_blocks();
	g[0] = (struct virtio_blk_discard_write_zeroes){ 40, 3, 0 };
	CHECK_EQ(range_status(VIRTIO_BLK_T_WRITE_ZEROES, g, 1, 0), VIRTIO_BLK_S_OK);
	CHECK_EQ(sector_fill(40), 0);
	CHECK_EQ(sector_fill(42), 0);
	CHECK_EQ(sector_fill(43), 43);
	CHECK_EQ(sector_fill(39), 39);
	g[0] = (struct virtio_blk_discard_write_zeroes){ 48, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP };
	CHECK_EQ(range_status(VIRTIO_BLK_T_WRITE_ZEROES, g, 1, 0), VIRTIO_BLK_S_OK);
	CHECK_EQ(sector_fill(48), 0);
	CHECK_EQ(sector_fill(55), 0);
	CHECK_EQ(sector_fill(56), 56);
	CHECK_MSG(img_blocks() <= before - 8, "blocks %lld, before %lld", img_blocks(), before);
	CHECK_EQ(bq.zeroes, 2);

	/* hostile: every answer is UNSUPP or IOERR, nothing changes */
	g[0] = (struct virtio_blk_discard_write_zeroes){ 60, 8, 0 };          /* past the end */
	CHECK_EQ(range_status(VIRTIO_BLK_T_DISCARD, g, 1, 0), VIRTIO_BLK_S_IOERR);
	g[0] = (struct virtio_blk_discard_write_zeroes){ UINT64_MAX - 2, 8, 0 }; /* wraps */
	CHECK_EQ(range_status(VIRTIO_BLK_T_WRITE_ZEROES, g, 1, 0), VIRTIO_BLK_S_IOERR);
	g[0] = (struct virtio_blk_discard_write_zeroes){ 60, 0, 0 };          /* empty */
	CHECK_EQ(range_status(VIRTIO_BLK_T_DISCARD, g, 1, 0), VIRTIO_BLK_S_IOERR);
	g[0] = (struct virtio_blk_discard_write_zeroes){ 60, 2, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP };
	CHECK_EQ(range_status(VIRTIO_BLK_T_DISCARD, g, 1, 0), VIRTIO_BLK_S_UNSUPP); /* unmap on discard */
	g[0] = (struct virtio_blk_discard_write_zeroes){ 60, 2, 2 };          /* unknown flag */
	CHECK_EQ(range_status(VIRTIO_BLK_T_WRITE_ZEROES, g, 1, 0), VIRTIO_BLK_S_UNSUPP);
	for (unsigned k = 0; k <= GVBE_BLK_RANGE_SEG_MAX; k++)                 /* one too many */
		g[k] = (struct virtio_blk_discard_write_zeroes){ 60, 1, 0 };
	CHECK_EQ(range_status(VIRTIO_BLK_T_DISCARD, g, GVBE_BLK_RANGE_SEG_MAX + 1, 0),
	         VIRTIO_BLK_S_UNSUPP);
	CHECK_EQ(range_status(VIRTIO_BLK_T_DISCARD, g, 0, 0), VIRTIO_BLK_S_IOERR); /* none */
	CHECK_EQ(range_status(VIRTIO_BLK_T_DISCARD, g, 1, 4), VIRTIO_BLK_S_IOERR); /* 20 bytes */
	/* a bad range after a good one: IOERR, and the good one not done either */
	g[0] = (struct virtio_blk_discard_write_zeroes){ 60, 1, 0 };
	g[1] = (struct virtio_blk_discard_write_zeroes){ 63, 2, 0 };
	CHECK_EQ(range_status(VIRTIO_BLK_T_WRITE_ZEROES, g, 2, 0), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(sector_fill(60), 60);
	CHECK_EQ(sector_fill(63), 63);
	CHECK_EQ(bq.discards, 2);
	CHECK_EQ(bq.zeroes, 2);
	CHECK(!vq.broken);
	CHECK_EQ(fake.ctr.maps_active, 0);
	/* the device lives on: the most segments allowed, all done */
	for (unsigned k = 0; k < GVBE_BLK_RANGE_SEG_MAX; k++)
		g[k] = (struct virtio_blk_discard_write_zeroes){ 57 + k % 4, 1, 0 };
	CHECK_EQ(range_status(VIRTIO_BLK_T_WRITE_ZEROES, g, GVBE_BLK_RANGE_SEG_MAX, 0),
	         VIRTIO_BLK_S_OK);
	CHECK_EQ(sector_fill(57), 0);
	CHECK_EQ(sector_fill(60), 0);
	CHECK_EQ(sector_fill(61), 61);
	CHECK_EQ(gvbe_blk_quiesce(&bq, 1000), 0);
	stop_blk_queue();

	/* a read-only disk offers neither: UNSUPP, image untouched */
	CHECK_EQ(start_blk_queue(true), 0);
	g[0] = (struct virtio_blk_discard_write_zeroes){ 8, 8, 0 };
	CHECK_EQ(range_status(VIRTIO_BLK_T_DISCARD, g, 1, 0), VIRTIO_BLK_S_UNSUPP);
	CHECK_EQ(range_status(VIRTIO_BLK_T_WRITE_ZEROES, g, 1, 0), VIRTIO_BLK_S_UNSUPP);
	CHECK_EQ(sector_fill(8), 8);
	stop_blk_queue();
	return 0;
}

static int t_discard_write_zeroes(void) { return ranges_body(false); }
static int t_discard_write_zeroes_async(void) { return ranges_body(true); }

/* VIRTIO_RING_F_EVENT_IDX: the driver's used_event decides interrupts, and
 * the device asks for kicks through avail_event, not the flag. */
static int t_event_idx(void)
{
	volatile uint16_t *used_event = (uint16_t *)((char *)AVAIL + 4 + 2 * QN);
	volatile uint16_t *avail_event = (uint16_t *)((char *)USED + 4 + 8 * QN);

	CHECK_EQ(start_blk_queue(false), 0);
	vq.event_idx = true;
	*used_event = 5;                        /* interrupt when used idx passes 5 */
	blk_req(0, VIRTIO_BLK_T_IN, 0, 20, 512, 30);
	blk_req(3, VIRTIO_BLK_T_IN, 1, 21, 512, 31);
	CHECK_EQ(gvbe_vq_serve(&vq, 64), 2);
	CHECK_EQ(USED->idx, 2);
	CHECK_EQ(notifies, 0);                  /* 5 not in [0, 2) */
	CHECK_EQ(*avail_event, 2);              /* kick me when you pass 2 */
	CHECK_EQ(USED->flags, 0);               /* the flag is not used */
	*used_event = 2;
	blk_req(0, VIRTIO_BLK_T_IN, 2, 20, 512, 30);
	CHECK_EQ(gvbe_vq_serve(&vq, 64), 1);
	CHECK_EQ(notifies, 1);                  /* 2 in [2, 3) */
	CHECK_EQ(vq.interrupts, 1);
	CHECK_EQ(*avail_event, 3);
	stop_blk_queue();
	return 0;
}

static int t_serve_ro_and_limits(void)
{
	CHECK_EQ(start_blk_queue(true), 0);
	memset(guest[24], 0x5a, GV_PAGE_SIZE);
	blk_req(0, VIRTIO_BLK_T_OUT, 0, 24, 512, 31);
	CHECK_EQ(gvbe_vq_serve(&vq, 64), 1);
	CHECK_EQ(guest[31][7], VIRTIO_BLK_S_IOERR);
	/* data segment larger than size-max */
	blk_req(0, VIRTIO_BLK_T_IN, 0, 20, GVBE_BLK_SIZE_MAX + 512, 31);
	guest[31][7] = 0;
	CHECK_EQ(gvbe_vq_serve(&vq, 64), 1);
	CHECK_EQ(guest[31][7], VIRTIO_BLK_S_IOERR);
	CHECK_EQ(fake.ctr.maps_active, 0);
	stop_blk_queue();
	return 0;
}

static int t_serve_broken_sticky(void)
{
	CHECK_EQ(start_blk_queue(false), 0);
	/* the bypass driver: a guest-physical address */
	blk_req(0, VIRTIO_BLK_T_IN, 0, 20, 512, 30);
	DESC[1].addr = 0x7f000;
	CHECK_EQ(gvbe_vq_serve(&vq, 64), -EPROTO);
	CHECK(vq.broken);
	CHECK_MSG(strstr(vq.why, "descriptor address 0x7f000 is not a grant reference: the driver "
	                 "bypassed the DMA API"), "why: %s", vq.why);
	CHECK_EQ(USED->idx, 0);
	CHECK_EQ(fake.ctr.maps_active, 0);
	/* sticky: a good request later is not served */
	DESC[1].addr = ga(20, 0);
	CHECK_EQ(gvbe_vq_serve(&vq, 64), -EPROTO);
	CHECK_EQ(USED->idx, 0);
	stop_blk_queue();

	/* avail index jumping more than the queue size */
	CHECK_EQ(start_blk_queue(false), 0);
	AVAIL->idx = QN + 1;
	CHECK_EQ(gvbe_vq_serve(&vq, 64), -EPROTO);
	CHECK_MSG(strstr(vq.why, "more than the queue size"), "why: %s", vq.why);
	stop_blk_queue();
	return 0;
}

static int t_serve_budget(void)
{
	CHECK_EQ(start_blk_queue(false), 0);
	blk_req(0, VIRTIO_BLK_T_IN, 0, 20, 512, 30);
	blk_req(3, VIRTIO_BLK_T_IN, 1, 21, 512, 31);
	CHECK_EQ(gvbe_vq_serve(&vq, 1), 1);
	CHECK(vq.more);
	/* kicks stay suppressed while we owe the driver a pass */
	CHECK(USED->flags & VRING_USED_F_NO_NOTIFY);
	CHECK_EQ(gvbe_vq_serve(&vq, 1), 1);
	CHECK_EQ(USED->idx, 2);
	CHECK_EQ(gvbe_vq_serve(&vq, 1), 0);
	CHECK(!vq.more);
	stop_blk_queue();
	return 0;
}

static int t_rng_used_len(void)
{
	CHECK_EQ(setup(), 0);
	CHECK_EQ(gvbe_vq_init(&vq, &fake, 1, 0, QN, DESC, AVAIL, USED, false, NULL), 0);
	vq.handler = gvbe_rng_handle;
	memset(guest[20], 0, GV_PAGE_SIZE);
	DESC[0] = (struct vring_desc){ ga(20, 4000), 200, VRING_DESC_F_WRITE, 0 };
	AVAIL->ring[0] = 0;
	AVAIL->idx = 1;
	CHECK_EQ(gvbe_vq_serve(&vq, 8), 1);
	CHECK_EQ(USED->ring[0].len, 200);
	CHECK_EQ(fake.ctr.maps_active, 0);
	/* a read-only grant offered as device-writable cannot be mapped: nothing filled */
	guest_ro[25] = true;
	DESC[1] = (struct vring_desc){ ga(25, 0), 64, VRING_DESC_F_WRITE, 0 };
	AVAIL->ring[1] = 1;
	AVAIL->idx = 2;
	CHECK_EQ(gvbe_vq_serve(&vq, 8), 1);
	CHECK_EQ(USED->ring[1].len, 0);
	gvbe_vq_fini(&vq);
	return 0;
}

static int t_serve_with_cache(void)
{
	struct gvbe_mapcache *mc;
	struct gvbe_mapcache_stats st;
	unsigned calls;

	CHECK_EQ(start_blk_queue(false), 0);
	CHECK_EQ(gvbe_mapcache_create(&fake, 1, 8, &mc), 0);
	vq.cache = mc;
	blk_req(0, VIRTIO_BLK_T_IN, 3, 20, 512, 30);
	CHECK_EQ(gvbe_vq_serve(&vq, 8), 1);
	calls = map_calls;
	CHECK_EQ(fake.ctr.maps_active, 3);          /* header, data, status kept */
	blk_req(0, VIRTIO_BLK_T_IN, 4, 20, 512, 30);
	CHECK_EQ(gvbe_vq_serve(&vq, 8), 1);
	CHECK_EQ(map_calls, calls);                 /* all hits */
	gvbe_mapcache_get_stats(mc, &st);
	CHECK_EQ(st.hits, 3);
	gvbe_mapcache_destroy(mc);
	CHECK_EQ(fake.ctr.maps_active, 0);
	vq.cache = NULL;
	stop_blk_queue();
	return 0;
}

static const struct gv_test tests[] = {
	TEST(t_good_chain),
	TEST(t_head_out_of_range),
	TEST(t_next_out_of_range),
	TEST(t_loop),
	TEST(t_no_grant_bit),
	TEST(t_length_overflow),
	TEST(t_readable_after_writable),
	TEST(t_indirect_good),
	TEST(t_indirect_bad),
	TEST(t_serve_blk),
	TEST(t_serve_blk_tmpfs),
	TEST(t_blk_framing),
	TEST(t_serve_blk_async),
	TEST(t_discard_write_zeroes),
	TEST(t_discard_write_zeroes_async),
	TEST(t_event_idx),
	TEST(t_serve_ro_and_limits),
	TEST(t_serve_broken_sticky),
	TEST(t_serve_budget),
	TEST(t_rng_used_len),
	TEST(t_serve_with_cache),
	{ 0 }
};

int main(int argc, char **argv)
{
	int rc = gv_test_main(argc, argv, tests);

	gvbe_chain_fini(&ch);
	return rc;
}
