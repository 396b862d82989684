/*
 * backend/stats.c: the cold half of stats.h: bucket edges, sums and
 * percentiles, computed when the status is asked for.
 */
#include "stats.h"

uint64_t gvbe_lat_bucket_upper(unsigned b)
{
	unsigned e;

	if (b < 4)
		return (uint64_t)(b + 1) << 6;
	if (b >= GVBE_LAT_BUCKETS - 1)
		return UINT64_MAX;
	e = b / 4 + 1;
	return ((uint64_t)(5 + b % 4) << (e - 2)) << 6;
}

void gvbe_qstats_add(struct gvbe_qstats *dst, const struct gvbe_qstats *src)
{
	dst->reads += src->reads;
	dst->writes += src->writes;
	dst->flushes += src->flushes;
	dst->others += src->others;
	dst->bytes_read += src->bytes_read;
	dst->bytes_written += src->bytes_written;
	dst->errors += src->errors;
	if (src->lat_max_ns > dst->lat_max_ns)
		dst->lat_max_ns = src->lat_max_ns;
	for (unsigned b = 0; b < GVBE_LAT_BUCKETS; b++)
		dst->lat[b] += src->lat[b];
}

uint64_t gvbe_qstats_percentile(const struct gvbe_qstats *s, unsigned permille)
{
	uint64_t total = 0, rank, seen = 0;

	for (unsigned b = 0; b < GVBE_LAT_BUCKETS; b++)
		total += s->lat[b];
	if (!total)
		return 0;
	/* the smallest latency with at least permille/1000 of the completions
	 * at or below it: rank ceil(total * permille / 1000), 1-based */
	rank = (total * permille + 999) / 1000;
	if (!rank)
		rank = 1;
	for (unsigned b = 0; b < GVBE_LAT_BUCKETS; b++) {
		seen += s->lat[b];
		if (seen >= rank) {
			uint64_t up = gvbe_lat_bucket_upper(b);

			return up < s->lat_max_ns ? up : s->lat_max_ns;
		}
	}
	return s->lat_max_ns;
}
