/* test_mxbench_proto.c - mxbench's SMTP client parts that are pure over
 * bytes: enhanced status codes in replies, the DATA encoding of stored
 * messages (dot-stuffing, CRLF, 8-bit), the per-message command block
 * drawn from address lists, and the refusal table of the counters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mxbench_proto.h"
#include "mxbench_stats.h"

static void test_mxbench_proto_enhanced_codes(void **state)
{
    (void)state;
    const char *t = "5.7.1 relay denied";
    assert_int_equal(mxb_enh_parse(t, strlen(t)), MXB_ENH(5, 7, 1));
    assert_int_equal(mxb_enh_parse("4.123.999", 9), MXB_ENH(4, 123, 999));
    assert_int_equal(mxb_enh_parse("2.0.0", 5), MXB_ENH(2, 0, 0));
    const char *bad[] = {"3.0.0 x", "5.7 x", "5..1 x", "5.1234.1 x", "5.7.1x", "Ok", "", "55.1.1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(mxb_enh_parse(bad[i], strlen(bad[i])), 0);
    struct mxb_reply r;
    const char *multi = "550-5.1.1 first line\r\n550 5.7.9 second line\r\n";
    assert_int_equal(mxb_reply_scan(multi, strlen(multi), &r), (long)strlen(multi));
    assert_int_equal(r.code, 550);
    assert_int_equal(r.enh, MXB_ENH(5, 1, 1)); /* the first line's */
    assert_int_equal(mxb_reply_scan("421 busy\r\n", 10, &r), 10);
    assert_int_equal(r.enh, 0);
}

/* encode - mxb_wire_encode of a C string; checks body_len against the
 * unstuffed stream. */
static char *encode(const char *in, size_t n, size_t *len)
{
    size_t body;
    char *w = mxb_wire_encode(in, n, len, &body);
    assert_non_null(w);
    assert_true(*len >= 3 && memcmp(w + *len - 3, ".\r\n", 3) == 0);
    size_t dots = 0;
    for (size_t i = 0; i + 1 < *len - 3; i++)
        dots += (i == 0 || w[i - 1] == '\n') && w[i] == '.' && w[i + 1] == '.';
    assert_int_equal(body, *len - 3 - dots);
    return w;
}

static void test_mxbench_proto_wire_encode(void **state)
{
    (void)state;
    size_t len;
    const char crlf[] = "Subject: a\r\n\r\n.leading dot\r\n..two\r\nx.y\r\n.\r\nend\r\n";
    const char want1[] = "Subject: a\r\n\r\n..leading dot\r\n...two\r\nx.y\r\n..\r\nend\r\n.\r\n";
    char *w = encode(crlf, sizeof crlf - 1, &len);
    assert_int_equal(len, sizeof want1 - 1);
    assert_memory_equal(w, want1, len);
    free(w);
    const char lf[] = "A: b\n\n.x\nno end";
    const char want2[] = "A: b\r\n\r\n..x\r\nno end\r\n.\r\n";
    w = encode(lf, sizeof lf - 1, &len);
    assert_int_equal(len, sizeof want2 - 1);
    assert_memory_equal(w, want2, len);
    free(w);
    const char bin[] = "S: \xc3\xa9t\xe9\r\nlone\rcr\r\n\x80\xff\r\n";
    const char want3[] = "S: \xc3\xa9t\xe9\r\nlone\rcr\r\n\x80\xff\r\n.\r\n";
    w = encode(bin, sizeof bin - 1, &len);
    assert_int_equal(len, sizeof want3 - 1);
    assert_memory_equal(w, want3, len);
    free(w);
    w = encode("", 0, &len);
    assert_int_equal(len, 3);
    free(w);
    static char longl[3000];
    memset(longl, 'x', 2998);
    memcpy(longl + 2998, "\r\n", 2);
    w = encode(longl, 3000, &len); /* long lines are sent as they are */
    assert_int_equal(len, 3003);
    assert_memory_equal(w, longl, 3000);
    free(w);
}

static void test_mxbench_proto_cmds_round_robin(void **state)
{
    (void)state;
    const char *senders[] = {"a@x.test", "b@x.test"};
    const char *rcpts[] = {"r1@y.test", "r2@y.test", "r3@y.test"};
    struct mxb_lines mail, rcpt;
    assert_true(mxb_lines_build(&mail, "MAIL FROM:", senders, 2));
    assert_true(mxb_lines_build(&rcpt, "RCPT TO:", rcpts, 3));
    struct mxb_cmds c;
    assert_true(mxb_cmds_alloc(&c, 2, &mail, &rcpt));
    mxb_cmds_fill(&c, &mail, &rcpt, 0);
    const char *want0 =
        "MAIL FROM:<a@x.test>\r\nRCPT TO:<r1@y.test>\r\nRCPT TO:<r2@y.test>\r\nDATA\r\n";
    assert_int_equal(c.off[4], strlen(want0));
    assert_memory_equal(c.text, want0, strlen(want0));
    mxb_cmds_fill(&c, &mail, &rcpt, 1);
    const char *want1 =
        "MAIL FROM:<b@x.test>\r\nRCPT TO:<r3@y.test>\r\nRCPT TO:<r1@y.test>\r\nDATA\r\n";
    assert_memory_equal(c.text, want1, strlen(want1));
    assert_int_equal(c.off[1], strlen("MAIL FROM:<b@x.test>\r\n"));
    mxb_cmds_free(&c);
    mxb_lines_free(&mail);
    mxb_lines_free(&rcpt);
    const char *ctl[] = {"a\r\nRSET@x"};
    assert_false(mxb_lines_build(&mail, "MAIL FROM:", ctl, 1));
    assert_false(mxb_lines_build(&mail, "MAIL FROM:", senders, 0));
}

static void test_mxbench_proto_refusal_table(void **state)
{
    (void)state;
    static struct mxb_stats a, b;
    mxb_stats_init(&a);
    mxb_stats_init(&b);
    mxb_refusal_count(&a, 550, MXB_ENH(5, 7, 1));
    mxb_refusal_count(&a, 550, MXB_ENH(5, 7, 1));
    mxb_refusal_count(&a, 451, MXB_ENH(4, 3, 0));
    mxb_refusal_count(&b, 550, MXB_ENH(5, 7, 1));
    mxb_refusal_count(&b, 554, 0);
    mxb_stats_merge(&a, &b);
    assert_int_equal(a.c.refused4, 1);
    assert_int_equal(a.c.refused5, 4);
    assert_int_equal(a.nrefusals, 3);
    assert_int_equal(a.refusals[0].count, 3);
    assert_int_equal(a.refusals[2].code, 554);
    for (unsigned i = 0; i < MXB_REFUSALS_MAX + 5; i++)
        mxb_refusal_count(&b, 500 + i % 99, MXB_ENH(5, i, 0));
    assert_int_equal(b.nrefusals, MXB_REFUSALS_MAX);
    assert_true(b.refusals_other > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mxbench_proto_enhanced_codes),
        cmocka_unit_test(test_mxbench_proto_wire_encode),
        cmocka_unit_test(test_mxbench_proto_cmds_round_robin),
        cmocka_unit_test(test_mxbench_proto_refusal_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
