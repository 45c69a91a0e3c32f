/* test_session_bdat.c - the session's CHUNKING (RFC 3030), driven over bytes
 * with a fake I/O layer that takes every SESS_CHUNK: pipelined BDAT and
 * commands in one buffer, chunks split anywhere, BDAT 0 LAST, the size
 * limit with discard by count, BDAT mixed with DATA, BDAT out of sequence,
 * bare LF / NUL inside chunks, bad counts, RSET and end of input mid-BDAT,
 * and the receivelog lines (through the log tap). */
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

#include "addr.h"
#include "config.h"
#include "dir.h"
#include "session.h"
#include "snap.h"
#include "test_session_util.h"

struct fixture {
    struct snap *snap;
    struct sess_env env;
    struct sess *s;
    struct sb out;    /* replies taken so far (reset by take) */
    struct sb body;   /* the message as the I/O layer got it: chunks, then the tail */
    struct sb lines;  /* every log line, each ended by '\n' */
    unsigned nchunks; /* SESS_CHUNK offers taken */
};

#define CONF_TEXT                                                                    \
    "hostname = mx.test\nworkdir = /tmp\nlisten = 127.0.0.1:2525\n"                  \
    "local_domains = example.test\nmax_errors = 20\ntrusted_networks = 10.0.0.0/8\n" \
    "max_message_size = %s\n"

/* tap - the log hook: keep every line. */
static void tap(void *arg, uint32_t sid, const char *line, size_t len)
{
    (void)sid;
    struct fixture *f = arg;
    sb_append(&f->lines, line, len);
    sb_append(&f->lines, "\n", 1);
    sb_append(&f->lines, "", 1);
    f->lines.len--; /* keep it NUL-terminated */
}

/* make - a greeted ESMTP session with max_message_size = limit. */
static struct fixture *make(const char *limit)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char conf[1024];
    snprintf(conf, sizeof(conf), CONF_TEXT, limit);
    f->env.arg = f;
    f->env.log_tap = tap;
    f->snap = tsess_snap(conf, NULL);
    f->s = tsess_start(&f->env, f->snap, "127.0.0.1", 0x42);
    return f;
}

static void destroy(struct fixture *f)
{
    sess_free(f->s);
    snap_unref(f->snap);
    sb_free(&f->out);
    sb_free(&f->body);
    sb_free(&f->lines);
    free(f);
}

/* run - the fake I/O layer: take every chunk the session offers (and the
 * replies it queued) until it asks for something else. */
static void run(struct fixture *f)
{
    for (;;) {
        struct sb *o = sess_out(f->s);
        sb_append(&f->out, o->data ? o->data : "", o->len);
        sb_reset(o);
        if (sess_action(f->s) != SESS_CHUNK)
            break;
        size_t n;
        const char *p = sess_chunk(f->s, &n);
        assert_true(n > 0 && n <= SESS_CHUNK_MAX);
        sb_append(&f->body, p, n);
        f->nchunks++;
        sess_chunk_done(f->s);
        sess_input(f->s, NULL, 0);
    }
    sb_append(&f->out, "", 1);
    f->out.len--;
}

/* take - the replies since the last take (valid until the next feed). */
static const char *take(struct fixture *f)
{
    static char buf[8192];
    run(f);
    size_t n = f->out.len < sizeof(buf) - 1 ? f->out.len : sizeof(buf) - 1;
    memcpy(buf, f->out.data ? f->out.data : "", n);
    buf[n] = 0;
    sb_reset(&f->out);
    return buf;
}

/* feedn - feed n bytes, return the replies. */
static const char *feedn(struct fixture *f, const char *p, size_t n)
{
    sess_input(f->s, p, n);
    return take(f);
}

static const char *feed(struct fixture *f, const char *text)
{
    return feedn(f, text, strlen(text));
}

/* envelope - EHLO, MAIL and RCPT answered. */
static void envelope(struct fixture *f)
{
    take(f);
    assert_non_null(strstr(feed(f, "EHLO client.example\r\n"), "250-CHUNKING\r\n"));
    assert_string_equal(feed(f, "MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\n"),
                        "250 2.1.0 <a@b.example>... Sender ok.\r\n"
                        "250 2.1.5 <u@example.test>... Recipient ok.\r\n");
}

/* message - the whole message the I/O layer got: chunks and the tail. */
static void message(struct fixture *f)
{
    const struct sess_msg *m = sess_msg(f->s);
    assert_non_null(m);
    sb_append(&f->body, m->tail, m->tail_len);
    assert_int_equal(m->body_len, f->body.len);
}

static void test_session_bdat_pipelined_with_commands(void **st)
{
    (void)st;
    struct fixture *f = make("4096");
    envelope(f);
    /* chunk content looks like commands and an end of data: it is content */
    const char *in =
        "BDAT 12\r\n.\r\nQUIT\r\nX\r\nBDAT 6 LAST\r\nRSET\r\nNOOP\r\nMAIL FROM:<c@d.example>\r\n";
    assert_string_equal(feed(f, in), "250 2.0.0 12 octets received\r\n");
    assert_int_equal(sess_action(f->s), SESS_SPOOL);
    message(f);
    assert_int_equal(f->body.len, 18);
    assert_memory_equal(f->body.data, ".\r\nQUIT\r\nX\r\nRSET\r\n", 18);
    assert_false(sess_msg(f->s)->eightbit);
    sess_spool_done(f->s, 0, "Q1");
    sess_input(f->s, NULL, 0);
    assert_string_equal(take(f), "250 2.0.0 Message received ok. id=Q1\r\n"
                                 "250 2.0.0 OK\r\n"
                                 "250 2.1.0 <c@d.example>... Sender ok.\r\n");
    assert_non_null(strstr(f->lines.data, "Message accepted: queue id Q1, 18 octets, 1 "
                                          "recipient(s), BDAT 2 chunk(s)\n"));
    destroy(f);
}

static void test_session_bdat_byte_by_byte(void **st)
{
    (void)st;
    struct fixture *f = make("4096");
    envelope(f);
    const char *in = "BDAT 4\r\nab\r\nbdat 4 last\r\ncd\r\nNOOP\r\n";
    char replies[512] = "";
    for (size_t i = 0; in[i]; i++)
        strcat(replies, feedn(f, in + i, 1));
    assert_string_equal(replies, "250 2.0.0 4 octets received\r\n");
    message(f);
    assert_int_equal(f->body.len, 8);
    assert_memory_equal(f->body.data, "ab\r\ncd\r\n", 8);
    destroy(f);
}

static void test_session_bdat_zero_last(void **st)
{
    (void)st;
    struct fixture *f = make("4096");
    envelope(f);
    assert_string_equal(feed(f, "BDAT 0 LAST\r\n"), "");
    assert_int_equal(sess_action(f->s), SESS_SPOOL);
    message(f);
    assert_int_equal(f->body.len, 0);
    sess_spool_done(f->s, 0, "Q0");
    assert_string_equal(take(f), "250 2.0.0 Message received ok. id=Q0\r\n");
    assert_false(sess_in_transaction(f->s));
    /* and after a chunk: BDAT 0 LAST ends the message */
    assert_non_null(strstr(feed(f, "MAIL FROM:<>\r\nRCPT TO:<u@example.test>\r\n"), "250 2.1.5"));
    assert_string_equal(feed(f, "BDAT 3\r\nabcBDAT 0 LAST\r\n"), "250 2.0.0 3 octets received\r\n");
    assert_int_equal(sess_action(f->s), SESS_SPOOL);
    destroy(f);
}

static void test_session_bdat_large_chunk_streamed_bounded(void **st)
{
    (void)st;
    struct fixture *f = make("1M");
    envelope(f);
    size_t n = 300 * 1000;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (i % 100 == 98) ? '\r' : (i % 100 == 99) ? '\n' : (char)('a' + i % 26);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "BDAT %zu LAST\r\n", n);
    assert_string_equal(feed(f, cmd), "");
    /* the whole chunk in one read: the session offers bounded chunks */
    assert_string_equal(feedn(f, big, n), "");
    assert_true(f->nchunks >= n / SESS_CHUNK_MAX);
    assert_int_equal(sess_action(f->s), SESS_SPOOL);
    assert_true(sess_msg(f->s)->tail_len <= SESS_CHUNK_MAX);
    message(f);
    assert_int_equal(f->body.len, n);
    assert_memory_equal(f->body.data, big, n);
    free(big);
    destroy(f);
}

static void test_session_bdat_oversize_discarded_in_sync(void **st)
{
    (void)st;
    struct fixture *f = make("4096");
    envelope(f);
    assert_string_equal(feed(f, "BDAT 4000\r\n"), "");
    char *chunk = calloc(1, 5001);
    memset(chunk, 'x', 5000);
    assert_string_equal(feedn(f, chunk, 4000), "250 2.0.0 4000 octets received\r\n");
    /* 4000 + 200 > 4096: 552, the 200 octets (holding "NOOP") skipped by count */
    memcpy(chunk, "NOOP\r\n", 6);
    assert_string_equal(feed(f, "BDAT 200\r\n"), "");
    assert_false(sess_receiving(f->s)); /* the journal may drop the message now */
    assert_string_equal(feedn(f, chunk, 200),
                        "552 5.3.4 BDAT chunk exceeds fixed maximum message size\r\n");
    assert_non_null(strstr(f->lines.data, "BDAT chunk of 200 octets refused: the message (4000 "
                                          "octets so far) would be over max_message_size 4096\n"));
    /* later chunks too, and LAST ends the transaction as refused */
    assert_string_equal(feed(f, "BDAT 3 LAST\r\nabcNOOP\r\n"),
                        "552 5.3.4 BDAT chunk exceeds fixed maximum message size\r\n"
                        "250 2.0.0 OK\r\n");
    assert_false(sess_in_transaction(f->s));
    assert_non_null(strstr(f->lines.data, "result=refused reason=\"over max_message_size 4096 "
                                          "(BDAT, 4203 octets announced)\"\n"));
    assert_int_equal(f->body.len, 0); /* nothing was offered to the journal */
    /* a huge count is discarded by count too, LAST refused at once for 0 left */
    assert_non_null(strstr(feed(f, "MAIL FROM:<>\r\nRCPT TO:<u@example.test>\r\n"), "250 2.1.5"));
    assert_string_equal(feed(f, "BDAT 9999999999 LAST\r\n"), "");
    assert_int_equal(sess_phase(f->s), SESS_PHASE_DATA);
    assert_string_equal(feedn(f, chunk, 5000), "");
    assert_int_equal(sess_action(f->s), SESS_RUN);
    free(chunk);
    destroy(f);
}

static void test_session_bdat_mixed_with_data_503(void **st)
{
    (void)st;
    struct fixture *f = make("4096");
    envelope(f);
    assert_string_equal(feed(f, "BDAT 3\r\nabcDATA\r\nMAIL FROM:<x@y.example>\r\n"
                                "RCPT TO:<v@example.test>\r\n"),
                        "250 2.0.0 3 octets received\r\n"
                        "503 5.5.1 Bad sequence of commands: DATA after BDAT\r\n"
                        "503 5.5.1 Bad sequence of commands: MAIL after BDAT\r\n"
                        "503 5.5.1 Bad sequence of commands: RCPT after BDAT\r\n");
    /* the transaction goes on */
    assert_string_equal(feed(f, "BDAT 2 LAST\r\nde"), "");
    message(f);
    assert_int_equal(f->body.len, 5);
    assert_memory_equal(f->body.data, "abcde", 5);
    destroy(f);
}

static void test_session_bdat_out_of_sequence_discarded(void **st)
{
    (void)st;
    struct fixture *f = make("4096");
    take(f);
    /* before EHLO: 503 and the 6 octets ("QUIT\r\n") are skipped */
    assert_string_equal(feed(f, "BDAT 6\r\nQUIT\r\nNOOP\r\n"),
                        "503 5.5.1 Bad sequence of commands: send HELO/EHLO first\r\n"
                        "250 2.0.0 OK\r\n");
    feed(f, "EHLO client.example\r\n");
    assert_string_equal(feed(f, "BDAT 6 LAST\r\nRSET\r\nNOOP\r\n"),
                        "503 5.5.1 Bad sequence of commands: need MAIL before BDAT\r\n"
                        "250 2.0.0 OK\r\n");
    feed(f, "MAIL FROM:<a@b.example>\r\n");
    assert_string_equal(feed(f, "BDAT 1\r\nxBDAT 0 LAST\r\n"),
                        "503 5.5.1 Bad sequence of commands: need RCPT before BDAT\r\n"
                        "503 5.5.1 Bad sequence of commands: need RCPT before BDAT\r\n");
    assert_true(sess_in_transaction(f->s)); /* MAIL still stands */
    assert_non_null(strstr(feed(f, "RCPT TO:<nobody@remote.example>\r\n"), "550 5.7.1"));
    assert_string_equal(feed(f, "BDAT 1 LAST\r\nx"), "554 5.5.1 No valid recipients\r\n");
    assert_int_equal(sess_action(f->s), SESS_RUN);
    destroy(f);
}

static void test_session_bdat_bare_lf_refused_says_bdat(void **st)
{
    (void)st;
    struct fixture *f = make("4096");
    envelope(f);
    assert_string_equal(feed(f, "BDAT 9\r\nab\nQUIT\r\n"), "250 2.0.0 9 octets received\r\n");
    assert_string_equal(feed(f, "BDAT 2 LAST\r\n\r\n"),
                        "550 5.5.2 Message refused: bare CR or LF in BDAT data is not allowed\r\n");
    assert_false(sess_in_transaction(f->s));
    assert_non_null(strstr(f->lines.data,
                           "Message refused (11 octets): bare LF at BDAT data offset "
                           "2, an SMTP command follows it (smuggling attempt)\n"));
    assert_int_equal(f->body.len, 0);
    /* a NUL, and a long line */
    feed(f, "MAIL FROM:<>\r\nRCPT TO:<u@example.test>\r\n");
    assert_string_equal(
        feedn(f, "BDAT 4 LAST\r\na\0\r\n", 17),
        "550 5.6.0 Message refused: NUL characters in BDAT data are not allowed\r\n");
    feed(f, "MAIL FROM:<>\r\nRCPT TO:<u@example.test>\r\n");
    char line[1200];
    memset(line, 'l', sizeof line);
    memcpy(line + 1198, "\r\n", 2);
    feed(f, "BDAT 1200 LAST\r\n");
    assert_string_equal(feedn(f, line, sizeof line),
                        "550 5.5.6 Message refused: a line in BDAT data is longer than 998 "
                        "characters\r\n");
    /* content may end without CRLF, but not in a bare CR */
    feed(f, "MAIL FROM:<>\r\nRCPT TO:<u@example.test>\r\n");
    assert_string_equal(feed(f, "BDAT 3 LAST\r\nab\r"),
                        "550 5.5.2 Message refused: bare CR or LF in BDAT data is not allowed\r\n");
    feed(f, "MAIL FROM:<>\r\nRCPT TO:<u@example.test>\r\n");
    assert_string_equal(feed(f, "BDAT 2\r\nab"), "250 2.0.0 2 octets received\r\n");
    assert_string_equal(feed(f, "BDAT 0 LAST\r\n"), "");
    assert_int_equal(sess_action(f->s), SESS_SPOOL);
    destroy(f);
}

static void test_session_bdat_bad_count_closes(void **st)
{
    (void)st;
    static const char *const bad[] = {"BDAT\r\n", "BDAT x\r\n", "BDAT 5 FIRST\r\n",
                                      "BDAT 123456789012345678901 LAST\r\n", "BDAT -1\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fixture *f = make("4096");
        envelope(f);
        assert_string_equal(feed(f, bad[i]), "501 5.5.4 Syntax: BDAT count [LAST]\r\n");
        assert_int_equal(sess_action(f->s), SESS_CLOSE);
        assert_non_null(strstr(f->lines.data, "cannot be told from commands, closing\n"));
        sess_log_close(f->s);
        assert_non_null(strstr(f->lines.data, "CloseClient Started. (protocol error)\n"));
        destroy(f);
    }
    /* a BDAT line ended by a bare LF: its chunk cannot be found either */
    struct fixture *f = make("4096");
    envelope(f);
    assert_string_equal(feed(f, "BDAT 6\nQUIT\r\n"),
                        "500 5.5.2 Bare LF in command line, use CRLF\r\n");
    assert_int_equal(sess_action(f->s), SESS_CLOSE);
    destroy(f);
    /* a BDAT line too long to be read (padded past 512 octets), whole or
     * still arriving: its chunk ("QUIT") is never run as a command */
    for (int whole = 0; whole < 2; whole++) {
        char line[700];
        int n = snprintf(line, sizeof line, "BDAT 6 %0600d%s", 0, whole ? "\r\nQUIT\r\n" : "");
        assert_true(n > 0 && (size_t)n < sizeof line);
        f = make("4096");
        envelope(f);
        const char *r = feed(f, line);
        assert_non_null(strstr(r, "500 5.5.6 Line too long"));
        assert_null(strstr(r, "221"));
        assert_int_equal(sess_action(f->s), SESS_CLOSE);
        assert_non_null(strstr(f->lines.data, "BDAT refused: command line too long"));
        destroy(f);
    }
}

static void test_session_bdat_rset_aborts(void **st)
{
    (void)st;
    struct fixture *f = make("4096");
    envelope(f);
    assert_string_equal(feed(f, "BDAT 2\r\nhiRSET\r\n"),
                        "250 2.0.0 2 octets received\r\n250 2.0.0 Reset state\r\n");
    assert_false(sess_in_transaction(f->s));
    assert_false(sess_receiving(f->s));
    assert_int_equal(sess_phase(f->s), SESS_PHASE_COMMAND);
    assert_non_null(strstr(f->lines.data, "result=aborted reason=\"RSET\"\n"));
    /* a new transaction starts from scratch: its chunk count too */
    feed(f, "MAIL FROM:<>\r\nRCPT TO:<u@example.test>\r\n");
    assert_string_equal(feed(f, "BDAT 1 LAST\r\nz"), "");
    sess_spool_done(f->s, 0, "Q2");
    take(f);
    assert_non_null(strstr(f->lines.data, "1 recipient(s), BDAT 1 chunk(s)\n"));
    destroy(f);
}

static void test_session_bdat_quit_aborts(void **st)
{
    (void)st;
    struct fixture *f = make("4096");
    envelope(f);
    assert_string_equal(feed(f, "BDAT 2\r\nhiQUIT\r\n"),
                        "250 2.0.0 2 octets received\r\n221 2.0.0 mx.test closing connection.\r\n");
    assert_int_equal(sess_action(f->s), SESS_CLOSE);
    assert_false(sess_receiving(f->s));
    assert_non_null(strstr(f->lines.data, "size=2 result=aborted reason=\"QUIT\"\n"));
    destroy(f);
}

static void test_session_bdat_eof_mid_chunk_aborts(void **st)
{
    (void)st;
    struct fixture *f = make("4096");
    envelope(f);
    assert_string_equal(feed(f, "BDAT 10 LAST\r\nabc"), "");
    assert_int_equal(sess_phase(f->s), SESS_PHASE_DATA);
    sess_eof(f->s);
    assert_int_equal(sess_action(f->s), SESS_CLOSE);
    assert_non_null(strstr(f->lines.data, "end of input inside BDAT (1 chunk(s), 10 octets "
                                          "announced, 7 missing): message not accepted\n"));
    assert_non_null(strstr(f->lines.data, "result=aborted reason=\"client gone\"\n"));
    destroy(f);
}

static void test_session_bdat_zero_chunks_are_junk(void **st)
{
    (void)st;
    struct fixture *f = make("4096");
    envelope(f);
    struct sb all = {0};
    for (int i = 0; i < 200 && sess_action(f->s) == SESS_RUN; i++) {
        const char *r = feed(f, "BDAT 0\r\n");
        sb_append(&all, r, strlen(r));
    }
    sb_append(&all, "", 1);
    assert_int_equal(sess_action(f->s), SESS_CLOSE);
    assert_non_null(strstr(all.data, "250 2.0.0 0 octets received\r\n"));
    assert_non_null(strstr(all.data, "421 4.7.0 mx.test Error: too many NOOP"));
    sb_free(&all);
    destroy(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_bdat_pipelined_with_commands),
        cmocka_unit_test(test_session_bdat_byte_by_byte),
        cmocka_unit_test(test_session_bdat_zero_last),
        cmocka_unit_test(test_session_bdat_large_chunk_streamed_bounded),
        cmocka_unit_test(test_session_bdat_oversize_discarded_in_sync),
        cmocka_unit_test(test_session_bdat_mixed_with_data_503),
        cmocka_unit_test(test_session_bdat_out_of_sequence_discarded),
        cmocka_unit_test(test_session_bdat_bare_lf_refused_says_bdat),
        cmocka_unit_test(test_session_bdat_bad_count_closes),
        cmocka_unit_test(test_session_bdat_rset_aborts),
        cmocka_unit_test(test_session_bdat_quit_aborts),
        cmocka_unit_test(test_session_bdat_eof_mid_chunk_aborts),
        cmocka_unit_test(test_session_bdat_zero_chunks_are_junk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
