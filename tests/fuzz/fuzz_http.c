/* fuzz_http.c - libFuzzer target for core/http_req.c. Properties: the
 * status is one of the enum; an accepted request ends in CRLFCRLF within
 * the input and the bound, its spans lie inside it, and the bytes after it
 * do not change the result; every shorter prefix of an accepted or an
 * incomplete input is incomplete (incremental reads agree with one read);
 * the canonical form "GET <target> HTTP/1.<minor>\r\nHost: h\r\n\r\n" of an
 * accepted request parses back to the same target and version
 * (round trip). Single-threaded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(c)                                                                   \
    do {                                                                              \
        if (!(c)) {                                                                   \
            fprintf(stderr, "fuzz_http: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

#define FZ_PREFIXES 8

/* known_status - one of the enum's values. */
static int known_status(enum http_req_status st)
{
    return st == HTTP_REQ_INCOMPLETE || st == HTTP_REQ_OK || st == HTTP_REQ_BAD ||
           st == HTTP_REQ_METHOD || st == HTTP_REQ_TOO_LARGE || st == HTTP_REQ_VERSION;
}

/* check_accepted - the spans, the bound and the tail independence. */
static void check_accepted(const char *b, size_t size, const struct http_req *r)
{
    FZ_CHECK(r->len >= 18 && r->len <= size && r->len <= HTTP_REQ_MAX);
    FZ_CHECK(memcmp(b + r->len - 4, "\r\n\r\n", 4) == 0);
    FZ_CHECK(r->path >= b && r->path + r->path_len <= b + r->len && r->path_len >= 1);
    FZ_CHECK(r->path[0] == '/' && memchr(r->path, '?', r->path_len) == NULL);
    FZ_CHECK(!r->query || (r->query == r->path + r->path_len + 1 && r->query[-1] == '?'));
    FZ_CHECK(r->minor <= 1 && r->nheaders <= HTTP_HEADERS_MAX);
    struct http_req again;
    FZ_CHECK(http_req_parse(b, r->len, &again) == HTTP_REQ_OK);
    FZ_CHECK(again.len == r->len && again.path == r->path && again.path_len == r->path_len);
}

/* check_round_trip - the canonical form of r parses to the same request. */
static void check_round_trip(const struct http_req *r)
{
    static char out[HTTP_REQ_MAX * 2];
    size_t tlen = r->path_len + (r->query ? r->query_len + 1 : 0);
    int n = snprintf(out, sizeof out, "GET %.*s HTTP/1.%u\r\nHost: h\r\n\r\n", (int)tlen, r->path,
                     r->minor);
    FZ_CHECK(n > 0 && (size_t)n < sizeof out);
    struct http_req c;
    enum http_req_status st = http_req_parse(out, (size_t)n, &c);
    if ((size_t)n > HTTP_REQ_MAX) { /* the Host line made it too long */
        FZ_CHECK(st == HTTP_REQ_TOO_LARGE);
        return;
    }
    FZ_CHECK(st == HTTP_REQ_OK);
    FZ_CHECK(c.minor == r->minor && c.path_len == r->path_len);
    FZ_CHECK(memcmp(c.path, r->path, r->path_len) == 0);
    FZ_CHECK((c.query == NULL) == (r->query == NULL) && c.query_len == r->query_len);
    FZ_CHECK(!c.query || memcmp(c.query, r->query, r->query_len) == 0);
    FZ_CHECK(c.nheaders == 1);
}

/* LLVMFuzzerTestOneInput - one request's bytes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *b = (const char *)data;
    struct http_req r;
    enum http_req_status st = http_req_parse(b, size, &r);
    FZ_CHECK(known_status(st));
    size_t whole = size;
    if (st == HTTP_REQ_OK) {
        check_accepted(b, size, &r);
        check_round_trip(&r);
        whole = r.len;
    }
    if (st == HTTP_REQ_OK || st == HTTP_REQ_INCOMPLETE) {
        for (unsigned i = 0; i < FZ_PREFIXES && whole > 0; i++) {
            size_t k = (whole * i) / FZ_PREFIXES + (i == FZ_PREFIXES - 1 ? whole / 8 : 0);
            k = k >= whole ? whole - 1 : k;
            struct http_req p;
            FZ_CHECK(http_req_parse(b, k, &p) == HTTP_REQ_INCOMPLETE);
        }
    }
    return 0;
}
