/* smtp_parse.c - pure parsers for SMTP command lines: the verb table, MAIL/RCPT
 * reverse/forward paths (RFC 5321 4.1.2, RFC 6531 UTF-8), the ESMTP parameter
 * table and HELO/EHLO domains. No I/O, no allocation, no global mutable state:
 * any thread may call any function here. */
#include "smtp_parse.h"

#include <arpa/inet.h>
#include <string.h>

#include "util.h"

#define SMTP_SP ' '
#define SMTP_LITERAL_MAX 64 /* longest address-literal content we validate */
#define SMTP_IPV6_TAG "IPv6:"

/* One verb of the command table, indexed by enum smtp_verb. */
struct verb_def {
    const char *name;
    size_t len;
};

#define VERB(v, s) [v] = {s, sizeof(s) - 1}
static const struct verb_def verb_table[SMTP_VERB_COUNT] = {
    VERB(SMTP_VERB_UNKNOWN, ""),  VERB(SMTP_VERB_HELO, "HELO"),
    VERB(SMTP_VERB_EHLO, "EHLO"), VERB(SMTP_VERB_MAIL, "MAIL"),
    VERB(SMTP_VERB_RCPT, "RCPT"), VERB(SMTP_VERB_DATA, "DATA"),
    VERB(SMTP_VERB_RSET, "RSET"), VERB(SMTP_VERB_NOOP, "NOOP"),
    VERB(SMTP_VERB_QUIT, "QUIT"), VERB(SMTP_VERB_VRFY, "VRFY"),
    VERB(SMTP_VERB_HELP, "HELP"), VERB(SMTP_VERB_STARTTLS, "STARTTLS"),
    VERB(SMTP_VERB_AUTH, "AUTH"), VERB(SMTP_VERB_EXPN, "EXPN"),
    VERB(SMTP_VERB_TURN, "TURN"), VERB(SMTP_VERB_ETRN, "ETRN"),
    VERB(SMTP_VERB_BDAT, "BDAT"),
};
#undef VERB

/* A read cursor over the argument bytes: p[i..n) is still unparsed. */
struct pcur {
    const unsigned char *p;
    size_t i, n;
};

/* What parse_path() learns before it assembles smtp_addr.addr. */
struct path_parts {
    char local[SMTP_LOCAL_MAX + 1]; /* normalised local part (maybe re-quoted) */
    size_t local_len;
    size_t dom_off, dom_len; /* domain as offsets into the cursor bytes */
    bool has_domain;
};

/* peek - the next byte, or -1 at the end. */
static int peek(const struct pcur *c)
{
    return c->i < c->n ? c->p[c->i] : -1;
}

/* skip_sp - step over SP characters. */
static void skip_sp(struct pcur *c)
{
    while (c->i < c->n && c->p[c->i] == SMTP_SP)
        c->i++;
}

/* is_alnum - ASCII letter or digit (locale independent). */
static bool is_alnum(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* is_atext - RFC 5322 atext, ASCII part (UTF-8 is checked separately). */
static bool is_atext(int ch)
{
    return is_alnum(ch) || (ch > 0 && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL);
}

/* utf8_seq - length (2..4) of the valid UTF-8 sequence at p, or 0 if it is
 * malformed, overlong, a surrogate or beyond U+10FFFF. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned lo = 0x80, hi = 0xBF;
    size_t k;
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        k = 2;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        k = 3;
        lo = p[0] == 0xE0 ? 0xA0 : lo;
        hi = p[0] == 0xED ? 0x9F : hi;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        k = 4;
        lo = p[0] == 0xF0 ? 0x90 : lo;
        hi = p[0] == 0xF4 ? 0x8F : hi;
    } else {
        return 0;
    }
    if (n < k || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t j = 2; j < k; j++)
        if (p[j] < 0x80 || p[j] > 0xBF)
            return 0;
    return k;
}

/* take_utf8 - consume one UTF-8 sequence at the cursor; false if invalid. */
static bool take_utf8(struct pcur *c, bool *utf8)
{
    size_t k = utf8_seq(c->p + c->i, c->n - c->i);
    if (!k)
        return false;
    c->i += k;
    *utf8 = true;
    return true;
}

/* parse_dot_atom - consume a dot-atom local part; the caller checks its length. */
static enum smtp_perr parse_dot_atom(struct pcur *c, bool *utf8)
{
    for (;;) {
        size_t start = c->i;
        for (int ch; (ch = peek(c)) >= 0;) {
            if (is_atext(ch))
                c->i++;
            else if (ch < 0x80 || !take_utf8(c, utf8))
                break;
        }
        if (c->i == start)
            return SMTP_P_BAD_ADDR;
        if (peek(c) != '.')
            return SMTP_P_OK;
        c->i++;
    }
}

/* is_dot_atom - is s[0..n) exactly a dot-atom (so needs no quoting)? */
static bool is_dot_atom(const unsigned char *s, size_t n)
{
    bool utf8 = false;
    struct pcur c = {s, 0, n};
    return parse_dot_atom(&c, &utf8) == SMTP_P_OK && c.i == n;
}

/* parse_quoted - consume a quoted-string local part, decoding quoted pairs
 * into dec (at most SMTP_LOCAL_MAX octets). */
static enum smtp_perr parse_quoted(struct pcur *c, unsigned char *dec, size_t *dlen, bool *utf8)
{
    size_t n = 0;
    c->i++; /* opening DQUOTE */
    for (int ch; (ch = peek(c)) != '"';) {
        size_t from = c->i;
        if (ch < 0)
            return SMTP_P_BAD_ADDR;
        if (ch == '\\') {
            c->i++;
            ch = peek(c);
            if (ch < ' ' || ch > '~')
                return SMTP_P_BAD_ADDR;
            c->i++;
            from = c->i - 1;
        } else if (ch >= 0x80) {
            if (!take_utf8(c, utf8))
                return SMTP_P_BAD_ADDR;
        } else if (ch < ' ' || ch > '~') {
            return SMTP_P_BAD_ADDR;
        } else {
            c->i++;
        }
        if (c->i - from > SMTP_LOCAL_MAX - n)
            return SMTP_P_PATH_TOO_LONG;
        memcpy(dec + n, c->p + from, c->i - from);
        n += c->i - from;
    }
    c->i++; /* closing DQUOTE */
    *dlen = n;
    return SMTP_P_OK;
}

/* requote - write dec as a canonical quoted-string into pp->local; false if
 * it would not fit (cannot happen for input that passed the length check). */
static bool requote(struct path_parts *pp, const unsigned char *dec, size_t n)
{
    size_t o = 0;
    pp->local[o++] = '"';
    for (size_t j = 0; j < n; j++) {
        bool esc = dec[j] == '"' || dec[j] == '\\';
        if (o + esc + 2 > SMTP_LOCAL_MAX) /* this octet and the closing DQUOTE */
            return false;
        if (esc)
            pp->local[o++] = '\\';
        pp->local[o++] = (char)dec[j];
    }
    pp->local[o++] = '"';
    pp->local[o] = 0;
    pp->local_len = o;
    return true;
}

/* parse_local - consume the local part into pp->local: dot-atoms verbatim,
 * quoted strings unquoted when they are dot-atoms, else canonically quoted. */
static enum smtp_perr parse_local(struct pcur *c, struct path_parts *pp, struct smtp_addr *a)
{
    unsigned char dec[SMTP_LOCAL_MAX];
    size_t start = c->i, n = 0;
    enum smtp_perr e;
    bool quoted = peek(c) == '"';
    e = quoted ? parse_quoted(c, dec, &n, &a->utf8) : parse_dot_atom(c, &a->utf8);
    if (e != SMTP_P_OK)
        return e;
    if (c->i - start > SMTP_LOCAL_MAX)
        return SMTP_P_PATH_TOO_LONG;
    if (!quoted) {
        memcpy(pp->local, c->p + start, c->i - start);
        pp->local_len = c->i - start;
    } else if (is_dot_atom(dec, n)) {
        memcpy(pp->local, dec, n);
        pp->local_len = n;
    } else {
        a->quoted = true;
        if (!requote(pp, dec, n))
            return SMTP_P_PATH_TOO_LONG;
    }
    pp->local[pp->local_len] = 0;
    return SMTP_P_OK;
}

/* parse_literal - consume "[1.2.3.4]" or "[IPv6:...]", checked with inet_pton. */
static enum smtp_perr parse_literal(struct pcur *c)
{
    char buf[SMTP_LITERAL_MAX + 1];
    unsigned char bin[sizeof(struct in6_addr)];
    size_t n = 0, tag = sizeof(SMTP_IPV6_TAG) - 1;
    c->i++; /* '[' */
    for (int ch; (ch = peek(c)) != ']'; c->i++) {
        if (ch <= ' ' || ch > '~' || ch == '[' || ch == '\\' || n == SMTP_LITERAL_MAX)
            return SMTP_P_BAD_ADDR;
        buf[n++] = (char)ch;
    }
    c->i++; /* ']' */
    buf[n] = 0;
    if (n > tag && mx_memcaseeq(buf, SMTP_IPV6_TAG, tag))
        return inet_pton(AF_INET6, buf + tag, bin) == 1 ? SMTP_P_OK : SMTP_P_BAD_ADDR;
    return inet_pton(AF_INET, buf, bin) == 1 ? SMTP_P_OK : SMTP_P_BAD_ADDR;
}

/* parse_label - consume one LDH (or UTF-8) label: no leading/trailing hyphen. */
static enum smtp_perr parse_label(struct pcur *c, bool *utf8)
{
    size_t start = c->i;
    bool hyphen = false;
    for (int ch; (ch = peek(c)) >= 0;) {
        if (ch == '-' && c->i == start)
            return SMTP_P_BAD_ADDR;
        if (is_alnum(ch) || ch == '-')
            c->i++;
        else if (ch < 0x80 || !take_utf8(c, utf8))
            break;
        hyphen = ch == '-';
    }
    return c->i == start || hyphen ? SMTP_P_BAD_ADDR : SMTP_P_OK;
}

/* parse_domain - consume a domain (dot-separated labels, no empty label, no
 * trailing dot) or an address literal; the caller checks what follows. */
static enum smtp_perr parse_domain(struct pcur *c, bool *utf8, bool *literal)
{
    if (peek(c) == '[') {
        *literal = true;
        return parse_literal(c);
    }
    for (;;) {
        enum smtp_perr e = parse_label(c, utf8);
        if (e != SMTP_P_OK || peek(c) != '.')
            return e;
        c->i++;
    }
}

/* skip_route - consume an obsolete source route "@a,@b:" (domains checked). */
static enum smtp_perr skip_route(struct pcur *c)
{
    bool utf8 = false, literal = false;
    for (;;) {
        if (peek(c) != '@')
            return SMTP_P_BAD_ADDR;
        c->i++;
        enum smtp_perr e = parse_domain(c, &utf8, &literal);
        if (e != SMTP_P_OK)
            return e;
        int ch = peek(c);
        if (ch != ':' && ch != ',')
            return SMTP_P_BAD_ADDR;
        c->i++;
        if (ch == ':')
            return SMTP_P_OK;
    }
}

/* is_postmaster - is the local part the bare "postmaster" (any case)? */
static bool is_postmaster(const struct path_parts *pp)
{
    static const char pm[] = "postmaster";
    return pp->local_len == sizeof(pm) - 1 && mx_memcaseeq(pp->local, pm, sizeof(pm) - 1);
}

/* parse_mailbox - consume [route] local-part ["@" domain] into pp and a's flags. */
static enum smtp_perr parse_mailbox(struct pcur *c, bool rcpt, struct path_parts *pp,
                                    struct smtp_addr *a)
{
    enum smtp_perr e = SMTP_P_OK;
    if (peek(c) == '@')
        e = skip_route(c);
    if (e == SMTP_P_OK)
        e = parse_local(c, pp, a);
    if (e != SMTP_P_OK)
        return e;
    if (peek(c) != '@')
        return rcpt && is_postmaster(pp) ? SMTP_P_OK : SMTP_P_BAD_ADDR;
    c->i++;
    pp->has_domain = true;
    pp->dom_off = c->i;
    e = parse_domain(c, &a->utf8, &a->addr_literal);
    pp->dom_len = c->i - pp->dom_off;
    if (e == SMTP_P_OK && pp->dom_len > SMTP_DOMAIN_MAX)
        e = SMTP_P_PATH_TOO_LONG;
    return e;
}

/* assemble - write "local@domain" into a->addr (fits: checked by the caller). */
static void assemble(struct smtp_addr *a, const struct path_parts *pp, const struct pcur *c)
{
    memcpy(a->addr, pp->local, pp->local_len);
    a->len = a->at = pp->local_len;
    if (pp->has_domain) {
        a->addr[a->len++] = '@';
        memcpy(a->addr + a->len, c->p + pp->dom_off, pp->dom_len);
        a->len += pp->dom_len;
    }
    a->addr[a->len] = 0;
}

/* parse_path - consume "<path>" or a bare path ending at SP/end into a.
 * rcpt: allow "<postmaster>", reject "<>". */
static enum smtp_perr parse_path(struct pcur *c, bool rcpt, struct smtp_addr *a)
{
    struct path_parts pp = {.has_domain = false};
    struct pcur sub = *c;
    bool bracket = peek(c) == '<';
    if (bracket) {
        sub.i++;
        if (peek(&sub) == '>') {
            c->i = sub.i + 1;
            a->is_null = true;
            return rcpt ? SMTP_P_NULL_RCPT : SMTP_P_OK;
        }
    } else {
        const void *sp = memchr(c->p + c->i, SMTP_SP, c->n - c->i);
        sub.n = sp ? (size_t)((const unsigned char *)sp - c->p) : c->n;
    }
    enum smtp_perr e = parse_mailbox(&sub, rcpt, &pp, a);
    if (e != SMTP_P_OK)
        return e;
    if (bracket ? peek(&sub) != '>' : sub.i != sub.n)
        return SMTP_P_BAD_ADDR;
    sub.i += bracket;
    if (sub.i - c->i + (bracket ? 0 : 2) > SMTP_PATH_MAX)
        return SMTP_P_PATH_TOO_LONG;
    c->i = sub.i;
    assemble(a, &pp, c);
    return SMTP_P_OK;
}

/* ---- ESMTP parameters ---------------------------------------------------- */

enum { PARAM_MAIL = 1u << 0, PARAM_RCPT = 1u << 1, PARAM_DSN = 1u << 2 /* errors are 501 */ };

/* One ESMTP parameter: name, the commands it is valid on, its value checker. */
struct param_def {
    const char *name;
    unsigned cmds;
    enum smtp_perr (*apply)(const unsigned char *v, size_t n, bool has_v, struct smtp_params *p);
};

/* param_size - SIZE=1*DIGIT (RFC 1870), saturating at UINT64_MAX. */
static enum smtp_perr param_size(const unsigned char *v, size_t n, bool has_v,
                                 struct smtp_params *p)
{
    uint64_t s = 0;
    if (!has_v)
        return SMTP_P_BAD_PARAM;
    for (size_t j = 0; j < n; j++) {
        if (v[j] < '0' || v[j] > '9')
            return SMTP_P_BAD_PARAM;
        if (__builtin_mul_overflow(s, 10, &s) || __builtin_add_overflow(s, v[j] - '0', &s))
            s = UINT64_MAX;
    }
    p->has_size = true;
    p->size = s;
    return SMTP_P_OK;
}

/* param_body - BODY=7BIT | 8BITMIME (RFC 6152), case-insensitive. */
static enum smtp_perr param_body(const unsigned char *v, size_t n, bool has_v,
                                 struct smtp_params *p)
{
    static const char b7[] = "7BIT", b8[] = "8BITMIME";
    if (has_v && n == sizeof(b7) - 1 && mx_memcaseeq(v, b7, n))
        p->body = SMTP_BODY_7BIT;
    else if (has_v && n == sizeof(b8) - 1 && mx_memcaseeq(v, b8, n))
        p->body = SMTP_BODY_8BITMIME;
    else
        return SMTP_P_BAD_PARAM;
    return SMTP_P_OK;
}

/* param_smtputf8 - SMTPUTF8 takes no value (RFC 6531 3.4). */
static enum smtp_perr param_smtputf8(const unsigned char *v, size_t n, bool has_v,
                                     struct smtp_params *p)
{
    (void)v;
    (void)n;
    if (has_v)
        return SMTP_P_BAD_PARAM;
    p->smtputf8 = true;
    return SMTP_P_OK;
}

/* is_hex_upper - RFC 3461 HEXCHAR: digit or upper-case A..F. */
static bool is_hex_upper(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F');
}

/* hex_upper_val - the value of a HEXCHAR (is_hex_upper checked). */
static unsigned hex_upper_val(unsigned char ch)
{
    return ch <= '9' ? (unsigned)(ch - '0') : (unsigned)(ch - 'A') + 10u;
}

/* param_auth - AUTH=xtext (RFC 4954 5, "<>" included); the value is ignored. */
static enum smtp_perr param_auth(const unsigned char *v, size_t n, bool has_v,
                                 struct smtp_params *p)
{
    if (!has_v)
        return SMTP_P_BAD_PARAM;
    for (size_t j = 0; j < n; j++) {
        if (v[j] == '+') {
            if (n - j < 3 || !is_hex_upper(v[j + 1]) || !is_hex_upper(v[j + 2]))
                return SMTP_P_BAD_PARAM;
            j += 2;
        } else if (v[j] < '!' || v[j] > '~' || v[j] == '=') {
            return SMTP_P_BAD_PARAM;
        }
    }
    p->has_auth = true;
    return SMTP_P_OK;
}

/* xtext_ok - n octets of RFC 3461 xtext whose decoding is printable
 * US-ASCII (so it can go into a DSN field and back on the wire). */
static bool xtext_ok(const unsigned char *v, size_t n)
{
    char buf[SMTP_ORCPT_MAX + 1];
    return n > 0 && n <= SMTP_ORCPT_MAX &&
           smtp_xtext_decode((const char *)v, n, buf, sizeof buf) >= 0;
}

/* param_ret - RET=FULL | HDRS (RFC 3461 4.3), case-insensitive. */
static enum smtp_perr param_ret(const unsigned char *v, size_t n, bool has_v, struct smtp_params *p)
{
    if (has_v && n == 4 && mx_memcaseeq(v, "FULL", 4))
        p->ret = SMTP_RET_FULL;
    else if (has_v && n == 4 && mx_memcaseeq(v, "HDRS", 4))
        p->ret = SMTP_RET_HDRS;
    else
        return SMTP_P_BAD_DSN;
    return SMTP_P_OK;
}

/* param_envid - ENVID=xtext (RFC 3461 4.4), at most SMTP_ENVID_MAX octets. */
static enum smtp_perr param_envid(const unsigned char *v, size_t n, bool has_v,
                                  struct smtp_params *p)
{
    if (!has_v || n > SMTP_ENVID_MAX || !xtext_ok(v, n))
        return SMTP_P_BAD_DSN;
    memcpy(p->envid, v, n);
    p->envid[n] = 0;
    return SMTP_P_OK;
}

/* param_notify - NOTIFY=NEVER | 1#(SUCCESS / FAILURE / DELAY) (RFC 3461 4.1). */
static enum smtp_perr param_notify(const unsigned char *v, size_t n, bool has_v,
                                   struct smtp_params *p)
{
    return has_v && smtp_notify_parse((const char *)v, n, &p->notify) ? SMTP_P_OK : SMTP_P_BAD_DSN;
}

/* param_orcpt - ORCPT=addr-type ";" xtext (RFC 3461 4.2): addr-type an atom,
 * the whole value at most SMTP_ORCPT_MAX octets. */
static enum smtp_perr param_orcpt(const unsigned char *v, size_t n, bool has_v,
                                  struct smtp_params *p)
{
    const unsigned char *semi = has_v ? memchr(v, ';', n) : NULL;
    if (!semi || semi == v || n > SMTP_ORCPT_MAX)
        return SMTP_P_BAD_DSN;
    for (const unsigned char *t = v; t < semi; t++)
        if (!is_atext(*t))
            return SMTP_P_BAD_DSN;
    if (!xtext_ok(semi + 1, n - (size_t)(semi + 1 - v)))
        return SMTP_P_BAD_DSN;
    memcpy(p->orcpt, v, n);
    p->orcpt[n] = 0;
    return SMTP_P_OK;
}

static const struct param_def param_table[] = {
    {"SIZE", PARAM_MAIL, param_size},
    {"BODY", PARAM_MAIL, param_body},
    {"SMTPUTF8", PARAM_MAIL, param_smtputf8},
    {"AUTH", PARAM_MAIL, param_auth},
    {"RET", PARAM_MAIL | PARAM_DSN, param_ret},
    {"ENVID", PARAM_MAIL | PARAM_DSN, param_envid},
    {"NOTIFY", PARAM_RCPT | PARAM_DSN, param_notify},
    {"ORCPT", PARAM_RCPT | PARAM_DSN, param_orcpt},
};
_Static_assert(MX_ARRAY_LEN(param_table) <= 32, "seen mask is 32 bits");

/* valid_value - RFC 5321 esmtp-value: 1*(%d33-60 / %d62-126), plus UTF-8. */
static bool valid_value(const unsigned char *v, size_t n)
{
    bool utf8 = false;
    struct pcur c = {v, 0, n};
    if (n == 0)
        return false;
    while (c.i < n) {
        unsigned char ch = v[c.i];
        if (ch >= 0x80 ? !take_utf8(&c, &utf8) : (ch < '!' || ch > '~' || ch == '='))
            return false;
        c.i += ch < 0x80;
    }
    return true;
}

/* apply_param - look keyword up in param_table and check/record its value.
 * A DSN parameter's bad value or repetition is SMTP_P_BAD_DSN/DUP_DSN with
 * p->bad naming it; anything else wrong is SMTP_P_BAD_PARAM. */
static enum smtp_perr apply_param(const unsigned char *kw, size_t kn, const unsigned char *v,
                                  size_t vn, bool has_v, unsigned cmd, uint32_t *seen,
                                  struct smtp_params *p)
{
    for (size_t j = 0; j < MX_ARRAY_LEN(param_table); j++) {
        const struct param_def *d = &param_table[j];
        if (strlen(d->name) != kn || !mx_memcaseeq(d->name, kw, kn))
            continue;
        bool dsn = d->cmds & PARAM_DSN;
        if (!(d->cmds & cmd))
            return SMTP_P_BAD_PARAM;
        if (dsn)
            p->bad = d->name;
        if (*seen & (1u << j))
            return dsn ? SMTP_P_DUP_DSN : SMTP_P_BAD_PARAM;
        if (has_v && !valid_value(v, vn))
            return dsn ? SMTP_P_BAD_DSN : SMTP_P_BAD_PARAM;
        *seen |= 1u << j;
        enum smtp_perr e = d->apply(v, vn, has_v, p);
        if (e == SMTP_P_OK)
            p->bad = NULL;
        return e;
    }
    return SMTP_P_BAD_PARAM;
}

/* parse_params - " KEYWORD[=value]"... after the path. Anything that is not
 * esmtp-param syntax is SMTP_P_SYNTAX; a well-formed but unknown, duplicate
 * or badly valued parameter is SMTP_P_BAD_PARAM. */
static enum smtp_perr parse_params(struct pcur *c, unsigned cmd, struct smtp_params *p)
{
    uint32_t seen = 0;
    while (c->i < c->n) {
        if (peek(c) != SMTP_SP)
            return SMTP_P_SYNTAX;
        skip_sp(c);
        if (c->i == c->n)
            break;
        size_t kw = c->i, v;
        if (!is_alnum(peek(c)))
            return SMTP_P_SYNTAX;
        while (is_alnum(peek(c)) || peek(c) == '-')
            c->i++;
        size_t kn = c->i - kw;
        bool has_v = peek(c) == '=';
        if (!has_v && c->i < c->n && peek(c) != SMTP_SP)
            return SMTP_P_SYNTAX;
        c->i += has_v;
        for (v = c->i; c->i < c->n && peek(c) != SMTP_SP; c->i++)
            ;
        enum smtp_perr e = apply_param(c->p + kw, kn, c->p + v, c->i - v, has_v, cmd, &seen, p);
        if (e != SMTP_P_OK)
            return e;
    }
    return SMTP_P_OK;
}

/* parse_mail_rcpt - shared body of smtp_parse_mail() and smtp_parse_rcpt(). */
static enum smtp_perr parse_mail_rcpt(const char *arg, size_t len, const char *kw, unsigned cmd,
                                      struct smtp_addr *a, struct smtp_params *p)
{
    size_t kn = strlen(kw);
    struct pcur c = {(const unsigned char *)arg, kn, len};
    memset(a, 0, sizeof(*a));
    memset(p, 0, sizeof(*p));
    if (len < kn || !mx_memcaseeq(arg, kw, kn))
        return SMTP_P_SYNTAX;
    skip_sp(&c);
    if (c.i == c.n)
        return SMTP_P_SYNTAX;
    enum smtp_perr e = parse_path(&c, cmd == PARAM_RCPT, a);
    if (e != SMTP_P_OK) {
        bool null = a->is_null;
        memset(a, 0, sizeof(*a));
        a->is_null = null;
        return e;
    }
    return parse_params(&c, cmd, p);
}

/* smtp_parse_verb - find the verb token in verb_table (see smtp_parse.h). */
enum smtp_verb smtp_parse_verb(const char *line, size_t len, size_t *arg_off)
{
    const char *sp = len ? memchr(line, SMTP_SP, len) : NULL;
    size_t vlen = sp ? (size_t)(sp - line) : len;
    *arg_off = 0;
    for (size_t v = SMTP_VERB_UNKNOWN + 1; v < SMTP_VERB_COUNT; v++) {
        if (verb_table[v].len != vlen || !mx_memcaseeq(line, verb_table[v].name, vlen))
            continue;
        while (vlen < len && line[vlen] == SMTP_SP)
            vlen++;
        *arg_off = vlen;
        return (enum smtp_verb)v;
    }
    return SMTP_VERB_UNKNOWN;
}

/* smtp_verb_name - table name of v, "" for UNKNOWN or out of range. */
const char *smtp_verb_name(enum smtp_verb v)
{
    return (unsigned)v < SMTP_VERB_COUNT ? verb_table[v].name : "";
}

/* smtp_parse_mail - "FROM:" path [params] (see smtp_parse.h). */
enum smtp_perr smtp_parse_mail(const char *arg, size_t len, struct smtp_addr *a,
                               struct smtp_params *p)
{
    return parse_mail_rcpt(arg, len, "FROM:", PARAM_MAIL, a, p);
}

/* smtp_parse_rcpt - "TO:" path [params] (see smtp_parse.h). */
enum smtp_perr smtp_parse_rcpt(const char *arg, size_t len, struct smtp_addr *a,
                               struct smtp_params *p)
{
    return parse_mail_rcpt(arg, len, "TO:", PARAM_RCPT, a, p);
}

/* smtp_parse_helo - the first SP-delimited token is the client's name. Like
 * Postfix, any printable name is accepted (real clients send "my_pc" or
 * "WIN-ABC_DEF.local"); control octets, a missing name or one over 255
 * octets are refused. Octets >= 0x80 must be valid UTF-8. */
enum smtp_perr smtp_parse_helo(const char *arg, size_t len, size_t *dlen)
{
    const unsigned char *p = (const unsigned char *)arg;
    const char *sp = len ? memchr(arg, SMTP_SP, len) : NULL;
    size_t n = sp ? (size_t)(sp - arg) : len;
    *dlen = 0;
    if (n == 0 || n > SMTP_DOMAIN_MAX)
        return SMTP_P_SYNTAX;
    for (size_t i = 0; i < n;) {
        if (p[i] >= 0x80) {
            size_t k = utf8_seq(p + i, n - i);
            if (k == 0)
                return SMTP_P_SYNTAX;
            i += k;
        } else if (p[i] < 0x21 || p[i] == 0x7f) {
            return SMTP_P_SYNTAX;
        } else {
            i++;
        }
    }
    *dlen = n;
    return SMTP_P_OK;
}

/* smtp_xtext_decode - RFC 3461 4: xtext = *( xchar / hexchar ) (see smtp_parse.h). */
long smtp_xtext_decode(const char *in, size_t n, char *out, size_t cap)
{
    const unsigned char *v = (const unsigned char *)in;
    size_t o = 0;
    for (size_t j = 0; j < n; j++) {
        unsigned ch = v[j];
        if (ch == '+') {
            if (n - j < 3 || !is_hex_upper(v[j + 1]) || !is_hex_upper(v[j + 2]))
                return -1;
            ch = hex_upper_val(v[j + 1]) * 16u + hex_upper_val(v[j + 2]);
            j += 2;
        } else if (ch < '!' || ch > '~' || ch == '=') {
            return -1;
        }
        if (ch < 0x20 || ch > 0x7e || o + 1 >= cap)
            return -1;
        out[o++] = (char)ch;
    }
    if (cap)
        out[o] = 0;
    return cap ? (long)o : -1;
}

static const char *const notify_names[] = {"NEVER", "SUCCESS", "FAILURE", "DELAY"};

/* smtp_notify_parse - NEVER alone, or a comma list without repeats. */
bool smtp_notify_parse(const char *v, size_t n, unsigned *notify)
{
    unsigned mask = 0;
    size_t i = 0;
    for (;;) {
        const char *comma = memchr(v + i, ',', n - i);
        size_t tl = (comma ? (size_t)(comma - v) : n) - i, k;
        for (k = 0; k < MX_ARRAY_LEN(notify_names); k++)
            if (strlen(notify_names[k]) == tl && mx_memcaseeq(v + i, notify_names[k], tl))
                break;
        if (k == MX_ARRAY_LEN(notify_names) || (mask & (1u << k)))
            return false;
        mask |= 1u << k;
        if (!comma)
            break;
        i = (size_t)(comma - v) + 1;
    }
    if ((mask & SMTP_NOTIFY_NEVER) && mask != SMTP_NOTIFY_NEVER)
        return false;
    *notify = mask;
    return true;
}

/* smtp_notify_format - the names of the set bits, comma separated. */
void smtp_notify_format(unsigned notify, char *buf, size_t cap)
{
    size_t o = 0;
    if (cap)
        buf[0] = 0;
    for (size_t k = 0; k < MX_ARRAY_LEN(notify_names); k++) {
        if (!(notify & (1u << k)))
            continue;
        size_t nl = strlen(notify_names[k]), sep = o > 0;
        if (o + sep + nl + 1 > cap)
            return;
        if (sep)
            buf[o++] = ',';
        memcpy(buf + o, notify_names[k], nl + 1);
        o += nl;
    }
}

/* smtp_envid_valid - param_envid's verdict on v (see smtp_parse.h). */
bool smtp_envid_valid(const char *v, size_t n)
{
    struct smtp_params p;
    const unsigned char *u = (const unsigned char *)v;
    return valid_value(u, n) && param_envid(u, n, true, &p) == SMTP_P_OK;
}

/* smtp_orcpt_valid - param_orcpt's verdict on v (see smtp_parse.h). */
bool smtp_orcpt_valid(const char *v, size_t n)
{
    struct smtp_params p;
    const unsigned char *u = (const unsigned char *)v;
    return valid_value(u, n) && param_orcpt(u, n, true, &p) == SMTP_P_OK;
}
