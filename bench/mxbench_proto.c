/* mxbench_proto.c - reply scanner (code, enhanced status code), the
 * builders of the command lines, of each transaction's command block and of
 * the test message, and the DATA encoding of stored messages for mxbench
 * (see mxbench_proto.h). Pure over bytes; any thread. */
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
#define ENH_PART_MAX 3 /* digits of subject and detail */
#define DATA_CMD "DATA\r\n"

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

/* digits - up to max decimal digits at p[0..n) into *v; the count read. */
static size_t digits(const char *p, size_t n, size_t max, unsigned *v)
{
    size_t i = 0;
    *v = 0;
    while (i < n && i < max && p[i] >= '0' && p[i] <= '9')
        *v = *v * 10 + (unsigned)(p[i++] - '0');
    return i;
}

/* mxb_enh_parse - enhanced status code at the start of text, see
 * mxbench_proto.h. */
unsigned mxb_enh_parse(const char *text, size_t n)
{
    unsigned cls, subj, det;
    size_t a = digits(text, n, 1, &cls);
    if (a != 1 || (cls != 2 && cls != 4 && cls != 5) || a >= n || text[a] != '.')
        return 0;
    size_t b = digits(text + a + 1, n - a - 1, ENH_PART_MAX, &subj);
    size_t pos = a + 1 + b;
    if (b == 0 || pos >= n || text[pos] != '.')
        return 0;
    size_t c = digits(text + pos + 1, n - pos - 1, ENH_PART_MAX, &det);
    pos += 1 + c;
    if (c == 0 || (pos < n && text[pos] != ' '))
        return 0;
    return MXB_ENH(cls, subj, det);
}

/* mxb_reply_scan - first complete reply in buf, see mxbench_proto.h. */
long mxb_reply_scan(const char *buf, size_t len, struct mxb_reply *r)
{
    size_t pos = 0;
    r->code = -1;
    r->enh = 0;
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
        if (r->code < 0 && n > CODE_LEN)
            r->enh = mxb_enh_parse(line + CODE_LEN + 1, n - CODE_LEN - 1);
        r->code = code;
        pos = (size_t)(nl - buf) + 1;
        if (n == CODE_LEN || line[CODE_LEN] != '-')
            return (long)pos;
    }
    return 0;
}

/* mxb_lines_build - one command line per address, see mxbench_proto.h. */
bool mxb_lines_build(struct mxb_lines *l, const char *verb, const char *const *addrs, size_t n)
{
    memset(l, 0, sizeof *l);
    size_t cap = 0, vl = strlen(verb);
    for (size_t i = 0; i < n; i++) {
        size_t al = strlen(addrs[i]);
        if (al > ADDR_MAX)
            return false;
        for (size_t j = 0; j < al; j++)
            if ((unsigned char)addrs[i][j] < ' ' || addrs[i][j] == 0x7f)
                return false;
        cap += vl + al + 4; /* "<", ">", CRLF */
    }
    l->text = malloc(cap + 1);
    l->off = malloc((n + 1) * sizeof *l->off);
    if (n == 0 || !l->text || !l->off) {
        mxb_lines_free(l);
        return false;
    }
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        l->off[i] = pos;
        pos += (size_t)snprintf(l->text + pos, cap + 1 - pos, "%s<%s>\r\n", verb, addrs[i]);
        if (pos - l->off[i] > l->longest)
            l->longest = pos - l->off[i];
    }
    l->off[n] = pos;
    l->n = n;
    return true;
}

/* mxb_lines_free - release what mxb_lines_build allocated. */
void mxb_lines_free(struct mxb_lines *l)
{
    free(l->text);
    free(l->off);
    memset(l, 0, sizeof *l);
}

/* mxb_cmds_alloc - room for one transaction, see mxbench_proto.h. */
bool mxb_cmds_alloc(struct mxb_cmds *c, unsigned rcpts, const struct mxb_lines *mail,
                    const struct mxb_lines *rcpt)
{
    size_t cap = mail->longest + (size_t)rcpts * rcpt->longest + sizeof DATA_CMD;
    c->text = malloc(cap);
    c->off = malloc((rcpts + 3) * sizeof *c->off);
    c->rcpts = rcpts;
    if (!c->text || !c->off) {
        mxb_cmds_free(c);
        return false;
    }
    return true;
}

/* put_line - append line i of l at c->text + pos; returns the new pos. */
static size_t put_line(struct mxb_cmds *c, size_t pos, const struct mxb_lines *l, size_t i)
{
    size_t n = l->off[i + 1] - l->off[i];
    memcpy(c->text + pos, l->text + l->off[i], n);
    return pos + n;
}

/* mxb_cmds_fill - the transaction of message k, see mxbench_proto.h. */
void mxb_cmds_fill(struct mxb_cmds *c, const struct mxb_lines *mail, const struct mxb_lines *rcpt,
                   uint64_t k)
{
    size_t pos = 0;
    c->off[0] = 0;
    pos = put_line(c, pos, mail, (size_t)(k % mail->n));
    uint64_t first = k * c->rcpts;
    for (unsigned j = 0; j < c->rcpts; j++) {
        c->off[j + 1] = pos;
        pos = put_line(c, pos, rcpt, (size_t)((first + j) % rcpt->n));
    }
    c->off[c->rcpts + 1] = pos;
    memcpy(c->text + pos, DATA_CMD, sizeof DATA_CMD - 1);
    c->off[c->rcpts + 2] = pos + sizeof DATA_CMD - 1;
}

/* mxb_cmds_free - release what mxb_cmds_alloc allocated. */
void mxb_cmds_free(struct mxb_cmds *c)
{
    free(c->text);
    free(c->off);
    c->text = NULL;
    c->off = NULL;
}

/* wire_room - an upper bound of the encoded length of n input octets with
 * lines lines (each may gain a dot and a CR), plus a final CRLF and EOD. */
static size_t wire_room(size_t n, size_t lines)
{
    return n + 2 * lines + 2 + sizeof MXB_EOD;
}

/* mxb_wire_encode - a stored message as the DATA stream, see
 * mxbench_proto.h. */
char *mxb_wire_encode(const char *in, size_t n, size_t *len, size_t *body_len)
{
    size_t lines = 1, dots = 0;
    for (size_t i = 0; i < n; i++)
        lines += in[i] == '\n';
    char *out = malloc(wire_room(n, lines));
    if (!out)
        return NULL;
    size_t o = 0, i = 0;
    while (i < n) {
        const char *nl = memchr(in + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - in) : n; /* the LF, or the end */
        if (in[i] == '.') {
            out[o++] = '.';
            dots++;
        }
        size_t text = end > i && nl && in[end - 1] == '\r' ? end - 1 - i : end - i;
        memcpy(out + o, in + i, text);
        o += text;
        out[o++] = '\r';
        out[o++] = '\n';
        i = nl ? end + 1 : n;
    }
    memcpy(out + o, MXB_EOD, sizeof MXB_EOD - 1);
    *body_len = o - dots;
    *len = o + sizeof MXB_EOD - 1;
    return out;
}

/* header_block - format the message headers into out (cap octets); pad
 * appends that many '.' to the subject. Returns the length. */
static size_t header_block(char *out, size_t cap, const char *from, const char *to, unsigned pad)
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
        p[n - 1] = 'x'; /* no trailing white space */
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
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
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
