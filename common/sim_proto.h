/*
 * common/sim_proto.h: the private request/reply protocol between gv-simxen's
 * hypervisor (sim/hypervisor*.c) and its client, the simulated platform
 * (common/platform_sim*.c). Nothing else speaks it; both ends are built from
 * the same tree, so there is no versioning beyond SIM_PROTO_MAGIC.
 *
 * Transport: a SOCK_SEQPACKET Unix socket, DIR/dom<N>/hypervisor. The socket
 * a client connected to is the domain it speaks for. One request message,
 * one reply message; file descriptors ride along with SCM_RIGHTS. A reply
 * carrying more than SIM_FDS_PER_MSG descriptors sends the rest in follow-up
 * messages (a bare struct sim_rep_more each), in order, right after it.
 *
 *   request:  struct sim_req, then req.count uint32_t (refs or nothing)
 *   reply:    struct sim_rep, then rep.count uint32_t of op-specific data
 *
 * Shared memory: SIM_OP_HELLO hands the client a read-only memfd with the
 * domain's "shared info" (below): its grant table in the real v1 layout,
 * and a binding generation per event-channel port, which the client reads
 * to know when a cached peer eventfd went stale.
 *
 *   offset 0                          SIM_NR_GREFS x struct grant_entry_v1
 *   SIM_SHARED_PORTGEN_OFF            SIM_NR_PORTS x uint32_t
 *
 * Every field a client sends is untrusted: the hypervisor checks counts
 * against SIM_MAX_BATCH, refs against SIM_NR_GREFS, ports against
 * SIM_NR_PORTS, and answers -EINVAL (or drops the connection on a message
 * it cannot even parse).
 */
#ifndef GV_COMMON_SIM_PROTO_H
#define GV_COMMON_SIM_PROTO_H

#include <stdint.h>
#include "abi.h"

#define SIM_PROTO_MAGIC        0x47565331u      /* "GVS1" */

#define SIM_GNTTAB_FRAMES      32u
#define SIM_NR_GREFS           (SIM_GNTTAB_FRAMES * GV_PAGE_SIZE / sizeof(struct grant_entry_v1))
#define SIM_NR_RESERVED_GREFS  8u               /* as Linux: GNTTAB_NR_RESERVED_ENTRIES */
#define SIM_NR_PORTS           4096u            /* 2-level event channels, 64-bit guest */
#define SIM_MAX_BATCH          1024u            /* pages per grant_alloc / map request */
#define SIM_FDS_PER_MSG        250u             /* below the kernel's SCM_MAX_FD (253) */
#define SIM_NAME_MAX           64u
#define SIM_MAX_LIST           512u             /* domains per SIM_OP_DOMAIN_LIST reply */

#define SIM_SHARED_PORTGEN_OFF ((size_t)SIM_NR_GREFS * sizeof(struct grant_entry_v1))
#define SIM_SHARED_SIZE        (SIM_SHARED_PORTGEN_OFF + SIM_NR_PORTS * sizeof(uint32_t))

enum sim_op {
	SIM_OP_HELLO = 1,         /* rep: domid; fd: shared info (read-only) */
	SIM_OP_DOMAIN_EXISTS,     /* domid -> rc 1/0 */
	SIM_OP_DOMAIN_CREATE,     /* dom0 only; name -> rep.domid */
	SIM_OP_DOMAIN_DESTROY,    /* dom0 only; domid */
	SIM_OP_DOMAIN_LIST,       /* dom0 only; rep.data: struct sim_domain_info[] */
	SIM_OP_GRANT_ALLOC,       /* domid=to, count, flags, notify -> refs, handle; fd */
	SIM_OP_GRANT_END,         /* handle -> rc (-EBUSY: some pages leaked) */
	SIM_OP_MAP,               /* domid=from, count, refs, flags, notify
	                             -> handle, data: count x {fd index, page}; fds */
	SIM_OP_UNMAP,             /* handle */
	SIM_OP_EVTCHN_ALLOC_UNBOUND, /* domid=remote -> port; fd: its eventfd */
	SIM_OP_EVTCHN_BIND,       /* domid=remote, port=remote port
	                             -> port; fds: its eventfd, the peer's eventfd; gen */
	SIM_OP_EVTCHN_UNBIND,     /* port */
	SIM_OP_EVTCHN_PEER,       /* port -> gen; fd: the peer port's eventfd, if bound */
	SIM_OP_DOMAIN_RESTORE,    /* dom0 only; domid: a guest saved and restored while its
	                             processes run: a new domain of the same name takes
	                             its xenstore connections, then the old one is
	                             destroyed (grants, ports, connections to the
	                             hypervisor gone) -> rep.domid: the new domain */
	SIM_OP_GRANT_COPY,        /* domid=from, count segments, data: count x {ref, SIM_COPY_*}
	                             -> data: count x {fd index, page}; fds (the client
	                             copies); on an error rep.handle: the segment */
	SIM_OP_MAX
};

/* flags of SIM_OP_GRANT_ALLOC and SIM_OP_MAP: GV_GRANT_READONLY, GV_MAP_WRITE */

/* SIM_OP_GRANT_COPY: the second word of a segment */
#define SIM_COPY_OFFSET(w)     ((w) & 0xfffu)
#define SIM_COPY_LEN(w)        (((w) >> 12) & 0x1fffu)
#define SIM_COPY_TO_GRANT      0x80000000u
#define SIM_COPY_WORD(off, len, to) \
	((uint32_t)(off) | (uint32_t)(len) << 12 | ((to) ? SIM_COPY_TO_GRANT : 0))
#define SIM_COPY_MAX_SEGS      (SIM_MAX_BATCH / 2)

struct sim_req {
	uint32_t op;
	uint32_t count;           /* pages (GRANT_ALLOC), refs after this header (MAP) */
	uint32_t domid;           /* to / from / remote / target domain */
	uint32_t flags;
	uint32_t port;
	int32_t notify_offset;    /* GV_NO_NOTIFY_OFFSET or 0..4095 */
	uint32_t notify_port;     /* GV_NO_PORT or a local port */
	uint32_t magic;           /* SIM_PROTO_MAGIC on HELLO */
	uint64_t handle;
	char name[SIM_NAME_MAX];  /* NUL-terminated */
	uint32_t data[];
};

struct sim_rep {
	int32_t rc;               /* 0 / count / -errno */
	uint32_t count;           /* uint32_t elements after this header */
	uint32_t domid;
	uint32_t port;
	uint32_t gen;             /* port binding generation (EVTCHN_*) */
	uint32_t nfds;            /* descriptors sent with this reply, all messages */
	uint32_t leaked;          /* GRANT_END: pages left mapped by the peer, leaked */
	uint32_t pad;
	uint64_t handle;
	uint32_t data[];
};

/* follow-up message carrying more descriptors of the same reply */
struct sim_rep_more {
	uint32_t nfds;            /* in this message */
	uint32_t pad;
};

struct sim_domain_info {
	uint32_t domid;
	uint32_t dying;           /* destroyed, kept while its pages are mapped */
	uint32_t nr_conns;        /* open hypervisor connections */
	uint32_t ports_bound;
	uint64_t grants_active;   /* pages granted, not yet ended */
	uint64_t grants_leaked;   /* pages whose end failed (never reused) */
	uint64_t maps_active;     /* pages of other domains this domain maps */
	uint64_t pages_mapped_by_others;
	char name[SIM_NAME_MAX];
};

#define SIM_MSG_MAX (sizeof(struct sim_rep) + SIM_MAX_LIST * sizeof(struct sim_domain_info))

#endif
