/* mxbench_series.h - the --json-series writer of mxbench: every thread
 * hands in each finished second (struct mxb_sec); when all threads have
 * handed in second t, one JSON line for it is written, in order. The run's
 * summary line (with the HDR percentile table for the plot) ends the
 * file. Threads call mxb_series_publish() (under the series' lock); the
 * main thread opens, finishes and closes. */
#ifndef MXBENCH_SERIES_H
#define MXBENCH_SERIES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "mxbench_sched.h"
#include "mxbench_stats.h"

struct mxb_series;

/* mxb_series_open - write to path for nthreads threads; ph/nph (may be 0)
 * give each line's target rate. NULL with errno when path cannot be
 * created. */
struct mxb_series *mxb_series_open(const char *path, unsigned nthreads, const struct mxb_phase *ph,
                                   size_t nph);

/* mxb_series_publish - thread's second t (since the start) is over; sec
 * is what happened in it. Any thread. */
void mxb_series_publish(struct mxb_series *s, uint64_t t, const struct mxb_sec *sec);

/* mxb_series_leave - the calling thread handed in its last second, last:
 * later seconds no longer wait for it. Any thread, once per thread. */
void mxb_series_leave(struct mxb_series *s, uint64_t last);

/* mxb_series_finish - write the seconds still pending, then the summary line `{"type":"summary", ...}`
 * with json_fields (the --json object's members, no braces) and the
 * percentile table of lat_ns; close the file. False when a write failed. */
bool mxb_series_finish(struct mxb_series *s, const char *json_fields,
                       const struct mxb_hist *lat_ns);

/* mxb_sec_json - one second as the members of a JSON object (no braces)
 * into f; the format the plot reads back. */
void mxb_sec_json(FILE *f, uint64_t t, double target_rate, const struct mxb_sec *sec);

/* mxb_percentile_table - "[[P,US],...]" into f: the HDR percentile ticks
 * P = 100 * (1 - 2^(-i/5)) for i = 0, 1, ... while 1 / (1 - P/100) stays
 * within the count, then P = 100 (the maximum); US in microseconds. */
void mxb_percentile_table(FILE *f, const struct mxb_hist *h);

#endif
