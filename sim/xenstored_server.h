/*
 * sim/xenstored_server.h: the inside of the simulated xenstored's server
 * side, shared by its three files:
 *   xenstored_conn.c   sockets and connection I/O: accepting, reading and
 *                      framing requests, queueing replies and watch events,
 *                      the domains' listeners (the module interface, simxen.h)
 *   xenstored_req.c    the request handlers, one per message type
 *   xenstored_trans.c  transactions: snapshot, access record, commit
 * The store itself is xenstored_tree.c (xenstored.h).
 */
#ifndef GV_SIM_XENSTORED_SERVER_H
#define GV_SIM_XENSTORED_SERVER_H

#include <sys/un.h>
#include "xenstored.h"

#define XS_MAX_WATCHES       128     /* per connection; more: E2BIG */
#define XS_MAX_TRANS         10      /* open per connection; more: ENOSPC */
#define XS_MAX_CONNS         256     /* per domain */
#define XS_MAX_DOM_TRANS     64      /* open per domain: each holds a copy of the store */
#define XS_TX_MAX_ACCESS     4096    /* nodes one transaction may touch */
#define XS_TX_MAX_OPS        1024    /* changes one transaction may make */
#define XS_OUT_MAX           (1u << 20)  /* queued output that drops a connection */
#define XS_OUT_PAUSE         (64u << 10) /* queued output that pauses reading it */
#define XS_HDR               sizeof(struct xsd_sockmsg)
#define XS_IN_CAP            (2 * (XS_HDR + XENSTORE_PAYLOAD_MAX))

struct xs_watch {
	struct xs_watch *next;
	char *path;          /* canonical, or "@introduceDomain"/"@releaseDomain" */
	char *token;
	size_t strip;        /* a relative watch reports paths without this many chars */
};

/* A node a transaction used, and its generation then (0: it did not exist). */
struct xs_access {
	char *path;
	uint64_t gen;
};

enum xs_txop_type { TXOP_WRITE, TXOP_MKDIR, TXOP_RM, TXOP_SET_PERMS };

/* A change made in a transaction, replayed on the live tree at commit. */
struct xs_txop {
	enum xs_txop_type type;
	char *path;
	char *data;                  /* TXOP_WRITE */
	unsigned len;
	struct xs_perm *perms;       /* TXOP_SET_PERMS */
	unsigned nperms;
};

struct xs_trans {
	struct xs_trans *next;
	uint32_t id;
	struct xs_tree tree;         /* private snapshot plus own changes */
	struct xs_access *acc;
	unsigned nacc, acc_cap;
	struct xs_txop *ops;
	unsigned nops, ops_cap;
	unsigned created;            /* nodes made, for the quota */
};

struct xs_domain;

struct xs_conn {
	struct xs_conn *next;
	struct xs_domain *dom;
	domid_t domid;
	int fd;
	uint32_t events;             /* what the loop watches for now */
	bool dead;                   /* close at the next reap */
	bool closing;                /* protocol violation: close once flushed */
	bool held;                   /* complete requests wait for output to drain */
	bool warned;                 /* one log line per connection for bad requests */
	uint8_t in[XS_IN_CAP];
	size_t inlen;
	uint8_t *out;
	size_t outhead, outlen, outcap;
	struct xs_watch *watches;
	unsigned nwatches;
	struct xs_trans *trans;
	unsigned ntrans;
	uint32_t next_tx;
};

struct xs_domain {
	struct xs_domain *next;
	domid_t domid;
	int lfd;
	unsigned nconns;
	unsigned ntrans;             /* open transactions of all its connections */
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* the store (xenstored_conn.c makes it at init) */
extern struct xs_tree xs_live;

/* xenstored_conn.c */
const char *xs_msg_type_name(uint32_t type);
/* Marks c to be closed at the next reap; why (may be NULL) is logged. */
void xs_conn_kill(struct xs_conn *c, const char *why);
/* Queue a message for c (dropping c past XS_OUT_MAX queued bytes). */
void xs_send_msg(struct xs_conn *c, uint32_t type, uint32_t req_id, uint32_t tx_id,
                 const void *body, size_t len);
void xs_send_error(struct xs_conn *c, const struct xsd_sockmsg *req, int err);
void xs_send_ok(struct xs_conn *c, const struct xsd_sockmsg *req);

/* xenstored_req.c */
/* Serves one complete request; the reply (or error) is queued on c. */
void xs_handle_msg(struct xs_conn *c, const struct xsd_sockmsg *h, char *body);
/* Forgets every watch and open transaction of c (reset, or close). */
void xs_conn_drop_state(struct xs_conn *c);

/* xenstored_trans.c */
/* Opens a transaction of c on a snapshot of the store: its id in *id, or
 * -ENOSPC (too many open), -ENOMEM. */
int  xs_trans_start(struct xs_conn *c, uint32_t *id);
/* Ends transaction id of c, committing if commit: -ENOENT (no such), -EAGAIN
 * (a node it used changed meanwhile: nothing applied), 0. */
int  xs_trans_end(struct xs_conn *c, uint32_t id, bool commit);
/* Ends every open transaction of c without committing. */
void xs_trans_drop_all(struct xs_conn *c);
struct xs_trans *xs_trans_find(struct xs_conn *c, uint32_t id);
void xs_trans_free(struct xs_trans *t);
/* Records what a request in t reads or changes, before it does: the first
 * generation of each node used (t NULL: no transaction, nothing to do). */
int  xs_trans_note(struct xs_trans *t, const char *path);
int  xs_trans_note_create(struct xs_trans *t, const char *path);
/* Logs a change made in t's snapshot, to replay on the store at commit. */
int  xs_trans_log(struct xs_trans *t, enum xs_txop_type type, const char *path,
                  const void *data, unsigned len, const struct xs_perm *perms,
                  unsigned nperms);

#endif
