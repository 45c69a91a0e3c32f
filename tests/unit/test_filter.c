/* test_filter.c - unit tests of net/filter.c with its parts surbl.c and
 * clamdio.c on a real io_uring ring driven by a small loop here (the way
 * net/worker.c dispatches uring_cb completions), with a
 * fake DNS server (UDP on 127.0.0.1, answers per table, or silence) and a
 * fake clamd (unix or TCP socket, OK / FOUND / ERROR / silence) on threads.
 * Every test also checks that no operation of the engine is still in
 * flight when the job reports (SQEs tagged URING_TAG_CALLBACK are counted as they
 * are submitted and their CQEs as they are dispatched).
 * Description: SURBL verdicts, DNS failure policy, server retry, clamd
 * verdicts, scanner failure policy, size cap, combination, concurrency,
 * message sources read in small pieces and failing reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "clamdio.h"
#include "config.h"
#include "filter.h"
#include "surbl.h"
#include "uring.h"
#include "util.h"

#define POLL_MS 50
#define LONG_TIMEOUT_MS 10000 /* answers come from loopback: never reached */
#define SHORT_TIMEOUT_MS 200  /* only used where the peer stays silent */

/* ---- the ring and its loop ------------------------------------------------ */

static struct io_uring ring;
static struct filter_stats fst; /* the engines' counters (reset by setup) */
static unsigned long cb_submitted, cb_completed;

/* count_cb_sqes - URING_TAG_CALLBACK SQEs prepared and not yet submitted. */
static unsigned count_cb_sqes(void)
{
    unsigned n = 0;
    for (unsigned i = ring.sq.sqe_head; i != ring.sq.sqe_tail; i++) {
        struct io_uring_sqe *s = &ring.sq.sqes[i & ring.sq.ring_mask];
        if (uring_ud_tag(s->user_data) == URING_TAG_CALLBACK)
            n++;
    }
    return n;
}

/* loop_once - submit, wait for one CQE, dispatch all that are ready. */
static void loop_once(void)
{
    cb_submitted += count_cb_sqes();
    int r = io_uring_submit_and_wait(&ring, 1);
    assert_true(r >= 0 || r == -EINTR);
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&ring, head, cqe)
    {
        cb_completed += uring_cb_dispatch(cqe);
        n++;
    }
    io_uring_cq_advance(&ring, n);
}

/* ---- a job's outcome ----------------------------------------------------------- */

struct result {
    bool done;
    enum sess_verdict v;
    char detail[256];
    struct sb log;
};

static void on_log(void *arg, const char *line)
{
    struct result *r = arg;
    assert_false(r->done);
    assert_true(sb_appends(&r->log, line) && sb_appends(&r->log, "\n"));
}

static void on_done(void *arg, enum sess_verdict v, const char *detail)
{
    struct result *r = arg;
    assert_false(r->done);
    r->done = true;
    r->v = v;
    snprintf(r->detail, sizeof r->detail, "%s", detail ? detail : "");
}

/* has - the log holds s. */
static bool has(const struct result *r, const char *s)
{
    return r->log.data && strstr(r->log.data, s);
}

#define assert_log(r, s)                                                                   \
    do {                                                                                   \
        if (!has(r, s))                                                                    \
            fail_msg("log lacks \"%s\"; log:\n%s", s, (r)->log.data ? (r)->log.data : ""); \
    } while (0)

/* A message source for the tests: serves msg[0..len) at most piece octets
 * per read (0: as much as asked), fails every read at or past fail_at with
 * -err, and records the largest read asked for. */
struct test_src {
    const char *msg;
    size_t len;
    size_t piece;
    size_t fail_at; /* SIZE_MAX: never */
    int err;        /* 0 with fail_at set: the source ends there (reads 0) */
    size_t max_cap;
    unsigned long reads;
};

/* src_read - struct filter_src read over a struct test_src. */
static long src_read(void *arg, size_t off, void *buf, size_t cap)
{
    struct test_src *t = arg;
    t->reads++;
    if (cap > t->max_cap)
        t->max_cap = cap;
    assert_true(cap > 0);
    if (off >= t->fail_at)
        return t->err ? -t->err : 0;
    if (off >= t->len)
        return 0;
    size_t n = t->len - off < cap ? t->len - off : cap;
    if (t->piece && n > t->piece)
        n = t->piece;
    if (t->fail_at - off < n)
        n = t->fail_at - off;
    memcpy(buf, t->msg + off, n);
    return (long)n;
}

/* run_srcs - start n jobs over test sources and run the ring until all are
 * done; then nothing may be in flight. */
static void run_srcs(const struct config *cfg, struct test_src *ts, struct result *res, size_t n)
{
    struct filter_engine *fe = filter_engine_new(&ring, 0, &fst);
    assert_non_null(fe);
    for (size_t i = 0; i < n; i++) {
        struct filter_src src = {.len = ts[i].len, .read = src_read, .arg = &ts[i]};
        filter_start(fe, cfg, &src, on_log, on_done, &res[i]); /* src is copied */
    }
    for (;;) {
        size_t left = 0;
        for (size_t i = 0; i < n; i++)
            left += !res[i].done;
        if (!left)
            break;
        loop_once();
    }
    cb_submitted += count_cb_sqes();
    assert_int_equal(cb_submitted, cb_completed);
    io_uring_submit(&ring); /* the cancels' own completions (user_data 0) */
    filter_engine_free(fe);
}

/* whole_src - a source serving msg[0..len) as asked, never failing. */
static struct test_src whole_src(const char *msg, size_t len)
{
    return (struct test_src){.msg = msg, .len = len, .fail_at = SIZE_MAX};
}

/* run_jobs - start n jobs over msgs (whole reads) and run them to the end. */
static void run_jobs(const struct config *cfg, const char *const *msgs, const size_t *lens,
                     struct result *res, size_t n)
{
    struct test_src *ts = calloc(n, sizeof *ts);
    assert_non_null(ts);
    for (size_t i = 0; i < n; i++)
        ts[i] = whole_src(msgs[i], lens[i]);
    run_srcs(cfg, ts, res, n);
    free(ts);
}

/* run_one - one job over a C string. */
static void run_one(const struct config *cfg, const char *msg, struct result *r)
{
    size_t len = strlen(msg);
    run_jobs(cfg, &msg, &len, r, 1);
}

static void result_free(struct result *r)
{
    sb_free(&r->log);
}

/* ---- fake DNS server ------------------------------------------------------------ */

enum dns_mode { DNS_A = 0, DNS_NXDOMAIN, DNS_SERVFAIL, DNS_SILENT, DNS_WRONG_ID_FIRST };

struct dns_rule {
    const char *name;
    enum dns_mode mode;
    const char *addr;
};

struct fake_dns {
    int fd;
    uint16_t port;
    const struct dns_rule *rules; /* ends with name NULL: the default */
    bool silent;                  /* answer nothing at all */
    atomic_bool stop;
    atomic_uint queries;
    pthread_t th;
};

/* qname - the question name of a query in text form; its end offset. */
static size_t qname(const uint8_t *p, size_t n, char *out, size_t cap)
{
    size_t i = 12, o = 0;
    while (i < n && p[i]) {
        size_t l = p[i++];
        if (i + l > n || o + l + 2 > cap)
            return 0;
        if (o)
            out[o++] = '.';
        memcpy(out + o, p + i, l);
        o += l;
        i += l;
    }
    out[o] = 0;
    return i + 1 + 4 <= n ? i + 1 + 4 : 0;
}

/* dns_answer - build the reply to query q[0..qend) per rule. */
static size_t dns_answer(const struct dns_rule *rule, const uint8_t *q, size_t qend, uint8_t *out)
{
    memcpy(out, q, qend);
    out[2] = 0x81; /* QR, RD */
    out[3] = 0x80; /* RA */
    out[6] = out[7] = out[8] = out[9] = out[10] = out[11] = 0;
    if (rule->mode == DNS_NXDOMAIN)
        out[3] |= 3;
    if (rule->mode == DNS_SERVFAIL)
        out[3] |= 2;
    if (rule->mode != DNS_A && rule->mode != DNS_WRONG_ID_FIRST)
        return qend;
    static const uint8_t rr[] = {0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4};
    out[7] = 1;
    memcpy(out + qend, rr, sizeof rr);
    inet_pton(AF_INET, rule->addr, out + qend + sizeof rr);
    return qend + sizeof rr + 4;
}

static void *dns_thread(void *arg)
{
    struct fake_dns *d = arg;
    while (!atomic_load(&d->stop)) {
        struct pollfd pfd = {d->fd, POLLIN, 0};
        if (poll(&pfd, 1, POLL_MS) <= 0)
            continue;
        uint8_t q[512], a[600];
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(d->fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
        char name[300];
        size_t qend = n > 12 ? qname(q, (size_t)n, name, sizeof name) : 0;
        if (!qend)
            continue;
        atomic_fetch_add(&d->queries, 1);
        const struct dns_rule *r = d->rules;
        while (r->name && strcmp(r->name, name) != 0)
            r++;
        if (d->silent || r->mode == DNS_SILENT)
            continue;
        size_t alen = dns_answer(r, q, qend, a);
        if (r->mode == DNS_WRONG_ID_FIRST) {
            a[1] ^= 1;
            sendto(d->fd, a, alen, 0, (struct sockaddr *)&from, fl);
            a[1] ^= 1;
        }
        sendto(d->fd, a, alen, 0, (struct sockaddr *)&from, fl);
    }
    return NULL;
}

static void dns_start(struct fake_dns *d, const struct dns_rule *rules, bool silent)
{
    memset(d, 0, sizeof *d);
    d->rules = rules;
    d->silent = silent;
    d->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(d->fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(d->fd, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t l = sizeof sin;
    getsockname(d->fd, (struct sockaddr *)&sin, &l);
    d->port = ntohs(sin.sin_port);
    assert_int_equal(pthread_create(&d->th, NULL, dns_thread, d), 0);
}

static void dns_stop(struct fake_dns *d)
{
    atomic_store(&d->stop, true);
    pthread_join(d->th, NULL);
    close(d->fd);
}

/* ---- fake clamd -------------------------------------------------------------------- */

enum clam_mode { CLAM_OK = 0, CLAM_FOUND, CLAM_ERROR, CLAM_SILENT, CLAM_HANGUP };

struct fake_clamd {
    int fd;
    char spec[128]; /* the clamd key's value */
    char path[108]; /* unix socket path ("" for TCP) */
    enum clam_mode mode;
    atomic_bool stop;
    atomic_uint conns;
    pthread_mutex_t mu; /* guards got, got_ok */
    struct sb got;      /* the scanned octets of the last stream */
    bool got_ok;        /* the last stream was well formed and complete */
    pthread_t th;
};

/* read_full - n octets from fd, or false (EOF, error, stop). */
static bool read_full(struct fake_clamd *c, int fd, void *buf, size_t n)
{
    size_t have = 0;
    while (have < n && !atomic_load(&c->stop)) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, POLL_MS) <= 0)
            continue;
        ssize_t r = read(fd, (char *)buf + have, n - have);
        if (r <= 0)
            return false;
        have += (size_t)r;
    }
    return have == n;
}

/* clamd_read_stream - the command and chunks of one INSTREAM session into
 * got; true when the stream was well formed and complete. */
static bool clamd_read_stream(struct fake_clamd *c, int fd, struct sb *got)
{
    char cmd[10];
    if (c->mode == CLAM_HANGUP || !read_full(c, fd, cmd, sizeof cmd) ||
        memcmp(cmd, "zINSTREAM", sizeof cmd) != 0)
        return false;
    for (;;) {
        uint8_t h[4];
        if (!read_full(c, fd, h, 4))
            return false;
        uint32_t n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        if (n == 0)
            return true;
        char *buf = malloc(n);
        bool ok = buf && read_full(c, fd, buf, n);
        if (ok)
            sb_append(got, buf, n);
        free(buf);
        if (!ok)
            return false;
    }
}

/* clamd_serve - one INSTREAM session. What was read is published under
 * c->mu before the reply is written: the client reads the reply through
 * io_uring, an ordering ThreadSanitizer cannot see, so the test thread
 * takes the mutex (clamd_last) to read it. */
static void clamd_serve(struct fake_clamd *c, int fd)
{
    pthread_mutex_lock(&c->mu);
    c->got_ok = false; /* this session's result is not known yet */
    pthread_mutex_unlock(&c->mu);
    struct sb got = {0};
    bool ok = clamd_read_stream(c, fd, &got);
    pthread_mutex_lock(&c->mu);
    sb_free(&c->got);
    c->got = got;
    c->got_ok = ok;
    pthread_mutex_unlock(&c->mu);
    if (!ok)
        return;
    static const char *const replies[] = {[CLAM_OK] = "stream: OK",
                                          [CLAM_FOUND] = "stream: Eicar-Test-Signature FOUND",
                                          [CLAM_ERROR] = "Can't allocate memory ERROR"};
    if (c->mode == CLAM_SILENT) {
        char x;
        while (!atomic_load(&c->stop) && read_full(c, fd, &x, 1))
            ; /* until the client gives up */
        return;
    }
    if (write(fd, replies[c->mode], strlen(replies[c->mode]) + 1) < 0)
        perror("fake clamd: write");
}

/* clamd_last - did the last session get a whole stream equal to want? */
static bool clamd_last(struct fake_clamd *c, const char *want, size_t len)
{
    pthread_mutex_lock(&c->mu);
    bool same = c->got_ok && c->got.len == len && memcmp(c->got.data, want, len) == 0;
    pthread_mutex_unlock(&c->mu);
    return same;
}

/* clamd_last_ok - did the last session get a whole stream? */
static bool clamd_last_ok(struct fake_clamd *c)
{
    pthread_mutex_lock(&c->mu);
    bool ok = c->got_ok;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

static void *clamd_thread(void *arg)
{
    struct fake_clamd *c = arg;
    while (!atomic_load(&c->stop)) {
        struct pollfd pfd = {c->fd, POLLIN, 0};
        if (poll(&pfd, 1, POLL_MS) <= 0)
            continue;
        int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        atomic_fetch_add(&c->conns, 1);
        clamd_serve(c, fd);
        close(fd);
    }
    return NULL;
}

static void clamd_start(struct fake_clamd *c, enum clam_mode mode, bool tcp)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    c->mode = mode;
    if (tcp) {
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        assert_int_equal(bind(c->fd, (struct sockaddr *)&sin, sizeof sin), 0);
        socklen_t l = sizeof sin;
        getsockname(c->fd, (struct sockaddr *)&sin, &l);
        snprintf(c->spec, sizeof c->spec, "tcp:127.0.0.1:%u", ntohs(sin.sin_port));
    } else {
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        snprintf(c->path, sizeof c->path, "/tmp/mxring-test-clamd-%d.sock", (int)getpid());
        unlink(c->path);
        snprintf(un.sun_path, sizeof un.sun_path, "%s", c->path);
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(bind(c->fd, (struct sockaddr *)&un, sizeof un), 0);
        snprintf(c->spec, sizeof c->spec, "unix:%s", c->path);
    }
    assert_int_equal(listen(c->fd, 16), 0);
    assert_int_equal(pthread_create(&c->th, NULL, clamd_thread, c), 0);
}

static void clamd_stop(struct fake_clamd *c)
{
    atomic_store(&c->stop, true);
    pthread_join(c->th, NULL);
    close(c->fd);
    if (*c->path)
        unlink(c->path);
    sb_free(&c->got);
    pthread_mutex_destroy(&c->mu);
}

/* ---- configurations and messages ----------------------------------------------------- */

#define ZONES "multi.surbl.test:reject, q.surbl.test:quarantine, p.surbl.test:pass"

/* conf - a configuration from printf-style text (workdir added). */
static struct config *conf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static struct config *conf(const char *fmt, ...)
{
    char text[2048], err[512];
    int n = snprintf(text, sizeof text, "workdir = /tmp\n");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + n, sizeof text - (size_t)n, fmt, ap);
    va_end(ap);
    struct config *c = cfg_load_string("t.conf", text, strlen(text), err, sizeof err);
    if (!c)
        fail_msg("config: %s", err);
    return c;
}

/* surbl_conf - zones ZONES, one DNS server, the given timeout and policy. */
static struct config *surbl_conf(uint16_t port, unsigned timeout_ms, const char *failure)
{
    return conf("surbl_zones = " ZONES "\ndns_servers = 127.0.0.1:%u\n"
                "dns_timeout_ms = %u\ndns_failure = %s\n",
                port, timeout_ms, failure);
}

/* reject_conf - one reject zone at the fake server, generous timeout. */
static struct config *reject_conf(uint16_t port)
{
    return conf("surbl_zones = multi.surbl.test:reject\ndns_servers = 127.0.0.1:%u\n"
                "dns_timeout_ms = %u\n",
                port, LONG_TIMEOUT_MS);
}

#define MSG(body) "From: a@b.example\r\nSubject: t\r\n\r\n" body "\r\n"

static const struct dns_rule rules[] = {
    {"bad.example.multi.surbl.test", DNS_A, "127.0.0.2"},
    {"bad.example.q.surbl.test", DNS_A, "127.0.0.4"},
    {"quar.example.q.surbl.test", DNS_A, "127.0.0.2"},
    {"logonly.example.p.surbl.test", DNS_A, "127.0.0.2"},
    {"blocked.example.multi.surbl.test", DNS_A, "127.0.0.1"},
    {"odd.example.multi.surbl.test", DNS_A, "10.1.2.3"},
    {"4.3.2.1.multi.surbl.test", DNS_A, "127.0.0.8"},
    {"sf.example.multi.surbl.test", DNS_SERVFAIL, NULL},
    {"slow.example.multi.surbl.test", DNS_SILENT, NULL},
    {"spoof.example.multi.surbl.test", DNS_WRONG_ID_FIRST, "127.0.0.2"},
    {NULL, DNS_NXDOMAIN, NULL},
};

/* ---- tests: SURBL --------------------------------------------------------------------- */

/* test_filter_wanted - zones or clamd switch the filters on. */
static void test_filter_wanted(void **state)
{
    (void)state;
    struct config *c = conf("hostname = x.test\n");
    assert_false(filter_wanted(c));
    cfg_free(c);
    c = conf("surbl_zones = multi.surbl.test:reject\ndns_servers = 127.0.0.1:53\n");
    assert_true(filter_wanted(c));
    cfg_free(c);
    c = conf("clamd = unix:/run/clamd.sock\n");
    assert_true(filter_wanted(c));
    cfg_free(c);
}

/* test_filter_surbl_listed_reject - a listed domain in a reject zone. */
static void test_filter_surbl_listed_reject(void **state)
{
    (void)state;
    struct fake_dns d;
    dns_start(&d, rules, false);
    struct config *c = reject_conf(d.port);
    struct result r = {0};
    run_one(c, MSG("see http://www.Bad.Example/x?y=1 now"), &r);
    assert_int_equal(r.v, SESS_VERDICT_REJECT_SPAM);
    assert_string_equal(r.detail, "surbl bad.example multi.surbl.test");
    assert_log(&r, "Query_FILTER_RBL(bad.example.multi.surbl.test 127.0.0.2,1)=found list\n");
    assert_log(&r, "SURBL verdict: bad.example listed in multi.surbl.test: reject\n");
    assert_int_equal(atomic_load(&d.queries), 1);
    result_free(&r);
    cfg_free(c);
    dns_stop(&d);
}

/* test_filter_surbl_not_listed - NXDOMAIN, 127.0.0.1 and answers outside
 * 127/8 are not listings; every lookup is numbered and logged. */
static void test_filter_surbl_not_listed(void **state)
{
    (void)state;
    struct fake_dns d;
    dns_start(&d, rules, false);
    struct config *c = reject_conf(d.port);
    struct result r = {0};
    run_one(c, MSG("http://good.example/ www.blocked.example https://odd.example"), &r);
    assert_int_equal(r.v, SESS_VERDICT_PASS);
    assert_log(&r, "Query_FILTER_RBL(good.example.multi.surbl.test ,1)=not found list\n");
    assert_log(&r,
               "Query_FILTER_RBL(blocked.example.multi.surbl.test 127.0.0.1,2)=not found list\n");
    assert_log(&r, "Query_FILTER_RBL(odd.example.multi.surbl.test 10.1.2.3,3)=not found list\n");
    assert_log(&r, "SURBL verdict: not listed (3 domains): pass\n");
    result_free(&r);
    cfg_free(c);
    dns_stop(&d);
}

/* test_filter_surbl_zone_actions - quarantine and pass (log only) zones. */
static void test_filter_surbl_zone_actions(void **state)
{
    (void)state;
    struct fake_dns d;
    dns_start(&d, rules, false);
    struct config *c = surbl_conf(d.port, LONG_TIMEOUT_MS, "pass");
    struct result r = {0};
    run_one(c, MSG("<a href=\"http://x.quar.example/\">x</a>"), &r);
    assert_int_equal(r.v, SESS_VERDICT_QUARANTINE);
    assert_string_equal(r.detail, "surbl quar.example q.surbl.test");
    assert_log(&r, "Query_FILTER_RBL(quar.example.q.surbl.test 127.0.0.2,2)=found list\n");
    assert_log(&r, "SURBL verdict: quar.example listed in q.surbl.test: quarantine\n");
    result_free(&r);
    struct result p = {0};
    run_one(c, MSG("www.logonly.example"), &p);
    assert_int_equal(p.v, SESS_VERDICT_PASS);
    assert_log(&p, "Query_FILTER_RBL(logonly.example.p.surbl.test 127.0.0.2,3)=found list\n");
    assert_log(&p, "SURBL verdict: logonly.example listed in p.surbl.test: pass\n");
    result_free(&p);
    cfg_free(c);
    dns_stop(&d);
}

/* test_filter_surbl_strongest - reject beats quarantine beats pass, over
 * domains and zones (bad.example is in the reject and quarantine zones). */
static void test_filter_surbl_strongest(void **state)
{
    (void)state;
    struct fake_dns d;
    dns_start(&d, rules, false);
    struct config *c = surbl_conf(d.port, LONG_TIMEOUT_MS, "pass");
    struct result r = {0};
    run_one(c, MSG("www.logonly.example http://quar.example http://bad.example"), &r);
    assert_int_equal(r.v, SESS_VERDICT_REJECT_SPAM);
    assert_string_equal(r.detail, "surbl bad.example multi.surbl.test");
    assert_log(&r, "Query_FILTER_RBL(bad.example.multi.surbl.test 127.0.0.2,7)=found list\n");
    assert_log(&r, "Query_FILTER_RBL(bad.example.q.surbl.test 127.0.0.4,8)=found list\n");
    assert_log(&r, "SURBL verdict: bad.example listed in multi.surbl.test: reject\n");
    assert_int_equal(atomic_load(&d.queries), 9);
    const char *last = "SURBL verdict: bad.example listed in multi.surbl.test: reject\n";
    assert_string_equal(r.log.data + r.log.len - strlen(last), last); /* one, at the end */
    assert_ptr_equal(strstr(r.log.data, "SURBL verdict"), r.log.data + r.log.len - strlen(last));
    result_free(&r);
    cfg_free(c);
    dns_stop(&d);
}

/* test_filter_surbl_ip_literal - IPv4 hosts are looked up reversed. */
static void test_filter_surbl_ip_literal(void **state)
{
    (void)state;
    struct fake_dns d;
    dns_start(&d, rules, false);
    struct config *c = reject_conf(d.port);
    struct result r = {0};
    run_one(c, MSG("http://1.2.3.4/p"), &r);
    assert_int_equal(r.v, SESS_VERDICT_REJECT_SPAM);
    assert_log(&r, "Query_FILTER_RBL(4.3.2.1.multi.surbl.test 127.0.0.8,1)=found list\n");
    result_free(&r);
    cfg_free(c);
    dns_stop(&d);
}

/* test_filter_surbl_timeout - a silent server: dns_failure decides. */
static void test_filter_surbl_timeout(void **state)
{
    (void)state;
    struct fake_dns d;
    dns_start(&d, rules, true);
    struct config *c = surbl_conf(d.port, SHORT_TIMEOUT_MS, "pass");
    struct result r = {0};
    run_one(c, MSG("http://bad.example/"), &r);
    assert_int_equal(r.v, SESS_VERDICT_PASS);
    assert_log(&r, "Query_FILTER_RBL(bad.example.multi.surbl.test ,1)=lookup failed (timeout)\n");
    assert_log(&r, "SURBL verdict: not listed (1 domain), 3 of 3 lookups failed (timeout): pass\n");
    result_free(&r);
    cfg_free(c);
    c = surbl_conf(d.port, SHORT_TIMEOUT_MS, "tempfail");
    struct result t = {0};
    run_one(c, MSG("http://bad.example/"), &t);
    assert_int_equal(t.v, SESS_VERDICT_TEMPFAIL);
    assert_string_equal(t.detail, "surbl lookup failed (timeout)");
    assert_log(&t, "3 of 3 lookups failed (timeout): tempfail\n");
    assert_int_equal(fst.dns.queries, 6); /* the metrics' counters */
    assert_int_equal(fst.dns.failures, 6);
    assert_int_equal(fst.verdicts[SESS_VERDICT_PASS], 1);
    assert_int_equal(fst.verdicts[SESS_VERDICT_TEMPFAIL], 1);
    result_free(&t);
    cfg_free(c);
    dns_stop(&d);
}

/* test_filter_surbl_partial_failure - one lookup times out and one SERVFAILs
 * while another is listed for reject: the listing wins; with only a
 * quarantine listing the failure (tempfail) wins. */
static void test_filter_surbl_partial_failure(void **state)
{
    (void)state;
    struct fake_dns d;
    dns_start(&d, rules, false);
    struct config *c = conf("surbl_zones = multi.surbl.test:reject, q.surbl.test:quarantine\n"
                            "dns_servers = 127.0.0.1:%u\ndns_timeout_ms = %u\n"
                            "dns_failure = tempfail\n",
                            d.port, SHORT_TIMEOUT_MS);
    struct result r = {0};
    run_one(c, MSG("http://slow.example http://sf.example http://bad.example"), &r);
    assert_int_equal(r.v, SESS_VERDICT_REJECT_SPAM);
    assert_log(&r, "Query_FILTER_RBL(slow.example.multi.surbl.test ,1)=lookup failed (timeout)\n");
    assert_log(&r, "Query_FILTER_RBL(sf.example.multi.surbl.test ,3)=lookup failed (servfail)\n");
    assert_log(&r, "SURBL verdict: bad.example listed in multi.surbl.test, 2 of 6 lookups "
                   "failed (timeout): reject\n");
    result_free(&r);
    struct result q = {0};
    run_one(c, MSG("http://sf.example http://quar.example"), &q);
    assert_int_equal(q.v, SESS_VERDICT_TEMPFAIL);
    assert_log(&q, "SURBL verdict: quar.example listed in q.surbl.test, 1 of 4 lookups failed "
                   "(servfail): tempfail\n");
    result_free(&q);
    cfg_free(c);
    dns_stop(&d);
}

/* test_filter_surbl_retry_next_server - the first server is silent: after
 * half of dns_timeout_ms the second one is asked and answers. */
static void test_filter_surbl_retry_next_server(void **state)
{
    (void)state;
    struct fake_dns mute, good;
    dns_start(&mute, rules, true);
    dns_start(&good, rules, false);
    struct config *c = conf("surbl_zones = multi.surbl.test:reject\n"
                            "dns_servers = 127.0.0.1:%u, 127.0.0.1:%u\ndns_timeout_ms = %u\n"
                            "dns_failure = tempfail\n",
                            mute.port, good.port, 2 * SHORT_TIMEOUT_MS);
    struct result r = {0};
    run_one(c, MSG("http://bad.example http://good.example"), &r);
    assert_int_equal(r.v, SESS_VERDICT_REJECT_SPAM);
    assert_int_equal(atomic_load(&mute.queries), 2);
    assert_int_equal(atomic_load(&good.queries), 2);
    assert_int_equal(fst.dns.queries, 4); /* both datagrams of each lookup */
    assert_int_equal(fst.dns.failures, 0);
    assert_int_equal(fst.verdicts[SESS_VERDICT_REJECT_SPAM], 1);
    assert_log(&r, "SURBL verdict: bad.example listed in multi.surbl.test: reject\n");
    result_free(&r);
    cfg_free(c);
    dns_stop(&mute);
    dns_stop(&good);
}

/* test_filter_surbl_mismatch_ignored - a reply with the wrong id is
 * ignored; the real one counts. */
static void test_filter_surbl_mismatch_ignored(void **state)
{
    (void)state;
    struct fake_dns d;
    dns_start(&d, rules, false);
    struct config *c = reject_conf(d.port);
    struct result r = {0};
    run_one(c, MSG("http://spoof.example/"), &r);
    assert_int_equal(r.v, SESS_VERDICT_REJECT_SPAM);
    assert_log(&r, "Query_FILTER_RBL(spoof.example.multi.surbl.test 127.0.0.2,1)=found list\n");
    result_free(&r);
    cfg_free(c);
    dns_stop(&d);
}

/* test_filter_surbl_cap_and_none - surbl_max_lookups caps the domains;
 * a message without URIs passes at once, with nothing in flight. */
static void test_filter_surbl_cap_and_none(void **state)
{
    (void)state;
    struct fake_dns d;
    dns_start(&d, rules, false);
    struct config *c = conf("surbl_zones = multi.surbl.test:reject\ndns_servers = 127.0.0.1:%u\n"
                            "dns_timeout_ms = %u\nsurbl_max_lookups = 2\n",
                            d.port, LONG_TIMEOUT_MS);
    struct result r = {0};
    run_one(c,
            MSG("http://a.one.example http://b.one.example http://two.example "
                "http://bad.example"),
            &r);
    assert_int_equal(r.v, SESS_VERDICT_PASS);
    assert_int_equal(atomic_load(&d.queries), 2);
    assert_log(&r, "more URI domains than surbl_max_lookups (2)");
    assert_log(&r, "Query_FILTER_RBL(one.example.multi.surbl.test ,1)=not found list\n");
    assert_log(&r, "Query_FILTER_RBL(two.example.multi.surbl.test ,2)=not found list\n");
    assert_false(has(&r, "bad.example"));
    result_free(&r);
    struct result n = {0};
    run_one(c, MSG("no links here, only text."), &n);
    assert_int_equal(n.v, SESS_VERDICT_PASS);
    assert_log(&n, "SURBL verdict: no URI domains: pass\n");
    result_free(&n);
    cfg_free(c);
    dns_stop(&d);
}

/* test_filter_surbl_concurrent - many jobs share the engine's socket; each
 * gets its own verdict whichever job's receive took the datagram. */
static void test_filter_surbl_concurrent(void **state)
{
    (void)state;
    enum { N = 40 };
    struct fake_dns d;
    dns_start(&d, rules, false);
    struct config *c = surbl_conf(d.port, LONG_TIMEOUT_MS, "tempfail");
    static const char *const kinds[] = {MSG("http://bad.example"), MSG("http://quar.example"),
                                        MSG("http://good.example"), MSG("plain")};
    static const enum sess_verdict want[] = {SESS_VERDICT_REJECT_SPAM, SESS_VERDICT_QUARANTINE,
                                             SESS_VERDICT_PASS, SESS_VERDICT_PASS};
    const char *msgs[N];
    size_t lens[N];
    struct result res[N];
    memset(res, 0, sizeof res);
    for (int i = 0; i < N; i++) {
        msgs[i] = kinds[i % 4];
        lens[i] = strlen(msgs[i]);
    }
    run_jobs(c, msgs, lens, res, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(res[i].v, want[i % 4]);
        result_free(&res[i]);
    }
    assert_int_equal(atomic_load(&d.queries), 3 * 3 * (N / 4));
    cfg_free(c);
    dns_stop(&d);
}

/* ---- tests: antivirus -------------------------------------------------------------------- */

/* clam_conf - clamd at spec with a timeout, policy and size cap. */
static struct config *clam_conf(const char *spec, unsigned timeout_ms, const char *action,
                                const char *failure, const char *max)
{
    return conf("clamd = %s\nclamd_timeout_ms = %u\nvirus_action = %s\nscanner_failure = %s\n"
                "clamd_max_size = %s\n",
                spec, timeout_ms, action, failure, max);
}

/* test_filter_clamd_clean - the whole message reaches clamd intact. */
static void test_filter_clamd_clean(void **state)
{
    (void)state;
    struct fake_clamd k;
    clamd_start(&k, CLAM_OK, false);
    struct config *c = clam_conf(k.spec, LONG_TIMEOUT_MS, "reject", "tempfail", "25M");
    size_t len = 300 * 1024 + 17; /* several chunks and several sendmsg */
    char *msg = malloc(len);
    for (size_t i = 0; i < len; i++)
        msg[i] = (char)('a' + i % 26);
    struct result r = {0};
    const char *m = msg;
    run_jobs(c, &m, &len, &r, 1);
    assert_int_equal(r.v, SESS_VERDICT_PASS);
    assert_log(&r, "Antivirus: clean\n");
    assert_true(clamd_last(&k, msg, len));
    free(msg);
    result_free(&r);
    cfg_free(c);
    clamd_stop(&k);
}

/* test_filter_clamd_found - FOUND rejects naming the virus, or quarantines. */
static void test_filter_clamd_found(void **state)
{
    (void)state;
    struct fake_clamd k;
    clamd_start(&k, CLAM_FOUND, false);
    struct config *c = clam_conf(k.spec, LONG_TIMEOUT_MS, "reject", "tempfail", "25M");
    struct result r = {0};
    run_one(c, MSG("X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR"), &r);
    assert_int_equal(r.v, SESS_VERDICT_REJECT_VIRUS);
    assert_string_equal(r.detail, "Eicar-Test-Signature");
    assert_log(&r, "Antivirus: stream: Eicar-Test-Signature FOUND: reject\n");
    result_free(&r);
    cfg_free(c);
    c = clam_conf(k.spec, LONG_TIMEOUT_MS, "quarantine", "tempfail", "25M");
    struct result q = {0};
    run_one(c, MSG("eicar"), &q);
    assert_int_equal(q.v, SESS_VERDICT_QUARANTINE);
    assert_string_equal(q.detail, "virus Eicar-Test-Signature");
    assert_log(&q, "Antivirus: stream: Eicar-Test-Signature FOUND: quarantine\n");
    result_free(&q);
    cfg_free(c);
    clamd_stop(&k);
}

/* test_filter_clamd_tcp - clamd over TCP. */
static void test_filter_clamd_tcp(void **state)
{
    (void)state;
    struct fake_clamd k;
    clamd_start(&k, CLAM_FOUND, true);
    struct config *c = clam_conf(k.spec, LONG_TIMEOUT_MS, "reject", "tempfail", "25M");
    struct result r = {0};
    run_one(c, MSG("eicar"), &r);
    assert_int_equal(r.v, SESS_VERDICT_REJECT_VIRUS);
    assert_int_equal(atomic_load(&k.conns), 1);
    result_free(&r);
    cfg_free(c);
    clamd_stop(&k);
}

/* test_filter_clamd_unreachable - no clamd: scanner_failure decides, and
 * the failure is logged either way. */
static void test_filter_clamd_unreachable(void **state)
{
    (void)state;
    struct config *c = clam_conf("unix:/tmp/mxring-test-no-such-clamd.sock", LONG_TIMEOUT_MS,
                                 "reject", "tempfail", "25M");
    struct result r = {0};
    run_one(c, MSG("hello"), &r);
    assert_int_equal(r.v, SESS_VERDICT_TEMPFAIL);
    assert_log(&r, "Antivirus: scan failed: connect to unix:/tmp/mxring-test-no-such-clamd.sock:");
    assert_log(&r, ": tempfail\n");
    result_free(&r);
    cfg_free(c);
    c = clam_conf("unix:/tmp/mxring-test-no-such-clamd.sock", LONG_TIMEOUT_MS, "reject", "accept",
                  "25M");
    struct result a = {0};
    run_one(c, MSG("hello"), &a);
    assert_int_equal(a.v, SESS_VERDICT_PASS);
    assert_log(&a, "Antivirus: scan failed: connect to");
    assert_log(&a, "accepted unscanned (scanner_failure = accept)\n");
    result_free(&a);
    cfg_free(c);
}

/* test_filter_clamd_timeout - clamd reads but never answers: the receive is
 * cancelled at clamd_timeout_ms. */
static void test_filter_clamd_timeout(void **state)
{
    (void)state;
    struct fake_clamd k;
    clamd_start(&k, CLAM_SILENT, false);
    struct config *c = clam_conf(k.spec, SHORT_TIMEOUT_MS, "reject", "tempfail", "25M");
    struct result r = {0};
    run_one(c, MSG("hello"), &r);
    assert_int_equal(r.v, SESS_VERDICT_TEMPFAIL);
    assert_log(&r, "Antivirus: scan failed: timeout after 200 ms: tempfail\n");
    result_free(&r);
    cfg_free(c);
    clamd_stop(&k);
}

/* test_filter_clamd_error_replies - ERROR and a hang-up are failures. */
static void test_filter_clamd_error_replies(void **state)
{
    (void)state;
    static const enum clam_mode modes[] = {CLAM_ERROR, CLAM_HANGUP};
    static const char *const logs[] = {"Antivirus: scan failed: clamd: Can't allocate memory ERROR",
                                       "Antivirus: scan failed: "};
    for (size_t i = 0; i < 2; i++) {
        struct fake_clamd k;
        clamd_start(&k, modes[i], false);
        struct config *c = clam_conf(k.spec, LONG_TIMEOUT_MS, "reject", "tempfail", "25M");
        struct result r = {0};
        run_one(c, MSG("hello"), &r);
        assert_int_equal(r.v, SESS_VERDICT_TEMPFAIL);
        assert_log(&r, logs[i]);
        result_free(&r);
        cfg_free(c);
        clamd_stop(&k);
    }
}

/* test_filter_clamd_size_cap - bigger than clamd_max_size: not scanned,
 * logged, passed; clamd is not contacted. */
static void test_filter_clamd_size_cap(void **state)
{
    (void)state;
    struct fake_clamd k;
    clamd_start(&k, CLAM_FOUND, false);
    struct config *c = clam_conf(k.spec, LONG_TIMEOUT_MS, "reject", "tempfail", "1K");
    char msg[2048];
    memset(msg, 'x', sizeof msg);
    const char *m = msg;
    size_t len = sizeof msg;
    struct result r = {0};
    run_jobs(c, &m, &len, &r, 1);
    assert_int_equal(r.v, SESS_VERDICT_PASS);
    assert_log(&r, "Antivirus: not scanned: 2048 octets over clamd_max_size\n");
    assert_int_equal(atomic_load(&k.conns), 0);
    result_free(&r);
    cfg_free(c);
    clamd_stop(&k);
}

/* ---- tests: both filters ------------------------------------------------------------------ */

/* both_conf - SURBL (ZONES) and clamd. */
static struct config *both_conf(uint16_t port, const char *spec, const char *dns_failure,
                                unsigned clam_ms)
{
    return conf("surbl_zones = " ZONES "\ndns_servers = 127.0.0.1:%u\ndns_timeout_ms = %u\n"
                "dns_failure = %s\nclamd = %s\nclamd_timeout_ms = %u\n",
                port, LONG_TIMEOUT_MS, dns_failure, spec, clam_ms);
}

/* test_filter_both_combined - REJECT_VIRUS > REJECT_SPAM > TEMPFAIL >
 * QUARANTINE > PASS, both filters running side by side. */
static void test_filter_both_combined(void **state)
{
    (void)state;
    struct fake_dns d;
    dns_start(&d, rules, false);
    struct fake_clamd found, clean;
    clamd_start(&found, CLAM_FOUND, false);
    struct config *c = both_conf(d.port, found.spec, "pass", LONG_TIMEOUT_MS);
    struct result r = {0};
    run_one(c, MSG("http://bad.example"), &r); /* spam reject + virus */
    assert_int_equal(r.v, SESS_VERDICT_REJECT_VIRUS);
    assert_log(&r, "SURBL verdict: bad.example listed in multi.surbl.test: reject\n");
    assert_log(&r, "Antivirus: stream: Eicar-Test-Signature FOUND: reject\n");
    result_free(&r);
    cfg_free(c);
    clamd_stop(&found);

    clamd_start(&clean, CLAM_OK, false);
    c = both_conf(d.port, clean.spec, "pass", LONG_TIMEOUT_MS);
    struct result q = {0};
    run_one(c, MSG("http://quar.example"), &q); /* quarantine + clean */
    assert_int_equal(q.v, SESS_VERDICT_QUARANTINE);
    assert_log(&q, "Antivirus: clean\n");
    result_free(&q);
    cfg_free(c);
    clamd_stop(&clean);

    c = both_conf(d.port, "unix:/tmp/mxring-test-no-such-clamd.sock", "pass", LONG_TIMEOUT_MS);
    struct result t = {0}, s = {0};
    run_one(c, MSG("http://quar.example"), &t); /* quarantine + scanner failure */
    assert_int_equal(t.v, SESS_VERDICT_TEMPFAIL);
    run_one(c, MSG("http://bad.example"), &s); /* spam reject + scanner failure */
    assert_int_equal(s.v, SESS_VERDICT_REJECT_SPAM);
    result_free(&t);
    result_free(&s);
    cfg_free(c);
    dns_stop(&d);
}

/* ---- tests: the message source ---------------------------------------------------------- */

/* big_msg - a malloc'd message of len octets: a header, filler lines, the
 * URL of a listed domain at offset at (cut across reads of odd sizes), and
 * the URL of unlisted.example near the end. */
static char *big_msg(size_t len, size_t at)
{
    static const char head[] = "From: a@b.example\r\nSubject: t\r\n\r\n";
    static const char url[] = " http://www.bad.example/x ";
    static const char late[] = " http://late.example/ \r\n";
    char *m = malloc(len);
    assert_non_null(m);
    for (size_t i = 0; i < len; i++)
        m[i] = (i % 70 == 69) ? '\n' : (char)('a' + i % 26);
    memcpy(m, head, sizeof head - 1);
    memcpy(m + at, url, sizeof url - 1);
    memcpy(m + len - sizeof late + 1, late, sizeof late - 1);
    return m;
}

/* test_filter_src_pieces_clamd - a source that returns a few octets per
 * read: clamd still receives the message intact, and the scan never asks
 * for more than one piece at a time. */
static void test_filter_src_pieces_clamd(void **state)
{
    (void)state;
    struct fake_clamd k;
    clamd_start(&k, CLAM_OK, false);
    struct config *c = clam_conf(k.spec, LONG_TIMEOUT_MS, "reject", "tempfail", "25M");
    size_t len = 3 * CLAMDIO_PIECE + 12345;
    char *msg = big_msg(len, 70000);
    static const size_t pieces[] = {1000, 7, CLAMDIO_PIECE + 1};
    for (size_t p = 0; p < MX_ARRAY_LEN(pieces); p++) {
        struct test_src ts = whole_src(msg, len);
        ts.piece = pieces[p];
        struct result r = {0};
        run_srcs(c, &ts, &r, 1);
        assert_int_equal(r.v, SESS_VERDICT_PASS);
        assert_log(&r, "Antivirus: clean\n");
        assert_true(clamd_last(&k, msg, len));
        assert_true(ts.max_cap <= CLAMDIO_PIECE);
        assert_true(ts.reads >= len / pieces[p]);
        result_free(&r);
    }
    free(msg);
    cfg_free(c);
    clamd_stop(&k);
}

/* test_filter_src_pieces_uri - the URI scan stitches 7-octet reads into its
 * prefix (the listed URL is cut across reads) and reads no further than
 * SURBL_SCAN_MAX: a URL after it is not looked up. */
static void test_filter_src_pieces_uri(void **state)
{
    (void)state;
    struct fake_dns d;
    dns_start(&d, rules, false);
    struct config *c = reject_conf(d.port);
    size_t len = SURBL_SCAN_MAX + 5000;
    char *msg = big_msg(len, 100003);
    struct test_src ts = whole_src(msg, len);
    ts.piece = 7;
    struct result r = {0};
    run_srcs(c, &ts, &r, 1);
    assert_int_equal(r.v, SESS_VERDICT_REJECT_SPAM);
    assert_log(&r, "Query_FILTER_RBL(bad.example.multi.surbl.test 127.0.0.2,1)=found list\n");
    char line[128];
    snprintf(line, sizeof line, "SURBL: only the first %u of %zu octets searched for URIs\n",
             SURBL_SCAN_MAX, len);
    assert_log(&r, line);
    assert_false(has(&r, "late.example"));
    assert_true(ts.max_cap <= SURBL_SCAN_MAX);
    assert_true(ts.reads >= SURBL_SCAN_MAX / 7);
    assert_int_equal(atomic_load(&d.queries), 1);
    result_free(&r);
    free(msg);
    cfg_free(c);
    dns_stop(&d);
}

/* test_filter_src_read_fails - a source that fails (an error, or ending
 * before its length) fails the clamd scan, which scanner_failure decides,
 * and leaves SURBL unchecked, which dns_failure decides; nothing stays in
 * flight. */
static void test_filter_src_read_fails(void **state)
{
    (void)state;
    struct fake_clamd k;
    clamd_start(&k, CLAM_FOUND, false);
    size_t len = 2 * CLAMDIO_PIECE + 10;
    char *msg = big_msg(len, 5000);
    static const char *const failure[] = {"tempfail", "accept"};
    static const enum sess_verdict want[] = {SESS_VERDICT_TEMPFAIL, SESS_VERDICT_PASS};
    for (size_t i = 0; i < 2; i++) {
        struct config *c = clam_conf(k.spec, LONG_TIMEOUT_MS, "reject", failure[i], "25M");
        struct test_src ts = whole_src(msg, len);
        ts.fail_at = CLAMDIO_PIECE + 100; /* in the second piece */
        ts.err = EIO;
        struct result r = {0};
        run_srcs(c, &ts, &r, 1);
        assert_int_equal(r.v, want[i]);
        assert_log(&r, "Antivirus: scan failed: message read at offset 65536 failed: "
                       "Input/output error: ");
        assert_false(clamd_last_ok(&k)); /* clamd never got a whole stream */
        if (i == 0)
            assert_string_equal(r.detail, "antivirus: message read at offset 65536 failed: "
                                          "Input/output error");
        result_free(&r);
        cfg_free(c);
    }
    struct config *c = clam_conf(k.spec, LONG_TIMEOUT_MS, "reject", "tempfail", "25M");
    struct test_src early = whole_src(msg, len);
    early.fail_at = 10; /* the source ends at 10 octets though it claims len */
    struct result e = {0};
    run_srcs(c, &early, &e, 1);
    assert_int_equal(e.v, SESS_VERDICT_TEMPFAIL);
    assert_log(&e, "Antivirus: scan failed: message read at offset 0 failed: ");
    result_free(&e);
    cfg_free(c);
    clamd_stop(&k);

    struct fake_dns d;
    dns_start(&d, rules, false);
    c = surbl_conf(d.port, LONG_TIMEOUT_MS, "tempfail");
    struct test_src ts = whole_src(msg, len);
    ts.fail_at = 0;
    ts.err = EIO;
    struct result s = {0};
    run_srcs(c, &ts, &s, 1);
    assert_int_equal(s.v, SESS_VERDICT_TEMPFAIL);
    assert_string_equal(s.detail, "surbl lookup failed (message read failed: Input/output error)");
    assert_log(&s, "SURBL verdict: not checked, 1 of 0 lookups failed (message read failed: "
                   "Input/output error): tempfail\n");
    assert_int_equal(atomic_load(&d.queries), 0);
    result_free(&s);
    cfg_free(c);
    free(msg);
    dns_stop(&d);
}

static int setup(void **state)
{
    (void)state;
    cb_submitted = cb_completed = 0;
    memset(&fst, 0, sizeof(fst));
    return io_uring_queue_init(256, &ring, 0) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    io_uring_queue_exit(&ring);
    return 0;
}

int main(void)
{
    struct io_uring probe;
    if (io_uring_queue_init(4, &probe, 0) != 0) {
        fprintf(stderr, "test_filter: io_uring is not available: skipped\n");
        return 77;
    }
    io_uring_queue_exit(&probe);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_wanted),
        cmocka_unit_test_setup_teardown(test_filter_surbl_listed_reject, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_surbl_not_listed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_surbl_zone_actions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_surbl_strongest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_surbl_ip_literal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_surbl_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_surbl_partial_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_surbl_retry_next_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_surbl_mismatch_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_surbl_cap_and_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_surbl_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_clamd_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_clamd_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_clamd_tcp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_clamd_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_clamd_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_clamd_error_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_clamd_size_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_both_combined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_src_pieces_clamd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_src_pieces_uri, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_src_read_fails, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
