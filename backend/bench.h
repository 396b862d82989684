/*
 * backend/bench.h: benchmark-only code of gv-backend-bench (built with -DGVBE_BENCH,
 * never into the installed gv-backend): direct.c, the pool mapped once
 * (make bench's `direct` row, no isolation on purpose).
 */
#ifndef GVBE_BENCH_H
#define GVBE_BENCH_H

#ifndef GVBE_BENCH
#error "bench.h is for the benchmark build (-DGVBE_BENCH) only"
#endif
#include <stdbool.h>
#include "platform.h"

struct gvbe_direct;
int  gvbe_direct_create(struct gv_platform *p, domid_t from, struct gvbe_direct **out);
/* Unmaps every page and frees; NULL is fine. */
void gvbe_direct_destroy(struct gvbe_direct *dt);
/* The page of ref (writable if write), mapped on first touch and kept. NULL
 * if it cannot be mapped. */
void *gvbe_direct_page(struct gvbe_direct *dt, grant_ref_t ref, bool write);

#endif
