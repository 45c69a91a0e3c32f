/* http_req.c - owns the strict HTTP/1.1 request parser of the metrics
 * endpoint (see http_req.h for the grammar accepted). It walks the buffer
 * line by line from the start on every call, so a caller simply re-parses
 * after each read; requests are at most HTTP_REQ_MAX octets. Pure: any
 * thread. */
#include "http_req.h"

#include <stdbool.h>
#include <string.h>

/* is_tchar - RFC 9110 token character. */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* is_vchar - visible ASCII. */
static bool is_vchar(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

/* line_end - the offset of the CR of the CRLF ending the line at off;
 * -1 = no CRLF yet, -2 = a bare CR or LF (malformed). */
static long line_end(const char *b, size_t len, size_t off)
{
    for (size_t i = off; i < len; i++) {
        if (b[i] == '\n')
            return -2;
        if (b[i] == '\r') {
            if (i + 1 == len)
                return -1;
            return b[i + 1] == '\n' ? (long)i : -2;
        }
    }
    return -1;
}

/* ieq - ASCII case-insensitive equality of n octets with the literal s. */
static bool ieq(const char *a, size_t n, const char *s)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)s[i];
        if ((x | 0x20) != (y | 0x20) || !is_tchar(x))
            return false;
    }
    return true;
}

/* parse_target - origin-form target into path/query; false if malformed. */
static bool parse_target(const char *t, size_t n, struct http_req *r)
{
    if (n == 0 || t[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_vchar((unsigned char)t[i]) || t[i] == '#')
            return false;
    const char *q = memchr(t, '?', n);
    r->path = t;
    r->path_len = q ? (size_t)(q - t) : n;
    r->query = q ? q + 1 : NULL;
    r->query_len = q ? n - r->path_len - 1 : 0;
    return true;
}

/* parse_request_line - "GET SP target SP HTTP/1.x" (n octets, no CRLF). */
static enum http_req_status parse_request_line(const char *l, size_t n, struct http_req *r)
{
    const char *sp1 = memchr(l, ' ', n);
    if (!sp1 || sp1 == l)
        return HTTP_REQ_BAD;
    for (const char *p = l; p < sp1; p++)
        if (!is_tchar((unsigned char)*p))
            return HTTP_REQ_BAD;
    const char *t = sp1 + 1, *end = l + n;
    const char *sp2 = memchr(t, ' ', (size_t)(end - t));
    if (!sp2)
        return HTTP_REQ_BAD;
    if (!parse_target(t, (size_t)(sp2 - t), r))
        return HTTP_REQ_BAD;
    const char *v = sp2 + 1;
    size_t vn = (size_t)(end - v);
    if (vn != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
        v[7] < '0' || v[7] > '9')
        return HTTP_REQ_BAD;
    if (v[5] != '1' || v[7] > '1')
        return HTTP_REQ_VERSION;
    r->minor = (unsigned)(v[7] - '0');
    if ((size_t)(sp1 - l) != 3 || memcmp(l, "GET", 3) != 0)
        return HTTP_REQ_METHOD;
    return HTTP_REQ_OK;
}

/* Header facts collected across the fields. */
struct hdr_state {
    unsigned hosts;
    bool body;
};

/* parse_header - one "name: value" field (n octets, no CRLF). */
static enum http_req_status parse_header(const char *l, size_t n, struct hdr_state *h)
{
    const char *colon = memchr(l, ':', n);
    if (!colon || colon == l)
        return HTTP_REQ_BAD;
    size_t nn = (size_t)(colon - l);
    for (size_t i = 0; i < nn; i++)
        if (!is_tchar((unsigned char)l[i]))
            return HTTP_REQ_BAD; /* also: a blank before ':' */
    const char *v = colon + 1, *end = l + n;
    for (const char *p = v; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (!is_vchar(c) && c != ' ' && c != '\t' && c < 0x80)
            return HTTP_REQ_BAD;
    }
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (ieq(l, nn, "Host"))
        h->hosts++;
    else if (ieq(l, nn, "Transfer-Encoding"))
        h->body = true;
    else if (ieq(l, nn, "Content-Length") && !(end - v == 1 && *v == '0'))
        h->body = true;
    return HTTP_REQ_OK;
}

enum http_req_status http_req_parse(const char *buf, size_t len, struct http_req *out)
{
    struct http_req r = {0};
    struct hdr_state h = {0};
    size_t off = 0;
    for (unsigned line = 0;; line++) {
        long e = line_end(buf, len, off);
        if (e == -2)
            return HTTP_REQ_BAD;
        if (e == -1)
            return len > HTTP_REQ_MAX ? HTTP_REQ_TOO_LARGE : HTTP_REQ_INCOMPLETE;
        size_t n = (size_t)e - off, next = (size_t)e + 2;
        if (next > HTTP_REQ_MAX)
            return HTTP_REQ_TOO_LARGE;
        enum http_req_status st;
        if (line == 0)
            st = parse_request_line(buf + off, n, &r);
        else if (n == 0)
            break;
        else if (line > HTTP_HEADERS_MAX)
            return HTTP_REQ_TOO_LARGE;
        else if (buf[off] == ' ' || buf[off] == '\t')
            st = HTTP_REQ_BAD; /* obs-fold */
        else
            st = parse_header(buf + off, n, &h);
        if (st != HTTP_REQ_OK)
            return st;
        r.nheaders = line;
        off = next;
    }
    if (h.body || h.hosts > 1 || (r.minor == 1 && h.hosts == 0))
        return HTTP_REQ_BAD;
    r.len = off + 2;
    *out = r;
    return HTTP_REQ_OK;
}
