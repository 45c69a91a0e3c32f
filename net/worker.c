/* worker.c - one io_uring event loop per worker thread: multishot accept on
 * the worker's own SO_REUSEPORT listeners, multishot receive into a provided
 * buffer ring, sends, a 1 s tick for timeouts and snapshot pick-up, and the
 * hand-over of every message's bytes to the worker's queue journal
 * (net/queue.c), whose commit callback sends the 250. Everything here runs
 * on the worker's own thread; only pool_* are called by the main thread.
 * Listening sockets and the io_uring probe are opened by listen.c. */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "authpool.h"
#include "config.h"
#include "deliver.h"
#include "filter.h"
#include "iplimit.h"
#include "journal.h"
#include "journal_file.h"
#include "listen.h"
#include "proxyio.h"
#include "qflush.h"
#include "queue.h"
#include "rlog.h"
#include "session.h"
#include "snap.h"
#include "spool.h"
#include "tls.h"
#include "uring.h"
#include "util.h"

/* The worker's own operations: the tag of user_data (layout in uring.h)
 * names the operation, the pointer the object it belongs to (conn,
 * listener or worker). OP_CALLBACK is uring.h's callback tag: other
 * modules' operations (the queue journal, the filters). */
enum op {
    OP_ACCEPT = 1,  /* struct listener */
    OP_RECV,        /* struct conn */
    OP_SEND,        /* struct conn */
    OP_CLOSE,       /* struct conn: close or cancel done */
    OP_CALLBACK,    /* struct uring_cb: another module's operation (queue, filters) */
    OP_TICK,        /* struct worker */
    OP_WAKE,        /* struct worker */
    OP_GREET,       /* struct conn: the greet pause is over */
};
_Static_assert(OP_CALLBACK == URING_TAG_CALLBACK, "enum op must keep uring.h's callback tag");
_Static_assert(OP_GREET <= URING_TAG_MASK, "enum op must fit the user_data tag");
_Static_assert(SESS_CHUNK_MAX == JRN_CHUNK_MAX, "a session chunk is one journal record");

#define BUF_GROUP 1
#define BUF_COUNT 1024          /* provided receive buffers per worker */
#define BUF_SIZE 8192
#define SQ_ENTRIES 4096
#define CQ_ENTRIES 65536        /* reaped every loop; multishot receives are bounded by BUF_COUNT */
#define BACKLOG_MAX (64 * 1024) /* held-back client input before receive pauses */
#define SEND_KEEP 4096          /* send buffers larger than this are freed when idle */
#define TLS_PLAIN_CHUNK 16384   /* decrypted bytes handed to the session at a time */
#define TICK_MS 1000            /* timeouts and snapshot pick-up */

enum conn_list { LIST_NONE = 0, LIST_CMD, LIST_DATA };

struct conn {
    _Alignas(16) struct worker *w;
    struct sess *sess;
    struct queue_txn *txn;      /* the message being received or committed */
    unsigned txn_phase;         /* sess_data_phase() it belongs to */
    bool committing;            /* txn is committed: its callback is due */
    bool tail_taken;            /* the session's last chunk is in txn */
    bool space_wait;            /* on the worker's wait list for journal space */
    struct conn *next_wait;
    struct conn *prev, *next;   /* in the worker's timeout list */
    struct conn *all_prev, *all_next; /* in the worker's list of every conn */
    struct conn *rearm_next;    /* on the -ENOBUFS re-arm list */
    enum conn_list list;
    uint64_t deadline;          /* monotonic milliseconds */
    int fd;
    unsigned inflight;          /* operations that still reference this conn */
    bool recv_armed;
    bool recv_cancel;           /* a cancel of the receive is in flight */
    bool rearm_wait;            /* on the -ENOBUFS re-arm list */
    bool send_busy;
    bool closing;
    bool filtering;             /* a filter job holds the conn (one inflight) */
    bool counted;               /* holds one of pool->sessions */
    bool ip_counted;            /* holds one session of its address in iplimit */
    bool greet_pending;         /* the greet-pause timer is armed */
    bool tarpit;                /* that timer holds the replies (unknown-recipient tarpit) */
    unsigned last_progress;     /* sess_progress() when the idle timer was reset */
    unsigned data_phase;        /* sess_data_phase() when the data timer was set */
    struct mx_addr peer;        /* client address, normalised once at accept (the real
                                   client's once a PROXY header named it) */
    struct proxyio *pio;        /* proxy listener: the header phase (until released) */
    enum listener_kind kind;    /* what the listener serves */
    bool health;                /* PROXY v2 LOCAL: the balancer's health check */
    struct tls_conn *tls;       /* non-NULL once TLS started (STARTTLS or implicit) */
    bool tls_ready;             /* handshake complete */
    bool auth_pending;          /* a password check is with the auth pool */
    bool peer_eof;              /* the client shut its sending side (EOF or close_notify) */
    bool io_failed;             /* a receive or send failed (reset): nothing more is sent */
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
    struct io_uring_buf_ring *br;
    char *bufs;
    struct listener *ls;
    unsigned nls;
    int efd;
    uint64_t efd_val;
    struct authpool_inbox *auth_inbox; /* password-check results for this worker */
    struct queue *q;            /* this worker's journal writer */
    struct conn *wait_head, *wait_tail; /* waiting for journal buffer space */
    struct __kernel_timespec tick_ts;
    struct sess_env env;
    struct snap *cur;           /* newest snapshot this worker uses */
    struct wsnap *snaps;        /* snapshots still used by sessions */
    unsigned nsnaps;
    struct clist cmd, data;
    unsigned nconns;
    uint32_t next_sid;
    struct conn *all;           /* every conn, linked at accept, unlinked when freed */
    struct conn *rearm_head, *rearm_tail; /* receives to re-arm after this batch */
    bool draining;
    uint64_t drain_deadline;
    uint64_t now;               /* monotonic seconds, read once per batch */
    uint64_t now_ms;            /* the same reading in milliseconds */
    struct worker_stats st;
    struct sess_counters ctr;   /* the sessions' counters (metrics) */
    struct filter_engine *fe;   /* content filters on this ring */
};

static void conn_after(struct conn *c);
static void conn_start(struct conn *c);
static void conn_close(struct conn *c);
static void tls_begin(struct conn *c);
static void auth_submit(struct conn *c);
static void proxy_begin(struct conn *c);
static void tls_input(struct conn *c, const char *buf, size_t len);

/* ---- small helpers ------------------------------------------------------ */

/* ud - encode object + op into user_data. */
static inline uint64_t ud(const void *obj, enum op op)
{
    return uring_ud(obj, op);
}

/* get_sqe - an SQE of the worker's ring. */
static struct io_uring_sqe *get_sqe(struct worker *w)
{
    return uring_get_sqe(&w->ring);
}

/* clock_read - coarse monotonic clock for timeouts, once per batch. */
static void clock_read(struct worker *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    w->now = (uint64_t)ts.tv_sec;
    w->now_ms = w->now * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- timeout lists -------------------------------------------------------- */

static struct clist *list_of(struct worker *w, enum conn_list l)
{
    return l == LIST_CMD ? &w->cmd : l == LIST_DATA ? &w->data : NULL;
}

static void list_remove(struct conn *c)
{
    struct clist *l = list_of(c->w, c->list);
    if (!l)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
    c->list = LIST_NONE;
}

static void list_append(struct conn *c, enum conn_list which, uint64_t deadline)
{
    struct clist *l = list_of(c->w, which);
    c->list = which;
    c->deadline = deadline;
    c->prev = l->tail;
    c->next = NULL;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

/* touch - new activity: the command timeout restarts; the data timeout
 * bounds the whole DATA phase and is set only when the phase begins. */
static void touch(struct conn *c)
{
    const struct config *cfg = sess_snap(c->sess)->cfg;
    if (sess_phase(c->sess) == SESS_PHASE_DATA) {
        unsigned d = sess_data_phase(c->sess);
        if (c->list != LIST_DATA || c->data_phase != d) {
            c->data_phase = d;
            list_remove(c);
            list_append(c, LIST_DATA, c->w->now_ms + cfg->timeout_data * 1000ull);
        }
        return;
    }
    /* only progress (a whole command) restarts the idle timer: a client
     * trickling one byte at a time cannot hold the session forever */
    unsigned p = sess_progress(c->sess);
    if (c->list == LIST_CMD && p == c->last_progress)
        return;
    c->last_progress = p;
    list_remove(c);
    list_append(c, LIST_CMD, c->w->now_ms + cfg->timeout_command * 1000ull);
}

/* ---- snapshots ------------------------------------------------------------ */

/* wsnap_find - this worker's record for snapshot s. Never allocates: w->cur
 * and every snapshot a session holds always have a record (wsnap_add runs
 * before a snapshot becomes w->cur; wsnap_release keeps records in use). */
static struct wsnap *wsnap_find(struct worker *w, struct snap *s)
{
    for (unsigned i = 0; i < w->nsnaps; i++)
        if (w->snaps[i].snap == s)
            return &w->snaps[i];
    die("worker %u: snapshot %llu has no record (broken invariant)", w->idx,
        (unsigned long long)s->gen);
}

/* wsnap_add - a record for s (nsess 0) unless there is one; false on
 * ENOMEM. The only allocation of snapshot tracking: at start and when a
 * reload is picked up, never on a client's behalf. */
static bool wsnap_add(struct worker *w, struct snap *s)
{
    for (unsigned i = 0; i < w->nsnaps; i++)
        if (w->snaps[i].snap == s)
            return true;
    struct wsnap *n = realloc(w->snaps, (w->nsnaps + 1) * sizeof(*n));
    if (!n)
        return false;
    w->snaps = n;
    n[w->nsnaps++] = (struct wsnap){.snap = s, .nsess = 0};
    return true;
}

/* wsnap_release - one session less on s; drop snapshots nobody uses. */
static void wsnap_release(struct worker *w, struct snap *s)
{
    struct wsnap *ws = wsnap_find(w, s);
    if (ws->nsess)
        ws->nsess--;
    for (unsigned i = 0; i < w->nsnaps;) {
        if (w->snaps[i].nsess == 0 && w->snaps[i].snap != w->cur) {
            snap_unref(w->snaps[i].snap);
            w->snaps[i] = w->snaps[--w->nsnaps];
        } else {
            i++;
        }
    }
}

/* snap_for_txn - sess_env hook: a new transaction uses the newest snapshot. */
static struct snap *snap_for_txn(void *arg, struct snap *cur)
{
    struct worker *w = arg;
    if (cur == w->cur)
        return cur;
    wsnap_find(w, w->cur)->nsess++;
    wsnap_release(w, cur);
    return w->cur;
}

/* pick_up_snapshot - adopt a newer published snapshot (at tick/wake). */
static void pick_up_snapshot(struct worker *w)
{
    if (snap_current_gen() == w->cur->gen)
        return;
    struct snap *old = w->cur, *s = snap_current();
    if (!wsnap_add(w, s)) {
        fprintf(stderr, "mxringd: worker %u: out of memory adopting configuration "
                        "generation %llu; trying again in a second\n", w->idx,
                (unsigned long long)s->gen);
        snap_unref(s);
        return;
    }
    w->cur = s;
    wsnap_find(w, old)->nsess++; /* borrow, so release can drop it when unused */
    wsnap_release(w, old);
}

/* ---- receive buffers --------------------------------------------------------- */

/* bufs_setup - register the provided-buffer ring for multishot receive. */
static int bufs_setup(struct worker *w)
{
    size_t ring_bytes = BUF_COUNT * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED)
        return -errno;
    w->bufs = malloc((size_t)BUF_COUNT * BUF_SIZE);
    if (!w->bufs)
        return -ENOMEM;
    struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)mem,
                                   .ring_entries = BUF_COUNT, .bgid = BUF_GROUP};
    int r = io_uring_register_buf_ring(&w->ring, &reg, 0);
    if (r < 0)
        return r;
    w->br = mem;
    io_uring_buf_ring_init(w->br);
    for (unsigned i = 0; i < BUF_COUNT; i++)
        io_uring_buf_ring_add(w->br, w->bufs + (size_t)i * BUF_SIZE, BUF_SIZE, (unsigned short)i,
                              io_uring_buf_ring_mask(BUF_COUNT), (int)i);
    io_uring_buf_ring_advance(w->br, BUF_COUNT);
    return 0;
}

/* buf_return - give receive buffer bid back to the kernel. */
static void buf_return(struct worker *w, unsigned bid)
{
    io_uring_buf_ring_add(w->br, w->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(BUF_COUNT), 0);
    io_uring_buf_ring_advance(w->br, 1);
}

/* ---- connections ------------------------------------------------------------- */

/* recv_arm - (re)start the multishot receive of c. */
static void recv_arm(struct conn *c)
{
    struct io_uring_sqe *sqe = get_sqe(c->w);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BUF_GROUP;
    io_uring_sqe_set_data64(sqe, ud(c, OP_RECV));
    c->recv_armed = true;
    c->inflight++;
}

/* recv_stop - cancel the multishot receive (flow control or close). */
static void recv_stop(struct conn *c)
{
    struct io_uring_sqe *sqe = get_sqe(c->w);
    io_uring_prep_cancel64(sqe, ud(c, OP_RECV), 0);
    io_uring_sqe_set_data64(sqe, ud(c, OP_CLOSE));
    c->recv_cancel = true;
    c->inflight++;
}

/* send_start - send c->sending from the start. */
static void send_start(struct conn *c)
{
    c->sent = 0;
    struct io_uring_sqe *sqe = get_sqe(c->w);
    io_uring_prep_send(sqe, c->fd, c->sending.data, c->sending.len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud(c, OP_SEND));
    c->send_busy = true;
    c->inflight++;
}

/* conn_flush_tls - encrypt the replies and send the ciphertext (also the
 * handshake flights). Replies are moved into TLS only when they can be
 * sent, so a client that does not read still stops the session. */
static void conn_flush_tls(struct conn *c)
{
    struct sb *out = sess_out(c->sess);
    if (c->send_busy)
        return;
    if (out->len) {
        if (c->tls_ready && tls_write(c->tls, out->data, out->len) < 0)
            sess_tls_failed(c->sess, tls_error(c->tls));
        sb_reset(out); /* before the handshake nothing may go out in the clear */
    }
    if (tls_pending_out(c->tls) == 0)
        return;
    sb_reset(&c->sending);
    tls_take_out(c->tls, &c->sending);
    if (c->sending.len)
        send_start(c);
}

static void greet_arm(struct conn *c, unsigned ms);

/* tarpit_hold - the session wants its replies held a while (the unknown-
 * recipient tarpit): arm the conn's timer (OP_GREET, unused after the
 * greeting) and send when it fires. A closing session is never held. */
static bool tarpit_hold(struct conn *c)
{
    if (sess_action(c->sess) == SESS_CLOSE)
        return false;
    if (c->tarpit)
        return true;
    unsigned ms = sess_reply_delay_ms(c->sess);
    if (!ms || c->greet_pending)
        return false;
    greet_arm(c, ms);
    c->tarpit = true;
    return true;
}

/* conn_flush - send queued replies unless a send is in flight. */
static void conn_flush(struct conn *c)
{
    if (tarpit_hold(c))
        return;
    if (c->tls) {
        conn_flush_tls(c);
        return;
    }
    struct sb *out = sess_out(c->sess);
    if (c->send_busy || out->len == 0)
        return;
    struct sb t = c->sending;
    c->sending = *out;
    *out = t;
    sb_reset(out);
    send_start(c);
}

/* conn_link_all - c joins the worker's list of every connection. */
static void conn_link_all(struct conn *c)
{
    struct worker *w = c->w;
    c->all_prev = NULL;
    c->all_next = w->all;
    if (w->all)
        w->all->all_prev = c;
    w->all = c;
    w->nconns++;
}

/* conn_unlink_all - c leaves the list of every connection (when freed). */
static void conn_unlink_all(struct conn *c)
{
    struct worker *w = c->w;
    if (c->all_prev)
        c->all_prev->all_next = c->all_next;
    else
        w->all = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
    w->nconns--;
}

/* conn_free - last reference gone: release everything. */
static void conn_free(struct conn *c)
{
    struct worker *w = c->w;
    wsnap_release(w, sess_snap(c->sess));
    if (c->txn)
        queue_txn_abort(c->txn); /* never committed: the client got no 250 */
    sess_free(c->sess);
    tls_conn_free(c->tls);
    sb_free(&c->sending);
    if (c->counted)
        atomic_fetch_sub_explicit(&w->pool->sessions, 1, memory_order_relaxed);
    if (c->ip_counted)
        ipl_release(&c->peer);
    conn_unlink_all(c);
    free(c);
}

/* conn_maybe_free - close the socket once nothing references the conn. */
static void conn_maybe_free(struct conn *c)
{
    if (!c->closing || c->inflight)
        return;
    if (c->fd >= 0) {
        sess_log_close(c->sess);
        struct io_uring_sqe *sqe = get_sqe(c->w);
        io_uring_prep_close(sqe, c->fd);
        io_uring_sqe_set_data64(sqe, ud(c, OP_CLOSE));
        c->fd = -1;
        c->inflight++;
        return;
    }
    conn_free(c);
}

/* conn_close_notify - a TLS session ends cleanly: queue close_notify and
 * send it after the last reply, before the socket is closed. Not after a
 * reset or a failed send, nor when the handshake never finished. */
static void conn_close_notify(struct conn *c)
{
    if (!c->tls || !c->tls_ready || c->io_failed || c->send_busy)
        return;
    if (tls_close_notify(c->tls) < 0 || tls_pending_out(c->tls) == 0)
        return;
    sb_reset(&c->sending);
    tls_take_out(c->tls, &c->sending);
    if (c->sending.len)
        send_start(c); /* holds the conn: the close waits for this send */
}

/* conn_close - begin closing: stop receiving; the socket is closed when the
 * last in-flight operation has completed. */
static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    list_remove(c);
    if (c->pio)
        proxyio_cancel(c->pio); /* the header timer goes; its release follows */
    if (c->recv_armed && !c->recv_cancel)
        recv_stop(c);
    if (c->greet_pending)
        uring_timeout_cancel(&c->w->ring, ud(c, OP_GREET));
    conn_close_notify(c);
    conn_maybe_free(c);
}

/* tls_begin - start the server side of a TLS handshake on c. */
static void tls_begin(struct conn *c)
{
    struct snap *sn = sess_snap(c->sess);
    c->tls = sn->tls ? tls_conn_new(sn->tls) : NULL;
    if (!c->tls)
        sess_tls_failed(c->sess, sn->tls ? "out of memory" : "no TLS context");
}

/* tls_input - ciphertext arrived: advance the handshake, hand decrypted
 * bytes to the session. */
static void tls_input(struct conn *c, const char *buf, size_t len)
{
    if (tls_feed(c->tls, buf, len) < 0) {
        sess_tls_failed(c->sess, "out of memory");
        return;
    }
    if (!c->tls_ready) {
        int r = tls_handshake(c->tls);
        if (r < 0)
            sess_tls_failed(c->sess, tls_error(c->tls));
        if (r <= 0)
            return;
        c->tls_ready = true;
        sess_tls_started(c->sess, tls_version(c->tls), tls_cipher(c->tls));
        sess_greet(c->sess); /* implicit TLS: the banner comes now */
    }
    char plain[TLS_PLAIN_CHUNK];
    for (;;) {
        ssize_t n = tls_read(c->tls, plain, sizeof(plain));
        if (n > 0) {
            sess_input(c->sess, plain, (size_t)n);
            continue;
        }
        if (n == TLS_READ_CLOSED)
            c->peer_eof = true; /* what came before it is still answered */
        else if (n == TLS_READ_ERROR)
            sess_tls_failed(c->sess, tls_error(c->tls));
        break;
    }
    explicit_bzero(plain, sizeof(plain)); /* may have held an AUTH response */
}

/* auth_submit - hand the session's credentials to the verifier threads. */
static void auth_submit(struct conn *c)
{
    const char *user, *pass;
    size_t ulen, plen;
    sess_auth_creds(c->sess, &user, &ulen, &pass, &plen);
    enum authpool_submit_rc rc = authpool_submit(c->w->pool->auth, c->w->auth_inbox,
                                                 sess_snap(c->sess), user, ulen, pass, plen,
                                                 (uint64_t)(uintptr_t)c);
    if (rc == AUTHPOOL_QUEUED) {
        c->auth_pending = true;
        c->inflight++;
        return;
    }
    sess_auth_done(c->sess, rc == AUTHPOOL_BUSY ? SESS_AUTH_BUSY : SESS_AUTH_FAIL,
                   rc == AUTHPOOL_BUSY ? "verifier busy" : "invalid credentials");
}

/* auth_result - a verification finished (drained on the worker's eventfd). */
static void auth_result(void *arg, const struct authpool_result *r)
{
    (void)arg;
    struct conn *c = (struct conn *)(uintptr_t)r->cookie;
    c->auth_pending = false;
    c->inflight--;
    if (c->closing) {
        conn_maybe_free(c);
        return;
    }
    sess_auth_done(c->sess, r->status == AUTHPOOL_OK ? SESS_AUTH_OK : SESS_AUTH_FAIL,
                   authpool_status_text(r->status));
    sess_input(c->sess, NULL, 0);
    conn_after(c);
}

/* unknown_rcpt - sess_env hook: one more unknown recipient of peer in the
 * current 10-minute window (iplimit, shared by all workers). */
static unsigned unknown_rcpt(void *arg, const struct mx_addr *peer)
{
    struct worker *w = arg;
    return ipl_unknown_add(peer, (uint32_t)(w->now / IPL_UNKNOWN_WINDOW_S));
}

/* want_filter - sess_env hook: does this snapshot configure a filter? */
static bool want_filter(void *arg, const struct snap *snap)
{
    (void)arg;
    return filter_wanted(snap->cfg);
}

/* filter_log - a filter's line into the session's receivelog. */
static void filter_log(void *arg, const char *line)
{
    struct conn *c = arg;
    sess_log(c->sess, "%s", line);
}

/* filter_done - the filters' verdict (may run inside filter_start). */
static void filter_done(void *arg, enum sess_verdict v, const char *detail)
{
    struct conn *c = arg;
    c->filtering = false;
    c->inflight--;
    sess_filter_done(c->sess, v, detail);
    if (c->closing)
        conn_maybe_free(c);
    else
        conn_after(c);
}

/* filter_read - the filters' message source: read back from the journal
 * segments (page cache) of c's transaction (struct filter_src read). */
static long filter_read(void *arg, size_t off, void *buf, size_t cap)
{
    struct conn *c = arg;
    return (long)queue_txn_read(c->txn, off, buf, cap);
}

/* filter_written - queue_written_fn: the message is written; filter it. */
static void filter_written(void *arg, int err)
{
    struct conn *c = arg;
    if (err || c->closing) {
        filter_done(c, SESS_VERDICT_TEMPFAIL, err ? "queue journal write failed" : "");
        return;
    }
    const struct filter_src src = {.len = queue_txn_size(c->txn), .read = filter_read, .arg = c};
    filter_start(c->w->fe, sess_snap(c->sess)->cfg, &src, filter_log, filter_done, c);
}

/* filter_begin - run the content filters over the completed message, read
 * back from the journal once all of it is written (never held in memory). */
static void filter_begin(struct conn *c)
{
    c->filtering = true;
    c->inflight++;
    queue_txn_written(c->txn, filter_written, c);
}

/* ---- messages into the journal ------------------------------------------------ */

/* txn_drop - abort c's uncommitted transaction. */
static void txn_drop(struct conn *c)
{
    queue_txn_abort(c->txn);
    c->txn = NULL;
    c->tail_taken = false;
}

/* txn_check - drop a transaction the session has left (refused at its end,
 * RSET, filter reject, client gone) or that belongs to an older DATA. */
static void txn_check(struct conn *c)
{
    if (!c->txn || c->committing)
        return;
    if (sess_phase(c->sess) == SESS_PHASE_DATA && sess_data_phase(c->sess) == c->txn_phase)
        return;
    txn_drop(c);
}

/* space_wait - park c until the journal has buffer space again. */
static void space_wait(struct conn *c)
{
    struct worker *w = c->w;
    if (c->space_wait)
        return;
    c->space_wait = true;
    c->inflight++; /* held by the wait list */
    c->next_wait = NULL;
    if (w->wait_tail)
        w->wait_tail->next_wait = c;
    else
        w->wait_head = c;
    w->wait_tail = c;
}

/* on_space - queue_space_fn: resume every parked connection. */
static void on_space(void *arg)
{
    struct worker *w = arg;
    struct conn *c = w->wait_head;
    w->wait_head = w->wait_tail = NULL;
    while (c) {
        struct conn *next = c->next_wait;
        c->space_wait = false;
        c->inflight--;
        if (c->closing)
            conn_maybe_free(c);
        else
            conn_after(c);
        c = next;
    }
}

/* txn_put - message bytes into c's transaction (begun on first use): 0, or
 * -EAGAIN when c must wait for space. A failed transaction swallows the
 * bytes: its commit reports the error. */
static int txn_put(struct conn *c, const char *p, size_t n)
{
    if (!c->txn) {
        c->txn = queue_txn_begin(c->w->q);
        if (!c->txn)
            die("worker %u: out of memory", c->w->idx);
        c->txn_phase = sess_data_phase(c->sess);
    }
    if (n == 0)
        return 0;
    if (queue_txn_append(c->txn, p, n) == -EAGAIN) {
        space_wait(c);
        return -EAGAIN;
    }
    return 0;
}

/* msg_done - the message's outcome: count it, tell the session. */
static void msg_done(struct conn *c, int err, const char *qid)
{
    struct worker *w = c->w;
    c->txn = NULL;
    c->tail_taken = false;
    if (err) {
        STAT_ADD(w->st.spool_errors, 1);
        fprintf(stderr, "mxringd: worker %u: message not queued: %s\n", w->idx, strerror(err));
    } else {
        STAT_ADD(w->st.messages, 1);
    }
    sess_spool_done(c->sess, err, qid);
    sess_input(c->sess, NULL, 0); /* commands pipelined behind the data */
}

/* commit_done - queue_commit_fn: the commit is durable (250) or failed. */
static void commit_done(void *arg, int err, const char *qid)
{
    struct conn *c = arg;
    c->committing = false;
    c->inflight--;
    if (c->closing) {
        c->txn = NULL;
        sess_spool_done(c->sess, err, qid);
        conn_maybe_free(c);
        return;
    }
    msg_done(c, err, qid);
    conn_after(c);
}

/* conn_commit - append the commit record; true when its callback is due. */
static bool conn_commit(struct conn *c)
{
    const struct sess_msg *m = sess_msg(c->sess);
    struct sb hdr = {0};
    int err = ENOMEM;
    if (spool_format_header(&hdr, m, queue_txn_id(c->txn), sess_snap(c->sess)->cfg->hostname,
                            queue_txn_time(c->txn)))
        err = -queue_txn_commit(c->txn, hdr.data, hdr.len, m->quarantine != NULL, commit_done,
                                c);
    else
        queue_txn_abort(c->txn);
    sb_free(&hdr);
    if (err) {
        msg_done(c, err, NULL);
        return false;
    }
    c->committing = true;
    c->inflight++;
    return true;
}

/* conn_tail - the session's last chunk into the transaction (once). */
static bool conn_tail(struct conn *c)
{
    if (c->tail_taken)
        return true;
    const struct sess_msg *m = sess_msg(c->sess);
    if (txn_put(c, m->tail, m->tail_len) < 0)
        return false;
    c->tail_taken = true;
    return true;
}

/* conn_message - move the message along: chunks into the journal, the
 * filters, the commit. Stops when c must wait (space, filters, commit). */
static void conn_message(struct conn *c)
{
    while (!c->closing) {
        txn_check(c);
        enum sess_action a = sess_action(c->sess);
        if (a == SESS_CHUNK) {
            size_t n;
            const char *p = sess_chunk(c->sess, &n);
            if (txn_put(c, p, n) < 0)
                return;
            sess_chunk_done(c->sess);
            sess_input(c->sess, NULL, 0);
        } else if (a == SESS_FILTER && !c->filtering) {
            if (!conn_tail(c))
                return;
            filter_begin(c); /* may decide at once */
        } else if (a == SESS_SPOOL && !c->committing) {
            if (!conn_tail(c) || conn_commit(c))
                return;
        } else {
            return;
        }
    }
}

/* conn_after - after any event: move the message along, send replies,
 * close. */
static void conn_after(struct conn *c)
{
    if (c->closing)
        return;
    conn_message(c);
    while (c->peer_eof && !c->closing) {
        /* process what is left; ends the session when stuck */
        enum sess_action before = sess_action(c->sess);
        sess_eof(c->sess);
        enum sess_action now = sess_action(c->sess);
        if (before != SESS_RUN || (now != SESS_CHUNK && now != SESS_SPOOL && now != SESS_FILTER))
            break;
        conn_message(c); /* the rest of the input made a chunk or ended a message */
    }
    if (c->closing)
        return;
    enum sess_action a = sess_action(c->sess);
    if (a == SESS_AUTH && !c->auth_pending)
        auth_submit(c);
    if (a == SESS_RUN && c->w->draining && !sess_in_transaction(c->sess))
        sess_shutdown(c->sess);
    conn_flush(c);
    if (sess_action(c->sess) == SESS_STARTTLS && !c->tls && sess_out(c->sess)->len == 0)
        tls_begin(c); /* the 220 is on its way in the clear; all else is TLS */
    a = sess_action(c->sess);
    if (a == SESS_CLOSE && !c->send_busy && !c->committing) {
        conn_close(c);
        return;
    }
    touch(c);
    if (a == SESS_CLOSE)
        return;
    /* flow control: receive only while the held-back input is small */
    size_t backlog = sess_backlog(c->sess);
    if (!c->recv_armed && !c->rearm_wait && !c->peer_eof && backlog < BACKLOG_MAX)
        recv_arm(c);
    else if (c->recv_armed && !c->recv_cancel && backlog >= BACKLOG_MAX)
        recv_stop(c);
}

/* admit - the limits at connect: max_sessions for everyone, the per-address
 * limits for clients outside trusted_networks. Returns 0 or the refusal. */
static enum sess_close_reason admit(struct conn *c)
{
    struct worker *w = c->w;
    const struct config *cfg = w->cur->cfg;
    unsigned n = atomic_fetch_add_explicit(&w->pool->sessions, 1, memory_order_relaxed);
    c->counted = true;
    if (n >= cfg->max_sessions || w->draining)
        return SESS_BY_LIMIT;
    if (sess_trusted(c->sess) || c->health)
        return 0;
    if (cfg->max_connect_rate_per_ip && !ipl_rate_ok(&c->peer, cfg->max_connect_rate_per_ip,
                                                     (uint32_t)(w->now / 60)))
        return SESS_BY_RATE;
    if (cfg->max_sessions_per_ip) {
        if (!ipl_acquire(&c->peer, cfg->max_sessions_per_ip))
            return SESS_BY_PER_IP;
        c->ip_counted = true;
    }
    return 0;
}

/* greet_arm - hold the banner for greet_pause_ms. */
static void greet_arm(struct conn *c, unsigned ms)
{
    uring_timeout_arm(&c->w->ring, &c->greet_ts, ms, ud(c, OP_GREET));
    c->greet_pending = true;
    c->inflight++;
}

/* on_greet - the greet pause or a tarpit hold ended (or was cancelled at
 * close). */
static void on_greet(struct conn *c, int res)
{
    c->inflight--;
    c->greet_pending = false;
    c->tarpit = false;
    if (c->closing) {
        conn_maybe_free(c);
        return;
    }
    if (res == -ETIME)
        sess_greet(c->sess);
    conn_after(c);
}

/* conn_new - set up a session for an accepted socket. */
static void conn_new(struct listener *l, int fd)
{
    struct worker *w = l->w;
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0) {
        close(fd);
        return;
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (c)
        mx_addr_from_sockaddr(&c->peer, (struct sockaddr *)&peer);
    struct sess *s = c ? sess_new(&w->env, w->cur, w->next_sid, &c->peer, l->port) : NULL;
    if (!s) {
        free(c);
        close(fd);
        return;
    }
    w->next_sid += w->pool->nworkers; /* ids: base + worker + k * nworkers (rlog.h) */
    c->w = w;
    c->sess = s;
    c->fd = fd;
    c->kind = l->kind;
    conn_link_all(c);
    wsnap_find(w, w->cur)->nsess++;
    if (l->proxy)
        proxy_begin(c); /* the PROXY header first; conn_start when it is in */
    else
        conn_start(c);
    conn_after(c);
}

/* conn_start - the limits, the mode, the banner (or the TLS handshake) of
 * a new session; its client address is final. */
static void conn_start(struct conn *c)
{
    struct worker *w = c->w;
    struct sess *s = c->sess;
    enum sess_close_reason refuse = admit(c);
    unsigned pause = w->cur->cfg->greet_pause_ms;
    bool tls_ok = w->cur->tls != NULL;
    sess_set_mode(s, (tls_ok && c->kind != LK_SMTPS ? SESS_MODE_STARTTLS : 0) |
                         (c->kind == LK_SMTPS ? SESS_MODE_TLS : 0) |
                         (c->kind == LK_SUBMISSION ? SESS_MODE_SUBMISSION : 0));
    STAT_ADD(w->st.by_listener[c->kind], 1);
    if (refuse) {
        STAT_ADD(w->st.refused, 1);
        sess_refuse(s, refuse);
    } else if (c->kind == LK_SMTPS) {
        STAT_ADD(w->st.connections, 1);
        sess_greet_wait(s); /* the banner goes out encrypted, after the handshake */
        tls_begin(c);
    } else if (pause && !sess_trusted(s)) {
        STAT_ADD(w->st.connections, 1);
        sess_greet_wait(s);
        greet_arm(c, pause);
    } else {
        STAT_ADD(w->st.connections, 1);
        sess_start(s);
    }
}

/* ---- behind a load balancer: the PROXY header phase (net/proxyio.c) ------ */

static void proxy_done(void *arg, const struct proxyio_result *r);
static void proxy_release(void *arg);
static const struct proxyio_ops proxy_ops = {.done = proxy_done, .release = proxy_release};

/* conn_input - received bytes to whoever reads them now: the PROXY
 * header phase, TLS, or the session. */
static void conn_input(struct conn *c, const char *buf, size_t len)
{
    if (c->pio && proxyio_pending(c->pio))
        proxyio_input(c->pio, buf, len);
    else if (c->tls)
        tls_input(c, buf, len);
    else
        sess_input(c->sess, buf, len);
}

/* proxy_begin - a proxy listener's connection: no banner until the
 * header is in; an untrusted sender is refused at once. */
static void proxy_begin(struct conn *c)
{
    c->pio = proxyio_start(&c->w->ring, c->w->cur->cfg, &c->peer, &proxy_ops, c);
    if (!c->pio) {
        sess_proxy_refused(c->sess, "out of memory");
        return;
    }
    c->inflight++; /* the header timer, until proxy_release */
    proxyio_input(c->pio, NULL, 0);
}

/* proxy_gone - the connection ended during the header phase. */
static void proxy_gone(struct conn *c, const char *why)
{
    if (c->pio && proxyio_pending(c->pio))
        proxyio_fail(c->pio, why);
}

/* proxy_done - the header (the session starts with the real client;
 * bytes after the header are its first input) or a refusal (no banner,
 * close). The caller runs conn_after. */
static void proxy_done(void *arg, const struct proxyio_result *r)
{
    struct conn *c = arg;
    if (!r->ok) {
        STAT_ADD(c->w->st.refused, 1);
        sess_proxy_refused(c->sess, r->why);
        return;
    }
    char via[SESS_VIA_MAX];
    proxyio_describe(r->hdr, &c->peer, via, sizeof(via));
    if (!r->hdr->local)
        c->peer = r->hdr->src;
    c->health = r->hdr->health;
    sess_set_peer(c->sess, &c->peer, via);
    conn_start(c);
    if (r->rest_len && sess_action(c->sess) != SESS_CLOSE)
        conn_input(c, r->rest, r->rest_len);
}

/* proxy_release - the header timer completed: the phase is over. */
static void proxy_release(void *arg)
{
    struct conn *c = arg;
    proxyio_free(c->pio);
    c->pio = NULL;
    c->inflight--;
    if (c->closing)
        conn_maybe_free(c);
    else
        conn_after(c);
}

/* ---- completions -------------------------------------------------------------- */

/* rearm_later - a receive stopped for lack of buffers restarts after the
 * current batch has returned its buffers. */
static void rearm_later(struct conn *c)
{
    struct worker *w = c->w;
    c->rearm_next = NULL; /* linked through the conn: no allocation, cannot fail */
    if (w->rearm_tail)
        w->rearm_tail->rearm_next = c;
    else
        w->rearm_head = c;
    w->rearm_tail = c;
    c->rearm_wait = true;
    c->inflight++; /* held by the re-arm list */
}

/* on_recv - a multishot receive completion. */
static void on_recv(struct conn *c, struct io_uring_cqe *cqe)
{
    struct worker *w = c->w;
    int res = cqe->res;
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        c->recv_armed = false;
        c->recv_cancel = false;
        c->inflight--;
    }
    if (res > 0) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        STAT_ADD(w->st.bytes, (uint64_t)res);
        if (!c->closing)
            conn_input(c, w->bufs + (size_t)bid * BUF_SIZE, (size_t)res);
        buf_return(w, bid);
    } else if (res == -ENOBUFS) {
        STAT_ADD(w->st.enobufs, 1);
        if (!c->recv_armed && !c->closing && !c->rearm_wait)
            rearm_later(c);
    } else if (res == 0) {
        c->peer_eof = true; /* half-close: answer what was sent, then close */
        proxy_gone(c, "connection closed before the PROXY header");
    } else if (res != -ECANCELED && !c->closing) {
        c->io_failed = true;
        proxy_gone(c, "connection failed before the PROXY header");
        sess_gone(c->sess, res == -ECONNRESET ? SESS_BY_PEER : SESS_BY_IOERR);
    }
    if (c->closing)
        conn_maybe_free(c);
    else
        conn_after(c);
}

/* on_send - a send completion: continue a short send or take the next batch. */
static void on_send(struct conn *c, int res)
{
    c->inflight--;
    c->send_busy = false;
    if (res < 0) {
        c->io_failed = true;
        sess_gone(c->sess, res == -EPIPE || res == -ECONNRESET ? SESS_BY_PEER : SESS_BY_IOERR);
    } else if (c->sent + (size_t)res < c->sending.len) {
        c->sent += (size_t)res;
        struct io_uring_sqe *sqe = get_sqe(c->w);
        io_uring_prep_send(sqe, c->fd, c->sending.data + c->sent, c->sending.len - c->sent,
                           MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, ud(c, OP_SEND));
        c->send_busy = true;
        c->inflight++;
        return;
    }
    if (c->sending.cap > SEND_KEEP)
        sb_free(&c->sending);
    else
        sb_reset(&c->sending);
    if (c->closing) {
        conn_maybe_free(c);
        return;
    }
    if (sess_backlog(c->sess) && sess_action(c->sess) == SESS_RUN)
        sess_input(c->sess, NULL, 0); /* input held while replies were unread */
    conn_after(c);
}

/* accept_arm - (re)start the multishot accept of a listener. */
static void accept_arm(struct listener *l)
{
    struct io_uring_sqe *sqe = get_sqe(l->w);
    io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ud(l, OP_ACCEPT));
}

/* on_accept - a new connection, or the end of the multishot accept. */
static void on_accept(struct listener *l, struct io_uring_cqe *cqe)
{
    struct worker *w = l->w;
    if (cqe->res >= 0) {
        if (w->draining)
            close(cqe->res);
        else
            conn_new(l, cqe->res);
    } else if (cqe->res == -EMFILE || cqe->res == -ENFILE) {
        static _Thread_local uint64_t last_warn;
        if (last_warn != w->now) {
            last_warn = w->now;
            fprintf(stderr, "mxringd: worker %u: accept: %s (raise the file limit)\n", w->idx,
                    strerror(-cqe->res));
        }
    }
    if (!(cqe->flags & IORING_CQE_F_MORE) && !w->draining && l->fd >= 0)
        accept_arm(l);
}

/* for_each_conn - call fn once on every connection that is not closing.
 * Walks the list of every conn, which fn cannot change: a conn is linked
 * only in conn_new (an accept completion) and unlinked only in conn_free
 * (a close completion), and fn reaps no completion; fn may move conns
 * between the timeout lists freely. No allocation, so it cannot fail. */
static void for_each_conn(struct worker *w, void (*fn)(struct conn *))
{
    for (struct conn *c = w->all, *next; c; c = next) {
        next = c->all_next;
        if (!c->closing)
            fn(c);
    }
}

static void shut_one(struct conn *c)
{
    sess_shutdown(c->sess);
    conn_after(c);
}

/* drain_begin - SIGTERM: stop accepting; idle sessions get 421 now, those
 * in a transaction get grace_seconds to finish. */
static void drain_begin(struct worker *w)
{
    w->draining = true;
    w->drain_deadline = w->now + w->pool->grace_seconds;
    for (unsigned i = 0; i < w->nls; i++)
        uring_cancel(&w->ring, ud(&w->ls[i], OP_ACCEPT));
    io_uring_submit(&w->ring);
    for (unsigned i = 0; i < w->nls; i++) {
        close(w->ls[i].fd);
        w->ls[i].fd = -1;
    }
    for_each_conn(w, conn_after);
}

/* expire - time out connections at the head of a deadline-ordered list. */
static void expire(struct worker *w, struct clist *l)
{
    while (l->head && l->head->deadline <= w->now_ms) {
        struct conn *c = l->head;
        list_remove(c);
        sess_timeout(c->sess);
        conn_after(c); /* may re-queue c, always with a later deadline */
    }
}

/* tick_arm - the next 1 s tick. */
static void tick_arm(struct worker *w)
{
    uring_timeout_arm(&w->ring, &w->tick_ts, TICK_MS, ud(w, OP_TICK));
}

static void wake_arm(struct worker *w)
{
    struct io_uring_sqe *sqe = get_sqe(w);
    io_uring_prep_read(sqe, w->efd, &w->efd_val, sizeof(w->efd_val), 0);
    io_uring_sqe_set_data64(sqe, ud(w, OP_WAKE));
}

/* on_tick - once a second: snapshots, timeouts, the shutdown grace. */
static void on_tick(struct worker *w)
{
    pick_up_snapshot(w);
    expire(w, &w->cmd);
    expire(w, &w->data);
    if (w->draining && w->now >= w->drain_deadline)
        for_each_conn(w, shut_one);
    tick_arm(w);
}

static void on_wake(struct worker *w)
{
    queue_reap(w->q);
    if (w->auth_inbox)
        authpool_drain(w->auth_inbox, auth_result, w);
    pick_up_snapshot(w);
    if (atomic_load(&w->pool->stopping) && !w->draining)
        drain_begin(w);
    wake_arm(w);
}

/* handle - dispatch one completion by the op in its user_data. */
static void handle(struct worker *w, struct io_uring_cqe *cqe)
{
    uint64_t data = io_uring_cqe_get_data64(cqe);
    void *obj = uring_ud_obj(data);
    enum op op = (enum op)uring_ud_tag(data);
    switch (op) {
    case OP_ACCEPT: on_accept(obj, cqe); break;
    case OP_RECV: on_recv(obj, cqe); break;
    case OP_SEND: on_send(obj, cqe->res); break;
    case OP_CALLBACK: uring_cb_dispatch(cqe); break;
    case OP_CLOSE: {
        struct conn *c = obj;
        c->inflight--;
        conn_maybe_free(c);
        break;
    }
    case OP_TICK: on_tick(w); break;
    case OP_WAKE: on_wake(w); break;
    case OP_GREET: on_greet(obj, cqe->res); break;
    default: break; /* user_data 0: cancel requests of our own */
    }
}

/* rearm_pending - receives stopped by -ENOBUFS restart once the batch has
 * returned its buffers. */
static void rearm_pending(struct worker *w)
{
    struct conn *next = w->rearm_head;
    w->rearm_head = w->rearm_tail = NULL;
    while (next) {
        struct conn *c = next;
        next = c->rearm_next;
        c->rearm_next = NULL;
        c->inflight--;
        c->rearm_wait = false;
        if (c->closing)
            conn_maybe_free(c);
        else
            conn_after(c);
    }
}

/* test_stall - test hook (MXRINGD_TEST_HOOKS, SIGUSR2): stop this loop
 * until shutdown, so the watchdog test sees the pings stop. */
static void test_stall(struct worker *w)
{
    fprintf(stderr, "mxringd: worker %u: stalled by the test hook\n", w->idx);
    while (!atomic_load(&w->pool->stopping))
        usleep(20000);
}

/* loop - the event loop; returns when draining is complete. Each pass
 * bumps st.loops: the watchdog's proof that this worker makes progress
 * (the 1 s tick guarantees a pass per second even when idle). */
static void loop(struct worker *w)
{
    uint64_t overflow_warned = 0;
    for (;;) {
        STAT_ADD(w->st.loops, 1);
        if (atomic_load_explicit(&w->pool->test_stall, memory_order_relaxed) == w->idx + 1)
            test_stall(w);
        int r = io_uring_submit_and_wait(&w->ring, 1);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
            die("worker %u: io_uring_submit_and_wait: %s", w->idx, strerror(-r));
        clock_read(w);
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&w->ring, head, cqe) {
            handle(w, cqe);
            n++;
        }
        io_uring_cq_advance(&w->ring, n);
        rearm_pending(w);
        queue_kick(w->q, w->now_ms); /* group commit: one write for this turn */
        if ((*w->ring.sq.kflags & IORING_SQ_CQ_OVERFLOW) && overflow_warned != w->now) {
            overflow_warned = w->now;
            fprintf(stderr, "mxringd: worker %u: completion queue overflow\n", w->idx);
        }
        if (w->draining && w->nconns == 0 && queue_idle(w->q))
            return;
    }
}

/* ring_setup - the ring with the best flags this kernel takes. */
static int ring_setup(struct worker *w)
{
    static const unsigned tries[] = {
        IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN,
        IORING_SETUP_CQSIZE,
    };
    int r = -EINVAL;
    for (size_t i = 0; i < MX_ARRAY_LEN(tries) && r == -EINVAL; i++) {
        struct io_uring_params p = {.flags = tries[i], .cq_entries = CQ_ENTRIES};
        r = io_uring_queue_init_params(SQ_ENTRIES, &w->ring, &p);
    }
    return r;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    int r = ring_setup(w);
    if (r < 0)
        die("worker %u: io_uring setup failed: %s (is io_uring disabled by the "
            "kernel.io_uring_disabled sysctl or a seccomp filter?)", w->idx, strerror(-r));
    if ((r = bufs_setup(w)) < 0)
        die("worker %u: io_uring buffer ring: %s (kernel 5.19 or later is needed)", w->idx,
            strerror(-r));
    if (!(w->fe = filter_engine_new(&w->ring, w->idx)))
        die("worker %u: out of memory", w->idx);
    char err[256];
    struct queue_params qp = {.worker = w->idx, .journal_dirfd = w->pool->journal_dirfd,
                              .segment_size = w->pool->segment_size, .flush = w->pool->flush,
                              .efd = w->efd, .on_space = on_space, .arg = w};
    if (!(w->q = queue_new(&w->ring, &qp, err, sizeof(err))))
        die("worker %u: queue journal: %s", w->idx, err);
    for (unsigned i = 0; i < w->nls; i++)
        accept_arm(&w->ls[i]);
    tick_arm(w);
    wake_arm(w);
    clock_read(w);
    loop(w);
    io_uring_queue_exit(&w->ring);
    filter_engine_free(w->fe); /* no job is left: every conn is gone */
    return NULL;
}

/* ---- pool (main thread) ---------------------------------------------------- */

void pool_listen(struct pool *p, const struct config *cfg)
{
    listen_probe_addrs(cfg);
    p->workers = calloc(cfg->workers, sizeof(*p->workers));
    if (!p->workers)
        die("out of memory");
    p->nworkers = cfg->workers;
    for (unsigned i = 0; i < p->nworkers; i++) {
        struct worker *w = aligned_alloc(64, (sizeof(*w) + 63) / 64 * 64);
        if (!w)
            die("out of memory");
        memset(w, 0, sizeof(*w));
        w->idx = i;
        w->pool = p;
        w->ls = listen_open(w, cfg, &w->nls);
        p->workers[i] = w;
    }
}

/* journal_start - the journal folder and the materializer thread. */
static void journal_start(struct pool *p, const struct config *cfg)
{
    char path[4200], err[512];
    snprintf(path, sizeof(path), "%s/%s", cfg->workdir, JRN_DIR);
    if (mkdir(path, 0750) < 0 && errno != EEXIST)
        die("cannot create %s: %s", path, strerror(errno));
    p->journal_dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (p->journal_dirfd < 0)
        die("cannot open %s: %s", path, strerror(errno));
    p->segment_size = cfg->journal_segment_size;
    p->flush = qflush_start(cfg->workdir, p->journal_dirfd, p->segment_size, p->nworkers, err,
                            sizeof(err));
    if (!p->flush)
        die("queue journal: %s", err);
}

void pool_start(struct pool *p, const struct config *cfg)
{
    journal_start(p, cfg);
    for (unsigned i = 0; i < p->nworkers; i++) {
        struct worker *w = p->workers[i];
        w->efd = eventfd(0, EFD_CLOEXEC);
        if (w->efd < 0)
            die("eventfd: %s", strerror(errno));
        if (p->auth && !(w->auth_inbox = authpool_inbox_new(w->efd)))
            die("out of memory");
        w->env = (struct sess_env){.worker = i,
                                   .ctr = &w->ctr,
                                   .rlog = p->rlog ? rlog_ring(p->rlog, i) : NULL,
                                   .snap_txn = snap_for_txn,
                                   .want_filter = want_filter,
                                   .unknown_rcpt = unknown_rcpt,
                                   .queue_full = dlv_queue_full,
                                   .arg = w};
        w->cur = snap_current();
        if (!wsnap_add(w, w->cur))
            die("out of memory");
        w->next_sid = p->sid_base + i + 1;
        int r = pthread_create(&w->thread, NULL, worker_main, w);
        if (r)
            die("cannot start worker thread: %s", strerror(r));
    }
}

void pool_stats(struct pool *p, struct worker_stats *sum)
{
    memset(sum, 0, sizeof(*sum));
    uint64_t *out = (uint64_t *)sum;
    for (unsigned i = 0; i < p->nworkers; i++) {
        const uint64_t *in = (const uint64_t *)&p->workers[i]->st;
        for (size_t k = 0; k < sizeof(*sum) / sizeof(uint64_t); k++)
            out[k] += __atomic_load_n(&in[k], __ATOMIC_RELAXED); /* R: pairs with STAT_ADD */
    }
}

void pool_sess_counters(struct pool *p, struct sess_counters *sum)
{
    memset(sum, 0, sizeof(*sum));
    for (unsigned i = 0; i < p->nworkers; i++)
        sess_counters_add(sum, &p->workers[i]->ctr);
}

uint64_t pool_loops(struct pool *p, unsigned i)
{
    return __atomic_load_n(&p->workers[i]->st.loops, __ATOMIC_RELAXED);
}

void pool_wake(struct pool *p)
{
    uint64_t one = 1;
    for (unsigned i = 0; i < p->nworkers; i++)
        if (write(p->workers[i]->efd, &one, sizeof(one)) < 0)
            fprintf(stderr, "mxringd: wake worker %u: %s\n", i, strerror(errno));
}

void pool_join(struct pool *p, struct worker_stats *sum)
{
    memset(sum, 0, sizeof(*sum));
    for (unsigned i = 0; i < p->nworkers; i++)
        pthread_join(p->workers[i]->thread, NULL);
    authpool_free(p->auth); /* verifiers gone before their inboxes */
    p->auth = NULL;
    qflush_stop(p->flush); /* materializes what the workers committed */
    p->flush = NULL;
    for (unsigned i = 0; i < p->nworkers; i++) {
        struct worker *w = p->workers[i];
        struct queue_stats qs;
        queue_get_stats(w->q, &qs);
        queue_free(w->q);
        sum->journal_syncs += qs.syncs;
        sum->journal_writes += qs.writes;
        for (int k = 0; k < 8; k++)
            sum->journal_hist[k] += qs.hist[k];
        authpool_inbox_free(w->auth_inbox);
        sum->connections += w->st.connections;
        sum->refused += w->st.refused;
        sum->messages += w->st.messages;
        sum->bytes += w->st.bytes;
        sum->spool_errors += w->st.spool_errors;
        sum->enobufs += w->st.enobufs;
        for (unsigned k = 0; k < w->nsnaps; k++)
            snap_unref(w->snaps[k].snap);
        free(w->snaps);
        free(w->bufs);
        free(w->ls);
        close(w->efd);
        free(w);
    }
    free(p->workers);
    p->workers = NULL;
    close(p->journal_dirfd);
}
