/* mxbench_opts.c - the command line of mxbench (see mxbench_opts.h): the
 * usage text, the getopt table, number parsing, the cross-option checks,
 * and turning --mix / --rate / --ramp / --duration into the plan's weights
 * and phases. Main thread, before any other starts. */
#include "mxbench_opts.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DEFAULT_THREADS 2
#define OPEN_DEFAULT_CONNECTIONS 100

static const char usage_text[] =
    "usage: mxbench --server HOST:PORT (--messages N | --duration S) [options]\n"
    "       mxbench plot SERIES.json --html FILE\n"
    "Load: closed loop (default): C sessions each send the next message when the\n"
    "last is answered. Open loop (--rate or --ramp): messages go out on a fixed\n"
    "schedule over as many connections as it takes, up to --connections.\n"
    "  --connections C       concurrent sessions (open loop: the cap, default 100)\n"
    "  --rate R              open loop: R messages per second\n"
    "  --arrival uniform|poisson   spacing of the open-loop schedule (uniform)\n"
    "  --ramp R:S,R:S,...    open loop: R/s for S seconds, step after step\n"
    "  --messages N          stop after N messages; --duration S: after S seconds\n"
    "                        (whichever comes first); Ctrl-C prints the summary\n"
    "  --size BYTES          generated message of BYTES octets (default 4096)\n"
    "  --corpus DIR          send the DIR/*.eml files instead, round robin\n"
    "  --corpus-mix SIZE:W,...  pick corpus files by size class (e.g. 10k:70,1m:30)\n"
    "  --rcpts R             recipients per message (default 1)\n"
    "  --senders-file F, --rcpts-file F   envelope addresses, one a line, in turn\n"
    "  --from ADDR, --domain DOMAIN   default sender, recipients rcptN@DOMAIN\n"
    "  --messages-per-connection N   then QUIT and reconnect (default 1; 0: no limit)\n"
    "  --reuse               the same as --messages-per-connection 0\n"
    "  --pipelining          MAIL..DATA in one write when the server offers it\n"
    "  --starttls [--cafile CA]   STARTTLS, a full handshake per connection\n"
    "  --auth USER:PASS      AUTH PLAIN after (STARTTLS and) EHLO\n"
    "  --mix KIND:W,...      session kinds plain, starttls, auth, starttls-auth\n"
    "  --json                end with one JSON line; --json-series FILE: one per second\n"
    "  --threads T           io_uring threads (default: half the CPUs, 1 to 2)\n"
    "  --timeout S           per operation (default 30); --seed N for Poisson\n"
    "Latency: closed loop, MAIL sent .. 250 for the data; open loop, the message's\n"
    "scheduled time .. 250 (coordinated omission corrected).\n"
    "Exit: 0 no error, 1 errors counted, 2 usage.\n";

enum opt_id {
    O_SERVER = 256,
    O_CONNECTIONS,
    O_MESSAGES,
    O_SIZE,
    O_RCPTS,
    O_REUSE,
    O_PIPELINING,
    O_STARTTLS,
    O_AUTH,
    O_DURATION,
    O_JSON,
    O_THREADS,
    O_TIMEOUT,
    O_FROM,
    O_DOMAIN,
    O_CAFILE,
    O_RATE,
    O_ARRIVAL,
    O_RAMP,
    O_SERIES,
    O_CORPUS,
    O_CORPUS_MIX,
    O_SENDERS,
    O_RCPTS_FILE,
    O_MIX,
    O_PER_CONN,
    O_SEED,
    O_HELP,
};

static const struct option long_opts[] = {
    {"server", required_argument, NULL, O_SERVER},
    {"connections", required_argument, NULL, O_CONNECTIONS},
    {"messages", required_argument, NULL, O_MESSAGES},
    {"size", required_argument, NULL, O_SIZE},
    {"rcpts", required_argument, NULL, O_RCPTS},
    {"reuse", no_argument, NULL, O_REUSE},
    {"pipelining", no_argument, NULL, O_PIPELINING},
    {"starttls", no_argument, NULL, O_STARTTLS},
    {"auth", required_argument, NULL, O_AUTH},
    {"duration", required_argument, NULL, O_DURATION},
    {"json", no_argument, NULL, O_JSON},
    {"threads", required_argument, NULL, O_THREADS},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"from", required_argument, NULL, O_FROM},
    {"domain", required_argument, NULL, O_DOMAIN},
    {"cafile", required_argument, NULL, O_CAFILE},
    {"rate", required_argument, NULL, O_RATE},
    {"arrival", required_argument, NULL, O_ARRIVAL},
    {"ramp", required_argument, NULL, O_RAMP},
    {"json-series", required_argument, NULL, O_SERIES},
    {"corpus", required_argument, NULL, O_CORPUS},
    {"corpus-mix", required_argument, NULL, O_CORPUS_MIX},
    {"senders-file", required_argument, NULL, O_SENDERS},
    {"rcpts-file", required_argument, NULL, O_RCPTS_FILE},
    {"mix", required_argument, NULL, O_MIX},
    {"messages-per-connection", required_argument, NULL, O_PER_CONN},
    {"seed", required_argument, NULL, O_SEED},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

/* mxb_usage_fail - print why and the usage, exit 2. */
_Noreturn void mxb_usage_fail(const char *why, const char *arg)
{
    fprintf(stderr, "mxbench: %s%s%s\n%s", why, arg ? ": " : "", arg ? arg : "", usage_text);
    exit(MXB_EXIT_USAGE);
}

/* parse_u64 - a decimal number in [lo, hi] or exit 2. */
static uint64_t parse_u64(const char *name, const char *s, uint64_t lo, uint64_t hi)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
        mxb_usage_fail("bad number for", name);
    return v;
}

/* parse_positive - a positive number (fractions allowed) up to max. */
static double parse_positive(const char *name, const char *s, double max)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v > 0) || v > max)
        mxb_usage_fail("bad number for", name);
    return v;
}

/* default_threads - half the online CPUs, at least 1, at most 2: the server
 * under test usually runs on the same machine. */
static unsigned default_threads(void)
{
    long half = sysconf(_SC_NPROCESSORS_ONLN) / 2;
    if (half < 1)
        return 1;
    return half > MAX_DEFAULT_THREADS ? MAX_DEFAULT_THREADS : (unsigned)half;
}

/* parse_arrival - uniform or poisson. */
static enum mxb_arrival parse_arrival(const char *s)
{
    if (strcmp(s, "uniform") == 0)
        return MXB_ARRIVAL_UNIFORM;
    if (strcmp(s, "poisson") == 0)
        return MXB_ARRIVAL_POISSON;
    mxb_usage_fail("--arrival wants uniform or poisson, got", s);
}

/* take_opt - one option c with its argument into o. */
static void take_opt(int c, struct mxb_opts *o)
{
    switch (c) {
    case O_SERVER: o->server = optarg; break;
    case O_CONNECTIONS:
        o->connections = (unsigned)parse_u64("--connections", optarg, 1, 1000000);
        break;
    case O_MESSAGES: o->messages = parse_u64("--messages", optarg, 1, UINT64_MAX / 2); break;
    case O_SIZE: o->size = parse_u64("--size", optarg, 1, (uint64_t)1 << 30); break;
    case O_RCPTS: o->rcpts = (unsigned)parse_u64("--rcpts", optarg, 1, MXB_RCPTS_MAX); break;
    case O_REUSE: o->per_conn = 0; break;
    case O_PER_CONN:
        o->per_conn = (unsigned)parse_u64("--messages-per-connection", optarg, 0, 1u << 30);
        break;
    case O_PIPELINING: o->pipelining = true; break;
    case O_STARTTLS: o->starttls = true; break;
    case O_AUTH:
        if (!strchr(optarg, ':'))
            mxb_usage_fail("--auth wants USER:PASS, got", optarg);
        o->auth = optarg;
        break;
    case O_CAFILE: o->cafile = optarg; break;
    case O_DURATION: o->duration = parse_positive("--duration", optarg, 1e7); break;
    case O_JSON: o->json = true; break;
    case O_THREADS: o->threads = (unsigned)parse_u64("--threads", optarg, 1, 1024); break;
    case O_TIMEOUT: o->timeout_s = (unsigned)parse_u64("--timeout", optarg, 1, 86400); break;
    case O_FROM: o->from = optarg; break;
    case O_DOMAIN: o->domain = optarg; break;
    case O_RATE:
        o->rate = parse_positive("--rate", optarg, MXB_RATE_MAX);
        o->open = true;
        break;
    case O_ARRIVAL: o->arrival = parse_arrival(optarg); break;
    case O_RAMP:
        o->ramp = optarg;
        o->open = true;
        break;
    case O_SERIES: o->json_series = optarg; break;
    case O_CORPUS: o->corpus = optarg; break;
    case O_CORPUS_MIX: o->corpus_mix = optarg; break;
    case O_SENDERS: o->senders_file = optarg; break;
    case O_RCPTS_FILE: o->rcpts_file = optarg; break;
    case O_MIX: o->mix = optarg; break;
    case O_SEED: o->seed = parse_u64("--seed", optarg, 0, UINT64_MAX); break;
    case O_HELP: fputs(usage_text, stdout); exit(0);
    default: mxb_usage_fail("unknown option", NULL);
    }
}

/* check_opts - the checks across options, and the derived defaults. */
static void check_opts(struct mxb_opts *o)
{
    if (!o->server)
        mxb_usage_fail("--server is required", NULL);
    if (o->rate > 0 && o->ramp)
        mxb_usage_fail("give --rate or --ramp, not both", NULL);
    if (!o->messages && o->duration <= 0 && !o->ramp)
        mxb_usage_fail("give --messages or --duration", NULL);
    if (o->cafile && !o->starttls && !o->mix)
        mxb_usage_fail("--cafile needs --starttls (or a --mix with starttls)", NULL);
    if (o->corpus_mix && !o->corpus)
        mxb_usage_fail("--corpus-mix needs --corpus", NULL);
    if (o->corpus && o->size)
        mxb_usage_fail("give --corpus or --size, not both", NULL);
    if (!o->size)
        o->size = 4096;
    if (!o->connections && !o->open)
        mxb_usage_fail("--connections is required without --rate or --ramp", NULL);
    if (!o->connections)
        o->connections = OPEN_DEFAULT_CONNECTIONS;
    if (!o->threads)
        o->threads = default_threads();
    if (o->threads > o->connections)
        o->threads = o->connections;
}

/* mxb_opts_parse - see mxbench_opts.h. */
void mxb_opts_parse(int argc, char **argv, struct mxb_opts *o)
{
    int c;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1)
        take_opt(c, o);
    if (optind < argc)
        mxb_usage_fail("unexpected argument", argv[optind]);
    check_opts(o);
}

/* plan_mix - --mix into kind weights; without it the one kind that
 * --starttls and --auth name. */
static void plan_mix(const struct mxb_opts *o, struct mxb_plan *p)
{
    if (!o->mix) {
        p->kind_w[(o->starttls ? MXB_K_STARTTLS : 0) | (o->auth ? MXB_K_AUTH : 0)] = 1;
        return;
    }
    struct mxb_weight w[MXB_WEIGHTS_MAX];
    char err[160];
    int n = mxb_weights_parse(o->mix, w, MXB_WEIGHTS_MAX, err, sizeof err);
    if (n < 0)
        mxb_usage_fail("--mix", err);
    for (int i = 0; i < n; i++) {
        int k = 0;
        while (k < MXB_K_COUNT && strcmp(w[i].key, mxb_kind_names[k]) != 0)
            k++;
        if (k == MXB_K_COUNT)
            mxb_usage_fail("--mix: kinds are plain, starttls, auth, starttls-auth; not", w[i].key);
        if ((k & MXB_K_AUTH) && w[i].weight && !o->auth)
            mxb_usage_fail("--mix with auth needs --auth USER:PASS", NULL);
        p->kind_w[k] = w[i].weight;
    }
}

/* plan_phases - the open-loop schedule: --ramp, or --rate for --duration
 * (or without end until --messages); a ramp is cut at --duration. */
static void plan_phases(const struct mxb_opts *o, struct mxb_plan *p)
{
    if (!o->open)
        return;
    if (o->ramp) {
        char err[160];
        int n = mxb_ramp_parse(o->ramp, p->phases, MXB_PHASES_MAX, err, sizeof err);
        if (n < 0)
            mxb_usage_fail("--ramp", err);
        p->nphases = (size_t)n;
    } else {
        p->phases[0] = (struct mxb_phase){o->rate, o->duration > 0 ? o->duration : MXB_FOREVER};
        p->nphases = 1;
    }
}

/* mxb_opts_plan - see mxbench_opts.h. */
void mxb_opts_plan(const struct mxb_opts *o, struct mxb_plan *p)
{
    plan_mix(o, p);
    plan_phases(o, p);
}
