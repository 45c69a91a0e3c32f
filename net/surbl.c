/* surbl.c - SURBL/URIBL lookups of one worker: a check per message
 * collects the registered domains of the message's URI hosts and looks up
 * one A record per domain and zone through the worker's DNS engine
 * (dnsq.c: UDP over the io_uring ring, all in parallel, one timeout of
 * dns_timeout_ms with the retry on a second server), then decides on the
 * answers. Every function runs on the engine's worker thread; nothing
 * here blocks.
 *
 * Lookups are numbered 1..n in query order (domain by domain in
 * first-seen order, and for each domain the zones in configuration order);
 * that number is the N of "Query_FILTER_RBL(<name> <ip>,N)". The first
 * SURBL_SCAN_MAX octets of a message are read into one buffer and searched
 * for URIs; the buffer is freed before the queries go out. */
#include "surbl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dnsq.h"
#include "regdom.h"
#include "uri.h"
#include "util.h"

#define SURBL_HOSTS_MIN 16u  /* hosts extracted: 2 x surbl_max_lookups, */
#define SURBL_HOSTS_MAX 256u /* within these bounds (see uri_extract) */
#define SURBL_DETAIL_MAX 600u
#define SURBL_WHY_MAX 96u /* why a message was not checked */

struct surbl_engine {
    struct dnsq_engine *dq;
    unsigned checks; /* running */
};

struct surbl {
    struct surbl_engine *se;
    const struct config *cfg;
    filter_log_fn log;
    filter_done_fn done;
    void *arg;
    char (*dom)[REGDOM_MAX + 1];
    unsigned ndom;
    bool capped;         /* more domains than surbl_max_lookups */
    struct dnsq_item *q; /* domain d, zone z: q[d * nzones + z] */
    unsigned nq;
    char broken[SURBL_WHY_MAX]; /* not checked: why ("" = it was) */
};

static void surbl_finish(void *arg);

/* ---- engine -------------------------------------------------------------- */

/* surbl_engine_new - see surbl.h. */
struct surbl_engine *surbl_engine_new(struct io_uring *ring, unsigned worker,
                                      struct filter_stats *st)
{
    struct surbl_engine *se = calloc(1, sizeof(*se));
    if (!se)
        return NULL;
    if (!(se->dq = dnsq_engine_new(ring, worker, st ? &st->dns : NULL))) {
        free(se);
        return NULL;
    }
    return se;
}

/* surbl_engine_free - see surbl.h; the worker frees it after its ring is
 * gone (no check runs then, so nothing of the engine is in flight). */
void surbl_engine_free(struct surbl_engine *se)
{
    if (!se)
        return;
    if (se->checks)
        die("surbl_engine_free: %u SURBL checks still running", se->checks);
    dnsq_engine_free(se->dq);
    free(se);
}

/* q_listed - does the answer of q list the domain (127.0.0.0/8 except
 * 127.0.0.1, the "query refused" answer of the public mirrors)? */
static bool q_listed(const struct dnsq_item *q)
{
    return q->state == DNSQ_ANSWER && q->addr[0] == 127 &&
           !(q->addr[1] == 0 && q->addr[2] == 0 && q->addr[3] == 1);
}

/* ---- SURBL: start and decision ------------------------------------------- */

/* surbl_add_domain - keep d unless known; false when the cap is hit. */
static bool surbl_add_domain(struct surbl *sj, const char *d, unsigned cap)
{
    for (unsigned i = 0; i < sj->ndom; i++)
        if (strcmp(sj->dom[i], d) == 0)
            return true;
    if (sj->ndom == cap) {
        sj->capped = true;
        return false;
    }
    snprintf(sj->dom[sj->ndom++], sizeof sj->dom[0], "%s", d);
    return true;
}

/* surbl_read_prefix - the first SURBL_SCAN_MAX octets of the message into
 * a new buffer of *n octets; NULL with sj->broken set when that fails. */
static char *surbl_read_prefix(struct surbl *sj, const struct filter_src *src, size_t *n)
{
    *n = src->len < SURBL_SCAN_MAX ? src->len : SURBL_SCAN_MAX;
    char *buf = malloc(*n ? *n : 1);
    if (!buf) {
        snprintf(sj->broken, sizeof sj->broken, "out of memory");
        return NULL;
    }
    long r = filter_src_fill(src, 0, buf, *n);
    if (r < 0) {
        snprintf(sj->broken, sizeof sj->broken, "message read failed: %s", strerror((int)-r));
        free(buf);
        return NULL;
    }
    return buf;
}

/* surbl_collect - the message's URI hosts reduced to distinct registered
 * domains (or reversed IPv4 addresses), at most surbl_max_lookups. */
static bool surbl_collect(struct surbl *sj, const struct filter_src *src)
{
    unsigned cap = sj->cfg->surbl_max_lookups;
    size_t hmax = 2u * (size_t)cap, scan;
    if (hmax < SURBL_HOSTS_MIN)
        hmax = SURBL_HOSTS_MIN;
    if (hmax > SURBL_HOSTS_MAX)
        hmax = SURBL_HOSTS_MAX;
    char *text = surbl_read_prefix(sj, src, &scan);
    if (!text)
        return false;
    struct uri_host *hosts = malloc(hmax * sizeof *hosts);
    sj->dom = malloc((size_t)cap * sizeof *sj->dom);
    if (!hosts || !sj->dom) {
        free(hosts);
        free(text);
        snprintf(sj->broken, sizeof sj->broken, "out of memory");
        return false;
    }
    unsigned flags = 0;
    size_t n = uri_extract(text, scan, hosts, hmax, &flags);
    free(text);
    for (size_t i = 0; i < n; i++) {
        char d[REGDOM_MAX + 1];
        if (regdom_reduce(hosts[i].name, d, sizeof d) != REGDOM_NONE &&
            !surbl_add_domain(sj, d, cap))
            break;
    }
    free(hosts);
    if (flags & URI_F_TRUNCATED)
        sj->capped = true;
    if (scan < src->len)
        filter_logf(sj->log, sj->arg, "SURBL: only the first %zu of %zu octets searched for URIs",
                    scan, src->len);
    if (sj->capped)
        filter_logf(sj->log, sj->arg,
                    "SURBL: more URI domains than surbl_max_lookups (%u): the rest not looked up",
                    cap);
    return true;
}

/* surbl_queries - one name per domain and zone, numbered in that order;
 * a name too long for DNS is not looked up. */
static bool surbl_queries(struct surbl *sj)
{
    size_t nz = sj->cfg->nsurbl_zones;
    sj->q = calloc((size_t)sj->ndom * nz + 1, sizeof *sj->q);
    if (!sj->q) {
        snprintf(sj->broken, sizeof sj->broken, "out of memory");
        return false;
    }
    for (unsigned d = 0; d < sj->ndom; d++)
        for (unsigned z = 0; z < nz; z++) {
            struct dnsq_item *q = &sj->q[sj->nq++];
            int n = snprintf(q->name, sizeof q->name, "%s.%s", sj->dom[d],
                             sj->cfg->surbl_zones[z].zone);
            if (n < 0 || (size_t)n >= sizeof q->name)
                q->state = DNSQ_SKIPPED; /* the name was cut: not looked up */
        }
    return true;
}

/* surbl_check - see surbl.h: collect, query all in parallel. */
void surbl_check(struct surbl_engine *se, const struct config *cfg, const struct filter_src *src,
                 filter_log_fn log, filter_done_fn done, void *arg)
{
    struct surbl *sj = calloc(1, sizeof *sj);
    if (!sj) {
        bool tempfail = cfg->dns_failure == CFG_DNS_TEMPFAIL;
        filter_logf(log, arg, "SURBL verdict: not checked (out of memory): %s",
                    tempfail ? "tempfail" : "pass");
        done(arg, tempfail ? SESS_VERDICT_TEMPFAIL : SESS_VERDICT_PASS,
             tempfail ? "surbl: out of memory" : "");
        return;
    }
    se->checks++;
    sj->se = se;
    sj->cfg = cfg;
    sj->log = log;
    sj->done = done;
    sj->arg = arg;
    if (!surbl_collect(sj, src) || !surbl_queries(sj)) {
        sj->nq = 0;
        surbl_finish(sj);
        return;
    }
    dnsq_lookup(se->dq, cfg->dns_servers, cfg->ndns_servers, cfg->dns_timeout_ms, sj->q, sj->nq,
                surbl_finish, sj);
}

/* surbl_log_query - the receivelog line of lookup number n. */
static void surbl_log_query(struct surbl *sj, const struct dnsq_item *q, unsigned n)
{
    char ip[INET_ADDRSTRLEN] = "";
    if (q->state == DNSQ_ANSWER)
        inet_ntop(AF_INET, q->addr, ip, sizeof ip);
    switch (q->state) {
    case DNSQ_ANSWER:
    case DNSQ_NONE:
        filter_logf(sj->log, sj->arg, "Query_FILTER_RBL(%s %s,%u)=%s list", q->name, ip, n,
                    q_listed(q) ? "found" : "not found");
        break;
    case DNSQ_SKIPPED:
        filter_logf(sj->log, sj->arg, "Query_FILTER_RBL(%s ,%u)=not looked up (name too long)",
                    q->name, n);
        break;
    default:
        filter_logf(sj->log, sj->arg, "Query_FILTER_RBL(%s ,%u)=lookup failed (%s)", q->name, n,
                    q->why ? q->why : "error");
        break;
    }
}

/* surbl_best - log every lookup; the index of the listed one whose zone
 * acts strongest (-1: none), the count of failed lookups and the first
 * one's reason. */
static long surbl_best(struct surbl *sj, unsigned *failed, const char **why)
{
    const struct cfg_zone *zones = sj->cfg->surbl_zones;
    size_t nz = sj->cfg->nsurbl_zones;
    long best = -1;
    *failed = 0;
    *why = NULL;
    for (unsigned i = 0; i < sj->nq; i++) {
        const struct dnsq_item *q = &sj->q[i];
        surbl_log_query(sj, q, i + 1);
        if (q_listed(q) && (best < 0 || zones[i % nz].action > zones[(size_t)best % nz].action))
            best = i;
        if (q->state == DNSQ_FAILED && (*failed)++ == 0)
            *why = q->why;
    }
    if (sj->broken[0]) {
        *failed = 1;
        *why = sj->broken;
    }
    return best;
}

/* surbl_decide - log every lookup, then one verdict line; the verdict (its
 * detail into detail[0..n)). */
static enum sess_verdict surbl_decide(struct surbl *sj, char *detail, size_t n)
{
    const struct config *cfg = sj->cfg;
    size_t nz = cfg->nsurbl_zones;
    unsigned failed;
    const char *why;
    long best = surbl_best(sj, &failed, &why);
    const struct cfg_zone *z = best >= 0 ? &cfg->surbl_zones[(size_t)best % nz] : NULL;
    const char *dom = best >= 0 ? sj->dom[(size_t)best / nz] : NULL;
    char head[SURBL_DETAIL_MAX];
    enum sess_verdict v = SESS_VERDICT_PASS;
    detail[0] = 0;
    if (z) {
        snprintf(head, sizeof head, "%s listed in %s", dom, z->zone);
        snprintf(detail, n, "surbl %s %s", dom, z->zone);
        v = z->action == CFG_ZONE_REJECT       ? SESS_VERDICT_REJECT_SPAM
            : z->action == CFG_ZONE_QUARANTINE ? SESS_VERDICT_QUARANTINE
                                               : SESS_VERDICT_PASS;
    } else if (sj->ndom) {
        snprintf(head, sizeof head, "not listed (%u domain%s)", sj->ndom, sj->ndom == 1 ? "" : "s");
    } else {
        snprintf(head, sizeof head, "%s", sj->broken[0] ? "not checked" : "no URI domains");
    }
    /* a failure outranks quarantine (the failed lookup might have rejected) */
    if (failed && cfg->dns_failure == CFG_DNS_TEMPFAIL && v != SESS_VERDICT_REJECT_SPAM) {
        v = SESS_VERDICT_TEMPFAIL;
        snprintf(detail, n, "surbl lookup failed (%s)", why);
    }
    const char *word = v == SESS_VERDICT_TEMPFAIL ? "tempfail"
                       : z                        ? cfg_zone_action_name(z->action)
                                                  : "pass";
    if (failed)
        filter_logf(sj->log, sj->arg, "SURBL verdict: %s, %u of %u lookups failed (%s): %s", head,
                    failed, sj->nq, why, word);
    else
        filter_logf(sj->log, sj->arg, "SURBL verdict: %s: %s", head, word);
    return v;
}

/* surbl_finish - the lookups are over (dnsq_done_fn, or directly when
 * nothing was looked up): decide, release the check, then report. */
static void surbl_finish(void *arg)
{
    struct surbl *sj = arg;
    char detail[SURBL_DETAIL_MAX];
    enum sess_verdict v = surbl_decide(sj, detail, sizeof detail);
    filter_done_fn done = sj->done;
    void *darg = sj->arg;
    sj->se->checks--;
    free(sj->dom);
    free(sj->q);
    free(sj);
    done(darg, v, detail);
}
