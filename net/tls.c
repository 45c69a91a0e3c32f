/* tls.c - the BoringSSL wrapper behind tls.h: certificate contexts and
 * server and client connections whose only transport is a pair of in-memory buffers
 * (a tiny custom BIO over struct sb), so idle connections hold no buffer.
 * The only file of the server that includes BoringSSL headers. Contexts are
 * shared by all threads; a connection belongs to one thread at a time. */
#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <strings.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <arpa/inet.h>

#include "util.h"

#ifndef OPENSSL_IS_BORINGSSL
#error "net/tls.c must be compiled against BoringSSL (-I/usr/include/android)"
#endif

#define TLS_ERR_MAX 160      /* one tls_error() line, bytes */
#define TLS_IO_MAX (1 << 30) /* largest single SSL_read/SSL_write */
#define TLS_SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

/* The key kinds an SNI name may have one certificate of each. */
enum tls_kind { TLS_KIND_ECDSA = 0, TLS_KIND_RSA, TLS_KINDS };

/* One SNI name (tls_certs): a context per key kind, either may be NULL. */
struct tls_sni {
    char *name; /* lower case; "*.domain" matches one label */
    SSL_CTX *ctx[TLS_KINDS];
};

/* A loaded context: the default certificate, the SNI names, the policy
 * they all share. Immutable once loaded; shared by every thread; freed
 * with its last holder (the loader and each connection: the SNI callback
 * reads the table during a handshake). */
struct tls_ctx {
    SSL_CTX *ssl_ctx; /* the default (tls_cert/tls_key) */
    struct tls_sni *sni;
    size_t nsni;
    int min_version;
    char *ciphers;
    atomic_uint refs;
};

struct tls_conn {
    SSL *ssl;
    struct tls_ctx *ctx; /* a reference (for the SNI callback) */
    struct sb in;        /* ciphertext received, not yet consumed */
    size_t in_off;       /* consumed prefix of in */
    struct sb out;       /* ciphertext to send */
    char *err;           /* last failure, allocated only on failure */
    bool verify;         /* client: the peer certificate was checked */
};

static BIO_METHOD *tls_bio_method;
static pthread_once_t tls_bio_once = PTHREAD_ONCE_INIT;

/* tls_bio_write - BIO write: append ciphertext to the connection's output. */
static int tls_bio_write(BIO *b, const char *p, int n)
{
    struct tls_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (n <= 0)
        return 0;
    return sb_append(&c->out, p, (size_t)n) ? n : -1;
}

/* tls_bio_read - BIO read: hand out fed ciphertext, "retry" when empty. */
static int tls_bio_read(BIO *b, char *p, int n)
{
    struct tls_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    size_t avail = c->in.len - c->in_off;
    if (n <= 0)
        return 0;
    if (avail == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    size_t take = avail < (size_t)n ? avail : (size_t)n;
    memcpy(p, c->in.data + c->in_off, take);
    c->in_off += take;
    return (int)take;
}

/* tls_bio_ctrl - BIO control: flush is a no-op, pending sizes are known. */
static long tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num, (void)ptr;
    struct tls_conn *c = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_PENDING: return (long)(c->in.len - c->in_off);
    case BIO_CTRL_WPENDING: return (long)c->out.len;
    default: return 0;
    }
}

/* tls_bio_init - create the shared BIO method once per process. */
static void tls_bio_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOURCE_SINK, "mxring-sb");
    if (m && BIO_meth_set_write(m, tls_bio_write) && BIO_meth_set_read(m, tls_bio_read) &&
        BIO_meth_set_ctrl(m, tls_bio_ctrl))
        tls_bio_method = m;
    else
        BIO_meth_free(m);
}

/* tls_reason - BoringSSL's reason for the oldest queued error (the root
 * cause), or fallback; clears the thread's error queue. */
static const char *tls_reason(const char *fallback)
{
    uint32_t e = ERR_get_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : fallback;
}

/* tls_no_passphrase - PEM password callback: encrypted keys are refused
 * rather than prompting on the terminal. */
static int tls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0;
}

/* tls_ctx_keys - load the chain and key into sc; false with err set. */
static bool tls_ctx_keys(SSL_CTX *sc, const char *cert, const char *key, char *err, size_t errlen)
{
    if (access(cert, R_OK) != 0) {
        snprintf(err, errlen, "tls_cert %s: %s", cert, strerror(errno));
        return false;
    }
    if (access(key, R_OK) != 0) {
        snprintf(err, errlen, "tls_key %s: %s", key, strerror(errno));
        return false;
    }
    if (!SSL_CTX_use_certificate_chain_file(sc, cert)) {
        snprintf(err, errlen, "tls_cert %s: cannot read a PEM certificate chain (%s)", cert,
                 tls_reason("unknown error"));
        return false;
    }
    if (!SSL_CTX_use_PrivateKey_file(sc, key, SSL_FILETYPE_PEM)) {
        uint32_t e = ERR_peek_error();
        if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
            ERR_clear_error();
            snprintf(err, errlen, "tls_key %s: private key does not match the certificate in %s",
                     key, cert);
        } else {
            snprintf(err, errlen, "tls_key %s: cannot read a PEM private key (%s)", key,
                     tls_reason("unknown error"));
        }
        return false;
    }
    if (!SSL_CTX_check_private_key(sc)) {
        ERR_clear_error();
        snprintf(err, errlen, "tls_key %s: private key does not match the certificate in %s", key,
                 cert);
        return false;
    }
    return true;
}

/* tls_ctx_policy - protocol versions and the TLS 1.2 cipher list, in the
 * server's order; false with err set. */
static bool tls_ctx_policy(SSL_CTX *sc, int min_version, const char *ciphers, char *err,
                           size_t errlen)
{
    if (!SSL_CTX_set_min_proto_version(sc, (uint16_t)min_version) ||
        !SSL_CTX_set_max_proto_version(sc, TLS_VERSION_1_3)) {
        snprintf(err, errlen, "tls_min_version: not supported (%s)", tls_reason("unknown"));
        return false;
    }
    if (!ciphers || !SSL_CTX_set_strict_cipher_list(sc, ciphers)) {
        snprintf(err, errlen, "tls_ciphers %.80s: not a usable cipher list (%s)",
                 ciphers ? ciphers : "(none)", tls_reason("no cipher list"));
        return false;
    }
    SSL_CTX_set_options(sc, SSL_OP_CIPHER_SERVER_PREFERENCE);
    return true;
}

/* tls_ssl_ctx - a BoringSSL context with the policy and one certificate
 * and key; NULL with err set. */
static SSL_CTX *tls_ssl_ctx(const char *cert, const char *key, int min_version, const char *ciphers,
                            char *err, size_t errlen)
{
    SSL_CTX *sc = tls_bio_method ? SSL_CTX_new(TLS_method()) : NULL;
    if (!sc) {
        ERR_clear_error();
        snprintf(err, errlen, "tls: out of memory creating a TLS context");
        return NULL;
    }
    SSL_CTX_set_default_passwd_cb(sc, tls_no_passphrase);
    /* Resumption by session ticket only: no server-side session cache. */
    SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
    if (tls_ctx_policy(sc, min_version, ciphers, err, errlen) &&
        tls_ctx_keys(sc, cert, key, err, errlen))
        return sc;
    SSL_CTX_free(sc);
    return NULL;
}

static enum ssl_select_cert_result_t tls_select_cert(const SSL_CLIENT_HELLO *ch);

/* tls_ctx_load - load and check a certificate chain and key into a new context. */
struct tls_ctx *tls_ctx_load(const char *cert_pem, const char *key_pem, int min_version,
                             const char *ciphers, char *err, size_t errlen)
{
    if (min_version != TLS_VERSION_1_2 && min_version != TLS_VERSION_1_3) {
        snprintf(err, errlen, "tls_min_version: must be TLS 1.2 or TLS 1.3");
        return NULL;
    }
    pthread_once(&tls_bio_once, tls_bio_init);
    struct tls_ctx *t = calloc(1, sizeof(*t));
    if (t)
        t->ciphers = strdup(ciphers ? ciphers : "");
    if (!t || !t->ciphers) {
        free(t);
        snprintf(err, errlen, "tls: out of memory creating a TLS context");
        return NULL;
    }
    t->min_version = min_version;
    atomic_init(&t->refs, 1);
    t->ssl_ctx = tls_ssl_ctx(cert_pem, key_pem, min_version, ciphers, err, errlen);
    if (!t->ssl_ctx) {
        free(t->ciphers);
        free(t);
        return NULL;
    }
    SSL_CTX_set_select_certificate_cb(t->ssl_ctx, tls_select_cert);
    return t;
}

/* tls_key_kind - ECDSA or RSA (anything else counts as RSA's slot). */
static enum tls_kind tls_key_kind(SSL_CTX *sc)
{
    EVP_PKEY *k = SSL_CTX_get0_privatekey(sc);
    return k && EVP_PKEY_id(k) == EVP_PKEY_EC ? TLS_KIND_ECDSA : TLS_KIND_RSA;
}

/* tls_sni_slot - the entry of name, added when missing; NULL on ENOMEM. */
static struct tls_sni *tls_sni_slot(struct tls_ctx *ctx, const char *name)
{
    for (size_t i = 0; i < ctx->nsni; i++)
        if (strcasecmp(ctx->sni[i].name, name) == 0)
            return &ctx->sni[i];
    struct tls_sni *n = realloc(ctx->sni, (ctx->nsni + 1) * sizeof(*n));
    if (!n)
        return NULL;
    ctx->sni = n;
    n += ctx->nsni;
    memset(n, 0, sizeof(*n));
    if (!(n->name = strdup(name)))
        return NULL;
    ctx->nsni++;
    return n;
}

/* tls_ctx_add_sni - see tls.h. */
int tls_ctx_add_sni(struct tls_ctx *ctx, const char *name, const char *cert_pem,
                    const char *key_pem, char *err, size_t errlen)
{
    char why[512];
    SSL_CTX *sc = tls_ssl_ctx(cert_pem, key_pem, ctx->min_version, ctx->ciphers, why, sizeof(why));
    if (!sc) {
        snprintf(err, errlen, "tls_certs %s: %s", name, why);
        return -1;
    }
    enum tls_kind kind = tls_key_kind(sc);
    struct tls_sni *e = tls_sni_slot(ctx, name);
    if (!e || e->ctx[kind]) {
        SSL_CTX_free(sc);
        if (e)
            snprintf(err, errlen, "tls_certs %s: a second %s certificate for this name (%s)", name,
                     kind == TLS_KIND_ECDSA ? "ECDSA" : "RSA", cert_pem);
        else
            snprintf(err, errlen, "tls_certs: out of memory");
        return -1;
    }
    e->ctx[kind] = sc;
    return 0;
}

/* tls_ctx_unref - drop one holder; the last frees every context. */
static void tls_ctx_unref(struct tls_ctx *ctx)
{
    if (!ctx || atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < ctx->nsni; i++) {
        for (int k = 0; k < TLS_KINDS; k++)
            SSL_CTX_free(ctx->sni[i].ctx[k]);
        free(ctx->sni[i].name);
    }
    free(ctx->sni);
    SSL_CTX_free(ctx->ssl_ctx); /* connections still hold their references */
    free(ctx->ciphers);
    free(ctx);
}

/* ---- SNI: choosing the certificate ---------------------------------------- */

/* tls_u16_has - does the list of 16-bit values p[0..n) (big endian) hold
 * one of want[0..nw)? */
static bool tls_u16_has(const uint8_t *p, size_t n, const uint16_t *want, size_t nw)
{
    for (size_t i = 0; i + 1 < n; i += 2) {
        uint16_t v = (uint16_t)(p[i] << 8 | p[i + 1]);
        for (size_t j = 0; j < nw; j++)
            if (v == want[j])
                return true;
    }
    return false;
}

/* tls_client_ecdsa - can the client of ch take an ECDSA certificate: it
 * lists an ECDSA signature scheme, and offers TLS 1.3 or an ECDHE-ECDSA
 * TLS 1.2 suite? */
static bool tls_client_ecdsa(const SSL_CLIENT_HELLO *ch)
{
    static const uint16_t ecdsa_sigs[] = {0x0403, 0x0503, 0x0603};
    static const uint16_t ecdsa_suites[] = {0xC02B, 0xC02C, 0xCCA9, 0x1301, 0x1302, 0x1303};
    const uint8_t *p;
    size_t n;
    if (!SSL_early_callback_ctx_extension_get(ch, TLSEXT_TYPE_signature_algorithms, &p, &n) ||
        n < 2 || !tls_u16_has(p + 2, n - 2, ecdsa_sigs, MX_ARRAY_LEN(ecdsa_sigs)))
        return false;
    return tls_u16_has(ch->cipher_suites, ch->cipher_suites_len, ecdsa_suites,
                       MX_ARRAY_LEN(ecdsa_suites));
}

/* tls_sni_find - the entry for host name: exact (any case), then "*."
 * and the name without its first label. */
static const struct tls_sni *tls_sni_find(const struct tls_ctx *ctx, const char *name)
{
    const char *dot = strchr(name, '.');
    for (size_t i = 0; i < ctx->nsni; i++)
        if (strcasecmp(ctx->sni[i].name, name) == 0)
            return &ctx->sni[i];
    for (size_t i = 0; dot && i < ctx->nsni; i++)
        if (strncmp(ctx->sni[i].name, "*.", 2) == 0 && strcasecmp(ctx->sni[i].name + 1, dot) == 0)
            return &ctx->sni[i];
    return NULL;
}

/* tls_select_cert - BoringSSL's early ClientHello callback: switch to the
 * certificate of the SNI name (ECDSA when the client takes it, else RSA);
 * no name or an unknown one keeps the default. */
static enum ssl_select_cert_result_t tls_select_cert(const SSL_CLIENT_HELLO *ch)
{
    struct tls_conn *c = SSL_get_app_data(ch->ssl);
    const char *name = SSL_get_servername(ch->ssl, TLSEXT_NAMETYPE_host_name);
    const struct tls_sni *e = c && name ? tls_sni_find(c->ctx, name) : NULL;
    if (!e)
        return ssl_select_cert_success;
    SSL_CTX *pick = e->ctx[tls_client_ecdsa(ch) ? TLS_KIND_ECDSA : TLS_KIND_RSA];
    if (!pick)
        pick = e->ctx[TLS_KIND_ECDSA] ? e->ctx[TLS_KIND_ECDSA] : e->ctx[TLS_KIND_RSA];
    SSL_set_SSL_CTX(ch->ssl, pick);
    return ssl_select_cert_success;
}

static struct tls_conn *tls_conn_alloc(struct tls_ctx *ctx);

/* tls_client_ctx_new - a client context trusting ca_file (or the system bundle). */
struct tls_ctx *tls_client_ctx_new(const char *ca_file, char *err, size_t errlen)
{
    pthread_once(&tls_bio_once, tls_bio_init);
    struct tls_ctx *t = calloc(1, sizeof(*t));
    SSL_CTX *sc = t && tls_bio_method ? SSL_CTX_new(TLS_method()) : NULL;
    if (!sc) {
        free(t);
        ERR_clear_error();
        snprintf(err, errlen, "tls: out of memory creating a TLS client context");
        return NULL;
    }
    atomic_init(&t->refs, 1);
    const char *ca = ca_file ? ca_file : TLS_SYSTEM_CA;
    SSL_CTX_set_min_proto_version(sc, TLS_VERSION_1_2);
    SSL_CTX_set_max_proto_version(sc, TLS_VERSION_1_3);
    if (access(ca, R_OK) == 0 && SSL_CTX_load_verify_locations(sc, ca, NULL) == 1) {
        t->ssl_ctx = sc;
        return t;
    }
    if (!ca_file) { /* no system bundle: only verify mode will fail */
        ERR_clear_error();
        t->ssl_ctx = sc;
        return t;
    }
    snprintf(err, errlen, "relay_ca_file %s: %s", ca,
             access(ca, R_OK) != 0 ? strerror(errno) : tls_reason("cannot read PEM certificates"));
    SSL_CTX_free(sc);
    free(t);
    return NULL;
}

/* tls_client_check - set SNI and, with verify, the chain and name checks. */
static bool tls_client_check(SSL *ssl, const char *host, bool verify)
{
    unsigned char ip[16];
    bool is_ip = host && (inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1);
    if (host && !is_ip && !SSL_set_tlsext_host_name(ssl, host))
        return false;
    if (!verify) {
        SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
        return true;
    }
    SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    if (!host)
        return true;
    return is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host) == 1
                 : X509_VERIFY_PARAM_set1_host(vp, host, strlen(host)) == 1;
}

/* tls_client_conn_new - a client connection to host (see tls.h). */
struct tls_conn *tls_client_conn_new(struct tls_ctx *ctx, const char *host, bool verify)
{
    struct tls_conn *c = tls_conn_alloc(ctx);
    if (!c)
        return NULL;
    if (!tls_client_check(c->ssl, host, verify)) {
        ERR_clear_error();
        tls_conn_free(c);
        return NULL;
    }
    c->verify = verify;
    SSL_set_connect_state(c->ssl);
    return c;
}

/* tls_ctx_free - drop the loader's reference to the context. */
void tls_ctx_free(struct tls_ctx *ctx)
{
    tls_ctx_unref(ctx);
}

/* tls_conn_new - a server connection over empty in-memory buffers. */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx)
{
    struct tls_conn *c = tls_conn_alloc(ctx);
    if (c)
        SSL_set_accept_state(c->ssl);
    return c;
}

/* tls_conn_alloc - an SSL of ctx over the connection's memory BIO. */
static struct tls_conn *tls_conn_alloc(struct tls_ctx *ctx)
{
    struct tls_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->ssl = SSL_new(ctx->ssl_ctx); /* takes its own SSL_CTX reference */
    BIO *b = c->ssl ? BIO_new(tls_bio_method) : NULL;
    if (!b) {
        SSL_free(c->ssl);
        free(c);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_data(b, c);
    BIO_set_init(b, 1);
    SSL_set_bio(c->ssl, b, b);   /* one reference, used both ways */
    SSL_set_app_data(c->ssl, c); /* for tls_select_cert */
    atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
    c->ctx = ctx;
    return c;
}

/* tls_sb_wipe - zero and free a buffer. */
static void tls_sb_wipe(struct sb *b)
{
    if (b->data)
        explicit_bzero(b->data, b->cap);
    sb_free(b);
}

/* tls_conn_free - free a connection, wiping its buffers. */
void tls_conn_free(struct tls_conn *c)
{
    if (!c)
        return;
    SSL_free(c->ssl);
    tls_ctx_unref(c->ctx);
    tls_sb_wipe(&c->in);
    tls_sb_wipe(&c->out);
    free(c->err);
    free(c);
}

/* tls_feed - append received ciphertext. */
int tls_feed(struct tls_conn *c, const void *cipher, size_t len)
{
    if (c->in_off && c->in_off == c->in.len) {
        c->in.len = 0; /* all consumed: reuse from the start */
        c->in_off = 0;
    }
    return sb_append(&c->in, cipher, len) ? 0 : -1;
}

/* tls_in_trim - after an SSL call: drop consumed input, free it when empty
 * (idle connections hold no input buffer). */
static void tls_in_trim(struct tls_conn *c)
{
    if (c->in_off == c->in.len) {
        sb_free(&c->in);
        c->in_off = 0;
    } else if (c->in_off > c->in.len / 2) {
        sb_consume(&c->in, c->in_off);
        c->in_off = 0;
    }
}

/* tls_set_error - record "<what>: <reason>" for tls_error(). */
static void tls_set_error(struct tls_conn *c, const char *what, const char *reason)
{
    if (!c->err)
        c->err = malloc(TLS_ERR_MAX);
    if (c->err)
        snprintf(c->err, TLS_ERR_MAX, "%s: %s", what, reason);
}

/* tls_fail - classify a failed SSL call's result r and record why. */
static void tls_fail(struct tls_conn *c, const char *what, int r)
{
    int e = SSL_get_error(c->ssl, r);
    const char *fallback = e == SSL_ERROR_SYSCALL ? "transport error" : "protocol error";
    if (e == SSL_ERROR_ZERO_RETURN)
        fallback = "peer closed the TLS session";
    tls_set_error(c, what, tls_reason(fallback));
}

/* tls_handshake - advance the handshake: 1 done, 0 more input, -1 failed. */
int tls_handshake(struct tls_conn *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    int rc = 1;
    if (r != 1) {
        if (SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_READ) {
            rc = 0;
        } else if (c->verify && SSL_get_verify_result(c->ssl) != X509_V_OK) {
            ERR_clear_error();
            tls_set_error(c, "certificate verify failed",
                          X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
            rc = -1;
        } else {
            tls_fail(c, "handshake failed", r);
            rc = -1;
        }
    }
    tls_in_trim(c);
    return rc;
}

/* tls_read - decrypt application data, or say why there is none. */
ssize_t tls_read(struct tls_conn *c, void *plain, size_t cap)
{
    ERR_clear_error();
    int r = SSL_read(c->ssl, plain, cap > TLS_IO_MAX ? TLS_IO_MAX : (int)cap);
    ssize_t rc = r;
    if (r <= 0) {
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ) {
            rc = TLS_READ_AGAIN;
        } else if (e == SSL_ERROR_ZERO_RETURN) {
            ERR_clear_error();
            rc = TLS_READ_CLOSED;
        } else {
            tls_fail(c, "read failed", r);
            rc = TLS_READ_ERROR;
        }
    }
    tls_in_trim(c);
    return rc;
}

/* tls_write - encrypt all of plain into the output buffer. */
int tls_write(struct tls_conn *c, const void *plain, size_t len)
{
    const unsigned char *p = plain;
    if (!SSL_is_init_finished(c->ssl)) {
        tls_set_error(c, "write failed", "handshake not complete");
        return -1;
    }
    while (len > 0) {
        int n = len > TLS_IO_MAX ? TLS_IO_MAX : (int)len;
        ERR_clear_error();
        int r = SSL_write(c->ssl, p, n);
        if (r != n) {
            tls_fail(c, "write failed", r);
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* tls_close_notify - queue a close_notify alert. */
int tls_close_notify(struct tls_conn *c)
{
    ERR_clear_error();
    int r = SSL_shutdown(c->ssl);
    if (r < 0) {
        tls_fail(c, "shutdown failed", r);
        return -1;
    }
    return 0;
}

/* tls_pending_out - ciphertext bytes waiting to be sent. */
size_t tls_pending_out(const struct tls_conn *c)
{
    return c->out.len;
}

/* tls_take_out - move the pending ciphertext into out. */
size_t tls_take_out(struct tls_conn *c, struct sb *out)
{
    size_t n = c->out.len;
    if (n == 0)
        return 0;
    if (out->len == 0) {
        struct sb old = *out; /* swap storage: no copy */
        *out = c->out;
        c->out = old;
        sb_free(&c->out);
        return n;
    }
    if (!sb_append(out, c->out.data, n))
        return 0;
    sb_free(&c->out);
    return n;
}

/* tls_done - has the handshake completed?. */
bool tls_done(const struct tls_conn *c)
{
    return SSL_is_init_finished(c->ssl) == 1;
}

/* tls_error - the last failure as one line. */
const char *tls_error(const struct tls_conn *c)
{
    return c->err ? c->err : "";
}

/* tls_version - negotiated protocol version name. */
const char *tls_version(const struct tls_conn *c)
{
    return tls_done(c) ? SSL_get_version(c->ssl) : "";
}

/* tls_version_id - see tls.h. */
unsigned tls_version_id(const struct tls_conn *c)
{
    int v = tls_done(c) ? SSL_version(c->ssl) : 0;
    return v == TLS1_3_VERSION ? TLS_VER_13 : v == TLS1_2_VERSION ? TLS_VER_12 : TLS_VER_OTHER;
}

/* tls_version_label - see tls.h. */
const char *tls_version_label(unsigned id)
{
    static const char *const names[TLS_VER_COUNT] = {"TLSv1.2", "TLSv1.3", "other"};
    return id < TLS_VER_COUNT ? names[id] : "other";
}

/* tls_cipher - negotiated cipher suite name. */
const char *tls_cipher(const struct tls_conn *c)
{
    const SSL_CIPHER *ci = tls_done(c) ? SSL_get_current_cipher(c->ssl) : NULL;
    return ci ? SSL_CIPHER_get_name(ci) : "";
}
