/* sdnotify.c - owns the datagram socket to systemd's $NOTIFY_SOCKET and the
 * reading of WATCHDOG_USEC. The protocol is one datagram of "KEY=value" lines per state
 * change (sd_notify(3)); we speak it directly so mxringd needs no
 * libsystemd. Main thread only. */
#include "sdnotify.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#define SDN_MSG_MAX 1024

static int sdn_fd = -1;
static struct sockaddr_un sdn_addr;
static socklen_t sdn_len;
static uint64_t sdn_wd_usec;

/* env_u64 - a decimal environment variable, or false when unset/malformed. */
static bool env_u64(const char *name, uint64_t *out)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return false;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end || *v == '-')
        return false;
    *out = n;
    return true;
}

/* env_is_our_pid - is the pid variable name unset (when absent_ok) or ours? */
static bool env_is_our_pid(const char *name, bool absent_ok)
{
    uint64_t pid;
    if (!getenv(name))
        return absent_ok;
    return env_u64(name, &pid) && pid == (uint64_t)getpid();
}

/* notify_addr - the AF_UNIX address of path ('@' = abstract namespace). */
static bool notify_addr(const char *path)
{
    size_t n = strlen(path);
    if (n < 2 || n >= sizeof(sdn_addr.sun_path) || (path[0] != '/' && path[0] != '@'))
        return false;
    memset(&sdn_addr, 0, sizeof(sdn_addr));
    sdn_addr.sun_family = AF_UNIX;
    memcpy(sdn_addr.sun_path, path, n);
    if (path[0] == '@')
        sdn_addr.sun_path[0] = 0;
    sdn_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
    return true;
}

bool sdn_open(void)
{
    uint64_t us;
    if (env_u64("WATCHDOG_USEC", &us) && us > 0 && env_is_our_pid("WATCHDOG_PID", true))
        sdn_wd_usec = us;
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return false;
    if (!notify_addr(path)) {
        fprintf(stderr,
                "mxringd: warning: NOTIFY_SOCKET=%s is not a unix socket path; "
                "not notifying the service manager\n",
                path);
        return false;
    }
    /* connected now, while we may still be root: the privilege drop must
     * not lose the right to write to the socket */
    sdn_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (sdn_fd < 0 || connect(sdn_fd, (const struct sockaddr *)&sdn_addr, sdn_len) < 0) {
        fprintf(stderr,
                "mxringd: warning: NOTIFY_SOCKET=%s: %s; not notifying the service "
                "manager\n",
                path, strerror(errno));
        sdn_close();
        return false;
    }
    return true;
}

void sdn_send(const char *msg)
{
    if (sdn_fd < 0)
        return;
    (void)!send(sdn_fd, msg, strlen(msg), MSG_NOSIGNAL);
}

void sdn_sendf(const char *fmt, ...)
{
    char msg[SDN_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sdn_send(msg);
}

uint64_t sdn_watchdog_usec(void)
{
    return sdn_wd_usec;
}

void sdn_close(void)
{
    if (sdn_fd >= 0)
        close(sdn_fd);
    sdn_fd = -1;
}
