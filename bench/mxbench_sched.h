/* mxbench_sched.h - the pure parts of mxbench's open-loop mode: the send
 * schedule (constant rate or ramp phases, uniform or Poisson arrivals,
 * split over threads), the parsers of --ramp, --mix and --corpus-mix, and
 * a deterministic weighted picker. No I/O, no clock: times are seconds
 * since the start of the run. A schedule or picker belongs to one thread. */
#ifndef MXBENCH_SCHED_H
#define MXBENCH_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MXB_PHASES_MAX 64  /* steps of one --ramp */
#define MXB_WEIGHTS_MAX 16 /* entries of one weighted list */
#define MXB_RATE_MAX 1e7   /* messages per second */
#define MXB_FOREVER 1e12   /* seconds: a phase without an end */

/* One step of the schedule: rate messages per second for secs seconds. */
struct mxb_phase {
    double rate;
    double secs;
};

enum mxb_arrival {
    MXB_ARRIVAL_UNIFORM, /* evenly spaced: exactly rate * secs per phase */
    MXB_ARRIVAL_POISSON, /* exponential gaps with mean 1 / rate */
};

/* The schedule of one thread out of nthreads: the threads' schedules
 * interleave into the whole run's (uniform: thread k sends message
 * k, k + n, k + 2n, ... of each phase; Poisson: independent streams of
 * rate / n each, whose sum is a Poisson stream of the full rate). */
struct mxb_sched {
    const struct mxb_phase *ph;
    size_t nph;
    size_t i;     /* current phase */
    double start; /* of the current phase */
    uint64_t j;   /* uniform: messages of this thread in the phase so far */
    double next;  /* Poisson: time of the next message */
    uint64_t rng;
    enum mxb_arrival arrival;
    unsigned k, n; /* this thread, all threads */
};

/* mxb_sched_init - the schedule of thread k (0 <= k < n) over nph phases
 * (kept by reference; they must outlive s); seed drives the Poisson gaps
 * (each thread mixes in k). */
void mxb_sched_init(struct mxb_sched *s, const struct mxb_phase *ph, size_t nph,
                    enum mxb_arrival arrival, uint64_t seed, unsigned k, unsigned n);

/* mxb_sched_next - the time of this thread's next message (seconds since
 * the start, non-decreasing) into *at. False when every phase is over. */
bool mxb_sched_next(struct mxb_sched *s, double *at);

/* mxb_sched_rate - the whole run's target rate at time t (0 past the end). */
double mxb_sched_rate(const struct mxb_phase *ph, size_t nph, double t);

/* mxb_sched_total - the whole run's length in seconds (MXB_FOREVER and
 * more when a phase does not end). */
double mxb_sched_total(const struct mxb_phase *ph, size_t nph);

/* mxb_ramp_parse - "R:S,R:S,..." (rate per second : seconds, each a
 * decimal with an optional fraction; rate 0 is a pause) into ph (cap
 * entries). Returns the number of phases, or -1 with a reason in err. */
int mxb_ramp_parse(const char *spec, struct mxb_phase *ph, size_t cap, char *err, size_t errlen);

/* One entry of a weighted list "KEY:WEIGHT,...". */
struct mxb_weight {
    char key[32];
    unsigned weight;
};

/* mxb_weights_parse - "KEY:WEIGHT,..." (KEY 1..31 characters out of
 * [A-Za-z0-9+._-], WEIGHT 0..1000000, at least one weight above 0, no
 * key twice) into w (cap entries). Returns the count, or -1 with err. */
int mxb_weights_parse(const char *spec, struct mxb_weight *w, size_t cap, char *err, size_t errlen);

/* mxb_size_parse - "4096", "10k", "2m" (powers of 1024) into *v; false
 * when it is not such a number. */
bool mxb_size_parse(const char *s, uint64_t *v);

/* A deterministic weighted picker (smooth weighted round robin): over any
 * run of `total` picks, entry i comes up exactly weight[i] times, spread
 * evenly; so the fractions of a --mix hold within one pick at any time. */
struct mxb_wrr {
    unsigned n;
    unsigned total;
    unsigned weight[MXB_WEIGHTS_MAX];
    long cur[MXB_WEIGHTS_MAX];
};

/* mxb_wrr_init - a picker over n weights (n <= MXB_WEIGHTS_MAX, sum > 0);
 * skew (any value) rotates the start so that threads do not pick in step. */
void mxb_wrr_init(struct mxb_wrr *w, const unsigned *weight, unsigned n, unsigned skew);

/* mxb_wrr_next - the index of the next pick. */
unsigned mxb_wrr_next(struct mxb_wrr *w);

#endif
