/* mxringctl.c - the queue tool: list, show and stats read queue/new/,
 * queue/active/ and queue/state/ directly (the same files mxringd uses, so
 * they work whether it runs or not); retry, hold, release and delete go to
 * the delivery thread over <workdir>/control.sock while mxringd runs, and
 * edit the files directly when it does not. Single-threaded program. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "qstate.h"
#include "rlog.h"
#include "routes.h"
#include "smtp_parse.h"
#include "util.h"

#define CTL_REPLY_MAX 1024

/* One queued message as read from the files. */
struct qmsg {
    char id[QFILE_ID_LEN + 1];
    const char *folder; /* "new" or "active" */
    struct qfile_env env;
    struct qstate st;
};

/* Filters of `list`. */
struct filt {
    const char *sender, *rcpt, *hop;
    long min_age; /* seconds, -1 = any */
};

static const struct config *g_cfg;
static struct routes *g_routes;
static char g_q[4200]; /* <workdir>/queue */
static bool g_json;

/* ---- reading the queue ----------------------------------------------------- */

/* read_file - all of path into b (the envelope part of a queue file is
 * enough: stop once it is complete). 0 or -errno. */
static int read_file(const char *path, struct sb *b, bool envelope_only)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        if (!sb_append(b, buf, (size_t)n))
            break;
        if (envelope_only && memmem(b->data, b->len, "\n\n", 2))
            break;
    }
    close(fd);
    return n < 0 ? -errno : 0;
}

/* load_msg - envelope of <folder>/<id> and its state (or "all pending"). */
static bool load_msg(const char *folder, const char *id, struct qmsg *m)
{
    char path[4300], err[160];
    struct sb b = {0};
    memset(m, 0, sizeof(*m));
    snprintf(m->id, sizeof(m->id), "%s", id);
    m->folder = folder;
    snprintf(path, sizeof(path), "%s/%s/%s", g_q, folder, id);
    bool ok =
        read_file(path, &b, true) == 0 &&
        qfile_parse_envelope(b.data ? b.data : "", b.len, &m->env, err, sizeof(err)) == QFILE_OK;
    sb_free(&b);
    if (!ok)
        return false;
    snprintf(path, sizeof(path), "%s/state/%s", g_q, id);
    if (read_file(path, &b, false) == 0 &&
        qstate_parse(b.data ? b.data : "", b.len, &m->st, err, sizeof(err)) &&
        qstate_matches_env(&m->st, &m->env)) {
        sb_free(&b);
        return true;
    }
    sb_free(&b);
    qstate_free(&m->st);
    return qstate_from_env(&m->env, &m->st);
}

/* free_msg - release a loaded message. */
static void free_msg(struct qmsg *m)
{
    qfile_env_free(&m->env);
    qstate_free(&m->st);
}

/* cmp_id - qsort of queue ids (arrival order). */
static int cmp_id(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* each_msg - call fn for every message of new/ and active/, in arrival
 * order within each folder. Returns how many were visited. */
static size_t each_msg(void (*fn)(struct qmsg *, void *), void *arg)
{
    static const char *const folders[] = {"active", "new"};
    size_t total = 0;
    for (size_t f = 0; f < 2; f++) {
        char path[4300];
        snprintf(path, sizeof(path), "%s/%s", g_q, folders[f]);
        DIR *dir = opendir(path);
        char **v = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;
        while (dir && (e = readdir(dir)) != NULL) {
            if (!qfile_id_valid(e->d_name, strlen(e->d_name)))
                continue;
            if (n == cap && !(v = realloc(v, (cap = cap ? 2 * cap : 64) * sizeof(*v))))
                die("out of memory");
            v[n++] = strdup(e->d_name);
        }
        if (dir)
            closedir(dir);
        if (v)
            qsort(v, n, sizeof(*v), cmp_id);
        for (size_t i = 0; i < n; i++) {
            struct qmsg m;
            if (load_msg(folders[f], v[i], &m)) {
                fn(&m, arg);
                total++;
            }
            free_msg(&m);
            free(v[i]);
        }
        free(v);
    }
    return total;
}

/* hop_of - the first hop of addr's route, "-" when none. */
static const char *hop_of(const char *addr)
{
    const struct route *rt = routes_lookup_addr(g_routes, addr);
    return rt ? rt->hops[0].text : "-";
}

/* ---- output ------------------------------------------------------------------ */

/* json_str - s as a JSON string. */
static void json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

/* fmt_when - a Unix time as local "YYYY-MM-DD HH:MM:SS" ("now" for <= now). */
static const char *fmt_when(int64_t t, char *buf, size_t len)
{
    if (t <= time(NULL))
        return "now";
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

/* summary - pending count, next attempt and last error of m. */
static size_t summary(const struct qmsg *m, int64_t *next, const char **last)
{
    size_t pending = 0;
    *next = INT64_MAX;
    *last = "";
    for (size_t i = 0; i < m->st.nrcpt; i++) {
        const struct qstate_rcpt *r = &m->st.rcpts[i];
        if (r->last && r->last[0])
            *last = r->last;
        if (r->state != QST_PENDING)
            continue;
        pending++;
        if (r->next < *next)
            *next = r->next;
    }
    return pending;
}

/* matches - does m pass the list filters? */
static bool matches(const struct qmsg *m, const struct filt *f)
{
    if (f->sender && strcasecmp(f->sender, m->env.sender) != 0)
        return false;
    if (f->min_age >= 0 && time(NULL) - m->env.arrival < f->min_age)
        return false;
    if (!f->rcpt && !f->hop)
        return true;
    for (size_t i = 0; i < m->env.nrcpt; i++)
        if ((!f->rcpt || strcasecmp(f->rcpt, m->env.rcpts[i]) == 0) &&
            (!f->hop || strcmp(f->hop, hop_of(m->env.rcpts[i])) == 0))
            return true;
    return false;
}

struct list_ctx {
    const struct filt *f;
    size_t shown;
};

/* list_one - one line (or JSON object) of `list`. */
static void list_one(struct qmsg *m, void *arg)
{
    struct list_ctx *lc = arg;
    if (!matches(m, lc->f))
        return;
    int64_t next;
    const char *last;
    size_t pending = summary(m, &next, &last);
    long age = (long)(time(NULL) - m->env.arrival);
    char when[32];
    const char *nx = next == INT64_MAX ? "-"
                     : m->st.held      ? "held"
                                       : fmt_when(next, when, sizeof(when));
    if (!g_json) {
        printf("%s %-6s age=%lds size=%llu from=<%s> pending=%zu/%zu next=%s last=\"%s\"\n", m->id,
               m->folder, age, (unsigned long long)m->env.size, m->env.sender, pending,
               m->env.nrcpt, nx, last);
    } else {
        printf("%s{\"id\":\"%s\",\"folder\":\"%s\",\"age\":%ld,\"size\":%llu,\"sender\":",
               lc->shown ? ",\n " : "", m->id, m->folder, age, (unsigned long long)m->env.size);
        json_str(m->env.sender);
        printf(",\"recipients\":%zu,\"pending\":%zu,\"held\":%s,\"next_attempt\":%lld,"
               "\"last_error\":",
               m->env.nrcpt, pending, m->st.held ? "true" : "false",
               next == INT64_MAX ? -1LL : (long long)next);
        json_str(last);
        putchar('}');
    }
    lc->shown++;
}

/* cmd_list - `list [filters]`. */
static int cmd_list(const struct filt *f)
{
    struct list_ctx lc = {.f = f};
    if (g_json)
        putchar('[');
    each_msg(list_one, &lc);
    if (g_json)
        printf("]\n");
    return 0;
}

/* show_json - `show --json`. */
static void show_json(const struct qmsg *m)
{
    printf("{\"id\":\"%s\",\"folder\":\"%s\",\"arrival\":%lld,\"size\":%llu,\"held\":%s,"
           "\"sender\":",
           m->id, m->folder, (long long)m->env.arrival, (unsigned long long)m->env.size,
           m->st.held ? "true" : "false");
    json_str(m->env.sender);
    printf(",\"recipients\":[");
    for (size_t i = 0; i < m->st.nrcpt; i++) {
        const struct qstate_rcpt *r = &m->st.rcpts[i];
        printf("%s{\"address\":", i ? "," : "");
        json_str(r->addr);
        printf(",\"state\":\"%s\",\"attempts\":%u,\"next_attempt\":%lld,\"hop\":",
               qstate_state_name(r->state), r->attempts, (long long)r->next);
        json_str(hop_of(r->addr));
        printf(",\"last\":");
        json_str(r->last ? r->last : "");
        putchar('}');
    }
    printf("]}\n");
}

/* show_dsn - the RFC 3461 parameters of recipient i (or, i == SIZE_MAX,
 * of the message) as " key=value" words; nothing when there are none. */
static void show_dsn(const struct qmsg *m, size_t i)
{
    const struct qfile_env *e = &m->env;
    if (i == SIZE_MAX) {
        if (e->ret)
            printf(" ret=%s", e->ret == SMTP_RET_HDRS ? "HDRS" : "FULL");
        if (e->envid)
            printf(" envid=%s", e->envid);
        return;
    }
    char nt[32];
    if (i >= e->nrcpt)
        return;
    smtp_notify_format(e->notify ? e->notify[i] : 0, nt, sizeof nt);
    if (nt[0])
        printf(" notify=%s", nt);
    if (e->orcpts && e->orcpts[i])
        printf(" orcpt=%s", e->orcpts[i]);
}

/* cmd_show - `show ID`. */
static int cmd_show(const char *id)
{
    struct qmsg m;
    bool ok = qfile_id_valid(id, strlen(id)) &&
              (load_msg("active", id, &m) || (free_msg(&m), load_msg("new", id, &m)));
    if (!ok) {
        free_msg(&m);
        fprintf(stderr, "mxringctl: %s: no such message in the queue\n", id);
        return 1;
    }
    if (g_json) {
        show_json(&m);
    } else {
        printf("id %s\nfolder %s\narrival %lld\nsize %llu\nsender <%s>", m.id, m.folder,
               (long long)m.env.arrival, (unsigned long long)m.env.size, m.env.sender);
        show_dsn(&m, SIZE_MAX);
        printf("\nheld %s\n", m.st.held ? "yes" : "no");
        for (size_t i = 0; i < m.st.nrcpt; i++) {
            const struct qstate_rcpt *r = &m.st.rcpts[i];
            char when[32];
            printf("rcpt <%s> %s attempts=%u next=%s hop=%s last=\"%s\"", r->addr,
                   qstate_state_name(r->state), r->attempts,
                   r->state == QST_PENDING ? fmt_when(r->next, when, sizeof(when)) : "-",
                   hop_of(r->addr), r->last ? r->last : "");
            show_dsn(&m, i);
            putchar('\n');
        }
    }
    free_msg(&m);
    return 0;
}

/* ---- stats ----------------------------------------------------------------------- */

#define STATS_HOPS 64

struct stats {
    size_t msgs_new, msgs_active, held;
    size_t by_state[3];
    const char *hop[STATS_HOPS];
    size_t hop_n[STATS_HOPS][3];
    size_t nhop;
};

/* stats_one - count m. */
static void stats_one(struct qmsg *m, void *arg)
{
    struct stats *s = arg;
    *(strcmp(m->folder, "new") == 0 ? &s->msgs_new : &s->msgs_active) += 1;
    s->held += m->st.held;
    for (size_t i = 0; i < m->st.nrcpt; i++) {
        const struct qstate_rcpt *r = &m->st.rcpts[i];
        s->by_state[r->state]++;
        const char *h = hop_of(r->addr);
        size_t k = 0;
        while (k < s->nhop && strcmp(s->hop[k], h) != 0)
            k++;
        if (k == s->nhop && s->nhop < STATS_HOPS)
            s->hop[s->nhop++] = h;
        if (k < s->nhop)
            s->hop_n[k][r->state]++;
    }
}

/* cmd_stats - `stats`: messages by folder, recipients by state and hop. */
static int cmd_stats(void)
{
    struct stats s = {0};
    each_msg(stats_one, &s);
    if (!g_json) {
        printf("messages new=%zu active=%zu held=%zu\n", s.msgs_new, s.msgs_active, s.held);
        printf("recipients pending=%zu sent=%zu bounced=%zu\n", s.by_state[QST_PENDING],
               s.by_state[QST_SENT], s.by_state[QST_BOUNCED]);
        for (size_t k = 0; k < s.nhop; k++)
            printf("hop %s pending=%zu sent=%zu bounced=%zu\n", s.hop[k], s.hop_n[k][0],
                   s.hop_n[k][1], s.hop_n[k][2]);
        return 0;
    }
    printf("{\"messages\":{\"new\":%zu,\"active\":%zu,\"held\":%zu},\"recipients\":{\"pending\":"
           "%zu,\"sent\":%zu,\"bounced\":%zu},\"hops\":[",
           s.msgs_new, s.msgs_active, s.held, s.by_state[0], s.by_state[1], s.by_state[2]);
    for (size_t k = 0; k < s.nhop; k++) {
        printf("%s{\"hop\":", k ? "," : "");
        json_str(s.hop[k]);
        printf(",\"pending\":%zu,\"sent\":%zu,\"bounced\":%zu}", s.hop_n[k][0], s.hop_n[k][1],
               s.hop_n[k][2]);
    }
    printf("]}\n");
    return 0;
}

/* ---- state changes ----------------------------------------------------------------- */

/* ctl_send - one command over the control socket: 0 ok, 1 refused (the
 * reply says why), -1 when mxringd is not there (no socket / refused). */
static int ctl_send(const char *cmd, const char *arg)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", g_cfg->workdir);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char line[256], reply[CTL_REPLY_MAX];
    int n = snprintf(line, sizeof(line), "%s %s\n", cmd, arg);
    size_t got = 0;
    ssize_t r = write(fd, line, (size_t)n);
    while (r >= 0 && got < sizeof(reply) - 1 &&
           (r = read(fd, reply + got, sizeof(reply) - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    reply[got] = 0;
    fputs(got ? reply : "error no reply from mxringd\n",
          strncmp(reply, "ok", 2) == 0 ? stdout : stderr);
    return strncmp(reply, "ok", 2) == 0 ? 0 : 1;
}

/* log_offline_delete - a deliverylog line (when it is on) for a delete
 * done while mxringd was not running. */
static void log_offline_delete(const char *id)
{
    char host[256] = "localhost", path[4600], prefix[64];
    gethostname(host, sizeof(host) - 1);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    snprintf(path, sizeof(path), "%s/deliverylog/%s", g_cfg->workdir, host);
    char *top = strrchr(path, '/');
    *top = 0;
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return; /* the delivery log is off */
    *top = '/';
    mkdir(path, 0750);
    size_t len = strlen(path);
    strftime(path + len, sizeof(path) - len, "/%Y%m%d.log", &tm);
    FILE *f = fopen(path, "a");
    if (!f)
        return;
    rlog_format_prefix(prefix, (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec, 0);
    fprintf(f, "%squeue id %s: deleted by uid %u (mxringctl delete, mxringd not running)\n", prefix,
            id, (unsigned)getuid());
    fclose(f);
}

/* write_state - the state file of m (tmp + rename). 0 or -1. */
static int write_state(const struct qmsg *m)
{
    char path[4300], tmp[4310];
    struct sb b = {0};
    snprintf(path, sizeof(path), "%s/state/%s", g_q, m->id);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = -1, rc = -1;
    if (qstate_format(&m->st, &b) && (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640)) >= 0 &&
        write(fd, b.data, b.len) == (ssize_t)b.len && fsync(fd) == 0)
        rc = rename(tmp, path);
    if (fd >= 0)
        close(fd);
    sb_free(&b);
    return rc;
}

/* offline - cmd on the files themselves (mxringd is not running). */
static int offline(const char *cmd, const char *id)
{
    struct qmsg m;
    if (!load_msg("active", id, &m) && (free_msg(&m), !load_msg("new", id, &m))) {
        free_msg(&m);
        fprintf(stderr, "mxringctl: %s: no such message in the queue\n", id);
        return 1;
    }
    int rc = 0;
    if (strcmp(cmd, "delete") == 0) {
        char path[4300];
        snprintf(path, sizeof(path), "%s/%s/%s", g_q, m.folder, id);
        rc = unlink(path);
        snprintf(path, sizeof(path), "%s/state/%s", g_q, id);
        unlink(path);
        if (rc == 0)
            log_offline_delete(id);
    } else if (strcmp(m.folder, "active") == 0 || strcmp(cmd, "retry") != 0) {
        if (strcmp(cmd, "retry") == 0)
            for (size_t i = 0; i < m.st.nrcpt; i++)
                m.st.rcpts[i].next = 0;
        else
            m.st.held = strcmp(cmd, "hold") == 0;
        rc = write_state(&m);
    }
    free_msg(&m);
    if (rc < 0) {
        fprintf(stderr, "mxringctl: %s %s: %s\n", cmd, id, strerror(errno));
        return 1;
    }
    printf("ok %s %s (mxringd not running: files changed directly)\n", cmd, id);
    return 0;
}

/* retry_all_one - offline `retry --all`, one message; held ones are left
 * alone (their schedule waits for the release). */
static void retry_all_one(struct qmsg *m, void *arg)
{
    if (!m->st.held)
        *(int *)arg |= offline("retry", m->id);
}

/* cmd_change - retry/hold/release/delete: through mxringd, else offline. */
static int cmd_change(const char *cmd, const char *id)
{
    bool all = strcmp(id, "--all") == 0;
    if (!all && !qfile_id_valid(id, strlen(id))) {
        fprintf(stderr, "mxringctl: %s: not a queue id (20 hex digits)\n", id);
        return 2;
    }
    int rc = ctl_send(cmd, id);
    if (rc >= 0)
        return rc;
    if (!all)
        return offline(cmd, id);
    rc = 0;
    each_msg(retry_all_one, &rc);
    return rc;
}

/* ---- main -------------------------------------------------------------------------- */

/* usage - the command summary. */
static int usage(FILE *f)
{
    fprintf(f, "usage: mxringctl -c FILE [--json] COMMAND\n"
               "  list [--sender ADDR] [--rcpt ADDR] [--hop HOP] [--age SECONDS]\n"
               "  show ID\n"
               "  retry ID | retry --all\n"
               "  hold ID | release ID | delete ID\n"
               "  stats\n");
    return f == stdout ? 0 : 2;
}

/* run_cmd - dispatch the command words in argv. */
static int run_cmd(int argc, char **argv, const struct filt *f)
{
    const char *cmd = argv[0];
    if (strcmp(cmd, "list") == 0 && argc == 1)
        return cmd_list(f);
    if (strcmp(cmd, "show") == 0 && argc == 2)
        return cmd_show(argv[1]);
    if (strcmp(cmd, "stats") == 0 && argc == 1)
        return cmd_stats();
    if (argc == 2 && (strcmp(cmd, "retry") == 0 || strcmp(cmd, "hold") == 0 ||
                      strcmp(cmd, "release") == 0 || strcmp(cmd, "delete") == 0))
        return cmd_change(cmd, argv[1]);
    return usage(stderr);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},       {"sender", required_argument, NULL, 's'},
        {"rcpt", required_argument, NULL, 'r'}, {"hop", required_argument, NULL, 'H'},
        {"age", required_argument, NULL, 'a'},  {"all", no_argument, NULL, 'A'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
    const char *path = NULL;
    struct filt f = {.min_age = -1};
    bool all = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) { /* options anywhere */
        switch (opt) {
        case 'c': path = optarg; break;
        case 'j': g_json = true; break;
        case 's': f.sender = optarg; break;
        case 'r': f.rcpt = optarg; break;
        case 'H': f.hop = optarg; break;
        case 'a': f.min_age = atol(optarg); break;
        case 'A': all = true; break;
        case 'h': return usage(stdout);
        default: return usage(stderr);
        }
    }
    if (!path || optind >= argc)
        return usage(stderr);
    char err[512];
    struct config *cfg = cfg_load(path, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "mxringctl: %s\n", err);
        return 2;
    }
    g_cfg = cfg;
    g_routes = routes_load(cfg->relay_routes, cfg->default_route, cfg->relay_tls, err, sizeof(err));
    snprintf(g_q, sizeof(g_q), "%s/queue", cfg->workdir);
    char *words[3] = {argv[optind], optind + 1 < argc ? argv[optind + 1] : NULL, NULL};
    int nwords = argc - optind;
    if (all && nwords == 1 && strcmp(words[0], "retry") == 0) {
        words[1] = "--all";
        nwords = 2;
    }
    int rc = nwords <= 2 ? run_cmd(nwords, words, &f) : usage(stderr);
    routes_free(g_routes);
    cfg_free(cfg);
    return rc;
}
