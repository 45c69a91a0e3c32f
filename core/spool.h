/* spool.h - the durable queue's file format and names: queue ids, the
 * envelope header and the Received: trace header (pure formatting), and the
 * start-up preparation of <workdir>/queue/{tmp,new}. The asynchronous
 * write/fsync/rename chain itself runs in net/worker.c through io_uring. */
#ifndef MXRING_SPOOL_H
#define MXRING_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util.h"

struct sess_msg;

#define SPOOL_ID_LEN 20 /* hex digits in a queue id */
#define SPOOL_MAGIC "MXRING-QUEUE 1"
#define SPOOL_MAGIC_DSN \
    "MXRING-QUEUE 2" /* the envelope carries DSN lines (ret, envid,
                                            notify, orcpt): README "Queue file format" */

/* spool_make_id - a queue id unique for this host: time (s, us), worker
 * index and a per-worker sequence number, 20 upper-case hex digits. */
void spool_make_id(char out[SPOOL_ID_LEN + 1], const struct timespec *now, unsigned worker,
                   uint32_t seq);

/* spool_id_time_us - the time a queue id was made (Unix microseconds, the
 * seconds as their low 32 bits were written: ids made before 2106); -1
 * when id does not start with 13 hex digits. */
int64_t spool_id_time_us(const char *id);

/* spool_format_header - the queue file's envelope block followed by the
 * Received: header, appended to out (the message bytes follow it in the
 * file). Returns false on ENOMEM. See README "Queue file format". */
bool spool_format_header(struct sb *out, const struct sess_msg *m, const char *queue_id,
                         const char *hostname, const struct timespec *now);

/* spool_prepare - create <workdir>/queue/{tmp,new} if needed and remove
 * stale files from tmp/ (never acknowledged). 0, or -1 with a message. */
int spool_prepare(const char *workdir, char *err, size_t errlen);

#endif
