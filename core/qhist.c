/* qhist.c - the log-linear percentile histogram (qhist.h): bucket index of
 * a value, the bucket's upper bound, the quantile walk. Pure; whichever one
 * thread owns the struct calls it. */
#include "qhist.h"

#include <math.h>

/* bucket_of - index of us: linear below QHIST_LINEAR, then per octave
 * [2^e, 2^(e+1)) split in 2^QHIST_SUB_BITS equal parts. */
static unsigned bucket_of(uint64_t us)
{
    if (us < QHIST_LINEAR)
        return (unsigned)us;
    unsigned e = 63u - (unsigned)__builtin_clzll(us); /* e >= QHIST_SUB_BITS + 1 */
    unsigned oct = e - (QHIST_SUB_BITS + 1);
    if (oct >= QHIST_OCTAVES)
        return QHIST_BUCKETS - 1;
    unsigned sub = (unsigned)(us >> (e - QHIST_SUB_BITS)) & ((1u << QHIST_SUB_BITS) - 1);
    return QHIST_LINEAR + (oct << QHIST_SUB_BITS) + sub;
}

/* bucket_top - the largest value of bucket i. */
static uint64_t bucket_top(unsigned i)
{
    if (i < QHIST_LINEAR)
        return i;
    unsigned oct = (i - QHIST_LINEAR) >> QHIST_SUB_BITS;
    unsigned sub = (i - QHIST_LINEAR) & ((1u << QHIST_SUB_BITS) - 1);
    unsigned e = oct + QHIST_SUB_BITS + 1;
    uint64_t step = (uint64_t)1 << (e - QHIST_SUB_BITS);
    return ((uint64_t)1 << e) + (sub + 1) * step - 1;
}

/* qhist_observe - see qhist.h. */
void qhist_observe(struct qhist *h, uint64_t us)
{
    h->n[bucket_of(us)]++;
    h->count++;
    if (us > h->max_us)
        h->max_us = us;
}

/* qhist_quantile_us - see qhist.h. */
uint64_t qhist_quantile_us(const struct qhist *h, double q)
{
    if (!h->count)
        return 0;
    double want = ceil(q * (double)h->count);
    uint64_t rank = want < 1 ? 1 : (uint64_t)want, seen = 0;
    for (unsigned i = 0; i < QHIST_BUCKETS; i++) {
        seen += h->n[i];
        if (seen >= rank) {
            uint64_t top = i == QHIST_BUCKETS - 1 ? UINT64_MAX : bucket_top(i);
            return top < h->max_us ? top : h->max_us; /* the last bucket is open */
        }
    }
    return h->max_us;
}
