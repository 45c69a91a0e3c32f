/* milterio.c - the milter conversations of one SMTP session (milterio.h):
 * a job (one command, or the end of a message) walks the milters in order,
 * each through the job's stages (milterio_conv.c), until a verdict ends it
 * (reject, tempfail, replycode; discard at end of message) or the last
 * milter is done; accept takes a milter out of the rest of the message (or
 * of the session, at connect or HELO); a milter that is down, times out or
 * breaks the protocol gets milter_default_action at that stage and is not
 * asked again in this session. At the end, milters left at end of message
 * go to the worker's pool (QUIT_NC), the others get QUIT. The session's
 * memory goes only when every conversation's pending is 0. Worker thread
 * only; nothing blocks. */
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

/* ---- jobs ---------------------------------------------------------------- */

/* mjob_default_refuse - milter_default_action (tempfail or reject) ends the
 * job, for the milter that failed or is down. */
void mjob_default_refuse(struct mconv *r, const char *why)
{
    struct milterio_sess *ms = r->ms;
    bool rej = ms->default_action == CFG_MILTER_REJECT;
    ms->chain_over = true;
    ms->res.v = rej ? MILTERIO_REJECT : MILTERIO_TEMPFAIL;
    ms->res.session_wide = (r->stage < 0 ? ms->first : r->stage) <= MILTER_S_HELO;
    snprintf(ms->res.reply, sizeof ms->res.reply, "%s",
             reply_table[rej ? R_ERR_MILTER_REJECT : R_ERR_MILTER_TEMP].fmt);
    snprintf(ms->res.detail, sizeof ms->res.detail, "milter %s failed: %s", mconv_name(r), why);
}

/* mjob_action_word - milter_default_action for the log. */
const char *mjob_action_word(unsigned a)
{
    return a == CFG_MILTER_ACCEPT ? "accept" : a == CFG_MILTER_REJECT ? "reject" : "tempfail";
}

/* mconv_over - the conversation failed: milter_default_action at this
 * stage, the socket closed, the milter not asked again in this session. */

static _Thread_local struct milterio_result nomem; /* per worker thread */

/* result_nomem - the result when even the result cannot be had. */
static struct milterio_result *result_nomem(void)
{
    memset(&nomem, 0, sizeof nomem);
    nomem.v = MILTERIO_TEMPFAIL;
    snprintf(nomem.detail, sizeof nomem.detail, "milters: out of memory");
    snprintf(nomem.reply, sizeof nomem.reply, "%s", reply_table[R_ERR_MILTER_TEMP].fmt);
    return &nomem;
}

/* result_clear - release what a result holds. */
static void result_clear(struct milterio_result *r)
{
    sb_free(&r->headers);
    free(r->quarantine);
    free(r->rcpt_deleted);
    for (size_t i = 0; i < r->nedits; i++) {
        free(r->edits[i].name);
        free(r->edits[i].value);
    }
    free(r->edits);
    r->edits = NULL;
    r->nedits = 0;
    r->quarantine = NULL;
    r->rcpt_deleted = NULL;
}

/* job_finish - the job is over: hand its result to the session. */
static void job_finish(struct milterio_sess *ms)
{
    ms->res.quarantine = ms->quar;
    ms->quar = NULL;
    const struct sess_msg *m = ms->m;
    if (ms->eom && ms->res.v == MILTERIO_ACCEPT && m->nrcpt && ms->res.ndeleted == m->nrcpt) {
        ms->res.v = MILTERIO_DISCARD; /* every recipient deleted */
        snprintf(ms->res.detail, sizeof ms->res.detail, "milters deleted every recipient");
    }
    struct milterio_result *res = malloc(sizeof *res);
    if (res)
        *res = ms->res;
    else
        result_clear(&ms->res);
    memset(&ms->res, 0, sizeof ms->res);
    ms->busy = false;
    ms->m = NULL;
    ms->qid = NULL; /* the message's, gone with it: MAIL has no queue id yet */
    ms->done(ms->arg, res ? res : result_nomem());
}

/* mjob_next - milter ms->k's part of the job, or the next one it has; the
 * job ends at a verdict or after the last. */
void mjob_next(struct milterio_sess *ms)
{
    while (!ms->chain_over && ms->k < ms->n) {
        struct mconv *r = &ms->cv[ms->k];
        if (r->out_sess || r->out_txn || (r->dead && ms->default_action == CFG_MILTER_ACCEPT)) {
            ms->k++;
            continue;
        }
        if (r->dead) {
            r->stage = ms->first;
            filter_logf(ms->log, ms->arg, "milter %s: unavailable at %s (failed earlier): %s",
                        mconv_name(r), mconv_stage_name(r), mjob_action_word(ms->default_action));
            mjob_default_refuse(r, "failed earlier in the session");
            break;
        }
        mconv_begin(r);
        return;
    }
    job_finish(ms);
}

/* job_start - a new job over m: the milters from the first on. */
static void job_start(struct milterio_sess *ms, const struct sess_msg *m, bool eom, int first)
{
    ms->busy = true;
    ms->eom = eom;
    ms->first = first;
    ms->m = m;
    ms->k = 0;
    ms->chain_over = false;
    memset(&ms->res, 0, sizeof ms->res);
    ms->depth++;
    mjob_next(ms);
    ms->depth--;
}

/* milterio_wanted - see milterio.h. */
bool milterio_wanted(const struct config *cfg)
{
    return cfg && cfg->nmilters > 0;
}

/* milterio_sess_new - see milterio.h. */
struct milterio_sess *milterio_sess_new(struct io_uring *ring, const struct config *cfg,
                                        filter_log_fn log, milterio_done_fn done, void *arg)
{
    struct milterio_sess *ms = calloc(1, sizeof *ms);
    if (!ms)
        return NULL;
    ms->milters = calloc(cfg->nmilters, sizeof *ms->milters);
    ms->cv = aligned_alloc(_Alignof(struct mconv), cfg->nmilters * sizeof *ms->cv);
    if (!ms->milters || !ms->cv) {
        free(ms->milters);
        free(ms->cv);
        free(ms);
        return NULL;
    }
    memcpy(ms->milters, cfg->milters, cfg->nmilters * sizeof *ms->milters);
    memset(ms->cv, 0, cfg->nmilters * sizeof *ms->cv);
    ms->n = cfg->nmilters;
    for (size_t i = 0; i < ms->n; i++) {
        mconv_init(&ms->cv[i], ms, i);
    }
    ms->ring = ring;
    ms->log = log;
    ms->done = done;
    ms->arg = arg;
    snprintf(ms->hostname, sizeof ms->hostname, "%s", cfg->hostname);
    ms->connect_ms = cfg->milter_connect_timeout_ms;
    ms->command_ms = cfg->milter_command_timeout_ms;
    ms->content_ms = cfg->milter_content_timeout_ms;
    ms->default_action = cfg->milter_default_action;
    return ms;
}

/* milterio_cmd - see milterio.h. A new MAIL resets the transaction: an
 * ABORT goes ahead of it to every milter that saw the last one unended.
 * The DATA stage said here (at the DATA command) is not said again at the
 * end of the message; a message discarded already is not shown. */
void milterio_cmd(struct milterio_sess *ms, int st, const struct sess_msg *m)
{
    int stage = st == SESS_MS_DATA   ? MILTER_S_DATA
                : st == SESS_MS_RCPT ? MILTER_S_RCPT
                : st == SESS_MS_MAIL ? MILTER_S_MAIL
                                     : MILTER_S_HELO;
    ms->data_said |= stage == MILTER_S_DATA;
    if (stage == MILTER_S_MAIL) {
        ms->discard = ms->data_said = false;
        for (size_t i = 0; i < ms->n; i++) {
            ms->cv[i].out_txn = false;
            ms->cv[i].abort_due |= ms->cv[i].txn_open && ms->cv[i].open;
            ms->cv[i].txn_open = false;
        }
    }
    if (stage == MILTER_S_DATA && (ms->discard || ms->discard_s)) {
        ms->busy = true; /* a discarded message is shown to no milter: go on */
        ms->eom = false;
        ms->m = m;
        memset(&ms->res, 0, sizeof ms->res);
        job_finish(ms);
        return;
    }
    job_start(ms, m, false, stage);
}

/* milterio_eom - see milterio.h; a message a milter discarded at a
 * command is not shown to any. */
void milterio_eom(struct milterio_sess *ms, const struct sess_msg *m, const char *qid,
                  const struct filter_src *src)
{
    ms->qid = qid;
    ms->src = *src;
    if (ms->discard || ms->discard_s) {
        ms->busy = true;
        ms->m = m;
        memset(&ms->res, 0, sizeof ms->res);
        ms->res.v = MILTERIO_DISCARD;
        snprintf(ms->res.detail, sizeof ms->res.detail, "%s", ms->discard_why);
        job_finish(ms);
        return;
    }
    job_start(ms, m, true, ms->data_said ? MILTER_S_HEADER : MILTER_S_DATA);
}

/* mjob_maybe_free - an ended session goes once nothing is due. */
void mjob_maybe_free(struct milterio_sess *ms)
{
    if (!ms->ended || ms->busy || ms->depth)
        return;
    for (size_t i = 0; i < ms->n; i++)
        if (ms->cv[i].pending)
            return;
    for (size_t i = 0; i < ms->n; i++) {
        milter_rd_free(&ms->cv[i].rd);
        sb_free(&ms->cv[i].out);
        free(ms->cv[i].hdr);
    }
    result_clear(&ms->res);
    free(ms->quar);
    free(ms->cv);
    free(ms->milters);
    free(ms);
}

/* milterio_sess_end - see milterio.h: a milter at end of message gets
 * SMFIC_QUIT_NC and its connection goes to the worker's pool; the others
 * SMFIC_QUIT (best effort, no wait: a full socket buffer drops it, the
 * close says the same) and the close. */
void milterio_sess_end(struct milterio_sess *ms)
{
    if (!ms)
        return;
    ms->ended = true;
    for (size_t i = 0; i < ms->n; i++) {
        struct mconv *r = &ms->cv[i];
        if (r->fd >= 0 && r->open && r->endm &&
            send(r->fd, "\0\0\0\1K", 5, MSG_NOSIGNAL | MSG_DONTWAIT) == 5) {
            struct mpool_conn pc = {.fd = r->fd, .actions = r->actions, .proto = r->proto};
            mpool_put(&ms->milters[i].sock, mio_now_ms(), &pc);
            r->fd = -1;
            continue;
        }
        if (r->fd >= 0 && r->open)
            (void)send(r->fd, "\0\0\0\1Q", 5, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r->fd >= 0)
            mconv_close(r);
    }
    mjob_maybe_free(ms);
}

/* milterio_result_free - see milterio.h; the static out-of-memory result
 * holds nothing and is not freed. */
void milterio_result_free(struct milterio_result *r)
{
    if (!r || r == &nomem)
        return;
    result_clear(r);
    free(r);
}
