/* uring_cb.h - the worker's extension point for io_uring operations owned
 * by other modules (filters, ...): such an operation's user_data is a
 * pointer to a struct uring_cb tagged OP_CALLBACK; its completion is handed
 * to cb->fn on the worker thread. Modules get SQEs through uring_get_sqe(),
 * which submits when the submission queue is full. */
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

#endif
