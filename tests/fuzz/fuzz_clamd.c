/* fuzz_clamd.c - libFuzzer target for core/clamd.c. The input is parsed as
 * a clamd reply (with and without eof), and streamed as a message: the
 * first octets choose the chunk size, whole message or chunk-by-chunk
 * windows, the iovec count and the write sizes; the bytes sent must equal
 * the INSTREAM encoding built the plain way. Single-threaded. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clamd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_IOV_MAX 40

#define FZ_CHECK(c)                                                                    \
    do {                                                                               \
        if (!(c)) {                                                                    \
            fprintf(stderr, "fuzz_clamd: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                   \
        }                                                                              \
    } while (0)

/* fuzz_reply - the input as a reply. */
static void fuzz_reply(const uint8_t *data, size_t size)
{
    struct clamd_reply r;
    for (int eof = 0; eof < 2; eof++) {
        enum clamd_verdict v = clamd_reply_parse((const char *)data, size, eof, &r);
        FZ_CHECK(v == r.verdict && v <= CLAMD_INCOMPLETE);
        FZ_CHECK(r.used <= size && strlen(r.name) <= CLAMD_NAME_MAX);
        FZ_CHECK(v != CLAMD_INCOMPLETE || (!eof && r.used == 0));
        FZ_CHECK(v != CLAMD_FOUND || r.name[0] != 0);
    }
}

/* expected - the plain INSTREAM encoding of m[0..n) (malloc'ed). */
static uint8_t *expected(const uint8_t *m, size_t n, size_t chunk, size_t *len)
{
    uint8_t *e = malloc(clamd_stream_size(n, chunk)), *p = e;
    FZ_CHECK(e != NULL);
    memcpy(p, CLAMD_CMD_INSTREAM, CLAMD_CMD_LEN); /* with its NUL */
    p += CLAMD_CMD_LEN;
    for (size_t off = 0; off < n; off += chunk) {
        size_t c = n - off < chunk ? n - off : chunk;
        for (int k = 0; k < CLAMD_LEN_PREFIX; k++)
            *p++ = (uint8_t)(c >> (8 * (CLAMD_LEN_PREFIX - 1 - k)));
        memcpy(p, m + off, c);
        p += c;
    }
    memset(p, 0, CLAMD_LEN_PREFIX);
    *len = (size_t)(p + CLAMD_LEN_PREFIX - e);
    return e;
}

/* fuzz_stream - stream the input with input-chosen parameters. */
static void fuzz_stream(const uint8_t *data, size_t size)
{
    struct clamd_stream cs;
    struct iovec iov[FZ_IOV_MAX];
    if (size < 3)
        return;
    size_t chunk = 1 + data[0] % 32, iovmax = 1 + data[1] % FZ_IOV_MAX, elen;
    uint32_t seed = data[2] + 1u;
    uint8_t *e = expected(data + 3, size - 3, chunk, &elen);
    bool windowed = data[0] & 0x80; /* supplied chunk by chunk, from a copy */
    uint8_t *win = windowed ? malloc(chunk) : NULL;
    clamd_stream_init(&cs, windowed ? NULL : data + 3, size - 3, chunk);
    FZ_CHECK(cs.total == elen);
    size_t sent = 0, off, wn;
    while (!clamd_stream_done(&cs)) {
        if (windowed && clamd_stream_need(&cs, &off, &wn)) {
            FZ_CHECK(win && off % chunk == 0 && wn <= chunk && off + wn <= size - 3);
            memset(win, 0xA5, chunk);
            memcpy(win, data + 3 + off, wn);
            clamd_stream_window(&cs, win, off, wn);
        }
        size_t n = clamd_stream_fill(&cs, iov, iovmax), offered = 0;
        FZ_CHECK(n > 0 && n <= iovmax);
        for (size_t i = 0; i < n; i++)
            offered += iov[i].iov_len;
        seed = seed * 1103515245u + 12345u;
        size_t take = 1 + (seed >> 8) % offered;
        for (size_t i = 0, left = take; i < n && left; i++) {
            size_t c = iov[i].iov_len < left ? iov[i].iov_len : left;
            FZ_CHECK(sent + c <= elen && memcmp(iov[i].iov_base, e + sent, c) == 0);
            sent += c;
            left -= c;
        }
        clamd_stream_advance(&cs, take);
    }
    FZ_CHECK(sent == elen);
    free(win);
    free(e);
}

/* LLVMFuzzerTestOneInput - one input, two uses. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reply(data, size);
    fuzz_stream(data, size);
    return 0;
}
