/* test_mxlog_sid.c - session ids across restarts (issue 13): the id base of
 * a process is the local seconds since midnight x RLOG_SID_PER_SEC, so a
 * later start the same day numbers above an earlier one, and the base of
 * the day's last second still leaves room below 2^32.
 * Description: pure function, TZ=UTC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <cmocka.h>

#include "rlog.h"

#define DAY0 1795996800LL /* 2026-12-01 00:00:00 UTC */

/* test_mxlog_sid_base_midnight - a start at midnight numbers from 1. */
static void test_mxlog_sid_base_midnight(void **state)
{
    (void)state;
    assert_int_equal(rlog_sid_base(DAY0), 0);
    assert_int_equal(rlog_sid_base(DAY0 + 86400), 0);
}

/* test_mxlog_sid_base_later_start_is_higher - a restart one second later
 * starts RLOG_SID_PER_SEC ids higher, whatever the time of day. */
static void test_mxlog_sid_base_later_start_is_higher(void **state)
{
    (void)state;
    for (int64_t t = DAY0; t < DAY0 + 86399; t += 997) {
        uint32_t a = rlog_sid_base(t), b = rlog_sid_base(t + 1);
        assert_true(b > a);
        assert_int_equal(b - a, RLOG_SID_PER_SEC);
        assert_int_equal(a, (uint32_t)(t - DAY0) * RLOG_SID_PER_SEC);
    }
}

/* test_mxlog_sid_base_last_second_fits - 23:59:59 does not wrap, and the
 * ids left above it are at least one second's worth. */
static void test_mxlog_sid_base_last_second_fits(void **state)
{
    (void)state;
    uint32_t b = rlog_sid_base(DAY0 + 86399);
    assert_int_equal(b, 86399u * RLOG_SID_PER_SEC);
    assert_true(UINT32_MAX - b >= RLOG_SID_PER_SEC);
    assert_true(b > rlog_sid_base(DAY0 + 86398));
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mxlog_sid_base_midnight),
        cmocka_unit_test(test_mxlog_sid_base_later_start_is_higher),
        cmocka_unit_test(test_mxlog_sid_base_last_second_fits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
