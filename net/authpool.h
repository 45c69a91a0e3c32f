/* authpool.h - password verification off the io_uring worker threads: a
 * few verifier threads run crypt_r(3) against the users file hashes of a
 * snapshot's directory. Unknown and locked users are verified against a
 * dummy hash of the same scheme, so the time taken does not tell whether a
 * user exists. Results come back to the submitting worker through its own
 * inbox: a lock-free list the worker drains without locking, plus a write to
 * the worker's eventfd when the inbox goes from empty to non-empty.
 *
 * Threads: authpool_new/authpool_free from the main thread; authpool_submit
 * from any thread; an inbox is drained only by its owning worker. */
#ifndef MXRING_AUTHPOOL_H
#define MXRING_AUTHPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct authpool;
struct inbox;
struct snap;

#define AUTHPOOL_THREADS_DEFAULT 2
#define AUTHPOOL_PENDING_DEFAULT 64 /* queued + running, whole pool */

/* The outcome of one verification. Every failure is answered the same way
 * to the client (535); the distinction is for the log only. */
enum authpool_status {
    AUTHPOOL_OK = 0,       /* the password matches */
    AUTHPOOL_BAD_PASSWORD, /* known user, wrong password */
    AUTHPOOL_NO_USER,      /* not in the users file */
    AUTHPOOL_LOCKED,       /* the hash starts with '*' or '!' */
    AUTHPOOL_BAD_HASH,     /* crypt_r could not use the stored hash */
};

/* authpool_submit() results. */
enum authpool_submit_rc {
    AUTHPOOL_QUEUED = 0, /* exactly one result will reach the inbox */
    AUTHPOOL_BUSY,       /* the pending limit is reached (or ENOMEM): reply 454 */
    AUTHPOOL_INVALID,    /* user or password too long, or a NUL in the password */
};

struct authpool_result {
    uint64_t cookie; /* as passed to authpool_submit */
    enum authpool_status status;
};

/* authpool_new - start threads verifier threads (0 = default) accepting at
 * most max_pending requests at a time (0 = default). NULL with one line in
 * err on failure. */
struct authpool *authpool_new(unsigned threads, unsigned max_pending, char *err, size_t errlen);
/* authpool_free - stop and join the verifier threads (NULL is fine).
 * Requests still queued are wiped and dropped without a result: call it
 * after the workers stopped submitting and draining. */
void authpool_free(struct authpool *p);

/* authpool_seed_dummy - use hash (any user's, ideally of the directory's
 * most common scheme) as the dummy for unknown and locked users from now on.
 * Until seeded, the dummy is a libcrypt default-scheme hash (yescrypt on
 * Debian 12), replaced by each real hash verified. False (and no change)
 * when crypt(3) cannot use hash. Any thread. */
bool authpool_seed_dummy(struct authpool *p, const char *hash);

/* Result inboxes: one per worker, made with inbox_new(efd) (inbox.h): efd,
 * the worker's eventfd, is written (value 1) when a result lands in an
 * empty inbox; -1 for none (the owner polls). */
/* authpool_inbox_free - free an inbox and any undrained results. No
 * request addressed to it may still be in flight (authpool_free first). */
void authpool_inbox_free(struct inbox *ib);

/* authpool_submit - queue a check of user[0..user_len) (the full address,
 * as in the users file) and pass[0..pass_len) against s's directory. The
 * pool copies both (the password copy is wiped after use: wipe yours too)
 * and holds a reference to s until done. The result goes to ib with cookie. */
enum authpool_submit_rc authpool_submit(struct authpool *p, struct inbox *ib, struct snap *s,
                                        const char *user, size_t user_len, const char *pass,
                                        size_t pass_len, uint64_t cookie);

/* authpool_drain - owner only: call fn for every result in ib, oldest
 * first, and return how many. Call it whenever the eventfd fires (a wake-up
 * may find nothing: results can be drained before their wake-up is read). */
size_t authpool_drain(struct inbox *ib, void (*fn)(void *arg, const struct authpool_result *r),
                      void *arg);

/* authpool_status_text - log reason: "ok", "wrong password", "no such user",
 * "user locked", "unusable password hash". */
const char *authpool_status_text(enum authpool_status st);

#endif
