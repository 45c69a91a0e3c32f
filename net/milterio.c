/* milterio.c - the milter conversations of one SMTP session (milterio.h),
 * on the worker's io_uring ring: one conversation per configured milter,
 * opened at the session's first HELO/EHLO and fed each command as it
 * happens; a job (one command, or the end of a message) walks the milters
 * in order, each through the job's stages, until a verdict ends it
 * (reject, tempfail, replycode; discard at end of message) or the last
 * milter is done. accept takes a milter out of the rest of the message
 * (or of the session, at connect or HELO). A milter that is down, times
 * out or breaks the protocol gets milter_default_action at that stage and
 * is not asked again in this session. Worker thread only; nothing blocks.
 *
 * Operations: one connect, send or recv at a time per conversation, each
 * with a linked timeout (IOSQE_IO_LINK + link_timeout) up to the stage's
 * deadline, and the close of a failed one; `pending` counts every CQE
 * still due (an operation and its link timeout each give one). The
 * session's memory goes only when every conversation's pending is 0.
 * SMFIR_PROGRESS moves the deadline.
 *
 * The message: its header section (at most MILTERIO_HDR_MAX octets of it)
 * is read once into a buffer for the header stage and freed after it; the
 * body is read in MILTER_CHUNK_MAX pieces, one at a time. */
#include "milterio.h"
#include "reply.h" /* before liburing.h: unistd.h's R_OK macro */

#include <errno.h>
#include <liburing.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "config.h"
#include "milter.h"
#include "milterio_pool.h"
#include "session.h"
#include "uring.h"

#define MILTERIO_HDR_MAX (256u * 1024u) /* header section octets looked at */
#define MILTERIO_RBUF 8192u
#define MILTERIO_WHY_MAX 200u

enum m_step { M_IDLE = 0, M_CONNECT, M_SEND, M_RECV, M_CLOSE };
/* stages before MILTER_S_CONNECT: negotiation */
enum { M_STAGE_OPTNEG = -1 };

struct milterio_sess;

/* One milter's conversation in the session. */
struct mconv {
    struct uring_cb op_cb; /* connect, send or recv; first member */
    struct uring_cb lt_cb; /* its link timeout */
    struct uring_cb close_cb;
    struct milterio_sess *ms;
    size_t k; /* milter index */
    int fd;
    unsigned pending;
    enum m_step step;
    bool open;      /* negotiated: commands may be sent */
    bool dead;      /* failed: the default action stands for the session */
    bool out_sess;  /* accepted at connect or HELO: out of the session */
    bool out_txn;   /* accepted in the message: out of it */
    bool said_conn; /* the connect stage is behind */
    bool txn_open;  /* MAIL said since the last end of message or ABORT */
    bool abort_due; /* SMFIC_ABORT goes ahead of the next packets */
    bool endm;      /* the milter is at end of message: QUIT_NC may end it */
    bool pooled;    /* an idle connection reused, its first exchange not done */
    int stage;      /* M_STAGE_OPTNEG or enum milter_stage */
    int last;       /* the job's last stage for this milter */
    size_t item;    /* recipient, header offset or body offset in the stage */
    bool want_reply;
    bool skip_body;
    uint32_t actions, proto;
    uint64_t deadline_ms;
    unsigned stage_ms;
    bool failed;
    char why[MILTERIO_WHY_MAX];
    struct sb out;
    size_t out_off;
    struct milter_rd rd;
    char *hdr;                  /* the header section (header stage only) */
    size_t hdr_len, body_off;   /* octets of it; where the body starts */
    unsigned nheaders, nchunks; /* continues not logged one by one */
    struct __kernel_timespec ts;
    uint8_t rbuf[MILTERIO_RBUF];
};

struct milterio_sess {
    struct io_uring *ring;
    filter_log_fn log;
    milterio_done_fn done;
    void *arg;
    char hostname[256];
    unsigned connect_ms, command_ms, content_ms, default_action;
    struct cfg_milter *milters; /* copied */
    struct mconv *cv;
    size_t n;
    bool ended;
    unsigned depth; /* inside a completion or a call: not freed yet */
    char discard_why[512];
    bool discard;   /* a milter discarded the message at MAIL or RCPT */
    bool discard_s; /* ... or every message, at connect or HELO */
    /* the job */
    bool busy;
    bool eom;
    int first; /* its first stage */
    size_t k;  /* the milter at work */
    const struct sess_msg *m;
    const char *qid;
    struct filter_src src;
    struct milterio_result res;
    bool chain_over; /* a verdict ended the job */
    char *quar;
};

static void conv_next_stage(struct mconv *r);
static void conv_over(struct mconv *r);
static void conv_connect(struct mconv *r);
static void job_next(struct milterio_sess *ms);
static void sess_maybe_free(struct milterio_sess *ms);

/* now_ms - monotonic milliseconds. */
static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* name - the milter's name. */
static const char *name(const struct mconv *r)
{
    return r->ms->milters[r->k].name;
}

/* stage_name - the current stage for the log. */
static const char *stage_name(const struct mconv *r)
{
    return r->stage < 0 ? "negotiation" : milter_stage_name((enum milter_stage)r->stage);
}

/* conv_fail - the conversation failed (the first reason is kept). */
static void conv_fail(struct mconv *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conv_fail(struct mconv *r, const char *fmt, ...)
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
    uint64_t now = now_ms();
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

/* conv_recv - read (more of) the milter's replies. */
static void conv_recv(struct mconv *r)
{
    struct io_uring_sqe *sqe = uring_get_sqe(r->ms->ring);
    io_uring_prep_recv(sqe, r->fd, r->rbuf, sizeof r->rbuf, 0);
    op_arm(r, sqe, M_RECV);
}

/* conv_close - close the conversation's socket (it is dead or over). */
static void conv_close(struct mconv *r)
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

/* conv_flush - packets in r->out: send them, then wait for a reply if one
 * is due, else go on. */
static void conv_flush(struct mconv *r, bool reply_due, unsigned timeout_ms)
{
    r->want_reply = reply_due;
    r->stage_ms = timeout_ms;
    r->deadline_ms = now_ms() + timeout_ms;
    r->out_off = 0;
    if (r->out.len)
        conv_send(r);
    else if (reply_due)
        conv_recv(r);
    else
        conv_next_stage(r);
}

/* ---- the message --------------------------------------------------------- */

/* msg_headers - read the header section into r->hdr; false on failure. */
static bool msg_headers(struct mconv *r)
{
    size_t n = r->ms->src.len < MILTERIO_HDR_MAX ? r->ms->src.len : MILTERIO_HDR_MAX;
    r->hdr = malloc(n + 1);
    if (!r->hdr || filter_src_fill(&r->ms->src, 0, r->hdr, n) < 0) {
        conv_fail(r, "message read failed");
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
            conv_fail(r, "out of memory");
        return true;
    }
    return false;
}

/* ---- stages -------------------------------------------------------------- */

/* put_macros - the macros of stage st into r->out. */
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
    else if (st == MILTER_S_DATA || st == MILTER_S_EOM)
        ok = milter_put_macros(&r->out, cmd, in, iv, MX_ARRAY_LEN(in));
    if (!ok)
        conv_fail(r, "out of memory");
}

/* rcpt_at - recipient i of the message. */
static const char *rcpt_at(const struct sess_msg *m, size_t i)
{
    const char *p = m->rcpts;
    while (i--)
        p += strlen(p) + 1;
    return p;
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
               (conv_fail(r, "nomem"), 1);
    case MILTER_S_HELO:
        if (r->item++)
            return false;
        put_macros(r, st);
        snprintf(addr, sizeof addr, "%s", m->helo ? m->helo : "");
        return milter_put_strings(&r->out, MILTER_C_HELO, a, 1) || (conv_fail(r, "nomem"), 1);
    case MILTER_S_MAIL:
    case MILTER_S_RCPT:
        if (st == MILTER_S_MAIL ? r->item > 0 : r->item >= m->nrcpt)
            return false;
        if (st == MILTER_S_MAIL)
            put_macros(r, st);
        snprintf(addr, sizeof addr, "<%s>", st == MILTER_S_MAIL ? m->sender : rcpt_at(m, r->item));
        if (st == MILTER_S_RCPT) {
            const char *rn[] = {"{rcpt_addr}"}, *rv[] = {addr + 1};
            addr[strlen(addr) - 1] = 0;
            milter_put_macros(&r->out, MILTER_C_RCPT, rn, rv, 1);
            addr[strlen(addr)] = '>';
        }
        r->item++;
        return milter_put_strings(&r->out, milter_stage_cmd(st), a, 1) ||
               (conv_fail(r, "nomem"), 1);
    case MILTER_S_HEADER:
        if (!r->hdr && !msg_headers(r))
            return true; /* failed: conv_flush never runs */
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
            conv_fail(r, "message read failed");
        free(buf);
        r->item += n;
        return true;
    }
    default: /* DATA, EOH, EOM: one command */
        if (r->item++)
            return false;
        put_macros(r, st);
        return milter_put(&r->out, milter_stage_cmd(st), NULL, 0) || (conv_fail(r, "nomem"), 1);
    }
}

/* conv_done - this milter's part of the job is over (its conversation
 * stays open): the next milter. */
static void conv_done(struct mconv *r)
{
    struct milterio_sess *ms = r->ms;
    if (r->nheaders || r->nchunks)
        filter_logf(ms->log, ms->arg, "milter %s: continue to %u header(s), %u body chunk(s)",
                    name(r), r->nheaders, r->nchunks);
    r->nheaders = r->nchunks = 0;
    if (r->stage >= MILTER_S_EOM)
        r->txn_open = false; /* the message is over for the milter */
    free(r->hdr);
    r->hdr = NULL;
    r->step = M_IDLE;
    ms->k++;
    job_next(ms);
}

/* conv_next_stage - the next step of this stage, or the next stage of the
 * job the milter wants; an ABORT due goes ahead of the first packet. */
static void conv_next_stage(struct mconv *r)
{
    sb_reset(&r->out);
    if (r->abort_due && !milter_put(&r->out, MILTER_C_ABORT, NULL, 0))
        conv_fail(r, "out of memory");
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
        conv_over(r);
        return;
    }
    if (r->stage > r->last) {
        r->stage = r->last;
        conv_done(r);
        return;
    }
    r->abort_due = r->endm = false;
    enum milter_stage st = (enum milter_stage)r->stage;
    bool content = st >= MILTER_S_HEADER;
    conv_flush(r, !milter_stage_noreply(st, r->proto),
               content ? r->ms->content_ms : r->ms->command_ms);
}

/* ---- replies ------------------------------------------------------------- */

enum { R_MORE = 0, R_GO_ON, R_OVER };

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
        snprintf(d, sizeof ms->res.detail, "milter %s: %s %u%s%s \"%.*s\" at %s", name(r), word,
                 c.code, c.ext[0] ? " " : "", c.ext, (int)c.text_len, c.text, stage_name(r));
    else
        snprintf(d, sizeof ms->res.detail, "milter %s: %s at %s", name(r), word, stage_name(r));
    filter_logf(ms->log, ms->arg, "%s", d);
    return R_OVER;
}

/* discard_cmd - discard at a command: the message (or, at connect or
 * HELO, every message of the session) is dropped at its end; the command
 * itself goes on. */
static int discard_cmd(struct mconv *r)
{
    struct milterio_sess *ms = r->ms;
    filter_logf(ms->log, ms->arg, "milter %s: discard at %s", name(r), stage_name(r));
    if (r->stage <= MILTER_S_HELO)
        ms->discard_s = true;
    else
        ms->discard = true;
    snprintf(ms->discard_why, sizeof ms->discard_why, "milter %s: discard at %s", name(r),
             stage_name(r));
    ms->chain_over = true; /* no other milter needs to see it */
    return R_OVER;
}

/* accept - the milter is out of the rest of the message (or session). */
static int accept_verdict(struct mconv *r)
{
    filter_logf(r->ms->log, r->ms->arg, "milter %s: accept at %s", name(r), stage_name(r));
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
        conv_fail(r, "out of memory");
        return;
    }
    if (top && sb_append(&line, r->ms->res.headers.data ? r->ms->res.headers.data : "",
                         r->ms->res.headers.len)) {
        sb_free(&r->ms->res.headers);
        r->ms->res.headers = line;
        line = (struct sb){0};
    } else if (!sb_append(&r->ms->res.headers, line.data, line.len)) {
        conv_fail(r, "out of memory");
    }
    sb_free(&line);
    filter_logf(r->ms->log, r->ms->arg, "milter %s: %s %s", name(r),
                top ? "insheader" : "addheader", rep->name);
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
        conv_fail(r, "out of memory");
        return;
    }
    for (size_t i = 0; i < m->nrcpt; i++) {
        const char *a = rcpt_at(m, i);
        if (strlen(a) == n && strncasecmp(a, text, n) == 0 && !r->ms->res.rcpt_deleted[i]) {
            r->ms->res.rcpt_deleted[i] = true;
            r->ms->res.ndeleted++;
            filter_logf(r->ms->log, r->ms->arg, "milter %s: delrcpt <%s>", name(r), a);
            return;
        }
    }
    filter_logf(r->ms->log, r->ms->arg, "milter %s: delrcpt <%.*s>: no such recipient", name(r),
                (int)n, text);
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
        conv_fail(r, "action '%c' not allowed at %s", rep->cmd, stage_name(r));
        return R_OVER;
    }
    if (rep->cmd == MILTER_R_ADDHEADER || rep->cmd == MILTER_R_INSHEADER)
        add_header(r, rep, rep->cmd == MILTER_R_INSHEADER && rep->index <= 1);
    else if (rep->cmd == MILTER_R_CHGHEADER)
        filter_logf(r->ms->log, r->ms->arg,
                    "milter %s: chgheader %s[%u]: not applied (the message's "
                    "own headers are not rewritten)",
                    name(r), rep->name, rep->index);
    else if (rep->cmd == MILTER_R_DELRCPT)
        del_rcpt(r, rep->text);
    else if (!r->ms->quar && (r->ms->quar = strdup(rep->text)))
        filter_logf(r->ms->log, r->ms->arg, "milter %s: quarantine \"%s\"", name(r), rep->text);
    return r->failed ? R_OVER : R_MORE;
}

/* on_optneg - the milter's options: the actions and steps it takes. */
static int on_optneg(struct mconv *r, const struct milter_reply *rep)
{
    if (rep->cmd != MILTER_R_OPTNEG || rep->version < 2) {
        conv_fail(r, "bad option negotiation reply");
        return R_OVER;
    }
    if (rep->actions & ~(uint32_t)MILTER_ACTIONS_OFFERED)
        filter_logf(r->ms->log, r->ms->arg, "milter %s: actions 0x%x not offered, refused", name(r),
                    rep->actions & ~(uint32_t)MILTER_ACTIONS_OFFERED);
    r->actions = rep->actions & MILTER_ACTIONS_OFFERED;
    r->proto = rep->proto & MILTER_PROTO_OFFERED;
    r->open = true;
    r->stage = MILTER_S_CONNECT;
    r->item = 0;
    return R_GO_ON;
}

/* on_reply - one reply of the milter at the current stage. */
static int on_reply(struct mconv *r, const struct milter_reply *rep)
{
    r->pooled = false; /* a reused connection answered: it is alive */
    if (r->stage < 0)
        return on_optneg(r, rep);
    switch (rep->cmd) {
    case MILTER_R_PROGRESS: r->deadline_ms = now_ms() + r->stage_ms; return R_MORE;
    case MILTER_R_CONTINUE:
        if (r->stage == MILTER_S_EOM) {
            filter_logf(r->ms->log, r->ms->arg, "milter %s: continue at end of message", name(r));
            r->endm = true; /* libmilter's ST_ENDM: QUIT_NC is allowed */
            return R_OVER;
        }
        r->nheaders += r->stage == MILTER_S_HEADER;
        r->nchunks += r->stage == MILTER_S_BODY;
        if (r->stage != MILTER_S_HEADER && r->stage != MILTER_S_BODY)
            filter_logf(r->ms->log, r->ms->arg, "milter %s: continue at %s", name(r),
                        stage_name(r));
        return R_GO_ON;
    case MILTER_R_SKIP:
        r->skip_body = true;
        filter_logf(r->ms->log, r->ms->arg, "milter %s: skip at %s", name(r), stage_name(r));
        return R_GO_ON;
    case MILTER_R_ACCEPT: return accept_verdict(r);
    case MILTER_R_REJECT: return refuse(r, MILTERIO_REJECT, "reject", NULL);
    case MILTER_R_TEMPFAIL: return refuse(r, MILTERIO_TEMPFAIL, "tempfail", NULL);
    case MILTER_R_DISCARD:
        if (r->stage < MILTER_S_DATA)
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
    default: conv_fail(r, "unexpected reply '%c'", rep->cmd); return R_OVER;
    }
}

/* conv_received - n octets of replies in r->rbuf. */
static void conv_received(struct mconv *r, size_t n)
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
            act = on_reply(r, &rep);
        else if (st != MILTER_RD_MORE)
            break;
    }
    if (st > MILTER_RD_REPLY)
        conv_fail(r, "%s", milter_rd_status_name(st));
    else if (act != R_MORE && off < n)
        conv_fail(r, "more replies than commands");
    if (r->failed)
        conv_over(r);
    else if (act == R_OVER)
        conv_done(r);
    else if (act == R_GO_ON)
        conv_next_stage(r);
    else
        conv_recv(r);
}

/* ---- completions --------------------------------------------------------- */

/* conv_step_done - the connect, a send or a recv completed with res. */
static void conv_step_done(struct mconv *r, int res)
{
    if (r->step == M_CONNECT && res < 0) {
        conv_fail(r, "connect to %s: %s", r->ms->milters[r->k].sock.text, strerror(-res));
    } else if (r->step == M_CONNECT) {
        sb_reset(&r->out);
        if (!milter_put_optneg(&r->out, MILTER_ACTIONS_OFFERED, MILTER_PROTO_OFFERED))
            conv_fail(r, "out of memory");
        else
            conv_flush(r, true, r->ms->connect_ms);
    } else if (r->step == M_SEND && res <= 0) {
        conv_fail(r, "send: %s", res ? strerror(-res) : "nothing sent");
    } else if (r->step == M_SEND) {
        r->out_off += (size_t)res;
        if (r->out_off < r->out.len)
            conv_send(r);
        else if (r->want_reply)
            conv_recv(r);
        else
            conv_next_stage(r);
    } else if (res <= 0) {
        conv_fail(r, "%s", res ? strerror(-res) : "the milter closed the connection");
    } else {
        conv_received(r, (size_t)res);
    }
    if (r->failed && r->step != M_CLOSE)
        conv_over(r);
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
        conv_fail(r, "timeout after %u ms", ms_);
        conv_over(r);
    } else {
        conv_step_done(r, cqe->res);
    }
    ms->depth--;
    sess_maybe_free(ms);
}

/* on_lt - the link timeout of an operation completed (fired or not). */
static void on_lt(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    (void)cqe;
    struct mconv *r = (struct mconv *)(void *)((char *)cb - offsetof(struct mconv, lt_cb));
    r->pending--;
    sess_maybe_free(r->ms);
}

/* on_close - the conversation's socket is closed. */
static void on_close(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    (void)cqe;
    struct mconv *r = (struct mconv *)(void *)((char *)cb - offsetof(struct mconv, close_cb));
    r->pending--;
    sess_maybe_free(r->ms);
}

/* ---- jobs ---------------------------------------------------------------- */

/* default_refuse - milter_default_action (tempfail or reject) ends the
 * job, for the milter that failed or is down. */
static void default_refuse(struct mconv *r, const char *why)
{
    struct milterio_sess *ms = r->ms;
    bool rej = ms->default_action == CFG_MILTER_REJECT;
    ms->chain_over = true;
    ms->res.v = rej ? MILTERIO_REJECT : MILTERIO_TEMPFAIL;
    ms->res.session_wide = (r->stage < 0 ? ms->first : r->stage) <= MILTER_S_HELO;
    snprintf(ms->res.reply, sizeof ms->res.reply, "%s",
             reply_table[rej ? R_ERR_MILTER_REJECT : R_ERR_MILTER_TEMP].fmt);
    snprintf(ms->res.detail, sizeof ms->res.detail, "milter %s failed: %s", name(r), why);
}

/* action_word - milter_default_action for the log. */
static const char *action_word(unsigned a)
{
    return a == CFG_MILTER_ACCEPT ? "accept" : a == CFG_MILTER_REJECT ? "reject" : "tempfail";
}

/* conv_over - the conversation failed: milter_default_action at this
 * stage, the socket closed, the milter not asked again in this session. */
static void conv_over(struct mconv *r)
{
    struct milterio_sess *ms = r->ms;
    if (r->step == M_CLOSE)
        return;
    if (r->pooled) { /* the milter dropped it while idle: a new connection */
        filter_logf(ms->log, ms->arg, "milter %s: idle connection unusable (%s): connecting anew",
                    name(r), r->why);
        conv_close(r);
        r->pooled = r->failed = false;
        r->said_conn = false;
        conv_connect(r);
        return;
    }
    filter_logf(ms->log, ms->arg, "milter %s: failed at %s: %s: %s (milter_default_action)",
                name(r), stage_name(r), r->why, action_word(ms->default_action));
    r->dead = true;
    if (ms->default_action != CFG_MILTER_ACCEPT && !ms->chain_over)
        default_refuse(r, r->why);
    conv_close(r);
    free(r->hdr);
    r->hdr = NULL;
    ms->k++;
    job_next(ms);
}

/* conv_connect - open milter r->k's conversation: connect, then OPTNEG. */
static void conv_connect(struct mconv *r)
{
    const struct cfg_milter *mi = &r->ms->milters[r->k];
    milter_rd_free(&r->rd);
    r->stage = M_STAGE_OPTNEG;
    r->actions = r->proto = 0;
    r->stage_ms = r->ms->connect_ms;
    r->deadline_ms = now_ms() + r->stage_ms;
    r->step = M_CONNECT;
    r->fd = socket(mi->sock.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r->fd < 0) {
        conv_fail(r, "socket: %s", strerror(errno));
        conv_over(r);
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
    if (!mpool_take(&r->ms->milters[r->k].sock, now_ms(), &pc))
        return false;
    milter_rd_free(&r->rd);
    r->fd = pc.fd;
    r->actions = pc.actions;
    r->proto = pc.proto;
    r->open = r->pooled = true;
    r->said_conn = false;
    return true;
}

/* conv_begin - milter r->k's part of the job: its stages (from connect on
 * when the conversation is new). */
static void conv_begin(struct mconv *r)
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
    conv_next_stage(r);
}

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
    ms->done(ms->arg, res ? res : result_nomem());
}

/* job_next - milter ms->k's part of the job, or the next one it has; the
 * job ends at a verdict or after the last. */
static void job_next(struct milterio_sess *ms)
{
    while (!ms->chain_over && ms->k < ms->n) {
        struct mconv *r = &ms->cv[ms->k];
        if (r->out_sess || r->out_txn || (r->dead && ms->default_action == CFG_MILTER_ACCEPT)) {
            ms->k++;
            continue;
        }
        if (r->dead) {
            r->stage = ms->eom ? MILTER_S_DATA : ms->first;
            filter_logf(ms->log, ms->arg, "milter %s: unavailable at %s (failed earlier): %s",
                        name(r), stage_name(r), action_word(ms->default_action));
            default_refuse(r, "failed earlier in the session");
            break;
        }
        conv_begin(r);
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
    job_next(ms);
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
        struct mconv *r = &ms->cv[i];
        r->op_cb.fn = on_op;
        r->lt_cb.fn = on_lt;
        r->close_cb.fn = on_close;
        r->ms = ms;
        r->k = i;
        r->fd = -1;
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
 * ABORT goes ahead of it to every milter that saw the last one unended. */
void milterio_cmd(struct milterio_sess *ms, int st, const struct sess_msg *m)
{
    int stage = st == SESS_MS_RCPT   ? MILTER_S_RCPT
                : st == SESS_MS_MAIL ? MILTER_S_MAIL
                                     : MILTER_S_HELO;
    if (stage == MILTER_S_MAIL) {
        ms->discard = false;
        for (size_t i = 0; i < ms->n; i++) {
            ms->cv[i].out_txn = false;
            ms->cv[i].abort_due |= ms->cv[i].txn_open && ms->cv[i].open;
            ms->cv[i].txn_open = false;
        }
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
    job_start(ms, m, true, MILTER_S_DATA);
}

/* sess_maybe_free - an ended session goes once nothing is due. */
static void sess_maybe_free(struct milterio_sess *ms)
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
            mpool_put(&ms->milters[i].sock, now_ms(), &pc);
            r->fd = -1;
            continue;
        }
        if (r->fd >= 0 && r->open)
            (void)send(r->fd, "\0\0\0\1Q", 5, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r->fd >= 0)
            conv_close(r);
    }
    sess_maybe_free(ms);
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
