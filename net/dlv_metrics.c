/* dlv_metrics.c - owns the delivery numbers behind dlv_metrics.h (the hop
 * table, the latency histogram, the last census) and their mutex, and the
 * census walk over the engine's messages. The delivery thread writes (one
 * uncontended lock per recipient outcome, one per census); the metrics
 * thread reads with dlv_metrics_read. */
#include "dlv_metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dlv_int.h"
#include "spool.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dlv_metrics g_m; /* under g_lock */
static struct qhist g_qdelay;  /* under g_lock; apart from g_m: scrapes do not copy it */

/* hop_slot - the row of hop, made on first use; past DLV_METRICS_HOPS
 * rows the last one, "other". */
static struct dlv_hop_count *hop_slot(const char *hop)
{
    for (unsigned i = 0; i < g_m.nhops; i++)
        if (strcmp(g_m.hops[i].hop, hop) == 0)
            return &g_m.hops[i];
    struct dlv_hop_count *h =
        &g_m.hops[g_m.nhops < DLV_METRICS_HOPS ? g_m.nhops : DLV_METRICS_HOPS];
    if (g_m.nhops >= DLV_METRICS_HOPS)
        hop = "other";
    if (g_m.nhops <= DLV_METRICS_HOPS)
        g_m.nhops++;
    snprintf(h->hop, sizeof(h->hop), "%s", hop);
    return h;
}

/* now_us - CLOCK_REALTIME in microseconds (queue ids carry real time). */
static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t dlv_metrics_outcome(const char *hop, enum dlv_outcome o, const char *id)
{
    int64_t made = o == DLV_OUT_DEFERRED ? -1 : spool_id_time_us(id);
    int64_t lat = made < 0 ? -1 : now_us() - made;
    if (made >= 0 && lat < 0)
        lat = 0; /* the clock stepped back */
    pthread_mutex_lock(&g_lock);
    hop_slot(hop && *hop ? hop : "-")->n[o]++;
    if (lat >= 0)
        mhist_observe(&g_m.latency, (uint64_t)lat);
    if (lat >= 0 && o == DLV_OUT_SENT) {
        mhist_observe(&g_m.qdelay, (uint64_t)lat);
        qhist_observe(&g_qdelay, (uint64_t)lat);
    }
    pthread_mutex_unlock(&g_lock);
    return lat;
}

void dlv_metrics_qdelay(struct qhist *out)
{
    pthread_mutex_lock(&g_lock);
    *out = g_qdelay;
    pthread_mutex_unlock(&g_lock);
}

void dlv_metrics_census(const struct dlv_census *c, bool running)
{
    pthread_mutex_lock(&g_lock);
    g_m.census = *c;
    g_m.running = running;
    pthread_mutex_unlock(&g_lock);
}

void dlv_metrics_read(struct dlv_metrics *out)
{
    pthread_mutex_lock(&g_lock);
    *out = g_m;
    pthread_mutex_unlock(&g_lock);
}

/* msg_state - which census count m belongs to. */
static uint64_t *msg_state(struct dlv_census *c, const struct dlv_msg *m)
{
    if (m->st.held)
        return &c->held;
    if (m->jobs)
        return &c->active;
    for (size_t i = 0; i < m->st.nrcpt; i++)
        if (m->st.rcpts[i].state == QST_PENDING && m->st.rcpts[i].attempts)
            return &c->deferred;
    return &c->active;
}

void dlv_census_publish(struct dlv *d)
{
    struct dlv_census c = {0};
    for (size_t b = 0; b < d->hcap; b++)
        for (const struct dlv_msg *m = d->hash[b]; m; m = m->hnext) {
            if (m->deleted)
                continue;
            (*msg_state(&c, m))++;
            int64_t t = spool_id_time_us(m->id);
            if (t > 0 && (c.oldest_us == 0 || t < c.oldest_us))
                c.oldest_us = t;
        }
    dlv_metrics_census(&c, true);
}
