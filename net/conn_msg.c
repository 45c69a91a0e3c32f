/* conn_msg.c - a connection's message on its way into the queue journal:
 * chunks streamed as they arrive, waiting for journal space, the content
 * filters (reading the message back from the journal), and the commit whose
 * callback sends the 250. Runs on the worker's own thread. */
#include "worker_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "filter.h"
#include "milterio.h"
#include "queue.h"
#include "session.h"
#include "snap.h"
#include "spool.h"
#include "util.h"

/* filter_log - a filter's line into the session's receivelog. */
static void filter_log(void *arg, const char *line)
{
    struct conn *c = arg;
    sess_log(c->sess, "%s", line);
}

static long filter_read(void *arg, size_t off, void *buf, size_t cap);

/* conn_mres_drop - see worker_int.h. */
void conn_mres_drop(struct conn *c)
{
    milterio_result_free(c->mres);
    c->mres = NULL;
}

/* milter_cmd_done - the milters' verdict on the session's command. */
static void milter_cmd_done(struct conn *c, struct milterio_result *r)
{
    c->milter_pending = false;
    c->inflight--;
    if (r->v != MILTERIO_ACCEPT && (unsigned)r->v < MILTER_VERDICTS)
        STAT_ADD(c->w->st.milter_verdicts[r->v], 1);
    enum sess_mverdict v = r->v == MILTERIO_REJECT     ? SESS_MV_REJECT
                           : r->v == MILTERIO_TEMPFAIL ? SESS_MV_TEMPFAIL
                                                       : SESS_MV_CONTINUE;
    if (!c->closing)
        sess_milter_done(c->sess, v, r->reply[0] ? r->reply : NULL, r->session_wide, r->detail);
    milterio_result_free(r);
    if (c->closing) {
        conn_maybe_free(c);
        return;
    }
    sess_input(c->sess, NULL, 0); /* commands pipelined behind it */
    if (!c->milter_asking)
        conn_after(c);
}

/* conn_milters - c's milter conversations, opened at the first need;
 * NULL on ENOMEM. */
static struct milterio_sess *conn_milters(struct conn *c);

/* conn_milter_ask - see worker_int.h. */
bool conn_milter_ask(struct conn *c)
{
    enum sess_mstage st = sess_milter_cmd(c->sess, &c->mcmd);
    if (!conn_milters(c)) {
        sess_milter_done(c->sess, SESS_MV_TEMPFAIL, NULL, false, "milters: out of memory");
        sess_input(c->sess, NULL, 0);
        return true;
    }
    c->milter_pending = true;
    c->milter_asking = true;
    c->inflight++;
    milterio_cmd(c->ms, (int)st, &c->mcmd);
    c->milter_asking = false;
    return !c->milter_pending;
}

/* milter_done - milterio_done_fn: the milters' result (of a command, or of
 * the message: the verdict of the content filters, kept in c, and theirs
 * together). */
static void milter_done(void *arg, struct milterio_result *r)
{
    struct conn *c = arg;
    if (c->milter_pending) {
        milter_cmd_done(c, r);
        return;
    }
    c->filtering = false;
    c->inflight--;
    char *fq = c->mquar;
    c->mquar = NULL;
    if ((unsigned)r->v < MILTER_VERDICTS)
        STAT_ADD(c->w->st.milter_verdicts[r->v], 1);
    if (r->v == MILTERIO_REJECT || r->v == MILTERIO_TEMPFAIL) {
        sess_filter_reply(c->sess, r->reply, r->detail);
        milterio_result_free(r);
    } else {
        c->mres = r;
        const char *q = fq ? fq : r->quarantine;
        sess_filter_done(c->sess, q ? SESS_VERDICT_QUARANTINE : SESS_VERDICT_PASS, q);
    }
    free(fq);
    if (c->closing)
        conn_maybe_free(c);
    else
        conn_after(c);
}

/* filter_done - the filters' verdict (may run inside filter_start); the
 * milters run next when they are configured and the filters passed. */
static void filter_done(void *arg, enum sess_verdict v, const char *detail)
{
    struct conn *c = arg;
    const struct config *cfg = sess_snap(c->sess)->cfg;
    if (!c->closing && milterio_wanted(cfg) &&
        (v == SESS_VERDICT_PASS || v == SESS_VERDICT_QUARANTINE)) {
        c->mquar =
            v == SESS_VERDICT_QUARANTINE ? strdup(detail && *detail ? detail : "filter") : NULL;
        const struct filter_src src = {
            .len = queue_txn_size(c->txn), .read = filter_read, .arg = c};
        if (conn_milters(c)) {
            milterio_eom(c->ms, sess_msg(c->sess), queue_txn_id(c->txn), &src);
            return;
        }
        free(c->mquar);
        c->mquar = NULL;
        v = SESS_VERDICT_TEMPFAIL, detail = "milters: out of memory";
    }
    c->filtering = false;
    c->inflight--;
    sess_filter_done(c->sess, v, detail);
    if (c->closing)
        conn_maybe_free(c);
    else
        conn_after(c);
}

/* conn_milters - see above. */
static struct milterio_sess *conn_milters(struct conn *c)
{
    if (!c->ms)
        c->ms = milterio_sess_new(&c->w->ring, sess_snap(c->sess)->cfg, filter_log, milter_done, c);
    return c->ms;
}

/* filter_read - the filters' message source: read back from the journal
 * segments (page cache) of c's transaction (struct filter_src read). */
static long filter_read(void *arg, size_t off, void *buf, size_t cap)
{
    struct conn *c = arg;
    return (long)queue_txn_read(c->txn, off, buf, cap);
}

/* filter_written - queue_written_fn: the message is written; filter it. */
static void filter_written(void *arg, int err)
{
    struct conn *c = arg;
    if (err || c->closing) {
        filter_done(c, SESS_VERDICT_TEMPFAIL, err ? "queue journal write failed" : "");
        return;
    }
    const struct filter_src src = {.len = queue_txn_size(c->txn), .read = filter_read, .arg = c};
    filter_start(c->w->fe, sess_snap(c->sess)->cfg, &src, filter_log, filter_done, c);
}

/* filter_begin - run the content filters over the completed message, read
 * back from the journal once all of it is written (never held in memory). */
static void filter_begin(struct conn *c)
{
    c->filtering = true;
    c->inflight++;
    queue_txn_written(c->txn, filter_written, c);
}

/* ---- messages into the journal ------------------------------------------------ */

/* txn_drop - abort c's uncommitted transaction. */
static void txn_drop(struct conn *c)
{
    queue_txn_abort(c->txn);
    c->txn = NULL;
    c->tail_taken = false;
}

/* conn_txn_check - drop a transaction the session has left (refused at its
 * end, RSET, filter reject, client gone, a BDAT over the size limit) or
 * that belongs to an older DATA or BDAT transaction. */
void conn_txn_check(struct conn *c)
{
    if (!c->txn || c->committing)
        return;
    if (sess_receiving(c->sess) && sess_data_phase(c->sess) == c->txn_phase)
        return;
    txn_drop(c);
}

/* space_wait - park c until the journal has buffer space again. */
static void space_wait(struct conn *c)
{
    struct worker *w = c->w;
    if (c->space_wait)
        return;
    c->space_wait = true;
    c->inflight++; /* held by the wait list */
    c->next_wait = NULL;
    if (w->wait_tail)
        w->wait_tail->next_wait = c;
    else
        w->wait_head = c;
    w->wait_tail = c;
}

/* conn_on_space - queue_space_fn: resume every parked connection. */
void conn_on_space(void *arg)
{
    struct worker *w = arg;
    struct conn *c = w->wait_head;
    w->wait_head = w->wait_tail = NULL;
    while (c) {
        struct conn *next = c->next_wait;
        c->space_wait = false;
        c->inflight--;
        if (c->closing)
            conn_maybe_free(c);
        else
            conn_after(c);
        c = next;
    }
}

/* txn_put - message bytes into c's transaction (begun on first use): 0, or
 * -EAGAIN when c must wait for space. A failed transaction swallows the
 * bytes: its commit reports the error. */
static int txn_put(struct conn *c, const char *p, size_t n)
{
    if (!c->txn) {
        c->txn = queue_txn_begin(c->w->q);
        if (!c->txn)
            die("worker %u: out of memory", c->w->idx);
        c->txn_phase = sess_data_phase(c->sess);
    }
    if (n == 0)
        return 0;
    if (queue_txn_append(c->txn, p, n) == -EAGAIN) {
        space_wait(c);
        return -EAGAIN;
    }
    return 0;
}

/* msg_done - the message's outcome: count it, tell the session. */
static void msg_done(struct conn *c, int err, const char *qid)
{
    struct worker *w = c->w;
    c->txn = NULL;
    c->tail_taken = false;
    conn_mres_drop(c);
    if (err) {
        STAT_ADD(w->st.spool_errors, 1);
        fprintf(stderr, "mxringd: worker %u: message not queued: %s\n", w->idx, strerror(err));
    } else {
        STAT_ADD(w->st.messages, 1);
    }
    sess_spool_done(c->sess, err, qid);
    sess_input(c->sess, NULL, 0); /* commands pipelined behind the data */
}

/* commit_done - queue_commit_fn: the commit is durable (250) or failed. */
static void commit_done(void *arg, int err, const char *qid)
{
    struct conn *c = arg;
    c->committing = false;
    c->inflight--;
    if (c->closing) {
        c->txn = NULL;
        sess_spool_done(c->sess, err, qid);
        conn_maybe_free(c);
        return;
    }
    msg_done(c, err, qid);
    conn_after(c);
}

/* milter_envelope - the message as the milters left it: their headers
 * above Received:, their deleted recipients gone (*kept: the new list,
 * malloc'ed). false on ENOMEM. */
static bool milter_envelope(const struct conn *c, struct sess_msg *m, char **kept)
{
    const struct milterio_result *r = c->mres;
    *kept = NULL;
    if (!r)
        return true;
    if (r->headers.len)
        m->add_headers = r->headers.data;
    if (!r->ndeleted)
        return true;
    size_t len = 0, n = 0;
    const char *p = m->rcpts;
    for (size_t i = 0; i < m->nrcpt; i++, p += strlen(p) + 1)
        len += strlen(p) + 1;
    if (!(*kept = malloc(len + 1)))
        return false;
    char *o = *kept;
    p = m->rcpts;
    for (size_t i = 0; i < m->nrcpt; i++, p += strlen(p) + 1)
        if (!r->rcpt_deleted[i])
            o = stpcpy(o, p) + 1, n++;
    m->rcpts = *kept;
    m->nrcpt = n;
    return true;
}

/* milter_edits - the milters' chgheader edits: the rewritten header
 * section (*sect, replacing *skip octets of the message), headers they add
 * joined to theirs. false: none (or not applicable: logged). */
static bool milter_edits(struct conn *c, struct sb *sect, uint64_t *skip)
{
    struct sb added = {0};
    const struct filter_src src = {.len = queue_txn_size(c->txn), .read = filter_read, .arg = c};
    bool edit = milterio_edit_head(c->mres, &src, sect, &added, skip, filter_log, c);
    if (edit && added.len && !sb_append(&c->mres->headers, added.data, added.len))
        edit = false, sb_reset(sect);
    sb_free(&added);
    return edit;
}

/* conn_discard - a milter discarded the message: 250, nothing queued. */
static void conn_discard(struct conn *c)
{
    char qid[64];
    snprintf(qid, sizeof qid, "%s", queue_txn_id(c->txn));
    sess_log(c->sess, "Message discarded: %s", c->mres->detail);
    queue_txn_abort(c->txn);
    msg_done(c, 0, qid);
}

/* conn_commit - append the commit record; true when its callback is due. */
static bool conn_commit(struct conn *c)
{
    struct sess_msg mm = *sess_msg(c->sess);
    const struct sess_msg *m = &mm;
    struct sb hdr = {0}, sect = {0};
    int err = ENOMEM;
    char *kept = NULL;
    uint64_t skip = 0;
    bool edit = milter_edits(c, &sect, &skip);
    if (edit)
        mm.body_len = mm.body_len - skip + sect.len;
    if (milter_envelope(c, &mm, &kept) &&
        spool_format_header(&hdr, m, queue_txn_id(c->txn), sess_snap(c->sess)->cfg->hostname,
                            queue_txn_time(c->txn)) &&
        (!edit || sb_append(&hdr, sect.data, sect.len))) {
        if (edit)
            queue_txn_set_skip(c->txn, skip); /* the edited section replaces the original */
        err = -queue_txn_commit(c->txn, hdr.data, hdr.len, m->quarantine != NULL, commit_done, c);
    } else {
        queue_txn_abort(c->txn);
    }
    sb_free(&hdr);
    sb_free(&sect);
    free(kept);
    conn_mres_drop(c);
    if (err) {
        msg_done(c, err, NULL);
        return false;
    }
    c->committing = true;
    c->inflight++;
    return true;
}

/* conn_tail - the session's last chunk into the transaction (once). */
static bool conn_tail(struct conn *c)
{
    if (c->tail_taken)
        return true;
    const struct sess_msg *m = sess_msg(c->sess);
    if (txn_put(c, m->tail, m->tail_len) < 0)
        return false;
    c->tail_taken = true;
    return true;
}

/* conn_message_step - one step of the message for action a (CHUNK, FILTER
 * or SPOOL): a chunk into the journal, the filters begun, or the commit.
 * True when the session moved on (look at its action again), false when c
 * must wait (journal space, the filters' verdict, the commit). */
bool conn_message_step(struct conn *c, enum sess_action a)
{
    if (a == SESS_CHUNK) {
        size_t n;
        const char *p = sess_chunk(c->sess, &n);
        if (txn_put(c, p, n) < 0)
            return false;
        sess_chunk_done(c->sess);
        sess_input(c->sess, NULL, 0);
        return true;
    }
    if (a == SESS_FILTER && !c->filtering) {
        if (!conn_tail(c))
            return false;
        filter_begin(c); /* may decide at once */
        return true;
    }
    if (a == SESS_SPOOL && !c->committing && c->mres && c->mres->v == MILTERIO_DISCARD) {
        if (!conn_tail(c))
            return false;
        conn_discard(c);
        return true;
    }
    if (a == SESS_SPOOL && !c->committing)
        return conn_tail(c) && !conn_commit(c); /* a commit that failed at once moved on */
    return false;
}
