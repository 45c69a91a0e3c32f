/* mhist.c - the metrics latency histogram (mhist.h): the bucket bound
 * table, observation by the one writer thread, relaxed reads by the
 * metrics thread. */
#include "mhist.h"

#include <time.h>

#include "util.h"

/* Upper bounds in microseconds: 100 us .. 1 h, about 2.5x apart. */
static const uint64_t bounds_us[MHIST_BOUNDS] = {
    100,    250,    500,     1000,    2500,    5000,     10000,    25000,    50000,     100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000, 300000000, 3600000000,
};
_Static_assert(MX_ARRAY_LEN(bounds_us) == MHIST_BOUNDS, "a bound per finite bucket");
_Static_assert(sizeof(struct mhist) % sizeof(uint64_t) == 0, "uint64_t fields only");

uint64_t mhist_bound_us(unsigned i)
{
    return i < MHIST_BOUNDS ? bounds_us[i] : UINT64_MAX;
}

/* bump - one writer: a relaxed load and store, read by others with relaxed
 * loads (mhist_add). */
static void bump(uint64_t *ctr, uint64_t n)
{
    __atomic_store_n(ctr, __atomic_load_n(ctr, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

void mhist_observe(struct mhist *h, uint64_t us)
{
    unsigned i = 0;
    while (i < MHIST_BOUNDS && us > bounds_us[i])
        i++;
    bump(&h->bucket[i], 1);
    bump(&h->sum_us, us);
}

void mhist_add(struct mhist *sum, const struct mhist *h)
{
    for (unsigned i = 0; i <= MHIST_BOUNDS; i++)
        sum->bucket[i] += __atomic_load_n(&h->bucket[i], __ATOMIC_RELAXED);
    sum->sum_us += __atomic_load_n(&h->sum_us, __ATOMIC_RELAXED);
}

uint64_t mhist_count(const struct mhist *h)
{
    uint64_t n = 0;
    for (unsigned i = 0; i <= MHIST_BOUNDS; i++)
        n += h->bucket[i];
    return n;
}

uint64_t mhist_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
