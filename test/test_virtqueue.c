/*
 * test/test_virtqueue.c: unit tests of the driver side of the split
 * virtqueue (frontend/virtqueue.c) over the fake platform, with this test
 * playing a device that reads the avail ring and writes used elements,
 * hostile ones included: id out of range, id not in flight, used length
 * larger than the buffer, used index jumping: each breaks the queue, and
 * the broken state is sticky.
 */
#include <stdlib.h>
#include "check.h"
#include "../frontend/virtqueue.h"
#include "test_fe_fake.h"

struct env {
	struct fake_plat *f;
	struct gvfe_dma_dev d;
	struct gvfe_vq *vq;
	uint16_t dev_last_avail;    /* the device's cursor */
};

static int env_init(struct env *e, unsigned num)
{
	e->f = fake_new(false);
	e->dev_last_avail = 0;
	if (gvfe_dma_dev_init(&e->d, &e->f->p, 0, GVFE_DMA_GRANT, 0))
		return -1;
	if (gvfe_vq_create(&e->d, 0, num, &e->vq))
		return -1;
	e->vq->port = 3;
	return 0;
}

static void env_fini(struct env *e)
{
	gvfe_vq_destroy(e->vq);
	gvfe_dma_dev_destroy(&e->d);
	fake_free(e->f);
}

/* Device: next available head, or -1. */
static int dev_pop(struct env *e)
{
	struct gvfe_vq *vq = e->vq;

	if (__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE) == e->dev_last_avail)
		return -1;
	return vq->avail->ring[e->dev_last_avail++ & (vq->num - 1)];
}

static void dev_push(struct env *e, uint32_t id, uint32_t len)
{
	struct gvfe_vq *vq = e->vq;
	uint16_t idx = vq->used->idx;

	vq->used->ring[idx & (vq->num - 1)].id = id;
	vq->used->ring[idx & (vq->num - 1)].len = len;
	__atomic_store_n(&vq->used->idx, (uint16_t)(idx + 1), __ATOMIC_RELEASE);
}

static int t_add_and_complete(void)
{
	struct env e;
	struct gvfe_dma_seg sg[3] = { { 0x8000000000001000ULL, 16 }, { 0x8000000000002000ULL, 4096 },
	                            { 0x8000000000003000ULL, 1 } };
	void *tok;
	uint32_t len;
	int head, i;

	CHECK_EQ(env_init(&e, 8), 0);
	/* the areas: desc and avail read-only grants, used writable */
	CHECK_EQ(e.f->p.ctr.grants_active, 3);
	CHECK(e.f->region[0].flags & GV_GRANT_READONLY);
	CHECK(e.f->region[1].flags & GV_GRANT_READONLY);
	CHECK(!(e.f->region[2].flags & GV_GRANT_READONLY));
	CHECK_EQ(gvfe_vq_add(e.vq, sg, 2, 1, &e), 0);
	CHECK_EQ(gvfe_vq_num_free(e.vq), 5);
	CHECK_EQ(gvfe_vq_get_buf(e.vq, &tok, &len), 0);
	head = dev_pop(&e);
	CHECK(head >= 0);
	/* walk the chain as the device does */
	i = head;
	CHECK_EQ(e.vq->desc[i].addr, sg[0].addr);
	CHECK_EQ(e.vq->desc[i].flags, VRING_DESC_F_NEXT);
	i = e.vq->desc[i].next;
	CHECK_EQ(e.vq->desc[i].len, 4096);
	CHECK_EQ(e.vq->desc[i].flags, VRING_DESC_F_NEXT);
	i = e.vq->desc[i].next;
	CHECK_EQ(e.vq->desc[i].flags, VRING_DESC_F_WRITE);
	CHECK_EQ(e.vq->desc[i].len, 1);
	dev_push(&e, (uint32_t)head, 1);
	CHECK_EQ(gvfe_vq_get_buf(e.vq, &tok, &len), 1);
	CHECK(tok == &e);
	CHECK_EQ(len, 1);
	CHECK_EQ(gvfe_vq_num_free(e.vq), 8);
	CHECK_EQ(gvfe_vq_get_buf(e.vq, &tok, &len), 0);
	env_fini(&e);
	return 0;
}

static int t_full_queue_out_of_order(void)
{
	struct env e;
	struct gvfe_dma_seg sg[2] = { { 0x8000000000001000ULL, 16 }, { 0x8000000000002000ULL, 512 } };
	int tokens[64], heads[64], n = 0;
	void *tok;
	uint32_t len;

	CHECK_EQ(env_init(&e, 64), 0);
	/* 32 two-descriptor chains fill a 64-entry queue */
	for (int i = 0; i < 40; i++) {
		int rc = gvfe_vq_add(e.vq, sg, 1, 1, &tokens[i]);

		if (rc == -ENOSPC)
			break;
		CHECK_EQ(rc, 0);
		n++;
	}
	CHECK_EQ(n, 32);
	CHECK_EQ(gvfe_vq_in_flight(e.vq), 32);
	CHECK_EQ(gvfe_vq_num_free(e.vq), 0);
	for (int i = 0; i < n; i++)
		heads[i] = dev_pop(&e);
	CHECK_EQ(dev_pop(&e), -1);
	/* complete in reverse order, several rounds of the ring */
	for (int round = 0; round < 5; round++) {
		for (int i = n - 1; i >= 0; i--)
			dev_push(&e, (uint32_t)heads[i], 512);
		for (int i = n - 1; i >= 0; i--) {
			CHECK_EQ(gvfe_vq_get_buf(e.vq, &tok, &len), 1);
			CHECK(tok >= (void *)&tokens[0] && tok < (void *)&tokens[n]);
			CHECK_EQ(len, 512);
		}
		CHECK_EQ(gvfe_vq_num_free(e.vq), 64);
		for (int i = 0; i < n; i++)
			CHECK_EQ(gvfe_vq_add(e.vq, sg, 1, 1, &tokens[i]), 0);
		for (int i = 0; i < n; i++) {
			heads[i] = dev_pop(&e);
			CHECK(heads[i] >= 0 && heads[i] < 64);
		}
	}
	CHECK(!e.vq->broken);
	env_fini(&e);
	return 0;
}

static int t_kick_suppression(void)
{
	struct env e;
	struct gvfe_dma_seg sg = { 0x8000000000001000ULL, 16 };
	int tok;

	CHECK_EQ(env_init(&e, 4), 0);
	CHECK_EQ(gvfe_vq_add(e.vq, &sg, 1, 0, &tok), 0);
	CHECK_EQ(gvfe_vq_kick(e.vq, &e.f->p), 0);
	CHECK_EQ(e.f->notifies[3], 1);
	e.vq->used->flags = VRING_USED_F_NO_NOTIFY;     /* the device is polling */
	CHECK_EQ(gvfe_vq_add(e.vq, &sg, 1, 0, &tok), 0);
	CHECK_EQ(gvfe_vq_kick(e.vq, &e.f->p), 0);
	CHECK_EQ(e.f->notifies[3], 1);
	CHECK_EQ(e.vq->stats.kicks_suppressed, 1);
	/* completions: enable_cb re-checks and reports work that arrived */
	gvfe_vq_disable_cb(e.vq);
	CHECK_EQ(e.vq->avail->flags, VRING_AVAIL_F_NO_INTERRUPT);
	CHECK(gvfe_vq_enable_cb(e.vq));
	CHECK_EQ(e.vq->avail->flags, 0);
	dev_push(&e, (uint32_t)dev_pop(&e), 0);
	CHECK(!gvfe_vq_enable_cb(e.vq));
	env_fini(&e);
	return 0;
}

/* VIRTIO_RING_F_EVENT_IDX: the device's avail_event decides the kick, the
 * driver's used_event asks for interrupts; the flags stay untouched. */
static int t_event_idx(void)
{
	struct env e;
	struct gvfe_dma_seg sg = { 0x8000000000001000ULL, 16 };
	uint16_t *avail_event, *used_event;
	void *got;
	uint32_t len;
	int tok;

	CHECK_EQ(env_init(&e, 8), 0);
	gvfe_vq_use_event_idx(e.vq);
	avail_event = (uint16_t *)&e.vq->used->ring[8];
	used_event = &e.vq->avail->ring[8];
	*avail_event = 0;                   /* the device wants to hear of index 1 */
	CHECK_EQ(gvfe_vq_add(e.vq, &sg, 1, 0, &tok), 0);
	CHECK_EQ(gvfe_vq_kick(e.vq, &e.f->p), 0);
	CHECK_EQ(e.f->notifies[3], 1);
	*avail_event = 5;                   /* ... and next of index 6 */
	CHECK_EQ(gvfe_vq_add(e.vq, &sg, 1, 0, &tok), 0);
	CHECK_EQ(gvfe_vq_kick(e.vq, &e.f->p), 0);
	CHECK_EQ(e.f->notifies[3], 1);      /* index 2: not asked for */
	CHECK_EQ(e.vq->stats.kicks_suppressed, 1);
	for (int i = 0; i < 4; i++)         /* indexes 3..6 with one kick: it crosses 6 */
		CHECK_EQ(gvfe_vq_add(e.vq, &sg, 1, 0, &tok), 0);
	CHECK_EQ(gvfe_vq_kick(e.vq, &e.f->p), 0);
	CHECK_EQ(e.f->notifies[3], 2);
	CHECK_EQ(e.vq->avail->flags, 0);
	/* interrupts: disabled is an event behind last_used, enabled is last_used */
	gvfe_vq_disable_cb(e.vq);
	CHECK_EQ(*used_event, 0xffff);
	CHECK_EQ(e.vq->avail->flags, 0);
	CHECK(gvfe_vq_enable_cb(e.vq));
	CHECK_EQ(*used_event, 0);
	dev_push(&e, (uint32_t)dev_pop(&e), 0);
	CHECK(!gvfe_vq_enable_cb(e.vq));    /* a completion arrived: reap first */
	CHECK_EQ(gvfe_vq_get_buf(e.vq, &got, &len), 1);
	CHECK(got == &tok);
	CHECK(gvfe_vq_enable_cb(e.vq));
	CHECK_EQ(*used_event, 1);
	CHECK_EQ(e.vq->avail->flags, 0);
	env_fini(&e);
	return 0;
}

/* VIRTIO_RING_F_INDIRECT_DESC: a long chain, or one the ring has no room
 * for, takes one ring descriptor and a granted table; the device finds the
 * buffers in the table; completion frees the table. */
static int t_indirect(void)
{
	struct env e;
	struct gvfe_dma_seg sg[10];
	struct vring_desc *tbl;
	int tok[10];
	void *got;
	uint32_t len;
	int head;

	CHECK_EQ(env_init(&e, 16), 0);
	CHECK_EQ(gvfe_vq_use_indirect(e.vq, 2), 0);
	CHECK_EQ(gvfe_vq_chain_room(e.vq), 16);
	for (unsigned k = 0; k < 10; k++)
		sg[k] = (struct gvfe_dma_seg){ 0x8000000000001000ULL + k * 0x1000, 512 };
	/* 10 buffers, at least GVFE_VQ_INDIRECT_MIN: through table 0, one descriptor */
	CHECK_EQ(gvfe_vq_add(e.vq, sg, 1, 9, &tok[0]), 0);
	CHECK_EQ(gvfe_vq_num_free(e.vq), 15);
	CHECK_EQ(e.vq->stats.indirect, 1);
	head = dev_pop(&e);
	CHECK(head >= 0);
	CHECK_EQ(e.vq->desc[head].flags, VRING_DESC_F_INDIRECT);
	CHECK_EQ(e.vq->desc[head].len, 10 * sizeof(struct vring_desc));
	tbl = (struct vring_desc *)fake_dma_byte(e.f, e.vq->desc[head].addr, 0);
	CHECK(tbl != NULL);
	CHECK_EQ(fake_region_of_dma(e.f, e.vq->desc[head].addr)->flags, GV_GRANT_READONLY);
	for (unsigned k = 0; k < 10; k++) {
		CHECK_EQ(tbl[k].addr, sg[k].addr);
		CHECK_EQ(tbl[k].len, 512);
		CHECK_EQ(tbl[k].flags, (k ? VRING_DESC_F_WRITE : 0) | (k < 9 ? VRING_DESC_F_NEXT : 0));
		CHECK_EQ(tbl[k].next, k < 9 ? k + 1 : 0);
	}
	/* short chains with room stay direct */
	for (int i = 1; i <= 4; i++)
		CHECK_EQ(gvfe_vq_add(e.vq, sg, 1, 2, &tok[i]), 0);
	CHECK_EQ(gvfe_vq_add(e.vq, sg, 1, 0, &tok[5]), 0);
	CHECK_EQ(gvfe_vq_num_free(e.vq), 2);
	CHECK_EQ(e.vq->stats.indirect, 1);
	/* 3 buffers, 2 descriptors left: table 1 */
	CHECK_EQ(gvfe_vq_chain_room(e.vq), 16);
	CHECK_EQ(gvfe_vq_add(e.vq, sg, 1, 2, &tok[6]), 0);
	CHECK_EQ(gvfe_vq_num_free(e.vq), 1);
	CHECK_EQ(e.vq->stats.indirect, 2);
	/* no table left: only the ring's one descriptor */
	CHECK_EQ(gvfe_vq_chain_room(e.vq), 1);
	CHECK_EQ(gvfe_vq_add(e.vq, sg, 1, 2, &tok[7]), -ENOSPC);
	/* the device completes the first chain: its table is free again, and
	 * the used length is bounded by the table's writable bytes */
	dev_push(&e, (uint32_t)head, 9 * 512);
	CHECK_EQ(gvfe_vq_get_buf(e.vq, &got, &len), 1);
	CHECK(got == &tok[0]);
	CHECK_EQ(len, 9 * 512);
	CHECK_EQ(gvfe_vq_num_free(e.vq), 2);
	CHECK_EQ(gvfe_vq_chain_room(e.vq), 16);
	CHECK_EQ(gvfe_vq_add(e.vq, sg, 1, 9, &tok[8]), 0);
	CHECK_EQ(e.vq->stats.indirect, 3);
	CHECK(!e.vq->broken);
	env_fini(&e);
	return 0;
}

/* A hostile device: each misbehaviour breaks the queue, sticky. */
static int hostile(int kind)
{
	struct env e;
	struct gvfe_dma_seg sg[2] = { { 0x8000000000001000ULL, 16 }, { 0x8000000000002000ULL, 100 } };
	int tokens[4];
	void *tok = NULL;
	uint32_t len = 0;
	int head;

	CHECK_EQ(env_init(&e, 8), 0);
	CHECK_EQ(gvfe_vq_add(e.vq, sg, 1, 1, &tokens[0]), 0);
	CHECK_EQ(gvfe_vq_add(e.vq, sg, 1, 1, &tokens[1]), 0);
	head = dev_pop(&e);
	switch (kind) {
	case 0:	/* id out of range */
		dev_push(&e, 8, 0);
		break;
	case 1:	/* id in range but not a chain in flight (a chain's 2nd desc) */
		dev_push(&e, (uint32_t)head + 1, 0);
		break;
	case 2:	/* used length larger than the device-writable bytes */
		dev_push(&e, (uint32_t)head, 101);
		break;
	case 3:	/* the same id twice: the second is no longer in flight */
		dev_push(&e, (uint32_t)head, 100);
		dev_push(&e, (uint32_t)head, 100);
		CHECK_EQ(gvfe_vq_get_buf(e.vq, &tok, &len), 1);
		CHECK(tok == &tokens[0]);
		break;
	case 4:	/* used index moved past what is in flight */
		e.vq->used->idx = 5;
		break;
	}
	CHECK_EQ(gvfe_vq_get_buf(e.vq, &tok, &len), -EIO);
	CHECK(e.vq->broken);
	/* sticky: even a now-valid element is refused, and nothing is added */
	e.vq->used->idx = kind == 3 ? 1 : 0;
	if (kind != 3)
		dev_push(&e, (uint32_t)head, 1);
	CHECK_EQ(gvfe_vq_get_buf(e.vq, &tok, &len), -EIO);
	CHECK_EQ(gvfe_vq_add(e.vq, sg, 1, 1, &tokens[2]), -EIO);
	CHECK_EQ(gvfe_vq_kick(e.vq, &e.f->p), -EIO);
	/* after the device stopped, the in-flight chains come back once each */
	{
		int got = 0;

		while ((tok = gvfe_vq_detach_unused(e.vq)))
			got++;
		CHECK_EQ(got, kind == 3 ? 1 : 2);
		CHECK_EQ(gvfe_vq_num_free(e.vq), 8);
	}
	env_fini(&e);
	return 0;
}

static int t_hostile_id_out_of_range(void) { return hostile(0); }
static int t_hostile_id_not_in_flight(void) { return hostile(1); }
static int t_hostile_len_too_large(void) { return hostile(2); }
static int t_hostile_id_twice(void) { return hostile(3); }
static int t_hostile_used_idx_jump(void) { return hostile(4); }

static int t_bad_args(void)
{
	struct env e;
	struct gvfe_dma_seg sg[9] = { { 0x8000000000001000ULL, 16 } };
	struct gvfe_vq *vq;
	int tok;

	CHECK_EQ(gvfe_vq_create(NULL, 0, 6, &vq), -EINVAL);
	CHECK_EQ(env_init(&e, 8), 0);
	CHECK_EQ(gvfe_vq_add(e.vq, sg, 1, 0, NULL), -EINVAL);
	CHECK_EQ(gvfe_vq_add(e.vq, sg, 9, 0, &tok), -EINVAL);
	CHECK_EQ(gvfe_vq_add(e.vq, sg, 0, 0, &tok), -EINVAL);
	CHECK(!e.vq->broken);
	/* destroy ends every grant of the areas */
	gvfe_vq_destroy(e.vq);
	e.vq = NULL;
	CHECK_EQ(e.f->p.ctr.grants_active, 0);
	env_fini(&e);
	return 0;
}

static const struct gv_test tests[] = {
	TEST(t_add_and_complete),
	TEST(t_full_queue_out_of_order),
	TEST(t_kick_suppression),
	TEST(t_event_idx),
	TEST(t_indirect),
	TEST(t_hostile_id_out_of_range),
	TEST(t_hostile_id_not_in_flight),
	TEST(t_hostile_len_too_large),
	TEST(t_hostile_id_twice),
	TEST(t_hostile_used_idx_jump),
	TEST(t_bad_args),
	{ 0 }
};

int main(int argc, char **argv)
{
	return gv_test_main(argc, argv, tests);
}
