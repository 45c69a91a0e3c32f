/* mxbench_corpus.c - loading the --corpus messages and the envelope
 * address lists of mxbench, size classes and the per-thread pick (see
 * mxbench_corpus.h). File I/O on the main thread before the run; the pick
 * runs on each thread over the read-only corpus. */
#include "mxbench_corpus.h"
#include "mxbench_proto.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define EML_SUFFIX ".eml"
#define LIST_LINE_MAX 1024

/* read_all - the whole file at path, malloc'ed, its length in *n. */
static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) &&
        (buf = malloc((size_t)st.st_size + 1)) != NULL) {
        *n = fread(buf, 1, (size_t)st.st_size, f);
        if (ferror(f) || *n != (size_t)st.st_size) {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

/* is_eml - a name ending in .eml (and not only that). */
static bool is_eml(const char *name)
{
    size_t n = strlen(name), s = sizeof EML_SUFFIX - 1;
    return n > s && strcmp(name + n - s, EML_SUFFIX) == 0 && name[0] != '.';
}

/* by_name - qsort order of file names. */
static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* eml_names - the sorted .eml names in dir (malloc'ed), their count in *n. */
static char **eml_names(const char *dir, size_t *n, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "--corpus %s: %s", dir, strerror(errno));
        return NULL;
    }
    char **names = NULL;
    size_t cap = 0;
    *n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_eml(e->d_name))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn)
                break;
            names = nn;
        }
        if (!(names[*n] = strdup(e->d_name)))
            break;
        (*n)++;
    }
    closedir(d);
    if (*n == 0)
        snprintf(err, errlen, "--corpus %s: no .eml file in it", dir);
    else
        qsort(names, *n, sizeof *names, by_name);
    return names;
}

/* load_one - read and encode dir/m->name into m. */
static bool load_one(struct mxb_msg *m, const char *dir, char *err, size_t errlen)
{
    char path[4096];
    size_t n = 0;
    snprintf(path, sizeof path, "%s/%s", dir, m->name);
    char *raw = read_all(path, &n);
    if (!raw) {
        snprintf(err, errlen, "--corpus: cannot read %s", path);
        return false;
    }
    m->wire = mxb_wire_encode(raw, n, &m->len, &m->size);
    free(raw);
    if (!m->wire)
        snprintf(err, errlen, "--corpus: out of memory encoding %s", path);
    return m->wire != NULL;
}

/* mxb_corpus_load - see mxbench_corpus.h. */
bool mxb_corpus_load(struct mxb_corpus *c, const char *dir, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    size_t n = 0;
    char **names = eml_names(dir, &n, err, errlen);
    c->m = n ? calloc(n, sizeof *c->m) : NULL;
    if (!c->m) {
        if (n)
            snprintf(err, errlen, "--corpus: out of memory");
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        return false;
    }
    c->n = n;
    for (size_t i = 0; i < n; i++)
        c->m[i].name = names[i]; /* the corpus owns them now */
    free(names);
    for (size_t i = 0; i < n; i++) {
        if (!load_one(&c->m[i], dir, err, errlen)) {
            mxb_corpus_free(c);
            return false;
        }
    }
    return true;
}

/* mxb_corpus_one - a corpus of one message, see mxbench_corpus.h. */
bool mxb_corpus_one(struct mxb_corpus *c, char *wire, size_t len, size_t size)
{
    memset(c, 0, sizeof *c);
    c->m = calloc(1, sizeof *c->m);
    char *name = strdup("generated");
    if (!c->m || !name) {
        free(c->m);
        free(name);
        free(wire);
        return false;
    }
    c->m[0] = (struct mxb_msg){wire, len, size, name};
    c->n = 1;
    return true;
}

/* by_max - qsort order of size classes. */
static int by_max(const void *a, const void *b)
{
    const struct mxb_class *x = a, *y = b;
    return x->max < y->max ? -1 : x->max > y->max;
}

/* fill_classes - put every message into its class; false with err when one
 * is too large for every class. */
static bool fill_classes(struct mxb_corpus *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->n; i++) {
        unsigned k = 0;
        while (k < c->ncls && c->m[i].size > c->cls[k].max)
            k++;
        if (k == c->ncls) {
            snprintf(err, errlen, "--corpus-mix: %s (%zu octets) is larger than every class",
                     c->m[i].name, c->m[i].size);
            return false;
        }
        c->cls[k].idx[c->cls[k].n++] = i;
    }
    for (unsigned k = 0; k < c->ncls; k++) {
        if (c->cls[k].weight && c->cls[k].n == 0) {
            snprintf(err, errlen, "--corpus-mix: no message of up to %llu octets",
                     (unsigned long long)c->cls[k].max);
            return false;
        }
    }
    return true;
}

/* mxb_corpus_classes - see mxbench_corpus.h. */
bool mxb_corpus_classes(struct mxb_corpus *c, const struct mxb_weight *w, size_t n, char *err,
                        size_t errlen)
{
    for (size_t k = 0; k < n; k++) {
        if (!mxb_size_parse(w[k].key, &c->cls[k].max)) {
            snprintf(err, errlen, "--corpus-mix: %s is not a size", w[k].key);
            return false;
        }
        c->cls[k].weight = w[k].weight;
        if (!(c->cls[k].idx = calloc(c->n, sizeof *c->cls[k].idx))) {
            snprintf(err, errlen, "--corpus-mix: out of memory");
            return false;
        }
        c->ncls = (unsigned)k + 1;
    }
    qsort(c->cls, c->ncls, sizeof c->cls[0], by_max);
    return fill_classes(c, err, errlen);
}

/* mxb_pick_init - see mxbench_corpus.h. */
void mxb_pick_init(struct mxb_pick *pk, const struct mxb_corpus *c, unsigned k)
{
    unsigned w[MXB_WEIGHTS_MAX];
    memset(pk, 0, sizeof *pk);
    for (unsigned i = 0; i < c->ncls; i++)
        w[i] = c->cls[i].weight;
    if (c->ncls)
        mxb_wrr_init(&pk->wrr, w, c->ncls, k);
    pk->all = k;
    for (unsigned i = 0; i < MXB_WEIGHTS_MAX; i++)
        pk->rr[i] = k;
}

/* mxb_corpus_next - see mxbench_corpus.h. */
const struct mxb_msg *mxb_corpus_next(const struct mxb_corpus *c, struct mxb_pick *pk)
{
    if (c->ncls == 0)
        return &c->m[pk->all++ % c->n];
    const struct mxb_class *k = &c->cls[mxb_wrr_next(&pk->wrr)];
    unsigned i = (unsigned)(k - c->cls);
    return &c->m[k->idx[pk->rr[i]++ % k->n]];
}

/* mxb_corpus_free - see mxbench_corpus.h. */
void mxb_corpus_free(struct mxb_corpus *c)
{
    for (size_t i = 0; c->m && i < c->n; i++) {
        free(c->m[i].wire);
        free(c->m[i].name);
    }
    for (unsigned k = 0; k < MXB_WEIGHTS_MAX; k++)
        free(c->cls[k].idx);
    free(c->m);
    memset(c, 0, sizeof *c);
}

/* trim - strip surrounding white space in place; returns the start. */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

/* mxb_list_load - see mxbench_corpus.h. */
char **mxb_list_load(const char *path, size_t *n, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char line[LIST_LINE_MAX];
    char **list = NULL;
    size_t cap = 0;
    *n = 0;
    while (fgets(line, sizeof line, f)) {
        char *s = trim(line);
        if (*s == 0 || *s == '#')
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nl = realloc(list, cap * sizeof *list);
            if (!nl)
                break;
            list = nl;
        }
        if (!(list[*n] = strdup(s)))
            break;
        (*n)++;
    }
    fclose(f);
    if (*n == 0) {
        snprintf(err, errlen, "%s: no address in it", path);
        free(list);
        return NULL;
    }
    return list;
}

/* mxb_list_free - release what mxb_list_load returned. */
void mxb_list_free(char **list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        free(list[i]);
    free(list);
}
