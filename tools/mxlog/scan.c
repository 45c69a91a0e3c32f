/* scan.c - the search primitives behind `mxlog why`: a case-insensitive
 * substring search after Mula's "generic SIMD" idea (compare the folded
 * first and last byte of the needle at 16 positions per step, verify the
 * candidates), and memchr/memrchr line bounds. Any thread. */
#include "scan.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* fold - ASCII lower case. */
static inline unsigned char fold(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c | 0x20) : c;
}

/* eq_ci - hay[0..m) equals needle ignoring ASCII case. */
static int eq_ci(const char *a, const char *b, size_t m)
{
    for (size_t i = 0; i < m; i++)
        if (fold((unsigned char)a[i]) != fold((unsigned char)b[i]))
            return 0;
    return 1;
}

/* find_slow - the scalar search for the tail and for tiny inputs. */
static size_t find_slow(const char *hay, size_t from, size_t n, const char *needle, size_t m)
{
    for (size_t i = from; i + m <= n; i++)
        if (eq_ci(hay + i, needle, m))
            return i;
    return n;
}

/* mxl_find_ci - see scan.h. OR-ing 0x20 folds letters; non-letters that
 * fold onto the needle's bytes only add candidates, which eq_ci rejects. */
size_t mxl_find_ci(const char *hay, size_t n, const char *needle, size_t m)
{
    if (m == 0 || m > n)
        return n;
    size_t i = 0;
#ifdef __SSE2__
    const __m128i bit = _mm_set1_epi8(0x20);
    const __m128i first = _mm_set1_epi8((char)(needle[0] | 0x20));
    const __m128i last = _mm_set1_epi8((char)(needle[m - 1] | 0x20));
    for (; i + m - 1 + 16 <= n; i += 16) {
        __m128i a = _mm_or_si128(_mm_loadu_si128((const __m128i *)(const void *)(hay + i)), bit);
        __m128i b =
            _mm_or_si128(_mm_loadu_si128((const __m128i *)(const void *)(hay + i + m - 1)), bit);
        unsigned mask = (unsigned)_mm_movemask_epi8(
            _mm_and_si128(_mm_cmpeq_epi8(a, first), _mm_cmpeq_epi8(b, last)));
        while (mask) {
            unsigned k = (unsigned)__builtin_ctz(mask);
            if (eq_ci(hay + i + k, needle, m))
                return i + k;
            mask &= mask - 1;
        }
    }
#endif
    return find_slow(hay, i, n, needle, m);
}

/* mxl_line_start - see scan.h. */
size_t mxl_line_start(const char *p, size_t i)
{
    const char *q = i ? memrchr(p, '\n', i) : NULL;
    return q ? (size_t)(q - p) + 1 : 0;
}

/* mxl_line_end - see scan.h. */
size_t mxl_line_end(const char *p, size_t n, size_t i)
{
    const char *q = i < n ? memchr(p + i, '\n', n - i) : NULL;
    return q ? (size_t)(q - p) : n;
}
