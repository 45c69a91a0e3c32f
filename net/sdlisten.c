/* sdlisten.c - systemd socket activation behind sdlisten.h: the table of
 * passed listening sockets (descriptor, local address, used by a listen
 * address or not), taken from the environment once and matched by address.
 * Main thread only, at start-up. */
#include "sdlisten.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "util.h"

#define SDL_FIRST_FD 3 /* SD_LISTEN_FDS_START */
#define SDL_MAX 64

struct sdl_sock {
    int fd;
    struct sockaddr_storage ss;
    bool used;
};

static struct sdl_sock g_socks[SDL_MAX];
static unsigned g_n;

/* env_uint - the decimal value of environment variable name, or -1. */
static long env_uint(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return -1;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    return *end || errno || n < 0 ? -1 : n;
}

/* sdl_check - fd must be a listening stream socket; its local address. */
static void sdl_check(int fd, struct sockaddr_storage *ss)
{
    int type = 0, acc = 0, one = 1;
    socklen_t l = sizeof(int);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0 || type != SOCK_STREAM ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) < 0 || !acc)
        die("LISTEN_FDS: descriptor %d is not a listening stream socket", fd);
    socklen_t sl = sizeof(*ss);
    if (getsockname(fd, (struct sockaddr *)ss, &sl) < 0 ||
        (ss->ss_family != AF_INET && ss->ss_family != AF_INET6))
        die("LISTEN_FDS: descriptor %d is not an IPv4 or IPv6 socket", fd);
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        die("LISTEN_FDS: descriptor %d: %s", fd, strerror(errno));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* accepted ones inherit it */
}

void sdl_take(void)
{
    long pid = env_uint("LISTEN_PID"), n = env_uint("LISTEN_FDS");
    bool ours = pid == (long)getpid() && n > 0;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (!ours)
        return;
    if (n > SDL_MAX)
        die("LISTEN_FDS: %ld sockets passed, at most %d are taken", n, SDL_MAX);
    for (long i = 0; i < n; i++) {
        g_socks[i].fd = SDL_FIRST_FD + (int)i;
        sdl_check(g_socks[i].fd, &g_socks[i].ss);
    }
    g_n = (unsigned)n;
}

/* same_addr - the same family, address and port? */
static bool same_addr(const struct sockaddr *a, const struct sockaddr_storage *b)
{
    if (a->sa_family != b->ss_family)
        return false;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

int sdl_find(const struct sockaddr *sa)
{
    for (unsigned i = 0; i < g_n; i++)
        if (same_addr(sa, &g_socks[i].ss)) {
            g_socks[i].used = true;
            return g_socks[i].fd;
        }
    return -1;
}

void sdl_done(void)
{
    for (unsigned i = 0; i < g_n; i++) {
        if (!g_socks[i].used) {
            struct mx_addr a;
            mx_addr_from_sockaddr(&a, (const struct sockaddr *)&g_socks[i].ss);
            uint16_t port = ntohs(g_socks[i].ss.ss_family == AF_INET
                                      ? ((const struct sockaddr_in *)&g_socks[i].ss)->sin_port
                                      : ((const struct sockaddr_in6 *)&g_socks[i].ss)->sin6_port);
            die("LISTEN_FDS: the socket passed as descriptor %d ([%s]:%u) matches no listen "
                "address of the configuration (listen, smtps_listen, submission_listen, "
                "proxy_listen, proxy_smtps_listen)",
                g_socks[i].fd, a.text, port);
        }
        close(g_socks[i].fd);
    }
    g_n = 0;
}
