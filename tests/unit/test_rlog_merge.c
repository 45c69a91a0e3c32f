/* test_rlog_merge.c - the receivelog flusher with a fake clock, driven by
 * rlog_flush_now: merge order across rings, the watermark holding back a
 * busy ring, the midnight split, zero mode, the folder switch, the folder
 * name option (deliverylog), unwritable
 * files (drop oldest, report), the line cap and rlog_stop draining.
 * Description: single-threaded, TZ=UTC, temp folders under /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "rlog_int.h"
#include "test_rlog_util.h"

#define HOST "mx.test"

struct fx {
    char *wd;
    char *top;
    struct fake_clock clk;
    struct rlog *l;
};

/* fx_open - work folder (with receivelog/ when on), fake clock at t0. */
static struct fx *fx_open(bool on, bool zero, unsigned nrings, uint64_t t0)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->wd = t_mkdtemp();
    f->top = t_path("%s/%s", f->wd, "receivelog");
    if (on)
        assert_int_equal(mkdir(f->top, 0755), 0);
    fake_clock_set(&f->clk, t0);
    struct rlog_opts o = {.workdir = f->wd,
                          .host = HOST,
                          .nrings = nrings,
                          .ring_bytes = 1u << 16,
                          .zero_internal_id = zero,
                          .clock = fake_clock_read,
                          .clock_arg = &f->clk};
    f->l = rlog_create(&o);
    assert_non_null(f->l);
    return f;
}

/* fx_close - destroy the log and the folder. */
static void fx_close(struct fx *f)
{
    rlog_stop(f->l);
    rlog_destroy(f->l);
    t_rmrf(f->wd);
    free(f->top);
    free(f->wd);
    free(f);
}

/* fx_day - contents of the day file (yyyymmdd), or NULL. */
static char *fx_day(struct fx *f, const char *day)
{
    char *p = t_path("%s/" HOST "/%s.log", f->top, day);
    char *s = t_read(p, NULL);
    free(p);
    return s;
}

/* put_at - set the clock, log text on ring i. */
static void put_at(struct fx *f, unsigned i, uint64_t ns, uint32_t sid, const char *text)
{
    fake_clock_set(&f->clk, ns);
    rlog_put(rlog_ring(f->l, i), sid, RLOG_DIALOG, text, strlen(text));
}

/* test_rlog_merge_interleave - lines from three rings come out in time
 * order, whatever ring order they were produced in. */
static void test_rlog_merge_interleave(void **state)
{
    (void)state;
    uint64_t t = t_utc(2024, 3, 9, 10, 0, 0);
    struct fx *f = fx_open(true, false, 3, t);
    put_at(f, 2, t + 1 * T_NS, 3, "c1");
    put_at(f, 0, t + 2 * T_NS, 1, "a1");
    put_at(f, 1, t + 3 * T_NS, 2, "b1");
    put_at(f, 0, t + 4 * T_NS, 1, "a2");
    put_at(f, 0, t + 5 * T_NS, 1, "a3");
    put_at(f, 2, t + 6 * T_NS, 3, "c2");
    put_at(f, 1, t + 6 * T_NS, 2, "b2");
    assert_int_equal(rlog_flush_now(f->l), 0);
    char *s = fx_day(f, "20240309");
    assert_non_null(s);
    assert_string_equal(s, " [09/Mar/2024:10:00:01], 00000003, c1\n"
                           " [09/Mar/2024:10:00:02], 00000001, a1\n"
                           " [09/Mar/2024:10:00:03], 00000002, b1\n"
                           " [09/Mar/2024:10:00:04], 00000001, a2\n"
                           " [09/Mar/2024:10:00:05], 00000001, a3\n"
                           " [09/Mar/2024:10:00:06], 00000002, b2\n" /* ties: lower ring first */
                           " [09/Mar/2024:10:00:06], 00000003, c2\n");
    free(s);
    struct rlog_stats st;
    rlog_get_stats(f->l, &st);
    assert_int_equal(st.lines_written, 7);
    assert_int_equal(st.lines_dropped, 0);
    fx_close(f);
}

/* test_rlog_merge_watermark_busy - a ring that is inside a put (busy, its
 * line not yet committed) holds back later lines of the other rings. */
static void test_rlog_merge_watermark_busy(void **state)
{
    (void)state;
    uint64_t t = t_utc(2024, 3, 9, 10, 0, 0);
    struct fx *f = fx_open(true, false, 2, t);
    struct rlog_ring *r1 = rlog_ring(f->l, 1);
    put_at(f, 1, t + 1 * T_NS, 2, "b1");
    put_at(f, 0, t + 2 * T_NS, 1, "a1");
    rlog_flush_now(f->l);
    /* ring 1 starts a put: busy set, clock read at t+5, commit pending */
    atomic_store(&r1->busy, 1);
    put_at(f, 0, t + 6 * T_NS, 1, "a2");
    put_at(f, 0, t + 7 * T_NS, 1, "a3");
    rlog_flush_now(f->l);
    char *s = fx_day(f, "20240309");
    assert_string_equal(s, " [09/Mar/2024:10:00:01], 00000002, b1\n"
                           " [09/Mar/2024:10:00:02], 00000001, a1\n");
    free(s);
    /* ring 1 commits its line stamped t+5 (the clock it read) */
    atomic_store(&r1->busy, 0);
    put_at(f, 1, t + 5 * T_NS, 2, "b2");
    fake_clock_set(&f->clk, t + 8 * T_NS);
    rlog_flush_now(f->l);
    s = fx_day(f, "20240309");
    assert_string_equal(s, " [09/Mar/2024:10:00:01], 00000002, b1\n"
                           " [09/Mar/2024:10:00:02], 00000001, a1\n"
                           " [09/Mar/2024:10:00:05], 00000002, b2\n"
                           " [09/Mar/2024:10:00:06], 00000001, a2\n"
                           " [09/Mar/2024:10:00:07], 00000001, a3\n");
    free(s);
    fx_close(f);
}

/* test_rlog_merge_ring_clamp - a ring's time stamps never go backwards even
 * if its clock does. */
static void test_rlog_merge_ring_clamp(void **state)
{
    (void)state;
    uint64_t t = t_utc(2024, 3, 9, 10, 0, 0);
    struct fx *f = fx_open(true, false, 1, t);
    put_at(f, 0, t + 5 * T_NS, 1, "late");
    put_at(f, 0, t + 2 * T_NS, 1, "clock went back");
    rlog_stop(f->l);
    char *s = fx_day(f, "20240309");
    assert_string_equal(s, " [09/Mar/2024:10:00:05], 00000001, late\n"
                           " [09/Mar/2024:10:00:05], 00000001, clock went back\n");
    free(s);
    fx_close(f);
}

/* test_rlog_merge_midnight - lines go to the file of their own date, even
 * when written after midnight. */
static void test_rlog_merge_midnight(void **state)
{
    (void)state;
    uint64_t mid = t_utc(2024, 3, 10, 0, 0, 0);
    struct fx *f = fx_open(true, false, 2, mid - 2 * T_NS);
    put_at(f, 0, mid - 1 * T_NS, 1, "before");
    put_at(f, 1, mid - 1, 2, "last ns");
    put_at(f, 0, mid, 1, "after");
    put_at(f, 1, mid + 3 * T_NS, 2, "later");
    fake_clock_set(&f->clk, mid + 4 * T_NS);
    rlog_flush_now(f->l);
    char *a = fx_day(f, "20240309"), *b = fx_day(f, "20240310");
    assert_string_equal(a, " [09/Mar/2024:23:59:59], 00000001, before\n"
                           " [09/Mar/2024:23:59:59], 00000002, last ns\n");
    assert_string_equal(b, " [10/Mar/2024:00:00:00], 00000001, after\n"
                           " [10/Mar/2024:00:00:03], 00000002, later\n");
    free(a);
    free(b);
    fx_close(f);
}

/* test_rlog_merge_zero_mode - internal lines carry 00000000 in zero mode and
 * the session id otherwise; dialog lines always carry it. */
static void test_rlog_merge_zero_mode(void **state)
{
    (void)state;
    uint64_t t = t_utc(2017, 11, 30, 8, 20, 49);
    for (int zero = 0; zero <= 1; zero++) {
        struct fx *f = fx_open(true, zero, 1, t);
        struct rlog_ring *r = rlog_ring(f->l, 0);
        rlog_put(r, 0x145008, RLOG_DIALOG, "mail from: <a@b>", 16);
        rlog_putf(r, 0x145008, RLOG_INTERNAL, "Check MAIL FROM address = %s", "<a@b>");
        rlog_put2(r, 0x145008, RLOG_DIALOG, "250 ", 4, "<a@b>... Sender ok.", 19);
        rlog_flush_now(f->l);
        char *s = fx_day(f, "20171130");
        assert_string_equal(
            s, zero ? " [30/Nov/2017:08:20:49], 00145008, mail from: <a@b>\n"
                      " [30/Nov/2017:08:20:49], 00000000, Check MAIL FROM address = <a@b>\n"
                      " [30/Nov/2017:08:20:49], 00145008, 250 <a@b>... Sender ok.\n"
                    : " [30/Nov/2017:08:20:49], 00145008, mail from: <a@b>\n"
                      " [30/Nov/2017:08:20:49], 00145008, Check MAIL FROM address = <a@b>\n"
                      " [30/Nov/2017:08:20:49], 00145008, 250 <a@b>... Sender ok.\n");
        free(s);
        fx_close(f);
    }
}

/* test_rlog_merge_switch - no folder: off, nothing written, receivelog/ not
 * created; folder created: on; folder renamed away: off again. */
static void test_rlog_merge_switch(void **state)
{
    (void)state;
    uint64_t t = t_utc(2024, 3, 9, 10, 0, 0);
    struct fx *f = fx_open(false, false, 1, t);
    struct rlog_ring *r = rlog_ring(f->l, 0);
    assert_false(rlog_on(r));
    rlog_put(r, 1, RLOG_DIALOG, "lost", 4);
    rlog_flush_now(f->l);
    assert_false(t_exists(f->top));
    assert_int_equal(atomic_load(&r->head), 0); /* not even formatted */
    assert_int_equal(mkdir(f->top, 0755), 0);
    rlog_flush_now(f->l);
    assert_true(rlog_on(r));
    rlog_put(r, 1, RLOG_DIALOG, "kept", 4);
    rlog_flush_now(f->l);
    char *s = fx_day(f, "20240309");
    assert_string_equal(s, " [09/Mar/2024:10:00:00], 00000001, kept\n");
    free(s);
    char *away = t_path("%s/%s", f->wd, "receivelog.off");
    assert_int_equal(rename(f->top, away), 0);
    rlog_flush_now(f->l);
    assert_false(rlog_on(r));
    rlog_put(r, 1, RLOG_DIALOG, "lost again", 10);
    rlog_flush_now(f->l);
    assert_false(t_exists(f->top));
    free(away);
    fx_close(f);
}

/* test_rlog_merge_folder - a log made with folder "deliverylog" is switched
 * by <workdir>/deliverylog and writes <workdir>/deliverylog/<host>/<day>.log
 * in the same line format; receivelog/ existing does not switch it on. */
static void test_rlog_merge_folder(void **state)
{
    (void)state;
    struct fake_clock clk;
    fake_clock_set(&clk, t_utc(2024, 3, 9, 10, 0, 0));
    char *wd = t_mkdtemp();
    char *rtop = t_path("%s/%s", wd, "receivelog");
    char *dtop = t_path("%s/%s", wd, "deliverylog");
    assert_int_equal(mkdir(rtop, 0755), 0);
    struct rlog_opts o = {.workdir = wd,
                          .folder = "deliverylog",
                          .host = HOST,
                          .nrings = 1,
                          .ring_bytes = 1u << 16,
                          .clock = fake_clock_read,
                          .clock_arg = &clk};
    struct rlog *l = rlog_create(&o);
    assert_non_null(l);
    struct rlog_ring *r = rlog_ring(l, 0);
    assert_false(rlog_on(r));
    assert_int_equal(mkdir(dtop, 0755), 0);
    rlog_flush_now(l);
    assert_true(rlog_on(r));
    rlog_put(r, 0x2a, RLOG_DIALOG, "queue id 1 sent", 15);
    rlog_flush_now(l);
    char *p = t_path("%s/" HOST "/%s.log", dtop, "20240309");
    char *s = t_read(p, NULL);
    assert_non_null(s);
    assert_string_equal(s, " [09/Mar/2024:10:00:00], 0000002A, queue id 1 sent\n");
    char *rp = t_path("%s/" HOST "/%s.log", rtop, "20240309");
    assert_false(t_exists(rp));
    o.folder = "a/b";
    assert_null(rlog_create(&o));
    rlog_stop(l);
    rlog_destroy(l);
    t_rmrf(wd);
    free(s);
    free(p);
    free(rp);
    free(rtop);
    free(dtop);
    free(wd);
}

/* test_rlog_merge_cap_and_escape - a hostile line through the whole log:
 * escaped, capped at 2048 bytes with "...", one line in the file. */
static void test_rlog_merge_cap_and_escape(void **state)
{
    (void)state;
    uint64_t t = t_utc(2024, 3, 9, 10, 0, 0);
    struct fx *f = fx_open(true, false, 1, t);
    static char big[5000];
    memset(big, 'A', sizeof(big));
    big[10] = '\n';
    rlog_put(rlog_ring(f->l, 0), 7, RLOG_DIALOG, big, sizeof(big));
    rlog_put(rlog_ring(f->l, 0), 7, RLOG_DIALOG, "a\\b\r\n", 5);
    rlog_flush_now(f->l);
    char *s = fx_day(f, "20240309");
    assert_int_equal(t_count_lines(s), 2);
    char *nl = strchr(s, '\n');
    assert_int_equal(nl - s, 35 + RLOG_LINE_MAX);
    assert_memory_equal(s + 35, "AAAAAAAAAA\\x0AAAA", 17);
    assert_memory_equal(nl - 3, "...", 3);
    assert_string_equal(nl + 1, " [09/Mar/2024:10:00:00], 00000007, a\\x5Cb\\x0D\\x0A\n");
    free(s);
    fx_close(f);
}

/* test_rlog_merge_unwritable - while the day file cannot be written the
 * oldest lines beyond the pending limit are dropped and counted; once it
 * works again the newest lines and one "lines lost" line are written. */
static void test_rlog_merge_unwritable(void **state)
{
    (void)state;
    uint64_t t = t_utc(2024, 3, 9, 10, 0, 0);
    struct fx *f = fx_open(true, false, 1, t);
    char *host = t_path("%s/%s", f->top, HOST);
    char *day = t_path("%s/%s", host, "20240309.log");
    assert_int_equal(mkdir(host, 0755), 0);
    assert_int_equal(symlink("/dev/full", day), 0);
    rlog_set_pending_limit(f->l, 4096);
    char line[64];
    for (int i = 0; i < 200; i++) {
        int n = snprintf(line, sizeof(line), "line %03d", i);
        rlog_put(rlog_ring(f->l, 0), 1, RLOG_DIALOG, line, (size_t)n);
    }
    rlog_flush_now(f->l);
    rlog_flush_now(f->l);
    struct rlog_stats st;
    rlog_get_stats(f->l, &st);
    assert_true(st.write_errors >= 2);
    assert_true(st.lines_dropped > 100);
    assert_int_equal(st.lines_written, 0);
    uint64_t dropped = st.lines_dropped;
    assert_int_equal(unlink(day), 0);
    rlog_flush_now(f->l);
    char *s = fx_day(f, "20240309");
    assert_non_null(s);
    rlog_get_stats(f->l, &st);
    assert_int_equal(st.lines_dropped, dropped);
    assert_int_equal(t_count_lines(s), 200 - dropped + 1);
    snprintf(line, sizeof(line), "00000001, line %03d\n", (int)dropped);
    assert_non_null(strstr(s, line));
    char lost[128];
    snprintf(lost, sizeof(lost),
             "line 199\n [09/Mar/2024:10:00:00], 00000000, receivelog: %llu "
             "lines lost (write error: No space left on device)\n",
             (unsigned long long)dropped);
    assert_non_null(strstr(s, lost));
    assert_int_equal(strlen(strstr(s, lost)), strlen(lost));
    free(s);
    free(day);
    free(host);
    fx_close(f);
}

/* test_rlog_merge_stop_drains - rlog_stop writes lines still held back by
 * the watermark (workers have stopped). */
static void test_rlog_merge_stop_drains(void **state)
{
    (void)state;
    uint64_t t = t_utc(2024, 3, 9, 10, 0, 0);
    struct fx *f = fx_open(true, false, 2, t);
    atomic_store(&rlog_ring(f->l, 1)->busy, 1);
    put_at(f, 0, t + T_NS, 1, "held");
    rlog_flush_now(f->l);
    assert_null(fx_day(f, "20240309"));
    atomic_store(&rlog_ring(f->l, 1)->busy, 0);
    rlog_stop(f->l);
    char *s = fx_day(f, "20240309");
    assert_string_equal(s, " [09/Mar/2024:10:00:01], 00000001, held\n");
    free(s);
    fx_close(f);
}

int main(void)
{
    t_use_utc();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rlog_merge_interleave),
        cmocka_unit_test(test_rlog_merge_watermark_busy),
        cmocka_unit_test(test_rlog_merge_ring_clamp),
        cmocka_unit_test(test_rlog_merge_midnight),
        cmocka_unit_test(test_rlog_merge_zero_mode),
        cmocka_unit_test(test_rlog_merge_switch),
        cmocka_unit_test(test_rlog_merge_folder),
        cmocka_unit_test(test_rlog_merge_cap_and_escape),
        cmocka_unit_test(test_rlog_merge_unwritable),
        cmocka_unit_test(test_rlog_merge_stop_drains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
