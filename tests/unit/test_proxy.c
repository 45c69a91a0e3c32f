/* test_proxy.c - unit tests of core/proxy.c, the PROXY protocol v1/v2
 * header parser: the spec's examples, every prefix asks for more, errors
 * at the first impossible octet, the bounds (107-octet v1 line, the v2
 * block limit, TLV lengths), LOCAL and UNKNOWN, the TLVs read (SSL with
 * its version and cipher, AUTHORITY, CRC32C), round trips through the
 * test encoder (tests/fuzz/proxy_enc.h).
 * Description: PROXY header parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "../fuzz/proxy_enc.h"
#include "proxy.h"

/* parse_str - proxy_parse over a C string. */
static enum proxy_rc parse_str(const char *s, struct proxy_hdr *h, const char **why)
{
    return proxy_parse(s, strlen(s), h, why);
}

/* assert_prefixes_more - every proper prefix of buf[0..len) is PROXY_MORE. */
static void assert_prefixes_more(const void *buf, size_t len)
{
    struct proxy_hdr h;
    const char *why;
    for (size_t k = 0; k < len; k++)
        assert_int_equal(proxy_parse(buf, k, &h, &why), PROXY_MORE);
}

/* test_proxy_v1_tcp4 - the spec's TCP4 line; SMTP bytes after it are not
 * part of the header. */
static void test_proxy_v1_tcp4(void **state)
{
    (void)state;
    const char *line = "PROXY TCP4 192.0.2.10 198.51.100.1 56324 25\r\nEHLO x\r\n";
    struct proxy_hdr h;
    const char *why;
    assert_int_equal(parse_str(line, &h, &why), PROXY_DONE);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.len, strlen(line) - strlen("EHLO x\r\n"));
    assert_false(h.local);
    assert_int_equal(h.src.family, AF_INET);
    assert_string_equal(h.src.text, "192.0.2.10");
    assert_int_equal(h.src.port, 56324);
    assert_string_equal(h.dst.text, "198.51.100.1");
    assert_int_equal(h.dst.port, 25);
    assert_prefixes_more(line, h.len);
}

/* test_proxy_v1_tcp6 - TCP6, and a mapped IPv4 client is IPv4 (addr.c). */
static void test_proxy_v1_tcp6(void **state)
{
    (void)state;
    struct proxy_hdr h;
    const char *why;
    assert_int_equal(parse_str("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n", &h, &why),
                     PROXY_DONE);
    assert_int_equal(h.src.family, AF_INET6);
    assert_string_equal(h.src.text, "2001:db8::1");
    assert_int_equal(h.dst.port, 65535);
    assert_int_equal(parse_str("PROXY TCP6 ::ffff:192.0.2.7 ::1 1000 25\r\n", &h, &why),
                     PROXY_DONE);
    assert_int_equal(h.src.family, AF_INET);
    assert_string_equal(h.src.text, "192.0.2.7");
}

/* test_proxy_v1_unknown - UNKNOWN (with or without the rest) is local. */
static void test_proxy_v1_unknown(void **state)
{
    (void)state;
    struct proxy_hdr h;
    const char *why;
    assert_int_equal(parse_str("PROXY UNKNOWN\r\n", &h, &why), PROXY_DONE);
    assert_true(h.local);
    assert_false(h.health);
    assert_int_equal(parse_str("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", &h, &why), PROXY_DONE);
    assert_true(h.local);
}

/* test_proxy_v1_bad - malformed lines are errors with a reason. */
static void test_proxy_v1_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n",       /* bare LF */
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n",   /* a field too many */
        "PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n",       /* one too few */
        "PROXY TCP4  192.0.2.1 192.0.2.2 1 2\r\n",    /* two spaces */
        "PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n",   /* v6 under TCP4 */
        "PROXY TCP6 192.0.2.1 2001:db8::2 1 2\r\n",   /* v4 under TCP6 */
        "PROXY TCP4 192.0.2.1 192.0.2.2 65536 2\r\n", /* port range */
        "PROXY TCP4 192.0.2.1 192.0.2.2 01 2\r\n",    /* leading zero */
        "PROXY TCP4 192.0.2.1 192.0.2.2 -1 2\r\n",    "PROXY TCP4 192.0.2.001 192.0.2.2 1 2\r\n",
        "PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n",     "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\r\n",
        "PROXY TCP4 192.0.2.1\t192.0.2.2 1 2\r\n",    "PROXY \r\n",
        "proxy TCP4 192.0.2.1 192.0.2.2 1 2\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct proxy_hdr h;
        const char *why = NULL;
        assert_int_equal(parse_str(bad[i], &h, &why), PROXY_ERROR);
        assert_non_null(why);
        assert_true(why[0] != 0);
    }
}

/* test_proxy_v1_length_bound - 107 octets is the longest line: a longer
 * one fails at its 107th octet, without waiting for the CRLF. */
static void test_proxy_v1_length_bound(void **state)
{
    (void)state;
    char line[200];
    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    memcpy(line + PROXY_V1_MAX - 2, "\r\n", 2);
    struct proxy_hdr h;
    const char *why;
    assert_int_equal(proxy_parse(line, PROXY_V1_MAX, &h, &why), PROXY_DONE);
    assert_int_equal(h.len, PROXY_V1_MAX);
    memset(line + PROXY_V1_MAX - 2, 'x', 2);
    assert_int_equal(proxy_parse(line, PROXY_V1_MAX - 1, &h, &why), PROXY_MORE);
    assert_int_equal(proxy_parse(line, PROXY_V1_MAX, &h, &why), PROXY_ERROR);
    assert_string_equal(why, "v1: line longer than 107 octets");
}

/* test_proxy_not_a_header - SMTP, TLS or HTTP bytes fail at the first
 * octet that no header can start with. */
static void test_proxy_not_a_header(void **state)
{
    (void)state;
    struct proxy_hdr h;
    const char *why;
    assert_int_equal(proxy_parse("E", 1, &h, &why), PROXY_ERROR);
    assert_string_equal(why, "not a PROXY header");
    assert_int_equal(proxy_parse("\x16\x03\x01", 3, &h, &why), PROXY_ERROR);
    assert_int_equal(proxy_parse("PRO", 3, &h, &why), PROXY_MORE);
    assert_int_equal(proxy_parse("PROXX", 5, &h, &why), PROXY_ERROR);
    assert_int_equal(proxy_parse("\r\n\r\n\0\r\nQUIX", 12, &h, &why), PROXY_ERROR);
    assert_int_equal(proxy_parse("\r\n\r\n", 4, &h, &why), PROXY_MORE);
    assert_int_equal(proxy_parse("", 0, &h, &why), PROXY_MORE);
}

/* v2_tcp4 - a v2 PROXY TCP4 header 192.0.2.10:4000 -> 198.51.100.1:25. */
static struct penc v2_tcp4(void)
{
    struct penc e = {.version = 2, .kind = PENC_TCP4, .sport = 4000, .dport = 25};
    memcpy(e.src, "\xc0\x00\x02\x0a", 4);
    memcpy(e.dst, "\xc6\x33\x64\x01", 4);
    return e;
}

/* test_proxy_v2_tcp4 - addresses, ports, length; prefixes ask for more. */
static void test_proxy_v2_tcp4(void **state)
{
    (void)state;
    struct penc e = v2_tcp4();
    uint8_t buf[256];
    size_t n = penc_encode(&e, buf, sizeof(buf));
    assert_int_equal(n, 28);
    memcpy(buf + n, "EHLO", 4);
    struct proxy_hdr h;
    const char *why;
    assert_int_equal(proxy_parse(buf, n + 4, &h, &why), PROXY_DONE);
    assert_int_equal(h.version, 2);
    assert_int_equal(h.len, 28);
    assert_string_equal(h.src.text, "192.0.2.10");
    assert_int_equal(h.src.port, 4000);
    assert_string_equal(h.dst.text, "198.51.100.1");
    assert_false(h.ssl);
    assert_prefixes_more(buf, n);
}

/* test_proxy_v2_tcp6 - an IPv6 client. */
static void test_proxy_v2_tcp6(void **state)
{
    (void)state;
    struct penc e = {.version = 2, .kind = PENC_TCP6, .sport = 1, .dport = 465};
    inet_pton(AF_INET6, "2001:db8::77", e.src);
    inet_pton(AF_INET6, "2001:db8::1", e.dst);
    uint8_t buf[256];
    size_t n = penc_encode(&e, buf, sizeof(buf));
    struct proxy_hdr h;
    const char *why;
    assert_int_equal(proxy_parse(buf, n, &h, &why), PROXY_DONE);
    assert_int_equal(h.len, 52);
    assert_int_equal(h.src.family, AF_INET6);
    assert_string_equal(h.src.text, "2001:db8::77");
    assert_int_equal(h.dst.port, 465);
}

/* test_proxy_v2_local - LOCAL is the balancer's own health check: no
 * client address, whatever the block holds. */
static void test_proxy_v2_local(void **state)
{
    (void)state;
    struct penc e = {.version = 2, .kind = PENC_LOCAL};
    uint8_t buf[64];
    size_t n = penc_encode(&e, buf, sizeof(buf));
    assert_int_equal(n, 16);
    struct proxy_hdr h;
    const char *why;
    assert_int_equal(proxy_parse(buf, n, &h, &why), PROXY_DONE);
    assert_true(h.local);
    assert_true(h.health);
    assert_int_equal(h.len, 16);
}

/* test_proxy_v2_ssl - PP2_TYPE_SSL with version and cipher, AUTHORITY,
 * NOOP padding and a matching CRC32C. */
static void test_proxy_v2_ssl(void **state)
{
    (void)state;
    struct penc e = v2_tcp4();
    e.ssl = true;
    e.ssl_client = PP2_CLIENT_SSL;
    e.ssl_version = "TLSv1.3";
    e.ssl_cipher = "TLS_AES_256_GCM_SHA384";
    e.authority = "mx.example.test";
    e.noop = 7;
    e.crc = true;
    uint8_t buf[512];
    size_t n = penc_encode(&e, buf, sizeof(buf));
    struct proxy_hdr h;
    const char *why;
    assert_int_equal(proxy_parse(buf, n, &h, &why), PROXY_DONE);
    assert_int_equal(h.len, n);
    assert_true(h.ssl);
    assert_int_equal(h.ssl_verify, 0);
    assert_string_equal(h.ssl_version, "TLSv1.3");
    assert_string_equal(h.ssl_cipher, "TLS_AES_256_GCM_SHA384");
    assert_string_equal(h.authority, "mx.example.test");
    assert_prefixes_more(buf, n);
    buf[20] ^= 1; /* one address bit: the CRC no longer matches */
    assert_int_equal(proxy_parse(buf, n, &h, &why), PROXY_ERROR);
    assert_string_equal(why, "v2: PP2_TYPE_CRC32C does not match");
}

/* test_proxy_v2_ssl_without_client_bit - PP2_TYPE_SSL without
 * PP2_CLIENT_SSL: the client did not use TLS. */
static void test_proxy_v2_ssl_without_client_bit(void **state)
{
    (void)state;
    struct penc e = v2_tcp4();
    e.ssl = true;
    uint8_t buf[256];
    size_t n = penc_encode(&e, buf, sizeof(buf));
    struct proxy_hdr h;
    const char *why;
    assert_int_equal(proxy_parse(buf, n, &h, &why), PROXY_DONE);
    assert_false(h.ssl);
}

/* test_proxy_v2_bounds - the block limit is checked from the fixed part
 * (no waiting for 64 KiB), TLVs must fit, families and commands known. */
static void test_proxy_v2_bounds(void **state)
{
    (void)state;
    struct penc e = v2_tcp4();
    uint8_t buf[256];
    size_t n = penc_encode(&e, buf, sizeof(buf));
    struct proxy_hdr h;
    const char *why;
    uint8_t big[16];
    memcpy(big, buf, 16);
    big[14] = (PROXY_V2_LEN_MAX + 1) >> 8;
    big[15] = (PROXY_V2_LEN_MAX + 1) & 0xff;
    assert_int_equal(proxy_parse(big, 16, &h, &why), PROXY_ERROR);
    /* a TLV claiming more than the block holds */
    uint8_t t[64];
    memcpy(t, buf, n);
    memcpy(t + n, "\x04\x00\x09\x00", 4);
    t[15] = (uint8_t)(n - 16 + 4);
    assert_int_equal(proxy_parse(t, n + 4, &h, &why), PROXY_ERROR);
    assert_string_equal(why, "v2: TLV longer than the header");
    /* an address block shorter than AF_INET needs */
    memcpy(t, buf, n);
    t[15] = 11;
    assert_int_equal(proxy_parse(t, 16, &h, &why), PROXY_ERROR);
    memcpy(t, buf, n);
    t[12] = 0x31; /* version 3 */
    assert_int_equal(proxy_parse(t, 13, &h, &why), PROXY_ERROR);
    t[12] = 0x22; /* command 2 */
    assert_int_equal(proxy_parse(t, 13, &h, &why), PROXY_ERROR);
    t[12] = 0x21;
    t[13] = 0x12; /* AF_INET over DGRAM */
    assert_int_equal(proxy_parse(t, 14, &h, &why), PROXY_ERROR);
    t[13] = 0x31; /* AF_UNIX */
    assert_int_equal(proxy_parse(t, 14, &h, &why), PROXY_ERROR);
    t[13] = 0x01; /* AF_UNSPEC: accepted, the connection's address is used */
    assert_int_equal(proxy_parse(t, n, &h, &why), PROXY_DONE);
    assert_true(h.local);
    assert_false(h.health);
}

/* test_proxy_round_trip - encoded headers of every kind parse back to the
 * same fields at every split, with SMTP bytes behind them. */
static void test_proxy_round_trip(void **state)
{
    (void)state;
    for (unsigned i = 0; i < 12; i++) {
        struct penc e = {.version = i % 2 ? 2 : 1,
                         .kind = (enum penc_kind)(i / 2 % 3),
                         .sport = (uint16_t)(i * 977),
                         .dport = 25};
        if (e.version == 2 && e.kind == PENC_UNKNOWN)
            e.kind = PENC_LOCAL;
        for (unsigned k = 0; k < 16; k++)
            e.src[k] = (uint8_t)(0x20 + i + k), e.dst[k] = (uint8_t)(0x30 + k);
        e.ssl = i > 6;
        e.ssl_client = PP2_CLIENT_SSL;
        e.ssl_version = "TLSv1.2";
        uint8_t buf[512];
        size_t n = penc_encode(&e, buf, sizeof(buf));
        memcpy(buf + n, "QUIT\r\n", 6);
        assert_prefixes_more(buf, n);
        for (size_t extra = 0; extra <= 6; extra++) {
            struct proxy_hdr h;
            const char *why;
            assert_int_equal(proxy_parse(buf, n + extra, &h, &why), PROXY_DONE);
            assert_int_equal(h.len, n);
            if (e.kind == PENC_TCP4 || e.kind == PENC_TCP6) {
                struct mx_addr want;
                struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(e.sport)};
                struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(e.sport)};
                memcpy(&s6.sin6_addr, e.src, 16);
                memcpy(&s4.sin_addr, e.src, 4);
                mx_addr_from_sockaddr(&want, e.kind == PENC_TCP4 ? (struct sockaddr *)&s4
                                                                 : (struct sockaddr *)&s6);
                assert_string_equal(h.src.text, want.text);
                assert_int_equal(h.src.port, e.sport);
                assert_int_equal(h.ssl, e.version == 2 && e.ssl);
            } else {
                assert_true(h.local);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proxy_v1_tcp4),
        cmocka_unit_test(test_proxy_v1_tcp6),
        cmocka_unit_test(test_proxy_v1_unknown),
        cmocka_unit_test(test_proxy_v1_bad),
        cmocka_unit_test(test_proxy_v1_length_bound),
        cmocka_unit_test(test_proxy_not_a_header),
        cmocka_unit_test(test_proxy_v2_tcp4),
        cmocka_unit_test(test_proxy_v2_tcp6),
        cmocka_unit_test(test_proxy_v2_local),
        cmocka_unit_test(test_proxy_v2_ssl),
        cmocka_unit_test(test_proxy_v2_ssl_without_client_bit),
        cmocka_unit_test(test_proxy_v2_bounds),
        cmocka_unit_test(test_proxy_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
