/*
 * test/test_sim_grants.c: the simulated hypervisor's grants, seen through the
 * platform ops: the v1 flag protocol in the table, refusals, read-only
 * mappings that really are, leaks on a busy end, process death on either
 * side, all-or-nothing batches, domains, scattered refs, hostile clients.
 * Each test runs its own gv-simxen; the two sides live in two processes
 * where the point is what a process sees of another.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include "platform.h"
#include "platform_sim.h"
#include "sim_harness.h"

static struct sim_env env;

/* a failed check returns early: stop its daemon before starting another */
static int start(const char *const *extra)
{
	if (env.pid > 0)
		sim_stop(&env);
	return sim_start(&env, extra);
}

/* dom0 handle, plus `n` more domains created (ids 1..n); extra: more
 * gv-simxen arguments or NULL */
static struct gv_platform *start_with_domains_args(unsigned n, const char *const *extra)
{
	struct gv_platform *p0;

	if (start(extra) < 0)
		return NULL;
	p0 = sim_open_domain(0);
	for (unsigned i = 0; p0 && i < n; i++) {
		domid_t id;

		if (gv_sim_domain_create(p0, "guest", &id) < 0 || id != i + 1) {
			gv_platform_close(p0);
			return NULL;
		}
	}
	return p0;
}

static struct gv_platform *start_with_domains(unsigned n)
{
	return start_with_domains_args(n, NULL);
}

static uint16_t flags_of(struct gv_platform *p, grant_ref_t r)
{
	unsigned nr;
	const struct grant_entry_v1 *t = gv_sim_grant_table(p, &nr);

	return r < nr ? __atomic_load_n(&t[r].flags, __ATOMIC_ACQUIRE) : 0xffff;
}

static int counters_zero(const struct gv_counters *c)
{
	return c->grants_active == 0 && c->maps_active == 0;
}

/* waits for a byte on fd, at most 10 s */
static int wait_byte(int fd, char *c)
{
	struct pollfd p = { fd, POLLIN, 0 };

	if (poll(&p, 1, 10000) != 1)
		return -1;
	return read(fd, c, 1) == 1 ? 0 : -1;
}

/* waits at most 10 s for an event on the platform; returns the port or -1 */
static long wait_event(struct gv_platform *p)
{
	struct pollfd pf = { gv_evtchn_fd(p), POLLIN, 0 };
	evtchn_port_t port;

	if (poll(&pf, 1, 10000) != 1)
		return -1;
	if (gv_evtchn_pending(p, &port) != 1)
		return -1;
	gv_evtchn_unmask(p, port);
	return port;
}

/* ---- tests ---- */

static int t_map_without_grant(void)
{
	struct gv_platform *p0 = start_with_domains(1), *p1;
	grant_ref_t refs[2] = { 100, 0 }, good;
	void *a = NULL, *g;

	CHECK(p0);
	CHECK((p1 = sim_open_domain(1)));
	/* nothing granted at 100, reserved 0, out of range */
	CHECK_EQ(gv_map(p0, 1, 1, refs, 0, NULL, &a), -EINVAL);
	CHECK_EQ(gv_map(p0, 1, 1, &refs[1], 0, NULL, &a), -EINVAL);
	refs[0] = SIM_NR_GREFS;
	CHECK_EQ(gv_map(p0, 1, 1, refs, 0, NULL, &a), -EINVAL);
	refs[0] = 0xffffffffu;
	CHECK_EQ(gv_map(p0, 1, 1, refs, GV_MAP_WRITE, NULL, &a), -EINVAL);
	/* a domain that does not exist */
	CHECK_EQ(gv_grant_alloc(p1, 0, 1, 0, NULL, &good, &g), 0);
	CHECK_EQ(gv_map(p0, 77, 1, &good, 0, NULL, &a), -ESRCH);
	CHECK(a == NULL);
	/* an ended grant is no grant */
	CHECK_EQ(gv_grant_end(p1, g, 1), 0);
	CHECK_EQ(gv_map(p0, 1, 1, &good, 0, NULL, &a), -EINVAL);
	CHECK_EQ(flags_of(p1, good), 0);
	CHECK_EQ(p0->ctr.maps_active, 0);
	CHECK(counters_zero(&p1->ctr));
	gv_platform_close(p1);
	gv_platform_close(p0);
	CHECK_EQ(sim_stop(&env), 0);
	return 0;
}

static int t_wrong_domid(void)
{
	struct gv_platform *p0 = start_with_domains(2), *p1, *p2;
	grant_ref_t ref;
	void *g, *a;

	CHECK(p0);
	CHECK((p1 = sim_open_domain(1)));
	CHECK((p2 = sim_open_domain(2)));
	CHECK_EQ(gv_grant_alloc(p1, 2, 1, 0, NULL, &ref, &g), 0);
	/* granted to 2: not 0's to map, and 1 cannot map its own grant */
	CHECK_EQ(gv_map(p0, 1, 1, &ref, 0, NULL, &a), -EINVAL);
	CHECK_EQ(gv_map(p1, 1, 1, &ref, 0, NULL, &a), -EINVAL);
	/* right domain, wrong granter */
	CHECK_EQ(gv_map(p2, 0, 1, &ref, 0, NULL, &a), -EINVAL);
	CHECK_EQ(gv_map(p2, 1, 1, &ref, GV_MAP_WRITE, NULL, &a), 0);
	CHECK_EQ(gv_unmap(p2, a, 1), 0);
	CHECK_EQ(gv_grant_end(p1, g, 1), 0);
	CHECK(counters_zero(&p1->ctr) && counters_zero(&p2->ctr));
	gv_platform_close(p2);
	gv_platform_close(p1);
	gv_platform_close(p0);
	CHECK_EQ(sim_stop(&env), 0);
	return 0;
}

static int t_readonly_grant(void)
{
	struct gv_platform *p0 = start_with_domains(1), *p1;
	grant_ref_t ref;
	char *g, *a = NULL;
	pid_t pid;
	int st;

	CHECK(p0);
	CHECK((p1 = sim_open_domain(1)));
	CHECK_EQ(gv_grant_alloc(p1, 0, 1, GV_GRANT_READONLY, NULL, &ref, (void **)&g), 0);
	CHECK_EQ(flags_of(p1, ref), GTF_permit_access | GTF_readonly);
	strcpy(g, "read me");
	CHECK_EQ(gv_map(p0, 1, 1, &ref, GV_MAP_WRITE, NULL, (void **)&a), -EACCES);
	CHECK(a == NULL);
	CHECK_EQ(flags_of(p1, ref), GTF_permit_access | GTF_readonly);
	CHECK_EQ(gv_map(p0, 1, 1, &ref, 0, NULL, (void **)&a), 0);
	CHECK(!strcmp(a, "read me"));
	CHECK_EQ(flags_of(p1, ref), GTF_permit_access | GTF_readonly | GTF_reading);
	/* no way to make it writable */
	CHECK(mprotect(a, GV_PAGE_SIZE, PROT_READ | PROT_WRITE) < 0);
	CHECK_EQ(errno, EACCES);
	/* and a write faults */
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		*(volatile char *)a = 'X';
		_exit(0);
	}
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
	CHECK(!strcmp(a, "read me"));
	CHECK_EQ(gv_unmap(p0, a, 1), 0);
	CHECK_EQ(flags_of(p1, ref), GTF_permit_access | GTF_readonly);
	CHECK_EQ(gv_grant_end(p1, g, 1), 0);
	CHECK_EQ(flags_of(p1, ref), 0);
	gv_platform_close(p1);
	gv_platform_close(p0);
	CHECK_EQ(sim_stop(&env), 0);
	return 0;
}

static int t_flags_while_mapped(void)
{
	struct gv_platform *p0 = start_with_domains(1), *p1;
	const struct grant_entry_v1 *t;
	grant_ref_t refs[2];
	void *g, *a, *b;
	unsigned nr;

	CHECK(p0);
	CHECK((p1 = sim_open_domain(1)));
	CHECK_EQ(gv_grant_alloc(p1, 0, 2, 0, NULL, refs, &g), 0);
	t = gv_sim_grant_table(p1, &nr);
	CHECK(t && nr == SIM_NR_GREFS);
	CHECK(refs[0] >= SIM_NR_RESERVED_GREFS && refs[1] < nr);
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(t[refs[i]].domid, 0);
		CHECK(t[refs[i]].frame != 0);
		CHECK_EQ(flags_of(p1, refs[i]), GTF_permit_access);
	}
	CHECK(t[refs[0]].frame != t[refs[1]].frame);
	/* writable map: reading and writing; a second, read-only one adds a pin */
	CHECK_EQ(gv_map(p0, 1, 2, refs, GV_MAP_WRITE, NULL, &a), 0);
	CHECK_EQ(flags_of(p1, refs[0]), GTF_permit_access | GTF_reading | GTF_writing);
	CHECK_EQ(flags_of(p1, refs[1]), GTF_permit_access | GTF_reading | GTF_writing);
	CHECK_EQ(gv_map(p0, 1, 1, &refs[1], 0, NULL, &b), 0);
	CHECK(a != b);
	CHECK_EQ(p0->ctr.maps_active, 3);
	CHECK_EQ(gv_unmap(p0, a, 2), 0);
	CHECK_EQ(flags_of(p1, refs[0]), GTF_permit_access);
	CHECK_EQ(flags_of(p1, refs[1]), GTF_permit_access | GTF_reading);
	/* unmap must name a whole mapping */
	CHECK_EQ(gv_unmap(p0, a, 2), -EINVAL);
	CHECK_EQ(gv_unmap(p0, b, 2), -EINVAL);
	CHECK_EQ(gv_unmap(p0, b, 1), 0);
	CHECK_EQ(flags_of(p1, refs[1]), GTF_permit_access);
	CHECK_EQ(p0->ctr.maps_active, 0);
	CHECK_EQ(p0->ctr.maps_done, 3);
	CHECK_EQ(p0->ctr.unmaps_done, 3);
	CHECK_EQ(p0->ctr.map_calls, 2);
	CHECK_EQ(gv_grant_end(p1, g, 2), 0);
	CHECK(counters_zero(&p1->ctr));
	gv_platform_close(p1);
	gv_platform_close(p0);
	CHECK_EQ(sim_stop(&env), 0);
	return 0;
}

/* Like Linux's gntalloc, a domain may have at most --gntalloc-limit pages
 * granted (1024 by default): past it -ENOSPC, and ending frees room. */
static int t_gntalloc_limit(void)
{
	struct gv_platform *p0 = start_with_domains(1), *p1;
	grant_ref_t refs[512];
	void *a, *b, *c;

	CHECK(p0);
	CHECK((p1 = sim_open_domain(1)));
	CHECK_EQ(gv_grant_alloc(p1, 0, 512, 0, NULL, refs, &a), 0);
	CHECK_EQ(gv_grant_alloc(p1, 0, 511, 0, NULL, refs, &b), 0);
	CHECK_EQ(gv_grant_alloc(p1, 0, 2, 0, NULL, refs, &c), -ENOSPC);
	CHECK_EQ(p1->ctr.grants_active, 1023);
	CHECK_EQ(gv_grant_alloc(p1, 0, 1, 0, NULL, refs, &c), 0);
	CHECK_EQ(gv_grant_end(p1, a, 512), 0);
	CHECK_EQ(gv_grant_alloc(p1, 0, 512, 0, NULL, refs, &a), 0);
	CHECK_EQ(gv_grant_end(p1, a, 512), 0);
	CHECK_EQ(gv_grant_end(p1, b, 511), 0);
	CHECK_EQ(gv_grant_end(p1, c, 1), 0);
	CHECK(counters_zero(&p1->ctr));
	gv_platform_close(p1);
	gv_platform_close(p0);
	CHECK_EQ(sim_stop(&env), 0);
	return 0;
}

static int t_end_while_mapped_leaks(void)
{
	/* this test fills the whole grant table: lift gntalloc's limit above it */
	static const char *const table_size_limit[] = { "--gntalloc-limit", "16384", NULL };
	struct gv_platform *p0 = start_with_domains_args(1, table_size_limit), *p1;
	static grant_ref_t refs[SIM_MAX_BATCH];
	static void *allocs[32];
	struct sim_domain_info info[4];
	grant_ref_t leaked, ok;
	void *g, *h, *a, *b;
	unsigned nallocs = 0, total = 0;
	int rc, n;

	CHECK(p0);
	CHECK((p1 = sim_open_domain(1)));
	CHECK_EQ(gv_grant_alloc(p1, 0, 1, 0, NULL, &leaked, &g), 0);
	CHECK_EQ(gv_grant_alloc(p1, 0, 1, 0, NULL, &ok, &h), 0);
	CHECK_EQ(gv_map(p0, 1, 1, &leaked, GV_MAP_WRITE, NULL, &a), 0);
	CHECK_EQ(gv_map(p0, 1, 1, &ok, GV_MAP_WRITE, NULL, &b), 0);
	strcpy(a, "still here");
	CHECK_EQ(gv_grant_end(p1, g, 1), -EBUSY);
	CHECK_EQ(p1->ctr.grants_leaked, 1);
	CHECK_EQ(p1->ctr.grants_active, 1);
	/* the mapper keeps a working page */
	CHECK(!strcmp(a, "still here"));
	CHECK_EQ(flags_of(p1, leaked) & (GTF_reading | GTF_writing), GTF_reading | GTF_writing);
	/* ending after the unmap works */
	CHECK_EQ(gv_unmap(p0, b, 1), 0);
	CHECK_EQ(gv_grant_end(p1, h, 1), 0);
	CHECK_EQ(flags_of(p1, ok), 0);
	CHECK_EQ(gv_unmap(p0, a, 1), 0);
	/* after the last unmap the leaked entry is ended too: no more mapping */
	CHECK_EQ(flags_of(p1, leaked), 0);
	CHECK_EQ(gv_map(p0, 1, 1, &leaked, 0, NULL, &a), -EINVAL);
	n = gv_sim_domain_list(p0, info, 4);
	CHECK_EQ(n, 2);
	CHECK_EQ(info[1].domid, 1);
	CHECK_EQ(info[1].grants_leaked, 1);
	CHECK_EQ(info[1].grants_active, 0);
	CHECK_EQ(info[1].pages_mapped_by_others, 0);
	/* fill the whole table: the leaked ref never comes back, the ended one does */
	bool seen_ok = false;

	while ((rc = gv_grant_alloc(p1, 0, SIM_MAX_BATCH, 0, NULL, refs, &allocs[nallocs])) == 0) {
		for (unsigned i = 0; i < SIM_MAX_BATCH; i++) {
			CHECK(refs[i] != leaked);
			CHECK(refs[i] >= SIM_NR_RESERVED_GREFS && refs[i] < SIM_NR_GREFS);
			seen_ok |= refs[i] == ok;
		}
		total += SIM_MAX_BATCH;
		CHECK(++nallocs < 32);
	}
	CHECK_EQ(rc, -ENOSPC);
	/* and the rest, page by page */
	while ((rc = gv_grant_alloc(p1, 0, 1, 0, NULL, refs, &g)) == 0) {
		CHECK(refs[0] != leaked);
		seen_ok |= refs[0] == ok;
		total++;
	}
	CHECK_EQ(rc, -ENOSPC);
	CHECK(seen_ok);
	CHECK_EQ(total, SIM_NR_GREFS - SIM_NR_RESERVED_GREFS - 1);
	gv_platform_close(p1);   /* ends all of them */
	n = gv_sim_domain_list(p0, info, 4);
	CHECK_EQ(info[1].grants_active, 0);
	CHECK(counters_zero(&p0->ctr));
	gv_platform_close(p0);
	CHECK_EQ(sim_stop(&env), 0);
	return 0;
}

/* granter in a child (dom1), mapper here (dom0): data both ways */
static int t_data_both_ways(void)
{
	struct gv_platform *p0 = start_with_domains(1);
	int to_child[2], to_parent[2], st;
	grant_ref_t refs[4];
	char c, *a;
	pid_t pid;

	CHECK(p0);
	CHECK(pipe(to_child) == 0 && pipe(to_parent) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct gv_platform *p1 = sim_open_domain(1);
		char *g;
		int bad = 0;

		if (!p1 || gv_grant_alloc(p1, 0, 4, 0, NULL, refs, (void **)&g) < 0)
			_exit(2);
		for (int i = 0; i < 4; i++)
			memset(g + i * GV_PAGE_SIZE, 'a' + i, GV_PAGE_SIZE);
		if (write(to_parent[1], refs, sizeof(refs)) != sizeof(refs))
			_exit(3);
		if (wait_byte(to_child[0], &c) < 0)
			_exit(4);
		for (int i = 0; i < 4; i++)
			bad |= g[i * GV_PAGE_SIZE + 7] != 'A' + i;
		if (gv_grant_end(p1, g, 4) != 0 || p1->ctr.grants_active)
			_exit(5);
		gv_platform_close(p1);
		_exit(bad ? 6 : 0);
	}
	{
		struct pollfd pf = { to_parent[0], POLLIN, 0 };

		CHECK(poll(&pf, 1, 10000) == 1);
		CHECK(read(to_parent[0], refs, sizeof(refs)) == sizeof(refs));
	}
	CHECK_EQ(gv_map(p0, 1, 4, refs, GV_MAP_WRITE, NULL, (void **)&a), 0);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(a[i * GV_PAGE_SIZE], 'a' + i);
		CHECK_EQ(a[i * GV_PAGE_SIZE + GV_PAGE_SIZE - 1], 'a' + i);
		a[i * GV_PAGE_SIZE + 7] = (char)('A' + i);
	}
	CHECK_EQ(gv_unmap(p0, a, 4), 0);
	CHECK(write(to_child[1], "u", 1) == 1);
	st = wait_prog(pid, 20);
	CHECK_EQ(st, 0);
	CHECK(counters_zero(&p0->ctr));
	gv_platform_close(p0);
	CHECK_EQ(sim_stop(&env), 0);
	return 0;
}

/* the mapper (child, dom0) is killed: its mappings go, with its notify */
static int t_mapper_killed(void)
{
	struct gv_platform *p0 = start_with_domains(1), *p1;
	int to_parent[2], to_child[2];
	evtchn_port_t port1;
	grant_ref_t refs[2];
	char *g, c;
	pid_t pid;

	CHECK(p0);
	gv_platform_close(p0);   /* the child opens its own */
	CHECK((p1 = sim_open_domain(1)));
	CHECK_EQ(gv_grant_alloc(p1, 0, 2, 0, NULL, refs, (void **)&g), 0);
	g[100] = 1;
	CHECK_EQ(gv_evtchn_alloc_unbound(p1, 0, &port1), 0);
	CHECK(pipe(to_parent) == 0 && pipe(to_child) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct gv_platform *c0 = sim_open_domain(0);
		struct gv_notify n = { 100, 0 };
		evtchn_port_t port0;
		void *a;

		if (!c0 || gv_evtchn_bind(c0, 1, port1, &port0) < 0)
			_exit(2);
		n.port = port0;
		if (gv_map(c0, 1, 2, refs, GV_MAP_WRITE, &n, &a) < 0)
			_exit(3);
		if (write(to_parent[1], "m", 1) != 1)
			_exit(4);
		wait_byte(to_child[0], &c);   /* until killed */
		_exit(5);
	}
	CHECK_EQ(wait_byte(to_parent[0], &c), 0);
	CHECK_EQ(flags_of(p1, refs[0]), GTF_permit_access | GTF_reading | GTF_writing);
	CHECK_EQ(gv_grant_end(p1, g, 2), -EBUSY);    /* still mapped: leaked */
	CHECK_EQ(p1->ctr.grants_leaked, 2);
	/* again, with a fresh grant, and the kill in between */
	gv_platform_close(p1);
	kill(pid, SIGKILL);
	CHECK_EQ(wait_prog(pid, 10), -1);
	CHECK_EQ(sim_stop(&env), 0);

	/* second round: kill first, then end */
	CHECK((p0 = start_with_domains(1)));
	gv_platform_close(p0);
	CHECK((p1 = sim_open_domain(1)));
	CHECK_EQ(gv_grant_alloc(p1, 0, 2, 0, NULL, refs, (void **)&g), 0);
	g[100] = 1;
	CHECK_EQ(gv_evtchn_alloc_unbound(p1, 0, &port1), 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct gv_platform *c0 = sim_open_domain(0);
		struct gv_notify n = { 100, 0 };
		evtchn_port_t port0;
		void *a;

		if (!c0 || gv_evtchn_bind(c0, 1, port1, &port0) < 0)
			_exit(2);
		n.port = port0;
		if (gv_map(c0, 1, 2, refs, GV_MAP_WRITE, &n, &a) < 0)
			_exit(3);
		if (write(to_parent[1], "m", 1) != 1)
			_exit(4);
		wait_byte(to_child[0], &c);
		_exit(5);
	}
	CHECK_EQ(wait_byte(to_parent[0], &c), 0);
	CHECK_EQ(g[100], 1);
	kill(pid, SIGKILL);
	CHECK_EQ(wait_prog(pid, 10), -1);
	/* the daemon releases the mapping, clears our byte and tells us */
	CHECK_EQ(wait_event(p1), port1);
	CHECK_EQ(g[100], 0);
	CHECK_EQ(flags_of(p1, refs[0]), GTF_permit_access);
	CHECK_EQ(flags_of(p1, refs[1]), GTF_permit_access);
	CHECK_EQ(gv_grant_end(p1, g, 2), 0);
	CHECK_EQ(p1->ctr.grants_leaked, 0);
	CHECK(counters_zero(&p1->ctr));
	gv_platform_close(p1);
	CHECK_EQ(sim_stop(&env), 0);
	return 0;
}

/* the granter (child, dom1) is killed while we map: notify byte + event */
static int t_granter_killed(void)
{
	struct gv_platform *p0 = start_with_domains(1);
	struct sim_domain_info info[4];
	int to_parent[2], to_child[2];
	evtchn_port_t port0;
	grant_ref_t refs[3];
	char *a, c;
	pid_t pid;

	CHECK(p0);
	CHECK_EQ(gv_evtchn_alloc_unbound(p0, 1, &port0), 0);
	CHECK(pipe(to_parent) == 0 && pipe(to_child) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct gv_platform *c1 = sim_open_domain(1);
		struct gv_notify n = { 5, 0 };
		char *g;

		if (!c1 || gv_evtchn_bind(c1, 0, port0, &n.port) < 0)
			_exit(2);
		if (gv_grant_alloc(c1, 0, 3, 0, &n, refs, (void **)&g) < 0)
			_exit(3);
		g[5] = 1;
		g[GV_PAGE_SIZE + 5] = 1;
		if (write(to_parent[1], refs, sizeof(refs)) != sizeof(refs))
			_exit(4);
		wait_byte(to_child[0], &c);
		_exit(5);
	}
	{
		struct pollfd pf = { to_parent[0], POLLIN, 0 };

		CHECK(poll(&pf, 1, 10000) == 1);
		CHECK(read(to_parent[0], refs, sizeof(refs)) == sizeof(refs));
	}
	CHECK_EQ(gv_map(p0, 1, 3, refs, GV_MAP_WRITE, NULL, (void **)&a), 0);
	CHECK_EQ(a[5], 1);
	kill(pid, SIGKILL);
	CHECK_EQ(wait_prog(pid, 10), -1);
	CHECK_EQ(wait_event(p0), port0);
	CHECK_EQ(a[5], 0);                  /* first page only */
	CHECK_EQ(a[GV_PAGE_SIZE + 5], 1);
	/* the pages stay ours until we let go (deferred end) */
	a[GV_PAGE_SIZE * 2] = 9;
	CHECK_EQ(gv_sim_domain_list(p0, info, 4), 2);
	CHECK_EQ(info[1].pages_mapped_by_others, 3);
	CHECK_EQ(info[1].grants_active, 3);
	CHECK_EQ(info[1].nr_conns, 0);
	CHECK_EQ(gv_unmap(p0, a, 3), 0);
	CHECK_EQ(gv_sim_domain_list(p0, info, 4), 2);
	CHECK_EQ(info[1].pages_mapped_by_others, 0);
	CHECK_EQ(info[1].grants_active, 0);
	CHECK_EQ(info[1].grants_leaked, 0);
	CHECK(counters_zero(&p0->ctr));
	CHECK_EQ(p0->ctr.events_received, 1);
	gv_platform_close(p0);
	CHECK_EQ(sim_stop(&env), 0);
	return 0;
}

static int t_batch_all_or_nothing(void)
{
	struct gv_platform *p0 = start_with_domains(1), *p1;
	grant_ref_t rw[3], ro, batch[4];
	void *g, *h, *a = NULL;

	CHECK(p0);
	CHECK((p1 = sim_open_domain(1)));
	CHECK_EQ(gv_grant_alloc(p1, 0, 3, 0, NULL, rw, &g), 0);
	CHECK_EQ(gv_grant_alloc(p1, 0, 1, GV_GRANT_READONLY, NULL, &ro, &h), 0);
	/* a bad ref in the middle */
	batch[0] = rw[0]; batch[1] = rw[1]; batch[2] = 9999; batch[3] = rw[2];
	CHECK_EQ(gv_map(p0, 1, 4, batch, GV_MAP_WRITE, NULL, &a), -EINVAL);
	/* a read-only one last */
	batch[2] = rw[2]; batch[3] = ro;
	CHECK_EQ(gv_map(p0, 1, 4, batch, GV_MAP_WRITE, NULL, &a), -EACCES);
	CHECK(a == NULL);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(flags_of(p1, rw[i]), GTF_permit_access);
	CHECK_EQ(p0->ctr.maps_active, 0);
	CHECK_EQ(p0->ctr.maps_done, 0);
	CHECK_EQ(p0->ctr.map_calls, 2);
	/* the same batch read-only is fine, and a ref may appear twice */
	batch[0] = rw[2];
	CHECK_EQ(gv_map(p0, 1, 4, batch, 0, NULL, &a), 0);
	CHECK_EQ(flags_of(p1, rw[2]), GTF_permit_access | GTF_reading);
	CHECK_EQ(gv_unmap(p0, a, 4), 0);
	CHECK_EQ(flags_of(p1, rw[2]), GTF_permit_access);
	/* bad arguments */
	CHECK_EQ(gv_map(p0, 1, 0, batch, 0, NULL, &a), -EINVAL);
	CHECK_EQ(gv_map(p0, 1, SIM_MAX_BATCH + 1, batch, 0, NULL, &a), -EINVAL);
	CHECK_EQ(gv_grant_alloc(p1, 0, 0, 0, NULL, batch, &a), -EINVAL);
	CHECK_EQ(gv_grant_end(p1, (char *)g + GV_PAGE_SIZE, 2), -EINVAL);
	{
		struct gv_notify n = { 5, GV_NO_PORT };

		/* a byte to clear needs a writable mapping; a port must be ours */
		CHECK_EQ(gv_map(p0, 1, 1, rw, 0, &n, &a), -EINVAL);
		n.offset = GV_PAGE_SIZE;
		CHECK_EQ(gv_map(p0, 1, 1, rw, GV_MAP_WRITE, &n, &a), -EINVAL);
		n.offset = GV_NO_NOTIFY_OFFSET;
		n.port = 3;
		CHECK_EQ(gv_map(p0, 1, 1, rw, GV_MAP_WRITE, &n, &a), -EINVAL);
		CHECK_EQ(gv_grant_alloc(p1, 0, 1, 0, &n, batch, &a), -EINVAL);
	}
	CHECK_EQ(gv_grant_end(p1, g, 3), 0);
	CHECK_EQ(gv_grant_end(p1, h, 1), 0);
	CHECK(counters_zero(&p0->ctr) && counters_zero(&p1->ctr));
	gv_platform_close(p1);
	gv_platform_close(p0);
	CHECK_EQ(sim_stop(&env), 0);
	return 0;
}

/* many allocations in one batch: more descriptors than one message carries */
static int t_batch_many_allocations(void)
{
	struct gv_platform *p0 = start_with_domains(1), *p1;
	static grant_ref_t refs[600];
	static char *pages[600];
	char *a;

	CHECK(p0);
	CHECK((p1 = sim_open_domain(1)));
	for (int i = 0; i < 600; i++) {
		CHECK_EQ(gv_grant_alloc(p1, 0, 1, 0, NULL, &refs[i], (void **)&pages[i]), 0);
		snprintf(pages[i], 16, "page %d", i);
	}
	CHECK_EQ(gv_map(p0, 1, 600, refs, GV_MAP_WRITE, NULL, (void **)&a), 0);
	for (int i = 0; i < 600; i++) {
		char want[16];

		snprintf(want, sizeof(want), "page %d", i);
		CHECK(!strcmp(a + (size_t)i * GV_PAGE_SIZE, want));
	}
	a[599 * GV_PAGE_SIZE] = 'P';
	CHECK_EQ(pages[599][0], 'P');
	CHECK_EQ(gv_unmap(p0, a, 600), 0);
	for (int i = 0; i < 600; i++)
		CHECK_EQ(gv_grant_end(p1, pages[i], 1), 0);
	CHECK(counters_zero(&p0->ctr) && counters_zero(&p1->ctr));
	gv_platform_close(p1);
	gv_platform_close(p0);
	CHECK_EQ(sim_stop(&env), 0);
	return 0;
}

static int t_domains(void)
{
	struct gv_platform_opts o = { GV_PLATFORM_SIM, NULL, 5 };
	struct gv_platform *p0, *p1, *p2, *px = NULL;
	struct sim_domain_info info[8];
	grant_ref_t ref;
	domid_t id;
	char err[256];
	void *g, *a;

	CHECK((p0 = start_with_domains(0)));
	CHECK_EQ(gv_domain_exists(p0, 0), 1);
	CHECK_EQ(gv_domain_exists(p0, 1), 0);
	CHECK_EQ(gv_sim_domain_create(p0, "alpha", &id), 0);
	CHECK_EQ(id, 1);
	CHECK_EQ(gv_sim_domain_create(p0, "beta", &id), 0);
	CHECK_EQ(id, 2);
	CHECK_EQ(gv_domain_exists(p0, 1), 1);
	CHECK(strstr(p0->desc, env.dir) && strstr(p0->desc, "domain 0"));
	/* an unknown domain */
	CHECK_EQ(gv_platform_open(&o, &px, err, sizeof(err)), -ESRCH);
	CHECK(strstr(err, "domain 5 does not exist"));
	CHECK((p1 = sim_open_domain(1)));
	CHECK((p2 = sim_open_domain(2)));
	CHECK_EQ(p1->domid, 1);
	CHECK_EQ(gv_domain_exists(p1, 2), 1);
	/* only dom0 is the toolstack */
	CHECK_EQ(gv_sim_domain_create(p1, "x", &id), -EPERM);
	CHECK_EQ(gv_sim_domain_destroy(p1, 2), -EPERM);
	CHECK_EQ(gv_sim_domain_destroy(p0, 0), -EINVAL);
	CHECK_EQ(gv_sim_domain_destroy(p0, 9), -ESRCH);
	/* destroy 2 while 1 maps its page: 2 stays as a dying zombie */
	CHECK_EQ(gv_grant_alloc(p2, 1, 1, 0, NULL, &ref, &g), 0);
	CHECK_EQ(gv_map(p1, 2, 1, &ref, GV_MAP_WRITE, NULL, &a), 0);
	CHECK_EQ(gv_sim_domain_destroy(p0, 2), 0);
	CHECK_EQ(gv_domain_exists(p0, 2), 0);
	CHECK_EQ(gv_sim_domain_list(p0, info, 8), 3);
	CHECK_EQ(info[2].domid, 2);
	CHECK_EQ(info[2].dying, 1);
	CHECK(!strcmp(info[2].name, "beta"));
	CHECK(!strcmp(info[1].name, "alpha"));
	CHECK(!strcmp(info[0].name, "Domain-0"));
	CHECK_EQ(info[1].maps_active, 1);
	/* its handle is dead */
	CHECK(gv_grant_alloc(p2, 1, 1, 0, NULL, &ref, &g) < 0);
	/* nothing new from a dying domain */
	CHECK_EQ(gv_map(p1, 2, 1, &ref, 0, NULL, &g), -ESRCH);
	CHECK_EQ(gv_unmap(p1, a, 1), 0);
	CHECK_EQ(gv_sim_domain_list(p0, info, 8), 2);
	CHECK_EQ(info[1].domid, 1);
	/* a destroyed domain cannot be opened */
	o.sim_domid = 2;
	CHECK_EQ(gv_platform_open(&o, &px, err, sizeof(err)), -ESRCH);
	gv_platform_close(p2);
	/* ids are not reused at once */
	CHECK_EQ(gv_sim_domain_create(p0, "gamma", &id), 0);
	CHECK_EQ(id, 3);
	gv_platform_close(p1);
	gv_platform_close(p0);
	CHECK_EQ(sim_stop(&env), 0);
	/* no daemon */
	o.sim_domid = 0;
	CHECK(gv_platform_open(&o, &px, err, sizeof(err)) < 0);
	CHECK(strstr(err, "no simulated Xen at") && strstr(err, "gv-simxen --dir"));
	return 0;
}

static int t_refs_consecutive_or_scattered(void)
{
	static const char *const scatter[] = { "--scatter-refs", NULL };
	struct gv_platform *p0;
	grant_ref_t refs[64];
	void *g;
	int consecutive = 0;

	CHECK(start(NULL) == 0);
	CHECK((p0 = sim_open_domain(0)));
	CHECK_EQ(gv_grant_alloc(p0, 0, 64, 0, NULL, refs, &g), 0);
	for (int i = 1; i < 64; i++)
		CHECK_EQ(refs[i], refs[i - 1] + 1);
	CHECK_EQ(gv_grant_end(p0, g, 64), 0);
	gv_platform_close(p0);
	CHECK_EQ(sim_stop(&env), 0);

	CHECK(start(scatter) == 0);
	CHECK((p0 = sim_open_domain(0)));
	for (int round = 0; round < 4; round++) {
		CHECK_EQ(gv_grant_alloc(p0, 0, 64, 0, NULL, refs, &g), 0);
		for (int i = 1; i < 64; i++)
			consecutive += refs[i] == refs[i - 1] + 1;
		CHECK_EQ(gv_grant_end(p0, g, 64), 0);
	}
	CHECK_EQ(consecutive, 0);
	gv_platform_close(p0);
	CHECK_EQ(sim_stop(&env), 0);
	return 0;
}

/* garbage on the hypervisor socket closes that connection only */
static int t_hostile_client(void)
{
	struct gv_platform *p0 = start_with_domains(1), *p1;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static char junk[70000];
	struct sim_req req;
	grant_ref_t ref;
	void *g;
	int fd;

	CHECK(p0);
	CHECK(strlen(env.dir) + 20 < sizeof(sa.sun_path));
	memcpy(sa.sun_path, env.dir, strlen(env.dir));
	strcat(sa.sun_path, "/dom1/hypervisor");
	for (int round = 0; round < 5; round++) {
		char buf[64];
		ssize_t n;

		fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
		CHECK(fd >= 0);
		CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
		memset(&req, 0, sizeof(req));
		switch (round) {
		case 0: n = send(fd, "x", 1, 0); break;
		case 1: memset(junk, 0xff, sizeof(junk)); n = send(fd, junk, 60000, 0); break;
		case 2: req.op = SIM_OP_MAP; req.count = 5; n = send(fd, &req, sizeof(req), 0); break;
		case 3: req.op = SIM_OP_HELLO; req.magic = 1; n = send(fd, &req, sizeof(req), 0); break;
		default:
			/* a well-formed request with nonsense in it: an error reply */
			req.op = 999;
			n = send(fd, &req, sizeof(req), 0);
			CHECK(n == sizeof(req));
			n = recv(fd, buf, sizeof(buf), 0);
			CHECK(n >= (ssize_t)sizeof(struct sim_rep));
			CHECK_EQ(((struct sim_rep *)buf)->rc, -EINVAL);
			req.op = SIM_OP_GRANT_ALLOC;
			req.count = 100000;
			n = send(fd, &req, sizeof(req), 0);
			n = recv(fd, buf, sizeof(buf), 0);
			CHECK_EQ(((struct sim_rep *)buf)->rc, -EINVAL);
			req.op = SIM_OP_UNMAP;
			req.handle = 12345;
			n = send(fd, &req, sizeof(req), 0);
			n = recv(fd, buf, sizeof(buf), 0);
			CHECK_EQ(((struct sim_rep *)buf)->rc, -EINVAL);
			close(fd);
			continue;
		}
		CHECK(n > 0);
		/* the daemon hangs up on us */
		{
			struct pollfd pf = { fd, POLLIN, 0 };

			CHECK(poll(&pf, 1, 10000) == 1);
			CHECK_EQ(recv(fd, buf, sizeof(buf), 0), 0);
		}
		close(fd);
	}
	/* everyone else is still served */
	CHECK((p1 = sim_open_domain(1)));
	CHECK_EQ(gv_grant_alloc(p1, 0, 1, 0, NULL, &ref, &g), 0);
	CHECK_EQ(gv_grant_end(p1, g, 1), 0);
	CHECK_EQ(gv_domain_exists(p0, 1), 1);
	gv_platform_close(p1);
	gv_platform_close(p0);
	CHECK_EQ(sim_stop(&env), 0);
	return 0;
}


/* ---- grant copy (GNTTABOP_copy) ---- */

static struct gv_copy_seg copy_seg(grant_ref_t ref, unsigned off, unsigned len, bool to, void *local)
{
	return (struct gv_copy_seg){ .ref = ref, .offset = (uint16_t)off, .len = (uint16_t)len,
	                             .flags = to ? GV_COPY_TO_GRANT : 0, .local = local };
}

/* data both ways, at an offset, several pages and allocations in one call;
 * the granter's flags are untouched (nothing stays pinned) */
static int t_copy_both_ways(void)
{
	struct gv_platform *p0 = start_with_domains(1), *p1;
	grant_ref_t refs[2], ref3;
	char *g, *g3, in[100], out[GV_PAGE_SIZE];
	struct gv_copy_seg seg[3];

	CHECK(p0);
	CHECK((p1 = sim_open_domain(1)));
	CHECK_EQ(gv_grant_alloc(p1, 0, 2, 0, NULL, refs, (void **)&g), 0);
	CHECK_EQ(gv_grant_alloc(p1, 0, 1, GV_GRANT_READONLY, NULL, &ref3, (void **)&g3), 0);
	memset(g3, 'r', GV_PAGE_SIZE);
	strcpy(g + GV_PAGE_SIZE + 7, "guest page two");
	/* 100 bytes into page one at 4000 (to the page's end), page two out,
	 * the read-only page out */
	memset(in, 'w', sizeof(in));
	memset(out, 0, sizeof(out));
	seg[0] = copy_seg(refs[0], GV_PAGE_SIZE - 96, 96, true, in);
	seg[1] = copy_seg(refs[1], 7, 15, false, out);
	seg[2] = copy_seg(ref3, 0, GV_PAGE_SIZE, false, out + 100);
	seg[2].len = 50;
	CHECK_EQ(gv_grant_copy(p0, 1, 3, seg), 0);
	CHECK_EQ(seg[0].status, 0);
	CHECK_EQ(seg[1].status, 0);
	CHECK_EQ(seg[2].status, 0);
	CHECK(!memcmp(out, "guest page two", 15));
	CHECK(out[100] == 'r' && out[149] == 'r' && out[150] == 0);
	CHECK(g[GV_PAGE_SIZE - 97] == 0 && g[GV_PAGE_SIZE - 96] == 'w' && g[GV_PAGE_SIZE - 1] == 'w');
	CHECK(g[GV_PAGE_SIZE] == 0);   /* nothing past the segment */
	CHECK_EQ(flags_of(p1, refs[0]), GTF_permit_access);
	CHECK_EQ(flags_of(p1, ref3), GTF_permit_access | GTF_readonly);
	CHECK_EQ(gv_grant_end(p1, g, 2), 0);
	CHECK_EQ(gv_grant_end(p1, g3, 1), 0);
	CHECK(counters_zero(&p1->ctr) && counters_zero(&p0->ctr));
	gv_platform_close(p1);
	gv_platform_close(p0);
	CHECK_EQ(sim_stop(&env), 0);
	return 0;
}

/* Xen's refusals: a bad ref, a grant for another domain or from another
 * granter, a copy into a read-only grant, a segment crossing the page, a
 * domain that does not exist; each refuses the whole call and copies
 * nothing, and names the segment */
static int t_copy_refused(void)
{
	struct gv_platform *p0 = start_with_domains(2), *p1, *p2;
	grant_ref_t ref, roref;
	char *g, *ro, buf[GV_PAGE_SIZE + 1];
	struct gv_copy_seg seg[2];

	CHECK(p0);
	CHECK((p1 = sim_open_domain(1)));
	CHECK((p2 = sim_open_domain(2)));
	CHECK_EQ(gv_grant_alloc(p1, 0, 1, 0, NULL, &ref, (void **)&g), 0);
	CHECK_EQ(gv_grant_alloc(p1, 0, 1, GV_GRANT_READONLY, NULL, &roref, (void **)&ro), 0);
	memset(buf, 'x', sizeof(buf));

	/* a good segment first, then the bad one: nothing copied, second named */
	seg[0] = copy_seg(ref, 0, 8, true, buf);
	seg[1] = copy_seg(SIM_NR_GREFS + 5, 0, 8, true, buf);     /* out of range */
	CHECK_EQ(gv_grant_copy(p0, 1, 2, seg), -EINVAL);
	CHECK_EQ(seg[1].status, -EINVAL);
	CHECK(seg[0].status != 0);
	CHECK(g[0] == 0);
	seg[1] = copy_seg(ref + 100, 0, 8, false, buf);            /* never granted */
	CHECK_EQ(gv_grant_copy(p0, 1, 2, seg), -EINVAL);
	CHECK(g[0] == 0);
	seg[1] = copy_seg(1, 0, 8, false, buf);                    /* reserved */
	CHECK_EQ(gv_grant_copy(p0, 1, 2, seg), -EINVAL);

	/* granted to 0: not domain 2's to copy, nor from the wrong granter */
	seg[0] = copy_seg(ref, 0, 8, false, buf);
	CHECK_EQ(gv_grant_copy(p2, 1, 1, seg), -EINVAL);
	CHECK_EQ(gv_grant_copy(p0, 2, 1, seg), -EINVAL);
	CHECK_EQ(gv_grant_copy(p1, 1, 1, seg), -EINVAL);           /* its own grant, to 0 */
	/* no such domain */
	CHECK_EQ(gv_grant_copy(p0, 7, 1, seg), -ESRCH);

	/* a read-only grant is read, never written */
	strcpy(ro, "ro");
	seg[0] = copy_seg(roref, 0, 3, true, buf);
	CHECK_EQ(gv_grant_copy(p0, 1, 1, seg), -EACCES);
	CHECK_EQ(seg[0].status, -EACCES);
	CHECK(!strcmp(ro, "ro"));
	seg[0] = copy_seg(roref, 0, 3, false, buf);
	CHECK_EQ(gv_grant_copy(p0, 1, 1, seg), 0);
	CHECK(!strcmp(buf, "ro"));

	/* within the page: offset + len past it, zero length, more than a page */
	memset(buf, 'x', sizeof(buf));
	seg[0] = copy_seg(ref, GV_PAGE_SIZE - 4, 8, true, buf);
	CHECK_EQ(gv_grant_copy(p0, 1, 1, seg), -EINVAL);
	seg[0] = copy_seg(ref, 0, GV_PAGE_SIZE + 1, true, buf);
	CHECK_EQ(gv_grant_copy(p0, 1, 1, seg), -EINVAL);
	seg[0] = copy_seg(ref, 16, 0, true, buf);
	CHECK_EQ(gv_grant_copy(p0, 1, 1, seg), -EINVAL);
	for (unsigned i = 0; i < GV_PAGE_SIZE; i++)
		CHECK(g[i] == 0);
	/* no segment at all, too many */
	CHECK_EQ(gv_grant_copy(p0, 1, 0, seg), -EINVAL);
	CHECK_EQ(gv_grant_copy(p0, 1, GV_COPY_MAX_SEGS + 1, seg), -EINVAL);

	/* an ended grant cannot be copied any more */
	CHECK_EQ(gv_grant_end(p1, g, 1), 0);
	seg[0] = copy_seg(ref, 0, 8, true, buf);
	CHECK_EQ(gv_grant_copy(p0, 1, 1, seg), -EINVAL);
	CHECK_EQ(gv_grant_end(p1, ro, 1), 0);
	/* the handles still work after every refusal */
	CHECK_EQ(gv_grant_alloc(p1, 0, 1, 0, NULL, &ref, (void **)&g), 0);
	seg[0] = copy_seg(ref, 0, 8, true, buf);
	CHECK_EQ(gv_grant_copy(p0, 1, 1, seg), 0);
	CHECK(g[0] == 'x' && g[7] == 'x' && g[8] == 0);
	CHECK_EQ(gv_grant_end(p1, g, 1), 0);
	CHECK(counters_zero(&p1->ctr) && counters_zero(&p0->ctr));
	gv_platform_close(p2);
	gv_platform_close(p1);
	gv_platform_close(p0);
	CHECK_EQ(sim_stop(&env), 0);
	return 0;
}

static const struct gv_test tests[] = {
	TEST(t_map_without_grant), TEST(t_wrong_domid), TEST(t_readonly_grant),
	TEST(t_flags_while_mapped), TEST(t_gntalloc_limit), TEST(t_end_while_mapped_leaks), TEST(t_data_both_ways),
	TEST(t_mapper_killed), TEST(t_granter_killed), TEST(t_batch_all_or_nothing),
	TEST(t_batch_many_allocations), TEST(t_domains), TEST(t_refs_consecutive_or_scattered),
	TEST(t_hostile_client), TEST(t_copy_both_ways), TEST(t_copy_refused), { 0 }
};

int main(int argc, char **argv)
{
	int rc = gv_test_main(argc, argv, tests);

	/* a failed check may leave a daemon behind */
	if (env.pid > 0)
		sim_stop(&env);
	return rc;
}
