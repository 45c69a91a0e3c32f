/* config_types.c - the value types of the configuration key table: how a
 * value of each type (host, path, socket, integer, size, duration, route,
 * enum, and the lists of domains, listen addresses, CIDRs and zones) is
 * parsed, formatted for the dump and released, and the type table config.c
 * drives them through. Main thread only (loading), like config.c. */
#include "config.h"
#include "config_int.h"
#include "addr.h"
#include "dnsbl_site.h"
#include "routes.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/un.h>

/* The zone actions of surbl_zones: the one table (index = enum cfg_zone_action). */
static const char *const zone_action_names[] = {[CFG_ZONE_PASS] = "pass",
                                                [CFG_ZONE_QUARANTINE] = "quarantine",
                                                [CFG_ZONE_REJECT] = "reject",
                                                NULL};

/* ---- small helpers ---------------------------------------------------- */

/* cfg_field - address of a key's field inside c. */
void *cfg_field(const struct cfg_key *k, const struct config *c)
{
    return (char *)(uintptr_t)c + k->off;
}

/* count - address of a list key's item count inside c. */
static size_t *count(const struct cfg_key *k, const struct config *c)
{
    return (size_t *)(void *)((char *)(uintptr_t)c + k->noff);
}

/* cfg_quote - escape up to CFG_QUOTE_MAX bytes of s into out so that an error
 * stays one printable line; longer values end in "...". */
void cfg_quote(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i;
    for (i = 0; s[i] && i < CFG_QUOTE_MAX && o + 5 < outlen; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    if (s[i] && o + 4 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = 0;
}

/* bad - write "\"<value>\" <reason>" into why; always returns false. */
static bool __attribute__((format(printf, 4, 5)))
bad(char *why, size_t n, const char *value, const char *fmt, ...)
{
    char q[CFG_QUOTE_MAX * 4 + 8];
    va_list ap;
    cfg_quote(value, q, sizeof q);
    int w = snprintf(why, n, "\"%s\" ", q);
    if (w < 0 || (size_t)w >= n)
        return false;
    va_start(ap, fmt);
    vsnprintf(why + w, n - (size_t)w, fmt, ap);
    va_end(ap);
    return false;
}

/* cfg_parse_dec - strict decimal: at least one digit, no sign, no overflow.
 * *end gets the first byte after the digits. */
bool cfg_parse_dec(const char *s, const char **end, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++)
        if (__builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
            return false;
    *end = p;
    *out = v;
    return p != s;
}

/* cfg_fmt_bytes - a byte count in the shortest exact K/M/G form ("25M"). */
void cfg_fmt_bytes(uint64_t v, struct sb *out)
{
    static const struct {
        uint64_t mult;
        char suffix;
    } units[] = {
        {CFG_GIB, 'G'},
        {CFG_MIB, 'M'},
        {CFG_KIB, 'K'},
    };
    for (size_t i = 0; i < MX_ARRAY_LEN(units); i++)
        if (v && v % units[i].mult == 0) {
            sb_printf(out, "%" PRIu64 "%c", v / units[i].mult, units[i].suffix);
            return;
        }
    sb_printf(out, "%" PRIu64, v);
}

/* is_blank - the blanks trimmed around keys, values and list items. */
static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

/* cfg_trim - strip blanks in place at both ends; returns the new start. */
char *cfg_trim(char *s)
{
    while (is_blank(*s))
        s++;
    size_t n = strlen(s);
    while (n && is_blank(s[n - 1]))
        s[--n] = 0;
    return s;
}

/* ---- scalar types ------------------------------------------------------ */

/* domain_check - RFC 1035 letters-digits-hyphen labels, 1..63 octets each,
 * at most 253 in all, no trailing dot, top label not all digits. */
static bool domain_check(const char *s, char *why, size_t n)
{
    size_t len = strlen(s), label = 0;
    bool digits = true, dotted = false;
    if (len == 0 || len > CFG_DOMAIN_MAX)
        return bad(why, n, s, "is not a valid domain name (1 to %d octets)", CFG_DOMAIN_MAX);
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '.') {
            if (label == 0 || s[i - 1] == '-')
                return bad(why, n, s,
                           "is not a valid domain name "
                           "(empty label or label ending in '-')");
            label = 0, digits = true, dotted = true;
            continue;
        }
        bool alnum =
            (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (!alnum && ch != '-')
            return bad(why, n, s, "is not a valid domain name (use letters, digits, '-' and '.')");
        if (ch == '-' && label == 0)
            return bad(why, n, s, "is not a valid domain name (label starting with '-')");
        if (++label > CFG_LABEL_MAX)
            return bad(why, n, s, "is not a valid domain name (label longer than %d octets)",
                       CFG_LABEL_MAX);
        digits = digits && ch >= '0' && ch <= '9';
    }
    if (label == 0 || s[len - 1] == '-')
        return bad(why, n, s, "is not a valid domain name (trailing '.' or '-')");
    if (dotted && digits)
        return bad(why, n, s, "is not a valid domain name (top-level label is all digits)");
    return true;
}

/* parse_host - a domain name into the fixed hostname buffer. */
static bool parse_host(const struct cfg_key *k, const char *v, struct config *c, char *why,
                       size_t n)
{
    if (!domain_check(v, why, n))
        return false;
    memcpy(cfg_field(k, c), v, strlen(v) + 1);
    return true;
}

/* fmt_host - the host name as stored. */
static void fmt_host(const struct cfg_key *k, const struct config *c, struct sb *out)
{
    sb_appends(out, cfg_field(k, c));
}

/* parse_path - any non-empty text up to PATH_MAX; empty = unset (only when
 * the key is optional, min 0). */
static bool parse_path(const struct cfg_key *k, const char *v, struct config *c, char *why,
                       size_t n)
{
    char **dst = cfg_field(k, c);
    size_t len = strlen(v);
    if (len == 0 && k->min)
        return bad(why, n, v, "is empty; a path is required");
    if (len >= PATH_MAX)
        return bad(why, n, v, "is longer than %d bytes", PATH_MAX - 1);
    if (len == 0)
        return true;
    *dst = strdup(v);
    if (!*dst)
        return bad(why, n, v, "could not be stored: out of memory");
    return true;
}

/* fmt_path - the path, or nothing when unset. */
static void fmt_path(const struct cfg_key *k, const struct config *c, struct sb *out)
{
    char *const *p = cfg_field(k, c);
    if (*p)
        sb_appends(out, *p);
}

/* free_path - release a path. */
static void free_path(const struct cfg_key *k, struct config *c)
{
    char **p = cfg_field(k, c);
    free(*p);
    *p = NULL;
}

static bool listen_parse(const char *s, void *elem, char *why, size_t n);

_Static_assert(sizeof(struct sockaddr_un) <= sizeof(struct sockaddr_storage),
               "a unix socket address fits the socket key");

/* socket_unix - the "unix:" part of a socket key: an absolute path that
 * fits sun_path. */
static bool socket_unix(const char *v, struct cfg_socket *s, char *why, size_t n)
{
    struct sockaddr_un *un = (struct sockaddr_un *)&s->ss;
    const char *path = v + 5;
    size_t len = strlen(path);
    if (path[0] != '/')
        return bad(why, n, v, "is not an absolute socket path (use unix:/path)");
    if (len >= sizeof un->sun_path)
        return bad(why, n, v, "is a socket path longer than %zu bytes", sizeof un->sun_path - 1);
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, len + 1);
    s->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    snprintf(s->text, sizeof s->text, "unix:%s", path);
    return true;
}

/* parse_socket - "unix:/absolute/path" or "tcp:addr:port" (addr IPv4 or
 * [IPv6]) into a connectable address; empty = unset (len 0). */
static bool parse_socket(const struct cfg_key *k, const char *v, struct config *c, char *why,
                         size_t n)
{
    struct cfg_socket *s = cfg_field(k, c);
    memset(s, 0, sizeof *s);
    if (*v == 0)
        return true;
    if (strncmp(v, "unix:", 5) == 0)
        return socket_unix(v, s, why, n);
    if (strncmp(v, "tcp:", 4) != 0)
        return bad(why, n, v, "is not unix:/path or tcp:addr:port");
    struct cfg_listen l;
    if (!listen_parse(v + 4, &l, why, n))
        return false;
    s->ss = l.ss;
    s->len = l.len;
    snprintf(s->text, sizeof s->text, "tcp:%s", l.text);
    return true;
}

/* fmt_socket - the normalised text, or nothing when unset. */
static void fmt_socket(const struct cfg_key *k, const struct config *c, struct sb *out)
{
    const struct cfg_socket *s = cfg_field(k, c);
    if (s->len)
        sb_appends(out, s->text);
}

/* parse_number - decimal with an optional K/M/G suffix when sized; checks
 * the key's bounds. */
static bool parse_number(const struct cfg_key *k, const char *v, bool sized, uint64_t *out,
                         char *why, size_t n)
{
    static const char suffixes[] = "KkMmGg";
    static const uint64_t mult[] = {CFG_KIB, CFG_KIB, CFG_MIB, CFG_MIB, CFG_GIB, CFG_GIB};
    struct sb lo = {0}, hi = {0};
    const char *end;
    uint64_t x;
    bool ok = cfg_parse_dec(v, &end, &x);
    const char *suf = (ok && sized && *end) ? strchr(suffixes, *end) : NULL;
    if (suf && end[1] == 0 && __builtin_mul_overflow(x, mult[suf - suffixes], &x))
        x = UINT64_MAX;
    if (suf)
        end++;
    if (ok && *end == 0 && x >= k->min && x <= k->max) {
        *out = x;
        return true;
    }
    sized ? cfg_fmt_bytes(k->min, &lo) : (void)sb_printf(&lo, "%" PRIu64, k->min);
    sized ? cfg_fmt_bytes(k->max, &hi) : (void)sb_printf(&hi, "%" PRIu64, k->max);
    if (ok && *end == 0)
        bad(why, n, v, "is out of range %s..%s", lo.data, hi.data);
    else
        bad(why, n, v, "is not a %s (allowed %s..%s)",
            sized ? "decimal size with optional K, M or G suffix" : "decimal number", lo.data,
            hi.data);
    sb_free(&lo);
    sb_free(&hi);
    return false;
}

/* parse_uint - an unsigned int within bounds. */
static bool parse_uint(const struct cfg_key *k, const char *v, struct config *c, char *why,
                       size_t n)
{
    uint64_t x;
    if (!parse_number(k, v, false, &x, why, n))
        return false;
    unsigned u = (unsigned)x;
    memcpy(cfg_field(k, c), &u, sizeof u);
    return true;
}

/* fmt_uint - decimal. */
static void fmt_uint(const struct cfg_key *k, const struct config *c, struct sb *out)
{
    unsigned u;
    memcpy(&u, cfg_field(k, c), sizeof u);
    sb_printf(out, "%u", u);
}

/* parse_size - a byte count within bounds. */
static bool parse_size(const struct cfg_key *k, const char *v, struct config *c, char *why,
                       size_t n)
{
    uint64_t x;
    if (!parse_number(k, v, true, &x, why, n))
        return false;
    memcpy(cfg_field(k, c), &x, sizeof x);
    return true;
}

/* fmt_size - shortest exact K/M/G form. */
static void fmt_size(const struct cfg_key *k, const struct config *c, struct sb *out)
{
    uint64_t x;
    memcpy(&x, cfg_field(k, c), sizeof x);
    cfg_fmt_bytes(x, out);
}

/* Duration units, largest first: the shortest exact form is printed. */
static const struct {
    char suffix;
    unsigned secs;
} cfg_units[] = {
    {'d', 86400},
    {'h', 3600},
    {'m', 60},
    {'s', 1},
};

/* cfg_fmt_secs - seconds as "5d", "1h", "90s" (largest unit that divides). */
void cfg_fmt_secs(uint64_t v, struct sb *out)
{
    for (size_t i = 0; i < MX_ARRAY_LEN(cfg_units); i++)
        if ((v && v % cfg_units[i].secs == 0) || cfg_units[i].secs == 1) {
            sb_printf(out, "%" PRIu64 "%c", v / cfg_units[i].secs, cfg_units[i].suffix);
            return;
        }
}

/* parse_duration - decimal seconds with an optional s, m, h or d suffix,
 * within the key's bounds (in seconds). */
static bool parse_duration(const struct cfg_key *k, const char *v, struct config *c, char *why,
                           size_t n)
{
    const char *end;
    uint64_t x, mult = 1;
    bool ok = cfg_parse_dec(v, &end, &x);
    for (size_t i = 0; ok && *end && i < MX_ARRAY_LEN(cfg_units); i++)
        if (*end == cfg_units[i].suffix && end[1] == 0)
            mult = cfg_units[i].secs, end++;
    if (ok && __builtin_mul_overflow(x, mult, &x))
        x = UINT64_MAX;
    if (ok && *end == 0 && x >= k->min && x <= k->max) {
        unsigned u = (unsigned)x;
        memcpy(cfg_field(k, c), &u, sizeof u);
        return true;
    }
    struct sb lo = {0}, hi = {0};
    cfg_fmt_secs(k->min, &lo);
    cfg_fmt_secs(k->max, &hi);
    if (ok && *end == 0)
        bad(why, n, v, "is out of range %s..%s", lo.data, hi.data);
    else
        bad(why, n, v,
            "is not a duration (seconds, or a number with s, m, h or d; "
            "allowed %s..%s)",
            lo.data, hi.data);
    sb_free(&lo);
    sb_free(&hi);
    return false;
}

/* fmt_duration - shortest exact unit form. */
static void fmt_duration(const struct cfg_key *k, const struct config *c, struct sb *out)
{
    unsigned u;
    memcpy(&u, cfg_field(k, c), sizeof u);
    cfg_fmt_secs(u, out);
}

/* parse_route - a route spec "hop[,hop...] [tls=mode]" checked by
 * routes_parse_spec, stored as text (empty = unset). */
static bool parse_route(const struct cfg_key *k, const char *v, struct config *c, char *why,
                        size_t n)
{
    struct route rt;
    char sub[CFG_WHY_MAX];
    if (*v) {
        if (!routes_parse_spec(v, strlen(v), ROUTE_TLS_MAY, &rt, sub, sizeof sub))
            return bad(why, n, v, "%s", sub);
        routes_route_release(&rt);
    }
    return parse_path(k, v, c, why, n);
}

/* cfg_fmt_names - the enum's names joined by sep. */
void cfg_fmt_names(const struct cfg_key *k, const char *sep, struct sb *out)
{
    for (size_t i = 0; k->names[i]; i++)
        sb_printf(out, "%s%s", i ? sep : "", k->names[i]);
}

/* parse_enum - one of the key's names (exact, lower case). */
static bool parse_enum(const struct cfg_key *k, const char *v, struct config *c, char *why,
                       size_t n)
{
    for (unsigned i = 0; k->names[i]; i++)
        if (strcmp(v, k->names[i]) == 0) {
            memcpy(cfg_field(k, c), &i, sizeof i);
            return true;
        }
    struct sb names = {0};
    cfg_fmt_names(k, ", ", &names);
    bad(why, n, v, "is not one of: %s", names.data ? names.data : "");
    sb_free(&names);
    return false;
}

/* fmt_enum - the name of the stored value. */
static void fmt_enum(const struct cfg_key *k, const struct config *c, struct sb *out)
{
    unsigned i;
    memcpy(&i, cfg_field(k, c), sizeof i);
    sb_appends(out, k->names[i]);
}

/* ---- list items -------------------------------------------------------- */

/* The per-item half of a list type. */
struct cfg_item_ops {
    size_t size;
    bool (*parse)(const char *s, void *elem, char *why, size_t n);
    void (*format)(const void *elem, struct sb *out);
    void (*release)(void *elem);
};

/* domain_parse - a domain name, stored lower-cased. */
static bool domain_parse(const char *s, void *elem, char *why, size_t n)
{
    char *d;
    if (!domain_check(s, why, n))
        return false;
    if (!(d = strdup(s)))
        return bad(why, n, s, "could not be stored: out of memory");
    for (char *p = d; *p; p++)
        *p = (char)mx_ascii_lower((unsigned char)*p);
    memcpy(elem, &d, sizeof d);
    return true;
}

/* domain_format - the stored name. */
static void domain_format(const void *elem, struct sb *out)
{
    sb_appends(out, *(char *const *)elem);
}

/* domain_release - free the name. */
static void domain_release(void *elem)
{
    free(*(char **)elem);
}

/* listen_addr - the address part of a listen item into l (port not set). */
static bool listen_addr(const char *s, const char *colon, struct cfg_listen *l, char *why, size_t n)
{
    char host[INET6_ADDRSTRLEN + 1];
    bool v6 = s[0] == '[';
    size_t hlen = (size_t)(colon - s) - (v6 ? 2 : 0);
    if (hlen == 0 || hlen >= sizeof host)
        return bad(why, n, s, "has no valid address (use addr:port or [v6addr]:port)");
    memcpy(host, s + v6, hlen);
    host[hlen] = 0;
    struct sockaddr_in *sin = (struct sockaddr_in *)&l->ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l->ss;
    if (v6 ? inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1
           : inet_pton(AF_INET, host, &sin->sin_addr) != 1)
        return bad(why, n, s, "has no valid IPv%c address (use addr:port or [v6addr]:port)",
                   v6 ? '6' : '4');
    l->ss.ss_family = v6 ? AF_INET6 : AF_INET;
    l->len = v6 ? sizeof *sin6 : sizeof *sin;
    return true;
}

/* listen_parse - "a.b.c.d:port" or "[v6]:port", port 1..65535; the text
 * is normalised through inet_ntop. */
static bool listen_parse(const char *s, void *elem, char *why, size_t n)
{
    struct cfg_listen *l = elem;
    const char *colon, *end;
    uint64_t port;
    memset(l, 0, sizeof *l);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return bad(why, n, s, "is not [v6addr]:port");
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return bad(why, n, s, "has no :port (use addr:port or [v6addr]:port)");
        if (memchr(s, ':', (size_t)(colon - s)))
            return bad(why, n, s, "needs brackets around the IPv6 address: [v6addr]:port");
    }
    if (!listen_addr(s, colon, l, why, n))
        return false;
    if (!cfg_parse_dec(colon + 1, &end, &port) || *end || port < 1 || port > CFG_PORT_MAX)
        return bad(why, n, s, "has a bad port (allowed 1..%u)", CFG_PORT_MAX);
    char host[INET6_ADDRSTRLEN];
    if (l->ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l->ss;
        sin6->sin6_port = htons((uint16_t)port);
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        snprintf(l->text, sizeof l->text, "[%s]:%u", host, (unsigned)port);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&l->ss;
        sin->sin_port = htons((uint16_t)port);
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        snprintf(l->text, sizeof l->text, "%s:%u", host, (unsigned)port);
    }
    return true;
}

/* listen_format - the normalised text. */
static void listen_format(const void *elem, struct sb *out)
{
    sb_appends(out, ((const struct cfg_listen *)elem)->text);
}

/* cidr_parse - one network via cfg_parse_cidr. */
static bool cidr_parse(const char *s, void *elem, char *why, size_t n)
{
    if (cfg_parse_cidr(s, elem))
        return true;
    return bad(why, n, s, "is not a network (a.b.c.d/0-32, v6addr/0-128 or a bare address)");
}

/* cidr_format - "addr/prefix" with the host bits cleared. */
static void cidr_format(const void *elem, struct sb *out)
{
    const struct cfg_cidr *net = elem;
    char host[INET6_ADDRSTRLEN];
    inet_ntop(net->family, net->addr, host, sizeof host);
    sb_printf(out, "%s/%u", host, net->prefix);
}

/* zone_parse - "zone:action" with action reject, quarantine or pass. */
static bool zone_parse(const char *s, void *elem, char *why, size_t n)
{
    struct cfg_zone *z = elem;
    const char *colon = strrchr(s, ':');
    size_t zlen = colon ? (size_t)(colon - s) : 0;
    if (!colon || zlen == 0 || zlen > CFG_DOMAIN_MAX)
        return bad(why, n, s, "is not zone:action (action reject, quarantine or pass)");
    memcpy(z->zone, s, zlen);
    z->zone[zlen] = 0;
    if (!domain_check(z->zone, why, n))
        return false;
    for (char *p = z->zone; *p; p++)
        *p = (char)mx_ascii_lower((unsigned char)*p);
    for (unsigned i = 0; zone_action_names[i]; i++)
        if (strcmp(colon + 1, zone_action_names[i]) == 0) {
            z->action = i;
            return true;
        }
    return bad(why, n, s, "has an unknown action (use reject, quarantine or pass)");
}

/* zone_format - "zone:action". */
static void zone_format(const void *elem, struct sb *out)
{
    const struct cfg_zone *z = elem;
    sb_printf(out, "%s:%s", z->zone, cfg_zone_action_name(z->action));
}

/* cert_name_ok - a tls_certs name: a host name or "*." and a domain. */
static bool cert_name_ok(const char *name, char *why, size_t n)
{
    const char *dom = strncmp(name, "*.", 2) == 0 ? name + 2 : name;
    return domain_check(dom, why, n);
}

/* cert_parse - "name:cert:key": name up to the first ':', the key path
 * after the last one, the certificate path between them. */
static bool cert_parse(const char *s, void *elem, char *why, size_t n)
{
    struct cfg_cert *c = elem;
    memset(c, 0, sizeof *c);
    const char *c1 = strchr(s, ':'), *c2 = strrchr(s, ':');
    if (!c1 || c1 == c2 || c1 == s || c2 == c1 + 1 || !c2[1])
        return bad(why, n, s, "is not name:cert:key");
    char *name = strndup(s, (size_t)(c1 - s));
    if (!name)
        return bad(why, n, s, "could not be stored: out of memory");
    for (char *p = name; *p; p++)
        *p = (char)mx_ascii_lower((unsigned char)*p);
    if (!cert_name_ok(name, why, n)) {
        free(name);
        return false;
    }
    c->name = name;
    c->cert = strndup(c1 + 1, (size_t)(c2 - c1 - 1));
    c->key = strdup(c2 + 1);
    if (!c->cert || !c->key) {
        free(c->cert);
        free(c->key);
        free(name);
        return bad(why, n, s, "could not be stored: out of memory");
    }
    return true;
}

/* cert_format - "name:cert:key". */
static void cert_format(const void *elem, struct sb *out)
{
    const struct cfg_cert *c = elem;
    sb_printf(out, "%s:%s:%s", c->name, c->cert, c->key);
}

/* cert_release - free the three strings. */
static void cert_release(void *elem)
{
    struct cfg_cert *c = elem;
    free(c->name);
    free(c->cert);
    free(c->key);
}

/* dnsbl_parse - one dnsbl_sites item (core/dnsbl_site.c). */
static bool dnsbl_parse(const char *s, void *elem, char *why, size_t n)
{
    char sub[CFG_WHY_MAX];
    if (dnsbl_site_parse(s, elem, sub, sizeof sub))
        return true;
    return bad(why, n, s, "%s", sub);
}

/* dnsbl_format - the normalised "zone[=filter]*weight". */
static void dnsbl_format(const void *elem, struct sb *out)
{
    dnsbl_site_format(elem, out);
}

/* milter_parse - "[name=]unix:/path" or "[name=]inet:addr:port". */
static bool milter_parse(const char *s, void *elem, char *why, size_t n)
{
    struct cfg_milter *m = elem;
    memset(m, 0, sizeof *m);
    const char *eq = strchr(s, '='), *spec = eq ? eq + 1 : s;
    if (eq) {
        size_t nl = (size_t)(eq - s);
        if (nl == 0 || nl > CFG_MILTER_NAME_MAX)
            return bad(why, n, s, "has a bad name (1..%d characters before '=')",
                       CFG_MILTER_NAME_MAX);
        for (size_t i = 0; i < nl; i++)
            if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
                return bad(why, n, s, "has a bad name (letters, digits, - _ .)");
        memcpy(m->name, s, nl);
    }
    if (strncmp(spec, "unix:", 5) == 0) {
        if (!socket_unix(spec, &m->sock, why, n))
            return false;
    } else if (strncmp(spec, "inet:", 5) == 0) {
        struct cfg_listen l;
        if (!listen_parse(spec + 5, &l, why, n))
            return false;
        m->sock.ss = l.ss;
        m->sock.len = l.len;
        snprintf(m->sock.text, sizeof m->sock.text, "inet:%s", l.text);
    } else {
        return bad(why, n, s, "is not [name=]unix:/path or [name=]inet:addr:port");
    }
    if (!eq)
        snprintf(m->name, sizeof m->name, "%s", m->sock.text);
    return true;
}

/* milter_format - "name=socket" (the name alone when it is the socket). */
static void milter_format(const void *elem, struct sb *out)
{
    const struct cfg_milter *m = elem;
    if (strcmp(m->name, m->sock.text) != 0)
        sb_printf(out, "%s=", m->name);
    sb_appends(out, m->sock.text);
}

static const struct cfg_item_ops domain_items = {sizeof(char *), domain_parse, domain_format,
                                                 domain_release};
static const struct cfg_item_ops listen_items = {sizeof(struct cfg_listen), listen_parse,
                                                 listen_format, NULL};
static const struct cfg_item_ops cidr_items = {sizeof(struct cfg_cidr), cidr_parse, cidr_format,
                                               NULL};
static const struct cfg_item_ops zone_items = {sizeof(struct cfg_zone), zone_parse, zone_format,
                                               NULL};
static const struct cfg_item_ops cert_items = {sizeof(struct cfg_cert), cert_parse, cert_format,
                                               cert_release};
static const struct cfg_item_ops dnsbl_items = {sizeof(struct dnsbl_site), dnsbl_parse,
                                                dnsbl_format, NULL};
static const struct cfg_item_ops milter_items = {sizeof(struct cfg_milter), milter_parse,
                                                 milter_format, NULL};

/* ---- list types -------------------------------------------------------- */

/* list_items - the item ops of a list key. */
static const struct cfg_item_ops *list_items(const struct cfg_key *k)
{
    return k->type == T_DOMAINS   ? &domain_items
           : k->type == T_LISTEN  ? &listen_items
           : k->type == T_ZONES   ? &zone_items
           : k->type == T_CERTS   ? &cert_items
           : k->type == T_DNSBL   ? &dnsbl_items
           : k->type == T_MILTERS ? &milter_items
                                  : &cidr_items;
}

/* list_elem - address of item i of a list key. */
static void *list_elem(const struct cfg_key *k, const struct config *c, size_t i)
{
    char *base;
    memcpy(&base, cfg_field(k, c), sizeof base);
    return base + i * list_items(k)->size;
}

/* list_find_dup - is the normalised text of the last item already present? */
static bool list_find_dup(const struct cfg_key *k, const struct config *c)
{
    const struct cfg_item_ops *ops = list_items(k);
    size_t last = *count(k, c) - 1;
    struct sb a = {0}, b = {0};
    bool dup = false;
    ops->format(list_elem(k, c, last), &a);
    for (size_t i = 0; i < last && !dup; i++) {
        sb_reset(&b);
        ops->format(list_elem(k, c, i), &b);
        dup = a.data && b.data && strcmp(a.data, b.data) == 0;
    }
    sb_free(&a);
    sb_free(&b);
    return dup;
}

/* list_push - parse one trimmed item and append it. */
static bool list_push(const struct cfg_key *k, const char *item, size_t idx, struct config *c,
                      char *why, size_t n)
{
    const struct cfg_item_ops *ops = list_items(k);
    char sub[CFG_WHY_MAX];
    if (!*item) {
        snprintf(why, n, "item %zu is empty (items are separated by single commas)", idx);
        return false;
    }
    char *base;
    memcpy(&base, cfg_field(k, c), sizeof base);
    char *grown = realloc(base, (*count(k, c) + 1) * ops->size);
    if (!grown)
        return bad(why, n, item, "could not be stored: out of memory");
    memcpy(cfg_field(k, c), &grown, sizeof grown);
    if (!ops->parse(item, grown + *count(k, c) * ops->size, sub, sizeof sub)) {
        snprintf(why, n, "item %zu: %s", idx, sub);
        return false;
    }
    ++*count(k, c);
    if (list_find_dup(k, c))
        return bad(why, n, item, "is listed twice");
    return true;
}

/* free_list - release every item and the array. */
static void free_list(const struct cfg_key *k, struct config *c)
{
    const struct cfg_item_ops *ops = list_items(k);
    for (size_t i = 0; ops->release && i < *count(k, c); i++)
        ops->release(list_elem(k, c, i));
    char *base;
    memcpy(&base, cfg_field(k, c), sizeof base);
    free(base);
    base = NULL;
    memcpy(cfg_field(k, c), &base, sizeof base);
    *count(k, c) = 0;
}

/* parse_list - comma-separated items; at least k->min of them. */
static bool parse_list(const struct cfg_key *k, const char *v, struct config *c, char *why,
                       size_t n)
{
    char *copy = strdup(v), *p = copy;
    bool ok = copy != NULL;
    if (!ok)
        return bad(why, n, v, "could not be stored: out of memory");
    for (size_t idx = 1; ok && *v; idx++) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = 0;
        ok = list_push(k, cfg_trim(p), idx, c, why, n);
        if (!comma)
            break;
        p = comma + 1;
    }
    free(copy);
    if (ok && *count(k, c) < k->min) {
        snprintf(why, n, "needs at least %" PRIu64 " item(s)", k->min);
        return false;
    }
    return ok;
}

/* fmt_list - items joined by ", ". */
static void fmt_list(const struct cfg_key *k, const struct config *c, struct sb *out)
{
    for (size_t i = 0; i < *count(k, c); i++) {
        if (i)
            sb_appends(out, ", ");
        list_items(k)->format(list_elem(k, c, i), out);
    }
}

/* ---- the type table ---------------------------------------------------- */

const struct cfg_type_ops cfg_types[] = {
    [T_HOST] = {"host name", parse_host, fmt_host, NULL},
    [T_PATH] = {"path", parse_path, fmt_path, free_path},
    [T_TEXT] = {"text", parse_path, fmt_path, free_path},
    [T_SOCKET] = {"socket", parse_socket, fmt_socket, NULL},
    [T_UINT] = {"integer", parse_uint, fmt_uint, NULL},
    [T_SIZE] = {"size", parse_size, fmt_size, NULL},
    [T_ENUM] = {"enum", parse_enum, fmt_enum, NULL},
    [T_DOMAINS] = {"list of domains", parse_list, fmt_list, free_list},
    [T_LISTEN] = {"list of addr:port", parse_list, fmt_list, free_list},
    [T_CIDRS] = {"list of CIDRs", parse_list, fmt_list, free_list},
    [T_ZONES] = {"list of zone:action", parse_list, fmt_list, free_list},
    [T_DURATION] = {"duration", parse_duration, fmt_duration, NULL},
    [T_ROUTE] = {"route", parse_route, fmt_path, free_path},
    [T_CERTS] = {"list of name:cert:key", parse_list, fmt_list, free_list},
    [T_DNSBL] = {"list of DNSBL sites", parse_list, fmt_list, free_list},
    [T_MILTERS] = {"list of milters", parse_list, fmt_list, free_list},
};

/* ---- zone actions (any thread) ---------------------------------------- */

/* cfg_zone_action_name - see config.h. */
const char *cfg_zone_action_name(unsigned action)
{
    return action < MX_ARRAY_LEN(zone_action_names) - 1 ? zone_action_names[action] : "?";
}
