/* dnsbl.h - connect-time DNSBL/DNSWL scoring on a worker's io_uring ring
 * (postscreen-style weights, the sites of dnsbl_sites): at accept the
 * client's reversed address is looked up in every site in parallel through
 * the worker's DNS engine (dnsq.h), bounded by dnsbl_timeout_ms, with a
 * small per-worker cache of the answers (their TTL within 60 s .. 1 h).
 * The weights of the sites that list the client add up to its score; at
 * or over dnsbl_threshold it is blocked. A failed lookup counts as not
 * listed and is logged. One engine per worker; worker thread only. */
#ifndef MXRING_NET_DNSBL_H
#define MXRING_NET_DNSBL_H

#include <stdbool.h>

struct io_uring;
struct config;
struct mx_addr;
struct dnsbl_engine;

#define DNSBL_TTL_MIN_S 60u   /* answers (and NXDOMAIN) are kept at least this long */
#define DNSBL_TTL_MAX_S 3600u /* and at most this long */
#define DNSBL_CACHE_SLOTS 1024u

/* The outcome of one check. */
struct dnsbl_verdict {
    int score;
    bool blocked;     /* score >= dnsbl_threshold */
    const char *site; /* blocked: the zone of the heaviest listing;
                                  valid while the config is */
};

/* A receivelog line of the check; its result (exactly once per check). */
typedef void (*dnsbl_log_fn)(void *arg, const char *line);
typedef void (*dnsbl_done_fn)(void *arg, const struct dnsbl_verdict *v);

/* dnsbl_wanted - does cfg list any dnsbl_sites? */
bool dnsbl_wanted(const struct config *cfg);

/* dnsbl_engine_new - an engine on ring (its own DNS engine and cache,
 * counting its queries into *st; NULL: not counted). NULL on ENOMEM. */
struct dnsq_stats;
struct dnsbl_engine *dnsbl_engine_new(struct io_uring *ring, unsigned worker,
                                      struct dnsq_stats *st);
/* dnsbl_engine_free - release it; no check may still be running. */
void dnsbl_engine_free(struct dnsbl_engine *de);

/* dnsbl_check - score peer per cfg's dnsbl_sites: one log line per listing
 * (and per failed lookup), one verdict line with the score, then done
 * (maybe before returning: everything cached). cfg stays valid until done. */
void dnsbl_check(struct dnsbl_engine *de, const struct config *cfg, const struct mx_addr *peer,
                 dnsbl_log_fn log, dnsbl_done_fn done, void *arg);

#endif
