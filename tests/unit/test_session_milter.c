/* test_session_milter.c - the session's side of the milters' per-command
 * verdicts (core/session_milter.c), driven over bytes with a fake I/O
 * layer: which commands wait (action SESS_MILTER), what the milters are
 * told, a refusal at RCPT, MAIL, DATA, the first BDAT and connect/HELO,
 * pipelined commands (and BDAT chunk octets) held until the verdict, a
 * timeout waiting for the verdict. */
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
    char out[8192];
};

/* make - a session from 127.0.0.1 with one milter configured (never
 * connected: the test answers for it). */
static struct fixture *make(void)
{
    static const char conf[] = "hostname = mx.test\nworkdir = /tmp\nlisten = 127.0.0.1:2525\n"
                               "local_domains = example.test\ntrusted_networks = 127.0.0.0/8\n"
                               "milters = m=inet:127.0.0.1:1\n";
    struct fixture *f = calloc(1, sizeof(*f));
    f->snap = tsess_snap(conf, NULL);
    f->env.arg = f;
    f->s = tsess_start(&f->env, f->snap, "127.0.0.1", 0x1234);
    return f;
}

/* destroy - free the fixture. */
static void destroy(struct fixture *f)
{
    sess_free(f->s);
    snap_unref(f->snap);
    free(f);
}

/* take - everything the session wants to send, as a C string. */
static const char *take(struct fixture *f)
{
    return tsess_take(f->s, f->out, sizeof(f->out));
}

/* feed - bytes in, the replies out. */
static const char *feed(struct fixture *f, const char *text)
{
    sess_input(f->s, text, strlen(text));
    return take(f);
}

/* answer - the milters' verdict, then the held input resumed. */
static const char *answer(struct fixture *f, enum sess_mverdict v, const char *text, bool wide)
{
    assert_int_equal(sess_action(f->s), SESS_MILTER);
    sess_milter_done(f->s, v, text, wide, "milter m: test");
    sess_input(f->s, NULL, 0);
    return take(f);
}

/* ehlo - EHLO through a continuing milter. */
static void ehlo(struct fixture *f)
{
    take(f);
    assert_string_equal(feed(f, "EHLO client.example\r\n"), "");
    struct sess_msg m;
    assert_int_equal(sess_milter_cmd(f->s, &m), SESS_MS_HELO);
    assert_string_equal(m.helo, "client.example");
    assert_string_equal(m.client_ip, "127.0.0.1");
    assert_non_null(strstr(answer(f, SESS_MV_CONTINUE, NULL, false), "250 ENHANCEDSTATUSCODES"));
}

/* test_session_milter_commands_wait - HELO, MAIL and RCPT wait for the
 * milters (nothing answered before), with the sender and the recipient
 * they are about; NOOP does not. */
static void test_session_milter_commands_wait(void **state)
{
    (void)state;
    struct fixture *f = make();
    ehlo(f);
    assert_string_equal(feed(f, "MAIL FROM:<a@example.org>\r\n"), "");
    struct sess_msg m;
    assert_int_equal(sess_milter_cmd(f->s, &m), SESS_MS_MAIL);
    assert_string_equal(m.sender, "a@example.org");
    assert_non_null(strstr(answer(f, SESS_MV_CONTINUE, NULL, false), "250 2.1.0"));
    assert_string_equal(feed(f, "RCPT TO:<u@example.test>\r\n"), "");
    assert_int_equal(sess_milter_cmd(f->s, &m), SESS_MS_RCPT);
    assert_string_equal(m.sender, "a@example.org");
    assert_int_equal(m.nrcpt, 1);
    assert_string_equal(m.rcpts, "u@example.test");
    assert_non_null(strstr(answer(f, SESS_MV_CONTINUE, NULL, false), "250 2.1.5"));
    assert_non_null(strstr(feed(f, "NOOP\r\n"), "250 "));
    destroy(f);
}

/* rcpts - EHLO, MAIL and two recipients through a continuing milter. */
static void rcpts(struct fixture *f)
{
    ehlo(f);
    feed(f, "MAIL FROM:<a@example.org>\r\n");
    answer(f, SESS_MV_CONTINUE, NULL, false);
    feed(f, "RCPT TO:<u@example.test>\r\n");
    answer(f, SESS_MV_CONTINUE, NULL, false);
    feed(f, "RCPT TO:<v@example.test>\r\n");
    answer(f, SESS_MV_CONTINUE, NULL, false);
}

/* test_session_milter_data_waits - DATA waits for the milters' DATA
 * stage (no 354 before), told the sender and every recipient; continue
 * gives the 354 and the message goes on to the spool. */
static void test_session_milter_data_waits(void **state)
{
    (void)state;
    struct fixture *f = make();
    rcpts(f);
    assert_string_equal(feed(f, "DATA\r\n"), "");
    struct sess_msg m;
    assert_int_equal(sess_milter_cmd(f->s, &m), SESS_MS_DATA);
    assert_string_equal(m.sender, "a@example.org");
    assert_int_equal(m.nrcpt, 2);
    assert_string_equal(m.rcpts, "u@example.test");
    assert_string_equal(m.rcpts + strlen(m.rcpts) + 1, "v@example.test");
    assert_non_null(strstr(answer(f, SESS_MV_CONTINUE, NULL, false), "354 "));
    feed(f, "Subject: x\r\n\r\nhi\r\n.\r\n");
    assert_int_equal(sess_action(f->s), SESS_SPOOL);
    destroy(f);
}

/* test_session_milter_data_reject - a reject at DATA answers DATA with
 * the milter's text, no 354; the transaction is over (a RCPT is out of
 * sequence), a new MAIL is asked again. */
static void test_session_milter_data_reject(void **state)
{
    (void)state;
    struct fixture *f = make();
    rcpts(f);
    feed(f, "DATA\r\n");
    assert_string_equal(answer(f, SESS_MV_REJECT, "550 5.7.1 Not here", false),
                        "550 5.7.1 Not here\r\n");
    assert_false(sess_in_transaction(f->s));
    assert_non_null(strstr(feed(f, "RCPT TO:<u@example.test>\r\n"), "503 "));
    assert_string_equal(feed(f, "MAIL FROM:<a@example.org>\r\n"), "");
    assert_int_equal(sess_action(f->s), SESS_MILTER);
    destroy(f);
}

/* test_session_milter_data_tempfail - tempfail at DATA without a text:
 * reply.c's 451, no 354, the transaction over. */
static void test_session_milter_data_tempfail(void **state)
{
    (void)state;
    struct fixture *f = make();
    rcpts(f);
    feed(f, "DATA\r\n");
    assert_string_equal(answer(f, SESS_MV_TEMPFAIL, NULL, false),
                        "451 4.7.1 Service unavailable - try again later\r\n");
    assert_false(sess_in_transaction(f->s));
    destroy(f);
}

/* test_session_milter_bdat_first_waits - the first BDAT waits with its
 * chunk octets held (they look like commands: they must not run); after
 * continue they are the message; later chunks do not wait. */
static void test_session_milter_bdat_first_waits(void **state)
{
    (void)state;
    struct fixture *f = make();
    rcpts(f);
    assert_string_equal(feed(f, "BDAT 6\r\nQUIT\r\nBDAT 2 LAST\r\nab"), "");
    struct sess_msg m;
    assert_int_equal(sess_milter_cmd(f->s, &m), SESS_MS_DATA);
    assert_int_equal(m.nrcpt, 2);
    assert_string_equal(answer(f, SESS_MV_CONTINUE, NULL, false),
                        "250 2.0.0 6 octets received\r\n");
    assert_int_equal(sess_action(f->s), SESS_SPOOL);
    const struct sess_msg *mm = sess_msg(f->s);
    assert_int_equal(mm->body_len, 8);
    assert_memory_equal(mm->tail, "QUIT\r\nab", 8);
    destroy(f);
}

/* test_session_milter_bdat_reject_skips - a reject at the first BDAT:
 * its chunk is skipped by count (a QUIT in it never runs), then answered
 * with the milter's text; the pipelined next chunk is outside any
 * transaction now (503, skipped too); the session goes on. */
static void test_session_milter_bdat_reject_skips(void **state)
{
    (void)state;
    struct fixture *f = make();
    rcpts(f);
    feed(f, "BDAT 6\r\nQUIT\r\nBDAT 4 LAST\r\nRSET");
    const char *r = answer(f, SESS_MV_REJECT, "554 5.7.1 Spam", false);
    assert_string_equal(r, "554 5.7.1 Spam\r\n"
                           "503 5.5.1 Bad sequence of commands: need MAIL before BDAT\r\n");
    assert_int_equal(sess_action(f->s), SESS_RUN);
    assert_false(sess_in_transaction(f->s));
    assert_non_null(strstr(feed(f, "NOOP\r\n"), "250 "));
    destroy(f);
}

/* test_session_milter_bdat_zero_tempfail - "BDAT 0 LAST" refused by a
 * tempfail without text: answered at once with reply.c's 451. */
static void test_session_milter_bdat_zero_tempfail(void **state)
{
    (void)state;
    struct fixture *f = make();
    rcpts(f);
    assert_string_equal(feed(f, "BDAT 0 LAST\r\n"), "");
    assert_string_equal(answer(f, SESS_MV_TEMPFAIL, NULL, false),
                        "451 4.7.1 Service unavailable - try again later\r\n");
    assert_false(sess_in_transaction(f->s));
    destroy(f);
}

/* test_session_milter_rcpt_reject_one - a reject at RCPT answers that RCPT
 * with the milter's text; the next recipient goes on; DATA proceeds. */
static void test_session_milter_rcpt_reject_one(void **state)
{
    (void)state;
    struct fixture *f = make();
    ehlo(f);
    feed(f, "MAIL FROM:<a@example.org>\r\n");
    answer(f, SESS_MV_CONTINUE, NULL, false);
    feed(f, "RCPT TO:<bad@example.test>\r\n");
    assert_string_equal(answer(f, SESS_MV_REJECT, "550 5.7.1 No thanks", false),
                        "550 5.7.1 No thanks\r\n");
    feed(f, "RCPT TO:<u@example.test>\r\n");
    assert_non_null(strstr(answer(f, SESS_MV_CONTINUE, NULL, false), "250 2.1.5"));
    assert_string_equal(feed(f, "DATA\r\n"), "");
    assert_non_null(strstr(answer(f, SESS_MV_CONTINUE, NULL, false), "354 "));
    destroy(f);
}

/* test_session_milter_rcpt_reject_only - every recipient refused by the
 * milter: DATA gets 554 no valid recipients; the default texts of
 * reply.c stand in when the milter gave none. */
static void test_session_milter_rcpt_reject_only(void **state)
{
    (void)state;
    struct fixture *f = make();
    ehlo(f);
    feed(f, "MAIL FROM:<a@example.org>\r\n");
    answer(f, SESS_MV_CONTINUE, NULL, false);
    feed(f, "RCPT TO:<bad@example.test>\r\n");
    assert_string_equal(answer(f, SESS_MV_TEMPFAIL, NULL, false),
                        "451 4.7.1 Service unavailable - try again later\r\n");
    assert_non_null(strstr(feed(f, "DATA\r\n"), "554 5.5.1"));
    destroy(f);
}

/* test_session_milter_mail_tempfail - tempfail at MAIL: no transaction,
 * so RCPT is out of sequence; a second MAIL is asked again. */
static void test_session_milter_mail_tempfail(void **state)
{
    (void)state;
    struct fixture *f = make();
    ehlo(f);
    feed(f, "MAIL FROM:<a@example.org>\r\n");
    assert_string_equal(answer(f, SESS_MV_TEMPFAIL, "451 4.3.0 Later", false),
                        "451 4.3.0 Later\r\n");
    assert_false(sess_in_transaction(f->s));
    assert_non_null(strstr(feed(f, "RCPT TO:<u@example.test>\r\n"), "503 "));
    assert_string_equal(feed(f, "MAIL FROM:<a@example.org>\r\n"), "");
    assert_non_null(strstr(answer(f, SESS_MV_CONTINUE, NULL, false), "250 2.1.0"));
    destroy(f);
}

/* test_session_milter_connect_reject_denies - a session-wide verdict at
 * the first EHLO: its text answers EHLO, every later command but QUIT
 * gets 503 5.7.0 and the milters are not asked again. */
static void test_session_milter_connect_reject_denies(void **state)
{
    (void)state;
    struct fixture *f = make();
    take(f);
    feed(f, "EHLO client.example\r\n");
    assert_string_equal(answer(f, SESS_MV_REJECT, "554 5.7.1 Go away", true),
                        "554 5.7.1 Go away\r\n");
    assert_string_equal(feed(f, "MAIL FROM:<a@example.org>\r\n"),
                        "503 5.7.0 Error: access denied for [127.0.0.1]\r\n");
    assert_int_equal(sess_action(f->s), SESS_RUN);
    assert_non_null(strstr(feed(f, "EHLO again.example\r\n"), "503 5.7.0"));
    assert_non_null(strstr(feed(f, "QUIT\r\n"), "221 "));
    destroy(f);
}

/* test_session_milter_denied_bdat_skips_chunk - a BDAT in a session the
 * milters denied gets 503 5.7.0 after its chunk was skipped by count: a
 * QUIT inside the chunk never runs. */
static void test_session_milter_denied_bdat_skips_chunk(void **state)
{
    (void)state;
    struct fixture *f = make();
    take(f);
    feed(f, "EHLO client.example\r\n");
    answer(f, SESS_MV_REJECT, "554 5.7.1 Go away", true);
    assert_string_equal(feed(f, "BDAT 6\r\nQUIT\r\nNOOP\r\n"),
                        "503 5.7.0 Error: access denied for [127.0.0.1]\r\n"
                        "503 5.7.0 Error: access denied for [127.0.0.1]\r\n");
    assert_int_equal(sess_action(f->s), SESS_RUN);
    destroy(f);
}

/* test_session_milter_pipelined_held - commands pipelined behind a RCPT
 * that waits are held, then run in order after the verdict. */
static void test_session_milter_pipelined_held(void **state)
{
    (void)state;
    struct fixture *f = make();
    ehlo(f);
    assert_string_equal(feed(f, "MAIL FROM:<a@example.org>\r\nRCPT TO:<u@example.test>\r\n"
                                "NOOP\r\n"),
                        "");
    const char *r = answer(f, SESS_MV_CONTINUE, NULL, false);
    assert_non_null(strstr(r, "250 2.1.0"));
    r = answer(f, SESS_MV_REJECT, NULL, false); /* the RCPT, then the NOOP */
    assert_string_equal(r, "550 5.7.1 Command rejected\r\n250 2.0.0 OK\r\n");
    destroy(f);
}

/* test_session_milter_timeout_waits - the idle timeout while a command
 * waits for the milters closes only after their verdict was answered. */
static void test_session_milter_timeout_waits(void **state)
{
    (void)state;
    struct fixture *f = make();
    ehlo(f);
    feed(f, "MAIL FROM:<a@example.org>\r\n");
    sess_timeout(f->s);
    assert_int_equal(sess_action(f->s), SESS_MILTER);
    sess_milter_done(f->s, SESS_MV_CONTINUE, NULL, false, NULL);
    const char *r = take(f);
    assert_non_null(strstr(r, "250 2.1.0"));
    assert_non_null(strstr(r, "421 4.4.2"));
    assert_int_equal(sess_action(f->s), SESS_CLOSE);
    destroy(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_milter_commands_wait),
        cmocka_unit_test(test_session_milter_data_waits),
        cmocka_unit_test(test_session_milter_data_reject),
        cmocka_unit_test(test_session_milter_data_tempfail),
        cmocka_unit_test(test_session_milter_bdat_first_waits),
        cmocka_unit_test(test_session_milter_bdat_reject_skips),
        cmocka_unit_test(test_session_milter_bdat_zero_tempfail),
        cmocka_unit_test(test_session_milter_rcpt_reject_one),
        cmocka_unit_test(test_session_milter_rcpt_reject_only),
        cmocka_unit_test(test_session_milter_mail_tempfail),
        cmocka_unit_test(test_session_milter_connect_reject_denies),
        cmocka_unit_test(test_session_milter_denied_bdat_skips_chunk),
        cmocka_unit_test(test_session_milter_pipelined_held),
        cmocka_unit_test(test_session_milter_timeout_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
