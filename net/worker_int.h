/* worker_int.h - private to the worker's files (worker.c: the loop and the
 * pool; conn.c: connections; conn_msg.c: messages into the journal and the
 * filters): the operation tags, struct conn and struct worker, and the
 * entry points they share. Nothing else includes it. */
#ifndef MXRING_WORKER_INT_H
#define MXRING_WORKER_INT_H

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "journal.h"
#include "listen.h"
#include "session.h"
#include "uring.h"
#include "util.h"
#include "worker.h"

struct authpool_result;
struct proxyio;
struct snap;

/* The worker's own operations: the tag of user_data (layout in uring.h)
 * names the operation, the pointer the object it belongs to (conn,
 * listener or worker). OP_CALLBACK is uring.h's callback tag: other
 * modules' operations (the queue journal, the filters). */
enum op {
    OP_ACCEPT = 1, /* struct listener */
    OP_RECV,       /* struct conn */
    OP_SEND,       /* struct conn */
    OP_CLOSE,      /* struct conn: close or cancel done */
    OP_CALLBACK,   /* struct uring_cb: another module's operation (queue, filters) */
    OP_TICK,       /* struct worker */
    OP_WAKE,       /* struct worker */
    OP_GREET,      /* struct conn: the greet pause is over */
};
_Static_assert(OP_CALLBACK == URING_TAG_CALLBACK, "enum op must keep uring.h's callback tag");
_Static_assert(OP_GREET <= URING_TAG_MASK, "enum op must fit the user_data tag");
_Static_assert(SESS_CHUNK_MAX == JRN_CHUNK_MAX, "a session chunk is one journal record");

#define BUF_GROUP 1
#define BUF_SIZE 8192

enum conn_list { LIST_NONE = 0, LIST_CMD, LIST_DATA };

struct conn {
    _Alignas(16) struct worker *w;
    struct sess *sess;
    struct queue_txn *txn; /* the message being received or committed */
    unsigned txn_phase;    /* sess_data_phase() it belongs to */
    bool committing;       /* txn is committed: its callback is due */
    bool tail_taken;       /* the session's last chunk is in txn */
    bool space_wait;       /* on the worker's wait list for journal space */
    struct conn *next_wait;
    struct conn *prev, *next;         /* in the worker's timeout list */
    struct conn *all_prev, *all_next; /* in the worker's list of every conn */
    struct conn *rearm_next;          /* on the -ENOBUFS re-arm list */
    enum conn_list list;
    uint64_t deadline; /* monotonic milliseconds */
    int fd;
    unsigned inflight; /* operations that still reference this conn */
    bool recv_armed;
    bool recv_cancel;  /* a cancel of the receive is in flight */
    bool recv_limited; /* the receive carries the multishot byte limit */
    bool rearm_wait;   /* on the -ENOBUFS re-arm list */
    bool send_busy;
    bool closing;
    bool filtering;               /* a filter job holds the conn (one inflight) */
    bool counted;                 /* holds one of pool->sessions */
    bool ip_counted;              /* holds one session of its address in iplimit */
    bool greet_pending;           /* the greet-pause timer is armed */
    bool tarpit;                  /* that timer holds the replies (unknown-recipient tarpit) */
    bool dnsbl_pending;           /* the DNSBL check holds the banner (one inflight) */
    const char *dnsbl_site;       /* blocked by this site (the snapshot's config) */
    struct milterio_result *mres; /* the milters' result for the message committed next */
    struct milterio_sess *ms;     /* the session's milter conversations (opened lazily) */
    bool milter_pending;          /* a command waits for the milters (one inflight) */
    bool milter_asking;           /* inside milterio_cmd: its verdict may come at once */
    struct sess_msg mcmd;         /* the command the milters are asked about */
    char *mquar;             /* the content filters' quarantine reason, kept over the milters */
    unsigned last_progress;  /* sess_progress() when the idle timer was reset */
    unsigned data_phase;     /* sess_data_phase() when the data timer was set */
    struct mx_addr peer;     /* client address, normalised once at accept (the real
                                   client's once a PROXY header named it) */
    struct proxyio *pio;     /* proxy listener: the header phase (until released) */
    enum listener_kind kind; /* what the listener serves */
    bool health;             /* PROXY v2 LOCAL: the balancer's health check */
    struct tls_conn *tls;    /* non-NULL once TLS started (STARTTLS or implicit) */
    bool tls_ready;          /* handshake complete */
    bool auth_pending;       /* a password check is with the auth pool */
    bool peer_eof;           /* the client shut its sending side (EOF or close_notify) */
    bool io_failed;          /* a receive or send failed (reset): nothing more is sent */
    struct __kernel_timespec greet_ts;
    struct sb sending;
    size_t sent;
};

struct wsnap {
    struct snap *snap;
    unsigned nsess;
};

struct clist {
    struct conn *head, *tail;
};

struct worker {
    _Alignas(16) unsigned idx;
    struct pool *pool;
    pthread_t thread;
    struct io_uring ring;
    /* the journal writer's ring: no DEFER_TASKRUN, so io-wq runs a batch's
     * write and its linked fdatasync back to back and posts the completion
     * itself, signalling efd (see jring_setup in worker.c) */
    struct io_uring jring;
    bool jring_ok;
    struct io_uring_buf_ring *br;
    char *bufs;
    struct listener *ls;
    unsigned nls;
    int efd;
    uint64_t efd_val;
    struct inbox *auth_inbox;           /* password-check results for this worker */
    struct queue *q;                    /* this worker's journal writer */
    struct conn *wait_head, *wait_tail; /* waiting for journal buffer space */
    struct __kernel_timespec tick_ts;
    struct sess_env env;
    struct snap *cur;    /* newest snapshot this worker uses */
    struct wsnap *snaps; /* snapshots still used by sessions */
    unsigned nsnaps;
    struct clist cmd, data;
    unsigned nconns;
    uint32_t next_sid;
    struct conn *all;                     /* every conn, linked at accept, unlinked when freed */
    struct conn *rearm_head, *rearm_tail; /* receives to re-arm after this batch */
    bool recv_single; /* no multishot byte limit (older kernels): one buffer per receive */
    bool draining;
    uint64_t drain_deadline;
    uint64_t now;    /* monotonic seconds, read once per batch */
    uint64_t now_ms; /* the same reading in milliseconds */
    struct worker_stats st;
    struct sess_counters ctr;   /* the sessions' counters (metrics) */
    struct filter_engine *fe;   /* content filters on this ring */
    struct dnsbl_engine *dnsbl; /* connect-time DNSBL checks on this ring */
};

/* ud - encode object + op into user_data. */
static inline uint64_t ud(const void *obj, enum op op)
{
    return uring_ud(obj, op);
}

/* get_sqe - an SQE of the worker's ring. */
static inline struct io_uring_sqe *get_sqe(struct worker *w)
{
    return uring_get_sqe(&w->ring);
}

/* ---- conn.c ---- */

/* conn_new - set up a session for an accepted socket. */
void conn_new(struct listener *l, int fd);
/* conn_after - after any event: move the message along, send replies,
 * close. */
void conn_after(struct conn *c);
/* conn_mres_drop - forget the milters' result of c's message (conn_msg.c). */
void conn_mres_drop(struct conn *c);
/* conn_maybe_free - close the socket once nothing references the conn. */
void conn_maybe_free(struct conn *c);
/* conn_list_remove - take c off its timeout list. */
void conn_list_remove(struct conn *c);
/* conn_on_recv, conn_on_send, conn_on_greet - c's completions. */
void conn_on_recv(struct conn *c, struct io_uring_cqe *cqe);
void conn_on_send(struct conn *c, int res);
void conn_on_greet(struct conn *c, int res);
/* conn_auth_result - a verification finished (authpool_drain callback). */
void conn_auth_result(void *arg, const struct authpool_result *r);

/* ---- conn_msg.c ---- */

/* conn_message_step - one step of the message for action a (CHUNK,
 * FILTER, SPOOL); true when the session moved on, false when c waits. */
bool conn_message_step(struct conn *c, enum sess_action a);
/* conn_milter_ask - the session's command waits for the milters: ask
 * them; true when their verdict came at once (the session moved on). */
bool conn_milter_ask(struct conn *c);
/* conn_txn_check - drop a journal transaction the session has left. */
void conn_txn_check(struct conn *c);
/* conn_on_space - queue_space_fn: resume every parked connection. */
void conn_on_space(void *arg);

/* ---- worker.c ---- */

/* worker_wsnap_find - this worker's record for snapshot s (never fails). */
struct wsnap *worker_wsnap_find(struct worker *w, struct snap *s);
/* worker_wsnap_release - one session less on s. */
void worker_wsnap_release(struct worker *w, struct snap *s);
/* worker_buf_return - give receive buffer bid back to the kernel. */
void worker_buf_return(struct worker *w, unsigned bid);

#endif
