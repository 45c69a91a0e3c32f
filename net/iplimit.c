/* iplimit.c - per-client-address session, connection-rate and
 * unknown-recipient counters (count-min sketches of atomics), shared by the
 * workers; see iplimit.h. */
#include "iplimit.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "addr.h"

#define IPL_BITS 16
#define IPL_SIZE (1u << IPL_BITS)
#define IPL_ROWS 2
_Static_assert((IPL_SIZE & (IPL_SIZE - 1)) == 0, "IPL_SIZE must be a power of two");

static atomic_uint sessions[IPL_ROWS][IPL_SIZE];
static _Atomic uint64_t rates[IPL_ROWS][IPL_SIZE];         /* minute << 32 | count */
static _Atomic uint64_t unknowns[IPL_ROWS][IPL_SIZE];      /* window << 32 | count */
static _Atomic uint64_t proxy_refused[IPL_ROWS][IPL_SIZE]; /* window << 32 | count */
static uint64_t seeds[IPL_ROWS];

void ipl_init(void)
{
    if (getrandom(seeds, sizeof(seeds), 0) != (ssize_t)sizeof(seeds)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seeds[0] = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull;
        seeds[1] = ~seeds[0] * 0xC2B2AE3D27D4EB4Full;
    }
}

/* mix - a 64-bit finaliser (splitmix64). */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* addr_key - the client address as 16 bytes (mx_addr_key16: IPv4 in its
 * mapped form, so no other IPv6 address shares its key). */
static void addr_key(const struct mx_addr *a, uint64_t k[2])
{
    uint8_t b[16];
    mx_addr_key16(a, b);
    memcpy(k, b, 16);
}

/* slot - bucket of sa in row r. */
static unsigned slot(const uint64_t k[2], unsigned r)
{
    return (unsigned)(mix(k[0] ^ seeds[r]) ^ mix(k[1] + seeds[r])) & (IPL_SIZE - 1);
}

bool ipl_acquire(const struct mx_addr *a, unsigned max)
{
    uint64_t k[2];
    addr_key(a, k);
    unsigned least = ~0u;
    for (unsigned r = 0; r < IPL_ROWS; r++) {
        unsigned n =
            atomic_fetch_add_explicit(&sessions[r][slot(k, r)], 1, memory_order_relaxed) + 1;
        least = n < least ? n : least;
    }
    if (least <= max)
        return true;
    ipl_release(a);
    return false;
}

void ipl_release(const struct mx_addr *a)
{
    uint64_t k[2];
    addr_key(a, k);
    for (unsigned r = 0; r < IPL_ROWS; r++)
        atomic_fetch_sub_explicit(&sessions[r][slot(k, r)], 1, memory_order_relaxed);
}

/* rate_bump - count one event in bucket b for time window minute (a
 * minute, or a 10-minute window for unknown recipients); returns the
 * bucket's count in that window. */
static uint32_t rate_bump(_Atomic uint64_t *b, uint32_t minute)
{
    uint64_t v = atomic_load_explicit(b, memory_order_relaxed), nv;
    do {
        uint32_t count = (uint32_t)(v >> 32) == minute ? (uint32_t)v : 0;
        if (count != UINT32_MAX)
            count++;
        nv = (uint64_t)minute << 32 | count;
    } while (!atomic_compare_exchange_weak_explicit(b, &v, nv, memory_order_relaxed,
                                                    memory_order_relaxed));
    return (uint32_t)nv;
}

bool ipl_rate_ok(const struct mx_addr *a, unsigned per_minute, uint32_t minute)
{
    uint64_t k[2];
    addr_key(a, k);
    uint32_t least = UINT32_MAX;
    for (unsigned r = 0; r < IPL_ROWS; r++) {
        uint32_t n = rate_bump(&rates[r][slot(k, r)], minute);
        least = n < least ? n : least;
    }
    return least <= per_minute;
}

/* window_add - one event of a in sketch rows at window; a's count. */
static uint32_t window_add(_Atomic uint64_t rows[IPL_ROWS][IPL_SIZE], const struct mx_addr *a,
                           uint32_t window)
{
    uint64_t k[2];
    addr_key(a, k);
    uint32_t least = UINT32_MAX;
    for (unsigned r = 0; r < IPL_ROWS; r++) {
        uint32_t n = rate_bump(&rows[r][slot(k, r)], window);
        least = n < least ? n : least;
    }
    return least;
}

uint32_t ipl_unknown_add(const struct mx_addr *a, uint32_t window)
{
    return window_add(unknowns, a, window);
}

uint32_t ipl_proxy_refused_add(const struct mx_addr *a, uint32_t window)
{
    return window_add(proxy_refused, a, window);
}
