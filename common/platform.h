/*
 * common/platform.h: the one interface to the hypervisor.
 *
 * Everything the frontend and the backend do that touches Xen goes through
 * one ops table, with two implementations behind it (the shape of Linux's
 * struct dma_map_ops and of Xen's tools/libs/gnttab private.h):
 *
 *   platform_xen.c  real Xen: libxengntshr/libxengnttab (gntalloc/gntdev),
 *                   libxenevtchn, libxenstore, libxenctrl where permitted
 *   platform_sim*.c the simulated Xen: a client of the gv-simxen daemon
 *
 * Xenstore is not in the table: both implementations hand out a real
 * libxenstore handle (the simulation serves the xenstore wire protocol on a
 * Unix socket), and common/xs_util.h wraps it.
 *
 * Conventions for every function here:
 *  - returns 0 (or a count, where said) on success, a negative errno on
 *    failure; an operation an implementation lacks returns -ENOSYS;
 *  - does not log; the caller decides what a failure means;
 *  - a handle is used by one thread at a time;
 *  - a failed call leaves nothing behind (all or nothing for batches).
 */
#ifndef GV_COMMON_PLATFORM_H
#define GV_COMMON_PLATFORM_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "abi.h"
#include "grant_virtio_types.h"   /* struct gv_counters, enum gv_platform_kind */

struct xs_handle;

/* A peer-death notification (gntalloc UNMAP_NOTIFY / xengnttab *_notify):
 * when the share or mapping goes away for any reason, process death
 * included, the byte at `offset` in the first page is set to 0 (the
 * mapping must be writable for that) and `port` is notified. On real Xen the
 * libraries offer this for one page only: a notify with count > 1 is -EINVAL. */
#define GV_NO_NOTIFY_OFFSET (-1)
#define GV_NO_PORT          ((evtchn_port_t)~0u)
struct gv_notify {
	int offset;               /* byte in the first page, or GV_NO_NOTIFY_OFFSET */
	evtchn_port_t port;       /* local port to notify, or GV_NO_PORT */
};

/* grant_alloc flags */
#define GV_GRANT_READONLY 0x1u    /* the peer may map the pages read-only only */
/* map flags */
#define GV_MAP_WRITE      0x1u    /* map writable; refused for a readonly grant */

/* One segment of grant_copy */
#define GV_COPY_TO_GRANT  0x1u    /* local -> the granted page; else granted page -> local */
struct gv_copy_seg {
	grant_ref_t ref;          /* granted by the peer to this domain */
	uint16_t offset;          /* in the granted page */
	uint16_t len;             /* 1..GV_PAGE_SIZE - offset */
	uint16_t flags;           /* GV_COPY_TO_GRANT */
	int16_t status;           /* out: 0, or -errno for this segment */
	void *local;              /* len bytes here */
};
/* segments per grant_copy call at most (the simulation's limit; gntdev
 * takes more, in batches of its own) */
#define GV_COPY_MAX_SEGS  512u

struct gv_platform_opts {
	enum gv_platform_kind kind; /* AUTO: env GV_PLATFORM (xen|sim), else xen
	                               when /dev/xen/gntdev exists, else sim */
	const char *sim_dir;        /* NULL: env GV_SIM_DIR, else gv_sim_default_dir() */
	int sim_domid;              /* -1: env GV_DOMID, else 0 */
};

struct gv_platform;

struct gv_platform_ops {
	const char *name;                       /* "xen" or "sim" */
	void (*close)(struct gv_platform *p);   /* releases every grant, mapping, port */

	/* Domains. 1: exists and is not dying; 0: gone or dying; -errno. */
	int (*domain_exists)(struct gv_platform *p, domid_t domid);

	/* Granting side. Allocates `count` zeroed pages, grants each to `to`,
	 * maps them contiguously at *addr; refs[i] names page i. References are
	 * not promised to be consecutive. notify may be NULL. */
	int (*grant_alloc)(struct gv_platform *p, domid_t to, unsigned count, unsigned flags,
	                   const struct gv_notify *notify, grant_ref_t *refs, void **addr);
	/* Ends access to a whole allocation made by grant_alloc (addr, count as
	 * returned) and unmaps it here. -EBUSY: some pages are still mapped by the
	 * peer; they are leaked on purpose, counted in grants_leaked, never reused;
	 * the others are ended. Either way addr is no longer valid.
	 * On real Xen, Linux's gntalloc defers ending a grant the peer still maps
	 * (the page is kept until the peer unmaps it) and tells user space
	 * nothing: grant_end succeeds there and grants_leaked stays 0; Xen's own
	 * grant-table dump (xl debug-keys g) is the oracle. */
	int (*grant_end)(struct gv_platform *p, void *addr, unsigned count);

	/* Mapping side. Maps refs[0..count) granted by `from` contiguously at
	 * *addr. All or nothing: -EINVAL for a ref that is out of range or not
	 * granted to this domain, -EACCES for GV_MAP_WRITE on a readonly grant,
	 * -ESRCH for a domain that does not exist. notify may be NULL. */
	int (*map)(struct gv_platform *p, domid_t from, unsigned count, const grant_ref_t *refs,
	           unsigned flags, const struct gv_notify *notify, void **addr);
	int (*unmap)(struct gv_platform *p, void *addr, unsigned count);
	/* Copies between local memory and pages granted by `from` without
	 * mapping them (Xen's GNTTABOP_copy, xengnttab_grant_copy). Each
	 * segment names one granted page: 1 <= len and offset + len <=
	 * GV_PAGE_SIZE (a copy never crosses a page of the grant; the local
	 * buffer may). Xen's rules: the ref must be in range and granted to this
	 * domain (-EINVAL), a copy into the grant needs a writable grant
	 * (-EACCES), the domain must exist (-ESRCH). Returns 0 when every
	 * segment was copied, else the first failing segment's error; each
	 * segment's status says which. On real Xen segments are independent
	 * (those before a failed one are copied); the simulation checks all of
	 * them first and copies nothing on any error. */
	int (*grant_copy)(struct gv_platform *p, domid_t from, unsigned count,
	                  struct gv_copy_seg *segs);

	/* Event channels (libxenevtchn semantics: a delivered port stays masked
	 * until unmasked; events while masked stay pending, coalesced). */
	int (*evtchn_fd)(struct gv_platform *p);          /* poll()-able; >= 0 */
	int (*evtchn_alloc_unbound)(struct gv_platform *p, domid_t remote, evtchn_port_t *local);
	int (*evtchn_bind)(struct gv_platform *p, domid_t remote, evtchn_port_t remote_port,
	                   evtchn_port_t *local);
	int (*evtchn_unbind)(struct gv_platform *p, evtchn_port_t port);
	int (*evtchn_notify)(struct gv_platform *p, evtchn_port_t port);
	/* 1 and *port: an event; 0: none pending; -errno. */
	int (*evtchn_pending)(struct gv_platform *p, evtchn_port_t *port);
	int (*evtchn_unmask)(struct gv_platform *p, evtchn_port_t port);

	/* A libxenstore handle talking to this platform's xenstore (caller closes
	 * it with xs_close). NULL with errno set. */
	struct xs_handle *(*xs_open)(struct gv_platform *p);

	/* The domain was saved and restored (xl save / xl restore) while this
	 * handle was open: the process now runs in a new domain, new_domid, with
	 * an empty grant table and none of its event channels. Makes the handle
	 * usable there: p->domid becomes new_domid; every port bound before is
	 * forgotten (never unbound, notified or delivered again: the numbers
	 * may name other channels now), and new ones are bound afresh (the
	 * event-channel fd may change). Allocations made before are left to the
	 * caller, who ends them (their entries are gone with the old table, so
	 * the end succeeds and the pages are freed; their refs are never in use
	 * in the new table). 0, or -errno; -ENOSYS where the platform cannot
	 * follow a restore. */
	int (*resume)(struct gv_platform *p, domid_t new_domid);
};

struct gv_platform {
	const struct gv_platform_ops *ops;
	struct gv_counters ctr;
	domid_t domid;              /* this domain */
	char desc[160];             /* e.g. "sim (dir /run/x, domain 1)", for the first log line */
	void *priv;                 /* the implementation's own state */
};

/* Opens the platform chosen by opts (NULL: all defaults). On failure returns
 * -errno and writes a one-line explanation to err, e.g. "no /dev/xen/gntdev:
 * not running in a Xen domain; use the simulated platform". */
int gv_platform_open(const struct gv_platform_opts *opts, struct gv_platform **out,
                     char *err, size_t errlen);
void gv_platform_close(struct gv_platform *p);

/* Implementations (platform_xen.c, platform_sim.c). */
int gv_platform_xen_open(struct gv_platform *p, char *err, size_t errlen);
int gv_platform_sim_open(struct gv_platform *p, const char *dir, int domid,
                         char *err, size_t errlen);
/* Default simulation directory: $XDG_RUNTIME_DIR/grant-virtio-sim if set,
 * else /tmp/grant-virtio-sim-<uid>. Returns buf. */
const char *gv_sim_default_dir(char *buf, size_t len);

/* Thin wrappers: a missing op is -ENOSYS. */
#define GV_PLAT_CALL(p, op, ...) ((p)->ops->op ? (p)->ops->op((p), __VA_ARGS__) : -ENOSYS)

static inline int gv_grant_alloc(struct gv_platform *p, domid_t to, unsigned count, unsigned flags,
                                 const struct gv_notify *n, grant_ref_t *refs, void **addr)
{ return GV_PLAT_CALL(p, grant_alloc, to, count, flags, n, refs, addr); }
static inline int gv_grant_end(struct gv_platform *p, void *addr, unsigned count)
{ return GV_PLAT_CALL(p, grant_end, addr, count); }
static inline int gv_map(struct gv_platform *p, domid_t from, unsigned count,
                         const grant_ref_t *refs, unsigned flags, const struct gv_notify *n,
                         void **addr)
{ return GV_PLAT_CALL(p, map, from, count, refs, flags, n, addr); }
static inline int gv_unmap(struct gv_platform *p, void *addr, unsigned count)
{ return GV_PLAT_CALL(p, unmap, addr, count); }
static inline int gv_grant_copy(struct gv_platform *p, domid_t from, unsigned count,
                                struct gv_copy_seg *segs)
{ return GV_PLAT_CALL(p, grant_copy, from, count, segs); }
static inline int gv_domain_exists(struct gv_platform *p, domid_t d)
{ return GV_PLAT_CALL(p, domain_exists, d); }
static inline int gv_evtchn_fd(struct gv_platform *p)
{ return p->ops->evtchn_fd ? p->ops->evtchn_fd(p) : -ENOSYS; }
static inline int gv_evtchn_alloc_unbound(struct gv_platform *p, domid_t remote, evtchn_port_t *l)
{ return GV_PLAT_CALL(p, evtchn_alloc_unbound, remote, l); }
static inline int gv_evtchn_bind(struct gv_platform *p, domid_t remote, evtchn_port_t rport,
                                 evtchn_port_t *l)
{ return GV_PLAT_CALL(p, evtchn_bind, remote, rport, l); }
static inline int gv_evtchn_unbind(struct gv_platform *p, evtchn_port_t port)
{ return GV_PLAT_CALL(p, evtchn_unbind, port); }
static inline int gv_evtchn_notify(struct gv_platform *p, evtchn_port_t port)
{ return GV_PLAT_CALL(p, evtchn_notify, port); }
static inline int gv_evtchn_pending(struct gv_platform *p, evtchn_port_t *port)
{ return GV_PLAT_CALL(p, evtchn_pending, port); }
static inline int gv_evtchn_unmask(struct gv_platform *p, evtchn_port_t port)
{ return GV_PLAT_CALL(p, evtchn_unmask, port); }
static inline int gv_platform_resume(struct gv_platform *p, domid_t new_domid)
{ return GV_PLAT_CALL(p, resume, new_domid); }
static inline struct xs_handle *gv_xs_open(struct gv_platform *p)
{
	if (!p->ops->xs_open) { errno = ENOSYS; return NULL; }
	return p->ops->xs_open(p);
}

#endif
