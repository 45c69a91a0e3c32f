/* smtp_data.c - the DATA-phase scanner: a five-state machine over raw bytes
 * that finds the one true <CR><LF>.<CR><LF>, undoes dot-stuffing and flags
 * bare CR/LF (with its offset and any SMTP command hidden behind it), NUL,
 * 8-bit octets, long lines and oversize messages. Pure (no I/O); one
 * struct data_scan belongs to one thread at a time. */
#include "smtp_data.h"

#include <ctype.h>
#include <string.h>

#if defined(__SSE2__) && !defined(MX_NO_SIMD)
#include <emmintrin.h>
#define DS_SIMD 1
#endif

#define CH_CR '\r'
#define CH_LF '\n'
#define CH_DOT '.'
#define CMD_OFF 0xFF /* cmd_len: not at the start of a line */

/* Scanner states. Only a CRLF moves to DS_BOL; bare CR/LF never do, so no
 * "\n.\r\n", "\r\n.\n" or "\r.\r" can end the data. */
enum ds_state {
    DS_BOL = 0, /* at the start of a line (after CRLF, or right after DATA) */
    DS_TEXT,    /* inside a line */
    DS_CR,      /* after a CR inside a line (already emitted) */
    DS_DOT,     /* after a '.' at BOL (dropped: stuffing or terminator) */
    DS_DOTCR,   /* after ".\r" at BOL (CR held back: it may be the terminator) */
    DS_DONE,    /* end of data seen */
};

/* One feed call: the input, the not-yet-emitted verbatim span [span, i). */
struct ds_ctx {
    struct data_scan *ds;
    const unsigned char *p;
    size_t len, i, span;
    struct sb *out;
    bool oom;
};

/* ds_special - index of the first CR, LF or NUL in p[0..n), or n; *hi gets
 * the OR of the octets before it (bit 7 set: 8-bit data). The SIMD loop
 * pays one extra OR per 16 octets for that. */
static size_t ds_special(const unsigned char *p, size_t n, unsigned *hi)
{
    size_t i = 0;
    unsigned acc = 0;
#ifdef DS_SIMD
    const __m128i cr = _mm_set1_epi8(CH_CR), lf = _mm_set1_epi8(CH_LF);
    const __m128i nul = _mm_setzero_si128();
    __m128i all = nul;
    for (; i + sizeof(__m128i) <= n; i += sizeof(__m128i)) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)),
                                 _mm_cmpeq_epi8(v, nul));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        if (mask) {
            unsigned at = (unsigned)__builtin_ctz(mask);
            unsigned before = (unsigned)_mm_movemask_epi8(v) & ((1u << at) - 1u);
            *hi = (_mm_movemask_epi8(all) || before) ? 0x80u : 0u;
            return i + at;
        }
        all = _mm_or_si128(all, v);
    }
    acc = _mm_movemask_epi8(all) ? 0x80u : 0u;
#endif
    while (i < n && p[i] != CH_CR && p[i] != CH_LF && p[i] != 0)
        acc |= p[i++];
    *hi = acc;
    return i;
}

/* ds_emit - count n message octets and store those within the limit. */
static void ds_emit(struct ds_ctx *c, const unsigned char *p, size_t n)
{
    struct data_scan *ds = c->ds;
    uint64_t room = UINT64_MAX, keep = n;
    if (ds->limit)
        room = ds->size < ds->limit ? ds->limit - ds->size : 0;
    if (keep > room) {
        keep = room;
        ds->flags |= DATA_F_TOO_BIG;
    }
    if (keep && !sb_append(c->out, p, (size_t)keep))
        c->oom = true;
    ds->size = ds->size > UINT64_MAX - n ? UINT64_MAX : ds->size + n;
}

/* ds_flush - emit the verbatim span up to (not including) input offset end. */
static void ds_flush(struct ds_ctx *c, size_t end)
{
    if (end > c->span)
        ds_emit(c, c->p + c->span, end - c->span);
    c->span = end;
}

/* ds_line_add - n more octets on the current line; flag it once too long. */
static void ds_line_add(struct data_scan *ds, size_t n)
{
    ds->line_len += n;
    if (ds->line_len > SMTP_DATA_LINE_MAX)
        ds->flags |= DATA_F_LONG_LINE;
}

/* ds_bare - the octet just before input index at is a bare CR or LF; the
 * first one is recorded and arms the command matcher. */
static void ds_bare(struct ds_ctx *c, size_t at, unsigned char octet)
{
    struct data_scan *ds = c->ds;
    if (ds->flags & DATA_F_BARE_EOL)
        return;
    ds->flags |= DATA_F_BARE_EOL;
    ds->first_bare = ds->offset + at - 1;
    ds->bare_octet = octet;
    ds->cmd_len = 0; /* a line starts right after it */
}

/* ds_text - bulk-skip ordinary octets, then take one CR, LF or NUL. */
static void ds_text(struct ds_ctx *c)
{
    struct data_scan *ds = c->ds;
    unsigned hi;
    size_t run = ds_special(c->p + c->i, c->len - c->i, &hi);
    if (hi & 0x80u)
        ds->flags |= DATA_F_8BIT;
    ds_line_add(ds, run);
    c->i += run;
    if (c->i == c->len)
        return;
    unsigned char ch = c->p[c->i++];
    if (ch == CH_CR) {
        ds->state = DS_CR;
        return;
    }
    if (ch == CH_LF) {
        ds_bare(c, c->i, CH_LF);
    } else if (!(ds->flags & DATA_F_NUL)) {
        ds->flags |= DATA_F_NUL;
        ds->first_nul = ds->offset + c->i - 1;
    }
    ds_line_add(ds, 1);
}

/* ds_step - advance one state transition (at least one input octet or a
 * state change without consuming). */
static void ds_step(struct ds_ctx *c)
{
    struct data_scan *ds = c->ds;
    unsigned char ch = c->p[c->i];
    switch ((enum ds_state)ds->state) {
    case DS_BOL:
        ds->state = ch == CH_DOT && !ds->raw ? DS_DOT : DS_TEXT;
        if (ds->state == DS_DOT) { /* drop the leading dot */
            ds_flush(c, c->i);
            c->span = ++c->i;
        }
        break;
    case DS_TEXT: ds_text(c); break;
    case DS_CR:
        if (ch == CH_LF) {
            c->i++;
            ds->line_len = 0;
            ds->state = DS_BOL;
        } else { /* bare CR: it was emitted; the next octet is ordinary text */
            ds_bare(c, c->i, CH_CR);
            ds_line_add(ds, 1);
            ds->state = DS_TEXT;
        }
        break;
    case DS_DOT:
        ds->state = ch == CH_CR ? DS_DOTCR : DS_TEXT;
        if (ch == CH_CR) /* hold the CR back */
            c->span = ++c->i;
        break;
    case DS_DOTCR:
        if (ch == CH_LF) {
            c->i++;
            ds->state = DS_DONE;
        } else { /* ".\rX": stuffed line starting with a bare CR */
            static const unsigned char cr = CH_CR;
            ds_flush(c, c->i);
            ds_emit(c, &cr, 1);
            ds_bare(c, c->i, CH_CR);
            ds_line_add(ds, 1);
            ds->state = DS_TEXT;
        }
        break;
    case DS_DONE: break;
    }
}

/* The commands a smuggler hides behind a bare CR/LF ('\n' in a pattern
 * stands for CR or LF). Upper case; input is compared case-insensitively. */
static const char *const ds_cmds[] = {
    "MAIL FROM:", "RCPT TO:", "DATA\n", "QUIT\n", "RSET\n", "EHLO ", "HELO ", "BDAT ",
};

enum ds_match { DS_M_NONE, DS_M_PREFIX, DS_M_FULL };

/* ds_cmd_match - is lead[0..n) a command, a prefix of one, or neither? */
static enum ds_match ds_cmd_match(const char *lead, size_t n)
{
    enum ds_match best = DS_M_NONE;
    for (size_t k = 0; k < MX_ARRAY_LEN(ds_cmds); k++) {
        const char *pat = ds_cmds[k];
        size_t plen = strlen(pat), j = 0;
        if (n > plen)
            continue;
        for (; j < n; j++) {
            unsigned char ch = (unsigned char)lead[j];
            bool eol = ch == CH_CR || ch == CH_LF;
            if (pat[j] == CH_LF ? !eol : toupper(ch) != pat[j])
                break;
        }
        if (j == n && n == plen)
            return DS_M_FULL;
        if (j == n)
            best = DS_M_PREFIX;
    }
    return best;
}

/* ds_cmd_scan - run the command matcher over p[from..to): every CR or LF
 * starts a line; the first octets of a line are matched against ds_cmds.
 * Only runs after the first bare CR/LF (a refused message anyway). */
static void ds_cmd_scan(struct data_scan *ds, const unsigned char *p, size_t from, size_t to)
{
    for (size_t i = from; i < to && !(ds->flags & DATA_F_BARE_CMD); i++) {
        unsigned char ch = p[i];
        if (ds->cmd_len != CMD_OFF) {
            ds->cmd_lead[ds->cmd_len++] = (char)ch;
            enum ds_match m = ds_cmd_match(ds->cmd_lead, ds->cmd_len);
            if (m == DS_M_FULL)
                ds->flags |= DATA_F_BARE_CMD;
            if (m != DS_M_PREFIX)
                ds->cmd_len = CMD_OFF;
        }
        if (ch == CH_CR || ch == CH_LF)
            ds->cmd_len = 0;
    }
}

/* data_scan_init - reset ds to the start of a message (see smtp_data.h). */
void data_scan_init(struct data_scan *ds, uint64_t limit)
{
    memset(ds, 0, sizeof(*ds));
    ds->state = DS_BOL;
    ds->limit = limit;
    ds->cmd_len = CMD_OFF;
}

/* data_scan_init_raw - reset ds for BDAT content (see smtp_data.h). */
void data_scan_init_raw(struct data_scan *ds, uint64_t limit)
{
    data_scan_init(ds, limit);
    ds->raw = true;
}

/* data_scan_end_raw - a trailing CR is bare (see smtp_data.h). */
void data_scan_end_raw(struct data_scan *ds)
{
    if (ds->state != DS_CR || (ds->flags & DATA_F_BARE_EOL))
        return;
    ds->flags |= DATA_F_BARE_EOL;
    ds->first_bare = ds->offset - 1;
    ds->bare_octet = CH_CR;
}

/* data_scan_feed - run the state machine over in, emitting verbatim spans in
 * bulk; stops right after the terminator (see smtp_data.h). */
size_t data_scan_feed(struct data_scan *ds, const char *in, size_t len, struct sb *out, bool *done)
{
    struct ds_ctx c = {ds, (const unsigned char *)in, len, 0, 0, out, false};
    bool armed = ds->flags & DATA_F_BARE_EOL;
    while (c.i < len && ds->state != DS_DONE && !c.oom)
        ds_step(&c);
    *done = ds->state == DS_DONE;
    if (!*done) /* at the end everything before the held ".\r" was flushed */
        ds_flush(&c, c.i);
    if ((ds->flags & DATA_F_BARE_EOL) && !(ds->flags & DATA_F_BARE_CMD))
        ds_cmd_scan(ds, c.p, armed ? 0 : (size_t)(ds->first_bare + 1 - ds->offset), c.i);
    ds->offset += c.i;
    return c.oom ? (size_t)-1 : c.i;
}
