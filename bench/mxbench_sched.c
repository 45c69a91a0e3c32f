/* mxbench_sched.c - the open-loop send schedule, the --ramp / --mix /
 * --corpus-mix parsers and the weighted picker of mxbench (see
 * mxbench_sched.h). Pure arithmetic over values and strings; a schedule or
 * picker belongs to the one thread that uses it. */
#include "mxbench_sched.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEIGHT_MAX 1000000u
#define KEY_CHARS "+._-"
#define SIZE_UNIT 1024ull

/* fail - format a reason into err; returns -1. */
__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* splitmix - the next value of a splitmix64 generator. */
static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* exp_gap - an exponential gap of mean 1 / rate (seconds). */
static double exp_gap(uint64_t *rng, double rate)
{
    double u = ((double)(splitmix(rng) >> 11) + 1.0) * 0x1p-53; /* (0, 1] */
    return -log(u) / rate;
}

/* mxb_sched_init - see mxbench_sched.h. */
void mxb_sched_init(struct mxb_sched *s, const struct mxb_phase *ph, size_t nph,
                    enum mxb_arrival arrival, uint64_t seed, unsigned k, unsigned n)
{
    memset(s, 0, sizeof *s);
    s->ph = ph;
    s->nph = nph;
    s->arrival = arrival;
    s->k = k;
    s->n = n ? n : 1;
    s->rng = seed ^ ((uint64_t)k * 0xd1b54a32d192ed03ull);
    s->next = -1; /* Poisson: draw the first gap on the first call */
}

/* next_phase - move to the phase after the current one. */
static void next_phase(struct mxb_sched *s)
{
    s->start += s->ph[s->i].secs;
    s->i++;
    s->j = 0;
    s->next = -1;
}

/* mxb_sched_next - see mxbench_sched.h. */
bool mxb_sched_next(struct mxb_sched *s, double *at)
{
    while (s->i < s->nph) {
        const struct mxb_phase *p = &s->ph[s->i];
        double end = s->start + p->secs;
        if (!(p->rate > 0)) {
            next_phase(s);
            continue;
        }
        double t;
        if (s->arrival == MXB_ARRIVAL_UNIFORM) {
            t = s->start + ((double)s->k + (double)s->n * (double)s->j) / p->rate;
        } else {
            if (s->next < 0)
                s->next = s->start + exp_gap(&s->rng, p->rate / s->n);
            t = s->next;
        }
        if (t >= end) {
            next_phase(s);
            continue;
        }
        s->j++;
        if (s->arrival == MXB_ARRIVAL_POISSON)
            s->next = t + exp_gap(&s->rng, p->rate / s->n);
        *at = t;
        return true;
    }
    return false;
}

/* mxb_sched_rate - see mxbench_sched.h. */
double mxb_sched_rate(const struct mxb_phase *ph, size_t nph, double t)
{
    double start = 0;
    for (size_t i = 0; i < nph; i++) {
        if (t >= start && t < start + ph[i].secs)
            return ph[i].rate;
        start += ph[i].secs;
    }
    return 0;
}

/* mxb_sched_total - see mxbench_sched.h. */
double mxb_sched_total(const struct mxb_phase *ph, size_t nph)
{
    double sum = 0;
    for (size_t i = 0; i < nph; i++)
        sum += ph[i].secs;
    return sum;
}

/* parse_number - a non-negative decimal at *p (no sign, no exponent);
 * advances *p. False when there is none or it exceeds max. */
static bool parse_number(const char **p, double max, double *v)
{
    const char *s = *p;
    if (!isdigit((unsigned char)*s) && !(*s == '.' && isdigit((unsigned char)s[1])))
        return false;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    for (const char *c = s; c < end; c++)
        if (!isdigit((unsigned char)*c) && *c != '.')
            return false; /* no exponent, no hex, no inf */
    if (errno || end == s || d > max)
        return false;
    *v = d;
    *p = end;
    return true;
}

/* mxb_ramp_parse - see mxbench_sched.h. */
int mxb_ramp_parse(const char *spec, struct mxb_phase *ph, size_t cap, char *err, size_t errlen)
{
    const char *p = spec;
    size_t n = 0;
    bool any = false;
    for (;;) {
        double rate, secs;
        if (n == cap)
            return fail(err, errlen, "more than %zu steps", cap);
        if (!parse_number(&p, MXB_RATE_MAX, &rate) || *p++ != ':')
            return fail(err, errlen, "step %zu: want RATE:SECONDS", n + 1);
        if (!parse_number(&p, 1e7, &secs) || !(secs > 0))
            return fail(err, errlen, "step %zu: seconds must be above 0", n + 1);
        any = any || rate > 0;
        ph[n++] = (struct mxb_phase){rate, secs};
        if (*p == 0)
            break;
        if (*p++ != ',')
            return fail(err, errlen, "step %zu: want ',' between steps", n);
    }
    if (!any)
        return fail(err, errlen, "every step has rate 0");
    return (int)n;
}

/* parse_key - KEY up to ':' into out; advances *p past the ':'. */
static bool parse_key(const char **p, char *out, size_t cap)
{
    size_t n = 0;
    const char *s = *p;
    while (isalnum((unsigned char)s[n]) || (s[n] && strchr(KEY_CHARS, s[n])))
        n++;
    if (n == 0 || n >= cap || s[n] != ':')
        return false;
    memcpy(out, s, n);
    out[n] = 0;
    *p = s + n + 1;
    return true;
}

/* mxb_weights_parse - see mxbench_sched.h. */
int mxb_weights_parse(const char *spec, struct mxb_weight *w, size_t cap, char *err, size_t errlen)
{
    const char *p = spec;
    size_t n = 0;
    unsigned long sum = 0;
    for (;;) {
        double v;
        if (n == cap)
            return fail(err, errlen, "more than %zu entries", cap);
        if (!parse_key(&p, w[n].key, sizeof w[n].key))
            return fail(err, errlen, "entry %zu: want KEY:WEIGHT", n + 1);
        if (!parse_number(&p, WEIGHT_MAX, &v) || v != floor(v))
            return fail(err, errlen, "%s: weight must be a whole number 0..%u", w[n].key,
                        WEIGHT_MAX);
        for (size_t i = 0; i < n; i++)
            if (strcmp(w[i].key, w[n].key) == 0)
                return fail(err, errlen, "%s given twice", w[n].key);
        w[n].weight = (unsigned)v;
        sum += w[n].weight;
        n++;
        if (*p == 0)
            break;
        if (*p++ != ',')
            return fail(err, errlen, "want ',' between entries");
    }
    if (sum == 0)
        return fail(err, errlen, "every weight is 0");
    return (int)n;
}

/* mxb_size_parse - see mxbench_sched.h. */
bool mxb_size_parse(const char *s, uint64_t *v)
{
    if (!isdigit((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    uint64_t mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = SIZE_UNIT;
    else if (*end == 'm' || *end == 'M')
        mul = SIZE_UNIT * SIZE_UNIT;
    else if (*end == 'g' || *end == 'G')
        mul = SIZE_UNIT * SIZE_UNIT * SIZE_UNIT;
    if (mul > 1)
        end++;
    if (errno || *end || n > UINT64_MAX / mul)
        return false;
    *v = n * mul;
    return true;
}

/* mxb_wrr_init - see mxbench_sched.h. */
void mxb_wrr_init(struct mxb_wrr *w, const unsigned *weight, unsigned n, unsigned skew)
{
    memset(w, 0, sizeof *w);
    w->n = n > MXB_WEIGHTS_MAX ? MXB_WEIGHTS_MAX : n;
    for (unsigned i = 0; i < w->n; i++) {
        w->weight[i] = weight[i];
        w->total += weight[i];
    }
    for (unsigned i = 0; w->total && i < skew % w->total; i++)
        (void)mxb_wrr_next(w);
}

/* mxb_wrr_next - see mxbench_sched.h: every entry gains its weight, the
 * largest is picked and pays the total back. */
unsigned mxb_wrr_next(struct mxb_wrr *w)
{
    unsigned best = 0;
    for (unsigned i = 0; i < w->n; i++) {
        w->cur[i] += w->weight[i];
        if (w->cur[i] > w->cur[best])
            best = i;
    }
    w->cur[best] -= w->total;
    return best;
}
