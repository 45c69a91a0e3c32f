/* test_snap.c - unit tests of core/snap.c: publication, the generation,
 * reference counts across a swap (a held snapshot outlives its successor's
 * publication and is freed exactly once, by its last holder), and a stress
 * test of readers taking and dropping snapshots while the publisher swaps
 * (run under TSan by scripts/run-tests.py; ASan catches a use after free).
 * A snapshot's free is observed through its tls_free hook.
 * Threads: the test thread (publisher) and STRESS_READERS reader threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "snap.h"

#define STRESS_READERS 3
#define STRESS_PUBLISH 2000

/* payload - what the stress readers check: a copy of the generation, in
 * memory freed together with the snapshot. */
struct payload {
    uint64_t gen;
};

static atomic_uint freed;

/* payload_free - the snapshot's tls_free hook: free and count. */
static void payload_free(void *p)
{
    free(p);
    atomic_fetch_add_explicit(&freed, 1, memory_order_relaxed);
}

/* mk - a snapshot without configuration or directory, observed at free. */
static struct snap *mk(uint64_t gen)
{
    struct snap *s = snap_new(NULL, NULL, gen);
    assert_non_null(s);
    struct payload *p = malloc(sizeof(*p));
    assert_non_null(p);
    p->gen = gen;
    s->tls = p;
    s->tls_free = payload_free;
    return s;
}

/* refs - the reference count of s. */
static unsigned refs(struct snap *s)
{
    return atomic_load(&s->refs);
}

/* test_snap_publish_current - the published snapshot comes back with one
 * more reference, and its generation is the current one. */
static void test_snap_publish_current(void **state)
{
    (void)state;
    struct snap *s = mk(1);
    snap_publish(s);
    assert_int_equal(snap_current_gen(), 1);
    struct snap *c = snap_current();
    assert_ptr_equal(c, s);
    assert_int_equal(refs(s), 2);
    snap_unref(c);
    assert_int_equal(refs(s), 1); /* the publisher's */
}

/* test_snap_swap_held - a snapshot a worker still holds survives the next
 * publication and is freed by that worker's unref, once. */
static void test_snap_swap_held(void **state)
{
    (void)state;
    unsigned f0 = atomic_load(&freed);
    struct snap *old = snap_current();
    assert_non_null(old);
    struct snap *next = mk(old->gen + 1);
    snap_publish(next);
    assert_int_equal(snap_current_gen(), next->gen);
    assert_int_equal(atomic_load(&freed), f0); /* still held by us */
    assert_int_equal(refs(old), 1);
    struct snap *c = snap_current();
    assert_ptr_equal(c, next);
    snap_unref(c);
    snap_unref(old);
    assert_int_equal(atomic_load(&freed), f0 + 1);
}

/* test_snap_swap_unheld - a snapshot nobody holds is freed by the
 * publication that replaces it; unref of NULL is a no-op. */
static void test_snap_swap_unheld(void **state)
{
    (void)state;
    unsigned f0 = atomic_load(&freed);
    uint64_t g = snap_current_gen();
    snap_publish(mk(g + 1));
    assert_int_equal(atomic_load(&freed), f0 + 1);
    snap_unref(NULL);
}

/* test_snap_ref_counts - every ref needs its unref before the free. */
static void test_snap_ref_counts(void **state)
{
    (void)state;
    unsigned f0 = atomic_load(&freed);
    struct snap *s = mk(99);
    snap_ref(s);
    snap_ref(s);
    assert_int_equal(refs(s), 3);
    snap_unref(s);
    snap_unref(s);
    assert_int_equal(atomic_load(&freed), f0);
    snap_unref(s);
    assert_int_equal(atomic_load(&freed), f0 + 1);
}

static atomic_bool stop;

/* reader - take the current snapshot over and over: it is never freed
 * while held (its payload still matches), generations never go back, and
 * a generation seen by snap_current_gen is at least what snap_current
 * returns next (R2/A2; the generation may lag the pointer, not lead it). */
static void *reader(void *arg)
{
    (void)arg;
    uint64_t last = 0;
    unsigned long bad = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        uint64_t g = snap_current_gen();
        struct snap *s = snap_current();
        const struct payload *p = s->tls;
        if (s->gen < last || s->gen < g || p->gen != s->gen)
            bad++;
        last = s->gen;
        snap_unref(s);
    }
    return (void *)(uintptr_t)bad;
}

/* test_snap_stress_swap - readers spin on snap_current while the publisher
 * swaps STRESS_PUBLISH snapshots; every replaced one is freed exactly once
 * and no reader saw a freed or older snapshot. */
static void test_snap_stress_swap(void **state)
{
    (void)state;
    unsigned f0 = atomic_load(&freed);
    uint64_t g = snap_current_gen();
    pthread_t t[STRESS_READERS];
    atomic_store(&stop, false);
    for (int i = 0; i < STRESS_READERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, NULL), 0);
    for (unsigned i = 1; i <= STRESS_PUBLISH; i++)
        snap_publish(mk(g + i));
    atomic_store(&stop, true);
    for (int i = 0; i < STRESS_READERS; i++) {
        void *bad;
        assert_int_equal(pthread_join(t[i], &bad), 0);
        assert_int_equal((uintptr_t)bad, 0);
    }
    assert_int_equal(atomic_load(&freed), f0 + STRESS_PUBLISH);
    assert_int_equal(snap_current_gen(), g + STRESS_PUBLISH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snap_publish_current), cmocka_unit_test(test_snap_swap_held),
        cmocka_unit_test(test_snap_swap_unheld),     cmocka_unit_test(test_snap_ref_counts),
        cmocka_unit_test(test_snap_stress_swap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
