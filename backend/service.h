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

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "config.h"
#include "device.h"

/* ---- service.c ------------------------------------------------------------ */
/* Where the disk configuration comes from, kept for SIGHUP. */
struct gvbe_service {
	const char *config;             /* --config FILE, or NULL */
	struct gvbe_disk_cfg *cli;        /* --disk entries, in order */
	const char *pidfile;            /* --pidfile, or NULL */
	bool pidfile_written;
	const char *control;            /* control socket path, or NULL (none) */
	int control_fd;                 /* listening socket, or -1 */
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
/* The listening fd is readable: accept each waiting client and write it the
 * status table, then close it. Never blocks for long on a slow client. */
void gvbe_control_serve(struct gvbe_backend *be, struct gvbe_service *s, int lfd);
/* Closes and unlinks (only if it is still ours). */
void gvbe_control_close(struct gvbe_service *s);
/* Writes the status table of be to f (what the control socket answers). */
void gvbe_status_write(struct gvbe_backend *be, const struct gvbe_service *s, FILE *f);
/* `gv-backend --status`: connects to path, copies the answer to stdout.
 * Returns the exit status: 0, or 3 when no daemon answers (with why on
 * stderr). */
int  gvbe_status_client(const char *path);

#endif
