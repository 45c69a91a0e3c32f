/* filter.h - the content filters of the end-of-data path, asynchronous on a
 * worker's io_uring ring: SURBL/URIBL (hosts of the message's URIs, reduced
 * to registered domains, looked up as A records of <domain>.<zone> over UDP
 * to dns_servers, all in parallel) and antivirus (the message streamed to
 * clamd with INSTREAM over a unix or TCP socket). One engine per worker
 * thread, one job per message; nothing here ever blocks the worker. All
 * functions run on the engine's worker thread. */
#ifndef MXRING_FILTER_H
#define MXRING_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "session.h"

struct io_uring;
struct config;
struct filter_engine;

/* filter_wanted - does cfg configure any filter (surbl_zones or clamd)? */
bool filter_wanted(const struct config *cfg);

/* filter_engine_new - an engine using ring (the worker's); its operations
 * complete through struct uring_cb (see uring_cb.h). NULL on ENOMEM. */
struct filter_engine *filter_engine_new(struct io_uring *ring, unsigned worker);
/* filter_engine_free - release the engine; no job may still be running. */
void filter_engine_free(struct filter_engine *fe);

/* Receivelog line of the job (internal processing, e.g.
 * "Query_FILTER_RBL(bad.example.multi.surbl.test 127.0.0.2,1)=found list"). */
typedef void (*filter_log_fn)(void *arg, const char *line);
/* The job's outcome: exactly one call per filter_start. detail names the
 * virus (REJECT_VIRUS) or the reason (QUARANTINE / TEMPFAIL, e.g.
 * "surbl bad.example multi.surbl.test"). */
typedef void (*filter_done_fn)(void *arg, enum sess_verdict v, const char *detail);

/* filter_start - filter msg[0..len) (the message as received, headers and
 * body; it and cfg stay valid until done is called) according to cfg.
 * done may be called before filter_start returns (nothing to look up). */
void filter_start(struct filter_engine *fe, const struct config *cfg, const char *msg,
                  size_t len, filter_log_fn log, filter_done_fn done, void *arg);

#endif
