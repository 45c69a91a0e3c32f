/* mxbench_loop.c - one io_uring event loop per mxbench thread: sets up the
 * ring and the sessions, waits for completions or the next due time (open
 * loop), the next second (--json-series) or the timeout scan, routes
 * completions to the sessions (mxbench_sess.c) and hands out work
 * (mxbench_work.c). Everything here runs on the thread that called
 * mxb_thread_run(); the shared state is the message budget and the stop
 * flag in struct mxb_plan (atomics) and the series (its own lock). */
#include "mxbench_thr.h"
#include "mxbench_series.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000ull
#define SCAN_NS NS_PER_S     /* timeout scan period */
#define POLL_NS 100000000ull /* the longest wait: Ctrl-C is seen within it */
#define SQ_MAX 32768u
#define SQ_MIN 64u

/* mxb_now_ns - CLOCK_MONOTONIC in nanoseconds. */
uint64_t mxb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* mxb_claim - take one message from the budget. */
bool mxb_claim(struct mxb_plan *p, uint64_t now)
{
    if (p->stop_ns && now >= p->stop_ns)
        return false;
    /* Relaxed: the flag and the counter order nothing else. */
    if (atomic_load_explicit(&p->stop, memory_order_relaxed))
        return false;
    if (p->o->messages == 0)
        return true;
    return atomic_fetch_add_explicit(&p->claimed, 1, memory_order_relaxed) < p->o->messages;
}

/* scan_timeouts - end every session whose operation is overdue (an idle
 * connection waits for no operation). */
static void scan_timeouts(struct thr *t)
{
    for (unsigned i = 0; i < t->nsess; i++) {
        struct sess *s = &t->sess[i];
        if (s->stage > ST_IDLE && s->stage < ST_READY && !s->closing && t->now > s->deadline)
            sess_end(s, MXB_E_TIMEOUT);
    }
}

/* sec_roll - --json-series: hand in every second that is over. */
static void sec_roll(struct thr *t)
{
    while (t->now >= t->sec_end) {
        mxb_counts_sub(&t->sec.c, &t->st->c, &t->prev);
        t->prev = t->st->c;
        t->sec.open = t->conns;
        mxb_series_publish(t->p->series, t->sec_t, &t->sec);
        mxb_hist_init(&t->sec.lat_ns);
        t->sec_t++;
        t->sec_end += NS_PER_S;
    }
}

/* sec_last - hand in the partial last second and leave the series. */
static void sec_last(struct thr *t)
{
    mxb_counts_sub(&t->sec.c, &t->st->c, &t->prev);
    t->sec.open = t->conns;
    mxb_series_publish(t->p->series, t->sec_t, &t->sec);
    mxb_series_leave(t->p->series, t->sec_t);
}

/* tick_of - the end of the scheduling tick holding due (ticks count from
 * the start of the run): the loop wakes then for every message due in it. */
static uint64_t tick_of(const struct thr *t, uint64_t due)
{
    uint64_t t0 = t->p->t0_ns;
    if (due <= t0)
        return due;
    return t0 + (due - t0 + MXB_TICK_NS - 1) / MXB_TICK_NS * MXB_TICK_NS;
}

/* wait_ns - how long the loop may sleep: until the tick of the next due
 * message, the end of the second, the deadline or the timeout scan; at
 * most POLL_NS. */
static uint64_t wait_ns(const struct thr *t, uint64_t scan_at)
{
    uint64_t wake = t->now + POLL_NS;
    if (t->open && !t->sched_done && tick_of(t, t->next_due) < wake)
        wake = tick_of(t, t->next_due);
    if (t->open && t->p->stop_ns && t->bl_n > 0 && t->p->stop_ns < wake)
        wake = t->p->stop_ns;
    if (t->p->series && t->sec_end < wake)
        wake = t->sec_end;
    if (scan_at < wake)
        wake = scan_at;
    return wake > t->now ? wake - t->now : 0;
}

/* reap - route every completion waiting in the CQ. */
static void reap(struct thr *t)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&t->ring, head, cqe)
    {
        uint64_t ud = io_uring_cqe_get_data64(cqe);
        enum op op = (enum op)(ud & OP_MASK);
        if (op != OP_IGNORE)
            sess_complete((struct sess *)(uintptr_t)(ud & ~OP_MASK), op, cqe->res);
        n++;
    }
    io_uring_cq_advance(&t->ring, n);
}

/* enter_wait - submit what is queued and wait up to ns for completions,
 * one io_uring_enter per loop turn. With two or more connections busy
 * (waiting for a reply), wait for one completion each but at most
 * MXB_GATHER_NS: the kernel (DEFER_TASKRUN) wakes the loop once for the
 * lot instead of once per reply. A gathering wait that saw nothing makes
 * the next one a plain wait, so a slow server costs at most one extra
 * wake-up per real one. */
static int enter_wait(struct thr *t, uint64_t ns)
{
    unsigned busy = t->conns - t->nidle, want = 1;
    if (busy >= 2 && t->gather && ns > MXB_GATHER_NS) {
        want = busy;
        ns = MXB_GATHER_NS;
    }
    struct __kernel_timespec ts = {.tv_sec = (long long)(ns / NS_PER_S),
                                   .tv_nsec = (long long)(ns % NS_PER_S)};
    struct io_uring_cqe *cqe;
    int ret = io_uring_submit_and_wait_timeout(&t->ring, &cqe, want, &ts, NULL);
    t->gather = want == 1 || io_uring_cq_ready(&t->ring) > 0;
    return ret;
}

/* run_loop - submit, wait, dispatch until the work is done. */
static int run_loop(struct thr *t)
{
    uint64_t scan_at = t->now + SCAN_NS;
    work_start(t);
    while (!work_done(t)) {
        int ret = enter_wait(t, wait_ns(t, scan_at));
        if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
            return ret;
        t->now = mxb_now_ns();
        reap(t);
        if (!t->abort && atomic_load_explicit(&t->p->stop, memory_order_relaxed))
            work_abort(t);
        work_pump(t);
        if (t->p->series)
            sec_roll(t);
        if (t->now >= scan_at) {
            scan_timeouts(t);
            scan_at = t->now + SCAN_NS;
        }
    }
    return 0;
}

/* ring_setup - an io_uring sized for nsess sessions, with the cheapest task
 * work mode the kernel offers. */
static int ring_setup(struct thr *t, unsigned nsess)
{
    static const unsigned modes[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN,
        0,
    };
    unsigned entries = SQ_MIN;
    while (entries < 2 * nsess + SQ_MIN && entries < SQ_MAX)
        entries *= 2;
    int ret = -EINVAL;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        struct io_uring_params prm;
        memset(&prm, 0, sizeof prm);
        prm.flags = modes[i] | IORING_SETUP_CQSIZE;
        prm.cq_entries = entries * 4;
        ret = io_uring_queue_init_params(entries, &t->ring, &prm);
        if (ret == 0)
            return 0;
    }
    return ret;
}

/* thr_init - the thread's sessions, lists and schedule. */
static int thr_init(struct thr *t, struct mxb_plan *p, unsigned id, unsigned nsess)
{
    const struct mxb_opts *o = p->o;
    t->p = p;
    t->id = id;
    t->nsess = nsess;
    t->live = nsess;
    t->open = o->open;
    t->gather = true;
    t->op_ns = (uint64_t)o->timeout_s * NS_PER_S;
    t->sess = calloc(nsess, sizeof *t->sess);
    t->idle = calloc(nsess, sizeof *t->idle);
    t->freel = calloc(nsess, sizeof *t->freel);
    if (!t->sess || !t->idle || !t->freel)
        return -ENOMEM;
    for (unsigned i = 0; i < nsess; i++) {
        struct sess *s = &t->sess[i];
        s->t = t;
        s->fd = -1;
        s->idle_i = -1;
        if (!mxb_cmds_alloc(&s->cmds, o->rcpts, &p->mail, &p->rcpt))
            return -ENOMEM;
    }
    mxb_wrr_init(&t->kinds, p->kind_w, MXB_K_COUNT, id);
    mxb_pick_init(&t->pick, &p->corpus, id);
    if (t->open) {
        mxb_sched_init(&t->sched, p->phases, p->nphases, o->arrival, o->seed, id, p->nthreads);
        t->left =
            o->messages ? o->messages / p->nthreads + (id < o->messages % p->nthreads) : UINT64_MAX;
    }
    mxb_hist_init(&t->sec.lat_ns);
    t->sec_end = p->t0_ns + NS_PER_S;
    return 0;
}

/* thr_free - release what thr_init allocated. */
static void thr_free(struct thr *t)
{
    for (unsigned i = 0; t->sess && i < t->nsess; i++) {
        free(t->sess[i].cbuf);
        mxb_cmds_free(&t->sess[i].cmds);
    }
    free(t->sess);
    free(t->idle);
    free(t->freel);
    free(t->bl);
    free(t);
}

/* mxb_thread_run - run nsess sessions on one ring, see mxbench.h. */
int mxb_thread_run(struct mxb_plan *p, unsigned id, unsigned nsess, struct mxb_stats *st)
{
    struct thr *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->st = st;
    int ret = thr_init(t, p, id, nsess);
    if (ret == 0)
        ret = ring_setup(t, nsess);
    if (ret == 0) {
        t->now = mxb_now_ns();
        ret = run_loop(t);
        if (p->series) {
            t->now = mxb_now_ns();
            sec_roll(t);
            sec_last(t);
        }
        io_uring_queue_exit(&t->ring);
    } else if (p->series) {
        mxb_series_leave(p->series, 0);
    }
    thr_free(t);
    return ret;
}
