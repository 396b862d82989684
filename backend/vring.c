/*
 * backend/vring.c: the device side of a split virtqueue, the per-request
 * hot path of gv-backend.
 *
 * The rings live in pages the guest granted us, so the guest can change
 * them under our feet at any time. As Xen's ring.h does for its rings
 * (RING_COPY_REQUEST, XSA-155), every index and every descriptor is read
 * from shared memory exactly once into private memory, and only that copy
 * is validated and used. An impossible value is an error that breaks the
 * device (virtio's DEVICE_NEEDS_RESET, Linux's BAD_RING), never clamped.
 *
 * Grants only: a descriptor address must decode with gv_dma_to_grant; the
 * request's pages are mapped in one batch per direction (read-only for
 * device-readable buffers, writable for device-writable ones), or found in
 * the map cache when the driver promised a persistent pool.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "mapcache.h"
#include "vring.h"
#ifdef GVBE_BENCH
#include "bench.h"
#endif
#include "barrier.h"          /* the peer is another domain on another CPU */
#include "dma_addr.h"


static int ring_error(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int ring_error(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return -EPROTO;
}

/* Decodes a descriptor address into (gref, off) and checks that the buffer
 * [off, off+len) stays within grant references that exist (ref + k must
 * not wrap). */
static int decode_buffer(uint64_t addr, uint32_t len, grant_ref_t *gref, uint32_t *off,
                         unsigned *npages, char *why, size_t whylen)
{
	uint64_t pages;

	if (!gv_dma_is_grant(addr))
		return ring_error(why, whylen,
		                  "descriptor address 0x%llx is not a grant reference: the driver "
		                  "bypassed the DMA API (VIRTIO_F_ACCESS_PLATFORM not negotiated); "
		                  "under Xen a backend can reach only guest memory that the guest "
		                  "granted to it", (unsigned long long)addr);
	if (gv_dma_to_grant(addr, gref, off) < 0)
		return ring_error(why, whylen,
		                  "descriptor address 0x%llx is not a grant DMA address (bits 44-62 "
		                  "must be zero)", (unsigned long long)addr);
	pages = len ? ((uint64_t)*off + len - 1) / GV_PAGE_SIZE + 1 : 0;
	if (pages && (uint64_t)*gref + pages - 1 > UINT32_MAX)
		return ring_error(why, whylen,
		                  "descriptor at 0x%llx of length %u runs past the last grant "
		                  "reference", (unsigned long long)addr, len);
	*npages = (unsigned)pages;
	return 0;
}

int gvbe_chain_init(struct gvbe_chain *ch, unsigned num)
{
	memset(ch, 0, sizeof(*ch));
	ch->seg = calloc(num, sizeof(*ch->seg));
	ch->itable = calloc(num, sizeof(*ch->itable));
	if (!ch->seg || !ch->itable) {
		gvbe_chain_fini(ch);
		return -ENOMEM;
	}
	ch->max_seg = num;
	return 0;
}

void gvbe_chain_fini(struct gvbe_chain *ch)
{
	free(ch->seg);
	free(ch->itable);
	ch->seg = NULL;
	ch->itable = NULL;
	ch->max_seg = 0;
}

int gvbe_vq_parse_chain(const volatile struct vring_desc *desc, unsigned num, uint16_t head,
                      bool indirect_ok, const struct gvbe_vq_mem *mem, struct gvbe_chain *ch,
                      char *why, size_t whylen)
{
	unsigned table_num = num;   /* entries of the table i indexes */
	unsigned visited = 0;       /* direct + indirect: bounded by the queue size */
	bool indirect = false;
	uint16_t i = head;
	int rc;

	ch->head = head;
	ch->nseg = ch->nread = 0;
	ch->read_bytes = ch->write_bytes = 0;
	if (num > ch->max_seg)
		return ring_error(why, whylen, "internal: chain buffer smaller than the queue");
	if (head >= num)
		return ring_error(why, whylen, "head index %u out of range (queue size %u)",
		                  head, num);
	for (;;) {
		struct vring_desc d;
		struct gvbe_seg *s;

		if (++visited > num)
			return ring_error(why, whylen,
			                  "descriptor chain from head %u is longer than the queue size "
			                  "%u (a loop?)", head, num);
		if (indirect) {
			d = ch->itable[i];          /* already a private copy */
		} else {
			/* the one read of this shared entry */
			d.addr = desc[i].addr;
			d.len = desc[i].len;
			d.flags = desc[i].flags;
			d.next = desc[i].next;
		}

		if (d.flags & VRING_DESC_F_INDIRECT) {
			grant_ref_t gref;
			uint32_t off;
			unsigned npages;

			if (indirect)
				return ring_error(why, whylen,
				                  "nested indirect descriptor in the table of head %u", head);
			if (!indirect_ok)
				return ring_error(why, whylen,
				                  "indirect descriptor %u but VIRTIO_RING_F_INDIRECT_DESC was "
				                  "not negotiated", i);
			if (d.flags & VRING_DESC_F_NEXT)
				return ring_error(why, whylen,
				                  "descriptor %u has both INDIRECT and NEXT", i);
			if (d.len == 0 || d.len % sizeof(struct vring_desc) ||
			    d.len / sizeof(struct vring_desc) > num - (visited - 1))
				return ring_error(why, whylen,
				                  "indirect table of %u bytes at descriptor %u: must be a "
				                  "non-zero multiple of 16 and make a chain of at most %u "
				                  "descriptors", d.len, i, num);
			rc = decode_buffer(d.addr, d.len, &gref, &off, &npages, why, whylen);
			if (rc < 0)
				return rc;
			rc = mem->copy_in(mem->ctx, gref, off, ch->itable, d.len);
			if (rc < 0)
				return ring_error(why, whylen,
				                  "indirect table at 0x%llx cannot be mapped (%s)",
				                  (unsigned long long)d.addr, strerror(-rc));
			indirect = true;
			table_num = d.len / sizeof(struct vring_desc);
			visited--;          /* the indirect descriptor itself carries no buffer */
			i = 0;
			continue;
		}

		if (ch->nseg >= ch->max_seg)
			return ring_error(why, whylen, "descriptor chain from head %u is longer than "
			                  "the queue size %u", head, num);
		s = &ch->seg[ch->nseg];
		rc = decode_buffer(d.addr, d.len, &s->gref, &s->off, &s->npages, why, whylen);
		if (rc < 0)
			return rc;
		s->len = d.len;
		s->write = d.flags & VRING_DESC_F_WRITE;
		s->page0 = 0;
		if (s->write) {
			ch->write_bytes += d.len;
		} else {
			if (ch->nseg != ch->nread)
				return ring_error(why, whylen,
				                  "device-readable descriptor %u after a device-writable one "
				                  "in the chain of head %u", i, head);
			ch->read_bytes += d.len;
			ch->nread++;
		}
		/* used len is 32 bits: a chain whose lengths overflow it is malformed */
		if (ch->read_bytes + ch->write_bytes > UINT32_MAX)
			return ring_error(why, whylen,
			                  "lengths of the chain of head %u overflow 32 bits", head);
		ch->nseg++;

		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		if (d.next >= table_num)
			return ring_error(why, whylen,
			                  "next index %u out of range (%s of %u entries) in the chain of "
			                  "head %u", d.next, indirect ? "indirect table" : "queue",
			                  table_num, head);
		i = d.next;
	}
}

/* ---- mapping a request ---------------------------------------------------- */

static int copy_range(struct gv_platform *p, domid_t from, grant_ref_t gref, uint32_t off,
                      void *local, uint64_t len, bool to_grant, struct gv_copy_seg *cs,
                      unsigned max);

static int indirect_copy_in(void *ctx, grant_ref_t gref, uint32_t off, void *dst, size_t len)
{
	struct gvbe_vq *vq = ctx;
	unsigned n = gv_pages_for(off + len);
	grant_ref_t refs[GVBE_MAX_QUEUE_SIZE * sizeof(struct vring_desc) / GV_PAGE_SIZE + 1];
	void *addr;
	int rc;

	if (n > sizeof(refs) / sizeof(refs[0]))
		return -E2BIG;
	/* one grant copy where the platform has it: no mapping at all */
	rc = copy_range(vq->p, vq->from, gref, off, dst, len, false, NULL, 0);
	if (rc != -ENOSYS)
		return rc;
	for (unsigned k = 0; k < n; k++)
		refs[k] = gref + k;
	rc = gv_map(vq->p, vq->from, n, refs, 0, NULL, &addr);
	if (rc < 0)
		return rc;
	memcpy(dst, (char *)addr + off, len);
	gv_unmap(vq->p, addr, n);
	return 0;
}

/* The grant-copy segments of bytes [off, off+len) from the start of page
 * gref (refs gref, gref+1, ...) to or from local (contiguous), appended to
 * cs[*n..max); with cs NULL, copies them at once. 0 or -errno. */
static int copy_range(struct gv_platform *p, domid_t from, grant_ref_t gref, uint32_t off,
                      void *local, uint64_t len, bool to_grant, struct gv_copy_seg *cs,
                      unsigned max)
{
	struct gv_copy_seg own[GVBE_COPY_MAX_PAGES];
	unsigned n = 0;

	if (!cs) {
		cs = own;
		max = GVBE_COPY_MAX_PAGES;
	}
	while (len) {
		uint32_t in = off % GV_PAGE_SIZE;
		uint32_t chunk = GV_PAGE_SIZE - in < len ? GV_PAGE_SIZE - in : (uint32_t)len;

		if (n == max)
			return -E2BIG;
		cs[n++] = (struct gv_copy_seg){ .ref = gref + off / GV_PAGE_SIZE, .offset = (uint16_t)in,
		                                .len = (uint16_t)chunk,
		                                .flags = to_grant ? GV_COPY_TO_GRANT : 0,
		                                .local = local };
		local = (char *)local + chunk;
		off += chunk;
		len -= chunk;
	}
	if (cs != own)
		return (int)n;
	return n ? gv_grant_copy(p, from, n, cs) : 0;
}

/* Grant copy instead of a mapping: the segments of one direction in
 * [first, first+n) get pages of r->cbuf (in order, so a segment's pages
 * are contiguous); readable ones are copied in now, writable ones zeroed
 * (nothing of an earlier request can leak) and copied out at completion. */
static int copy_direction(struct gvbe_req *r, unsigned first, unsigned n, bool write)
{
	struct gvbe_chain *ch = r->ch;
	struct gv_copy_seg cs[GVBE_COPY_MAX_PAGES];
	unsigned ncs = 0;

	for (unsigned s = first; s < first + n; s++) {
		struct gvbe_seg *sg = &ch->seg[s];
		uint8_t *at;
		int k;

		if (sg->write != write || !sg->npages)
			continue;
		if (sg->npages > GVBE_COPY_MAX_PAGES - r->npages ||
		    (write && r->ncopy_out == GVBE_COPY_MAX_PAGES))
			return -E2BIG;
		sg->page0 = r->npages;
		for (unsigned k2 = 0; k2 < sg->npages; k2++)
			r->pages[r->npages + k2] = r->cbuf + (size_t)(r->npages + k2) * GV_PAGE_SIZE;
		at = r->cbuf + (size_t)r->npages * GV_PAGE_SIZE + sg->off;
		r->npages += sg->npages;
		if (write) {
			memset(at, 0, sg->len);
			r->copy_out[r->ncopy_out++] = (uint16_t)s;
			continue;
		}
		k = copy_range(r->vq->p, r->vq->from, sg->gref, sg->off, at, sg->len, false,
		               cs + ncs, GVBE_COPY_MAX_PAGES - ncs);
		if (k < 0)
			return k;
		ncs += (unsigned)k;
	}
	return ncs ? gv_grant_copy(r->vq->p, r->vq->from, ncs, cs) : 0;
}

/* Completion of a grant-copied request: its writable segments go back.
 * 0, or -errno when some could not (a grant the driver ended or made
 * read-only: on real Xen the others may have been copied). */
static int copy_out(struct gvbe_req *r)
{
	struct gv_copy_seg cs[GVBE_COPY_MAX_PAGES];
	unsigned ncs = 0;

	for (unsigned i = 0; i < r->ncopy_out; i++) {
		const struct gvbe_seg *sg = &r->ch->seg[r->copy_out[i]];
		int k = copy_range(r->vq->p, r->vq->from, sg->gref, sg->off,
		                   (uint8_t *)r->pages[sg->page0] + sg->off, sg->len, true,
		                   cs + ncs, GVBE_COPY_MAX_PAGES - ncs);

		if (k < 0)
			return k;
		ncs += (unsigned)k;
	}
	return ncs ? gv_grant_copy(r->vq->p, r->vq->from, ncs, cs) : 0;
}

/* The data could not be copied out: the request failed after all. Like
 * QEMU's xen-block, whose grant copy after the read decides the answer:
 * the device type's failure status (vq->fail_status) goes alone into the
 * last writable byte. Returns the used length: 1 if it got there, else 0. */
static uint32_t copy_out_failed(struct gvbe_req *r)
{
	const struct gvbe_chain *ch = r->ch;
	const struct gvbe_seg *sg = NULL;
	uint8_t *last;

	r->vq->copy_errors++;
	if (r->vq->fail_status < 0)
		return 0;
	for (unsigned s = ch->nseg; s > ch->nread && !sg; s--)
		if (ch->seg[s - 1].len)
			sg = &ch->seg[s - 1];
	for (unsigned i = 0; sg && i < r->ncopy_out; i++)
		if (&ch->seg[r->copy_out[i]] == sg)
			break;
		else if (i + 1 == r->ncopy_out)
			sg = NULL;
	if (!sg)
		return 0;       /* no writable byte, or its page was never set up */
	last = (uint8_t *)r->pages[sg->page0] + sg->off + sg->len - 1;
	*last = (uint8_t)r->vq->fail_status;
	return copy_range(r->vq->p, r->vq->from, sg->gref, sg->off + sg->len - 1, last, 1, true,
	                  NULL, 0) == 0 ? 1 : 0;
}

/* Whether r goes by grant copy: no persistent pool (or bench mode), small
 * enough, and a buffer for it. */
static bool want_copy(struct gvbe_vq *vq, struct gvbe_req *r)
{
	const struct gvbe_chain *ch = r->ch;
	unsigned pages = 0;

	if (vq->cache || !vq->copy_max || !vq->p->ops->grant_copy ||
	    ch->read_bytes + ch->write_bytes > (uint64_t)vq->copy_max + GVBE_COPY_SLACK)
		return false;
#ifdef GVBE_BENCH
	if (vq->direct || vq->map_batch == 1)
		return false;
#endif
	for (unsigned s = 0; s < ch->nseg; s++)
		pages += ch->seg[s].npages;
	if (pages > GVBE_COPY_MAX_PAGES)
		return false;
	if (!r->cbuf) {
		/* bounded: past GVBE_COPY_BUFS requests in flight, map */
		if (vq->ncbufs >= GVBE_COPY_BUFS)
			return false;
		/* its own mapping: the pages go back to the system when the
		 * device disconnects, whatever the allocator keeps */
		void *b = mmap(NULL, (size_t)GVBE_COPY_MAX_PAGES * GV_PAGE_SIZE,
		               PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (b == MAP_FAILED)
			return false;
		r->cbuf = b;
		vq->ncbufs++;
	}
	return true;
}

/* Maps the pages of the segments of one direction in [first, first+n). */
static int map_direction(struct gvbe_req *r, unsigned first, unsigned n, bool write)
{
	struct gvbe_chain *ch = r->ch;
	struct gvbe_mapcache *mc = r->vq->cache;
	unsigned nuniq = 0, np = 0, base = r->npages;
	void *addr;
	int rc;

	/* collect the distinct refs not in the cache; slot[] remembers for each
	 * page which of them it is (or UINT16_MAX: a cache hit, already set) */
	for (unsigned s = first; s < first + n; s++) {
		struct gvbe_seg *sg = &ch->seg[s];

		if (sg->write != write)
			continue;
		sg->page0 = r->npages + np;
		for (unsigned k = 0; k < sg->npages; k++, np++) {
			grant_ref_t ref = sg->gref + k;
			void *hit;
			unsigned u;

#ifdef GVBE_BENCH
			if (r->vq->direct) {
				/* bench-only direct mode: mapped once, one table lookup */
				r->pages[base + np] = gvbe_direct_page(r->vq->direct, ref, write);
				if (!r->pages[base + np])
					return -EFAULT;
				r->slot[np] = UINT16_MAX;
				continue;
			}
#endif
			hit = mc ? gvbe_mapcache_lookup(mc, ref, write) : NULL;

			if (hit) {
				r->pages[base + np] = hit;
				r->slot[np] = UINT16_MAX;
				continue;
			}
			for (u = 0; u < nuniq && r->uref[u] != ref; u++)
				;
			if (u == nuniq)
				r->uref[nuniq++] = ref;
			r->slot[np] = (uint16_t)u;
		}
	}
#ifdef GVBE_BENCH
	if (nuniq && r->vq->map_batch == 1) {
		/* bench-only: what a backend without batching pays, one map call
		 * per page; kept out of the map cache so every request pays it */
		for (unsigned u = 0; u < nuniq; u++) {
			rc = gv_map(r->vq->p, r->vq->from, 1, &r->uref[u],
			            write ? GV_MAP_WRITE : 0, NULL, &addr);
			if (rc < 0)
				return rc;
			r->single[r->nsingle++] = addr;
		}
		for (unsigned k = 0; k < np; k++)
			if (r->slot[k] != UINT16_MAX)
				r->pages[base + k] = r->single[r->nsingle - nuniq + r->slot[k]];
		r->npages += np;
		return 0;
	}
#endif
	if (nuniq) {
		if (r->nunmap >= sizeof(r->unmap) / sizeof(r->unmap[0]))
			return -E2BIG;
		rc = gv_map(r->vq->p, r->vq->from, nuniq, r->uref, write ? GV_MAP_WRITE : 0,
		            NULL, &addr);
		if (rc < 0)
			return rc;
		for (unsigned k = 0; k < np; k++)
			if (r->slot[k] != UINT16_MAX)
				r->pages[base + k] = (char *)addr + (size_t)r->slot[k] * GV_PAGE_SIZE;
		if (!mc || gvbe_mapcache_insert(mc, addr, r->uref, nuniq, write) == 0) {
			r->unmap[r->nunmap].addr = addr;
			r->unmap[r->nunmap].count = nuniq;
			r->nunmap++;
		}
	}
	r->npages += np;
	return 0;
}

int gvbe_req_map(struct gvbe_req *r, unsigned first, unsigned n)
{
	struct gvbe_chain *ch = r->ch;
	uint64_t need = 0;
	int rc;

	if (first > ch->nseg || n > ch->nseg - first)
		return -EINVAL;
	for (unsigned s = first; s < first + n; s++)
		need += ch->seg[s].npages;
	if (need > GVBE_REQ_MAX_PAGES - r->npages)
		return -E2BIG;
	if (r->copy) {
		rc = copy_direction(r, first, n, false);
		return rc < 0 ? rc : copy_direction(r, first, n, true);
	}
	rc = map_direction(r, first, n, false);
	if (rc < 0)
		return rc;
	/* a failure here leaves the readable batch in r->unmap: undone at the end */
	return map_direction(r, first, n, true);
}

static void req_unmap_all(struct gvbe_req *r)
{
	for (unsigned k = 0; k < r->nunmap; k++)
		gv_unmap(r->vq->p, r->unmap[k].addr, r->unmap[k].count);
	r->nunmap = 0;
#ifdef GVBE_BENCH
	for (unsigned k = 0; k < r->nsingle; k++)
		gv_unmap(r->vq->p, r->single[k], 1);
	r->nsingle = 0;
#endif
	r->npages = 0;
}

int gvbe_req_iov(struct gvbe_req *r, unsigned s, uint32_t off, uint32_t len,
               struct iovec *iov, int max)
{
	const struct gvbe_seg *sg = &r->ch->seg[s];
	uint64_t pos = (uint64_t)sg->off + off;   /* from the start of the first page */
	int n = 0;

	if (off > sg->len || len > sg->len - off)
		return -EINVAL;
	while (len) {
		unsigned pg = (unsigned)(pos / GV_PAGE_SIZE);
		uint32_t in = (uint32_t)(pos % GV_PAGE_SIZE);
		uint32_t chunk = GV_PAGE_SIZE - in < len ? GV_PAGE_SIZE - in : len;
		char *p = (char *)r->pages[sg->page0 + pg] + in;

		if (n && (char *)iov[n - 1].iov_base + iov[n - 1].iov_len == p) {
			iov[n - 1].iov_len += chunk;   /* pages of one batch are contiguous */
		} else {
			if (n == max)
				return -E2BIG;
			iov[n].iov_base = p;
			iov[n].iov_len = chunk;
			n++;
		}
		pos += chunk;
		len -= chunk;
	}
	return n;
}

int gvbe_req_stream_iov(struct gvbe_req *r, bool writable, uint64_t off, uint64_t len,
                        struct iovec *iov, int max)
{
	const struct gvbe_chain *ch = r->ch;
	unsigned s = writable ? ch->nread : 0, end = writable ? ch->nseg : ch->nread;
	int n = 0;

	for (; s < end && len; s++) {
		uint32_t sl = ch->seg[s].len, chunk;
		int k;

		if (off >= sl) {
			off -= sl;
			continue;
		}
		chunk = len < sl - off ? (uint32_t)len : sl - (uint32_t)off;
		k = gvbe_req_iov(r, s, (uint32_t)off, chunk, iov + n, max - n);
		if (k < 0)
			return k;
		/* pages of one batch are contiguous: merge across segments too */
		if (n && k && (char *)iov[n - 1].iov_base + iov[n - 1].iov_len == iov[n].iov_base) {
			iov[n - 1].iov_len += iov[n].iov_len;
			memmove(&iov[n], &iov[n + 1], (size_t)(k - 1) * sizeof(*iov));
			k--;
		}
		n += k;
		off = 0;
		len -= chunk;
	}
	return len ? -EINVAL : n;
}

int gvbe_req_copy_from(struct gvbe_req *r, unsigned s, uint32_t off, void *dst, uint32_t len)
{
	struct iovec iov[4];
	int n = gvbe_req_iov(r, s, off, len, iov, 4);

	if (n < 0)
		return n;
	for (int k = 0; k < n; k++) {
		memcpy(dst, iov[k].iov_base, iov[k].iov_len);
		dst = (char *)dst + iov[k].iov_len;
	}
	return 0;
}

int gvbe_req_copy_to(struct gvbe_req *r, unsigned s, uint32_t off, const void *src, uint32_t len)
{
	struct iovec iov[4];
	int n = gvbe_req_iov(r, s, off, len, iov, 4);

	if (n < 0)
		return n;
	for (int k = 0; k < n; k++) {
		memcpy(iov[k].iov_base, src, iov[k].iov_len);
		src = (const char *)src + iov[k].iov_len;
	}
	return 0;
}

/* ---- the queue -------------------------------------------------------------- */

/* The event-index words after the two rings (virtio 1.x 2.7.10). */
#define USED_EVENT(vq) \
	(*(const volatile uint16_t *)((const volatile char *)(vq)->avail + 4 + 2 * (vq)->num))
#define AVAIL_EVENT(vq) \
	(*(volatile uint16_t *)((volatile char *)(vq)->used + 4 + 8 * (vq)->num))

int gvbe_vq_init(struct gvbe_vq *vq, struct gv_platform *p, domid_t from, unsigned index,
                 unsigned num, const void *desc, const void *avail, void *used,
                 bool indirect_ok, struct gvbe_mapcache *cache)
{
	memset(vq, 0, sizeof(*vq));
	if (!num || num > GVBE_MAX_QUEUE_SIZE || (num & (num - 1)))
		return -EINVAL;
	vq->reqs = calloc(num, sizeof(*vq->reqs));
	vq->done = calloc(num, sizeof(*vq->done));
	if (!vq->reqs || !vq->done) {
		free(vq->reqs);
		free(vq->done);
		vq->reqs = NULL;
		vq->done = NULL;
		return -ENOMEM;
	}
	vq->index = index;
	vq->num = num;
	vq->p = p;
	vq->from = from;
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	vq->indirect_ok = indirect_ok;
	vq->cache = cache;
	vq->copy_max = GVBE_COPY_MAX_DEFAULT;
	vq->fail_status = -1;
	vq->port = GV_NO_PORT;
	/* the driver zeroed its pages; we own used idx from here, starting at 0 */
	vq->used->flags = 0;
	return 0;
}

void gvbe_vq_fini(struct gvbe_vq *vq)
{
	for (unsigned k = 0; k < vq->nreqs; k++) {
		struct gvbe_req *r = vq->reqs[k];

		/* the device type completed or abandoned its requests before
		 * this (gvbe_blk_quiesce); whatever is still mapped goes now */
		if (r->inflight)
			req_unmap_all(r);
		gvbe_chain_fini(&r->own_ch);
		if (r->cbuf)
			munmap(r->cbuf, (size_t)GVBE_COPY_MAX_PAGES * GV_PAGE_SIZE);
		free(r);
	}
	free(vq->reqs);
	free(vq->done);
	vq->reqs = NULL;
	vq->done = NULL;
	vq->rec = NULL;
	vq->nreqs = 0;
	vq->free_reqs = NULL;
	vq->inflight = 0;
	vq->ncbufs = 0;
}

size_t gvbe_vq_memory(const struct gvbe_vq *vq)
{
	size_t copybufs = 0;

	for (unsigned k = 0; k < vq->nreqs; k++)
		if (vq->reqs[k]->cbuf)
			copybufs += (size_t)GVBE_COPY_MAX_PAGES * GV_PAGE_SIZE;
	return vq->num * sizeof(*vq->reqs) + copybufs +
	       vq->nreqs * (sizeof(struct gvbe_req) +
	                    vq->num * (sizeof(struct gvbe_seg) + sizeof(struct vring_desc)));
}

static struct gvbe_req *req_get(struct gvbe_vq *vq)
{
	struct gvbe_req *r = vq->free_reqs;

	if (r) {
		vq->free_reqs = r->next_free;
		return r;
	}
	if (vq->nreqs == vq->num)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	if (gvbe_chain_init(&r->own_ch, vq->num) < 0) {
		free(r);
		return NULL;
	}
	r->vq = vq;
	r->ch = &r->own_ch;
	vq->reqs[vq->nreqs++] = r;
	return r;
}

static void req_put(struct gvbe_vq *vq, struct gvbe_req *r)
{
	r->inflight = false;
	r->next_free = vq->free_reqs;
	vq->free_reqs = r;
}

/* The map cache pins what requests in flight use: from the oldest one. */
static void update_pin_floor(struct gvbe_vq *vq)
{
	uint64_t floor = UINT64_MAX;

	if (!vq->cache)
		return;
	for (unsigned k = 0; k < vq->nreqs; k++)
		if (vq->reqs[k]->inflight && vq->reqs[k]->gen < floor)
			floor = vq->reqs[k]->gen;
	gvbe_mapcache_set_floor(vq->cache, floor);
}

static int vq_break(struct gvbe_vq *vq, const char *why)
{
	if (!vq->broken) {
		vq->broken = true;
		if (why != vq->why)
			snprintf(vq->why, sizeof(vq->why), "%s", why);
	}
	return -EPROTO;
}

static void set_used_flags(struct gvbe_vq *vq, uint16_t flags)
{
	if (vq->used_flags != flags) {
		vq->used_flags = flags;
		vq->used->flags = flags;
	}
}

void gvbe_req_complete(struct gvbe_req *r, uint32_t len)
{
	struct gvbe_vq *vq = r->vq;
	uint16_t head = r->ch->head;

	if (len > r->ch->write_bytes)
		len = (uint32_t)r->ch->write_bytes;
	if (r->copy && r->ncopy_out && copy_out(r) < 0)
		len = copy_out_failed(r);
	/* grant mode: nothing stays mapped once the driver can see the
	 * completion, so it may end its grants right away */
	req_unmap_all(r);
	vq->used->ring[vq->used_idx % vq->num].id = head;
	vq->used->ring[vq->used_idx % vq->num].len = len;
	vq->done[vq->used_idx % vq->num] = head;
	vq->used_idx++;
	vq->requests++;
	gvbe_qstats_latency(&vq->st, gvbe_now_ns() - r->t0);
	vq->inflight--;
	req_put(vq, r);
	update_pin_floor(vq);
}

void gvbe_vq_publish(struct gvbe_vq *vq)
{
	uint16_t old = vq->published_idx, new = vq->used_idx;
	bool notify;

	if (old == new)
		return;
	/* the elements are visible before the index that publishes them */
	gv_wmb();
	vq->used->idx = new;
	vq->published_idx = new;
	if (vq->rec) {
		/* published: those heads are no longer ours to serve again; the
		 * index last, so that a successor that finds it behind the used
		 * index clears the heads of [rec idx, used idx) itself */
		gv_wmb();
		for (uint16_t i = old; i != new; i++)
			vq->rec->head[vq->done[i % vq->num]] = 0;
		gv_wmb();
		vq->rec->used_idx = new;
	}
	/* the used index is visible before we read the driver's wishes */
	gv_mb();
	if (vq->event_idx) {
		uint16_t event = USED_EVENT(vq);     /* read once */

		/* notify if used_event lies in [old, new) (vring_need_event) */
		notify = (uint16_t)(new - event - 1) < (uint16_t)(new - old);
	} else {
		notify = !(vq->avail->flags & VRING_AVAIL_F_NO_INTERRUPT);
	}
	if (notify && vq->port != GV_NO_PORT) {
		gv_evtchn_notify(vq->p, vq->port);
		vq->interrupts++;
	}
}

/* Hands the request whose chain r->ch holds to the device type. */
static void vq_start(struct gvbe_vq *vq, struct gvbe_req *r)
{
	uint32_t len;

	memset(r->unmap, 0, sizeof(r->unmap));
	r->npages = 0;
	r->nunmap = 0;
	r->mapped = false;
	r->ncopy_out = 0;
	r->copy = want_copy(vq, r);
	if (r->copy)
		vq->copied_reqs++;
	r->inflight = true;
	r->t0 = gvbe_now_ns();
#ifdef GVBE_BENCH
	r->nsingle = 0;
#endif
	vq->inflight++;
	if (vq->cache) {
		r->gen = gvbe_mapcache_begin(vq->cache);
		update_pin_floor(vq);
	}
	len = vq->handler(vq->handler_ctx, r);
	if (len != GVBE_REQ_ASYNC)
		gvbe_req_complete(r, len);
}

void gvbe_vq_track(struct gvbe_vq *vq, void *recp)
{
	volatile struct gv_inflight *rec = recp;

	for (unsigned h = 0; h < vq->num; h++)
		rec->head[h] = 0;
	rec->last_avail = 0;
	rec->used_idx = 0;
	rec->num = (uint16_t)vq->num;
	rec->reserved = 0;
	gv_wmb();
	vq->rec = rec;
}

int gvbe_vq_recover(struct gvbe_vq *vq, void *recp)
{
	volatile struct gv_inflight *rec = recp;
	struct gv_inflight hdr;
	uint8_t head[GVBE_MAX_QUEUE_SIZE];
	struct gvbe_vq_mem mem = { indirect_copy_in, vq };
	unsigned num = vq->num, marked = 0, served = 0;
	uint16_t avail_idx, used_idx, taken;
	char why[200];

	/* the guest owns the page and may change it at any time: one copy,
	 * and only the copy is checked and used */
	hdr.last_avail = rec->last_avail;
	hdr.used_idx = rec->used_idx;
	hdr.num = rec->num;
	for (unsigned h = 0; h < num; h++)
		head[h] = rec->head[h];
	avail_idx = vq->avail->idx;             /* read once */
	used_idx = vq->used->idx;               /* read once: what the driver was shown */
	gv_rmb();
	if (hdr.num != num)
		return vq_break(vq, (snprintf(why, sizeof(why), "in-flight record: queue size %u, "
		                     "not %u", hdr.num, num), why));
	if ((uint16_t)(avail_idx - hdr.last_avail) > num ||
	    (uint16_t)(used_idx - hdr.used_idx) > num ||
	    (uint16_t)(hdr.last_avail - used_idx) > num)
		return vq_break(vq, (snprintf(why, sizeof(why), "in-flight record: avail %u used %u "
		                     "do not fit the rings' avail %u used %u (queue size %u)",
		                     hdr.last_avail, hdr.used_idx, avail_idx, used_idx, num), why));
	for (unsigned h = 0; h < num; h++)
		if (head[h] > 1)
			return vq_break(vq, (snprintf(why, sizeof(why), "in-flight record: head %u "
			                     "marked %u", h, head[h]), why));
	/* published before the record caught up: those are done */
	for (uint16_t i = hdr.used_idx; i != used_idx; i++) {
		uint32_t id = vq->used->ring[i % num].id;       /* read once */

		if (id >= num)
			return vq_break(vq, (snprintf(why, sizeof(why), "in-flight record: used "
			                     "element %u has head %u", i, id), why));
		head[id] = 0;
	}
	/* marked but not yet counted as taken: the next avail entry's head */
	if (avail_idx != hdr.last_avail) {
		uint16_t h = vq->avail->ring[hdr.last_avail % num];     /* read once */

		if (h < num && head[h])
			hdr.last_avail++;
	}
	for (unsigned h = 0; h < num; h++)
		marked += head[h];
	taken = (uint16_t)(hdr.last_avail - used_idx);
	if (marked != taken)
		return vq_break(vq, (snprintf(why, sizeof(why), "in-flight record marks %u heads, "
		                     "the rings say %u are in flight", marked, taken), why));
	vq->last_avail = hdr.last_avail;
	vq->used_idx = vq->published_idx = used_idx;
	/* kicks are re-armed once the ring is drained (the old avail_event
	 * may lag behind) */
	vq->kicks_off = true;
	/* the record brought up to date, in the order a successor can read */
	for (unsigned h = 0; h < num; h++)
		rec->head[h] = head[h];
	gv_wmb();
	rec->used_idx = used_idx;
	rec->last_avail = hdr.last_avail;
	vq->rec = rec;
	for (unsigned h = 0; h < num && !vq->broken; h++) {
		struct gvbe_req *r;

		if (!head[h])
			continue;
		r = req_get(vq);
		if (!r)
			return vq_break(vq, "out of memory for the requests to serve again");
		if (gvbe_vq_parse_chain(vq->desc, num, (uint16_t)h, vq->indirect_ok, &mem, r->ch,
		                        vq->why, sizeof(vq->why)) < 0) {
			req_put(vq, r);
			return vq_break(vq, vq->why);
		}
		vq_start(vq, r);
		served++;
	}
	vq->recovered = served;
	gvbe_vq_publish(vq);
	return vq->broken ? -EPROTO : (int)served;
}

/* Kicks on (the ring is drained): no flag with VIRTIO_RING_F_EVENT_IDX, the
 * driver kicks when its avail index passes avail_event. */
static void kicks_on(struct gvbe_vq *vq)
{
	vq->kicks_off = false;
	if (vq->event_idx)
		AVAIL_EVENT(vq) = vq->last_avail;
	else
		set_used_flags(vq, 0);
}

int gvbe_vq_serve(struct gvbe_vq *vq, unsigned budget)
{
	struct gvbe_vq_mem mem = { indirect_copy_in, vq };
	unsigned served = 0;

	vq->more = false;
	if (vq->broken)
		return -EPROTO;
	for (;;) {
		uint16_t avail_idx = vq->avail->idx;    /* read once */
		uint16_t pending, head;
		struct gvbe_req *r;

		/* ring entries are read after the index that published them */
		gv_rmb();
		pending = (uint16_t)(avail_idx - vq->last_avail);
		if (pending > vq->num) {
			char why[160];

			snprintf(why, sizeof(why), "avail index moved from %u to %u, more than the "
			         "queue size %u", vq->last_avail, avail_idx, vq->num);
			vq_break(vq, why);
			break;
		}
		if (!pending) {
			if (!vq->kicks_off)
				break;
			/* re-enable kicks, then look again: a request made before the
			 * driver saw them enabled would get no kick */
			kicks_on(vq);
			gv_mb();
			if (vq->avail->idx == vq->last_avail)
				break;
			continue;
		}
		if (served >= budget) {
			vq->more = true;        /* kicks stay off: we come back anyway */
			break;
		}
		/* serving: the driver need not kick us for every request (with
		 * event idx: avail_event stays behind until the ring is drained) */
		vq->kicks_off = true;
		if (!vq->event_idx)
			set_used_flags(vq, VRING_USED_F_NO_NOTIFY);

		r = req_get(vq);
		if (!r) {
			char why[160];

			snprintf(why, sizeof(why), "more than %u requests in flight (a head made "
			         "available twice?)", vq->num);
			vq_break(vq, why);
			break;
		}
		head = vq->avail->ring[vq->last_avail % vq->num];   /* read once */
		if (gvbe_vq_parse_chain(vq->desc, vq->num, head, vq->indirect_ok, &mem, r->ch,
		                        vq->why, sizeof(vq->why)) < 0) {
			req_put(vq, r);
			vq_break(vq, vq->why);
			break;
		}
		if (vq->rec) {
			/* marked before we act on it, then taken (a successor
			 * that finds the next avail entry's head marked knows we
			 * took it) */
			vq->rec->head[head] = 1;
			gv_wmb();
		}
		vq->last_avail++;
		if (vq->rec)
			vq->rec->last_avail = vq->last_avail;
		vq_start(vq, r);
		served++;
	}
	gvbe_vq_publish(vq);
	return vq->broken ? -EPROTO : (int)served;
}
