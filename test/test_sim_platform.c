/*
 * test/test_sim_platform.c: opening the simulated platform: the error a user
 * sees with no daemon or a dead one, the handle's description, xs_open as
 * the handle's domain without leaving XENSTORED_PATH changed, and that a
 * handle's close releases everything it held.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xenstore.h>
#include "check.h"
#include "platform.h"
#include "platform_sim.h"
#include "sim_harness.h"
#include "../tools/toolstack.h"

static struct sim_env env;

static int start(void)
{
	if (env.pid > 0)
		sim_stop(&env);
	return sim_start(&env, NULL);
}

static int open_dom(int domid, struct gv_platform **p, char *err, size_t len)
{
	struct gv_platform_opts o = { GV_PLATFORM_SIM, NULL, domid };

	return gv_platform_open(&o, p, err, len);
}

static int t_dead_daemon(void)
{
	struct gv_platform *p = NULL;
	char err[256], cmd[160];

	CHECK(start() == 0);
	CHECK_EQ(open_dom(0, &p, err, sizeof(err)), 0);
	gv_platform_close(p);
	/* killed hard: its sockets stay, nobody listens */
	kill(env.pid, SIGKILL);
	CHECK_EQ(waitpid(env.pid, NULL, 0), env.pid);
	env.pid = -1;
	CHECK(open_dom(0, &p, err, sizeof(err)) < 0);
	CHECK_MSG(strstr(err, "no simulated Xen at") && strstr(err, env.dir) &&
	          strstr(err, "gv-simxen --dir"), "%s", err);
	CHECK(open_dom(3, &p, err, sizeof(err)) < 0);
	CHECK_MSG(strstr(err, "no simulated Xen at"), "%s", err);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", env.dir);
	CHECK(system(cmd) == 0);
	/* and a directory that is not there at all */
	CHECK(open_dom(0, &p, err, sizeof(err)) < 0);
	CHECK_MSG(strstr(err, "no simulated Xen at"), "%s", err);
	return 0;
}

static int t_desc_and_xenstore(void)
{
	struct gv_platform *p0, *p1;
	struct xs_handle *xs;
	char err[256], want[160];
	unsigned len;
	domid_t id;
	char *v;

	CHECK(start() == 0);
	CHECK_EQ(open_dom(0, &p0, err, sizeof(err)), 0);
	CHECK(!strcmp(p0->ops->name, "sim"));
	snprintf(want, sizeof(want), "sim (dir %s, domain 0)", env.dir);
	CHECK_MSG(!strcmp(p0->desc, want), "%s", p0->desc);
	CHECK_EQ(gv_toolstack_domain_create(p0, "guest", &id), 0);
	CHECK_EQ(open_dom(id, &p1, err, sizeof(err)), 0);
	CHECK_EQ(p1->domid, id);
	setenv("XENSTORED_PATH", "/nonexistent/elsewhere", 1);
	xs = gv_xs_open(p1);
	CHECK(xs != NULL);
	CHECK(!strcmp(getenv("XENSTORED_PATH"), "/nonexistent/elsewhere"));
	unsetenv("XENSTORED_PATH");
	/* the connection speaks for domain id: its home is its own */
	v = xs_get_domain_path(xs, id);
	CHECK_EQ(id, 1);
	CHECK(v && !strcmp(v, "/local/domain/1"));
	free(v);
	snprintf(want, sizeof(want), "/local/domain/%u/data/x", (unsigned)id);
	CHECK(xs_write(xs, XBT_NULL, want, "42", 2));
	v = xs_read(xs, XBT_NULL, want, &len);
	CHECK(v && len == 2 && !memcmp(v, "42", 2));
	free(v);
	/* the toolstack's part of the home: readable, not writable, by the guest */
	v = xs_read(xs, XBT_NULL, "/local/domain/1/name", &len);
	CHECK(v && !strcmp(v, "guest"));
	free(v);
	CHECK(!xs_write(xs, XBT_NULL, "/local/domain/1/name", "evil", 4));
	CHECK(!xs_write(xs, XBT_NULL, "/local/domain/1/device/x", "1", 1));
	xs_close(xs);
	CHECK(getenv("XENSTORED_PATH") == NULL);
	/* destroy takes the home away */
	gv_platform_close(p1);
	CHECK_EQ(gv_toolstack_domain_destroy(p0, id), 0);
	xs = gv_xs_open(p0);
	CHECK(xs != NULL);
	v = xs_read(xs, XBT_NULL, "/local/domain/1/name", &len);
	CHECK(v == NULL);
	/* the hypervisor's domain call alone writes no home: that is the
	 * toolstack's (tools/toolstack.c) */
	CHECK_EQ(gv_sim_domain_create(p0, "bare", &id), 0);
	CHECK_EQ(id, 2);
	CHECK(gv_domain_exists(p0, id) == 1);
	v = xs_read(xs, XBT_NULL, "/local/domain/2/name", &len);
	CHECK(v == NULL && errno == ENOENT);
	CHECK_EQ(gv_sim_domain_destroy(p0, id), 0);
	xs_close(xs);
	p1 = NULL;
	gv_platform_close(p0);
	CHECK_EQ(sim_stop(&env), 0);
	return 0;
}

/* close releases every grant, mapping and port of the handle */
static int t_close_releases_all(void)
{
	struct gv_platform *p0, *a, *b;
	struct sim_domain_info info[2];
	evtchn_port_t pa, pb;
	grant_ref_t refs[3];
	char err[256];
	void *g, *m;

	CHECK(start() == 0);
	CHECK_EQ(open_dom(0, &p0, err, sizeof(err)), 0);
	CHECK_EQ(open_dom(0, &a, err, sizeof(err)), 0);
	CHECK_EQ(open_dom(0, &b, err, sizeof(err)), 0);
	CHECK_EQ(gv_grant_alloc(a, 0, 3, 0, NULL, refs, &g), 0);
	CHECK_EQ(gv_map(b, 0, 3, refs, GV_MAP_WRITE, NULL, &m), 0);
	CHECK_EQ(gv_evtchn_alloc_unbound(a, 0, &pa), 0);
	CHECK_EQ(gv_evtchn_bind(b, 0, pa, &pb), 0);
	CHECK_EQ(gv_sim_domain_list(p0, info, 2), 1);
	CHECK_EQ(info[0].grants_active, 3);
	CHECK_EQ(info[0].maps_active, 3);
	CHECK_EQ(info[0].ports_bound, 2);
	CHECK_EQ(info[0].nr_conns, 3);
	gv_platform_close(b);
	gv_platform_close(a);
	CHECK_EQ(gv_sim_domain_list(p0, info, 2), 1);
	CHECK_EQ(info[0].grants_active, 0);
	CHECK_EQ(info[0].grants_leaked, 0);
	CHECK_EQ(info[0].maps_active, 0);
	CHECK_EQ(info[0].pages_mapped_by_others, 0);
	CHECK_EQ(info[0].ports_bound, 0);
	CHECK_EQ(info[0].nr_conns, 1);
	gv_platform_close(p0);
	CHECK_EQ(sim_stop(&env), 0);
	return 0;
}

static const struct gv_test tests[] = {
	TEST(t_dead_daemon), TEST(t_desc_and_xenstore), TEST(t_close_releases_all), { 0 }
};

int main(int argc, char **argv)
{
	int rc = gv_test_main(argc, argv, tests);

	if (env.pid > 0)
		sim_stop(&env);
	return rc;
}
