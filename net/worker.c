/* worker.c - one io_uring event loop per worker thread: multishot accept on
 * the worker's own SO_REUSEPORT listeners, multishot receive into a provided
 * buffer ring, sends, a 1 s tick for timeouts and snapshot pick-up, and the
 * linked open/write/fsync/close/rename/fsync chain that makes a message
 * durable before its 250. Everything here runs on the worker's own thread;
 * only pool_* are called by the main thread. Listening sockets and the
 * io_uring probe are opened by listen.c. */
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
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "authpool.h"
#include "config.h"
#include "filter.h"
#include "iplimit.h"
#include "listen.h"
#include "rlog.h"
#include "session.h"
#include "snap.h"
#include "spool.h"
#include "tls.h"
#include "uring.h"
#include "util.h"

/* The worker's own operations: the tag of user_data (layout in uring.h)
 * names the operation, the pointer the object it belongs to (conn,
 * listener, spool job or worker). OP_CALLBACK is uring.h's callback tag:
 * other modules' operations. */
enum op {
    OP_ACCEPT = 1,  /* struct listener */
    OP_RECV,        /* struct conn */
    OP_SEND,        /* struct conn */
    OP_CLOSE,       /* struct conn: close or cancel done */
    OP_CALLBACK,    /* struct uring_cb: another module's operation */
    OP_SP_OPEN,     /* struct spool_job: the six linked steps ... */
    OP_SP_WRITE,
    OP_SP_FSYNC,
    OP_SP_CLOSE,
    OP_SP_RENAME,
    OP_SP_DIRSYNC,  /* struct dirsync: one fsync of new/ for a batch of renames */
    OP_SP_CLEANUP,  /* struct spool_job: close slot / unlink after failure */
    OP_TICK,        /* struct worker */
    OP_WAKE,        /* struct worker */
    OP_GREET,       /* struct conn: the greet pause is over */
};
_Static_assert(OP_CALLBACK == URING_TAG_CALLBACK, "enum op must keep uring.h's callback tag");
_Static_assert(OP_GREET <= URING_TAG_MASK, "enum op must fit the user_data tag");
#define SP_STEPS 6                  /* results kept: the chain's five + the dir sync */
#define SP_CHAIN 5                  /* linked operations per message */

#define BUF_GROUP 1
#define BUF_COUNT 1024          /* provided receive buffers per worker */
#define BUF_SIZE 8192
#define SQ_ENTRIES 4096
#define CQ_ENTRIES 65536        /* reaped every loop; multishot receives are bounded by BUF_COUNT */
#define FILE_SLOTS 256          /* concurrent queue-file writes per worker */
#define BACKLOG_MAX (64 * 1024) /* held-back client input before receive pauses */
#define SEND_KEEP 4096          /* send buffers larger than this are freed when idle */
#define TLS_PLAIN_CHUNK 16384   /* decrypted bytes handed to the session at a time */
#define TICK_MS 1000            /* timeouts and snapshot pick-up */

enum conn_list { LIST_NONE = 0, LIST_CMD, LIST_DATA };

struct conn {
    _Alignas(16) struct worker *w;
    struct sess *sess;
    struct spool_job *job;
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
    struct mx_addr peer;        /* client address, normalised once at accept */
    struct tls_conn *tls;       /* non-NULL once TLS started (STARTTLS or implicit) */
    bool tls_ready;             /* handshake complete */
    bool auth_pending;          /* a password check is with the auth pool */
    bool peer_eof;              /* the client shut its sending side (EOF or close_notify) */
    bool io_failed;             /* a receive or send failed (reset): nothing more is sent */
    struct __kernel_timespec greet_ts;
    struct sb sending;
    size_t sent;
};

struct spool_job {
    _Alignas(16) struct conn *c;
    int slot;
    int pending;
    int tmp_dirfd, new_dirfd;   /* queue or quarantine */
    bool cleanup;
    int err;                    /* errno of the failed chain, kept across cleanup */
    int res[SP_STEPS];
    size_t total;
    struct sb hdr;
    struct iovec iov[2];
    char id[SPOOL_ID_LEN + 1];
    bool dirsynced;             /* the rename is covered by a directory fsync */
    struct spool_job *next_wait;
    struct spool_job *next_sync;
};

/* Group commit of renames: one fsync of a new/ folder covers every rename
 * that completed before it was submitted. */
struct dirsync {
    _Alignas(16) struct worker *w;
    int fd;
    bool inflight;
    struct spool_job *wait_head, *wait_tail; /* renamed, waiting for the next fsync */
    struct spool_job *batch;                 /* covered by the fsync in flight */
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
    int tmp_dirfd, new_dirfd;   /* queue/tmp, queue/new */
    int qtmp_dirfd, qnew_dirfd; /* quarantine/tmp, quarantine/new */
    struct dirsync sync_queue, sync_quarantine;
    struct __kernel_timespec tick_ts;
    struct sess_env env;
    struct snap *cur;           /* newest snapshot this worker uses */
    struct wsnap *snaps;        /* snapshots still used by sessions */
    unsigned nsnaps;
    struct clist cmd, data;
    unsigned nconns;
    uint32_t next_sid;
    uint32_t qseq;
    int free_slots[FILE_SLOTS];
    unsigned nfree_slots;
    struct spool_job *wait_head, *wait_tail;
    struct conn *all;           /* every conn, linked at accept, unlinked when freed */
    struct conn *rearm_head, *rearm_tail; /* receives to re-arm after this batch */
    bool draining;
    uint64_t drain_deadline;
    uint64_t now;               /* monotonic seconds, read once per batch */
    uint64_t now_ms;            /* the same reading in milliseconds */
    struct worker_stats st;
    struct filter_engine *fe;   /* content filters on this ring */
};

static void conn_after(struct conn *c);
static void conn_close(struct conn *c);
static void job_start(struct spool_job *j);
static void tls_begin(struct conn *c);
static void auth_submit(struct conn *c);
static void job_finish(struct spool_job *j, int err);

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

/* filter_read - the filters' message source over the session's in-memory
 * body (struct filter_src read; arg is the conn). */
static long filter_read(void *arg, size_t off, void *buf, size_t cap)
{
    struct conn *c = arg;
    const struct sess_msg *m = sess_msg(c->sess);
    if (off >= m->body_len)
        return 0;
    size_t n = m->body_len - off < cap ? m->body_len - off : cap;
    memcpy(buf, m->body + off, n);
    return (long)n;
}

/* filter_begin - run the content filters over the completed message (the
 * body stays in the session until filter_done). */
static void filter_begin(struct conn *c)
{
    const struct filter_src src = { .len = sess_msg(c->sess)->body_len, .read = filter_read,
                                    .arg = c };
    c->filtering = true;
    c->inflight++;
    filter_start(c->w->fe, sess_snap(c->sess)->cfg, &src, filter_log, filter_done, c);
}

/* conn_after - after any event: start the filters or a spool, send
 * replies, close. */
static void conn_after(struct conn *c)
{
    if (c->closing)
        return;
    if (c->peer_eof)
        sess_eof(c->sess); /* process what is left; ends the session when stuck */
    enum sess_action a = sess_action(c->sess);
    if (a == SESS_FILTER && !c->filtering) {
        filter_begin(c);
        if (c->closing)
            return;
        a = sess_action(c->sess);
    }
    if (a == SESS_SPOOL && !c->job) {
        struct spool_job *j = calloc(1, sizeof(*j));
        if (!j) {
            sess_spool_done(c->sess, ENOMEM, NULL);
            a = sess_action(c->sess);
        } else {
            j->c = c;
            c->job = j;
            c->inflight++;
            job_start(j);
        }
    }
    if (a == SESS_AUTH && !c->auth_pending)
        auth_submit(c);
    if (a == SESS_RUN && c->w->draining && !sess_in_transaction(c->sess))
        sess_shutdown(c->sess);
    conn_flush(c);
    if (sess_action(c->sess) == SESS_STARTTLS && !c->tls && sess_out(c->sess)->len == 0)
        tls_begin(c); /* the 220 is on its way in the clear; all else is TLS */
    a = sess_action(c->sess);
    if (a == SESS_CLOSE && !c->send_busy && !c->job) {
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
    if (sess_trusted(c->sess))
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
    w->next_sid += w->pool->nworkers; /* ids: worker + k * nworkers, unique per process */
    c->w = w;
    c->sess = s;
    c->fd = fd;
    conn_link_all(c);
    wsnap_find(w, w->cur)->nsess++;
    enum sess_close_reason refuse = admit(c);
    unsigned pause = w->cur->cfg->greet_pause_ms;
    bool tls_ok = w->cur->tls != NULL;
    sess_set_mode(s, (tls_ok && l->kind != LK_SMTPS ? SESS_MODE_STARTTLS : 0) |
                         (l->kind == LK_SMTPS ? SESS_MODE_TLS : 0) |
                         (l->kind == LK_SUBMISSION ? SESS_MODE_SUBMISSION : 0));
    if (refuse) {
        w->st.refused++;
        sess_refuse(s, refuse);
    } else if (l->kind == LK_SMTPS) {
        w->st.connections++;
        sess_greet_wait(s); /* the banner goes out encrypted, after the handshake */
        tls_begin(c);
    } else if (pause && !sess_trusted(s)) {
        w->st.connections++;
        sess_greet_wait(s);
        greet_arm(c, pause);
    } else {
        w->st.connections++;
        sess_start(s);
    }
    conn_after(c);
}

/* ---- queue file writes (the durable spool) -------------------------------- */

/* job_start - write the message: open (direct) -> writev -> fdatasync ->
 * close -> rename into new/ -> fsync(new/), all linked in one submission. */
static void job_start(struct spool_job *j)
{
    struct worker *w = j->c->w;
    if (w->nfree_slots == 0) {
        if (w->wait_tail)
            w->wait_tail->next_wait = j;
        else
            w->wait_head = j;
        w->wait_tail = j;
        return;
    }
    j->slot = w->free_slots[--w->nfree_slots];
    const struct sess_msg *m = sess_msg(j->c->sess);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    spool_make_id(j->id, &now, w->idx, w->qseq++);
    if (!spool_format_header(&j->hdr, m, j->id, sess_snap(j->c->sess)->cfg->hostname, &now)) {
        w->free_slots[w->nfree_slots++] = j->slot;
        j->slot = -1;
        job_finish(j, ENOMEM);
        return;
    }
    j->tmp_dirfd = m->quarantine ? w->qtmp_dirfd : w->tmp_dirfd;
    j->new_dirfd = m->quarantine ? w->qnew_dirfd : w->new_dirfd;
    j->iov[0] = (struct iovec){j->hdr.data, j->hdr.len};
    j->iov[1] = (struct iovec){(void *)m->body, m->body_len};
    j->total = j->hdr.len + m->body_len;
    if (io_uring_sq_space_left(&w->ring) < SP_CHAIN)
        io_uring_submit(&w->ring);
    struct io_uring_sqe *sqe;
    sqe = get_sqe(w);
    io_uring_prep_openat_direct(sqe, j->tmp_dirfd, j->id, O_WRONLY | O_CREAT | O_EXCL, 0640,
                                (unsigned)j->slot);
    sqe->flags |= IOSQE_IO_LINK;
    io_uring_sqe_set_data64(sqe, ud(j, OP_SP_OPEN));
    sqe = get_sqe(w);
    io_uring_prep_writev(sqe, j->slot, j->iov, 2, 0);
    sqe->flags |= IOSQE_FIXED_FILE | IOSQE_IO_LINK;
    io_uring_sqe_set_data64(sqe, ud(j, OP_SP_WRITE));
    sqe = get_sqe(w);
    io_uring_prep_fsync(sqe, j->slot, IORING_FSYNC_DATASYNC);
    sqe->flags |= IOSQE_FIXED_FILE | IOSQE_IO_LINK;
    io_uring_sqe_set_data64(sqe, ud(j, OP_SP_FSYNC));
    sqe = get_sqe(w);
    io_uring_prep_close_direct(sqe, (unsigned)j->slot);
    sqe->flags |= IOSQE_IO_LINK;
    io_uring_sqe_set_data64(sqe, ud(j, OP_SP_CLOSE));
    sqe = get_sqe(w);
    io_uring_prep_renameat(sqe, j->tmp_dirfd, j->id, j->new_dirfd, j->id, RENAME_NOREPLACE);
    io_uring_sqe_set_data64(sqe, ud(j, OP_SP_RENAME));
    j->pending = SP_CHAIN;
}

/* job_error - errno of a finished chain, 0 when the message is durable. A
 * short write (disk full) breaks the chain and counts as ENOSPC. */
static int job_error(const struct spool_job *j)
{
    for (int i = 0; i < SP_STEPS; i++)
        if (j->res[i] < 0 && j->res[i] != -ECANCELED)
            return -j->res[i];
    if (j->res[1] >= 0 && (size_t)j->res[1] != j->total)
        return ENOSPC;
    for (int i = 0; i < SP_STEPS; i++)
        if (j->res[i] < 0)
            return EIO;
    return 0;
}

/* job_cleanup - after a failure: free the file slot if the chain did not
 * close it, and remove the temporary file if it was not renamed, so nothing
 * partial stays visible. Returns the number of operations submitted. */
static int job_cleanup(struct spool_job *j)
{
    struct worker *w = j->c->w;
    int n = 0;
    j->cleanup = true;
    if (j->res[0] < 0)
        return 0; /* nothing was created */
    if (j->res[3] < 0) {
        struct io_uring_sqe *sqe = get_sqe(w);
        io_uring_prep_close_direct(sqe, (unsigned)j->slot);
        io_uring_sqe_set_data64(sqe, ud(j, OP_SP_CLEANUP));
        n++;
    }
    if (j->res[4] < 0 || j->res[SP_CHAIN] < 0) {
        /* not renamed: remove the temporary file; renamed but the folder
         * fsync failed: take it back out of new/ (the client gets 451 and
         * sends again, so keeping it would deliver the message twice) */
        struct io_uring_sqe *sqe = get_sqe(w);
        if (j->res[4] < 0)
            io_uring_prep_unlinkat(sqe, j->tmp_dirfd, j->id, 0);
        else
            io_uring_prep_unlinkat(sqe, j->new_dirfd, j->id, 0);
        io_uring_sqe_set_data64(sqe, ud(j, OP_SP_CLEANUP));
        n++;
    }
    return n;
}

/* job_finish - report to the session, recycle the slot, wake a waiter. */
static void job_finish(struct spool_job *j, int err)
{
    struct conn *c = j->c;
    struct worker *w = c->w;
    if (j->slot >= 0)
        w->free_slots[w->nfree_slots++] = j->slot;
    if (err) {
        w->st.spool_errors++;
        fprintf(stderr, "mxringd: worker %u: queue file %s: %s\n", w->idx, j->id, strerror(err));
    } else {
        w->st.messages++;
    }
    sess_spool_done(c->sess, err, j->id);
    c->job = NULL;
    c->inflight--;
    sb_free(&j->hdr);
    free(j);
    struct spool_job *next = w->wait_head;
    if (next && w->nfree_slots) {
        w->wait_head = next->next_wait;
        if (!w->wait_head)
            w->wait_tail = NULL;
        next->next_wait = NULL;
        job_start(next);
    }
    if (c->closing) {
        conn_maybe_free(c);
        return;
    }
    sess_input(c->sess, NULL, 0); /* commands pipelined behind the data */
    conn_after(c);
}

/* dirsync_kick - start an fsync of the folder for the renames waiting. */
static void dirsync_kick(struct dirsync *ds)
{
    if (ds->inflight || !ds->wait_head)
        return;
    ds->batch = ds->wait_head;
    ds->wait_head = ds->wait_tail = NULL;
    struct io_uring_sqe *sqe = get_sqe(ds->w);
    io_uring_prep_fsync(sqe, ds->fd, 0);
    io_uring_sqe_set_data64(sqe, ud(ds, OP_SP_DIRSYNC));
    ds->inflight = true;
}

static void job_settle(struct spool_job *j);

/* dirsync_enqueue - j is renamed; it is durable after the next dir fsync. */
static void dirsync_enqueue(struct spool_job *j)
{
    struct worker *w = j->c->w;
    struct dirsync *ds = j->new_dirfd == w->new_dirfd ? &w->sync_queue : &w->sync_quarantine;
    j->next_sync = NULL;
    if (ds->wait_tail)
        ds->wait_tail->next_sync = j;
    else
        ds->wait_head = j;
    ds->wait_tail = j;
    dirsync_kick(ds);
}

/* on_dirsync - the fsync of a folder finished: settle its whole batch. */
static void on_dirsync(struct dirsync *ds, int res)
{
    struct spool_job *j = ds->batch;
    ds->batch = NULL;
    ds->inflight = false;
    while (j) {
        struct spool_job *next = j->next_sync;
        j->res[SP_CHAIN] = res;
        j->dirsynced = true;
        job_settle(j);
        j = next;
    }
    dirsync_kick(ds);
}

/* job_settle - all of j's operations so far are in: clean up after a
 * failure, wait for the directory fsync, or report success. */
static void job_settle(struct spool_job *j)
{
    j->err = job_error(j);
    if (j->err) {
        j->pending = job_cleanup(j);
        if (j->pending == 0)
            job_finish(j, j->err);
        return;
    }
    if (!j->dirsynced) {
        dirsync_enqueue(j);
        return;
    }
    job_finish(j, 0);
}

/* on_spool - one CQE of a queue-file chain or its cleanup. */
static void on_spool(struct spool_job *j, enum op op, int res)
{
    if (!j->cleanup)
        j->res[op - OP_SP_OPEN] = res;
    if (op == OP_SP_CLEANUP && res < 0 && res != -ENOENT)
        fprintf(stderr, "mxringd: queue cleanup of %s: %s\n", j->id, strerror(-res));
    if (--j->pending > 0)
        return;
    if (j->cleanup)
        job_finish(j, j->err);
    else
        job_settle(j);
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
        w->st.bytes += (uint64_t)res;
        if (!c->closing && c->tls)
            tls_input(c, w->bufs + (size_t)bid * BUF_SIZE, (size_t)res);
        else if (!c->closing)
            sess_input(c->sess, w->bufs + (size_t)bid * BUF_SIZE, (size_t)res);
        buf_return(w, bid);
    } else if (res == -ENOBUFS) {
        w->st.enobufs++;
        if (!c->recv_armed && !c->closing && !c->rearm_wait)
            rearm_later(c);
    } else if (res == 0) {
        c->peer_eof = true; /* half-close: answer what was sent, then close */
    } else if (res != -ECANCELED && !c->closing) {
        c->io_failed = true;
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
    case OP_SP_OPEN: case OP_SP_WRITE: case OP_SP_FSYNC: case OP_SP_CLOSE:
    case OP_SP_RENAME: case OP_SP_CLEANUP:
        on_spool(obj, op, cqe->res);
        break;
    case OP_SP_DIRSYNC: on_dirsync(obj, cqe->res); break;
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

/* loop - the event loop; returns when draining is complete. */
static void loop(struct worker *w)
{
    uint64_t overflow_warned = 0;
    for (;;) {
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
        if ((*w->ring.sq.kflags & IORING_SQ_CQ_OVERFLOW) && overflow_warned != w->now) {
            overflow_warned = w->now;
            fprintf(stderr, "mxringd: worker %u: completion queue overflow\n", w->idx);
        }
        if (w->draining && w->nconns == 0)
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
    if ((r = io_uring_register_files_sparse(&w->ring, FILE_SLOTS)) < 0)
        die("worker %u: io_uring file table: %s", w->idx, strerror(-r));
    if ((r = bufs_setup(w)) < 0)
        die("worker %u: io_uring buffer ring: %s (kernel 5.19 or later is needed)", w->idx,
            strerror(-r));
    if (!(w->fe = filter_engine_new(&w->ring, w->idx)))
        die("worker %u: out of memory", w->idx);
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

void pool_start(struct pool *p, const struct config *cfg)
{
    for (unsigned i = 0; i < p->nworkers; i++) {
        struct worker *w = p->workers[i];
        w->efd = eventfd(0, EFD_CLOEXEC);
        if (w->efd < 0)
            die("eventfd: %s", strerror(errno));
        if (p->auth && !(w->auth_inbox = authpool_inbox_new(w->efd)))
            die("out of memory");
        w->tmp_dirfd = listen_open_dir(cfg->workdir, "queue/tmp");
        w->new_dirfd = listen_open_dir(cfg->workdir, "queue/new");
        w->qtmp_dirfd = listen_open_dir(cfg->workdir, "quarantine/tmp");
        w->qnew_dirfd = listen_open_dir(cfg->workdir, "quarantine/new");
        w->sync_queue = (struct dirsync){.w = w, .fd = w->new_dirfd};
        w->sync_quarantine = (struct dirsync){.w = w, .fd = w->qnew_dirfd};
        w->env = (struct sess_env){.worker = i,
                                   .rlog = p->rlog ? rlog_ring(p->rlog, i) : NULL,
                                   .snap_txn = snap_for_txn,
                                   .want_filter = want_filter,
                                   .unknown_rcpt = unknown_rcpt,
                                   .arg = w};
        w->cur = snap_current();
        if (!wsnap_add(w, w->cur))
            die("out of memory");
        w->next_sid = i + 1;
        for (int k = 0; k < FILE_SLOTS; k++)
            w->free_slots[w->nfree_slots++] = FILE_SLOTS - 1 - k;
        int r = pthread_create(&w->thread, NULL, worker_main, w);
        if (r)
            die("cannot start worker thread: %s", strerror(r));
    }
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
    for (unsigned i = 0; i < p->nworkers; i++) {
        struct worker *w = p->workers[i];
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
        close(w->tmp_dirfd);
        close(w->new_dirfd);
        close(w->qtmp_dirfd);
        close(w->qnew_dirfd);
        free(w);
    }
    free(p->workers);
    p->workers = NULL;
}
