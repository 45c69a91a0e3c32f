/* mxbench_loop.h - mxbench's per-thread io_uring event loop (mxbench_loop.c):
 * the clock, the shared message budget and the loop itself. The loop's
 * private structures are in mxbench_thr.h. */
#ifndef MXBENCH_LOOP_H
#define MXBENCH_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct mxb_plan;
struct mxb_stats;

/* mxb_now_ns - CLOCK_MONOTONIC in nanoseconds. */
uint64_t mxb_now_ns(void);

/* mxb_claim - closed loop: take one message from the budget (any thread).
 * False when the budget or the duration is used up, or on Ctrl-C; now is
 * the caller's clock. */
bool mxb_claim(struct mxb_plan *p, uint64_t now);

/* mxb_thread_run - thread number id runs nsess sessions on one io_uring
 * until its work is done (closed loop: the budget is used up; open loop:
 * its schedule is over) and every session has ended; counters into st
 * (initialized by the caller). Returns 0, or a negative errno when the
 * ring could not be set up.
 *
 * Latency: closed loop, MAIL sent .. 250 for the data; open loop, the
 * message's scheduled time .. 250 for the data (connecting and waiting for
 * a free connection included: coordinated omission corrected). */
int mxb_thread_run(struct mxb_plan *p, unsigned id, unsigned nsess, struct mxb_stats *st);

#endif
