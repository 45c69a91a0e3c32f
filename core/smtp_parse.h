/* smtp_parse.h - pure parsers for SMTP command lines (RFC 5321, ESMTP):
 * verb lookup, MAIL/RCPT paths, ESMTP parameters, EHLO/HELO domains.
 * No I/O, no allocation, no global state: callable from any thread, fuzzable. */
#ifndef MXRING_SMTP_PARSE_H
#define MXRING_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_LINE_MAX 512   /* RFC 5321 4.5.3.1.4: command line incl. CRLF */
#define SMTP_LOCAL_MAX 64   /* RFC 5321 4.5.3.1.1 */
#define SMTP_DOMAIN_MAX 255 /* RFC 5321 4.5.3.1.2 */
#define SMTP_PATH_MAX 256   /* RFC 5321 4.5.3.1.3, incl. the angle brackets */
#define SMTP_ENVID_MAX 100  /* RFC 3461 4.4: ENVID value (xtext octets) */
#define SMTP_ORCPT_MAX 500  /* RFC 3461 4.2: ORCPT value, addr-type ";" xtext */

/* Verbs known to the command table. Order is the table order. */
enum smtp_verb {
    SMTP_VERB_UNKNOWN = 0,
    SMTP_VERB_HELO,
    SMTP_VERB_EHLO,
    SMTP_VERB_MAIL,
    SMTP_VERB_RCPT,
    SMTP_VERB_DATA,
    SMTP_VERB_RSET,
    SMTP_VERB_NOOP,
    SMTP_VERB_QUIT,
    SMTP_VERB_VRFY,
    SMTP_VERB_HELP,
    SMTP_VERB_STARTTLS,
    SMTP_VERB_AUTH,
    SMTP_VERB_EXPN, /* recognised, not implemented (502) */
    SMTP_VERB_TURN,
    SMTP_VERB_ETRN,
    SMTP_VERB_BDAT, /* RFC 3030 CHUNKING */
    SMTP_VERB_COUNT
};

/* Result of a parse. The session maps each to one reply of the reply table. */
enum smtp_perr {
    SMTP_P_OK = 0,
    SMTP_P_SYNTAX,        /* 501 5.5.4 malformed arguments (missing FROM:/TO:, junk) */
    SMTP_P_BAD_ADDR,      /* 501 5.1.7 (MAIL) / 501 5.1.3 (RCPT): bad address syntax */
    SMTP_P_PATH_TOO_LONG, /* 501 5.1.7/5.1.3: local part > 64, domain > 255, path > 256 */
    SMTP_P_BAD_PARAM,     /* 555 5.5.4 unknown or malformed ESMTP parameter */
    SMTP_P_NULL_RCPT,     /* 501 5.1.3 '<>' is not a valid recipient */
    SMTP_P_BAD_DSN,       /* 501 5.5.4 bad RET/ENVID/NOTIFY/ORCPT value (params.bad names it) */
    SMTP_P_DUP_DSN,       /* 501 5.5.4 a DSN parameter given twice (params.bad names it) */
};

/* A parsed mailbox. addr is "local@domain" (no angle brackets, source route
 * dropped, quoted local part unquoted when it needs no quoting), NUL-terminated.
 * For the null sender "<>", is_null is set and addr is "". */
struct smtp_addr {
    char addr[SMTP_PATH_MAX + 1];
    size_t len; /* strlen(addr) */
    size_t
        at; /* index of the '@' separating local part and domain; == len when no domain ("postmaster") */
    bool is_null;      /* "<>" */
    bool utf8;         /* contains octets >= 0x80 (valid UTF-8) */
    bool quoted;       /* local part still needs quoting (kept quoted in addr) */
    bool addr_literal; /* domain is an address literal: [1.2.3.4] or [IPv6:...] */
};

enum smtp_body { SMTP_BODY_NONE = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };

/* RFC 3461 DSN: RET= on MAIL, NOTIFY= on RCPT (a bit mask; 0 = not given). */
enum smtp_ret { SMTP_RET_NONE = 0, SMTP_RET_FULL, SMTP_RET_HDRS };
enum smtp_notify {
    SMTP_NOTIFY_NEVER = 1u << 0,
    SMTP_NOTIFY_SUCCESS = 1u << 1,
    SMTP_NOTIFY_FAILURE = 1u << 2,
    SMTP_NOTIFY_DELAY = 1u << 3,
};

/* ESMTP parameters of MAIL FROM / RCPT TO. */
struct smtp_params {
    bool has_size;
    uint64_t size;                  /* SIZE=n (saturates to UINT64_MAX on overflow) */
    enum smtp_body body;            /* BODY= */
    bool smtputf8;                  /* SMTPUTF8 */
    bool has_auth;                  /* AUTH=<> or AUTH=xtext (RFC 4954 5); value ignored */
    enum smtp_ret ret;              /* RET= (MAIL) */
    unsigned notify;                /* NOTIFY= (RCPT): enum smtp_notify bits, 0 = not given */
    char envid[SMTP_ENVID_MAX + 1]; /* ENVID= (MAIL) as given (valid xtext), "" = none */
    char orcpt[SMTP_ORCPT_MAX + 1]; /* ORCPT= (RCPT) as given: type ";" xtext, "" = none */
    const char *bad;                /* SMTP_P_BAD_DSN / SMTP_P_DUP_DSN: the parameter ("NOTIFY") */
};

/* smtp_parse_verb - identify the verb of a command line.
 * line/len: the line without its CRLF. The verb is matched ASCII
 * case-insensitively and must be followed by SP or end of line.
 * Sets *arg_off to the offset of the argument text (leading SPs skipped).
 * Returns SMTP_VERB_UNKNOWN for anything else. */
enum smtp_verb smtp_parse_verb(const char *line, size_t len, size_t *arg_off);

/* smtp_verb_name - upper-case name of a verb ("MAIL"), "" for UNKNOWN. */
const char *smtp_verb_name(enum smtp_verb v);

/* smtp_parse_mail - parse the argument of MAIL: "FROM:<path> [params]".
 * Lenient like Postfix: "FROM:" case-insensitive, spaces after the colon
 * allowed, a path without angle brackets accepted. Source routes ignored.
 * "<>" gives is_null. */
enum smtp_perr smtp_parse_mail(const char *arg, size_t len, struct smtp_addr *a,
                               struct smtp_params *p);

/* smtp_parse_rcpt - parse the argument of RCPT: "TO:<path> [params]".
 * "<postmaster>" (no domain) is allowed; "<>" gives SMTP_P_NULL_RCPT. */
enum smtp_perr smtp_parse_rcpt(const char *arg, size_t len, struct smtp_addr *a,
                               struct smtp_params *p);

/* smtp_parse_helo - validate the argument of HELO/EHLO: a domain or address
 * literal, no spaces or control bytes, <= 255 octets. Returns SMTP_P_OK or
 * SMTP_P_SYNTAX. Trailing text after a space is tolerated and ignored
 * (*dlen excludes it). */
enum smtp_perr smtp_parse_helo(const char *arg, size_t len, size_t *dlen);

/* smtp_xtext_decode - decode RFC 3461 xtext (n octets, "+HH" with upper-case
 * hex) into out (cap octets, NUL-terminated). Returns the decoded length,
 * or -1 when the input is not xtext, decodes to anything but printable
 * US-ASCII (0x20..0x7e: RFC 3461 4.2, 4.4), or does not fit. */
long smtp_xtext_decode(const char *in, size_t n, char *out, size_t cap);

/* smtp_envid_valid, smtp_orcpt_valid - would this value (n octets) be
 * accepted as ENVID= / ORCPT= (for readers of stored envelopes)? */
bool smtp_envid_valid(const char *v, size_t n);
bool smtp_orcpt_valid(const char *v, size_t n);

/* smtp_notify_format - the NOTIFY= value of a mask ("SUCCESS,FAILURE",
 * "NEVER"; "" for 0) into buf (at least 32 octets). */
void smtp_notify_format(unsigned notify, char *buf, size_t cap);

/* smtp_notify_parse - a NOTIFY= value (n octets, case-insensitive) into
 * *notify; false when malformed (NEVER with others, repeats, unknown). */
bool smtp_notify_parse(const char *v, size_t n, unsigned *notify);

/* smtp_addr_domain - the domain part of a parsed address ("" if none). */
static inline const char *smtp_addr_domain(const struct smtp_addr *a)
{
    return a->at < a->len ? a->addr + a->at + 1 : a->addr + a->len;
}

#endif
