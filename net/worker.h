/* worker.h - the worker pool: one thread and one io_uring ring per worker,
 * doing accept, receive, send, timeouts, queue-file writes and close for
 * the sessions it owns. The main thread creates, wakes and joins workers. */
#ifndef MXRING_WORKER_H
#define MXRING_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "filter.h"
#include "mhist.h"
#include "tls.h"

#define MILTER_VERDICTS 4 /* enum milterio_verdict: accept, reject, tempfail, discard */

struct config;
struct qflush;
struct qflush_stats;
struct rlog;
struct worker;

/* Process-wide state the workers share (read-mostly). */
struct pool {
    unsigned nworkers;
    struct worker **workers;
    struct rlog *rlog;
    atomic_uint sessions;   /* live sessions, for max_sessions (touched at connect/close only) */
    atomic_bool stopping;   /* SIGTERM/SIGINT seen */
    struct authpool *auth;  /* password verification threads (SMTP AUTH) */
    unsigned grace_seconds; /* transactions in progress may finish this long */
    struct qflush *flush;   /* the materializer (stopped by pool_join) */
    int journal_dirfd;      /* <workdir>/queue/journal */
    uint64_t segment_size;  /* journal_segment_size */
    uint32_t sid_base;      /* session ids: sid_base + worker + 1 + k * nworkers */
    atomic_uint test_stall; /* test hook: worker test_stall - 1 stops its loop (0 = none) */
};

/* Per-worker counters, summed and printed at exit and by pool_stats at a
 * metrics scrape. Only uint64_t fields (pool_stats sums them as an array);
 * only the worker writes them, with STAT_ADD (the filter engine with
 * FILTER_STAT). The journal_* fields stay 0 in a worker: pool_stats fills
 * the sum from the journal writers' own counters (queue_get_stats). */
struct worker_stats {
    uint64_t connections;
    uint64_t refused;
    uint64_t messages;
    uint64_t bytes;
    uint64_t spool_errors;
    uint64_t enobufs;
    uint64_t journal_writes;                /* journal batches written */
    uint64_t journal_syncs;                 /* journal fdatasyncs */
    uint64_t journal_hist[8];               /* sync batches by commits: 0, 1, 2-3, 4-7, ... 64+ */
    uint64_t loops;                         /* event loop passes (watchdog progress) */
    uint64_t by_listener[3];                /* connections by listener: smtp, smtps, submission */
    uint64_t tls_handshakes[TLS_VER_COUNT]; /* completed server handshakes, by version */
    uint64_t tls_failures;       /* server handshakes that failed (alert, protocol error) */
    struct filter_stats filter;  /* content filter verdicts, SURBL DNS lookups */
    struct dnsq_stats dnsbl_dns; /* the connect-time DNSBL lookups */
    uint64_t milter_verdicts[MILTER_VERDICTS]; /* the milter chain's result, by milterio_verdict */
    uint64_t journal_sync_commits;             /* commits covered by those fdatasyncs */
    uint64_t journal_segments;                 /* segments open now (started - retired) */
    struct mhist journal_sync_lat;             /* fdatasync chain latency */
};
_Static_assert(sizeof(struct worker_stats) % sizeof(uint64_t) == 0, "uint64_t fields only");

/* STAT_ADD - bump a worker_stats counter from its own worker: a relaxed
 * load and store (one writer, so no locked add on the hot path) that other
 * threads may read with a relaxed load (pool_stats). */
#define STAT_ADD(ctr, n) \
    __atomic_store_n(&(ctr), __atomic_load_n(&(ctr), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)

/* pool_listen - create every worker's listening sockets (SO_REUSEPORT, one
 * set per worker so the kernel spreads connections). Dies with a clear
 * message when an address is unusable or already served. */
void pool_listen(struct pool *p, const struct config *cfg);
/* pool_start - start the worker threads; each sets up its own ring. Dies if
 * io_uring cannot be set up. */
void pool_start(struct pool *p, const struct config *cfg);
/* pool_stats - the workers' counters summed, read while they run (each
 * value is a recent one; the sum is not one instant). Any thread, between
 * pool_listen and pool_join. */
void pool_stats(struct pool *p, struct worker_stats *sum);
/* pool_sess_counters - the workers' session counters summed (as pool_stats). */
struct sess_counters;
void pool_sess_counters(struct pool *p, struct sess_counters *sum);
/* pool_loops - worker i's loop pass counter (relaxed read, any thread). */
uint64_t pool_loops(struct pool *p, unsigned i);
/* pool_wake - make every worker look at the stop flag and the snapshot. */
void pool_wake(struct pool *p);
/* pool_join - wait for all workers to finish; sums their counters, and
 * leaves the materializer's in mat (after it has stopped). */
void pool_join(struct pool *p, struct worker_stats *sum, struct qflush_stats *mat);

#endif
