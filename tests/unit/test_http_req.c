/* test_http_req.c - unit tests of core/http_req.c: the request forms the
 * metrics endpoint accepts (Prometheus, curl), incremental arrival, and
 * every refusal (bare LF, methods, versions, Host rules, bodies, obs-fold,
 * size and header-count bounds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http_req.h"

/* parse - http_req_parse over a C string. */
static enum http_req_status parse(const char *s, struct http_req *r)
{
    return http_req_parse(s, strlen(s), r);
}

static void test_http_req_prometheus_scrape(void **state)
{
    (void)state;
    const char *s = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\n"
                    "User-Agent: Prometheus/2.42.0\r\nAccept: application/openmetrics-text;"
                    "version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n"
                    "Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 1\r\n\r\n";
    struct http_req r;
    assert_int_equal(parse(s, &r), HTTP_REQ_OK);
    assert_int_equal(r.path_len, 8);
    assert_memory_equal(r.path, "/metrics", 8);
    assert_null(r.query);
    assert_int_equal(r.minor, 1);
    assert_int_equal(r.nheaders, 5);
    assert_int_equal(r.len, strlen(s));
}

static void test_http_req_query_and_http10(void **state)
{
    (void)state;
    struct http_req r;
    assert_int_equal(parse("GET /metrics?x=1 HTTP/1.0\r\n\r\n", &r), HTTP_REQ_OK);
    assert_int_equal(r.minor, 0);
    assert_int_equal(r.path_len, 8);
    assert_int_equal(r.query_len, 3);
    assert_memory_equal(r.query, "x=1", 3);
    assert_int_equal(r.nheaders, 0);
}

static void test_http_req_pipelined_bytes_not_consumed(void **state)
{
    (void)state;
    const char *one = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    char two[128];
    snprintf(two, sizeof two, "%sGET /x HTTP/1.1\r\n", one);
    struct http_req r;
    assert_int_equal(parse(two, &r), HTTP_REQ_OK);
    assert_int_equal(r.len, strlen(one));
}

static void test_http_req_incomplete_every_prefix(void **state)
{
    (void)state;
    const char *s = "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
    struct http_req r;
    for (size_t n = 0; n < strlen(s); n++)
        assert_int_equal(http_req_parse(s, n, &r), HTTP_REQ_INCOMPLETE);
    assert_int_equal(http_req_parse(s, strlen(s), &r), HTTP_REQ_OK);
}

static void test_http_req_bare_lf_and_cr(void **state)
{
    (void)state;
    struct http_req r;
    assert_int_equal(parse("GET / HTTP/1.1\nHost: a\n\n", &r), HTTP_REQ_BAD);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\n\r\n", &r), HTTP_REQ_BAD);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", &r), HTTP_REQ_BAD);
    assert_int_equal(parse("GET / HTTP/1.1\r\n\n", &r), HTTP_REQ_BAD);
}

static void test_http_req_methods(void **state)
{
    (void)state;
    struct http_req r;
    assert_int_equal(parse("POST /metrics HTTP/1.1\r\n", &r), HTTP_REQ_METHOD);
    assert_int_equal(parse("HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n", &r), HTTP_REQ_METHOD);
    assert_int_equal(parse("get /metrics HTTP/1.1\r\nHost: a\r\n\r\n", &r), HTTP_REQ_METHOD);
    assert_int_equal(parse("G(T / HTTP/1.1\r\n", &r), HTTP_REQ_BAD);
    assert_int_equal(parse(" GET / HTTP/1.1\r\n", &r), HTTP_REQ_BAD);
}

static void test_http_req_request_line_shapes(void **state)
{
    (void)state;
    struct http_req r;
    assert_int_equal(parse("GET  / HTTP/1.1\r\n", &r), HTTP_REQ_BAD);
    assert_int_equal(parse("GET / HTTP/1.1 \r\n", &r), HTTP_REQ_BAD);
    assert_int_equal(parse("GET http://a/ HTTP/1.1\r\n", &r), HTTP_REQ_BAD);
    assert_int_equal(parse("GET * HTTP/1.1\r\n", &r), HTTP_REQ_BAD);
    assert_int_equal(parse("GET /a#b HTTP/1.1\r\n", &r), HTTP_REQ_BAD);
    assert_int_equal(parse("GET /\x80 HTTP/1.1\r\n", &r), HTTP_REQ_BAD);
    assert_int_equal(parse("GET /\r\n", &r), HTTP_REQ_BAD);
    assert_int_equal(parse("\r\nGET / HTTP/1.1\r\n", &r), HTTP_REQ_BAD);
    assert_int_equal(parse("GET / http/1.1\r\n", &r), HTTP_REQ_BAD);
    assert_int_equal(parse("GET / HTTP/1.10\r\n", &r), HTTP_REQ_BAD);
}

static void test_http_req_versions(void **state)
{
    (void)state;
    struct http_req r;
    assert_int_equal(parse("GET / HTTP/2.0\r\n", &r), HTTP_REQ_VERSION);
    assert_int_equal(parse("GET / HTTP/1.2\r\n", &r), HTTP_REQ_VERSION);
    assert_int_equal(parse("GET / HTTP/0.9\r\n", &r), HTTP_REQ_VERSION);
}

static void test_http_req_host_rules(void **state)
{
    (void)state;
    struct http_req r;
    assert_int_equal(parse("GET / HTTP/1.1\r\n\r\n", &r), HTTP_REQ_BAD);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", &r), HTTP_REQ_BAD);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHOST:a\r\n\r\n", &r), HTTP_REQ_OK);
    assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &r), HTTP_REQ_OK);
}

static void test_http_req_headers_malformed(void **state)
{
    (void)state;
    struct http_req r;
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost : a\r\n\r\n", &r), HTTP_REQ_BAD);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", &r), HTTP_REQ_BAD);
    assert_int_equal(parse("GET / HTTP/1.1\r\n: v\r\n\r\n", &r), HTTP_REQ_BAD);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", &r), HTTP_REQ_BAD);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", &r), HTTP_REQ_BAD);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n", &r), HTTP_REQ_OK);
}

static void test_http_req_body_refused(void **state)
{
    (void)state;
    struct http_req r;
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", &r),
                     HTTP_REQ_BAD);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &r),
                     HTTP_REQ_BAD);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0 \r\n\r\n", &r),
                     HTTP_REQ_OK);
}

static void test_http_req_size_bound(void **state)
{
    (void)state;
    static char buf[HTTP_REQ_MAX + 64];
    struct http_req r;
    int n = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(buf + n, 'v', sizeof buf - (size_t)n);
    /* no CRLF within the bound: 431 as soon as more than HTTP_REQ_MAX arrived */
    assert_int_equal(http_req_parse(buf, HTTP_REQ_MAX, &r), HTTP_REQ_INCOMPLETE);
    assert_int_equal(http_req_parse(buf, HTTP_REQ_MAX + 1, &r), HTTP_REQ_TOO_LARGE);
    /* exactly HTTP_REQ_MAX octets with the empty line is fine */
    size_t fill = HTTP_REQ_MAX - (size_t)n - 4;
    memset(buf + n, 'v', fill);
    memcpy(buf + n + fill, "\r\n\r\n", 4);
    assert_int_equal(http_req_parse(buf, HTTP_REQ_MAX, &r), HTTP_REQ_OK);
    assert_int_equal(r.len, HTTP_REQ_MAX);
    buf[n] = 'w';
    memmove(buf + n + 1, buf + n, HTTP_REQ_MAX - (size_t)n);
    assert_int_equal(http_req_parse(buf, HTTP_REQ_MAX + 1, &r), HTTP_REQ_TOO_LARGE);
}

static void test_http_req_header_count_bound(void **state)
{
    (void)state;
    char buf[HTTP_REQ_MAX];
    struct http_req r;
    for (unsigned k = HTTP_HEADERS_MAX; k <= HTTP_HEADERS_MAX + 1; k++) {
        size_t n = (size_t)snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: a\r\n");
        for (unsigned i = 1; i < k; i++)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "X%u: y\r\n", i);
        n += (size_t)snprintf(buf + n, sizeof buf - n, "\r\n");
        assert_int_equal(http_req_parse(buf, n, &r),
                         k <= HTTP_HEADERS_MAX ? HTTP_REQ_OK : HTTP_REQ_TOO_LARGE);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_req_prometheus_scrape),
        cmocka_unit_test(test_http_req_query_and_http10),
        cmocka_unit_test(test_http_req_pipelined_bytes_not_consumed),
        cmocka_unit_test(test_http_req_incomplete_every_prefix),
        cmocka_unit_test(test_http_req_bare_lf_and_cr),
        cmocka_unit_test(test_http_req_methods),
        cmocka_unit_test(test_http_req_request_line_shapes),
        cmocka_unit_test(test_http_req_versions),
        cmocka_unit_test(test_http_req_host_rules),
        cmocka_unit_test(test_http_req_headers_malformed),
        cmocka_unit_test(test_http_req_body_refused),
        cmocka_unit_test(test_http_req_size_bound),
        cmocka_unit_test(test_http_req_header_count_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
