/*
 * test/test_nbd.c: NBD disks. qemu-nbd (Debian's qemu-utils) serves a qcow2
 * image over a Unix socket to gv-backend (libnbd) and a guest uses it
 * through the library: gv-frontend's verified random I/O; data written and
 * flushed is in the image even when qemu-nbd is then SIGKILLed (qemu-img
 * check clean, the data read back by qemu-img convert); the server killed
 * with requests in flight gives request errors, no crash, and another disk
 * of the same daemon goes on; bad URIs and an unreachable server are clear
 * --check-config errors. Every wait is bounded.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <xenstore.h>
#include "abi.h"
#include "check.h"
#include "platform.h"
#include "xs_keys.h"
#include "xs_util.h"
#include "sim_harness.h"
#include "../frontend/grant_virtio.h"

static struct sim_env env;
static pid_t backend = -1, nbd_server = -1;
static char logfile[200], qcow[200], sock[200], raw2[200], cfg[200];
static char out[16384];
static int domid_g1, domid_g2;

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Runs a system program (PATH), output into out; exit status, or -1 (a
 * signal, or killed after timeout_s). */
static int run_sys(const char *const *argv, int timeout_s)
{
	int pfd[2], status = -1;
	size_t got = 0;
	double end = mono_ms() + timeout_s * 1000.0;
	pid_t pid;

	out[0] = 0;
	if (pipe(pfd) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		close(pfd[0]);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		struct pollfd p = { pfd[0], POLLIN, 0 };
		double left = end - mono_ms();
		ssize_t n;

		if (left <= 0) {
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&p, 1, (int)left + 1) <= 0)
			continue;
		n = read(pfd[0], out + got, sizeof(out) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == sizeof(out) - 1)
			got = 0;        /* keep the tail */
	}
	out[got] = 0;
	close(pfd[0]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* qemu-nbd serving qcow as export "disk" on sock; waits (10 s at most)
 * until the socket accepts. */
static int start_qemu_nbd(void)
{
	double end = mono_ms() + 10000;
	char log[260];

	unlink(sock);
	snprintf(log, sizeof(log), "%s.qemu-nbd.log", env.dir);
	nbd_server = fork();
	CHECK(nbd_server >= 0);
	if (nbd_server == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		/* -t: stays for the next client; -e: clients at once */
		execlp("qemu-nbd", "qemu-nbd", "-f", "qcow2", "-k", sock, "-x", "disk", "-t",
		       "-e", "8", "--cache=writeback", qcow, (char *)NULL);
		_exit(127);
	}
	while (mono_ms() < end) {
		struct stat st;
		int status;

		if (stat(sock, &st) == 0)
			return 0;
		CHECK_MSG(waitpid(nbd_server, &status, WNOHANG) == 0, "qemu-nbd exited (see %s)", log);
		poll(NULL, 0, 20);      /* polling for a file another process creates */
	}
	CHECK_MSG(0, "qemu-nbd did not create %s within 10 s", sock);
	return -1;
}

static void kill_qemu_nbd(void)
{
	if (nbd_server > 0) {
		kill(nbd_server, SIGKILL);
		waitpid(nbd_server, NULL, 0);
	}
	nbd_server = -1;
}

static int setup(void)
{
	char config[800];
	int fd;

	CHECK_EQ(sim_start(&env, NULL), 0);
	snprintf(logfile, sizeof(logfile), "%s.backend.log", env.dir);
	snprintf(qcow, sizeof(qcow), "%s/g1.qcow2", env.dir);
	snprintf(sock, sizeof(sock), "%s/nbd.sock", env.dir);
	snprintf(raw2, sizeof(raw2), "%s/g2.img", env.dir);
	snprintf(cfg, sizeof(cfg), "%s/backend.conf", env.dir);
	CHECK_EQ(run_sys((const char *[]){ "qemu-img", "create", "-q", "-f", "qcow2", qcow, "32M",
	                                    NULL }, 60), 0);
	fd = open(raw2, O_CREAT | O_RDWR | O_TRUNC, 0644);
	CHECK(fd >= 0 && ftruncate(fd, 16 << 20) == 0);
	close(fd);
	CHECK_EQ(start_qemu_nbd(), 0);
	snprintf(config, sizeof(config), "disk g1:0 nbd+unix:///disk?socket=%s\ndisk g2:0 %s\n",
	         sock, raw2);
	{
		FILE *f = fopen(cfg, "w");

		CHECK(f);
		fputs(config, f);
		fclose(f);
	}
	backend = spawn_ready("gv-backend", (const char *[]){ "--config", cfg, NULL }, logfile, 20);
	CHECK(backend > 0);
	domid_g1 = sim_create_guest(&env, "g1", "2");
	domid_g2 = sim_create_guest(&env, "g2", "2");
	CHECK(domid_g1 > 0 && domid_g2 > 0);
	return 0;
}

static void teardown(void)
{
	stop_daemon(&backend, "gv-backend");
	kill_qemu_nbd();
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
	o.io_timeout_ms = 20000;
	CHECK_MSG(gv_attach(&o, d, err, sizeof(err)) == 0, "attach %d: %s", domid, err);
	return 0;
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t k = 0; k < n; k++)
		b[k] = (uint8_t)(k * 7 + seed + k / 512);
}

/* gv-frontend's verified random I/O, then data + flush that must be in the
 * image though qemu-nbd is killed right after: qemu-img check is clean and
 * the bytes are there. Discard and write-zeroes reach the server too. */
static int t_nbd_verify_flush_check(void)
{
	enum { MB = 1 << 20 };
	static uint8_t wbuf[MB], rbuf[MB];
	char dom[16], raw[260];
	struct gv_device *d;
	struct gv_device_info info;
	int fd, rc;
	snprintf(dom, sizeof(dom), "%d", domid_g1);
	rc = run_prog("gv-frontend", (const char *[]){ "--domid", dom, "verify", "--size", "8M",
	                                              "--random", "--seed", "3", NULL },
	              NULL, out, sizeof(out), 240);
	CHECK_MSG(rc == 0 && strstr(out, "verify: OK") && strstr(out, " 0 mismatches"),
	          "gv-frontend verify: exit %d:\n%s", rc, out);
	CHECK_EQ(attach(domid_g1, &d), 0);
	gv_get_info(d, &info);
	CHECK_EQ(info.capacity, 32u * 2048);
	/* an online resize of an NBD disk is answered with why not */
	rc = run_prog("gv-backend", (const char *[]){ "--resize", "g1:0", NULL }, NULL, out,
	              sizeof(out), 30);
	CHECK_MSG(rc == 1 && strstr(out, "NBD disk: its size (65536 sectors)"),
	          "gv-backend --resize g1:0: exit %d:\n%s", rc, out);
	/* --status names the NBD engine for the connected NBD disk, io_uring
	 * (or synchronous) for the file disk that is not connected */
	rc = run_prog("gv-backend", (const char *[]){ "--status", NULL }, NULL, out, sizeof(out), 30);
	CHECK_MSG(rc == 0 && strstr(out, "    io: nbd (libnbd") && !strstr(out, "io: synchronous"),
	          "gv-backend --status: exit %d:\n%s", rc, out);
	rc = run_prog("gv-backend", (const char *[]){ "--status", "--json", NULL }, NULL, out,
	              sizeof(out), 30);
	CHECK_MSG(rc == 0 && strstr(out, "\"io\": \"nbd\"") && !strstr(out, "\"synchronous\"") &&
	          strstr(out, "\"capacity_sectors\": 65536"),
	          "gv-backend --status --json: exit %d:\n%s", rc, out);
	CHECK(info.driver_features & (1ULL << VIRTIO_BLK_F_FLUSH));
	CHECK(info.driver_features & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES));
	fill(wbuf, MB, 11);
	CHECK_EQ(gv_blk_write(d, 20 * MB, wbuf, MB), 0);
	CHECK_EQ(gv_blk_write_zeroes(d, 20 * MB + 4096, 8192, false), 0);
	memset(wbuf + 4096, 0, 8192);
	if (info.driver_features & (1ULL << VIRTIO_BLK_F_DISCARD))
		CHECK_EQ(gv_blk_discard(d, 24 * MB, MB), 0);
	CHECK_EQ(gv_blk_read(d, 20 * MB, rbuf, MB), 0);
	CHECK(!memcmp(rbuf, wbuf, MB));
	CHECK_EQ(gv_blk_flush(d), 0);
	/* no chance for qemu-nbd to write anything more of its own */
	kill_qemu_nbd();
	gv_detach(d);
	rc = run_sys((const char *[]){ "qemu-img", "check", qcow, NULL }, 120);
	CHECK_MSG(rc == 0 && strstr(out, "No errors were found"), "qemu-img check: %d\n%s", rc, out);
	snprintf(raw, sizeof(raw), "%s/back.raw", env.dir);
	CHECK_EQ(run_sys((const char *[]){ "qemu-img", "convert", "-O", "raw", qcow, raw, NULL }, 120),
	         0);
	fd = open(raw, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, rbuf, MB, 20 * MB), MB);
	close(fd);
	CHECK_MSG(!memcmp(rbuf, wbuf, MB), "the image lacks what was flushed");
	return 0;
}

struct probe { unsigned done, ok, eio, other; };

static void probe_done(struct gv_blk_io *io)
{
	struct probe *p = io->priv;

	p->done++;
	if (!io->result)
		p->ok++;
	else if (io->result == -EIO)
		p->eio++;
	else
		p->other++;
}

/* qemu-nbd killed with the guest's requests in flight: they end (OK or
 * -EIO), later ones fail with -EIO, the daemon lives and its other disk
 * serves; every wait bounded. */
static int t_nbd_server_killed(void)
{
	enum { NIO = 48, LEN = 65536 };
	static uint8_t bufs[NIO][LEN], back[LEN];
	struct gv_blk_io io[NIO];
	struct probe pr = { 0 };
	struct gv_device *d1, *d2;
	double end;
	CHECK_EQ(attach(domid_g1, &d1), 0);
	CHECK_EQ(attach(domid_g2, &d2), 0);
	for (int i = 0; i < NIO; i++) {
		fill(bufs[i], LEN, (unsigned)i);
		memset(&io[i], 0, sizeof(io[i]));
		io[i].op = i % 2 ? GV_BLK_WRITE : GV_BLK_READ;
		io[i].sector = (uint64_t)i * (LEN / 512);
		io[i].buf = bufs[i];
		io[i].len = LEN;
		io[i].done = probe_done;
		io[i].priv = &pr;
		CHECK_EQ(gv_blk_submit(d1, &io[i]), 0);
	}
	/* a quarter done: the rest is in flight at the server or queued */
	end = mono_ms() + 30000;
	while (pr.done < NIO / 4 && mono_ms() < end)
		CHECK(gv_poll(d1, 1000) >= 0);
	CHECK_MSG(pr.done >= NIO / 4 && pr.ok == pr.done, "%u done, %u OK", pr.done, pr.ok);
	kill_qemu_nbd();
	end = mono_ms() + 30000;
	while (pr.done < NIO && mono_ms() < end)
		if (gv_poll(d1, 1000) < 0)
			break;
	CHECK_MSG(pr.done == NIO, "%u of %u requests ended", pr.done, (unsigned)NIO);
	CHECK_EQ(pr.other, 0);
	printf("server killed after %d requests of %d: %u completed OK, %u I/O errors\n", NIO / 4, NIO,
	       pr.ok, pr.eio);
	/* afterwards: an I/O error, the device itself not broken */
	CHECK_EQ(gv_blk_read(d1, 0, back, 4096), -EIO);
	CHECK_EQ(gv_blk_flush(d1), -EIO);
	CHECK(!gv_device_broken(d1));
	CHECK_EQ(kill(backend, 0), 0);
	/* the other disk of the daemon */
	fill(bufs[0], LEN, 99);
	CHECK_EQ(gv_blk_write(d2, 4096, bufs[0], LEN), 0);
	CHECK_EQ(gv_blk_read(d2, 4096, back, LEN), 0);
	CHECK(!memcmp(back, bufs[0], LEN));
	CHECK_EQ(gv_detach(d1), 0);
	CHECK_EQ(gv_detach(d2), 0);
	CHECK_EQ(kill(backend, 0), 0);
	return 0;
}

/* --check-config: a URI with a typo or a server nobody serves is a clear
 * error naming the line; a good one passes. */
static int check_config(const char *line, const char *want)
{
	char file[260];
	FILE *f;
	int rc;

	snprintf(file, sizeof(file), "%s/check.conf", env.dir);
	f = fopen(file, "w");
	CHECK(f);
	fprintf(f, "%s\n", line);
	fclose(f);
	rc = run_prog("gv-backend", (const char *[]){ "--check-config", "--config", file, NULL },
	              NULL, out, sizeof(out), 60);
	if (!want) {
		CHECK_MSG(rc == 0, "%s: exit %d\n%s", line, rc, out);
		return 0;
	}
	CHECK_MSG(rc == 1, "%s: exit %d\n%s", line, rc, out);
	CHECK_MSG(strstr(out, want) && strstr(out, "check.conf:1"), "%s: want '%s' in:\n%s", line,
	          want, out);
	return 0;
}

static int t_nbd_bad_uri_check_config(void)
{
	char line[400];
	snprintf(line, sizeof(line), "disk g1:0 nbd+unix:///disk?socket=%s", sock);
	CHECK_EQ(check_config(line, NULL), 0);
	CHECK_EQ(check_config("disk g1:0 nbd+unix:///disk", "no socket"), 0);
	CHECK_EQ(check_config("disk g1:0 nbd://localhost:99999/disk", "port must be a number"), 0);
	CHECK_EQ(check_config("disk g1:0 nbd:///disk", "no host"), 0);
	CHECK_EQ(check_config("disk g1:0 nbdx://host/disk", "unsupported scheme nbdx"), 0);
	snprintf(line, sizeof(line), "disk g1:0 nbd+unix:///disk?socket=%s.missing", sock);
	CHECK_EQ(check_config(line, "cannot connect"), 0);
	snprintf(line, sizeof(line), "disk g1:0 nbd+unix:///nosuchexport?socket=%s", sock);
	CHECK_EQ(check_config(line, "NBD nbd+unix:///nosuchexport?socket="), 0);
	return 0;
}

/* A server that accepts the connection and never answers (a listening
 * Unix socket nobody accepts on): gv-backend's connect waits for it up to
 * its bound (GVBE_NBD_CONNECT_MS, 5 s), in the disk's own thread. Meanwhile
 * another guest's disk of the same daemon is published and serves I/O: its
 * guest attaches, writes and reads back while the first disk is still
 * connecting (its backend state not yet moved, no error). Then the first
 * disk is refused with the reason. The check is the order of events, not a
 * time: a daemon that waited for the server in its loop could publish the
 * second disk only after it refused the first. */
static int t_nbd_silent_server_no_stall(void)
{
	enum { LEN = 65536 };
	static uint8_t wbuf[LEN], rbuf[LEN];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char silent[200], be1[128], st[16], why[400];
	struct gv_platform *p = NULL;
	struct xs_handle *xs = NULL;
	struct gv_device *d2;
	int lfd = -1, rc = -1;
	FILE *f;

	CHECK_EQ(sim_start(&env, NULL), 0);
	snprintf(logfile, sizeof(logfile), "%s.backend.log", env.dir);
	snprintf(silent, sizeof(silent), "%s/silent.sock", env.dir);
	snprintf(raw2, sizeof(raw2), "%s/g2.img", env.dir);
	snprintf(cfg, sizeof(cfg), "%s/backend.conf", env.dir);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (strlen(silent) >= sizeof(sa.sun_path))
		goto out;
	memcpy(sa.sun_path, silent, strlen(silent) + 1);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4) < 0) {
		printf("silent server: %s\n", strerror(errno));
		goto out;
	}
	{
		int fd = open(raw2, O_CREAT | O_RDWR | O_TRUNC, 0644);

		if (fd < 0 || ftruncate(fd, 16 << 20) < 0)
			goto out;
		close(fd);
	}
	f = fopen(cfg, "w");
	if (!f)
		goto out;
	fprintf(f, "disk g1:0 nbd+unix:///disk?socket=%s\ndisk g2:0 %s\n", silent, raw2);
	fclose(f);
	backend = spawn_ready("gv-backend", (const char *[]){ "--config", cfg, NULL }, logfile, 20);
	if (backend <= 0)
		goto out;
	/* the silent disk's guest first: its connect starts before the other */
	domid_g1 = sim_create_guest(&env, "g1", "2");
	domid_g2 = sim_create_guest(&env, "g2", "2");
	p = sim_open_domain(0);
	xs = p ? gv_xs_open(p) : NULL;
	if (domid_g1 <= 0 || domid_g2 <= 0 || !xs)
		goto out;
	snprintf(be1, sizeof(be1), GV_XS_BACKEND_DIR_FMT, 0u, (unsigned)domid_g1, 0u);
	if (attach(domid_g2, &d2) != 0)
		goto out;
	fill(wbuf, LEN, 5);
	if (gv_blk_write(d2, 8192, wbuf, LEN) || gv_blk_read(d2, 8192, rbuf, LEN) ||
	    memcmp(wbuf, rbuf, LEN)) {
		printf("silent server test: the file disk did not serve\n");
		gv_detach(d2);
		goto out_quiet;
	}
	/* still connecting to the silent server: no answer yet for g1 */
	st[0] = 0;
	gv_xs_read_str(xs, XBT_NULL, be1, GV_XS_STATE, st, sizeof(st));
	if (strcmp(st, "1") || gv_xs_read_str(xs, XBT_NULL, be1, GV_XS_ERROR, why, sizeof(why)) == 0) {
		printf("silent server test: the other disk served only after the "
		       "silent server's disk was answered (its state %s)\n", st);
		gv_detach(d2);
		goto out_quiet;
	}
	gv_detach(d2);
	/* then refused with the reason, within the connect bound and a margin */
	if (!xs_wait_key(xs, be1, GV_XS_STATE, "6", 20000) ||
	    gv_xs_read_str(xs, XBT_NULL, be1, GV_XS_ERROR, why, sizeof(why)) < 0 ||
	    !strstr(why, "no answer within 5000 ms")) {
		printf("silent server test: the silent server's disk was not refused "
		       "with the reason\n");
		goto out_quiet;
	}
	printf("silent server's disk refused after the other disk served: %s\n", why);
	rc = 0;
	goto out;
out_quiet:
	rc = 1;
out:
	if (xs)
		xs_close(xs);
	if (p)
		gv_platform_close(p);
	if (lfd >= 0)
		close(lfd);
	stop_daemon(&backend, "gv-backend");
	sim_stop(&env);
	if (rc)
		print_log(logfile);
	unlink(logfile);
	CHECK_MSG(rc == 0 || rc == 1, "set-up failed");
	return rc ? -1 : 0;
}


static const struct gv_test tests[] = {
	TEST_WITH(t_nbd_verify_flush_check, setup, teardown),
	TEST_WITH(t_nbd_server_killed, setup, teardown),
	TEST_WITH(t_nbd_bad_uri_check_config, setup, teardown),
	TEST(t_nbd_silent_server_no_stall),
	{ 0 }
};

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	return gv_test_main(argc, argv, tests);
}
