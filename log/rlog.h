/* rlog.h - the receivelog: one lock-free SPSC ring per worker thread, one
 * flusher thread that merges all rings by time stamp into date-split files
 * <workdir>/receivelog/<host>/<YYYYMMDD>.log. Logging is on exactly while
 * <workdir>/receivelog/ exists (polled by the flusher).
 * Threads: rlog_put*() only from the worker that owns the ring; everything
 * else from the main thread; the flusher is internal. */
#ifndef MXRING_RLOG_H
#define MXRING_RLOG_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rlog;      /* the whole log (opaque) */
struct rlog_ring; /* one worker's producer handle (opaque) */

/* Line kinds: dialog lines always carry the session id; internal check lines
 * carry it too unless the log runs in "zero" (original-compatible) mode. */
enum rlog_kind { RLOG_DIALOG = 0, RLOG_INTERNAL = 1 };

/* Clock used for time stamps: nanoseconds since the Unix epoch. Tests pass a
 * fake one; NULL means CLOCK_REALTIME_COARSE. */
typedef uint64_t (*rlog_clock_fn)(void *arg);

struct rlog_opts {
    const char *workdir;          /* mail work folder */
    const char *folder;           /* top folder under workdir (NULL = "receivelog";
                                 * the delivery log passes "deliverylog") */
    const char *host;             /* folder name under <folder>/ (gethostname) */
    unsigned nrings;              /* one per worker */
    size_t ring_bytes;            /* per ring, power of two (0 = default 4 MiB) */
    bool zero_internal_id;        /* receivelog_internal_id = zero */
    unsigned keep_days;           /* 0 = keep forever */
    unsigned compress_after_days; /* 0 = never */
    unsigned poll_ms;             /* folder-existence poll period (0 = 500) */
    rlog_clock_fn clock;          /* NULL = real clock */
    void *clock_arg;
};

/* rlog_create - allocate rings and state; does not start the thread.
 * Returns NULL with errno set on failure. */
struct rlog *rlog_create(const struct rlog_opts *o);
/* rlog_start - start the flusher thread. 0 or -errno. */
int rlog_start(struct rlog *l);
/* rlog_stop - stop producing: drain every committed line to its file,
 * stop the flusher and join it. Call after all workers have stopped. */
void rlog_stop(struct rlog *l);
/* rlog_destroy - free everything (after rlog_stop, or if never started). */
void rlog_destroy(struct rlog *l);
/* rlog_ring - the producer handle of ring i (0 <= i < nrings). */
struct rlog_ring *rlog_ring(struct rlog *l, unsigned i);

/* rlog_on - is logging on? Relaxed load of the switch; callers skip all
 * formatting when false. */
bool rlog_on(const struct rlog_ring *r);

/* rlog_put - log one line of text for session sid. Valid UTF-8 is written
 * as it is; control bytes (< 0x20, 0x7f, and the C1 controls and U+2028/9
 * in UTF-8), '\\' and every byte not part of a valid UTF-8 sequence are
 * written as \xNN, so the text can never forge a line. Never blocks on a lock or the disk; if the ring is full it
 * spins briefly, then yields until there is room (the stall is counted). */
void rlog_put(struct rlog_ring *r, uint32_t sid, enum rlog_kind kind, const char *text, size_t len);
/* rlog_put2 - the same for the concatenation prefix + text (prefix is
 * trusted and copied verbatim, text is escaped). */
void rlog_put2(struct rlog_ring *r, uint32_t sid, enum rlog_kind kind, const char *prefix,
               size_t plen, const char *text, size_t len);
/* rlog_putf - printf-style line (the formatted result is escaped). */
void rlog_putf(struct rlog_ring *r, uint32_t sid, enum rlog_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* rlog_set_retention - new receivelog_keep_days / _compress_after_days
 * (SIGHUP); the flusher applies them on its next cycle. Any thread. */
void rlog_set_retention(struct rlog *l, unsigned keep_days, unsigned compress_after_days);

/* Counters for tests and stderr reports. */
struct rlog_stats {
    uint64_t lines_written; /* lines written to files */
    uint64_t bytes_written;
    uint64_t stalls;        /* producer waits on a full ring */
    uint64_t lines_dropped; /* lines dropped because files were unwritable */
    uint64_t write_errors;
    uint64_t cycles; /* flusher loop passes (at least one per 20 ms: watchdog progress) */
};
void rlog_get_stats(struct rlog *l, struct rlog_stats *out);

/* rlog_escape - escape len bytes of src into dst (capacity cap) as above;
 * returns bytes written (output truncated at a whole escape if cap is short). */
size_t rlog_escape(char *dst, size_t cap, const char *src, size_t len);

/* rlog_format_prefix - write " [dd/Mon/yyyy:HH:MM:SS], XXXXXXXX, " for the
 * local time of ns into dst (>= 36 bytes); returns its length. */
size_t rlog_format_prefix(char *dst, uint64_t ns, uint32_t sid);

/* Session ids: a process numbers its sessions from rlog_sid_base(start) + 1,
 * so ids do not repeat within a day across restarts; 00000000 is the
 * process's own lines ("mxringd started/stopped"). */
#define RLOG_SID_PER_SEC 49710u /* floor(2^32 / 86400) */
#define RLOG_SID_PROCESS 0u
/* rlog_sid_base - the id base of a process started at Unix second sec
 * (local seconds since midnight x RLOG_SID_PER_SEC). Any thread. */
uint32_t rlog_sid_base(int64_t sec);

/* rlog_flush_now - run synchronous flusher cycles (switch poll, merge up
 * to the watermark, write, retention) from the calling thread: the tests'
 * hook, and mxringd's start line before any worker logs. Only when the
 * flusher thread is not started: -EBUSY otherwise. */
int rlog_flush_now(struct rlog *l);
/* rlog_set_pending_limit - test hook: unwritten output bytes kept while
 * the files are unwritable before the oldest lines are dropped (64 MiB). */
void rlog_set_pending_limit(struct rlog *l, size_t bytes);

#ifdef __cplusplus
}
#endif

#endif
