/* journal.c - CRC32C and the journal record encoding/decoding (format in
 * journal.h). Pure functions over bytes; any thread. CRC32C uses the
 * SSE4.2 instruction when the CPU has it, else slicing-by-8 tables. */
#include "journal.h"

#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#define CRC32C_POLY 0x82F63B78u /* reflected Castagnoli polynomial */

static uint32_t crc_table[8][256];

/* crc_tables_init - the slicing-by-8 tables (once, before main's threads). */
__attribute__((constructor)) static void crc_tables_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xFF];
}

/* crc_sw - slicing-by-8 over the raw (pre-inverted) crc state. */
static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t n)
{
    while (n && ((uintptr_t)p & 7)) {
        c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xFF];
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= c;
        c = crc_table[7][w & 0xFF] ^ crc_table[6][(w >> 8) & 0xFF] ^
            crc_table[5][(w >> 16) & 0xFF] ^ crc_table[4][(w >> 24) & 0xFF] ^
            crc_table[3][(w >> 32) & 0xFF] ^ crc_table[2][(w >> 40) & 0xFF] ^
            crc_table[1][(w >> 48) & 0xFF] ^ crc_table[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xFF];
    return c;
}

#if defined(__x86_64__)
/* crc_hw - the same with the SSE4.2 crc32 instruction. */
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const uint8_t *p, size_t n)
{
    uint64_t c64 = c;
    while (n && ((uintptr_t)p & 7)) {
        c64 = _mm_crc32_u8((uint32_t)c64, *p++);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c64 = _mm_crc32_u64(c64, w);
        p += 8;
        n -= 8;
    }
    while (n--)
        c64 = _mm_crc32_u8((uint32_t)c64, *p++);
    return (uint32_t)c64;
}
#endif

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
    uint32_t c = ~crc;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2"))
        return ~crc_hw(c, buf, len);
#endif
    return ~crc_sw(c, buf, len);
}

/* put16/put32/put64/get* - little-endian integers at p. */
static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p)
{
    return get32(p) | (uint64_t)get32(p + 4) << 32;
}

uint32_t jrn_encode(uint8_t hdr[JRN_HDR_LEN], enum jrn_type type, unsigned flags, unsigned worker,
                    uint64_t segno, const char *qid, const struct iovec *iov, int niov)
{
    uint32_t len = 0;
    for (int i = 0; i < niov; i++)
        len += (uint32_t)iov[i].iov_len;
    memset(hdr, 0, JRN_HDR_LEN);
    put32(hdr, JRN_MAGIC);
    hdr[4] = (uint8_t)type;
    hdr[5] = (uint8_t)flags;
    put16(hdr + 6, (uint16_t)worker);
    put32(hdr + 8, len);
    put64(hdr + 16, segno);
    if (qid)
        memcpy(hdr + 24, qid, JRN_QID_LEN);
    uint32_t crc = crc32c(0, hdr, JRN_HDR_LEN);
    for (int i = 0; i < niov; i++)
        crc = crc32c(crc, iov[i].iov_base, iov[i].iov_len);
    put32(hdr + 12, crc);
    return len;
}

void jrn_commit_fixed(uint8_t out[JRN_COMMIT_FIXED], uint64_t body_len, uint32_t body_crc,
                      uint32_t head_len)
{
    put64(out, body_len);
    put32(out + 8, body_crc);
    put32(out + 12, head_len);
}

/* all_zero - is p[0..n) all zero octets? */
static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

enum jrn_status jrn_decode(const uint8_t *buf, size_t avail, uint64_t segno, struct jrn_rec *rec)
{
    if (avail == 0)
        return JRN_END;
    if (avail < JRN_HDR_LEN)
        return all_zero(buf, avail) ? JRN_END : JRN_TORN;
    if (get32(buf) != JRN_MAGIC)
        return all_zero(buf, JRN_HDR_LEN) ? JRN_END : JRN_TORN;
    if (get64(buf + 16) != segno)
        return JRN_END; /* an older use of a recycled segment */
    uint32_t len = get32(buf + 8);
    unsigned type = buf[4];
    if (type < JRN_SEG || type > JRN_CHECKPOINT || len > avail - JRN_HDR_LEN)
        return JRN_TORN;
    uint8_t h[JRN_HDR_LEN];
    memcpy(h, buf, JRN_HDR_LEN);
    memset(h + 12, 0, 4);
    uint32_t crc = crc32c(crc32c(0, h, JRN_HDR_LEN), buf + JRN_HDR_LEN, len);
    if (crc != get32(buf + 12))
        return JRN_TORN;
    rec->type = (enum jrn_type)type;
    rec->flags = buf[5];
    rec->worker = get16(buf + 6);
    rec->segno = segno;
    memcpy(rec->qid, buf + 24, JRN_QID_LEN);
    rec->qid[JRN_QID_LEN] = 0;
    rec->payload = buf + JRN_HDR_LEN;
    rec->len = len;
    return JRN_OK;
}
