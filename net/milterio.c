/* milterio.c - the milter chain of one message (milterio.h), on the
 * worker's io_uring ring. One conversation at a time: milter k is
 * connected, negotiated and walked through the stages; its verdict either
 * ends the chain (reject, tempfail, replycode, discard) or lets it go on to
 * milter k+1 (accept, continue at end of message), its actions kept. A
 * milter that is down, times out or breaks the protocol gets
 * milter_default_action (accept = skip it, its actions dropped). Every
 * function runs on the worker thread; nothing here blocks.
 *
 * Operations: one connect, send or recv at a time, each with a linked
 * timeout (IOSQE_IO_LINK + link_timeout) up to the stage's deadline, and
 * the final close; `pending` counts every CQE still due (an operation and
 * its link timeout each give one). A conversation is over only when its
 * socket is closed and pending is 0. SMFIR_PROGRESS moves the deadline.
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
#include "session.h"
#include "uring.h"

#define MILTERIO_HDR_MAX (256u * 1024u) /* header section octets looked at */
#define MILTERIO_RBUF 8192u
#define MILTERIO_WHY_MAX 200u

enum m_step { M_CONNECT = 0, M_SEND, M_RECV, M_CLOSE };
/* stages before MILTER_S_CONNECT: negotiation */
enum { M_STAGE_OPTNEG = -1 };

struct mrun {
    struct uring_cb op_cb; /* connect, send or recv; first member */
    struct uring_cb lt_cb; /* its link timeout */
    struct uring_cb close_cb;
    struct io_uring *ring;
    const struct config *cfg;
    const struct sess_msg *m;
    const char *qid;
    struct filter_src src;
    filter_log_fn log;
    milterio_done_fn done;
    void *arg;
    struct milterio_result res;
    bool chain_over; /* a verdict ended the chain */
    /* the current conversation */
    size_t k; /* milter index */
    int fd;
    unsigned pending;
    bool op_armed;
    enum m_step step;
    int stage;   /* M_STAGE_OPTNEG or enum milter_stage */
    size_t item; /* recipient, header offset or body offset in the stage */
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
    char *hdr;                /* the header section (header stage only) */
    size_t hdr_len, body_off; /* octets of it; where the body starts */
    char *quar;
    unsigned nheaders, nchunks; /* continues not logged one by one */
    struct __kernel_timespec ts;
    uint8_t rbuf[MILTERIO_RBUF];
};

static void conv_next_stage(struct mrun *r);
static void conv_over(struct mrun *r);
static void run_next(struct mrun *r);

/* now_ms - monotonic milliseconds. */
static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* name - the current milter's name. */
static const char *name(const struct mrun *r)
{
    return r->cfg->milters[r->k].name;
}

/* stage_name - the current stage for the log. */
static const char *stage_name(const struct mrun *r)
{
    return r->stage < 0 ? "negotiation" : milter_stage_name((enum milter_stage)r->stage);
}

/* conv_fail - the conversation failed (the first reason is kept). */
static void conv_fail(struct mrun *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conv_fail(struct mrun *r, const char *fmt, ...)
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
static void op_arm(struct mrun *r, struct io_uring_sqe *sqe, enum m_step step)
{
    uint64_t now = now_ms();
    uint64_t left = r->deadline_ms > now ? r->deadline_ms - now : 1;
    io_uring_sqe_set_data64(sqe, uring_cb_data(&r->op_cb));
    sqe->flags |= IOSQE_IO_LINK;
    uring_ms_to_ts(&r->ts, left);
    struct io_uring_sqe *lt = uring_get_sqe(r->ring);
    io_uring_prep_link_timeout(lt, &r->ts, 0);
    io_uring_sqe_set_data64(lt, uring_cb_data(&r->lt_cb));
    r->step = step;
    r->op_armed = true;
    r->pending += 2;
}

/* conv_send - send (the rest of) r->out. */
static void conv_send(struct mrun *r)
{
    struct io_uring_sqe *sqe = uring_get_sqe(r->ring);
    io_uring_prep_send(sqe, r->fd, r->out.data + r->out_off, r->out.len - r->out_off, MSG_NOSIGNAL);
    op_arm(r, sqe, M_SEND);
}

/* conv_recv - read (more of) the milter's replies. */
static void conv_recv(struct mrun *r)
{
    struct io_uring_sqe *sqe = uring_get_sqe(r->ring);
    io_uring_prep_recv(sqe, r->fd, r->rbuf, sizeof r->rbuf, 0);
    op_arm(r, sqe, M_RECV);
}

/* conv_close - the conversation is over: close the socket. */
static void conv_close(struct mrun *r)
{
    r->step = M_CLOSE;
    if (r->fd >= 0) {
        struct io_uring_sqe *sqe = uring_get_sqe(r->ring);
        io_uring_prep_close(sqe, r->fd);
        io_uring_sqe_set_data64(sqe, uring_cb_data(&r->close_cb));
        r->fd = -1;
        r->pending++;
    }
}

/* conv_quit - say SMFIC_QUIT (best effort: no wait) and close. */
static void conv_quit(struct mrun *r)
{
    if (r->fd >= 0 && !r->failed)
        (void)send(r->fd, "\0\0\0\1Q", 5, MSG_NOSIGNAL | MSG_DONTWAIT);
    conv_close(r);
}

/* conv_flush - packets in r->out: send them, then wait for a reply if one
 * is due, else go on. */
static void conv_flush(struct mrun *r, bool reply_due, unsigned timeout_ms)
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
static bool msg_headers(struct mrun *r)
{
    size_t n = r->src.len < MILTERIO_HDR_MAX ? r->src.len : MILTERIO_HDR_MAX;
    r->hdr = malloc(n + 1);
    if (!r->hdr || filter_src_fill(&r->src, 0, r->hdr, n) < 0) {
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
static bool next_header(struct mrun *r, size_t *off)
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
static void put_macros(struct mrun *r, enum milter_stage st)
{
    const struct sess_msg *m = r->m;
    char port[8], under[300], mail[600];
    snprintf(port, sizeof port, "%u", m->client_port);
    snprintf(under, sizeof under, "%s [%s]", m->helo && m->helo[0] ? m->helo : "unknown",
             m->client_ip);
    snprintf(mail, sizeof mail, "%s", m->sender);
    const char *const cn[] = {
        "j", "{daemon_name}", "_", "{client_addr}", "{client_port}", "{client_name}"};
    const char *const cv[] = {r->cfg->hostname, "mxringd", under, m->client_ip, port, "unknown"};
    const char *const hn[] = {"{tls_version}", "{cipher}"};
    const char *const hv[] = {m->tls_version, m->tls_cipher};
    const char *const mn[] = {"i", "{auth_authen}", "{mail_addr}"};
    const char *const mv[] = {r->qid, m->auth_user, mail};
    const char *const in[] = {"i"};
    const char *const iv[] = {r->qid};
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
static bool stage_packets(struct mrun *r, enum milter_stage st)
{
    const struct sess_msg *m = r->m;
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
        if (r->skip_body || off >= r->src.len)
            return false;
        size_t n = r->src.len - off < MILTER_CHUNK_MAX ? r->src.len - off : MILTER_CHUNK_MAX;
        uint8_t *buf = malloc(n);
        if (!buf || filter_src_fill(&r->src, off, buf, n) < 0 ||
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

/* conv_next_stage - the next step of this stage, or the next stage the
 * milter wants. */
static void conv_next_stage(struct mrun *r)
{
    sb_reset(&r->out);
    while (r->stage <= MILTER_S_EOM && !r->failed) {
        if (r->stage >= 0 && !milter_stage_skipped((enum milter_stage)r->stage, r->proto) &&
            stage_packets(r, (enum milter_stage)r->stage))
            break;
        if (r->stage == MILTER_S_HEADER) {
            free(r->hdr);
            r->hdr = NULL;
        }
        r->stage++;
        r->item = 0;
    }
    if (r->failed || r->stage > MILTER_S_EOM) {
        conv_over(r);
        return;
    }
    enum milter_stage st = (enum milter_stage)r->stage;
    bool content = st >= MILTER_S_HEADER;
    conv_flush(r, !milter_stage_noreply(st, r->proto),
               content ? r->cfg->milter_content_timeout_ms : r->cfg->milter_command_timeout_ms);
}

/* ---- replies ------------------------------------------------------------- */

enum { R_MORE = 0, R_GO_ON, R_OVER };

/* refuse - the milter's verdict ends the chain: v, its reply text (NULL:
 * the default of reply.c) and the log line. */
static int refuse(struct mrun *r, enum milterio_verdict v, const char *word, const char *text)
{
    struct milter_code c;
    const char *t =
        text ? text
             : reply_table[v == MILTERIO_TEMPFAIL ? R_ERR_MILTER_TEMP : R_ERR_MILTER_REJECT].fmt;
    r->chain_over = true;
    r->res.v = v;
    snprintf(r->res.reply, sizeof r->res.reply, "%s", v == MILTERIO_DISCARD ? "" : t);
    if (v != MILTERIO_DISCARD && milter_replycode_parse(t, &c))
        filter_logf(r->log, r->arg, "milter %s: %s %u%s%s \"%.*s\" at %s", name(r), word, c.code,
                    c.ext[0] ? " " : "", c.ext, (int)c.text_len, c.text, stage_name(r));
    else
        filter_logf(r->log, r->arg, "milter %s: %s at %s", name(r), word, stage_name(r));
    /* The transaction's reason (what mxlog why shows) names the reply too. */
    if (v != MILTERIO_DISCARD && milter_replycode_parse(t, &c))
        snprintf(r->res.detail, sizeof r->res.detail, "milter %s: %s %u%s%s \"%.*s\" at %s",
                 name(r), word, c.code, c.ext[0] ? " " : "", c.ext, (int)c.text_len, c.text,
                 stage_name(r));
    else
        snprintf(r->res.detail, sizeof r->res.detail, "milter %s: %s at %s", name(r), word,
                 stage_name(r));
    return R_OVER;
}

/* add_header - addheader (appended: just above our Received:) or
 * insheader at index 0 or 1 (the top). */
static void add_header(struct mrun *r, const struct milter_reply *rep, bool top)
{
    struct sb line = {0};
    if (!milter_header_format(&line, rep->name, rep->value)) {
        conv_fail(r, "out of memory");
        return;
    }
    if (top &&
        sb_append(&line, r->res.headers.data ? r->res.headers.data : "", r->res.headers.len)) {
        sb_free(&r->res.headers);
        r->res.headers = line;
        line = (struct sb){0};
    } else if (!sb_append(&r->res.headers, line.data, line.len)) {
        conv_fail(r, "out of memory");
    }
    sb_free(&line);
    filter_logf(r->log, r->arg, "milter %s: %s %s", name(r), top ? "insheader" : "addheader",
                rep->name);
}

/* del_rcpt - delrcpt: the recipient leaves the message. */
static void del_rcpt(struct mrun *r, const char *text)
{
    const struct sess_msg *m = r->m;
    size_t n = strlen(text);
    if (n >= 2 && text[0] == '<' && text[n - 1] == '>')
        text++, n -= 2;
    if (!r->res.rcpt_deleted && !(r->res.rcpt_deleted = calloc(m->nrcpt + 1, sizeof(bool)))) {
        conv_fail(r, "out of memory");
        return;
    }
    for (size_t i = 0; i < m->nrcpt; i++) {
        const char *a = rcpt_at(m, i);
        if (strlen(a) == n && strncasecmp(a, text, n) == 0 && !r->res.rcpt_deleted[i]) {
            r->res.rcpt_deleted[i] = true;
            r->res.ndeleted++;
            filter_logf(r->log, r->arg, "milter %s: delrcpt <%s>", name(r), a);
            return;
        }
    }
    filter_logf(r->log, r->arg, "milter %s: delrcpt <%.*s>: no such recipient", name(r), (int)n,
                text);
}

/* on_modify - an action at end of message; R_MORE, or a failure. */
static int on_modify(struct mrun *r, const struct milter_reply *rep)
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
        filter_logf(r->log, r->arg,
                    "milter %s: chgheader %s[%u]: not applied (the message's "
                    "own headers are not rewritten)",
                    name(r), rep->name, rep->index);
    else if (rep->cmd == MILTER_R_DELRCPT)
        del_rcpt(r, rep->text);
    else if (!r->quar && (r->quar = strdup(rep->text)))
        filter_logf(r->log, r->arg, "milter %s: quarantine \"%s\"", name(r), rep->text);
    return r->failed ? R_OVER : R_MORE;
}

/* on_optneg - the milter's options: the actions and steps it takes. */
static int on_optneg(struct mrun *r, const struct milter_reply *rep)
{
    if (rep->cmd != MILTER_R_OPTNEG || rep->version < 2) {
        conv_fail(r, "bad option negotiation reply");
        return R_OVER;
    }
    if (rep->actions & ~(uint32_t)MILTER_ACTIONS_OFFERED)
        filter_logf(r->log, r->arg, "milter %s: actions 0x%x not offered, refused", name(r),
                    rep->actions & ~(uint32_t)MILTER_ACTIONS_OFFERED);
    r->actions = rep->actions & MILTER_ACTIONS_OFFERED;
    r->proto = rep->proto & MILTER_PROTO_OFFERED;
    r->stage = MILTER_S_CONNECT;
    r->item = 0;
    return R_GO_ON;
}

/* on_reply - one reply of the milter at the current stage. */
static int on_reply(struct mrun *r, const struct milter_reply *rep)
{
    if (r->stage < 0)
        return on_optneg(r, rep);
    switch (rep->cmd) {
    case MILTER_R_PROGRESS: r->deadline_ms = now_ms() + r->stage_ms; return R_MORE;
    case MILTER_R_CONTINUE:
        if (r->stage == MILTER_S_EOM) {
            filter_logf(r->log, r->arg, "milter %s: continue at end of message", name(r));
            return R_OVER;
        }
        r->nheaders += r->stage == MILTER_S_HEADER;
        r->nchunks += r->stage == MILTER_S_BODY;
        if (r->stage != MILTER_S_HEADER && r->stage != MILTER_S_BODY)
            filter_logf(r->log, r->arg, "milter %s: continue at %s", name(r), stage_name(r));
        return R_GO_ON;
    case MILTER_R_SKIP:
        r->skip_body = true;
        filter_logf(r->log, r->arg, "milter %s: skip at %s", name(r), stage_name(r));
        return R_GO_ON;
    case MILTER_R_ACCEPT:
        filter_logf(r->log, r->arg, "milter %s: accept at %s", name(r), stage_name(r));
        return R_OVER;
    case MILTER_R_REJECT: return refuse(r, MILTERIO_REJECT, "reject", NULL);
    case MILTER_R_TEMPFAIL: return refuse(r, MILTERIO_TEMPFAIL, "tempfail", NULL);
    case MILTER_R_DISCARD: return refuse(r, MILTERIO_DISCARD, "discard", NULL);
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
static void conv_received(struct mrun *r, size_t n)
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
    else if (act == R_GO_ON && off < n)
        conv_fail(r, "more replies than commands");
    if (r->failed || act == R_OVER)
        conv_over(r);
    else if (act == R_GO_ON)
        conv_next_stage(r);
    else
        conv_recv(r);
}

/* ---- completions --------------------------------------------------------- */

/* run_progress - once the conversation's socket is closed and every CQE is
 * back, go on with the next milter (or finish). */
static void run_progress(struct mrun *r)
{
    if (r->step == M_CLOSE && r->pending == 0)
        run_next(r);
}

/* conv_step_done - the connect, a send or a recv completed with res. */
static void conv_step_done(struct mrun *r, int res)
{
    if (r->step == M_CONNECT && res < 0) {
        conv_fail(r, "connect to %s: %s", r->cfg->milters[r->k].sock.text, strerror(-res));
    } else if (r->step == M_CONNECT) {
        sb_reset(&r->out);
        if (!milter_put_optneg(&r->out, MILTER_ACTIONS_OFFERED, MILTER_PROTO_OFFERED))
            conv_fail(r, "out of memory");
        else
            conv_flush(r, true, r->cfg->milter_connect_timeout_ms);
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
    struct mrun *r = (struct mrun *)cb;
    r->op_armed = false;
    r->pending--;
    if (cqe->res == -ECANCELED) {
        unsigned ms = r->stage < 0 ? r->cfg->milter_connect_timeout_ms : r->stage_ms;
        conv_fail(r, "timeout after %u ms", ms);
        conv_over(r);
    } else {
        conv_step_done(r, cqe->res);
    }
    run_progress(r);
}

/* on_lt - the link timeout of an operation completed (fired or not). */
static void on_lt(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    (void)cqe;
    struct mrun *r = (struct mrun *)(void *)((char *)cb - offsetof(struct mrun, lt_cb));
    r->pending--;
    run_progress(r);
}

/* on_close - the conversation's socket is closed. */
static void on_close(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    (void)cqe;
    struct mrun *r = (struct mrun *)(void *)((char *)cb - offsetof(struct mrun, close_cb));
    r->pending--;
    run_progress(r);
}

/* ---- the chain ----------------------------------------------------------- */

/* conv_over - the conversation ends: its failure meets
 * milter_default_action; say QUIT and close. */
static void conv_over(struct mrun *r)
{
    if (r->step == M_CLOSE)
        return;
    if (r->nheaders || r->nchunks)
        filter_logf(r->log, r->arg, "milter %s: continue to %u header(s), %u body chunk(s)",
                    name(r), r->nheaders, r->nchunks);
    if (r->failed && !r->chain_over) {
        unsigned a = r->cfg->milter_default_action;
        filter_logf(r->log, r->arg, "milter %s: failed at %s: %s: %s (milter_default_action)",
                    name(r), stage_name(r), r->why,
                    a == CFG_MILTER_ACCEPT   ? "accept"
                    : a == CFG_MILTER_REJECT ? "reject"
                                             : "tempfail");
        if (a != CFG_MILTER_ACCEPT) {
            r->chain_over = true;
            r->res.v = a == CFG_MILTER_REJECT ? MILTERIO_REJECT : MILTERIO_TEMPFAIL;
            snprintf(
                r->res.reply, sizeof r->res.reply, "%s",
                reply_table[a == CFG_MILTER_REJECT ? R_ERR_MILTER_REJECT : R_ERR_MILTER_TEMP].fmt);
            snprintf(r->res.detail, sizeof r->res.detail, "milter %s failed: %s", name(r), r->why);
        }
    }
    conv_quit(r);
}

/* conv_start - connect to milter r->k. */
static void conv_start(struct mrun *r)
{
    const struct cfg_milter *mi = &r->cfg->milters[r->k];
    milter_rd_free(&r->rd);
    free(r->hdr);
    r->hdr = NULL;
    r->stage = M_STAGE_OPTNEG;
    r->item = 0;
    r->failed = r->skip_body = false;
    r->nheaders = r->nchunks = 0;
    r->actions = r->proto = 0;
    r->stage_ms = r->cfg->milter_connect_timeout_ms;
    r->deadline_ms = now_ms() + r->stage_ms;
    r->step = M_CONNECT;
    r->fd = socket(mi->sock.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r->fd < 0) {
        conv_fail(r, "socket: %s", strerror(errno));
        conv_over(r);
        run_progress(r);
        return;
    }
    struct io_uring_sqe *sqe = uring_get_sqe(r->ring);
    io_uring_prep_connect(sqe, r->fd, (const struct sockaddr *)&mi->sock.ss, mi->sock.len);
    op_arm(r, sqe, M_CONNECT);
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

/* run_next - the next milter, or the end of the chain: report. */
static void run_next(struct mrun *r)
{
    if (!r->chain_over && r->k + 1 < r->cfg->nmilters) {
        r->k++;
        conv_start(r);
        return;
    }
    milter_rd_free(&r->rd);
    free(r->hdr);
    sb_free(&r->out);
    r->res.quarantine = r->quar;
    if (r->res.v == MILTERIO_ACCEPT && r->m->nrcpt && r->res.ndeleted == r->m->nrcpt) {
        r->res.v = MILTERIO_DISCARD; /* every recipient deleted */
        snprintf(r->res.detail, sizeof r->res.detail, "milters deleted every recipient");
    }
    milterio_done_fn done = r->done;
    void *arg = r->arg;
    struct milterio_result *res = malloc(sizeof *res);
    if (res)
        *res = r->res;
    else
        result_clear(&r->res);
    free(r);
    done(arg, res ? res : result_nomem());
}

/* milterio_wanted - see milterio.h. */
bool milterio_wanted(const struct config *cfg)
{
    return cfg && cfg->nmilters > 0;
}

/* milterio_run - see milterio.h. */
void milterio_run(struct io_uring *ring, const struct config *cfg, const struct sess_msg *m,
                  const char *qid, const struct filter_src *src, filter_log_fn log,
                  milterio_done_fn done, void *arg)
{
    struct mrun *r = calloc(1, sizeof *r);
    if (!r) {
        done(arg, result_nomem());
        return;
    }
    r->op_cb.fn = on_op;
    r->lt_cb.fn = on_lt;
    r->close_cb.fn = on_close;
    r->ring = ring;
    r->cfg = cfg;
    r->m = m;
    r->qid = qid;
    r->src = *src;
    r->log = log;
    r->done = done;
    r->arg = arg;
    r->fd = -1;
    conv_start(r);
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
