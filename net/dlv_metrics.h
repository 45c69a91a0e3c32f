/* dlv_metrics.h - the delivery engine's numbers for the metrics endpoint:
 * recipients by hop and outcome, the delivery latency histogram (queue id
 * time to the final outcome of each recipient), the queue delay (queue id
 * time to each recipient's 2xx; also in a fine histogram for exit), and the queue gauges of
 * the messages it holds (by state, the oldest). The delivery thread writes
 * them under one mutex (never a worker's path: the engine runs on its own
 * thread); the metrics thread copies them out with dlv_metrics_read. */
#ifndef MXRING_DLV_METRICS_H
#define MXRING_DLV_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "mhist.h"
#include "qhist.h"
#include "routes.h"

#define DLV_METRICS_HOPS 64u /* hops counted apart; later ones go to "other" */

enum dlv_outcome { DLV_OUT_SENT = 0, DLV_OUT_DEFERRED, DLV_OUT_BOUNCED, DLV_OUT_COUNT };

struct dlv_hop_count {
    char hop[ROUTE_HOP_TEXT_MAX + 1]; /* "smtp:[10.0.0.1]:25", "other", "-" (no route) */
    uint64_t n[DLV_OUT_COUNT];        /* recipients by outcome */
};

/* Messages held by the engine (queue/active/), by state. */
struct dlv_census {
    uint64_t active;   /* in a delivery attempt now or due for their first */
    uint64_t deferred; /* waiting for a retry after a temporary failure */
    uint64_t held;     /* mxringctl hold */
    int64_t oldest_us; /* queue id time of the oldest (Unix us); 0 = none */
};

struct dlv_metrics {
    bool running; /* the engine publishes (a route exists) */
    unsigned nhops;
    struct dlv_hop_count hops[DLV_METRICS_HOPS + 1];
    struct mhist latency;     /* per recipient sent or bounced */
    struct mhist qdelay;      /* per recipient sent: queue id time to its 2xx */
    struct dlv_census census; /* as of the last census (once a second) */
};

/* dlv_metrics_outcome - one recipient of message id had outcome o at hop
 * (delivery thread). Sent and bounced also go into the latency histogram,
 * sent into the queue delay ones too. Returns the delay from the queue id
 * time (the first byte of DATA, microseconds) to now, -1 when deferred or
 * the id carries no time. */
int64_t dlv_metrics_outcome(const char *hop, enum dlv_outcome o, const char *id);
/* dlv_metrics_qdelay - copy the fine queue delay histogram (for the
 * percentiles printed at exit; any thread). */
void dlv_metrics_qdelay(struct qhist *out);
/* dlv_metrics_census - publish the engine's message counts (delivery
 * thread); running false when it stops. */
void dlv_metrics_census(const struct dlv_census *c, bool running);
/* dlv_metrics_read - copy everything out (any thread). */
void dlv_metrics_read(struct dlv_metrics *out);

#endif
