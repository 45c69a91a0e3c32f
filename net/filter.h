/* filter.h - the content filters of the end-of-data path, asynchronous on a
 * worker's io_uring ring: SURBL/URIBL (surbl.h) and antivirus (clamdio.h)
 * run side by side as the parts of one job per message, which reports one
 * combined verdict. The message comes from a source that is read in pieces
 * (struct filter_src), so a job never holds the whole message. One engine
 * per worker thread; nothing here ever blocks the worker. All functions run
 * on the engine's worker thread. The source and callback types below are
 * shared with the parts. */
#ifndef MXRING_FILTER_H
#define MXRING_FILTER_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dnsq.h"
#include "session.h"

struct io_uring;
struct config;
struct filter_engine;

/* A message to filter (as received, headers and body), read on demand: from
 * memory today, from the page cache of the queue journal later, so reading
 * is a plain synchronous call. */
struct filter_src {
    size_t len; /* message octets */
    /* read up to cap octets at offset off into buf: octets read (0 at the end), or -errno */
    long (*read)(void *arg, size_t off, void *buf, size_t cap);
    void *arg;
};

/* filter_src_fill - read exactly n octets at off (off + n <= src->len) into
 * buf, over as many reads as it takes: n, or -errno (-ENODATA when the
 * source ends early, -EIO when a read claims more than it was asked for). */
static inline long filter_src_fill(const struct filter_src *src, size_t off, void *buf, size_t n)
{
    size_t have = 0;
    while (have < n) {
        long r = src->read(src->arg, off + have, (char *)buf + have, n - have);
        if (r < 0)
            return r;
        if (r == 0)
            return -ENODATA;
        if ((size_t)r > n - have)
            return -EIO;
        have += (size_t)r;
    }
    return (long)n;
}

/* Receivelog line of the job (internal processing, e.g.
 * "Query_FILTER_RBL(bad.example.multi.surbl.test 127.0.0.2,1)=found list"). */
typedef void (*filter_log_fn)(void *arg, const char *line);
/* The job's outcome: exactly one call per filter_start. detail names the
 * virus (REJECT_VIRUS) or the reason (QUARANTINE / TEMPFAIL, e.g.
 * "surbl bad.example multi.surbl.test"). A part reports the same way. */
typedef void (*filter_done_fn)(void *arg, enum sess_verdict v, const char *detail);

#define FILTER_LINE_MAX 700u /* one log line */

/* filter_logf - format one log line (cut at FILTER_LINE_MAX) and hand it to
 * log (which may be NULL: nothing is logged). */
static inline void filter_logf(filter_log_fn log, void *arg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void filter_logf(filter_log_fn log, void *arg, const char *fmt, ...)
{
    char line[FILTER_LINE_MAX];
    va_list ap;
    if (!log)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log(arg, line);
}

/* Counters of one worker's filters, for the metrics: written only on the
 * engine's worker thread with FILTER_STAT (relaxed load and store), read by
 * any thread with relaxed loads. The struct belongs to the caller of
 * filter_engine_new and outlives the engine. */
#define FILTER_VERDICTS (SESS_VERDICT_TEMPFAIL + 1)
struct filter_stats {
    uint64_t verdicts[FILTER_VERDICTS]; /* combined job verdicts, by enum sess_verdict */
    struct dnsq_stats dns;              /* the SURBL/URIBL lookups */
};
#define FILTER_STAT(ctr, n) \
    __atomic_store_n(&(ctr), __atomic_load_n(&(ctr), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)
/* filter_verdict_label - "pass", "quarantine", "spam", "virus", "tempfail". */
const char *filter_verdict_label(unsigned v);

/* filter_wanted - does cfg configure any filter (surbl_zones or clamd)? */
bool filter_wanted(const struct config *cfg);

/* filter_engine_new - an engine using ring (the worker's); its operations
 * complete through struct uring_cb (see uring.h); it counts into *st.
 * NULL on ENOMEM. */
struct filter_engine *filter_engine_new(struct io_uring *ring, unsigned worker,
                                        struct filter_stats *st);
/* filter_engine_free - release the engine; no job may still be running. */
void filter_engine_free(struct filter_engine *fe);

/* filter_start - filter the message of src according to cfg. *src is
 * copied; src->arg and what it reads, and cfg, stay valid until done is
 * called. done may be called before filter_start returns (nothing to look
 * up). At most the URI scan prefix of surbl.h and one clamd piece of
 * clamdio.h are held in memory at a time. */
void filter_start(struct filter_engine *fe, const struct config *cfg, const struct filter_src *src,
                  filter_log_fn log, filter_done_fn done, void *arg);

#endif
