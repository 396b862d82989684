/*
 * fuzz/fuzz_vring_chain.c: the backend's descriptor-chain parser
 * (gvbe_vq_parse_chain, backend/vring.c) on a descriptor table and indirect
 * tables that the input controls entirely: everything a hostile driver can
 * put in its granted pages.
 *
 * Input: [log2 queue size][flags][head lo][head hi][descriptor table...]
 * [memory the indirect tables are copied from...]. Besides the sanitizers,
 * the target checks what an accepted chain promises its user: segments
 * readable first, byte counts that add up and fit 32 bits, page counts that
 * cover each buffer, and an error message that is one line.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../backend/vring.h"
#include "fuzz.h"

struct mem {
	const uint8_t *p;
	size_t len;
	size_t cap;               /* bytes the parser's table buffer holds */
};

static int copy_in(void *ctx, grant_ref_t gref, uint32_t off, void *dst, size_t len)
{
	struct mem *m = ctx;

	/* the parser must never ask for more than its private table holds */
	if (len > m->cap)
		abort();
	if (gref % 5 == 4)
		return -EINVAL;       /* a grant that cannot be mapped */
	for (size_t i = 0; i < len; i++)
		((uint8_t *)dst)[i] = m->len ? m->p[((uint64_t)gref * 4096 + off + i) % m->len] : 0;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vring_desc table[256];
	struct gvbe_chain ch;
	struct mem m = { 0 };
	unsigned num;
	uint16_t head;
	size_t tbytes;
	char why[320];
	int rc;

	if (size < 4)
		return 0;
	num = 1u << (data[0] % 9);
	head = (uint16_t)(data[2] | data[3] << 8);
	if (!(data[1] & 2))
		head %= num + 1;      /* mostly in range, sometimes just past it */
	tbytes = size - 4 < num * sizeof(table[0]) ? size - 4 : num * sizeof(table[0]);
	memset(table, 0, sizeof(table));
	memcpy(table, data + 4, tbytes);
	m.p = data + 4 + tbytes;
	m.len = size - 4 - tbytes;
	m.cap = num * sizeof(struct vring_desc);
	if (gvbe_chain_init(&ch, num) < 0)
		return 0;
	why[0] = 0;
	rc = gvbe_vq_parse_chain(table, num, head, data[1] & 1,
	                       &(struct gvbe_vq_mem){ copy_in, &m }, &ch, why, sizeof(why));
	if (rc == 0) {
		uint64_t rd = 0, wr = 0;

		FUZZ_ASSERT(ch.nseg >= 1 && ch.nseg <= num && ch.nread <= ch.nseg);
		for (unsigned s = 0; s < ch.nseg; s++) {
			const struct gvbe_seg *sg = &ch.seg[s];

			FUZZ_ASSERT(sg->write == (s >= ch.nread));
			FUZZ_ASSERT(sg->off < GV_PAGE_SIZE);
			/* a zero-length buffer covers no page */
			FUZZ_ASSERT(!sg->len || (uint64_t)sg->npages * GV_PAGE_SIZE >= (uint64_t)sg->off + sg->len);
			FUZZ_ASSERT(!sg->len || (uint64_t)sg->gref + sg->npages - 1 <= UINT32_MAX);
			if (sg->write)
				wr += sg->len;
			else
				rd += sg->len;
		}
		FUZZ_ASSERT(rd == ch.read_bytes && wr == ch.write_bytes);
		FUZZ_ASSERT(rd + wr <= UINT32_MAX);
	} else {
		FUZZ_ASSERT(rc == -EPROTO);
		FUZZ_ASSERT(why[0] && !strchr(why, '\n') && strlen(why) < sizeof(why));
	}
	gvbe_chain_fini(&ch);
	return 0;
}
