/* test_milter.c - unit tests of core/milter.c: the exact bytes of the
 * packets sent to a milter (OPTNEG, CONNECT, macros, strings, headers),
 * the reply reader at every split of a stream of replies, its errors
 * (length, unknown command, malformed data, sticky failure), stage flags,
 * header checks and formatting, and the validation of replycode texts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "milter.h"
#include "util.h"

/* pkt - append one reply packet (cmd, data[0..n)) to b, framed by hand. */
static void pkt(struct sb *b, char cmd, const void *data, size_t n)
{
    uint32_t t = (uint32_t)n + 1;
    uint8_t h[5] = {(uint8_t)(t >> 24), (uint8_t)(t >> 16), (uint8_t)(t >> 8), (uint8_t)t,
                    (uint8_t)cmd};
    assert_true(sb_append(b, h, 5));
    if (n)
        assert_true(sb_append(b, data, n));
}

/* test_milter_put_optneg_bytes - version 6, actions and steps, big-endian. */
static void test_milter_put_optneg_bytes(void **state)
{
    (void)state;
    struct sb b = {0};
    assert_true(milter_put_optneg(&b, MILTER_ACTIONS_OFFERED, MILTER_PROTO_OFFERED));
    static const uint8_t want[] = {0, 0, 0, 13,   'O', 0,    0,    0,   6,
                                   0, 0, 0, 0x39, 0,   0x0f, 0xf7, 0xff};
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.data, want, sizeof want);
    assert_false(MILTER_ACTIONS_OFFERED & MILTER_F_CHGBODY);
    sb_free(&b);
}

/* test_milter_put_connect_bytes - hostname, family, port, address. */
static void test_milter_put_connect_bytes(void **state)
{
    (void)state;
    struct sb b = {0};
    assert_true(milter_put_connect(&b, "mx.example", '4', 2525, "192.0.2.1"));
    static const char want[] = "\0\0\0\x19"
                               "Cmx.example\0"
                               "4\x09\xdd"
                               "192.0.2.1";
    assert_int_equal(b.len, sizeof want); /* the last NUL is the address's */
    assert_memory_equal(b.data, want, sizeof want);
    sb_reset(&b);
    assert_true(milter_put_connect(&b, "localhost", 'U', 0, NULL));
    static const char want_u[] = "\0\0\0\x0c"
                                 "Clocalhost\0"
                                 "U";
    assert_int_equal(b.len, sizeof want_u - 1);
    assert_memory_equal(b.data, want_u, sizeof want_u - 1);
    sb_free(&b);
}

/* test_milter_put_macros_and_strings - NULL values are left out. */
static void test_milter_put_macros_and_strings(void **state)
{
    (void)state;
    struct sb b = {0};
    const char *names[] = {"j", "{tls_version}", "{daemon_name}"};
    const char *values[] = {"mx", NULL, "mxringd"};
    assert_true(milter_put_macros(&b, MILTER_C_CONNECT, names, values, 3));
    static const char want[] = "\0\0\0\x1d"
                               "DC"
                               "j\0mx\0"
                               "{daemon_name}\0mxringd";
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.data, want, sizeof want);
    sb_reset(&b);
    const char *args[] = {"<a@b.example>", "SIZE=10"};
    assert_true(milter_put_strings(&b, MILTER_C_MAIL, args, 2));
    static const char want_m[] = "\0\0\0\x17"
                                 "M<a@b.example>\0SIZE=10";
    assert_int_equal(b.len, sizeof want_m);
    assert_memory_equal(b.data, want_m, sizeof want_m);
    sb_reset(&b);
    assert_true(milter_put_header(&b, "Subject", 7, "hi\r\n there", 10));
    static const char want_h[] = "\0\0\0\x14"
                                 "LSubject\0hi\r\n there";
    assert_int_equal(b.len, sizeof want_h);
    assert_memory_equal(b.data, want_h, sizeof want_h);
    sb_reset(&b);
    assert_true(milter_put(&b, MILTER_C_EOB, NULL, 0));
    assert_memory_equal(b.data,
                        "\0\0\0\x01"
                        "E",
                        5);
    sb_free(&b);
}

/* PKT - a packet whose data is the string literal lit (its final NUL not
 * counted: write the NULs the data needs). */
#define PKT(b, cmd, lit) pkt((b), (cmd), (lit), sizeof(lit) - 1)

/* stream - a stream of nine replies of every shape. */
static void stream(struct sb *b)
{
    uint8_t opt[12] = {0, 0, 0, 6, 0, 0, 0, 0x11, 0, 0, 0x10, 0x7f};
    pkt(b, MILTER_R_OPTNEG, opt, sizeof opt);
    pkt(b, MILTER_R_CONTINUE, NULL, 0);
    pkt(b, MILTER_R_PROGRESS, NULL, 0);
    PKT(b, MILTER_R_ADDHEADER, "X-Spam\0yes\0");
    PKT(b, MILTER_R_INSHEADER,
        "\0\0\0\x01"
        "Authentication-Results\0mx;\r\n\tdkim=pass\0");
    PKT(b, MILTER_R_CHGHEADER,
        "\0\0\0\x02"
        "Subject\0\0");
    PKT(b, MILTER_R_DELRCPT, "<x@y.example>\0");
    PKT(b, MILTER_R_QUARANTINE, "looks bad\0");
    PKT(b, MILTER_R_REPLYCODE, "550 5.7.1 Spam message rejected\0");
}

/* check_reply - reply i of the nine replies of stream(), in order. */
static void check_reply(unsigned i, const struct milter_reply *r)
{
    static const char order[] = {MILTER_R_OPTNEG,    MILTER_R_CONTINUE,   MILTER_R_PROGRESS,
                                 MILTER_R_ADDHEADER, MILTER_R_INSHEADER,  MILTER_R_CHGHEADER,
                                 MILTER_R_DELRCPT,   MILTER_R_QUARANTINE, MILTER_R_REPLYCODE};
    assert_true(i < sizeof order);
    assert_int_equal(r->cmd, order[i]);
    switch (i) {
    case 0:
        assert_int_equal(r->version, 6);
        assert_int_equal(r->actions, 0x11);
        assert_int_equal(r->proto, 0x107f);
        break;
    case 3:
        assert_string_equal(r->name, "X-Spam");
        assert_string_equal(r->value, "yes");
        break;
    case 4:
        assert_int_equal(r->index, 1);
        assert_string_equal(r->name, "Authentication-Results");
        assert_string_equal(r->value, "mx;\r\n\tdkim=pass");
        break;
    case 5:
        assert_int_equal(r->index, 2);
        assert_string_equal(r->value, "");
        break;
    case 6: assert_string_equal(r->text, "<x@y.example>"); break;
    case 7: assert_string_equal(r->text, "looks bad"); break;
    case 8: assert_string_equal(r->text, "550 5.7.1 Spam message rejected"); break;
    default: break;
    }
}

/* feed_split - feed b in pieces of the sizes given by step (cycled); the
 * count of replies seen. */
static unsigned feed_split(const struct sb *b, const size_t *steps, size_t nsteps)
{
    struct milter_rd rd = {0};
    unsigned got = 0;
    size_t off = 0, k = 0;
    while (off < b->len) {
        size_t n = steps[k++ % nsteps];
        if (n > b->len - off)
            n = b->len - off;
        const uint8_t *p = (const uint8_t *)b->data + off;
        size_t left = n;
        while (left) {
            struct milter_reply r;
            size_t used;
            enum milter_rd_status st = milter_rd_feed(&rd, p, left, &used, &r);
            assert_true(used <= left);
            if (st == MILTER_RD_REPLY)
                check_reply(got++, &r);
            else
                assert_int_equal(st, MILTER_RD_MORE);
            p += used;
            left -= used;
            if (st == MILTER_RD_MORE)
                assert_int_equal(left, 0);
        }
        off += n;
    }
    milter_rd_free(&rd);
    return got;
}

/* test_milter_rd_every_split - two pieces split at every offset, octet by
 * octet, and the whole stream at once give the same nine replies. */
static void test_milter_rd_every_split(void **state)
{
    (void)state;
    struct sb b = {0};
    stream(&b);
    size_t whole = b.len, one = 1;
    assert_int_equal(feed_split(&b, &whole, 1), 9);
    assert_int_equal(feed_split(&b, &one, 1), 9);
    for (size_t cut = 1; cut < b.len; cut++) {
        size_t steps[2] = {cut, b.len};
        assert_int_equal(feed_split(&b, steps, 2), 9);
    }
    size_t odd[3] = {3, 7, 2};
    assert_int_equal(feed_split(&b, odd, 3), 9);
    sb_free(&b);
}

/* rd_one - feed one packet to a fresh reader; its status. */
static enum milter_rd_status rd_one(const struct sb *b)
{
    struct milter_rd rd = {0};
    struct milter_reply r;
    size_t used;
    enum milter_rd_status st = milter_rd_feed(&rd, (const uint8_t *)b->data, b->len, &used, &r);
    if (st >= MILTER_RD_TOO_LONG) /* sticky */
        assert_int_equal(milter_rd_feed(&rd, (const uint8_t *)"\0\0\0\1c", 5, &used, &r), st);
    milter_rd_free(&rd);
    return st;
}

/* bad - a one-packet stream's status. */
static enum milter_rd_status bad(char cmd, const char *data, size_t n)
{
    struct sb b = {0};
    pkt(&b, cmd, data, n);
    enum milter_rd_status st = rd_one(&b);
    sb_free(&b);
    return st;
}

/* test_milter_rd_errors - every broken reply is refused, and stays so. */
static void test_milter_rd_errors(void **state)
{
    (void)state;
    struct sb b = {0};
    assert_true(sb_append(&b, "\0\0\0\0c", 5));
    assert_int_equal(rd_one(&b), MILTER_RD_TOO_LONG);
    sb_reset(&b);
    assert_true(sb_append(&b, "\0\x01\0\x02y", 5)); /* 65538 > MILTER_REPLY_MAX */
    assert_int_equal(rd_one(&b), MILTER_RD_TOO_LONG);
    sb_free(&b);
    assert_int_equal(bad('Z', NULL, 0), MILTER_RD_UNKNOWN);
    assert_int_equal(bad(MILTER_R_ADDHEADER, "X-A\0v", 5), MILTER_RD_MALFORMED); /* no NUL */
    assert_int_equal(bad(MILTER_R_ADDHEADER, "X-A\0v\0junk", 10), MILTER_RD_MALFORMED);
    assert_int_equal(bad(MILTER_R_ADDHEADER, "X A\0v\0", 6), MILTER_RD_MALFORMED);
    assert_int_equal(bad(MILTER_R_ADDHEADER, "X:A\0v\0", 6), MILTER_RD_MALFORMED);
    assert_int_equal(bad(MILTER_R_ADDHEADER, "\0v\0", 3), MILTER_RD_MALFORMED);
    assert_int_equal(bad(MILTER_R_ADDHEADER, "X-A\0a\r\nB: c\0", 12), MILTER_RD_MALFORMED);
    assert_int_equal(bad(MILTER_R_ADDHEADER, "X-A\0a\rb\0", 8), MILTER_RD_MALFORMED);
    assert_int_equal(bad(MILTER_R_INSHEADER, "\0\0\0", 3), MILTER_RD_MALFORMED);
    assert_int_equal(bad(MILTER_R_REPLYCODE, "250 ok\0", 7), MILTER_RD_MALFORMED);
    assert_int_equal(bad(MILTER_R_REPLYCODE, "", 0), MILTER_RD_MALFORMED);
    assert_int_equal(bad(MILTER_R_QUARANTINE, "\0", 1), MILTER_RD_MALFORMED);
    assert_int_equal(bad(MILTER_R_OPTNEG, "\0\0\0\6", 4), MILTER_RD_MALFORMED);
    /* a replycode without its NUL is taken (the reader terminates it) */
    assert_int_equal(bad(MILTER_R_REPLYCODE, "451 4.7.1 later", 15), MILTER_RD_REPLY);
    assert_int_equal(bad(MILTER_R_ADDHEADER, "X-A\0\0", 5), MILTER_RD_REPLY);
}

/* test_milter_stage_flags - NO* skips, NR_* silences; EOM always answers. */
static void test_milter_stage_flags(void **state)
{
    (void)state;
    uint32_t p = MILTER_P_NOHELO | MILTER_P_NR_RCPT | MILTER_P_NOBODY | MILTER_P_NR_HDR;
    assert_true(milter_stage_skipped(MILTER_S_HELO, p));
    assert_false(milter_stage_skipped(MILTER_S_CONNECT, p));
    assert_true(milter_stage_skipped(MILTER_S_BODY, p));
    assert_false(milter_stage_skipped(MILTER_S_EOM, 0xffffffffu));
    assert_true(milter_stage_noreply(MILTER_S_RCPT, p));
    assert_true(milter_stage_noreply(MILTER_S_HEADER, p));
    assert_false(milter_stage_noreply(MILTER_S_MAIL, p));
    assert_false(milter_stage_noreply(MILTER_S_EOM, 0xffffffffu));
    assert_int_equal(milter_stage_cmd(MILTER_S_EOM), 'E');
    assert_int_equal(milter_stage_cmd(MILTER_S_HEADER), 'L');
    assert_string_equal(milter_stage_name(MILTER_S_EOM), "end of message");
}

/* test_milter_header_format - CRLF line ends; folded values kept folded. */
static void test_milter_header_format(void **state)
{
    (void)state;
    struct sb b = {0};
    assert_true(milter_header_format(&b, "X-Spam", "yes"));
    assert_true(milter_header_format(&b, "A-R", "mx;\n\tdkim=pass\r\n spf=none"));
    assert_true(milter_header_format(&b, "X-Empty", ""));
    assert_string_equal(b.data,
                        "X-Spam: yes\r\nA-R: mx;\r\n\tdkim=pass\r\n spf=none\r\nX-Empty:\r\n");
    sb_free(&b);
    char longv[1001];
    memset(longv, 'v', 1000);
    longv[1000] = 0;
    assert_false(milter_header_value_ok(longv));
    longv[998] = 0;
    assert_true(milter_header_value_ok(longv));
    assert_false(milter_header_value_ok("a\n"));
    assert_true(milter_header_value_ok("a\n b"));
}

/* test_milter_replycode_valid - single and multi-line replies. */
static void test_milter_replycode_valid(void **state)
{
    (void)state;
    struct milter_code c;
    assert_true(milter_replycode_parse("550 5.7.1 Spam message rejected", &c));
    assert_int_equal(c.code, 550);
    assert_string_equal(c.ext, "5.7.1");
    assert_int_equal(c.text_len, 21);
    assert_memory_equal(c.text, "Spam message rejected", 21);
    assert_true(milter_replycode_parse("451 Try again later", &c));
    assert_int_equal(c.code, 451);
    assert_string_equal(c.ext, "");
    assert_memory_equal(c.text, "Try again later", 15);
    assert_true(milter_replycode_parse("554", &c));
    assert_true(
        milter_replycode_parse("550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 last", &c));
    assert_int_equal(c.lines, 3);
    assert_memory_equal(c.text, "first", 5);
    assert_true(milter_replycode_parse("421 4.7.0 closing\tnow", &c));
}

/* test_milter_replycode_invalid - what a client must never see. */
static void test_milter_replycode_invalid(void **state)
{
    (void)state;
    struct milter_code c;
    static const char *const bad_codes[] = {
        "",
        "250 ok",
        "354 go on",
        "650 no",
        "5x0 no",
        "55",
        "550x text",
        "550 4.7.1 wrong class",
        "550 5.7 short",
        "550 5.7.1234 long part",
        "550-5.7.1 a\r\n451 4.7.1 b", /* code changes */
        "550 5.7.1 a\r\n550 5.7.1 b", /* a space before the last line */
        "550-5.7.1 a",                /* continues into nothing */
        "550 5.7.1 a\r\n",            /* a line break at the end */
        "550 5.7.1 bell\a",
        "550 5.7.1 caf\xc3\xa9",
        "550 5.7.1 a\rb",
        "560 5.7.1 no",
    };
    for (size_t i = 0; i < MX_ARRAY_LEN(bad_codes); i++)
        if (milter_replycode_parse(bad_codes[i], &c))
            fail_msg("accepted \"%s\"", bad_codes[i]);
    char longl[600];
    memset(longl, 'a', sizeof longl);
    memcpy(longl, "550 ", 4);
    longl[sizeof longl - 1] = 0;
    assert_false(milter_replycode_parse(longl, &c));
    struct sb many = {0};
    for (int i = 0; i < 20; i++)
        assert_true(sb_appends(&many, i < 19 ? "550-x\r\n" : "550 x"));
    assert_false(milter_replycode_parse(many.data, &c));
    sb_free(&many);
}

/* edit_run - apply n edits to hdr; the section and the added lines. */
static void edit_run(const char *hdr, struct milter_hdr_edit *e, size_t n, const char *want,
                     const char *want_added)
{
    struct sb out = {0}, added = {0};
    assert_true(milter_hdr_edit_apply(hdr, strlen(hdr), e, n, &out, &added));
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data ? out.data : "", want, out.len);
    assert_int_equal(added.len, strlen(want_added));
    assert_memory_equal(added.data ? added.data : "", want_added, added.len);
    sb_free(&out);
    sb_free(&added);
}

/* test_milter_hdr_edit_change_nth - the 2nd X-Tag (matched case-
 * insensitively, its own spelling kept) gets the new value; everything
 * else, the empty line included, is byte-exact. */
static void test_milter_hdr_edit_change_nth(void **state)
{
    (void)state;
    struct milter_hdr_edit e[] = {{"x-tag", "new\n\tfolded", 2}};
    edit_run("From: a@b\r\nX-Tag: one\r\nx-TAG:two\r\n  cont\r\nSubject: s\r\n\r\n", e, 1,
             "From: a@b\r\nX-Tag: one\r\nx-TAG: new\r\n\tfolded\r\nSubject: s\r\n\r\n", "");
}

/* test_milter_hdr_edit_delete - an empty value deletes the header with its
 * folded lines; a later index counts the headers still there. */
static void test_milter_hdr_edit_delete(void **state)
{
    (void)state;
    struct milter_hdr_edit e[] = {{"X-Spam", "", 1}, {"X-Spam", "", 1}};
    edit_run("X-Spam: a\r\n b\r\nTo: u\r\nX-Spam: c\r\nX-Spam: d\r\n\r\n", e, 2,
             "To: u\r\nX-Spam: d\r\n\r\n", "");
}

/* test_milter_hdr_edit_add_past_last - an index past the last occurrence
 * adds the header (libmilter's smfi_chgheader); deleting one that is not
 * there does nothing. */
static void test_milter_hdr_edit_add_past_last(void **state)
{
    (void)state;
    struct milter_hdr_edit e[] = {{"X-New", "v", 3}, {"X-Gone", "", 1}};
    edit_run("Subject: s\r\n\r\n", e, 2, "Subject: s\r\n\r\n", "X-New: v\r\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_milter_put_optneg_bytes),
        cmocka_unit_test(test_milter_put_connect_bytes),
        cmocka_unit_test(test_milter_put_macros_and_strings),
        cmocka_unit_test(test_milter_rd_every_split),
        cmocka_unit_test(test_milter_rd_errors),
        cmocka_unit_test(test_milter_stage_flags),
        cmocka_unit_test(test_milter_header_format),
        cmocka_unit_test(test_milter_replycode_valid),
        cmocka_unit_test(test_milter_replycode_invalid),
        cmocka_unit_test(test_milter_hdr_edit_change_nth),
        cmocka_unit_test(test_milter_hdr_edit_delete),
        cmocka_unit_test(test_milter_hdr_edit_add_past_last),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
