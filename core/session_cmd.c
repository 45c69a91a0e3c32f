/* session_cmd.c - the session's command table: per command a check step
 * (validates, sends its own error reply, returns 0/1) and a proceed step
 * (does the work, changes state), the address checks of MAIL and RCPT,
 * HELP, and dispatch through the table only. On the session's worker
 * thread. */
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

/* Command flags (the Postfix-style flags column). */
enum cmd_flag {
    CMD_NOARGS = 1u << 0,  /* takes no argument: 501 otherwise */
    CMD_PRE_TLS = 1u << 1, /* allowed before STARTTLS where TLS is required */
    CMD_JUNK = 1u << 2,    /* counts toward max_junk_commands (a tarpit defence) */
    CMD_UNIMPL = 1u << 3,  /* recognised, not implemented: 502, not listed by HELP */
};

struct smtp_cmd {
    enum smtp_verb verb;
    unsigned states; /* states where the command is allowed */
    unsigned flags;
    int (*check)(struct sess *s, const char *arg, size_t len);
    void (*proceed)(struct sess *s, const char *arg, size_t len);
};

/* ---- address checks (the seed's "user check status" lines) ------------ */

enum addr_verdict { ADDR_OK, ADDR_UNKNOWN, ADDR_RELAY_DENIED };

/* check_local_part - status(2): what the directory says of a local address. */
static enum addr_verdict check_local_part(struct sess *s, const struct smtp_addr *a)
{
    const struct dir *d = s->snap->dir;
    if (!d || !dir_configured(d)) {
        sess_log_check(s, "user check status(2) = no directory, any local part accepted");
        return ADDR_OK;
    }
    enum dir_kind k = dir_lookup(d, a->addr, a->len);
    if (k == DIR_NOT_FOUND) {
        sess_log_check(s, "user check status(2) = not found");
        return ADDR_UNKNOWN;
    }
    sess_log_check(s, "user check status(2) = found %s", dir_kind_name(k));
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
    sess_log_check(s, "user check status(2) = postmaster, always accepted (RFC 5321 4.5.1)");
    return ADDR_OK;
}

/* check_address - log and classify one MAIL or RCPT address. For MAIL the
 * verdict is informational; for RCPT it decides. */
static enum addr_verdict check_address(struct sess *s, const struct smtp_addr *a, bool rcpt)
{
    sess_log_check(s, "Check %s address = <%s>", rcpt ? "RCPT TO" : "MAIL FROM", a->addr);
    if (a->is_null)
        return ADDR_OK;
    const struct config *c = s->snap->cfg;
    const char *dom = smtp_addr_domain(a);
    size_t dlen = a->len - (size_t)(dom - a->addr);
    if (dlen == 0) { /* <postmaster> without a domain: always ours (RFC 5321 4.5.1) */
        sess_log_check(s, "user check status(1) = postmaster without domain, accepted");
        return ADDR_OK;
    }
    int idx = cfg_local_domain_index(c, dom, dlen);
    if (idx >= 0) {
        sess_log_check(s, "user check status(1) = found local group (%d)", idx);
        sess_log_check(s, "match!!");
        enum addr_verdict v = check_local_part(s, a);
        return v == ADDR_UNKNOWN && is_postmaster(a) ? postmaster_ok(s) : v;
    }
    sess_log_check(s, "user check status(1) = not local");
    if (!rcpt)
        return ADDR_OK; /* any sender domain; relaying is about recipients */
    if (s->trusted) {
        sess_log_check(s, "relay check = allowed: client [%s] in trusted_networks", s->client_ip);
        return ADDR_OK;
    }
    if (s->auth_user) {
        sess_log_check(s, "relay check = allowed: authenticated as %s", s->auth_user);
        return ADDR_OK;
    }
    sess_log_check(s,
                   "relay check = denied: client [%s] not in trusted_networks, not authenticated",
                   s->client_ip);
    return ADDR_RELAY_DENIED;
}

/* ---- command handlers ------------------------------------------------- */

/* helo_check - HELO/EHLO need a syntactically valid domain. */
static int helo_check(struct sess *s, const char *arg, size_t len)
{
    if (smtp_parse_helo(arg, len, &s->args.helo_len) != SMTP_P_OK) {
        reply_error(s, R_ERR_HELO_SYNTAX, s->esmtp ? "EHLO" : "HELO");
        return 0;
    }
    return 1;
}

/* greet - common part of HELO and EHLO: reset, remember the name (its
 * length parsed by helo_check). */
static void greet(struct sess *s, const char *arg, bool esmtp)
{
    char *h = strndup(arg, s->args.helo_len);
    if (h) {
        free(s->helo);
        s->helo = h;
    }
    s->esmtp = esmtp;
    sess_enter_state(s, ST_HELO, esmtp ? "EHLO" : "HELO");
}

static void helo_proceed(struct sess *s, const char *arg, size_t len)
{
    (void)len;
    greet(s, arg, false);
    sess_reply(s, R_HELO, s->snap->cfg->hostname, s->client_ip);
}

static int ehlo_check(struct sess *s, const char *arg, size_t len)
{
    s->esmtp = true; /* for the syntax reply text */
    return helo_check(s, arg, len);
}

static void ehlo_proceed(struct sess *s, const char *arg, size_t len)
{
    (void)len;
    greet(s, arg, true);
    sess_reply(s, R_EHLO_FIRST, s->snap->cfg->hostname, s->client_ip);
    sess_reply(s, R_EHLO_PIPELINING);
    sess_reply_u(s, R_EHLO_SIZE, (unsigned long long)s->snap->cfg->max_message_size);
    sess_reply(s, R_EHLO_8BITMIME);
    sess_reply(s, R_EHLO_SMTPUTF8);
    sess_reply(s, R_EHLO_DSN);
    sess_reply(s, R_EHLO_CHUNKING);
    if ((s->mode & SESS_MODE_STARTTLS) && !s->tls_active)
        sess_reply(s, R_EHLO_STARTTLS);
    if (sess_auth_offered(s))
        sess_reply(s, R_EHLO_AUTH);
    sess_reply(s, R_EHLO_LAST);
}

/* mail_parse_reply - the reply for a failed MAIL/RCPT parse. */
static void parse_error(struct sess *s, enum smtp_perr e, bool rcpt)
{
    const char *bad = s->args.path.params.bad ? s->args.path.params.bad : "DSN";
    switch (e) {
    case SMTP_P_BAD_DSN: reply_error(s, R_ERR_DSN_SYNTAX, bad); break;
    case SMTP_P_DUP_DSN: reply_error(s, R_ERR_DSN_DUP, bad); break;
    case SMTP_P_BAD_PARAM: reply_error(s, R_ERR_PARAM); break;
    case SMTP_P_SYNTAX: reply_error(s, R_ERR_SYNTAX); break;
    default: reply_error(s, rcpt ? R_ERR_RCPT_SYNTAX : R_ERR_SENDER_SYNTAX); break;
    }
}

/* log_size_refused - MAIL with a SIZE= over max_message_size: the reason
 * line, and a summary (the refused message never became a transaction). */
static void log_size_refused(struct sess *s, const struct smtp_addr *a, uint64_t size)
{
    char why[96];
    snprintf(why, sizeof(why), "declared SIZE=%llu over max_message_size %llu",
             (unsigned long long)size, (unsigned long long)s->snap->cfg->max_message_size);
    sess_log_check(s, "MAIL refused: %s", why);
    sess_log_summary(s, a->addr, 0, 0, size, "refused", NULL, why);
}

static int mail_check(struct sess *s, const char *arg, size_t len)
{
    if ((s->mode & SESS_MODE_SUBMISSION) && !s->auth_user) {
        sess_log_check(s, "MAIL refused: submission port and not authenticated");
        reply_error(s, R_ERR_AUTH_REQUIRED);
        return 0;
    }
    if (s->env->queue_full && s->env->queue_full(s->env->arg)) {
        sess_log_check(s, "MAIL refused: queue full (queue_max_messages or queue_min_free_space)");
        sess_reply(s, R_ERR_QUEUE_FULL);
        return 0;
    }
    struct smtp_addr *a = &s->args.path.addr;
    const struct smtp_params *p = &s->args.path.params;
    enum smtp_perr e = smtp_parse_mail(arg, len, a, &s->args.path.params);
    if (e != SMTP_P_OK) {
        parse_error(s, e, false);
        return 0;
    }
    if (!s->esmtp && (p->has_size || p->body != SMTP_BODY_NONE || p->smtputf8 || p->has_auth ||
                      p->ret != SMTP_RET_NONE || p->envid[0])) {
        reply_error(s, R_ERR_PARAM);
        return 0;
    }
    if (p->has_size && p->size > s->snap->cfg->max_message_size) {
        log_size_refused(s, a, p->size);
        reply_error(s, R_ERR_SIZE_MAIL);
        return 0;
    }
    return 1;
}

static void mail_proceed(struct sess *s, const char *arg, size_t len)
{
    (void)arg;
    (void)len;
    if (!sess_txn_begin(s)) {
        sess_reply(s, R_ERR_NOMEM);
        return;
    }
    s->txn->sender = s->args.path.addr; /* parsed by mail_check */
    s->txn->params = s->args.path.params;
    check_address(s, &s->txn->sender, false);
    sess_enter_state(s, ST_MAIL, "MAIL");
    sess_reply(s, R_SENDER_OK, s->txn->sender.addr);
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
    sess_log_check(s,
                   "RCPT refused: <%s> User unknown, and max_unknown_recipients_per_ip (%u per "
                   "10 minutes) exceeded by [%s]: closing (directory harvest)",
                   addr, max, s->client_ip);
    sess_close_with(s, R_CLOSE_HARVEST, SESS_BY_HARVEST);
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
    sess_log_check(s, "tarpit: reply to unknown recipient %u of this session delayed %u ms",
                   s->unknown_rcpts, (unsigned)ms);
    ms += s->delay_ms;
    s->delay_ms = ms > SESS_TARPIT_MAX_MS ? SESS_TARPIT_MAX_MS : (unsigned)ms;
}

static int rcpt_check(struct sess *s, const char *arg, size_t len)
{
    const struct smtp_addr *a = &s->args.path.addr;
    const struct smtp_params *p = &s->args.path.params;
    enum smtp_perr e = smtp_parse_rcpt(arg, len, &s->args.path.addr, &s->args.path.params);
    if (e != SMTP_P_OK) {
        parse_error(s, e, true);
        return 0;
    }
    if (!s->esmtp && (p->notify || p->orcpt[0])) {
        reply_error(s, R_ERR_PARAM);
        return 0;
    }
    if (s->txn->nrcpt >= s->snap->cfg->max_recipients) {
        COUNT(s, rcpt_refused, SESS_RCPT_TOO_MANY);
        s->txn->nrefused++;
        sess_reply(s, R_ERR_TOO_MANY_RCPT);
        return 0;
    }
    switch (check_address(s, a, true)) {
    case ADDR_OK: return 1;
    case ADDR_UNKNOWN:
        if (harvest_cut(s, a->addr))
            return 0;
        COUNT(s, rcpt_refused, SESS_RCPT_UNKNOWN);
        sess_log_check(s, "RCPT refused: <%s> User unknown (not in the recipient directory)",
                       a->addr);
        s->txn->rcpt_tried = true;
        s->txn->nrefused++;
        tarpit(s);
        reply_error(s, R_ERR_USER_UNKNOWN, a->addr);
        return 0;
    case ADDR_RELAY_DENIED:
        COUNT(s, rcpt_refused, SESS_RCPT_RELAY);
        sess_log_check(s, "RCPT refused: <%s> Relaying denied", a->addr);
        s->txn->rcpt_tried = true;
        s->txn->nrefused++;
        reply_error(s, R_ERR_RELAY, a->addr);
        return 0;
    }
    return 0;
}

static void rcpt_proceed(struct sess *s, const char *arg, size_t len)
{
    (void)arg;
    (void)len;
    const struct smtp_addr *a = &s->args.path.addr; /* parsed by rcpt_check */
    const struct smtp_params *p = &s->args.path.params;
    unsigned char notify = (unsigned char)p->notify;
    struct sess_txn *t = s->txn;
    size_t l1 = t->rcpts.len, l2 = t->notify.len;
    if (!sb_append(&t->rcpts, a->addr, a->len + 1) || !sb_append(&t->notify, &notify, 1) ||
        !sb_append(&t->orcpts, p->orcpt, strlen(p->orcpt) + 1)) {
        t->rcpts.len = l1; /* the three lists stay parallel */
        t->notify.len = l2;
        sess_reply(s, R_ERR_NOMEM);
        return;
    }
    s->txn->nrcpt++;
    sess_enter_state(s, ST_RCPT, "RCPT");
    sess_reply(s, R_RCPT_OK, a->addr);
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
    sess_enter_state(s, ST_DATA, "DATA");
    sess_reply(s, R_DATA_GO);
}

static void rset_proceed(struct sess *s, const char *arg, size_t len)
{
    (void)arg;
    (void)len;
    sess_enter_state(s, s->state == ST_INIT ? ST_INIT : ST_HELO, "RSET");
    sess_reply(s, R_RSET);
}

static void noop_proceed(struct sess *s, const char *arg, size_t len)
{
    (void)arg;
    (void)len;
    sess_reply(s, R_OK);
}

static void quit_proceed(struct sess *s, const char *arg, size_t len)
{
    (void)arg;
    (void)len;
    sess_close_with(s, R_QUIT, SESS_BY_QUIT);
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
    sess_reply(s, R_VRFY);
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
    sess_reply(s, R_TLS_GO);
    sess_set_action(s, SESS_STARTTLS, "STARTTLS"); /* input after this line is never processed */
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

#define ALL_OPEN (STB(ST_INIT) | STB(ST_HELO) | STB(ST_MAIL) | STB(ST_RCPT) | STB(ST_BDAT))

/* The command table: dispatch goes only through here. */
static const struct smtp_cmd cmd_table[] = {
    {SMTP_VERB_HELO, ALL_OPEN, CMD_PRE_TLS, helo_check, helo_proceed},
    {SMTP_VERB_EHLO, ALL_OPEN, CMD_PRE_TLS, ehlo_check, ehlo_proceed},
    {SMTP_VERB_MAIL, STB(ST_HELO), 0, mail_check, mail_proceed},
    {SMTP_VERB_RCPT, STB(ST_MAIL) | STB(ST_RCPT), 0, rcpt_check, rcpt_proceed},
    {SMTP_VERB_DATA, STB(ST_MAIL) | STB(ST_RCPT), CMD_NOARGS, data_check, data_proceed},
    {SMTP_VERB_BDAT, ALL_OPEN, 0, sess_bdat_check, sess_bdat_proceed},
    {SMTP_VERB_RSET, ALL_OPEN, CMD_NOARGS | CMD_PRE_TLS | CMD_JUNK, NULL, rset_proceed},
    {SMTP_VERB_NOOP, ALL_OPEN, CMD_PRE_TLS | CMD_JUNK, NULL, noop_proceed},
    {SMTP_VERB_QUIT, ALL_OPEN, CMD_NOARGS | CMD_PRE_TLS, NULL, quit_proceed},
    {SMTP_VERB_VRFY, ALL_OPEN, CMD_JUNK, vrfy_check, vrfy_proceed},
    {SMTP_VERB_HELP, ALL_OPEN, CMD_PRE_TLS | CMD_JUNK, NULL, help_proceed},
    {SMTP_VERB_STARTTLS, STB(ST_INIT) | STB(ST_HELO), CMD_NOARGS | CMD_PRE_TLS, starttls_check,
     starttls_proceed},
    {SMTP_VERB_AUTH, STB(ST_HELO), 0, sess_auth_check, sess_auth_begin},
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
    {SMTP_VERB_AUTH, sess_auth_offered},
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
    sess_reply(s, R_HELP, names);
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
    if (s->state == ST_BDAT) /* RFC 3030 2: no DATA, MAIL or RCPT inside a BDAT transaction */
        reply_error(s, R_ERR_AFTER_BDAT, smtp_verb_name(v));
    else if (s->state == ST_INIT)
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

/* sess_dispatch - one complete command line (without CRLF). */
void sess_dispatch(struct sess *s, const char *line, size_t len)
{
    size_t arg_off = len;
    enum smtp_verb v = smtp_parse_verb(line, len, &arg_off);
    s->last_verb = v;
    COUNT(s, commands, v);
    sess_log_command(s, line, len);
    const struct smtp_cmd *cmd = cmd_lookup(v);
    if (!cmd) {
        reply_error(s, R_ERR_UNKNOWN);
        return;
    }
    const char *arg = line + arg_off;
    size_t alen = len - arg_off;
    while (alen && arg[alen - 1] == ' ')
        alen--;
    if (s->milter_denied && v == SMTP_VERB_BDAT) {
        sess_bdat_denied(s, arg, alen); /* its chunk must not run as commands */
        return;
    }
    if (s->milter_denied && v != SMTP_VERB_QUIT) {
        reply_error(s, R_ERR_MILTER_DENIED, s->client_ip);
        return;
    }
    if (!(cmd->states & STB(s->state))) {
        bad_sequence(s, v);
        return;
    }
    if ((cmd->flags & CMD_JUNK) && ++s->junk > s->snap->cfg->max_junk_commands) {
        sess_close_with(s, R_CLOSE_JUNK, SESS_BY_JUNK);
        return;
    }
    if ((cmd->flags & CMD_NOARGS) && alen) {
        reply_error(s, R_ERR_NO_ARGS, smtp_verb_name(v));
        return;
    }
    if (cmd->check && !cmd->check(s, arg, alen))
        return;
    if (sess_milter_ask(s, v, arg, alen))
        return;
    cmd->proceed(s, arg, alen);
}

/* sess_proceed - see session_int.h. */
void sess_proceed(struct sess *s, enum smtp_verb v, const char *arg, size_t len)
{
    const struct smtp_cmd *cmd = cmd_lookup(v);
    if (cmd)
        cmd->proceed(s, arg, len);
}
