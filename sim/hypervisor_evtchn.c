/*
 * sim/hypervisor_evtchn.c: event channels of the simulated domains.
 *
 * Each domain has a port space of SIM_NR_PORTS (port 0 is never used, as in
 * Xen). A port is free, unbound (waiting for `remote_dom` to bind to it) or
 * interdomain (linked to a port of another, or the same, domain). Ports
 * belong to the connection that made them (as to an open /dev/xen/evtchn).
 *
 * Delivery does not go through this daemon: every bound port has an eventfd
 * meaning "an event is pending here"; the port's owner polls it, the peer
 * writes it directly (the client fetches the peer's eventfd once and keeps
 * it). Every change of a port's binding bumps portgen[port] in the shared
 * info page, which tells the client its cached peer eventfd is stale.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "hypervisor.h"

static uint64_t next_serial = 1;

static void port_changed(struct hv_domain *d, evtchn_port_t port)
{
	__atomic_fetch_add(&d->portgen[port], 1, __ATOMIC_RELEASE);
}

static struct hv_port *owned_port(struct hv_conn *c, evtchn_port_t port)
{
	struct hv_port *p;

	if (port == 0 || port >= SIM_NR_PORTS)
		return NULL;
	p = &c->dom->ports[port];
	return p->state != PORT_FREE && p->owner == c ? p : NULL;
}

static int port_new(struct hv_conn *c, evtchn_port_t *port)
{
	struct hv_domain *d = c->dom;

	for (evtchn_port_t n = 1; n < SIM_NR_PORTS; n++) {
		struct hv_port *p = &d->ports[n];
		int efd;

		if (p->state != PORT_FREE)
			continue;
		efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (efd < 0)
			return -errno;
		*p = (struct hv_port){ .state = PORT_UNBOUND, .owner = c, .efd = efd,
		                       .serial = next_serial++ };
		*port = n;
		return 0;
	}
	return -ENOSPC;
}

int hv_evtchn_alloc_unbound(struct hv_conn *c, domid_t remote, evtchn_port_t *port, int *efd)
{
	int rc;

	if (!hv_domain_get(remote))
		return -ESRCH;
	rc = port_new(c, port);
	if (rc)
		return rc;
	c->dom->ports[*port].remote_dom = remote;
	port_changed(c->dom, *port);
	*efd = c->dom->ports[*port].efd;
	return 0;
}

int hv_evtchn_bind(struct hv_conn *c, domid_t remote, evtchn_port_t rport,
                   evtchn_port_t *port, int *efd, int *peer_efd, uint32_t *gen)
{
	struct hv_domain *rd = hv_domain_get(remote);
	struct hv_port *rp, *p;
	int rc;

	if (!rd)
		return -ESRCH;
	if (rport == 0 || rport >= SIM_NR_PORTS)
		return -EINVAL;
	rp = &rd->ports[rport];
	if (rp->state != PORT_UNBOUND || rp->remote_dom != c->dom->domid)
		return -EINVAL;
	rc = port_new(c, port);
	if (rc)
		return rc;
	p = &c->dom->ports[*port];
	p->state = PORT_INTERDOMAIN;
	p->remote_dom = remote;
	p->remote_port = rport;
	rp->state = PORT_INTERDOMAIN;
	rp->remote_port = *port;
	port_changed(rd, rport);
	port_changed(c->dom, *port);
	*efd = p->efd;
	*peer_efd = rp->efd;
	*gen = __atomic_load_n(&c->dom->portgen[*port], __ATOMIC_ACQUIRE);
	return 0;
}

/* Xen's evtchn_close: the peer's port falls back to unbound, waiting for us. */
static void port_close(struct hv_domain *d, evtchn_port_t port)
{
	struct hv_port *p = &d->ports[port];

	if (p->state == PORT_INTERDOMAIN) {
		struct hv_domain *rd = hv_domain_any(p->remote_dom);

		if (rd && rd->ports[p->remote_port].state == PORT_INTERDOMAIN &&
		    rd->ports[p->remote_port].remote_dom == d->domid &&
		    rd->ports[p->remote_port].remote_port == port) {
			rd->ports[p->remote_port].state = PORT_UNBOUND;
			port_changed(rd, p->remote_port);
		}
	}
	close(p->efd);
	*p = (struct hv_port){ .state = PORT_FREE, .efd = -1 };
	port_changed(d, port);
}

int hv_evtchn_unbind(struct hv_conn *c, evtchn_port_t port)
{
	if (!owned_port(c, port))
		return -EINVAL;
	port_close(c->dom, port);
	return 0;
}

int hv_evtchn_peer(struct hv_conn *c, evtchn_port_t port, int *peer_efd, uint32_t *gen)
{
	struct hv_port *p = owned_port(c, port);
	struct hv_domain *rd;

	if (!p)
		return -EINVAL;
	*gen = __atomic_load_n(&c->dom->portgen[port], __ATOMIC_ACQUIRE);
	*peer_efd = -1;
	if (p->state == PORT_INTERDOMAIN && (rd = hv_domain_any(p->remote_dom)))
		*peer_efd = rd->ports[p->remote_port].efd;
	return 0;
}

/* An event from the daemon itself (a peer-death notify). */
void hv_evtchn_send(struct hv_domain *d, evtchn_port_t port)
{
	struct hv_port *p = &d->ports[port];
	struct hv_domain *rd;
	uint64_t one = 1;

	if (p->state != PORT_INTERDOMAIN || !(rd = hv_domain_any(p->remote_dom)))
		return;
	if (write(rd->ports[p->remote_port].efd, &one, sizeof(one)) < 0) {
		/* EAGAIN only at a counter of 2^64-2: still pending, nothing lost */
	}
}

int hv_notify_arm(struct hv_conn *c, int offset, evtchn_port_t port, struct hv_notify *n)
{
	struct hv_port *p = NULL;

	if (offset != GV_NO_NOTIFY_OFFSET && (offset < 0 || offset >= (int)GV_PAGE_SIZE))
		return -EINVAL;
	if (port != GV_NO_PORT && !(p = owned_port(c, port)))
		return -EINVAL;
	*n = (struct hv_notify){ .offset = offset, .port = port, .port_serial = p ? p->serial : 0 };
	return 0;
}

void hv_conn_release_ports(struct hv_conn *c)
{
	for (evtchn_port_t n = 1; n < SIM_NR_PORTS; n++)
		if (c->dom->ports[n].state != PORT_FREE && c->dom->ports[n].owner == c)
			port_close(c->dom, n);
}

unsigned hv_ports_bound(const struct hv_domain *d)
{
	unsigned n = 0;

	for (evtchn_port_t p = 1; p < SIM_NR_PORTS; p++)
		n += d->ports[p].state != PORT_FREE;
	return n;
}
