/* proxyio.c - the PROXY header phase of a proxy listener's connection (see
 * proxyio.h): the bytes so far in a fixed buffer of PROXY_HDR_MAX octets
 * (the parser refuses anything longer, so it never overflows), re-parsed
 * on every input; one io_uring timeout bounds the whole header. Runs on
 * the owning worker's thread only. */
#include "proxyio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "iplimit.h"
#include "uring.h"

struct proxyio {
    struct uring_cb cb; /* the timeout (first: the aligned member) */
    struct io_uring *ring;
    struct __kernel_timespec ts;
    const struct proxyio_ops *ops;
    void *arg;
    struct mx_addr from; /* the balancer, as accepted */
    bool trusted;        /* from is in proxy_trusted_networks */
    bool finished;       /* done called, or cancelled */
    bool timer_armed;
    unsigned timeout_ms;
    size_t len;
    char buf[PROXY_HDR_MAX];
    struct proxy_hdr hdr;
    char why[160];
};

/* refuse - count the refusal against the sender, report it (last step:
 * done may free nothing, but must not be followed by use of p's result). */
static void refuse(struct proxyio *p, const char *why)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    uint32_t n = ipl_proxy_refused_add(&p->from, (uint32_t)(ts.tv_sec / IPL_UNKNOWN_WINDOW_S));
    snprintf(p->why, sizeof(p->why), "%s (from [%s], %u refused in this 10-minute window)", why,
             p->from.text, n);
    p->finished = true;
    if (p->timer_armed)
        uring_timeout_cancel(p->ring, uring_cb_data(&p->cb));
    const struct proxyio_result r = {.ok = false, .why = p->why};
    p->ops->done(p->arg, &r);
}

/* on_timer - the timeout fired (or was cancelled). */
static void on_timer(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    struct proxyio *p = (struct proxyio *)cb;
    p->timer_armed = false;
    if (!p->finished && cqe->res == -ETIME) {
        char why[64];
        snprintf(why, sizeof(why), "no complete PROXY header within %u ms", p->timeout_ms);
        refuse(p, why);
    }
    p->ops->release(p->arg);
}

/* proxyio_start - see proxyio.h. */
struct proxyio *proxyio_start(struct io_uring *ring, const struct config *cfg,
                              const struct mx_addr *from, const struct proxyio_ops *ops, void *arg)
{
    struct proxyio *p = aligned_alloc(URING_OBJ_ALIGN, (sizeof(*p) + URING_OBJ_ALIGN - 1) /
                                                           URING_OBJ_ALIGN * URING_OBJ_ALIGN);
    if (!p)
        return NULL;
    memset(p, 0, sizeof(*p));
    p->cb.fn = on_timer;
    p->ring = ring;
    p->ops = ops;
    p->arg = arg;
    p->from = *from;
    p->trusted = cfg_cidr_match(cfg->proxy_trusted_networks, cfg->nproxy_trusted_networks, from);
    p->timeout_ms = cfg->proxy_timeout_ms;
    uring_timeout_arm(ring, &p->ts, p->timeout_ms, uring_cb_data(&p->cb));
    p->timer_armed = true;
    return p;
}

/* proxyio_input - see proxyio.h. */
void proxyio_input(struct proxyio *p, const char *buf, size_t len)
{
    if (p->finished)
        return;
    if (!p->trusted) {
        refuse(p, "sender not in proxy_trusted_networks");
        return;
    }
    size_t prev = p->len, room = sizeof(p->buf) - p->len, take = len < room ? len : room;
    if (take)
        memcpy(p->buf + p->len, buf, take);
    p->len += take;
    const char *why;
    enum proxy_rc rc = proxy_parse(p->buf, p->len, &p->hdr, &why);
    if (rc == PROXY_MORE)
        return; /* the parser refuses before the buffer is full */
    if (rc == PROXY_ERROR) {
        refuse(p, why);
        return;
    }
    p->finished = true;
    if (p->timer_armed)
        uring_timeout_cancel(p->ring, uring_cb_data(&p->cb));
    size_t used = p->hdr.len - prev; /* prev < hdr.len: the last parse asked for more */
    const struct proxyio_result r = {
        .ok = true, .hdr = &p->hdr, .rest = buf + used, .rest_len = len - used};
    p->ops->done(p->arg, &r);
}

/* proxyio_fail - see proxyio.h. */
void proxyio_fail(struct proxyio *p, const char *why)
{
    if (!p->finished)
        refuse(p, why);
}

/* proxyio_cancel - see proxyio.h. */
void proxyio_cancel(struct proxyio *p)
{
    if (p->finished)
        return;
    p->finished = true;
    if (p->timer_armed)
        uring_timeout_cancel(p->ring, uring_cb_data(&p->cb));
}

/* proxyio_pending - see proxyio.h. */
bool proxyio_pending(const struct proxyio *p)
{
    return !p->finished;
}

/* proxyio_free - see proxyio.h. */
void proxyio_free(struct proxyio *p)
{
    free(p);
}

/* proxyio_describe - see proxyio.h. */
void proxyio_describe(const struct proxy_hdr *h, const struct mx_addr *balancer, char *out,
                      size_t cap)
{
    int n =
        snprintf(out, cap, "via [%s]:%u (PROXY v%u%s", balancer->text, balancer->port, h->version,
                 h->health  ? " LOCAL: balancer health check"
                 : h->local ? ": no client address"
                            : "");
    if (n > 0 && (size_t)n < cap && h->ssl)
        n += snprintf(out + n, cap - (size_t)n, ", TLS at the balancer: %s %s",
                      h->ssl_version[0] ? h->ssl_version : "?",
                      h->ssl_cipher[0] ? h->ssl_cipher : "?");
    if (n > 0 && (size_t)n < cap && h->authority[0])
        n += snprintf(out + n, cap - (size_t)n, ", authority %s", h->authority);
    if (n > 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, ")");
}
