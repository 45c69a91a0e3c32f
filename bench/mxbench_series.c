/* mxbench_series.c - the per-second JSON lines of mxbench --json-series
 * (see mxbench_series.h). Threads merge their finished seconds into a
 * small ring under one mutex; whoever completes the oldest pending second
 * writes it. The main thread opens and finishes the file. */
#include "mxbench_series.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RING 16 /* seconds in flight between threads */
#define NS_PER_US 1000.0
#define TICKS_PER_HALF 5.0 /* percentile table: ticks per halving of 1 - P */
#define TICKS_MAX 200

struct slot {
    bool used;
    uint64_t t;
    unsigned reports;
    struct mxb_sec sec;
};

struct mxb_series {
    pthread_mutex_t mu;
    FILE *f;
    unsigned nthreads;
    unsigned nleft; /* threads that have handed in their last second */
    uint64_t *left; /* ... and which one it was */
    uint64_t next;  /* the oldest second not written yet */
    const struct mxb_phase *ph;
    size_t nph;
    struct slot ring[RING];
};

/* us - nanoseconds as microseconds. */
static double us(uint64_t ns)
{
    return (double)ns / NS_PER_US;
}

/* mxb_series_open - see mxbench_series.h. */
struct mxb_series *mxb_series_open(const char *path, unsigned nthreads, const struct mxb_phase *ph,
                                   size_t nph)
{
    struct mxb_series *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->left = calloc(nthreads ? nthreads : 1, sizeof *s->left);
    if (!s->left || !(s->f = fopen(path, "w"))) {
        free(s->left);
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->nthreads = nthreads;
    s->ph = ph;
    s->nph = nph;
    return s;
}

/* mxb_sec_json - see mxbench_series.h. */
void mxb_sec_json(FILE *f, uint64_t t, double target_rate, const struct mxb_sec *sec)
{
    const struct mxb_counts *c = &sec->c;
    const struct mxb_hist *h = &sec->lat_ns;
    fprintf(f,
            "\"type\":\"second\",\"t\":%llu,\"target_rate\":%.1f,\"sent\":%llu,"
            "\"accepted\":%llu,\"failed\":%llu,\"late\":%llu,\"unsent\":%llu,\"slipped\":%llu,"
            "\"connects\":%llu,\"open\":%llu,\"refused\":{\"4xx\":%llu,\"5xx\":%llu},\"errors\":{",
            (unsigned long long)t, target_rate, (unsigned long long)c->sent,
            (unsigned long long)c->messages, (unsigned long long)c->failed,
            (unsigned long long)c->late, (unsigned long long)c->unsent,
            (unsigned long long)c->slipped, (unsigned long long)c->connections,
            (unsigned long long)sec->open, (unsigned long long)c->refused4,
            (unsigned long long)c->refused5);
    for (int e = 0; e < MXB_E_COUNT; e++)
        fprintf(f, "%s\"%s\":%llu", e ? "," : "", mxb_err_names[e],
                (unsigned long long)c->errors[e]);
    fprintf(f, "},\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f",
            us(mxb_hist_percentile(h, 50)), us(mxb_hist_percentile(h, 99)),
            us(mxb_hist_percentile(h, 99.9)), us(h->count ? h->max : 0));
}

/* write_slot - write slot x as one line and free it. Lock held. */
static void write_slot(struct mxb_series *s, struct slot *x)
{
    fputc('{', s->f);
    mxb_sec_json(s->f, x->t, mxb_sched_rate(s->ph, s->nph, (double)x->t + 0.5), &x->sec);
    fputs("}\n", s->f);
    fflush(s->f); /* a line per second: readable while the run goes on */
    x->used = false;
    if (x->t >= s->next)
        s->next = x->t + 1;
}

/* take_slot - the slot for second t, emptied for it when new. Lock held.
 * A slot still holding an older second (a thread more than RING seconds
 * behind, which the loop's wake-ups rule out) is written out first. */
static struct slot *take_slot(struct mxb_series *s, uint64_t t)
{
    struct slot *x = &s->ring[t % RING];
    if (x->used && x->t != t)
        write_slot(s, x);
    if (!x->used) {
        memset(&x->sec.c, 0, sizeof x->sec.c);
        x->sec.open = 0;
        mxb_hist_init(&x->sec.lat_ns);
        x->t = t;
        x->reports = 0;
        x->used = true;
    }
    return x;
}

/* needed - how many threads hand in second t: all but those whose last
 * second came before it. Lock held. */
static unsigned needed(const struct mxb_series *s, uint64_t t)
{
    unsigned n = s->nthreads;
    for (unsigned i = 0; i < s->nleft; i++)
        n -= s->left[i] < t;
    return n;
}

/* flush - write every complete second from the oldest on. Lock held. */
static void flush(struct mxb_series *s)
{
    for (;;) {
        struct slot *y = &s->ring[s->next % RING];
        if (!y->used || y->t != s->next || y->reports < needed(s, y->t))
            break;
        write_slot(s, y);
    }
}

/* mxb_series_publish - see mxbench_series.h. */
void mxb_series_publish(struct mxb_series *s, uint64_t t, const struct mxb_sec *sec)
{
    pthread_mutex_lock(&s->mu);
    struct slot *x = take_slot(s, t);
    mxb_counts_add(&x->sec.c, &sec->c);
    x->sec.open += sec->open;
    mxb_hist_merge(&x->sec.lat_ns, &sec->lat_ns);
    x->reports++;
    flush(s);
    pthread_mutex_unlock(&s->mu);
}

/* mxb_series_leave - see mxbench_series.h. */
void mxb_series_leave(struct mxb_series *s, uint64_t last)
{
    pthread_mutex_lock(&s->mu);
    if (s->nleft < s->nthreads)
        s->left[s->nleft++] = last;
    flush(s);
    pthread_mutex_unlock(&s->mu);
}

/* mxb_percentile_table - see mxbench_series.h. */
void mxb_percentile_table(FILE *f, const struct mxb_hist *h)
{
    fputc('[', f);
    for (int i = 0; i < TICKS_MAX; i++) {
        double tail = pow(2.0, -(double)i / TICKS_PER_HALF); /* 1 - P/100 */
        if (h->count == 0 || 1.0 / tail > (double)h->count)
            break;
        double p = 100.0 * (1.0 - tail);
        fprintf(f, "%s[%.6f,%.1f]", i ? "," : "", p, us(mxb_hist_percentile(h, p > 0 ? p : 1e-9)));
    }
    fprintf(f, "%s[100,%.1f]]", h->count ? "," : "", us(h->count ? h->max : 0));
}

/* mxb_series_finish - see mxbench_series.h. */
bool mxb_series_finish(struct mxb_series *s, const char *json_fields, const struct mxb_hist *lat_ns)
{
    pthread_mutex_lock(&s->mu);
    for (int pass = 0; pass < RING; pass++) {
        struct slot *oldest = NULL;
        for (int i = 0; i < RING; i++)
            if (s->ring[i].used && (!oldest || s->ring[i].t < oldest->t))
                oldest = &s->ring[i];
        if (!oldest)
            break;
        write_slot(s, oldest);
    }
    fprintf(s->f, "{\"type\":\"summary\",%s,\"percentiles\":", json_fields);
    mxb_percentile_table(s->f, lat_ns);
    fputs("}\n", s->f);
    bool ok = !ferror(s->f);
    ok = fclose(s->f) == 0 && ok;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_destroy(&s->mu);
    free(s->left);
    free(s);
    return ok;
}
