/* smtpc.c - the SMTP/LMTP client state machine: one table of connection
 * states (what the caller is asked to do), one table of commands (which
 * stage a reply belongs to and its handler), a queue of commands whose
 * replies are outstanding (several with PIPELINING), one enter_state()
 * naming every transition, and dot-stuffing of the streamed body (the reply
 * parser, capabilities and result records: smtpc_reply.c). Pure over bytes;
 * owned by the thread driving the connection. Behaviour: smtpc.h. */
#include "smtpc.h"
#include "smtpc_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"

/* Connection states. */
enum c_state {
    CS_GREETING = 0, /* connected, the 220 is awaited */
    CS_HELLO,        /* EHLO / LHLO / HELO sent */
    CS_STARTTLS,     /* STARTTLS sent */
    CS_TLS,          /* the caller does the handshake */
    CS_TXN,          /* RSET / MAIL / RCPT / DATA replies awaited */
    CS_BODY,         /* the caller feeds the message */
    CS_DOT,          /* the replies to the final dot are awaited */
    CS_DONE,         /* results of the message are ready */
    CS_IDLE,         /* usable, no message */
    CS_QUIT,         /* QUIT sent (maybe behind outstanding replies) */
    CS_CLOSED,
};

/* Per state: what the caller is asked to do, and whether input is held
 * (the caller acts next; replies are matched once it has: so the outcome
 * never depends on how the hop's bytes were split). */
static const struct {
    const char *name;
    enum smtpc_want want;
    bool hold;
} state_table[] = {
    [CS_GREETING] = {"greeting", SMTPC_NEED_INPUT, false},
    [CS_HELLO] = {"hello", SMTPC_NEED_INPUT, false},
    [CS_STARTTLS] = {"starttls", SMTPC_NEED_INPUT, false},
    [CS_TLS] = {"tls", SMTPC_START_TLS, true},
    [CS_TXN] = {"transaction", SMTPC_NEED_INPUT, false},
    [CS_BODY] = {"body", SMTPC_SEND_BODY, true},
    [CS_DOT] = {"dot", SMTPC_NEED_INPUT, false},
    [CS_DONE] = {"done", SMTPC_MSG_DONE, true},
    [CS_IDLE] = {"idle", SMTPC_IDLE, true},
    [CS_QUIT] = {"quit", SMTPC_NEED_INPUT, false},
    [CS_CLOSED] = {"closed", SMTPC_CLOSED, false},
};

/* Commands whose replies can be outstanding. */
enum c_kind {
    K_GREETING = 0,
    K_EHLO,
    K_HELO,
    K_STARTTLS,
    K_RSET,
    K_MAIL,
    K_RCPT,
    K_DATA,
    K_DOT,
    K_DOT_ABORT,
    K_QUIT
};

/* One outstanding reply: the command and its argument (recipient index). */
struct pend {
    enum c_kind kind;
    size_t arg;
};

/* The message being delivered (a private copy). */
struct cmsg {
    char *sender;
    char **rcpts;
    char *mail_dsn;  /* " RET=.. ENVID=..", "" = none (sent when the hop offers DSN) */
    char **rcpt_dsn; /* per recipient " NOTIFY=.. ORCPT=..", "" = none */
    size_t nrcpt;
    uint64_t size;
    bool body8, smtputf8;
};

struct smtpc {
    enum c_state state;
    enum smtpc_mode mode;
    enum smtpc_tls tls;
    bool tls_active;
    bool quitting;    /* QUIT queued: outstanding replies are drained */
    bool rset_needed; /* a transaction is open on the hop */
    bool mail_ok;     /* MAIL accepted for the current message */
    bool mail_failed; /* MAIL refused: later replies of the group are ignored */
    bool body_nl;     /* the body fed so far ends a line (or is empty) */
    char *helo;
    struct smtpc_caps caps;
    struct cmsg *msg;          /* NULL = none */
    struct smtpc_res *results; /* msg->nrcpt of them */
    bool *accepted;            /* RCPT accepted */
    size_t naccepted;
    struct pend *q; /* outstanding replies, a ring */
    size_t qcap, qhead, qlen;
    struct smtpc_res err; /* why CLOSED */
    struct smtpc_rparse rp;
    struct sb held; /* input that arrived while no reply was awaited */
    struct sb out;
};

/* Reply classes a command may get (bit n = nxx); others are a protocol
 * error, so a recipient never gets a 2xx result for something not done. */
#define CL(n) (1u << (n))
#define CL_NORMAL (CL(2) | CL(4) | CL(5))
#define CL_ANY (CL(2) | CL(3) | CL(4) | CL(5))

struct smtpc_cmd {
    enum c_kind kind;
    enum smtpc_stage stage;
    unsigned classes;
    void (*on_reply)(struct smtpc *c, const struct smtpc_reply *r, size_t arg);
};

static void enter_state(struct smtpc *c, enum c_state st);
static void begin_msg(struct smtpc *c);
static void fail_local(struct smtpc *c, bool quit, enum smtpc_stage stage, enum reply_id id,
                       const char *arg);

/* ---- results ---------------------------------------------------------- */

/* set_undecided - every recipient without a result gets a copy of r. */
static void set_undecided(struct smtpc *c, const struct smtpc_res *r)
{
    for (size_t i = 0; c->msg && i < c->msg->nrcpt; i++)
        if (!c->results[i].code)
            smtpc_res_copy(&c->results[i], r);
}

/* ---- output and the reply queue ----------------------------------------- */

/* emit - append one command line (printf style) with CRLF; false on ENOMEM. */
static bool emit(struct smtpc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool emit(struct smtpc *c, const char *fmt, ...)
{
    char line[SMTPC_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return false;
    if ((size_t)n >= sizeof line - 2)
        n = (int)strlen(line);
    memcpy(line + n, "\r\n", 2);
    return sb_append(&c->out, line, (size_t)n + 2);
}

/* expect - one more outstanding reply; false on ENOMEM. */
static bool expect(struct smtpc *c, enum c_kind kind, size_t arg)
{
    if (c->qlen == c->qcap) {
        size_t nc = c->qcap ? c->qcap * 2 : 8;
        struct pend *q = malloc(nc * sizeof *q);
        if (!q)
            return false;
        for (size_t i = 0; i < c->qlen; i++)
            q[i] = c->q[(c->qhead + i) % c->qcap];
        free(c->q);
        c->q = q, c->qcap = nc, c->qhead = 0;
    }
    c->q[(c->qhead + c->qlen) % c->qcap] = (struct pend){kind, arg};
    c->qlen++;
    return true;
}

/* send_cmd - emit a command and expect its reply. */
#define send_cmd(c, kind, arg, ...)                                 \
    do {                                                            \
        if (!emit((c), __VA_ARGS__) || !expect((c), (kind), (arg))) \
            fail_nomem(c);                                          \
    } while (0)

/* ---- ending the connection -------------------------------------------- */

/* close_with - CLOSED because of r; undecided recipients share it; QUIT is
 * sent first when the hop can still take commands (quit). */
static void close_with(struct smtpc *c, const struct smtpc_res *r, bool quit)
{
    set_undecided(c, r);
    smtpc_res_copy(&c->err, r);
    if (quit)
        (void)emit(c, "QUIT"); /* courtesy only: closing either way */
    enter_state(c, CS_CLOSED);
}

/* fail_reply - the hop answered r where it should not have: end. A 421
 * means the hop is closing already: no QUIT. */
static void fail_reply(struct smtpc *c, const struct smtpc_reply *r, enum smtpc_stage stage)
{
    struct smtpc_res tmp = {0};
    if (r->code < 400) { /* "220"-class words must never become a recipient's result */
        fail_local(c, true, SMTPC_ST_PROTOCOL, R_C_PROTOCOL, "unexpected reply code");
        return;
    }
    smtpc_res_reply(&tmp, r, stage);
    close_with(c, &tmp, r->code != 421);
    smtpc_res_clear(&tmp);
}

/* fail_local - end with a reply table entry (printf arguments). */
static void fail_local(struct smtpc *c, bool quit, enum smtpc_stage stage, enum reply_id id,
                       const char *arg)
{
    struct smtpc_res tmp = {0};
    smtpc_res_local(&tmp, stage, id, arg);
    close_with(c, &tmp, quit);
    smtpc_res_clear(&tmp);
}

/* fail_nomem - no memory for bookkeeping: give up on this connection. */
static void fail_nomem(struct smtpc *c)
{
    fail_local(c, false, SMTPC_ST_LOCAL, R_C_CONN_LOST, "out of memory");
}

/* ---- the message ------------------------------------------------------- */

/* msg_free - drop the message and its results. */
static void msg_free(struct smtpc *c)
{
    if (!c->msg)
        return;
    for (size_t i = 0; i < c->msg->nrcpt; i++) {
        free(c->msg->rcpts[i]);
        free(c->msg->rcpt_dsn[i]);
        smtpc_res_clear(&c->results[i]);
    }
    free(c->msg->rcpts);
    free(c->msg->rcpt_dsn);
    free(c->msg->mail_dsn);
    free(c->msg->sender);
    free(c->msg);
    free(c->results);
    free(c->accepted);
    c->msg = NULL, c->results = NULL, c->accepted = NULL;
}

/* msg_copy - take a private copy of m as the current message. */
static bool msg_copy(struct smtpc *c, const struct smtpc_msg *m)
{
    struct cmsg *x = calloc(1, sizeof *x);
    if (!x)
        return false;
    c->msg = x;
    x->sender = strdup(m->sender ? m->sender : "");
    x->mail_dsn = strdup(m->mail_dsn ? m->mail_dsn : "");
    x->rcpts = calloc(m->nrcpt, sizeof *x->rcpts);
    x->rcpt_dsn = calloc(m->nrcpt, sizeof *x->rcpt_dsn);
    c->results = calloc(m->nrcpt, sizeof *c->results);
    c->accepted = calloc(m->nrcpt, sizeof *c->accepted);
    if (!x->sender || !x->mail_dsn || !x->rcpts || !x->rcpt_dsn || !c->results || !c->accepted)
        return false;
    for (size_t i = 0; i < m->nrcpt; i++, x->nrcpt++) {
        const char *rd = m->rcpt_dsn && m->rcpt_dsn[i] ? m->rcpt_dsn[i] : "";
        x->rcpts[i] = strdup(m->rcpts[i] ? m->rcpts[i] : "");
        x->rcpt_dsn[i] = strdup(rd);
        if (!x->rcpts[i] || !x->rcpt_dsn[i]) {
            x->nrcpt++; /* msg_free releases this one too */
            return false;
        }
    }
    x->size = m->size, x->body8 = m->body8, x->smtputf8 = m->smtputf8;
    c->naccepted = 0;
    c->mail_ok = c->mail_failed = false;
    c->body_nl = true;
    return true;
}

/* msg_set - replace the current message with a copy of m (NULL = none). */
static bool msg_set(struct smtpc *c, const struct smtpc_msg *m)
{
    msg_free(c);
    if (!m)
        return true;
    if (m->nrcpt == 0 || !m->rcpts || !msg_copy(c, m)) {
        msg_free(c);
        return false;
    }
    return true;
}

/* local_check - can this hop take the message? Sets every result when not. */
static bool local_check(struct smtpc *c)
{
    const struct cmsg *m = c->msg;
    struct smtpc_res tmp = {0};
    if (c->caps.size && c->caps.size_max && m->size > c->caps.size_max)
        smtpc_res_local(&tmp, SMTPC_ST_LOCAL, R_C_TOO_BIG, (unsigned long long)m->size,
                        (unsigned long long)c->caps.size_max);
    else if (m->body8 && !c->caps.eightbitmime)
        smtpc_res_local(&tmp, SMTPC_ST_LOCAL, R_C_NO_8BITMIME);
    else if (m->smtputf8 && !c->caps.smtputf8)
        smtpc_res_local(&tmp, SMTPC_ST_LOCAL, R_C_NO_SMTPUTF8);
    if (!tmp.code)
        return true;
    set_undecided(c, &tmp);
    smtpc_res_clear(&tmp);
    return false;
}

/* send_mail - MAIL FROM with the parameters the message needs and the hop
 * offers. */
static void send_mail(struct smtpc *c)
{
    const struct cmsg *m = c->msg;
    char size[40] = "";
    if (c->caps.size)
        snprintf(size, sizeof size, " SIZE=%llu", (unsigned long long)m->size);
    send_cmd(c, K_MAIL, 0, "MAIL FROM:<%s>%s%s%s%s", m->sender, size,
             m->body8 ? " BODY=8BITMIME" : "", m->smtputf8 ? " SMTPUTF8" : "",
             c->caps.dsn ? m->mail_dsn : "");
}

/* send_rcpt - RCPT TO for recipient i. */
static void send_rcpt(struct smtpc *c, size_t i)
{
    send_cmd(c, K_RCPT, i, "RCPT TO:<%s>%s", c->msg->rcpts[i],
             c->caps.dsn ? c->msg->rcpt_dsn[i] : "");
}

/* begin_msg - the connection is ready: start the current message (or idle). */
static void begin_msg(struct smtpc *c)
{
    if (!c->msg) {
        enter_state(c, CS_IDLE);
        return;
    }
    if (!local_check(c)) {
        enter_state(c, CS_DONE);
        return;
    }
    enter_state(c, CS_TXN);
    send_mail(c);
    if (!c->caps.pipelining)
        return;
    for (size_t i = 0; i < c->msg->nrcpt && c->state == CS_TXN; i++)
        send_rcpt(c, i);
    if (c->state == CS_TXN)
        send_cmd(c, K_DATA, 0, "DATA");
}

/* after_hello - greeted and EHLO/HELO answered: TLS, then the message. */
static void after_hello(struct smtpc *c)
{
    if (!c->tls_active && c->tls != SMTPC_TLS_NONE && c->caps.starttls) {
        enter_state(c, CS_STARTTLS);
        send_cmd(c, K_STARTTLS, 0, "STARTTLS");
    } else if (!c->tls_active && c->tls == SMTPC_TLS_REQUIRE) {
        fail_local(c, true, SMTPC_ST_STARTTLS, R_C_NO_STARTTLS, NULL);
    } else {
        begin_msg(c);
    }
}

/* send_hello - EHLO (LHLO in LMTP mode). */
static void send_hello(struct smtpc *c)
{
    memset(&c->caps, 0, sizeof c->caps);
    enter_state(c, CS_HELLO);
    send_cmd(c, K_EHLO, 0, "%s %s", c->mode == SMTPC_LMTP ? "LHLO" : "EHLO", c->helo);
}

/* ---- reply handlers (the command table) ------------------------------ */

static void on_greeting(struct smtpc *c, const struct smtpc_reply *r, size_t arg)
{
    (void)arg;
    if (r->code != 220)
        fail_reply(c, r, SMTPC_ST_GREETING);
    else
        send_hello(c);
}

static void on_ehlo(struct smtpc *c, const struct smtpc_reply *r, size_t arg)
{
    (void)arg;
    if (r->code / 100 == 2) {
        smtpc_caps_parse(&c->caps, &r->text);
        after_hello(c);
    } else if (c->mode == SMTPC_SMTP && (r->code == 500 || r->code == 502)) {
        send_cmd(c, K_HELO, 0, "HELO %s", c->helo); /* an RFC 821 hop */
    } else {
        fail_reply(c, r, SMTPC_ST_HELLO);
    }
}

static void on_helo(struct smtpc *c, const struct smtpc_reply *r, size_t arg)
{
    (void)arg;
    memset(&c->caps, 0, sizeof c->caps);
    if (r->code / 100 == 2)
        after_hello(c);
    else
        fail_reply(c, r, SMTPC_ST_HELLO);
}

static void on_starttls(struct smtpc *c, const struct smtpc_reply *r, size_t arg)
{
    (void)arg;
    if (r->code == 220)
        enter_state(c, CS_TLS);
    else if (r->code == 421 || c->tls == SMTPC_TLS_REQUIRE) {
        if (r->code == 421)
            fail_reply(c, r, SMTPC_ST_STARTTLS);
        else
            fail_local(c, true, SMTPC_ST_STARTTLS, R_C_STARTTLS_REFUSED,
                       r->text.data ? r->text.data : "");
    } else {
        begin_msg(c); /* tls=may: go on in plain text */
    }
}

static void on_rset(struct smtpc *c, const struct smtpc_reply *r, size_t arg)
{
    (void)arg;
    if (r->code / 100 != 2) {
        fail_reply(c, r, SMTPC_ST_RSET);
        return;
    }
    c->rset_needed = false;
    if (!c->caps.pipelining || !c->msg)
        begin_msg(c); /* pipelined: MAIL is already on its way */
}

/* all_results - every recipient without a result gets reply r. */
static void all_results(struct smtpc *c, const struct smtpc_reply *r, enum smtpc_stage st)
{
    struct smtpc_res tmp = {0};
    smtpc_res_reply(&tmp, r, st);
    set_undecided(c, &tmp);
    smtpc_res_clear(&tmp);
}

static void on_mail(struct smtpc *c, const struct smtpc_reply *r, size_t arg)
{
    (void)arg;
    if (r->code / 100 == 2) {
        c->mail_ok = c->rset_needed = true;
        if (!c->caps.pipelining)
            send_rcpt(c, 0);
        return;
    }
    all_results(c, r, SMTPC_ST_MAIL);
    c->mail_failed = true;
    if (r->code == 421)
        fail_reply(c, r, SMTPC_ST_MAIL);
}

/* rcpts_done - unpipelined: after the last RCPT, DATA or the end. */
static void rcpts_done(struct smtpc *c)
{
    if (c->naccepted)
        send_cmd(c, K_DATA, 0, "DATA");
}

static void on_rcpt(struct smtpc *c, const struct smtpc_reply *r, size_t i)
{
    if (c->mail_failed)
        return; /* pipelined behind a refused MAIL: the 503s mean nothing */
    if (r->code / 100 == 2) {
        c->accepted[i] = true;
        c->naccepted++;
    } else {
        smtpc_res_reply(&c->results[i], r, SMTPC_ST_RCPT);
        if (r->code == 421) {
            fail_reply(c, r, SMTPC_ST_RCPT);
            return;
        }
    }
    if (!c->caps.pipelining && i + 1 < c->msg->nrcpt)
        send_rcpt(c, i + 1);
    else if (!c->caps.pipelining)
        rcpts_done(c);
}

static void on_data(struct smtpc *c, const struct smtpc_reply *r, size_t arg)
{
    (void)arg;
    if (r->code / 100 == 3 && c->mail_ok && c->naccepted) {
        enter_state(c, CS_BODY);
    } else if (r->code / 100 == 3) {
        send_cmd(c, K_DOT_ABORT, 0, "."); /* RFC 2920 3.1: nobody to deliver to */
    } else if (!c->mail_failed) {
        all_results(c, r, SMTPC_ST_DATA);
        if (r->code == 421)
            fail_reply(c, r, SMTPC_ST_DATA);
    }
}

static void on_dot(struct smtpc *c, const struct smtpc_reply *r, size_t i)
{
    if (c->mode == SMTPC_LMTP)
        smtpc_res_reply(&c->results[i], r, SMTPC_ST_DOT);
    else
        all_results(c, r, SMTPC_ST_DOT);
    c->rset_needed = false;
    if (r->code == 421)
        fail_reply(c, r, SMTPC_ST_DOT);
}

static void on_dot_abort(struct smtpc *c, const struct smtpc_reply *r, size_t arg)
{
    (void)arg;
    c->rset_needed = false;
    if (r->code == 421)
        fail_reply(c, r, SMTPC_ST_DOT);
}

static void on_quit(struct smtpc *c, const struct smtpc_reply *r, size_t arg)
{
    (void)arg;
    struct smtpc_res tmp = {0};
    smtpc_res_reply(&tmp, r, SMTPC_ST_QUIT);
    close_with(c, &tmp, false);
    smtpc_res_clear(&tmp);
}

static const struct smtpc_cmd cmd_table[] = {
    [K_GREETING] = {K_GREETING, SMTPC_ST_GREETING, CL_NORMAL, on_greeting},
    [K_EHLO] = {K_EHLO, SMTPC_ST_HELLO, CL_NORMAL, on_ehlo},
    [K_HELO] = {K_HELO, SMTPC_ST_HELLO, CL_NORMAL, on_helo},
    [K_STARTTLS] = {K_STARTTLS, SMTPC_ST_STARTTLS, CL_NORMAL, on_starttls},
    [K_RSET] = {K_RSET, SMTPC_ST_RSET, CL_NORMAL, on_rset},
    [K_MAIL] = {K_MAIL, SMTPC_ST_MAIL, CL_NORMAL, on_mail},
    [K_RCPT] = {K_RCPT, SMTPC_ST_RCPT, CL_NORMAL, on_rcpt},
    [K_DATA] = {K_DATA, SMTPC_ST_DATA, CL(3) | CL(4) | CL(5), on_data},
    [K_DOT] = {K_DOT, SMTPC_ST_DOT, CL_NORMAL, on_dot},
    [K_DOT_ABORT] = {K_DOT_ABORT, SMTPC_ST_DOT, CL_ANY, on_dot_abort},
    [K_QUIT] = {K_QUIT, SMTPC_ST_QUIT, CL_ANY, on_quit},
};

/* ---- dispatch ----------------------------------------------------------- */

/* enter_state - every transition goes through here. Entering DONE without
 * a message means IDLE; CLOSED drops the outstanding replies. */
static void enter_state(struct smtpc *c, enum c_state st)
{
    if (st == CS_DONE && !c->msg)
        st = CS_IDLE;
    if (st == CS_CLOSED)
        c->qlen = 0;
    c->state = st;
}

/* on_reply - one complete reply from the hop. */
static void on_reply(struct smtpc *c, const struct smtpc_reply *r)
{
    if (c->qlen == 0) {
        if (r->code == 421)
            fail_reply(c, r, SMTPC_ST_PROTOCOL); /* the hop gives up (idle timeout) */
        else
            fail_local(c, true, SMTPC_ST_PROTOCOL, R_C_PROTOCOL, "reply without a command");
        return;
    }
    struct pend p = c->q[c->qhead];
    c->qhead = (c->qhead + 1) % c->qcap;
    c->qlen--;
    if (c->quitting && p.kind != K_QUIT)
        return;
    if (!(cmd_table[p.kind].classes & CL(r->code / 100))) {
        fail_local(c, true, SMTPC_ST_PROTOCOL, R_C_PROTOCOL, "unexpected reply code");
        return;
    }
    cmd_table[p.kind].on_reply(c, r, p.arg);
    if (c->qlen == 0 && (c->state == CS_TXN || c->state == CS_DOT))
        enter_state(c, CS_DONE);
}

/* feed - run input through the parser while replies are awaited; the rest
 * is held once the caller has to act first. */
static void feed(struct smtpc *c, const char *in, size_t len)
{
    size_t pos = 0;
    while (c->state != CS_CLOSED && pos < len) {
        if (state_table[c->state].hold) {
            if (!sb_append(&c->held, in + pos, len - pos))
                fail_nomem(c);
            return;
        }
        const struct smtpc_reply *r;
        const char *why = NULL;
        enum smtpc_rp_status st = smtpc_rp_feed(&c->rp, in, len, &pos, &r, &why);
        if (st == SMTPC_RP_MORE)
            break;
        if (st == SMTPC_RP_BAD)
            fail_local(c, false, SMTPC_ST_PROTOCOL, R_C_PROTOCOL, why);
        else
            on_reply(c, r);
    }
}

/* resume - after the caller acted: replay held input if replies are now
 * awaited. */
static void resume(struct smtpc *c)
{
    if (!c->held.len || state_table[c->state].hold || c->state == CS_CLOSED)
        return;
    struct sb h = c->held;
    c->held = (struct sb){0};
    feed(c, h.data, h.len);
    sb_free(&h);
}

void smtpc_input(struct smtpc *c, const void *bytes, size_t len)
{
    feed(c, bytes, len);
}

/* ---- the body ------------------------------------------------------------ */

void smtpc_body(struct smtpc *c, const void *buf, size_t len, bool last)
{
    const char *p = buf, *end = p + len;
    if (c->state != CS_BODY)
        return;
    bool ok = true;
    while (ok && p < end) {
        if (c->body_nl && *p == '.')
            ok = sb_append(&c->out, ".", 1); /* RFC 5321 4.5.2 */
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl + 1 : end;
        ok = ok && sb_append(&c->out, p, (size_t)(stop - p));
        c->body_nl = nl != NULL;
        p = stop;
    }
    if (!ok) {
        fail_nomem(c);
        return;
    }
    if (!last)
        return;
    if (!c->body_nl)
        emit(c, "%s", "");
    emit(c, ".");
    enter_state(c, CS_DOT);
    for (size_t i = 0; i < c->msg->nrcpt && c->state == CS_DOT; i++)
        if (c->mode == SMTPC_LMTP ? c->accepted[i] : i == 0)
            if (!expect(c, K_DOT, i))
                fail_nomem(c);
    resume(c);
}

/* ---- the public API ------------------------------------------------------ */

struct smtpc *smtpc_new(const struct smtpc_opts *opts, const struct smtpc_msg *msg)
{
    struct smtpc *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->mode = opts->mode;
    c->tls = opts->tls;
    c->tls_active = opts->tls_active;
    c->helo = strdup(opts->helo_name ? opts->helo_name : "localhost");
    if (!c->helo || !msg_set(c, msg) || !expect(c, K_GREETING, 0)) {
        smtpc_free(c);
        return NULL;
    }
    enter_state(c, CS_GREETING);
    return c;
}

void smtpc_free(struct smtpc *c)
{
    if (!c)
        return;
    msg_free(c);
    smtpc_res_clear(&c->err);
    smtpc_rp_free(&c->rp);
    sb_free(&c->held);
    sb_free(&c->out);
    free(c->q);
    free(c->helo);
    free(c);
}

enum smtpc_want smtpc_want(const struct smtpc *c)
{
    return state_table[c->state].want;
}

struct sb *smtpc_output(struct smtpc *c)
{
    return &c->out;
}

void smtpc_tls_done(struct smtpc *c, bool ok)
{
    if (c->state != CS_TLS)
        return;
    if (!ok) {
        fail_local(c, false, SMTPC_ST_STARTTLS, R_C_TLS_FAILED, NULL);
        return;
    }
    if (c->held.len || c->rp.line.len) { /* bytes sent in clear after the 220: injection */
        fail_local(c, false, SMTPC_ST_STARTTLS, R_C_PROTOCOL, "data before the TLS handshake");
        return;
    }
    c->tls_active = true;
    send_hello(c); /* RFC 3207 4.2: forget what was said before TLS */
}

void smtpc_abort(struct smtpc *c, const char *why)
{
    if (c->state != CS_CLOSED)
        fail_local(c, false, SMTPC_ST_CONNECT, R_C_CONN_LOST, why ? why : "closed");
}

/* next_start - smtpc_next's work; true when msg was taken. */
static bool next_start(struct smtpc *c, const struct smtpc_msg *msg)
{
    if (c->state != CS_DONE && c->state != CS_IDLE)
        return false;
    if (msg && (msg->nrcpt == 0 || !msg->rcpts))
        return false;
    if (!msg_set(c, msg)) {
        fail_nomem(c);
        return false;
    }
    if (c->msg && !local_check(c)) {
        enter_state(c, CS_DONE); /* RSET stays owed for the next message */
        return true;
    }
    if (!c->rset_needed) {
        begin_msg(c);
        return true;
    }
    enter_state(c, CS_TXN);
    send_cmd(c, K_RSET, 0, "RSET");
    if (c->caps.pipelining && c->msg && c->state == CS_TXN) {
        c->rset_needed = false;
        begin_msg(c);
    }
    return true;
}

bool smtpc_next(struct smtpc *c, const struct smtpc_msg *msg)
{
    bool ok = next_start(c, msg);
    resume(c);
    return ok;
}

void smtpc_quit(struct smtpc *c)
{
    struct smtpc_res tmp = {0};
    if (c->state == CS_CLOSED || c->state == CS_QUIT)
        return;
    smtpc_res_local(&tmp, SMTPC_ST_QUIT, R_C_ABANDONED);
    set_undecided(c, &tmp);
    smtpc_res_clear(&tmp);
    if (c->state == CS_BODY || c->state == CS_TLS) {
        fail_local(c, false, SMTPC_ST_QUIT, R_C_ABANDONED, NULL); /* QUIT would be data */
        return;
    }
    c->quitting = true;
    if (!emit(c, "QUIT") || !expect(c, K_QUIT, 0))
        fail_nomem(c);
    else
        enter_state(c, CS_QUIT);
    resume(c);
}

bool smtpc_rcpt_result(const struct smtpc *c, size_t i, struct smtpc_result *res)
{
    if (!c->msg || i >= c->msg->nrcpt || !c->results[i].code)
        return false;
    smtpc_res_export(&c->results[i], res);
    return true;
}

size_t smtpc_nrcpt(const struct smtpc *c)
{
    return c->msg ? c->msg->nrcpt : 0;
}

void smtpc_error(const struct smtpc *c, struct smtpc_result *res)
{
    memset(res, 0, sizeof *res);
    res->text = "";
    if (c->state == CS_CLOSED)
        smtpc_res_export(&c->err, res);
}

const struct smtpc_caps *smtpc_caps(const struct smtpc *c)
{
    return &c->caps;
}

bool smtpc_tls_active(const struct smtpc *c)
{
    return c->tls_active;
}

const char *smtpc_stage_name(enum smtpc_stage st)
{
    static const char *const names[] = {
        [SMTPC_ST_CONNECT] = "connect", [SMTPC_ST_GREETING] = "greeting",
        [SMTPC_ST_HELLO] = "EHLO",      [SMTPC_ST_STARTTLS] = "STARTTLS",
        [SMTPC_ST_MAIL] = "MAIL",       [SMTPC_ST_RCPT] = "RCPT",
        [SMTPC_ST_DATA] = "DATA",       [SMTPC_ST_DOT] = "end of data",
        [SMTPC_ST_RSET] = "RSET",       [SMTPC_ST_QUIT] = "QUIT",
        [SMTPC_ST_LOCAL] = "local",     [SMTPC_ST_PROTOCOL] = "protocol",
    };
    return (unsigned)st < MX_ARRAY_LEN(names) ? names[st] : "?";
}
