/* test_iplimit.c - unit tests of net/iplimit.c (the count-min sketch of
 * per-address sessions and connection rates): acquire up to the limit and
 * release, independence of addresses, the port ignored, IPv4 and its
 * IPv4-mapped IPv6 form counted as one client while other IPv6 addresses
 * with the same low 32 bits stay distinct, the one-minute rate window, and
 * balanced counts after concurrent acquire/release (also run under TSan),
 * and the unknown-recipient budget's windowed count.
 * Description: session, rate and unknown-recipient limits per address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>

#include "addr.h"
#include "iplimit.h"

#define STRESS_THREADS 4
#define STRESS_ROUNDS 20000

/* v4 - an AF_INET address text:port. */
static struct sockaddr_in v4(const char *text, uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET, text, &a.sin_addr), 1);
    return a;
}

/* v6 - an AF_INET6 address text:port. */
static struct sockaddr_in6 v6(const char *text, uint16_t port)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET6, text, &a.sin6_addr), 1);
    return a;
}

/* ma - a socket address as the client address type of the limits. */
static struct mx_addr ma(const void *sa)
{
    struct mx_addr a;
    mx_addr_from_sockaddr(&a, sa);
    return a;
}

/* SA - x as a (temporary) struct mx_addr pointer. */
#define SA(x) ((struct mx_addr[1]){ma(&(x))})

/* test_iplimit_acquire_to_max - max sessions fit, the next is refused and
 * not counted; a release makes room for exactly one more. */
static void test_iplimit_acquire_to_max(void **state)
{
    (void)state;
    struct sockaddr_in a = v4("192.0.2.1", 1000);
    assert_true(ipl_acquire(SA(a), 3));
    assert_true(ipl_acquire(SA(a), 3));
    assert_true(ipl_acquire(SA(a), 3));
    assert_false(ipl_acquire(SA(a), 3));
    assert_false(ipl_acquire(SA(a), 3)); /* refusals are not counted */
    ipl_release(SA(a));
    assert_true(ipl_acquire(SA(a), 3));
    assert_false(ipl_acquire(SA(a), 3));
    for (int i = 0; i < 3; i++)
        ipl_release(SA(a));
    assert_true(ipl_acquire(SA(a), 1)); /* back to zero */
    ipl_release(SA(a));
}

/* test_iplimit_addresses_independent - one address at its limit does not
 * limit another; the port is not part of the key. */
static void test_iplimit_addresses_independent(void **state)
{
    (void)state;
    struct sockaddr_in a = v4("192.0.2.10", 1), a2 = v4("192.0.2.10", 65000);
    struct sockaddr_in b = v4("192.0.2.11", 1);
    assert_true(ipl_acquire(SA(a), 1));
    assert_false(ipl_acquire(SA(a2), 1)); /* same address, other port */
    assert_true(ipl_acquire(SA(b), 1));
    ipl_release(SA(b));
    ipl_release(SA(a2)); /* releases what a acquired: same key */
    assert_true(ipl_acquire(SA(a), 1));
    ipl_release(SA(a));
}

/* test_iplimit_mapped_is_ipv4 - 203.0.113.7 and ::ffff:203.0.113.7 are one
 * client: a session under one form counts against the other. */
static void test_iplimit_mapped_is_ipv4(void **state)
{
    (void)state;
    struct sockaddr_in a = v4("203.0.113.7", 25);
    struct sockaddr_in6 m = v6("::ffff:203.0.113.7", 25);
    assert_true(ipl_acquire(SA(a), 1));
    assert_false(ipl_acquire(SA(m), 1));
    ipl_release(SA(m));
    assert_true(ipl_acquire(SA(m), 1));
    assert_false(ipl_acquire(SA(a), 1));
    ipl_release(SA(a));
}

/* test_iplimit_ipv6_distinct - IPv6 addresses that end in the same 32 bits
 * as a mapped address (IPv4-compatible, NAT64, a global one) are other
 * clients, and differ from each other. */
static void test_iplimit_ipv6_distinct(void **state)
{
    (void)state;
    struct sockaddr_in6 m = v6("::ffff:203.0.113.8", 25);
    const char *others[] = {"::203.0.113.8", "64:ff9b::203.0.113.8", "2001:db8::cb00:7108",
                            "2001:db8:1::cb00:7108"};
    assert_true(ipl_acquire(SA(m), 1));
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        struct sockaddr_in6 o = v6(others[i], 25);
        assert_true(ipl_acquire(SA(o), 1));
    }
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        struct sockaddr_in6 o = v6(others[i], 25);
        assert_false(ipl_acquire(SA(o), 1)); /* each counted once, on its own */
        ipl_release(SA(o));
    }
    ipl_release(SA(m));
}

/* test_iplimit_rate_window - per_minute connections pass in one minute,
 * the next is refused; a new minute starts from zero. Refused ones count
 * (a client hammering stays refused for the minute). */
static void test_iplimit_rate_window(void **state)
{
    (void)state;
    struct sockaddr_in a = v4("198.51.100.5", 1);
    struct sockaddr_in b = v4("198.51.100.6", 1);
    uint32_t minute = 1000;
    for (int i = 0; i < 3; i++)
        assert_true(ipl_rate_ok(SA(a), 3, minute));
    assert_false(ipl_rate_ok(SA(a), 3, minute));
    assert_true(ipl_rate_ok(SA(b), 3, minute)); /* other client unaffected */
    assert_true(ipl_rate_ok(SA(a), 3, minute + 1));
    assert_true(ipl_rate_ok(SA(a), 3, minute + 1));
    assert_true(ipl_rate_ok(SA(a), 3, minute + 1));
    assert_false(ipl_rate_ok(SA(a), 3, minute + 1));
}

/* test_iplimit_rate_mapped - the rate of an IPv4 client is one counter
 * whichever form its address arrives in; a real IPv6 one is separate. */
static void test_iplimit_rate_mapped(void **state)
{
    (void)state;
    struct sockaddr_in a = v4("198.51.100.9", 1);
    struct sockaddr_in6 m = v6("::ffff:198.51.100.9", 1);
    struct sockaddr_in6 c = v6("::198.51.100.9", 1);
    uint32_t minute = 2000;
    assert_true(ipl_rate_ok(SA(a), 2, minute));
    assert_true(ipl_rate_ok(SA(m), 2, minute));
    assert_false(ipl_rate_ok(SA(a), 2, minute));
    assert_true(ipl_rate_ok(SA(c), 2, minute));
}

/* test_iplimit_unknown_counts_per_window - the unknown-recipient count
 * rises by one per call within a window and starts again in the next. */
static void test_iplimit_unknown_counts_per_window(void **state)
{
    (void)state;
    struct sockaddr_in a = v4("192.0.2.10", 1234);
    for (uint32_t n = 1; n <= 5; n++)
        assert_int_equal(ipl_unknown_add(SA(a), 7), n);
    /* a new window starts again from one */
    assert_int_equal(ipl_unknown_add(SA(a), 8), 1);
    assert_int_equal(ipl_unknown_add(SA(a), 8), 2);
}

/* test_iplimit_unknown_per_address - each address has its own count; the
 * same client as a v4-mapped IPv6 address shares it. */
static void test_iplimit_unknown_per_address(void **state)
{
    (void)state;
    struct sockaddr_in a = v4("198.51.100.1", 1234), b = v4("198.51.100.2", 1234);
    assert_int_equal(ipl_unknown_add(SA(a), 3), 1);
    assert_int_equal(ipl_unknown_add(SA(a), 3), 2);
    assert_int_equal(ipl_unknown_add(SA(b), 3), 1);
    struct sockaddr_in6 m = v6("::ffff:198.51.100.1", 0);
    assert_int_equal(ipl_unknown_add(SA(m), 3), 3);
}

/* stress_one - acquire and release one address many times. */
static void *stress_one(void *arg)
{
    const struct mx_addr *sa = arg;
    for (int i = 0; i < STRESS_ROUNDS; i++) {
        if (ipl_acquire(sa, STRESS_THREADS))
            ipl_release(sa);
        else
            return (void *)1; /* at most STRESS_THREADS are held at once */
    }
    return NULL;
}

/* test_iplimit_concurrent_balance - threads acquiring and releasing the
 * same address never exceed the limit they could reach and leave the
 * count at zero. */
static void test_iplimit_concurrent_balance(void **state)
{
    (void)state;
    struct sockaddr_in6 a = v6("2001:db8::77", 1);
    struct mx_addr m = ma(&a);
    pthread_t t[STRESS_THREADS];
    for (int i = 0; i < STRESS_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, stress_one, &m), 0);
    for (int i = 0; i < STRESS_THREADS; i++) {
        void *r;
        assert_int_equal(pthread_join(t[i], &r), 0);
        assert_null(r);
    }
    assert_true(ipl_acquire(SA(a), 1)); /* the count is back at zero */
    assert_false(ipl_acquire(SA(a), 1));
    ipl_release(SA(a));
}

int main(void)
{
    ipl_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iplimit_acquire_to_max),
        cmocka_unit_test(test_iplimit_addresses_independent),
        cmocka_unit_test(test_iplimit_mapped_is_ipv4),
        cmocka_unit_test(test_iplimit_ipv6_distinct),
        cmocka_unit_test(test_iplimit_rate_window),
        cmocka_unit_test(test_iplimit_rate_mapped),
        cmocka_unit_test(test_iplimit_concurrent_balance),
        cmocka_unit_test(test_iplimit_unknown_counts_per_window),
        cmocka_unit_test(test_iplimit_unknown_per_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
