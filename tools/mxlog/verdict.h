/* verdict.h - the plain-words verdict of a transaction or a session (the
 * vocabulary of issue 13 and the README "mxlog" section). Pure functions
 * over reconstructed sessions; any thread. */
#ifndef MXLOG_VERDICT_H
#define MXLOG_VERDICT_H

#include "sess.h"

#include <stdbool.h>
#include <stddef.h>

enum mxl_verdict {
    MXL_V_ACCEPTED = 0,
    MXL_V_QUARANTINED,
    MXL_V_USER_UNKNOWN,
    MXL_V_RELAY_DENIED,
    MXL_V_TOO_MANY_RCPTS,
    MXL_V_SENDER_REFUSED,
    MXL_V_AUTH_FAILED,
    MXL_V_SPAM,
    MXL_V_VIRUS,
    MXL_V_TOO_BIG,
    MXL_V_BARE_EOL,
    MXL_V_NUL,
    MXL_V_LONG_LINE,
    MXL_V_REFUSED,
    MXL_V_TEMPFAIL,
    MXL_V_TIMEOUT,
    MXL_V_GONE_DATA,
    MXL_V_GONE,
    MXL_V_TLS_FAILED,
    MXL_V_PER_IP,
    MXL_V_RATE,
    MXL_V_SESSION_LIMIT,
    MXL_V_EARLY_TALKER,
    MXL_V_DNSBL,
    MXL_V_PROXY,
    MXL_V_SHUTDOWN,
    MXL_V_CUT_OFF,
    MXL_V_ERROR_LIMIT,
    MXL_V_ABORTED,
    MXL_V_NO_MAIL,
    MXL_V_COUNT
};

/* mxl_verdict_name - the JSON name ("user_unknown", ...). */
const char *mxl_verdict_name(enum mxl_verdict v);
/* mxl_verdict_refused - is this a refusal (anything but accepted/no mail)? */
bool mxl_verdict_refused(enum mxl_verdict v);
/* mxl_txn_verdict - the verdict of transaction x of session s, in words
 * into buf (cap 0: the verdict only, buf untouched). When focus (an
 * address, may be NULL) is a refused recipient, that recipient's refusal
 * is the verdict. */
enum mxl_verdict mxl_txn_verdict(const struct mxl_sess *s, const struct mxl_txn *x,
                                 const char *focus, char *buf, size_t cap);
/* mxl_txn_rcpt_refusal - the first refused recipient of x in words;
 * false when none was refused. */
bool mxl_txn_rcpt_refusal(const struct mxl_sess *s, const struct mxl_txn *x, char *buf, size_t cap);
/* mxl_sess_verdict - the verdict of the session as a whole (cap 0: the
 * verdict only). */
enum mxl_verdict mxl_sess_verdict(const struct mxl_sess *s, char *buf, size_t cap);
/* mxl_sess_notable - does the session need a line of its own (no
 * transaction, AUTH failures without success, TLS failure, cut off
 * outside a transaction)? */
bool mxl_sess_notable(const struct mxl_sess *s);

#endif
