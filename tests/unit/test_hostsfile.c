/* test_hostsfile.c - unit tests of core/hostsfile.c: a typical Debian
 * /etc/hosts (IPv4 and IPv6 lines, aliases, comments), case and trailing
 * dots, names on several lines, lines that are no entries (bad addresses,
 * scopes, a name in a comment, CRLF, no newline at the end), the bound on
 * the addresses stored, and text that is not NUL-terminated. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "hostsfile.h"

static const char DEBIAN[] = "127.0.0.1\tlocalhost\n"
                             "127.0.1.1\tgw.example.org\tgw\n"
                             "\n"
                             "# The following lines are desirable for IPv6 capable hosts\n"
                             "::1     localhost ip6-localhost ip6-loopback\n"
                             "ff02::1 ip6-allnodes\n"
                             "10.1.2.3  mx.internal  relay   # the internal relay\n"
                             "  2001:db8::25 mx.internal\n";

/* lookup - hosts_lookup over a NUL-terminated text. */
static size_t lookup(const char *text, const char *name, struct hosts_addr *out, size_t max)
{
    return hosts_lookup(text, strlen(text), name, out, max);
}

/* assert_addr - a is family / the text form t. */
static void assert_addr(const struct hosts_addr *a, int family, const char *t)
{
    uint8_t want[16] = {0};
    assert_int_equal(a->family, family);
    assert_int_equal(inet_pton(family, t, want), 1);
    assert_memory_equal(a->addr, want, family == AF_INET ? 4 : 16);
}

static void test_hostsfile_debian_file(void **state)
{
    (void)state;
    struct hosts_addr a[8];
    assert_int_equal(lookup(DEBIAN, "localhost", a, 8), 2); /* file order */
    assert_addr(&a[0], AF_INET, "127.0.0.1");
    assert_addr(&a[1], AF_INET6, "::1");
    assert_int_equal(lookup(DEBIAN, "ip6-loopback", a, 8), 1); /* the last alias */
    assert_addr(&a[0], AF_INET6, "::1");
    assert_int_equal(lookup(DEBIAN, "gw", a, 8), 1);
    assert_addr(&a[0], AF_INET, "127.0.1.1");
    assert_int_equal(lookup(DEBIAN, "mx.internal", a, 8), 2); /* two lines, leading blanks */
    assert_addr(&a[0], AF_INET, "10.1.2.3");
    assert_addr(&a[1], AF_INET6, "2001:db8::25");
    assert_int_equal(lookup(DEBIAN, "relay", a, 8), 1); /* an alias before a comment */
    assert_addr(&a[0], AF_INET, "10.1.2.3");
}

static void test_hostsfile_case_and_dot(void **state)
{
    (void)state;
    struct hosts_addr a[4];
    assert_int_equal(lookup(DEBIAN, "MX.Internal", a, 4), 2);
    assert_int_equal(lookup(DEBIAN, "mx.internal.", a, 4), 2);
    assert_int_equal(lookup("10.0.0.9 Relay.EXAMPLE\n", "relay.example", a, 4), 1);
    assert_int_equal(lookup(DEBIAN, "mx.interna", a, 4), 0);   /* a prefix */
    assert_int_equal(lookup(DEBIAN, "mx.internal2", a, 4), 0); /* longer */
    assert_int_equal(lookup(DEBIAN, "", a, 4), 0);
    assert_int_equal(lookup(DEBIAN, ".", a, 4), 0);
}

static void test_hostsfile_comments_and_junk(void **state)
{
    (void)state;
    struct hosts_addr a[4];
    assert_int_equal(lookup(DEBIAN, "desirable", a, 4), 0); /* in a comment line */
    assert_int_equal(lookup(DEBIAN, "internal", a, 4), 0);  /* after a '#' */
    assert_int_equal(lookup(DEBIAN, "127.0.0.1", a, 4), 0); /* the address field is no name */
    static const char junk[] = "999.1.1.1 bad\n"
                               "10.1 bad\n"
                               "fe80::1%eth0 bad\n"
                               "bad\n"
                               "#10.0.0.1 bad\n"
                               "10.0.0.2#x bad\n"
                               "10.0.0.3 good\r\n"
                               "10.0.0.4\tgood";
    assert_int_equal(lookup(junk, "bad", a, 4), 0);
    assert_int_equal(lookup(junk, "good", a, 4), 2); /* CRLF; no newline at the end */
    assert_addr(&a[0], AF_INET, "10.0.0.3");
    assert_addr(&a[1], AF_INET, "10.0.0.4");
    assert_int_equal(lookup(junk, "good\r", a, 4), 0);
    assert_int_equal(lookup("10.0.0.5 a b#c\n", "b#c", a, 4), 0);
}

static void test_hostsfile_duplicates_and_bound(void **state)
{
    (void)state;
    struct hosts_addr a[3];
    static const char many[] = "10.0.0.1 m\n10.0.0.1 m\n10.0.0.2 m m\n::1 m\n10.0.0.3 m\n";
    assert_int_equal(lookup(many, "m", a, 3), 3); /* each address once, at most max */
    assert_addr(&a[0], AF_INET, "10.0.0.1");
    assert_addr(&a[1], AF_INET, "10.0.0.2");
    assert_addr(&a[2], AF_INET6, "::1");
    assert_int_equal(lookup(many, "m", a, 0), 0);
    assert_int_equal(hosts_lookup(NULL, 0, "m", a, 3), 0);
}

static void test_hostsfile_not_nul_terminated(void **state)
{
    (void)state;
    static const char text[] = "10.0.0.7 edge";
    size_t n = sizeof(text) - 1;
    char *t = malloc(n); /* exact size: ASan sees any read past it */
    assert_non_null(t);
    memcpy(t, text, n);
    struct hosts_addr a[2];
    assert_int_equal(hosts_lookup(t, n, "edge", a, 2), 1);
    assert_int_equal(hosts_lookup(t, n - 1, "edge", a, 2), 0); /* "edg" */
    assert_int_equal(hosts_lookup(t, 4, "edge", a, 2), 0);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostsfile_debian_file),
        cmocka_unit_test(test_hostsfile_case_and_dot),
        cmocka_unit_test(test_hostsfile_comments_and_junk),
        cmocka_unit_test(test_hostsfile_duplicates_and_bound),
        cmocka_unit_test(test_hostsfile_not_nul_terminated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
