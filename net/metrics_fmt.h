/* metrics_fmt.h - the Prometheus text exposition (format 0.0.4) of one
 * snapshot of mxringd's counters: HELP and TYPE per family, the mxring_
 * prefix, labels escaped. Pure: any thread. */
#ifndef MXRING_METRICS_FMT_H
#define MXRING_METRICS_FMT_H

#include <stdint.h>

#include "dlv_metrics.h"
#include "metrics_queue.h"
#include "rlog.h"
#include "session.h"
#include "util.h"
#include "worker.h"

/* Everything one scrape shows, summed over the workers. */
struct metrics_snap {
    const char *version;
    double start_time; /* Unix seconds */
    unsigned workers;
    unsigned sessions_open;
    struct worker_stats st;
    struct sess_counters sess;
    struct rlog_stats rlog;
    uint64_t scrapes;       /* answered with 200 */
    uint64_t http_refused;  /* 403 (metrics_allow) */
    uint64_t http_errors;   /* 4xx/5xx for malformed requests and timeouts */
    struct dlv_metrics dlv; /* the delivery engine's numbers */
    struct mq_new qnew;     /* queue/new/ at scrape time */
    int64_t now_us;         /* the scrape's real time (for ages) */
};

/* metrics_format - append the exposition of m to out; false on ENOMEM. */
bool metrics_format(const struct metrics_snap *m, struct sb *out);

/* metrics_label_escape - append v as a label value (\\, \" and \n
 * escaped); false on ENOMEM. */
bool metrics_label_escape(struct sb *out, const char *v);

#endif
