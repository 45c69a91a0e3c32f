/* milterio_pool.h - the worker's idle milter connections (private to
 * net/milterio*.c): a conversation whose milter is at end of message
 * (libmilter's ST_ENDM: the last end of message answered "continue") is
 * ended with SMFIC_QUIT_NC instead of SMFIC_QUIT and parked here, still
 * negotiated; the next session of that worker takes it and starts at
 * SMFIC_CONNECT (libmilter accepts only CONNECT after QUIT_NC: no new
 * OPTNEG). At most MILTERIO_POOL_MAX idle connections per milter, each
 * at most MILTERIO_POOL_IDLE_MS. Per worker thread (thread-local); plain
 * close() of sockets that leave, which never blocks. */
#ifndef MXRING_MILTERIO_POOL_H
#define MXRING_MILTERIO_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

#define MILTERIO_POOL_MAX 16u        /* idle connections per milter and worker */
#define MILTERIO_POOL_IDLE_MS 30000u /* an idle connection older than this is closed */

/* An idle, negotiated connection. */
struct mpool_conn {
    int fd;
    uint32_t actions, proto; /* what the milter negotiated */
};

/* mpool_take - an idle connection to sock (the youngest), now_ms the
 * monotonic clock; false when there is none. Expired ones are closed. */
bool mpool_take(const struct cfg_socket *sock, uint64_t now_ms, struct mpool_conn *out);
/* mpool_put - park c (QUIT_NC said) for sock; closed when the pool of that
 * milter is full. */
void mpool_put(const struct cfg_socket *sock, uint64_t now_ms, const struct mpool_conn *c);
/* mpool_idle - idle connections parked on this thread (tests, metrics). */
unsigned mpool_idle(void);

#endif
