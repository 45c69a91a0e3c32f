/* dlv_conn.c - per-hop connection pools and outbound SMTP/LMTP connections
 * on the delivery ring: connect, receive, send (one of each in flight per
 * connection), STARTTLS through net/tls.c's memory-buffer TLS, the pure
 * client machine core/smtpc.c fed with the queue file's bytes, reuse across
 * messages (RSET), idle and reply timeouts, failover to the next hop.
 * Delivery thread only. */
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "dlv_int.h"
#include "smtp_parse.h"
#include "tls.h"

static void conn_drive(struct dlv_conn *k);

#define CONN_OF(cb, field) ((struct dlv_conn *)((char *)(cb)-offsetof(struct dlv_conn, field)))

/* ---- pools -------------------------------------------------------------- */

/* pool_find - the pool of hop h with TLS mode tls (made on first use). */
static struct dlv_pool *pool_find(struct dlv *d, const struct route_hop *h, enum route_tls tls)
{
    char key[sizeof(((struct dlv_pool *)0)->key)];
    snprintf(key, sizeof(key), "%s|%s", h->text, routes_tls_name(tls));
    for (struct dlv_pool *p = d->pools; p; p = p->next)
        if (strcmp(p->key, key) == 0)
            return p;
    struct dlv_pool *p = calloc(1, sizeof(*p));
    if (!p || !(p->helo = strdup(dlv_cfg(d)->hostname))) {
        free(p);
        return NULL;
    }
    memcpy(p->key, key, sizeof(key));
    p->hop = *h;
    p->tls = tls;
    p->next = d->pools;
    d->pools = p;
    return p;
}

/* pool_pop - the oldest queued job of p, or NULL. */
static struct dlv_job *pool_pop(struct dlv_pool *p)
{
    struct dlv_job *j = p->qhead;
    if (j) {
        p->qhead = j->next;
        if (!p->qhead)
            p->qtail = NULL;
        j->next = NULL;
        p->nq--;
    }
    return j;
}

/* pool_push - queue j at the end (or the front: a retry after a stale
 * connection). */
static void pool_push(struct dlv_pool *p, struct dlv_job *j, bool front)
{
    j->next = NULL;
    if (!p->qhead) {
        p->qhead = p->qtail = j;
    } else if (front) {
        j->next = p->qhead;
        p->qhead = j;
    } else {
        p->qtail->next = j;
        p->qtail = j;
    }
    p->nq++;
}

/* dlv_pool_submit - hand j to the pool of its current hop. A hop that has
 * just failed and has no connection fails the job at once (next hop or
 * deferral), so a dead hop is not hammered. */
void dlv_pool_submit(struct dlv *d, struct dlv_job *j)
{
    const struct route_hop *h = &j->rt->hops[j->hop];
    struct dlv_pool *p = pool_find(d, h, j->rt->tls);
    if (!p) {
        dlv_job_failed(d, j, "451 4.3.0 out of memory");
        return;
    }
    if (p->down_until > d->now_ms && p->nconns == 0) {
        dlv_job_failed(d, j, p->down_why ? p->down_why : "hop down");
        return;
    }
    pool_push(p, j, false);
    dlv_pool_kick(d, p);
}

/* ---- connection life ------------------------------------------------------ */

/* conn_free - release a connection nothing refers to any more. */
static void conn_free(struct dlv_conn *k)
{
    if (k->fd >= 0)
        close(k->fd);
    smtpc_free(k->c);
    tls_conn_free(k->tls);
    sb_free(&k->tx);
    sb_free(&k->wire);
    free(k->why);
    struct dlv_pool *p = k->p;
    if (k->closing) {
        if (k->prev)
            k->prev->next = k->next;
        else
            p->closed = k->next;
        if (k->next)
            k->next->prev = k->prev;
        p->nclosing--;
    }
    free(k);
}

/* conn_release - an operation of k completed; free it when it was the last
 * of a closed connection. Returns true when k is gone. */
static bool conn_release(struct dlv_conn *k)
{
    k->inflight--;
    if (k->closing && k->inflight == 0) {
        conn_free(k);
        return true;
    }
    return k->closing;
}

/* conn_detach - take k out of its pool and shut its socket down so that
 * operations in flight complete; freed when the last one has. */
static void conn_detach(struct dlv_conn *k)
{
    struct dlv_pool *p = k->p;
    if (k->closing)
        return;
    k->closing = true;
    if (!k->ready)
        p->nwait--;
    if (k->prev)
        k->prev->next = k->next;
    else
        p->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    p->nconns--;
    p->nclosing++;
    k->prev = NULL;
    k->next = p->closed;
    if (p->closed)
        p->closed->prev = k;
    p->closed = k;
    if (k->fd >= 0)
        shutdown(k->fd, SHUT_RDWR);
    if (k->inflight == 0)
        conn_free(k);
}

/* set_why - remember the I/O layer's reason for a failure. */
static void set_why(struct dlv_conn *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_why(struct dlv_conn *k, const char *fmt, ...)
{
    free(k->why);
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&k->why, fmt, ap) < 0)
        k->why = NULL;
    va_end(ap);
}

/* dlv_pool_down - a connection of p failed before it was usable: no new
 * connection for a moment; with no usable connection left, every queued
 * job goes to its next hop or is deferred with why. */
void dlv_pool_down(struct dlv *d, struct dlv_pool *p, const char *why)
{
    p->down_until = d->now_ms + DLV_DOWN_MS;
    free(p->down_why);
    p->down_why = strdup(why);
    if (p->conns)
        return; /* the others may still serve the queue */
    struct dlv_job *j;
    while ((j = pool_pop(p)) != NULL)
        dlv_job_failed(d, j, why);
}

/* no_reply_for - did the hop answer nothing for the job (all results
 * local)? Then a reused connection had died under it. */
static bool no_reply_for(const struct smtpc *c, const struct dlv_job *j)
{
    for (size_t i = 0; i < j->n; i++) {
        struct smtpc_result r;
        if (smtpc_rcpt_result(c, i, &r) && r.code && !r.local)
            return false;
    }
    return true;
}

/* job_settle - the connection ended with j on it: results to j, or, when
 * a reused connection died before the hop said anything for j, j again
 * at the front of the pool (once). */
static void job_settle(struct dlv *d, struct dlv_conn *k, struct dlv_job *j)
{
    if (k->msgs > 0 && !j->stale_retry && no_reply_for(k->c, j)) {
        j->stale_retry = true;
        pool_push(k->p, j, true);
        return;
    }
    dlv_job_done(d, j, k->c, k->p->hop.text);
}

/* conn_closed - smtpc says CLOSED: settle the job, note a hop failure (or
 * move on to the hop name's next address), send what is left (a QUIT) and close. */
static void conn_closed(struct dlv_conn *k)
{
    struct dlv *d = k->d;
    struct dlv_pool *p = k->p;
    struct smtpc_result e;
    smtpc_error(k->c, &e);
    char why[SMTPC_TEXT_MAX + 64];
    if (k->why)
        snprintf(why, sizeof(why), "451 4.4.0 %s", k->why);
    else
        snprintf(why, sizeof(why), "%u%s%s %s (%s)", e.code ? e.code : 451, e.enh[0] ? " " : "",
                 e.enh, e.text ? e.text : "", smtpc_stage_name(e.stage));
    struct sb *o = smtpc_output(k->c);
    if (!k->sending && !k->tls && o->len && k->fd >= 0)
        (void)!send(k->fd, o->data, o->len, MSG_DONTWAIT | MSG_NOSIGNAL);
    bool was_ready = k->ready;
    struct sockaddr_storage at = k->ss;
    struct dlv_job *j = k->job;
    k->job = NULL;
    if (j)
        job_settle(d, k, j);
    conn_detach(k);                                  /* k may be freed here */
    if (!was_ready && !dlv_dns_next(d, p, &at, why)) /* true: the name's next address */
        dlv_pool_down(d, p, why);
    dlv_pool_kick(d, p);
}

/* conn_error - the I/O layer failed (EOF, error, timeout): smtpc decides
 * what it means for the recipients. */
static void conn_error(struct dlv_conn *k, const char *why)
{
    if (!why)
        why = "connection failed";
    if (!k->why)
        set_why(k, "%s", why);
    smtpc_abort(k->c, why);
    conn_drive(k);
}

/* ---- ring operations ------------------------------------------------------ */

/* recv_arm - one receive in flight while the connection is open. */
static void recv_arm(struct dlv_conn *k)
{
    if (k->recv_armed || k->closing)
        return;
    struct io_uring_sqe *sqe = dlv_sqe(k->d);
    io_uring_prep_recv(sqe, k->fd, k->rbuf, sizeof(k->rbuf), 0);
    io_uring_sqe_set_data64(sqe, uring_cb_data(&k->cb_recv));
    k->recv_armed = true;
    k->inflight++;
}

/* send_kick - start a send of the pending bytes when none is in flight:
 * the in-flight buffer (tx) is never touched until its send completes. */
static void send_kick(struct dlv_conn *k)
{
    if (k->sending || k->closing)
        return;
    if (k->tx_off == k->tx.len) {
        if (!k->wire.len)
            return;
        struct sb t = k->tx;
        k->tx = k->wire;
        k->wire = t;
        sb_reset(&k->wire);
        k->tx_off = 0;
    }
    struct io_uring_sqe *sqe = dlv_sqe(k->d);
    io_uring_prep_send(sqe, k->fd, k->tx.data + k->tx_off, k->tx.len - k->tx_off, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, uring_cb_data(&k->cb_send));
    k->sending = true;
    k->inflight++;
}

/* flush_out - smtpc's output (through TLS when active) onto the wire. */
static bool flush_out(struct dlv_conn *k)
{
    struct sb *o = smtpc_output(k->c);
    if (o->len && k->tls && !k->tls_hs && !tls_done(k->tls)) {
        sb_consume(o, o->len); /* the handshake failed: nothing can be sent */
    } else if (o->len && k->tls && !k->tls_hs) {
        if (tls_write(k->tls, o->data, o->len) < 0) {
            set_why(k, "TLS write failed: %s", tls_error(k->tls));
            return false;
        }
        sb_consume(o, o->len);
    } else if (o->len && !k->tls) {
        if (!sb_append(&k->wire, o->data, o->len))
            return false;
        sb_consume(o, o->len);
    }
    if (k->tls && tls_pending_out(k->tls) && !tls_take_out(k->tls, &k->wire))
        return false;
    return true;
}

/* on_send - a send completed: account for it, keep going. */
static void on_send(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    struct dlv_conn *k = CONN_OF(cb, cb_send);
    k->sending = false;
    if (conn_release(k))
        return;
    if (cqe->res < 0) {
        conn_error(k, strerror(-cqe->res));
        return;
    }
    k->tx_off += (size_t)cqe->res;
    if (k->tx_off == k->tx.len) {
        sb_reset(&k->tx);
        k->tx_off = 0;
    }
    conn_drive(k);
}

/* tls_input - ciphertext arrived: advance the handshake or decrypt into
 * smtpc. false when the connection failed (why set). */
static bool tls_input(struct dlv_conn *k, const char *buf, size_t n)
{
    if (tls_feed(k->tls, buf, n) < 0)
        return false;
    if (k->tls_hs) {
        int r = tls_handshake(k->tls);
        if (r == 0)
            return true;
        k->tls_hs = false;
        if (r < 0) {
            set_why(k, "TLS handshake failed: %s", tls_error(k->tls));
            dlv_logf(k->d, 0, "hop %s: %s", k->p->hop.text, k->why);
            flush_out(k);
            smtpc_tls_done(k->c, false);
            return true;
        }
        dlv_logf(k->d, 0, "hop %s: TLS %s %s%s", k->p->hop.text, tls_version(k->tls),
                 tls_cipher(k->tls),
                 k->p->tls == ROUTE_TLS_VERIFY ? " (certificate verified)" : "");
        smtpc_tls_done(k->c, true);
    }
    char plain[DLV_RBUF];
    for (;;) {
        ssize_t r = tls_read(k->tls, plain, sizeof(plain));
        if (r > 0) {
            smtpc_input(k->c, plain, (size_t)r);
            continue;
        }
        if (r == TLS_READ_AGAIN)
            return true;
        set_why(k, "%s", r == TLS_READ_CLOSED ? "TLS closed by the hop" : tls_error(k->tls));
        return false;
    }
}

/* on_recv - bytes from the hop (or EOF / error). */
static void on_recv(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    struct dlv_conn *k = CONN_OF(cb, cb_recv);
    k->recv_armed = false;
    if (conn_release(k))
        return;
    if (cqe->res <= 0) {
        conn_error(k, cqe->res == 0 ? "connection closed by the hop" : strerror(-cqe->res));
        return;
    }
    if (k->tls) {
        if (!tls_input(k, k->rbuf, (size_t)cqe->res)) {
            conn_error(k, k->why ? k->why : "TLS failure");
            return;
        }
    } else {
        smtpc_input(k->c, k->rbuf, (size_t)cqe->res);
    }
    recv_arm(k);
    conn_drive(k);
}

/* on_connect - the TCP / unix connect completed. */
static void on_connect(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    struct dlv_conn *k = CONN_OF(cb, cb_connect);
    if (conn_release(k))
        return;
    if (cqe->res < 0) {
        set_why(k, "connect: %s", strerror(-cqe->res));
        conn_error(k, k->why);
        return;
    }
    recv_arm(k);
    conn_drive(k);
}

/* ---- driving smtpc -------------------------------------------------------- */

/* start_tls - smtpc reached START_TLS: a client TLS connection, the
 * ClientHello queued; verify mode checks the chain and the hop's name. */
static void start_tls(struct dlv_conn *k)
{
    struct tls_ctx *ctx = dlv_tls_ctx(k->d);
    const struct route_hop *h = &k->p->hop;
    k->tls =
        ctx ? tls_client_conn_new(ctx, h->host[0] ? h->host : NULL, k->p->tls == ROUTE_TLS_VERIFY)
            : NULL;
    if (!k->tls) {
        set_why(k, "%s", "no TLS client context (relay_ca_file)");
        smtpc_tls_done(k->c, false);
        return;
    }
    k->tls_hs = true;
    if (tls_handshake(k->tls) < 0) {
        k->tls_hs = false;
        set_why(k, "TLS handshake failed: %s", tls_error(k->tls));
        smtpc_tls_done(k->c, false);
    }
}

#define DLV_RCPT_DSN_MAX (SMTP_ORCPT_MAX + 48) /* " NOTIFY=<all three> ORCPT=<value>" */

/* dsn_params - the RFC 3461 parameters of j's message for smtpc: MAIL's
 * into mail (cap octets), each recipient's into one block (*block, freed
 * by the caller) pointed to by rcpt[k]. false on ENOMEM. */
static bool dsn_params(const struct dlv_job *j, char *mail, size_t cap, char **block,
                       const char **rcpt)
{
    const struct qfile_env *e = &j->m->env;
    snprintf(mail, cap, "%s%s%s%s",
             e->ret == SMTP_RET_HDRS   ? " RET=HDRS"
             : e->ret == SMTP_RET_FULL ? " RET=FULL"
                                       : "",
             e->envid ? " ENVID=" : "", e->envid ? e->envid : "", "");
    if (!(*block = malloc(j->n * DLV_RCPT_DSN_MAX)))
        return false;
    for (size_t k = 0; k < j->n; k++) {
        size_t i = j->idx[k];
        char nt[32] = "", *r = *block + k * DLV_RCPT_DSN_MAX;
        unsigned notify = e->notify ? e->notify[i] : 0;
        const char *orcpt = e->orcpts ? e->orcpts[i] : NULL;
        smtp_notify_format(notify, nt, sizeof nt);
        snprintf(r, DLV_RCPT_DSN_MAX, "%s%s%s%s", notify ? " NOTIFY=" : "", nt,
                 orcpt ? " ORCPT=" : "", orcpt ? orcpt : "");
        rcpt[k] = r;
    }
    return true;
}

/* job_start - put j on the ready connection k. */
static void job_start(struct dlv_conn *k, struct dlv_job *j)
{
    const struct dlv_msg *m = j->m;
    char mail_dsn[SMTP_ENVID_MAX + 32], *block = NULL;
    const char **rcpt_dsn = calloc(j->n, sizeof *rcpt_dsn);
    struct smtpc_msg msg = {.sender = m->env.sender,
                            .rcpts = j->addrs,
                            .nrcpt = j->n,
                            .size = m->env.size,
                            .body8 = m->env.body8,
                            .smtputf8 = m->env.smtputf8,
                            .mail_dsn = mail_dsn,
                            .rcpt_dsn = rcpt_dsn};
    bool ok = rcpt_dsn && dsn_params(j, mail_dsn, sizeof mail_dsn, &block, rcpt_dsn) &&
              smtpc_next(k->c, &msg);
    free(block);
    free(rcpt_dsn);
    if (!ok) {
        dlv_job_failed(k->d, j, "451 4.3.0 cannot start the transaction");
        return;
    }
    k->job = j;
    k->body_pos = 0;
}

/* feed_body - the next piece of the message file into smtpc. */
static void feed_body(struct dlv_conn *k)
{
    const struct dlv_msg *m = k->job->m;
    uint64_t left = m->env.size - k->body_pos;
    size_t n = left < DLV_BODY_CHUNK ? (size_t)left : DLV_BODY_CHUNK;
    smtpc_body(k->c, m->map + m->env.msg_off + k->body_pos, n, n == left);
    k->body_pos += n;
}

/* next_job - IDLE or MSG_DONE: settle the message that ended,
 * take the next queued job or park. false when parked (stop driving). */
static bool next_job(struct dlv_conn *k)
{
    struct dlv_pool *p = k->p;
    if (!k->ready) {
        k->ready = true;
        p->nwait--;
        p->down_until = 0;
    }
    if (k->job) {
        struct dlv_job *j = k->job;
        k->job = NULL;
        k->msgs++;
        dlv_job_done(k->d, j, k->c, p->hop.text);
    }
    struct dlv_job *j = k->d->stopping ? NULL : pool_pop(p);
    if (j) {
        job_start(k, j);
        return true;
    }
    if (smtpc_want(k->c) == SMTPC_MSG_DONE)
        smtpc_next(k->c, NULL);
    k->idle_since = k->d->now_ms;
    k->deadline = 0;
    return false;
}

/* conn_drive - act on what smtpc wants until it waits for the network. */
static void conn_drive(struct dlv_conn *k)
{
    for (;;) {
        if (!flush_out(k) && !k->why)
            set_why(k, "%s", "out of memory");
        if (k->why && smtpc_want(k->c) != SMTPC_CLOSED)
            smtpc_abort(k->c, k->why);
        enum smtpc_want w = smtpc_want(k->c);
        if (w == SMTPC_CLOSED) {
            conn_closed(k);
            return;
        }
        if (k->tls_hs || w == SMTPC_NEED_INPUT) {
            k->deadline = k->d->now_ms + (k->ready ? DLV_REPLY_MS : DLV_CONNECT_MS);
            break;
        }
        if (w == SMTPC_SEND_BODY) {
            if (k->wire.len + (k->tx.len - k->tx_off) >= DLV_WIRE_HIGH)
                break;
            feed_body(k);
        } else if (w == SMTPC_START_TLS) {
            start_tls(k);
        } else if (!next_job(k)) {
            break;
        }
    }
    send_kick(k);
}

/* conn_open - a new connection of p to ss: socket, connect on the ring, a
 * fresh smtpc that stops at IDLE after the greeting and EHLO. */
static void conn_open(struct dlv *d, struct dlv_pool *p, const struct sockaddr_storage *ss,
                      socklen_t sl)
{
    struct dlv_conn *k = calloc(1, sizeof(*k));
    if (!k)
        return;
    k->d = d;
    k->p = p;
    k->cb_connect.fn = on_connect;
    k->cb_recv.fn = on_recv;
    k->cb_send.fn = on_send;
    struct smtpc_opts o = {.mode = p->hop.proto == ROUTE_LMTP ? SMTPC_LMTP : SMTPC_SMTP,
                           .helo_name = p->helo,
                           .tls = p->tls == ROUTE_TLS_NONE  ? SMTPC_TLS_NONE
                                  : p->tls == ROUTE_TLS_MAY ? SMTPC_TLS_MAY
                                                            : SMTPC_TLS_REQUIRE};
    k->fd = -1;
    k->ss = *ss; /* before any failure: dlv_dns_next compares it */
    k->sslen = sl;
    k->c = smtpc_new(&o, NULL);
    if (k->c)
        k->fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    k->next = p->conns;
    if (p->conns)
        p->conns->prev = k;
    p->conns = k;
    p->nconns++;
    p->nwait++;
    dlv_stat_add(DLV_ST_CONNS, 1);
    if (!k->c || k->fd < 0) {
        if (!k->why)
            set_why(k, "socket: %s", strerror(errno));
        if (!k->c) {
            conn_detach(k);
            return;
        }
        conn_error(k, k->why);
        return;
    }
    if (ss->ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    k->deadline = d->now_ms + DLV_CONNECT_MS;
    struct io_uring_sqe *sqe = dlv_sqe(d);
    io_uring_prep_connect(sqe, k->fd, (struct sockaddr *)&k->ss, k->sslen);
    io_uring_sqe_set_data64(sqe, uring_cb_data(&k->cb_connect));
    k->inflight++;
}

/* dlv_pool_kick - hand queued jobs to idle connections, open connections for
 * the rest (up to relay_max_connections, not while the hop is down). */
void dlv_pool_kick(struct dlv *d, struct dlv_pool *p)
{
    if (d->stopping)
        return;
    for (struct dlv_conn *k = p->conns, *nx; k && p->qhead; k = nx) {
        nx = k->next;
        if (k->ready && !k->job && !k->closing && smtpc_want(k->c) == SMTPC_IDLE) {
            job_start(k, pool_pop(p));
            conn_drive(k);
            nx = p->conns; /* the list may have changed: start over */
        }
    }
    unsigned max = dlv_cfg(d)->relay_max_connections;
    struct sockaddr_storage ss;
    socklen_t sl;
    while (p->nq > p->nwait && p->nconns < max && p->down_until <= d->now_ms &&
           dlv_dns_addr(d, p, &ss, &sl)) /* false: its name is being looked up */
        conn_open(d, p, &ss, sl);
}

/* dlv_pools_tick - timers: reply/connect timeouts, idle connections QUIT
 * after DLV_IDLE_MS, queued jobs of hops that came back. */
void dlv_pools_tick(struct dlv *d)
{
    for (struct dlv_pool *p = d->pools; p; p = p->next) {
        for (struct dlv_conn *k = p->conns, *nx; k; k = nx) {
            nx = k->next;
            enum smtpc_want w = smtpc_want(k->c);
            if (k->deadline && d->now_ms >= k->deadline)
                conn_error(k, "timeout waiting for the hop");
            else if (w == SMTPC_IDLE && !k->job && d->now_ms - k->idle_since >= DLV_IDLE_MS) {
                smtpc_quit(k->c);
                conn_drive(k);
            }
        }
        if (p->qhead)
            dlv_pool_kick(d, p);
    }
}

/* dlv_pools_close - at stop: queued and running jobs are dropped without
 * an outcome (their recipients stay pending in the state files) and every
 * connection says QUIT and closes. */
void dlv_pools_close(struct dlv *d)
{
    for (struct dlv_pool *p = d->pools; p; p = p->next) {
        struct dlv_job *j;
        while ((j = pool_pop(p)) != NULL)
            dlv_job_free(j);
        while (p->conns) {
            struct dlv_conn *k = p->conns;
            dlv_job_free(k->job);
            k->job = NULL;
            smtpc_quit(k->c);
            flush_out(k);
            if (!k->sending && k->wire.len && k->fd >= 0)
                (void)!send(k->fd, k->wire.data, k->wire.len, MSG_DONTWAIT | MSG_NOSIGNAL);
            conn_detach(k);
        }
    }
}

/* dlv_pools_retry - mxringctl retry: forget recent hop failures, so "now"
 * really tries the hops again. */
void dlv_pools_retry(struct dlv *d)
{
    for (struct dlv_pool *p = d->pools; p; p = p->next)
        p->down_until = 0;
}

/* dlv_pools_idle - no connection left, not even one closing. */
bool dlv_pools_idle(const struct dlv *d)
{
    for (const struct dlv_pool *p = d->pools; p; p = p->next)
        if (p->nconns || p->nclosing)
            return false;
    return true;
}

/* dlv_pools_free - after the ring is gone: free connections still closing
 * (their operations were cancelled with the ring) and the pools. */
void dlv_pools_free(struct dlv *d)
{
    for (struct dlv_pool *p = d->pools, *nx; p; p = nx) {
        nx = p->next;
        while (p->closed)
            conn_free(p->closed);
        free(p->down_why);
        free(p->helo);
        free(p);
    }
    d->pools = NULL;
}
