/* rlog_retain.c - retention of receivelog day files: deletes files older
 * than keep_days and gzips .log files older than compress_after days into
 * <name>.log.gz (temp file, fsync, rename, unlink). Ages compare the name's
 * date with today's local date. Compression runs in slices so the flusher
 * keeps draining the rings. Only the flusher thread calls it. */
#include "rlog_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define RETAIN_BUDGET (256u << 10) /* input bytes compressed per cycle */
#define RETAIN_CHUNK (64u << 10)
#define RETAIN_MIN_GAP_S 3600 /* at most one scan an hour */
#define RETAIN_GZ_MODE "wb6"
#define RETAIN_FILE_MODE 0640
#define DATE_DIGITS 8

enum file_type { FT_NONE, FT_LOG, FT_GZ };

/* rlog_retain_init - no job, nothing scanned yet. */
void rlog_retain_init(struct rlog_retain *r, unsigned keep_days, unsigned compress_after)
{
    memset(r, 0, sizeof(*r));
    r->keep_days = keep_days;
    r->compress_after = compress_after;
    r->in_fd = r->out_fd = -1;
}

/* day_path - <dir>/<day><suffix> into buf. */
static bool day_path(char *buf, size_t cap, const char *dir, uint32_t day, const char *suffix)
{
    int n = snprintf(buf, cap, "%s/%08u%s", dir, (unsigned)day, suffix);
    return n > 0 && (size_t)n < cap;
}

/* job_abort - drop the job in progress and its temp file. */
static void job_abort(struct rlog_retain *r, const char *dir)
{
    char tmp[PATH_MAX];
    if (r->gz)
        gzclose(r->gz);
    if (r->in_fd >= 0)
        close(r->in_fd);
    if (r->out_fd >= 0)
        close(r->out_fd);
    if (r->gz || r->out_fd >= 0)
        if (day_path(tmp, sizeof(tmp), dir, r->job_day, ".log.gz.tmp"))
            unlink(tmp);
    r->gz = NULL;
    r->in_fd = r->out_fd = -1;
}

/* rlog_retain_fini - abandon any job (its temp file is removed). */
void rlog_retain_fini(struct rlog_retain *r, const char *dir)
{
    job_abort(r, dir);
    free(r->queue);
    r->queue = NULL;
}

/* parse_name - "yyyymmdd.log" or "yyyymmdd.log.gz" -> type and day. */
static enum file_type parse_name(const char *name, uint32_t *day)
{
    uint32_t v = 0;
    for (int i = 0; i < DATE_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return FT_NONE;
        v = v * 10 + (uint32_t)(name[i] - '0');
    }
    uint32_t m = v / 100 % 100, d = v % 100;
    if (m < 1 || m > 12 || d < 1 || d > 31)
        return FT_NONE;
    *day = v;
    if (strcmp(name + DATE_DIGITS, ".log") == 0)
        return FT_LOG;
    if (strcmp(name + DATE_DIGITS, ".log.gz") == 0)
        return FT_GZ;
    return FT_NONE;
}

/* queue_add - remember day for compression (once). */
static void queue_add(struct rlog_retain *r, uint32_t day)
{
    if (r->gz && r->job_day == day)
        return;
    for (size_t i = 0; i < r->nq; i++)
        if (r->queue[i] == day)
            return;
    if (r->nq == r->capq) {
        size_t n = r->capq ? r->capq * 2 : 16;
        uint32_t *q = realloc(r->queue, n * sizeof(*q));
        if (!q)
            return; /* retried at the next scan */
        r->queue = q;
        r->capq = n;
    }
    r->queue[r->nq++] = day;
}

/* scan_entry - apply the rules to one directory entry. */
static void scan_entry(struct rlog_retain *r, struct rlog_out *o, const char *name, int64_t today)
{
    uint32_t day;
    enum file_type t = parse_name(name, &day);
    if (t == FT_NONE)
        return;
    int64_t age = today - rlog_day_number(day);
    if (r->keep_days && age > (int64_t)r->keep_days && !(r->gz && r->job_day == day)) {
        char path[PATH_MAX];
        if (t == FT_LOG)
            rlog_out_close_day(o, day);
        if (day_path(path, sizeof(path), o->dir, day, t == FT_LOG ? ".log" : ".log.gz") &&
            unlink(path) < 0 && errno != ENOENT)
            fprintf(stderr, "mxringd: receivelog: cannot delete %s: %s\n", path, strerror(errno));
        return;
    }
    if (r->compress_after && t == FT_LOG && age > (int64_t)r->compress_after)
        queue_add(r, day);
}

/* scan - list the host folder and apply keep/compress rules. */
static void scan(struct rlog_retain *r, struct rlog_out *o, uint32_t today)
{
    DIR *d = opendir(o->dir);
    if (!d)
        return;
    int64_t tn = rlog_day_number(today);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        scan_entry(r, o, e->d_name, tn);
    closedir(d);
}

/* copy_fd - append all of fd in to fd out. 0 or -1. */
static int copy_fd(int in, int out)
{
    char buf[RETAIN_CHUNK];
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n == 0)
            return 0;
        if (n < 0 || write(out, buf, (size_t)n) != n)
            return -1;
    }
}

/* job_start - open <day>.log and the temp file; an existing .log.gz is
 * copied first so the new data becomes an extra gzip member. */
static int job_start(struct rlog_retain *r, const char *dir, uint32_t day)
{
    char path[PATH_MAX], tmp[PATH_MAX], gzp[PATH_MAX];
    if (!day_path(path, sizeof(path), dir, day, ".log") ||
        !day_path(gzp, sizeof(gzp), dir, day, ".log.gz") ||
        !day_path(tmp, sizeof(tmp), dir, day, ".log.gz.tmp"))
        return -1;
    r->job_day = day;
    r->in_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->in_fd < 0)
        return errno == ENOENT ? 0 : -1;
    r->out_fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, RETAIN_FILE_MODE);
    if (r->out_fd < 0)
        return -1;
    int old = open(gzp, O_RDONLY | O_CLOEXEC);
    if (old >= 0) {
        int rc = copy_fd(old, r->out_fd);
        close(old);
        if (rc < 0)
            return -1;
    }
    int dfd = dup(r->out_fd);
    if (dfd < 0)
        return -1;
    r->gz = gzdopen(dfd, RETAIN_GZ_MODE);
    if (!r->gz) {
        close(dfd);
        return -1;
    }
    return 0;
}

/* fsync_dir - make a rename in dir durable. */
static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* job_finish - close the gzip stream, fsync, rename into place, unlink the
 * original (after closing the flusher's fd of that day). */
static int job_finish(struct rlog_retain *r, struct rlog_out *o)
{
    char path[PATH_MAX], tmp[PATH_MAX], gzp[PATH_MAX];
    int zrc = gzclose(r->gz);
    r->gz = NULL;
    if (zrc != Z_OK || fsync(r->out_fd) < 0)
        return -1;
    if (!day_path(path, sizeof(path), o->dir, r->job_day, ".log") ||
        !day_path(gzp, sizeof(gzp), o->dir, r->job_day, ".log.gz") ||
        !day_path(tmp, sizeof(tmp), o->dir, r->job_day, ".log.gz.tmp") || rename(tmp, gzp) < 0)
        return -1;
    close(r->out_fd);
    r->out_fd = -1;
    fsync_dir(o->dir);
    rlog_out_close_day(o, r->job_day);
    unlink(path);
    close(r->in_fd);
    r->in_fd = -1;
    return 0;
}

/* job_step - compress up to budget bytes of the job; returns bytes used.
 * At end of file the job is finished (or abandoned on error). */
static size_t job_step(struct rlog_retain *r, struct rlog_out *o, size_t budget)
{
    char buf[RETAIN_CHUNK];
    size_t used = 0;
    while (used < budget) {
        size_t want = budget - used < sizeof(buf) ? budget - used : sizeof(buf);
        ssize_t n = read(r->in_fd, buf, want);
        if (n > 0 && gzwrite(r->gz, buf, (unsigned)n) == (int)n) {
            used += (size_t)n;
            continue;
        }
        if (n != 0 || job_finish(r, o) < 0) {
            fprintf(stderr, "mxringd: receivelog: cannot compress %s/%08u.log: %s\n", o->dir,
                    (unsigned)r->job_day, strerror(errno));
            job_abort(r, o->dir);
        }
        return used;
    }
    return used;
}

/* compress_some - work through the queue within one cycle's budget. */
static void compress_some(struct rlog_retain *r, struct rlog_out *o)
{
    size_t budget = RETAIN_BUDGET;
    while (budget > 0 && (r->gz || r->nq)) {
        if (!r->gz) {
            uint32_t day = r->queue[--r->nq];
            if (job_start(r, o->dir, day) < 0) {
                fprintf(stderr, "mxringd: receivelog: cannot compress %s/%08u.log: %s\n", o->dir,
                        (unsigned)day, strerror(errno));
                job_abort(r, o->dir);
            }
            if (!r->gz) {
                job_abort(r, o->dir);
                continue;
            }
        }
        budget -= job_step(r, o, budget);
    }
}

/* rlog_retain_tick - scan at the first call and when the local date has
 * changed (at most once an hour), then compress a slice. */
void rlog_retain_tick(struct rlog_retain *r, struct rlog_out *o, uint64_t now_ns)
{
    if (!r->keep_days && !r->compress_after)
        return;
    int64_t sec = (int64_t)(now_ns / RLOG_NS_PER_SEC);
    uint32_t today = rlog_local_day(sec);
    if (!r->ran || (today != r->last_day && sec - r->last_sec >= RETAIN_MIN_GAP_S)) {
        scan(r, o, today);
        r->ran = true;
        r->last_sec = sec;
        r->last_day = today;
    }
    compress_some(r, o);
}
