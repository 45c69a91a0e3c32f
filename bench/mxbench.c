/* mxbench.c - the command line of the mxbench SMTP load generator: parses
 * the options, builds the read-only plan (server address, commands, test
 * message), runs one io_uring thread per --threads, merges their counters
 * and prints the human summary and the --json line. Main thread only; the
 * session machinery lives in mxbench_loop.c.
 *
 * Exit status: 0 all messages accepted, 1 some error was counted, 2 bad
 * usage (or a --cafile that cannot be read). */
#include "mxbench.h"
#include "mxbench_loop.h"
#include "mxbench_tls.h"

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define EXIT_ERRORS 1
#define EXIT_USAGE 2
#define MAX_DEFAULT_THREADS 2
#define DEFAULT_TIMEOUT_S 30
#define FD_MARGIN 64
#define NS_PER_US 1000.0
#define NS_PER_S 1e9

static const char usage_text[] =
    "usage: mxbench --server HOST:PORT --connections C --messages N --size BYTES\n"
    "               [--rcpts R] [--reuse] [--pipelining] [--starttls] [--auth USER:PASS]\n"
    "               [--duration SECONDS] [--json] [--threads T] [--timeout SECONDS]\n"
    "               [--from ADDR] [--domain DOMAIN] [--cafile PEM]\n"
    "Sends N messages of BYTES octets (or for SECONDS) over C concurrent SMTP\n"
    "sessions, one connection per message unless --reuse. Recipients are\n"
    "rcpt1..rcptR@DOMAIN (default example.test), the sender ADDR (default\n"
    "bench@mxbench.test). Latency is MAIL sent .. 250 for the data received.\n"
    "Threads (one io_uring each) default to half the online CPUs, 1 to 2, so\n"
    "that a server on the same machine keeps the rest; --timeout defaults to 30.\n"
    "--starttls: STARTTLS after EHLO, a full TLS handshake on every connection\n"
    "(no resumption), EHLO again; the server certificate is not checked unless\n"
    "--cafile names the CA certificates to verify it against. --auth: AUTH PLAIN\n"
    "with an initial response after (STARTTLS and) EHLO, expecting 235.\n"
    "Exit: 0 no error, 1 errors counted, 2 usage.\n";

static const char *const err_names[MXB_E_COUNT] = {
    [MXB_E_CONNECT] = "connect", [MXB_E_TIMEOUT] = "timeout", [MXB_E_RESET] = "reset",
    [MXB_E_EOF] = "eof", [MXB_E_BANNER] = "banner", [MXB_E_EHLO] = "ehlo",
    [MXB_E_MAIL] = "mail", [MXB_E_RCPT] = "rcpt", [MXB_E_DATA] = "data",
    [MXB_E_BODY] = "body", [MXB_E_QUIT] = "quit", [MXB_E_STARTTLS] = "starttls",
    [MXB_E_AUTH] = "auth", [MXB_E_TLS] = "tls", [MXB_E_PROTOCOL] = "protocol",
};

enum opt_id {
    O_SERVER = 256, O_CONNECTIONS, O_MESSAGES, O_SIZE, O_RCPTS, O_REUSE, O_PIPELINING,
    O_STARTTLS, O_AUTH, O_DURATION, O_JSON, O_THREADS, O_TIMEOUT, O_FROM, O_DOMAIN, O_CAFILE,
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
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

struct job {
    pthread_t th;
    struct mxb_plan *p;
    unsigned nsess;
    int ret;
    struct mxb_stats st;
};

/* usage_fail - print why and the usage, exit 2. */
static _Noreturn void usage_fail(const char *why, const char *arg)
{
    fprintf(stderr, "mxbench: %s%s%s\n%s", why, arg ? ": " : "", arg ? arg : "", usage_text);
    exit(EXIT_USAGE);
}

/* parse_u64 - a decimal number in [lo, hi] or exit 2. */
static uint64_t parse_u64(const char *name, const char *s, uint64_t lo, uint64_t hi)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
        usage_fail("bad number for", name);
    return v;
}

/* parse_seconds - a positive number of seconds (fractions allowed). */
static double parse_seconds(const char *name, const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v > 0) || v > 1e7)
        usage_fail("bad number of seconds for", name);
    return v;
}

/* default_threads - half the online CPUs, at least 1, at most 2: the server
 * under test usually runs on the same machine, and one ring drives well
 * over 10,000 messages a second. */
static unsigned default_threads(void)
{
    long half = sysconf(_SC_NPROCESSORS_ONLN) / 2;
    if (half < 1)
        return 1;
    return half > MAX_DEFAULT_THREADS ? MAX_DEFAULT_THREADS : (unsigned)half;
}

/* parse_opts - fill o from argv or exit 2. */
static void parse_opts(int argc, char **argv, struct mxb_opts *o)
{
    int c;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        switch (c) {
        case O_SERVER: o->server = optarg; break;
        case O_CONNECTIONS: o->connections = (unsigned)parse_u64("--connections", optarg, 1, 1000000); break;
        case O_MESSAGES: o->messages = parse_u64("--messages", optarg, 1, UINT64_MAX / 2); break;
        case O_SIZE: o->size = parse_u64("--size", optarg, 1, (uint64_t)1 << 30); break;
        case O_RCPTS: o->rcpts = (unsigned)parse_u64("--rcpts", optarg, 1, MXB_RCPTS_MAX); break;
        case O_REUSE: o->reuse = true; break;
        case O_PIPELINING: o->pipelining = true; break;
        case O_STARTTLS: o->starttls = true; break;
        case O_AUTH:
            if (!strchr(optarg, ':'))
                usage_fail("--auth wants USER:PASS, got", optarg);
            o->auth = optarg;
            break;
        case O_CAFILE: o->cafile = optarg; break;
        case O_DURATION: o->duration = parse_seconds("--duration", optarg); break;
        case O_JSON: o->json = true; break;
        case O_THREADS: o->threads = (unsigned)parse_u64("--threads", optarg, 1, 1024); break;
        case O_TIMEOUT: o->timeout_s = (unsigned)parse_u64("--timeout", optarg, 1, 86400); break;
        case O_FROM: o->from = optarg; break;
        case O_DOMAIN: o->domain = optarg; break;
        case O_HELP: fputs(usage_text, stdout); exit(0);
        default: usage_fail("unknown option", NULL);
        }
    }
    if (optind < argc)
        usage_fail("unexpected argument", argv[optind]);
    if (o->cafile && !o->starttls)
        usage_fail("--cafile needs --starttls", NULL);
    if (!o->server || !o->connections || !o->size)
        usage_fail("--server, --connections and --size are required", NULL);
    if (!o->messages && o->duration <= 0)
        usage_fail("give --messages or --duration", NULL);
    if (!o->threads)
        o->threads = default_threads();
    if (o->threads > o->connections)
        o->threads = o->connections;
}

/* resolve - HOST:PORT or [V6]:PORT into p->addr, or exit 2. */
static void resolve(const char *server, struct mxb_plan *p)
{
    char host[256];
    const char *colon = strrchr(server, ':');
    if (!colon || colon == server || (size_t)(colon - server) >= sizeof host)
        usage_fail("--server wants HOST:PORT", server);
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
        exit(EXIT_USAGE);
    }
    memcpy(&p->addr, res->ai_addr, res->ai_addrlen);
    p->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
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
    j->ret = mxb_thread_run(j->p, j->nsess, &j->st);
    return NULL;
}

/* merge_tls - add one thread's TLS counters into tot. */
static void merge_tls(struct mxb_stats *tot, const struct mxb_stats *st)
{
    tot->handshakes += st->handshakes;
    mxb_hist_merge(&tot->hs_ns, &st->hs_ns);
    if (!tot->tls_desc[0])
        memcpy(tot->tls_desc, st->tls_desc, sizeof tot->tls_desc);
    if (!tot->tls_err)
        tot->tls_err = st->tls_err;
}

/* run_threads - spread the sessions over the threads, run, merge into tot.
 * Returns the elapsed seconds. */
static double run_threads(struct mxb_plan *p, struct mxb_stats *tot)
{
    const struct mxb_opts *o = p->o;
    struct job *jobs = calloc(o->threads, sizeof *jobs);
    if (!jobs) {
        fprintf(stderr, "mxbench: out of memory\n");
        exit(EXIT_ERRORS);
    }
    uint64_t t0 = mxb_now_ns();
    if (o->duration > 0)
        p->stop_ns = t0 + (uint64_t)(o->duration * NS_PER_S);
    for (unsigned i = 0; i < o->threads; i++) {
        jobs[i].p = p;
        jobs[i].nsess = o->connections / o->threads + (i < o->connections % o->threads);
        mxb_hist_init(&jobs[i].st.lat_ns);
        mxb_hist_init(&jobs[i].st.hs_ns);
        if (pthread_create(&jobs[i].th, NULL, thread_main, &jobs[i]) != 0) {
            fprintf(stderr, "mxbench: cannot start thread %u\n", i);
            exit(EXIT_ERRORS);
        }
    }
    for (unsigned i = 0; i < o->threads; i++) {
        pthread_join(jobs[i].th, NULL);
        if (jobs[i].ret < 0) {
            fprintf(stderr, "mxbench: io_uring setup failed: %s\n", strerror(-jobs[i].ret));
            exit(EXIT_ERRORS);
        }
        tot->messages += jobs[i].st.messages;
        tot->failed += jobs[i].st.failed;
        tot->connections += jobs[i].st.connections;
        tot->bytes += jobs[i].st.bytes;
        for (int e = 0; e < MXB_E_COUNT; e++)
            tot->errors[e] += jobs[i].st.errors[e];
        mxb_hist_merge(&tot->lat_ns, &jobs[i].st.lat_ns);
        merge_tls(tot, &jobs[i].st);
    }
    double secs = (double)(mxb_now_ns() - t0) / NS_PER_S;
    free(jobs);
    return secs;
}

/* us - a histogram value in microseconds. */
static double us(uint64_t ns)
{
    return (double)ns / NS_PER_US;
}

/* report_tls - the human summary's TLS line, with --starttls. */
static void report_tls(const struct mxb_opts *o, const struct mxb_stats *s, double secs)
{
    if (!o->starttls)
        return;
    const struct mxb_hist *h = &s->hs_ns;
    printf("tls:         %llu full handshakes = %.1f/s; handshake us p50 %.0f p99 %.0f; %s%s\n",
           (unsigned long long)s->handshakes, secs > 0 ? (double)s->handshakes / secs : 0,
           us(mxb_hist_percentile(h, 50)), us(mxb_hist_percentile(h, 99)),
           s->tls_desc[0] ? s->tls_desc : "no handshake completed",
           o->cafile ? ", certificate verified" : ", certificate not verified");
}

/* report - the human summary, and the JSON line with --json. */
static void report(const struct mxb_opts *o, const struct mxb_stats *s, double secs)
{
    uint64_t errors = 0;
    for (int e = 0; e < MXB_E_COUNT; e++)
        errors += s->errors[e];
    const struct mxb_hist *h = &s->lat_ns;
    double rate = secs > 0 ? (double)s->messages / secs : 0;
    printf("mxbench: %s, %u sessions on %u thread%s, %llu-byte messages, %u rcpt, %s, %s\n",
           o->server, o->connections, o->threads, o->threads == 1 ? "" : "s",
           (unsigned long long)o->size, o->rcpts,
           o->reuse ? "reused connections" : "one connection per message",
           o->pipelining ? "pipelining when offered" : "no pipelining");
    printf("messages:    %llu accepted, %llu failed in %.3f s = %.1f msgs/s\n",
           (unsigned long long)s->messages, (unsigned long long)s->failed, secs, rate);
    printf("connections: %llu; sent %llu bytes (%.1f MB/s)\n",
           (unsigned long long)s->connections, (unsigned long long)s->bytes,
           secs > 0 ? (double)s->bytes / secs / 1e6 : 0);
    printf("latency us:  min %.0f p50 %.0f p90 %.0f p99 %.0f p99.9 %.0f max %.0f mean %.0f\n",
           us(h->count ? h->min : 0), us(mxb_hist_percentile(h, 50)),
           us(mxb_hist_percentile(h, 90)), us(mxb_hist_percentile(h, 99)),
           us(mxb_hist_percentile(h, 99.9)), us(h->max),
           h->count ? us((uint64_t)(h->sum / (double)h->count)) : 0);
    report_tls(o, s, secs);
    printf("errors:      %llu", (unsigned long long)errors);
    for (int e = 0; e < MXB_E_COUNT; e++)
        if (s->errors[e])
            printf(" %s=%llu", err_names[e], (unsigned long long)s->errors[e]);
    printf("\n");
    if (s->tls_err)
        printf("first TLS error: %s\n", s->tls_err);
    if (!o->json)
        return;
    printf("{\"msgs_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
           "\"errors\":%llu,\"connections\":%llu,\"messages\":%llu,\"bytes\":%llu,"
           "\"failed\":%llu,\"seconds\":%.3f,\"max_us\":%.1f,\"error_kinds\":{",
           rate, us(mxb_hist_percentile(h, 50)), us(mxb_hist_percentile(h, 99)),
           us(mxb_hist_percentile(h, 99.9)), (unsigned long long)errors,
           (unsigned long long)s->connections, (unsigned long long)s->messages,
           (unsigned long long)s->bytes, (unsigned long long)s->failed, secs, us(h->max));
    for (int e = 0; e < MXB_E_COUNT; e++)
        printf("%s\"%s\":%llu", e ? "," : "", err_names[e], (unsigned long long)s->errors[e]);
    printf("},\"handshakes\":%llu,\"handshakes_per_s\":%.1f,\"handshake_p50_us\":%.1f,"
           "\"handshake_p99_us\":%.1f,\"tls\":\"%s\"}\n",
           (unsigned long long)s->handshakes, secs > 0 ? (double)s->handshakes / secs : 0,
           us(mxb_hist_percentile(&s->hs_ns, 50)), us(mxb_hist_percentile(&s->hs_ns, 99)),
           s->tls_desc);
}

/* setup_tls_auth - the TLS client context (--starttls) and the AUTH
 * command (--auth) into the plan, or exit 2. */
static void setup_tls_auth(const struct mxb_opts *o, struct mxb_plan *p)
{
    char err[256];
    if (o->starttls && !(p->tls = mxb_tls_ctx_new(o->cafile, err, sizeof err))) {
        fprintf(stderr, "mxbench: %s\n", err);
        exit(EXIT_USAGE);
    }
    if (o->auth && !(p->auth_cmd = mxb_auth_plain_build(o->auth, &p->auth_len)))
        usage_fail("--auth USER:PASS is too long", NULL);
}

/* main - parse, plan, run, report. */
int main(int argc, char **argv)
{
    static struct mxb_opts o = {.rcpts = 1, .timeout_s = DEFAULT_TIMEOUT_S,
                                .from = "bench@mxbench.test", .domain = "example.test"};
    static struct mxb_plan p;
    static struct mxb_stats tot;
    parse_opts(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN);
    p.o = &o;
    resolve(o.server, &p);
    char to[300];
    snprintf(to, sizeof to, "rcpt1@%s", o.domain);
    if (!mxb_cmds_build(&p.cmds, o.from, o.domain, o.rcpts) ||
        !(p.msg = mxb_msg_build(o.size, o.from, to, &p.msg_len))) {
        fprintf(stderr, "mxbench: cannot build the commands or the message "
                "(address over 256 octets, or out of memory)\n");
        return EXIT_USAGE;
    }
    setup_tls_auth(&o, &p);
    raise_nofile(o.connections);
    mxb_hist_init(&tot.lat_ns);
    mxb_hist_init(&tot.hs_ns);
    double secs = run_threads(&p, &tot);
    report(&o, &tot, secs);
    uint64_t errors = 0;
    for (int e = 0; e < MXB_E_COUNT; e++)
        errors += tot.errors[e];
    mxb_cmds_free(&p.cmds);
    free((void *)p.msg);
    free((void *)p.auth_cmd);
    mxb_tls_ctx_free(p.tls);
    return errors ? EXIT_ERRORS : 0;
}
