/* milter_hdr.c - the milters' SMFIR_CHGHEADER edits applied to a
 * message's header section (milter.h): the index-th occurrence of a name
 * gets a new value, or is deleted (empty value); an index past the last
 * occurrence adds the header. Pure over bytes; any thread. */
#include "milter.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One header of the section: [off, end) of the input, its name. */
struct hspan {
    size_t off, end;
    size_t nlen; /* octets of the name (0: not a header line) */
    int repl;    /* -1: as it is; -2: deleted; else the edit replacing it */
};

/* span_next - the header at hdr[off..len): it ends at a line break not
 * followed by SP or HT (folds belong to it). */
static void span_next(const char *hdr, size_t len, size_t off, struct hspan *s)
{
    const char *p = hdr + off, *end = hdr + len, *q = p;
    while (q < end) {
        const char *lf = memchr(q, '\n', (size_t)(end - q));
        q = lf ? lf + 1 : end;
        if (q >= end || (*q != ' ' && *q != '\t'))
            break;
    }
    const char *colon = memchr(p, ':', (size_t)(q - p));
    s->off = off;
    s->end = (size_t)(q - hdr);
    s->nlen = colon && colon > p && !memchr(p, '\n', (size_t)(colon - p)) ? (size_t)(colon - p) : 0;
    s->repl = -1;
}

/* spans_of - the headers of hdr[0..len) into a new array (*n of them). */
static struct hspan *spans_of(const char *hdr, size_t len, size_t *n)
{
    size_t cap = 16;
    struct hspan *v = malloc(cap * sizeof *v);
    *n = 0;
    for (size_t off = 0; v && off < len;) {
        if (*n == cap) {
            struct hspan *w = realloc(v, (cap *= 2) * sizeof *v);
            if (!w) {
                free(v);
                return NULL;
            }
            v = w;
        }
        span_next(hdr, len, off, &v[*n]);
        off = v[(*n)++].end;
    }
    return v;
}

/* find_nth - the index-th (1-based) header named name still there. */
static struct hspan *find_nth(const char *hdr, struct hspan *v, size_t n, const char *name,
                              uint32_t index)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (v[i].repl == -2 || v[i].nlen != nl || strncasecmp(hdr + v[i].off, name, nl) != 0)
            continue;
        if (--index == 0)
            return &v[i];
    }
    return NULL;
}

/* emit - the section with the edits into out; added headers into added. */
static bool emit(const char *hdr, const struct hspan *v, size_t n, const struct milter_hdr_edit *e,
                 struct sb *out)
{
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        if (v[i].repl == -1) {
            ok = sb_append(out, hdr + v[i].off, v[i].end - v[i].off);
        } else if (v[i].repl >= 0) { /* the message's own spelling of the name */
            char name[MILTER_HDR_NAME_MAX + 1];
            size_t nl = v[i].nlen < MILTER_HDR_NAME_MAX ? v[i].nlen : MILTER_HDR_NAME_MAX;
            memcpy(name, hdr + v[i].off, nl);
            name[nl] = 0;
            ok = milter_header_format(out, name, e[v[i].repl].value);
        }
    }
    return ok;
}

/* milter_hdr_edit_apply - see milter.h. */
bool milter_hdr_edit_apply(const char *hdr, size_t len, const struct milter_hdr_edit *e, size_t ne,
                           struct sb *out, struct sb *added)
{
    size_t n;
    struct hspan *v = spans_of(hdr, len, &n);
    if (!v && len)
        return false;
    bool ok = true;
    for (size_t k = 0; ok && k < ne; k++) {
        struct hspan *s = e[k].index ? find_nth(hdr, v, n, e[k].name, e[k].index) : NULL;
        if (s)
            s->repl = e[k].value[0] ? (int)k : -2;
        else if (e[k].value[0])
            ok = milter_header_format(added, e[k].name, e[k].value);
    }
    ok = ok && emit(hdr, v, n, e, out);
    free(v);
    return ok;
}
