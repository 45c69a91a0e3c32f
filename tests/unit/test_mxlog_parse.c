/* test_mxlog_parse.c - mxlog's line parser: the prefix (time stamp, id),
 * kinds of the lines session.c and filter.c write, summary fields (a
 * quoted reason holding "key=" is not taken for the key), malformed lines,
 * the civil time round trip, and the case-insensitive search against a
 * naive reference.
 * Description: pure functions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "parse.h"
#include "scan.h"

#define PFX " [01/Dec/2026:21:16:30], E2EE9E45, "

/* kind_of - the kind of PFX + text. */
static enum mxl_kind kind_of(const char *text)
{
    char line[512];
    snprintf(line, sizeof(line), PFX "%s", text);
    struct mxl_line l;
    return mxl_parse_line(line, strlen(line), &l);
}

/* test_mxlog_parse_prefix - time, id and text of a well-formed line. */
static void test_mxlog_parse_prefix(void **state)
{
    (void)state;
    const char *s = PFX "220 mx.test ESMTP mxring Receiver";
    struct mxl_line l;
    assert_int_equal(mxl_parse_line(s, strlen(s), &l), MXL_K_REPLY);
    assert_int_equal(l.sid, 0xE2EE9E45u);
    int y, mo, d, h, mi, sec;
    mxl_civil_from(l.t, &y, &mo, &d, &h, &mi, &sec);
    assert_int_equal(y, 2026);
    assert_int_equal(mo, 12);
    assert_int_equal(d, 1);
    assert_int_equal(h, 21);
    assert_int_equal(mi, 16);
    assert_int_equal(sec, 30);
    assert_int_equal(l.len, strlen("220 mx.test ESMTP mxring Receiver"));
    assert_memory_equal(l.text, "220 mx", 6);
}

/* test_mxlog_parse_kinds - every line the reconstruction relies on. */
static void test_mxlog_parse_kinds(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        enum mxl_kind k;
    } cases[] = {
        {"Connection accepted: client [127.0.0.1]:4500, local port 25, worker 0", MXL_K_CONNECT},
        {"250-PIPELINING", MXL_K_REPLY},
        {"EHLO client.example", MXL_K_HELO},
        {"ehlo x", MXL_K_HELO},
        {"EHLOX", MXL_K_OTHER},
        {"mail FROM:<a@b.example> size=18", MXL_K_MAIL},
        {"RCPT TO:<u@example.test>", MXL_K_RCPT},
        {"DATA", MXL_K_DATA},
        {"RSET", MXL_K_RSET},
        {".", MXL_K_DOT},
        {"Transaction summary: client=1.2.3.4 helo=- tls=- auth=- from=<> rcpts=0 "
         "rcpts_refused=1 size=0 result=aborted reason=\"QUIT\"",
         MXL_K_SUMMARY},
        {"CloseClient Started. (QUIT)", MXL_K_CLOSE},
        {"closesocket()", MXL_K_CLOSESOCKET},
        {"RCPT refused: <x@example.test> User unknown (not in the recipient directory)",
         MXL_K_RCPT_REFUSED},
        {"AUTH failed (2 of 3): user bob (PLAIN): rejected", MXL_K_AUTH_FAILED},
        {"AUTH success: user bob (PLAIN)", MXL_K_AUTH_OK},
        {"TLS established: TLSv1.3, cipher TLS_AES_256_GCM_SHA384", MXL_K_TLS_OK},
        {"TLS failed: handshake: wrong version number", MXL_K_TLS_FAILED},
        {"Message accepted: queue id 6B0F392ED9C300000000, 18 octets, 1 recipient(s)",
         MXL_K_MSG_ACCEPTED},
        {"Message refused (29 octets): bare LF at data offset 5, no SMTP command follows it",
         MXL_K_MSG_REFUSED},
        {"SURBL verdict: evil.test listed in multi.surbl.test: reject", MXL_K_SURBL},
        {"Antivirus: stream: Eicar-Signature FOUND: reject", MXL_K_VIRUS},
        {"timeout_command timeout", MXL_K_TIMEOUT},
        {"max_sessions_per_ip (2) reached for [127.0.0.1]: connection refused", MXL_K_PER_IP},
        {"client talked before the greeting (greet_pause_ms = 500)", MXL_K_PREGREET},
        {"mxringd started (version 0.1.0, pid 1, workers 2)", MXL_K_START},
        {"Check MAIL FROM address = <a@b.example>", MXL_K_OTHER},
        {"", MXL_K_OTHER},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum mxl_kind k = kind_of(cases[i].text);
        if (k != cases[i].k)
            fail_msg("\"%s\": kind %d, want %d", cases[i].text, k, cases[i].k);
    }
}

/* test_mxlog_parse_bad_lines - what is not in the format is BAD. */
static void test_mxlog_parse_bad_lines(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "hello",
        " [01/Dec/2026:21:16:30], E2EE9E45,",      /* too short */
        " [01/Xyz/2026:21:16:30], E2EE9E45, text", /* month */
        " [01/Dec/2026:25:16:30], E2EE9E45, text", /* hour */
        " [01/Dec/2026:21:16:30], E2EE9G45, text", /* id */
        " [01/Dec/2026:21:16:30]; E2EE9E45, text", /* separator */
        "[01/Dec/2026:21:16:30], E2EE9E45, text ", /* leading space */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mxl_line l;
        assert_int_equal(mxl_parse_line(bad[i], strlen(bad[i]), &l), MXL_K_BAD);
    }
}

/* test_mxlog_parse_summary_fields - values, quoted and <> ones; a quoted
 * reason that contains "id=" does not answer the id key. */
static void test_mxlog_parse_summary_fields(void **state)
{
    (void)state;
    const char *t = "Transaction summary: client=127.0.0.1 helo=h.example tls=TLSv1.3 auth=- "
                    "from=<a b@c> rcpts=2 rcpts_refused=1 size=1234 result=refused "
                    "reason=\"content filter: x id=FAKE\"";
    struct mxl_str v;
    assert_true(mxl_field(t, strlen(t), "from", &v));
    assert_int_equal(v.n, 5);
    assert_memory_equal(v.p, "a b@c", 5);
    assert_true(mxl_field(t, strlen(t), "rcpts", &v));
    assert_int_equal(mxl_u64(v), 2);
    assert_true(mxl_field(t, strlen(t), "size", &v));
    assert_int_equal(mxl_u64(v), 1234);
    assert_true(mxl_field(t, strlen(t), "reason", &v));
    assert_int_equal(v.n, strlen("content filter: x id=FAKE"));
    assert_false(mxl_field(t, strlen(t), "id", &v));
    assert_true(mxl_field(t, strlen(t), "client", &v));
    assert_int_equal(v.n, 9);
}

/* summary_val - the value of key among kv[0..n) ("" when absent; the
 * last one when repeated, as the reconstruction takes them). */
static const char *summary_val(const struct mxl_kv *kv, size_t n, const char *key, char *buf)
{
    buf[0] = 0;
    for (size_t i = 0; i < n; i++)
        if (kv[i].key.n == strlen(key) && memcmp(kv[i].key.p, key, kv[i].key.n) == 0)
            snprintf(buf, 300, "%.*s", (int)kv[i].val.n, kv[i].val.p);
    return buf;
}

/* test_mxlog_parse_summary_forged - client text inside a summary line (a
 * HELO name opening a quote, a quoted local part holding '>', '"' and
 * " result=queued id=... reason=\"") stays in its own field: the server's
 * result, size and reason are the ones read. */
static void test_mxlog_parse_summary_forged(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "Transaction summary: client=127.0.0.1 helo=\"x tls=- auth=- from=<\"x> result=queued "
        "id=EVIL size=999 reason=\"@b.example> rcpts=1 rcpts_refused=0 size=0 result=aborted "
        "reason=\"RSET\"",
        "Transaction summary: client=127.0.0.1 helo=<y tls=- auth=- from=<\"a> rcpts=1 "
        "rcpts_refused=0 size=0 result=queued id=EVIL\"@b> rcpts=1 rcpts_refused=0 size=0 "
        "result=aborted reason=\"QUIT\"",
    };
    static const char *const from[] = {"\"x> result=queued id=EVIL size=999 reason=\"@b.example",
                                       "\"a> rcpts=1 rcpts_refused=0 size=0 result=queued "
                                       "id=EVIL\"@b"};
    static const char *const reason[] = {"RSET", "QUIT"};
    static const char *const helo[] = {"\"x", "<y"};
    for (size_t i = 0; i < 2; i++) {
        struct mxl_kv kv[16];
        char b[300];
        size_t n = mxl_summary_fields(lines[i], strlen(lines[i]), kv, 16);
        assert_int_equal(n, 10);
        assert_string_equal(summary_val(kv, n, "result", b), "aborted");
        assert_string_equal(summary_val(kv, n, "id", b), "");
        assert_string_equal(summary_val(kv, n, "size", b), "0");
        assert_string_equal(summary_val(kv, n, "reason", b), reason[i]);
        assert_string_equal(summary_val(kv, n, "from", b), from[i]);
        assert_string_equal(summary_val(kv, n, "helo", b), helo[i]);
        assert_string_equal(summary_val(kv, n, "client", b), "127.0.0.1");
    }
    const char *ok =
        "Transaction summary: client=10.0.0.1 helo=h tls=TLSv1.3 auth=bob@example.test "
        "from=<> rcpts=2 rcpts_refused=1 size=42 result=queued id=6B0F392ED9C3";
    struct mxl_kv kv[16];
    char b[300];
    size_t n = mxl_summary_fields(ok, strlen(ok), kv, 16);
    assert_int_equal(n, 10);
    assert_string_equal(summary_val(kv, n, "from", b), "");
    assert_string_equal(summary_val(kv, n, "id", b), "6B0F392ED9C3");
    assert_string_equal(summary_val(kv, n, "auth", b), "bob@example.test");
    assert_string_equal(summary_val(kv, n, "rcpts_refused", b), "1");
    assert_string_equal(summary_val(kv, n, "reason", b), "");
    const char *cut = "Transaction summary: client=10.0.0.1 helo=h tls=- auth=- from=<a@b> rcpts=1";
    assert_int_equal(mxl_summary_fields(cut, strlen(cut), kv, 16), 0);
}

/* test_mxlog_parse_civil_round_trip - civil seconds both ways. */
static void test_mxlog_parse_civil_round_trip(void **state)
{
    (void)state;
    for (int64_t t = -86400 * 400; t < 86400LL * 365 * 80; t += 86400 * 37 + 3671) {
        int y, mo, d, h, mi, s;
        mxl_civil_from(t, &y, &mo, &d, &h, &mi, &s);
        assert_int_equal(mxl_civil_to(y, mo, d, h, mi, s), t);
    }
}

/* ref_find - the naive case-insensitive search. */
static size_t ref_find(const char *h, size_t n, const char *nd, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (strncasecmp(h + i, nd, m) == 0)
            return i;
    return n;
}

/* test_mxlog_scan_find_matches_reference - random haystacks with the
 * needle planted in mixed case at every alignment, and misses. */
static void test_mxlog_scan_find_matches_reference(void **state)
{
    (void)state;
    srand(7);
    static const char alpha[] = "abcXYZ@.-0 ";
    char hay[300], needle[16];
    for (int round = 0; round < 4000; round++) {
        size_t n = (size_t)(rand() % 290), m = 1 + (size_t)(rand() % 12);
        for (size_t i = 0; i < n; i++)
            hay[i] = alpha[rand() % (int)(sizeof(alpha) - 1)];
        for (size_t i = 0; i < m; i++)
            needle[i] = alpha[rand() % (int)(sizeof(alpha) - 1)];
        if (n >= m && rand() % 2) {
            size_t at = (size_t)rand() % (n - m + 1);
            for (size_t i = 0; i < m; i++)
                hay[at + i] =
                    (char)(rand() % 2 ? needle[i] ^ (needle[i] >= 'A' ? 0x20 : 0) : needle[i]);
        }
        hay[n] = 0;
        assert_int_equal(mxl_find_ci(hay, n, needle, m), ref_find(hay, n, needle, m));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mxlog_parse_prefix),
        cmocka_unit_test(test_mxlog_parse_kinds),
        cmocka_unit_test(test_mxlog_parse_bad_lines),
        cmocka_unit_test(test_mxlog_parse_summary_fields),
        cmocka_unit_test(test_mxlog_parse_summary_forged),
        cmocka_unit_test(test_mxlog_parse_civil_round_trip),
        cmocka_unit_test(test_mxlog_scan_find_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
