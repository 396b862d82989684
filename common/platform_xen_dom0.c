/*
 * common/platform_xen_dom0.c: whether another domain exists, through dom0's
 * libxenctrl (see platform_xen_dom0.h for why this is a file of its own and
 * who links it).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <xenctrl.h>

#include "platform_xen_dom0.h"

struct gv_xen_dom0 {
	xc_interface *xc;
	bool denied;                /* opening or using it failed: not permitted here */
};

int gv_xen_dom0_domain_exists(struct gv_xen_dom0 **h, struct xentoollog_logger *log,
                              domid_t domid)
{
	struct gv_xen_dom0 *x = *h;
	xc_domaininfo_t info;
	int n;

	if (!x) {
		x = calloc(1, sizeof(*x));
		if (!x)
			return -ENOMEM;
		*h = x;
	}
	if (x->denied)
		return -ENOSYS;
	if (!x->xc) {
		x->xc = xc_interface_open(log, log, 0);
		if (!x->xc) {
			x->denied = true;
			return -ENOSYS;
		}
	}
	n = xc_domain_getinfolist(x->xc, domid, 1, &info);
	if (n < 0) {
		/* A guest may open privcmd but not use domctls. */
		if (errno == EPERM || errno == EACCES) {
			x->denied = true;
			return -ENOSYS;
		}
		return errno > 0 ? -errno : -EIO;
	}
	/* getinfolist returns the first domain >= domid. */
	if (n == 0 || info.domain != domid)
		return 0;
	return (info.flags & XEN_DOMINF_dying) ? 0 : 1;
}

void gv_xen_dom0_close(struct gv_xen_dom0 *h)
{
	if (!h)
		return;
	if (h->xc)
		xc_interface_close(h->xc);
	free(h);
}
