/* test_queue.c - the journal writer (net/queue.c) with its completion loop
 * faked: the test takes the SQEs the writer prepared off the ring before
 * the kernel sees them, performs them itself (pwrite, fdatasync, fsync) or
 * injects a failure, and hands the completions back in order through the
 * writer's uring_cb callbacks. That shows exactly when a commit callback
 * (the 250) fires relative to the fdatasync covering it. Runs in a
 * temporary folder; single-threaded; no materializer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "journal.h"
#include "journal_file.h"
#include "journal_recover.h"
#include "queue.h"
#include "uring.h"

#define MAX_EVENTS 256
#define SEG_SIZE (1024 * 1024)

/* What happened, in order: 'W' write done, 'S' fdatasync done (its own
 * operation, or the sync of a write with RWF_DSYNC, logged right after its
 * 'W'), 'D' folder fsync done, 'C' a commit callback with err 0, 'F' one
 * with an error. */
enum fail_at { FAIL_NONE = 0, FAIL_WRITE, FAIL_DATASYNC, FAIL_DIRSYNC };

struct fixture {
    char dir[64];
    int dirfd;
    struct io_uring ring;
    struct queue *q;
    char log[MAX_EVENTS];
    unsigned nlog;
    int fail_op;     /* enum fail_at: which operation fails once */
    int fail_res;    /* its result (-EIO, or >= 0 for a short write) */
    unsigned spaces; /* on_space calls */
    unsigned commits_ok, commits_failed;
    unsigned dsync_writes; /* writes that carried RWF_DSYNC */
    char last_qid[32];
};

static void on_space(void *arg)
{
    struct fixture *f = arg;
    f->spaces++;
}

static void event(struct fixture *f, char e)
{
    if (f->nlog < MAX_EVENTS - 1)
        f->log[f->nlog++] = e;
    f->log[f->nlog] = 0;
}

/* commit_cb - queue_commit_fn: log it. */
static void commit_cb(void *arg, int err, const char *qid)
{
    struct fixture *f = arg;
    event(f, err ? 'F' : 'C');
    if (err)
        f->commits_failed++;
    else
        f->commits_ok++;
    snprintf(f->last_qid, sizeof(f->last_qid), "%s", qid);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/mxring-queue-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY);
    assert_true(f->dirfd >= 0);
    assert_int_equal(io_uring_queue_init(512, &f->ring, 0), 0);
    struct queue_params p = {.worker = 3,
                             .journal_dirfd = f->dirfd,
                             .segment_size = SEG_SIZE,
                             .flush = NULL,
                             .efd = -1,
                             .on_space = on_space,
                             .arg = f};
    char err[128];
    f->q = queue_new(&f->ring, &p, err, sizeof(err));
    assert_non_null(f->q);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    queue_free(f->q);
    io_uring_queue_exit(&f->ring);
    DIR *d = opendir(f->dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            unlinkat(f->dirfd, e->d_name, 0);
    closedir(d);
    close(f->dirfd);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* perform - do what sqe asks, for real (or the injected failure). */
static int perform(struct fixture *f, const struct io_uring_sqe *sqe)
{
    bool datasync = sqe->opcode == IORING_OP_FSYNC && (sqe->fsync_flags & IORING_FSYNC_DATASYNC);
    enum fail_at at = sqe->opcode == IORING_OP_WRITE ? FAIL_WRITE
                      : datasync                     ? FAIL_DATASYNC
                                                     : FAIL_DIRSYNC;
    bool dsync = sqe->opcode == IORING_OP_WRITE && (sqe->rw_flags & RWF_DSYNC);
    if (dsync && f->fail_op == FAIL_DATASYNC) { /* written, then the sync fails */
        f->fail_op = 0;
        if (pwrite(sqe->fd, (void *)(uintptr_t)sqe->addr, sqe->len, (off_t)sqe->off) < 0)
            return -errno;
        return f->fail_res;
    }
    if (f->fail_op && at == (enum fail_at)f->fail_op) {
        f->fail_op = 0;
        if (f->fail_res >= 0 && at == FAIL_WRITE) /* short write */
            return (int)pwrite(sqe->fd, (void *)(uintptr_t)sqe->addr, (size_t)f->fail_res,
                               (off_t)sqe->off);
        return f->fail_res;
    }
    switch (sqe->opcode) {
    case IORING_OP_WRITE: {
        ssize_t r = pwrite(sqe->fd, (void *)(uintptr_t)sqe->addr, sqe->len, (off_t)sqe->off);
        if (r >= 0 && dsync && fdatasync(sqe->fd) < 0)
            return -errno;
        return r < 0 ? -errno : (int)r;
    }
    case IORING_OP_FSYNC:
        if (sqe->fsync_flags & IORING_FSYNC_DATASYNC)
            return fdatasync(sqe->fd) < 0 ? -errno : 0;
        return fsync(sqe->fd) < 0 ? -errno : 0;
    default: fail_msg("unexpected opcode %u", sqe->opcode); return -EINVAL;
    }
}

/* fake_turn - take every SQE prepared so far off the ring (the kernel never
 * sees them), perform them in order honouring IOSQE_IO_LINK (a failed or
 * short link cancels the rest of its chain), and deliver each completion
 * to its uring_cb. Returns the number of operations. */
static unsigned fake_turn(struct fixture *f)
{
    struct io_uring_sq *sq = &f->ring.sq;
    unsigned head = *sq->khead, n = sq->sqe_tail - head;
    struct io_uring_sqe sqes[16];
    assert_true(n <= 16);
    for (unsigned i = 0; i < n; i++)
        sqes[i] = sq->sqes[(head + i) & sq->ring_mask];
    sq->sqe_tail = head; /* un-get them: nothing was flushed to the kernel */
    bool broken = false;
    for (unsigned i = 0; i < n; i++) {
        int res = broken ? -ECANCELED : perform(f, &sqes[i]);
        bool linked = sqes[i].flags & IOSQE_IO_LINK;
        if (!broken && linked &&
            (res < 0 || (sqes[i].opcode == IORING_OP_WRITE && (unsigned)res != sqes[i].len)))
            broken = true;
        if (!linked)
            broken = false;
        bool dsync = sqes[i].opcode == IORING_OP_WRITE && (sqes[i].rw_flags & RWF_DSYNC);
        f->dsync_writes += dsync;
        if (sqes[i].opcode == IORING_OP_WRITE) {
            event(f, 'W');
            if (dsync && res != -ECANCELED)
                event(f, 'S'); /* the write's own sync ran (and perhaps failed) */
        } else if (sqes[i].fsync_flags & IORING_FSYNC_DATASYNC)
            event(f, 'S');
        else
            event(f, 'D');
        struct io_uring_cqe cqe = {.user_data = sqes[i].user_data, .res = res};
        struct uring_cb *cb = (struct uring_cb *)(uintptr_t)(sqes[i].user_data & ~0xFull);
        assert_int_equal(sqes[i].user_data & 0xF, URING_TAG_CALLBACK);
        cb->fn(cb, &cqe);
    }
    return n;
}

/* message - begin, append body, commit; returns the transaction's id. */
static const char *message(struct fixture *f, const char *body)
{
    struct queue_txn *t = queue_txn_begin(f->q);
    assert_non_null(t);
    static char id[4][32];
    static unsigned k;
    char *qid = id[k++ % 4];
    snprintf(qid, 32, "%s", queue_txn_id(t));
    assert_int_equal(queue_txn_append(t, body, strlen(body)), 0);
    char head[64];
    int hl = snprintf(head, sizeof(head), "MXRING-QUEUE 1\nid %s\n\n", qid);
    assert_int_equal(queue_txn_commit(t, head, (size_t)hl, false, commit_cb, f), 0);
    return qid;
}

/* A group of commits from one loop turn: one write, one fdatasync, and
 * every callback only after the fdatasync's completion. */
static void test_queue_commit_waits_for_fdatasync(void **state)
{
    struct fixture *f = *state;
    message(f, "one\r\n");
    message(f, "two\r\n");
    message(f, "three\r\n");
    assert_int_equal(f->nlog, 0); /* nothing before the loop turn ends */
    queue_kick(f->q, 0);
    assert_int_equal(f->nlog, 0); /* submitted, not complete: no 250 */
    /* the first segment's name is new: folder fsync, write, then a
     * whole-file fdatasync (never RWF_DSYNC) */
    assert_int_equal(fake_turn(f), 3);
    assert_int_equal(f->dsync_writes, 0);
    assert_string_equal(f->log, "DWSCCC");
    struct queue_stats st;
    queue_get_stats(f->q, &st);
    assert_int_equal(st.writes, 1);
    assert_int_equal(st.syncs, 1);
    assert_int_equal(st.hist[2], 1);                /* one batch of 2-3 commits */
    assert_int_equal(st.sync_commits, 3);           /* the batch-size histogram's sum */
    assert_int_equal(mhist_count(&st.sync_lat), 1); /* one fdatasync timed */
}

/* Commits made while a batch is in flight wait for the next one. */
static void test_queue_commit_while_in_flight_waits(void **state)
{
    struct fixture *f = *state;
    message(f, "a\r\n");
    queue_kick(f->q, 0);
    message(f, "b\r\n"); /* gathers meanwhile */
    queue_kick(f->q, 0); /* busy: nothing new is submitted */
    assert_int_equal(fake_turn(f), 3);
    assert_string_equal(f->log, "DWSC");
    queue_kick(f->q, 0);
    assert_int_equal(fake_turn(f), 2); /* same segment: no folder fsync */
    assert_string_equal(f->log, "DWSCWSC");
}

/* A failed fdatasync fails every commit of its batch and of the batch
 * gathering behind it; the writer moves to a new segment and works again. */
static void test_queue_failed_fdatasync_fails_whole_batch(void **state)
{
    struct fixture *f = *state;
    message(f, "x\r\n");
    message(f, "y\r\n");
    queue_kick(f->q, 0);
    message(f, "z\r\n"); /* behind the failing batch */
    f->fail_op = FAIL_DATASYNC;
    f->fail_res = -EIO;
    fake_turn(f); /* folder fsync and write fine, the fdatasync fails */
    assert_string_equal(f->log, "DWSFFF");
    assert_int_equal(f->commits_ok, 0);
    assert_int_equal(f->commits_failed, 3);
    assert_true(queue_idle(f->q));
    message(f, "after\r\n");
    queue_kick(f->q, 0);
    f->nlog = 0;
    assert_int_equal(fake_turn(f), 3); /* a fresh segment: D W S */
    assert_string_equal(f->log, "DWSC");
    struct queue_stats st;
    queue_get_stats(f->q, &st);
    assert_int_equal(st.segments, 2);
}

/* A short write (disk full) is a failure too, and so is a failed
 * fdatasync after a good write. */
static void test_queue_short_write_fails_batch(void **state)
{
    struct fixture *f = *state;
    message(f, "warm up\r\n");
    queue_kick(f->q, 0);
    fake_turn(f);
    f->nlog = 0;
    message(f, "p\r\n");
    message(f, "q\r\n");
    queue_kick(f->q, 0);
    f->fail_op = FAIL_WRITE;
    f->fail_res = 10; /* 10 octets written, then the disk is full */
    fake_turn(f);
    assert_string_equal(f->log, "WSFF");
    f->nlog = 0;
    message(f, "r\r\n");
    queue_kick(f->q, 0);
    f->fail_op = FAIL_DIRSYNC;
    f->fail_res = -ENOSPC;
    fake_turn(f); /* the new segment's folder fsync fails: the chain is cancelled */
    assert_string_equal(f->log, "DWSF");
    assert_int_equal(f->commits_ok, 1);
}

/* After a chunk-only write (no sync), the commit batch is write ->
 * fdatasync, whose whole-file sync covers the earlier chunks; no write
 * ever carries RWF_DSYNC (its sync covers only what its last call wrote). */
static void test_queue_commit_after_unsynced_chunks_syncs_file(void **state)
{
    struct fixture *f = *state;
    struct queue_txn *t = queue_txn_begin(f->q);
    char body[3000];
    memset(body, 'b', sizeof body);
    assert_int_equal(queue_txn_append(t, body, sizeof body), 0);
    queue_kick(f->q, 0);
    assert_int_equal(fake_turn(f), 2); /* D, W: chunks only, nothing synced */
    assert_int_equal(f->dsync_writes, 0);
    assert_string_equal(f->log, "DW");
    assert_int_equal(queue_txn_commit(t, "head\n", 5, false, commit_cb, f), 0);
    queue_kick(f->q, 0);
    assert_int_equal(fake_turn(f), 2); /* W -> fdatasync (two operations) */
    assert_int_equal(f->dsync_writes, 0);
    assert_string_equal(f->log, "DWWSC");
    message(f, "next\r\n");
    queue_kick(f->q, 0);
    assert_int_equal(fake_turn(f), 2);
    assert_int_equal(f->dsync_writes, 0);
    assert_string_equal(f->log, "DWWSCWSC");
}

/* An open transaction whose chunks were in a failed batch cannot commit. */
static void test_queue_open_txn_fails_after_lost_chunks(void **state)
{
    struct fixture *f = *state;
    struct queue_txn *t = queue_txn_begin(f->q);
    assert_int_equal(queue_txn_append(t, "chunk\r\n", 7), 0);
    queue_kick(f->q, 0);
    f->fail_op = FAIL_WRITE;
    f->fail_res = -EIO;
    fake_turn(f);
    assert_int_equal(queue_txn_append(t, "more\r\n", 6), -EIO);
    assert_int_equal(queue_txn_commit(t, "h\n\n", 3, false, commit_cb, f), -EIO);
    assert_int_equal(f->commits_ok + f->commits_failed, 0); /* no callback */
}

/* What the writer wrote recovers: the planner finds exactly the committed
 * messages, with their bodies, across chunk splits; an aborted one is not
 * there. */
static void test_queue_journal_recovers(void **state)
{
    struct fixture *f = *state;
    char *big = malloc(150000 + 1);
    for (int i = 0; i < 150000; i++)
        big[i] = (char)('a' + i % 26);
    big[150000] = 0;
    struct queue_txn *gone = queue_txn_begin(f->q);
    assert_int_equal(queue_txn_append(gone, "never\r\n", 7), 0);
    const char *q1 = message(f, big);
    queue_txn_abort(gone);
    const char *q2 = message(f, "small\r\n");
    queue_kick(f->q, 0);
    fake_turn(f);
    assert_int_equal(f->commits_ok, 2);
    char name[JRN_NAME_MAX];
    jrn_seg_name(name, 3, 1);
    int fd = openat(f->dirfd, name, O_RDONLY);
    assert_true(fd >= 0);
    uint8_t *m = mmap(NULL, SEG_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    struct jrn_recovery *r = jrn_recovery_new(3);
    assert_int_equal(jrn_recovery_segment(r, 1, m, SEG_SIZE), 0);
    const struct jrn_msg *msgs;
    size_t n;
    struct jrn_stats st;
    assert_int_equal(jrn_recovery_finish(r, &msgs, &n, &st), 0);
    assert_int_equal(n, 2);
    assert_int_equal(st.ntorn, 0);
    assert_int_equal(st.uncommitted, 1);
    assert_string_equal(msgs[0].qid, q1);
    assert_string_equal(msgs[1].qid, q2);
    assert_int_equal(msgs[0].body_len, 150000);
    assert_int_equal(msgs[0].next, 3); /* split at JRN_CHUNK_MAX */
    size_t off = 0;
    for (size_t i = 0; i < msgs[0].next; i++) {
        assert_memory_equal(jrn_recovery_bytes(r, &msgs[0].ext[i]), big + off, msgs[0].ext[i].len);
        off += msgs[0].ext[i].len;
    }
    jrn_recovery_free(r);
    munmap(m, SEG_SIZE);
    close(fd);
    free(big);
}

/* Reading back for the filters: after queue_txn_written, queue_txn_read
 * returns the message from the segment, at any offset. */
static void written_cb(void *arg, int err)
{
    int *out = arg;
    *out = err + 1;
}

static void test_queue_read_back(void **state)
{
    struct fixture *f = *state;
    struct queue_txn *t = queue_txn_begin(f->q);
    char *body = malloc(100000);
    for (int i = 0; i < 100000; i++)
        body[i] = (char)(i * 7);
    assert_int_equal(queue_txn_append(t, body, 100000), 0);
    int written = 0;
    queue_txn_written(t, written_cb, &written);
    assert_int_equal(written, 0); /* not written yet */
    queue_kick(f->q, 0);
    assert_int_equal(fake_turn(f), 2); /* chunks only: folder fsync + write, no fdatasync */
    assert_int_equal(written, 1);
    char buf[70000];
    assert_int_equal(queue_txn_read(t, 0, buf, sizeof buf), JRN_CHUNK_MAX);
    assert_memory_equal(buf, body, JRN_CHUNK_MAX);
    assert_int_equal(queue_txn_read(t, 99990, buf, sizeof buf), 10);
    assert_memory_equal(buf, body + 99990, 10);
    assert_int_equal(queue_txn_read(t, 100, buf, 50), 50);
    assert_memory_equal(buf, body + 100, 50);
    assert_int_equal(queue_txn_read(t, 100000, buf, 50), 0);
    queue_txn_abort(t);
    free(body);
}

/* Back-pressure: appends beyond the pending cap get -EAGAIN and on_space
 * fires once the write completes. */
static void test_queue_back_pressure(void **state)
{
    struct fixture *f = *state;
    struct queue_txn *t = queue_txn_begin(f->q);
    static char chunk[JRN_CHUNK_MAX];
    int r = 0;
    unsigned n = 0;
    while ((r = queue_txn_append(t, chunk, sizeof chunk)) == 0)
        n++;
    assert_int_equal(r, -EAGAIN);
    assert_true(n >= 32 && n < 128); /* bounded: a few MiB */
    assert_int_equal(f->spaces, 0);
    queue_kick(f->q, 0);
    while (!queue_idle(f->q)) { /* 1 MiB segments: several batches */
        fake_turn(f);
        queue_kick(f->q, 0);
    }
    assert_int_equal(f->spaces, 1);
    assert_int_equal(queue_txn_append(t, chunk, sizeof chunk), 0);
    queue_txn_abort(t);
}

/* A sustained stream: segments fill, checkpoints follow the durable
 * commits, and retired segments are deleted, so the folder stays small. */
static void test_queue_segments_retire(void **state)
{
    struct fixture *f = *state;
    static char body[8192];
    memset(body, 'm', sizeof body - 1);
    uint64_t ms = 0;
    for (int i = 0; i < 1000; i++) { /* ~8 MB through 1 MiB segments */
        message(f, body);
        queue_kick(f->q, ms += 250);
        while (!queue_idle(f->q)) {
            fake_turn(f);
            queue_kick(f->q, ms);
        }
    }
    assert_int_equal(f->commits_ok, 1000);
    struct queue_stats st;
    queue_get_stats(f->q, &st);
    assert_true(st.segments >= 8);
    assert_true(st.checkpoints > 0);
    assert_true(st.retired >= st.segments - 2);
    unsigned files = 0;
    DIR *d = opendir(f->dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        files += e->d_name[0] != '.';
    closedir(d);
    assert_true(files <= 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_queue_commit_waits_for_fdatasync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_commit_while_in_flight_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_failed_fdatasync_fails_whole_batch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queue_short_write_fails_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_commit_after_unsynced_chunks_syncs_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queue_open_txn_fails_after_lost_chunks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queue_journal_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_back_pressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_segments_retire, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
