/* test_journal_util.h - a segment builder for the journal tests: appends
 * records made with jrn_encode to an in-memory segment and remembers where
 * each one starts. Header-only; single-threaded tests. */
#ifndef MXRING_TEST_JOURNAL_UTIL_H
#define MXRING_TEST_JOURNAL_UTIL_H

#include <stdlib.h>
#include <string.h>

#include "journal.h"

#define TB_MAX_RECS 256

struct tb {
    uint8_t *buf;
    size_t len, cap;
    unsigned worker;
    uint64_t segno;
    size_t nrec;
    size_t rec_off[TB_MAX_RECS]; /* start of every record */
    size_t rec_end[TB_MAX_RECS];
};

/* tb_init - an empty segment segno of worker with room for cap octets
 * (zero-filled, like a fresh preallocated segment). */
static inline void tb_init(struct tb *b, unsigned worker, uint64_t segno, size_t cap)
{
    memset(b, 0, sizeof(*b));
    b->buf = calloc(1, cap);
    b->cap = cap;
    b->worker = worker;
    b->segno = segno;
}

/* tb_free - release the buffer. */
static inline void tb_free(struct tb *b)
{
    free(b->buf);
    b->buf = NULL;
}

/* tb_rec - append one record whose payload is a || c (either may be empty);
 * returns its offset. */
static inline size_t tb_rec(struct tb *b, enum jrn_type type, unsigned flags, const char *qid,
                            const void *a, size_t alen, const void *c, size_t clen)
{
    struct iovec iov[2] = {{(void *)a, alen}, {(void *)c, clen}};
    size_t off = b->len;
    if (off + JRN_HDR_LEN + alen + clen > b->cap || b->nrec == TB_MAX_RECS)
        abort();
    uint32_t n = jrn_encode(b->buf + off, type, flags, b->worker, b->segno, qid, iov, 2);
    if (alen)
        memcpy(b->buf + off + JRN_HDR_LEN, a, alen);
    if (clen)
        memcpy(b->buf + off + JRN_HDR_LEN + alen, c, clen);
    b->len = off + JRN_HDR_LEN + n;
    b->rec_off[b->nrec] = off;
    b->rec_end[b->nrec++] = b->len;
    return off;
}

/* tb_seg - the JRN_SEG record that opens every segment. */
static inline size_t tb_seg(struct tb *b)
{
    return tb_rec(b, JRN_SEG, 0, NULL, NULL, 0, NULL, 0);
}

/* tb_chunk - a JRN_CHUNK of qid with the string s. */
static inline size_t tb_chunk(struct tb *b, const char *qid, const char *s)
{
    return tb_rec(b, JRN_CHUNK, 0, qid, s, strlen(s), NULL, 0);
}

/* tb_commit - a JRN_COMMIT of qid for a body of body_len octets with CRC
 * body_crc and the head string head. */
static inline size_t tb_commit(struct tb *b, const char *qid, unsigned flags, const char *head,
                               uint64_t body_len, uint32_t body_crc)
{
    uint8_t fixed[JRN_COMMIT_FIXED];
    jrn_commit_fixed(fixed, body_len, body_crc, (uint32_t)strlen(head));
    return tb_rec(b, JRN_COMMIT, flags, qid, fixed, sizeof(fixed), head, strlen(head));
}

/* tb_commit_body - tb_commit for the body string body (its length, CRC). */
static inline size_t tb_commit_body(struct tb *b, const char *qid, unsigned flags, const char *head,
                                    const char *body)
{
    return tb_commit(b, qid, flags, head, strlen(body), crc32c(0, body, strlen(body)));
}

/* tb_abort - a JRN_ABORT of qid. */
static inline size_t tb_abort(struct tb *b, const char *qid)
{
    return tb_rec(b, JRN_ABORT, 0, qid, NULL, 0, NULL, 0);
}

/* tb_checkpoint - a JRN_CHECKPOINT with the mark (segno, off). */
static inline size_t tb_checkpoint(struct tb *b, uint64_t segno, uint64_t off)
{
    uint8_t p[16];
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(segno >> (8 * i));
        p[8 + i] = (uint8_t)(off >> (8 * i));
    }
    return tb_rec(b, JRN_CHECKPOINT, 0, NULL, p, sizeof(p), NULL, 0);
}

#endif
