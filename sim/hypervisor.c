/*
 * sim/hypervisor.c: the simulated hypervisor's domains, its connections and
 * the dispatch of requests (protocol: common/sim_proto.h). Grant tables are
 * in hypervisor_grant.c, event channels in hypervisor_evtchn.c.
 *
 * Domain 0 exists from the start. A dom0 client creates and destroys other
 * domains; a destroyed domain whose pages another domain still maps stays
 * as a "dying" zombie (Xen's "(null)" in xl list) until the last unmap.
 *
 * Every request is untrusted: a request that does not parse closes only the
 * connection it came on; one that parses but is wrong gets -EINVAL.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "log.h"
#include "hypervisor.h"

#define SIM_PATH_LEN 256

static struct hv_domain *domains[DOMID_FIRST_RESERVED];
static domid_t next_domid = 1;

struct hv_domain *hv_domain_any(domid_t domid)
{
	return domid < DOMID_FIRST_RESERVED ? domains[domid] : NULL;
}

struct hv_domain *hv_domain_get(domid_t domid)
{
	struct hv_domain *d = hv_domain_any(domid);

	return d && !d->dying ? d : NULL;
}

bool hv_domain_exists(domid_t domid)
{
	return hv_domain_get(domid) != NULL;
}

static void domain_free(struct hv_domain *d)
{
	hv_gnttab_fini(d);
	if (d->shm)
		munmap(d->shm, SIM_SHARED_SIZE);
	if (d->shm_fd >= 0)
		close(d->shm_fd);
	free(d->ports);
	domains[d->domid] = NULL;
	free(d);
}

void hv_domain_maybe_free(struct hv_domain *d)
{
	if (d->dying && !d->nr_conns && !d->nr_allocs) {
		gv_info("dom%u (%s): last page released, gone", d->domid, d->name);
		domain_free(d);
	}
}

/* ---- connections ---- */

static void conn_close(struct hv_conn *c)
{
	struct hv_domain *d = c->dom;

	sim_loop_del(c->fd);
	close(c->fd);
	/* mappings and grants first: their notifies go out on ports that are
	 * still bound; then the ports */
	hv_conn_release_grants(c);
	hv_conn_release_ports(c);
	hv_list_del(&c->link);
	d->nr_conns--;
	free(c);
	hv_domain_maybe_free(d);
}

/* Sends a reply and its descriptors (SIM_FDS_PER_MSG per message). */
static int send_reply(struct hv_conn *c, struct sim_rep *rep, const int *fds, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(SIM_FDS_PER_MSG * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct sim_rep_more more;
	unsigned sent = 0;
	bool first = true;

	rep->nfds = nfds;
	do {
		unsigned k = nfds - sent < SIM_FDS_PER_MSG ? nfds - sent : SIM_FDS_PER_MSG;
		struct iovec iov;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

		if (first) {
			iov.iov_base = rep;
			iov.iov_len = sizeof(*rep) + rep->count * sizeof(uint32_t);
		} else {
			more = (struct sim_rep_more){ .nfds = k };
			iov.iov_base = &more;
			iov.iov_len = sizeof(more);
		}
		if (k) {
			struct cmsghdr *cm;

			memset(&u, 0, sizeof(u));
			mh.msg_control = u.buf;
			mh.msg_controllen = CMSG_SPACE(k * sizeof(int));
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(k * sizeof(int));
			memcpy(CMSG_DATA(cm), fds + sent, k * sizeof(int));
		}
		/* a client that does not read its replies loses its connection,
		 * it does not stall the daemon */
		if (sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			return -errno;
		sent += k;
		first = false;
	} while (sent < nfds);
	return 0;
}

static int domain_create(const char *name, domid_t *out);
static int domain_destroy(domid_t domid);
static int domain_restore(domid_t old, uint32_t *out);

static void fill_info(struct sim_domain_info *i, const struct hv_domain *d)
{
	memset(i, 0, sizeof(*i));
	i->domid = d->domid;
	i->dying = d->dying;
	i->nr_conns = d->nr_conns;
	i->ports_bound = hv_ports_bound(d);
	i->grants_active = d->grants_active;
	i->grants_leaked = d->grants_leaked;
	i->maps_active = d->maps_active;
	i->pages_mapped_by_others = d->mapped_by_others;
	memcpy(i->name, d->name, sizeof(i->name));
}

/* Runs one request; returns the reply's descriptors in fds. A negative
 * return closes the connection (the request did not parse). */
static int dispatch(struct hv_conn *c, const struct sim_req *req, size_t len,
                    struct sim_rep *rep, int *fds, unsigned *nfds)
{
	struct hv_domain *d = c->dom;
	size_t want = sizeof(*req) +
	              (req->op == SIM_OP_MAP ? (size_t)req->count * sizeof(uint32_t) :
	               req->op == SIM_OP_GRANT_COPY ? (size_t)req->count * 2 * sizeof(uint32_t) : 0);

	if (len != want)
		return -EPROTO;
	/* a new request: the client finished the copies of its last GRANT_COPY */
	hv_copy_release(c);
	switch (req->op) {
	case SIM_OP_HELLO:
		if (req->magic != SIM_PROTO_MAGIC)
			return -EPROTO;
		rep->domid = d->domid;
		fds[(*nfds)++] = d->shm_fd;   /* sent as the read-only reopen below */
		break;
	case SIM_OP_DOMAIN_EXISTS:
		rep->rc = req->domid < DOMID_FIRST_RESERVED && hv_domain_exists((domid_t)req->domid);
		break;
	case SIM_OP_DOMAIN_CREATE: {
		char name[SIM_NAME_MAX];
		domid_t id = 0;

		if (d->domid != 0) {
			rep->rc = -EPERM;
			break;
		}
		memcpy(name, req->name, sizeof(name));
		name[sizeof(name) - 1] = 0;
		rep->rc = domain_create(name, &id);
		rep->domid = id;
		break;
	}
	case SIM_OP_DOMAIN_DESTROY:
		if (d->domid != 0)
			rep->rc = -EPERM;
		else if (req->domid == 0)
			rep->rc = -EINVAL;
		else if (req->domid >= DOMID_FIRST_RESERVED)
			rep->rc = -ESRCH;
		else
			rep->rc = domain_destroy((domid_t)req->domid);
		break;
	case SIM_OP_DOMAIN_RESTORE:
		if (d->domid != 0)
			rep->rc = -EPERM;
		else if (req->domid == 0 || req->domid >= DOMID_FIRST_RESERVED ||
		         !hv_domain_get((domid_t)req->domid))
			rep->rc = -ESRCH;
		else
			rep->rc = domain_restore((domid_t)req->domid, &rep->domid);
		break;
	case SIM_OP_DOMAIN_LIST: {
		struct sim_domain_info *info = (struct sim_domain_info *)rep->data;
		unsigned n = 0;

		if (d->domid != 0) {
			rep->rc = -EPERM;
			break;
		}
		for (unsigned id = 0; id < DOMID_FIRST_RESERVED && n < SIM_MAX_LIST; id++)
			if (domains[id])
				fill_info(&info[n++], domains[id]);
		rep->rc = (int)n;
		rep->count = n * sizeof(*info) / sizeof(uint32_t);
		break;
	}
	case SIM_OP_GRANT_ALLOC: {
		int fd;

		rep->rc = hv_grant_alloc(c, req, rep->data, &rep->handle, &fd);
		if (rep->rc == 0) {
			rep->count = req->count;
			fds[(*nfds)++] = fd;
		}
		break;
	}
	case SIM_OP_GRANT_END:
		rep->rc = hv_grant_end(c, req->handle, &rep->leaked);
		break;
	case SIM_OP_MAP:
		rep->rc = hv_map(c, req, &rep->handle, rep->data, fds, nfds);
		if (rep->rc == 0)
			rep->count = 2 * req->count;
		break;
	case SIM_OP_UNMAP:
		rep->rc = hv_unmap(c, req->handle);
		break;
	case SIM_OP_GRANT_COPY:
		rep->rc = hv_grant_copy(c, req, rep->data, fds, nfds, &rep->handle);
		if (rep->rc == 0)
			rep->count = 2 * req->count;
		break;
	case SIM_OP_EVTCHN_ALLOC_UNBOUND: {
		int efd;

		rep->rc = req->domid < DOMID_FIRST_RESERVED
		          ? hv_evtchn_alloc_unbound(c, (domid_t)req->domid, &rep->port, &efd) : -ESRCH;
		if (rep->rc == 0)
			fds[(*nfds)++] = efd;
		break;
	}
	case SIM_OP_EVTCHN_BIND: {
		int efd, peer;

		rep->rc = req->domid < DOMID_FIRST_RESERVED
		          ? hv_evtchn_bind(c, (domid_t)req->domid, req->port, &rep->port, &efd,
		                           &peer, &rep->gen) : -ESRCH;
		if (rep->rc == 0) {
			fds[(*nfds)++] = efd;
			fds[(*nfds)++] = peer;
		}
		break;
	}
	case SIM_OP_EVTCHN_UNBIND:
		rep->rc = hv_evtchn_unbind(c, req->port);
		break;
	case SIM_OP_EVTCHN_PEER: {
		int peer;

		rep->rc = hv_evtchn_peer(c, req->port, &peer, &rep->gen);
		if (rep->rc == 0 && peer >= 0)
			fds[(*nfds)++] = peer;
		break;
	}
	default:
		rep->rc = -EINVAL;
		break;
	}
	return 0;
}

static _Alignas(8) char reqbuf[sizeof(struct sim_req) + SIM_MAX_BATCH * sizeof(uint32_t) + 64];
static _Alignas(8) char repbuf[SIM_MSG_MAX];

static void on_conn(void *ctx, uint32_t events)
{
	struct hv_conn *c = ctx;
	struct sim_req *req = (struct sim_req *)reqbuf;
	struct sim_rep *rep = (struct sim_rep *)repbuf;
	union {
		char buf[CMSG_SPACE(16 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { reqbuf, sizeof(reqbuf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
	                     .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	int fds[SIM_MAX_BATCH + 2], rofd = -1, rc;
	unsigned nfds = 0;
	ssize_t n;

	n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR) && !(events & (EPOLLHUP | EPOLLERR)))
		return;
	/* a client has no business sending descriptors: drop them */
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
				close(((int *)CMSG_DATA(cm))[i]);
	if (n <= 0 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n < sizeof(*req)) {
		if (n > 0)
			gv_warn("dom%u: malformed request (%zd bytes): closing that connection",
			        c->dom->domid, n);
		conn_close(c);
		return;
	}
	memset(rep, 0, sizeof(*rep));
	rc = dispatch(c, req, (size_t)n, rep, fds, &nfds);
	if (rc < 0) {
		gv_warn("dom%u: malformed request (op %u): closing that connection",
		        c->dom->domid, req->op);
		conn_close(c);
		return;
	}
	gv_debug("dom%u: op %u -> %d", c->dom->domid, req->op, rep->rc);
	if (req->op == SIM_OP_HELLO) {
		char path[64];

		/* the grant table is the hypervisor's to write: read-only here */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[0]);
		rofd = open(path, O_RDONLY | O_CLOEXEC);
		if (rofd < 0) {
			rep->rc = -errno;
			nfds = 0;
		} else {
			fds[0] = rofd;
		}
	}
	if (send_reply(c, rep, fds, nfds) < 0) {
		gv_warn("dom%u: cannot reply (%s): closing that connection", c->dom->domid,
		        strerror(errno));
		if (rofd >= 0)
			close(rofd);
		conn_close(c);
		return;
	}
	if (rofd >= 0)
		close(rofd);
}

static void on_listen(void *ctx, uint32_t events)
{
	struct hv_domain *d = ctx;
	struct hv_conn *c;
	int fd;

	(void)events;
	fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->dom = d;
	c->next_handle = 1;
	for (unsigned b = 0; b < HV_HASH; b++) {
		hv_list_init(&c->allocs[b]);
		hv_list_init(&c->maps[b]);
	}
	if (sim_loop_add(fd, EPOLLIN, on_conn, c) < 0) {
		close(fd);
		free(c);
		return;
	}
	hv_list_add(&d->conns, &c->link);
	d->nr_conns++;
}

/* ---- domains ---- */

static int domain_listen(struct hv_domain *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[SIM_PATH_LEN];
	int fd, rc;

	if (!sim_path(dir, sizeof(dir), d->domid, NULL) ||
	    !sim_path(sa.sun_path, sizeof(sa.sun_path), d->domid, "hypervisor"))
		return -ENAMETOOLONG;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(sa.sun_path);    /* a stale one: DIR is ours, under the lock */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		rc = -errno;
		goto close_fd;
	}
	rc = sim_loop_add(fd, EPOLLIN, on_listen, d);
	if (rc)
		goto unlink_sock;
	d->listen_fd = fd;
	return 0;

unlink_sock:
	unlink(sa.sun_path);
close_fd:
	close(fd);
	return rc;
}

static void domain_unlisten(struct hv_domain *d)
{
	char path[SIM_PATH_LEN];

	if (d->listen_fd < 0)
		return;
	sim_loop_del(d->listen_fd);
	close(d->listen_fd);
	d->listen_fd = -1;
	if (sim_path(path, sizeof(path), d->domid, "hypervisor"))
		unlink(path);
	/* xenstored's socket may still be there: then it removes the folder */
	if (sim_path(path, sizeof(path), d->domid, NULL))
		rmdir(path);
}

static int domain_new(domid_t domid, const char *name)
{
	struct hv_domain *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	d->domid = domid;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->listen_fd = -1;
	hv_list_init(&d->conns);
	d->shm_fd = memfd_create("gv-shared-info", MFD_CLOEXEC);
	if (d->shm_fd < 0) {
		rc = -errno;
		goto free_dom;
	}
	if (ftruncate(d->shm_fd, SIM_SHARED_SIZE) < 0) {
		rc = -errno;
		goto free_dom;
	}
	d->shm = mmap(NULL, SIM_SHARED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, d->shm_fd, 0);
	if (d->shm == MAP_FAILED) {
		d->shm = NULL;
		rc = -errno;
		goto free_dom;
	}
	d->gtab = d->shm;
	d->portgen = (uint32_t *)((char *)d->shm + SIM_SHARED_PORTGEN_OFF);
	d->ports = calloc(SIM_NR_PORTS, sizeof(*d->ports));
	if (!d->ports) {
		rc = -ENOMEM;
		goto free_dom;
	}
	rc = hv_gnttab_init(d);
	if (rc)
		goto free_dom;
	domains[domid] = d;
	rc = domain_listen(d);
	if (rc)
		goto free_dom;
	rc = xs_server_add_domain(domid);
	if (rc)
		goto unlisten;
	gv_info("dom%u (%s): created", domid, d->name);
	return 0;

unlisten:
	domain_unlisten(d);
free_dom:
	domain_free(d);
	return rc;
}

static int domain_create(const char *name, domid_t *out)
{
	for (unsigned k = 1; k < DOMID_FIRST_RESERVED; k++) {
		domid_t id = next_domid;

		next_domid = (unsigned)next_domid + 1 < DOMID_FIRST_RESERVED ? next_domid + 1 : 1;
		if (!domains[id]) {
			int rc = domain_new(id, name && *name ? name : "guest");

			if (rc == 0)
				*out = id;
			return rc;
		}
	}
	return -ENOSPC;
}

static int domain_destroy(domid_t domid)
{
	struct hv_domain *d = hv_domain_get(domid);

	if (!d)
		return -ESRCH;
	d->dying = true;
	domain_unlisten(d);
	while (!hv_list_empty(&d->conns)) {
		struct hv_conn *c = hv_container(d->conns.next, struct hv_conn, link);

		/* the last conn_close may free d: keep d alive with a fake
		 * allocation count until the loop is done */
		d->nr_allocs++;
		conn_close(c);
		d->nr_allocs--;
	}
	xs_server_remove_domain(domid);
	if (d->nr_allocs)
		gv_info("dom%u (%s): destroyed, dying until %lu mapped page(s) are released",
		        domid, d->name, (unsigned long)d->mapped_by_others);
	else
		gv_info("dom%u (%s): destroyed", domid, d->name);
	hv_domain_maybe_free(d);
	return 0;
}

/* xl save + xl restore with the guest's processes running on: a new domain
 * of the same name (an empty grant table, no ports) gets the xenstore
 * connections (the guest kernel's, which a resume carries over); the old
 * domain is destroyed, so its grants, ports and hypervisor connections are
 * gone (pages a backend still maps stay until it unmaps them, as on Xen).
 * A process's hypervisor handle must connect to the new domain itself
 * (the platform's resume). */
static int domain_restore(domid_t old, uint32_t *out)
{
	struct hv_domain *d = hv_domain_get(old);
	char name[SIM_NAME_MAX];
	domid_t id;
	int rc;

	snprintf(name, sizeof(name), "%s", d->name);
	rc = domain_create(name, &id);
	if (rc)
		return rc;
	xs_server_move_conns(old, id);
	rc = domain_destroy(old);
	if (rc)
		return rc;
	gv_info("dom%u (%s): restored as dom%u", (unsigned)old, name, (unsigned)id);
	*out = id;
	return 0;
}

int hv_server_init(void)
{
	return domain_new(0, "Domain-0");
}

void hv_server_fini(void)
{
	/* every connection first, so that no mapping pins any page */
	for (unsigned id = 0; id < DOMID_FIRST_RESERVED; id++) {
		struct hv_domain *d = domains[id];

		if (!d)
			continue;
		d->dying = true;
		domain_unlisten(d);
		d->nr_allocs++;
		while (!hv_list_empty(&d->conns))
			conn_close(hv_container(d->conns.next, struct hv_conn, link));
		d->nr_allocs--;
	}
	for (unsigned id = 0; id < DOMID_FIRST_RESERVED; id++)
		if (domains[id])
			domain_free(domains[id]);
}
