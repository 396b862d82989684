/*
 * common/platform_sim.c: the simulated platform, a client of gv-simxen's
 * hypervisor (protocol: common/sim_proto.h; daemon: sim/hypervisor*.c): the
 * round trip, open and close, the domain calls, xenstore. Grants are
 * platform_sim_grant.c's, event channels platform_sim_evtchn.c's.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <xenstore.h>
#include "platform_sim.h"
#include "platform_sim_priv.h"

static const struct gv_platform_ops sim_ops;

/* ---- the round trip ---- */

void gv_sim_close_fds(int *fds, unsigned n)
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

int gv_sim_call(struct sim_priv *s, unsigned ndata, int *fds, unsigned maxfds, unsigned *nfds_out)
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
	gv_sim_close_fds(fds, nfds);
	return (int)n;
}

struct sim_req *gv_sim_new_req(struct sim_priv *s, uint32_t op)
{
	struct sim_req *req = (struct sim_req *)s->req;

	memset(req, 0, sizeof(*req));
	req->op = op;
	req->notify_offset = GV_NO_NOTIFY_OFFSET;
	req->notify_port = GV_NO_PORT;
	return req;
}

/* ---- domains ---- */

static int sim_domain_exists(struct gv_platform *p, domid_t domid)
{
	struct sim_req *req = gv_sim_new_req(gv_sim_priv(p), SIM_OP_DOMAIN_EXISTS);

	req->domid = domid;
	return gv_sim_call(gv_sim_priv(p), 0, NULL, 0, NULL);
}

bool gv_platform_is_sim(const struct gv_platform *p)
{
	return p && p->ops == &sim_ops;
}

int gv_sim_domain_create(struct gv_platform *p, const char *name, domid_t *domid)
{
	struct sim_req *req;
	int rc;

	if (!gv_platform_is_sim(p))
		return -ENOSYS;
	if (!name || !*name)
		name = "guest";
	req = gv_sim_new_req(gv_sim_priv(p), SIM_OP_DOMAIN_CREATE);
	snprintf(req->name, sizeof(req->name), "%s", name);
	rc = gv_sim_call(gv_sim_priv(p), 0, NULL, 0, NULL);
	if (rc)
		return rc;
	*domid = (domid_t)((struct sim_rep *)gv_sim_priv(p)->rep)->domid;
	return 0;
}

int gv_sim_domain_destroy(struct gv_platform *p, domid_t domid)
{
	if (!gv_platform_is_sim(p))
		return -ENOSYS;
	gv_sim_new_req(gv_sim_priv(p), SIM_OP_DOMAIN_DESTROY)->domid = domid;
	return gv_sim_call(gv_sim_priv(p), 0, NULL, 0, NULL);
}

int gv_sim_domain_restore(struct gv_platform *p, domid_t domid, domid_t *new_domid)
{
	int rc;

	if (!gv_platform_is_sim(p))
		return -ENOSYS;
	gv_sim_new_req(gv_sim_priv(p), SIM_OP_DOMAIN_RESTORE)->domid = domid;
	rc = gv_sim_call(gv_sim_priv(p), 0, NULL, 0, NULL);
	if (rc)
		return rc;
	*new_domid = (domid_t)((struct sim_rep *)gv_sim_priv(p)->rep)->domid;
	return 0;
}

int gv_sim_domain_list(struct gv_platform *p, struct sim_domain_info *out, unsigned max)
{
	struct sim_rep *rep;
	int rc;

	if (!gv_platform_is_sim(p))
		return -ENOSYS;
	gv_sim_new_req(gv_sim_priv(p), SIM_OP_DOMAIN_LIST);
	rc = gv_sim_call(gv_sim_priv(p), 0, NULL, 0, NULL);
	if (rc < 0)
		return rc;
	rep = (struct sim_rep *)gv_sim_priv(p)->rep;
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
	return gv_sim_priv(p)->gtab;
}

/* ---- xenstore ---- */

static struct xs_handle *sim_xs_open(struct gv_platform *p)
{
	struct sim_priv *s = gv_sim_priv(p);
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
	struct sim_priv *s = gv_sim_priv(p);

	if (!s)
		return;
	for (unsigned b = 0; b < SIM_REGION_HASH; b++) {
		while (s->maps[b])
			gv_sim_unmap(p, s->maps[b]->addr, s->maps[b]->count);
		while (s->allocs[b])
			gv_sim_grant_end(p, s->allocs[b]->addr, s->allocs[b]->count);
	}
	for (evtchn_port_t port = 1; port < SIM_NR_PORTS; port++)
		if (s->ports[port].efd >= 0)
			gv_sim_evtchn_unbind(p, port);
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
	req = gv_sim_new_req(s, SIM_OP_HELLO);
	req->magic = SIM_PROTO_MAGIC;
	rc = gv_sim_call(s, 0, &shm_fd, 1, &nfds);
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

/* The domain was saved and restored (gv_sim_domain_restore): the old one's
 * hypervisor connection is closed (its grants and ports are gone), so this
 * handle connects to the new domain as a process's kernel does on resume.
 * Old allocations and maps are kept only as local memory: ending one just
 * unmaps it here (the entry went with the old table). Old ports are
 * forgotten. The event fd (an epoll set) stays the same. */
static int sim_resume(struct gv_platform *p, domid_t new_domid)
{
	struct sim_priv *s = gv_sim_priv(p);
	struct sim_rep *rep;
	unsigned nfds = 0;
	void *shared;
	int sock, old_sock, shm_fd, rc;

	sock = connect_dom(s->dir, new_domid);
	if (sock < 0)
		return sock;
	old_sock = s->sock;
	s->sock = sock;
	gv_sim_new_req(s, SIM_OP_HELLO)->magic = SIM_PROTO_MAGIC;
	rc = gv_sim_call(s, 0, &shm_fd, 1, &nfds);
	rep = (struct sim_rep *)s->rep;
	if (rc == 0 && (nfds != 1 || rep->domid != (unsigned)new_domid)) {
		if (nfds)
			close(shm_fd);
		rc = -EPROTO;
	}
	if (rc == 0) {
		shared = mmap(NULL, SIM_SHARED_SIZE, PROT_READ, MAP_SHARED, shm_fd, 0);
		close(shm_fd);
		if (shared == MAP_FAILED)
			rc = -errno;
	}
	if (rc < 0) {
		s->sock = old_sock;
		close(sock);
		return rc;
	}
	close(old_sock);
	munmap((void *)s->shared, SIM_SHARED_SIZE);
	s->shared = shared;
	s->gtab = shared;
	s->portgen = (const uint32_t *)((const char *)shared + SIM_SHARED_PORTGEN_OFF);
	gv_sim_forget_old_domain(p);
	p->domid = new_domid;
	{
		int n = snprintf(p->desc, sizeof(p->desc), "sim (dir %.100s, domain %u, restored)",
		                 s->dir, (unsigned)new_domid);
		(void)n;
	}
	return 0;
}

static const struct gv_platform_ops sim_ops = {
	.name = "sim",
	.close = sim_close,
	.domain_exists = sim_domain_exists,
	.grant_alloc = gv_sim_grant_alloc,
	.grant_end = gv_sim_grant_end,
	.map = gv_sim_map,
	.unmap = gv_sim_unmap,
	.grant_copy = gv_sim_grant_copy,
	.evtchn_fd = gv_sim_evtchn_fd,
	.evtchn_alloc_unbound = gv_sim_evtchn_alloc_unbound,
	.evtchn_bind = gv_sim_evtchn_bind,
	.evtchn_unbind = gv_sim_evtchn_unbind,
	.evtchn_notify = gv_sim_evtchn_notify,
	.evtchn_pending = gv_sim_evtchn_pending,
	.evtchn_unmask = gv_sim_evtchn_unmask,
	.xs_open = sim_xs_open,
	.resume = sim_resume,
};
