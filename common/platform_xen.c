/*
 * common/platform_xen.c: the platform ops table over real Xen.
 *
 *   granting   libxengntshr (Linux /dev/xen/gntalloc)
 *   mapping    libxengnttab (Linux /dev/xen/gntdev)
 *   events     libxenevtchn (Linux /dev/xen/evtchn)
 *   xenstore   libxenstore  (xs_open(0): the socket or /dev/xen/xenbus)
 *   domains    libxenctrl, opened on first use, only where permitted (dom0),
 *              in platform_xen_dom0.c: linked only into dom0's programs
 *
 * Every allocation, mapping and bound port is remembered on the handle so
 * that close() releases what the caller forgot, and so that grant_end and
 * unmap refuse an (addr, count) they did not hand out instead of passing it
 * to the kernel.
 *
 * Limits of the Xen user-space libraries, and what this file does about them:
 *  - Unmap notification exists only for a single page
 *    (xengntshr_share_page_notify, xengnttab_map_grant_ref_notify): a notify
 *    with count > 1 is refused with -EINVAL. Callers put the notify byte in a
 *    one-page allocation of its own (e.g. the ring's control page).
 *  - xengntshr_share_pages promises nothing about the refs: they are returned
 *    as the kernel assigned them, not necessarily consecutive.
 *  - grant_end never reports -EBUSY here: Linux's gntalloc, when the peer
 *    still maps a page, ends the grant lazily (gnttab_end_foreign_access
 *    defers freeing the page until the peer unmaps it) and xengntshr_unshare
 *    succeeds. User space cannot see that case, so grants_leaked stays 0 on
 *    this platform; the kernel keeps the page and never reuses it while it is
 *    mapped, which is the safety property grants_leaked stands for. The
 *    oracle for a real leak is Xen's own grant table dump
 *    (`xl debug-keys g`), not this counter.
 *  - The libraries log to stderr by default; every handle here gets a quiet
 *    logger that only keeps the last message, used to explain open failures.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>
#include <xentoollog.h>

#include "platform.h"
#include "platform_xen_dom0.h"

/* Weak: present only in programs linked with platform_xen_dom0.o (dom0's).
 * The shared guest library (libgrant-virtio.so, built with GV_GUEST_ONLY)
 * does not refer to them at all: a weak reference would stay unresolved in
 * its dynamic symbol table, and a program's own symbol of that name would
 * be called. */
#ifndef GV_GUEST_ONLY
#pragma weak gv_xen_dom0_domain_exists
#pragma weak gv_xen_dom0_close
#endif

/* A region handed out by grant_alloc or map. */
struct xen_region {
	void *addr;
	unsigned count;
};

struct region_list {
	struct xen_region *v;
	size_t n, cap;
};

/* Keeps the last message of the libraries instead of printing it. */
struct quiet_logger {
	struct xentoollog_logger vtable;   /* first: the libraries get &vtable */
	char last[200];
};

struct xen_priv {
	struct quiet_logger log;
	xengntshr_handle *gntshr;
	xengnttab_handle *gnttab;
	xenevtchn_handle *evtchn;
	struct gv_xen_dom0 *dom0;    /* opened by domain_exists on first use */
	struct region_list grants;
	struct region_list maps;
	evtchn_port_t *ports;        /* bound ports, unbound by close */
	size_t nports, capports;
	/* event-channel handles of domains this process was saved from (see
	 * xen_resume): their ports are never touched again */
	xenevtchn_handle **stale;
	size_t nstale;
};

static struct xen_priv *priv_of(struct gv_platform *p)
{
	return p->priv;
}

static void quiet_vmessage(struct xentoollog_logger *l, xentoollog_level level, int errnoval,
                           const char *context, const char *format, va_list al)
{
	struct quiet_logger *q = (struct quiet_logger *)l;
	int n;

	(void)level;
	n = snprintf(q->last, sizeof(q->last), "%s%s", context ? context : "", context ? ": " : "");
	if (n < 0 || (size_t)n >= sizeof(q->last))
		return;
	vsnprintf(q->last + n, sizeof(q->last) - (size_t)n, format, al);
	if (errnoval > 0) {
		size_t len = strlen(q->last);

		snprintf(q->last + len, sizeof(q->last) - len, ": %s", strerror(errnoval));
	}
}

static void quiet_progress(struct xentoollog_logger *l, const char *context, const char *doing,
                           int percent, unsigned long done, unsigned long total)
{
	(void)l; (void)context; (void)doing; (void)percent; (void)done; (void)total;
}

static void quiet_destroy(struct xentoollog_logger *l)
{
	(void)l;
}

/* ---- bookkeeping ---- */

static int regions_add(struct region_list *l, void *addr, unsigned count)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct xen_region *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].addr = addr;
	l->v[l->n].count = count;
	l->n++;
	return 0;
}

/* Index of exactly (addr, count), or -1. */
static long regions_find(const struct region_list *l, const void *addr, unsigned count)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].addr == addr && l->v[i].count == count)
			return (long)i;
	return -1;
}

static void regions_del(struct region_list *l, size_t i)
{
	l->v[i] = l->v[--l->n];
}

static int ports_add(struct xen_priv *x, evtchn_port_t port)
{
	if (x->nports == x->capports) {
		size_t cap = x->capports ? x->capports * 2 : 8;
		evtchn_port_t *v = realloc(x->ports, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		x->ports = v;
		x->capports = cap;
	}
	x->ports[x->nports++] = port;
	return 0;
}

static long ports_find(const struct xen_priv *x, evtchn_port_t port)
{
	for (size_t i = 0; i < x->nports; i++)
		if (x->ports[i] == port)
			return (long)i;
	return -1;
}

/* errno of a failed library call as a negative errno, never 0. */
static int neg_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

/* ---- domains ---- */

static int xen_domain_exists(struct gv_platform *p, domid_t domid)
{
	struct xen_priv *x = priv_of(p);

	if (domid == p->domid)
		return 1;
#ifdef GV_GUEST_ONLY
	(void)x;
	return -ENOSYS;         /* the guest library: never dom0's part */
#else
	if (!gv_xen_dom0_domain_exists)
		return -ENOSYS;     /* a guest program: linked without dom0's part */
	return gv_xen_dom0_domain_exists(&x->dom0, &x->log.vtable, domid);
#endif
}

/* ---- granting ---- */

static int xen_grant_alloc(struct gv_platform *p, domid_t to, unsigned count, unsigned flags,
                           const struct gv_notify *notify, grant_ref_t *refs, void **addr)
{
	struct xen_priv *x = priv_of(p);
	int writable = !(flags & GV_GRANT_READONLY);
	bool want_notify = notify && (notify->offset != GV_NO_NOTIFY_OFFSET ||
	                              notify->port != GV_NO_PORT);
	void *a;
	int rc;

	if (count == 0 || count > INT32_MAX || (flags & ~GV_GRANT_READONLY))
		return -EINVAL;
	if (want_notify) {
		/* Only single pages can carry an unmap notification (see top). */
		if (count != 1)
			return -EINVAL;
		if (notify->offset != GV_NO_NOTIFY_OFFSET &&
		    (notify->offset < 0 || notify->offset >= (int)GV_PAGE_SIZE))
			return -EINVAL;
		a = xengntshr_share_page_notify(x->gntshr, to, refs, writable,
		                                (uint32_t)notify->offset, notify->port);
	} else {
		a = xengntshr_share_pages(x->gntshr, to, (int)count, refs, writable);
	}
	if (!a)
		return neg_errno();
	rc = regions_add(&x->grants, a, count);
	if (rc < 0) {
		xengntshr_unshare(x->gntshr, a, count);
		return rc;
	}
	/* gntalloc hands out fresh zeroed pages: nothing to clear. */
	p->ctr.grants_active += count;
	*addr = a;
	return 0;
}

static int xen_grant_end(struct gv_platform *p, void *addr, unsigned count)
{
	struct xen_priv *x = priv_of(p);
	long i = regions_find(&x->grants, addr, count);

	if (i < 0)
		return -EINVAL;
	/* Never EBUSY from user space: gntalloc defers a still-mapped page (see top). */
	if (xengntshr_unshare(x->gntshr, addr, count) < 0)
		return neg_errno();
	regions_del(&x->grants, (size_t)i);
	p->ctr.grants_active -= count;
	return 0;
}

/* ---- mapping ---- */

/* gntdev answers EINVAL for every refused map (Xen's GNTST_* status is not
 * passed up). Sorts out the two cases the contract names, on the failure path
 * only: a peer that is gone (-ESRCH, where domain_exists may ask), and a
 * writable map of a readonly grant (-EACCES: the same refs map read-only). */
static int explain_map_failure(struct gv_platform *p, domid_t from, unsigned count,
                               const grant_ref_t *refs, unsigned flags)
{
	struct xen_priv *x = priv_of(p);
	void *probe;

	if (from != p->domid && xen_domain_exists(p, from) == 0)
		return -ESRCH;
	if (flags & GV_MAP_WRITE) {
		probe = xengnttab_map_domain_grant_refs(x->gnttab, count, from, (uint32_t *)refs,
		                                        PROT_READ);
		if (probe) {
			xengnttab_unmap(x->gnttab, probe, count);
			return -EACCES;
		}
	}
	return -EINVAL;
}

static int xen_map(struct gv_platform *p, domid_t from, unsigned count, const grant_ref_t *refs,
                   unsigned flags, const struct gv_notify *notify, void **addr)
{
	struct xen_priv *x = priv_of(p);
	int prot = PROT_READ | ((flags & GV_MAP_WRITE) ? PROT_WRITE : 0);
	bool want_notify = notify && (notify->offset != GV_NO_NOTIFY_OFFSET ||
	                              notify->port != GV_NO_PORT);
	void *a;
	int rc;

	if (count == 0 || (flags & ~GV_MAP_WRITE))
		return -EINVAL;
	if (want_notify) {
		if (count != 1)
			return -EINVAL;
		if (notify->offset != GV_NO_NOTIFY_OFFSET &&
		    (notify->offset < 0 || notify->offset >= (int)GV_PAGE_SIZE ||
		     !(flags & GV_MAP_WRITE)))
			return -EINVAL;
		a = xengnttab_map_grant_ref_notify(x->gnttab, from, refs[0], prot,
		                                   (uint32_t)notify->offset, notify->port);
	} else {
		/* The library takes a non-const array but only reads it. */
		a = xengnttab_map_domain_grant_refs(x->gnttab, count, from, (uint32_t *)refs, prot);
	}
	if (!a) {
		rc = neg_errno();
		if (rc == -EINVAL)
			rc = explain_map_failure(p, from, count, refs, flags);
		return rc;
	}
	rc = regions_add(&x->maps, a, count);
	if (rc < 0) {
		xengnttab_unmap(x->gnttab, a, count);
		return rc;
	}
	p->ctr.map_calls++;
	p->ctr.maps_done += count;
	p->ctr.maps_active += count;
	*addr = a;
	return 0;
}

static int xen_unmap(struct gv_platform *p, void *addr, unsigned count)
{
	struct xen_priv *x = priv_of(p);
	long i = regions_find(&x->maps, addr, count);

	if (i < 0)
		return -EINVAL;
	if (xengnttab_unmap(x->gnttab, addr, count) < 0)
		return neg_errno();
	regions_del(&x->maps, (size_t)i);
	p->ctr.maps_active -= count;
	p->ctr.unmaps_done += count;
	return 0;
}

/* ---- grant copy ---- */

/* Xen's per-segment status as the contract's errno. */
static int16_t gntst_errno(int16_t st)
{
	switch (st) {
	case GNTST_okay:
		return 0;
	case GNTST_bad_domain:
		return -ESRCH;
	case GNTST_permission_denied:
		return -EACCES;
	case GNTST_bad_gntref:
	case GNTST_bad_copy_arg:
		return -EINVAL;
	default:
		return -EIO;
	}
}

static int xen_grant_copy(struct gv_platform *p, domid_t from, unsigned count,
                          struct gv_copy_seg *segs)
{
	struct xen_priv *x = priv_of(p);
	xengnttab_grant_copy_segment_t xs[64];
	int first = 0;

	if (count == 0 || count > GV_COPY_MAX_SEGS)
		return -EINVAL;
	for (unsigned i = 0; i < count; i++)
		if (!segs[i].len || segs[i].offset + (unsigned)segs[i].len > GV_PAGE_SIZE ||
		    (segs[i].flags & ~GV_COPY_TO_GRANT))
			return -EINVAL;
	/* in batches of xs[]: one ioctl (and one GNTTABOP_copy) each */
	for (unsigned at = 0; at < count; at += 64) {
		unsigned n = count - at < 64 ? count - at : 64;

		for (unsigned i = 0; i < n; i++) {
			const struct gv_copy_seg *g = &segs[at + i];
			xengnttab_grant_copy_segment_t *c = &xs[i];

			memset(c, 0, sizeof(*c));
			c->len = g->len;
			if (g->flags & GV_COPY_TO_GRANT) {
				c->source.virt = g->local;
				c->dest.foreign.ref = g->ref;
				c->dest.foreign.offset = g->offset;
				c->dest.foreign.domid = from;
				c->flags = GNTCOPY_dest_gref;
			} else {
				c->source.foreign.ref = g->ref;
				c->source.foreign.offset = g->offset;
				c->source.foreign.domid = from;
				c->dest.virt = g->local;
				c->flags = GNTCOPY_source_gref;
			}
		}
		if (xengnttab_grant_copy(x->gnttab, n, xs) < 0)
			return neg_errno();
		for (unsigned i = 0; i < n; i++) {
			segs[at + i].status = gntst_errno(xs[i].status);
			if (segs[at + i].status && !first)
				first = segs[at + i].status;
		}
	}
	return first;
}

/* ---- event channels ---- */

static int xen_evtchn_fd(struct gv_platform *p)
{
	return xenevtchn_fd(priv_of(p)->evtchn);
}

static int bound(struct xen_priv *x, xenevtchn_port_or_error_t port, evtchn_port_t *local)
{
	int rc;

	if (port < 0)
		return neg_errno();
	rc = ports_add(x, (evtchn_port_t)port);
	if (rc < 0) {
		xenevtchn_unbind(x->evtchn, (evtchn_port_t)port);
		return rc;
	}
	*local = (evtchn_port_t)port;
	return 0;
}

static int xen_evtchn_alloc_unbound(struct gv_platform *p, domid_t remote, evtchn_port_t *local)
{
	struct xen_priv *x = priv_of(p);

	return bound(x, xenevtchn_bind_unbound_port(x->evtchn, remote), local);
}

static int xen_evtchn_bind(struct gv_platform *p, domid_t remote, evtchn_port_t remote_port,
                           evtchn_port_t *local)
{
	struct xen_priv *x = priv_of(p);

	return bound(x, xenevtchn_bind_interdomain(x->evtchn, remote, remote_port), local);
}

static int xen_evtchn_unbind(struct gv_platform *p, evtchn_port_t port)
{
	struct xen_priv *x = priv_of(p);
	long i = ports_find(x, port);

	if (i < 0)
		return -EINVAL;
	if (xenevtchn_unbind(x->evtchn, port) < 0)
		return neg_errno();
	x->ports[i] = x->ports[--x->nports];
	return 0;
}

static int xen_evtchn_notify(struct gv_platform *p, evtchn_port_t port)
{
	if (xenevtchn_notify(priv_of(p)->evtchn, port) < 0)
		return neg_errno();
	p->ctr.events_sent++;
	return 0;
}

static int xen_evtchn_pending(struct gv_platform *p, evtchn_port_t *port)
{
	/* The fd is non-blocking (set at open): EAGAIN means nothing pending. */
	xenevtchn_port_or_error_t r = xenevtchn_pending(priv_of(p)->evtchn);

	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : neg_errno();
	p->ctr.events_received++;
	*port = (evtchn_port_t)r;
	return 1;
}

static int xen_evtchn_unmask(struct gv_platform *p, evtchn_port_t port)
{
	if (xenevtchn_unmask(priv_of(p)->evtchn, port) < 0)
		return neg_errno();
	return 0;
}

static struct xs_handle *xen_xs_open(struct gv_platform *p)
{
	(void)p;
	return xs_open(0);
}

static int set_nonblocking(xenevtchn_handle *e)
{
	int fl = fcntl(xenevtchn_fd(e), F_GETFL);

	if (fl < 0 || fcntl(xenevtchn_fd(e), F_SETFL, fl | O_NONBLOCK) < 0)
		return neg_errno();
	return 0;
}

/* After xl save / xl restore (Linux 6.1, read in drivers/xen/events and
 * drivers/xen/evtchn.c, and seen on Xen 4.20, docs/transport.md "Save and
 * restore"): the guest kernel dropped every event-channel binding of the
 * old domain on resume (xen_irq_resume empties its port-to-irq table), but
 * /dev/xen/evtchn still lists this process's old ports by number, and a
 * number may name another channel of the new domain. Notifying one would
 * signal that channel; unbinding one makes the driver look up an irq the
 * number no longer has (BUG_ON). So the old handle is set aside with its
 * ports and a new one binds in the new domain. Allocations are the
 * caller's to end: their entries went with the old grant table, so
 * gntalloc ends them at once (one with an unmap notification drops a
 * reference on its old port number: a WARN in evtchn_put when the number
 * is free, which is why the caller ends them before binding anew). */
static int xen_resume(struct gv_platform *p, domid_t new_domid)
{
	struct xen_priv *x = priv_of(p);
	xenevtchn_handle *e, **v;
	int rc;

	v = realloc(x->stale, (x->nstale + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	x->stale = v;
	e = xenevtchn_open(&x->log.vtable, 0);
	if (!e)
		return neg_errno();
	rc = set_nonblocking(e);
	if (rc < 0) {
		xenevtchn_close(e);
		return rc;
	}
	x->stale[x->nstale++] = x->evtchn;
	x->evtchn = e;
	x->nports = 0;
	p->domid = new_domid;
	snprintf(p->desc, sizeof(p->desc), "xen (domain %u, restored)", (unsigned)new_domid);
	return 0;
}

/* ---- open / close ---- */

static void release(struct xen_priv *x)
{
	if (x->evtchn) {
		for (size_t i = 0; i < x->nports; i++)
			xenevtchn_unbind(x->evtchn, x->ports[i]);
		xenevtchn_close(x->evtchn);
	}
	/* Last, after everything else: Linux 6.1 cannot release the ports of
	 * a handle from before a restore (evtchn_release finds no irq for them
	 * and hits BUG_ON; seen on Xen 4.20: "kernel BUG at
	 * drivers/xen/evtchn.c:422", the process killed). Left open instead,
	 * the same BUG comes in the exit path, where the kernel then leaves
	 * the task unreaped ("recursive fault"): closing here at least ends
	 * the process. docs/transport.md, "Save and restore". */
	for (size_t i = 0; i < x->nstale; i++)
		xenevtchn_close(x->stale[i]);
	free(x->stale);
	if (x->gnttab) {
		for (size_t i = 0; i < x->maps.n; i++)
			xengnttab_unmap(x->gnttab, x->maps.v[i].addr, x->maps.v[i].count);
		xengnttab_close(x->gnttab);
	}
	if (x->gntshr) {
		for (size_t i = 0; i < x->grants.n; i++)
			xengntshr_unshare(x->gntshr, x->grants.v[i].addr, x->grants.v[i].count);
		xengntshr_close(x->gntshr);
	}
#ifndef GV_GUEST_ONLY
	if (x->dom0 && gv_xen_dom0_close)
		gv_xen_dom0_close(x->dom0);
#endif
	free(x->grants.v);
	free(x->maps.v);
	free(x->ports);
	free(x);
}

static void xen_close(struct gv_platform *p)
{
	struct xen_priv *x = priv_of(p);

	if (!x)
		return;
	p->ctr.grants_active = 0;
	p->ctr.maps_active = 0;
	release(x);
	p->priv = NULL;
}

static const struct gv_platform_ops xen_ops = {
	.name = "xen",
	.close = xen_close,
	.domain_exists = xen_domain_exists,
	.grant_alloc = xen_grant_alloc,
	.grant_end = xen_grant_end,
	.map = xen_map,
	.unmap = xen_unmap,
	.grant_copy = xen_grant_copy,
	.evtchn_fd = xen_evtchn_fd,
	.evtchn_alloc_unbound = xen_evtchn_alloc_unbound,
	.evtchn_bind = xen_evtchn_bind,
	.evtchn_unbind = xen_evtchn_unbind,
	.evtchn_notify = xen_evtchn_notify,
	.evtchn_pending = xen_evtchn_pending,
	.evtchn_unmask = xen_evtchn_unmask,
	.xs_open = xen_xs_open,
	.resume = xen_resume,
};

/* One line for a library open that failed: its own message if it logged one. */
static int open_failed(struct xen_priv *x, const char *what, char *err, size_t errlen)
{
	int rc = neg_errno();

	snprintf(err, errlen, "%s failed: %s", what, x->log.last[0] ? x->log.last : strerror(-rc));
	return rc;
}

/* The own domain id, from the relative xenstore key "domid" (dom0: 0). */
static int read_domid(domid_t *domid, char *err, size_t errlen)
{
	struct xs_handle *xs = xs_open(0);
	unsigned int len = 0;
	char *val, *end;
	long v;
	int rc;

	if (!xs) {
		rc = neg_errno();
		snprintf(err, errlen, "xs_open: cannot reach xenstore: %s", strerror(-rc));
		return rc;
	}
	val = xs_read(xs, XBT_NULL, "domid", &len);
	if (!val) {
		rc = neg_errno();
		snprintf(err, errlen, "xenstore read of \"domid\" failed: %s", strerror(-rc));
		xs_close(xs);
		return rc;
	}
	errno = 0;
	v = strtol(val, &end, 10);
	if (errno || end == val || *end || v < 0 || v >= DOMID_FIRST_RESERVED) {
		snprintf(err, errlen, "xenstore \"domid\" is not a domain id: \"%s\"", val);
		free(val);
		xs_close(xs);
		return -EPROTO;
	}
	free(val);
	xs_close(xs);
	*domid = (domid_t)v;
	return 0;
}

int gv_platform_xen_open(struct gv_platform *p, char *err, size_t errlen)
{
	static const struct { const char *path, *hint; } devs[] = {
		{ "/dev/xen/gntdev", "not running in a Xen domain; use the simulated platform" },
		{ "/dev/xen/gntalloc", "load the xen-gntalloc module" },
		{ "/dev/xen/evtchn", "load the xen-evtchn module" },
	};
	struct xen_priv *x;
	domid_t domid = 0;
	int rc;

	for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++)
		if (access(devs[i].path, F_OK) != 0) {
			rc = neg_errno();
			snprintf(err, errlen, "no %s: %s", devs[i].path, devs[i].hint);
			return rc == -ENOENT ? -ENODEV : rc;
		}

	x = calloc(1, sizeof(*x));
	if (!x) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	x->log.vtable.vmessage = quiet_vmessage;
	x->log.vtable.progress = quiet_progress;
	x->log.vtable.destroy = quiet_destroy;

	x->gntshr = xengntshr_open(&x->log.vtable, 0);
	if (!x->gntshr) {
		rc = open_failed(x, "xengntshr_open (/dev/xen/gntalloc)", err, errlen);
		goto out_release;
	}
	x->gnttab = xengnttab_open(&x->log.vtable, 0);
	if (!x->gnttab) {
		rc = open_failed(x, "xengnttab_open (/dev/xen/gntdev)", err, errlen);
		goto out_release;
	}
	x->evtchn = xenevtchn_open(&x->log.vtable, 0);
	if (!x->evtchn) {
		rc = open_failed(x, "xenevtchn_open (/dev/xen/evtchn)", err, errlen);
		goto out_release;
	}
	/* evtchn_pending must not block: "0: none pending". */
	rc = set_nonblocking(x->evtchn);
	if (rc < 0) {
		snprintf(err, errlen, "evtchn fd: cannot make non-blocking: %s", strerror(-rc));
		goto out_release;
	}
	rc = read_domid(&domid, err, errlen);
	if (rc < 0)
		goto out_release;

	p->ops = &xen_ops;
	p->domid = domid;
	p->priv = x;
	memset(&p->ctr, 0, sizeof(p->ctr));
	snprintf(p->desc, sizeof(p->desc), "xen (domain %u)", (unsigned)domid);
	return 0;

out_release:
	release(x);
	return rc;
}
