/* test_dnsbl_site.c - unit tests of core/dnsbl_site.c and of the DNSBL and
 * milter keys of core/config.c: site syntax (weights, answer filters with
 * numbers, ranges and sets), refused forms, answer matching, IPv4 and
 * IPv6 (nibble) query names, the normalised form the dump shows, and the
 * milters list. Single-threaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>

#include "addr.h"
#include "config.h"
#include "dnsbl_site.h"

/* parse_ok - parse s or fail the test. */
static void parse_ok(const char *s, struct dnsbl_site *site)
{
    char why[200];
    if (!dnsbl_site_parse(s, site, why, sizeof why))
        fail_msg("\"%s\" refused: %s", s, why);
}

/* fmt - the normalised form of s. */
static void fmt_is(const char *s, const char *want)
{
    struct dnsbl_site site;
    struct sb b = {0};
    parse_ok(s, &site);
    dnsbl_site_format(&site, &b);
    assert_string_equal(b.data, want);
    sb_free(&b);
}

/* test_dnsbl_site_forms - zone, weight, filter; normalised. */
static void test_dnsbl_site_forms(void **state)
{
    (void)state;
    fmt_is("zen.spamhaus.org*3", "zen.spamhaus.org*3");
    fmt_is("BL.SpamCop.net", "bl.spamcop.net*1");
    fmt_is("list.dnswl.org=127.0.[0..255].[2..3]*-4", "list.dnswl.org=127.0.[0..255].[2..3]*-4");
    fmt_is("b.test=127.0.0.[2;4;9..11]", "b.test=127.0.0.[2;4;9..11]*1");
}

/* test_dnsbl_site_refused - what is not a site. */
static void test_dnsbl_site_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "*3",
        "zone*",
        "zone*0",
        "zone*x",
        "zone*1001",
        "zo ne",
        "zone..x",
        "=127.0.0.2",
        "z.test=127.0.0",
        "z.test=127.0.0.256",
        "z.test=127.0.0.[3..2]",
        "z.test=127.0.0.[2",
        "z.test=127.0.0.2.5",
        "z.test=",
        "z.test=127.0.0.[]",
        "z.test=a.b.c.d",
    };
    char why[200];
    struct dnsbl_site site;
    for (size_t i = 0; i < MX_ARRAY_LEN(bad); i++)
        if (dnsbl_site_parse(bad[i], &site, why, sizeof why))
            fail_msg("accepted \"%s\"", bad[i]);
}

/* test_dnsbl_site_match - filters and the 127/8 default. */
static void test_dnsbl_site_match(void **state)
{
    (void)state;
    struct dnsbl_site s;
    parse_ok("wl.test=127.0.[0..255].[2..3]*-4", &s);
    assert_int_equal(s.weight, -4);
    assert_true(dnsbl_site_match(&s, (const uint8_t[]){127, 0, 9, 2}));
    assert_true(dnsbl_site_match(&s, (const uint8_t[]){127, 0, 255, 3}));
    assert_false(dnsbl_site_match(&s, (const uint8_t[]){127, 0, 9, 4}));
    assert_false(dnsbl_site_match(&s, (const uint8_t[]){127, 1, 9, 2}));
    parse_ok("bl.test=127.0.0.[2;4;9..11]", &s);
    assert_true(dnsbl_site_match(&s, (const uint8_t[]){127, 0, 0, 4}));
    assert_true(dnsbl_site_match(&s, (const uint8_t[]){127, 0, 0, 10}));
    assert_false(dnsbl_site_match(&s, (const uint8_t[]){127, 0, 0, 3}));
    parse_ok("any.test*2", &s);
    assert_true(dnsbl_site_match(&s, (const uint8_t[]){127, 0, 0, 2}));
    assert_true(dnsbl_site_match(&s, (const uint8_t[]){127, 255, 1, 200}));
    assert_false(dnsbl_site_match(&s, (const uint8_t[]){10, 0, 0, 2}));
}

/* test_dnsbl_site_qname - reversed octets, reversed nibbles. */
static void test_dnsbl_site_qname(void **state)
{
    (void)state;
    struct mx_addr a = {.family = AF_INET, .bytes = {192, 0, 2, 99}};
    char name[DNSBL_NAME_MAX + 1];
    assert_true(dnsbl_site_qname(&a, "zen.test", name, sizeof name));
    assert_string_equal(name, "99.2.0.192.zen.test");
    struct mx_addr b = {.family = AF_INET6};
    inet_pton(AF_INET6, "2001:db8::567:89ab", b.bytes);
    assert_true(dnsbl_site_qname(&b, "zen.test", name, sizeof name));
    assert_string_equal(name,
                        "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.test");
    struct mx_addr u = {.family = AF_UNSPEC};
    assert_false(dnsbl_site_qname(&u, "zen.test", name, sizeof name));
    assert_false(dnsbl_site_qname(&a, "zen.test", name, 12));
}

/* test_dnsbl_site_config_keys - dnsbl_* and milter* keys load and dump. */
static void test_dnsbl_site_config_keys(void **state)
{
    (void)state;
    static const char text[] = "dnsbl_sites = zen.test*3, wl.test=127.0.[0..255].[2..3]*-4\n"
                               "dnsbl_action = greet_pause\n"
                               "milters = rspamd=inet:127.0.0.1:11332, unix:/run/opendkim.sock\n"
                               "milter_default_action = accept\n";
    char err[300];
    struct config *c = cfg_load_string("t.conf", text, strlen(text), err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->ndnsbl_sites, 2);
    assert_int_equal(c->dnsbl_sites[1].weight, -4);
    assert_int_equal(c->dnsbl_threshold, 3);
    assert_int_equal(c->dnsbl_action, CFG_DNSBL_GREET_PAUSE);
    assert_int_equal(c->nmilters, 2);
    assert_string_equal(c->milters[0].name, "rspamd");
    assert_string_equal(c->milters[0].sock.text, "inet:127.0.0.1:11332");
    assert_string_equal(c->milters[1].name, "unix:/run/opendkim.sock");
    assert_int_equal(c->milter_default_action, CFG_MILTER_ACCEPT);
    cfg_free(c);
    static const char *const bad[] = {
        "dnsbl_sites = zen.test*0\n", "milters = tcp:127.0.0.1:1\n", "milters = a b=unix:/x\n",
        "milters = inet:127.0.0.1\n", "dnsbl_action = later\n",
    };
    for (size_t i = 0; i < MX_ARRAY_LEN(bad); i++) {
        c = cfg_load_string("t.conf", bad[i], strlen(bad[i]), err, sizeof err);
        if (c)
            fail_msg("accepted %s", bad[i]);
        assert_non_null(strstr(err, "t.conf:1:"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dnsbl_site_forms),       cmocka_unit_test(test_dnsbl_site_refused),
        cmocka_unit_test(test_dnsbl_site_match),       cmocka_unit_test(test_dnsbl_site_qname),
        cmocka_unit_test(test_dnsbl_site_config_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
