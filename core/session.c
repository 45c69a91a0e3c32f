/* session.c - the SMTP session state machine: one command table, a check and
 * a proceed step per command, one enter_state() naming every transition, the
 * DATA phase through the smtp_data scanner, and the receivelog lines of the
 * dialogue. Pure over bytes; owned by one worker thread. */
#include "session.h"

#include <netinet/in.h>
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
#include "smtp_data.h"
#include "smtp_parse.h"
#include "snap.h"

/* Session states. The "RCPT" state means at least one recipient accepted. */
enum sess_state {
    ST_INIT = 0,    /* banner sent, no HELO/EHLO yet */
    ST_GREET_WAIT,  /* greet pause: the client must not talk yet */
    ST_HELO,        /* greeted, no transaction */
    ST_MAIL,        /* MAIL accepted, no recipient accepted yet */
    ST_RCPT,        /* at least one recipient accepted */
    ST_DATA,        /* reading the message */
    ST_CLOSED,      /* reply queued, connection to be closed */
};

#define STB(st) (1u << (st))

/* Replies the client has not read yet: past this, input is held (and the
 * I/O layer stops receiving) until the replies are sent. */
#define SESS_OUT_MAX (64 * 1024)
/* RFC 4954 4: AUTH lines may be longer than other commands. */
#define SESS_AUTH_LINE_MAX 12288
/* A summary line: two addresses, a HELO name and a reason fit. */
#define SESS_SUMMARY_MAX 2048
/* The unknown-recipient tarpit never holds one batch of replies longer. */
#define SESS_TARPIT_MAX_MS 5000
/* The log text of a masked line (an AUTH response or a possible one). */
#define SESS_MASKED "****"

/* Where an AUTH dialogue stands. */
enum auth_step { AUTH_IDLE = 0, AUTH_WAIT_PLAIN, AUTH_WAIT_USER, AUTH_WAIT_PASS };

/* Command flags (the Postfix-style flags column). */
enum cmd_flag {
    CMD_NOARGS = 1u << 0,   /* takes no argument: 501 otherwise */
    CMD_PRE_TLS = 1u << 1,  /* allowed before STARTTLS where TLS is required */
    CMD_JUNK = 1u << 2,     /* counts toward max_junk_commands (a tarpit defence) */
    CMD_UNIMPL = 1u << 3,   /* recognised, not implemented: 502, not listed by HELP */
};

struct sess_txn {
    struct smtp_addr sender;
    struct smtp_params params;
    struct sb rcpts;        /* NUL-terminated addresses back to back */
    size_t nrcpt;
    bool rcpt_tried;        /* a RCPT was refused: DATA gives 554, not 503 */
    struct sb body;         /* the chunk being filled (at most SESS_CHUNK_MAX) */
    struct data_scan scan;
    struct sess_msg msg;
    char *quarantine;       /* reason of a quarantine verdict */
    unsigned nrefused;      /* RCPTs refused by policy (unknown, relay, too many) */
    const char *result;     /* how it ended (summary line); NULL = still open */
    char reason[200];       /* why (refusals, failures, aborts) */
    char queue_id[32];      /* the queue id, once queued */
};

struct sess {
    const struct sess_env *env;
    struct snap *snap;
    uint32_t sid;
    enum sess_state state;
    enum sess_action action;
    enum sess_close_reason reason;
    bool esmtp;
    bool trusted;           /* client in trusted_networks */
    bool skip_line;         /* discarding the rest of an overlong line */
    bool closed_logged;
    bool deferred;          /* a close arrived while the spool was busy */
    enum sess_close_reason deferred_reason;
    unsigned errors;
    unsigned junk;
    unsigned progress;      /* commands and DATA chunks handled (for the idle timer) */
    unsigned data_phases;   /* DATA commands accepted (each phase has its own bound) */
    uint16_t client_port;
    uint16_t local_port;
    char client_ip[INET6_ADDRSTRLEN];
    char *helo;
    char *auth_user;        /* set by SMTP AUTH (relay hook) */
    unsigned mode;          /* enum sess_mode_flag */
    bool tls_active;
    char tls_version[16];   /* negotiated TLS version ("" before TLS) */
    char tls_cipher[64];    /* and cipher suite */
    enum smtp_verb last_verb; /* of the command being handled (ends of transactions) */
    enum auth_step auth_step;
    enum auth_mech auth_mech;
    unsigned auth_failures;
    size_t auth_ulen, auth_plen;
    unsigned char auth_buf[AUTH_DECODED_MAX + AUTH_USER_MAX]; /* user then password */
    struct sess_txn *txn;
    struct sb in;           /* partial line / input held back */
    struct sb out;          /* replies not yet taken by the I/O layer */
    unsigned mask_lines;    /* next lines masked in the log: they may answer an AUTH */
    unsigned unknown_rcpts; /* unknown recipients refused in this session (tarpit) */
    unsigned delay_ms;      /* tarpit pause wanted before the pending replies */
    struct mx_addr peer;    /* client address: the harvest budget's key */
    char via[SESS_VIA_MAX]; /* behind a balancer: how the address came (log) */
};

struct smtp_cmd {
    enum smtp_verb verb;
    unsigned states;            /* states where the command is allowed */
    unsigned flags;
    int (*check)(struct sess *s, const char *arg, size_t len);
    void (*proceed)(struct sess *s, const char *arg, size_t len);
};

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
};
_Static_assert(MX_ARRAY_LEN(close_reason_text) == SESS_BY_COUNT, "a text per close reason");

/* The result words of the summary line (index = enum sess_result). */
static const char *const result_text[] = {
    [SESS_RES_QUEUED] = "queued", [SESS_RES_QUARANTINED] = "quarantined",
    [SESS_RES_REFUSED] = "refused", [SESS_RES_TEMPFAIL] = "tempfail",
    [SESS_RES_ABORTED] = "aborted",
};
_Static_assert(MX_ARRAY_LEN(result_text) == SESS_RES_COUNT, "a word per result");

static const char *const rcpt_refusal_text[] = {
    [SESS_RCPT_UNKNOWN] = "unknown user", [SESS_RCPT_RELAY] = "relaying denied",
    [SESS_RCPT_TOO_MANY] = "too many recipients",
};
_Static_assert(MX_ARRAY_LEN(rcpt_refusal_text) == SESS_RCPT_COUNT, "a text per refusal");

/* COUNT - bump one counter of the worker's sess_counters (relaxed: the
 * scraper needs no order, only untorn values). */
#define COUNT(s, field, idx)                                                          \
    do {                                                                              \
        if ((s)->env->ctr)                                                            \
            __atomic_fetch_add(&(s)->env->ctr->field[idx], 1, __ATOMIC_RELAXED);      \
    } while (0)

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

/* count_result - one transaction ended with the result word result. */
static void count_result(struct sess *s, const char *result)
{
    for (unsigned i = 0; i < SESS_RES_COUNT; i++)
        if (strcmp(result, result_text[i]) == 0)
            COUNT(s, results, i);
}

/* ---- logging ---------------------------------------------------------- */

/* log_on - is the receivelog on for this session's worker (or a test
 * watching it)? */
static bool log_on(const struct sess *s)
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

/* log_text - one dialogue line (escaped by rlog). */
static void log_text(struct sess *s, const char *text, size_t len)
{
    if (log_on(s))
        log_put(s, RLOG_DIALOG, text, len);
}

/* log_check - one internal processing line (printf style). */
static void log_vcheck(struct sess *s, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void log_vcheck(struct sess *s, const char *fmt, va_list ap)
{
    if (!log_on(s))
        return;
    char line[1024];
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    log_put(s, RLOG_INTERNAL, line, len);
}

static void log_check(struct sess *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void log_check(struct sess *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vcheck(s, fmt, ap);
    va_end(ap);
}

/* ---- AUTH secrets in the log ------------------------------------------ *
 * Masking never depends on a command being accepted: any line that could be
 * an AUTH command is logged as "AUTH <MECH> ****", and the lines a client
 * may send after it as responses (even when the AUTH was refused, and after
 * a dialogue that failed) as "****". The parser's SP-only rule is not
 * trusted here: any blank or control byte separates the words. */

/* auth_sep - a byte that may separate the words of an AUTH line. */
static bool auth_sep(unsigned char c)
{
    return c <= 0x20 || c == 0x7f;
}

/* skip_sep - index of the first non-separator at or after i. */
static size_t skip_sep(const char *p, size_t len, size_t i)
{
    while (i < len && auth_sep((unsigned char)p[i]))
        i++;
    return i;
}

/* skip_word - index of the first separator at or after i. */
static size_t skip_word(const char *p, size_t len, size_t i)
{
    while (i < len && !auth_sep((unsigned char)p[i]))
        i++;
    return i;
}

/* auth_like - could this line be an AUTH command? "AUTH" in any case, after
 * optional separators, then the end of the line or a separator. */
static bool auth_like(const char *p, size_t len)
{
    size_t i = skip_sep(p, len, 0);
    return len - i >= 4 && mx_memcaseeq(p + i, "AUTH", 4) &&
           (len - i == 4 || auth_sep((unsigned char)p[i + 4]));
}

/* mech_ok - a SASL mechanism name (RFC 4422 3.1; letters in any case). */
static bool mech_ok(const char *p, size_t n)
{
    if (n == 0 || n > AUTH_MECH_MAX)
        return false;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)p[k];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* auth_mask - the log text of an AUTH-like line into out: "AUTH", the
 * mechanism (upper-cased) when it is a valid name, " ****" when anything
 * else follows. Returns the length; the payload never reaches out. */
static size_t auth_mask(const char *p, size_t len, char out[AUTH_MASK_MAX])
{
    size_t m = skip_sep(p, len, skip_sep(p, len, 0) + 4), me = skip_word(p, len, m);
    bool ok = mech_ok(p + m, me - m);
    size_t o = 4;
    memcpy(out, "AUTH", 4);
    if (ok) {
        out[o++] = ' ';
        for (size_t k = m; k < me; k++)
            out[o++] = (char)(p[k] >= 'a' && p[k] <= 'z' ? p[k] - 32 : p[k]);
    }
    if (skip_sep(p, len, me) < len || (!ok && me > m)) {
        memcpy(out + o, " " SESS_MASKED, sizeof(SESS_MASKED));
        o += sizeof(SESS_MASKED);
    }
    out[o] = 0;
    return o;
}

/* auth_follow_lines - how many response lines a client may send after this
 * AUTH line: two for LOGIN without an initial response (user, password),
 * one otherwise. */
static unsigned auth_follow_lines(const char *p, size_t len)
{
    size_t m = skip_sep(p, len, skip_sep(p, len, 0) + 4), me = skip_word(p, len, m);
    bool login = me - m == 5 && mx_memcaseeq(p + m, "LOGIN", 5);
    return login && skip_sep(p, len, me) == len ? 2 : 1;
}

/* log_command - a command line as received, secrets masked (see above);
 * sets how many of the next lines are masked. */
static void log_command(struct sess *s, const char *line, size_t len)
{
    bool auth = auth_like(line, len);
    if (log_on(s)) {
        char masked[AUTH_MASK_MAX];
        if (auth) /* never shows a payload, even where a response was due */
            log_text(s, masked, auth_mask(line, len, masked));
        else if (s->mask_lines)
            log_text(s, SESS_MASKED, sizeof(SESS_MASKED) - 1);
        else
            log_text(s, line, len);
    }
    unsigned follow = auth ? auth_follow_lines(line, len) : 0;
    s->mask_lines = s->mask_lines > follow + 1 ? s->mask_lines - 1 : follow;
}

/* mask_discarded - a line too long to handle is not logged at all; if it
 * looked like AUTH, the lines after it may still be its responses. */
static void mask_discarded(struct sess *s, const char *line, size_t len)
{
    if (auth_like(line, len))
        s->mask_lines = auth_follow_lines(line, len);
}

/* mask_after_response - after a response line inside an AUTH dialogue:
 * when the dialogue failed on it, a client that does not wait for replies
 * may still be sending responses (mask one more line), and a response that
 * looks like AUTH itself is followed by its own. */
static void mask_after_response(struct sess *s, const char *line, size_t len, bool failed)
{
    unsigned follow = auth_like(line, len) ? auth_follow_lines(line, len) : 0;
    s->mask_lines = failed ? 1 : 0;
    if (follow > s->mask_lines)
        s->mask_lines = follow;
}

/* ---- replies ---------------------------------------------------------- */

/* reply - format reply id into the output and the log. */
static void reply(struct sess *s, enum reply_id id, ...)
{
    char line[SMTP_PATH_MAX + 256];
    va_list ap;
    va_start(ap, id);
    int n = vsnprintf(line, sizeof(line), reply_table[id].fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    log_text(s, line, len);
    if (!sb_append(&s->out, line, len) || !sb_append(&s->out, "\r\n", 2))
        sess_gone(s, SESS_BY_IOERR); /* out of memory: nothing sane to say */
}

/* reply_raw - an already formatted line (EHLO keywords). */
static void reply_raw(struct sess *s, const char *line)
{
    size_t len = strlen(line);
    log_text(s, line, len);
    if (!sb_append(&s->out, line, len) || !sb_append(&s->out, "\r\n", 2))
        sess_gone(s, SESS_BY_IOERR);
}

/* close_with - queue the final reply and ask the I/O layer to close. */
static void enter_state(struct sess *s, enum sess_state st);
static void close_with(struct sess *s, enum reply_id id, enum sess_close_reason why)
{
    reply(s, id, sess_snap(s)->cfg->hostname);
    s->reason = why;
    enter_state(s, ST_CLOSED);
}

/* count_error - one more client error; past max_errors the session ends. */
static void count_error(struct sess *s)
{
    if (++s->errors > s->snap->cfg->max_errors && s->state != ST_CLOSED)
        close_with(s, R_CLOSE_ERRORS, SESS_BY_ERRORS);
}

/* reply_error - an error reply that counts toward the error limit. */
#define reply_error(s, ...) do { reply((s), __VA_ARGS__); count_error(s); } while (0)

/* ---- transactions ----------------------------------------------------- */

/* txn_free - forget the current transaction (MAIL, RCPTs, body). */
static void txn_free(struct sess *s)
{
    if (!s->txn)
        return;
    sb_free(&s->txn->rcpts);
    sb_free(&s->txn->body);
    free(s->txn->quarantine);
    free(s->txn);
    s->txn = NULL;
}

/* txn_end - record how the transaction ended: result (queued, quarantined,
 * refused, tempfail) and a reason for its summary line. A '"' in the reason
 * becomes '\'' so the quoted value stays one field. */
static void txn_end(struct sess *s, const char *result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void txn_end(struct sess *s, const char *result, const char *fmt, ...)
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

/* log_summary - the one line per transaction (README "The receivelog"):
 * client, HELO, TLS, AUTH, sender, recipients, size and the outcome. */
static void log_summary(struct sess *s, const char *sender, size_t nrcpt, unsigned nrefused,
                        uint64_t size, const char *result, const char *id, const char *reason)
{
    count_result(s, result);
    if (!log_on(s))
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

/* txn_summary - the transaction is ending (entering st): log its summary;
 * one that got no result was aborted by the command (RSET, HELO, EHLO) or
 * the close that ends it. */
static void txn_summary(struct sess *s, enum sess_state st)
{
    struct sess_txn *t = s->txn;
    if (!t)
        return;
    const char *result = t->result, *reason = t->reason;
    if (!result) {
        result = "aborted";
        reason = st == ST_CLOSED ? close_reason_text[s->reason] : smtp_verb_name(s->last_verb);
    }
    log_summary(s, t->sender.addr, t->nrcpt, t->nrefused, t->scan.size, result,
                t->queue_id[0] ? t->queue_id : NULL, reason[0] ? reason : NULL);
}

/* enter_state - every state transition goes through here. Leaving the
 * transaction states logs the transaction's summary and drops it. */
static void enter_state(struct sess *s, enum sess_state st)
{
    if (st == ST_INIT || st == ST_HELO || st == ST_CLOSED) {
        txn_summary(s, st);
        txn_free(s);
    }
    if (st == ST_CLOSED)
        s->action = SESS_CLOSE;
    s->state = st;
}

/* txn_begin - a new transaction for MAIL; picks up the newest snapshot. */
static bool txn_begin(struct sess *s)
{
    s->txn = calloc(1, sizeof(*s->txn));
    if (!s->txn)
        return false;
    if (s->env->snap_txn)
        s->snap = s->env->snap_txn(s->env->arg, s->snap);
    return true;
}

/* ---- address checks (the seed's "user check status" lines) ------------ */

enum addr_verdict { ADDR_OK, ADDR_UNKNOWN, ADDR_RELAY_DENIED };

/* check_local_part - status(2): what the directory says of a local address. */
static enum addr_verdict check_local_part(struct sess *s, const struct smtp_addr *a)
{
    const struct dir *d = s->snap->dir;
    if (!d || !dir_configured(d)) {
        log_check(s, "user check status(2) = no directory, any local part accepted");
        return ADDR_OK;
    }
    enum dir_kind k = dir_lookup(d, a->addr, a->len);
    if (k == DIR_NOT_FOUND) {
        log_check(s, "user check status(2) = not found");
        return ADDR_UNKNOWN;
    }
    log_check(s, "user check status(2) = found %s", dir_kind_name(k));
    return ADDR_OK;
}

/* is_postmaster - is the local part "postmaster" (any case)? */
static bool is_postmaster(const struct smtp_addr *a)
{
    return a->at == 10 && mx_memcaseeq(a->addr, "postmaster", 10);
}

/* postmaster_ok - postmaster at a local domain is always deliverable (RFC
 * 5321 4.5.1), even when the directory does not list it. */
static enum addr_verdict postmaster_ok(struct sess *s)
{
    log_check(s, "user check status(2) = postmaster, always accepted (RFC 5321 4.5.1)");
    return ADDR_OK;
}

/* check_address - log and classify one MAIL or RCPT address. For MAIL the
 * verdict is informational; for RCPT it decides. */
static enum addr_verdict check_address(struct sess *s, const struct smtp_addr *a, bool rcpt)
{
    log_check(s, "Check %s address = <%s>", rcpt ? "RCPT TO" : "MAIL FROM", a->addr);
    if (a->is_null)
        return ADDR_OK;
    const struct config *c = s->snap->cfg;
    const char *dom = smtp_addr_domain(a);
    size_t dlen = a->len - (size_t)(dom - a->addr);
    if (dlen == 0) { /* <postmaster> without a domain: always ours (RFC 5321 4.5.1) */
        log_check(s, "user check status(1) = postmaster without domain, accepted");
        return ADDR_OK;
    }
    int idx = cfg_local_domain_index(c, dom, dlen);
    if (idx >= 0) {
        log_check(s, "user check status(1) = found local group (%d)", idx);
        log_check(s, "match!!");
        enum addr_verdict v = check_local_part(s, a);
        return v == ADDR_UNKNOWN && is_postmaster(a) ? postmaster_ok(s) : v;
    }
    log_check(s, "user check status(1) = not local");
    if (!rcpt)
        return ADDR_OK; /* any sender domain; relaying is about recipients */
    if (s->trusted) {
        log_check(s, "relay check = allowed: client [%s] in trusted_networks", s->client_ip);
        return ADDR_OK;
    }
    if (s->auth_user) {
        log_check(s, "relay check = allowed: authenticated as %s", s->auth_user);
        return ADDR_OK;
    }
    log_check(s, "relay check = denied: client [%s] not in trusted_networks, not authenticated",
              s->client_ip);
    return ADDR_RELAY_DENIED;
}

/* ---- command handlers ------------------------------------------------- */

/* auth_offered - AUTH is offered when there are users, inside TLS unless
 * auth_require_tls = no. */
static bool auth_offered(const struct sess *s)
{
    const struct config *c = s->snap->cfg;
    return c->users_file && (s->tls_active || !c->auth_require_tls);
}

/* helo_check - HELO/EHLO need a syntactically valid domain. */
static int helo_check(struct sess *s, const char *arg, size_t len)
{
    size_t dlen;
    if (smtp_parse_helo(arg, len, &dlen) != SMTP_P_OK) {
        reply_error(s, R_ERR_HELO_SYNTAX, s->esmtp ? "EHLO" : "HELO");
        return 0;
    }
    return 1;
}

/* greet - common part of HELO and EHLO: reset, remember the name. */
static void greet(struct sess *s, const char *arg, size_t len, bool esmtp)
{
    size_t dlen = 0;
    smtp_parse_helo(arg, len, &dlen);
    char *h = strndup(arg, dlen);
    if (h) {
        free(s->helo);
        s->helo = h;
    }
    s->esmtp = esmtp;
    enter_state(s, ST_HELO);
}

static void helo_proceed(struct sess *s, const char *arg, size_t len)
{
    greet(s, arg, len, false);
    reply(s, R_HELO, s->snap->cfg->hostname, s->client_ip);
}

static int ehlo_check(struct sess *s, const char *arg, size_t len)
{
    s->esmtp = true; /* for the syntax reply text */
    return helo_check(s, arg, len);
}

static void ehlo_proceed(struct sess *s, const char *arg, size_t len)
{
    greet(s, arg, len, true);
    char size_line[64];
    snprintf(size_line, sizeof(size_line), "250-SIZE %llu",
             (unsigned long long)s->snap->cfg->max_message_size);
    reply(s, R_EHLO_FIRST, s->snap->cfg->hostname, s->client_ip);
    reply_raw(s, "250-PIPELINING");
    reply_raw(s, size_line);
    reply_raw(s, "250-8BITMIME");
    reply_raw(s, "250-SMTPUTF8");
    if ((s->mode & SESS_MODE_STARTTLS) && !s->tls_active)
        reply_raw(s, "250-STARTTLS");
    if (auth_offered(s))
        reply_raw(s, "250-AUTH PLAIN LOGIN");
    reply_raw(s, "250 ENHANCEDSTATUSCODES");
}

/* mail_parse_reply - the reply for a failed MAIL/RCPT parse. */
static void parse_error(struct sess *s, enum smtp_perr e, bool rcpt)
{
    switch (e) {
    case SMTP_P_BAD_PARAM:
        reply_error(s, R_ERR_PARAM);
        break;
    case SMTP_P_SYNTAX:
        reply_error(s, R_ERR_SYNTAX);
        break;
    default:
        reply_error(s, rcpt ? R_ERR_RCPT_SYNTAX : R_ERR_SENDER_SYNTAX);
        break;
    }
}

/* log_size_refused - MAIL with a SIZE= over max_message_size: the reason
 * line, and a summary (the refused message never became a transaction). */
static void log_size_refused(struct sess *s, const struct smtp_addr *a, uint64_t size)
{
    char why[96];
    snprintf(why, sizeof(why), "declared SIZE=%llu over max_message_size %llu",
             (unsigned long long)size, (unsigned long long)s->snap->cfg->max_message_size);
    log_check(s, "MAIL refused: %s", why);
    log_summary(s, a->addr, 0, 0, size, "refused", NULL, why);
}

static int mail_check(struct sess *s, const char *arg, size_t len)
{
    if ((s->mode & SESS_MODE_SUBMISSION) && !s->auth_user) {
        log_check(s, "MAIL refused: submission port and not authenticated");
        reply_error(s, R_ERR_AUTH_REQUIRED);
        return 0;
    }
    if (s->env->queue_full && s->env->queue_full(s->env->arg)) {
        log_check(s, "MAIL refused: queue full (queue_max_messages or queue_min_free_space)");
        reply(s, R_ERR_QUEUE_FULL);
        return 0;
    }
    struct smtp_addr a;
    struct smtp_params p;
    enum smtp_perr e = smtp_parse_mail(arg, len, &a, &p);
    if (e != SMTP_P_OK) {
        parse_error(s, e, false);
        return 0;
    }
    if (!s->esmtp && (p.has_size || p.body != SMTP_BODY_NONE || p.smtputf8 || p.has_auth)) {
        reply_error(s, R_ERR_PARAM);
        return 0;
    }
    if (p.has_size && p.size > s->snap->cfg->max_message_size) {
        log_size_refused(s, &a, p.size);
        reply_error(s, R_ERR_SIZE_MAIL);
        return 0;
    }
    return 1;
}

static void mail_proceed(struct sess *s, const char *arg, size_t len)
{
    if (!txn_begin(s)) {
        reply(s, R_ERR_NOMEM);
        return;
    }
    smtp_parse_mail(arg, len, &s->txn->sender, &s->txn->params);
    check_address(s, &s->txn->sender, false);
    enter_state(s, ST_MAIL);
    reply(s, R_SENDER_OK, s->txn->sender.addr);
}

/* harvest_cut - count an unknown recipient against the client address's
 * budget (max_unknown_recipients_per_ip per 10 minutes, shared by all
 * sessions; trusted_networks exempt). True when it is spent: logged, 421,
 * closed. */
static bool harvest_cut(struct sess *s, const char *addr)
{
    unsigned max = s->snap->cfg->max_unknown_recipients_per_ip;
    if (!max || s->trusted || !s->env->unknown_rcpt)
        return false;
    unsigned n = s->env->unknown_rcpt(s->env->arg, &s->peer);
    if (n <= max)
        return false;
    log_check(s, "RCPT refused: <%s> User unknown, and max_unknown_recipients_per_ip (%u per "
                 "10 minutes) exceeded by [%s]: closing (directory harvest)",
              addr, max, s->client_ip);
    close_with(s, R_CLOSE_HARVEST, SESS_BY_HARVEST);
    return true;
}

/* tarpit - the reply to the k-th unknown recipient of this session waits
 * k * unknown_recipient_delay_ms (each at most, and all replies held at
 * once at most, SESS_TARPIT_MAX_MS); trusted_networks exempt. */
static void tarpit(struct sess *s)
{
    unsigned step = s->snap->cfg->unknown_recipient_delay_ms;
    s->unknown_rcpts++;
    if (!step || s->trusted)
        return;
    uint64_t ms = (uint64_t)step * s->unknown_rcpts;
    if (ms > SESS_TARPIT_MAX_MS)
        ms = SESS_TARPIT_MAX_MS;
    log_check(s, "tarpit: reply to unknown recipient %u of this session delayed %u ms",
              s->unknown_rcpts, (unsigned)ms);
    ms += s->delay_ms;
    s->delay_ms = ms > SESS_TARPIT_MAX_MS ? SESS_TARPIT_MAX_MS : (unsigned)ms;
}

static int rcpt_check(struct sess *s, const char *arg, size_t len)
{
    struct smtp_addr a;
    struct smtp_params p;
    enum smtp_perr e = smtp_parse_rcpt(arg, len, &a, &p);
    if (e != SMTP_P_OK) {
        parse_error(s, e, true);
        return 0;
    }
    if (s->txn->nrcpt >= s->snap->cfg->max_recipients) {
        COUNT(s, rcpt_refused, SESS_RCPT_TOO_MANY);
        s->txn->nrefused++;
        reply(s, R_ERR_TOO_MANY_RCPT);
        return 0;
    }
    switch (check_address(s, &a, true)) {
    case ADDR_OK:
        return 1;
    case ADDR_UNKNOWN:
        if (harvest_cut(s, a.addr))
            return 0;
        COUNT(s, rcpt_refused, SESS_RCPT_UNKNOWN);
        log_check(s, "RCPT refused: <%s> User unknown (not in the recipient directory)", a.addr);
        s->txn->rcpt_tried = true;
        s->txn->nrefused++;
        tarpit(s);
        reply_error(s, R_ERR_USER_UNKNOWN, a.addr);
        return 0;
    case ADDR_RELAY_DENIED:
        COUNT(s, rcpt_refused, SESS_RCPT_RELAY);
        log_check(s, "RCPT refused: <%s> Relaying denied", a.addr);
        s->txn->rcpt_tried = true;
        s->txn->nrefused++;
        reply_error(s, R_ERR_RELAY, a.addr);
        return 0;
    }
    return 0;
}

static void rcpt_proceed(struct sess *s, const char *arg, size_t len)
{
    struct smtp_addr a;
    struct smtp_params p;
    smtp_parse_rcpt(arg, len, &a, &p);
    if (!sb_append(&s->txn->rcpts, a.addr, a.len + 1)) {
        reply(s, R_ERR_NOMEM);
        return;
    }
    s->txn->nrcpt++;
    enter_state(s, ST_RCPT);
    reply(s, R_RCPT_OK, a.addr);
}

static int data_check(struct sess *s, const char *arg, size_t len)
{
    (void)arg;
    (void)len;
    if (s->state == ST_MAIL) {
        if (s->txn->rcpt_tried)
            reply_error(s, R_ERR_NO_VALID_RCPT);
        else
            reply_error(s, R_ERR_NEED_RCPT);
        return 0;
    }
    return 1;
}

static void data_proceed(struct sess *s, const char *arg, size_t len)
{
    (void)arg;
    (void)len;
    data_scan_init(&s->txn->scan, s->snap->cfg->max_message_size);
    s->data_phases++;
    enter_state(s, ST_DATA);
    reply(s, R_DATA_GO);
}

static void rset_proceed(struct sess *s, const char *arg, size_t len)
{
    (void)arg;
    (void)len;
    enter_state(s, s->state == ST_INIT ? ST_INIT : ST_HELO);
    reply(s, R_RSET);
}

static void noop_proceed(struct sess *s, const char *arg, size_t len)
{
    (void)arg;
    (void)len;
    reply(s, R_OK);
}

static void quit_proceed(struct sess *s, const char *arg, size_t len)
{
    (void)arg;
    (void)len;
    close_with(s, R_QUIT, SESS_BY_QUIT);
}

static int vrfy_check(struct sess *s, const char *arg, size_t len)
{
    (void)arg;
    if (len == 0) {
        reply_error(s, R_ERR_SYNTAX);
        return 0;
    }
    return 1;
}

static void vrfy_proceed(struct sess *s, const char *arg, size_t len)
{
    (void)arg;
    (void)len;
    reply(s, R_VRFY);
}

static void help_proceed(struct sess *s, const char *arg, size_t len);

static int starttls_check(struct sess *s, const char *arg, size_t len)
{
    (void)arg;
    (void)len;
    if (s->tls_active) {
        reply_error(s, R_ERR_TLS_ACTIVE);
        return 0;
    }
    if (!(s->mode & SESS_MODE_STARTTLS)) {
        reply_error(s, R_ERR_NOT_IMPL);
        return 0;
    }
    return 1;
}

static void starttls_proceed(struct sess *s, const char *arg, size_t len)
{
    (void)arg;
    (void)len;
    reply(s, R_TLS_GO);
    s->action = SESS_STARTTLS; /* input after this line is never processed */
}

/* auth_fail - one failed attempt; past auth_max_failures the session ends. */
static void auth_fail(struct sess *s, enum reply_id id, const char *why)
{
    explicit_bzero(s->auth_buf, sizeof(s->auth_buf));
    s->auth_step = AUTH_IDLE;
    s->auth_failures++;
    log_check(s, "AUTH failed (%u of %u): %s", s->auth_failures,
              s->snap->cfg->auth_max_failures, why);
    reply(s, id);
    if (s->auth_failures >= s->snap->cfg->auth_max_failures)
        close_with(s, R_CLOSE_AUTH, SESS_BY_AUTH);
}

/* auth_have_plain - decode a PLAIN response; on success hand it to the
 * verifier (action SESS_AUTH). */
static void auth_have_plain(struct sess *s, const char *resp, size_t len)
{
    struct auth_creds cr;
    enum auth_rc rc = auth_plain_decode(resp, len, s->auth_buf, AUTH_DECODED_MAX, &cr);
    if (rc == AUTH_ERR_CANCEL) {
        s->auth_step = AUTH_IDLE;
        log_check(s, "AUTH cancelled by the client");
        reply(s, R_ERR_AUTH_ABORTED);
        return;
    }
    if (rc != AUTH_OK) {
        auth_fail(s, rc == AUTH_ERR_BASE64 ? R_ERR_AUTH_DECODE : R_ERR_AUTH_FAILED,
                  auth_rc_text(rc));
        return;
    }
    /* keep user then password contiguous at the start of auth_buf */
    unsigned char tmp[AUTH_DECODED_MAX];
    memcpy(tmp, cr.user, cr.user_len);
    memcpy(tmp + cr.user_len, cr.pass, cr.pass_len);
    s->auth_ulen = cr.user_len;
    s->auth_plen = cr.pass_len;
    memcpy(s->auth_buf, tmp, cr.user_len + cr.pass_len);
    explicit_bzero(tmp, sizeof(tmp));
    s->auth_step = AUTH_IDLE;
    s->action = SESS_AUTH;
}

/* auth_continue - one response line of an AUTH dialogue (never logged). */
static void auth_continue(struct sess *s, const char *line, size_t len)
{
    char masked[8];
    size_t n = auth_mask_response(line, len, masked, sizeof(masked));
    log_text(s, masked, n);
    if (s->auth_step == AUTH_WAIT_PLAIN) {
        auth_have_plain(s, line, len);
        return;
    }
    if (auth_is_cancel(line, len)) {
        explicit_bzero(s->auth_buf, sizeof(s->auth_buf));
        s->auth_step = AUTH_IDLE;
        log_check(s, "AUTH cancelled by the client");
        reply(s, R_ERR_AUTH_ABORTED);
        return;
    }
    size_t got = 0;
    enum auth_rc rc;
    if (s->auth_step == AUTH_WAIT_USER) {
        rc = auth_login_user(line, len, s->auth_buf, AUTH_USER_MAX, &got);
        if (rc == AUTH_OK) {
            s->auth_ulen = got;
            s->auth_step = AUTH_WAIT_PASS;
            reply(s, R_AUTH_CHALLENGE, AUTH_LOGIN_PROMPT_PASS);
            return;
        }
    } else {
        rc = auth_login_pass(line, len, s->auth_buf + s->auth_ulen, AUTH_PASS_MAX, &got);
        if (rc == AUTH_OK) {
            s->auth_plen = got;
            s->auth_step = AUTH_IDLE;
            s->action = SESS_AUTH;
            return;
        }
    }
    auth_fail(s, rc == AUTH_ERR_BASE64 ? R_ERR_AUTH_DECODE : R_ERR_AUTH_FAILED, auth_rc_text(rc));
}

static int auth_check(struct sess *s, const char *arg, size_t len)
{
    struct auth_cmd cmd;
    if (!s->esmtp) {
        reply_error(s, R_ERR_NEED_HELO);
        return 0;
    }
    if (s->auth_user) {
        reply_error(s, R_ERR_AUTH_ALREADY);
        return 0;
    }
    if (!s->snap->cfg->users_file) {
        reply_error(s, R_ERR_NOT_IMPL);
        return 0;
    }
    if (!s->tls_active && s->snap->cfg->auth_require_tls) {
        log_check(s, "AUTH refused: not inside TLS (auth_require_tls = yes)");
        reply_error(s, R_ERR_AUTH_NEEDS_TLS);
        return 0;
    }
    if (!auth_cmd_parse(arg, len, &cmd)) {
        reply_error(s, R_ERR_SYNTAX);
        return 0;
    }
    if (cmd.mech == AUTH_MECH_UNKNOWN) {
        reply_error(s, R_ERR_AUTH_MECH);
        return 0;
    }
    return 1;
}

static void auth_proceed(struct sess *s, const char *arg, size_t len)
{
    struct auth_cmd cmd;
    auth_cmd_parse(arg, len, &cmd);
    s->auth_mech = cmd.mech;
    if (cmd.mech == AUTH_MECH_PLAIN) {
        if (cmd.initial) {
            auth_have_plain(s, cmd.initial, cmd.initial_len);
            return;
        }
        s->auth_step = AUTH_WAIT_PLAIN;
        reply(s, R_AUTH_CHALLENGE, "");
        return;
    }
    s->auth_step = AUTH_WAIT_USER;
    if (cmd.initial) {
        auth_continue(s, cmd.initial, cmd.initial_len);
        return;
    }
    reply(s, R_AUTH_CHALLENGE, AUTH_LOGIN_PROMPT_USER);
}

/* auth_begin - AUTH accepted: run the exchange. Once a dialogue or the
 * verification is under way, its lines are masked by it: nothing more to
 * mask after the command itself. */
static void auth_begin(struct sess *s, const char *arg, size_t len)
{
    auth_proceed(s, arg, len);
    if (s->auth_step != AUTH_IDLE || s->action == SESS_AUTH)
        s->mask_lines = 0;
}

/* auth_response - one response line inside an AUTH dialogue (masked by
 * auth_continue); then what follows it is masked as it needs. */
static void auth_response(struct sess *s, const char *line, size_t len)
{
    unsigned failures = s->auth_failures;
    auth_continue(s, line, len);
    mask_after_response(s, line, len, s->auth_failures != failures);
}

/* not_impl_proceed - EXPN, TURN, ETRN: known commands we do not offer. */
static void not_impl_proceed(struct sess *s, const char *arg, size_t len)
{
    (void)arg;
    (void)len;
    reply_error(s, R_ERR_NOT_IMPL);
}

/* starttls_offered - is STARTTLS in this session's EHLO reply? */
static bool starttls_offered(const struct sess *s)
{
    return (s->mode & SESS_MODE_STARTTLS) && !s->tls_active;
}

#define ALL_OPEN (STB(ST_INIT) | STB(ST_HELO) | STB(ST_MAIL) | STB(ST_RCPT))

/* The command table: dispatch goes only through here. */
static const struct smtp_cmd cmd_table[] = {
    {SMTP_VERB_HELO, ALL_OPEN, CMD_PRE_TLS, helo_check, helo_proceed},
    {SMTP_VERB_EHLO, ALL_OPEN, CMD_PRE_TLS, ehlo_check, ehlo_proceed},
    {SMTP_VERB_MAIL, STB(ST_HELO), 0, mail_check, mail_proceed},
    {SMTP_VERB_RCPT, STB(ST_MAIL) | STB(ST_RCPT), 0, rcpt_check, rcpt_proceed},
    {SMTP_VERB_DATA, STB(ST_MAIL) | STB(ST_RCPT), CMD_NOARGS, data_check, data_proceed},
    {SMTP_VERB_RSET, ALL_OPEN, CMD_NOARGS | CMD_PRE_TLS | CMD_JUNK, NULL, rset_proceed},
    {SMTP_VERB_NOOP, ALL_OPEN, CMD_PRE_TLS | CMD_JUNK, NULL, noop_proceed},
    {SMTP_VERB_QUIT, ALL_OPEN, CMD_NOARGS | CMD_PRE_TLS, NULL, quit_proceed},
    {SMTP_VERB_VRFY, ALL_OPEN, CMD_JUNK, vrfy_check, vrfy_proceed},
    {SMTP_VERB_HELP, ALL_OPEN, CMD_PRE_TLS | CMD_JUNK, NULL, help_proceed},
    {SMTP_VERB_STARTTLS, STB(ST_INIT) | STB(ST_HELO), CMD_NOARGS | CMD_PRE_TLS, starttls_check,
     starttls_proceed},
    {SMTP_VERB_AUTH, STB(ST_HELO), 0, auth_check, auth_begin},
    {SMTP_VERB_EXPN, ALL_OPEN, CMD_UNIMPL, NULL, not_impl_proceed},
    {SMTP_VERB_TURN, ALL_OPEN, CMD_UNIMPL, NULL, not_impl_proceed},
    {SMTP_VERB_ETRN, ALL_OPEN, CMD_UNIMPL, NULL, not_impl_proceed},
};

/* Commands offered only sometimes (as in the EHLO reply): HELP names them
 * only when they are. */
static const struct {
    enum smtp_verb verb;
    bool (*offered)(const struct sess *s);
} help_offer[] = {
    {SMTP_VERB_STARTTLS, starttls_offered},
    {SMTP_VERB_AUTH, auth_offered},
};

/* help_lists - does HELP name this command now? Not the unimplemented
 * ones, nor those not offered in this state. */
static bool help_lists(const struct sess *s, const struct smtp_cmd *c)
{
    if (c->flags & CMD_UNIMPL)
        return false;
    for (size_t i = 0; i < MX_ARRAY_LEN(help_offer); i++)
        if (help_offer[i].verb == c->verb)
            return help_offer[i].offered(s);
    return true;
}

static void help_proceed(struct sess *s, const char *arg, size_t len)
{
    (void)arg;
    (void)len;
    char names[128] = "";
    size_t off = 0;
    for (size_t i = 0; i < MX_ARRAY_LEN(cmd_table); i++) {
        if (!help_lists(s, &cmd_table[i]))
            continue;
        int n = snprintf(names + off, sizeof(names) - off, "%s%s", off ? " " : "",
                         smtp_verb_name(cmd_table[i].verb));
        if (n < 0 || (size_t)n >= sizeof(names) - off)
            break;
        off += (size_t)n;
    }
    reply(s, R_HELP, names);
}

/* cmd_lookup - the table entry for a verb, or NULL. */
static const struct smtp_cmd *cmd_lookup(enum smtp_verb v)
{
    for (size_t i = 0; i < MX_ARRAY_LEN(cmd_table); i++)
        if (cmd_table[i].verb == v)
            return &cmd_table[i];
    return NULL;
}

/* bad_sequence - the 503 reply for a command outside its states. */
static void bad_sequence(struct sess *s, enum smtp_verb v)
{
    if (s->state == ST_INIT)
        reply_error(s, R_ERR_NEED_HELO);
    else if (v == SMTP_VERB_MAIL)
        reply_error(s, R_ERR_NESTED_MAIL);
    else if (v == SMTP_VERB_RCPT)
        reply_error(s, R_ERR_NEED_MAIL);
    else if (s->state == ST_HELO)
        reply_error(s, R_ERR_NEED_MAIL_DATA);
    else
        reply_error(s, R_ERR_NEED_RCPT);
}

/* dispatch - one complete command line (without CRLF). */
static void dispatch(struct sess *s, const char *line, size_t len)
{
    size_t arg_off = len;
    enum smtp_verb v = smtp_parse_verb(line, len, &arg_off);
    s->last_verb = v;
    COUNT(s, commands, v);
    log_command(s, line, len);
    const struct smtp_cmd *cmd = cmd_lookup(v);
    if (!cmd) {
        reply_error(s, R_ERR_UNKNOWN);
        return;
    }
    const char *arg = line + arg_off;
    size_t alen = len - arg_off;
    while (alen && arg[alen - 1] == ' ')
        alen--;
    if (!(cmd->states & STB(s->state))) {
        bad_sequence(s, v);
        return;
    }
    if ((cmd->flags & CMD_JUNK) && ++s->junk > s->snap->cfg->max_junk_commands) {
        close_with(s, R_CLOSE_JUNK, SESS_BY_JUNK);
        return;
    }
    if ((cmd->flags & CMD_NOARGS) && alen) {
        reply_error(s, R_ERR_NO_ARGS, smtp_verb_name(v));
        return;
    }
    if (cmd->check && !cmd->check(s, arg, alen))
        return;
    cmd->proceed(s, arg, alen);
}

/* ---- input ------------------------------------------------------------ */

/* data_refusal - the reply refusing the complete message (R_COUNT: none),
 * with the specific reason recorded for the log and the summary. Offsets
 * count octets from the start of the data as sent (stuffing dots too). */
static enum reply_id data_refusal(struct sess *s)
{
    const struct data_scan *ds = &s->txn->scan;
    if (ds->flags & DATA_F_BARE_EOL) {
        txn_end(s, "refused", "bare %s at data offset %llu, %s",
                ds->bare_octet == '\r' ? "CR" : "LF", (unsigned long long)ds->first_bare,
                ds->flags & DATA_F_BARE_CMD
                    ? "an SMTP command follows it (smuggling attempt)"
                    : "no SMTP command follows it");
        return R_ERR_BARE_EOL;
    }
    if ((ds->flags & DATA_F_NUL) && s->snap->cfg->nul_bytes == CFG_NUL_REJECT) {
        txn_end(s, "refused", "NUL octet at data offset %llu",
                (unsigned long long)ds->first_nul);
        return R_ERR_DATA_NUL;
    }
    if (ds->flags & DATA_F_LONG_LINE) {
        txn_end(s, "refused", "line over %d octets", SMTP_DATA_LINE_MAX);
        return R_ERR_DATA_LINE_LONG;
    }
    if (ds->flags & DATA_F_TOO_BIG) {
        txn_end(s, "refused", "over max_message_size %llu",
                (unsigned long long)s->snap->cfg->max_message_size);
        return R_ERR_SIZE_DATA;
    }
    return R_COUNT;
}

/* data_is_8bit - what the accepted data really is: 8-bit octets make it
 * 8BITMIME whatever the client declared (the mismatch is logged, the mail
 * kept, as every MTA does); NULs allowed by nul_bytes are logged too. */
static bool data_is_8bit(struct sess *s)
{
    const struct sess_txn *t = s->txn;
    bool declared = t->params.body == SMTP_BODY_8BITMIME;
    if ((t->scan.flags & DATA_F_8BIT) && !declared)
        log_check(s, "8-bit data without BODY=8BITMIME (declared %s): recorded as 8BITMIME",
                  t->params.body == SMTP_BODY_7BIT ? "BODY=7BIT" : "no BODY");
    if (t->scan.flags & DATA_F_NUL)
        log_check(s, "NUL octet at data offset %llu accepted (nul_bytes = allow)",
                  (unsigned long long)t->scan.first_nul);
    return declared || (t->scan.flags & DATA_F_8BIT);
}

/* proto_name - RFC 3848 "with" name: SMTP (HELO), ESMTP, ESMTPS (TLS),
 * ESMTPA (AUTH), ESMTPSA (both). */
static const char *proto_name(const struct sess *s)
{
    static const char *const names[4] = {"ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA"};
    if (!s->esmtp)
        return "SMTP";
    return names[(s->tls_active ? 1 : 0) | (s->auth_user ? 2 : 0)];
}

/* data_refused - will the message being received be refused at its end?
 * (The same conditions as data_refusal, without the logging.) */
static bool data_refused(const struct sess *s)
{
    const struct data_scan *ds = &s->txn->scan;
    if (ds->flags & (DATA_F_BARE_EOL | DATA_F_LONG_LINE | DATA_F_TOO_BIG))
        return true;
    return (ds->flags & DATA_F_NUL) && s->snap->cfg->nul_bytes == CFG_NUL_REJECT;
}

/* finish_data - the end of DATA was seen: refuse or hand to the spool. */
static void finish_data(struct sess *s)
{
    struct sess_txn *t = s->txn;
    log_text(s, ".", 1);
    enum reply_id refuse = data_refusal(s);
    if (refuse != R_COUNT) {
        log_check(s, "Message refused (%llu octets): %s", (unsigned long long)t->scan.size,
                  t->reason);
        enter_state(s, ST_HELO);
        reply(s, refuse);
        return;
    }
    bool eightbit = data_is_8bit(s);
    struct sess_msg *m = &t->msg;
    *m = (struct sess_msg){
        .helo = s->helo ? s->helo : "",
        .client_ip = s->client_ip,
        .client_port = s->client_port,
        .proto = proto_name(s),
        .tls_version = s->tls_active && s->tls_version[0] ? s->tls_version : NULL,
        .tls_cipher = s->tls_active && s->tls_cipher[0] ? s->tls_cipher : NULL,
        .auth_user = s->auth_user,
        .sender = t->sender.addr,
        .rcpts = t->rcpts.data,
        .nrcpt = t->nrcpt,
        .tail = t->body.data ? t->body.data : "",
        .tail_len = t->body.len,
        .body_len = (size_t)t->scan.size,
        .eightbit = eightbit,
        .smtputf8 = t->params.smtputf8,
        .sid = s->sid,
    };
    bool filter = s->env->want_filter && s->env->want_filter(s->env->arg, s->snap);
    s->action = filter ? SESS_FILTER : SESS_SPOOL;
}

/* feed_data - DATA-phase bytes; returns how many were consumed. The chunk
 * buffer stays bounded: the scanner gets at most as many input octets as
 * the buffer has room for (one input octet yields at most one output octet,
 * plus one CR held back from an earlier call); a full buffer is offered as
 * SESS_CHUNK. A message already refused keeps being scanned (for its end
 * and size) but stores nothing. */
static size_t feed_data(struct sess *s, const char *p, size_t n)
{
    struct sess_txn *t = s->txn;
    size_t room = SESS_CHUNK_MAX - 1 - t->body.len;
    bool done = false;
    size_t used = data_scan_feed(&t->scan, p, n < room ? n : room, &t->body, &done);
    if (used == (size_t)-1) {
        log_check(s, "out of memory while receiving a message");
        sess_gone(s, SESS_BY_IOERR);
        return n;
    }
    if (data_refused(s))
        sb_reset(&t->body);
    if (done)
        finish_data(s);
    else if (t->body.len >= SESS_CHUNK_MAX - 1)
        s->action = SESS_CHUNK;
    return used;
}

/* line_max - the longest line accepted here: AUTH lines and responses
 * inside an AUTH dialogue may be longer than other commands. */
static size_t line_max(const struct sess *s, const char *p, size_t n)
{
    if (s->auth_step != AUTH_IDLE)
        return SESS_AUTH_LINE_MAX;
    if (n >= 5 && mx_memcaseeq(p, "AUTH ", 5))
        return SESS_AUTH_LINE_MAX;
    return SMTP_LINE_MAX;
}

/* bare_lf_line - a line ended by LF alone: refused with 500 5.5.2 and
 * counted as an error, never run (Postfix smtpd_forbid_bare_newline). The
 * line is logged masked like any other; inside an AUTH dialogue the
 * attempt fails. */
static void bare_lf_line(struct sess *s, const char *p, size_t len)
{
    if (s->auth_step != AUTH_IDLE) {
        log_text(s, SESS_MASKED, sizeof(SESS_MASKED) - 1);
        auth_fail(s, R_ERR_BARE_LF, "response line ended by a bare LF");
        mask_after_response(s, p, len, true);
        return;
    }
    log_command(s, p, len);
    log_check(s, "command line refused: ended by a bare LF, not CRLF (%zu octets)", len + 1);
    reply_error(s, R_ERR_BARE_LF);
}

/* feed_line - command-phase bytes: handle one line if complete; returns
 * bytes consumed (0 = need more input). */
static size_t feed_line(struct sess *s, const char *p, size_t n)
{
    const char *lf = memchr(p, '\n', n);
    size_t max = line_max(s, p, n);
    if (!lf) {
        if (n < max)
            return 0;
        if (!s->skip_line) {
            log_check(s, "command line over %d octets discarded", SMTP_LINE_MAX);
            mask_discarded(s, p, n);
            reply_error(s, R_ERR_LINE_TOO_LONG);
        }
        s->skip_line = true;
        return n;
    }
    size_t used = (size_t)(lf - p) + 1;
    size_t len = used - 1;
    if (len && p[len - 1] == '\r')
        len--;
    if (s->skip_line) {
        s->skip_line = false;
        return used;
    }
    if (len + 2 > max) {
        log_check(s, "command line over %zu octets refused", max);
        if (s->auth_step != AUTH_IDLE) {
            auth_fail(s, R_ERR_LINE_TOO_LONG, "response line too long");
            mask_after_response(s, p, len, true);
        } else {
            mask_discarded(s, p, len);
            reply_error(s, R_ERR_LINE_TOO_LONG);
        }
        return used;
    }
    if (len == used - 1) {
        bare_lf_line(s, p, len);
        return used;
    }
    if (s->auth_step != AUTH_IDLE)
        auth_response(s, p, len);
    else
        dispatch(s, p, len);
    return used;
}

/* drop_after_starttls - plaintext pipelined behind STARTTLS is never
 * processed (CVE-2011-0411 class); say how much was thrown away. */
static void drop_after_starttls(struct sess *s, size_t n)
{
    if (n)
        log_check(s, "discarded %zu octets sent after STARTTLS before the handshake", n);
}

/* process - run the machine over p until input or the action runs out. */
static size_t process(struct sess *s, const char *p, size_t n)
{
    size_t off = 0;
    if (s->state == ST_GREET_WAIT && n) {
        log_check(s, "client talked before the greeting (greet_pause_ms = %u)",
                  s->snap->cfg->greet_pause_ms);
        close_with(s, R_CLOSE_PREGREET, SESS_BY_PREGREET);
        return n;
    }
    while (off < n && s->action == SESS_RUN && s->out.len < SESS_OUT_MAX) {
        size_t used = s->state == ST_DATA ? feed_data(s, p + off, n - off)
                                          : feed_line(s, p + off, n - off);
        if (used == 0)
            break;
        s->progress++;
        off += used;
    }
    return off;
}

void sess_input(struct sess *s, const char *buf, size_t len)
{
    if (s->action == SESS_CLOSE)
        return; /* nothing more is read from a closing session */
    if (s->action == SESS_STARTTLS) {
        drop_after_starttls(s, len);
        return;
    }
    if (s->in.len || s->action != SESS_RUN) {
        if (len && !sb_append(&s->in, buf, len)) {
            sess_gone(s, SESS_BY_IOERR);
            return;
        }
        if (s->action != SESS_RUN)
            return;
        /* process from a private copy: dispatch may not touch s->in */
        struct sb held = s->in;
        s->in = (struct sb){0};
        size_t used = process(s, held.data, held.len);
        if (s->action == SESS_STARTTLS)
            drop_after_starttls(s, held.len - used);
        else if (used < held.len && s->action != SESS_CLOSE)
            sb_append(&s->in, held.data + used, held.len - used);
        sb_free(&held);
        return;
    }
    size_t used = process(s, buf, len);
    if (s->action == SESS_STARTTLS)
        drop_after_starttls(s, len - used);
    else if (used < len && s->action != SESS_CLOSE && !sb_append(&s->in, buf + used, len - used))
        sess_gone(s, SESS_BY_IOERR);
}

/* ---- life cycle and I/O-layer events ------------------------------------ */

/* peer_text - client address text and port of peer (normalised in addr.c). */
static void peer_text(struct sess *s, const struct mx_addr *peer)
{
    _Static_assert(sizeof(s->client_ip) >= sizeof(peer->text), "client_ip holds mx_addr text");
    if (peer) {
        memcpy(s->client_ip, peer->text, sizeof(peer->text));
        s->client_port = peer->port;
    } else {
        strcpy(s->client_ip, "unknown");
    }
}

/* peer_keep - a copy of the client address (the harvest budget's key;
 * the unknown address when there is none). */
static void peer_keep(struct sess *s, const struct mx_addr *peer)
{
    if (peer)
        s->peer = *peer;
    else
        mx_addr_from_sockaddr(&s->peer, NULL);
}

struct sess *sess_new(const struct sess_env *env, struct snap *snap, uint32_t sid,
                      const struct mx_addr *peer, uint16_t local_port)
{
    struct sess *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->env = env;
    s->snap = snap;
    s->sid = sid;
    s->local_port = local_port;
    peer_text(s, peer);
    peer_keep(s, peer);
    s->trusted = peer && cfg_cidr_match(snap->cfg->trusted_networks,
                                        snap->cfg->ntrusted_networks, peer);
    return s;
}

void sess_free(struct sess *s)
{
    if (!s)
        return;
    txn_free(s);
    free(s->helo);
    free(s->auth_user);
    explicit_bzero(s->auth_buf, sizeof(s->auth_buf));
    sb_free(&s->in);
    sb_free(&s->out);
    free(s);
}

/* log_connect - the first line of every session. */
static void log_connect(struct sess *s)
{
    log_check(s, "Connection accepted: client [%s]:%u, local port %u, worker %u%s%s%s",
              s->client_ip, s->client_port, s->local_port, s->env->worker,
              s->trusted ? ", trusted network" : "", s->via[0] ? ", " : "", s->via);
}

/* sess_set_peer - see session.h. */
void sess_set_peer(struct sess *s, const struct mx_addr *peer, const char *via)
{
    peer_text(s, peer);
    peer_keep(s, peer);
    s->trusted = cfg_cidr_match(s->snap->cfg->trusted_networks,
                                s->snap->cfg->ntrusted_networks, peer);
    snprintf(s->via, sizeof(s->via), "%s", via ? via : "");
}

/* sess_proxy_refused - see session.h. */
void sess_proxy_refused(struct sess *s, const char *why)
{
    log_connect(s);
    log_check(s, "PROXY header refused: %s", why);
    s->reason = SESS_BY_PROXY;
    enter_state(s, ST_CLOSED);
}

void sess_start(struct sess *s)
{
    log_connect(s);
    reply(s, R_BANNER, s->snap->cfg->hostname);
}

void sess_greet_wait(struct sess *s)
{
    log_connect(s);
    s->state = ST_GREET_WAIT;
}

void sess_greet(struct sess *s)
{
    if (s->state != ST_GREET_WAIT || s->action != SESS_RUN)
        return;
    enter_state(s, ST_INIT);
    reply(s, R_BANNER, s->snap->cfg->hostname);
}

void sess_refuse(struct sess *s, enum sess_close_reason why)
{
    const struct config *c = s->snap->cfg;
    log_connect(s);
    if (why == SESS_BY_PER_IP) {
        log_check(s, "max_sessions_per_ip (%u) reached for [%s]: connection refused",
                  c->max_sessions_per_ip, s->client_ip);
        close_with(s, R_CLOSE_PER_IP, why);
    } else if (why == SESS_BY_RATE) {
        log_check(s, "max_connect_rate_per_ip (%u/min) exceeded by [%s]: connection refused",
                  c->max_connect_rate_per_ip, s->client_ip);
        close_with(s, R_CLOSE_RATE, why);
    } else {
        log_check(s, "max_sessions (%u) reached: connection refused", c->max_sessions);
        close_with(s, R_CLOSE_LIMIT, SESS_BY_LIMIT);
    }
}

unsigned sess_progress(const struct sess *s) { return s->progress; }
unsigned sess_data_phase(const struct sess *s) { return s->data_phases; }
bool sess_trusted(const struct sess *s) { return s->trusted; }

enum sess_action sess_action(const struct sess *s) { return s->action; }
struct sb *sess_out(struct sess *s) { return &s->out; }
size_t sess_backlog(const struct sess *s) { return s->in.len; }

unsigned sess_reply_delay_ms(struct sess *s)
{
    unsigned ms = s->action == SESS_CLOSE ? 0 : s->delay_ms;
    s->delay_ms = 0;
    return ms;
}
struct snap *sess_snap(const struct sess *s) { return s->snap; }
uint32_t sess_id(const struct sess *s) { return s->sid; }

enum sess_phase sess_phase(const struct sess *s)
{
    return s->state == ST_DATA || s->action == SESS_SPOOL || s->action == SESS_FILTER ||
                   s->action == SESS_CHUNK
               ? SESS_PHASE_DATA
                                                           : SESS_PHASE_COMMAND;
}

bool sess_in_transaction(const struct sess *s)
{
    return s->txn != NULL;
}

const struct sess_msg *sess_msg(const struct sess *s)
{
    return (s->action == SESS_SPOOL || s->action == SESS_FILTER) && s->txn ? &s->txn->msg
                                                                          : NULL;
}

const char *sess_chunk(const struct sess *s, size_t *len)
{
    if (s->action != SESS_CHUNK || !s->txn) {
        *len = 0;
        return NULL;
    }
    *len = s->txn->body.len;
    return s->txn->body.data;
}

void sess_chunk_done(struct sess *s)
{
    if (s->action != SESS_CHUNK)
        return;
    sb_reset(&s->txn->body);
    s->action = SESS_RUN;
}

void sess_log(struct sess *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vcheck(s, fmt, ap);
    va_end(ap);
}

/* run_deferred_close - a close that waited for the message's outcome. */
static void run_deferred_close(struct sess *s)
{
    if (!s->deferred)
        return;
    s->deferred = false;
    if (s->deferred_reason == SESS_BY_TIMEOUT)
        sess_timeout(s);
    else if (s->deferred_reason == SESS_BY_SHUTDOWN)
        sess_shutdown(s);
    else
        sess_gone(s, s->deferred_reason);
}

/* txn_queued - the summary's result of a message in the queue. */
static void txn_queued(struct sess *s, const char *queue_id)
{
    if (s->txn->quarantine)
        txn_end(s, "quarantined", "%s", s->txn->quarantine);
    else
        txn_end(s, "queued", NULL);
    snprintf(s->txn->queue_id, sizeof(s->txn->queue_id), "%s", queue_id ? queue_id : "");
}

/* filter_refused - the summary's result of a filter verdict that ends the
 * transaction (spam, virus, tempfail). */
static void filter_refused(struct sess *s, enum sess_verdict v, const char *detail)
{
    if (v == SESS_VERDICT_REJECT_SPAM)
        txn_end(s, "refused", "content filter: spam (SURBL/URIBL)");
    else if (v == SESS_VERDICT_REJECT_VIRUS)
        txn_end(s, "refused", "content filter: virus %s", detail && *detail ? detail : "unknown");
    else
        txn_end(s, "tempfail", "content filter could not decide%s%s", detail && *detail ? ": " : "",
                detail ? detail : "");
}

void sess_filter_done(struct sess *s, enum sess_verdict v, const char *detail)
{
    if (s->action != SESS_FILTER)
        return;
    if (v == SESS_VERDICT_PASS || v == SESS_VERDICT_QUARANTINE) {
        if (v == SESS_VERDICT_QUARANTINE) {
            s->txn->quarantine = strdup(detail && *detail ? detail : "filter");
            s->txn->msg.quarantine = s->txn->quarantine ? s->txn->quarantine : "filter";
        }
        s->action = SESS_SPOOL;
        return;
    }
    s->action = SESS_RUN;
    filter_refused(s, v, detail);
    enter_state(s, ST_HELO);
    if (v == SESS_VERDICT_REJECT_SPAM)
        reply(s, R_ERR_FILTER_SPAM);
    else if (v == SESS_VERDICT_REJECT_VIRUS)
        reply(s, R_ERR_FILTER_VIRUS, detail && *detail ? detail : "unknown");
    else
        reply(s, R_ERR_FILTER_TEMP);
    run_deferred_close(s);
}

void sess_spool_done(struct sess *s, int err, const char *queue_id)
{
    if (s->action != SESS_SPOOL)
        return;
    s->action = SESS_RUN;
    if (err == 0) {
        log_check(s, "Message accepted: queue id %s, %zu octets, %zu recipient(s)", queue_id,
                  s->txn->msg.body_len, s->txn->nrcpt);
        txn_queued(s, queue_id);
        enter_state(s, ST_HELO);
        reply(s, R_MSG_OK, queue_id);
    } else {
        log_check(s, "Message not queued: %s", strerror(err));
        txn_end(s, "tempfail", "queue write failed: %s", strerror(err));
        enter_state(s, ST_HELO);
        reply(s, R_ERR_QUEUE);
    }
    run_deferred_close(s);
}

/* defer_close - while a message is being written, the close waits for the
 * spool's reply (the client must learn whether its message was taken). */
static bool defer_close(struct sess *s, enum sess_close_reason why)
{
    if (s->action != SESS_SPOOL && s->action != SESS_FILTER)
        return false;
    if (!s->deferred) {
        s->deferred = true;
        s->deferred_reason = why;
    }
    return true;
}

void sess_timeout(struct sess *s)
{
    if (s->action == SESS_CLOSE || defer_close(s, SESS_BY_TIMEOUT))
        return;
    log_check(s, "%s timeout", s->state == ST_DATA ? "timeout_data" : "timeout_command");
    close_with(s, R_CLOSE_TIMEOUT, SESS_BY_TIMEOUT);
}

void sess_shutdown(struct sess *s)
{
    if (s->action == SESS_CLOSE || defer_close(s, SESS_BY_SHUTDOWN))
        return;
    close_with(s, R_CLOSE_SHUTDOWN, SESS_BY_SHUTDOWN);
}

void sess_gone(struct sess *s, enum sess_close_reason why)
{
    if (s->action == SESS_CLOSE || defer_close(s, why))
        return;
    s->reason = why;
    enter_state(s, ST_CLOSED);
}

void sess_eof(struct sess *s)
{
    if (s->action == SESS_STARTTLS) { /* no handshake can follow */
        log_check(s, "end of input after STARTTLS");
        sess_gone(s, SESS_BY_PEER);
        return;
    }
    if (s->action != SESS_RUN)
        return; /* CLOSE already, or an action whose reply is still due */
    sess_input(s, NULL, 0);
    if (s->action != SESS_RUN || s->out.len >= SESS_OUT_MAX)
        return;
    if (s->state == ST_DATA)
        log_check(s, "end of input inside DATA: message not accepted");
    else if (s->in.len || s->skip_line)
        log_check(s, "end of input inside a command line (%zu octets discarded)", s->in.len);
    sess_gone(s, SESS_BY_PEER);
}

void sess_log_close(struct sess *s)
{
    if (s->closed_logged)
        return;
    s->closed_logged = true;
    COUNT(s, closes, s->reason);
    if (!log_on(s))
        return;
    char line[64];
    int n = snprintf(line, sizeof(line), "CloseClient Started. (%s)",
                     close_reason_text[s->reason]);
    log_text(s, line, (size_t)n);
    log_text(s, "closesocket()", 13);
}

void sess_set_authenticated(struct sess *s, const char *user)
{
    char *u = strdup(user);
    if (!u)
        return;
    free(s->auth_user);
    s->auth_user = u;
}

void sess_set_mode(struct sess *s, unsigned flags)
{
    s->mode = flags;
    s->tls_active = (flags & SESS_MODE_TLS) != 0;
}

void sess_tls_started(struct sess *s, const char *version, const char *cipher)
{
    log_check(s, "TLS established: %s, cipher %s", version, cipher);
    snprintf(s->tls_version, sizeof(s->tls_version), "%s", version ? version : "");
    snprintf(s->tls_cipher, sizeof(s->tls_cipher), "%s", cipher ? cipher : "");
    sb_reset(&s->in);
    free(s->helo);
    s->helo = NULL;
    s->esmtp = false;
    s->tls_active = true;
    if (s->action == SESS_STARTTLS) {
        s->action = SESS_RUN;
        enter_state(s, ST_INIT); /* RFC 3207 4.2: forget everything, EHLO again */
    }
}

void sess_tls_failed(struct sess *s, const char *why)
{
    log_check(s, "TLS failed: %s", why);
    if (s->action == SESS_CLOSE)
        return;
    sb_reset(&s->out); /* nothing can be sent in the clear any more */
    s->reason = SESS_BY_TLS;
    s->action = SESS_RUN;
    enter_state(s, ST_CLOSED);
}

void sess_auth_creds(const struct sess *s, const char **user, size_t *ulen, const char **pass,
                     size_t *plen)
{
    *user = (const char *)s->auth_buf;
    *ulen = s->auth_ulen;
    *pass = (const char *)s->auth_buf + s->auth_ulen;
    *plen = s->auth_plen;
}

void sess_auth_done(struct sess *s, enum sess_auth_result r, const char *reason)
{
    if (s->action != SESS_AUTH)
        return;
    s->action = SESS_RUN;
    char user[AUTH_USER_MAX + 1];
    memcpy(user, s->auth_buf, s->auth_ulen);
    user[s->auth_ulen] = 0;
    if (r == SESS_AUTH_OK) {
        explicit_bzero(s->auth_buf, sizeof(s->auth_buf));
        log_check(s, "AUTH success: user %s (%s)", user, auth_mech_name(s->auth_mech));
        sess_set_authenticated(s, user);
        reply(s, R_AUTH_OK);
        return;
    }
    if (r == SESS_AUTH_BUSY) {
        explicit_bzero(s->auth_buf, sizeof(s->auth_buf));
        log_check(s, "AUTH not checked: verifier busy");
        reply(s, R_ERR_AUTH_BUSY);
        return;
    }
    char why[AUTH_USER_MAX + 80];
    snprintf(why, sizeof(why), "user %s (%s): %s", user, auth_mech_name(s->auth_mech),
             reason ? reason : "rejected");
    auth_fail(s, R_ERR_AUTH_FAILED, why);
}
