/* mxbench_hist.c - log-linear latency histogram of mxbench (see
 * mxbench_hist.h). Pure arithmetic, no allocation; any thread, one
 * histogram per thread. */
#include "mxbench_hist.h"

#include <math.h>
#include <string.h>

/* slot_of - bucket index of value v (v < 2^MXB_HIST_MAX_BITS). */
static unsigned slot_of(uint64_t v)
{
    if (v < MXB_HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - MXB_HIST_SUB_BITS + 1;
    return shift * MXB_HIST_HALF + (unsigned)(v >> shift);
}

/* slot_high - the highest value that falls into slot i. */
static uint64_t slot_high(unsigned i)
{
    if (i < MXB_HIST_SUB)
        return i;
    unsigned shift = i / MXB_HIST_HALF - 1;
    uint64_t sub = i - shift * MXB_HIST_HALF;
    return ((sub + 1) << shift) - 1;
}

/* mxb_hist_init - empty the histogram. */
void mxb_hist_init(struct mxb_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

/* mxb_hist_record - count one value. */
void mxb_hist_record(struct mxb_hist *h, uint64_t v)
{
    const uint64_t top = (1ull << MXB_HIST_MAX_BITS) - 1;
    if (v > top)
        v = top;
    h->slot[slot_of(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

/* mxb_hist_merge - add every count of src into dst. */
void mxb_hist_merge(struct mxb_hist *dst, const struct mxb_hist *src)
{
    for (unsigned i = 0; i < MXB_HIST_SLOTS; i++)
        dst->slot[i] += src->slot[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

/* mxb_hist_percentile - value at percentile p, see mxbench_hist.h. */
uint64_t mxb_hist_percentile(const struct mxb_hist *h, double p)
{
    if (h->count == 0)
        return 0;
    double want = ceil(p / 100.0 * (double)h->count);
    uint64_t target = want < 1.0 ? 1 : (uint64_t)want;
    if (target > h->count)
        target = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < MXB_HIST_SLOTS; i++) {
        seen += h->slot[i];
        if (seen >= target) {
            uint64_t v = slot_high(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}
