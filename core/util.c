/* util.c - growable buffers and fatal-error reporting shared by every module.
 * Thread-safe as long as each buffer is used by one thread at a time. */
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* sb_reserve - grow geometrically so appends are amortised O(1). */
bool sb_reserve(struct sb *b, size_t extra)
{
    size_t need;
    if (!mx_add_ok(b->len, extra, &need) || !mx_add_ok(need, 1, &need))
        return false;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            return false;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p)
        return false;
    b->data = p;
    b->cap = cap;
    return true;
}

bool sb_append(struct sb *b, const void *p, size_t n)
{
    if (!sb_reserve(b, n))
        return false;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return true;
}

bool sb_appends(struct sb *b, const char *s)
{
    return sb_append(b, s, strlen(s));
}

bool sb_printf(struct sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !sb_reserve(b, (size_t)n))
        return false;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

void sb_consume(struct sb *b, size_t n)
{
    if (n >= b->len) {
        sb_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = 0;
}

void sb_free(struct sb *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void die(const char *fmt, ...)
{
    va_list ap;
    fputs("mxringd: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

bool mx_memcaseeq(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (mx_ascii_lower(x[i]) != mx_ascii_lower(y[i]))
            return false;
    return true;
}
