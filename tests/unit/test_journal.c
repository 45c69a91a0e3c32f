/* test_journal.c - unit tests of the journal record format (core/journal.c)
 * and the recovery planner (core/journal_recover.c): CRC32C values, encode/
 * decode round trips, transactions over two segments, aborts, checkpoints,
 * truncation at every offset and corruption of every byte. Single-threaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "journal_recover.h"
#include "test_journal_util.h"

#define QA "0000000000000000000A"
#define QB "0000000000000000000B"
#define QC "0000000000000000000C"
#define QD "0000000000000000000D"
#define QE "0000000000000000000E"

/* One planner run and what it returned. */
struct run {
    struct jrn_recovery *r;
    const struct jrn_msg *m;
    size_t n;
    struct jrn_stats st;
};

/* run_segs - plan nseg segments (bufs[i], lens[i], segno first_segno + i). */
static void run_segs(struct run *x, uint64_t first_segno, const uint8_t *const *bufs,
                     const size_t *lens, int nseg)
{
    x->r = jrn_recovery_new(0);
    assert_non_null(x->r);
    for (int i = 0; i < nseg; i++)
        assert_int_equal(jrn_recovery_segment(x->r, first_segno + (uint64_t)i, bufs[i], lens[i]),
                         0);
    assert_int_equal(jrn_recovery_finish(x->r, &x->m, &x->n, &x->st), 0);
}

/* run_one - plan one segment. */
static void run_one(struct run *x, uint64_t segno, const uint8_t *buf, size_t len)
{
    run_segs(x, segno, &buf, &len, 1);
}

/* body_of - message m's body, concatenated from its extents (static). */
static const char *body_of(const struct run *x, const struct jrn_msg *m)
{
    static char out[4096];
    size_t n = 0;
    for (size_t i = 0; i < m->next; i++) {
        const uint8_t *p = jrn_recovery_bytes(x->r, &m->ext[i]);
        assert_non_null(p);
        assert_true(n + m->ext[i].len < sizeof(out));
        memcpy(out + n, p, m->ext[i].len);
        n += m->ext[i].len;
    }
    assert_int_equal(n, m->body_len);
    assert_int_equal(crc32c(0, out, n), m->body_crc);
    out[n] = 0;
    return out;
}

/* head_is - does m's head equal s? */
static void head_is(const struct jrn_msg *m, const char *s)
{
    assert_int_equal(m->head_len, strlen(s));
    assert_memory_equal(m->head, s, m->head_len);
}

/* crc_bitwise - the reference CRC-32C, one bit at a time. */
static uint32_t crc_bitwise(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return ~c;
}

static void test_journal_crc_known_values(void **state)
{
    (void)state;
    assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c(0, "", 0), 0);
    uint8_t zeros[32] = {0};
    assert_int_equal(crc32c(0, zeros, 32), 0x8A9136AAu); /* RFC 3720 B.4 */
    assert_int_equal(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    uint8_t buf[300];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n + off <= sizeof(buf); n += 13)
            assert_int_equal(crc32c(0, buf + off, n), crc_bitwise(buf + off, n));
}

static void test_journal_encode_decode_round_trip(void **state)
{
    (void)state;
    uint8_t rec[JRN_HDR_LEN + 11];
    struct iovec iov[2] = {{"hello ", 6}, {"world", 5}};
    uint32_t n = jrn_encode(rec, JRN_CHUNK, 0, 3, 77, QA, iov, 2);
    assert_int_equal(n, 11);
    memcpy(rec + JRN_HDR_LEN, "hello world", 11);
    struct jrn_rec r;
    assert_int_equal(jrn_decode(rec, sizeof(rec), 77, &r), JRN_OK);
    assert_int_equal(r.type, JRN_CHUNK);
    assert_int_equal(r.worker, 3);
    assert_int_equal(r.segno, 77);
    assert_string_equal(r.qid, QA);
    assert_int_equal(r.len, 11);
    assert_memory_equal(r.payload, "hello world", 11);
    /* another segno: a clean end (recycled segment); cut: torn; zeros: end */
    assert_int_equal(jrn_decode(rec, sizeof(rec), 76, &r), JRN_END);
    assert_int_equal(jrn_decode(rec, sizeof(rec) - 1, 77, &r), JRN_TORN);
    uint8_t zeros[JRN_HDR_LEN] = {0};
    assert_int_equal(jrn_decode(zeros, sizeof(zeros), 77, &r), JRN_END);
    assert_int_equal(jrn_decode(zeros, 0, 77, &r), JRN_END);
    rec[JRN_HDR_LEN + 4] ^= 1;
    assert_int_equal(jrn_decode(rec, sizeof(rec), 77, &r), JRN_TORN);
}

static void test_journal_interleaved_over_two_segments(void **state)
{
    (void)state;
    struct tb s1, s2;
    tb_init(&s1, 0, 10, 4096);
    tb_init(&s2, 0, 11, 4096);
    tb_seg(&s1);
    tb_chunk(&s1, QA, "hello ");
    tb_chunk(&s1, QB, "bbb");
    tb_commit_body(&s1, QC, 0, "H-C\n", "");
    tb_chunk(&s1, QA, "world");
    tb_seg(&s2);
    tb_chunk(&s2, QB, "ccc");
    size_t commit_a = tb_commit_body(&s2, QA, 0, "H-A\n", "hello world");
    tb_chunk(&s2, QE, "gone");
    tb_abort(&s2, QE);
    tb_chunk(&s2, QD, "never committed");
    tb_commit_body(&s2, QB, JRN_F_QUARANTINE, "H-B\n", "bbbccc");
    const uint8_t *bufs[2] = {s1.buf, s2.buf};
    size_t lens[2] = {s1.cap, s2.cap}; /* zero-filled tails */
    struct run x;
    run_segs(&x, 10, bufs, lens, 2);
    assert_int_equal(x.n, 3);
    assert_string_equal(x.m[0].qid, QC);
    assert_string_equal(body_of(&x, &x.m[0]), "");
    head_is(&x.m[0], "H-C\n");
    assert_string_equal(x.m[1].qid, QA);
    assert_string_equal(body_of(&x, &x.m[1]), "hello world");
    head_is(&x.m[1], "H-A\n");
    assert_int_equal(x.m[1].next, 2);
    assert_int_equal(x.m[1].ext[0].segno, 10);
    assert_int_equal(x.m[1].ext[1].segno, 10);
    assert_int_equal(x.m[1].first.segno, 10);
    assert_int_equal(x.m[1].first.off, s1.rec_off[1]);
    assert_int_equal(x.m[1].commit.segno, 11);
    assert_int_equal(x.m[1].commit.off, commit_a);
    assert_int_equal(x.m[1].flags, 0);
    assert_string_equal(x.m[2].qid, QB);
    assert_string_equal(body_of(&x, &x.m[2]), "bbbccc");
    assert_int_equal(x.m[2].flags, JRN_F_QUARANTINE);
    assert_int_equal(x.m[2].ext[0].segno, 10);
    assert_int_equal(x.m[2].ext[1].segno, 11);
    assert_int_equal(x.st.segments, 2);
    assert_int_equal(x.st.records, s1.nrec + s2.nrec);
    assert_int_equal(x.st.committed, 3);
    assert_int_equal(x.st.aborted, 1);
    assert_int_equal(x.st.uncommitted, 1);
    assert_int_equal(x.st.ntorn, 0);
    assert_int_equal(x.st.bad_body, 0);
    assert_int_equal(x.st.last_segno, 11);
    jrn_recovery_free(x.r);
    tb_free(&s1);
    tb_free(&s2);
}

static void test_journal_abort_and_bad_body_dropped(void **state)
{
    (void)state;
    struct tb s;
    tb_init(&s, 0, 1, 4096);
    tb_seg(&s);
    tb_chunk(&s, QA, "aaa");
    tb_abort(&s, QA);
    tb_commit_body(&s, QB, 0, "H\n", "x"); /* no chunks: bad body */
    tb_chunk(&s, QC, "ccc");
    tb_commit(&s, QC, 0, "H\n", 3, 0x12345678u); /* wrong CRC */
    tb_chunk(&s, QD, "ddd");
    tb_commit(&s, QD, 0, "H\n", 4, crc32c(0, "ddd", 3)); /* wrong length */
    tb_chunk(&s, "000000000000000000/A", "x");
    tb_commit_body(&s, "000000000000000000/A", 0, "H\n", "x"); /* not a file name */
    tb_chunk(&s, QE, "eee");
    tb_commit_body(&s, QE, 0, "H\n", "eee");
    struct run x;
    run_one(&x, 1, s.buf, s.len);
    assert_int_equal(x.n, 1);
    assert_string_equal(x.m[0].qid, QE);
    assert_int_equal(x.st.aborted, 1);
    assert_int_equal(x.st.bad_body, 3);
    assert_int_equal(x.st.malformed, 1);
    assert_int_equal(x.st.uncommitted, 0);
    jrn_recovery_free(x.r);
    tb_free(&s);
}

static void test_journal_checkpoint_skips_earlier_commits(void **state)
{
    (void)state;
    struct tb s1, s2;
    tb_init(&s1, 0, 4, 4096);
    tb_init(&s2, 0, 5, 4096);
    tb_seg(&s1);
    tb_chunk(&s1, QA, "a");
    tb_commit_body(&s1, QA, 0, "H\n", "a");
    tb_chunk(&s1, QC, "c1 "); /* open across the mark: kept */
    tb_chunk(&s1, QB, "b");
    tb_commit_body(&s1, QB, 0, "H\n", "b");
    tb_checkpoint(&s1, 4, s1.rec_off[3]); /* A durable; C still open */
    tb_seg(&s2);
    tb_chunk(&s2, QC, "c2");
    tb_commit_body(&s2, QC, 0, "H\n", "c1 c2");
    tb_checkpoint(&s2, 4, 0); /* an older mark never wins */
    const uint8_t *bufs[2] = {s1.buf, s2.buf};
    size_t lens[2] = {s1.len, s2.len};
    struct run x;
    run_segs(&x, 4, bufs, lens, 2);
    assert_int_equal(x.n, 2);
    assert_string_equal(x.m[0].qid, QB);
    assert_string_equal(x.m[1].qid, QC);
    assert_string_equal(body_of(&x, &x.m[1]), "c1 c2");
    assert_int_equal(x.st.skipped, 1);
    assert_true(x.st.has_checkpoint);
    assert_int_equal(x.st.checkpoint.segno, 4);
    assert_int_equal(x.st.checkpoint.off, s1.rec_off[3]);
    jrn_recovery_free(x.r);
    /* a checkpoint in the second segment covering the first: nothing left */
    tb_checkpoint(&s2, 5, s2.len);
    lens[1] = s2.len;
    run_segs(&x, 4, bufs, lens, 2);
    assert_int_equal(x.n, 0);
    assert_int_equal(x.st.skipped, 3);
    jrn_recovery_free(x.r);
    tb_free(&s1);
    tb_free(&s2);
}

/* Fixture for damage tests: records, and which ones are commits. */
struct expect {
    size_t rec; /* index of the commit record */
    const char *qid, *head, *body;
    unsigned flags;
};

static struct tb fx;
static struct expect fx_exp[4];
static size_t fx_nexp;

/* fixture - one segment (segno 5) with interleaved transactions. */
static void fixture(void)
{
    tb_init(&fx, 0, 5, 4096);
    tb_seg(&fx);
    tb_chunk(&fx, QA, "Subject: a\r\n\r\nhello ");
    tb_chunk(&fx, QB, "bee\r\n");
    tb_chunk(&fx, QA, "world\r\n");
    tb_commit_body(&fx, QA, 0, "H-A\n", "Subject: a\r\n\r\nhello world\r\n");
    fx_exp[0] = (struct expect){fx.nrec - 1, QA, "H-A\n", "Subject: a\r\n\r\nhello world\r\n", 0};
    tb_commit_body(&fx, QC, 0, "H-C\n", "");
    fx_exp[1] = (struct expect){fx.nrec - 1, QC, "H-C\n", "", 0};
    tb_chunk(&fx, QB, "more\r\n");
    tb_abort(&fx, QD);
    tb_commit_body(&fx, QB, JRN_F_QUARANTINE, "H-B\n", "bee\r\nmore\r\n");
    fx_exp[2] = (struct expect){fx.nrec - 1, QB, "H-B\n", "bee\r\nmore\r\n", JRN_F_QUARANTINE};
    tb_chunk(&fx, QE, "open");
    fx_nexp = 3;
}

/* check_valid_upto - x holds exactly the fixture's commits whose record
 * ends at or before valid, intact. */
static void check_valid_upto(const struct run *x, size_t valid)
{
    size_t k = 0;
    for (size_t i = 0; i < fx_nexp; i++) {
        if (fx.rec_end[fx_exp[i].rec] > valid)
            break;
        assert_true(k < x->n);
        assert_string_equal(x->m[k].qid, fx_exp[i].qid);
        assert_string_equal(body_of(x, &x->m[k]), fx_exp[i].body);
        head_is(&x->m[k], fx_exp[i].head);
        assert_int_equal(x->m[k].flags, fx_exp[i].flags);
        k++;
    }
    assert_int_equal(x->n, k);
}

/* rec_at - index of the fixture record holding offset off. */
static size_t rec_at(size_t off)
{
    size_t k = 0;
    while (fx.rec_end[k] <= off)
        k++;
    return k;
}

/* at_boundary - is off the start of a record (or the end)? */
static bool at_boundary(size_t off)
{
    return off == fx.len || fx.rec_off[rec_at(off)] == off;
}

/* zeros_end - where a cut at off really ends when zeros follow it: the end
 * of its record when the record's missing rest is all zeros anyway. */
static size_t zeros_end(size_t off)
{
    if (off == fx.len)
        return off;
    size_t end = fx.rec_end[rec_at(off)];
    for (size_t i = off; i < end; i++)
        if (fx.buf[i])
            return off;
    return end;
}

static void test_journal_truncated_at_every_offset(void **state)
{
    (void)state;
    fixture();
    for (size_t cut = 0; cut <= fx.len; cut++) {
        for (int pad = 0; pad < 2; pad++) {
            /* pad 0: the bytes end there (exact allocation: ASan sees any
             * over-read); pad 1: zeros follow, as in a preallocated file */
            size_t len = pad ? fx.len + 200 : cut;
            uint8_t *b = calloc(1, len ? len : 1);
            memcpy(b, fx.buf, cut);
            struct run x;
            run_one(&x, 5, b, len);
            size_t eff = pad ? zeros_end(cut) : cut;
            check_valid_upto(&x, eff);
            bool torn = !at_boundary(eff);
            assert_int_equal(x.st.ntorn, torn);
            if (torn) {
                assert_int_equal(x.st.torn[0].segno, 5);
                assert_int_equal(x.st.torn[0].off, fx.rec_off[rec_at(cut)]);
                assert_true(x.st.torn[0].cut > 0 && x.st.torn[0].cut <= cut - x.st.torn[0].off);
            }
            jrn_recovery_free(x.r);
            free(b);
        }
    }
    tb_free(&fx);
}

static void test_journal_corrupt_every_byte(void **state)
{
    (void)state;
    fixture();
    static const uint8_t masks[] = {0x01, 0x80, 0xFF};
    size_t last = fx.nrec - 1;
    for (size_t i = 0; i < fx.len; i++) {
        for (size_t mi = 0; mi < sizeof(masks); mi++) {
            uint8_t *b = malloc(fx.len);
            memcpy(b, fx.buf, fx.len);
            b[i] ^= masks[mi];
            struct run x;
            run_one(&x, 5, b, fx.len);
            size_t k = rec_at(i), in = i - fx.rec_off[k];
            check_valid_upto(&x, fx.rec_off[k]);
            /* the damage shows as a torn tail, except a broken magic or
             * segno in the very last record: indistinguishable from the
             * left-overs of a recycled segment */
            bool torn = k != last || !(in < 4 || (in >= 16 && in < 24));
            assert_int_equal(x.st.ntorn, torn);
            if (torn) {
                assert_int_equal(x.st.torn[0].off, fx.rec_off[k]);
                assert_int_equal(x.st.torn[0].cut, fx.len - fx.rec_off[k]);
            }
            assert_int_equal(x.st.bad_body, 0);
            jrn_recovery_free(x.r);
            free(b);
        }
    }
    tb_free(&fx);
}

static void test_journal_recycled_segment_ends_cleanly(void **state)
{
    (void)state;
    /* the old use (segno 0x100): a long committed message; its segno's
     * octets (00 01 ...) are those of the new one (09 01 ...) or zero */
    struct tb old;
    tb_init(&old, 0, 0x100, 8192);
    tb_seg(&old);
    for (int i = 0; i < 20; i++)
        tb_chunk(&old, QA, "old old old old old old old old old old old old\r\n");
    tb_commit(&old, QA, 0, "H\n", 20 * 49, 0);
    for (int variant = 0; variant < 2; variant++) {
        /* the new use (segno 0x109) over it: ending on an old record boundary
         * (variant 0) or in the middle of an old record (variant 1) */
        struct tb nw;
        tb_init(&nw, 0, 0x109, 8192);
        memcpy(nw.buf, old.buf, old.len);
        char body[200];
        size_t blen =
            variant ? 3
                    : old.rec_off[3] - (3 * JRN_HDR_LEN + JRN_COMMIT_FIXED + 4); /* 4: "H-B\n" */
        memset(body, 'n', blen);
        body[blen] = 0;
        tb_seg(&nw);
        tb_chunk(&nw, QB, body);
        tb_commit_body(&nw, QB, 0, "H-B\n", body);
        bool on_boundary = false;
        for (size_t i = 0; i < old.nrec; i++)
            on_boundary |= old.rec_off[i] == nw.len;
        assert_int_equal(on_boundary, !variant);
        struct run x;
        run_one(&x, 0x109, nw.buf, nw.cap);
        assert_int_equal(x.n, 1);
        assert_string_equal(x.m[0].qid, QB);
        assert_int_equal(x.st.ntorn, 0);
        assert_int_equal(x.st.records, 3);
        jrn_recovery_free(x.r);
        tb_free(&nw);
    }
    tb_free(&old);
}

static void test_journal_planner_api_rules(void **state)
{
    (void)state;
    struct jrn_recovery *r = jrn_recovery_new(0);
    uint8_t zeros[64] = {0};
    assert_int_equal(jrn_recovery_segment(r, 2, zeros, sizeof(zeros)), 0);
    assert_int_equal(jrn_recovery_segment(r, 2, zeros, sizeof(zeros)), -EINVAL);
    assert_int_equal(jrn_recovery_segment(r, 1, zeros, sizeof(zeros)), -EINVAL);
    assert_int_equal(jrn_recovery_segment(r, 3, NULL, 0), 0);
    const struct jrn_msg *m;
    size_t n;
    struct jrn_stats st;
    assert_int_equal(jrn_recovery_finish(r, &m, &n, &st), 0);
    assert_int_equal(n, 0);
    assert_int_equal(st.segments, 2);
    assert_int_equal(st.ntorn, 0);
    assert_int_equal(jrn_recovery_finish(r, &m, &n, &st), -EINVAL);
    assert_int_equal(jrn_recovery_segment(r, 4, zeros, sizeof(zeros)), -EINVAL);
    struct jrn_extent e = {7, 0, 1};
    assert_null(jrn_recovery_bytes(r, &e));
    jrn_recovery_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_journal_crc_known_values),
        cmocka_unit_test(test_journal_encode_decode_round_trip),
        cmocka_unit_test(test_journal_interleaved_over_two_segments),
        cmocka_unit_test(test_journal_abort_and_bad_body_dropped),
        cmocka_unit_test(test_journal_checkpoint_skips_earlier_commits),
        cmocka_unit_test(test_journal_truncated_at_every_offset),
        cmocka_unit_test(test_journal_corrupt_every_byte),
        cmocka_unit_test(test_journal_recycled_segment_ends_cleanly),
        cmocka_unit_test(test_journal_planner_api_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
