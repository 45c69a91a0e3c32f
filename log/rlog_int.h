/* rlog_int.h - internals of the receivelog shared by log/rlog*.c and the
 * unit tests: the SPSC byte ring (rlog_ring.c), text escaping and the line
 * prefix (rlog_text.c), the flusher's pending output and day files
 * (rlog_out.c) and retention (rlog_retain.c). Not for other modules. */
#ifndef MXRING_RLOG_INT_H
#define MXRING_RLOG_INT_H

#include "rlog.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RLOG_CACHELINE 64
#define RLOG_LINE_MAX 2048u /* escaped text bytes of one line, "..." included */
#define RLOG_TRUNC_MARK "..."
#define RLOG_REC_ALIGN 16u
#define RLOG_RING_MIN 8192u /* >= 2 worst-case records (wrap marker + record) */
#define RLOG_RING_DEFAULT (4u << 20)
#define RLOG_KIND_WRAP 0xffu /* record kind: skip to the start of the buffer */
#define RLOG_PREFIX_LEN 35u  /* " [dd/Mon/yyyy:HH:MM:SS], XXXXXXXX, " */
#define RLOG_DATE_LEN 25u    /* " [dd/Mon/yyyy:HH:MM:SS], " */
#define RLOG_NS_PER_SEC 1000000000ull

/* One record: this header, then len bytes of escaped text, padded to 16. */
struct rlog_rec {
    uint64_t ts;  /* ns since the epoch, non-decreasing within a ring */
    uint32_t sid; /* session id */
    uint16_t len; /* text bytes that follow */
    uint8_t kind; /* enum rlog_kind, or RLOG_KIND_WRAP */
    uint8_t pad;
    char text[];
};
_Static_assert(sizeof(struct rlog_rec) == RLOG_REC_ALIGN, "record header is 16 bytes");
_Static_assert(RLOG_LINE_MAX <= UINT16_MAX, "line length fits the u16 len field");
_Static_assert(RLOG_RING_MIN >= 2 * (RLOG_REC_ALIGN + RLOG_LINE_MAX + RLOG_REC_ALIGN),
               "a ring holds a wrap marker plus the largest record");
_Static_assert((RLOG_RING_MIN & (RLOG_RING_MIN - 1)) == 0, "power of two");
_Static_assert((RLOG_RING_DEFAULT & (RLOG_RING_DEFAULT - 1)) == 0, "power of two");

/* rlog_ring - one worker's ring. Three cache lines: what the producer
 * writes, what the consumer (flusher) writes, and what neither changes. */
struct rlog_ring {
    /* producer line */
    _Alignas(RLOG_CACHELINE) _Atomic uint64_t head; /* published end of records */
    _Atomic int busy;        /* 1 from before the clock read until after commit */
    uint64_t phead;          /* producer's next free byte (wrap marker included) */
    uint64_t tail_cache;     /* last tail the producer loaded */
    uint64_t last_ts;        /* clamp: time stamps never go backwards here */
    _Atomic uint64_t stalls; /* puts that found the ring full */
    /* consumer line */
    _Alignas(RLOG_CACHELINE) _Atomic uint64_t tail; /* end of bytes the consumer released */
    uint64_t ctail;                                 /* consumer's read position */
    uint64_t chead;                                 /* head snapshot the consumer works up to */
    uint64_t seen_ts;                               /* time stamp of the newest record consumed */
    bool idle;                                      /* busy was 0 at the last snapshot */
    /* read-only line */
    _Alignas(RLOG_CACHELINE) unsigned char *buf;
    uint64_t mask;          /* size - 1 */
    const _Atomic bool *on; /* the log's switch */
    _Atomic uint32_t *wake; /* bumped (and futex-woken) when a put stalls */
    rlog_clock_fn clock;    /* NULL = CLOCK_REALTIME_COARSE */
    void *clock_arg;
};

/* ring (rlog_ring.c): producer side from one thread, consumer side from one
 * other thread. */
int rlog_ring_init(struct rlog_ring *r, size_t bytes);
void rlog_ring_fini(struct rlog_ring *r);
struct rlog_rec *rlog_ring_reserve_spsc(struct rlog_ring *r, size_t need);
void rlog_ring_commit_spsc(struct rlog_ring *r, size_t used);
void rlog_ring_refresh_spsc(struct rlog_ring *r);
const struct rlog_rec *rlog_ring_peek_spsc(struct rlog_ring *r);
void rlog_ring_pop_spsc(struct rlog_ring *r);
size_t rlog_rec_size(size_t text_len);
void rlog_futex_wake(_Atomic uint32_t *w);
void rlog_futex_wait(_Atomic uint32_t *w, uint32_t seen, long timeout_ns);

/* text (rlog_text.c): pure functions over bytes, any thread. */
size_t rlog_escape_n(char *dst, size_t cap, const char *src, size_t len, size_t *consumed);
size_t rlog_text_bound(size_t plen, size_t len);
size_t rlog_format_text(char *dst, size_t cap, const char *p, size_t plen, const char *t,
                        size_t tlen);

/* rlog_datecache - the date part of the prefix for one second, and the
 * local date (yyyymmdd) the second belongs to. */
struct rlog_datecache {
    int64_t sec;
    uint32_t day;
    char text[RLOG_DATE_LEN + 1];
};
void rlog_datecache_set(struct rlog_datecache *c, int64_t sec);
void rlog_hex8(char *dst, uint32_t v);
uint32_t rlog_local_day(int64_t sec);
int64_t rlog_day_number(uint32_t yyyymmdd);

/* out (rlog_out.c): the flusher's pending lines, grouped by day. */
struct rlog_seg {
    uint32_t day;
    char *buf;
    size_t len, cap, off; /* off = bytes already written */
};

struct rlog_out_stats {
    _Atomic uint64_t lines_written, bytes_written, lines_dropped, write_errors;
};

struct rlog_out {
    char *top; /* <workdir>/<folder> (receivelog, deliverylog) */
    char *dir; /* <workdir>/<folder>/<host> */
    int fd;    /* open day file or -1 */
    uint32_t fd_day;
    struct rlog_seg *segs;
    size_t nsegs, capsegs;
    size_t pending;   /* unwritten bytes over all segments */
    size_t limit;     /* drop oldest lines above this */
    uint64_t last_ts; /* clamp: file time stamps never go backwards */
    uint64_t lost;    /* lines dropped, not yet reported in the file */
    int lost_errno;
    int fail_errno; /* != 0 while writing fails */
    struct rlog_datecache dc;
    struct rlog_out_stats st;
};

int rlog_out_init(struct rlog_out *o, const char *workdir, const char *folder, const char *host);
void rlog_out_fini(struct rlog_out *o);
bool rlog_out_line(struct rlog_out *o, uint64_t ts, uint32_t sid, const char *text, size_t len);
void rlog_out_write(struct rlog_out *o, bool on);
void rlog_out_close_day(struct rlog_out *o, uint32_t day);
void rlog_out_close(struct rlog_out *o);

/* retain (rlog_retain.c): deletes and gzips old day files, a slice per
 * flusher cycle. */
struct rlog_retain {
    unsigned keep_days, compress_after;
    bool ran;
    int64_t last_sec;
    uint32_t last_day;
    uint32_t *queue; /* days waiting to be compressed */
    size_t nq, capq;
    int in_fd, out_fd; /* the job in progress, or -1 */
    void *gz;          /* gzFile of the job in progress */
    uint32_t job_day;
};

void rlog_retain_init(struct rlog_retain *r, unsigned keep_days, unsigned compress_after);
void rlog_retain_fini(struct rlog_retain *r, const char *dir);
void rlog_retain_tick(struct rlog_retain *r, struct rlog_out *o, uint64_t now_ns);

#endif
