/* dnsq.c - the DNS lookup engine of dnsq.h, factored out of the SURBL
 * filter: one UDP socket per address family per engine (made on first
 * use), a table of queries waiting for a reply keyed by their random id,
 * and batches. Every function runs on the engine's worker thread; nothing
 * here blocks.
 *
 * Operations: each in-flight operation of a batch is a struct uring_cb
 * counted in the batch's `pending`; a batch is finished only when every
 * query has its outcome AND every CQE of its operations came back (the
 * timeout and the receives are cancelled, and the cancels waited for).
 * Cancel requests themselves carry user_data 0 and are ignored by the
 * dispatcher. Each running batch keeps one recvmsg armed on the socket(s)
 * it sent queries on (re-armed after every datagram); a datagram is
 * matched to its query engine-wide (id, sender = one of that batch's
 * servers, then dnsmsg_parse over the question and type), whichever batch's
 * receive got it, so an idle engine has nothing in flight. */
#include "dnsq.h"

#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "uring.h"
#include "util.h"

#define DNSQ_ID_BUCKETS 256u /* query-id hash chains per engine */
#define DNSQ_RND_POOL 64u    /* random octets drawn per getrandom() */

_Static_assert((DNSQ_ID_BUCKETS & (DNSQ_ID_BUCKETS - 1)) == 0, "buckets: power of two");

enum fam { FAM_V4 = 0, FAM_V6, FAM_N };

struct dnsq_engine {
    struct io_uring *ring;
    struct dnsq_stats *st;                   /* the creator's counters */
    struct dnsq_stats own;                   /* ... or these (not counted) */
    int udp[FAM_N];                          /* -1 until first used */
    struct dnsq_query *ids[DNSQ_ID_BUCKETS]; /* queries waiting for a reply */
    uint8_t rnd[DNSQ_RND_POOL];
    unsigned rnd_left;
    uint64_t xs;      /* fallback generator state */
    unsigned batches; /* running */
};

struct dnsq_query {
    struct uring_cb cb; /* its sendmsg; first member */
    struct dnsq_batch *b;
    struct dnsq_item *it;
    struct dnsq_query *hnext; /* in e->ids while waiting and hashed */
    bool hashed;
    bool sending; /* sendmsg in flight */
    uint16_t id;
    uint16_t wlen; /* octets of wire */
    struct msghdr mh;
    struct iovec iov;
    uint8_t wire[DNSMSG_QUERY_MAX];
};

struct dnsq_rx {
    struct uring_cb cb; /* its recvmsg; first member */
    struct dnsq_batch *b;
    int fd; /* -1: not used by this batch */
    bool armed;
    struct msghdr mh;
    struct iovec iov;
    struct sockaddr_storage from;
    uint8_t buf[DNSMSG_UDP_MAX];
};

struct dnsq_batch {
    struct uring_cb tmo_cb; /* batch-level timeout; first member */
    struct dnsq_engine *e;
    const struct cfg_listen *servers;
    size_t nservers;
    dnsq_done_fn done;
    void *arg;
    struct dnsq_query *q;
    unsigned nq, unanswered, pending;
    unsigned round; /* 0: first server; 1: the retry on the next */
    bool tmo_armed, stopping;
    struct __kernel_timespec ts;
    uint64_t retry_ms; /* the remaining time given to round 1 */
    struct dnsq_rx rx[FAM_N];
};

static void batch_progress(struct dnsq_batch *b);

/* count - bump one of the engine's counters (one writer: relaxed load and
 * store, read with relaxed loads by the metrics). */
static void count(uint64_t *ctr)
{
    __atomic_store_n(ctr, __atomic_load_n(ctr, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

/* ---- engine -------------------------------------------------------------- */

/* dnsq_engine_new - see dnsq.h. */
struct dnsq_engine *dnsq_engine_new(struct io_uring *ring, unsigned worker, struct dnsq_stats *st)
{
    struct dnsq_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    e->ring = ring;
    e->st = st ? st : &e->own;
    for (int i = 0; i < FAM_N; i++)
        e->udp[i] = -1;
    e->xs = (uint64_t)(uintptr_t)e ^ (uint64_t)t.tv_nsec ^ ((uint64_t)worker << 32) ^
            0x9e3779b97f4a7c15ull;
    return e;
}

/* dnsq_engine_free - see dnsq.h; the worker frees it after its ring is
 * gone (no batch runs then, so nothing of the engine is in flight). */
void dnsq_engine_free(struct dnsq_engine *e)
{
    if (!e)
        return;
    if (e->batches)
        die("dnsq_engine_free: %u DNS batches still running", e->batches);
    for (int i = 0; i < FAM_N; i++)
        if (e->udp[i] >= 0)
            close(e->udp[i]);
    free(e);
}

/* e_random16 - a query id: getrandom() octets, a xorshift stream if the
 * kernel refuses. */
static uint16_t e_random16(struct dnsq_engine *e)
{
    if (e->rnd_left < 2) {
        ssize_t r = getrandom(e->rnd, sizeof e->rnd, GRND_NONBLOCK);
        e->rnd_left = r == (ssize_t)sizeof e->rnd ? (unsigned)sizeof e->rnd : 0;
    }
    if (e->rnd_left >= 2) {
        e->rnd_left -= 2;
        return (uint16_t)(e->rnd[e->rnd_left] << 8 | e->rnd[e->rnd_left + 1]);
    }
    e->xs ^= e->xs << 13;
    e->xs ^= e->xs >> 7;
    e->xs ^= e->xs << 17;
    return (uint16_t)(e->xs >> 24);
}

/* e_udp - the engine's UDP socket for a family (created on first use);
 * -1 with errno set when it cannot be made. */
static int e_udp(struct dnsq_engine *e, int family)
{
    enum fam f = family == AF_INET6 ? FAM_V6 : FAM_V4;
    if (e->udp[f] < 0)
        e->udp[f] = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    return e->udp[f];
}

/* e_hash - enter q in the table of queries waiting for a reply. */
static void e_hash(struct dnsq_engine *e, struct dnsq_query *q)
{
    struct dnsq_query **h = &e->ids[q->id & (DNSQ_ID_BUCKETS - 1)];
    q->hnext = *h;
    *h = q;
    q->hashed = true;
}

/* e_unhash - remove q from that table (if it is there). */
static void e_unhash(struct dnsq_engine *e, struct dnsq_query *q)
{
    if (!q->hashed)
        return;
    struct dnsq_query **p = &e->ids[q->id & (DNSQ_ID_BUCKETS - 1)];
    while (*p != q)
        p = &(*p)->hnext;
    *p = q->hnext;
    q->hashed = false;
}

/* ---- results ------------------------------------------------------------- */

/* q_finish - q has its outcome: leave the table, count it. */
static void q_finish(struct dnsq_query *q, enum dnsq_state st, const char *why)
{
    struct dnsq_batch *b = q->b;
    e_unhash(b->e, q);
    q->it->state = st;
    q->it->why = why;
    b->unanswered--;
    if (st == DNSQ_FAILED)
        count(&b->e->st->failures);
}

/* q_result - apply a parsed reply to q. */
static void q_result(struct dnsq_query *q, const struct dnsmsg_result *r)
{
    switch (r->status) {
    case DNSMSG_ANSWER:
        _Static_assert(sizeof q->it->addr == sizeof r->addr, "dnsq_item.addr = dnsmsg_result.addr");
        memcpy(q->it->addr, r->addr, sizeof q->it->addr);
        q->it->naddr = r->naddr;
        q->it->ttl = r->ttl;
        q_finish(q, DNSQ_ANSWER, NULL);
        break;
    case DNSMSG_NODATA:
    case DNSMSG_NXDOMAIN: q_finish(q, DNSQ_NONE, NULL); break;
    default: q_finish(q, DNSQ_FAILED, dnsmsg_status_name(r->status)); break;
    }
}

/* sa_same - the same address and port? */
static bool sa_same(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

/* from_server - did the datagram come from a DNS server of q's batch? */
static bool from_server(const struct dnsq_query *q, const struct sockaddr_storage *from)
{
    for (size_t i = 0; i < q->b->nservers; i++)
        if (sa_same(&q->b->servers[i].ss, from))
            return true;
    return false;
}

/* q_type - the record type q asks for. */
static uint16_t q_type(const struct dnsq_query *q)
{
    return q->it->type ? q->it->type : DNSMSG_TYPE_A;
}

/* e_dispatch - a datagram arrived: give it to the query it answers (of any
 * batch). Returns that query's batch, or NULL when nothing matched. */
static struct dnsq_batch *e_dispatch(struct dnsq_engine *e, const uint8_t *pkt, size_t len,
                                     const struct sockaddr_storage *from)
{
    if (len < DNSMSG_HDR_LEN)
        return NULL;
    uint16_t id = (uint16_t)(pkt[0] << 8 | pkt[1]);
    for (struct dnsq_query *q = e->ids[id & (DNSQ_ID_BUCKETS - 1)]; q; q = q->hnext) {
        if (q->id != id || q->it->state != DNSQ_WAIT || !from_server(q, from))
            continue;
        struct dnsmsg_result r;
        if (dnsmsg_parse(pkt, len, id, q->it->name, q_type(q), &r) == DNSMSG_MISMATCH)
            continue;
        q_result(q, &r);
        return q->b;
    }
    return NULL;
}

/* ---- operations ---------------------------------------------------------- */

/* rx_arm - (re-)arm the batch's recvmsg on rx's socket. */
static void rx_arm(struct dnsq_rx *rx)
{
    struct dnsq_batch *b = rx->b;
    rx->iov = (struct iovec){rx->buf, sizeof rx->buf};
    rx->mh = (struct msghdr){.msg_name = &rx->from,
                             .msg_namelen = sizeof rx->from,
                             .msg_iov = &rx->iov,
                             .msg_iovlen = 1};
    struct io_uring_sqe *sqe = uring_get_sqe(b->e->ring);
    io_uring_prep_recvmsg(sqe, rx->fd, &rx->mh, 0);
    io_uring_sqe_set_data64(sqe, uring_cb_data(&rx->cb));
    rx->armed = true;
    b->pending++;
}

/* on_rx - a datagram (or the end of the receive). */
static void on_rx(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    struct dnsq_rx *rx = (struct dnsq_rx *)cb;
    struct dnsq_batch *b = rx->b;
    rx->armed = false;
    if (cqe->res >= 0) { /* a cut datagram (MSG_TRUNC) is parsed as far as it goes */
        struct dnsq_batch *other = e_dispatch(b->e, rx->buf, (size_t)cqe->res, &rx->from);
        if (other && other != b)
            batch_progress(other); /* may finish that batch; ours holds a pending op */
    }
    b->pending--;
    bool transient = cqe->res >= 0 || cqe->res == -EINTR || cqe->res == -EAGAIN ||
                     cqe->res == -ENOBUFS || cqe->res == -ENOMEM;
    if (!b->stopping && b->unanswered > 0 && transient)
        rx_arm(rx);
    batch_progress(b);
}

/* on_sent - a query's sendmsg completed. */
static void on_sent(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    struct dnsq_query *q = (struct dnsq_query *)cb;
    struct dnsq_batch *b = q->b;
    q->sending = false;
    b->pending--;
    if (cqe->res < 0 && q->it->state == DNSQ_WAIT)
        q_finish(q, DNSQ_FAILED, "send failed");
    batch_progress(b);
}

/* q_send - send q to server srv (the batch's receive on that socket armed
 * first); q fails when there is no socket. */
static void q_send(struct dnsq_query *q, const struct cfg_listen *srv)
{
    struct dnsq_batch *b = q->b;
    int fd = e_udp(b->e, srv->ss.ss_family);
    if (fd < 0) {
        q_finish(q, DNSQ_FAILED, "no UDP socket");
        return;
    }
    struct dnsq_rx *rx = &b->rx[srv->ss.ss_family == AF_INET6 ? FAM_V6 : FAM_V4];
    rx->fd = fd;
    if (!rx->armed)
        rx_arm(rx);
    q->iov = (struct iovec){q->wire, q->wlen};
    q->mh = (struct msghdr){
        .msg_name = (void *)&srv->ss, .msg_namelen = srv->len, .msg_iov = &q->iov, .msg_iovlen = 1};
    struct io_uring_sqe *sqe = uring_get_sqe(b->e->ring);
    io_uring_prep_sendmsg(sqe, fd, &q->mh, 0);
    io_uring_sqe_set_data64(sqe, uring_cb_data(&q->cb));
    q->sending = true;
    b->pending++;
    count(&b->e->st->queries);
}

/* batch_fail_waiting - every query still waiting fails with why. */
static void batch_fail_waiting(struct dnsq_batch *b, const char *why)
{
    for (unsigned i = 0; i < b->nq; i++)
        if (b->q[i].it->state == DNSQ_WAIT)
            q_finish(&b->q[i], DNSQ_FAILED, why);
}

/* batch_retry - round 1: the unanswered queries go to the next server. */
static void batch_retry(struct dnsq_batch *b)
{
    b->round = 1;
    for (unsigned i = 0; i < b->nq; i++) {
        struct dnsq_query *q = &b->q[i];
        if (q->it->state == DNSQ_WAIT && !q->sending)
            q_send(q, &b->servers[1]);
    }
    if (b->unanswered == 0)
        return;
    uring_timeout_arm(b->e->ring, &b->ts, b->retry_ms, uring_cb_data(&b->tmo_cb));
    b->tmo_armed = true;
    b->pending++;
}

/* on_tmo - the batch-level timeout fired (or was removed). */
static void on_tmo(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    struct dnsq_batch *b = (struct dnsq_batch *)cb;
    b->tmo_armed = false;
    b->pending--;
    if (cqe->res == -ETIME && !b->stopping) {
        if (b->round == 0 && b->nservers > 1 && b->retry_ms > 0)
            batch_retry(b);
        else
            batch_fail_waiting(b, "timeout");
    }
    batch_progress(b);
}

/* ---- batches ------------------------------------------------------------- */

/* batch_queries - build one query per valid name (invalid ones, and those
 * the caller marked DNSQ_SKIPPED, are SKIPPED). */
static void batch_queries(struct dnsq_batch *b, struct dnsq_item *items, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct dnsq_query *q = &b->q[i];
        q->cb.fn = on_sent;
        q->b = b;
        q->it = &items[i];
        q->id = e_random16(b->e);
        size_t w = items[i].state == DNSQ_SKIPPED
                       ? 0
                       : dnsmsg_build(q->id, items[i].name, q_type(q), q->wire, sizeof q->wire);
        items[i].state = w ? DNSQ_WAIT : DNSQ_SKIPPED;
        items[i].why = NULL;
        items[i].ttl = 0;
        items[i].naddr = 0;
        memset(items[i].addr, 0, sizeof items[i].addr);
        q->wlen = (uint16_t)w;
        if (w) {
            b->unanswered++;
            e_hash(b->e, q);
        }
    }
    b->nq = n;
}

/* batch_send_all - every query to the first server, and the timeout (half
 * of it when there is a second server). */
static void batch_send_all(struct dnsq_batch *b, unsigned timeout_ms)
{
    if (b->nservers == 0)
        batch_fail_waiting(b, "no dns_servers");
    for (unsigned i = 0; i < b->nq && b->nservers; i++)
        if (b->q[i].it->state == DNSQ_WAIT)
            q_send(&b->q[i], &b->servers[0]);
    if (b->unanswered) {
        uint64_t first = b->nservers > 1 ? timeout_ms / 2 : timeout_ms;
        b->retry_ms = timeout_ms - first;
        uring_timeout_arm(b->e->ring, &b->ts, first, uring_cb_data(&b->tmo_cb));
        b->tmo_armed = true;
        b->pending++;
    }
}

/* dnsq_lookup - see dnsq.h. */
void dnsq_lookup(struct dnsq_engine *e, const struct cfg_listen *servers, size_t nservers,
                 unsigned timeout_ms, struct dnsq_item *items, unsigned n, dnsq_done_fn done,
                 void *arg)
{
    struct dnsq_batch *b = calloc(1, sizeof *b);
    struct dnsq_query *q = calloc((size_t)n + 1, sizeof *q);
    if (!b || !q) {
        free(b);
        free(q);
        for (unsigned i = 0; i < n; i++)
            items[i].state = DNSQ_FAILED, items[i].why = "out of memory";
        done(arg);
        return;
    }
    e->batches++;
    *b = (struct dnsq_batch){.tmo_cb.fn = on_tmo,
                             .e = e,
                             .servers = servers,
                             .nservers = nservers,
                             .done = done,
                             .arg = arg,
                             .q = q};
    for (int f = 0; f < FAM_N; f++)
        b->rx[f] = (struct dnsq_rx){.cb.fn = on_rx, .b = b, .fd = -1};
    batch_queries(b, items, n);
    batch_send_all(b, timeout_ms);
    batch_progress(b);
}

/* batch_progress - after any event: once every query has its outcome stop
 * the timeout and the receives; once their CQEs are back, finish. */
static void batch_progress(struct dnsq_batch *b)
{
    struct io_uring *ring = b->e->ring;
    if (b->unanswered == 0 && !b->stopping) {
        b->stopping = true;
        if (b->tmo_armed)
            uring_timeout_cancel(ring, uring_cb_data(&b->tmo_cb));
        for (int f = 0; f < FAM_N; f++)
            if (b->rx[f].armed)
                uring_cancel(ring, uring_cb_data(&b->rx[f].cb));
    }
    if (!b->stopping || b->pending)
        return;
    dnsq_done_fn done = b->done;
    void *arg = b->arg;
    b->e->batches--;
    free(b->q);
    free(b);
    done(arg);
}
