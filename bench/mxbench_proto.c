/* mxbench_proto.c - reply scanner and the builders of the command block and
 * the test message for mxbench (see mxbench_proto.h). Pure over bytes; any
 * thread. */
#include "mxbench_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define ADDR_MAX 256
#define CODE_LEN 3
#define PIPELINING_KW "PIPELINING"

/* line_code - the 3-digit code at the start of a reply line, or -1. */
static int line_code(const char *p, size_t n)
{
    if (n < CODE_LEN)
        return -1;
    int code = 0;
    for (int i = 0; i < CODE_LEN; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        code = code * 10 + (p[i] - '0');
    }
    if (n > CODE_LEN && p[CODE_LEN] != ' ' && p[CODE_LEN] != '-')
        return -1;
    return code;
}

/* is_keyword - true when the text after a line's code is keyword kw. */
static bool is_keyword(const char *p, size_t n, const char *kw)
{
    size_t k = strlen(kw);
    if (n < CODE_LEN + 1 + k)
        return false;
    p += CODE_LEN + 1;
    n -= CODE_LEN + 1;
    return strncasecmp(p, kw, k) == 0 && (n == k || p[k] == ' ');
}

/* mxb_reply_scan - first complete reply in buf, see mxbench_proto.h. */
long mxb_reply_scan(const char *buf, size_t len, struct mxb_reply *r)
{
    size_t pos = 0;
    r->code = -1;
    r->pipelining = false;
    while (pos < len) {
        const char *line = buf + pos;
        const char *nl = memchr(line, '\n', len - pos);
        if (!nl)
            return 0;
        size_t n = (size_t)(nl - line);
        if (n > 0 && line[n - 1] == '\r')
            n--;
        int code = line_code(line, n);
        if (code < 0 || (r->code >= 0 && code != r->code))
            return -1;
        if (r->code >= 0 && is_keyword(line, n, PIPELINING_KW))
            r->pipelining = true;
        r->code = code;
        pos = (size_t)(nl - buf) + 1;
        if (n == CODE_LEN || line[CODE_LEN] != '-')
            return (long)pos;
    }
    return 0;
}

/* mxb_cmds_build - lay out one transaction's commands, see mxbench_proto.h. */
bool mxb_cmds_build(struct mxb_cmds *c, const char *from, const char *domain,
                    unsigned rcpts)
{
    static const char mail_fmt[] = "MAIL FROM:<%s>\r\n";
    static const char rcpt_fmt[] = "RCPT TO:<rcpt%u@%s>\r\n";
    static const char data_cmd[] = "DATA\r\n";
    if (strlen(from) > ADDR_MAX || strlen(domain) > ADDR_MAX || rcpts == 0)
        return false;
    size_t cap = (size_t)(rcpts + 2) * (ADDR_MAX + 32);
    c->text = malloc(cap);
    c->off = malloc((rcpts + 3) * sizeof *c->off);
    c->rcpts = rcpts;
    if (!c->text || !c->off) {
        mxb_cmds_free(c);
        return false;
    }
    size_t pos = 0;
    c->off[0] = 0;
    pos += (size_t)snprintf(c->text + pos, cap - pos, mail_fmt, from);
    for (unsigned i = 1; i <= rcpts; i++) {
        c->off[i] = pos;
        pos += (size_t)snprintf(c->text + pos, cap - pos, rcpt_fmt, i, domain);
    }
    c->off[rcpts + 1] = pos;
    memcpy(c->text + pos, data_cmd, sizeof data_cmd - 1);
    pos += sizeof data_cmd - 1;
    c->off[rcpts + 2] = pos;
    return true;
}

/* mxb_cmds_free - release what mxb_cmds_build allocated. */
void mxb_cmds_free(struct mxb_cmds *c)
{
    free(c->text);
    free(c->off);
    c->text = NULL;
    c->off = NULL;
}

/* header_block - format the message headers into out (cap octets); pad
 * appends that many '.' to the subject. Returns the length. */
static size_t header_block(char *out, size_t cap, const char *from, const char *to,
                           unsigned pad)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    int n = snprintf(out, cap,
                     "From: mxbench <%s>\r\n"
                     "To: <%s>\r\n"
                     "Subject: mxbench load test message%.*s\r\n"
                     "Date: %s\r\n"
                     "Message-ID: <mxbench.%ld.%ld@mxbench.test>\r\n"
                     "MIME-Version: 1.0\r\n"
                     "Content-Type: text/plain; charset=us-ascii\r\n"
                     "Content-Transfer-Encoding: 7bit\r\n"
                     "\r\n",
                     from, to, (int)pad, "..", date, (long)getpid(), (long)now);
    return n < 0 ? 0 : (size_t)n;
}

/* fill_line - n characters of readable text (words of lower-case letters,
 * never a leading '.' or space), varied by the line number. */
static void fill_line(char *p, size_t n, unsigned line)
{
    static const char words[] = "the quick brown fox jumps over a lazy dog while "
                                "mail flows through the gateway at line rate ";
    size_t wl = sizeof words - 1;
    size_t start = (line * 7u) % wl;
    while (words[start] == ' ')
        start = (start + 1) % wl;
    for (size_t i = 0; i < n; i++)
        p[i] = words[(start + i) % wl];
    if (n > 0 && p[n - 1] == ' ')
        p[n - 1] = 'x';     /* no trailing white space */
}

/* body_len - text length of the next body line when rem octets (CRLF
 * included) are still to fill; never leaves 1 or 2 octets that cannot
 * form a CRLF-ended line. */
static size_t body_len(size_t rem)
{
    const size_t full = MXB_LINE_LEN + 2;
    if (rem <= full)
        return rem - 2;
    if (rem - full < 3)
        return MXB_LINE_LEN - 6;
    return MXB_LINE_LEN;
}

/* mxb_msg_build - the test message and its end of data, see mxbench_proto.h. */
char *mxb_msg_build(size_t size, const char *from, const char *to, size_t *len)
{
    char hdr[2048];
    size_t h = header_block(hdr, sizeof hdr, from, to, 0);
    if (size > h && size - h == 1)
        h = header_block(hdr, sizeof hdr, from, to, 1);
    if (h == 0 || h >= sizeof hdr)
        return NULL;
    size_t total = size > h ? size : h;
    char *m = malloc(total + sizeof MXB_EOD);
    if (!m)
        return NULL;
    memcpy(m, hdr, h);
    size_t pos = h;
    for (unsigned line = 0; pos < total; line++) {
        size_t n = body_len(total - pos);
        fill_line(m + pos, n, line);
        memcpy(m + pos + n, "\r\n", 2);
        pos += n + 2;
    }
    memcpy(m + pos, MXB_EOD, sizeof MXB_EOD - 1);
    *len = pos + sizeof MXB_EOD - 1;
    return m;
}

/* base64 - encode n octets of in into out (4 * ceil(n / 3) characters, no
 * NUL); returns the characters written. */
static size_t base64(const unsigned char *in, size_t n, char *out)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? alphabet[v & 63] : '=';
    }
    return o;
}

/* mxb_auth_plain_build - AUTH PLAIN with its initial response, see
 * mxbench_proto.h. */
char *mxb_auth_plain_build(const char *user_pass, size_t *len)
{
    static const char verb[] = "AUTH PLAIN ";
    const char *colon = strchr(user_pass, ':');
    size_t up = strlen(user_pass);
    if (!colon || up > ADDR_MAX * 4)
        return NULL;
    /* NUL user NUL pass: the colon becomes the second NUL. */
    unsigned char *raw = malloc(up + 1);
    char *cmd = malloc(sizeof verb + (up + 1 + 2) / 3 * 4 + 2);
    if (!raw || !cmd) {
        free(raw);
        free(cmd);
        return NULL;
    }
    raw[0] = 0;
    memcpy(raw + 1, user_pass, up);
    raw[1 + (size_t)(colon - user_pass)] = 0;
    memcpy(cmd, verb, sizeof verb - 1);
    size_t n = sizeof verb - 1 + base64(raw, up + 1, cmd + sizeof verb - 1);
    memcpy(cmd + n, "\r\n", 2);
    *len = n + 2;
    explicit_bzero(raw, up + 1);
    free(raw);
    return cmd;
}
