/* test_rlog_ring.c - the receivelog SPSC byte ring on its own: record
 * order, contents and wrap-around with records of varying sizes.
 * Description: single-threaded producer/consumer interleavings. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "rlog_int.h"

#define RING_BYTES 8192u
#define NRECS 50000u

/* rng - xorshift for deterministic sizes. */
static uint32_t rng(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* fill - payload of record seq: bytes derived from seq. */
static void fill(char *p, size_t n, uint32_t seq)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + (seq + i) % 26);
}

/* produce - one record of len text bytes numbered seq. */
static void produce(struct rlog_ring *r, uint32_t seq, size_t len)
{
    struct rlog_rec *rec = rlog_ring_reserve_spsc(r, sizeof(*rec) + len);
    fill(rec->text, len, seq);
    rec->ts = seq;
    rec->sid = seq * 7u;
    rec->len = (uint16_t)len;
    rec->kind = RLOG_DIALOG;
    rlog_ring_commit_spsc(r, sizeof(*rec) + len);
}

/* consume_one - check the next record is seq with len bytes. */
static void consume_one(struct rlog_ring *r, uint32_t seq, size_t len)
{
    char want[RLOG_LINE_MAX];
    const struct rlog_rec *rec = rlog_ring_peek_spsc(r);
    assert_non_null(rec);
    assert_int_equal(rec->ts, seq);
    assert_int_equal(rec->sid, seq * 7u);
    assert_int_equal(rec->len, len);
    fill(want, len, seq);
    assert_memory_equal(rec->text, want, len);
    rlog_ring_pop_spsc(r);
}

/* free_bytes - producer's view of free space (test only). */
static size_t free_bytes(struct rlog_ring *r)
{
    return (size_t)(r->mask + 1 - (r->phead - atomic_load(&r->tail)));
}

/* test_rlog_ring_order_wrap - many wraps, varying sizes, FIFO order kept. */
static void test_rlog_ring_order_wrap(void **state)
{
    (void)state;
    struct rlog_ring r;
    assert_int_equal(rlog_ring_init(&r, RING_BYTES), 0);
    uint32_t s = 12345, next_in = 0, next_out = 0;
    size_t lens[NRECS];
    while (next_out < NRECS) {
        /* produce a burst while the worst case record still fits */
        unsigned burst = rng(&s) % 8;
        for (unsigned k = 0; k < burst && next_in < NRECS; k++) {
            size_t len = rng(&s) % 5 == 0 ? rng(&s) % RLOG_LINE_MAX : rng(&s) % 100;
            if (free_bytes(&r) < 2 * rlog_rec_size(len))
                break;
            lens[next_in] = len;
            produce(&r, next_in++, len);
        }
        rlog_ring_refresh_spsc(&r);
        unsigned take = rng(&s) % 8;
        for (unsigned k = 0; k < take && next_out < next_in; k++, next_out++)
            consume_one(&r, next_out, lens[next_out]);
        if (next_in == next_out)
            assert_null(rlog_ring_peek_spsc(&r));
    }
    /* the head went around the buffer many times */
    assert_true(atomic_load(&r.head) > 100u * RING_BYTES);
    assert_int_equal(atomic_load(&r.head), atomic_load(&r.tail));
    rlog_ring_fini(&r);
}

/* test_rlog_ring_snapshot - peek only sees records up to the refresh. */
static void test_rlog_ring_snapshot(void **state)
{
    (void)state;
    struct rlog_ring r;
    assert_int_equal(rlog_ring_init(&r, RING_BYTES), 0);
    produce(&r, 1, 10);
    assert_null(rlog_ring_peek_spsc(&r));
    rlog_ring_refresh_spsc(&r);
    produce(&r, 2, 10);
    consume_one(&r, 1, 10);
    assert_null(rlog_ring_peek_spsc(&r));
    rlog_ring_refresh_spsc(&r);
    consume_one(&r, 2, 10);
    rlog_ring_fini(&r);
}

/* test_rlog_ring_exact_fit_wrap - records that end exactly at the buffer
 * end need no wrap marker: a full ring of exactly RING_BYTES, many times. */
static void test_rlog_ring_exact_fit_wrap(void **state)
{
    (void)state;
    struct rlog_ring r;
    assert_int_equal(rlog_ring_init(&r, RING_BYTES), 0);
    const size_t big = RLOG_LINE_MAX; /* 2064-byte records */
    const size_t last = RING_BYTES - 3 * rlog_rec_size(big) - sizeof(struct rlog_rec);
    uint32_t seq = 0;
    for (int round = 1; round <= 5; round++) {
        for (int k = 0; k < 4; k++)
            produce(&r, seq + (uint32_t)k, k < 3 ? big : last);
        assert_int_equal(atomic_load(&r.head), (uint64_t)round * RING_BYTES);
        assert_int_equal(free_bytes(&r), 0);
        rlog_ring_refresh_spsc(&r);
        for (int k = 0; k < 4; k++)
            consume_one(&r, seq + (uint32_t)k, k < 3 ? big : last);
        seq += 4;
    }
    rlog_ring_fini(&r);
}

/* test_rlog_ring_init_sizes - power of two and a minimum size. */
static void test_rlog_ring_init_sizes(void **state)
{
    (void)state;
    struct rlog_ring r;
    assert_int_equal(rlog_ring_init(&r, RING_BYTES + 16), -EINVAL);
    assert_int_equal(rlog_ring_init(&r, RLOG_RING_MIN / 2), -EINVAL);
    assert_int_equal(rlog_ring_init(&r, 0), 0);
    assert_int_equal(r.mask + 1, RLOG_RING_DEFAULT);
    rlog_ring_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rlog_ring_order_wrap),
        cmocka_unit_test(test_rlog_ring_snapshot),
        cmocka_unit_test(test_rlog_ring_exact_fit_wrap),
        cmocka_unit_test(test_rlog_ring_init_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
