/* proxy.c - the PROXY protocol v1/v2 header parser (see proxy.h): pure
 * over the bytes received so far, stateless between calls (the caller
 * re-parses its growing prefix), so a split never changes the outcome.
 * Any thread. The only helpers it uses are addr.c (the one address
 * normalisation) and journal.c's crc32c (PP2_TYPE_CRC32C). */
#include "proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "journal.h"

#define V1_PREFIX "PROXY "
#define V1_PREFIX_LEN 6
#define V1_TOKENS_MAX 6 /* proto src dst sport dport + one too many */
#define V2_VERSION 2
#define V2_CMD_LOCAL 0
#define V2_CMD_PROXY 1
#define V2_AF_UNSPEC 0
#define V2_AF_INET 1
#define V2_AF_INET6 2
#define V2_AF_UNIX 3
#define V2_PROTO_STREAM 1
#define V2_PROTO_DGRAM 2
#define V2_INET_LEN 12  /* 4 + 4 + 2 + 2 */
#define V2_INET6_LEN 36 /* 16 + 16 + 2 + 2 */
#define TLV_HDR 3       /* type, length (2 octets, big endian) */
#define SSL_FIXED 5     /* client (1), verify (4) */
#define PORT_DIGITS_MAX 5

static const unsigned char v2_sig[PROXY_V2_SIG_LEN] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* fail - set the reason, return PROXY_ERROR. */
static enum proxy_rc fail(const char **why, const char *reason)
{
    *why = reason;
    return PROXY_ERROR;
}

/* be16 - a big-endian 16-bit value. */
static unsigned be16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* set_addr - a as the address of family af (octets b, port host order). */
static void set_addr(struct mx_addr *a, int af, const void *b, uint16_t port)
{
    if (af == AF_INET) {
        struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(port)};
        memcpy(&in.sin_addr, b, 4);
        mx_addr_from_sockaddr(a, (const struct sockaddr *)&in);
    } else {
        struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
        memcpy(&in6.sin6_addr, b, 16);
        mx_addr_from_sockaddr(a, (const struct sockaddr *)&in6);
    }
}

/* copy_text - n octets of a TLV value as printable ASCII into dst (cap
 * with the NUL), truncated; other octets become '?'. */
static void copy_text(char *dst, size_t cap, const unsigned char *v, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = v[i] >= 0x20 && v[i] < 0x7F ? (char)v[i] : '?';
    dst[n] = 0;
}

/* ---- version 1 ------------------------------------------------------------ */

/* v1_port - a decimal port 0..65535, no sign, no leading zero. */
static bool v1_port(const char *s, size_t n, uint16_t *out)
{
    if (n == 0 || n > PORT_DIGITS_MAX || (n > 1 && s[0] == '0'))
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > UINT16_MAX)
        return false;
    *out = (uint16_t)v;
    return true;
}

/* v1_addr - an address token of family af into raw (4 or 16 octets). */
static bool v1_addr(int af, const char *s, size_t n, unsigned char raw[16])
{
    char text[INET6_ADDRSTRLEN];
    if (n == 0 || n >= sizeof(text))
        return false;
    memcpy(text, s, n);
    text[n] = 0;
    return inet_pton(af, text, raw) == 1;
}

/* v1_split - the line's fields separated by single spaces; false when a
 * field is empty (two spaces, a trailing space). *nt = fields found (at
 * most V1_TOKENS_MAX: the last one holds the rest). */
static bool v1_split(const char *s, size_t n, const char *tok[], size_t tlen[], size_t *nt)
{
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= n && k < V1_TOKENS_MAX; i++) {
        if (i < n && (s[i] != ' ' || k == V1_TOKENS_MAX - 1))
            continue;
        if (i == start)
            return false;
        tok[k] = s + start;
        tlen[k++] = i - start;
        start = i + 1;
    }
    *nt = k;
    return true;
}

/* v1_fields - "TCP4|TCP6 src dst sport dport" or "UNKNOWN ..." (s is the
 * line after "PROXY ", without the CRLF). */
static enum proxy_rc v1_fields(const char *s, size_t n, struct proxy_hdr *h, const char **why)
{
    if (n >= 7 && memcmp(s, "UNKNOWN", 7) == 0 && (n == 7 || s[7] == ' ')) {
        h->local = true; /* the rest of an UNKNOWN line is ignored (spec 2.1) */
        return PROXY_DONE;
    }
    const char *tok[V1_TOKENS_MAX];
    size_t tl[V1_TOKENS_MAX], nt;
    if (!v1_split(s, n, tok, tl, &nt) || nt != 5)
        return fail(why, "v1: not 'TCP4|TCP6 src dst sport dport'");
    int af;
    if (tl[0] == 4 && memcmp(tok[0], "TCP4", 4) == 0)
        af = AF_INET;
    else if (tl[0] == 4 && memcmp(tok[0], "TCP6", 4) == 0)
        af = AF_INET6;
    else
        return fail(why, "v1: unknown protocol (TCP4, TCP6 or UNKNOWN)");
    unsigned char src[16], dst[16];
    uint16_t sport, dport;
    if (!v1_addr(af, tok[1], tl[1], src) || !v1_addr(af, tok[2], tl[2], dst))
        return fail(why, af == AF_INET ? "v1: bad TCP4 address" : "v1: bad TCP6 address");
    if (!v1_port(tok[3], tl[3], &sport) || !v1_port(tok[4], tl[4], &dport))
        return fail(why, "v1: bad port");
    set_addr(&h->src, af, src, sport);
    set_addr(&h->dst, af, dst, dport);
    return PROXY_DONE;
}

/* v1_parse - a v1 line: "PROXY " ... CRLF within PROXY_V1_MAX octets. */
static enum proxy_rc v1_parse(const unsigned char *b, size_t len, struct proxy_hdr *h,
                              const char **why)
{
    if (memcmp(b, V1_PREFIX, len < V1_PREFIX_LEN ? len : V1_PREFIX_LEN) != 0)
        return fail(why, "not a PROXY header");
    size_t lim = len < PROXY_V1_MAX ? len : PROXY_V1_MAX, i;
    for (i = 0; i < lim && b[i] != '\n'; i++) {
        if (b[i] == '\r' ? i + 1 < len && b[i + 1] != '\n' : b[i] < 0x20 || b[i] >= 0x7F)
            return fail(why, "v1: control or non-ASCII octet in the line");
    }
    if (i == lim)
        return len >= PROXY_V1_MAX ? fail(why, "v1: line longer than 107 octets") : PROXY_MORE;
    if (b[i - 1] != '\r')
        return fail(why, "v1: line not ended by CRLF");
    h->version = 1;
    h->len = i + 1;
    return v1_fields((const char *)b + V1_PREFIX_LEN, i - 1 - V1_PREFIX_LEN, h, why);
}

/* ---- version 2 ------------------------------------------------------------ */

/* v2_crc - PP2_TYPE_CRC32C: the CRC-32C of the whole header with the
 * value's 4 octets (at voff) taken as zero must equal the value. */
static bool v2_crc(const unsigned char *hdr, size_t hlen, size_t voff)
{
    static const unsigned char zero[4];
    uint32_t want = (uint32_t)hdr[voff] << 24 | (uint32_t)hdr[voff + 1] << 16 |
                    (uint32_t)hdr[voff + 2] << 8 | hdr[voff + 3];
    uint32_t c = crc32c(0, hdr, voff);
    c = crc32c(c, zero, sizeof(zero));
    c = crc32c(c, hdr + voff + 4, hlen - voff - 4);
    return c == want;
}

/* v2_ssl_sub - one sub-TLV of PP2_TYPE_SSL. */
static void v2_ssl_sub(unsigned type, const unsigned char *v, size_t n, struct proxy_hdr *h)
{
    if (type == PP2_SUBTYPE_SSL_VERSION)
        copy_text(h->ssl_version, sizeof(h->ssl_version), v, n);
    else if (type == PP2_SUBTYPE_SSL_CIPHER)
        copy_text(h->ssl_cipher, sizeof(h->ssl_cipher), v, n);
}

/* v2_tlvs - the TLVs in hdr[off..end) (depth 0: the header's, 1: inside
 * PP2_TYPE_SSL); each must fit exactly. Unknown types are skipped. */
static enum proxy_rc v2_tlvs(const unsigned char *hdr, size_t off, size_t end, int depth,
                             struct proxy_hdr *h, const char **why)
{
    while (off < end) {
        if (end - off < TLV_HDR)
            return fail(why, "v2: truncated TLV");
        unsigned type = hdr[off];
        size_t n = be16(hdr + off + 1), v = off + TLV_HDR;
        if (n > end - v)
            return fail(why, "v2: TLV longer than the header");
        if (depth > 0) {
            v2_ssl_sub(type, hdr + v, n, h);
        } else if (type == PP2_TYPE_AUTHORITY) {
            if (n > PROXY_AUTHORITY_MAX)
                return fail(why, "v2: PP2_TYPE_AUTHORITY longer than 255 octets");
            copy_text(h->authority, sizeof(h->authority), hdr + v, n);
        } else if (type == PP2_TYPE_CRC32C) {
            if (n != 4 || !v2_crc(hdr, h->len, v))
                return fail(why, "v2: PP2_TYPE_CRC32C does not match");
        } else if (type == PP2_TYPE_SSL) {
            if (n < SSL_FIXED)
                return fail(why, "v2: PP2_TYPE_SSL shorter than 5 octets");
            h->ssl_client = hdr[v];
            h->ssl_verify = (uint32_t)hdr[v + 1] << 24 | (uint32_t)hdr[v + 2] << 16 |
                            (uint32_t)hdr[v + 3] << 8 | hdr[v + 4];
            h->ssl = (h->ssl_client & PP2_CLIENT_SSL) != 0;
            if (v2_tlvs(hdr, v + SSL_FIXED, v + n, 1, h, why) != PROXY_DONE)
                return PROXY_ERROR;
        }
        off = v + n;
    }
    return PROXY_DONE;
}

/* v2_family - check the fam octet of a PROXY command: 0 and the address
 * block length it needs, or the reason it is refused. */
static const char *v2_family(unsigned fam, size_t *alen)
{
    unsigned af = fam >> 4, proto = fam & 0x0F;
    if (af > V2_AF_UNIX || proto > V2_PROTO_DGRAM)
        return "v2: unknown address family or protocol";
    if (af == V2_AF_UNSPEC) {
        *alen = 0; /* no address: the connection's own (spec 2.2) */
        return NULL;
    }
    if (af == V2_AF_UNIX)
        return "v2: AF_UNIX addresses are not supported";
    if (proto != V2_PROTO_STREAM)
        return "v2: only STREAM (TCP) is supported";
    *alen = af == V2_AF_INET ? V2_INET_LEN : V2_INET6_LEN;
    return NULL;
}

/* v2_addrs - the address block of a PROXY command (alen octets at 16). */
static void v2_addrs(const unsigned char *b, size_t alen, struct proxy_hdr *h)
{
    const unsigned char *a = b + PROXY_V2_FIXED;
    if (alen == V2_INET_LEN) {
        set_addr(&h->src, AF_INET, a, (uint16_t)be16(a + 8));
        set_addr(&h->dst, AF_INET, a + 4, (uint16_t)be16(a + 10));
    } else if (alen == V2_INET6_LEN) {
        set_addr(&h->src, AF_INET6, a, (uint16_t)be16(a + 32));
        set_addr(&h->dst, AF_INET6, a + 16, (uint16_t)be16(a + 34));
    } else {
        h->local = true;
    }
}

/* v2_parse - signature, ver_cmd, fam, len, then addresses and TLVs. */
static enum proxy_rc v2_parse(const unsigned char *b, size_t len, struct proxy_hdr *h,
                              const char **why)
{
    if (memcmp(b, v2_sig, len < PROXY_V2_SIG_LEN ? len : PROXY_V2_SIG_LEN) != 0)
        return fail(why, "not a PROXY header");
    if (len <= PROXY_V2_SIG_LEN)
        return PROXY_MORE;
    unsigned ver = b[12] >> 4, cmd = b[12] & 0x0F;
    if (ver != V2_VERSION)
        return fail(why, "v2: version is not 2");
    if (cmd > V2_CMD_PROXY)
        return fail(why, "v2: unknown command (LOCAL or PROXY)");
    if (len < 14)
        return PROXY_MORE;
    size_t alen = 0;
    const char *bad = cmd == V2_CMD_PROXY ? v2_family(b[13], &alen) : NULL;
    if (bad)
        return fail(why, bad);
    if (len < PROXY_V2_FIXED)
        return PROXY_MORE;
    size_t plen = be16(b + 14);
    if (plen > PROXY_V2_LEN_MAX)
        return fail(why, "v2: header longer than 1040 octets");
    if (plen < alen)
        return fail(why, "v2: address block shorter than its family needs");
    if (len < PROXY_V2_FIXED + plen)
        return PROXY_MORE;
    h->version = 2;
    h->len = PROXY_V2_FIXED + plen;
    if (cmd == V2_CMD_LOCAL) {
        h->local = h->health = true; /* the protocol block is discarded (spec 2.2) */
        return PROXY_DONE;
    }
    v2_addrs(b, alen, h);
    if (h->local)
        return PROXY_DONE; /* AF_UNSPEC: the block is ignored too */
    return v2_tlvs(b, PROXY_V2_FIXED + alen, h->len, 0, h, why);
}

/* proxy_parse - see proxy.h. */
enum proxy_rc proxy_parse(const void *buf, size_t len, struct proxy_hdr *h, const char **why)
{
    const unsigned char *b = buf;
    *why = "";
    memset(h, 0, sizeof(*h));
    if (len == 0)
        return PROXY_MORE;
    if (b[0] == 'P')
        return v1_parse(b, len, h, why);
    if (b[0] == v2_sig[0])
        return v2_parse(b, len, h, why);
    return fail(why, "not a PROXY header");
}
