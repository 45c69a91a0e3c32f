/* proxy_enc.h - a small PROXY protocol encoder for tests only (the server
 * never sends a header): v1 lines and v2 blocks with the TLVs the parser
 * reads (PP2_TYPE_SSL with version and cipher sub-TLVs, AUTHORITY,
 * CRC32C, NOOP padding), so tests and fuzz_proxy can encode a header,
 * parse it back and compare. Header-only; links core/journal.c (crc32c). */
#ifndef MXRING_TEST_PROXY_ENC_H
#define MXRING_TEST_PROXY_ENC_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "journal.h"
#include "proxy.h"

enum penc_kind { PENC_TCP4 = 0, PENC_TCP6, PENC_UNKNOWN, PENC_LOCAL };

struct penc {
    unsigned version;         /* 1 or 2 */
    enum penc_kind kind;      /* UNKNOWN: v1 only; LOCAL: v2 only */
    uint8_t src[16], dst[16]; /* 4 octets for TCP4 */
    uint16_t sport, dport;
    bool ssl; /* v2: PP2_TYPE_SSL */
    uint8_t ssl_client;
    uint32_t ssl_verify;
    const char *ssl_version; /* NULL = no sub-TLV */
    const char *ssl_cipher;
    const char *authority; /* NULL = no TLV */
    bool crc;              /* v2: a PP2_TYPE_CRC32C */
    unsigned noop;         /* v2: octets of PP2_TYPE_NOOP padding (0 = none) */
};

/* penc_put - append n octets, clipped at cap. */
static inline size_t penc_put(uint8_t *out, size_t off, size_t cap, const void *p, size_t n)
{
    if (off + n <= cap)
        memcpy(out + off, p, n);
    return off + n;
}

/* penc_tlv - append a TLV header (type, 16-bit length) and its value. */
static inline size_t penc_tlv(uint8_t *out, size_t off, size_t cap, uint8_t type, const void *v,
                              size_t n)
{
    uint8_t h[3] = {type, (uint8_t)(n >> 8), (uint8_t)n};
    off = penc_put(out, off, cap, h, 3);
    return penc_put(out, off, cap, v, n);
}

/* penc_v1 - "PROXY TCP4|TCP6|UNKNOWN ..." CRLF. */
static inline size_t penc_v1(const struct penc *e, uint8_t *out, size_t cap)
{
    char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN], line[160];
    int n;
    if (e->kind == PENC_UNKNOWN) {
        n = snprintf(line, sizeof(line), "PROXY UNKNOWN\r\n");
    } else {
        int af = e->kind == PENC_TCP4 ? AF_INET : AF_INET6;
        inet_ntop(af, e->src, s, sizeof(s));
        inet_ntop(af, e->dst, d, sizeof(d));
        n = snprintf(line, sizeof(line), "PROXY %s %s %s %u %u\r\n",
                     af == AF_INET ? "TCP4" : "TCP6", s, d, e->sport, e->dport);
    }
    return penc_put(out, 0, cap, line, (size_t)n);
}

/* penc_ssl - the PP2_TYPE_SSL value with its sub-TLVs into v. */
static inline size_t penc_ssl(const struct penc *e, uint8_t *v, size_t cap)
{
    uint8_t f[5] = {e->ssl_client, (uint8_t)(e->ssl_verify >> 24), (uint8_t)(e->ssl_verify >> 16),
                    (uint8_t)(e->ssl_verify >> 8), (uint8_t)e->ssl_verify};
    size_t off = penc_put(v, 0, cap, f, 5);
    if (e->ssl_version)
        off =
            penc_tlv(v, off, cap, PP2_SUBTYPE_SSL_VERSION, e->ssl_version, strlen(e->ssl_version));
    if (e->ssl_cipher)
        off = penc_tlv(v, off, cap, PP2_SUBTYPE_SSL_CIPHER, e->ssl_cipher, strlen(e->ssl_cipher));
    return off;
}

/* penc_v2 - signature, command, family, length, addresses, TLVs. */
static inline size_t penc_v2(const struct penc *e, uint8_t *out, size_t cap)
{
    static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
    bool local = e->kind == PENC_LOCAL, v4 = e->kind == PENC_TCP4;
    uint8_t fixed[4] = {local ? 0x20 : 0x21, local ? 0x00 : v4 ? 0x11 : 0x21, 0, 0};
    size_t off = penc_put(out, 0, cap, sig, 12);
    off = penc_put(out, off, cap, fixed, 4);
    if (!local) {
        size_t al = v4 ? 4 : 16;
        uint8_t ports[4] = {(uint8_t)(e->sport >> 8), (uint8_t)e->sport, (uint8_t)(e->dport >> 8),
                            (uint8_t)e->dport};
        off = penc_put(out, off, cap, e->src, al);
        off = penc_put(out, off, cap, e->dst, al);
        off = penc_put(out, off, cap, ports, 4);
        if (e->authority)
            off = penc_tlv(out, off, cap, PP2_TYPE_AUTHORITY, e->authority, strlen(e->authority));
        if (e->ssl) {
            uint8_t v[512];
            size_t n = penc_ssl(e, v, sizeof(v));
            off = penc_tlv(out, off, cap, PP2_TYPE_SSL, v, n <= sizeof(v) ? n : 0);
        }
        if (e->noop) {
            uint8_t pad[256] = {0};
            off = penc_tlv(out, off, cap, PP2_TYPE_NOOP, pad, e->noop % sizeof(pad));
        }
    }
    size_t crc_at = off + 3;
    if (e->crc && !local) {
        static const uint8_t zero[4];
        off = penc_tlv(out, off, cap, PP2_TYPE_CRC32C, zero, 4);
    }
    size_t plen = off - 16;
    if (off <= cap) {
        out[14] = (uint8_t)(plen >> 8);
        out[15] = (uint8_t)plen;
        if (e->crc && !local) {
            uint32_t c = crc32c(0, out, off);
            uint8_t be[4] = {(uint8_t)(c >> 24), (uint8_t)(c >> 16), (uint8_t)(c >> 8), (uint8_t)c};
            memcpy(out + crc_at, be, 4);
        }
    }
    return off;
}

/* penc_encode - the header of e into out; returns its length (> cap: it
 * did not fit and out is incomplete). */
static inline size_t penc_encode(const struct penc *e, uint8_t *out, size_t cap)
{
    return e->version == 1 ? penc_v1(e, out, cap) : penc_v2(e, out, cap);
}

#endif
