/* test/sim_harness.c: see sim_harness.h. */
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
#include "platform.h"
#include "sim_harness.h"
#include "xs_util.h"

const char *gv_build_dir(void)
{
	const char *b = getenv("GV_BUILD");

	return b && *b ? b : "build";
}

/* seconds, for the timeouts given in seconds */
static double now(void)
{
	return gv_now_ms() / 1e3;
}

bool xs_wait_key(struct xs_handle *xs, const char *dir, const char *key, const char *want,
                 int ms)
{
	char path[256], val[512];
	double end = gv_now_ms() + ms;
	bool ok = false;

	if (gv_xs_join(path, sizeof(path), dir, key) || !xs_watch(xs, path, "wait-key"))
		return false;
	for (;;) {
		struct pollfd p = { xs_fileno(xs), POLLIN, 0 };
		int rc = gv_xs_read_str(xs, XBT_NULL, dir, key, val, sizeof(val));
		char **w;

		if (want ? rc == 0 && !strcmp(val, want) : rc == -ENOENT) {
			ok = true;
			break;
		}
		if (gv_now_ms() > end)
			break;
		/* the watch fires on every change; the timeout only bounds the wait */
		poll(&p, 1, (int)(end - gv_now_ms()) + 1);
		while ((w = xs_check_watch(xs)))
			free(w);
	}
	xs_unwatch(xs, path, "wait-key");
	return ok;
}

int wait_prog(pid_t pid, int timeout_s)
{
	double end = now() + timeout_s;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		if (r < 0)
			return -1;
		if (now() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		/* a short poll on nothing: waitpid has no timeout of its own */
		poll(NULL, 0, 5);
	}
}

static void child_exec(const char *prog, const char *const *args, const char *const *env)
{
	char path[512];
	const char *argv[64];
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", gv_build_dir(), prog);
	argv[n++] = path;
	for (int i = 0; args && args[i] && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	for (int i = 0; env && env[i]; i++)
		putenv((char *)env[i]);
	execv(path, (char *const *)argv);
	fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
	_exit(127);
}

pid_t spawn_prog(const char *prog, const char *const *args, const char *const *env,
                 const char *logfile)
{
	pid_t pid = fork();

	if (pid == 0) {
		if (logfile) {
			int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0644);

			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
				close(fd);
			}
		}
		child_exec(prog, args, env);
	}
	return pid;
}

int run_prog(const char *prog, const char *const *args, const char *const *env,
             char *out, size_t outlen, int timeout_s)
{
	int pfd[2];
	size_t got = 0;
	double end = now() + timeout_s;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		child_exec(prog, args, env);
	}
	close(pfd[1]);
	for (;;) {
		struct pollfd p = { pfd[0], POLLIN, 0 };
		int left = (int)((end - now()) * 1000);
		char buf[4096];
		ssize_t n;

		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		n = read(pfd[0], buf, sizeof(buf));
		if (n <= 0)
			break;
		if (out && got + 1 < outlen) {
			size_t k = (size_t)n < outlen - 1 - got ? (size_t)n : outlen - 1 - got;

			memcpy(out + got, buf, k);
			got += k;
		}
	}
	if (out && outlen)
		out[got] = 0;
	close(pfd[0]);
	return wait_prog(pid, (int)(end - now()) > 0 ? (int)(end - now()) + 1 : 1);
}

pid_t spawn_ready(const char *prog, const char *const *args, const char *logfile,
                  int timeout_s)
{
	char fdstr[16], c;
	const char *argv[32];
	int pfd[2], n = 0;
	struct pollfd p;
	pid_t pid;

	for (int i = 0; args && args[i] && n < 29; i++)
		argv[n++] = args[i];
	if (pipe(pfd) < 0)
		return -1;
	snprintf(fdstr, sizeof(fdstr), "%d", pfd[1]);
	argv[n++] = "--ready-fd";
	argv[n++] = fdstr;
	argv[n] = NULL;
	pid = spawn_prog(prog, argv, NULL, logfile);
	close(pfd[1]);
	p.fd = pfd[0];
	p.events = POLLIN;
	if (pid < 0 || poll(&p, 1, timeout_s * 1000) != 1 || read(pfd[0], &c, 1) != 1) {
		close(pfd[0]);
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		return -1;
	}
	close(pfd[0]);
	return pid;
}

int sim_start(struct sim_env *e, const char *const *extra)
{
	const char *args[24];
	int n = 0;

	snprintf(e->dir, sizeof(e->dir), "/tmp/gvt-XXXXXX");
	if (!mkdtemp(e->dir))
		return -1;
	args[n++] = "--dir";
	args[n++] = e->dir;
	for (int i = 0; extra && extra[i] && n < 23; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	setenv("GV_PLATFORM", "sim", 1);
	setenv("GV_SIM_DIR", e->dir, 1);
	e->pid = spawn_ready("gv-simxen", args, NULL, 10);
	return e->pid < 0 ? -1 : 0;
}

int sim_stop(struct sim_env *e)
{
	char cmd[160];
	int rc;

	if (e->pid <= 0)
		return -1;
	kill(e->pid, SIGTERM);
	rc = wait_prog(e->pid, 10);
	e->pid = -1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
	if (system(cmd) != 0)
		rc = -1;
	return rc;
}

int sim_create_guest(const struct sim_env *e, const char *name, const char *types)
{
	char cfg[200], out[256];
	FILE *f;

	snprintf(cfg, sizeof(cfg), "%s/%s.cfg", e->dir, name);
	f = fopen(cfg, "w");
	if (!f)
		return -1;
	/* memory: an xl key gv-xl has no use for, and must ignore */
	fprintf(f, "name = \"%s\"\nmemory = 128\nvirtio = [", name);
	for (const char *t = types; *t; t++)
		fprintf(f, "%s\"backend=0,type=virtio,device%c,transport=mmio,grant_usage=1\"",
		        t == types ? " " : ", ", *t);
	fprintf(f, " ]\n");
	if (fclose(f) != 0)
		return -1;
	if (run_prog("gv-xl", (const char *[]){ "create", cfg, NULL }, NULL, out, sizeof(out),
	             10) != 0) {
		printf("gv-xl create: %s\n", out);
		return -1;
	}
	return atoi(out);
}

struct gv_platform *sim_open_domain(int domid)
{
	struct gv_platform_opts o = { GV_PLATFORM_SIM, NULL, domid };
	struct gv_platform *p = NULL;
	char err[256];

	if (gv_platform_open(&o, &p, err, sizeof(err)) < 0) {
		printf("open domain %d: %s\n", domid, err);
		return NULL;
	}
	return p;
}

void stop_daemon(pid_t *pid, const char *name)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	if (wait_prog(*pid, 10) != 0)
		printf("%s did not exit 0 on SIGTERM\n", name);
	*pid = -1;
}

void print_log(const char *file)
{
	char line[512];
	FILE *f = fopen(file, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		printf("  | %s", line);
	fclose(f);
}

const char *sim_xs_socket(const struct sim_env *e, unsigned domid, char *buf, size_t len)
{
	snprintf(buf, len, "%s/dom%u/xenstored", e->dir, domid);
	return buf;
}

void sim_use_domain_xenstore(const struct sim_env *e, unsigned domid)
{
	char buf[160];

	setenv("XENSTORED_PATH", sim_xs_socket(e, domid, buf, sizeof(buf)), 1);
}
