/* reply.h - every SMTP reply mxringd sends, in one table: code, enhanced
 * status code and text (printf format). Protocol code names replies by id
 * only, never by literal text. Read-only data: any thread. */
#ifndef MXRING_REPLY_H
#define MXRING_REPLY_H

#include <stdbool.h>

enum reply_id {
    R_BANNER,          /* 220 <host> ESMTP mxring Receiver */
    R_HELO,            /* 250 <host> Hello [<ip>], pleased to meet you */
    R_EHLO_FIRST,      /* 250-<host> Hello [<ip>], pleased to meet you */
    R_EHLO_PIPELINING, /* the EHLO keyword lines, in the order sent */
    R_EHLO_SIZE,
    R_EHLO_8BITMIME,
    R_EHLO_SMTPUTF8,
    R_EHLO_DSN,
    R_EHLO_CHUNKING,
    R_EHLO_STARTTLS, /* only when STARTTLS is offered */
    R_EHLO_AUTH,     /* only when AUTH is offered */
    R_EHLO_LAST,     /* 250 ENHANCEDSTATUSCODES */
    R_SENDER_OK,
    R_RCPT_OK,
    R_DATA_GO,
    R_MSG_OK,
    R_QUIT,
    R_OK,
    R_RSET,
    R_VRFY,
    R_HELP,
    R_ERR_UNKNOWN,
    R_ERR_SYNTAX,
    R_ERR_HELO_SYNTAX,
    R_ERR_SENDER_SYNTAX,
    R_ERR_RCPT_SYNTAX,
    R_ERR_PARAM,
    R_ERR_DSN_SYNTAX, /* 501 5.5.4 bad RET/ENVID/NOTIFY/ORCPT value */
    R_ERR_DSN_DUP,    /* 501 5.5.4 a DSN parameter given twice */
    R_ERR_NEED_HELO,
    R_ERR_NESTED_MAIL,
    R_ERR_NEED_MAIL,
    R_ERR_NEED_MAIL_DATA,
    R_ERR_NEED_RCPT,
    R_ERR_NO_VALID_RCPT,
    R_ERR_TOO_MANY_RCPT,
    R_ERR_LINE_TOO_LONG,
    R_ERR_DATA_LINE_LONG,
    R_ERR_BARE_EOL,
    R_ERR_DATA_NUL, /* 550 5.6.0 NUL in the data (nul_bytes = reject) */
    R_ERR_SIZE_MAIL,
    R_ERR_SIZE_DATA,
    R_ERR_RELAY,
    R_ERR_USER_UNKNOWN,
    R_ERR_NO_ARGS,
    R_ERR_QUEUE,
    R_ERR_NOMEM,
    R_ERR_FILTER_SPAM,  /* 554 5.7.1 SURBL/URIBL reject */
    R_ERR_FILTER_VIRUS, /* 554 5.7.1 antivirus */
    R_ERR_FILTER_TEMP,  /* 451 4.7.1 a filter could not decide */
    R_CLOSE_LIMIT,      /* 421 4.7.0 session limit */
    R_CLOSE_TIMEOUT,    /* 421 4.4.2 */
    R_CLOSE_SHUTDOWN,   /* 421 4.3.2 */
    R_CLOSE_ERRORS,     /* 421 4.7.0 too many errors */
    R_CLOSE_JUNK,       /* 421 4.7.0 too many junk commands */
    R_CLOSE_PER_IP,     /* 421 4.7.0 max_sessions_per_ip */
    R_CLOSE_RATE,       /* 421 4.7.0 max_connect_rate_per_ip */
    R_CLOSE_PREGREET,   /* 554 5.5.0 client talked before the banner */
    R_CLOSE_AUTH,       /* 421 4.7.0 too many AUTH failures */
    R_TLS_GO,           /* 220 2.0.0 Ready to start TLS */
    R_ERR_TLS_ACTIVE,
    R_ERR_NOT_IMPL,
    R_AUTH_CHALLENGE, /* 334 <base64 or empty> */
    R_AUTH_OK,
    R_ERR_AUTH_FAILED,
    R_ERR_AUTH_NEEDS_TLS,
    R_ERR_AUTH_REQUIRED,
    R_ERR_AUTH_ALREADY,
    R_ERR_AUTH_MECH,
    R_ERR_AUTH_ABORTED,
    R_ERR_AUTH_DECODE,
    R_ERR_AUTH_BUSY,
    R_ERR_BARE_LF,       /* 500 5.5.2 command line ended by a bare LF */
    R_CLOSE_HARVEST,     /* 421 4.7.0 max_unknown_recipients_per_ip */
    R_CLOSE_DNSBL,       /* 554 5.7.1 client [ip] blocked using <site> */
    R_ERR_MILTER_REJECT, /* 550 5.7.1 a milter rejected (it gave no text) */
    R_ERR_MILTER_TEMP,   /* 451 4.7.1 a milter tempfailed, or is down (tempfail) */
    R_ERR_MILTER_DENIED, /* 503 5.7.0 a milter refused the connection: every later command */
    R_FILTER_TEXT,       /* one line of a milter's own reply (validated by core/milter.c) */
    /* Results the delivery client (core/smtpc.c) synthesises for recipients
     * when the next hop did not answer for them: never sent to a client. */
    R_C_TOO_BIG,          /* 552 5.3.4 the hop's SIZE is smaller */
    R_C_NO_8BITMIME,      /* 554 5.6.3 */
    R_C_NO_SMTPUTF8,      /* 553 5.6.7 */
    R_C_NO_STARTTLS,      /* 451 4.7.4 TLS required, not offered */
    R_C_STARTTLS_REFUSED, /* 451 4.7.4 TLS required, STARTTLS refused */
    R_C_TLS_FAILED,       /* 451 4.7.0 handshake failed */
    R_C_PROTOCOL,         /* 451 4.5.0 garbage / unexpected reply */
    R_C_CONN_LOST,        /* 451 4.4.2 the I/O layer gave up */
    R_C_ABANDONED,        /* 451 4.3.0 the engine quit mid-message */
    R_ERR_QUEUE_FULL, /* 452 4.3.1 queue over queue_max_messages / disk below queue_min_free_space */
    /* CHUNKING (RFC 3030) */
    R_BDAT_OK,            /* 250 2.0.0 <n> octets received (a chunk before LAST) */
    R_ERR_BDAT_SYNTAX,    /* 501 5.5.4 Syntax: BDAT count [LAST] (the session closes) */
    R_ERR_BDAT_NEED_MAIL, /* 503 5.5.1 BDAT outside a transaction (chunk discarded) */
    R_ERR_BDAT_NEED_RCPT, /* 503 5.5.1 BDAT before any RCPT (chunk discarded) */
    R_ERR_AFTER_BDAT,     /* 503 5.5.1 <cmd> after BDAT (DATA, MAIL, RCPT mid-transaction) */
    R_ERR_BDAT_SIZE,      /* 552 5.3.4 the chunk takes the message over max_message_size */
    R_ERR_BDAT_LINE_LONG, /* 550 5.5.6 as R_ERR_DATA_LINE_LONG, in BDAT content */
    R_ERR_BDAT_BARE_EOL,  /* 550 5.5.2 as R_ERR_BARE_EOL, in BDAT content */
    R_ERR_BDAT_NUL,       /* 550 5.6.0 as R_ERR_DATA_NUL, in BDAT content */
    R_COUNT
};

struct reply_def {
    const char *fmt;  /* full line without CRLF, printf format */
    const char *args; /* its conversions' argument kinds, in order: 's' a
                            string (%s), 'u' an unsigned long long (%llu);
                            test_reply checks them against fmt */
};

extern const struct reply_def reply_table[R_COUNT];

/* reply_takes - does reply id take exactly the arguments kinds ("", "s",
 * "ss", "u")? For the typed senders' assertions. */
bool reply_takes(enum reply_id id, const char *kinds);

#endif
