/* mxbench_report.c - the summary of a mxbench run (see mxbench_report.h):
 * human lines, and the JSON members shared by --json and the summary line
 * of --json-series. Main thread only. */
#include "mxbench_report.h"
#include "mxbench_proto.h"

#define NS_PER_US 1000.0
#define US_PER_MS 1000.0
#define ENH_TEXT 16

static const char *const arrival_names[] = {
    [MXB_ARRIVAL_UNIFORM] = "uniform",
    [MXB_ARRIVAL_POISSON] = "poisson",
};

/* us - a histogram value in microseconds. */
static double us(uint64_t ns)
{
    return (double)ns / NS_PER_US;
}

/* per_s - n per second of the run. */
static double per_s(uint64_t n, double secs)
{
    return secs > 0 ? (double)n / secs : 0;
}

/* enh_text - an enhanced status code as "C.S.D", "" for none. */
static const char *enh_text(unsigned enh, char *buf, size_t cap)
{
    if (enh == 0)
        snprintf(buf, cap, "%s", "");
    else
        snprintf(buf, cap, "%u.%u.%u", MXB_ENH_CLASS(enh), MXB_ENH_SUBJECT(enh),
                 MXB_ENH_DETAIL(enh));
    return buf;
}

/* conn_text - how connections carry messages. */
static const char *conn_text(const struct mxb_opts *o, char *buf, size_t cap)
{
    if (o->per_conn == 0)
        snprintf(buf, cap, "reused connections");
    else if (o->per_conn == 1)
        snprintf(buf, cap, "one connection per message");
    else
        snprintf(buf, cap, "%u messages per connection", o->per_conn);
    return buf;
}

/* human_open - the open-loop line: schedule, late, unsent, slips. */
static void human_open(FILE *f, const struct mxb_run *r)
{
    const struct mxb_counts *c = &r->s->c;
    fprintf(f,
            "schedule:    open loop, %s arrivals, %s; %llu sent, %llu late (connection "
            "cap), %llu unsent, %llu slipped > 1 ms past the tick (max lag %.1f ms)\n",
            arrival_names[r->o->arrival], r->o->ramp ? r->o->ramp : "constant rate",
            (unsigned long long)c->sent, (unsigned long long)c->late, (unsigned long long)c->unsent,
            (unsigned long long)c->slipped, us(r->s->max_lag_ns) / US_PER_MS);
}

/* human_tls - the TLS line, when a kind uses STARTTLS. */
static void human_tls(FILE *f, const struct mxb_run *r)
{
    const struct mxb_stats *s = r->s;
    const struct mxb_hist *h = &s->hs_ns;
    fprintf(f, "tls:         %llu full handshakes = %.1f/s; handshake us p50 %.0f p99 %.0f; %s%s\n",
            (unsigned long long)s->handshakes, per_s(s->handshakes, r->secs),
            us(mxb_hist_percentile(h, 50)), us(mxb_hist_percentile(h, 99)),
            s->tls_desc[0] ? s->tls_desc : "no handshake completed",
            r->o->cafile ? ", certificate verified" : ", certificate not verified");
}

/* human_errors - the errors and refusals lines. */
static void human_errors(FILE *f, const struct mxb_run *r)
{
    const struct mxb_stats *s = r->s;
    char enh[ENH_TEXT];
    fprintf(f, "errors:      %llu", (unsigned long long)mxb_counts_errors(&s->c));
    for (int e = 0; e < MXB_E_COUNT; e++)
        if (s->c.errors[e])
            fprintf(f, " %s=%llu", mxb_err_names[e], (unsigned long long)s->c.errors[e]);
    fprintf(f, "\n");
    if (s->nrefusals) {
        fprintf(f, "refusals:    4xx=%llu 5xx=%llu:", (unsigned long long)s->c.refused4,
                (unsigned long long)s->c.refused5);
        for (unsigned i = 0; i < s->nrefusals; i++)
            fprintf(f, " %u%s%s x%llu", s->refusals[i].code, s->refusals[i].enh ? " " : "",
                    enh_text(s->refusals[i].enh, enh, sizeof enh),
                    (unsigned long long)s->refusals[i].count);
        fprintf(f, "\n");
    }
    if (s->tls_err)
        fprintf(f, "first TLS error: %s\n", s->tls_err);
}

/* mxb_report_human - see mxbench_report.h. */
void mxb_report_human(FILE *f, const struct mxb_run *r)
{
    const struct mxb_opts *o = r->o;
    const struct mxb_stats *s = r->s;
    const struct mxb_hist *h = &s->lat_ns;
    char conn[64];
    fprintf(f, "mxbench: %s, %u sessions on %u thread%s, %s, %u rcpt, %s, %s%s\n", o->server,
            o->connections, o->threads, o->threads == 1 ? "" : "s",
            o->corpus ? o->corpus : "generated messages", o->rcpts, conn_text(o, conn, sizeof conn),
            o->pipelining ? "pipelining when offered" : "no pipelining",
            r->interrupted ? " (interrupted)" : "");
    fprintf(f, "messages:    %llu accepted, %llu failed in %.3f s = %.1f msgs/s\n",
            (unsigned long long)s->c.messages, (unsigned long long)s->c.failed, r->secs,
            per_s(s->c.messages, r->secs));
    if (o->open)
        human_open(f, r);
    fprintf(f, "connections: %llu; sent %llu bytes (%.1f MB/s)\n",
            (unsigned long long)s->c.connections, (unsigned long long)s->c.bytes,
            per_s(s->c.bytes, r->secs) / 1e6);
    if (o->mix) {
        fprintf(f, "kinds:      ");
        for (int k = 0; k < MXB_K_COUNT; k++)
            if (r->p->kind_w[k])
                fprintf(f, " %s=%llu conns/%llu msgs", mxb_kind_names[k],
                        (unsigned long long)s->kind_conns[k], (unsigned long long)s->kind_msgs[k]);
        fprintf(f, "\n");
    }
    fprintf(f, "latency us:  min %.0f p50 %.0f p90 %.0f p99 %.0f p99.9 %.0f max %.0f mean %.0f%s\n",
            us(h->count ? h->min : 0), us(mxb_hist_percentile(h, 50)),
            us(mxb_hist_percentile(h, 90)), us(mxb_hist_percentile(h, 99)),
            us(mxb_hist_percentile(h, 99.9)), us(h->max),
            h->count ? us((uint64_t)(h->sum / (double)h->count)) : 0,
            o->open ? " (from the scheduled time)" : " (from MAIL)");
    if (r->p->tls)
        human_tls(f, r);
    human_errors(f, r);
}

/* json_refusals - "refusals":[...] and the kinds object. */
static void json_refusals(FILE *f, const struct mxb_run *r)
{
    const struct mxb_stats *s = r->s;
    char enh[ENH_TEXT];
    fprintf(f, ",\"refused_4xx\":%llu,\"refused_5xx\":%llu,\"refusals\":[",
            (unsigned long long)s->c.refused4, (unsigned long long)s->c.refused5);
    for (unsigned i = 0; i < s->nrefusals; i++)
        fprintf(f, "%s{\"code\":%u,\"enhanced\":\"%s\",\"count\":%llu}", i ? "," : "",
                s->refusals[i].code, enh_text(s->refusals[i].enh, enh, sizeof enh),
                (unsigned long long)s->refusals[i].count);
    fprintf(f, "],\"refusals_other\":%llu,\"kinds\":{", (unsigned long long)s->refusals_other);
    for (int k = 0; k < MXB_K_COUNT; k++)
        fprintf(f, "%s\"%s\":{\"connections\":%llu,\"messages\":%llu}", k ? "," : "",
                mxb_kind_names[k], (unsigned long long)s->kind_conns[k],
                (unsigned long long)s->kind_msgs[k]);
    fprintf(f, "}");
}

/* json_open - the schedule's members. */
static void json_open(FILE *f, const struct mxb_run *r)
{
    const struct mxb_counts *c = &r->s->c;
    fprintf(f,
            ",\"mode\":\"%s\",\"arrival\":\"%s\",\"sent\":%llu,\"late\":%llu,\"unsent\":%llu,"
            "\"slipped\":%llu,\"max_lag_us\":%.1f,\"aborted\":%llu,\"interrupted\":%s",
            r->o->open ? "open" : "closed", arrival_names[r->o->arrival],
            (unsigned long long)c->sent, (unsigned long long)c->late, (unsigned long long)c->unsent,
            (unsigned long long)c->slipped, us(r->s->max_lag_ns), (unsigned long long)c->aborted,
            r->interrupted ? "true" : "false");
    if (r->o->open && r->o->rate > 0)
        fprintf(f, ",\"target_rate\":%.1f", r->o->rate);
}

/* mxb_report_json - see mxbench_report.h. */
void mxb_report_json(FILE *f, const struct mxb_run *r)
{
    const struct mxb_stats *s = r->s;
    const struct mxb_hist *h = &s->lat_ns;
    fprintf(f,
            "\"msgs_per_s\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
            "\"p999_us\":%.1f,\"errors\":%llu,\"connections\":%llu,\"messages\":%llu,"
            "\"bytes\":%llu,\"failed\":%llu,\"seconds\":%.3f,\"min_us\":%.1f,\"max_us\":%.1f,"
            "\"mean_us\":%.1f,\"error_kinds\":{",
            per_s(s->c.messages, r->secs), us(mxb_hist_percentile(h, 50)),
            us(mxb_hist_percentile(h, 90)), us(mxb_hist_percentile(h, 99)),
            us(mxb_hist_percentile(h, 99.9)), (unsigned long long)mxb_counts_errors(&s->c),
            (unsigned long long)s->c.connections, (unsigned long long)s->c.messages,
            (unsigned long long)s->c.bytes, (unsigned long long)s->c.failed, r->secs,
            us(h->count ? h->min : 0), us(h->max),
            h->count ? h->sum / (double)h->count / NS_PER_US : 0);
    for (int e = 0; e < MXB_E_COUNT; e++)
        fprintf(f, "%s\"%s\":%llu", e ? "," : "", mxb_err_names[e],
                (unsigned long long)s->c.errors[e]);
    fprintf(f,
            "},\"handshakes\":%llu,\"handshakes_per_s\":%.1f,\"handshake_p50_us\":%.1f,"
            "\"handshake_p99_us\":%.1f,\"tls\":\"%s\"",
            (unsigned long long)s->handshakes, per_s(s->handshakes, r->secs),
            us(mxb_hist_percentile(&s->hs_ns, 50)), us(mxb_hist_percentile(&s->hs_ns, 99)),
            s->tls_desc);
    json_open(f, r);
    json_refusals(f, r);
}
