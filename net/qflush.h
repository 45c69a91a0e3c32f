/* qflush.h - the materializer: one thread for the process that turns
 * committed journal transactions into queue/new/<qid> files (or
 * quarantine/new), off the reply path and without per-file fsyncs: it
 * writes tmp/<qid> (head bytes, then the body copied from the journal
 * segment extents), renames it into new/ with RENAME_NOREPLACE, and makes a
 * whole batch durable with one syncfs(). Then it hands each message back to
 * its worker's inbox (lock-free, plus a write to the worker's eventfd) so
 * the worker can move its journal low-water mark.
 *
 * It also prepares zero-filled journal segments ahead of need: a worker
 * asks for segment (worker, segno) and later takes the open descriptor from
 * a lock-free slot (qflush_seg_take), so its ring never waits for the
 * zero-fill.
 *
 * Threads: qflush_start/qflush_stop on the main thread; qflush_submit,
 * qflush_seg_want and qflush_seg_take from workers; an inbox is drained only
 * by its owning worker. */
#ifndef MXRING_QFLUSH_H
#define MXRING_QFLUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inbox.h"
#include "spool.h"

struct qflush;

/* One run of message octets in a journal segment. */
struct qflush_ext {
    int fd; /* the segment's descriptor (kept open by its worker) */
    uint32_t len;
    uint64_t off;
};

/* One committed message handed to the materializer. The submitter keeps
 * every field valid and unchanged until the message comes back through its
 * inbox; the materializer writes only next and err. */
struct qflush_msg {
    struct qflush_msg *next; /* input queue and work list link */
    struct inbox_node link;  /* report link (inbox.h) */
    struct inbox *inbox;     /* where the durable report goes */
    const uint8_t *head;     /* queue file prefix (envelope + trace headers) */
    size_t head_len;
    const struct qflush_ext *ext; /* the body, in order */
    size_t next_count;
    uint64_t body_len;
    bool quarantine;
    int err; /* 0: durable in new/ (set before reporting) */
    char qid[SPOOL_ID_LEN + 1];
};

/* qflush_start - start the thread for <workdir>/queue and quarantine; the
 * journal segments live in journal_dirfd (borrowed, kept open by the
 * caller), each seg_size octets. NULL with err filled on failure. */
struct qflush *qflush_start(const char *workdir, int journal_dirfd, uint64_t seg_size,
                            unsigned nworkers, char *err, size_t errlen);
/* Counters: messages materialized, syncfs batches, failed attempts
 * (retried), zero-filled segments prepared. */
struct qflush_stats {
    uint64_t files;
    uint64_t syncs;
    uint64_t errors;
    uint64_t segments;
};

/* qflush_stop - materialize everything submitted so far, make it durable,
 * report it, stop and free the thread (NULL is fine). Workers must have
 * stopped submitting. Prepared spare segments are closed and deleted. With
 * st, the thread's counters are left there (zeros for NULL). */
void qflush_stop(struct qflush *f, struct qflush_stats *st);

/* qflush_submit - hand over the chain first..last (linked by next, last's
 * next ignored). Any thread. */
void qflush_submit(struct qflush *f, struct qflush_msg *first, struct qflush_msg *last);

/* qflush_seg_want - ask for a zero-filled segment w<worker>-<segno>.jrn to
 * be prepared (created, zero-filled, fdatasynced, folder fsynced). One
 * request per worker at a time; a newer request replaces an unserved one. */
void qflush_seg_want(struct qflush *f, unsigned worker, uint64_t segno);
/* qflush_seg_take - the descriptor of worker's prepared segment (its segno
 * in *segno), or -1 when none is ready (yet). The caller owns it. */
int qflush_seg_take(struct qflush *f, unsigned worker, uint64_t *segno);
/* qflush_seg_retire - segment segno of worker is no longer needed (every
 * message in it is durable in new/ and a durable checkpoint says so): close
 * fd (may be -1), keep the file as a spare for recycling or delete it. */
void qflush_seg_retire(struct qflush *f, unsigned worker, uint64_t segno, int fd);
/* qflush_next_segno - a fresh segment number, unique in the process and
 * above every segment or spare found at start. Any thread. */
uint64_t qflush_next_segno(struct qflush *f);

/* Report inboxes: inbox_new(efd) and inbox_free (inbox.h), efd the owner's
 * eventfd, written when a report lands in an empty inbox. */
/* qflush_inbox_drain - owner only: call fn for each report, oldest first.
 * Returns how many. */
size_t qflush_inbox_drain(struct inbox *ib, void (*fn)(void *arg, struct qflush_msg *m), void *arg);

#endif
