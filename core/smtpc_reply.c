/* smtpc_reply.c - what the hop's replies are as data: the reply parser
 * (smtpc_rp_*), the EHLO keywords (capabilities), and the result records
 * kept per recipient, built from a reply or a reply table entry. Pure over
 * bytes; called by smtpc.c on the thread driving the connection. */
#include "smtpc.h"
#include "smtpc_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"

/* ---- results ---------------------------------------------------------- */

/* enh_len - length of an enhanced status code "c.s.d" at s (class digit
 * first, 1..3 digits per part) followed by a blank or the end; 0 if none. */
static size_t enh_len(const char *s, size_t n)
{
    size_t i = 0;
    for (int part = 0; part < 3; part++) {
        size_t d = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && d < 3)
            i++, d++;
        if (d == 0 || (part == 0 && d != 1))
            return 0;
        if (part < 2) {
            if (i >= n || s[i] != '.')
                return 0;
            i++;
        }
    }
    return (i == n || s[i] == ' ') && i < 16 ? i : 0;
}

/* smtpc_res_clear - forget a result. */
void smtpc_res_clear(struct smtpc_res *r)
{
    free(r->text);
    memset(r, 0, sizeof *r);
}

/* res_set - r = code, enhanced code and text (text may hold several lines
 * separated by "\n"; leading enhanced codes equal to the first are cut from
 * every line, lines are joined by " ", the whole cut at SMTPC_TEXT_MAX). */
static void res_set(struct smtpc_res *r, unsigned code, const char *text, size_t len,
                    enum smtpc_stage stage, bool local)
{
    smtpc_res_clear(r);
    r->code = code, r->stage = stage, r->local = local;
    size_t el = enh_len(text, len);
    if (el && (unsigned)(text[0] - '0') == code / 100)
        memcpy(r->enh, text, el), r->enh[el] = 0;
    r->text = malloc(SMTPC_TEXT_MAX + 1);
    if (!r->text)
        return;
    size_t o = 0, i = 0;
    while (i <= len && o < SMTPC_TEXT_MAX) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t ll = (nl ? (size_t)(nl - text) : len) - i;
        const char *l = text + i;
        i += ll + 1;
        if (r->enh[0] && ll >= el && memcmp(l, r->enh, el) == 0 && (ll == el || l[el] == ' ')) {
            size_t cut = ll > el ? el + 1 : el; /* the code and its blank */
            l += cut;
            ll -= cut;
        }
        if (ll == 0)
            continue;
        if (o)
            r->text[o++] = ' ';
        size_t take = ll < SMTPC_TEXT_MAX - o ? ll : SMTPC_TEXT_MAX - o;
        memcpy(r->text + o, l, take);
        o += take;
    }
    r->text[o] = 0;
}

/* smtpc_res_reply - r from a hop's reply. */
void smtpc_res_reply(struct smtpc_res *r, const struct smtpc_reply *rp, enum smtpc_stage stage)
{
    res_set(r, rp->code, rp->text.data ? rp->text.data : "", rp->text.len, stage, false);
}

/* smtpc_res_local - r from a reply table entry (printf arguments). */
void smtpc_res_local(struct smtpc_res *r, enum smtpc_stage stage, enum reply_id id, ...)
{
    char line[SMTPC_TEXT_MAX + 64];
    va_list ap;
    va_start(ap, id);
    int n = vsnprintf(line, sizeof line, reply_table[id].fmt, ap);
    va_end(ap);
    if (n < 4)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    unsigned code = (unsigned)((line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0'));
    res_set(r, code, line + 4, len - 4, stage, true);
}

/* smtpc_res_export - a kept result as the public struct. */
void smtpc_res_export(const struct smtpc_res *r, struct smtpc_result *out)
{
    out->code = r->code;
    memcpy(out->enh, r->enh, sizeof out->enh);
    out->text = r->text ? r->text : "";
    out->stage = r->stage;
    out->local = r->local;
}

/* smtpc_res_copy - dst = a copy of src. */
void smtpc_res_copy(struct smtpc_res *dst, const struct smtpc_res *src)
{
    const char *t = src->text ? src->text : "";
    res_set(dst, src->code, t, strlen(t), src->stage, src->local);
    memcpy(dst->enh, src->enh, sizeof dst->enh);
}

/* ---- capabilities ------------------------------------------------------ */

/* smtpc_caps_parse - the EHLO keywords (lines after the first). */
void smtpc_caps_parse(struct smtpc_caps *caps, const struct sb *text)
{
    static const struct {
        const char *kw;
        size_t off;
    } kws[] = {
        {"PIPELINING", offsetof(struct smtpc_caps, pipelining)},
        {"8BITMIME", offsetof(struct smtpc_caps, eightbitmime)},
        {"SMTPUTF8", offsetof(struct smtpc_caps, smtputf8)},
        {"STARTTLS", offsetof(struct smtpc_caps, starttls)},
        {"SIZE", offsetof(struct smtpc_caps, size)},
        {"DSN", offsetof(struct smtpc_caps, dsn)},
    };
    const char *p = text->data ? memchr(text->data, '\n', text->len) : NULL;
    const char *end = text->data + text->len;
    caps->esmtp = true;
    while (p && p < end) {
        const char *l = p + 1, *nl = memchr(l, '\n', (size_t)(end - l));
        const char *le = nl ? nl : end;
        size_t kl = 0;
        while (l + kl < le && l[kl] != ' ')
            kl++;
        for (size_t i = 0; i < MX_ARRAY_LEN(kws); i++)
            if (strlen(kws[i].kw) == kl && mx_memcaseeq(l, kws[i].kw, kl))
                *(bool *)((char *)caps + kws[i].off) = true;
        if (kl == 4 && mx_memcaseeq(l, "SIZE", 4)) {
            uint64_t v = 0;
            const char *d = l + kl;
            while (d < le && *d == ' ')
                d++;
            for (; d < le && *d >= '0' && *d <= '9'; d++)
                v = v > (UINT64_MAX - 9) / 10 ? UINT64_MAX : v * 10 + (uint64_t)(*d - '0');
            caps->size_max = v;
        }
        p = nl;
    }
}

/* ---- the reply parser ---------------------------------------------------- */

/* rp_line - one complete line (CR stripped) into the reply being built. */
static enum smtpc_rp_status rp_line(struct smtpc_rparse *p, const char *l, size_t n,
                                    const char **why)
{
    if (n < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' || l[2] < '0' || l[2] > '9' ||
        (n > 3 && l[3] != ' ' && l[3] != '-')) {
        *why = "malformed reply line";
        return SMTPC_RP_BAD;
    }
    if (memchr(l, 0, n)) {
        *why = "NUL byte in a reply";
        return SMTPC_RP_BAD;
    }
    unsigned code = (unsigned)((l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0'));
    if (p->in_reply && code != p->cur.code) {
        *why = "reply lines with different codes";
        return SMTPC_RP_BAD;
    }
    const char *text = n > 4 ? l + 4 : "";
    size_t tl = n > 4 ? n - 4 : 0;
    if (p->cur.text.len + tl + 1 > SMTPC_REPLY_MAX) {
        *why = "reply longer than 64 KiB";
        return SMTPC_RP_BAD;
    }
    if ((p->in_reply && !sb_append(&p->cur.text, "\n", 1)) || !sb_append(&p->cur.text, text, tl) ||
        !sb_append(&p->cur.text, "", 0)) {
        *why = "out of memory";
        return SMTPC_RP_BAD;
    }
    if (!p->in_reply) {
        size_t el = enh_len(text, tl);
        memcpy(p->cur.enh, text, el);
        p->cur.enh[el] = 0;
    }
    p->cur.code = code;
    p->cur.nlines++;
    p->in_reply = n > 3 && l[3] == '-';
    return p->in_reply ? SMTPC_RP_MORE : SMTPC_RP_REPLY;
}

/* rp_reset - forget the reply just returned. */
static void rp_reset(struct smtpc_rparse *p)
{
    sb_reset(&p->cur.text);
    p->cur.code = 0, p->cur.nlines = 0, p->cur.enh[0] = 0;
    p->in_reply = false;
}

enum smtpc_rp_status smtpc_rp_feed(struct smtpc_rparse *p, const char *in, size_t len, size_t *pos,
                                   const struct smtpc_reply **out, const char **why)
{
    if (p->skipping) {
        *why = "reply line too long";
        return SMTPC_RP_BAD;
    }
    if (!p->in_reply && p->cur.nlines)
        rp_reset(p);
    while (*pos < len) {
        const char *s = in + *pos;
        const char *nl = memchr(s, '\n', len - *pos);
        size_t take = nl ? (size_t)(nl - s) : len - *pos;
        if (p->line.len + take > SMTPC_LINE_MAX + 1 || !sb_append(&p->line, s, take)) {
            p->skipping = true;
            *why = "reply line too long";
            return SMTPC_RP_BAD;
        }
        *pos += take + (nl != NULL);
        if (!nl)
            return SMTPC_RP_MORE;
        size_t n = p->line.len;
        if (n && p->line.data[n - 1] == '\r')
            n--;
        if (n > SMTPC_LINE_MAX) {
            p->skipping = true;
            *why = "reply line too long";
            return SMTPC_RP_BAD;
        }
        enum smtpc_rp_status st = rp_line(p, p->line.data ? p->line.data : "", n, why);
        sb_reset(&p->line);
        if (st == SMTPC_RP_BAD)
            p->skipping = true;
        if (st != SMTPC_RP_MORE) {
            *out = &p->cur;
            return st;
        }
    }
    return SMTPC_RP_MORE;
}

void smtpc_rp_free(struct smtpc_rparse *p)
{
    sb_free(&p->line);
    sb_free(&p->cur.text);
}
