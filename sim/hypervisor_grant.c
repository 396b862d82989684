/*
 * sim/hypervisor_grant.c: grant tables of the simulated domains, and the two
 * guest drivers that use them: gntalloc (grant_alloc/grant_end, the granting
 * side) and gntdev (map/unmap, the mapping side).
 *
 * Each domain's table is an array of real struct grant_entry_v1 in a memfd
 * its clients map read-only. Only this daemon writes it, but it follows the
 * v1 protocol exactly as the two real writers do: the granting guest kernel
 * (domid and frame first, a release barrier, then flags) and Xen (pins set
 * GTF_reading/GTF_writing with compare-and-swap; the granter ends access with
 * a compare-and-swap of flags to 0 that fails while either bit is set).
 *
 * Guest memory: each grant_alloc gets its own memfd of `count` pages, and
 * frame numbers from a daemon-global counter. A mapper is handed the memfd
 * itself (writable map) or a read-only reopen of it, so a read-only mapping
 * cannot be made writable by any mprotect.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "log.h"
#include "hypervisor.h"

static uint32_t next_frame = 0x10000;   /* a guest-frame-looking number */

static inline uint16_t entry_flags(const struct grant_entry_v1 *e)
{
	return __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
}

/* The granter's end of access (Linux gnttab_end_foreign_access_ref_v1):
 * fails, leaving the entry as it is, while Xen has it pinned. */
static bool entry_try_end(struct grant_entry_v1 *e)
{
	uint16_t flags = entry_flags(e);

	do {
		if (flags & (GTF_reading | GTF_writing))
			return false;
	} while (!__atomic_compare_exchange_n(&e->flags, &flags, 0, false,
	                                      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
	return true;
}

int hv_gnttab_init(struct hv_domain *d)
{
	d->grefs = calloc(SIM_NR_GREFS, sizeof(*d->grefs));
	if (!d->grefs)
		return -ENOMEM;
	for (unsigned r = 0; r < SIM_NR_RESERVED_GREFS; r++)
		d->grefs[r].state = GREF_RESERVED;
	d->nr_free_grefs = SIM_NR_GREFS - SIM_NR_RESERVED_GREFS;
	d->rover = SIM_NR_RESERVED_GREFS;
	return 0;
}

/* Guest pages are recycled, as a guest kernel reuses the pages it frees:
 * a freed allocation's memfd (and its read-only reopen) waits here with its
 * pages given back (a hole reads as zeros, as gntalloc's fresh pages), for
 * the next allocation that fits it, instead of a memfd_create, ftruncate
 * and close per allocation. Bounded: PAGE_CACHE_FDS memfds of at most
 * PAGE_CACHE_MAX_PAGES pages each. */
#define PAGE_CACHE_FDS        64u
#define PAGE_CACHE_MAX_PAGES  256u
static struct { int fd, ro_fd; unsigned pages; } page_cache[PAGE_CACHE_FDS];
static unsigned page_cache_n;

/* A memfd of at least count pages (at most twice that): from the cache,
 * else a fresh one. -errno. */
static int pages_get(unsigned count, int *ro_fd, unsigned *pages)
{
	unsigned best = page_cache_n;
	int fd;

	for (unsigned i = 0; i < page_cache_n; i++)
		if (page_cache[i].pages >= count && page_cache[i].pages <= 2 * count &&
		    (best == page_cache_n || page_cache[i].pages < page_cache[best].pages))
			best = i;
	if (best < page_cache_n) {
		fd = page_cache[best].fd;
		*ro_fd = page_cache[best].ro_fd;
		*pages = page_cache[best].pages;
		page_cache[best] = page_cache[--page_cache_n];
		return fd;
	}
	fd = memfd_create("gv-guest-pages", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)count * GV_PAGE_SIZE) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	*ro_fd = -1;
	*pages = count;
	return fd;
}

static void pages_put(int fd, int ro_fd, unsigned pages)
{
	if (page_cache_n < PAGE_CACHE_FDS && pages <= PAGE_CACHE_MAX_PAGES &&
	    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
	              (off_t)pages * GV_PAGE_SIZE) == 0) {
		page_cache[page_cache_n].fd = fd;
		page_cache[page_cache_n].ro_fd = ro_fd;
		page_cache[page_cache_n].pages = pages;
		page_cache_n++;
		return;
	}
	close(fd);
	if (ro_fd >= 0)
		close(ro_fd);
}

static void alloc_free(struct hv_alloc *a)
{
	struct hv_domain *d = a->dom;

	pages_put(a->fd, a->ro_fd, a->fd_pages);
	d->nr_allocs--;
	free(a);
}

/* Only at daemon stop, after every connection is closed: drops what deferred
 * ends still hold. */
void hv_gnttab_fini(struct hv_domain *d)
{
	if (!d->grefs)
		return;
	for (unsigned r = 0; r < SIM_NR_GREFS; r++) {
		struct hv_alloc *a = d->grefs[r].alloc;

		if (!a)
			continue;
		for (unsigned i = 0; i < a->count; i++)
			if (d->grefs[a->refs[i]].alloc == a)
				d->grefs[a->refs[i]].alloc = NULL;
		alloc_free(a);
	}
	free(d->grefs);
	d->grefs = NULL;
}

/* Linux's gntalloc limits what all users in one guest kernel may grant
 * (module parameter `limit`, 1024 pages by default); the simulation keeps
 * the same limit so that what passes here does not run out on Xen. */
unsigned sim_gntalloc_limit = 1024;

/* Picks `count` free refs and marks them active. Like a fresh Linux free
 * list they come out consecutive when a run is free; with --scatter-refs
 * never two consecutive ones in a row (unless the table is nearly full). */
static int gref_pick(struct hv_domain *d, unsigned count, grant_ref_t *out)
{
	const unsigned nr = SIM_NR_GREFS;
	unsigned got = 0;

	if (d->nr_free_grefs < count)
		return -ENOSPC;
	if (!sim_scatter_refs) {
		/* next fit for a whole run, from the rover; a run does not wrap */
		unsigned run = 0;

		for (unsigned k = 0; k < nr; k++) {
			grant_ref_t r = (d->rover + k) % nr;

			if (r == 0)
				run = 0;
			run = d->grefs[r].state == GREF_FREE ? run + 1 : 0;
			if (run == count) {
				for (unsigned i = 0; i < count; i++) {
					out[i] = r + 1 - count + i;
					d->grefs[out[i]].state = GREF_ACTIVE;
				}
				d->rover = (r + 1) % nr;
				return 0;
			}
		}
	}
	/* pass 0 (scatter only): every other free ref; pass 1: any free ref */
	for (int pass = sim_scatter_refs ? 0 : 1; pass < 2 && got < count; pass++) {
		for (unsigned k = 0; k < nr && got < count; k++) {
			grant_ref_t r = (d->rover + k) % nr;

			if (d->grefs[r].state != GREF_FREE)
				continue;
			if (pass == 0 && got && r == out[got - 1] + 1)
				continue;
			d->grefs[r].state = GREF_ACTIVE;
			out[got++] = r;
		}
	}
	if (got < count) {
		while (got)
			d->grefs[out[--got]].state = GREF_FREE;
		return -ENOSPC;
	}
	/* move on, so that freed refs are not handed out again at once */
	d->rover = (out[got - 1] + 1 + (sim_scatter_refs ? 3 : 0)) % nr;
	return 0;
}

static struct hv_alloc *conn_find_alloc(struct hv_conn *c, uint64_t handle)
{
	struct hv_link *h = &c->allocs[handle % HV_HASH];

	for (struct hv_link *l = h->next; l != h; l = l->next) {
		struct hv_alloc *a = hv_container(l, struct hv_alloc, link);

		if (a->handle == handle)
			return a;
	}
	return NULL;
}

static struct hv_map *conn_find_map(struct hv_conn *c, uint64_t handle)
{
	struct hv_link *h = &c->maps[handle % HV_HASH];

	for (struct hv_link *l = h->next; l != h; l = l->next) {
		struct hv_map *m = hv_container(l, struct hv_map, link);

		if (m->handle == handle)
			return m;
	}
	return NULL;
}

/* Clears the notify byte (through the daemon's own fd of the page) and
 * sends the event, if the port still has the binding it had when armed. */
static void notify_fire(struct hv_domain *port_dom, const struct hv_notify *n,
                        int page_fd, uint32_t page)
{
	if (n->offset != GV_NO_NOTIFY_OFFSET) {
		static const char zero;

		if (pwrite(page_fd, &zero, 1, (off_t)page * GV_PAGE_SIZE + n->offset) != 1)
			gv_warn("notify byte: %s", strerror(errno));
	}
	if (n->port != GV_NO_PORT && n->port < SIM_NR_PORTS &&
	    port_dom->ports[n->port].state != PORT_FREE &&
	    port_dom->ports[n->port].serial == n->port_serial)
		hv_evtchn_send(port_dom, n->port);
}

int hv_grant_alloc(struct hv_conn *c, const struct sim_req *req, grant_ref_t *refs,
                   uint64_t *handle, int *fd_out)
{
	struct hv_domain *d = c->dom;
	unsigned count = req->count;
	bool ro = req->flags & GV_GRANT_READONLY;
	struct hv_notify notify;
	struct hv_alloc *a;
	int rc;

	if (count == 0 || count > SIM_MAX_BATCH || req->domid >= DOMID_FIRST_RESERVED ||
	    (req->flags & ~GV_GRANT_READONLY))
		return -EINVAL;
	rc = hv_notify_arm(c, req->notify_offset, req->notify_port, &notify);
	if (rc)
		return rc;
	/* gntalloc's limit counts every page the guest kernel has granted */
	if (d->grants_active + count > sim_gntalloc_limit)
		return -ENOSPC;
	a = calloc(1, sizeof(*a) + count * sizeof(a->refs[0]));
	if (!a)
		return -ENOMEM;
	a->fd = pages_get(count, &a->ro_fd, &a->fd_pages);
	if (a->fd < 0) {
		rc = a->fd;
		goto free_alloc;
	}
	rc = gref_pick(d, count, a->refs);
	if (rc)
		goto put_pages;

	a->dom = d;
	a->owner = c;
	a->handle = c->next_handle++;
	a->to = (domid_t)req->domid;
	a->readonly = ro;
	a->count = count;
	a->live = count;
	a->notify = notify;
	if (next_frame > UINT32_MAX - SIM_MAX_BATCH)
		next_frame = 0x10000;   /* ~16 TiB granted since start: wrap */
	a->frame_base = next_frame;
	next_frame += count;
	for (unsigned i = 0; i < count; i++) {
		grant_ref_t r = a->refs[i];
		struct grant_entry_v1 *e = &d->gtab[r];

		d->grefs[r] = (struct hv_gref){ .alloc = a, .page = i, .state = GREF_ACTIVE };
		/* as the granting guest kernel does: the peer may only see
		 * GTF_permit_access once domid and frame are in place */
		e->domid = a->to;
		e->frame = a->frame_base + i;
		__atomic_store_n(&e->flags, (uint16_t)(GTF_permit_access | (ro ? GTF_readonly : 0)),
		                 __ATOMIC_RELEASE);
		refs[i] = r;
	}
	d->nr_free_grefs -= count;
	d->nr_allocs++;
	d->grants_active += count;
	hv_list_add(&c->allocs[a->handle % HV_HASH], &a->link);
	*handle = a->handle;
	*fd_out = a->fd;
	return 0;

put_pages:
	pages_put(a->fd, a->ro_fd, a->fd_pages);
free_alloc:
	free(a);
	return rc;
}

static void alloc_maybe_free(struct hv_alloc *a)
{
	struct hv_domain *d = a->dom;

	if (a->owner || a->live || a->copy_refs)
		return;
	alloc_free(a);
	hv_domain_maybe_free(d);
}

/* The owner lets go of an allocation: explicitly (leak what is mapped) or
 * because its connection closed (end what is mapped at its last unmap).
 * Returns the number of pages still mapped. */
static unsigned alloc_release(struct hv_alloc *a, bool explicit)
{
	struct hv_domain *d = a->dom;
	unsigned busy = 0;

	hv_list_del(&a->link);
	a->owner = NULL;
	notify_fire(d, &a->notify, a->fd, 0);
	for (unsigned i = 0; i < a->count; i++) {
		grant_ref_t r = a->refs[i];
		struct hv_gref *g = &d->grefs[r];

		if (g->state != GREF_ACTIVE)
			continue;
		if (!g->pins && entry_try_end(&d->gtab[r])) {
			*g = (struct hv_gref){ .state = GREF_FREE };
			d->nr_free_grefs++;
			d->grants_active--;
			a->live--;
			continue;
		}
		busy++;
		if (explicit) {
			g->state = GREF_LEAKED;
			d->grants_active--;
			d->grants_leaked++;
		} else {
			g->state = GREF_ENDING;
		}
	}
	return busy;
}

int hv_grant_end(struct hv_conn *c, uint64_t handle, uint32_t *leaked)
{
	struct hv_alloc *a = conn_find_alloc(c, handle);
	unsigned busy;

	if (!a)
		return -EINVAL;
	busy = alloc_release(a, true);
	*leaked = busy;
	if (busy)
		gv_debug("dom%u: %u page(s) still mapped at end: leaked", c->dom->domid, busy);
	alloc_maybe_free(a);
	return busy ? -EBUSY : 0;
}

/* Xen's unpin: GTF_writing goes with the last writable pin, GTF_reading with
 * the last pin; a page whose owner already let go is ended then. */
static void gref_unpin(struct hv_domain *d, grant_ref_t r, bool write)
{
	struct hv_gref *g = &d->grefs[r];
	struct grant_entry_v1 *e = &d->gtab[r];
	struct hv_alloc *a = g->alloc;

	g->pins--;
	if (write)
		g->wpins--;
	d->mapped_by_others--;
	if (!g->wpins)
		__atomic_fetch_and(&e->flags, (uint16_t)~GTF_writing, __ATOMIC_RELEASE);
	if (!g->pins)
		__atomic_fetch_and(&e->flags, (uint16_t)~GTF_reading, __ATOMIC_RELEASE);
	if (g->pins || (g->state != GREF_ENDING && g->state != GREF_LEAKED))
		return;
	if (!entry_try_end(e)) {
		/* nothing else pins it here: only a bug could get us here */
		gv_err("dom%u: grant ref %u cannot be ended", d->domid, r);
		return;
	}
	if (g->state == GREF_ENDING) {
		*g = (struct hv_gref){ .state = GREF_FREE };
		d->nr_free_grefs++;
		d->grants_active--;
	} else {
		*g = (struct hv_gref){ .state = GREF_DEAD };
	}
	a->live--;
	alloc_maybe_free(a);
}

/* Opens (once) the read-only view of an allocation's pages. */
static int alloc_ro_fd(struct hv_alloc *a)
{
	char path[64];

	if (a->ro_fd >= 0)
		return a->ro_fd;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", a->fd);
	a->ro_fd = open(path, O_RDONLY | O_CLOEXEC);
	return a->ro_fd >= 0 ? a->ro_fd : -errno;
}

/* Xen's checks of one ref `from` granted, for domain `me` to use: in
 * range, granted to me (from one copy of the entry, only the copy is
 * checked), writable if write, and a page of a live allocation. */
static int gref_check(struct hv_domain *from, const struct hv_domain *me, grant_ref_t r,
                      bool write, struct hv_gref **out)
{
	struct grant_entry_v1 e;
	struct hv_gref *g;

	if (r >= SIM_NR_GREFS)
		return -EINVAL;
	e.flags = entry_flags(&from->gtab[r]);
	e.domid = from->gtab[r].domid;
	e.frame = from->gtab[r].frame;
	if ((e.flags & GTF_type_mask) != GTF_permit_access || e.domid != me->domid)
		return -EINVAL;
	if (write && (e.flags & GTF_readonly))
		return -EACCES;
	g = &from->grefs[r];
	if (!g->alloc || g->state == GREF_FREE || g->state == GREF_RESERVED ||
	    e.frame != g->alloc->frame_base + g->page)
		return -EINVAL;
	*out = g;
	return 0;
}

int hv_map(struct hv_conn *c, const struct sim_req *req, uint64_t *handle,
           uint32_t *pages, int *fds, unsigned *nfds)
{
	struct hv_domain *me = c->dom, *from;
	unsigned count = req->count, n = 0;
	bool write = req->flags & GV_MAP_WRITE;
	struct hv_alloc *alloc_of_fd[SIM_MAX_BATCH];
	struct hv_notify notify;
	struct hv_map *m;
	int rc;

	if (count == 0 || count > SIM_MAX_BATCH || (req->flags & ~GV_MAP_WRITE))
		return -EINVAL;
	from = req->domid < DOMID_FIRST_RESERVED ? hv_domain_get((domid_t)req->domid) : NULL;
	if (!from)
		return -ESRCH;
	/* clearing a byte needs a writable mapping (gntdev refuses it too) */
	if (req->notify_offset != GV_NO_NOTIFY_OFFSET && !write)
		return -EINVAL;
	rc = hv_notify_arm(c, req->notify_offset, req->notify_port, &notify);
	if (rc)
		return rc;

	/* validate everything first: all or nothing */
	for (unsigned i = 0; i < count; i++) {
		grant_ref_t r = req->data[i];
		struct hv_gref *g;
		unsigned k;

		rc = gref_check(from, me, r, write, &g);
		if (rc)
			return rc;
		/* one descriptor per allocation in the batch */
		for (k = n; k > 0 && alloc_of_fd[k - 1] != g->alloc; k--)
			;
		if (k == 0) {
			int fd = write ? g->alloc->fd : alloc_ro_fd(g->alloc);

			if (fd < 0)
				return fd;
			alloc_of_fd[n] = g->alloc;
			fds[n++] = fd;
			k = n;
		}
		pages[2 * i] = k - 1;
		pages[2 * i + 1] = g->page;
	}

	m = calloc(1, sizeof(*m) + count * sizeof(m->refs[0]));
	if (!m)
		return -ENOMEM;
	/* pin, as Xen does: GTF_reading always, GTF_writing for a writable map */
	for (unsigned i = 0; i < count; i++) {
		grant_ref_t r = req->data[i];
		struct grant_entry_v1 *e = &from->gtab[r];
		uint16_t flags = entry_flags(e);
		uint16_t want;

		do {
			want = flags | GTF_reading | (write ? GTF_writing : 0);
		} while (!__atomic_compare_exchange_n(&e->flags, &flags, want, false,
		                                      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
		from->grefs[r].pins++;
		if (write)
			from->grefs[r].wpins++;
		from->mapped_by_others++;
		m->refs[i] = r;
	}
	m->handle = c->next_handle++;
	m->from = from;
	m->write = write;
	m->count = count;
	m->notify = notify;
	me->maps_active += count;
	hv_list_add(&c->maps[m->handle % HV_HASH], &m->link);
	*handle = m->handle;
	*nfds = n;
	return 0;
}

/* GNTTABOP_copy: every segment is checked as Xen checks it (the ref as for
 * a map, writable for a copy into it, offset and length within the page);
 * all or nothing. The copy itself is done by the client on the
 * descriptors handed back (writable only for a copy into the grant), right
 * after this answer: unlike Xen, nothing is pinned across it; the
 * descriptor keeps the pages alive, so a grant ended in between only makes
 * the copy land in pages no one grants any more. */
int hv_grant_copy(struct hv_conn *c, const struct sim_req *req, uint32_t *pages,
                  int *fds, unsigned *nfds, uint64_t *bad_seg)
{
	struct hv_domain *me = c->dom, *from;
	unsigned count = req->count, n = 0;
	struct hv_alloc *alloc_of_fd[SIM_COPY_MAX_SEGS];
	bool fd_write[SIM_COPY_MAX_SEGS];

	if (count == 0 || count > SIM_COPY_MAX_SEGS || req->flags)
		return -EINVAL;
	from = req->domid < DOMID_FIRST_RESERVED ? hv_domain_get((domid_t)req->domid) : NULL;
	if (!from)
		return -ESRCH;
	for (unsigned i = 0; i < count; i++) {
		grant_ref_t r = req->data[2 * i];
		uint32_t w = req->data[2 * i + 1];
		bool to = w & SIM_COPY_TO_GRANT;
		unsigned off = SIM_COPY_OFFSET(w), len = SIM_COPY_LEN(w), k;
		struct hv_gref *g;
		int rc;

		*bad_seg = i;
		if ((w & ~(SIM_COPY_TO_GRANT | 0x1ffffffu)) || !len || off + len > GV_PAGE_SIZE)
			return -EINVAL;   /* GNTST_bad_copy_arg */
		rc = gref_check(from, me, r, to, &g);
		if (rc)
			return rc;
		for (k = n; k > 0 && (alloc_of_fd[k - 1] != g->alloc || fd_write[k - 1] != to); k--)
			;
		if (k == 0) {
			int fd = to ? g->alloc->fd : alloc_ro_fd(g->alloc);

			if (fd < 0)
				return fd;
			alloc_of_fd[n] = g->alloc;
			fd_write[n] = to;
			fds[n++] = fd;
			k = n;
		}
		pages[2 * i] = k - 1;
		pages[2 * i + 1] = g->page;
	}
	/* kept (not recycled) until the client's next request */
	for (unsigned k = 0; k < n; k++) {
		alloc_of_fd[k]->copy_refs++;
		c->copy_allocs[c->ncopy_allocs++] = alloc_of_fd[k];
	}
	*nfds = n;
	return 0;
}

void hv_copy_release(struct hv_conn *c)
{
	while (c->ncopy_allocs) {
		struct hv_alloc *a = c->copy_allocs[--c->ncopy_allocs];

		a->copy_refs--;
		alloc_maybe_free(a);
	}
}

static void map_release(struct hv_conn *c, struct hv_map *m)
{
	struct hv_gref *first = &m->from->grefs[m->refs[0]];

	struct hv_notify byte_only = m->notify, event_only = m->notify;

	hv_list_del(&m->link);
	/* Like gntdev: the byte is cleared while the page is still mapped (the
	 * first page is pinned by this map, so its allocation is alive), the
	 * pages are unmapped, and only then is the event sent, so a granter
	 * woken by it finds GTF_reading/GTF_writing already clear and can end. */
	byte_only.port = GV_NO_PORT;
	event_only.offset = GV_NO_NOTIFY_OFFSET;
	notify_fire(c->dom, &byte_only, first->alloc->fd, first->page);
	c->dom->maps_active -= m->count;
	for (unsigned i = 0; i < m->count; i++)
		gref_unpin(m->from, m->refs[i], m->write);
	notify_fire(c->dom, &event_only, -1, 0);
	free(m);
}

int hv_unmap(struct hv_conn *c, uint64_t handle)
{
	struct hv_map *m = conn_find_map(c, handle);

	if (!m)
		return -EINVAL;
	map_release(c, m);
	return 0;
}

/* Connection closed (process exit): like gntdev, drop every mapping; like
 * gntalloc, end every grant, deferring what a peer still maps. */
void hv_conn_release_grants(struct hv_conn *c)
{
	hv_copy_release(c);
	for (unsigned b = 0; b < HV_HASH; b++)
		while (!hv_list_empty(&c->maps[b]))
			map_release(c, hv_container(c->maps[b].next, struct hv_map, link));
	for (unsigned b = 0; b < HV_HASH; b++)
		while (!hv_list_empty(&c->allocs[b])) {
			struct hv_alloc *a = hv_container(c->allocs[b].next, struct hv_alloc, link);

			alloc_release(a, false);
			alloc_maybe_free(a);
		}
}
