/* sess.c - mxlog's session reconstruction: a table of open sessions keyed
 * by id (open addressing, backward-shift delete), session slots reused so
 * a line costs no allocation, and the per-kind handlers that turn lines
 * into transactions (summary lines when present, the dialogue otherwise).
 * One engine per thread. */
#include "sess.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mxl_engine {
    struct mxl_sink sink;
    bool keep_raw;
    char host[MXL_NAME_MAX];
    uint32_t *keys; /* sid per bucket */
    uint32_t *vals; /* slot + 1 per bucket; 0 = empty */
    size_t nbuckets, nopen;
    struct mxl_sess **slots; /* every slot ever made */
    uint32_t *free_slots;
    size_t nslots, nfree;
};

/* ---- small helpers ---------------------------------------------------- */

/* mxl_buf_add - see sess.h. */
bool mxl_buf_add(struct mxl_buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q)
            return false;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
    return true;
}

/* cpy - a slice into a fixed field (truncated, NUL-terminated). */
static void cpy(char *dst, size_t cap, const char *p, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, p, n);
    dst[n] = 0;
}

/* cpys - the same for a struct mxl_str. */
static void cpys(char *dst, size_t cap, struct mxl_str s)
{
    cpy(dst, cap, s.p, s.n);
}

/* upto - the slice s cut at the first occurrence of lit (or whole). */
static struct mxl_str upto(struct mxl_str s, const char *lit)
{
    const char *q = memmem(s.p, s.n, lit, strlen(lit));
    if (q)
        s.n = (size_t)(q - s.p);
    return s;
}

/* ---- the table -------------------------------------------------------- */

/* hash32 - bucket of a session id. */
static size_t hash32(uint32_t k, size_t n)
{
    return (size_t)((k * 2654435761u) ^ (k >> 16)) & (n - 1);
}

/* find - bucket holding sid, or the empty bucket where it would go. */
static size_t find(const struct mxl_engine *e, uint32_t sid)
{
    size_t i = hash32(sid, e->nbuckets);
    while (e->vals[i] && e->keys[i] != sid)
        i = (i + 1) & (e->nbuckets - 1);
    return i;
}

/* grow - double the table when it is half full. */
static bool grow(struct mxl_engine *e)
{
    size_t n = e->nbuckets * 2;
    uint32_t *k = calloc(n, sizeof(*k)), *v = calloc(n, sizeof(*v));
    if (!k || !v) {
        free(k);
        free(v);
        return false;
    }
    uint32_t *ok = e->keys, *ov = e->vals;
    size_t on = e->nbuckets;
    e->keys = k;
    e->vals = v;
    e->nbuckets = n;
    for (size_t i = 0; i < on; i++)
        if (ov[i]) {
            size_t j = find(e, ok[i]);
            e->keys[j] = ok[i];
            e->vals[j] = ov[i];
        }
    free(ok);
    free(ov);
    return true;
}

/* slot_new - room for one more slot in slots and free_slots; its index. */
static bool slot_new(struct mxl_engine *e, uint32_t *idx)
{
    struct mxl_sess **sl = realloc(e->slots, (e->nslots + 1) * sizeof(*sl));
    if (sl)
        e->slots = sl;
    uint32_t *fr = realloc(e->free_slots, (e->nslots + 1) * sizeof(*fr));
    if (fr)
        e->free_slots = fr;
    if (!sl || !fr)
        return false;
    e->slots[e->nslots] = NULL;
    *idx = (uint32_t)e->nslots++;
    return true;
}

/* slot_get - a clean session slot (reused when one is free). */
static struct mxl_sess *slot_get(struct mxl_engine *e, uint32_t *idx)
{
    if (e->nfree) {
        *idx = e->free_slots[--e->nfree];
    } else {
        struct mxl_sess *s = calloc(1, sizeof(*s));
        if (!s || !slot_new(e, idx)) {
            free(s);
            return NULL;
        }
        e->slots[*idx] = s;
    }
    struct mxl_sess *s = e->slots[*idx];
    struct mxl_buf rc = s->txn.rcpts, raw = s->raw;
    memset(s, 0, sizeof(*s));
    rc.len = raw.len = 0;
    s->txn.rcpts = rc;
    s->raw = raw;
    return s;
}

/* sess_open - a new session for sid. */
static struct mxl_sess *sess_open(struct mxl_engine *e, uint32_t sid, int64_t t)
{
    if (e->nopen * 2 >= e->nbuckets && !grow(e))
        return NULL;
    uint32_t idx;
    struct mxl_sess *s = slot_get(e, &idx);
    if (!s)
        return NULL;
    s->sid = sid;
    s->t_start = s->t_end = t;
    memcpy(s->host, e->host, sizeof(s->host));
    size_t b = find(e, sid);
    e->keys[b] = sid;
    e->vals[b] = idx + 1;
    e->nopen++;
    return s;
}

/* sess_remove - drop sid from the table (backward-shift delete). */
static void sess_remove(struct mxl_engine *e, uint32_t sid)
{
    size_t i = find(e, sid), mask = e->nbuckets - 1;
    if (!e->vals[i])
        return;
    e->free_slots[e->nfree++] = e->vals[i] - 1;
    e->vals[i] = 0;
    e->nopen--;
    for (size_t j = (i + 1) & mask; e->vals[j]; j = (j + 1) & mask) {
        size_t home = hash32(e->keys[j], e->nbuckets);
        /* move j back to i when i lies cyclically in [home, j) */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            e->keys[i] = e->keys[j];
            e->vals[i] = e->vals[j];
            e->vals[j] = 0;
            i = j;
        }
    }
}

/* lookup - the open session sid, or NULL. */
static struct mxl_sess *lookup(const struct mxl_engine *e, uint32_t sid)
{
    size_t b = find(e, sid);
    return e->vals[b] ? e->slots[e->vals[b] - 1] : NULL;
}

/* ---- transactions ----------------------------------------------------- */

/* txn_begin - a MAIL command (or a summary without one) opens it. */
static void txn_begin(struct mxl_sess *s, int64_t t)
{
    struct mxl_txn *x = &s->txn;
    struct mxl_buf rc = x->rcpts;
    memset(x, 0, sizeof(*x));
    rc.len = 0;
    if (rc.p)
        rc.p[0] = 0;
    x->rcpts = rc;
    x->open = true;
    x->t_start = x->t_end = t;
}

/* txn_finish - the transaction ended: result/reason unless the summary
 * already said; hand it to the sink. */
static void txn_finish(struct mxl_engine *e, struct mxl_sess *s, int64_t t, const char *result,
                       const char *reason)
{
    struct mxl_txn *x = &s->txn;
    if (!x->open)
        return;
    x->open = false;
    x->t_end = t;
    if (!x->result[0]) {
        snprintf(x->result, sizeof(x->result), "%s", result);
        snprintf(x->reason, sizeof(x->reason), "%s", reason ? reason : "");
    }
    s->ntxn++;
    if (e->sink.txn)
        e->sink.txn(e->sink.arg, s, x);
}

/* rcpt_add - one recipient with its status. */
static void rcpt_add(struct mxl_txn *x, enum mxl_rcpt_st st, const char *addr)
{
    char b = (char)('0' + st);
    /* the entry's NUL is counted in len (mxl_buf_add adds one more past it) */
    if (!mxl_buf_add(&x->rcpts, &b, 1) || !mxl_buf_add(&x->rcpts, addr, strlen(addr) + 1))
        return;
    if (st == MXL_RCPT_OK)
        x->nrcpt_ok++;
    else
        x->nrcpt_refused++;
}

/* mxl_rcpt_next - see sess.h. */
bool mxl_rcpt_next(const struct mxl_txn *t, size_t *pos, enum mxl_rcpt_st *st, const char **addr)
{
    if (*pos >= t->rcpts.len)
        return false;
    const char *p = t->rcpts.p + *pos;
    *st = (enum mxl_rcpt_st)(p[0] - '0');
    *addr = p + 1;
    *pos += 1 + strlen(p + 1) + 1;
    return true;
}

/* ---- session end ------------------------------------------------------ */

/* sess_end - the session is over: close its transaction, tell the sink,
 * free the slot. */
static void sess_end(struct mxl_engine *e, struct mxl_sess *s, enum mxl_end how, int64_t t)
{
    s->end = how;
    if (t > s->t_end)
        s->t_end = t;
    if (how == MXL_END_CLOSED)
        txn_finish(e, s, s->t_end, "aborted", s->close_reason);
    else {
        s->cut_txn = s->txn.open;
        txn_finish(e, s, s->t_end, "aborted", "cut off");
    }
    if (e->sink.sess)
        e->sink.sess(e->sink.arg, s);
    sess_remove(e, s->sid);
}

/* mxl_engine_end_all - see sess.h. */
void mxl_engine_end_all(struct mxl_engine *e, enum mxl_end how, int64_t t)
{
    for (size_t i = 0; i < e->nbuckets && e->nopen; i++)
        while (e->vals[i]) /* the shift may move another session here */
            sess_end(e, e->slots[e->vals[i] - 1], how, t);
}

/* ---- line handlers ---------------------------------------------------- */

/* on_connect - "Connection accepted: client [IP]:PORT, local port P, ...". */
static void on_connect(struct mxl_sess *s, struct mxl_str r)
{
    struct mxl_str ip;
    if (!mxl_after(r.p, r.n, "client [", &ip))
        return;
    const char *rb = memchr(ip.p, ']', ip.n);
    if (!rb)
        return;
    cpy(s->ip, sizeof(s->ip), ip.p, (size_t)(rb - ip.p));
    struct mxl_str rest = {rb + 1, ip.n - (size_t)(rb + 1 - ip.p)};
    if (rest.n && rest.p[0] == ':') {
        s->port = (unsigned)mxl_u64((struct mxl_str){rest.p + 1, rest.n - 1});
    }
    const char *lp = memmem(rest.p, rest.n, "local port ", 11);
    if (lp)
        s->local_port =
            (unsigned)mxl_u64((struct mxl_str){lp + 11, rest.n - (size_t)(lp + 11 - rest.p)});
    s->trusted = memmem(rest.p, rest.n, ", trusted network", 17) != NULL;
}

/* is_dash - the "-" of an absent summary value. */
static bool is_dash(struct mxl_str v)
{
    return v.n == 1 && v.p[0] == '-';
}

/* summary_field - one key=value of the summary into s or its transaction. */
static void summary_field(struct mxl_sess *s, struct mxl_str k, struct mxl_str v)
{
    struct mxl_txn *x = &s->txn;
#define KEY(lit) (k.n == sizeof(lit) - 1 && memcmp(k.p, lit, k.n) == 0)
    if (KEY("client") && !s->ip[0])
        cpys(s->ip, sizeof(s->ip), v);
    else if (KEY("helo") && !is_dash(v))
        cpys(s->helo, sizeof(s->helo), v);
    else if (KEY("tls") && !is_dash(v))
        cpys(s->tls, sizeof(s->tls), v);
    else if (KEY("auth") && !is_dash(v))
        cpys(s->auth, sizeof(s->auth), v);
    else if (KEY("from"))
        cpys(x->from, sizeof(x->from), v);
    else if (KEY("rcpts"))
        x->nrcpt_ok = (unsigned)mxl_u64(v);
    else if (KEY("rcpts_refused"))
        x->nrcpt_refused = (unsigned)mxl_u64(v);
    else if (KEY("size"))
        x->size = mxl_u64(v);
    else if (KEY("result"))
        cpys(x->result, sizeof(x->result), v);
    else if (KEY("id"))
        cpys(x->qid, sizeof(x->qid), v);
    else if (KEY("reason"))
        cpys(x->reason, sizeof(x->reason), v);
#undef KEY
}

/* on_summary - the transaction summary: authoritative fields (one pass
 * over the line), then the transaction ends. */
static void on_summary(struct mxl_engine *e, struct mxl_sess *s, const struct mxl_line *l)
{
    struct mxl_txn *x = &s->txn;
    if (!x->open)
        txn_begin(s, l->t);
    struct mxl_kv kv[16];
    /* By the server's layout only: a line that does not match it (cut
     * short) gives no fields rather than whatever client text says. */
    size_t n = mxl_summary_fields(l->text, l->len, kv, 16);
    x->reason[0] = 0;
    x->result[0] = 0;
    for (size_t i = 0; i < n; i++)
        summary_field(s, kv[i].key, kv[i].val);
    x->have_summary = true;
    if (!x->result[0])
        snprintf(x->result, sizeof(x->result), "aborted");
    txn_finish(e, s, l->t, x->result, x->reason);
}

/* rcpt_status - a RCPT reply: the recipient's status. */
static enum mxl_rcpt_st rcpt_status(const struct mxl_txn *x, const struct mxl_line *l)
{
    if (l->text[0] == '2')
        return MXL_RCPT_OK;
    if (strstr(x->pending_why, "User unknown"))
        return MXL_RCPT_UNKNOWN;
    if (strstr(x->pending_why, "Relaying denied"))
        return MXL_RCPT_RELAY;
    if (memmem(l->text, l->len, "Too many recipients", 19))
        return MXL_RCPT_TOO_MANY;
    return MXL_RCPT_OTHER;
}

/* reply_why - the reason of a refusal: the check line before the reply,
 * else the reply itself (into why, MXL_WHY_MAX bytes). */
static const char *reply_why(const struct mxl_txn *x, const struct mxl_line *l, char *why)
{
    if (x->pending_why[0])
        return x->pending_why;
    cpy(why, MXL_WHY_MAX, l->text, l->len);
    return why;
}

/* on_reply - a reply line ends the command it answers. */
static void on_reply(struct mxl_engine *e, struct mxl_sess *s, const struct mxl_line *l)
{
    struct mxl_txn *x = &s->txn;
    if (l->len > 3 && l->text[3] == '-')
        return; /* only the last line of a multi-line reply */
    char code = l->text[0];
    enum mxl_kind cmd = x->last_cmd;
    x->last_cmd = MXL_K_OTHER;
    if (!x->open)
        return;
    if (x->data_done && cmd == MXL_K_DOT) {
        char why[MXL_WHY_MAX];
        txn_finish(e, s, l->t,
                   code == '2'   ? "queued"
                   : code == '4' ? "tempfail"
                                 : "refused",
                   code == '2' ? NULL : reply_why(x, l, why));
    } else if (cmd == MXL_K_MAIL && code != '2') {
        char why[MXL_WHY_MAX];
        x->mail_refused = true;
        txn_finish(e, s, l->t, "refused", reply_why(x, l, why));
    } else if (cmd == MXL_K_RCPT) {
        enum mxl_rcpt_st st = rcpt_status(x, l);
        if (st == MXL_RCPT_OTHER && !x->rcpt_why[0])
            cpys(x->rcpt_why, sizeof(x->rcpt_why),
                 (struct mxl_str){x->pending_why[0] ? x->pending_why : l->text,
                                  x->pending_why[0] ? strlen(x->pending_why) : l->len});
        rcpt_add(x, st, x->pending_rcpt);
    } else if (cmd == MXL_K_DATA && l->len >= 3 && memcmp(l->text, "354", 3) == 0) {
        x->in_data = true;
    } else if (cmd == MXL_K_RSET || cmd == MXL_K_HELO) {
        txn_finish(e, s, l->t, "aborted", cmd == MXL_K_RSET ? "RSET" : "HELO");
    }
    x->pending_why[0] = 0;
}

/* on_command - a client command the reconstruction follows. */
static void on_command(struct mxl_sess *s, const struct mxl_line *l)
{
    struct mxl_txn *x = &s->txn;
    struct mxl_str a;
    switch (l->kind) {
    case MXL_K_HELO: {
        size_t off = l->len > 5 ? 5 : l->len;
        cpy(s->helo, sizeof(s->helo), l->text + off, l->len - off);
        break;
    }
    case MXL_K_MAIL:
        if (x->open)
            break; /* nested MAIL: the server refuses it, the transaction stays */
        txn_begin(s, l->t);
        if (mxl_angle_addr(l->text, l->len, &a))
            cpys(x->from, sizeof(x->from), a);
        break;
    case MXL_K_RCPT:
        x->pending_rcpt[0] = 0;
        if (mxl_angle_addr(l->text, l->len, &a))
            cpys(x->pending_rcpt, sizeof(x->pending_rcpt), a);
        break;
    case MXL_K_DOT:
        x->data_done = true;
        x->in_data = false;
        break;
    default: break;
    }
    x->last_cmd = l->kind;
    x->pending_why[0] = 0;
}

/* on_check_txn - check lines about the current transaction. */
static void on_check_txn(struct mxl_sess *s, const struct mxl_line *l)
{
    struct mxl_txn *x = &s->txn;
    struct mxl_str r = {l->text, l->len}, v;
    switch (l->kind) {
    case MXL_K_RCPT_REFUSED:
        if ((v.p = memchr(r.p, '>', r.n)) != NULL) {
            v.n = r.n - (size_t)(v.p - r.p);
            v.p++, v.n--;
            while (v.n && *v.p == ' ')
                v.p++, v.n--;
            cpys(x->pending_why, sizeof(x->pending_why), v);
        }
        break;
    case MXL_K_MAIL_REFUSED:
    case MXL_K_MSG_NOTQUEUED:
        if ((v.p = memchr(r.p, ':', r.n)) != NULL) {
            v.n = r.n - (size_t)(v.p + 2 - r.p);
            v.p += 2;
            cpys(x->pending_why, sizeof(x->pending_why), v);
        }
        break;
    case MXL_K_MSG_REFUSED:
        if (mxl_after(r.p, r.n, "Message refused (", &v)) {
            x->size = mxl_u64(v);
            const char *c = memmem(v.p, v.n, "): ", 3);
            if (c)
                cpy(x->pending_why, sizeof(x->pending_why), c + 3, v.n - (size_t)(c + 3 - v.p));
        }
        break;
    case MXL_K_MSG_ACCEPTED:
        if (mxl_after(r.p, r.n, "Message accepted: queue id ", &v))
            cpys(x->qid, sizeof(x->qid), upto(v, ","));
        break;
    default: break;
    }
}

/* on_filter - SURBL and antivirus verdict lines. */
static void on_filter(struct mxl_sess *s, const struct mxl_line *l)
{
    struct mxl_txn *x = &s->txn;
    struct mxl_str v;
    if (l->kind == MXL_K_SURBL && mxl_after(l->text, l->len, "SURBL verdict: ", &v)) {
        const char *in = memmem(v.p, v.n, " listed in ", 11);
        if (!in)
            return;
        cpy(x->spam_domain, sizeof(x->spam_domain), v.p, (size_t)(in - v.p));
        struct mxl_str z = {in + 11, v.n - (size_t)(in + 11 - v.p)};
        z = upto(upto(z, ":"), ",");
        cpys(x->spam_zone, sizeof(x->spam_zone), z);
    } else if (l->kind == MXL_K_VIRUS && mxl_after(l->text, l->len, "Antivirus: stream: ", &v)) {
        cpys(x->virus, sizeof(x->virus), upto(v, " FOUND"));
    }
}

/* on_auth - AUTH success and failure lines. */
static void on_auth(struct mxl_sess *s, const struct mxl_line *l)
{
    struct mxl_str v;
    if (l->kind == MXL_K_AUTH_OK && mxl_after(l->text, l->len, "AUTH success: user ", &v)) {
        cpys(s->auth, sizeof(s->auth), upto(v, " ("));
        return;
    }
    if (!mxl_after(l->text, l->len, "AUTH failed (", &v))
        return;
    s->auth_failures = (unsigned)mxl_u64(v);
    const char *of = memmem(v.p, v.n, " of ", 4);
    if (of)
        s->auth_max = (unsigned)mxl_u64((struct mxl_str){of + 4, v.n - (size_t)(of + 4 - v.p)});
    const char *u = memmem(v.p, v.n, "): user ", 8);
    if (u)
        cpys(s->auth_fail_user, sizeof(s->auth_fail_user),
             upto((struct mxl_str){u + 8, v.n - (size_t)(u + 8 - v.p)}, " ("));
}

/* on_dnsbl - "DNSBL verdict: score S (threshold T): blocked using Z" keeps
 * "Z (score S, threshold T)"; a pass keeps nothing. */
static void on_dnsbl(struct mxl_sess *s, const struct mxl_line *l)
{
    struct mxl_str v, score, thr;
    const char *b = memmem(l->text, l->len, "): blocked using ", 17);
    if (!b || !mxl_after(l->text, l->len, "DNSBL verdict: score ", &v))
        return;
    score = upto(v, " ");
    thr = (struct mxl_str){score.p + score.n, (size_t)(b - score.p - score.n)};
    if (!mxl_after(thr.p, thr.n, " (threshold ", &thr))
        return;
    const char *z = b + 17;
    snprintf(s->dnsbl, sizeof(s->dnsbl), "%.*s (score %.*s, threshold %.*s)",
             (int)(l->text + l->len - z), z, (int)score.n, score.p, (int)thr.n, thr.p);
}

/* on_session_line - lines about the session as a whole. */
static void on_session_line(struct mxl_engine *e, struct mxl_sess *s, const struct mxl_line *l)
{
    struct mxl_str v;
    switch (l->kind) {
    case MXL_K_CONNECT:
        if (mxl_after(l->text, l->len, "Connection accepted: ", &v))
            on_connect(s, v);
        break;
    case MXL_K_TLS_OK:
        if (mxl_after(l->text, l->len, "TLS established: ", &v))
            cpys(s->tls, sizeof(s->tls), upto(v, ","));
        break;
    case MXL_K_TLS_FAILED:
        if (mxl_after(l->text, l->len, "TLS failed: ", &v))
            cpys(s->tls_why, sizeof(s->tls_why), v);
        break;
    case MXL_K_PROXY_REFUSED:
        if (mxl_after(l->text, l->len, "PROXY header refused: ", &v))
            cpys(s->proxy_why, sizeof(s->proxy_why), v);
        break;
    case MXL_K_DNSBL: on_dnsbl(s, l); break;
    case MXL_K_PER_IP:
    case MXL_K_RATE:
    case MXL_K_LIMIT: s->limit = l->kind; break;
    case MXL_K_PREGREET: s->pregreet = true; break;
    case MXL_K_EOF_DATA: s->eof_data = true; break;
    case MXL_K_TIMEOUT: s->timeout_data = l->text[8] == 'd'; break;
    case MXL_K_CLOSE:
        if (mxl_after(l->text, l->len, "CloseClient Started. (", &v))
            cpys(s->close_reason, sizeof(s->close_reason), upto(v, ")"));
        break;
    case MXL_K_CLOSESOCKET: sess_end(e, s, MXL_END_CLOSED, l->t); break;
    default: break;
    }
}

/* on_line - dispatch one line of session s by kind. */
static void on_line(struct mxl_engine *e, struct mxl_sess *s, const struct mxl_line *l)
{
    switch (l->kind) {
    case MXL_K_REPLY: on_reply(e, s, l); break;
    case MXL_K_HELO:
    case MXL_K_MAIL:
    case MXL_K_RCPT:
    case MXL_K_DATA:
    case MXL_K_RSET:
    case MXL_K_DOT: on_command(s, l); break;
    case MXL_K_SUMMARY: on_summary(e, s, l); break;
    case MXL_K_RCPT_REFUSED:
    case MXL_K_MAIL_REFUSED:
    case MXL_K_MSG_REFUSED:
    case MXL_K_MSG_ACCEPTED:
    case MXL_K_MSG_NOTQUEUED: on_check_txn(s, l); break;
    case MXL_K_SURBL:
    case MXL_K_VIRUS: on_filter(s, l); break;
    case MXL_K_AUTH_OK:
    case MXL_K_AUTH_FAILED: on_auth(s, l); break;
    default: on_session_line(e, s, l); break;
    }
}

/* ---- the engine ------------------------------------------------------- */

/* mxl_engine_new - see sess.h. */
struct mxl_engine *mxl_engine_new(const struct mxl_sink *sink, bool keep_raw)
{
    struct mxl_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->sink = *sink;
    e->keep_raw = keep_raw;
    e->nbuckets = 64;
    e->keys = calloc(e->nbuckets, sizeof(*e->keys));
    e->vals = calloc(e->nbuckets, sizeof(*e->vals));
    if (!e->keys || !e->vals) {
        mxl_engine_free(e);
        return NULL;
    }
    return e;
}

/* mxl_engine_adopt - see sess.h. */
bool mxl_engine_adopt(struct mxl_engine *e, struct mxl_engine *from)
{
    for (size_t i = 0; i < from->nbuckets; i++) {
        if (!from->vals[i])
            continue;
        struct mxl_sess *s = from->slots[from->vals[i] - 1], *old = lookup(e, s->sid);
        if (old) /* opened again after the split: the old one was cut off */
            sess_end(e, old, MXL_END_EOF, s->t_start);
        uint32_t idx;
        if ((e->nopen + 1) * 2 > e->nbuckets && !grow(e))
            return false;
        if (!slot_new(e, &idx))
            return false;
        e->slots[idx] = s;
        from->slots[from->vals[i] - 1] = NULL; /* e owns it now */
        from->vals[i] = 0;
        from->nopen--;
        size_t b = find(e, s->sid);
        e->keys[b] = s->sid;
        e->vals[b] = idx + 1;
        e->nopen++;
    }
    return true;
}

/* mxl_engine_free - see sess.h. */
void mxl_engine_free(struct mxl_engine *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nslots; i++) {
        if (!e->slots[i])
            continue; /* adopted by another engine */
        free(e->slots[i]->txn.rcpts.p);
        free(e->slots[i]->raw.p);
        free(e->slots[i]);
    }
    free(e->slots);
    free(e->free_slots);
    free(e->keys);
    free(e->vals);
    free(e);
}

/* mxl_engine_host - see sess.h. */
void mxl_engine_host(struct mxl_engine *e, const char *host)
{
    snprintf(e->host, sizeof(e->host), "%s", host ? host : "");
}

/* mxl_engine_open - see sess.h. */
size_t mxl_engine_open(const struct mxl_engine *e)
{
    return e->nopen;
}

/* mxl_engine_is_open - see sess.h. */
bool mxl_engine_is_open(const struct mxl_engine *e, uint32_t sid)
{
    return lookup(e, sid) != NULL;
}

/* mxl_engine_feed - see sess.h. */
bool mxl_engine_feed(struct mxl_engine *e, const struct mxl_line *l, const char *raw, size_t rawlen)
{
    if (l->sid == 0) { /* the process's own lines; zero-mode check lines */
        if (l->kind == MXL_K_START || l->kind == MXL_K_STOP)
            mxl_engine_end_all(e, MXL_END_RESTART, l->t);
        return true;
    }
    struct mxl_sess *s = lookup(e, l->sid);
    if (s && l->kind == MXL_K_CONNECT) { /* the id again: the old one was cut off */
        sess_end(e, s, MXL_END_EOF, l->t);
        s = NULL;
    }
    if (!s && !(s = sess_open(e, l->sid, l->t)))
        return false;
    s->nlines++;
    s->t_end = l->t;
    if (e->keep_raw && (!mxl_buf_add(&s->raw, raw, rawlen) || !mxl_buf_add(&s->raw, "\n", 1)))
        return false;
    on_line(e, s, l);
    return true;
}
