/* milter.c - the milter protocol codec of milter.h: packets to a milter,
 * the incremental reply reader (a small state machine: length prefix and
 * command octet, then the data into a buffer grown to the packet), reply
 * decoding and the validation of header names, values and reply texts.
 * Pure over bytes; any thread, one reader per thread at a time. */
#include "milter.h"

#include <stdlib.h>
#include <string.h>

#define MILTER_HDR_LINE_MAX 998u /* RFC 5322 2.1.1 */
#define MILTER_U32 4u

/* put_u32 - big-endian v into p[0..4). */
static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* get_u32 - big-endian value of p[0..4). */
static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- stages -------------------------------------------------------------- */

static const struct {
    char cmd;
    uint32_t no, nr;
    const char *name;
} stage_tab[MILTER_S_COUNT] = {
    [MILTER_S_CONNECT] = {MILTER_C_CONNECT, MILTER_P_NOCONNECT, MILTER_P_NR_CONN, "connect"},
    [MILTER_S_HELO] = {MILTER_C_HELO, MILTER_P_NOHELO, MILTER_P_NR_HELO, "HELO"},
    [MILTER_S_MAIL] = {MILTER_C_MAIL, MILTER_P_NOMAIL, MILTER_P_NR_MAIL, "MAIL FROM"},
    [MILTER_S_RCPT] = {MILTER_C_RCPT, MILTER_P_NORCPT, MILTER_P_NR_RCPT, "RCPT TO"},
    [MILTER_S_DATA] = {MILTER_C_DATA, MILTER_P_NODATA, MILTER_P_NR_DATA, "DATA"},
    [MILTER_S_HEADER] = {MILTER_C_HEADER, MILTER_P_NOHDRS, MILTER_P_NR_HDR, "header"},
    [MILTER_S_EOH] = {MILTER_C_EOH, MILTER_P_NOEOH, MILTER_P_NR_EOH, "end of headers"},
    [MILTER_S_BODY] = {MILTER_C_BODY, MILTER_P_NOBODY, MILTER_P_NR_BODY, "body"},
    [MILTER_S_EOM] = {MILTER_C_EOB, 0, 0, "end of message"},
};

/* milter_stage_cmd - see milter.h. */
char milter_stage_cmd(enum milter_stage st)
{
    return st < MILTER_S_COUNT ? stage_tab[st].cmd : 0;
}

/* milter_stage_name - see milter.h. */
const char *milter_stage_name(enum milter_stage st)
{
    return st < MILTER_S_COUNT ? stage_tab[st].name : "?";
}

/* milter_stage_skipped - see milter.h. */
bool milter_stage_skipped(enum milter_stage st, uint32_t proto)
{
    return st < MILTER_S_COUNT && (proto & stage_tab[st].no) != 0;
}

/* milter_stage_noreply - see milter.h. */
bool milter_stage_noreply(enum milter_stage st, uint32_t proto)
{
    return st < MILTER_S_COUNT && (proto & stage_tab[st].nr) != 0;
}

/* ---- packets to the milter ----------------------------------------------- */

/* milter_put - see milter.h. */
bool milter_put(struct sb *out, char cmd, const void *data, size_t len)
{
    if (len >= MILTER_REPLY_MAX || !sb_reserve(out, MILTER_LEN_PREFIX + 1 + len))
        return false;
    uint8_t h[MILTER_LEN_PREFIX + 1];
    put_u32(h, (uint32_t)len + 1);
    h[MILTER_LEN_PREFIX] = (uint8_t)cmd;
    sb_append(out, h, sizeof h); /* reserved above: cannot fail */
    if (len)
        sb_append(out, data, len);
    return true;
}

/* milter_put_optneg - see milter.h. */
bool milter_put_optneg(struct sb *out, uint32_t actions, uint32_t proto)
{
    uint8_t d[3 * MILTER_U32];
    put_u32(d, MILTER_VERSION);
    put_u32(d + MILTER_U32, actions);
    put_u32(d + 2 * MILTER_U32, proto);
    return milter_put(out, MILTER_C_OPTNEG, d, sizeof d);
}

/* add_str - s with its NUL into b; false on ENOMEM. */
static bool add_str(struct sb *b, const char *s)
{
    return sb_append(b, s, strlen(s) + 1);
}

/* put_built - send the data collected in d as one packet, free d. */
static bool put_built(struct sb *out, char cmd, struct sb *d, bool ok)
{
    ok = ok && milter_put(out, cmd, d->data, d->len);
    sb_free(d);
    return ok;
}

/* milter_put_connect - see milter.h. */
bool milter_put_connect(struct sb *out, const char *hostname, char family, uint16_t port,
                        const char *addr)
{
    struct sb d = {0};
    bool ok = add_str(&d, hostname) && sb_append(&d, &family, 1);
    if (ok && family != 'U') {
        uint8_t p[2] = {(uint8_t)(port >> 8), (uint8_t)port};
        ok = sb_append(&d, p, 2) && add_str(&d, addr ? addr : "");
    }
    return put_built(out, MILTER_C_CONNECT, &d, ok);
}

/* milter_put_strings - see milter.h. */
bool milter_put_strings(struct sb *out, char cmd, const char *const *v, size_t n)
{
    struct sb d = {0};
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++)
        ok = add_str(&d, v[i]);
    return put_built(out, cmd, &d, ok);
}

/* milter_put_macros - see milter.h. */
bool milter_put_macros(struct sb *out, char cmd, const char *const *names,
                       const char *const *values, size_t n)
{
    struct sb d = {0};
    bool ok = sb_append(&d, &cmd, 1);
    for (size_t i = 0; i < n && ok; i++)
        if (values[i])
            ok = add_str(&d, names[i]) && add_str(&d, values[i]);
    return put_built(out, MILTER_C_MACRO, &d, ok);
}

/* milter_put_header - see milter.h. */
bool milter_put_header(struct sb *out, const char *name, size_t nlen, const char *value,
                       size_t vlen)
{
    struct sb d = {0};
    bool ok = sb_append(&d, name, nlen) && sb_append(&d, "", 1) && sb_append(&d, value, vlen) &&
              sb_append(&d, "", 1);
    return put_built(out, MILTER_C_HEADER, &d, ok);
}

/* ---- decoding ------------------------------------------------------------ */

/* take_str - the NUL-terminated string at data[*off..len): advance past
 * its NUL; NULL when there is no NUL before len. */
static const char *take_str(const uint8_t *data, size_t len, size_t *off)
{
    if (*off >= len)
        return NULL;
    const uint8_t *z = memchr(data + *off, 0, len - *off);
    if (!z)
        return NULL;
    const char *s = (const char *)data + *off;
    *off = (size_t)(z - data) + 1;
    return s;
}

/* decode_header - [index] name NUL value NUL, exactly; checked. */
static bool decode_header(const uint8_t *data, size_t len, bool indexed, struct milter_reply *r)
{
    size_t off = 0;
    if (indexed) {
        if (len < MILTER_U32)
            return false;
        r->index = get_u32(data);
        off = MILTER_U32;
    }
    r->name = take_str(data, len, &off);
    r->value = r->name ? take_str(data, len, &off) : NULL;
    if (!r->value || off != len || !milter_header_name_ok(r->name))
        return false;
    return milter_header_value_ok(r->value);
}

/* decode_text - one NUL-terminated string filling the data exactly (a
 * missing final NUL is tolerated: the reader's buffer ends in one). */
static bool decode_text(const uint8_t *data, size_t len, struct milter_reply *r)
{
    size_t off = 0;
    r->text = take_str(data, len + 1, &off);
    return r->text && (off == len || off == len + 1) && r->text[0] != 0;
}

/* milter_decode - see milter.h. */
bool milter_decode(char cmd, const uint8_t *data, size_t len, struct milter_reply *r)
{
    memset(r, 0, sizeof *r);
    r->cmd = cmd;
    r->data = data;
    r->len = len;
    switch (cmd) {
    case MILTER_R_ACCEPT:
    case MILTER_R_CONTINUE:
    case MILTER_R_DISCARD:
    case MILTER_R_REJECT:
    case MILTER_R_TEMPFAIL:
    case MILTER_R_SKIP:
    case MILTER_R_PROGRESS:
    case MILTER_R_CONN_FAIL:
    case MILTER_R_SHUTDOWN: return true; /* any data is ignored, as libmilter does */
    case MILTER_R_ADDHEADER: return decode_header(data, len, false, r);
    case MILTER_R_INSHEADER:
    case MILTER_R_CHGHEADER: return decode_header(data, len, true, r);
    case MILTER_R_REPLYCODE: {
        struct milter_code c;
        return decode_text(data, len, r) && milter_replycode_parse(r->text, &c);
    }
    case MILTER_R_QUARANTINE:
    case MILTER_R_ADDRCPT:
    case MILTER_R_DELRCPT:
    case MILTER_R_CHGFROM:
    case MILTER_R_ADDRCPT_PAR: return decode_text(data, len, r);
    case MILTER_R_OPTNEG:
        if (len < 3 * MILTER_U32)
            return false;
        r->version = get_u32(data);
        r->actions = get_u32(data + MILTER_U32);
        r->proto = get_u32(data + 2 * MILTER_U32);
        return true;
    case MILTER_R_REPLBODY:
    case MILTER_R_SETSYMLIST: return true;
    default: return false;
    }
}

/* known_cmd - is c an SMFIR_* command octet? */
static bool known_cmd(uint8_t c)
{
    static const char cmds[] = "+-24abcdefhilmpqrsty"
                               "O";
    return c != 0 && memchr(cmds, c, sizeof cmds - 1) != NULL;
}

/* ---- the reader ---------------------------------------------------------- */

/* rd_fail - the stream is broken: remember why. */
static enum milter_rd_status rd_fail(struct milter_rd *rd, enum milter_rd_status st)
{
    rd->failed = true;
    rd->err = st;
    return st;
}

/* rd_header - take prefix octets; on a complete prefix check it and size
 * the buffer. MORE while incomplete, REPLY when the data may follow. */
static enum milter_rd_status rd_header(struct milter_rd *rd, const uint8_t *p, size_t n,
                                       size_t *used)
{
    size_t want = sizeof rd->hdr - rd->have_hdr, k = n < want ? n : want;
    memcpy(rd->hdr + rd->have_hdr, p, k);
    rd->have_hdr += k;
    *used += k;
    if (rd->have_hdr < sizeof rd->hdr)
        return MILTER_RD_MORE;
    uint32_t total = get_u32(rd->hdr);
    if (total == 0 || total > MILTER_REPLY_MAX)
        return rd_fail(rd, MILTER_RD_TOO_LONG);
    if (!known_cmd(rd->hdr[MILTER_LEN_PREFIX]))
        return rd_fail(rd, MILTER_RD_UNKNOWN);
    rd->len = total - 1;
    rd->have = 0;
    if (rd->cap < (size_t)rd->len + 1) {
        uint8_t *nb = realloc(rd->buf, (size_t)rd->len + 1);
        if (!nb)
            return rd_fail(rd, MILTER_RD_NOMEM);
        rd->buf = nb;
        rd->cap = (size_t)rd->len + 1;
    }
    return MILTER_RD_REPLY;
}

/* milter_rd_feed - see milter.h. */
enum milter_rd_status milter_rd_feed(struct milter_rd *rd, const uint8_t *p, size_t n, size_t *used,
                                     struct milter_reply *r)
{
    *used = 0;
    if (rd->failed)
        return rd->err;
    if (rd->have_hdr < sizeof rd->hdr) {
        enum milter_rd_status st = rd_header(rd, p, n, used);
        if (st != MILTER_RD_REPLY)
            return st;
    }
    size_t k = n - *used, want = rd->len - rd->have;
    if (k > want)
        k = want;
    if (k)
        memcpy(rd->buf + rd->have, p + *used, k);
    rd->have += k;
    *used += k;
    if (rd->have < rd->len)
        return MILTER_RD_MORE;
    rd->buf[rd->len] = 0;
    rd->have_hdr = 0;
    if (!milter_decode((char)rd->hdr[MILTER_LEN_PREFIX], rd->buf, rd->len, r))
        return rd_fail(rd, MILTER_RD_MALFORMED);
    return MILTER_RD_REPLY;
}

/* milter_rd_free - see milter.h. */
void milter_rd_free(struct milter_rd *rd)
{
    free(rd->buf);
    memset(rd, 0, sizeof *rd);
}

/* milter_rd_status_name - see milter.h. */
const char *milter_rd_status_name(enum milter_rd_status st)
{
    switch (st) {
    case MILTER_RD_MORE: return "incomplete";
    case MILTER_RD_REPLY: return "reply";
    case MILTER_RD_TOO_LONG: return "bad packet length";
    case MILTER_RD_UNKNOWN: return "unknown reply command";
    case MILTER_RD_MALFORMED: return "malformed reply";
    case MILTER_RD_NOMEM: return "out of memory";
    }
    return "?";
}

/* ---- headers ------------------------------------------------------------- */

/* milter_header_name_ok - see milter.h. */
bool milter_header_name_ok(const char *name)
{
    size_t n = 0;
    for (; name[n]; n++) {
        unsigned char c = (unsigned char)name[n];
        if (c < 33 || c > 126 || c == ':' || n >= MILTER_HDR_NAME_MAX)
            return false;
    }
    return n > 0;
}

/* milter_header_value_ok - see milter.h. */
bool milter_header_value_ok(const char *value)
{
    size_t line = 0;
    for (const char *p = value; *p; p++) {
        if (*p == '\r' && p[1] != '\n')
            return false;
        if (*p == '\r')
            continue;
        if (*p == '\n') {
            if (p[1] != ' ' && p[1] != '\t')
                return false;
            line = 0;
            continue;
        }
        if (++line > MILTER_HDR_LINE_MAX)
            return false;
    }
    return true;
}

/* milter_header_format - see milter.h. */
bool milter_header_format(struct sb *out, const char *name, const char *value)
{
    size_t start = out->len;
    bool ok = sb_appends(out, name) && sb_append(out, ": ", value[0] ? 2 : 1);
    for (const char *p = value; ok && *p; p++) {
        if (*p == '\r')
            continue;
        ok = *p == '\n' ? sb_append(out, "\r\n", 2) : sb_append(out, p, 1);
    }
    ok = ok && sb_append(out, "\r\n", 2);
    if (!ok) {
        out->len = start;
        if (out->data)
            out->data[start] = 0;
    }
    return ok;
}

/* ---- reply codes --------------------------------------------------------- */

/* parse_ext - an enhanced code "c.ddd.ddd" of class cls at s followed by a
 * space or the end of the line: its length, 0 when there is none. */
static size_t parse_ext(const char *s, size_t n, char cls)
{
    if (n < 5 || s[0] != cls || s[1] != '.')
        return 0;
    size_t i = 2;
    for (int part = 0; part < 2; part++) {
        size_t d = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && d < 3)
            i++, d++;
        if (d == 0)
            return 0;
        if (part == 0 && (i >= n || s[i++] != '.'))
            return 0;
    }
    return (i == n || s[i] == ' ') ? i : 0;
}

/* parse_line - one line s[0..n) of a reply; first = code of the first
 * line (0 for the first line itself). Returns the line's separator ('-'
 * or ' '), 0 when invalid; fills c on the first line. */
static char parse_line(const char *s, size_t n, unsigned first, struct milter_code *c)
{
    if (n < 3 || n > MILTER_REPLY_LINE_MAX || (s[0] != '4' && s[0] != '5') || s[1] < '0' ||
        s[1] > '5' || s[2] < '0' || s[2] > '9')
        return 0;
    unsigned code =
        (unsigned)(s[0] - '0') * 100 + (unsigned)(s[1] - '0') * 10 + (unsigned)(s[2] - '0');
    char sep = n == 3 ? ' ' : s[3];
    if ((first && code != first) || (sep != ' ' && sep != '-'))
        return 0;
    for (size_t i = 4; i < n; i++)
        if ((unsigned char)s[i] < 32 && s[i] != '\t')
            return 0;
        else if ((unsigned char)s[i] > 126)
            return 0;
    size_t off = n > 4 ? 4 : n, e = parse_ext(s + off, n - off, s[0]);
    if (!e && n - off >= 2 && s[off + 1] == '.' && s[off] >= '0' && s[off] <= '9')
        return 0; /* looks like an enhanced code, but a wrong or broken one */
    if (!first) {
        c->code = code;
        memset(c->ext, 0, sizeof c->ext);
        memcpy(c->ext, s + off, e < sizeof c->ext ? e : sizeof c->ext - 1);
        off += e;
        if (off < n && s[off] == ' ' && e)
            off++;
        c->text = s + off;
        c->text_len = n - off;
    }
    return sep;
}

/* milter_replycode_parse - see milter.h. */
bool milter_replycode_parse(const char *s, struct milter_code *c)
{
    memset(c, 0, sizeof *c);
    const char *p = s;
    for (;;) {
        const char *lf = strchr(p, '\n');
        size_t n = lf ? (size_t)(lf - p) : strlen(p);
        if (lf && n > 0 && p[n - 1] == '\r')
            n--;
        if (c->lines >= MILTER_REPLY_LINES)
            return false;
        char sep = parse_line(p, n, c->code, c);
        if (!sep)
            return false;
        c->lines++;
        if (!lf)
            return sep == ' ';
        if (sep != '-')
            return false;
        p = lf + 1;
    }
}
