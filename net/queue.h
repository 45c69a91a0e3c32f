/* queue.h - the per-worker queue journal writer (format in core/journal.h).
 * A message is a transaction: its bytes are appended as JRN_CHUNK records
 * while they arrive, and a JRN_COMMIT record ends it. Records gather in a
 * pending buffer; at the end of each loop turn queue_kick() writes all of
 * them with one io_uring write, linked to one fdatasync when they include a
 * commit or a checkpoint (group commit: at most one write in flight, the
 * next batch gathers meanwhile). A commit's callback fires from the
 * completion of the fdatasync that covers it, never earlier; a failed write
 * or fdatasync fails every commit of its batch and every open transaction,
 * and the writer moves on to a new segment by itself.
 *
 * Durable commits go to the materializer (net/qflush.h), which writes
 * queue/new/<qid> and reports back; the writer then advances its low-water
 * mark, writes JRN_CHECKPOINT records (at most every 200 ms) and retires
 * segments the mark has passed.
 *
 * Everything here runs on the owning worker's thread; its operations
 * complete through struct uring_cb (net/uring.h). */
#ifndef MXRING_QUEUE_H
#define MXRING_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "mhist.h"

struct io_uring;
struct qflush;
struct queue;
struct queue_txn;

/* The commit's outcome: err 0 (durable; qid valid during the call) or an
 * errno value (not queued: answer 451). */
typedef void (*queue_commit_fn)(void *arg, int err, const char *qid);
/* All chunks appended so far are written (err 0) or lost (errno value). */
typedef void (*queue_written_fn)(void *arg, int err);
/* Buffer space is back after queue_txn_append() returned -EAGAIN. */
typedef void (*queue_space_fn)(void *arg);

struct queue_params {
    unsigned worker;       /* index: segment names, queue ids */
    int journal_dirfd;     /* <workdir>/queue/journal (borrowed) */
    uint64_t segment_size; /* octets per segment */
    struct qflush *flush;  /* materializer; NULL: durable commits are only counted */
    int efd;               /* the worker's eventfd (materializer reports) */
    queue_space_fn on_space;
    void *arg;
};

/* queue_new - a writer on ring (the worker's). NULL with err filled. */
struct queue *queue_new(struct io_uring *ring, const struct queue_params *p, char *err,
                        size_t errlen);
/* queue_free - after the materializer stopped (qflush_stop): take its last
 * reports, write a final checkpoint when nothing is left open, close the
 * segments (NULL is fine). */
void queue_free(struct queue *q);

/* queue_txn_begin - a new transaction with a fresh queue id (NULL on
 * ENOMEM). */
struct queue_txn *queue_txn_begin(struct queue *q);
/* queue_txn_id - its queue id (20 hex digits). */
const char *queue_txn_id(const struct queue_txn *t);
/* queue_txn_time - when it began (the id's time; the queue file's arrival). */
const struct timespec *queue_txn_time(const struct queue_txn *t);
/* queue_txn_size - message octets appended so far. */
uint64_t queue_txn_size(const struct queue_txn *t);

/* queue_txn_append - append data[0..len) (copied; split into records of at
 * most JRN_CHUNK_MAX). 0; -EAGAIN when the pending buffer is full (nothing
 * was appended: retry after the on_space callback); another -errno when the
 * transaction already failed (its commit will fail too). */
int queue_txn_append(struct queue_txn *t, const void *data, size_t len);
/* queue_txn_commit - append the commit record (head: the queue file's
 * prefix, copied; quarantine: the file goes to quarantine/new). 0: cb
 * fires exactly once, from a later completion; the transaction then
 * belongs to the writer. -errno: nothing queued (the transaction failed
 * earlier); it is released, cb is not called. */
int queue_txn_commit(struct queue_txn *t, const void *head, size_t head_len, bool quarantine,
                     queue_commit_fn cb, void *arg);
/* queue_txn_set_skip - before the commit: the queue file leaves out the
 * message's first skip octets (skip <= its size), the head given to the
 * commit ending with their replacement (a milter's header edits: the
 * rewritten header section). Recorded in the commit (JRN_F_SKIP), so
 * recovery writes the same file. */
void queue_txn_set_skip(struct queue_txn *t, uint64_t skip);
/* queue_txn_abort - end an uncommitted transaction (refused, RSET, client
 * gone, filter reject, ...): it is released. */
void queue_txn_abort(struct queue_txn *t);

/* queue_txn_written - call cb once every chunk appended so far is written
 * (in the page cache: queue_txn_read may read it). It may be called before
 * queue_txn_written returns. One waiter per transaction. */
void queue_txn_written(struct queue_txn *t, queue_written_fn cb, void *arg);
/* queue_txn_read - up to cap message octets from offset off, read back
 * from the segments (after queue_txn_written). Octets read (0 at the end),
 * or -errno. */
ssize_t queue_txn_read(struct queue_txn *t, uint64_t off, void *buf, size_t cap);

/* queue_kick - end of a loop turn: append a checkpoint if one is due, and
 * submit the pending records unless a write is in flight. */
void queue_kick(struct queue *q, uint64_t now_ms);
/* queue_reap - take the materializer's reports (call on an eventfd wake). */
void queue_reap(struct queue *q);
/* queue_idle - nothing written or waiting to be written. */
bool queue_idle(const struct queue *q);

/* Counters of one writer. */
struct queue_stats {
    uint64_t commits; /* commit callbacks with err 0 */
    uint64_t failed;  /* commit callbacks with an error */
    uint64_t writes;  /* batches written */
    uint64_t syncs;   /* fdatasyncs of segments */
    uint64_t bytes;   /* octets written */
    uint64_t checkpoints;
    uint64_t segments; /* segments started */
    uint64_t retired;
    uint64_t hist[8];      /* sync batches by commits: 0, 1, 2-3, 4-7, ... 64+ */
    uint64_t sync_commits; /* commits in those batches (the histogram's sum) */
    struct mhist sync_lat; /* submit -> completion of each synced chain
                                 * (folder fsync, write, fdatasync) */
};
_Static_assert(sizeof(struct queue_stats) % sizeof(uint64_t) == 0, "uint64_t fields only");
/* queue_get_stats - the writer's counters (relaxed loads: any thread may
 * call it while the writer runs, until queue_free). */
void queue_get_stats(const struct queue *q, struct queue_stats *out);

#endif
