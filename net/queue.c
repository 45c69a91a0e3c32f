/* queue.c - the per-worker journal writer behind queue.h: transactions and
 * their extents, the batch list (one batch in flight, the others gathering),
 * the linked fsync(folder) -> write -> fdatasync chain, group-commit
 * callbacks, failure handling, the low-water mark, checkpoints and segment
 * switching/retiring. Owned by one worker thread. */
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "journal.h"
#include "journal_file.h"
#include "mhist.h"
#include "qflush.h"
#include "spool.h"
#include "uring.h"

#define Q_BUF_MAX (4u * 1024 * 1024)    /* pending octets before -EAGAIN */
#define Q_MAT_MAX (16ull * 1024 * 1024) /* octets the materializer may lag behind */
#define Q_CKPT_MS 200                   /* checkpoints at most this often ... */
#define Q_CKPT_RIDE_MS 50               /* ... or this often when a commit batch carries them */
#define Q_SPARE_BATCHES 2
#define Q_KEEP_BUF (1024 * 1024) /* larger batch buffers are freed */

_Static_assert(JRN_QID_LEN == SPOOL_ID_LEN, "queue ids are journal qids");

/* QST - bump a queue_stats counter: only the owning worker writes, with a
 * relaxed load and store; queue_get_stats reads with relaxed loads from any
 * thread (a metrics scrape). */
#define QST(q, field, n)                                                                      \
    __atomic_store_n(&(q)->st.field, __atomic_load_n(&(q)->st.field, __ATOMIC_RELAXED) + (n), \
                     __ATOMIC_RELAXED)

enum txn_state { T_OPEN = 0, T_COMMITTING, T_DURABLE };

struct queue_txn {
    struct qflush_msg m; /* first: what the materializer sees */
    struct queue *q;
    struct queue_txn *prev, *next; /* live list: first-record order */
    struct queue_txn *bnext;       /* its batch's commit list / written waiters */
    enum txn_state state;
    int failed; /* errno: chunks may be lost */
    uint64_t first_segno, first_off;
    struct qflush_ext *ext;
    size_t next_n, ecap; /* extents used, allocated */
    uint64_t size;
    uint32_t crc;
    uint64_t last_seq; /* batch holding its latest record */
    uint8_t *head;
    queue_commit_fn cb;
    void *cb_arg;
    queue_written_fn wcb;
    void *w_arg;
    struct timespec when;
    uint64_t skip;   /* octets of the message the queue file leaves out */
    uint64_t rd_off; /* read cursor: extent rd_idx starts at rd_off */
    size_t rd_idx;
};

struct qseg {
    struct qseg *next; /* oldest first */
    int fd;
    uint64_t segno;
};

struct qbatch {
    struct qbatch *next;
    struct qseg *seg;
    uint64_t off; /* segment offset of buf[0] */
    uint8_t *buf;
    size_t len, cap;
    uint64_t seq;
    bool sync;    /* durable once complete (write -> fdatasync) */
    bool dirsync; /* fsync the folder first (new segment name) */
    bool ckpt;    /* holds a checkpoint of ckpt_segno */
    uint64_t ckpt_segno;
    unsigned ncommits;
    struct queue_txn *commits, *commits_tail;
};

/* One linked operation of the batch in flight. */
struct qop {
    struct uring_cb cb;
    struct queue *q;
    int res;
};

enum { QOP_DIR = 0, QOP_WRITE, QOP_SYNC, QOP_N };

struct queue {
    struct qop ops[QOP_N];
    struct io_uring *ring;
    struct queue_params p;
    struct inbox *inbox;
    struct qseg *segs, *cur; /* all open segments; cur takes appends */
    uint64_t app_off;        /* next record offset in cur */
    uint64_t local_segno;    /* segnos when there is no materializer */
    bool broken;             /* cur is abandoned: switch before appending */
    bool warned;
    struct qbatch *bq, *bq_tail; /* head is in flight when busy */
    struct qbatch *spare[Q_SPARE_BATCHES];
    unsigned nspare;
    size_t bytes;       /* octets in all batches */
    uint64_t mat_bytes; /* handed to the materializer, not yet reported */
    bool busy;
    unsigned expect;        /* CQEs still due for the batch in flight */
    uint64_t seq, done_seq; /* batch numbers: last made, last completed */
    bool space_wanted;
    struct queue_txn *live, *live_tail;
    struct queue_txn *waiters; /* queue_txn_written */
    uint32_t qseq;
    bool ckpt_dirty;
    uint64_t ckpt_ms;
    uint64_t submit_us; /* when the synced batch in flight was submitted */
    struct queue_stats st;
};

static void q_op_done(struct uring_cb *cb, struct io_uring_cqe *cqe);

/* put64 - little-endian u64. */
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- live list (low-water mark) ----------------------------------------- */

static void live_add(struct queue *q, struct queue_txn *t)
{
    t->prev = q->live_tail;
    t->next = NULL;
    if (q->live_tail)
        q->live_tail->next = t;
    else
        q->live = t;
    q->live_tail = t;
}

static void live_remove(struct queue *q, struct queue_txn *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        q->live = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        q->live_tail = t->prev;
    t->prev = t->next = NULL;
    q->ckpt_dirty = true;
}

/* waiter_remove - take t off the queue_txn_written list (if on it). */
static void waiter_remove(struct queue *q, struct queue_txn *t)
{
    for (struct queue_txn **pp = &q->waiters; *pp; pp = &(*pp)->bnext)
        if (*pp == t) {
            *pp = t->bnext;
            t->bnext = NULL;
            return;
        }
}

/* txn_free - release t (off every list). */
static void txn_free(struct queue *q, struct queue_txn *t)
{
    live_remove(q, t);
    if (t->wcb)
        waiter_remove(q, t);
    free(t->ext);
    free(t->head);
    free(t);
}

/* ---- segments ------------------------------------------------------------- */

/* seg_create - fallback: a new segment file of our own (preallocated when
 * the file system lets us, not zero-filled). Descriptor or -errno. */
static int seg_create(struct queue *q, uint64_t segno)
{
    char name[JRN_NAME_MAX];
    jrn_seg_name(name, q->p.worker, segno);
    int fd = openat(q->p.journal_dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    if (fallocate(fd, 0, 0, (off_t)q->p.segment_size) < 0 && !q->warned) {
        q->warned = true;
        fprintf(stderr, "mxringd: worker %u: journal segment not preallocated: %s\n", q->p.worker,
                strerror(errno));
    }
    return fd;
}

/* seg_close_tail - the last batch of cur must end with an fdatasync, so a
 * later segment's commits never depend on unsynced records here. */
static int seg_close_tail(struct queue *q)
{
    struct qbatch *t = q->bq_tail;
    if (t && t->seg == q->cur && !(q->busy && t == q->bq)) {
        t->sync = true;
        return 0;
    }
    struct qbatch *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->seg = q->cur;
    b->off = q->app_off;
    b->sync = true;
    b->seq = ++q->seq;
    if (q->bq_tail)
        q->bq_tail->next = b;
    else
        q->bq = b;
    q->bq_tail = b;
    return 0;
}

/* seg_next - move appends to a fresh segment: the one the materializer
 * prepared, else one of our own. 0 or -errno. */
static int seg_next(struct queue *q, bool *dirsync)
{
    if (q->cur && !q->broken && seg_close_tail(q) < 0)
        return -ENOMEM;
    uint64_t segno = 0;
    int fd = q->p.flush ? qflush_seg_take(q->p.flush, q->p.worker, &segno) : -1;
    if (fd >= 0 && q->cur && segno <= q->cur->segno) {
        qflush_seg_retire(q->p.flush, q->p.worker, segno, fd); /* stale */
        fd = -1;
    }
    *dirsync = fd < 0;
    if (fd < 0) {
        segno = q->p.flush ? qflush_next_segno(q->p.flush) : ++q->local_segno;
        if ((fd = seg_create(q, segno)) < 0)
            return fd;
    }
    struct qseg *s = calloc(1, sizeof(*s));
    if (!s) {
        close(fd);
        return -ENOMEM;
    }
    s->fd = fd;
    s->segno = segno;
    if (q->cur)
        q->cur->next = s;
    else
        q->segs = s;
    q->cur = s;
    q->app_off = 0;
    q->broken = false;
    QST(q, segments, 1);
    if (q->p.flush)
        qflush_seg_want(q->p.flush, q->p.worker, qflush_next_segno(q->p.flush));
    return 0;
}

/* seg_retire - segments wholly before segno (and not cur) are done. */
static void seg_retire(struct queue *q, uint64_t segno)
{
    while (q->segs && q->segs != q->cur && q->segs->segno < segno) {
        struct qseg *s = q->segs;
        q->segs = s->next;
        if (q->p.flush) {
            qflush_seg_retire(q->p.flush, q->p.worker, s->segno, s->fd);
        } else {
            char name[JRN_NAME_MAX];
            jrn_seg_name(name, q->p.worker, s->segno);
            close(s->fd);
            unlinkat(q->p.journal_dirfd, name, 0);
        }
        QST(q, retired, 1);
        free(s);
    }
}

/* ---- batches and records ------------------------------------------------------ */

/* batch_new - an empty batch for cur at the append position. */
static struct qbatch *batch_new(struct queue *q)
{
    struct qbatch *b = q->nspare ? q->spare[--q->nspare] : calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    uint8_t *buf = b->buf;
    size_t cap = b->cap;
    memset(b, 0, sizeof(*b));
    b->buf = buf;
    b->cap = cap;
    b->seg = q->cur;
    b->off = q->app_off;
    b->seq = ++q->seq;
    if (q->bq_tail)
        q->bq_tail->next = b;
    else
        q->bq = b;
    q->bq_tail = b;
    return b;
}

/* batch_recycle - keep a finished batch's buffer for reuse, or free it. */
static void batch_recycle(struct queue *q, struct qbatch *b)
{
    if (q->nspare < Q_SPARE_BATCHES && b->cap <= Q_KEEP_BUF) {
        q->spare[q->nspare++] = b;
        return;
    }
    free(b->buf);
    free(b);
}

/* batch_for - the gathering batch that can take need more octets in cur
 * (switching segments first when they do not fit). NULL with *err. */
static struct qbatch *batch_for(struct queue *q, size_t need, int *err)
{
    bool dirsync = false, fresh = false;
    if (JRN_HDR_LEN + need > q->p.segment_size) {
        *err = -EFBIG;
        return NULL;
    }
    if (!q->cur || q->broken || q->app_off + need > q->p.segment_size) {
        if ((*err = seg_next(q, &dirsync)) < 0)
            return NULL;
        fresh = true;
    }
    struct qbatch *b = q->bq_tail;
    if (fresh || !b || b->seg != q->cur || (q->busy && b == q->bq))
        b = batch_new(q);
    if (!b) {
        *err = -ENOMEM;
        return NULL;
    }
    b->dirsync |= dirsync;
    if (fresh) { /* every segment starts with its JRN_SEG record */
        uint8_t hdr[JRN_HDR_LEN];
        jrn_encode(hdr, JRN_SEG, 0, q->p.worker, q->cur->segno, NULL, NULL, 0);
        size_t cap = b->cap < 4096 ? 4096 : b->cap;
        uint8_t *nb = cap != b->cap ? realloc(b->buf, cap) : b->buf;
        if (!nb) {
            *err = -ENOMEM;
            return NULL;
        }
        b->buf = nb;
        b->cap = cap;
        memcpy(b->buf + b->len, hdr, JRN_HDR_LEN);
        b->len += JRN_HDR_LEN;
        q->bytes += JRN_HDR_LEN;
        q->app_off += JRN_HDR_LEN;
    }
    return b;
}

/* rec_put - append one record to the gathering batch; *payload_off gets
 * the segment offset of its payload. 0 or -errno. */
static int rec_put(struct queue *q, enum jrn_type type, unsigned flags, const char *qid,
                   const struct iovec *iov, int niov, uint64_t *payload_off, struct qbatch **out)
{
    size_t plen = 0;
    for (int i = 0; i < niov; i++)
        plen += iov[i].iov_len;
    int err = 0;
    struct qbatch *b = batch_for(q, JRN_HDR_LEN + plen + JRN_HDR_LEN, &err);
    if (!b)
        return err;
    size_t need = b->len + JRN_HDR_LEN + plen;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < need)
            cap *= 2;
        uint8_t *nb = realloc(b->buf, cap);
        if (!nb)
            return -ENOMEM;
        b->buf = nb;
        b->cap = cap;
    }
    uint8_t *p = b->buf + b->len;
    jrn_encode(p, type, flags, q->p.worker, q->cur->segno, qid, iov, niov);
    p += JRN_HDR_LEN;
    for (int i = 0; i < niov; i++) {
        memcpy(p, iov[i].iov_base, iov[i].iov_len);
        p += iov[i].iov_len;
    }
    if (payload_off)
        *payload_off = q->app_off + JRN_HDR_LEN;
    b->len += JRN_HDR_LEN + plen;
    q->bytes += JRN_HDR_LEN + plen;
    q->app_off += JRN_HDR_LEN + plen;
    if (out)
        *out = b;
    return 0;
}

/* ---- transactions --------------------------------------------------------------- */

struct queue_txn *queue_txn_begin(struct queue *q)
{
    struct queue_txn *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->q = q;
    clock_gettime(CLOCK_REALTIME, &t->when);
    spool_make_id(t->m.qid, &t->when, q->p.worker, q->qseq++);
    if (q->cur) { /* conservative: its first record lies at or after this */
        t->first_segno = q->cur->segno;
        t->first_off = q->app_off;
    }
    live_add(q, t);
    return t;
}

const char *queue_txn_id(const struct queue_txn *t)
{
    return t->m.qid;
}
const struct timespec *queue_txn_time(const struct queue_txn *t)
{
    return &t->when;
}
uint64_t queue_txn_size(const struct queue_txn *t)
{
    return t->size;
}

/* txn_extent - remember where a chunk payload went. */
static int txn_extent(struct queue_txn *t, int fd, uint64_t off, uint32_t len)
{
    if (t->next_n == t->ecap) {
        size_t cap = t->ecap ? t->ecap * 2 : 4;
        struct qflush_ext *n = realloc(t->ext, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        t->ext = n;
        t->ecap = cap;
    }
    t->ext[t->next_n++] = (struct qflush_ext){.fd = fd, .len = len, .off = off};
    return 0;
}

/* txn_fail - t's chunks may be lost: its commit will fail. */
static void txn_fail(struct queue_txn *t, int err)
{
    if (!t->failed)
        t->failed = err;
}

int queue_txn_append(struct queue_txn *t, const void *data, size_t len)
{
    struct queue *q = t->q;
    if (t->failed)
        return -t->failed;
    size_t nrec = (len + JRN_CHUNK_MAX - 1) / JRN_CHUNK_MAX;
    /* back-pressure: the pending buffer is full, or the materializer lags
     * so far that the journal would grow without bound */
    if ((q->bytes && q->bytes + len + nrec * JRN_HDR_LEN > Q_BUF_MAX) || q->mat_bytes > Q_MAT_MAX) {
        q->space_wanted = true;
        return -EAGAIN;
    }
    const uint8_t *p = data;
    while (len) {
        size_t n = len < JRN_CHUNK_MAX ? len : JRN_CHUNK_MAX;
        struct iovec iov = {(void *)p, n};
        uint64_t off;
        struct qbatch *b;
        int r = rec_put(q, JRN_CHUNK, 0, t->m.qid, &iov, 1, &off, &b);
        if (r == 0)
            r = txn_extent(t, q->cur->fd, off, (uint32_t)n);
        if (r < 0) {
            txn_fail(t, -r);
            return r;
        }
        t->last_seq = b->seq;
        t->crc = crc32c(t->crc, p, n);
        t->size += n;
        p += n;
        len -= n;
    }
    return 0;
}

/* queue_txn_set_skip - see queue.h. */
void queue_txn_set_skip(struct queue_txn *t, uint64_t skip)
{
    t->skip = skip <= t->size ? skip : t->size;
}

/* txn_skip_extents - the materializer's extents without the octets the
 * queue file leaves out (t->skip). */
static void txn_skip_extents(struct queue_txn *t)
{
    uint64_t skip = t->skip;
    size_t drop = 0;
    if (!skip || !t->next_n)
        return; /* nothing to leave out (an empty message has no extents) */
    while (skip && drop < t->next_n && t->ext[drop].len <= skip)
        skip -= t->ext[drop++].len;
    memmove(t->ext, t->ext + drop, (t->next_n - drop) * sizeof *t->ext);
    t->next_n -= drop;
    if (skip && t->next_n) {
        t->ext[0].off += skip;
        t->ext[0].len -= (uint32_t)skip;
    }
}

int queue_txn_commit(struct queue_txn *t, const void *head, size_t head_len, bool quarantine,
                     queue_commit_fn cb, void *arg)
{
    struct queue *q = t->q;
    int err = t->failed;
    if (!err && !(t->head = malloc(head_len ? head_len : 1)))
        err = ENOMEM;
    if (!err) {
        memcpy(t->head, head, head_len);
        uint8_t fixed[JRN_COMMIT_FIXED], skip[8];
        jrn_commit_fixed(fixed, t->size, t->crc, (uint32_t)head_len);
        for (int i = 0; i < 8; i++)
            skip[i] = (uint8_t)(t->skip >> (8 * i));
        struct iovec iov[3] = {{fixed, sizeof fixed}, {(void *)head, head_len}, {skip, 8}};
        unsigned flags = (quarantine ? JRN_F_QUARANTINE : 0) | (t->skip ? JRN_F_SKIP : 0);
        struct qbatch *b = NULL;
        err = -rec_put(q, JRN_COMMIT, flags, t->m.qid, iov, t->skip ? 3 : 2, NULL, &b);
        if (!err) {
            b->sync = true;
            b->ncommits++;
            if (b->commits_tail)
                b->commits_tail->bnext = t;
            else
                b->commits = t;
            b->commits_tail = t;
            t->bnext = NULL;
        }
    }
    if (err) {
        txn_free(q, t);
        return -err;
    }
    t->state = T_COMMITTING;
    t->cb = cb;
    t->cb_arg = arg;
    t->m.head = t->head;
    t->m.head_len = head_len;
    txn_skip_extents(t);
    t->m.ext = t->ext;
    t->m.next_count = t->next_n;
    t->m.body_len = t->size - t->skip;
    t->m.quarantine = quarantine;
    t->m.inbox = q->inbox;
    return 0;
}

void queue_txn_abort(struct queue_txn *t)
{
    if (t)
        txn_free(t->q, t);
}

void queue_txn_written(struct queue_txn *t, queue_written_fn cb, void *arg)
{
    struct queue *q = t->q;
    if (t->failed || t->last_seq <= q->done_seq) {
        cb(arg, t->failed);
        return;
    }
    t->wcb = cb;
    t->w_arg = arg;
    t->bnext = q->waiters;
    q->waiters = t;
}

ssize_t queue_txn_read(struct queue_txn *t, uint64_t off, void *buf, size_t cap)
{
    if (off >= t->size || cap == 0)
        return 0;
    if (off < t->rd_off) {
        t->rd_idx = 0;
        t->rd_off = 0;
    }
    while (t->rd_idx < t->next_n && off >= t->rd_off + t->ext[t->rd_idx].len)
        t->rd_off += t->ext[t->rd_idx++].len;
    if (t->rd_idx == t->next_n)
        return 0;
    const struct qflush_ext *e = &t->ext[t->rd_idx];
    uint64_t in = off - t->rd_off;
    size_t n = e->len - in < cap ? (size_t)(e->len - in) : cap;
    ssize_t r = pread(e->fd, buf, n, (off_t)(e->off + in));
    return r < 0 ? -errno : r;
}

/* ---- writing ------------------------------------------------------------------------ */

/* q_prep - one SQE of the chain for op k. */
static struct io_uring_sqe *q_prep(struct queue *q, int k)
{
    struct io_uring_sqe *sqe = uring_get_sqe(q->ring);
    q->ops[k].res = 0;
    io_uring_sqe_set_data64(sqe, uring_cb_data(&q->ops[k].cb));
    q->expect++;
    return sqe;
}

/* q_submit - start the chain for the batch at the head: [fsync(folder) ->]
 * write [-> fdatasync]. The sync is always a separate whole-file
 * fdatasync, never RWF_DSYNC on the write: RWF_DSYNC syncs only the range
 * the kernel wrote in the call that completed, and io_uring may finish a
 * buffered write in two calls (a short non-blocking attempt, then the rest
 * in io-wq), so the first part could be left unsynced; the power-cut test
 * lost acknowledged commits that way (a torn tail ending on a page
 * boundary) while this path used it. */
static void q_submit(struct queue *q)
{
    struct qbatch *b = q->bq;
    struct io_uring_sqe *sqe[QOP_N] = {NULL};
    if (io_uring_sq_space_left(q->ring) < QOP_N)
        io_uring_submit(q->ring); /* the chain must go in one submission */
    q->busy = true;
    q->expect = 0;
    if (b->dirsync) {
        sqe[QOP_DIR] = q_prep(q, QOP_DIR);
        io_uring_prep_fsync(sqe[QOP_DIR], q->p.journal_dirfd, 0);
    }
    if (b->len) {
        sqe[QOP_WRITE] = q_prep(q, QOP_WRITE);
        io_uring_prep_write(sqe[QOP_WRITE], b->seg->fd, b->buf, (unsigned)b->len, b->off);
        QST(q, writes, 1);
        QST(q, bytes, b->len);
    }
    if (b->sync) {
        sqe[QOP_SYNC] = q_prep(q, QOP_SYNC);
        io_uring_prep_fsync(sqe[QOP_SYNC], b->seg->fd, IORING_FSYNC_DATASYNC);
    }
    if (b->sync) {
        QST(q, syncs, 1);
        unsigned k = 0;
        while (k < 7 && (1u << k) <= b->ncommits)
            k++;
        QST(q, hist[k], 1);
        QST(q, sync_commits, b->ncommits);
        q->submit_us = mhist_now_us();
    }
    struct io_uring_sqe *last = NULL;
    for (int k = 0; k < QOP_N; k++)
        if (sqe[k]) {
            if (last)
                last->flags |= IOSQE_IO_LINK;
            last = sqe[k];
        }
}

/* q_batch_err - errno of the finished chain, 0 when all of it worked. A
 * short write (disk full) counts as ENOSPC. */
static int q_batch_err(const struct queue *q, const struct qbatch *b)
{
    if (b->dirsync && q->ops[QOP_DIR].res < 0)
        return -q->ops[QOP_DIR].res;
    if (b->len && q->ops[QOP_WRITE].res < 0)
        return -q->ops[QOP_WRITE].res;
    if (b->len && (size_t)q->ops[QOP_WRITE].res != b->len)
        return ENOSPC;
    if (b->sync && q->ops[QOP_SYNC].res < 0)
        return q->ops[QOP_SYNC].res == -ECANCELED ? EIO : -q->ops[QOP_SYNC].res;
    return 0;
}

/* q_wake_waiters - queue_txn_written callbacks now due (err: all of them). */
static void q_wake_waiters(struct queue *q, int err)
{
    struct queue_txn *due = NULL, **pp = &q->waiters;
    while (*pp) {
        struct queue_txn *t = *pp;
        if (err || t->failed || t->last_seq <= q->done_seq) {
            *pp = t->bnext;
            t->bnext = due;
            due = t;
        } else {
            pp = &t->bnext;
        }
    }
    while (due) {
        struct queue_txn *t = due;
        due = t->bnext;
        t->bnext = NULL;
        queue_written_fn cb = t->wcb;
        t->wcb = NULL;
        cb(t->w_arg, err ? err : t->failed);
    }
}

/* q_settle - b is durable (or at least written): hand its commits to the
 * materializer, then tell their sessions; honour its checkpoint. */
static void q_settle(struct queue *q, struct qbatch *b)
{
    q->done_seq = b->seq;
    if (b->ckpt)
        seg_retire(q, b->ckpt_segno);
    struct queue_txn *first = b->commits;
    for (struct queue_txn *t = first; t; t = t->bnext) {
        t->state = T_DURABLE;
        if (q->p.flush)
            q->mat_bytes += t->m.body_len + t->m.head_len;
        t->m.next = t->bnext ? &t->bnext->m : NULL;
    }
    if (first && q->p.flush)
        qflush_submit(q->p.flush, &first->m, &b->commits_tail->m);
    struct queue_txn *t = first, *next;
    for (; t; t = next) {
        next = t->bnext;
        char qid[SPOOL_ID_LEN + 1];
        memcpy(qid, t->m.qid, sizeof qid);
        queue_commit_fn cb = t->cb;
        void *arg = t->cb_arg;
        if (!q->p.flush)
            txn_free(q, t); /* nobody materializes: durable in the journal only */
        QST(q, commits, 1);
        cb(arg, 0, qid);
    }
    q_wake_waiters(q, 0);
}

/* q_fail - b failed with err: fail its commits and those of every batch
 * still gathering, fail every open transaction, abandon the segment. */
static void q_fail(struct queue *q, struct qbatch *b, int err)
{
    static _Thread_local uint64_t reported;
    if (reported++ % 1000 == 0)
        fprintf(stderr, "mxringd: worker %u: journal write: %s\n", q->p.worker, strerror(err));
    b->next = q->bq;
    q->bq = q->bq_tail = NULL;
    q->bytes = 0;
    q->broken = true;
    q->ckpt_dirty = true;
    q->done_seq = q->seq;
    for (struct queue_txn *t = q->live; t; t = t->next)
        if (t->state == T_OPEN)
            txn_fail(t, err);
    q_wake_waiters(q, err);
    while (b) {
        struct qbatch *nb = b->next;
        for (struct queue_txn *t = b->commits, *next; t; t = next) {
            next = t->bnext;
            char qid[SPOOL_ID_LEN + 1];
            memcpy(qid, t->m.qid, sizeof qid);
            queue_commit_fn cb = t->cb;
            void *arg = t->cb_arg;
            txn_free(q, t);
            QST(q, failed, 1);
            cb(arg, err, qid);
        }
        batch_recycle(q, b);
        b = nb;
    }
}

/* q_space - tell the waiting writers when there is room again. */
static void q_space(struct queue *q)
{
    if (q->space_wanted && q->bytes < Q_BUF_MAX / 2 && q->mat_bytes <= Q_MAT_MAX / 2) {
        q->space_wanted = false;
        q->p.on_space(q->p.arg);
    }
}

/* q_done - the chain of the batch in flight completed. */
static void q_done(struct queue *q)
{
    struct qbatch *b = q->bq;
    q->bq = b->next;
    if (!q->bq)
        q->bq_tail = NULL;
    b->next = NULL;
    q->busy = false;
    q->bytes -= b->len;
    if (b->sync)
        mhist_observe(&q->st.sync_lat, mhist_now_us() - q->submit_us);
    int err = q_batch_err(q, b);
    if (err) {
        q_fail(q, b, err);
    } else {
        q_settle(q, b);
        batch_recycle(q, b);
    }
    q_space(q);
}

/* q_op_done - one CQE of the chain. */
static void q_op_done(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    struct qop *op = (struct qop *)cb;
    struct queue *q = op->q;
    op->res = cqe->res;
    if (--q->expect == 0)
        q_done(q);
}

/* q_checkpoint - append a checkpoint with the current low-water mark. */
static void q_checkpoint(struct queue *q, uint64_t now_ms)
{
    uint64_t segno = q->live ? q->live->first_segno : q->cur->segno;
    uint64_t off = q->live ? q->live->first_off : q->app_off;
    if (q->live && segno == 0) /* began before the first segment */
        return;
    uint8_t pl[16];
    put64(pl, segno);
    put64(pl + 8, off);
    struct iovec iov = {pl, sizeof pl};
    struct qbatch *b = NULL;
    if (rec_put(q, JRN_CHECKPOINT, 0, NULL, &iov, 1, NULL, &b) < 0)
        return; /* retried at a later turn */
    b->sync = true;
    b->ckpt = true;
    b->ckpt_segno = segno;
    q->ckpt_dirty = false;
    q->ckpt_ms = now_ms;
    QST(q, checkpoints, 1);
}

void queue_kick(struct queue *q, uint64_t now_ms)
{
    const struct qbatch *t = q->bq_tail;
    bool ride = t && t->sync && t->seg == q->cur && !(q->busy && t == q->bq);
    if (q->ckpt_dirty && q->cur && !q->broken &&
        now_ms >= q->ckpt_ms + (ride ? Q_CKPT_RIDE_MS : Q_CKPT_MS))
        q_checkpoint(q, now_ms); /* riding along costs no fdatasync of its own */
    if (q->busy || !q->bq)
        return;
    struct qbatch *b = q->bq;
    if (!b->len && !b->sync) {
        q->bq = b->next;
        if (!q->bq)
            q->bq_tail = NULL;
        batch_recycle(q, b);
        return;
    }
    q_submit(q);
}

/* q_reported - the materializer made m durable in new/. */
static void q_reported(void *arg, struct qflush_msg *m)
{
    struct queue *q = arg;
    q->mat_bytes -= m->body_len + m->head_len;
    txn_free(q, (struct queue_txn *)m);
}

void queue_reap(struct queue *q)
{
    if (q->inbox && qflush_inbox_drain(q->inbox, q_reported, q))
        q_space(q);
}

bool queue_idle(const struct queue *q)
{
    return !q->busy && !q->bq;
}

void queue_get_stats(const struct queue *q, struct queue_stats *out)
{
    const uint64_t *in = (const uint64_t *)&q->st;
    uint64_t *o = (uint64_t *)out;
    for (size_t k = 0; k < sizeof(*out) / sizeof(uint64_t); k++)
        o[k] = __atomic_load_n(&in[k], __ATOMIC_RELAXED); /* pairs with QST */
}

/* ---- life cycle ------------------------------------------------------------------------ */

struct queue *queue_new(struct io_uring *ring, const struct queue_params *p, char *err,
                        size_t errlen)
{
    struct queue *q = aligned_alloc(16, (sizeof(*q) + 15) / 16 * 16);
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memset(q, 0, sizeof(*q));
    q->ring = ring;
    q->p = *p;
    for (int k = 0; k < QOP_N; k++) {
        q->ops[k].cb.fn = q_op_done;
        q->ops[k].q = q;
    }
    if (p->flush && !(q->inbox = inbox_new(p->efd))) {
        snprintf(err, errlen, "out of memory");
        free(q);
        return NULL;
    }
    if (p->flush)
        qflush_seg_want(p->flush, p->worker, qflush_next_segno(p->flush));
    return q;
}

/* q_final_checkpoint - at exit with nothing live: one checkpoint at the
 * end, written and synced directly, so a restart replays nothing. */
static void q_final_checkpoint(struct queue *q)
{
    if (!q->cur || q->broken || q->live || q->busy || q->bq)
        return;
    if (q->app_off + 2 * JRN_HDR_LEN + 16 > q->p.segment_size)
        return;
    uint8_t rec[JRN_HDR_LEN + 16];
    put64(rec + JRN_HDR_LEN, q->cur->segno);
    put64(rec + JRN_HDR_LEN + 8, q->app_off);
    struct iovec iov = {rec + JRN_HDR_LEN, 16};
    jrn_encode(rec, JRN_CHECKPOINT, 0, q->p.worker, q->cur->segno, NULL, &iov, 1);
    if (pwrite(q->cur->fd, rec, sizeof rec, (off_t)q->app_off) != (ssize_t)sizeof rec ||
        fdatasync(q->cur->fd) < 0)
        return;
    /* durable: every older segment is done (the materializer has stopped,
     * so delete them here) */
    while (q->segs != q->cur) {
        struct qseg *s = q->segs;
        char name[JRN_NAME_MAX];
        jrn_seg_name(name, q->p.worker, s->segno);
        close(s->fd);
        unlinkat(q->p.journal_dirfd, name, 0);
        q->segs = s->next;
        free(s);
    }
}

void queue_free(struct queue *q)
{
    if (!q)
        return;
    queue_reap(q);
    q_final_checkpoint(q);
    while (q->live)
        txn_free(q, q->live);
    for (struct qbatch *b = q->bq, *n; b; b = n) {
        n = b->next;
        free(b->buf);
        free(b);
    }
    for (unsigned i = 0; i < q->nspare; i++) {
        free(q->spare[i]->buf);
        free(q->spare[i]);
    }
    for (struct qseg *s = q->segs, *n; s; s = n) {
        n = s->next;
        close(s->fd);
        free(s);
    }
    inbox_free(q->inbox);
    free(q);
}
