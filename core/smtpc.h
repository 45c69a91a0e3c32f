/* smtpc.h - the client side of SMTP (RFC 5321) and LMTP (RFC 2033) as a
 * pure, table-driven state machine: reply bytes from the next hop go in,
 * command bytes to send and "what next" come out. No I/O, no clock: the
 * caller (the delivery engine) owns the socket, TLS, timeouts. One
 * connection = one struct smtpc, owned by one thread at a time.
 *
 * Driving it from an event loop:
 *
 *   c = smtpc_new(&opts, &msg);          // or msg NULL: connect and idle
 *   loop:
 *     send everything in smtpc_output(c) (sb_consume() what was sent);
 *     switch (smtpc_want(c)):
 *     NEED_INPUT: read from the hop, smtpc_input(c, bytes, n)
 *                 (EOF / error / timeout: smtpc_abort(c, "why"));
 *     SEND_BODY:  smtpc_body(c, piece, n, last) with the message bytes as
 *                 stored in the queue file (after the envelope block: the
 *                 Received: line and the message, dot-unstuffed, CRLF), in
 *                 pieces of any size; feed the next piece when the output
 *                 has drained (smtpc_output(c)->len is what is buffered);
 *     START_TLS:  the output is empty; do the TLS handshake on the socket,
 *                 then smtpc_tls_done(c, ok) (EHLO is sent again after it);
 *     MSG_DONE:   smtpc_rcpt_result(c, i, &res) for every recipient; then
 *                 smtpc_next(c, &msg2) for another message on this
 *                 connection, smtpc_next(c, NULL) to park it (IDLE), or
 *                 smtpc_quit(c);
 *     IDLE:       ready, no message: smtpc_next(c, &msg) or smtpc_quit(c);
 *     CLOSED:     send what is left in the output (a QUIT, maybe), close.
 *                 smtpc_error(c) says why; recipients of a message in
 *                 flight that had no reply yet carry that failure as their
 *                 result (smtpc_rcpt_result works in CLOSED too).
 *
 * Protocol behaviour:
 *  - Greeting 220, then EHLO (LHLO in LMTP mode). An SMTP hop refusing EHLO
 *    with 500/502 gets HELO (no extensions). Capabilities parsed from the
 *    EHLO reply: PIPELINING, SIZE [n], 8BITMIME, SMTPUTF8, STARTTLS,
 *    DSN (keywords case-insensitive).
 *  - STARTTLS: sent when offered and tls is not NONE; when not offered (or
 *    refused) and tls is REQUIRE: the connection fails (4.7.x, temporary).
 *    After the handshake capabilities are forgotten and EHLO is sent again.
 *  - A message larger than the hop's SIZE, needing 8BITMIME (body8) or
 *    SMTPUTF8 (smtputf8) when the hop does not offer it: every recipient
 *    gets a local permanent failure (5.3.4 / 5.6.3 / 5.6.7), no MAIL is
 *    sent, the connection stays usable (MSG_DONE).
 *  - MAIL FROM:<s> [SIZE=n] [BODY=8BITMIME] [SMTPUTF8] [RET= ENVID=], RCPT
 *    TO:<r> [NOTIFY= ORCPT=] per recipient (DSN parameters only when the hop
 *    offers DSN), DATA. With PIPELINING all of them go in one write (and a
 *    pending RSET before them); without it, one command per reply.
 *  - Results: a rejected RCPT's result is its reply. SMTP: the accepted
 *    recipients all get the reply to the final dot (or the DATA reply when
 *    DATA is refused). LMTP: one reply per accepted recipient after the
 *    final dot, in RCPT order. MAIL refused: every recipient gets the MAIL
 *    reply. No recipient accepted: DATA is not sent (unpipelined), or, if a
 *    pipelined DATA got 354 anyway, an empty message "." is sent and its
 *    reply ignored.
 *  - Body: dot-stuffing ('.' at a line start doubled) is done here, across
 *    piece boundaries; the end "CRLF.CRLF" is added (a CRLF first when the
 *    body does not end in one). Output does not depend on how the body was
 *    split.
 *  - 421 at any point, a reply to no command, garbage, a reply line longer
 *    than SMTPC_LINE_MAX or a reply longer than SMTPC_REPLY_MAX: the hop
 *    is broken: CLOSED (QUIT queued unless the hop said 421), recipients
 *    without a result get a temporary failure (the 421 itself, or a local
 *    "4.4.0"/"4.5.0"-class one). Never a crash, never an abort().
 *  - Connection reuse: smtpc_next() sends RSET first when the previous
 *    transaction did not end at the final dot (MAIL was accepted but the
 *    message not sent, or a local failure happened after MAIL).
 *
 * Local (synthesised) results use the reply table (core/reply.c) and are
 * flagged res.local. */
#ifndef MXRING_SMTPC_H
#define MXRING_SMTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define SMTPC_LINE_MAX 2048         /* one reply line, CRLF excluded */
#define SMTPC_REPLY_MAX (64 * 1024) /* one (multi-line) reply */
#define SMTPC_TEXT_MAX 1024         /* result text kept per recipient */

enum smtpc_mode { SMTPC_SMTP = 0, SMTPC_LMTP };

/* TLS policy the machine enforces (certificate checks are the caller's). */
enum smtpc_tls { SMTPC_TLS_NONE = 0, SMTPC_TLS_MAY, SMTPC_TLS_REQUIRE };

enum smtpc_want {
    SMTPC_NEED_INPUT = 0, /* replies are awaited: read and smtpc_input() */
    SMTPC_SEND_BODY,      /* feed the message with smtpc_body() */
    SMTPC_START_TLS,      /* do the TLS handshake, then smtpc_tls_done() */
    SMTPC_MSG_DONE,       /* results of the message are available */
    SMTPC_IDLE,           /* usable, no message */
    SMTPC_CLOSED,         /* send the remaining output, close; see smtpc_error() */
};

/* Where a result or failure came from. */
enum smtpc_stage {
    SMTPC_ST_CONNECT = 0, /* the caller's I/O (smtpc_abort) */
    SMTPC_ST_GREETING,
    SMTPC_ST_HELLO,    /* EHLO / LHLO / HELO */
    SMTPC_ST_STARTTLS, /* the STARTTLS command or the handshake */
    SMTPC_ST_MAIL,
    SMTPC_ST_RCPT,
    SMTPC_ST_DATA, /* the DATA command */
    SMTPC_ST_DOT,  /* the reply to the final dot */
    SMTPC_ST_RSET,
    SMTPC_ST_QUIT,
    SMTPC_ST_LOCAL,    /* decided here before sending (SIZE, 8BITMIME, SMTPUTF8) */
    SMTPC_ST_PROTOCOL, /* garbage, overlong or unexpected reply */
};

/* One message to deliver. smtpc_new/smtpc_next copy it: nothing needs to
 * outlive the call. */
struct smtpc_msg {
    const char *sender;       /* "" = null sender <> */
    const char *const *rcpts; /* nrcpt addresses, without <> */
    size_t nrcpt;             /* >= 1 */
    uint64_t size;            /* octets smtpc_body() will be given (SIZE=) */
    bool body8;               /* BODY=8BITMIME needed */
    bool smtputf8;            /* SMTPUTF8 needed */
    /* RFC 3461 parameters, appended as given to MAIL / each RCPT when the hop
     * offers DSN (never otherwise): " RET=HDRS ENVID=x" and per recipient
     * " NOTIFY=FAILURE ORCPT=rfc822;a+40b" (a leading blank, or ""/NULL). */
    const char *mail_dsn;
    const char *const *rcpt_dsn; /* nrcpt entries, or NULL */
};

struct smtpc_opts {
    enum smtpc_mode mode;
    const char *helo_name; /* our name in EHLO/LHLO/HELO */
    enum smtpc_tls tls;
    bool tls_active; /* the connection is already TLS (implicit) */
};

/* A reply (or local failure) as seen by the caller. */
struct smtpc_result {
    unsigned code;    /* 200..599; 0 = no result yet */
    char enh[16];     /* enhanced status "5.1.1", "" if none given */
    const char *text; /* reply text (lines joined by " "), without
                                       code and enhanced code; valid until
                                       smtpc_next/smtpc_free */
    enum smtpc_stage stage;
    bool local; /* synthesised here, not sent by the hop */
};

/* Capabilities the hop announced (after the last EHLO/LHLO). */
struct smtpc_caps {
    bool esmtp; /* EHLO/LHLO accepted (not HELO fallback) */
    bool pipelining, eightbitmime, smtputf8, starttls, size, dsn;
    uint64_t size_max; /* SIZE n; 0 = no limit given */
};

struct smtpc;

/* smtpc_new - a machine for a fresh connection (the greeting is awaited
 * first). msg may be NULL: the machine then stops at IDLE after the
 * greeting and EHLO. NULL on ENOMEM or an invalid msg (nrcpt 0). */
struct smtpc *smtpc_new(const struct smtpc_opts *opts, const struct smtpc_msg *msg);

/* smtpc_free - release (NULL is fine). */
void smtpc_free(struct smtpc *c);

/* smtpc_want - what the caller should do next (see the top comment). Pure
 * query, no state change. */
enum smtpc_want smtpc_want(const struct smtpc *c);

/* smtpc_output - bytes to send to the hop. The caller removes what it has
 * written with sb_consume(); the machine only appends. */
struct sb *smtpc_output(struct smtpc *c);

/* smtpc_input - reply bytes from the hop, any split (one byte at a time is
 * fine). Complete replies are acted on at once; a partial line is kept.
 * Bytes that arrive while the caller has to act (SEND_BODY, START_TLS,
 * MSG_DONE, IDLE) are held and matched against the commands that follow,
 * so the outcome never depends on how the bytes were split; bytes held
 * across START_TLS fail the connection (plain-text injection before the
 * handshake). Input after CLOSED is ignored. */
void smtpc_input(struct smtpc *c, const void *bytes, size_t len);

/* smtpc_body - the next piece of the message (only in SEND_BODY); last =
 * no more pieces (len may be 0). Dot-stuffed into the output; on last the
 * end-of-data dot is added and the final replies are awaited. */
void smtpc_body(struct smtpc *c, const void *buf, size_t len, bool last);

/* smtpc_tls_done - the handshake the caller did in START_TLS: ok = it
 * succeeded (EHLO again), else CLOSED (temporary failure, stage STARTTLS). */
void smtpc_tls_done(struct smtpc *c, bool ok);

/* smtpc_abort - the connection failed under the caller (EOF, I/O error,
 * timeout, TLS error): CLOSED; recipients without a result get a local
 * temporary failure (4.4.2) naming why. No-op when already CLOSED. */
void smtpc_abort(struct smtpc *c, const char *why);

/* smtpc_next - after MSG_DONE or in IDLE: start msg on this connection
 * (RSET first if needed), or with msg NULL park it in IDLE (results of the
 * last message are then dropped). false (nothing changes) in any other
 * state, on ENOMEM or an invalid msg. */
bool smtpc_next(struct smtpc *c, const struct smtpc_msg *msg);

/* smtpc_quit - send QUIT (from MSG_DONE, IDLE or any wait); the machine
 * waits for 221 then reports CLOSED. The caller may also close right after
 * sending. No-op when CLOSED. */
void smtpc_quit(struct smtpc *c);

/* smtpc_rcpt_result - the result of recipient i of the current message
 * (false when i is out of range or the recipient has no result yet). */
bool smtpc_rcpt_result(const struct smtpc *c, size_t i, struct smtpc_result *res);

/* smtpc_nrcpt - recipients of the current message (0 when none). */
size_t smtpc_nrcpt(const struct smtpc *c);

/* smtpc_error - in CLOSED: why the connection ended (code 221 with stage
 * QUIT for an orderly QUIT); otherwise code 0. */
void smtpc_error(const struct smtpc *c, struct smtpc_result *res);

/* smtpc_caps - the hop's capabilities as last announced. */
const struct smtpc_caps *smtpc_caps(const struct smtpc *c);

/* smtpc_tls_active - is the connection inside TLS (after tls_done(ok)
 * or opts.tls_active)? */
bool smtpc_tls_active(const struct smtpc *c);

/* smtpc_stage_name - "greeting", "RCPT", ... for logs. */
const char *smtpc_stage_name(enum smtpc_stage st);

/* ---- the reply parser (exported for tests and the fuzzer) ------------- */

/* One parsed reply: lines joined. */
struct smtpc_reply {
    unsigned code;  /* 3 digits, first in 2..5 */
    char enh[16];   /* from the first line, "" if none */
    struct sb text; /* texts of all lines joined by "\n" */
    unsigned nlines;
};

/* The parser's state across input pieces. */
struct smtpc_rparse {
    struct sb line;         /* the partial line */
    struct smtpc_reply cur; /* the reply being assembled */
    bool in_reply;          /* continuation lines seen */
    bool skipping;          /* an overlong line: fatal */
};

enum smtpc_rp_status { SMTPC_RP_MORE = 0, SMTPC_RP_REPLY, SMTPC_RP_BAD };

/* smtpc_rp_feed - consume input from *pos (pos advanced) until one reply is
 * complete (SMTPC_RP_REPLY: *out holds it, until the next call), the input
 * is used up (MORE), or the input is malformed (BAD: why says how). Lines
 * end in CRLF or a bare LF. A line is "ddd" [" " or "-" text]; all lines of
 * a reply carry the same code; "-" continues. */
enum smtpc_rp_status smtpc_rp_feed(struct smtpc_rparse *p, const char *in, size_t len, size_t *pos,
                                   const struct smtpc_reply **out, const char **why);

/* smtpc_rp_free - release the parser's buffers. */
void smtpc_rp_free(struct smtpc_rparse *p);

#endif
