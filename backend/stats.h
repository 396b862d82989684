/*
 * backend/stats.h: per-queue request counters and a fixed latency histogram
 * (what `gv-backend --status --json` reports, docs/admin.md §4).
 *
 * The hot path pays one clock read when a request is taken from the ring,
 * one when it completes, a few increments and one histogram bucket: no
 * allocation, no lock (a queue is served by one thread at a time; --status reads a queue thread's under its lock), nothing proportional to
 * the history. Percentiles are computed only when the status is asked for.
 *
 * Latency is measured from the moment the backend took the request from the
 * ring to the moment it put the used element in it: the backend's own
 * service time, backing store included (not the guest's queueing before the
 * kick, nor the interrupt to the guest).
 *
 * The histogram: GVBE_LAT_BUCKETS buckets, 4 per power of two from 256 ns
 * (below that, 64 ns wide), so a bucket is at most 25% wide: a percentile
 * is reported as the upper edge of its bucket, within 25% above the true
 * value. The last bucket takes everything from 8 minutes up.
 */
#ifndef GVBE_STATS_H
#define GVBE_STATS_H

#include <stdint.h>
#include <time.h>

#define GVBE_LAT_BUCKETS 128u

/* What a request was, for the counters (virtio-blk's types; an rng request
 * is a read). */
enum gvbe_stat_op { GVBE_STAT_READ, GVBE_STAT_WRITE, GVBE_STAT_FLUSH, GVBE_STAT_OTHER };

struct gvbe_qstats {
	uint64_t reads, writes, flushes, others;    /* completed requests by type */
	uint64_t bytes_read, bytes_written;         /* data moved by successful ones */
	uint64_t errors;                            /* answered with an error status */
	uint64_t lat_max_ns;
	uint64_t lat[GVBE_LAT_BUCKETS];             /* completions by latency bucket */
};

static inline uint64_t gvbe_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The bucket of a latency: 64 ns units; below 4 units one bucket each,
 * then 4 per power of two. */
static inline unsigned gvbe_lat_bucket(uint64_t ns)
{
	uint64_t u = ns >> 6;
	unsigned e, b;

	if (u < 4)
		return (unsigned)u;
	e = 63u - (unsigned)__builtin_clzll(u);     /* >= 2 */
	b = 4u * (e - 1u) + (unsigned)((u >> (e - 2u)) & 3u);
	return b < GVBE_LAT_BUCKETS ? b : GVBE_LAT_BUCKETS - 1u;
}

/* A request completed after ns. */
static inline void gvbe_qstats_latency(struct gvbe_qstats *s, uint64_t ns)
{
	s->lat[gvbe_lat_bucket(ns)]++;
	if (ns > s->lat_max_ns)
		s->lat_max_ns = ns;
}

/* A request of type op completed; bytes of data moved (0 when it failed),
 * failed: answered with an error status. */
static inline void gvbe_qstats_request(struct gvbe_qstats *s, enum gvbe_stat_op op,
                                       uint64_t bytes, int failed)
{
	switch (op) {
	case GVBE_STAT_READ:  s->reads++;   s->bytes_read += bytes;    break;
	case GVBE_STAT_WRITE: s->writes++;  s->bytes_written += bytes; break;
	case GVBE_STAT_FLUSH: s->flushes++; break;
	default:              s->others++;  break;
	}
	if (failed)
		s->errors++;
}

/* ---- stats.c: when the status is asked for ---- */
/* The exclusive upper edge of bucket b, in ns. */
uint64_t gvbe_lat_bucket_upper(unsigned b);
/* dst += src (queues into a device, a connection into the device's totals). */
void gvbe_qstats_add(struct gvbe_qstats *dst, const struct gvbe_qstats *src);
/* The latency (ns) at or below which permille/1000 of the completions
 * fell: the upper edge of that bucket, at most the maximum seen; 0 if
 * nothing completed. */
uint64_t gvbe_qstats_percentile(const struct gvbe_qstats *s, unsigned permille);

#endif
