/* why.c - `mxlog why`: pass 1 finds the query's hits with the SIMD search
 * and collects their session ids; each session's first line is found by
 * walking back from its first hit; pass 2 walks forward only through the
 * windows where a wanted session is open, feeding just those sessions'
 * lines to the engine. Main thread. */
#include "why.h"

#include "out.h"
#include "scan.h"
#include "verdict.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct want {
    uint32_t sid;
    size_t start; /* first line of the session in this file */
    bool active, done;
};

struct why {
    struct mxl_opts *o;
    struct mxl_query q;
    struct mxl_out out;
    struct want *w;
    size_t nw, cw;
    uint32_t *map; /* sid -> want index + 1 (open addressing) */
    size_t nmap;
    size_t active_open;
    unsigned long found;
};

/* ---- the query -------------------------------------------------------- */

/* all_hex - s is exactly n hex digits. */
static bool all_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'f')))
            return false;
    return true;
}

/* mxl_query_parse - see why.h. */
bool mxl_query_parse(const char *text, struct mxl_query *q)
{
    memset(q, 0, sizeof(*q));
    size_t n = strlen(text);
    if (n && text[0] == '<' && text[n - 1] == '>') {
        text++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(q->text))
        return false;
    memcpy(q->text, text, n);
    q->text[n] = 0;
    if (all_hex(q->text, 20))
        q->type = MXL_Q_QID;
    else if (all_hex(q->text, 8) && mxl_parse_hex8(q->text, &q->sid))
        q->type = MXL_Q_SID;
    else if (strchr(q->text, '@'))
        q->type = MXL_Q_ADDR;
    else if (strchr(q->text, ':') || strspn(q->text, "0123456789.") == n)
        q->type = MXL_Q_IP;
    else
        q->type = MXL_Q_DOMAIN;
    return true;
}

/* addr_matches - an address against an address or domain query. */
static bool addr_matches(const struct mxl_query *q, const char *a)
{
    if (q->type == MXL_Q_ADDR)
        return strcasecmp(a, q->text) == 0;
    const char *at = strrchr(a, '@');
    return q->type == MXL_Q_DOMAIN && at && strcasecmp(at + 1, q->text) == 0;
}

/* mxl_txn_matches - see why.h. */
bool mxl_txn_matches(const struct mxl_query *q, const struct mxl_sess *s, const struct mxl_txn *x)
{
    switch (q->type) {
    case MXL_Q_QID: return strcasecmp(x->qid, q->text) == 0;
    case MXL_Q_SID: return s->sid == q->sid;
    case MXL_Q_IP: return strcasecmp(s->ip, q->text) == 0;
    default: break;
    }
    if (addr_matches(q, x->from))
        return true;
    size_t pos = 0;
    enum mxl_rcpt_st st;
    const char *a;
    while (mxl_rcpt_next(x, &pos, &st, &a))
        if (addr_matches(q, a))
            return true;
    return false;
}

/* mxl_sess_matches - see why.h (session lines: by id, IP or AUTH user). */
bool mxl_sess_matches(const struct mxl_query *q, const struct mxl_sess *s)
{
    switch (q->type) {
    case MXL_Q_SID: return s->sid == q->sid;
    case MXL_Q_IP: return strcasecmp(s->ip, q->text) == 0;
    case MXL_Q_QID: return false;
    default: return addr_matches(q, s->auth) || addr_matches(q, s->auth_fail_user);
    }
}

/* ---- the wanted sessions ---------------------------------------------- */

/* map_slot - bucket of sid in the wanted map. */
static size_t map_slot(const struct why *y, uint32_t sid)
{
    size_t i = (size_t)(sid * 2654435761u) & (y->nmap - 1);
    while (y->map[i] && y->w[y->map[i] - 1].sid != sid)
        i = (i + 1) & (y->nmap - 1);
    return i;
}

/* want_get - the wanted entry of sid, or NULL. */
static struct want *want_get(const struct why *y, uint32_t sid)
{
    if (!y->nmap)
        return NULL;
    size_t b = map_slot(y, sid);
    return y->map[b] ? &y->w[y->map[b] - 1] : NULL;
}

/* map_rebuild - (re)index every entry; the map stays under half full. */
static bool map_rebuild(struct why *y, size_t need)
{
    size_t n = 64;
    while (n < need * 2)
        n *= 2;
    uint32_t *m = calloc(n, sizeof(*m));
    if (!m)
        return false;
    free(y->map);
    y->map = m;
    y->nmap = n;
    for (size_t i = 0; i < y->nw; i++)
        y->map[map_slot(y, y->w[i].sid)] = (uint32_t)i + 1;
    return true;
}

/* want_add - want sid from offset start (first hit); false on ENOMEM. */
static bool want_add(struct why *y, uint32_t sid, size_t start)
{
    if (want_get(y, sid))
        return true;
    if (y->nw == y->cw) {
        size_t nc = y->cw ? y->cw * 2 : 64;
        struct want *nw = realloc(y->w, nc * sizeof(*nw));
        if (!nw)
            return false;
        y->w = nw;
        y->cw = nc;
    }
    y->w[y->nw++] = (struct want){.sid = sid, .start = start};
    if ((y->nw * 2 > y->nmap && !map_rebuild(y, y->nw)) || !y->nmap)
        return false;
    y->map[map_slot(y, sid)] = (uint32_t)y->nw;
    return true;
}

/* line_sid - the id of the line at [ls, le), or false. */
static bool line_sid(const char *p, size_t ls, size_t le, uint32_t *sid)
{
    return le - ls >= MXL_PREFIX_LEN && p[ls + MXL_SID_OFF + 8] == ',' &&
           mxl_parse_hex8(p + ls + MXL_SID_OFF, sid);
}

/* text_is - the line at ls has text starting with lit. */
static bool text_is(const char *p, size_t ls, size_t le, const char *lit)
{
    size_t k = strlen(lit);
    return le - ls >= MXL_PREFIX_LEN + k && memcmp(p + ls + MXL_PREFIX_LEN, lit, k) == 0;
}

/* session_start - walk back from line ls to the session's first line: its
 * "Connection accepted", the line after an "mxringd started", or 0. */
static size_t session_start(const char *p, size_t n, size_t ls, uint32_t sid)
{
    for (;;) {
        size_t le = mxl_line_end(p, n, ls);
        uint32_t s;
        if (line_sid(p, ls, le, &s)) {
            if (s == sid && text_is(p, ls, le, "Connection accepted: "))
                return ls;
            if (s == 0 && text_is(p, ls, le, "mxringd started ("))
                return le < n ? le + 1 : n;
        }
        if (ls == 0)
            return 0;
        ls = mxl_line_start(p, ls - 1);
    }
}

/* ---- the passes ------------------------------------------------------- */

/* pass_hits - pass 1: every hit's session is wanted (from its start). */
static bool pass_hits(struct why *y, const char *p, size_t n)
{
    size_t m = strlen(y->q.text), i = 0, first = y->nw;
    while (i < n) {
        size_t k = i + mxl_find_ci(p + i, n - i, y->q.text, m);
        if (k >= n)
            break;
        size_t ls = mxl_line_start(p, k), le = mxl_line_end(p, n, k);
        uint32_t sid;
        if (line_sid(p, ls, le, &sid) && sid && (y->q.type != MXL_Q_SID || k - ls == MXL_SID_OFF) &&
            !want_get(y, sid) && !want_add(y, sid, ls))
            return false;
        i = le + 1;
    }
    for (size_t w = first; w < y->nw; w++)
        y->w[w].start = session_start(p, n, y->w[w].start, y->w[w].sid);
    return true;
}

/* cmp_start - wanted sessions by first line. */
static int cmp_start(const void *a, const void *b)
{
    const struct want *x = a, *z = b;
    return x->start < z->start ? -1 : x->start > z->start;
}

/* feed_line - one line of the window to the engine when it matters. */
static bool feed_line(struct why *y, struct mxl_engine *e, const char *p, size_t ls, size_t le)
{
    uint32_t sid;
    if (!line_sid(p, ls, le, &sid))
        return true;
    struct want *w = sid ? want_get(y, sid) : NULL;
    if (sid && (!w || !w->active || w->done))
        return true;
    struct mxl_line l;
    if (mxl_parse_line(p + ls, le - ls, &l) == MXL_K_BAD)
        return true;
    if (!sid && l.kind != MXL_K_START && l.kind != MXL_K_STOP)
        return true;
    return mxl_engine_feed(e, &l, p + ls, le - ls);
}

/* pass_windows - pass 2: forward through the windows where a wanted
 * session is open, jumping over the rest. */
static bool pass_windows(struct why *y, struct mxl_engine *e, const char *p, size_t n)
{
    if (!y->nw)
        return true;
    qsort(y->w, y->nw, sizeof(*y->w), cmp_start);
    if (!map_rebuild(y, y->nw))
        return false;
    size_t pos = y->w[0].start, next = 0;
    y->active_open = 0;
    while (pos < n) {
        while (next < y->nw && y->w[next].start <= pos) {
            y->w[next++].active = true;
            y->active_open++;
        }
        if (y->active_open == 0) {
            if (next == y->nw)
                break;
            pos = y->w[next].start;
            continue;
        }
        size_t le = mxl_line_end(p, n, pos);
        if (!feed_line(y, e, p, pos, le))
            return false;
        pos = le + 1;
    }
    return true;
}

/* ---- output ----------------------------------------------------------- */

/* on_txn - a reconstructed transaction: print it when it matches. */
static void on_txn(void *arg, struct mxl_sess *s, const struct mxl_txn *x)
{
    struct why *y = arg;
    if (!mxl_in_range(y->o, x->t_start) || !mxl_txn_matches(&y->q, s, x))
        return;
    mxl_out_txn(&y->out, s, x);
    s->mark = 1;
    y->found++;
}

/* on_sess - a session ended: its own line when notable, raw lines (-v),
 * and its wanted entry is done. */
static void on_sess(void *arg, struct mxl_sess *s)
{
    struct why *y = arg;
    bool line = mxl_sess_notable(s) && mxl_in_range(y->o, s->t_start) &&
                (mxl_sess_matches(&y->q, s) || (s->mark && s->auth_failures));
    if (line || s->mark) {
        mxl_out_sess(&y->out, s, line);
        y->found++;
    }
    struct want *w = want_get(y, s->sid);
    if (w && w->active && !w->done) {
        w->done = true;
        y->active_open--;
    }
}

/* carry_over - sessions still open at the end of a file are wanted from
 * the start of the next one (a session across midnight). */
static bool carry_over(struct why *y, struct mxl_engine *e)
{
    size_t old = y->nw;
    struct want keep[64];
    size_t nk = 0;
    for (size_t i = 0; i < old && nk < 64; i++)
        if (y->w[i].active && !y->w[i].done && mxl_engine_is_open(e, y->w[i].sid))
            keep[nk++] = y->w[i];
    y->nw = 0;
    if (y->nmap)
        memset(y->map, 0, y->nmap * sizeof(*y->map));
    for (size_t i = 0; i < nk; i++)
        if (!want_add(y, keep[i].sid, 0))
            return false;
    return true;
}

/* why_files - both passes over every selected file. */
static int why_files(struct why *y, struct mxl_file *files, size_t nf, struct mxl_engine *e)
{
    char err[8192];
    for (size_t i = 0; i < nf; i++) {
        if (i && strcmp(files[i].host, files[i - 1].host) != 0) {
            mxl_engine_end_all(e, MXL_END_EOF, INT64_MIN);
            y->nw = 0;
        }
        mxl_engine_host(e, files[i].host);
        struct mxl_map m;
        if (mxl_map_file(&files[i], &m, err, sizeof(err)) < 0) {
            fprintf(stderr, "mxlog: %s\n", err);
            y->o->file_errors++;
            continue;
        }
        bool ok = carry_over(y, e) && pass_hits(y, m.p, m.n) && pass_windows(y, e, m.p, m.n);
        y->o->bytes += m.n;
        mxl_unmap(&m);
        if (!ok) {
            fprintf(stderr, "mxlog: out of memory\n");
            return 2;
        }
    }
    mxl_engine_end_all(e, MXL_END_EOF, INT64_MIN);
    return 0;
}

/* mxl_why - see why.h. */
int mxl_why(struct mxl_opts *o, const char *query)
{
    struct why y = {.o = o, .out = {.f = stdout, .json = o->json, .verbose = o->verbose}};
    if (!mxl_query_parse(query, &y.q)) {
        fprintf(stderr, "mxlog: why: give an address, IP, queue id or session id\n");
        return 2;
    }
    if (y.q.type == MXL_Q_ADDR || y.q.type == MXL_Q_DOMAIN)
        y.out.focus = y.q.type == MXL_Q_ADDR ? y.q.text : NULL;
    struct mxl_file *files = NULL;
    size_t nf = 0;
    if (mxl_files_of(o, &files, &nf) < 0)
        return 2;
    struct mxl_sink sink = {on_txn, on_sess, &y};
    struct mxl_engine *e = mxl_engine_new(&sink, o->verbose);
    int rc = e ? why_files(&y, files, nf, e) : 2;
    mxl_engine_free(e);
    free(files);
    free(y.w);
    free(y.map);
    fflush(stdout);
    mxl_report_bad(o);
    if (rc)
        return rc;
    if (!y.found)
        fprintf(stderr, "mxlog: nothing in the receivelog involves %s\n", y.q.text);
    return o->file_errors ? 2 : y.found ? 0 : 1;
}
