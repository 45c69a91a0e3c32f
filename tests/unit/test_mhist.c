/* test_mhist.c - the metrics latency histogram: bucket choice at the
 * bounds, the sum, the derived count, summing with mhist_add. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mhist.h"

/* test_mhist_bounds - a value equal to a bound is in that bucket (le), one
 * above it in the next; past the last bound it is +Inf. */
static void test_mhist_bounds(void **state)
{
    (void)state;
    struct mhist h;
    memset(&h, 0, sizeof(h));
    mhist_observe(&h, 0);
    mhist_observe(&h, 100);
    mhist_observe(&h, 101);
    mhist_observe(&h, mhist_bound_us(MHIST_BOUNDS - 1));
    mhist_observe(&h, mhist_bound_us(MHIST_BOUNDS - 1) + 1);
    assert_int_equal(h.bucket[0], 2);
    assert_int_equal(h.bucket[1], 1);
    assert_int_equal(h.bucket[MHIST_BOUNDS - 1], 1);
    assert_int_equal(h.bucket[MHIST_BOUNDS], 1);
    assert_int_equal(mhist_count(&h), 5);
    assert_int_equal(h.sum_us, 201 + 2 * mhist_bound_us(MHIST_BOUNDS - 1) + 1);
    for (unsigned i = 1; i < MHIST_BOUNDS; i++)
        assert_true(mhist_bound_us(i) > mhist_bound_us(i - 1));
}

/* test_mhist_add - sums bucket by bucket. */
static void test_mhist_add(void **state)
{
    (void)state;
    struct mhist a, b, sum;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&sum, 0, sizeof(sum));
    mhist_observe(&a, 300);
    mhist_observe(&b, 300);
    mhist_observe(&b, 7000000);
    mhist_add(&sum, &a);
    mhist_add(&sum, &b);
    assert_int_equal(sum.bucket[2], 2); /* 300 us: le 0.0005 */
    assert_int_equal(mhist_count(&sum), 3);
    assert_int_equal(sum.sum_us, 7000600);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mhist_bounds),
        cmocka_unit_test(test_mhist_add),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
