/* deliver.c - the delivery thread: its own io_uring ring (never a slice of
 * the workers, so relaying never adds latency to receiving), an eventfd to
 * be woken, an inotify watch on queue/new/ whose events name the files to
 * take at once, a 200 ms tick that reads new/ in full now and then (every
 * tick without inotify), follows the published
 * snapshot, updates the back-pressure flag, runs due messages and the
 * connection pools' timers. dlv_start/dlv_stop run on the main thread,
 * dlv_notify/dlv_queue_full on any thread, the rest on the delivery thread. */
#include "deliver.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dlv_int.h"
#include "inbox.h"
#include "rlog.h"
#include "snap.h"
#include "tls.h"

#define DLV_SQ_ENTRIES 1024
#define DLV_CQ_BATCH 256
#define DLV_STOP_MS 3000u /* connections get this long to say QUIT */

static struct dlv *g_dlv; /* main thread: start/stop */
static pthread_t g_thr;
static _Atomic bool g_full; /* R1: relaxed; workers only need "soon" */
static _Atomic bool g_stop; /* main -> delivery thread */
static _Atomic int g_efd = -1;
static _Atomic uint64_t g_stat[DLV_ST_COUNT]; /* struct dlv_stats order */
/* The materializer's hand-over (dlv_handoff): g_handoff is made before the
 * thread starts and freed after the materializer has stopped (main.c stops
 * the pool, whose materializer it is, before dlv_stop); g_handoff_on says
 * whether the delivery thread takes files that way now (R2: release by
 * the delivery thread, acquire in dlv_handoff_wanted). */
static struct inbox *g_handoff;
static _Atomic bool g_handoff_on;
static _Atomic bool g_rescan; /* dlv_notify: read new/ in full at the wake-up */

/* One handed-over queue file. */
struct handoff {
    struct inbox_node link;
    char id[QFILE_ID_LEN + 1];
    char *bytes; /* the whole file, or NULL: read it */
    size_t len;
};

/* dlv_enabled - see deliver.h. */
bool dlv_enabled(const struct snap *s)
{
    return s && routes_on(s->routes);
}

/* dlv_queue_full - see deliver.h. */
bool dlv_queue_full(void *arg)
{
    (void)arg;
    return atomic_load_explicit(&g_full, memory_order_relaxed);
}

/* dlv_notify - see deliver.h. */
void dlv_notify(void)
{
    atomic_store_explicit(&g_rescan, true, memory_order_relaxed); /* the write orders it */
    int fd = atomic_load_explicit(&g_efd, memory_order_acquire);
    uint64_t one = 1;
    if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        fprintf(stderr, "mxringd: delivery wake: %s\n", strerror(errno));
}

/* dlv_stat_add - bump counter k (index into struct dlv_stats). */
void dlv_stat_add(unsigned k, uint64_t n)
{
    atomic_fetch_add_explicit(&g_stat[k], n, memory_order_relaxed);
}

/* dlv_get_stats - see deliver.h. */
void dlv_get_stats(struct dlv_stats *out)
{
    uint64_t *f = (uint64_t *)out;
    for (unsigned k = 0; k < sizeof(*out) / sizeof(uint64_t); k++)
        f[k] = atomic_load_explicit(&g_stat[k], memory_order_relaxed);
}

/* dlv_sqe - an SQE of the delivery ring (submits when the SQ is full). */
struct io_uring_sqe *dlv_sqe(struct dlv *d)
{
    return uring_get_sqe(&d->ring);
}

/* dlv_cfg - the configuration of the snapshot in use. */
const struct config *dlv_cfg(const struct dlv *d)
{
    return d->snap->cfg;
}

/* dlv_logf - one delivery log line for attempt aid (formatted, escaped). */
void dlv_logf(struct dlv *d, uint32_t aid, const char *fmt, ...)
{
    if (!d->lr || !rlog_on(d->lr))
        return;
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    rlog_put(d->lr, aid, RLOG_DIALOG, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* dlv_tls_ctx - the client TLS context for relay_ca_file (made on first
 * use and after a reload); NULL when it cannot be made (said once). */
struct tls_ctx *dlv_tls_ctx(struct dlv *d)
{
    if (d->tls || d->tls_failed)
        return d->tls;
    char err[256];
    d->tls = tls_client_ctx_new(dlv_cfg(d)->relay_ca_file, err, sizeof(err));
    if (!d->tls) {
        fprintf(stderr, "mxringd: delivery: TLS client: %s\n", err);
        d->tls_failed = true;
    }
    return d->tls;
}

/* clock_read - the loop's two clocks. */
static void clock_read(struct dlv *d)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    d->now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    clock_gettime(CLOCK_REALTIME, &ts);
    d->now = ts.tv_sec;
}

/* wake_arm - read the eventfd (one 8-byte read in flight). */
static void wake_arm(struct dlv *d)
{
    struct io_uring_sqe *sqe = dlv_sqe(d);
    io_uring_prep_read(sqe, d->efd, &d->efd_val, sizeof(d->efd_val), 0);
    io_uring_sqe_set_data64(sqe, uring_cb_data(&d->cb_wake));
}

/* tick_arm - the 200 ms timer. */
static void tick_arm(struct dlv *d)
{
    struct io_uring_sqe *sqe = dlv_sqe(d);
    io_uring_prep_timeout(sqe, &d->tick_ts, 0, 0);
    io_uring_sqe_set_data64(sqe, uring_cb_data(&d->cb_tick));
}

/* cmp_name - qsort: queue ids sort in arrival order. */
static int cmp_name(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* poll_new - take every complete file of new/ (arrival order): rename it
 * into active/ and schedule it. */
static void poll_new(struct dlv *d)
{
    int fd = openat(d->new_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* own offset */
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        if (fd >= 0)
            close(fd);
        return;
    }
    static char names[DLV_PICK_MAX][QFILE_ID_LEN + 1];
    size_t n = 0;
    struct dirent *e;
    while (n < DLV_PICK_MAX && (e = readdir(dir)) != NULL)
        if (qfile_id_valid(e->d_name, strlen(e->d_name)))
            memcpy(names[n++], e->d_name, QFILE_ID_LEN + 1);
    closedir(dir);
    qsort(names, n, sizeof(names[0]), cmp_name);
    for (size_t i = 0; i < n; i++)
        if (dlv_queue_load(d, names[i], true) == 0)
            dlv_stat_add(DLV_ST_PICKED, 1);
    if (n < DLV_PICK_MAX)
        d->new_has_state = false; /* new/ as it was at start is taken */
}

/* ino_arm - one read of the inotify fd in flight. */
static void ino_arm(struct dlv *d)
{
    struct io_uring_sqe *sqe = dlv_sqe(d);
    io_uring_prep_read(sqe, d->ino_fd, d->ino_buf, DLV_INO_BUF, 0);
    io_uring_sqe_set_data64(sqe, uring_cb_data(&d->cb_ino));
}

/* on_ino - files were renamed into new/ (the materializer's, our bounces):
 * take the ones named, in event order (= rename order, arrival order); a
 * lost event (IN_Q_OVERFLOW) makes the next tick read new/ in full. */
static void on_ino(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    struct dlv *d = (struct dlv *)((char *)cb - offsetof(struct dlv, cb_ino));
    if (cqe->res < 0 && cqe->res != -EINTR && cqe->res != -EAGAIN) {
        fprintf(stderr, "mxringd: delivery: inotify read: %s (polling new/)\n",
                strerror(-cqe->res));
        close(d->ino_fd);
        d->ino_fd = -1;
        return;
    }
    bool on = !d->stopping && dlv_enabled(d->snap);
    for (size_t off = 0; cqe->res > 0 && off + sizeof(struct inotify_event) <= (size_t)cqe->res;) {
        const struct inotify_event *e = (const void *)(d->ino_buf + off);
        off += sizeof(*e) + e->len;
        if (e->mask & IN_Q_OVERFLOW)
            d->ino_overflow = true;
        else if (on && e->len && qfile_id_valid(e->name, strnlen(e->name, e->len)) &&
                 dlv_queue_load(d, e->name, true) == 0)
            dlv_stat_add(DLV_ST_PICKED, 1);
    }
    if (on)
        dlv_queue_run_due(d);
    if (!d->stopping)
        ino_arm(d);
}

/* ino_open - the inotify watch on new/ (without it new/ is read every
 * tick). */
static void ino_open(struct dlv *d)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/queue/new", d->workdir);
    d->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    d->ino_buf = d->ino_fd >= 0 ? malloc(DLV_INO_BUF) : NULL;
    if (d->ino_buf && inotify_add_watch(d->ino_fd, path, IN_MOVED_TO | IN_ONLYDIR) >= 0)
        return;
    fprintf(stderr, "mxringd: delivery: no inotify on %s (%s): polling it every %u ms\n", path,
            strerror(errno), DLV_POLL_MS);
    if (d->ino_fd >= 0)
        close(d->ino_fd);
    d->ino_fd = -1;
    free(d->ino_buf);
    d->ino_buf = NULL;
}

/* scan_due - read new/ in full on this tick: always without inotify, else
 * after lost events and every DLV_SCAN_MS (files renamed in before the
 * watch existed, or by hand). */
static bool scan_due(struct dlv *d)
{
    if (d->ino_fd >= 0 && !d->ino_overflow && d->now_ms < d->scan_ms + DLV_SCAN_MS)
        return false;
    d->ino_overflow = false;
    d->scan_ms = d->now_ms;
    return true;
}

/* update_full - the back-pressure flag: message count and free space. */
static void update_full(struct dlv *d)
{
    const struct config *c = dlv_cfg(d);
    bool full = c->queue_max_messages && d->nmsg >= c->queue_max_messages;
    struct statvfs vs;
    if (!full && c->queue_min_free_space && fstatvfs(d->active_fd, &vs) == 0)
        full = (uint64_t)vs.f_bavail * vs.f_frsize < c->queue_min_free_space;
    if (full != atomic_load_explicit(&g_full, memory_order_relaxed))
        dlv_logf(d, 0,
                 full ? "queue full (%zu messages): receiving answers 452 4.3.1"
                      : "queue below its limits (%zu messages): receiving resumes",
                 d->nmsg);
    atomic_store_explicit(&g_full, full, memory_order_relaxed);
}

/* follow_snapshot - a reload published new routes/limits: use them for
 * new jobs (jobs in flight keep their own snapshot reference). */
static void follow_snapshot(struct dlv *d)
{
    if (snap_current_gen() == d->snap->gen)
        return;
    struct snap *s = snap_current();
    snap_unref(d->snap);
    d->snap = s;
    tls_ctx_free(d->tls); /* re-read the CA file too (renewed CAs) */
    d->tls = NULL;
    d->tls_failed = false;
    dlv_logf(d, 0, "configuration generation %llu: %zu routes", (unsigned long long)s->gen,
             routes_count(s->routes));
    atomic_store_explicit(&g_handoff_on, dlv_enabled(s), memory_order_release); /* R2 */
}

/* take_handoffs - the files the materializer put into active/ for us. */
static void take_handoffs(struct dlv *d)
{
    for (struct inbox_node *n = inbox_take(g_handoff), *next; n; n = next) {
        next = n->next;
        struct handoff *h = INBOX_ENTRY(n, struct handoff, link);
        if (dlv_queue_adopt(d, h->id, h->bytes, h->len) == 0) {
            dlv_stat_add(DLV_ST_PICKED, 1);
            dlv_stat_add(DLV_ST_HANDED, 1);
        }
        free(h);
    }
}

/* dlv_handoff_wanted - see deliver.h. */
bool dlv_handoff_wanted(void)
{
    return atomic_load_explicit(&g_handoff_on, memory_order_acquire); /* R2 */
}

/* dlv_handoff - see deliver.h. */
bool dlv_handoff(const char *id, char *bytes, size_t len)
{
    struct handoff *h = malloc(sizeof(*h));
    if (!h || strlen(id) != QFILE_ID_LEN) {
        free(h);
        free(bytes);
        return false;
    }
    memcpy(h->id, id, QFILE_ID_LEN + 1);
    h->bytes = bytes;
    h->len = len;
    inbox_push(g_handoff, &h->link); /* wakes the thread when it was empty */
    return true;
}

/* on_tick - the 200 ms poll. */
static void on_tick(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    (void)cqe;
    struct dlv *d = (struct dlv *)((char *)cb - offsetof(struct dlv, cb_tick));
    if (!d->stopping) {
        follow_snapshot(d);
        take_handoffs(d);
        if (dlv_enabled(d->snap) && scan_due(d))
            poll_new(d);
        update_full(d);
        dlv_queue_run_due(d);
        dlv_done_expire(d);
        if (d->now_ms >= d->census_ms + 1000) { /* the metrics' queue gauges */
            d->census_ms = d->now_ms;
            dlv_census_publish(d);
        }
    }
    dlv_pools_tick(d);
    tick_arm(d);
}

/* on_wake - the eventfd fired: stop, or look at new/ now. */
static void on_wake(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    (void)cqe;
    struct dlv *d = (struct dlv *)((char *)cb - offsetof(struct dlv, cb_wake));
    if (atomic_load_explicit(&g_stop, memory_order_acquire) && !d->stopping) {
        d->stopping = true;
        dlv_ctl_close(d);
        dlv_pools_close(d);
    } else if (!d->stopping) {
        follow_snapshot(d);
        take_handoffs(d);
        /* a reload (dlv_notify) reads new/; the materializer's wake-ups
         * (handed-over files) do not */
        if (atomic_exchange_explicit(&g_rescan, false, memory_order_relaxed) &&
            dlv_enabled(d->snap))
            poll_new(d);
        dlv_queue_run_due(d);
    }
    wake_arm(d);
}

/* loop - run completions until stopped and every connection is gone. */
static void loop(struct dlv *d)
{
    uint64_t stop_at = 0;
    for (;;) {
        int r = io_uring_submit_and_wait(&d->ring, 1);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
            die("delivery: io_uring_submit_and_wait: %s", strerror(-r));
        clock_read(d);
        struct io_uring_cqe *cqes[DLV_CQ_BATCH];
        unsigned n = io_uring_peek_batch_cqe(&d->ring, cqes, DLV_CQ_BATCH);
        for (unsigned i = 0; i < n; i++) {
            struct io_uring_cqe cqe = *cqes[i];
            io_uring_cqe_seen(&d->ring, cqes[i]);
            uring_cb_dispatch(&cqe); /* everything here is a callback (or 0) */
        }
        dlv_done_flush(d); /* the messages finished in this turn leave the queue */
        if (d->stopping) {
            if (!stop_at)
                stop_at = d->now_ms + DLV_STOP_MS;
            if ((dlv_pools_idle(d) || d->now_ms >= stop_at) && !dlv_dns_busy(d))
                return; /* a lookup ends within dns_timeout_ms */
        }
    }
}

/* thread_main - the delivery thread. */
static void *thread_main(void *arg)
{
    struct dlv *d = arg;
    int r = d->ring_disabled ? uring_enable(&d->ring) : 0; /* its one submitter */
    if (r < 0)
        die("delivery: io_uring enable: %s", strerror(-r));
    clock_read(d);
    dlv_queue_scan_active(d);
    atomic_store_explicit(&g_handoff_on, dlv_enabled(d->snap), memory_order_release); /* R2 */
    wake_arm(d);
    tick_arm(d);
    if (d->ino_fd >= 0)
        ino_arm(d);
    loop(d);
    return NULL;
}

/* open_sub - a queue folder fd (created when missing). */
static int open_sub(const char *workdir, const char *sub)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", workdir, sub);
    if (mkdir(path, 0750) < 0 && errno != EEXIST)
        die("cannot create %s: %s", path, strerror(errno));
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        die("cannot open %s: %s", path, strerror(errno));
    return fd;
}

/* open_log - the delivery log: a second rlog instance, one ring (this
 * thread), folder deliverylog/, switched by that folder's existence. */
static void open_log(struct dlv *d)
{
    if (gethostname(d->host, sizeof(d->host) - 1) < 0 || !d->host[0])
        strcpy(d->host, "localhost");
    const struct config *c = dlv_cfg(d);
    struct rlog_opts o = {.workdir = d->workdir,
                          .folder = "deliverylog",
                          .host = d->host,
                          .nrings = 1,
                          .ring_bytes = 1u << 20,
                          .keep_days = c->receivelog_keep_days,
                          .compress_after_days = c->receivelog_compress_after_days};
    d->log = rlog_create(&o);
    if (!d->log)
        die("delivery log: %s", strerror(errno));
    int r = rlog_start(d->log);
    if (r < 0)
        die("delivery log flusher: %s", strerror(-r));
    d->lr = rlog_ring(d->log, 0);
}

/* dlv_start - see deliver.h. */
void dlv_start(const char *workdir)
{
    if (g_dlv)
        return;
    struct dlv *d = calloc(1, sizeof(*d));
    if (!d || !(d->workdir = strdup(workdir)))
        die("out of memory");
    d->snap = snap_current();
    d->new_fd = open_sub(workdir, "queue/new");
    d->tmp_fd = open_sub(workdir, "queue/tmp");
    d->active_fd = open_sub(workdir, "queue/active");
    d->state_fd = open_sub(workdir, "queue/state");
    d->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d->efd < 0)
        die("eventfd: %s", strerror(errno));
    if (!(g_handoff = inbox_new(d->efd)))
        die("out of memory");
    d->cb_wake.fn = on_wake;
    d->cb_tick.fn = on_tick;
    d->cb_ino.fn = on_ino;
    d->tick_ts.tv_nsec = (long)DLV_POLL_MS * 1000000L;
    d->next_aid = 1;
    d->done_fd = -1;
    d->done_prev = -1;
    /* made here, used by the delivery thread only, which enables it;
     * DEFER_TASKRUN because the relay benchmark showed task-work signals
     * interrupting that thread once per completion */
    int r = uring_setup(&d->ring, DLV_SQ_ENTRIES, 0, true, &d->ring_disabled);
    if (r < 0)
        die("delivery: io_uring setup failed: %s", strerror(-r));
    ino_open(d);
    if (dlv_dns_open(d) < 0)
        die("out of memory");
    open_log(d);
    if (dlv_ctl_open(d) < 0)
        die("delivery: cannot open %s/control.sock: %s", workdir, strerror(errno));
    atomic_store_explicit(&g_stop, false, memory_order_relaxed);
    atomic_store_explicit(&g_efd, d->efd, memory_order_release);
    r = pthread_create(&g_thr, NULL, thread_main, d);
    if (r)
        die("cannot start the delivery thread: %s", strerror(r));
    g_dlv = d;
}

/* dlv_stop - see deliver.h. */
void dlv_stop(void)
{
    struct dlv *d = g_dlv;
    if (!d)
        return;
    atomic_store_explicit(&g_stop, true, memory_order_release);
    dlv_notify();
    pthread_join(g_thr, NULL);
    atomic_store_explicit(&g_handoff_on, false, memory_order_relaxed);
    for (struct inbox_node *n = inbox_take(g_handoff), *next; n; n = next) {
        next = n->next; /* in active/: taken at the next start */
        struct handoff *h = INBOX_ENTRY(n, struct handoff, link);
        free(h->bytes);
        free(h);
    }
    inbox_free(g_handoff);
    g_handoff = NULL;
    atomic_store_explicit(&g_efd, -1, memory_order_release);
    atomic_store_explicit(&g_full, false, memory_order_relaxed);
    io_uring_queue_exit(&d->ring); /* cancels what is in flight */
    dlv_ctl_free(d);
    dlv_pools_free(d);
    dlv_dns_free(d);
    dlv_queue_free_all(d);
    dlv_done_free(d);
    rlog_stop(d->log);
    rlog_destroy(d->log);
    tls_ctx_free(d->tls);
    snap_unref(d->snap);
    close(d->efd);
    if (d->ino_fd >= 0)
        close(d->ino_fd);
    free(d->ino_buf);
    close(d->new_fd);
    close(d->tmp_fd);
    close(d->active_fd);
    close(d->state_fd);
    free(d->workdir);
    free(d);
    g_dlv = NULL;
}
