/* smtp_data_ref.h - a slow, line-based reference model of the DATA scanner
 * (core/smtp_data.c), written independently of its state machine. Shared by
 * tests/unit/test_smtp_data.c and tests/fuzz/fuzz_smtp_data.c as the oracle
 * for whole inputs: split CRLF lines, drop a leading dot, stop at ".\r\n";
 * then look for the first bare CR/LF, NUL and 8-bit octet by plain loops, and
 * for SMTP commands at any line start (after any CR or LF) behind it. */
#ifndef MXRING_SMTP_DATA_REF_H
#define MXRING_SMTP_DATA_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smtp_data.h"
#include "util.h"

/* What the scanner must report after being fed a whole input. */
struct ref_data {
    bool done;
    size_t consumed;
    uint32_t flags;
    uint64_t size;            /* unstuffed octets (unlimited) */
    struct sb out;            /* unstuffed message, unlimited; caller frees */
    uint64_t first_bare;      /* input offset of the first bare CR/LF (if flagged) */
    unsigned char bare_octet; /* and which one it was */
    uint64_t first_nul;       /* input offset of the first NUL (if flagged) */
};

/* ref_find_crlf - offset of the first "\r\n" in p[from..n), or n. */
static inline size_t ref_find_crlf(const unsigned char *p, size_t from, size_t n)
{
    for (size_t i = from; i + 1 < n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n')
            return i;
    return n;
}

/* ref_body_len - length of the message body before the terminator (and set
 * done and consumed); the whole input when there is no terminator. */
static inline size_t ref_body_len(const unsigned char *p, size_t n, bool *done, size_t *consumed)
{
    *done = true;
    if (n >= 3 && memcmp(p, ".\r\n", 3) == 0) {
        *consumed = 3;
        return 0;
    }
    for (size_t i = 0; i + 5 <= n; i++)
        if (memcmp(p + i, "\r\n.\r\n", 5) == 0) {
            *consumed = i + 5;
            return i + 2;
        }
    *done = false;
    *consumed = n;
    return n;
}

/* ref_bare_eol - offset of the first CR not followed by LF (when the next
 * octet is known) or LF not preceded by CR in body; n when there is none. */
static inline size_t ref_bare_eol(const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (b[i] == '\n' && (i == 0 || b[i - 1] != '\r'))
            return i;
        if (b[i] == '\r' && i + 1 < n && b[i + 1] != '\n')
            return i;
    }
    return n;
}

/* ref_is_cmd - does b[0..n) start with an SMTP command a smuggler would
 * hide (any case; the verbs without arguments end in CR or LF)? */
static inline bool ref_is_cmd(const unsigned char *b, size_t n)
{
    static const char *const cmds[] = {
        "MAIL FROM:", "RCPT TO:", "EHLO ",  "HELO ",  "BDAT ",  "DATA\r",
        "DATA\n",     "QUIT\r",   "QUIT\n", "RSET\r", "RSET\n",
    };
    for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
        size_t len = strlen(cmds[k]), j = 0;
        while (j < len && j < n &&
               (b[j] == cmds[k][j] || (b[j] >= 'a' && b[j] <= 'z' && b[j] - 32 == cmds[k][j])))
            j++;
        if (j == len)
            return true;
    }
    return false;
}

/* ref_cmd_after - is there a line start (after any CR or LF) at or after
 * from + 1 whose line begins with a command (within body)? */
static inline bool ref_cmd_after(const unsigned char *b, size_t n, size_t from)
{
    for (size_t j = from + 1; j < n; j++)
        if ((b[j - 1] == '\r' || b[j - 1] == '\n') && ref_is_cmd(b + j, n - j))
            return true;
    return false;
}

/* ref_line - account one line b[0..n) (without CRLF); complete: a CRLF follows. */
static inline void ref_line(struct ref_data *r, const unsigned char *b, size_t n, bool complete)
{
    size_t skip = n > 0 && b[0] == '.';
    size_t counted = n - skip;
    if (!complete && n == 2 && b[0] == '.' && b[1] == '\r')
        return; /* ".\r" might still become the terminator: nothing emitted */
    sb_append(&r->out, b + skip, n - skip);
    if (complete)
        sb_append(&r->out, "\r\n", 2);
    else if (n > skip && b[n - 1] == '\r')
        counted--; /* a trailing CR is not yet known to be bare */
    if (counted > SMTP_DATA_LINE_MAX)
        r->flags |= DATA_F_LONG_LINE;
}

/* ref_data_scan - compute everything the scanner must report for input p[0..n). */
static inline void ref_data_scan(const unsigned char *p, size_t n, uint64_t limit,
                                 struct ref_data *r)
{
    memset(r, 0, sizeof(*r));
    size_t body = ref_body_len(p, n, &r->done, &r->consumed);
    size_t i = 0;
    while (i < body) {
        size_t e = ref_find_crlf(p, i, body);
        ref_line(r, p + i, e - i, e < body);
        i = e < body ? e + 2 : body;
    }
    size_t bare = ref_bare_eol(p, body);
    if (bare < body) {
        r->flags |= DATA_F_BARE_EOL;
        r->first_bare = bare;
        r->bare_octet = p[bare];
        if (ref_cmd_after(p, body, bare))
            r->flags |= DATA_F_BARE_CMD;
    }
    const unsigned char *nul = body ? memchr(p, 0, body) : NULL;
    if (nul) {
        r->flags |= DATA_F_NUL;
        r->first_nul = (uint64_t)(nul - p);
    }
    for (size_t k = 0; k < body; k++)
        if (p[k] >= 0x80)
            r->flags |= DATA_F_8BIT;
    r->size = r->out.len;
    if (limit && r->size > limit)
        r->flags |= DATA_F_TOO_BIG;
}

#endif
