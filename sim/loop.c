/* sim/loop.c: the daemon's epoll loop (see simxen.h). */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include "simxen.h"

struct sim_watch {
	sim_fd_handler fn;
	void *ctx;
	int fd;
};

static int epfd = -1;
static struct sim_watch **watches;   /* indexed by fd */
static int nwatches;

int sim_loop_init(void);
int sim_loop_run_once(int timeout_ms);

int sim_loop_init(void)
{
	epfd = epoll_create1(EPOLL_CLOEXEC);
	return epfd < 0 ? -errno : 0;
}

static int ensure(int fd)
{
	if (fd < nwatches)
		return 0;
	int n = fd + 64;
	struct sim_watch **w = realloc(watches, (size_t)n * sizeof(*w));

	if (!w)
		return -ENOMEM;
	for (int i = nwatches; i < n; i++)
		w[i] = NULL;
	watches = w;
	nwatches = n;
	return 0;
}

static int ctl(int op, int fd, uint32_t events, sim_fd_handler fn, void *ctx)
{
	struct epoll_event ev = { .events = events };
	int rc = ensure(fd);

	if (rc)
		return rc;
	if (!watches[fd] && !(watches[fd] = calloc(1, sizeof(*watches[fd]))))
		return -ENOMEM;
	watches[fd]->fn = fn;
	watches[fd]->ctx = ctx;
	watches[fd]->fd = fd;
	ev.data.ptr = watches[fd];
	if (epoll_ctl(epfd, op, fd, &ev) < 0) {
		rc = -errno;
		if (op == EPOLL_CTL_ADD) {
			free(watches[fd]);
			watches[fd] = NULL;
		}
		return rc;
	}
	return 0;
}

int sim_loop_add(int fd, uint32_t events, sim_fd_handler fn, void *ctx)
{
	return ctl(EPOLL_CTL_ADD, fd, events, fn, ctx);
}

int sim_loop_mod(int fd, uint32_t events, sim_fd_handler fn, void *ctx)
{
	return ctl(EPOLL_CTL_MOD, fd, events, fn, ctx);
}

/* Safe to call from inside a handler, for any fd: a removed watch is marked
 * dead (fn NULL) and freed after the current batch of events. */
static struct sim_watch **graveyard;
static int ngraves, graves_cap;

void sim_loop_del(int fd)
{
	if (fd < 0 || fd >= nwatches || !watches[fd])
		return;
	epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
	watches[fd]->fn = NULL;
	if (ngraves == graves_cap) {
		int cap = graves_cap ? 2 * graves_cap : 64;
		struct sim_watch **g = realloc(graveyard, (size_t)cap * sizeof(*g));

		if (g) {
			graveyard = g;
			graves_cap = cap;
		}
	}
	if (ngraves < graves_cap)
		graveyard[ngraves++] = watches[fd];
	/* else (out of memory): leak the few bytes rather than risk a use after free */
	watches[fd] = NULL;
}

int sim_loop_run_once(int timeout_ms)
{
	struct epoll_event evs[64];
	int n = epoll_wait(epfd, evs, 64, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct sim_watch *w = evs[i].data.ptr;

		if (w->fn)
			w->fn(w->ctx, evs[i].events);
	}
	for (int i = 0; i < ngraves; i++)
		free(graveyard[i]);
	ngraves = 0;
	return n;
}
