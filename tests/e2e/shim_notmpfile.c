/* shim_notmpfile.c - an LD_PRELOAD shim for test_materialize.py: it makes
 * the materializer's unnamed queue files impossible, as on a file system
 * without O_TMPFILE (NFS, FAT) or where an unnamed file cannot be given a
 * name (no CAP_DAC_READ_SEARCH before Linux 6.10 and no /proc), so that the
 * tmp/ + rename path runs against the real server. MXRING_SHIM picks the
 * failure: "no-tmpfile" (openat with O_TMPFILE fails with EOPNOTSUPP) or
 * "no-link" (linkat of an unnamed file fails with ENOENT, the /proc/self/fd
 * route with EPERM). "take-new-away" does no harm itself: right before the
 * first linkat of an unnamed file it renames the target's folder (new/ to
 * new.away), as a consumer or an admin might, so that the real linkat fails
 * with ENOENT. Every other call goes through unchanged. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* shim_mode - MXRING_SHIM equals name. */
static int shim_mode(const char *name)
{
    const char *v = getenv("MXRING_SHIM");
    return v && strcmp(v, name) == 0;
}

typedef int (*openat_fn)(int, const char *, int, ...);
typedef int (*linkat_fn)(int, const char *, int, const char *, int);

/* shim_openat - the real openat(2), or EOPNOTSUPP for O_TMPFILE. */
static int shim_openat(int dir, const char *path, int flags, mode_t mode)
{
    if ((flags & O_TMPFILE) == O_TMPFILE && shim_mode("no-tmpfile")) {
        errno = EOPNOTSUPP;
        return -1;
    }
    openat_fn real = (openat_fn)dlsym(RTLD_NEXT, "openat");
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    return real(dir, path, flags, mode);
}

int openat(int dir, const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    return shim_openat(dir, path, flags, mode);
}

/* openat64 is the same call on 64-bit glibc: one definition for both. */
int openat64(int dir, const char *path, int flags, ...) __attribute__((alias("openat")));

/* shim_take_away - once: rename the folder part of path (under dir) to
 * <folder>.away. */
static void shim_take_away(int dir, const char *path)
{
    static int done;
    const char *slash = strchr(path, '/');
    char from[64], to[80];
    if (done || !slash || (size_t)(slash - path) >= sizeof from)
        return;
    done = 1;
    memcpy(from, path, (size_t)(slash - path));
    from[slash - path] = '\0';
    strcpy(to, from);
    strcat(to, ".away");
    renameat(dir, from, dir, to);
}

int linkat(int olddir, const char *oldpath, int newdir, const char *newpath, int flags)
{
    if (shim_mode("take-new-away") && (flags & AT_EMPTY_PATH) && oldpath[0] == '\0')
        shim_take_away(newdir, newpath);
    if (shim_mode("no-link")) {
        if ((flags & AT_EMPTY_PATH) && oldpath[0] == '\0') {
            errno = ENOENT;
            return -1;
        }
        if (strncmp(oldpath, "/proc/self/fd/", 14) == 0) {
            errno = EPERM;
            return -1;
        }
    }
    linkat_fn real = (linkat_fn)dlsym(RTLD_NEXT, "linkat");
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    return real(olddir, oldpath, newdir, newpath, flags);
}
