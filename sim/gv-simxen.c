/*
 * sim/gv-simxen.c: the simulated Xen daemon.
 *
 *   gv-simxen [--dir DIR] [--ready-fd N] [--scatter-refs] [--verbose]
 *
 * Serves DIR/dom<N>/{hypervisor,xenstored} for every simulated domain until
 * SIGTERM or SIGINT, then removes everything it created. One instance per
 * DIR (DIR/lock is held with flock). See simxen.h for the parts.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include "log.h"
#include "platform.h"
#include "simxen.h"

int sim_loop_init(void);
int sim_loop_run_once(int timeout_ms);

const char *sim_dir;
bool sim_scatter_refs;
static bool stopping;

char *sim_path(char *buf, size_t len, domid_t domid, const char *leaf)
{
	int n = snprintf(buf, len, "%s/dom%u%s%s", sim_dir, (unsigned)domid, leaf ? "/" : "",
	                 leaf ? leaf : "");

	return n < 0 || (size_t)n >= len ? NULL : buf;
}

static void usage(FILE *f)
{
	fprintf(f,
	"usage: gv-simxen [--dir DIR] [--ready-fd N] [--scatter-refs] [--gntalloc-limit N]\n"
	"                 [--verbose]\n"
	"\n"
	"The simulated Xen hypervisor and xenstored of grant-virtio. It serves, for\n"
	"each simulated domain N, DIR/domN/hypervisor (grants, event channels,\n"
	"domains) and DIR/domN/xenstored (the xenstore wire protocol: point\n"
	"XENSTORED_PATH at it to use xenstore-ls and friends as that domain).\n"
	"\n"
	"  --dir DIR       directory to serve (default: $GV_SIM_DIR, else\n"
	"                  $XDG_RUNTIME_DIR/grant-virtio-sim or /tmp/grant-virtio-sim-UID)\n"
	"  --ready-fd N    write one byte to fd N, then close it, once serving\n"
	"  --scatter-refs  never hand out consecutive grant references (tests the\n"
	"                  frontend's handling of real Xen, which does not promise them)\n"
	"  --gntalloc-limit N  pages each domain may have granted at once (default\n"
	"                  1024, Linux gntalloc's default limit); more: ENOSPC\n"
	"  --verbose       log every request\n"
	"\n"
	"Stops on SIGTERM or SIGINT and removes what it created. Exit status: 0 on a\n"
	"clean stop, 1 on a usage or setup error, 2 if the loop failed.\n");
}

static void on_signal(void *ctx, uint32_t events)
{
	struct signalfd_siginfo si;
	int fd = *(int *)ctx;

	(void)events;
	if (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		gv_info("signal %u: stopping", si.ssi_signo);
		stopping = true;
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "ready-fd", required_argument, NULL, 'r' },
		{ "scatter-refs", no_argument, NULL, 's' },
		{ "gntalloc-limit", required_argument, NULL, 'g' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char dirbuf[PATH_MAX], abs[PATH_MAX], lockpath[PATH_MAX + 8];
	const char *dir = NULL;
	int ready_fd = -1, lockfd, sigfd, c, rc = 0;
	sigset_t mask;
	struct rlimit rl;

	gv_log_set_program(argv[0]);
	while ((c = getopt_long(argc, argv, "d:r:sg:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'r': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || v < 0 || v > INT_MAX || fcntl((int)v, F_GETFD) < 0) {
				gv_err("--ready-fd %s: not an open file descriptor", optarg);
				return 1;
			}
			ready_fd = (int)v;
			break;
		}
		case 's': sim_scatter_refs = true; break;
		case 'g': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || v < 1 || v > (1L << 24)) {
				gv_err("--gntalloc-limit %s: expected a number of pages, 1..16777216", optarg);
				return 1;
			}
			sim_gntalloc_limit = (unsigned)v;
			break;
		}
		case 'v': gv_log_threshold = GV_LOG_DEBUG; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind != argc) {
		gv_err("unexpected argument '%s' (see --help)", argv[optind]);
		return 1;
	}
	if (!dir)
		dir = getenv("GV_SIM_DIR");
	if (!dir || !*dir)
		dir = gv_sim_default_dir(dirbuf, sizeof(dirbuf));
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		gv_err("cannot create %s: %s", dir, strerror(errno));
		return 1;
	}
	if (!realpath(dir, abs)) {
		gv_err("%s: %s", dir, strerror(errno));
		return 1;
	}
	sim_dir = abs;
	if (strlen(abs) > 80) {
		/* sockaddr_un.sun_path is 108 bytes, and /domNNNNN/xenstored follows */
		gv_err("%s: path too long for Unix sockets (keep it under 80 characters)", abs);
		return 1;
	}
	snprintf(lockpath, sizeof(lockpath), "%s/lock", abs);
	lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lockfd < 0) {
		gv_err("cannot open %s: %s", lockpath, strerror(errno));
		return 1;
	}
	if (flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
		char pid[32] = "?";
		ssize_t n = pread(lockfd, pid, sizeof(pid) - 1, 0);

		if (n > 0)
			pid[n] = 0;
		pid[strcspn(pid, "\n")] = 0;
		gv_err("another gv-simxen (pid %s) already serves %s; stop it first or use another --dir",
		       pid, abs);
		return 1;
	}
	if (ftruncate(lockfd, 0) == 0)
		dprintf(lockfd, "%d\n", (int)getpid());

	/* many guest pages and connections may be open at once */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigfd < 0 || sim_loop_init() < 0 || sim_loop_add(sigfd, EPOLLIN, on_signal, &sigfd) < 0) {
		gv_err("cannot set up the event loop: %s", strerror(errno));
		return 1;
	}
	gv_info("platform sim: simulated Xen serving %s (pid %d)%s", abs, (int)getpid(),
	        sim_scatter_refs ? ", scattered grant refs" : "");
	if (xs_server_init() < 0 || hv_server_init() < 0) {
		gv_err("cannot start serving %s", abs);
		rc = 1;
		goto out;
	}
	if (ready_fd >= 0) {
		if (write(ready_fd, "R", 1) != 1)
			gv_warn("--ready-fd: %s", strerror(errno));
		close(ready_fd);
	}
	while (!stopping) {
		int n = sim_loop_run_once(-1);

		if (n < 0) {
			gv_err("event loop: %s", strerror(-n));
			rc = 2;
			break;
		}
	}
out:
	hv_server_fini();
	xs_server_fini();
	unlink(lockpath);
	close(lockfd);
	rmdir(abs);   /* only if empty: never remove what we did not create */
	gv_info("stopped");
	return rc;
}
