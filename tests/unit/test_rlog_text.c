/* test_rlog_text.c - receivelog text rules: valid UTF-8 kept as it is,
 * \xNN escaping of every other byte value, CR/LF, backslash and invalid
 * UTF-8 (overlongs, surrogates, > U+10FFFF, truncated), the 2048-byte line
 * cap with "..." (never inside a UTF-8 sequence), and the
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

/* ref_seq - length of the UTF-8 sequence at s[0..n) that is written as it
 * is, decoded the long way (code point, shortest form, range), or 0. */
static size_t ref_seq(const unsigned char *s, size_t n)
{
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    unsigned c = s[0];
    size_t len;
    uint32_t cp;
    if (c >= 0xF8 || c < 0xC0)
        return 0;
    if (c >= 0xF0) {
        len = 4;
        cp = c & 7;
    } else if (c >= 0xE0) {
        len = 3;
        cp = c & 15;
    } else {
        len = 2;
        cp = c & 31;
    }
    if (n < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[k] & 0x3F);
    }
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    if (cp <= 0x9F || cp == 0x2028 || cp == 0x2029) /* C1 controls, line breaks */
        return 0;
    return len;
}

/* ref_escape - the rule written the obvious way. */
static size_t ref_escape(char *dst, const unsigned char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t l = s[i] >= 0x80 ? ref_seq(s + i, len - i) : 0;
        if (l) {
            memcpy(dst + o, s + i, l);
            o += l;
            i += l;
        } else if (s[i] < 0x20 || s[i] >= 0x7f || s[i] == '\\') {
            o += (size_t)sprintf(dst + o, "\\x%02X", s[i++]);
        } else {
            dst[o++] = (char)s[i++];
        }
    }
    return o;
}

/* expect_escape - rlog_escape of in gives want (both C strings). */
static void expect_escape(const char *in, const char *want)
{
    char out[256];
    size_t n = rlog_escape(out, sizeof(out), in, strlen(in));
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
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
    const char want[] =
        "MAIL FROM:<a@b>\\x0D\\x0A [01/Jan/2020:00:00:00], 00000000, x\\x5Cx0A\xc3\xa9\\x7F";
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

/* test_rlog_text_utf8_kept - valid UTF-8 names are written as they are,
 * so grep finds them; ASCII around them is unchanged. */
static void test_rlog_text_utf8_kept(void **state)
{
    (void)state;
    expect_escape("RCPT TO:<j\xc3\xb6rg@m\xc3\xbcller.example>",
                  "RCPT TO:<j\xc3\xb6rg@m\xc3\xbcller.example>");
    expect_escape("EHLO \xe6\x97\xa5\xe6\x9c\xac.example", "EHLO \xe6\x97\xa5\xe6\x9c\xac.example");
    expect_escape("\xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xc2\xa0 \xef\xbf\xbd",
                  "\xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xc2\xa0 \xef\xbf\xbd");
}

/* test_rlog_text_utf8_invalid_escaped - every octet outside a valid
 * sequence is escaped: overlongs, surrogates, > U+10FFFF, lone and missing
 * continuation bytes, C1 controls and U+2028/U+2029 (line breaks). */
static void test_rlog_text_utf8_invalid_escaped(void **state)
{
    (void)state;
    expect_escape("\xc0\xaf", "\\xC0\\xAF");                   /* overlong '/' */
    expect_escape("\xe0\x80\xaf", "\\xE0\\x80\\xAF");          /* overlong '/' */
    expect_escape("\xf0\x80\x80\xaf", "\\xF0\\x80\\x80\\xAF"); /* overlong '/' */
    expect_escape("\xc1\x8a", "\\xC1\\x8A");                   /* overlong LF */
    expect_escape("\xed\xa0\x80", "\\xED\\xA0\\x80");          /* surrogate */
    expect_escape("\xf4\x90\x80\x80", "\\xF4\\x90\\x80\\x80"); /* U+110000 */
    expect_escape("\xf5\x80\x80\x80", "\\xF5\\x80\\x80\\x80");
    expect_escape("a\x80"
                  "b\xbf",
                  "a\\x80b\\xBF");                      /* lone continuation */
    expect_escape("\xc3x\xe2\x82", "\\xC3x\\xE2\\x82"); /* missing continuation */
    expect_escape("\xc2\x85", "\\xC2\\x85");            /* NEL, a C1 control */
    expect_escape("\xe2\x80\xa8\xe2\x80\xa9", "\\xE2\\x80\\xA8\\xE2\\x80\\xA9");
    expect_escape("\xff\xfe", "\\xFF\\xFE");
    expect_escape("\xc3\xa9\xc3", "\xc3\xa9\\xC3"); /* valid, then truncated */
}

/* test_rlog_text_utf8_exhaustive - every two-octet input and every
 * three-octet input with a lead of E0..F4 agree with the reference rule,
 * alone and straddling the 8-byte fast path's word boundary. */
static void test_rlog_text_utf8_exhaustive(void **state)
{
    (void)state;
    unsigned char in[16];
    char out[128], want[128];
    for (unsigned a = 0x80; a < 0x100; a++) {
        for (unsigned b = 0; b < 0x100; b++) {
            for (unsigned c = 0x80; c < 0xC0; c += a >= 0xE0 ? 1 : 0x40) {
                memset(in, 'a', sizeof(in));
                in[6] = (unsigned char)a;
                in[7] = (unsigned char)b;
                in[8] = (unsigned char)c;
                in[9] = 0x80;
                size_t n = rlog_escape(out, sizeof(out), (const char *)in, sizeof(in));
                size_t m = ref_escape(want, in, sizeof(in));
                assert_int_equal(n, m);
                assert_memory_equal(out, want, n);
            }
        }
    }
}

/* test_rlog_text_utf8_cap - a short cap never splits a UTF-8 sequence. */
static void test_rlog_text_utf8_cap(void **state)
{
    (void)state;
    char out[16];
    size_t used;
    const char in[] = "ab\xe6\x97\xa5z"; /* "ab" + 3-octet sequence + "z" */
    assert_int_equal(rlog_escape_n(out, 4, in, 6, &used), 2);
    assert_int_equal(used, 2);
    assert_int_equal(rlog_escape_n(out, 5, in, 6, &used), 5);
    assert_int_equal(used, 5);
    assert_int_equal(rlog_escape_n(out, 6, in, 6, &used), 6);
    assert_int_equal(used, 6);
    assert_memory_equal(out, in, 6);
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
        cmocka_unit_test(test_rlog_text_utf8_kept),
        cmocka_unit_test(test_rlog_text_utf8_invalid_escaped),
        cmocka_unit_test(test_rlog_text_utf8_exhaustive),
        cmocka_unit_test(test_rlog_text_utf8_cap),
        cmocka_unit_test(test_rlog_text_escape_short_cap),
        cmocka_unit_test(test_rlog_text_line_cap),
        cmocka_unit_test(test_rlog_text_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
