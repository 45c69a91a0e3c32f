/* metrics_fmt.c - owns the Prometheus text exposition of mxringd's
 * counters: one family table (name, type, help, how to print it) so every
 * family gets its HELP and TYPE lines exactly once, before its samples.
 * Pure over a struct metrics_snap: any thread (the metrics thread). */
#include "metrics_fmt.h"

#include <inttypes.h>
#include <string.h>

#include "auth.h"
#include "milterio.h"
#include "smtp_parse.h"

/* One metric family. */
struct family {
    const char *name;
    const char *type; /* "counter", "gauge" or "histogram" */
    const char *help;
    bool (*samples)(const struct family *f, const struct metrics_snap *m, struct sb *out);
    size_t off; /* plain families: offset of the uint64_t in metrics_snap */
};

bool metrics_label_escape(struct sb *out, const char *v)
{
    for (; *v; v++) {
        const char *esc = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;
        if (!(esc ? sb_appends(out, esc) : sb_append(out, v, 1)))
            return false;
    }
    return true;
}

/* sample - "name{label="value"} n" (label NULL = no labels). */
static bool sample(struct sb *out, const char *name, const char *label, const char *value,
                   uint64_t n)
{
    if (!sb_appends(out, name))
        return false;
    if (label && !(sb_printf(out, "{%s=\"", label) && metrics_label_escape(out, value) &&
                   sb_appends(out, "\"}")))
        return false;
    return sb_printf(out, " %" PRIu64 "\n", n);
}

/* plain - one unlabelled uint64_t at f->off. */
static bool plain(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    uint64_t v;
    memcpy(&v, (const char *)m + f->off, sizeof(v));
    return sample(out, f->name, NULL, NULL, v);
}

/* sample2 - "name{l1="v1",l2="v2"} n". */
static bool sample2(struct sb *out, const char *name, const char *l1, const char *v1,
                    const char *l2, const char *v2, uint64_t n)
{
    return sb_printf(out, "%s{%s=\"", name, l1) && metrics_label_escape(out, v1) &&
           sb_printf(out, "\",%s=\"", l2) && metrics_label_escape(out, v2) &&
           sb_printf(out, "\"} %" PRIu64 "\n", n);
}

/* histogram - the _bucket (cumulative, le in seconds), _sum (seconds) and
 * _count lines of a latency histogram. */
static bool histogram(struct sb *out, const char *name, const struct mhist *h)
{
    uint64_t cum = 0;
    for (unsigned i = 0; i <= MHIST_BOUNDS; i++) {
        cum += h->bucket[i];
        bool ok = i < MHIST_BOUNDS
                      ? sb_printf(out, "%s_bucket{le=\"%.6g\"} %" PRIu64 "\n", name,
                                  (double)mhist_bound_us(i) / 1e6, cum)
                      : sb_printf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
        if (!ok)
            return false;
    }
    return sb_printf(out, "%s_sum %.6f\n%s_count %" PRIu64 "\n", name, (double)h->sum_us / 1e6,
                     name, cum);
}

static bool build_info(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    return sample(out, f->name, "version", m->version, 1);
}

static bool start_time(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    return sb_printf(out, "%s %.3f\n", f->name, m->start_time);
}

static bool workers(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    return sample(out, f->name, NULL, NULL, m->workers);
}

static bool sessions_open(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    return sample(out, f->name, NULL, NULL, m->sessions_open);
}

static bool by_listener(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    static const char *const kinds[] = {"smtp", "smtps", "submission"};
    _Static_assert(MX_ARRAY_LEN(kinds) == MX_ARRAY_LEN(m->st.by_listener), "a name per kind");
    for (size_t i = 0; i < MX_ARRAY_LEN(kinds); i++)
        if (!sample(out, f->name, "listener", kinds[i], m->st.by_listener[i]))
            return false;
    return true;
}

static bool commands(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    for (unsigned v = 0; v < SMTP_VERB_COUNT; v++) {
        const char *name = v == SMTP_VERB_UNKNOWN ? "unknown" : smtp_verb_name(v);
        if (!sample(out, f->name, "verb", name, m->sess.commands[v]))
            return false;
    }
    return true;
}

static bool results(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    for (unsigned r = 0; r < SESS_RES_COUNT; r++)
        if (!sample(out, f->name, "result", sess_result_name(r), m->sess.results[r]))
            return false;
    return true;
}

static bool rcpt_refused(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    for (unsigned r = 0; r < SESS_RCPT_COUNT; r++)
        if (!sample(out, f->name, "reason", sess_rcpt_refusal_name(r), m->sess.rcpt_refused[r]))
            return false;
    return true;
}

static bool closes(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    for (unsigned r = 0; r < SESS_BY_COUNT; r++)
        if (!sample(out, f->name, "reason", sess_close_reason_name(r), m->sess.closes[r]))
            return false;
    return true;
}

static bool tls_handshakes(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    for (unsigned v = 0; v < TLS_VER_COUNT; v++)
        if (!sample(out, f->name, "version", tls_version_label(v), m->st.tls_handshakes[v]))
            return false;
    return true;
}

static bool auth(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    for (unsigned me = 0; me < SESS_AUTH_MECHS; me++)
        for (unsigned o = 0; o < SESS_AUTHO_COUNT; o++) {
            const char *mech = me == AUTH_MECH_UNKNOWN ? "unknown" : auth_mech_name(me);
            if (!sample2(out, f->name, "mechanism", mech, "outcome", sess_auth_outcome_name(o),
                         m->sess.auth[me][o]))
                return false;
        }
    return true;
}

static bool filter_verdicts(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    for (unsigned v = 0; v < FILTER_VERDICTS; v++)
        if (!sample(out, f->name, "verdict", filter_verdict_label(v), m->st.filter.verdicts[v]))
            return false;
    return true;
}

static bool milter_verdicts(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    static const char *const names[] = {
        [MILTERIO_ACCEPT] = "accept",
        [MILTERIO_REJECT] = "reject",
        [MILTERIO_TEMPFAIL] = "tempfail",
        [MILTERIO_DISCARD] = "discard",
    };
    _Static_assert(MX_ARRAY_LEN(names) == MILTER_VERDICTS, "a name per milter verdict");
    for (unsigned v = 0; v < MILTER_VERDICTS; v++)
        if (!sample(out, f->name, "verdict", names[v], m->st.milter_verdicts[v]))
            return false;
    return true;
}

static bool dns_queries(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    return sample(out, f->name, "check", "surbl", m->st.filter.dns.queries) &&
           sample(out, f->name, "check", "dnsbl", m->st.dnsbl_dns.queries);
}

static bool dns_failures(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    return sample(out, f->name, "check", "surbl", m->st.filter.dns.failures) &&
           sample(out, f->name, "check", "dnsbl", m->st.dnsbl_dns.failures);
}

static bool deliveries(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    static const char *const outcomes[DLV_OUT_COUNT] = {"sent", "deferred", "bounced"};
    for (unsigned i = 0; i < m->dlv.nhops; i++)
        for (unsigned o = 0; o < DLV_OUT_COUNT; o++)
            if (!sample2(out, f->name, "hop", m->dlv.hops[i].hop, "outcome", outcomes[o],
                         m->dlv.hops[i].n[o]))
                return false;
    return true;
}

static bool queue_messages(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    const struct dlv_census *c = &m->dlv.census;
    return sample(out, f->name, "state", "new", m->qnew.files) &&
           sample(out, f->name, "state", "active", c->active) &&
           sample(out, f->name, "state", "deferred", c->deferred) &&
           sample(out, f->name, "state", "held", c->held);
}

static bool queue_scan_complete(const struct family *f, const struct metrics_snap *m,
                                struct sb *out)
{
    return sample(out, f->name, NULL, NULL, m->qnew.complete);
}

static bool oldest_age(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    int64_t a = m->qnew.oldest_us, b = m->dlv.census.oldest_us;
    int64_t oldest = a && (!b || a < b) ? a : b;
    double age = oldest && m->now_us > oldest ? (double)(m->now_us - oldest) / 1e6 : 0;
    return sb_printf(out, "%s %.3f\n", f->name, age);
}

static bool journal_segments(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    return sample(out, f->name, NULL, NULL, m->st.journal_segments);
}

static bool txn_latency(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    return histogram(out, f->name, &m->sess.txn_latency);
}

static bool sync_latency(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    return histogram(out, f->name, &m->st.journal_sync_lat);
}

static bool dlv_latency(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    return histogram(out, f->name, &m->dlv.latency);
}

static bool dlv_qdelay(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    return histogram(out, f->name, &m->dlv.qdelay);
}

/* batch_commits - commits per fdatasync from the writers' 8 buckets (0, 1,
 * 2-3, ... 32-63, 64+: le 0, 1, 3, ... 63, +Inf). */
static bool batch_commits(const struct family *f, const struct metrics_snap *m, struct sb *out)
{
    uint64_t cum = 0;
    for (unsigned k = 0; k < 8; k++) {
        cum += m->st.journal_hist[k];
        bool ok = k < 7 ? sb_printf(out, "%s_bucket{le=\"%u\"} %" PRIu64 "\n", f->name,
                                    (1u << k) - 1, cum)
                        : sb_printf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", f->name, cum);
        if (!ok)
            return false;
    }
    return sb_printf(out, "%s_sum %" PRIu64 "\n%s_count %" PRIu64 "\n", f->name,
                     m->st.journal_sync_commits, f->name, cum);
}

#define M(field) offsetof(struct metrics_snap, field)

/* THE family table: order = exposition order. */
static const struct family families[] = {
    {"mxring_build_info", "gauge", "Version of the running mxringd (value 1).", build_info, 0},
    {"mxring_start_time_seconds", "gauge", "Start time of mxringd, Unix seconds.", start_time, 0},
    {"mxring_workers", "gauge", "Worker threads (one io_uring ring each).", workers, 0},
    {"mxring_sessions_open", "gauge", "SMTP sessions open now.", sessions_open, 0},
    {"mxring_connections_total", "counter",
     "SMTP connections accepted, by listener "
     "(refused ones included).",
     by_listener, 0},
    {"mxring_connections_refused_total", "counter",
     "Connections refused with 421 at connect "
     "(max_sessions, per-client limits).",
     plain, M(st.refused)},
    {"mxring_commands_total", "counter", "SMTP command lines, by verb.", commands, 0},
    {"mxring_messages_queued_total", "counter", "Messages accepted and written to the queue.",
     plain, M(st.messages)},
    {"mxring_transactions_total", "counter",
     "Mail transactions by result (the result= word "
     "of the receivelog summary).",
     results, 0},
    {"mxring_recipients_refused_total", "counter", "RCPT commands refused, by reason.",
     rcpt_refused, 0},
    {"mxring_sessions_closed_total", "counter",
     "Sessions ended, by the receivelog close "
     "reason.",
     closes, 0},
    {"mxring_received_bytes_total", "counter",
     "Octets received from SMTP clients (before TLS "
     "decryption).",
     plain, M(st.bytes)},
    {"mxring_queue_write_errors_total", "counter",
     "Queue file writes that failed (the "
     "transaction got 451).",
     plain, M(st.spool_errors)},
    {"mxring_receive_buffer_exhausted_total", "counter",
     "Receives that found no free "
     "io_uring buffer (ENOBUFS) and were re-armed.",
     plain, M(st.enobufs)},
    {"mxring_receivelog_lines_written_total", "counter", "Receivelog lines written to files.",
     plain, M(rlog.lines_written)},
    {"mxring_receivelog_written_bytes_total", "counter", "Receivelog octets written to files.",
     plain, M(rlog.bytes_written)},
    {"mxring_receivelog_lines_lost_total", "counter",
     "Receivelog lines dropped because the "
     "files were unwritable.",
     plain, M(rlog.lines_dropped)},
    {"mxring_receivelog_write_errors_total", "counter", "Receivelog file writes that failed.",
     plain, M(rlog.write_errors)},
    {"mxring_receivelog_producer_waits_total", "counter",
     "Times a worker found its "
     "receivelog ring full and waited for the flusher.",
     plain, M(rlog.stalls)},
    {"mxring_tls_handshakes_total", "counter",
     "Server TLS handshakes completed (STARTTLS and "
     "smtps), by negotiated version.",
     tls_handshakes, 0},
    {"mxring_tls_handshake_failures_total", "counter",
     "Server TLS handshakes that failed "
     "(alert, protocol or version mismatch).",
     plain, M(st.tls_failures)},
    {"mxring_auth_total", "counter", "AUTH attempts by mechanism and outcome.", auth, 0},
    {"mxring_filter_verdicts_total", "counter",
     "Content filter verdicts (SURBL/URIBL and "
     "antivirus combined, one per message).",
     filter_verdicts, 0},
    {"mxring_milter_verdicts_total", "counter",
     "Results of the milter chain, one per message "
     "it ran on (accept includes accept with quarantine).",
     milter_verdicts, 0},
    {"mxring_dns_queries_total", "counter",
     "DNS query datagrams sent (retries on the next "
     "server included), by the check that asked (surbl: the SURBL/URIBL filter, dnsbl: "
     "connect-time DNSBL scoring).",
     dns_queries, 0},
    {"mxring_dns_failures_total", "counter",
     "DNS lookups that got no usable answer "
     "(timeout, SERVFAIL, send failure), by the check that asked.",
     dns_failures, 0},
    {"mxring_deliveries_total", "counter",
     "Onward delivery attempts per recipient, by next "
     "hop and outcome.",
     deliveries, 0},
    {"mxring_queue_messages", "gauge",
     "Messages in the queue by state: new (queue/new/, "
     "counted at scrape time), active, deferred, held (held by the delivery engine).",
     queue_messages, 0},
    {"mxring_queue_new_scan_complete", "gauge",
     "1 when the scrape-time walk of queue/new/ "
     "saw the whole folder, 0 when it was cut short (the new count is then a lower bound).",
     queue_scan_complete, 0},
    {"mxring_queue_oldest_message_age_seconds", "gauge",
     "Age of the oldest queued message "
     "(by its queue id), 0 when the queue is empty.",
     oldest_age, 0},
    {"mxring_journal_segments", "gauge",
     "Queue journal segments in use (open, not yet "
     "retired).",
     journal_segments, 0},
    {"mxring_journal_writes_total", "counter", "Queue journal batches written.", plain,
     M(st.journal_writes)},
    {"mxring_journal_fdatasyncs_total", "counter", "Queue journal fdatasyncs.", plain,
     M(st.journal_syncs)},
    {"mxring_journal_batch_commits", "histogram",
     "Messages committed per journal fdatasync "
     "(group commit batch size).",
     batch_commits, 0},
    {"mxring_journal_fdatasync_duration_seconds", "histogram",
     "Journal write+fdatasync "
     "chain, submit to completion.",
     sync_latency, 0},
    {"mxring_transaction_duration_seconds", "histogram",
     "Mail transactions from MAIL to the "
     "final reply to the message.",
     txn_latency, 0},
    {"mxring_delivery_duration_seconds", "histogram",
     "Recipients from queueing (queue id "
     "time) to sent or bounced.",
     dlv_latency, 0},
    {"mxring_delivery_queue_delay_seconds", "histogram",
     "Recipients from queueing (queue id "
     "time) to the next hop's 2xx.",
     dlv_qdelay, 0},
    {"mxring_metrics_scrapes_total", "counter", "GET /metrics answered with 200.", plain,
     M(scrapes)},
    {"mxring_metrics_forbidden_total", "counter",
     "Metrics connections from outside "
     "metrics_allow (answered 403).",
     plain, M(http_refused)},
    {"mxring_metrics_bad_requests_total", "counter",
     "Metrics requests answered with an "
     "error (malformed, too large, wrong method or path, timeout).",
     plain, M(http_errors)},
};

#undef M

bool metrics_format(const struct metrics_snap *m, struct sb *out)
{
    for (size_t i = 0; i < MX_ARRAY_LEN(families); i++) {
        const struct family *f = &families[i];
        if (!sb_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type) ||
            !f->samples(f, m, out))
            return false;
    }
    return true;
}
