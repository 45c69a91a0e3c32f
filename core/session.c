/* session.c - the SMTP session state machine's core: replies, one
 * sess_enter_state() naming every transition, transactions, the input loop
 * (command lines, the DATA phase through the smtp_data scanner), the life
 * cycle and the I/O layer's events. The command table is session_cmd.c,
 * the AUTH dialogue session_auth.c, the log lines session_log.c. Pure over
 * bytes; owned by one worker thread. */
#include "session.h"
#include "session_int.h"

#include <assert.h>
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

/* ---- replies ---------------------------------------------------------- */

/* reply_put - reply id with its arguments (checked by the typed senders
 * below) into the output and the log. */
static void reply_put(struct sess *s, enum reply_id id, ...)
{
    char line[SMTP_PATH_MAX + 256];
    va_list ap;
    va_start(ap, id);
    int n = vsnprintf(line, sizeof(line), reply_table[id].fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    sess_log_text(s, line, len);
    if (!sb_append(&s->out, line, len) || !sb_append(&s->out, "\r\n", 2))
        sess_gone(s, SESS_BY_IOERR); /* out of memory: nothing sane to say */
}

/* sess_reply0 - a reply that takes no argument. */
void sess_reply0(struct sess *s, enum reply_id id)
{
    assert(reply_takes(id, ""));
    reply_put(s, id);
}

/* sess_reply1 - a reply that takes one string. */
void sess_reply1(struct sess *s, enum reply_id id, const char *a)
{
    assert(reply_takes(id, "s"));
    reply_put(s, id, a);
}

/* sess_reply2 - a reply that takes two strings. */
void sess_reply2(struct sess *s, enum reply_id id, const char *a, const char *b)
{
    assert(reply_takes(id, "ss"));
    reply_put(s, id, a, b);
}

/* sess_reply_u - a reply that takes one number. */
void sess_reply_u(struct sess *s, enum reply_id id, unsigned long long u)
{
    assert(reply_takes(id, "u"));
    reply_put(s, id, u);
}

/* sess_close_with - queue the final reply and ask the I/O layer to close. */
void sess_close_with(struct sess *s, enum reply_id id, enum sess_close_reason why)
{
    sess_reply(s, id, sess_snap(s)->cfg->hostname);
    s->reason = why;
    sess_enter_state(s, ST_CLOSED, sess_close_reason_name(why));
}

/* sess_count_error - one more client error; past max_errors the session ends. */
void sess_count_error(struct sess *s)
{
    if (++s->errors > s->snap->cfg->max_errors && s->state != ST_CLOSED)
        sess_close_with(s, R_CLOSE_ERRORS, SESS_BY_ERRORS);
}

/* ---- transactions ----------------------------------------------------- */

/* txn_free - forget the current transaction (MAIL, RCPTs, body). */
static void txn_free(struct sess *s)
{
    if (!s->txn)
        return;
    sb_free(&s->txn->rcpts);
    sb_free(&s->txn->notify);
    sb_free(&s->txn->orcpts);
    sb_free(&s->txn->body);
    free(s->txn->quarantine);
    bdat_reset(&s->bdat);
    free(s->txn);
    s->txn = NULL;
}

/* ---- the two state machines: state and action ----------------------- *
 * Every change of s->state goes through sess_enter_state() and every change
 * of s->action through sess_set_action(); each checks its move against a
 * table of the legal ones (assert: a move outside it is a bug in this code,
 * never something a client can cause) and can trace it to stderr
 * (sess_env.trace, MXRING_TRACE=1 in the server). */

static const char *const state_name[] = {
    [ST_INIT] = "INIT", [ST_GREET_WAIT] = "GREET_WAIT",
    [ST_HELO] = "HELO", [ST_MAIL] = "MAIL",
    [ST_RCPT] = "RCPT", [ST_DATA] = "DATA",
    [ST_BDAT] = "BDAT", [ST_CLOSED] = "CLOSED",
};
_Static_assert(MX_ARRAY_LEN(state_name) == ST_CLOSED + 1, "a name per state");

/* The legal state moves: state_next[from] holds the states it may enter. */
static const unsigned state_next[] = {
    [ST_INIT] = STB(ST_INIT) | STB(ST_GREET_WAIT) | STB(ST_HELO) | STB(ST_CLOSED),
    [ST_GREET_WAIT] = STB(ST_INIT) | STB(ST_CLOSED),
    [ST_HELO] = STB(ST_INIT) | STB(ST_HELO) | STB(ST_MAIL) | STB(ST_CLOSED),
    [ST_MAIL] = STB(ST_HELO) | STB(ST_RCPT) | STB(ST_CLOSED),
    [ST_RCPT] = STB(ST_HELO) | STB(ST_RCPT) | STB(ST_DATA) | STB(ST_BDAT) | STB(ST_CLOSED),
    [ST_DATA] = STB(ST_HELO) | STB(ST_CLOSED),
    [ST_BDAT] = STB(ST_HELO) | STB(ST_CLOSED),
    [ST_CLOSED] = STB(ST_CLOSED),
};
_Static_assert(MX_ARRAY_LEN(state_next) == ST_CLOSED + 1, "moves for every state");

#define ACB(a) (1u << (a))
static const char *const action_name[] = {
    [SESS_RUN] = "RUN",       [SESS_CHUNK] = "CHUNK",       [SESS_SPOOL] = "SPOOL",
    [SESS_FILTER] = "FILTER", [SESS_STARTTLS] = "STARTTLS", [SESS_AUTH] = "AUTH",
    [SESS_MILTER] = "MILTER", [SESS_CLOSE] = "CLOSE",
};
_Static_assert(MX_ARRAY_LEN(action_name) == SESS_CLOSE + 1, "a name per action");

/* The legal action moves: RUN hands one job to the I/O layer, whose
 * completion brings it back to RUN (the filters may go on to SPOOL);
 * CLOSE may come at any time and is final. */
static const unsigned action_next[] = {
    [SESS_RUN] = ACB(SESS_CHUNK) | ACB(SESS_SPOOL) | ACB(SESS_FILTER) | ACB(SESS_STARTTLS) |
                 ACB(SESS_AUTH) | ACB(SESS_MILTER) | ACB(SESS_CLOSE),
    [SESS_CHUNK] = ACB(SESS_RUN) | ACB(SESS_CLOSE),
    [SESS_SPOOL] = ACB(SESS_RUN) | ACB(SESS_CLOSE),
    [SESS_FILTER] = ACB(SESS_RUN) | ACB(SESS_SPOOL) | ACB(SESS_CLOSE),
    [SESS_STARTTLS] = ACB(SESS_RUN) | ACB(SESS_CLOSE),
    [SESS_AUTH] = ACB(SESS_RUN) | ACB(SESS_CLOSE),
    [SESS_MILTER] = ACB(SESS_RUN) | ACB(SESS_CLOSE),
    [SESS_CLOSE] = ACB(SESS_CLOSE),
};
_Static_assert(MX_ARRAY_LEN(action_next) == SESS_CLOSE + 1, "moves for every action");

/* trace - one line on stderr per move when the worker asked for it. */
static void trace(const struct sess *s, const char *what, const char *from, const char *to,
                  const char *why)
{
    if (s->env->trace)
        fprintf(stderr, "sess %08x: %s %s -> %s (%s)\n", (unsigned)s->sid, what, from, to, why);
}

/* sess_set_action - every change of the action goes through here. */
void sess_set_action(struct sess *s, enum sess_action a, const char *why)
{
    assert(action_next[s->action] & ACB(a));
    trace(s, "action", action_name[s->action], action_name[a], why);
    s->action = a;
}

/* sess_enter_state - every state transition goes through here. Leaving the
 * transaction states logs the transaction's summary and drops it; entering
 * CLOSED asks the I/O layer to close. */
void sess_enter_state(struct sess *s, enum sess_state st, const char *why)
{
    assert(state_next[s->state] & STB(st));
    trace(s, "state", state_name[s->state], state_name[st], why);
    if (st == ST_INIT || st == ST_HELO || st == ST_CLOSED) {
        sess_txn_summary(s, st);
        txn_free(s);
    }
    if (st == ST_CLOSED)
        sess_set_action(s, SESS_CLOSE, why);
    s->state = st;
}

/* sess_txn_begin - a new transaction for MAIL; picks up the newest snapshot. */
bool sess_txn_begin(struct sess *s)
{
    s->txn = calloc(1, sizeof(*s->txn));
    if (!s->txn)
        return false;
    s->txn->start_us = mhist_now_us();
    bdat_reset(&s->bdat); /* discards before this MAIL are not its chunks */
    if (s->env->snap_txn)
        s->snap = s->env->snap_txn(s->env->arg, s->snap);
    return true;
}

/* ---- input ------------------------------------------------------------ */

/* data_refusal - the reply refusing the complete message (R_COUNT: none),
 * with the specific reason recorded for the log and the summary. Offsets
 * count octets from the start of the data as sent (stuffing dots too). */
static enum reply_id data_refusal(struct sess *s)
{
    const struct data_scan *ds = &s->txn->scan;
    bool bdat = s->state == ST_BDAT;
    const char *where = bdat ? "BDAT data" : "data";
    if (ds->flags & DATA_F_BARE_EOL) {
        sess_txn_end(s, "refused", "bare %s at %s offset %llu, %s",
                     ds->bare_octet == '\r' ? "CR" : "LF", where,
                     (unsigned long long)ds->first_bare,
                     ds->flags & DATA_F_BARE_CMD ? "an SMTP command follows it (smuggling attempt)"
                                                 : "no SMTP command follows it");
        return bdat ? R_ERR_BDAT_BARE_EOL : R_ERR_BARE_EOL;
    }
    if ((ds->flags & DATA_F_NUL) && s->snap->cfg->nul_bytes == CFG_NUL_REJECT) {
        sess_txn_end(s, "refused", "NUL octet at %s offset %llu", where,
                     (unsigned long long)ds->first_nul);
        return bdat ? R_ERR_BDAT_NUL : R_ERR_DATA_NUL;
    }
    if (ds->flags & DATA_F_LONG_LINE) {
        sess_txn_end(s, "refused", "line over %d octets in %s", SMTP_DATA_LINE_MAX, where);
        return bdat ? R_ERR_BDAT_LINE_LONG : R_ERR_DATA_LINE_LONG;
    }
    if (ds->flags & DATA_F_TOO_BIG) {
        sess_txn_end(s, "refused", "over max_message_size %llu",
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
        sess_log_check(s, "8-bit data without BODY=8BITMIME (declared %s): recorded as 8BITMIME",
                       t->params.body == SMTP_BODY_7BIT ? "BODY=7BIT" : "no BODY");
    if (t->scan.flags & DATA_F_NUL)
        sess_log_check(s, "NUL octet at data offset %llu accepted (nul_bytes = allow)",
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

/* sess_data_refused - will the message being received be refused at its
 * end? (The same conditions as data_refusal, without the logging.) */
bool sess_data_refused(const struct sess *s)
{
    const struct data_scan *ds = &s->txn->scan;
    if (ds->flags & (DATA_F_BARE_EOL | DATA_F_LONG_LINE | DATA_F_TOO_BIG))
        return true;
    return (ds->flags & DATA_F_NUL) && s->snap->cfg->nul_bytes == CFG_NUL_REJECT;
}

/* sess_message_end - the whole message is in: refuse or hand to the spool. */
void sess_message_end(struct sess *s)
{
    struct sess_txn *t = s->txn;
    enum reply_id refuse = data_refusal(s);
    if (refuse != R_COUNT) {
        sess_log_check(s, "Message refused (%llu octets): %s", (unsigned long long)t->scan.size,
                       t->reason);
        sess_enter_state(s, ST_HELO, "message refused");
        sess_reply(s, refuse);
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
        .dsn_ret = t->params.ret,
        .envid = t->params.envid,
        .notify = (const unsigned char *)t->notify.data,
        .orcpts = t->orcpts.data,
        .sid = s->sid,
    };
    bool filter = s->env->want_filter && s->env->want_filter(s->env->arg, s->snap);
    sess_set_action(s, filter ? SESS_FILTER : SESS_SPOOL, "end of data");
}

/* finish_data - the end of DATA was seen. */
static void finish_data(struct sess *s)
{
    sess_log_text(s, ".", 1);
    sess_message_end(s);
}

/* sess_receiving - see session.h. */
bool sess_receiving(const struct sess *s)
{
    if (s->action == SESS_CHUNK || s->action == SESS_SPOOL || s->action == SESS_FILTER)
        return true;
    return s->state == ST_DATA || (s->state == ST_BDAT && s->txn && !s->txn->bdat_over);
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
        sess_log_check(s, "out of memory while receiving a message");
        sess_gone(s, SESS_BY_IOERR);
        return n;
    }
    if (sess_data_refused(s))
        sb_reset(&t->body);
    if (done)
        finish_data(s);
    else if (t->body.len >= SESS_CHUNK_MAX - 1)
        sess_set_action(s, SESS_CHUNK, "chunk full");
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
        sess_log_text(s, SESS_MASKED, sizeof(SESS_MASKED) - 1);
        sess_auth_fail(s, R_ERR_BARE_LF, "response line ended by a bare LF");
        sess_mask_after_response(s, p, len, true);
        return;
    }
    sess_log_command(s, p, len);
    sess_log_check(s, "command line refused: ended by a bare LF, not CRLF (%zu octets)", len + 1);
    reply_error(s, R_ERR_BARE_LF);
    sess_bdat_close_line(s, p, len, "command line ended by a bare LF");
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
            sess_log_check(s, "command line over %d octets discarded", SMTP_LINE_MAX);
            sess_mask_discarded(s, p, n);
            reply_error(s, R_ERR_LINE_TOO_LONG);
            sess_bdat_close_line(s, p, n, "command line too long");
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
        sess_log_check(s, "command line over %zu octets refused", max);
        if (s->auth_step != AUTH_IDLE) {
            sess_auth_fail(s, R_ERR_LINE_TOO_LONG, "response line too long");
            sess_mask_after_response(s, p, len, true);
        } else {
            sess_mask_discarded(s, p, len);
            reply_error(s, R_ERR_LINE_TOO_LONG);
            sess_bdat_close_line(s, p, len, "command line too long");
        }
        return used;
    }
    if (len == used - 1) {
        bare_lf_line(s, p, len);
        return used;
    }
    if (s->auth_step != AUTH_IDLE)
        sess_auth_response(s, p, len);
    else
        sess_dispatch(s, p, len);
    return used;
}

/* drop_after_starttls - plaintext pipelined behind STARTTLS is never
 * processed (CVE-2011-0411 class); say how much was thrown away. */
static void drop_after_starttls(struct sess *s, size_t n)
{
    if (n)
        sess_log_check(s, "discarded %zu octets sent after STARTTLS before the handshake", n);
}

/* process - run the machine over p until input or the action runs out. */
static size_t process(struct sess *s, const char *p, size_t n)
{
    size_t off = 0;
    if (s->state == ST_GREET_WAIT && n) {
        sess_log_check(s, "client talked before the greeting (greet_pause_ms = %u)",
                       s->snap->cfg->greet_pause_ms);
        sess_close_with(s, R_CLOSE_PREGREET, SESS_BY_PREGREET);
        return n;
    }
    while (off < n && s->action == SESS_RUN && s->out.len < SESS_OUT_MAX) {
        size_t used = bdat_reading(&s->bdat) ? sess_bdat_feed(s, p + off, n - off)
                      : s->state == ST_DATA  ? feed_data(s, p + off, n - off)
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
    s->trusted =
        peer && cfg_cidr_match(snap->cfg->trusted_networks, snap->cfg->ntrusted_networks, peer);
    return s;
}

void sess_free(struct sess *s)
{
    if (!s)
        return;
    txn_free(s);
    free(s->helo);
    free(s->auth_user);
    free(s->marg);
    free(s->bdat_text);
    sess_auth_buf_drop(s);
    sb_free(&s->in);
    sb_free(&s->out);
    free(s);
}

/* sess_set_peer - see session.h. */
void sess_set_peer(struct sess *s, const struct mx_addr *peer, const char *via)
{
    peer_text(s, peer);
    peer_keep(s, peer);
    s->trusted =
        cfg_cidr_match(s->snap->cfg->trusted_networks, s->snap->cfg->ntrusted_networks, peer);
    snprintf(s->via, sizeof(s->via), "%s", via ? via : "");
}

/* sess_proxy_refused - see session.h. */
void sess_proxy_refused(struct sess *s, const char *why)
{
    sess_log_connect(s);
    sess_log_check(s, "PROXY header refused: %s", why);
    s->reason = SESS_BY_PROXY;
    sess_enter_state(s, ST_CLOSED, "PROXY header refused");
}

void sess_start(struct sess *s)
{
    sess_log_connect(s);
    sess_reply(s, R_BANNER, s->snap->cfg->hostname);
}

void sess_greet_wait(struct sess *s)
{
    sess_log_connect(s);
    sess_enter_state(s, ST_GREET_WAIT, "greet pause");
}

void sess_greet(struct sess *s)
{
    if (s->state != ST_GREET_WAIT || s->action != SESS_RUN)
        return;
    sess_enter_state(s, ST_INIT, "greet pause over");
    sess_reply(s, R_BANNER, s->snap->cfg->hostname);
}

void sess_refuse(struct sess *s, enum sess_close_reason why)
{
    const struct config *c = s->snap->cfg;
    sess_log_connect(s);
    if (why == SESS_BY_PER_IP) {
        sess_log_check(s, "max_sessions_per_ip (%u) reached for [%s]: connection refused",
                       c->max_sessions_per_ip, s->client_ip);
        sess_close_with(s, R_CLOSE_PER_IP, why);
    } else if (why == SESS_BY_RATE) {
        sess_log_check(s, "max_connect_rate_per_ip (%u/min) exceeded by [%s]: connection refused",
                       c->max_connect_rate_per_ip, s->client_ip);
        sess_close_with(s, R_CLOSE_RATE, why);
    } else {
        sess_log_check(s, "max_sessions (%u) reached: connection refused", c->max_sessions);
        sess_close_with(s, R_CLOSE_LIMIT, SESS_BY_LIMIT);
    }
}

void sess_dnsbl_refuse(struct sess *s, const char *site)
{
    if (s->state != ST_GREET_WAIT || s->action != SESS_RUN)
        return;
    sess_reply(s, R_CLOSE_DNSBL, s->client_ip, site);
    s->reason = SESS_BY_DNSBL;
    sess_enter_state(s, ST_CLOSED, "DNSBL");
}

unsigned sess_progress(const struct sess *s)
{
    return s->progress;
}
unsigned sess_data_phase(const struct sess *s)
{
    return s->data_phases;
}
bool sess_trusted(const struct sess *s)
{
    return s->trusted;
}

enum sess_action sess_action(const struct sess *s)
{
    return s->action;
}
struct sb *sess_out(struct sess *s)
{
    return &s->out;
}
size_t sess_backlog(const struct sess *s)
{
    return s->in.len;
}

unsigned sess_reply_delay_ms(struct sess *s)
{
    unsigned ms = s->action == SESS_CLOSE ? 0 : s->delay_ms;
    s->delay_ms = 0;
    return ms;
}
struct snap *sess_snap(const struct sess *s)
{
    return s->snap;
}
uint32_t sess_id(const struct sess *s)
{
    return s->sid;
}

enum sess_phase sess_phase(const struct sess *s)
{
    return s->state == ST_DATA || s->state == ST_BDAT || bdat_reading(&s->bdat) ||
                   s->action == SESS_SPOOL || s->action == SESS_FILTER || s->action == SESS_CHUNK
               ? SESS_PHASE_DATA
               : SESS_PHASE_COMMAND;
}

bool sess_in_transaction(const struct sess *s)
{
    return s->txn != NULL;
}

const struct sess_msg *sess_msg(const struct sess *s)
{
    return (s->action == SESS_SPOOL || s->action == SESS_FILTER) && s->txn ? &s->txn->msg : NULL;
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
    sess_set_action(s, SESS_RUN, "chunk taken");
}

/* sess_deferred_close - a close that waited for the message's outcome. */
void sess_deferred_close(struct sess *s)
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
        sess_txn_end(s, "quarantined", "%s", s->txn->quarantine);
    else
        sess_txn_end(s, "queued", NULL);
    snprintf(s->txn->queue_id, sizeof(s->txn->queue_id), "%s", queue_id ? queue_id : "");
}

/* filter_refused - the summary's result of a filter verdict that ends the
 * transaction (spam, virus, tempfail). */
static void filter_refused(struct sess *s, enum sess_verdict v, const char *detail)
{
    if (v == SESS_VERDICT_REJECT_SPAM)
        sess_txn_end(s, "refused", "content filter: spam (SURBL/URIBL)");
    else if (v == SESS_VERDICT_REJECT_VIRUS)
        sess_txn_end(s, "refused", "content filter: virus %s",
                     detail && *detail ? detail : "unknown");
    else
        sess_txn_end(s, "tempfail", "content filter could not decide%s%s",
                     detail && *detail ? ": " : "", detail ? detail : "");
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
        sess_set_action(s, SESS_SPOOL, "filters passed");
        return;
    }
    sess_set_action(s, SESS_RUN, "filters refused");
    filter_refused(s, v, detail);
    sess_enter_state(s, ST_HELO, "filters refused");
    if (v == SESS_VERDICT_REJECT_SPAM)
        sess_reply(s, R_ERR_FILTER_SPAM);
    else if (v == SESS_VERDICT_REJECT_VIRUS)
        sess_reply(s, R_ERR_FILTER_VIRUS, detail && *detail ? detail : "unknown");
    else
        sess_reply(s, R_ERR_FILTER_TEMP);
    sess_deferred_close(s);
}

void sess_filter_reply(struct sess *s, const char *text, const char *detail)
{
    if (s->action != SESS_FILTER)
        return;
    sess_set_action(s, SESS_RUN, "filter replied");
    sess_txn_end(s, text[0] == '4' ? "tempfail" : "refused", "%s", detail);
    sess_enter_state(s, ST_HELO, "filter replied");
    sess_reply_lines(s, text);
    sess_deferred_close(s);
}

/* sess_reply_lines - see session_int.h. */
void sess_reply_lines(struct sess *s, const char *text)
{
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\r\n");
        char line[SMTP_PATH_MAX + 256];
        snprintf(line, sizeof line, "%.*s", (int)n, p);
        sess_reply(s, R_FILTER_TEXT, line);
        p += n;
        p += *p == '\r';
        p += *p == '\n';
    }
}

void sess_spool_done(struct sess *s, int err, const char *queue_id)
{
    if (s->action != SESS_SPOOL)
        return;
    sess_set_action(s, SESS_RUN, err ? "queue write failed" : "message queued");
    if (err == 0) {
        if (s->state == ST_BDAT)
            sess_log_check(s,
                           "Message accepted: queue id %s, %zu octets, %zu recipient(s), BDAT %u "
                           "chunk(s)",
                           queue_id, s->txn->msg.body_len, s->txn->nrcpt, s->bdat.chunks);
        else
            sess_log_check(s, "Message accepted: queue id %s, %zu octets, %zu recipient(s)",
                           queue_id, s->txn->msg.body_len, s->txn->nrcpt);
        txn_queued(s, queue_id);
        sess_enter_state(s, ST_HELO, "message queued");
        sess_reply(s, R_MSG_OK, queue_id);
    } else {
        sess_log_check(s, "Message not queued: %s", strerror(err));
        sess_txn_end(s, "tempfail", "queue write failed: %s", strerror(err));
        sess_enter_state(s, ST_HELO, "queue write failed");
        sess_reply(s, R_ERR_QUEUE);
    }
    sess_deferred_close(s);
}

/* defer_close - while a message is being written, the close waits for the
 * spool's reply (the client must learn whether its message was taken). */
static bool defer_close(struct sess *s, enum sess_close_reason why)
{
    if (s->action != SESS_SPOOL && s->action != SESS_FILTER && s->action != SESS_MILTER)
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
    sess_log_check(s, "%s timeout",
                   sess_phase(s) == SESS_PHASE_DATA ? "timeout_data" : "timeout_command");
    sess_close_with(s, R_CLOSE_TIMEOUT, SESS_BY_TIMEOUT);
}

void sess_shutdown(struct sess *s)
{
    if (s->action == SESS_CLOSE || defer_close(s, SESS_BY_SHUTDOWN))
        return;
    sess_close_with(s, R_CLOSE_SHUTDOWN, SESS_BY_SHUTDOWN);
}

void sess_gone(struct sess *s, enum sess_close_reason why)
{
    if (s->action == SESS_CLOSE || defer_close(s, why))
        return;
    s->reason = why;
    sess_enter_state(s, ST_CLOSED, sess_close_reason_name(why));
}

void sess_eof(struct sess *s)
{
    if (s->action == SESS_STARTTLS) { /* no handshake can follow */
        sess_log_check(s, "end of input after STARTTLS");
        sess_gone(s, SESS_BY_PEER);
        return;
    }
    if (s->action != SESS_RUN)
        return; /* CLOSE already, or an action whose reply is still due */
    sess_input(s, NULL, 0);
    if (s->action != SESS_RUN || s->out.len >= SESS_OUT_MAX)
        return;
    if (s->state == ST_DATA)
        sess_log_check(s, "end of input inside DATA: message not accepted");
    else if (s->state == ST_BDAT || bdat_reading(&s->bdat))
        sess_log_check(s,
                       "end of input inside BDAT (%u chunk(s), %llu octets announced, %llu "
                       "missing): message not accepted",
                       s->bdat.chunks, (unsigned long long)s->bdat.total,
                       (unsigned long long)s->bdat.remaining);
    else if (s->in.len || s->skip_line)
        sess_log_check(s, "end of input inside a command line (%zu octets discarded)", s->in.len);
    sess_gone(s, SESS_BY_PEER);
}

void sess_set_mode(struct sess *s, unsigned flags)
{
    s->mode = flags;
    s->tls_active = (flags & SESS_MODE_TLS) != 0;
}

void sess_tls_started(struct sess *s, const char *version, const char *cipher)
{
    sess_log_check(s, "TLS established: %s, cipher %s", version, cipher);
    snprintf(s->tls_version, sizeof(s->tls_version), "%s", version ? version : "");
    snprintf(s->tls_cipher, sizeof(s->tls_cipher), "%s", cipher ? cipher : "");
    sb_reset(&s->in);
    free(s->helo);
    s->helo = NULL;
    s->esmtp = false;
    s->tls_active = true;
    if (s->action == SESS_STARTTLS) {
        sess_set_action(s, SESS_RUN, "TLS started");
        sess_enter_state(s, ST_INIT,
                         "TLS started"); /* RFC 3207 4.2: forget everything, EHLO again */
    }
}

void sess_tls_failed(struct sess *s, const char *why)
{
    sess_log_check(s, "TLS failed: %s", why);
    if (s->action == SESS_CLOSE)
        return;
    sb_reset(&s->out); /* nothing can be sent in the clear any more */
    s->reason = SESS_BY_TLS;
    sess_enter_state(s, ST_CLOSED, "TLS failed"); /* whatever was pending: CLOSE */
}
