/* session_milter.c - the session's side of the milters' per-command
 * verdicts: a HELO/EHLO, MAIL, RCPT, DATA or the first BDAT of a
 * transaction whose check passed waits (action SESS_MILTER) for the
 * milters' answer, then either runs its proceed step or is refused with
 * the milter's reply; a refusal at connect or HELO denies the rest of the
 * session, one at DATA ends the transaction. Pure, on the session's
 * worker thread. */
#include "session_int.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "snap.h"

/* mstage_of - the milter stage of a verb, or -1 when milters never see it. */
static int mstage_of(enum smtp_verb v)
{
    switch (v) {
    case SMTP_VERB_HELO:
    case SMTP_VERB_EHLO: return SESS_MS_HELO;
    case SMTP_VERB_MAIL: return SESS_MS_MAIL;
    case SMTP_VERB_RCPT: return SESS_MS_RCPT;
    case SMTP_VERB_DATA:
    case SMTP_VERB_BDAT: return SESS_MS_DATA;
    default: return -1;
    }
}

/* sess_milter_ask - see session_int.h. Of the BDATs only the first of a
 * transaction is asked about (the DATA stage, as Postfix does before it
 * accepts the first chunk); its chunk octets wait in s->in meanwhile. */
bool sess_milter_ask(struct sess *s, enum smtp_verb v, const char *arg, size_t len)
{
    if (!s->snap->cfg->nmilters || mstage_of(v) < 0)
        return false;
    if (v == SMTP_VERB_BDAT && s->state != ST_RCPT)
        return false;
    char *copy = malloc(len + 1);
    if (!copy)
        return false; /* the command goes on without the milters' word */
    memcpy(copy, arg, len);
    copy[len] = 0;
    free(s->marg);
    s->marg = copy;
    s->marg_len = len;
    s->mverb = v;
    sess_set_action(s, SESS_MILTER, smtp_verb_name(v));
    return true;
}

/* sess_milter_cmd - see session.h. */
enum sess_mstage sess_milter_cmd(const struct sess *s, struct sess_msg *m)
{
    enum sess_mstage st = (enum sess_mstage)mstage_of(s->mverb);
    memset(m, 0, sizeof *m);
    m->helo = st == SESS_MS_HELO ? s->marg : s->helo;
    m->client_ip = s->client_ip;
    m->client_port = s->client_port;
    m->tls_version = s->tls_version[0] ? s->tls_version : NULL;
    m->tls_cipher = s->tls_cipher[0] ? s->tls_cipher : NULL;
    m->auth_user = s->auth_user;
    m->sender = st == SESS_MS_MAIL ? s->args.path.addr.addr : s->txn ? s->txn->sender.addr : "";
    m->sid = s->sid;
    if (st == SESS_MS_RCPT) {
        m->rcpts = s->args.path.addr.addr; /* parsed by rcpt_check */
        m->nrcpt = 1;
    } else if (st == SESS_MS_DATA) {
        m->rcpts = s->txn->rcpts.data; /* every accepted recipient */
        m->nrcpt = s->txn->nrcpt;
    }
    return st;
}

/* refuse_data - the milters refused DATA or the first BDAT: the
 * transaction ends (Postfix resets it too). DATA is answered now, no 354;
 * the BDAT's chunk is discarded by count and answered at its end. */
static void refuse_data(struct sess *s, enum sess_mverdict v, const char *text, const char *detail)
{
    const char *what = smtp_verb_name(s->mverb);
    sess_log_check(s, "%s refused: %s", what, detail);
    sess_txn_end(s, v == SESS_MV_TEMPFAIL ? "tempfail" : "refused", "%s", detail);
    sess_enter_state(s, ST_HELO, "milters refused the data");
    enum reply_id id = v == SESS_MV_TEMPFAIL ? R_ERR_MILTER_TEMP : R_ERR_MILTER_REJECT;
    if (s->mverb == SMTP_VERB_BDAT)
        sess_bdat_refuse(s, id, text);
    else if (text && *text)
        sess_reply_lines(s, text);
    else
        sess_reply(s, id);
}

/* refuse_cmd - the milters refused the waiting command. */
static void refuse_cmd(struct sess *s, enum sess_mverdict v, const char *text, bool session_wide,
                       const char *detail)
{
    const char *what = smtp_verb_name(s->mverb);
    const char *result = v == SESS_MV_TEMPFAIL ? "tempfail" : "refused";
    if (session_wide)
        s->milter_denied = true; /* (a milter that is new at DATA refused its connect) */
    if (mstage_of(s->mverb) == SESS_MS_DATA) {
        refuse_data(s, v, text, detail); /* its chunk, if a BDAT, still to be skipped */
        return;
    }
    if (session_wide) {
        sess_log_check(s, "%s refused: %s: every later command but QUIT refused", what, detail);
    } else if (s->mverb == SMTP_VERB_MAIL) {
        sess_log_check(s, "MAIL refused: <%s> %s", s->args.path.addr.addr, detail);
        sess_log_summary(s, s->args.path.addr.addr, 0, 0, 0, result, NULL, detail);
    } else if (s->mverb == SMTP_VERB_RCPT) {
        sess_log_check(s, "RCPT refused: <%s> %s", s->args.path.addr.addr, detail);
        s->txn->rcpt_tried = true;
        s->txn->nrefused++;
    }
    if (text && *text)
        sess_reply_lines(s, text);
    else
        sess_reply(s, v == SESS_MV_TEMPFAIL ? R_ERR_MILTER_TEMP : R_ERR_MILTER_REJECT);
}

/* sess_milter_done - see session.h. */
void sess_milter_done(struct sess *s, enum sess_mverdict v, const char *text, bool session_wide,
                      const char *detail)
{
    if (s->action != SESS_MILTER)
        return;
    sess_set_action(s, SESS_RUN, "milters answered");
    if (v == SESS_MV_CONTINUE)
        sess_proceed(s, s->mverb, s->marg, s->marg_len);
    else
        refuse_cmd(s, v, text, session_wide, detail ? detail : "milter");
    free(s->marg);
    s->marg = NULL;
    sess_deferred_close(s);
}
