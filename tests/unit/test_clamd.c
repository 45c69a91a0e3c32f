/* test_clamd.c - unit tests of core/clamd.c: the INSTREAM byte stream
 * (exact bytes, chunking, zero-copy iovecs, resuming after short writes of
 * every size, small iovec arrays, a message supplied window by window) and
 * the reply parser (OK, FOUND, size limit, errors, NUL/LF ends, partial and
 * hostile replies). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clamd.h"
#include "util.h"

/* expected - the INSTREAM bytes for msg[0..len) in chunks of chunk, built
 * the plain way. */
static void expected(struct sb *out, const char *msg, size_t len, size_t chunk)
{
    assert_true(sb_append(out, "zINSTREAM", 10));
    for (size_t off = 0; off < len; off += chunk) {
        size_t c = len - off < chunk ? len - off : chunk;
        uint8_t h[4] = {(uint8_t)(c >> 24), (uint8_t)(c >> 16), (uint8_t)(c >> 8), (uint8_t)c};
        assert_true(sb_append(out, h, 4));
        assert_true(sb_append(out, msg + off, c));
    }
    assert_true(sb_append(out, "\0\0\0\0", 4));
}

/* rng - xorshift64 for write sizes. */
static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* drain - "send" the stream through iovec arrays of iovmax entries, each
 * write taking a random share (mode 0: everything offered, 1: one octet)
 * and return the bytes. */
static void drain(struct clamd_stream *cs, size_t iovmax, int mode, uint64_t seed, struct sb *got)
{
    struct iovec iov[64];
    assert_true(iovmax <= 64);
    while (!clamd_stream_done(cs)) {
        size_t n = clamd_stream_fill(cs, iov, iovmax), offered = 0;
        assert_true(n > 0 && n <= iovmax);
        for (size_t i = 0; i < n; i++) {
            assert_true(iov[i].iov_len > 0);
            offered += iov[i].iov_len;
        }
        size_t take = mode == 0 ? offered : mode == 1 ? 1 : 1 + (size_t)(rng(&seed) % offered);
        for (size_t i = 0, left = take; i < n && left; i++) {
            size_t c = iov[i].iov_len < left ? iov[i].iov_len : left;
            assert_true(sb_append(got, iov[i].iov_base, c));
            left -= c;
        }
        clamd_stream_advance(cs, take);
    }
    assert_int_equal(clamd_stream_fill(cs, iov, iovmax), 0);
}

/* drain_windowed - drain a cursor made with msg NULL: whenever it needs
 * data, copy per chunks of msg at the offset it names into a scratch
 * buffer (poisoned before each copy, so an octet read from an old window
 * shows) and hand that over as the window. */
static void drain_windowed(struct clamd_stream *cs, const char *msg, size_t per, size_t iovmax,
                           int mode, uint64_t seed, struct sb *got)
{
    struct iovec iov[64];
    size_t cap = per * cs->chunk;
    char *scratch = malloc(cap);
    assert_non_null(scratch);
    while (!clamd_stream_done(cs)) {
        size_t off, n;
        if (clamd_stream_need(cs, &off, &n)) {
            assert_int_equal(off % cs->chunk, 0);
            assert_true(n > 0 && n <= cs->chunk && off + n <= cs->len);
            size_t w = cs->len - off < cap ? cs->len - off : cap;
            memset(scratch, 0xA5, cap);
            memcpy(scratch, msg + off, w);
            clamd_stream_window(cs, scratch, off, w);
            assert_false(clamd_stream_need(cs, &off, &n));
        }
        size_t k = clamd_stream_fill(cs, iov, iovmax), offered = 0;
        assert_true(k > 0 && k <= iovmax);
        for (size_t i = 0; i < k; i++)
            offered += iov[i].iov_len;
        size_t take = mode == 0 ? offered : mode == 1 ? 1 : 1 + (size_t)(rng(&seed) % offered);
        for (size_t i = 0, left = take; i < k && left; i++) {
            size_t c = iov[i].iov_len < left ? iov[i].iov_len : left;
            assert_true(sb_append(got, iov[i].iov_base, c));
            left -= c;
        }
        clamd_stream_advance(cs, take);
    }
    free(scratch);
}

static void test_clamd_stream_exact_bytes(void **state)
{
    (void)state;
    static const char msg[] = "Subject: x\r\n\r\nhello\r\n";
    static const uint8_t want[] = "zINSTREAM\0\0\0\0\x15Subject: x\r\n\r\nhello\r\n\0\0\0\0";
    struct clamd_stream cs;
    struct sb got = {0};
    clamd_stream_init(&cs, msg, strlen(msg), 0);
    assert_int_equal(cs.total, sizeof(want) - 1);
    assert_int_equal(clamd_stream_size(strlen(msg), 0), sizeof(want) - 1);
    drain(&cs, 64, 0, 0, &got);
    assert_int_equal(got.len, sizeof(want) - 1);
    assert_memory_equal(got.data, want, sizeof(want) - 1);
    sb_free(&got);
}

static void test_clamd_stream_zero_copy(void **state)
{
    (void)state;
    static const char msg[] = "0123456789";
    struct clamd_stream cs;
    struct iovec iov[16];
    clamd_stream_init(&cs, msg, 10, 4);
    size_t n = clamd_stream_fill(&cs, iov, 16);
    /* command, then (prefix, data) x 3, then the terminator */
    assert_int_equal(n, 8);
    assert_int_equal(iov[0].iov_len, 10);
    assert_memory_equal(iov[0].iov_base, "zINSTREAM", 10);
    assert_ptr_equal(iov[2].iov_base, msg);
    assert_ptr_equal(iov[4].iov_base, msg + 4);
    assert_ptr_equal(iov[6].iov_base, msg + 8);
    assert_int_equal(iov[6].iov_len, 2);
    assert_memory_equal(iov[3].iov_base, "\0\0\0\4", 4);
    assert_memory_equal(iov[5].iov_base, "\0\0\0\2", 4);
    assert_memory_equal(iov[7].iov_base, "\0\0\0\0", 4);
    /* resume in the middle of a data chunk: the iovec points into msg */
    clamd_stream_advance(&cs, 10 + 4 + 1);
    n = clamd_stream_fill(&cs, iov, 1);
    assert_int_equal(n, 1);
    assert_ptr_equal(iov[0].iov_base, msg + 1);
    assert_int_equal(iov[0].iov_len, 3);
}

static void test_clamd_stream_empty_message(void **state)
{
    (void)state;
    struct clamd_stream cs;
    struct sb got = {0};
    clamd_stream_init(&cs, "", 0, 0);
    drain(&cs, 64, 0, 0, &got);
    assert_int_equal(got.len, 14);
    assert_memory_equal(got.data, "zINSTREAM\0\0\0\0\0", 14);
    sb_free(&got);
}

static void test_clamd_stream_every_split(void **state)
{
    (void)state;
    static const size_t lens[] = {1, 3, 4, 5, 63, 64, 65, 1000, 4096 + 7};
    static const size_t chunks[] = {1, 4, 64, 0};
    static const size_t iovmaxes[] = {1, 2, 3, 64};
    char *msg = malloc(5000);
    assert_non_null(msg);
    for (size_t i = 0; i < 5000; i++)
        msg[i] = (char)(i * 7 + 3);
    for (size_t a = 0; a < MX_ARRAY_LEN(lens); a++)
        for (size_t b = 0; b < MX_ARRAY_LEN(chunks); b++)
            for (size_t c = 0; c < MX_ARRAY_LEN(iovmaxes); c++)
                for (int mode = 0; mode < 4; mode++) {
                    struct clamd_stream cs;
                    struct sb want = {0}, got = {0};
                    size_t ch = chunks[b] ? chunks[b] : CLAMD_CHUNK_DEFAULT;
                    expected(&want, msg, lens[a], ch);
                    clamd_stream_init(&cs, msg, lens[a], chunks[b]);
                    assert_int_equal(cs.total, want.len);
                    drain(&cs, iovmaxes[c], mode, a * 100 + b * 10 + c + 1, &got);
                    assert_int_equal(got.len, want.len);
                    if (memcmp(got.data, want.data, want.len))
                        print_error("len %zu chunk %zu iovmax %zu mode %d\n", lens[a], ch,
                                    iovmaxes[c], mode);
                    assert_memory_equal(got.data, want.data, want.len);
                    sb_free(&want);
                    sb_free(&got);
                }
    free(msg);
}

/* test_clamd_stream_windowed_every_split - a message supplied one or
 * several chunks at a time (msg NULL at init, clamd_stream_need and
 * clamd_stream_window) gives the same bytes as the whole message, for every
 * length, chunk size, iovec count and write size. */
static void test_clamd_stream_windowed_every_split(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 3, 4, 5, 63, 64, 65, 1000, 4096 + 7};
    static const size_t chunks[] = {1, 4, 64, 0};
    static const size_t iovmaxes[] = {1, 2, 64};
    static const size_t pers[] = {1, 3};
    char *msg = malloc(5000);
    assert_non_null(msg);
    for (size_t i = 0; i < 5000; i++)
        msg[i] = (char)(i * 7 + 3);
    for (size_t a = 0; a < MX_ARRAY_LEN(lens); a++)
        for (size_t b = 0; b < MX_ARRAY_LEN(chunks); b++)
            for (size_t c = 0; c < MX_ARRAY_LEN(iovmaxes); c++)
                for (size_t p = 0; p < MX_ARRAY_LEN(pers); p++)
                    for (int mode = 0; mode < 3; mode++) {
                        struct clamd_stream cs;
                        struct sb want = {0}, got = {0};
                        size_t ch = chunks[b] ? chunks[b] : CLAMD_CHUNK_DEFAULT;
                        expected(&want, msg, lens[a], ch);
                        clamd_stream_init(&cs, NULL, lens[a], chunks[b]);
                        drain_windowed(&cs, msg, pers[p], iovmaxes[c], mode, a * 100 + b + 1, &got);
                        assert_int_equal(got.len, want.len);
                        assert_memory_equal(got.data, want.data, want.len);
                        sb_free(&want);
                        sb_free(&got);
                    }
    free(msg);
}

/* test_clamd_stream_window_need - without the chunk in the window the
 * cursor sends only what it has (the command, or the terminator) and names
 * the chunk it needs; a chunk's prefix goes out together with its data. */
static void test_clamd_stream_window_need(void **state)
{
    (void)state;
    struct clamd_stream cs;
    struct iovec iov[16];
    size_t off = 99, n = 99;
    clamd_stream_init(&cs, NULL, 10, 4);
    assert_true(clamd_stream_need(&cs, &off, &n));
    assert_int_equal(off, 0);
    assert_int_equal(n, 4);
    assert_int_equal(clamd_stream_fill(&cs, iov, 16), 1); /* the command alone */
    assert_int_equal(iov[0].iov_len, CLAMD_CMD_LEN);
    clamd_stream_advance(&cs, CLAMD_CMD_LEN);
    assert_int_equal(clamd_stream_fill(&cs, iov, 16), 0);
    clamd_stream_window(&cs, "abcd", 0, 4);
    assert_false(clamd_stream_need(&cs, &off, &n));
    assert_int_equal(clamd_stream_fill(&cs, iov, 16), 2); /* prefix and data of chunk 0 */
    assert_memory_equal(iov[0].iov_base, "\0\0\0\4", 4);
    assert_memory_equal(iov[1].iov_base, "abcd", 4);
    clamd_stream_advance(&cs, 4 + 2);
    assert_false(clamd_stream_need(&cs, &off, &n)); /* the rest of chunk 0 first */
    clamd_stream_advance(&cs, 2);
    assert_true(clamd_stream_need(&cs, &off, &n));
    assert_int_equal(off, 4);
    assert_int_equal(n, 4);
    clamd_stream_window(&cs, "efghij", 4, 6); /* the last two chunks at once */
    assert_int_equal(clamd_stream_fill(&cs, iov, 16), 5);
    assert_memory_equal(iov[3].iov_base, "ij", 2);
    assert_memory_equal(iov[4].iov_base, "\0\0\0\0", 4);
    clamd_stream_advance(&cs, 4 + 4 + 4 + 2);
    clamd_stream_window(&cs, NULL, 0, 0); /* the terminator needs no data */
    assert_false(clamd_stream_need(&cs, &off, &n));
    assert_int_equal(clamd_stream_fill(&cs, iov, 16), 1);
    assert_int_equal(iov[0].iov_len, 4);
    clamd_stream_advance(&cs, 4);
    assert_true(clamd_stream_done(&cs));
    assert_false(clamd_stream_need(&cs, &off, &n));
}

static void test_clamd_stream_prefix_slots_bounded(void **state)
{
    (void)state;
    /* 1-octet chunks and a big iovec array: one fill lays out at most
     * CLAMD_CURSOR_CHUNKS prefixes, so no prefix slot is reused in it */
    static const char msg[100] = {0};
    struct clamd_stream cs;
    struct iovec iov[64];
    clamd_stream_init(&cs, msg, sizeof(msg), 1);
    clamd_stream_advance(&cs, CLAMD_CMD_LEN + 2); /* inside chunk 0's prefix */
    size_t n = clamd_stream_fill(&cs, iov, 64);
    assert_int_equal(n, 2 * CLAMD_CURSOR_CHUNKS);
    for (size_t i = 0; i < n; i += 2)
        for (size_t j = i + 2; j < n; j += 2)
            assert_ptr_not_equal(iov[i].iov_base, iov[j].iov_base);
    assert_int_equal(iov[0].iov_len, 2);
}

static void test_clamd_stream_advance_clamps(void **state)
{
    (void)state;
    struct clamd_stream cs;
    clamd_stream_init(&cs, "abc", 3, 0);
    assert_false(clamd_stream_done(&cs));
    clamd_stream_advance(&cs, SIZE_MAX);
    assert_true(clamd_stream_done(&cs));
    assert_int_equal(cs.pos, cs.total);
}

/* parse - clamd_reply_parse over a C string plus its NUL when nul is set. */
static enum clamd_verdict parse(const char *s, bool nul, bool eof, struct clamd_reply *r)
{
    return clamd_reply_parse(s, strlen(s) + (nul ? 1 : 0), eof, r);
}

static void test_clamd_reply_ok(void **state)
{
    (void)state;
    struct clamd_reply r;
    assert_int_equal(parse("stream: OK", true, false, &r), CLAMD_CLEAN);
    assert_int_equal(r.used, 11);
    assert_int_equal(parse("stream: OK\n", false, false, &r), CLAMD_CLEAN);
    assert_int_equal(r.used, 11);
    assert_int_equal(parse("stream: OK\r\n", false, false, &r), CLAMD_CLEAN);
    assert_int_equal(parse("1: stream: OK", true, false, &r), CLAMD_CLEAN);
    assert_int_equal(parse("stream: OK", false, true, &r), CLAMD_CLEAN);
    assert_int_equal(r.used, 10);
    assert_string_equal(clamd_verdict_name(CLAMD_CLEAN), "clean");
}

static void test_clamd_reply_found(void **state)
{
    (void)state;
    struct clamd_reply r;
    assert_int_equal(parse("stream: Eicar-Test-Signature FOUND", true, false, &r), CLAMD_FOUND);
    assert_string_equal(r.name, "Eicar-Test-Signature");
    assert_int_equal(
        parse("stream: Win.Test.EICAR_HDB-1(44d88612fea8a8f36de82e1278abb02f:68) FOUND\n", false,
              false, &r),
        CLAMD_FOUND);
    assert_string_equal(r.name, "Win.Test.EICAR_HDB-1(44d88612fea8a8f36de82e1278abb02f:68)");
    /* a name with spaces, and an over-long name cut to CLAMD_NAME_MAX */
    assert_int_equal(parse("stream: Some Odd Name FOUND", true, false, &r), CLAMD_FOUND);
    assert_string_equal(r.name, "Some Odd Name");
    char big[CLAMD_NAME_MAX + 100];
    strcpy(big, "stream: ");
    memset(big + 8, 'N', CLAMD_NAME_MAX + 50);
    strcpy(big + 8 + CLAMD_NAME_MAX + 50, " FOUND");
    assert_int_equal(parse(big, true, false, &r), CLAMD_FOUND);
    assert_int_equal(strlen(r.name), CLAMD_NAME_MAX);
    /* no name at all */
    assert_int_equal(parse("stream:  FOUND", true, false, &r), CLAMD_MALFORMED);
    assert_int_equal(parse("stream: FOUND", true, false, &r), CLAMD_MALFORMED);
}

static void test_clamd_reply_errors(void **state)
{
    (void)state;
    struct clamd_reply r;
    assert_int_equal(parse("INSTREAM size limit exceeded. ERROR", true, false, &r),
                     CLAMD_SIZE_LIMIT);
    assert_string_equal(r.name, "INSTREAM size limit exceeded.");
    assert_int_equal(parse("stream: Can't allocate memory ERROR\n", false, false, &r), CLAMD_ERROR);
    assert_string_equal(r.name, "Can't allocate memory");
    assert_int_equal(parse("Command invalid inside IDSESSION. ERROR", true, false, &r),
                     CLAMD_ERROR);
    assert_int_equal(parse("ERROR", true, false, &r), CLAMD_ERROR);
    assert_int_equal(parse("UNKNOWN COMMAND", true, false, &r), CLAMD_MALFORMED);
    assert_string_equal(r.name, "UNKNOWN COMMAND");
    assert_int_equal(parse("", true, false, &r), CLAMD_MALFORMED);
    assert_int_equal(parse("stream: OKAY", true, false, &r), CLAMD_MALFORMED);
    assert_int_equal(parse("stream: ok", true, false, &r), CLAMD_MALFORMED);
}

static void test_clamd_reply_incomplete_and_limits(void **state)
{
    (void)state;
    struct clamd_reply r;
    const char *full = "stream: Eicar-Test-Signature FOUND";
    for (size_t n = 0; n < strlen(full); n++) {
        assert_int_equal(clamd_reply_parse(full, n, false, &r), CLAMD_INCOMPLETE);
        assert_int_equal(r.used, 0);
    }
    assert_int_equal(clamd_reply_parse("", 0, true, &r), CLAMD_MALFORMED);
    assert_int_equal(clamd_reply_parse("stream: Eic", 11, true, &r), CLAMD_MALFORMED);
    /* the first line only; the rest is left for the caller */
    assert_int_equal(clamd_reply_parse("stream: OK\0stream: X FOUND", 26, false, &r), CLAMD_CLEAN);
    assert_int_equal(r.used, 11);
    /* endless garbage without an end is malformed once past the limit */
    char *junk = malloc(CLAMD_REPLY_MAX);
    assert_non_null(junk);
    memset(junk, 'j', CLAMD_REPLY_MAX);
    assert_int_equal(clamd_reply_parse(junk, CLAMD_REPLY_MAX - 1, false, &r), CLAMD_INCOMPLETE);
    assert_int_equal(clamd_reply_parse(junk, CLAMD_REPLY_MAX, false, &r), CLAMD_MALFORMED);
    assert_int_equal(r.used, CLAMD_REPLY_MAX);
    free(junk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clamd_stream_exact_bytes),
        cmocka_unit_test(test_clamd_stream_zero_copy),
        cmocka_unit_test(test_clamd_stream_empty_message),
        cmocka_unit_test(test_clamd_stream_every_split),
        cmocka_unit_test(test_clamd_stream_windowed_every_split),
        cmocka_unit_test(test_clamd_stream_window_need),
        cmocka_unit_test(test_clamd_stream_prefix_slots_bounded),
        cmocka_unit_test(test_clamd_stream_advance_clamps),
        cmocka_unit_test(test_clamd_reply_ok),
        cmocka_unit_test(test_clamd_reply_found),
        cmocka_unit_test(test_clamd_reply_errors),
        cmocka_unit_test(test_clamd_reply_incomplete_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
