/* test_smtp_data.c - unit tests of core/smtp_data.c: end of data, SMTP
 * smuggling variants (with the offset of the first bare CR/LF and commands
 * hidden behind it), NUL and 8-bit octets, dot-unstuffing, limits, and
 * split-independence (every input is fed one-shot, byte by byte and in
 * random splits). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_data.h"
#include "../fuzz/smtp_data_ref.h"

#define SPLIT_ROUNDS 40

/* What one complete feeding of an input produced. */
struct result {
    struct sb out;
    uint32_t flags;
    uint64_t size;
    size_t consumed;
    bool done;
    struct data_scan ds; /* the scanner's final state */
};

/* rng_next - xorshift64: deterministic pseudo-random numbers for splits. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* feed_split - feed in[0..len) in chunks: mode 0 one-shot, 1 byte by byte,
 * otherwise random chunk sizes seeded by mode. Stops at end of data. */
static void feed_split(const char *in, size_t len, uint64_t limit, uint64_t mode, struct result *r)
{
    struct data_scan ds;
    uint64_t seed = mode * 0x9E3779B97F4A7C15ull + 1;
    memset(r, 0, sizeof(*r));
    data_scan_init(&ds, limit);
    while (r->consumed < len && !r->done) {
        size_t left = len - r->consumed, chunk = left;
        if (mode == 1)
            chunk = 1;
        else if (mode > 1)
            chunk = 1 + (size_t)(rng_next(&seed) % (mode % 3 ? 7 : 300));
        chunk = chunk < left ? chunk : left;
        size_t used = data_scan_feed(&ds, in + r->consumed, chunk, &r->out, &r->done);
        assert_true(used != (size_t)-1);
        assert_true(used <= chunk);
        if (!r->done)
            assert_int_equal(used, chunk);
        r->consumed += used;
    }
    r->flags = ds.flags;
    r->size = ds.size;
    r->ds = ds;
}

/* check_all_splits - every way of feeding gives exactly the expected result. */
static void check_all_splits(const char *in, size_t len, uint64_t limit, const char *want,
                             size_t want_len, uint32_t want_flags, bool want_done,
                             size_t want_consumed)
{
    for (uint64_t mode = 0; mode < SPLIT_ROUNDS; mode++) {
        struct result r;
        feed_split(in, len, limit, mode, &r);
        assert_int_equal(r.done, want_done);
        assert_int_equal(r.consumed, want_consumed);
        assert_int_equal(r.flags, want_flags);
        assert_int_equal(r.out.len, want_len);
        if (want_len)
            assert_memory_equal(r.out.data, want, want_len);
        sb_free(&r.out);
    }
}

/* expect_msg - C-string input must end the data and give output want. */
static void expect_msg(const char *in, const char *want, uint32_t flags)
{
    check_all_splits(in, strlen(in), 0, want, strlen(want), flags, true, strlen(in));
}

/* expect_open - C-string input must NOT end the data; all of it is consumed. */
static void expect_open(const char *in, const char *want, uint32_t flags)
{
    check_all_splits(in, strlen(in), 0, want, strlen(want), flags, false, strlen(in));
}

/* check_against_ref - compare the scanner with the reference model. */
static void check_against_ref(const char *in, size_t len, uint64_t limit)
{
    struct ref_data ref;
    ref_data_scan((const unsigned char *)in, len, limit, &ref);
    size_t stored = limit && ref.size > limit ? (size_t)limit : ref.out.len;
    check_all_splits(in, len, limit, ref.out.data, stored, ref.flags, ref.done, ref.consumed);
    for (uint64_t mode = 0; mode < 4; mode++) {
        struct result r;
        feed_split(in, len, limit, mode, &r);
        assert_true(r.size == ref.size);
        assert_true(r.ds.offset == ref.consumed);
        if (ref.flags & DATA_F_BARE_EOL) {
            assert_true(r.ds.first_bare == ref.first_bare);
            assert_int_equal(r.ds.bare_octet, ref.bare_octet);
        }
        if (ref.flags & DATA_F_NUL)
            assert_true(r.ds.first_nul == ref.first_nul);
        sb_free(&r.out);
    }
    sb_free(&ref.out);
}

static void test_smtp_data_simple_message(void **st)
{
    (void)st;
    expect_msg("Subject: hi\r\n\r\nbody line\r\n.\r\n", "Subject: hi\r\n\r\nbody line\r\n", 0);
    expect_msg("a\r\n.\r\n", "a\r\n", 0);
    expect_msg("\r\n.\r\n", "\r\n", 0);
}

static void test_smtp_data_empty_message(void **st)
{
    (void)st;
    expect_msg(".\r\n", "", 0);
    struct result r;
    feed_split(".\r\nQUIT\r\n", 9, 0, 0, &r);
    assert_true(r.done);
    assert_int_equal(r.consumed, 3);
    assert_int_equal(r.out.len, 0);
    assert_true(r.size == 0);
    sb_free(&r.out);
}

static void test_smtp_data_pipelined_rest_unconsumed(void **st)
{
    (void)st;
    const char *in = "x\r\n.\r\nMAIL FROM:<a@b>\r\n";
    check_all_splits(in, strlen(in), 0, "x\r\n", 3, 0, true, 6);
    /* a second terminator later on does not matter */
    in = "x\r\n.\r\ny\r\n.\r\n";
    check_all_splits(in, strlen(in), 0, "x\r\n", 3, 0, true, 6);
}

static void test_smtp_data_feed_after_done(void **st)
{
    (void)st;
    struct data_scan ds;
    struct sb out = {0};
    bool done = false;
    data_scan_init(&ds, 0);
    assert_int_equal(data_scan_feed(&ds, "a\r\n.\r\nb", 7, &out, &done), 6);
    assert_true(done);
    done = false;
    assert_int_equal(data_scan_feed(&ds, "b\r\n.\r\n", 6, &out, &done), 0);
    assert_true(done);
    assert_int_equal(out.len, 3);
    assert_int_equal(data_scan_feed(&ds, "", 0, &out, &done), 0);
    sb_free(&out);
    data_scan_init(&ds, 0);
    assert_int_equal(data_scan_feed(&ds, NULL, 0, &out, &done), 0);
    assert_false(done);
    assert_int_equal(out.len, 0);
}

static void test_smtp_data_unterminated(void **st)
{
    (void)st;
    expect_open("", "", 0);
    expect_open("abc", "abc", 0);
    expect_open("abc\r\n", "abc\r\n", 0);
    expect_open("abc\r\n.", "abc\r\n", 0);
    expect_open("abc\r\n.\r", "abc\r\n", 0);
    expect_open("abc\r", "abc\r", 0);
    expect_open(".", "", 0);
    expect_open(".\r", "", 0);
    expect_open("a\r\n.\r\r", "a\r\n\r\r", DATA_F_BARE_EOL);
}

static void test_smtp_data_dot_unstuffing(void **st)
{
    (void)st;
    expect_msg("..x\r\n.\r\n", ".x\r\n", 0);
    expect_msg("..\r\n.\r\n", ".\r\n", 0);
    expect_msg("...\r\n.\r\n", "..\r\n", 0);
    expect_msg("a\r\n..\r\n.\r\n", "a\r\n.\r\n", 0);
    expect_msg(". x\r\n.\r\n", " x\r\n", 0);
    expect_msg(".x\r\n.\r\n", "x\r\n", 0);
    expect_msg("a.b\r\nc.\r\n.d.\r\n.\r\n", "a.b\r\nc.\r\nd.\r\n", 0);
    expect_msg("..\r\n..\r\n.\r\n", ".\r\n.\r\n", 0);
}

static void test_smtp_data_smuggling_lf_dot_crlf(void **st)
{
    (void)st;
    /* "\n.\r\n" must not end the data: the LF is bare, so no line starts */
    expect_msg("a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n", "a\n.\r\nMAIL FROM:<x@y>\r\n",
               DATA_F_BARE_EOL | DATA_F_BARE_CMD);
    expect_open("a\n.\r\n", "a\n.\r\n", DATA_F_BARE_EOL);
    expect_open("\n.\r\n", "\n.\r\n", DATA_F_BARE_EOL);
}

static void test_smtp_data_smuggling_crlf_dot_lf(void **st)
{
    (void)st;
    expect_msg("a\r\n.\nb\r\n.\r\n", "a\r\n\nb\r\n", DATA_F_BARE_EOL);
    expect_open("a\r\n.\n", "a\r\n\n", DATA_F_BARE_EOL);
    expect_open(".\n", "\n", DATA_F_BARE_EOL);
    expect_msg(".\nx\r\n.\r\n", "\nx\r\n", DATA_F_BARE_EOL);
}

static void test_smtp_data_smuggling_cr_dot_cr(void **st)
{
    (void)st;
    expect_msg("a\r.\rb\r\n.\r\n", "a\r.\rb\r\n", DATA_F_BARE_EOL);
    expect_open("a\r.\r", "a\r.\r", DATA_F_BARE_EOL);
    expect_msg("a\r.\r\nb\r\n.\r\n", "a\r.\r\nb\r\n", DATA_F_BARE_EOL);
    expect_msg("a\r\n.\r.\r\n.\r\n", "a\r\n\r.\r\n", DATA_F_BARE_EOL);
}

static void test_smtp_data_smuggling_lf_dot_lf(void **st)
{
    (void)st;
    expect_open("a\n.\n", "a\n.\n", DATA_F_BARE_EOL);
    expect_msg("a\n.\nb\r\n.\r\n", "a\n.\nb\r\n", DATA_F_BARE_EOL);
    expect_open("a\r\r\n.\n\r\n", "a\r\r\n\n\r\n", DATA_F_BARE_EOL);
    expect_open("a\n\r.\r\n\n", "a\n\r.\r\n\n", DATA_F_BARE_EOL);
}

static void test_smtp_data_smuggling_mixed_then_real_end(void **st)
{
    (void)st;
    /* after any bare-EOL trick a real CRLF.CRLF still ends the data */
    expect_msg("x\r\r\n.\r\n", "x\r\r\n", DATA_F_BARE_EOL);
    expect_msg("x\n\r\n.\r\n", "x\n\r\n", DATA_F_BARE_EOL);
    expect_msg("\r\n\n.\n\r\n.\r\n", "\r\n\n.\n\r\n", DATA_F_BARE_EOL);
    expect_msg("a\r\n.\r\r\n.\r\n", "a\r\n\r\r\n", DATA_F_BARE_EOL);
}

static void test_smtp_data_bare_cr_lf_flags(void **st)
{
    (void)st;
    expect_msg("a\rb\r\n.\r\n", "a\rb\r\n", DATA_F_BARE_EOL);
    expect_msg("a\nb\r\n.\r\n", "a\nb\r\n", DATA_F_BARE_EOL);
    expect_msg("\n\r\n.\r\n", "\n\r\n", DATA_F_BARE_EOL);
    expect_msg("a\r\nb\r\n.\r\n", "a\r\nb\r\n", 0);
}

static void test_smtp_data_nul_flag(void **st)
{
    (void)st;
    const char in[] = "a\0b\r\n.\r\n";
    check_all_splits(in, sizeof(in) - 1, 0, "a\0b\r\n", 5, DATA_F_NUL, true, sizeof(in) - 1);
}

/* check_offsets - in every split: flags, offset of the first bare CR/LF
 * (and which), offset of the first NUL (-1: none expected). */
static void check_offsets(const char *in, size_t len, uint32_t flags, long bare, char octet,
                          long nul)
{
    for (uint64_t mode = 0; mode < SPLIT_ROUNDS; mode++) {
        struct result r;
        feed_split(in, len, 0, mode, &r);
        assert_int_equal(r.flags, flags);
        if (bare >= 0) {
            assert_int_equal(r.ds.first_bare, bare);
            assert_int_equal(r.ds.bare_octet, (unsigned char)octet);
        }
        if (nul >= 0)
            assert_int_equal(r.ds.first_nul, nul);
        sb_free(&r.out);
    }
}

/* test_smtp_data_nul_offset - the first NUL's input offset; "\r\n\0.\r\n"
 * (a next hop that strips NULs would see an end of data) is only text. */
static void test_smtp_data_nul_offset(void **st)
{
    (void)st;
    const char in[] = "ab\r\n\0.\r\nMAIL FROM:<x@y>\r\n\0\r\n.\r\n";
    check_offsets(in, sizeof(in) - 1, DATA_F_NUL, -1, 0, 4);
    const char dotted[] = "..\0\r\n.\r\n"; /* offsets count the stuffing dot */
    check_offsets(dotted, sizeof(dotted) - 1, DATA_F_NUL, -1, 0, 2);
}

/* test_smtp_data_8bit_flag - any octet >= 0x80 in the message, at every
 * position around the 16-octet SIMD blocks; none after the terminator. */
static void test_smtp_data_8bit_flag(void **st)
{
    (void)st;
    expect_msg("caf\xc3\xa9\r\n.\r\n", "caf\xc3\xa9\r\n", DATA_F_8BIT);
    expect_msg("plain\r\n.\r\n", "plain\r\n", 0);
    char b[64];
    for (size_t pos = 0; pos < 40; pos++) {
        memset(b, 'a', 40);
        b[pos] = (char)0x80;
        memcpy(b + 40, "\r\n.\r\n", 5);
        check_offsets(b, 45, DATA_F_8BIT, -1, 0, -1);
    }
    for (size_t pos = 0; pos < 20; pos++) { /* 8-bit right after a special octet */
        memset(b, 'a', sizeof(b));
        memcpy(b + pos, "\r\n.\r\n\xff\xfe", 7);
        struct result r;
        feed_split(b, sizeof(b), 0, 0, &r);
        assert_true(r.done);
        assert_int_equal(r.flags, 0);
        sb_free(&r.out);
    }
}

/* test_smtp_data_bare_offset_and_command - the first bare CR/LF's offset,
 * and whether an SMTP command starts a line after it (smuggling attempt)
 * or not (a sloppy client). */
static void test_smtp_data_bare_offset_and_command(void **st)
{
    (void)st;
    const uint32_t smug = DATA_F_BARE_EOL | DATA_F_BARE_CMD;
    const char *in = "hello\n.\r\nMAIL FROM:<x@y>\r\n.\r\n";
    check_offsets(in, strlen(in), smug, 5, '\n', -1);
    in = "a\rrcpt to:<x@y>\r\n.\r\n";
    check_offsets(in, strlen(in), smug, 1, '\r', -1);
    in = "a\r\n.\rQuit\r\n.\r\n"; /* ".\r" then a bare CR: offset of that CR */
    check_offsets(in, strlen(in), smug, 4, '\r', -1);
    in = "x\ny\r\nDATA\r\n.\r\n";
    check_offsets(in, strlen(in), smug, 1, '\n', -1);
    /* sloppy clients: no command after the bare line end */
    in = "line one\nline two\r\n.\r\n";
    check_offsets(in, strlen(in), DATA_F_BARE_EOL, 8, '\n', -1);
    in = "MAIL FROM:<a@b>\r\nx\ny\r\n.\r\n"; /* the command came before it */
    check_offsets(in, strlen(in), DATA_F_BARE_EOL, 18, '\n', -1);
    in = "a\nDATAX\r\nquitting\r\nhelo\r\n.\r\n"; /* not commands */
    check_offsets(in, strlen(in), DATA_F_BARE_EOL, 1, '\n', -1);
    in = "a\nx\r\n.\r\nQUIT\r\n"; /* QUIT after the real end is not data */
    check_offsets(in, strlen(in), DATA_F_BARE_EOL, 1, '\n', -1);
    in = "a\nMAIL FR"; /* unfinished: not (yet) a command */
    check_offsets(in, strlen(in), DATA_F_BARE_EOL, 1, '\n', -1);
}

/* fill_tokens - random input from tokens rich in line ends, dots, NUL,
 * 8-bit octets and command prefixes. */
static size_t fill_tokens(char *b, size_t cap, uint64_t *seed)
{
    static const char *const tok[] = {"\r",       "\n",   ".",    "a",     "MAIL FROM:", "mail fr",
                                      "RCPT TO:", "DATA", "quit", "HELO ", "\xc3\xa9",   "x"};
    size_t n = 0, want = (size_t)(rng_next(seed) % (cap / 2));
    while (n < want) {
        size_t k = (size_t)(rng_next(seed) % (MX_ARRAY_LEN(tok) + 1));
        if (k == MX_ARRAY_LEN(tok)) {
            b[n++] = 0;
            continue;
        }
        size_t l = strlen(tok[k]);
        if (n + l > cap - 8)
            break;
        memcpy(b + n, tok[k], l);
        n += l;
    }
    return n;
}

/* test_smtp_data_tokens_vs_reference - flags and offsets of random token
 * inputs (commands behind bare line ends, NUL, 8-bit) match the model. */
static void test_smtp_data_tokens_vs_reference(void **st)
{
    (void)st;
    uint64_t seed = 4242;
    char b[200];
    for (int round = 0; round < 1500; round++) {
        size_t n = fill_tokens(b, sizeof(b), &seed);
        if (round % 2) {
            memcpy(b + n, "\r\n.\r\nQ", 6);
            n += 6;
        }
        check_against_ref(b, n, 0);
    }
}

/* make_line - n copies of 'x' preceded by prefix, then CRLF . CRLF. */
static char *make_line(const char *prefix, size_t n, size_t *len)
{
    size_t pl = strlen(prefix);
    char *b = malloc(pl + n + 6);
    assert_non_null(b);
    memcpy(b, prefix, pl);
    memset(b + pl, 'x', n);
    memcpy(b + pl + n, "\r\n.\r\n", 6);
    *len = pl + n + 5;
    return b;
}

static void test_smtp_data_line_length(void **st)
{
    (void)st;
    size_t len;
    char *b = make_line("", SMTP_DATA_LINE_MAX, &len);
    check_all_splits(b, len, 0, b, len - 3, 0, true, len);
    free(b);
    b = make_line("", SMTP_DATA_LINE_MAX + 1, &len);
    check_all_splits(b, len, 0, b, len - 3, DATA_F_LONG_LINE, true, len);
    free(b);
    /* the stuffing dot does not count toward the line length */
    b = make_line(".", SMTP_DATA_LINE_MAX, &len);
    check_all_splits(b, len, 0, b + 1, len - 4, 0, true, len);
    free(b);
    /* a bare LF does not end a line */
    b = make_line("abc\n", SMTP_DATA_LINE_MAX - 3, &len);
    check_all_splits(b, len, 0, b, len - 3, DATA_F_LONG_LINE | DATA_F_BARE_EOL, true, len);
    free(b);
}

static void test_smtp_data_line_length_resets(void **st)
{
    (void)st;
    char *b = malloc(3 * (SMTP_DATA_LINE_MAX + 2) + 4);
    size_t n = 0;
    assert_non_null(b);
    for (int i = 0; i < 3; i++) {
        memset(b + n, 'y', SMTP_DATA_LINE_MAX);
        memcpy(b + n + SMTP_DATA_LINE_MAX, "\r\n", 2);
        n += SMTP_DATA_LINE_MAX + 2;
    }
    memcpy(b + n, ".\r\n", 3);
    check_all_splits(b, n + 3, 0, b, n, 0, true, n + 3);
    free(b);
}

static void test_smtp_data_size_limit(void **st)
{
    (void)st;
    const char *in = "abcdefgh\r\n.\r\n";
    check_all_splits(in, strlen(in), 5, "abcde", 5, DATA_F_TOO_BIG, true, strlen(in));
    check_all_splits(in, strlen(in), 10, "abcdefgh\r\n", 10, 0, true, strlen(in));
    check_all_splits(in, strlen(in), 9, "abcdefgh\r", 9, DATA_F_TOO_BIG, true, strlen(in));
    struct result r;
    feed_split(in, strlen(in), 5, 0, &r);
    assert_true(r.size == 10);
    sb_free(&r.out);
    /* past the limit scanning, unstuffing and flagging continue */
    in = "abc\r\n..d\n\r\n.\r\nQUIT\r\n";
    check_all_splits(in, strlen(in), 2, "ab", 2, DATA_F_TOO_BIG | DATA_F_BARE_EOL, true, 14);
}

static void test_smtp_data_size_limit_long_line(void **st)
{
    (void)st;
    size_t len;
    char *b = make_line("", 2 * SMTP_DATA_LINE_MAX, &len);
    check_all_splits(b, len, 100, b, 100, DATA_F_TOO_BIG | DATA_F_LONG_LINE, true, len);
    free(b);
}

/* fill_random - random bytes from a small alphabet rich in CR, LF and dots. */
static void fill_random(char *b, size_t n, uint64_t *seed)
{
    static const char alpha[] = {'\r', '\n', '.', 'a', '\r', '\n', '.', 0};
    for (size_t i = 0; i < n; i++)
        b[i] = alpha[rng_next(seed) % sizeof(alpha)];
}

static void test_smtp_data_random_vs_reference(void **st)
{
    (void)st;
    uint64_t seed = 42;
    char b[80];
    for (int round = 0; round < 1500; round++) {
        size_t n = (size_t)(rng_next(&seed) % 48);
        fill_random(b, n, &seed);
        if (round % 2) { /* make sure most inputs really end */
            memcpy(b + n, "\r\n.\r\nQ", 6);
            n += 6;
        }
        check_against_ref(b, n, round % 5 ? 0 : rng_next(&seed) % 20);
    }
}

static void test_smtp_data_large_message(void **st)
{
    (void)st;
    uint64_t seed = 7;
    size_t n = 1 << 20, len = 0;
    char *b = malloc(n + 16);
    assert_non_null(b);
    while (len < n) { /* lines of 0..150 printable octets, some dot-stuffed */
        size_t l = (size_t)(rng_next(&seed) % 151);
        if (len + l + 3 > n)
            break;
        for (size_t i = 0; i < l; i++)
            b[len + i] = (char)(' ' + rng_next(&seed) % 95);
        len += l;
        memcpy(b + len, "\r\n", 2);
        len += 2;
    }
    memcpy(b + len, ".\r\n", 3);
    check_against_ref(b, len + 3, 0);
    check_against_ref(b, len + 3, 12345);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smtp_data_simple_message),
        cmocka_unit_test(test_smtp_data_empty_message),
        cmocka_unit_test(test_smtp_data_pipelined_rest_unconsumed),
        cmocka_unit_test(test_smtp_data_feed_after_done),
        cmocka_unit_test(test_smtp_data_unterminated),
        cmocka_unit_test(test_smtp_data_dot_unstuffing),
        cmocka_unit_test(test_smtp_data_smuggling_lf_dot_crlf),
        cmocka_unit_test(test_smtp_data_smuggling_crlf_dot_lf),
        cmocka_unit_test(test_smtp_data_smuggling_cr_dot_cr),
        cmocka_unit_test(test_smtp_data_smuggling_lf_dot_lf),
        cmocka_unit_test(test_smtp_data_smuggling_mixed_then_real_end),
        cmocka_unit_test(test_smtp_data_bare_cr_lf_flags),
        cmocka_unit_test(test_smtp_data_nul_flag),
        cmocka_unit_test(test_smtp_data_nul_offset),
        cmocka_unit_test(test_smtp_data_8bit_flag),
        cmocka_unit_test(test_smtp_data_bare_offset_and_command),
        cmocka_unit_test(test_smtp_data_tokens_vs_reference),
        cmocka_unit_test(test_smtp_data_line_length),
        cmocka_unit_test(test_smtp_data_line_length_resets),
        cmocka_unit_test(test_smtp_data_size_limit),
        cmocka_unit_test(test_smtp_data_size_limit_long_line),
        cmocka_unit_test(test_smtp_data_random_vs_reference),
        cmocka_unit_test(test_smtp_data_large_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
