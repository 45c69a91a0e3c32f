/* agg.h - the counts behind `mxlog stats` and `mxlog report`: totals,
 * string tallies (reasons, clients, domains, refused recipients, AUTH
 * failures), messages per hour by verdict, the worst sessions. It is an
 * mxl_sink; main thread. */
#ifndef MXLOG_AGG_H
#define MXLOG_AGG_H

#include "sess.h"
#include "verdict.h"
#include "walk.h"

#include <stdint.h>

/* One tally entry: a key and two counters (accepted/refused or n/bytes). */
struct mxl_tent {
    char *key;
    uint64_t hash;
    uint64_t a, b;
};

struct mxl_kblock; /* a block of keys (agg.c) */

struct mxl_tally {
    struct mxl_tent *v; /* open addressing; key NULL = empty */
    size_t n, cap;
    struct mxl_kblock *keys; /* the keys, packed; freed with the tally */
    size_t keys_left;        /* free bytes in the newest block */
};

/* One hour: messages by verdict. */
struct mxl_hour {
    int64_t hour; /* civil seconds / 3600 */
    uint32_t n[MXL_V_COUNT];
};

#define MXL_WORST 20

struct mxl_worst {
    uint32_t sid;
    int64_t t;
    unsigned score;
    char host[MXL_NAME_MAX], ip[MXL_IP_MAX], words[512];
};

struct mxl_agg {
    const struct mxl_opts *o;
    uint64_t sessions, txns, accepted, refused, bytes, rcpts_ok, rcpts_refused, auth_failures;
    uint64_t by_verdict[MXL_V_COUNT];
    struct mxl_tally clients, sender_dom, rcpt_dom, refused_rcpts, auth_users, auth_ips;
    struct mxl_hour *hours;
    size_t nhours;
    struct mxl_worst worst[MXL_WORST];
    size_t nworst;
    bool nomem;
};

/* mxl_agg_sink - a sink that counts into a (zeroed by the caller). */
struct mxl_sink mxl_agg_sink(struct mxl_agg *a);
void mxl_agg_free(struct mxl_agg *a);
/* mxl_agg_merge - add the counts of from into g (the worst list keeps the
 * highest scores of both). */
void mxl_agg_merge(struct mxl_agg *g, const struct mxl_agg *from);
/* mxl_agg_split - two-thread walking for a (files of min_bytes or more):
 * the second half counts into a fresh mxl_agg merged into a. */
struct mxl_split mxl_agg_split(struct mxl_agg *a, size_t min_bytes);
/* mxl_tally_sorted - the top entries by a+b descending, then key (the n
 * first, 0 = all; min(n, t->n) of them): a malloc'd array of pointers into
 * t; NULL when empty or out of memory. */
struct mxl_tent **mxl_tally_sorted(const struct mxl_tally *t, size_t n);

#endif
