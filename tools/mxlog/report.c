/* report.c - `mxlog report --html FILE`: one self-contained page (inline
 * CSS and SVG, no script, no external asset): messages per hour as
 * stacked bars (accepted, then each refusal verdict), top verdicts,
 * clients and refused recipients, and the worst sessions. Main thread. */
#include "out.h"
#include "stats.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define CHART_W 960
#define CHART_H 300
#define CHART_L 50 /* left margin (y axis labels) */
#define CHART_B 40 /* bottom margin (hour labels) */
#define TOP_ROWS 15

/* One colour per verdict (accepted green, refusals warm, others grey). */
_Static_assert(MXL_V_COUNT == 30, "one colour per verdict");
static const char *const colour[MXL_V_COUNT] = {
    "#2e7d32", "#66bb6a", "#e53935", "#d81b60", "#8e24aa", "#5e35b1", "#3949ab", "#f4511e",
    "#b71c1c", "#fb8c00", "#6d4c41", "#795548", "#a1887f", "#c62828", "#fdd835", "#00897b",
    "#00acc1", "#039be5", "#1e88e5", "#7cb342", "#c0ca33", "#ffb300", "#546e7a", "#ad1457",
    "#4e342e", "#37474f", "#ef6c00", "#9e9e9e", "#bdbdbd", "#cfd8dc",
};

/* html - s with &, <, >, " escaped. */
static void html(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* charted - does verdict v appear in the hourly chart? */
static bool charted(int v)
{
    return v == MXL_V_ACCEPTED || v == MXL_V_QUARANTINED ||
           mxl_verdict_refused((enum mxl_verdict)v);
}

/* hour_total - messages drawn for one hour. */
static uint64_t hour_total(const struct mxl_hour *h)
{
    uint64_t n = 0;
    for (int v = 0; v < MXL_V_COUNT; v++)
        if (charted(v))
            n += h->n[v];
    return n;
}

/* chart_bars - one column per hour, one <rect class="bar"> per verdict
 * with a count, stacked from the bottom (accepted first). */
static void chart_bars(FILE *f, const struct mxl_agg *g, uint64_t max)
{
    double plot_h = CHART_H - CHART_B - 10, col = (double)(CHART_W - CHART_L) / (double)g->nhours;
    double bw = col * 0.7 < 40 ? col * 0.7 : 40;
    for (size_t i = 0; i < g->nhours; i++) {
        const struct mxl_hour *h = &g->hours[i];
        double x = CHART_L + col * (double)i + (col - bw) / 2, y = CHART_H - CHART_B;
        char key[32];
        mxl_fmt_time(h->hour * 3600, ' ', key);
        key[13] = 0;
        for (int v = 0; v < MXL_V_COUNT; v++) {
            if (!charted(v) || !h->n[v])
                continue;
            double bh = plot_h * (double)h->n[v] / (double)max;
            if (bh < 1)
                bh = 1;
            y -= bh;
            fprintf(f,
                    "<rect class=\"bar\" data-hour=\"%s\" data-verdict=\"%s\" data-count=\"%u\" "
                    "x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
                    "<title>%s %s: %u</title></rect>\n",
                    key, mxl_verdict_name((enum mxl_verdict)v), h->n[v], x, y, bw, bh, colour[v],
                    key, mxl_verdict_name((enum mxl_verdict)v), h->n[v]);
        }
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"lbl\" text-anchor=\"middle\">%s</text>\n",
                x + bw / 2, CHART_H - CHART_B + 16, key + 11);
        if (i == 0 || i + 1 == g->nhours)
            fprintf(f,
                    "<text x=\"%.1f\" y=\"%d\" class=\"lbl\" text-anchor=\"middle\">%.10s</text>\n",
                    x + bw / 2, CHART_H - CHART_B + 32, key);
    }
}

/* chart - the SVG of messages per hour, with axis and legend. */
static void chart(FILE *f, const struct mxl_agg *g)
{
    uint64_t max = 1;
    bool used[MXL_V_COUNT] = {0};
    for (size_t i = 0; i < g->nhours; i++) {
        uint64_t t = hour_total(&g->hours[i]);
        max = t > max ? t : max;
        for (int v = 0; v < MXL_V_COUNT; v++)
            used[v] = used[v] || (charted(v) && g->hours[i].n[v]);
    }
    fprintf(f,
            "<h2>Messages per hour</h2>\n<svg id=\"hours\" "
            "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
            CHART_W, CHART_H, CHART_W, CHART_H);
    fprintf(f, "<line x1=\"%d\" y1=\"10\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>\n", CHART_L, CHART_L,
            CHART_H - CHART_B);
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>\n", CHART_L,
            CHART_H - CHART_B, CHART_W, CHART_H - CHART_B);
    fprintf(f, "<text x=\"%d\" y=\"18\" class=\"lbl\" text-anchor=\"end\">%" PRIu64 "</text>\n",
            CHART_L - 4, max);
    fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"lbl\" text-anchor=\"end\">0</text>\n", CHART_L - 4,
            CHART_H - CHART_B);
    if (g->nhours)
        chart_bars(f, g, max);
    fputs("</svg>\n<p class=\"legend\">", f);
    for (int v = 0; v < MXL_V_COUNT; v++)
        if (used[v])
            fprintf(f, "<span><i style=\"background:%s\"></i>%s</span> ", colour[v],
                    mxl_verdict_name((enum mxl_verdict)v));
    fputs("</p>\n", f);
}

/* table_tally - a top-N table with a CSS bar per row. */
static void table_tally(FILE *f, const char *id, const char *title, const char *an, const char *bn,
                        const struct mxl_tally *t)
{
    fprintf(f, "<h2>%s</h2>\n<table id=\"%s\"><tr><th>%s</th><th>%s</th>%s%s%s<th></th></tr>\n",
            title, id, "key", an, bn ? "<th>" : "", bn ? bn : "", bn ? "</th>" : "");
    struct mxl_tent **v = mxl_tally_sorted(t, TOP_ROWS);
    uint64_t max = v ? v[0]->a + v[0]->b : 1;
    for (size_t i = 0; v && i < t->n && i < TOP_ROWS; i++) {
        fputs("<tr><td>", f);
        html(f, v[i]->key);
        fprintf(f, "</td><td>%" PRIu64 "</td>", v[i]->a);
        if (bn)
            fprintf(f, "<td>%" PRIu64 "</td>", v[i]->b);
        fprintf(f, "<td><div class=\"hbar\" style=\"width:%" PRIu64 "px\"></div></td></tr>\n",
                (v[i]->a + v[i]->b) * 200 / (max ? max : 1));
    }
    if (!v)
        fputs("<tr><td colspan=\"4\">(none)</td></tr>\n", f);
    fputs("</table>\n", f);
    free(v);
}

/* table_verdicts - verdicts by count. */
static void table_verdicts(FILE *f, const struct mxl_agg *g)
{
    fputs("<h2>Top reasons</h2>\n<table id=\"reasons\"><tr><th>verdict</th><th>count</th></tr>\n",
          f);
    bool done[MXL_V_COUNT] = {0};
    for (;;) {
        int best = -1;
        for (int v = 0; v < MXL_V_COUNT; v++)
            if (!done[v] && g->by_verdict[v] &&
                (best < 0 || g->by_verdict[v] > g->by_verdict[best]))
                best = v;
        if (best < 0)
            break;
        done[best] = true;
        fprintf(f,
                "<tr><td><i class=\"sw\" style=\"background:%s\"></i>%s</td><td>%" PRIu64
                "</td></tr>\n",
                colour[best], mxl_verdict_name((enum mxl_verdict)best), g->by_verdict[best]);
    }
    fputs("</table>\n", f);
}

/* table_worst - the sessions with the most refusals and failures. */
static void table_worst(FILE *f, const struct mxl_agg *g)
{
    fputs("<h2>Worst sessions</h2>\n<table id=\"worst\"><tr><th>time</th><th>host</th>"
          "<th>session</th><th>client</th><th>score</th><th>verdict</th></tr>\n",
          f);
    for (size_t i = 0; i < g->nworst; i++) {
        const struct mxl_worst *w = &g->worst[i];
        char ts[32];
        mxl_fmt_time(w->t, ' ', ts);
        fprintf(f, "<tr><td>%s</td><td>", ts);
        html(f, w->host);
        fprintf(f, "</td><td>%08X</td><td>", w->sid);
        html(f, w->ip);
        fprintf(f, "</td><td>%u</td><td>", w->score);
        html(f, w->words);
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* mxl_report_write - see stats.h. */
void mxl_report_write(FILE *f, const struct mxl_agg *g)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<title>mxlog report</title>\n<style>\n"
          "body{font-family:sans-serif;margin:2em;color:#222}"
          "table{border-collapse:collapse;margin-bottom:1em}"
          "td,th{border-bottom:1px solid #ddd;padding:2px 8px;text-align:left;font-size:13px}"
          ".axis{stroke:#444}.lbl{font-size:11px;fill:#444}"
          ".legend span{margin-right:1em;font-size:13px}"
          ".legend i,.sw{display:inline-block;width:10px;height:10px;margin-right:4px}"
          ".hbar{background:#90a4ae;height:10px}"
          ".cards div{display:inline-block;margin-right:2em}.cards b{font-size:22px;display:block}"
          "\n</style></head><body>\n<h1>mxlog report</h1>\n<div class=\"cards\">",
          f);
    fprintf(f,
            "<div><b>%" PRIu64 "</b>connections</div><div><b>%" PRIu64 "</b>accepted</div>"
            "<div><b>%" PRIu64 "</b>refused</div><div><b>%" PRIu64 "</b>bytes accepted</div>"
            "<div><b>%" PRIu64 "</b>AUTH failures</div></div>\n",
            g->sessions, g->accepted, g->refused, g->bytes, g->auth_failures);
    chart(f, g);
    table_verdicts(f, g);
    table_tally(f, "clients", "Top clients", "transactions", "refusals", &g->clients);
    table_tally(f, "refused-rcpts", "Top refused recipients", "count", NULL, &g->refused_rcpts);
    table_tally(f, "auth-users", "AUTH failures by user", "count", NULL, &g->auth_users);
    table_worst(f, g);
    fputs("</body></html>\n", f);
}

/* mxl_report - see stats.h. */
int mxl_report(struct mxl_opts *o)
{
    struct mxl_agg g = {.o = o};
    struct mxl_sink sink = mxl_agg_sink(&g);
    if (mxl_walk_all(o, &sink, false, NULL) < 0) {
        mxl_agg_free(&g);
        return 2;
    }
    FILE *f = fopen(o->html, "w");
    if (!f) {
        fprintf(stderr, "mxlog: report: %s: %s\n", o->html, strerror(errno));
        mxl_agg_free(&g);
        return 2;
    }
    mxl_report_write(f, &g);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "mxlog: report: cannot write %s\n", o->html);
        mxl_agg_free(&g);
        return 2;
    }
    mxl_report_bad(o);
    mxl_agg_free(&g);
    return o->file_errors ? 2 : 0;
}
