/* proxy.h - the PROXY protocol header a load balancer sends before the
 * client's first byte (HAProxy's proxy-protocol.txt): version 1 (one text
 * line, TCP4/TCP6/UNKNOWN, at most 107 octets) and version 2 (a binary
 * block: signature, PROXY or LOCAL, AF_INET/AF_INET6 over STREAM, TLVs).
 * A pure parser over bytes: no I/O, no clock, no allocation; any thread.
 *
 * Incremental by re-parsing: call proxy_parse() on everything received so
 * far (from the connection's first octet). It answers PROXY_MORE while the
 * bytes are a proper prefix of some valid header, PROXY_DONE with the
 * header's length once one is complete (octets after it belong to SMTP),
 * or PROXY_ERROR with a reason as soon as no valid header can start with
 * them (so "EHLO x" fails at its first octet, not at the timeout). */
#ifndef MXRING_PROXY_H
#define MXRING_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define PROXY_V1_MAX 107 /* the longest v1 line, CRLF included (spec 2.1) */
#define PROXY_V2_SIG_LEN 12
#define PROXY_V2_FIXED 16 /* signature, ver_cmd, fam, len */
#define PROXY_V2_LEN_MAX \
    1024 /* our bound on the v2 block after the fixed part
                                   (addresses + TLVs); HAProxy's ssl TLVs need ~200 */
#define PROXY_HDR_MAX (PROXY_V2_FIXED + PROXY_V2_LEN_MAX) /* longest header accepted */
#define PROXY_TEXT_MAX 64                                 /* TLV texts kept: TLS version, cipher */
#define PROXY_AUTHORITY_MAX 255                           /* PP2_TYPE_AUTHORITY: a host name */

/* v2 TLV types and SSL sub-types read here (spec 2.2.x). */
enum proxy_tlv {
    PP2_TYPE_ALPN = 0x01,
    PP2_TYPE_AUTHORITY = 0x02,
    PP2_TYPE_CRC32C = 0x03,
    PP2_TYPE_NOOP = 0x04,
    PP2_TYPE_UNIQUE_ID = 0x05,
    PP2_TYPE_SSL = 0x20,
    PP2_SUBTYPE_SSL_VERSION = 0x21,
    PP2_SUBTYPE_SSL_CN = 0x22,
    PP2_SUBTYPE_SSL_CIPHER = 0x23,
    PP2_SUBTYPE_SSL_SIG_ALG = 0x24,
    PP2_SUBTYPE_SSL_KEY_ALG = 0x25,
    PP2_TYPE_NETNS = 0x30,
};

/* PP2_TYPE_SSL client bits. */
#define PP2_CLIENT_SSL 0x01
#define PP2_CLIENT_CERT_CONN 0x02
#define PP2_CLIENT_CERT_SESS 0x04

enum proxy_rc { PROXY_ERROR = -1, PROXY_MORE = 0, PROXY_DONE = 1 };

/* struct proxy_hdr - a parsed header. */
struct proxy_hdr {
    unsigned version;                        /* 1 or 2 */
    size_t len;                              /* octets of the header */
    bool local;                              /* no client address: v2 LOCAL (the balancer's own
                                   health check), v1 UNKNOWN, v2 PROXY with AF_UNSPEC */
    bool health;                             /* v2 LOCAL: a health check by the balancer */
    struct mx_addr src;                      /* the real client (unless local) */
    struct mx_addr dst;                      /* the address the client connected to */
    bool ssl;                                /* PP2_TYPE_SSL with PP2_CLIENT_SSL: the balancer
                                   terminated TLS */
    uint8_t ssl_client;                      /* PP2_CLIENT_* bits */
    uint32_t ssl_verify;                     /* 0 = client certificate verified */
    char ssl_version[PROXY_TEXT_MAX];        /* PP2_SUBTYPE_SSL_VERSION, "" when absent */
    char ssl_cipher[PROXY_TEXT_MAX];         /* PP2_SUBTYPE_SSL_CIPHER */
    char authority[PROXY_AUTHORITY_MAX + 1]; /* PP2_TYPE_AUTHORITY (SNI), "" when absent */
};

/* proxy_parse - see the top of this file. buf[0..len) is everything
 * received so far. On PROXY_DONE *h is filled; on PROXY_ERROR *why names
 * the problem ("not a PROXY header", "v1 line too long", ...; a static
 * string). Texts copied into h are printable ASCII (others become '?'). */
enum proxy_rc proxy_parse(const void *buf, size_t len, struct proxy_hdr *h, const char **why);

#endif
