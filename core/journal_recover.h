/* journal_recover.h - the journal recovery planner, pure (no I/O): fed one
 * worker's segment bytes in segno order, it returns the committed messages
 * whose body CRC verifies and that the latest checkpoint does not cover,
 * plus statistics and the torn tails it cut. Used by start-up recovery and
 * `mxringd --check-queue` (core/journal_file.c) and by the fuzzer. One
 * planner belongs to one thread; different planners are independent.
 *
 * Reading rules (format in journal.h):
 *  - A segment is read record by record from offset 0 and ends at the first
 *    record that does not decode. That end is clean when it is zeros, the
 *    end of the bytes, a record of another (older) segno or, in a recycled
 *    segment, any other left-over bytes; it is a torn tail when the header
 *    there is one of this segment (magic and segno match) but the record is
 *    partial or its CRC fails, or when a valid record of this segment lies
 *    further on (the damage is in the middle). Nothing after the end of a
 *    segment is used; reading goes on with the next segment.
 *  - A transaction (qid) collects its JRN_CHUNK payloads in order, across
 *    segments. Its JRN_COMMIT makes it a message when body_len and body_crc
 *    match the collected chunks (else it counts as bad_body and is dropped);
 *    JRN_ABORT drops it; a transaction still open after the last segment is
 *    uncommitted and dropped.
 *  - The latest JRN_CHECKPOINT (greatest (segno, offset) mark) wins: a
 *    message whose COMMIT record lies before the mark is already durable in
 *    new/ and is skipped (counted in skipped).
 *  - A commit with a qid that is not 20 hex digits, a malformed commit or
 *    checkpoint payload (CRC-valid but inconsistent) counts as malformed and
 *    is dropped: recovery never returns a message it cannot name safely. */
#ifndef MXRING_JOURNAL_RECOVER_H
#define MXRING_JOURNAL_RECOVER_H

#include <stddef.h>
#include <stdint.h>

#include "journal.h"

/* A position in one worker's journal: (segno, offset of a record). */
struct jrn_pos {
    uint64_t segno;
    uint64_t off;
};

/* One chunk payload: len octets at offset off of segment segno (the offset
 * of the payload itself, after the record header). 16 octets. */
struct jrn_extent {
    uint64_t segno;
    uint32_t off;
    uint32_t len;
};

/* One recovered, committed message. Pointers are into the planner (ext) or
 * into the fed segment buffers (head): valid until jrn_recovery_free. */
struct jrn_msg {
    char qid[JRN_QID_LEN + 1]; /* 20 hex digits, NUL-terminated */
    unsigned flags;            /* JRN_F_*: JRN_F_QUARANTINE -> quarantine/new */
    const uint8_t *head;       /* queue file prefix (envelope, trace headers) */
    uint32_t head_len;
    uint64_t body_len;            /* sum of the extents' len */
    uint32_t body_crc;            /* CRC32C of the body, verified */
    uint64_t body_skip;           /* JRN_F_SKIP: the body's first octets left out of the file */
    const struct jrn_extent *ext; /* the body, in order */
    size_t next;
    struct jrn_pos first;  /* the transaction's first record */
    struct jrn_pos commit; /* its COMMIT record */
};

/* A torn tail: the valid data of segment segno ends at off; cut octets
 * after it were discarded (to the end of the damaged record, or of the last
 * record of this segment found beyond the damage; trailing zeros not
 * counted). */
struct jrn_torn {
    uint64_t segno;
    uint64_t off;
    uint64_t cut;
};

struct jrn_stats {
    unsigned segments;    /* segments fed */
    uint64_t records;     /* records decoded (all types) */
    uint64_t committed;   /* messages returned by jrn_recovery_finish */
    uint64_t skipped;     /* committed and intact, but before the checkpoint */
    uint64_t uncommitted; /* transactions open at the end: dropped */
    uint64_t aborted;     /* JRN_ABORT records */
    uint64_t bad_body;    /* commits whose body length/CRC did not match */
    uint64_t malformed;   /* CRC-valid records with an inconsistent payload */
    bool has_checkpoint;
    struct jrn_pos checkpoint; /* the mark in force (when has_checkpoint) */
    uint64_t last_segno;       /* highest segno fed */
    size_t ntorn;
    const struct jrn_torn *torn; /* ntorn entries, segno order; valid until free */
};

struct jrn_recovery;

/* jrn_recovery_new - a planner for the segments of one worker (the worker
 * index is informational: records are not checked against it). NULL on
 * ENOMEM. */
struct jrn_recovery *jrn_recovery_new(unsigned worker);

/* jrn_recovery_segment - read segment segno from buf[0..len). Segments must
 * come in strictly increasing segno order. The planner keeps pointers into
 * buf: the caller keeps it alive and unchanged until jrn_recovery_free.
 * 0, -EINVAL (segno not increasing, len >= 4 GiB, or after finish) or
 * -ENOMEM (the planner is then unusable except for free). */
int jrn_recovery_segment(struct jrn_recovery *r, uint64_t segno, const uint8_t *buf, size_t len);

/* jrn_recovery_finish - end of input: apply the checkpoint, drop what is
 * uncommitted, and return the messages (commit order) in *msgs and *n, and the
 * statistics in *st (st may be NULL). Call once. 0 or -ENOMEM. */
int jrn_recovery_finish(struct jrn_recovery *r, const struct jrn_msg **msgs, size_t *n,
                        struct jrn_stats *st);

/* jrn_recovery_bytes - the octets of extent e (a pointer into the buffer
 * fed for e->segno), or NULL when no such segment was fed. */
const uint8_t *jrn_recovery_bytes(const struct jrn_recovery *r, const struct jrn_extent *e);

/* jrn_recovery_free - release the planner and everything it returned. */
void jrn_recovery_free(struct jrn_recovery *r);

#endif
