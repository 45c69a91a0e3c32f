/* walk.c - the full walk of mxlog (stats, report): lists the selected
 * files, maps each, splits lines (scan.h's 64-byte newline masks), parses them in place and
 * feeds the engine; no allocation per line. Main thread. */
#include "walk.h"

#include "scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* mxl_in_range - see walk.h. */
bool mxl_in_range(const struct mxl_opts *o, int64_t t)
{
    return t >= o->since && t <= o->until;
}

/* mxl_walk_buf - see walk.h. */
bool mxl_walk_buf(struct mxl_opts *o, struct mxl_engine *e, const char *p, size_t n)
{
    size_t i = 0;
    struct mxl_line l;
    struct mxl_nl it = {.p = p, .n = n};
    while (i < n) {
        size_t end = mxl_nl_next(&it);
        o->lines++;
        if (mxl_parse_line_c(p + i, end - i, &l, &o->tc) == MXL_K_BAD) {
            if (end > i)
                o->bad_lines++;
        } else if (!mxl_engine_feed(e, &l, p + i, end - i)) {
            fprintf(stderr, "mxlog: out of memory\n");
            return false;
        }
        i = end + 1;
    }
    o->bytes += n;
    return true;
}

/* mxl_files_of - see walk.h. */
int mxl_files_of(const struct mxl_opts *o, struct mxl_file **files, size_t *nf)
{
    char err[8192];
    struct mxl_sel sel = {o->workdir, o->day_from, o->day_to};
    if (mxl_list_files(&sel, files, nf, err, sizeof(err)) < 0) {
        fprintf(stderr, "mxlog: %s\n", err);
        return -1;
    }
    return 0;
}

/* mxl_walk_all - see walk.h. */
int mxl_walk_all(struct mxl_opts *o, const struct mxl_sink *sink, bool keep_raw,
                 const struct mxl_split *split)
{
    struct mxl_file *files = NULL;
    size_t nf = 0;
    char err[8192];
    if (mxl_files_of(o, &files, &nf) < 0)
        return -1;
    struct mxl_engine *e = mxl_engine_new(sink, keep_raw);
    int rc = e ? 0 : -1;
    for (size_t i = 0; e && i < nf; i++) {
        if (i && strcmp(files[i].host, files[i - 1].host) != 0)
            mxl_engine_end_all(e, MXL_END_EOF, INT64_MIN);
        mxl_engine_host(e, files[i].host);
        struct mxl_map m;
        if (mxl_map_file(&files[i], &m, err, sizeof(err)) < 0) {
            fprintf(stderr, "mxlog: %s\n", err);
            o->file_errors++;
            continue;
        }
        bool ok = split && !keep_raw && m.n >= split->min_bytes
                      ? mxl_walk_split(o, e, files[i].host, split, m.p, m.n)
                      : mxl_walk_buf(o, e, m.p, m.n);
        mxl_unmap(&m);
        if (!ok) {
            rc = -1;
            break;
        }
    }
    if (e)
        mxl_engine_end_all(e, MXL_END_EOF, INT64_MIN);
    mxl_engine_free(e);
    free(files);
    return rc;
}

/* mxl_report_bad - see walk.h. */
void mxl_report_bad(const struct mxl_opts *o)
{
    if (o->bad_lines)
        fprintf(stderr, "mxlog: %llu line(s) not in the receivelog format (skipped)\n",
                (unsigned long long)o->bad_lines);
    if (o->file_errors)
        fprintf(stderr, "mxlog: %d file(s) could not be read (see above)\n", o->file_errors);
}
