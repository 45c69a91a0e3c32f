/* inbox.c - the handoff behind inbox.h: a Treiber-style stack pushed with a
 * release CAS and emptied with one acquire exchange (no ABA: the consumer
 * never pops single nodes), reversed into FIFO order by the owner. Push:
 * any thread; take: the inbox's owner only. */
#include "inbox.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INBOX_CACHE_LINE 64

struct inbox {
    /* Pushed nodes, newest first; the owner takes them all. */
    alignas(INBOX_CACHE_LINE) _Atomic(struct inbox_node *) head;
    alignas(INBOX_CACHE_LINE) int efd;
};

/* inbox_new - allocate an empty inbox on its own cache lines. */
struct inbox *inbox_new(int efd)
{
    struct inbox *ib = aligned_alloc(INBOX_CACHE_LINE, sizeof(*ib));
    if (!ib)
        return NULL;
    memset(ib, 0, sizeof(*ib));
    atomic_init(&ib->head, NULL);
    ib->efd = efd;
    return ib;
}

/* inbox_free - free the inbox (its nodes are the caller's). */
void inbox_free(struct inbox *ib)
{
    free(ib);
}

/* inbox_push - link n in front; wake the owner when the inbox was empty. */
void inbox_push(struct inbox *ib, struct inbox_node *n)
{
    struct inbox_node *old = atomic_load_explicit(&ib->head, memory_order_relaxed);
    do
        n->next = old;
    /* R1: release n's element (and our last reads of it); pairs with A1 in
     * inbox_take(). */
    while (!atomic_compare_exchange_weak_explicit(&ib->head, &old, n, memory_order_release,
                                                  memory_order_relaxed));
    if (!old && ib->efd >= 0) {
        uint64_t one = 1;
        if (write(ib->efd, &one, sizeof one) < 0) {
            /* EAGAIN only at a counter of 2^64-2: the owner is awake anyway */
        }
    }
}

/* inbox_take - detach every node and return them oldest first. */
struct inbox_node *inbox_take(struct inbox *ib)
{
    /* A1: acquire the pushed nodes; pairs with R1 in inbox_push(). */
    struct inbox_node *n = atomic_exchange_explicit(&ib->head, NULL, memory_order_acquire);
    struct inbox_node *fifo = NULL;
    while (n) {
        struct inbox_node *next = n->next;
        n->next = fifo;
        fifo = n;
        n = next;
    }
    return fifo;
}
