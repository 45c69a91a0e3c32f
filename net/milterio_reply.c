/* milterio_reply.c - what a milter answers (milterio_int.h): option
 * negotiation, verdicts at each stage (accept, continue, reject, tempfail,
 * replycode, discard, skip, progress) and the end-of-message actions
 * (addheader, insheader, chgheader, delrcpt, quarantine) collected into
 * the job's result; every reply logged. Worker thread only. */
#include "milterio_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "milterio_pool.h"
#include "session.h"

/* ---- replies ------------------------------------------------------------- */

/* refuse - the milter's verdict ends the job: v, its reply text (NULL:
 * the default of reply.c) and the log line. */
static int refuse(struct mconv *r, enum milterio_verdict v, const char *word, const char *text)
{
    struct milterio_sess *ms = r->ms;
    struct milter_code c;
    const char *t =
        text ? text
             : reply_table[v == MILTERIO_TEMPFAIL ? R_ERR_MILTER_TEMP : R_ERR_MILTER_REJECT].fmt;
    ms->chain_over = true;
    ms->res.v = v;
    ms->res.session_wide = r->stage <= MILTER_S_HELO;
    snprintf(ms->res.reply, sizeof ms->res.reply, "%s", v == MILTERIO_DISCARD ? "" : t);
    char *d = ms->res.detail; /* the log line, and the refusal's reason */
    if (v != MILTERIO_DISCARD && milter_replycode_parse(t, &c))
        snprintf(d, sizeof ms->res.detail, "milter %s: %s %u%s%s \"%.*s\" at %s", mconv_name(r),
                 word, c.code, c.ext[0] ? " " : "", c.ext, (int)c.text_len, c.text,
                 mconv_stage_name(r));
    else
        snprintf(d, sizeof ms->res.detail, "milter %s: %s at %s", mconv_name(r), word,
                 mconv_stage_name(r));
    filter_logf(ms->log, ms->arg, "%s", d);
    return R_OVER;
}

/* discard_cmd - discard at a command: the message (or, at connect or
 * HELO, every message of the session) is dropped at its end; the command
 * itself goes on. */
static int discard_cmd(struct mconv *r)
{
    struct milterio_sess *ms = r->ms;
    filter_logf(ms->log, ms->arg, "milter %s: discard at %s", mconv_name(r), mconv_stage_name(r));
    if (r->stage <= MILTER_S_HELO)
        ms->discard_s = true;
    else
        ms->discard = true;
    snprintf(ms->discard_why, sizeof ms->discard_why, "milter %s: discard at %s", mconv_name(r),
             mconv_stage_name(r));
    ms->chain_over = true; /* no other milter needs to see it */
    return R_OVER;
}

/* accept - the milter is out of the rest of the message (or session). */
static int accept_verdict(struct mconv *r)
{
    filter_logf(r->ms->log, r->ms->arg, "milter %s: accept at %s", mconv_name(r),
                mconv_stage_name(r));
    if (r->stage <= MILTER_S_HELO)
        r->out_sess = true;
    else
        r->out_txn = true;
    return R_OVER;
}

/* add_header - addheader (appended: just above our Received:) or
 * insheader at index 0 or 1 (the top). */
static void add_header(struct mconv *r, const struct milter_reply *rep, bool top)
{
    struct sb line = {0};
    if (!milter_header_format(&line, rep->name, rep->value)) {
        mconv_fail(r, "out of memory");
        return;
    }
    if (top && sb_append(&line, r->ms->res.headers.data ? r->ms->res.headers.data : "",
                         r->ms->res.headers.len)) {
        sb_free(&r->ms->res.headers);
        r->ms->res.headers = line;
        line = (struct sb){0};
    } else if (!sb_append(&r->ms->res.headers, line.data, line.len)) {
        mconv_fail(r, "out of memory");
    }
    sb_free(&line);
    filter_logf(r->ms->log, r->ms->arg, "milter %s: %s %s", mconv_name(r),
                top ? "insheader" : "addheader", rep->name);
}

/* chg_header - chgheader: the edit joins the result's list, applied to the
 * message's header section when it is committed (milterio_edit.c). */
static void chg_header(struct mconv *r, const struct milter_reply *rep)
{
    struct milterio_result *res = &r->ms->res;
    struct milter_hdr_edit *v = realloc(res->edits, (res->nedits + 1) * sizeof *v);
    if (!v) {
        mconv_fail(r, "out of memory");
        return;
    }
    res->edits = v;
    struct milter_hdr_edit *e = &v[res->nedits];
    e->name = strdup(rep->name);
    e->value = strdup(rep->value);
    e->index = rep->index;
    if (!e->name || !e->value) {
        free(e->name);
        free(e->value);
        mconv_fail(r, "out of memory");
        return;
    }
    res->nedits++;
    filter_logf(r->ms->log, r->ms->arg, "milter %s: chgheader %s[%u]%s", mconv_name(r), rep->name,
                rep->index, rep->value[0] ? "" : " deleted");
}

/* del_rcpt - delrcpt: the recipient leaves the message. */
static void del_rcpt(struct mconv *r, const char *text)
{
    const struct sess_msg *m = r->ms->m;
    size_t n = strlen(text);
    if (n >= 2 && text[0] == '<' && text[n - 1] == '>')
        text++, n -= 2;
    if (!r->ms->res.rcpt_deleted &&
        !(r->ms->res.rcpt_deleted = calloc(m->nrcpt + 1, sizeof(bool)))) {
        mconv_fail(r, "out of memory");
        return;
    }
    for (size_t i = 0; i < m->nrcpt; i++) {
        const char *a = mio_rcpt_at(m, i);
        if (strlen(a) == n && strncasecmp(a, text, n) == 0 && !r->ms->res.rcpt_deleted[i]) {
            r->ms->res.rcpt_deleted[i] = true;
            r->ms->res.ndeleted++;
            filter_logf(r->ms->log, r->ms->arg, "milter %s: delrcpt <%s>", mconv_name(r), a);
            return;
        }
    }
    filter_logf(r->ms->log, r->ms->arg, "milter %s: delrcpt <%.*s>: no such recipient",
                mconv_name(r), (int)n, text);
}

/* on_modify - an action at end of message; R_MORE, or a failure. */
static int on_modify(struct mconv *r, const struct milter_reply *rep)
{
    uint32_t need = rep->cmd == MILTER_R_ADDHEADER || rep->cmd == MILTER_R_INSHEADER
                        ? MILTER_F_ADDHDRS
                    : rep->cmd == MILTER_R_CHGHEADER ? MILTER_F_CHGHDRS
                    : rep->cmd == MILTER_R_DELRCPT   ? MILTER_F_DELRCPT
                                                     : MILTER_F_QUARANTINE;
    if (r->stage != MILTER_S_EOM || !(r->actions & need)) {
        mconv_fail(r, "action '%c' not allowed at %s", rep->cmd, mconv_stage_name(r));
        return R_OVER;
    }
    if (rep->cmd == MILTER_R_ADDHEADER || rep->cmd == MILTER_R_INSHEADER)
        add_header(r, rep, rep->cmd == MILTER_R_INSHEADER && rep->index <= 1);
    else if (rep->cmd == MILTER_R_CHGHEADER)
        chg_header(r, rep);
    else if (rep->cmd == MILTER_R_DELRCPT)
        del_rcpt(r, rep->text);
    else if (!r->ms->quar && (r->ms->quar = strdup(rep->text)))
        filter_logf(r->ms->log, r->ms->arg, "milter %s: quarantine \"%s\"", mconv_name(r),
                    rep->text);
    return r->failed ? R_OVER : R_MORE;
}

/* on_optneg - the milter's options: the actions and steps it takes. */
static int on_optneg(struct mconv *r, const struct milter_reply *rep)
{
    if (rep->cmd != MILTER_R_OPTNEG || rep->version < 2) {
        mconv_fail(r, "bad option negotiation reply");
        return R_OVER;
    }
    if (rep->actions & ~(uint32_t)MILTER_ACTIONS_OFFERED)
        filter_logf(r->ms->log, r->ms->arg, "milter %s: actions 0x%x not offered, refused",
                    mconv_name(r), rep->actions & ~(uint32_t)MILTER_ACTIONS_OFFERED);
    r->actions = rep->actions & MILTER_ACTIONS_OFFERED;
    r->proto = rep->proto & MILTER_PROTO_OFFERED;
    r->open = true;
    r->stage = MILTER_S_CONNECT;
    r->item = 0;
    return R_GO_ON;
}

/* mconv_on_reply - one reply of the milter at the current stage. */
int mconv_on_reply(struct mconv *r, const struct milter_reply *rep)
{
    r->pooled = false; /* a reused connection answered: it is alive */
    if (r->stage < 0)
        return on_optneg(r, rep);
    switch (rep->cmd) {
    case MILTER_R_PROGRESS: r->deadline_ms = mio_now_ms() + r->stage_ms; return R_MORE;
    case MILTER_R_CONTINUE:
        if (r->stage == MILTER_S_EOM) {
            filter_logf(r->ms->log, r->ms->arg, "milter %s: continue at end of message",
                        mconv_name(r));
            r->endm = true; /* libmilter's ST_ENDM: QUIT_NC is allowed */
            return R_OVER;
        }
        r->nheaders += r->stage == MILTER_S_HEADER;
        r->nchunks += r->stage == MILTER_S_BODY;
        if (r->stage != MILTER_S_HEADER && r->stage != MILTER_S_BODY)
            filter_logf(r->ms->log, r->ms->arg, "milter %s: continue at %s", mconv_name(r),
                        mconv_stage_name(r));
        return R_GO_ON;
    case MILTER_R_SKIP:
        r->skip_body = true;
        filter_logf(r->ms->log, r->ms->arg, "milter %s: skip at %s", mconv_name(r),
                    mconv_stage_name(r));
        return R_GO_ON;
    case MILTER_R_ACCEPT: return accept_verdict(r);
    case MILTER_R_REJECT: return refuse(r, MILTERIO_REJECT, "reject", NULL);
    case MILTER_R_TEMPFAIL: return refuse(r, MILTERIO_TEMPFAIL, "tempfail", NULL);
    case MILTER_R_DISCARD:
        if (!r->ms->eom) /* at a command, DATA included: the message goes at its end */
            return discard_cmd(r);
        return refuse(r, MILTERIO_DISCARD, "discard", NULL);
    case MILTER_R_REPLYCODE:
        return refuse(r, rep->text[0] == '4' ? MILTERIO_TEMPFAIL : MILTERIO_REJECT,
                      rep->text[0] == '4' ? "tempfail" : "reject", rep->text);
    case MILTER_R_ADDHEADER:
    case MILTER_R_INSHEADER:
    case MILTER_R_CHGHEADER:
    case MILTER_R_DELRCPT:
    case MILTER_R_QUARANTINE: return on_modify(r, rep);
    default: mconv_fail(r, "unexpected reply '%c'", rep->cmd); return R_OVER;
    }
}

/* mconv_received - n octets of replies in r->rbuf. */
void mconv_received(struct mconv *r, size_t n)
{
    size_t off = 0;
    int act = R_MORE;
    enum milter_rd_status st = MILTER_RD_MORE;
    while (off < n && act == R_MORE) {
        struct milter_reply rep;
        size_t used;
        st = milter_rd_feed(&r->rd, r->rbuf + off, n - off, &used, &rep);
        off += used;
        if (st == MILTER_RD_REPLY)
            act = mconv_on_reply(r, &rep);
        else if (st != MILTER_RD_MORE)
            break;
    }
    if (st > MILTER_RD_REPLY)
        mconv_fail(r, "%s", milter_rd_status_name(st));
    else if (act != R_MORE && off < n)
        mconv_fail(r, "more replies than commands");
    if (r->failed)
        mconv_over(r);
    else if (act == R_OVER)
        mconv_done(r);
    else if (act == R_GO_ON)
        mconv_next_stage(r);
    else
        mconv_recv(r);
}
