/* test_smtp_parse.c - unit tests of core/smtp_parse.c: verb table, MAIL/RCPT
 * paths (accepted forms, relay tricks, limits), ESMTP parameters, HELO. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_parse.h"

/* mail - smtp_parse_mail over a C string. */
static enum smtp_perr mail(const char *s, struct smtp_addr *a, struct smtp_params *p)
{
    return smtp_parse_mail(s, strlen(s), a, p);
}

/* rcpt - smtp_parse_rcpt over a C string. */
static enum smtp_perr rcpt(const char *s, struct smtp_addr *a, struct smtp_params *p)
{
    return smtp_parse_rcpt(s, strlen(s), a, p);
}

/* mail_err - the result of MAIL with argument s. */
static enum smtp_perr mail_err(const char *s)
{
    struct smtp_addr a;
    struct smtp_params p;
    return mail(s, &a, &p);
}

/* rcpt_err - the result of RCPT with argument s. */
static enum smtp_perr rcpt_err(const char *s)
{
    struct smtp_addr a;
    struct smtp_params p;
    return rcpt(s, &a, &p);
}

/* check_addr - assert a parsed address and its invariants. */
static void check_addr(const struct smtp_addr *a, const char *want)
{
    assert_string_equal(a->addr, want);
    assert_int_equal(a->len, strlen(want));
    const char *at = strrchr(want, '@');
    if (a->at < a->len)
        assert_int_equal(a->addr[a->at], '@');
    assert_int_equal(a->at, at ? (size_t)(at - want) : strlen(want));
}

/* expect_mail - MAIL argument s parses OK to address want. */
static void expect_mail(const char *s, const char *want)
{
    struct smtp_addr a;
    struct smtp_params p;
    assert_int_equal(mail(s, &a, &p), SMTP_P_OK);
    check_addr(&a, want);
}

/* expect_rcpt - RCPT argument s parses OK to address want. */
static void expect_rcpt(const char *s, const char *want)
{
    struct smtp_addr a;
    struct smtp_params p;
    assert_int_equal(rcpt(s, &a, &p), SMTP_P_OK);
    check_addr(&a, want);
}

/* rep - a string of n copies of ch (static buffer, one at a time per slot). */
static const char *rep(char *buf, char ch, size_t n)
{
    memset(buf, ch, n);
    buf[n] = 0;
    return buf;
}

/* ---- verbs ---------------------------------------------------------------- */

static void test_smtp_parse_verb_all(void **st)
{
    (void)st;
    for (int v = SMTP_VERB_HELO; v < SMTP_VERB_COUNT; v++) {
        const char *name = smtp_verb_name((enum smtp_verb)v);
        size_t off = 99;
        assert_true(strlen(name) >= 4);
        assert_int_equal(smtp_parse_verb(name, strlen(name), &off), v);
        assert_int_equal(off, strlen(name));
    }
    assert_string_equal(smtp_verb_name(SMTP_VERB_UNKNOWN), "");
    assert_string_equal(smtp_verb_name(SMTP_VERB_STARTTLS), "STARTTLS");
}

static void test_smtp_parse_verb_case_insensitive(void **st)
{
    (void)st;
    size_t off;
    assert_int_equal(smtp_parse_verb("mail FROM:<a@b>", 15, &off), SMTP_VERB_MAIL);
    assert_int_equal(off, 5);
    assert_int_equal(smtp_parse_verb("RcPt TO:<a@b>", 13, &off), SMTP_VERB_RCPT);
    assert_int_equal(smtp_parse_verb("starttls", 8, &off), SMTP_VERB_STARTTLS);
    assert_int_equal(smtp_parse_verb("ehlo x", 6, &off), SMTP_VERB_EHLO);
    assert_int_equal(off, 5);
}

static void test_smtp_parse_verb_arg_offset(void **st)
{
    (void)st;
    size_t off;
    assert_int_equal(smtp_parse_verb("MAIL", 4, &off), SMTP_VERB_MAIL);
    assert_int_equal(off, 4);
    assert_int_equal(smtp_parse_verb("MAIL   FROM:<>", 14, &off), SMTP_VERB_MAIL);
    assert_int_equal(off, 7);
    assert_int_equal(smtp_parse_verb("QUIT   ", 7, &off), SMTP_VERB_QUIT);
    assert_int_equal(off, 7);
    /* the length bounds the line: bytes past len are not looked at */
    assert_int_equal(smtp_parse_verb("DATAX", 4, &off), SMTP_VERB_DATA);
}

static void test_smtp_parse_verb_unknown(void **st)
{
    (void)st;
    size_t off;
    static const char *bad[] = {"MAILX",     "MAI", "",      " MAIL", "MAIL\tFROM:<>", "DATA\r",
                                "STARTTLSX", "HEL", "XYZZY", "MAIL:", "QUIT\0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(smtp_parse_verb(bad[i], strlen(bad[i]) + (i == 10), &off),
                         SMTP_VERB_UNKNOWN);
}

static void test_smtp_parse_verb_not_implemented(void **st)
{
    (void)st;
    size_t off;
    /* EXPN, TURN and ETRN are known verbs (502 in the session, not 500) */
    assert_int_equal(smtp_parse_verb("EXPN staff", 10, &off), SMTP_VERB_EXPN);
    assert_int_equal(off, 5);
    assert_int_equal(smtp_parse_verb("turn", 4, &off), SMTP_VERB_TURN);
    assert_int_equal(smtp_parse_verb("Etrn example.test", 17, &off), SMTP_VERB_ETRN);
    assert_string_equal(smtp_verb_name(SMTP_VERB_ETRN), "ETRN");
    assert_int_equal(smtp_parse_verb("EXPNX", 5, &off), SMTP_VERB_UNKNOWN);
}

static void test_smtp_parse_empty_input(void **st)
{
    (void)st;
    size_t off = 99, d = 99;
    struct smtp_addr a;
    struct smtp_params p;
    assert_int_equal(smtp_parse_verb(NULL, 0, &off), SMTP_VERB_UNKNOWN);
    assert_int_equal(off, 0);
    assert_int_equal(smtp_parse_mail(NULL, 0, &a, &p), SMTP_P_SYNTAX);
    assert_int_equal(smtp_parse_rcpt(NULL, 0, &a, &p), SMTP_P_SYNTAX);
    assert_int_equal(smtp_parse_helo(NULL, 0, &d), SMTP_P_SYNTAX);
    assert_int_equal(d, 0);
}

/* ---- MAIL / RCPT paths ------------------------------------------------------ */

static void test_smtp_parse_mail_basic(void **st)
{
    (void)st;
    struct smtp_addr a;
    struct smtp_params p;
    assert_int_equal(mail("FROM:<user@example.com>", &a, &p), SMTP_P_OK);
    check_addr(&a, "user@example.com");
    assert_false(a.is_null || a.utf8 || a.quoted || a.addr_literal);
    assert_false(p.has_size || p.smtputf8 || p.has_auth);
    assert_int_equal(p.body, SMTP_BODY_NONE);
    assert_string_equal(smtp_addr_domain(&a), "example.com");
    expect_mail("from:<User.Name+tag@Sub.Example.COM>", "User.Name+tag@Sub.Example.COM");
    expect_mail("From:<a@b>", "a@b");
}

static void test_smtp_parse_mail_lenient_forms(void **st)
{
    (void)st;
    expect_mail("FROM: <user@example.com>", "user@example.com");
    expect_mail("FROM:    <user@example.com>", "user@example.com");
    expect_mail("FROM:user@example.com", "user@example.com");
    expect_mail("FROM: user@example.com", "user@example.com");
    expect_mail("FROM:user@example.com SIZE=10", "user@example.com");
    expect_mail("FROM:<user@example.com>   ", "user@example.com");
    expect_rcpt("to:user@example.com", "user@example.com");
    expect_rcpt("TO: <user@example.com>", "user@example.com");
}

static void test_smtp_parse_mail_null_sender(void **st)
{
    (void)st;
    struct smtp_addr a;
    struct smtp_params p;
    assert_int_equal(mail("FROM:<>", &a, &p), SMTP_P_OK);
    assert_true(a.is_null);
    assert_string_equal(a.addr, "");
    assert_int_equal(a.len, 0);
    assert_string_equal(smtp_addr_domain(&a), "");
    assert_int_equal(mail("FROM: <> SIZE=100", &a, &p), SMTP_P_OK);
    assert_true(a.is_null);
    assert_true(p.has_size);
    assert_int_equal(p.size, 100);
    assert_int_equal(mail_err("FROM:<>x"), SMTP_P_SYNTAX);
    assert_int_equal(mail_err("FROM:<> <>"), SMTP_P_SYNTAX);
}

static void test_smtp_parse_rcpt_null_rejected(void **st)
{
    (void)st;
    assert_int_equal(rcpt_err("TO:<>"), SMTP_P_NULL_RCPT);
    assert_int_equal(rcpt_err("TO: <>"), SMTP_P_NULL_RCPT);
}

static void test_smtp_parse_missing_keyword(void **st)
{
    (void)st;
    assert_int_equal(mail_err(""), SMTP_P_SYNTAX);
    assert_int_equal(mail_err("<a@b>"), SMTP_P_SYNTAX);
    assert_int_equal(mail_err("FROM<a@b>"), SMTP_P_SYNTAX);
    assert_int_equal(mail_err("FROM :<a@b>"), SMTP_P_SYNTAX);
    assert_int_equal(mail_err("TO:<a@b>"), SMTP_P_SYNTAX);
    assert_int_equal(mail_err("FROM:"), SMTP_P_SYNTAX);
    assert_int_equal(mail_err("FROM:   "), SMTP_P_SYNTAX);
    assert_int_equal(rcpt_err("FROM:<a@b>"), SMTP_P_SYNTAX);
    assert_int_equal(rcpt_err("TO"), SMTP_P_SYNTAX);
    assert_int_equal(rcpt_err("TO:"), SMTP_P_SYNTAX);
}

static void test_smtp_parse_bad_brackets(void **st)
{
    (void)st;
    assert_int_equal(mail_err("FROM:<a@b"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:a@b>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<<a@b>>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<a@b c>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<a b@c>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<a@b>junk"), SMTP_P_SYNTAX);
    assert_int_equal(mail_err("FROM:<a@b><c@d>"), SMTP_P_SYNTAX);
    assert_int_equal(mail_err("FROM:<a@b> <c@d>"), SMTP_P_SYNTAX);
    assert_int_equal(mail_err("FROM:<a@b>\tSIZE=1"), SMTP_P_SYNTAX);
    assert_int_equal(mail_err("FROM:<"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:>"), SMTP_P_BAD_ADDR);
}

static void test_smtp_parse_dot_atom_rules(void **st)
{
    (void)st;
    expect_mail("FROM:<a.b.c@x>", "a.b.c@x");
    expect_mail("FROM:<!#$%&'*+-/=?^_`{|}~@x>", "!#$%&'*+-/=?^_`{|}~@x");
    assert_int_equal(mail_err("FROM:<.a@x>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<a.@x>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<a..b@x>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<@x>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<a(b)@x>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<a,b@x>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<a;b@x>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<a\\b@x>"), SMTP_P_BAD_ADDR);
}

static void test_smtp_parse_relay_tricks_parsed(void **st)
{
    (void)st;
    struct smtp_addr a;
    struct smtp_params p;
    expect_rcpt("TO:<user%remote@local>", "user%remote@local");
    expect_rcpt("TO:<remote!user@local>", "remote!user@local");
    assert_int_equal(rcpt("TO:<user%remote@local>", &a, &p), SMTP_P_OK);
    assert_string_equal(smtp_addr_domain(&a), "local");
    assert_int_equal(rcpt("TO:<\"user@remote\"@local>", &a, &p), SMTP_P_OK);
    check_addr(&a, "\"user@remote\"@local");
    assert_true(a.quoted);
    assert_string_equal(smtp_addr_domain(&a), "local");
    assert_int_equal(rcpt("TO:<@local:user@remote>", &a, &p), SMTP_P_OK);
    check_addr(&a, "user@remote");
    assert_string_equal(smtp_addr_domain(&a), "remote");
    expect_rcpt("TO:<@a.example,@b.example:user@c.example>", "user@c.example");
    expect_rcpt("TO:<@[1.2.3.4]:user@c.example>", "user@c.example");
}

static void test_smtp_parse_source_route_bad(void **st)
{
    (void)st;
    assert_int_equal(rcpt_err("TO:<@a>"), SMTP_P_BAD_ADDR);
    assert_int_equal(rcpt_err("TO:<@a:>"), SMTP_P_BAD_ADDR);
    assert_int_equal(rcpt_err("TO:<@a,b:u@c>"), SMTP_P_BAD_ADDR);
    assert_int_equal(rcpt_err("TO:<@:u@c>"), SMTP_P_BAD_ADDR);
    assert_int_equal(rcpt_err("TO:<@a.:u@c>"), SMTP_P_BAD_ADDR);
    assert_int_equal(rcpt_err("TO:<@a;u@c>"), SMTP_P_BAD_ADDR);
    assert_int_equal(rcpt_err("TO:<@a:@b:u@c>"), SMTP_P_BAD_ADDR);
}

static void test_smtp_parse_quoted_local(void **st)
{
    (void)st;
    struct smtp_addr a;
    struct smtp_params p;
    assert_int_equal(mail("FROM:<\"john\"@x>", &a, &p), SMTP_P_OK);
    check_addr(&a, "john@x");
    assert_false(a.quoted);
    expect_mail("FROM:<\"john.smith\"@x>", "john.smith@x");
    expect_mail("FROM:<\"j\\ohn\"@x>", "john@x");
    assert_int_equal(mail("FROM:<\"john doe\"@x>", &a, &p), SMTP_P_OK);
    check_addr(&a, "\"john doe\"@x");
    assert_true(a.quoted);
    expect_mail("FROM:<\"john\\ doe\"@x>", "\"john doe\"@x");
    expect_mail("FROM:<\"a\\\"b\"@x>", "\"a\\\"b\"@x");
    expect_mail("FROM:<\"a\\\\b\"@x>", "\"a\\\\b\"@x");
    expect_mail("FROM:<\"a..b\"@x>", "\"a..b\"@x");
    expect_mail("FROM:<\".a\"@x>", "\".a\"@x");
    expect_mail("FROM:<\"\"@x>", "\"\"@x");
    expect_mail("FROM:<\"a<b>c\"@x>", "\"a<b>c\"@x");
    expect_mail("FROM:<\"a,b\"@x>", "\"a,b\"@x");
}

static void test_smtp_parse_quoted_local_bad(void **st)
{
    (void)st;
    assert_int_equal(mail_err("FROM:<\"abc@x>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<\"a\"b@x>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<a\"b\"@x>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<\"a\tb\"@x>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<\"a\\\tb\"@x>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<\"a\\\"@x>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<\"a\x7f\"@x>"), SMTP_P_BAD_ADDR);
    /* without brackets the path ends at the first SP */
    assert_int_equal(mail_err("FROM:\"john doe\"@x"), SMTP_P_BAD_ADDR);
    expect_mail("FROM:\"john\"@x SIZE=1", "john@x");
}

static void test_smtp_parse_domain_rules(void **st)
{
    (void)st;
    expect_mail("FROM:<a@x>", "a@x");
    expect_mail("FROM:<a@a-b.c-d.example>", "a@a-b.c-d.example");
    expect_mail("FROM:<a@123.example>", "a@123.example");
    expect_mail("FROM:<a@xn--bcher-kva.example>", "a@xn--bcher-kva.example");
    assert_int_equal(mail_err("FROM:<a@>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<a@-x.example>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<a@x-.example>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<a@x..example>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<a@.x.example>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<a@x_y.example>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<a@b@c>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<a@x.example:25>"), SMTP_P_BAD_ADDR);
}

static void test_smtp_parse_trailing_dot_rejected(void **st)
{
    (void)st;
    assert_int_equal(rcpt_err("TO:<user@local.example.>"), SMTP_P_BAD_ADDR);
    assert_int_equal(rcpt_err("TO:user@local.example."), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<user@local.example.>"), SMTP_P_BAD_ADDR);
    assert_int_equal(rcpt_err("TO:<user@local.example..>"), SMTP_P_BAD_ADDR);
    assert_int_equal(rcpt_err("TO:<user@.>"), SMTP_P_BAD_ADDR);
}

static void test_smtp_parse_address_literal(void **st)
{
    (void)st;
    struct smtp_addr a;
    struct smtp_params p;
    assert_int_equal(rcpt("TO:<postmaster@[192.0.2.1]>", &a, &p), SMTP_P_OK);
    check_addr(&a, "postmaster@[192.0.2.1]");
    assert_true(a.addr_literal);
    assert_string_equal(smtp_addr_domain(&a), "[192.0.2.1]");
    assert_int_equal(rcpt("TO:<u@[IPv6:2001:db8::1]>", &a, &p), SMTP_P_OK);
    check_addr(&a, "u@[IPv6:2001:db8::1]");
    assert_true(a.addr_literal);
    expect_rcpt("TO:<u@[ipv6:::1]>", "u@[ipv6:::1]");
    expect_rcpt("TO:<u@[IPv6:::ffff:192.0.2.1]>", "u@[IPv6:::ffff:192.0.2.1]");
    assert_int_equal(rcpt("TO:<u@example.com>", &a, &p), SMTP_P_OK);
    assert_false(a.addr_literal);
}

static void test_smtp_parse_address_literal_bad(void **st)
{
    (void)st;
    static const char *bad[] = {
        "TO:<u@[1.2.3]>",        "TO:<u@[1.2.3.256]>",
        "TO:<u@[1.2.3.4.5]>",    "TO:<u@[]>",
        "TO:<u@[1.2.3.4>",       "TO:<u@[2001:db8::1]>",
        "TO:<u@[IPv6:1.2.3.4]>", "TO:<u@[IPv6:2001:db8:::1]>",
        "TO:<u@[IPv6:]>",        "TO:<u@[1.2.3.4].x>",
        "TO:<u@[ 1.2.3.4]>",     "TO:<u@[x-tag:foo]>",
        "TO:<u@[1.2.3.4]x>",     "TO:<u@[[1.2.3.4]]>",
        "TO:<u@x.[1.2.3.4]>",    "TO:<u@[0x1.2.3.4]>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(rcpt_err(bad[i]), SMTP_P_BAD_ADDR);
    }
}

static void test_smtp_parse_postmaster(void **st)
{
    (void)st;
    struct smtp_addr a;
    struct smtp_params p;
    assert_int_equal(rcpt("TO:<postmaster>", &a, &p), SMTP_P_OK);
    check_addr(&a, "postmaster");
    assert_int_equal(a.at, a.len);
    assert_string_equal(smtp_addr_domain(&a), "");
    expect_rcpt("TO:<PostMaster>", "PostMaster");
    expect_rcpt("TO:postmaster", "postmaster");
    expect_rcpt("TO:<\"postmaster\">", "postmaster");
    assert_int_equal(rcpt_err("TO:<postmaster2>"), SMTP_P_BAD_ADDR);
    assert_int_equal(rcpt_err("TO:<user>"), SMTP_P_BAD_ADDR);
    assert_int_equal(rcpt_err("TO:<\"post master\">"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<postmaster>"), SMTP_P_BAD_ADDR);
    assert_int_equal(mail_err("FROM:<user>"), SMTP_P_BAD_ADDR);
}

static void test_smtp_parse_control_chars(void **st)
{
    (void)st;
    static const char *bad[] = {"TO:<a\x01@x>", "TO:<a@x\x01>", "TO:<a@x\t>", "TO:<a\r@x>",
                                "TO:<a@\x7fx>", "TO:\x01<a@x>", "TO:<\x1b@x>"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(rcpt_err(bad[i]), SMTP_P_BAD_ADDR);
    /* an embedded NUL is a control byte, not a terminator */
    struct smtp_addr a;
    struct smtp_params p;
    assert_int_equal(smtp_parse_rcpt("TO:<a\0b@x>", 10, &a, &p), SMTP_P_BAD_ADDR);
}

static void test_smtp_parse_utf8(void **st)
{
    (void)st;
    struct smtp_addr a;
    struct smtp_params p;
    assert_int_equal(mail("FROM:<j\xc3\xb6rg@b\xc3\xbc"
                          "cher.example> SMTPUTF8",
                          &a, &p),
                     SMTP_P_OK);
    check_addr(&a, "j\xc3\xb6rg@b\xc3\xbc"
                   "cher.example");
    assert_true(a.utf8);
    assert_true(p.smtputf8);
    assert_int_equal(rcpt("TO:<\xe7\x94\xb0\xe4\xb8\xad@\xe4\xbe\x8b.jp>", &a, &p), SMTP_P_OK);
    assert_true(a.utf8);
    assert_int_equal(rcpt("TO:<\"\xf0\x9f\x93\xa7 box\"@x>", &a, &p), SMTP_P_OK);
    assert_true(a.utf8 && a.quoted);
    assert_int_equal(rcpt("TO:<a@x>", &a, &p), SMTP_P_OK);
    assert_false(a.utf8);
}

static void test_smtp_parse_utf8_invalid(void **st)
{
    (void)st;
    static const char *bad[] = {
        "TO:<\x80@x>",             /* lone continuation */
        "TO:<\xc3@x>",             /* truncated */
        "TO:<\xc0\xaf@x>",         /* overlong */
        "TO:<\xe0\x80\xaf@x>",     /* overlong 3-byte */
        "TO:<\xed\xa0\x80@x>",     /* surrogate */
        "TO:<\xf4\x90\x80\x80@x>", /* > U+10FFFF */
        "TO:<\xff@x>",
        "TO:<a@\xc3>",
        "TO:<a@b\xc3(>",
        "TO:<\"\xc3\"@x>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(rcpt_err(bad[i]), SMTP_P_BAD_ADDR);
}

static void test_smtp_parse_length_limits(void **st)
{
    (void)st;
    char l64[80], l65[80], lbl[80], arg[600], want[100];
    rep(l64, 'a', 64);
    rep(l65, 'a', 65);
    snprintf(arg, sizeof(arg), "FROM:<%s@x>", l64);
    snprintf(want, sizeof(want), "%s@x", l64);
    expect_mail(arg, want);
    snprintf(arg, sizeof(arg), "FROM:<%s@x>", l65);
    assert_int_equal(mail_err(arg), SMTP_P_PATH_TOO_LONG);
    /* quoted: 62 octets + 2 quotes = 64 is fine, one more is not */
    snprintf(arg, sizeof(arg), "FROM:<\"%s %s\"@x>", rep(l64, 'a', 30), rep(l65, 'b', 31));
    assert_int_equal(mail_err(arg), SMTP_P_OK);
    snprintf(arg, sizeof(arg), "FROM:<\"%s %s\"@x>", rep(l64, 'a', 30), rep(l65, 'b', 32));
    assert_int_equal(mail_err(arg), SMTP_P_PATH_TOO_LONG);
    /* path of exactly 256 octets incl. brackets: "<" + 1 + "@" + 252 + ">" */
    rep(lbl, 'd', 61);
    snprintf(arg, sizeof(arg), "TO:<u@%s.%s.%s.%s.%s>", lbl, lbl, lbl, lbl, rep(l64, 'e', 4));
    assert_int_equal(strlen(arg) - 3, 256);
    assert_int_equal(rcpt_err(arg), SMTP_P_OK);
    snprintf(arg, sizeof(arg), "TO:<u@%s.%s.%s.%s.%s>", lbl, lbl, lbl, lbl, rep(l64, 'e', 5));
    assert_int_equal(rcpt_err(arg), SMTP_P_PATH_TOO_LONG);
    /* the same without brackets counts them too */
    snprintf(arg, sizeof(arg), "TO:u@%s.%s.%s.%s.%s", lbl, lbl, lbl, lbl, rep(l64, 'e', 4));
    assert_int_equal(rcpt_err(arg), SMTP_P_OK);
    snprintf(arg, sizeof(arg), "TO:u@%s.%s.%s.%s.%s", lbl, lbl, lbl, lbl, rep(l64, 'e', 5));
    assert_int_equal(rcpt_err(arg), SMTP_P_PATH_TOO_LONG);
}

static void test_smtp_parse_domain_too_long(void **st)
{
    (void)st;
    char lbl[80], arg[700];
    rep(lbl, 'd', 63);
    /* 256-octet domain: over the domain limit */
    snprintf(arg, sizeof(arg), "TO:<u@%s.%s.%s.%s>", lbl, lbl, lbl, lbl);
    assert_int_equal(rcpt_err(arg), SMTP_P_PATH_TOO_LONG);
    /* a source route counts toward the path length */
    rep(lbl, 'r', 60);
    snprintf(arg, sizeof(arg), "TO:<@%s,@%s,@%s,@%s,@%s:u@x>", lbl, lbl, lbl, lbl, lbl);
    assert_int_equal(rcpt_err(arg), SMTP_P_PATH_TOO_LONG);
}

/* ---- ESMTP parameters --------------------------------------------------------- */

static void test_smtp_parse_param_size(void **st)
{
    (void)st;
    struct smtp_addr a;
    struct smtp_params p;
    assert_int_equal(mail("FROM:<a@b> SIZE=12345", &a, &p), SMTP_P_OK);
    assert_true(p.has_size);
    assert_int_equal(p.size, 12345);
    assert_int_equal(mail("FROM:<a@b> size=0", &a, &p), SMTP_P_OK);
    assert_true(p.has_size);
    assert_int_equal(p.size, 0);
    assert_int_equal(mail("FROM:<a@b> SIZE=18446744073709551615", &a, &p), SMTP_P_OK);
    assert_true(p.size == UINT64_MAX);
    assert_int_equal(mail("FROM:<a@b> SIZE=18446744073709551616", &a, &p), SMTP_P_OK);
    assert_true(p.size == UINT64_MAX);
    assert_int_equal(mail("FROM:<a@b> SIZE=99999999999999999999999999999", &a, &p), SMTP_P_OK);
    assert_true(p.size == UINT64_MAX);
    assert_int_equal(mail_err("FROM:<a@b> SIZE="), SMTP_P_BAD_PARAM);
    assert_int_equal(mail_err("FROM:<a@b> SIZE"), SMTP_P_BAD_PARAM);
    assert_int_equal(mail_err("FROM:<a@b> SIZE=-1"), SMTP_P_BAD_PARAM);
    assert_int_equal(mail_err("FROM:<a@b> SIZE=1k"), SMTP_P_BAD_PARAM);
    assert_int_equal(mail_err("FROM:<a@b> SIZE=1 SIZE=2"), SMTP_P_BAD_PARAM);
}

static void test_smtp_parse_param_body(void **st)
{
    (void)st;
    struct smtp_addr a;
    struct smtp_params p;
    assert_int_equal(mail("FROM:<a@b> BODY=8BITMIME", &a, &p), SMTP_P_OK);
    assert_int_equal(p.body, SMTP_BODY_8BITMIME);
    assert_int_equal(mail("FROM:<a@b> body=7bit", &a, &p), SMTP_P_OK);
    assert_int_equal(p.body, SMTP_BODY_7BIT);
    assert_int_equal(mail("FROM:<a@b> Body=8bitMime", &a, &p), SMTP_P_OK);
    assert_int_equal(p.body, SMTP_BODY_8BITMIME);
    assert_int_equal(mail_err("FROM:<a@b> BODY=BINARYMIME"), SMTP_P_BAD_PARAM);
    assert_int_equal(mail_err("FROM:<a@b> BODY="), SMTP_P_BAD_PARAM);
    assert_int_equal(mail_err("FROM:<a@b> BODY"), SMTP_P_BAD_PARAM);
    assert_int_equal(mail_err("FROM:<a@b> BODY=7BITX"), SMTP_P_BAD_PARAM);
    assert_int_equal(mail_err("FROM:<a@b> BODY=7BIT BODY=7BIT"), SMTP_P_BAD_PARAM);
}

static void test_smtp_parse_param_smtputf8_auth(void **st)
{
    (void)st;
    struct smtp_addr a;
    struct smtp_params p;
    assert_int_equal(mail("FROM:<a@b> smtputf8", &a, &p), SMTP_P_OK);
    assert_true(p.smtputf8);
    assert_int_equal(mail_err("FROM:<a@b> SMTPUTF8=yes"), SMTP_P_BAD_PARAM);
    assert_int_equal(mail_err("FROM:<a@b> SMTPUTF8 SMTPUTF8"), SMTP_P_BAD_PARAM);
    assert_int_equal(mail("FROM:<a@b> AUTH=<>", &a, &p), SMTP_P_OK);
    assert_true(p.has_auth);
    assert_int_equal(mail("FROM:<a@b> AUTH=user+40example.com", &a, &p), SMTP_P_OK);
    assert_true(p.has_auth);
    assert_int_equal(mail_err("FROM:<a@b> AUTH="), SMTP_P_BAD_PARAM);
    assert_int_equal(mail_err("FROM:<a@b> AUTH"), SMTP_P_BAD_PARAM);
    assert_int_equal(mail_err("FROM:<a@b> AUTH=a+4"), SMTP_P_BAD_PARAM);
    assert_int_equal(mail_err("FROM:<a@b> AUTH=a+4g"), SMTP_P_BAD_PARAM);
    assert_int_equal(mail_err("FROM:<a@b> AUTH=a+3d"), SMTP_P_BAD_PARAM);
    assert_int_equal(mail_err("FROM:<a@b> AUTH=\xc3\xa9"), SMTP_P_BAD_PARAM);
}

static void test_smtp_parse_param_combined(void **st)
{
    (void)st;
    struct smtp_addr a;
    struct smtp_params p;
    assert_int_equal(mail("FROM:<a@b>  SIZE=1000   BODY=8BITMIME SMTPUTF8 AUTH=<>  ", &a, &p),
                     SMTP_P_OK);
    check_addr(&a, "a@b");
    assert_true(p.has_size && p.smtputf8 && p.has_auth);
    assert_int_equal(p.size, 1000);
    assert_int_equal(p.body, SMTP_BODY_8BITMIME);
    assert_int_equal(mail("FROM:a@b SIZE=5 BODY=7BIT", &a, &p), SMTP_P_OK);
    assert_int_equal(p.size, 5);
    assert_int_equal(p.body, SMTP_BODY_7BIT);
}

static void test_smtp_parse_param_unknown_or_malformed(void **st)
{
    (void)st;
    assert_int_equal(mail_err("FROM:<a@b> FOO"), SMTP_P_BAD_PARAM);
    assert_int_equal(mail_err("FROM:<a@b> FOO=bar"), SMTP_P_BAD_PARAM);
    assert_int_equal(mail_err("FROM:<a@b> X-Y=1"), SMTP_P_BAD_PARAM);
    assert_int_equal(mail_err("FROM:<a@b> NOTIFY=NEVER"), SMTP_P_BAD_PARAM);
    assert_int_equal(mail_err("FROM:<a@b> SIZE=1=2"), SMTP_P_BAD_PARAM);
    assert_int_equal(mail_err("FROM:<a@b> SIZE=\x01"), SMTP_P_BAD_PARAM);
    /* not esmtp-param syntax at all */
    assert_int_equal(mail_err("FROM:<a@b> -X=1"), SMTP_P_SYNTAX);
    assert_int_equal(mail_err("FROM:<a@b> =1"), SMTP_P_SYNTAX);
    assert_int_equal(mail_err("FROM:<a@b> SIZE:1"), SMTP_P_SYNTAX);
    assert_int_equal(mail_err("FROM:<a@b> \x01"), SMTP_P_SYNTAX);
    assert_int_equal(mail_err("FROM:<a@b> SIZE=1\t"), SMTP_P_BAD_PARAM);
}

static void test_smtp_parse_rcpt_params(void **st)
{
    (void)st;
    struct smtp_addr a;
    struct smtp_params p;
    assert_int_equal(rcpt("TO:<a@b> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+40b", &a, &p), SMTP_P_OK);
    check_addr(&a, "a@b");
    assert_false(p.has_size || p.smtputf8 || p.has_auth);
    assert_int_equal(rcpt_err("TO:<a@b> notify=NEVER"), SMTP_P_OK);
    assert_int_equal(rcpt_err("TO:<a@b> NOTIFY"), SMTP_P_BAD_DSN); /* RFC 3461: 501 */
    assert_int_equal(rcpt_err("TO:<a@b> ORCPT="), SMTP_P_BAD_DSN);
    assert_int_equal(rcpt_err("TO:<a@b> NOTIFY=NEVER NOTIFY=NEVER"), SMTP_P_DUP_DSN);
    assert_int_equal(rcpt_err("TO:<a@b> SIZE=1"), SMTP_P_BAD_PARAM);
    assert_int_equal(rcpt_err("TO:<a@b> BODY=7BIT"), SMTP_P_BAD_PARAM);
    assert_int_equal(rcpt_err("TO:<a@b> SMTPUTF8"), SMTP_P_BAD_PARAM);
    assert_int_equal(rcpt_err("TO:<a@b> AUTH=<>"), SMTP_P_BAD_PARAM);
    assert_int_equal(rcpt_err("TO:<a@b> FOO"), SMTP_P_BAD_PARAM);
    assert_int_equal(rcpt_err("TO:<a@b>x"), SMTP_P_SYNTAX);
}

/* ---- HELO / EHLO ---------------------------------------------------------- */

/* helo - smtp_parse_helo over a C string, returning the domain length. */
static enum smtp_perr helo(const char *s, size_t *dlen)
{
    return smtp_parse_helo(s, strlen(s), dlen);
}

static void test_smtp_parse_helo_ok(void **st)
{
    (void)st;
    size_t d;
    assert_int_equal(helo("mail.example.com", &d), SMTP_P_OK);
    assert_int_equal(d, 16);
    assert_int_equal(helo("localhost", &d), SMTP_P_OK);
    assert_int_equal(d, 9);
    assert_int_equal(helo("[192.0.2.1]", &d), SMTP_P_OK);
    assert_int_equal(d, 11);
    assert_int_equal(helo("[IPv6:::1]", &d), SMTP_P_OK);
    assert_int_equal(helo("mx.example.com (Postfix) trailing text", &d), SMTP_P_OK);
    assert_int_equal(d, 14);
    assert_int_equal(helo("b\xc3\xbc"
                          "cher.example",
                          &d),
                     SMTP_P_OK);
}

static void test_smtp_parse_helo_bad(void **st)
{
    (void)st;
    /* HELO names are lenient (Postfix-like): only an empty name, control
     * octets, broken UTF-8 and overlong names are refused. */
    static const char *bad[] = {"",     " mx.example.com", "mx\x01.example", "mx.example\t",
                                "\xc3", "mx\x7f",          "\xc3\x28"};
    static const char *lenient[] = {
        "mx..example",       "mx.example.", "-mx.example", "mx_1.example",
        "WIN-ABC_DEF.local", "[1.2.3]",     "user@mx",     "\xc3\xa9t\xc3\xa9.example"};
    size_t d = 7;
    for (size_t i = 0; i < sizeof(lenient) / sizeof(lenient[0]); i++)
        assert_int_equal(helo(lenient[i], &d), SMTP_P_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(helo(bad[i], &d), SMTP_P_SYNTAX);
        assert_int_equal(d, 0);
    }
    char big[300];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    for (size_t i = 60; i < sizeof(big) - 1; i += 61)
        big[i] = '.';
    assert_int_equal(helo(big, &d), SMTP_P_SYNTAX);
    big[255] = 0;
    assert_int_equal(helo(big, &d), SMTP_P_OK);
    assert_int_equal(d, 255);
}

static void test_smtp_parse_dsn_mail_params(void **state)
{
    (void)state;
    struct smtp_addr a;
    struct smtp_params p;
    assert_int_equal(mail("FROM:<s@y.test> RET=hdrs ENVID=QQ+2B1+3Dx", &a, &p), SMTP_P_OK);
    assert_int_equal(p.ret, SMTP_RET_HDRS);
    assert_string_equal(p.envid, "QQ+2B1+3Dx");
    assert_null(p.bad);
    assert_int_equal(mail("FROM:<s@y.test> RET=FULL", &a, &p), SMTP_P_OK);
    assert_int_equal(p.ret, SMTP_RET_FULL);
    assert_string_equal(p.envid, "");
    char envid[160];
    snprintf(envid, sizeof envid, "FROM:<s@y.test> ENVID=%0100d", 0); /* 100 octets: the limit */
    assert_int_equal(mail(envid, &a, &p), SMTP_P_OK);
    snprintf(envid, sizeof envid, "FROM:<s@y.test> ENVID=%0101d", 0);
    assert_int_equal(mail(envid, &a, &p), SMTP_P_BAD_DSN);
    assert_string_equal(p.bad, "ENVID");
    static const char *const bad[] = {
        "FROM:<s@y.test> RET=BODY",       "FROM:<s@y.test> RET",
        "FROM:<s@y.test> ENVID=",         "FROM:<s@y.test> ENVID=a+2",
        "FROM:<s@y.test> ENVID=a+2b",     "FROM:<s@y.test> ENVID=a+0A", /* decodes to LF */
        "FROM:<s@y.test> ENVID=a+ZZ",     "FROM:<s@y.test> ENVID=a=b",
        "FROM:<s@y.test> ENVID=\xc3\xa9",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(mail(bad[i], &a, &p), SMTP_P_BAD_DSN);
        assert_non_null(p.bad);
    }
    assert_int_equal(mail("FROM:<s@y.test> RET=FULL RET=HDRS", &a, &p), SMTP_P_DUP_DSN);
    assert_string_equal(p.bad, "RET");
    assert_int_equal(mail("FROM:<s@y.test> ENVID=a envid=b", &a, &p), SMTP_P_DUP_DSN);
    assert_string_equal(p.bad, "ENVID");
    /* RCPT parameters on MAIL and the other way round are unknown there */
    assert_int_equal(mail("FROM:<s@y.test> NOTIFY=NEVER", &a, &p), SMTP_P_BAD_PARAM);
    assert_int_equal(rcpt("TO:<u@x.test> RET=FULL", &a, &p), SMTP_P_BAD_PARAM);
}

static void test_smtp_parse_dsn_rcpt_params(void **state)
{
    (void)state;
    struct smtp_addr a;
    struct smtp_params p;
    assert_int_equal(rcpt("TO:<u@x.test> NOTIFY=failure,Delay ORCPT=rfc822;u+40x.test", &a, &p),
                     SMTP_P_OK);
    assert_int_equal(p.notify, SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY);
    assert_string_equal(p.orcpt, "rfc822;u+40x.test");
    assert_int_equal(rcpt("TO:<u@x.test> NOTIFY=NEVER", &a, &p), SMTP_P_OK);
    assert_int_equal(p.notify, SMTP_NOTIFY_NEVER);
    assert_int_equal(rcpt("TO:<u@x.test> NOTIFY=SUCCESS,FAILURE,DELAY", &a, &p), SMTP_P_OK);
    assert_int_equal(p.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY);
    static const char *const bad[] = {
        "TO:<u@x.test> NOTIFY=NEVER,FAILURE",
        "TO:<u@x.test> NOTIFY=FAILURE,FAILURE",
        "TO:<u@x.test> NOTIFY=",
        "TO:<u@x.test> NOTIFY=SUCCESS,",
        "TO:<u@x.test> NOTIFY=,SUCCESS",
        "TO:<u@x.test> NOTIFY=ALWAYS",
        "TO:<u@x.test> NOTIFY",
        "TO:<u@x.test> ORCPT=u@x.test",
        "TO:<u@x.test> ORCPT=;u@x.test",
        "TO:<u@x.test> ORCPT=rfc822;",
        "TO:<u@x.test> ORCPT=rfc822;u+4",
        "TO:<u@x.test> ORCPT=rfc(822;u@x.test",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(rcpt(bad[i], &a, &p), SMTP_P_BAD_DSN);
        assert_non_null(p.bad);
    }
    char line[700];
    int n = snprintf(line, sizeof line, "TO:<u@x.test> ORCPT=rfc822;%0493d", 0); /* 500 */
    assert_true(n > 0);
    assert_int_equal(rcpt(line, &a, &p), SMTP_P_OK);
    assert_int_equal(strlen(p.orcpt), SMTP_ORCPT_MAX);
    snprintf(line, sizeof line, "TO:<u@x.test> ORCPT=rfc822;%0494d", 0); /* 501 */
    assert_int_equal(rcpt(line, &a, &p), SMTP_P_BAD_DSN);
    assert_string_equal(p.bad, "ORCPT");
    assert_int_equal(rcpt("TO:<u@x.test> NOTIFY=NEVER NOTIFY=NEVER", &a, &p), SMTP_P_DUP_DSN);
    assert_string_equal(p.bad, "NOTIFY");
    assert_int_equal(rcpt("TO:<u@x.test> ORCPT=rfc822;a ORCPT=rfc822;b", &a, &p), SMTP_P_DUP_DSN);
}

static void test_smtp_parse_xtext_and_notify_helpers(void **state)
{
    (void)state;
    char buf[16], nt[32];
    assert_int_equal(smtp_xtext_decode("a+2Bb+3D", 8, buf, sizeof buf), 4);
    assert_string_equal(buf, "a+b=");
    assert_int_equal(smtp_xtext_decode("a+2b", 4, buf, sizeof buf), -1);
    assert_int_equal(smtp_xtext_decode("a+7F", 4, buf, sizeof buf), -1);
    assert_int_equal(smtp_xtext_decode("0123456789abcdef", 16, buf, sizeof buf), -1); /* no room */
    smtp_notify_format(SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY, nt, sizeof nt);
    assert_string_equal(nt, "SUCCESS,DELAY");
    unsigned m = 0;
    assert_true(smtp_notify_parse(nt, strlen(nt), &m));
    assert_int_equal(m, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY);
    smtp_notify_format(0, nt, sizeof nt);
    assert_string_equal(nt, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smtp_parse_dsn_mail_params),
        cmocka_unit_test(test_smtp_parse_dsn_rcpt_params),
        cmocka_unit_test(test_smtp_parse_xtext_and_notify_helpers),
        cmocka_unit_test(test_smtp_parse_verb_all),
        cmocka_unit_test(test_smtp_parse_verb_case_insensitive),
        cmocka_unit_test(test_smtp_parse_verb_arg_offset),
        cmocka_unit_test(test_smtp_parse_verb_unknown),
        cmocka_unit_test(test_smtp_parse_verb_not_implemented),
        cmocka_unit_test(test_smtp_parse_empty_input),
        cmocka_unit_test(test_smtp_parse_mail_basic),
        cmocka_unit_test(test_smtp_parse_mail_lenient_forms),
        cmocka_unit_test(test_smtp_parse_mail_null_sender),
        cmocka_unit_test(test_smtp_parse_rcpt_null_rejected),
        cmocka_unit_test(test_smtp_parse_missing_keyword),
        cmocka_unit_test(test_smtp_parse_bad_brackets),
        cmocka_unit_test(test_smtp_parse_dot_atom_rules),
        cmocka_unit_test(test_smtp_parse_relay_tricks_parsed),
        cmocka_unit_test(test_smtp_parse_source_route_bad),
        cmocka_unit_test(test_smtp_parse_quoted_local),
        cmocka_unit_test(test_smtp_parse_quoted_local_bad),
        cmocka_unit_test(test_smtp_parse_domain_rules),
        cmocka_unit_test(test_smtp_parse_trailing_dot_rejected),
        cmocka_unit_test(test_smtp_parse_address_literal),
        cmocka_unit_test(test_smtp_parse_address_literal_bad),
        cmocka_unit_test(test_smtp_parse_postmaster),
        cmocka_unit_test(test_smtp_parse_control_chars),
        cmocka_unit_test(test_smtp_parse_utf8),
        cmocka_unit_test(test_smtp_parse_utf8_invalid),
        cmocka_unit_test(test_smtp_parse_length_limits),
        cmocka_unit_test(test_smtp_parse_domain_too_long),
        cmocka_unit_test(test_smtp_parse_param_size),
        cmocka_unit_test(test_smtp_parse_param_body),
        cmocka_unit_test(test_smtp_parse_param_smtputf8_auth),
        cmocka_unit_test(test_smtp_parse_param_combined),
        cmocka_unit_test(test_smtp_parse_param_unknown_or_malformed),
        cmocka_unit_test(test_smtp_parse_rcpt_params),
        cmocka_unit_test(test_smtp_parse_helo_ok),
        cmocka_unit_test(test_smtp_parse_helo_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
