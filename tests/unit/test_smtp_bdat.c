/* test_smtp_bdat.c - unit tests of core/smtp_bdat.c (the BDAT argument
 * parser, the chunk byte counter and the size check) and of the smtp_data
 * scanner's raw (BDAT) mode: binary-clean, no dot-unstuffing, no end of
 * data, the CRLF / NUL / 8-bit rules still applied across chunk ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_bdat.h"
#include "smtp_data.h"

/* parse - bdat_parse over a C string. */
static enum bdat_perr parse(const char *arg, uint64_t *size, bool *last)
{
    return bdat_parse(arg, strlen(arg), size, last);
}

static void test_smtp_bdat_parse_count_and_last(void **st)
{
    (void)st;
    uint64_t n = 1;
    bool last = true;
    assert_int_equal(parse("0", &n, &last), BDAT_P_OK);
    assert_int_equal(n, 0);
    assert_false(last);
    assert_int_equal(parse("1234", &n, &last), BDAT_P_OK);
    assert_int_equal(n, 1234);
    assert_false(last);
    assert_int_equal(parse("0 LAST", &n, &last), BDAT_P_OK);
    assert_int_equal(n, 0);
    assert_true(last);
    assert_int_equal(parse("007 last", &n, &last), BDAT_P_OK);
    assert_int_equal(n, 7);
    assert_true(last);
    assert_int_equal(parse("12  LaSt  ", &n, &last), BDAT_P_OK);
    assert_int_equal(n, 12);
    assert_true(last);
    assert_int_equal(parse("12 ", &n, &last), BDAT_P_OK);
    assert_false(last);
    assert_int_equal(parse("9999999999999999999", &n, &last), BDAT_P_OK);
    assert_int_equal(n, 9999999999999999999ull);
}

static void test_smtp_bdat_parse_refuses_bad_syntax(void **st)
{
    (void)st;
    static const char *const bad[] = {
        "",         "LAST",  "-1",      "+5",      "5x", "0x10", "5 LAS",       "5 LASTX",
        "5 LAST x", "5LAST", "5 FIRST", "5\tLAST", " 5", "1e3",  "5 LAST LAST",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t n;
        bool last;
        if (parse(bad[i], &n, &last) != BDAT_P_SYNTAX)
            fail_msg("\"%s\" should be a syntax error", bad[i]);
    }
}

static void test_smtp_bdat_parse_overflow(void **st)
{
    (void)st;
    uint64_t n;
    bool last;
    assert_int_equal(parse("18446744073709551616", &n, &last), BDAT_P_OVERFLOW); /* 2^64 */
    assert_int_equal(parse("00000000000000000001", &n, &last), BDAT_P_OVERFLOW); /* 20 digits */
    assert_int_equal(parse("99999999999999999999999999 LAST", &n, &last), BDAT_P_OVERFLOW);
    /* a long run that is not all digits is a syntax error, as a short one */
    assert_int_equal(parse("99999999999999999999999T", &n, &last), BDAT_P_SYNTAX);
}

static void test_smtp_bdat_parse_not_nul_terminated(void **st)
{
    (void)st;
    uint64_t n;
    bool last;
    /* the length bounds the parse: "12" of "123" */
    assert_int_equal(bdat_parse("123", 2, &n, &last), BDAT_P_OK);
    assert_int_equal(n, 12);
    assert_int_equal(bdat_parse("5 LASTING", 6, &n, &last), BDAT_P_OK);
    assert_true(last);
    assert_int_equal(bdat_parse("5 LASTING", 7, &n, &last), BDAT_P_SYNTAX);
}

static void test_smtp_bdat_take_splits_chunk_from_command(void **st)
{
    (void)st;
    struct bdat_rx b = {0};
    assert_false(bdat_reading(&b));
    bdat_begin(&b, 5, false, false);
    assert_true(bdat_reading(&b));
    /* "hel" in one read, "lo" + the next command in the next */
    assert_int_equal(bdat_take(&b, 3), 3);
    assert_false(bdat_consume(&b, 3));
    assert_int_equal(bdat_take(&b, 12), 2);
    assert_true(bdat_consume(&b, 2));
    assert_false(bdat_reading(&b));
    assert_int_equal(bdat_take(&b, 10), 0);
    assert_int_equal(b.total, 5);
    assert_int_equal(b.chunks, 1);
    assert_int_equal(b.size, 5);
}

static void test_smtp_bdat_discard_not_counted(void **st)
{
    (void)st;
    struct bdat_rx b = {0};
    bdat_begin(&b, 100, false, false);
    assert_true(bdat_consume(&b, 100));
    bdat_begin(&b, 50, true, true);
    assert_true(b.discard);
    assert_true(b.last);
    assert_int_equal(b.total, 100);
    assert_int_equal(b.chunks, 1);
    assert_int_equal(bdat_take(&b, 1000), 50);
    assert_true(bdat_consume(&b, 50));
    /* a new transaction forgets the totals */
    bdat_reset(&b);
    assert_int_equal(b.total, 0);
    assert_int_equal(b.chunks, 0);
}

static void test_smtp_bdat_reset_keeps_discarding(void **st)
{
    (void)st;
    struct bdat_rx b = {0};
    bdat_begin(&b, 10, false, true);
    bdat_consume(&b, 4);
    bdat_reset(&b); /* e.g. the session closed the transaction meanwhile */
    assert_true(bdat_reading(&b));
    assert_int_equal(bdat_take(&b, 100), 6);
}

static void test_smtp_bdat_fits_limit(void **st)
{
    (void)st;
    struct bdat_rx b = {0};
    assert_true(bdat_fits(&b, 4096, 4096));
    assert_false(bdat_fits(&b, 4097, 4096));
    bdat_begin(&b, 4000, false, false);
    bdat_consume(&b, 4000);
    assert_true(bdat_fits(&b, 96, 4096));
    assert_false(bdat_fits(&b, 97, 4096));
    assert_false(bdat_fits(&b, 9999999999999999999ull, 4096)); /* no wrap-around */
    assert_true(bdat_fits(&b, 9999999999999999999ull, 0));     /* 0: no limit */
}

/* scan_raw - feed the chunks of a message through a raw scanner. */
static void scan_raw(struct data_scan *ds, struct sb *out, const char *const *chunks, size_t n)
{
    data_scan_init_raw(ds, 1 << 20);
    for (size_t i = 0; i < n; i++) {
        bool done = true;
        size_t len = strlen(chunks[i]);
        assert_int_equal(data_scan_feed(ds, chunks[i], len, out, &done), len);
        assert_false(done);
    }
}

static void test_smtp_bdat_raw_scan_binary_clean(void **st)
{
    (void)st;
    struct data_scan ds;
    struct sb out = {0};
    /* dots stay, ".\r\n" is no end of data, a CRLF split between chunks is fine */
    static const char *const chunks[] = {"..a\r\n.\r", "\n.\r\nMAIL FROM:<x>\r", "\n"};
    scan_raw(&ds, &out, chunks, 3);
    const char *want = "..a\r\n.\r\n.\r\nMAIL FROM:<x>\r\n";
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data, want, out.len);
    assert_int_equal(ds.size, strlen(want));
    assert_int_equal(ds.flags, 0);
    sb_free(&out);
}

static void test_smtp_bdat_raw_scan_flags_bare_lf_nul_8bit(void **st)
{
    (void)st;
    struct data_scan ds;
    struct sb out = {0};
    static const char *const lf[] = {"ok\r\nbad\nRCPT TO:<x>\r\n"};
    scan_raw(&ds, &out, lf, 1);
    assert_true(ds.flags & DATA_F_BARE_EOL);
    assert_true(ds.flags & DATA_F_BARE_CMD);
    assert_int_equal(ds.first_bare, 7);
    assert_int_equal(ds.bare_octet, '\n');
    sb_reset(&out);
    static const char *const cr[] = {"a\r", "b\r\n"}; /* CR at a chunk end, not followed by LF */
    scan_raw(&ds, &out, cr, 2);
    assert_true(ds.flags & DATA_F_BARE_EOL);
    assert_int_equal(ds.bare_octet, '\r');
    sb_reset(&out);
    struct data_scan d2;
    data_scan_init_raw(&d2, 0);
    bool done;
    assert_int_equal(data_scan_feed(&d2, "a\0\xe9\r\n", 5, &out, &done), 5);
    assert_true(d2.flags & DATA_F_NUL);
    assert_true(d2.flags & DATA_F_8BIT);
    assert_int_equal(d2.first_nul, 1);
    assert_int_equal(out.len, 5);
    sb_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smtp_bdat_parse_count_and_last),
        cmocka_unit_test(test_smtp_bdat_parse_refuses_bad_syntax),
        cmocka_unit_test(test_smtp_bdat_parse_overflow),
        cmocka_unit_test(test_smtp_bdat_parse_not_nul_terminated),
        cmocka_unit_test(test_smtp_bdat_take_splits_chunk_from_command),
        cmocka_unit_test(test_smtp_bdat_discard_not_counted),
        cmocka_unit_test(test_smtp_bdat_reset_keeps_discarding),
        cmocka_unit_test(test_smtp_bdat_fits_limit),
        cmocka_unit_test(test_smtp_bdat_raw_scan_binary_clean),
        cmocka_unit_test(test_smtp_bdat_raw_scan_flags_bare_lf_nul_8bit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
