/* journal_file.h - the journal's files: segment and spare names in
 * <workdir>/queue/journal/, listing them, start-up recovery (plan every
 * worker's segments, materialize what new/ is missing, free the segments)
 * and the read-only check behind `mxringd --check-queue`. Blocking
 * syscalls: the main thread at start-up (before any listener accepts), or
 * a thread of its own (jrn_put_file). */
#ifndef MXRING_JOURNAL_FILE_H
#define MXRING_JOURNAL_FILE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#define JRN_DIR "queue/journal" /* under the workdir */
#define JRN_NAME_MAX 32         /* room for either name below + NUL */

/* jrn_seg_name - "w<WW>-<SEGNO>.jrn": worker as 2 lower-case hex digits,
 * segno as 16 (e.g. "w00-0000000000000001.jrn"). */
void jrn_seg_name(char out[JRN_NAME_MAX], unsigned worker, uint64_t segno);

/* jrn_spare_name - "spare-<SEGNO>.jrn": a free segment file. Its contents
 * are never read by recovery; its number is at least every segno its
 * records may carry (so next_segno, derived from names, stays above them).
 * The writer recycles one by renaming it to jrn_seg_name(worker, segno)
 * with segno >= next_segno and writing the JRN_SEG record first. */
void jrn_spare_name(char out[JRN_NAME_MAX], uint64_t segno);

/* jrn_parse_name - which of the two a folder entry is: true with *spare,
 * *worker (0 for a spare) and *segno filled; false for any other name. */
bool jrn_parse_name(const char *name, bool *spare, unsigned *worker, uint64_t *segno);

struct jrn_file {
    char name[JRN_NAME_MAX];
    bool spare;
    unsigned worker;
    uint64_t segno;
    uint64_t size; /* octets (st_size) */
};

struct jrn_dirlist {
    struct jrn_file *v; /* segments by (worker, segno), then spares by segno */
    size_t n;
    size_t nspare;       /* the last nspare entries of v are spares */
    uint64_t next_segno; /* 1 + the highest segno of any name; 1 if none */
};

/* jrn_dir_scan - list journal_dir (a path, e.g. "<workdir>/queue/journal").
 * A missing folder is an empty list. Other names are ignored. 0, or -errno
 * with *out empty. */
int jrn_dir_scan(const char *journal_dir, struct jrn_dirlist *out);

/* jrn_dirlist_free - release a list (safe on an empty one). */
void jrn_dirlist_free(struct jrn_dirlist *l);

enum jrn_put {
    JRN_PUT_WRITTEN = 0,  /* tmp/<qid> written and renamed into new/<qid> */
    JRN_PUT_PRESENT = 1,  /* new/<qid> already there with the expected size */
    JRN_PUT_CONFLICT = 2, /* new/<qid> there with another size: left alone */
    JRN_PUT_REPAIRED = 3, /* new/<qid> differed from the journal: replaced */
};

/* jrn_put_file - materialize one message under the folder basefd (an open
 * <workdir>/queue or <workdir>/quarantine): when new/<qid> is absent, write
 * tmp/<qid> (mode 0640) = the concatenation of iov[0..niov) (any count),
 * close it and rename it into new/<qid> with RENAME_NOREPLACE. No fsync:
 * the caller makes a batch durable with one syncfs(). An enum jrn_put, or
 * -errno (tmp/<qid> removed again). */
int jrn_put_file(int basefd, const char *qid, const struct iovec *iov, size_t niov);

/* jrn_recover_put - recovery's jrn_put_file: the journal is the truth for a
 * message it returns, so a new/<qid> that is not byte for byte the message
 * (a file whose rename survived a power cut but whose data did not) is
 * replaced through tmp/ (JRN_PUT_REPAIRED); an identical one is left
 * (JRN_PUT_PRESENT); an absent one is written (JRN_PUT_WRITTEN). A message
 * in active/<qid> (taken by the delivery engine) counts as present in the
 * same way, so recovery never hands a message in delivery out twice. -errno
 * on failure. */
int jrn_recover_put(int basefd, const char *qid, const struct iovec *iov, size_t niov);

struct jrn_recover_stats {
    unsigned workers; /* workers that had segments */
    unsigned segments;
    uint64_t records;
    uint64_t committed;   /* committed messages after the checkpoints */
    uint64_t written;     /* of those: materialized now */
    uint64_t present;     /* of those: already in new/ (skipped) */
    uint64_t repaired;    /* of those: new/<qid> differed (rewritten from the journal) */
    uint64_t skipped;     /* covered by a checkpoint */
    uint64_t uncommitted; /* open transactions dropped */
    uint64_t aborted;
    uint64_t bad_body;
    uint64_t malformed;
    uint64_t torn;       /* torn tails cut */
    uint64_t next_segno; /* every worker's first new segment must be >= this */
};

/* jrn_recover_workdir - start-up recovery of <workdir>/queue/journal (it is
 * created when missing; queue/{tmp,new} and quarantine/{tmp,new} must exist,
 * see spool_prepare). For every worker that has segments (whatever the
 * configured worker count): mmap its segments read-only, plan them, and
 * jrn_recover_put every returned message into queue/ or quarantine/ (JRN_F_
 * QUARANTINE), keeping the ones already in new/ byte for byte. Torn tails, bad bodies
 * and rewritten files are reported on report (one line each, "mxringd: journal:
 * ..."), plus one summary line when anything was found; report may be NULL.
 * Then one syncfs() makes all files and renames durable, and only then is
 * every segment renamed to a spare (jrn_spare_name, numbered from the old
 * next_segno up) and the journal folder fsynced: the files stay in place
 * as spares for the writer to recycle (or delete), and none is replayed
 * again. A crash before the renames only replays messages (at-least-once).
 * Fills *st (may be NULL); st->next_segno is past every name, spares
 * included: every worker's first new segment must use a segno >= it.
 * 0, or -errno (nothing renamed; the reason is on report). */
int jrn_recover_workdir(const char *workdir, FILE *report, struct jrn_recover_stats *st);

/* jrn_check - read-only check of <workdir>/queue/journal for
 * `mxringd --check-queue`: per worker, print on out the segments, records,
 * committed messages, those missing from new/ (recovery would write them),
 * uncommitted transactions, aborted, bad bodies and every torn tail
 * (segment, offset, octets cut); then a verdict line. Meant for a stopped
 * server (a live writer's tail may look torn). 0 when sound, 1 when damaged
 * (a torn tail, a bad body or a malformed record), -errno when the folder
 * cannot be read (message on out). */
int jrn_check(const char *workdir, FILE *out);

#endif
