/*
 * test/hostile_backend.h: a backend that lies, for attacking the real
 * frontend library in the simulation.
 *
 * It runs in a forked child speaking as dom0 and does the backend half of
 * docs/transport.md by hand over the platform API: publishes features and
 * config, InitWait; on FE=Initialised maps the liveness page and the vring
 * areas, binds both channels, Connected; serves virtio-blk reads and writes
 * from a small in-memory disk (disk byte o is hb_disk_byte(o)); on
 * FE=Closing unmaps everything and writes Closed; on FE=Initialising or
 * Closed after that it publishes InitWait again, so one child serves
 * several attaches. One switch (enum hb_mode) picks the misbehaviour; the
 * test (test_hostile_backend.c) drives the real frontend against it.
 *
 * The child reports on a pipe, one line per event ("ready", "connected",
 * "leak REF", "reused REF", "closed", "stuck ..."), so the test waits on
 * what happened instead of sleeping.
 */
#ifndef GV_TEST_HOSTILE_BACKEND_H
#define GV_TEST_HOSTILE_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "platform.h"

#define HB_DISK_BYTES (1u << 20)
#define HB_QMAX       8u            /* max-queue-size offered */
#define HB_CANARY     0xc5u         /* written into a page the backend keeps */

enum hb_mode {
	HB_HONEST,
	HB_USED_ID_OOR,         /* used id >= queue size */
	HB_USED_ID_DUP,         /* the first of two requests completed twice */
	HB_USED_LEN_BIG,        /* used length past the device-writable bytes */
	HB_USED_IDX_JUMP,       /* used idx moved by queue size + 1 */
	HB_KEEP_GRANT,          /* first data page stays mapped after completion */
	HB_NEVER_COMPLETE,      /* takes requests, completes none, closes politely */
	HB_STUCK,               /* completes nothing, ignores Closing, keeps all mapped */
	HB_CLOSE_MID_IO,        /* unmaps and flips to Closed with a request in flight */
	HB_DIE_UNSEEN,          /* Connected with its liveness byte already 0 (it died
	                           before the guest looked), takes the first request
	                           and exits without completing it */
	HB_FLAP,                /* offers takeover (feature-inflight), takes requests,
	                           completes none, and clears and sets its liveness
	                           byte every 50 ms: a backend "restarting" for ever */
};

static inline uint8_t hb_disk_byte(uint64_t o)
{
	/* different in every byte and every sector: a read names its source */
	return (uint8_t)(o * 7 + o / 512 * 13 + 1);
}

struct hb_child {
	pid_t pid;
	int rfd;                /* the child's report lines */
	char buf[512];
	size_t len;
};

/* Forks the fake backend for device 0 of guest dom in the simulation at
 * sim_dir and waits (at most 5 s) for its "ready" line (BE=InitWait).
 * 0 or -1 (a line printed). */
int hb_start(struct hb_child *c, const char *sim_dir, domid_t dom, enum hb_mode mode);
/* Waits at most ms for the next report line starting with want (earlier
 * lines are skipped); copies the whole line to line (may be NULL). */
bool hb_expect(struct hb_child *c, const char *want, char *line, size_t len, int ms);
/* Stops the child (SIGTERM, then SIGKILL after 5 s) and reaps it. Returns
 * its exit status, or -1 if it died of another signal than SIGTERM. */
int hb_stop(struct hb_child *c);

#endif
