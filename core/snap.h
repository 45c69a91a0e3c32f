/* snap.h - a reloadable snapshot: configuration + recipient directory,
 * immutable once published. The main thread publishes new snapshots (start,
 * SIGHUP); each worker holds one reference to the snapshot it currently
 * uses and counts its own sessions per snapshot locally, so no shared
 * counter is touched per connection. */
#ifndef MXRING_SNAP_H
#define MXRING_SNAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct dir;
struct routes;

struct snap {
    struct config *cfg;
    struct dir *dir;
    struct routes *routes; /* onward delivery routes; NULL = delivery off */
    uint64_t gen;          /* 1, 2, ... in publication order */
    atomic_uint refs;      /* holders: the publisher slot + each worker */
    void *tls;             /* the TLS context (struct tls_ctx), NULL = no TLS */
    void (*tls_free)(void *tls);
};

/* snap_new - wrap cfg and dir (ownership passes) with one reference. */
struct snap *snap_new(struct config *cfg, struct dir *dir, uint64_t gen);
/* snap_load_routes - build s->routes from s->cfg (reads the relay_routes
 * file, parses default_route) and check them against the configuration:
 * when delivery is on, every local_domains entry needs a route, and
 * tls=verify / relay_tls = verify needs relay_ca_file. With no route at
 * all s->routes stays NULL (delivery off) and true is returned. false with
 * one line in err ("<file>:<line>: ...", "local_domains: ...") otherwise.
 * Called by whoever builds the snapshot (net/main.c's load_snapshot, which
 * -t and SIGHUP go through), after snap_new. */
bool snap_load_routes(struct snap *s, char *err, size_t errlen);
/* snap_ref - take one more reference. */
void snap_ref(struct snap *s);
/* snap_unref - drop a reference; the last one frees cfg, dir, routes and s. */
void snap_unref(struct snap *s);

/* The published snapshot. snap_publish swaps it in (release) and drops the
 * publisher's reference to the old one; snap_current loads it (acquire)
 * and takes a reference for the caller. */
void snap_publish(struct snap *s);
struct snap *snap_current(void);
/* snap_current_gen - generation of the published snapshot (cheap check). */
uint64_t snap_current_gen(void);

#endif
