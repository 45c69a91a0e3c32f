/* stats.h - `mxlog stats` and `mxlog report --html`. Main thread. */
#ifndef MXLOG_STATS_H
#define MXLOG_STATS_H

#include "agg.h"
#include "walk.h"

#include <stdio.h>

/* mxl_stats - pflogsumm-like tables (or one table with --by). Exit 0/2. */
int mxl_stats(struct mxl_opts *o);
/* mxl_report - one self-contained HTML page into o->html. Exit 0/2. */
int mxl_report(struct mxl_opts *o);
/* mxl_report_write - the page for counts g into f (pure output). */
void mxl_report_write(FILE *f, const struct mxl_agg *g);
/* mxl_hour_refused - refused messages of one hour bucket. */
uint64_t mxl_hour_refused(const struct mxl_hour *h);

#endif
