/* dlv_outcome.c - what happens to recipients: a due message is split into
 * one job per route (recipients grouped by next hop), each result is
 * applied (2xx sent, 4xx / connection failure deferred with exponential
 * backoff until queue_lifetime, 5xx or lifetime exceeded bounced), every
 * outcome goes to the delivery log, a finished message gets its RFC 3464
 * bounce queued (net/dlv_dsn.c) and is removed; plus the mxringctl state
 * changes (hold, release, retry, delete). Delivery thread only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dlv_int.h"
#include "dsn.h"
#include "snap.h"
#include "dlv_metrics.h"
#include "smtp_parse.h"

/* ---- jobs --------------------------------------------------------------- */

/* job_new - an empty job of m for route rt (room for m's recipients). */
static struct dlv_job *job_new(struct dlv *d, struct dlv_msg *m, const struct route *rt)
{
    struct dlv_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->idx = calloc(m->env.nrcpt, sizeof(*j->idx))) ||
        !(j->addrs = calloc(m->env.nrcpt, sizeof(*j->addrs)))) {
        if (j)
            free(j->idx);
        free(j);
        return NULL;
    }
    j->m = m;
    j->rt = rt;
    j->snap = d->snap;
    snap_ref(d->snap);
    j->aid = d->next_aid++;
    if (!d->next_aid)
        d->next_aid = 1;
    return j;
}

/* dlv_job_free - release a job (its message is not touched). */
void dlv_job_free(struct dlv_job *j)
{
    if (!j)
        return;
    snap_unref(j->snap);
    free(j->idx);
    free(j->addrs);
    free(j->why);
    free(j);
}

/* fmt_time - local time as the log's dd/Mon/yyyy:HH:MM:SS. */
static void fmt_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(buf, len, "%d/%b/%Y:%H:%M:%S", &tm);
}

/* backoff - delay before attempt n+1: relay_retry_min doubling, capped. */
static int64_t backoff(const struct config *c, unsigned attempts)
{
    int64_t delay = c->relay_retry_min;
    for (unsigned i = 1; i < attempts && delay < (int64_t)c->relay_retry_max; i++)
        delay *= 2;
    return delay < (int64_t)c->relay_retry_max ? delay : (int64_t)c->relay_retry_max;
}

/* outcome - apply one recipient's result (code 0 = a local temporary
 * failure) and log it. */
static void outcome(struct dlv *d, struct dlv_job *j, size_t k, unsigned code, const char *reply,
                    const char *hop)
{
    struct dlv_msg *m = j->m;
    struct qstate_rcpt *r = &m->st.rcpts[j->idx[k]];
    const struct config *c = dlv_cfg(d);
    r->attempts++;
    qstate_set_last(r, reply, strlen(reply));
    int64_t expire = m->env.arrival + (int64_t)c->queue_lifetime;
    if (code >= 200 && code < 300) {
        r->state = QST_SENT;
        dlv_stat_add(DLV_ST_SENT, 1);
        int64_t us = dlv_metrics_outcome(hop, DLV_OUT_SENT, m->id);
        dlv_logf(d, j->aid,
                 "queue id %s: to=<%s> hop=%s reply=\"%s\" outcome=sent delay=%lld.%03lld", m->id,
                 r->addr, hop, reply, (long long)(us < 0 ? 0 : us / 1000000),
                 (long long)(us < 0 ? 0 : us / 1000 % 1000));
        return;
    }
    if (code >= 500 || d->now >= expire) {
        r->state = QST_BOUNCED;
        dlv_stat_add(DLV_ST_BOUNCED, 1);
        dlv_metrics_outcome(hop, DLV_OUT_BOUNCED, m->id);
        dlv_logf(d, j->aid, "queue id %s: to=<%s> hop=%s reply=\"%s\" outcome=bounced%s", m->id,
                 r->addr, hop, reply, code >= 500 ? "" : " (queue_lifetime exceeded)");
        return;
    }
    int64_t next = d->now + backoff(c, r->attempts);
    r->next = next < expire ? next : expire;
    char when[32];
    fmt_time(r->next, when, sizeof(when));
    dlv_stat_add(DLV_ST_DEFERRED, 1);
    dlv_metrics_outcome(hop, DLV_OUT_DEFERRED, m->id);
    dlv_logf(d, j->aid, "queue id %s: to=<%s> hop=%s reply=\"%s\" outcome=deferred until %s", m->id,
             r->addr, hop, reply, when);
}

/* job_end - the job is over: release its recipients, record the state,
 * finish or reschedule the message. */
static void job_end(struct dlv *d, struct dlv_job *j)
{
    struct dlv_msg *m = j->m;
    for (size_t k = 0; k < j->n; k++)
        m->busy[j->idx[k]] = false;
    m->jobs--;
    dlv_job_free(j);
    if (m->jobs)
        return;
    if (m->deleted || qstate_done(&m->st)) {
        dlv_msg_unmap(m);
        dlv_msg_complete(d, m);
        return;
    }
    dlv_delay_warn(d, m);
    dlv_msg_unmap(m);
    dlv_msg_write_state(d, m);
    dlv_msg_schedule(d, m, 0);
}

/* result_text - "code enh text" of a result into buf. */
static const char *result_text(const struct smtpc_result *res, char *buf, size_t len)
{
    snprintf(buf, len, "%u%s%s %s", res->code, res->enh[0] ? " " : "", res->enh,
             res->text ? res->text : "");
    return buf;
}

/* dlv_job_done - the hop answered for every recipient of j (smtpc in
 * MSG_DONE, or CLOSED with per-recipient failures). */
void dlv_job_done(struct dlv *d, struct dlv_job *j, struct smtpc *c, const char *hop)
{
    char buf[SMTPC_TEXT_MAX + 32];
    for (size_t k = 0; k < j->n; k++) {
        struct smtpc_result res;
        if (!smtpc_rcpt_result(c, k, &res) || !res.code)
            outcome(d, j, k, 0, "451 4.4.0 no result from the next hop", hop);
        else
            outcome(d, j, k, res.code, result_text(&res, buf, sizeof(buf)), hop);
    }
    dlv_job_relayed(d, j, c);
    job_end(d, j);
}

/* dlv_job_failed - the hop could not be used for j (connection refused,
 * greeting or EHLO failed, TLS required but failed): the next hop of the
 * route, or a deferral of every recipient with why. */
void dlv_job_failed(struct dlv *d, struct dlv_job *j, const char *why)
{
    const char *hop = j->rt->hops[j->hop].text;
    dlv_logf(d, j->aid, "queue id %s: hop %s failed: %s", j->m->id, hop, why);
    if (j->hop + 1 < j->rt->nhops && !j->m->deleted) {
        j->hop++;
        dlv_pool_submit(d, j);
        return;
    }
    for (size_t k = 0; k < j->n; k++)
        outcome(d, j, k, 0, why, hop);
    job_end(d, j);
}

/* no_route - recipient i has no route (routes changed by a reload). */
static void no_route(struct dlv *d, struct dlv_msg *m, size_t i)
{
    struct dlv_job *j = job_new(d, m, NULL);
    if (!j)
        return;
    j->idx[0] = i;
    j->n = 1;
    m->busy[i] = true;
    m->jobs++;
    outcome(d, j, 0, 0, "451 4.3.5 no route for the recipient's domain", "-");
    job_end(d, j);
}

/* dlv_msg_dispatch - a due message: its due recipients grouped by route
 * into jobs, each handed to the pool of the route's first hop. */
void dlv_msg_dispatch(struct dlv *d, struct dlv_msg *m)
{
    if (m->jobs == 0 && qstate_done(&m->st)) {
        dlv_msg_complete(d, m); /* a bounce that could not be queued last time */
        return;
    }
    if (m->jobs == 0 && dlv_delay_warn(d, m))
        dlv_msg_write_state(d, m); /* woken for the delay DSN (dlv_msg_schedule) */
    if (dlv_msg_map(d, m) < 0) {
        dlv_logf(d, 0, "queue id %s: cannot read its queue file: %s", m->id, strerror(errno));
        dlv_msg_schedule(d, m, d->now + dlv_cfg(d)->relay_retry_min);
        return;
    }
    struct dlv_job *jobs[ROUTE_HOPS_MAX * 4];
    size_t nj = 0;
    for (size_t i = 0; i < m->st.nrcpt; i++) {
        struct qstate_rcpt *r = &m->st.rcpts[i];
        if (r->state != QST_PENDING || m->busy[i] || r->next > d->now)
            continue;
        const struct route *rt = routes_lookup_addr(d->snap->routes, r->addr);
        if (!rt) {
            no_route(d, m, i);
            continue;
        }
        size_t k = 0;
        while (k < nj && jobs[k]->rt != rt)
            k++;
        if (k == nj) {
            if (nj == MX_ARRAY_LEN(jobs) || !(jobs[nj] = job_new(d, m, rt)))
                break; /* the rest waits for the next round */
            nj++;
        }
        jobs[k]->idx[jobs[k]->n] = i;
        jobs[k]->addrs[jobs[k]->n++] = r->addr;
        m->busy[i] = true;
    }
    m->jobs += (unsigned)nj;
    if (!m->jobs)
        dlv_msg_unmap(m);
    for (size_t k = 0; k < nj; k++)
        dlv_pool_submit(d, jobs[k]);
    if (dlv_msg_find(d, m->id) == m)
        dlv_msg_schedule(d, m, 0);
}

/* dlv_msg_complete - every recipient is final (or the message was
 * deleted): queue the bounce when one is owed, then remove the message.
 * A bounce that cannot be written keeps the message for a later try. */
void dlv_msg_complete(struct dlv *d, struct dlv_msg *m)
{
    bool owed = false;
    for (size_t i = 0; i < m->st.nrcpt; i++)
        owed |= m->st.rcpts[i].state == QST_BOUNCED && dlv_notify_wants(m, i, SMTP_NOTIFY_FAILURE);
    if (!m->deleted && owed && !m->st.bounce_sent && dsn_wanted(m->env.sender)) {
        int rc = dlv_queue_bounce(d, m);
        dlv_msg_unmap(m);
        if (rc < 0) {
            dlv_logf(d, 0, "queue id %s: cannot queue its bounce: %s (retrying)", m->id,
                     strerror(-rc));
            dlv_msg_write_state(d, m);
            dlv_msg_schedule(d, m, d->now + dlv_cfg(d)->relay_retry_min);
            return;
        }
        m->st.bounce_sent = true;
        dlv_msg_write_state(d, m); /* a crash before the unlink does not bounce twice */
    }
    size_t sent = 0, bounced = 0;
    for (size_t i = 0; i < m->st.nrcpt; i++) {
        sent += m->st.rcpts[i].state == QST_SENT;
        bounced += m->st.rcpts[i].state == QST_BOUNCED;
    }
    if (!m->deleted)
        dlv_logf(d, 0, "queue id %s: done: sent=%zu bounced=%zu", m->id, sent, bounced);
    dlv_msg_finish(d, m);
}

/* ---- mxringctl state changes -------------------------------------------- */

/* dlv_msg_hold - hold (no new attempts) or release m. 0. */
int dlv_msg_hold(struct dlv *d, struct dlv_msg *m, bool hold)
{
    m->st.held = hold;
    dlv_msg_write_state(d, m);
    dlv_msg_schedule(d, m, 0);
    return 0;
}

/* dlv_msg_retry - every pending recipient is due now. 0. */
int dlv_msg_retry(struct dlv *d, struct dlv_msg *m)
{
    for (size_t i = 0; i < m->st.nrcpt; i++)
        if (m->st.rcpts[i].state == QST_PENDING)
            m->st.rcpts[i].next = 0;
    dlv_pools_retry(d);
    dlv_msg_schedule(d, m, 0);
    return 0;
}

/* dlv_msg_delete - remove m without delivering or bouncing the rest,
 * logged with the uid that asked; jobs in flight finish first. 0. */
int dlv_msg_delete(struct dlv *d, struct dlv_msg *m, unsigned uid)
{
    dlv_logf(d, 0, "queue id %s: deleted by uid %u (mxringctl delete)", m->id, uid);
    m->deleted = true;
    if (m->jobs == 0)
        dlv_msg_complete(d, m);
    else
        dlv_msg_schedule(d, m, 0);
    return 0;
}
