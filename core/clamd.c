/* clamd.c - the clamd INSTREAM protocol without I/O: the stream cursor
 * (command, length-prefixed chunks, terminator as iovecs into the caller's
 * message, or into the window of it the caller supplied) and the reply
 * parser. Pure; a cursor belongs to one thread at a time, the parser is
 * reentrant. */
#include "clamd.h"

#include <string.h>

#define REPLY_STREAM "stream: "
#define REPLY_OK "OK"
#define REPLY_FOUND " FOUND"
#define REPLY_ERROR_WORD "ERROR"
#define REPLY_ERROR " " REPLY_ERROR_WORD
#define REPLY_SIZE_LIMIT "INSTREAM size limit exceeded. ERROR"
#define REPLY_SESSION_SEP ": " /* "<n>: " before an IDSESSION reply */

static const char clamd_cmd[CLAMD_CMD_LEN] = CLAMD_CMD_INSTREAM;

/* chunk_count - chunks a len-octet message takes. */
static uint64_t chunk_count(size_t len, size_t chunk)
{
    return len / chunk + (len % chunk != 0);
}

/* chunk_norm - the chunk size actually used for a requested one. */
static size_t chunk_norm(size_t chunk)
{
    if (chunk == 0)
        return CLAMD_CHUNK_DEFAULT;
    return chunk > UINT32_MAX ? UINT32_MAX : chunk;
}

/* clamd_stream_size - see clamd.h. */
uint64_t clamd_stream_size(size_t len, size_t chunk)
{
    chunk = chunk_norm(chunk);
    return CLAMD_CMD_LEN + chunk_count(len, chunk) * CLAMD_LEN_PREFIX + len + CLAMD_LEN_PREFIX;
}

/* clamd_stream_init - see clamd.h. */
void clamd_stream_init(struct clamd_stream *cs, const void *msg, size_t len, size_t chunk)
{
    memset(cs, 0, sizeof(*cs));
    cs->win = msg;
    cs->win_len = msg ? len : 0;
    cs->len = len;
    cs->chunk = chunk_norm(chunk);
    cs->total = clamd_stream_size(len, cs->chunk);
}

/* clamd_stream_window - see clamd.h. */
void clamd_stream_window(struct clamd_stream *cs, const void *p, size_t off, size_t n)
{
    cs->win = p;
    cs->win_off = off;
    cs->win_len = n;
}

/* in_window - are the octets of the chunk at start (clen long) in the window? */
static bool in_window(const struct clamd_stream *cs, uint64_t start, size_t clen)
{
    return cs->win && start >= cs->win_off && start - cs->win_off + clen <= cs->win_len;
}

/* chunk_at - the chunk whose prefix or data holds stream octet pos (or the
 * first chunk, during the command): false past the last chunk. */
static bool chunk_at(const struct clamd_stream *cs, uint64_t pos, uint64_t *start, size_t *clen)
{
    uint64_t region = chunk_count(cs->len, cs->chunk) * CLAMD_LEN_PREFIX + cs->len;
    uint64_t r = pos < CLAMD_CMD_LEN ? 0 : pos - CLAMD_CMD_LEN;
    uint64_t span = (uint64_t)cs->chunk + CLAMD_LEN_PREFIX;
    if (r >= region)
        return false; /* the terminator (or done) */
    *start = r / span * cs->chunk;
    *clen = cs->len - *start < cs->chunk ? (size_t)(cs->len - *start) : cs->chunk;
    return true;
}

/* clamd_stream_need - see clamd.h. */
bool clamd_stream_need(const struct clamd_stream *cs, size_t *off, size_t *n)
{
    uint64_t start;
    size_t clen;
    if (!chunk_at(cs, cs->pos, &start, &clen) || in_window(cs, start, clen))
        return false;
    *off = (size_t)start;
    *n = clen;
    return true;
}

/* put32 - store v big-endian at p. */
static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* seg_at - the rest of the stream segment (command, one chunk's prefix or
 * data, terminator) holding stream octet pos, as an iovec; false when it is
 * a chunk outside the window. For a length prefix *prefix_len is set to the
 * chunk length its slot must hold (the caller writes it); otherwise to
 * SIZE_MAX. */
static bool seg_at(struct clamd_stream *cs, uint64_t pos, struct iovec *v, size_t *prefix_len)
{
    uint64_t region = chunk_count(cs->len, cs->chunk) * CLAMD_LEN_PREFIX + cs->len;
    *prefix_len = SIZE_MAX;
    if (pos < CLAMD_CMD_LEN) {
        *v = (struct iovec){(void *)(clamd_cmd + pos), CLAMD_CMD_LEN - pos};
        return true;
    }
    uint64_t r = pos - CLAMD_CMD_LEN;
    if (r >= region) {
        uint64_t t = r - region;
        *v = (struct iovec){cs->end + t, CLAMD_LEN_PREFIX - t};
        return true;
    }
    uint64_t span = (uint64_t)cs->chunk + CLAMD_LEN_PREFIX, i = r / span, off = r % span;
    uint64_t start = i * cs->chunk;
    size_t clen = cs->len - start < cs->chunk ? (size_t)(cs->len - start) : cs->chunk;
    if (!in_window(cs, start, clen))
        return false; /* its prefix waits for its data: they go out together */
    if (off < CLAMD_LEN_PREFIX) {
        *prefix_len = clen;
        *v = (struct iovec){cs->hdr[i % CLAMD_CURSOR_CHUNKS] + off, CLAMD_LEN_PREFIX - off};
        return true;
    }
    off -= CLAMD_LEN_PREFIX;
    *v = (struct iovec){(void *)(cs->win + (start - cs->win_off) + off), clen - off};
    return true;
}

/* clamd_stream_fill - see clamd.h. */
size_t clamd_stream_fill(struct clamd_stream *cs, struct iovec *iov, size_t max)
{
    size_t k = 0, prefixes = 0;
    uint64_t pos = cs->pos;
    while (k < max && pos < cs->total) {
        size_t plen;
        struct iovec v;
        if (!seg_at(cs, pos, &v, &plen))
            break;
        if (plen != SIZE_MAX) {
            if (prefixes++ == CLAMD_CURSOR_CHUNKS)
                break; /* its slot still backs an earlier iovec of this fill */
            size_t off = (size_t)(CLAMD_LEN_PREFIX - v.iov_len);
            put32((uint8_t *)v.iov_base - off, (uint32_t)plen);
        }
        iov[k++] = v;
        pos += v.iov_len;
    }
    return k;
}

/* clamd_stream_advance - see clamd.h. */
void clamd_stream_advance(struct clamd_stream *cs, size_t n)
{
    cs->pos = (cs->total - cs->pos < n) ? cs->total : cs->pos + n;
}

/* clamd_stream_done - see clamd.h. */
bool clamd_stream_done(const struct clamd_stream *cs)
{
    return cs->pos >= cs->total;
}

/* ends_with - p[0..n) ends with the C string s. */
static bool ends_with(const char *p, size_t n, const char *s)
{
    size_t sl = strlen(s);
    return n >= sl && memcmp(p + n - sl, s, sl) == 0;
}

/* starts_with - p[0..n) starts with the C string s. */
static bool starts_with(const char *p, size_t n, const char *s)
{
    size_t sl = strlen(s);
    return n >= sl && memcmp(p, s, sl) == 0;
}

/* text_copy - keep p[0..n) (cut to CLAMD_NAME_MAX) in r->name. */
static void text_copy(struct clamd_reply *r, const char *p, size_t n)
{
    if (n > CLAMD_NAME_MAX)
        n = CLAMD_NAME_MAX;
    memcpy(r->name, p, n);
    r->name[n] = 0;
}

/* skip_session - drop a "<digits>: " IDSESSION prefix from the line. */
static void skip_session(const char **p, size_t *n)
{
    size_t i = 0;
    while (i < *n && (*p)[i] >= '0' && (*p)[i] <= '9')
        i++;
    if (i > 0 && starts_with(*p + i, *n - i, REPLY_SESSION_SEP)) {
        *p += i + strlen(REPLY_SESSION_SEP);
        *n -= i + strlen(REPLY_SESSION_SEP);
    }
}

/* line_verdict - classify one complete reply line p[0..n). */
static enum clamd_verdict line_verdict(const char *p, size_t n, struct clamd_reply *r)
{
    while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' '))
        n--;
    skip_session(&p, &n);
    if (n == strlen(REPLY_SIZE_LIMIT) && starts_with(p, n, REPLY_SIZE_LIMIT)) {
        text_copy(r, p, n - strlen(REPLY_ERROR));
        return CLAMD_SIZE_LIMIT;
    }
    bool stream = starts_with(p, n, REPLY_STREAM);
    if (stream) {
        p += strlen(REPLY_STREAM);
        n -= strlen(REPLY_STREAM);
    }
    if (stream && n == strlen(REPLY_OK) && starts_with(p, n, REPLY_OK))
        return CLAMD_CLEAN;
    if (stream && ends_with(p, n, REPLY_FOUND) && n > strlen(REPLY_FOUND)) {
        text_copy(r, p, n - strlen(REPLY_FOUND));
        return CLAMD_FOUND;
    }
    if (ends_with(p, n, REPLY_ERROR) ||
        (n == strlen(REPLY_ERROR_WORD) && starts_with(p, n, REPLY_ERROR_WORD))) {
        size_t tl = n >= strlen(REPLY_ERROR) ? n - strlen(REPLY_ERROR) : 0;
        text_copy(r, p, tl);
        return CLAMD_ERROR;
    }
    text_copy(r, p, n);
    return CLAMD_MALFORMED;
}

/* clamd_reply_parse - see clamd.h. */
enum clamd_verdict clamd_reply_parse(const char *buf, size_t len, bool eof, struct clamd_reply *r)
{
    memset(r, 0, sizeof(*r));
    size_t end = 0;
    while (end < len && buf[end] != '\0' && buf[end] != '\n')
        end++;
    if (end == len && !eof) {
        if (len < CLAMD_REPLY_MAX)
            return r->verdict = CLAMD_INCOMPLETE;
        r->used = len;
        return r->verdict = CLAMD_MALFORMED;
    }
    if (len == 0)
        return r->verdict = CLAMD_MALFORMED; /* closed without a word */
    r->used = end < len ? end + 1 : len;
    return r->verdict = line_verdict(buf, end, r);
}

/* clamd_verdict_name - see clamd.h. */
const char *clamd_verdict_name(enum clamd_verdict v)
{
    static const char *const names[] = {
        [CLAMD_CLEAN] = "clean", [CLAMD_FOUND] = "found",         [CLAMD_SIZE_LIMIT] = "size-limit",
        [CLAMD_ERROR] = "error", [CLAMD_MALFORMED] = "malformed", [CLAMD_INCOMPLETE] = "incomplete",
    };
    return ((unsigned)v < sizeof(names) / sizeof(names[0])) ? names[v] : "unknown";
}
