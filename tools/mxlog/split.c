/* split.c - the two-thread walk of one large day file (`mxlog stats`): the
 * first half on the calling thread, the second on a thread of its own with
 * its own engine and sink; the lines of sessions that began before the
 * split are carried over and fed to the first engine afterwards. Called
 * from the main thread; the second thread touches only struct half. */
#include "walk.h"

#include "scan.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The sessions the second half opened itself (a connect, or any line after
 * a restart): their later lines are never carried, even once they closed. */
struct sid_set {
    uint32_t *v; /* open addressing; 0 = empty (id 0 is never kept) */
    size_t n, cap;
};

/* The second half and what its thread found. */
struct half {
    struct mxl_opts o; /* a copy: its own counters and time cache */
    struct mxl_engine *e;
    const char *p;
    size_t n;
    size_t *carry; /* offsets of the lines of sessions open at the split */
    size_t ncarry, capcarry;
    struct sid_set own;
    bool restarted; /* an mxringd start/stop line: nothing open remains */
    bool ok;
};

/* set_slot - the bucket of sid in set (or the empty one where it goes). */
static size_t set_slot(const struct sid_set *set, uint32_t sid)
{
    size_t i = (size_t)(sid * 2654435761u) & (set->cap - 1);
    while (set->v[i] && set->v[i] != sid)
        i = (i + 1) & (set->cap - 1);
    return i;
}

/* set_add - keep sid (not 0); false when out of memory. */
static bool set_add(struct sid_set *set, uint32_t sid)
{
    if ((set->n + 1) * 2 > set->cap) {
        struct sid_set g = {calloc(set->cap ? set->cap * 2 : 1024, sizeof(uint32_t)), 0,
                            set->cap ? set->cap * 2 : 1024};
        if (!g.v)
            return false;
        for (size_t i = 0; i < set->cap; i++)
            if (set->v[i])
                g.v[set_slot(&g, set->v[i])] = set->v[i];
        g.n = set->n;
        free(set->v);
        *set = g;
    }
    size_t i = set_slot(set, sid);
    set->n += !set->v[i];
    set->v[i] = sid;
    return true;
}

/* set_has - is sid kept? */
static bool set_has(const struct sid_set *set, uint32_t sid)
{
    return set->cap && set->v[set_slot(set, sid)] == sid;
}

/* carry_add - remember the line at offset off for the first engine. */
static bool carry_add(struct half *h, size_t off)
{
    if (h->ncarry == h->capcarry) {
        size_t cap = h->capcarry ? h->capcarry * 2 : 1024;
        size_t *v = realloc(h->carry, cap * sizeof(*v));
        if (!v)
            return false;
        h->carry = v;
        h->capcarry = cap;
    }
    h->carry[h->ncarry++] = off;
    return true;
}

/* half_line - one parsed line of the second half: carried when it belongs
 * to a session this half did not open while one may be open before the
 * split; a start/stop line is carried (it ends the first half's sessions)
 * and fed (it ends this half's). */
static bool half_line(struct half *h, const struct mxl_line *l, size_t off, size_t len)
{
    if (!h->restarted) {
        if (l->sid == 0 && (l->kind == MXL_K_START || l->kind == MXL_K_STOP)) {
            h->restarted = true;
            if (!carry_add(h, off))
                return false;
        } else if (l->sid != 0 && l->kind != MXL_K_CONNECT && !set_has(&h->own, l->sid)) {
            return carry_add(h, off);
        } else if (l->sid != 0 && !set_add(&h->own, l->sid)) {
            return false;
        }
    }
    return mxl_engine_feed(h->e, l, h->p + off, len);
}

/* half_run - the second thread: walk the second half. */
static void *half_run(void *arg)
{
    struct half *h = arg;
    struct mxl_nl it = {.p = h->p, .n = h->n};
    struct mxl_line l;
    h->ok = true;
    for (size_t i = 0; i < h->n && h->ok;) {
        size_t end = mxl_nl_next(&it);
        h->o.lines++;
        if (mxl_parse_line_c(h->p + i, end - i, &l, &h->o.tc) == MXL_K_BAD)
            h->o.bad_lines += end > i;
        else
            h->ok = half_line(h, &l, i, end - i);
        i = end + 1;
    }
    h->o.bytes += h->n;
    return NULL;
}

/* replay - the carried lines into the first engine, in file order. */
static bool replay(struct mxl_opts *o, struct mxl_engine *e, const struct half *h)
{
    for (size_t k = 0; k < h->ncarry; k++) {
        const char *q = h->p + h->carry[k];
        const char *nl = memchr(q, '\n', h->n - h->carry[k]);
        size_t len = nl ? (size_t)(nl - q) : h->n - h->carry[k];
        struct mxl_line l;
        if (mxl_parse_line_c(q, len, &l, &o->tc) != MXL_K_BAD && !mxl_engine_feed(e, &l, q, len))
            return false;
    }
    return true;
}

/* mxl_walk_split - see walk.h. */
bool mxl_walk_split(struct mxl_opts *o, struct mxl_engine *e, const char *host,
                    const struct mxl_split *split, const char *p, size_t n)
{
    const char *nl = memchr(p + n / 2, '\n', n - n / 2);
    struct mxl_sink sink;
    if (!nl || (size_t)(nl + 1 - p) == n || !split->fork(split->arg, &sink))
        return mxl_walk_buf(o, e, p, n);
    size_t mid = (size_t)(nl + 1 - p);
    struct half h = {.o = *o, .p = p + mid, .n = n - mid};
    h.o.lines = h.o.bad_lines = h.o.bytes = 0;
    h.o.tc.valid = false;
    pthread_t t;
    bool ok = (h.e = mxl_engine_new(&sink, false)) != NULL;
    if (ok) {
        mxl_engine_host(h.e, host);
        ok = pthread_create(&t, NULL, half_run, &h) == 0;
    }
    if (!ok) { /* one thread after all */
        mxl_engine_free(h.e);
        split->join(split->arg, &sink);
        return mxl_walk_buf(o, e, p, n);
    }
    ok = mxl_walk_buf(o, e, p, mid);
    pthread_join(t, NULL); /* h is the other thread's no more */
    ok = ok && h.ok && replay(o, e, &h) && mxl_engine_adopt(e, h.e);
    if (!ok)
        fprintf(stderr, "mxlog: out of memory\n");
    o->lines += h.o.lines;
    o->bad_lines += h.o.bad_lines;
    o->bytes += h.o.bytes;
    o->tc = h.o.tc;
    mxl_engine_free(h.e);
    split->join(split->arg, &sink);
    free(h.carry);
    free(h.own.v);
    return ok;
}
