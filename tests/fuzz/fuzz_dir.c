/* fuzz_dir.c - libFuzzer target for the directory parser (core/dir.c): the
 * input, split at form feeds, is the users, groups, aliases and lists files;
 * every entry a load accepts must then be found with consistent answers.
 * Single-threaded. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dir.h"

#define FUZZ_SEP '\f'

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_check_line - look up the address part of one line of an accepted file. */
static void fuzz_check_line(const struct dir *d, unsigned f, const char *p, size_t n)
{
    while (n && (*p == ' ' || *p == '\t' || *p == '\r'))
        p++, n--;
    const char *colon = memchr(p, ':', n);
    if (!n || *p == '#' || !colon)
        return;
    size_t len = (size_t)(colon - p);
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\r'))
        len--;
    enum dir_kind k = dir_lookup(d, p, len);
    size_t nt = 0;
    const char *const *t = dir_targets(d, p, len, &nt);
    if (k == DIR_NOT_FOUND || (int)k > (int)(DIR_USER + f))
        abort(); /* accepted entry lost, or too weak */
    if ((k == DIR_USER) != (dir_user_hash(d, p, len) != NULL))
        abort();
    if (f > 0 && (!t || nt == 0)) /* a target line stores >= 1 target */
        abort();
    for (size_t i = 0; i < nt; i++)
        if (!t[i] || !strchr(t[i], '@'))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dir_source src[DIR_FILES] = {{0}};
    const char *p = (const char *)data, *end = p + size;
    for (unsigned f = 0; f < DIR_FILES && p <= end; f++) {
        const char *sep = memchr(p, FUZZ_SEP, (size_t)(end - p));
        const char *stop = sep ? sep : end;
        src[f] = (struct dir_source){"fuzz", p, (size_t)(stop - p)};
        p = stop + 1;
    }
    char err[512];
    struct dir *d = dir_load_mem(src, err, sizeof err);
    if (!d)
        return 0;
    for (unsigned f = 0; f < DIR_FILES; f++)
        for (const char *q = src[f].data, *e = q ? q + src[f].len : NULL; q && q < e;) {
            const char *nl = memchr(q, '\n', (size_t)(e - q));
            const char *eol = nl ? nl : e;
            fuzz_check_line(d, f, q, (size_t)(eol - q));
            q = eol + 1;
        }
    dir_free(d);
    return 0;
}
