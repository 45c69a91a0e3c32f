/* util.h - small shared helpers: growable byte buffers (sb_*), fatal errors,
 * overflow-safe length arithmetic. Every thread may call these; a buffer
 * belongs to one thread at a time. */
#ifndef MXRING_UTIL_H
#define MXRING_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MX_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* sb - growable byte buffer; data is always NUL-terminated when non-NULL. */
struct sb {
    char *data;
    size_t len;
    size_t cap;
};

/* sb_reserve - make room for extra more bytes; false on overflow/ENOMEM. */
bool sb_reserve(struct sb *b, size_t extra);
/* sb_append - append n bytes; false on overflow/ENOMEM (buffer unchanged). */
bool sb_append(struct sb *b, const void *p, size_t n);
/* sb_appends - append a C string. */
bool sb_appends(struct sb *b, const char *s);
/* sb_printf - append printf-formatted text. */
bool sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* sb_consume - drop the first n bytes, moving the rest to the front. */
void sb_consume(struct sb *b, size_t n);
/* sb_reset - empty the buffer but keep its memory. */
static inline void sb_reset(struct sb *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = 0;
}
/* sb_free - release memory; the buffer is empty and reusable afterwards. */
void sb_free(struct sb *b);

/* mx_add_ok - a + b into *out unless it overflows size_t. */
static inline bool mx_add_ok(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

/* die - print "mxringd: <message>" to stderr and exit(2). For start-up
 * failures and broken invariants only, never for client input. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* mx_ascii_lower - ASCII-only lower-casing of one byte (UTF-8 untouched). */
static inline unsigned char mx_ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* mx_b64_val - value of one base64 (RFC 4648) alphabet octet, or -1. */
static inline int mx_b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    return c == '/' ? 63 : -1;
}

/* mx_memcaseeq - ASCII case-insensitive comparison of two byte ranges. */
bool mx_memcaseeq(const void *a, const void *b, size_t n);

#endif
