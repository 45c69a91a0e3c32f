/* mhist.h - a latency histogram for the metrics: fixed bucket bounds from
 * 100 us to 1 h (one table for every latency family, so they compare), the
 * sum in microseconds, and the count derived from the buckets. One writer
 * thread bumps it with relaxed atomic stores (no locked add); any thread
 * reads it with relaxed loads (mhist_add). Only uint64_t fields, so it can
 * sit in counter structs that are summed as arrays. */
#ifndef MXRING_MHIST_H
#define MXRING_MHIST_H

#include <stdint.h>

#define MHIST_BOUNDS 20u /* finite upper bounds; bucket[MHIST_BOUNDS] is +Inf */

struct mhist {
    uint64_t bucket[MHIST_BOUNDS + 1]; /* observations per bucket (not cumulative) */
    uint64_t sum_us;                   /* sum of the observations, microseconds */
};

/* mhist_bound_us - upper bound of bucket i (i < MHIST_BOUNDS), microseconds. */
uint64_t mhist_bound_us(unsigned i);
/* mhist_observe - one observation of us microseconds; only from h's one
 * writer thread. */
void mhist_observe(struct mhist *h, uint64_t us);
/* mhist_add - sum += h, reading h with relaxed loads (any thread). */
void mhist_add(struct mhist *sum, const struct mhist *h);
/* mhist_count - observations in h (the +Inf bucket's cumulative count). */
uint64_t mhist_count(const struct mhist *h);
/* mhist_now_us - CLOCK_MONOTONIC in microseconds (for the observations). */
uint64_t mhist_now_us(void);

#endif
