/* iplimit.h - per-client-address limits shared by all workers: concurrent
 * sessions (max_sessions_per_ip), connections per minute
 * (max_connect_rate_per_ip) and unknown recipients per 10 minutes
 * (max_unknown_recipients_per_ip, the directory-harvest budget). A lock-free count-min sketch: two rows of
 * atomic counters indexed by two seeded hashes of the address; an address's
 * count is the smaller of its two counters, so collisions can only
 * over-count, never let a client past its limit. Touched at connect and
 * close, and at each unknown recipient, from any worker thread. */
#ifndef MXRING_IPLIMIT_H
#define MXRING_IPLIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct mx_addr;

/* ipl_init - choose the hash seeds (main thread, before workers start). */
void ipl_init(void);
/* ipl_acquire - count one more session of a's address; false (and not
 * counted) when that would exceed max. */
bool ipl_acquire(const struct mx_addr *a, unsigned max);
/* ipl_release - the session counted by ipl_acquire has ended. */
void ipl_release(const struct mx_addr *a);
/* ipl_rate_ok - count a connection in the current minute (minute = a
 * monotonic minute number); false when the address exceeds per_minute. */
bool ipl_rate_ok(const struct mx_addr *a, unsigned per_minute, uint32_t minute);

/* IPL_UNKNOWN_WINDOW_S - the unknown-recipient budget's window (seconds). */
#define IPL_UNKNOWN_WINDOW_S 600
/* ipl_unknown_add - count one unknown recipient of a's address in window
 * (a monotonic number of IPL_UNKNOWN_WINDOW_S periods); returns the
 * address's count in that window, this one included (a fixed window: the
 * count starts again at 0 when the window number moves on). */
uint32_t ipl_unknown_add(const struct mx_addr *a, uint32_t window);
/* ipl_proxy_refused_add - count one refused PROXY header (untrusted
 * sender, none, malformed, slow) from a in window (IPL_UNKNOWN_WINDOW_S
 * periods, as above); returns a's count in that window. */
uint32_t ipl_proxy_refused_add(const struct mx_addr *a, uint32_t window);

#endif
