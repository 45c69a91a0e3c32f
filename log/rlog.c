/* rlog.c - the receivelog: lifecycle, the producer API the workers call
 * (rlog_put*, each worker only on its own ring), the folder switch, and the
 * flusher (thread or rlog_flush_now) that merges all rings by time stamp
 * into the day files. rlog_create/start/stop/destroy from the main thread.
 *
 * Why the merge never writes a line too early (the watermark proof).
 * Producer put (P): S1 = exchange(busy, 1, seq_cst); C = clock();
 *   ts = max(C, last_ts); reserve, format, commit (R1 head, release);
 *   S0 = store(busy, 0, release).
 * Flusher cycle (F): T = clock(); B = seq_cst RMW; for each ring:
 *   L = load(busy, seq_cst); snapshot head (A2, acquire).
 * Claim: every record a ring commits after the snapshot has ts >= bound,
 * where bound = max(T, seen) if L read 0 (idle) and bound = seen if L read
 * 1 (busy); seen = ts of the newest record of that ring the flusher has
 * consumed. Records the flusher has already seen are in the snapshot.
 * (a) Any ring: ts of later records >= seen, because each put clamps ts to
 *     the ring's last_ts, which is >= every committed ts (program order).
 * (b) Idle: L read 0. If it read the S0 of some put, L synchronises with
 *     it, so that put's commit is in the snapshot. The next put's S1 is
 *     therefore not observed by L; as S1 and L are both seq_cst, L precedes
 *     S1 in the single total order S (an SC load cannot read a value older
 *     than the last SC write before it in S, and the S0 it read happens
 *     before S1). T is read before B before L, and C after S1, so
 *     C's clock read follows T's: with a monotonic clock C >= T (the fake
 *     test clocks are seq_cst atomics, where this is exactly the S order;
 *     CLOCK_REALTIME_COARSE is a kernel-updated value read after the full
 *     barrier of S1). Hence every later put of that ring has ts >= C >= T.
 * The merge emits the smallest front record f of the snapshots only while
 * f <= min(bound of every ring whose snapshot is exhausted); rings that
 * still hold snapshot records can only add records >= their own front >= f.
 * So no record committed later can be smaller than a line already written:
 * lines interleave in time order, each ring (each session) stays in order.
 * If the real clock steps back, (b) fails; rlog_out_line clamps the written
 * time stamp so a file still never goes backwards. */
#include "rlog_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define RLOG_POLL_MS_DEFAULT 500u
#define RLOG_FOLDER_DEFAULT "receivelog"
#define RLOG_PERIOD_NS 20000000L  /* flusher sleep when idle: 20 ms */
#define RLOG_BATCH_MAX (8u << 20) /* output bytes per cycle */
#define RLOG_NS_PER_MS 1000000ull
#define RLOG_PRESSURE_DIV 4u /* ring fill that skips the sleep */
#define CYCLE_MORE 1         /* stopped at the batch limit */
#define CYCLE_PRESSURE 2     /* a ring is filling up */
#define CYCLE_PROGRESS 4     /* lines were merged */
#define RLOG_NAP_NS 100000L  /* pause when full rings are held back */
#define RLOG_FMT_BUF (2 * RLOG_LINE_MAX)

struct rlog {
    struct rlog_ring *rings;
    unsigned nrings;
    _Atomic bool on;         /* the switch; relaxed loads by workers */
    _Atomic bool stop;       /* main -> flusher */
    _Atomic uint64_t cycles; /* flusher cycles; its RMW is barrier B */
    _Atomic uint32_t wake;   /* futex: stalled producers and stop wake the flusher */
    bool zero;
    bool started;
    unsigned poll_ms;
    uint64_t last_poll; /* CLOCK_MONOTONIC ns of the last stat */
    rlog_clock_fn clock;
    void *clock_arg;
    struct rlog_out out;
    struct rlog_retain ret;
    _Atomic uint64_t retention; /* keep_days << 32 | compress_after, set by reloads */
    pthread_t thr;
};

/* now_ns - the log's clock: the hook or CLOCK_REALTIME_COARSE. */
static inline uint64_t now_ns(rlog_clock_fn fn, void *arg)
{
    if (fn)
        return fn(arg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (uint64_t)ts.tv_sec * RLOG_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* mono_ns - CLOCK_MONOTONIC for poll timing. */
static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * RLOG_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* poll_switch - logging is on exactly while <workdir>/<folder> is a folder. */
static void poll_switch(struct rlog *l)
{
    struct stat st;
    bool on = stat(l->out.top, &st) == 0 && S_ISDIR(st.st_mode);
    atomic_store_explicit(&l->on, on, memory_order_relaxed);
    l->last_poll = mono_ns();
}

/* rlog_free - release whatever rlog_create allocated. */
static void rlog_free(struct rlog *l, unsigned nrings_ok)
{
    for (unsigned i = 0; i < nrings_ok; i++)
        rlog_ring_fini(&l->rings[i]);
    free(l->rings);
    rlog_retain_fini(&l->ret, l->out.dir ? l->out.dir : "");
    rlog_out_fini(&l->out);
    free(l);
}

/* rlog_create - see rlog.h. */
struct rlog *rlog_create(const struct rlog_opts *o)
{
    const char *folder = o && o->folder ? o->folder : RLOG_FOLDER_DEFAULT;
    if (!o || !o->workdir || !o->host || !o->nrings || !o->host[0] || strchr(o->host, '/') ||
        !folder[0] || strchr(folder, '/')) {
        errno = EINVAL;
        return NULL;
    }
    struct rlog *l = calloc(1, sizeof(*l));
    if (!l || rlog_out_init(&l->out, o->workdir, folder, o->host) < 0) {
        free(l);
        errno = ENOMEM;
        return NULL;
    }
    l->nrings = o->nrings;
    l->zero = o->zero_internal_id;
    l->poll_ms = o->poll_ms ? o->poll_ms : RLOG_POLL_MS_DEFAULT;
    l->clock = o->clock;
    l->clock_arg = o->clock_arg;
    rlog_retain_init(&l->ret, o->keep_days, o->compress_after_days);
    atomic_init(&l->retention, (uint64_t)o->keep_days << 32 | o->compress_after_days);
    l->rings = aligned_alloc(RLOG_CACHELINE, sizeof(*l->rings) * o->nrings);
    unsigned ok = 0;
    for (; l->rings && ok < o->nrings; ok++) {
        int rc = rlog_ring_init(&l->rings[ok], o->ring_bytes);
        if (rc < 0) {
            rlog_free(l, ok);
            errno = -rc;
            return NULL;
        }
        l->rings[ok].on = &l->on;
        l->rings[ok].wake = &l->wake;
        l->rings[ok].clock = o->clock;
        l->rings[ok].clock_arg = o->clock_arg;
    }
    if (!l->rings) {
        rlog_free(l, 0);
        errno = ENOMEM;
        return NULL;
    }
    poll_switch(l);
    return l;
}

/* rlog_ring - see rlog.h. */
struct rlog_ring *rlog_ring(struct rlog *l, unsigned i)
{
    return i < l->nrings ? &l->rings[i] : NULL;
}

/* rlog_on - see rlog.h. */
bool rlog_on(const struct rlog_ring *r)
{
    return atomic_load_explicit(r->on, memory_order_relaxed);
}

/* put_line - the producer path: mark busy, stamp, reserve, escape straight
 * into the ring, commit, clear busy. No lock, syscall or allocation unless
 * the ring is full. */
static void put_line(struct rlog_ring *r, uint32_t sid, enum rlog_kind kind, const char *p,
                     size_t plen, const char *t, size_t tlen)
{
    size_t bound = rlog_text_bound(plen, tlen);
    /* S1: seq_cst, ordered before the clock read (see the proof above) */
    atomic_exchange_explicit(&r->busy, 1, memory_order_seq_cst);
    uint64_t ts = now_ns(r->clock, r->clock_arg);
    if (ts < r->last_ts)
        ts = r->last_ts;
    r->last_ts = ts;
    struct rlog_rec *rec = rlog_ring_reserve_spsc(r, sizeof(*rec) + bound);
    size_t n = rlog_format_text(rec->text, bound, p, plen, t, tlen);
    rec->ts = ts;
    rec->sid = sid;
    rec->len = (uint16_t)n;
    rec->kind = (uint8_t)kind;
    rlog_ring_commit_spsc(r, sizeof(*rec) + n);
    /* S0: release; pairs with L (seq_cst load) in snapshot_rings() */
    atomic_store_explicit(&r->busy, 0, memory_order_release);
}

/* rlog_put - see rlog.h. */
void rlog_put(struct rlog_ring *r, uint32_t sid, enum rlog_kind kind, const char *text, size_t len)
{
    if (rlog_on(r))
        put_line(r, sid, kind, NULL, 0, text, len);
}

/* rlog_put2 - see rlog.h. */
void rlog_put2(struct rlog_ring *r, uint32_t sid, enum rlog_kind kind, const char *prefix,
               size_t plen, const char *text, size_t len)
{
    if (rlog_on(r))
        put_line(r, sid, kind, prefix, plen, text, len);
}

/* rlog_putf - see rlog.h; formats on the stack, then escapes into the ring. */
void rlog_putf(struct rlog_ring *r, uint32_t sid, enum rlog_kind kind, const char *fmt, ...)
{
    if (!rlog_on(r))
        return;
    char buf[RLOG_FMT_BUF];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
    put_line(r, sid, kind, NULL, 0, buf, len);
}

/* snapshot_rings - read the flusher clock, then each ring's busy flag and
 * head (in that order; see the proof at the top). Returns the clock;
 * *pressure is set when a ring is a quarter full (the flusher then skips
 * its sleep). */
static uint64_t snapshot_rings(struct rlog *l, bool *pressure)
{
    uint64_t t = now_ns(l->clock, l->clock_arg);
    /* B: seq_cst RMW as the full barrier between the clock read and the
     * busy loads (an acq_rel RMW keeps loads on their side of it; TSan
     * does not model atomic_thread_fence) */
    atomic_fetch_add_explicit(&l->cycles, 1, memory_order_seq_cst);
    for (unsigned i = 0; i < l->nrings; i++) {
        struct rlog_ring *r = &l->rings[i];
        /* L: seq_cst; pairs with S0 (release) in put_line() */
        r->idle = atomic_load_explicit(&r->busy, memory_order_seq_cst) == 0;
        rlog_ring_refresh_spsc(r);
        if (r->chead - r->ctail >= (r->mask + 1) / RLOG_PRESSURE_DIV)
            *pressure = true;
    }
    return t;
}

/* emit - hand one record to the output and release it from the ring. */
static void emit(struct rlog *l, struct rlog_ring *r, const struct rlog_rec *rec)
{
    uint32_t sid = l->zero && rec->kind == RLOG_INTERNAL ? 0 : rec->sid;
    rlog_out_line(&l->out, rec->ts, sid, rec->text, rec->len);
    rlog_ring_pop_spsc(r);
}

/* ring_bound - lower bound of any later record of an exhausted ring. */
static inline uint64_t ring_bound(const struct rlog_ring *r, uint64_t t)
{
    return r->idle && t > r->seen_ts ? t : r->seen_ts;
}

/* merge - k-way merge of the snapshots up to the watermark (everything when
 * drain_all). Returns true when it stopped at the batch limit. */
static bool merge(struct rlog *l, uint64_t t, bool drain_all)
{
    size_t start = l->out.pending;
    for (;;) {
        struct rlog_ring *best = NULL;
        uint64_t f1 = UINT64_MAX, f2 = UINT64_MAX, w = UINT64_MAX;
        for (unsigned i = 0; i < l->nrings; i++) {
            struct rlog_ring *r = &l->rings[i];
            const struct rlog_rec *rec = rlog_ring_peek_spsc(r);
            if (rec && rec->ts < f1) {
                f2 = f1;
                f1 = rec->ts;
                best = r;
            } else if (rec && rec->ts < f2) {
                f2 = rec->ts;
            } else if (!rec && !drain_all && ring_bound(r, t) < w) {
                w = ring_bound(r, t);
            }
        }
        if (!best || f1 > w)
            return false;
        uint64_t limit = w < f2 ? w : f2;
        const struct rlog_rec *rec;
        while ((rec = rlog_ring_peek_spsc(best)) != NULL && rec->ts <= limit)
            emit(l, best, rec);
        if (l->out.pending - start >= RLOG_BATCH_MAX)
            return true;
    }
}

/* flush_cycle - one flusher cycle: switch poll (when due), snapshot, merge,
 * one write per day file, retention. Returns CYCLE_* flags. */
static int flush_cycle(struct rlog *l, bool poll, bool drain_all)
{
    if (poll)
        poll_switch(l);
    bool pressure = false;
    uint64_t t = snapshot_rings(l, &pressure);
    size_t before = l->out.pending;
    bool more = merge(l, t, drain_all);
    bool progress = l->out.pending != before;
    bool on = atomic_load_explicit(&l->on, memory_order_relaxed);
    rlog_out_write(&l->out, on);
    uint64_t want = atomic_load_explicit(&l->retention, memory_order_relaxed);
    if ((unsigned)(want >> 32) != l->ret.keep_days || (unsigned)want != l->ret.compress_after) {
        l->ret.keep_days = (unsigned)(want >> 32);
        l->ret.compress_after = (unsigned)want;
        l->ret.ran = false; /* new settings: scan the folder again */
    }
    if (on)
        rlog_retain_tick(&l->ret, &l->out, t);
    return (more ? CYCLE_MORE : 0) | (pressure ? CYCLE_PRESSURE : 0) |
           (progress ? CYCLE_PROGRESS : 0);
}

/* final_drain - write every committed line (workers have stopped). */
static void final_drain(struct rlog *l)
{
    while (flush_cycle(l, false, true) & CYCLE_MORE)
        ;
    if (l->out.pending)
        fprintf(stderr, "mxringd: receivelog: %zu bytes not written at shutdown\n", l->out.pending);
}

/* flusher_main - the flusher thread: cycle; sleep when idle (a stalled
 * producer or rlog_stop wakes it), only nap while a filling ring is held
 * back by the watermark (a producer preempted inside a put); drain at stop. */
static void *flusher_main(void *arg)
{
    struct rlog *l = arg;
    while (!atomic_load_explicit(&l->stop, memory_order_acquire)) {
        uint32_t seen = atomic_load_explicit(&l->wake, memory_order_relaxed);
        bool poll = mono_ns() - l->last_poll >= l->poll_ms * RLOG_NS_PER_MS;
        int rc = flush_cycle(l, poll, false);
        if (rc & CYCLE_MORE || (rc & CYCLE_PRESSURE && rc & CYCLE_PROGRESS))
            continue;
        rlog_futex_wait(&l->wake, seen, rc & CYCLE_PRESSURE ? RLOG_NAP_NS : RLOG_PERIOD_NS);
    }
    final_drain(l);
    return NULL;
}

/* rlog_start - see rlog.h. */
int rlog_start(struct rlog *l)
{
    if (l->started)
        return -EALREADY;
    atomic_store_explicit(&l->stop, false, memory_order_relaxed);
    int rc = pthread_create(&l->thr, NULL, flusher_main, l);
    if (rc != 0)
        return -rc;
    l->started = true;
    return 0;
}

/* rlog_stop - see rlog.h. */
void rlog_stop(struct rlog *l)
{
    if (!l->started) {
        final_drain(l);
        return;
    }
    atomic_store_explicit(&l->stop, true, memory_order_release);
    rlog_futex_wake(&l->wake);
    pthread_join(l->thr, NULL);
    l->started = false;
}

/* rlog_destroy - see rlog.h. */
void rlog_destroy(struct rlog *l)
{
    if (l)
        rlog_free(l, l->nrings);
}

/* rlog_flush_now - see rlog.h. */
int rlog_flush_now(struct rlog *l)
{
    if (l->started)
        return -EBUSY;
    int rc = flush_cycle(l, true, false);
    while (rc & CYCLE_MORE)
        rc = flush_cycle(l, false, false);
    return 0;
}

/* rlog_set_pending_limit - see rlog.h. */
void rlog_set_pending_limit(struct rlog *l, size_t bytes)
{
    l->out.limit = bytes;
}

/* rlog_get_stats - see rlog.h. */
void rlog_get_stats(struct rlog *l, struct rlog_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->lines_written = atomic_load_explicit(&l->out.st.lines_written, memory_order_relaxed);
    out->bytes_written = atomic_load_explicit(&l->out.st.bytes_written, memory_order_relaxed);
    out->lines_dropped = atomic_load_explicit(&l->out.st.lines_dropped, memory_order_relaxed);
    out->write_errors = atomic_load_explicit(&l->out.st.write_errors, memory_order_relaxed);
    out->cycles = atomic_load_explicit(&l->cycles, memory_order_relaxed);
    for (unsigned i = 0; i < l->nrings; i++)
        out->stalls += atomic_load_explicit(&l->rings[i].stalls, memory_order_relaxed);
}

void rlog_set_retention(struct rlog *l, unsigned keep_days, unsigned compress_after_days)
{
    atomic_store_explicit(&l->retention, (uint64_t)keep_days << 32 | compress_after_days,
                          memory_order_relaxed);
}
