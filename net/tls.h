/* tls.h - server-side and client-side TLS over in-memory buffers (BoringSSL underneath, but
 * no BoringSSL type leaks out of here: include this from any module). No
 * socket I/O at all: the io_uring worker feeds received ciphertext in with
 * tls_feed() and moves ciphertext to send out with tls_take_out().
 *
 * Threads: a tls_ctx is immutable after tls_ctx_load() and may be used by any
 * thread (tls_conn_new from several workers at once is fine). A tls_conn
 * belongs to one thread at a time.
 *
 * Lifetime: every tls_conn holds its own reference to the underlying
 * certificate context, so tls_ctx_free() on a context that was swapped out
 * by a reload (SIGHUP) never invalidates connections created from it. */
#ifndef MXRING_TLS_H
#define MXRING_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct sb;

/* Protocol versions for tls_ctx_load()'s min_version (wire values). */
#define TLS_VERSION_1_2 0x0303
#define TLS_VERSION_1_3 0x0304

/* tls_read() results other than a byte count. */
#define TLS_READ_AGAIN 0     /* need more ciphertext (tls_feed) */
#define TLS_READ_ERROR (-1)  /* protocol error: tls_error() says why */
#define TLS_READ_CLOSED (-2) /* the peer sent close_notify (clean close) */

struct tls_ctx;
struct tls_conn;

/* tls_ctx_load - read a PEM certificate (chain allowed: leaf first, then
 * intermediates) and its PEM private key, check that they match, and allow
 * TLS versions min_version (TLS_VERSION_1_2 or TLS_VERSION_1_3) to 1.3.
 * ciphers is the TLS 1.2 cipher list (OpenSSL syntax, the tls_ciphers key);
 * every name in it must be known and at least one suite must remain. The
 * server's order wins over the client's. TLS 1.3 suites are BoringSSL's
 * fixed AEAD set. NULL on failure with one line in err, e.g.
 * "tls_key /etc/k.pem: private key does not match the certificate". */
struct tls_ctx *tls_ctx_load(const char *cert_pem, const char *key_pem, int min_version,
                             const char *ciphers, char *err, size_t errlen);
/* tls_ctx_add_sni - serve cert_pem/key_pem (checked like tls_ctx_load's,
 * same policy) to clients asking for host name by SNI (name "*.domain":
 * any one label under domain; an exact name wins over a wildcard). One
 * ECDSA and one RSA certificate per name: the handshake picks ECDSA when
 * the client can take it, else RSA. Clients without SNI or naming an
 * unlisted host get the default certificate. Only before the context is
 * shared (while loading). 0, or -1 with one line in err. */
int tls_ctx_add_sni(struct tls_ctx *ctx, const char *name, const char *cert_pem,
                    const char *key_pem, char *err, size_t errlen);
/* tls_ctx_free - drop the loader's reference (NULL is fine). Connections
 * made from ctx keep working; the context is freed with the last of them. */
void tls_ctx_free(struct tls_ctx *ctx);

/* Client side (onward delivery). tls_client_ctx_new - a client context that
 * trusts the PEM certificates of ca_file (NULL = the system bundle
 * /etc/ssl/certs/ca-certificates.crt when verifying), TLS 1.2 to 1.3.
 * A context is shared by any number of client connections; it only checks
 * certificates for connections made with verify = true. NULL with err. */
struct tls_ctx *tls_client_ctx_new(const char *ca_file, char *err, size_t errlen);
/* tls_client_conn_new - a client connection in the handshake state (call
 * tls_handshake() once to queue the ClientHello). host is sent as SNI when
 * it is a name; with verify the peer's chain must lead to the context's CA
 * file and its certificate must name host (DNS name or IP address), else
 * the handshake fails and tls_error() says why ("certificate verify
 * failed: ..."). NULL on ENOMEM. */
struct tls_conn *tls_client_conn_new(struct tls_ctx *ctx, const char *host, bool verify);

/* tls_conn_new - a server-side connection in the handshake state, with
 * empty buffers; NULL on ENOMEM. */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx);
/* tls_conn_free - release c and wipe its buffers (NULL is fine). */
void tls_conn_free(struct tls_conn *c);

/* tls_feed - append len bytes of ciphertext received from the peer (copied).
 * 0 on success, -1 on ENOMEM or len overflow (c unchanged). */
int tls_feed(struct tls_conn *c, const void *cipher, size_t len);

/* tls_handshake - advance the handshake over the ciphertext fed so far:
 * 1 done, 0 needs more input, -1 failed (tls_error() says why). Whatever
 * the result, send tls_pending_out() bytes afterwards: a failure usually
 * queues an alert for the peer, and 0 may have queued a handshake flight.
 * Ciphertext fed beyond the handshake stays buffered for tls_read(). */
int tls_handshake(struct tls_conn *c);

/* tls_read - decrypt up to cap bytes of application data into plain:
 * > 0 bytes, TLS_READ_AGAIN, TLS_READ_ERROR or TLS_READ_CLOSED. Call it
 * until TLS_READ_AGAIN after each tls_feed: records may already be buffered.
 * It may queue output (post-handshake messages): check tls_pending_out(). */
ssize_t tls_read(struct tls_conn *c, void *plain, size_t cap);

/* tls_write - encrypt len bytes of application data into the output buffer
 * (never partial: memory never blocks). 0 on success, -1 on failure (only
 * before the handshake is done, after a fatal error, or on ENOMEM). */
int tls_write(struct tls_conn *c, const void *plain, size_t len);

/* tls_close_notify - queue a close_notify alert (clean TLS shutdown) to be
 * sent with tls_take_out(). 0 on success, -1 when not possible. */
int tls_close_notify(struct tls_conn *c);

/* tls_pending_out - ciphertext bytes waiting to be sent. */
size_t tls_pending_out(const struct tls_conn *c);
/* tls_take_out - append all pending ciphertext to out and empty c's output
 * buffer; returns the bytes moved (0 if none or on ENOMEM, then nothing is
 * lost: the bytes stay pending). When out is empty its storage is swapped
 * for c's (no copy). */
size_t tls_take_out(struct tls_conn *c, struct sb *out);

/* tls_done - has the handshake completed? */
bool tls_done(const struct tls_conn *c);
/* tls_error - why the last tls_handshake/tls_read/tls_write failed, as one
 * line (e.g. "handshake failed: UNSUPPORTED_PROTOCOL"); "" when none. */
const char *tls_error(const struct tls_conn *c);
/* tls_version - negotiated version ("TLSv1.3"), "" before the handshake. */
const char *tls_version(const struct tls_conn *c);
/* The negotiated versions the metrics count apart. */
enum tls_ver { TLS_VER_12 = 0, TLS_VER_13, TLS_VER_OTHER, TLS_VER_COUNT };
/* tls_version_id - the negotiated version as an enum tls_ver
 * (TLS_VER_OTHER before the handshake). */
unsigned tls_version_id(const struct tls_conn *c);
/* tls_version_label - "TLSv1.2", "TLSv1.3", "other" (any thread). */
const char *tls_version_label(unsigned id);
/* tls_cipher - negotiated cipher suite name (OpenSSL style, as Postfix logs
 * it, e.g. "TLS_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"), ""
 * before the handshake. */
const char *tls_cipher(const struct tls_conn *c);

#endif
