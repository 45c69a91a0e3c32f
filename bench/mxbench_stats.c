/* mxbench_stats.c - the counters of mxbench (see mxbench_stats.h): names
 * of error and session kinds, merging, the refusal table. Pure; each
 * thread counts into its own, merging happens on one thread at a time. */
#include "mxbench_stats.h"

#include <string.h>

#define CLASS_TEMP 4 /* 4xx: transient refusal */
#define CLASS_PERM 5 /* 5xx: permanent refusal */

const char *const mxb_err_names[MXB_E_COUNT] = {
    [MXB_E_CONNECT] = "connect",   [MXB_E_REFUSED] = "connect_refused",
    [MXB_E_TIMEOUT] = "timeout",   [MXB_E_RESET] = "reset",
    [MXB_E_EOF] = "eof",           [MXB_E_TLS] = "tls",
    [MXB_E_PROTOCOL] = "protocol", [MXB_E_BANNER] = "banner",
    [MXB_E_EHLO] = "ehlo",         [MXB_E_MAIL] = "mail",
    [MXB_E_RCPT] = "rcpt",         [MXB_E_DATA] = "data",
    [MXB_E_BODY] = "body",         [MXB_E_QUIT] = "quit",
    [MXB_E_STARTTLS] = "starttls", [MXB_E_AUTH] = "auth",
};

const char *const mxb_kind_names[MXB_K_COUNT] = {
    [MXB_K_PLAIN] = "plain",
    [MXB_K_STARTTLS] = "starttls",
    [MXB_K_AUTH] = "auth",
    [MXB_K_TLS_AUTH] = "starttls-auth",
};

/* Every field of struct mxb_counts is a uint64_t: it adds up as an array. */
#define COUNTS_N (sizeof(struct mxb_counts) / sizeof(uint64_t))
_Static_assert(sizeof(struct mxb_counts) == COUNTS_N * sizeof(uint64_t),
               "struct mxb_counts holds only uint64_t fields");

/* mxb_counts_add - dst += src. */
void mxb_counts_add(struct mxb_counts *dst, const struct mxb_counts *src)
{
    uint64_t *d = (uint64_t *)dst;
    const uint64_t *s = (const uint64_t *)src;
    for (size_t i = 0; i < COUNTS_N; i++)
        d[i] += s[i];
}

/* mxb_counts_sub - out = a - b. */
void mxb_counts_sub(struct mxb_counts *out, const struct mxb_counts *a, const struct mxb_counts *b)
{
    uint64_t *o = (uint64_t *)out;
    const uint64_t *x = (const uint64_t *)a, *y = (const uint64_t *)b;
    for (size_t i = 0; i < COUNTS_N; i++)
        o[i] = x[i] - y[i];
}

/* mxb_counts_errors - the sum of every error kind. */
uint64_t mxb_counts_errors(const struct mxb_counts *c)
{
    uint64_t n = 0;
    for (int e = 0; e < MXB_E_COUNT; e++)
        n += c->errors[e];
    return n;
}

/* mxb_stats_init - empty statistics. */
void mxb_stats_init(struct mxb_stats *s)
{
    memset(s, 0, sizeof *s);
    mxb_hist_init(&s->lat_ns);
    mxb_hist_init(&s->hs_ns);
}

/* refusal_add - count n of (code, enh) into the table. */
static void refusal_add(struct mxb_stats *s, unsigned code, unsigned enh, uint64_t n)
{
    for (unsigned i = 0; i < s->nrefusals; i++) {
        if (s->refusals[i].code == code && s->refusals[i].enh == enh) {
            s->refusals[i].count += n;
            return;
        }
    }
    if (s->nrefusals == MXB_REFUSALS_MAX) {
        s->refusals_other += n;
        return;
    }
    s->refusals[s->nrefusals++] = (struct mxb_refusal){code, enh, n};
}

/* mxb_refusal_count - one refusal, see mxbench_stats.h. */
void mxb_refusal_count(struct mxb_stats *s, unsigned code, unsigned enh)
{
    if (code / 100 == CLASS_TEMP)
        s->c.refused4++;
    else if (code / 100 == CLASS_PERM)
        s->c.refused5++;
    refusal_add(s, code, enh, 1);
}

/* mxb_stats_merge - add src into dst. */
void mxb_stats_merge(struct mxb_stats *dst, const struct mxb_stats *src)
{
    mxb_counts_add(&dst->c, &src->c);
    mxb_hist_merge(&dst->lat_ns, &src->lat_ns);
    dst->handshakes += src->handshakes;
    mxb_hist_merge(&dst->hs_ns, &src->hs_ns);
    for (int k = 0; k < MXB_K_COUNT; k++) {
        dst->kind_conns[k] += src->kind_conns[k];
        dst->kind_msgs[k] += src->kind_msgs[k];
    }
    if (src->max_lag_ns > dst->max_lag_ns)
        dst->max_lag_ns = src->max_lag_ns;
    for (unsigned i = 0; i < src->nrefusals; i++)
        refusal_add(dst, src->refusals[i].code, src->refusals[i].enh, src->refusals[i].count);
    dst->refusals_other += src->refusals_other;
    if (!dst->tls_desc[0])
        memcpy(dst->tls_desc, src->tls_desc, sizeof dst->tls_desc);
    if (!dst->tls_err)
        dst->tls_err = src->tls_err;
}
