/*
 * test/test_resize.c: online resize on the simulated Xen. A guest attached
 * through the library keeps its device while dom0 grows the image
 * (ftruncate) and asks gv-backend for a resize (`gv-backend --resize
 * GUEST:DEVID`, and SIGHUP): the library reports the config change (the
 * callback, gv_config_changes, gv_get_info's capacity) and the new last
 * sector can be written and read back, and is in the image. Refused, with
 * nothing changed: a shrunk image, a read-only disk, an unknown device, a
 * malformed request on the control socket; a garbled config-generation or
 * capacity breaks the device with the reason. Every wait is bounded.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <xenstore.h>
#include "check.h"
#include "platform.h"
#include "sim_harness.h"
#include "xs_keys.h"
#include "xs_util.h"
#include "../frontend/grant_virtio.h"

static struct sim_env env;
static pid_t backend = -1;
static char logfile[200], img1[200], img2[200];
static char out[16384];
static int domid_g1, domid_g2;

#define MIB (1u << 20)

static int setup(void)
{
	char d1[260], d2[260];
	int fd;

	CHECK_EQ(sim_start(&env, NULL), 0);
	snprintf(logfile, sizeof(logfile), "%s.backend.log", env.dir);
	snprintf(img1, sizeof(img1), "%s/g1.img", env.dir);
	snprintf(img2, sizeof(img2), "%s/g2.img", env.dir);
	fd = open(img1, O_CREAT | O_RDWR | O_TRUNC, 0644);
	CHECK(fd >= 0 && ftruncate(fd, 4 * MIB) == 0);
	close(fd);
	fd = open(img2, O_CREAT | O_RDWR | O_TRUNC, 0644);
	CHECK(fd >= 0 && ftruncate(fd, 4 * MIB) == 0);
	close(fd);
	snprintf(d1, sizeof(d1), "g1:0=%s", img1);
	snprintf(d2, sizeof(d2), "g2:0=%s,ro", img2);
	backend = spawn_ready("gv-backend", (const char *[]){ "--disk", d1, "--disk", d2, NULL },
	                      logfile, 20);
	CHECK(backend > 0);
	domid_g1 = sim_create_guest(&env, "g1", "2");
	domid_g2 = sim_create_guest(&env, "g2", "2");
	CHECK(domid_g1 > 0 && domid_g2 > 0);
	return 0;
}

static void teardown(void)
{
	stop_daemon(&backend, "gv-backend");
	sim_stop(&env);
	print_log(logfile);
	unlink(logfile);
}

static int attach(int domid, struct gv_device **d)
{
	struct gv_attach_opts o;
	char err[512];

	gv_attach_opts_init(&o);
	o.domid = domid;
	CHECK_MSG(gv_attach(&o, d, err, sizeof(err)) == 0, "attach %d: %s", domid, err);
	return 0;
}

static int grow(const char *path, off_t bytes)
{
	int fd = open(path, O_RDWR);

	CHECK(fd >= 0);
	CHECK(ftruncate(fd, bytes) == 0);
	close(fd);
	return 0;
}

static uint64_t capacity(struct gv_device *d)
{
	struct gv_device_info i;

	gv_get_info(d, &i);
	return i.capacity;
}

/* gv-backend --resize ARG: its exit status, its answer in out */
static int resize_cmd(const char *arg)
{
	return run_prog("gv-backend", (const char *[]){ "--resize", arg, NULL }, NULL, out,
	                sizeof(out), 30);
}

struct seen { unsigned calls; uint64_t capacity; };

static void on_change(struct gv_device *d, void *priv)
{
	struct seen *s = priv;

	s->calls++;
	s->capacity = capacity(d);
}

/* Serves the device until it has seen `changes` config changes, at most 10 s. */
static int wait_changes(struct gv_device *d, unsigned changes)
{
	long long end = gv_now_ms() + 10000;

	while (gv_config_changes(d) < changes && gv_now_ms() < end)
		CHECK(gv_poll(d, 200) >= 0);
	CHECK_MSG(gv_config_changes(d) == changes, "%u config changes seen, %u expected",
	          gv_config_changes(d), changes);
	return 0;
}

/* The last sector: written, read back through the device, and in the image. */
static int last_sector_rw(struct gv_device *d, uint64_t sectors, unsigned seed)
{
	uint8_t w[512], r[512], f[512];
	uint64_t off = (sectors - 1) * 512;
	int fd;

	for (unsigned k = 0; k < sizeof(w); k++)
		w[k] = (uint8_t)(k * 13 + seed);
	CHECK_EQ(gv_blk_write(d, off, w, sizeof(w)), 0);
	CHECK_EQ(gv_blk_flush(d), 0);
	memset(r, 0, sizeof(r));
	CHECK_EQ(gv_blk_read(d, off, r, sizeof(r)), 0);
	CHECK(!memcmp(r, w, sizeof(w)));
	fd = open(img1, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, f, sizeof(f), (off_t)off), (long long)sizeof(f));
	close(fd);
	CHECK_MSG(!memcmp(f, w, sizeof(w)), "sector %llu is not in the image",
	          (unsigned long long)(sectors - 1));
	/* one past the end is still refused */
	CHECK_EQ(gv_blk_read(d, off + 512, r, sizeof(r)), -ENOSPC);
	return 0;
}

/* A request line sent straight to the control socket; the answer in out. */
static int control(const char *line)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t got = 0;
	ssize_t n;
	int fd;

	CHECK(strlen(env.dir) + sizeof("/gv-backend.sock") <= sizeof(sa.sun_path));
	memcpy(sa.sun_path, env.dir, strlen(env.dir));
	strcat(sa.sun_path, "/gv-backend.sock");
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &(struct timeval){ 10, 0 }, sizeof(struct timeval));
	CHECK(write(fd, line, strlen(line)) == (ssize_t)strlen(line));
	while ((n = read(fd, out + got, sizeof(out) - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = 0;
	close(fd);
	CHECK(n == 0);
	return 0;
}

static int t_resize_grow(void)
{
	struct gv_device *d;
	struct seen s = { 0 };

	CHECK_EQ(attach(domid_g1, &d), 0);
	gv_set_config_callback(d, on_change, &s);
	CHECK_EQ(capacity(d), 4 * 2048);
	CHECK_EQ(last_sector_rw(d, 4 * 2048, 1), 0);
	/* grown under the connected guest, then announced */
	CHECK_EQ(grow(img1, 12 * MIB), 0);
	CHECK_MSG(resize_cmd("g1:0") == 0 && strstr(out, "resized from 8192 to 24576 sectors"),
	          "gv-backend --resize g1:0:\n%s", out);
	CHECK_EQ(wait_changes(d, 1), 0);
	CHECK_EQ(s.calls, 1);
	CHECK_EQ(s.capacity, 12 * 2048);
	CHECK_EQ(capacity(d), 12 * 2048);
	CHECK_EQ(last_sector_rw(d, 12 * 2048, 2), 0);
	/* by domain id this time: nothing changed, nothing raised */
	{
		char arg[32];

		snprintf(arg, sizeof(arg), "%d:0", domid_g1);
		CHECK_MSG(resize_cmd(arg) == 0 && strstr(out, "unchanged, 24576 sectors"),
		          "gv-backend --resize %s:\n%s", arg, out);
	}
	/* SIGHUP looks at every disk again */
	CHECK_EQ(grow(img1, 16 * MIB), 0);
	CHECK_EQ(kill(backend, SIGHUP), 0);
	CHECK_EQ(wait_changes(d, 2), 0);
	CHECK_EQ(s.calls, 2);
	CHECK_EQ(capacity(d), 16 * 2048);
	CHECK_EQ(last_sector_rw(d, 16 * 2048, 3), 0);
	/* the device serves on, and detaches cleanly */
	CHECK(!gv_device_broken(d));
	CHECK_EQ(gv_detach(d), 0);
	/* a new attach reads the grown size from the start */
	CHECK_EQ(attach(domid_g1, &d), 0);
	CHECK_EQ(capacity(d), 16 * 2048);
	CHECK_EQ(gv_config_changes(d), 0);
	CHECK_EQ(gv_detach(d), 0);
	return 0;
}

static int t_resize_refused(void)
{
	struct gv_device *d, *ro;

	CHECK_EQ(attach(domid_g1, &d), 0);
	CHECK_EQ(attach(domid_g2, &ro), 0);
	/* shrunk: refused, the guest keeps its size */
	CHECK_EQ(grow(img1, 2 * MIB), 0);
	CHECK_MSG(resize_cmd("g1:0") == 1 && strstr(out, "error: ") &&
	          strstr(out, "shrank from 8192 to 4096 sectors: shrinking is refused"),
	          "gv-backend --resize g1:0 of a shrunk image:\n%s", out);
	/* a read-only disk grown: refused, with the reason */
	CHECK_EQ(grow(img2, 8 * MIB), 0);
	CHECK_MSG(resize_cmd("g2:0") == 1 && strstr(out, "read-only disk"),
	          "gv-backend --resize g2:0 (read-only):\n%s", out);
	/* no such device, a malformed argument */
	CHECK_MSG(resize_cmd("nosuch:3") == 1 && strstr(out, "no device 3 of guest nosuch"),
	          "gv-backend --resize nosuch:3:\n%s", out);
	CHECK_MSG(resize_cmd("g1") == 1 && strstr(out, "expected GUEST:DEVID"),
	          "gv-backend --resize g1:\n%s", out);
	CHECK_MSG(resize_cmd("g1:x") == 1 && strstr(out, "expected GUEST:DEVID"),
	          "gv-backend --resize g1:x:\n%s", out);
	/* straight to the socket: extra words, and a misspelt request */
	CHECK_EQ(control("resize g1 0 more\n"), 0);
	CHECK_MSG(!strncmp(out, "error: resize takes no argument", 31), "answer: %s", out);
	CHECK_EQ(control("resized\n"), 0);
	CHECK_MSG(!strncmp(out, "error: unknown request 'resized'", 32), "answer: %s", out);
	/* every disk: the shrink is an error, the read-only disk a note */
	CHECK_MSG(resize_cmd("all") == 1 && strstr(out, "error: guest g1") &&
	          strstr(out, "read-only disk") && !strstr(out, "error: guest g2"),
	          "gv-backend --resize all:\n%s", out);
	/* nothing changed for either guest */
	CHECK_EQ(gv_poll(d, 100) >= 0, 1);
	CHECK_EQ(gv_poll(ro, 100) >= 0, 1);
	CHECK_EQ(gv_config_changes(d), 0);
	CHECK_EQ(gv_config_changes(ro), 0);
	CHECK_EQ(capacity(d), 4 * 2048);
	CHECK_EQ(capacity(ro), 4 * 2048);
	/* the first sectors still serve */
	{
		uint8_t b[4096] = { 7 }, r[4096];

		CHECK_EQ(gv_blk_write(d, 0, b, sizeof(b)), 0);
		CHECK_EQ(gv_blk_read(d, 0, r, sizeof(r)), 0);
		CHECK(!memcmp(b, r, sizeof(b)));
	}
	CHECK(!gv_device_broken(d) && !gv_device_broken(ro));
	CHECK_EQ(gv_detach(d), 0);
	CHECK_EQ(gv_detach(ro), 0);
	/* the read-only disk's new size is what its next attach sees */
	CHECK_EQ(attach(domid_g2, &ro), 0);
	CHECK_EQ(capacity(ro), 8 * 2048);
	CHECK_EQ(gv_detach(ro), 0);
	CHECK_EQ(kill(backend, 0), 0);
	return 0;
}

/* What a backend writes is hostile input too: a garbled config-generation,
 * or a change announced without a readable capacity, breaks the device with
 * the reason (its configuration can no longer be trusted), no crash, and
 * the detach still ends every grant. Written here as dom0 under the real
 * backend's feet. */
static int hostile_change(const char *gen, bool drop_capacity, const char *want)
{
	struct gv_platform *p = sim_open_domain(0);
	struct xs_handle *xs = p ? gv_xs_open(p) : NULL;
	struct gv_device *d;
	struct gv_stats after;
	char be[128];
	long long end;
	int rc = 0;

	CHECK(xs);
	snprintf(be, sizeof(be), GV_XS_BACKEND_DIR_FMT, 0u, (unsigned)domid_g1, 0u);
	CHECK_EQ(attach(domid_g1, &d), 0);
	if (drop_capacity)
		CHECK_EQ(gv_xs_rm(xs, XBT_NULL, be, GV_XS_CFG_CAPACITY), 0);
	CHECK_EQ(gv_xs_write_str(xs, XBT_NULL, be, GV_XS_CFG_GENERATION, gen), 0);
	end = gv_now_ms() + 10000;
	while (!gv_device_broken(d) && gv_now_ms() < end)
		gv_poll(d, 200);
	if (!gv_device_broken(d) || !strstr(gv_device_error(d), want)) {
		printf("device broken %d, error '%s', expected '%s'\n", gv_device_broken(d),
		       gv_device_error(d), want);
		rc = -1;
	}
	CHECK_EQ(gv_detach_stats(d, &after), 0);
	CHECK_EQ(after.platform.grants_active, 0);
	xs_close(xs);
	gv_platform_close(p);
	CHECK_EQ(rc, 0);
	CHECK_EQ(kill(backend, 0), 0);
	return 0;
}

static int t_resize_hostile_keys(void)
{
	CHECK_EQ(hostile_change("7x", false, "config-generation is malformed"), 0);
	CHECK_EQ(hostile_change("9", true, "config change whose keys cannot be read"), 0);
	return 0;
}


static const struct gv_test tests[] = {
	TEST_WITH(t_resize_grow, setup, teardown),
	TEST_WITH(t_resize_refused, setup, teardown),
	TEST_WITH(t_resize_hostile_keys, setup, teardown),
	{ 0 }
};

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	return gv_test_main(argc, argv, tests);
}
