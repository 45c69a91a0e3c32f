/* uring.h - the generic io_uring helpers every module that owns ring
 * operations uses: one user_data tag layout with its encode/decode helpers,
 * the callback way for modules (struct uring_cb), an SQE getter that
 * submits when the submission queue is full, and timeouts and cancels.
 * Functions act on the ring they are given, on that ring's thread only.
 *
 * user_data layout (the only definition; every module and test uses it):
 *   63 ............................ 4 | 3..0
 *   object pointer (16-byte aligned)  | tag
 *   - 0 (no object, tag 0): a request whose completion nobody wants
 *     (cancels, timeout removals); the dispatcher ignores it.
 *   - URING_TAG_CALLBACK: the object is a struct uring_cb; its completion
 *     goes to cb->fn. This is how modules other than the loop's owner
 *     (filters, ...) register their operations.
 *   - every other tag 1..URING_TAG_MASK belongs to the loop's owner (the
 *     worker's enum op in worker.c), which decodes it with uring_ud_obj()
 *     and uring_ud_tag(). */
#ifndef MXRING_URING_H
#define MXRING_URING_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#define URING_TAG_BITS 4
#define URING_TAG_MASK ((1u << URING_TAG_BITS) - 1)
/* URING_TAG_CALLBACK - the tag of a struct uring_cb. */
#define URING_TAG_CALLBACK 5u
/* URING_OBJ_ALIGN - objects named in user_data are at least this aligned. */
#define URING_OBJ_ALIGN (1u << URING_TAG_BITS)

/* uring_ud - encode object obj (URING_OBJ_ALIGN-aligned) and tag. */
static inline uint64_t uring_ud(const void *obj, unsigned tag)
{
    return (uint64_t)(uintptr_t)obj | (uint64_t)(tag & URING_TAG_MASK);
}

/* uring_ud_obj - the object pointer of user_data ud. */
static inline void *uring_ud_obj(uint64_t ud)
{
    return (void *)(uintptr_t)(ud & ~(uint64_t)URING_TAG_MASK);
}

/* uring_ud_tag - the tag of user_data ud. */
static inline unsigned uring_ud_tag(uint64_t ud)
{
    return (unsigned)(ud & URING_TAG_MASK);
}

/* struct uring_cb - one operation of a module: embed it (aligned) in the
 * object that owns the operation; fn gets the CQE on the ring's thread. */
struct uring_cb {
    _Alignas(URING_OBJ_ALIGN) void (*fn)(struct uring_cb *cb, struct io_uring_cqe *cqe);
};

/* uring_cb_data - the user_data value for cb. */
static inline uint64_t uring_cb_data(struct uring_cb *cb)
{
    return uring_ud(cb, URING_TAG_CALLBACK);
}

/* uring_cb_dispatch - if cqe belongs to a struct uring_cb, hand it to its
 * fn and return true; false for every other tag. */
static inline bool uring_cb_dispatch(struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    if (uring_ud_tag(ud) != URING_TAG_CALLBACK)
        return false;
    struct uring_cb *cb = uring_ud_obj(ud);
    cb->fn(cb, cqe);
    return true;
}

/* uring_setup - init ring (sq entries; cq entries, 0 = the default) with
 * the best flags this kernel takes: single issuer with DEFER_TASKRUN
 * (completions run in one batch when the owner waits), else COOP_TASKRUN,
 * else none. other_thread: the ring is made here but used by another
 * thread, so a single-issuer ring starts disabled (*disabled set) and that
 * thread calls uring_enable first. 0 or -errno. */
int uring_setup(struct io_uring *ring, unsigned sq, unsigned cq, bool other_thread, bool *disabled);
/* uring_enable - the calling thread becomes the one submitter of a ring
 * uring_setup made disabled. 0 or -errno. */
int uring_enable(struct io_uring *ring);

/* uring_get_sqe - an SQE of ring, submitting pending ones first if full;
 * never NULL (dies when the ring is broken). */
struct io_uring_sqe *uring_get_sqe(struct io_uring *ring);

/* uring_ms_to_ts - ms milliseconds as an io_uring timespec. */
void uring_ms_to_ts(struct __kernel_timespec *ts, uint64_t ms);

/* uring_timeout_arm - a relative timeout of ms completing with user_data
 * ud (-ETIME when it fires). ts must stay valid until it is submitted. */
void uring_timeout_arm(struct io_uring *ring, struct __kernel_timespec *ts, uint64_t ms,
                       uint64_t ud);

/* uring_timeout_cancel - remove the timeout tagged ud; its CQE comes back
 * -ECANCELED unless it fired already. The removal itself carries 0. */
void uring_timeout_cancel(struct io_uring *ring, uint64_t ud);

/* uring_cancel - cancel the operation tagged ud; its CQE still arrives.
 * The cancel request itself carries 0. */
void uring_cancel(struct io_uring *ring, uint64_t ud);

#endif
