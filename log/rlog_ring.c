/* rlog_ring.c - the single-producer/single-consumer byte ring of the
 * receivelog: variable-length 16-byte-aligned records, free-running head and
 * tail counters masked by a power-of-two size, a wrap marker where a record
 * would not fit before the end. Producer calls (_spsc reserve/commit) come
 * from the ring's one worker; consumer calls (refresh/peek/pop) from the
 * flusher (or a test thread). No locks, no allocation after init.
 *
 * Ordering (each pair labelled at both ends):
 *   R1 commit stores head (release)  -> A2 refresh loads head (acquire):
 *      the record bytes are visible before the consumer reads them.
 *   R2 pop stores tail (release)     -> A1 reserve loads tail (acquire):
 *      the consumer has finished reading bytes before they are reused. */
#include "rlog_int.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define RING_SPINS 256 /* tail reloads before the producer starts yielding */

/* rlog_rec_size - bytes a record with text_len bytes of text occupies. */
size_t rlog_rec_size(size_t text_len)
{
    return (sizeof(struct rlog_rec) + text_len + RLOG_REC_ALIGN - 1) &
           ~(size_t)(RLOG_REC_ALIGN - 1);
}

/* rlog_ring_init - allocate a ring of bytes (a power of two >= RLOG_RING_MIN;
 * 0 = default). 0 or -EINVAL/-ENOMEM. */
int rlog_ring_init(struct rlog_ring *r, size_t bytes)
{
    if (bytes == 0)
        bytes = RLOG_RING_DEFAULT;
    if (bytes < RLOG_RING_MIN || (bytes & (bytes - 1)) != 0)
        return -EINVAL;
    memset(r, 0, sizeof(*r));
    r->buf = aligned_alloc(RLOG_CACHELINE, bytes);
    if (!r->buf)
        return -ENOMEM;
    memset(r->buf, 0, bytes); /* fault the pages in now, not in a worker's put */
    r->mask = bytes - 1;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->busy, 0);
    atomic_init(&r->stalls, 0);
    r->idle = true;
    return 0;
}

/* rlog_ring_fini - free the buffer. */
void rlog_ring_fini(struct rlog_ring *r)
{
    free(r->buf);
    r->buf = NULL;
}

/* rlog_futex_wake - bump *w and wake a thread waiting on it. */
void rlog_futex_wake(_Atomic uint32_t *w)
{
    atomic_fetch_add_explicit(w, 1, memory_order_relaxed);
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* rlog_futex_wait - sleep up to timeout_ns unless *w != seen or woken. */
void rlog_futex_wait(_Atomic uint32_t *w, uint32_t seen, long timeout_ns)
{
    struct timespec ts = {timeout_ns / 1000000000L, timeout_ns % 1000000000L};
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
}

/* ring_wait_room - producer: wait until total bytes are free. Spins on the
 * tail a bounded number of times, then yields; counts one stall per wait
 * and wakes the flusher (the only syscalls of the put path). */
static void ring_wait_room(struct rlog_ring *r, uint64_t total)
{
    uint64_t size = r->mask + 1;
    unsigned spins = 0;
    bool stalled = false;
    for (;;) {
        /* A1: pairs with R2 in rlog_ring_pop_spsc() */
        r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (size - (r->phead - r->tail_cache) >= total)
            return;
        if (!stalled) {
            stalled = true;
            atomic_fetch_add_explicit(&r->stalls, 1, memory_order_relaxed);
            if (r->wake)
                rlog_futex_wake(r->wake);
        }
        if (++spins > RING_SPINS)
            sched_yield();
    }
}

/* rlog_ring_reserve_spsc - producer: contiguous room for a record of up to
 * need bytes (need <= RLOG_REC_ALIGN + RLOG_LINE_MAX + padding). Writes a wrap
 * marker first when the end of the buffer is too close; the marker becomes
 * visible with the record at commit. Waits while the ring is full. */
struct rlog_rec *rlog_ring_reserve_spsc(struct rlog_ring *r, size_t need)
{
    uint64_t size = r->mask + 1;
    uint64_t pos = r->phead & r->mask;
    uint64_t room = size - pos;
    need = rlog_rec_size(need - sizeof(struct rlog_rec));
    uint64_t total = room < need ? room + need : need;
    if (size - (r->phead - r->tail_cache) < total)
        ring_wait_room(r, total);
    if (room < need) {
        struct rlog_rec *w = (struct rlog_rec *)(r->buf + pos);
        w->kind = RLOG_KIND_WRAP;
        w->len = 0;
        r->phead += room;
        pos = 0;
    }
    return (struct rlog_rec *)(r->buf + pos);
}

/* rlog_ring_commit_spsc - producer: publish the reserved record (and any
 * wrap marker before it); used <= the reserved size. */
void rlog_ring_commit_spsc(struct rlog_ring *r, size_t used)
{
    r->phead += rlog_rec_size(used - sizeof(struct rlog_rec));
    /* R1: pairs with A2 in rlog_ring_refresh_spsc() */
    atomic_store_explicit(&r->head, r->phead, memory_order_release);
}

/* rlog_ring_refresh_spsc - consumer: snapshot the head; peek sees records
 * committed up to this snapshot. */
void rlog_ring_refresh_spsc(struct rlog_ring *r)
{
    /* A2: pairs with R1 in rlog_ring_commit_spsc() */
    r->chead = atomic_load_explicit(&r->head, memory_order_acquire);
}

/* rlog_ring_peek_spsc - consumer: the oldest record in the snapshot, or
 * NULL. Skips (and releases) wrap markers. */
const struct rlog_rec *rlog_ring_peek_spsc(struct rlog_ring *r)
{
    while (r->ctail != r->chead) {
        uint64_t pos = r->ctail & r->mask;
        const struct rlog_rec *rec = (const struct rlog_rec *)(r->buf + pos);
        if (rec->kind != RLOG_KIND_WRAP)
            return rec;
        r->ctail += r->mask + 1 - pos;
        /* R2: pairs with A1 in ring_wait_room() */
        atomic_store_explicit(&r->tail, r->ctail, memory_order_release);
    }
    return NULL;
}

/* rlog_ring_pop_spsc - consumer: release the record peek returned. */
void rlog_ring_pop_spsc(struct rlog_ring *r)
{
    const struct rlog_rec *rec = (const struct rlog_rec *)(r->buf + (r->ctail & r->mask));
    r->seen_ts = rec->ts;
    r->ctail += rlog_rec_size(rec->len);
    /* R2: pairs with A1 in ring_wait_room() */
    atomic_store_explicit(&r->tail, r->ctail, memory_order_release);
}
