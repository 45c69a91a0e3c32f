/* dnsbl_site.h - connect-time DNSBL/DNSWL scoring without I/O (postscreen-style
 * weights): the sites of dnsbl_sites ("zone[=filter][*weight]") parsed and
 * formatted, the query name of a client address in a zone (IPv4 octets or
 * IPv6 nibbles reversed), the answer filter, and the score of a set of
 * listings. Pure; any thread. */
#ifndef MXRING_DNSBL_SITE_H
#define MXRING_DNSBL_SITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct mx_addr;

#define DNSBL_ZONE_MAX 253
#define DNSBL_FILTER_MAX 95
#define DNSBL_WEIGHT_MAX 1000
/* A query name: 32 nibbles of an IPv6 address, each with its dot, then
 * the zone. */
#define DNSBL_NAME_MAX (64 + 1 + DNSBL_ZONE_MAX)

/* One site: a listing in zone whose answer passes the filter adds weight
 * (negative: an allowlist). Without a filter any answer in 127.0.0.0/8
 * counts. */
struct dnsbl_site {
    char zone[DNSBL_ZONE_MAX + 1];     /* lower-cased */
    char filter[DNSBL_FILTER_MAX + 1]; /* as written, "" = none */
    int weight;                        /* default 1 */
    uint8_t match[4][32];              /* per answer octet: bit v = value v accepted */
};

/* dnsbl_site_parse - "zone", "zone*weight", "zone=filter*weight" where the
 * filter is four dot-separated octet patterns: a number, or a bracketed
 * set of numbers and ranges "[0..255]", "[2;4;9..11]". false with why set
 * ("<what is wrong>") when s is not a site. */
bool dnsbl_site_parse(const char *s, struct dnsbl_site *out, char *why, size_t n);
/* dnsbl_site_format - the normalised "zone[=filter]*weight" into out. */
void dnsbl_site_format(const struct dnsbl_site *site, struct sb *out);
/* dnsbl_site_match - does the answer a[0..4) count for site? */
bool dnsbl_site_match(const struct dnsbl_site *site, const uint8_t a[4]);

/* dnsbl_site_qname - "<reversed address>.<zone>" of a into buf[0..cap);
 * false for an unknown address or when it does not fit. */
bool dnsbl_site_qname(const struct mx_addr *a, const char *zone, char *buf, size_t cap);

#endif
