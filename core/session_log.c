/* session_log.c - the session's receivelog lines (dialogue and internal
 * lines into the worker's ring and a test's tap, the one summary line per
 * transaction, the connect and close lines) and its counters for the
 * metrics with their names. Lines are written on the session's worker
 * thread; sess_counters_add and the *_name look-ups run on any thread. */
#include "session.h"
#include "session_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "auth.h"
#include "config.h"
#include "dir.h"
#include "reply.h"
#include "rlog.h"
#include "smtp_parse.h"
#include "snap.h"

static const char *const close_reason_text[] = {
    [SESS_BY_QUIT] = "QUIT",
    [SESS_BY_TIMEOUT] = "timeout",
    [SESS_BY_ERRORS] = "error limit",
    [SESS_BY_PEER] = "client gone",
    [SESS_BY_SHUTDOWN] = "shutdown",
    [SESS_BY_LIMIT] = "session limit",
    [SESS_BY_IOERR] = "I/O error",
    [SESS_BY_PER_IP] = "per-client session limit",
    [SESS_BY_RATE] = "per-client connection rate",
    [SESS_BY_PREGREET] = "talked before the greeting",
    [SESS_BY_JUNK] = "junk command limit",
    [SESS_BY_TLS] = "TLS failure",
    [SESS_BY_AUTH] = "authentication failures",
    [SESS_BY_HARVEST] = "unknown recipient limit",
    [SESS_BY_PROXY] = "PROXY header",
    [SESS_BY_DNSBL] = "DNSBL",
    [SESS_BY_PROTOCOL] = "protocol error",
};
_Static_assert(MX_ARRAY_LEN(close_reason_text) == SESS_BY_COUNT, "a text per close reason");

/* The result words of the summary line (index = enum sess_result). */
static const char *const result_text[] = {
    [SESS_RES_QUEUED] = "queued",   [SESS_RES_QUARANTINED] = "quarantined",
    [SESS_RES_REFUSED] = "refused", [SESS_RES_TEMPFAIL] = "tempfail",
    [SESS_RES_ABORTED] = "aborted",
};
_Static_assert(MX_ARRAY_LEN(result_text) == SESS_RES_COUNT, "a word per result");

static const char *const rcpt_refusal_text[] = {
    [SESS_RCPT_UNKNOWN] = "unknown user",
    [SESS_RCPT_RELAY] = "relaying denied",
    [SESS_RCPT_TOO_MANY] = "too many recipients",
};
_Static_assert(MX_ARRAY_LEN(rcpt_refusal_text) == SESS_RCPT_COUNT, "a text per refusal");

void sess_counters_add(struct sess_counters *sum, const struct sess_counters *c)
{
    uint64_t *out = (uint64_t *)sum;
    const uint64_t *in = (const uint64_t *)c;
    for (size_t k = 0; k < sizeof(*c) / sizeof(uint64_t); k++)
        out[k] += __atomic_load_n(&in[k], __ATOMIC_RELAXED);
}

const char *sess_result_name(unsigned r)
{
    return r < SESS_RES_COUNT ? result_text[r] : "";
}

const char *sess_rcpt_refusal_name(unsigned r)
{
    return r < SESS_RCPT_COUNT ? rcpt_refusal_text[r] : "";
}

const char *sess_close_reason_name(unsigned r)
{
    return r < SESS_BY_COUNT ? close_reason_text[r] : "";
}

const char *sess_auth_outcome_name(unsigned o)
{
    static const char *const names[] = {
        [SESS_AUTHO_OK] = "success",
        [SESS_AUTHO_FAILED] = "failure",
        [SESS_AUTHO_CANCELLED] = "cancelled",
        [SESS_AUTHO_TEMPFAIL] = "tempfail",
    };
    _Static_assert(MX_ARRAY_LEN(names) == SESS_AUTHO_COUNT, "a name per outcome");
    return o < SESS_AUTHO_COUNT ? names[o] : "";
}

/* count_result - one transaction ended with the result word result. */
static void count_result(struct sess *s, const char *result)
{
    for (unsigned i = 0; i < SESS_RES_COUNT; i++)
        if (strcmp(result, result_text[i]) == 0)
            COUNT(s, results, i);
}

/* ---- logging ---------------------------------------------------------- */

/* sess_log_on - is the receivelog on for this session's worker (or a test
 * watching it)? */
bool sess_log_on(const struct sess *s)
{
    return (s->env->rlog && rlog_on(s->env->rlog)) || s->env->log_tap;
}

/* log_put - one line of either kind into the ring (and the test tap). */
static void log_put(struct sess *s, enum rlog_kind kind, const char *text, size_t len)
{
    if (s->env->log_tap)
        s->env->log_tap(s->env->arg, s->sid, text, len);
    if (s->env->rlog && rlog_on(s->env->rlog))
        rlog_put(s->env->rlog, s->sid, kind, text, len);
}

/* sess_log_text - one dialogue line (escaped by rlog). */
void sess_log_text(struct sess *s, const char *text, size_t len)
{
    if (sess_log_on(s))
        log_put(s, RLOG_DIALOG, text, len);
}

/* log_vcheck - one internal processing line (vprintf style). */
static void log_vcheck(struct sess *s, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void log_vcheck(struct sess *s, const char *fmt, va_list ap)
{
    if (!sess_log_on(s))
        return;
    char line[1024];
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    log_put(s, RLOG_INTERNAL, line, len);
}

/* sess_log_check - one internal processing line (printf style). */
void sess_log_check(struct sess *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vcheck(s, fmt, ap);
    va_end(ap);
}

/* sess_txn_end - record how the transaction ended: result (queued, quarantined,
 * refused, tempfail) and a reason for its summary line. A '"' in the reason
 * becomes '\'' so the quoted value stays one field. */
void sess_txn_end(struct sess *s, const char *result, const char *fmt, ...)
{
    struct sess_txn *t = s->txn;
    if (!t)
        return;
    t->result = result;
    t->reason[0] = 0;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->reason, sizeof(t->reason), fmt, ap);
        va_end(ap);
    }
    for (char *q = t->reason; (q = strchr(q, '"')) != NULL;)
        *q = '\'';
}

/* sess_log_summary - the one line per transaction (README "The receivelog"):
 * client, HELO, TLS, AUTH, sender, recipients, size and the outcome. */
void sess_log_summary(struct sess *s, const char *sender, size_t nrcpt, unsigned nrefused,
                      uint64_t size, const char *result, const char *id, const char *reason)
{
    count_result(s, result);
    if (!sess_log_on(s))
        return;
    char line[SESS_SUMMARY_MAX];
    int n = snprintf(line, sizeof(line),
                     "Transaction summary: client=%s helo=%s tls=%s auth=%s from=<%s> rcpts=%zu "
                     "rcpts_refused=%u size=%llu result=%s%s%s%s%s%s",
                     s->client_ip, s->helo && s->helo[0] ? s->helo : "-",
                     s->tls_active ? (s->tls_version[0] ? s->tls_version : "yes") : "-",
                     s->auth_user ? s->auth_user : "-", sender, nrcpt, nrefused,
                     (unsigned long long)size, result, id ? " id=" : "", id ? id : "",
                     reason ? " reason=\"" : "", reason ? reason : "", reason ? "\"" : "");
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    log_put(s, RLOG_INTERNAL, line, len);
}

/* sess_txn_summary - the transaction is ending (entering st): log its summary;
 * one that got no result was aborted by the command (RSET, HELO, EHLO) or
 * the close that ends it. */
void sess_txn_summary(struct sess *s, enum sess_state st)
{
    struct sess_txn *t = s->txn;
    if (!t)
        return;
    const char *result = t->result, *reason = t->reason;
    if (result && s->env->ctr) /* the final reply to the message is out: latency */
        mhist_observe(&s->env->ctr->txn_latency, mhist_now_us() - t->start_us);
    if (!result) {
        result = "aborted";
        reason = st == ST_CLOSED ? close_reason_text[s->reason] : smtp_verb_name(s->last_verb);
    }
    sess_log_summary(s, t->sender.addr, t->nrcpt, t->nrefused, t->scan.size, result,
                     t->queue_id[0] ? t->queue_id : NULL, reason[0] ? reason : NULL);
}

/* sess_log_connect - the first line of every session. */
void sess_log_connect(struct sess *s)
{
    sess_log_check(s, "Connection accepted: client [%s]:%u, local port %u, worker %u%s%s%s",
                   s->client_ip, s->client_port, s->local_port, s->env->worker,
                   s->trusted ? ", trusted network" : "", s->via[0] ? ", " : "", s->via);
}

void sess_log(struct sess *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vcheck(s, fmt, ap);
    va_end(ap);
}

void sess_log_close(struct sess *s)
{
    if (s->closed_logged)
        return;
    s->closed_logged = true;
    COUNT(s, closes, s->reason);
    if (!sess_log_on(s))
        return;
    char line[64];
    int n = snprintf(line, sizeof(line), "CloseClient Started. (%s)", close_reason_text[s->reason]);
    sess_log_text(s, line, (size_t)n);
    sess_log_text(s, "closesocket()", 13);
}
