/* fuzz_proxy.c - libFuzzer target for core/proxy.c. Two properties:
 * (1) raw input: the outcome over every prefix is consistent with the
 *     whole (MORE until the header is complete, then DONE with the same
 *     length and fields; or MORE until the first impossible octet, then
 *     ERROR for every longer prefix);
 * (2) round trip: a header encoded from the input by the test encoder
 *     (proxy_enc.h), followed by SMTP bytes, parses back to the encoded
 *     fields at every split. Single-threaded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_enc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(c)                                                                    \
    do {                                                                               \
        if (!(c)) {                                                                    \
            fprintf(stderr, "fuzz_proxy: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                   \
        }                                                                              \
    } while (0)

/* fz_same - two parsed headers carry the same fields. */
static void fz_same(const struct proxy_hdr *a, const struct proxy_hdr *b)
{
    FZ_CHECK(a->version == b->version && a->len == b->len && a->local == b->local);
    FZ_CHECK(a->health == b->health && a->ssl == b->ssl);
    FZ_CHECK(strcmp(a->src.text, b->src.text) == 0 && a->src.port == b->src.port);
    FZ_CHECK(strcmp(a->ssl_version, b->ssl_version) == 0);
    FZ_CHECK(strcmp(a->authority, b->authority) == 0);
}

/* fz_prefixes - property (1) over buf[0..len). */
static void fz_prefixes(const uint8_t *buf, size_t len)
{
    struct proxy_hdr whole, h;
    const char *why;
    enum proxy_rc rc = proxy_parse(buf, len, &whole, &why);
    FZ_CHECK(rc != PROXY_ERROR || why[0]);
    FZ_CHECK(rc != PROXY_DONE || (whole.len > 0 && whole.len <= len && whole.len <= PROXY_HDR_MAX));
    if (rc == PROXY_MORE)
        FZ_CHECK(len < PROXY_HDR_MAX);
    bool seen_error = false;
    for (size_t k = 0; k <= len; k++) {
        enum proxy_rc r = proxy_parse(buf, k, &h, &why);
        if (rc == PROXY_DONE) {
            FZ_CHECK(r == (k < whole.len ? PROXY_MORE : PROXY_DONE));
            if (r == PROXY_DONE)
                fz_same(&h, &whole);
        } else if (rc == PROXY_ERROR) {
            FZ_CHECK(r != PROXY_DONE);
            FZ_CHECK(!seen_error || r == PROXY_ERROR);
            seen_error = r == PROXY_ERROR;
        } else {
            FZ_CHECK(r == PROXY_MORE);
        }
    }
}

/* fz_text - a printable text of at most max octets from the input. */
static const char *fz_text(const uint8_t **p, size_t *n, char *out, size_t max)
{
    size_t len = *n ? **p % (max + 1) : 0, i;
    if (*n) {
        (*p)++;
        (*n)--;
    }
    for (i = 0; i < len && i < *n; i++)
        out[i] = (char)(0x21 + (*p)[i] % 94);
    out[i] = 0;
    *p += i;
    *n -= i;
    return out;
}

/* fz_byte - the next input octet (0 when used up). */
static uint8_t fz_byte(const uint8_t **p, size_t *n)
{
    if (!*n)
        return 0;
    (*n)--;
    return *(*p)++;
}

/* fz_round_trip - property (2). */
static void fz_round_trip(const uint8_t *p, size_t n)
{
    struct penc e = {0};
    uint8_t f = fz_byte(&p, &n);
    e.version = f & 1 ? 2 : 1;
    e.kind = (enum penc_kind)(f >> 1 & 3);
    if (e.version == 1 && e.kind == PENC_LOCAL)
        e.kind = PENC_UNKNOWN;
    if (e.version == 2 && e.kind == PENC_UNKNOWN)
        e.kind = PENC_LOCAL;
    for (int i = 0; i < 16; i++)
        e.src[i] = fz_byte(&p, &n), e.dst[i] = fz_byte(&p, &n);
    e.sport = (uint16_t)(fz_byte(&p, &n) << 8 | fz_byte(&p, &n));
    e.dport = (uint16_t)(fz_byte(&p, &n) << 8 | fz_byte(&p, &n));
    char ver[40], ciph[70], auth[256];
    e.ssl = f & 0x08;
    e.ssl_client = fz_byte(&p, &n) & 7;
    e.ssl_verify = fz_byte(&p, &n);
    e.ssl_version = f & 0x10 ? fz_text(&p, &n, ver, 32) : NULL;
    e.ssl_cipher = f & 0x20 ? fz_text(&p, &n, ciph, 60) : NULL;
    e.authority = f & 0x40 ? fz_text(&p, &n, auth, 255) : NULL;
    e.crc = f & 0x80;
    e.noop = fz_byte(&p, &n) % 64;
    uint8_t buf[2048];
    size_t len = penc_encode(&e, buf, sizeof(buf) - 16);
    FZ_CHECK(len <= PROXY_HDR_MAX);
    memcpy(buf + len, "EHLO x\r\n", 8);
    struct proxy_hdr h;
    const char *why;
    FZ_CHECK(proxy_parse(buf, len + 8, &h, &why) == PROXY_DONE);
    FZ_CHECK(h.len == len && h.version == e.version);
    bool addressed = e.kind == PENC_TCP4 || e.kind == PENC_TCP6;
    FZ_CHECK(h.local == !addressed && h.health == (e.kind == PENC_LOCAL));
    if (addressed) {
        struct mx_addr want;
        struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(e.sport)};
        struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(e.sport)};
        memcpy(&s6.sin6_addr, e.src, 16);
        memcpy(&s4.sin_addr, e.src, 4);
        mx_addr_from_sockaddr(&want, e.kind == PENC_TCP4 ? (struct sockaddr *)&s4
                                                         : (struct sockaddr *)&s6);
        FZ_CHECK(strcmp(h.src.text, want.text) == 0 && h.src.port == e.sport);
    }
    if (e.version == 2 && addressed) {
        FZ_CHECK(h.ssl == (e.ssl && (e.ssl_client & PP2_CLIENT_SSL)));
        FZ_CHECK(strcmp(h.ssl_version, e.ssl && e.ssl_version ? e.ssl_version : "") == 0);
        FZ_CHECK(strcmp(h.ssl_cipher, e.ssl && e.ssl_cipher ? e.ssl_cipher : "") == 0);
        FZ_CHECK(strcmp(h.authority, e.authority ? e.authority : "") == 0);
    }
    fz_prefixes(buf, len + 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    fz_prefixes(data, size);
    fz_round_trip(data, size);
    return 0;
}
