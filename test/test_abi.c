/* test/test_abi.c: the shared ABI and the grant DMA-address encoding. */
#include "check.h"
#include "abi.h"
#include "dma_addr.h"

static int t_encode_roundtrip(void)
{
	static const grant_ref_t refs[] = { 0, 1, 8, 4095, 0x12345, UINT32_MAX };
	static const uint32_t offs[] = { 0, 1, 512, 4095 };

	for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++)
		for (size_t j = 0; j < sizeof(offs) / sizeof(offs[0]); j++) {
			uint64_t dma = gv_grant_to_dma(refs[i], offs[j]);
			grant_ref_t r = 0;
			uint32_t o = 0;

			CHECK(gv_dma_is_grant(dma));
			CHECK_EQ(gv_dma_to_grant(dma, &r, &o), 0);
			CHECK_EQ(r, refs[i]);
			CHECK_EQ(o, offs[j]);
		}
	return 0;
}

static int t_encode_matches_linux(void)
{
	/* grant-dma-ops: XEN_GRANT_DMA_ADDR_OFF | (grant << XEN_PAGE_SHIFT), plus offset */
	CHECK_EQ(gv_grant_to_dma(5, 0x10), 0x8000000000005010ULL);
	/* consecutive refs make a contiguous address range */
	CHECK_EQ(gv_grant_to_dma(6, 0) - gv_grant_to_dma(5, 0), GV_PAGE_SIZE);
	return 0;
}

static int t_decode_rejects(void)
{
	grant_ref_t r = 77;
	uint32_t o = 77;

	/* a guest-physical address (no grant bit) */
	CHECK(!gv_dma_is_grant(0x12345000ULL));
	CHECK_EQ(gv_dma_to_grant(0x12345000ULL, &r, &o), -EINVAL);
	CHECK_EQ(gv_dma_to_grant(0, &r, &o), -EINVAL);
	/* a reference wider than grant_ref_t */
	CHECK_EQ(gv_dma_to_grant(GV_DMA_GRANT_BIT | (1ULL << 44), &r, &o), -EINVAL);
	CHECK_EQ(gv_dma_to_grant(~0ULL, &r, &o), -EINVAL);
	CHECK_EQ(r, 77);  /* untouched on error */
	CHECK_EQ(o, 77);
	return 0;
}

static int t_vring_sizes(void)
{
	/* virtio 1.x 2.7: desc 16*N, avail 6+2*N, used 6+8*N */
	for (unsigned n = 1; n <= 32768; n <<= 1) {
		CHECK_EQ(gv_vring_desc_size(n), sizeof(struct vring_desc) * n);
		CHECK_EQ(gv_vring_avail_size(n), sizeof(struct vring_avail) + sizeof(__virtio16) * n + 2);
		CHECK_EQ(gv_vring_used_size(n), sizeof(struct vring_used) + sizeof(struct vring_used_elem) * n + 2);
	}
	/* the legacy layout helper of the kernel header agrees for the sum */
	CHECK_EQ(vring_size(256, 4096), 4096 + ((gv_vring_avail_size(256) + 4095) & ~4095u) + gv_vring_used_size(256));
	CHECK_EQ(gv_pages_for(gv_vring_desc_size(256)), 1);
	CHECK_EQ(gv_pages_for(gv_vring_desc_size(257)), 2);
	return 0;
}

static int t_grant_entry_layout(void)
{
	struct grant_entry_v1 e = { 0 };

	CHECK_EQ(sizeof(e), 8);
	CHECK_EQ(GTF_permit_access, 1);
	CHECK_EQ(GTF_readonly, 4);
	CHECK_EQ(GTF_reading, 8);
	CHECK_EQ(GTF_writing, 16);
	CHECK_EQ(XenbusStateInitialising, 1);
	CHECK_EQ(XenbusStateClosed, 6);
	CHECK_EQ(VIRTIO_F_ACCESS_PLATFORM, 33);
	CHECK_EQ(VIRTIO_F_VERSION_1, 32);
	return 0;
}

static const struct gv_test tests[] = {
	TEST(t_encode_roundtrip), TEST(t_encode_matches_linux), TEST(t_decode_rejects),
	TEST(t_vring_sizes), TEST(t_grant_entry_layout), { 0 }
};

int main(int argc, char **argv) { return gv_test_main(argc, argv, tests); }
