/* metrics.h - the Prometheus endpoint: GET /metrics on metrics_listen,
 * served by one thread with its own io_uring ring (not on the workers'
 * rings), only to clients in metrics_allow. The main thread binds, starts
 * and stops it. */
#ifndef MXRING_METRICS_H
#define MXRING_METRICS_H

struct config;
struct pool;
struct metrics;

/* metrics_listen - bind cfg's metrics_listen addresses (before the
 * privilege drop); NULL when the key is empty. Dies when an address is
 * unusable. */
struct metrics *metrics_listen(const struct config *cfg);
/* metrics_start - start the responder thread over pool's counters (after
 * pool_start). Dies when io_uring or the thread cannot be set up. */
void metrics_start(struct metrics *m, struct pool *pool, const char *version);
/* metrics_stop - stop the thread (before pool_join), close and free
 * everything. NULL is fine. */
void metrics_stop(struct metrics *m);

#endif
