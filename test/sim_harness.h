/*
 * test/sim_harness.h: start and stop a gv-simxen for a test, and run the
 * project's programs from the build directory. No sleeps: readiness comes
 * from gv-simxen's --ready-fd, process ends from waitpid.
 */
#ifndef GV_TEST_SIM_HARNESS_H
#define GV_TEST_SIM_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "clock.h"          /* gv_now_ms */

struct xs_handle;
struct gv_platform;

struct sim_env {
	char dir[96];        /* served directory, under /tmp */
	pid_t pid;
};

/* The build directory holding the programs: $GV_BUILD, else "build". */
const char *gv_build_dir(void);
/* Starts gv-simxen on a fresh temporary directory; extra is NULL or a
 * NULL-terminated list of more arguments. Waits (at most 10 s) until it serves.
 * Also sets GV_PLATFORM=sim and GV_SIM_DIR for this process and its children. */
int sim_start(struct sim_env *e, const char *const *extra);
/* SIGTERM, wait (at most 10 s, then SIGKILL); returns its exit status, or -1
 * if it had to be killed or died of a signal. Removes what is left of dir. */
int sim_stop(struct sim_env *e);
/* gv-xl create of a guest NAME with one virtio device per character of
 * types, a virtio device id ("24": devid 0 block, devid 1 entropy), from an
 * xl config written into e->dir. Returns its domid, or -1 (gv-xl's answer
 * printed). */
int sim_create_guest(const struct sim_env *e, const char *name, const char *types);
/* Opens the simulated platform as domain domid of the simulation at
 * $GV_SIM_DIR (set by sim_start); NULL, with the reason printed, on failure. */
struct gv_platform *sim_open_domain(int domid);
/* Sends SIGTERM to *pid if it runs, waits at most 10 s, prints a line
 * naming `name` unless it exited 0, and sets *pid to -1. */
void stop_daemon(pid_t *pid, const char *name);
/* Prints a log file's lines indented ("  | ..."): the daemon's side of a
 * failing run. Nothing if it does not exist. */
void print_log(const char *file);
/* Path of domain d's xenstored socket, for XENSTORED_PATH. */
const char *sim_xs_socket(const struct sim_env *e, unsigned domid, char *buf, size_t len);
/* Points this process's libxenstore at domain d's socket (sets XENSTORED_PATH). */
void sim_use_domain_xenstore(const struct sim_env *e, unsigned domid);

/* Runs BUILD/prog with args (NULL-terminated, argv[0] not included), with
 * extra environment assignments env ("K=V", NULL-terminated, may be NULL);
 * stdout+stderr go to out (may be NULL: discarded), at most outlen-1 bytes
 * kept. Waits at most timeout_s. Returns the exit status, or -1 on a signal
 * or timeout. */
int run_prog(const char *prog, const char *const *args, const char *const *env,
             char *out, size_t outlen, int timeout_s);
/* Starts BUILD/prog in the background; returns its pid or -1. Output goes
 * to logfile (appended) if not NULL, else inherited. */
pid_t spawn_prog(const char *prog, const char *const *args, const char *const *env,
                 const char *logfile);
/* Starts BUILD/prog with args followed by "--ready-fd N" (gv-simxen and
 * gv-backend write one byte there once they serve); returns its pid once
 * the byte came, within timeout_s, or -1 with nothing left running. Output
 * goes to logfile (appended) if not NULL, else is inherited. */
pid_t spawn_ready(const char *prog, const char *const *args, const char *logfile,
                  int timeout_s);
/* Waits until dir/key reads want (want NULL: until the key is missing),
 * woken by an xenstore watch on it, at most ms milliseconds. */
bool xs_wait_key(struct xs_handle *xs, const char *dir, const char *key, const char *want,
                 int ms);
/* Waits at most timeout_s for pid; returns exit status, -1 on signal/timeout
 * (then it is killed). */
int wait_prog(pid_t pid, int timeout_s);

#endif
