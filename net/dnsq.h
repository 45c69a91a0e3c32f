/* dnsq.h - DNS A and AAAA lookups over UDP on a worker's io_uring ring,
 * shared by the SURBL/URIBL filter (surbl.c), connect-time DNSBL scoring
 * (dnsbl.c) and delivery hop names (dlv_dns.c): a batch of names is sent in parallel to the configured
 * servers (random ids, replies matched engine-wide by id, sender and
 * question through core/dnsmsg.c), bounded by one timeout; with two or
 * more servers the names still unanswered at half of it go to the second.
 * One engine per worker thread; all functions run on that thread and
 * never block. */
#ifndef MXRING_DNSQ_H
#define MXRING_DNSQ_H

#include <stddef.h>
#include <stdint.h>

#include "dnsmsg.h"

struct io_uring;
struct cfg_listen;
struct dnsq_engine;

/* The outcome of one name. */
enum dnsq_state {
    DNSQ_WAIT = 0, /* (in flight) */
    DNSQ_ANSWER,   /* records of the type: addr, naddr, ttl */
    DNSQ_NONE,     /* NXDOMAIN or no record of the type */
    DNSQ_FAILED,   /* timeout, SERVFAIL, ...: why */
    DNSQ_SKIPPED,  /* not a valid name: never sent */
};

/* One name of a batch: the caller fills name (and type: 0 reads as
 * DNSMSG_TYPE_A; a name may be in a batch twice, once per type); the rest
 * is the result. Address i < naddr is at addr + i * DNSMSG_ADDR_LEN (so
 * addr[0..4) is the first A record), as in struct dnsmsg_result. */
struct dnsq_item {
    char name[DNSMSG_NAME_MAX + 1];
    uint16_t type; /* DNSMSG_TYPE_A or DNSMSG_TYPE_AAAA; 0 = A */
    enum dnsq_state state;
    uint8_t naddr;
    uint8_t addr[DNSMSG_ADDRS_MAX * DNSMSG_ADDR_LEN];
    uint32_t ttl;    /* the smallest of the records' */
    const char *why; /* DNSQ_FAILED: a static reason for the log */
};

/* The batch is over: every item has its state. */
typedef void (*dnsq_done_fn)(void *arg);

/* Counters of one engine for the metrics, owned by its creator: written on
 * the engine's worker thread (a relaxed load and store), read by any thread
 * with relaxed loads. */
struct dnsq_stats {
    uint64_t queries;  /* query datagrams sent (retries on the next server included) */
    uint64_t failures; /* names without a usable answer (timeout, SERVFAIL, ...) */
};

/* dnsq_engine_new - an engine using ring; worker seeds its query ids; it
 * counts into *st (NULL: not counted). NULL on ENOMEM. */
struct dnsq_engine *dnsq_engine_new(struct io_uring *ring, unsigned worker, struct dnsq_stats *st);
/* dnsq_engine_free - close the sockets; no batch may still be running. */
void dnsq_engine_free(struct dnsq_engine *e);

/* dnsq_lookup - look up items[0..n) at servers[0..nservers) within
 * timeout_ms, then call done(arg) exactly once (maybe before returning),
 * when every item has its outcome and no operation of the batch is in
 * flight. items and servers stay valid until done. Out of memory or no
 * servers fails every item. An item whose state is DNSQ_SKIPPED on entry
 * is not sent (and stays so); every other state is overwritten. */
void dnsq_lookup(struct dnsq_engine *e, const struct cfg_listen *servers, size_t nservers,
                 unsigned timeout_ms, struct dnsq_item *items, unsigned n, dnsq_done_fn done,
                 void *arg);

#endif
