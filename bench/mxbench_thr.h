/* mxbench_thr.h - private to one mxbench thread: the session and thread
 * structures shared by the event loop (mxbench_loop.c), the SMTP session
 * state machine (mxbench_sess.c) and the work policy that hands messages
 * to sessions (mxbench_work.c: closed loop from the shared budget, open
 * loop from the schedule). Everything here runs on the thread that owns
 * the struct thr. */
#ifndef MXBENCH_THR_H
#define MXBENCH_THR_H

#include <liburing.h>

#include "mxbench.h"
#include "mxbench_loop.h"

#define SESS_CLEAN (-1) /* sess_end(): no error */
#define SESS_ABORT (-2) /* sess_end(): Ctrl-C, count the message as aborted */

/* user_data layout: the low 3 bits name the operation, the rest points to
 * the session; sessions are 16-byte aligned.
 *   63 ........................ 3 | 2..0
 *   session pointer               | op
 * user_data 0 is a cancel request, whose completion is ignored. */
enum op { OP_IGNORE = 0, OP_CONNECT, OP_SEND, OP_RECV };
#define OP_MASK 0x7ull

#define RBUF_SIZE 2048 /* one reply must fit */

/* Open loop: the loop wakes for the schedule once per tick and releases
 * every message due by then in one batch (a message is never sent before
 * its time; its latency runs from its own scheduled time). */
#define MXB_TICK_NS 1000000ull
/* With several connections waiting for replies, the loop sleeps until
 * each has one or this long has passed (see enter_wait): fewer wake-ups
 * per message; a reply is seen at most this much later. */
#define MXB_GATHER_NS 50000ull

enum stage {
    ST_IDLE,    /* no connection */
    ST_CONNECT, /* connect in flight */
    ST_BANNER,  /* the rest up to ST_QUIT wait for the reply of this stage */
    ST_EHLO,
    ST_STARTTLS,
    ST_HANDSHAKE, /* TLS handshake; no reply expected */
    ST_AUTH,
    ST_MAIL,
    ST_RCPT,
    ST_DATA,
    ST_BODY,
    ST_QUIT,
    ST_READY, /* open loop: connected, waiting for a message */
    ST_DONE,  /* closed loop: budget used up, session ended */
};

struct thr;

struct sess {
    _Alignas(16) struct thr *t;
    int fd;
    enum stage stage;
    enum mxb_kind kind; /* of the current connection */
    unsigned rcpt_i;    /* RCPT replies seen in this transaction */
    unsigned ops;       /* SQEs in flight that name this session */
    unsigned conn_msgs; /* transactions started on this connection */
    unsigned gen;       /* connections closed so far: a handler that ended
                             * the connection (and maybe began the next) sees
                             * it change */
    int idle_i;         /* position in thr.idle, -1 when not there */
    bool ticket;        /* holds a message not yet accepted */
    bool presend;       /* MAIL..DATA went out in one write */
    bool can_pipe;      /* the server announced PIPELINING */
    bool recv_armed;
    bool send_busy;
    bool closing;
    bool cancel_sent;
    const char *wptr; /* unsent rest of the current write */
    size_t wlen;
    const char *pend; /* a write asked for while one was in flight */
    size_t pend_len;
    struct mxb_tls *tls;       /* after STARTTLS's 220, else NULL */
    char *cbuf;                /* TLS: ciphertext received, then to send */
    const struct mxb_msg *msg; /* of the current transaction */
    struct mxb_cmds cmds;      /* the current transaction's commands */
    uint64_t due;              /* scheduled time of the held message (open loop) */
    uint64_t hs_t0;            /* ClientHello queued */
    uint64_t t0;               /* latency start of the current message */
    uint64_t deadline;         /* of the operation in flight */
    size_t rlen;
    char rbuf[RBUF_SIZE];
};

struct thr {
    _Alignas(16) struct io_uring ring;
    struct mxb_plan *p;
    struct mxb_stats *st;
    struct sess *sess;
    unsigned nsess;
    unsigned id;          /* this thread's number, 0 .. p->nthreads - 1 */
    unsigned live;        /* closed loop: sessions not in ST_DONE */
    unsigned conns;       /* sessions with a socket */
    bool open;            /* open loop */
    bool gather;          /* the last gathering wait got completions */
    bool abort;           /* Ctrl-C seen */
    uint64_t now;         /* loop clock, refreshed after every wait */
    uint64_t op_ns;       /* --timeout in ns */
    uint64_t seq;         /* messages started by this thread */
    struct mxb_wrr kinds; /* --mix picker */
    struct mxb_pick pick; /* corpus position */
    /* open loop */
    struct mxb_sched sched;
    bool sched_done;   /* no message scheduled any more */
    uint64_t next_due; /* monotonic ns of the next scheduled message */
    uint64_t left;     /* this thread's share of --messages */
    uint64_t *bl;      /* backlog: scheduled times waiting for a connection */
    size_t bl_cap, bl_head, bl_n;
    struct sess **idle; /* connected sessions waiting for a message */
    unsigned nidle;
    struct sess **freel; /* sessions without a connection */
    unsigned nfree;
    /* --json-series */
    uint64_t sec_t;         /* the current second since the start */
    uint64_t sec_end;       /* its end, monotonic ns */
    struct mxb_counts prev; /* counters at its start */
    struct mxb_sec sec;     /* its latencies */
};

/* mxbench_sess.c: the SMTP client state machine. */

/* sess_connect - open a socket for a new connection of the next --mix
 * kind and queue the connect. False when socket() failed: counted as a
 * connect error and, with a held message, a failed one; s stays idle. */
bool sess_connect(struct sess *s);

/* sess_start - start the held message's transaction on s (connected,
 * ready). */
void sess_start(struct sess *s);

/* sess_quit - say QUIT; the session ends with the 221. */
void sess_quit(struct sess *s);

/* sess_end - end the connection; err >= 0 counts an error of that kind (and
 * a failed message when one was held), SESS_CLEAN is a clean end,
 * SESS_ABORT counts a held message as aborted. */
void sess_end(struct sess *s, int err);

/* sess_complete - route one completion of op with result res to s. */
void sess_complete(struct sess *s, enum op op, int res);

/* mxbench_work.c: who sends which message when. */

/* work_ready - s is connected and ready: right after the greeting (with
 * the message it was opened for, if any) or after a message was accepted.
 * Starts a message, parks s idle (open loop) or says QUIT. */
void work_ready(struct sess *s);

/* work_closed - s's connection is closed: closed loop, claim the next
 * message and connect again (or end the session); open loop, s becomes
 * free and serves the backlog. */
void work_closed(struct sess *s);

/* work_start - the first work of the thread (closed loop: every session
 * claims and connects; open loop: the first scheduled time). */
void work_start(struct thr *t);

/* work_pump - open loop: hand out every message due by t->now; end the
 * schedule at the deadline or on Ctrl-C. */
void work_pump(struct thr *t);

/* work_abort - Ctrl-C: drop the backlog, end every connection now. */
void work_abort(struct thr *t);

/* work_done - true when the thread has nothing left to do. */
bool work_done(const struct thr *t);

/* work_idle_remove - take s out of the idle list (its connection ended). */
void work_idle_remove(struct sess *s);

#endif
