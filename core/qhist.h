/* qhist.h - a log-linear histogram for exact-enough percentiles (p50, p99,
 * max) of a latency printed at exit: values in microseconds, 32 sub-buckets
 * per power of two (an upper bound within 1/32 = 3.1 % of the value), the
 * exact maximum. Pure, no I/O, no atomics: one thread writes it and reads it
 * after that thread stopped (the Prometheus side is core/mhist.h). */
#ifndef MXRING_QHIST_H
#define MXRING_QHIST_H

#include <stdint.h>

#define QHIST_SUB_BITS 5u                         /* 32 sub-buckets per octave */
#define QHIST_LINEAR (1u << (QHIST_SUB_BITS + 1)) /* 0..63 us: one bucket per us */
#define QHIST_OCTAVES 36u                         /* up to 2^42 us (about 50 days) */
#define QHIST_BUCKETS (QHIST_LINEAR + QHIST_OCTAVES * (1u << QHIST_SUB_BITS))

struct qhist {
    uint64_t n[QHIST_BUCKETS];
    uint64_t count;
    uint64_t max_us;
};

/* qhist_observe - one observation of us microseconds (values past the last
 * octave count in the last bucket; max stays exact). */
void qhist_observe(struct qhist *h, uint64_t us);
/* qhist_quantile_us - the upper bound of the bucket holding the q-th
 * quantile (0 < q <= 1: the smallest value with at least q * count
 * observations at or below it), never above max; 0 when empty. */
uint64_t qhist_quantile_us(const struct qhist *h, double q);

#endif
