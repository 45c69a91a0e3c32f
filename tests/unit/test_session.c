/* test_session.c - the session state machine and its command table, driven
 * directly over bytes with a fake I/O layer (no sockets); the receivelog
 * lines of refusals, 8-bit data and transaction summaries through a real
 * receivelog in a temp folder (fake clock, flushed synchronously). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "auth.h"
#include "config.h"
#include "dir.h"
#include "rlog.h"
#include "session.h"
#include "smtp_parse.h"
#include "snap.h"
#include "test_session_util.h"
#include "test_rlog_util.h"

struct fixture {
    struct snap *snap;
    struct sess_env env;
    struct sess *s;
    char out[16384];
    struct rlog *log; /* NULL unless made by make_logged */
    char *wd;
    struct fake_clock clk;
    char *text;        /* last result of logged() */
    char lines[65536]; /* every logged line (the log tap), each ended by '\n' */
    size_t nlines;
    unsigned unknowns;        /* the fake per-address unknown-recipient count */
    bool queue_full;          /* the fake delivery back-pressure flag */
    struct sess_counters ctr; /* the metrics' counters of this session */
};

static const char *base_conf = "hostname = mx.test\n"
                               "workdir = /tmp\n"
                               "listen = 127.0.0.1:2525\n"
                               "local_domains = example.test, example.org\n"
                               "max_recipients = 3\n"
                               "max_errors = 4\n"
                               "max_message_size = 4096\n"
                               "trusted_networks = 10.0.0.0/8\n";

/* tap - the log hook: keep every line the session logs. */
static void tap(void *arg, uint32_t sid, const char *line, size_t len)
{
    (void)sid;
    struct fixture *f = arg;
    if (f->nlines + len + 2 > sizeof(f->lines))
        return;
    memcpy(f->lines + f->nlines, line, len);
    f->nlines += len;
    f->lines[f->nlines++] = '\n';
    f->lines[f->nlines] = 0;
}

/* fake_unknown - the budget hook: one counter for "the" client address. */
static unsigned fake_unknown(void *arg, const struct mx_addr *peer)
{
    (void)peer;
    return ++((struct fixture *)arg)->unknowns;
}

/* make_full - a session from a client at ip with the base configuration
 * plus extra lines, a users directory (NULL = none); with_log: a
 * receivelog in a temp folder. Every fixture taps the log lines. */
static struct fixture *make_full(const char *ip, const char *extra, const char *users,
                                 bool with_log)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char conf[2048];
    snprintf(conf, sizeof(conf), "%s%s", base_conf, extra ? extra : "");
    f->env.arg = f;
    f->env.ctr = &f->ctr;
    f->env.log_tap = tap;
    f->env.unknown_rcpt = fake_unknown;
    f->snap = tsess_snap(conf, users);
    if (with_log) {
        t_use_utc();
        f->wd = t_mkdtemp();
        char *top = t_path("%s/%s", f->wd, "receivelog");
        assert_int_equal(mkdir(top, 0755), 0);
        free(top);
        fake_clock_set(&f->clk, t_utc(2026, 11, 30, 0, 2, 7));
        struct rlog_opts o = {.workdir = f->wd,
                              .host = "mx.test",
                              .nrings = 1,
                              .ring_bytes = 1u << 20,
                              .clock = fake_clock_read,
                              .clock_arg = &f->clk};
        f->log = rlog_create(&o);
        assert_non_null(f->log);
        f->env.rlog = rlog_ring(f->log, 0);
    }
    f->s = tsess_start(&f->env, f->snap, ip, 0x1234);
    return f;
}

/* make_conf - base configuration plus extra lines, no directory. */
static struct fixture *make_conf(const char *ip, const char *extra, bool with_log)
{
    return make_full(ip, extra, NULL, with_log);
}

/* make_with - base configuration plus extra lines and a users directory. */
static struct fixture *make_with(const char *ip, const char *extra, const char *users)
{
    return make_full(ip, extra, users, false);
}

/* make - a session from a client at ip with the base configuration. */
static struct fixture *make(const char *ip)
{
    return make_conf(ip, "", false);
}

/* make_logged - the same with a receivelog. */
static struct fixture *make_logged(const char *ip, const char *extra)
{
    return make_conf(ip, extra, true);
}

/* logged - every receivelog line so far (valid until the next call). */
static const char *logged(struct fixture *f)
{
    assert_int_equal(rlog_flush_now(f->log), 0);
    char *p = t_path("%s/receivelog/mx.test/%s.log", f->wd, "20261130");
    free(f->text);
    f->text = t_read(p, NULL);
    free(p);
    return f->text ? f->text : "";
}

/* count_of - occurrences of needle in hay. */
static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void destroy(struct fixture *f)
{
    sess_free(f->s);
    snap_unref(f->snap);
    if (f->log) {
        rlog_stop(f->log);
        rlog_destroy(f->log);
        t_rmrf(f->wd);
        free(f->wd);
        free(f->text);
    }
    free(f);
}

/* take - everything the session wants to send, as a C string. */
static const char *take(struct fixture *f)
{
    return tsess_take(f->s, f->out, sizeof(f->out));
}

static const char *feed(struct fixture *f, const char *text)
{
    sess_input(f->s, text, strlen(text));
    return take(f);
}

/* feedn - feed n bytes (may hold NULs), return the replies. */
static const char *feedn(struct fixture *f, const char *bytes, size_t n)
{
    sess_input(f->s, bytes, n);
    return take(f);
}

static void greet(struct fixture *f)
{
    take(f);
    assert_non_null(strstr(feed(f, "EHLO client.example\r\n"), "250 ENHANCEDSTATUSCODES"));
}

static void test_session_banner_and_ehlo(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1");
    assert_string_equal(take(f), "220 mx.test ESMTP mxring Receiver\r\n");
    const char *r = feed(f, "EHLO client.example\r\n");
    assert_string_equal(r,
                        "250-mx.test Hello [127.0.0.1], pleased to meet you\r\n"
                        "250-PIPELINING\r\n250-SIZE 4096\r\n250-8BITMIME\r\n"
                        "250-SMTPUTF8\r\n250-DSN\r\n250-CHUNKING\r\n250 ENHANCEDSTATUSCODES\r\n");
    assert_string_equal(feed(f, "HELO other\r\n"),
                        "250 mx.test Hello [127.0.0.1], pleased to meet you\r\n");
    destroy(f);
}

static void test_session_order_errors(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1");
    take(f);
    assert_non_null(strstr(feed(f, "MAIL FROM:<a@b.example>\r\n"), "503 5.5.1"));
    greet(f);
    assert_non_null(strstr(feed(f, "RCPT TO:<u@example.test>\r\n"), "503 5.5.1"));
    assert_non_null(strstr(feed(f, "DATA\r\n"), "503 5.5.1"));
    assert_string_equal(feed(f, "MAIL FROM:<a@b.example>\r\n"),
                        "250 2.1.0 <a@b.example>... Sender ok.\r\n");
    assert_non_null(strstr(feed(f, "MAIL FROM:<a@b.example>\r\n"), "503 5.5.1"));
    destroy(f);
}

static void test_session_unknown_and_syntax(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1");
    greet(f);
    assert_string_equal(feed(f, "FOO bar\r\n"), "500 5.5.2 Syntax error, command unrecognized\r\n");
    assert_non_null(strstr(feed(f, "MAIL FROM:<a b>\r\n"), "501 5.1.7"));
    assert_non_null(strstr(feed(f, "MAIL FROM:<a@b.example> FOO=1\r\n"), "555 5.5.4"));
    assert_non_null(strstr(feed(f, "QUIT now\r\n"), "501 5.5.4"));
    assert_int_equal(sess_action(f->s), SESS_RUN);
    destroy(f);
}

static void test_session_transaction_to_spool(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1");
    greet(f);
    feed(f, "MAIL FROM:<a@b.example> BODY=8BITMIME\r\n");
    assert_string_equal(feed(f, "RCPT TO:<u@Example.TEST>\r\n"),
                        "250 2.1.5 <u@Example.TEST>... Recipient ok.\r\n");
    assert_non_null(strstr(feed(f, "DATA\r\n"), "354 "));
    assert_string_equal(feed(f, "Subject: x\r\n\r\n..dot\r\nbody\r\n.\r\n"), "");
    assert_int_equal(sess_action(f->s), SESS_SPOOL);
    const struct sess_msg *m = sess_msg(f->s);
    assert_non_null(m);
    assert_string_equal(m->sender, "a@b.example");
    assert_int_equal(m->nrcpt, 1);
    assert_string_equal(m->rcpts, "u@Example.TEST");
    assert_true(m->eightbit);
    assert_int_equal(m->body_len, strlen("Subject: x\r\n\r\n.dot\r\nbody\r\n"));
    assert_int_equal(m->tail_len, m->body_len);
    assert_memory_equal(m->tail, "Subject: x\r\n\r\n.dot\r\nbody\r\n", m->body_len);
    sess_spool_done(f->s, 0, "QID123");
    assert_string_equal(take(f), "250 2.0.0 Message received ok. id=QID123\r\n");
    assert_int_equal(sess_action(f->s), SESS_RUN);
    assert_false(sess_in_transaction(f->s));
    destroy(f);
}

static void test_session_dsn_params_to_spool(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1");
    greet(f);
    assert_string_equal(feed(f, "MAIL FROM:<a@b.example> RET=BODY\r\n"),
                        "501 5.5.4 Bad RET parameter syntax (RFC 3461)\r\n");
    assert_string_equal(feed(f, "MAIL FROM:<a@b.example> ENVID=x ENVID=y\r\n"),
                        "501 5.5.4 Duplicate ENVID parameter\r\n");
    feed(f, "MAIL FROM:<a@b.example> RET=HDRS ENVID=E+2B1\r\n");
    assert_string_equal(feed(f, "RCPT TO:<u@example.test> NOTIFY=NEVER,DELAY\r\n"),
                        "501 5.5.4 Bad NOTIFY parameter syntax (RFC 3461)\r\n");
    assert_string_equal(feed(f, "RCPT TO:<u@example.test> ORCPT=rfc822;u+4\r\n"),
                        "501 5.5.4 Bad ORCPT parameter syntax (RFC 3461)\r\n");
    assert_non_null(strstr(feed(f, "RCPT TO:<u@example.test> NOTIFY=SUCCESS,DELAY "
                                   "ORCPT=rfc822;U+40example.test\r\n"),
                           "250 2.1.5"));
    assert_non_null(strstr(feed(f, "RCPT TO:<v@example.test>\r\n"), "250 2.1.5"));
    feed(f, "DATA\r\n");
    feed(f, "Subject: x\r\n\r\nbody\r\n.\r\n");
    const struct sess_msg *m = sess_msg(f->s);
    assert_non_null(m);
    assert_int_equal(m->nrcpt, 2);
    assert_int_equal(m->dsn_ret, SMTP_RET_HDRS);
    assert_string_equal(m->envid, "E+2B1");
    assert_int_equal(m->notify[0], SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY);
    assert_int_equal(m->notify[1], 0);
    assert_string_equal(m->orcpts, "rfc822;U+40example.test");
    assert_string_equal(m->orcpts + strlen(m->orcpts) + 1, "");
    sess_spool_done(f->s, 0, "Q1");
    destroy(f);
}

static void test_session_dsn_params_need_ehlo(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1");
    take(f);
    feed(f, "HELO client.example\r\n");
    assert_non_null(strstr(feed(f, "MAIL FROM:<a@b.example> RET=FULL\r\n"), "555 5.5.4"));
    feed(f, "MAIL FROM:<a@b.example>\r\n");
    assert_non_null(strstr(feed(f, "RCPT TO:<u@example.test> NOTIFY=NEVER\r\n"), "555 5.5.4"));
    destroy(f);
}

static void test_session_pipelined_input_held_during_spool(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1");
    greet(f);
    feed(f, "MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\nDATA\r\n");
    /* end of data and the next commands in one read */
    const char *r = feed(f, "hi\r\n.\r\nMAIL FROM:<c@d.example>\r\nNOOP\r\n");
    assert_string_equal(r, "");
    assert_int_equal(sess_action(f->s), SESS_SPOOL);
    assert_true(sess_backlog(f->s) > 0);
    sess_spool_done(f->s, 0, "Q1");
    sess_input(f->s, NULL, 0);
    assert_string_equal(take(f), "250 2.0.0 Message received ok. id=Q1\r\n"
                                 "250 2.1.0 <c@d.example>... Sender ok.\r\n"
                                 "250 2.0.0 OK\r\n");
    destroy(f);
}

static void test_session_spool_failure_451(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1");
    greet(f);
    feed(f, "MAIL FROM:<>\r\nRCPT TO:<u@example.test>\r\nDATA\r\nx\r\n.\r\n");
    assert_int_equal(sess_action(f->s), SESS_SPOOL);
    assert_string_equal(sess_msg(f->s)->sender, "");
    sess_spool_done(f->s, 28 /* ENOSPC */, NULL);
    assert_non_null(strstr(take(f), "451 4.3.0"));
    assert_int_equal(sess_action(f->s), SESS_RUN);
    destroy(f);
}

static void test_session_smuggling_bare_lf(void **state)
{
    (void)state;
    static const char *variants[] = {"\n.\r\n", "\r\n.\n", "\r.\r"};
    for (size_t i = 0; i < 3; i++) {
        struct fixture *f = make("127.0.0.1");
        greet(f);
        feed(f, "MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\nDATA\r\n");
        char body[512];
        snprintf(body, sizeof(body),
                 "hello%sMAIL FROM:<evil@x.example>\r\nRCPT TO:<u@example.test>\r\n"
                 "DATA\r\nsmuggled\r\n.\r\n",
                 variants[i]);
        assert_string_equal(feed(f, body),
                            "550 5.5.2 Message refused: bare CR or LF in data is not allowed\r\n");
        assert_int_equal(sess_action(f->s), SESS_RUN);
        assert_false(sess_in_transaction(f->s));
        destroy(f);
    }
}

static void test_session_byte_by_byte(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1");
    take(f);
    const char *in = "EHLO x.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\n"
                     "DATA\r\nline\r\n.\r\n";
    for (const char *p = in; *p; p++)
        sess_input(f->s, p, 1);
    assert_int_equal(sess_action(f->s), SESS_SPOOL);
    assert_memory_equal(sess_msg(f->s)->tail, "line\r\n", 6);
    destroy(f);
}

static void test_session_line_too_long(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1");
    greet(f);
    char line[700];
    memset(line, 'A', sizeof(line));
    sess_input(f->s, "NOOP ", 5);
    sess_input(f->s, line, sizeof(line));
    assert_string_equal(take(f), "500 5.5.6 Line too long\r\n");
    assert_string_equal(feed(f, "tail of the long line\r\nNOOP\r\n"), "250 2.0.0 OK\r\n");
    destroy(f);
}

static void test_session_relay_and_limits(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1"); /* not in 10.0.0.0/8: untrusted */
    greet(f);
    feed(f, "MAIL FROM:<a@b.example>\r\n");
    assert_string_equal(feed(f, "RCPT TO:<x@remote.example>\r\n"),
                        "550 5.7.1 <x@remote.example>... Relaying denied.\r\n");
    assert_non_null(strstr(feed(f, "DATA\r\n"), "554 5.5.1"));
    feed(f, "RCPT TO:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nRCPT TO:<c@example.test>\r\n");
    assert_string_equal(feed(f, "RCPT TO:<d@example.test>\r\n"),
                        "452 4.5.3 Too many recipients\r\n");
    destroy(f);

    f = make("10.1.2.3"); /* trusted: may relay */
    greet(f);
    feed(f, "MAIL FROM:<a@b.example>\r\n");
    assert_non_null(strstr(feed(f, "RCPT TO:<x@remote.example>\r\n"), "250 2.1.5"));
    destroy(f);
}

static void test_session_error_limit(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1");
    greet(f);
    for (int i = 0; i < 4; i++)
        feed(f, "BOGUS\r\n");
    assert_int_equal(sess_action(f->s), SESS_RUN);
    const char *r = feed(f, "BOGUS\r\nNOOP\r\n");
    assert_non_null(strstr(r, "421 4.7.0"));
    assert_null(strstr(r, "250 2.0.0 OK"));
    assert_int_equal(sess_action(f->s), SESS_CLOSE);
    destroy(f);
}

static void test_session_size_limits(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1");
    greet(f);
    assert_non_null(strstr(feed(f, "MAIL FROM:<a@b.example> SIZE=5000\r\n"), "552 5.3.4"));
    feed(f, "MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\nDATA\r\n");
    char big[5000];
    memset(big, 'x', sizeof(big));
    for (size_t i = 80; i < sizeof(big); i += 80) {
        big[i - 2] = '\r';
        big[i - 1] = '\n';
    }
    sess_input(f->s, big, sizeof(big));
    assert_non_null(strstr(feed(f, "\r\n.\r\n"), "552 5.3.4"));
    assert_int_equal(sess_action(f->s), SESS_RUN);
    assert_string_equal(feed(f, "NOOP\r\n"), "250 2.0.0 OK\r\n");
    destroy(f);
}

/* make_big - a session whose messages may be up to limit octets. */
static struct fixture *make_big(const char *limit)
{
    static char conf[1024];
    const char *base = base_conf, *at = strstr(base, "max_message_size = 4096\n");
    assert_non_null(at);
    snprintf(conf, sizeof(conf), "%.*smax_message_size = %s\n%s", (int)(at - base), base, limit,
             at + strlen("max_message_size = 4096\n"));
    base_conf = conf; /* this fixture only */
    struct fixture *f = make_conf("127.0.0.1", "", false);
    base_conf = base;
    return f;
}

/* stream - feed in[0..n) in uneven pieces, taking every chunk into got;
 * returns the number of chunks. */
static unsigned stream(struct fixture *f, const char *in, size_t n, struct sb *got)
{
    unsigned chunks = 0;
    for (size_t off = 0, step = 1; off < n; off += step, step = step * 7 % 9973 + 1) {
        if (step > n - off)
            step = n - off;
        sess_input(f->s, in + off, step);
        while (sess_action(f->s) == SESS_CHUNK) {
            size_t len;
            const char *c = sess_chunk(f->s, &len);
            assert_true(len > 0 && len <= SESS_CHUNK_MAX);
            assert_true(sb_append(got, c, len));
            chunks++;
            sess_chunk_done(f->s);
            sess_input(f->s, NULL, 0);
        }
    }
    return chunks;
}

static void test_session_streams_bounded_chunks(void **state)
{
    (void)state;
    struct fixture *f = make_big("1M");
    greet(f);
    feed(f, "MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\nDATA\r\n");
    struct sb wire = {0}, want = {0}, got = {0};
    for (int i = 0; i < 4000; i++) { /* ~300 KB, every third line dot-stuffed */
        char line[96];
        int n = snprintf(line, sizeof(line), "%sline %d of the streamed message\r\n",
                         i % 3 ? "" : ".", i);
        if (line[0] == '.') /* the client stuffs it: ".." on the wire */
            assert_true(sb_append(&wire, ".", 1));
        assert_true(sb_append(&wire, line, (size_t)n));
        assert_true(sb_append(&want, line, (size_t)n));
    }
    assert_true(sb_append(&wire, ".\r\nNOOP\r\n", 10));
    unsigned chunks = stream(f, wire.data, wire.len, &got);
    assert_int_equal(chunks, want.len / (SESS_CHUNK_MAX - 1));
    assert_int_equal(sess_action(f->s), SESS_SPOOL);
    const struct sess_msg *m = sess_msg(f->s);
    assert_int_equal(m->body_len, want.len);
    assert_true(m->tail_len <= SESS_CHUNK_MAX);
    assert_true(sb_append(&got, m->tail, m->tail_len));
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    sess_spool_done(f->s, 0, "QSTREAM");
    sess_input(f->s, NULL, 0); /* the pipelined NOOP */
    assert_non_null(strstr(take(f), "250 2.0.0 OK"));
    sb_free(&wire);
    sb_free(&want);
    sb_free(&got);
    destroy(f);
}

static void test_session_refused_message_stops_chunks(void **state)
{
    (void)state;
    struct fixture *f = make_big("100K");
    greet(f);
    feed(f, "MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\nDATA\r\n");
    struct sb wire = {0}, got = {0};
    while (wire.len < 400 * 1024)
        assert_true(sb_append(&wire, "0123456789012345678901234567890123456789\r\n", 42));
    assert_true(sb_append(&wire, ".\r\n", 3));
    /* one chunk before the limit is reached, none after it */
    assert_int_equal(stream(f, wire.data, wire.len, &got), 1);
    assert_non_null(strstr(take(f), "552 5.3.4"));
    assert_int_equal(sess_action(f->s), SESS_RUN);
    assert_false(sess_in_transaction(f->s));
    sb_free(&wire);
    sb_free(&got);
    destroy(f);
}

static void test_session_timeout_waits_for_spool(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1");
    greet(f);
    feed(f, "MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\nDATA\r\nx\r\n.\r\n");
    sess_timeout(f->s);
    assert_int_equal(sess_action(f->s), SESS_SPOOL);
    assert_string_equal(take(f), "");
    sess_spool_done(f->s, 0, "Q9");
    const char *r = take(f);
    assert_non_null(strstr(r, "250 2.0.0 Message received ok. id=Q9\r\n421 4.4.2"));
    assert_int_equal(sess_action(f->s), SESS_CLOSE);
    destroy(f);
}

static void test_session_quit(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1");
    take(f);
    assert_string_equal(feed(f, "QUIT\r\nNOOP\r\n"), "221 2.0.0 mx.test closing connection.\r\n");
    assert_int_equal(sess_action(f->s), SESS_CLOSE);
    destroy(f);
}

static void test_session_pregreet_refused(void **state)
{
    (void)state;
    struct fixture *f = make("192.0.2.9");
    sb_reset(sess_out(f->s));
    struct sess *s = f->s;
    /* a second session in greet-wait */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(5)};
    inet_pton(AF_INET, "192.0.2.9", &sa.sin_addr);
    struct mx_addr peer;
    mx_addr_from_sockaddr(&peer, (struct sockaddr *)&sa);
    f->s = sess_new(&f->env, f->snap, 7, &peer, 25);
    sess_free(s);
    sess_greet_wait(f->s);
    assert_string_equal(take(f), "");
    assert_non_null(strstr(feed(f, "EHLO early\r\n"), "554 5.5.0"));
    assert_int_equal(sess_action(f->s), SESS_CLOSE);
    sess_free(f->s);
    /* and one that waits politely gets the banner */
    f->s = sess_new(&f->env, f->snap, 8, &peer, 25);
    sess_greet_wait(f->s);
    sess_greet(f->s);
    assert_string_equal(take(f), "220 mx.test ESMTP mxring Receiver\r\n");
    assert_non_null(strstr(feed(f, "EHLO polite\r\n"), "250 ENHANCEDSTATUSCODES"));
    destroy(f);
}

static void test_session_junk_limit(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1");
    greet(f);
    for (int i = 0; i < 100; i++)
        assert_string_equal(feed(f, "NOOP\r\n"), "250 2.0.0 OK\r\n");
    assert_non_null(strstr(feed(f, "RSET\r\n"), "421 4.7.0"));
    assert_int_equal(sess_action(f->s), SESS_CLOSE);
    destroy(f);
}

static void test_session_refusals(void **state)
{
    (void)state;
    static const struct {
        enum sess_close_reason why;
        const char *want;
    } cases[] = {
        {SESS_BY_LIMIT, "exceeds an accepting limit"},
        {SESS_BY_PER_IP, "too many connections from your address"},
        {SESS_BY_RATE, "too many connections per minute"},
    };
    for (size_t i = 0; i < 3; i++) {
        struct fixture *f = make("192.0.2.1");
        take(f);
        sess_refuse(f->s, cases[i].why);
        const char *r = take(f);
        assert_non_null(strstr(r, "421 4.7.0"));
        assert_non_null(strstr(r, cases[i].want));
        assert_int_equal(sess_action(f->s), SESS_CLOSE);
        destroy(f);
    }
}

static void test_session_progress_counts_whole_commands(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1");
    greet(f);
    unsigned p0 = sess_progress(f->s);
    sess_input(f->s, "NO", 2);
    sess_input(f->s, "O", 1);
    assert_int_equal(sess_progress(f->s), p0);
    sess_input(f->s, "P\r\n", 3);
    assert_int_equal(sess_progress(f->s), p0 + 1);
    destroy(f);
}

/* open_data - EHLO, MAIL (with params), one RCPT, DATA. */
static void open_data(struct fixture *f, const char *mail_params)
{
    greet(f);
    char mail[128];
    snprintf(mail, sizeof(mail), "MAIL FROM:<a@b.example>%s\r\n", mail_params);
    feed(f, mail);
    feed(f, "RCPT TO:<u@example.test>\r\n");
    assert_non_null(strstr(feed(f, "DATA\r\n"), "354 "));
}

/* test_session_nul_refused - a NUL anywhere in the data refuses the message
 * with 550 5.6.0 at the real end of data, logged with its offset; the
 * "\r\n\0.\r\n" that a NUL-stripping next hop would end the data at does not
 * end it here. */
static void test_session_nul_refused(void **state)
{
    (void)state;
    struct fixture *f = make_logged("192.0.2.7", "");
    open_data(f, "");
    assert_string_equal(feedn(f, "a\r\n\0.\r\n", 7), "");
    assert_string_equal(feed(f, "b\r\n.\r\n"),
                        "550 5.6.0 Message refused: NUL characters in data are not allowed\r\n");
    assert_int_equal(sess_action(f->s), SESS_RUN);
    assert_false(sess_in_transaction(f->s));
    const char *log = logged(f);
    assert_non_null(strstr(log, "Message refused (10 octets): NUL octet at data offset 3\n"));
    assert_non_null(strstr(log, " result=refused reason=\"NUL octet at data offset 3\"\n"));
    destroy(f);
}

/* test_session_nul_allowed - nul_bytes = allow keeps such mail and logs it. */
static void test_session_nul_allowed(void **state)
{
    (void)state;
    struct fixture *f = make_logged("192.0.2.7", "nul_bytes = allow\n");
    open_data(f, "");
    assert_string_equal(feedn(f, "a\0b\r\n.\r\n", 8), "");
    assert_int_equal(sess_action(f->s), SESS_SPOOL);
    assert_int_equal(sess_msg(f->s)->body_len, 5);
    assert_non_null(strstr(logged(f), "NUL octet at data offset 1 accepted (nul_bytes = allow)"));
    destroy(f);
}

/* test_session_bare_eol_reasons - a bare CR/LF refusal names the octet, its
 * offset, and whether an SMTP command followed it (an attack) or not (a
 * sloppy client). */
static void test_session_bare_eol_reasons(void **state)
{
    (void)state;
    struct fixture *f = make_logged("192.0.2.7", "");
    open_data(f, "");
    assert_non_null(
        strstr(feed(f, "hello\n.\r\nMAIL FROM:<evil@x.example>\r\n.\r\n"), "550 5.5.2"));
    open_data(f, "");
    assert_non_null(strstr(feed(f, "line\r\nsecond\rline\r\n.\r\n"), "550 5.5.2"));
    const char *log = logged(f);
    assert_non_null(strstr(log, "): bare LF at data offset 5, an SMTP command follows it "
                                "(smuggling attempt)\n"));
    assert_non_null(strstr(log, "): bare CR at data offset 12, no SMTP command follows it\n"));
    assert_int_equal(count_of(log, "Transaction summary: "), 2);
    destroy(f);
}

/* test_session_size_refusal_logged - MAIL with SIZE= over the limit gets
 * its reason line and a summary, like every other refusal. */
static void test_session_size_refusal_logged(void **state)
{
    (void)state;
    struct fixture *f = make_logged("192.0.2.7", "");
    greet(f);
    assert_non_null(strstr(feed(f, "MAIL FROM:<big@b.example> SIZE=5000\r\n"), "552 5.3.4"));
    const char *log = logged(f);
    assert_non_null(strstr(log, ", MAIL refused: declared SIZE=5000 over max_message_size 4096\n"));
    assert_non_null(strstr(log, "Transaction summary: client=192.0.2.7 helo=client.example tls=- "
                                "auth=- from=<big@b.example> rcpts=0 rcpts_refused=0 size=5000 "
                                "result=refused reason=\"declared SIZE=5000 over "
                                "max_message_size 4096\"\n"));
    destroy(f);
}

/* test_session_8bit_recorded - 8-bit data is recorded as 8BITMIME whatever
 * was declared, and a missing or 7BIT declaration is logged; 7-bit data
 * without BODY= stays 7BIT. */
static void test_session_8bit_recorded(void **state)
{
    (void)state;
    static const struct {
        const char *params, *data, *note;
        bool eightbit;
    } cases[] = {
        {"", "caf\xc3\xa9\r\n.\r\n", "(declared no BODY)", true},
        {" BODY=7BIT", "caf\xc3\xa9\r\n.\r\n", "(declared BODY=7BIT)", true},
        {" BODY=8BITMIME", "caf\xc3\xa9\r\n.\r\n", NULL, true},
        {"", "plain\r\n.\r\n", NULL, false},
    };
    for (size_t i = 0; i < MX_ARRAY_LEN(cases); i++) {
        struct fixture *f = make_logged("192.0.2.7", "");
        open_data(f, cases[i].params);
        feed(f, cases[i].data);
        assert_int_equal(sess_action(f->s), SESS_SPOOL);
        assert_int_equal(sess_msg(f->s)->eightbit, cases[i].eightbit);
        const char *log = logged(f);
        const char *hit = strstr(log, "8-bit data without BODY=8BITMIME");
        if (cases[i].note) {
            assert_non_null(hit);
            assert_non_null(strstr(hit, cases[i].note));
        } else {
            assert_null(hit);
        }
        sess_spool_done(f->s, 0, "Q");
        destroy(f);
    }
}

/* test_session_protocol_names - RFC 3848: SMTP, ESMTP, ESMTPS, ESMTPA,
 * ESMTPSA; the TLS version and cipher reach the message. */
static void test_session_protocol_names(void **state)
{
    (void)state;
    static const struct {
        bool helo, tls, auth;
        const char *want;
    } cases[] = {
        {true, false, false, "SMTP"},   {false, false, false, "ESMTP"},
        {false, true, false, "ESMTPS"}, {false, false, true, "ESMTPA"},
        {false, true, true, "ESMTPSA"},
    };
    for (size_t i = 0; i < MX_ARRAY_LEN(cases); i++) {
        struct fixture *f = make("127.0.0.1");
        take(f);
        if (cases[i].tls) {
            sess_set_mode(f->s, SESS_MODE_TLS);
            sess_tls_started(f->s, "TLSv1.3", "TLS_AES_256_GCM_SHA384");
        }
        if (cases[i].auth)
            sess_set_authenticated(f->s, "jo");
        feed(f, cases[i].helo ? "HELO client.example\r\n" : "EHLO client.example\r\n");
        feed(f, "MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\nDATA\r\nx\r\n.\r\n");
        const struct sess_msg *m = sess_msg(f->s);
        assert_non_null(m);
        assert_string_equal(m->proto, cases[i].want);
        if (cases[i].tls) {
            assert_string_equal(m->tls_version, "TLSv1.3");
            assert_string_equal(m->tls_cipher, "TLS_AES_256_GCM_SHA384");
        } else {
            assert_null(m->tls_version);
            assert_null(m->tls_cipher);
        }
        if (cases[i].auth)
            assert_string_equal(m->auth_user, "jo");
        else
            assert_null(m->auth_user);
        destroy(f);
    }
}

/* test_session_summary_lines - one summary per transaction, whatever ends
 * it: queued (with its id), aborted by RSET or by the client leaving,
 * refused, a failed queue write; recipients accepted and refused. */
static void test_session_summary_lines(void **state)
{
    (void)state;
    struct fixture *f = make_logged("192.0.2.7", "");
    open_data(f, " BODY=8BITMIME");
    feed(f, "hi\r\n.\r\n");
    sess_spool_done(f->s, 0, "QID1");
    feed(f, "MAIL FROM:<>\r\nRCPT TO:<nobody@remote.example>\r\nRCPT TO:<u@example.test>\r\n"
            "RSET\r\n");
    feed(f, "MAIL FROM:<c@d.example>\r\nRCPT TO:<u@example.test>\r\nDATA\r\nx\r\n.\r\n");
    sess_spool_done(f->s, 28 /* ENOSPC */, NULL);
    feed(f, "MAIL FROM:<e@f.example>\r\nRCPT TO:<u@example.test>\r\nDATA\r\npart");
    sess_gone(f->s, SESS_BY_PEER);
    const char *log = logged(f);
    const char *pre = "Transaction summary: client=192.0.2.7 helo=client.example tls=- auth=- ";
    char want[512];
    snprintf(want, sizeof(want),
             "%sfrom=<a@b.example> rcpts=1 rcpts_refused=0 size=4 "
             "result=queued id=QID1\n",
             pre);
    assert_non_null(strstr(log, want));
    snprintf(want, sizeof(want),
             "%sfrom=<> rcpts=1 rcpts_refused=1 size=0 result=aborted "
             "reason=\"RSET\"\n",
             pre);
    assert_non_null(strstr(log, want));
    snprintf(want, sizeof(want),
             "%sfrom=<c@d.example> rcpts=1 rcpts_refused=0 size=3 "
             "result=tempfail reason=\"queue write failed: No space left on device\"\n",
             pre);
    assert_non_null(strstr(log, want));
    snprintf(want, sizeof(want),
             "%sfrom=<e@f.example> rcpts=1 rcpts_refused=0 size=4 "
             "result=aborted reason=\"client gone\"\n",
             pre);
    assert_non_null(strstr(log, want));
    assert_int_equal(count_of(log, "Transaction summary: "), 4);
    /* the summary comes before the final reply of its transaction */
    const char *sum = strstr(log, "result=queued id=QID1");
    assert_non_null(strstr(sum, "250 2.0.0 Message received ok. id=QID1"));
    destroy(f);
}

/* want_all - the content filters want every message. */
static bool want_all(void *arg, const struct snap *snap)
{
    (void)arg;
    (void)snap;
    return true;
}

/* test_session_summary_tls_auth - the summary names TLS version and AUTH
 * user; a quarantined message says so. */
static void test_session_summary_tls_auth(void **state)
{
    (void)state;
    struct fixture *f = make_logged("192.0.2.8", "");
    f->env.want_filter = want_all;
    take(f);
    sess_set_mode(f->s, SESS_MODE_TLS);
    sess_tls_started(f->s, "TLSv1.3", "TLS_AES_128_GCM_SHA256");
    sess_set_authenticated(f->s, "j\xc3\xb6rg");
    open_data(f, "");
    feed(f, "x\r\n.\r\n");
    assert_int_equal(sess_action(f->s), SESS_FILTER);
    sess_filter_done(f->s, SESS_VERDICT_QUARANTINE, "surbl \"listed\"");
    sess_spool_done(f->s, 0, "QID2");
    assert_non_null(strstr(logged(f), "Transaction summary: client=192.0.2.8 "
                                      "helo=client.example tls=TLSv1.3 auth=j\xc3\xb6rg "
                                      "from=<a@b.example> rcpts=1 rcpts_refused=0 size=3 "
                                      "result=quarantined id=QID2 reason=\"surbl 'listed'\"\n"));
    destroy(f);
}

/* test_session_eof_answers_held_input - a client that half-closes after
 * pipelining gets every held command answered, the second message too. */
static void test_session_eof_answers_held_input(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1");
    greet(f);
    const char *txn = "MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\nDATA\r\nhi\r\n.\r\n";
    char wire[512];
    snprintf(wire, sizeof(wire), "%s%sQUIT\r\n", txn, txn);
    feed(f, wire);
    assert_int_equal(sess_action(f->s), SESS_SPOOL);
    sess_eof(f->s); /* the message is still being written: wait */
    assert_int_equal(sess_action(f->s), SESS_SPOOL);
    sess_spool_done(f->s, 0, "Q1");
    sess_eof(f->s);
    assert_int_equal(sess_action(f->s), SESS_SPOOL);
    sess_spool_done(f->s, 0, "Q2");
    sess_eof(f->s);
    assert_int_equal(sess_action(f->s), SESS_CLOSE);
    const char *r = take(f);
    assert_non_null(strstr(r, "id=Q1\r\n"));
    assert_non_null(strstr(r, "id=Q2\r\n221 2.0.0 mx.test closing connection.\r\n"));
    destroy(f);
}

/* test_session_eof_inside_data_closes - an unfinished DATA or line at the
 * end of input ends the session; nothing is handed to the spool. */
static void test_session_eof_inside_data_closes(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1");
    greet(f);
    feed(f, "MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\nDATA\r\nhalf a message\r\n");
    sess_eof(f->s);
    assert_int_equal(sess_action(f->s), SESS_CLOSE);
    assert_null(sess_msg(f->s));
    destroy(f);
    f = make("127.0.0.1");
    greet(f);
    assert_string_equal(feed(f, "NOOP\r\nNOO"), "250 2.0.0 OK\r\n");
    sess_eof(f->s);
    assert_int_equal(sess_action(f->s), SESS_CLOSE);
    assert_string_equal(take(f), "");
    destroy(f);
}

/* ---- AUTH secrets never reach the log (issue 14, item 2) ------------------ */

#define SECRET_B64 "AHVzZXIAU3VwM3JTZWNyZXRQdw==" /* PLAIN "\0user\0Sup3rSecretPw" */
#define SECRET_PASS "Sup3rSecretPw"
#define SECRET_PASS_B64 "U3VwM3JTZWNyZXRQdw=="
#define AUTH_CONF "users_file = /dev/null\nauth_require_tls = no\n"

/* assert_no_secret - the log holds none of the secret's forms. */
static void assert_no_secret(const struct fixture *f)
{
    assert_null(strstr(f->lines, SECRET_B64));
    assert_null(strstr(f->lines, SECRET_PASS));
    assert_null(strstr(f->lines, SECRET_PASS_B64));
}

static void test_session_auth_tab_masked(void **state)
{
    (void)state;
    static const char *lines[] = {
        "AUTH\tPLAIN " SECRET_B64 "\r\n", "auth\t\tplain\t" SECRET_B64 "\r\n",
        "AUTH\vPLAIN " SECRET_B64 "\r\n", " AUTH PLAIN " SECRET_B64 "\r\n"};
    for (size_t i = 0; i < MX_ARRAY_LEN(lines); i++) {
        struct fixture *f = make_with("127.0.0.1", AUTH_CONF, NULL);
        greet(f);
        assert_non_null(strstr(feed(f, lines[i]), "500 5.5.2"));
        assert_non_null(strstr(f->lines, "AUTH PLAIN ****\n"));
        assert_no_secret(f);
        destroy(f);
    }
}

/* test_session_auth_counted - every AUTH attempt lands in the metrics'
 * counters under its mechanism and outcome: unknown mechanism, undecodable
 * PLAIN, cancelled LOGIN, verifier busy, verified. */
static void test_session_auth_counted(void **state)
{
    (void)state;
    struct fixture *f = make_with("127.0.0.1", AUTH_CONF "auth_max_failures = 9\n", NULL);
    greet(f);
    assert_non_null(strstr(feed(f, "AUTH CRAM-MD5\r\n"), "504 5.5.4"));
    assert_non_null(strstr(feed(f, "AUTH PLAIN !!!!\r\n"), "501 5.5.2"));
    assert_non_null(strstr(feed(f, "AUTH LOGIN\r\n"), "334 "));
    assert_non_null(strstr(feed(f, "*\r\n"), "501 5.7.0"));
    feed(f, "AUTH PLAIN " SECRET_B64 "\r\n");
    assert_int_equal(sess_action(f->s), SESS_AUTH);
    sess_auth_done(f->s, SESS_AUTH_BUSY, NULL);
    assert_non_null(strstr(take(f), "454 "));
    feed(f, "AUTH PLAIN " SECRET_B64 "\r\n");
    sess_auth_done(f->s, SESS_AUTH_OK, NULL);
    assert_non_null(strstr(take(f), "235 "));
    const uint64_t(*a)[SESS_AUTHO_COUNT] = f->ctr.auth;
    assert_int_equal(a[AUTH_MECH_UNKNOWN][SESS_AUTHO_FAILED], 1);
    assert_int_equal(a[AUTH_MECH_PLAIN][SESS_AUTHO_FAILED], 1);
    assert_int_equal(a[AUTH_MECH_LOGIN][SESS_AUTHO_CANCELLED], 1);
    assert_int_equal(a[AUTH_MECH_PLAIN][SESS_AUTHO_TEMPFAIL], 1);
    assert_int_equal(a[AUTH_MECH_PLAIN][SESS_AUTHO_OK], 1);
    assert_int_equal(a[AUTH_MECH_LOGIN][SESS_AUTHO_OK], 0);
    destroy(f);
}

/* test_session_txn_latency_observed - a transaction that got its final
 * reply is one observation of the latency histogram; one aborted by RSET
 * is none. */
static void test_session_txn_latency_observed(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1");
    greet(f);
    feed(f, "MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\nRSET\r\n");
    assert_int_equal(mhist_count(&f->ctr.txn_latency), 0);
    feed(f, "MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\nDATA\r\nx\r\n.\r\n");
    usleep(2000);
    sess_spool_done(f->s, 0, "Q1");
    assert_non_null(strstr(take(f), "250 2.0.0"));
    assert_int_equal(mhist_count(&f->ctr.txn_latency), 1);
    assert_true(f->ctr.txn_latency.sum_us >= 2000);
    destroy(f);
}

static void test_session_auth_response_after_504_masked(void **state)
{
    (void)state;
    struct fixture *f = make_with("127.0.0.1", AUTH_CONF, NULL);
    greet(f);
    assert_non_null(strstr(feed(f, "AUTH CRAM-MD5\r\n"), "504 5.5.4"));
    assert_non_null(strstr(feed(f, SECRET_B64 "\r\n"), "500 5.5.2"));
    assert_non_null(strstr(f->lines, "AUTH CRAM-MD5\n504 5.5.4 Unrecognized authentication type\n"
                                     "****\n"));
    /* only the line right after: the next command is logged as it is */
    assert_string_equal(feed(f, "NOOP\r\n"), "250 2.0.0 OK\r\n");
    assert_non_null(strstr(f->lines, "\nNOOP\n"));
    assert_no_secret(f);
    destroy(f);
}

static void test_session_auth_response_after_503_masked(void **state)
{
    (void)state;
    struct fixture *f = make_with("127.0.0.1", AUTH_CONF, NULL);
    greet(f);
    sess_set_authenticated(f->s, "user@example.test");
    assert_non_null(strstr(feed(f, "AUTH PLAIN\r\n"), "503 5.5.1"));
    assert_non_null(strstr(feed(f, SECRET_B64 "\r\n"), "500 5.5.2"));
    assert_non_null(strstr(f->lines, "AUTH PLAIN\n503 5.5.1 Error: already authenticated\n****\n"));
    assert_no_secret(f);
    destroy(f);
}

static void test_session_auth_response_after_538_masked(void **state)
{
    (void)state;
    /* auth_require_tls = yes (the default) and no TLS: 538 */
    struct fixture *f = make_with("127.0.0.1", "users_file = /dev/null\n", NULL);
    greet(f);
    assert_non_null(strstr(feed(f, "AUTH PLAIN\r\n"), "538 5.7.11"));
    assert_non_null(strstr(feed(f, SECRET_B64 "\r\n"), "500 5.5.2"));
    assert_no_secret(f);
    destroy(f);
    /* LOGIN: both the user name and the password line are masked */
    f = make_with("127.0.0.1", "users_file = /dev/null\n", NULL);
    greet(f);
    feed(f, "AUTH LOGIN\r\ndXNlcg==\r\n" SECRET_PASS_B64 "\r\n");
    assert_non_null(strstr(f->lines, "AUTH LOGIN\n"));
    assert_non_null(strstr(f->lines, "\n538 5.7.11"));
    assert_non_null(strstr(f->lines, "\n****\n500 5.5.2"));
    assert_null(strstr(f->lines, "dXNlcg=="));
    assert_no_secret(f);
    destroy(f);
}

static void test_session_auth_failed_dialogue_masks_next_line(void **state)
{
    (void)state;
    struct fixture *f = make_with("127.0.0.1", AUTH_CONF, NULL);
    greet(f);
    assert_string_equal(feed(f, "AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    /* a client that does not wait: a bad user line, then the password */
    const char *r = feed(f, "not base64!\r\n" SECRET_PASS_B64 "\r\n");
    assert_non_null(strstr(r, "501 5.5.2 Cannot decode response\r\n500 5.5.2"));
    assert_no_secret(f);
    destroy(f);
}

static void test_session_auth_success_next_line_logged(void **state)
{
    (void)state;
    struct fixture *f = make_with("127.0.0.1", AUTH_CONF, NULL);
    greet(f);
    feed(f, "AUTH PLAIN " SECRET_B64 "\r\n");
    assert_int_equal(sess_action(f->s), SESS_AUTH);
    sess_auth_done(f->s, SESS_AUTH_OK, NULL);
    assert_non_null(strstr(take(f), "235 2.7.0"));
    feed(f, "MAIL FROM:<a@b.example>\r\n");
    assert_non_null(strstr(f->lines, "AUTH PLAIN ****\n"));
    assert_non_null(strstr(f->lines, "\nMAIL FROM:<a@b.example>\n"));
    assert_no_secret(f);
    destroy(f);
}

/* ---- postmaster (item 6) -------------------------------------------------- */

static void test_session_postmaster_always_accepted(void **state)
{
    (void)state;
    struct fixture *f = make_with("127.0.0.1", NULL, "alice@example.test:*\n");
    greet(f);
    feed(f, "MAIL FROM:<a@b.example>\r\n");
    assert_string_equal(feed(f, "RCPT TO:<Postmaster@Example.TEST>\r\n"),
                        "250 2.1.5 <Postmaster@Example.TEST>... Recipient ok.\r\n");
    assert_non_null(strstr(feed(f, "RCPT TO:<POSTMASTER@example.org>\r\n"), "250 2.1.5"));
    assert_non_null(strstr(feed(f, "RCPT TO:<postmaster>\r\n"), "250 2.1.5"));
    assert_non_null(strstr(f->lines, "postmaster, always accepted"));
    destroy(f);
    /* other unknown local parts are still unknown */
    f = make_with("127.0.0.1", NULL, "alice@example.test:*\n");
    greet(f);
    feed(f, "MAIL FROM:<a@b.example>\r\n");
    assert_non_null(strstr(feed(f, "RCPT TO:<postmasters@example.test>\r\n"), "550 5.1.1"));
    destroy(f);
}

/* ---- bare LF in command lines (item 7) ------------------------------------ */

static void test_session_bare_lf_command_refused(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1");
    greet(f);
    assert_string_equal(feed(f, "NOOP\n"), "500 5.5.2 Bare LF in command line, use CRLF\r\n");
    assert_non_null(strstr(f->lines, "ended by a bare LF"));
    /* never run: MAIL with a bare LF opens no transaction */
    assert_non_null(strstr(feed(f, "MAIL FROM:<a@b.example>\n"), "500 5.5.2"));
    assert_false(sess_in_transaction(f->s));
    assert_string_equal(feed(f, "NOOP\r\n"), "250 2.0.0 OK\r\n");
    /* counted as errors: max_errors = 4 */
    feed(f, "NOOP\nNOOP\n");
    assert_int_equal(sess_action(f->s), SESS_RUN);
    assert_non_null(strstr(feed(f, "NOOP\n"), "421 4.7.0"));
    assert_int_equal(sess_action(f->s), SESS_CLOSE);
    destroy(f);
}

static void test_session_bare_lf_auth_masked(void **state)
{
    (void)state;
    struct fixture *f = make_with("127.0.0.1", AUTH_CONF, NULL);
    greet(f);
    assert_non_null(strstr(feed(f, "AUTH PLAIN " SECRET_B64 "\n"), "500 5.5.2 Bare LF"));
    assert_int_equal(sess_action(f->s), SESS_RUN);
    /* inside a dialogue: the response fails the attempt */
    assert_string_equal(feed(f, "AUTH PLAIN\r\n"), "334 \r\n");
    assert_non_null(strstr(feed(f, SECRET_B64 "\n"), "500 5.5.2 Bare LF"));
    assert_int_equal(sess_action(f->s), SESS_RUN);
    assert_non_null(strstr(f->lines, "AUTH failed (1 of 3): response line ended by a bare LF"));
    /* a bare-LF "AUTH LOGIN" as a response: both lines after it are masked */
    assert_string_equal(feed(f, "AUTH PLAIN\r\n"), "334 \r\n");
    feed(f, "AUTH LOGIN\ndXNlcg==\r\n" SECRET_PASS "\r\n");
    assert_no_secret(f);
    destroy(f);
}

/* ---- EXPN, TURN, ETRN and HELP (item 8) ----------------------------------- */

static void test_session_not_implemented_502(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1");
    greet(f);
    static const char *cmds[] = {"EXPN staff\r\n", "TURN\r\n", "etrn example.test\r\n"};
    for (size_t i = 0; i < MX_ARRAY_LEN(cmds); i++)
        assert_string_equal(feed(f, cmds[i]), "502 5.5.1 Error: command not implemented\r\n");
    assert_null(strstr(feed(f, "HELP\r\n"), "EXPN"));
    destroy(f);
}

static void test_session_help_lists_what_is_offered(void **state)
{
    (void)state;
    struct fixture *f = make("127.0.0.1"); /* no users, no STARTTLS */
    greet(f);
    assert_string_equal(
        feed(f, "HELP\r\n"),
        "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP\r\n");
    destroy(f);
    /* users, auth_require_tls = yes, STARTTLS possible: STARTTLS, not AUTH */
    f = make_with("127.0.0.1", "users_file = /dev/null\n", NULL);
    sess_set_mode(f->s, SESS_MODE_STARTTLS);
    greet(f);
    const char *r = feed(f, "HELP\r\n");
    assert_non_null(strstr(r, " STARTTLS"));
    assert_null(strstr(r, "AUTH"));
    assert_string_equal(feed(f, "STARTTLS\r\n"), "220 2.0.0 Ready to start TLS\r\n");
    sess_tls_started(f->s, "TLSv1.3", "TEST");
    greet(f);
    r = feed(f, "HELP\r\n");
    assert_non_null(strstr(r, " AUTH"));
    assert_null(strstr(r, "STARTTLS"));
    destroy(f);
}

/* ---- directory harvest: budget and tarpit (item 11) ----------------------- */

#define HARVEST_CONF "max_unknown_recipients_per_ip = 3\n"
#define HARVEST_USERS "alice@example.test:*\n"

static void test_session_unknown_rcpt_budget_421(void **state)
{
    (void)state;
    struct fixture *f = make_with("127.0.0.1", HARVEST_CONF, HARVEST_USERS);
    greet(f);
    feed(f, "MAIL FROM:<a@b.example>\r\n");
    for (int i = 0; i < 3; i++)
        assert_non_null(strstr(feed(f, "RCPT TO:<nobody@example.test>\r\n"), "550 5.1.1"));
    const char *r = feed(f, "RCPT TO:<nobody@example.test>\r\nNOOP\r\n");
    assert_string_equal(r, "421 4.7.0 mx.test Error: too many unknown recipients from your "
                           "address, try again later\r\n");
    assert_int_equal(sess_action(f->s), SESS_CLOSE);
    assert_non_null(strstr(f->lines, "max_unknown_recipients_per_ip (3 per 10 minutes) exceeded"));
    assert_int_equal(sess_reply_delay_ms(f->s), 0); /* a closing session is not held */
    sess_log_close(f->s);
    assert_non_null(strstr(f->lines, "CloseClient Started. (unknown recipient limit)"));
    destroy(f);
    /* the budget is the address's, across sessions: the hook's count says */
    f = make_with("127.0.0.1", HARVEST_CONF, HARVEST_USERS);
    f->unknowns = 3;
    greet(f);
    feed(f, "MAIL FROM:<a@b.example>\r\n");
    assert_non_null(strstr(feed(f, "RCPT TO:<alice@example.test>\r\n"), "250 2.1.5"));
    assert_non_null(strstr(feed(f, "RCPT TO:<nobody@example.test>\r\n"), "421 4.7.0"));
    destroy(f);
}

static void test_session_unknown_rcpt_budget_trusted_exempt(void **state)
{
    (void)state;
    struct fixture *f = make_with("10.1.2.3", HARVEST_CONF, HARVEST_USERS);
    greet(f);
    feed(f, "MAIL FROM:<a@b.example>\r\n");
    for (int i = 0; i < 4; i++) {
        assert_non_null(strstr(feed(f, "RCPT TO:<nobody@example.test>\r\n"), "550 5.1.1"));
        assert_int_equal(sess_reply_delay_ms(f->s), 0); /* no tarpit either */
    }
    assert_int_equal(f->unknowns, 0);
    destroy(f);
}

static void test_session_unknown_rcpt_tarpit(void **state)
{
    (void)state;
    struct fixture *f = make_with("127.0.0.1", NULL, HARVEST_USERS);
    greet(f);
    feed(f, "MAIL FROM:<a@b.example>\r\n");
    assert_non_null(strstr(feed(f, "RCPT TO:<alice@example.test>\r\n"), "250 2.1.5"));
    assert_int_equal(sess_reply_delay_ms(f->s), 0); /* known recipients are not delayed */
    feed(f, "RCPT TO:<x1@example.test>\r\n");
    assert_int_equal(sess_reply_delay_ms(f->s), 250);
    assert_int_equal(sess_reply_delay_ms(f->s), 0); /* reading it takes it */
    feed(f, "RCPT TO:<x2@example.test>\r\n");
    assert_int_equal(sess_reply_delay_ms(f->s), 500);
    /* pipelined: the delays of one batch add up */
    feed(f, "RCPT TO:<x3@example.test>\r\nRCPT TO:<x4@example.test>\r\n");
    assert_int_equal(sess_reply_delay_ms(f->s), 750 + 1000);
    assert_non_null(strstr(f->lines, "tarpit: reply to unknown recipient 4 of this session "
                                     "delayed 1000 ms"));
    destroy(f);
    /* capped at 5 s */
    f = make_with("127.0.0.1", "unknown_recipient_delay_ms = 3000\n", HARVEST_USERS);
    greet(f);
    feed(f, "MAIL FROM:<a@b.example>\r\nRCPT TO:<x1@example.test>\r\n");
    assert_int_equal(sess_reply_delay_ms(f->s), 3000);
    feed(f, "RCPT TO:<x2@example.test>\r\n");
    assert_int_equal(sess_reply_delay_ms(f->s), 5000);
    feed(f, "RCPT TO:<x3@example.test>\r\n");
    assert_int_equal(sess_reply_delay_ms(f->s), 5000);
    destroy(f);
    /* 0 = off */
    f = make_with("127.0.0.1", "unknown_recipient_delay_ms = 0\n", HARVEST_USERS);
    greet(f);
    feed(f, "MAIL FROM:<a@b.example>\r\nRCPT TO:<x1@example.test>\r\n");
    assert_int_equal(sess_reply_delay_ms(f->s), 0);
    destroy(f);
}

/* queue_full_flag - sess_env queue_full hook over the fixture's flag. */
static bool queue_full_flag(void *arg)
{
    return ((struct fixture *)arg)->queue_full;
}

/* test_session_queue_full - while the delivery queue is full MAIL gets
 * 452 4.3.1 (not counted as a client error, logged with the reason); once
 * it drains the same session's MAIL is accepted. */
static void test_session_queue_full(void **state)
{
    (void)state;
    struct fixture *f = make("192.0.2.9");
    f->env.queue_full = queue_full_flag;
    f->queue_full = true;
    greet(f);
    for (int i = 0; i < 6; i++) /* more than max_errors = 4: still no 421 */
        assert_string_equal(feed(f, "MAIL FROM:<a@b.example>\r\n"),
                            "452 4.3.1 Insufficient system storage, try again later\r\n");
    assert_non_null(strstr(f->lines, "MAIL refused: queue full"));
    f->queue_full = false;
    assert_non_null(strstr(feed(f, "MAIL FROM:<a@b.example>\r\n"), "250 2.1.0"));
    destroy(f);
}

/* traced - run the dialogue text through a fresh session with the trace
 * on (on = true) or off, stderr captured; returns what it wrote. */
static char *traced(bool on, const char *text)
{
    struct fixture *f = make("192.0.2.1");
    f->env.trace = on;
    FILE *cap = tmpfile();
    assert_non_null(cap);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0 && dup2(fileno(cap), 2) == 2);
    feed(f, text);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char *out = calloc(1, 4096);
    rewind(cap);
    size_t n = fread(out, 1, 4095, cap);
    out[n] = 0;
    fclose(cap);
    destroy(f);
    return out;
}

/* Every state and action move is traced, with its cause, when asked for;
 * nothing is written by default. */
static void test_session_trace_moves(void **state)
{
    (void)state;
    const char *dialogue = "EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRSET\r\nQUIT\r\n";
    char *out = traced(true, dialogue);
    assert_non_null(strstr(out, "sess 00001234: state INIT -> HELO (EHLO)\n"));
    assert_non_null(strstr(out, "sess 00001234: state HELO -> MAIL (MAIL)\n"));
    assert_non_null(strstr(out, "sess 00001234: state MAIL -> HELO (RSET)\n"));
    assert_non_null(strstr(out, "sess 00001234: action RUN -> CLOSE (QUIT)\n"));
    assert_non_null(strstr(out, "sess 00001234: state HELO -> CLOSED (QUIT)\n"));
    free(out);
    out = traced(false, dialogue);
    assert_string_equal(out, "");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_banner_and_ehlo),
        cmocka_unit_test(test_session_queue_full),
        cmocka_unit_test(test_session_trace_moves),
        cmocka_unit_test(test_session_order_errors),
        cmocka_unit_test(test_session_unknown_and_syntax),
        cmocka_unit_test(test_session_transaction_to_spool),
        cmocka_unit_test(test_session_dsn_params_to_spool),
        cmocka_unit_test(test_session_dsn_params_need_ehlo),
        cmocka_unit_test(test_session_pipelined_input_held_during_spool),
        cmocka_unit_test(test_session_spool_failure_451),
        cmocka_unit_test(test_session_smuggling_bare_lf),
        cmocka_unit_test(test_session_byte_by_byte),
        cmocka_unit_test(test_session_line_too_long),
        cmocka_unit_test(test_session_relay_and_limits),
        cmocka_unit_test(test_session_error_limit),
        cmocka_unit_test(test_session_size_limits),
        cmocka_unit_test(test_session_streams_bounded_chunks),
        cmocka_unit_test(test_session_refused_message_stops_chunks),
        cmocka_unit_test(test_session_timeout_waits_for_spool),
        cmocka_unit_test(test_session_quit),
        cmocka_unit_test(test_session_pregreet_refused),
        cmocka_unit_test(test_session_junk_limit),
        cmocka_unit_test(test_session_refusals),
        cmocka_unit_test(test_session_progress_counts_whole_commands),
        cmocka_unit_test(test_session_nul_refused),
        cmocka_unit_test(test_session_nul_allowed),
        cmocka_unit_test(test_session_bare_eol_reasons),
        cmocka_unit_test(test_session_size_refusal_logged),
        cmocka_unit_test(test_session_8bit_recorded),
        cmocka_unit_test(test_session_protocol_names),
        cmocka_unit_test(test_session_summary_lines),
        cmocka_unit_test(test_session_summary_tls_auth),
        cmocka_unit_test(test_session_eof_answers_held_input),
        cmocka_unit_test(test_session_eof_inside_data_closes),
        cmocka_unit_test(test_session_auth_tab_masked),
        cmocka_unit_test(test_session_auth_counted),
        cmocka_unit_test(test_session_txn_latency_observed),
        cmocka_unit_test(test_session_auth_response_after_504_masked),
        cmocka_unit_test(test_session_auth_response_after_503_masked),
        cmocka_unit_test(test_session_auth_response_after_538_masked),
        cmocka_unit_test(test_session_auth_failed_dialogue_masks_next_line),
        cmocka_unit_test(test_session_auth_success_next_line_logged),
        cmocka_unit_test(test_session_postmaster_always_accepted),
        cmocka_unit_test(test_session_bare_lf_command_refused),
        cmocka_unit_test(test_session_bare_lf_auth_masked),
        cmocka_unit_test(test_session_not_implemented_502),
        cmocka_unit_test(test_session_help_lists_what_is_offered),
        cmocka_unit_test(test_session_unknown_rcpt_budget_421),
        cmocka_unit_test(test_session_unknown_rcpt_budget_trusted_exempt),
        cmocka_unit_test(test_session_unknown_rcpt_tarpit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
