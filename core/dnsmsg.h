/* dnsmsg.h - DNS messages for SURBL/DNSBL and delivery hop names (RFC 1035,
 * RFC 3596): build a recursive query for the A or AAAA record of a name,
 * and parse the reply into a verdict (the addresses of that type in answer
 * order, their smallest TTL, NXDOMAIN, ...). Pure: no
 * I/O, no allocation, no global state; any thread may call these. The
 * parser never reads outside pkt[0..len), whatever the packet holds. */
#ifndef MXRING_DNSMSG_H
#define MXRING_DNSMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNSMSG_NAME_MAX 253 /* text form, without a trailing dot */
#define DNSMSG_LABEL_MAX 63
#define DNSMSG_WIRE_NAME_MAX 255
#define DNSMSG_HDR_LEN 12
#define DNSMSG_QUERY_MAX (DNSMSG_HDR_LEN + DNSMSG_WIRE_NAME_MAX + 4) /* + QTYPE, QCLASS */
#define DNSMSG_UDP_MAX 512  /* RFC 1035 4.2.1: the reply buffer a query needs */
#define DNSMSG_TYPE_A 1     /* RFC 1035 3.2.2 */
#define DNSMSG_TYPE_AAAA 28 /* RFC 3596 2.1 */
#define DNSMSG_ADDR_LEN 16  /* room for one address (A uses the first 4 octets) */
#define DNSMSG_ADDRS_MAX 4  /* addresses kept from one answer (the rest are ignored) */

/* What a reply says about the query. */
enum dnsmsg_status {
    DNSMSG_ANSWER = 0,  /* NOERROR with a record of the type: addr, naddr, ttl */
    DNSMSG_NODATA,      /* NOERROR without a record of the type for the name */
    DNSMSG_NXDOMAIN,    /* RCODE 3: the name does not exist */
    DNSMSG_SERVFAIL,    /* RCODE 2 */
    DNSMSG_RCODE_OTHER, /* FORMERR, NOTIMP, REFUSED, ...: see rcode */
    DNSMSG_TRUNCATED,   /* TC set and no record of the type in what arrived */
    DNSMSG_MISMATCH,    /* not the reply to this query (id, QR, opcode or
                           question differ): ignore it and keep waiting */
    DNSMSG_MALFORMED,   /* the reply to this query, but unparsable */
};

/* The parse result. Address i (i < naddr) is at addr + i * DNSMSG_ADDR_LEN
 * in network order: 4 octets for A, 16 for AAAA (dnsmsg_addr). */
struct dnsmsg_result {
    enum dnsmsg_status status;
    uint8_t rcode;
    uint8_t naddr; /* 1..DNSMSG_ADDRS_MAX with DNSMSG_ANSWER, else 0 */
    uint8_t addr[DNSMSG_ADDRS_MAX * DNSMSG_ADDR_LEN];
    uint32_t ttl; /* the smallest of theirs; RFC 2181 8: the top bit set reads as 0 */
};

/* dnsmsg_name_ok - name is 1..253 octets of LDH or '_' labels of 1..63
 * octets (one trailing dot allowed). */
bool dnsmsg_name_ok(const char *name);

/* dnsmsg_build - write a query with the given id, RD set, for the qtype/IN
 * record (DNSMSG_TYPE_A or DNSMSG_TYPE_AAAA) of name into buf[0..cap).
 * Returns its length, or 0 if the name is not valid (dnsmsg_name_ok), the
 * type is neither, or cap is too small (DNSMSG_QUERY_MAX always suffices).
 * The caller draws id at random for each query. */
size_t dnsmsg_build(uint16_t id, const char *name, uint16_t qtype, uint8_t *buf, size_t cap);

/* dnsmsg_parse - parse the reply pkt[0..len) to the query (id, name,
 * qtype). Follows CNAMEs within the answer section (in order) and reports
 * the first DNSMSG_ADDRS_MAX qtype/IN records of the name; compression
 * pointers are followed with a hop limit. A record broken after at least
 * one good address ends the walk with those. Returns r->status. */
enum dnsmsg_status dnsmsg_parse(const uint8_t *pkt, size_t len, uint16_t id, const char *name,
                                uint16_t qtype, struct dnsmsg_result *r);

/* dnsmsg_build_a - dnsmsg_build for DNSMSG_TYPE_A. */
size_t dnsmsg_build_a(uint16_t id, const char *name, uint8_t *buf, size_t cap);

/* dnsmsg_parse_a - dnsmsg_parse for DNSMSG_TYPE_A (r->addr[0..4) is the
 * first A record). */
enum dnsmsg_status dnsmsg_parse_a(const uint8_t *pkt, size_t len, uint16_t id, const char *name,
                                  struct dnsmsg_result *r);

/* dnsmsg_addr - address i of r (i < r->naddr). */
static inline const uint8_t *dnsmsg_addr(const struct dnsmsg_result *r, unsigned i)
{
    return r->addr + (size_t)i * DNSMSG_ADDR_LEN;
}

/* dnsmsg_status_name - a short lower-case name of a status for the log. */
const char *dnsmsg_status_name(enum dnsmsg_status st);

#endif
