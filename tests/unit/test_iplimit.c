/* test_iplimit.c - the per-address counters of net/iplimit.c: the
 * unknown-recipient budget's windowed count (one thread; the sketch is the
 * same lock-free pattern as the connection-rate counter). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "iplimit.h"

/* v4 - an IPv4 socket address. */
static struct sockaddr_in v4(const char *ip)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(1234)};
    inet_pton(AF_INET, ip, &sa.sin_addr);
    return sa;
}

static void test_iplimit_unknown_counts_per_window(void **state)
{
    (void)state;
    struct sockaddr_in a = v4("192.0.2.10");
    for (uint32_t n = 1; n <= 5; n++)
        assert_int_equal(ipl_unknown_add((struct sockaddr *)&a, 7), n);
    /* a new window starts again from one */
    assert_int_equal(ipl_unknown_add((struct sockaddr *)&a, 8), 1);
    assert_int_equal(ipl_unknown_add((struct sockaddr *)&a, 8), 2);
}

static void test_iplimit_unknown_per_address(void **state)
{
    (void)state;
    struct sockaddr_in a = v4("198.51.100.1"), b = v4("198.51.100.2");
    assert_int_equal(ipl_unknown_add((struct sockaddr *)&a, 3), 1);
    assert_int_equal(ipl_unknown_add((struct sockaddr *)&a, 3), 2);
    assert_int_equal(ipl_unknown_add((struct sockaddr *)&b, 3), 1);
    /* the same client over IPv6 as a v4-mapped address shares the count */
    struct sockaddr_in6 m = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:198.51.100.1", &m.sin6_addr);
    assert_int_equal(ipl_unknown_add((struct sockaddr *)&m, 3), 3);
}

int main(void)
{
    ipl_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iplimit_unknown_counts_per_window),
        cmocka_unit_test(test_iplimit_unknown_per_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
