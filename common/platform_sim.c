/*
 * common/platform_sim.c: the simulated platform, a client of gv-simxen's
 * hypervisor (protocol: common/sim_proto.h; daemon: sim/hypervisor*.c).
 *
 * Costs are meant to be those of the real drivers: grant_alloc is one round
 * trip and one mmap (gntalloc), map is one round trip and one mmap per run
 * of pages (gntdev), unmap is a munmap and one round trip; event delivery
 * needs no round trip at all: notify writes the peer port's eventfd, and
 * evtchn_fd is an epoll set over this handle's ports' eventfds, armed one
 * shot at a time (a delivered port stays masked until unmask re-arms it).
 *
 * A handle must not be used across fork(): a child opens its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <xenstore.h>
#include "platform.h"
#include "platform_sim.h"
#include "sim_proto.h"

struct sim_port {
	int efd;              /* -1: not a port of this handle */
	int peer_efd;         /* the peer port's eventfd; -1: none (unbound) */
	uint32_t gen;         /* portgen when peer_efd was fetched */
	bool peer_known;
};

/* a grant_alloc or a map, found again by address */
struct sim_region {
	struct sim_region *next;
	void *addr;
	unsigned count;
	uint64_t handle;
};

#define SIM_REGION_HASH 256

struct sim_priv {
	int sock;
	int epfd;
	const void *shared;
	const struct grant_entry_v1 *gtab;
	const uint32_t *portgen;
	struct sim_port ports[SIM_NR_PORTS];
	struct sim_region *allocs[SIM_REGION_HASH];
	struct sim_region *maps[SIM_REGION_HASH];
	char dir[128];
	_Alignas(8) char req[sizeof(struct sim_req) + SIM_MAX_BATCH * sizeof(uint32_t)];
	_Alignas(8) char rep[SIM_MSG_MAX];
};

static const struct gv_platform_ops sim_ops;

static struct sim_priv *priv(struct gv_platform *p)
{
	return p->priv;
}

/* ---- the round trip ---- */

static void close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
}

/* Receives one message; appends its descriptors to fds (closing any beyond
 * maxfds). Returns the byte count or -errno. */
static ssize_t recv_one(int sock, void *buf, size_t len, int *fds, unsigned *nfds, unsigned maxfds)
{
	union {
		char buf[CMSG_SPACE(SIM_FDS_PER_MSG * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
	                     .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	ssize_t n;

	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (*nfds < maxfds)
				fds[(*nfds)++] = fd;
			else
				close(fd);
		}
	}
	if (n == 0)
		return -ECONNRESET;   /* the daemon went away */
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		return -EPROTO;
	return n;
}

/* Sends s->req (with `ndata` uint32_t of data) and waits for the reply in
 * s->rep, with its descriptors in fds. Returns rep->rc, or -errno when the
 * exchange itself failed (then no descriptor is left open). */
static int call(struct sim_priv *s, unsigned ndata, int *fds, unsigned maxfds, unsigned *nfds_out)
{
	struct sim_req *req = (struct sim_req *)s->req;
	struct sim_rep *rep = (struct sim_rep *)s->rep;
	size_t len = sizeof(*req) + ndata * sizeof(uint32_t);
	unsigned nfds = 0;
	ssize_t n;

	if (send(s->sock, req, len, MSG_NOSIGNAL) != (ssize_t)len)
		return errno ? -errno : -EIO;
	n = recv_one(s->sock, rep, sizeof(s->rep), fds, &nfds, maxfds);
	if (n < 0)
		goto fail;
	if ((size_t)n < sizeof(*rep) || (size_t)n != sizeof(*rep) + rep->count * sizeof(uint32_t) ||
	    rep->nfds > maxfds) {
		n = -EPROTO;
		goto fail;
	}
	while (nfds < rep->nfds) {
		struct sim_rep_more more;
		unsigned before = nfds;

		n = recv_one(s->sock, &more, sizeof(more), fds, &nfds, maxfds);
		if (n < 0)
			goto fail;
		if (n != sizeof(more) || more.nfds != nfds - before) {
			n = -EPROTO;
			goto fail;
		}
	}
	if (nfds != rep->nfds) {
		n = -EPROTO;
		goto fail;
	}
	if (nfds_out)
		*nfds_out = nfds;
	return rep->rc;

fail:
	close_fds(fds, nfds);
	return (int)n;
}

static struct sim_req *new_req(struct sim_priv *s, uint32_t op)
{
	struct sim_req *req = (struct sim_req *)s->req;

	memset(req, 0, sizeof(*req));
	req->op = op;
	req->notify_offset = GV_NO_NOTIFY_OFFSET;
	req->notify_port = GV_NO_PORT;
	return req;
}

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
	*r = (struct sim_region){ tab[region_hash(addr)], addr, count, handle };
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

/* ---- domains ---- */

static int sim_domain_exists(struct gv_platform *p, domid_t domid)
{
	struct sim_req *req = new_req(priv(p), SIM_OP_DOMAIN_EXISTS);

	req->domid = domid;
	return call(priv(p), 0, NULL, 0, NULL);
}

bool gv_platform_is_sim(const struct gv_platform *p)
{
	return p && p->ops == &sim_ops;
}

static struct xs_handle *sim_xs_open(struct gv_platform *p);

/* What xl (libxl__domain_make) writes for a new domain: its home, readable
 * by it, with the subdirectories it may write in. */
static int toolstack_write_home(struct gv_platform *p, domid_t id, const char *name)
{
	static const char *const ro_dirs[] = { "cpu", "memory", "device", "control" };
	static const char *const rw_dirs[] = { "data", "drivers", "feature", "attr", "error" };
	struct xs_permissions ro[2] = { { 0, XS_PERM_NONE }, { id, XS_PERM_READ } };
	struct xs_permissions rw[1] = { { id, XS_PERM_NONE } };
	struct xs_handle *xs = sim_xs_open(p);
	char home[48], path[96], num[8];
	int rc = 0;

	if (!xs)
		return errno ? -errno : -EIO;
	snprintf(home, sizeof(home), "/local/domain/%u", (unsigned)id);
	snprintf(num, sizeof(num), "%u", (unsigned)id);
	for (int tries = 0; tries < 16; tries++) {
		xs_transaction_t t = xs_transaction_start(xs);
		bool ok = t != XBT_NULL;

		xs_rm(xs, t, home);
		ok = ok && xs_mkdir(xs, t, home) && xs_set_permissions(xs, t, home, ro, 2);
		for (size_t i = 0; ok && i < sizeof(ro_dirs) / sizeof(ro_dirs[0]); i++) {
			snprintf(path, sizeof(path), "%s/%s", home, ro_dirs[i]);
			ok = xs_mkdir(xs, t, path) && xs_set_permissions(xs, t, path, ro, 2);
		}
		for (size_t i = 0; ok && i < sizeof(rw_dirs) / sizeof(rw_dirs[0]); i++) {
			snprintf(path, sizeof(path), "%s/%s", home, rw_dirs[i]);
			ok = xs_mkdir(xs, t, path) && xs_set_permissions(xs, t, path, rw, 1);
		}
		snprintf(path, sizeof(path), "%s/name", home);
		ok = ok && xs_write(xs, t, path, name, strlen(name)) &&
		     xs_set_permissions(xs, t, path, ro, 2);
		snprintf(path, sizeof(path), "%s/domid", home);
		ok = ok && xs_write(xs, t, path, num, strlen(num)) &&
		     xs_set_permissions(xs, t, path, ro, 2);
		rc = ok ? 0 : -(errno ? errno : EIO);
		if (t == XBT_NULL)
			break;
		if (xs_transaction_end(xs, t, !ok) && ok) {
			rc = 0;
			break;
		}
		if (ok && errno != EAGAIN) {
			rc = -(errno ? errno : EIO);
			break;
		}
		if (!ok)
			break;
	}
	xs_close(xs);
	return rc;
}

int gv_sim_domain_create(struct gv_platform *p, const char *name, domid_t *domid)
{
	struct sim_req *req;
	domid_t id;
	int rc;

	if (!gv_platform_is_sim(p))
		return -ENOSYS;
	if (!name || !*name)
		name = "guest";
	req = new_req(priv(p), SIM_OP_DOMAIN_CREATE);
	snprintf(req->name, sizeof(req->name), "%s", name);
	rc = call(priv(p), 0, NULL, 0, NULL);
	if (rc)
		return rc;
	id = (domid_t)((struct sim_rep *)priv(p)->rep)->domid;
	rc = toolstack_write_home(p, id, name);
	if (rc) {
		gv_sim_domain_destroy(p, id);
		return rc;
	}
	*domid = id;
	return 0;
}

int gv_sim_domain_destroy(struct gv_platform *p, domid_t domid)
{
	struct xs_handle *xs;
	char home[48];
	int rc;

	if (!gv_platform_is_sim(p))
		return -ENOSYS;
	new_req(priv(p), SIM_OP_DOMAIN_DESTROY)->domid = domid;
	rc = call(priv(p), 0, NULL, 0, NULL);
	if (rc)
		return rc;
	/* as xl does after the hypervisor let go: its home goes */
	xs = sim_xs_open(p);
	if (xs) {
		snprintf(home, sizeof(home), "/local/domain/%u", (unsigned)domid);
		xs_rm(xs, XBT_NULL, home);
		xs_close(xs);
	}
	return 0;
}

int gv_sim_domain_list(struct gv_platform *p, struct sim_domain_info *out, unsigned max)
{
	struct sim_rep *rep;
	int rc;

	if (!gv_platform_is_sim(p))
		return -ENOSYS;
	new_req(priv(p), SIM_OP_DOMAIN_LIST);
	rc = call(priv(p), 0, NULL, 0, NULL);
	if (rc < 0)
		return rc;
	rep = (struct sim_rep *)priv(p)->rep;
	if ((unsigned)rc > SIM_MAX_LIST || rep->count * sizeof(uint32_t) != (size_t)rc * sizeof(*out))
		return -EPROTO;
	for (unsigned i = 0; i < (unsigned)rc && i < max; i++) {
		memcpy(&out[i], (char *)rep->data + i * sizeof(*out), sizeof(*out));
		out[i].name[sizeof(out[i].name) - 1] = 0;
	}
	return rc;
}

const struct grant_entry_v1 *gv_sim_grant_table(struct gv_platform *p, unsigned *nr)
{
	if (!gv_platform_is_sim(p))
		return NULL;
	if (nr)
		*nr = SIM_NR_GREFS;
	return priv(p)->gtab;
}

/* ---- granting side (gntalloc) ---- */

static void set_notify(struct sim_req *req, const struct gv_notify *n)
{
	if (n) {
		req->notify_offset = n->offset;
		req->notify_port = n->port;
	}
}

static int sim_grant_alloc(struct gv_platform *p, domid_t to, unsigned count, unsigned flags,
                           const struct gv_notify *notify, grant_ref_t *refs, void **addr)
{
	struct sim_priv *s = priv(p);
	struct sim_rep *rep = (struct sim_rep *)s->rep;
	struct sim_req *req;
	uint64_t handle;
	unsigned nfds = 0;
	void *va;
	int fd, rc;

	if (count == 0 || count > SIM_MAX_BATCH || !refs || !addr)
		return -EINVAL;
	req = new_req(s, SIM_OP_GRANT_ALLOC);
	req->domid = to;
	req->count = count;
	req->flags = flags;
	set_notify(req, notify);
	rc = call(s, 0, &fd, 1, &nfds);
	if (rc < 0)
		return rc;
	handle = rep->handle;
	if (nfds != 1 || rep->count != count) {
		rc = -EPROTO;
		goto end_grant;
	}
	va = mmap(NULL, (size_t)count * GV_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
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
	new_req(s, SIM_OP_GRANT_END)->handle = handle;
	call(s, 0, NULL, 0, NULL);
	return rc;
}

static int sim_grant_end(struct gv_platform *p, void *addr, unsigned count)
{
	struct sim_priv *s = priv(p);
	struct sim_region *r = region_take(s->allocs, addr, count);
	int rc;

	if (!r)
		return -EINVAL;
	munmap(addr, (size_t)count * GV_PAGE_SIZE);
	new_req(s, SIM_OP_GRANT_END)->handle = r->handle;
	free(r);
	rc = call(s, 0, NULL, 0, NULL);
	p->ctr.grants_active -= count;
	if (rc == -EBUSY) {
		uint32_t leaked = ((struct sim_rep *)s->rep)->leaked;

		p->ctr.grants_leaked += leaked <= count ? leaked : count;
	}
	return rc;
}

/* ---- mapping side (gntdev) ---- */

static int sim_map(struct gv_platform *p, domid_t from, unsigned count, const grant_ref_t *refs,
                   unsigned flags, const struct gv_notify *notify, void **addr)
{
	struct sim_priv *s = priv(p);
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
	req = new_req(s, SIM_OP_MAP);
	req->domid = from;
	req->count = count;
	req->flags = flags;
	set_notify(req, notify);
	memcpy(req->data, refs, count * sizeof(*refs));
	rc = call(s, count, fds, SIM_MAX_BATCH, &nfds);
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
		if (mmap(base + (size_t)i * GV_PAGE_SIZE, (size_t)(j - i) * GV_PAGE_SIZE, prot,
		         MAP_SHARED | MAP_FIXED, fds[fdi], (off_t)page * GV_PAGE_SIZE) == MAP_FAILED) {
			rc = -errno;
			goto unmap_range;
		}
	}
	rc = region_add(s->maps, base, count, handle);
	if (rc)
		goto unmap_range;
	close_fds(fds, nfds);
	p->ctr.maps_active += count;
	p->ctr.maps_done += count;
	*addr = base;
	return 0;

unmap_range:
	munmap(base, (size_t)count * GV_PAGE_SIZE);
unmap_grant:
	close_fds(fds, nfds);
	new_req(s, SIM_OP_UNMAP)->handle = handle;
	call(s, 0, NULL, 0, NULL);
	return rc;
}

static int sim_unmap(struct gv_platform *p, void *addr, unsigned count)
{
	struct sim_priv *s = priv(p);
	struct sim_region *r = region_take(s->maps, addr, count);
	int rc;

	if (!r)
		return -EINVAL;
	/* our view goes first: the pins may only drop once nothing here can
	 * touch the pages */
	munmap(addr, (size_t)count * GV_PAGE_SIZE);
	new_req(s, SIM_OP_UNMAP)->handle = r->handle;
	free(r);
	rc = call(s, 0, NULL, 0, NULL);
	p->ctr.maps_active -= count;
	p->ctr.unmaps_done += count;
	return rc;
}

/* ---- event channels ---- */

static int sim_evtchn_fd(struct gv_platform *p)
{
	return priv(p)->epfd;
}

static struct sim_port *own_port(struct sim_priv *s, evtchn_port_t port)
{
	return port < SIM_NR_PORTS && s->ports[port].efd >= 0 ? &s->ports[port] : NULL;
}

/* Takes ownership of efd (and peer_efd) for local port `port`. */
static int port_add(struct sim_priv *s, evtchn_port_t port, int efd, int peer_efd, uint32_t gen,
                    bool peer_known)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u32 = port };

	if (port == 0 || port >= SIM_NR_PORTS || s->ports[port].efd >= 0 ||
	    epoll_ctl(s->epfd, EPOLL_CTL_ADD, efd, &ev) < 0) {
		close(efd);
		if (peer_efd >= 0)
			close(peer_efd);
		return port == 0 || port >= SIM_NR_PORTS || s->ports[port].efd >= 0 ? -EPROTO : -errno;
	}
	s->ports[port] = (struct sim_port){ efd, peer_efd, gen, peer_known };
	return 0;
}

static void port_forget(struct sim_priv *s, evtchn_port_t port)
{
	struct sim_port *sp = &s->ports[port];

	epoll_ctl(s->epfd, EPOLL_CTL_DEL, sp->efd, NULL);
	close(sp->efd);
	if (sp->peer_efd >= 0)
		close(sp->peer_efd);
	*sp = (struct sim_port){ -1, -1, 0, false };
}

static int sim_evtchn_alloc_unbound(struct gv_platform *p, domid_t remote, evtchn_port_t *local)
{
	struct sim_priv *s = priv(p);
	struct sim_rep *rep = (struct sim_rep *)s->rep;
	unsigned nfds = 0;
	int fd, rc;

	new_req(s, SIM_OP_EVTCHN_ALLOC_UNBOUND)->domid = remote;
	rc = call(s, 0, &fd, 1, &nfds);
	if (rc < 0)
		return rc;
	if (nfds != 1)
		rc = -EPROTO;
	else
		rc = port_add(s, rep->port, fd, -1, 0, false);
	if (rc) {
		/* give the port back; nothing left open here */
		evtchn_port_t port = rep->port;

		new_req(s, SIM_OP_EVTCHN_UNBIND)->port = port;
		call(s, 0, NULL, 0, NULL);
		return rc;
	}
	*local = rep->port;
	return 0;
}

static int sim_evtchn_bind(struct gv_platform *p, domid_t remote, evtchn_port_t remote_port,
                           evtchn_port_t *local)
{
	struct sim_priv *s = priv(p);
	struct sim_rep *rep = (struct sim_rep *)s->rep;
	struct sim_req *req = new_req(s, SIM_OP_EVTCHN_BIND);
	unsigned nfds = 0;
	int fds[2], rc;

	req->domid = remote;
	req->port = remote_port;
	rc = call(s, 0, fds, 2, &nfds);
	if (rc < 0)
		return rc;
	if (nfds != 2) {
		close_fds(fds, nfds);
		rc = -EPROTO;
	} else {
		rc = port_add(s, rep->port, fds[0], fds[1], rep->gen, true);
	}
	if (rc) {
		evtchn_port_t port = rep->port;

		new_req(s, SIM_OP_EVTCHN_UNBIND)->port = port;
		call(s, 0, NULL, 0, NULL);
		return rc;
	}
	*local = rep->port;
	return 0;
}

static int sim_evtchn_unbind(struct gv_platform *p, evtchn_port_t port)
{
	struct sim_priv *s = priv(p);

	if (!own_port(s, port))
		return -EINVAL;
	port_forget(s, port);
	new_req(s, SIM_OP_EVTCHN_UNBIND)->port = port;
	return call(s, 0, NULL, 0, NULL);
}

static int sim_evtchn_notify(struct gv_platform *p, evtchn_port_t port)
{
	struct sim_priv *s = priv(p);
	struct sim_port *sp = own_port(s, port);
	uint64_t one = 1;

	if (!sp)
		return -EINVAL;
	/* the fast path: the peer eventfd we know, unless the binding moved */
	if (!sp->peer_known ||
	    __atomic_load_n(&s->portgen[port], __ATOMIC_ACQUIRE) != sp->gen) {
		struct sim_rep *rep = (struct sim_rep *)s->rep;
		unsigned nfds = 0;
		int fd = -1, rc;

		new_req(s, SIM_OP_EVTCHN_PEER)->port = port;
		rc = call(s, 0, &fd, 1, &nfds);
		if (rc < 0)
			return rc;
		if (sp->peer_efd >= 0)
			close(sp->peer_efd);
		sp->peer_efd = nfds ? fd : -1;
		sp->gen = rep->gen;
		sp->peer_known = true;
	}
	/* unbound: the event goes nowhere, as in Xen */
	if (sp->peer_efd >= 0 && write(sp->peer_efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	p->ctr.events_sent++;
	return 0;
}

static int sim_evtchn_pending(struct gv_platform *p, evtchn_port_t *port)
{
	struct sim_priv *s = priv(p);
	struct epoll_event ev;
	uint64_t v;
	int n;

	do
		n = epoll_wait(s->epfd, &ev, 1, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return 0;
	if (!own_port(s, ev.data.u32))
		return 0;
	/* one shot: the port is masked now; what arrives from here on stays
	 * pending (counted in the eventfd) until unmask re-arms it */
	if (read(s->ports[ev.data.u32].efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	*port = ev.data.u32;
	p->ctr.events_received++;
	return 1;
}

static int sim_evtchn_unmask(struct gv_platform *p, evtchn_port_t port)
{
	struct sim_priv *s = priv(p);
	struct sim_port *sp = own_port(s, port);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u32 = port };

	if (!sp)
		return -EINVAL;
	return epoll_ctl(s->epfd, EPOLL_CTL_MOD, sp->efd, &ev) < 0 ? -errno : 0;
}

/* ---- xenstore ---- */

static struct xs_handle *sim_xs_open(struct gv_platform *p)
{
	struct sim_priv *s = priv(p);
	char path[192], *old = getenv("XENSTORED_PATH");
	struct xs_handle *xs;
	int saved;

	/* libxenstore reads XENSTORED_PATH at xs_open time only */
	if (old)
		old = strdup(old);
	snprintf(path, sizeof(path), "%s/dom%u/xenstored", s->dir, (unsigned)p->domid);
	setenv("XENSTORED_PATH", path, 1);
	xs = xs_open(XS_OPEN_SOCKETONLY);
	saved = errno;
	if (old)
		setenv("XENSTORED_PATH", old, 1);
	else
		unsetenv("XENSTORED_PATH");
	free(old);
	errno = saved;
	return xs;
}

/* ---- open / close ---- */

static void sim_close(struct gv_platform *p)
{
	struct sim_priv *s = priv(p);

	if (!s)
		return;
	for (unsigned b = 0; b < SIM_REGION_HASH; b++) {
		while (s->maps[b])
			sim_unmap(p, s->maps[b]->addr, s->maps[b]->count);
		while (s->allocs[b])
			sim_grant_end(p, s->allocs[b]->addr, s->allocs[b]->count);
	}
	for (evtchn_port_t port = 1; port < SIM_NR_PORTS; port++)
		if (s->ports[port].efd >= 0)
			sim_evtchn_unbind(p, port);
	if (s->shared)
		munmap((void *)s->shared, SIM_SHARED_SIZE);
	close(s->epfd);
	close(s->sock);
	free(s);
	p->priv = NULL;
}

static int connect_dom(const char *dir, int domid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/dom%d/hypervisor", dir, domid);
	int fd, rc;

	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int gv_platform_sim_open(struct gv_platform *p, const char *dir, int domid, char *err, size_t errlen)
{
	struct sim_priv *s;
	struct sim_rep *rep;
	struct sim_req *req;
	unsigned nfds = 0;
	void *shared;
	int shm_fd, rc;

	if (domid < 0 || domid >= (int)DOMID_FIRST_RESERVED) {
		snprintf(err, errlen, "domain %d: expected a domain id 0..%d", domid,
		         DOMID_FIRST_RESERVED - 1);
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	for (unsigned i = 0; i < SIM_NR_PORTS; i++)
		s->ports[i] = (struct sim_port){ -1, -1, 0, false };
	s->sock = connect_dom(dir, domid);
	if (s->sock == -ENAMETOOLONG) {
		snprintf(err, errlen, "%s: path too long for a Unix socket", dir);
		rc = -ENAMETOOLONG;
		goto free_priv;
	}
	if (s->sock < 0) {
		int fd0 = domid ? connect_dom(dir, 0) : -1;

		if (fd0 >= 0) {
			close(fd0);
			snprintf(err, errlen, "domain %d does not exist in the simulation at %s",
			         domid, dir);
			rc = -ESRCH;
		} else {
			snprintf(err, errlen, "no simulated Xen at %s (start it with: gv-simxen --dir %s)",
			         dir, dir);
			rc = -ENOENT;
		}
		goto free_priv;
	}
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
		goto close_sock;
	}
	req = new_req(s, SIM_OP_HELLO);
	req->magic = SIM_PROTO_MAGIC;
	rc = call(s, 0, &shm_fd, 1, &nfds);
	rep = (struct sim_rep *)s->rep;
	if (rc == 0 && (nfds != 1 || rep->domid != (unsigned)domid)) {
		if (nfds)
			close(shm_fd);
		rc = -EPROTO;
	}
	if (rc < 0) {
		snprintf(err, errlen, "simulated Xen at %s did not answer as domain %d: %s",
		         dir, domid, strerror(-rc));
		goto close_epfd;
	}
	shared = mmap(NULL, SIM_SHARED_SIZE, PROT_READ, MAP_SHARED, shm_fd, 0);
	close(shm_fd);
	if (shared == MAP_FAILED) {
		rc = -errno;
		snprintf(err, errlen, "cannot map the shared info of domain %d: %s", domid,
		         strerror(errno));
		goto close_epfd;
	}
	s->shared = shared;
	s->gtab = shared;
	s->portgen = (const uint32_t *)((const char *)shared + SIM_SHARED_PORTGEN_OFF);
	p->ops = &sim_ops;
	p->priv = s;
	p->domid = (domid_t)domid;
	snprintf(p->desc, sizeof(p->desc), "sim (dir %s, domain %d)", dir, domid);
	return 0;

close_epfd:
	close(s->epfd);
close_sock:
	close(s->sock);
free_priv:
	free(s);
	return rc;
}

static const struct gv_platform_ops sim_ops = {
	.name = "sim",
	.close = sim_close,
	.domain_exists = sim_domain_exists,
	.grant_alloc = sim_grant_alloc,
	.grant_end = sim_grant_end,
	.map = sim_map,
	.unmap = sim_unmap,
	.evtchn_fd = sim_evtchn_fd,
	.evtchn_alloc_unbound = sim_evtchn_alloc_unbound,
	.evtchn_bind = sim_evtchn_bind,
	.evtchn_unbind = sim_evtchn_unbind,
	.evtchn_notify = sim_evtchn_notify,
	.evtchn_pending = sim_evtchn_pending,
	.evtchn_unmask = sim_evtchn_unmask,
	.xs_open = sim_xs_open,
};
