/* sdlisten.h - systemd socket activation: the listening TCP sockets passed
 * in LISTEN_FDS (descriptors 3, 4, ...) when LISTEN_PID names this
 * process. The main thread takes them at start-up (sdl_take), listen.c
 * uses the one whose local address equals a configured listen address
 * instead of binding that address (sdl_find; every worker gets its own dup
 * of it, so the workers share the socket's one accept queue), and
 * sdl_done closes the originals once the workers have their dups. */
#ifndef MXRING_SDLISTEN_H
#define MXRING_SDLISTEN_H

#include <sys/socket.h>

/* sdl_take - take the passed sockets (unsets LISTEN_PID, LISTEN_FDS and
 * LISTEN_FDNAMES). Dies when a passed descriptor is not a listening
 * stream socket. No-op without socket activation. */
void sdl_take(void);
/* sdl_find - the passed socket bound to exactly sa (family, address,
 * port), marked used; -1 when none was passed for it. */
int sdl_find(const struct sockaddr *sa);
/* sdl_done - close the passed originals. Dies when one matched no listen
 * address of the configuration (say which). */
void sdl_done(void);

#endif
