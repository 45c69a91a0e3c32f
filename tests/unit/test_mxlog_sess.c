/* test_mxlog_sess.c - mxlog's session reconstruction and verdicts:
 * interleaved sessions stay apart, summary lines and the dialogue alone
 * (a log cut off before the summary) give the same verdicts, every
 * verdict kind of issue 13 from the lines mxringd writes, a restart cuts
 * open sessions off, bad lines are counted.
 * Description: synthetic logs fed through mxl_walk_buf. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sess.h"
#include "verdict.h"
#include "walk.h"

#define T0 " [01/Dec/2026:10:00:0"

struct seen {
    char items[32][600]; /* "T|S ip verdict: words" */
    int n;
};

/* on_txn - record each transaction's verdict. */
static void on_txn(void *arg, struct mxl_sess *s, const struct mxl_txn *x)
{
    struct seen *z = arg;
    char words[512];
    enum mxl_verdict v = mxl_txn_verdict(s, x, NULL, words, sizeof(words));
    if (z->n < 32)
        snprintf(z->items[z->n++], sizeof(z->items[0]), "T %08X %s %s: %s", s->sid, s->ip,
                 mxl_verdict_name(v), words);
}

/* on_sess - record notable sessions. */
static void on_sess(void *arg, struct mxl_sess *s)
{
    struct seen *z = arg;
    char words[512];
    enum mxl_verdict v = mxl_sess_verdict(s, words, sizeof(words));
    if (mxl_sess_notable(s) && z->n < 32)
        snprintf(z->items[z->n++], sizeof(z->items[0]), "S %08X %s %s: %s", s->sid, s->ip,
                 mxl_verdict_name(v), words);
}

/* run - feed "SID|text" lines (one second apart, mod 10) and end all. */
static struct mxl_opts run(struct seen *z, const char *const *lines)
{
    static char buf[1 << 16];
    size_t n = 0;
    for (int i = 0; lines[i]; i++) {
        const char *bar = strchr(lines[i], '|');
        if (!bar) { /* a raw line */
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\n", lines[i]);
            continue;
        }
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, T0 "%d], %.*s, %s\n", i % 10,
                              (int)(bar - lines[i]), lines[i], bar + 1);
    }
    memset(z, 0, sizeof(*z));
    struct mxl_opts o = {.since = INT64_MIN, .until = INT64_MAX};
    struct mxl_sink sink = {on_txn, on_sess, z};
    struct mxl_engine *e = mxl_engine_new(&sink, false);
    assert_non_null(e);
    assert_true(mxl_walk_buf(&o, e, buf, n));
    mxl_engine_end_all(e, MXL_END_EOF, INT64_MIN);
    mxl_engine_free(e);
    return o;
}

/* expect - item i starts with want. */
static void expect(const struct seen *z, int i, const char *want)
{
    if (i >= z->n || strncmp(z->items[i], want, strlen(want)) != 0)
        fail_msg("item %d: got \"%s\", want \"%s...\"", i, i < z->n ? z->items[i] : "(none)", want);
}

/* expect_some - some item starts with want (order of a cut is unspecified). */
static void expect_some(const struct seen *z, const char *want)
{
    for (int i = 0; i < z->n; i++)
        if (strncmp(z->items[i], want, strlen(want)) == 0)
            return;
    fail_msg("no item starts with \"%s\"", want);
}

#define CONN(sid, ip) sid "|Connection accepted: client [" ip "]:4000, local port 25, worker 0"
#define SUM(sid, rest) sid "|Transaction summary: client=10.0.0.1 helo=h tls=- auth=- " rest

/* test_mxlog_sess_interleaved - two sessions line by line: each keeps its
 * client, recipients and verdict. */
static void test_mxlog_sess_interleaved(void **state)
{
    (void)state;
    const char *const log[] = {
        CONN("00000001", "10.0.0.1"),
        CONN("00000002", "10.0.0.2"),
        "00000001|MAIL FROM:<a@x.example>",
        "00000002|MAIL FROM:<b@y.example>",
        "00000001|250 2.1.0 ok",
        "00000002|250 2.1.0 ok",
        "00000002|RCPT TO:<nobody@example.test>",
        "00000001|RCPT TO:<u@example.test>",
        "00000002|RCPT refused: <nobody@example.test> User unknown (not in the recipient "
        "directory)",
        "00000001|250 2.1.5 ok",
        "00000002|550 5.1.1 <nobody@example.test>... User unknown.",
        "00000001|DATA",
        "00000001|354 go",
        "00000001|.",
        "00000001|Message accepted: queue id 6B0F392ED9C300000000, 18 octets, 1 recipient(s)",
        SUM("00000001", "from=<a@x.example> rcpts=1 rcpts_refused=0 size=18 result=queued "
                        "id=6B0F392ED9C300000000"),
        "00000002|QUIT",
        SUM("00000002", "from=<b@y.example> rcpts=0 rcpts_refused=1 size=0 result=aborted "
                        "reason=\"QUIT\""),
        "00000002|CloseClient Started. (QUIT)",
        "00000002|closesocket()",
        "00000001|CloseClient Started. (QUIT)",
        "00000001|closesocket()",
        NULL};
    struct seen z;
    run(&z, log);
    assert_int_equal(z.n, 2);
    expect(&z, 0, "T 00000001 10.0.0.1 accepted: accepted (queue id 6B0F392ED9C300000000)");
    expect(&z, 1,
           "T 00000002 10.0.0.2 user_unknown: refused at RCPT: <nobody@example.test> "
           "User unknown");
}

/* test_mxlog_sess_without_summary - the dialogue alone (older logs, or a
 * summary never written) gives the verdict; a restart cuts the open one. */
static void test_mxlog_sess_without_summary(void **state)
{
    (void)state;
    const char *const log[] = {
        CONN("00000001", "10.0.0.1"),
        CONN("00000002", "10.0.0.2"),
        "00000001|MAIL FROM:<a@x.example>",
        "00000001|250 ok",
        "00000001|RCPT TO:<u@example.test>",
        "00000001|250 ok",
        "00000001|DATA",
        "00000001|354 go",
        "00000001|.",
        "00000001|Message accepted: queue id 6B0F392ED9C300000001, 18 octets, 1 recipient(s)",
        "00000001|250 2.0.0 Message received ok. id=6B0F392ED9C300000001",
        "00000002|MAIL FROM:<b@y.example>",
        "00000002|250 ok",
        "00000002|RCPT TO:<v@example.test>",
        "00000002|250 ok",
        "00000002|DATA",
        "00000002|354 go",
        "00000000|mxringd started (version 0.1.0, pid 9, workers 2, first session id 00000001)",
        "00000001|Connection accepted: client [10.0.0.9]:1, local port 25, worker 0",
        NULL};
    struct seen z;
    run(&z, log);
    assert_int_equal(z.n, 4);
    expect(&z, 0, "T 00000001 10.0.0.1 accepted: accepted (queue id 6B0F392ED9C300000001)");
    /* the restart: session 1 had no open transaction, session 2 had */
    expect_some(&z, "S 00000001 10.0.0.1 cut_off: cut off by a crash or restart");
    expect_some(&z, "T 00000002 10.0.0.2 cut_off: cut off by a crash or restart");
    /* the same id after the restart is a new session (cut by the end of input) */
    expect(&z, 3, "S 00000001 10.0.0.9 cut_off: cut off: no end in the log");
}

/* One scenario: session lines after the connect line, and the verdict. */
struct scen {
    const char *lines[12];
    const char *want;
};

/* test_mxlog_sess_verdicts - every verdict kind from mxringd's lines. */
static void test_mxlog_sess_verdicts(void **state)
{
    (void)state;
    static const struct scen sc[] = {
        {{"|RCPT TO:<r@far.example>", "|RCPT refused: <r@far.example> Relaying denied",
          "|550 5.7.1 <r@far.example>... Relaying denied.",
          "|Transaction summary: client=10.0.0.1 helo=h tls=- auth=- from=<a@x> rcpts=0 "
          "rcpts_refused=1 size=0 result=aborted reason=\"QUIT\""},
         "T 00000005 10.0.0.1 relay_denied: relaying denied for <r@far.example>"},
        {{"|RCPT TO:<r101@example.test>", "|452 4.5.3 Too many recipients",
          "|Transaction summary: client=10.0.0.1 helo=h tls=- auth=- from=<a@x> rcpts=0 "
          "rcpts_refused=1 size=0 result=aborted reason=\"RSET\""},
         "T 00000005 10.0.0.1 too_many_recipients: too many recipients"},
        {{"|SURBL verdict: evil.test listed in multi.surbl.test: reject",
          "|Transaction summary: client=10.0.0.1 helo=h tls=- auth=- from=<a@x> rcpts=1 "
          "rcpts_refused=0 size=99 result=refused reason=\"content filter: spam (SURBL/URIBL)\""},
         "T 00000005 10.0.0.1 spam: spam (domain evil.test listed in zone multi.surbl.test): "
         "rejected"},
        {{"|SURBL verdict: evil.test listed in q.surbl.test: quarantine",
          "|Transaction summary: client=10.0.0.1 helo=h tls=- auth=- from=<a@x> rcpts=1 "
          "rcpts_refused=0 size=99 result=quarantined id=6B0F392ED9C300000002 "
          "reason=\"surbl evil.test q.surbl.test\""},
         "T 00000005 10.0.0.1 quarantined: quarantined (queue id 6B0F392ED9C300000002): spam "
         "(domain evil.test listed in zone q.surbl.test)"},
        {{"|Antivirus: stream: Eicar-Signature FOUND: reject",
          "|Transaction summary: client=10.0.0.1 helo=h tls=- auth=- from=<a@x> rcpts=1 "
          "rcpts_refused=0 size=68 result=refused reason=\"content filter: virus "
          "Eicar-Signature\""},
         "T 00000005 10.0.0.1 virus: virus Eicar-Signature: rejected"},
        {{"|Transaction summary: client=10.0.0.1 helo=h tls=- auth=- from=<a@x> rcpts=1 "
          "rcpts_refused=0 size=29 result=refused reason=\"bare LF at data offset 5, an SMTP "
          "command follows it (smuggling attempt)\""},
         "T 00000005 10.0.0.1 bare_eol: bare LF/CR (smuggling defence): bare LF at data offset 5"},
        {{"|Transaction summary: client=10.0.0.1 helo=h tls=- auth=- from=<a@x> rcpts=1 "
          "rcpts_refused=0 size=29 result=refused reason=\"NUL octet at data offset 14\""},
         "T 00000005 10.0.0.1 nul: NUL in data: NUL octet at data offset 14"},
        {{"|Transaction summary: client=10.0.0.1 helo=h tls=- auth=- from=<a@x> rcpts=1 "
          "rcpts_refused=0 size=2000 result=refused reason=\"over max_message_size 1000\""},
         "T 00000005 10.0.0.1 too_big: too big: over max_message_size 1000"},
        {{"|MAIL FROM:<a@x> SIZE=999999999",
          "|MAIL refused: declared SIZE=999999999 over max_message_size 26214400",
          "|Transaction summary: client=10.0.0.1 helo=h tls=- auth=- from=<a@x> rcpts=0 "
          "rcpts_refused=0 size=999999999 result=refused reason=\"declared SIZE=999999999 over "
          "max_message_size 26214400\"",
          "|552 5.3.4 Message size exceeds fixed maximum message size"},
         "T 00000005 10.0.0.1 too_big: too big (refused at MAIL)"},
        {{"|DATA", "|354 go", "|end of input inside DATA: message not accepted",
          "|Transaction summary: client=10.0.0.1 helo=h tls=- auth=- from=<a@x> rcpts=1 "
          "rcpts_refused=0 size=0 result=aborted reason=\"client gone\"",
          "|CloseClient Started. (client gone)", "|closesocket()"},
         "T 00000005 10.0.0.1 client_gone_mid_data: client gone mid-DATA"},
        {{"|timeout_command timeout", "|421 4.4.2 mx.test Error: timeout exceeded",
          "|Transaction summary: client=10.0.0.1 helo=h tls=- auth=- from=<a@x> rcpts=1 "
          "rcpts_refused=0 size=0 result=aborted reason=\"timeout\""},
         "T 00000005 10.0.0.1 timeout: timeout (waiting for a command"},
        {{"|Transaction summary: client=10.0.0.1 helo=h tls=- auth=- from=<a@x> rcpts=1 "
          "rcpts_refused=0 size=0 result=aborted reason=\"shutdown\""},
         "T 00000005 10.0.0.1 shutdown: shutdown (mxringd stopping)"},
        {{"|AUTH failed (1 of 3): user bob@example.test (PLAIN): rejected",
          "|AUTH failed (2 of 3): user bob@example.test (PLAIN): rejected",
          "|AUTH failed (3 of 3): user bob@example.test (PLAIN): rejected",
          "|421 4.7.0 mx.test Error: too many authentication failures",
          "|CloseClient Started. (authentication failures)", "|closesocket()"},
         "S 00000005 10.0.0.1 auth_failed: AUTH failed for user bob@example.test (3rd attempt, "
         "cut off)"},
        {{"|TLS failed: handshake: wrong version number", "|CloseClient Started. (TLS failure)",
          "|closesocket()"},
         "S 00000005 10.0.0.1 tls_failed: TLS handshake failure: handshake: wrong version number"},
        {{"|max_sessions_per_ip (2) reached for [10.0.0.1]: connection refused",
          "|421 4.7.0 mx.test Error: too many connections from your address",
          "|CloseClient Started. (per-client session limit)", "|closesocket()"},
         "S 00000005 10.0.0.1 per_ip_limit: per-IP limit: too many connections from 10.0.0.1"},
        {{"|client talked before the greeting (greet_pause_ms = 500)",
          "|554 5.5.0 mx.test Error: talked before the greeting",
          "|CloseClient Started. (talked before the greeting)", "|closesocket()"},
         "S 00000005 10.0.0.1 early_talker: early talker"},
    };
    for (size_t i = 0; i < sizeof(sc) / sizeof(sc[0]); i++) {
        const char *log[16] = {CONN("00000005", "10.0.0.1"), "00000005|MAIL FROM:<a@x>",
                               "00000005|250 ok"};
        static char lines[12][400];
        int n = 3;
        if (strstr(sc[i].lines[0], "MAIL FROM") || strstr(sc[i].lines[0], "AUTH") ||
            strstr(sc[i].lines[0], "TLS") || strstr(sc[i].lines[0], "max_") ||
            strstr(sc[i].lines[0], "talked"))
            n = 1; /* no transaction opened before */
        for (int k = 0; k < 12 && sc[i].lines[k]; k++) {
            snprintf(lines[k], sizeof(lines[k]), "00000005%s", sc[i].lines[k]);
            log[n++] = lines[k];
        }
        log[n] = NULL;
        struct seen z;
        run(&z, log);
        expect(&z, 0, sc[i].want);
    }
}

/* test_mxlog_sess_proxy_dnsbl - a client refused by DNSBL and PROXY headers
 * refused (none, untrusted balancer, malformed), from the lines mxringd
 * writes: each its own verdict and words. */
static void test_mxlog_sess_proxy_dnsbl(void **state)
{
    (void)state;
    static const char *const lines[] = {
        CONN("00000001", "127.0.0.2"),
        "00000001|DNSBL bl.test: 2.0.0.127.bl.test listed (127.0.0.2), weight 3",
        "00000001|DNSBL verdict: score 3 (threshold 3): blocked using bl.test",
        "00000001|554 5.7.1 Service unavailable; client [127.0.0.2] blocked using bl.test",
        "00000001|CloseClient Started. (DNSBL)",
        "00000001|closesocket()",
        CONN("00000002", "127.0.0.1"),
        "00000002|PROXY header refused: not a PROXY header (from [127.0.0.1], 1 refused in this "
        "10-minute window)",
        "00000002|CloseClient Started. (PROXY header)",
        "00000002|closesocket()",
        CONN("00000003", "127.0.0.3"),
        "00000003|PROXY header refused: sender not in proxy_trusted_networks (from [127.0.0.3], 1 "
        "refused in this 10-minute window)",
        "00000003|CloseClient Started. (PROXY header)",
        "00000003|closesocket()",
        CONN("00000004", "127.0.0.1"),
        "00000004|PROXY header refused: v1: not 'TCP4|TCP6 src dst sport dport' (from "
        "[127.0.0.1], 2 refused in this 10-minute window)",
        "00000004|CloseClient Started. (PROXY header)",
        "00000004|closesocket()",
        CONN("00000005", "127.0.0.1"),
        "00000005|PROXY header refused: no complete PROXY header within 700 ms (from [127.0.0.1], "
        "3 refused in this 10-minute window)",
        "00000005|CloseClient Started. (PROXY header)",
        "00000005|closesocket()",
        CONN("00000006", "127.0.0.4"),
        "00000006|DNSBL verdict: score 1 (threshold 3): pass",
        "00000006|220 mx.test ESMTP",
        "00000006|QUIT",
        "00000006|CloseClient Started. (QUIT)",
        "00000006|closesocket()",
        NULL,
    };
    struct seen z;
    run(&z, lines);
    assert_int_equal(z.n, 6);
    expect(&z, 0,
           "S 00000001 127.0.0.2 dnsbl: client refused by DNSBL: blocked using bl.test "
           "(score 3, threshold 3)");
    expect(&z, 1,
           "S 00000002 127.0.0.1 proxy_refused: PROXY header refused: no PROXY header "
           "(not a PROXY header (from [127.0.0.1]");
    expect(&z, 2,
           "S 00000003 127.0.0.3 proxy_refused: PROXY header refused: untrusted balancer "
           "(sender not in proxy_trusted_networks");
    expect(&z, 3,
           "S 00000004 127.0.0.1 proxy_refused: PROXY header refused: malformed header "
           "(v1: not 'TCP4|TCP6 src dst sport dport'");
    expect(&z, 4,
           "S 00000005 127.0.0.1 proxy_refused: PROXY header refused: no PROXY header "
           "(no complete PROXY header within 700 ms");
    expect(&z, 5, "S 00000006 127.0.0.4 no_mail: no mail sent (QUIT)");
}

/* test_mxlog_sess_bad_lines_counted - junk between good lines is counted
 * and skipped; the sessions around it are intact. */
static void test_mxlog_sess_bad_lines_counted(void **state)
{
    (void)state;
    const char *const log[] = {CONN("00000001", "10.0.0.1"),
                               "garbage without a prefix",
                               " [99/Dec/2026:10:00:00], 00000001, bad day",
                               "\x01\x02\xff",
                               "00000001|CloseClient Started. (QUIT)",
                               "00000001|closesocket()",
                               NULL};
    struct seen z;
    struct mxl_opts o = run(&z, log);
    assert_int_equal(o.bad_lines, 3);
    assert_int_equal(z.n, 1);
    expect(&z, 0, "S 00000001 10.0.0.1 no_mail: no mail sent (QUIT)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mxlog_sess_interleaved),
        cmocka_unit_test(test_mxlog_sess_without_summary),
        cmocka_unit_test(test_mxlog_sess_verdicts),
        cmocka_unit_test(test_mxlog_sess_proxy_dnsbl),
        cmocka_unit_test(test_mxlog_sess_bad_lines_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
