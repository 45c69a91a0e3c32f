/* session.h - one SMTP session as a pure state machine over bytes: input
 * bytes in, reply bytes out (sess_out), plus an action for the I/O layer
 * (spool a message, close). No sockets, no files, no clocks: the network
 * layer (net/worker.c) drives it, tests and fuzzers drive it directly.
 * A session belongs to one worker thread for its whole life. */
#ifndef MXRING_SESSION_H
#define MXRING_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mhist.h"
#include "smtp_parse.h"
#include "util.h"

struct mx_addr;
/* Largest chunk of a message the session holds (= JRN_CHUNK_MAX). */
#define SESS_CHUNK_MAX (64 * 1024)

struct snap;
struct rlog_ring;
struct sess;

/* What the session needs from its worker. Read-only for the session. */
struct sess_counters;

struct sess_env {
    unsigned worker;           /* index, for the log */
    struct sess_counters *ctr; /* this worker's counters (NULL = not counted) */
    struct rlog_ring *rlog;    /* this worker's receivelog ring (NULL = none) */
    /* Called when a transaction starts (MAIL): returns the snapshot the
     * transaction must use (the newest one), given the session's current
     * one; may return cur. NULL callback = keep cur. */
    struct snap *(*snap_txn)(void *arg, struct snap *cur);
    void *arg;
    /* Should this message go through the content filters first? NULL = no
     * filters at all. */
    bool (*want_filter)(void *arg, const struct snap *snap);
    /* Count one unknown recipient of the client at peer against its
     * address's budget; returns the address's count in the current window
     * (max_unknown_recipients_per_ip). NULL = no budget. */
    unsigned (*unknown_rcpt)(void *arg, const struct mx_addr *peer);
    /* Test hook: sees every receivelog line the session writes, before
     * escaping (tests and fuzzers). NULL in the server. */
    void (*log_tap)(void *arg, uint32_t sid, const char *line, size_t len);
    /* Is the queue over its limits (delivery back-pressure)? Then MAIL gets
     * 452 4.3.1. NULL = never. */
    bool (*queue_full)(void *arg);
    /* Debug trace: every state and action move of the sessions to stderr
     * ("sess 0000002a: state HELO -> MAIL (MAIL)"). The server sets it
     * from MXRING_TRACE=1; off by default. */
    bool trace;
};

/* Verdict of the content filters (strongest wins). */
enum sess_verdict {
    SESS_VERDICT_PASS = 0,
    SESS_VERDICT_QUARANTINE,   /* store under <workdir>/quarantine/, answer 250 */
    SESS_VERDICT_REJECT_SPAM,  /* 554 5.7.1 caught by the filter setting */
    SESS_VERDICT_REJECT_VIRUS, /* 554 5.7.1 naming the virus */
    SESS_VERDICT_TEMPFAIL,     /* 451 4.7.1 a filter could not decide */
};

enum sess_action {
    SESS_RUN = 0,  /* keep feeding input */
    SESS_CHUNK,    /* a chunk of the message is ready (sess_chunk): take it,
                       then sess_chunk_done() */
    SESS_SPOOL,    /* the message is complete: take the tail (sess_msg), commit
                       it, then sess_spool_done() */
    SESS_FILTER,   /* the message is complete: take the tail, run the content
                       filters, then sess_filter_done() (which may lead to
                       SESS_SPOOL; the tail is not offered again) */
    SESS_STARTTLS, /* send the 220, then start the TLS handshake; then
                       sess_tls_started() or sess_tls_failed() */
    SESS_AUTH,     /* verify sess_auth_creds() off the ring, then sess_auth_done() */
    SESS_MILTER,   /* a command (HELO/EHLO, MAIL, RCPT, DATA, the first BDAT of a
                       transaction) waits for the milters:
                       ask them about sess_milter_cmd(), then sess_milter_done() */
    SESS_CLOSE,    /* send what is in sess_out(), then close the connection */
};

enum sess_phase { SESS_PHASE_COMMAND = 0, SESS_PHASE_DATA };

enum sess_close_reason {
    SESS_BY_QUIT = 0,
    SESS_BY_TIMEOUT,
    SESS_BY_ERRORS,
    SESS_BY_PEER, /* client closed or reset the connection */
    SESS_BY_SHUTDOWN,
    SESS_BY_LIMIT,    /* session limit reached at connect */
    SESS_BY_IOERR,    /* a send or receive failed */
    SESS_BY_PER_IP,   /* max_sessions_per_ip reached at connect */
    SESS_BY_RATE,     /* max_connect_rate_per_ip exceeded at connect */
    SESS_BY_PREGREET, /* client talked during the greet pause */
    SESS_BY_JUNK,     /* too many NOOP/RSET/VRFY/HELP */
    SESS_BY_TLS,      /* TLS handshake or record failure */
    SESS_BY_AUTH,     /* auth_max_failures reached */
    SESS_BY_HARVEST,  /* max_unknown_recipients_per_ip exceeded */
    SESS_BY_PROXY,    /* no acceptable PROXY header (no reply, no banner) */
    SESS_BY_DNSBL,    /* dnsbl_sites score at or over dnsbl_threshold */
    SESS_BY_PROTOCOL, /* a BDAT whose chunk size cannot be known (out of sync) */
    SESS_BY_COUNT     /* (the number of reasons: keep last) */
};

/* How a transaction ended: the result= word of its receivelog summary. */
enum sess_result {
    SESS_RES_QUEUED = 0,
    SESS_RES_QUARANTINED,
    SESS_RES_REFUSED,
    SESS_RES_TEMPFAIL,
    SESS_RES_ABORTED,
    SESS_RES_COUNT
};
/* Why a RCPT was refused. */
enum sess_rcpt_refusal {
    SESS_RCPT_UNKNOWN = 0,
    SESS_RCPT_RELAY,
    SESS_RCPT_TOO_MANY,
    SESS_RCPT_COUNT
};

/* Counters of one worker's sessions (sess_env.ctr), for the metrics: the
 * sessions bump them with relaxed atomic adds, a scraper on another thread
 * reads them with sess_counters_add. Plain integers, touched only through
 * the __atomic builtins. */
/* How an AUTH attempt ended (the metrics' outcome label). */
enum sess_auth_outcome {
    SESS_AUTHO_OK = 0,    /* 235 */
    SESS_AUTHO_FAILED,    /* bad credentials, undecodable response, unknown mechanism */
    SESS_AUTHO_CANCELLED, /* the client sent "*" */
    SESS_AUTHO_TEMPFAIL,  /* the verifier was busy (454) */
    SESS_AUTHO_COUNT
};
#define SESS_AUTH_MECHS 3 /* enum auth_mech: unknown, PLAIN, LOGIN */

struct sess_counters {
    uint64_t commands[SMTP_VERB_COUNT];     /* by verb; [SMTP_VERB_UNKNOWN] = unrecognised */
    uint64_t results[SESS_RES_COUNT];       /* transactions by result */
    uint64_t rcpt_refused[SESS_RCPT_COUNT]; /* refused recipients by reason */
    uint64_t closes[SESS_BY_COUNT];         /* sessions by close reason */
    uint64_t auth[SESS_AUTH_MECHS][SESS_AUTHO_COUNT]; /* AUTH attempts by mechanism, outcome */
    struct mhist txn_latency;                         /* MAIL to the final reply to the message */
};

/* sess_counters_add - sum += c, reading c with relaxed atomic loads (c may
 * be bumped meanwhile by its worker). */
void sess_counters_add(struct sess_counters *sum, const struct sess_counters *c);
/* sess_result_name - the receivelog word of a result ("queued"), "" outside. */
const char *sess_result_name(unsigned r);
/* sess_rcpt_refusal_name - "unknown user", "relaying denied", "too many recipients". */
const char *sess_rcpt_refusal_name(unsigned r);
/* sess_close_reason_name - the receivelog text of a close reason ("timeout"). */
const char *sess_close_reason_name(unsigned r);
/* sess_auth_outcome_name - "success", "failure", "cancelled", "tempfail". */
const char *sess_auth_outcome_name(unsigned o);

/* The message handed to the spool writer. Strings are NUL-terminated and
 * valid until sess_spool_done(). rcpts holds nrcpt NUL-terminated
 * addresses back to back. The body was streamed: earlier chunks went out
 * through SESS_CHUNK, tail[0..tail_len) is the rest. */
struct sess_msg {
    const char *helo;
    const char *client_ip;
    uint16_t client_port;
    const char *proto;       /* RFC 3848: SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA */
    const char *tls_version; /* "TLSv1.3"; NULL without TLS */
    const char *tls_cipher;  /* "TLS_AES_256_GCM_SHA384"; NULL without TLS */
    const char *auth_user;   /* AUTH user; NULL when not authenticated */
    const char *sender;      /* "" for the null sender */
    const char *rcpts;
    size_t nrcpt;
    const char *tail; /* the last chunk (unstuffed, CRLF line ends) */
    size_t tail_len;
    size_t body_len; /* the whole message, octets */
    bool eightbit;   /* BODY=8BITMIME declared, or 8-bit octets in the data */
    bool smtputf8;
    unsigned dsn_ret;            /* enum smtp_ret: RET= of MAIL (0 = not given) */
    const char *envid;           /* ENVID= xtext, "" = not given */
    const unsigned char *notify; /* nrcpt NOTIFY= masks (enum smtp_notify, 0 = none) */
    const char *orcpts;          /* nrcpt NUL-terminated ORCPT= values ("" = none) */
    uint32_t sid;
    const char *quarantine;  /* non-NULL: quarantine verdict (the reason) */
    const char *add_headers; /* header lines (CRLF) the milters added, placed above
                                   Received:; NULL = none (set by the I/O layer) */
};

/* sess_new - a session for a client at peer (NULL: unknown; local_port =
 * our port),
 * holding snap (the caller's reference is borrowed: the session's snapshot
 * is always one the worker keeps alive). Returns NULL on ENOMEM. */
struct sess *sess_new(const struct sess_env *env, struct snap *snap, uint32_t sid,
                      const struct mx_addr *peer, uint16_t local_port);
/* sess_free - release all session memory. */
void sess_free(struct sess *s);

/* sess_start - log the connection and queue the 220 banner. */
void sess_start(struct sess *s);
/* sess_greet_wait - log the connection but hold the banner (greet pause);
 * input before sess_greet() ends the session with 554 5.5.0. */
void sess_greet_wait(struct sess *s);
/* sess_greet - the pause is over: queue the 220 banner. */
void sess_greet(struct sess *s);
/* sess_refuse - log and queue the 421 for a refused connection: why is
 * SESS_BY_LIMIT, SESS_BY_PER_IP or SESS_BY_RATE; action CLOSE. */
void sess_refuse(struct sess *s, enum sess_close_reason why);
/* Longest "via" text of sess_set_peer. */
#define SESS_VIA_MAX 192
/* sess_set_peer - behind a load balancer, before the session starts: the
 * real client is peer (trusted_networks, relay decisions, limits, logs,
 * Received: and the queue envelope use it); via (NULL = none) is appended
 * to the "Connection accepted" line (e.g. the balancer's address). */
void sess_set_peer(struct sess *s, const struct mx_addr *peer, const char *via);
/* sess_proxy_refused - a proxy listener got no acceptable PROXY header:
 * log the connection and why, close without any reply (no banner). */
void sess_proxy_refused(struct sess *s, const char *why);
/* sess_dnsbl_refuse - the client scored at or over dnsbl_threshold while
 * its banner was held (sess_greet_wait): 554 5.7.1 naming site; CLOSE. */
void sess_dnsbl_refuse(struct sess *s, const char *site);
/* sess_progress - a counter that moves whenever a command or a chunk of
 * DATA was handled (trickled bytes of an unfinished line do not count). */
unsigned sess_progress(const struct sess *s);
/* sess_data_phase - a counter that moves whenever a DATA phase or a BDAT
 * transaction begins, and for each BDAT chunk discarded outside one (two
 * phases may follow each other within one input chunk when pipelined);
 * timeout_data bounds each phase. */
unsigned sess_data_phase(const struct sess *s);
/* sess_receiving - is the message of the current DATA phase or BDAT
 * transaction still wanted, so its journal transaction must live? (A BDAT
 * transaction spans command lines; one over max_message_size is not.) */
bool sess_receiving(const struct sess *s);
/* sess_trusted - is the client in trusted_networks? */
bool sess_trusted(const struct sess *s);

/* sess_input - feed bytes received from the client (len may be 0 to resume
 * after a spool). Everything is consumed: what cannot be processed yet
 * (partial line, or input arriving while an action is pending) is kept. */
void sess_input(struct sess *s, const char *buf, size_t len);

/* sess_action - what the I/O layer must do next. */
enum sess_action sess_action(const struct sess *s);
/* sess_out - reply bytes waiting to be sent; the I/O layer may take them
 * (swap the buffer with an empty one). */
struct sb *sess_out(struct sess *s);
/* sess_reply_delay_ms - how long the I/O layer should hold what is in
 * sess_out() before sending it (the unknown-recipient tarpit); reading it
 * resets it to 0. Never asks to delay a session that is closing. */
unsigned sess_reply_delay_ms(struct sess *s);
/* sess_backlog - octets of client input held back (for flow control). */
size_t sess_backlog(const struct sess *s);
/* sess_phase - command or data phase (which timeout applies). */
enum sess_phase sess_phase(const struct sess *s);
/* sess_in_transaction - between MAIL and the end of the transaction. */
bool sess_in_transaction(const struct sess *s);
/* sess_snap - the snapshot the session currently uses. */
struct snap *sess_snap(const struct sess *s);
/* sess_id - the session id. */
uint32_t sess_id(const struct sess *s);

/* sess_chunk - while action == SESS_CHUNK: the next chunk of the message
 * (at most SESS_CHUNK_MAX octets, valid until sess_chunk_done). */
const char *sess_chunk(const struct sess *s, size_t *len);
/* sess_chunk_done - the chunk was taken; action RUN (resume with
 * sess_input(s, NULL, 0)). */
void sess_chunk_done(struct sess *s);

/* sess_msg - the completed message (while action == SESS_SPOOL/FILTER). */
const struct sess_msg *sess_msg(const struct sess *s);
/* sess_spool_done - the spool finished: err == 0 and the queue id, or an
 * errno value (451 to the client). Resets the transaction; action RUN. */
void sess_spool_done(struct sess *s, int err, const char *queue_id);

/* sess_filter_done - the filters' verdict; detail names the virus
 * (REJECT_VIRUS) or the reason (QUARANTINE, TEMPFAIL). PASS and QUARANTINE
 * go on to SESS_SPOOL; the others answer and end the transaction. */
void sess_filter_done(struct sess *s, enum sess_verdict v, const char *detail);
/* sess_filter_reply - a filter (a milter) refused the message with its
 * own reply text: validated lines joined by CRLF or LF, 4xx or 5xx;
 * detail goes to the log. Ends the transaction like a filter reject. */
void sess_filter_reply(struct sess *s, const char *text, const char *detail);
/* sess_log - an internal processing line in this session's receivelog
 * (for the I/O layer's modules: filters, TLS, AUTH). */
void sess_log(struct sess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* sess_timeout - idle or data timeout: 421 4.4.2, action CLOSE. */
void sess_timeout(struct sess *s);
/* sess_shutdown - server is stopping: 421 4.3.2, action CLOSE. */
void sess_shutdown(struct sess *s);
/* sess_gone - the connection failed or the peer left (reason PEER/IOERR);
 * no reply is possible. action CLOSE. */
void sess_gone(struct sess *s, enum sess_close_reason why);
/* sess_eof - the client shut its sending side: nothing more will arrive.
 * What it already sent is still processed and answered; once only an
 * incomplete line or an unfinished DATA is left, the session ends as
 * "client gone" (action CLOSE). While an action is pending (SPOOL, FILTER,
 * AUTH) or unread replies hold the input back, it waits: call it again
 * after each event until the action is CLOSE. */
void sess_eof(struct sess *s);
/* sess_log_close - log the two closing lines; call once, just before the
 * socket is closed. */
void sess_log_close(struct sess *s);

/* Where the session came in (set once, right after sess_new). */
enum sess_mode_flag {
    SESS_MODE_STARTTLS = 1u << 0,   /* STARTTLS may be offered */
    SESS_MODE_TLS = 1u << 1,        /* implicit TLS: already encrypted */
    SESS_MODE_SUBMISSION = 1u << 2, /* MAIL needs AUTH (port 587 style) */
};
void sess_set_mode(struct sess *s, unsigned flags);

/* sess_tls_started - the handshake completed: log version and cipher,
 * forget everything said before (RFC 3207: EHLO again). */
void sess_tls_started(struct sess *s, const char *version, const char *cipher);
/* sess_tls_failed - the handshake or a record failed: log why; close. */
void sess_tls_failed(struct sess *s, const char *why);

/* sess_auth_creds - while action == SESS_AUTH: the user name and password to
 * verify (not NUL-terminated; valid until sess_auth_done). */
void sess_auth_creds(const struct sess *s, const char **user, size_t *ulen, const char **pass,
                     size_t *plen);
/* Outcome of a verification. */
enum sess_auth_result { SESS_AUTH_OK = 0, SESS_AUTH_FAIL, SESS_AUTH_BUSY };
/* sess_auth_done - 235, or 535 (454 when busy) and the failure count;
 * reason goes to the log. Wipes the password. */
void sess_auth_done(struct sess *s, enum sess_auth_result r, const char *reason);

/* The command stages the milters are asked about while the session waits. */
enum sess_mstage { SESS_MS_HELO = 0, SESS_MS_MAIL, SESS_MS_RCPT, SESS_MS_DATA };
/* sess_milter_cmd - while action == SESS_MILTER: the command's stage and
 * the session as the milters see it in m (helo = the name just given;
 * sender for MAIL; rcpts/nrcpt = the one recipient for RCPT, every
 * accepted one for DATA (DATA or the first BDAT); no body).
 * Strings valid until sess_milter_done. */
enum sess_mstage sess_milter_cmd(const struct sess *s, struct sess_msg *m);
/* The milters' verdict on the command. */
enum sess_mverdict { SESS_MV_CONTINUE = 0, SESS_MV_REJECT, SESS_MV_TEMPFAIL };
/* sess_milter_done - CONTINUE runs the command (its usual reply); REJECT
 * and TEMPFAIL refuse it with text (validated reply lines; NULL = ours),
 * detail to the log; at DATA that ends the transaction (no 354; a BDAT's
 * chunk is skipped by count, then answered). session_wide (a verdict at connect or HELO): every
 * later command but QUIT gets 503 5.7.0, as Postfix does. Action RUN
 * (resume with sess_input(s, NULL, 0)). */
void sess_milter_done(struct sess *s, enum sess_mverdict v, const char *text, bool session_wide,
                      const char *detail);

/* sess_set_authenticated - an authenticated session may relay. */
void sess_set_authenticated(struct sess *s, const char *user);

#endif
