/* test_spool.c - queue file naming, the envelope/Received format and the
 * preparation of the queue folders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qstate.h"
#include "session.h"
#include "smtp_parse.h"
#include "spool.h"

static void test_spool_id_unique_and_hex(void **state)
{
    (void)state;
    struct timespec t = {.tv_sec = 1795995400, .tv_nsec = 123456789};
    char a[SPOOL_ID_LEN + 1], b[SPOOL_ID_LEN + 1], c[SPOOL_ID_LEN + 1];
    spool_make_id(a, &t, 1, 7);
    spool_make_id(b, &t, 1, 8);
    spool_make_id(c, &t, 2, 7);
    assert_int_equal(strlen(a), SPOOL_ID_LEN);
    assert_int_equal(strspn(a, "0123456789ABCDEF"), SPOOL_ID_LEN);
    assert_string_not_equal(a, b);
    assert_string_not_equal(a, c);
    assert_memory_equal(a, "6B0CB708", 8);  /* seconds */
    assert_memory_equal(a + 8, "1E240", 5); /* 123456 us */
    assert_memory_equal(a + 13, "01", 2);   /* worker */
    assert_memory_equal(a + 15, "00007", 5);
    assert_int_equal(spool_id_time_us(a), 1795995400LL * 1000000 + 123456);
    assert_int_equal(spool_id_time_us("6B0CB708XYZ"), -1);
    assert_int_equal(spool_id_time_us("6B0CB708FFFFF0100001"), -1); /* > 999999 us */
}

static void test_spool_format_header(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    const char rcpts[] = "u@example.test\0v@example.test";
    struct sess_msg m = {.helo = "client.example",
                         .client_ip = "192.0.2.1",
                         .client_port = 4321,
                         .proto = "ESMTP",
                         .sender = "a@b.example",
                         .rcpts = rcpts,
                         .nrcpt = 2,
                         .body_len = 18,
                         .eightbit = true};
    struct timespec t = {.tv_sec = 1795995400};
    struct sb out = {0};
    assert_true(spool_format_header(&out, &m, "QID", "mx.test", &t));
    const char *want_env = "MXRING-QUEUE 1\nid QID\narrival 1795995400\nclient 192.0.2.1 4321\n"
                           "helo client.example\nprotocol ESMTP\nbody 8BITMIME\nsmtputf8 no\n"
                           "sender a@b.example\nrcpt u@example.test\nrcpt v@example.test\n";
    assert_memory_equal(out.data, want_env, strlen(want_env));
    const char *rec = "Received: from client.example ([192.0.2.1])\r\n\tby mx.test (mxring) "
                      "with ESMTP id QID; Sun, 29 Nov 2026 23:36:40 +0000\r\n";
    char *blank = strstr(out.data, "\n\n");
    assert_non_null(blank);
    assert_string_equal(blank + 2, rec);
    char size_line[64];
    snprintf(size_line, sizeof(size_line), "size %zu\n\n", strlen(rec) + m.body_len);
    assert_non_null(strstr(out.data, size_line));
    sb_free(&out);
}

static void test_spool_single_rcpt_for_clause(void **state)
{
    (void)state;
    struct sess_msg m = {.helo = "",
                         .client_ip = "::1",
                         .proto = "SMTP",
                         .sender = "",
                         .rcpts = "u@example.test",
                         .nrcpt = 1,
                         .body_len = 0};
    struct timespec t = {.tv_sec = 0};
    struct sb out = {0};
    assert_true(spool_format_header(&out, &m, "Q", "h", &t));
    assert_non_null(strstr(out.data, "sender \n"));
    assert_non_null(strstr(out.data, "Received: from unknown ([::1])"));
    assert_non_null(strstr(out.data, "\r\n\tfor <u@example.test>; "));
    sb_free(&out);
}

/* test_spool_tls_auth_received - after STARTTLS and AUTH the protocol is
 * ESMTPSA (RFC 3848) in the envelope and the Received: header, whose
 * comment names the TLS version and cipher; the size line still counts
 * the whole header. */
static void test_spool_tls_auth_received(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    struct sess_msg m = {.helo = "client.example",
                         .client_ip = "192.0.2.1",
                         .client_port = 4321,
                         .proto = "ESMTPSA",
                         .tls_version = "TLSv1.3",
                         .tls_cipher = "TLS_AES_256_GCM_SHA384",
                         .auth_user = "jo",
                         .sender = "a@b.example",
                         .rcpts = "u@example.test",
                         .nrcpt = 1,
                         .body_len = 4};
    struct timespec t = {.tv_sec = 1795995400};
    struct sb out = {0};
    assert_true(spool_format_header(&out, &m, "QID", "mx.test", &t));
    assert_non_null(strstr(out.data, "\nprotocol ESMTPSA\nbody 7BIT\n"));
    const char *rec = "Received: from client.example ([192.0.2.1])\r\n"
                      "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n"
                      "\tby mx.test (mxring) with ESMTPSA id QID\r\n"
                      "\tfor <u@example.test>; Sun, 29 Nov 2026 23:36:40 +0000\r\n";
    char *blank = strstr(out.data, "\n\n");
    assert_non_null(blank);
    assert_string_equal(blank + 2, rec);
    char size_line[64];
    snprintf(size_line, sizeof(size_line), "\nsize %zu\n\n", strlen(rec) + m.body_len);
    assert_non_null(strstr(out.data, size_line));
    sb_free(&out);
}

static void test_spool_prepare_creates_and_cleans(void **state)
{
    (void)state;
    char dir[] = "/tmp/mxring-spool-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char err[256], path[512];
    assert_int_equal(spool_prepare(dir, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/queue/tmp/stale", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(spool_prepare(dir, err, sizeof(err)), 0);
    assert_int_not_equal(access(path, F_OK), 0); /* stale tmp file removed */
    snprintf(path, sizeof(path), "%s/queue/new", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(spool_prepare("/proc/no/such/place", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/proc/no/such/place"));
}

/* test_spool_dsn_envelope_roundtrip - the DSN parameters written by the
 * spool (version 2 magic) are what qstate parses back, per recipient. */
static void test_spool_dsn_envelope_roundtrip(void **state)
{
    (void)state;
    const char rcpts[] = "u@example.test\0v@example.test\0w@example.test";
    const unsigned char notify[] = {SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE, 0,
                                    SMTP_NOTIFY_NEVER};
    const char orcpts[] = "rfc822;U+40example.test\0\0";
    struct sess_msg m = {.helo = "c.example",
                         .client_ip = "192.0.2.1",
                         .proto = "ESMTP",
                         .sender = "a@b.example",
                         .rcpts = rcpts,
                         .nrcpt = 3,
                         .body_len = 0,
                         .dsn_ret = SMTP_RET_HDRS,
                         .envid = "QQ+2B1",
                         .notify = notify,
                         .orcpts = orcpts};
    struct timespec t = {.tv_sec = 1795995400};
    struct sb out = {0};
    assert_true(spool_format_header(&out, &m, "6B0CB708006960100000", "mx.test", &t));
    assert_non_null(strstr(out.data, "MXRING-QUEUE 2\n"));
    assert_non_null(strstr(out.data, "sender a@b.example\nret HDRS\nenvid QQ+2B1\n"
                                     "rcpt u@example.test\nnotify SUCCESS,FAILURE\n"
                                     "orcpt rfc822;U+40example.test\nrcpt v@example.test\n"
                                     "rcpt w@example.test\nnotify NEVER\nsize "));
    struct qfile_env env;
    char err[128];
    assert_int_equal(qfile_parse_envelope(out.data, out.len, &env, err, sizeof err), QFILE_OK);
    assert_int_equal(env.ret, SMTP_RET_HDRS);
    assert_string_equal(env.envid, "QQ+2B1");
    assert_int_equal(env.nrcpt, 3);
    assert_int_equal(env.notify[0], SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE);
    assert_int_equal(env.notify[1], 0);
    assert_int_equal(env.notify[2], SMTP_NOTIFY_NEVER);
    assert_string_equal(env.orcpts[0], "rfc822;U+40example.test");
    assert_null(env.orcpts[1]);
    assert_null(env.orcpts[2]);
    qfile_env_free(&env);
    /* without DSN parameters: the version 1 file of before, parsed with none */
    m.dsn_ret = 0, m.envid = "", m.notify = NULL, m.orcpts = NULL;
    sb_reset(&out);
    assert_true(spool_format_header(&out, &m, "6B0CB708006960100000", "mx.test", &t));
    assert_memory_equal(out.data, "MXRING-QUEUE 1\n", 15);
    assert_null(strstr(out.data, "notify") ? strstr(out.data, "\nnotify") : NULL);
    assert_int_equal(qfile_parse_envelope(out.data, out.len, &env, err, sizeof err), QFILE_OK);
    assert_int_equal(env.ret, 0);
    assert_null(env.envid);
    assert_int_equal(env.notify[0] | env.notify[1] | env.notify[2], 0);
    qfile_env_free(&env);
    sb_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spool_id_unique_and_hex),
        cmocka_unit_test(test_spool_format_header),
        cmocka_unit_test(test_spool_dsn_envelope_roundtrip),
        cmocka_unit_test(test_spool_single_rcpt_for_clause),
        cmocka_unit_test(test_spool_tls_auth_received),
        cmocka_unit_test(test_spool_prepare_creates_and_cleans),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
