/* filter.c - the content filter jobs of one worker: a job per message runs
 * its parts side by side, SURBL/URIBL lookups (surbl.c) and a clamd
 * INSTREAM scan (clamdio.c), both on the worker's io_uring ring, and
 * reports one combined verdict. Every function runs on the engine's worker
 * thread; nothing here blocks.
 *
 * A part reports exactly once through its done callback (maybe while it is
 * being started); the job counts the parts still running, plus one hold of
 * its own while it starts them, and reports when the count reaches zero.
 *
 * Combined verdict, strongest first: REJECT_VIRUS > REJECT_SPAM > TEMPFAIL >
 * QUARANTINE > PASS. A definite rejection is not turned into a retry by the
 * other filter's failure; a failure outranks quarantine because the check
 * that failed might have rejected. */
#include "filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clamdio.h"
#include "config.h"
#include "surbl.h"
#include "util.h"

#define FILTER_DETAIL_MAX 600u

struct filter_engine {
    struct io_uring *ring;
    struct filter_stats *st;    /* the worker's counters */
    struct surbl_engine *surbl; /* its UDP sockets and waiting queries */
    unsigned jobs;              /* running */
};

struct filter_job {
    struct filter_engine *fe;
    filter_log_fn log;
    filter_done_fn done;
    void *arg;
    unsigned parts;      /* parts still running, plus the start's hold */
    enum sess_verdict v; /* strongest so far */
    char detail[FILTER_DETAIL_MAX];
};

/* ---- verdicts ------------------------------------------------------------ */

/* verdict_rank - strength of a verdict in the combination (see top). */
static int verdict_rank(enum sess_verdict v)
{
    switch (v) {
    case SESS_VERDICT_REJECT_VIRUS: return 4;
    case SESS_VERDICT_REJECT_SPAM: return 3;
    case SESS_VERDICT_TEMPFAIL: return 2;
    case SESS_VERDICT_QUARANTINE: return 1;
    default: return 0;
    }
}

/* job_verdict - offer verdict v with its detail: the stronger one stays
 * (on a tie the first one offered). */
static void job_verdict(struct filter_job *j, enum sess_verdict v, const char *detail)
{
    if (verdict_rank(v) <= verdict_rank(j->v))
        return;
    j->v = v;
    snprintf(j->detail, sizeof j->detail, "%s", detail ? detail : "");
}

/* job_release - one part (or the hold) is over; the last one reports and
 * frees the job. */
static void job_release(struct filter_job *j)
{
    if (--j->parts)
        return;
    filter_done_fn done = j->done;
    void *arg = j->arg;
    enum sess_verdict v = j->v;
    char detail[FILTER_DETAIL_MAX];
    memcpy(detail, j->detail, sizeof detail);
    j->fe->jobs--;
    if ((unsigned)v < FILTER_VERDICTS)
        FILTER_STAT(j->fe->st->verdicts[v], 1);
    free(j);
    done(arg, v, detail);
}

/* part_log - a part's log line, into the job's log. */
static void part_log(void *arg, const char *line)
{
    struct filter_job *j = arg;
    if (j->log)
        j->log(j->arg, line);
}

/* part_done - a part's verdict: offered to the job, then the part is over. */
static void part_done(void *arg, enum sess_verdict v, const char *detail)
{
    struct filter_job *j = arg;
    job_verdict(j, v, detail);
    job_release(j);
}

/* ---- engine -------------------------------------------------------------- */

/* filter_wanted - see filter.h. */
bool filter_wanted(const struct config *cfg)
{
    return cfg && (cfg->nsurbl_zones > 0 || cfg->clamd.len);
}

/* filter_verdict_label - see filter.h. */
const char *filter_verdict_label(unsigned v)
{
    static const char *const names[FILTER_VERDICTS] = {
        [SESS_VERDICT_PASS] = "pass",         [SESS_VERDICT_QUARANTINE] = "quarantine",
        [SESS_VERDICT_REJECT_SPAM] = "spam",  [SESS_VERDICT_REJECT_VIRUS] = "virus",
        [SESS_VERDICT_TEMPFAIL] = "tempfail",
    };
    return v < FILTER_VERDICTS ? names[v] : "";
}

/* filter_engine_new - see filter.h. */
struct filter_engine *filter_engine_new(struct io_uring *ring, unsigned worker,
                                        struct filter_stats *st)
{
    struct filter_engine *fe = calloc(1, sizeof(*fe));
    if (!fe)
        return NULL;
    fe->ring = ring;
    fe->st = st;
    if (!(fe->surbl = surbl_engine_new(ring, worker, st))) {
        free(fe);
        return NULL;
    }
    return fe;
}

/* filter_engine_free - see filter.h; the worker calls it after its ring is
 * gone (no job runs then, so nothing of the engine is in flight). */
void filter_engine_free(struct filter_engine *fe)
{
    if (!fe)
        return;
    if (fe->jobs)
        die("filter_engine_free: %u filter jobs still running", fe->jobs);
    surbl_engine_free(fe->surbl);
    free(fe);
}

/* ---- jobs ---------------------------------------------------------------- */

/* filter_start - see filter.h: the parts run side by side; the hold on the
 * job keeps it alive until both have started. */
void filter_start(struct filter_engine *fe, const struct config *cfg, const struct filter_src *src,
                  filter_log_fn log, filter_done_fn done, void *arg)
{
    struct filter_job *j = calloc(1, sizeof *j);
    if (!j) {
        if (log)
            log(arg, "Filters: out of memory");
        done(arg, SESS_VERDICT_TEMPFAIL, "filters: out of memory");
        return;
    }
    *j = (struct filter_job){.fe = fe, .log = log, .done = done, .arg = arg, .parts = 1};
    fe->jobs++;
    if (cfg->clamd.len) {
        j->parts++;
        clamdio_scan(fe->ring, cfg, src, part_log, part_done, j);
    }
    if (cfg->nsurbl_zones) {
        j->parts++;
        surbl_check(fe->surbl, cfg, src, part_log, part_done, j);
    }
    job_release(j); /* the hold taken above: done may run now */
}
