/* watchdog.h - the service manager's view of a running mxringd: WATCHDOG=1
 * pings only while every worker loop and the receivelog flusher make
 * progress, and a STATUS= line (sessions, messages per second). Driven by
 * the main thread's signal loop. */
#ifndef MXRING_WATCHDOG_H
#define MXRING_WATCHDOG_H

#include <stdbool.h>
#include <stdint.h>

struct pool;

struct wdog {
    struct pool *pool;
    uint64_t interval_us; /* WATCHDOG_USEC; 0 = no pings, STATUS only */
    uint64_t *loops;      /* per worker: its loop counter at the last ping */
    uint64_t cycles;      /* the flusher's cycle counter at the last ping */
    uint64_t ping_ns;     /* CLOCK_MONOTONIC of the last ping (or start) */
    uint64_t status_ns;   /* of the last STATUS= */
    uint64_t messages;    /* messages queued at the last STATUS= */
    bool warned;          /* the "no progress" line was written */
};

/* wdog_init - start watching p (workers running, receivelog started). */
void wdog_init(struct wdog *wd, struct pool *p, uint64_t interval_us);
/* wdog_tick_ms - how often the signal loop should call wdog_tick. */
unsigned wdog_tick_ms(const struct wdog *wd);
/* wdog_tick - ping when every thread moved since the last ping (else say
 * once which one is stuck); refresh STATUS= about once a second. */
void wdog_tick(struct wdog *wd);
/* wdog_free - release what wdog_init took. */
void wdog_free(struct wdog *wd);

#endif
