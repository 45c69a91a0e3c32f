/* test_mxbench_sched.c - mxbench's open-loop schedule (uniform and Poisson
 * arrivals, split over threads, ramp phases), the --ramp / --mix /
 * --corpus-mix parsers and the weighted picker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mxbench_sched.h"

/* count_all - every time of one thread's schedule into out (cap); count. */
static size_t count_all(struct mxb_sched *s, double *out, size_t cap)
{
    size_t n = 0;
    double at, last = -1;
    while (mxb_sched_next(s, &at)) {
        assert_true(at >= last);
        last = at;
        if (n < cap && out)
            out[n] = at;
        n++;
    }
    return n;
}

static void test_mxbench_sched_uniform_exact(void **state)
{
    (void)state;
    struct mxb_phase ph[] = {{500, 5}};
    struct mxb_sched s;
    mxb_sched_init(&s, ph, 1, MXB_ARRIVAL_UNIFORM, 1, 0, 1);
    static double t[4000];
    assert_int_equal(count_all(&s, t, 4000), 2500);
    for (size_t i = 0; i < 2500; i++)
        assert_true(fabs(t[i] - (double)i / 500) < 1e-9);
    assert_true(t[2499] < 5);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_mxbench_sched_uniform_threads_interleave(void **state)
{
    (void)state;
    struct mxb_phase ph[] = {{300, 2}, {900, 1}};
    static double one[3000], all[3000];
    struct mxb_sched s;
    mxb_sched_init(&s, ph, 2, MXB_ARRIVAL_UNIFORM, 1, 0, 1);
    size_t n1 = count_all(&s, one, 3000);
    assert_int_equal(n1, 600 + 900);
    size_t n = 0;
    for (unsigned k = 0; k < 4; k++) {
        mxb_sched_init(&s, ph, 2, MXB_ARRIVAL_UNIFORM, 1, k, 4);
        n += count_all(&s, all + n, 3000 - n);
    }
    assert_int_equal(n, n1);
    qsort(all, n, sizeof all[0], cmp_double);
    for (size_t i = 0; i < n; i++)
        assert_true(fabs(all[i] - one[i]) < 1e-9);
}

static void test_mxbench_sched_poisson_rate(void **state)
{
    (void)state;
    struct mxb_phase ph[] = {{1000, 20}};
    struct mxb_sched s;
    size_t total = 0;
    double gaps = 0, sq = 0, last = 0, at;
    for (unsigned k = 0; k < 2; k++) {
        mxb_sched_init(&s, ph, 1, MXB_ARRIVAL_POISSON, 42, k, 2);
        last = 0;
        while (mxb_sched_next(&s, &at)) {
            double g = at - last;
            gaps += g;
            sq += g * g;
            last = at;
            total++;
            assert_true(at < 20);
        }
    }
    /* 20000 expected; the standard deviation is sqrt(20000) = 141. */
    assert_true(total > 20000 - 600 && total < 20000 + 600);
    double mean = gaps / (double)total; /* per thread: 1 / 500 s */
    double var = sq / (double)total - mean * mean;
    assert_true(fabs(mean - 0.002) < 0.0001);
    assert_true(fabs(sqrt(var) - mean) < 0.0002); /* exponential: sd == mean */
    struct mxb_sched a, b;
    mxb_sched_init(&a, ph, 1, MXB_ARRIVAL_POISSON, 7, 0, 1);
    mxb_sched_init(&b, ph, 1, MXB_ARRIVAL_POISSON, 7, 0, 1);
    double x, y;
    for (int i = 0; i < 100; i++) {
        assert_true(mxb_sched_next(&a, &x) && mxb_sched_next(&b, &y));
        assert_true(x == y);
    }
}

static void test_mxbench_sched_ramp_phases(void **state)
{
    (void)state;
    struct mxb_phase ph[MXB_PHASES_MAX];
    char err[128];
    assert_int_equal(mxb_ramp_parse("100:2,0:1,300:1.5", ph, MXB_PHASES_MAX, err, sizeof err), 3);
    assert_true(ph[2].rate == 300 && ph[2].secs == 1.5);
    struct mxb_sched s;
    mxb_sched_init(&s, ph, 3, MXB_ARRIVAL_UNIFORM, 1, 0, 1);
    size_t in[3] = {0};
    double at;
    while (mxb_sched_next(&s, &at))
        in[at < 2 ? 0 : at < 3 ? 1 : 2]++;
    assert_int_equal(in[0], 200);
    assert_int_equal(in[1], 0);
    assert_int_equal(in[2], 450);
    assert_true(mxb_sched_rate(ph, 3, 0.5) == 100);
    assert_true(mxb_sched_rate(ph, 3, 2.5) == 0);
    assert_true(mxb_sched_rate(ph, 3, 4.4) == 300);
    assert_true(mxb_sched_rate(ph, 3, 4.5) == 0);
    assert_true(mxb_sched_total(ph, 3) == 4.5);
}

static void test_mxbench_sched_ramp_parse_rejects(void **state)
{
    (void)state;
    struct mxb_phase ph[4];
    char err[128];
    const char *bad[] = {"",
                         "100",
                         "100:",
                         "100:0",
                         "a:1",
                         "100:1,",
                         "0:5,0:1",
                         "-1:5",
                         "1e3:5",
                         "100:1;200:1",
                         "100:1,200:1,300:1,400:1,500:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        assert_int_equal(mxb_ramp_parse(bad[i], ph, 4, err, sizeof err), -1);
        assert_true(err[0] != 0);
    }
    assert_int_equal(mxb_ramp_parse("0:5,10:1", ph, 4, err, sizeof err), 2);
}

static void test_mxbench_sched_weights_parse(void **state)
{
    (void)state;
    struct mxb_weight w[MXB_WEIGHTS_MAX];
    char err[128];
    assert_int_equal(
        mxb_weights_parse("plain:70,starttls:20,auth:10", w, MXB_WEIGHTS_MAX, err, sizeof err), 3);
    assert_string_equal(w[1].key, "starttls");
    assert_int_equal(w[2].weight, 10);
    assert_int_equal(mxb_weights_parse("10k:0,1m:3", w, MXB_WEIGHTS_MAX, err, sizeof err), 2);
    const char *bad[] = {"",        "plain", "plain:", "plain:x",  "plain:1.5", "plain:0",
                         "a:1,a:2", ":5",    "a b:1",  "plain:1,", "p:2000000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(mxb_weights_parse(bad[i], w, MXB_WEIGHTS_MAX, err, sizeof err), -1);
    assert_int_equal(mxb_weights_parse("a:1,b:1,c:1", w, 2, err, sizeof err), -1);
}

static void test_mxbench_sched_size_parse(void **state)
{
    (void)state;
    uint64_t v;
    assert_true(mxb_size_parse("4096", &v) && v == 4096);
    assert_true(mxb_size_parse("10k", &v) && v == 10240);
    assert_true(mxb_size_parse("2M", &v) && v == 2u << 20);
    assert_false(mxb_size_parse("k", &v));
    assert_false(mxb_size_parse("10kb", &v));
    assert_false(mxb_size_parse("-1", &v));
    assert_false(mxb_size_parse("99999999999999999999", &v));
}

static void test_mxbench_sched_wrr_exact_fractions(void **state)
{
    (void)state;
    const unsigned w[] = {70, 20, 10, 0};
    struct mxb_wrr r;
    mxb_wrr_init(&r, w, 4, 0);
    unsigned seen[4] = {0};
    for (unsigned i = 1; i <= 1000; i++) {
        seen[mxb_wrr_next(&r)]++;
        for (unsigned k = 0; k < 3; k++) /* within one pick of the ideal at any time */
            assert_true(fabs((double)seen[k] - (double)i * w[k] / 100) <= 1.0);
    }
    assert_int_equal(seen[0], 700);
    assert_int_equal(seen[1], 200);
    assert_int_equal(seen[2], 100);
    assert_int_equal(seen[3], 0);
    mxb_wrr_init(&r, w, 4, 37); /* a skewed start keeps the fractions */
    memset(seen, 0, sizeof seen);
    for (unsigned i = 0; i < 100; i++)
        seen[mxb_wrr_next(&r)]++;
    assert_int_equal(seen[0], 70);
    assert_int_equal(seen[3], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mxbench_sched_uniform_exact),
        cmocka_unit_test(test_mxbench_sched_uniform_threads_interleave),
        cmocka_unit_test(test_mxbench_sched_poisson_rate),
        cmocka_unit_test(test_mxbench_sched_ramp_phases),
        cmocka_unit_test(test_mxbench_sched_ramp_parse_rejects),
        cmocka_unit_test(test_mxbench_sched_weights_parse),
        cmocka_unit_test(test_mxbench_sched_size_parse),
        cmocka_unit_test(test_mxbench_sched_wrr_exact_fractions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
