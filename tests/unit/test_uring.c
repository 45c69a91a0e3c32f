/* test_uring.c - net/uring.c on a real io_uring ring: the user_data tag
 * layout round-trips, the SQE getter submits when the SQ is full, and
 * timeouts fire, or complete -ECANCELED when removed, through uring_cb.
 * Description: tag encode/decode, full SQ, timeout arm/cancel, ms->timespec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <unistd.h>

#include "uring.h"

/* seen - one callback object and the results it got. */
struct seen {
    struct uring_cb cb;
    int res[4];
    unsigned n;
};

/* on_cqe - record one completion of a struct seen. */
static void on_cqe(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    struct seen *s = (struct seen *)cb;
    if (s->n < 4)
        s->res[s->n] = cqe->res;
    s->n++;
}

/* reap - wait for want completions; dispatch callbacks, count the rest. */
static unsigned reap(struct io_uring *ring, unsigned want)
{
    unsigned others = 0;
    while (want) {
        struct io_uring_cqe *cqe;
        assert_int_equal(io_uring_submit_and_wait(ring, 1) >= 0, 1);
        while (want && io_uring_peek_cqe(ring, &cqe) == 0) {
            if (!uring_cb_dispatch(cqe))
                others++;
            io_uring_cqe_seen(ring, cqe);
            want--;
        }
    }
    return others;
}

/* test_uring_tag_roundtrip - object and tag come back apart. */
static void test_uring_tag_roundtrip(void **state)
{
    (void)state;
    static struct seen s;
    for (unsigned tag = 0; tag <= URING_TAG_MASK; tag++) {
        uint64_t ud = uring_ud(&s, tag);
        assert_ptr_equal(uring_ud_obj(ud), &s);
        assert_int_equal(uring_ud_tag(ud), tag);
    }
    assert_int_equal(uring_ud_tag(uring_cb_data(&s.cb)), URING_TAG_CALLBACK);
    assert_ptr_equal(uring_ud_obj(uring_cb_data(&s.cb)), &s.cb);
    assert_int_equal(uring_ud_tag(0), 0);
    assert_null(uring_ud_obj(0));
}

/* test_uring_ms_to_ts - seconds and nanoseconds split exactly. */
static void test_uring_ms_to_ts(void **state)
{
    (void)state;
    struct __kernel_timespec ts;
    uring_ms_to_ts(&ts, 0);
    assert_int_equal(ts.tv_sec, 0);
    assert_int_equal(ts.tv_nsec, 0);
    uring_ms_to_ts(&ts, 2500);
    assert_int_equal(ts.tv_sec, 2);
    assert_int_equal(ts.tv_nsec, 500000000);
    uring_ms_to_ts(&ts, 999);
    assert_int_equal(ts.tv_sec, 0);
    assert_int_equal(ts.tv_nsec, 999000000);
}

/* test_uring_get_sqe_full - more SQEs than the SQ holds: each is real and
 * every NOP completes. */
static void test_uring_get_sqe_full(void **state)
{
    (void)state;
    struct io_uring ring;
    assert_int_equal(io_uring_queue_init(4, &ring, 0), 0);
    struct seen s = {.cb.fn = on_cqe};
    for (int i = 0; i < 11; i++) {
        struct io_uring_sqe *sqe = uring_get_sqe(&ring);
        assert_non_null(sqe);
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data64(sqe, uring_cb_data(&s.cb));
    }
    assert_int_equal(reap(&ring, 11), 0);
    assert_int_equal(s.n, 11);
    io_uring_queue_exit(&ring);
}

/* test_uring_timeout_fires - an armed timeout completes -ETIME. */
static void test_uring_timeout_fires(void **state)
{
    (void)state;
    struct io_uring ring;
    assert_int_equal(io_uring_queue_init(8, &ring, 0), 0);
    struct seen s = {.cb.fn = on_cqe};
    struct __kernel_timespec ts;
    uring_timeout_arm(&ring, &ts, 5, uring_cb_data(&s.cb));
    assert_int_equal(reap(&ring, 1), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.res[0], -ETIME);
    io_uring_queue_exit(&ring);
}

/* test_uring_timeout_cancel - a removed timeout completes -ECANCELED and
 * the removal's own completion carries user_data 0 (not a callback). */
static void test_uring_timeout_cancel(void **state)
{
    (void)state;
    struct io_uring ring;
    assert_int_equal(io_uring_queue_init(8, &ring, 0), 0);
    struct seen s = {.cb.fn = on_cqe};
    struct __kernel_timespec ts;
    uring_timeout_arm(&ring, &ts, 60000, uring_cb_data(&s.cb));
    assert_int_equal(io_uring_submit(&ring), 1);
    uring_timeout_cancel(&ring, uring_cb_data(&s.cb));
    assert_int_equal(reap(&ring, 2), 1);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.res[0], -ECANCELED);
    io_uring_queue_exit(&ring);
}

/* test_uring_cancel_read - a cancelled read of an idle pipe completes
 * -ECANCELED; the cancel request is not a callback. */
static void test_uring_cancel_read(void **state)
{
    (void)state;
    struct io_uring ring;
    assert_int_equal(io_uring_queue_init(8, &ring, 0), 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct seen s = {.cb.fn = on_cqe};
    char c;
    struct io_uring_sqe *sqe = uring_get_sqe(&ring);
    io_uring_prep_read(sqe, p[0], &c, 1, 0);
    io_uring_sqe_set_data64(sqe, uring_cb_data(&s.cb));
    assert_int_equal(io_uring_submit(&ring), 1);
    uring_cancel(&ring, uring_cb_data(&s.cb));
    assert_int_equal(reap(&ring, 2), 1);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.res[0], -ECANCELED);
    close(p[0]);
    close(p[1]);
    io_uring_queue_exit(&ring);
}

int main(void)
{
    struct io_uring probe;
    if (io_uring_queue_init(2, &probe, 0) < 0)
        return 77; /* no io_uring here: skip */
    io_uring_queue_exit(&probe);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uring_tag_roundtrip),  cmocka_unit_test(test_uring_ms_to_ts),
        cmocka_unit_test(test_uring_get_sqe_full),   cmocka_unit_test(test_uring_timeout_fires),
        cmocka_unit_test(test_uring_timeout_cancel), cmocka_unit_test(test_uring_cancel_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
