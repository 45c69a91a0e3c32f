/* dnsbl_site.c - the pure half of DNSBL/DNSWL scoring (dnsbl_site.h): dnsbl_sites
 * items, answer filters as per-octet bitmaps, and reversed query names.
 * No I/O; any thread. */
#include "dnsbl_site.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

#define DNSBL_OCTETS 4

/* set_bit - accept value v for octet o. */
static void set_bit(struct dnsbl_site *s, unsigned o, unsigned v)
{
    s->match[o][v >> 3] |= (uint8_t)(1u << (v & 7));
}

/* octet_num - a decimal 0..255 at *p (advanced); false if none. */
static bool octet_num(const char **p, unsigned *v)
{
    unsigned x = 0, d = 0;
    while (**p >= '0' && **p <= '9' && d < 4)
        x = x * 10 + (unsigned)(*(*p)++ - '0'), d++;
    *v = x;
    return d > 0 && d < 4 && x <= 255;
}

/* octet_set - "[a;b..c;...]" at *p (advanced) into octet o. */
static bool octet_set(struct dnsbl_site *s, unsigned o, const char **p)
{
    (*p)++; /* '[' */
    for (;;) {
        unsigned lo, hi;
        if (!octet_num(p, &lo))
            return false;
        hi = lo;
        if ((*p)[0] == '.' && (*p)[1] == '.') {
            *p += 2;
            if (!octet_num(p, &hi) || hi < lo)
                return false;
        }
        for (unsigned v = lo; v <= hi; v++)
            set_bit(s, o, v);
        if (**p == ']') {
            (*p)++;
            return true;
        }
        if (*(*p)++ != ';')
            return false;
    }
}

/* parse_filter - four octet patterns f[0..len) into s->match. */
static bool parse_filter(struct dnsbl_site *s, const char *f, size_t len)
{
    char buf[DNSBL_FILTER_MAX + 1];
    if (len == 0 || len > DNSBL_FILTER_MAX)
        return false;
    memcpy(buf, f, len);
    buf[len] = 0;
    const char *p = buf;
    for (unsigned o = 0; o < DNSBL_OCTETS; o++) {
        unsigned v;
        if (*p == '[') {
            if (!octet_set(s, o, &p))
                return false;
        } else if (octet_num(&p, &v)) {
            set_bit(s, o, v);
        } else {
            return false;
        }
        if (o + 1 < DNSBL_OCTETS && *p++ != '.')
            return false;
    }
    if (*p)
        return false;
    memcpy(s->filter, buf, len + 1);
    return true;
}

/* parse_weight - "[-]digits" within +-DNSBL_WEIGHT_MAX, not 0. */
static bool parse_weight(const char *w, int *out)
{
    bool neg = *w == '-';
    const char *p = w + neg;
    unsigned x = 0, d = 0;
    while (*p >= '0' && *p <= '9' && d < 5)
        x = x * 10 + (unsigned)(*p++ - '0'), d++;
    if (*p || d == 0 || x == 0 || x > DNSBL_WEIGHT_MAX)
        return false;
    *out = neg ? -(int)x : (int)x;
    return true;
}

/* zone_ok - 1..253 octets of LDH labels of 1..63, lower-cased in place. */
static bool zone_ok(char *z)
{
    size_t label = 0, n = 0;
    for (char *p = z; *p; p++, n++) {
        char c = *p;
        if (c >= 'A' && c <= 'Z')
            *p = c = (char)(c + 32);
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return n > 0 && n <= DNSBL_ZONE_MAX && label > 0;
}

/* dnsbl_site_parse - see dnsbl_site.h. */
bool dnsbl_site_parse(const char *s, struct dnsbl_site *out, char *why, size_t n)
{
    memset(out, 0, sizeof *out);
    out->weight = 1;
    const char *star = strrchr(s, '*'), *eq = strchr(s, '=');
    const char *zend = eq ? eq : star ? star : s + strlen(s);
    if (star && eq && star < eq)
        star = NULL;
    if (star && !parse_weight(star + 1, &out->weight)) {
        snprintf(why, n, "has a bad weight (a non-zero integer -%d..%d)", DNSBL_WEIGHT_MAX,
                 DNSBL_WEIGHT_MAX);
        return false;
    }
    size_t zlen = (size_t)(zend - s);
    if (zlen == 0 || zlen > DNSBL_ZONE_MAX) {
        snprintf(why, n, "has no valid zone (zone[=filter][*weight])");
        return false;
    }
    memcpy(out->zone, s, zlen);
    out->zone[zlen] = 0;
    if (!zone_ok(out->zone)) {
        snprintf(why, n, "has no valid zone (zone[=filter][*weight])");
        return false;
    }
    if (eq) {
        const char *fend = star ? star : s + strlen(s);
        if (!parse_filter(out, eq + 1, (size_t)(fend - eq - 1))) {
            snprintf(why, n, "has a bad answer filter (like 127.0.0.2 or 127.0.[0..255].[2;3])");
            return false;
        }
    } else {
        set_bit(out, 0, 127);
        for (unsigned o = 1; o < DNSBL_OCTETS; o++)
            memset(out->match[o], 0xff, sizeof out->match[o]);
    }
    return true;
}

/* dnsbl_site_format - see dnsbl_site.h. */
void dnsbl_site_format(const struct dnsbl_site *site, struct sb *out)
{
    sb_printf(out, "%s%s%s*%d", site->zone, site->filter[0] ? "=" : "", site->filter, site->weight);
}

/* dnsbl_site_match - see dnsbl_site.h. */
bool dnsbl_site_match(const struct dnsbl_site *site, const uint8_t a[4])
{
    for (unsigned o = 0; o < DNSBL_OCTETS; o++)
        if (!(site->match[o][a[o] >> 3] & (1u << (a[o] & 7))))
            return false;
    return true;
}

/* dnsbl_site_qname - see dnsbl_site.h. */
bool dnsbl_site_qname(const struct mx_addr *a, const char *zone, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    char rev[65];
    size_t r = 0;
    if (a->family == AF_INET) {
        int w = snprintf(rev, sizeof rev, "%u.%u.%u.%u", a->bytes[3], a->bytes[2], a->bytes[1],
                         a->bytes[0]);
        r = (size_t)w;
    } else if (a->family == AF_INET6) {
        for (int i = 15; i >= 0; i--) {
            rev[r++] = hex[a->bytes[i] & 15];
            rev[r++] = '.';
            rev[r++] = hex[a->bytes[i] >> 4];
            rev[r++] = i ? '.' : 0;
        }
        r--;
    } else {
        return false;
    }
    rev[r] = 0;
    int n = snprintf(buf, cap, "%s.%s", rev, zone);
    return n > 0 && (size_t)n < cap;
}
