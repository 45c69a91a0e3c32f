/* rlog_out.c - the flusher's side of the receivelog files: pending lines
 * grouped in per-day segments, one write() per segment per cycle into
 * <workdir>/<folder>/<host>/<YYYYMMDD>.log (folder receivelog or deliverylog), retry on failure, and when the
 * pending limit is reached the oldest lines are dropped, counted and
 * reported. Only the flusher thread (or rlog_flush_now's caller) calls it. */
#include "rlog_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUT_PENDING_LIMIT (64u << 20)
#define OUT_SEG_MIN (64u << 10)
#define OUT_DIR_MODE 0750 /* day files hold addresses: not world-readable */
#define OUT_FILE_MODE 0640
#define OUT_LINE_EXTRA (RLOG_PREFIX_LEN + 1) /* prefix + LF */

/* rlog_out_init - paths and an empty pending list. 0 or -errno. */
int rlog_out_init(struct rlog_out *o, const char *workdir, const char *folder, const char *host)
{
    memset(o, 0, sizeof(*o));
    o->fd = -1;
    o->limit = OUT_PENDING_LIMIT;
    o->dc.sec = -1;
    if (asprintf(&o->top, "%s/%s", workdir, folder) < 0)
        return -ENOMEM;
    if (asprintf(&o->dir, "%s/%s", o->top, host) < 0) {
        free(o->top);
        return -ENOMEM;
    }
    return 0;
}

/* rlog_out_fini - close the file and free all buffers. */
void rlog_out_fini(struct rlog_out *o)
{
    rlog_out_close(o);
    for (size_t i = 0; i < o->capsegs; i++)
        free(o->segs[i].buf);
    free(o->segs);
    free(o->top);
    free(o->dir);
}

/* rlog_out_close - close the open day file, if any. */
void rlog_out_close(struct rlog_out *o)
{
    if (o->fd >= 0)
        close(o->fd);
    o->fd = -1;
}

/* rlog_out_close_day - close the file if it is day's (retention uses it). */
void rlog_out_close_day(struct rlog_out *o, uint32_t day)
{
    if (o->fd >= 0 && o->fd_day == day)
        rlog_out_close(o);
}

/* seg_new - append an empty segment for day (keeps freed buffers). */
static struct rlog_seg *seg_new(struct rlog_out *o, uint32_t day)
{
    if (o->nsegs == o->capsegs) {
        size_t n = o->capsegs ? o->capsegs * 2 : 4;
        struct rlog_seg *s = realloc(o->segs, n * sizeof(*s));
        if (!s)
            return NULL;
        memset(s + o->capsegs, 0, (n - o->capsegs) * sizeof(*s));
        o->segs = s;
        o->capsegs = n;
    }
    struct rlog_seg *s = &o->segs[o->nsegs++];
    s->day = day;
    s->len = s->off = 0;
    return s;
}

/* seg_room - make room for n more bytes in s. */
static bool seg_room(struct rlog_seg *s, size_t n)
{
    if (s->cap - s->len >= n)
        return true;
    size_t cap = s->cap ? s->cap : OUT_SEG_MIN;
    while (cap - s->len < n)
        cap *= 2;
    char *b = realloc(s->buf, cap);
    if (!b)
        return false;
    s->buf = b;
    s->cap = cap;
    return true;
}

/* rlog_out_line - append one line (clamped so file time stamps never go
 * backwards). false (line counted as dropped) when memory runs out. */
bool rlog_out_line(struct rlog_out *o, uint64_t ts, uint32_t sid, const char *text, size_t len)
{
    if (ts < o->last_ts)
        ts = o->last_ts;
    o->last_ts = ts;
    int64_t sec = (int64_t)(ts / RLOG_NS_PER_SEC);
    if (sec != o->dc.sec)
        rlog_datecache_set(&o->dc, sec);
    struct rlog_seg *s = o->nsegs ? &o->segs[o->nsegs - 1] : NULL;
    if (!s || s->day != o->dc.day)
        s = seg_new(o, o->dc.day);
    if (!s || !seg_room(s, len + OUT_LINE_EXTRA)) {
        o->lost++;
        o->lost_errno = ENOMEM;
        atomic_fetch_add_explicit(&o->st.lines_dropped, 1, memory_order_relaxed);
        return false;
    }
    char *d = s->buf + s->len;
    memcpy(d, o->dc.text, RLOG_DATE_LEN);
    rlog_hex8(d + RLOG_DATE_LEN, sid);
    d[RLOG_DATE_LEN + 8] = ',';
    d[RLOG_DATE_LEN + 9] = ' ';
    memcpy(d + RLOG_PREFIX_LEN, text, len);
    d[RLOG_PREFIX_LEN + len] = '\n';
    s->len += len + OUT_LINE_EXTRA;
    o->pending += len + OUT_LINE_EXTRA;
    return true;
}

/* open_day - make fd the file of day (mkdir the host folder, never the
 * receivelog folder itself). 0 or -errno. */
static int open_day(struct rlog_out *o, uint32_t day)
{
    if (o->fd >= 0 && o->fd_day == day)
        return 0;
    rlog_out_close(o);
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%08u.log", o->dir, (unsigned)day) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, OUT_FILE_MODE);
    if (fd < 0 && errno == ENOENT && (mkdir(o->dir, OUT_DIR_MODE) == 0 || errno == EEXIST))
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, OUT_FILE_MODE);
    if (fd < 0)
        return -errno;
    o->fd = fd;
    o->fd_day = day;
    return 0;
}

/* count_lines - LF bytes in [p, p+n). */
static uint64_t count_lines(const char *p, size_t n)
{
    uint64_t k = 0;
    for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
        k++;
    return k;
}

/* seg_pop_front - remove the first segment, recycling its buffer. */
static void seg_pop_front(struct rlog_out *o)
{
    struct rlog_seg first = o->segs[0];
    memmove(o->segs, o->segs + 1, (o->capsegs - 1) * sizeof(*o->segs));
    first.len = first.off = 0;
    o->segs[o->capsegs - 1] = first;
    o->nsegs--;
}

/* write_seg - write the unwritten rest of s. 0 or -errno. */
static int write_seg(struct rlog_out *o, struct rlog_seg *s)
{
    int rc = open_day(o, s->day);
    if (rc < 0)
        return rc;
    while (s->off < s->len) {
        ssize_t n = write(o->fd, s->buf + s->off, s->len - s->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        atomic_fetch_add_explicit(&o->st.lines_written, count_lines(s->buf + s->off, (size_t)n),
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&o->st.bytes_written, (uint64_t)n, memory_order_relaxed);
        s->off += (size_t)n;
        o->pending -= (size_t)n;
    }
    return 0;
}

/* drop_oldest - over the limit: drop whole lines from the front. */
static void drop_oldest(struct rlog_out *o)
{
    while (o->pending > o->limit && o->nsegs) {
        struct rlog_seg *s = &o->segs[0];
        size_t want = o->pending - o->limit, left = s->len - s->off;
        if (left == 0) {
            seg_pop_front(o);
            continue;
        }
        size_t cut = want < left ? want : left;
        const char *lf = memchr(s->buf + s->off + cut - 1, '\n', left - cut + 1);
        size_t end = lf ? (size_t)(lf - s->buf) + 1 : s->len;
        uint64_t k = count_lines(s->buf + s->off, end - s->off);
        o->lost += k;
        o->lost_errno = o->fail_errno;
        atomic_fetch_add_explicit(&o->st.lines_dropped, k, memory_order_relaxed);
        o->pending -= end - s->off;
        s->off = end;
        if (s->off == s->len)
            seg_pop_front(o);
    }
}

/* report_lost - after a successful write: one line in the file (session
 * 00000000) and one on stderr saying how many lines were lost. */
static void report_lost(struct rlog_out *o)
{
    char text[128];
    int n = snprintf(text, sizeof(text), "receivelog: %llu lines lost (write error: %s)",
                     (unsigned long long)o->lost, strerror(o->lost_errno));
    fprintf(stderr, "mxringd: %s\n", text);
    o->lost = 0;
    rlog_out_line(o, o->last_ts, 0, text, (size_t)n);
}

/* write_all - write every segment in order; 0 or the first -errno. */
static int write_all(struct rlog_out *o)
{
    while (o->nsegs) {
        int rc = write_seg(o, &o->segs[0]);
        if (rc < 0)
            return rc;
        seg_pop_front(o);
    }
    return 0;
}

/* discard_all - logging is off: write what still goes to the open file,
 * discard the rest (the folder is gone), close the file. */
static void discard_all(struct rlog_out *o)
{
    while (o->nsegs) {
        struct rlog_seg *s = &o->segs[0];
        if (o->fd < 0 || s->day != o->fd_day || write_seg(o, s) < 0)
            o->pending -= s->len - s->off;
        seg_pop_front(o);
    }
    rlog_out_close(o);
}

/* rlog_out_write - one write attempt of everything pending. While logging
 * is off, see discard_all(). On failure the lines stay (up to the limit)
 * for the next cycle and the oldest are dropped above it. */
void rlog_out_write(struct rlog_out *o, bool on)
{
    if (!on) {
        discard_all(o);
        return;
    }
    int rc = write_all(o);
    if (rc == 0 && o->lost) {
        report_lost(o);
        rc = write_all(o);
    }
    if (rc == 0) {
        if (o->fail_errno)
            fprintf(stderr, "mxringd: receivelog: writing works again\n");
        o->fail_errno = 0;
        return;
    }
    atomic_fetch_add_explicit(&o->st.write_errors, 1, memory_order_relaxed);
    if (o->fail_errno == 0)
        fprintf(stderr, "mxringd: receivelog: cannot write to %s: %s (retrying)\n", o->dir,
                strerror(-rc));
    o->fail_errno = -rc;
    rlog_out_close(o);
    drop_oldest(o);
}
