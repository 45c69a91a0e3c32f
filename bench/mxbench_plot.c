/* mxbench_plot.c - `mxbench plot`: reads a --json-series file and writes
 * one HTML page with two inline SVG charts (see mxbench_plot.h): the
 * timeline (throughput panel: target, sent, accepted per second; latency
 * panel, log scale: p50, p99, p999 per second) and the HDR percentile plot
 * (latency against percentile on the 1 / (1 - p) scale). Main thread. */
#include "mxbench_plot.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_LEN 65536
#define KEY_MAX 64
#define US_PER_MS 1000.0
#define W 960  /* SVG width */
#define ML 80  /* left margin (axis labels) */
#define MR 150 /* right margin (legend) */
#define PANEL_H 220
#define TICKS 5

struct axis {
    double lo, hi; /* data range */
    double p0, p1; /* pixels for lo and hi */
    bool log;
};

struct series {
    const char *name; /* data-series attribute and legend */
    const char *color;
    size_t off;   /* field of struct mxb_plot_sec */
    double scale; /* multiplies the field (us -> ms) */
};

/* mxb_json_num - the number after "key":, see mxbench_plot.h. */
bool mxb_json_num(const char *line, const char *key, double *v)
{
    char pat[KEY_MAX + 4];
    if (strlen(key) > KEY_MAX)
        return false;
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p)
        return false;
    char *end;
    double d = strtod(p + strlen(pat), &end);
    if (end == p + strlen(pat) || !isfinite(d))
        return false;
    *v = d;
    return true;
}

/* read_pct - the "percentiles":[[p,us],...] table of the summary line. */
static bool read_pct(const char *line, struct mxb_plot_data *d)
{
    const char *p = strstr(line, "\"percentiles\":[");
    if (!p)
        return true;
    p += strlen("\"percentiles\":[");
    size_t cap = 0;
    for (;;) {
        double a, b;
        int used = 0;
        if (sscanf(p, " [%lf,%lf]%n", &a, &b, &used) != 2 || used == 0)
            break;
        if (d->npct == cap) {
            cap = cap ? cap * 2 : 64;
            void *n = realloc(d->pct, cap * sizeof *d->pct);
            if (!n)
                return false;
            d->pct = n;
        }
        d->pct[d->npct][0] = a;
        d->pct[d->npct][1] = b;
        d->npct++;
        p += used;
        if (*p != ',')
            break;
        p++;
    }
    return true;
}

/* read_summary - the summary line's figures. */
static bool read_summary(const char *line, struct mxb_plot_data *d)
{
    d->have_summary = true;
    mxb_json_num(line, "msgs_per_s", &d->msgs_per_s);
    mxb_json_num(line, "p50_us", &d->p50);
    mxb_json_num(line, "p99_us", &d->p99);
    mxb_json_num(line, "p999_us", &d->p999);
    mxb_json_num(line, "max_us", &d->max);
    mxb_json_num(line, "messages", &d->messages);
    return read_pct(line, d);
}

/* read_second - one per-second line appended to d->sec. */
static bool read_second(const char *line, struct mxb_plot_data *d, size_t *cap)
{
    if (d->nsec == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        void *n = realloc(d->sec, *cap * sizeof *d->sec);
        if (!n)
            return false;
        d->sec = n;
    }
    struct mxb_plot_sec *s = &d->sec[d->nsec];
    memset(s, 0, sizeof *s);
    if (!mxb_json_num(line, "t", &s->t))
        return true;
    mxb_json_num(line, "target_rate", &s->target);
    mxb_json_num(line, "sent", &s->sent);
    mxb_json_num(line, "accepted", &s->accepted);
    mxb_json_num(line, "failed", &s->failed);
    mxb_json_num(line, "p50_us", &s->p50);
    mxb_json_num(line, "p99_us", &s->p99);
    mxb_json_num(line, "p999_us", &s->p999);
    mxb_json_num(line, "max_us", &s->max);
    d->nsec++;
    return true;
}

/* mxb_plot_read - see mxbench_plot.h. */
bool mxb_plot_read(FILE *in, struct mxb_plot_data *d)
{
    char *line = malloc(LINE_MAX_LEN);
    size_t cap = 0;
    bool ok = line != NULL;
    while (ok && fgets(line, LINE_MAX_LEN, in)) {
        if (strstr(line, "\"type\":\"second\""))
            ok = read_second(line, d, &cap);
        else if (strstr(line, "\"type\":\"summary\""))
            ok = read_summary(line, d);
    }
    free(line);
    return ok;
}

/* mxb_plot_free - see mxbench_plot.h. */
void mxb_plot_free(struct mxb_plot_data *d)
{
    free(d->sec);
    free(d->pct);
    memset(d, 0, sizeof *d);
}

/* map - data value v to pixels on axis a. */
static double map(const struct axis *a, double v)
{
    double f;
    if (a->log)
        f = (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
    else
        f = (v - a->lo) / (a->hi - a->lo);
    return a->p0 + f * (a->p1 - a->p0);
}

/* nice_step - a 1/2/5 step that cuts range into about TICKS parts. */
static double nice_step(double range)
{
    double raw = range / TICKS;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/* linear_axis - 0 .. a nice value above max. */
static struct axis linear_axis(double max, double p0, double p1)
{
    if (!(max > 0))
        max = 1;
    double step = nice_step(max);
    return (struct axis){0, ceil(max / step) * step, p0, p1, false};
}

/* log_axis - whole decades around [min, max] (both > 0). */
static struct axis log_axis(double min, double max, double p0, double p1)
{
    if (!(min > 0))
        min = 1e-3;
    if (!(max > min))
        max = min * 10;
    double lo = pow(10, floor(log10(min))), hi = pow(10, ceil(log10(max)));
    return (struct axis){lo, hi > lo ? hi : lo * 10, p0, p1, true};
}

/* fmt_num - a tick label: no trailing zeros, at most 3 decimals. */
static void fmt_num(char *buf, size_t cap, double v)
{
    snprintf(buf, cap, "%.3f", v);
    char *dot = strchr(buf, '.');
    if (!dot)
        return;
    char *e = buf + strlen(buf) - 1;
    while (e > dot && *e == '0')
        *e-- = 0;
    if (e == dot)
        *e = 0;
}

/* y_ticks - grid lines and labels of y between x0 and x1; label is the
 * axis title. */
static void y_ticks(FILE *out, const struct axis *y, double x0, double x1, const char *label)
{
    char num[32];
    double step = y->log ? 0 : nice_step(y->hi - y->lo);
    for (double v = y->lo; v <= y->hi * (1 + 1e-9); v = y->log ? v * 10 : v + step) {
        double py = map(y, v);
        fmt_num(num, sizeof num, v);
        fprintf(out,
                "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                x0, py, x1, py, x0 - 6, py + 4, num);
    }
    double mid = (y->p0 + y->p1) / 2;
    fprintf(out,
            "<text class=\"axis\" transform=\"translate(16 %.1f) rotate(-90)\" "
            "text-anchor=\"middle\">%s</text>\n",
            mid, label);
}

/* x_ticks_time - vertical grid lines and second labels along x. */
static void x_ticks_time(FILE *out, const struct axis *x, double y0, double y1)
{
    char num[32];
    double step = nice_step(x->hi - x->lo);
    for (double v = x->lo; v <= x->hi * (1 + 1e-9); v += step) {
        double px = map(x, v);
        fmt_num(num, sizeof num, v);
        fprintf(out,
                "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                px, y0, px, y1, px, y1 + 16, num);
    }
}

/* field - series field of second s. */
static double field(const struct mxb_plot_sec *s, const struct series *se)
{
    double v;
    memcpy(&v, (const char *)s + se->off, sizeof v);
    return v * se->scale;
}

/* polyline - one series over the seconds; on a log axis seconds without a
 * value (no message accepted) are left out. */
static void polyline(FILE *out, const struct mxb_plot_data *d, const struct series *se,
                     const struct axis *x, const struct axis *y, const char *dash)
{
    fprintf(out,
            "<polyline class=\"series\" data-series=\"%s\" fill=\"none\" stroke=\"%s\" "
            "stroke-width=\"1.8\"%s%s%s points=\"",
            se->name, se->color, dash ? " stroke-dasharray=\"" : "", dash ? dash : "",
            dash ? "\"" : "");
    bool first = true;
    for (size_t i = 0; i < d->nsec; i++) {
        double v = field(&d->sec[i], se);
        if (y->log && !(v > 0))
            continue;
        if (y->log && v < y->lo)
            v = y->lo;
        fprintf(out, "%s%.1f,%.1f", first ? "" : " ", map(x, d->sec[i].t + 0.5), map(y, v));
        first = false;
    }
    fprintf(out, "\"/>\n");
}

/* legend - one swatch and name per series, top to bottom from (x, y). */
static void legend(FILE *out, const struct series *se, size_t n, double x, double y)
{
    for (size_t i = 0; i < n; i++)
        fprintf(out,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"4\" fill=\"%s\"/>"
                "<text class=\"legend\" x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                x, y + 18.0 * (double)i, se[i].color, x + 20, y + 18.0 * (double)i + 5, se[i].name);
}

/* range - the lowest positive and the highest value of the series. */
static void range(const struct mxb_plot_data *d, const struct series *se, size_t n, double *lo,
                  double *hi)
{
    *lo = INFINITY;
    *hi = 0;
    for (size_t k = 0; k < n; k++) {
        for (size_t i = 0; i < d->nsec; i++) {
            double v = field(&d->sec[i], &se[k]);
            if (v > 0 && v < *lo)
                *lo = v;
            if (v > *hi)
                *hi = v;
        }
    }
}

static const struct series rate_series[] = {
    {"target", "#9e9e9e", offsetof(struct mxb_plot_sec, target), 1},
    {"sent", "#1f77b4", offsetof(struct mxb_plot_sec, sent), 1},
    {"accepted", "#2ca02c", offsetof(struct mxb_plot_sec, accepted), 1},
};
static const struct series lat_series[] = {
    {"p50", "#1f77b4", offsetof(struct mxb_plot_sec, p50), 1 / US_PER_MS},
    {"p99", "#ff7f0e", offsetof(struct mxb_plot_sec, p99), 1 / US_PER_MS},
    {"p999", "#d62728", offsetof(struct mxb_plot_sec, p999), 1 / US_PER_MS},
};
#define NSERIES(a) (sizeof(a) / sizeof((a)[0]))

/* timeline - the first chart: throughput and latency against time. */
static void timeline(FILE *out, const struct mxb_plot_data *d)
{
    const double top0 = 40, top1 = top0 + PANEL_H, bot0 = top1 + 60, bot1 = bot0 + PANEL_H;
    double tmax = d->nsec ? d->sec[d->nsec - 1].t + 1 : 1, lo, hi;
    struct axis x = {0, tmax, ML, W - MR, false};
    range(d, rate_series, NSERIES(rate_series), &lo, &hi);
    struct axis yr = linear_axis(hi, top1, top0);
    range(d, lat_series, NSERIES(lat_series), &lo, &hi);
    struct axis yl = log_axis(lo, hi, bot1, bot0);
    fprintf(out,
            "<svg id=\"timeline\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
            "width=\"%d\" height=\"%.0f\" viewBox=\"0 0 %d %.0f\">\n"
            "<text class=\"title\" x=\"%d\" y=\"24\">Throughput (msgs/s) and latency (ms, log "
            "scale) per second</text>\n",
            W, bot1 + 40, W, bot1 + 40, ML);
    y_ticks(out, &yr, ML, W - MR, "msgs/s");
    x_ticks_time(out, &x, top0, top1);
    for (size_t i = 0; i < NSERIES(rate_series); i++)
        polyline(out, d, &rate_series[i], &x, &yr, i == 0 ? "6 4" : NULL);
    legend(out, rate_series, NSERIES(rate_series), W - MR + 16, top0 + 10);
    y_ticks(out, &yl, ML, W - MR, "latency ms");
    x_ticks_time(out, &x, bot0, bot1);
    for (size_t i = 0; i < NSERIES(lat_series); i++)
        polyline(out, d, &lat_series[i], &x, &yl, NULL);
    legend(out, lat_series, NSERIES(lat_series), W - MR + 16, bot0 + 10);
    fprintf(out,
            "<text class=\"axis\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">seconds "
            "since the start</text>\n</svg>\n",
            (ML + W - MR) / 2.0, bot1 + 34);
}

/* nines - the x position of percentile p: log10(1 / (1 - p/100)). */
static double nines(double p)
{
    return -log10(1 - p / 100);
}

/* pct_ticks - x labels 0%, 90%, 99%, 99.9%, ... up to x->hi. */
static void pct_ticks(FILE *out, const struct axis *x, double y0, double y1)
{
    for (int k = 0; k <= (int)x->hi; k++) {
        double px = map(x, k);
        char label[32];
        if (k == 0)
            snprintf(label, sizeof label, "0%%");
        else
            snprintf(label, sizeof label, "%.*f%%", k > 2 ? k - 2 : 0, 100 * (1 - pow(10, -k)));
        fprintf(out,
                "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                px, y0, px, y1, px, y1 + 16, label);
    }
}

/* percentile_chart - the second chart: the HDR percentile plot of the
 * summary's table (the maximum, P = 100, is drawn at the right edge). */
static void percentile_chart(FILE *out, const struct mxb_plot_data *d)
{
    const double y0 = 40, y1 = y0 + PANEL_H + 80;
    double xmax = 1, ymax = 0;
    for (size_t i = 0; i < d->npct; i++) {
        if (d->pct[i][0] < 100 && nines(d->pct[i][0]) > xmax)
            xmax = nines(d->pct[i][0]);
        if (d->pct[i][1] / US_PER_MS > ymax)
            ymax = d->pct[i][1] / US_PER_MS;
    }
    struct axis x = {0, ceil(xmax), ML, W - MR, false};
    struct axis y = linear_axis(ymax, y1, y0);
    fprintf(out,
            "<svg id=\"percentiles\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
            "width=\"%d\" height=\"%.0f\" viewBox=\"0 0 %d %.0f\">\n"
            "<text class=\"title\" x=\"%d\" y=\"24\">Latency by percentile, whole run "
            "(HDR percentile plot)</text>\n",
            W, y1 + 40, W, y1 + 40, ML);
    y_ticks(out, &y, ML, W - MR, "latency ms");
    pct_ticks(out, &x, y0, y1);
    fprintf(out, "<polyline class=\"series\" data-series=\"latency\" fill=\"none\" "
                 "stroke=\"#d62728\" stroke-width=\"1.8\" points=\"");
    for (size_t i = 0; i < d->npct; i++) {
        double px = d->pct[i][0] < 100 ? nines(d->pct[i][0]) : x.hi;
        fprintf(out, "%s%.1f,%.1f", i ? " " : "", map(&x, px), map(&y, d->pct[i][1] / US_PER_MS));
    }
    fprintf(out, "\"/>\n");
    static const struct series one[] = {{"latency", "#d62728", 0, 1}};
    legend(out, one, 1, W - MR + 16, y0 + 10);
    fprintf(out,
            "<text class=\"axis\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
            "percentile</text>\n</svg>\n",
            (ML + W - MR) / 2.0, y1 + 34);
}

/* put_escaped - s as HTML text. */
static void put_escaped(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", out);
        else if (*s == '>')
            fputs("&gt;", out);
        else if (*s == '&')
            fputs("&amp;", out);
        else if (*s == '"')
            fputs("&quot;", out);
        else
            fputc(*s, out);
    }
}

/* mxb_plot_html - see mxbench_plot.h. */
void mxb_plot_html(FILE *out, const struct mxb_plot_data *d, const char *name)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>mxbench: ",
          out);
    put_escaped(out, name);
    fputs("</title>\n<style>body{font:14px sans-serif;margin:24px;color:#222}"
          "svg{display:block;margin:12px 0}.grid{stroke:#e4e4e4;stroke-width:1}"
          ".tick{font-size:11px;fill:#555}.axis{font-size:12px;fill:#333}"
          ".title{font-size:14px;font-weight:bold;fill:#222}.legend{font-size:12px;fill:#222}"
          "</style></head><body>\n<h1>mxbench: ",
          out);
    put_escaped(out, name);
    fprintf(out, "</h1>\n<p id=\"summary\">%zu seconds; ", d->nsec);
    if (d->have_summary)
        fprintf(out,
                "%.0f messages accepted, %.1f msgs/s; latency p50 %.2f ms, p99 %.2f ms, "
                "p99.9 %.2f ms, max %.2f ms",
                d->messages, d->msgs_per_s, d->p50 / US_PER_MS, d->p99 / US_PER_MS,
                d->p999 / US_PER_MS, d->max / US_PER_MS);
    else
        fputs("no summary line (the run did not finish)", out);
    fputs(".</p>\n", out);
    timeline(out, d);
    percentile_chart(out, d);
    fputs("</body></html>\n", out);
}

/* mxb_plot_main - see mxbench_plot.h. */
int mxb_plot_main(int argc, char **argv)
{
    if (argc != 4 || strcmp(argv[2], "--html") != 0) {
        fprintf(stderr, "usage: mxbench plot SERIES.json --html FILE\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "r");
    if (!in) {
        fprintf(stderr, "mxbench plot: cannot read %s\n", argv[1]);
        return 2;
    }
    struct mxb_plot_data d = {0};
    bool ok = mxb_plot_read(in, &d);
    fclose(in);
    FILE *out = ok ? fopen(argv[3], "w") : NULL;
    if (out) {
        const char *slash = strrchr(argv[1], '/');
        mxb_plot_html(out, &d, slash ? slash + 1 : argv[1]);
        ok = fclose(out) == 0;
    }
    mxb_plot_free(&d);
    if (!out || !ok) {
        fprintf(stderr, "mxbench plot: cannot write %s\n", argv[3]);
        return 2;
    }
    return 0;
}
