/* fuzz_journal.c - libFuzzer target for the journal planner
 * (core/journal_recover.c over core/journal.c). Input: a control octet,
 * two octets of split point, then segment bytes: one segment (segno 7) or,
 * with control bit 0, two (segnos 7 and 8) split there. With control bit 1
 * the record CRCs are recomputed first, so mutations reach the transaction,
 * commit and checkpoint logic instead of stopping at the first CRC. Every
 * segment is an exact-size copy (ASan sees over-reads). Properties: no
 * crash; every returned message has a hex qid, its extents lie in the fed
 * bytes and add up to body_len, and their CRC32C is body_crc; commits come
 * in journal order; torn tails lie inside their segments. Single-threaded. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "journal_recover.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_SEGNO 7

#define FZ_CHECK(c)                                                                      \
    do {                                                                                 \
        if (!(c)) {                                                                      \
            fprintf(stderr, "fuzz_journal: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* get32 - little-endian u32 at p. */
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* fix_crcs - walk buf as records of segno and recompute each CRC (and the
 * segno field), stopping where a header's magic or length does not fit. */
static void fix_crcs(uint8_t *buf, size_t len, uint64_t segno)
{
    size_t off = 0;
    while (len - off >= JRN_HDR_LEN && get32(buf + off) == JRN_MAGIC) {
        uint8_t *h = buf + off;
        uint32_t plen = get32(h + 8);
        if (plen > len - off - JRN_HDR_LEN)
            return;
        for (int i = 0; i < 8; i++)
            h[16 + i] = (uint8_t)(segno >> (8 * i));
        memset(h + 12, 0, 4);
        uint32_t crc = crc32c(crc32c(0, h, JRN_HDR_LEN), h + JRN_HDR_LEN, plen);
        for (int i = 0; i < 4; i++)
            h[12 + i] = (uint8_t)(crc >> (8 * i));
        off += JRN_HDR_LEN + plen;
    }
}

/* check_msg - the properties of one returned message. */
static void check_msg(const struct jrn_recovery *r, const struct jrn_msg *m)
{
    FZ_CHECK(strlen(m->qid) == JRN_QID_LEN);
    FZ_CHECK(strspn(m->qid, "0123456789ABCDEFabcdef") == JRN_QID_LEN);
    uint64_t total = 0;
    uint32_t crc = 0;
    for (size_t i = 0; i < m->next; i++) {
        const uint8_t *p = jrn_recovery_bytes(r, &m->ext[i]);
        FZ_CHECK(p != NULL);
        crc = crc32c(crc, p, m->ext[i].len);
        total += m->ext[i].len;
    }
    FZ_CHECK(total == m->body_len);
    FZ_CHECK(crc == m->body_crc);
}

/* in_segments - does [p, p + len) lie inside one of the fed segments? */
static bool in_segments(const uint8_t *p, size_t len, uint8_t *const *segs, const size_t *lens)
{
    for (int i = 0; i < 2; i++)
        if (segs[i] && p >= segs[i] && len <= lens[i] && (size_t)(p - segs[i]) <= lens[i] - len)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    unsigned ctl = data[0];
    size_t body = size - 3, split = ((size_t)data[1] << 8 | data[2]) % (body + 1);
    int nseg = ctl & 1 ? 2 : 1;
    size_t lens[2] = {nseg == 2 ? split : body, body - split};
    uint8_t *segs[2] = {NULL, NULL};
    struct jrn_recovery *r = jrn_recovery_new(0);
    FZ_CHECK(r != NULL);
    for (int i = 0, at = 3; i < nseg; at += (int)lens[i], i++) {
        segs[i] = malloc(lens[i] ? lens[i] : 1);
        FZ_CHECK(segs[i] != NULL);
        memcpy(segs[i], data + at, lens[i]);
        if (ctl & 2)
            fix_crcs(segs[i], lens[i], FZ_SEGNO + (uint64_t)i);
        FZ_CHECK(jrn_recovery_segment(r, FZ_SEGNO + (uint64_t)i, segs[i], lens[i]) == 0);
    }
    const struct jrn_msg *m;
    size_t n;
    struct jrn_stats st;
    FZ_CHECK(jrn_recovery_finish(r, &m, &n, &st) == 0);
    FZ_CHECK(st.committed == n && st.segments == (unsigned)nseg);
    for (size_t i = 0; i < n; i++) {
        check_msg(r, &m[i]);
        FZ_CHECK(in_segments(m[i].head, m[i].head_len, segs, lens));
        FZ_CHECK(
            i == 0 || m[i - 1].commit.segno < m[i].commit.segno ||
            (m[i - 1].commit.segno == m[i].commit.segno && m[i - 1].commit.off < m[i].commit.off));
    }
    for (size_t i = 0; i < st.ntorn; i++) {
        size_t k = (size_t)(st.torn[i].segno - FZ_SEGNO);
        FZ_CHECK(k < (size_t)nseg && st.torn[i].cut > 0 &&
                 st.torn[i].off + st.torn[i].cut <= lens[k]);
    }
    jrn_recovery_free(r);
    free(segs[0]);
    free(segs[1]);
    return 0;
}
