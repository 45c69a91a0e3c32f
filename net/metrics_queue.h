/* metrics_queue.h - what a scrape learns from the queue folders at scrape
 * time: the files in queue/new/ (not yet taken by delivery) and the oldest
 * of them by queue id, read with a directory walk capped in time so a huge
 * backlog never stalls the metrics thread. Metrics thread only. */
#ifndef MXRING_METRICS_QUEUE_H
#define MXRING_METRICS_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#define MQ_SCAN_MS 50u /* the walk stops after this long */

struct mq_new {
    uint64_t files;    /* queue files seen in queue/new/ */
    int64_t oldest_us; /* queue id time of the oldest seen (Unix us); 0 = none */
    bool complete;     /* the walk saw the whole folder (not cut by MQ_SCAN_MS) */
};

/* mq_scan_new - walk <workdir>/queue/new/ into *out (all zero and
 * complete when the folder cannot be read). */
void mq_scan_new(const char *workdir, struct mq_new *out);

#endif
