/* milterio_int.h - private to net/milterio*.c: one milter's conversation
 * (struct mconv: its socket, operations and protocol state; milterio_conv.c
 * drives it, milterio_reply.c decodes what the milter answers) and the
 * session that holds one per milter and runs the jobs over them (struct
 * milterio_sess, milterio.c). Worker thread only. */
#ifndef MXRING_MILTERIO_INT_H
#define MXRING_MILTERIO_INT_H

#include "reply.h" /* before liburing.h: unistd.h's R_OK macro */

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "filter.h"
#include "milter.h"
#include "milterio.h"
#include "session.h"
#include "uring.h"
#include "util.h"

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
    bool data_said; /* the DATA stage went out at the DATA command (or first BDAT) */
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

/* What a reply means for the conversation. */
enum { R_MORE = 0, R_GO_ON, R_OVER };

/* now_ms - monotonic milliseconds. */
static inline uint64_t mio_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* mio_rcpt_at - recipient i of the message m. */
static inline const char *mio_rcpt_at(const struct sess_msg *m, size_t i)
{
    const char *p = m->rcpts;
    while (i--)
        p += strlen(p) + 1;
    return p;
}

/* ---- milterio_conv.c: one conversation ---- */

/* mconv_name - the milter's name; mconv_stage_name - its current stage. */
const char *mconv_name(const struct mconv *r);
const char *mconv_stage_name(const struct mconv *r);
/* mconv_fail - the conversation failed (the first reason is kept). */
void mconv_fail(struct mconv *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* mconv_init - conversation k of session ms, not connected. */
void mconv_init(struct mconv *r, struct milterio_sess *ms, size_t k);
/* mconv_begin - milter r->k's part of the session's job: connect (or take
 * an idle connection) when the conversation is new, then its stages. */
void mconv_begin(struct mconv *r);
/* mconv_next_stage - the next step of the stage, or the next stage. */
void mconv_next_stage(struct mconv *r);
/* mconv_done - this milter's part of the job is over: the next milter. */
void mconv_done(struct mconv *r);
/* mconv_over - the conversation failed: default action, closed. */
void mconv_over(struct mconv *r);
/* mconv_recv - read (more of) the milter's replies. */
void mconv_recv(struct mconv *r);
/* mconv_close - close the conversation's socket. */
void mconv_close(struct mconv *r);

/* ---- milterio_reply.c: the milter's replies ---- */

/* mconv_on_reply - one reply at the current stage: R_MORE (wait for more),
 * R_GO_ON (next step) or R_OVER (this milter's part is over, or it failed). */
int mconv_on_reply(struct mconv *r, const struct milter_reply *rep);
/* mconv_received - n octets of replies in r->rbuf: decode and act. */
void mconv_received(struct mconv *r, size_t n);

/* ---- milterio.c: the session's jobs ---- */

/* mjob_next - milter ms->k's part of the job, or the end of the job. */
void mjob_next(struct milterio_sess *ms);
/* mjob_default_refuse - milter_default_action ends the job. */
void mjob_default_refuse(struct mconv *r, const char *why);
/* mjob_action_word - milter_default_action for the log. */
const char *mjob_action_word(unsigned a);
/* mjob_maybe_free - an ended session goes once nothing is due. */
void mjob_maybe_free(struct milterio_sess *ms);

#endif
