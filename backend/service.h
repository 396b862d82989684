/*
 * backend/service.h: gv-backend as a system service: the pidfile, readiness
 * and state for systemd (NOTIFY_SOCKET), SIGHUP reload of the disk
 * configuration, --check-config, and the control socket that answers
 * `gv-backend --status`. Kept apart from the device headers so the data path does
 * not see any of it.
 *
 * All of it runs on the daemon's one thread, like the rest of the backend.
 */
#ifndef GVBE_SERVICE_H
#define GVBE_SERVICE_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "config.h"
#include "device.h"

/* ---- service.c ------------------------------------------------------------ */
/* A control-socket client whose request line has not come yet (control.c). */
#define GVBE_CONTROL_CLIENTS 8          /* waiting at once; more are told to retry */
#define GVBE_CONTROL_WAIT_MS 1000       /* a client that says nothing gets the table then */
struct gvbe_control_client {
	bool busy;
	int fd;
	int64_t deadline;               /* gv_now_ms() */
	size_t len;
	char req[64];                   /* the request line so far */
};

/* Where the disk configuration comes from, kept for SIGHUP. */
struct gvbe_service {
	const char *config;             /* --config FILE, or NULL */
	struct gvbe_disk_cfg *cli;        /* --disk entries, in order */
	const char *pidfile;            /* --pidfile, or NULL */
	bool pidfile_written;
	const char *control;            /* control socket path, or NULL (none) */
	int control_fd;                 /* listening socket, or -1 */
	struct gvbe_control_client clients[GVBE_CONTROL_CLIENTS];
	unsigned reloads;               /* successful SIGHUP reloads */
};

/* Builds the effective disk list: the --disk entries, then the file's lines.
 * 0, or negative errno with "FILE:LINE: what" (or "--disk ...: what") in err.
 * *out is NULL on failure. */
int  gvbe_service_load(const struct gvbe_service *s, struct gvbe_disk_cfg **out,
                     char *err, size_t errlen);
/* Writes our pid to s->pidfile (created 0644, replaced if stale; refused if
 * a live gv-backend holds it). 0 or negative errno with err set. */
int  gvbe_pidfile_write(struct gvbe_service *s, char *err, size_t errlen);
void gvbe_pidfile_remove(struct gvbe_service *s);
/* Sends state (e.g. "READY=1") to $NOTIFY_SOCKET if systemd set it; a
 * no-op otherwise. Never fails the caller. */
void gvbe_sd_notify(const char *state);
/* SIGHUP: re-reads the configuration. A bad one is rejected (logged with
 * FILE:LINE) and the old one kept. Otherwise the new list replaces
 * be->disks; devices not connected are republished with their new settings
 * (or refused if their disk went away); connected ones keep serving what
 * they opened until they disconnect. Every change is logged. 0 or -EINVAL. */
int  gvbe_service_reload(struct gvbe_backend *be, struct gvbe_service *s);

/* ---- control.c ---------------------------------------------------------- */
/* The control socket a daemon with this platform choice listens on by
 * default: /run/grant-virtio/backend.sock on Xen, DIR/gv-backend.sock on the
 * simulated Xen (DIR: sim_dir, else $GV_SIM_DIR, else the simulator's
 * default), so that simulations side by side do not collide. kind is
 * "xen", "sim" or NULL (decide as gv_platform_open does). */
const char *gvbe_control_default_path(const char *kind, const char *sim_dir,
                                    char *buf, size_t len);
/* Binds and listens on path (its directory created 0755, the socket 0600:
 * the answer names guests and images). A stale socket is replaced; one a
 * live daemon answers on is left alone (-EADDRINUSE). Returns the fd. */
int  gvbe_control_listen(const char *path, char *err, size_t errlen);
/* The control socket's protocol: a client connects and writes one request
 * line, "status" (the table for people), "status json" (the same as one
 * JSON object, docs/admin.md), "resize" (every disk's image size looked at
 * again: online resize) or "resize GUEST DEVID" (one disk); it is answered
 * and the socket closed. A
 * client that writes nothing (shuts its side, or says nothing for
 * GVBE_CONTROL_WAIT_MS) gets the table, as before requests existed. An
 * unknown request gets one line "error: ...". Nothing here waits on a
 * client: the daemon's poll loop watches the listening socket and the
 * clients waiting to be read, through these three calls. */
/* Fills pfd[0..n) (n <= max) with the descriptors to poll: the listening
 * socket, then each waiting client. Returns n (0 without a socket). */
unsigned gvbe_control_pollfds(const struct gvbe_service *s, struct pollfd *pfd, unsigned max);
/* Milliseconds until the first waiting client's deadline; -1: none waits. */
int  gvbe_control_timeout(const struct gvbe_service *s);
/* After poll: accepts new clients, reads the requests that came, answers
 * them and the clients past their deadline. pfd, n: as filled above. Never
 * blocks for long on a slow client (a send is cut off after 1 s). */
void gvbe_control_work(struct gvbe_backend *be, struct gvbe_service *s,
                       const struct pollfd *pfd, unsigned n);
/* Closes the waiting clients and the socket and unlinks it (only if it is
 * still ours). */
void gvbe_control_close(struct gvbe_service *s);
/* Writes the status table of be to f (the answer to "status"). */
void gvbe_status_write(struct gvbe_backend *be, const struct gvbe_service *s, FILE *f);
/* The same as one JSON object (the answer to "status json"). */
void gvbe_status_write_json(struct gvbe_backend *be, const struct gvbe_service *s, FILE *f);
/* Writes str as a JSON string (NULL: null): quotes, backslashes and control
 * characters escaped, bytes that are not UTF-8 as U+FFFD. */
void gvbe_json_str(FILE *f, const char *str);
/* `gv-backend --status [--json]`: connects to path, asks for the table (or
 * the JSON object), copies the answer to stdout. Returns the exit status:
 * 0, or 3 when no daemon answers (with why on stderr). */
int  gvbe_status_client(const char *path, bool json);
/* Sends one request line req (without its newline) to the daemon on path
 * and copies the answer to stdout. Returns 0, 1 when a line of the answer
 * starts with "error:" (a refusal), 3 when no daemon answers. */
int  gvbe_control_client(const char *path, const char *req);

#endif
