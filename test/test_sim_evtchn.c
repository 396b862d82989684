/*
 * test/test_sim_evtchn.c: the simulated event channels with libxenevtchn
 * semantics: a notify wakes poll() in another process; a delivered port
 * stays masked until unmask; events while masked stay pending, coalesced;
 * nothing lost and nothing spurious over 100,000 round trips; unbinding or
 * dying leaves the peer's port unbound; a rebound port reaches its new peer.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include "platform.h"
#include "platform_sim.h"
#include "sim_harness.h"

static struct sim_env env;

/* a failed check returns early: stop its daemon before starting another */
static int start(void)
{
	if (env.pid > 0)
		sim_stop(&env);
	return sim_start(&env, NULL);
}

/* a daemon with domains 0 and 1 */
static int start_two(void)
{
	struct gv_platform *p0;
	domid_t id;
	int rc;

	if (start() < 0 || !(p0 = sim_open_domain(0)))
		return -1;
	rc = gv_sim_domain_create(p0, "guest", &id);
	gv_platform_close(p0);
	return rc == 0 && id == 1 ? 0 : -1;
}

static int readable(int fd, int timeout_ms)
{
	struct pollfd pf = { fd, POLLIN, 0 };

	return poll(&pf, 1, timeout_ms) == 1;
}

/* waits at most 10 s for one event; returns its port or -1 (not unmasked) */
static long wait_event(struct gv_platform *p)
{
	evtchn_port_t port;

	if (!readable(gv_evtchn_fd(p), 10000) || gv_evtchn_pending(p, &port) != 1)
		return -1;
	return port;
}

static int t_notify_wakes_other_process(void)
{
	struct gv_platform *p0;
	evtchn_port_t port0;
	int to_parent[2];
	char c;
	pid_t pid;

	CHECK(start_two() == 0);
	CHECK((p0 = sim_open_domain(0)));
	CHECK_EQ(gv_evtchn_alloc_unbound(p0, 1, &port0), 0);
	CHECK(port0 > 0);
	CHECK(pipe(to_parent) == 0);
	/* nothing yet, and a notify before the peer binds goes nowhere */
	CHECK(!readable(gv_evtchn_fd(p0), 0));
	CHECK_EQ(gv_evtchn_notify(p0, port0), 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct gv_platform *p1 = sim_open_domain(1);
		evtchn_port_t port1;

		if (!p1 || gv_evtchn_bind(p1, 0, port0, &port1) < 0)
			_exit(2);
		if (write(to_parent[1], "b", 1) != 1)
			_exit(3);
		if (gv_evtchn_notify(p1, port1) < 0)
			_exit(4);
		/* and the answer */
		if (wait_event(p1) != port1)
			_exit(5);
		gv_platform_close(p1);
		_exit(0);
	}
	CHECK(readable(to_parent[0], 10000) && read(to_parent[0], &c, 1) == 1);
	CHECK_EQ(wait_event(p0), port0);
	CHECK_EQ(gv_evtchn_unmask(p0, port0), 0);
	CHECK_EQ(gv_evtchn_notify(p0, port0), 0);
	CHECK_EQ(wait_prog(pid, 20), 0);
	CHECK_EQ(p0->ctr.events_received, 1);
	CHECK_EQ(p0->ctr.events_sent, 2);
	gv_platform_close(p0);
	CHECK_EQ(sim_stop(&env), 0);
	return 0;
}

#define ROUNDS 100000

/* parent (dom0) and child (dom1) bounce one event ROUNDS times each way;
 * after every delivery the port must be masked (nothing more pending) */
static int t_pingpong_exact(void)
{
	struct gv_platform *p0;
	evtchn_port_t port0, port;
	int to_parent[2], to_child[2];
	char c;
	pid_t pid;

	CHECK(start_two() == 0);
	CHECK((p0 = sim_open_domain(0)));
	CHECK_EQ(gv_evtchn_alloc_unbound(p0, 1, &port0), 0);
	CHECK(pipe(to_parent) == 0 && pipe(to_child) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct gv_platform *p1 = sim_open_domain(1);
		evtchn_port_t port1, got;

		if (!p1 || gv_evtchn_bind(p1, 0, port0, &port1) < 0)
			_exit(2);
		if (write(to_parent[1], "b", 1) != 1)
			_exit(3);
		for (long i = 0; i < ROUNDS; i++) {
			if (wait_event(p1) != port1)
				_exit(4);
			if (gv_evtchn_pending(p1, &got) != 0)
				_exit(5);          /* spurious, or not masked */
			if (gv_evtchn_unmask(p1, port1) < 0 || gv_evtchn_notify(p1, port1) < 0)
				_exit(6);
		}
		/* the parent checks nothing more arrives; wait for its word */
		if (!readable(to_child[0], 20000) || read(to_child[0], &c, 1) != 1)
			_exit(7);
		if (p1->ctr.events_received != ROUNDS || p1->ctr.events_sent != ROUNDS)
			_exit(8);
		if (readable(gv_evtchn_fd(p1), 0))
			_exit(9);
		gv_platform_close(p1);
		_exit(0);
	}
	CHECK(readable(to_parent[0], 10000) && read(to_parent[0], &c, 1) == 1);
	for (long i = 0; i < ROUNDS; i++) {
		CHECK_EQ(gv_evtchn_notify(p0, port0), 0);
		CHECK_EQ(wait_event(p0), port0);
		CHECK_EQ(gv_evtchn_pending(p0, &port), 0);
		CHECK_EQ(gv_evtchn_unmask(p0, port0), 0);
	}
	/* the child's last notify was answered; nothing else may come */
	CHECK(!readable(gv_evtchn_fd(p0), 50));
	CHECK_EQ(gv_evtchn_pending(p0, &port), 0);
	CHECK(write(to_child[1], "d", 1) == 1);
	CHECK_EQ(wait_prog(pid, 30), 0);
	CHECK_EQ(p0->ctr.events_sent, ROUNDS);
	CHECK_EQ(p0->ctr.events_received, ROUNDS);
	gv_platform_close(p0);
	CHECK_EQ(sim_stop(&env), 0);
	return 0;
}

/* masking, on a loopback channel within dom0 between two handles */
static int t_masking(void)
{
	struct gv_platform *a, *b;
	evtchn_port_t pa, pb, port;

	CHECK(start() == 0);
	CHECK((a = sim_open_domain(0)));
	CHECK((b = sim_open_domain(0)));
	CHECK_EQ(gv_evtchn_alloc_unbound(a, 0, &pa), 0);
	CHECK_EQ(gv_evtchn_bind(b, 0, pa, &pb), 0);
	CHECK(pa != pb);
	/* three notifies before anyone looks: one event */
	for (int i = 0; i < 3; i++)
		CHECK_EQ(gv_evtchn_notify(b, pb), 0);
	CHECK(readable(gv_evtchn_fd(a), 0));
	CHECK_EQ(gv_evtchn_pending(a, &port), 1);
	CHECK_EQ(port, pa);
	/* delivered: masked, nothing readable */
	CHECK(!readable(gv_evtchn_fd(a), 0));
	CHECK_EQ(gv_evtchn_pending(a, &port), 0);
	/* events while masked stay pending, coalesced */
	CHECK_EQ(gv_evtchn_notify(b, pb), 0);
	CHECK_EQ(gv_evtchn_notify(b, pb), 0);
	CHECK(!readable(gv_evtchn_fd(a), 0));
	CHECK_EQ(gv_evtchn_pending(a, &port), 0);
	CHECK_EQ(gv_evtchn_unmask(a, pa), 0);
	CHECK(readable(gv_evtchn_fd(a), 0));
	CHECK_EQ(gv_evtchn_pending(a, &port), 1);
	CHECK_EQ(port, pa);
	CHECK_EQ(gv_evtchn_pending(a, &port), 0);
	/* unmask with nothing pending: nothing */
	CHECK_EQ(gv_evtchn_unmask(a, pa), 0);
	CHECK(!readable(gv_evtchn_fd(a), 0));
	CHECK_EQ(gv_evtchn_pending(a, &port), 0);
	/* and the other direction */
	CHECK_EQ(gv_evtchn_notify(a, pa), 0);
	CHECK_EQ(gv_evtchn_pending(b, &port), 1);
	CHECK_EQ(port, pb);
	CHECK_EQ(a->ctr.events_received, 2);
	CHECK_EQ(b->ctr.events_sent, 5);
	CHECK_EQ(b->ctr.events_received, 1);
	/* two ports pending: both delivered, one each */
	{
		evtchn_port_t qa, qb, p1, p2;

		CHECK_EQ(gv_evtchn_alloc_unbound(a, 0, &qa), 0);
		CHECK_EQ(gv_evtchn_bind(b, 0, qa, &qb), 0);
		CHECK_EQ(gv_evtchn_unmask(a, pa), 0);
		CHECK_EQ(gv_evtchn_notify(b, pb), 0);
		CHECK_EQ(gv_evtchn_notify(b, qb), 0);
		CHECK_EQ(gv_evtchn_pending(a, &p1), 1);
		CHECK_EQ(gv_evtchn_pending(a, &p2), 1);
		CHECK((p1 == pa && p2 == qa) || (p1 == qa && p2 == pa));
		CHECK_EQ(gv_evtchn_pending(a, &port), 0);
	}
	gv_platform_close(b);
	gv_platform_close(a);
	CHECK_EQ(sim_stop(&env), 0);
	return 0;
}

/* unbind and process death leave the peer unbound; a rebind is reached */
static int t_unbind_and_rebind(void)
{
	struct gv_platform *a, *b, *c;
	evtchn_port_t pa, pb, pc, port;
	pid_t pid;
	int to_parent[2];
	char ch;

	CHECK(start_two() == 0);
	CHECK((a = sim_open_domain(0)));
	CHECK((b = sim_open_domain(1)));
	CHECK((c = sim_open_domain(1)));
	CHECK_EQ(gv_evtchn_alloc_unbound(a, 1, &pa), 0);
	CHECK_EQ(gv_evtchn_bind(b, 0, pa, &pb), 0);
	/* only the domain it waits for may bind, and only once */
	CHECK_EQ(gv_evtchn_bind(c, 0, pa, &pc), -EINVAL);
	CHECK_EQ(gv_evtchn_bind(a, 0, pa, &pc), -EINVAL);
	CHECK_EQ(gv_evtchn_bind(c, 7, pa, &pc), -ESRCH);
	CHECK_EQ(gv_evtchn_bind(c, 0, 0, &pc), -EINVAL);
	CHECK_EQ(gv_evtchn_bind(c, 0, SIM_NR_PORTS, &pc), -EINVAL);
	CHECK_EQ(gv_evtchn_alloc_unbound(c, 7, &pc), -ESRCH);
	/* ports of another handle are not ours */
	CHECK_EQ(gv_evtchn_notify(c, pb), -EINVAL);
	CHECK_EQ(gv_evtchn_unbind(c, pb), -EINVAL);
	CHECK_EQ(gv_evtchn_unmask(c, pb), -EINVAL);
	CHECK_EQ(gv_evtchn_notify(a, pa), 0);   /* caches b's eventfd */
	CHECK_EQ(gv_evtchn_pending(b, &port), 1);
	CHECK_EQ(gv_evtchn_unmask(b, pb), 0);
	/* b unbinds: a's notifies go nowhere */
	CHECK_EQ(gv_evtchn_unbind(b, pb), 0);
	CHECK_EQ(gv_evtchn_notify(a, pa), 0);
	CHECK_EQ(gv_evtchn_pending(b, &port), 0);
	/* a's port waits for dom1 again: c binds, and a reaches c, not b */
	CHECK_EQ(gv_evtchn_bind(c, 0, pa, &pc), 0);
	CHECK_EQ(gv_evtchn_notify(a, pa), 0);
	CHECK_EQ(gv_evtchn_pending(c, &port), 1);
	CHECK_EQ(port, pc);
	CHECK_EQ(gv_evtchn_pending(b, &port), 0);
	CHECK_EQ(gv_evtchn_notify(c, pc), 0);
	CHECK_EQ(gv_evtchn_pending(a, &port), 1);
	CHECK_EQ(port, pa);
	CHECK_EQ(gv_evtchn_unmask(a, pa), 0);
	gv_platform_close(c);   /* closes pc */
	CHECK_EQ(gv_evtchn_notify(a, pa), 0);
	gv_platform_close(b);

	/* a process in dom1 binds, then dies: a's port is unbound again */
	CHECK(pipe(to_parent) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct gv_platform *d = sim_open_domain(1);
		evtchn_port_t pd;

		if (!d || gv_evtchn_bind(d, 0, pa, &pd) < 0)
			_exit(2);
		if (gv_evtchn_notify(d, pd) < 0 || write(to_parent[1], "b", 1) != 1)
			_exit(3);
		poll(NULL, 0, 20000);   /* until killed; bounded if the parent fails */
		_exit(4);
	}
	CHECK(readable(to_parent[0], 10000) && read(to_parent[0], &ch, 1) == 1);
	CHECK_EQ(gv_evtchn_pending(a, &port), 1);
	CHECK_EQ(gv_evtchn_unmask(a, pa), 0);
	CHECK_EQ(gv_evtchn_notify(a, pa), 0);
	kill(pid, SIGKILL);
	CHECK_EQ(wait_prog(pid, 10), -1);
	/* once the daemon saw the death, dom1 may bind again */
	CHECK((b = sim_open_domain(1)));
	CHECK_EQ(gv_evtchn_bind(b, 0, pa, &pb), 0);
	CHECK_EQ(gv_evtchn_notify(a, pa), 0);
	CHECK_EQ(gv_evtchn_pending(b, &port), 1);
	CHECK_EQ(port, pb);
	gv_platform_close(b);
	CHECK_EQ(gv_evtchn_unbind(a, pa), 0);
	CHECK_EQ(gv_evtchn_notify(a, pa), -EINVAL);
	gv_platform_close(a);
	CHECK_EQ(sim_stop(&env), 0);
	return 0;
}

static const struct gv_test tests[] = {
	TEST(t_notify_wakes_other_process), TEST(t_pingpong_exact), TEST(t_masking),
	TEST(t_unbind_and_rebind), { 0 }
};

int main(int argc, char **argv)
{
	int rc = gv_test_main(argc, argv, tests);

	if (env.pid > 0)
		sim_stop(&env);
	return rc;
}
