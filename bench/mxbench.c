/* mxbench.c - main of the mxbench SMTP load generator: the plot
 * subcommand, or a run: options (mxbench_opts.c), the read-only plan
 * (server address, envelope lines, messages, TLS, schedule), one io_uring
 * thread per --threads, Ctrl-C, merging the counters and the report
 * (mxbench_report.c). Main thread only; the sessions live in
 * mxbench_loop.c and its neighbours.
 *
 * Exit status: 0 all messages accepted, 1 some error was counted, 2 bad
 * usage (or a --cafile, --corpus or address file that cannot be read). */
#include "mxbench.h"
#include "mxbench_loop.h"
#include "mxbench_opts.h"
#include "mxbench_plot.h"
#include "mxbench_report.h"
#include "mxbench_series.h"
#include "mxbench_tls.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define DEFAULT_TIMEOUT_S 30
#define FD_MARGIN 64
#define NS_PER_S 1e9
#define ERR_LEN 512

struct job {
    pthread_t th;
    struct mxb_plan *p;
    unsigned id, nsess;
    int ret;
    struct mxb_stats st;
};

static struct mxb_plan plan;

/* on_sigint - Ctrl-C: every thread ends its sessions and the summary is
 * printed; a second Ctrl-C kills as usual. */
static void on_sigint(int sig)
{
    (void)sig;
    atomic_store(&plan.stop, true);
    signal(SIGINT, SIG_DFL);
}

/* die_setup - a start-up failure that is the user's to fix: exit 2. */
static _Noreturn void die_setup(const char *what)
{
    fprintf(stderr, "mxbench: %s\n", what);
    exit(MXB_EXIT_USAGE);
}

/* resolve - HOST:PORT or [V6]:PORT into p->addr, or exit 2. */
static void resolve(const char *server, struct mxb_plan *p)
{
    char host[256];
    const char *colon = strrchr(server, ':');
    if (!colon || colon == server || (size_t)(colon - server) >= sizeof host)
        mxb_usage_fail("--server wants HOST:PORT", server);
    const char *h = server;
    size_t hl = (size_t)(colon - server);
    if (h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    memcpy(host, h, hl);
    host[hl] = 0;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "mxbench: cannot resolve %s: %s\n", server, gai_strerror(rc));
        exit(MXB_EXIT_USAGE);
    }
    memcpy(&p->addr, res->ai_addr, res->ai_addrlen);
    p->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
}

/* build_lines - the MAIL lines (--senders-file or --from) and the RCPT
 * lines (--rcpts-file or rcpt1..rcptR@domain), or exit 2. */
static void build_lines(const struct mxb_opts *o, struct mxb_plan *p)
{
    char err[ERR_LEN];
    size_t ns = 1, nr = o->rcpts;
    char **senders = o->senders_file ? mxb_list_load(o->senders_file, &ns, err, sizeof err) : NULL;
    char **rcpts = o->rcpts_file ? mxb_list_load(o->rcpts_file, &nr, err, sizeof err) : NULL;
    if ((o->senders_file && !senders) || (o->rcpts_file && !rcpts))
        die_setup(err);
    if (!rcpts && (rcpts = calloc(nr, sizeof *rcpts)) != NULL) {
        for (size_t i = 0; i < nr; i++)
            if (asprintf(&rcpts[i], "rcpt%zu@%s", i + 1, o->domain) < 0)
                rcpts[i] = NULL;
    }
    const char *from[1] = {o->from};
    bool ok = rcpts &&
              mxb_lines_build(&p->mail, "MAIL FROM:", senders ? (const char *const *)senders : from,
                              ns) &&
              mxb_lines_build(&p->rcpt, "RCPT TO:", (const char *const *)rcpts, nr);
    mxb_list_free(senders, senders ? ns : 0);
    mxb_list_free(rcpts, rcpts ? nr : 0);
    if (!ok)
        die_setup("cannot build the commands (an address over 256 octets or with a control "
                  "character, or out of memory)");
}

/* build_messages - the corpus (--corpus, --corpus-mix) or the generated
 * --size message, or exit 2. */
static void build_messages(const struct mxb_opts *o, struct mxb_plan *p)
{
    char err[ERR_LEN];
    if (o->corpus) {
        if (!mxb_corpus_load(&p->corpus, o->corpus, err, sizeof err))
            die_setup(err);
        if (o->corpus_mix) {
            struct mxb_weight w[MXB_WEIGHTS_MAX];
            int n = mxb_weights_parse(o->corpus_mix, w, MXB_WEIGHTS_MAX, err, sizeof err);
            if (n < 0 || !mxb_corpus_classes(&p->corpus, w, (size_t)n, err, sizeof err))
                mxb_usage_fail("--corpus-mix", err);
        }
        return;
    }
    char to[300];
    size_t len;
    snprintf(to, sizeof to, "rcpt1@%s", o->domain);
    char *m = mxb_msg_build(o->size, o->from, to, &len);
    if (!m || !mxb_corpus_one(&p->corpus, m, len, len - (sizeof MXB_EOD - 1)))
        die_setup("cannot build the message (address over 256 octets, or out of memory)");
}

/* setup_tls_auth - the TLS client context (when a kind uses STARTTLS) and
 * the AUTH command (--auth) into the plan, or exit 2. */
static void setup_tls_auth(const struct mxb_opts *o, struct mxb_plan *p)
{
    char err[256];
    bool tls = p->kind_w[MXB_K_STARTTLS] || p->kind_w[MXB_K_TLS_AUTH];
    if (tls && !(p->tls = mxb_tls_ctx_new(o->cafile, err, sizeof err)))
        die_setup(err);
    if (o->auth && !(p->auth_cmd = mxb_auth_plain_build(o->auth, &p->auth_len)))
        mxb_usage_fail("--auth USER:PASS is too long", NULL);
}

/* raise_nofile - lift the descriptor limit to what C sessions need. */
static void raise_nofile(unsigned connections)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)connections + FD_MARGIN;
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
        fprintf(stderr, "mxbench: warning: open file limit %lu is below %lu; raise ulimit -n\n",
                (unsigned long)rl.rlim_cur, (unsigned long)want);
}

/* thread_main - one ring's worth of sessions. */
static void *thread_main(void *arg)
{
    struct job *j = arg;
    j->ret = mxb_thread_run(j->p, j->id, j->nsess, &j->st);
    return NULL;
}

/* set_clock - the run's zero and its deadline for new messages: --duration,
 * and for an open loop also the end of the schedule. */
static void set_clock(const struct mxb_opts *o, struct mxb_plan *p)
{
    p->t0_ns = mxb_now_ns();
    double end = o->duration;
    if (o->open) {
        double total = mxb_sched_total(p->phases, p->nphases);
        if (total < MXB_FOREVER && (end <= 0 || total < end))
            end = total;
    }
    if (end > 0)
        p->stop_ns = p->t0_ns + (uint64_t)(end * NS_PER_S);
}

/* run_threads - spread the sessions over the threads, run, merge into tot.
 * Returns the elapsed seconds. */
static double run_threads(struct mxb_plan *p, struct mxb_stats *tot)
{
    const struct mxb_opts *o = p->o;
    struct job *jobs = calloc(o->threads, sizeof *jobs);
    if (!jobs)
        die_setup("out of memory");
    set_clock(o, p);
    for (unsigned i = 0; i < o->threads; i++) {
        jobs[i].p = p;
        jobs[i].id = i;
        jobs[i].nsess = o->connections / o->threads + (i < o->connections % o->threads);
        mxb_stats_init(&jobs[i].st);
        if (pthread_create(&jobs[i].th, NULL, thread_main, &jobs[i]) != 0) {
            fprintf(stderr, "mxbench: cannot start thread %u\n", i);
            exit(MXB_EXIT_ERRORS);
        }
    }
    for (unsigned i = 0; i < o->threads; i++) {
        pthread_join(jobs[i].th, NULL);
        if (jobs[i].ret < 0) {
            fprintf(stderr, "mxbench: io_uring setup failed: %s\n", strerror(-jobs[i].ret));
            exit(MXB_EXIT_ERRORS);
        }
        mxb_stats_merge(tot, &jobs[i].st);
    }
    double secs = (double)(mxb_now_ns() - p->t0_ns) / NS_PER_S;
    free(jobs);
    return secs;
}

/* finish_series - the summary line of --json-series. */
static void finish_series(const struct mxb_run *r)
{
    char *fields = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&fields, &len);
    if (m) {
        mxb_report_json(m, r);
        fclose(m);
    }
    if (!m || !mxb_series_finish(r->p->series, fields ? fields : "\"error\":1", &r->s->lat_ns))
        fprintf(stderr, "mxbench: cannot write --json-series %s\n", r->o->json_series);
    free(fields);
}

/* plan_free - release the plan's allocations. */
static void plan_free(struct mxb_plan *p)
{
    mxb_lines_free(&p->mail);
    mxb_lines_free(&p->rcpt);
    mxb_corpus_free(&p->corpus);
    free((void *)p->auth_cmd);
    mxb_tls_ctx_free(p->tls);
}

/* main - plot, or parse, plan, run, report. */
int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "plot") == 0)
        return mxb_plot_main(argc - 1, argv + 1);
    static struct mxb_opts o = {.rcpts = 1,
                                .per_conn = 1,
                                .timeout_s = DEFAULT_TIMEOUT_S,
                                .from = "bench@mxbench.test",
                                .domain = "example.test"};
    static struct mxb_stats tot;
    mxb_opts_parse(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN);
    plan.o = &o;
    plan.nthreads = o.threads;
    if (!o.seed)
        o.seed = (uint64_t)time(NULL);
    mxb_opts_plan(&o, &plan);
    resolve(o.server, &plan);
    build_lines(&o, &plan);
    build_messages(&o, &plan);
    setup_tls_auth(&o, &plan);
    if (o.json_series &&
        !(plan.series = mxb_series_open(o.json_series, o.threads, plan.phases, plan.nphases))) {
        fprintf(stderr, "mxbench: --json-series %s: %s\n", o.json_series, strerror(errno));
        return MXB_EXIT_USAGE;
    }
    raise_nofile(o.connections);
    mxb_stats_init(&tot);
    signal(SIGINT, on_sigint);
    struct mxb_run r = {.o = &o, .p = &plan, .s = &tot};
    r.secs = run_threads(&plan, &tot);
    r.interrupted = atomic_load(&plan.stop);
    mxb_report_human(stdout, &r);
    if (o.json) {
        fputc('{', stdout);
        mxb_report_json(stdout, &r);
        fputs("}\n", stdout);
    }
    if (plan.series)
        finish_series(&r);
    plan_free(&plan);
    return mxb_counts_errors(&tot.c) ? MXB_EXIT_ERRORS : 0;
}
