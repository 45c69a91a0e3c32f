/* input.h - which receivelog files mxlog reads (every host folder under
 * <workdir>/receivelog/, YYYYMMDD.log and .log.gz, a date range) and
 * their bytes (mmap for .log, zlib into memory for .log.gz). Main thread. */
#ifndef MXLOG_INPUT_H
#define MXLOG_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mxl_file {
    char path[4096];
    char host[256];
    uint32_t day; /* yyyymmdd from the name */
    bool gz;
};

struct mxl_sel {
    const char *workdir;
    uint32_t day_from, day_to; /* inclusive; 0 / UINT32_MAX = any */
};

/* mxl_list_files - every selected day file, sorted by host then day (a
 * .log wins over a .log.gz of the same day). 0, or -1 with a message in
 * err (missing or unreadable folder). *out is malloc'd. */
int mxl_list_files(const struct mxl_sel *sel, struct mxl_file **out, size_t *n, char *err,
                   size_t cap);

struct mxl_map {
    const char *p;
    size_t n;
    void *base;
    size_t maplen;
    bool heap;
};

/* mxl_map_file - the bytes of f. 0, or -1 with a message in err
 * (unreadable file, corrupt or truncated .gz). */
int mxl_map_file(const struct mxl_file *f, struct mxl_map *m, char *err, size_t cap);
void mxl_unmap(struct mxl_map *m);
/* mxl_day_of_name - yyyymmdd of "YYYYMMDD.log[.gz]"; 0 if not one; *gz. */
uint32_t mxl_day_of_name(const char *name, bool *gz);

#endif
