/* mxbench_tls.c - the BoringSSL client connections of mxbench (see
 * mxbench_tls.h): one SSL per session over two memory BIOs, the receive
 * side fed from io_uring completions, the send side drained into io_uring
 * sends. The only file of mxbench that includes BoringSSL headers. The
 * context is shared read-only; a connection stays on its thread. */
#include "mxbench_tls.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#ifndef OPENSSL_IS_BORINGSSL
#error "bench/mxbench_tls.c must be compiled against BoringSSL (-I/usr/include/android)"
#endif

#define MEM_EOF_RETRY (-1) /* empty read BIO: "retry", not end of file */
#define DESCRIBE_SEP " "

struct mxb_tls_ctx {
    SSL_CTX *ssl_ctx;
};

struct mxb_tls {
    SSL *ssl;
    BIO *rbio;       /* ciphertext from the server (owned by ssl) */
    BIO *wbio;       /* ciphertext to the server (owned by ssl) */
    const char *err; /* static reason text of the last failure */
};

/* first_reason - BoringSSL's reason for the oldest queued error, or
 * fallback; clears the thread's error queue. */
static const char *first_reason(const char *fallback)
{
    uint32_t e = ERR_get_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : fallback;
}

/* mxb_tls_ctx_new - the shared client context, see mxbench_tls.h. */
struct mxb_tls_ctx *mxb_tls_ctx_new(const char *cafile, char *err, size_t errlen)
{
    struct mxb_tls_ctx *x = calloc(1, sizeof *x);
    SSL_CTX *sc = x ? SSL_CTX_new(TLS_method()) : NULL;
    if (!sc) {
        free(x);
        snprintf(err, errlen, "out of memory creating a TLS context");
        return NULL;
    }
    /* Every connection a full handshake: nothing cached, no tickets. */
    SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(sc, SSL_OP_NO_TICKET);
    if (!SSL_CTX_set_min_proto_version(sc, TLS1_2_VERSION) ||
        !SSL_CTX_set_max_proto_version(sc, TLS1_3_VERSION)) {
        snprintf(err, errlen, "cannot set TLS versions (%s)", first_reason("unknown"));
        SSL_CTX_free(sc);
        free(x);
        return NULL;
    }
    if (cafile) {
        if (!SSL_CTX_load_verify_locations(sc, cafile, NULL)) {
            snprintf(err, errlen, "--cafile %s: cannot read PEM CA certificates (%s)", cafile,
                     first_reason("unknown"));
            SSL_CTX_free(sc);
            free(x);
            return NULL;
        }
        SSL_CTX_set_verify(sc, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(sc, SSL_VERIFY_NONE, NULL);
    }
    x->ssl_ctx = sc;
    return x;
}

/* mxb_tls_ctx_free - free the context. */
void mxb_tls_ctx_free(struct mxb_tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

/* mxb_tls_new - a client connection over two empty memory BIOs. */
struct mxb_tls *mxb_tls_new(struct mxb_tls_ctx *ctx)
{
    struct mxb_tls *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ssl = SSL_new(ctx->ssl_ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rbio || !c->wbio) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        SSL_free(c->ssl);
        free(c);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_mem_eof_return(c->rbio, MEM_EOF_RETRY);
    SSL_set_bio(c->ssl, c->rbio, c->wbio); /* ssl owns both now */
    SSL_set_connect_state(c->ssl);
    return c;
}

/* mxb_tls_free - free the connection and its BIOs. */
void mxb_tls_free(struct mxb_tls *c)
{
    if (!c)
        return;
    SSL_free(c->ssl);
    free(c);
}

/* mxb_tls_feed - append received ciphertext to the read BIO. */
bool mxb_tls_feed(struct mxb_tls *c, const void *cipher, size_t len)
{
    const char *p = cipher;
    while (len > 0) {
        int n = len > INT_MAX ? INT_MAX : (int)len;
        if (BIO_write(c->rbio, p, n) != n) {
            c->err = first_reason("out of memory");
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* fail - record why SSL call result r failed. */
static void fail(struct mxb_tls *c, int r)
{
    int e = SSL_get_error(c->ssl, r);
    c->err = first_reason(e == SSL_ERROR_ZERO_RETURN ? "server closed the TLS session"
                                                     : "protocol error");
}

/* mxb_tls_handshake - advance the client handshake. */
int mxb_tls_handshake(struct mxb_tls *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1)
        return 1;
    if (SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_READ)
        return 0;
    fail(c, r);
    return -1;
}

/* mxb_tls_read - decrypt application data. */
long mxb_tls_read(struct mxb_tls *c, void *plain, size_t cap)
{
    ERR_clear_error();
    int r = SSL_read(c->ssl, plain, cap > INT_MAX ? INT_MAX : (int)cap);
    if (r > 0)
        return r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        return MXB_TLS_AGAIN;
    if (e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return MXB_TLS_CLOSED;
    }
    fail(c, r);
    return MXB_TLS_ERROR;
}

/* mxb_tls_write - encrypt all of plain into the write BIO. */
bool mxb_tls_write(struct mxb_tls *c, const void *plain, size_t len)
{
    const char *p = plain;
    while (len > 0) {
        int n = len > INT_MAX ? INT_MAX : (int)len;
        ERR_clear_error();
        int r = SSL_write(c->ssl, p, n);
        if (r != n) {
            fail(c, r);
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* mxb_tls_take - copy pending ciphertext out of the write BIO. */
size_t mxb_tls_take(struct mxb_tls *c, char *out, size_t cap)
{
    if (BIO_pending(c->wbio) == 0)
        return 0;
    int n = BIO_read(c->wbio, out, cap > INT_MAX ? INT_MAX : (int)cap);
    return n > 0 ? (size_t)n : 0;
}

/* mxb_tls_describe - negotiated version and cipher. */
void mxb_tls_describe(const struct mxb_tls *c, char *out, size_t cap)
{
    const SSL_CIPHER *ci = SSL_is_init_finished(c->ssl) ? SSL_get_current_cipher(c->ssl) : NULL;
    if (!ci) {
        snprintf(out, cap, "%s", "");
        return;
    }
    snprintf(out, cap, "%s" DESCRIBE_SEP "%s", SSL_get_version(c->ssl), SSL_CIPHER_get_name(ci));
}

/* mxb_tls_error - the last failure's reason. */
const char *mxb_tls_error(const struct mxb_tls *c)
{
    return c->err ? c->err : "";
}
