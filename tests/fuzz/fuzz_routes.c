/* fuzz_routes.c - libFuzzer target for core/routes.c. The first line of the
 * input is the default_route, the rest a relay_routes file. When it
 * parses: every route formats and re-parses to the same text (round trip),
 * and looking up each pattern (and a subdomain of it) finds a route whose
 * pattern really matches. Single-threaded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(c)                                                                     \
    do {                                                                                \
        if (!(c)) {                                                                     \
            fprintf(stderr, "fuzz_routes: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* fz_matches - does pattern p match domain d (both lower case)? */
static int fz_matches(const char *p, const char *d)
{
    if (!*p)
        return 1; /* the default route */
    if (p[0] != '.')
        return strcmp(p, d) == 0;
    size_t pl = strlen(p), dl = strlen(d);
    return dl > pl && strcmp(d + dl - pl, p) == 0;
}

/* fz_round_trip - route i formats, parses back and formats the same. */
static void fz_round_trip(const struct route *rt)
{
    struct sb a = {0}, b = {0};
    FZ_CHECK(routes_format(rt, &a));
    const char *spec = strchr(a.data, ' ') + 1;
    char why[256];
    struct route back;
    FZ_CHECK(routes_parse_spec(spec, strlen(spec), ROUTE_TLS_NONE, &back, why, sizeof why));
    memcpy(back.pattern, rt->pattern, sizeof back.pattern);
    FZ_CHECK(routes_format(&back, &b));
    FZ_CHECK(strcmp(a.data, b.data) == 0);
    routes_route_release(&back);
    sb_free(&a);
    sb_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nl = memchr(text, '\n', size);
    size_t dl = nl ? (size_t)(nl - text) : size;
    char *def = malloc(dl + 1);
    memcpy(def, text, dl);
    def[dl] = 0;
    if (memchr(def, 0, dl))
        def[0] = 0;
    char err[512];
    struct routes *r = routes_parse("f", nl ? nl + 1 : "", nl ? size - dl - 1 : 0, def,
                                    ROUTE_TLS_MAY, err, sizeof err);
    for (size_t i = 0; r && i < routes_count(r); i++) {
        const struct route *rt = routes_at(r, i);
        FZ_CHECK(rt->nhops >= 1 && rt->nhops <= ROUTE_HOPS_MAX);
        fz_round_trip(rt);
        char dom[ROUTE_HOST_MAX + 8];
        snprintf(dom, sizeof dom, "%s%s", rt->pattern[0] == '.' ? "a" : "", rt->pattern);
        const struct route *hit = routes_lookup(r, dom, strlen(dom));
        FZ_CHECK(hit && fz_matches(hit->pattern, dom));
        FZ_CHECK(!rt->pattern[0] || rt->pattern[0] == '.' || hit == rt);
    }
    routes_free(r);
    free(def);
    return 0;
}
