/* milterio.h - the milter client of a worker, asynchronous on its io_uring
 * ring: at the end of a message (read back from the queue journal through
 * a struct filter_src, never held whole) the configured milters are run in
 * order, each over its own connection for this message: option
 * negotiation, then the stages connect, HELO, MAIL, RCPT, DATA, headers,
 * end of headers, body chunks and end of message (skipping the stages the
 * milter declined, not waiting for replies it said it will not send), with
 * the macros milters rely on. Their actions are collected into one result
 * that the worker applies to the queued message. The codec is
 * core/milter.c. Worker thread only; nothing here blocks. (Named milterio
 * because core/milter.h already has the include name milter.h.) */
#ifndef MXRING_MILTERIO_H
#define MXRING_MILTERIO_H

#include <stdbool.h>

#include "filter.h"
#include "util.h"

struct io_uring;
struct config;
struct sess_msg;

/* The outcome of the chain. */
enum milterio_verdict {
    MILTERIO_ACCEPT = 0, /* queue it (with the actions below) */
    MILTERIO_REJECT,     /* refuse: reply (5xx) */
    MILTERIO_TEMPFAIL,   /* refuse: reply (4xx) */
    MILTERIO_DISCARD,    /* answer 250, queue nothing */
};

struct milterio_result {
    enum milterio_verdict v;
    char reply[1024];   /* the SMTP reply lines (CRLF between), validated */
    char detail[512];   /* for the transaction's log line */
    struct sb headers;  /* header lines to add (CRLF-terminated), top first */
    char *quarantine;   /* malloc'ed reason, or NULL */
    bool *rcpt_deleted; /* per recipient of the message (calloc'ed), or NULL */
    unsigned ndeleted;
};

/* The chain is over: r is the caller's until milterio_result_free. */
typedef void (*milterio_done_fn)(void *arg, struct milterio_result *r);

/* milterio_wanted - does cfg configure any milter? */
bool milterio_wanted(const struct config *cfg);

/* milterio_run - run cfg's milters over the message m (its envelope) and
 * src (its octets), queue id qid; log every milter reply through log, then
 * call done exactly once (maybe before returning). m, qid, src->arg and
 * cfg stay valid until done. */
void milterio_run(struct io_uring *ring, const struct config *cfg, const struct sess_msg *m,
                  const char *qid, const struct filter_src *src, filter_log_fn log,
                  milterio_done_fn done, void *arg);

/* milterio_result_free - release a result handed to milterio_done_fn. */
void milterio_result_free(struct milterio_result *r);

#endif
