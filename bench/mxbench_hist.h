/* mxbench_hist.h - fixed-memory latency histogram for mxbench, in the manner
 * of HdrHistogram: log-linear buckets (128 linear sub-buckets per power of
 * two, so any recorded value is reported within 1/64 of itself). Not
 * thread-safe: each thread records into its own and the main thread merges. */
#ifndef MXBENCH_HIST_H
#define MXBENCH_HIST_H

#include <stdint.h>

#define MXB_HIST_SUB_BITS 7 /* 128 sub-buckets */
#define MXB_HIST_SUB (1u << MXB_HIST_SUB_BITS)
#define MXB_HIST_HALF (MXB_HIST_SUB / 2)
#define MXB_HIST_MAX_BITS 42 /* 2^42 ns: about 73 minutes */
#define MXB_HIST_SLOTS ((MXB_HIST_MAX_BITS - MXB_HIST_SUB_BITS) * MXB_HIST_HALF + MXB_HIST_SUB)

struct mxb_hist {
    uint64_t count;
    uint64_t min, max; /* exact, in the recorded unit */
    double sum;
    uint64_t slot[MXB_HIST_SLOTS];
};

/* mxb_hist_init - empty the histogram. */
void mxb_hist_init(struct mxb_hist *h);

/* mxb_hist_record - count one value (values past 2^42 count as 2^42 - 1). */
void mxb_hist_record(struct mxb_hist *h, uint64_t v);

/* mxb_hist_merge - add every count of src into dst. */
void mxb_hist_merge(struct mxb_hist *dst, const struct mxb_hist *src);

/* mxb_hist_percentile - the value at percentile p (0 < p <= 100): the highest
 * value equivalent to the bucket holding it, capped by the exact maximum;
 * 0 when empty. */
uint64_t mxb_hist_percentile(const struct mxb_hist *h, double p);

#endif
