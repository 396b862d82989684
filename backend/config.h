/*
 * backend/config.h: the daemon's disk configuration (config.c): which image serves
 * which guest's virtio-blk device, from --disk and --config.
 */
#ifndef GVBE_CONFIG_H
#define GVBE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include "abi.h"

#define GVBE_DISK_MAX_QUEUES     8u   /* queues=N: at most */
#define GVBE_DISK_DEFAULT_QUEUES 2u   /* one per core of a small dom0 */

struct gvbe_disk_cfg {
	char guest[64];                 /* a domain name, or a domain id in decimal */
	unsigned devid;
	char path[512];
	bool ro;
	bool allow_bypass;
	bool buffered;                  /* never O_DIRECT (default: O_DIRECT when aligned) */
	unsigned queues;                /* most virtqueues offered (VIRTIO_BLK_F_MQ if > 1) */
	bool xl_dir;                    /* not a disk: "xl-disk-dir PATH", a directory whose
	                                 * images guests' xl configs may name (guest "") */
	char origin[160];               /* "--disk" or "FILE:LINE", for messages */
	struct gvbe_disk_cfg *next;
};

/* Parses "GUEST:DEVID=PATH[,ro][,allow-bypass]" (the --disk syntax). */
int gvbe_disk_parse_opt(const char *arg, struct gvbe_disk_cfg *d, char *err, size_t errlen);
/* Parses the directory of "xl-disk-dir DIR" (--xl-disk-dir DIR) into d. */
int gvbe_xl_dir_parse(const char *dir, struct gvbe_disk_cfg *d, char *err, size_t errlen);
/* Parses "disk GUEST:DEVID PATH [ro] [allow-bypass]" lines (# comments) of
 * file, appending to *list. err gets "FILE:LINE: what". */
/* Appends a copy of d (its next pointer ignored) to the end of *list.
 * Returns the copy, or NULL when out of memory (the list unchanged). */
struct gvbe_disk_cfg *gvbe_disk_append(struct gvbe_disk_cfg **list, const struct gvbe_disk_cfg *d);
int gvbe_disk_parse_file(const char *file, struct gvbe_disk_cfg **list, char *err, size_t errlen);
/* The disk configured for guest (name, id) device devid, or NULL. */
const struct gvbe_disk_cfg *gvbe_disk_find(const struct gvbe_disk_cfg *list, const char *name,
                                       domid_t id, unsigned devid);
void gvbe_disk_free(struct gvbe_disk_cfg *list);


/* Checks a parsed disk list: one entry per GUEST:DEVID, and (if check_paths)
 * every image reachable (read-only ones readable, others read-write). Prints
 * one "ORIGIN: problem" line per error to f (NULL: silent) and returns the
 * number of errors; the first one also goes to err. */
int gvbe_disk_check(const struct gvbe_disk_cfg *list, bool check_paths, FILE *f,
                    char *err, size_t errlen);

#endif
