/*
 * test/test_backend_restart.c: a backend's takeover of a queue from a dead
 * predecessor through the in-flight record (backend/vring.c,
 * gvbe_vq_track/gvbe_vq_recover; docs/transport.md "Backend restart").
 *
 * Rings and the record live in ordinary memory standing for the guest's
 * pages. A handler that holds every request (asynchronous, never completed
 * until the test says so) plays the device; "the backend dies" is dropping
 * its queue state without publishing, the record left as the dead process
 * left it. The new queue on the same memory must serve again exactly the
 * heads taken and not published, nothing twice, and a record the guest
 * garbled must break only the device, with an explanation, never crash or
 * make the backend serve a head the rings do not allow.
 */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "../backend/vring.h"
#include "dma_addr.h"

#define QN 8u

static struct vring_desc desc[QN];
static union { struct vring_avail a; char b[64]; } avail_mem;
static union { struct vring_used u; char b[128]; } used_mem;
static union { struct gv_inflight r; char b[GV_PAGE_SIZE]; } rec_mem;
#define AVAIL (&avail_mem.a)
#define USED (&used_mem.u)
#define REC (&rec_mem.r)

static const struct gv_platform_ops no_ops = { .name = "none" };
static struct gv_platform plat = { .ops = &no_ops };

/* the device: every request held until completed by the test */
static struct gvbe_req *held[QN * 4];
static unsigned nheld, calls[QN];

static uint32_t hold(void *ctx, struct gvbe_req *r)
{
	(void)ctx;
	calls[r->ch->head]++;
	held[nheld++] = r;
	return GVBE_REQ_ASYNC;
}

static void driver_reset(void)
{
	memset(desc, 0, sizeof(desc));
	memset(&avail_mem, 0, sizeof(avail_mem));
	memset(&used_mem, 0, sizeof(used_mem));
	memset(&rec_mem, 0, sizeof(rec_mem));
	/* head h: one device-writable buffer in grant h */
	for (unsigned h = 0; h < QN; h++) {
		desc[h].addr = gv_grant_to_dma(h + 1, 0);
		desc[h].len = 512;
		desc[h].flags = VRING_DESC_F_WRITE;
	}
}

static void driver_add(uint16_t head)
{
	AVAIL->ring[AVAIL->idx % QN] = head;
	AVAIL->idx++;
}

static void backend_start(struct gvbe_vq *vq)
{
	int rc = gvbe_vq_init(vq, &plat, 1, 0, QN, desc, AVAIL, USED, false, NULL);

	if (rc == 0) {
		vq->handler = hold;
		vq->handler_ctx = NULL;
	}
	memset(calls, 0, sizeof(calls));
	nheld = 0;
}

/* completes held request k (not yet published) */
static void complete(unsigned k)
{
	gvbe_req_complete(held[k], 0);
	held[k] = NULL;
}

/* a first backend on a fresh ring, with a record */
static void first_backend(struct gvbe_vq *vq)
{
	driver_reset();
	backend_start(vq);
	gvbe_vq_track(vq, REC);
}

/* completes every held request and publishes them */
static void complete_held(struct gvbe_vq *vq)
{
	for (unsigned k = 0; k < nheld; k++)
		complete(k);
	gvbe_vq_publish(vq);
}

/* the process dies: its memory goes, the guest's pages stay as they are */
static void backend_dies(struct gvbe_vq *vq)
{
	gvbe_vq_fini(vq);
}

static unsigned used_count(uint16_t head, uint16_t from, uint16_t to)
{
	unsigned n = 0;

	for (uint16_t i = from; i != to; i++)
		n += USED->ring[i % QN].id == head;
	return n;
}

static int t_fresh_record(void)
{
	struct gvbe_vq vq;

	driver_reset();
	memset(&rec_mem, 0xee, sizeof(rec_mem));
	backend_start(&vq);
	gvbe_vq_track(&vq, REC);
	CHECK_EQ(REC->num, QN);
	CHECK_EQ(REC->last_avail, 0);
	CHECK_EQ(REC->used_idx, 0);
	for (unsigned h = 0; h < QN; h++)
		CHECK_EQ(REC->head[h], 0);
	driver_add(3);
	CHECK_EQ(gvbe_vq_serve(&vq, QN), 1);
	CHECK_EQ(REC->head[3], 1);          /* marked before the device acted */
	CHECK_EQ(REC->last_avail, 1);
	complete(0);
	gvbe_vq_publish(&vq);
	CHECK_EQ(USED->idx, 1);
	CHECK_EQ(REC->head[3], 0);
	CHECK_EQ(REC->used_idx, 1);
	backend_dies(&vq);
	return 0;
}

/* Six requests taken; two published, one completed but not published, three
 * held; two more made available while no backend runs. */
static int t_takeover_serves_only_unpublished(void)
{
	struct gvbe_vq vq;

	first_backend(&vq);
	for (uint16_t h = 0; h < 6; h++)
		driver_add(h);
	CHECK_EQ(gvbe_vq_serve(&vq, QN), 6);
	complete(1);
	complete(3);
	gvbe_vq_publish(&vq);
	complete(4);                        /* in the used ring, idx not moved */
	backend_dies(&vq);
	CHECK_EQ(USED->idx, 2);
	driver_add(6);
	driver_add(7);

	backend_start(&vq);
	CHECK_EQ(gvbe_vq_recover(&vq, REC), 4);
	for (unsigned h = 0; h < QN; h++)
		CHECK_EQ(calls[h], (h == 0 || h == 2 || h == 4 || h == 5) ? 1u : 0u);
	CHECK_EQ(vq.recovered, 4);
	CHECK_EQ(gvbe_vq_serve(&vq, QN), 2);    /* the new ones, once each */
	CHECK_EQ(calls[6], 1);
	CHECK_EQ(calls[7], 1);
	complete_held(&vq);
	CHECK_EQ(USED->idx, 8);
	for (uint16_t h = 0; h < QN; h++)
		CHECK_EQ(used_count(h, 0, 8), 1);   /* every head completed exactly once */
	CHECK_EQ(REC->used_idx, 8);
	CHECK_EQ(REC->last_avail, 8);
	for (unsigned h = 0; h < QN; h++)
		CHECK_EQ(REC->head[h], 0);
	CHECK(!vq.broken);
	backend_dies(&vq);
	return 0;
}

/* Died after marking a head and before counting it taken: served once. */
static int t_takeover_died_while_taking(void)
{
	struct gvbe_vq vq;

	first_backend(&vq);
	driver_add(0);
	driver_add(1);
	CHECK_EQ(gvbe_vq_serve(&vq, QN), 2);
	backend_dies(&vq);
	driver_add(5);
	REC->head[5] = 1;                   /* marked, last_avail still 2 */

	backend_start(&vq);
	CHECK_EQ(gvbe_vq_recover(&vq, REC), 3);
	CHECK_EQ(calls[0] + calls[1] + calls[5], 3);
	CHECK_EQ(gvbe_vq_serve(&vq, QN), 0);    /* head 5 is not taken a second time */
	CHECK_EQ(calls[5], 1);
	CHECK_EQ(REC->last_avail, 3);
	complete_held(&vq);
	CHECK_EQ(USED->idx, 3);
	backend_dies(&vq);
	return 0;
}

/* Died between moving the used index and bringing the record up to date:
 * the published heads are not served again. */
static int t_takeover_died_while_publishing(void)
{
	struct gvbe_vq vq;

	first_backend(&vq);
	for (uint16_t h = 0; h < 4; h++)
		driver_add(h);
	CHECK_EQ(gvbe_vq_serve(&vq, QN), 4);
	complete(2);                        /* heads 2 and 0 in used[0], used[1] */
	complete(0);
	backend_dies(&vq);
	USED->idx = 2;                      /* the driver saw them; the record did not */
	CHECK_EQ(REC->used_idx, 0);
	CHECK_EQ(REC->head[0] + REC->head[2], 2);

	backend_start(&vq);
	CHECK_EQ(gvbe_vq_recover(&vq, REC), 2);
	CHECK_EQ(calls[0] + calls[2], 0);
	CHECK_EQ(calls[1] + calls[3], 2);
	CHECK_EQ(REC->used_idx, 2);
	/* and the driver, having seen head 0 complete, uses it again */
	driver_add(0);
	CHECK_EQ(gvbe_vq_serve(&vq, QN), 1);
	CHECK_EQ(calls[0], 1);
	complete_held(&vq);
	CHECK_EQ(USED->idx, 5);
	CHECK_EQ(used_count(0, 0, 5), 2);
	CHECK_EQ(used_count(1, 0, 5), 1);
	CHECK_EQ(used_count(2, 0, 5), 1);
	CHECK_EQ(used_count(3, 0, 5), 1);
	backend_dies(&vq);
	return 0;
}

/* A record in the state a first backend leaves: four taken, none done. */
static void four_in_flight(void)
{
	struct gvbe_vq vq;

	first_backend(&vq);
	for (uint16_t h = 0; h < 4; h++)
		driver_add(h);
	gvbe_vq_serve(&vq, QN);
	backend_dies(&vq);
}

static int expect_refused(const char *what)
{
	struct gvbe_vq vq;
	int rc;

	backend_start(&vq);
	rc = gvbe_vq_recover(&vq, REC);
	CHECK_MSG(rc == -EPROTO, "%s: recover returned %d", what, rc);
	CHECK_MSG(vq.broken && strstr(vq.why, "in-flight record"), "%s: why \"%s\"", what, vq.why);
	CHECK_EQ(nheld, 0);                 /* nothing served on a bad record */
	/* sticky, as any broken ring */
	CHECK_EQ(gvbe_vq_serve(&vq, QN), -EPROTO);
	backend_dies(&vq);
	return 0;
}

static int t_hostile_record(void)
{
	four_in_flight();
	REC->num = 64;
	CHECK_EQ(expect_refused("queue size"), 0);

	four_in_flight();
	REC->head[6] = 7;
	CHECK_EQ(expect_refused("head value"), 0);

	four_in_flight();
	REC->last_avail = 40000;
	CHECK_EQ(expect_refused("avail index"), 0);

	four_in_flight();
	REC->used_idx = 9;
	CHECK_EQ(expect_refused("used index"), 0);

	four_in_flight();
	REC->head[6] = 1;                   /* one more marked than taken */
	CHECK_EQ(expect_refused("marked count"), 0);

	four_in_flight();
	REC->head[1] = 0;                   /* one taken not marked */
	CHECK_EQ(expect_refused("marked count"), 0);

	four_in_flight();
	USED->ring[0].id = 0xffffff;        /* a used element that names no head */
	USED->idx = 1;
	CHECK_EQ(expect_refused("used head"), 0);
	return 0;
}

/* Random records and ring indices: the backend never crashes (ASan), and
 * whatever it accepts, it serves each head at most once and only heads
 * whose descriptors it parsed. */
static int t_garbage_records(void)
{
	unsigned accepted = 0, refused = 0;

	srand(4242);
	for (unsigned it = 0; it < 3000; it++) {
		struct gvbe_vq vq;
		int rc;

		four_in_flight();
		switch (it % 3) {
		case 0:
			for (unsigned k = 0; k < 8 + QN; k++)
				rec_mem.b[k] = (char)rand();
			break;
		case 1:
			rec_mem.b[rand() % (8 + QN)] = (char)rand();
			break;
		case 2:
			REC->head[rand() % QN] ^= 1;
			REC->last_avail = (uint16_t)(REC->last_avail + rand() % 3 - 1);
			USED->idx = (uint16_t)(rand() % 3);
			for (unsigned k = 0; k < QN; k++)
				USED->ring[k].id = (uint32_t)(rand() % (QN + 2));
			break;
		}
		backend_start(&vq);
		rc = gvbe_vq_recover(&vq, REC);
		if (rc < 0) {
			CHECK_EQ(rc, -EPROTO);
			CHECK(vq.why[0]);
			refused++;
		} else {
			CHECK_EQ((unsigned)rc, nheld);
			CHECK(nheld <= QN);
			for (unsigned h = 0; h < QN; h++)
				CHECK(calls[h] <= 1);
			complete_held(&vq);
			accepted++;
		}
		backend_dies(&vq);
	}
	printf("garbage records: %u accepted (served at most once each), %u refused\n",
	       accepted, refused);
	CHECK(accepted > 0 && refused > 0);
	return 0;
}

static const struct gv_test tests[] = {
	TEST(t_fresh_record),
	TEST(t_takeover_serves_only_unpublished),
	TEST(t_takeover_died_while_taking),
	TEST(t_takeover_died_while_publishing),
	TEST(t_hostile_record),
	TEST(t_garbage_records),
	{ 0 }
};

int main(int argc, char **argv)
{
	return gv_test_main(argc, argv, tests);
}
