/*
 * common/platform_xen_dom0.h: the part of the real-Xen platform that needs
 * dom0's libxenctrl (asking whether another domain exists), apart so that a
 * guest program does not link libxenctrl.
 *
 * platform_xen.c refers to these functions weakly: a program linked with
 * common/platform_xen_dom0.o (the backend, which runs in dom0) gets them; a
 * guest program (the frontend library's users) does not, and its
 * domain_exists answers -ENOSYS for other domains, exactly what a guest
 * that may not use domctls gets anyway. The Makefile says who links it.
 */
#ifndef GV_COMMON_PLATFORM_XEN_DOM0_H
#define GV_COMMON_PLATFORM_XEN_DOM0_H

#include <xen/xen.h>
#include <xentoollog.h>

struct gv_xen_dom0;

/* 1: domid exists and is not dying; 0: it does not (or is dying);
 * -ENOSYS: libxenctrl cannot be opened or used here (not dom0; remembered,
 * so later calls answer at once); other -errno. *h is opened on first use
 * with log as the libraries' logger. */
int gv_xen_dom0_domain_exists(struct gv_xen_dom0 **h, struct xentoollog_logger *log,
                              domid_t domid);
/* Closes what gv_xen_dom0_domain_exists opened (NULL: nothing). */
void gv_xen_dom0_close(struct gv_xen_dom0 *h);

#endif
