/* mxbench_proto.h - the SMTP client side of mxbench, pure over bytes: the
 * reply codes it expects, a reply scanner, and the builders of the command
 * block and of the test message. No I/O; any thread. */
#ifndef MXBENCH_PROTO_H
#define MXBENCH_PROTO_H

#include <stdbool.h>
#include <stddef.h>

/* Reply codes mxbench expects (RFC 5321 section 4.2). */
enum mxb_code {
    MXB_CODE_READY = 220,       /* greeting */
    MXB_CODE_CLOSING = 221,     /* QUIT */
    MXB_CODE_AUTH_OK = 235,     /* AUTH (RFC 4954) */
    MXB_CODE_OK = 250,          /* EHLO, MAIL, RCPT, end of data */
    MXB_CODE_START_DATA = 354,  /* DATA */
};

#define MXB_EHLO_CMD "EHLO mxbench.test\r\n"
#define MXB_QUIT_CMD "QUIT\r\n"
#define MXB_STARTTLS_CMD "STARTTLS\r\n"   /* RFC 3207; 220 (MXB_CODE_READY) */
#define MXB_EOD ".\r\n"               /* end of data, after a CRLF-ended body */
#define MXB_LINE_LEN 76               /* text per body line, CRLF not counted */
#define MXB_RCPTS_MAX 1000

/* One complete reply, possibly of several lines. */
struct mxb_reply {
    int code;
    bool pipelining;    /* a continuation line announced PIPELINING */
};

/* mxb_reply_scan - find the first complete reply in buf[0..len). Returns the
 * octets it spans (0: not complete yet; -1: not an SMTP reply, e.g. a line
 * without a 3-digit code or with codes that differ between lines). */
long mxb_reply_scan(const char *buf, size_t len, struct mxb_reply *r);

/* The commands of one transaction laid out back to back, so that a
 * pipelining client sends [off[0], off[rcpts + 2]) in one write and a
 * lock-step client sends [off[k], off[k + 1]) one by one:
 * k = 0 MAIL, 1..rcpts RCPT, rcpts + 1 DATA. */
struct mxb_cmds {
    char *text;
    size_t *off;
    unsigned rcpts;
};

/* mxb_cmds_build - lay out MAIL FROM:<from>, RCPT TO:<rcptI@domain> for I =
 * 1..rcpts and DATA. Returns false when out of memory or an address is too
 * long (over 256 octets). */
bool mxb_cmds_build(struct mxb_cmds *c, const char *from, const char *domain,
                    unsigned rcpts);

/* mxb_cmds_free - release what mxb_cmds_build allocated. */
void mxb_cmds_free(struct mxb_cmds *c);

/* mxb_msg_build - a realistic message of exactly size octets (at least the
 * header block; a smaller size gives just the headers): RFC 5322 headers,
 * an empty line, then lines of MXB_LINE_LEN characters, CRLF line ends, no
 * line starting with '.', followed by MXB_EOD (not counted in size). The
 * result is malloc'ed, its length (size + end of data) in *len; NULL when
 * out of memory. */
char *mxb_msg_build(size_t size, const char *from, const char *to, size_t *len);

/* mxb_auth_plain_build - the command "AUTH PLAIN <initial response>" with
 * CRLF for user_pass "USER:PASS" (split at the first ':'): base64 of
 * NUL USER NUL PASS (RFC 4616, empty authorization identity). malloc'ed,
 * its length in *len; NULL without a ':' or when out of memory. */
char *mxb_auth_plain_build(const char *user_pass, size_t *len);

#endif
