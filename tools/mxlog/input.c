/* input.c - mxlog's file selection and reading: lists the day files of
 * every host folder, maps plain files (MADV_SEQUENTIAL) and inflates
 * gzipped ones with zlib, with a clear message for each failure. Main
 * thread only. */
#include "input.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* mxl_day_of_name - see input.h. */
uint32_t mxl_day_of_name(const char *name, bool *gz)
{
    uint32_t d = 0;
    for (int i = 0; i < 8; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        d = d * 10 + (uint32_t)(name[i] - '0');
    }
    if (strcmp(name + 8, ".log") == 0)
        *gz = false;
    else if (strcmp(name + 8, ".log.gz") == 0)
        *gz = true;
    else
        return 0;
    return d / 100 % 100 >= 1 && d / 100 % 100 <= 12 && d % 100 >= 1 ? d : 0;
}

/* cmp_file - host, then day, then .log before .log.gz. */
static int cmp_file(const void *a, const void *b)
{
    const struct mxl_file *x = a, *y = b;
    int c = strcmp(x->host, y->host);
    if (c)
        return c;
    if (x->day != y->day)
        return x->day < y->day ? -1 : 1;
    return (int)x->gz - (int)y->gz;
}

/* add_host - the selected files of one host folder. */
static int add_host(const struct mxl_sel *sel, const char *top, const char *host,
                    struct mxl_file **v, size_t *n, size_t *cap)
{
    char path[4096];
    int pl = snprintf(path, sizeof(path), "%s/%s", top, host);
    if (pl < 0 || (size_t)pl >= sizeof(path) - 32) {
        errno = ENAMETOOLONG;
        return -1;
    }
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOTDIR ? 0 : -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        bool gz;
        uint32_t day = mxl_day_of_name(de->d_name, &gz);
        if (!day || day < sel->day_from || day > sel->day_to)
            continue;
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 16;
            struct mxl_file *nv = realloc(*v, nc * sizeof(*nv));
            if (!nv) {
                closedir(d);
                errno = ENOMEM;
                return -1;
            }
            *v = nv;
            *cap = nc;
        }
        struct mxl_file *f = &(*v)[(*n)++];
        if (snprintf(f->path, sizeof(f->path), "%s/%s", path, de->d_name) < 0)
            f->path[0] = 0;
        snprintf(f->host, sizeof(f->host), "%s", host);
        f->day = day;
        f->gz = gz;
    }
    closedir(d);
    return 0;
}

/* drop_gz_twins - a day present as .log and .log.gz (compression under
 * way): keep the .log. v is sorted. */
static size_t drop_gz_twins(struct mxl_file *v, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && v[i].gz && v[k - 1].day == v[i].day && strcmp(v[k - 1].host, v[i].host) == 0)
            continue;
        v[k++] = v[i];
    }
    return k;
}

/* mxl_list_files - see input.h. */
int mxl_list_files(const struct mxl_sel *sel, struct mxl_file **out, size_t *n, char *err,
                   size_t cap)
{
    char top[4096];
    snprintf(top, sizeof(top), "%s/receivelog", sel->workdir);
    DIR *d = opendir(top);
    if (!d) {
        snprintf(err, cap, "%s: %s%s", top, strerror(errno),
                 errno == ENOENT ? " (no receivelog here: give the workdir with --dir or -c, "
                                   "and create <workdir>/receivelog to turn logging on)"
                                 : "");
        return -1;
    }
    struct mxl_file *v = NULL;
    size_t nv = 0, cv = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL && rc == 0) {
        if (de->d_name[0] == '.')
            continue;
        if (add_host(sel, top, de->d_name, &v, &nv, &cv) < 0) {
            snprintf(err, cap, "%s/%s: %s", top, de->d_name, strerror(errno));
            rc = -1;
        }
    }
    closedir(d);
    if (rc < 0) {
        free(v);
        return -1;
    }
    if (nv)
        qsort(v, nv, sizeof(*v), cmp_file);
    *n = drop_gz_twins(v, nv);
    *out = v;
    return 0;
}

/* inflate_file - a whole .gz into memory. */
static int inflate_file(const struct mxl_file *f, struct mxl_map *m, char *err, size_t cap)
{
    gzFile g = gzopen(f->path, "rb");
    if (!g) {
        snprintf(err, cap, "%s: %s", f->path, strerror(errno ? errno : ENOMEM));
        return -1;
    }
    size_t len = 0, sz = 1 << 20;
    char *buf = malloc(sz);
    int r = 1;
    while (buf && (r = gzread(g, buf + len, (unsigned)(sz - len))) > 0) {
        len += (size_t)r;
        if (len == sz) {
            char *nb = realloc(buf, sz * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            sz *= 2;
        }
    }
    int zerr = Z_OK;
    const char *msg = buf ? gzerror(g, &zerr) : "out of memory";
    if (!buf || r < 0 || (zerr != Z_OK && zerr != Z_STREAM_END)) {
        snprintf(err, cap, "%s: corrupt or truncated gzip data (%s)", f->path, msg);
        free(buf);
        gzclose(g);
        return -1;
    }
    gzclose(g);
    *m = (struct mxl_map){.p = buf, .n = len, .base = buf, .heap = true};
    return 0;
}

/* mxl_map_file - see input.h. */
int mxl_map_file(const struct mxl_file *f, struct mxl_map *m, char *err, size_t cap)
{
    memset(m, 0, sizeof(*m));
    if (f->gz)
        return inflate_file(f, m, err, cap);
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, cap, "%s: cannot read: %s", f->path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (st.st_size == 0) {
        close(fd);
        m->p = "";
        return 0;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(err, cap, "%s: cannot map: %s", f->path, strerror(e));
        return -1;
    }
    madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
    *m = (struct mxl_map){.p = p, .n = (size_t)st.st_size, .base = p, .maplen = (size_t)st.st_size};
    return 0;
}

/* mxl_unmap - see input.h. */
void mxl_unmap(struct mxl_map *m)
{
    if (m->heap)
        free(m->base);
    else if (m->maplen)
        munmap(m->base, m->maplen);
    memset(m, 0, sizeof(*m));
}
