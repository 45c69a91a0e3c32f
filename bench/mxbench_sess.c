/* mxbench_sess.c - one mxbench SMTP client session as a state machine over
 * io_uring completions: connect, banner, EHLO, [STARTTLS, TLS handshake,
 * EHLO], [AUTH], then transactions (MAIL, RCPT x R, DATA, message) handed
 * to it by the work policy (mxbench_work.c), and QUIT. After STARTTLS the
 * socket carries only ciphertext: receives land in cbuf and are fed to the
 * session's mxb_tls, whose plaintext goes to rbuf; writes are encrypted and
 * drained into sends (no blocking socket I/O anywhere). Runs on the thread
 * that owns the session. */
#include "mxbench_thr.h"
#include "mxbench_tls.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CBUF_SIZE 16384 /* TLS: ciphertext per receive */
#define SBUF_SIZE 16384 /* TLS: ciphertext per send */
#define REFUSAL_MIN 400 /* reply codes from here on are refusals */

/* Expected reply and error kind per waiting stage. */
static const struct {
    int code;
    enum mxb_err err;
} expect[] = {
    [ST_BANNER] = {MXB_CODE_READY, MXB_E_BANNER},
    [ST_EHLO] = {MXB_CODE_OK, MXB_E_EHLO},
    [ST_STARTTLS] = {MXB_CODE_READY, MXB_E_STARTTLS},
    [ST_AUTH] = {MXB_CODE_AUTH_OK, MXB_E_AUTH},
    [ST_MAIL] = {MXB_CODE_OK, MXB_E_MAIL},
    [ST_RCPT] = {MXB_CODE_OK, MXB_E_RCPT},
    [ST_DATA] = {MXB_CODE_START_DATA, MXB_E_DATA},
    [ST_BODY] = {MXB_CODE_OK, MXB_E_BODY},
    [ST_QUIT] = {MXB_CODE_CLOSING, MXB_E_QUIT},
};

/* get_sqe - a free SQE, submitting first when the SQ is full. */
static struct io_uring_sqe *get_sqe(struct thr *t)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);
    while (!sqe) {
        io_uring_submit(&t->ring);
        sqe = io_uring_get_sqe(&t->ring);
    }
    return sqe;
}

/* tag - user_data for op on session s. */
static uint64_t tag(struct sess *s, enum op op)
{
    return (uint64_t)(uintptr_t)s | (uint64_t)op;
}

/* arm_send - queue a send of the unsent rest wptr/wlen. */
static void arm_send(struct sess *s)
{
    struct io_uring_sqe *sqe = get_sqe(s->t);
    io_uring_prep_send(sqe, s->fd, s->wptr, s->wlen, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, tag(s, OP_SEND));
    s->send_busy = true;
    s->ops++;
    s->deadline = s->t->now + s->t->op_ns;
}

/* arm_recv - make sure a receive is in flight: into the free end of rbuf,
 * or with TLS into cbuf. */
static void arm_recv(struct sess *s)
{
    if (s->recv_armed)
        return;
    struct io_uring_sqe *sqe = get_sqe(s->t);
    if (s->tls)
        io_uring_prep_recv(sqe, s->fd, s->cbuf, CBUF_SIZE, 0);
    else
        io_uring_prep_recv(sqe, s->fd, s->rbuf + s->rlen, sizeof s->rbuf - s->rlen, 0);
    sqe->ioprio |= IORING_RECVSEND_POLL_FIRST; /* the reply is never there yet */
    io_uring_sqe_set_data64(sqe, tag(s, OP_RECV));
    s->recv_armed = true;
    s->ops++;
    s->deadline = s->t->now + s->t->op_ns;
}

/* tls_fail - end the session for a TLS error; keep the first reason. */
static void tls_fail(struct sess *s)
{
    if (!s->t->st->tls_err && s->tls)
        s->t->st->tls_err = mxb_tls_error(s->tls);
    sess_end(s, MXB_E_TLS);
}

/* tls_flush - when no send is in flight, send the pending ciphertext. */
static void tls_flush(struct sess *s)
{
    if (s->send_busy || s->closing)
        return;
    char *sbuf = s->cbuf + CBUF_SIZE;
    size_t n = mxb_tls_take(s->tls, sbuf, SBUF_SIZE);
    if (n == 0)
        return;
    s->wptr = sbuf;
    s->wlen = n;
    arm_send(s);
}

/* sess_write - send len octets at buf (which outlives the send); queued
 * behind a send still in flight; with TLS encrypted now and sent as the
 * socket allows. */
static void sess_write(struct sess *s, const char *buf, size_t len)
{
    if (s->tls) {
        if (mxb_tls_write(s->tls, buf, len))
            tls_flush(s);
        else
            tls_fail(s);
    } else if (s->send_busy) {
        s->pend = buf;
        s->pend_len = len;
    } else {
        s->wptr = buf;
        s->wlen = len;
        arm_send(s);
    }
}

/* send_cmd - send command k of the transaction block (see struct mxb_cmds). */
static void send_cmd(struct sess *s, unsigned k)
{
    const struct mxb_cmds *c = &s->cmds;
    sess_write(s, c->text + c->off[k], c->off[k + 1] - c->off[k]);
}

/* sess_quit - say QUIT. */
void sess_quit(struct sess *s)
{
    s->stage = ST_QUIT;
    sess_write(s, MXB_QUIT_CMD, sizeof MXB_QUIT_CMD - 1);
}

/* sess_start - the held message's transaction: envelope and message of
 * this thread's next number, MAIL (or MAIL..DATA in one write). */
void sess_start(struct sess *s)
{
    struct thr *t = s->t;
    const struct mxb_plan *p = t->p;
    s->t0 = t->open ? s->due : t->now;
    s->conn_msgs++;
    mxb_cmds_fill(&s->cmds, &p->mail, &p->rcpt, t->seq++ * p->nthreads + t->id);
    s->msg = mxb_corpus_next(&p->corpus, &t->pick);
    t->st->c.sent++;
    s->rcpt_i = 0;
    s->stage = ST_MAIL;
    s->presend = p->o->pipelining && s->can_pipe;
    if (s->presend)
        sess_write(s, s->cmds.text, s->cmds.off[s->cmds.rcpts + 2]);
    else
        send_cmd(s, 0);
}

/* message_done - the message was accepted: count it, ask for more work. */
static void message_done(struct sess *s)
{
    struct thr *t = s->t;
    uint64_t lat = t->now - s->t0;
    s->ticket = false;
    t->st->c.messages++;
    t->st->kind_msgs[s->kind]++;
    mxb_hist_record(&t->st->lat_ns, lat);
    if (t->p->series)
        mxb_hist_record(&t->sec.lat_ns, lat);
    work_ready(s);
}

/* after_ehlo - EHLO was accepted: STARTTLS first when the kind wants it
 * and it is not done yet, then AUTH when the kind wants it, then work. */
static void after_ehlo(struct sess *s)
{
    const struct mxb_plan *p = s->t->p;
    if ((s->kind & MXB_K_STARTTLS) && !s->tls) {
        s->stage = ST_STARTTLS;
        sess_write(s, MXB_STARTTLS_CMD, sizeof MXB_STARTTLS_CMD - 1);
    } else if ((s->kind & MXB_K_AUTH) && p->auth_cmd) {
        s->stage = ST_AUTH;
        sess_write(s, p->auth_cmd, p->auth_len);
    } else {
        work_ready(s);
    }
}

/* start_tls - STARTTLS was accepted: from now on the socket carries TLS;
 * queue and send the ClientHello. */
static void start_tls(struct sess *s)
{
    struct thr *t = s->t;
    if (!s->cbuf && !(s->cbuf = malloc(CBUF_SIZE + SBUF_SIZE))) {
        sess_end(s, MXB_E_TLS);
        return;
    }
    s->tls = mxb_tls_new(t->p->tls);
    if (!s->tls) {
        sess_end(s, MXB_E_TLS);
        return;
    }
    s->stage = ST_HANDSHAKE;
    s->hs_t0 = t->now;
    if (mxb_tls_handshake(s->tls) < 0)
        tls_fail(s);
    else
        tls_flush(s);
}

/* handshake_done - count the handshake, say EHLO again (RFC 3207). */
static void handshake_done(struct sess *s)
{
    struct mxb_stats *st = s->t->st;
    st->handshakes++;
    mxb_hist_record(&st->hs_ns, s->t->now - s->hs_t0);
    if (!st->tls_desc[0])
        mxb_tls_describe(s->tls, st->tls_desc, sizeof st->tls_desc);
    s->stage = ST_EHLO;
    sess_write(s, MXB_EHLO_CMD, sizeof MXB_EHLO_CMD - 1);
}

/* refused - an unexpected reply ends the session: counted by stage, and a
 * 4xx/5xx also by code and enhanced code. */
static void refused(struct sess *s, const struct mxb_reply *r)
{
    if (r->code >= REFUSAL_MIN)
        mxb_refusal_count(s->t->st, (unsigned)r->code, r->enh);
    sess_end(s, (int)expect[s->stage].err);
}

/* advance - the reply r was the expected one for the current stage: move
 * on. */
static void advance(struct sess *s, const struct mxb_reply *r)
{
    switch (s->stage) {
    case ST_BANNER:
        s->stage = ST_EHLO;
        sess_write(s, MXB_EHLO_CMD, sizeof MXB_EHLO_CMD - 1);
        break;
    case ST_EHLO:
        s->can_pipe = r->pipelining;
        after_ehlo(s);
        break;
    case ST_STARTTLS: start_tls(s); break;
    case ST_AUTH: work_ready(s); break;
    case ST_MAIL:
        s->stage = ST_RCPT;
        if (!s->presend)
            send_cmd(s, 1);
        break;
    case ST_RCPT:
        if (++s->rcpt_i == s->cmds.rcpts)
            s->stage = ST_DATA;
        if (!s->presend)
            send_cmd(s, s->rcpt_i + 1);
        break;
    case ST_DATA:
        s->stage = ST_BODY;
        sess_write(s, s->msg->wire, s->msg->len);
        break;
    case ST_BODY: message_done(s); break;
    default: /* ST_QUIT */ sess_end(s, SESS_CLEAN); break;
    }
}

/* alive - the connection that had generation gen is still open. */
static bool alive(const struct sess *s, unsigned gen)
{
    return s->gen == gen && !s->closing;
}

/* on_reply - one complete reply arrived: check it, move to the next stage.
 * Returns false when the session ended. A reply to an idle connection (a
 * 421 before the server closes it) ends it cleanly. */
static bool on_reply(struct sess *s, const struct mxb_reply *r)
{
    if (s->stage == ST_READY) {
        sess_end(s, SESS_CLEAN);
        return false;
    }
    if (s->stage < ST_BANNER || s->stage > ST_QUIT || expect[s->stage].code == 0) {
        sess_end(s, MXB_E_PROTOCOL);
        return false;
    }
    if (r->code != expect[s->stage].code) {
        refused(s, r);
        return false;
    }
    unsigned gen = s->gen;
    advance(s, r);
    return alive(s, gen);
}

/* drain_replies - handle every complete reply in rbuf; keep the rest.
 * Returns false when the session ended. Plaintext left over after the 220
 * to STARTTLS is a protocol error (it would be mixed into the TLS stream). */
static bool drain_replies(struct sess *s)
{
    size_t pos = 0;
    while (pos < s->rlen) {
        struct mxb_reply r;
        long n = mxb_reply_scan(s->rbuf + pos, s->rlen - pos, &r);
        if (n < 0) {
            sess_end(s, MXB_E_PROTOCOL);
            return false;
        }
        if (n == 0)
            break;
        pos += (size_t)n;
        if (!on_reply(s, &r))
            return false;
    }
    memmove(s->rbuf, s->rbuf + pos, s->rlen - pos);
    s->rlen -= pos;
    if (s->rlen == sizeof s->rbuf || (s->rlen > 0 && s->stage == ST_HANDSHAKE)) {
        sess_end(s, MXB_E_PROTOCOL);
        return false;
    }
    return true;
}

/* tls_handshake_input - advance the handshake over what was fed. Returns
 * 1 when it finished (EHLO is queued), 0 when it needs more, -1 when the
 * session ended. */
static int tls_handshake_input(struct sess *s)
{
    unsigned gen = s->gen;
    int r = mxb_tls_handshake(s->tls);
    if (r < 0) {
        tls_fail(s);
        return -1;
    }
    if (r == 0) {
        tls_flush(s);
        return 0;
    }
    handshake_done(s); /* the client Finished and EHLO in one send */
    return alive(s, gen) ? 1 : -1;
}

/* tls_input - n octets of ciphertext arrived in cbuf: advance the
 * handshake, decrypt the replies into rbuf and handle them. Returns false
 * when the session ended. */
static bool tls_input(struct sess *s, size_t n)
{
    unsigned gen = s->gen;
    if (!mxb_tls_feed(s->tls, s->cbuf, n)) {
        tls_fail(s);
        return false;
    }
    if (s->stage == ST_HANDSHAKE) {
        int r = tls_handshake_input(s);
        if (r <= 0)
            return r == 0;
    }
    for (;;) {
        long got = mxb_tls_read(s->tls, s->rbuf + s->rlen, sizeof s->rbuf - s->rlen);
        if (got == MXB_TLS_AGAIN)
            break;
        if (got < 0) {
            if (got == MXB_TLS_CLOSED)
                sess_end(s, s->stage == ST_READY ? SESS_CLEAN : MXB_E_EOF);
            else
                tls_fail(s);
            return false;
        }
        s->rlen += (size_t)got;
        if (!drain_replies(s))
            return false;
    }
    tls_flush(s); /* reading may have queued records (alerts, key updates) */
    return alive(s, gen);
}

/* on_recv - a receive completed; an idle connection closed by the server
 * ends cleanly. */
static void on_recv(struct sess *s, int res)
{
    s->recv_armed = false;
    if (s->closing)
        return;
    if (res <= 0) {
        if (s->stage == ST_READY)
            sess_end(s, SESS_CLEAN);
        else
            sess_end(s, res == 0 ? MXB_E_EOF : MXB_E_RESET);
        return;
    }
    bool live;
    if (s->tls) {
        live = tls_input(s, (size_t)res);
    } else {
        s->rlen += (size_t)res;
        live = drain_replies(s);
    }
    if (live)
        arm_recv(s);
}

/* on_send - a send completed: go on with a short one, or the queued one. */
static void on_send(struct sess *s, int res)
{
    s->send_busy = false;
    if (s->closing)
        return;
    if (res <= 0) {
        sess_end(s, MXB_E_RESET);
        return;
    }
    s->t->st->c.bytes += (uint64_t)res;
    s->wptr += res;
    s->wlen -= (size_t)res;
    if (s->wlen == 0 && s->tls) {
        tls_flush(s);
        return;
    }
    if (s->wlen == 0 && s->pend) {
        s->wptr = s->pend;
        s->wlen = s->pend_len;
        s->pend = NULL;
    }
    if (s->wlen > 0)
        arm_send(s);
}

/* on_connect - the connect completed: wait for the banner. */
static void on_connect(struct sess *s, int res)
{
    if (s->closing)
        return;
    if (res < 0) {
        /* a peer that accepts and resets at once can fail the connect
         * itself (its RST seen before the completion): that is a reset */
        sess_end(s, res == -ECONNREFUSED ? MXB_E_REFUSED
                    : res == -ECONNRESET ? MXB_E_RESET
                                         : MXB_E_CONNECT);
        return;
    }
    s->t->st->c.connections++;
    s->t->st->kind_conns[s->kind]++;
    s->stage = ST_BANNER;
    arm_recv(s);
}

/* sess_finish - every operation is back: close, hand s back to the work
 * policy. */
static void sess_finish(struct sess *s)
{
    close(s->fd);
    s->fd = -1;
    s->gen++;
    s->t->conns--;
    mxb_tls_free(s->tls);
    s->tls = NULL;
    s->closing = false;
    s->cancel_sent = false;
    s->rlen = 0;
    s->wlen = 0;
    s->pend = NULL;
    s->conn_msgs = 0;
    s->stage = ST_IDLE;
    work_closed(s);
}

/* sess_end - end the connection, see mxbench_thr.h. */
void sess_end(struct sess *s, int err)
{
    struct mxb_counts *c = &s->t->st->c;
    if (s->closing)
        return;
    if (err >= 0) {
        c->errors[err]++;
        c->failed += s->ticket;
    } else if (err == SESS_ABORT) {
        c->aborted += s->ticket;
    }
    s->ticket = false;
    work_idle_remove(s);
    s->closing = true;
    if (s->ops == 0) {
        sess_finish(s);
    } else if (!s->cancel_sent) {
        struct io_uring_sqe *sqe = get_sqe(s->t);
        io_uring_prep_cancel_fd(sqe, s->fd, IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(sqe, 0);
        s->cancel_sent = true;
    }
}

/* sess_connect - open a socket and queue the connect, see mxbench_thr.h. */
bool sess_connect(struct sess *s)
{
    struct thr *t = s->t;
    s->kind = (enum mxb_kind)mxb_wrr_next(&t->kinds);
    s->fd = socket(t->p->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        t->st->c.errors[MXB_E_CONNECT]++;
        t->st->c.failed += s->ticket;
        s->ticket = false;
        return false;
    }
    /* TLS may send a flight while the last is unacknowledged: no Nagle
     * wait for the server's delayed ACK. */
    if (s->kind & MXB_K_STARTTLS)
        setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    struct io_uring_sqe *sqe = get_sqe(t);
    io_uring_prep_connect(sqe, s->fd, (struct sockaddr *)&t->p->addr, t->p->addrlen);
    io_uring_sqe_set_data64(sqe, tag(s, OP_CONNECT));
    s->ops++;
    t->conns++;
    s->stage = ST_CONNECT;
    s->deadline = t->now + t->op_ns;
    return true;
}

/* sess_complete - route one completion to s. */
void sess_complete(struct sess *s, enum op op, int res)
{
    s->ops--;
    if (op == OP_CONNECT)
        on_connect(s, res);
    else if (op == OP_SEND)
        on_send(s, res);
    else
        on_recv(s, res);
    if (s->closing && s->ops == 0)
        sess_finish(s);
}
