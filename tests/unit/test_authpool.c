/* test_authpool.c - unit tests of net/authpool.c: correct and wrong
 * passwords (SHA-512 "$6$" and yescrypt "$y$" hashes made with crypt_r at
 * start), unknown, locked and unusable users, the pending bound, routing of
 * results to the submitting worker's inbox and eventfd, snapshot references,
 * and shutdown with queued requests. Waits only on eventfds, never on time.
 * Threads: the test thread, the pool's verifiers, two submitter threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <crypt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "authpool.h"
#include "inbox.h"
#include "dir.h"
#include "snap.h"
#include "util.h"

#define ERRLEN 256
#define SHA512_ROUNDS 1000 /* the minimum: keeps the test fast */
#define ROUTE_N 24         /* requests per submitter thread */
#define RESULTS_MAX 64

static struct snap *snap;
static bool have_yescrypt;
static char h6[CRYPT_OUTPUT_SIZE];

/* hash - a crypt(3) hash of pw with a fresh salt of scheme prefix. */
static bool hash(const char *prefix, unsigned long count, const char *pw, char *out, size_t cap)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    if (!crypt_gensalt_rn(prefix, count, NULL, 0, setting, sizeof setting))
        return false;
    const char *h = crypt_r(pw, setting, &cd);
    if (!h || h[0] == '*' || strlen(h) >= cap)
        return false;
    strcpy(out, h);
    return true;
}

/* setup - a directory of users with $6$ and (when libcrypt has it) $y$ hashes. */
static int setup(void **state)
{
    (void)state;
    char hl[CRYPT_OUTPUT_SIZE], hy[CRYPT_OUTPUT_SIZE] = "";
    if (!hash("$6$", SHA512_ROUNDS, "alice-pw", h6, sizeof h6) ||
        !hash("$6$", SHA512_ROUNDS, "locked-pw", hl, sizeof hl))
        return -1;
    have_yescrypt = hash("$y$", 0, "yves pw \xc3\xa9", hy, sizeof hy);
    struct sb users = {0};
    sb_printf(&users,
              "alice@x.test:%s\nlocked@x.test:!%s\nstar@x.test:*\n"
              "broken@x.test:$zz$abcdefgh\n",
              h6, hl);
    if (have_yescrypt)
        sb_printf(&users, "yves@x.test:%s\n", hy);
    struct dir_source src[DIR_FILES] = {{"users", users.data, users.len}};
    char err[ERRLEN];
    struct dir *d = dir_load_mem(src, err, sizeof err);
    sb_free(&users);
    if (!d) {
        fprintf(stderr, "dir_load_mem: %s\n", err);
        return -1;
    }
    snap = snap_new(NULL, d, 1);
    return snap ? 0 : -1;
}

/* teardown - drop the test's snapshot reference (the last one). */
static int teardown(void **state)
{
    (void)state;
    snap_unref(snap);
    return 0;
}

/* Results collected by collect(). */
struct got {
    size_t n;
    struct authpool_result r[RESULTS_MAX];
};

/* collect - drain callback: append r to the struct got at arg. */
static void collect(void *arg, const struct authpool_result *r)
{
    struct got *g = arg;
    assert_true(g->n < RESULTS_MAX);
    g->r[g->n++] = *r;
}

/* wait_results - block on efd and drain ib until g holds want results. */
static void wait_results(struct inbox *ib, int efd, struct got *g, size_t want)
{
    while (g->n < want) {
        uint64_t v;
        assert_int_equal(read(efd, &v, sizeof v), sizeof v);
        authpool_drain(ib, collect, g);
    }
    assert_int_equal(g->n, want);
}

/* A pool, one inbox and its eventfd. */
struct rig {
    struct authpool *pool;
    struct inbox *ib;
    int efd;
};

/* rig_new - start a pool of threads verifiers allowing max pending. */
static void rig_new(struct rig *g, unsigned threads, unsigned max)
{
    char err[ERRLEN];
    g->pool = authpool_new(threads, max, err, sizeof err);
    if (!g->pool)
        fail_msg("authpool_new: %s", err);
    g->efd = eventfd(0, EFD_CLOEXEC);
    assert_true(g->efd >= 0);
    g->ib = inbox_new(g->efd);
    assert_non_null(g->ib);
}

/* rig_free - stop the pool, then free the inbox and eventfd. */
static void rig_free(struct rig *g)
{
    authpool_free(g->pool);
    authpool_inbox_free(g->ib);
    close(g->efd);
}

/* check - verify one user/password; returns the status. */
static enum authpool_status check(struct rig *g, const char *user, const char *pw)
{
    static uint64_t cookie = 1000;
    struct got got = {0};
    uint64_t c = ++cookie;
    assert_int_equal(authpool_submit(g->pool, g->ib, snap, user, strlen(user), pw, strlen(pw), c),
                     AUTHPOOL_QUEUED);
    wait_results(g->ib, g->efd, &got, 1);
    assert_int_equal(got.r[0].cookie, c);
    assert_int_equal(atomic_load(&snap->refs), 1); /* the pool let go of the snapshot */
    return got.r[0].status;
}

/* test_authpool_passwords - right and wrong passwords of existing users. */
static void test_authpool_passwords(void **state)
{
    (void)state;
    struct rig g;
    rig_new(&g, 2, 0);
    assert_int_equal(check(&g, "alice@x.test", "alice-pw"), AUTHPOOL_OK);
    assert_int_equal(check(&g, "ALICE@X.Test", "alice-pw"), AUTHPOOL_OK); /* like RCPT lookups */
    assert_int_equal(check(&g, "alice@x.test", "alice-p"), AUTHPOOL_BAD_PASSWORD);
    assert_int_equal(check(&g, "alice@x.test", "alice-pwx"), AUTHPOOL_BAD_PASSWORD);
    assert_int_equal(check(&g, "alice@x.test", "ALICE-PW"), AUTHPOOL_BAD_PASSWORD);
    assert_int_equal(check(&g, "alice@x.test", ""), AUTHPOOL_BAD_PASSWORD);
    if (have_yescrypt) {
        assert_int_equal(check(&g, "yves@x.test", "yves pw \xc3\xa9"), AUTHPOOL_OK);
        assert_int_equal(check(&g, "yves@x.test", "yves pw e"), AUTHPOOL_BAD_PASSWORD);
    } else {
        fprintf(stderr, "note: libcrypt without yescrypt, $y$ cases skipped\n");
    }
    rig_free(&g);
}

/* test_authpool_unknown_locked - unknown, locked and unusable users fail
 * with their own log reason. */
static void test_authpool_unknown_locked(void **state)
{
    (void)state;
    struct rig g;
    rig_new(&g, 1, 0);
    assert_false(authpool_seed_dummy(g.pool, "$zz$abcdefgh"));
    assert_false(authpool_seed_dummy(g.pool, "*"));
    assert_true(authpool_seed_dummy(g.pool, h6));
    assert_int_equal(check(&g, "nobody@x.test", "alice-pw"), AUTHPOOL_NO_USER);
    assert_int_equal(check(&g, "alice", "alice-pw"), AUTHPOOL_NO_USER);
    assert_int_equal(check(&g, "locked@x.test", "locked-pw"), AUTHPOOL_LOCKED);
    assert_int_equal(check(&g, "star@x.test", "*"), AUTHPOOL_LOCKED);
    assert_int_equal(check(&g, "broken@x.test", "x"), AUTHPOOL_BAD_HASH);
    assert_int_equal(check(&g, "alice@x.test", "alice-pw"), AUTHPOOL_OK); /* learns $6$ */
    assert_int_equal(check(&g, "nobody@x.test", "alice-pw"), AUTHPOOL_NO_USER);
    assert_string_equal(authpool_status_text(AUTHPOOL_NO_USER), "no such user");
    assert_string_equal(authpool_status_text(AUTHPOOL_LOCKED), "user locked");
    assert_string_equal(authpool_status_text((enum authpool_status)42), "unknown");
    rig_free(&g);
}

/* test_authpool_bound - past max pending (undrained results count) submit
 * says busy; draining makes room again. Too long input is refused. */
static void test_authpool_bound(void **state)
{
    (void)state;
    struct rig g;
    rig_new(&g, 1, 3);
    for (uint64_t i = 0; i < 3; i++)
        assert_int_equal(authpool_submit(g.pool, g.ib, snap, "alice@x.test", 12, "bad", 3, i),
                         AUTHPOOL_QUEUED);
    assert_int_equal(authpool_submit(g.pool, g.ib, snap, "alice@x.test", 12, "bad", 3, 9),
                     AUTHPOOL_BUSY);
    struct got got = {0};
    wait_results(g.ib, g.efd, &got, 3);
    for (uint64_t i = 0; i < 3; i++) { /* one verifier: FIFO */
        assert_int_equal(got.r[i].cookie, i);
        assert_int_equal(got.r[i].status, AUTHPOOL_BAD_PASSWORD);
    }
    assert_int_equal(authpool_submit(g.pool, g.ib, snap, "alice@x.test", 12, "alice-pw", 8, 7),
                     AUTHPOOL_QUEUED);
    wait_results(g.ib, g.efd, &got, 4);
    assert_int_equal(got.r[3].status, AUTHPOOL_OK);

    char big[300];
    memset(big, 'a', sizeof big);
    assert_int_equal(authpool_submit(g.pool, g.ib, snap, big, 256, "x", 1, 1), AUTHPOOL_INVALID);
    assert_int_equal(authpool_submit(g.pool, g.ib, snap, "alice@x.test", 12, big, 257, 1),
                     AUTHPOOL_INVALID);
    assert_int_equal(authpool_submit(g.pool, g.ib, snap, "alice@x.test", 12, "a\0b", 3, 1),
                     AUTHPOOL_INVALID);
    assert_int_equal(authpool_drain(g.ib, collect, &got), 0);
    rig_free(&g);
}

/* One submitter thread of test_authpool_routing. */
struct submitter {
    struct authpool *pool;
    struct inbox *ib;
    int efd;
    uint64_t tag;
    struct got got;
};

/* submitter_main - submit ROUTE_N requests (even: right password) to its own
 * inbox, then collect all of its results. */
static void *submitter_main(void *arg)
{
    struct submitter *s = arg;
    for (uint64_t i = 0; i < ROUTE_N; i++) {
        const char *pw = i % 2 ? "wrong" : "alice-pw";
        if (authpool_submit(s->pool, s->ib, snap, "alice@x.test", 12, pw, strlen(pw),
                            s->tag << 32 | i) != AUTHPOOL_QUEUED)
            return NULL;
    }
    while (s->got.n < ROUTE_N) {
        uint64_t v;
        if (read(s->efd, &v, sizeof v) != sizeof v)
            return NULL;
        authpool_drain(s->ib, collect, &s->got);
    }
    return NULL;
}

/* test_authpool_routing - two workers' results reach their own inboxes. */
static void test_authpool_routing(void **state)
{
    (void)state;
    char err[ERRLEN];
    struct authpool *pool = authpool_new(2, 2 * ROUTE_N, err, sizeof err);
    assert_non_null(pool);
    struct submitter s[2];
    pthread_t t[2];
    for (int k = 0; k < 2; k++) {
        s[k] = (struct submitter){.pool = pool, .efd = eventfd(0, EFD_CLOEXEC), .tag = 7 + k};
        assert_true(s[k].efd >= 0);
        s[k].ib = inbox_new(s[k].efd);
        assert_int_equal(pthread_create(&t[k], NULL, submitter_main, &s[k]), 0);
    }
    for (int k = 0; k < 2; k++) {
        assert_int_equal(pthread_join(t[k], NULL), 0);
        assert_int_equal(s[k].got.n, ROUTE_N);
        bool seen[ROUTE_N] = {false};
        for (size_t i = 0; i < ROUTE_N; i++) {
            const struct authpool_result *r = &s[k].got.r[i];
            uint64_t idx = r->cookie & 0xffffffffu;
            assert_int_equal(r->cookie >> 32, s[k].tag);
            assert_true(idx < ROUTE_N && !seen[idx]);
            seen[idx] = true;
            assert_int_equal(r->status, idx % 2 ? AUTHPOOL_BAD_PASSWORD : AUTHPOOL_OK);
        }
    }
    authpool_free(pool);
    for (int k = 0; k < 2; k++) {
        authpool_inbox_free(s[k].ib);
        close(s[k].efd);
    }
    assert_int_equal(atomic_load(&snap->refs), 1);
}

/* test_authpool_snapshot_lifetime - a request keeps its snapshot alive after
 * the submitter dropped it (as on a reload); shutting down with requests
 * queued releases them and their snapshot references. */
static void test_authpool_snapshot_lifetime(void **state)
{
    (void)state;
    struct rig g;
    rig_new(&g, 1, 0);
    snap_ref(snap);
    struct snap *mine = snap; /* stand-in for an old snapshot */
    assert_int_equal(authpool_submit(g.pool, g.ib, mine, "alice@x.test", 12, "alice-pw", 8, 5),
                     AUTHPOOL_QUEUED);
    snap_unref(mine);
    struct got got = {0};
    wait_results(g.ib, g.efd, &got, 1);
    assert_int_equal(got.r[0].status, AUTHPOOL_OK);

    for (uint64_t i = 0; i < 8; i++)
        assert_int_equal(authpool_submit(g.pool, g.ib, snap, "nobody@x.test", 13, "pw", 2, i),
                         AUTHPOOL_QUEUED);
    authpool_free(g.pool); /* some still queued */
    assert_int_equal(atomic_load(&snap->refs), 1);
    authpool_inbox_free(g.ib); /* frees undrained results */
    close(g.efd);
    authpool_free(NULL);
    authpool_inbox_free(NULL);
}

/* test_authpool_new_errors - a bad thread count is refused with a message. */
static void test_authpool_new_errors(void **state)
{
    (void)state;
    char err[ERRLEN];
    assert_null(authpool_new(1000, 0, err, sizeof err));
    assert_string_equal(err, "authpool: at most 16 verifier threads");
    struct authpool *p = authpool_new(0, 0, err, sizeof err); /* defaults */
    assert_non_null(p);
    authpool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authpool_passwords),
        cmocka_unit_test(test_authpool_unknown_locked),
        cmocka_unit_test(test_authpool_bound),
        cmocka_unit_test(test_authpool_routing),
        cmocka_unit_test(test_authpool_snapshot_lifetime),
        cmocka_unit_test(test_authpool_new_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
