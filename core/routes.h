/* routes.h - onward delivery routes: which next hop(s) a recipient domain is
 * relayed to. Parsed from the relay_routes file and the default_route key
 * (pure parsers over bytes, plus one file-reading loader); a built struct
 * routes is immutable and lives in the reloadable snapshot (snap.h), so any
 * thread may look routes up.
 *
 * Route file syntax, one route per line:
 *     domain-or-.suffix   hop[,hop...]   [tls=none|may|encrypt|verify]
 * fields separated by blanks (space, tab); '#' starts a comment line (a
 * line whose first non-blank byte is '#'); blank lines skipped; a trailing
 * CR is ignored. "example.com" matches that domain exactly; ".example.com"
 * matches every subdomain of it (a.example.com, b.a.example.com) but not
 * example.com itself. Domains are ASCII, matched case-insensitively. A
 * domain given twice is an error. Errors name "file:line: what".
 *
 * Hops (tried in the order written; the next one on a connection failure):
 *     smtp:[host]:port   smtp:host:port   smtp:[v6addr]:port
 *     lmtp:[host]:port   lmtp:host:port   lmtp:unix:/absolute/path
 * ":port" may be left out (smtp 25, lmtp 24). An IPv6 address needs the
 * brackets. A host that is an IP address is resolved here (hop->addr); a
 * host name is left to the engine to resolve (an A query, net/dlv_dns.c;
 * never MX: [host] and host mean the same here, the brackets are accepted
 * for Postfix habits).
 *
 * default_route has the same syntax without the domain field:
 *     default_route = hop[,hop...] [tls=mode]
 * and applies to every domain no line matches. Delivery is on when any
 * route exists (default_route set or relay_routes has a line). */
#ifndef MXRING_ROUTES_H
#define MXRING_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util.h"

#define ROUTE_HOST_MAX 253 /* a host name (or address text) */
#define ROUTE_PATH_MAX 107 /* sun_path without its NUL */
#define ROUTE_HOPS_MAX 16  /* hops in one route */
#define ROUTE_HOP_TEXT_MAX (ROUTE_HOST_MAX + 24)

enum route_proto { ROUTE_SMTP = 0, ROUTE_LMTP };

/* TLS policy of a route; the order matches the relay_tls enum names. */
enum route_tls {
    ROUTE_TLS_NONE = 0, /* never STARTTLS */
    ROUTE_TLS_MAY,      /* STARTTLS when offered; plain otherwise */
    ROUTE_TLS_ENCRYPT,  /* STARTTLS required, certificate not checked */
    ROUTE_TLS_VERIFY,   /* STARTTLS required, certificate checked against relay_ca_file */
};

/* One next hop. */
struct route_hop {
    enum route_proto proto;
    bool is_unix;                  /* lmtp:unix:/path */
    bool has_addr;                 /* host is an IP address: addr/addrlen set */
    char host[ROUTE_HOST_MAX + 1]; /* name or address, no brackets; "" for unix */
    uint16_t port;                 /* 0 for unix */
    char path[ROUTE_PATH_MAX + 1]; /* unix socket path, "" otherwise */
    struct sockaddr_storage addr;  /* has_addr: the address with the port;
                                           is_unix: a sockaddr_un */
    socklen_t addrlen;
    char text[ROUTE_HOP_TEXT_MAX + 1]; /* normalised: "smtp:[10.0.0.1]:25",
                                           "smtp:mx.example:25", "lmtp:unix:/run/x";
                                           the key for connection pools and logs */
};

/* One route: the hops tried in order and the TLS policy. */
struct route {
    char pattern[ROUTE_HOST_MAX + 2]; /* "example.com", ".example.com", "" = default */
    struct route_hop *hops;           /* owned by the route */
    size_t nhops;                     /* 1..ROUTE_HOPS_MAX */
    enum route_tls tls;               /* tls= of the line, else relay_tls */
    unsigned line;                    /* line in relay_routes; 0 = default_route */
};

struct routes;

/* routes_parse_hop - one hop text (s, len octets) into *out. false with a
 * reason in why (no file/line prefix) when malformed. */
bool routes_parse_hop(const char *s, size_t len, struct route_hop *out, char *why, size_t n);

/* routes_parse_spec - "hop[,hop...] [tls=mode]" (the part after the domain;
 * the whole default_route value) into *out (pattern "" and line 0 are set;
 * the caller may overwrite them; release with routes_route_release). tls defaults to def_tls when not given.
 * false with a reason in why when malformed. */
bool routes_parse_spec(const char *s, size_t len, enum route_tls def_tls, struct route *out,
                       char *why, size_t n);

/* routes_route_release - free what routes_parse_spec allocated in rt
 * (rt itself is the caller's). */
void routes_route_release(struct route *rt);

/* routes_parse - build the routes from the text of a relay_routes file
 * (name is used in messages; text may be NULL/len 0 for no file) and the
 * default_route value (NULL or "" = none). def_tls applies to routes
 * without tls=. NULL on error with "name:line: reason" (or
 * "default_route: reason") in err. Never returns NULL for valid input,
 * even when there are no routes at all (routes_on() is then false). */
struct routes *routes_parse(const char *name, const char *text, size_t len,
                            const char *default_route, enum route_tls def_tls, char *err,
                            size_t errlen);

/* routes_load - routes_parse over the file at path (NULL = no file). The
 * only function here that does I/O (reads the file). */
struct routes *routes_load(const char *path, const char *default_route, enum route_tls def_tls,
                           char *err, size_t errlen);

/* routes_free - release (NULL is fine). */
void routes_free(struct routes *r);

/* routes_on - is there any route (delivery on)? false for NULL. */
bool routes_on(const struct routes *r);

/* routes_lookup - the route for a recipient domain (len octets, ASCII case
 * insensitive, a trailing dot ignored): an exact line wins, then the
 * longest matching ".suffix" line, then default_route; NULL when none
 * matches or r is NULL. The pointer lives as long as r. */
const struct route *routes_lookup(const struct routes *r, const char *domain, size_t len);

/* routes_lookup_addr - routes_lookup on the domain of an address
 * "local@domain" (the part after the last '@'); NULL without '@'. */
const struct route *routes_lookup_addr(const struct routes *r, const char *addr);

/* routes_count / routes_at - every route in file order, default_route
 * last (for the engine's per-hop pools and for `mxringctl stats`). */
size_t routes_count(const struct routes *r);
const struct route *routes_at(const struct routes *r, size_t i);

/* routes_check_domains - does every domain in domains (n of them) have a
 * route? false with "local_domains: <domain> has no route (add it to
 * relay_routes or set default_route)" in err for the first one without.
 * Only meaningful when routes_on(). */
bool routes_check_domains(const struct routes *r, char *const *domains, size_t n, char *err,
                          size_t errlen);

/* routes_uses_tls - does any route have tls mode m? (verify needs a CA.) */
bool routes_uses_tls(const struct routes *r, enum route_tls m);

/* routes_format - one route as text: "pattern hop,hop tls=mode" (pattern
 * "*" for the default route), appended to out. */
bool routes_format(const struct route *rt, struct sb *out);

/* routes_tls_name - "none", "may", "encrypt", "verify". */
const char *routes_tls_name(enum route_tls m);

#endif
