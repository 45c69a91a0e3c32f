/* scan.h - fast scanning of a mapped day file: ASCII case-insensitive
 * substring search (SSE2: first and last needle byte compared 16
 * positions at a time, candidates verified) and line boundaries. Pure
 * functions over bytes; any thread. */
#ifndef MXLOG_SCAN_H
#define MXLOG_SCAN_H

#include <stddef.h>
#include <stdint.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* mxl_find_ci - offset of the first case-insensitive occurrence of
 * needle[0..m) in hay[0..n), or n when none (m >= 1). */
size_t mxl_find_ci(const char *hay, size_t n, const char *needle, size_t m);
/* mxl_line_start - offset of the start of the line holding offset i. */
size_t mxl_line_start(const char *p, size_t i);
/* mxl_line_end - offset of the '\n' ending the line at i (or n). */
size_t mxl_line_end(const char *p, size_t n, size_t i);

/* An iterator over the '\n's of a buffer: 64 bytes are compared at a
 * time into a bit mask, so a line costs a bit scan instead of a memchr
 * call. Zero-initialise p and n, then call mxl_nl_next. */
struct mxl_nl {
    const char *p;
    size_t n;
    size_t base, next; /* the block of mask; the block after it */
    uint64_t mask;     /* '\n's of [base, base + 64) not yet returned */
};

/* mxl_nl_mask - bit i set when p[i] is '\n', for i < min(n, 64). */
static inline uint64_t mxl_nl_mask(const char *p, size_t n)
{
    uint64_t m = 0;
#ifdef __SSE2__
    if (n >= 64) {
        const __m128i nl = _mm_set1_epi8('\n');
        for (int k = 0; k < 4; k++) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
            m |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, nl)) << (16 * k);
        }
        return m;
    }
#endif
    for (size_t i = 0; i < n && i < 64; i++)
        m |= (uint64_t)(p[i] == '\n') << i;
    return m;
}

/* mxl_nl_next - the offset of the next '\n', or it->n when none is left. */
static inline size_t mxl_nl_next(struct mxl_nl *it)
{
    while (!it->mask) {
        if (it->next >= it->n)
            return it->n;
        it->base = it->next;
        it->next += 64;
        it->mask = mxl_nl_mask(it->p + it->base, it->n - it->base);
    }
    size_t k = (size_t)__builtin_ctzll(it->mask);
    it->mask &= it->mask - 1;
    return it->base + k;
}

#endif
