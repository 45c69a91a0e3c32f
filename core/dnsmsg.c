/* dnsmsg.c - DNS query building and reply parsing for A and AAAA lookups
 * (RFC 1035 4.1, RFC 2181, RFC 3596). Every read of the packet goes through a bounds check;
 * compressed names are expanded with a hop limit, so pointer loops end.
 * Pure; any thread may call these. */
#include "dnsmsg.h"

#include <string.h>

#define DNS_FLAG_QR 0x8000u
#define DNS_FLAG_TC 0x0200u
#define DNS_FLAG_RD 0x0100u
#define DNS_OPCODE_SHIFT 11
#define DNS_OPCODE_MASK 0xfu
#define DNS_RCODE_MASK 0xfu
#define DNS_RCODE_NOERROR 0
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3
#define DNS_TYPE_CNAME 5
#define DNS_CLASS_IN 1
#define DNS_PTR_MASK 0xc0u  /* top two bits of a length octet: a pointer */
#define DNS_PTR_HOPS_MAX 64 /* pointers followed while expanding one name */
#define DNS_RR_FIXED 10     /* TYPE, CLASS, TTL, RDLENGTH */
#define DNS_A_LEN 4
#define DNS_AAAA_LEN 16
#define DNS_TTL_MAX 0x7fffffffu /* RFC 2181 8 */

/* Header field offsets (RFC 1035 4.1.1). */
enum { H_ID = 0, H_FLAGS = 2, H_QDCOUNT = 4, H_ANCOUNT = 6, H_NSCOUNT = 8, H_ARCOUNT = 10 };

/* get16 - big-endian 16 bits at p. */
static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

/* put16 - store v big-endian at p. */
static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* ldh - an octet allowed in a label we query. */
static bool ldh(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* lower - ASCII lower case. */
static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

/* name_wire - encode name into wire form (lower-cased) in w[]; returns its
 * length or 0 if the name is invalid. */
static size_t name_wire(const char *name, uint8_t w[DNSMSG_WIRE_NAME_MAX])
{
    size_t n = strnlen(name, DNSMSG_NAME_MAX + 2), len = 0, lp = 0;
    if (n > 0 && name[n - 1] == '.')
        n--;
    if (n == 0 || n > DNSMSG_NAME_MAX)
        return 0;
    w[0] = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && name[i] != '.') {
            if (!ldh((unsigned char)name[i]) || ++len > DNSMSG_LABEL_MAX)
                return 0;
            w[i + 1] = lower((uint8_t)name[i]);
            continue;
        }
        if (len == 0)
            return 0;
        w[lp] = (uint8_t)len; /* the length octet sits where the dot was */
        lp = i + 1;
        len = 0;
    }
    w[n + 1] = 0;
    return n + 2;
}

/* dnsmsg_name_ok - see dnsmsg.h. */
bool dnsmsg_name_ok(const char *name)
{
    uint8_t w[DNSMSG_WIRE_NAME_MAX];
    return name_wire(name, w) != 0;
}

/* rdata_len - the RDATA length of an address type, 0 for another type. */
static size_t rdata_len(uint16_t qtype)
{
    return qtype == DNSMSG_TYPE_A ? DNS_A_LEN : qtype == DNSMSG_TYPE_AAAA ? DNS_AAAA_LEN : 0;
}

/* dnsmsg_build - see dnsmsg.h. */
size_t dnsmsg_build(uint16_t id, const char *name, uint16_t qtype, uint8_t *buf, size_t cap)
{
    uint8_t w[DNSMSG_WIRE_NAME_MAX];
    size_t wl = name_wire(name, w);
    size_t total = DNSMSG_HDR_LEN + wl + 4;
    if (wl == 0 || cap < total || rdata_len(qtype) == 0)
        return 0;
    memset(buf, 0, DNSMSG_HDR_LEN);
    put16(buf + H_ID, id);
    put16(buf + H_FLAGS, DNS_FLAG_RD);
    put16(buf + H_QDCOUNT, 1);
    memcpy(buf + DNSMSG_HDR_LEN, w, wl);
    put16(buf + DNSMSG_HDR_LEN + wl, qtype);
    put16(buf + DNSMSG_HDR_LEN + wl + 2, DNS_CLASS_IN);
    return total;
}

/* dnsmsg_build_a - see dnsmsg.h. */
size_t dnsmsg_build_a(uint16_t id, const char *name, uint8_t *buf, size_t cap)
{
    return dnsmsg_build(id, name, DNSMSG_TYPE_A, buf, cap);
}

/* name_read - expand the name at p[off] into wire form (lower-cased) in
 * out[]; *next is the offset after the name where it starts. False if it
 * leaves the packet, uses a reserved label type, exceeds 255 octets or
 * follows more than DNS_PTR_HOPS_MAX pointers. */
static bool name_read(const uint8_t *p, size_t len, size_t off, uint8_t out[DNSMSG_WIRE_NAME_MAX],
                      size_t *olen, size_t *next)
{
    size_t n = 0, hops = 0;
    bool jumped = false;
    for (;;) {
        if (off >= len)
            return false;
        uint8_t l = p[off];
        if ((l & DNS_PTR_MASK) == DNS_PTR_MASK) {
            if (off + 1 >= len || ++hops > DNS_PTR_HOPS_MAX)
                return false;
            if (!jumped)
                *next = off + 2;
            jumped = true;
            off = ((size_t)(l & ~DNS_PTR_MASK) << 8) | p[off + 1];
            continue;
        }
        if (l & DNS_PTR_MASK)
            return false; /* 0x40 / 0x80: extended or reserved label types */
        if (n + 1 + l > DNSMSG_WIRE_NAME_MAX || off + 1 + l > len)
            return false;
        out[n++] = l;
        for (size_t i = 0; i < l; i++)
            out[n++] = lower(p[off + 1 + i]);
        off += 1 + (size_t)l;
        if (l == 0)
            break;
    }
    if (!jumped)
        *next = off;
    *olen = n;
    return true;
}

/* A name in wire form. */
struct wname {
    uint8_t b[DNSMSG_WIRE_NAME_MAX];
    size_t n;
};

/* wname_eq - equality of two lower-cased wire names. */
static bool wname_eq(const struct wname *a, const struct wname *b)
{
    return a->n == b->n && memcmp(a->b, b->b, a->n) == 0;
}

/* question_ok - the one question is (name, qtype, IN); *off moves past it. */
static bool question_ok(const uint8_t *p, size_t len, size_t *off, const struct wname *q,
                        uint16_t qtype)
{
    struct wname got;
    if (!name_read(p, len, *off, got.b, &got.n, off) || *off + 4 > len)
        return false;
    bool ok = wname_eq(&got, q) && get16(p + *off) == qtype && get16(p + *off + 2) == DNS_CLASS_IN;
    *off += 4;
    return ok;
}

/* One resource record's fixed part. */
struct rr {
    struct wname owner;
    uint16_t type, class;
    uint32_t ttl;
    size_t rdata, rdlen; /* offset and length of RDATA in the packet */
};

/* rr_read - the record at *off; *off moves past it. */
static bool rr_read(const uint8_t *p, size_t len, size_t *off, struct rr *rr)
{
    if (!name_read(p, len, *off, rr->owner.b, &rr->owner.n, off) || len - *off < DNS_RR_FIXED)
        return false;
    const uint8_t *f = p + *off;
    rr->type = get16(f);
    rr->class = get16(f + 2);
    rr->ttl = ((uint32_t)get16(f + 4) << 16) | get16(f + 6);
    rr->rdlen = get16(f + 8);
    rr->rdata = *off + DNS_RR_FIXED;
    if (rr->rdlen > len - rr->rdata)
        return false;
    *off = rr->rdata + rr->rdlen;
    return true;
}

/* answer_add - keep the address record rr (of the queried type). */
static void answer_add(const uint8_t *p, const struct rr *rr, struct dnsmsg_result *r)
{
    uint32_t ttl = rr->ttl > DNS_TTL_MAX ? 0 : rr->ttl;
    if (r->naddr == 0 || ttl < r->ttl)
        r->ttl = ttl;
    memcpy(r->addr + (size_t)r->naddr * DNSMSG_ADDR_LEN, p + rr->rdata, rr->rdlen);
    r->naddr++;
}

/* answer_rr - one answer record rr while walking: a qtype record of cur is
 * kept, a CNAME of cur moves cur to its target. False when rr is broken. */
static bool answer_rr(const uint8_t *p, const struct rr *rr, struct wname *cur, uint16_t qtype,
                      struct dnsmsg_result *r)
{
    if (rr->class != DNS_CLASS_IN || !wname_eq(&rr->owner, cur))
        return true;
    if (rr->type == qtype) {
        if (rr->rdlen != rdata_len(qtype))
            return false;
        answer_add(p, rr, r);
    } else if (rr->type == DNS_TYPE_CNAME) {
        size_t end;
        if (!name_read(p, rr->rdata + rr->rdlen, rr->rdata, cur->b, &cur->n, &end) ||
            end != rr->rdata + rr->rdlen)
            return false;
    }
    return true;
}

/* answers_walk - collect the qtype records of cur (following CNAMEs) among
 * the count answer records at off; a broken record ends the walk, and is
 * malformed only when nothing was found before it. */
static enum dnsmsg_status answers_walk(const uint8_t *p, size_t len, size_t off, unsigned count,
                                       struct wname *cur, uint16_t qtype, struct dnsmsg_result *r)
{
    struct rr rr;
    for (unsigned i = 0; i < count && r->naddr < DNSMSG_ADDRS_MAX; i++)
        if (!rr_read(p, len, &off, &rr) || !answer_rr(p, &rr, cur, qtype, r))
            return r->naddr ? DNSMSG_ANSWER : DNSMSG_MALFORMED;
    return r->naddr ? DNSMSG_ANSWER : DNSMSG_NODATA;
}

/* dnsmsg_parse - see dnsmsg.h. */
enum dnsmsg_status dnsmsg_parse(const uint8_t *pkt, size_t len, uint16_t id, const char *name,
                                uint16_t qtype, struct dnsmsg_result *r)
{
    struct wname q;
    size_t off = DNSMSG_HDR_LEN;
    memset(r, 0, sizeof(*r));
    q.n = name_wire(name, q.b);
    if (len < DNSMSG_HDR_LEN || q.n == 0 || rdata_len(qtype) == 0)
        return r->status = DNSMSG_MALFORMED;
    uint16_t flags = get16(pkt + H_FLAGS);
    if (get16(pkt + H_ID) != id || !(flags & DNS_FLAG_QR) ||
        ((flags >> DNS_OPCODE_SHIFT) & DNS_OPCODE_MASK) != 0 || get16(pkt + H_QDCOUNT) != 1 ||
        !question_ok(pkt, len, &off, &q, qtype))
        return r->status = DNSMSG_MISMATCH;
    r->rcode = (uint8_t)(flags & DNS_RCODE_MASK);
    switch (r->rcode) {
    case DNS_RCODE_NOERROR: break;
    case DNS_RCODE_NXDOMAIN: return r->status = DNSMSG_NXDOMAIN;
    case DNS_RCODE_SERVFAIL: return r->status = DNSMSG_SERVFAIL;
    default: return r->status = DNSMSG_RCODE_OTHER;
    }
    r->status = answers_walk(pkt, len, off, get16(pkt + H_ANCOUNT), &q, qtype, r);
    if (r->status == DNSMSG_NODATA && (flags & DNS_FLAG_TC))
        r->status = DNSMSG_TRUNCATED;
    if (r->status == DNSMSG_MALFORMED && (flags & DNS_FLAG_TC))
        r->status = DNSMSG_TRUNCATED; /* cut off mid-record */
    return r->status;
}

/* dnsmsg_parse_a - see dnsmsg.h. */
enum dnsmsg_status dnsmsg_parse_a(const uint8_t *pkt, size_t len, uint16_t id, const char *name,
                                  struct dnsmsg_result *r)
{
    return dnsmsg_parse(pkt, len, id, name, DNSMSG_TYPE_A, r);
}

/* dnsmsg_status_name - see dnsmsg.h. */
const char *dnsmsg_status_name(enum dnsmsg_status st)
{
    static const char *const names[] = {
        [DNSMSG_ANSWER] = "answer",     [DNSMSG_NODATA] = "nodata",
        [DNSMSG_NXDOMAIN] = "nxdomain", [DNSMSG_SERVFAIL] = "servfail",
        [DNSMSG_RCODE_OTHER] = "rcode", [DNSMSG_TRUNCATED] = "truncated",
        [DNSMSG_MISMATCH] = "mismatch", [DNSMSG_MALFORMED] = "malformed",
    };
    return ((unsigned)st < sizeof(names) / sizeof(names[0])) ? names[st] : "unknown";
}
