/* smtp_bdat.c - CHUNKING (RFC 3030) without I/O: parses "BDAT <count>
 * [LAST]" and counts chunk octets so the session can tell chunk content
 * from the command line after it, whatever the read boundaries. Pure; a
 * struct bdat_rx belongs to one session's worker thread. */
#include "smtp_bdat.h"

#include <string.h>

#include "util.h"

/* parse_count - 1*DIGIT at arg[*i..len), ended by SP or the end: the
 * value, *i past it. */
static enum bdat_perr parse_count(const char *arg, size_t len, size_t *i, uint64_t *size)
{
    size_t start = *i;
    uint64_t v = 0;
    while (*i < len && arg[*i] >= '0' && arg[*i] <= '9') {
        if (*i - start < BDAT_SIZE_DIGITS_MAX)
            v = v * 10 + (uint64_t)(arg[*i] - '0');
        (*i)++;
    }
    if (*i == start || (*i < len && arg[*i] != ' '))
        return BDAT_P_SYNTAX; /* no digit, or a digit run ended by anything but SP */
    if (*i - start > BDAT_SIZE_DIGITS_MAX)
        return BDAT_P_OVERFLOW;
    *size = v;
    return BDAT_P_OK;
}

/* skip_sp - past any SP at arg[*i..len); how many were skipped. */
static size_t skip_sp(const char *arg, size_t len, size_t *i)
{
    size_t start = *i;
    while (*i < len && arg[*i] == ' ')
        (*i)++;
    return *i - start;
}

/* bdat_parse - see smtp_bdat.h. */
enum bdat_perr bdat_parse(const char *arg, size_t len, uint64_t *size, bool *last)
{
    size_t i = 0;
    *last = false;
    enum bdat_perr e = parse_count(arg, len, &i, size);
    if (e != BDAT_P_OK)
        return e;
    size_t sp = skip_sp(arg, len, &i);
    if (i == len)
        return BDAT_P_OK;
    if (!sp || len - i < 4 || !mx_memcaseeq(arg + i, "LAST", 4))
        return BDAT_P_SYNTAX;
    i += 4;
    skip_sp(arg, len, &i);
    if (i != len)
        return BDAT_P_SYNTAX;
    *last = true;
    return BDAT_P_OK;
}

/* bdat_reset - see smtp_bdat.h. */
void bdat_reset(struct bdat_rx *b)
{
    b->total = 0;
    b->discarded = 0;
    b->chunks = 0;
    b->last = false;
}

/* bdat_fits - see smtp_bdat.h (sizes are below 2^63: no overflow). */
bool bdat_fits(const struct bdat_rx *b, uint64_t size, uint64_t limit)
{
    return limit == 0 || (size <= limit && b->total <= limit - size);
}

/* bdat_begin - see smtp_bdat.h. */
void bdat_begin(struct bdat_rx *b, uint64_t size, bool last, bool discard)
{
    b->size = size;
    b->remaining = size;
    b->last = last;
    b->discard = discard;
    if (discard) {
        b->discarded = b->discarded > UINT64_MAX - size ? UINT64_MAX : b->discarded + size;
        return;
    }
    b->total += size;
    b->chunks++;
}

/* bdat_reading - see smtp_bdat.h. */
bool bdat_reading(const struct bdat_rx *b)
{
    return b->remaining != 0;
}

/* bdat_take - see smtp_bdat.h. */
size_t bdat_take(const struct bdat_rx *b, size_t avail)
{
    return (uint64_t)avail < b->remaining ? avail : (size_t)b->remaining;
}

/* bdat_consume - see smtp_bdat.h. */
bool bdat_consume(struct bdat_rx *b, size_t n)
{
    b->remaining -= n < b->remaining ? n : b->remaining;
    return b->remaining == 0;
}
