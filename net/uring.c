/* uring.c - generic io_uring helpers (see uring.h for the user_data
 * layout): getting an SQE, timeouts and cancels. Stateless; each call acts
 * on the ring it is given, from that ring's own thread. */
#include "uring.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util.h"

#define MS_PER_S 1000u
#define NS_PER_MS 1000000L

_Static_assert(URING_TAG_CALLBACK != 0 && URING_TAG_CALLBACK <= URING_TAG_MASK,
               "the callback tag must be a non-zero tag");

/* uring_setup - see uring.h. */
int uring_setup(struct io_uring *ring, unsigned sq, unsigned cq, bool other_thread, bool *disabled)
{
    const unsigned cqf = cq ? IORING_SETUP_CQSIZE : 0;
    const unsigned tries[] = {
        cqf | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
            (other_thread ? IORING_SETUP_R_DISABLED : 0),
        cqf | IORING_SETUP_COOP_TASKRUN,
        cqf,
    };
    int r = -EINVAL;
    *disabled = false;
    for (size_t i = 0; i < MX_ARRAY_LEN(tries) && r == -EINVAL; i++) {
        struct io_uring_params p = {.flags = tries[i], .cq_entries = cq};
        r = io_uring_queue_init_params(sq, ring, &p);
        *disabled = r == 0 && (tries[i] & IORING_SETUP_R_DISABLED);
    }
    return r;
}

/* uring_enable - see uring.h (liburing 2.3 declares io_uring_enable_rings
 * but does not export it: the register call itself). */
int uring_enable(struct io_uring *ring)
{
    if (syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
        return -errno;
    return 0;
}

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
