/* main.c - mxringd's entry point: command line, configuration and directory
 * loading, start-up checks, the worker pool and the receivelog, and the
 * signal loop (SIGTERM/SIGINT stop, SIGHUP reload). Main thread only. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "authpool.h"
#include "deliver.h"
#include "config.h"
#include "dir.h"
#include "iplimit.h"
#include "journal_file.h"
#include "mhist.h"
#include "dlv_metrics.h"
#include "listen.h"
#include "metrics.h"
#include "qflush.h"
#include "regdom.h"
#include "rlog.h"
#include "sdlisten.h"
#include "sdnotify.h"
#include "routes.h"
#include "snap.h"
#include "spool.h"
#include "tls.h"
#include "watchdog.h"
#include "worker.h"

#define MXRING_VERSION "0.1.0"
#define GRACE_SECONDS 3

/* usage - the command line summary. */
static void usage(FILE *f)
{
    fprintf(f, "usage: mxringd -c FILE [-t [-v] | --check-queue] | -V | -K | -M\n"
               "  -c FILE  configuration file (runs in the foreground)\n"
               "  -t       check the configuration and exit (0 ok, 2 error)\n"
               "  -v       with -t: print every key with its effective value\n"
               "  --check-queue  check the queue journal of the workdir (read-only, best with\n"
               "           the server stopped) and print a summary per worker (0 sound,\n"
               "           1 damaged: torn tails or bad records, 2 configuration error)\n"
               "  -V       print the version\n"
               "  -K       print the table of configuration keys (Markdown)\n"
               "  -M       print the mxringd.conf(5) manual page (roff)\n");
}

/* tls_free_ctx - snapshot destructor hook for the TLS context. */
static void tls_free_ctx(void *ctx)
{
    tls_ctx_free(ctx);
}

/* load_tls - the certificate and key of cfg, and the SNI certificates of
 * tls_certs (re-read at every load, so SIGHUP picks up renewed
 * certificates); false with err on failure. */
static bool load_tls(struct snap *s, char *err, size_t errlen)
{
    const struct config *c = s->cfg;
    if (!c->tls_cert && !c->tls_key) {
        const char *needs = c->nsmtps_listen         ? "smtps_listen"
                            : c->nproxy_smtps_listen ? "proxy_smtps_listen"
                            : c->ntls_certs          ? "tls_certs"
                                                     : NULL;
        if (needs) {
            snprintf(err, errlen, "%s: %s needs tls_cert and tls_key (the default certificate)",
                     c->path, needs);
            return false;
        }
        return true;
    }
    if (!c->tls_cert || !c->tls_key) {
        snprintf(err, errlen, "%s: tls_cert and tls_key go together", c->path);
        return false;
    }
    int minv = c->tls_min_version ? TLS_VERSION_1_3 : TLS_VERSION_1_2;
    s->tls = tls_ctx_load(c->tls_cert, c->tls_key, minv, c->tls_ciphers, err, errlen);
    s->tls_free = tls_free_ctx;
    for (size_t i = 0; s->tls && i < c->ntls_certs; i++) {
        const struct cfg_cert *t = &c->tls_certs[i];
        if (tls_ctx_add_sni(s->tls, t->name, t->cert, t->key, err, errlen) < 0)
            return false; /* snap_unref frees the context */
    }
    return s->tls != NULL;
}

/* load_snapshot - configuration + directory + TLS, or NULL with err filled. */
static struct snap *load_snapshot(const char *path, uint64_t gen, char *err, size_t errlen)
{
    struct config *cfg = cfg_load(path, err, errlen);
    if (!cfg)
        return NULL;
    struct dir *d = dir_load(cfg->users_file, cfg->groups_file, cfg->aliases_file, cfg->lists_file,
                             err, errlen);
    if (!d) {
        cfg_free(cfg);
        return NULL;
    }
    struct snap *s = snap_new(cfg, d, gen);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        cfg_free(cfg);
        dir_free(d);
        return NULL;
    }
    if (!load_tls(s, err, errlen) || !snap_load_routes(s, err, errlen)) {
        snap_unref(s);
        return NULL;
    }
    return s;
}

/* raise_nofile - lift the soft descriptor limit to the hard one; say so
 * when it stays below what max_sessions needs. */
static void raise_nofile(const struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    rlim_t need = (rlim_t)cfg->max_sessions + 64 + 4 * cfg->workers;
    if (rl.rlim_max < need) {
        struct rlimit up = {need, need}; /* works when privileged */
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl = up;
    }
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < need)
        fprintf(stderr,
                "mxringd: warning: file descriptor limit %llu is below the %llu "
                "that max_sessions = %u needs; raise it (ulimit -n / LimitNOFILE=)\n",
                (unsigned long long)rl.rlim_cur, (unsigned long long)need, cfg->max_sessions);
}

/* seed_dummy - time unknown users' AUTH against the directory's scheme. */
static void seed_dummy(struct authpool *ap, const struct dir *d)
{
    const char *h = d ? dir_sample_hash(d) : NULL;
    if (ap && h && !authpool_seed_dummy(ap, h))
        fprintf(stderr, "mxringd: warning: users_file hash scheme not usable by crypt(3)\n");
}

/* reload - SIGHUP: publish a new snapshot, or keep the old one and say why
 * (false). */
static bool reload(const char *path, struct pool *pool, uint64_t *gen)
{
    char err[512];
    struct snap *s = load_snapshot(path, *gen + 1, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "mxringd: reload failed, keeping the running configuration: %s\n", err);
        return false;
    }
    struct snap *running = snap_current(); /* the one to compare with: the boot one may be gone */
    bool ok = cfg_reload_check(running->cfg, s->cfg, err, sizeof(err));
    snap_unref(running);
    if (!ok) {
        fprintf(stderr, "mxringd: reload refused, keeping the running configuration: %s\n", err);
        snap_unref(s);
        return false;
    }
    (*gen)++;
    seed_dummy(pool->auth, s->dir);
    rlog_set_retention(pool->rlog, s->cfg->receivelog_keep_days,
                       s->cfg->receivelog_compress_after_days);
    snap_publish(s);
    pool_wake(pool);
    if (dlv_enabled(s))
        dlv_start(s->cfg->workdir); /* no-op when running: it follows the snapshot */
    dlv_notify();
    fprintf(stderr, "mxringd: reloaded %s (generation %llu, %zu directory entries)\n", path,
            (unsigned long long)*gen, dir_count(s->dir));
    return true;
}

/* chown_tree - hand the workdir folders mxringd writes to the run user. */
static void chown_tree(const char *workdir, uid_t uid, gid_t gid)
{
    static const char *const subs[] = {"",
                                       "/queue",
                                       "/queue/tmp",
                                       "/queue/new",
                                       "/quarantine",
                                       "/quarantine/tmp",
                                       "/quarantine/new",
                                       "/receivelog",
                                       "/queue/active",
                                       "/queue/state",
                                       "/deliverylog"};
    char path[4200];
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", workdir, subs[i]);
        if (chown(path, uid, gid) < 0 && errno != ENOENT)
            die("cannot give %s to uid %u: %s", path, (unsigned)uid, strerror(errno));
    }
}

/* drop_privileges - when started as root with `user` set: become that user
 * (and group) for good, before anything is accepted. Never runs on as root
 * when the drop fails. */
static void drop_privileges(const struct config *cfg)
{
    if (!cfg->user)
        return;
    struct passwd *pw = getpwnam(cfg->user);
    if (!pw)
        die("user = %s: no such user", cfg->user);
    gid_t gid = pw->pw_gid;
    if (cfg->group) {
        struct group *gr = getgrnam(cfg->group);
        if (!gr)
            die("group = %s: no such group", cfg->group);
        gid = gr->gr_gid;
    }
    if (geteuid() != 0) {
        if (geteuid() != pw->pw_uid)
            fprintf(stderr, "mxringd: warning: user = %s ignored: not started as root\n",
                    cfg->user);
        return;
    }
    chown_tree(cfg->workdir, pw->pw_uid, gid);
    if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 ||
        setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
        die("cannot drop privileges to %s: %s; refusing to run as root", cfg->user,
            strerror(errno));
    if (pw->pw_uid != 0 && (setuid(0) == 0 || geteuid() == 0))
        die("privileges could be regained after dropping to %s; refusing to run", cfg->user);
    fprintf(stderr, "mxringd: running as user %s (uid %u, gid %u)\n", cfg->user,
            (unsigned)pw->pw_uid, (unsigned)gid);
}

/* load_suffix_list - the system Public Suffix List for the SURBL domain
 * reduction, once before the workers start; one line saying which list is
 * used (libpsl's compiled-in one, with a warning, when the file is missing). */
static void load_suffix_list(void)
{
    if (regdom_init(NULL))
        fprintf(stderr, "mxringd: public suffix list: %s\n", regdom_list());
    else
        fprintf(stderr,
                "mxringd: warning: public suffix list: neither %s nor %s loads "
                "(install the publicsuffix package); using the %s list\n",
                REGDOM_SYSTEM_DAFSA, REGDOM_SYSTEM_DAT, regdom_list());
}

/* create_rlog - the receivelog engine (it switches itself by the folder);
 * its flusher thread is started by start_rlog. */
static struct rlog *create_rlog(const struct config *cfg)
{
    char host[256] = "localhost";
    if (gethostname(host, sizeof(host) - 1) < 0)
        strcpy(host, "localhost");
    struct rlog_opts o = {
        .workdir = cfg->workdir,
        .host = host,
        .nrings = cfg->workers + 1, /* the last ring is the main thread's */
        .zero_internal_id = cfg->receivelog_internal_id == CFG_ID_ZERO,
        .keep_days = cfg->receivelog_keep_days,
        .compress_after_days = cfg->receivelog_compress_after_days,
    };
    struct rlog *l = rlog_create(&o);
    if (!l)
        die("receivelog: %s", strerror(errno));
    return l;
}

/* start_rlog - write what the main thread's ring holds (the "mxringd
 * started" line), then start the flusher thread. Called before any worker
 * runs: the merge orders lines by a coarse clock and puts a worker's line
 * first when the stamps tie, so a session accepted within the same tick
 * could otherwise be written ahead of the line that opens the process's
 * part of the log (mxlog reads a start line as the end of every session
 * open before it). */
static void start_rlog(struct rlog *l)
{
    rlog_flush_now(l);
    int r = rlog_start(l);
    if (r < 0)
        die("receivelog flusher: %s", strerror(-r));
}

/* recover_journal - before any session: every committed message of the
 * queue journal that new/ lacks is written there; the old segments become
 * spares for the writers. */
static void recover_journal(const struct config *cfg)
{
    struct jrn_recover_stats st;
    int r = jrn_recover_workdir(cfg->workdir, stderr, &st);
    if (r < 0)
        die("queue journal recovery failed: %s (see above; mxringd --check-queue -c FILE "
            "shows the damage)",
            strerror(-r));
}

/* log_process - the process's own receivelog line (id 00000000) from the
 * main thread's ring: "mxringd started|stopped (version, pid, workers...)". */
static void log_process(struct pool *pool, const char *what, const char *more)
{
    struct rlog_ring *r = rlog_ring(pool->rlog, pool->nworkers);
    if (r)
        rlog_putf(r, RLOG_SID_PROCESS, RLOG_DIALOG,
                  "mxringd %s (version %s, pid %ld, workers %u%s)", what, MXRING_VERSION,
                  (long)getpid(), pool->nworkers, more);
}

/* notify_reload - SIGHUP under a service manager: RELOADING=1 (with the
 * clock systemd's notify-reload wants), the reload, then READY=1 again. */
static void notify_reload(const char *path, struct pool *pool, uint64_t *gen)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sdn_sendf("RELOADING=1\nMONOTONIC_USEC=%llu",
              (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
    bool ok = reload(path, pool, gen);
    sdn_sendf("READY=1\nSTATUS=%s (generation %llu)",
              ok ? "configuration reloaded" : "reload failed, running the old configuration",
              (unsigned long long)*gen);
}

/* test_hook - SIGUSR2 with MXRINGD_TEST_HOOKS=1: stall worker 0 until
 * shutdown (the watchdog test). */
static void test_hook(struct pool *pool)
{
    fprintf(stderr, "mxringd: test hook: stalling worker 0\n");
    atomic_store_explicit(&pool->test_stall, 1, memory_order_relaxed);
}

/* signal_loop - wait for signals until asked to stop; between them, the
 * watchdog pings and STATUS= lines. */
static void signal_loop(const sigset_t *set, const char *path, struct pool *pool)
{
    uint64_t gen = 1;
    struct wdog wd;
    wdog_init(&wd, pool, sdn_watchdog_usec());
    unsigned ms = wdog_tick_ms(&wd);
    for (;;) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        int sig = sigtimedwait(set, NULL, &ts);
        wdog_tick(&wd);
        if (sig < 0)
            continue;
        if (sig == SIGHUP) {
            notify_reload(path, pool, &gen);
            continue;
        }
        if (sig == SIGUSR2) {
            test_hook(pool);
            continue;
        }
        sdn_send("STOPPING=1\nSTATUS=stopping");
        fprintf(stderr, "mxringd: %s: stopping (grace %u s)\n", strsignal(sig),
                pool->grace_seconds);
        atomic_store(&pool->stopping, true);
        pool_wake(pool);
        wdog_free(&wd);
        return;
    }
}

/* print_queue_delay - at exit: the queue delay of the recipients sent
 * (queue id time to the hop's 2xx), p50/p99/max, when any was sent. */
static void print_queue_delay(void)
{
    static struct qhist h; /* 9 KiB: not on the stack */
    dlv_metrics_qdelay(&h);
    if (!h.count)
        return;
    fprintf(stderr,
            "mxringd: delivery: queue delay (queue id to 2xx) %llu recipients, p50 %.3f ms, "
            "p99 %.3f ms, max %.3f ms\n",
            (unsigned long long)h.count, (double)qhist_quantile_us(&h, 0.5) / 1000.0,
            (double)qhist_quantile_us(&h, 0.99) / 1000.0, (double)h.max_us / 1000.0);
}

/* print_sync_latency - at exit: the journal's synced writes, submission to
 * completion: the mean and the non-empty histogram buckets (upper bounds). */
static void print_sync_latency(const struct mhist *h)
{
    uint64_t n = 0;
    for (unsigned i = 0; i <= MHIST_BOUNDS; i++)
        n += h->bucket[i];
    fprintf(stderr, "mxringd: journal: synced write latency mean %.0f us;",
            n ? (double)h->sum_us / (double)n : 0.0);
    for (unsigned i = 0; i <= MHIST_BOUNDS; i++)
        if (h->bucket[i] && i < MHIST_BOUNDS)
            fprintf(stderr, " <=%lluus:%llu", (unsigned long long)mhist_bound_us(i),
                    (unsigned long long)h->bucket[i]);
        else if (h->bucket[i])
            fprintf(stderr, " more:%llu", (unsigned long long)h->bucket[i]);
    fputc('\n', stderr);
}

/* run - start everything, serve until SIGTERM/SIGINT, stop cleanly. */
static int run(const char *path, struct snap *boot)
{
    const struct config *cfg = boot->cfg;
    char err[512];
    int r = listen_probe_uring();
    if (r < 0)
        die("io_uring is not available: %s (check the kernel.io_uring_disabled sysctl "
            "and any seccomp filter)",
            strerror(-r));
    raise_nofile(cfg);
    if (spool_prepare(cfg->workdir, err, sizeof(err)) < 0)
        die("workdir: %s", err);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    const char *hooks = getenv("MXRINGD_TEST_HOOKS");
    if (hooks && strcmp(hooks, "1") == 0)
        sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    sdn_open();
    snap_publish(boot);
    ipl_init();
    load_suffix_list();
    static struct pool pool;
    pool.grace_seconds = GRACE_SECONDS;
    sdl_take();
    pool_listen(&pool, cfg);
    sdl_done(); /* the workers have their dups of what systemd passed */
    struct metrics *metrics = metrics_listen(cfg);
    drop_privileges(cfg);
    if (spool_prepare(cfg->workdir, err, sizeof(err)) < 0) /* as the run user */
        die("workdir: %s (the run user must be able to write it)", err);
    recover_journal(cfg);
    pool.rlog = create_rlog(cfg);
    pool.sid_base = rlog_sid_base((int64_t)time(NULL));
    pool.auth = authpool_new(0, 0, err, sizeof(err));
    if (!pool.auth)
        die("auth verifier threads: %s", err);
    seed_dummy(pool.auth, boot->dir);
    char more[64];
    snprintf(more, sizeof(more), ", first session id %08X", (unsigned)pool.sid_base + 1);
    log_process(&pool, "started", more);
    start_rlog(pool.rlog);
    pool_start(&pool, cfg);
    metrics_start(metrics, &pool, MXRING_VERSION);
    bool delivery = dlv_enabled(boot);
    if (delivery)
        dlv_start(cfg->workdir);
    fprintf(stderr, "mxringd %s: %s ready, %u workers, workdir %s, listening on", MXRING_VERSION,
            cfg->hostname, cfg->workers, cfg->workdir);
    for (size_t i = 0; i < cfg->nlisten; i++)
        fprintf(stderr, " %s", cfg->listen[i].text);
    for (size_t i = 0; i < cfg->nsmtps_listen; i++)
        fprintf(stderr, " %s (smtps)", cfg->smtps_listen[i].text);
    for (size_t i = 0; i < cfg->nsubmission_listen; i++)
        fprintf(stderr, " %s (submission)", cfg->submission_listen[i].text);
    for (size_t i = 0; i < cfg->nmetrics_listen; i++)
        fprintf(stderr, " %s (metrics)", cfg->metrics_listen[i].text);
    if (delivery)
        fprintf(stderr, "; delivering to %zu routes", routes_count(boot->routes));
    for (size_t i = 0; i < cfg->nproxy_listen; i++)
        fprintf(stderr, " %s (proxy)", cfg->proxy_listen[i].text);
    for (size_t i = 0; i < cfg->nproxy_smtps_listen; i++)
        fprintf(stderr, " %s (proxy smtps)", cfg->proxy_smtps_listen[i].text);
    fputc('\n', stderr);
    sdn_sendf("READY=1\nSTATUS=ready, %u workers", cfg->workers);
    signal_loop(&set, path, &pool);
    metrics_stop(metrics);
    struct worker_stats st;
    struct qflush_stats mat;
    pool_join(&pool, &st, &mat);
    snprintf(more, sizeof(more), ", %llu connections, %llu messages",
             (unsigned long long)st.connections, (unsigned long long)st.messages);
    log_process(&pool, "stopped", more);
    struct dlv_stats ds;
    dlv_get_stats(&ds);
    dlv_stop();
    rlog_stop(pool.rlog);
    rlog_destroy(pool.rlog);
    regdom_shutdown();
    sdn_close();
    fprintf(stderr,
            "mxringd: stopped: %llu connections, %llu refused, %llu messages queued, "
            "%llu queue errors\n",
            (unsigned long long)st.connections, (unsigned long long)st.refused,
            (unsigned long long)st.messages, (unsigned long long)st.spool_errors);
    if (ds.picked || ds.conns)
        fprintf(stderr,
                "mxringd: delivery: %llu messages taken (%llu handed over by the "
                "materializer), %llu recipients sent, %llu deferred, %llu bounced, %llu "
                "bounces queued, %llu connections\n",
                (unsigned long long)ds.picked, (unsigned long long)ds.handed,
                (unsigned long long)ds.sent, (unsigned long long)ds.deferred,
                (unsigned long long)ds.bounced, (unsigned long long)ds.bounces,
                (unsigned long long)ds.conns);
    fprintf(stderr,
            "mxringd: journal: %llu writes, %llu fdatasyncs; commits per fdatasync "
            "0:%llu 1:%llu 2-3:%llu 4-7:%llu 8-15:%llu 16-31:%llu 32-63:%llu 64+:%llu\n",
            (unsigned long long)st.journal_writes, (unsigned long long)st.journal_syncs,
            (unsigned long long)st.journal_hist[0], (unsigned long long)st.journal_hist[1],
            (unsigned long long)st.journal_hist[2], (unsigned long long)st.journal_hist[3],
            (unsigned long long)st.journal_hist[4], (unsigned long long)st.journal_hist[5],
            (unsigned long long)st.journal_hist[6], (unsigned long long)st.journal_hist[7]);
    print_sync_latency(&st.journal_sync_lat);
    fprintf(stderr,
            "mxringd: materializer: %llu queue files, %llu syncfs (%.1f files each), %llu "
            "failed attempts (retried), %llu segments zero-filled\n",
            (unsigned long long)mat.files, (unsigned long long)mat.syncs,
            mat.syncs ? (double)mat.files / (double)mat.syncs : 0.0, (unsigned long long)mat.errors,
            (unsigned long long)mat.segments);
    print_queue_delay();
    return 0;
}

/* check_queue - `--check-queue`: the journal summary of path's workdir. */
static int check_queue(const char *path)
{
    char err[512];
    struct config *cfg = cfg_load(path, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "mxringd: %s\n", err);
        return 2;
    }
    int r = jrn_check(cfg->workdir, stdout);
    cfg_free(cfg);
    return r < 0 ? 2 : r;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"check-queue", no_argument, NULL, 'Q'},
                                             {NULL, 0, NULL, 0}};
    const char *path = NULL;
    bool check = false, verbose = false, check_q = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:tvVKMh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 'Q': check_q = true; break;
        case 't': check = true; break;
        case 'v': verbose = true; break;
        case 'V': printf("mxringd %s\n", MXRING_VERSION); return 0;
        case 'K': cfg_keys_markdown(stdout); return 0;
        case 'M': cfg_keys_man(stdout, MXRING_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!path || optind != argc || (check_q && check)) {
        usage(stderr);
        return 2;
    }
    if (check_q)
        return check_queue(path);
    char err[512];
    struct snap *s = load_snapshot(path, 1, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "mxringd: %s\n", err);
        return 2;
    }
    if (check) {
        if (verbose)
            cfg_dump(s->cfg, stdout);
        fprintf(stderr, "mxringd: %s: configuration OK\n", path);
        snap_unref(s);
        return 0;
    }
    return run(path, s);
}
