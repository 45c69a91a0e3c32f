/* test_qstate.c - unit tests of core/qstate: the envelope parser against
 * what core/spool.c really writes, a prefix asks for more, malformed files
 * name their line; the state file round trip (escapes included), malformed
 * state files, and the small queries. Single-threaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "qstate.h"
#include "session.h"
#include "spool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char err[256];

/* spool_file - a queue file exactly as the receiver writes it. */
static void spool_file(struct sb *out, const char *body, bool eightbit)
{
    static const char rcpts[] = "u@example.test\0v@example.test";
    struct sess_msg m = {.helo = "client.example",
                         .client_ip = "127.0.0.1",
                         .client_port = 60262,
                         .proto = "ESMTP",
                         .sender = "a@b.example",
                         .rcpts = rcpts,
                         .nrcpt = 2,
                         .tail = body,
                         .tail_len = strlen(body),
                         .body_len = strlen(body),
                         .eightbit = eightbit};
    struct timespec now = {1795995400, 123000};
    assert_true(spool_format_header(out, &m, "6B0CB708006960100000", "mx.test", &now));
    assert_true(sb_appends(out, body));
}

static void test_qstate_envelope_of_spool_file(void **state)
{
    (void)state;
    struct sb f = {0};
    spool_file(&f, "Subject: hi\r\n\r\nbody\r\n", true);
    struct qfile_env e;
    assert_int_equal(qfile_parse_envelope(f.data, f.len, &e, err, sizeof err), QFILE_OK);
    assert_string_equal(e.id, "6B0CB708006960100000");
    assert_int_equal(e.arrival, 1795995400);
    assert_string_equal(e.client, "127.0.0.1 60262");
    assert_string_equal(e.helo, "client.example");
    assert_string_equal(e.protocol, "ESMTP");
    assert_true(e.body8);
    assert_false(e.smtputf8);
    assert_string_equal(e.sender, "a@b.example");
    assert_int_equal(e.nrcpt, 2);
    assert_string_equal(e.rcpts[1], "v@example.test");
    assert_null(e.quarantine);
    assert_true(qfile_complete(&e, f.len));
    assert_false(qfile_complete(&e, f.len - 1));
    assert_int_equal(e.size, f.len - e.msg_off);
    assert_memory_equal(f.data + e.msg_off, "Received: from client.example", 29);
    /* every prefix short of the empty line asks for more */
    for (size_t n = 0; n < e.msg_off - 1; n++) {
        struct qfile_env p;
        assert_int_equal(qfile_parse_envelope(f.data, n, &p, err, sizeof err), QFILE_MORE);
    }
    qfile_env_free(&e);
    qfile_env_free(&e); /* twice is fine */
    sb_free(&f);
}

static void test_qstate_envelope_null_sender_and_format(void **state)
{
    (void)state;
    char *rcpts[] = {"a@b.example"};
    struct qfile_env e = {.id = "6B0CB708006960100001",
                          .arrival = 7,
                          .sender = "",
                          .rcpts = rcpts,
                          .nrcpt = 1,
                          .size = 5};
    struct sb out = {0};
    assert_true(qfile_format_envelope(&e, &out));
    assert_string_equal(out.data, "MXRING-QUEUE 1\nid 6B0CB708006960100001\narrival 7\n"
                                  "client 127.0.0.1 0\nhelo \nprotocol LOCAL\nbody 7BIT\n"
                                  "smtputf8 no\nsender \nrcpt a@b.example\nsize 5\n\n");
    sb_appends(&out, "hello");
    struct qfile_env p;
    assert_int_equal(qfile_parse_envelope(out.data, out.len, &p, err, sizeof err), QFILE_OK);
    assert_string_equal(p.sender, "");
    assert_string_equal(p.helo, "");
    assert_true(qfile_complete(&p, out.len));
    qfile_env_free(&p);
    char *bad[] = {"x@y\r\nrcpt z@w"};
    e.rcpts = bad;
    sb_reset(&out);
    assert_false(qfile_format_envelope(&e, &out));
    sb_free(&out);
}

/* env_err - parsing text fails (QFILE_BAD) with exactly want. */
static void env_err(const char *text, const char *want)
{
    struct qfile_env e;
    assert_int_equal(qfile_parse_envelope(text, strlen(text), &e, err, sizeof err), QFILE_BAD);
    assert_string_equal(err, want);
}

#define HEAD "MXRING-QUEUE 1\nid 6B0CB708006960100000\narrival 1\n"

static void test_qstate_envelope_malformed_names_line(void **state)
{
    (void)state;
    env_err("MXRING-QUEUE 3\nid x\n\n", "line 1: not a queue file (no \"MXRING-QUEUE 1\" line)");
    env_err(HEAD "notify FAILURE\n\n", "line 4: notify: not after a rcpt line");
    env_err(HEAD "rcpt x@y\nnotify NEVER,DELAY\n\n",
            "line 5: notify: repeated or not a NOTIFY list");
    env_err(HEAD "rcpt x@y\nnotify DELAY\nnotify DELAY\n\n",
            "line 6: notify: repeated or not a NOTIFY list");
    env_err(HEAD "rcpt x@y\norcpt a;b\norcpt a;c\n\n", "line 6: orcpt: repeated or not type;xtext");
    env_err(HEAD "rcpt x@y\norcpt a b;c\n\n", "line 5: orcpt: repeated or not type;xtext");
    env_err(HEAD "envid a b\n\n", "line 4: envid: not xtext of at most 100 octets");
    env_err(HEAD "ret NONE\n\n", "line 4: ret: not FULL or HDRS");
    env_err(HEAD "envid a\nenvid b\n\n", "line 5: envid: given twice (first on line 4)");
    env_err("From x\n", "line 1: not a queue file (no \"MXRING-QUEUE 1\" line)");
    env_err("MXRING-QUEUE 1\nid 6b0cb708006960100000\n\n",
            "line 2: id: not 20 upper-case hex digits");
    env_err(HEAD "arrival 2\n\n", "line 4: arrival: given twice (first on line 3)");
    env_err(HEAD "body 9BIT\n\n", "line 4: body: not 7BIT or 8BITMIME");
    env_err(HEAD "smtputf8 maybe\n\n", "line 4: smtputf8: not yes or no");
    env_err(HEAD "sender a@b\nrcpt \n\n", "line 5: rcpt: empty");
    env_err(HEAD "sender a@b\nrcpt x@y\nsize 1x\n\n", "line 6: size: not a number");
    env_err(HEAD "sender a@b\nsize 1\n\n", "line 5: no rcpt line in the envelope");
    env_err(HEAD "sender a\r\nrcpt x@y\nsize 1\n\n", "line 4: NUL or CR byte");
    env_err("MXRING-QUEUE 1\narrival 99999999999999999999\n\n", "line 2: arrival: not a Unix time");
    /* unknown keys are skipped (a newer writer) */
    const char *ok = HEAD "sender a@b\nfuture thing\nrcpt x@y\nsize 0\n\n";
    struct qfile_env e;
    assert_int_equal(qfile_parse_envelope(ok, strlen(ok), &e, err, sizeof err), QFILE_OK);
    qfile_env_free(&e);
    assert_true(qfile_id_valid("0123456789ABCDEF0123", 20));
    assert_false(qfile_id_valid("0123456789ABCDEF012", 19));
    assert_false(qfile_id_valid("0123456789ABCDEF012g", 20));
    assert_false(qfile_id_valid("../3456789ABCDEF0123", 20));
}

static void test_qstate_state_round_trip(void **state)
{
    (void)state;
    struct qstate_rcpt r[] = {
        {"a@x.test", QST_SENT, 1, 0, "250 2.0.0 ok"},
        {"\"odd \\\\ local\"@x.test", QST_PENDING, 3, 1795999999,
         "451 4.7.1 try\tlater \\ with\nbreak\x7f"},
        {"b@x.test", QST_BOUNCED, 2, 0, ""},
    };
    struct qstate st = {
        .arrival = 1795995400, .held = true, .bounce_sent = false, .rcpts = r, .nrcpt = 3};
    struct sb out = {0};
    assert_true(qstate_format(&st, &out));
    assert_string_equal(out.data,
                        "MXRING-STATE 1\narrival 1795995400\nheld yes\nbounce_sent no\n"
                        "rcpt a@x.test sent 1 0 250 2.0.0 ok\n"
                        "rcpt \"odd\\x20\\x5c\\x5c\\x20local\"@x.test pending 3 1795999999 "
                        "451 4.7.1 try\\x09later \\x5c with\\x0abreak\\x7f\n"
                        "rcpt b@x.test bounced 2 0 \n");
    struct qstate p;
    if (!qstate_parse(out.data, out.len, &p, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(p.arrival, st.arrival);
    assert_true(p.held);
    assert_false(p.bounce_sent);
    assert_int_equal(p.nrcpt, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(p.rcpts[i].addr, r[i].addr);
        assert_int_equal(p.rcpts[i].state, r[i].state);
        assert_int_equal(p.rcpts[i].attempts, r[i].attempts);
        assert_int_equal(p.rcpts[i].next, r[i].next);
        assert_string_equal(p.rcpts[i].last, r[i].last);
    }
    assert_false(qstate_done(&p));
    assert_int_equal(qstate_next_attempt(&p), 1795999999);
    p.rcpts[1].state = QST_SENT;
    assert_true(qstate_done(&p));
    assert_int_equal(qstate_next_attempt(&p), INT64_MAX);
    assert_false(p.delay_warned); /* a file without the line: not warned */
    p.delay_warned = true;
    struct sb again = {0};
    assert_true(qstate_format(&p, &again));
    assert_non_null(strstr(again.data, "bounce_sent no\ndelay_warned yes\nrcpt "));
    struct qstate q;
    if (!qstate_parse(again.data, again.len, &q, err, sizeof err))
        fail_msg("%s", err);
    assert_true(q.delay_warned);
    qstate_free(&q);
    sb_free(&again);
    char big[QSTATE_LAST_MAX + 100];
    memset(big, 'r', sizeof big);
    assert_true(qstate_set_last(&p.rcpts[0], big, sizeof big));
    assert_int_equal(strlen(p.rcpts[0].last), QSTATE_LAST_MAX);
    qstate_free(&p);
    sb_free(&out);
}

static void test_qstate_from_env_and_match(void **state)
{
    (void)state;
    char *rcpts[] = {"a@x", "b@x"};
    struct qfile_env e = {.arrival = 5, .rcpts = rcpts, .nrcpt = 2};
    struct qstate st;
    assert_true(qstate_from_env(&e, &st));
    assert_int_equal(st.nrcpt, 2);
    assert_int_equal(st.rcpts[1].state, QST_PENDING);
    assert_int_equal(st.rcpts[1].attempts, 0);
    assert_string_equal(st.rcpts[1].last, "");
    assert_int_equal(qstate_next_attempt(&st), 0);
    assert_true(qstate_matches_env(&st, &e));
    char *other[] = {"a@x", "c@x"};
    e.rcpts = other;
    assert_false(qstate_matches_env(&st, &e));
    e.nrcpt = 1;
    assert_false(qstate_matches_env(&st, &e));
    qstate_free(&st);
}

/* st_err - parsing text fails with exactly want. */
static void st_err(const char *text, const char *want)
{
    struct qstate st;
    assert_false(qstate_parse(text, strlen(text), &st, err, sizeof err));
    assert_string_equal(err, want);
    assert_int_equal(st.nrcpt, 0);
}

#define SHEAD "MXRING-STATE 1\narrival 1\n"

static void test_qstate_state_malformed_names_line(void **state)
{
    (void)state;
    st_err("MXRING-STATE 9\n", "line 1: not a state file (no \"MXRING-STATE 1\" line)");
    st_err(SHEAD "held yes", "line 1: truncated (no final line end)");
    st_err(SHEAD "held maybe\n", "line 3: held: not yes or no");
    st_err(SHEAD "held no\nheld no\n", "line 4: held: given twice");
    st_err(SHEAD "rcpt a@x sent 1\n", "line 3: rcpt: needs addr, state, attempts, next attempt");
    st_err(SHEAD "rcpt a@x done 1 0 x\n", "line 3: rcpt: state is not pending, sent or bounced");
    st_err(SHEAD "rcpt a@x sent -1 0 x\n", "line 3: rcpt: bad attempt count");
    st_err(SHEAD "rcpt a@x sent 1 soon x\n", "line 3: rcpt: bad next attempt time");
    st_err(SHEAD "rcpt a@x sent 1 0 bad \\q escape\n",
           "line 3: rcpt: bad escape in the address or reply");
    st_err(SHEAD "rcpt a@x sent 1 0 cut \\x4\n",
           "line 3: rcpt: bad escape in the address or reply");
    st_err(SHEAD "rcpt a@x sent 1 0 ok\nhop x\n", "line 4: unknown key \"hop\"");
    st_err("MXRING-STATE 1\nheld no\n", "line 1: no arrival line");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qstate_envelope_of_spool_file),
        cmocka_unit_test(test_qstate_envelope_null_sender_and_format),
        cmocka_unit_test(test_qstate_envelope_malformed_names_line),
        cmocka_unit_test(test_qstate_state_round_trip),
        cmocka_unit_test(test_qstate_from_env_and_match),
        cmocka_unit_test(test_qstate_state_malformed_names_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
