/* authpool.c - the verifier threads behind authpool.h: a mutex-guarded FIFO
 * of requests (held only to link/unlink, never during crypt_r), per-thread
 * crypt_data wiped after every use, the dummy hash for unknown and locked
 * users; results go back through per-worker inboxes (inbox.h). Submitters: any
 * thread; verifiers: the pool's own threads; drain: each inbox's owner. */
#include "authpool.h"

#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "dir.h"
#include "inbox.h"
#include "snap.h"

#define AUTHPOOL_THREADS_MAX 16
#define AUTHPOOL_DUMMY_PHRASE "mxring-dummy-password"

/* A request, then (same memory) its result on the way back. */
struct authpool_req {
    struct authpool_req *next; /* pool FIFO link */
    struct inbox_node link;    /* inbox link, on the way back */
    struct authpool *pool;
    struct inbox *ib;
    struct snap *snap; /* a reference, dropped after verifying */
    struct authpool_result res;
    size_t user_len;
    size_t pass_len;
    char data[]; /* user, NUL, password, NUL */
};

struct authpool {
    pthread_mutex_t mu; /* guards head, tail, stop */
    pthread_cond_t cv;
    struct authpool_req *head, *tail;
    bool stop;
    atomic_uint pending; /* submitted and not yet drained */
    unsigned max_pending;
    unsigned nthreads;
    pthread_t threads[AUTHPOOL_THREADS_MAX];
    pthread_mutex_t dummy_mu;      /* guards dummy */
    char dummy[CRYPT_OUTPUT_SIZE]; /* a hash like the directory's */
};

/* authpool_req_free - wipe the password (and all request bytes) and free. */
static void authpool_req_free(struct authpool_req *r)
{
    explicit_bzero(r->data, r->user_len + r->pass_len + 2);
    free(r);
}

/* authpool_crypt_eq - does pass hash to hash? 1 yes, 0 no, -1 when crypt_r
 * cannot use hash. Compares without an early exit; wipes cd afterwards. */
static int authpool_crypt_eq(const char *pass, const char *hash, struct crypt_data *cd)
{
    const char *out = crypt_r(pass, hash, cd);
    int rc = -1;
    if (out && out[0] != '*') {
        size_t hl = strlen(hash);
        unsigned char diff = strlen(out) != hl;
        for (size_t i = 0; !diff && i < hl; i++)
            diff |= (unsigned char)(out[i] ^ hash[i]);
        rc = !diff;
    }
    explicit_bzero(cd, sizeof(*cd));
    return rc;
}

/* authpool_verify - the status of one request, spending the same crypt_r
 * work whether or not the user exists. */
static enum authpool_status authpool_verify(struct authpool *p, struct authpool_req *r,
                                            struct crypt_data *cd)
{
    const char *pass = r->data + r->user_len + 1;
    const char *h = dir_user_hash(r->snap->dir, r->data, r->user_len);
    enum authpool_status miss = !h                             ? AUTHPOOL_NO_USER
                                : (h[0] == '*' || h[0] == '!') ? AUTHPOOL_LOCKED
                                                               : AUTHPOOL_OK;
    if (miss != AUTHPOOL_OK) {
        char dummy[CRYPT_OUTPUT_SIZE];
        pthread_mutex_lock(&p->dummy_mu);
        memcpy(dummy, p->dummy, sizeof dummy);
        pthread_mutex_unlock(&p->dummy_mu);
        (void)authpool_crypt_eq(pass, dummy, cd); /* same cost, result unused */
        return miss;
    }
    int m = authpool_crypt_eq(pass, h, cd);
    if (m < 0)
        return AUTHPOOL_BAD_HASH;
    if (strlen(h) < sizeof p->dummy) { /* learn the scheme in use */
        pthread_mutex_lock(&p->dummy_mu);
        strcpy(p->dummy, h);
        pthread_mutex_unlock(&p->dummy_mu);
    }
    return m ? AUTHPOOL_OK : AUTHPOOL_BAD_PASSWORD;
}

/* authpool_next - block until a request is queued (NULL when stopping). */
static struct authpool_req *authpool_next(struct authpool *p)
{
    pthread_mutex_lock(&p->mu);
    while (!p->stop && !p->head)
        pthread_cond_wait(&p->cv, &p->mu);
    struct authpool_req *r = p->stop ? NULL : p->head;
    if (r) {
        p->head = r->next;
        if (!p->head)
            p->tail = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    return r;
}

/* authpool_main - a verifier thread. */
static void *authpool_main(void *arg)
{
    struct authpool *p = arg;
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    struct authpool_req *r;
    while ((r = authpool_next(p)) != NULL) {
        r->res.status = cd ? authpool_verify(p, r, cd) : AUTHPOOL_BAD_HASH;
        explicit_bzero(r->data, r->user_len + r->pass_len + 2);
        snap_unref(r->snap);
        r->snap = NULL;
        inbox_push(r->ib, &r->link); /* wakes the owner when it was empty */
    }
    free(cd);
    return NULL;
}

/* authpool_dummy_init - a default-scheme hash to start with (yescrypt on
 * Debian 12), replaced by each real hash verified later. */
static bool authpool_dummy_init(struct authpool *p)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    const char *out = NULL;
    if (cd && crypt_gensalt_rn(NULL, 0, NULL, 0, setting, sizeof setting))
        out = crypt_r(AUTHPOOL_DUMMY_PHRASE, setting, cd);
    bool ok = out && out[0] != '*' && strlen(out) < sizeof p->dummy;
    if (ok)
        strcpy(p->dummy, out);
    free(cd);
    return ok;
}

/* authpool_start - create the threads with every signal blocked (signals
 * belong to the main thread). */
static bool authpool_start(struct authpool *p, unsigned threads, char *err, size_t errlen)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = 0;
    while (p->nthreads < threads && !e) {
        e = pthread_create(&p->threads[p->nthreads], NULL, authpool_main, p);
        if (!e) {
            char name[16];
            snprintf(name, sizeof name, "mx-auth%u", p->nthreads);
            pthread_setname_np(p->threads[p->nthreads], name);
            p->nthreads++;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e)
        snprintf(err, errlen, "authpool: cannot start a verifier thread: %s", strerror(e));
    return !e;
}

/* authpool_new - create a pool and start its verifier threads. */
struct authpool *authpool_new(unsigned threads, unsigned max_pending, char *err, size_t errlen)
{
    threads = threads ? threads : AUTHPOOL_THREADS_DEFAULT;
    if (threads > AUTHPOOL_THREADS_MAX) {
        snprintf(err, errlen, "authpool: at most %d verifier threads", AUTHPOOL_THREADS_MAX);
        return NULL;
    }
    struct authpool *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "authpool: out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->dummy_mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    atomic_init(&p->pending, 0);
    p->max_pending = max_pending ? max_pending : AUTHPOOL_PENDING_DEFAULT;
    if (!authpool_dummy_init(p)) {
        snprintf(err, errlen, "authpool: crypt(3) cannot make a default hash: %s", strerror(errno));
        authpool_free(p);
        return NULL;
    }
    if (!authpool_start(p, threads, err, errlen)) {
        authpool_free(p);
        return NULL;
    }
    return p;
}

/* authpool_free - stop the threads and drop queued requests. */
void authpool_free(struct authpool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    for (struct authpool_req *r = p->head, *next; r; r = next) {
        next = r->next;
        snap_unref(r->snap);
        authpool_req_free(r);
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->dummy_mu);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* authpool_seed_dummy - replace the dummy hash with a usable hash. */
bool authpool_seed_dummy(struct authpool *p, const char *hash)
{
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    bool ok = cd && strlen(hash) < sizeof p->dummy &&
              authpool_crypt_eq(AUTHPOOL_DUMMY_PHRASE, hash, cd) >= 0;
    free(cd);
    if (ok) {
        pthread_mutex_lock(&p->dummy_mu);
        strcpy(p->dummy, hash);
        pthread_mutex_unlock(&p->dummy_mu);
    }
    return ok;
}

/* authpool_inbox_free - free an inbox and its undrained results. */
void authpool_inbox_free(struct inbox *ib)
{
    if (!ib)
        return;
    for (struct inbox_node *n = inbox_take(ib), *next; n; n = next) {
        next = n->next;
        authpool_req_free(INBOX_ENTRY(n, struct authpool_req, link));
    }
    inbox_free(ib);
}

/* authpool_req_new - a request holding copies of user and pass. */
static struct authpool_req *authpool_req_new(const char *user, size_t user_len, const char *pass,
                                             size_t pass_len)
{
    struct authpool_req *r = malloc(sizeof(*r) + user_len + pass_len + 2);
    if (!r)
        return NULL;
    memset(r, 0, sizeof(*r));
    r->user_len = user_len;
    r->pass_len = pass_len;
    memcpy(r->data, user, user_len);
    r->data[user_len] = 0;
    memcpy(r->data + user_len + 1, pass, pass_len);
    r->data[user_len + 1 + pass_len] = 0;
    return r;
}

/* authpool_submit - queue a verification unless the pool is full. */
enum authpool_submit_rc authpool_submit(struct authpool *p, struct inbox *ib, struct snap *s,
                                        const char *user, size_t user_len, const char *pass,
                                        size_t pass_len, uint64_t cookie)
{
    if (user_len > AUTH_USER_MAX || pass_len > AUTH_PASS_MAX || memchr(pass, 0, pass_len))
        return AUTHPOOL_INVALID;
    /* Counted from here until drained: bounds the queue and the inboxes. */
    if (atomic_fetch_add_explicit(&p->pending, 1, memory_order_relaxed) >= p->max_pending) {
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_relaxed);
        return AUTHPOOL_BUSY;
    }
    struct authpool_req *r = authpool_req_new(user, user_len, pass, pass_len);
    if (!r) {
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_relaxed);
        return AUTHPOOL_BUSY;
    }
    snap_ref(s);
    r->snap = s;
    r->pool = p;
    r->ib = ib;
    r->res.cookie = cookie;
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = r;
    else
        p->head = r;
    p->tail = r;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return AUTHPOOL_QUEUED;
}

/* authpool_drain - hand the inbox's results to fn, oldest first. */
size_t authpool_drain(struct inbox *ib, void (*fn)(void *arg, const struct authpool_result *r),
                      void *arg)
{
    size_t n = 0;
    for (struct inbox_node *in = inbox_take(ib), *next; in; in = next, n++) {
        next = in->next;
        struct authpool_req *r = INBOX_ENTRY(in, struct authpool_req, link);
        struct authpool *p = r->pool;
        fn(arg, &r->res);
        authpool_req_free(r);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_relaxed);
    }
    return n;
}

/* authpool_status_text - log reason of a status. */
const char *authpool_status_text(enum authpool_status st)
{
    static const char *const text[] = {
        [AUTHPOOL_OK] = "ok",
        [AUTHPOOL_BAD_PASSWORD] = "wrong password",
        [AUTHPOOL_NO_USER] = "no such user",
        [AUTHPOOL_LOCKED] = "user locked",
        [AUTHPOOL_BAD_HASH] = "unusable password hash",
    };
    return (unsigned)st < sizeof text / sizeof text[0] ? text[st] : "unknown";
}
