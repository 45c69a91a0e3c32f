/* milterio_conv.c - one milter's conversation in a session (milterio_int.h),
 * on the worker's io_uring ring: connect (or an idle connection from the
 * worker's pool), option negotiation, the stages of a job and their
 * packets (macros, the message's headers and body read back from the
 * journal), completions and timeouts, failure and the default action.
 * Worker thread only; nothing blocks.
 *
 * Operations: one connect, send or recv at a time, each with a linked
 * timeout (IOSQE_IO_LINK + link_timeout) up to the stage's deadline, and
 * the close of a failed one; `pending` counts every CQE still due (an
 * operation and its link timeout each give one). SMFIR_PROGRESS moves the
 * deadline. The message: its header section (at most MILTERIO_HDR_MAX
 * octets of it) is read once for the header stage and freed after it; the
 * body is read in MILTER_CHUNK_MAX pieces, one at a time. */
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

static void conv_connect(struct mconv *r);

/* mconv_name - the milter's name. */
const char *mconv_name(const struct mconv *r)
{
    return r->ms->milters[r->k].name;
}

/* mconv_stage_name - the current stage for the log. */
const char *mconv_stage_name(const struct mconv *r)
{
    return r->stage < 0 ? "negotiation" : milter_stage_name((enum milter_stage)r->stage);
}

/* mconv_fail - the conversation failed (the first reason is kept). */
void mconv_fail(struct mconv *r, const char *fmt, ...)
{
    if (r->failed)
        return;
    r->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
}

/* ---- operations ---------------------------------------------------------- */

/* op_arm - sqe (prepared) with a link timeout up to the deadline. */
static void op_arm(struct mconv *r, struct io_uring_sqe *sqe, enum m_step step)
{
    uint64_t now = mio_now_ms();
    uint64_t left = r->deadline_ms > now ? r->deadline_ms - now : 1;
    io_uring_sqe_set_data64(sqe, uring_cb_data(&r->op_cb));
    sqe->flags |= IOSQE_IO_LINK;
    uring_ms_to_ts(&r->ts, left);
    struct io_uring_sqe *lt = uring_get_sqe(r->ms->ring);
    io_uring_prep_link_timeout(lt, &r->ts, 0);
    io_uring_sqe_set_data64(lt, uring_cb_data(&r->lt_cb));
    r->step = step;
    r->pending += 2;
}

/* conv_send - send (the rest of) r->out. */
static void conv_send(struct mconv *r)
{
    struct io_uring_sqe *sqe = uring_get_sqe(r->ms->ring);
    io_uring_prep_send(sqe, r->fd, r->out.data + r->out_off, r->out.len - r->out_off, MSG_NOSIGNAL);
    op_arm(r, sqe, M_SEND);
}

/* mconv_recv - read (more of) the milter's replies. */
void mconv_recv(struct mconv *r)
{
    struct io_uring_sqe *sqe = uring_get_sqe(r->ms->ring);
    io_uring_prep_recv(sqe, r->fd, r->rbuf, sizeof r->rbuf, 0);
    op_arm(r, sqe, M_RECV);
}

/* mconv_close - close the conversation's socket (it is dead or over). */
void mconv_close(struct mconv *r)
{
    r->step = M_CLOSE;
    r->open = false;
    if (r->fd >= 0) {
        struct io_uring_sqe *sqe = uring_get_sqe(r->ms->ring);
        io_uring_prep_close(sqe, r->fd);
        io_uring_sqe_set_data64(sqe, uring_cb_data(&r->close_cb));
        r->fd = -1;
        r->pending++;
    }
}

/* conv_out - send r->out: at once when the socket takes all of it (a
 * non-blocking send(): no operation, no timeout to arm and cancel, the
 * common case for a command's few octets), else the rest as an operation
 * with its link timeout. true when all of it went out at once; false when
 * the operation is armed or the conversation failed (mconv_over ran). */
static bool conv_out(struct mconv *r, bool reply_due, unsigned timeout_ms)
{
    r->want_reply = reply_due;
    r->stage_ms = timeout_ms;
    r->deadline_ms = mio_now_ms() + timeout_ms;
    r->out_off = 0;
    if (!r->out.len)
        return true;
    ssize_t n = send(r->fd, r->out.data, r->out.len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        mconv_fail(r, "send: %s", strerror(errno));
        mconv_over(r);
        return false;
    }
    r->out_off = n > 0 ? (size_t)n : 0;
    if (r->out_off == r->out.len)
        return true;
    conv_send(r);
    return false;
}

/* ---- the message --------------------------------------------------------- */

/* msg_headers - read the header section into r->hdr; false on failure. */
static bool msg_headers(struct mconv *r)
{
    size_t n = r->ms->src.len < MILTERIO_HDR_MAX ? r->ms->src.len : MILTERIO_HDR_MAX;
    r->hdr = malloc(n + 1);
    if (!r->hdr || filter_src_fill(&r->ms->src, 0, r->hdr, n) < 0) {
        mconv_fail(r, "message read failed");
        return false;
    }
    r->hdr[n] = 0;
    if (n >= 2 && r->hdr[0] == '\r' && r->hdr[1] == '\n') {
        r->hdr_len = 0, r->body_off = 2;
        return true;
    }
    char *e = memmem(r->hdr, n, "\r\n\r\n", 4);
    r->hdr_len = e ? (size_t)(e - r->hdr) + 2 : n;
    r->body_off = e ? r->hdr_len + 2 : n;
    return true;
}

/* next_header - the header at r->hdr[*off..]: name, value (folds kept,
 * one leading blank dropped) as packets into r->out; false at the end. */
static bool next_header(struct mconv *r, size_t *off)
{
    while (*off < r->hdr_len) {
        const char *p = r->hdr + *off, *end = r->hdr + r->hdr_len, *q = p;
        while (q < end) { /* the header ends at a CRLF not followed by a blank */
            const char *lf = memchr(q, '\n', (size_t)(end - q));
            q = lf ? lf + 1 : end;
            if (q >= end || (*q != ' ' && *q != '\t'))
                break;
        }
        *off = (size_t)(q - r->hdr);
        const char *colon = memchr(p, ':', (size_t)(q - p));
        size_t vlen = (size_t)(q - p);
        if (!colon || colon == p)
            continue; /* not a header line: nothing to say about it */
        const char *v = colon + 1;
        if (v < q && (*v == ' ' || *v == '\t'))
            v++;
        vlen = (size_t)(q - v);
        if (vlen >= 2 && v[vlen - 2] == '\r')
            vlen -= 2;
        else if (vlen >= 1 && v[vlen - 1] == '\n')
            vlen -= 1;
        if (!milter_put_header(&r->out, p, (size_t)(colon - p), v, vlen))
            mconv_fail(r, "out of memory");
        return true;
    }
    return false;
}

/* ---- stages -------------------------------------------------------------- */

/* put_macros - the macros of stage st into r->out. The queue id (i) is
 * made with the journal transaction, after the 354: the DATA stage said at
 * the DATA command has none, so it goes with end of headers and end of
 * message (no empty SMFIC_MACRO without it). */
static void put_macros(struct mconv *r, enum milter_stage st)
{
    const struct sess_msg *m = r->ms->m;
    char port[8], under[300], mail[600];
    snprintf(port, sizeof port, "%u", m->client_port);
    snprintf(under, sizeof under, "%s [%s]", m->helo && m->helo[0] ? m->helo : "unknown",
             m->client_ip);
    snprintf(mail, sizeof mail, "%s", m->sender);
    const char *const cn[] = {
        "j", "{daemon_name}", "_", "{client_addr}", "{client_port}", "{client_name}"};
    const char *const cv[] = {r->ms->hostname, "mxringd", under, m->client_ip, port, "unknown"};
    const char *const hn[] = {"{tls_version}", "{cipher}"};
    const char *const hv[] = {m->tls_version, m->tls_cipher};
    const char *const mn[] = {"i", "{auth_authen}", "{mail_addr}"};
    const char *const mv[] = {r->ms->qid, m->auth_user, mail};
    const char *const in[] = {"i"};
    const char *const iv[] = {r->ms->qid};
    char cmd = milter_stage_cmd(st);
    bool ok = true;
    if (st == MILTER_S_CONNECT)
        ok = milter_put_macros(&r->out, cmd, cn, cv, MX_ARRAY_LEN(cn));
    else if (st == MILTER_S_HELO)
        ok = milter_put_macros(&r->out, cmd, hn, hv, MX_ARRAY_LEN(hn));
    else if (st == MILTER_S_MAIL)
        ok = milter_put_macros(&r->out, cmd, mn, mv, MX_ARRAY_LEN(mn));
    else if ((st == MILTER_S_DATA || st == MILTER_S_EOH || st == MILTER_S_EOM) && r->ms->qid)
        ok = milter_put_macros(&r->out, cmd, in, iv, MX_ARRAY_LEN(in));
    if (!ok)
        mconv_fail(r, "out of memory");
}

/* stage_packets - the packets of one step of stage st into r->out; false
 * when the stage has no (more) steps. */
static bool stage_packets(struct mconv *r, enum milter_stage st)
{
    const struct sess_msg *m = r->ms->m;
    char addr[600];
    const char *a[1] = {addr};
    switch (st) {
    case MILTER_S_CONNECT:
        if (r->item++)
            return false;
        put_macros(r, st);
        return milter_put_connect(&r->out, "unknown", strchr(m->client_ip, ':') ? '6' : '4',
                                  m->client_port, m->client_ip) ||
               (mconv_fail(r, "nomem"), 1);
    case MILTER_S_HELO:
        if (r->item++)
            return false;
        put_macros(r, st);
        snprintf(addr, sizeof addr, "%s", m->helo ? m->helo : "");
        return milter_put_strings(&r->out, MILTER_C_HELO, a, 1) || (mconv_fail(r, "nomem"), 1);
    case MILTER_S_MAIL:
    case MILTER_S_RCPT:
        if (st == MILTER_S_MAIL ? r->item > 0 : r->item >= m->nrcpt)
            return false;
        if (st == MILTER_S_MAIL)
            put_macros(r, st);
        snprintf(addr, sizeof addr, "<%s>",
                 st == MILTER_S_MAIL ? m->sender : mio_rcpt_at(m, r->item));
        if (st == MILTER_S_RCPT) {
            const char *rn[] = {"{rcpt_addr}"}, *rv[] = {addr + 1};
            addr[strlen(addr) - 1] = 0;
            milter_put_macros(&r->out, MILTER_C_RCPT, rn, rv, 1);
            addr[strlen(addr)] = '>';
        }
        r->item++;
        return milter_put_strings(&r->out, milter_stage_cmd(st), a, 1) ||
               (mconv_fail(r, "nomem"), 1);
    case MILTER_S_HEADER:
        if (!r->hdr && !msg_headers(r))
            return true; /* failed: the caller sees r->failed */
        return next_header(r, &r->item);
    case MILTER_S_BODY: {
        size_t off = r->body_off + r->item;
        if (r->skip_body || off >= r->ms->src.len)
            return false;
        size_t n =
            r->ms->src.len - off < MILTER_CHUNK_MAX ? r->ms->src.len - off : MILTER_CHUNK_MAX;
        uint8_t *buf = malloc(n);
        if (!buf || filter_src_fill(&r->ms->src, off, buf, n) < 0 ||
            !milter_put(&r->out, MILTER_C_BODY, buf, n))
            mconv_fail(r, "message read failed");
        free(buf);
        r->item += n;
        return true;
    }
    default: /* DATA, EOH, EOM: one command */
        if (r->item++)
            return false;
        put_macros(r, st);
        return milter_put(&r->out, milter_stage_cmd(st), NULL, 0) || (mconv_fail(r, "nomem"), 1);
    }
}

/* mconv_done - this milter's part of the job is over (its conversation
 * stays open): the next milter. */
void mconv_done(struct mconv *r)
{
    struct milterio_sess *ms = r->ms;
    if (r->nheaders || r->nchunks)
        filter_logf(ms->log, ms->arg, "milter %s: continue to %u header(s), %u body chunk(s)",
                    mconv_name(r), r->nheaders, r->nchunks);
    r->nheaders = r->nchunks = 0;
    if (r->stage >= MILTER_S_EOM)
        r->txn_open = false; /* the message is over for the milter */
    free(r->hdr);
    r->hdr = NULL;
    r->step = M_IDLE;
    ms->k++;
    mjob_next(ms);
}

/* conv_step_packets - the packets of the next step of this stage, or of
 * the next stage of the job the milter wants, into r->out (an ABORT due
 * goes ahead of the first); false when there is none (the milter's part is
 * done) or it failed: then mconv_done or mconv_over ran. */
static bool conv_step_packets(struct mconv *r)
{
    sb_reset(&r->out);
    if (r->abort_due && !milter_put(&r->out, MILTER_C_ABORT, NULL, 0))
        mconv_fail(r, "out of memory");
    size_t base = r->out.len;
    while (r->stage <= r->last && !r->failed) {
        if (r->stage >= 0 && !milter_stage_skipped((enum milter_stage)r->stage, r->proto) &&
            stage_packets(r, (enum milter_stage)r->stage) && r->out.len > base)
            break;
        if (r->stage == MILTER_S_HEADER) {
            free(r->hdr);
            r->hdr = NULL;
        }
        r->said_conn |= r->stage == MILTER_S_CONNECT;
        r->txn_open |= r->stage == MILTER_S_MAIL;
        r->stage++;
        r->item = 0;
    }
    if (r->failed) {
        mconv_over(r);
        return false;
    }
    if (r->stage > r->last) {
        r->stage = r->last;
        mconv_done(r);
        return false;
    }
    r->abort_due = r->endm = false;
    return true;
}

/* mconv_next_stage - the next step of this stage, or the next stage of the
 * job the milter wants; an ABORT due goes ahead of the first packet. */
void mconv_next_stage(struct mconv *r)
{
    for (;;) { /* steps the milter sends no reply to follow each other here */
        if (!conv_step_packets(r))
            return;
        enum milter_stage st = (enum milter_stage)r->stage;
        bool content = st >= MILTER_S_HEADER;
        if (!conv_out(r, !milter_stage_noreply(st, r->proto),
                      content ? r->ms->content_ms : r->ms->command_ms))
            return;
        if (r->want_reply) {
            mconv_recv(r);
            return;
        }
    }
}

/* ---- completions --------------------------------------------------------- */

/* conv_step_done - the connect, a send or a recv completed with res. */
static void conv_step_done(struct mconv *r, int res)
{
    if (r->step == M_CONNECT && res < 0) {
        mconv_fail(r, "connect to %s: %s", r->ms->milters[r->k].sock.text, strerror(-res));
    } else if (r->step == M_CONNECT) {
        sb_reset(&r->out);
        if (!milter_put_optneg(&r->out, MILTER_ACTIONS_OFFERED, MILTER_PROTO_OFFERED))
            mconv_fail(r, "out of memory");
        else if (conv_out(r, true, r->ms->connect_ms))
            mconv_recv(r);
    } else if (r->step == M_SEND && res <= 0) {
        mconv_fail(r, "send: %s", res ? strerror(-res) : "nothing sent");
    } else if (r->step == M_SEND) {
        r->out_off += (size_t)res;
        if (r->out_off < r->out.len)
            conv_send(r);
        else if (r->want_reply)
            mconv_recv(r);
        else
            mconv_next_stage(r);
    } else if (res <= 0) {
        mconv_fail(r, "%s", res ? strerror(-res) : "the milter closed the connection");
    } else {
        mconv_received(r, (size_t)res);
    }
    if (r->failed && r->step != M_CLOSE)
        mconv_over(r);
}

/* on_op - completion of the connect, a send or a recv. */
static void on_op(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    struct mconv *r = (struct mconv *)cb;
    struct milterio_sess *ms = r->ms;
    ms->depth++;
    r->pending--;
    if (cqe->res == -ECANCELED) {
        unsigned ms_ = r->stage < 0 ? ms->connect_ms : r->stage_ms;
        mconv_fail(r, "timeout after %u ms", ms_);
        mconv_over(r);
    } else {
        conv_step_done(r, cqe->res);
    }
    ms->depth--;
    mjob_maybe_free(ms);
}

/* on_lt - the link timeout of an operation completed (fired or not). */
static void on_lt(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    (void)cqe;
    struct mconv *r = (struct mconv *)(void *)((char *)cb - offsetof(struct mconv, lt_cb));
    r->pending--;
    mjob_maybe_free(r->ms);
}

/* on_close - the conversation's socket is closed. */
static void on_close(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    (void)cqe;
    struct mconv *r = (struct mconv *)(void *)((char *)cb - offsetof(struct mconv, close_cb));
    r->pending--;
    mjob_maybe_free(r->ms);
}

void mconv_over(struct mconv *r)
{
    struct milterio_sess *ms = r->ms;
    if (r->step == M_CLOSE)
        return;
    if (r->pooled) { /* the milter dropped it while idle: a new connection */
        filter_logf(ms->log, ms->arg, "milter %s: idle connection unusable (%s): connecting anew",
                    mconv_name(r), r->why);
        mconv_close(r);
        r->pooled = r->failed = false;
        r->said_conn = false;
        conv_connect(r);
        return;
    }
    filter_logf(ms->log, ms->arg, "milter %s: failed at %s: %s: %s (milter_default_action)",
                mconv_name(r), mconv_stage_name(r), r->why, mjob_action_word(ms->default_action));
    r->dead = true;
    if (ms->default_action != CFG_MILTER_ACCEPT && !ms->chain_over)
        mjob_default_refuse(r, r->why);
    mconv_close(r);
    free(r->hdr);
    r->hdr = NULL;
    ms->k++;
    mjob_next(ms);
}

/* conv_connect - open milter r->k's conversation: connect, then OPTNEG. */

static void conv_connect(struct mconv *r)
{
    const struct cfg_milter *mi = &r->ms->milters[r->k];
    milter_rd_free(&r->rd);
    r->stage = M_STAGE_OPTNEG;
    r->actions = r->proto = 0;
    r->stage_ms = r->ms->connect_ms;
    r->deadline_ms = mio_now_ms() + r->stage_ms;
    r->step = M_CONNECT;
    r->fd = socket(mi->sock.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r->fd < 0) {
        mconv_fail(r, "socket: %s", strerror(errno));
        mconv_over(r);
        return;
    }
    struct io_uring_sqe *sqe = uring_get_sqe(r->ms->ring);
    io_uring_prep_connect(sqe, r->fd, (const struct sockaddr *)&mi->sock.ss, mi->sock.len);
    op_arm(r, sqe, M_CONNECT);
}

/* conv_reuse - take an idle connection to milter r->k from the worker's
 * pool: negotiated already, it starts at the connect stage. */
static bool conv_reuse(struct mconv *r)
{
    struct mpool_conn pc;
    if (!mpool_take(&r->ms->milters[r->k].sock, mio_now_ms(), &pc))
        return false;
    milter_rd_free(&r->rd);
    r->fd = pc.fd;
    r->actions = pc.actions;
    r->proto = pc.proto;
    r->open = r->pooled = true;
    r->said_conn = false;
    return true;
}

/* mconv_begin - milter r->k's part of the job: its stages (from connect on
 * when the conversation is new). */
void mconv_begin(struct mconv *r)
{
    struct milterio_sess *ms = r->ms;
    r->last = ms->eom ? MILTER_S_EOM : ms->first;
    r->item = 0;
    r->failed = r->skip_body = false;
    r->nheaders = r->nchunks = 0;
    if (!r->open && !conv_reuse(r)) {
        r->said_conn = false;
        conv_connect(r);
        return;
    }
    r->stage = r->said_conn ? ms->first : MILTER_S_CONNECT;
    mconv_next_stage(r);
}
/* mconv_init - see milterio_int.h. */
void mconv_init(struct mconv *r, struct milterio_sess *ms, size_t k)
{
    r->op_cb.fn = on_op;
    r->lt_cb.fn = on_lt;
    r->close_cb.fn = on_close;
    r->ms = ms;
    r->k = k;
    r->fd = -1;
}
