/*
 * test/test_stats.c: the backend's request counters and latency histogram
 * (backend/stats.h, stats.c), what --status --json reports: every latency
 * falls in a bucket whose edges hold it and that is at most 25% wide (above
 * 256 ns), buckets in order, percentiles of known distributions, sums;
 * and the JSON strings of the status (control.c), whose text (a guest's
 * name) comes from xenstore.
 */
#include <stdlib.h>
#include "check.h"
#include "../backend/service.h"
#include "../backend/stats.h"

/* the lower edge of bucket b: the upper edge of the one before */
static uint64_t lower(unsigned b)
{
	return b ? gvbe_lat_bucket_upper(b - 1) : 0;
}

static int t_buckets_hold_their_values(void)
{
	/* every power of two and its neighbours, 1 ns to 2^40 ns */
	for (unsigned e = 0; e <= 40; e++) {
		for (int d = -1; d <= 1; d++) {
			uint64_t ns = ((uint64_t)1 << e) + (uint64_t)(int64_t)d;
			unsigned b = gvbe_lat_bucket(ns);

			CHECK_MSG(b < GVBE_LAT_BUCKETS, "%" PRIu64 " ns: bucket %u", ns, b);
			CHECK_MSG(lower(b) <= ns && ns < gvbe_lat_bucket_upper(b),
			          "%" PRIu64 " ns in bucket %u [%" PRIu64 ", %" PRIu64 ")", ns, b,
			          lower(b), gvbe_lat_bucket_upper(b));
		}
	}
	CHECK_EQ(gvbe_lat_bucket(UINT64_MAX), GVBE_LAT_BUCKETS - 1);
	return 0;
}

static int t_buckets_ordered_and_narrow(void)
{
	for (unsigned b = 1; b < GVBE_LAT_BUCKETS - 1; b++) {
		uint64_t lo = lower(b), hi = gvbe_lat_bucket_upper(b);

		CHECK_MSG(hi > lo, "bucket %u: [%" PRIu64 ", %" PRIu64 ")", b, lo, hi);
		/* the first four are 64 ns wide; then at most a quarter of the edge */
		if (lo >= 256)
			CHECK_MSG((hi - lo) * 4 <= lo, "bucket %u: [%" PRIu64 ", %" PRIu64 ") wider than 25%%",
			          b, lo, hi);
		CHECK_EQ(gvbe_lat_bucket(lo), b);
		CHECK_EQ(gvbe_lat_bucket(hi - 1), b);
	}
	/* the last bucket starts past 8 minutes */
	CHECK(lower(GVBE_LAT_BUCKETS - 1) > 480ull * 1000000000ull);
	return 0;
}

static int t_percentiles(void)
{
	struct gvbe_qstats s = { 0 };
	uint64_t p50, p99;

	CHECK_EQ(gvbe_qstats_percentile(&s, 500), 0);
	/* 98 at 10 us, 2 at 1 ms: p50 near 10 us, p99 near 1 ms */
	for (int k = 0; k < 98; k++)
		gvbe_qstats_latency(&s, 10000);
	gvbe_qstats_latency(&s, 1000000);
	gvbe_qstats_latency(&s, 1000000);
	p50 = gvbe_qstats_percentile(&s, 500);
	p99 = gvbe_qstats_percentile(&s, 990);
	CHECK_MSG(p50 >= 10000 && p50 <= 12500, "p50 %" PRIu64, p50);
	CHECK_MSG(p99 == 1000000, "p99 %" PRIu64 " (capped by the max)", p99);
	CHECK_EQ(s.lat_max_ns, 1000000);
	/* one more at 10 us: 99 of 101 at 10 us, p99 still the slow ones */
	gvbe_qstats_latency(&s, 10000);
	CHECK_EQ(gvbe_qstats_percentile(&s, 990), 1000000);
	CHECK(gvbe_qstats_percentile(&s, 980) <= 12500);
	return 0;
}

static int t_counters_and_sums(void)
{
	struct gvbe_qstats a = { 0 }, b = { 0 }, t = { 0 };

	gvbe_qstats_request(&a, GVBE_STAT_READ, 4096, 0);
	gvbe_qstats_request(&a, GVBE_STAT_WRITE, 512, 0);
	gvbe_qstats_request(&a, GVBE_STAT_WRITE, 0, 1);
	gvbe_qstats_request(&b, GVBE_STAT_FLUSH, 0, 0);
	gvbe_qstats_request(&b, GVBE_STAT_OTHER, 0, 1);
	gvbe_qstats_latency(&a, 100);
	gvbe_qstats_latency(&b, 5000);
	gvbe_qstats_add(&t, &a);
	gvbe_qstats_add(&t, &b);
	CHECK_EQ(t.reads, 1);
	CHECK_EQ(t.writes, 2);
	CHECK_EQ(t.flushes, 1);
	CHECK_EQ(t.others, 1);
	CHECK_EQ(t.bytes_read, 4096);
	CHECK_EQ(t.bytes_written, 512);
	CHECK_EQ(t.errors, 2);
	CHECK_EQ(t.lat_max_ns, 5000);
	CHECK_EQ(t.lat[gvbe_lat_bucket(100)] + t.lat[gvbe_lat_bucket(5000)], 2);
	return 0;
}

/* str as gvbe_json_str writes it */
static int json_is(const char *str, const char *want)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int same;

	if (!f)
		return 0;
	gvbe_json_str(f, str);
	fclose(f);
	same = !strcmp(buf, want);
	if (!same)
		fprintf(stderr, "json of \"%s\": %s, expected %s\n", str ? str : "(null)", buf, want);
	free(buf);
	return same;
}

static int t_json_strings(void)
{
	CHECK(json_is(NULL, "null"));
	CHECK(json_is("guest1", "\"guest1\""));
	CHECK(json_is("a\"b\\c", "\"a\\\"b\\\\c\""));
	CHECK(json_is("tab\tnl\n\x01\x7f", "\"tab\\u0009nl\\u000a\\u0001\\u007f\""));
	/* UTF-8 kept; a lone continuation byte, a truncated sequence, 0xff replaced */
	CHECK(json_is("d\xc3\xa9j\xc3\xa0 \xe2\x82\xac", "\"d\xc3\xa9j\xc3\xa0 \xe2\x82\xac\""));
	CHECK(json_is("\x80x", "\"\\ufffdx\""));
	CHECK(json_is("\xe2\x82", "\"\\ufffd\\ufffd\""));
	CHECK(json_is("\xff\xc0\xaf", "\"\\ufffd\\ufffd\\ufffd\""));
	return 0;
}

static const struct gv_test tests[] = {
	TEST(t_buckets_hold_their_values),
	TEST(t_buckets_ordered_and_narrow),
	TEST(t_percentiles),
	TEST(t_counters_and_sums),
	TEST(t_json_strings),
	{ 0 }
};

int main(int argc, char **argv)
{
	return gv_test_main(argc, argv, tests);
}
