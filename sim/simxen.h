/*
 * sim/simxen.h: how the parts of the gv-simxen daemon meet.
 *
 * gv-simxen is the simulated Xen: one single-threaded process, one epoll loop.
 *   gv-simxen.c    command line, directory lock, signals, the loop itself
 *   hypervisor*.c  domains, guest memory, grant tables, event channels,
 *                  served on DIR/dom<N>/hypervisor (protocol: common/sim_proto.h)
 *   xenstored*.c   xenstored: the xenstore wire protocol (<xen/io/xs_wire.h>)
 *                  on DIR/dom<N>/xenstored, one socket per simulated domain;
 *                  the socket a client connected to is the domain it speaks for
 */
#ifndef GV_SIM_SIMXEN_H
#define GV_SIM_SIMXEN_H

#include <stdbool.h>
#include <stdint.h>
#include "abi.h"

/* The loop. Handlers run one at a time; events are EPOLLIN/EPOLLOUT/... */
typedef void (*sim_fd_handler)(void *ctx, uint32_t events);
int  sim_loop_add(int fd, uint32_t events, sim_fd_handler fn, void *ctx);
int  sim_loop_mod(int fd, uint32_t events, sim_fd_handler fn, void *ctx);
void sim_loop_del(int fd);

extern const char *sim_dir;       /* the directory served, absolute */
extern bool sim_scatter_refs;     /* --scatter-refs: never hand out consecutive grant refs */
extern unsigned sim_gntalloc_limit; /* --gntalloc-limit: pages one domain may have granted */

/* DIR/dom<domid>/<leaf> into buf; returns buf or NULL if it does not fit. */
char *sim_path(char *buf, size_t len, domid_t domid, const char *leaf);

/* xenstored_conn.c */
int  xs_server_init(void);                  /* the tree with /local/domain/0, /tool, ... */
int  xs_server_add_domain(domid_t domid);   /* listen on DIR/dom<id>/xenstored; fire @introduceDomain */
/* the xenstore connections of domain `from` belong to `to` from now on (a
 * save/restore: the guest kernel's connection moves with it); each of
 * their watches fires once, as a guest's watches do after a resume */
void xs_server_move_conns(domid_t from, domid_t to);
void xs_server_remove_domain(domid_t domid);/* close its listener and connections, drop its
                                               watches; fire @releaseDomain */
void xs_server_fini(void);

/* hypervisor.c */
int  hv_server_init(void);                  /* creates domain 0 (and its xenstore socket) */
void hv_server_fini(void);
bool hv_domain_exists(domid_t domid);       /* created and not destroyed */

#endif
