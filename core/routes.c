/* routes.c - parsing of relay_routes / default_route into an immutable
 * struct routes and the recipient-domain look-up (exact pattern, then the
 * longest ".suffix", then the default; binary search over the sorted
 * patterns). Built on the main thread (start, SIGHUP); look-ups from any
 * thread. Syntax: routes.h. */
#include "routes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#define ROUTES_LINE_MAX 4096
#define ROUTES_WHY_MAX 256
#define ROUTE_PORT_SMTP 25
#define ROUTE_PORT_LMTP 24
#define ROUTE_LABEL_MAX 63

struct routes {
    struct route *v; /* file order, the default route last */
    size_t n;
    struct route **sorted; /* the file's routes by pattern (no default) */
    size_t nsorted;
    const struct route *def;
};

static const char *const tls_names[] = {"none", "may", "encrypt", "verify"};

/* ---- small helpers ---------------------------------------------------- */

/* is_blank - field separators inside a route line. */
static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

/* why_set - format a reason; always false. */
static bool __attribute__((format(printf, 3, 4))) why_set(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return false;
}

/* ldh_check - RFC 1035 letters-digits-hyphen labels, 1..63 octets each, at
 * most 253 in all, no empty label, the top label not all digits (a name,
 * never something that looks like a mistyped address). */
static bool ldh_check(const char *s, size_t len)
{
    size_t label = 0;
    bool digits = true;
    if (len == 0 || len > ROUTE_HOST_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '.') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0, digits = true;
            continue;
        }
        digits = digits && ch >= '0' && ch <= '9';
        bool alnum =
            (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if ((!alnum && ch != '-') || (ch == '-' && label == 0) || ++label > ROUTE_LABEL_MAX)
            return false;
    }
    return label != 0 && s[len - 1] != '-' && !digits;
}

/* lower_copy - len octets of s lower-cased into dst (NUL-terminated). */
static void lower_copy(char *dst, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        dst[i] = (char)mx_ascii_lower((unsigned char)s[i]);
    dst[len] = 0;
}

/* parse_port - "1".."65535" (len octets) into *port. */
static bool parse_port(const char *s, size_t len, uint16_t *port)
{
    unsigned v = 0;
    if (len == 0 || len > 5)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

/* ---- hops ------------------------------------------------------------- */

/* hop_unix - "unix:/path" (after "lmtp:") into h. */
static bool hop_unix(struct route_hop *h, const char *p, size_t len, char *why, size_t n)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (len == 0 || p[0] != '/')
        return why_set(why, n, "lmtp:unix: needs an absolute path");
    if (len > ROUTE_PATH_MAX || len >= sizeof sun.sun_path)
        return why_set(why, n, "socket path longer than %d octets", ROUTE_PATH_MAX);
    if (memchr(p, 0, len))
        return why_set(why, n, "socket path contains a NUL byte");
    memcpy(h->path, p, len);
    h->path[len] = 0;
    memcpy(sun.sun_path, p, len);
    memcpy(&h->addr, &sun, sizeof sun);
    h->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    h->is_unix = true;
    snprintf(h->text, sizeof h->text, "lmtp:unix:%s", h->path);
    return true;
}

/* hop_host - host (hlen octets, brackets already removed) into h: an IP
 * address (resolved now) or a host name. */
static bool hop_host(struct route_hop *h, const char *host, size_t hlen, bool bracketed, char *why,
                     size_t n)
{
    char buf[ROUTE_HOST_MAX + 1];
    if (hlen == 0 || hlen > ROUTE_HOST_MAX)
        return why_set(why, n, "no host (use %s:[host]:port)",
                       h->proto == ROUTE_SMTP ? "smtp" : "lmtp");
    memcpy(buf, host, hlen);
    buf[hlen] = 0;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(h->port)};
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(h->port)};
    if (inet_pton(AF_INET, buf, &sin.sin_addr) == 1) {
        memcpy(&h->addr, &sin, sizeof sin);
        h->addrlen = sizeof sin;
        inet_ntop(AF_INET, &sin.sin_addr, h->host, sizeof h->host);
    } else if (inet_pton(AF_INET6, buf, &sin6.sin6_addr) == 1) {
        if (!bracketed)
            return why_set(why, n, "an IPv6 address needs brackets: [%s]", buf);
        memcpy(&h->addr, &sin6, sizeof sin6);
        h->addrlen = sizeof sin6;
        inet_ntop(AF_INET6, &sin6.sin6_addr, h->host, sizeof h->host);
    } else if (hlen == 4 && mx_memcaseeq(buf, "unix", 4)) {
        return why_set(why, n, "a host named unix is ambiguous (lmtp:unix:/path is a socket)");
    } else if (ldh_check(buf, hlen)) {
        lower_copy(h->host, buf, hlen);
        snprintf(h->text, sizeof h->text, "%s:%s:%u", h->proto == ROUTE_SMTP ? "smtp" : "lmtp",
                 h->host, h->port);
        return true;
    } else {
        return why_set(why, n, "\"%.64s\" is neither an IP address nor a host name", buf);
    }
    h->has_addr = true;
    snprintf(h->text, sizeof h->text, "%s:[%s]:%u", h->proto == ROUTE_SMTP ? "smtp" : "lmtp",
             h->host, h->port);
    return true;
}

bool routes_parse_hop(const char *s, size_t len, struct route_hop *out, char *why, size_t n)
{
    memset(out, 0, sizeof *out);
    if (len >= 5 && memcmp(s, "smtp:", 5) == 0)
        out->proto = ROUTE_SMTP;
    else if (len >= 5 && memcmp(s, "lmtp:", 5) == 0)
        out->proto = ROUTE_LMTP;
    else
        return why_set(why, n,
                       "\"%.*s\" is not smtp:host:port, lmtp:host:port or "
                       "lmtp:unix:/path",
                       (int)(len > 64 ? 64 : len), s);
    const char *p = s + 5, *end = s + len;
    if (end - p >= 5 && memcmp(p, "unix:", 5) == 0) {
        if (out->proto != ROUTE_LMTP)
            return why_set(why, n, "unix sockets are for lmtp: hops only");
        return hop_unix(out, p + 5, (size_t)(end - p - 5), why, n);
    }
    const char *host = p, *hend, *colon;
    bool bracketed = p < end && *p == '[';
    if (bracketed) {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (!close)
            return why_set(why, n, "'[' without ']'");
        host = p + 1, hend = close, colon = close + 1;
        if (colon < end && *colon != ':')
            return why_set(why, n, "junk after ']' (use [host]:port)");
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        hend = colon ? colon : end;
        if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1)))
            return why_set(why, n, "an IPv6 address needs brackets: [v6addr]:port");
    }
    out->port = out->proto == ROUTE_SMTP ? ROUTE_PORT_SMTP : ROUTE_PORT_LMTP;
    if (colon && colon < end && !parse_port(colon + 1, (size_t)(end - colon - 1), &out->port))
        return why_set(why, n, "bad port (allowed 1..65535)");
    return hop_host(out, host, (size_t)(hend - host), bracketed, why, n);
}

/* ---- a route spec ----------------------------------------------------- */

/* spec_option - "tls=mode" into rt. */
static bool spec_option(struct route *rt, const char *w, size_t wl, bool *seen_tls, char *why,
                        size_t n)
{
    if (wl < 4 || memcmp(w, "tls=", 4) != 0)
        return why_set(why, n, "unknown option \"%.*s\" (only tls=)", (int)(wl > 64 ? 64 : wl), w);
    if (*seen_tls)
        return why_set(why, n, "tls= given twice");
    for (unsigned i = 0; i < MX_ARRAY_LEN(tls_names); i++)
        if (strlen(tls_names[i]) == wl - 4 && memcmp(w + 4, tls_names[i], wl - 4) == 0) {
            rt->tls = (enum route_tls)i;
            *seen_tls = true;
            return true;
        }
    return why_set(why, n, "tls=%.*s: use none, may, encrypt or verify",
                   (int)(wl - 4 > 32 ? 32 : wl - 4), w + 4);
}

/* spec_hop - one hop item appended to rt. */
static bool spec_hop(struct route *rt, const char *w, size_t wl, char *why, size_t n)
{
    char sub[ROUTES_WHY_MAX];
    if (rt->nhops == ROUTE_HOPS_MAX)
        return why_set(why, n, "more than %d hops", ROUTE_HOPS_MAX);
    if (!routes_parse_hop(w, wl, &rt->hops[rt->nhops], sub, sizeof sub))
        return why_set(why, n, "hop %zu: %s", rt->nhops + 1, sub);
    for (size_t i = 0; i < rt->nhops; i++)
        if (strcmp(rt->hops[i].text, rt->hops[rt->nhops].text) == 0)
            return why_set(why, n, "hop %s listed twice", rt->hops[i].text);
    rt->nhops++;
    return true;
}

bool routes_parse_spec(const char *s, size_t len, enum route_tls def_tls, struct route *out,
                       char *why, size_t n)
{
    bool seen_tls = false, ok = true;
    memset(out, 0, sizeof *out);
    out->tls = def_tls;
    out->hops = calloc(ROUTE_HOPS_MAX, sizeof *out->hops);
    if (!out->hops)
        return why_set(why, n, "out of memory");
    for (size_t i = 0; ok && i < len;) {
        while (i < len && (is_blank(s[i]) || s[i] == ','))
            i++;
        size_t j = i;
        while (j < len && !is_blank(s[j]) && s[j] != ',')
            j++;
        if (j == i)
            break;
        if (memchr(s + i, '=', j - i))
            ok = spec_option(out, s + i, j - i, &seen_tls, why, n);
        else if (seen_tls)
            ok = why_set(why, n, "hops go before tls=");
        else
            ok = spec_hop(out, s + i, j - i, why, n);
        i = j;
    }
    if (ok && out->nhops == 0)
        ok = why_set(why, n, "no hop (use smtp:[host]:port, lmtp:[host]:port or lmtp:unix:/path)");
    if (!ok)
        routes_route_release(out);
    return ok;
}

void routes_route_release(struct route *rt)
{
    free(rt->hops);
    rt->hops = NULL;
    rt->nhops = 0;
}

/* ---- the table -------------------------------------------------------- */

/* routes_push - room for one more route; NULL on ENOMEM. */
static struct route *routes_push(struct routes *r, size_t *cap)
{
    if (r->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct route *v = realloc(r->v, nc * sizeof *v);
        if (!v)
            return NULL;
        r->v = v, *cap = nc;
    }
    return &r->v[r->n];
}

/* pattern_parse - the domain field of a line into rt->pattern. */
static bool pattern_parse(struct route *rt, const char *w, size_t wl, char *why, size_t n)
{
    bool suffix = wl && w[0] == '.';
    if (!ldh_check(w + suffix, wl - suffix) || wl > ROUTE_HOST_MAX + 1)
        return why_set(why, n, "\"%.*s\" is not a domain or .suffix", (int)(wl > 64 ? 64 : wl), w);
    lower_copy(rt->pattern, w, wl);
    return true;
}

/* routes_line - one non-comment line (NUL-free, len octets). */
static bool routes_line(struct routes *r, size_t *cap, const char *s, size_t len, unsigned lineno,
                        enum route_tls def_tls, char *why, size_t n)
{
    size_t i = 0;
    while (i < len && !is_blank(s[i]))
        i++;
    struct route *slot = routes_push(r, cap);
    if (!slot)
        return why_set(why, n, "out of memory");
    char pat[ROUTE_HOST_MAX + 2];
    struct route tmp = {0};
    if (!pattern_parse(&tmp, s, i, why, n))
        return false;
    memcpy(pat, tmp.pattern, sizeof pat);
    if (!routes_parse_spec(s + i, len - i, def_tls, slot, why, n))
        return false;
    memcpy(slot->pattern, pat, sizeof pat);
    slot->line = lineno;
    r->n++;
    return true;
}

/* blank_line - only blanks, or a '#' comment? */
static bool blank_line(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && is_blank(s[i]))
        i++;
    return i == len || s[i] == '#';
}

/* routes_text - every line of a route file; stops at the first error. */
static bool routes_text(struct routes *r, size_t *cap, const char *name, const char *text,
                        size_t len, enum route_tls def_tls, char *err, size_t errlen)
{
    char why[ROUTES_WHY_MAX];
    size_t pos = 0;
    for (unsigned lineno = 1; pos < len; lineno++) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t ll = (nl ? (size_t)(nl - text) : len) - pos;
        const char *s = text + pos;
        pos += ll + 1;
        bool ok = true;
        if (ll > ROUTES_LINE_MAX)
            ok = why_set(why, sizeof why, "line is longer than %d octets", ROUTES_LINE_MAX);
        else if (memchr(s, 0, ll))
            ok = why_set(why, sizeof why, "line contains a NUL byte");
        else if (!blank_line(s, ll)) {
            while (is_blank(*s))
                s++, ll--;
            ok = routes_line(r, cap, s, ll, lineno, def_tls, why, sizeof why);
        }
        if (!ok) {
            snprintf(err, errlen, "%s:%u: %s", name, lineno, why);
            return false;
        }
    }
    return true;
}

/* cmp_route - qsort/bsearch order of patterns. */
static int cmp_route(const void *a, const void *b)
{
    const struct route *x = *(const struct route *const *)a, *y = *(const struct route *const *)b;
    return strcmp(x->pattern, y->pattern);
}

/* routes_index - sort the file's routes by pattern; a pattern twice is an
 * error naming both lines. */
static bool routes_index(struct routes *r, size_t nfile, const char *name, char *err, size_t errlen)
{
    r->sorted = calloc(nfile ? nfile : 1, sizeof *r->sorted);
    if (!r->sorted) {
        snprintf(err, errlen, "%s: out of memory", name);
        return false;
    }
    for (size_t i = 0; i < nfile; i++)
        r->sorted[i] = &r->v[i];
    r->nsorted = nfile;
    qsort(r->sorted, nfile, sizeof *r->sorted, cmp_route);
    for (size_t i = 1; i < nfile; i++)
        if (strcmp(r->sorted[i - 1]->pattern, r->sorted[i]->pattern) == 0) {
            const struct route *a = r->sorted[i - 1], *b = r->sorted[i];
            snprintf(err, errlen, "%s:%u: %s: given twice (first on line %u)", name,
                     a->line > b->line ? a->line : b->line, a->pattern,
                     a->line < b->line ? a->line : b->line);
            return false;
        }
    return true;
}

struct routes *routes_parse(const char *name, const char *text, size_t len,
                            const char *default_route, enum route_tls def_tls, char *err,
                            size_t errlen)
{
    struct routes *r = calloc(1, sizeof *r);
    size_t cap = 0;
    char why[ROUTES_WHY_MAX];
    name = name ? name : "relay_routes";
    snprintf(err, errlen, "%s", "");
    if (!r) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    bool ok = !text || routes_text(r, &cap, name, text, len, def_tls, err, errlen);
    size_t nfile = r->n;
    if (ok && default_route && *default_route) {
        struct route *slot = routes_push(r, &cap);
        ok = slot && routes_parse_spec(default_route, strlen(default_route), def_tls, slot, why,
                                       sizeof why);
        if (!ok)
            snprintf(err, errlen, "default_route: %s", slot ? why : "out of memory");
        else
            r->def = slot, r->n++;
    }
    ok = ok && routes_index(r, nfile, name, err, errlen);
    if (ok && r->def)
        r->def = &r->v[r->n - 1]; /* v no longer moves */
    if (!ok) {
        routes_free(r);
        return NULL;
    }
    return r;
}

struct routes *routes_load(const char *path, const char *default_route, enum route_tls def_tls,
                           char *err, size_t errlen)
{
    if (!path)
        return routes_parse(NULL, NULL, 0, default_route, def_tls, err, errlen);
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct sb text = {0};
    char chunk[8192];
    size_t got;
    bool ok = true;
    while (ok && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
        ok = sb_append(&text, chunk, got);
    int e = ferror(f) ? EIO : ok ? 0 : ENOMEM;
    fclose(f);
    struct routes *r = NULL;
    if (e)
        snprintf(err, errlen, "%s: %s", path, strerror(e));
    else
        r = routes_parse(path, text.data ? text.data : "", text.len, default_route, def_tls, err,
                         errlen);
    sb_free(&text);
    return r;
}

void routes_free(struct routes *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        routes_route_release(&r->v[i]);
    free(r->v);
    free(r->sorted);
    free(r);
}

bool routes_on(const struct routes *r)
{
    return r && r->n > 0;
}

/* find_pattern - the file route whose pattern is exactly p, or NULL. */
static const struct route *find_pattern(const struct routes *r, const char *p)
{
    struct route key;
    const struct route *kp = &key;
    snprintf(key.pattern, sizeof key.pattern, "%s", p);
    struct route **hit = bsearch(&kp, r->sorted, r->nsorted, sizeof *r->sorted, cmp_route);
    return hit ? *hit : NULL;
}

const struct route *routes_lookup(const struct routes *r, const char *domain, size_t len)
{
    char d[ROUTE_HOST_MAX + 2];
    if (!r)
        return NULL;
    if (len && domain[len - 1] == '.')
        len--;
    if (len == 0 || len > ROUTE_HOST_MAX || memchr(domain, 0, len))
        return r->def;
    lower_copy(d, domain, len);
    const struct route *hit = find_pattern(r, d);
    for (size_t i = 0; !hit && i < len; i++) /* leftmost dot = longest suffix */
        if (d[i] == '.')
            hit = find_pattern(r, d + i);
    return hit ? hit : r->def;
}

const struct route *routes_lookup_addr(const struct routes *r, const char *addr)
{
    const char *at = addr ? strrchr(addr, '@') : NULL;
    return at ? routes_lookup(r, at + 1, strlen(at + 1)) : NULL;
}

size_t routes_count(const struct routes *r)
{
    return r ? r->n : 0;
}

const struct route *routes_at(const struct routes *r, size_t i)
{
    return r && i < r->n ? &r->v[i] : NULL;
}

bool routes_check_domains(const struct routes *r, char *const *domains, size_t n, char *err,
                          size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        if (!routes_lookup(r, domains[i], strlen(domains[i]))) {
            snprintf(err, errlen,
                     "local_domains: %s has no route (add it to relay_routes "
                     "or set default_route)",
                     domains[i]);
            return false;
        }
    return true;
}

bool routes_uses_tls(const struct routes *r, enum route_tls m)
{
    for (size_t i = 0; r && i < r->n; i++)
        if (r->v[i].tls == m)
            return true;
    return false;
}

bool routes_format(const struct route *rt, struct sb *out)
{
    bool ok = sb_appends(out, rt->pattern[0] ? rt->pattern : "*");
    for (size_t i = 0; ok && i < rt->nhops; i++)
        ok = sb_printf(out, "%c%s", i ? ',' : ' ', rt->hops[i].text);
    return ok && sb_printf(out, " tls=%s", routes_tls_name(rt->tls));
}

const char *routes_tls_name(enum route_tls m)
{
    return (unsigned)m < MX_ARRAY_LEN(tls_names) ? tls_names[m] : "?";
}
