/* parse.c - the receivelog line parser of mxlog: prefix (time stamp and
 * session id), the kind of the text, and small field helpers. Pure
 * functions over bytes (no I/O, no allocation, no locale); any thread. */
#include "parse.h"

#include <string.h>

static const char month_abbr[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* days_from_civil - days since 1970-01-01 (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* mxl_civil_to - see parse.h. */
int64_t mxl_civil_to(int y, int mo, int d, int h, int mi, int s)
{
    return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
}

/* mxl_civil_from - see parse.h (Howard Hinnant's civil_from_days). */
void mxl_civil_from(int64_t t, int *y, int *mo, int *d, int *h, int *mi, int *s)
{
    int64_t z = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int64_t sec = t - z * 86400;
    *h = (int)(sec / 3600);
    *mi = (int)(sec / 60 % 60);
    *s = (int)(sec % 60);
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *mo = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*mo <= 2));
}

/* digits - n decimal digits at p, or -1. */
static int digits(const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* mxl_parse_time - see parse.h. */
bool mxl_parse_time(const char *p, int64_t *out)
{
    if (p[0] != ' ' || p[1] != '[' || p[4] != '/' || p[8] != '/' || p[13] != ':' || p[16] != ':' ||
        p[19] != ':' || p[22] != ']')
        return false;
    int d = digits(p + 2, 2), y = digits(p + 9, 4), h = digits(p + 14, 2);
    int mi = digits(p + 17, 2), s = digits(p + 20, 2), mo = -1;
    for (int i = 0; i < 12; i++)
        if (memcmp(p + 5, month_abbr[i], 3) == 0)
            mo = i + 1;
    if (d < 1 || d > 31 || y < 0 || mo < 0 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 ||
        s > 60)
        return false;
    *out = mxl_civil_to(y, mo, d, h, mi, s);
    return true;
}

/* Hex digit values; 0xff for every other byte. */
#define HX16(b) \
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
static const unsigned char hex_val[256] = {
    HX16(0), HX16(1), HX16(2), 0,       1,       2,       3,    4,    5,       6,       7,
    8,       9,       0xff,    0xff,    0xff,    0xff,    0xff, 0xff, 0xff,    10,      11,
    12,      13,      14,      15,      0xff,    0xff,    0xff, 0xff, 0xff,    0xff,    0xff,
    0xff,    0xff,    HX16(5), 0xff,    10,      11,      12,   13,   14,      15,      0xff,
    0xff,    0xff,    0xff,    0xff,    0xff,    0xff,    0xff, 0xff, HX16(7), HX16(8), HX16(9),
    HX16(a), HX16(b), HX16(c), HX16(d), HX16(e), HX16(f),
};

/* mxl_parse_hex8 - see parse.h (upper or lower case digits). A table
 * lookup per digit; a non-digit sets bit 4..7 of bad. */
bool mxl_parse_hex8(const char *p, uint32_t *out)
{
    uint32_t v = 0;
    unsigned bad = 0;
    for (int i = 0; i < 8; i++) {
        unsigned x = hex_val[(unsigned char)p[i]];
        bad |= x;
        v = v << 4 | (x & 15);
    }
    if (bad & 0xf0)
        return false;
    *out = v;
    return true;
}

/* load64 - 8 bytes at p, any alignment. */
static inline uint64_t load64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* same_stamp - the 23 time-stamp bytes at p equal the cached ones (three
 * overlapping 8-byte loads instead of a memcmp call). */
static inline bool same_stamp(const struct mxl_tcache *c, const char *p)
{
    return ((load64(c->stamp) ^ load64(p)) | (load64(c->stamp + 8) ^ load64(p + 8)) |
            (load64(c->stamp + 15) ^ load64(p + 15))) == 0;
}

/* mxl_parse_line - see parse.h. */
enum mxl_kind mxl_parse_line(const char *p, size_t n, struct mxl_line *out)
{
    struct mxl_tcache c = {.valid = false};
    return mxl_parse_line_c(p, n, out, &c);
}

/* mxl_parse_line_c - see parse.h. */
enum mxl_kind mxl_parse_line_c(const char *p, size_t n, struct mxl_line *out, struct mxl_tcache *c)
{
    out->kind = MXL_K_BAD;
    if (n < MXL_PREFIX_LEN || p[23] != ',' || p[24] != ' ' || p[33] != ',' || p[34] != ' ')
        return MXL_K_BAD;
    if (c->valid && same_stamp(c, p)) {
        out->t = c->t;
    } else {
        if (!mxl_parse_time(p, &out->t))
            return MXL_K_BAD;
        memcpy(c->stamp, p, 23);
        c->t = out->t;
        c->valid = true;
    }
    if (!mxl_parse_hex8(p + MXL_SID_OFF, &out->sid))
        return MXL_K_BAD;
    out->text = p + MXL_PREFIX_LEN;
    out->len = n - MXL_PREFIX_LEN;
    out->kind = mxl_classify(out->text, out->len);
    return out->kind;
}

/* starts - t[0..n) begins with lit (case-sensitive). */
static bool starts(const char *t, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    return n >= k && memcmp(t, lit, k) == 0;
}

/* istarts - t[0..n) begins with lit, ASCII case-insensitive (lit lower). */
static bool istarts(const char *t, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    if (n < k)
        return false;
    for (size_t i = 0; i < k; i++) {
        unsigned c = (unsigned char)t[i];
        if ((c >= 'A' && c <= 'Z' ? c | 0x20 : c) != (unsigned char)lit[i])
            return false;
    }
    return true;
}

/* verb_kind - a client command line: the verbs the reconstruction needs. */
static enum mxl_kind verb_kind(const char *t, size_t n)
{
    bool word4 = n == 4 || (n > 4 && (t[4] == ' ' || t[4] == '\r'));
    switch (t[0] | 0x20) {
    case 'm': return istarts(t, n, "mail from:") ? MXL_K_MAIL : MXL_K_OTHER;
    case 'r':
        if (istarts(t, n, "rcpt to:"))
            return MXL_K_RCPT;
        return word4 && istarts(t, n, "rset") ? MXL_K_RSET : MXL_K_OTHER;
    case 'e':
    case 'h':
        return (n == 4 || (n > 4 && t[4] == ' ')) &&
                       (istarts(t, n, "ehlo") || istarts(t, n, "helo"))
                   ? MXL_K_HELO
                   : MXL_K_OTHER;
    case 'd': return word4 && istarts(t, n, "data") ? MXL_K_DATA : MXL_K_OTHER;
    default: return MXL_K_OTHER;
    }
}

/* is_reply - "NNN " / "NNN-" / "NNN" with a 2..5 first digit. */
static bool is_reply(const char *t, size_t n)
{
    return n >= 3 && t[0] >= '2' && t[0] <= '5' && t[1] >= '0' && t[1] <= '9' && t[2] >= '0' &&
           t[2] <= '9' && (n == 3 || t[3] == ' ' || t[3] == '-');
}

struct prefix_kind {
    const char *lit;
    enum mxl_kind kind;
    size_t len;
};
#define PK(lit, kind)              \
    {                              \
        lit, kind, sizeof(lit) - 1 \
    }
#define NPK(tab) (sizeof(tab) / sizeof(tab[0]))

/* Check lines grouped by first byte: the literal prefixes session.c and
 * filter.c write (see README "The receivelog"). A line whose first byte
 * starts no check line is a client command or other dialogue. */
static const struct prefix_kind check_A[] = {
    PK("AUTH success: ", MXL_K_AUTH_OK),
    PK("AUTH failed (", MXL_K_AUTH_FAILED),
    PK("Antivirus: stream: ", MXL_K_VIRUS),
};
static const struct prefix_kind check_C[] = {
    PK("Connection accepted: ", MXL_K_CONNECT),
    PK("CloseClient Started.", MXL_K_CLOSE),
};
static const struct prefix_kind check_D[] = {
    PK("DNSBL verdict: ", MXL_K_DNSBL),
};
static const struct prefix_kind check_M[] = {
    PK("Message accepted: ", MXL_K_MSG_ACCEPTED),
    PK("Message refused (", MXL_K_MSG_REFUSED),
    PK("Message not queued: ", MXL_K_MSG_NOTQUEUED),
    PK("MAIL refused: ", MXL_K_MAIL_REFUSED),
};
static const struct prefix_kind check_P[] = {
    PK("PROXY header refused: ", MXL_K_PROXY_REFUSED),
};
static const struct prefix_kind check_R[] = {
    PK("RCPT refused: ", MXL_K_RCPT_REFUSED),
};
static const struct prefix_kind check_S[] = {
    PK("SURBL verdict: ", MXL_K_SURBL),
};
static const struct prefix_kind check_T[] = {
    PK("TLS established: ", MXL_K_TLS_OK),
    PK("TLS failed: ", MXL_K_TLS_FAILED),
    PK("Transaction summary: ", MXL_K_SUMMARY),
};
static const struct prefix_kind check_c[] = {
    PK("closesocket()", MXL_K_CLOSESOCKET),
    PK("client talked before the greeting", MXL_K_PREGREET),
};
static const struct prefix_kind check_e[] = {
    PK("end of input inside DATA", MXL_K_EOF_DATA),
};
static const struct prefix_kind check_m[] = {
    PK("max_sessions_per_ip (", MXL_K_PER_IP), PK("max_connect_rate_per_ip (", MXL_K_RATE),
    PK("max_sessions (", MXL_K_LIMIT),         PK("mxringd started (", MXL_K_START),
    PK("mxringd stopped (", MXL_K_STOP),
};
static const struct prefix_kind check_r[] = {
    PK("receivelog: ", MXL_K_LOST),
};
static const struct prefix_kind check_t[] = {
    PK("timeout_command timeout", MXL_K_TIMEOUT),
    PK("timeout_data timeout", MXL_K_TIMEOUT),
};

/* check_kind - the first literal of tab[0..k) that t starts with, else
 * the line as a client command. */
static enum mxl_kind check_kind(const char *t, size_t n, const struct prefix_kind *tab, size_t k)
{
    for (size_t i = 0; i < k; i++)
        if (n >= tab[i].len && memcmp(t, tab[i].lit, tab[i].len) == 0)
            return tab[i].kind;
    return verb_kind(t, n);
}

/* mxl_classify - see parse.h. One switch on the first byte picks the few
 * literals that can match (replies, the most common lines, first). */
enum mxl_kind mxl_classify(const char *t, size_t n)
{
    if (n == 0)
        return MXL_K_OTHER;
    switch (t[0]) {
    case '2':
    case '3':
    case '4':
    case '5': return is_reply(t, n) ? MXL_K_REPLY : MXL_K_OTHER;
    case '.': return n == 1 ? MXL_K_DOT : MXL_K_OTHER;
    case 'A': return check_kind(t, n, check_A, NPK(check_A));
    case 'C': return check_kind(t, n, check_C, NPK(check_C));
    case 'D': return check_kind(t, n, check_D, NPK(check_D));
    case 'M': return check_kind(t, n, check_M, NPK(check_M));
    case 'P': return check_kind(t, n, check_P, NPK(check_P));
    case 'R': return check_kind(t, n, check_R, NPK(check_R));
    case 'S': return check_kind(t, n, check_S, NPK(check_S));
    case 'T': return check_kind(t, n, check_T, NPK(check_T));
    case 'c': return check_kind(t, n, check_c, NPK(check_c));
    case 'e': return check_kind(t, n, check_e, NPK(check_e));
    case 'm': return check_kind(t, n, check_m, NPK(check_m));
    case 'r': return check_kind(t, n, check_r, NPK(check_r));
    case 't': return check_kind(t, n, check_t, NPK(check_t));
    default: return verb_kind(t, n);
    }
}

/* mxl_angle_addr - see parse.h. */
bool mxl_angle_addr(const char *t, size_t n, struct mxl_str *addr)
{
    const char *lt = memchr(t, '<', n);
    if (!lt)
        return false;
    const char *gt = memchr(lt, '>', n - (size_t)(lt - t));
    if (!gt)
        return false;
    addr->p = lt + 1;
    addr->n = (size_t)(gt - lt - 1);
    return true;
}

/* value_end - the end of a summary value starting at v. */
static const char *value_end(const char *v, const char *end)
{
    char close = *v == '"' ? '"' : *v == '<' ? '>' : ' ';
    const char *q = v + (close != ' ');
    while (q < end && *q != close)
        q++;
    return close != ' ' && q < end ? q + 1 : q;
}

/* mxl_fields - see parse.h. */
size_t mxl_fields(const char *t, size_t n, struct mxl_kv *kv, size_t max)
{
    const char *end = t + n, *p = t;
    size_t k = 0;
    if (starts(t, n, "Transaction summary: "))
        p += 21;
    while (p < end && k < max) {
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq)
            break;
        const char *v = eq + 1;
        const char *ve = v < end ? value_end(v, end) : v;
        kv[k].key = (struct mxl_str){p, (size_t)(eq - p)};
        kv[k].val = (struct mxl_str){v, (size_t)(ve - v)};
        if (kv[k].val.n >= 2 && (*v == '"' || *v == '<')) {
            kv[k].val.p++;
            kv[k].val.n -= 2;
        }
        k++;
        p = ve;
        while (p < end && *p == ' ')
            p++;
    }
    return k;
}

/* tail_take - the last space-separated token of t[0..*end) if it starts
 * with key (which includes its '='): its value into v, *end moved before
 * the space. False when it does not. */
static bool tail_take(const char *t, size_t *end, const char *key, struct mxl_str *v)
{
    const char *sp = memrchr(t, ' ', *end);
    if (!sp)
        return false;
    size_t at = (size_t)(sp - t) + 1, k = strlen(key);
    if (*end - at < k || memcmp(t + at, key, k) != 0)
        return false;
    *v = (struct mxl_str){t + at + k, *end - at - k};
    *end = (size_t)(sp - t);
    return true;
}

/* head_take - "key" + value up to the next space at *pos; false if absent. */
static bool head_take(const char *t, size_t end, size_t *pos, const char *key, struct mxl_str *v)
{
    size_t k = strlen(key);
    if (end - *pos < k || memcmp(t + *pos, key, k) != 0)
        return false;
    const char *p = t + *pos + k, *sp = memchr(p, ' ', end - *pos - k);
    if (!sp)
        return false;
    *v = (struct mxl_str){p, (size_t)(sp - p)};
    *pos = (size_t)(sp - t) + 1;
    return true;
}

/* mxl_summary_fields - see parse.h. The reason holds no '"' (the server
 * turns them into '\''), so it is the text between the line's last two. */
size_t mxl_summary_fields(const char *t, size_t n, struct mxl_kv *kv, size_t max)
{
    static const char *const tail[] = {"result=", "size=", "rcpts_refused=", "rcpts="};
    static const char *const head[] = {"client=", "helo=", "tls=", "auth="};
    struct mxl_str hv[4], tv[4], id = {0}, reason = {0};
    if (!starts(t, n, "Transaction summary: ") || max < 11)
        return 0;
    t += 21, n -= 21;
    size_t end = n, pos = 0, k = 0;
    const char *q = n >= 2 && t[n - 1] == '"' ? memrchr(t, '"', n - 1) : NULL;
    if (q && q - t >= 8 && memcmp(q - 8, " reason=", 8) == 0) {
        reason = (struct mxl_str){q + 1, (size_t)(t + n - 1 - q - 1)};
        end = (size_t)(q - 8 - t);
    }
    bool has_id = tail_take(t, &end, "id=", &id);
    for (size_t i = 0; i < 4; i++)
        if (!tail_take(t, &end, tail[i], &tv[i]))
            return 0;
    for (size_t i = 0; i < 4; i++)
        if (!head_take(t, end, &pos, head[i], &hv[i]))
            return 0;
    if (end - pos < 7 || memcmp(t + pos, "from=<", 6) != 0 || t[end - 1] != '>')
        return 0;
    for (size_t i = 0; i < 4; i++)
        kv[k++] = (struct mxl_kv){{head[i], strlen(head[i]) - 1}, hv[i]};
    kv[k++] = (struct mxl_kv){{"from", 4}, {t + pos + 6, end - pos - 7}};
    for (size_t i = 4; i-- > 0;)
        kv[k++] = (struct mxl_kv){{tail[i], strlen(tail[i]) - 1}, tv[i]};
    if (has_id)
        kv[k++] = (struct mxl_kv){{"id", 2}, id};
    if (reason.p)
        kv[k++] = (struct mxl_kv){{"reason", 6}, reason};
    return k;
}

/* mxl_field - see parse.h. Values are found left to right, so a value that
 * contains "key=" (a quoted reason) is never taken for the key. */
bool mxl_field(const char *t, size_t n, const char *key, struct mxl_str *val)
{
    size_t k = strlen(key);
    const char *end = t + n, *p = t;
    if (starts(t, n, "Transaction summary: "))
        p += 21;
    while (p < end) {
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq)
            return false;
        const char *v = eq + 1;
        const char *ve = v < end ? value_end(v, end) : v;
        if ((size_t)(eq - p) == k && memcmp(p, key, k) == 0) {
            val->p = v;
            val->n = (size_t)(ve - v);
            if (val->n >= 2 && (*v == '"' || *v == '<')) {
                val->p++;
                val->n -= 2;
            }
            return true;
        }
        p = ve;
        while (p < end && *p == ' ')
            p++;
    }
    return false;
}

/* mxl_after - see parse.h. */
bool mxl_after(const char *t, size_t n, const char *lit, struct mxl_str *rest)
{
    if (!starts(t, n, lit))
        return false;
    size_t k = strlen(lit);
    rest->p = t + k;
    rest->n = n - k;
    return true;
}

/* mxl_u64 - see parse.h (saturates instead of wrapping). */
uint64_t mxl_u64(struct mxl_str s)
{
    uint64_t v = 0;
    for (size_t i = 0; i < s.n && s.p[i] >= '0' && s.p[i] <= '9'; i++) {
        unsigned d = (unsigned)(s.p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return UINT64_MAX;
        v = v * 10 + d;
    }
    return v;
}

/* mxl_ieq - see parse.h. */
bool mxl_ieq(struct mxl_str a, const char *b, size_t bn)
{
    if (a.n != bn)
        return false;
    for (size_t i = 0; i < bn; i++) {
        unsigned x = (unsigned char)a.p[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x |= 0x20;
        if (y >= 'A' && y <= 'Z')
            y |= 0x20;
        if (x != y)
            return false;
    }
    return true;
}
