/* dlv_dns.c - hop host names resolved without blocking the delivery ring:
 * one A lookup per pool at a time through the ring's DNS engine
 * (net/dnsq.c, the dns_servers of the snapshot in use), the answer cached
 * in the pool for the record's TTL (DLV_DNS_TTL_MIN..MAX); NXDOMAIN / no A
 * record ("host not found") or a DNS failure ("DNS timeout", ...) makes the
 * hop down like a refused connection: its jobs go to the route's next hop
 * or are deferred with that error. Delivery thread only. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dlv_int.h"
#include "snap.h"

#define DLV_DNS_WORKER 0xfeu /* seeds the engine's query ids (workers use 0..) */

/* dlv_dns_open - the ring's DNS engine (made at start, before any pool). */
int dlv_dns_open(struct dlv *d)
{
    d->dq = dnsq_engine_new(&d->ring, DLV_DNS_WORKER, NULL);
    return d->dq ? 0 : -1;
}

/* dlv_dns_free - after the ring is gone (no lookup is left then: the loop
 * waits for them, see dlv_dns_busy). */
void dlv_dns_free(struct dlv *d)
{
    dnsq_engine_free(d->dq);
    d->dq = NULL;
}

/* dlv_dns_busy - a lookup is still running (the loop waits for it at stop:
 * each ends within dns_timeout_ms). */
bool dlv_dns_busy(const struct dlv *d)
{
    for (const struct dlv_pool *p = d->pools; p; p = p->next)
        if (p->dns_snap)
            return true;
    return false;
}

/* dns_failure - the deferral text of a failed lookup of host. */
static void dns_failure(const struct dnsq_item *it, const char *host, char *buf, size_t len)
{
    if (it->state == DNSQ_NONE || it->state == DNSQ_SKIPPED)
        snprintf(buf, len, "451 4.4.4 host not found: %s (no A record)", host);
    else if (it->why && strcmp(it->why, "timeout") == 0)
        snprintf(buf, len, "451 4.4.3 DNS timeout resolving %s", host);
    else
        snprintf(buf, len, "451 4.4.3 DNS failure resolving %s: %s", host,
                 it->why ? it->why : "no answer");
}

/* on_resolved - dnsq_done_fn of a pool's lookup: cache the answer and
 * open connections, or make the hop down with the reason. */
static void on_resolved(void *arg)
{
    struct dlv_pool *p = arg;
    struct dlv *d = p->dlv;
    snap_unref(p->dns_snap);
    p->dns_snap = NULL;
    if (p->dns.state != DNSQ_ANSWER) {
        char why[ROUTE_HOST_MAX + 96];
        dns_failure(&p->dns, p->hop.host, why, sizeof(why));
        dlv_logf(d, 0, "hop %s: %s", p->hop.text, why);
        dlv_pool_down(d, p, why);
        return;
    }
    uint32_t ttl = p->dns.ttl < DLV_DNS_TTL_MIN   ? DLV_DNS_TTL_MIN
                   : p->dns.ttl > DLV_DNS_TTL_MAX ? DLV_DNS_TTL_MAX
                                                  : p->dns.ttl;
    struct sockaddr_in *sin = (struct sockaddr_in *)&p->dns_addr;
    memset(&p->dns_addr, 0, sizeof(p->dns_addr));
    sin->sin_family = AF_INET;
    sin->sin_port = htons(p->hop.port);
    memcpy(&sin->sin_addr, p->dns.addr, 4);
    p->dns_until = d->now_ms + (uint64_t)ttl * 1000u;
    char a[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, p->dns.addr, a, sizeof(a));
    dlv_logf(d, 0, "hop %s: %s is %s (ttl %u s, kept %u s)", p->hop.text, p->hop.host, a,
             p->dns.ttl, ttl);
    dlv_pool_kick(d, p);
}

/* dlv_dns_addr - the address for a new connection of p into *ss / *sl:
 * true at once for an address or unix hop and for a name with a fresh
 * answer; false while the name is being looked up (started here when
 * needed; dlv_pool_kick runs again when it ends). */
bool dlv_dns_addr(struct dlv *d, struct dlv_pool *p, struct sockaddr_storage *ss, socklen_t *sl)
{
    if (p->hop.has_addr || p->hop.is_unix) {
        *ss = p->hop.addr;
        *sl = p->hop.addrlen;
        return true;
    }
    if (p->dns_until > d->now_ms) {
        *ss = p->dns_addr;
        *sl = sizeof(struct sockaddr_in);
        return true;
    }
    if (p->dns_snap)
        return false; /* running */
    const struct config *c = dlv_cfg(d);
    memset(&p->dns, 0, sizeof(p->dns));
    snprintf(p->dns.name, sizeof(p->dns.name), "%s", p->hop.host);
    if (strlen(p->hop.host) >= sizeof(p->dns.name))
        p->dns.state = DNSQ_SKIPPED; /* too long for DNS: "not found" */
    p->dlv = d;
    p->dns_snap = d->snap; /* keeps c->dns_servers alive until the end */
    snap_ref(d->snap);
    dnsq_lookup(d->dq, c->dns_servers, c->ndns_servers, c->dns_timeout_ms, &p->dns, 1, on_resolved,
                p); /* may finish (and call back) before returning */
    return false;
}
