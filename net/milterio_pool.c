/* milterio_pool.c - the worker's idle milter connections (milterio_pool.h):
 * a small thread-local table of parked sockets, keyed by the milter's
 * address. Worker threads only, each its own table; nothing blocks. */
#include "milterio_pool.h"

#include <string.h>
#include <unistd.h>

#define MPOOL_SLOTS 64u /* all milters of a worker together */

struct mpool_slot {
    struct cfg_socket sock; /* the milter (len 0: free slot) */
    struct mpool_conn c;
    uint64_t since_ms; /* parked at */
};

static _Thread_local struct mpool_slot slots[MPOOL_SLOTS];
static _Thread_local unsigned nidle;

/* same_milter - are a and b the same milter address? */
static bool same_milter(const struct cfg_socket *a, const struct cfg_socket *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0 && strcmp(a->text, b->text) == 0;
}

/* slot_drop - close an idle connection and free its slot. */
static void slot_drop(struct mpool_slot *s)
{
    close(s->c.fd);
    s->sock.len = 0;
    nidle--;
}

/* mpool_take - see milterio_pool.h. */
bool mpool_take(const struct cfg_socket *sock, uint64_t now_ms, struct mpool_conn *out)
{
    struct mpool_slot *best = NULL;
    for (unsigned i = 0; i < MPOOL_SLOTS; i++) {
        struct mpool_slot *s = &slots[i];
        if (!s->sock.len)
            continue;
        if (now_ms - s->since_ms > MILTERIO_POOL_IDLE_MS) {
            slot_drop(s);
            continue;
        }
        if (same_milter(&s->sock, sock) && (!best || s->since_ms > best->since_ms))
            best = s;
    }
    if (!best)
        return false;
    *out = best->c;
    best->sock.len = 0;
    nidle--;
    return true;
}

/* mpool_put - see milterio_pool.h. */
void mpool_put(const struct cfg_socket *sock, uint64_t now_ms, const struct mpool_conn *c)
{
    struct mpool_slot *free_slot = NULL, *oldest = NULL;
    unsigned same = 0;
    for (unsigned i = 0; i < MPOOL_SLOTS; i++) {
        struct mpool_slot *s = &slots[i];
        if (s->sock.len && now_ms - s->since_ms > MILTERIO_POOL_IDLE_MS)
            slot_drop(s);
        if (!s->sock.len) {
            free_slot = free_slot ? free_slot : s;
            continue;
        }
        if (same_milter(&s->sock, sock)) {
            same++;
            if (!oldest || s->since_ms < oldest->since_ms)
                oldest = s;
        }
    }
    if (same >= MILTERIO_POOL_MAX && oldest) {
        slot_drop(oldest); /* the youngest are the likeliest still open */
        free_slot = free_slot ? free_slot : oldest;
    }
    if (!free_slot) {
        close(c->fd);
        return;
    }
    free_slot->sock = *sock;
    free_slot->c = *c;
    free_slot->since_ms = now_ms;
    nidle++;
}

/* mpool_idle - see milterio_pool.h. */
unsigned mpool_idle(void)
{
    return nidle;
}
