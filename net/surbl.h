/* surbl.h - SURBL/URIBL lookups on a worker's io_uring ring: the hosts of
 * a message's URIs (searched in its first SURBL_SCAN_MAX octets), reduced
 * to registered domains, looked up as A records of <domain>.<zone> over UDP
 * to dns_servers, all in parallel. One engine per worker thread (its UDP
 * sockets and the table of queries waiting for a reply), one check per
 * message; the filter job (filter.c) runs it as one of its parts. All
 * functions run on the engine's worker thread. */
#ifndef MXRING_SURBL_H
#define MXRING_SURBL_H

#include "filter.h"

#define SURBL_SCAN_MAX (1024u * 1024u) /* octets of a message searched for URIs */

struct io_uring;
struct config;
struct surbl_engine;

/* surbl_engine_new - an engine using ring; worker seeds its query ids; its
 * DNS engine counts queries and failed lookups into st->dns (filter.h).
 * NULL on ENOMEM. */
struct surbl_engine *surbl_engine_new(struct io_uring *ring, unsigned worker,
                                      struct filter_stats *st);
/* surbl_engine_free - close the sockets; no check may still be running. */
void surbl_engine_free(struct surbl_engine *se);

/* surbl_check - look up the URI domains of the message of src (the first
 * SURBL_SCAN_MAX octets are read into one buffer before surbl_check
 * returns; src is not used after that) per cfg's surbl_zones. Logs every
 * lookup and one "SURBL verdict" line through log, then calls done exactly
 * once (maybe before returning) with PASS, QUARANTINE, REJECT_SPAM or, by
 * dns_failure, TEMPFAIL. cfg stays valid until done. */
void surbl_check(struct surbl_engine *se, const struct config *cfg, const struct filter_src *src,
                 filter_log_fn log, filter_done_fn done, void *arg);

#endif
