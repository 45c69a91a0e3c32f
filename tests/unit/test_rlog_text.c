/* test_rlog_text.c - receivelog text rules: \xNN escaping of every byte
 * value, CR/LF and backslash, the 2048-byte line cap with "...", and the
 * " [dd/Mon/yyyy:HH:MM:SS], XXXXXXXX, " prefix.
 * Description: pure functions, TZ=UTC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "rlog_int.h"
#include "test_rlog_util.h"

/* ref_escape - the rule written the obvious way. */
static size_t ref_escape(char *dst, const unsigned char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] >= 0x7f || s[i] == '\\')
            o += (size_t)sprintf(dst + o, "\\x%02X", s[i]);
        else
            dst[o++] = (char)s[i];
    }
    return o;
}

/* test_rlog_text_escape_every_byte - each of the 256 values alone. */
static void test_rlog_text_escape_every_byte(void **state)
{
    (void)state;
    for (unsigned c = 0; c < 256; c++) {
        char in = (char)c, out[8], want[8];
        size_t n = rlog_escape(out, sizeof(out), &in, 1);
        bool esc = c < 0x20 || c >= 0x7f || c == '\\';
        snprintf(want, sizeof(want), esc ? "\\x%02X" : "%c", c);
        assert_int_equal(n, strlen(want));
        assert_memory_equal(out, want, n);
    }
}

/* test_rlog_text_escape_crlf_backslash - no line can be forged. */
static void test_rlog_text_escape_crlf_backslash(void **state)
{
    (void)state;
    const char in[] = "MAIL FROM:<a@b>\r\n [01/Jan/2020:00:00:00], 00000000, x\\x0A\xc3\xa9\x7f";
    const char want[] = "MAIL FROM:<a@b>\\x0D\\x0A [01/Jan/2020:00:00:00], 00000000, x\\x5Cx0A\\xC3\\xA9\\x7F";
    char out[256];
    size_t n = rlog_escape(out, sizeof(out), in, sizeof(in) - 1);
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(out, want, n);
    assert_null(memchr(out, '\n', n));
    assert_null(memchr(out, '\r', n));
}

/* test_rlog_text_escape_words - the 8-byte fast path agrees with the rule
 * for every byte value at every position of a word. */
static void test_rlog_text_escape_words(void **state)
{
    (void)state;
    unsigned char in[24];
    char out[128], want[128];
    for (unsigned c = 0; c < 256; c++) {
        for (size_t pos = 0; pos < sizeof(in); pos++) {
            memset(in, 'a', sizeof(in));
            in[pos] = (unsigned char)c;
            size_t n = rlog_escape(out, sizeof(out), (const char *)in, sizeof(in));
            size_t m = ref_escape(want, in, sizeof(in));
            assert_int_equal(n, m);
            assert_memory_equal(out, want, n);
        }
    }
}

/* test_rlog_text_escape_short_cap - output stops at a whole escape. */
static void test_rlog_text_escape_short_cap(void **state)
{
    (void)state;
    char out[8];
    size_t used;
    assert_int_equal(rlog_escape_n(out, 5, "ab\x01z", 4, &used), 2);
    assert_int_equal(used, 2);
    assert_int_equal(rlog_escape_n(out, 6, "ab\x01z", 4, &used), 6);
    assert_int_equal(used, 3);
    assert_int_equal(rlog_escape_n(out, 7, "ab\x01z", 4, &used), 7);
    assert_int_equal(used, 4);
    assert_memory_equal(out, "ab\\x01z", 7);
}

/* test_rlog_text_line_cap - long text is cut to 2048 bytes ending "...";
 * text that fits exactly is left alone; the prefix is copied verbatim. */
static void test_rlog_text_line_cap(void **state)
{
    (void)state;
    static char in[3 * RLOG_LINE_MAX], out[RLOG_LINE_MAX];
    memset(in, 'x', sizeof(in));
    size_t b = rlog_text_bound(0, sizeof(in));
    assert_int_equal(b, RLOG_LINE_MAX);
    size_t n = rlog_format_text(out, b, NULL, 0, in, sizeof(in));
    assert_int_equal(n, RLOG_LINE_MAX);
    assert_memory_equal(out + n - 3, "...", 3);
    assert_memory_equal(out, in, n - 3);
    /* exactly 2048 escaped bytes: no marker */
    n = rlog_format_text(out, RLOG_LINE_MAX, NULL, 0, in, RLOG_LINE_MAX);
    assert_int_equal(n, RLOG_LINE_MAX);
    assert_int_equal(out[n - 1], 'x');
    /* an escape is never split by the cap */
    memset(in, 0x01, sizeof(in));
    n = rlog_format_text(out, RLOG_LINE_MAX, "pfx: ", 5, in, 1000);
    assert_true(n <= RLOG_LINE_MAX);
    assert_memory_equal(out, "pfx: \\x01", 9);
    assert_memory_equal(out + n - 3, "...", 3);
    assert_int_equal((n - 5 - 3) % 4, 0);
    /* short text: bound is exact enough and nothing is cut */
    b = rlog_text_bound(3, 2);
    n = rlog_format_text(out, b, "ab:", 3, "\x02z", 2);
    assert_int_equal(n, 8);
    assert_memory_equal(out, "ab:\\x02z", 8);
}

/* test_rlog_text_prefix - byte-for-byte like the seed. */
static void test_rlog_text_prefix(void **state)
{
    (void)state;
    char p[64];
    size_t n = rlog_format_prefix(p, t_utc(2017, 11, 30, 8, 20, 44) + 999999999ull, 0x145008);
    assert_int_equal(n, 35);
    assert_string_equal(p, " [30/Nov/2017:08:20:44], 00145008, ");
    n = rlog_format_prefix(p, t_utc(2024, 1, 5, 23, 9, 3), 0xdeadbeef);
    assert_string_equal(p, " [05/Jan/2024:23:09:03], DEADBEEF, ");
    assert_int_equal(rlog_local_day(t_utc(2024, 2, 29, 23, 59, 59) / T_NS), 20240229);
    assert_int_equal(rlog_day_number(19700101), 0);
    assert_int_equal(rlog_day_number(20240301) - rlog_day_number(20240228), 2);
}

int main(void)
{
    t_use_utc();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rlog_text_escape_every_byte),
        cmocka_unit_test(test_rlog_text_escape_crlf_backslash),
        cmocka_unit_test(test_rlog_text_escape_words),
        cmocka_unit_test(test_rlog_text_escape_short_cap),
        cmocka_unit_test(test_rlog_text_line_cap),
        cmocka_unit_test(test_rlog_text_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
