/* test_qhist.c - the log-linear percentile histogram: exact below 64 us,
 * within 1/32 above, quantile ranks, max exact and capping the answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "qhist.h"

static struct qhist g_h;

/* test_qhist_empty - no observation: every quantile is 0. */
static void test_qhist_empty(void **state)
{
    (void)state;
    memset(&g_h, 0, sizeof(g_h));
    assert_int_equal(qhist_quantile_us(&g_h, 0.5), 0);
    assert_int_equal(qhist_quantile_us(&g_h, 1.0), 0);
}

/* test_qhist_ranks - 1..100 us: p50 is 50, p99 is 99 (exact in the linear
 * part, within 1/32 above it), p100 is the max. */
static void test_qhist_ranks(void **state)
{
    (void)state;
    memset(&g_h, 0, sizeof(g_h));
    for (uint64_t v = 100; v >= 1; v--)
        qhist_observe(&g_h, v);
    assert_int_equal(g_h.count, 100);
    assert_int_equal(qhist_quantile_us(&g_h, 0.5), 50);
    uint64_t p99 = qhist_quantile_us(&g_h, 0.99);
    assert_true(p99 >= 99 && p99 <= 100);
    assert_int_equal(qhist_quantile_us(&g_h, 1.0), 100);
}

/* test_qhist_relative_error - every value is answered by a bound at or
 * above it and within 1/32 of it, never above the max. */
static void test_qhist_relative_error(void **state)
{
    (void)state;
    for (uint64_t v = 1; v < ((uint64_t)1 << 40); v = v * 3 + 7) {
        memset(&g_h, 0, sizeof(g_h));
        qhist_observe(&g_h, v);
        qhist_observe(&g_h, v * 4); /* max above, so the bound is not capped */
        uint64_t q = qhist_quantile_us(&g_h, 0.5);
        assert_true(q >= v);
        assert_true(q - v <= v / 32 + 1);
    }
}

/* test_qhist_tail - 990 fast and 10 slow: p99 is fast, p99.9 slow, and a
 * huge value lands in the last bucket with the max exact. */
static void test_qhist_tail(void **state)
{
    (void)state;
    memset(&g_h, 0, sizeof(g_h));
    for (int i = 0; i < 990; i++)
        qhist_observe(&g_h, 2000);
    for (int i = 0; i < 10; i++)
        qhist_observe(&g_h, 150000);
    uint64_t p99 = qhist_quantile_us(&g_h, 0.99);
    assert_true(p99 >= 2000 && p99 < 2100);
    uint64_t p999 = qhist_quantile_us(&g_h, 0.999);
    assert_true(p999 >= 150000 && p999 <= 150000);
    qhist_observe(&g_h, UINT64_MAX / 2);
    assert_int_equal(g_h.n[QHIST_BUCKETS - 1], 1);
    assert_int_equal(g_h.max_us, UINT64_MAX / 2);
    assert_int_equal(qhist_quantile_us(&g_h, 1.0), UINT64_MAX / 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qhist_empty),
        cmocka_unit_test(test_qhist_ranks),
        cmocka_unit_test(test_qhist_relative_error),
        cmocka_unit_test(test_qhist_tail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
