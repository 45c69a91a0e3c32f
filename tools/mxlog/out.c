/* out.c - text and JSON lines of mxlog's verdicts (why, follow). One line
 * per transaction: time, session, client, HELO, TLS, AUTH, sender,
 * recipients with their status, size, verdict in words. Main thread. */
#include "out.h"

#include <inttypes.h>
#include <string.h>

static const char *const rcpt_names[] = {"accepted", "user_unknown", "relay_denied",
                                         "too_many_recipients", "refused"};

/* mxl_fmt_time - see out.h. */
void mxl_fmt_time(int64_t t, char sep, char buf[32])
{
    int y, mo, d, h, mi, s;
    mxl_civil_from(t, &y, &mo, &d, &h, &mi, &s);
    if (snprintf(buf, 32, "%04d-%02d-%02d%c%02d:%02d:%02d", y, mo, d, sep, h, mi, s) < 0)
        buf[0] = 0;
}

/* mxl_json_str - see out.h. */
void mxl_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* json_kv - ,"key":"value" (null when value is empty). */
static void json_kv(FILE *f, const char *key, const char *v)
{
    fprintf(f, ",\"%s\":", key);
    if (v && v[0])
        mxl_json_str(f, v);
    else
        fputs("null", f);
}

/* json_head - the session fields every object carries. */
static void json_head(FILE *f, const char *type, const struct mxl_sess *s, int64_t t)
{
    char ts[32], sid[9];
    mxl_fmt_time(t, 'T', ts);
    snprintf(sid, sizeof(sid), "%08X", s->sid);
    fprintf(f, "{\"type\":\"%s\",\"time\":\"%s\"", type, ts);
    json_kv(f, "host", s->host);
    json_kv(f, "session", sid);
    json_kv(f, "client", s->ip);
    fprintf(f, ",\"port\":%u", s->port);
    json_kv(f, "helo", s->helo);
    json_kv(f, "tls", s->tls);
    json_kv(f, "auth", s->auth);
    fprintf(f, ",\"auth_failures\":%u", s->auth_failures);
    json_kv(f, "auth_failed_user", s->auth_fail_user);
}

/* json_txn - one transaction object. */
static void json_txn(const struct mxl_out *o, const struct mxl_sess *s, const struct mxl_txn *x,
                     enum mxl_verdict v, const char *words)
{
    FILE *f = o->f;
    json_head(f, "transaction", s, x->t_start);
    fputs(",\"from\":", f);
    mxl_json_str(f, x->from);
    fputs(",\"rcpts\":[", f);
    size_t pos = 0;
    enum mxl_rcpt_st st;
    const char *a;
    for (int n = 0; mxl_rcpt_next(x, &pos, &st, &a); n++) {
        fprintf(f, "%s{\"addr\":", n ? "," : "");
        mxl_json_str(f, a);
        fprintf(f, ",\"status\":\"%s\"}", rcpt_names[st <= MXL_RCPT_OTHER ? st : MXL_RCPT_OTHER]);
    }
    fprintf(f, "],\"rcpts_accepted\":%u,\"rcpts_refused\":%u,\"size\":%" PRIu64, x->nrcpt_ok,
            x->nrcpt_refused, x->size);
    json_kv(f, "result", x->result);
    fprintf(f, ",\"verdict\":\"%s\"", mxl_verdict_name(v));
    json_kv(f, "words", words);
    json_kv(f, "queue_id", x->qid);
    json_kv(f, "reason", x->reason);
    json_kv(f, "spam_domain", x->spam_domain);
    json_kv(f, "spam_zone", x->spam_zone);
    json_kv(f, "virus", x->virus);
    fprintf(f, ",\"summary\":%s}\n", x->have_summary ? "true" : "false");
}

/* text_head - "time session ip:port helo=.. tls=.. auth=.." */
static void text_head(FILE *f, const struct mxl_sess *s, int64_t t)
{
    char ts[32];
    mxl_fmt_time(t, ' ', ts);
    fprintf(f, "%s %08X %s:%u helo=%s tls=%s auth=%s", ts, s->sid, s->ip[0] ? s->ip : "?", s->port,
            s->helo[0] ? s->helo : "-", s->tls[0] ? s->tls : "-", s->auth[0] ? s->auth : "-");
}

/* mxl_out_txn - see out.h. */
void mxl_out_txn(const struct mxl_out *o, const struct mxl_sess *s, const struct mxl_txn *x)
{
    char words[1024];
    enum mxl_verdict v = mxl_txn_verdict(s, x, o->focus, words, sizeof(words));
    if (o->json) {
        json_txn(o, s, x, v, words);
        return;
    }
    FILE *f = o->f;
    text_head(f, s, x->t_start);
    fprintf(f, " from=<%s> to=", x->from);
    size_t pos = 0;
    enum mxl_rcpt_st st;
    const char *a;
    int n = 0;
    for (; mxl_rcpt_next(x, &pos, &st, &a); n++)
        fprintf(f, "%s<%s>%s%s", n ? "," : "", a, st == MXL_RCPT_OK ? "" : "!",
                st == MXL_RCPT_OK ? "" : rcpt_names[st <= MXL_RCPT_OTHER ? st : MXL_RCPT_OTHER]);
    if (!n)
        fputs("-", f);
    fprintf(f, " size=%" PRIu64 ": %s\n", x->size, words);
}

/* mxl_out_sess - see out.h. */
void mxl_out_sess(const struct mxl_out *o, const struct mxl_sess *s, bool line)
{
    FILE *f = o->f;
    if (line) {
        char words[1024];
        enum mxl_verdict v = mxl_sess_verdict(s, words, sizeof(words));
        if (o->json) {
            json_head(f, "session", s, s->t_start);
            fprintf(f, ",\"transactions\":%u,\"verdict\":\"%s\"", s->ntxn, mxl_verdict_name(v));
            json_kv(f, "words", words);
            json_kv(f, "close", s->close_reason);
            fprintf(f, ",\"end\":\"%s\"}\n",
                    s->end == MXL_END_CLOSED    ? "closed"
                    : s->end == MXL_END_RESTART ? "restart"
                                                : "eof");
        } else {
            text_head(f, s, s->t_start);
            fprintf(f, " session: %s\n", words);
        }
    }
    if (o->verbose && s->raw.len && !o->json) {
        fwrite(s->raw.p, 1, s->raw.len, f);
        fputc('\n', f);
    }
}
