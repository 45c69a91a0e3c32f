/* uri.h - URI host extraction from a whole RFC 5322 message for the
 * SURBL/URIBL filter: walks the MIME structure, undoes quoted-printable and
 * base64 in text/plain and text/html parts and collects the hosts of
 * http(s):// URLs, href= targets, bare www. names and IPv4 literals.
 * Pure: no I/O, no allocation, no global state; any thread may call it. */
#ifndef MXRING_URI_H
#define MXRING_URI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define URI_HOST_MAX 253     /* RFC 1035 2.3.4: a name in text form, no trailing dot */
#define URI_LABEL_MAX 63     /* RFC 1035 2.3.4 */
#define URI_MIME_DEPTH 16    /* multipart nesting followed; deeper parts are scanned raw */
#define URI_BOUNDARY_MAX 128 /* RFC 2046 allows 70; longer ones are not followed */

/* One extracted host: lower-case, no userinfo, no port, no trailing dot,
 * %XX decoded; either a DNS name of at least two labels whose last label is
 * alphabetic (or xn--), or a dotted-quad IPv4 literal (is_ip). */
struct uri_host {
    char name[URI_HOST_MAX + 1]; /* NUL-terminated */
    uint16_t len;                /* strlen(name) */
    bool is_ip;                  /* name is "a.b.c.d" (decimal, canonical) */
};

/* Facts about one extraction, for the log; bits of *flags. */
enum uri_flag {
    URI_F_TRUNCATED = 1u << 0, /* more distinct hosts than max: scanning stopped */
    URI_F_DEEP = 1u << 1,      /* multipart nesting over URI_MIME_DEPTH */
    URI_F_BAD_ENC = 1u << 2,   /* broken base64 or quoted-printable was seen */
    URI_F_UNCLOSED = 1u << 3,  /* a multipart ended without its close delimiter */
};

/* uri_extract - scan the message msg[0..len) (header and body exactly as
 * received, CRLF or bare LF line ends) and store up to max distinct hosts
 * into out[] in first-seen order. Returns the number stored. The message
 * header itself is not scanned; the body is scanned as text/plain when it
 * has no MIME type. text/html parts also get their character references
 * (&#58; &#x2F; &amp; ...) undone. Never fails on malformed input: broken
 * encodings decode what makes sense. Time is linear in len (a line costs at
 * most URI_MIME_DEPTH boundary comparisons; deduplication costs O(max) per
 * URL found, so keep max small, e.g. <= 256); stack use is a few KiB and
 * nothing is allocated. flags (may be NULL) receives enum uri_flag bits. */
size_t uri_extract(const char *msg, size_t len, struct uri_host *out, size_t max, unsigned *flags);

/* uri_host_parse - validate and normalise one URL authority a[0..n)
 * ("user@Host.Example:80", "%77ww.example.com.", "1.2.3.4") into *h, the same
 * way uri_extract does. Returns false when it is not a usable host. */
bool uri_host_parse(const char *a, size_t n, struct uri_host *h);

#endif
