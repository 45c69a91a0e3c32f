/* agg.c - counting for `mxlog stats` and `mxlog report`: every ended
 * transaction and session lands in totals, tallies, hour buckets and the
 * worst-session list. Allocates per new key, never per line. Main thread. */
#include "agg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* str_hash - FNV-1a of a lower-cased key. */
static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        h = (h ^ (c >= 'A' && c <= 'Z' ? c | 0x20 : c)) * 1099511628211ull;
    }
    return h;
}

/* tally_grow - double the table. */
static bool tally_grow(struct mxl_tally *t)
{
    size_t cap = t->cap ? t->cap * 2 : 64;
    struct mxl_tent *v = calloc(cap, sizeof(*v));
    if (!v)
        return false;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->v[i].key)
            continue;
        size_t j = t->v[i].hash & (cap - 1);
        while (v[j].key)
            j = (j + 1) & (cap - 1);
        v[j] = t->v[i];
    }
    free(t->v);
    t->v = v;
    t->cap = cap;
    return true;
}

/* A block of tally keys: keys are never freed one by one, so they are
 * packed instead of one malloc each. */
struct mxl_kblock {
    struct mxl_kblock *next;
    char *free; /* the next free byte */
};

#define KBLOCK_SIZE 65536u

/* key_dup - a copy of key in t's key blocks, or NULL. */
static char *key_dup(struct mxl_tally *t, const char *key)
{
    size_t n = strlen(key) + 1;
    if (n > t->keys_left) {
        size_t sz = n > KBLOCK_SIZE ? n : KBLOCK_SIZE;
        struct mxl_kblock *b = malloc(sizeof(*b) + sz);
        if (!b)
            return NULL;
        b->next = t->keys;
        b->free = (char *)(b + 1);
        t->keys = b;
        t->keys_left = sz;
    }
    char *k = t->keys->free;
    memcpy(k, key, n);
    t->keys->free += n;
    t->keys_left -= n;
    return k;
}

/* tally_add - add (a, b) to key (case-insensitive). */
static void tally_add(struct mxl_agg *g, struct mxl_tally *t, const char *key, uint64_t a,
                      uint64_t b)
{
    if (!key || !key[0])
        key = "-";
    if ((t->n + 1) * 2 > t->cap && !tally_grow(t)) {
        g->nomem = true;
        return;
    }
    uint64_t h = str_hash(key);
    size_t j = h & (t->cap - 1);
    while (t->v[j].key && (t->v[j].hash != h || strcasecmp(t->v[j].key, key) != 0))
        j = (j + 1) & (t->cap - 1);
    if (!t->v[j].key) {
        if (!(t->v[j].key = key_dup(t, key))) {
            g->nomem = true;
            return;
        }
        t->v[j].hash = h;
        t->n++;
    }
    t->v[j].a += a;
    t->v[j].b += b;
}

/* cmp_tent - larger a+b first, then key. */
static int cmp_tent(const void *x, const void *y)
{
    const struct mxl_tent *a = *(const struct mxl_tent *const *)x;
    const struct mxl_tent *b = *(const struct mxl_tent *const *)y;
    uint64_t s = a->a + a->b, t = b->a + b->b;
    return s != t ? (s > t ? -1 : 1) : strcmp(a->key, b->key);
}

/* top_insert - insert e into the sorted top list v[0..*k) of at most n. */
static void top_insert(struct mxl_tent **v, size_t *k, size_t n, struct mxl_tent *e)
{
    if (*k == n && cmp_tent(&e, &v[n - 1]) >= 0)
        return; /* not better than the last of a full list */
    size_t i = *k < n ? (*k)++ : n - 1;
    while (i && cmp_tent(&e, &v[i - 1]) < 0) {
        v[i] = v[i - 1];
        i--;
    }
    v[i] = e;
}

/* mxl_tally_sorted - see agg.h. A short top list is kept by insertion
 * (one pass, no sort of every key); a long one is sorted whole. */
struct mxl_tent **mxl_tally_sorted(const struct mxl_tally *t, size_t n)
{
    if (!t->n)
        return NULL;
    bool whole = !n || n >= t->n || n > 64;
    if (whole)
        n = t->n;
    struct mxl_tent **v = malloc(n * sizeof(*v));
    if (!v)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->v[i].key)
            continue;
        if (whole)
            v[k++] = &t->v[i];
        else
            top_insert(v, &k, n, &t->v[i]);
    }
    if (whole)
        qsort(v, k, sizeof(*v), cmp_tent);
    return v;
}

/* hour_add - one message of verdict v at civil time t. */
static void hour_add(struct mxl_agg *g, int64_t t, enum mxl_verdict v)
{
    int64_t h = t >= 0 ? t / 3600 : 0;
    size_t i = g->nhours;
    while (i && g->hours[i - 1].hour > h)
        i--;
    if (!(i && g->hours[i - 1].hour == h)) {
        struct mxl_hour *nh = realloc(g->hours, (g->nhours + 1) * sizeof(*nh));
        if (!nh) {
            g->nomem = true;
            return;
        }
        g->hours = nh;
        memmove(&nh[i + 1], &nh[i], (g->nhours - i) * sizeof(*nh));
        memset(&nh[i], 0, sizeof(*nh));
        nh[i].hour = h;
        g->nhours++;
        i++;
    }
    g->hours[i - 1].n[v]++;
}

/* domain_of - the part after the last '@' ("-" when none). */
static const char *domain_of(const char *a)
{
    const char *at = strrchr(a, '@');
    return at ? at + 1 : a[0] ? a : "<>";
}

/* worst_add - keep the MXL_WORST sessions with the highest score. */
static void worst_add(struct mxl_agg *g, const struct mxl_sess *s, unsigned score,
                      const char *words)
{
    size_t k;
    if (g->nworst < MXL_WORST)
        k = g->nworst++;
    else if (g->worst[MXL_WORST - 1].score < score)
        k = MXL_WORST - 1; /* replaces the least bad */
    else
        return;
    struct mxl_worst *w = &g->worst[k];
    w->sid = s->sid;
    w->t = s->t_start;
    w->score = score;
    snprintf(w->host, sizeof(w->host), "%s", s->host);
    snprintf(w->ip, sizeof(w->ip), "%s", s->ip);
    snprintf(w->words, sizeof(w->words), "%s", words);
    while (k && g->worst[k - 1].score < g->worst[k].score) { /* keep sorted */
        struct mxl_worst tmp = g->worst[k - 1];
        g->worst[k - 1] = g->worst[k];
        g->worst[k] = tmp;
        k--;
    }
}

/* agg_txn - count one transaction. */
static void agg_txn(void *arg, struct mxl_sess *s, const struct mxl_txn *x)
{
    struct mxl_agg *g = arg;
    if (!mxl_in_range(g->o, x->t_start))
        return;
    char words[512];
    enum mxl_verdict v = mxl_txn_verdict(s, x, NULL, words, 0);
    bool ok = v == MXL_V_ACCEPTED || v == MXL_V_QUARANTINED;
    bool bad = !ok && mxl_verdict_refused(v);
    g->txns++;
    g->by_verdict[v]++;
    g->accepted += ok;
    g->refused += bad;
    g->bytes += ok ? x->size : 0;
    g->rcpts_ok += x->nrcpt_ok;
    g->rcpts_refused += x->nrcpt_refused;
    hour_add(g, x->t_start, v);
    tally_add(g, &g->sender_dom, domain_of(x->from), ok, bad);
    size_t pos = 0;
    enum mxl_rcpt_st st;
    const char *a;
    while (mxl_rcpt_next(x, &pos, &st, &a)) {
        tally_add(g, &g->rcpt_dom, domain_of(a), st == MXL_RCPT_OK && ok, st != MXL_RCPT_OK);
        if (st != MXL_RCPT_OK)
            tally_add(g, &g->refused_rcpts, a, 1, 0);
    }
    s->mark += bad + x->nrcpt_refused;
    if (bad || x->nrcpt_refused) { /* the worst-session table names the last refusal */
        if (bad)
            mxl_txn_verdict(s, x, NULL, words, sizeof(words));
        else
            mxl_txn_rcpt_refusal(s, x, words, sizeof(words));
        snprintf(s->note, sizeof(s->note), "%s", words);
    }
}

/* agg_sess - count one session (and its own verdict when notable). */
static void agg_sess(void *arg, struct mxl_sess *s)
{
    struct mxl_agg *g = arg;
    if (!mxl_in_range(g->o, s->t_start))
        return;
    g->sessions++;
    char words[512];
    enum mxl_verdict v = mxl_sess_verdict(s, words, 0);
    bool notable = mxl_sess_notable(s);
    if (notable && v != MXL_V_NO_MAIL) {
        g->by_verdict[v]++;
        hour_add(g, s->t_start, v);
        if (mxl_verdict_refused(v))
            g->refused++;
    }
    tally_add(g, &g->clients, s->ip, s->ntxn, s->mark);
    if (s->auth_failures) {
        g->auth_failures += s->auth_failures;
        tally_add(g, &g->auth_users, s->auth_fail_user[0] ? s->auth_fail_user : "?",
                  s->auth_failures, 0);
        tally_add(g, &g->auth_ips, s->ip, s->auth_failures, 0);
    }
    unsigned score = s->mark + s->auth_failures + (notable && mxl_verdict_refused(v));
    if (!score)
        return;
    bool own = !s->note[0] || (notable && mxl_verdict_refused(v));
    if (own)
        mxl_sess_verdict(s, words, sizeof(words));
    worst_add(g, s, score, own ? words : s->note);
}

/* mxl_agg_sink - see agg.h. */
struct mxl_sink mxl_agg_sink(struct mxl_agg *a)
{
    return (struct mxl_sink){agg_txn, agg_sess, a};
}

/* tally_merge - add every entry of from into t. */
static void tally_merge(struct mxl_agg *g, struct mxl_tally *t, const struct mxl_tally *from)
{
    for (size_t i = 0; i < from->cap; i++)
        if (from->v[i].key)
            tally_add(g, t, from->v[i].key, from->v[i].a, from->v[i].b);
}

/* hours_merge - add the hour buckets of from into g. */
static void hours_merge(struct mxl_agg *g, const struct mxl_agg *from)
{
    for (size_t i = 0; i < from->nhours; i++)
        for (int v = 0; v < MXL_V_COUNT; v++)
            for (uint32_t k = 0; k < from->hours[i].n[v]; k++)
                hour_add(g, from->hours[i].hour * 3600, (enum mxl_verdict)v);
}

/* worst_merge - the worst sessions of from into g's list. */
static void worst_merge(struct mxl_agg *g, const struct mxl_agg *from)
{
    for (size_t i = 0; i < from->nworst; i++) {
        const struct mxl_worst *w = &from->worst[i];
        size_t k = g->nworst;
        if (k == MXL_WORST && g->worst[MXL_WORST - 1].score >= w->score)
            continue;
        k = k < MXL_WORST ? g->nworst++ : MXL_WORST - 1;
        g->worst[k] = *w;
        while (k && g->worst[k - 1].score < g->worst[k].score) {
            struct mxl_worst tmp = g->worst[k - 1];
            g->worst[k - 1] = g->worst[k];
            g->worst[k] = tmp;
            k--;
        }
    }
}

/* mxl_agg_merge - see agg.h. */
void mxl_agg_merge(struct mxl_agg *g, const struct mxl_agg *from)
{
    g->sessions += from->sessions;
    g->txns += from->txns;
    g->accepted += from->accepted;
    g->refused += from->refused;
    g->bytes += from->bytes;
    g->rcpts_ok += from->rcpts_ok;
    g->rcpts_refused += from->rcpts_refused;
    g->auth_failures += from->auth_failures;
    for (int v = 0; v < MXL_V_COUNT; v++)
        g->by_verdict[v] += from->by_verdict[v];
    tally_merge(g, &g->clients, &from->clients);
    tally_merge(g, &g->sender_dom, &from->sender_dom);
    tally_merge(g, &g->rcpt_dom, &from->rcpt_dom);
    tally_merge(g, &g->refused_rcpts, &from->refused_rcpts);
    tally_merge(g, &g->auth_users, &from->auth_users);
    tally_merge(g, &g->auth_ips, &from->auth_ips);
    hours_merge(g, from);
    worst_merge(g, from);
    g->nomem |= from->nomem;
}

/* agg_fork - mxl_split.fork: a zeroed counter set for the second half. */
static bool agg_fork(void *arg, struct mxl_sink *out)
{
    const struct mxl_agg *g = arg;
    struct mxl_agg *h = calloc(1, sizeof(*h));
    if (!h)
        return false;
    h->o = g->o;
    *out = mxl_agg_sink(h);
    return true;
}

/* agg_join - mxl_split.join: add the second half's counts, free them. */
static void agg_join(void *arg, struct mxl_sink *forked)
{
    struct mxl_agg *h = forked->arg;
    mxl_agg_merge(arg, h);
    mxl_agg_free(h);
    free(h);
}

/* mxl_agg_split - see agg.h. */
struct mxl_split mxl_agg_split(struct mxl_agg *a, size_t min_bytes)
{
    return (struct mxl_split){agg_fork, agg_join, a, min_bytes};
}

/* tally_free - free keys and table. */
static void tally_free(struct mxl_tally *t)
{
    while (t->keys) {
        struct mxl_kblock *b = t->keys;
        t->keys = b->next;
        free(b);
    }
    free(t->v);
}

/* mxl_agg_free - see agg.h. */
void mxl_agg_free(struct mxl_agg *a)
{
    tally_free(&a->clients);
    tally_free(&a->sender_dom);
    tally_free(&a->rcpt_dom);
    tally_free(&a->refused_rcpts);
    tally_free(&a->auth_users);
    tally_free(&a->auth_ips);
    free(a->hours);
}
