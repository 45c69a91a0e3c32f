/* routes.c - parsing of relay_routes / default_route into an immutable
 * struct routes and the recipient-domain look-up. Built on the main thread
 * (start, SIGHUP); look-ups from any thread. (stub: being implemented) */
#include "routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct routes {
    struct route *v;
    size_t n;
};

bool routes_parse_hop(const char *s, size_t len, struct route_hop *out, char *why, size_t n)
{
    (void)s, (void)len, (void)out;
    snprintf(why, n, "not implemented");
    return false;
}

bool routes_parse_spec(const char *s, size_t len, enum route_tls def_tls, struct route *out,
                       char *why, size_t n)
{
    (void)s, (void)len, (void)def_tls, (void)why, (void)n;
    memset(out, 0, sizeof *out);
    return true;
}

void routes_route_release(struct route *rt) { free(rt->hops); rt->hops = NULL; }

struct routes *routes_parse(const char *name, const char *text, size_t len,
                            const char *default_route, enum route_tls def_tls,
                            char *err, size_t errlen)
{
    (void)name, (void)text, (void)len, (void)default_route, (void)def_tls, (void)err,
        (void)errlen;
    return calloc(1, sizeof(struct routes));
}

struct routes *routes_load(const char *path, const char *default_route, enum route_tls def_tls,
                           char *err, size_t errlen)
{
    return routes_parse(path, NULL, 0, default_route, def_tls, err, errlen);
}

void routes_free(struct routes *r) { free(r); }
bool routes_on(const struct routes *r) { return r && r->n; }
const struct route *routes_lookup(const struct routes *r, const char *d, size_t len)
{ (void)r, (void)d, (void)len; return NULL; }
const struct route *routes_lookup_addr(const struct routes *r, const char *addr)
{ (void)r, (void)addr; return NULL; }
size_t routes_count(const struct routes *r) { return r ? r->n : 0; }
const struct route *routes_at(const struct routes *r, size_t i) { return &r->v[i]; }
bool routes_check_domains(const struct routes *r, char *const *domains, size_t n,
                          char *err, size_t errlen)
{ (void)r, (void)domains, (void)n, (void)err, (void)errlen; return true; }
bool routes_uses_tls(const struct routes *r, enum route_tls m) { (void)r, (void)m; return false; }
bool routes_format(const struct route *rt, struct sb *out) { (void)rt, (void)out; return true; }
const char *routes_tls_name(enum route_tls m) { (void)m; return "none"; }
