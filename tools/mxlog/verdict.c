/* verdict.c - turns a reconstructed transaction or session into one of the
 * verdicts of issue 13, with the specifics in plain words (queue id, user,
 * domain and zone, virus name, offsets). Pure; any thread. */
#include "verdict.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const names[MXL_V_COUNT] = {
    [MXL_V_ACCEPTED] = "accepted",
    [MXL_V_QUARANTINED] = "quarantined",
    [MXL_V_USER_UNKNOWN] = "user_unknown",
    [MXL_V_RELAY_DENIED] = "relay_denied",
    [MXL_V_TOO_MANY_RCPTS] = "too_many_recipients",
    [MXL_V_SENDER_REFUSED] = "sender_refused",
    [MXL_V_AUTH_FAILED] = "auth_failed",
    [MXL_V_SPAM] = "spam",
    [MXL_V_VIRUS] = "virus",
    [MXL_V_TOO_BIG] = "too_big",
    [MXL_V_BARE_EOL] = "bare_eol",
    [MXL_V_NUL] = "nul",
    [MXL_V_LONG_LINE] = "long_line",
    [MXL_V_REFUSED] = "refused",
    [MXL_V_TEMPFAIL] = "tempfail",
    [MXL_V_TIMEOUT] = "timeout",
    [MXL_V_GONE_DATA] = "client_gone_mid_data",
    [MXL_V_GONE] = "client_gone",
    [MXL_V_TLS_FAILED] = "tls_failed",
    [MXL_V_PER_IP] = "per_ip_limit",
    [MXL_V_RATE] = "rate_limit",
    [MXL_V_SESSION_LIMIT] = "session_limit",
    [MXL_V_EARLY_TALKER] = "early_talker",
    [MXL_V_DNSBL] = "dnsbl",
    [MXL_V_PROXY] = "proxy_refused",
    [MXL_V_SHUTDOWN] = "shutdown",
    [MXL_V_CUT_OFF] = "cut_off",
    [MXL_V_ERROR_LIMIT] = "error_limit",
    [MXL_V_ABORTED] = "aborted",
    [MXL_V_NO_MAIL] = "no_mail",
};

/* say - the verdict in words into buf; nothing when cap is 0 (the caller
 * wants the verdict only: stats counts them without formatting). */
__attribute__((format(printf, 3, 4))) static void say(char *buf, size_t cap, const char *fmt, ...)
{
    if (!cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

/* mxl_verdict_name - see verdict.h. */
const char *mxl_verdict_name(enum mxl_verdict v)
{
    return v < MXL_V_COUNT ? names[v] : "unknown";
}

/* mxl_verdict_refused - see verdict.h. */
bool mxl_verdict_refused(enum mxl_verdict v)
{
    return v != MXL_V_ACCEPTED && v != MXL_V_NO_MAIL && v != MXL_V_ABORTED;
}

/* ordinal - "1st", "2nd", "3rd", "4th", ... */
static const char *ordinal(unsigned n, char *buf, size_t cap)
{
    const char *suf = "th";
    if (n % 100 < 11 || n % 100 > 13)
        suf = n % 10 == 1 ? "st" : n % 10 == 2 ? "nd" : n % 10 == 3 ? "rd" : "th";
    say(buf, cap, "%u%s", n, suf);
    return buf;
}

/* rcpt_verdict - the refusal of one recipient in words. */
static enum mxl_verdict rcpt_verdict(const struct mxl_sess *s, const struct mxl_txn *x,
                                     enum mxl_rcpt_st st, const char *addr, char *buf, size_t cap)
{
    switch (st) {
    case MXL_RCPT_UNKNOWN:
        say(buf, cap, "refused at RCPT: <%s> User unknown", addr);
        return MXL_V_USER_UNKNOWN;
    case MXL_RCPT_RELAY:
        say(buf, cap, "relaying denied for <%s> (client %s not trusted, not authenticated)", addr,
            s->ip);
        return MXL_V_RELAY_DENIED;
    case MXL_RCPT_TOO_MANY:
        say(buf, cap, "too many recipients (<%s> refused over max_recipients)", addr);
        return MXL_V_TOO_MANY_RCPTS;
    default:
        if (x->rcpt_why[0]) /* a milter's refusal: its line says who and why */
            say(buf, cap, "refused at RCPT: <%s> %s", addr, x->rcpt_why);
        else
            say(buf, cap, "refused at RCPT: <%s>", addr);
        return MXL_V_REFUSED;
    }
}

/* first_refused - the first refused recipient (or the focus one). */
static bool first_refused(const struct mxl_txn *x, const char *focus, enum mxl_rcpt_st *st,
                          const char **addr)
{
    size_t pos = 0;
    while (mxl_rcpt_next(x, &pos, st, addr))
        if (*st != MXL_RCPT_OK && (!focus || strcasecmp(focus, *addr) == 0))
            return true;
    return false;
}

/* mxl_txn_rcpt_refusal - see verdict.h. */
bool mxl_txn_rcpt_refusal(const struct mxl_sess *s, const struct mxl_txn *x, char *buf, size_t cap)
{
    enum mxl_rcpt_st st;
    const char *addr;
    if (!first_refused(x, NULL, &st, &addr))
        return false;
    rcpt_verdict(s, x, st, addr, buf, cap);
    return true;
}

/* refused_verdict - result=refused: which defence refused the message. */
static enum mxl_verdict refused_verdict(const struct mxl_txn *x, char *buf, size_t cap)
{
    const char *r = x->reason;
    if (x->mail_refused || strstr(r, "SIZE=")) {
        bool big = strstr(r, "SIZE=") != NULL;
        say(buf, cap, "%s: %s", big ? "too big (refused at MAIL)" : "sender refused at MAIL", r);
        return big ? MXL_V_TOO_BIG : MXL_V_SENDER_REFUSED;
    }
    if (strncmp(r, "bare ", 5) == 0) {
        say(buf, cap, "bare LF/CR (smuggling defence): %s", r);
        return MXL_V_BARE_EOL;
    }
    if (strncmp(r, "NUL octet", 9) == 0) {
        say(buf, cap, "NUL in data: %s", r);
        return MXL_V_NUL;
    }
    if (strstr(r, "max_message_size")) {
        say(buf, cap, "too big: %s", r);
        return MXL_V_TOO_BIG;
    }
    if (strncmp(r, "line over", 9) == 0) {
        say(buf, cap, "data line too long: %s", r);
        return MXL_V_LONG_LINE;
    }
    if (strstr(r, "content filter: spam")) {
        if (x->spam_domain[0])
            say(buf, cap, "spam (domain %s listed in zone %s): rejected", x->spam_domain,
                x->spam_zone);
        else
            say(buf, cap, "spam (%s): rejected", r);
        return MXL_V_SPAM;
    }
    if (strncmp(r, "content filter: virus ", 22) == 0) {
        say(buf, cap, "virus %s: rejected", x->virus[0] ? x->virus : r + 22);
        return MXL_V_VIRUS;
    }
    say(buf, cap, "refused: %s", r[0] ? r : "(no reason logged)");
    return MXL_V_REFUSED;
}

/* quarantine_words - result=quarantined: what the filter found. */
static void quarantine_words(const struct mxl_txn *x, char *buf, size_t cap)
{
    if (x->spam_domain[0] && !x->virus[0])
        say(buf, cap, "quarantined (queue id %s): spam (domain %s listed in zone %s)", x->qid,
            x->spam_domain, x->spam_zone);
    else if (x->virus[0])
        say(buf, cap, "quarantined (queue id %s): virus %s", x->qid, x->virus);
    else
        say(buf, cap, "quarantined (queue id %s): %s", x->qid, x->reason);
}

/* aborted_verdict - result=aborted: what ended it. */
static enum mxl_verdict aborted_verdict(const struct mxl_sess *s, const struct mxl_txn *x,
                                        char *buf, size_t cap)
{
    const char *r = x->reason;
    enum mxl_rcpt_st st;
    const char *addr;
    if (strcmp(r, "timeout") == 0) {
        bool data = x->in_data || s->timeout_data;
        say(buf, cap, "timeout (%s)",
            data ? "inside DATA, timeout_data" : "waiting for a command, timeout_command");
        return MXL_V_TIMEOUT;
    }
    if (strcmp(r, "client gone") == 0) {
        bool data = x->in_data || s->eof_data;
        say(buf, cap,
            data ? "client gone mid-DATA (message not accepted)"
                 : "client gone before the end of the transaction");
        return data ? MXL_V_GONE_DATA : MXL_V_GONE;
    }
    if (strcmp(r, "shutdown") == 0) {
        say(buf, cap, "shutdown (mxringd stopping)%s", x->in_data ? " inside DATA" : "");
        return MXL_V_SHUTDOWN;
    }
    if (strcmp(r, "cut off") == 0) {
        say(buf, cap,
            s->end == MXL_END_RESTART ? "cut off by a crash or restart (mxringd started again)"
                                      : "cut off: no end in the log (crash, or still open)");
        return MXL_V_CUT_OFF;
    }
    if (strcmp(r, "authentication failures") == 0)
        return mxl_sess_verdict(s, buf, cap);
    if (strcmp(r, "error limit") == 0 || strcmp(r, "junk command limit") == 0) {
        say(buf, cap, "closed: %s", r);
        return MXL_V_ERROR_LIMIT;
    }
    if (x->nrcpt_ok == 0 && first_refused(x, NULL, &st, &addr))
        return rcpt_verdict(s, x, st, addr, buf, cap);
    say(buf, cap, "no message sent (%s)", r[0] ? r : "aborted");
    return MXL_V_ABORTED;
}

/* mxl_txn_verdict - see verdict.h. */
enum mxl_verdict mxl_txn_verdict(const struct mxl_sess *s, const struct mxl_txn *x,
                                 const char *focus, char *buf, size_t cap)
{
    enum mxl_rcpt_st st;
    const char *addr;
    if (focus && first_refused(x, focus, &st, &addr))
        return rcpt_verdict(s, x, st, addr, buf, cap);
    if (strcmp(x->result, "queued") == 0) {
        if (x->nrcpt_refused)
            say(buf, cap, "accepted (queue id %s); %u recipient(s) refused", x->qid,
                x->nrcpt_refused);
        else
            say(buf, cap, "accepted (queue id %s)", x->qid);
        return MXL_V_ACCEPTED;
    }
    if (strcmp(x->result, "quarantined") == 0) {
        quarantine_words(x, buf, cap);
        return MXL_V_QUARANTINED;
    }
    if (strcmp(x->result, "refused") == 0)
        return refused_verdict(x, buf, cap);
    if (strcmp(x->result, "tempfail") == 0) {
        say(buf, cap, "temporary failure (4xx): %s", x->reason);
        return MXL_V_TEMPFAIL;
    }
    return aborted_verdict(s, x, buf, cap);
}

/* close_verdict - a session closed normally or by a close reason. */
static enum mxl_verdict close_verdict(const struct mxl_sess *s, char *buf, size_t cap)
{
    const char *r = s->close_reason;
    if (strcmp(r, "timeout") == 0) {
        say(buf, cap, "timeout (%s)",
            s->timeout_data ? "inside DATA, timeout_data"
                            : "waiting for a command, timeout_command");
        return MXL_V_TIMEOUT;
    }
    if (strcmp(r, "client gone") == 0) {
        say(buf, cap, s->eof_data ? "client gone mid-DATA" : "client gone");
        return s->eof_data ? MXL_V_GONE_DATA : MXL_V_GONE;
    }
    if (strcmp(r, "shutdown") == 0) {
        say(buf, cap, "shutdown (mxringd stopping)");
        return MXL_V_SHUTDOWN;
    }
    if (strcmp(r, "error limit") == 0 || strcmp(r, "junk command limit") == 0) {
        say(buf, cap, "closed: %s", r);
        return MXL_V_ERROR_LIMIT;
    }
    say(buf, cap, "no mail sent (%s)", r[0] ? r : "closed");
    return MXL_V_NO_MAIL;
}

/* proxy_kind - which defence a PROXY refusal reason names. */
static const char *proxy_kind(const char *why)
{
    if (strncmp(why, "sender not in proxy_trusted_networks", 36) == 0)
        return "untrusted balancer";
    if (strncmp(why, "v1: ", 4) == 0 || strncmp(why, "v2: ", 4) == 0)
        return "malformed header";
    if (strncmp(why, "not a PROXY header", 18) == 0 || strncmp(why, "no complete ", 12) == 0 ||
        strncmp(why, "connection closed before", 24) == 0)
        return "no PROXY header";
    return "refused";
}

/* mxl_sess_verdict - see verdict.h. */
enum mxl_verdict mxl_sess_verdict(const struct mxl_sess *s, char *buf, size_t cap)
{
    char nth[16];
    if (s->proxy_why[0]) {
        say(buf, cap, "PROXY header refused: %s (%s)", proxy_kind(s->proxy_why), s->proxy_why);
        return MXL_V_PROXY;
    }
    if (s->dnsbl[0]) {
        say(buf, cap, "client refused by DNSBL: blocked using %s", s->dnsbl);
        return MXL_V_DNSBL;
    }
    if (s->limit == MXL_K_PER_IP) {
        say(buf, cap, "per-IP limit: too many connections from %s (max_sessions_per_ip)", s->ip);
        return MXL_V_PER_IP;
    }
    if (s->limit == MXL_K_RATE) {
        say(buf, cap, "per-IP limit: connection rate of %s (max_connect_rate_per_ip)", s->ip);
        return MXL_V_RATE;
    }
    if (s->limit == MXL_K_LIMIT) {
        say(buf, cap, "session limit (max_sessions) reached");
        return MXL_V_SESSION_LIMIT;
    }
    if (s->pregreet) {
        say(buf, cap, "early talker: talked before the greeting (greet_pause_ms)");
        return MXL_V_EARLY_TALKER;
    }
    if (s->tls_why[0]) {
        say(buf, cap, "TLS handshake failure: %s", s->tls_why);
        return MXL_V_TLS_FAILED;
    }
    if (s->auth_failures && !s->auth[0]) {
        bool cut = strcmp(s->close_reason, "authentication failures") == 0;
        say(buf, cap, "AUTH failed for user %s (%s attempt%s)",
            s->auth_fail_user[0] ? s->auth_fail_user : "(undecodable)",
            ordinal(s->auth_failures, nth, sizeof(nth)), cut ? ", cut off" : "");
        return MXL_V_AUTH_FAILED;
    }
    if (s->end != MXL_END_CLOSED) {
        say(buf, cap,
            s->end == MXL_END_RESTART ? "cut off by a crash or restart (mxringd started again)"
                                      : "cut off: no end in the log (crash, or still open)");
        return MXL_V_CUT_OFF;
    }
    return close_verdict(s, buf, cap);
}

/* mxl_sess_notable - see verdict.h. */
bool mxl_sess_notable(const struct mxl_sess *s)
{
    return s->ntxn == 0 || (s->auth_failures && !s->auth[0]) || s->tls_why[0] ||
           (s->end != MXL_END_CLOSED && !s->cut_txn);
}
