/* dsn.h - the RFC 3464 delivery status notification (bounce) builder: pure
 * formatting of a multipart/report; report-type=delivery-status message
 * from the original envelope, its headers and per-recipient outcomes. No
 * I/O; the engine queues the result as an ordinary queue file (envelope
 * sender empty, one recipient: the original sender). Any thread.
 *
 * Structure of the message built (CRLF line ends, every line <= 998
 * octets, header and DSN fields folded at 78 where they are longer):
 *
 *   From: Mail Delivery System <MAILER-DAEMON@<reporting_mta>>
 *   To: <original sender>
 *   Subject: Undelivered Mail Returned to Sender   (Delayed Mail ... for delayed,
 *            Successful Mail Delivery Report for relayed and delivered)
 *   Date, Message-ID, Auto-Submitted: auto-replied, MIME-Version: 1.0,
 *   Content-Type: multipart/report; report-type=delivery-status; boundary="..."
 *
 *   --boundary   text/plain: a human-readable explanation, one paragraph per
 *                recipient with the hop's reply
 *   --boundary   message/delivery-status:
 *                  Original-Envelope-Id: <ENVID, decoded>  (when given)
 *                  Reporting-MTA: dns; <reporting_mta>
 *                  X-Mxring-Queue-ID: <qid>
 *                  Arrival-Date: <RFC 5322 date>
 *                  (blank line, then per recipient:)
 *                  Original-Recipient: <type>; <ORCPT, decoded>  (when given)
 *                  Final-Recipient: rfc822; <addr>     (utf-8; for non-ASCII)
 *                  Action: failed | delayed | relayed | delivered
 *                  Status: 5.1.1
 *                  Remote-MTA: dns; <host>             (when known)
 *                  Diagnostic-Code: smtp; <reply>      (when known)
 *                  Last-Attempt-Date: <date>
 *   --boundary   text/rfc822-headers: the original message's header block
 *                (up to the first empty line; at most DSN_HEADERS_MAX octets,
 *                cut at a line end); with ret_full and a message of at most
 *                DSN_FULL_MAX octets instead message/rfc822: all of it
 *   --boundary--
 *
 * The boundary is derived from the queue id and the time and checked not to
 * occur in the original headers. */
#ifndef MXRING_DSN_H
#define MXRING_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define DSN_HEADERS_MAX (64 * 1024)
#define DSN_FULL_MAX \
    (1024 * 1024) /* RET=FULL returns the message up to this size; a
                                      larger one gets its headers only (said in the text) */

/* RFC 3464 2.3.3 actions we report (one kind per notification). */
enum dsn_action { DSN_FAILED = 0, DSN_DELAYED, DSN_RELAYED, DSN_DELIVERED };

/* One recipient reported on. */
struct dsn_rcpt {
    const char *addr; /* the original recipient */
    enum dsn_action action;
    const char *status;     /* enhanced status "5.1.1"; NULL/"" = derived
                                   from the reply code (5.0.0 / 4.0.0) */
    unsigned code;          /* the hop's reply code, 0 = none (local) */
    const char *diag;       /* the hop's reply text or local reason; may be NULL */
    const char *remote_mta; /* host of the hop that answered; NULL = unknown */
    const char *orcpt;      /* RFC 3461 ORCPT "type;xtext" as received; NULL = none */
};

struct dsn_in {
    const char *reporting_mta; /* our host name */
    const char *qid;           /* the original queue id */
    const char *orig_sender;   /* where the bounce goes (never "") */
    int64_t arrival;           /* of the original */
    int64_t now;               /* Date: and Last-Attempt-Date: */
    const struct dsn_rcpt *rcpts;
    size_t nrcpt;    /* >= 1 */
    const char *msg; /* the original message (its headers are taken) */
    size_t msg_len;
    bool ret_full;     /* RET=FULL: the whole message (up to DSN_FULL_MAX) as message/rfc822 */
    const char *envid; /* RFC 3461 ENVID xtext as received; NULL = none */
};

/* dsn_build - the whole bounce message appended to out. *eightbit (may be
 * NULL) is set when the result contains octets > 127 (non-ASCII addresses
 * or original headers): queue it with body 8BITMIME (and smtputf8 when an
 * address is non-ASCII: *utf8). false on ENOMEM or invalid input (no
 * recipients, empty orig_sender). */
bool dsn_build(const struct dsn_in *in, struct sb *out, bool *eightbit, bool *utf8);

/* dsn_wanted - should a failure of a message from sender be reported?
 * false for the null sender "" (which every bounce has, so a bounce is
 * never bounced); the sender's local part is not guessed at. */
bool dsn_wanted(const char *sender);

/* dsn_date - an RFC 5322 date in UTC ("Sun, 29 Nov 2026 23:36:40 +0000")
 * into buf (at least 40 octets). */
void dsn_date(int64_t t, char *buf, size_t len);

#endif
