/* watchdog.c - owns the progress check behind systemd's WATCHDOG=1 and the
 * STATUS= line. Each worker bumps st.loops once per event-loop pass (its
 * 1 s tick timer makes that at least once a second when idle) and the
 * receivelog flusher its cycle counter (every 20 ms or sooner); the main
 * thread reads both with relaxed loads and pings only when every counter
 * moved since the last ping, so one stuck thread makes the pings stop and
 * systemd restarts the service after WatchdogSec. Main thread only. */
#include "watchdog.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rlog.h"
#include "sdnotify.h"
#include "util.h"
#include "worker.h"

#define WD_NS_PER_MS UINT64_C(1000000)
#define WD_STATUS_NS (1000 * WD_NS_PER_MS) /* STATUS= about once a second */
#define WD_TICK_MAX_MS 1000u
#define WD_TICK_MIN_MS 50u

/* mono_ns - CLOCK_MONOTONIC in nanoseconds. */
static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void wdog_init(struct wdog *wd, struct pool *p, uint64_t interval_us)
{
    memset(wd, 0, sizeof(*wd));
    wd->pool = p;
    wd->interval_us = interval_us;
    wd->loops = calloc(p->nworkers ? p->nworkers : 1, sizeof(*wd->loops));
    if (!wd->loops)
        die("out of memory");
    for (unsigned i = 0; i < p->nworkers; i++)
        wd->loops[i] = pool_loops(p, i);
    struct rlog_stats rs;
    rlog_get_stats(p->rlog, &rs);
    wd->cycles = rs.cycles;
    wd->ping_ns = wd->status_ns = mono_ns();
}

unsigned wdog_tick_ms(const struct wdog *wd)
{
    if (!wd->interval_us)
        return WD_TICK_MAX_MS;
    uint64_t ms = wd->interval_us / 4000; /* four looks per interval */
    return ms > WD_TICK_MAX_MS   ? WD_TICK_MAX_MS
           : ms < WD_TICK_MIN_MS ? WD_TICK_MIN_MS
                                 : (unsigned)ms;
}

/* stuck_thread - the first thread whose counter did not move since the
 * last ping ("worker N" / "receivelog flusher") into name; false if none. */
static bool stuck_thread(const struct wdog *wd, uint64_t cycles, char *name, size_t len)
{
    for (unsigned i = 0; i < wd->pool->nworkers; i++)
        if (pool_loops(wd->pool, i) == wd->loops[i]) {
            snprintf(name, len, "worker %u", i);
            return true;
        }
    if (cycles == wd->cycles) {
        snprintf(name, len, "receivelog flusher");
        return true;
    }
    return false;
}

/* ping - every thread moved: WATCHDOG=1 and a new baseline. */
static void ping(struct wdog *wd, uint64_t cycles, uint64_t now)
{
    sdn_send("WATCHDOG=1");
    for (unsigned i = 0; i < wd->pool->nworkers; i++)
        wd->loops[i] = pool_loops(wd->pool, i);
    wd->cycles = cycles;
    wd->ping_ns = now;
    if (wd->warned)
        fprintf(stderr, "mxringd: watchdog: every thread makes progress again\n");
    wd->warned = false;
}

/* status - STATUS= with open sessions and the message rate since the last one. */
static void status(struct wdog *wd, uint64_t now)
{
    struct worker_stats st;
    pool_stats(wd->pool, &st);
    double secs = (double)(now - wd->status_ns) / 1e9;
    double rate = secs > 0 ? (double)(st.messages - wd->messages) / secs : 0;
    sdn_sendf("STATUS=%u sessions, %.1f messages/s, %" PRIu64 " messages queued",
              atomic_load_explicit(&wd->pool->sessions, memory_order_relaxed), rate, st.messages);
    wd->messages = st.messages;
    wd->status_ns = now;
}

void wdog_tick(struct wdog *wd)
{
    uint64_t now = mono_ns();
    if (now - wd->status_ns >= WD_STATUS_NS)
        status(wd, now);
    if (!wd->interval_us)
        return;
    struct rlog_stats rs;
    rlog_get_stats(wd->pool->rlog, &rs);
    char name[64];
    if (!stuck_thread(wd, rs.cycles, name, sizeof(name))) {
        ping(wd, rs.cycles, now);
    } else if (!wd->warned && now - wd->ping_ns >= wd->interval_us * 1000 / 2) {
        fprintf(stderr,
                "mxringd: watchdog: %s made no progress for %" PRIu64 " ms; "
                "not pinging the service manager\n",
                name, (now - wd->ping_ns) / WD_NS_PER_MS);
        wd->warned = true;
    }
}

void wdog_free(struct wdog *wd)
{
    free(wd->loops);
    wd->loops = NULL;
}
