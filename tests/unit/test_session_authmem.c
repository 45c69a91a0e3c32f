/* test_session_authmem.c - the session's AUTH buffer (core/session_auth.c)
 * is allocated only while an AUTH dialogue runs, wiped before it is freed,
 * and a failed allocation answers the AUTH with 454 4.7.0 (never a crash).
 * malloc and free are wrapped at link time (-Wl,--wrap: see the Makefile)
 * to fail and to watch the buffer's allocation (AUTH_DECODED_MAX +
 * AUTH_USER_MAX octets: the only one of that size). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "auth.h"
#include "config.h"
#include "dir.h"
#include "session.h"
#include "snap.h"
#include "test_session_util.h"

#define BUF_SIZE (AUTH_DECODED_MAX + AUTH_USER_MAX)
#define SECRET_B64 "AHVzZXIAU3VwM3JTZWNyZXRQdw==" /* PLAIN "\0user\0Sup3rSecretPw" */

void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);
void __wrap_free(void *p);
void __real_free(void *p);

static struct {
    bool fail;       /* the next buffer allocation fails */
    unsigned allocs; /* buffer allocations that succeeded */
    void *live;      /* the buffer allocated last, until freed */
    unsigned freed;  /* buffers freed */
    bool wiped;      /* each was all zeros when freed */
} w = {.wiped = true};

/* __wrap_malloc - malloc, failing or counting the AUTH buffer's size. */
void *__wrap_malloc(size_t n)
{
    if (n != BUF_SIZE)
        return __real_malloc(n);
    if (w.fail) {
        w.fail = false;
        return NULL;
    }
    w.allocs++;
    return w.live = __real_malloc(n);
}

/* __wrap_free - free, checking that the AUTH buffer was wiped first. */
void __wrap_free(void *p)
{
    if (p && p == w.live) {
        const unsigned char *b = p;
        for (size_t i = 0; i < BUF_SIZE; i++)
            w.wiped &= b[i] == 0;
        w.freed++;
        w.live = NULL;
    }
    __real_free(p);
}

struct fixture {
    struct snap *snap;
    struct sess_env env;
    struct sess *s;
    struct sess_counters ctr;
    char out[4096];
};

/* make - a session from 127.0.0.1 that offers AUTH without TLS. */
static struct fixture *make(void)
{
    static const char conf[] = "hostname = mx.test\nworkdir = /tmp\nlisten = 127.0.0.1:2525\n"
                               "local_domains = example.test\nusers_file = /dev/null\n"
                               "auth_require_tls = no\n";
    struct fixture *f = calloc(1, sizeof(*f));
    f->snap = tsess_snap(conf, NULL);
    f->env.arg = f;
    f->env.ctr = &f->ctr;
    f->s = tsess_start(&f->env, f->snap, "127.0.0.1", 0x1234);
    return f;
}

/* destroy - free the fixture. */
static void destroy(struct fixture *f)
{
    sess_free(f->s);
    snap_unref(f->snap);
    free(f);
}

/* feed - bytes in, the replies out (as a C string). */
static const char *feed(struct fixture *f, const char *text)
{
    sess_input(f->s, text, strlen(text));
    struct sb *o = sess_out(f->s);
    size_t n = o->len < sizeof(f->out) - 1 ? o->len : sizeof(f->out) - 1;
    memcpy(f->out, o->data ? o->data : "", n);
    f->out[n] = 0;
    sb_reset(o);
    return f->out;
}

/* test_session_authmem_idle_holds_none - a session that never runs AUTH
 * never allocates the buffer; one AUTH allocates it once, and its end
 * (verified) frees it, wiped. */
static void test_session_authmem_idle_holds_none(void **state)
{
    (void)state;
    memset(&w, 0, sizeof w);
    w.wiped = true;
    struct fixture *f = make();
    feed(f, "EHLO client.example\r\nMAIL FROM:<a@example.org>\r\nRSET\r\n");
    assert_int_equal(w.allocs, 0);
    feed(f, "AUTH PLAIN " SECRET_B64 "\r\n");
    assert_int_equal(sess_action(f->s), SESS_AUTH);
    assert_int_equal(w.allocs, 1);
    assert_int_equal(w.freed, 0);
    sess_auth_done(f->s, SESS_AUTH_OK, NULL);
    assert_int_equal(w.freed, 1);
    assert_true(w.wiped);
    destroy(f);
}

/* test_session_authmem_login_dropped_when_closed - a LOGIN dialogue left
 * half way (user given, no password) holds the buffer until the session
 * goes: freed then, wiped. */
static void test_session_authmem_login_dropped_when_closed(void **state)
{
    (void)state;
    memset(&w, 0, sizeof w);
    w.wiped = true;
    struct fixture *f = make();
    feed(f, "EHLO client.example\r\n");
    assert_non_null(strstr(feed(f, "AUTH LOGIN dXNlcg==\r\n"), "334 "));
    assert_int_equal(w.allocs, 1);
    assert_int_equal(w.freed, 0);
    destroy(f);
    assert_int_equal(w.freed, 1);
    assert_true(w.wiped);
}

/* test_session_authmem_nomem_454 - no memory for the buffer: AUTH gets
 * 454 4.7.0, counted as a temporary failure, the session goes on; the
 * next AUTH works. */
static void test_session_authmem_nomem_454(void **state)
{
    (void)state;
    memset(&w, 0, sizeof w);
    w.wiped = true;
    struct fixture *f = make();
    feed(f, "EHLO client.example\r\n");
    w.fail = true;
    assert_string_equal(feed(f, "AUTH PLAIN " SECRET_B64 "\r\n"),
                        "454 4.7.0 Temporary authentication failure, try again later\r\n");
    assert_int_equal(sess_action(f->s), SESS_RUN);
    assert_int_equal(f->ctr.auth[AUTH_MECH_PLAIN][SESS_AUTHO_TEMPFAIL], 1);
    assert_non_null(strstr(feed(f, "NOOP\r\n"), "250 "));
    feed(f, "AUTH PLAIN " SECRET_B64 "\r\n");
    assert_int_equal(sess_action(f->s), SESS_AUTH);
    sess_auth_done(f->s, SESS_AUTH_OK, NULL);
    assert_true(w.wiped);
    destroy(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_authmem_idle_holds_none),
        cmocka_unit_test(test_session_authmem_login_dropped_when_closed),
        cmocka_unit_test(test_session_authmem_nomem_454),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
