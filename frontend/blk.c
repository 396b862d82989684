/*
 * frontend/blk.c: the virtio-blk driver (virtio 1.x 5.2), in the manner of
 * Linux's drivers/block/virtio_blk.c: each request is a device-readable
 * header, the data segments, a device-writable status byte. A caller's
 * request larger than the device's limits is issued as several virtio
 * requests ("chunks"); chunks go out while the ring, the chunk table and
 * the DMA pool have room, the rest as completions free it.
 *
 * Headers and status bytes live in one coherent allocation, one 32-byte
 * slot per chunk; the status byte is written by the backend, so it is read
 * once and only the copy is judged.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "barrier.h"
#include "device.h"
#include "log.h"
#include "xs_keys.h"
#include "xs_util.h"

#define CHUNK_CAP (1u << 20)    /* at most 1 MiB per virtio request */

/* One virtio-blk request on the ring: a piece of a struct gv_blk_io. */
struct blk_chunk {
	struct gv_blk_io *io;
	size_t len;                 /* data bytes */
	struct gvfe_dma_map map;
	bool mapped;
	unsigned index;             /* its header slot */
	struct blk_chunk *next_free;
};

/* Header slot in coherent memory: device-readable outhdr (and, for DISCARD
 * and WRITE_ZEROES, the one range right after it), device-writable status. */
struct blk_hdr_slot {
	struct virtio_blk_outhdr hdr;
	struct virtio_blk_discard_write_zeroes range;
	uint8_t status;
	uint8_t pad[15];
};

/* The driver's state (d->drv_priv). */
struct blk {
	struct {                    /* the device's configuration keys */
		uint64_t capacity;
		unsigned blk_size, seg_max, size_max;
		bool ro;
		unsigned max_discard_sectors, max_discard_seg, discard_align;
		unsigned max_wz_sectors, max_wz_seg;
		bool wz_may_unmap;
	} cfg;
	unsigned seg_limit;
	size_t chunk_max;
	struct blk_queue {          /* one per virtqueue */
		struct gvfe_dma_coherent hdrs;
		struct blk_chunk *chunks, *free_chunks;
		struct gv_blk_io *pend_head, *pend_tail;
		struct gvfe_dma_seg *segs;
	} q[GVFE_MAX_QUEUES];
};

static struct blk *blk_of(const struct gv_device *d)
{
	return d->drv_priv;
}

static int blk_probe(struct gv_device *d, char *err, size_t errlen)
{
	/* after a restore the state is kept (the requests waiting in it) and
	 * only the configuration is read again, from the new backend */
	struct blk *b = d->drv_priv ? d->drv_priv : calloc(1, sizeof(*b));
	uint64_t v;
	int rc;

	if (!b) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	d->drv_priv = b;
#define RD(key, max, dst, required) do { \
		rc = gvfe_dev_read_be_u64(d, key, max, required, &v, err, errlen); \
		if (rc < 0) \
			return rc; \
		if (rc) \
			dst = v; \
	} while (0)
	RD(GV_XS_CFG_CAPACITY, UINT64_MAX >> 9, b->cfg.capacity, true);
	RD(GV_XS_CFG_BLK_SIZE, 1u << 20, b->cfg.blk_size, false);
	RD(GV_XS_CFG_SEG_MAX, 65536, b->cfg.seg_max, false);
	RD(GV_XS_CFG_SIZE_MAX, UINT32_MAX, b->cfg.size_max, false);
	RD(GV_XS_CFG_MAX_DISCARD_SECTORS, UINT32_MAX, b->cfg.max_discard_sectors, false);
	RD(GV_XS_CFG_MAX_DISCARD_SEG, UINT32_MAX, b->cfg.max_discard_seg, false);
	RD(GV_XS_CFG_DISCARD_ALIGNMENT, UINT32_MAX, b->cfg.discard_align, false);
	RD(GV_XS_CFG_MAX_WZ_SECTORS, UINT32_MAX, b->cfg.max_wz_sectors, false);
	RD(GV_XS_CFG_MAX_WZ_SEG, UINT32_MAX, b->cfg.max_wz_seg, false);
	RD(GV_XS_CFG_WZ_MAY_UNMAP, 1, b->cfg.wz_may_unmap, false);
#undef RD
	return 0;
}

/* Online resize: the capacity is the one configuration key that changes. */
static int blk_config_changed(struct gv_device *d)
{
	uint64_t v;
	int rc = gv_xs_read_u64(d->xs, XBT_NULL, d->be_dir, GV_XS_CFG_CAPACITY, UINT64_MAX >> 9, &v);

	if (rc < 0)
		return rc;
	blk_of(d)->cfg.capacity = v;
	return 0;
}

static int blk_setup(struct gv_device *d)
{
	struct blk *b = blk_of(d);
	unsigned num = d->q[0].vq->num, unit = GV_PAGE_SIZE;
	size_t cap;
	int rc;

	b->cfg.ro = d->drv_features & (1ULL << VIRTIO_BLK_F_RO);
	if ((d->drv_features & (1ULL << VIRTIO_BLK_F_SIZE_MAX)) && b->cfg.size_max >= 512)
		d->dma.max_seg_len = b->cfg.size_max;
	b->seg_limit = num - 2;
	if ((d->drv_features & (1ULL << VIRTIO_BLK_F_SEG_MAX)) && b->cfg.seg_max &&
	    b->cfg.seg_max < b->seg_limit)
		b->seg_limit = b->cfg.seg_max;
	if (b->seg_limit > 256)
		b->seg_limit = 256;
	if (d->dma.max_seg_len < unit)
		unit = d->dma.max_seg_len & ~511u;
	/* Worst case every page is its own segment and the buffer starts
	 * mid-page: seg_limit - 1 full units always fit. */
	b->chunk_max = (size_t)(b->seg_limit > 1 ? b->seg_limit - 1 : 1) * unit;
	if (b->chunk_max > CHUNK_CAP)
		b->chunk_max = CHUNK_CAP;
	cap = (size_t)d->dma.pool.npages * GV_PAGE_SIZE / 4;
	if (d->dma.pool.npages && b->chunk_max > cap)
		b->chunk_max = cap;     /* several chunks fit the bounce pool at once */
	b->chunk_max &= ~(size_t)511;
	if (b->chunk_max < 512)
		b->chunk_max = 512;

	/* Each queue its own header slots, chunks and waiting list (every
	 * queue has the same size): queues share nothing but the DMA pool. */
	for (unsigned qi = 0; qi < d->nq; qi++) {
		struct blk_queue *bq = &b->q[qi];

		bq->chunks = calloc(num, sizeof(*bq->chunks));
		bq->segs = calloc(b->seg_limit + 2, sizeof(*bq->segs));
		if (!bq->chunks || !bq->segs)
			return -ENOMEM;     /* blk_teardown frees what was allocated */
		rc = gvfe_dma_alloc_coherent(&d->dma, (size_t)num * sizeof(struct blk_hdr_slot),
		                             false, &bq->hdrs);
		if (rc < 0)
			return rc;
		for (unsigned i = num; i-- > 0;) {
			bq->chunks[i].index = i;
			bq->chunks[i].next_free = bq->free_chunks;
			bq->free_chunks = &bq->chunks[i];
		}
	}
	return 0;
}

/* Undoes setup: the headers' grants and the chunk table (every chunk is
 * free: completed, failed or requeued). */
static void blk_unsetup(struct gv_device *d)
{
	struct blk *b = blk_of(d);

	if (!b)
		return;
	for (unsigned qi = 0; qi < GVFE_MAX_QUEUES; qi++) {
		struct blk_queue *bq = &b->q[qi];

		if (bq->hdrs.npages)
			gvfe_dma_free_coherent(&d->dma, &bq->hdrs);
		free(bq->segs);
		free(bq->chunks);
		bq->segs = NULL;
		bq->chunks = NULL;
		bq->free_chunks = NULL;
	}
}

static void blk_teardown(struct gv_device *d)
{
	struct blk *b = blk_of(d);

	if (!b)
		return;
	blk_unsetup(d);
	free(b);
	d->drv_priv = NULL;
}

static bool blk_pending(const struct gv_device *d)
{
	for (unsigned qi = 0; qi < d->nq; qi++)
		if (blk_of(d)->q[qi].pend_head)
			return true;
	return false;
}

static void blk_info(const struct gv_device *d, struct gv_device_info *i)
{
	const struct blk *b = blk_of(d);

	i->capacity = b->cfg.capacity;
	i->blk_size = b->cfg.blk_size;
	i->seg_max = b->cfg.seg_max;
	i->size_max = b->cfg.size_max;
	i->read_only = b->cfg.ro;
	i->max_discard_sectors = b->cfg.max_discard_sectors;
	i->max_discard_seg = b->cfg.max_discard_seg;
	i->discard_sector_alignment = b->cfg.discard_align;
	i->max_write_zeroes_sectors = b->cfg.max_wz_sectors;
	i->max_write_zeroes_seg = b->cfg.max_wz_seg;
	i->write_zeroes_may_unmap = b->cfg.wz_may_unmap;
}

static struct blk_hdr_slot *hdr_of(struct blk_queue *bq, const struct blk_chunk *ch)
{
	return (struct blk_hdr_slot *)bq->hdrs.cpu + ch->index;
}

static void io_finish_if_done(struct gv_device *d, unsigned qi, struct gv_blk_io *io)
{
	if (io->chunks || io->queued)
		return;
	d->st.requests++;
	if (io->result)
		d->st.request_errors++;
	gvfe_dev_finished(d, qi, io);   /* its callback runs outside the lock */
}

static void pend_pop(struct blk_queue *bq)
{
	struct gv_blk_io *io = bq->pend_head;

	bq->pend_head = io->next;
	if (!bq->pend_head)
		bq->pend_tail = NULL;
	io->next = NULL;
	io->queued = false;
}

/* Gives up on the head request: what is in flight still completes. */
static void pend_fail_head(struct gv_device *d, unsigned qi, int err)
{
	struct blk_queue *bq = &blk_of(d)->q[qi];
	struct gv_blk_io *io = bq->pend_head;

	if (!io->result)
		io->result = err;
	pend_pop(bq);
	io_finish_if_done(d, qi, io);
}

static void blk_complete(struct gv_device *d, unsigned qi, void *token, uint32_t len, int err)
{
	struct blk_queue *bq = &blk_of(d)->q[qi];
	struct blk_chunk *ch = token;
	struct gv_blk_io *io = ch->io;
	uint8_t status;

	(void)len;
	if (ch->mapped) {
		int rc = gvfe_dma_unmap(&d->dma, &ch->map);

		ch->mapped = false;
		if (rc < 0 && !err) {
			err = -EIO;
			gvfe_dev_fail(d, "a data grant could not be ended: %s", strerror(-rc));
		}
	}
	if (!err) {
		/* The status byte is backend-written: read it once. */
		status = gv_read_once(&hdr_of(bq, ch)->status);
		switch (status) {
		case VIRTIO_BLK_S_OK:
			break;
		case VIRTIO_BLK_S_UNSUPP:
			err = -EOPNOTSUPP;
			break;
		default:        /* IOERR, or a value no device should write */
			err = -EIO;
			break;
		}
	}
	if (err && !io->result)
		io->result = err;
	io->finished += ch->len;
	io->chunks--;
	ch->io = NULL;
	ch->next_free = bq->free_chunks;
	bq->free_chunks = ch;
	io_finish_if_done(d, qi, io);
}

/* A chunk in flight on a ring that will never complete it (the domain was
 * restored in a new one): its mapping is released and its whole request
 * goes back to the head of the queue, to be issued again from its start
 * (chunks of it that did complete are read or written again: block
 * requests may be repeated). */
static void blk_requeue(struct gv_device *d, unsigned qi, void *token)
{
	struct blk_queue *bq = &blk_of(d)->q[qi];
	struct blk_chunk *ch = token;
	struct gv_blk_io *io = ch->io;

	if (ch->mapped) {
		/* its grants went with the old table: the end succeeds (a
		 * bounce slot is simply freed) */
		gvfe_dma_unmap(&d->dma, &ch->map);
		ch->mapped = false;
	}
	io->chunks--;
	ch->io = NULL;
	ch->next_free = bq->free_chunks;
	bq->free_chunks = ch;
	io->issued = io->finished = 0;
	if (!io->queued) {
		/* to its own queue's waiting list: the thread that owns the
		 * queue is the one that polls for it */
		io->queued = true;
		io->next = bq->pend_head;
		bq->pend_head = io;
		if (!bq->pend_tail)
			bq->pend_tail = io;
	}
}

/* Issues as much of the pending requests as there is room for. */
static void blk_pump(struct gv_device *d, unsigned qi)
{
	struct blk *b = blk_of(d);
	struct blk_queue *bq = &b->q[qi];
	struct gvfe_vq *vq = d->q[qi].vq;
	bool added = false;

	while (bq->pend_head) {
		struct gv_blk_io *io = bq->pend_head;
		struct blk_chunk *ch;
		struct blk_hdr_slot *h;
		bool range = io->op == GV_BLK_DISCARD || io->op == GV_BLK_WRITE_ZEROES;
		enum gvfe_dma_dir dir = io->op == GV_BLK_WRITE || range ? GVFE_DMA_TO_DEVICE
		                        : GVFE_DMA_FROM_DEVICE;
		size_t len = io->len - io->issued;
		unsigned nsegs = 0, max_segs, nfree;
		int rc;

		if (d->broken || !vq || vq->broken) {
			pend_fail_head(d, qi, -EIO);
			continue;
		}
		nfree = gvfe_vq_chain_room(vq);    /* an indirect table's, or the ring's */
		if (!bq->free_chunks || nfree < (len && !range ? 3u : 2u))
			break;
		if (range) {
			/* one range per virtio request, at most the device's sectors */
			uint64_t max = (uint64_t)(io->op == GV_BLK_DISCARD ? b->cfg.max_discard_sectors
			                                                   : b->cfg.max_wz_sectors) * 512;

			if (!max || max > (uint64_t)UINT32_MAX * 512)
				max = (uint64_t)(UINT32_MAX & ~7u) * 512;
			if (len > max)
				len = max;
		} else if (len > b->chunk_max)
			len = b->chunk_max;
		ch = bq->free_chunks;
		if (len && !range) {
			max_segs = nfree - 2 < b->seg_limit ? nfree - 2 : b->seg_limit;
			for (;;) {
				rc = gvfe_dma_map(&d->dma, (uint8_t *)io->buf + io->issued, len, dir,
				                  &ch->map, bq->segs + 1, max_segs, &nsegs);
				/* Too many segments or larger than the pool: a smaller
				 * piece (requests are split in 512-byte units). */
				if ((rc == -E2BIG && max_segs == b->seg_limit) || rc == -ENOMEM) {
					if (len > 512 && io->op != GV_BLK_GET_ID) {
						len = (len / 2 + 511) & ~(size_t)511;
						continue;
					}
				}
				break;
			}
			if (rc == -E2BIG || rc == -EAGAIN) {
				/* Room comes back with completions; with nothing in
				 * flight it never will (the pool is held elsewhere). */
				if (gvfe_vq_in_flight(vq))
					break;
				pend_fail_head(d, qi, -ENOMEM);
				continue;
			}
			if (rc < 0) {
				pend_fail_head(d, qi, rc);
				continue;
			}
			ch->mapped = true;
		}
		h = hdr_of(bq, ch);
		h->hdr.type = (uint32_t)io->op;
		h->hdr.ioprio = 0;
		h->hdr.sector = io->sector + io->issued / 512;
		h->status = 0xff;       /* no device writes this: catches a missing status */
		bq->segs[0].addr = gvfe_dma_coherent_addr(&d->dma, &bq->hdrs,
		                                         ch->index * sizeof(struct blk_hdr_slot));
		bq->segs[0].len = sizeof(struct virtio_blk_outhdr);
		if (range) {
			/* the header and its range: 32 device-readable bytes */
			h->range.sector = h->hdr.sector;
			h->range.num_sectors = (uint32_t)(len / 512);
			h->range.flags = io->op == GV_BLK_WRITE_ZEROES &&
			                 (io->flags & GV_BLK_ZEROES_UNMAP)
			                 ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
			h->hdr.sector = 0;
			bq->segs[0].len += sizeof(h->range);
		}
		bq->segs[1 + nsegs].addr = gvfe_dma_coherent_addr(&d->dma, &bq->hdrs,
			ch->index * sizeof(struct blk_hdr_slot) + offsetof(struct blk_hdr_slot, status));
		bq->segs[1 + nsegs].len = 1;
		if (!gvfe_vq_in_flight(vq))
			gvfe_dev_started_io(d);
		rc = gvfe_vq_add(vq, bq->segs, dir == GVFE_DMA_TO_DEVICE ? 1 + nsegs : 1,
		                 dir == GVFE_DMA_TO_DEVICE ? 1 : nsegs + 1, ch);
		if (rc < 0) {
			if (ch->mapped)
				gvfe_dma_unmap(&d->dma, &ch->map);
			ch->mapped = false;
			if (rc == -ENOSPC)
				break;
			pend_fail_head(d, qi, rc);
			continue;
		}
		bq->free_chunks = ch->next_free;
		ch->io = io;
		ch->len = len;
		io->issued += len;
		io->chunks++;
		added = true;
		if (io->issued == io->len)
			pend_pop(bq);
	}
	if (added && gvfe_vq_kick(vq, d->p) < 0 && !d->broken)
		gvfe_dev_fail(d, "cannot notify the backend");
}

static int submit_locked(struct gv_device *d, unsigned qi, struct gv_blk_io *io)
{
	struct blk *b = blk_of(d);
	struct blk_queue *bq = &b->q[qi];
	uint64_t sectors;

	if (d->broken || d->closing)
		return -EIO;
	switch (io->op) {
	case GV_BLK_READ:
	case GV_BLK_WRITE:
		if (!io->len || io->len % 512 || !io->buf)
			return -EINVAL;
		sectors = io->len / 512;
		if (io->sector > b->cfg.capacity || sectors > b->cfg.capacity - io->sector)
			return -ENOSPC;
		if (io->op == GV_BLK_WRITE && b->cfg.ro)
			return -EROFS;
		break;
	case GV_BLK_FLUSH:
		if (io->len)
			return -EINVAL;
		if (!(d->drv_features & (1ULL << VIRTIO_BLK_F_FLUSH)))
			return -EOPNOTSUPP;
		break;
	case GV_BLK_GET_ID:
		if (io->len != VIRTIO_BLK_ID_BYTES || !io->buf)
			return -EINVAL;
		break;
	case GV_BLK_DISCARD:
	case GV_BLK_WRITE_ZEROES:
		if (!(d->drv_features & (1ULL << (io->op == GV_BLK_DISCARD ? VIRTIO_BLK_F_DISCARD
		                                                           : VIRTIO_BLK_F_WRITE_ZEROES))))
			return b->cfg.ro ? -EROFS : -EOPNOTSUPP;
		if (!io->len || io->len % 512 || (io->flags & ~GV_BLK_ZEROES_UNMAP))
			return -EINVAL;
		sectors = io->len / 512;
		if (io->sector > b->cfg.capacity || sectors > b->cfg.capacity - io->sector)
			return -ENOSPC;
		break;
	default:
		return -EINVAL;
	}
	io->result = 0;
	io->issued = io->finished = 0;
	io->chunks = 0;
	io->next = NULL;
	io->queued = true;
	if (bq->pend_tail)
		bq->pend_tail->next = io;
	else
		bq->pend_head = io;
	bq->pend_tail = io;
	blk_pump(d, qi);
	return 0;
}

int gv_blk_submit_queue(struct gv_device *d, unsigned q, struct gv_blk_io *io)
{
	int rc;

	if (d->drv != &gvfe_blk_driver)
		return -ENOTBLK;
	if (q >= d->nq)
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	rc = submit_locked(d, q, io);
	/* a piece that failed at once: its callback runs here */
	gvfe_dev_unlock_run_done(d, (int)q);
	return rc;
}

int gv_blk_submit(struct gv_device *d, struct gv_blk_io *io)
{
	return gv_blk_submit_queue(d, 0, io);
}

static void sync_done(struct gv_blk_io *io)
{
	*(bool *)io->priv = true;
}

/* Submits io on queue 0 and polls until it completes: the synchronous
 * calls (grant_virtio.h: the thread that owns queue 0 may call them). */
static int submit_wait(struct gv_device *d, struct gv_blk_io *io, bool *done)
{
	int rc;

	*done = false;
	io->done = sync_done;
	io->priv = done;
	rc = gv_blk_submit(d, io);
	if (rc < 0)
		return rc;
	while (!*done) {
		rc = gvfe_dev_poll(d, 0, -1);
		if (rc < 0 && !*done)
			return rc;      /* broken: callbacks ran, but not ours? defensive */
	}
	return io->result;
}

static int blk_sync(struct gv_device *d, enum gv_blk_op op, uint64_t sector, void *buf,
                    size_t len)
{
	struct gv_blk_io io = { .op = op, .sector = sector, .buf = buf, .len = len };
	bool done;

	return submit_wait(d, &io, &done);
}

/* A bounce buffer for unaligned I/O: from the pool when there is one, so
 * the pool strategy stays zero-copy below this one copy. */
static void *tmp_alloc(struct gv_device *d, size_t len, bool *in_pool)
{
	void *b = NULL;

	if (d->dma.ops->pool_buffers)
		b = gv_pool_alloc(d, len);
	*in_pool = b != NULL;
	return b ? b : malloc(len);
}

static void tmp_free(struct gv_device *d, void *b, size_t len, bool in_pool)
{
	if (in_pool)
		gv_pool_free(d, b, len);
	else
		free(b);
}

int gv_blk_read(struct gv_device *d, uint64_t off, void *buf, size_t len)
{
	uint64_t a = off & ~511ULL, e = (off + len + 511) & ~511ULL;
	bool in_pool;
	uint8_t *tmp;
	int rc;

	if (!len)
		return 0;
	if (!(off % 512) && !(len % 512))
		return blk_sync(d, GV_BLK_READ, off / 512, buf, len);
	tmp = tmp_alloc(d, e - a, &in_pool);
	if (!tmp)
		return -ENOMEM;
	rc = blk_sync(d, GV_BLK_READ, a / 512, tmp, e - a);
	if (rc == 0)
		memcpy(buf, tmp + (off - a), len);
	tmp_free(d, tmp, e - a, in_pool);
	return rc;
}

int gv_blk_write(struct gv_device *d, uint64_t off, const void *buf, size_t len)
{
	uint64_t a = off & ~511ULL, e = (off + len + 511) & ~511ULL;
	bool in_pool;
	uint8_t *tmp;
	int rc = 0;

	if (!len)
		return 0;
	if (!(off % 512) && !(len % 512))
		return blk_sync(d, GV_BLK_WRITE, off / 512, (void *)buf, len);
	tmp = tmp_alloc(d, e - a, &in_pool);
	if (!tmp)
		return -ENOMEM;
	/* Read-modify-write of the partial sectors at either end. */
	if (off != a)
		rc = blk_sync(d, GV_BLK_READ, a / 512, tmp, 512);
	if (rc == 0 && (off + len) != e && (e - 512 != a || off == a))
		rc = blk_sync(d, GV_BLK_READ, (e - 512) / 512, tmp + (e - 512 - a), 512);
	if (rc == 0) {
		memcpy(tmp + (off - a), buf, len);
		rc = blk_sync(d, GV_BLK_WRITE, a / 512, tmp, e - a);
	}
	tmp_free(d, tmp, e - a, in_pool);
	return rc;
}

int gv_blk_flush(struct gv_device *d)
{
	return blk_sync(d, GV_BLK_FLUSH, 0, NULL, 0);
}

static int blk_range_sync(struct gv_device *d, enum gv_blk_op op, uint64_t off, uint64_t len,
                          unsigned flags)
{
	struct gv_blk_io io = { .op = op, .sector = off / 512, .len = len, .flags = flags };
	bool done;

	if (off % 512 || len % 512 || (uint64_t)(size_t)len != len)
		return -EINVAL;
	if (!len)
		return 0;
	return submit_wait(d, &io, &done);
}

int gv_blk_discard(struct gv_device *d, uint64_t off, uint64_t len)
{
	return blk_range_sync(d, GV_BLK_DISCARD, off, len, 0);
}

int gv_blk_write_zeroes(struct gv_device *d, uint64_t off, uint64_t len, bool unmap)
{
	return blk_range_sync(d, GV_BLK_WRITE_ZEROES, off, len, unmap ? GV_BLK_ZEROES_UNMAP : 0);
}

int gv_blk_get_id(struct gv_device *d, char id[21])
{
	int rc;

	memset(id, 0, 21);
	rc = blk_sync(d, GV_BLK_GET_ID, 0, id, VIRTIO_BLK_ID_BYTES);
	id[20] = 0;
	return rc;
}

void *gv_pool_alloc(struct gv_device *d, size_t len)
{
	void *buf;
	int err;

	pthread_mutex_lock(&d->lock);
	buf = gvfe_dma_pool_alloc(&d->dma, len);
	err = errno;
	pthread_mutex_unlock(&d->lock);
	errno = err;
	return buf;
}

void gv_pool_free(struct gv_device *d, void *buf, size_t len)
{
	pthread_mutex_lock(&d->lock);
	gvfe_dma_pool_free(&d->dma, buf, len);
	pthread_mutex_unlock(&d->lock);
}

const struct gvfe_driver gvfe_blk_driver = {
	.name = "virtio-blk",
	.type = "virtio,device2",
	.virtio_id = VIRTIO_ID_BLOCK,
	.features = 1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_SIZE_MAX |
		1ULL << VIRTIO_BLK_F_BLK_SIZE | 1ULL << VIRTIO_BLK_F_FLUSH | 1ULL << VIRTIO_BLK_F_RO |
		1ULL << VIRTIO_BLK_F_DISCARD | 1ULL << VIRTIO_BLK_F_WRITE_ZEROES,
	.probe = blk_probe,
	.setup = blk_setup,
	.complete = blk_complete,
	.pump = blk_pump,
	.pending = blk_pending,
	.config_changed = blk_config_changed,
	.info = blk_info,
	.teardown = blk_teardown,
	.requeue = blk_requeue,
	.unsetup = blk_unsetup,
};
