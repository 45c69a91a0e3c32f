/* mxbench_proto.h - the SMTP client side of mxbench, pure over bytes: the
 * reply codes it expects, a reply scanner, and the builders of the command
 * block and of the test message. No I/O; any thread. */
#ifndef MXBENCH_PROTO_H
#define MXBENCH_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Reply codes mxbench expects (RFC 5321 section 4.2). */
enum mxb_code {
    MXB_CODE_READY = 220,      /* greeting */
    MXB_CODE_CLOSING = 221,    /* QUIT */
    MXB_CODE_AUTH_OK = 235,    /* AUTH (RFC 4954) */
    MXB_CODE_OK = 250,         /* EHLO, MAIL, RCPT, end of data */
    MXB_CODE_START_DATA = 354, /* DATA */
};

#define MXB_EHLO_CMD "EHLO mxbench.test\r\n"
#define MXB_QUIT_CMD "QUIT\r\n"
#define MXB_STARTTLS_CMD "STARTTLS\r\n" /* RFC 3207; 220 (MXB_CODE_READY) */
#define MXB_EOD ".\r\n"                 /* end of data, after a CRLF-ended body */
#define MXB_LINE_LEN 76                 /* text per body line, CRLF not counted */
#define MXB_RCPTS_MAX 1000

/* One complete reply, possibly of several lines. */
struct mxb_reply {
    int code;
    unsigned enh;    /* enhanced status code of the first line (RFC 3463),
                         * see MXB_ENH(); 0 when it has none */
    bool pipelining; /* a continuation line announced PIPELINING */
};

/* An enhanced status code class.subject.detail packed into one number. */
#define MXB_ENH(cls, subj, det) \
    ((unsigned)(cls)*1000000u + (unsigned)(subj)*1000u + (unsigned)(det))
#define MXB_ENH_CLASS(e) ((e) / 1000000u)
#define MXB_ENH_SUBJECT(e) ((e) / 1000u % 1000u)
#define MXB_ENH_DETAIL(e) ((e) % 1000u)

/* mxb_reply_scan - find the first complete reply in buf[0..len). Returns the
 * octets it spans (0: not complete yet; -1: not an SMTP reply, e.g. a line
 * without a 3-digit code or with codes that differ between lines). */
long mxb_reply_scan(const char *buf, size_t len, struct mxb_reply *r);

/* mxb_enh_parse - the enhanced status code "C.SSS.DDD" (C in 2, 4, 5; one
 * to three digits each) at the start of text[0..n), followed by a space or
 * the end; MXB_ENH() packed, or 0 when there is none. */
unsigned mxb_enh_parse(const char *text, size_t n);

/* Preformatted command lines, one per address: "MAIL FROM:<a>\r\n" or
 * "RCPT TO:<a>\r\n"; line i is text[off[i], off[i + 1]). */
struct mxb_lines {
    char *text;
    size_t *off;
    size_t n;
    size_t longest; /* octets of the longest line */
};

/* mxb_lines_build - format verb "<addr>" CRLF for each of the n addresses
 * (verb is "MAIL FROM:" or "RCPT TO:"). False when out of memory, n is 0,
 * or an address is over 256 octets or holds a control character. */
bool mxb_lines_build(struct mxb_lines *l, const char *verb, const char *const *addrs, size_t n);

/* mxb_lines_free - release what mxb_lines_build allocated. */
void mxb_lines_free(struct mxb_lines *l);

/* The commands of one transaction laid out back to back, so that a
 * pipelining client sends [off[0], off[rcpts + 2]) in one write and a
 * lock-step client sends [off[k], off[k + 1]) one by one:
 * k = 0 MAIL, 1..rcpts RCPT, rcpts + 1 DATA. Each session owns one and
 * refills it per message. */
struct mxb_cmds {
    char *text;
    size_t *off;
    unsigned rcpts;
};

/* mxb_cmds_alloc - room for one transaction of rcpts recipients drawn from
 * the lines in mail and rcpt. False when out of memory. */
bool mxb_cmds_alloc(struct mxb_cmds *c, unsigned rcpts, const struct mxb_lines *mail,
                    const struct mxb_lines *rcpt);

/* mxb_cmds_fill - the transaction of message number k: sender line
 * k mod senders, recipient lines (k * rcpts + j) mod recipients for
 * j = 0..rcpts - 1, then DATA (the lists go round in turn). */
void mxb_cmds_fill(struct mxb_cmds *c, const struct mxb_lines *mail, const struct mxb_lines *rcpt,
                   uint64_t k);

/* mxb_cmds_free - release what mxb_cmds_alloc allocated. */
void mxb_cmds_free(struct mxb_cmds *c);

/* mxb_wire_encode - a stored message (an .eml file's octets) as the DATA
 * stream: every line that starts with '.' gets one more '.' (RFC 5321
 * 4.5.2), a line ended by a bare LF gets CRLF (lines already ending in CRLF
 * and every other octet, 8-bit, NUL or a lone CR, pass unchanged), a last
 * line without an end gets CRLF, then MXB_EOD. malloc'ed, its length in
 * *len; *body_len gets the octets the server stores (the stream minus the
 * stuffing dots and MXB_EOD). NULL when out of memory. */
char *mxb_wire_encode(const char *in, size_t n, size_t *len, size_t *body_len);

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
