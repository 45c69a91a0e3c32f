/* listen.h - start-up resources the main thread opens before the workers
 * run: the listening sockets (a probe that each address is free, then one
 * SO_REUSEPORT set per worker), directory descriptors, and the io_uring
 * availability probe. Failures die with a message that says what to fix. */
#ifndef MXRING_LISTEN_H
#define MXRING_LISTEN_H

#include <stdbool.h>
#include <stdint.h>

struct config;
struct worker;

/* What a listener serves. */
enum listener_kind { LK_SMTP = 0, LK_SMTPS, LK_SUBMISSION };

/* struct listener - one listening socket of one worker; it names the
 * worker's multishot accept in user_data, hence the alignment. */
struct listener {
    _Alignas(16) struct worker *w;
    int fd;
    uint16_t port;
    enum listener_kind kind;
    bool proxy; /* a PROXY header comes first (proxy_*listen) */
};

/* listen_probe_addrs - bind every configured address once without
 * SO_REUSEPORT, so that a second server on the same address is an error
 * instead of silently sharing the port. Dies on the first unusable one. */
void listen_probe_addrs(const struct config *cfg);

/* listen_open - worker w's own SO_REUSEPORT sockets for every address of
 * every kind (smtp, smtps, submission, proxy, proxy smtps, in that order); *n gets their
 * number. An address systemd passed a socket for (sdlisten.h) gets a dup
 * of that socket instead. Dies when one cannot be opened. The caller frees
 * the array. */
struct listener *listen_open(struct worker *w, const struct config *cfg, unsigned *n);

/* listen_open_dir - a directory fd for workdir/sub; dies if it cannot. */
int listen_open_dir(const char *workdir, const char *sub);

/* listen_probe_uring - can this process use io_uring at all? 0 or -errno. */
int listen_probe_uring(void);

#endif
