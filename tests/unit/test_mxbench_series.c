/* test_mxbench_series.c - mxbench's --json-series writer (seconds written
 * in order once every running thread has handed them in; a thread that
 * left holds nothing up; the summary line with its percentile table) and
 * the plot reading it back into two SVG charts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mxbench_plot.h"
#include "mxbench_series.h"

static struct mxb_sec sec;

/* one_sec - a second with n accepted messages of latency lat_us. */
static const struct mxb_sec *one_sec(uint64_t n, uint64_t lat_us)
{
    memset(&sec.c, 0, sizeof sec.c);
    mxb_hist_init(&sec.lat_ns);
    sec.c.messages = sec.c.sent = n;
    sec.open = 2;
    for (uint64_t i = 0; i < n; i++)
        mxb_hist_record(&sec.lat_ns, lat_us * 1000);
    return &sec;
}

/* lines - the file's lines (at most cap) into out; the count. */
static int lines(const char *path, char out[][4096], int cap)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = 0;
    while (n < cap && fgets(out[n], 4096, f))
        n++;
    fclose(f);
    return n;
}

static void test_mxbench_series_order_and_leave(void **state)
{
    (void)state;
    char path[] = "/tmp/test_mxbench_series_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct mxb_phase ph[] = {{100, 10}};
    struct mxb_series *s = mxb_series_open(path, 2, ph, 1);
    assert_non_null(s);
    mxb_series_publish(s, 0, one_sec(10, 100)); /* thread B, seconds 0 and 1 */
    mxb_series_publish(s, 1, one_sec(20, 200));
    static char l[8][4096];
    assert_int_equal(lines(path, l, 8), 0);    /* A has handed in nothing */
    mxb_series_publish(s, 0, one_sec(5, 300)); /* thread A */
    mxb_series_leave(s, 1);                    /* B is done after second 1 */
    mxb_series_publish(s, 1, one_sec(1, 400));
    mxb_series_publish(s, 2, one_sec(7, 500)); /* only A is left */
    assert_int_equal(lines(path, l, 8), 3);    /* second 2 did not wait for B */
    static struct mxb_hist all;
    mxb_hist_init(&all);
    for (int i = 0; i < 1000; i++)
        mxb_hist_record(&all, (uint64_t)(i + 1) * 1000);
    assert_true(mxb_series_finish(s, "\"msgs_per_s\":14.3,\"messages\":43,\"p99_us\":990.0", &all));
    int n = lines(path, l, 8);
    assert_int_equal(n, 4);
    double v;
    for (int i = 0; i < 3; i++) {
        assert_true(mxb_json_num(l[i], "t", &v) && v == i);
        assert_true(mxb_json_num(l[i], "target_rate", &v) && v == 100);
    }
    assert_true(mxb_json_num(l[0], "accepted", &v) && v == 15);
    assert_true(mxb_json_num(l[0], "open", &v) && v == 4);
    assert_true(mxb_json_num(l[1], "accepted", &v) && v == 21);
    assert_true(mxb_json_num(l[2], "accepted", &v) && v == 7);
    assert_true(mxb_json_num(l[1], "max_us", &v) && v >= 400 && v <= 400 * 65 / 64.0);
    assert_non_null(strstr(l[3], "{\"type\":\"summary\",\"msgs_per_s\":14.3"));
    assert_non_null(strstr(l[3], "\"percentiles\":[[0.000000,"));
    assert_non_null(strstr(l[3], "[100,1000.0]]}"));

    FILE *in = fopen(path, "r");
    struct mxb_plot_data d = {0};
    assert_true(mxb_plot_read(in, &d));
    fclose(in);
    assert_int_equal(d.nsec, 3);
    assert_true(d.have_summary && d.messages == 43);
    assert_true(d.npct > 30); /* ticks up to 1 - 1/1000 plus the maximum */
    char *html = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&html, &len);
    mxb_plot_html(out, &d, "run<1>.json");
    fclose(out);
    int svgs = 0;
    for (const char *p = html; (p = strstr(p, "<svg ")) != NULL; p++)
        svgs++;
    assert_int_equal(svgs, 2);
    const char *series[] = {"target", "sent", "accepted", "p50", "p99", "p999", "latency"};
    for (size_t i = 0; i < sizeof series / sizeof series[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "data-series=\"%s\"", series[i]);
        assert_non_null(strstr(html, want));
    }
    assert_non_null(strstr(html, "run&lt;1&gt;.json"));
    assert_null(strstr(html, "nan"));
    assert_null(strstr(html, "inf"));
    assert_null(strstr(html, "<script"));
    free(html);
    mxb_plot_free(&d);
    unlink(path);
}

static void test_mxbench_series_json_num(void **state)
{
    (void)state;
    double v = -1;
    const char *line = "{\"t\":3,\"unsent\":9,\"sent\":12,\"handshake_p50_us\":1.0,\"p50_us\":2.5}";
    assert_true(mxb_json_num(line, "sent", &v) && v == 12);
    assert_true(mxb_json_num(line, "p50_us", &v) && v == 2.5);
    assert_false(mxb_json_num(line, "late", &v));
    assert_false(mxb_json_num("{\"t\":\"x\"}", "t", &v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mxbench_series_order_and_leave),
        cmocka_unit_test(test_mxbench_series_json_num),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
