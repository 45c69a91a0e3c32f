/* deliver.h - the onward delivery engine: one thread with its own io_uring
 * ring that takes committed messages from <workdir>/queue/new/, relays them
 * over SMTP/LMTP to the next hops of the routes in the published snapshot,
 * keeps per-recipient state durable in queue/state/, bounces (RFC 3464)
 * and serves the control socket <workdir>/control.sock for mxringctl.
 * Threads: dlv_start/dlv_stop from the main thread; dlv_notify and
 * dlv_queue_full from any thread (workers, the journal materialiser). */
#ifndef MXRING_DELIVER_H
#define MXRING_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct snap;

/* dlv_enabled - is delivery on for this snapshot (any route)? */
bool dlv_enabled(const struct snap *s);

/* dlv_start - prepare queue/{active,state}, rebuild the schedule from
 * active/ + state/, open the delivery log and the control socket, start the
 * thread (no-op when already running). Dies with a message when it cannot. The engine
 * follows the published snapshot (snap_current) for routes and limits. */
void dlv_start(const char *workdir);

/* dlv_stop - stop the thread: connections are closed (messages in flight
 * keep their state: they are retried at the next start), the delivery log
 * is drained. Call after the workers have stopped. No-op if not started. */
void dlv_stop(void);

/* dlv_notify - new files may be in queue/new/ (or a new snapshot was
 * published): wake the thread now instead of at its next 200 ms poll. */
void dlv_notify(void);

/* dlv_handoff_wanted - any thread (the journal materializer): does the
 * delivery thread take queue files handed to it (dlv_handoff) now? */
bool dlv_handoff_wanted(void);

/* dlv_handoff - the materializer has renamed queue/tmp/ID to
 * queue/active/ID (durable in the journal already): the delivery thread
 * takes it at once, with no rename, inotify event or read of its own.
 * bytes (malloc'd, the whole file, or NULL: the thread reads the file)
 * become the thread's. false when out of memory (bytes freed): the caller
 * moves the file to queue/new/ instead. Only while dlv_handoff_wanted()
 * and before dlv_stop. */
bool dlv_handoff(const char *id, char *bytes, size_t len);

/* dlv_queue_full - sess_env queue_full hook: is the queue over
 * queue_max_messages or the disk below queue_min_free_space? A relaxed
 * load of a flag the delivery thread updates every poll; false while
 * delivery is off. arg is unused. */
bool dlv_queue_full(void *arg);

/* Counters (for the stop line and tests). */
struct dlv_stats {
    uint64_t picked;   /* messages taken from new/ */
    uint64_t sent;     /* recipients delivered */
    uint64_t deferred; /* recipient attempts deferred */
    uint64_t bounced;  /* recipients bounced */
    uint64_t bounces;  /* bounce messages queued */
    uint64_t conns;    /* connections opened */
    uint64_t handed;   /* of picked: handed over by the materializer (dlv_handoff) */
};
void dlv_get_stats(struct dlv_stats *out);

#endif
