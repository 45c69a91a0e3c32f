/* conn.c - one client connection on its worker's ring: the multishot
 * receive and its flow control, sends (in the clear or through TLS), the
 * timeout lists, the tarpit and greet-pause timer, the AUTH hand-off to the
 * verifier threads, admission limits, the PROXY header phase behind a load
 * balancer, and the close. Runs on the worker's own thread. The message's
 * way into the journal is conn_msg.c. */
#include "worker_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "authpool.h"
#include "config.h"
#include "dnsbl.h"
#include "iplimit.h"
#include "milterio.h"
#include "proxyio.h"
#include "queue.h"
#include "session.h"
#include "snap.h"
#include "tls.h"
#include "uring.h"
#include "util.h"

#define BACKLOG_MAX (64 * 1024) /* held-back client input before receive pauses */
/* A receive is armed for at most BACKLOG_MAX - backlog octets (the kernel
 * ends the multishot there; the last buffer may overshoot by less than
 * BUF_SIZE), so held input stays under BACKLOG_MAX + BUF_SIZE whatever
 * arrives before a cancel is seen: bounded by design, not by how fast the
 * loop reacts. */
#define SEND_KEEP 4096        /* send buffers larger than this are freed when idle */
#define TLS_PLAIN_CHUNK 16384 /* decrypted bytes handed to the session at a time */

static void conn_start(struct conn *c);
static void conn_close(struct conn *c);
static void tls_begin(struct conn *c);
static void auth_submit(struct conn *c);
static void proxy_begin(struct conn *c);

/* ---- timeout lists -------------------------------------------------------- */

/* list_of - the timeout list named l (NULL for LIST_NONE). */
static struct clist *list_of(struct worker *w, enum conn_list l)
{
    return l == LIST_CMD ? &w->cmd : l == LIST_DATA ? &w->data : NULL;
}

/* conn_list_remove - take c off its timeout list (if any). */
void conn_list_remove(struct conn *c)
{
    struct clist *l = list_of(c->w, c->list);
    if (!l)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
    c->list = LIST_NONE;
}

/* list_append - c at the tail of list which, due at deadline (ms). */
static void list_append(struct conn *c, enum conn_list which, uint64_t deadline)
{
    struct clist *l = list_of(c->w, which);
    c->list = which;
    c->deadline = deadline;
    c->prev = l->tail;
    c->next = NULL;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

/* touch - new activity: the command timeout restarts; the data timeout
 * bounds the whole DATA phase and is set only when the phase begins. */
static void touch(struct conn *c)
{
    const struct config *cfg = sess_snap(c->sess)->cfg;
    if (sess_phase(c->sess) == SESS_PHASE_DATA) {
        unsigned d = sess_data_phase(c->sess);
        if (c->list != LIST_DATA || c->data_phase != d) {
            c->data_phase = d;
            conn_list_remove(c);
            list_append(c, LIST_DATA, c->w->now_ms + cfg->timeout_data * 1000ull);
        }
        return;
    }
    /* only progress (a whole command) restarts the idle timer: a client
     * trickling one byte at a time cannot hold the session forever */
    unsigned p = sess_progress(c->sess);
    if (c->list == LIST_CMD && p == c->last_progress)
        return;
    c->last_progress = p;
    conn_list_remove(c);
    list_append(c, LIST_CMD, c->w->now_ms + cfg->timeout_command * 1000ull);
}

/* ---- connections ------------------------------------------------------------- */

/* recv_arm - (re)start the receive of c: multishot, ending by itself after
 * the octets the held input has room for (sqe->optlen, the multishot byte
 * limit); on kernels without that limit one buffer per receive. */
static void recv_arm(struct conn *c)
{
    struct io_uring_sqe *sqe = get_sqe(c->w);
    if (c->w->recv_single) {
        io_uring_prep_recv(sqe, c->fd, NULL, 0, 0);
    } else {
        io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
        /* sqe->optlen in newer headers: the same union member as file_index */
        sqe->file_index = (uint32_t)(BACKLOG_MAX - sess_backlog(c->sess));
    }
    c->recv_limited = !c->w->recv_single;
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BUF_GROUP;
    io_uring_sqe_set_data64(sqe, ud(c, OP_RECV));
    c->recv_armed = true;
    c->inflight++;
}

/* recv_stop - cancel the multishot receive (flow control or close). */
static void recv_stop(struct conn *c)
{
    struct io_uring_sqe *sqe = get_sqe(c->w);
    io_uring_prep_cancel64(sqe, ud(c, OP_RECV), 0);
    io_uring_sqe_set_data64(sqe, ud(c, OP_CLOSE));
    c->recv_cancel = true;
    c->inflight++;
}

/* send_start - send c->sending from the start. */
static void send_start(struct conn *c)
{
    c->sent = 0;
    struct io_uring_sqe *sqe = get_sqe(c->w);
    io_uring_prep_send(sqe, c->fd, c->sending.data, c->sending.len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud(c, OP_SEND));
    c->send_busy = true;
    c->inflight++;
}

/* conn_flush_tls - encrypt the replies and send the ciphertext (also the
 * handshake flights). Replies are moved into TLS only when they can be
 * sent, so a client that does not read still stops the session. */
static void conn_flush_tls(struct conn *c)
{
    struct sb *out = sess_out(c->sess);
    if (c->send_busy)
        return;
    if (out->len) {
        if (c->tls_ready && tls_write(c->tls, out->data, out->len) < 0)
            sess_tls_failed(c->sess, tls_error(c->tls));
        sb_reset(out); /* before the handshake nothing may go out in the clear */
    }
    if (tls_pending_out(c->tls) == 0)
        return;
    sb_reset(&c->sending);
    tls_take_out(c->tls, &c->sending);
    if (c->sending.len)
        send_start(c);
}

static void greet_arm(struct conn *c, unsigned ms);

/* tarpit_hold - the session wants its replies held a while (the unknown-
 * recipient tarpit): arm the conn's timer (OP_GREET, unused after the
 * greeting) and send when it fires. A closing session is never held. */
static bool tarpit_hold(struct conn *c)
{
    if (sess_action(c->sess) == SESS_CLOSE)
        return false;
    if (c->tarpit)
        return true;
    unsigned ms = sess_reply_delay_ms(c->sess);
    if (!ms || c->greet_pending)
        return false;
    greet_arm(c, ms);
    c->tarpit = true;
    return true;
}

/* conn_flush - send queued replies unless a send is in flight. */
static void conn_flush(struct conn *c)
{
    if (tarpit_hold(c))
        return;
    if (c->tls) {
        conn_flush_tls(c);
        return;
    }
    struct sb *out = sess_out(c->sess);
    if (c->send_busy || out->len == 0)
        return;
    struct sb t = c->sending;
    c->sending = *out;
    *out = t;
    sb_reset(out);
    send_start(c);
}

/* conn_link_all - c joins the worker's list of every connection. */
static void conn_link_all(struct conn *c)
{
    struct worker *w = c->w;
    c->all_prev = NULL;
    c->all_next = w->all;
    if (w->all)
        w->all->all_prev = c;
    w->all = c;
    w->nconns++;
}

/* conn_unlink_all - c leaves the list of every connection (when freed). */
static void conn_unlink_all(struct conn *c)
{
    struct worker *w = c->w;
    if (c->all_prev)
        c->all_prev->all_next = c->all_next;
    else
        w->all = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
    w->nconns--;
}

/* conn_free - last reference gone: release everything. */
static void conn_free(struct conn *c)
{
    struct worker *w = c->w;
    worker_wsnap_release(w, sess_snap(c->sess));
    if (c->txn)
        queue_txn_abort(c->txn); /* never committed: the client got no 250 */
    conn_mres_drop(c);
    milterio_sess_end(c->ms);
    free(c->mquar);
    sess_free(c->sess);
    tls_conn_free(c->tls);
    sb_free(&c->sending);
    if (c->counted)
        atomic_fetch_sub_explicit(&w->pool->sessions, 1, memory_order_relaxed);
    if (c->ip_counted)
        ipl_release(&c->peer);
    conn_unlink_all(c);
    free(c);
}

/* conn_maybe_free - close the socket once nothing references the conn. */
void conn_maybe_free(struct conn *c)
{
    if (!c->closing || c->inflight)
        return;
    if (c->fd >= 0) {
        sess_log_close(c->sess);
        struct io_uring_sqe *sqe = get_sqe(c->w);
        io_uring_prep_close(sqe, c->fd);
        io_uring_sqe_set_data64(sqe, ud(c, OP_CLOSE));
        c->fd = -1;
        c->inflight++;
        return;
    }
    conn_free(c);
}

/* conn_close_notify - a TLS session ends cleanly: queue close_notify and
 * send it after the last reply, before the socket is closed. Not after a
 * reset or a failed send, nor when the handshake never finished. */
static void conn_close_notify(struct conn *c)
{
    if (!c->tls || !c->tls_ready || c->io_failed || c->send_busy)
        return;
    if (tls_close_notify(c->tls) < 0 || tls_pending_out(c->tls) == 0)
        return;
    sb_reset(&c->sending);
    tls_take_out(c->tls, &c->sending);
    if (c->sending.len)
        send_start(c); /* holds the conn: the close waits for this send */
}

/* conn_close - begin closing: stop receiving; the socket is closed when the
 * last in-flight operation has completed. */
static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    conn_list_remove(c);
    if (c->pio)
        proxyio_cancel(c->pio); /* the header timer goes; its release follows */
    if (c->recv_armed && !c->recv_cancel)
        recv_stop(c);
    if (c->greet_pending)
        uring_timeout_cancel(&c->w->ring, ud(c, OP_GREET));
    conn_close_notify(c);
    conn_maybe_free(c);
}

/* tls_begin - start the server side of a TLS handshake on c. */
static void tls_begin(struct conn *c)
{
    struct snap *sn = sess_snap(c->sess);
    c->tls = sn->tls ? tls_conn_new(sn->tls) : NULL;
    if (!c->tls)
        sess_tls_failed(c->sess, sn->tls ? "out of memory" : "no TLS context");
}

/* tls_input - ciphertext arrived: advance the handshake, hand decrypted
 * bytes to the session. */
static void tls_input(struct conn *c, const char *buf, size_t len)
{
    if (tls_feed(c->tls, buf, len) < 0) {
        sess_tls_failed(c->sess, "out of memory");
        return;
    }
    if (!c->tls_ready) {
        int r = tls_handshake(c->tls);
        if (r < 0) {
            STAT_ADD(c->w->st.tls_failures, 1);
            sess_tls_failed(c->sess, tls_error(c->tls));
        }
        if (r <= 0)
            return;
        c->tls_ready = true;
        STAT_ADD(c->w->st.tls_handshakes[tls_version_id(c->tls)], 1);
        sess_tls_started(c->sess, tls_version(c->tls), tls_cipher(c->tls));
        sess_greet(c->sess); /* implicit TLS: the banner comes now */
    }
    char plain[TLS_PLAIN_CHUNK];
    for (;;) {
        ssize_t n = tls_read(c->tls, plain, sizeof(plain));
        if (n > 0) {
            sess_input(c->sess, plain, (size_t)n);
            continue;
        }
        if (n == TLS_READ_CLOSED)
            c->peer_eof = true; /* what came before it is still answered */
        else if (n == TLS_READ_ERROR)
            sess_tls_failed(c->sess, tls_error(c->tls));
        break;
    }
    explicit_bzero(plain, sizeof(plain)); /* may have held an AUTH response */
}

/* auth_submit - hand the session's credentials to the verifier threads. */
static void auth_submit(struct conn *c)
{
    const char *user, *pass;
    size_t ulen, plen;
    sess_auth_creds(c->sess, &user, &ulen, &pass, &plen);
    enum authpool_submit_rc rc =
        authpool_submit(c->w->pool->auth, c->w->auth_inbox, sess_snap(c->sess), user, ulen, pass,
                        plen, (uint64_t)(uintptr_t)c);
    if (rc == AUTHPOOL_QUEUED) {
        c->auth_pending = true;
        c->inflight++;
        return;
    }
    sess_auth_done(c->sess, rc == AUTHPOOL_BUSY ? SESS_AUTH_BUSY : SESS_AUTH_FAIL,
                   rc == AUTHPOOL_BUSY ? "verifier busy" : "invalid credentials");
}

/* conn_auth_result - a verification finished (drained on the worker's eventfd). */
void conn_auth_result(void *arg, const struct authpool_result *r)
{
    (void)arg;
    struct conn *c = (struct conn *)(uintptr_t)r->cookie;
    c->auth_pending = false;
    c->inflight--;
    if (c->closing) {
        conn_maybe_free(c);
        return;
    }
    sess_auth_done(c->sess, r->status == AUTHPOOL_OK ? SESS_AUTH_OK : SESS_AUTH_FAIL,
                   authpool_status_text(r->status));
    sess_input(c->sess, NULL, 0);
    conn_after(c);
}

/* conn_settle - after the session's action settled: send the replies,
 * start TLS behind the 220, close a closing session once nothing is in
 * flight, else restart the timers and apply flow control. */
static void conn_settle(struct conn *c)
{
    conn_flush(c);
    if (sess_action(c->sess) == SESS_STARTTLS && !c->tls && sess_out(c->sess)->len == 0)
        tls_begin(c); /* the 220 is on its way in the clear; all else is TLS */
    bool closing = sess_action(c->sess) == SESS_CLOSE;
    if (closing && !c->send_busy && !c->committing) {
        conn_close(c);
        return;
    }
    touch(c);
    if (closing)
        return;
    /* flow control: receive only while the held-back input is small */
    size_t backlog = sess_backlog(c->sess);
    if (!c->recv_armed && !c->rearm_wait && !c->peer_eof && backlog < BACKLOG_MAX)
        recv_arm(c);
    else if (c->recv_armed && !c->recv_cancel && backlog >= BACKLOG_MAX)
        recv_stop(c);
}

/* conn_after - after any event: one loop over the session's action does
 * what it asks of the I/O layer (the message into the journal, the filters
 * and the commit; the end of the client's input; the password check; the
 * drain) until the action waits for something; then conn_settle. The end
 * of input is fed while it moves the session on: once in RUN (again after
 * each message it completed), and once to a session waiting for STARTTLS;
 * a RUN it leaves as RUN is stuck on unread replies. */
void conn_after(struct conn *c)
{
    bool eof_fed = false, eof_stuck = false;
    while (!c->closing) {
        conn_txn_check(c);
        enum sess_action a = sess_action(c->sess);
        switch (a) {
        case SESS_CHUNK:
        case SESS_FILTER:
        case SESS_SPOOL:
            if (conn_message_step(c, a))
                continue;
            break;
        case SESS_RUN:
            if (c->peer_eof && !eof_stuck) {
                sess_eof(c->sess); /* process what is left; ends the session when stuck */
                eof_fed = true;
                eof_stuck = sess_action(c->sess) == SESS_RUN;
                continue;
            }
            if (c->w->draining && !sess_in_transaction(c->sess))
                sess_shutdown(c->sess);
            break;
        case SESS_STARTTLS:
            if (c->peer_eof && !eof_fed) {
                sess_eof(c->sess); /* no handshake can follow: closes */
                eof_fed = true;
                continue;
            }
            break;
        case SESS_AUTH:
            if (!c->auth_pending)
                auth_submit(c);
            break;
        case SESS_MILTER:
            if (!c->milter_pending && conn_milter_ask(c))
                continue;
            break;
        case SESS_CLOSE: break;
        }
        break;
    }
    if (!c->closing)
        conn_settle(c);
}

/* admit - the limits at connect: max_sessions for everyone, the per-address
 * limits for clients outside trusted_networks. Returns 0 or the refusal. */
static enum sess_close_reason admit(struct conn *c)
{
    struct worker *w = c->w;
    const struct config *cfg = w->cur->cfg;
    unsigned n = atomic_fetch_add_explicit(&w->pool->sessions, 1, memory_order_relaxed);
    c->counted = true;
    if (n >= cfg->max_sessions || w->draining)
        return SESS_BY_LIMIT;
    if (sess_trusted(c->sess) || c->health)
        return 0;
    if (cfg->max_connect_rate_per_ip &&
        !ipl_rate_ok(&c->peer, cfg->max_connect_rate_per_ip, (uint32_t)(w->now / 60)))
        return SESS_BY_RATE;
    if (cfg->max_sessions_per_ip) {
        if (!ipl_acquire(&c->peer, cfg->max_sessions_per_ip))
            return SESS_BY_PER_IP;
        c->ip_counted = true;
    }
    return 0;
}

/* greet_arm - hold the banner for greet_pause_ms. */
static void greet_arm(struct conn *c, unsigned ms)
{
    uring_timeout_arm(&c->w->ring, &c->greet_ts, ms, ud(c, OP_GREET));
    c->greet_pending = true;
    c->inflight++;
}

/* conn_banner - the greet pause (if any) and the DNSBL check (if any) are
 * over: the banner, or the 554 of a blocked client. With dnsbl_action =
 * banner a block does not wait for the pause. */
static void conn_banner(struct conn *c)
{
    bool now = c->dnsbl_site && sess_snap(c->sess)->cfg->dnsbl_action == CFG_DNSBL_BANNER;
    if (c->dnsbl_pending || (c->greet_pending && !now))
        return;
    if (c->dnsbl_site)
        sess_dnsbl_refuse(c->sess, c->dnsbl_site);
    else
        sess_greet(c->sess);
}

/* dnsbl_log - a DNSBL line into the session's receivelog. */
static void dnsbl_log(void *arg, const char *line)
{
    struct conn *c = arg;
    sess_log(c->sess, "%s", line);
}

/* dnsbl_done - the DNSBL verdict (may run inside dnsbl_check). */
static void dnsbl_done(void *arg, const struct dnsbl_verdict *v)
{
    struct conn *c = arg;
    c->dnsbl_pending = false;
    c->inflight--;
    c->dnsbl_site = v->blocked ? v->site : NULL;
    if (c->closing) {
        conn_maybe_free(c);
        return;
    }
    conn_banner(c);
    conn_after(c);
}

/* dnsbl_begin - hold the banner for the DNSBL check of the client. */
static void dnsbl_begin(struct conn *c)
{
    c->dnsbl_pending = true;
    c->inflight++;
    dnsbl_check(c->w->dnsbl, sess_snap(c->sess)->cfg, &c->peer, dnsbl_log, dnsbl_done, c);
}

/* conn_on_greet - the greet pause or a tarpit hold ended (or was cancelled at
 * close). */
void conn_on_greet(struct conn *c, int res)
{
    c->inflight--;
    c->greet_pending = false;
    c->tarpit = false;
    if (c->closing) {
        conn_maybe_free(c);
        return;
    }
    if (res == -ETIME)
        conn_banner(c);
    conn_after(c);
}

/* conn_new - set up a session for an accepted socket. */
void conn_new(struct listener *l, int fd)
{
    struct worker *w = l->w;
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0) {
        close(fd);
        return;
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (c)
        mx_addr_from_sockaddr(&c->peer, (struct sockaddr *)&peer);
    struct sess *s = c ? sess_new(&w->env, w->cur, w->next_sid, &c->peer, l->port) : NULL;
    if (!s) {
        free(c);
        close(fd);
        return;
    }
    w->next_sid += w->pool->nworkers; /* ids: base + worker + k * nworkers (rlog.h) */
    c->w = w;
    c->sess = s;
    c->fd = fd;
    c->kind = l->kind;
    conn_link_all(c);
    worker_wsnap_find(w, w->cur)->nsess++;
    if (l->proxy)
        proxy_begin(c); /* the PROXY header first; conn_start when it is in */
    else
        conn_start(c);
    conn_after(c);
}

/* conn_start - the limits, the mode, the banner (or the TLS handshake) of
 * a new session; its client address is final. */
static void conn_start(struct conn *c)
{
    struct worker *w = c->w;
    struct sess *s = c->sess;
    enum sess_close_reason refuse = admit(c);
    unsigned pause = w->cur->cfg->greet_pause_ms;
    bool tls_ok = w->cur->tls != NULL;
    sess_set_mode(s, (tls_ok && c->kind != LK_SMTPS ? SESS_MODE_STARTTLS : 0) |
                         (c->kind == LK_SMTPS ? SESS_MODE_TLS : 0) |
                         (c->kind == LK_SUBMISSION ? SESS_MODE_SUBMISSION : 0));
    STAT_ADD(w->st.by_listener[c->kind], 1);
    if (refuse) {
        STAT_ADD(w->st.refused, 1);
        sess_refuse(s, refuse);
    } else if (c->kind == LK_SMTPS) {
        STAT_ADD(w->st.connections, 1);
        sess_greet_wait(s); /* the banner goes out encrypted, after the handshake */
        tls_begin(c);
    } else if ((pause || dnsbl_wanted(w->cur->cfg)) && !sess_trusted(s)) {
        STAT_ADD(w->st.connections, 1);
        sess_greet_wait(s);
        if (pause)
            greet_arm(c, pause);
        if (dnsbl_wanted(w->cur->cfg))
            dnsbl_begin(c); /* may decide at once (cached) */
    } else {
        STAT_ADD(w->st.connections, 1);
        sess_start(s);
    }
}

/* ---- behind a load balancer: the PROXY header phase (net/proxyio.c) ------ */

static void proxy_done(void *arg, const struct proxyio_result *r);
static void proxy_release(void *arg);
static const struct proxyio_ops proxy_ops = {.done = proxy_done, .release = proxy_release};

/* conn_input - received bytes to whoever reads them now: the PROXY
 * header phase, TLS, or the session. */
static void conn_input(struct conn *c, const char *buf, size_t len)
{
    if (c->pio && proxyio_pending(c->pio))
        proxyio_input(c->pio, buf, len);
    else if (c->tls)
        tls_input(c, buf, len);
    else
        sess_input(c->sess, buf, len);
}

/* proxy_begin - a proxy listener's connection: no banner until the
 * header is in; an untrusted sender is refused at once. */
static void proxy_begin(struct conn *c)
{
    c->pio = proxyio_start(&c->w->ring, c->w->cur->cfg, &c->peer, &proxy_ops, c);
    if (!c->pio) {
        sess_proxy_refused(c->sess, "out of memory");
        return;
    }
    c->inflight++; /* the header timer, until proxy_release */
    proxyio_input(c->pio, NULL, 0);
}

/* proxy_gone - the connection ended during the header phase. */
static void proxy_gone(struct conn *c, const char *why)
{
    if (c->pio && proxyio_pending(c->pio))
        proxyio_fail(c->pio, why);
}

/* proxy_done - the header (the session starts with the real client;
 * bytes after the header are its first input) or a refusal (no banner,
 * close). The caller runs conn_after. */
static void proxy_done(void *arg, const struct proxyio_result *r)
{
    struct conn *c = arg;
    if (!r->ok) {
        STAT_ADD(c->w->st.refused, 1);
        sess_proxy_refused(c->sess, r->why);
        return;
    }
    char via[SESS_VIA_MAX];
    proxyio_describe(r->hdr, &c->peer, via, sizeof(via));
    if (!r->hdr->local)
        c->peer = r->hdr->src;
    c->health = r->hdr->health;
    sess_set_peer(c->sess, &c->peer, via);
    conn_start(c);
    if (r->rest_len && sess_action(c->sess) != SESS_CLOSE)
        conn_input(c, r->rest, r->rest_len);
}

/* proxy_release - the header timer completed: the phase is over. */
static void proxy_release(void *arg)
{
    struct conn *c = arg;
    proxyio_free(c->pio);
    c->pio = NULL;
    c->inflight--;
    if (c->closing)
        conn_maybe_free(c);
    else
        conn_after(c);
}

/* ---- completions -------------------------------------------------------------- */

/* rearm_later - a receive stopped for lack of buffers restarts after the
 * current batch has returned its buffers. */
static void rearm_later(struct conn *c)
{
    struct worker *w = c->w;
    c->rearm_next = NULL; /* linked through the conn: no allocation, cannot fail */
    if (w->rearm_tail)
        w->rearm_tail->rearm_next = c;
    else
        w->rearm_head = c;
    w->rearm_tail = c;
    c->rearm_wait = true;
    c->inflight++; /* held by the re-arm list */
}

/* conn_on_recv - a multishot receive completion. */
void conn_on_recv(struct conn *c, struct io_uring_cqe *cqe)
{
    struct worker *w = c->w;
    int res = cqe->res;
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        c->recv_armed = false;
        c->recv_cancel = false;
        c->inflight--;
    }
    if (res > 0) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        STAT_ADD(w->st.bytes, (uint64_t)res);
        if (!c->closing)
            conn_input(c, w->bufs + (size_t)bid * BUF_SIZE, (size_t)res);
        worker_buf_return(w, bid);
    } else if (res == -ENOBUFS) {
        STAT_ADD(w->st.enobufs, 1);
        if (!c->recv_armed && !c->closing && !c->rearm_wait)
            rearm_later(c);
    } else if (res == -EINVAL && c->recv_limited && !c->recv_armed) {
        /* the kernel refused the multishot byte limit: receive one
         * buffer at a time from now on (conn_after re-arms) */
        if (!w->recv_single)
            fprintf(stderr,
                    "mxringd: worker %u: no multishot receive limit in this kernel; "
                    "receiving one buffer at a time\n",
                    w->idx);
        w->recv_single = true;
    } else if (res == 0) {
        c->peer_eof = true; /* half-close: answer what was sent, then close */
        proxy_gone(c, "connection closed before the PROXY header");
    } else if (res != -ECANCELED && !c->closing) {
        c->io_failed = true;
        proxy_gone(c, "connection failed before the PROXY header");
        sess_gone(c->sess, res == -ECONNRESET ? SESS_BY_PEER : SESS_BY_IOERR);
    }
    if (c->closing)
        conn_maybe_free(c);
    else
        conn_after(c);
}

/* conn_on_send - a send completion: continue a short send or take the next batch. */
void conn_on_send(struct conn *c, int res)
{
    c->inflight--;
    c->send_busy = false;
    if (res < 0) {
        c->io_failed = true;
        sess_gone(c->sess, res == -EPIPE || res == -ECONNRESET ? SESS_BY_PEER : SESS_BY_IOERR);
    } else if (c->sent + (size_t)res < c->sending.len) {
        c->sent += (size_t)res;
        struct io_uring_sqe *sqe = get_sqe(c->w);
        io_uring_prep_send(sqe, c->fd, c->sending.data + c->sent, c->sending.len - c->sent,
                           MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, ud(c, OP_SEND));
        c->send_busy = true;
        c->inflight++;
        return;
    }
    if (c->sending.cap > SEND_KEEP)
        sb_free(&c->sending);
    else
        sb_reset(&c->sending);
    if (c->closing) {
        conn_maybe_free(c);
        return;
    }
    if (sess_backlog(c->sess) && sess_action(c->sess) == SESS_RUN)
        sess_input(c->sess, NULL, 0); /* input held while replies were unread */
    conn_after(c);
}
