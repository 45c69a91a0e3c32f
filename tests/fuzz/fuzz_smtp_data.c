/* fuzz_smtp_data.c - libFuzzer target for core/smtp_data.c. The first bytes
 * choose a size limit, whether a real terminator is appended and how the rest
 * is split into feed calls; the result (output, flags - bare CR/LF, NUL,
 * 8-bit, a command behind a bare CR/LF - and the offsets of the first bare
 * CR/LF and NUL) must equal one-shot feeding and the line-based reference
 * model in smtp_data_ref.h. With mode bit 16 the scanner runs in raw (BDAT)
 * mode instead, checked against a plain byte loop. Single-threaded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_data.h"
#include "smtp_data_ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_HDR 4 /* mode, limit, split seed (2 octets) */
#define FZ_TAIL "\r\n.\r\nQUIT\r\n"

#define FZ_CHECK(c)                                                                        \
    do {                                                                                   \
        if (!(c)) {                                                                        \
            fprintf(stderr, "fuzz_smtp_data: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* What one feeding produced. */
struct run {
    struct sb out;
    uint32_t flags;
    uint64_t size;
    size_t consumed;
    bool done;
    uint64_t offset, first_bare, first_nul;
    unsigned char bare_octet;
};

/* feed - feed in[0..n) in chunks of 1..max octets (max 0: one call);
 * raw: BDAT content (data_scan_init_raw, data_scan_end_raw at the end). */
static void feed(const char *in, size_t n, uint64_t limit, size_t max, uint32_t seed, struct run *r,
                 bool raw)
{
    struct data_scan ds;
    memset(r, 0, sizeof(*r));
    if (raw)
        data_scan_init_raw(&ds, limit);
    else
        data_scan_init(&ds, limit);
    do {
        size_t left = n - r->consumed, chunk = left;
        if (max) {
            seed = seed * 1103515245u + 12345u;
            chunk = 1 + (seed >> 16) % max;
            chunk = chunk < left ? chunk : left;
        }
        size_t used = data_scan_feed(&ds, in + r->consumed, chunk, &r->out, &r->done);
        FZ_CHECK(used != (size_t)-1 && used <= chunk);
        FZ_CHECK(r->done || used == chunk);
        r->consumed += used;
        FZ_CHECK(r->out.len <= r->consumed);
    } while (r->consumed < n && !r->done);
    if (raw)
        data_scan_end_raw(&ds);
    r->flags = ds.flags;
    r->size = ds.size;
    r->offset = ds.offset;
    r->first_bare = ds.flags & DATA_F_BARE_EOL ? ds.first_bare : 0;
    r->bare_octet = ds.flags & DATA_F_BARE_EOL ? ds.bare_octet : 0;
    r->first_nul = ds.flags & DATA_F_NUL ? ds.first_nul : 0;
}

/* check_terminator - when done, the consumed input really ends the data. */
static void check_terminator(const char *in, const struct run *r)
{
    if (!r->done)
        return;
    FZ_CHECK(r->consumed >= 3 && memcmp(in + r->consumed - 3, ".\r\n", 3) == 0);
    FZ_CHECK(r->consumed == 3 ||
             (r->consumed >= 5 && memcmp(in + r->consumed - 5, "\r\n", 2) == 0));
}

/* check_same - two feedings of the same input agree on everything. */
static void check_same(const struct run *a, const struct run *b)
{
    FZ_CHECK(a->done == b->done && a->consumed == b->consumed);
    FZ_CHECK(a->flags == b->flags && a->size == b->size);
    FZ_CHECK(a->offset == b->offset && a->first_bare == b->first_bare);
    FZ_CHECK(a->bare_octet == b->bare_octet && a->first_nul == b->first_nul);
    FZ_CHECK(a->out.len == b->out.len);
    FZ_CHECK(a->out.len == 0 || memcmp(a->out.data, b->out.data, a->out.len) == 0);
}

/* check_ref - a feeding agrees with the reference model. */
static void check_ref(const struct run *r, const struct ref_data *ref, uint64_t limit)
{
    size_t stored = limit && ref->size > limit ? (size_t)limit : ref->out.len;
    FZ_CHECK(r->done == ref->done && r->consumed == ref->consumed);
    FZ_CHECK(r->flags == ref->flags && r->size == ref->size);
    FZ_CHECK(r->offset == r->consumed);
    FZ_CHECK(r->first_bare == ref->first_bare && r->bare_octet == ref->bare_octet);
    FZ_CHECK(r->first_nul == ref->first_nul);
    FZ_CHECK(r->out.len == stored);
    FZ_CHECK(stored == 0 || memcmp(r->out.data, ref->out.data, stored) == 0);
    FZ_CHECK(!!(r->flags & DATA_F_TOO_BIG) == (limit && r->size > limit));
}

/* check_raw - BDAT content: everything consumed, never an end of data, the
 * output is the input (up to the limit), and the flags are those of a plain
 * byte loop: bare CR/LF (a CR at the end is bare), NUL, 8-bit, long lines
 * (octets between CRLFs). The smuggling-command flag is not modelled. */
static void check_raw(const char *in, size_t n, uint64_t limit, const struct run *r)
{
    const unsigned char *p = (const unsigned char *)in;
    uint32_t flags = 0;
    uint64_t bare = 0, nul = 0;
    unsigned char octet = 0;
    size_t line = 0;
    for (size_t i = 0; i < n; i++) {
        bool crlf = p[i] == '\r' && i + 1 < n && p[i + 1] == '\n';
        bool is_bare = (p[i] == '\r' && !crlf) || (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'));
        if (is_bare && !(flags & DATA_F_BARE_EOL))
            flags |= DATA_F_BARE_EOL, bare = i, octet = p[i];
        if (p[i] == 0 && !(flags & DATA_F_NUL))
            flags |= DATA_F_NUL, nul = i;
        if (p[i] >= 0x80)
            flags |= DATA_F_8BIT;
        if (crlf) {
            line = 0;
            i++;
        } else if (++line > SMTP_DATA_LINE_MAX && !(p[i] == '\r' && i + 1 == n)) {
            flags |= DATA_F_LONG_LINE;
        }
    }
    size_t stored = limit && n > limit ? (size_t)limit : n;
    if (limit && n > limit)
        flags |= DATA_F_TOO_BIG;
    FZ_CHECK(!r->done && r->consumed == n && r->size == n);
    FZ_CHECK((r->flags & ~(uint32_t)DATA_F_BARE_CMD) == flags);
    FZ_CHECK(r->first_bare == bare && r->bare_octet == octet && r->first_nul == nul);
    FZ_CHECK(r->out.len == stored && (stored == 0 || memcmp(r->out.data, in, stored) == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t max_chunk[4] = {1, 3, 17, 4096};
    if (size < FZ_HDR)
        return 0;
    uint8_t mode = data[0];
    uint64_t limit = mode & 4 ? data[1] : 0;
    uint32_t seed = (uint32_t)data[2] << 8 | data[3];
    size_t n = size - FZ_HDR, tail = mode & 8 ? sizeof(FZ_TAIL) - 1 : 0;
    char *in = malloc(n + tail + 1);
    FZ_CHECK(in != NULL);
    memcpy(in, data + FZ_HDR, n);
    memcpy(in + n, FZ_TAIL, tail);
    n += tail;

    struct run split, whole;
    struct ref_data ref;
    if (mode & 16) { /* BDAT content */
        feed(in, n, limit, max_chunk[mode & 3], seed, &split, true);
        feed(in, n, limit, 0, 0, &whole, true);
        check_same(&split, &whole);
        check_raw(in, n, limit, &split);
        sb_free(&split.out);
        sb_free(&whole.out);
        free(in);
        return 0;
    }
    feed(in, n, limit, max_chunk[mode & 3], seed, &split, false);
    feed(in, n, limit, 0, 0, &whole, false);
    ref_data_scan((const unsigned char *)in, n, limit, &ref);
    FZ_CHECK(split.consumed <= n);
    FZ_CHECK(!tail || split.done);
    check_terminator(in, &split);
    check_same(&split, &whole);
    check_ref(&split, &ref, limit);
    sb_free(&split.out);
    sb_free(&whole.out);
    sb_free(&ref.out);
    free(in);
    return 0;
}
