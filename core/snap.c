/* snap.c - publication and reference counting of configuration+directory
 * snapshots. snap_publish from the main thread; snap_current, snap_ref and
 * snap_unref from any thread. */
#include "snap.h"

#include <stdlib.h>

#include "config.h"
#include "dir.h"

static _Atomic(struct snap *) published;
static atomic_uint_fast64_t published_gen;
/* Taking a reference to `published` must not race with the publisher
 * dropping its own: the publisher holds a reader count while swapping. */
static atomic_uint readers;

struct snap *snap_new(struct config *cfg, struct dir *dir, uint64_t gen)
{
    struct snap *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cfg = cfg;
    s->dir = dir;
    s->gen = gen;
    atomic_init(&s->refs, 1);
    return s;
}

void snap_ref(struct snap *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void snap_unref(struct snap *s)
{
    if (!s)
        return;
    /* A1: release our writes; the last holder acquires before freeing. */
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    cfg_free(s->cfg);
    dir_free(s->dir);
    if (s->tls && s->tls_free)
        s->tls_free(s->tls);
    free(s);
}

/* snap_publish - make s current; readers that loaded the old pointer have
 * already taken their reference (they hold `readers` while doing so). */
void snap_publish(struct snap *s)
{
    struct snap *old = atomic_exchange_explicit(&published, s, memory_order_seq_cst);
    atomic_store_explicit(&published_gen, s->gen, memory_order_release);
    while (atomic_load_explicit(&readers, memory_order_seq_cst) != 0)
        ; /* a reader is between load and ref: wait (a few instructions) */
    snap_unref(old);
}

struct snap *snap_current(void)
{
    atomic_fetch_add_explicit(&readers, 1, memory_order_seq_cst);
    struct snap *s = atomic_load_explicit(&published, memory_order_seq_cst);
    if (s)
        snap_ref(s);
    atomic_fetch_sub_explicit(&readers, 1, memory_order_release);
    return s;
}

uint64_t snap_current_gen(void)
{
    return atomic_load_explicit(&published_gen, memory_order_acquire);
}
