/* mxbench_plot.h - `mxbench plot SERIES.json --html FILE`: one
 * self-contained HTML page with two inline SVG charts drawn from a
 * --json-series file (throughput and p50/p99/p999 latency against time;
 * the HDR percentile plot of the whole run's latency). No script, no
 * external asset. Main thread. */
#ifndef MXBENCH_PLOT_H
#define MXBENCH_PLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* One second of the series, as the plot needs it. */
struct mxb_plot_sec {
    double t, target, sent, accepted, failed, p50, p99, p999, max; /* latency in us */
};

/* What the plot reads from a series file. */
struct mxb_plot_data {
    struct mxb_plot_sec *sec;
    size_t nsec;
    double (*pct)[2]; /* [percentile, us] of the summary line */
    size_t npct;
    double msgs_per_s, p50, p99, p999, max, messages; /* the summary's */
    bool have_summary;
};

/* mxb_json_num - the number after "key": in a one-line JSON object (the
 * series format: keys that the plot reads are unique on a line). False
 * when the key is missing or not followed by a number. */
bool mxb_json_num(const char *line, const char *key, double *v);

/* mxb_plot_read - parse a series file into d (zeroed by the caller).
 * False when out of memory; lines that are neither kind are skipped. */
bool mxb_plot_read(FILE *in, struct mxb_plot_data *d);

/* mxb_plot_html - the page for d, titled after name, on out. */
void mxb_plot_html(FILE *out, const struct mxb_plot_data *d, const char *name);

/* mxb_plot_free - release what mxb_plot_read allocated. */
void mxb_plot_free(struct mxb_plot_data *d);

/* mxb_plot_main - the subcommand: argv[0] "plot", SERIES.json, --html FILE.
 * Exit status 0, or 2 on bad usage or an unreadable/unwritable file. */
int mxb_plot_main(int argc, char **argv);

#endif
