/* rlog_text.c - the receivelog's text rules: valid UTF-8 is written as it
 * is, \xNN escaping of everything a client could use to forge or break a
 * line (controls, DEL, '\', invalid UTF-8), the line cap with its "..."
 * marker, and the " [dd/Mon/yyyy:HH:MM:SS], XXXXXXXX, " prefix. Pure
 * functions over bytes (plus localtime_r); any thread may call them. */
#include "rlog_int.h"

#include <string.h>
#include <time.h>

static const char hexdig[] = "0123456789ABCDEF";
static const char month_abbr[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

#define ESC_LEN 4u /* "\xNN" */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* word_clean - true when all 8 bytes in w are printable ASCII other than
 * '\\' (exact: the has-less-than and has-zero-byte tricks report any
 * other byte; octets >= 0x80 leave the fast path for the UTF-8 check). */
static inline bool word_clean(uint64_t w)
{
    uint64_t lt20 = (w - ONES * 0x20) & ~w;
    uint64_t x7f = w ^ (ONES * 0x7f);
    uint64_t x5c = w ^ (ONES * 0x5c);
    uint64_t eq7f = (x7f - ONES) & ~x7f;
    uint64_t eq5c = (x5c - ONES) & ~x5c;
    return ((w | lt20 | eq7f | eq5c) & HIGHS) == 0;
}

/* utf8_seq - length (2..4) of the well-formed UTF-8 sequence at s[0..n)
 * (RFC 3629 table: no overlongs, no surrogates, nothing above U+10FFFF),
 * or 0. The C1 controls U+0080..U+009F and the line and paragraph
 * separators U+2028/U+2029 count as 0 too: they are controls, escaped. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4;
    else
        return 0; /* ASCII, a continuation byte, C0/C1 (overlong) or F5..FF */
    if (c == 0xE0)
        lo = 0xA0; /* overlong */
    else if (c == 0xED)
        hi = 0x9F; /* surrogates */
    else if (c == 0xF0)
        lo = 0x90; /* overlong */
    else if (c == 0xF4)
        hi = 0x8F; /* above U+10FFFF */
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if ((s[k] & 0xC0) != 0x80)
            return 0;
    if (c == 0xC2 && s[1] <= 0x9F)
        return 0;
    if (c == 0xE2 && s[1] == 0x80 && (s[2] == 0xA8 || s[2] == 0xA9))
        return 0;
    return len;
}

/* text_unit - the next unit of s[0..n): one octet to copy, one whole UTF-8
 * sequence to copy, or one octet to escape (*esc). Returns its input length. */
static inline size_t text_unit(const unsigned char *s, size_t n, bool *esc)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *esc = c < 0x20 || c == 0x7f || c == '\\';
        return 1;
    }
    size_t l = utf8_seq(s, n);
    *esc = l == 0;
    return l ? l : 1;
}

/* escape_byte - write one escape of c at dst. */
static inline void escape_byte(char *dst, unsigned char c)
{
    dst[0] = '\\';
    dst[1] = 'x';
    dst[2] = hexdig[c >> 4];
    dst[3] = hexdig[c & 15];
}

/* put_unit - write the unit s[0..l) (escaped when esc); returns its size. */
static inline size_t put_unit(char *dst, const unsigned char *s, size_t l, bool esc)
{
    if (esc) {
        escape_byte(dst, s[0]);
        return ESC_LEN;
    }
    memcpy(dst, s, l);
    return l;
}

/* escape_fast - escape all of src when dst has room for the worst case
 * (ESC_LEN per input octet; a UTF-8 sequence is never longer than itself). */
static size_t escape_fast(char *dst, const unsigned char *s, size_t len)
{
    size_t i = 0, o = 0;
    while (i < len) {
        if (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (word_clean(w)) {
                memcpy(dst + o, &w, 8);
                o += 8;
                i += 8;
                continue;
            }
        }
        bool esc;
        size_t l = text_unit(s + i, len - i, &esc);
        o += put_unit(dst + o, s + i, l, esc);
        i += l;
    }
    return o;
}

/* rlog_escape_n - escape src into dst (capacity cap), stopping before the
 * first unit (escape or UTF-8 sequence) whose output would not fit;
 * *consumed = input bytes used. */
size_t rlog_escape_n(char *dst, size_t cap, const char *src, size_t len, size_t *consumed)
{
    const unsigned char *s = (const unsigned char *)src;
    if (len <= cap / ESC_LEN) {
        *consumed = len;
        return escape_fast(dst, s, len);
    }
    size_t i = 0, o = 0;
    while (i < len) {
        bool esc;
        size_t l = text_unit(s + i, len - i, &esc);
        if (cap - o < (esc ? ESC_LEN : l))
            break;
        o += put_unit(dst + o, s + i, l, esc);
        i += l;
    }
    *consumed = i;
    return o;
}

/* rlog_escape - public form: escape as much as fits at whole escapes. */
size_t rlog_escape(char *dst, size_t cap, const char *src, size_t len)
{
    size_t used;
    return rlog_escape_n(dst, cap, src, len, &used);
}

/* rlog_text_bound - upper bound of the text bytes for prefix + escaped text
 * (never above RLOG_LINE_MAX). */
size_t rlog_text_bound(size_t plen, size_t len)
{
    if (plen >= RLOG_LINE_MAX || len >= RLOG_LINE_MAX)
        return RLOG_LINE_MAX;
    size_t b = plen + ESC_LEN * len;
    return b < RLOG_LINE_MAX ? b : RLOG_LINE_MAX;
}

/* rlog_format_text - the line text: p verbatim, then t escaped, capped at
 * cap (<= RLOG_LINE_MAX) bytes; a line that does not fit ends in "...". */
size_t rlog_format_text(char *dst, size_t cap, const char *p, size_t plen, const char *t,
                        size_t tlen)
{
    const size_t mark = sizeof(RLOG_TRUNC_MARK) - 1;
    size_t o = 0, used;
    if (plen > cap - mark) {
        memcpy(dst, p, cap - mark);
        memcpy(dst + cap - mark, RLOG_TRUNC_MARK, mark);
        return cap;
    }
    if (plen)
        memcpy(dst, p, plen);
    o = plen;
    size_t n = rlog_escape_n(dst + o, cap - o, t, tlen, &used);
    if (used == tlen)
        return o + n;
    n = rlog_escape_n(dst + o, cap - o - mark, t, tlen, &used);
    memcpy(dst + o + n, RLOG_TRUNC_MARK, mark);
    return o + n + mark;
}

/* rlog_hex8 - 8 upper-case hex digits of v. */
void rlog_hex8(char *dst, uint32_t v)
{
    for (int i = 7; i >= 0; i--) {
        dst[i] = hexdig[v & 15];
        v >>= 4;
    }
}

/* two_digits - write v (0..99) as two decimal digits. */
static inline void two_digits(char *dst, int v)
{
    dst[0] = (char)('0' + v / 10);
    dst[1] = (char)('0' + v % 10);
}

/* rlog_datecache_set - fill the cache for Unix second sec (local time). */
void rlog_datecache_set(struct rlog_datecache *c, int64_t sec)
{
    struct tm tm;
    time_t t = (time_t)sec;
    localtime_r(&t, &tm);
    int year = tm.tm_year + 1900;
    char *d = c->text;
    memcpy(d, " [", 2);
    two_digits(d + 2, tm.tm_mday);
    d[4] = '/';
    memcpy(d + 5, month_abbr[tm.tm_mon], 3);
    d[8] = '/';
    two_digits(d + 9, year / 100 % 100);
    two_digits(d + 11, year % 100);
    d[13] = ':';
    two_digits(d + 14, tm.tm_hour);
    d[16] = ':';
    two_digits(d + 17, tm.tm_min);
    d[19] = ':';
    two_digits(d + 20, tm.tm_sec);
    memcpy(d + 22, "], ", 3);
    d[RLOG_DATE_LEN] = 0;
    c->sec = sec;
    c->day = (uint32_t)(year * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday);
}

/* rlog_local_day - yyyymmdd of the local date of Unix second sec. */
uint32_t rlog_local_day(int64_t sec)
{
    struct rlog_datecache c;
    rlog_datecache_set(&c, sec);
    return c.day;
}

/* rlog_day_number - days since 1970-01-01 of a yyyymmdd civil date
 * (proleptic Gregorian; Howard Hinnant's days_from_civil). */
int64_t rlog_day_number(uint32_t yyyymmdd)
{
    int64_t y = yyyymmdd / 10000, m = yyyymmdd / 100 % 100, d = yyyymmdd % 100;
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* rlog_format_prefix - " [dd/Mon/yyyy:HH:MM:SS], XXXXXXXX, " for ns. */
size_t rlog_format_prefix(char *dst, uint64_t ns, uint32_t sid)
{
    struct rlog_datecache c;
    rlog_datecache_set(&c, (int64_t)(ns / RLOG_NS_PER_SEC));
    memcpy(dst, c.text, RLOG_DATE_LEN);
    rlog_hex8(dst + RLOG_DATE_LEN, sid);
    memcpy(dst + RLOG_DATE_LEN + 8, ", ", 3);
    return RLOG_PREFIX_LEN;
}

/* rlog_sid_base - the first session id of a process started at Unix second
 * sec: the seconds since local midnight times RLOG_SID_PER_SEC, so a
 * restart later the same day starts above every id the earlier process
 * could have used unless it averaged more than RLOG_SID_PER_SEC sessions
 * a second (86399 * 49710 < 2^32: the base never wraps). */
uint32_t rlog_sid_base(int64_t sec)
{
    time_t t = (time_t)sec;
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return 0;
    uint32_t since_midnight = (uint32_t)(tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec);
    if (since_midnight > 86399)
        since_midnight = 86399; /* a leap second */
    return since_midnight * RLOG_SID_PER_SEC;
}
