/* filter.c - the asynchronous content filters of one worker: a job per
 * message runs SURBL/URIBL lookups (UDP queries through the worker's
 * io_uring ring) and a clamd INSTREAM scan (a stream socket driven by the
 * same ring) side by side, and reports one combined verdict. Every function
 * runs on the engine's worker thread; nothing here blocks.
 *
 * Operations: each in-flight operation is a struct uring_cb counted in its
 * part's `pending`; a part (SURBL or clamd) is finished only when its
 * decision is made AND every CQE of its operations came back (timeouts and
 * receives are cancelled, and the cancels waited for). Cancel requests
 * themselves carry user_data 0 and are ignored by the dispatcher.
 *
 * SURBL: one UDP socket per address family per engine, created on first
 * use. Each running job keeps one recvmsg armed on the socket(s) it sent
 * queries on (re-armed after every datagram); a datagram is matched to its
 * query engine-wide (random 16-bit id, sender = a configured server, then
 * dnsmsg_parse_a over the question), whichever job's receive got it. That
 * way every operation belongs to a job and an idle engine has nothing in
 * flight. Lookups are numbered 1..n in query order (domain by domain in
 * first-seen order, and for each domain the zones in configuration order);
 * that number is the N of "Query_FILTER_RBL(<name> <ip>,N)". One job-level
 * timeout bounds the lookups to dns_timeout_ms; with two or more dns_servers
 * the queries still unanswered at half of it go to the second server. The
 * first FILTER_URI_SCAN_MAX octets of a message are searched for URIs.
 *
 * Combined verdict, strongest first: REJECT_VIRUS > REJECT_SPAM > TEMPFAIL >
 * QUARANTINE > PASS. A definite rejection is not turned into a retry by the
 * other filter's failure; a failure outranks quarantine because the check
 * that failed might have rejected. */
#include "filter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clamd.h"
#include "config.h"
#include "dnsmsg.h"
#include "regdom.h"
#include "uri.h"
#include "uring_cb.h"
#include "util.h"

#define FILTER_URI_SCAN_MAX (1024u * 1024u) /* octets of a message searched for URIs */
#define FILTER_HOSTS_MIN 16u                 /* hosts extracted: 2 x surbl_max_lookups, */
#define FILTER_HOSTS_MAX 256u                /* within these bounds (see uri_extract) */
#define FILTER_ID_BUCKETS 256u               /* query-id hash chains per engine */
#define FILTER_RND_POOL 64u                  /* random octets drawn per getrandom() */
#define FILTER_LINE_MAX 700u                 /* one log line */
#define FILTER_DETAIL_MAX 600u
#define FILTER_IOV_MAX (2u * CLAMD_CURSOR_CHUNKS + 2u) /* command, prefixes, data, end */
#define MS_PER_S 1000u
#define NS_PER_MS 1000000L

_Static_assert((FILTER_ID_BUCKETS & (FILTER_ID_BUCKETS - 1)) == 0, "buckets: power of two");

enum fam { FAM_V4 = 0, FAM_V6, FAM_N };

struct filter_engine {
    struct io_uring *ring;
    unsigned worker;
    int udp[FAM_N];                             /* -1 until first used */
    struct dns_query *ids[FILTER_ID_BUCKETS];   /* queries waiting for a reply */
    uint8_t rnd[FILTER_RND_POOL];
    unsigned rnd_left;
    uint64_t xs;                                /* fallback generator state */
    unsigned jobs;                              /* running */
};

/* ---- SURBL state --------------------------------------------------------- */

enum q_state { Q_WAIT = 0, Q_LISTED, Q_CLEAN, Q_FAILED, Q_SKIPPED };

struct dns_query {
    struct uring_cb cb;         /* its sendmsg; first member */
    struct surbl *sj;
    struct dns_query *hnext;    /* in fe->ids while Q_WAIT and hashed */
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
    int fd;                     /* -1: not used by this job */
    bool armed;
    struct msghdr mh;
    struct iovec iov;
    struct sockaddr_storage from;
    uint8_t buf[DNSMSG_UDP_MAX];
};

struct surbl {
    struct uring_cb tmo_cb;     /* job-level timeout; first member */
    struct filter_job *job;
    char (*dom)[REGDOM_MAX + 1];
    unsigned ndom;
    bool capped;                /* more domains than surbl_max_lookups */
    struct dns_query *q;
    unsigned nq, unanswered, pending;
    unsigned round;             /* 0: first server; 1: the retry on the next */
    bool tmo_armed, stopping, finished;
    bool nomem;                 /* could not even build the queries */
    struct __kernel_timespec ts;
    uint64_t retry_ms;          /* the remaining time given to round 1 */
    struct dns_rx rx[FAM_N];
};

/* ---- clamd state --------------------------------------------------------- */

enum clam_step { C_CONNECT = 0, C_SEND, C_RECV, C_CLOSE, C_DONE };

struct clam {
    struct uring_cb op_cb;      /* connect, sendmsg or recv: one at a time */
    struct uring_cb tmo_cb;
    struct uring_cb close_cb;
    struct filter_job *job;
    enum clam_step step;
    int fd;
    unsigned pending;
    bool op_armed, tmo_armed, timed_out, finished;
    bool failed;                /* the scan failed: why says how */
    char why[128];
    struct __kernel_timespec ts;
    struct clamd_stream cs;
    struct iovec iov[FILTER_IOV_MAX];
    struct msghdr mh;
    struct clamd_reply rep;
    size_t rlen;
    char reply[CLAMD_REPLY_MAX + 1];
};

/* ---- the job ------------------------------------------------------------- */

struct filter_job {
    struct filter_engine *fe;
    const struct config *cfg;
    const char *msg;
    size_t len;
    filter_log_fn log;
    filter_done_fn done;
    void *arg;
    struct surbl *sj;           /* NULL: no SURBL for this job */
    struct clam *cj;            /* NULL: no antivirus for this job */
    unsigned parts;             /* parts still running */
    enum sess_verdict v;        /* strongest so far */
    char detail[FILTER_DETAIL_MAX];
};

static void surbl_progress(struct surbl *sj);
static void clam_progress(struct clam *c);

/* ---- small helpers ------------------------------------------------------- */

/* jlog - one receivelog line of a job. */
static void jlog(struct filter_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jlog(struct filter_job *j, const char *fmt, ...)
{
    char line[FILTER_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (j->log)
        j->log(j->arg, line);
}

/* verdict_rank - strength of a verdict in the combination (see top). */
static int verdict_rank(enum sess_verdict v)
{
    switch (v) {
    case SESS_VERDICT_REJECT_VIRUS: return 4;
    case SESS_VERDICT_REJECT_SPAM: return 3;
    case SESS_VERDICT_TEMPFAIL: return 2;
    case SESS_VERDICT_QUARANTINE: return 1;
    default: return 0;
    }
}

/* job_verdict - offer verdict v with its detail: the stronger one stays
 * (on a tie the first one offered). */
static void job_verdict(struct filter_job *j, enum sess_verdict v, const char *detail)
{
    if (verdict_rank(v) <= verdict_rank(j->v))
        return;
    j->v = v;
    snprintf(j->detail, sizeof j->detail, "%s", detail ? detail : "");
}

/* job_part_done - one part finished; the last one reports and frees. */
static void job_part_done(struct filter_job *j)
{
    if (--j->parts)
        return;
    struct filter_engine *fe = j->fe;
    filter_done_fn done = j->done;
    void *arg = j->arg;
    enum sess_verdict v = j->v;
    char detail[FILTER_DETAIL_MAX];
    memcpy(detail, j->detail, sizeof detail);
    free(j->sj ? j->sj->dom : NULL);
    free(j->sj ? j->sj->q : NULL);
    free(j->sj);
    free(j->cj);
    free(j);
    fe->jobs--;
    done(arg, v, detail);
}

/* ms_to_ts - milliseconds as an io_uring timespec. */
static void ms_to_ts(struct __kernel_timespec *ts, uint64_t ms)
{
    ts->tv_sec = (long long)(ms / MS_PER_S);
    ts->tv_nsec = (long long)(ms % MS_PER_S) * NS_PER_MS;
}

/* now_ms - monotonic milliseconds. */
static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * MS_PER_S + (uint64_t)t.tv_nsec / (uint64_t)NS_PER_MS;
}

/* cancel_op - ask the ring to cancel the operation of cb (the cancel's own
 * completion has user_data 0; cb's completion still arrives). */
static void cancel_op(struct io_uring *ring, struct uring_cb *cb)
{
    struct io_uring_sqe *sqe = uring_get_sqe(ring);
    io_uring_prep_cancel64(sqe, uring_cb_data(cb), 0);
    io_uring_sqe_set_data64(sqe, 0);
}

/* cancel_timeout - remove the timeout of cb (its CQE comes back -ECANCELED
 * unless it fired already). */
static void cancel_timeout(struct io_uring *ring, struct uring_cb *cb)
{
    struct io_uring_sqe *sqe = uring_get_sqe(ring);
    io_uring_prep_timeout_remove(sqe, uring_cb_data(cb), 0);
    io_uring_sqe_set_data64(sqe, 0);
}

/* arm_timeout - a relative timeout of ms for cb. */
static void arm_timeout(struct io_uring *ring, struct uring_cb *cb,
                        struct __kernel_timespec *ts, uint64_t ms)
{
    ms_to_ts(ts, ms);
    struct io_uring_sqe *sqe = uring_get_sqe(ring);
    io_uring_prep_timeout(sqe, ts, 0, 0);
    io_uring_sqe_set_data64(sqe, uring_cb_data(cb));
}

/* ---- engine -------------------------------------------------------------- */

/* filter_wanted - see filter.h. */
bool filter_wanted(const struct config *cfg)
{
    return cfg && (cfg->nsurbl_zones > 0 || cfg->clamd.len);
}

/* filter_engine_new - see filter.h. */
struct filter_engine *filter_engine_new(struct io_uring *ring, unsigned worker)
{
    struct filter_engine *fe = calloc(1, sizeof(*fe));
    if (!fe)
        return NULL;
    fe->ring = ring;
    fe->worker = worker;
    for (int i = 0; i < FAM_N; i++)
        fe->udp[i] = -1;
    fe->xs = (uint64_t)(uintptr_t)fe ^ now_ms() ^ ((uint64_t)worker << 32) ^ 0x9e3779b97f4a7c15ull;
    return fe;
}

/* filter_engine_free - see filter.h; the worker calls it after its ring is
 * gone (no job runs then, so nothing of the engine is in flight). */
void filter_engine_free(struct filter_engine *fe)
{
    if (!fe)
        return;
    if (fe->jobs)
        die("filter_engine_free: %u filter jobs still running", fe->jobs);
    for (int i = 0; i < FAM_N; i++)
        if (fe->udp[i] >= 0)
            close(fe->udp[i]);
    free(fe);
}

/* fe_random16 - a query id: getrandom() octets, a xorshift stream if the
 * kernel refuses. */
static uint16_t fe_random16(struct filter_engine *fe)
{
    if (fe->rnd_left < 2) {
        ssize_t r = getrandom(fe->rnd, sizeof fe->rnd, GRND_NONBLOCK);
        fe->rnd_left = r == (ssize_t)sizeof fe->rnd ? (unsigned)sizeof fe->rnd : 0;
    }
    if (fe->rnd_left >= 2) {
        fe->rnd_left -= 2;
        return (uint16_t)(fe->rnd[fe->rnd_left] << 8 | fe->rnd[fe->rnd_left + 1]);
    }
    fe->xs ^= fe->xs << 13;
    fe->xs ^= fe->xs >> 7;
    fe->xs ^= fe->xs << 17;
    return (uint16_t)(fe->xs >> 24);
}

/* fe_udp - the engine's UDP socket for a family (created on first use);
 * -1 with errno set when it cannot be made. */
static int fe_udp(struct filter_engine *fe, int family)
{
    enum fam f = family == AF_INET6 ? FAM_V6 : FAM_V4;
    if (fe->udp[f] < 0)
        fe->udp[f] = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    return fe->udp[f];
}

/* fe_hash - enter q in the table of queries waiting for a reply. */
static void fe_hash(struct filter_engine *fe, struct dns_query *q)
{
    struct dns_query **b = &fe->ids[q->id & (FILTER_ID_BUCKETS - 1)];
    q->hnext = *b;
    *b = q;
    q->hashed = true;
}

/* fe_unhash - remove q from that table (if it is there). */
static void fe_unhash(struct filter_engine *fe, struct dns_query *q)
{
    if (!q->hashed)
        return;
    struct dns_query **p = &fe->ids[q->id & (FILTER_ID_BUCKETS - 1)];
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
    fe_unhash(sj->job->fe, q);
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

/* from_server - did the datagram come from a DNS server of q's job? */
static bool from_server(const struct dns_query *q, const struct sockaddr_storage *from)
{
    const struct config *cfg = q->sj->job->cfg;
    for (size_t i = 0; i < cfg->ndns_servers; i++)
        if (sa_same(&cfg->dns_servers[i].ss, from))
            return true;
    return false;
}

/* fe_dispatch - a datagram arrived: give it to the query it answers (of any
 * job). Returns that query's SURBL part, or NULL when nothing matched. */
static struct surbl *fe_dispatch(struct filter_engine *fe, const uint8_t *pkt, size_t len,
                                 const struct sockaddr_storage *from)
{
    if (len < DNSMSG_HDR_LEN)
        return NULL;
    uint16_t id = (uint16_t)(pkt[0] << 8 | pkt[1]);
    for (struct dns_query *q = fe->ids[id & (FILTER_ID_BUCKETS - 1)]; q; q = q->hnext) {
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

/* rx_arm - (re-)arm the job's recvmsg on rx's socket. */
static void rx_arm(struct dns_rx *rx)
{
    struct surbl *sj = rx->sj;
    rx->iov = (struct iovec){ rx->buf, sizeof rx->buf };
    rx->mh = (struct msghdr){ .msg_name = &rx->from, .msg_namelen = sizeof rx->from,
                              .msg_iov = &rx->iov, .msg_iovlen = 1 };
    struct io_uring_sqe *sqe = uring_get_sqe(sj->job->fe->ring);
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
        struct surbl *other = fe_dispatch(sj->job->fe, rx->buf, (size_t)cqe->res, &rx->from);
        if (other && other != sj)
            surbl_progress(other); /* may finish that job; ours holds a pending op */
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

/* q_send - send q to server srv (the job's receive on that socket armed
 * first); q fails when there is no socket. */
static void q_send(struct dns_query *q, const struct cfg_listen *srv)
{
    struct surbl *sj = q->sj;
    int fd = fe_udp(sj->job->fe, srv->ss.ss_family);
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
    struct io_uring_sqe *sqe = uring_get_sqe(sj->job->fe->ring);
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
    struct filter_job *j = sj->job;
    sj->round = 1;
    for (unsigned i = 0; i < sj->nq; i++) {
        struct dns_query *q = &sj->q[i];
        if (q->state == Q_WAIT && !q->sending)
            q_send(q, &j->cfg->dns_servers[1]);
    }
    if (sj->unanswered == 0)
        return;
    arm_timeout(j->fe->ring, &sj->tmo_cb, &sj->ts, sj->retry_ms);
    sj->tmo_armed = true;
    sj->pending++;
}

/* on_dns_tmo - the job-level DNS timeout fired (or was removed). */
static void on_dns_tmo(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    struct surbl *sj = (struct surbl *)cb;
    sj->tmo_armed = false;
    sj->pending--;
    if (cqe->res == -ETIME && !sj->stopping) {
        if (sj->round == 0 && sj->job->cfg->ndns_servers > 1 && sj->retry_ms > 0)
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

/* surbl_collect - the message's URI hosts reduced to distinct registered
 * domains (or reversed IPv4 addresses), at most surbl_max_lookups. */
static bool surbl_collect(struct surbl *sj)
{
    struct filter_job *j = sj->job;
    unsigned cap = j->cfg->surbl_max_lookups;
    size_t hmax = 2u * (size_t)cap;
    if (hmax < FILTER_HOSTS_MIN)
        hmax = FILTER_HOSTS_MIN;
    if (hmax > FILTER_HOSTS_MAX)
        hmax = FILTER_HOSTS_MAX;
    size_t scan = j->len < FILTER_URI_SCAN_MAX ? j->len : FILTER_URI_SCAN_MAX;
    struct uri_host *hosts = malloc(hmax * sizeof *hosts);
    sj->dom = malloc((size_t)cap * sizeof *sj->dom);
    if (!hosts || !sj->dom) {
        free(hosts);
        return false;
    }
    unsigned flags = 0;
    size_t n = uri_extract(j->msg, scan, hosts, hmax, &flags);
    for (size_t i = 0; i < n; i++) {
        char d[REGDOM_MAX + 1];
        if (regdom_reduce(hosts[i].name, d, sizeof d) != REGDOM_NONE &&
            !surbl_add_domain(sj, d, cap))
            break;
    }
    free(hosts);
    if (flags & URI_F_TRUNCATED)
        sj->capped = true;
    if (scan < j->len)
        jlog(j, "SURBL: only the first %zu of %zu octets searched for URIs", scan, j->len);
    if (sj->capped)
        jlog(j, "SURBL: more URI domains than surbl_max_lookups (%u): the rest not looked up",
             cap);
    return true;
}

/* surbl_queries - one query per domain and zone, numbered in that order. */
static bool surbl_queries(struct surbl *sj)
{
    struct filter_job *j = sj->job;
    size_t nz = j->cfg->nsurbl_zones;
    sj->q = calloc((size_t)sj->ndom * nz + 1, sizeof *sj->q);
    if (!sj->q)
        return false;
    for (unsigned d = 0; d < sj->ndom; d++) {
        for (unsigned z = 0; z < nz; z++) {
            struct dns_query *q = &sj->q[sj->nq++];
            q->cb.fn = on_sent;
            q->sj = sj;
            q->dom = d;
            q->zone = z;
            int n = snprintf(q->name, sizeof q->name, "%s.%s", sj->dom[d],
                             j->cfg->surbl_zones[z].zone);
            q->id = fe_random16(j->fe);
            size_t w = n > 0 && (size_t)n < sizeof q->name
                           ? dnsmsg_build_a(q->id, q->name, q->wire, sizeof q->wire) : 0;
            q->state = w ? Q_WAIT : Q_SKIPPED;
            q->wlen = (uint16_t)w;
            if (w) {
                sj->unanswered++;
                fe_hash(j->fe, q);
            }
        }
    }
    return true;
}

/* surbl_start - the SURBL part of job j: collect, query all in parallel. */
static void surbl_start(struct filter_job *j)
{
    struct surbl *sj = calloc(1, sizeof *sj);
    if (!sj) {
        jlog(j, "SURBL verdict: not checked (out of memory): %s",
             j->cfg->dns_failure == CFG_DNS_TEMPFAIL ? "tempfail" : "pass");
        if (j->cfg->dns_failure == CFG_DNS_TEMPFAIL)
            job_verdict(j, SESS_VERDICT_TEMPFAIL, "surbl: out of memory");
        return;
    }
    j->sj = sj;
    j->parts++;
    sj->job = j;
    sj->tmo_cb.fn = on_dns_tmo;
    for (int f = 0; f < FAM_N; f++)
        sj->rx[f] = (struct dns_rx){ .cb.fn = on_rx, .sj = sj, .fd = -1 };
    if (!surbl_collect(sj) || !surbl_queries(sj)) {
        sj->nq = 0;
        sj->unanswered = 0;
        sj->stopping = true;
        sj->nomem = true;
        surbl_progress(sj);
        return;
    }
    const struct config *cfg = j->cfg;
    if (cfg->ndns_servers == 0)
        surbl_fail_waiting(sj, "no dns_servers");
    for (unsigned i = 0; i < sj->nq && cfg->ndns_servers; i++)
        if (sj->q[i].state == Q_WAIT)
            q_send(&sj->q[i], &cfg->dns_servers[0]);
    if (sj->unanswered) {
        uint64_t first = cfg->ndns_servers > 1 ? cfg->dns_timeout_ms / 2 : cfg->dns_timeout_ms;
        sj->retry_ms = cfg->dns_timeout_ms - first;
        arm_timeout(j->fe->ring, &sj->tmo_cb, &sj->ts, first);
        sj->tmo_armed = true;
        sj->pending++;
    }
    surbl_progress(sj);
}

/* surbl_log_query - the receivelog line of lookup number n. */
static void surbl_log_query(struct filter_job *j, const struct dns_query *q, unsigned n)
{
    char ip[INET_ADDRSTRLEN] = "";
    if (q->has_addr)
        inet_ntop(AF_INET, q->addr, ip, sizeof ip);
    switch (q->state) {
    case Q_LISTED: jlog(j, "Query_FILTER_RBL(%s %s,%u)=found list", q->name, ip, n); break;
    case Q_CLEAN: jlog(j, "Query_FILTER_RBL(%s %s,%u)=not found list", q->name, ip, n); break;
    case Q_SKIPPED:
        jlog(j, "Query_FILTER_RBL(%s ,%u)=not looked up (name too long)", q->name, n);
        break;
    default:
        jlog(j, "Query_FILTER_RBL(%s ,%u)=lookup failed (%s)", q->name, n,
             q->why ? q->why : "error");
        break;
    }
}

/* surbl_decide - log every lookup, then one verdict line; offer the verdict. */
static void surbl_decide(struct surbl *sj)
{
    struct filter_job *j = sj->job;
    const struct config *cfg = j->cfg;
    const struct dns_query *best = NULL;
    const char *why = NULL;
    unsigned failed = 0;
    for (unsigned i = 0; i < sj->nq; i++) {
        const struct dns_query *q = &sj->q[i];
        surbl_log_query(j, q, i + 1);
        if (q->state == Q_LISTED &&
            (!best || cfg->surbl_zones[q->zone].action > cfg->surbl_zones[best->zone].action))
            best = q;
        if (q->state == Q_FAILED && failed++ == 0)
            why = q->why;
    }
    char head[FILTER_DETAIL_MAX], detail[FILTER_DETAIL_MAX];
    enum sess_verdict v = SESS_VERDICT_PASS;
    if (best) {
        const struct cfg_zone *z = &cfg->surbl_zones[best->zone];
        snprintf(head, sizeof head, "%s listed in %s", sj->dom[best->dom], z->zone);
        snprintf(detail, sizeof detail, "surbl %s %s", sj->dom[best->dom], z->zone);
        v = z->action == CFG_ZONE_REJECT ? SESS_VERDICT_REJECT_SPAM
            : z->action == CFG_ZONE_QUARANTINE ? SESS_VERDICT_QUARANTINE : SESS_VERDICT_PASS;
    } else if (sj->ndom) {
        snprintf(head, sizeof head, "not listed (%u domain%s)", sj->ndom,
                 sj->ndom == 1 ? "" : "s");
    } else {
        snprintf(head, sizeof head, "%s", sj->nomem ? "not checked" : "no URI domains");
    }
    if (sj->nomem) {
        failed = 1;
        why = "out of memory";
    }
    if (failed && cfg->dns_failure == CFG_DNS_TEMPFAIL &&
        verdict_rank(v) < verdict_rank(SESS_VERDICT_TEMPFAIL)) {
        v = SESS_VERDICT_TEMPFAIL;
        snprintf(detail, sizeof detail, "surbl lookup failed (%s)", why);
    }
    const char *word = v == SESS_VERDICT_TEMPFAIL ? "tempfail"
                       : best ? cfg_zone_action_name(cfg->surbl_zones[best->zone].action)
                                               : "pass";
    if (failed)
        jlog(j, "SURBL verdict: %s, %u of %u lookups failed (%s): %s", head, failed, sj->nq,
             why, word);
    else
        jlog(j, "SURBL verdict: %s: %s", head, word);
    if (v != SESS_VERDICT_PASS)
        job_verdict(j, v, detail);
}

/* surbl_progress - after any event: once every query has its outcome stop
 * the timeout and the receives; once their CQEs are back, decide. */
static void surbl_progress(struct surbl *sj)
{
    struct io_uring *ring = sj->job->fe->ring;
    if (sj->unanswered == 0 && !sj->stopping) {
        sj->stopping = true;
        if (sj->tmo_armed)
            cancel_timeout(ring, &sj->tmo_cb);
        for (int f = 0; f < FAM_N; f++)
            if (sj->rx[f].armed)
                cancel_op(ring, &sj->rx[f].cb);
    }
    if (sj->stopping && sj->pending == 0 && !sj->finished) {
        sj->finished = true;
        surbl_decide(sj);
        job_part_done(sj->job);
    }
}

/* ---- antivirus (clamd) --------------------------------------------------- */

/* clam_fail - the scan failed (the first reason is kept). */
static void clam_fail(struct clam *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void clam_fail(struct clam *c, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
}

/* clam_close - the scan is over: stop the timeout, close the socket. */
static void clam_close(struct clam *c)
{
    struct io_uring *ring = c->job->fe->ring;
    c->step = C_CLOSE;
    if (c->tmo_armed)
        cancel_timeout(ring, &c->tmo_cb);
    if (c->fd >= 0) {
        struct io_uring_sqe *sqe = uring_get_sqe(ring);
        io_uring_prep_close(sqe, c->fd);
        io_uring_sqe_set_data64(sqe, uring_cb_data(&c->close_cb));
        c->fd = -1;
        c->pending++;
    }
}

/* clam_op - queue the next connect/sendmsg/recv (prepared in sqe). */
static void clam_op(struct clam *c, struct io_uring_sqe *sqe, enum clam_step step)
{
    io_uring_sqe_set_data64(sqe, uring_cb_data(&c->op_cb));
    c->step = step;
    c->op_armed = true;
    c->pending++;
}

/* clam_send - send the next part of the INSTREAM stream. */
static void clam_send(struct clam *c)
{
    size_t n = clamd_stream_fill(&c->cs, c->iov, FILTER_IOV_MAX);
    c->mh = (struct msghdr){ .msg_iov = c->iov, .msg_iovlen = n };
    struct io_uring_sqe *sqe = uring_get_sqe(c->job->fe->ring);
    io_uring_prep_sendmsg(sqe, c->fd, &c->mh, MSG_NOSIGNAL);
    clam_op(c, sqe, C_SEND);
}

/* clam_recv - read (more of) clamd's reply. */
static void clam_recv(struct clam *c)
{
    struct io_uring_sqe *sqe = uring_get_sqe(c->job->fe->ring);
    io_uring_prep_recv(sqe, c->fd, c->reply + c->rlen, CLAMD_REPLY_MAX - c->rlen, 0);
    clam_op(c, sqe, C_RECV);
}

/* clam_got - the reply is complete: a verdict, or a failure. */
static void clam_got(struct clam *c, enum clamd_verdict v)
{
    if (v == CLAMD_SIZE_LIMIT)
        clam_fail(c, "clamd: INSTREAM size limit exceeded (keep clamd_max_size under "
                     "clamd's StreamMaxLength)");
    else if (v == CLAMD_ERROR)
        clam_fail(c, "clamd: %s ERROR", c->rep.name);
    else if (v == CLAMD_MALFORMED)
        clam_fail(c, "clamd: malformed reply");
    clam_close(c);
}

/* clam_step_done - the connect, a sendmsg or a recv completed with res. */
static void clam_step_done(struct clam *c, int res)
{
    if (c->step == C_CONNECT && res < 0) {
        clam_fail(c, "connect to %s: %s", c->job->cfg->clamd.text, strerror(-res));
    } else if (c->step == C_CONNECT) {
        clam_send(c);
        return;
    } else if (c->step == C_SEND && (res == -EPIPE || res == -ECONNRESET)) {
        clam_recv(c); /* clamd stopped reading: its reply says why */
        return;
    } else if (c->step == C_SEND && res <= 0) {
        clam_fail(c, "send: %s", res ? strerror(-res) : "nothing sent");
    } else if (c->step == C_SEND) {
        clamd_stream_advance(&c->cs, (size_t)res);
        clamd_stream_done(&c->cs) ? clam_recv(c) : clam_send(c);
        return;
    } else if (res < 0) {
        clam_fail(c, "receive: %s", strerror(-res));
    } else {
        c->rlen += (size_t)res;
        bool eof = res == 0 || c->rlen == CLAMD_REPLY_MAX;
        enum clamd_verdict v = clamd_reply_parse(c->reply, c->rlen, eof, &c->rep);
        if (v == CLAMD_INCOMPLETE) {
            clam_recv(c);
            return;
        }
        if (eof && c->rlen == 0)
            clam_fail(c, "clamd closed the connection without a reply");
        clam_got(c, v);
        return;
    }
    clam_close(c);
}

/* on_clam_op - completion of the connect, a sendmsg or a recv. */
static void on_clam_op(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    struct clam *c = (struct clam *)cb;
    c->op_armed = false;
    c->pending--;
    if (c->timed_out) {
        clam_fail(c, "timeout after %u ms", c->job->cfg->clamd_timeout_ms);
        clam_close(c);
    } else {
        clam_step_done(c, cqe->res);
    }
    clam_progress(c);
}

/* on_clam_tmo - the scan's timeout fired (or was removed): cancel the
 * operation in flight; its completion closes. */
static void on_clam_tmo(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    struct clam *c = (struct clam *)(void *)((char *)cb - offsetof(struct clam, tmo_cb));
    c->tmo_armed = false;
    c->pending--;
    if (cqe->res == -ETIME && c->step < C_CLOSE) {
        c->timed_out = true;
        if (c->op_armed) {
            cancel_op(c->job->fe->ring, &c->op_cb);
        } else {
            clam_fail(c, "timeout after %u ms", c->job->cfg->clamd_timeout_ms);
            clam_close(c);
        }
    }
    clam_progress(c);
}

/* on_clam_close - the socket is closed. */
static void on_clam_close(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    (void)cqe;
    struct clam *c = (struct clam *)(void *)((char *)cb - offsetof(struct clam, close_cb));
    c->pending--;
    clam_progress(c);
}

/* clam_decide - log the engine's verdict (or the failure) and offer it. */
static void clam_decide(struct clam *c)
{
    struct filter_job *j = c->job;
    const struct config *cfg = j->cfg;
    char detail[FILTER_DETAIL_MAX];
    if (c->failed) {
        bool tempfail = cfg->scanner_failure == CFG_SCAN_TEMPFAIL;
        jlog(j, "Antivirus: scan failed: %s: %s", c->why,
             tempfail ? "tempfail" : "accepted unscanned (scanner_failure = accept)");
        snprintf(detail, sizeof detail, "antivirus: %s", c->why);
        if (tempfail)
            job_verdict(j, SESS_VERDICT_TEMPFAIL, detail);
    } else if (c->rep.verdict == CLAMD_FOUND) {
        bool reject = cfg->virus_action == CFG_VIRUS_REJECT;
        jlog(j, "Antivirus: stream: %s FOUND: %s", c->rep.name, reject ? "reject" : "quarantine");
        snprintf(detail, sizeof detail, "virus %s", c->rep.name);
        job_verdict(j, reject ? SESS_VERDICT_REJECT_VIRUS : SESS_VERDICT_QUARANTINE,
                    reject ? c->rep.name : detail);
    } else {
        jlog(j, "Antivirus: clean");
    }
}

/* clam_progress - once closed and every CQE is back, decide. */
static void clam_progress(struct clam *c)
{
    if (c->step != C_CLOSE || c->pending || c->finished)
        return;
    c->finished = true;
    c->step = C_DONE;
    clam_decide(c);
    job_part_done(c->job);
}

/* clam_start - the antivirus part of job j: connect, stream, read. */
static void clam_start(struct filter_job *j)
{
    const struct config *cfg = j->cfg;
    if (j->len > cfg->clamd_max_size) {
        jlog(j, "Antivirus: not scanned: %zu octets over clamd_max_size", j->len);
        return;
    }
    struct clam *c = calloc(1, sizeof *c);
    if (!c) {
        jlog(j, "Antivirus: scan failed: out of memory: %s",
             cfg->scanner_failure == CFG_SCAN_TEMPFAIL ? "tempfail" : "accepted unscanned");
        if (cfg->scanner_failure == CFG_SCAN_TEMPFAIL)
            job_verdict(j, SESS_VERDICT_TEMPFAIL, "antivirus: out of memory");
        return;
    }
    j->cj = c;
    j->parts++;
    *c = (struct clam){ .op_cb.fn = on_clam_op, .tmo_cb.fn = on_clam_tmo,
                        .close_cb.fn = on_clam_close, .job = j, .fd = -1 };
    if ((c->fd = socket(cfg->clamd.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        clam_fail(c, "socket: %s", strerror(errno));
    if (c->failed) {
        clam_close(c);
        clam_progress(c);
        return;
    }
    clamd_stream_init(&c->cs, j->msg, j->len, 0);
    arm_timeout(j->fe->ring, &c->tmo_cb, &c->ts, cfg->clamd_timeout_ms);
    c->tmo_armed = true;
    c->pending++;
    struct io_uring_sqe *sqe = uring_get_sqe(j->fe->ring);
    io_uring_prep_connect(sqe, c->fd, (const struct sockaddr *)&cfg->clamd.ss, cfg->clamd.len);
    clam_op(c, sqe, C_CONNECT);
}

/* ---- jobs ---------------------------------------------------------------- */

/* filter_start - see filter.h: the parts run side by side; a hold on the
 * job keeps it alive until both have started. */
void filter_start(struct filter_engine *fe, const struct config *cfg, const char *msg,
                  size_t len, filter_log_fn log, filter_done_fn done, void *arg)
{
    struct filter_job *j = calloc(1, sizeof *j);
    if (!j) {
        if (log)
            log(arg, "Filters: out of memory");
        done(arg, SESS_VERDICT_TEMPFAIL, "filters: out of memory");
        return;
    }
    *j = (struct filter_job){ .fe = fe, .cfg = cfg, .msg = msg, .len = len, .log = log,
                              .done = done, .arg = arg, .parts = 1 };
    fe->jobs++;
    if (cfg->clamd.len)
        clam_start(j);
    if (cfg->nsurbl_zones)
        surbl_start(j);
    job_part_done(j); /* the hold taken above: done may run now */
}
