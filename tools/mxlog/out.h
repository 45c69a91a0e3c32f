/* out.h - mxlog's output of verdict lines: one text line or one JSON
 * object per transaction or notable session (schema in the README
 * "mxlog" section), optionally followed by the raw lines. Main thread. */
#ifndef MXLOG_OUT_H
#define MXLOG_OUT_H

#include "sess.h"
#include "verdict.h"

#include <stdbool.h>
#include <stdio.h>

struct mxl_out {
    FILE *f;
    bool json;
    bool verbose;      /* raw lines after each session */
    const char *focus; /* the address asked about, or NULL */
};

/* mxl_out_txn - one transaction. */
void mxl_out_txn(const struct mxl_out *o, const struct mxl_sess *s, const struct mxl_txn *x);
/* mxl_out_sess - one session line (a session with no transaction, or one
 * that failed outside a transaction), then the raw lines with -v. */
void mxl_out_sess(const struct mxl_out *o, const struct mxl_sess *s, bool line);
/* mxl_json_str - s as a JSON string (quotes included). */
void mxl_json_str(FILE *f, const char *s);
/* mxl_fmt_time - "YYYY-MM-DD HH:MM:SS" (sep ' ') or ISO 8601 (sep 'T'). */
void mxl_fmt_time(int64_t t, char sep, char buf[32]);

#endif
