/* why.h - `mxlog why ADDRESS|IP|QUEUE-ID|SESSION-ID`: the transactions
 * (and failed sessions) that involve the query, reconstructed from only
 * the parts of the files around the query's hits. Main thread. */
#ifndef MXLOG_WHY_H
#define MXLOG_WHY_H

#include "walk.h"

/* mxl_why - run the query; prints to stdout. Exit status: 0 found,
 * 1 nothing found, 2 input error. */
int mxl_why(struct mxl_opts *o, const char *query);

enum mxl_qtype { MXL_Q_ADDR, MXL_Q_DOMAIN, MXL_Q_IP, MXL_Q_QID, MXL_Q_SID };

struct mxl_query {
    enum mxl_qtype type;
    char text[512]; /* the needle (address without <>) */
    uint32_t sid;
};

/* mxl_query_parse - what kind of query text is. false if empty/too long. */
bool mxl_query_parse(const char *text, struct mxl_query *q);
/* mxl_txn_matches / mxl_sess_matches - does the reconstruction involve q? */
bool mxl_txn_matches(const struct mxl_query *q, const struct mxl_sess *s, const struct mxl_txn *x);
bool mxl_sess_matches(const struct mxl_query *q, const struct mxl_sess *s);

#endif
