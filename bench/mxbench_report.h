/* mxbench_report.h - the end of a mxbench run: the human summary, the
 * members of the --json object (also the summary line of --json-series).
 * Main thread, after the threads have been joined. */
#ifndef MXBENCH_REPORT_H
#define MXBENCH_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "mxbench.h"

/* What the report needs besides the merged statistics. */
struct mxb_run {
    const struct mxb_opts *o;
    const struct mxb_plan *p;
    const struct mxb_stats *s;
    double secs;      /* from the start to the last session's end */
    bool interrupted; /* ended by Ctrl-C */
};

/* mxb_report_human - the summary lines on f. */
void mxb_report_human(FILE *f, const struct mxb_run *r);

/* mxb_report_json - the members of the summary object (no braces) on f. */
void mxb_report_json(FILE *f, const struct mxb_run *r);

#endif
