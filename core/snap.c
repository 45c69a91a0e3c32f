/* snap.c - publication and reference counting of configuration+directory
 * snapshots. snap_publish from the main thread only (one publisher);
 * snap_current, snap_current_gen, snap_ref and snap_unref from any thread.
 *
 * Ordering (each pair labelled at both ends):
 *   R1 snap_current drops `readers` (release) -> A1 snap_publish's spin
 *      loads `readers` (seq_cst, so acquire): a reader's snap_ref of the old
 *      snapshot happens before the publisher drops its own reference.
 *   R2 snap_publish stores the generation (release) -> A2 snap_current_gen
 *      (acquire): a worker that sees the new generation and then calls
 *      snap_current gets the new snapshot (the exchange is sequenced before
 *      R2), never the one just replaced.
 *   R3 snap_unref's decrement (release half, every holder) -> A3 the same
 *      decrement's acquire half in the last holder's call: every holder's
 *      reads of the snapshot happen before it is freed.
 *
 * Why the reader spin is enough: S1 (the publisher's exchange), S2 (its
 * spin loads), S3 (a reader's increment of `readers`) and S4 (that reader's
 * load of `published`) are all seq_cst, so they lie in one total order
 * consistent with program order. A reader that got the old pointer at S4
 * read it before S1 replaced it, so S3 < S4 < S1 < every S2. Each S2 thus
 * reads `readers` at or after that reader's increment in its modification
 * order; the count is increments minus decrements, and a reader decrements
 * (R1) only after its increment, so reading 0 means R1 is also before that
 * value. As every change of `readers` is a read-modify-write, the value
 * read is in R1's release sequence: R1 synchronises with A1, the reader's
 * relaxed snap_ref happens before snap_unref(old), and old's count is at
 * least 2 there. A reader whose S4 comes after S1 gets the new snapshot,
 * which the publisher's own reference keeps alive. The spin lasts while
 * some reader is between S3 and R1 (a few instructions); the one publisher
 * waits, readers never do. */
#include "snap.h"

#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "dir.h"
#include "routes.h"

static _Atomic(struct snap *) published;
static atomic_uint_fast64_t published_gen;
/* Taking a reference to `published` must not race with the publisher
 * dropping its own: the publisher holds a reader count while swapping. */
static atomic_uint readers;

/* snap_new - see snap.h. */
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

bool snap_load_routes(struct snap *s, char *err, size_t errlen)
{
    const struct config *c = s->cfg;
    struct routes *r =
        routes_load(c->relay_routes, c->default_route, (enum route_tls)c->relay_tls, err, errlen);
    if (!r)
        return false;
    if (!routes_on(r)) {
        routes_free(r); /* no route at all: delivery is off */
        return true;
    }
    bool ok = routes_check_domains(r, c->local_domains, c->nlocal_domains, err, errlen);
    if (ok && !c->relay_ca_file && routes_uses_tls(r, ROUTE_TLS_VERIFY)) {
        snprintf(err, errlen,
                 "%s: relay_ca_file: unset, but a route uses tls=verify "
                 "(set relay_ca_file to the PEM CA certificates of the next hops)",
                 c->path);
        ok = false;
    }
    if (!ok) {
        routes_free(r);
        return false;
    }
    routes_free(s->routes);
    s->routes = r;
    return true;
}

/* snap_ref - see snap.h; relaxed: the caller already reaches s through a
 * reference it holds (or, in snap_current, through R1/A1). */
void snap_ref(struct snap *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

/* snap_unref - see snap.h. */
void snap_unref(struct snap *s)
{
    if (!s)
        return;
    /* R3 (release half): our reads of s are done; A3 (acquire half, in the
     * last holder's call): every other holder's are done before the free. */
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    cfg_free(s->cfg);
    dir_free(s->dir);
    routes_free(s->routes);
    if (s->tls && s->tls_free)
        s->tls_free(s->tls);
    free(s);
}

/* snap_publish - make s current; readers that loaded the old pointer have
 * already taken their reference (they hold `readers` while doing so). */
void snap_publish(struct snap *s)
{
    /* S1 */
    struct snap *old = atomic_exchange_explicit(&published, s, memory_order_seq_cst);
    /* R2: pairs with A2 in snap_current_gen() */
    atomic_store_explicit(&published_gen, s->gen, memory_order_release);
    /* S2, A1: pairs with R1 in snap_current() */
    while (atomic_load_explicit(&readers, memory_order_seq_cst) != 0)
        ; /* a reader is between S3 and R1: wait (a few instructions) */
    snap_unref(old);
}

/* snap_current - the published snapshot with a reference for the caller
 * (NULL before the first publication). */
struct snap *snap_current(void)
{
    atomic_fetch_add_explicit(&readers, 1, memory_order_seq_cst);            /* S3 */
    struct snap *s = atomic_load_explicit(&published, memory_order_seq_cst); /* S4 */
    if (s)
        snap_ref(s);
    /* R1: pairs with A1 in snap_publish() */
    atomic_fetch_sub_explicit(&readers, 1, memory_order_release);
    return s;
}

/* snap_current_gen - see snap.h. */
uint64_t snap_current_gen(void)
{
    /* A2: pairs with R2 in snap_publish() */
    return atomic_load_explicit(&published_gen, memory_order_acquire);
}
