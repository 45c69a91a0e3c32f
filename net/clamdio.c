/* clamdio.c - clamd INSTREAM scans of one worker over its io_uring ring: a
 * scan connects to the clamd key's socket, streams the message and reads
 * clamd's one-line reply, all as ring operations, and reports one verdict.
 * Every function runs on the worker thread; nothing here blocks.
 *
 * Operations: each in-flight operation is a struct uring_cb counted in the
 * scan's `pending`; one connect, sendmsg or recv at a time, beside the
 * scan's timeout and the final close. A scan is finished only when it is
 * closed AND every CQE came back (the timeout removed, an operation cut by
 * the timeout cancelled, and the cancels waited for). Cancel requests
 * themselves carry user_data 0 and are ignored by the dispatcher.
 *
 * Streaming: the message is read through its source (a plain synchronous
 * read) one piece at a time into one buffer of CLAMDIO_PIECE octets, which
 * is also the INSTREAM chunk size: the core/clamd.c cursor names the piece
 * it needs next (clamd_stream_need) and takes the buffer as its window, so
 * each sendmsg carries at most one piece with its length prefix (and the
 * command before the first, the terminator after the last). A failed read
 * fails the scan, which scanner_failure then decides. */
#include "clamdio.h"

#include <errno.h>
#include <liburing.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clamd.h"
#include "config.h"
#include "uring.h"

#define CLAMDIO_IOV_MAX 4u /* command, one piece's prefix and data, terminator */
#define CLAMDIO_DETAIL_MAX 600u
#define CLAMDIO_WHY_MAX 192u /* why a scan failed */

_Static_assert(CLAMDIO_PIECE <= UINT32_MAX, "a piece is one INSTREAM chunk");

enum clam_step { C_CONNECT = 0, C_SEND, C_RECV, C_CLOSE };

struct clam {
    struct uring_cb op_cb; /* connect, sendmsg or recv: one at a time */
    struct uring_cb tmo_cb;
    struct uring_cb close_cb;
    struct io_uring *ring;
    const struct config *cfg;
    struct filter_src src;
    filter_log_fn log;
    filter_done_fn done;
    void *arg;
    enum clam_step step;
    int fd;
    unsigned pending;
    bool op_armed, tmo_armed, timed_out;
    bool failed; /* the scan failed: why says how */
    char why[CLAMDIO_WHY_MAX];
    struct __kernel_timespec ts;
    struct clamd_stream cs;
    uint8_t *piece; /* the cursor's window: one piece of the message */
    struct iovec iov[CLAMDIO_IOV_MAX];
    struct msghdr mh;
    struct clamd_reply rep;
    size_t rlen;
    char reply[CLAMD_REPLY_MAX + 1];
};

static void clam_progress(struct clam *c);

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
    c->step = C_CLOSE;
    if (c->tmo_armed)
        uring_timeout_cancel(c->ring, uring_cb_data(&c->tmo_cb));
    if (c->fd >= 0) {
        struct io_uring_sqe *sqe = uring_get_sqe(c->ring);
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

/* clam_read - n message octets at off into the piece buffer, which becomes
 * the cursor's window; false (the scan failed) when the source fails. */
static bool clam_read(struct clam *c, size_t off, size_t n)
{
    long r = filter_src_fill(&c->src, off, c->piece, n);
    if (r < 0) {
        clam_fail(c, "message read at offset %zu failed: %s", off, strerror((int)-r));
        return false;
    }
    clamd_stream_window(&c->cs, c->piece, off, n);
    return true;
}

/* clam_send - send the next part of the INSTREAM stream, reading the next
 * piece of the message first when the cursor needs it. */
static void clam_send(struct clam *c)
{
    size_t off, n;
    if (clamd_stream_need(&c->cs, &off, &n) && !clam_read(c, off, n)) {
        clam_close(c);
        return;
    }
    size_t k = clamd_stream_fill(&c->cs, c->iov, CLAMDIO_IOV_MAX);
    c->mh = (struct msghdr){.msg_iov = c->iov, .msg_iovlen = k};
    struct io_uring_sqe *sqe = uring_get_sqe(c->ring);
    io_uring_prep_sendmsg(sqe, c->fd, &c->mh, MSG_NOSIGNAL);
    clam_op(c, sqe, C_SEND);
}

/* clam_recv - read (more of) clamd's reply. */
static void clam_recv(struct clam *c)
{
    struct io_uring_sqe *sqe = uring_get_sqe(c->ring);
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

/* clam_received - res more octets of the reply (0: clamd closed). */
static void clam_received(struct clam *c, int res)
{
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
}

/* clam_step_done - the connect, a sendmsg or a recv completed with res. */
static void clam_step_done(struct clam *c, int res)
{
    if (c->step == C_CONNECT && res < 0) {
        clam_fail(c, "connect to %s: %s", c->cfg->clamd.text, strerror(-res));
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
        clam_received(c, res);
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
        clam_fail(c, "timeout after %u ms", c->cfg->clamd_timeout_ms);
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
            uring_cancel(c->ring, uring_cb_data(&c->op_cb));
        } else {
            clam_fail(c, "timeout after %u ms", c->cfg->clamd_timeout_ms);
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

/* clam_decide - log the engine's verdict (or the failure); the verdict, its
 * detail into detail[0..n). */
static enum sess_verdict clam_decide(struct clam *c, char *detail, size_t n)
{
    const struct config *cfg = c->cfg;
    detail[0] = 0;
    if (c->failed) {
        bool tempfail = cfg->scanner_failure == CFG_SCAN_TEMPFAIL;
        filter_logf(c->log, c->arg, "Antivirus: scan failed: %s: %s", c->why,
                    tempfail ? "tempfail" : "accepted unscanned (scanner_failure = accept)");
        snprintf(detail, n, "antivirus: %s", c->why);
        return tempfail ? SESS_VERDICT_TEMPFAIL : SESS_VERDICT_PASS;
    }
    if (c->rep.verdict == CLAMD_FOUND) {
        bool reject = cfg->virus_action == CFG_VIRUS_REJECT;
        filter_logf(c->log, c->arg, "Antivirus: stream: %s FOUND: %s", c->rep.name,
                    reject ? "reject" : "quarantine");
        snprintf(detail, n, reject ? "%s" : "virus %s", c->rep.name);
        return reject ? SESS_VERDICT_REJECT_VIRUS : SESS_VERDICT_QUARANTINE;
    }
    filter_logf(c->log, c->arg, "Antivirus: clean");
    return SESS_VERDICT_PASS;
}

/* clam_progress - once closed and every CQE is back: decide, release the
 * scan, report. */
static void clam_progress(struct clam *c)
{
    if (c->step != C_CLOSE || c->pending)
        return;
    char detail[CLAMDIO_DETAIL_MAX];
    enum sess_verdict v = clam_decide(c, detail, sizeof detail);
    filter_done_fn done = c->done;
    void *arg = c->arg;
    free(c->piece);
    free(c);
    done(arg, v, detail);
}

/* clam_new - a scan of src, with its piece buffer; NULL on ENOMEM. */
static struct clam *clam_new(struct io_uring *ring, const struct config *cfg,
                             const struct filter_src *src)
{
    size_t cap = src->len < CLAMDIO_PIECE ? src->len : CLAMDIO_PIECE;
    struct clam *c = calloc(1, sizeof *c);
    uint8_t *piece = malloc(cap ? cap : 1);
    if (!c || !piece) {
        free(c);
        free(piece);
        return NULL;
    }
    c->op_cb.fn = on_clam_op;
    c->tmo_cb.fn = on_clam_tmo;
    c->close_cb.fn = on_clam_close;
    c->ring = ring;
    c->cfg = cfg;
    c->src = *src;
    c->fd = -1;
    c->piece = piece;
    clamd_stream_init(&c->cs, NULL, src->len, CLAMDIO_PIECE);
    return c;
}

/* clamdio_scan - see clamdio.h: connect, stream, read. */
void clamdio_scan(struct io_uring *ring, const struct config *cfg, const struct filter_src *src,
                  filter_log_fn log, filter_done_fn done, void *arg)
{
    if (src->len > cfg->clamd_max_size) {
        filter_logf(log, arg, "Antivirus: not scanned: %zu octets over clamd_max_size", src->len);
        done(arg, SESS_VERDICT_PASS, "");
        return;
    }
    struct clam *c = clam_new(ring, cfg, src);
    if (!c) {
        bool tempfail = cfg->scanner_failure == CFG_SCAN_TEMPFAIL;
        filter_logf(log, arg, "Antivirus: scan failed: out of memory: %s",
                    tempfail ? "tempfail" : "accepted unscanned");
        done(arg, tempfail ? SESS_VERDICT_TEMPFAIL : SESS_VERDICT_PASS,
             tempfail ? "antivirus: out of memory" : "");
        return;
    }
    c->log = log;
    c->done = done;
    c->arg = arg;
    if ((c->fd = socket(cfg->clamd.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        clam_fail(c, "socket: %s", strerror(errno));
        clam_close(c);
        clam_progress(c);
        return;
    }
    uring_timeout_arm(ring, &c->ts, cfg->clamd_timeout_ms, uring_cb_data(&c->tmo_cb));
    c->tmo_armed = true;
    c->pending++;
    struct io_uring_sqe *sqe = uring_get_sqe(ring);
    io_uring_prep_connect(sqe, c->fd, (const struct sockaddr *)&cfg->clamd.ss, cfg->clamd.len);
    clam_op(c, sqe, C_CONNECT);
}
