/*
 * fuzz/fuzz_xenstored.c: the simulated xenstored's wire protocol
 * (sim/xenstored_*.c: framing, every request type, transactions, watches,
 * permissions) fed a byte stream from a client, as a guest's process could
 * send it.
 *
 * The server runs in this process (its epoll loop driven by hand); each
 * input is one connection to domain 1's socket (unprivileged; first byte odd:
 * domain 0's, privileged), written whole, then read until the server has
 * nothing more to say. The store lives across inputs like a real daemon's
 * and is rebuilt every 2000 inputs so that dom0's writes cannot fill it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "../sim/simxen.h"
#include "fuzz.h"

int sim_loop_init(void);
int sim_loop_run_once(int timeout_ms);

const char *sim_dir;
bool sim_scatter_refs;
static char dir[64];
static unsigned inputs;

char *sim_path(char *buf, size_t len, domid_t domid, const char *leaf)
{
	int n = snprintf(buf, len, "%s/dom%u%s%s", sim_dir, (unsigned)domid, leaf ? "/" : "",
	                 leaf ? leaf : "");

	return n < 0 || (size_t)n >= len ? NULL : buf;
}

static void cleanup(void)
{
	char cmd[128];

	xs_server_fini();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

static void server_up(void)
{
	if (xs_server_init() < 0 || xs_server_add_domain(0) < 0 || xs_server_add_domain(1) < 0)
		abort();
}

static void start(void)
{
	snprintf(dir, sizeof(dir), "/tmp/gv-fuzz-xs-XXXXXX");
	if (!mkdtemp(dir) || sim_loop_init() < 0)
		abort();
	sim_dir = dir;
	server_up();
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t off = 1;
	int fd, idle = 0;

	char buf[65536];

	if (!sim_dir)
		start();
	if (++inputs % 2000 == 0) {
		xs_server_fini();
		server_up();
	}
	if (!size || size > 65536)
		return 0;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || !sim_path(sa.sun_path, sizeof(sa.sun_path), data[0] & 1 ? 0 : 1,
	                        "xenstored"))
		abort();
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	sim_loop_run_once(0);   /* accept */
	/* write what the socket takes and let the server eat, until it has
	 * nothing more to say (it closed, or three rounds without progress:
	 * done, or it stopped reading behind a full output queue) */
	for (unsigned iter = 0; iter < 100000 && idle < 3; iter++) {
		bool progress = false, closed = false;

		if (off < size) {
			ssize_t w = write(fd, data + off, size - off);

			if (w > 0) {
				off += (size_t)w;
				progress = true;
				if (off == size)
					shutdown(fd, SHUT_WR);
			} else if (w < 0 && errno != EAGAIN) {
				break;   /* the server closed on us: a legal answer */
			}
		}
		if (sim_loop_run_once(0) > 0)
			progress = true;
		for (;;) {
			ssize_t r = read(fd, buf, sizeof(buf));

			if (r > 0) {
				progress = true;
				continue;
			}
			closed = r == 0;
			break;
		}
		if (closed)
			break;
		idle = progress ? 0 : idle + 1;
	}
	close(fd);
	sim_loop_run_once(0);   /* the server sees the close and frees the connection */
	sim_loop_run_once(0);
	return 0;
}
