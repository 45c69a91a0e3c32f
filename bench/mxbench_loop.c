/* mxbench_loop.c - one io_uring event loop per mxbench thread driving its
 * share of the SMTP sessions: each session is a small state machine
 * (connect, banner, EHLO, [STARTTLS, TLS handshake, EHLO], [AUTH], MAIL,
 * RCPT x R, DATA, message, then the next message or QUIT and a new
 * connection). After STARTTLS the socket carries only ciphertext: receives
 * land in cbuf and are fed to the session's mxb_tls, whose plaintext goes to
 * rbuf; writes are encrypted and drained into sends from sbuf (no blocking
 * socket I/O anywhere). Everything here runs on the thread
 * that called mxb_thread_run(); the only shared state is the message budget
 * in struct mxb_plan (an atomic counter). */
#include "mxbench_loop.h"

#include "mxbench.h"
#include "mxbench_tls.h"

#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* user_data layout: the low 3 bits name the operation, the rest points to
 * the session (or the thread, for the tick); both are 8-byte aligned.
 *   63 ........................ 3 | 2..0
 *   object pointer                | op
 * user_data 0 is a cancel request, whose completion is ignored. */
enum op { OP_IGNORE = 0, OP_CONNECT, OP_SEND, OP_RECV, OP_TICK };
#define OP_MASK 0x7ull

#define RBUF_SIZE 2048          /* one reply must fit */
#define CBUF_SIZE 16384         /* TLS: ciphertext per receive */
#define SBUF_SIZE 16384         /* TLS: ciphertext per send */
#define TICK_NS 1000000000ll    /* timeout scan period */
#define NS_PER_S 1000000000ull
#define SQ_MAX 32768u
#define SQ_MIN 64u

enum stage {
    ST_IDLE,        /* no connection */
    ST_CONNECT,     /* connect in flight */
    ST_BANNER,      /* the rest wait for the reply of this stage */
    ST_EHLO,
    ST_STARTTLS,
    ST_HANDSHAKE,   /* TLS handshake; no reply expected */
    ST_AUTH,
    ST_MAIL,
    ST_RCPT,
    ST_DATA,
    ST_BODY,
    ST_QUIT,
    ST_DONE,        /* budget used up, session ended */
};

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

struct thr;

struct sess {
    _Alignas(16) struct thr *t;
    int fd;
    enum stage stage;
    unsigned rcpt_i;        /* RCPT replies seen in this transaction */
    unsigned ops;           /* SQEs in flight that name this session */
    bool ticket;            /* holds a claimed message not yet accepted */
    bool presend;           /* MAIL..DATA went out in one write */
    bool can_pipe;          /* the server announced PIPELINING */
    bool recv_armed;
    bool send_busy;
    bool closing;
    bool cancel_sent;
    const char *wptr;       /* unsent rest of the current write */
    size_t wlen;
    const char *pend;       /* a write asked for while one was in flight */
    size_t pend_len;
    struct mxb_tls *tls;    /* after STARTTLS's 220, else NULL */
    char *cbuf;             /* TLS: CBUF_SIZE received, then SBUF_SIZE to send */
    uint64_t hs_t0;         /* ClientHello queued */
    uint64_t t0;            /* MAIL sent */
    uint64_t deadline;      /* of the operation in flight */
    size_t rlen;
    char rbuf[RBUF_SIZE];
};

struct thr {
    _Alignas(16) struct io_uring ring;
    struct mxb_plan *p;
    struct mxb_stats *st;
    struct sess *sess;
    unsigned nsess;
    unsigned live;          /* sessions not in ST_DONE */
    uint64_t now;           /* loop clock, refreshed after every wait */
    uint64_t op_ns;         /* --timeout in ns */
    struct __kernel_timespec tick;
};

static void sess_begin(struct sess *s);
static void sess_end(struct sess *s, int err);

/* mxb_now_ns - CLOCK_MONOTONIC in nanoseconds. */
uint64_t mxb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* mxb_claim - take one message from the budget. */
bool mxb_claim(struct mxb_plan *p, uint64_t now)
{
    if (p->stop_ns && now >= p->stop_ns)
        return false;
    if (p->o->messages == 0)
        return true;
    /* Relaxed: the counter orders nothing else. */
    return atomic_fetch_add_explicit(&p->claimed, 1, memory_order_relaxed) < p->o->messages;
}

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

/* tag - user_data for op on object obj. */
static uint64_t tag(void *obj, enum op op)
{
    return (uint64_t)(uintptr_t)obj | (uint64_t)op;
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
    sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;  /* the reply is never there yet */
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
 * socket allows. The receive for the reply is armed by on_recv() once
 * rbuf is compacted. */
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
    const struct mxb_cmds *c = &s->t->p->cmds;
    sess_write(s, c->text + c->off[k], c->off[k + 1] - c->off[k]);
}

/* start_message - begin a transaction, or QUIT when the budget is used up. */
static void start_message(struct sess *s)
{
    struct thr *t = s->t;
    if (!s->ticket && !mxb_claim(t->p, t->now)) {
        s->stage = ST_QUIT;
        sess_write(s, MXB_QUIT_CMD, sizeof MXB_QUIT_CMD - 1);
        return;
    }
    s->ticket = true;
    s->t0 = t->now;
    s->rcpt_i = 0;
    s->stage = ST_MAIL;
    s->presend = t->p->o->pipelining && s->can_pipe;
    if (s->presend) {
        const struct mxb_cmds *c = &t->p->cmds;
        sess_write(s, c->text, c->off[c->rcpts + 2]);
    } else {
        send_cmd(s, 0);
    }
}

/* message_done - the message was accepted: count it, go on or QUIT. */
static void message_done(struct sess *s)
{
    struct thr *t = s->t;
    s->ticket = false;
    t->st->messages++;
    mxb_hist_record(&t->st->lat_ns, t->now - s->t0);
    if (t->p->o->reuse) {
        start_message(s);
    } else {
        s->stage = ST_QUIT;
        sess_write(s, MXB_QUIT_CMD, sizeof MXB_QUIT_CMD - 1);
    }
}

/* after_ehlo - EHLO was accepted: STARTTLS first when asked for and not
 * done yet, then AUTH when asked for, then the first message. */
static void after_ehlo(struct sess *s)
{
    const struct mxb_plan *p = s->t->p;
    if (p->tls && !s->tls) {
        s->stage = ST_STARTTLS;
        sess_write(s, MXB_STARTTLS_CMD, sizeof MXB_STARTTLS_CMD - 1);
    } else if (p->auth_cmd) {
        s->stage = ST_AUTH;
        sess_write(s, p->auth_cmd, p->auth_len);
    } else {
        start_message(s);
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

/* on_reply - one complete reply arrived: check it, move to the next stage.
 * Returns false when the session ended. */
static bool on_reply(struct sess *s, const struct mxb_reply *r)
{
    const struct mxb_cmds *c = &s->t->p->cmds;
    if (s->stage < ST_BANNER || s->stage > ST_QUIT || expect[s->stage].code == 0) {
        sess_end(s, MXB_E_PROTOCOL);
        return false;
    }
    if (r->code != expect[s->stage].code) {
        sess_end(s, (int)expect[s->stage].err);
        return false;
    }
    switch (s->stage) {
    case ST_BANNER:
        s->stage = ST_EHLO;
        sess_write(s, MXB_EHLO_CMD, sizeof MXB_EHLO_CMD - 1);
        break;
    case ST_EHLO:
        s->can_pipe = r->pipelining;
        after_ehlo(s);
        break;
    case ST_STARTTLS:
        start_tls(s);
        break;
    case ST_AUTH:
        start_message(s);
        break;
    case ST_MAIL:
        s->stage = ST_RCPT;
        if (!s->presend)
            send_cmd(s, 1);
        break;
    case ST_RCPT:
        if (++s->rcpt_i == c->rcpts)
            s->stage = ST_DATA;
        if (!s->presend)
            send_cmd(s, s->rcpt_i + 1);
        break;
    case ST_DATA:
        s->stage = ST_BODY;
        sess_write(s, s->t->p->msg, s->t->p->msg_len);
        break;
    case ST_BODY:
        message_done(s);
        break;
    default: /* ST_QUIT */
        sess_end(s, -1);
        return false;
    }
    return !s->closing;
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

/* tls_input - n octets of ciphertext arrived in cbuf: advance the
 * handshake, decrypt the replies into rbuf and handle them. Returns false
 * when the session ended. */
static bool tls_input(struct sess *s, size_t n)
{
    if (!mxb_tls_feed(s->tls, s->cbuf, n)) {
        tls_fail(s);
        return false;
    }
    if (s->stage == ST_HANDSHAKE) {
        int r = mxb_tls_handshake(s->tls);
        if (r < 0) {
            tls_fail(s);
            return false;
        }
        if (r == 0) {
            tls_flush(s);
            return true;
        }
        handshake_done(s);  /* the client Finished and EHLO in one send */
        if (s->closing)
            return false;
    }
    for (;;) {
        long got = mxb_tls_read(s->tls, s->rbuf + s->rlen, sizeof s->rbuf - s->rlen);
        if (got == MXB_TLS_AGAIN)
            break;
        if (got < 0) {
            if (got == MXB_TLS_CLOSED)
                sess_end(s, MXB_E_EOF);
            else
                tls_fail(s);
            return false;
        }
        s->rlen += (size_t)got;
        if (!drain_replies(s))
            return false;
    }
    tls_flush(s);   /* reading may have queued records (alerts, key updates) */
    return !s->closing;
}

/* on_recv - a receive completed. */
static void on_recv(struct sess *s, int res)
{
    s->recv_armed = false;
    if (s->closing)
        return;
    if (res <= 0) {
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
    s->t->st->bytes += (uint64_t)res;
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
        sess_end(s, MXB_E_CONNECT);
        return;
    }
    s->t->st->connections++;
    s->stage = ST_BANNER;
    arm_recv(s);
}

/* sess_finish - every operation is back: close and start over. */
static void sess_finish(struct sess *s)
{
    close(s->fd);
    s->fd = -1;
    mxb_tls_free(s->tls);
    s->tls = NULL;
    s->closing = false;
    s->cancel_sent = false;
    s->rlen = 0;
    s->wlen = 0;
    s->pend = NULL;
    s->stage = ST_IDLE;
    sess_begin(s);
}

/* sess_end - end the connection; err >= 0 counts an error of that kind (and
 * a failed message when one was in progress), -1 is a clean end. */
static void sess_end(struct sess *s, int err)
{
    if (s->closing)
        return;
    if (err >= 0) {
        s->t->st->errors[err]++;
        if (s->ticket)
            s->t->st->failed++;
        s->ticket = false;
    }
    s->closing = true;
    if (s->ops == 0) {
        sess_finish(s);
    } else if (!s->cancel_sent) {
        struct io_uring_sqe *sqe = get_sqe(s->t);
        io_uring_prep_cancel_fd(sqe, s->fd, IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(sqe, tag(NULL, OP_IGNORE));
        s->cancel_sent = true;
    }
}

/* sess_begin - claim a message and connect for it; ST_DONE when the budget
 * is used up. In --reuse mode the connection then carries more messages. */
static void sess_begin(struct sess *s)
{
    struct thr *t = s->t;
    while (mxb_claim(t->p, t->now)) {
        s->ticket = true;
        s->fd = socket(t->p->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s->fd >= 0) {
            /* TLS may send a flight while the last is unacknowledged: no
             * Nagle wait for the server's delayed ACK. */
            if (t->p->tls)
                setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
            struct io_uring_sqe *sqe = get_sqe(t);
            io_uring_prep_connect(sqe, s->fd, (struct sockaddr *)&t->p->addr, t->p->addrlen);
            io_uring_sqe_set_data64(sqe, tag(s, OP_CONNECT));
            s->ops++;
            s->stage = ST_CONNECT;
            s->deadline = t->now + t->op_ns;
            return;
        }
        t->st->errors[MXB_E_CONNECT]++;
        t->st->failed++;
        s->ticket = false;
    }
    s->stage = ST_DONE;
    t->live--;
}

/* arm_tick - the periodic timeout scan. */
static void arm_tick(struct thr *t)
{
    struct io_uring_sqe *sqe = get_sqe(t);
    io_uring_prep_timeout(sqe, &t->tick, 0, 0);
    io_uring_sqe_set_data64(sqe, tag(t, OP_TICK));
}

/* on_tick - end every session whose operation is overdue. */
static void on_tick(struct thr *t)
{
    for (unsigned i = 0; i < t->nsess; i++) {
        struct sess *s = &t->sess[i];
        if (s->stage > ST_IDLE && s->stage < ST_DONE && !s->closing && t->now > s->deadline)
            sess_end(s, MXB_E_TIMEOUT);
    }
    if (t->live > 0)
        arm_tick(t);
}

/* dispatch - route one completion. */
static void dispatch(struct thr *t, const struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    enum op op = (enum op)(ud & OP_MASK);
    if (op == OP_IGNORE)
        return;
    if (op == OP_TICK) {
        on_tick(t);
        return;
    }
    struct sess *s = (struct sess *)(uintptr_t)(ud & ~OP_MASK);
    s->ops--;
    if (op == OP_CONNECT)
        on_connect(s, cqe->res);
    else if (op == OP_SEND)
        on_send(s, cqe->res);
    else
        on_recv(s, cqe->res);
    if (s->closing && s->ops == 0)
        sess_finish(s);
}

/* ring_setup - an io_uring sized for nsess sessions, with the cheapest task
 * work mode the kernel offers. */
static int ring_setup(struct thr *t, unsigned nsess)
{
    static const unsigned modes[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN,
        0,
    };
    unsigned entries = SQ_MIN;
    while (entries < 2 * nsess + SQ_MIN && entries < SQ_MAX)
        entries *= 2;
    int ret = -EINVAL;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        struct io_uring_params prm;
        memset(&prm, 0, sizeof prm);
        prm.flags = modes[i] | IORING_SETUP_CQSIZE;
        prm.cq_entries = entries * 4;
        ret = io_uring_queue_init_params(entries, &t->ring, &prm);
        if (ret == 0)
            return 0;
    }
    return ret;
}

/* run_loop - submit, wait, dispatch until every session is done. */
static int run_loop(struct thr *t)
{
    while (t->live > 0) {
        int ret = io_uring_submit_and_wait(&t->ring, 1);
        if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
            return ret;
        t->now = mxb_now_ns();
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&t->ring, head, cqe) {
            dispatch(t, cqe);
            n++;
        }
        io_uring_cq_advance(&t->ring, n);
    }
    return 0;
}

/* mxb_thread_run - run nsess sessions on one ring, see mxbench.h. */
int mxb_thread_run(struct mxb_plan *p, unsigned nsess, struct mxb_stats *st)
{
    struct thr *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->p = p;
    t->st = st;
    t->nsess = nsess;
    t->live = nsess;
    t->op_ns = (uint64_t)p->o->timeout_s * NS_PER_S;
    t->tick.tv_sec = TICK_NS / (long long)NS_PER_S;
    t->sess = calloc(nsess, sizeof *t->sess);
    int ret = t->sess ? ring_setup(t, nsess) : -ENOMEM;
    if (ret == 0) {
        t->now = mxb_now_ns();
        arm_tick(t);
        for (unsigned i = 0; i < nsess; i++) {
            t->sess[i].t = t;
            t->sess[i].fd = -1;
            sess_begin(&t->sess[i]);
        }
        ret = run_loop(t);
        io_uring_queue_exit(&t->ring);
        for (unsigned i = 0; i < nsess; i++)
            free(t->sess[i].cbuf);
    }
    free(t->sess);
    free(t);
    return ret;
}
