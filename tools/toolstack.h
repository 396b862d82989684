/*
 * tools/toolstack.h: the simulated toolstack's domain lifecycle, what libxl
 * does around the hypervisor's domain calls (libxl_create.c's
 * libxl__domain_make and libxl_domain.c's destroy in Xen 4.20): the domain
 * and its xenstore home together. gv-xl and the tests use it; devices are
 * gv-xl's.
 */
#ifndef GV_TOOLS_TOOLSTACK_H
#define GV_TOOLS_TOOLSTACK_H

#include "platform.h"

/* dom0 only (else -EPERM; -ENOSYS off the simulated platform). Creates a
 * domain named `name` (NULL: "guest"), *domid its id, and writes its home
 * /local/domain/<N> as libxl does: owned by dom0, readable by N; cpu memory
 * device control read-only to N; data drivers feature attr error owned by N;
 * name; domid. If the home cannot be written the domain is destroyed again. */
int gv_toolstack_domain_create(struct gv_platform *p, const char *name, domid_t *domid);
/* dom0 only. Destroys the domain (gv_sim_domain_destroy: -ESRCH, -EINVAL for
 * domain 0), then removes its home. */
int gv_toolstack_domain_destroy(struct gv_platform *p, domid_t domid);
/* dom0 only. xl save + xl restore of a guest whose processes run on
 * (gv_sim_domain_restore): the new domain (*new_domid, same name) gets a
 * home as create writes it, the old one's home goes. Devices are gv-xl's. */
int gv_toolstack_domain_restore(struct gv_platform *p, domid_t domid, const char *name,
                                domid_t *new_domid);

#endif
