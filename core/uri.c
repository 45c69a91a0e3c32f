/* uri.c - URI host extraction for the SURBL/URIBL filter. Three stages run
 * over one pass of the message: a line walker (MIME headers, boundary stack,
 * part selection), a transfer decoder (identity, quoted-printable, base64,
 * then HTML character references) and a byte-at-a-time URL scanner that
 * collects authorities. Pure and allocation-free; the whole state lives on
 * the caller's stack, so any thread may call it. */
#include "uri.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

#define URI_AUTH_MAX 320  /* authority octets kept after the last '@' */
#define URI_CT_MAX 1024   /* unfolded Content-Type value kept */
#define URI_CTE_MAX 32    /* unfolded Content-Transfer-Encoding value kept */
#define URI_TYPE_MAX 64   /* "type/subtype" kept for comparison */
#define URI_ENT_MAX 10    /* longest character reference buffered ("&#x0002F") */
#define URI_NONASCII 0x80 /* stands for a decoded non-ASCII character */
#define IPV4_PARTS 4
#define IPV4_PART_DIGITS 12 /* longer numeric parts cannot be an address */

/* The last 8 scanned octets, newest in the low byte; reset to spaces. */
#define TAIL_RESET 0x2020202020202020ull
#define PK2(a, b) (((uint64_t)(unsigned char)(a) << 8) | (unsigned char)(b))
#define PK4(a, b, c, d) ((PK2(a, b) << 16) | PK2(c, d))
#define PK5(a, b, c, d, e) ((PK4(a, b, c, d) << 8) | (unsigned char)(e))
#define PK6(a, b, c, d, e, f) ((PK4(a, b, c, d) << 16) | PK2(e, f))
#define MASK(n) ((n) >= 8 ? ~0ull : ((1ull << (8 * (n))) - 1))

enum scan_state {
    S_TEXT = 0, /* looking for "http://", "https://", "www.", "href" */
    S_HOST,     /* collecting an authority */
    S_HREF_EQ,  /* after "href": optional space, then '=' */
    S_HREF_VAL, /* after "href=": optional space, then an optional quote */
    S_HREF_1ST, /* at the first octet of an href value */
    S_HREF_SL,  /* after the first '/' of an href value ("//host" follows?) */
};

/* The URL scanner and its output. */
struct scan {
    uint64_t tail;
    enum scan_state state;
    bool html;   /* undo character references (text/html) */
    size_t elen; /* octets in ent[] ('&' first), 0 = none */
    char ent[URI_ENT_MAX];
    size_t alen; /* octets in auth[] */
    bool over;   /* authority longer than auth[]: drop it */
    char auth[URI_AUTH_MAX];
    struct uri_host *out;
    size_t max, n;
    bool full;
};

enum cte { CTE_IDENT = 0, CTE_QP, CTE_B64 };

/* The transfer decoder of the current part. */
struct dec {
    enum cte cte;
    uint32_t acc; /* base64 sextets */
    int nacc;
};

enum hdr_field { F_NONE = 0, F_CT, F_CTE };

/* The header fields of the entity being parsed (unfolded, truncated). */
struct ent_hdr {
    enum hdr_field cur; /* the field continuation lines belong to */
    bool seen_ct, seen_cte;
    size_t ct_len, cte_len;
    char ct[URI_CT_MAX];
    char cte[URI_CTE_MAX];
};

enum walk_state { W_HEADERS = 0, W_BODY, W_SKIP };

/* The line walker: boundary stack, current entity, decoder, scanner. */
struct walk {
    enum walk_state state;
    size_t depth;
    unsigned flags;
    uint8_t blen[URI_MIME_DEPTH];
    char bnd[URI_MIME_DEPTH][URI_BOUNDARY_MAX];
    struct ent_hdr h;
    struct dec d;
    struct scan s;
};

/* ---- character classes ------------------------------------------------ */

/* is_alnum - ASCII letter or digit. */
static bool is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* is_wsp - space or tab. */
static bool is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* hex_val - value of one hex digit, or -1. */
static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (unsigned char)(c | 0x20);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* lower - ASCII lower case. */
static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* word_char - an octet that continues a host or e-mail word (no "www." start). */
static bool word_char(unsigned char c)
{
    return is_alnum(c) || c == '.' || c == '-' || c == '_' || c == '@';
}

/* auth_char - an octet that may appear in a URL authority we collect. */
static bool auth_char(unsigned char c)
{
    return is_alnum(c) || c == '.' || c == '-' || c == '_' || c == '%' || c == ':' || c == '@';
}

/* ---- host validation -------------------------------------------------- */

/* ipv4_part - parse one WHATWG IPv4 part (decimal, 0-octal, 0x-hex). */
static bool ipv4_part(const char *s, size_t n, uint64_t *v)
{
    unsigned base = 10;
    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16, s += 2, n -= 2;
    } else if (n >= 2 && s[0] == '0') {
        base = 8, s++, n--;
    }
    if (n > IPV4_PART_DIGITS || (n == 0 && base != 16))
        return false;
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        int d = hex_val((unsigned char)s[i]);
        if (d < 0 || (unsigned)d >= base)
            return false;
        *v = *v * base + (unsigned)d;
    }
    return true;
}

/* ipv4_parse - a host whose labels are all numbers, as browsers read it
 * ("1.2.3.4", "3232235777", "0x7f.1"), into o[4]. */
static bool ipv4_parse(const char *s, size_t n, uint8_t o[IPV4_PARTS])
{
    uint64_t part[IPV4_PARTS];
    size_t np = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.')
            continue;
        if (np == IPV4_PARTS || !ipv4_part(s + start, i - start, &part[np]))
            return false;
        np++, start = i + 1;
    }
    for (size_t i = 0; i + 1 < np; i++)
        if (part[i] > 255)
            return false;
    size_t rest = IPV4_PARTS - (np - 1); /* octets the last part fills */
    if (part[np - 1] >> (8 * rest))
        return false;
    uint32_t a = 0;
    for (size_t i = 0; i + 1 < np; i++)
        a |= (uint32_t)part[i] << (8 * (IPV4_PARTS - 1 - i));
    a |= (uint32_t)part[np - 1];
    for (size_t i = 0; i < IPV4_PARTS; i++)
        o[i] = (uint8_t)(a >> (8 * (IPV4_PARTS - 1 - i)));
    return true;
}

/* tld_ok - the last label of a DNS name: letters, or "xn--" + LDH. */
static bool tld_ok(const char *s, size_t n)
{
    if (n < 2)
        return false;
    if (n > 4 && memcmp(s, "xn--", 4) == 0) {
        for (size_t i = 4; i < n; i++)
            if (!is_alnum((unsigned char)s[i]) && s[i] != '-')
                return false;
        return true;
    }
    for (size_t i = 0; i < n; i++)
        if (!(s[i] >= 'a' && s[i] <= 'z'))
            return false;
    return true;
}

/* name_ok - a lower-case DNS name of >= 2 labels of [a-z0-9_-], 1..63 each,
 * none starting or ending with '-'. */
static bool name_ok(const char *s, size_t n)
{
    size_t start = 0, labels = 0;
    if (n == 0 || n > URI_HOST_MAX)
        return false;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.') {
            unsigned char c = (unsigned char)s[i];
            if (!is_alnum(c) && c != '-' && c != '_')
                return false;
            continue;
        }
        if (i == start || i - start > URI_LABEL_MAX || s[start] == '-' || s[i - 1] == '-')
            return false;
        labels++, start = i + 1;
    }
    size_t last = n;
    while (last > 0 && s[last - 1] != '.')
        last--;
    return labels >= 2 && tld_ok(s + last, n - last);
}

/* pct_decode - %XX-decode and lower-case a[0..n) into buf; false if a '%'
 * is not followed by two hex digits or the result does not fit. */
static bool pct_decode(const char *a, size_t n, char *buf, size_t cap, size_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c == '%') {
            if (i + 2 >= n)
                return false;
            int hi = hex_val((unsigned char)a[i + 1]), lo = hex_val((unsigned char)a[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (k == cap)
            return false;
        buf[k++] = (char)lower(c);
    }
    *out = k;
    return true;
}

/* uri_host_parse - see uri.h. */
bool uri_host_parse(const char *a, size_t n, struct uri_host *h)
{
    char buf[URI_AUTH_MAX];
    size_t k;
    const char *at = n ? memrchr(a, '@', n) : NULL;
    if (at) {
        n -= (size_t)(at + 1 - a);
        a = at + 1;
    }
    const char *colon = n ? memchr(a, ':', n) : NULL;
    if (colon)
        n = (size_t)(colon - a);
    if (!pct_decode(a, n, buf, sizeof(buf), &k))
        return false;
    while (k > 0 && buf[k - 1] == '.')
        k--;
    uint8_t o[IPV4_PARTS];
    size_t last = k;
    while (last > 0 && buf[last - 1] != '.')
        last--;
    bool numeric = k > last && ipv4_part(buf + last, k - last, &(uint64_t){0});
    memset(h, 0, sizeof(*h));
    if (numeric) {
        if (!ipv4_parse(buf, k, o))
            return false;
        int len = snprintf(h->name, sizeof(h->name), "%u.%u.%u.%u", o[0], o[1], o[2], o[3]);
        h->len = (uint16_t)len;
        h->is_ip = true;
        return true;
    }
    if (!name_ok(buf, k))
        return false;
    memcpy(h->name, buf, k);
    h->len = (uint16_t)k;
    return true;
}

/* ---- URL scanner ------------------------------------------------------ */

/* out_add - append h unless already present; sets full when out[] is. */
static void out_add(struct scan *s, const struct uri_host *h)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->out[i].len == h->len && memcmp(s->out[i].name, h->name, h->len) == 0)
            return;
    if (s->n == s->max) {
        s->full = true;
        return;
    }
    s->out[s->n++] = *h;
}

/* host_start - begin collecting an authority, seeded with prefix. */
static void host_start(struct scan *s, const char *prefix, size_t n)
{
    memcpy(s->auth, prefix, n);
    s->alen = n;
    s->over = false;
    s->state = S_HOST;
}

/* host_add - one authority octet; '@' drops the userinfo collected so far. */
static void host_add(struct scan *s, unsigned char c)
{
    if (c == '@') {
        s->alen = 0;
        s->over = false;
    } else if (s->alen < sizeof(s->auth)) {
        s->auth[s->alen++] = (char)c;
    } else {
        s->over = true;
    }
}

/* host_done - the authority ended: validate it and record the host. */
static void host_done(struct scan *s)
{
    struct uri_host h;
    if (!s->over && s->alen && uri_host_parse(s->auth, s->alen, &h))
        out_add(s, &h);
    s->state = S_TEXT;
}

/* text_byte - S_TEXT: c (already in the tail) may complete a URL start. */
static void text_byte(struct scan *s, unsigned char c)
{
    uint64_t t = s->tail;
    if (c == '/' || c == '\\') {
        unsigned char prev = (unsigned char)(t >> 8);
        if (prev != '/' && prev != '\\')
            return;
        if (((t >> 16) & MASK(5)) == PK5('h', 't', 't', 'p', ':') ||
            ((t >> 16) & MASK(6)) == PK6('h', 't', 't', 'p', 's', ':'))
            host_start(s, "", 0);
    } else if (c == '.') {
        if ((t & MASK(4)) == PK4('w', 'w', 'w', '.') && !word_char((unsigned char)(t >> 32)))
            host_start(s, "www.", 4);
    } else if (c == 'f' || c == 'F') {
        if ((t & MASK(4)) == PK4('h', 'r', 'e', 'f') && !word_char((unsigned char)(t >> 32)))
            s->state = S_HREF_EQ;
    }
}

/* href_byte - the href states; returns false when c must be rescanned as
 * text (the value is not "//host"). */
static bool href_byte(struct scan *s, unsigned char c)
{
    bool space = is_wsp(c) || c == '\r' || c == '\n';
    switch (s->state) {
    case S_HREF_EQ:
        if (space)
            return true;
        if (c == '=') {
            s->state = S_HREF_VAL;
            return true;
        }
        break;
    case S_HREF_VAL:
        if (space)
            return true;
        s->state = S_HREF_1ST;
        if (c == '"' || c == '\'')
            return true;
        return href_byte(s, c); /* an unquoted value starts with c */
    case S_HREF_1ST:
    case S_HREF_SL:
        if (c == '/' || c == '\\') {
            if (s->state == S_HREF_SL)
                host_start(s, "", 0);
            else
                s->state = S_HREF_SL;
            return true;
        }
        break;
    default: break;
    }
    s->state = S_TEXT;
    return false;
}

/* scan_byte - feed one decoded octet to the URL scanner. Every octet goes
 * into the tail, so a URL start right after an authority is still seen. */
static void scan_byte(struct scan *s, unsigned char c)
{
    s->tail = (s->tail << 8) | lower(c);
    if (s->state == S_HOST) {
        if (auth_char(c)) {
            host_add(s, c);
            return;
        }
        host_done(s);
    } else if (s->state != S_TEXT && href_byte(s, c)) {
        return;
    }
    text_byte(s, c);
}

/* A named character reference that can matter inside a URL. */
struct ent_name {
    const char *name;
    unsigned char c;
};

static const struct ent_name ent_names[] = {
    {"amp", '&'},    {"lt", '<'},     {"gt", '>'},    {"quot", '"'},   {"apos", '\''},
    {"sol", '/'},    {"bsol", '\\'},  {"colon", ':'}, {"period", '.'}, {"commat", '@'},
    {"percnt", '%'}, {"lowbar", '_'}, {"quest", '?'}, {"num", '#'},    {"nbsp", ' '},
};

/* ent_value - the octet a reference "&..." (without ';') stands for, or -1. */
static int ent_value(const char *e, size_t n)
{
    if (n >= 3 && e[1] == '#') {
        bool hex = e[2] == 'x' || e[2] == 'X';
        size_t i = hex ? 3 : 2;
        uint32_t v = 0;
        if (i == n)
            return -1;
        for (; i < n; i++) {
            int d = hex_val((unsigned char)e[i]);
            if (!hex && d > 9)
                d = -1;
            if (d < 0)
                return -1;
            v = v * (hex ? 16 : 10) + (uint32_t)d; /* <= 8 digits: no overflow */
        }
        return (v > 0 && v < URI_NONASCII) ? (int)v : URI_NONASCII;
    }
    for (size_t i = 0; i < MX_ARRAY_LEN(ent_names); i++)
        if (strlen(ent_names[i].name) == n - 1 && memcmp(ent_names[i].name, e + 1, n - 1) == 0)
            return ent_names[i].c;
    return -1;
}

/* ent_flush - pass a buffered non-reference through unchanged. */
static void ent_flush(struct scan *s)
{
    size_t n = s->elen;
    s->elen = 0;
    for (size_t i = 0; i < n; i++)
        scan_byte(s, (unsigned char)s->ent[i]);
}

/* emit - one octet out of the transfer decoder: undo character references
 * in HTML, then scan. */
static void emit(struct scan *s, unsigned char c)
{
    if (!s->html) {
        scan_byte(s, c);
        return;
    }
    if (s->elen) {
        if (c == ';') {
            int v = ent_value(s->ent, s->elen);
            if (v >= 0) {
                s->elen = 0;
                scan_byte(s, (unsigned char)v);
                return;
            }
            ent_flush(s);
        } else if ((is_alnum(c) || (c == '#' && s->elen == 1)) && s->elen < sizeof(s->ent)) {
            s->ent[s->elen++] = (char)c;
            return;
        } else {
            ent_flush(s);
        }
    }
    if (c == '&') {
        s->ent[0] = '&';
        s->elen = 1;
        return;
    }
    scan_byte(s, c);
}

/* scan_part - start scanning a new text part. */
static void scan_part(struct scan *s, bool html)
{
    s->html = html;
    s->elen = 0;
    s->state = S_TEXT;
    s->tail = TAIL_RESET;
}

/* scan_break - a part ended: finish any pending reference and authority. */
static void scan_break(struct scan *s)
{
    ent_flush(s);
    if (s->state == S_HOST)
        host_done(s);
    s->state = S_TEXT;
    s->tail = TAIL_RESET;
}

/* ---- transfer decoders ------------------------------------------------ */

/* b64_flush - emit the octets of a partial quantum ('=' or end of part). */
static void b64_flush(struct walk *w)
{
    struct dec *d = &w->d;
    if (d->nacc == 1)
        w->flags |= URI_F_BAD_ENC; /* six bits make no octet */
    if (d->nacc == 2)
        emit(&w->s, (unsigned char)(d->acc >> 4));
    if (d->nacc == 3) {
        emit(&w->s, (unsigned char)(d->acc >> 10));
        emit(&w->s, (unsigned char)(d->acc >> 2));
    }
    d->nacc = 0;
    d->acc = 0;
}

/* b64_line - decode one base64 line; junk octets are skipped, '=' ends a
 * quantum and decoding goes on after it (concatenated encodings). */
static void b64_line(struct walk *w, const unsigned char *p, size_t n)
{
    struct dec *d = &w->d;
    for (size_t i = 0; i < n; i++) {
        int v = mx_b64_val(p[i]);
        if (v < 0) {
            if (p[i] == '=')
                b64_flush(w);
            else if (!is_wsp(p[i]))
                w->flags |= URI_F_BAD_ENC;
            continue;
        }
        d->acc = (d->acc << 6) | (uint32_t)v;
        if (++d->nacc == 4) {
            emit(&w->s, (unsigned char)(d->acc >> 16));
            emit(&w->s, (unsigned char)(d->acc >> 8));
            emit(&w->s, (unsigned char)d->acc);
            d->nacc = 0;
            d->acc = 0;
        }
    }
}

/* qp_line - decode one quoted-printable line (RFC 2045 6.7): trailing white
 * space dropped, a final '=' joins the next line, a bad "=XX" is kept. */
static void qp_line(struct walk *w, const unsigned char *p, size_t n, bool eol)
{
    while (n > 0 && is_wsp(p[n - 1]))
        n--;
    bool soft = n > 0 && p[n - 1] == '=';
    if (soft)
        n--;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (p[i] == '=' && i + 2 < n && (hi = hex_val(p[i + 1])) >= 0 &&
            (lo = hex_val(p[i + 2])) >= 0) {
            emit(&w->s, (unsigned char)(hi * 16 + lo));
            i += 2;
            continue;
        }
        if (p[i] == '=')
            w->flags |= URI_F_BAD_ENC;
        emit(&w->s, p[i]);
    }
    if (eol && !soft)
        emit(&w->s, '\n');
}

/* body_line - one line of the text part being scanned. */
static void body_line(struct walk *w, const char *line, size_t n, bool eol)
{
    const unsigned char *p = (const unsigned char *)line;
    switch (w->d.cte) {
    case CTE_QP: qp_line(w, p, n, eol); break;
    case CTE_B64: b64_line(w, p, n); break;
    default:
        for (size_t i = 0; i < n && !w->s.full; i++)
            emit(&w->s, p[i]);
        if (eol)
            emit(&w->s, '\n');
        break;
    }
}

/* part_end - the entity being scanned ended (boundary or end of message). */
static void part_end(struct walk *w)
{
    if (w->state == W_BODY) {
        if (w->d.cte == CTE_B64)
            b64_flush(w);
        scan_break(&w->s);
    }
}

/* ---- MIME walker ------------------------------------------------------ */

/* field_append - append value octets to a field buffer, dropping overflow. */
static void field_append(char *buf, size_t *len, size_t cap, const char *p, size_t n)
{
    size_t room = cap - *len;
    if (n > room)
        n = room;
    memcpy(buf + *len, p, n);
    *len += n;
}

/* hdr_start - a header block (message or part) begins. */
static void hdr_start(struct walk *w)
{
    w->h.cur = F_NONE;
    w->h.seen_ct = w->h.seen_cte = false;
    w->h.ct_len = w->h.cte_len = 0;
    w->state = W_HEADERS;
}

/* hdr_value - append (folded) value text to the current field. */
static void hdr_value(struct walk *w, const char *p, size_t n)
{
    struct ent_hdr *h = &w->h;
    if (h->cur == F_CT)
        field_append(h->ct, &h->ct_len, sizeof(h->ct), p, n);
    else if (h->cur == F_CTE)
        field_append(h->cte, &h->cte_len, sizeof(h->cte), p, n);
}

/* field_name_ok - a header field name: visible ASCII, no ':' (RFC 5322 3.6.8). */
static bool field_name_ok(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] >= 0x7f)
            return false;
    return n > 0;
}

/* name_is - case-insensitive comparison of p[0..n) with the C string s. */
static bool name_is(const char *p, size_t n, const char *s)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)p[i]) != (unsigned char)s[i])
            return false;
    return true;
}

/* token_lower - copy the token at v[*i..n) (after white space, up to ';',
 * white space or '=') lower-cased into t; advances *i. */
static size_t token_lower(const char *v, size_t n, size_t *i, char *t, size_t cap)
{
    size_t k = 0;
    while (*i < n && is_wsp((unsigned char)v[*i]))
        (*i)++;
    for (; *i < n && v[*i] != ';' && v[*i] != '=' && !is_wsp((unsigned char)v[*i]); (*i)++)
        if (k < cap)
            t[k++] = (char)lower((unsigned char)v[*i]);
    return k;
}

/* param_value - the value at v[*i..n) (token or quoted string, backslash
 * escapes undone) into t; advances *i past it. Returns its length, or
 * cap + 1 when it did not fit. */
static size_t param_value(const char *v, size_t n, size_t *i, char *t, size_t cap)
{
    size_t k = 0;
    while (*i < n && is_wsp((unsigned char)v[*i]))
        (*i)++;
    bool quoted = *i < n && v[*i] == '"';
    if (quoted)
        (*i)++;
    for (; *i < n; (*i)++) {
        char c = v[*i];
        if (quoted && c == '"') {
            (*i)++;
            break;
        }
        if (!quoted && (c == ';' || is_wsp((unsigned char)c)))
            break;
        if (quoted && c == '\\' && *i + 1 < n)
            c = v[++(*i)];
        if (k < cap)
            t[k] = c;
        if (k <= cap)
            k++;
    }
    return k;
}

/* ct_boundary - the boundary parameter of a Content-Type value into w's
 * stack slot at depth; false if absent, empty or too long. */
static bool ct_boundary(struct walk *w, const char *v, size_t n)
{
    char name[sizeof("boundary")];
    size_t i = 0;
    while (i < n && v[i] != ';')
        i++;
    while (i < n) {
        i++; /* the ';' */
        size_t nl = token_lower(v, n, &i, name, sizeof(name));
        while (i < n && is_wsp((unsigned char)v[i]))
            i++;
        if (i < n && v[i] == '=') {
            i++;
            char *b = w->bnd[w->depth];
            size_t bl = param_value(v, n, &i, b, URI_BOUNDARY_MAX);
            if (nl == strlen("boundary") && memcmp(name, "boundary", nl) == 0) {
                w->blen[w->depth] = (uint8_t)bl;
                return bl > 0 && bl <= URI_BOUNDARY_MAX;
            }
        }
        while (i < n && v[i] != ';')
            i++;
    }
    return false;
}

/* entity_kind - what to do with the body of the entity whose header just
 * ended. */
enum ent_kind { K_SKIP = 0, K_TEXT, K_HTML, K_MULTI, K_MESSAGE };

/* hdr_kind - classify the entity by its Content-Type (RFC 2045 5.2: none
 * or unparsable means text/plain). */
static enum ent_kind hdr_kind(const struct ent_hdr *h)
{
    char t[URI_TYPE_MAX];
    size_t i = 0, n = token_lower(h->ct, h->ct_len, &i, t, sizeof(t));
    const char *slash = memchr(t, '/', n);
    if (!h->seen_ct || !slash || slash == t || slash == t + n - 1)
        return K_TEXT;
    if (n > strlen("multipart/") && memcmp(t, "multipart/", strlen("multipart/")) == 0)
        return K_MULTI;
    if (name_is(t, n, "message/rfc822") || name_is(t, n, "message/global"))
        return K_MESSAGE;
    if (name_is(t, n, "text/plain"))
        return K_TEXT;
    return name_is(t, n, "text/html") ? K_HTML : K_SKIP;
}

/* hdr_cte - the Content-Transfer-Encoding of the entity (unknown: identity). */
static enum cte hdr_cte(const struct ent_hdr *h)
{
    char t[URI_CTE_MAX];
    size_t i = 0, n = token_lower(h->cte, h->cte_len, &i, t, sizeof(t));
    if (name_is(t, n, "quoted-printable"))
        return CTE_QP;
    return name_is(t, n, "base64") ? CTE_B64 : CTE_IDENT;
}

/* body_start - start scanning the entity body as text. */
static void body_start(struct walk *w, enum cte cte, bool html)
{
    w->d.cte = cte;
    w->d.acc = 0;
    w->d.nacc = 0;
    scan_part(&w->s, html);
    w->state = W_BODY;
}

/* hdr_end - the header block ended: push a boundary, start an embedded
 * message, or start or skip the body. */
static void hdr_end(struct walk *w)
{
    enum ent_kind k = hdr_kind(&w->h);
    enum cte cte = hdr_cte(&w->h);
    if (k == K_MULTI) {
        if (w->depth == URI_MIME_DEPTH) {
            w->flags |= URI_F_DEEP;
            body_start(w, CTE_IDENT, false); /* too deep: scan it raw */
        } else if (ct_boundary(w, w->h.ct, w->h.ct_len)) {
            w->depth++;
            w->state = W_SKIP; /* the preamble */
        } else {
            body_start(w, CTE_IDENT, false);
        }
    } else if (k == K_MESSAGE && cte == CTE_IDENT) {
        hdr_start(w);
    } else if (k == K_TEXT || k == K_HTML) {
        body_start(w, cte, k == K_HTML);
    } else {
        w->state = W_SKIP;
    }
}

/* hdr_line - one line of a header block. A line that is not a field ends
 * the block and is body text (tolerates a missing empty line). */
static void hdr_line(struct walk *w, const char *p, size_t n, bool eol)
{
    if (n == 0) {
        hdr_end(w);
        return;
    }
    if (is_wsp((unsigned char)p[0])) {
        hdr_value(w, " ", 1);
        hdr_value(w, p, n);
        return;
    }
    const char *colon = memchr(p, ':', n);
    size_t nl = colon ? (size_t)(colon - p) : 0;
    while (nl > 0 && is_wsp((unsigned char)p[nl - 1]))
        nl--;
    if (!colon || !field_name_ok(p, nl)) {
        hdr_end(w);
        if (w->state == W_BODY)
            body_line(w, p, n, eol);
        return;
    }
    struct ent_hdr *h = &w->h;
    h->cur = F_NONE;
    if (name_is(p, nl, "content-type") && !h->seen_ct)
        h->cur = F_CT, h->seen_ct = true;
    else if (name_is(p, nl, "content-transfer-encoding") && !h->seen_cte)
        h->cur = F_CTE, h->seen_cte = true;
    size_t skip = (size_t)(colon - p) + 1;
    hdr_value(w, p + skip, n - skip);
}

/* bnd_match - the stack level whose delimiter line p[0..n) is (innermost
 * first), or -1; *close says "--boundary--". */
static int bnd_match(const struct walk *w, const char *p, size_t n, bool *close)
{
    if (n < 2 || p[0] != '-' || p[1] != '-')
        return -1;
    for (size_t k = w->depth; k-- > 0;) {
        size_t bl = w->blen[k];
        if (n - 2 >= bl && memcmp(p + 2, w->bnd[k], bl) == 0) {
            *close = n - 2 - bl >= 2 && p[2 + bl] == '-' && p[3 + bl] == '-';
            return (int)k;
        }
    }
    return -1;
}

/* walk_line - one line (without its line end) of the message. */
static void walk_line(struct walk *w, const char *p, size_t n, bool eol)
{
    bool close = false;
    int k = bnd_match(w, p, n, &close);
    if (k >= 0) {
        part_end(w);
        if (close) {
            w->depth = (size_t)k;
            w->state = W_SKIP; /* the epilogue */
        } else {
            w->depth = (size_t)k + 1;
            hdr_start(w);
        }
        return;
    }
    if (w->state == W_HEADERS)
        hdr_line(w, p, n, eol);
    else if (w->state == W_BODY)
        body_line(w, p, n, eol);
}

/* uri_extract - see uri.h. */
size_t uri_extract(const char *msg, size_t len, struct uri_host *out, size_t max, unsigned *flags)
{
    struct walk w;
    memset(&w, 0, sizeof(w));
    w.s.out = out;
    w.s.max = max;
    w.s.tail = TAIL_RESET;
    hdr_start(&w);
    size_t pos = 0;
    while (pos < len && !w.s.full) {
        const char *nl = memchr(msg + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - msg) : len, n = end - pos;
        if (n > 0 && msg[pos + n - 1] == '\r')
            n--;
        walk_line(&w, msg + pos, n, nl != NULL);
        pos = nl ? end + 1 : len;
    }
    if (!w.s.full) {
        part_end(&w);
        if (w.depth > 0)
            w.flags |= URI_F_UNCLOSED;
    }
    if (w.s.full)
        w.flags |= URI_F_TRUNCATED;
    if (flags)
        *flags = w.flags;
    return w.s.n;
}
