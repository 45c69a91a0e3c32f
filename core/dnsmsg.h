/* dnsmsg.h - DNS messages for the SURBL/URIBL filter (RFC 1035): build a
 * recursive query for the A record of a name, and parse the reply into a
 * verdict (address and TTL of the first A record, NXDOMAIN, ...). Pure: no
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
#define DNSMSG_UDP_MAX 512 /* RFC 1035 4.2.1: the reply buffer a query needs */

/* What a reply says about the query. */
enum dnsmsg_status {
    DNSMSG_ANSWER = 0,  /* NOERROR with an A record: addr and ttl are set */
    DNSMSG_NODATA,      /* NOERROR without an A record for the name */
    DNSMSG_NXDOMAIN,    /* RCODE 3: the name does not exist */
    DNSMSG_SERVFAIL,    /* RCODE 2 */
    DNSMSG_RCODE_OTHER, /* FORMERR, NOTIMP, REFUSED, ...: see rcode */
    DNSMSG_TRUNCATED,   /* TC set and no A record in what arrived */
    DNSMSG_MISMATCH,    /* not the reply to this query (id, QR, opcode or
                           question differ): ignore it and keep waiting */
    DNSMSG_MALFORMED,   /* the reply to this query, but unparsable */
};

/* The parse result; addr in network order (addr[0] is the first octet). */
struct dnsmsg_result {
    enum dnsmsg_status status;
    uint8_t rcode;
    uint8_t addr[4];
    uint32_t ttl; /* RFC 2181 8: a TTL with the top bit set reads as 0 */
};

/* dnsmsg_name_ok - name is 1..253 octets of LDH or '_' labels of 1..63
 * octets (one trailing dot allowed). */
bool dnsmsg_name_ok(const char *name);

/* dnsmsg_build_a - write a query with the given id, RD set, for the A/IN
 * record of name into buf[0..cap). Returns its length, or 0 if the name is
 * not valid (dnsmsg_name_ok) or cap is too small (DNSMSG_QUERY_MAX always
 * suffices). The caller draws id at random for each query. */
size_t dnsmsg_build_a(uint16_t id, const char *name, uint8_t *buf, size_t cap);

/* dnsmsg_parse_a - parse the reply pkt[0..len) to the A query (id, name).
 * Follows CNAMEs within the answer section (in order) and reports the first
 * A/IN record of the name; compression pointers are followed with a hop
 * limit. Returns r->status. */
enum dnsmsg_status dnsmsg_parse_a(const uint8_t *pkt, size_t len, uint16_t id, const char *name,
                                  struct dnsmsg_result *r);

/* dnsmsg_status_name - a short lower-case name of a status for the log. */
const char *dnsmsg_status_name(enum dnsmsg_status st);

#endif
