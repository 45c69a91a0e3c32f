/* uring.c - generic io_uring helpers (see uring.h for the user_data
 * layout): getting an SQE, timeouts and cancels. Stateless; each call acts
 * on the ring it is given, from that ring's own thread. */
#include "uring.h"

#include "util.h"

#define MS_PER_S 1000u
#define NS_PER_MS 1000000L

_Static_assert(URING_TAG_CALLBACK != 0 && URING_TAG_CALLBACK <= URING_TAG_MASK,
               "the callback tag must be a non-zero tag");

/* uring_get_sqe - see uring.h. */
struct io_uring_sqe *uring_get_sqe(struct io_uring *ring)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) {
        io_uring_submit(ring);
        sqe = io_uring_get_sqe(ring);
    }
    if (!sqe)
        die("io_uring submission queue stuck");
    return sqe;
}

/* uring_ms_to_ts - see uring.h. */
void uring_ms_to_ts(struct __kernel_timespec *ts, uint64_t ms)
{
    ts->tv_sec = (long long)(ms / MS_PER_S);
    ts->tv_nsec = (long long)(ms % MS_PER_S) * NS_PER_MS;
}

/* uring_timeout_arm - see uring.h. */
void uring_timeout_arm(struct io_uring *ring, struct __kernel_timespec *ts, uint64_t ms,
                       uint64_t ud)
{
    uring_ms_to_ts(ts, ms);
    struct io_uring_sqe *sqe = uring_get_sqe(ring);
    io_uring_prep_timeout(sqe, ts, 0, 0);
    io_uring_sqe_set_data64(sqe, ud);
}

/* uring_timeout_cancel - see uring.h. */
void uring_timeout_cancel(struct io_uring *ring, uint64_t ud)
{
    struct io_uring_sqe *sqe = uring_get_sqe(ring);
    io_uring_prep_timeout_remove(sqe, ud, 0);
    io_uring_sqe_set_data64(sqe, 0);
}

/* uring_cancel - see uring.h. */
void uring_cancel(struct io_uring *ring, uint64_t ud)
{
    struct io_uring_sqe *sqe = uring_get_sqe(ring);
    io_uring_prep_cancel64(sqe, ud, 0);
    io_uring_sqe_set_data64(sqe, 0);
}
