/* mxbench_tls.h - the TLS client side of mxbench over in-memory buffers
 * (BoringSSL underneath; no BoringSSL type leaks out of here). No socket
 * I/O: the io_uring loop feeds received ciphertext in with mxb_tls_feed()
 * and copies ciphertext to send out with mxb_tls_take().
 *
 * Threads: a context is read-only after mxb_tls_ctx_new() and shared by
 * every thread; a connection belongs to the one thread that made it. */
#ifndef MXBENCH_TLS_H
#define MXBENCH_TLS_H

#include <stdbool.h>
#include <stddef.h>

/* mxb_tls_read() results other than a byte count. */
#define MXB_TLS_AGAIN 0     /* needs more ciphertext */
#define MXB_TLS_ERROR (-1)  /* protocol error or the peer's alert */
#define MXB_TLS_CLOSED (-2) /* the peer sent close_notify */

struct mxb_tls_ctx;
struct mxb_tls;

/* mxb_tls_ctx_new - a client context: TLS 1.2 to 1.3, no session cache and
 * no tickets (every connection is a full handshake). cafile NULL: accept
 * any certificate (a load generator); else verify the server's chain
 * against the PEM CA certificates in cafile. NULL with one line in err on
 * failure. */
struct mxb_tls_ctx *mxb_tls_ctx_new(const char *cafile, char *err, size_t errlen);

/* mxb_tls_ctx_free - free the context (NULL is fine); no connection made
 * from it may remain. */
void mxb_tls_ctx_free(struct mxb_tls_ctx *ctx);

/* mxb_tls_new - a client connection in the connect state with empty
 * buffers; NULL on ENOMEM. */
struct mxb_tls *mxb_tls_new(struct mxb_tls_ctx *ctx);

/* mxb_tls_free - release c (NULL is fine). */
void mxb_tls_free(struct mxb_tls *c);

/* mxb_tls_feed - append len bytes of ciphertext received from the server
 * (copied). False on ENOMEM. */
bool mxb_tls_feed(struct mxb_tls *c, const void *cipher, size_t len);

/* mxb_tls_handshake - advance the handshake over what was fed: 1 done,
 * 0 needs more input, -1 failed. Whatever the result, send what
 * mxb_tls_take() hands out afterwards (the first call queues ClientHello). */
int mxb_tls_handshake(struct mxb_tls *c);

/* mxb_tls_read - decrypt up to cap bytes into plain: > 0 bytes, or
 * MXB_TLS_AGAIN / MXB_TLS_ERROR / MXB_TLS_CLOSED. Call until MXB_TLS_AGAIN
 * after each feed: several records may be buffered. */
long mxb_tls_read(struct mxb_tls *c, void *plain, size_t cap);

/* mxb_tls_write - encrypt all len bytes into the output buffer (after the
 * handshake). False on failure. */
bool mxb_tls_write(struct mxb_tls *c, const void *plain, size_t len);

/* mxb_tls_take - move up to cap bytes of pending ciphertext into out;
 * returns how many (0: nothing pending). */
size_t mxb_tls_take(struct mxb_tls *c, char *out, size_t cap);

/* mxb_tls_describe - "<version> <cipher>" of a finished handshake into out
 * (cap bytes); empty before. */
void mxb_tls_describe(const struct mxb_tls *c, char *out, size_t cap);

/* mxb_tls_error - why the last call on c failed (BoringSSL's reason, e.g.
 * "CERTIFICATE_VERIFY_FAILED"), or "" when nothing failed. */
const char *mxb_tls_error(const struct mxb_tls *c);

#endif
