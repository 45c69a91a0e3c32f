/* metrics.c - owns the metrics responder: its listening sockets, its
 * thread and ring, and the HTTP exchange per connection (accept -> check
 * metrics_allow -> recv until http_req_parse decides, within
 * METRICS_TIMEOUT_MS -> one response with Connection: close -> close).
 * The counters come from pool_stats, pool_sess_counters and rlog_get_stats
 * (relaxed reads of per-worker counters: nothing shared on the hot path).
 * The responder thread runs everything below metrics_start; the main
 * thread calls metrics_listen, metrics_start and metrics_stop. */
#include "metrics.h"

#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "http_req.h"
#include "metrics_fmt.h"
#include "metrics_queue.h"
#include "snap.h"

#define METRICS_RING 64
#define METRICS_CONNS_MAX 16    /* concurrent scrapes; more are closed at once */
#define METRICS_TIMEOUT_MS 5000 /* whole request, from accept */
#define METRICS_SEND_MS 5000    /* each send of the response */
#define METRICS_LISTENERS_MAX 8

/* user_data: a pointer (8-aligned) | op in the low 3 bits. */
enum mop { MOP_ACCEPT = 1, MOP_RECV, MOP_SEND, MOP_TIMEOUT, MOP_WAKE };
#define MOP_MASK 7u

struct mlistener {
    _Alignas(8) struct metrics *m;
    int fd;
    struct sockaddr_storage peer;
    socklen_t plen;
};

struct mconn {
    _Alignas(8) struct metrics *m;
    struct mconn *next; /* every open conn (freed at stop) */
    int fd;
    unsigned inflight; /* CQEs still due (ops and their link timeouts) */
    bool closing;
    uint64_t deadline_ms;
    char peer[MX_ADDR_TEXT_MAX + 2];
    char req[HTTP_REQ_MAX + 1];
    size_t len;
    struct sb out;
    size_t sent;
    struct __kernel_timespec ts;
};

struct metrics {
    _Alignas(8) struct pool *pool;
    const char *version;
    double start_time;
    struct mlistener ls[METRICS_LISTENERS_MAX];
    unsigned nls;
    int efd;
    uint64_t efd_val;
    atomic_bool stop;
    pthread_t thread;
    bool started;
    struct io_uring ring;
    struct mconn *conns;
    unsigned nconns;
    uint64_t scrapes, forbidden, errors;
    uint64_t log_sec, log_suppressed; /* the 403 log line: at most one a second */
};

/* HTTP statuses we answer with: the one table of codes and texts. */
static const struct {
    unsigned code;
    const char *text;
} statuses[] = {
    {200, "OK"},
    {400, "Bad Request"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {505, "HTTP Version Not Supported"},
};

/* status_text - the reason phrase of code. */
static const char *status_text(unsigned code)
{
    for (size_t i = 0; i < MX_ARRAY_LEN(statuses); i++)
        if (statuses[i].code == code)
            return statuses[i].text;
    return "Error";
}

/* now_ms - CLOCK_MONOTONIC in milliseconds. */
static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* get_sqe - an SQE, submitting first when the ring is full. */
static struct io_uring_sqe *get_sqe(struct metrics *m)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&m->ring);
    if (!sqe) {
        io_uring_submit(&m->ring);
        sqe = io_uring_get_sqe(&m->ring);
    }
    if (!sqe)
        die("metrics: io_uring submission queue stuck");
    return sqe;
}

/* ud - user_data of obj for op. */
static uint64_t ud(const void *obj, enum mop op)
{
    return (uint64_t)(uintptr_t)obj | op;
}

/* arm_linked - sqe (already prepared) followed by a link timeout of ms. */
static void arm_linked(struct mconn *c, struct io_uring_sqe *sqe, enum mop op, uint64_t ms)
{
    io_uring_sqe_set_data64(sqe, ud(c, op));
    sqe->flags |= IOSQE_IO_LINK;
    c->ts.tv_sec = (long long)(ms / 1000);
    c->ts.tv_nsec = (long long)(ms % 1000) * 1000000;
    struct io_uring_sqe *t = get_sqe(c->m);
    io_uring_prep_link_timeout(t, &c->ts, 0);
    io_uring_sqe_set_data64(t, ud(c, MOP_TIMEOUT));
    c->inflight += 2;
}

/* conn_recv - read more of the request, bounded by the deadline. */
static void conn_recv(struct mconn *c)
{
    uint64_t now = now_ms();
    uint64_t left = c->deadline_ms > now ? c->deadline_ms - now : 1;
    struct io_uring_sqe *sqe = get_sqe(c->m);
    io_uring_prep_recv(sqe, c->fd, c->req + c->len, sizeof(c->req) - c->len, 0);
    arm_linked(c, sqe, MOP_RECV, left);
}

/* conn_send - send the rest of the response. */
static void conn_send(struct mconn *c)
{
    struct io_uring_sqe *sqe = get_sqe(c->m);
    io_uring_prep_send(sqe, c->fd, c->out.data + c->sent, c->out.len - c->sent, MSG_NOSIGNAL);
    arm_linked(c, sqe, MOP_SEND, METRICS_SEND_MS);
}

/* conn_close - close the socket; the conn is freed once its CQEs are in. */
static void conn_close(struct mconn *c)
{
    if (!c->closing) {
        c->closing = true;
        close(c->fd);
        c->fd = -1;
    }
    if (c->inflight)
        return;
    struct mconn **pp = &c->m->conns;
    while (*pp != c)
        pp = &(*pp)->next;
    *pp = c->next;
    c->m->nconns--;
    sb_free(&c->out);
    free(c);
}

/* respond - queue one whole response (status code, body) and send it. */
static void respond(struct mconn *c, unsigned code, const char *ctype, const char *body,
                    size_t blen)
{
    sb_reset(&c->out);
    bool ok =
        sb_printf(&c->out,
                  "HTTP/1.1 %u %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                  "%sConnection: close\r\n\r\n",
                  code, status_text(code), ctype, blen, code == 405 ? "Allow: GET\r\n" : "") &&
        sb_append(&c->out, body, blen);
    if (!ok) {
        conn_close(c);
        return;
    }
    if (code != 200)
        c->m->errors += code != 403;
    c->sent = 0;
    conn_send(c);
}

/* respond_error - a short text body naming the status. */
static void respond_error(struct mconn *c, unsigned code)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%u %s\n", code, status_text(code));
    respond(c, code, "text/plain; charset=utf-8", body, (size_t)n);
}

/* snapshot - every counter, summed now. */
static void snapshot(struct metrics *m, struct metrics_snap *s)
{
    memset(s, 0, sizeof(*s));
    s->version = m->version;
    s->start_time = m->start_time;
    s->workers = m->pool->nworkers;
    s->sessions_open = atomic_load_explicit(&m->pool->sessions, memory_order_relaxed);
    pool_stats(m->pool, &s->st);
    pool_sess_counters(m->pool, &s->sess);
    if (m->pool->rlog)
        rlog_get_stats(m->pool->rlog, &s->rlog);
    s->scrapes = m->scrapes;
    s->http_refused = m->forbidden;
    s->http_errors = m->errors;
    dlv_metrics_read(&s->dlv);
    struct snap *sn = snap_current();
    mq_scan_new(sn->cfg->workdir, &s->qnew);
    snap_unref(sn);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* serve - a complete request: the exposition for /metrics, else 404. */
static void serve(struct mconn *c, const struct http_req *r)
{
    if (r->path_len != 8 || memcmp(r->path, "/metrics", 8) != 0) {
        respond_error(c, 404);
        return;
    }
    struct metrics_snap s;
    struct sb body = {0};
    c->m->scrapes++;
    snapshot(c->m, &s);
    if (!metrics_format(&s, &body)) {
        sb_free(&body);
        respond_error(c, 500);
        return;
    }
    respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", body.data, body.len);
    sb_free(&body);
}

/* on_recv - more request octets, EOF, an error or the deadline. */
static void on_recv(struct mconn *c, int res)
{
    c->inflight--;
    if (c->closing) {
        conn_close(c);
        return;
    }
    if (res == -ECANCELED || res == -ETIME) {
        respond_error(c, 408);
        return;
    }
    if (res <= 0) {
        c->m->errors++;
        conn_close(c);
        return;
    }
    c->len += (size_t)res;
    struct http_req r;
    enum http_req_status st = http_req_parse(c->req, c->len, &r);
    if (st == HTTP_REQ_INCOMPLETE && c->len < sizeof(c->req))
        conn_recv(c);
    else if (st == HTTP_REQ_OK)
        serve(c, &r);
    else
        respond_error(c, st == HTTP_REQ_INCOMPLETE ? 431 : (unsigned)st);
}

/* on_send - part of the response went out; done once it all has. */
static void on_send(struct mconn *c, int res)
{
    c->inflight--;
    if (!c->closing && res > 0) {
        c->sent += (size_t)res;
        if (c->sent < c->out.len) {
            conn_send(c);
            return;
        }
        shutdown(c->fd, SHUT_WR);
    }
    conn_close(c);
}

/* allowed - is the peer inside metrics_allow of the current snapshot? */
static bool allowed(const struct mx_addr *peer)
{
    struct snap *s = snap_current();
    const struct config *cfg = s->cfg;
    bool ok = cfg_cidr_match(cfg->metrics_allow, cfg->nmetrics_allow, peer);
    snap_unref(s);
    return ok;
}

/* log_forbidden - the 403 line, at most one a second (the rest counted). */
static void log_forbidden(struct metrics *m, const char *peer)
{
    uint64_t sec = now_ms() / 1000;
    if (sec == m->log_sec) {
        m->log_suppressed++;
        return;
    }
    fprintf(stderr, "mxringd: metrics: 403 for %s: not in metrics_allow", peer);
    if (m->log_suppressed)
        fprintf(stderr, " (%llu more refused since the last line)",
                (unsigned long long)m->log_suppressed);
    fputc('\n', stderr);
    m->log_sec = sec;
    m->log_suppressed = 0;
}

/* accept_arm - wait for the next connection on l. */
static void accept_arm(struct mlistener *l)
{
    struct io_uring_sqe *sqe = get_sqe(l->m);
    l->plen = sizeof(l->peer);
    io_uring_prep_accept(sqe, l->fd, (struct sockaddr *)&l->peer, &l->plen, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ud(l, MOP_ACCEPT));
}

/* on_accept - a new scrape connection: 403 outside metrics_allow, else
 * read its request. */
static void on_accept(struct mlistener *l, int res)
{
    struct metrics *m = l->m;
    struct sockaddr_storage peer = l->peer;
    if (!atomic_load_explicit(&m->stop, memory_order_relaxed))
        accept_arm(l);
    if (res < 0)
        return;
    struct mconn *c = m->nconns < METRICS_CONNS_MAX ? calloc(1, sizeof(*c)) : NULL;
    if (!c) {
        close(res);
        m->errors++;
        return;
    }
    c->m = m;
    c->fd = res;
    c->deadline_ms = now_ms() + METRICS_TIMEOUT_MS;
    c->next = m->conns;
    m->conns = c;
    m->nconns++;
    struct mx_addr addr;
    mx_addr_from_sockaddr(&addr, (const struct sockaddr *)&peer);
    snprintf(c->peer, sizeof(c->peer), "[%s]", addr.text);
    if (!allowed(&addr)) {
        m->forbidden++;
        log_forbidden(m, c->peer);
        respond_error(c, 403);
        return;
    }
    conn_recv(c);
}

/* handle - one completion. */
static void handle(struct metrics *m, struct io_uring_cqe *cqe)
{
    uint64_t data = io_uring_cqe_get_data64(cqe);
    void *obj = (void *)(uintptr_t)(data & ~(uint64_t)MOP_MASK);
    switch ((enum mop)(data & MOP_MASK)) {
    case MOP_ACCEPT: on_accept(obj, cqe->res); break;
    case MOP_RECV: on_recv(obj, cqe->res); break;
    case MOP_SEND: on_send(obj, cqe->res); break;
    case MOP_TIMEOUT: {
        struct mconn *c = obj;
        c->inflight--;
        if (c->closing)
            conn_close(c);
        break;
    }
    case MOP_WAKE: atomic_store_explicit(&m->stop, true, memory_order_relaxed); break;
    default: break;
    }
}

/* metrics_main - the responder thread: the loop until metrics_stop. */
static void *metrics_main(void *arg)
{
    struct metrics *m = arg;
    for (unsigned i = 0; i < m->nls; i++)
        accept_arm(&m->ls[i]);
    struct io_uring_sqe *sqe = get_sqe(m);
    io_uring_prep_read(sqe, m->efd, &m->efd_val, sizeof(m->efd_val), 0);
    io_uring_sqe_set_data64(sqe, ud(m, MOP_WAKE));
    while (!atomic_load_explicit(&m->stop, memory_order_relaxed)) {
        int r = io_uring_submit_and_wait(&m->ring, 1);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
            die("metrics: io_uring_submit_and_wait: %s", strerror(-r));
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&m->ring, head, cqe)
        {
            handle(m, cqe);
            n++;
        }
        io_uring_cq_advance(&m->ring, n);
    }
    return NULL;
}

/* bind_one - a listening socket for a. */
static int bind_one(const struct cfg_listen *a)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (a->ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, 64) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

struct metrics *metrics_listen(const struct config *cfg)
{
    if (cfg->nmetrics_listen == 0)
        return NULL;
    if (cfg->nmetrics_listen > METRICS_LISTENERS_MAX)
        die("metrics_listen: at most %d addresses", METRICS_LISTENERS_MAX);
    struct metrics *m = calloc(1, sizeof(*m));
    if (!m)
        die("out of memory");
    m->efd = -1;
    for (size_t i = 0; i < cfg->nmetrics_listen; i++) {
        m->ls[i].m = m;
        m->ls[i].fd = bind_one(&cfg->metrics_listen[i]);
        if (m->ls[i].fd < 0)
            die("metrics_listen %s: %s", cfg->metrics_listen[i].text, strerror(errno));
        m->nls++;
    }
    return m;
}

void metrics_start(struct metrics *m, struct pool *pool, const char *version)
{
    if (!m)
        return;
    m->pool = pool;
    m->version = version;
    m->start_time = (double)time(NULL);
    m->efd = eventfd(0, EFD_CLOEXEC);
    if (m->efd < 0)
        die("metrics: eventfd: %s", strerror(errno));
    int r = io_uring_queue_init(METRICS_RING, &m->ring, 0);
    if (r < 0)
        die("metrics: io_uring setup failed: %s", strerror(-r));
    r = pthread_create(&m->thread, NULL, metrics_main, m);
    if (r)
        die("metrics: cannot start the thread: %s", strerror(r));
    m->started = true;
}

void metrics_stop(struct metrics *m)
{
    if (!m)
        return;
    if (m->started) {
        uint64_t one = 1;
        if (write(m->efd, &one, sizeof(one)) < 0)
            die("metrics: wake: %s", strerror(errno));
        pthread_join(m->thread, NULL);
        io_uring_queue_exit(&m->ring); /* cancels what is still in flight */
    }
    while (m->conns) {
        struct mconn *c = m->conns;
        m->conns = c->next;
        if (c->fd >= 0)
            close(c->fd);
        sb_free(&c->out);
        free(c);
    }
    for (unsigned i = 0; i < m->nls; i++)
        close(m->ls[i].fd);
    if (m->efd >= 0)
        close(m->efd);
    free(m);
}
