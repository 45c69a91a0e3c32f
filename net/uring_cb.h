/* uring_cb.h - the worker's extension point for io_uring operations owned
 * by other modules (filters, ...): such an operation's user_data is a
 * pointer to a struct uring_cb tagged OP_CALLBACK; its completion is handed
 * to cb->fn on the worker thread. Modules get SQEs through uring_get_sqe(),
 * which submits when the submission queue is full, and arm and cancel
 * timeouts and operations through the helpers below (the same names as the
 * coming net/uring.h, which replaces this header). */
#ifndef MXRING_URING_CB_H
#define MXRING_URING_CB_H

#include <liburing.h>
#include <stdint.h>

struct uring_cb {
    _Alignas(16) void (*fn)(struct uring_cb *cb, struct io_uring_cqe *cqe);
};

/* URING_OP_CALLBACK - the low-bits tag of user_data for callbacks. */
#define URING_OP_CALLBACK 5u

/* uring_cb_data - the user_data value for cb. */
static inline uint64_t uring_cb_data(struct uring_cb *cb)
{
    return (uint64_t)(uintptr_t)cb | URING_OP_CALLBACK;
}

/* uring_get_sqe - an SQE of ring, submitting pending ones first if full;
 * never NULL (dies when the ring is broken). */
struct io_uring_sqe *uring_get_sqe(struct io_uring *ring);

/* uring_ms_to_ts - ms milliseconds as an io_uring timespec. */
static inline void uring_ms_to_ts(struct __kernel_timespec *ts, uint64_t ms)
{
    ts->tv_sec = (long long)(ms / 1000u);
    ts->tv_nsec = (long long)(ms % 1000u) * 1000000LL;
}

/* uring_timeout_arm - a relative timeout of ms completing with user_data
 * ud (-ETIME when it fires). ts must stay valid until it is submitted. */
static inline void uring_timeout_arm(struct io_uring *ring, struct __kernel_timespec *ts,
                                     uint64_t ms, uint64_t ud)
{
    uring_ms_to_ts(ts, ms);
    struct io_uring_sqe *sqe = uring_get_sqe(ring);
    io_uring_prep_timeout(sqe, ts, 0, 0);
    io_uring_sqe_set_data64(sqe, ud);
}

/* uring_timeout_cancel - remove the timeout tagged ud; its CQE comes back
 * -ECANCELED unless it fired already. The removal itself carries 0. */
static inline void uring_timeout_cancel(struct io_uring *ring, uint64_t ud)
{
    struct io_uring_sqe *sqe = uring_get_sqe(ring);
    io_uring_prep_timeout_remove(sqe, ud, 0);
    io_uring_sqe_set_data64(sqe, 0);
}

/* uring_cancel - cancel the operation tagged ud; its CQE still arrives.
 * The cancel request itself carries 0. */
static inline void uring_cancel(struct io_uring *ring, uint64_t ud)
{
    struct io_uring_sqe *sqe = uring_get_sqe(ring);
    io_uring_prep_cancel64(sqe, ud, 0);
    io_uring_sqe_set_data64(sqe, 0);
}

#endif
