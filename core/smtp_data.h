/* smtp_data.h - the DATA-phase scanner: finds the one true end of data
 * (<CR><LF>.<CR><LF>), undoes dot-stuffing, enforces the line-length and
 * message-size limits and flags bare CR / bare LF (SMTP smuggling defence),
 * NUL and 8-bit octets, and SMTP commands hidden behind a bare CR / LF.
 * Pure: no I/O; the caller owns the output buffer. */
#ifndef MXRING_SMTP_DATA_H
#define MXRING_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define SMTP_DATA_LINE_MAX 998 /* RFC 5321 4.5.3.1.6, excluding CRLF */

enum data_flag {
    DATA_F_BARE_EOL = 1u << 0,  /* a CR not followed by LF, or an LF not after CR */
    DATA_F_LONG_LINE = 1u << 1, /* a line over SMTP_DATA_LINE_MAX octets */
    DATA_F_TOO_BIG = 1u << 2,   /* message over the size limit: output truncated */
    DATA_F_NUL = 1u << 3,       /* a NUL octet (see first_nul) */
    DATA_F_8BIT = 1u << 4,      /* an octet >= 0x80 */
    DATA_F_BARE_CMD = 1u << 5,  /* after the first bare CR/LF, a line (begun by any
                                   CR or LF) starts with an SMTP command: MAIL FROM:,
                                   RCPT TO:, DATA, QUIT, RSET, EHLO, HELO, BDAT */
};

#define DATA_CMD_LEAD 10 /* longest command prefix matched ("MAIL FROM:") */

/* Scanner state; zero-initialise with data_scan_init(). */
struct data_scan {
    int state;                /* internal */
    uint32_t flags;           /* enum data_flag bits seen so far */
    size_t line_len;          /* octets on the current line */
    uint64_t size;            /* unstuffed message octets seen (counts past the limit) */
    uint64_t limit;           /* max octets stored into out (0 = unlimited) */
    uint64_t offset;          /* input octets consumed so far (as received, stuffed) */
    uint64_t first_bare;      /* input offset of the first bare CR or LF (DATA_F_BARE_EOL) */
    uint64_t first_nul;       /* input offset of the first NUL (DATA_F_NUL) */
    unsigned char bare_octet; /* the first bare one: '\r' or '\n' */
    unsigned char cmd_len;    /* internal: command matcher (after a bare CR/LF) */
    bool raw;                 /* BDAT content: no dot-stuffing, no end of data */
    char cmd_lead[DATA_CMD_LEAD];
};

/* data_scan_init - start scanning right after the 354 reply; limit = max
 * message size in octets (0 = none). */
void data_scan_init(struct data_scan *ds, uint64_t limit);

/* data_scan_init_raw - the same for BDAT chunks (RFC 3030): binary-clean,
 * every octet is message content (no dot-unstuffing, no end-of-data
 * search: *done is never set), while the CRLF, line-length, NUL and 8-bit
 * rules and the size limit apply as for DATA. One scan spans all chunks of
 * a message (a CRLF may be split between two chunks). */
void data_scan_init_raw(struct data_scan *ds, uint64_t limit);

/* data_scan_end_raw - the BDAT LAST chunk is in: a CR it ended with was
 * not followed by LF (a bare CR). Content may end without CRLF (RFC 3030). */
void data_scan_end_raw(struct data_scan *ds);

/* data_scan_feed - scan len bytes of DATA input. Unstuffed message bytes
 * (lines with their CRLF, without the final ".\r\n") are appended to out
 * while ds->size stays within ds->limit; past it DATA_F_TOO_BIG is set and
 * nothing more is stored. Returns the number of input bytes consumed; when
 * the end-of-data sequence is found *done is set and the return value counts
 * the terminator, leaving any later bytes (pipelined commands) unconsumed.
 * Returns (size_t)-1 only if out cannot grow (ENOMEM). */
size_t data_scan_feed(struct data_scan *ds, const char *in, size_t len, struct sb *out, bool *done);

#endif
