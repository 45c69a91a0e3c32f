/* walk.h - mxlog's common options and the full walk: every selected file
 * of every host, line by line through a reconstruction engine (stats,
 * report). Main thread. */
#ifndef MXLOG_WALK_H
#define MXLOG_WALK_H

#include "input.h"
#include "sess.h"

#include <stdbool.h>
#include <stdint.h>

struct mxl_opts {
    const char *workdir;
    uint32_t day_from, day_to; /* file selection (yyyymmdd, inclusive) */
    int64_t since, until;      /* civil seconds, inclusive; INT64_MIN/MAX = open */
    bool json, verbose;
    const char *by;        /* stats --by */
    const char *html;      /* report --html FILE */
    uint64_t bad_lines;    /* lines not in the format */
    uint64_t lines, bytes; /* read */
    int file_errors;
    struct mxl_tcache tc; /* time stamp of the previous line */
};

/* Two threads over one large file (split.c): the second half's lines go
 * to a sink of their own, made by fork and added into the first by join
 * once the halves are put together. */
struct mxl_split {
    bool (*fork)(void *arg, struct mxl_sink *out); /* false: out of memory */
    void (*join)(void *arg, struct mxl_sink *forked);
    void *arg;
    size_t min_bytes; /* smaller files: one thread */
};

/* mxl_files_of - the day files o selects (mxl_list_files); 0, or -1 with
 * the reason on stderr. */
int mxl_files_of(const struct mxl_opts *o, struct mxl_file **files, size_t *nf);
/* mxl_walk_all - feed every line of every selected file to an engine made
 * for sink (one engine per host; open sessions end as cut off at the end
 * of a host's files). With split (may be NULL), files of min_bytes or more
 * are walked by two threads (mxl_walk_split). 0, or -1 when the folder
 * cannot be listed (message on stderr); unreadable files are reported and
 * counted, then skipped. */
int mxl_walk_all(struct mxl_opts *o, const struct mxl_sink *sink, bool keep_raw,
                 const struct mxl_split *split);
/* mxl_walk_split - mxl_walk_buf by two threads: the first half into e on
 * this thread, the second half into an engine of its own (host, sink from
 * split->fork) on another; the lines there of sessions open at the split
 * are then fed to e, e adopts the sessions still open, and split->join
 * adds the second sink into the first. The counts come out as from one
 * walk (only the order in which transactions reach the sinks differs). */
bool mxl_walk_split(struct mxl_opts *o, struct mxl_engine *e, const char *host,
                    const struct mxl_split *split, const char *p, size_t n);
/* mxl_walk_buf - feed the lines of one buffer (counts bad lines). */
bool mxl_walk_buf(struct mxl_opts *o, struct mxl_engine *e, const char *p, size_t n);
/* mxl_in_range - is civil time t inside --since/--until? */
bool mxl_in_range(const struct mxl_opts *o, int64_t t);
/* mxl_report_bad - one stderr line about bad lines and file errors. */
void mxl_report_bad(const struct mxl_opts *o);

#endif
