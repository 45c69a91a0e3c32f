/* shim_notmpfile.c - an LD_PRELOAD shim for test_materialize.py: it makes
 * the materializer's unnamed queue files impossible, as on a file system
 * without O_TMPFILE (NFS, FAT) or where an unnamed file cannot be given a
 * name (no CAP_DAC_READ_SEARCH before Linux 6.10 and no /proc), so that the
 * tmp/ + rename path runs against the real server. MXRING_SHIM picks the
 * failure: "no-tmpfile" (openat with O_TMPFILE fails with EOPNOTSUPP) or
 * "no-link" (linkat of an unnamed file fails with ENOENT, the /proc/self/fd
 * route with EPERM). Every other call goes through unchanged. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
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
static int shim_openat(const char *sym, int dir, const char *path, int flags, mode_t mode)
{
    if ((flags & O_TMPFILE) == O_TMPFILE && shim_mode("no-tmpfile")) {
        errno = EOPNOTSUPP;
        return -1;
    }
    openat_fn real = (openat_fn)dlsym(RTLD_NEXT, sym);
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
    return shim_openat("openat", dir, path, flags, mode);
}

int openat64(int dir, const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    return shim_openat("openat64", dir, path, flags, mode);
}

int linkat(int olddir, const char *oldpath, int newdir, const char *newpath, int flags)
{
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
