/* session_auth.c - SMTP AUTH in the session: the AUTH command's check and
 * proceed steps, the PLAIN/LOGIN dialogue with its response lines, the
 * verifier's outcome, and the masking that keeps every secret out of the
 * receivelog. On the session's worker thread. */
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

/* log_client_line - a command line as received. One that starts with no
 * SMTP verb is written after "unknown command: ", so no client can write a
 * line that reads as one of the server's own ("Transaction summary: ...",
 * "closesocket()", a reply): mxlog tells them apart by their start. */
static void log_client_line(struct sess *s, const char *line, size_t len)
{
    static const char pfx[] = "unknown command: ";
    size_t off;
    if (smtp_parse_verb(line, len, &off) != SMTP_VERB_UNKNOWN) {
        sess_log_text(s, line, len);
        return;
    }
    char buf[sizeof(pfx) - 1 + SMTP_LINE_MAX];
    size_t n = len < SMTP_LINE_MAX ? len : SMTP_LINE_MAX;
    memcpy(buf, pfx, sizeof(pfx) - 1);
    memcpy(buf + sizeof(pfx) - 1, line, n);
    sess_log_text(s, buf, sizeof(pfx) - 1 + n);
}

/* sess_log_command - a command line as received, secrets masked (see above);
 * sets how many of the next lines are masked. */
void sess_log_command(struct sess *s, const char *line, size_t len)
{
    bool auth = auth_like(line, len);
    if (sess_log_on(s)) {
        char masked[AUTH_MASK_MAX];
        if (auth) /* never shows a payload, even where a response was due */
            sess_log_text(s, masked, auth_mask(line, len, masked));
        else if (s->mask_lines)
            sess_log_text(s, SESS_MASKED, sizeof(SESS_MASKED) - 1);
        else
            log_client_line(s, line, len);
    }
    unsigned follow = auth ? auth_follow_lines(line, len) : 0;
    s->mask_lines = s->mask_lines > follow + 1 ? s->mask_lines - 1 : follow;
}

/* sess_mask_discarded - a line too long to handle is not logged at all; if it
 * looked like AUTH, the lines after it may still be its responses. */
void sess_mask_discarded(struct sess *s, const char *line, size_t len)
{
    if (auth_like(line, len))
        s->mask_lines = auth_follow_lines(line, len);
}

/* sess_mask_after_response - after a response line inside an AUTH dialogue:
 * when the dialogue failed on it, a client that does not wait for replies
 * may still be sending responses (mask one more line), and a response that
 * looks like AUTH itself is followed by its own. */
void sess_mask_after_response(struct sess *s, const char *line, size_t len, bool failed)
{
    unsigned follow = auth_like(line, len) ? auth_follow_lines(line, len) : 0;
    s->mask_lines = failed ? 1 : 0;
    if (follow > s->mask_lines)
        s->mask_lines = follow;
}

/* ---- the AUTH dialogue ------------------------------------------------ */

/* sess_auth_offered - AUTH is offered when there are users, inside TLS unless
 * auth_require_tls = no. */
bool sess_auth_offered(const struct sess *s)
{
    const struct config *c = s->snap->cfg;
    return c->users_file && (s->tls_active || !c->auth_require_tls);
}

_Static_assert(AUTH_MECH_LOGIN + 1 == SESS_AUTH_MECHS,
               "sess_counters.auth has a row per mechanism");

/* sess_auth_buf_drop - see session_int.h. */
void sess_auth_buf_drop(struct sess *s)
{
    if (!s->auth_buf)
        return;
    explicit_bzero(s->auth_buf, SESS_AUTH_BUF);
    free(s->auth_buf);
    s->auth_buf = NULL;
    s->auth_ulen = s->auth_plen = 0;
}

/* auth_buf_take - the buffer of the dialogue that starts, allocated only
 * now (an idle session holds none); false, answered 454 4.7.0 and counted
 * as a temporary failure, when there is no memory for it. */
static bool auth_buf_take(struct sess *s)
{
    if (!s->auth_buf)
        s->auth_buf = malloc(SESS_AUTH_BUF);
    if (s->auth_buf)
        return true;
    COUNT(s, auth[s->auth_mech], SESS_AUTHO_TEMPFAIL);
    sess_log_check(s, "AUTH not run: out of memory");
    sess_reply(s, R_ERR_AUTH_BUSY);
    return false;
}

/* sess_auth_fail - one failed attempt; past auth_max_failures the session ends. */
void sess_auth_fail(struct sess *s, enum reply_id id, const char *why)
{
    COUNT(s, auth[s->auth_mech], SESS_AUTHO_FAILED);
    sess_auth_buf_drop(s);
    s->auth_step = AUTH_IDLE;
    s->auth_failures++;
    sess_log_check(s, "AUTH failed (%u of %u): %s", s->auth_failures,
                   s->snap->cfg->auth_max_failures, why);
    sess_reply(s, id);
    if (s->auth_failures >= s->snap->cfg->auth_max_failures)
        sess_close_with(s, R_CLOSE_AUTH, SESS_BY_AUTH);
}

/* auth_have_plain - decode a PLAIN response; on success hand it to the
 * verifier (action SESS_AUTH). */
static void auth_have_plain(struct sess *s, const char *resp, size_t len)
{
    struct auth_creds cr;
    enum auth_rc rc = auth_plain_decode(resp, len, s->auth_buf, AUTH_DECODED_MAX, &cr);
    if (rc == AUTH_ERR_CANCEL) {
        sess_auth_buf_drop(s);
        s->auth_step = AUTH_IDLE;
        COUNT(s, auth[s->auth_mech], SESS_AUTHO_CANCELLED);
        sess_log_check(s, "AUTH cancelled by the client");
        sess_reply(s, R_ERR_AUTH_ABORTED);
        return;
    }
    if (rc != AUTH_OK) {
        sess_auth_fail(s, rc == AUTH_ERR_BASE64 ? R_ERR_AUTH_DECODE : R_ERR_AUTH_FAILED,
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
    sess_set_action(s, SESS_AUTH, "credentials to verify");
}

/* auth_continue - one response line of an AUTH dialogue (never logged). */
static void auth_continue(struct sess *s, const char *line, size_t len)
{
    char masked[8];
    size_t n = auth_mask_response(line, len, masked, sizeof(masked));
    sess_log_text(s, masked, n);
    if (s->auth_step == AUTH_WAIT_PLAIN) {
        auth_have_plain(s, line, len);
        return;
    }
    if (auth_is_cancel(line, len)) {
        sess_auth_buf_drop(s);
        s->auth_step = AUTH_IDLE;
        COUNT(s, auth[s->auth_mech], SESS_AUTHO_CANCELLED);
        sess_log_check(s, "AUTH cancelled by the client");
        sess_reply(s, R_ERR_AUTH_ABORTED);
        return;
    }
    size_t got = 0;
    enum auth_rc rc;
    if (s->auth_step == AUTH_WAIT_USER) {
        rc = auth_login_user(line, len, s->auth_buf, AUTH_USER_MAX, &got);
        if (rc == AUTH_OK) {
            s->auth_ulen = got;
            s->auth_step = AUTH_WAIT_PASS;
            sess_reply(s, R_AUTH_CHALLENGE, AUTH_LOGIN_PROMPT_PASS);
            return;
        }
    } else {
        rc = auth_login_pass(line, len, s->auth_buf + s->auth_ulen, AUTH_PASS_MAX, &got);
        if (rc == AUTH_OK) {
            s->auth_plen = got;
            s->auth_step = AUTH_IDLE;
            sess_set_action(s, SESS_AUTH, "credentials to verify");
            return;
        }
    }
    sess_auth_fail(s, rc == AUTH_ERR_BASE64 ? R_ERR_AUTH_DECODE : R_ERR_AUTH_FAILED,
                   auth_rc_text(rc));
}

int sess_auth_check(struct sess *s, const char *arg, size_t len)
{
    struct auth_cmd *cmd = &s->args.auth;
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
        sess_log_check(s, "AUTH refused: not inside TLS (auth_require_tls = yes)");
        reply_error(s, R_ERR_AUTH_NEEDS_TLS);
        return 0;
    }
    if (!auth_cmd_parse(arg, len, cmd)) {
        reply_error(s, R_ERR_SYNTAX);
        return 0;
    }
    if (cmd->mech == AUTH_MECH_UNKNOWN) {
        COUNT(s, auth[AUTH_MECH_UNKNOWN], SESS_AUTHO_FAILED);
        reply_error(s, R_ERR_AUTH_MECH);
        return 0;
    }
    return 1;
}

static void auth_proceed(struct sess *s, const char *arg, size_t len)
{
    (void)arg;
    (void)len;
    const struct auth_cmd *cmd = &s->args.auth; /* parsed by sess_auth_check */
    s->auth_mech = cmd->mech;
    if (!auth_buf_take(s))
        return;
    if (cmd->mech == AUTH_MECH_PLAIN) {
        if (cmd->initial) {
            auth_have_plain(s, cmd->initial, cmd->initial_len);
            return;
        }
        s->auth_step = AUTH_WAIT_PLAIN;
        sess_reply(s, R_AUTH_CHALLENGE, "");
        return;
    }
    s->auth_step = AUTH_WAIT_USER;
    if (cmd->initial) {
        auth_continue(s, cmd->initial, cmd->initial_len);
        return;
    }
    sess_reply(s, R_AUTH_CHALLENGE, AUTH_LOGIN_PROMPT_USER);
}

/* sess_auth_begin - AUTH accepted: run the exchange. Once a dialogue or the
 * verification is under way, its lines are masked by it: nothing more to
 * mask after the command itself. */
void sess_auth_begin(struct sess *s, const char *arg, size_t len)
{
    auth_proceed(s, arg, len);
    if (s->auth_step != AUTH_IDLE || s->action == SESS_AUTH)
        s->mask_lines = 0;
}

/* sess_auth_response - one response line inside an AUTH dialogue (masked by
 * auth_continue); then what follows it is masked as it needs. */
void sess_auth_response(struct sess *s, const char *line, size_t len)
{
    unsigned failures = s->auth_failures;
    auth_continue(s, line, len);
    sess_mask_after_response(s, line, len, s->auth_failures != failures);
}

void sess_set_authenticated(struct sess *s, const char *user)
{
    char *u = strdup(user);
    if (!u)
        return;
    free(s->auth_user);
    s->auth_user = u;
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
    sess_set_action(s, SESS_RUN, "AUTH verified");
    char user[AUTH_USER_MAX + 1];
    memcpy(user, s->auth_buf, s->auth_ulen);
    user[s->auth_ulen] = 0;
    if (r == SESS_AUTH_OK) {
        sess_auth_buf_drop(s);
        COUNT(s, auth[s->auth_mech], SESS_AUTHO_OK);
        sess_log_check(s, "AUTH success: user %s (%s)", user, auth_mech_name(s->auth_mech));
        sess_set_authenticated(s, user);
        sess_reply(s, R_AUTH_OK);
        return;
    }
    if (r == SESS_AUTH_BUSY) {
        sess_auth_buf_drop(s);
        COUNT(s, auth[s->auth_mech], SESS_AUTHO_TEMPFAIL);
        sess_log_check(s, "AUTH not checked: verifier busy");
        sess_reply(s, R_ERR_AUTH_BUSY);
        return;
    }
    char why[AUTH_USER_MAX + 80];
    snprintf(why, sizeof(why), "user %s (%s): %s", user, auth_mech_name(s->auth_mech),
             reason ? reason : "rejected");
    sess_auth_fail(s, R_ERR_AUTH_FAILED, why);
}
