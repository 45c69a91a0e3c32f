/* main.c - mxlog's command line: the input selection (--dir, -c, --date,
 * --since/--until), the output options (--json, -v) and the subcommands
 * why, stats, follow and report. Main thread only. */
#include "follow.h"
#include "stats.h"
#include "walk.h"
#include "why.h"

#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* usage - the command line summary. */
static int usage(FILE *f, int rc)
{
    fputs("usage: mxlog [options] why ADDRESS|IP|QUEUE-ID|SESSION-ID\n"
          "       mxlog [options] stats [--by hour|reason|client|sender-domain|recipient-domain]\n"
          "       mxlog [options] follow [FILTER] [--host NAME]\n"
          "       mxlog [options] report --html FILE\n"
          "options: --dir WORKDIR (default: the workdir of -c FILE, else ./var)\n"
          "         -c FILE   take the workdir from mxringd's configuration\n"
          "         --date YYYYMMDD, --since TIME, --until TIME\n"
          "                   TIME: YYYYMMDD, YYYY-MM-DD, YYYY-MM-DD[T ]HH:MM[:SS]\n"
          "         --json    one JSON object per line (schema: README \"mxlog\")\n"
          "         -v        the session's raw lines after its verdicts (why, follow)\n",
          f);
    return rc;
}

/* parse_time - TIME into civil seconds; end: a date alone means its last
 * second. false if malformed. */
static bool parse_time(const char *s, bool end, int64_t *out)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
    bool date_only = true;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 ||
        (strlen(s) >= 8 && sscanf(s, "%4d%2d%2d%n", &y, &mo, &d, &n) == 3)) {
        const char *r = s + n;
        if (*r == 'T' || *r == ' ') {
            int k = 0;
            if (sscanf(r + 1, "%2d:%2d%n:%2d%n", &h, &mi, &k, &sec, &k) < 2)
                return false;
            r += 1 + k;
            date_only = false;
        }
        if (*r || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
            return false;
        *out = mxl_civil_to(y, mo, d, h, mi, sec) + (date_only && end ? 86399 : 0);
        return true;
    }
    return false;
}

/* day_of - yyyymmdd of civil seconds t. */
static uint32_t day_of(int64_t t)
{
    int y, mo, d, h, mi, s;
    mxl_civil_from(t, &y, &mo, &d, &h, &mi, &s);
    return (uint32_t)(y * 10000 + mo * 100 + d);
}

/* conf_workdir - the workdir key of an mxringd configuration file. */
static char *conf_workdir(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return NULL;
    }
    char line[4096], *out = NULL;
    while (!out && fgets(line, sizeof(line), f)) {
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (strncmp(p, "workdir", 7) != 0)
            continue;
        p += 7;
        while (isspace((unsigned char)*p))
            p++;
        if (*p++ != '=')
            continue;
        while (isspace((unsigned char)*p))
            p++;
        size_t n = strlen(p);
        while (n && isspace((unsigned char)p[n - 1]))
            p[--n] = 0;
        out = strdup(p);
    }
    fclose(f);
    if (!out)
        fprintf(stderr, "mxlog: %s: no workdir line\n", path);
    return out;
}

enum { OPT_DIR = 256, OPT_DATE, OPT_SINCE, OPT_UNTIL, OPT_JSON, OPT_BY, OPT_HTML, OPT_HOST };

struct cli {
    struct mxl_opts o;
    const char *conf, *host;
    char *conf_dir;
};

/* parse_opts - every option (they may follow the subcommand). */
static int parse_opts(int argc, char **argv, struct cli *c)
{
    static const struct option longs[] = {{"dir", required_argument, 0, OPT_DIR},
                                          {"date", required_argument, 0, OPT_DATE},
                                          {"since", required_argument, 0, OPT_SINCE},
                                          {"until", required_argument, 0, OPT_UNTIL},
                                          {"json", no_argument, 0, OPT_JSON},
                                          {"by", required_argument, 0, OPT_BY},
                                          {"html", required_argument, 0, OPT_HTML},
                                          {"host", required_argument, 0, OPT_HOST},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "c:vh", longs, NULL)) != -1) {
        switch (ch) {
        case 'c': c->conf = optarg; break;
        case 'v': c->o.verbose = true; break;
        case OPT_DIR: c->o.workdir = optarg; break;
        case OPT_JSON: c->o.json = true; break;
        case OPT_BY: c->o.by = optarg; break;
        case OPT_HTML: c->o.html = optarg; break;
        case OPT_HOST: c->host = optarg; break;
        case OPT_DATE: {
            int64_t t;
            if (strlen(optarg) != 8 || !parse_time(optarg, false, &t))
                return fprintf(stderr, "mxlog: --date wants YYYYMMDD\n"), 2;
            c->o.day_from = c->o.day_to = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        }
        case OPT_SINCE:
        case OPT_UNTIL: {
            int64_t t;
            if (!parse_time(optarg, ch == OPT_UNTIL, &t))
                return fprintf(stderr, "mxlog: bad time %s\n", optarg), 2;
            if (ch == OPT_SINCE)
                c->o.since = t,
                c->o.day_from = day_of(t) > c->o.day_from ? day_of(t) : c->o.day_from;
            else
                c->o.until = t, c->o.day_to = day_of(t) < c->o.day_to ? day_of(t) : c->o.day_to;
            break;
        }
        case 'h': return usage(stdout, 0) ? 2 : -1;
        default: return usage(stderr, 2);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct cli c = {
        .o = {.day_from = 0, .day_to = UINT32_MAX, .since = INT64_MIN, .until = INT64_MAX}};
    int rc = parse_opts(argc, argv, &c);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!c.o.workdir && c.conf && !(c.o.workdir = c.conf_dir = conf_workdir(c.conf)))
        return 2;
    if (!c.o.workdir)
        c.o.workdir = "var";
    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
    const char *cmd = optind < argc ? argv[optind] : NULL;
    const char *arg = optind + 1 < argc ? argv[optind + 1] : NULL;
    if (!cmd)
        rc = usage(stderr, 2);
    else if (strcmp(cmd, "why") == 0)
        rc = arg ? mxl_why(&c.o, arg) : usage(stderr, 2);
    else if (strcmp(cmd, "stats") == 0)
        rc = mxl_stats(&c.o);
    else if (strcmp(cmd, "follow") == 0)
        rc = mxl_follow(&c.o, c.host, arg);
    else if (strcmp(cmd, "report") == 0)
        rc = c.o.html ? mxl_report(&c.o) : usage(stderr, 2);
    else
        rc = usage(stderr, 2);
    free(c.conf_dir);
    return rc;
}
