/* test_inbox.c - unit tests of net/inbox.c: oldest-first order, the
 * eventfd written only when a push finds the inbox empty, no eventfd
 * (-1), and several producer threads handing over elements whose contents
 * the owner must see whole (run under TSan too). Threads: the test thread
 * (owner) and PRODUCERS producer threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "inbox.h"

#define PRODUCERS 4
#define PER_PRODUCER 2000

struct item {
    unsigned producer;
    unsigned seq;
    struct inbox_node link; /* not first: INBOX_ENTRY must subtract */
    uint64_t check;         /* written before the push, read by the owner */
};

/* efd_read - the eventfd's counter (0 when not written). */
static uint64_t efd_read(int efd)
{
    uint64_t v = 0;
    if (read(efd, &v, sizeof v) != (ssize_t)sizeof v)
        return 0;
    return v;
}

/* test_inbox_fifo_and_wake - oldest first; one wake per empty->non-empty. */
static void test_inbox_fifo_and_wake(void **state)
{
    (void)state;
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert_true(efd >= 0);
    struct inbox *ib = inbox_new(efd);
    assert_non_null(ib);
    assert_null(inbox_take(ib));
    struct item it[3] = {{.seq = 0}, {.seq = 1}, {.seq = 2}};
    for (int i = 0; i < 3; i++)
        inbox_push(ib, &it[i].link);
    assert_int_equal(efd_read(efd), 1); /* only the first push woke */
    struct inbox_node *n = inbox_take(ib);
    for (unsigned i = 0; i < 3; i++, n = n->next) {
        assert_non_null(n);
        assert_int_equal(INBOX_ENTRY(n, struct item, link)->seq, i);
    }
    assert_null(n);
    assert_null(inbox_take(ib));
    inbox_push(ib, &it[0].link); /* empty again: wakes again */
    assert_int_equal(efd_read(efd), 1);
    assert_ptr_equal(inbox_take(ib), &it[0].link);
    assert_null(it[0].link.next);
    inbox_free(ib);
    inbox_free(NULL);
    close(efd);
}

/* test_inbox_no_efd - -1: pushes work without any wake-up. */
static void test_inbox_no_efd(void **state)
{
    (void)state;
    struct inbox *ib = inbox_new(-1);
    assert_non_null(ib);
    struct item a = {.seq = 7};
    inbox_push(ib, &a.link);
    struct inbox_node *n = inbox_take(ib);
    assert_ptr_equal(INBOX_ENTRY(n, struct item, link), &a);
    inbox_free(ib);
}

struct producer {
    pthread_t t;
    unsigned id;
    struct inbox *ib;
    struct item *items;
};

/* producer_main - push PER_PRODUCER items, each filled before its push. */
static void *producer_main(void *arg)
{
    struct producer *p = arg;
    for (unsigned i = 0; i < PER_PRODUCER; i++) {
        struct item *it = &p->items[i];
        it->producer = p->id;
        it->seq = i;
        it->check = (uint64_t)p->id << 32 | i;
        inbox_push(p->ib, &it->link);
    }
    return NULL;
}

/* test_inbox_producers - every item arrives once, each producer's items in
 * its push order, contents whole; the owner sleeps on the eventfd only. */
static void test_inbox_producers(void **state)
{
    (void)state;
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct inbox *ib = inbox_new(efd);
    assert_non_null(ib);
    struct producer p[PRODUCERS];
    for (unsigned k = 0; k < PRODUCERS; k++) {
        p[k] = (struct producer){
            .id = k, .ib = ib, .items = calloc(PER_PRODUCER, sizeof(struct item))};
        assert_non_null(p[k].items);
        assert_int_equal(pthread_create(&p[k].t, NULL, producer_main, &p[k]), 0);
    }
    unsigned next[PRODUCERS] = {0}, got = 0;
    while (got < PRODUCERS * PER_PRODUCER) {
        struct pollfd pfd = {.fd = efd, .events = POLLIN};
        assert_int_equal(poll(&pfd, 1, 10000), 1); /* a lost wake-up hangs here */
        efd_read(efd);
        for (struct inbox_node *n = inbox_take(ib); n; n = n->next, got++) {
            struct item *it = INBOX_ENTRY(n, struct item, link);
            assert_true(it->producer < PRODUCERS);
            assert_int_equal(it->seq, next[it->producer]);
            assert_int_equal(it->check, (uint64_t)it->producer << 32 | it->seq);
            next[it->producer]++;
        }
    }
    for (unsigned k = 0; k < PRODUCERS; k++) {
        pthread_join(p[k].t, NULL);
        assert_int_equal(next[k], PER_PRODUCER);
        free(p[k].items);
    }
    assert_null(inbox_take(ib));
    inbox_free(ib);
    close(efd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inbox_fifo_and_wake),
        cmocka_unit_test(test_inbox_no_efd),
        cmocka_unit_test(test_inbox_producers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
