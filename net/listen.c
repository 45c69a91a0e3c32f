/* listen.c - what the main thread opens before the workers start: the
 * listening sockets (first a probe of every configured address, then one
 * SO_REUSEPORT set per worker so the kernel spreads connections),
 * directory descriptors, and the io_uring availability probe. Only the
 * main thread calls these, at start-up. */
#include "listen.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "sdlisten.h"
#include "util.h"

#define LISTEN_BACKLOG 4096

/* listen_one - one listening socket for addr (SO_REUSEPORT if share). */
static int listen_one(const struct cfg_listen *a, bool share)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (share)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (a->ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* port_of - the port of a listen address, host order. */
static uint16_t port_of(const struct cfg_listen *a)
{
    if (a->ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}

/* listen_set - one kind of listen addresses. */
struct listen_set {
    const struct cfg_listen *addrs;
    size_t n;
    enum listener_kind kind;
    bool proxy;
};

#define LISTEN_KINDS 5

/* listen_sets - the five kinds of listeners of cfg. */
static void listen_sets(const struct config *cfg, struct listen_set out[LISTEN_KINDS])
{
    out[0] = (struct listen_set){cfg->listen, cfg->nlisten, LK_SMTP, false};
    out[1] = (struct listen_set){cfg->smtps_listen, cfg->nsmtps_listen, LK_SMTPS, false};
    out[2] =
        (struct listen_set){cfg->submission_listen, cfg->nsubmission_listen, LK_SUBMISSION, false};
    out[3] = (struct listen_set){cfg->proxy_listen, cfg->nproxy_listen, LK_SMTP, true};
    out[4] = (struct listen_set){cfg->proxy_smtps_listen, cfg->nproxy_smtps_listen, LK_SMTPS, true};
}

/* listen_probe_addrs - see listen.h: without SO_REUSEPORT, so a second
 * server on the same address is an error instead of silently sharing the
 * port. */
void listen_probe_addrs(const struct config *cfg)
{
    struct listen_set sets[LISTEN_KINDS];
    listen_sets(cfg, sets);
    for (int s = 0; s < LISTEN_KINDS; s++)
        for (size_t i = 0; i < sets[s].n; i++) {
            if (sdl_find((const struct sockaddr *)&sets[s].addrs[i].ss) >= 0) {
                fprintf(stderr,
                        "mxringd: listen %s: the socket passed by systemd "
                        "(LISTEN_FDS)\n",
                        sets[s].addrs[i].text);
                continue; /* bound already: systemd's */
            }
            int fd = listen_one(&sets[s].addrs[i], false);
            if (fd < 0)
                die("listen %s: %s", sets[s].addrs[i].text, strerror(errno));
            close(fd);
        }
}

/* listen_open_one - a worker's socket for a: its own dup of the socket
 * systemd passed for a (the workers share its accept queue), else its own
 * SO_REUSEPORT socket (the kernel spreads connections over them). */
static int listen_open_one(const struct cfg_listen *a)
{
    int passed = sdl_find((const struct sockaddr *)&a->ss);
    return passed >= 0 ? fcntl(passed, F_DUPFD_CLOEXEC, 0) : listen_one(a, true);
}

/* listen_open - the worker's own SO_REUSEPORT sockets for every address
 * of every kind (see listen.h). */
struct listener *listen_open(struct worker *w, const struct config *cfg, unsigned *n)
{
    struct listen_set sets[LISTEN_KINDS];
    listen_sets(cfg, sets);
    size_t total = 0, k = 0;
    for (int s = 0; s < LISTEN_KINDS; s++)
        total += sets[s].n;
    struct listener *ls = calloc(total ? total : 1, sizeof(*ls));
    if (!ls)
        die("out of memory");
    for (int s = 0; s < LISTEN_KINDS; s++)
        for (size_t i = 0; i < sets[s].n; i++, k++) {
            ls[k].w = w;
            ls[k].kind = sets[s].kind;
            ls[k].proxy = sets[s].proxy;
            ls[k].port = port_of(&sets[s].addrs[i]);
            ls[k].fd = listen_open_one(&sets[s].addrs[i]);
            if (ls[k].fd < 0)
                die("listen %s: %s", sets[s].addrs[i].text, strerror(errno));
        }
    *n = (unsigned)total;
    return ls;
}

/* listen_open_dir - a directory fd (for the spool chain). */
int listen_open_dir(const char *workdir, const char *sub)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", workdir, sub);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        die("cannot open %s: %s", path, strerror(errno));
    return fd;
}

/* listen_probe_uring - set up and tear down a tiny ring. */
int listen_probe_uring(void)
{
    struct io_uring ring;
    int r = io_uring_queue_init(4, &ring, 0);
    if (r == 0)
        io_uring_queue_exit(&ring);
    return r;
}
