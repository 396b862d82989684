/*
 * backend/mapcache.h: persistent-pool mappings of one device, bounded, LRU (mapcache.c).
 */
#ifndef GVBE_MAPCACHE_H
#define GVBE_MAPCACHE_H

#include <stdbool.h>
#include <stdint.h>
#include "platform.h"

#define GVBE_MAX_PERSISTENT   1024u  /* max-persistent-grants (pages) */

struct gvbe_mapcache;
struct gvbe_mapcache_stats {
	uint64_t hits, misses, evictions;
	unsigned pages;                 /* pages mapped by the cache now */
	unsigned capacity;
};

/* A cache for grants of domain `from`, holding at most capacity pages. */
int  gvbe_mapcache_create(struct gv_platform *p, domid_t from, unsigned capacity,
                        struct gvbe_mapcache **out);
/* Unmaps everything and frees the cache; NULL is fine. */
void gvbe_mapcache_destroy(struct gvbe_mapcache *mc);
/* Starts a request: mappings used (looked up or inserted) from now on are
 * pinned (never evicted) until the next begin. */
uint64_t gvbe_mapcache_begin(struct gvbe_mapcache *mc);
/* Several requests in flight: mappings used by requests begun at or after
 * generation floor (the oldest in flight) stay pinned. begin sets it to the
 * new request's own generation. */
void gvbe_mapcache_set_floor(struct gvbe_mapcache *mc, uint64_t floor);
/* The page of ref mapped (writable if write), or NULL. A hit counts and
 * moves its mapping to the front of the LRU. */
void *gvbe_mapcache_lookup(struct gvbe_mapcache *mc, grant_ref_t ref, bool write);
/* Hands the cache a batch just mapped (addr, refs[n], write). Returns 1 if
 * the cache keeps it (it will unmap it on eviction), 0 if it cannot (more
 * than fits beside the pinned mappings): the caller unmaps it. Evicts LRU
 * mappings by unmapping them. */
int  gvbe_mapcache_insert(struct gvbe_mapcache *mc, void *addr, const grant_ref_t *refs,
                        unsigned n, bool write);
/* Unmaps every mapping (the device disconnects). */
void gvbe_mapcache_flush(struct gvbe_mapcache *mc);
void gvbe_mapcache_get_stats(const struct gvbe_mapcache *mc, struct gvbe_mapcache_stats *st);

#endif
