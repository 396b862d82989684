/*
 * sim/hypervisor.h: private to the simulated hypervisor (sim/hypervisor*.c).
 *
 *   hypervisor.c         domains, connections, request dispatch
 *   hypervisor_grant.c   grant tables, grant_alloc/end (gntalloc), map/unmap (gntdev)
 *   hypervisor_evtchn.c  event channels
 *
 * Ownership: a domain owns its connections, its grant table and its ports;
 * a connection owns its allocations (until ended) and its mappings; an
 * allocation outlives its connection while a page of it is still mapped by
 * another domain (deferred end), and a domain outlives its destruction
 * ("dying") while it still has such allocations.
 */
#ifndef GV_SIM_HYPERVISOR_H
#define GV_SIM_HYPERVISOR_H

#include <stdbool.h>
#include <stdint.h>
#include "platform.h"
#include "sim_proto.h"
#include "simxen.h"

struct hv_link {
	struct hv_link *next, *prev;
};

static inline void hv_list_init(struct hv_link *h) { h->next = h->prev = h; }
static inline bool hv_list_empty(const struct hv_link *h) { return h->next == h; }
static inline void hv_list_add(struct hv_link *h, struct hv_link *n)
{
	n->next = h->next;
	n->prev = h;
	h->next->prev = n;
	h->next = n;
}
static inline void hv_list_del(struct hv_link *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = n;
}
#define hv_container(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* What happens to a grant reference over its life. */
enum hv_gref_state {
	GREF_FREE = 0,
	GREF_RESERVED,   /* 0..7, never granted (as Linux) */
	GREF_ACTIVE,     /* granted, the owner has not ended it */
	GREF_ENDING,     /* owner gone (connection closed) while mapped: ended and
	                    freed at the last unmap, like Linux's deferred end */
	GREF_LEAKED,     /* owner's explicit end failed: the entry is ended at the
	                    last unmap, but the ref is never handed out again */
	GREF_DEAD,       /* a leaked ref after its last unmap */
};

struct hv_gref {
	struct hv_alloc *alloc;
	uint32_t page;           /* index in alloc */
	uint32_t pins;           /* mappings of this page */
	uint32_t wpins;          /* writable ones */
	uint8_t state;
};

/* a notify armed by grant_alloc or map (gntalloc/gntdev UNMAP_NOTIFY) */
struct hv_notify {
	int offset;              /* byte in the first page, or GV_NO_NOTIFY_OFFSET */
	evtchn_port_t port;      /* in the owner's domain, or GV_NO_PORT */
	uint64_t port_serial;    /* the binding the port had when armed */
};

#define HV_HASH 64

/* one grant_alloc: `count` pages in one memfd */
struct hv_alloc {
	struct hv_link link;     /* owner's bucket, while owned */
	struct hv_domain *dom;
	struct hv_conn *owner;   /* NULL once ended or its connection closed */
	uint64_t handle;
	domid_t to;
	bool readonly;
	int fd, ro_fd;           /* ro_fd: opened on the first read-only map */
	unsigned fd_pages;       /* the memfd's size (a recycled one may be larger) */
	unsigned copy_refs;      /* grant copies whose client may still be copying */
	unsigned count;
	unsigned live;           /* pages whose entry is not ended yet */
	uint32_t frame_base;
	struct hv_notify notify;
	grant_ref_t refs[];
};

/* one map batch: pages of one domain */
struct hv_map {
	struct hv_link link;     /* connection's bucket */
	uint64_t handle;
	struct hv_domain *from;
	bool write;
	unsigned count;
	struct hv_notify notify;
	grant_ref_t refs[];
};

enum hv_port_state { PORT_FREE = 0, PORT_UNBOUND, PORT_INTERDOMAIN };

struct hv_port {
	uint8_t state;
	struct hv_conn *owner;
	domid_t remote_dom;
	evtchn_port_t remote_port;
	int efd;                 /* eventfd: "an event is pending on this port" */
	uint64_t serial;         /* unique per binding */
};

struct hv_domain {
	domid_t domid;
	bool dying;
	char name[SIM_NAME_MAX];
	int listen_fd;
	int shm_fd;
	void *shm;
	struct grant_entry_v1 *gtab;   /* in shm */
	uint32_t *portgen;             /* in shm */
	struct hv_gref *grefs;
	unsigned nr_free_grefs;
	grant_ref_t rover;
	struct hv_port *ports;
	struct hv_link conns;
	unsigned nr_conns;
	unsigned nr_allocs;            /* not yet freed, owned or not */
	uint64_t grants_active, grants_leaked, maps_active, mapped_by_others;
};

struct hv_conn {
	struct hv_link link;           /* in dom->conns */
	int fd;
	struct hv_domain *dom;
	uint64_t next_handle;
	struct hv_link allocs[HV_HASH];
	struct hv_link maps[HV_HASH];
	/* the allocations its last GRANT_COPY handed descriptors of: the client
	 * copies after the answer, so they are not recycled before its next
	 * request (or its close) shows the copy done */
	unsigned ncopy_allocs;
	struct hv_alloc *copy_allocs[SIM_COPY_MAX_SEGS];
};

/* hypervisor.c */
struct hv_domain *hv_domain_get(domid_t domid);       /* NULL if none (dying included) */
struct hv_domain *hv_domain_any(domid_t domid);       /* dying ones too */
void hv_domain_maybe_free(struct hv_domain *d);

/* hypervisor_grant.c */
int  hv_gnttab_init(struct hv_domain *d);
void hv_gnttab_fini(struct hv_domain *d);
int  hv_grant_alloc(struct hv_conn *c, const struct sim_req *req, grant_ref_t *refs,
                    uint64_t *handle, int *fd);
int  hv_grant_end(struct hv_conn *c, uint64_t handle, uint32_t *leaked);
int  hv_map(struct hv_conn *c, const struct sim_req *req, uint64_t *handle,
            uint32_t *pages, int *fds, unsigned *nfds);
int  hv_unmap(struct hv_conn *c, uint64_t handle);
int  hv_grant_copy(struct hv_conn *c, const struct sim_req *req, uint32_t *pages,
                   int *fds, unsigned *nfds, uint64_t *bad_seg);
void hv_conn_release_grants(struct hv_conn *c);
void hv_copy_release(struct hv_conn *c);

/* hypervisor_evtchn.c */
int  hv_evtchn_alloc_unbound(struct hv_conn *c, domid_t remote, evtchn_port_t *port, int *efd);
int  hv_evtchn_bind(struct hv_conn *c, domid_t remote, evtchn_port_t rport,
                    evtchn_port_t *port, int *efd, int *peer_efd, uint32_t *gen);
int  hv_evtchn_unbind(struct hv_conn *c, evtchn_port_t port);
int  hv_evtchn_peer(struct hv_conn *c, evtchn_port_t port, int *peer_efd, uint32_t *gen);
void hv_evtchn_send(struct hv_domain *d, evtchn_port_t port);
int  hv_notify_arm(struct hv_conn *c, int offset, evtchn_port_t port, struct hv_notify *n);
void hv_conn_release_ports(struct hv_conn *c);
unsigned hv_ports_bound(const struct hv_domain *d);

#endif
