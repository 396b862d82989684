/*
 * common/platform_sim_priv.h: the inside of the simulated platform's client,
 * shared by its files as sim/ splits the daemon side:
 *   platform_sim.c         the connection to gv-simxen's hypervisor: the
 *                          round trip, open and close, domain calls, xenstore
 *   platform_sim_grant.c   granting (gntalloc) and mapping (gntdev)
 *   platform_sim_evtchn.c  event channels
 * Not for use outside those files.
 */
#ifndef GV_COMMON_PLATFORM_SIM_PRIV_H
#define GV_COMMON_PLATFORM_SIM_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include "platform.h"
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
	bool old_domain;      /* made before a restore: only local memory now */
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

static inline struct sim_priv *gv_sim_priv(struct gv_platform *p)
{
	return p->priv;
}

/* platform_sim.c */
void gv_sim_close_fds(int *fds, unsigned n);
/* Sends s->req (with `ndata` uint32_t of data) and waits for the reply in
 * s->rep, with its descriptors in fds. Returns rep->rc, or -errno when the
 * exchange itself failed (then no descriptor is left open). */
int gv_sim_call(struct sim_priv *s, unsigned ndata, int *fds, unsigned maxfds, unsigned *nfds_out);
/* s->req cleared for op (no notify, no port) */
struct sim_req *gv_sim_new_req(struct sim_priv *s, uint32_t op);

/* platform_sim_grant.c: the gv_platform_ops of the same names */
int gv_sim_grant_alloc(struct gv_platform *p, domid_t to, unsigned count, unsigned flags,
                       const struct gv_notify *notify, grant_ref_t *refs, void **addr);
int gv_sim_grant_end(struct gv_platform *p, void *addr, unsigned count);
int gv_sim_map(struct gv_platform *p, domid_t from, unsigned count, const grant_ref_t *refs,
               unsigned flags, const struct gv_notify *notify, void **addr);
int gv_sim_unmap(struct gv_platform *p, void *addr, unsigned count);
int gv_sim_grant_copy(struct gv_platform *p, domid_t from, unsigned count,
                      struct gv_copy_seg *segs);

/* After a restore: every region made so far is the old domain's (ending
 * or unmapping it only unmaps it here) and every port is forgotten. */
void gv_sim_forget_old_domain(struct gv_platform *p);
/* platform_sim_evtchn.c: closes every port's descriptors here, unbinding
 * nothing (they were the old domain's) */
void gv_sim_forget_ports(struct sim_priv *s);

/* platform_sim_evtchn.c: the gv_platform_ops of the same names */
int gv_sim_evtchn_fd(struct gv_platform *p);
int gv_sim_evtchn_alloc_unbound(struct gv_platform *p, domid_t remote, evtchn_port_t *local);
int gv_sim_evtchn_bind(struct gv_platform *p, domid_t remote, evtchn_port_t remote_port,
                       evtchn_port_t *local);
int gv_sim_evtchn_unbind(struct gv_platform *p, evtchn_port_t port);
int gv_sim_evtchn_notify(struct gv_platform *p, evtchn_port_t port);
int gv_sim_evtchn_pending(struct gv_platform *p, evtchn_port_t *port);
int gv_sim_evtchn_unmask(struct gv_platform *p, evtchn_port_t port);

#endif
