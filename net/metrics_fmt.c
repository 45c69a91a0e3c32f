/* metrics_fmt.c - owns the Prometheus text exposition of mxringd's
 * counters: one family table (name, type, help, how to print it) so every
 * family gets its HELP and TYPE lines exactly once, before its samples.
 * Pure over a struct metrics_snap: any thread (the metrics thread). */
#include "metrics_fmt.h"

#include <inttypes.h>
#include <string.h>

#include "smtp_parse.h"

/* One metric family. */
struct family {
    const char *name;
    const char *type;   /* "counter" or "gauge" */
    const char *help;
    bool (*samples)(const struct family *f, const struct metrics_snap *m, struct sb *out);
    size_t off;         /* plain families: offset of the uint64_t in metrics_snap */
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

#define M(field) offsetof(struct metrics_snap, field)

/* THE family table: order = exposition order. */
static const struct family families[] = {
    {"mxring_build_info", "gauge", "Version of the running mxringd (value 1).", build_info, 0},
    {"mxring_start_time_seconds", "gauge", "Start time of mxringd, Unix seconds.", start_time, 0},
    {"mxring_workers", "gauge", "Worker threads (one io_uring ring each).", workers, 0},
    {"mxring_sessions_open", "gauge", "SMTP sessions open now.", sessions_open, 0},
    {"mxring_connections_total", "counter", "SMTP connections accepted, by listener "
     "(refused ones included).", by_listener, 0},
    {"mxring_connections_refused_total", "counter", "Connections refused with 421 at connect "
     "(max_sessions, per-client limits).", plain, M(st.refused)},
    {"mxring_commands_total", "counter", "SMTP command lines, by verb.", commands, 0},
    {"mxring_messages_queued_total", "counter", "Messages accepted and written to the queue.",
     plain, M(st.messages)},
    {"mxring_transactions_total", "counter", "Mail transactions by result (the result= word "
     "of the receivelog summary).", results, 0},
    {"mxring_recipients_refused_total", "counter", "RCPT commands refused, by reason.",
     rcpt_refused, 0},
    {"mxring_sessions_closed_total", "counter", "Sessions ended, by the receivelog close "
     "reason.", closes, 0},
    {"mxring_received_bytes_total", "counter", "Octets received from SMTP clients (before TLS "
     "decryption).", plain, M(st.bytes)},
    {"mxring_queue_write_errors_total", "counter", "Queue file writes that failed (the "
     "transaction got 451).", plain, M(st.spool_errors)},
    {"mxring_receive_buffer_exhausted_total", "counter", "Receives that found no free "
     "io_uring buffer (ENOBUFS) and were re-armed.", plain, M(st.enobufs)},
    {"mxring_receivelog_lines_written_total", "counter", "Receivelog lines written to files.",
     plain, M(rlog.lines_written)},
    {"mxring_receivelog_written_bytes_total", "counter", "Receivelog octets written to files.",
     plain, M(rlog.bytes_written)},
    {"mxring_receivelog_lines_lost_total", "counter", "Receivelog lines dropped because the "
     "files were unwritable.", plain, M(rlog.lines_dropped)},
    {"mxring_receivelog_write_errors_total", "counter", "Receivelog file writes that failed.",
     plain, M(rlog.write_errors)},
    {"mxring_receivelog_producer_waits_total", "counter", "Times a worker found its "
     "receivelog ring full and waited for the flusher.", plain, M(rlog.stalls)},
    {"mxring_metrics_scrapes_total", "counter", "GET /metrics answered with 200.", plain,
     M(scrapes)},
    {"mxring_metrics_forbidden_total", "counter", "Metrics connections from outside "
     "metrics_allow (answered 403).", plain, M(http_refused)},
    {"mxring_metrics_bad_requests_total", "counter", "Metrics requests answered with an "
     "error (malformed, too large, wrong method or path, timeout).", plain, M(http_errors)},
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
