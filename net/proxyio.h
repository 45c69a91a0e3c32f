/* proxyio.h - the first phase of a connection on a proxy listener
 * (proxy_listen, proxy_smtps_listen): wait for the load balancer's PROXY
 * header (core/proxy.h) with a timeout, before any banner or TLS. It
 * accumulates the received bytes, checks the sender against
 * proxy_trusted_networks, and reports once: the header (and the bytes
 * after it, which belong to SMTP or TLS) or a refusal with its reason,
 * counted per sending address (iplimit). Its own io_uring timeout runs
 * through a struct uring_cb. The worker owns the connection; everything
 * here runs on that worker's thread. */
#ifndef MXRING_PROXYIO_H
#define MXRING_PROXYIO_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "proxy.h"

struct config;
struct io_uring;
struct proxyio;

/* struct proxyio_result - the one outcome. */
struct proxyio_result {
    bool ok;
    const char *why;             /* !ok: why the connection is refused (for the log) */
    const struct proxy_hdr *hdr; /* ok: the header */
    const char *rest;            /* ok: octets after the header in the last input */
    size_t rest_len;
};

/* struct proxyio_ops - the worker's side. done is called once (not after
 * proxyio_cancel); release once, when the timer has completed, after
 * which proxyio_free may be called. Either may be called from within
 * proxyio_input / proxyio_fail (done) or from the timer's completion. */
struct proxyio_ops {
    void (*done)(void *arg, const struct proxyio_result *r);
    void (*release)(void *arg);
};

/* proxyio_start - begin waiting for the header of a connection from
 * (the balancer, as accepted) with cfg's proxy_timeout_ms; NULL on
 * ENOMEM. Call proxyio_input(p, NULL, 0) next: an untrusted sender is
 * refused at once. */
struct proxyio *proxyio_start(struct io_uring *ring, const struct config *cfg,
                              const struct mx_addr *from, const struct proxyio_ops *ops, void *arg);
/* proxyio_input - bytes received (len 0: evaluate what is there). Calls
 * done when the header is complete or can no longer be valid. rest in the
 * result points into buf. */
void proxyio_input(struct proxyio *p, const char *buf, size_t len);
/* proxyio_fail - the connection ended or failed before the header. */
void proxyio_fail(struct proxyio *p, const char *why);
/* proxyio_cancel - the worker closes the connection: no done call; the
 * timer is cancelled (release still follows). */
void proxyio_cancel(struct proxyio *p);
/* proxyio_pending - still waiting for the header (no done yet)? */
bool proxyio_pending(const struct proxyio *p);
/* proxyio_free - release p (after release was called). */
void proxyio_free(struct proxyio *p);

/* proxyio_describe - the "via" text for the receivelog's connection
 * line: the balancer, the PROXY version, a LOCAL health check, TLS
 * terminated at the balancer (PP2_TYPE_SSL version and cipher), the
 * AUTHORITY (SNI) name. */
void proxyio_describe(const struct proxy_hdr *h, const struct mx_addr *balancer, char *out,
                      size_t cap);

#endif
