/*
 * test/test_sim_xenstore.c: the simulated xenstored of gv-simxen, spoken to
 * by Xen's real client library (libxenstore) and Debian's xenstore-* tools.
 *
 * Most tests start a gv-simxen (sim_start) and talk to domain 0's socket.
 * Tests that need other domains run the xenstored module in a forked child
 * with its own loop (inproc_start): the parent is the client, the child
 * serves dom0, dom1 and dom2, and adds or removes domains on request.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <dirent.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xenstore.h>
#include "check.h"
#include "sim_harness.h"
#include "../sim/simxen.h"

/* ---- an in-process xenstored ------------------------------------------------
 * gv-simxen.c is not linked into tests, so the few globals it defines are
 * defined here; hv_domain_exists is a test double (domains 0..3 exist), which
 * also keeps the hypervisor module out of this link. */
const char *sim_dir;
bool sim_scatter_refs;
int sim_loop_init(void);
int sim_loop_run_once(int timeout_ms);

char *sim_path(char *buf, size_t len, domid_t domid, const char *leaf)
{
	int n = snprintf(buf, len, "%s/dom%u%s%s", sim_dir, (unsigned)domid, leaf ? "/" : "",
	                 leaf ? leaf : "");

	return n < 0 || (size_t)n >= len ? NULL : buf;
}

bool hv_domain_exists(domid_t domid)
{
	return domid <= 3;
}

struct inproc {
	pid_t pid;
	int ctl;           /* parent's end: 'r' removes dom2, 'a' adds dom3; EOF stops */
	char dir[64];
	int spare_fds;     /* if > 0: the server may open only this many more files */
};

/* Lowers RLIMIT_NOFILE so that exactly n more descriptors can be opened
 * (descriptor numbers below the limit that are free, holes included). */
static int limit_fds(int n)
{
	static bool used[4096];
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	struct rlimit rl;
	int fd, dfd = d ? dirfd(d) : -1;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && atoi(e->d_name) < 4096 && atoi(e->d_name) != dfd)
			used[atoi(e->d_name)] = true;
	closedir(d);
	for (fd = 0; fd < 4096 && n; fd++)
		n -= !used[fd];
	rl.rlim_cur = rl.rlim_max = (rlim_t)fd;
	return setrlimit(RLIMIT_NOFILE, &rl);
}

static bool inproc_stopping;

static void inproc_on_ctl(void *ctx, uint32_t events)
{
	int fd = *(int *)ctx;
	char c;

	(void)events;
	if (read(fd, &c, 1) != 1) {
		inproc_stopping = true;
		return;
	}
	if (c == 'r')
		xs_server_remove_domain(2);
	else if (c == 'a')
		xs_server_add_domain(3);
}

static int inproc_start(struct inproc *s)
{
	int ready[2], ctl[2];
	char c;

	snprintf(s->dir, sizeof(s->dir), "/tmp/gvx-XXXXXX");
	if (!mkdtemp(s->dir) || pipe(ready) < 0 || pipe(ctl) < 0)
		return -1;
	fflush(NULL);   /* the child exits with exit(): nothing of ours twice */
	s->pid = fork();
	if (s->pid < 0)
		return -1;
	if (s->pid == 0) {
		int cfd = ctl[0];

		close(ready[0]);
		close(ctl[1]);
		sim_dir = s->dir;
		if (sim_loop_init() < 0 || xs_server_init() < 0 || xs_server_add_domain(0) < 0 ||
		    xs_server_add_domain(1) < 0 || xs_server_add_domain(2) < 0 ||
		    sim_loop_add(cfd, EPOLLIN, inproc_on_ctl, &cfd) < 0 ||
		    (s->spare_fds > 0 && limit_fds(s->spare_fds) < 0))
			_exit(1);
		if (write(ready[1], "R", 1) != 1)
			_exit(1);
		close(ready[1]);
		while (!inproc_stopping)
			if (sim_loop_run_once(-1) < 0)
				_exit(2);
		xs_server_fini();
		/* exit, not _exit: under ASan the leak check then covers the server */
		exit(0);
	}
	close(ready[1]);
	close(ctl[0]);
	s->ctl = ctl[1];
	if (read(ready[0], &c, 1) != 1) {
		close(ready[0]);
		close(s->ctl);
		waitpid(s->pid, NULL, 0);
		return -1;
	}
	close(ready[0]);
	return 0;
}

/* Returns the child's exit status (0: it stopped cleanly and removed its sockets). */
static int inproc_stop(struct inproc *s)
{
	int st, rc;

	close(s->ctl);
	rc = wait_prog(s->pid, 10);
	st = rmdir(s->dir);   /* fails if the server left anything behind */
	if (st < 0) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
		if (system(cmd) != 0)
			return -1;
		return -2;
	}
	return rc;
}

static struct xs_handle *open_as(const char *dir, unsigned domid)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/dom%u/xenstored", dir, domid);
	setenv("XENSTORED_PATH", path, 1);
	return xs_open(0);
}

/* ---- helpers ---------------------------------------------------------------- */

/* The next watch event within ms, or NULL. The caller frees it. */
static char **next_event(struct xs_handle *h, int ms)
{
	struct pollfd p = { .fd = xs_fileno(h), .events = POLLIN };
	unsigned n;

	if (p.fd < 0 || poll(&p, 1, ms) != 1)
		return NULL;
	return xs_read_watch(h, &n);
}

/* Checks that the next event is (path, token); frees it. */
static int expect_event(struct xs_handle *h, const char *path, const char *token, int line)
{
	char **ev = next_event(h, 5000);
	int ok;

	if (!ev) {
		fprintf(stderr, "line %d: no event (wanted %s %s)\n", line, path, token);
		return -1;
	}
	ok = !strcmp(ev[XS_WATCH_PATH], path) && !strcmp(ev[XS_WATCH_TOKEN], token);
	if (!ok)
		fprintf(stderr, "line %d: event %s %s, wanted %s %s\n", line, ev[XS_WATCH_PATH],
		        ev[XS_WATCH_TOKEN], path, token);
	free(ev);
	return ok ? 0 : -1;
}
#define EXPECT_EVENT(h, p, t) CHECK(expect_event(h, p, t, __LINE__) == 0)

static bool read_is(struct xs_handle *h, xs_transaction_t t, const char *path, const char *want)
{
	unsigned len;
	char *v = xs_read(h, t, path, &len);
	bool ok = v && len == strlen(want) && !memcmp(v, want, len);

	free(v);
	return ok;
}

static bool read_fails(struct xs_handle *h, const char *path, int err)
{
	unsigned len;
	char *v = xs_read(h, XBT_NULL, path, &len);

	free(v);
	return !v && errno == err;
}

static bool wr(struct xs_handle *h, const char *path, const char *val)
{
	return xs_write(h, XBT_NULL, path, val, (unsigned)strlen(val));
}

/* ---- tests ------------------------------------------------------------------
 * Each test body runs with its own daemon, stopped (and checked to stop
 * cleanly) even when a check in the body fails. */
#define SIM_TEST(name) \
	static int body_##name(struct sim_env *e); \
	static int name(void) \
	{ \
		struct sim_env env; \
		int rc; \
		CHECK(sim_start(&env, NULL) == 0); \
		rc = body_##name(&env); \
		CHECK_EQ(sim_stop(&env), 0); \
		return rc; \
	} \
	static int body_##name(struct sim_env *e)

#define INPROC_TEST(name) \
	static int body_##name(struct inproc *s); \
	static int name(void) \
	{ \
		struct inproc srv = { .spare_fds = 0 }; \
		int rc; \
		CHECK(inproc_start(&srv) == 0); \
		rc = body_##name(&srv); \
		CHECK_EQ(inproc_stop(&srv), 0); \
		return rc; \
	} \
	static int body_##name(struct inproc *s)

SIM_TEST(t_read_write_rm_directory)
{
	static const char bin[] = { 'a', 0, (char)0xff, '\n', 0, 'z' };
	struct xs_handle *h;
	unsigned len, n;
	char *v, **dir;

	sim_use_domain_xenstore(e, 0);
	h = xs_open(0);
	CHECK(h);
	/* the boot tree */
	CHECK(read_is(h, XBT_NULL, "/local/domain/0/name", "Domain-0"));
	CHECK(read_is(h, XBT_NULL, "/local/domain/0/domid", "0"));
	/* nested creation, binary-safe values */
	CHECK(xs_write(h, XBT_NULL, "/t/a/b/c", bin, sizeof(bin)));
	v = xs_read(h, XBT_NULL, "/t/a/b/c", &len);
	CHECK(v && len == sizeof(bin) && !memcmp(v, bin, len));
	free(v);
	CHECK(read_is(h, XBT_NULL, "/t/a/b", ""));
	CHECK(wr(h, "/t/a/x", "second"));
	dir = xs_directory(h, XBT_NULL, "/t/a", &n);
	CHECK(dir && n == 2 && !strcmp(dir[0], "b") && !strcmp(dir[1], "x"));
	free(dir);
	CHECK(xs_mkdir(h, XBT_NULL, "/t/empty"));
	CHECK(xs_mkdir(h, XBT_NULL, "/t/empty"));   /* exists: fine */
	dir = xs_directory(h, XBT_NULL, "/t/empty", &n);
	CHECK(dir && n == 0);
	free(dir);
	/* rm takes the subtree; removing a missing child of an existing node is fine */
	CHECK(xs_rm(h, XBT_NULL, "/t/a"));
	CHECK(read_fails(h, "/t/a/b/c", ENOENT));
	CHECK(read_fails(h, "/t/a", ENOENT));
	CHECK(xs_rm(h, XBT_NULL, "/t/a"));
	CHECK(!xs_rm(h, XBT_NULL, "/t/a/b") && errno == ENOENT);
	CHECK(!xs_rm(h, XBT_NULL, "/") && errno == EINVAL);
	/* bad paths */
	CHECK(!wr(h, "/t//x", "1") && errno == EINVAL);
	CHECK(!wr(h, "/t/x/", "1") && errno == EINVAL);
	CHECK(!wr(h, "/t/x y", "1") && errno == EINVAL);
	/* a directory longer than one message: libxenstore falls back to
	 * XS_DIRECTORY_PART */
	for (int i = 0; i < 200; i++) {
		char p[96];

		snprintf(p, sizeof(p), "/big/child-with-a-rather-long-name-%03d", i);
		CHECK(wr(h, p, "x"));
	}
	dir = xs_directory(h, XBT_NULL, "/big", &n);
	CHECK(dir && n == 200);
	CHECK(!strcmp(dir[0], "child-with-a-rather-long-name-000"));
	CHECK(!strcmp(dir[199], "child-with-a-rather-long-name-199"));
	free(dir);
	CHECK(xs_rm(h, XBT_NULL, "/big"));
	xs_close(h);
	return 0;
}

SIM_TEST(t_watch_counts)
{
	struct xs_handle *w, *h;
	char **ev;

	sim_use_domain_xenstore(e, 0);
	w = xs_open(0);
	h = xs_open(0);
	CHECK(w && h);
	CHECK(wr(h, "/w/keep", "1"));
	CHECK(xs_watch(w, "/w", "tok"));
	EXPECT_EVENT(w, "/w", "tok");               /* once at registration */
	CHECK(wr(h, "/w/x", "1"));
	EXPECT_EVENT(w, "/w/x", "tok");
	CHECK(wr(h, "/w/x", "2"));
	EXPECT_EVENT(w, "/w/x", "tok");
	CHECK(wr(h, "/wx", "not below /w"));
	CHECK(wr(h, "/other", "3"));
	CHECK(xs_mkdir(h, XBT_NULL, "/w/x"));        /* exists: no change, no event */
	CHECK(wr(h, "/w/sentinel", "1"));
	/* events keep their order: had /wx, /other or the mkdir fired, they
	 * would come before this one */
	EXPECT_EVENT(w, "/w/sentinel", "tok");
	/* rm: the removed node's watchers and watchers below it hear */
	CHECK(xs_watch(w, "/w/x", "deep"));
	EXPECT_EVENT(w, "/w/x", "deep");
	CHECK(xs_rm(h, XBT_NULL, "/w"));
	EXPECT_EVENT(w, "/w/x", "deep");
	EXPECT_EVENT(w, "/w", "tok");
	CHECK(!xs_watch(w, "/w", "tok") && errno == EEXIST);
	CHECK(xs_unwatch(w, "/w/x", "deep"));
	CHECK(!xs_unwatch(w, "/w/x", "deep") && errno == ENOENT);
	CHECK(wr(h, "/w/x", "again"));
	EXPECT_EVENT(w, "/w/x", "tok");
	/* set_perms is a change too */
	{
		struct xs_permissions p[] = { { .id = 0, .perms = XS_PERM_NONE },
		                              { .id = 5, .perms = XS_PERM_READ } };

		CHECK(xs_set_permissions(h, XBT_NULL, "/w/x", p, 2));
	}
	EXPECT_EVENT(w, "/w/x", "tok");
	ev = next_event(w, 0);   /* nothing else queued */
	CHECK(ev == NULL);
	xs_close(w);
	xs_close(h);
	return 0;
}

SIM_TEST(t_transaction_conflict)
{
	struct xs_handle *a, *b;
	xs_transaction_t t;
	unsigned len;
	char *v;

	sim_use_domain_xenstore(e, 0);
	a = xs_open(0);
	b = xs_open(0);
	CHECK(a && b);
	CHECK(wr(b, "/tx/k", "0"));
	CHECK(xs_watch(b, "/tx", "t"));
	EXPECT_EVENT(b, "/tx", "t");

	/* a conflicting write meanwhile: EAGAIN, nothing applied */
	t = xs_transaction_start(a);
	CHECK(t != XBT_NULL);
	CHECK(read_is(a, t, "/tx/k", "0"));
	CHECK(xs_write(a, t, "/tx/k", "1", 1));
	CHECK(xs_write(a, t, "/tx/new", "n", 1));
	CHECK(read_is(a, t, "/tx/k", "1"));          /* sees its own write */
	CHECK(read_is(b, XBT_NULL, "/tx/k", "0"));   /* others do not, yet */
	CHECK(wr(b, "/tx/k", "2"));
	EXPECT_EVENT(b, "/tx/k", "t");
	CHECK(!xs_transaction_end(a, t, false));
	CHECK_EQ(errno, EAGAIN);
	CHECK(read_is(b, XBT_NULL, "/tx/k", "2"));
	v = xs_read(b, XBT_NULL, "/tx/new", &len);
	CHECK(!v && errno == ENOENT);

	/* the retry succeeds; an unrelated write does not disturb it; the
	 * watches fire at commit */
	t = xs_transaction_start(a);
	CHECK(t != XBT_NULL);
	CHECK(read_is(a, t, "/tx/k", "2"));
	CHECK(xs_write(a, t, "/tx/k", "3", 1));
	CHECK(wr(b, "/elsewhere", "x"));
	CHECK(xs_transaction_end(a, t, false));
	EXPECT_EVENT(b, "/tx/k", "t");
	CHECK(read_is(b, XBT_NULL, "/tx/k", "3"));

	/* abort: nothing happens */
	t = xs_transaction_start(a);
	CHECK(xs_write(a, t, "/tx/k", "4", 1));
	CHECK(xs_rm(a, t, "/tx"));
	CHECK(xs_transaction_end(a, t, true));
	CHECK(read_is(b, XBT_NULL, "/tx/k", "3"));
	/* a removal that raced with a creation below: conflict */
	t = xs_transaction_start(a);
	CHECK(xs_rm(a, t, "/tx/k"));
	CHECK(wr(b, "/tx/k", "5"));
	EXPECT_EVENT(b, "/tx/k", "t");
	CHECK(!xs_transaction_end(a, t, false) && errno == EAGAIN);
	CHECK(read_is(b, XBT_NULL, "/tx/k", "5"));
	/* an unknown transaction id */
	CHECK(!xs_write(a, 12345, "/tx/k", "6", 1) && errno == ENOENT);
	CHECK(next_event(b, 0) == NULL);
	xs_close(a);
	xs_close(b);
	return 0;
}

INPROC_TEST(t_permissions_between_domains)
{
	struct xs_handle *d0, *d1, *d2;
	struct xs_permissions own1[] = { { .id = 1, .perms = XS_PERM_NONE } };
	struct xs_permissions share[] = { { .id = 1, .perms = XS_PERM_NONE },
	                                  { .id = 2, .perms = XS_PERM_READ } };
	struct xs_permissions steal[] = { { .id = 2, .perms = XS_PERM_NONE } };
	struct xs_permissions *p;
	unsigned n;
	char *v;

	d0 = open_as(s->dir, 0);
	d1 = open_as(s->dir, 1);
	d2 = open_as(s->dir, 2);
	CHECK(d0 && d1 && d2);
	/* the toolstack's part: /local/domain/1 belongs to dom1 */
	CHECK(xs_mkdir(d0, XBT_NULL, "/local/domain/1"));
	CHECK(xs_set_permissions(d0, XBT_NULL, "/local/domain/1", own1, 1));
	CHECK(wr(d0, "/secret", "s"));

	CHECK(read_fails(d1, "/secret", EACCES));
	CHECK(read_fails(d1, "/local/domain/0/name", EACCES));
	CHECK(!wr(d1, "/secret", "mine") && errno == EACCES);
	CHECK(!wr(d1, "/newtop", "x") && errno == EACCES);   /* / is not dom1's */
	/* relative paths are under the domain's home; it owns what it makes */
	CHECK(wr(d1, "data/x", "hello"));
	CHECK(read_is(d1, XBT_NULL, "/local/domain/1/data/x", "hello"));
	CHECK(read_is(d0, XBT_NULL, "/local/domain/1/data/x", "hello"));   /* dom0 reads all */
	p = xs_get_permissions(d0, XBT_NULL, "/local/domain/1/data/x", &n);
	CHECK(p && n == 1 && p[0].id == 1 && p[0].perms == XS_PERM_NONE);
	free(p);
	CHECK(read_fails(d2, "/local/domain/1/data/x", EACCES));
	/* whether a node exists is not told to who may not read its parent */
	CHECK(read_fails(d2, "/local/domain/1/nothing", EACCES));
	CHECK(read_fails(d1, "nothing", ENOENT));

	/* dom2 watches; it hears only of what it may read */
	CHECK(xs_watch(d2, "/local/domain/1/data", "w2"));
	EXPECT_EVENT(d2, "/local/domain/1/data", "w2");
	CHECK(wr(d1, "data/hidden", "h"));

	/* grants: dom1 shares data/x with dom2, read-only */
	CHECK(xs_set_permissions(d1, XBT_NULL, "data/x", share, 2));
	EXPECT_EVENT(d2, "/local/domain/1/data/x", "w2");   /* not data/hidden */
	CHECK(read_is(d2, XBT_NULL, "/local/domain/1/data/x", "hello"));
	CHECK(!wr(d2, "/local/domain/1/data/x", "no") && errno == EACCES);
	CHECK(wr(d1, "data/x", "hello2"));
	EXPECT_EVENT(d2, "/local/domain/1/data/x", "w2");
	/* only the owner sets permissions; an unprivileged owner cannot give a node away */
	CHECK(!xs_set_permissions(d2, XBT_NULL, "/local/domain/1/data/x", share, 2) &&
	      errno == EACCES);
	CHECK(!xs_set_permissions(d1, XBT_NULL, "data/x", steal, 1) && errno == EPERM);
	CHECK(!xs_set_permissions(d1, XBT_NULL, "/secret", own1, 1) && errno == EACCES);
	/* a watcher hears of an unreadable child of a node it may read, as
	 * with xenstored (the child's name is no secret, its value is) */
	CHECK(xs_mkdir(d1, XBT_NULL, "pub"));
	CHECK(xs_set_permissions(d1, XBT_NULL, "pub", share, 2));
	CHECK(wr(d1, "pub/priv", "p"));
	CHECK(xs_set_permissions(d1, XBT_NULL, "pub/priv", own1, 1));
	CHECK(xs_watch(d2, "/local/domain/1/pub", "pub"));
	EXPECT_EVENT(d2, "/local/domain/1/pub", "pub");
	CHECK(wr(d1, "pub/priv", "p2"));
	EXPECT_EVENT(d2, "/local/domain/1/pub/priv", "pub");
	CHECK(read_fails(d2, "/local/domain/1/pub/priv", EACCES));
	/* dom0 grants dom2 the secret */
	CHECK(read_fails(d2, "/secret", EACCES));
	{
		struct xs_permissions g[] = { { .id = 0, .perms = XS_PERM_NONE },
		                              { .id = 2, .perms = XS_PERM_READ } };

		CHECK(xs_set_permissions(d0, XBT_NULL, "/secret", g, 2));
	}
	CHECK(read_is(d2, XBT_NULL, "/secret", "s"));
	CHECK(read_fails(d1, "/secret", EACCES));
	/* dom1 may remove its own subtree, dom2 may not */
	CHECK(!xs_rm(d2, XBT_NULL, "/local/domain/1/data") && errno == EACCES);
	CHECK(xs_watch(d2, "/secret", "s2"));
	EXPECT_EVENT(d2, "/secret", "s2");
	CHECK(xs_rm(d1, XBT_NULL, "data"));
	/* as xenstored: a removal fires for watches on the removed node (and
	 * above) if they may read it, and for watches on exactly a removed
	 * descendant; dom2 may read data/x but watches data, which it may not
	 * read: it hears nothing, so the next event is the sentinel */
	CHECK(wr(d0, "/secret", "s2"));
	EXPECT_EVENT(d2, "/secret", "s2");
	CHECK(next_event(d2, 0) == NULL);

	/* domain queries */
	v = xs_get_domain_path(d1, 1);
	CHECK(v && !strcmp(v, "/local/domain/1"));
	free(v);
	CHECK(xs_is_domain_introduced(d0, 1));
	CHECK(!xs_is_domain_introduced(d0, 7));
	xs_close(d0);
	xs_close(d1);
	xs_close(d2);
	return 0;
}

INPROC_TEST(t_release_and_introduce_domain)
{
	struct xs_handle *d0, *d2;
	char sock[160];
	unsigned len;
	char *v;

	d0 = open_as(s->dir, 0);
	d2 = open_as(s->dir, 2);
	CHECK(d0 && d2);
	CHECK(wr(d0, "/local/domain/2/name", "guest"));
	CHECK(xs_watch(d0, "@releaseDomain", "rel"));
	EXPECT_EVENT(d0, "@releaseDomain", "rel");
	CHECK(xs_watch(d0, "@introduceDomain", "intro"));
	EXPECT_EVENT(d0, "@introduceDomain", "intro");
	CHECK(!xs_watch(d0, "@bogus", "x") && errno == EINVAL);
	/* an ordinary watch on / does not hear the special events */
	CHECK(xs_watch(d0, "/", "all"));
	EXPECT_EVENT(d0, "/", "all");
	v = xs_read(d2, XBT_NULL, "name", &len);
	CHECK(!v && errno == EACCES);   /* written by dom0, not given to dom2 */

	CHECK(write(s->ctl, "r", 1) == 1);
	EXPECT_EVENT(d0, "@releaseDomain", "rel");
	snprintf(sock, sizeof(sock), "%s/dom2/xenstored", s->dir);
	CHECK(access(sock, F_OK) < 0 && errno == ENOENT);
	/* dom2's connection is gone */
	v = xs_read(d2, XBT_NULL, "name", &len);
	CHECK(!v);
	CHECK(write(s->ctl, "a", 1) == 1);
	EXPECT_EVENT(d0, "@introduceDomain", "intro");
	snprintf(sock, sizeof(sock), "%s/dom3/xenstored", s->dir);
	CHECK(access(sock, F_OK) == 0);
	CHECK(next_event(d0, 0) == NULL);
	xs_close(d0);
	xs_close(d2);
	return 0;
}

INPROC_TEST(t_relative_watch)
{
	struct xs_handle *d0, *d1;
	struct xs_permissions own1[] = { { .id = 1, .perms = XS_PERM_NONE } };

	d0 = open_as(s->dir, 0);
	d1 = open_as(s->dir, 1);
	CHECK(d0 && d1);
	CHECK(xs_mkdir(d0, XBT_NULL, "/local/domain/1"));
	CHECK(xs_set_permissions(d0, XBT_NULL, "/local/domain/1", own1, 1));
	CHECK(xs_watch(d1, "device", "rel"));
	EXPECT_EVENT(d1, "device", "rel");
	CHECK(wr(d0, "/local/domain/1/device/vbd/0/state", "1"));
	EXPECT_EVENT(d1, "device/vbd/0/state", "rel");   /* reported as registered */
	/* a domain's node quota */
	{
		int i, made = 0;

		for (i = 0; i < 1100; i++) {
			char p[32];

			snprintf(p, sizeof(p), "q/%d", i);
			if (!wr(d1, p, "x"))
				break;
			made++;
		}
		CHECK(i < 1100 && errno == ENOSPC);
		CHECK(made > 900);
	}
	xs_close(d0);
	xs_close(d1);
	return 0;
}

/* Debian's tools see what the library wrote, with the permissions. */
static int run_shell(const char *cmd, char *out, size_t len)
{
	FILE *f = popen(cmd, "r");
	size_t got;

	if (!f)
		return -1;
	got = fread(out, 1, len - 1, f);
	out[got] = 0;
	return pclose(f);
}

SIM_TEST(t_debian_tools)
{
	struct xs_permissions p[] = { { .id = 0, .perms = XS_PERM_NONE },
	                              { .id = 3, .perms = XS_PERM_READ } };
	struct xs_handle *h;
	char out[4096];

	sim_use_domain_xenstore(e, 0);
	h = xs_open(0);
	CHECK(h);
	CHECK(wr(h, "/cli/a", "1"));
	CHECK(wr(h, "/cli/b/c", "two"));
	CHECK(xs_set_permissions(h, XBT_NULL, "/cli/a", p, 2));
	CHECK_EQ(run_shell("xenstore-ls -fp /cli 2>&1", out, sizeof(out)), 0);
	CHECK_MSG(strstr(out, "/cli/a = \"1\"   (n0,r3)") &&
	          strstr(out, "/cli/b/c = \"two\"   (n0)"), "xenstore-ls said: %s", out);
	CHECK_EQ(run_shell("xenstore-write /cli/d four && xenstore-chmod /cli/d r0 w2 && "
	                   "xenstore-rm /cli/b && xenstore-list /cli && xenstore-read /cli/d 2>&1",
	                   out, sizeof(out)), 0);
	CHECK_MSG(!strcmp(out, "a\nd\nfour\n"), "tools said: %s", out);
	CHECK(read_is(h, XBT_NULL, "/cli/d", "four"));
	{
		unsigned n;
		struct xs_permissions *q = xs_get_permissions(h, XBT_NULL, "/cli/d", &n);

		CHECK(q && n == 2 && q[0].id == 0 && q[0].perms == XS_PERM_READ &&
		      q[1].id == 2 && q[1].perms == XS_PERM_WRITE);
		free(q);
	}
	CHECK(run_shell("xenstore-read /cli/b/c 2>&1", out, sizeof(out)) != 0);
	xs_close(h);
	return 0;
}

/* ---- a hostile client ------------------------------------------------------- */

static int raw_connect_path(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int raw_connect(const struct sim_env *e)
{
	char path[160];

	return raw_connect_path(sim_xs_socket(e, 0, path, sizeof(path)));
}

static int raw_send(int fd, uint32_t type, uint32_t req_id, uint32_t len, const void *body,
                    size_t blen)
{
	struct xsd_sockmsg h = { .type = type, .req_id = req_id, .len = len };

	if (write(fd, &h, sizeof(h)) != (ssize_t)sizeof(h))
		return -1;
	return blen && write(fd, body, blen) != (ssize_t)blen ? -1 : 0;
}

/* Reads one reply (5 s at most): 0, or -1 on EOF, timeout or garbage. */
static int raw_recv(int fd, struct xsd_sockmsg *h, char *body, size_t len)
{
	size_t got = 0, want = sizeof(*h);
	char buf[sizeof(*h) + XENSTORE_PAYLOAD_MAX];

	while (got < want) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 5000) != 1)
			return -1;
		n = read(fd, buf + got, want - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
		if (got == sizeof(*h)) {
			memcpy(h, buf, sizeof(*h));
			if (h->len > XENSTORE_PAYLOAD_MAX || h->len >= len)
				return -1;
			want += h->len;
		}
	}
	memcpy(body, buf + sizeof(*h), h->len);
	body[h->len] = 0;
	return 0;
}

static bool raw_eof(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c[256];

	for (;;) {
		if (poll(&p, 1, 5000) != 1)
			return false;
		ssize_t n = read(fd, c, sizeof(c));

		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		if (n < 0)
			return false;
	}
}

SIM_TEST(t_malformed_messages)
{
	struct xs_handle *good;
	struct xsd_sockmsg h;
	char body[XENSTORE_PAYLOAD_MAX + 1];
	int fd;

	sim_use_domain_xenstore(e, 0);
	good = xs_open(0);
	CHECK(good);
	CHECK(wr(good, "/m", "fine"));

	/* an unknown type: an error, the connection stays */
	fd = raw_connect(e);
	CHECK(fd >= 0);
	CHECK(raw_send(fd, 9999, 77, 2, "x", 2) == 0);
	CHECK(raw_recv(fd, &h, body, sizeof(body)) == 0);
	CHECK(h.type == XS_ERROR && h.req_id == 77 && !strcmp(body, "EINVAL"));
	/* a path without its NUL */
	CHECK(raw_send(fd, XS_READ, 78, 2, "/m", 2) == 0);
	CHECK(raw_recv(fd, &h, body, sizeof(body)) == 0);
	CHECK(h.type == XS_ERROR && h.req_id == 78 && !strcmp(body, "EINVAL"));
	/* a client may not send watch events or errors */
	CHECK(raw_send(fd, XS_WATCH_EVENT, 79, 6, "/m\0t\0", 6) == 0);
	CHECK(raw_recv(fd, &h, body, sizeof(body)) == 0);
	CHECK(h.type == XS_ERROR && !strcmp(body, "EINVAL"));
	CHECK(read_is(good, XBT_NULL, "/m", "fine"));   /* others unaffected */
	/* still served */
	CHECK(raw_send(fd, XS_READ, 80, 3, "/m", 3) == 0);
	CHECK(raw_recv(fd, &h, body, sizeof(body)) == 0);
	CHECK(h.type == XS_READ && h.req_id == 80 && h.len == 4 && !memcmp(body, "fine", 4));
	/* too long: E2BIG, then the connection is closed */
	CHECK(raw_send(fd, XS_WRITE, 81, 5000, NULL, 0) == 0);
	CHECK(raw_recv(fd, &h, body, sizeof(body)) == 0);
	CHECK(h.type == XS_ERROR && h.req_id == 81 && !strcmp(body, "E2BIG"));
	CHECK(raw_eof(fd));
	close(fd);
	CHECK(read_is(good, XBT_NULL, "/m", "fine"));

	/* garbage in the middle of a libxenstore client's life does not stop it */
	fd = raw_connect(e);
	CHECK(fd >= 0);
	CHECK(write(fd, "\xff\xfe\xfd\xfc\x00\x01garbage!garbage!garbage!", 30) == 30);
	CHECK(wr(good, "/m", "still"));
	CHECK(read_is(good, XBT_NULL, "/m", "still"));
	CHECK(raw_eof(fd));
	close(fd);

	/* a reader that never reads: dropped once it owes 1 MiB, others go on */
	fd = raw_connect(e);
	CHECK(fd >= 0);
	CHECK(raw_send(fd, XS_WATCH, 1, 6, "/\0tok\0", 6) == 0);
	{
		char path[2100] = "/flood/";
		int i;

		memset(path + 7, 'f', 2000);
		path[2007] = 0;
		for (i = 0; i < 2000; i++)
			CHECK(wr(good, path, "x"));
	}
	CHECK(raw_eof(fd));   /* after reading what the kernel buffered */
	close(fd);
	CHECK(read_is(good, XBT_NULL, "/m", "still"));
	xs_close(good);
	return 0;
}

/* One request on a raw connection; 0 if the reply has the type and body wanted. */
static int raw_call(int fd, uint32_t type, const void *body, uint32_t len, uint32_t want_type,
                    const char *want_body, int line)
{
	struct xsd_sockmsg h;
	char reply[XENSTORE_PAYLOAD_MAX + 1];

	if (raw_send(fd, type, 900, len, body, len) < 0 ||
	    raw_recv(fd, &h, reply, sizeof(reply)) < 0) {
		fprintf(stderr, "line %d: no reply\n", line);
		return -1;
	}
	if (h.type != want_type || h.req_id != 900 || strcmp(reply, want_body)) {
		fprintf(stderr, "line %d: reply type %u '%s', wanted %u '%s'\n", line, h.type,
		        reply, want_type, want_body);
		return -1;
	}
	return 0;
}
#define RAW_CALL(fd, type, body, wt, wb) \
	CHECK(raw_call(fd, type, body, sizeof(body), wt, wb, __LINE__) == 0)

INPROC_TEST(t_limits_and_control)
{
	struct xs_handle *d1;
	xs_transaction_t t[11];
	char path[160];
	int fd0, fd1;

	d1 = open_as(s->dir, 1);
	CHECK(d1);
	/* 128 watches per connection, then E2BIG */
	for (int i = 0; i < 128; i++) {
		char tok[16];

		snprintf(tok, sizeof(tok), "t%d", i);
		CHECK(xs_watch(d1, "/local/domain/1", tok));
	}
	CHECK(!xs_watch(d1, "/local/domain/1", "one-too-many") && errno == E2BIG);
	/* 10 open transactions per connection, then ENOSPC */
	for (int i = 0; i < 10; i++)
		CHECK((t[i] = xs_transaction_start(d1)) != XBT_NULL);
	t[10] = xs_transaction_start(d1);
	CHECK(t[10] == XBT_NULL && errno == ENOSPC);
	CHECK(xs_transaction_end(d1, t[3], true));
	CHECK((t[3] = xs_transaction_start(d1)) != XBT_NULL);
	for (int i = 0; i < 10; i++)
		CHECK(xs_transaction_end(d1, t[i], true));
	CHECK(!xs_transaction_end(d1, t[0], true) && errno == ENOENT);
	xs_close(d1);

	snprintf(path, sizeof(path), "%s/dom0/xenstored", s->dir);
	fd0 = raw_connect_path(path);
	snprintf(path, sizeof(path), "%s/dom1/xenstored", s->dir);
	fd1 = raw_connect_path(path);
	CHECK(fd0 >= 0 && fd1 >= 0);
	/* XS_RESET_WATCHES forgets the connection's watches */
	RAW_CALL(fd1, XS_WATCH, "/local/domain/1\0tok", XS_WATCH, "OK");
	CHECK(raw_recv(fd1, &(struct xsd_sockmsg){ 0 }, path, sizeof(path)) == 0);  /* the first event */
	RAW_CALL(fd1, XS_RESET_WATCHES, "", XS_RESET_WATCHES, "OK");
	RAW_CALL(fd1, XS_UNWATCH, "/local/domain/1\0tok", XS_ERROR, "ENOENT");
	/* dom0 only: introduce, release, control */
	RAW_CALL(fd1, XS_INTRODUCE, "5\0" "123\0" "7", XS_ERROR, "EACCES");
	RAW_CALL(fd1, XS_RELEASE, "5", XS_ERROR, "EACCES");
	RAW_CALL(fd1, XS_CONTROL, "check", XS_ERROR, "EACCES");
	RAW_CALL(fd0, XS_CONTROL, "check", XS_CONTROL, "OK");
	RAW_CALL(fd0, XS_CONTROL, "no-such-command", XS_ERROR, "EINVAL");
	RAW_CALL(fd0, XS_RELEASE, "5", XS_RELEASE, "OK");
	RAW_CALL(fd0, XS_GET_DOMAIN_PATH, "7", XS_GET_DOMAIN_PATH, "/local/domain/7");
	RAW_CALL(fd0, XS_GET_DOMAIN_PATH, "x7", XS_ERROR, "EINVAL");
	RAW_CALL(fd0, XS_IS_DOMAIN_INTRODUCED, "2", XS_IS_DOMAIN_INTRODUCED, "T");
	RAW_CALL(fd0, XS_SET_TARGET, "1\0" "2", XS_ERROR, "EINVAL");
	/* a transaction inside a transaction */
	{
		struct xsd_sockmsg h = { .type = XS_TRANSACTION_START, .req_id = 5, .tx_id = 1,
		                         .len = 1 };
		char reply[64];

		CHECK(write(fd0, &h, sizeof(h)) == sizeof(h) && write(fd0, "", 1) == 1);
		CHECK(raw_recv(fd0, &h, reply, sizeof(reply)) == 0);
		CHECK(h.type == XS_ERROR && h.tx_id == 1 && !strcmp(reply, "EBUSY"));
	}
	close(fd0);
	close(fd1);
	return 0;
}

/* Many requests sent before reading any reply: the server stops reading
 * while it has too much output queued, and resumes as the client reads. */
SIM_TEST(t_pipelined_requests)
{
	static char big[4000];
	struct xs_handle *h;
	struct xsd_sockmsg m;
	char body[XENSTORE_PAYLOAD_MAX + 1];
	int fd;

	sim_use_domain_xenstore(e, 0);
	h = xs_open(0);
	CHECK(h);
	memset(big, 'b', sizeof(big));
	CHECK(xs_write(h, XBT_NULL, "/big", big, sizeof(big)));
	fd = raw_connect(e);
	CHECK(fd >= 0);
	/* 400 replies of 4 KiB: far more than the socket buffers and the
	 * server's pause threshold. The requests go in one write: small
	 * writes would each take a socket buffer of their own and block us
	 * while the server, rightly, waits for us to read. */
	{
		static char reqs[400 * (sizeof(m) + 5)];
		char *p = reqs;

		for (uint32_t i = 0; i < 400; i++) {
			m = (struct xsd_sockmsg){ .type = XS_READ, .req_id = i, .len = 5 };
			memcpy(p, &m, sizeof(m));
			memcpy(p + sizeof(m), "/big", 5);
			p += sizeof(m) + 5;
		}
		CHECK(write(fd, reqs, sizeof(reqs)) == (ssize_t)sizeof(reqs));
	}
	for (uint32_t i = 0; i < 400; i++) {
		CHECK(raw_recv(fd, &m, body, sizeof(body)) == 0);
		CHECK_EQ(m.type, XS_READ);
		CHECK_EQ(m.req_id, i);
		CHECK(m.len == sizeof(big) && !memcmp(body, big, sizeof(big)));
	}
	close(fd);
	CHECK(read_is(h, XBT_NULL, "/local/domain/0/domid", "0"));
	xs_close(h);
	return 0;
}

/*
 * Semi-valid requests in bulk (fixed seed): every request type, pieces of
 * paths, permissions, tokens and transaction ids, now and then a missing NUL
 * or random bytes. Every request must get its reply (or a watch event come
 * first); the daemon must survive and stop cleanly (under ASan: with no
 * memory error and no leak).
 */
SIM_TEST(t_fuzz_requests)
{
	static const char *const pieces[] = {
		"/fz", "/fz/a", "/fz/a/b", "fz/c", "/", "@releaseDomain", "@introduceDomain",
		"T", "F", "0", "1", "17", "b0", "r1", "n5", "w2", "tok", "", "/local/domain/0",
		"//", "/fz/", "/fz/a b", "99999", "x",
	};
	struct xs_handle *h;
	unsigned seed = 12345;
	int fd;

	fd = raw_connect(e);
	CHECK(fd >= 0);
	for (uint32_t i = 1; i <= 3000; i++) {
		char body[512], reply[XENSTORE_PAYLOAD_MAX + 1];
		struct xsd_sockmsg m = { .req_id = i };
		size_t len = 0;
		int n;

		m.type = (uint32_t)(rand_r(&seed) % (XS_TYPE_COUNT + 2));
		m.tx_id = rand_r(&seed) % 4 ? 0 : (uint32_t)(rand_r(&seed) % 4);
		n = rand_r(&seed) % 4;
		for (int k = 0; k < n; k++) {
			const char *p = pieces[rand_r(&seed) % (sizeof(pieces) / sizeof(pieces[0]))];

			memcpy(body + len, p, strlen(p) + 1);
			len += strlen(p) + 1;
		}
		if (rand_r(&seed) % 8 == 0 && len)
			len--;   /* no final NUL */
		if (rand_r(&seed) % 16 == 0)
			for (int k = 0; k < 32; k++)
				body[len++] = (char)rand_r(&seed);
		m.len = (uint32_t)len;
		if (write(fd, &m, sizeof(m)) != sizeof(m) || write(fd, body, len) != (ssize_t)len)
			CHECK_MSG(0, "request %u: write: %s", i, strerror(errno));
		for (;;) {
			struct xsd_sockmsg r;

			if (raw_recv(fd, &r, reply, sizeof(reply)) < 0) {
				/* only a protocol violation closes; none is sent */
				CHECK_MSG(0, "request %u (type %u): no reply", i, m.type);
			}
			if (r.type == XS_WATCH_EVENT)
				continue;
			CHECK_EQ(r.req_id, i);
			CHECK(r.type == m.type || r.type == XS_ERROR);
			break;
		}
	}
	close(fd);
	sim_use_domain_xenstore(e, 0);
	h = xs_open(0);
	CHECK(h);
	CHECK(read_is(h, XBT_NULL, "/local/domain/0/name", "Domain-0"));
	xs_close(h);
	return 0;
}

/* 1: a reply to a read came, 0: the server closed the connection, -1: neither in 5 s */
static int reply_or_eof(int fd)
{
	struct xsd_sockmsg h;
	char body[64];
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (raw_send(fd, XS_READ, 1, 21, "/local/domain/0/name", 21) < 0)
		return errno == EPIPE || errno == ECONNRESET ? 0 : -1;
	if (poll(&p, 1, 5000) != 1)
		return -1;
	return raw_recv(fd, &h, body, sizeof(body)) == 0 && h.type == XS_READ ? 1 : 0;
}

/* Out of file descriptors, the server refuses new clients at once (they see
 * EOF, they do not hang and the loop does not spin) and recovers after. */
static int t_out_of_descriptors(void)
{
	struct inproc srv = { .spare_fds = 6 };
	struct xs_handle *h;
	char path[160];
	int fds[16], served = 0, refused = 0, rc = 0;
	bool ok;

	CHECK(inproc_start(&srv) == 0);
	snprintf(path, sizeof(path), "%s/dom0/xenstored", srv.dir);
	for (int i = 0; i < 16; i++) {
		fds[i] = raw_connect_path(path);
		if (fds[i] < 0)
			rc = -1;
	}
	for (int i = 0; i < 16 && !rc; i++) {
		int r = reply_or_eof(fds[i]);

		if (r < 0)
			rc = -1;
		served += r == 1;
		refused += r == 0;
	}
	for (int i = 0; i < 16; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	/* served again once the clients are gone */
	h = open_as(srv.dir, 0);
	ok = h && read_is(h, XBT_NULL, "/local/domain/0/name", "Domain-0");
	if (h)
		xs_close(h);
	CHECK_EQ(inproc_stop(&srv), 0);
	CHECK_EQ(rc, 0);
	CHECK_MSG(served >= 1 && served <= 8 && refused >= 8, "served %d refused %d", served, refused);
	CHECK_EQ(served + refused, 16);
	CHECK(ok);
	return 0;
}

static const struct gv_test tests[] = {
	TEST(t_read_write_rm_directory), TEST(t_watch_counts), TEST(t_transaction_conflict),
	TEST(t_permissions_between_domains), TEST(t_release_and_introduce_domain),
	TEST(t_relative_watch), TEST(t_debian_tools), TEST(t_malformed_messages),
	TEST(t_limits_and_control), TEST(t_out_of_descriptors),
	TEST(t_pipelined_requests), TEST(t_fuzz_requests), { 0 }
};

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	return gv_test_main(argc, argv, tests);
}
