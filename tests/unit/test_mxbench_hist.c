/* test_mxbench_hist.c - mxbench's log-linear latency histogram against
 * exact percentiles of known samples: every reported value is at or above
 * the exact one and within 1/64 of it; small values are exact; merging
 * equals recording everything in one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "mxbench_hist.h"

#define N 200000

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* exact - the nearest-rank percentile of a sorted sample. */
static uint64_t exact(const uint64_t *v, size_t n, double p)
{
    size_t rank = (size_t)ceil(p / 100 * (double)n);
    return v[(rank ? rank : 1) - 1];
}

/* check_sample - the histogram of v agrees with the exact percentiles. */
static void check_sample(uint64_t *v, size_t n)
{
    static struct mxb_hist h;
    mxb_hist_init(&h);
    for (size_t i = 0; i < n; i++)
        mxb_hist_record(&h, v[i]);
    qsort(v, n, sizeof *v, cmp_u64);
    const double ps[] = {1, 10, 50, 90, 99, 99.9, 99.99, 100};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        uint64_t want = exact(v, n, ps[i]), got = mxb_hist_percentile(&h, ps[i]);
        assert_true(got >= want);
        assert_true((double)(got - want) <= (double)want / 64);
    }
    assert_int_equal(h.count, n);
    assert_int_equal(h.min, v[0]);
    assert_int_equal(h.max, v[n - 1]);
}

/* lcg - a small deterministic generator. */
static uint64_t lcg(uint64_t *x)
{
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return *x >> 11;
}

static void test_mxbench_hist_uniform_sample(void **state)
{
    (void)state;
    static uint64_t v[N];
    for (size_t i = 0; i < N; i++)
        v[i] = (N - i) * 1000; /* 1 ms .. 200 s in ns, reversed */
    check_sample(v, N);
}

static void test_mxbench_hist_long_tail_sample(void **state)
{
    (void)state;
    static uint64_t v[N];
    uint64_t x = 1;
    for (size_t i = 0; i < N; i++) {
        double u = ((double)(lcg(&x) % 1000000) + 0.5) / 1e6;
        /* log-normal-ish body around 200 us, a stall of 300 ms for 1 % */
        v[i] = (uint64_t)(200000 * exp(1.5 * (u - 0.5) * 4));
        if (lcg(&x) % 100 == 0)
            v[i] = 300000000 + lcg(&x) % 1000000;
    }
    check_sample(v, N);
}

static void test_mxbench_hist_small_values_exact(void **state)
{
    (void)state;
    static struct mxb_hist h;
    mxb_hist_init(&h);
    for (uint64_t i = 1; i <= 100; i++)
        mxb_hist_record(&h, i);
    assert_int_equal(mxb_hist_percentile(&h, 50), 50);
    assert_int_equal(mxb_hist_percentile(&h, 99), 99);
    assert_int_equal(mxb_hist_percentile(&h, 100), 100);
    mxb_hist_init(&h);
    assert_int_equal(mxb_hist_percentile(&h, 99), 0);
    mxb_hist_record(&h, UINT64_MAX); /* clamped, not out of bounds */
    assert_int_equal(mxb_hist_percentile(&h, 100), (1ull << MXB_HIST_MAX_BITS) - 1);
}

static void test_mxbench_hist_merge_equals_one(void **state)
{
    (void)state;
    static struct mxb_hist a, b, all;
    mxb_hist_init(&a);
    mxb_hist_init(&b);
    mxb_hist_init(&all);
    uint64_t x = 9;
    for (int i = 0; i < 50000; i++) {
        uint64_t v = lcg(&x) % 100000000;
        mxb_hist_record(i % 3 ? &a : &b, v);
        mxb_hist_record(&all, v);
    }
    mxb_hist_merge(&a, &b);
    assert_int_equal(a.count, all.count);
    assert_int_equal(a.min, all.min);
    assert_int_equal(a.max, all.max);
    for (double p = 1; p <= 100; p += 0.5)
        assert_int_equal(mxb_hist_percentile(&a, p), mxb_hist_percentile(&all, p));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mxbench_hist_uniform_sample),
        cmocka_unit_test(test_mxbench_hist_long_tail_sample),
        cmocka_unit_test(test_mxbench_hist_small_values_exact),
        cmocka_unit_test(test_mxbench_hist_merge_equals_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
