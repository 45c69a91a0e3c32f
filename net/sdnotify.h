/* sdnotify.h - the systemd service manager protocol without libsystemd:
 * state datagrams to $NOTIFY_SOCKET (READY=1, RELOADING=1, STOPPING=1,
 * STATUS=, WATCHDOG=1) and the watchdog interval of $WATCHDOG_USEC.
 * Socket activation ($LISTEN_FDS) is not supported yet. Main thread only. */
#ifndef MXRING_SDNOTIFY_H
#define MXRING_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* sdn_open - read $NOTIFY_SOCKET ("/path" or "@abstract") and
 * $WATCHDOG_USEC (honoured only when $WATCHDOG_PID is unset or ours) and
 * open the datagram socket. false (and sdn_send a no-op) when there is no
 * supervisor or the address is unusable; a bad address is reported once. */
bool sdn_open(void);

/* sdn_send - send one state datagram ("READY=1", "STATUS=...", several
 * assignments separated by '\n'). Errors are ignored: the service manager
 * going away must not stop the server. */
void sdn_send(const char *msg);

/* sdn_sendf - sdn_send of a printf-formatted text (at most 1 KiB). */
void sdn_sendf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* sdn_watchdog_usec - the watchdog interval in microseconds; 0 = none. */
uint64_t sdn_watchdog_usec(void);

/* sdn_close - close the notify socket. */
void sdn_close(void);

#endif
