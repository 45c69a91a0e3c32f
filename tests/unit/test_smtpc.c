/* test_smtpc.c - unit tests of core/smtpc, the SMTP/LMTP client machine,
 * as golden transcripts: a scripted hop's replies go in, the commands the
 * machine sent ("C:"), the replies ("S:"), TLS steps and per-recipient
 * results ("R:") and the close reason ("X:") come out and are compared
 * whole. Plus the reply parser, dot-stuffing and split invariance.
 * Single-threaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "smtpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One scripted run. */
struct script {
    struct smtpc_opts opts;
    struct smtpc_msg msg;
    const struct smtpc_msg *msg2; /* delivered on the same connection after msg */
    const char *body;
    const char *const *replies; /* chunks, NULL-terminated; one per NEED_INPUT */
    size_t split;               /* 0: chunk as given; n: replies as one stream in n-byte pieces */
    size_t body_split;          /* 0: body in one piece; n: n-byte pieces */
    bool tls_fails;
    bool verbose_body; /* show body lines as C: (else "C: <body N octets>") */
};

/* put_lines - every line of text (len octets) prefixed, CRLF shown as newline. */
static void put_lines(struct sb *t, const char *prefix, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(s + i, '\n', len - i);
        size_t ll = (nl ? (size_t)(nl - s) : len) - i;
        size_t show = ll && s[i + ll - 1] == '\r' ? ll - 1 : ll;
        sb_printf(t, "%s%.*s%s\n", prefix, (int)show, s + i, nl ? "" : " (no EOL)");
        i += ll + 1;
    }
}

/* take_output - move the machine's output into the transcript. */
static void take_output(struct smtpc *c, struct sb *t)
{
    struct sb *o = smtpc_output(c);
    put_lines(t, "C: ", o->data ? o->data : "", o->len);
    sb_consume(o, o->len);
}

/* put_results - one R: line per recipient. */
static void put_results(struct smtpc *c, struct sb *t)
{
    for (size_t i = 0; i < smtpc_nrcpt(c); i++) {
        struct smtpc_result r;
        if (!smtpc_rcpt_result(c, i, &r)) {
            sb_printf(t, "R: %zu none\n", i);
            continue;
        }
        sb_printf(t, "R: %zu %u %s %s [%s%s]\n", i, r.code, r.enh[0] ? r.enh : "-", r.text,
                  smtpc_stage_name(r.stage), r.local ? ",local" : "");
    }
}

/* feed_body - the body in pieces of sc->body_split (or one). */
static void feed_body(struct smtpc *c, const struct script *sc, struct sb *t)
{
    size_t len = strlen(sc->body), step = sc->body_split ? sc->body_split : len;
    size_t before = smtpc_output(c)->len;
    for (size_t i = 0; i == 0 || i < len; i += step) {
        size_t n = len - i < step ? len - i : step;
        smtpc_body(c, sc->body + i, n, i + n >= len);
        if (len == 0)
            break;
    }
    if (!sc->verbose_body) {
        struct sb *o = smtpc_output(c);
        sb_printf(t, "C: <body %zu octets>\n", o->len - before);
        sb_consume(o, o->len);
    }
}

/* run - drive the machine through the script; returns the transcript. */
static char *run(const struct script *sc)
{
    struct sb t = {0}, stream = {0};
    struct smtpc *c = smtpc_new(&sc->opts, &sc->msg);
    assert_non_null(c);
    size_t ri = 0, spos = 0;
    bool second = false;
    for (size_t i = 0; sc->split && sc->replies[i]; i++)
        sb_appends(&stream, sc->replies[i]);
    for (int step = 0; step < 1000; step++) {
        take_output(c, &t);
        switch (smtpc_want(c)) {
        case SMTPC_NEED_INPUT:
            if (sc->split) {
                if (spos >= stream.len)
                    goto eof;
                size_t n = stream.len - spos < sc->split ? stream.len - spos : sc->split;
                smtpc_input(c, stream.data + spos, n);
                spos += n;
                break;
            }
            if (!sc->replies[ri])
                goto eof;
            put_lines(&t, "S: ", sc->replies[ri], strlen(sc->replies[ri]));
            smtpc_input(c, sc->replies[ri], strlen(sc->replies[ri]));
            ri++;
            break;
        case SMTPC_SEND_BODY: feed_body(c, sc, &t); break;
        case SMTPC_START_TLS:
            sb_appends(&t, "-- TLS --\n");
            smtpc_tls_done(c, !sc->tls_fails);
            break;
        case SMTPC_MSG_DONE:
            put_results(c, &t);
            if (sc->msg2 && !second) {
                second = true;
                sb_appends(&t, "-- next --\n");
                assert_true(smtpc_next(c, sc->msg2));
            } else {
                smtpc_quit(c);
            }
            break;
        case SMTPC_IDLE:
            sb_appends(&t, "-- idle --\n");
            smtpc_quit(c);
            break;
        case SMTPC_CLOSED: goto closed;
        }
    }
eof:
    sb_appends(&t, "-- EOF --\n");
    smtpc_abort(c, "EOF");
    take_output(c, &t);
closed:;
    struct smtpc_result e;
    put_results(c, &t);
    smtpc_error(c, &e);
    sb_printf(&t, "X: %u %s %s [%s]\n", e.code, e.enh[0] ? e.enh : "-", e.text,
              smtpc_stage_name(e.stage));
    smtpc_free(c);
    sb_free(&stream);
    return t.data;
}

/* expect_run - the transcript of sc equals want (printed when not). */
static void expect_run(const struct script *sc, const char *want)
{
    char *got = run(sc);
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "---- got:\n%s---- want:\n%s----\n", got, want);
        free(got);
        fail();
    }
    free(got);
}

static const char *const two_rcpts[] = {"a@x.test", "b@x.test"};
static const char *const one_rcpt[] = {"a@x.test"};

#define SMTP_OPTS                                    \
    {                                                \
        SMTPC_SMTP, "gw.test", SMTPC_TLS_NONE, false \
    }
#define BODY "Subject: t\r\n\r\nhello\r\n"

static void test_smtpc_pipelining(void **state)
{
    (void)state;
    static const char *const replies[] = {
        "220 hop.test ESMTP\r\n",
        "250-hop.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250 8BITMIME\r\n",
        "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go\r\n",
        "250 2.0.0 queued as X\r\n",
        "221 2.0.0 bye\r\n",
        NULL};
    struct script sc = {.opts = SMTP_OPTS,
                        .msg = {"s@y.test", two_rcpts, 2, 21, false, false},
                        .body = BODY,
                        .replies = replies,
                        .verbose_body = true};
    expect_run(&sc, "S: 220 hop.test ESMTP\n"
                    "C: EHLO gw.test\n"
                    "S: 250-hop.test\n"
                    "S: 250-PIPELINING\n"
                    "S: 250-SIZE 10000\n"
                    "S: 250 8BITMIME\n"
                    "C: MAIL FROM:<s@y.test> SIZE=21\n"
                    "C: RCPT TO:<a@x.test>\n"
                    "C: RCPT TO:<b@x.test>\n"
                    "C: DATA\n"
                    "S: 250 2.1.0 ok\n"
                    "S: 250 2.1.5 ok\n"
                    "S: 250 2.1.5 ok\n"
                    "S: 354 go\n"
                    "C: Subject: t\n"
                    "C: \n"
                    "C: hello\n"
                    "C: .\n"
                    "S: 250 2.0.0 queued as X\n"
                    "R: 0 250 2.0.0 queued as X [end of data]\n"
                    "R: 1 250 2.0.0 queued as X [end of data]\n"
                    "C: QUIT\n"
                    "S: 221 2.0.0 bye\n"
                    "R: 0 250 2.0.0 queued as X [end of data]\n"
                    "R: 1 250 2.0.0 queued as X [end of data]\n"
                    "X: 221 2.0.0 bye [QUIT]\n");
}

static void test_smtpc_no_pipelining(void **state)
{
    (void)state;
    static const char *const replies[] = {"220 hop.test ESMTP\r\n",
                                          "250 hop.test\r\n",
                                          "250 ok\r\n",
                                          "550 5.1.1 no such user\r\n",
                                          "250 ok\r\n",
                                          "354 go\r\n",
                                          "250 done\r\n",
                                          "221 bye\r\n",
                                          NULL};
    struct script sc = {.opts = SMTP_OPTS,
                        .msg = {"", two_rcpts, 2, 21, false, false},
                        .body = BODY,
                        .replies = replies};
    expect_run(&sc, "S: 220 hop.test ESMTP\n"
                    "C: EHLO gw.test\n"
                    "S: 250 hop.test\n"
                    "C: MAIL FROM:<>\n"
                    "S: 250 ok\n"
                    "C: RCPT TO:<a@x.test>\n"
                    "S: 550 5.1.1 no such user\n"
                    "C: RCPT TO:<b@x.test>\n"
                    "S: 250 ok\n"
                    "C: DATA\n"
                    "S: 354 go\n"
                    "C: <body 24 octets>\n"
                    "S: 250 done\n"
                    "R: 0 550 5.1.1 no such user [RCPT]\n"
                    "R: 1 250 - done [end of data]\n"
                    "C: QUIT\n"
                    "S: 221 bye\n"
                    "R: 0 550 5.1.1 no such user [RCPT]\n"
                    "R: 1 250 - done [end of data]\n"
                    "X: 221 - bye [QUIT]\n");
}

static void test_smtpc_size_limit_from_ehlo(void **state)
{
    (void)state;
    static const char *const replies[] = {"220 hop\r\n", "250-hop\r\n250 SIZE 100\r\n",
                                          "221 bye\r\n", NULL};
    struct script sc = {.opts = SMTP_OPTS,
                        .msg = {"s@y.test", one_rcpt, 1, 200, false, false},
                        .body = BODY,
                        .replies = replies};
    expect_run(&sc,
               "S: 220 hop\n"
               "C: EHLO gw.test\n"
               "S: 250-hop\n"
               "S: 250 SIZE 100\n"
               "R: 0 552 5.3.4 Message size 200 exceeds the next hop's limit of 100 [local,local]\n"
               "C: QUIT\n"
               "S: 221 bye\n"
               "R: 0 552 5.3.4 Message size 200 exceeds the next hop's limit of 100 [local,local]\n"
               "X: 221 - bye [QUIT]\n");
    /* SIZE without a number: no limit, but SIZE= is sent */
    static const char *const r2[] = {"220 hop\r\n", "250-hop\r\n250 SIZE\r\n", "250 ok\r\n", NULL};
    sc.replies = r2;
    char *t = run(&sc);
    assert_non_null(strstr(t, "C: MAIL FROM:<s@y.test> SIZE=200\n"));
    free(t);
}

static void test_smtpc_8bitmime_missing_is_permanent(void **state)
{
    (void)state;
    static const char *const replies[] = {"220 hop\r\n", "250-hop\r\n250 PIPELINING\r\n",
                                          "221 bye\r\n", NULL};
    struct script sc = {.opts = SMTP_OPTS,
                        .msg = {"s@y.test", two_rcpts, 2, 21, true, false},
                        .body = BODY,
                        .replies = replies};
    char *t = run(&sc);
    assert_non_null(strstr(t, "R: 0 554 5.6.3 The message needs 8BITMIME and the next hop does "
                              "not offer it [local,local]\n"
                              "R: 1 554 5.6.3"));
    assert_null(strstr(t, "MAIL FROM"));
    free(t);
    /* offered: BODY=8BITMIME goes with MAIL */
    static const char *const r2[] = {"220 hop\r\n", "250-hop\r\n250 8BITMIME\r\n", "250 ok\r\n",
                                     NULL};
    sc.replies = r2;
    t = run(&sc);
    assert_non_null(strstr(t, "C: MAIL FROM:<s@y.test> BODY=8BITMIME\n"));
    free(t);
}

static void test_smtpc_smtputf8(void **state)
{
    (void)state;
    static const char *const utf8_rcpt[] = {"j\xc3\xb6rg@x.test"};
    static const char *const replies[] = {
        "220 hop\r\n", "250-hop\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n", "250 ok\r\n", NULL};
    struct script sc = {.opts = SMTP_OPTS,
                        .msg = {"s@y.test", utf8_rcpt, 1, 21, true, true},
                        .body = BODY,
                        .replies = replies};
    char *t = run(&sc);
    assert_non_null(strstr(t, "C: MAIL FROM:<s@y.test> BODY=8BITMIME SMTPUTF8\n"
                              "S: 250 ok\n"
                              "C: RCPT TO:<j\xc3\xb6rg@x.test>\n"));
    free(t);
    static const char *const r2[] = {"220 hop\r\n", "250-hop\r\n250 8BITMIME\r\n", NULL};
    sc.replies = r2;
    t = run(&sc);
    assert_non_null(strstr(t, "R: 0 553 5.6.7 The message needs SMTPUTF8 and the next hop does "
                              "not offer it [local,local]\n"));
    free(t);
}

static void test_smtpc_dsn_passed_only_when_offered(void **state)
{
    (void)state;
    static const char *const rdsn[] = {" NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+40x.test", ""};
    static const char *const offers[] = {"220 hop\r\n", "250-hop\r\n250-PIPELINING\r\n250 DSN\r\n",
                                         "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", "250 done\r\n",
                                         NULL};
    struct script sc = {.opts = SMTP_OPTS,
                        .msg = {.sender = "s@y.test",
                                .rcpts = two_rcpts,
                                .nrcpt = 2,
                                .size = 21,
                                .mail_dsn = " RET=HDRS ENVID=QQ+2B1",
                                .rcpt_dsn = rdsn},
                        .body = BODY,
                        .replies = offers};
    char *t = run(&sc);
    assert_non_null(strstr(t, "C: MAIL FROM:<s@y.test> RET=HDRS ENVID=QQ+2B1\n"
                              "C: RCPT TO:<a@x.test> NOTIFY=SUCCESS,FAILURE "
                              "ORCPT=rfc822;a+40x.test\n"
                              "C: RCPT TO:<b@x.test>\n"));
    free(t);
    static const char *const lacks[] = {"220 hop\r\n", "250-hop\r\n250 PIPELINING\r\n",
                                        "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", "250 done\r\n",
                                        NULL};
    sc.replies = lacks;
    t = run(&sc);
    assert_non_null(strstr(t, "C: MAIL FROM:<s@y.test>\n"
                              "C: RCPT TO:<a@x.test>\n"
                              "C: RCPT TO:<b@x.test>\n"));
    assert_null(strstr(t, "NOTIFY="));
    assert_null(strstr(t, "RET="));
    free(t);
}

static void test_smtpc_starttls(void **state)
{
    (void)state;
    static const char *const replies[] = {"220 hop\r\n",
                                          "250-hop\r\n250-STARTTLS\r\n250 PIPELINING\r\n",
                                          "220 2.0.0 go ahead\r\n",
                                          "250-hop\r\n250 PIPELINING\r\n",
                                          "250 ok\r\n250 ok\r\n354 go\r\n",
                                          "250 ok\r\n",
                                          "221 bye\r\n",
                                          NULL};
    struct script sc = {.opts = {SMTPC_SMTP, "gw.test", SMTPC_TLS_MAY, false},
                        .msg = {"s@y.test", one_rcpt, 1, 21, false, false},
                        .body = BODY,
                        .replies = replies};
    expect_run(&sc, "S: 220 hop\n"
                    "C: EHLO gw.test\n"
                    "S: 250-hop\n"
                    "S: 250-STARTTLS\n"
                    "S: 250 PIPELINING\n"
                    "C: STARTTLS\n"
                    "S: 220 2.0.0 go ahead\n"
                    "-- TLS --\n"
                    "C: EHLO gw.test\n"
                    "S: 250-hop\n"
                    "S: 250 PIPELINING\n"
                    "C: MAIL FROM:<s@y.test>\n"
                    "C: RCPT TO:<a@x.test>\n"
                    "C: DATA\n"
                    "S: 250 ok\n"
                    "S: 250 ok\n"
                    "S: 354 go\n"
                    "C: <body 24 octets>\n"
                    "S: 250 ok\n"
                    "R: 0 250 - ok [end of data]\n"
                    "C: QUIT\n"
                    "S: 221 bye\n"
                    "R: 0 250 - ok [end of data]\n"
                    "X: 221 - bye [QUIT]\n");
    /* tls none: STARTTLS is not used even when offered */
    sc.opts.tls = SMTPC_TLS_NONE;
    char *t = run(&sc);
    assert_null(strstr(t, "C: STARTTLS"));
    free(t);
    /* required but not offered: temporary failure, QUIT */
    static const char *const r2[] = {"220 hop\r\n", "250 hop\r\n", NULL};
    sc.opts.tls = SMTPC_TLS_REQUIRE;
    sc.replies = r2;
    expect_run(
        &sc, "S: 220 hop\n"
             "C: EHLO gw.test\n"
             "S: 250 hop\n"
             "C: QUIT\n"
             "R: 0 451 4.7.4 TLS is required but the next hop does not offer STARTTLS "
             "[STARTTLS,local]\n"
             "X: 451 4.7.4 TLS is required but the next hop does not offer STARTTLS [STARTTLS]\n");
    /* required, refused */
    static const char *const r3[] = {"220 hop\r\n", "250-hop\r\n250 STARTTLS\r\n",
                                     "454 4.7.0 not now\r\n", NULL};
    sc.replies = r3;
    t = run(&sc);
    assert_non_null(strstr(t, "R: 0 451 4.7.4 TLS is required but the next hop refused "
                              "STARTTLS: 4.7.0 not now [STARTTLS,local]\n"));
    free(t);
    /* may, refused: plain text goes on */
    sc.opts.tls = SMTPC_TLS_MAY;
    t = run(&sc);
    assert_non_null(strstr(t, "S: 454 4.7.0 not now\nC: MAIL FROM:<s@y.test>\n"));
    free(t);
    /* handshake failure */
    sc.replies = replies;
    sc.tls_fails = true;
    t = run(&sc);
    assert_non_null(strstr(t, "-- TLS --\nR: 0 451 4.7.0 TLS handshake with the next hop failed"));
    free(t);
    /* bytes after the 220 before the handshake: refused (injection) */
    static const char *const r4[] = {"220 hop\r\n", "250-hop\r\n250 STARTTLS\r\n",
                                     "220 go\r\n250 injected\r\n", NULL};
    sc.replies = r4;
    sc.tls_fails = false;
    t = run(&sc);
    assert_non_null(strstr(t, "X: 451 4.5.0 Protocol error from the next hop: data before the "
                              "TLS handshake [STARTTLS]\n"));
    free(t);
}

static void test_smtpc_multiline_replies(void **state)
{
    (void)state;
    static const char *const replies[] = {
        "220-hop.test first\r\n220-second\r\n220 third\r\n", "250-hop\r\n250 PIPELINING\r\n",
        "250 ok\r\n550-5.1.1 no such\r\n550 5.1.1 user here\r\n250 ok\r\n354 go\r\n",
        "250-2.0.0 ok\r\n250 2.0.0 really\r\n", NULL};
    struct script sc = {.opts = SMTP_OPTS,
                        .msg = {"s@y.test", two_rcpts, 2, 21, false, false},
                        .body = BODY,
                        .replies = replies};
    char *t = run(&sc);
    assert_non_null(strstr(t, "R: 0 550 5.1.1 no such user here [RCPT]\n"
                              "R: 1 250 2.0.0 ok really [end of data]\n"));
    free(t);
}

/* stage_fail - greeting..dot, each refused: the transcript's tail. */
static void test_smtpc_errors_at_each_stage(void **state)
{
    (void)state;
    struct script sc = {
        .opts = SMTP_OPTS, .msg = {"s@y.test", two_rcpts, 2, 21, false, false}, .body = BODY};
    static const char *const greet[] = {"554 5.7.1 go away\r\n", NULL};
    sc.replies = greet;
    expect_run(&sc, "S: 554 5.7.1 go away\n"
                    "C: QUIT\n"
                    "R: 0 554 5.7.1 go away [greeting]\n"
                    "R: 1 554 5.7.1 go away [greeting]\n"
                    "X: 554 5.7.1 go away [greeting]\n");
    static const char *const ehlo421[] = {"220 hop\r\n", "421 4.3.2 shutting down\r\n", NULL};
    sc.replies = ehlo421;
    expect_run(&sc, "S: 220 hop\n"
                    "C: EHLO gw.test\n"
                    "S: 421 4.3.2 shutting down\n"
                    "R: 0 421 4.3.2 shutting down [EHLO]\n"
                    "R: 1 421 4.3.2 shutting down [EHLO]\n"
                    "X: 421 4.3.2 shutting down [EHLO]\n");
    static const char *const helo[] = {"220 hop\r\n", "502 no EHLO\r\n", "250 hi\r\n", "250 ok\r\n",
                                       NULL};
    sc.replies = helo;
    char *t = run(&sc);
    assert_non_null(strstr(t, "S: 502 no EHLO\nC: HELO gw.test\nS: 250 hi\n"
                              "C: MAIL FROM:<s@y.test>\nS: 250 ok\nC: RCPT TO:<a@x.test>\n"));
    free(t);
    static const char *const mail[] = {"220 hop\r\n", "250 hop\r\n", "451 4.3.0 later\r\n",
                                       "250 ok\r\n",  "250 ok\r\n",  "354 go\r\n",
                                       "250 ok\r\n",  "221 bye\r\n", NULL};
    static const struct smtpc_msg m2 = {"s@y.test", one_rcpt, 1, 21, false, false, NULL, NULL};
    sc.replies = mail;
    sc.msg2 = &m2;
    expect_run(&sc, "S: 220 hop\n"
                    "C: EHLO gw.test\n"
                    "S: 250 hop\n"
                    "C: MAIL FROM:<s@y.test>\n"
                    "S: 451 4.3.0 later\n"
                    "R: 0 451 4.3.0 later [MAIL]\n"
                    "R: 1 451 4.3.0 later [MAIL]\n"
                    "-- next --\n"
                    "C: MAIL FROM:<s@y.test>\n"
                    "S: 250 ok\n"
                    "C: RCPT TO:<a@x.test>\n"
                    "S: 250 ok\n"
                    "C: DATA\n"
                    "S: 354 go\n"
                    "C: <body 24 octets>\n"
                    "S: 250 ok\n"
                    "R: 0 250 - ok [end of data]\n"
                    "C: QUIT\n"
                    "S: 221 bye\n"
                    "R: 0 250 - ok [end of data]\n"
                    "X: 221 - bye [QUIT]\n");
    /* a 2xx to DATA is no delivery: protocol error, temporary */
    static const char *const data2xx[] = {"220 hop\r\n", "250 hop\r\n", "250 ok\r\n", "250 ok\r\n",
                                          "250 ok\r\n",  "250 ok\r\n",  NULL};
    sc.replies = data2xx;
    sc.msg2 = NULL;
    t = run(&sc);
    assert_non_null(strstr(t, "C: DATA\nS: 250 ok\nC: QUIT\n"
                              "R: 0 451 4.5.0 Protocol error from the next hop: unexpected reply "
                              "code [protocol,local]\n"));
    free(t);
    sc.msg2 = NULL;
    static const char *const data[] = {"220 hop\r\n", "250-hop\r\n250 PIPELINING\r\n",
                                       "250 ok\r\n250 ok\r\n250 ok\r\n554 5.5.1 no data\r\n", NULL};
    sc.replies = data;
    t = run(&sc);
    assert_non_null(strstr(t, "R: 0 554 5.5.1 no data [DATA]\nR: 1 554 5.5.1 no data [DATA]\n"));
    free(t);
    static const char *const dot[] = {"220 hop\r\n", "250-hop\r\n250 PIPELINING\r\n",
                                      "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n",
                                      "452 4.3.1 full\r\n", NULL};
    sc.replies = dot;
    t = run(&sc);
    assert_non_null(strstr(t, "R: 0 452 4.3.1 full [end of data]\n"
                              "R: 1 452 4.3.1 full [end of data]\n"));
    free(t);
    /* 421 in the middle of the pipelined group: the rest share it, no QUIT */
    static const char *const rcpt421[] = {"220 hop\r\n", "250-hop\r\n250 PIPELINING\r\n",
                                          "250 ok\r\n421 4.4.2 bye now\r\n", NULL};
    sc.replies = rcpt421;
    expect_run(&sc, "S: 220 hop\n"
                    "C: EHLO gw.test\n"
                    "S: 250-hop\n"
                    "S: 250 PIPELINING\n"
                    "C: MAIL FROM:<s@y.test>\n"
                    "C: RCPT TO:<a@x.test>\n"
                    "C: RCPT TO:<b@x.test>\n"
                    "C: DATA\n"
                    "S: 250 ok\n"
                    "S: 421 4.4.2 bye now\n"
                    "R: 0 421 4.4.2 bye now [RCPT]\n"
                    "R: 1 421 4.4.2 bye now [RCPT]\n"
                    "X: 421 4.4.2 bye now [RCPT]\n");
    /* the I/O layer gives up during the body */
    static const char *const lost[] = {"220 hop\r\n", "250 hop\r\n", "250 ok\r\n", "250 ok\r\n",
                                       "250 ok\r\n",  "354 go\r\n",  NULL};
    sc.replies = lost;
    t = run(&sc);
    assert_non_null(strstr(t, "-- EOF --\nR: 0 451 4.4.2 Connection to the next hop failed: EOF "
                              "[connect,local]\n"));
    free(t);
}

static void test_smtpc_lmtp_per_recipient(void **state)
{
    (void)state;
    static const char *const three[] = {"a@x.test", "b@x.test", "c@x.test"};
    static const char *const replies[] = {
        "220 lmtp ready\r\n",
        "250-lmtp\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n",
        "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 unknown\r\n250 2.1.5 ok\r\n354 go\r\n",
        "250 2.0.0 <a> saved\r\n452 4.2.2 <c> over quota\r\n",
        "221 bye\r\n",
        NULL};
    struct script sc = {.opts = {SMTPC_LMTP, "gw.test", SMTPC_TLS_NONE, false},
                        .msg = {"s@y.test", three, 3, 21, false, false},
                        .body = BODY,
                        .replies = replies};
    expect_run(&sc, "S: 220 lmtp ready\n"
                    "C: LHLO gw.test\n"
                    "S: 250-lmtp\n"
                    "S: 250-PIPELINING\n"
                    "S: 250 ENHANCEDSTATUSCODES\n"
                    "C: MAIL FROM:<s@y.test>\n"
                    "C: RCPT TO:<a@x.test>\n"
                    "C: RCPT TO:<b@x.test>\n"
                    "C: RCPT TO:<c@x.test>\n"
                    "C: DATA\n"
                    "S: 250 2.1.0 ok\n"
                    "S: 250 2.1.5 ok\n"
                    "S: 550 5.1.1 unknown\n"
                    "S: 250 2.1.5 ok\n"
                    "S: 354 go\n"
                    "C: <body 24 octets>\n"
                    "S: 250 2.0.0 <a> saved\n"
                    "S: 452 4.2.2 <c> over quota\n"
                    "R: 0 250 2.0.0 <a> saved [end of data]\n"
                    "R: 1 550 5.1.1 unknown [RCPT]\n"
                    "R: 2 452 4.2.2 <c> over quota [end of data]\n"
                    "C: QUIT\n"
                    "S: 221 bye\n"
                    "R: 0 250 2.0.0 <a> saved [end of data]\n"
                    "R: 1 550 5.1.1 unknown [RCPT]\n"
                    "R: 2 452 4.2.2 <c> over quota [end of data]\n"
                    "X: 221 - bye [QUIT]\n");
    /* LMTP has no HELO fallback */
    static const char *const r2[] = {"220 lmtp\r\n", "502 what\r\n", NULL};
    sc.replies = r2;
    char *t = run(&sc);
    assert_non_null(strstr(t, "S: 502 what\nC: QUIT\n"));
    free(t);
}

static void test_smtpc_rset_and_reuse(void **state)
{
    (void)state;
    static const struct smtpc_msg m2 = {"t@y.test", two_rcpts, 2, 21, false, false, NULL, NULL};
    /* all recipients refused: no DATA; the next message starts with RSET,
     * pipelined with MAIL, RCPT and DATA */
    static const char *const replies[] = {
        "220 hop\r\n",
        "250-hop\r\n250 PIPELINING\r\n",
        "250 ok\r\n550 no\r\n550 no\r\n554 no valid recipients\r\n",
        "250 reset\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n",
        "250 queued\r\n",
        "221 bye\r\n",
        NULL};
    struct script sc = {.opts = SMTP_OPTS,
                        .msg = {"s@y.test", two_rcpts, 2, 21, false, false},
                        .msg2 = &m2,
                        .body = BODY,
                        .replies = replies};
    char *t = run(&sc);
    assert_non_null(strstr(t, "R: 0 550 - no [RCPT]\nR: 1 550 - no [RCPT]\n-- next --\n"
                              "C: RSET\nC: MAIL FROM:<t@y.test>\nC: RCPT TO:<a@x.test>\n"
                              "C: RCPT TO:<b@x.test>\nC: DATA\nS: 250 reset\n"));
    assert_non_null(strstr(t, "R: 0 250 - queued [end of data]\nR: 1 250 - queued [end of data]\n"
                              "C: QUIT\n"));
    free(t);
    /* a delivered message needs no RSET; unpipelined RSET waits for its reply */
    static const char *const r2[] = {"220 hop\r\n",    "250 hop\r\n", "250 ok\r\n",
                                     "250 ok\r\n",     "250 ok\r\n",  "354 go\r\n",
                                     "250 queued\r\n", "250 ok\r\n",  NULL};
    sc.replies = r2;
    t = run(&sc);
    assert_non_null(strstr(t, "-- next --\nC: MAIL FROM:<t@y.test>\nS: 250 ok\n"));
    free(t);
    static const char *const r3[] = {"220 hop\r\n", "250 hop\r\n",   "250 ok\r\n", "550 no\r\n",
                                     "550 no\r\n",  "250 reset\r\n", "250 ok\r\n", NULL};
    sc.replies = r3;
    t = run(&sc);
    assert_non_null(strstr(t, "R: 1 550 - no [RCPT]\n-- next --\nC: RSET\nS: 250 reset\n"
                              "C: MAIL FROM:<t@y.test>\nS: 250 ok\n"));
    free(t);
    /* pipelined DATA got 354 although nobody was accepted: an empty message */
    static const char *const r4[] = {"220 hop\r\n",
                                     "250-hop\r\n250 PIPELINING\r\n",
                                     "250 ok\r\n550 no\r\n550 no\r\n354 go\r\n",
                                     "250 empty\r\n",
                                     "221 bye\r\n",
                                     NULL};
    sc.replies = r4;
    sc.msg2 = NULL;
    t = run(&sc);
    assert_non_null(strstr(t, "S: 354 go\nC: .\nS: 250 empty\nR: 0 550 - no [RCPT]\n"
                              "R: 1 550 - no [RCPT]\nC: QUIT\n"));
    free(t);
}

static void test_smtpc_garbage_and_overlong(void **state)
{
    (void)state;
    struct script sc = {
        .opts = SMTP_OPTS, .msg = {"s@y.test", one_rcpt, 1, 21, false, false}, .body = BODY};
    static const char *const junk[] = {"hello there\r\n", NULL};
    sc.replies = junk;
    expect_run(&sc,
               "S: hello there\n"
               "R: 0 451 4.5.0 Protocol error from the next hop: malformed reply line "
               "[protocol,local]\n"
               "X: 451 4.5.0 Protocol error from the next hop: malformed reply line [protocol]\n");
    static const char *const mixed[] = {"220 hop\r\n", "250-hop\r\n251 x\r\n", NULL};
    sc.replies = mixed;
    char *t = run(&sc);
    assert_non_null(strstr(t, "X: 451 4.5.0 Protocol error from the next hop: reply lines with "
                              "different codes [protocol]\n"));
    free(t);
    static const char *const codes[] = {"220 hop\r\n", "650 what\r\n", NULL};
    sc.replies = codes;
    t = run(&sc);
    assert_non_null(strstr(t, "malformed reply line"));
    free(t);
    char *longl = malloc(SMTPC_LINE_MAX + 16);
    memset(longl, 'x', SMTPC_LINE_MAX + 10);
    memcpy(longl, "220 ", 4);
    strcpy(longl + SMTPC_LINE_MAX + 1, "\r\n"); /* one octet too long */
    const char *const over[] = {longl, NULL};
    sc.replies = over;
    t = run(&sc);
    assert_non_null(strstr(t, "X: 451 4.5.0 Protocol error from the next hop: reply line too "
                              "long [protocol]\n"));
    free(t);
    strcpy(longl + SMTPC_LINE_MAX, "\r\n"); /* exactly the limit: fine */
    t = run(&sc);
    assert_non_null(strstr(t, "C: EHLO gw.test\n"));
    free(t);
    free(longl);
}

static void test_smtpc_idle_connection_held_input(void **state)
{
    (void)state;
    struct smtpc_opts o = SMTP_OPTS;
    struct smtpc *c = smtpc_new(&o, NULL);
    const char *in = "220 hop\r\n250-hop\r\n250 PIPELINING\r\n";
    smtpc_input(c, in, strlen(in));
    assert_int_equal(smtpc_want(c), SMTPC_IDLE);
    assert_true(smtpc_caps(c)->pipelining);
    assert_int_equal(smtpc_nrcpt(c), 0);
    /* the hop times the idle connection out: held until the caller acts */
    const char *bye = "421 4.4.2 idle too long\r\n";
    smtpc_input(c, bye, strlen(bye));
    assert_int_equal(smtpc_want(c), SMTPC_IDLE);
    struct smtpc_msg m = {"s@y.test", one_rcpt, 1, 5, false, false, NULL, NULL};
    struct smtpc_msg empty = {"s@y.test", one_rcpt, 0, 5, false, false, NULL, NULL};
    assert_false(smtpc_next(c, &empty));
    assert_true(smtpc_next(c, &m));
    assert_int_equal(smtpc_want(c), SMTPC_CLOSED);
    struct smtpc_result r;
    assert_true(smtpc_rcpt_result(c, 0, &r));
    assert_int_equal(r.code, 421);
    assert_string_equal(r.enh, "4.4.2");
    assert_string_equal(r.text, "idle too long");
    assert_int_equal(r.stage, SMTPC_ST_MAIL);
    assert_false(smtpc_rcpt_result(c, 1, &r));
    assert_false(smtpc_next(c, &m));
    smtpc_free(c);
}

static void test_smtpc_dot_stuffing(void **state)
{
    (void)state;
    static const char *const replies[] = {"220 hop\r\n", "250 hop\r\n", "250 ok\r\n", "250 ok\r\n",
                                          "354 go\r\n",  "250 ok\r\n",  NULL};
    struct script sc = {.opts = SMTP_OPTS,
                        .msg = {"s@y.test", one_rcpt, 1, 21, false, false},
                        .body = ".a\r\n..b\r\nc.\r\n.",
                        .replies = replies,
                        .verbose_body = true};
    char *t = run(&sc);
    assert_non_null(strstr(t, "S: 354 go\nC: ..a\nC: ...b\nC: c.\nC: ..\nC: .\nS: 250 ok\n"));
    free(t);
    sc.body = "";
    t = run(&sc);
    assert_non_null(strstr(t, "S: 354 go\nC: .\nS: 250 ok\n"));
    free(t);
}

/* body_bytes - the exact bytes produced for body fed in pieces: first split
 * at cut (two pieces), or one-octet pieces when cut is SIZE_MAX. */
static char *body_bytes(const char *body, size_t cut, size_t *outlen)
{
    static const char *const r[] = {"220 hop\r\n", "250 hop\r\n", "250 ok\r\n", "250 ok\r\n",
                                    "354 go\r\n"};
    struct smtpc_opts o = SMTP_OPTS;
    struct smtpc_msg m = {"s@y.test", one_rcpt, 1, 0, false, false, NULL, NULL};
    struct smtpc *c = smtpc_new(&o, &m);
    for (size_t i = 0; i < 5; i++)
        smtpc_input(c, r[i], strlen(r[i]));
    assert_int_equal(smtpc_want(c), SMTPC_SEND_BODY);
    sb_consume(smtpc_output(c), smtpc_output(c)->len);
    size_t len = strlen(body);
    if (cut == SIZE_MAX) {
        for (size_t i = 0; i < len; i++)
            smtpc_body(c, body + i, 1, false);
        smtpc_body(c, "", 0, true);
    } else {
        smtpc_body(c, body, cut, false);
        smtpc_body(c, body + cut, len - cut, true);
    }
    assert_int_equal(smtpc_want(c), SMTPC_NEED_INPUT);
    struct sb *o2 = smtpc_output(c);
    char *copy = malloc(o2->len + 1);
    memcpy(copy, o2->data, o2->len);
    *outlen = o2->len;
    smtpc_free(c);
    return copy;
}

static void test_smtpc_body_split_invariant(void **state)
{
    (void)state;
    const char *body = ".x\r\n.\r\n..\r\nab.c\r\n\r\n.\r\nend";
    size_t wl, len = strlen(body);
    char *whole = body_bytes(body, len, &wl);
    static const char want[] = "..x\r\n..\r\n...\r\nab.c\r\n\r\n..\r\nend\r\n.\r\n";
    assert_int_equal(wl, sizeof want - 1);
    assert_memory_equal(whole, want, wl);
    for (size_t cut = 0; cut <= len; cut++) {
        size_t l;
        char *b = body_bytes(body, cut, &l);
        assert_int_equal(l, wl);
        assert_memory_equal(b, whole, wl);
        free(b);
    }
    size_t l;
    char *b = body_bytes(body, SIZE_MAX, &l);
    assert_int_equal(l, wl);
    assert_memory_equal(b, whole, wl);
    free(b);
    free(whole);
}

static void test_smtpc_reply_split_invariant(void **state)
{
    (void)state;
    static const char *const replies[] = {
        "220-hop\r\n220 hop\r\n",
        "250-hop\r\n250-PIPELINING\r\n250 SIZE 99999\r\n",
        "250 ok\r\n550-5.1.1 a\r\n550 5.1.1 b\r\n250 ok\r\n354 go\r\n",
        "250 ok\r\n",
        "221 bye\r\n",
        NULL};
    struct script sc = {.opts = SMTP_OPTS,
                        .msg = {"s@y.test", two_rcpts, 2, 21, false, false},
                        .body = BODY,
                        .replies = replies,
                        .split = 100000};
    char *whole = run(&sc);
    assert_non_null(strstr(whole, "R: 0 550 5.1.1 a b [RCPT]\n"));
    for (size_t k = 1; k < 40; k++) {
        sc.split = k;
        char *t = run(&sc);
        assert_string_equal(t, whole);
        free(t);
    }
    free(whole);
}

static void test_smtpc_reply_parser(void **state)
{
    (void)state;
    struct smtpc_rparse p = {0};
    const struct smtpc_reply *r;
    const char *why;
    size_t pos = 0;
    const char *in = "250-first\n250-2.1.0 second\r\n250 third\r\n354\r\n";
    assert_int_equal(smtpc_rp_feed(&p, in, strlen(in), &pos, &r, &why), SMTPC_RP_REPLY);
    assert_int_equal(r->code, 250);
    assert_int_equal(r->nlines, 3);
    assert_string_equal(r->text.data, "first\n2.1.0 second\nthird");
    assert_string_equal(r->enh, "");
    assert_int_equal(smtpc_rp_feed(&p, in, strlen(in), &pos, &r, &why), SMTPC_RP_REPLY);
    assert_int_equal(r->code, 354);
    assert_string_equal(r->text.data, "");
    assert_int_equal(pos, strlen(in));
    assert_int_equal(smtpc_rp_feed(&p, in, strlen(in), &pos, &r, &why), SMTPC_RP_MORE);
    pos = 0;
    const char *bad = "25\r\n";
    assert_int_equal(smtpc_rp_feed(&p, bad, strlen(bad), &pos, &r, &why), SMTPC_RP_BAD);
    assert_string_equal(why, "malformed reply line");
    smtpc_rp_free(&p);
    struct smtpc_rparse q = {0};
    static const char nul[] = "250 a\0b\r\n";
    pos = 0;
    assert_int_equal(smtpc_rp_feed(&q, nul, sizeof nul - 1, &pos, &r, &why), SMTPC_RP_BAD);
    assert_string_equal(why, "NUL byte in a reply");
    smtpc_rp_free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smtpc_pipelining),
        cmocka_unit_test(test_smtpc_no_pipelining),
        cmocka_unit_test(test_smtpc_size_limit_from_ehlo),
        cmocka_unit_test(test_smtpc_8bitmime_missing_is_permanent),
        cmocka_unit_test(test_smtpc_smtputf8),
        cmocka_unit_test(test_smtpc_dsn_passed_only_when_offered),
        cmocka_unit_test(test_smtpc_starttls),
        cmocka_unit_test(test_smtpc_multiline_replies),
        cmocka_unit_test(test_smtpc_errors_at_each_stage),
        cmocka_unit_test(test_smtpc_lmtp_per_recipient),
        cmocka_unit_test(test_smtpc_rset_and_reuse),
        cmocka_unit_test(test_smtpc_garbage_and_overlong),
        cmocka_unit_test(test_smtpc_idle_connection_held_input),
        cmocka_unit_test(test_smtpc_dot_stuffing),
        cmocka_unit_test(test_smtpc_body_split_invariant),
        cmocka_unit_test(test_smtpc_reply_split_invariant),
        cmocka_unit_test(test_smtpc_reply_parser),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
