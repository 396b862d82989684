/*
 * common/platform_sim_evtchn.c: event channels on the simulated platform;
 * the hypervisor's side is sim/hypervisor_evtchn.c.
 *
 * Binding is a round trip that hands over the port's eventfd (and the
 * peer's); delivery needs none: notify writes the peer port's eventfd, and
 * evtchn_fd is an epoll set over this handle's ports' eventfds, armed one
 * shot at a time (a delivered port stays masked until unmask re-arms it).
 */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <unistd.h>
#include "platform_sim_priv.h"

/* ---- event channels ---- */

int gv_sim_evtchn_fd(struct gv_platform *p)
{
	return gv_sim_priv(p)->epfd;
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

void gv_sim_forget_ports(struct sim_priv *s)
{
	for (evtchn_port_t port = 1; port < SIM_NR_PORTS; port++)
		if (s->ports[port].efd >= 0)
			port_forget(s, port);
}

int gv_sim_evtchn_alloc_unbound(struct gv_platform *p, domid_t remote, evtchn_port_t *local)
{
	struct sim_priv *s = gv_sim_priv(p);
	struct sim_rep *rep = (struct sim_rep *)s->rep;
	unsigned nfds = 0;
	int fd, rc;

	gv_sim_new_req(s, SIM_OP_EVTCHN_ALLOC_UNBOUND)->domid = remote;
	rc = gv_sim_call(s, 0, &fd, 1, &nfds);
	if (rc < 0)
		return rc;
	if (nfds != 1)
		rc = -EPROTO;
	else
		rc = port_add(s, rep->port, fd, -1, 0, false);
	if (rc) {
		/* give the port back; nothing left open here */
		evtchn_port_t port = rep->port;

		gv_sim_new_req(s, SIM_OP_EVTCHN_UNBIND)->port = port;
		gv_sim_call(s, 0, NULL, 0, NULL);
		return rc;
	}
	*local = rep->port;
	return 0;
}

int gv_sim_evtchn_bind(struct gv_platform *p, domid_t remote, evtchn_port_t remote_port,
                       evtchn_port_t *local)
{
	struct sim_priv *s = gv_sim_priv(p);
	struct sim_rep *rep = (struct sim_rep *)s->rep;
	struct sim_req *req = gv_sim_new_req(s, SIM_OP_EVTCHN_BIND);
	unsigned nfds = 0;
	int fds[2], rc;

	req->domid = remote;
	req->port = remote_port;
	rc = gv_sim_call(s, 0, fds, 2, &nfds);
	if (rc < 0)
		return rc;
	if (nfds != 2) {
		gv_sim_close_fds(fds, nfds);
		rc = -EPROTO;
	} else {
		rc = port_add(s, rep->port, fds[0], fds[1], rep->gen, true);
	}
	if (rc) {
		evtchn_port_t port = rep->port;

		gv_sim_new_req(s, SIM_OP_EVTCHN_UNBIND)->port = port;
		gv_sim_call(s, 0, NULL, 0, NULL);
		return rc;
	}
	*local = rep->port;
	return 0;
}

int gv_sim_evtchn_unbind(struct gv_platform *p, evtchn_port_t port)
{
	struct sim_priv *s = gv_sim_priv(p);

	if (!own_port(s, port))
		return -EINVAL;
	port_forget(s, port);
	gv_sim_new_req(s, SIM_OP_EVTCHN_UNBIND)->port = port;
	return gv_sim_call(s, 0, NULL, 0, NULL);
}

int gv_sim_evtchn_notify(struct gv_platform *p, evtchn_port_t port)
{
	struct sim_priv *s = gv_sim_priv(p);
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

		gv_sim_new_req(s, SIM_OP_EVTCHN_PEER)->port = port;
		rc = gv_sim_call(s, 0, &fd, 1, &nfds);
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

int gv_sim_evtchn_pending(struct gv_platform *p, evtchn_port_t *port)
{
	struct sim_priv *s = gv_sim_priv(p);
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

int gv_sim_evtchn_unmask(struct gv_platform *p, evtchn_port_t port)
{
	struct sim_priv *s = gv_sim_priv(p);
	struct sim_port *sp = own_port(s, port);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u32 = port };

	if (!sp)
		return -EINVAL;
	return epoll_ctl(s->epfd, EPOLL_CTL_MOD, sp->efd, &ev) < 0 ? -errno : 0;
}

