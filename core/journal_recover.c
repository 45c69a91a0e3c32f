/* journal_recover.c - the journal recovery planner (see journal_recover.h):
 * pure, over segment bytes fed by the caller. One planner per thread.
 * STUB: the API compiles; the implementation follows. */
#include "journal_recover.h"

#include <errno.h>
#include <stdlib.h>

struct jrn_recovery {
    unsigned worker;
};

struct jrn_recovery *jrn_recovery_new(unsigned worker)
{
    struct jrn_recovery *r = calloc(1, sizeof(*r));
    if (r)
        r->worker = worker;
    return r;
}

int jrn_recovery_segment(struct jrn_recovery *r, uint64_t segno, const uint8_t *buf, size_t len)
{
    (void)r, (void)segno, (void)buf, (void)len;
    return -ENOSYS;
}

int jrn_recovery_finish(struct jrn_recovery *r, const struct jrn_msg **msgs, size_t *n,
                        struct jrn_stats *st)
{
    (void)r, (void)st;
    *msgs = NULL;
    *n = 0;
    return -ENOSYS;
}

const uint8_t *jrn_recovery_bytes(const struct jrn_recovery *r, const struct jrn_extent *e)
{
    (void)r, (void)e;
    return NULL;
}

void jrn_recovery_free(struct jrn_recovery *r)
{
    free(r);
}
