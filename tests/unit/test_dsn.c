/* test_dsn.c - unit tests of core/dsn: the bounce's MIME structure is
 * parsed back (boundary, three parts and the closing delimiter), the
 * delivery-status fields per recipient, the original headers without the
 * body, CRLF-only lines under 998 octets, folding, the 8-bit flags and the
 * refusals (null sender). Single-threaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "dsn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char orig[] =
    "Received: from a ([127.0.0.1])\r\n\tby mx.test (mxring) with ESMTP id X\r\n"
    "Subject: hello\r\nFrom: <s@y.test>\r\n\r\nSECRET BODY LINE\r\n--not-a-header\r\n";

/* build - a bounce for two recipients (one with a long diagnostic). */
static char *build(struct dsn_rcpt *r, size_t n, const char *sender, bool *eightbit, bool *utf8)
{
    struct dsn_in in = {.reporting_mta = "mx.test",
                        .qid = "6B0CB708006960100000",
                        .orig_sender = sender,
                        .arrival = 1795995400,
                        .now = 1796000000,
                        .rcpts = r,
                        .nrcpt = n,
                        .msg = orig,
                        .msg_len = sizeof orig - 1};
    struct sb out = {0};
    if (!dsn_build(&in, &out, eightbit, utf8))
        return NULL;
    return out.data;
}

/* boundary_of - the boundary parameter of the top Content-Type. */
static char *boundary_of(const char *m)
{
    const char *b = strstr(m, "boundary=\"");
    assert_non_null(b);
    b += 10;
    const char *e = strchr(b, '"');
    char *r = strndup(b, (size_t)(e - b));
    return r;
}

/* part - the body of part idx (0-based) between delimiters, or NULL. */
static char *part(const char *m, const char *boundary, int idx)
{
    char delim[128];
    snprintf(delim, sizeof delim, "\r\n--%s", boundary);
    const char *p = strstr(m, delim);
    for (int i = 0; p && i < idx; i++)
        p = strstr(p + 1, delim);
    if (!p)
        return NULL;
    p += strlen(delim);
    if (strncmp(p, "--", 2) == 0)
        return NULL; /* the closing delimiter */
    const char *e = strstr(p, delim);
    return e ? strndup(p, (size_t)(e - p)) : NULL;
}

static void test_dsn_structure(void **state)
{
    (void)state;
    char longdiag[1500];
    memset(longdiag, 0, sizeof longdiag);
    for (int i = 0; i < 120; i++)
        strcat(longdiag, "word1234 ");
    struct dsn_rcpt r[] = {
        {"a@x.test", DSN_FAILED, "5.1.1", 550, "<a@x.test>: user unknown", "hop.test", NULL},
        {"b@x.test", DSN_FAILED, NULL, 552, longdiag, "hop.test", NULL},
    };
    bool eb = true, u8 = true;
    char *m = build(r, 2, "s@y.test", &eb, &u8);
    assert_non_null(m);
    assert_false(eb);
    assert_false(u8);
    /* headers of the bounce */
    const char *hend = strstr(m, "\r\n\r\n");
    assert_non_null(hend);
    char *top = strndup(m, (size_t)(hend - m));
    assert_non_null(strstr(top, "From: Mail Delivery System <MAILER-DAEMON@mx.test>\r\n"));
    assert_non_null(strstr(top, "To: <s@y.test>\r\n"));
    assert_non_null(strstr(top, "Subject: Undelivered Mail Returned to Sender\r\n"));
    assert_non_null(strstr(top, "Auto-Submitted: auto-replied\r\n"));
    assert_non_null(strstr(top, "Date: Mon, 30 Nov 2026 00:53:20 +0000\r\n"));
    assert_non_null(strstr(top, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
                                "\tboundary=\""));
    free(top);
    char *b = boundary_of(m);
    assert_null(strstr(orig, b));
    /* three parts, then the closing delimiter at the very end */
    char *p0 = part(m, b, 0), *p1 = part(m, b, 1), *p2 = part(m, b, 2);
    assert_non_null(p0);
    assert_non_null(p1);
    assert_non_null(p2);
    assert_null(part(m, b, 3));
    char closing[128];
    snprintf(closing, sizeof closing, "\r\n--%s--\r\n", b);
    assert_int_equal(strlen(m) - strlen(closing), (size_t)(strstr(m, closing) - m));
    assert_non_null(strstr(p0, "Content-Type: text/plain"));
    assert_non_null(
        strstr(p0, "<a@x.test>: host hop.test said: 550 5.1.1 <a@x.test>: user unknown"));
    /* the delivery-status part */
    assert_non_null(strstr(p1, "\r\nContent-Type: message/delivery-status\r\n\r\n"
                               "Reporting-MTA: dns; mx.test\r\n"
                               "X-Mxring-Queue-ID: 6B0CB708006960100000\r\n"
                               "Arrival-Date: Sun, 29 Nov 2026 23:36:40 +0000\r\n"
                               "\r\nFinal-Recipient: rfc822; a@x.test\r\n"
                               "Action: failed\r\nStatus: 5.1.1\r\n"
                               "Remote-MTA: dns; hop.test\r\n"
                               "Diagnostic-Code: smtp; 550 5.1.1 <a@x.test>: user unknown\r\n"
                               "Last-Attempt-Date: Mon, 30 Nov 2026 00:53:20 +0000\r\n"
                               "\r\nFinal-Recipient: rfc822; b@x.test\r\n"
                               "Action: failed\r\nStatus: 5.0.0\r\n"));
    /* the long diagnostic is folded: continuation lines start with a blank */
    const char *d = strstr(p1, "Diagnostic-Code: smtp; 552 word1234");
    assert_non_null(d);
    assert_non_null(strstr(d, "word1234\r\n word1234"));
    /* original headers, not the body */
    assert_non_null(strstr(p2, "Content-Type: text/rfc822-headers\r\n\r\n"
                               "Received: from a ([127.0.0.1])\r\n"
                               "\tby mx.test (mxring) with ESMTP id X\r\n"
                               "Subject: hello\r\nFrom: <s@y.test>\r\n"));
    assert_null(strstr(m, "SECRET BODY LINE"));
    /* every line ends in CRLF, is at most 78 octets here (all foldable) */
    for (const char *l = m; *l;) {
        const char *nl = strchr(l, '\n');
        assert_non_null(nl);
        if (nl > l)
            assert_true(nl[-1] == '\r');
        size_t ll = (size_t)(nl - l) - (nl > l);
        if (ll > 78)
            fail_msg("line of %zu octets: %.*s", ll, (int)ll, l);
        l = nl + 1;
    }
    free(p0), free(p1), free(p2), free(b), free(m);
}

/* build_in - dsn_build of in (an owned string, NULL when refused). */
static char *build_in(const struct dsn_in *in)
{
    struct sb out = {0};
    return dsn_build(in, &out, NULL, NULL) ? out.data : NULL;
}

static const struct dsn_in base_in = {.reporting_mta = "mx.test",
                                      .qid = "6B0CB708006960100000",
                                      .orig_sender = "s@y.test",
                                      .arrival = 1795995400,
                                      .now = 1796000000,
                                      .msg = orig,
                                      .msg_len = sizeof orig - 1};

static void test_dsn_delayed_with_envid_and_orcpt(void **state)
{
    (void)state;
    struct dsn_rcpt r = {.addr = "a@x.test",
                         .action = DSN_DELAYED,
                         .status = "4.2.0",
                         .code = 451,
                         .diag = "try later",
                         .orcpt = "rfc822;A+2Bx+40x.test"};
    struct dsn_in in = base_in;
    in.rcpts = &r, in.nrcpt = 1, in.envid = "QQ+2B1";
    char *m = build_in(&in);
    assert_non_null(m);
    assert_non_null(strstr(m, "Subject: Delayed Mail (still being retried)\r\n"));
    assert_non_null(strstr(m, "\r\n\r\nOriginal-Envelope-Id: QQ+1\r\n"
                              "Reporting-MTA: dns; mx.test\r\n"));
    assert_non_null(strstr(m, "\r\n\r\nOriginal-Recipient: rfc822; A+x@x.test\r\n"
                              "Final-Recipient: rfc822; a@x.test\r\n"
                              "Action: delayed\r\nStatus: 4.2.0\r\n"));
    assert_null(strstr(m, "SECRET BODY LINE"));
    free(m);
}

static void test_dsn_relayed(void **state)
{
    (void)state;
    struct dsn_rcpt r = {.addr = "a@x.test",
                         .action = DSN_RELAYED,
                         .code = 250,
                         .diag = "250 queued",
                         .remote_mta = "127.0.0.1"};
    struct dsn_in in = base_in;
    in.rcpts = &r, in.nrcpt = 1;
    char *m = build_in(&in);
    assert_non_null(m);
    assert_non_null(strstr(m, "Subject: Successful Mail Delivery Report\r\n"));
    assert_non_null(strstr(m, "Final-Recipient: rfc822; a@x.test\r\n"
                              "Action: relayed\r\nStatus: 2.0.0\r\n"
                              "Remote-MTA: dns; 127.0.0.1\r\n"));
    assert_null(strstr(m, "Original-Envelope-Id"));
    assert_null(strstr(m, "Original-Recipient"));
    free(m);
    r.action = DSN_DELIVERED; /* over LMTP */
    m = build_in(&in);
    assert_non_null(m);
    assert_non_null(strstr(m, "Action: delivered\r\nStatus: 2.0.0\r\n"));
    free(m);
}

static void test_dsn_ret_hdrs_and_full(void **state)
{
    (void)state;
    struct dsn_rcpt r = {"a@x.test", DSN_FAILED, "5.1.1", 550, "unknown", "hop.test", NULL};
    struct dsn_in in = base_in;
    in.rcpts = &r, in.nrcpt = 1;
    char *hdrs = build_in(&in); /* RET=HDRS, and no RET at all: headers only */
    assert_non_null(hdrs);
    assert_non_null(strstr(hdrs, "Content-Type: text/rfc822-headers\r\n"));
    assert_null(strstr(hdrs, "SECRET BODY LINE"));
    in.ret_full = true;
    char *full = build_in(&in);
    assert_non_null(full);
    assert_null(strstr(full, "text/rfc822-headers"));
    assert_non_null(strstr(full, "Content-Type: message/rfc822\r\n\r\nReceived: from a"));
    assert_non_null(strstr(full, "\r\n\r\nSECRET BODY LINE\r\n--not-a-header\r\n"));
    /* larger than DSN_FULL_MAX: headers only, and the text says so */
    char *big = malloc(DSN_FULL_MAX + 64);
    assert_non_null(big);
    memcpy(big, orig, sizeof orig - 1);
    memset(big + sizeof orig - 1, 'x', DSN_FULL_MAX + 64 - (sizeof orig - 1));
    in.msg = big, in.msg_len = DSN_FULL_MAX + 1;
    char *cut = build_in(&in);
    assert_non_null(cut);
    assert_non_null(strstr(cut, "Content-Type: text/rfc822-headers\r\n"));
    assert_non_null(strstr(cut, "only its headers are returned"));
    assert_null(strstr(cut, "SECRET BODY LINE"));
    free(big), free(cut), free(full), free(hdrs);
}

static void test_dsn_line_lengths_unfoldable(void **state)
{
    (void)state;
    char word[3000];
    memset(word, 'z', sizeof word - 1);
    word[sizeof word - 1] = 0;
    struct dsn_rcpt r = {"a@x.test", DSN_FAILED, "5.0.0", 554, word, "hop.test", NULL};
    char *m = build(&r, 1, "s@y.test", NULL, NULL);
    assert_non_null(m);
    size_t maxl = 0;
    for (const char *l = m; *l;) {
        const char *nl = strchr(l, '\n');
        size_t ll = (size_t)(nl - l);
        assert_true(ll > 0 ? l[ll - 1] == '\r' : 1);
        maxl = ll > maxl ? ll : maxl;
        l = nl + 1;
    }
    assert_true(maxl <= 998 + 1); /* + the CR */
    free(m);
}

static void test_dsn_refusals_and_flags(void **state)
{
    (void)state;
    struct dsn_rcpt r = {"j\xc3\xb6rg@x.test", DSN_DELAYED, NULL, 451, "later", NULL, NULL};
    assert_null(build(&r, 1, "", NULL, NULL)); /* never to the null sender */
    assert_false(dsn_wanted(""));
    assert_false(dsn_wanted(NULL));
    assert_true(dsn_wanted("s@y.test"));
    assert_null(build(&r, 0, "s@y.test", NULL, NULL));
    bool eb = false, u8 = false;
    char *m = build(&r, 1, "s@y.test", &eb, &u8);
    assert_non_null(m);
    assert_true(eb);
    assert_true(u8);
    assert_non_null(strstr(m, "report-type=global-delivery-status"));
    assert_non_null(strstr(m, "Content-Type: message/global-delivery-status"));
    assert_non_null(strstr(m, "Final-Recipient: utf-8; j\xc3\xb6rg@x.test\r\n"
                              "Action: delayed\r\nStatus: 4.0.0\r\n"
                              "Diagnostic-Code: smtp; 451 later\r\n"));
    assert_non_null(strstr(m, "Subject: Delayed Mail (still being retried)"));
    assert_null(strstr(m, "Remote-MTA"));
    free(m);
    /* a local reason without a reply code */
    struct dsn_rcpt l = {"a@x.test", DSN_FAILED, "4.4.7", 0, "lifetime exceeded\r\nx", NULL, NULL};
    m = build(&l, 1, "s@y.test", NULL, NULL);
    assert_non_null(
        strstr(m, "Status: 4.4.7\r\nDiagnostic-Code: X-mxring; lifetime exceeded x\r\n"));
    free(m);
}

static void test_dsn_date(void **state)
{
    (void)state;
    char d[48];
    dsn_date(0, d, sizeof d);
    assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 +0000");
    dsn_date(1795995400, d, sizeof d);
    assert_string_equal(d, "Sun, 29 Nov 2026 23:36:40 +0000");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dsn_structure),
        cmocka_unit_test(test_dsn_line_lengths_unfoldable),
        cmocka_unit_test(test_dsn_delayed_with_envid_and_orcpt),
        cmocka_unit_test(test_dsn_relayed),
        cmocka_unit_test(test_dsn_ret_hdrs_and_full),
        cmocka_unit_test(test_dsn_refusals_and_flags),
        cmocka_unit_test(test_dsn_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
