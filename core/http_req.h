/* http_req.h - a tiny, strict HTTP/1.1 request parser for the metrics
 * endpoint: request line and header fields only (RFC 9112), GET only, no
 * body, bounded size and header count. Pure function over bytes: any
 * thread, no I/O, no allocation. */
#ifndef MXRING_HTTP_REQ_H
#define MXRING_HTTP_REQ_H

#include <stddef.h>

#define HTTP_REQ_MAX 4096   /* request line + header fields + the empty line */
#define HTTP_HEADERS_MAX 32 /* header fields */

/* Outcome of a parse: 0 = incomplete (read more), 1 = a complete request,
 * else the HTTP status code the responder should answer with and close. */
enum http_req_status {
    HTTP_REQ_INCOMPLETE = 0,
    HTTP_REQ_OK = 1,
    HTTP_REQ_BAD = 400,       /* malformed line, bare LF, missing/duplicate Host, a body */
    HTTP_REQ_METHOD = 405,    /* a method other than GET */
    HTTP_REQ_TOO_LARGE = 431, /* over HTTP_REQ_MAX octets or HTTP_HEADERS_MAX fields */
    HTTP_REQ_VERSION = 505,   /* not HTTP/1.0 or HTTP/1.1 */
};

/* A parsed request: spans into the caller's buffer. */
struct http_req {
    const char *path; /* origin-form path, without the query */
    size_t path_len;
    const char *query; /* after '?', NULL when there is none */
    size_t query_len;
    unsigned minor; /* HTTP/1.<minor> */
    unsigned nheaders;
    size_t len; /* octets of the request, up to and including the empty line */
};

/* http_req_parse - parse the len octets of buf (what has arrived so far).
 * Lines end in CRLF; a bare CR or LF is 400. The method must be "GET"
 * (case-sensitive; another valid token is 405); the target origin-form
 * ("/..." of visible ASCII); the version "HTTP/1.0" or "HTTP/1.1". Header
 * names are tokens followed directly by ':'; values are visible ASCII,
 * SP, HTAB or octets >= 0x80; no obs-fold. HTTP/1.1 needs exactly one
 * Host; Content-Length other than 0 and any Transfer-Encoding are 400.
 * An error found in the first len octets is reported even when the
 * request is incomplete; more than HTTP_REQ_MAX octets without the empty
 * line is 431. Fills *out only on HTTP_REQ_OK. */
enum http_req_status http_req_parse(const char *buf, size_t len, struct http_req *out);

#endif
