/* milterio.h - the milter client of a worker, asynchronous on its io_uring
 * ring. Each SMTP session that meets a milter holds one conversation per
 * configured milter (struct milterio_sess), opened at its first HELO/EHLO:
 * option negotiation and connect, then each command as it happens (HELO,
 * MAIL, RCPT, DATA or the first BDAT: the session waits for the verdict,
 * the worker goes on), and at the end of the message its octets (read back
 * from the queue journal through a struct filter_src, never held whole):
 * headers, end of headers, body chunks, end of message. Stages a milter declined are skipped,
 * replies it said it will not send are not awaited, SMFIC_ABORT goes ahead
 * of a new MAIL when a transaction was left open, SMFIC_QUIT at the end.
 * The end-of-message actions are collected into one result that the worker
 * applies to the queued message. The codec is core/milter.c. Worker thread
 * only; nothing here blocks. (Named milterio because core/milter.h already
 * has the include name milter.h.) */
#ifndef MXRING_MILTERIO_H
#define MXRING_MILTERIO_H

#include <stdbool.h>

#include "filter.h"
#include "util.h"

#define MILTERIO_EDIT_MAX (256u * 1024u) /* header section octets chgheader may rewrite */

struct io_uring;
struct config;
struct sess_msg;
struct milterio_sess;
struct milter_hdr_edit;

/* The outcome of the chain (for a command: ACCEPT = go on with it). */
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
    bool session_wide;             /* a verdict at connect or HELO: the whole session */
    struct milter_hdr_edit *edits; /* chgheader, in order (milterio_edit_head) */
    size_t nedits;
};

/* The chain is over: r is the caller's until milterio_result_free. */
typedef void (*milterio_done_fn)(void *arg, struct milterio_result *r);

/* milterio_wanted - does cfg configure any milter? */
bool milterio_wanted(const struct config *cfg);

/* milterio_sess_new - the conversations of one SMTP session with cfg's
 * milters (the list, timeouts and default action are copied: a reload
 * does not change a running session). Every result goes to done(arg),
 * every log line to log(arg). NULL on ENOMEM. */
struct milterio_sess *milterio_sess_new(struct io_uring *ring, const struct config *cfg,
                                        filter_log_fn log, milterio_done_fn done, void *arg);
/* milterio_cmd - ask every milter in order about the command stage st
 * (enum sess_mstage: HELO/EHLO, MAIL, RCPT, DATA) of the session
 * m describes; done once (maybe before returning). One job at a time;
 * m stays valid until done. */
void milterio_cmd(struct milterio_sess *ms, int st, const struct sess_msg *m);
/* milterio_eom - run the milters over the message m (its envelope) and src
 * (its octets), queue id qid; done once. m, qid and src->arg stay valid
 * until done. */
void milterio_eom(struct milterio_sess *ms, const struct sess_msg *m, const char *qid,
                  const struct filter_src *src);
/* milterio_sess_end - the session is over (no job in flight): QUIT, close;
 * the memory goes once the last completion is back. */
void milterio_sess_end(struct milterio_sess *ms);

/* milterio_edit_head - r's chgheader edits applied to the message's header
 * section, read from src (at most MILTERIO_EDIT_MAX octets of it, never the
 * body): the rewritten section into section (the queue file's head ends
 * with it), headers an edit adds into added (with the milters' others),
 * *skip = octets of the message it replaces. false when nothing is to be
 * done or it cannot be (logged through log: the message is queued
 * unedited). Worker thread; reads src synchronously (the page cache). */
bool milterio_edit_head(const struct milterio_result *r, const struct filter_src *src,
                        struct sb *section, struct sb *added, uint64_t *skip, filter_log_fn log,
                        void *arg);

/* milterio_result_free - release a result handed to milterio_done_fn. */
void milterio_result_free(struct milterio_result *r);

#endif
