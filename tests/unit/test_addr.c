/* test_addr.c - unit tests of core/addr.c, the one normalisation of client
 * addresses: IPv4, IPv4-mapped IPv6 (an IPv4 client), other IPv6, and the
 * unknown address; the printable text, the port, the 16-octet key.
 * Description: struct mx_addr from socket addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"

/* from4 - mx_addr of text:port as AF_INET. */
static struct mx_addr from4(const char *text, uint16_t port)
{
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET, text, &in.sin_addr), 1);
    struct mx_addr a;
    mx_addr_from_sockaddr(&a, (struct sockaddr *)&in);
    return a;
}

/* from6 - mx_addr of text:port as AF_INET6. */
static struct mx_addr from6(const char *text, uint16_t port)
{
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET6, text, &in6.sin6_addr), 1);
    struct mx_addr a;
    mx_addr_from_sockaddr(&a, (struct sockaddr *)&in6);
    return a;
}

/* test_addr_ipv4 - an AF_INET client: bytes, port and text. */
static void test_addr_ipv4(void **state)
{
    (void)state;
    struct mx_addr a = from4("192.0.2.33", 40000);
    assert_int_equal(a.family, AF_INET);
    assert_int_equal(a.port, 40000);
    assert_string_equal(a.text, "192.0.2.33");
    assert_memory_equal(a.bytes, "\xc0\x00\x02\x21", 4);
}

/* test_addr_mapped_is_ipv4 - ::ffff:a.b.c.d is the IPv4 client a.b.c.d,
 * identical to the same address arriving as AF_INET. */
static void test_addr_mapped_is_ipv4(void **state)
{
    (void)state;
    struct mx_addr m = from6("::ffff:192.0.2.33", 40000);
    struct mx_addr a = from4("192.0.2.33", 40000);
    assert_int_equal(m.family, AF_INET);
    assert_string_equal(m.text, "192.0.2.33");
    assert_memory_equal(&m, &a, sizeof(m));
}

/* test_addr_ipv6 - other IPv6 addresses stay IPv6, in RFC 5952 text,
 * including the IPv4-compatible ::a.b.c.d. */
static void test_addr_ipv6(void **state)
{
    (void)state;
    struct mx_addr a = from6("2001:DB8:0:0::1", 25);
    assert_int_equal(a.family, AF_INET6);
    assert_int_equal(a.port, 25);
    assert_string_equal(a.text, "2001:db8::1");
    struct mx_addr c = from6("::192.0.2.33", 25);
    assert_int_equal(c.family, AF_INET6);
}

/* test_addr_unknown - NULL and non-IP families are the unknown address. */
static void test_addr_unknown(void **state)
{
    (void)state;
    struct mx_addr a;
    mx_addr_from_sockaddr(&a, NULL);
    assert_int_equal(a.family, AF_UNSPEC);
    assert_int_equal(a.port, 0);
    assert_string_equal(a.text, "unknown");
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    mx_addr_from_sockaddr(&a, (struct sockaddr *)&un);
    assert_int_equal(a.family, AF_UNSPEC);
    assert_string_equal(a.text, "unknown");
    uint8_t k[16], zero[16] = {0};
    mx_addr_key16(&a, k);
    assert_memory_equal(k, zero, 16);
}

/* test_addr_key16 - IPv4 keys in the mapped form; an IPv6 key is its
 * address; IPv4 and the IPv4-compatible form differ. */
static void test_addr_key16(void **state)
{
    (void)state;
    uint8_t k4[16], k6[16], kc[16];
    struct mx_addr a = from4("192.0.2.33", 1), b = from6("2001:db8::1", 1);
    struct mx_addr c = from6("::192.0.2.33", 1);
    mx_addr_key16(&a, k4);
    mx_addr_key16(&b, k6);
    mx_addr_key16(&c, kc);
    assert_memory_equal(k4, "\0\0\0\0\0\0\0\0\0\0\xff\xff\xc0\x00\x02\x21", 16);
    assert_memory_equal(k6, b.bytes, 16);
    assert_memory_not_equal(k4, kc, 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_ipv4),  cmocka_unit_test(test_addr_mapped_is_ipv4),
        cmocka_unit_test(test_addr_ipv6),  cmocka_unit_test(test_addr_unknown),
        cmocka_unit_test(test_addr_key16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
