/* dlv_dns.c - hop host names resolved without blocking the delivery ring,
 * in glibc's default order "hosts: files dns": first hosts_file (read by
 * this thread, see hosts_refresh), then A and AAAA in one batch through the
 * ring's DNS engine (net/dnsq.c, the dns_servers of the snapshot in use),
 * cached in the pool (DNS: for the smallest TTL, DLV_DNS_TTL_MIN..MAX;
 * hosts_file: DLV_HOSTS_KEEP_MS). Addresses are tried IPv6 first, then
 * IPv4; a connection that fails before the greeting moves the pool on to
 * the next address (dlv_dns_next), and only the last one's failure makes
 * the hop down. Delivery thread only. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "dlv_int.h"
#include "hostsfile.h"
#include "snap.h"

#define DLV_DNS_WORKER 0xfeu     /* seeds the engine's query ids (workers use 0..) */
#define DLV_HOSTS_CHECK_MS 1000u /* hosts_file is stat()ed at most this often */
#define DLV_HOSTS_MAX (8u << 20) /* octets of hosts_file read (the rest is ignored) */
#define DLV_ADDR_LIST_MAX (DLV_ADDRS_MAX * (INET6_ADDRSTRLEN + 2))

enum { Q_A = 0, Q_AAAA = 1 }; /* p->dns[] */

/* The text of hosts_file as last read, and what it was read from. */
struct dlv_hosts {
    char *path; /* NULL: not read yet */
    char *text; /* NULL: unreadable (no entries) */
    size_t len;
    struct stat st;      /* of what was read (dev, ino, size, mtime) */
    uint64_t checked_ms; /* last stat() (now_ms) */
};

/* dlv_dns_open - the ring's DNS engine and the hosts_file state (made at
 * start, before any pool). */
int dlv_dns_open(struct dlv *d)
{
    d->dq = dnsq_engine_new(&d->ring, DLV_DNS_WORKER, NULL);
    d->hosts = calloc(1, sizeof(*d->hosts));
    return d->dq && d->hosts ? 0 : -1;
}

/* dlv_dns_free - after the ring is gone (no lookup is left then: the loop
 * waits for them, see dlv_dns_busy). */
void dlv_dns_free(struct dlv *d)
{
    dnsq_engine_free(d->dq);
    d->dq = NULL;
    if (d->hosts) {
        free(d->hosts->path);
        free(d->hosts->text);
        free(d->hosts);
        d->hosts = NULL;
    }
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

/* ---- hosts_file -------------------------------------------------------- */

/* same_file - st describes the file h->text was read from. */
static bool same_file(const struct dlv_hosts *h, const struct stat *st)
{
    return h->st.st_dev == st->st_dev && h->st.st_ino == st->st_ino &&
           h->st.st_size == st->st_size && h->st.st_mtim.tv_sec == st->st_mtim.tv_sec &&
           h->st.st_mtim.tv_nsec == st->st_mtim.tv_nsec;
}

/* hosts_read - read path (at most DLV_HOSTS_MAX octets) into h->text;
 * NULL text when it cannot be read. */
static void hosts_read(struct dlv *d, struct dlv_hosts *h, const char *path, const struct stat *st)
{
    free(h->text);
    h->text = NULL;
    h->len = 0;
    h->st = *st;
    size_t cap = st->st_size > (off_t)DLV_HOSTS_MAX ? DLV_HOSTS_MAX : (size_t)st->st_size;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *t = fd >= 0 ? malloc(cap + 1) : NULL;
    ssize_t r = 1;
    int err = fd < 0 ? errno : 0;
    while (t && h->len < cap && (r = read(fd, t + h->len, cap - h->len)) > 0)
        h->len += (size_t)r;
    if (r < 0 || (fd >= 0 && !t))
        err = errno;
    if (fd >= 0)
        close(fd);
    if (!t || r < 0) {
        free(t);
        h->len = 0;
        dlv_logf(d, 0, "hosts_file %s: cannot be read: %s", path, strerror(err));
        return;
    }
    h->text = t;
    if (st->st_size > (off_t)DLV_HOSTS_MAX)
        dlv_logf(d, 0, "hosts_file %s: only its first %u octets are used", path, DLV_HOSTS_MAX);
}

/* hosts_refresh - the text of the configured hosts_file, (re-)read when
 * the key changed or, checked at most once a second, the file did. A
 * small local file read on the delivery thread (as getaddrinfo does on
 * every call); it happens only while a hop name needs resolving. */
static const struct dlv_hosts *hosts_refresh(struct dlv *d)
{
    struct dlv_hosts *h = d->hosts;
    const char *path = dlv_cfg(d)->hosts_file;
    if (!path || !*path)
        return NULL;
    bool same_path = h->path && strcmp(h->path, path) == 0;
    if (same_path && d->now_ms - h->checked_ms < DLV_HOSTS_CHECK_MS)
        return h;
    h->checked_ms = d->now_ms;
    struct stat st;
    if (stat(path, &st) != 0)
        memset(&st, 0, sizeof(st)); /* gone: read fails and the text is dropped */
    if (same_path && same_file(h, &st))
        return h;
    if (!same_path) {
        free(h->path);
        h->path = strdup(path);
    }
    hosts_read(d, h, path, &st);
    return h;
}

/* ---- the address list --------------------------------------------------- */

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
    return a->ss_family == AF_INET6 && x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

/* sa_make - the sockaddr of a raw address of family with port. */
static void sa_make(struct sockaddr_storage *ss, int family, const uint8_t *a, uint16_t port)
{
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        memcpy(&s6->sin6_addr, a, 16);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        memcpy(&s4->sin_addr, a, 4);
    }
}

/* sa_text - the address of ss as text (no port). */
static const char *sa_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    const void *a = ss->ss_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
    return inet_ntop(ss->ss_family, a, buf, (socklen_t)len) ? buf : "?";
}

/* list_text - "a, b, c": the addresses of a list. */
static void list_text(const struct sockaddr_storage *l, unsigned n, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = 0;
    for (unsigned i = 0; i < n && o < len; i++) {
        char a[INET6_ADDRSTRLEN];
        int w = snprintf(buf + o, len - o, "%s%s", i ? ", " : "", sa_text(&l[i], a, sizeof(a)));
        o += w > 0 ? (size_t)w : 0;
    }
}

/* pool_set - make l[0..n) the pool's addresses; the cursor goes back to the
 * first unless the list is the one in use. True when it changed. */
static bool pool_set(struct dlv_pool *p, const struct sockaddr_storage *l, unsigned n, bool hosts)
{
    bool same = n == p->dns_naddr && hosts == p->dns_hosts;
    for (unsigned i = 0; same && i < n; i++)
        same = sa_same(&l[i], &p->dns_addr[i]);
    if (same)
        return false;
    memcpy(p->dns_addr, l, n * sizeof(*l));
    p->dns_naddr = n;
    p->dns_cur = 0;
    p->dns_hosts = hosts;
    return true;
}

/* addr_out - the pool's current address into *ss / *sl. */
static void addr_out(const struct dlv_pool *p, struct sockaddr_storage *ss, socklen_t *sl)
{
    *ss = p->dns_addr[p->dns_cur];
    *sl = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* from_hosts - the hop name in hosts_file: its addresses (IPv6 first) become
 * the pool's for DLV_HOSTS_KEEP_MS. False when it is not there. */
static bool from_hosts(struct dlv *d, struct dlv_pool *p)
{
    const struct dlv_hosts *h = hosts_refresh(d);
    struct hosts_addr a[DLV_ADDRS_MAX];
    size_t n = h ? hosts_lookup(h->text, h->len, p->hop.host, a, DLV_ADDRS_MAX) : 0;
    if (n == 0)
        return false;
    struct sockaddr_storage l[DLV_ADDRS_MAX];
    unsigned k = 0;
    for (int pass = 0; pass < 2; pass++) /* AF_INET6, then AF_INET */
        for (size_t i = 0; i < n; i++)
            if ((a[i].family == AF_INET6) == (pass == 0))
                sa_make(&l[k++], a[i].family, a[i].addr, p->hop.port);
    if (pool_set(p, l, k, true)) {
        char t[DLV_ADDR_LIST_MAX];
        list_text(l, k, t, sizeof(t));
        dlv_logf(d, 0, "hop %s: %s is %s (hosts_file %s)", p->hop.text, p->hop.host, t, h->path);
    }
    p->dns_until = d->now_ms + DLV_HOSTS_KEEP_MS;
    return true;
}

/* ---- DNS ---------------------------------------------------------------- */

/* dns_failure - the deferral text of a failed lookup of host: the A
 * lookup's failure, else the AAAA one's, else "not found". */
static void dns_failure(const struct dnsq_item it[2], const char *host, char *buf, size_t len)
{
    const struct dnsq_item *f = it[Q_A].state == DNSQ_FAILED      ? &it[Q_A]
                                : it[Q_AAAA].state == DNSQ_FAILED ? &it[Q_AAAA]
                                                                  : NULL;
    if (!f)
        snprintf(buf, len, "451 4.4.4 host not found: %s (no A or AAAA record)", host);
    else if (f->why && strcmp(f->why, "timeout") == 0)
        snprintf(buf, len, "451 4.4.3 DNS timeout resolving %s", host);
    else
        snprintf(buf, len, "451 4.4.3 DNS failure resolving %s: %s", host,
                 f->why ? f->why : "no answer");
}

/* dns_list - the answered addresses, AAAA first, into l[]; *ttl the
 * smallest TTL of the answers. Returns how many. */
static unsigned dns_list(const struct dlv_pool *p, struct sockaddr_storage *l, uint32_t *ttl)
{
    static const int fam[2] = {[Q_A] = AF_INET, [Q_AAAA] = AF_INET6};
    unsigned n = 0;
    bool any = false;
    for (int q = Q_AAAA; q >= Q_A; q--) {
        const struct dnsq_item *it = &p->dns[q];
        if (it->state != DNSQ_ANSWER)
            continue;
        *ttl = any && *ttl < it->ttl ? *ttl : it->ttl;
        any = true;
        for (unsigned i = 0; i < it->naddr && n < DLV_ADDRS_MAX; i++)
            sa_make(&l[n++], fam[q], it->addr + (size_t)i * DNSMSG_ADDR_LEN, p->hop.port);
    }
    return n;
}

/* on_resolved - dnsq_done_fn of a pool's lookup: cache the answer and
 * open connections, or make the hop down with the reason. */
static void on_resolved(void *arg)
{
    struct dlv_pool *p = arg;
    struct dlv *d = p->dlv;
    snap_unref(p->dns_snap);
    p->dns_snap = NULL;
    struct sockaddr_storage l[DLV_ADDRS_MAX];
    uint32_t got = 0;
    unsigned n = dns_list(p, l, &got);
    if (n == 0) {
        char why[ROUTE_HOST_MAX + 96];
        dns_failure(p->dns, p->hop.host, why, sizeof(why));
        dlv_logf(d, 0, "hop %s: %s", p->hop.text, why);
        dlv_pool_down(d, p, why);
        return;
    }
    uint32_t ttl = got < DLV_DNS_TTL_MIN   ? DLV_DNS_TTL_MIN
                   : got > DLV_DNS_TTL_MAX ? DLV_DNS_TTL_MAX
                                           : got;
    pool_set(p, l, n, false); /* the same list keeps its cursor */
    p->dns_until = d->now_ms + (uint64_t)ttl * 1000u;
    char t[DLV_ADDR_LIST_MAX];
    list_text(l, n, t, sizeof(t));
    const struct dnsq_item *v6 = &p->dns[Q_AAAA];
    dlv_logf(d, 0, "hop %s: %s is %s (ttl %u s, kept %u s)%s%s", p->hop.text, p->hop.host, t, got,
             ttl, v6->state == DNSQ_FAILED ? "; AAAA lookup failed: " : "",
             v6->state == DNSQ_FAILED && v6->why ? v6->why : "");
    dlv_pool_kick(d, p);
}

/* dns_start - look the hop name up (A and AAAA in one batch); on_resolved
 * runs when both are done, maybe before this returns. */
static void dns_start(struct dlv *d, struct dlv_pool *p)
{
    const struct config *c = dlv_cfg(d);
    static const uint16_t types[2] = {[Q_A] = DNSMSG_TYPE_A, [Q_AAAA] = DNSMSG_TYPE_AAAA};
    memset(p->dns, 0, sizeof(p->dns));
    for (int q = Q_A; q <= Q_AAAA; q++) {
        snprintf(p->dns[q].name, sizeof(p->dns[q].name), "%s", p->hop.host);
        p->dns[q].type = types[q];
        if (strlen(p->hop.host) >= sizeof(p->dns[q].name))
            p->dns[q].state = DNSQ_SKIPPED; /* too long for DNS: "not found" */
    }
    p->dlv = d;
    p->dns_snap = d->snap; /* keeps c->dns_servers alive until the end */
    snap_ref(d->snap);
    dnsq_lookup(d->dq, c->dns_servers, c->ndns_servers, c->dns_timeout_ms, p->dns, 2, on_resolved,
                p);
}

/* dlv_dns_addr - the address for a new connection of p into *ss / *sl:
 * true at once for an address or unix hop and for a name with a fresh
 * answer (hosts_file or DNS); false while the name is being looked up
 * (started here when needed; dlv_pool_kick runs again when it ends). */
bool dlv_dns_addr(struct dlv *d, struct dlv_pool *p, struct sockaddr_storage *ss, socklen_t *sl)
{
    if (p->hop.has_addr || p->hop.is_unix) {
        *ss = p->hop.addr;
        *sl = p->hop.addrlen;
        return true;
    }
    if (p->dns_until > d->now_ms && p->dns_naddr) {
        addr_out(p, ss, sl);
        return true;
    }
    if (p->dns_snap)
        return false; /* running */
    if (from_hosts(d, p)) {
        addr_out(p, ss, sl);
        return true;
    }
    dns_start(d, p);
    return false;
}

/* dlv_dns_next - a connection of p to failed ended before the greeting
 * with why: move the pool on to its name's next address. True when one is
 * left to try (the hop is not down); false for an address or unix hop and
 * after the last address (the cursor is back at the first then). A failure
 * of an address the pool already left counts for nothing. */
bool dlv_dns_next(struct dlv *d, struct dlv_pool *p, const struct sockaddr_storage *failed,
                  const char *why)
{
    if (p->hop.has_addr || p->hop.is_unix || p->dns_naddr == 0)
        return false;
    if (!sa_same(failed, &p->dns_addr[p->dns_cur]))
        return true; /* a newer address is being tried */
    char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
    if (++p->dns_cur >= p->dns_naddr) {
        p->dns_cur = 0;
        return false;
    }
    dlv_logf(d, 0, "hop %s: %s: %s; trying %s", p->hop.text, sa_text(failed, a, sizeof(a)), why,
             sa_text(&p->dns_addr[p->dns_cur], b, sizeof(b)));
    return true;
}
