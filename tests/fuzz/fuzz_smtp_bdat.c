/* fuzz_smtp_bdat.c - libFuzzer target for core/smtp_bdat.c. The input is an
 * SMTP stream ("BDAT n [LAST]" lines followed by their chunks, other lines);
 * bdat_parse is checked against a token-based reference parser, and the
 * stream is split into lines and chunks twice: by a whole-buffer reference
 * (plain index arithmetic) and by struct bdat_rx fed in pseudo-random
 * pieces (seeded by the input). Both must yield the same events, whatever
 * the read boundaries. Single-threaded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_bdat.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(c)                                                                        \
    do {                                                                                   \
        if (!(c)) {                                                                        \
            fprintf(stderr, "fuzz_smtp_bdat: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

#define LINE_MAX_FZ 512

/* ref_parse - the reference: SP-separated tokens; the first all digits
 * (1..19 of them), an optional second "LAST" in any case, nothing else;
 * no leading SP. Returns 0 ok, 1 syntax, 2 overflow (the count is judged
 * before what follows it). */
static int ref_parse(const char *a, size_t n, uint64_t *size, bool *last)
{
    size_t i = 0, ntok = 0, start[3] = {0}, len[3] = {0};
    if (n && a[0] == ' ')
        return 1;
    while (i < n) {
        while (i < n && a[i] == ' ')
            i++;
        if (i == n)
            break;
        if (ntok == 3) { /* a third token: an error, after the count's own */
            ntok = 4;
            break;
        }
        start[ntok] = i;
        while (i < n && a[i] != ' ')
            i++;
        len[ntok] = i - start[ntok];
        ntok++;
    }
    if (ntok == 0)
        return 1;
    for (size_t k = 0; k < len[0]; k++)
        if (a[start[0] + k] < '0' || a[start[0] + k] > '9')
            return 1;
    if (len[0] > 19)
        return 2;
    if (ntok > 2)
        return 1;
    if (ntok == 2 && (len[1] != 4 || !mx_memcaseeq(a + start[1], "LAST", 4)))
        return 1;
    uint64_t v = 0;
    for (size_t k = 0; k < len[0]; k++)
        v = v * 10 + (uint64_t)(a[start[0] + k] - '0');
    *size = v;
    *last = ntok == 2;
    return 0;
}

/* check_parse - bdat_parse agrees with the reference on arg. */
static void check_parse(const char *arg, size_t n)
{
    uint64_t s1 = 0, s2 = 0;
    bool l1 = false, l2 = false;
    enum bdat_perr e = bdat_parse(arg, n, &s1, &l1);
    int r = ref_parse(arg, n, &s2, &l2);
    FZ_CHECK((int)e == r);
    if (r == 0)
        FZ_CHECK(s1 == s2 && l1 == l2);
}

/* An event log: 'L' + line, or 'C' + the chunk's octets, each framed by a
 * 4-byte length; identical logs mean identical splits. */
struct evlog {
    struct sb sb;
};

/* ev_put - one event. */
static void ev_put(struct evlog *e, char kind, const void *p, size_t n)
{
    uint32_t len = (uint32_t)n;
    sb_append(&e->sb, &kind, 1);
    sb_append(&e->sb, &len, sizeof len);
    sb_append(&e->sb, p, n);
}

/* line_bdat - is line[0..n) (no LF) a BDAT with a good count? */
static bool line_bdat(const char *line, size_t n, uint64_t *size, bool *last)
{
    if (n && line[n - 1] == '\r')
        n--;
    if (n < 5 || !mx_memcaseeq(line, "BDAT ", 5))
        return false;
    size_t off = 5;
    while (off < n && line[off] == ' ')
        off++;
    check_parse(line + off, n - off);
    return bdat_parse(line + off, n - off, size, last) == BDAT_P_OK;
}

/* reference - split the whole buffer by index arithmetic. A line without
 * its LF at the end is dropped; a chunk cut by the end is logged short. */
static void reference(const char *p, size_t n, struct evlog *e)
{
    size_t i = 0;
    while (i < n) {
        const char *lf = memchr(p + i, '\n', n - i);
        if (!lf)
            return;
        size_t len = (size_t)(lf - (p + i));
        ev_put(e, 'L', p + i, len);
        uint64_t size;
        bool last;
        bool bdat = line_bdat(p + i, len, &size, &last);
        i += len + 1;
        if (!bdat)
            continue;
        size_t c = size < n - i ? (size_t)size : n - i;
        ev_put(e, 'C', p + i, c);
        i += c;
    }
}

/* The incremental splitter over struct bdat_rx. */
struct inc {
    struct bdat_rx rx;
    struct sb line;  /* the partial command line */
    struct sb chunk; /* the current chunk's octets so far */
    bool in_chunk;
    struct evlog *e;
};

/* inc_feed - one piece of input. */
static void inc_feed(struct inc *s, const char *p, size_t n)
{
    while (n) {
        if (bdat_reading(&s->rx)) {
            size_t t = bdat_take(&s->rx, n);
            FZ_CHECK(t > 0 && t <= n && t <= s->rx.remaining);
            sb_append(&s->chunk, p, t);
            p += t, n -= t;
            if (bdat_consume(&s->rx, t)) {
                ev_put(s->e, 'C', s->chunk.data, s->chunk.len);
                sb_reset(&s->chunk);
                s->in_chunk = false;
            }
            continue;
        }
        const char *lf = memchr(p, '\n', n);
        size_t len = lf ? (size_t)(lf - p) : n;
        sb_append(&s->line, p, len);
        p += len, n -= len;
        if (!lf)
            return;
        p++, n--;
        ev_put(s->e, 'L', s->line.data, s->line.len);
        uint64_t size;
        bool last;
        if (line_bdat(s->line.data, s->line.len, &size, &last)) {
            bdat_begin(&s->rx, size, last, s->line.len % 2 == 0);
            FZ_CHECK(s->rx.size == size && s->rx.last == last);
            if (size == 0)
                ev_put(s->e, 'C', "", 0);
            else
                s->in_chunk = true;
        }
        sb_reset(&s->line);
    }
}

/* rng - xorshift64 for the piece sizes. */
static uint64_t rng(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    const char *p = (const char *)data;
    check_parse(p, size < LINE_MAX_FZ ? size : LINE_MAX_FZ);
    struct evlog want = {{0}}, got = {{0}};
    reference(p, size, &want);
    struct inc s = {.e = &got};
    uint64_t seed = 0x9e3779b97f4a7c15ull ^ size;
    for (size_t i = 0; i < size && i < 8; i++)
        seed = seed * 131 + data[i];
    for (size_t off = 0; off < size;) {
        size_t piece = 1 + (size_t)(rng(&seed) % 97);
        if (piece > size - off)
            piece = size - off;
        inc_feed(&s, p + off, piece);
        off += piece;
    }
    if (s.in_chunk) /* cut by the end of input: the reference logs it short */
        ev_put(&got, 'C', s.chunk.data, s.chunk.len);
    FZ_CHECK(want.sb.len == got.sb.len);
    FZ_CHECK(want.sb.len == 0 || memcmp(want.sb.data, got.sb.data, want.sb.len) == 0);
    sb_free(&want.sb);
    sb_free(&got.sb);
    sb_free(&s.line);
    sb_free(&s.chunk);
    return 0;
}
