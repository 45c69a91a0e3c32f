/* surbl.c - SURBL/URIBL lookups of one worker: a check per message
 * collects the registered domains of the message's URI hosts and sends one
 * A query per domain and zone over UDP through the worker's io_uring ring,
 * then decides on the answers. Every function runs on the engine's worker
 * thread; nothing here blocks.
 *
 * Operations: each in-flight operation is a struct uring_cb counted in the
 * check's `pending`; a check is finished only when every query has its
 * outcome AND every CQE of its operations came back (the timeout and the
 * receives are cancelled, and the cancels waited for). Cancel requests
 * themselves carry user_data 0 and are ignored by the dispatcher.
 *
 * One UDP socket per address family per engine, created on first use.
 * Each running check keeps one recvmsg armed on the socket(s) it sent
 * queries on (re-armed after every datagram); a datagram is matched to its
 * query engine-wide (random 16-bit id, sender = a configured server, then
 * dnsmsg_parse_a over the question), whichever check's receive got it. That
 * way every operation belongs to a check and an idle engine has nothing in
 * flight. Lookups are numbered 1..n in query order (domain by domain in
 * first-seen order, and for each domain the zones in configuration order);
 * that number is the N of "Query_FILTER_RBL(<name> <ip>,N)". One
 * check-level timeout bounds the lookups to dns_timeout_ms; with two or
 * more dns_servers the queries still unanswered at half of it go to the
 * second server. The first SURBL_SCAN_MAX octets of a message are read
 * into one buffer and searched for URIs; the buffer is freed before the
 * queries go out. */
#include "surbl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dnsmsg.h"
#include "regdom.h"
#include "uri.h"
#include "uring.h"
#include "util.h"

#define SURBL_HOSTS_MIN 16u   /* hosts extracted: 2 x surbl_max_lookups, */
#define SURBL_HOSTS_MAX 256u  /* within these bounds (see uri_extract) */
#define SURBL_ID_BUCKETS 256u /* query-id hash chains per engine */
#define SURBL_RND_POOL 64u    /* random octets drawn per getrandom() */
#define SURBL_DETAIL_MAX 600u
#define SURBL_WHY_MAX 96u     /* why a message was not checked */
#define MS_PER_S 1000u
#define NS_PER_MS 1000000L /* now_ms */

_Static_assert((SURBL_ID_BUCKETS & (SURBL_ID_BUCKETS - 1)) == 0, "buckets: power of two");

enum fam { FAM_V4 = 0, FAM_V6, FAM_N };

struct surbl_engine {
    struct io_uring *ring;
    int udp[FAM_N];                             /* -1 until first used */
    struct dns_query *ids[SURBL_ID_BUCKETS];    /* queries waiting for a reply */
    uint8_t rnd[SURBL_RND_POOL];
    unsigned rnd_left;
    uint64_t xs;                                /* fallback generator state */
    unsigned checks;                            /* running */
};

enum q_state { Q_WAIT = 0, Q_LISTED, Q_CLEAN, Q_FAILED, Q_SKIPPED };

struct dns_query {
    struct uring_cb cb;         /* its sendmsg; first member */
    struct surbl *sj;
    struct dns_query *hnext;    /* in se->ids while Q_WAIT and hashed */
    enum q_state state;
    bool hashed;
    bool sending;               /* sendmsg in flight */
    bool has_addr;              /* an A record came back (addr is set) */
    uint16_t id;
    uint16_t wlen;              /* octets of wire */
    unsigned zone;              /* index in cfg->surbl_zones */
    unsigned dom;               /* index in sj->dom */
    const char *why;            /* Q_FAILED: reason for the log */
    uint8_t addr[4];
    struct msghdr mh;
    struct iovec iov;
    uint8_t wire[DNSMSG_QUERY_MAX];
    char name[DNSMSG_NAME_MAX + 1];
};

struct dns_rx {
    struct uring_cb cb;         /* its recvmsg; first member */
    struct surbl *sj;
    int fd;                     /* -1: not used by this check */
    bool armed;
    struct msghdr mh;
    struct iovec iov;
    struct sockaddr_storage from;
    uint8_t buf[DNSMSG_UDP_MAX];
};

struct surbl {
    struct uring_cb tmo_cb;     /* check-level timeout; first member */
    struct surbl_engine *se;
    const struct config *cfg;
    filter_log_fn log;
    filter_done_fn done;
    void *arg;
    char (*dom)[REGDOM_MAX + 1];
    unsigned ndom;
    bool capped;                /* more domains than surbl_max_lookups */
    struct dns_query *q;
    unsigned nq, unanswered, pending;
    unsigned round;             /* 0: first server; 1: the retry on the next */
    bool tmo_armed, stopping;
    char broken[SURBL_WHY_MAX]; /* not checked: why ("" = it was) */
    struct __kernel_timespec ts;
    uint64_t retry_ms;          /* the remaining time given to round 1 */
    struct dns_rx rx[FAM_N];
};

static void surbl_progress(struct surbl *sj);

/* ---- small helpers ------------------------------------------------------- */

/* now_ms - monotonic milliseconds. */
static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * MS_PER_S + (uint64_t)t.tv_nsec / (uint64_t)NS_PER_MS;
}

/* ---- engine -------------------------------------------------------------- */

/* surbl_engine_new - see surbl.h. */
struct surbl_engine *surbl_engine_new(struct io_uring *ring, unsigned worker)
{
    struct surbl_engine *se = calloc(1, sizeof(*se));
    if (!se)
        return NULL;
    se->ring = ring;
    for (int i = 0; i < FAM_N; i++)
        se->udp[i] = -1;
    se->xs = (uint64_t)(uintptr_t)se ^ now_ms() ^ ((uint64_t)worker << 32) ^ 0x9e3779b97f4a7c15ull;
    return se;
}

/* surbl_engine_free - see surbl.h; the worker frees it after its ring is
 * gone (no check runs then, so nothing of the engine is in flight). */
void surbl_engine_free(struct surbl_engine *se)
{
    if (!se)
        return;
    if (se->checks)
        die("surbl_engine_free: %u SURBL checks still running", se->checks);
    for (int i = 0; i < FAM_N; i++)
        if (se->udp[i] >= 0)
            close(se->udp[i]);
    free(se);
}

/* se_random16 - a query id: getrandom() octets, a xorshift stream if the
 * kernel refuses. */
static uint16_t se_random16(struct surbl_engine *se)
{
    if (se->rnd_left < 2) {
        ssize_t r = getrandom(se->rnd, sizeof se->rnd, GRND_NONBLOCK);
        se->rnd_left = r == (ssize_t)sizeof se->rnd ? (unsigned)sizeof se->rnd : 0;
    }
    if (se->rnd_left >= 2) {
        se->rnd_left -= 2;
        return (uint16_t)(se->rnd[se->rnd_left] << 8 | se->rnd[se->rnd_left + 1]);
    }
    se->xs ^= se->xs << 13;
    se->xs ^= se->xs >> 7;
    se->xs ^= se->xs << 17;
    return (uint16_t)(se->xs >> 24);
}

/* se_udp - the engine's UDP socket for a family (created on first use);
 * -1 with errno set when it cannot be made. */
static int se_udp(struct surbl_engine *se, int family)
{
    enum fam f = family == AF_INET6 ? FAM_V6 : FAM_V4;
    if (se->udp[f] < 0)
        se->udp[f] = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    return se->udp[f];
}

/* se_hash - enter q in the table of queries waiting for a reply. */
static void se_hash(struct surbl_engine *se, struct dns_query *q)
{
    struct dns_query **b = &se->ids[q->id & (SURBL_ID_BUCKETS - 1)];
    q->hnext = *b;
    *b = q;
    q->hashed = true;
}

/* se_unhash - remove q from that table (if it is there). */
static void se_unhash(struct surbl_engine *se, struct dns_query *q)
{
    if (!q->hashed)
        return;
    struct dns_query **p = &se->ids[q->id & (SURBL_ID_BUCKETS - 1)];
    while (*p != q)
        p = &(*p)->hnext;
    *p = q->hnext;
    q->hashed = false;
}

/* ---- SURBL: results ------------------------------------------------------ */

/* q_finish - q has its outcome: leave the table, count it. */
static void q_finish(struct dns_query *q, enum q_state st, const char *why)
{
    struct surbl *sj = q->sj;
    se_unhash(sj->se, q);
    q->state = st;
    q->why = why;
    sj->unanswered--;
}

/* q_result - apply a parsed reply to q. */
static void q_result(struct dns_query *q, const struct dnsmsg_result *r)
{
    switch (r->status) {
    case DNSMSG_ANSWER: {
        memcpy(q->addr, r->addr, sizeof q->addr);
        q->has_addr = true;
        bool listed = r->addr[0] == 127 && !(r->addr[1] == 0 && r->addr[2] == 0 && r->addr[3] == 1);
        q_finish(q, listed ? Q_LISTED : Q_CLEAN, NULL);
        break;
    }
    case DNSMSG_NODATA:
    case DNSMSG_NXDOMAIN:
        q_finish(q, Q_CLEAN, NULL);
        break;
    default:
        q_finish(q, Q_FAILED, dnsmsg_status_name(r->status));
        break;
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

/* from_server - did the datagram come from a DNS server of q's check? */
static bool from_server(const struct dns_query *q, const struct sockaddr_storage *from)
{
    const struct config *cfg = q->sj->cfg;
    for (size_t i = 0; i < cfg->ndns_servers; i++)
        if (sa_same(&cfg->dns_servers[i].ss, from))
            return true;
    return false;
}

/* se_dispatch - a datagram arrived: give it to the query it answers (of any
 * check). Returns that query's check, or NULL when nothing matched. */
static struct surbl *se_dispatch(struct surbl_engine *se, const uint8_t *pkt, size_t len,
                                 const struct sockaddr_storage *from)
{
    if (len < DNSMSG_HDR_LEN)
        return NULL;
    uint16_t id = (uint16_t)(pkt[0] << 8 | pkt[1]);
    for (struct dns_query *q = se->ids[id & (SURBL_ID_BUCKETS - 1)]; q; q = q->hnext) {
        if (q->id != id || q->state != Q_WAIT || !from_server(q, from))
            continue;
        struct dnsmsg_result r;
        if (dnsmsg_parse_a(pkt, len, id, q->name, &r) == DNSMSG_MISMATCH)
            continue;
        q_result(q, &r);
        return q->sj;
    }
    return NULL;
}

/* ---- SURBL: operations --------------------------------------------------- */

/* rx_arm - (re-)arm the check's recvmsg on rx's socket. */
static void rx_arm(struct dns_rx *rx)
{
    struct surbl *sj = rx->sj;
    rx->iov = (struct iovec){ rx->buf, sizeof rx->buf };
    rx->mh = (struct msghdr){ .msg_name = &rx->from, .msg_namelen = sizeof rx->from,
                              .msg_iov = &rx->iov, .msg_iovlen = 1 };
    struct io_uring_sqe *sqe = uring_get_sqe(sj->se->ring);
    io_uring_prep_recvmsg(sqe, rx->fd, &rx->mh, 0);
    io_uring_sqe_set_data64(sqe, uring_cb_data(&rx->cb));
    rx->armed = true;
    sj->pending++;
}

/* on_rx - a datagram (or the end of the receive). */
static void on_rx(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    struct dns_rx *rx = (struct dns_rx *)cb;
    struct surbl *sj = rx->sj;
    rx->armed = false;
    if (cqe->res >= 0) { /* a cut datagram (MSG_TRUNC) is parsed as far as it goes */
        struct surbl *other = se_dispatch(sj->se, rx->buf, (size_t)cqe->res, &rx->from);
        if (other && other != sj)
            surbl_progress(other); /* may finish that check; ours holds a pending op */
    }
    sj->pending--;
    bool transient = cqe->res >= 0 || cqe->res == -EINTR || cqe->res == -EAGAIN ||
                     cqe->res == -ENOBUFS || cqe->res == -ENOMEM;
    if (!sj->stopping && sj->unanswered > 0 && transient)
        rx_arm(rx);
    surbl_progress(sj);
}

/* on_sent - a query's sendmsg completed. */
static void on_sent(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    struct dns_query *q = (struct dns_query *)cb;
    struct surbl *sj = q->sj;
    q->sending = false;
    sj->pending--;
    if (cqe->res < 0 && q->state == Q_WAIT)
        q_finish(q, Q_FAILED, "send failed");
    surbl_progress(sj);
}

/* q_send - send q to server srv (the check's receive on that socket armed
 * first); q fails when there is no socket. */
static void q_send(struct dns_query *q, const struct cfg_listen *srv)
{
    struct surbl *sj = q->sj;
    int fd = se_udp(sj->se, srv->ss.ss_family);
    if (fd < 0) {
        q_finish(q, Q_FAILED, "no UDP socket");
        return;
    }
    struct dns_rx *rx = &sj->rx[srv->ss.ss_family == AF_INET6 ? FAM_V6 : FAM_V4];
    rx->fd = fd;
    if (!rx->armed)
        rx_arm(rx);
    q->iov = (struct iovec){ q->wire, q->wlen };
    q->mh = (struct msghdr){ .msg_name = (void *)&srv->ss, .msg_namelen = srv->len,
                             .msg_iov = &q->iov, .msg_iovlen = 1 };
    struct io_uring_sqe *sqe = uring_get_sqe(sj->se->ring);
    io_uring_prep_sendmsg(sqe, fd, &q->mh, 0);
    io_uring_sqe_set_data64(sqe, uring_cb_data(&q->cb));
    q->sending = true;
    sj->pending++;
}

/* surbl_fail_waiting - every query still waiting fails with why. */
static void surbl_fail_waiting(struct surbl *sj, const char *why)
{
    for (unsigned i = 0; i < sj->nq; i++)
        if (sj->q[i].state == Q_WAIT)
            q_finish(&sj->q[i], Q_FAILED, why);
}

/* surbl_retry - round 1: the unanswered queries go to the next server. */
static void surbl_retry(struct surbl *sj)
{
    sj->round = 1;
    for (unsigned i = 0; i < sj->nq; i++) {
        struct dns_query *q = &sj->q[i];
        if (q->state == Q_WAIT && !q->sending)
            q_send(q, &sj->cfg->dns_servers[1]);
    }
    if (sj->unanswered == 0)
        return;
    uring_timeout_arm(sj->se->ring, &sj->ts, sj->retry_ms, uring_cb_data(&sj->tmo_cb));
    sj->tmo_armed = true;
    sj->pending++;
}

/* on_dns_tmo - the check-level DNS timeout fired (or was removed). */
static void on_dns_tmo(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    struct surbl *sj = (struct surbl *)cb;
    sj->tmo_armed = false;
    sj->pending--;
    if (cqe->res == -ETIME && !sj->stopping) {
        if (sj->round == 0 && sj->cfg->ndns_servers > 1 && sj->retry_ms > 0)
            surbl_retry(sj);
        else
            surbl_fail_waiting(sj, "timeout");
    }
    surbl_progress(sj);
}

/* ---- SURBL: start and decision ------------------------------------------- */

/* surbl_add_domain - keep d unless known; false when the cap is hit. */
static bool surbl_add_domain(struct surbl *sj, const char *d, unsigned cap)
{
    for (unsigned i = 0; i < sj->ndom; i++)
        if (strcmp(sj->dom[i], d) == 0)
            return true;
    if (sj->ndom == cap) {
        sj->capped = true;
        return false;
    }
    snprintf(sj->dom[sj->ndom++], sizeof sj->dom[0], "%s", d);
    return true;
}

/* surbl_read_prefix - the first SURBL_SCAN_MAX octets of the message into
 * a new buffer of *n octets; NULL with sj->broken set when that fails. */
static char *surbl_read_prefix(struct surbl *sj, const struct filter_src *src, size_t *n)
{
    *n = src->len < SURBL_SCAN_MAX ? src->len : SURBL_SCAN_MAX;
    char *buf = malloc(*n ? *n : 1);
    if (!buf) {
        snprintf(sj->broken, sizeof sj->broken, "out of memory");
        return NULL;
    }
    long r = filter_src_fill(src, 0, buf, *n);
    if (r < 0) {
        snprintf(sj->broken, sizeof sj->broken, "message read failed: %s", strerror((int)-r));
        free(buf);
        return NULL;
    }
    return buf;
}

/* surbl_collect - the message's URI hosts reduced to distinct registered
 * domains (or reversed IPv4 addresses), at most surbl_max_lookups. */
static bool surbl_collect(struct surbl *sj, const struct filter_src *src)
{
    unsigned cap = sj->cfg->surbl_max_lookups;
    size_t hmax = 2u * (size_t)cap, scan;
    if (hmax < SURBL_HOSTS_MIN)
        hmax = SURBL_HOSTS_MIN;
    if (hmax > SURBL_HOSTS_MAX)
        hmax = SURBL_HOSTS_MAX;
    char *text = surbl_read_prefix(sj, src, &scan);
    if (!text)
        return false;
    struct uri_host *hosts = malloc(hmax * sizeof *hosts);
    sj->dom = malloc((size_t)cap * sizeof *sj->dom);
    if (!hosts || !sj->dom) {
        free(hosts);
        free(text);
        snprintf(sj->broken, sizeof sj->broken, "out of memory");
        return false;
    }
    unsigned flags = 0;
    size_t n = uri_extract(text, scan, hosts, hmax, &flags);
    free(text);
    for (size_t i = 0; i < n; i++) {
        char d[REGDOM_MAX + 1];
        if (regdom_reduce(hosts[i].name, d, sizeof d) != REGDOM_NONE &&
            !surbl_add_domain(sj, d, cap))
            break;
    }
    free(hosts);
    if (flags & URI_F_TRUNCATED)
        sj->capped = true;
    if (scan < src->len)
        filter_logf(sj->log, sj->arg, "SURBL: only the first %zu of %zu octets searched for URIs",
                    scan, src->len);
    if (sj->capped)
        filter_logf(sj->log, sj->arg,
                    "SURBL: more URI domains than surbl_max_lookups (%u): the rest not looked up",
                    cap);
    return true;
}

/* surbl_queries - one query per domain and zone, numbered in that order. */
static bool surbl_queries(struct surbl *sj)
{
    size_t nz = sj->cfg->nsurbl_zones;
    sj->q = calloc((size_t)sj->ndom * nz + 1, sizeof *sj->q);
    if (!sj->q) {
        snprintf(sj->broken, sizeof sj->broken, "out of memory");
        return false;
    }
    for (unsigned d = 0; d < sj->ndom; d++) {
        for (unsigned z = 0; z < nz; z++) {
            struct dns_query *q = &sj->q[sj->nq++];
            q->cb.fn = on_sent;
            q->sj = sj;
            q->dom = d;
            q->zone = z;
            int n = snprintf(q->name, sizeof q->name, "%s.%s", sj->dom[d],
                             sj->cfg->surbl_zones[z].zone);
            q->id = se_random16(sj->se);
            size_t w = n > 0 && (size_t)n < sizeof q->name
                           ? dnsmsg_build_a(q->id, q->name, q->wire, sizeof q->wire) : 0;
            q->state = w ? Q_WAIT : Q_SKIPPED;
            q->wlen = (uint16_t)w;
            if (w) {
                sj->unanswered++;
                se_hash(sj->se, q);
            }
        }
    }
    return true;
}

/* surbl_send_all - send every query to the first server and arm the
 * check-level timeout (half of it when there is a second server). */
static void surbl_send_all(struct surbl *sj)
{
    const struct config *cfg = sj->cfg;
    if (cfg->ndns_servers == 0)
        surbl_fail_waiting(sj, "no dns_servers");
    for (unsigned i = 0; i < sj->nq && cfg->ndns_servers; i++)
        if (sj->q[i].state == Q_WAIT)
            q_send(&sj->q[i], &cfg->dns_servers[0]);
    if (sj->unanswered) {
        uint64_t first = cfg->ndns_servers > 1 ? cfg->dns_timeout_ms / 2 : cfg->dns_timeout_ms;
        sj->retry_ms = cfg->dns_timeout_ms - first;
        uring_timeout_arm(sj->se->ring, &sj->ts, first, uring_cb_data(&sj->tmo_cb));
        sj->tmo_armed = true;
        sj->pending++;
    }
}

/* surbl_check - see surbl.h: collect, query all in parallel. */
void surbl_check(struct surbl_engine *se, const struct config *cfg, const struct filter_src *src,
                 filter_log_fn log, filter_done_fn done, void *arg)
{
    struct surbl *sj = calloc(1, sizeof *sj);
    if (!sj) {
        bool tempfail = cfg->dns_failure == CFG_DNS_TEMPFAIL;
        filter_logf(log, arg, "SURBL verdict: not checked (out of memory): %s",
                    tempfail ? "tempfail" : "pass");
        done(arg, tempfail ? SESS_VERDICT_TEMPFAIL : SESS_VERDICT_PASS,
             tempfail ? "surbl: out of memory" : "");
        return;
    }
    se->checks++;
    sj->se = se;
    sj->cfg = cfg;
    sj->log = log;
    sj->done = done;
    sj->arg = arg;
    sj->tmo_cb.fn = on_dns_tmo;
    for (int f = 0; f < FAM_N; f++)
        sj->rx[f] = (struct dns_rx){ .cb.fn = on_rx, .sj = sj, .fd = -1 };
    if (!surbl_collect(sj, src) || !surbl_queries(sj)) {
        sj->nq = 0;
        sj->unanswered = 0;
        sj->stopping = true;
    } else {
        surbl_send_all(sj);
    }
    surbl_progress(sj);
}

/* surbl_log_query - the receivelog line of lookup number n. */
static void surbl_log_query(struct surbl *sj, const struct dns_query *q, unsigned n)
{
    char ip[INET_ADDRSTRLEN] = "";
    if (q->has_addr)
        inet_ntop(AF_INET, q->addr, ip, sizeof ip);
    switch (q->state) {
    case Q_LISTED:
        filter_logf(sj->log, sj->arg, "Query_FILTER_RBL(%s %s,%u)=found list", q->name, ip, n);
        break;
    case Q_CLEAN:
        filter_logf(sj->log, sj->arg, "Query_FILTER_RBL(%s %s,%u)=not found list", q->name, ip,
                    n);
        break;
    case Q_SKIPPED:
        filter_logf(sj->log, sj->arg, "Query_FILTER_RBL(%s ,%u)=not looked up (name too long)",
                    q->name, n);
        break;
    default:
        filter_logf(sj->log, sj->arg, "Query_FILTER_RBL(%s ,%u)=lookup failed (%s)", q->name, n,
                    q->why ? q->why : "error");
        break;
    }
}

/* surbl_best - log every lookup; the listed one whose zone acts strongest
 * (NULL: none), the count of failed lookups and the first one's reason. */
static const struct dns_query *surbl_best(struct surbl *sj, unsigned *failed, const char **why)
{
    const struct cfg_zone *zones = sj->cfg->surbl_zones;
    const struct dns_query *best = NULL;
    *failed = 0;
    *why = NULL;
    for (unsigned i = 0; i < sj->nq; i++) {
        const struct dns_query *q = &sj->q[i];
        surbl_log_query(sj, q, i + 1);
        if (q->state == Q_LISTED && (!best || zones[q->zone].action > zones[best->zone].action))
            best = q;
        if (q->state == Q_FAILED && (*failed)++ == 0)
            *why = q->why;
    }
    if (sj->broken[0]) {
        *failed = 1;
        *why = sj->broken;
    }
    return best;
}

/* surbl_decide - log every lookup, then one verdict line; the verdict (its
 * detail into detail[0..n)). */
static enum sess_verdict surbl_decide(struct surbl *sj, char *detail, size_t n)
{
    const struct config *cfg = sj->cfg;
    unsigned failed;
    const char *why;
    const struct dns_query *best = surbl_best(sj, &failed, &why);
    char head[SURBL_DETAIL_MAX];
    enum sess_verdict v = SESS_VERDICT_PASS;
    detail[0] = 0;
    if (best) {
        const struct cfg_zone *z = &cfg->surbl_zones[best->zone];
        snprintf(head, sizeof head, "%s listed in %s", sj->dom[best->dom], z->zone);
        snprintf(detail, n, "surbl %s %s", sj->dom[best->dom], z->zone);
        v = z->action == CFG_ZONE_REJECT ? SESS_VERDICT_REJECT_SPAM
            : z->action == CFG_ZONE_QUARANTINE ? SESS_VERDICT_QUARANTINE : SESS_VERDICT_PASS;
    } else if (sj->ndom) {
        snprintf(head, sizeof head, "not listed (%u domain%s)", sj->ndom,
                 sj->ndom == 1 ? "" : "s");
    } else {
        snprintf(head, sizeof head, "%s", sj->broken[0] ? "not checked" : "no URI domains");
    }
    /* a failure outranks quarantine (the failed lookup might have rejected) */
    if (failed && cfg->dns_failure == CFG_DNS_TEMPFAIL && v != SESS_VERDICT_REJECT_SPAM) {
        v = SESS_VERDICT_TEMPFAIL;
        snprintf(detail, n, "surbl lookup failed (%s)", why);
    }
    const char *word = v == SESS_VERDICT_TEMPFAIL ? "tempfail"
                       : best ? cfg_zone_action_name(cfg->surbl_zones[best->zone].action)
                              : "pass";
    if (failed)
        filter_logf(sj->log, sj->arg, "SURBL verdict: %s, %u of %u lookups failed (%s): %s",
                    head, failed, sj->nq, why, word);
    else
        filter_logf(sj->log, sj->arg, "SURBL verdict: %s: %s", head, word);
    return v;
}

/* surbl_finish - the check is over: decide, release it, then report. */
static void surbl_finish(struct surbl *sj)
{
    char detail[SURBL_DETAIL_MAX];
    enum sess_verdict v = surbl_decide(sj, detail, sizeof detail);
    filter_done_fn done = sj->done;
    void *arg = sj->arg;
    sj->se->checks--;
    free(sj->dom);
    free(sj->q);
    free(sj);
    done(arg, v, detail);
}

/* surbl_progress - after any event: once every query has its outcome stop
 * the timeout and the receives; once their CQEs are back, finish. */
static void surbl_progress(struct surbl *sj)
{
    struct io_uring *ring = sj->se->ring;
    if (sj->unanswered == 0 && !sj->stopping) {
        sj->stopping = true;
        if (sj->tmo_armed)
            uring_timeout_cancel(ring, uring_cb_data(&sj->tmo_cb));
        for (int f = 0; f < FAM_N; f++)
            if (sj->rx[f].armed)
                uring_cancel(ring, uring_cb_data(&sj->rx[f].cb));
    }
    if (sj->stopping && sj->pending == 0)
        surbl_finish(sj);
}
