/* mxbench_work.c - which message a session of one mxbench thread sends
 * next, and when. Closed loop: every session claims from the shared budget
 * as soon as it is ready (today's behaviour of mxbench). Open loop: the
 * thread's schedule says when each message is due; it goes to an idle
 * connection, else to a free session that connects for it, else (the
 * connection cap is reached) into the backlog, counted late, and its
 * latency still runs from the scheduled time. Runs on the owning thread. */
#include "mxbench_thr.h"

#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1000000000.0
/* a start this late after its tick, without the cap, is a slip */
#define SLIP_NS (MXB_TICK_NS + 1000000ull)

/* has_room - the connection may carry one more message. */
static bool has_room(const struct sess *s)
{
    unsigned max = s->t->p->o->per_conn;
    return max == 0 || s->conn_msgs < max;
}

/* backlog_push - remember a due time that found no connection. */
static void backlog_push(struct thr *t, uint64_t due)
{
    if (t->bl_n == t->bl_cap) {
        size_t cap = t->bl_cap ? t->bl_cap * 2 : 1024;
        uint64_t *nb = malloc(cap * sizeof *nb);
        if (!nb) { /* cannot wait for it: the message is lost */
            t->st->c.unsent++;
            return;
        }
        for (size_t i = 0; i < t->bl_n; i++)
            nb[i] = t->bl[(t->bl_head + i) % t->bl_cap];
        free(t->bl);
        t->bl = nb;
        t->bl_cap = cap;
        t->bl_head = 0;
    }
    t->bl[(t->bl_head + t->bl_n) % t->bl_cap] = due;
    t->bl_n++;
}

/* backlog_pop - the oldest waiting due time; false when none. */
static bool backlog_pop(struct thr *t, uint64_t *due)
{
    if (t->bl_n == 0)
        return false;
    *due = t->bl[t->bl_head];
    t->bl_head = (t->bl_head + 1) % t->bl_cap;
    t->bl_n--;
    return true;
}

/* work_idle_remove - see mxbench_thr.h. */
void work_idle_remove(struct sess *s)
{
    struct thr *t = s->t;
    if (s->idle_i < 0)
        return;
    struct sess *last = t->idle[--t->nidle];
    t->idle[s->idle_i] = last;
    last->idle_i = s->idle_i;
    s->idle_i = -1;
}

/* idle_push - park a connected session until a message is due. */
static void idle_push(struct sess *s)
{
    s->stage = ST_READY;
    s->idle_i = (int)s->t->nidle;
    s->t->idle[s->t->nidle++] = s;
}

/* hold - give s the message due at due; note a start that slipped for
 * reasons other than the connection cap (the generator itself behind). */
static void hold(struct thr *t, struct sess *s, uint64_t due, bool from_backlog)
{
    s->ticket = true;
    s->due = due;
    if (!from_backlog && t->now > due) {
        uint64_t lag = t->now - due;
        if (lag > SLIP_NS)
            t->st->c.slipped++;
        if (lag > t->st->max_lag_ns)
            t->st->max_lag_ns = lag;
    }
}

/* closed_begin - closed loop: claim a message and connect for it; the
 * session is done when the budget is used up. */
static void closed_begin(struct sess *s)
{
    struct thr *t = s->t;
    while (!t->abort && mxb_claim(t->p, t->now)) {
        s->ticket = true;
        if (sess_connect(s))
            return;
    }
    s->stage = ST_DONE;
    t->live--;
}

/* serve_backlog - open loop: free sessions connect for waiting messages. */
static void serve_backlog(struct thr *t)
{
    uint64_t due;
    while (t->nfree > 0 && backlog_pop(t, &due)) {
        struct sess *s = t->freel[--t->nfree];
        hold(t, s, due, true);
        if (!sess_connect(s))
            t->freel[t->nfree++] = s;
    }
}

/* work_ready - see mxbench_thr.h. */
void work_ready(struct sess *s)
{
    struct thr *t = s->t;
    uint64_t due;
    if (s->ticket) {
        sess_start(s);
    } else if (!has_room(s) || t->abort) {
        sess_quit(s);
    } else if (!t->open) {
        if (mxb_claim(t->p, t->now)) {
            s->ticket = true;
            sess_start(s);
        } else {
            sess_quit(s);
        }
    } else if (backlog_pop(t, &due)) {
        hold(t, s, due, true);
        sess_start(s);
    } else if (t->sched_done) {
        sess_quit(s);
    } else {
        idle_push(s);
    }
}

/* work_closed - see mxbench_thr.h. */
void work_closed(struct sess *s)
{
    struct thr *t = s->t;
    if (!t->open) {
        closed_begin(s);
        return;
    }
    t->freel[t->nfree++] = s;
    serve_backlog(t);
}

/* assign - open loop: the message due at due goes to an idle connection,
 * a new one, or the backlog. */
static void assign(struct thr *t, uint64_t due)
{
    if (t->nidle > 0) {
        struct sess *s = t->idle[t->nidle - 1];
        work_idle_remove(s);
        hold(t, s, due, false);
        sess_start(s);
    } else if (t->nfree > 0) {
        struct sess *s = t->freel[--t->nfree];
        hold(t, s, due, false);
        if (!sess_connect(s))
            t->freel[t->nfree++] = s;
    } else {
        t->st->c.late++;
        backlog_push(t, due);
    }
}

/* next_due - advance the schedule: the next due time, or sched_done. */
static void next_due(struct thr *t)
{
    double at;
    if (t->left == 0 || !mxb_sched_next(&t->sched, &at)) {
        t->sched_done = true;
        return;
    }
    t->left--;
    t->next_due = t->p->t0_ns + (uint64_t)(at * NS_PER_S);
    if (t->p->stop_ns && t->next_due >= t->p->stop_ns)
        t->sched_done = true;
}

/* drop_backlog - the deadline passed: messages still waiting for a
 * connection are given up and counted unsent. */
static void drop_backlog(struct thr *t)
{
    t->st->c.unsent += t->bl_n;
    t->bl_n = 0;
}

/* quit_idle - nothing more to send: idle connections say QUIT. */
static void quit_idle(struct thr *t)
{
    while (t->nidle > 0) {
        struct sess *s = t->idle[t->nidle - 1];
        work_idle_remove(s);
        sess_quit(s);
    }
}

/* work_pump - see mxbench_thr.h. */
void work_pump(struct thr *t)
{
    if (!t->open)
        return;
    while (!t->sched_done && t->next_due <= t->now) {
        assign(t, t->next_due);
        next_due(t);
    }
    if (t->p->stop_ns && t->now >= t->p->stop_ns && t->bl_n > 0)
        drop_backlog(t);
    if (t->sched_done && t->bl_n == 0)
        quit_idle(t);
}

/* work_start - see mxbench_thr.h. */
void work_start(struct thr *t)
{
    if (!t->open) {
        for (unsigned i = 0; i < t->nsess; i++)
            closed_begin(&t->sess[i]);
        return;
    }
    for (unsigned i = t->nsess; i-- > 0;)
        t->freel[t->nfree++] = &t->sess[i];
    next_due(t);
    work_pump(t);
}

/* work_abort - see mxbench_thr.h. */
void work_abort(struct thr *t)
{
    t->abort = true;
    t->sched_done = true;
    drop_backlog(t);
    for (unsigned i = 0; i < t->nsess; i++) {
        struct sess *s = &t->sess[i];
        if (s->fd >= 0 && !s->closing)
            sess_end(s, SESS_ABORT);
    }
}

/* work_done - see mxbench_thr.h. */
bool work_done(const struct thr *t)
{
    if (!t->open)
        return t->live == 0;
    return t->sched_done && t->bl_n == 0 && t->conns == 0;
}
