/* stats.c - `mxlog stats`: the full walk into the counters of agg.c, then
 * text tables (totals, refusals by reason, hours, clients, domains,
 * refused recipients, AUTH failures) or one JSON object per row. Main
 * thread. */
#include "stats.h"

#include "out.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define TOP_N 10
/* Day files this large are walked by two threads (a thread costs ~0.1 ms;
 * 4 MB take ~5 ms). The worst-session list is not shown here, so the order
 * in which the halves' sessions end does not show either. */
#define MXL_SPLIT_MIN (4u << 20)

/* mxl_hour_refused - see stats.h. */
uint64_t mxl_hour_refused(const struct mxl_hour *h)
{
    uint64_t n = 0;
    for (int v = 0; v < MXL_V_COUNT; v++)
        if (v != MXL_V_ACCEPTED && v != MXL_V_QUARANTINED &&
            mxl_verdict_refused((enum mxl_verdict)v))
            n += h->n[v];
    return n;
}

/* hour_key - "YYYY-MM-DD HH". */
static void hour_key(int64_t hour, char buf[32])
{
    mxl_fmt_time(hour * 3600, ' ', buf);
    buf[13] = 0;
}

/* print_tally - one tally as a table (top n, 0 = all). */
static void print_tally(const struct mxl_opts *o, const char *table, const char *title,
                        const char *an, const char *bn, const struct mxl_tally *t, size_t n)
{
    struct mxl_tent **v = mxl_tally_sorted(t, n);
    size_t k = t->n < n || !n ? t->n : n;
    if (!o->json)
        printf("\n%s\n", title);
    for (size_t i = 0; v && i < k; i++) {
        if (o->json) {
            printf("{\"table\":\"%s\",\"key\":", table);
            mxl_json_str(stdout, v[i]->key);
            printf(",\"%s\":%" PRIu64, an, v[i]->a);
            if (bn)
                printf(",\"%s\":%" PRIu64, bn, v[i]->b);
            printf("}\n");
        } else if (bn) {
            printf("  %-40s %10" PRIu64 " %10" PRIu64 "\n", v[i]->key, v[i]->a, v[i]->b);
        } else {
            printf("  %-40s %10" PRIu64 "\n", v[i]->key, v[i]->a);
        }
    }
    if (!o->json && !k)
        printf("  (none)\n");
    free(v);
}

/* print_reasons - refusals (and other verdicts) by verdict name. */
static void print_reasons(const struct mxl_opts *o, const struct mxl_agg *g)
{
    if (!o->json)
        printf("\nVerdicts\n");
    for (int v = 0; v < MXL_V_COUNT; v++) {
        if (!g->by_verdict[v])
            continue;
        if (o->json)
            printf("{\"table\":\"reason\",\"key\":\"%s\",\"count\":%" PRIu64 "}\n",
                   mxl_verdict_name((enum mxl_verdict)v), g->by_verdict[v]);
        else
            printf("  %-40s %10" PRIu64 "\n", mxl_verdict_name((enum mxl_verdict)v),
                   g->by_verdict[v]);
    }
}

/* print_hours - messages per hour, accepted and refused. */
static void print_hours(const struct mxl_opts *o, const struct mxl_agg *g)
{
    if (!o->json)
        printf("\nPer hour%33s %10s %10s\n", "", "accepted", "refused");
    for (size_t i = 0; i < g->nhours; i++) {
        char k[32];
        hour_key(g->hours[i].hour, k);
        uint64_t ok = g->hours[i].n[MXL_V_ACCEPTED] + g->hours[i].n[MXL_V_QUARANTINED];
        uint64_t bad = mxl_hour_refused(&g->hours[i]);
        if (o->json)
            printf("{\"table\":\"hour\",\"key\":\"%s\",\"accepted\":%" PRIu64
                   ",\"refused\":%" PRIu64 "}\n",
                   k, ok, bad);
        else
            printf("  %-40s %10" PRIu64 " %10" PRIu64 "\n", k, ok, bad);
    }
}

/* print_totals - the overview block. */
static void print_totals(const struct mxl_opts *o, const struct mxl_agg *g)
{
    if (o->json) {
        printf("{\"table\":\"totals\",\"connections\":%" PRIu64 ",\"transactions\":%" PRIu64
               ",\"accepted\":%" PRIu64 ",\"refused\":%" PRIu64 ",\"bytes_accepted\":%" PRIu64
               ",\"rcpts_accepted\":%" PRIu64 ",\"rcpts_refused\":%" PRIu64
               ",\"auth_failures\":%" PRIu64 ",\"lines\":%" PRIu64 ",\"bad_lines\":%" PRIu64
               ",\"bytes_read\":%" PRIu64 "}\n",
               g->sessions, g->txns, g->accepted, g->refused, g->bytes, g->rcpts_ok,
               g->rcpts_refused, g->auth_failures, o->lines, o->bad_lines, o->bytes);
        return;
    }
    printf("Connections          %12" PRIu64 "\n", g->sessions);
    printf("Transactions         %12" PRIu64 "\n", g->txns);
    printf("Messages accepted    %12" PRIu64 "  (%" PRIu64 " bytes)\n", g->accepted, g->bytes);
    printf("Refused              %12" PRIu64 "\n", g->refused);
    printf("Recipients accepted  %12" PRIu64 "\n", g->rcpts_ok);
    printf("Recipients refused   %12" PRIu64 "\n", g->rcpts_refused);
    printf("AUTH failures        %12" PRIu64 "\n", g->auth_failures);
    printf("Lines read           %12" PRIu64 "  (%" PRIu64 " not in the format, %" PRIu64
           " bytes)\n",
           o->lines, o->bad_lines, o->bytes);
}

/* print_by - one --by table, in full. */
static int print_by(const struct mxl_opts *o, const struct mxl_agg *g)
{
    if (strcmp(o->by, "hour") == 0)
        print_hours(o, g);
    else if (strcmp(o->by, "reason") == 0)
        print_reasons(o, g);
    else if (strcmp(o->by, "client") == 0)
        print_tally(o, "client", "Clients (transactions, refusals)", "transactions", "refusals",
                    &g->clients, 0);
    else if (strcmp(o->by, "sender-domain") == 0)
        print_tally(o, "sender-domain", "Sender domains (accepted, refused)", "accepted", "refused",
                    &g->sender_dom, 0);
    else if (strcmp(o->by, "recipient-domain") == 0)
        print_tally(o, "recipient-domain", "Recipient domains (accepted, refused)", "accepted",
                    "refused", &g->rcpt_dom, 0);
    else {
        fprintf(stderr, "mxlog: stats --by: hour, reason, client, sender-domain or "
                        "recipient-domain\n");
        return 2;
    }
    return 0;
}

/* mxl_stats - see stats.h. */
int mxl_stats(struct mxl_opts *o)
{
    struct mxl_agg g = {.o = o};
    struct mxl_sink sink = mxl_agg_sink(&g);
    struct mxl_split split = mxl_agg_split(&g, MXL_SPLIT_MIN);
    if (mxl_walk_all(o, &sink, false, &split) < 0) {
        mxl_agg_free(&g);
        return 2;
    }
    int rc = 0;
    if (o->by) {
        rc = print_by(o, &g);
    } else {
        print_totals(o, &g);
        print_reasons(o, &g);
        print_hours(o, &g);
        print_tally(o, "client", "Top clients (transactions, refusals)", "transactions", "refusals",
                    &g.clients, TOP_N);
        print_tally(o, "refused-recipient", "Top refused recipients", "count", NULL,
                    &g.refused_rcpts, TOP_N);
        print_tally(o, "auth-user", "AUTH failures by user", "count", NULL, &g.auth_users, TOP_N);
        print_tally(o, "auth-ip", "AUTH failures by client", "count", NULL, &g.auth_ips, TOP_N);
    }
    fflush(stdout);
    mxl_report_bad(o);
    if (g.nomem)
        fprintf(stderr, "mxlog: out of memory: some counts are incomplete\n");
    mxl_agg_free(&g);
    return rc ? rc : o->file_errors ? 2 : 0;
}
