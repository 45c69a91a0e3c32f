/* session_int.h - private to the session's files (session.c, session_cmd.c,
 * session_auth.c, session_log.c): the session and transaction structs, the
 * states, and the entry points the files share. Nothing outside core/session*.c
 * includes it; tests and the I/O layer use session.h. */
#ifndef MXRING_SESSION_INT_H
#define MXRING_SESSION_INT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "auth.h"
#include "reply.h"
#include "session.h"
#include "smtp_bdat.h"
#include "smtp_data.h"
#include "smtp_parse.h"
#include "util.h"

/* Session states. The "RCPT" state means at least one recipient accepted. */
enum sess_state {
    ST_INIT = 0,   /* banner sent, no HELO/EHLO yet */
    ST_GREET_WAIT, /* greet pause: the client must not talk yet */
    ST_HELO,       /* greeted, no transaction */
    ST_MAIL,       /* MAIL accepted, no recipient accepted yet */
    ST_RCPT,       /* at least one recipient accepted */
    ST_DATA,       /* reading the message */
    ST_BDAT,       /* a BDAT transaction: chunks accepted, the LAST one not yet */
    ST_CLOSED,     /* reply queued, connection to be closed */
};

#define STB(st) (1u << (st))

/* Replies the client has not read yet: past this, input is held (and the
 * I/O layer stops receiving) until the replies are sent. */
#define SESS_OUT_MAX (64 * 1024)
/* RFC 4954 4: AUTH lines may be longer than other commands. */
#define SESS_AUTH_LINE_MAX 12288
/* A summary line: two addresses, a HELO name and a reason fit. */
#define SESS_SUMMARY_MAX 2048
/* The unknown-recipient tarpit never holds one batch of replies longer. */
#define SESS_TARPIT_MAX_MS 5000
/* The AUTH buffer: user then password (a LOGIN user, or a PLAIN response). */
#define SESS_AUTH_BUF (AUTH_DECODED_MAX + AUTH_USER_MAX)
/* The log text of a masked line (an AUTH response or a possible one). */
#define SESS_MASKED "****"

/* Where an AUTH dialogue stands. */
enum auth_step { AUTH_IDLE = 0, AUTH_WAIT_PLAIN, AUTH_WAIT_USER, AUTH_WAIT_PASS };

struct sess_txn {
    struct smtp_addr sender;
    struct smtp_params params;
    struct sb rcpts;  /* NUL-terminated addresses back to back */
    struct sb notify; /* one NOTIFY= mask octet per recipient (0 = none) */
    struct sb orcpts; /* per recipient its ORCPT= value, NUL-terminated ("" = none) */
    size_t nrcpt;
    bool rcpt_tried; /* a RCPT was refused: DATA gives 554, not 503 */
    bool bdat_over;  /* a BDAT chunk went over max_message_size: the rest is
                        discarded, BDAT LAST refuses the message */
    struct sb body;  /* the chunk being filled (at most SESS_CHUNK_MAX) */
    struct data_scan scan;
    struct sess_msg msg;
    char *quarantine;   /* reason of a quarantine verdict */
    unsigned nrefused;  /* RCPTs refused by policy (unknown, relay, too many) */
    const char *result; /* how it ended (summary line); NULL = still open */
    char reason[200];   /* why (refusals, failures, aborts) */
    char queue_id[32];  /* the queue id, once queued */
    uint64_t start_us;  /* MAIL accepted (mhist_now_us): the latency histogram */
};

struct sess {
    const struct sess_env *env;
    struct snap *snap;
    uint32_t sid;
    enum sess_state state;
    enum sess_action action;
    enum sess_close_reason reason;
    bool esmtp;
    bool trusted;   /* client in trusted_networks */
    bool skip_line; /* discarding the rest of an overlong line */
    bool closed_logged;
    bool deferred; /* a close arrived while the spool was busy */
    enum sess_close_reason deferred_reason;
    unsigned errors;
    unsigned junk;
    unsigned progress;    /* commands and DATA chunks handled (for the idle timer) */
    unsigned data_phases; /* DATA commands accepted (each phase has its own bound) */
    uint16_t client_port;
    uint16_t local_port;
    char client_ip[INET6_ADDRSTRLEN];
    char *helo;
    char *auth_user; /* set by SMTP AUTH (relay hook) */
    unsigned mode;   /* enum sess_mode_flag */
    bool tls_active;
    char tls_version[16];     /* negotiated TLS version ("" before TLS) */
    char tls_cipher[64];      /* and cipher suite */
    enum smtp_verb last_verb; /* of the command being handled (ends of transactions) */
    enum auth_step auth_step;
    enum auth_mech auth_mech;
    unsigned auth_failures;
    size_t auth_ulen, auth_plen;
    unsigned char *auth_buf; /* user then password (SESS_AUTH_BUF octets): only while an
                                AUTH dialogue or its verification runs, else NULL */
    struct sess_txn *txn;
    bool milter_denied;   /* a milter refused the connection: 503 to all but QUIT */
    enum smtp_verb mverb; /* the command waiting for the milters (SESS_MILTER) */
    char *marg;           /* its argument (copied), for its proceed step */
    size_t marg_len;
    struct sb in;             /* partial line / input held back */
    struct sb out;            /* replies not yet taken by the I/O layer */
    unsigned mask_lines;      /* next lines masked in the log: they may answer an AUTH */
    unsigned unknown_rcpts;   /* unknown recipients refused in this session (tarpit) */
    unsigned delay_ms;        /* tarpit pause wanted before the pending replies */
    struct mx_addr peer;      /* client address: the harvest budget's key */
    struct bdat_rx bdat;      /* the BDAT chunk being read, the transaction's chunk totals */
    enum reply_id bdat_reply; /* the reply due when the chunk read ends (R_COUNT:
                                 accepted: 250, or the message's end) */
    char *bdat_text;          /* with R_FILTER_TEXT: the milters' own reply lines */
    char via[SESS_VIA_MAX];   /* behind a balancer: how the address came (log) */
    /* What a command's check step parsed, for its proceed step: valid from
     * the check to the proceed of one command line (pointers into it). */
    union sess_args {
        struct {
            struct smtp_addr addr;
            struct smtp_params params;
        } path;          /* MAIL, RCPT */
        size_t helo_len; /* HELO, EHLO: the domain's length */
        struct {
            uint64_t size;
            bool last;
        } bdat;               /* BDAT */
        struct auth_cmd auth; /* AUTH */
    } args;
};

/* COUNT - bump one counter of the worker's sess_counters (relaxed: the
 * scraper needs no order, only untorn values). */
#define COUNT(s, field, idx)                                                     \
    do {                                                                         \
        if ((s)->env->ctr)                                                       \
            __atomic_fetch_add(&(s)->env->ctr->field[idx], 1, __ATOMIC_RELAXED); \
    } while (0)

/* ---- session.c: replies, states, transactions ---- */

/* sess_reply0, sess_reply1, sess_reply2, sess_reply_u - reply id with no
 * argument, one or two strings, or one number into the output and the log.
 * Each asserts that the reply table declares exactly those arguments for
 * id (test_reply checks the table's declarations against its texts); the
 * parameter types make any other argument a compile-time error. */
void sess_reply0(struct sess *s, enum reply_id id);
void sess_reply1(struct sess *s, enum reply_id id, const char *a);
void sess_reply2(struct sess *s, enum reply_id id, const char *a, const char *b);
void sess_reply_u(struct sess *s, enum reply_id id, unsigned long long u);
/* sess_reply - sess_reply0/1/2 picked by the number of string arguments
 * after id: sess_reply(s, R_OK), sess_reply(s, R_RCPT_OK, addr). */
#define SESS_REPLY_PICK(a1, a2, a3, a4, name, ...) name
#define sess_reply(...) \
    SESS_REPLY_PICK(__VA_ARGS__, sess_reply2, sess_reply1, sess_reply0, _)(__VA_ARGS__)
/* sess_close_with - queue the final reply and ask the I/O layer to close. */
void sess_close_with(struct sess *s, enum reply_id id, enum sess_close_reason why);
/* sess_count_error - one more client error; past max_errors the session ends. */
void sess_count_error(struct sess *s);
/* reply_error - an error reply that counts toward the error limit. */
#define reply_error(s, ...)           \
    do {                              \
        sess_reply((s), __VA_ARGS__); \
        sess_count_error(s);          \
    } while (0)
/* sess_enter_state - every state transition goes through here (asserts
 * that it is a legal one; why names the cause for the trace). */
void sess_enter_state(struct sess *s, enum sess_state st, const char *why);
/* sess_set_action - every change of the action goes through here (asserts
 * that it is a legal one; why names the cause for the trace). */
void sess_set_action(struct sess *s, enum sess_action a, const char *why);
/* sess_txn_begin - a new transaction for MAIL; picks up the newest snapshot. */
bool sess_txn_begin(struct sess *s);

/* sess_message_end - the whole message is in (end of DATA, or the end of
 * the BDAT LAST chunk): refuse it, or hand it to the filters or the spool. */
void sess_message_end(struct sess *s);
/* sess_data_refused - will the message being received be refused at its
 * end (bare CR/LF, long line, size, NUL)? Its octets need not be kept. */
bool sess_data_refused(const struct sess *s);

/* ---- session_bdat.c ---- */

/* sess_bdat_check, sess_bdat_proceed - the BDAT command's table steps. */
int sess_bdat_check(struct sess *s, const char *arg, size_t len);
void sess_bdat_proceed(struct sess *s, const char *arg, size_t len);
/* sess_bdat_feed - chunk octets (bdat_reading): into the message, or
 * discarded; returns how many were consumed. */
size_t sess_bdat_feed(struct sess *s, const char *p, size_t n);
/* sess_bdat_refuse - the milters refused the first BDAT of a transaction
 * (already ended): its chunk (size and LAST from the check step) is
 * discarded by count, then answered with text (the milters' reply lines;
 * NULL = id's text). */
void sess_bdat_refuse(struct sess *s, enum reply_id id, const char *text);
/* sess_bdat_denied - a BDAT in a session the milters denied: its chunk
 * is skipped by count (never run as commands), then answered 503 5.7.0
 * like every other command but QUIT. */
void sess_bdat_denied(struct sess *s, const char *arg, size_t len);
/* sess_bdat_close_line - a command line that could not be run (bare LF,
 * too long; why says which): when it was a BDAT, its chunk cannot be told
 * from commands: close. */
void sess_bdat_close_line(struct sess *s, const char *line, size_t len, const char *why);

/* sess_deferred_close - a close that waited for an action's outcome
 * (SPOOL, FILTER, MILTER) happens now. */
void sess_deferred_close(struct sess *s);
/* sess_reply_lines - a filter's own reply text (validated lines joined by
 * CRLF or LF) to the client, line by line. */
void sess_reply_lines(struct sess *s, const char *text);

/* ---- session_cmd.c ---- */

/* sess_proceed - the proceed step of verb v's table entry. */
void sess_proceed(struct sess *s, enum smtp_verb v, const char *arg, size_t len);

/* sess_dispatch - one complete command line (without CRLF). */
void sess_dispatch(struct sess *s, const char *line, size_t len);

/* ---- session_milter.c ---- */

/* sess_milter_ask - after its check passed: should command v wait for the
 * milters? Then it is saved and the action is SESS_MILTER (true). */
bool sess_milter_ask(struct sess *s, enum smtp_verb v, const char *arg, size_t len);

/* ---- session_auth.c ---- */

/* sess_auth_offered - AUTH is offered when there are users, inside TLS
 * unless auth_require_tls = no. */
bool sess_auth_offered(const struct sess *s);
/* sess_auth_check, sess_auth_begin - the AUTH command's table steps. */
int sess_auth_check(struct sess *s, const char *arg, size_t len);
void sess_auth_begin(struct sess *s, const char *arg, size_t len);
/* sess_auth_response - one response line inside an AUTH dialogue. */
void sess_auth_response(struct sess *s, const char *line, size_t len);
/* sess_auth_fail - one failed attempt; past auth_max_failures the session ends. */
void sess_auth_fail(struct sess *s, enum reply_id id, const char *why);
/* sess_auth_buf_drop - the AUTH dialogue is over: its buffer (it may
 * hold a password) wiped and freed. */
void sess_auth_buf_drop(struct sess *s);
/* sess_log_command - a command line as received, secrets masked. */
void sess_log_command(struct sess *s, const char *line, size_t len);
/* sess_mask_discarded - a discarded line that looked like AUTH: its
 * responses may follow. */
void sess_mask_discarded(struct sess *s, const char *line, size_t len);
/* sess_mask_after_response - what to mask after an AUTH response line. */
void sess_mask_after_response(struct sess *s, const char *line, size_t len, bool failed);

/* ---- session_log.c ---- */

/* sess_log_on - is the receivelog on for this session (or a test tap)? */
bool sess_log_on(const struct sess *s);
/* sess_log_text - one dialogue line (escaped by rlog). */
void sess_log_text(struct sess *s, const char *text, size_t len);
/* sess_log_check - one internal processing line (printf style). */
void sess_log_check(struct sess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* sess_txn_end - record how the transaction ended, and why. */
void sess_txn_end(struct sess *s, const char *result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* sess_log_summary - the one summary line of a transaction. */
void sess_log_summary(struct sess *s, const char *sender, size_t nrcpt, unsigned nrefused,
                      uint64_t size, const char *result, const char *id, const char *reason);
/* sess_txn_summary - the transaction is ending (entering st): its summary. */
void sess_txn_summary(struct sess *s, enum sess_state st);
/* sess_log_connect - the first line of every session. */
void sess_log_connect(struct sess *s);

#endif
