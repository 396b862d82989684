/* common/platform.c: choosing and opening a platform implementation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "platform.h"

const char *gv_sim_default_dir(char *buf, size_t len)
{
	const char *run = getenv("XDG_RUNTIME_DIR");

	if (run && *run)
		snprintf(buf, len, "%s/grant-virtio-sim", run);
	else
		snprintf(buf, len, "/tmp/grant-virtio-sim-%u", (unsigned)getuid());
	return buf;
}

static int parse_kind(const char *s, enum gv_platform_kind *kind)
{
	if (!s || !*s || !strcmp(s, "auto"))
		*kind = GV_PLATFORM_AUTO;
	else if (!strcmp(s, "xen"))
		*kind = GV_PLATFORM_XEN;
	else if (!strcmp(s, "sim"))
		*kind = GV_PLATFORM_SIM;
	else
		return -EINVAL;
	return 0;
}

int gv_platform_open(const struct gv_platform_opts *opts, struct gv_platform **out,
                     char *err, size_t errlen)
{
	struct gv_platform_opts o = { GV_PLATFORM_AUTO, NULL, -1 };
	struct gv_platform *p;
	char dirbuf[256];
	int rc;

	if (opts)
		o = *opts;
	if (o.kind == GV_PLATFORM_AUTO && parse_kind(getenv("GV_PLATFORM"), &o.kind)) {
		snprintf(err, errlen, "GV_PLATFORM=%s: expected xen, sim or auto", getenv("GV_PLATFORM"));
		return -EINVAL;
	}
	if (o.kind == GV_PLATFORM_AUTO)
		o.kind = access("/dev/xen/gntdev", F_OK) == 0 ? GV_PLATFORM_XEN : GV_PLATFORM_SIM;
	if (o.kind == GV_PLATFORM_SIM) {
		if (!o.sim_dir)
			o.sim_dir = getenv("GV_SIM_DIR");
		if (!o.sim_dir || !*o.sim_dir)
			o.sim_dir = gv_sim_default_dir(dirbuf, sizeof(dirbuf));
		if (o.sim_domid < 0) {
			const char *d = getenv("GV_DOMID");
			char *end;
			long v = d && *d ? strtol(d, &end, 10) : 0;

			if (d && *d && (*end || v < 0 || v >= DOMID_FIRST_RESERVED)) {
				snprintf(err, errlen, "GV_DOMID=%s: expected a domain id 0..%d", d,
				         DOMID_FIRST_RESERVED - 1);
				return -EINVAL;
			}
			o.sim_domid = (int)v;
		}
	}

	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (o.kind == GV_PLATFORM_XEN)
		rc = gv_platform_xen_open(p, err, errlen);
	else
		rc = gv_platform_sim_open(p, o.sim_dir, o.sim_domid, err, errlen);
	if (rc < 0) {
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

void gv_platform_close(struct gv_platform *p)
{
	if (!p)
		return;
	if (p->ops && p->ops->close)
		p->ops->close(p);
	free(p);
}
