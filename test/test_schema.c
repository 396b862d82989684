/*
 * test/test_schema.c: gv-schema against a live simulated xenstore. gv-simxen,
 * gv-backend with a disk and gv-xl create examples/guest.cfg; the store must
 * be clean at InitWait, at Connected (a frontend attached in this process
 * through frontend/grant_virtio.h), after detach (Closed, then InitWait
 * again) and after destroy; then each kind of corruption (malformed value,
 * wrong permissions, unknown key, missing key) must be reported with its
 * path and rule and exit status 1, and clean again once undone. Also: the
 * committed table xenstore-schema/README.md is what xenstore-schema/gen.sh
 * makes of virtio.tsv, and gen.sh refuses a malformed schema with FILE:LINE
 * and exit status 2 (the build then stops).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>
#include "check.h"
#include "sim_harness.h"
#include "platform.h"
#include "../frontend/grant_virtio.h"
#include "xs_util.h"

#define OUT_MAX 32768

/* CHECK_MSG that also prints its message at once: the outer CHECK of a
 * helper overwrites check.c's one failure line, the log keeps this. */
#define CHECK_SAY(cond, ...) do { \
	if (!(cond)) { printf(__VA_ARGS__); putchar('\n'); CHECK_MSG(0, __VA_ARGS__); } \
} while (0)

static struct sim_env env;
static pid_t backend = -1;
static struct gv_platform *dom0;
static struct xs_handle *xs0;
static char logfile[200];
static char out[OUT_MAX];

static const char *top(void)
{
	static char buf[150];

	snprintf(buf, sizeof(buf), "%s/..", gv_build_dir());
	return buf;
}

/* Waits, driven by a xenstore watch, until path reads want; at most ms. */
static bool wait_value(const char *path, const char *want, int ms)
{
	return xs_wait_key(xs0, path, NULL, want, ms);
}

/* Runs gv-schema with args; its output in `out`; returns its exit status. */
static int gv_schema(const char *const *args)
{
	out[0] = 0;
	return run_prog("gv-schema", args, NULL, out, sizeof(out), 10);
}

static int check_store(void)
{
	const char *args[] = { "check", NULL };

	return gv_schema(args);
}

/* Number of violation lines (they start with the path). */
static unsigned violations(void)
{
	unsigned n = out[0] == '/';

	for (const char *l = strchr(out, '\n'); l; l = strchr(l + 1, '\n'))
		n += l[1] == '/';
	return n;
}

static bool write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return false;
	fputs(text, f);
	return fclose(f) == 0;
}

static char *read_all(FILE *f, size_t *n)
{
	char *buf = malloc(OUT_MAX);

	*n = buf ? fread(buf, 1, OUT_MAX - 1, f) : 0;
	if (buf)
		buf[*n] = 0;
	return buf;
}

static pid_t start_backend(const char *cfgfile)
{
	return spawn_ready("gv-backend", (const char *[]){ "--config", cfgfile, NULL }, logfile, 10);
}

static int setup(void)
{
	char disk[200], cfgfile[200], text[400];
	int fd;

	CHECK_EQ(sim_start(&env, NULL), 0);
	snprintf(disk, sizeof(disk), "%s/disk.img", env.dir);
	snprintf(cfgfile, sizeof(cfgfile), "%s/backend.conf", env.dir);
	snprintf(logfile, sizeof(logfile), "%s.backend.log", env.dir);
	fd = open(disk, O_CREAT | O_RDWR, 0644);
	CHECK(fd >= 0);
	CHECK_EQ(ftruncate(fd, 1 << 20), 0);
	close(fd);
	snprintf(text, sizeof(text), "disk guest1:0 %s\n", disk);
	CHECK(write_file(cfgfile, text));
	CHECK((dom0 = sim_open_domain(0)));
	xs0 = gv_xs_open(dom0);
	CHECK(xs0);
	backend = start_backend(cfgfile);
	CHECK(backend > 0);
	return 0;
}

static void teardown(void)
{
	stop_daemon(&backend, "gv-backend");
	if (xs0)
		xs_close(xs0);
	xs0 = NULL;
	if (dom0)
		gv_platform_close(dom0);
	dom0 = NULL;
	sim_stop(&env);
	print_log(logfile);
	unlink(logfile);
}

/* ---- doc and schema parsing -------------------------------------------------- */

/* Runs `sh xenstore-schema/gen.sh mode file` into out (stdout, then
 * stderr); returns its exit status, -1 if it could not run. */
static int gen(const char *mode, const char *file)
{
	char cmd[600];
	size_t n;
	char *text;
	FILE *p;
	int rc;

	snprintf(cmd, sizeof(cmd), "sh '%s/xenstore-schema/gen.sh' %s '%s' 2>&1", top(), mode, file);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	text = read_all(p, &n);
	rc = pclose(p);
	snprintf(out, sizeof(out), "%s", text ? text : "");
	free(text);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The committed table is what the generator makes of the committed schema
 * (else: make schema-doc). */
static int t_doc_is_generated(void)
{
	char path[200];
	size_t n;
	char *want;
	FILE *f;

	snprintf(path, sizeof(path), "%s/xenstore-schema/README.md", top());
	f = fopen(path, "r");
	CHECK(f);
	want = read_all(f, &n);
	fclose(f);
	CHECK(want && n > 1000);
	snprintf(path, sizeof(path), "%s/xenstore-schema/virtio.tsv", top());
	CHECK_EQ(gen("doc", path), 0);
	CHECK_MSG(!strcmp(out, want), "xenstore-schema/README.md is not what gen.sh doc makes "
	          "of virtio.tsv (run make schema-doc):\n%s\n----\n%s", out, want);
	free(want);
	/* the table itself: one row per key, the queue keys with <n> */
	CHECK(strstr(out, "| FE | `queue-<n>/desc-refs` | frontend | nFE,rBE | ref-list |"));
	/* and the rules gv-schema is built with: one row per key, perms resolved */
	CHECK_EQ(gen("rules", path), 0);
	CHECK(strstr(out, "{ DIR_DOM, \"name\", W_TOOLSTACK, { { SIDE_ID, 0, 0 }, "
	                  "{ SIDE_FE, 0, 1 } }, 2, F_STRING, WHEN_CREATE, DEV_ALL },"));
	CHECK(strstr(out, "{ DIR_FE, \"queue-<n>/size\", W_FRONTEND, { { SIDE_FE, 0, 0 }, "
	                  "{ SIDE_BE, 0, 1 } }, 2, F_UINT, XenbusStateInitialised, DEV_ALL },"));
	return 0;
}

/* One malformed schema line: gen.sh exits 2 naming file:line and why, and
 * prints nothing on stdout (the build's header stays untouched). */
static int bad_schema(const char *file, const char *text, const char *mode, const char *why)
{
	char want[300];

	CHECK(write_file(file, text));
	CHECK_EQ(gen(mode, file), 2);
	snprintf(want, sizeof(want), "%s:%s", file, why);
	CHECK_MSG(!strncmp(out, want, strlen(want)) && !strchr(out, '{') && !strstr(out, "#define"),
	          "expected only '%s...', got: %s", want, out);
	return 0;
}

static int t_bad_schema_and_usage(void)
{
	char file[] = "/tmp/gv-schema-test-XXXXXX";
	const char *bad_cmd[] = { "frobnicate", NULL };
	const char *bad_dom[] = { "check", "--backend-domid", "x1", NULL };
	const char *old_opt[] = { "check", "--schema", "virtio.tsv", NULL };
	int fd = mkstemp(file), rc;

	CHECK(fd >= 0);
	close(fd);
	rc = bad_schema(file, "# a schema\n"
	                "BE\tstate\tbackend\tnBE,rFE\tstate\tany\tall\tGV_XS_STATE\tstate\n"
	                "BE\tonline\ttoolstack\tnBE,rFE\tbool\tcreate\tall\tGV_XS_ONLINE\n",
	                "rules", "3: expected 9 tab-separated fields, found 8");
	rc = rc ? rc : bad_schema(file, "\n"
	                "BE\tstate\tbackend\tnXX,rFE\tstate\tany\tall\tGV_XS_STATE\tstate\n",
	                "header", "2: perms 'nXX,rFE'");
	rc = rc ? rc : bad_schema(file,
	                "BE\tstate\tbackend\tnBE,rFE\tstate\tany\tall\tGV_XS_STATE\tstate\n"
	                "#\n"
	                "BE\tstate\tbackend\tnBE,rFE\tuint\tany\tall\tGV_XS_STATE2\tstate\n",
	                "doc", "3: key BE state already defined on line 1");
	rc = rc ? rc : bad_schema(file,
	                "FE\tqueue-<n>/size\tfrontend\tnFE,rBE\tuint\tInitialised\tall\tGV_XS_Q\tx\n",
	                "rules", "1: cname 'GV_XS_Q'");
	rc = rc ? rc : bad_schema(file,
	                "BE\tonline\tbackend\tnBE,rFE\tbool\tcreate\tall\tGV_XS_ONLINE\tx\n",
	                "rules", "1: when 'create' goes with writer toolstack");
	unlink(file);
	CHECK_EQ(rc, 0);
	CHECK_EQ(gv_schema(bad_cmd), 2);
	CHECK(strstr(out, "unknown command 'frobnicate'"));
	CHECK_EQ(gv_schema(bad_dom), 2);
	CHECK(strstr(out, "--backend-domid x1"));
	/* the schema is built in: no file to name */
	CHECK_EQ(gv_schema(old_opt), 2);
	CHECK(strstr(out, "unexpected argument '--schema'"));
	return 0;
}

/* The one decoder of a virtio device's xenstore type (common/xs_util.c),
 * which the frontend, the backend, gv-xl and gv-schema share. */
static int t_virtio_type_parse(void)
{
	static const struct { const char *type; int rc; uint32_t id; } cases[] = {
		{ "virtio,device2", 0, 2 },       /* block */
		{ "virtio,device4", 0, 4 },       /* entropy */
		{ "virtio,device22", 0, 0x22 },   /* i2c (34), as libxl's docs spell it */
		{ "virtio,device29", 0, 0x29 },   /* gpio (41) */
		{ "virtio,deviceffffffff", 0, 0xffffffff },
		{ "virtio,device", -EINVAL, 0 },
		{ "virtio,device0", -EINVAL, 0 },      /* reserved */
		{ "virtio,device02", -EINVAL, 0 },     /* leading zero: a second spelling */
		{ "virtio,device1A", -EINVAL, 0 },     /* lower case only */
		{ "virtio,device2 ", -EINVAL, 0 },
		{ "virtio,device100000000", -EINVAL, 0 },
		{ "virtio,devicex", -EINVAL, 0 },
		{ "virtio,mmio", -EINVAL, 0 },
		{ "Virtio,device2", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t id = 7;
		int rc = gv_virtio_type_parse(cases[i].type, &id);

		CHECK_MSG(rc == cases[i].rc, "'%s': rc %d, want %d", cases[i].type, rc, cases[i].rc);
		CHECK_MSG(id == (rc ? 7 : cases[i].id), "'%s': id %u", cases[i].type, id);
	}
	return 0;
}

/* ---- a live store through its states ------------------------------------------ */

static int expect_clean(const char *when, unsigned devices)
{
	char want[64];
	int rc = check_store();

	snprintf(want, sizeof(want), ": %u device%s of backend domain 0 checked", devices,
	         devices == 1 ? "" : "s");
	CHECK_SAY(rc == 0 && violations() == 0 && strstr(out, "clean"),
	          "%s: exit %d, expected a clean store:\n%s", when, rc, out);
	CHECK_SAY(strstr(out, want), "%s: no '%s' in: %s", when, want, out);
	return 0;
}

/* Exactly one violation, at path with rule; exit status 1. */
static int expect_one(const char *path, const char *rule)
{
	char want[512];
	int rc = check_store();

	snprintf(want, sizeof(want), "%s: %s", path, rule);
	CHECK_SAY(rc == 1, "exit %d, expected 1 for %s:\n%s", rc, want, out);
	CHECK_SAY(violations() == 1 && !strncmp(out, want, strlen(want)),
	          "expected only '%s...', got:\n%s", want, out);
	return 0;
}

static int set(const char *path, const char *val)
{
	CHECK(xs_write(xs0, XBT_NULL, path, val, strlen(val)));
	return 0;
}

static int states_and_corruptions(void)
{
	char cfg[200], bdir[128], fdir[128], path[200], saved[64], want[200];
	const char *create[] = { "create", cfg, NULL };
	const char *destroy[] = { "destroy", "guest1", NULL };
	struct gv_attach_opts o;
	struct gv_device *dev;
	struct xs_permissions perm_fe[1], perm_ok[2];
	unsigned fe;
	int rc;

	snprintf(cfg, sizeof(cfg), "%s/examples/guest.cfg", top());
	CHECK_EQ(run_prog("gv-xl", create, NULL, out, sizeof(out), 10), 0);
	fe = (unsigned)atoi(out);
	CHECK(fe > 0);
	snprintf(bdir, sizeof(bdir), "/local/domain/0/backend/virtio/%u/0", fe);
	snprintf(fdir, sizeof(fdir), "/local/domain/%u/device/virtio/0", fe);

	/* InitWait: both devices published by the backend */
	snprintf(path, sizeof(path), "%s/state", bdir);
	CHECK(wait_value(path, "2", 10000));
	snprintf(path, sizeof(path), "/local/domain/0/backend/virtio/%u/1/state", fe);
	CHECK(wait_value(path, "2", 10000));
	CHECK_EQ(expect_clean("InitWait", 2), 0);

	/* Connected: a frontend attached in this process */
	gv_attach_opts_init(&o);
	o.platform = GV_PLATFORM_SIM;
	o.domid = (int)fe;
	o.devid = 0;
	o.dma = "grant";
	rc = gv_attach(&o, &dev, path, sizeof(path));
	CHECK_MSG(rc == 0, "gv_attach: %s", path);
	snprintf(path, sizeof(path), "%s/state", bdir);
	if (!wait_value(path, "4", 10000)) {
		gv_detach(dev);
		CHECK_MSG(0, "backend not Connected");
	}
	rc = expect_clean("Connected", 2);
	/* an FE key the pair depends on goes missing while connected */
	if (rc == 0) {
		snprintf(path, sizeof(path), "%s/queue-0/used-refs", fdir);
		xs_rm(xs0, XBT_NULL, path);
		snprintf(want, sizeof(want), "required: written by the frontend in state "
		         "Initialised, its state is Connected (found: nothing)");
		rc = expect_one(path, want);
	}
	gv_detach(dev);
	CHECK_EQ(rc, 0);

	/* detach: BE Closed, then InitWait again; FE Closed keeps its old keys
	 * (minus the one removed above, which is not required once Closed) */
	snprintf(path, sizeof(path), "%s/state", bdir);
	CHECK(wait_value(path, "2", 10000));
	snprintf(path, sizeof(path), "%s/state", fdir);
	CHECK(wait_value(path, "6", 10000));
	CHECK_EQ(expect_clean("after detach", 2), 0);

	/* a malformed value */
	snprintf(path, sizeof(path), "%s/features", bdir);
	{
		char *v = xs_read(xs0, XBT_NULL, path, NULL);

		CHECK(v);
		snprintf(saved, sizeof(saved), "%s", v);
		free(v);
	}
	CHECK_EQ(set(path, "banana"), 0);
	CHECK_EQ(expect_one(path, "format hex64: 0x and 1 to 16 hex digits (found: \"banana\")"), 0);
	CHECK_EQ(set(path, "328"), 0);       /* a number, but not hex64 */
	CHECK_EQ(expect_one(path, "format hex64"), 0);
	CHECK_EQ(set(path, saved), 0);
	CHECK_EQ(expect_clean("features restored", 2), 0);

	/* wrong permissions: the guest made owner of a backend key */
	snprintf(path, sizeof(path), "%s/type", bdir);
	perm_fe[0].id = fe;
	perm_fe[0].perms = XS_PERM_NONE;
	CHECK(xs_set_permissions(xs0, XBT_NULL, path, perm_fe, 1));
	snprintf(want, sizeof(want), "permissions must be nBE,rFE = n0,r%u (found: \"n%u\")", fe, fe);
	CHECK_EQ(expect_one(path, want), 0);
	perm_ok[0].id = 0;
	perm_ok[0].perms = XS_PERM_NONE;
	perm_ok[1].id = fe;
	perm_ok[1].perms = XS_PERM_READ;
	CHECK(xs_set_permissions(xs0, XBT_NULL, path, perm_ok, 2));
	CHECK_EQ(expect_clean("perms restored", 2), 0);

	/* an unknown key, and a blk key on the rng device */
	snprintf(path, sizeof(path), "%s/bogus", bdir);
	CHECK_EQ(set(path, "x"), 0);
	CHECK_EQ(expect_one(path, "unknown key: not in the schema for BE"), 0);
	CHECK(xs_rm(xs0, XBT_NULL, path));
	snprintf(path, sizeof(path), "/local/domain/0/backend/virtio/%u/1/config/capacity", fe);
	CHECK_EQ(set(path, "8"), 0);
	CHECK_EQ(expect_one(path, "key for another device type"), 0);
	snprintf(path, sizeof(path), "/local/domain/0/backend/virtio/%u/1/config", fe);
	CHECK(xs_rm(xs0, XBT_NULL, path));
	CHECK_EQ(expect_clean("unknown keys removed", 2), 0);

	/* a missing required key */
	snprintf(path, sizeof(path), "%s/max-queue-size", bdir);
	{
		char *v = xs_read(xs0, XBT_NULL, path, NULL);

		CHECK(v);
		snprintf(saved, sizeof(saved), "%s", v);
		free(v);
	}
	CHECK(xs_rm(xs0, XBT_NULL, path));
	CHECK_EQ(expect_one(path, "required: written by the backend in state InitWait, "
	                    "its state is InitWait (found: nothing)"), 0);
	CHECK_EQ(set(path, saved), 0);
	CHECK_EQ(expect_clean("max-queue-size restored", 2), 0);

	/* a frontend path that does not point back */
	snprintf(path, sizeof(path), "%s/frontend", bdir);
	CHECK_EQ(set(path, "/local/domain/9/device/virtio/0"), 0);
	snprintf(want, sizeof(want), "must name the FE directory %s", fdir);
	CHECK_EQ(expect_one(path, want), 0);
	CHECK_EQ(set(path, fdir), 0);
	CHECK_EQ(expect_clean("frontend restored", 2), 0);

	/* destroy: nothing left to check */
	CHECK_EQ(run_prog("gv-xl", destroy, NULL, out, sizeof(out), 10), 0);
	CHECK_EQ(expect_clean("after destroy", 0), 0);
	return 0;
}

static int t_live_store(void)
{
	int rc = setup();

	if (rc == 0)
		rc = states_and_corruptions();
	teardown();
	return rc;
}

static const struct gv_test tests[] = {
	TEST(t_doc_is_generated),
	TEST(t_bad_schema_and_usage),
	TEST(t_virtio_type_parse),
	TEST(t_live_store),
	{ 0 },
};

int main(int argc, char **argv)
{
	return gv_test_main(argc, argv, tests);
}
