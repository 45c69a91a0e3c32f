/* test_tls.c - unit tests of net/tls.c: full in-memory handshakes between a
 * server tls_conn and a BoringSSL client over memory BIOs, data both ways,
 * version enforcement, certificate loading errors, garbage input, clean
 * close and context lifetime across a reload. Certificates are generated at
 * start by scripts/gen-test-cert.sh (run from the repository root).
 * Single-threaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "tls.h"
#include "util.h"

#if __has_include(<openssl/is_boringssl.h>)
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define CERT_SCRIPT "scripts/gen-test-cert.sh"
#define ERRLEN 256
#define PUMP_ROUNDS 64
#define BIG_LEN (100 * 1024 + 13)

static char certdir[] = "/tmp/mxring-tls-XXXXXX";
static char err[ERRLEN];

/* path - a file of the generated certificate directory (static buffer). */
static const char *path(const char *name)
{
    static char buf[4][512];
    static unsigned k;
    char *p = buf[k++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", certdir, name);
    return p;
}

/* gen_certs - group setup: generate a CA and a server certificate. */
static int gen_certs(void **state)
{
    (void)state;
    if (!mkdtemp(certdir))
        return -1;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s >/dev/null", CERT_SCRIPT, certdir);
    if (access(CERT_SCRIPT, X_OK) != 0 || system(cmd) != 0) {
        fprintf(stderr, "cannot run %s (run from the repository root)\n", CERT_SCRIPT);
        return -1;
    }
    return 0;
}

/* rm_certs - group teardown: remove the certificate directory. */
static int rm_certs(void **state)
{
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf %s", certdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* policy - the shipped TLS 1.2 cipher list: tls_ciphers' default from the
 * configuration key table. */
static const char *policy(void)
{
    static char list[512];
    if (!list[0]) {
        const char text[] = "workdir = /tmp\n";
        struct config *c = cfg_load_string("t.conf", text, strlen(text), err, sizeof err);
        if (!c || !c->tls_ciphers)
            fail_msg("configuration defaults: %s", err);
        snprintf(list, sizeof list, "%s", c->tls_ciphers);
        cfg_free(c);
    }
    return list;
}

/* server_ctx - load cert.pem/key.pem with min_version, failing the test on error. */
static struct tls_ctx *server_ctx(const char *cert, int min_version)
{
    struct tls_ctx *t =
        tls_ctx_load(path(cert), path("key.pem"), min_version, policy(), err, sizeof err);
    if (!t)
        fail_msg("tls_ctx_load: %s", err);
    return t;
}

/* A BoringSSL client over two memory BIOs. */
struct client {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rbio; /* bytes from the server, written by pump() */
    BIO *wbio; /* bytes to the server, read by pump() */
};

/* client_new - a verifying client (test CA, host mx.test), max_version 0 = any. */
static void client_new(struct client *cl, uint16_t max_version)
{
    cl->ctx = SSL_CTX_new(TLS_method());
    assert_non_null(cl->ctx);
    assert_int_equal(SSL_CTX_load_verify_locations(cl->ctx, path("ca.pem"), NULL), 1);
    SSL_CTX_set_verify(cl->ctx, SSL_VERIFY_PEER, NULL);
    if (max_version)
        assert_int_equal(SSL_CTX_set_max_proto_version(cl->ctx, max_version), 1);
    cl->ssl = SSL_new(cl->ctx);
    assert_non_null(cl->ssl);
    assert_int_equal(SSL_set1_host(cl->ssl, "mx.test"), 1);
    cl->rbio = BIO_new(BIO_s_mem());
    cl->wbio = BIO_new(BIO_s_mem());
    assert_non_null(cl->rbio);
    assert_non_null(cl->wbio);
    SSL_set_bio(cl->ssl, cl->rbio, cl->wbio);
    SSL_set_connect_state(cl->ssl);
}

/* client_free - release the client. */
static void client_free(struct client *cl)
{
    SSL_free(cl->ssl);
    SSL_CTX_free(cl->ctx);
    ERR_clear_error();
}

/* pump - move ciphertext both ways, feeding the server in chunks of at most
 * chunk bytes (0 = all at once); returns the bytes moved. */
static size_t pump(struct client *cl, struct tls_conn *s, size_t chunk)
{
    size_t moved = 0;
    char buf[4096];
    int n;
    while ((n = BIO_read(cl->wbio, buf, sizeof buf)) > 0) {
        size_t step = chunk ? chunk : (size_t)n;
        for (size_t off = 0; off < (size_t)n; off += step)
            assert_int_equal(
                tls_feed(s, buf + off, (size_t)n - off < step ? (size_t)n - off : step), 0);
        moved += (size_t)n;
    }
    struct sb out = {0};
    size_t k = tls_take_out(s, &out);
    assert_int_equal(k, out.len);
    assert_int_equal(tls_pending_out(s), 0);
    if (k)
        assert_int_equal(BIO_write(cl->rbio, out.data, (int)k), (int)k);
    sb_free(&out);
    return moved + k;
}

/* handshake - drive both sides; returns the server's last tls_handshake result. */
static int handshake(struct client *cl, struct tls_conn *s, size_t chunk)
{
    int sr = 0;
    for (int i = 0; i < PUMP_ROUNDS; i++) {
        int cr = SSL_do_handshake(cl->ssl);
        if (cr != 1 && SSL_get_error(cl->ssl, cr) != SSL_ERROR_WANT_READ)
            return sr == 1 ? -2 : -1; /* the client gave up */
        pump(cl, s, chunk);
        if (sr != 1)
            sr = tls_handshake(s);
        size_t moved = pump(cl, s, chunk);
        if (sr < 0 || (sr == 1 && cr == 1 && moved == 0))
            return sr;
    }
    fail_msg("handshake did not converge");
    return -1;
}

/* server_read_all - read exactly want bytes of plaintext from the server. */
static void server_read_all(struct tls_conn *s, char *buf, size_t want)
{
    size_t got = 0;
    while (got < want) {
        ssize_t n = tls_read(s, buf + got, want - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_int_equal(tls_read(s, buf, 1), TLS_READ_AGAIN);
}

/* client_read_all - read exactly want bytes of plaintext on the client. */
static void client_read_all(struct client *cl, char *buf, size_t want)
{
    size_t got = 0;
    while (got < want) {
        int n = SSL_read(cl->ssl, buf + got, (int)(want - got));
        assert_true(n > 0);
        got += (size_t)n;
    }
}

/* connect_pair - a completed handshake between a new client and server conn. */
static struct tls_conn *connect_pair(struct tls_ctx *t, struct client *cl, uint16_t max_v)
{
    client_new(cl, max_v);
    struct tls_conn *s = tls_conn_new(t);
    assert_non_null(s);
    assert_false(tls_done(s));
    assert_string_equal(tls_version(s), "");
    int r = handshake(cl, s, 0);
    if (r != 1)
        fail_msg("handshake: %d %s", r, tls_error(s));
    assert_true(tls_done(s));
    return s;
}

/* test_tls_handshake_13_data - TLS 1.3 by default; data both ways, large
 * data split in odd chunks; the client verified the certificate. */
static void test_tls_handshake_13_data(void **state)
{
    (void)state;
    struct tls_ctx *t = server_ctx("cert.pem", TLS_VERSION_1_2);
    struct client cl;
    struct tls_conn *s = connect_pair(t, &cl, 0);
    assert_string_equal(tls_version(s), "TLSv1.3");
    assert_true(strncmp(tls_cipher(s), "TLS_", 4) == 0);
    assert_int_equal(SSL_get_verify_result(cl.ssl), X509_V_OK);

    const char ehlo[] = "EHLO client.test\r\n";
    char buf[64];
    assert_int_equal(SSL_write(cl.ssl, ehlo, (int)strlen(ehlo)), (int)strlen(ehlo));
    pump(&cl, s, 7);
    server_read_all(s, buf, strlen(ehlo));
    assert_memory_equal(buf, ehlo, strlen(ehlo));

    const char reply[] = "250 mx.test\r\n";
    assert_int_equal(tls_write(s, reply, strlen(reply)), 0);
    assert_true(tls_pending_out(s) > strlen(reply));
    pump(&cl, s, 0);
    client_read_all(&cl, buf, strlen(reply));
    assert_memory_equal(buf, reply, strlen(reply));

    char *big = malloc(BIG_LEN), *back = malloc(BIG_LEN);
    assert_non_null(big);
    assert_non_null(back);
    for (size_t i = 0; i < BIG_LEN; i++)
        big[i] = (char)(i * 7 + i / 251);
    for (size_t off = 0; off < BIG_LEN;) {
        int n = BIG_LEN - off > 9000 ? 9000 : (int)(BIG_LEN - off);
        assert_int_equal(SSL_write(cl.ssl, big + off, n), n);
        off += (size_t)n;
    }
    pump(&cl, s, 1000);
    server_read_all(s, back, BIG_LEN);
    assert_memory_equal(back, big, BIG_LEN);
    assert_int_equal(tls_write(s, big, BIG_LEN), 0);
    pump(&cl, s, 0);
    memset(back, 0, BIG_LEN);
    client_read_all(&cl, back, BIG_LEN);
    assert_memory_equal(back, big, BIG_LEN);
    free(big);
    free(back);
    tls_conn_free(s);
    client_free(&cl);
    tls_ctx_free(t);
}

/* test_tls_handshake_12 - a TLS 1.2-only client is served with min 1.2,
 * also when fed one byte at a time. */
static void test_tls_handshake_12(void **state)
{
    (void)state;
    struct tls_ctx *t = server_ctx("chain.pem", TLS_VERSION_1_2);
    struct client cl;
    client_new(&cl, TLS1_2_VERSION);
    struct tls_conn *s = tls_conn_new(t);
    assert_int_equal(handshake(&cl, s, 1), 1);
    assert_string_equal(tls_version(s), "TLSv1.2");
    assert_true(strlen(tls_cipher(s)) > 0);
    assert_string_equal(tls_cipher(s), SSL_CIPHER_get_name(SSL_get_current_cipher(cl.ssl)));
    /* chain.pem carries the CA too: the client received two certificates. */
    assert_int_equal(sk_X509_num(SSL_get_peer_full_cert_chain(cl.ssl)), 2);
    char buf[8];
    assert_int_equal(SSL_write(cl.ssl, "QUIT\r\n", 6), 6);
    pump(&cl, s, 0);
    server_read_all(s, buf, 6);
    assert_memory_equal(buf, "QUIT\r\n", 6);
    tls_conn_free(s);
    client_free(&cl);
    tls_ctx_free(t);
}

/* test_tls_min_13_refuses_12 - with min 1.3 a 1.2-only client fails
 * cleanly on both sides; the server queued an alert and says why. */
static void test_tls_min_13_refuses_12(void **state)
{
    (void)state;
    struct tls_ctx *t = server_ctx("cert.pem", TLS_VERSION_1_3);
    struct client cl;
    client_new(&cl, TLS1_2_VERSION);
    struct tls_conn *s = tls_conn_new(t);
    assert_int_equal(SSL_do_handshake(cl.ssl), -1);
    pump(&cl, s, 0);
    assert_int_equal(tls_handshake(s), -1);
    assert_true(strstr(tls_error(s), "handshake failed: ") == tls_error(s));
    assert_non_null(strstr(tls_error(s), "PROTOCOL"));
    assert_true(tls_pending_out(s) > 0); /* the alert */
    pump(&cl, s, 0);
    assert_int_equal(SSL_do_handshake(cl.ssl), -1);
    assert_int_equal(SSL_get_error(cl.ssl, -1), SSL_ERROR_SSL);
    assert_false(tls_done(s));
    assert_string_equal(tls_cipher(s), "");
    tls_conn_free(s);
    client_free(&cl);
    /* The same 1.3-only server serves a 1.3 client. */
    struct tls_conn *s2 = connect_pair(t, &cl, 0);
    assert_string_equal(tls_version(s2), "TLSv1.3");
    tls_conn_free(s2);
    client_free(&cl);
    tls_ctx_free(t);
}

/* handshake_12_with - a TLS 1.2 client offering only list (in its order)
 * against t: the server's tls_handshake result; *cipher gets the suite. */
static int handshake_12_with(struct tls_ctx *t, const char *list, const char **cipher)
{
    struct client cl;
    client_new(&cl, TLS1_2_VERSION);
    assert_int_equal(SSL_set_strict_cipher_list(cl.ssl, list), 1);
    struct tls_conn *s = tls_conn_new(t);
    int r = handshake(&cl, s, 0);
    static char name[64];
    snprintf(name, sizeof name, "%s", tls_cipher(s));
    *cipher = name;
    tls_conn_free(s);
    client_free(&cl);
    return r;
}

/* test_tls_12_policy - TLS 1.2 takes only ECDHE with an AEAD, in the
 * server's order: a client offering CBC, 3DES or static-RSA suites only is
 * refused; one preferring ChaCha20 still gets AES-128-GCM. */
static void test_tls_12_policy(void **state)
{
    (void)state;
    struct tls_ctx *t = server_ctx("cert.pem", TLS_VERSION_1_2);
    const char *got;
    static const char *const weak[] = {
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA",
        "DES-CBC3-SHA",
        "AES128-GCM-SHA256",
        "AES128-SHA",
        "ECDHE-PSK-AES128-CBC-SHA",
    };
    for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++)
        if (handshake_12_with(t, weak[i], &got) >= 0)
            fail_msg("TLS 1.2 suite %s was accepted", weak[i]);
    assert_int_equal(handshake_12_with(t,
                                       "ECDHE-ECDSA-CHACHA20-POLY1305:"
                                       "ECDHE-ECDSA-AES256-GCM-SHA384:"
                                       "ECDHE-ECDSA-AES128-GCM-SHA256",
                                       &got),
                     1);
    assert_string_equal(got, "ECDHE-ECDSA-AES128-GCM-SHA256");
    assert_int_equal(handshake_12_with(t, "ECDHE-ECDSA-CHACHA20-POLY1305", &got), 1);
    assert_string_equal(got, "ECDHE-ECDSA-CHACHA20-POLY1305");
    tls_ctx_free(t);
}

/* test_tls_ciphers_errors - an unknown name or a list that leaves nothing
 * is a configuration error naming tls_ciphers; an override is honoured. */
static void test_tls_ciphers_errors(void **state)
{
    (void)state;
    assert_null(tls_ctx_load(path("cert.pem"), path("key.pem"), TLS_VERSION_1_2,
                             "ECDHE-ECDSA-AES128-GCM-SHA256:NO-SUCH-CIPHER", err, sizeof err));
    assert_true(strstr(err, "tls_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:NO-SUCH-CIPHER: "
                            "not a usable cipher list (") == err);
    assert_null(
        tls_ctx_load(path("cert.pem"), path("key.pem"), TLS_VERSION_1_2, "", err, sizeof err));
    assert_true(strstr(err, "tls_ciphers : not a usable cipher list") == err);
    struct tls_ctx *t = tls_ctx_load(path("cert.pem"), path("key.pem"), TLS_VERSION_1_2,
                                     "ECDHE-ECDSA-AES256-GCM-SHA384", err, sizeof err);
    assert_non_null(t);
    const char *got;
    assert_int_equal(handshake_12_with(t, "ECDHE-ECDSA-AES128-GCM-SHA256", &got), -1);
    assert_int_equal(handshake_12_with(t,
                                       "ECDHE-ECDSA-AES128-GCM-SHA256:"
                                       "ECDHE-ECDSA-AES256-GCM-SHA384",
                                       &got),
                     1);
    assert_string_equal(got, "ECDHE-ECDSA-AES256-GCM-SHA384");
    tls_ctx_free(t);
}

/* test_tls_ctx_errors - one clear line per configuration mistake. */
static void test_tls_ctx_errors(void **state)
{
    (void)state;
    char want[ERRLEN];
    assert_null(tls_ctx_load(path("cert.pem"), path("other.key"), TLS_VERSION_1_2, policy(), err,
                             sizeof err));
    snprintf(want, sizeof want, "tls_key %s: private key does not match the certificate in %s",
             path("other.key"), path("cert.pem"));
    assert_string_equal(err, want);

    assert_null(tls_ctx_load(path("nope.pem"), path("key.pem"), TLS_VERSION_1_2, policy(), err,
                             sizeof err));
    snprintf(want, sizeof want, "tls_cert %s: No such file or directory", path("nope.pem"));
    assert_string_equal(err, want);

    assert_null(
        tls_ctx_load(path("cert.pem"), path("nokey"), TLS_VERSION_1_2, policy(), err, sizeof err));
    snprintf(want, sizeof want, "tls_key %s: No such file or directory", path("nokey"));
    assert_string_equal(err, want);

    /* A key where the certificate should be, and the other way round. */
    assert_null(
        tls_ctx_load(path("key.pem"), path("key.pem"), TLS_VERSION_1_2, policy(), err, sizeof err));
    snprintf(want, sizeof want, "tls_cert %s: cannot read a PEM certificate chain (",
             path("key.pem"));
    assert_true(strncmp(err, want, strlen(want)) == 0);
    assert_null(strchr(err, '\n'));
    assert_null(tls_ctx_load(path("cert.pem"), path("cert.pem"), TLS_VERSION_1_2, policy(), err,
                             sizeof err));
    snprintf(want, sizeof want, "tls_key %s: cannot read a PEM private key (", path("cert.pem"));
    assert_true(strncmp(err, want, strlen(want)) == 0);

    assert_null(tls_ctx_load(path("cert.pem"), path("key.pem"), 0x0302, policy(), err, sizeof err));
    assert_string_equal(err, "tls_min_version: must be TLS 1.2 or TLS 1.3");
    assert_int_equal(ERR_peek_error(), 0); /* no stale errors left behind */
}

/* test_tls_garbage_client_hello - plaintext SMTP or random bytes instead of
 * a ClientHello fail cleanly with a reason. */
static void test_tls_garbage_client_hello(void **state)
{
    (void)state;
    struct tls_ctx *t = server_ctx("cert.pem", TLS_VERSION_1_2);
    struct tls_conn *s = tls_conn_new(t);
    const char junk[] = "EHLO attacker.test\r\nMAIL FROM:<a@b>\r\n";
    assert_int_equal(tls_feed(s, junk, strlen(junk)), 0);
    assert_int_equal(tls_handshake(s), -1);
    assert_true(strncmp(tls_error(s), "handshake failed: ", 18) == 0);
    assert_true(strlen(tls_error(s)) > 18);
    assert_int_equal(tls_handshake(s), -1); /* stays failed */
    char buf[16];
    assert_int_equal(tls_read(s, buf, sizeof buf), TLS_READ_ERROR);
    assert_int_equal(tls_write(s, "x", 1), -1);
    tls_conn_free(s);

    /* A handshake record header claiming a huge length, then junk. */
    s = tls_conn_new(t);
    const unsigned char rec[] = {0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0x00, 0x00};
    assert_int_equal(tls_feed(s, rec, sizeof rec), 0);
    int r = tls_handshake(s);
    assert_true(r == -1 || r == 0);
    unsigned char noise[512];
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (unsigned char)(i * 131 + 17);
    for (int i = 0; i < 200 && r == 0; i++) {
        assert_int_equal(tls_feed(s, noise, sizeof noise), 0);
        r = tls_handshake(s);
    }
    assert_int_equal(r, -1);
    tls_conn_free(s);

    /* A partial ClientHello only asks for more. */
    struct client cl;
    client_new(&cl, 0);
    s = tls_conn_new(t);
    assert_int_equal(SSL_do_handshake(cl.ssl), -1);
    char hello[2048];
    int n = BIO_read(cl.wbio, hello, sizeof hello);
    assert_true(n > 10);
    assert_int_equal(tls_feed(s, hello, (size_t)n / 2), 0);
    assert_int_equal(tls_handshake(s), 0);
    assert_int_equal(tls_pending_out(s), 0);
    assert_string_equal(tls_error(s), "");
    tls_conn_free(s);
    client_free(&cl);
    tls_ctx_free(t);
}

/* test_tls_data_with_finished - application data arriving together with
 * the client's last handshake flight is kept for tls_read. */
static void test_tls_data_with_finished(void **state)
{
    (void)state;
    struct tls_ctx *t = server_ctx("cert.pem", TLS_VERSION_1_2);
    struct client cl;
    client_new(&cl, 0);
    struct tls_conn *s = tls_conn_new(t);
    assert_int_equal(SSL_do_handshake(cl.ssl), -1);
    pump(&cl, s, 0); /* ClientHello -> server */
    assert_int_equal(tls_handshake(s), 0);
    pump(&cl, s, 0);                               /* server flight -> client */
    assert_int_equal(SSL_do_handshake(cl.ssl), 1); /* client Finished queued */
    assert_int_equal(SSL_write(cl.ssl, "NOOP\r\n", 6), 6);
    pump(&cl, s, 0); /* Finished + data at once */
    assert_int_equal(tls_handshake(s), 1);
    char buf[8];
    server_read_all(s, buf, 6);
    assert_memory_equal(buf, "NOOP\r\n", 6);
    tls_conn_free(s);
    client_free(&cl);
    tls_ctx_free(t);
}

/* test_tls_close - close_notify both ways is a clean close. */
static void test_tls_close(void **state)
{
    (void)state;
    struct tls_ctx *t = server_ctx("cert.pem", TLS_VERSION_1_2);
    struct client cl;
    struct tls_conn *s = connect_pair(t, &cl, 0);
    char buf[8];
    assert_int_equal(tls_write(s, "221\r\n", 5), 0);
    assert_int_equal(tls_close_notify(s), 0);
    pump(&cl, s, 0);
    client_read_all(&cl, buf, 5);
    assert_int_equal(SSL_read(cl.ssl, buf, sizeof buf), 0);
    assert_int_equal(SSL_get_error(cl.ssl, 0), SSL_ERROR_ZERO_RETURN);
    SSL_shutdown(cl.ssl);
    pump(&cl, s, 0);
    assert_int_equal(tls_read(s, buf, sizeof buf), TLS_READ_CLOSED);
    tls_conn_free(s);
    client_free(&cl);
    tls_ctx_free(t);
}

/* test_tls_ctx_freed_before_conn - a reload frees the old context while a
 * connection made from it is mid-handshake: it still completes. */
static void test_tls_ctx_freed_before_conn(void **state)
{
    (void)state;
    struct tls_ctx *t = server_ctx("cert.pem", TLS_VERSION_1_2);
    struct tls_conn *s = tls_conn_new(t);
    struct tls_conn *s2 = tls_conn_new(t);
    tls_ctx_free(t);
    struct client cl;
    client_new(&cl, 0);
    assert_int_equal(handshake(&cl, s, 0), 1);
    tls_conn_free(s);
    client_free(&cl);
    client_new(&cl, TLS1_2_VERSION);
    assert_int_equal(handshake(&cl, s2, 0), 1);
    assert_string_equal(tls_version(s2), "TLSv1.2");
    tls_conn_free(s2);
    client_free(&cl);
    tls_ctx_free(NULL);
    tls_conn_free(NULL);
}

/* pump_pair - move ciphertext both ways between two of our connections
 * and advance both handshakes until neither moves; returns the client's
 * last tls_handshake result (the server's in *sr). */
static int pump_pair(struct tls_conn *cli, struct tls_conn *srv, int *sr)
{
    int cr = tls_handshake(cli);
    *sr = 0;
    for (int round = 0; round < PUMP_ROUNDS; round++) {
        struct sb b = {0};
        bool moved = false;
        if (tls_take_out(cli, &b)) {
            assert_int_equal(tls_feed(srv, b.data, b.len), 0);
            moved = true;
        }
        sb_free(&b);
        if (*sr == 0)
            *sr = tls_handshake(srv);
        if (tls_take_out(srv, &b)) {
            assert_int_equal(tls_feed(cli, b.data, b.len), 0);
            moved = true;
        }
        sb_free(&b);
        if (cr == 0)
            cr = tls_handshake(cli);
        if (!moved && cr != 0 && *sr != 0)
            break;
        if (!moved && cr < 0)
            break;
    }
    return cr;
}

/* client_try - handshake a client (ca, host, verify) with the server cert;
 * returns the client's result and copies its error into why. */
static int client_try(const char *ca, const char *host, bool verify, char *why, size_t cap)
{
    struct tls_ctx *st = server_ctx("chain.pem", TLS_VERSION_1_2);
    struct tls_ctx *ct = tls_client_ctx_new(ca, err, sizeof err);
    if (!ct)
        fail_msg("tls_client_ctx_new: %s", err);
    struct tls_conn *cli = tls_client_conn_new(ct, host, verify);
    struct tls_conn *srv = tls_conn_new(st);
    assert_non_null(cli);
    assert_non_null(srv);
    int sr;
    int cr = pump_pair(cli, srv, &sr);
    snprintf(why, cap, "%s", tls_error(cli));
    if (cr == 1) {
        assert_int_equal(sr, 1);
        assert_int_equal(tls_write(cli, "EHLO x\r\n", 8), 0);
        struct sb b = {0};
        assert_true(tls_take_out(cli, &b) > 0);
        assert_int_equal(tls_feed(srv, b.data, b.len), 0);
        sb_free(&b);
        char buf[16];
        assert_int_equal(tls_read(srv, buf, sizeof buf), 8);
        assert_memory_equal(buf, "EHLO x\r\n", 8);
    }
    tls_conn_free(cli);
    tls_conn_free(srv);
    tls_ctx_free(ct);
    tls_ctx_free(st);
    return cr;
}

/* test_tls_client_verify - a client context with the test CA verifies the
 * server by IP and by DNS name; a wrong name, or the system bundle (which
 * does not hold the test CA), fails the handshake with a verify reason;
 * without verify (relay_tls encrypt) any certificate is accepted. */
static void test_tls_client_verify(void **state)
{
    (void)state;
    char why[256];
    assert_int_equal(client_try(path("ca.pem"), "127.0.0.1", true, why, sizeof why), 1);
    assert_int_equal(client_try(path("ca.pem"), "mx.test", true, why, sizeof why), 1);
    assert_int_equal(client_try(path("ca.pem"), "other.test", true, why, sizeof why), -1);
    assert_non_null(strstr(why, "certificate verify failed"));
    assert_int_equal(client_try(path("ca.pem"), "127.0.0.2", true, why, sizeof why), -1);
    assert_non_null(strstr(why, "certificate verify failed"));
    assert_int_equal(client_try(NULL, "mx.test", true, why, sizeof why), -1);
    assert_non_null(strstr(why, "certificate verify failed"));
    assert_int_equal(client_try(NULL, "other.test", false, why, sizeof why), 1);
    assert_null(tls_client_ctx_new("/nonexistent/ca.pem", err, sizeof err));
    assert_non_null(strstr(err, "relay_ca_file /nonexistent/ca.pem"));
}

/* test_tls_take_out_appends - tls_take_out appends to a non-empty buffer
 * and writes before the handshake fail. */
static void test_tls_take_out_appends(void **state)
{
    (void)state;
    struct tls_ctx *t = server_ctx("cert.pem", TLS_VERSION_1_2);
    struct client cl;
    struct tls_conn *s = connect_pair(t, &cl, 0);
    struct sb out = {0};
    assert_true(sb_append(&out, "HEAD", 4));
    assert_int_equal(tls_write(s, "250 ok\r\n", 8), 0);
    size_t n = tls_pending_out(s);
    assert_int_equal(tls_take_out(s, &out), n);
    assert_int_equal(out.len, 4 + n);
    assert_memory_equal(out.data, "HEAD", 4);
    assert_int_equal(tls_take_out(s, &out), 0);
    assert_int_equal(BIO_write(cl.rbio, out.data + 4, (int)n), (int)n);
    char buf[8];
    client_read_all(&cl, buf, 8);
    assert_memory_equal(buf, "250 ok\r\n", 8);
    sb_free(&out);
    tls_conn_free(s);
    client_free(&cl);

    struct tls_conn *s2 = tls_conn_new(t);
    assert_int_equal(tls_write(s2, "x", 1), -1);
    assert_string_equal(tls_error(s2), "write failed: handshake not complete");
    tls_conn_free(s2);
    tls_ctx_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_handshake_13_data),
        cmocka_unit_test(test_tls_handshake_12),
        cmocka_unit_test(test_tls_min_13_refuses_12),
        cmocka_unit_test(test_tls_ctx_errors),
        cmocka_unit_test(test_tls_12_policy),
        cmocka_unit_test(test_tls_ciphers_errors),
        cmocka_unit_test(test_tls_garbage_client_hello),
        cmocka_unit_test(test_tls_data_with_finished),
        cmocka_unit_test(test_tls_close),
        cmocka_unit_test(test_tls_ctx_freed_before_conn),
        cmocka_unit_test(test_tls_take_out_appends),
        cmocka_unit_test(test_tls_client_verify),
    };
    return cmocka_run_group_tests(tests, gen_certs, rm_certs);
}

#else /* built without BoringSSL's include path */

/* test_tls_needs_boringssl - fail loudly: the test rule must add
 * -I/usr/include/android for test_tls*.c (never OpenSSL's headers). */
static void test_tls_needs_boringssl(void **state)
{
    (void)state;
    fail_msg("test_tls.c was compiled without -I/usr/include/android: "
             "add $(if $(findstring tls,$<),$(SSL_INC)) to the unit test rule");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_tls_needs_boringssl)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
