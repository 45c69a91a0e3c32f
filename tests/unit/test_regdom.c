/* test_regdom.c - unit tests of core/regdom.c: registered domains through
 * the Public Suffix List (ICANN and private sections, wildcards and
 * exceptions, unknown top-level labels), the reversed-octet IPv4 form, and
 * rejection of what cannot be reduced. Runs with the built-in list, then
 * again with the system list (regdom_init(NULL)); a private list file
 * proves that a loaded file is what the lookups use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "regdom.h"

/* reduce - regdom_reduce into a static buffer; kind into *k. */
static const char *reduce(const char *host, enum regdom_kind *k)
{
    static char out[REGDOM_MAX + 1];
    memset(out, 'Z', sizeof(out));
    *k = regdom_reduce(host, out, sizeof(out));
    return out;
}

/* expect_name - host reduces to the registered domain want. */
static void expect_name(const char *host, const char *want)
{
    enum regdom_kind k;
    const char *got = reduce(host, &k);
    assert_string_equal(got, want);
    assert_int_equal(k, REGDOM_NAME);
}

/* expect_none - host does not reduce; out is left empty. */
static void expect_none(const char *host)
{
    enum regdom_kind k;
    const char *got = reduce(host, &k);
    assert_int_equal(k, REGDOM_NONE);
    assert_string_equal(got, "");
}

static void test_regdom_names(void **state)
{
    (void)state;
    expect_name("a.b.example.co.uk", "example.co.uk");
    expect_name("example.co.uk", "example.co.uk");
    expect_name("www.example.com", "example.com");
    expect_name("WWW.Example.COM.", "example.com");
    expect_name("deep.sub.example.org", "example.org");
    expect_name("foo.bar.xn--p1ai", "bar.xn--p1ai");
    expect_name("x_y.example.net", "example.net");
}

static void test_regdom_wildcards_and_exceptions(void **state)
{
    (void)state;
    /* "*.kawasaki.jp" with the exception "!city.kawasaki.jp" */
    expect_name("a.b.c.kawasaki.jp", "b.c.kawasaki.jp");
    expect_name("www.city.kawasaki.jp", "city.kawasaki.jp");
    /* private section: each blogspot/github.io site is its own domain */
    expect_name("foo.blogspot.com", "foo.blogspot.com");
    expect_name("a.user.github.io", "user.github.io");
}

static void test_regdom_unknown_tld(void **state)
{
    (void)state;
    /* the default rule "*": the test zones of the e2e suite rely on it */
    expect_name("bad.example", "bad.example");
    expect_name("www.bad.example", "bad.example");
    expect_name("a.b.c.test", "c.test");
}

static void test_regdom_public_suffix_itself(void **state)
{
    (void)state;
    expect_none("co.uk");
    expect_none("com");
    expect_none("uk");
    expect_none("blogspot.com");
    expect_none("example");
}

static void test_regdom_ip(void **state)
{
    (void)state;
    enum regdom_kind k;
    assert_string_equal(reduce("1.2.3.4", &k), "4.3.2.1");
    assert_int_equal(k, REGDOM_IP);
    assert_string_equal(reduce("192.168.0.255", &k), "255.0.168.192");
    assert_int_equal(k, REGDOM_IP);
    assert_string_equal(reduce("0.0.0.0", &k), "0.0.0.0");
    assert_int_equal(k, REGDOM_IP);
    /* not dotted quads, and no name has a numeric top-level label */
    expect_none("1.2.3.4.5");
    expect_none("1.2.3.256");
    expect_none("1.2.3.0004");
    expect_none("1.2.3.");
    expect_none("01.2.3.4");
    expect_name("1.2.3.4.example", "4.example");
}

static void test_regdom_invalid(void **state)
{
    (void)state;
    char big[300];
    expect_none("");
    expect_none(".");
    expect_none("a..example.com");
    expect_none(".example.com");
    expect_none("exa mple.com");
    expect_none("ex\xc3\xa4mple.com");
    expect_none("example.com..");
    memset(big, 'a', 64);
    strcpy(big + 64, ".com");
    expect_none(big); /* a 64-octet label */
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    for (size_t i = 50; i < sizeof(big) - 1; i += 50)
        big[i] = '.';
    expect_none(big); /* 299 octets */
}

static void test_regdom_small_buffer(void **state)
{
    (void)state;
    char out[12];
    assert_int_equal(regdom_reduce("a.example.com", out, sizeof(out)), REGDOM_NAME);
    assert_string_equal(out, "example.com");
    assert_int_equal(regdom_reduce("a.example.org.uk", out, 11), REGDOM_NONE);
    assert_string_equal(out, "");
    assert_int_equal(regdom_reduce("10.20.30.40", out, 11), REGDOM_NONE);
    assert_int_equal(regdom_reduce("10.20.30.40", out, 12), REGDOM_IP);
    assert_string_equal(out, "40.30.20.10");
    assert_int_equal(regdom_reduce("a.example.com", out, 0), REGDOM_NONE);
}

/* group_setup_latest - load the system list for the second group. */
static int group_setup_latest(void **state)
{
    (void)state;
    if (!regdom_init(NULL))
        return -1;
    return strcmp(regdom_list(), REGDOM_SYSTEM_DAFSA) == 0 ||
                   strcmp(regdom_list(), REGDOM_SYSTEM_DAT) == 0
               ? 0
               : -1;
}

/* test_regdom_loaded_file_is_used - a list file with its own rule changes
 * the result (the built-in list knows no "corp.example"); a missing file
 * keeps the list in use. */
static void test_regdom_loaded_file_is_used(void **state)
{
    (void)state;
    char path[] = "/tmp/mxring-psl-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs("// test list\n===BEGIN ICANN DOMAINS===\ncorp.example\n===END ICANN DOMAINS===\n", f);
    fclose(f);
    expect_name("a.b.corp.example", "corp.example");
    assert_true(regdom_init(path));
    assert_string_equal(regdom_list(), path);
    expect_name("a.b.corp.example", "b.corp.example");
    assert_false(regdom_init("/nonexistent/public_suffix_list.dat"));
    assert_string_equal(regdom_list(), path);
    expect_name("a.b.corp.example", "b.corp.example");
    regdom_shutdown();
    assert_string_equal(regdom_list(), "libpsl built-in");
    expect_name("a.b.corp.example", "corp.example");
    unlink(path);
}

/* group_teardown_latest - release it. */
static int group_teardown_latest(void **state)
{
    (void)state;
    regdom_shutdown();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regdom_names),
        cmocka_unit_test(test_regdom_wildcards_and_exceptions),
        cmocka_unit_test(test_regdom_unknown_tld),
        cmocka_unit_test(test_regdom_public_suffix_itself),
        cmocka_unit_test(test_regdom_ip),
        cmocka_unit_test(test_regdom_invalid),
        cmocka_unit_test(test_regdom_small_buffer),
    };
    assert_string_equal(regdom_list(), "libpsl built-in");
    int rc = cmocka_run_group_tests_name("builtin", tests, NULL, NULL);
    rc += cmocka_run_group_tests_name("latest", tests, group_setup_latest, group_teardown_latest);
    const struct CMUnitTest file_tests[] = {
        cmocka_unit_test(test_regdom_loaded_file_is_used),
    };
    rc += cmocka_run_group_tests_name("file", file_tests, NULL, NULL);
    return rc;
}
