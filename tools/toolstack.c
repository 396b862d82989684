/* tools/toolstack.c: see toolstack.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <xenstore.h>
#include "platform_sim.h"
#include "toolstack.h"
#include "xs_keys.h"
#include "xs_util.h"

struct home {
	domid_t id;
	const char *name;
};

/* One node with its permission list: dom0's readable by the domain (ro), or
 * the domain's own (rw). */
static int node(struct xs_handle *xs, xs_transaction_t t, const char *path, const char *val,
                const struct home *h, bool rw)
{
	struct xs_permissions ro[2] = { { 0, XS_PERM_NONE }, { h->id, XS_PERM_READ } };
	struct xs_permissions own[1] = { { h->id, XS_PERM_NONE } };

	if (!(val ? xs_write(xs, t, path, val, strlen(val)) : xs_mkdir(xs, t, path)) ||
	    !xs_set_permissions(xs, t, path, rw ? own : ro, rw ? 1 : 2))
		return errno ? -errno : -EIO;
	return 0;
}

static int write_home(struct xs_handle *xs, xs_transaction_t t, void *arg)
{
	static const char *const ro_dirs[] = { "cpu", "memory", "device", "control" };
	static const char *const rw_dirs[] = { "data", "drivers", "feature", "attr", "error" };
	const struct home *h = arg;
	char home[48], path[96], num[8];
	int rc;

	snprintf(home, sizeof(home), GV_XS_DOMAIN_DIR_FMT, (unsigned)h->id);
	snprintf(num, sizeof(num), "%u", (unsigned)h->id);
	xs_rm(xs, t, home);     /* nothing of an earlier domain of this id */
	if ((rc = node(xs, t, home, NULL, h, false)))
		return rc;
	for (size_t i = 0; i < sizeof(ro_dirs) / sizeof(ro_dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", home, ro_dirs[i]);
		if ((rc = node(xs, t, path, NULL, h, false)))
			return rc;
	}
	for (size_t i = 0; i < sizeof(rw_dirs) / sizeof(rw_dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", home, rw_dirs[i]);
		if ((rc = node(xs, t, path, NULL, h, true)))
			return rc;
	}
	snprintf(path, sizeof(path), "%s/" GV_XS_DOM_NAME, home);
	if ((rc = node(xs, t, path, h->name, h, false)))
		return rc;
	snprintf(path, sizeof(path), "%s/domid", home);
	return node(xs, t, path, num, h, false);
}

int gv_toolstack_domain_create(struct gv_platform *p, const char *name, domid_t *domid)
{
	struct home h = { 0, name && *name ? name : "guest" };
	struct xs_handle *xs;
	int rc = gv_sim_domain_create(p, h.name, &h.id);

	if (rc)
		return rc;
	xs = gv_xs_open(p);
	rc = xs ? gv_xs_transaction(xs, write_home, &h) : (errno ? -errno : -EIO);
	if (xs)
		xs_close(xs);
	if (rc) {
		gv_sim_domain_destroy(p, h.id);
		return rc;
	}
	*domid = h.id;
	return 0;
}

int gv_toolstack_domain_destroy(struct gv_platform *p, domid_t domid)
{
	struct xs_handle *xs;
	char home[48];
	int rc = gv_sim_domain_destroy(p, domid);

	if (rc)
		return rc;
	/* as libxl once the hypervisor let go: the home goes */
	xs = gv_xs_open(p);
	if (xs) {
		snprintf(home, sizeof(home), GV_XS_DOMAIN_DIR_FMT, (unsigned)domid);
		xs_rm(xs, XBT_NULL, home);
		xs_close(xs);
	}
	return 0;
}

int gv_toolstack_domain_restore(struct gv_platform *p, domid_t domid, const char *name,
                                domid_t *new_domid)
{
	struct home h = { 0, name && *name ? name : "guest" };
	struct xs_handle *xs;
	char home[48];
	int rc = gv_sim_domain_restore(p, domid, &h.id);

	if (rc)
		return rc;
	xs = gv_xs_open(p);
	rc = xs ? gv_xs_transaction(xs, write_home, &h) : (errno ? -errno : -EIO);
	if (xs) {
		snprintf(home, sizeof(home), GV_XS_DOMAIN_DIR_FMT, (unsigned)domid);
		xs_rm(xs, XBT_NULL, home);
		xs_close(xs);
	}
	if (rc)
		return rc;
	*new_domid = h.id;
	return 0;
}
