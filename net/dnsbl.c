/* dnsbl.c - connect-time DNSBL/DNSWL checks of one worker (dnsbl.h): a
 * check builds one query name per site (core/dnsbl_site.c), answers what
 * the cache holds, sends the rest as one dnsq batch, fills the cache and
 * scores. The cache is a direct-mapped table of query names (so a changed
 * dnsbl_sites never sees stale sites' results) with an expiry each; a
 * colliding name simply replaces the older entry. Failures are not
 * cached. Worker thread only; nothing here blocks. */
#include "dnsbl.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "config.h"
#include "dnsbl_site.h"
#include "dnsq.h"
#include "filter.h"
#include "util.h"

_Static_assert((DNSBL_CACHE_SLOTS & (DNSBL_CACHE_SLOTS - 1)) == 0, "slots: power of two");

#define MS_PER_S 1000u

struct dnsbl_slot {
    uint64_t expires_ms; /* 0 = empty */
    bool listed_any;     /* an A record came back (addr) */
    uint8_t addr[4];
    char name[DNSBL_NAME_MAX + 1];
};

struct dnsbl_engine {
    struct dnsq_engine *dq;
    unsigned checks;
    struct dnsbl_slot slot[DNSBL_CACHE_SLOTS];
};

struct dnsbl_job {
    struct dnsbl_engine *de;
    const struct config *cfg;
    dnsbl_log_fn log;
    dnsbl_done_fn done;
    void *arg;
    unsigned n;           /* sites */
    unsigned *site;       /* item i of the batch is site[i] */
    bool *cached;         /* per site: answered by the cache */
    struct dnsq_item *it; /* per site (items of the batch: it[0..nq)) */
    unsigned nq;
};

/* now_ms - monotonic milliseconds. */
static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * MS_PER_S + (uint64_t)t.tv_nsec / 1000000u;
}

/* name_hash - FNV-1a of a query name. */
static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* cache_get - the live entry of name, or NULL. */
static const struct dnsbl_slot *cache_get(struct dnsbl_engine *de, const char *name, uint64_t now)
{
    const struct dnsbl_slot *sl = &de->slot[name_hash(name) & (DNSBL_CACHE_SLOTS - 1)];
    if (sl->expires_ms > now && strcmp(sl->name, name) == 0)
        return sl;
    return NULL;
}

/* cache_put - remember the outcome of item it (answers and NXDOMAIN). */
static void cache_put(struct dnsbl_engine *de, const struct dnsq_item *it, uint64_t now)
{
    if (it->state != DNSQ_ANSWER && it->state != DNSQ_NONE)
        return;
    struct dnsbl_slot *sl = &de->slot[name_hash(it->name) & (DNSBL_CACHE_SLOTS - 1)];
    uint32_t ttl = it->state == DNSQ_ANSWER ? it->ttl : DNSBL_TTL_MIN_S;
    ttl = ttl < DNSBL_TTL_MIN_S ? DNSBL_TTL_MIN_S : ttl > DNSBL_TTL_MAX_S ? DNSBL_TTL_MAX_S : ttl;
    sl->expires_ms = now + (uint64_t)ttl * MS_PER_S;
    sl->listed_any = it->state == DNSQ_ANSWER;
    memcpy(sl->addr, it->addr, sizeof sl->addr);
    snprintf(sl->name, sizeof sl->name, "%s", it->name);
}

/* dnsbl_wanted - see dnsbl.h. */
bool dnsbl_wanted(const struct config *cfg)
{
    return cfg && cfg->ndnsbl_sites > 0;
}

/* dnsbl_engine_new - see dnsbl.h. */
struct dnsbl_engine *dnsbl_engine_new(struct io_uring *ring, unsigned worker, struct dnsq_stats *st)
{
    struct dnsbl_engine *de = calloc(1, sizeof *de);
    if (!de)
        return NULL;
    if (!(de->dq = dnsq_engine_new(ring, worker, st))) {
        free(de);
        return NULL;
    }
    return de;
}

/* dnsbl_engine_free - see dnsbl.h. */
void dnsbl_engine_free(struct dnsbl_engine *de)
{
    if (!de)
        return;
    if (de->checks)
        die("dnsbl_engine_free: %u DNSBL checks still running", de->checks);
    dnsq_engine_free(de->dq);
    free(de);
}

/* job_site_line - the log line of site k (answered in r); its weight when
 * it lists the client, else 0. */
static int job_site_line(struct dnsbl_job *j, unsigned k, const struct dnsq_item *r)
{
    const struct dnsbl_site *site = &j->cfg->dnsbl_sites[k];
    const char *how = j->cached[k] ? " (cached)" : "";
    if (r->state == DNSQ_FAILED || r->state == DNSQ_SKIPPED) {
        filter_logf(j->log, j->arg, "DNSBL %s: lookup of %s failed (%s): not listed", site->zone,
                    r->name, r->state == DNSQ_SKIPPED ? "name too long" : r->why);
        return 0;
    }
    if (r->state != DNSQ_ANSWER || !dnsbl_site_match(site, r->addr))
        return 0;
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, r->addr, ip, sizeof ip);
    filter_logf(j->log, j->arg, "DNSBL %s: %s listed (%s), weight %d%s", site->zone, r->name, ip,
                site->weight, how);
    return site->weight;
}

/* job_finish - log and score every site, report, release the job. */
static void job_finish(void *arg)
{
    struct dnsbl_job *j = arg;
    const struct config *cfg = j->cfg;
    uint64_t now = now_ms();
    struct dnsbl_verdict v = {0};
    int heaviest = 0;
    for (unsigned i = 0; i < j->nq; i++)
        cache_put(j->de, &j->it[i], now);
    for (unsigned k = 0; k < j->n; k++) {
        const struct dnsq_item *r = NULL;
        for (unsigned i = 0; i < j->n && !r; i++)
            if (j->site[i] == k)
                r = &j->it[i];
        int w = job_site_line(j, k, r);
        v.score += w;
        if (w > heaviest)
            heaviest = w, v.site = cfg->dnsbl_sites[k].zone;
    }
    v.blocked = v.score >= (int)cfg->dnsbl_threshold;
    filter_logf(j->log, j->arg, "DNSBL verdict: score %d (threshold %u): %s%s", v.score,
                cfg->dnsbl_threshold, v.blocked ? "blocked using " : "pass",
                v.blocked && v.site ? v.site : "");
    if (!v.blocked)
        v.site = NULL;
    dnsbl_done_fn done = j->done;
    void *darg = j->arg;
    j->de->checks--;
    free(j->site);
    free(j->cached);
    free(j->it);
    free(j);
    done(darg, &v);
}

/* job_items - one item per site: cached ones at the end (it[nq..n)),
 * those to look up at the front (it[0..nq)). */
static void job_items(struct dnsbl_job *j, const struct mx_addr *peer)
{
    uint64_t now = now_ms();
    unsigned back = j->n;
    for (unsigned k = 0; k < j->n; k++) {
        char name[DNSMSG_NAME_MAX + 1];
        bool ok = dnsbl_site_qname(peer, j->cfg->dnsbl_sites[k].zone, name, sizeof name);
        const struct dnsbl_slot *sl = ok ? cache_get(j->de, name, now) : NULL;
        unsigned i = sl ? --back : j->nq++;
        struct dnsq_item *it = &j->it[i];
        j->site[i] = k;
        snprintf(it->name, sizeof it->name, "%s", ok ? name : "");
        it->state = ok ? DNSQ_WAIT : DNSQ_SKIPPED;
        if (sl) {
            j->cached[k] = true;
            it->state = sl->listed_any ? DNSQ_ANSWER : DNSQ_NONE;
            memcpy(it->addr, sl->addr, sizeof sl->addr); /* the first A record */
        }
    }
}

/* dnsbl_check - see dnsbl.h. */
void dnsbl_check(struct dnsbl_engine *de, const struct config *cfg, const struct mx_addr *peer,
                 dnsbl_log_fn log, dnsbl_done_fn done, void *arg)
{
    struct dnsbl_job *j = calloc(1, sizeof *j);
    unsigned n = (unsigned)cfg->ndnsbl_sites;
    if (j) {
        j->site = calloc(n + 1, sizeof *j->site);
        j->cached = calloc(n + 1, sizeof *j->cached);
        j->it = calloc(n + 1, sizeof *j->it);
    }
    if (!j || !j->site || !j->cached || !j->it) {
        if (j) {
            free(j->site);
            free(j->cached);
            free(j->it);
        }
        free(j);
        filter_logf(log, arg, "DNSBL verdict: not checked (out of memory): pass");
        const struct dnsbl_verdict v = {0};
        done(arg, &v);
        return;
    }
    *j = (struct dnsbl_job){.de = de,
                            .cfg = cfg,
                            .log = log,
                            .done = done,
                            .arg = arg,
                            .n = n,
                            .site = j->site,
                            .cached = j->cached,
                            .it = j->it};
    de->checks++;
    job_items(j, peer);
    if (j->nq == 0) {
        job_finish(j);
        return;
    }
    dnsq_lookup(de->dq, cfg->dns_servers, cfg->ndns_servers, cfg->dnsbl_timeout_ms, j->it, j->nq,
                job_finish, j);
}
