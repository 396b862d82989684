/*
 * common/platform_sim.h: calls only the simulated platform has: the
 * hypervisor's domain calls (create, destroy and list domains, as
 * libxenctrl's xc_domain_create and friends: no xenstore; the toolstack
 * around them is tools/toolstack.c) and a read-only look at the domain's own
 * grant table, for tests.
 *
 * Each takes a handle opened on the simulated platform (gv_platform_open with
 * kind sim, or GV_PLATFORM=sim) and returns -ENOSYS on any other.
 */
#ifndef GV_COMMON_PLATFORM_SIM_H
#define GV_COMMON_PLATFORM_SIM_H

#include "platform.h"
#include "sim_proto.h"

bool gv_platform_is_sim(const struct gv_platform *p);

/* dom0 only (else -EPERM). Creates a domain named `name` (NULL: "guest"),
 * with its DIR/dom<N>/{hypervisor,xenstored} sockets; *domid its id. Its
 * xenstore home is the toolstack's to write. */
int gv_sim_domain_create(struct gv_platform *p, const char *name, domid_t *domid);
/* dom0 only. Closes the domain's connections (its processes see their
 * handles fail), releases its grants and mappings; if another domain still
 * maps its pages it stays listed as dying until the last unmap. -ESRCH: no
 * such domain; -EINVAL: domain 0. Its xenstore nodes stay (the toolstack's). */
int gv_sim_domain_destroy(struct gv_platform *p, domid_t domid);
/* dom0 only. A guest saved and restored with its processes running on
 * (xl save + xl restore): a new domain of the same name takes over the
 * guest's xenstore connections (their watches fire once), then `domid` is
 * destroyed as by gv_sim_domain_destroy. *new_domid: the new domain. A
 * process's platform handle follows with its resume op. */
int gv_sim_domain_restore(struct gv_platform *p, domid_t domid, domid_t *new_domid);
/* dom0 only. Fills up to max entries (at most SIM_MAX_LIST are known),
 * dying domains included; returns how many domains there are (capped at
 * SIM_MAX_LIST) or -errno. */
int gv_sim_domain_list(struct gv_platform *p, struct sim_domain_info *out, unsigned max);

/* This domain's grant table as the hypervisor keeps it (real v1 entries,
 * read-only view); *nr entries. NULL if not the simulated platform. */
const struct grant_entry_v1 *gv_sim_grant_table(struct gv_platform *p, unsigned *nr);

#endif
