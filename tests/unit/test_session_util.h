/* test_session_util.h - what every session test builds the same way: a
 * snapshot from configuration text and an in-memory users file, a started
 * session from a client IPv4 address, and the replies it queued taken as a
 * C string. Header-only; single-threaded tests. */
#ifndef MXRING_TEST_SESSION_UTIL_H
#define MXRING_TEST_SESSION_UTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "addr.h"
#include "config.h"
#include "dir.h"
#include "session.h"
#include "snap.h"

/* tsess_snap - a snapshot of configuration text conf with users (NULL: an
 * empty directory); fails the test on a configuration error. */
static inline struct snap *tsess_snap(const char *conf, const char *users)
{
    char err[256];
    struct config *c = cfg_load_string("test.conf", conf, strlen(conf), err, sizeof(err));
    assert_non_null(c);
    struct dir_source src[DIR_FILES] = {{"users", users, users ? strlen(users) : 0}};
    struct dir *d = dir_load_mem(src, err, sizeof(err));
    assert_non_null(d);
    return snap_new(c, d, 1);
}

/* tsess_start - a started session (banner queued) of env on snap, client
 * ip:40000, session id sid, local port 25. */
static inline struct sess *tsess_start(struct sess_env *env, struct snap *snap, const char *ip,
                                       uint32_t sid)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(40000)};
    inet_pton(AF_INET, ip, &sa.sin_addr);
    struct mx_addr peer;
    mx_addr_from_sockaddr(&peer, (struct sockaddr *)&sa);
    struct sess *s = sess_new(env, snap, sid, &peer, 25);
    assert_non_null(s);
    sess_start(s);
    return s;
}

/* tsess_take - the replies s queued since the last take, into buf (cap
 * octets, NUL-terminated, cut if longer). */
static inline const char *tsess_take(struct sess *s, char *buf, size_t cap)
{
    struct sb *o = sess_out(s);
    size_t n = o->len < cap - 1 ? o->len : cap - 1;
    memcpy(buf, o->data ? o->data : "", n);
    buf[n] = 0;
    sb_reset(o);
    return buf;
}

#endif
