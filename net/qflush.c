/* qflush.c - the materializer thread behind qflush.h: it drains the lock-
 * free input list, writes each queue file from the journal extents
 * (unnamed, then linked into new/; or tmp/<qid> renamed where that cannot
 * be done), one syncfs() per batch, then reports back to the workers'
 * inboxes; failed messages are retried. Between batches it serves
 * segment requests (recycle a spare or zero-fill a new file) and retires
 * old segments (rename to a spare name or delete). Its own thread, except
 * the submit/want/take/inbox entry points (see qflush.h). */
#include "qflush.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "deliver.h"
#include "inbox.h"
#include "journal_file.h"
#include "util.h"

#define QF_CACHE_LINE 64
#define QF_BATCH_MAX 512 /* messages per syncfs */
#define QF_COPY_BUF (64 * 1024)
#define QF_RETRY_MS 200 /* pause before retrying failed messages */
#define QF_SPARES_MAX 4 /* free segments kept for recycling */
#define QF_ZERO_PIECE (1024 * 1024)
#define QF_STOP_MS 2000 /* at exit, give up after this long without progress */

/* One worker's segment slot: a request and a prepared answer. The mutex is
 * held for a few loads and stores only, never across a syscall. */
struct qf_slot {
    pthread_mutex_t mu;
    uint64_t want; /* requested segno, 0 = none */
    int ready_fd;  /* prepared segment, -1 = none */
    uint64_t ready_segno;
};

/* A segment to retire. */
struct qf_retire {
    struct qf_retire *next;
    unsigned worker;
    uint64_t segno;
    int fd;
};

struct qflush {
    alignas(QF_CACHE_LINE) _Atomic(struct qflush_msg *) in; /* submitted, newest first */
    alignas(QF_CACHE_LINE) int efd;                         /* wakes the thread */
    atomic_bool stop;
    pthread_t thread;
    int queue_fd, quar_fd; /* <workdir>/queue, <workdir>/quarantine */
    int jdir;              /* journal folder (borrowed) */
    uint64_t seg_size;
    unsigned nworkers;
    struct qf_slot *slots;
    pthread_mutex_t retire_mu; /* guards retire */
    struct qf_retire *retire;
    uint64_t spares[QF_SPARES_MAX]; /* segnos of spare-<segno>.jrn files */
    unsigned nspares;
    struct qflush_msg *work_head, *work_tail; /* taken, not yet durable (FIFO) */
    uint64_t retry_at_ms;                     /* failed messages wait until then */
    char *buf;                                /* QF_COPY_BUF octets */
    bool no_tmpfile;                          /* O_TMPFILE cannot be used here: tmp/ and rename */
    alignas(QF_CACHE_LINE) atomic_uint_fast64_t next_segno; /* every worker's segnos */
    struct qflush_stats st;
};

/* now_ms - monotonic milliseconds. */
static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* qf_wake - make the thread look at its inputs. */
static void qf_wake(struct qflush *f)
{
    uint64_t one = 1;
    if (write(f->efd, &one, sizeof one) < 0) {
        /* EAGAIN only at a counter of 2^64-2: the thread is awake anyway */
    }
}

/* qf_reverse - a newest-first list in oldest-first order. */
static struct qflush_msg *qf_reverse(struct qflush_msg *m)
{
    struct qflush_msg *fifo = NULL;
    while (m) {
        struct qflush_msg *next = m->next;
        m->next = fifo;
        fifo = m;
        m = next;
    }
    return fifo;
}

/* qflush_inbox_drain - hand the inbox's reports to fn, oldest first. */
size_t qflush_inbox_drain(struct inbox *ib, void (*fn)(void *arg, struct qflush_msg *m), void *arg)
{
    size_t n = 0;
    for (struct inbox_node *in = inbox_take(ib), *next; in; in = next, n++) {
        next = in->next; /* read before fn: it may reuse the message */
        fn(arg, INBOX_ENTRY(in, struct qflush_msg, link));
    }
    return n;
}

/* ---- submission (worker side) --------------------------------------------- */

void qflush_submit(struct qflush *f, struct qflush_msg *first, struct qflush_msg *last)
{
    /* The chain is oldest first; the input list is newest first, so link it
     * reversed: reverse it in place, then push it as one piece. */
    struct qflush_msg *newest = NULL, *m = first, *oldest = first;
    while (m) {
        struct qflush_msg *next = m == last ? NULL : m->next;
        m->next = newest;
        newest = m;
        m = next;
    }
    struct qflush_msg *old = atomic_load_explicit(&f->in, memory_order_relaxed);
    do
        oldest->next = old;
    /* R2: release the messages' contents; pairs with A2 in qf_take(). */
    while (!atomic_compare_exchange_weak_explicit(&f->in, &old, newest, memory_order_release,
                                                  memory_order_relaxed));
    if (!old)
        qf_wake(f);
}

/* qf_take - move everything submitted onto the work list (FIFO). */
static void qf_take(struct qflush *f)
{
    /* A2: acquire the submitted messages; pairs with R2 in qflush_submit(). */
    struct qflush_msg *m = qf_reverse(atomic_exchange_explicit(&f->in, NULL, memory_order_acquire));
    if (!m)
        return;
    if (f->work_tail)
        f->work_tail->next = m;
    else
        f->work_head = m;
    while (m->next)
        m = m->next;
    f->work_tail = m;
}

/* ---- writing one file ------------------------------------------------------ */

/* qf_write_all - write n octets or fail (-errno; a short write is ENOSPC). */
static int qf_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t r = write(fd, c, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ENOSPC;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

/* qf_copy - head, then the body from the segment extents, into fd through
 * the copy buffer (small messages take one write). *whole is the file's
 * length when all of it went out of the buffer in that one write (it is
 * still there), else 0. */
static int qf_copy(struct qflush *f, int fd, const struct qflush_msg *m, size_t *whole)
{
    size_t used = 0;
    int r = 0;
    bool one = m->head_len <= QF_COPY_BUF;
    *whole = 0;
    if (!one)
        r = qf_write_all(fd, m->head, m->head_len);
    else
        memcpy(f->buf, m->head, used = m->head_len);
    for (size_t i = 0; i < m->next_count && r == 0; i++) {
        const struct qflush_ext *e = &m->ext[i];
        uint64_t off = e->off;
        size_t left = e->len;
        while (left && r == 0) {
            if (used == QF_COPY_BUF) {
                r = qf_write_all(fd, f->buf, used);
                used = 0;
                one = false;
                continue;
            }
            size_t want = QF_COPY_BUF - used < left ? QF_COPY_BUF - used : left;
            ssize_t got = pread(e->fd, f->buf + used, want, (off_t)off);
            if (got <= 0) {
                r = got < 0 ? -errno : -EIO;
                break;
            }
            used += (size_t)got;
            off += (uint64_t)got;
            left -= (size_t)got;
        }
    }
    if (r == 0 && used)
        r = qf_write_all(fd, f->buf, used);
    if (r == 0 && one)
        *whole = used;
    return r;
}

/* qf_hand_over - queue/active/<qid> is in place: give it to the delivery
 * thread with a copy of its bytes when they are still in the buffer
 * (whole); when that cannot be done, move it to new/, where the delivery
 * thread's watch finds it. */
static void qf_hand_over(struct qflush *f, const struct qflush_msg *m, size_t whole)
{
    char *bytes = whole ? malloc(whole) : NULL;
    if (bytes)
        memcpy(bytes, f->buf, whole);
    if (dlv_handoff(m->qid, bytes, bytes ? whole : 0))
        return;
    char act[SPOOL_ID_LEN + 8], nw[SPOOL_ID_LEN + 8];
    snprintf(act, sizeof act, "active/%s", m->qid);
    snprintf(nw, sizeof nw, "new/%s", m->qid);
    if (renameat2(f->queue_fd, act, f->queue_fd, nw, RENAME_NOREPLACE) < 0)
        fprintf(stderr, "mxringd: materializer: queue file %s left in queue/active: %s\n", m->qid,
                strerror(errno));
}

/* qf_link_tmpfile - give the unnamed file fd the name dir/name: linkat
 * with AT_EMPTY_PATH (CAP_DAC_READ_SEARCH before Linux 6.10), else
 * through /proc/self/fd. 0 or -errno. */
static int qf_link_tmpfile(int fd, int dir, const char *name)
{
    if (linkat(fd, "", dir, name, AT_EMPTY_PATH) == 0)
        return 0;
    if (errno != EPERM && errno != ENOENT && errno != EINVAL)
        return -errno;
    char path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, path, dir, name, AT_SYMLINK_FOLLOW) == 0 ? 0 : -errno;
}

/* qf_no_tmpfile - O_TMPFILE files cannot be made or named here (err):
 * from now on write tmp/ files; returns 1 (the caller falls back). */
static int qf_no_tmpfile(struct qflush *f, int err)
{
    f->no_tmpfile = true;
    fprintf(stderr, "mxringd: materializer: no O_TMPFILE files here (%s): writing tmp/ files\n",
            strerror(err));
    return 1;
}

/* qf_write_unnamed - write m unnamed in base/sub (O_TMPFILE) and link it
 * as nw once complete. 0, -EEXIST (already there), 1 (cannot be done
 * here: fall back), or -errno (nothing left behind). */
static int qf_write_unnamed(struct qflush *f, int base, const char *sub, const char *nw,
                            const struct qflush_msg *m, size_t *whole)
{
    int fd = openat(base, sub, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0640);
    if (fd < 0)
        return errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL ? qf_no_tmpfile(f, errno)
                                                                         : -errno;
    int r = qf_copy(f, fd, m, whole);
    if (r == 0)
        r = qf_link_tmpfile(fd, base, nw);
    if (close(fd) < 0 && r == 0) {
        r = -errno;
        unlinkat(base, nw, 0);
    }
    /* ENOENT is also what a folder taken away meanwhile gives: that is
     * retried (as the tmp/ path would be), not a reason to fall back */
    struct stat st;
    if (r == -ENOENT && fstatat(base, sub, &st, 0) < 0)
        return r;
    return r == -EPERM || r == -ENOENT ? qf_no_tmpfile(f, -r) : r;
}

/* qf_write_named - write m as tmp/<qid> and rename it to nw. 0, -EEXIST
 * (already there), or -errno (tmp/ cleaned). */
static int qf_write_named(struct qflush *f, int base, const char *nw, const struct qflush_msg *m,
                          size_t *whole)
{
    char tmp[SPOOL_ID_LEN + 8];
    snprintf(tmp, sizeof tmp, "tmp/%s", m->qid);
    int fd = openat(base, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    int r = qf_copy(f, fd, m, whole);
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && renameat2(base, tmp, base, nw, RENAME_NOREPLACE) < 0)
        r = -errno;
    if (r < 0)
        unlinkat(base, tmp, 0);
    return r;
}

/* qf_materialize - the queue file: written unnamed (O_TMPFILE) in new/ and
 * linked there as new/<qid> once complete, or written as tmp/<qid> and
 * renamed where that cannot be done; straight to active/<qid> for the
 * delivery thread when it takes hand-overs (quarantine never). 0 or
 * -errno (nothing left behind). A file already there (a retry after a
 * failed syncfs) counts as done and is not handed over again. An unnamed
 * file saves the tmp/ entry's creation and the rename's lookups (about
 * 15 % of the materializer's time per file on ext4) and leaves nothing to
 * clean after a crash. */
static int qf_materialize(struct qflush *f, const struct qflush_msg *m)
{
    int base = m->quarantine ? f->quar_fd : f->queue_fd;
    bool hand = !m->quarantine && dlv_handoff_wanted();
    const char *sub = hand ? "active" : "new";
    char nw[SPOOL_ID_LEN + 8];
    snprintf(nw, sizeof nw, "%s/%s", sub, m->qid);
    size_t whole;
    int r = f->no_tmpfile ? 1 : qf_write_unnamed(f, base, sub, nw, m, &whole);
    if (r == 1)
        r = qf_write_named(f, base, nw, m, &whole);
    if (r == -EEXIST)
        return 0; /* materialized before */
    if (r == 0 && hand)
        qf_hand_over(f, m, whole);
    return r;
}

/* ---- batches ----------------------------------------------------------------- */

/* qf_batch - materialize up to QF_BATCH_MAX messages from the work list,
 * one syncfs for all of them, report the durable ones; failures stay at the
 * head of the work list for a later retry. */
static void qf_batch(struct qflush *f)
{
    struct qflush_msg *done = NULL, *last = NULL;
    bool quar = false;
    unsigned n = 0;
    while (f->work_head && n < QF_BATCH_MAX) {
        struct qflush_msg *m = f->work_head;
        int r = qf_materialize(f, m);
        if (r < 0) {
            static _Thread_local uint64_t warned;
            f->st.errors++;
            if (warned + 1000 <= now_ms()) {
                warned = now_ms();
                fprintf(stderr, "mxringd: materializer: queue file %s: %s (retrying)\n", m->qid,
                        strerror(-r));
            }
            f->retry_at_ms = now_ms() + QF_RETRY_MS;
            break;
        }
        f->work_head = m->next;
        if (!f->work_head)
            f->work_tail = NULL;
        m->next = NULL;
        if (last)
            last->next = m;
        else
            done = m;
        last = m;
        quar |= m->quarantine;
        n++;
    }
    if (!done)
        return;
    int r = syncfs(f->queue_fd);
    if (r == 0 && quar)
        r = syncfs(f->quar_fd);
    if (r < 0) {
        /* the files stay in new/; put the batch back and try again */
        fprintf(stderr, "mxringd: materializer: syncfs: %s (retrying)\n", strerror(errno));
        f->st.errors++;
        last->next = f->work_head;
        f->work_head = done;
        if (!f->work_tail)
            f->work_tail = last;
        f->retry_at_ms = now_ms() + QF_RETRY_MS;
        return;
    }
    f->st.syncs++;
    f->st.files += n;
    for (struct qflush_msg *m = done, *next; m; m = next) {
        next = m->next;
        m->err = 0;
        inbox_push(m->inbox, &m->link); /* R1 in inbox_push: m (err, our last reads) */
    }
}

/* ---- segments ------------------------------------------------------------------- */

/* qf_zero_fill - write seg_size zero octets in pieces, then fdatasync. */
static int qf_zero_fill(int fd, uint64_t size)
{
    static const char zeros[QF_ZERO_PIECE];
    for (uint64_t off = 0; off < size;) {
        size_t n = size - off < QF_ZERO_PIECE ? (size_t)(size - off) : QF_ZERO_PIECE;
        ssize_t w = pwrite(fd, zeros, n, (off_t)off);
        if (w <= 0)
            return w < 0 ? -errno : -ENOSPC;
        off += (uint64_t)w;
    }
    return fdatasync(fd) < 0 ? -errno : 0;
}

/* qf_seg_make - segment segno of worker: a recycled spare (renamed) or a
 * new zero-filled file; the folder is fsynced so the name is durable.
 * Returns the descriptor or -errno. */
static int qf_seg_make(struct qflush *f, unsigned worker, uint64_t segno)
{
    char name[JRN_NAME_MAX], spare[JRN_NAME_MAX];
    jrn_seg_name(name, worker, segno);
    int fd = -1;
    while (fd < 0 && f->nspares) {
        jrn_spare_name(spare, f->spares[--f->nspares]);
        if (renameat(f->jdir, spare, f->jdir, name) == 0)
            fd = openat(f->jdir, name, O_RDWR | O_CLOEXEC);
    }
    if (fd < 0) {
        fd = openat(f->jdir, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd < 0)
            return -errno;
        int r = qf_zero_fill(fd, f->seg_size);
        if (r < 0) {
            close(fd);
            unlinkat(f->jdir, name, 0);
            return r;
        }
        f->st.segments++;
    }
    if (fsync(f->jdir) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* qf_serve_slots - prepare the segments workers asked for. */
static void qf_serve_slots(struct qflush *f)
{
    for (unsigned i = 0; i < f->nworkers; i++) {
        struct qf_slot *s = &f->slots[i];
        pthread_mutex_lock(&s->mu);
        uint64_t want = s->ready_fd < 0 ? s->want : 0;
        s->want = 0;
        pthread_mutex_unlock(&s->mu);
        if (!want)
            continue;
        int fd = qf_seg_make(f, i, want);
        if (fd < 0) {
            static _Thread_local uint64_t warned;
            if (warned + 1000 <= now_ms()) {
                warned = now_ms();
                fprintf(stderr, "mxringd: journal: cannot prepare a segment: %s\n", strerror(-fd));
            }
            continue; /* the worker falls back to a segment of its own */
        }
        pthread_mutex_lock(&s->mu);
        s->ready_fd = fd;
        s->ready_segno = want;
        pthread_mutex_unlock(&s->mu);
    }
}

/* qf_retire_one - close a retired segment; keep it as a spare or delete it. */
static void qf_retire_one(struct qflush *f, const struct qf_retire *r)
{
    char name[JRN_NAME_MAX], spare[JRN_NAME_MAX];
    jrn_seg_name(name, r->worker, r->segno);
    struct stat st;
    bool full = r->fd >= 0 && fstat(r->fd, &st) == 0 && (uint64_t)st.st_size == f->seg_size &&
                st.st_blocks * 512ull >= f->seg_size;
    if (r->fd >= 0)
        close(r->fd);
    if (full && f->nspares < QF_SPARES_MAX) {
        jrn_spare_name(spare, r->segno);
        if (renameat(f->jdir, name, f->jdir, spare) == 0) {
            f->spares[f->nspares++] = r->segno;
            return;
        }
    }
    unlinkat(f->jdir, name, 0);
}

/* qf_serve_retire - retire every segment handed over. */
static void qf_serve_retire(struct qflush *f)
{
    pthread_mutex_lock(&f->retire_mu);
    struct qf_retire *r = f->retire;
    f->retire = NULL;
    pthread_mutex_unlock(&f->retire_mu);
    while (r) {
        struct qf_retire *next = r->next;
        qf_retire_one(f, r);
        free(r);
        r = next;
    }
}

void qflush_seg_want(struct qflush *f, unsigned worker, uint64_t segno)
{
    struct qf_slot *s = &f->slots[worker];
    pthread_mutex_lock(&s->mu);
    s->want = segno;
    pthread_mutex_unlock(&s->mu);
    qf_wake(f);
}

int qflush_seg_take(struct qflush *f, unsigned worker, uint64_t *segno)
{
    struct qf_slot *s = &f->slots[worker];
    pthread_mutex_lock(&s->mu);
    int fd = s->ready_fd;
    *segno = s->ready_segno;
    s->ready_fd = -1;
    pthread_mutex_unlock(&s->mu);
    return fd;
}

void qflush_seg_retire(struct qflush *f, unsigned worker, uint64_t segno, int fd)
{
    struct qf_retire *r = malloc(sizeof(*r));
    if (!r) {
        if (fd >= 0)
            close(fd); /* the file stays; recovery skips it (checkpointed) */
        return;
    }
    *r = (struct qf_retire){.worker = worker, .segno = segno, .fd = fd};
    pthread_mutex_lock(&f->retire_mu);
    r->next = f->retire;
    f->retire = r;
    pthread_mutex_unlock(&f->retire_mu);
    qf_wake(f);
}

/* ---- the thread ---------------------------------------------------------------- */

/* qf_wait - sleep until woken, or until a retry is due. */
static void qf_wait(struct qflush *f)
{
    int timeout = -1;
    if (f->work_head) {
        uint64_t now = now_ms();
        timeout = f->retry_at_ms > now ? (int)(f->retry_at_ms - now) : 0;
    }
    struct pollfd p = {.fd = f->efd, .events = POLLIN};
    if (poll(&p, 1, timeout) > 0) {
        uint64_t v;
        if (read(f->efd, &v, sizeof v) < 0) {
            /* EAGAIN: someone else's wake was consumed already */
        }
    }
}

/* qf_main - the materializer loop. */
static void *qf_main(void *arg)
{
    struct qflush *f = arg;
    uint64_t give_up = 0;
    for (;;) {
        bool stopping = atomic_load_explicit(&f->stop, memory_order_acquire);
        if (stopping && !give_up)
            give_up = now_ms() + QF_STOP_MS;
        qf_take(f);
        uint64_t files = f->st.files;
        if (f->work_head && now_ms() >= f->retry_at_ms)
            qf_batch(f);
        if (stopping && f->st.files != files)
            give_up = now_ms() + QF_STOP_MS; /* a backlog is written out in full */
        qf_serve_retire(f);
        qf_serve_slots(f);
        if (stopping && !f->work_head && !atomic_load(&f->in))
            break;
        if (stopping && now_ms() >= give_up) {
            /* failing at exit: recovery writes them at the next start */
            size_t left = 0;
            for (struct qflush_msg *m = f->work_head; m; m = m->next)
                left++;
            fprintf(stderr,
                    "mxringd: materializer: %zu committed messages not written out as queue files "
                    "at exit "
                    "(no progress for %d ms); they are in the journal and are written at the "
                    "next start\n",
                    left, QF_STOP_MS);
            break;
        }
        if (!f->work_head && !atomic_load(&f->in))
            qf_wait(f);
        else if (f->work_head && now_ms() < f->retry_at_ms)
            qf_wait(f);
    }
    return NULL;
}

/* qf_load_spares - the spare segments of the right size in the folder;
 * others are deleted. */
static void qf_load_spares(struct qflush *f, const char *workdir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", workdir, JRN_DIR);
    struct jrn_dirlist l;
    if (jrn_dir_scan(path, &l) < 0)
        return;
    atomic_store(&f->next_segno, l.next_segno > 0 ? l.next_segno : 1);
    for (size_t i = l.n - l.nspare; i < l.n; i++) {
        if (l.v[i].size == f->seg_size && f->nspares < QF_SPARES_MAX)
            f->spares[f->nspares++] = l.v[i].segno;
        else
            unlinkat(f->jdir, l.v[i].name, 0);
    }
    jrn_dirlist_free(&l);
}

/* qf_open_dir - <workdir>/<sub> as a directory descriptor, or -1. */
static int qf_open_dir(const char *workdir, const char *sub)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", workdir, sub);
    return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* qf_free - release everything (the thread is not running). */
static void qf_free(struct qflush *f)
{
    for (unsigned i = 0; f->slots && i < f->nworkers; i++) {
        if (f->slots[i].ready_fd >= 0) {
            char name[JRN_NAME_MAX];
            jrn_seg_name(name, i, f->slots[i].ready_segno);
            close(f->slots[i].ready_fd);
            unlinkat(f->jdir, name, 0); /* never written: nothing to recover */
        }
        pthread_mutex_destroy(&f->slots[i].mu);
    }
    qf_serve_retire(f);
    free(f->slots);
    pthread_mutex_destroy(&f->retire_mu);
    if (f->queue_fd >= 0)
        close(f->queue_fd);
    if (f->quar_fd >= 0)
        close(f->quar_fd);
    if (f->efd >= 0)
        close(f->efd);
    free(f->buf);
    free(f);
}

/* qf_init - everything but the thread; false with err filled. */
static bool qf_init(struct qflush *f, const char *workdir, char *err, size_t errlen)
{
    pthread_mutex_init(&f->retire_mu, NULL);
    f->queue_fd = qf_open_dir(workdir, "queue");
    f->quar_fd = qf_open_dir(workdir, "quarantine");
    f->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    f->buf = malloc(QF_COPY_BUF);
    f->slots = calloc(f->nworkers, sizeof(*f->slots));
    if (f->queue_fd < 0 || f->quar_fd < 0 || f->efd < 0) {
        snprintf(err, errlen, "materializer: %s: %s", workdir, strerror(errno));
        return false;
    }
    if (!f->buf || !f->slots) {
        snprintf(err, errlen, "materializer: out of memory");
        return false;
    }
    for (unsigned i = 0; i < f->nworkers; i++) {
        pthread_mutex_init(&f->slots[i].mu, NULL);
        f->slots[i].ready_fd = -1;
    }
    qf_load_spares(f, workdir);
    return true;
}

struct qflush *qflush_start(const char *workdir, int journal_dirfd, uint64_t seg_size,
                            unsigned nworkers, char *err, size_t errlen)
{
    struct qflush *f = aligned_alloc(QF_CACHE_LINE, (sizeof(*f) + QF_CACHE_LINE - 1) /
                                                        QF_CACHE_LINE * QF_CACHE_LINE);
    if (!f) {
        snprintf(err, errlen, "materializer: out of memory");
        return NULL;
    }
    memset(f, 0, sizeof(*f));
    atomic_init(&f->in, NULL);
    atomic_init(&f->stop, false);
    atomic_init(&f->next_segno, 1);
    f->queue_fd = f->quar_fd = f->efd = -1;
    f->jdir = journal_dirfd;
    f->seg_size = seg_size;
    f->nworkers = nworkers;
    if (!qf_init(f, workdir, err, errlen)) {
        qf_free(f);
        return NULL;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals belong to the main thread */
    int e = pthread_create(&f->thread, NULL, qf_main, f);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        snprintf(err, errlen, "materializer: cannot start its thread: %s", strerror(e));
        qf_free(f);
        return NULL;
    }
    pthread_setname_np(f->thread, "mx-qflush");
    return f;
}

void qflush_stop(struct qflush *f, struct qflush_stats *st)
{
    if (st)
        *st = (struct qflush_stats){0};
    if (!f)
        return;
    atomic_store_explicit(&f->stop, true, memory_order_release);
    qf_wake(f);
    pthread_join(f->thread, NULL);
    if (st)
        *st = f->st;
    qf_free(f);
}

uint64_t qflush_next_segno(struct qflush *f)
{
    return atomic_fetch_add_explicit(&f->next_segno, 1, memory_order_relaxed);
}
