/* dlv_int.h - internals of the delivery engine shared by net/deliver.c (the
 * thread, its ring and poll), net/dlv_queue.c (messages, state files, the
 * schedule, outcomes, bounces), net/dlv_conn.c (per-hop pools and outbound
 * connections) and net/dlv_ctl.c (the control socket). Everything here runs
 * on the delivery thread only. Not for other modules.
 *
 * user_data of every operation on the delivery ring is a struct uring_cb
 * pointer (tagged URING_OP_CALLBACK): the loop calls cb->fn. */
#ifndef MXRING_DLV_INT_H
#define MXRING_DLV_INT_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dnsq.h"
#include "qstate.h"
#include "routes.h"
#include "smtpc.h"
#include "uring.h"
#include "util.h"

struct config;
struct snap;
struct rlog;
struct rlog_ring;
struct tls_ctx;
struct tls_conn;

#define DLV_POLL_MS 200u           /* new/ poll and timer tick */
#define DLV_IDLE_MS 10000u         /* an idle pooled connection is closed after this */
#define DLV_CONNECT_MS 30000u      /* connect + greeting + EHLO */
#define DLV_REPLY_MS 300000u       /* any later wait for a reply (RFC 5321 4.5.3.2) */
#define DLV_DOWN_MS 2000u          /* a hop that failed is not reconnected for this long */
#define DLV_RBUF 16384u            /* receive buffer per connection */
#define DLV_BODY_CHUNK 65536u      /* body piece given to smtpc at a time */
#define DLV_WIRE_HIGH (256u << 10) /* stop feeding the body above this much unsent */
#define DLV_PICK_MAX 4096u         /* files taken from new/ per poll */
#define DLV_SCAN_MS 1000u          /* with inotify: new/ read in full this often */
#define DLV_INO_BUF 65536u         /* inotify events read at once */
#define DLV_DNS_TTL_MIN 1u         /* a hop name's answer is kept at least this (s) */
#define DLV_DNS_TTL_MAX 3600u      /* ... and at most this */
#define DLV_ADDRS_MAX 8u           /* addresses of a hop name tried in turn */
#define DLV_HOSTS_KEEP_MS 1000u    /* a hosts_file answer is looked up again after this */

/* One message in the queue (active/<id> + state/<id>). */
struct dlv_msg {
    char id[QFILE_ID_LEN + 1];
    struct qfile_env env; /* sender, recipients, size, flags */
    struct qstate st;     /* per-recipient state (rcpts parallel to env.rcpts) */
    bool *busy;           /* recipient is in a job now */
    bool deleted;         /* mxringctl delete: drop when no job is left */
    unsigned jobs;        /* jobs in flight */
    size_t heap;          /* index in the schedule, SIZE_MAX = not scheduled */
    int64_t due;          /* heap key: next attempt (Unix s) */
    const char *map;      /* the queue file, in memory while jobs > 0 */
    size_t maplen;
    bool mapped;           /* map is an mmap (large file), else malloc'd */
    bool has_state;        /* state/<id> exists (read at load or written since) */
    struct dlv_msg *hnext; /* hash chain */
};

/* The recipients of one message going to one route on one attempt. */
struct dlv_job {
    struct dlv_msg *m;
    struct snap *snap; /* holds rt alive */
    const struct route *rt;
    size_t hop;  /* hop of rt being tried */
    size_t n;    /* recipients */
    size_t *idx; /* into m->env.rcpts */
    const char **addrs;
    uint32_t aid;         /* attempt id: the log's session-id column */
    bool stale_retry;     /* already retried once after a reused connection died */
    char *why;            /* hop failure carried to the next hop / the deferral */
    struct dlv_job *next; /* pool queue */
};

struct dlv_conn;

/* One next hop (hop text + TLS mode): its queue of jobs and connections. */
struct dlv_pool {
    char key[ROUTE_HOP_TEXT_MAX + 16];
    struct route_hop hop;
    enum route_tls tls;
    struct dlv_job *qhead, *qtail;
    size_t nq;
    struct dlv_conn *conns;  /* every open connection of this hop */
    struct dlv_conn *closed; /* detached, operations still in flight */
    unsigned nconns;
    unsigned nwait;      /* connections not yet ready (connecting, greeting) */
    unsigned nclosing;   /* closed connections with operations in flight */
    char *helo;          /* our name in EHLO */
    uint64_t down_until; /* monotonic ms: a fresh failure, do not reconnect */
    char *down_why;
    uint64_t sent, failed; /* recipients, for stats */
    /* a hop name's addresses (dlv_dns.c) */
    struct dlv *dlv;                                 /* for the lookup's callback */
    struct dnsq_item dns[2];                         /* A and AAAA (in flight while dns_snap) */
    struct snap *dns_snap;                           /* held while it runs: its dns_servers */
    struct sockaddr_storage dns_addr[DLV_ADDRS_MAX]; /* the answer in trying order, with port */
    unsigned dns_naddr;                              /* of dns_addr */
    unsigned dns_cur;                                /* the one new connections go to */
    bool dns_hosts;                                  /* dns_addr came from hosts_file */
    uint64_t dns_until;                              /* monotonic ms: dns_addr valid until */
    struct dlv_pool *next;
};

/* One outbound connection. */
struct dlv_conn {
    struct uring_cb cb_connect, cb_recv, cb_send;
    struct dlv *d;
    struct dlv_pool *p;
    struct dlv_conn *next, *prev;
    int fd;
    unsigned inflight; /* ring operations referencing it */
    struct smtpc *c;
    struct tls_conn *tls;
    bool tls_hs; /* TLS handshake in progress */
    struct dlv_job *job;
    size_t body_pos; /* octets of the message given to smtpc */
    struct sb tx;    /* bytes of the send in flight (not touched until done) */
    size_t tx_off;
    struct sb wire; /* bytes waiting for the next send */
    bool sending, recv_armed, closing, ready;
    char *why;                  /* a failure the I/O layer saw (TLS, connect) */
    struct sockaddr_storage ss; /* the address connected to (kept for the ring) */
    socklen_t sslen;
    unsigned msgs;     /* messages delivered on it */
    uint64_t deadline; /* monotonic ms */
    uint64_t idle_since;
    char rbuf[DLV_RBUF];
};

struct dlv_ctl;
struct dlv_hosts;

/* Finished messages and the files to remove (dlv_done.c). */
struct dlv_tomb;
struct dlv_gone;
#define DLV_TOMB_S 10 /* a finished id is remembered this long (s) */

/* The engine. */
struct dlv {
    struct io_uring ring;
    bool ring_disabled; /* made with R_DISABLED: the delivery thread enables it */
    int efd;
    uint64_t efd_val;
    struct uring_cb cb_wake, cb_tick, cb_ino;
    struct __kernel_timespec tick_ts;
    int ino_fd;        /* inotify on new/ (-1: polled only) */
    bool ino_overflow; /* events were lost: read new/ in full */
    uint64_t scan_ms;  /* last full read of new/ (now_ms) */
    char *ino_buf;     /* DLV_INO_BUF */
    char *workdir;
    int new_fd, active_fd, state_fd, tmp_fd;
    struct snap *snap;   /* snapshot in use (routes, limits) */
    struct tls_ctx *tls; /* client context (relay_ca_file), NULL until needed */
    bool tls_failed;
    char host[256];
    struct rlog *log;
    struct rlog_ring *lr;
    /* messages */
    struct dlv_msg **hash;
    size_t hcap, nmsg;
    struct dlv_msg **heap;
    size_t nheap, heapcap;
    uint64_t queued_bytes;
    /* finished messages (dlv_done.c) */
    struct dlv_tomb *tomb_head, *tomb_tail; /* oldest first */
    struct dlv_tomb **tomb_hash;
    size_t tomb_hcap, ntomb;
    struct dlv_gone *gone; /* files to remove at the next flush */
    size_t ngone, gonecap;
    struct sb done_buf; /* ids to append to the log at the next flush */
    int done_fd;        /* state/done.<done_epoch>, -1 until needed */
    int64_t done_epoch; /* of done_fd */
    int64_t done_prev;  /* the log before it (removed at the next epoch), -1 */
    bool new_has_state; /* at start: some state file belongs to a file of new/ */
    struct dlv_pool *pools;
    struct dnsq_engine *dq;  /* hop names (dlv_dns.c) */
    struct dlv_hosts *hosts; /* hosts_file text (dlv_dns.c) */
    struct dlv_ctl *ctl;
    uint32_t next_aid;
    uint32_t bounce_seq;
    uint64_t now_ms;    /* CLOCK_MONOTONIC ms, per loop */
    int64_t now;        /* CLOCK_REALTIME s, per loop */
    uint64_t census_ms; /* last dlv_census_publish (now_ms) */
    bool stopping;
};

/* Counters, in struct dlv_stats order. */
enum dlv_stat {
    DLV_ST_PICKED = 0,
    DLV_ST_SENT,
    DLV_ST_DEFERRED,
    DLV_ST_BOUNCED,
    DLV_ST_BOUNCES,
    DLV_ST_CONNS,
    DLV_ST_HANDED,
    DLV_ST_COUNT
};

/* deliver.c */
void dlv_stat_add(unsigned k, uint64_t n);
struct io_uring_sqe *dlv_sqe(struct dlv *d);
const struct config *dlv_cfg(const struct dlv *d);
void dlv_logf(struct dlv *d, uint32_t aid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
struct tls_ctx *dlv_tls_ctx(struct dlv *d);

/* dlv_queue.c: messages in memory and on disk */
/* dlv_id_hash - FNV-1a of a queue id (the message index, the done set). */
size_t dlv_id_hash(const char *id);
int dlv_queue_load(struct dlv *d, const char *id, bool from_new);
int dlv_queue_adopt(struct dlv *d, const char *id, char *bytes, size_t len);
void dlv_queue_scan_active(struct dlv *d);
void dlv_queue_run_due(struct dlv *d);
void dlv_queue_free_all(struct dlv *d);
struct dlv_msg *dlv_msg_find(struct dlv *d, const char *id);
void dlv_msg_schedule(struct dlv *d, struct dlv_msg *m, int64_t not_before);
int dlv_msg_map(struct dlv *d, struct dlv_msg *m);
void dlv_msg_unmap(struct dlv_msg *m);
int dlv_msg_write_state(struct dlv *d, struct dlv_msg *m);
void dlv_msg_finish(struct dlv *d, struct dlv_msg *m);

/* dlv_outcome.c: jobs, outcomes, bounces, mxringctl changes */
void dlv_msg_dispatch(struct dlv *d, struct dlv_msg *m);
void dlv_msg_complete(struct dlv *d, struct dlv_msg *m);
void dlv_job_done(struct dlv *d, struct dlv_job *j, struct smtpc *c, const char *hop);
void dlv_job_failed(struct dlv *d, struct dlv_job *j, const char *why);
void dlv_job_free(struct dlv_job *j);
int dlv_msg_hold(struct dlv *d, struct dlv_msg *m, bool hold);
int dlv_msg_retry(struct dlv *d, struct dlv_msg *m);
int dlv_msg_delete(struct dlv *d, struct dlv_msg *m, unsigned uid);

/* dlv_dsn.c: notifications to the sender */
/* dlv_notify_wants - does recipient i of m want a DSN of kind (an enum
 * smtp_notify bit)? No NOTIFY=: failures only; NEVER: none. */
bool dlv_notify_wants(const struct dlv_msg *m, size_t i, unsigned kind);
/* dlv_queue_bounce - queue m's failure DSN for its bounced recipients that
 * want one. 0 or -errno. */
int dlv_queue_bounce(struct dlv *d, struct dlv_msg *m);
/* dlv_job_relayed - after j's results: a "relayed" ("delivered" over
 * LMTP) DSN for its sent NOTIFY=SUCCESS recipients when the hop (c) does
 * not offer DSN. */
void dlv_job_relayed(struct dlv *d, struct dlv_job *j, const struct smtpc *c);
/* dlv_delay_warn_at - when m's delay DSN is due (arrival +
 * delay_warning_time), INT64_MAX when none is owed (off, sent, held,
 * deleted, no pending NOTIFY=DELAY recipient). */
int64_t dlv_delay_warn_at(const struct dlv *d, const struct dlv_msg *m);
/* dlv_delay_warn - once due: a "delayed" DSN for m's deferred
 * NOTIFY=DELAY recipients; sets m->st.delay_warned and returns true when
 * it was queued (or none was owed after all); false when not due or it
 * failed (tried again later). The caller writes the state. */
bool dlv_delay_warn(struct dlv *d, struct dlv_msg *m);

/* dlv_done.c: finished messages (see there) */
void dlv_done_load(struct dlv *d);
bool dlv_done_has(const struct dlv *d, const char *id);
bool dlv_done_is_log(const char *name);
/* dlv_done_add - message id is finished: remember it (tomb: in the set
 * and the log) and remove active/<id> (queue_file) and state/<id>
 * (state_file) at the next flush, after the log write. 0 or -ENOMEM (then
 * nothing is remembered or removed). */
int dlv_done_add(struct dlv *d, const char *id, bool tomb, bool queue_file, bool state_file);
/* dlv_done_flush - end of every loop turn: one log write, then the
 * removals. */
void dlv_done_flush(struct dlv *d);
void dlv_done_expire(struct dlv *d);
void dlv_done_free(struct dlv *d);

/* dlv_conn.c */
void dlv_pool_submit(struct dlv *d, struct dlv_job *j);
void dlv_pool_kick(struct dlv *d, struct dlv_pool *p);
void dlv_pool_down(struct dlv *d, struct dlv_pool *p, const char *why);
void dlv_pools_tick(struct dlv *d);
void dlv_pools_close(struct dlv *d);
bool dlv_pools_idle(const struct dlv *d);
void dlv_pools_retry(struct dlv *d);
void dlv_pools_free(struct dlv *d);

/* dlv_metrics.c: the census of the messages held, for the metrics (a walk
 * over every message: call it at most once a second) */
void dlv_census_publish(struct dlv *d);

/* dlv_dns.c: hop host names on the ring */
int dlv_dns_open(struct dlv *d);
void dlv_dns_free(struct dlv *d);
bool dlv_dns_busy(const struct dlv *d);
bool dlv_dns_addr(struct dlv *d, struct dlv_pool *p, struct sockaddr_storage *ss, socklen_t *sl);
bool dlv_dns_next(struct dlv *d, struct dlv_pool *p, const struct sockaddr_storage *failed,
                  const char *why);

/* dlv_ctl.c */
int dlv_ctl_open(struct dlv *d);
void dlv_ctl_close(struct dlv *d);
void dlv_ctl_free(struct dlv *d);

#endif
