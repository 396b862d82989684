/*
 * common/platform_sim_grant.c: granting (as gntalloc) and mapping (as gntdev)
 * on the simulated platform; the hypervisor's side is sim/hypervisor_grant.c.
 *
 * grant_alloc is one round trip and one mmap of the descriptor gv-simxen
 * sends; map is one round trip and one mmap per run of pages of one
 * descriptor; unmap is a munmap and one round trip. Each allocation and
 * mapping is kept in a small hash by address, for grant_end and unmap.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "platform_sim_priv.h"

/* ---- regions ---- */

static unsigned region_hash(const void *addr)
{
	return (unsigned)(((uintptr_t)addr >> GV_PAGE_SHIFT) % SIM_REGION_HASH);
}

static int region_add(struct sim_region **tab, void *addr, unsigned count, uint64_t handle)
{
	struct sim_region *r = malloc(sizeof(*r));

	if (!r)
		return -ENOMEM;
	*r = (struct sim_region){ tab[region_hash(addr)], addr, count, handle, false };
	tab[region_hash(addr)] = r;
	return 0;
}

/* Unlinks and returns the region at exactly addr/count, or NULL. */
static struct sim_region *region_take(struct sim_region **tab, void *addr, unsigned count)
{
	for (struct sim_region **pp = &tab[region_hash(addr)]; *pp; pp = &(*pp)->next) {
		struct sim_region *r = *pp;

		if (r->addr == addr && r->count == count) {
			*pp = r->next;
			return r;
		}
	}
	return NULL;
}

/* ---- granting side (gntalloc) ---- */

static void set_notify(struct sim_req *req, const struct gv_notify *n)
{
	if (n) {
		req->notify_offset = n->offset;
		req->notify_port = n->port;
	}
}

int gv_sim_grant_alloc(struct gv_platform *p, domid_t to, unsigned count, unsigned flags,
                       const struct gv_notify *notify, grant_ref_t *refs, void **addr)
{
	struct sim_priv *s = gv_sim_priv(p);
	struct sim_rep *rep = (struct sim_rep *)s->rep;
	struct sim_req *req;
	uint64_t handle;
	unsigned nfds = 0;
	void *va;
	int fd, rc;

	if (count == 0 || count > SIM_MAX_BATCH || !refs || !addr)
		return -EINVAL;
	req = gv_sim_new_req(s, SIM_OP_GRANT_ALLOC);
	req->domid = to;
	req->count = count;
	req->flags = flags;
	set_notify(req, notify);
	rc = gv_sim_call(s, 0, &fd, 1, &nfds);
	if (rc < 0)
		return rc;
	handle = rep->handle;
	if (nfds != 1 || rep->count != count) {
		rc = -EPROTO;
		goto end_grant;
	}
	/* gntalloc inserts every page at mmap: no fault on first touch */
	va = mmap(NULL, (size_t)count * GV_PAGE_SIZE, PROT_READ | PROT_WRITE,
	          MAP_SHARED | MAP_POPULATE, fd, 0);
	if (va == MAP_FAILED) {
		rc = -errno;
		goto end_grant;
	}
	memcpy(refs, rep->data, count * sizeof(*refs));
	rc = region_add(s->allocs, va, count, handle);
	if (rc) {
		munmap(va, (size_t)count * GV_PAGE_SIZE);
		goto end_grant;
	}
	close(fd);
	p->ctr.grants_active += count;
	*addr = va;
	return 0;

end_grant:
	if (nfds)
		close(fd);
	gv_sim_new_req(s, SIM_OP_GRANT_END)->handle = handle;
	gv_sim_call(s, 0, NULL, 0, NULL);
	return rc;
}

int gv_sim_grant_end(struct gv_platform *p, void *addr, unsigned count)
{
	struct sim_priv *s = gv_sim_priv(p);
	struct sim_region *r = region_take(s->allocs, addr, count);
	int rc;

	if (!r)
		return -EINVAL;
	munmap(addr, (size_t)count * GV_PAGE_SIZE);
	p->ctr.grants_active -= count;
	if (r->old_domain) {
		free(r);
		return 0;       /* its entries went with the old domain's table */
	}
	gv_sim_new_req(s, SIM_OP_GRANT_END)->handle = r->handle;
	free(r);
	rc = gv_sim_call(s, 0, NULL, 0, NULL);
	if (rc == -EBUSY) {
		uint32_t leaked = ((struct sim_rep *)s->rep)->leaked;

		p->ctr.grants_leaked += leaked <= count ? leaked : count;
	}
	return rc;
}

/* ---- mapping side (gntdev) ---- */

int gv_sim_map(struct gv_platform *p, domid_t from, unsigned count, const grant_ref_t *refs,
               unsigned flags, const struct gv_notify *notify, void **addr)
{
	struct sim_priv *s = gv_sim_priv(p);
	struct sim_rep *rep = (struct sim_rep *)s->rep;
	int prot = PROT_READ | (flags & GV_MAP_WRITE ? PROT_WRITE : 0);
	int fds[SIM_MAX_BATCH];
	struct sim_req *req;
	unsigned nfds = 0;
	uint64_t handle;
	char *base;
	int rc;

	p->ctr.map_calls++;
	if (count == 0 || count > SIM_MAX_BATCH || !refs || !addr || (flags & ~GV_MAP_WRITE))
		return -EINVAL;
	req = gv_sim_new_req(s, SIM_OP_MAP);
	req->domid = from;
	req->count = count;
	req->flags = flags;
	set_notify(req, notify);
	memcpy(req->data, refs, count * sizeof(*refs));
	rc = gv_sim_call(s, count, fds, SIM_MAX_BATCH, &nfds);
	if (rc < 0)
		return rc;
	handle = rep->handle;
	if (rep->count != 2 * count) {
		rc = -EPROTO;
		goto unmap_grant;
	}
	/* the address range first, then each run of pages of one descriptor
	 * over it, as gntdev's mmap would */
	base = mmap(NULL, (size_t)count * GV_PAGE_SIZE, PROT_NONE,
	            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED) {
		rc = -errno;
		goto unmap_grant;
	}
	for (unsigned i = 0, j; i < count; i = j) {
		uint32_t fdi = rep->data[2 * i], page = rep->data[2 * i + 1];

		if (fdi >= nfds || page >= SIM_MAX_BATCH) {
			rc = -EPROTO;
			goto unmap_range;
		}
		for (j = i + 1; j < count && rep->data[2 * j] == fdi &&
		     rep->data[2 * j + 1] == page + (j - i); j++)
			;
		/* populated, as the map hypercall writes every page table
		 * entry at once: no fault on first touch */
		if (mmap(base + (size_t)i * GV_PAGE_SIZE, (size_t)(j - i) * GV_PAGE_SIZE, prot,
		         MAP_SHARED | MAP_FIXED | MAP_POPULATE, fds[fdi],
		         (off_t)page * GV_PAGE_SIZE) == MAP_FAILED) {
			rc = -errno;
			goto unmap_range;
		}
	}
	rc = region_add(s->maps, base, count, handle);
	if (rc)
		goto unmap_range;
	gv_sim_close_fds(fds, nfds);
	p->ctr.maps_active += count;
	p->ctr.maps_done += count;
	*addr = base;
	return 0;

unmap_range:
	munmap(base, (size_t)count * GV_PAGE_SIZE);
unmap_grant:
	gv_sim_close_fds(fds, nfds);
	gv_sim_new_req(s, SIM_OP_UNMAP)->handle = handle;
	gv_sim_call(s, 0, NULL, 0, NULL);
	return rc;
}

int gv_sim_unmap(struct gv_platform *p, void *addr, unsigned count)
{
	struct sim_priv *s = gv_sim_priv(p);
	struct sim_region *r = region_take(s->maps, addr, count);
	int rc;

	if (!r)
		return -EINVAL;
	/* our view goes first: the pins may only drop once nothing here can
	 * touch the pages */
	munmap(addr, (size_t)count * GV_PAGE_SIZE);
	p->ctr.maps_active -= count;
	p->ctr.unmaps_done += count;
	if (r->old_domain) {
		free(r);
		return 0;
	}
	gv_sim_new_req(s, SIM_OP_UNMAP)->handle = r->handle;
	free(r);
	rc = gv_sim_call(s, 0, NULL, 0, NULL);
	return rc;
}

void gv_sim_forget_old_domain(struct gv_platform *p)
{
	struct sim_priv *s = gv_sim_priv(p);

	for (unsigned b = 0; b < SIM_REGION_HASH; b++) {
		for (struct sim_region *r = s->allocs[b]; r; r = r->next)
			r->old_domain = true;
		for (struct sim_region *r = s->maps[b]; r; r = r->next)
			r->old_domain = true;
	}
	gv_sim_forget_ports(s);
}


/* ---- grant copy (GNTTABOP_copy) ---- */

int gv_sim_grant_copy(struct gv_platform *p, domid_t from, unsigned count, struct gv_copy_seg *segs)
{
	struct sim_priv *s = gv_sim_priv(p);
	struct sim_rep *rep = (struct sim_rep *)s->rep;
	int fds[SIM_COPY_MAX_SEGS];
	struct sim_req *req;
	unsigned nfds = 0;
	int rc = 0;

	if (count == 0 || count > SIM_COPY_MAX_SEGS || !segs)
		return -EINVAL;
	req = gv_sim_new_req(s, SIM_OP_GRANT_COPY);
	req->domid = from;
	req->count = count;
	for (unsigned i = 0; i < count; i++) {
		/* out of range values are passed on for the hypervisor to refuse */
		uint32_t off = segs[i].offset, len = segs[i].len;

		segs[i].status = -ECANCELED;
		if (off > 0xfffu || len > 0x1fffu || (segs[i].flags & ~GV_COPY_TO_GRANT))
			return -EINVAL;
		req->data[2 * i] = segs[i].ref;
		req->data[2 * i + 1] = SIM_COPY_WORD(off, len, segs[i].flags & GV_COPY_TO_GRANT);
	}
	rc = gv_sim_call(s, 2 * count, fds, SIM_COPY_MAX_SEGS, &nfds);
	if (rc < 0) {
		/* nothing was copied; the segment the hypervisor refused says why */
		if (rep->handle < count)
			segs[rep->handle].status = (int16_t)rc;
		return rc;
	}
	if (rep->count != 2 * count) {
		rc = -EPROTO;
		goto out;
	}
	for (unsigned i = 0; i < count; i++) {
		uint32_t fdi = rep->data[2 * i], page = rep->data[2 * i + 1];
		off_t at = (off_t)page * GV_PAGE_SIZE + segs[i].offset;
		ssize_t n;

		if (fdi >= nfds || page >= SIM_MAX_BATCH) {
			rc = -EPROTO;
			goto out;
		}
		n = segs[i].flags & GV_COPY_TO_GRANT ? pwrite(fds[fdi], segs[i].local, segs[i].len, at)
		                                     : pread(fds[fdi], segs[i].local, segs[i].len, at);
		segs[i].status = n == (ssize_t)segs[i].len ? 0 : n < 0 ? (int16_t)-errno : -EIO;
		if (segs[i].status && !rc)
			rc = segs[i].status;
	}
out:
	gv_sim_close_fds(fds, nfds);
	return rc;
}
