/* clamd.h - the clamd INSTREAM protocol without I/O: a cursor that lays a
 * message out as the byte stream "zINSTREAM\0", chunks each prefixed by a
 * 4-octet big-endian length, and a zero-length terminator, as iovecs that
 * point into the caller's message (no copy; the whole message, or a window
 * of it supplied chunk by chunk), resumable after short writes;
 * and the parser of clamd's one-line reply. Pure; a cursor belongs to one
 * thread at a time. */
#ifndef MXRING_CLAMD_H
#define MXRING_CLAMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define CLAMD_CMD_INSTREAM "zINSTREAM"             /* the 'z' form: the NUL is sent too */
#define CLAMD_CMD_LEN (sizeof(CLAMD_CMD_INSTREAM)) /* includes the NUL */
#define CLAMD_LEN_PREFIX 4
#define CLAMD_CHUNK_DEFAULT (64u * 1024u)
#define CLAMD_CURSOR_CHUNKS 16 /* chunks one clamd_stream_fill() may lay out */
#define CLAMD_NAME_MAX 255     /* longest virus name kept (longer is cut) */
#define CLAMD_REPLY_MAX 4096   /* a reply longer than this without an end is malformed */

/* A message being streamed; fill with clamd_stream_init(). The cursor reads
 * message octets only through its window: the whole message, or (for a
 * message read piece by piece) the chunks the caller supplied last with
 * clamd_stream_window(). */
struct clamd_stream {
    const uint8_t *win; /* message octets [win_off, win_off + win_len) */
    size_t win_off, win_len;
    size_t len;
    size_t chunk;                                       /* octets per chunk (> 0) */
    uint64_t pos;                                       /* octets of the stream already sent */
    uint64_t total;                                     /* octets of the whole stream */
    uint8_t hdr[CLAMD_CURSOR_CHUNKS][CLAMD_LEN_PREFIX]; /* length prefixes in flight */
    uint8_t end[CLAMD_LEN_PREFIX];                      /* the terminator (zeros) */
};

/* clamd_stream_init - stream a len-octet message in chunks of chunk octets
 * (0: CLAMD_CHUNK_DEFAULT; keep it within clamd's StreamMaxLength). msg is
 * the whole message, which must then stay in place until the stream is
 * done; or NULL: the caller supplies the message chunk by chunk (see
 * clamd_stream_need). */
void clamd_stream_init(struct clamd_stream *cs, const void *msg, size_t len, size_t chunk);

/* clamd_stream_need - the message octets the next fill needs and the window
 * lacks: true with *off and *n set to the next chunk (*n octets at offset
 * *off; supply at least that with clamd_stream_window); false when fill can
 * go on with what it has (or nothing is left to send). */
bool clamd_stream_need(const struct clamd_stream *cs, size_t *off, size_t *n);

/* clamd_stream_window - message octets [off, off + n) are at p (whole
 * chunks: off a multiple of the chunk size, n one or more chunks or up to
 * the end) until the next call or the end of the stream; the octets the
 * window held before are no longer used. */
void clamd_stream_window(struct clamd_stream *cs, const void *p, size_t off, size_t n);

/* clamd_stream_fill - describe the next unsent octets (at most
 * CLAMD_CURSOR_CHUNKS chunks, and no chunk outside the window) in
 * iov[0..max); returns the count, 0 when the stream is done, max is 0 or
 * the next chunk is not in the window (clamd_stream_need says which). The
 * iovecs point into cs and the window: they stay valid until the next
 * fill/advance/window on cs. */
size_t clamd_stream_fill(struct clamd_stream *cs, struct iovec *iov, size_t max);

/* clamd_stream_advance - n more octets were sent (n <= what the last fill
 * described). */
void clamd_stream_advance(struct clamd_stream *cs, size_t n);

/* clamd_stream_done - the whole stream, terminator included, was sent. */
bool clamd_stream_done(const struct clamd_stream *cs);

/* clamd_stream_size - octets the stream of a len-octet message in chunks
 * of chunk octets (0: default) takes on the wire. */
uint64_t clamd_stream_size(size_t len, size_t chunk);

enum clamd_verdict {
    CLAMD_CLEAN = 0,  /* "stream: OK" */
    CLAMD_FOUND,      /* "stream: <name> FOUND": name is set */
    CLAMD_SIZE_LIMIT, /* "INSTREAM size limit exceeded. ERROR" */
    CLAMD_ERROR,      /* any other "... ERROR" (text is set) */
    CLAMD_MALFORMED,  /* a complete reply of no known form, or too long */
    CLAMD_INCOMPLETE, /* no terminator yet: read more */
};

/* A parsed reply. */
struct clamd_reply {
    enum clamd_verdict verdict;
    size_t used;                   /* octets consumed, terminator included */
    char name[CLAMD_NAME_MAX + 1]; /* FOUND: the signature name; ERROR: the text */
};

/* clamd_reply_parse - parse the reply at buf[0..len). It ends at the first
 * NUL or LF; with eof set (the peer closed) the end of buf ends it too.
 * A "<n>: " session prefix (IDSESSION) is skipped; "\r" and spaces before
 * the end are ignored. eof with len 0 is CLAMD_MALFORMED. Returns r->verdict. */
enum clamd_verdict clamd_reply_parse(const char *buf, size_t len, bool eof, struct clamd_reply *r);

/* clamd_verdict_name - a short lower-case name of a verdict for the log. */
const char *clamd_verdict_name(enum clamd_verdict v);

#endif
