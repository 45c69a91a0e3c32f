/* worker.c - one io_uring event loop per worker thread: multishot accept on
 * the worker's own SO_REUSEPORT listeners, multishot receive into a provided
 * buffer ring, sends, a 1 s tick for timeouts and snapshot pick-up, and the
 * hand-over of every message's bytes to the worker's queue journal
 * (net/queue.c), whose commit callback sends the 250. Everything here runs
 * on the worker's own thread; only pool_* are called by the main thread.
 * Listening sockets and the io_uring probe are opened by listen.c; the
 * connections are conn.c, their messages conn_msg.c. */
#include "worker.h"
#include "worker_int.h"
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
#include "inbox.h"
#include "config.h"
#include "deliver.h"
#include "dnsbl.h"
#include "filter.h"
#include "iplimit.h"
#include "journal.h"
#include "journal_file.h"
#include "milterio.h"
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

#define BUF_COUNT 1024 /* provided receive buffers per worker */
#define SQ_ENTRIES 4096
#define CQ_ENTRIES 65536 /* reaped every loop; multishot receives are bounded by BUF_COUNT */
#define TICK_MS 1000     /* timeouts and snapshot pick-up */

/* ---- small helpers ------------------------------------------------------ */

/* clock_read - coarse monotonic clock for timeouts, once per batch. */
static void clock_read(struct worker *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    w->now = (uint64_t)ts.tv_sec;
    w->now_ms = w->now * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- snapshots ------------------------------------------------------------ */

/* worker_wsnap_find - this worker's record for snapshot s. Never allocates: w->cur
 * and every snapshot a session holds always have a record (wsnap_add runs
 * before a snapshot becomes w->cur; worker_wsnap_release keeps records in use). */
struct wsnap *worker_wsnap_find(struct worker *w, struct snap *s)
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

/* worker_wsnap_release - one session less on s; drop snapshots nobody uses. */
void worker_wsnap_release(struct worker *w, struct snap *s)
{
    struct wsnap *ws = worker_wsnap_find(w, s);
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
    worker_wsnap_find(w, w->cur)->nsess++;
    worker_wsnap_release(w, cur);
    return w->cur;
}

/* pick_up_snapshot - adopt a newer published snapshot (at tick/wake). */
static void pick_up_snapshot(struct worker *w)
{
    if (snap_current_gen() == w->cur->gen)
        return;
    struct snap *old = w->cur, *s = snap_current();
    if (!wsnap_add(w, s)) {
        fprintf(stderr,
                "mxringd: worker %u: out of memory adopting configuration "
                "generation %llu; trying again in a second\n",
                w->idx, (unsigned long long)s->gen);
        snap_unref(s);
        return;
    }
    w->cur = s;
    worker_wsnap_find(w, old)->nsess++; /* borrow, so release can drop it when unused */
    worker_wsnap_release(w, old);
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
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)mem, .ring_entries = BUF_COUNT, .bgid = BUF_GROUP};
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

/* worker_buf_return - give receive buffer bid back to the kernel. */
void worker_buf_return(struct worker *w, unsigned bid)
{
    io_uring_buf_ring_add(w->br, w->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(BUF_COUNT), 0);
    io_uring_buf_ring_advance(w->br, 1);
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
    return filter_wanted(snap->cfg) || milterio_wanted(snap->cfg);
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
        conn_list_remove(c);
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
        authpool_drain(w->auth_inbox, conn_auth_result, w);
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
    case OP_RECV: conn_on_recv(obj, cqe); break;
    case OP_SEND: conn_on_send(obj, cqe->res); break;
    case OP_CALLBACK: uring_cb_dispatch(cqe); break;
    case OP_CLOSE: {
        struct conn *c = obj;
        c->inflight--;
        conn_maybe_free(c);
        break;
    }
    case OP_TICK: on_tick(w); break;
    case OP_WAKE: on_wake(w); break;
    case OP_GREET: conn_on_greet(obj, cqe->res); break;
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

/* jring_setup - the journal writer's own ring, plain (no SINGLE_ISSUER or
 * DEFER_TASKRUN). On the worker's ring a batch's write completion waits
 * for this thread's next turn to run as task work before io_uring queues
 * the linked fdatasync, and the fdatasync's completion waits for the turn
 * after; on a plain ring io-wq runs the fdatasync as soon as the write is
 * done and posts its completion directly, which signals the worker's
 * eventfd (its wake read). Without it the writer uses the worker's ring. */
static void jring_setup(struct worker *w)
{
    if (io_uring_queue_init(8, &w->jring, 0) < 0)
        return;
    if (io_uring_register_eventfd(&w->jring, w->efd) < 0) {
        io_uring_queue_exit(&w->jring);
        return;
    }
    w->jring_ok = true;
}

/* jring_reap - hand the journal ring's completions to the writer. */
static void jring_reap(struct worker *w)
{
    if (!w->jring_ok)
        return;
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&w->jring, head, cqe)
    {
        uring_cb_dispatch(cqe);
        n++;
    }
    io_uring_cq_advance(&w->jring, n);
}

/* jring_kick - end of a turn: the group commit of this turn, submitted at
 * once on the journal ring. */
static void jring_kick(struct worker *w)
{
    jring_reap(w); /* a batch done meanwhile: its 250s go out in this turn */
    queue_kick(w->q, w->now_ms);
    if (w->jring_ok && io_uring_sq_ready(&w->jring)) {
        int r = io_uring_submit(&w->jring);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
            die("worker %u: journal ring submit: %s", w->idx, strerror(-r));
    }
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
        io_uring_for_each_cqe(&w->ring, head, cqe)
        {
            handle(w, cqe);
            n++;
        }
        io_uring_cq_advance(&w->ring, n);
        rearm_pending(w);
        jring_kick(w); /* group commit: one write for this turn */
        if ((*w->ring.sq.kflags & IORING_SQ_CQ_OVERFLOW) && overflow_warned != w->now) {
            overflow_warned = w->now;
            fprintf(stderr, "mxringd: worker %u: completion queue overflow\n", w->idx);
        }
        if (w->draining && w->nconns == 0 && queue_idle(w->q))
            return;
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    bool disabled;
    int r = uring_setup(&w->ring, SQ_ENTRIES, CQ_ENTRIES, false, &disabled);
    if (r < 0)
        die("worker %u: io_uring setup failed: %s (is io_uring disabled by the "
            "kernel.io_uring_disabled sysctl or a seccomp filter?)",
            w->idx, strerror(-r));
    if ((r = bufs_setup(w)) < 0)
        die("worker %u: io_uring buffer ring: %s (kernel 5.19 or later is needed)", w->idx,
            strerror(-r));
    if (!(w->dnsbl = dnsbl_engine_new(&w->ring, w->idx, &w->st.dnsbl_dns)))
        die("worker %u: out of memory", w->idx);
    if (!(w->fe = filter_engine_new(&w->ring, w->idx, &w->st.filter)))
        die("worker %u: out of memory", w->idx);
    char err[256];
    struct queue_params qp = {.worker = w->idx,
                              .journal_dirfd = w->pool->journal_dirfd,
                              .segment_size = w->pool->segment_size,
                              .flush = w->pool->flush,
                              .efd = w->efd,
                              .on_space = conn_on_space,
                              .arg = w};
    jring_setup(w);
    struct queue *q = queue_new(w->jring_ok ? &w->jring : &w->ring, &qp, err, sizeof(err));
    if (!q)
        die("worker %u: queue journal: %s", w->idx, err);
    __atomic_store_n(&w->q, q, __ATOMIC_RELEASE); /* R2: pairs with A2 in pool_stats */
    for (unsigned i = 0; i < w->nls; i++)
        accept_arm(&w->ls[i]);
    tick_arm(w);
    wake_arm(w);
    clock_read(w);
    loop(w);
    io_uring_queue_exit(&w->ring);
    if (w->jring_ok)
        io_uring_queue_exit(&w->jring); /* idle: nothing of the journal in flight */
    filter_engine_free(w->fe);          /* no job is left: every conn is gone */
    dnsbl_engine_free(w->dnsbl);
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
    const char *tr = getenv("MXRING_TRACE"); /* the sessions' debug trace */
    bool trace = tr && strcmp(tr, "1") == 0;
    journal_start(p, cfg);
    for (unsigned i = 0; i < p->nworkers; i++) {
        struct worker *w = p->workers[i];
        w->efd = eventfd(0, EFD_CLOEXEC);
        if (w->efd < 0)
            die("eventfd: %s", strerror(errno));
        if (p->auth && !(w->auth_inbox = inbox_new(w->efd)))
            die("out of memory");
        w->env = (struct sess_env){.worker = i,
                                   .ctr = &w->ctr,
                                   .trace = trace,
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

/* add_journal - the counters of one journal writer into sum. */
static void add_journal(struct worker_stats *sum, const struct queue *q)
{
    struct queue_stats qs;
    queue_get_stats(q, &qs);
    sum->journal_syncs += qs.syncs;
    sum->journal_writes += qs.writes;
    for (int k = 0; k < 8; k++)
        sum->journal_hist[k] += qs.hist[k];
    sum->journal_sync_commits += qs.sync_commits;
    sum->journal_segments += qs.segments - qs.retired;
    mhist_add(&sum->journal_sync_lat, &qs.sync_lat);
}

void pool_stats(struct pool *p, struct worker_stats *sum)
{
    memset(sum, 0, sizeof(*sum));
    uint64_t *out = (uint64_t *)sum;
    for (unsigned i = 0; i < p->nworkers; i++) {
        const uint64_t *in = (const uint64_t *)&p->workers[i]->st;
        for (size_t k = 0; k < sizeof(*sum) / sizeof(uint64_t); k++)
            out[k] += __atomic_load_n(&in[k], __ATOMIC_RELAXED); /* R: pairs with STAT_ADD */
        /* A2: pairs with R2 in worker_main (the writer is made on its thread) */
        const struct queue *q = __atomic_load_n(&p->workers[i]->q, __ATOMIC_ACQUIRE);
        if (q)
            add_journal(sum, q);
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

void pool_join(struct pool *p, struct worker_stats *sum, struct qflush_stats *mat)
{
    for (unsigned i = 0; i < p->nworkers; i++)
        pthread_join(p->workers[i]->thread, NULL);
    authpool_free(p->auth); /* verifiers gone before their inboxes */
    p->auth = NULL;
    qflush_stop(p->flush, mat); /* materializes what the workers committed */
    p->flush = NULL;
    pool_stats(p, sum);
    for (unsigned i = 0; i < p->nworkers; i++) {
        struct worker *w = p->workers[i];
        queue_free(w->q);
        authpool_inbox_free(w->auth_inbox);
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
