/* test_rlog_util.h - helpers shared by the receivelog unit tests: temp work
 * folders, a fake clock, reading and removing files. Test threads only. */
#ifndef MXRING_TEST_RLOG_UTIL_H
#define MXRING_TEST_RLOG_UTIL_H

#include <dirent.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rlog.h"

#define T_NS 1000000000ull

/* fake_clock - a settable clock for rlog_opts.clock (seq_cst, see rlog.c). */
struct fake_clock {
    _Atomic uint64_t now;
};

static inline uint64_t fake_clock_read(void *arg)
{
    return atomic_load(&((struct fake_clock *)arg)->now);
}

static inline void fake_clock_set(struct fake_clock *c, uint64_t ns)
{
    atomic_store(&c->now, ns);
}

/* t_utc - ns of a UTC civil time (tests run with TZ=UTC). */
static inline uint64_t t_utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return (uint64_t)timegm(&tm) * T_NS;
}

/* t_use_utc - local time = UTC for the whole test binary. */
static inline void t_use_utc(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
}

/* t_mkdtemp - a fresh temp folder; caller frees the path. */
static inline char *t_mkdtemp(void)
{
    char *p = strdup("/tmp/mxring-rlog-XXXXXX");
    if (!p || !mkdtemp(p))
        abort();
    return p;
}

/* t_path - printf into a heap string (checked as a printf format). */
static inline __attribute__((format(printf, 1, 2))) char *t_path(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    return s;
}

/* t_read - whole file into a NUL-terminated heap buffer, or NULL. */
static inline char *t_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0, k;
    char *b = malloc(cap + 1);
    while (b && (k = fread(b + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            cap *= 2;
            b = realloc(b, cap + 1);
        }
    }
    fclose(f);
    if (!b)
        abort();
    b[n] = 0;
    if (len)
        *len = n;
    return b;
}

/* t_exists - does path exist? */
static inline int t_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* t_rmrf - remove a folder tree (test temp folders only). */
static inline void t_rmrf(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *sub = t_path("%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            t_rmrf(sub);
        else
            unlink(sub);
        free(sub);
    }
    closedir(d);
    rmdir(path);
}

/* t_count_lines - LF count of a buffer. */
static inline size_t t_count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

#endif
