/* qstate.c - the delivery side of the queue's formats, pure over bytes: a
 * queue file's envelope block (parse, and format for generated messages)
 * and the per-message state file (parse, format, small queries). Any
 * thread; no I/O. Formats: qstate.h and README "Queue file format". */
#include "qstate.h"

#include "smtp_parse.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QF_LINE_MAX 4096                  /* longest envelope / state line */
#define QFILE_ENV_MAX (16u * 1024 * 1024) /* an envelope block longer is not ours */

static const char *const rcpt_state_names[] = {"pending", "sent", "bounced"};

/* ---- small helpers ---------------------------------------------------- */

/* line_err - "line N: what" into err; always returns false. */
static bool __attribute__((format(printf, 4, 5)))
line_err(char *err, size_t errlen, unsigned line, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(err, errlen, "line %u: ", line);
    if (n < 0 || (size_t)n >= errlen)
        return false;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

/* parse_u64 - strict decimal (len octets, no sign, no overflow). */
static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 20)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || __builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v))
            return false;
    }
    *out = v;
    return true;
}

/* dup_n - a NUL-terminated copy of len octets; NULL on ENOMEM. */
static char *dup_n(const char *s, size_t len)
{
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = 0;
    }
    return d;
}

/* push_str - append a copy of s to the array *v (*n items). */
static bool push_str(char ***v, size_t *n, const char *s, size_t len)
{
    char **g = realloc(*v, (*n + 1) * sizeof *g);
    if (!g)
        return false;
    *v = g;
    if (!(g[*n] = dup_n(s, len)))
        return false;
    ++*n;
    return true;
}

bool qfile_id_valid(const char *s, size_t len)
{
    if (len != QFILE_ID_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

/* ---- the envelope block ------------------------------------------------- */

/* Known envelope keys. */
enum ekey {
    E_ID,
    E_ARRIVAL,
    E_CLIENT,
    E_HELO,
    E_PROTOCOL,
    E_BODY,
    E_SMTPUTF8,
    E_SENDER,
    E_RCPT,
    E_SIZE,
    E_QUARANTINE,
    E_RET,
    E_ENVID,
    E_NOTIFY,
    E_ORCPT,
    E_COUNT
};

static const char *const ekey_names[E_COUNT] = {
    "id",   "arrival", "client",     "helo", "protocol", "body",   "smtputf8", "sender",
    "rcpt", "size",    "quarantine", "ret",  "envid",    "notify", "orcpt",
};

/* env_string - store a string value into the field the key names. */
static char **env_string_field(struct qfile_env *e, enum ekey k)
{
    switch (k) {
    case E_CLIENT: return &e->client;
    case E_HELO: return &e->helo;
    case E_PROTOCOL: return &e->protocol;
    case E_SENDER: return &e->sender;
    case E_QUARANTINE: return &e->quarantine;
    case E_ENVID: return &e->envid;
    default: return NULL;
    }
}

/* push_rcpt - one more recipient (no NOTIFY, no ORCPT yet). */
static bool push_rcpt(struct qfile_env *e, const char *v, size_t vl)
{
    unsigned *n = realloc(e->notify, (e->nrcpt + 1) * sizeof *n);
    if (n)
        e->notify = n;
    char **o = n ? realloc(e->orcpts, (e->nrcpt + 1) * sizeof *o) : NULL;
    if (o)
        e->orcpts = o;
    if (!o)
        return false;
    n[e->nrcpt] = 0;
    o[e->nrcpt] = NULL;
    return push_str(&e->rcpts, &e->nrcpt, v, vl);
}

/* env_rcpt_dsn - "notify" / "orcpt": of the rcpt line before it. */
static bool env_rcpt_dsn(struct qfile_env *e, enum ekey k, const char *v, size_t vl, unsigned line,
                         char *err, size_t errlen)
{
    const char *name = ekey_names[k];
    if (!e->nrcpt)
        return line_err(err, errlen, line, "%s: not after a rcpt line", name);
    size_t i = e->nrcpt - 1;
    if (k == E_NOTIFY) {
        if (e->notify[i] || !smtp_notify_parse(v, vl, &e->notify[i]))
            return line_err(err, errlen, line, "notify: repeated or not a NOTIFY list");
        return true;
    }
    if (e->orcpts[i] || !smtp_orcpt_valid(v, vl))
        return line_err(err, errlen, line, "orcpt: repeated or not type;xtext");
    return (e->orcpts[i] = dup_n(v, vl)) != NULL || line_err(err, errlen, line, "out of memory");
}

/* env_value - one "key value" line with a known key. */
static bool env_value(struct qfile_env *e, enum ekey k, const char *v, size_t vl, unsigned line,
                      char *err, size_t errlen)
{
    uint64_t u;
    char **str = env_string_field(e, k);
    if (k == E_ENVID && !smtp_envid_valid(v, vl))
        return line_err(err, errlen, line, "envid: not xtext of at most %u octets",
                        (unsigned)SMTP_ENVID_MAX);
    if (str)
        return (*str = dup_n(v, vl)) != NULL || line_err(err, errlen, line, "out of memory");
    switch (k) {
    case E_ID:
        if (!qfile_id_valid(v, vl))
            return line_err(err, errlen, line, "id: not 20 upper-case hex digits");
        memcpy(e->id, v, vl);
        e->id[vl] = 0;
        return true;
    case E_ARRIVAL:
        if (!parse_u64(v, vl, &u) || u > INT64_MAX)
            return line_err(err, errlen, line, "arrival: not a Unix time");
        e->arrival = (int64_t)u;
        return true;
    case E_SIZE:
        if (!parse_u64(v, vl, &e->size))
            return line_err(err, errlen, line, "size: not a number");
        return true;
    case E_BODY:
        if (vl == 4 && memcmp(v, "7BIT", 4) == 0)
            return e->body8 = false, true;
        if (vl == 8 && memcmp(v, "8BITMIME", 8) == 0)
            return e->body8 = true, true;
        return line_err(err, errlen, line, "body: not 7BIT or 8BITMIME");
    case E_SMTPUTF8:
        if ((vl == 2 && memcmp(v, "no", 2) == 0) || (vl == 3 && memcmp(v, "yes", 3) == 0))
            return e->smtputf8 = vl == 3, true;
        return line_err(err, errlen, line, "smtputf8: not yes or no");
    case E_RCPT:
        if (vl == 0)
            return line_err(err, errlen, line, "rcpt: empty");
        return push_rcpt(e, v, vl) || line_err(err, errlen, line, "out of memory");
    case E_RET:
        if (vl == 4 && (memcmp(v, "FULL", 4) == 0 || memcmp(v, "HDRS", 4) == 0))
            return e->ret = v[0] == 'F' ? SMTP_RET_FULL : SMTP_RET_HDRS, true;
        return line_err(err, errlen, line, "ret: not FULL or HDRS");
    case E_NOTIFY:
    case E_ORCPT: return env_rcpt_dsn(e, k, v, vl, line, err, errlen);
    default: return true;
    }
}

/* env_line - one envelope line (no LF), line number line. */
static bool env_line(struct qfile_env *e, unsigned *seen, const char *s, size_t len, unsigned line,
                     char *err, size_t errlen)
{
    const char *sp = memchr(s, ' ', len);
    size_t kl = sp ? (size_t)(sp - s) : len;
    const char *v = sp ? sp + 1 : s + len;
    size_t vl = sp ? len - kl - 1 : 0;
    if (memchr(s, 0, len) || memchr(s, '\r', len))
        return line_err(err, errlen, line, "NUL or CR byte");
    for (unsigned k = 0; k < E_COUNT; k++) {
        if (strlen(ekey_names[k]) != kl || memcmp(s, ekey_names[k], kl) != 0)
            continue;
        if (k != E_RCPT && k != E_NOTIFY && k != E_ORCPT && seen[k])
            return line_err(err, errlen, line, "%s: given twice (first on line %u)", ekey_names[k],
                            seen[k]);
        seen[k] = line;
        return env_value(e, (enum ekey)k, v, vl, line, err, errlen);
    }
    return true; /* a key a newer writer added: skipped */
}

/* env_required - the keys every queue file has. */
static bool env_required(const unsigned *seen, unsigned last, char *err, size_t errlen)
{
    static const enum ekey req[] = {E_ID, E_ARRIVAL, E_SENDER, E_RCPT, E_SIZE};
    for (size_t i = 0; i < MX_ARRAY_LEN(req); i++)
        if (!seen[req[i]])
            return line_err(err, errlen, last, "no %s line in the envelope", ekey_names[req[i]]);
    return true;
}

enum qfile_status qfile_parse_envelope(const char *buf, size_t len, struct qfile_env *env,
                                       char *err, size_t errlen)
{
    static const char magic[] = QFILE_MAGIC "\n", magic2[] = QFILE_MAGIC_DSN "\n";
    size_t mlen = sizeof magic - 2, cmp = len < mlen + 1 ? len : mlen + 1;
    _Static_assert(sizeof magic == sizeof magic2, "both magics have one length");
    snprintf(err, errlen, "%s", "");
    if (memcmp(buf, magic, cmp) != 0 && memcmp(buf, magic2, cmp) != 0) {
        line_err(err, errlen, 1, "not a queue file (no \"%s\" line)", QFILE_MAGIC);
        return QFILE_BAD;
    }
    const char *end = len > mlen ? memmem(buf + mlen, len - mlen, "\n\n", 2) : NULL;
    if (!end && len > QFILE_ENV_MAX) {
        line_err(err, errlen, 1, "no end of the envelope in the first %u octets", QFILE_ENV_MAX);
        return QFILE_BAD;
    }
    if (!end)
        return QFILE_MORE;
    struct qfile_env e = {0};
    unsigned seen[E_COUNT] = {0}, line = 1;
    size_t blen = (size_t)(end - buf) + 1, pos; /* through the last line's LF */
    bool ok = true;
    for (pos = mlen + 1; ok && pos < blen; pos++) {
        const char *nl = memchr(buf + pos, '\n', blen - pos);
        size_t ll = (size_t)(nl - (buf + pos));
        ++line;
        ok = ll <= QF_LINE_MAX ? env_line(&e, seen, buf + pos, ll, line, err, errlen)
                               : line_err(err, errlen, line, "line too long");
        pos += ll;
    }
    ok = ok && env_required(seen, line, err, errlen);
    if (!ok) {
        qfile_env_free(&e);
        return QFILE_BAD;
    }
    for (size_t i = 0; i < E_COUNT; i++)
        if (env_string_field(&e, (enum ekey)i) && !*env_string_field(&e, (enum ekey)i) &&
            i != E_QUARANTINE && i != E_ENVID &&
            !(*env_string_field(&e, (enum ekey)i) = dup_n("", 0))) {
            qfile_env_free(&e);
            line_err(err, errlen, line, "out of memory");
            return QFILE_BAD;
        }
    e.msg_off = blen + 1;
    *env = e;
    return QFILE_OK;
}

bool qfile_complete(const struct qfile_env *env, uint64_t file_len)
{
    return file_len >= env->msg_off && file_len - env->msg_off == env->size;
}

void qfile_env_free(struct qfile_env *env)
{
    free(env->client);
    free(env->helo);
    free(env->protocol);
    free(env->sender);
    free(env->quarantine);
    free(env->envid);
    for (size_t i = 0; i < env->nrcpt; i++) {
        free(env->rcpts[i]);
        if (env->orcpts)
            free(env->orcpts[i]);
    }
    free(env->rcpts);
    free(env->notify);
    free(env->orcpts);
    memset(env, 0, sizeof *env);
}

/* clean - a value that cannot break the line structure. */
static bool clean(const char *s)
{
    return !s || !strpbrk(s, "\r\n");
}

bool qfile_format_envelope(const struct qfile_env *env, struct sb *out)
{
    bool ok = clean(env->client) && clean(env->helo) && clean(env->protocol) &&
              clean(env->sender) && clean(env->quarantine) && env->nrcpt > 0;
    for (size_t i = 0; ok && i < env->nrcpt; i++)
        ok = clean(env->rcpts[i]) && env->rcpts[i][0];
    if (!ok)
        return false;
    size_t mark = out->len;
    ok = sb_printf(
        out,
        "%s\nid %s\narrival %" PRId64 "\nclient %s\nhelo %s\nprotocol %s\n"
        "body %s\nsmtputf8 %s\nsender %s\n",
        QFILE_MAGIC, env->id, env->arrival,
        env->client && *env->client ? env->client : "127.0.0.1 0", env->helo ? env->helo : "",
        env->protocol && *env->protocol ? env->protocol : "LOCAL", env->body8 ? "8BITMIME" : "7BIT",
        env->smtputf8 ? "yes" : "no", env->sender ? env->sender : "");
    for (size_t i = 0; ok && i < env->nrcpt; i++)
        ok = sb_printf(out, "rcpt %s\n", env->rcpts[i]);
    if (ok && env->quarantine)
        ok = sb_printf(out, "quarantine %s\n", env->quarantine);
    ok = ok && sb_printf(out, "size %" PRIu64 "\n\n", env->size);
    if (!ok)
        out->len = mark;
    return ok;
}

/* ---- the state file --------------------------------------------------- */

/* esc_append - s (len octets) escaped: bytes < 0x20 (and the space unless
 * keep_space), 0x7f and '\' as \xHH. */
static bool esc_append(struct sb *out, const char *s, size_t len, bool keep_space)
{
    static const char hex[] = "0123456789abcdef";
    bool ok = true;
    for (size_t i = 0; ok && i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch > 0x20 ? (ch != 0x7f && ch != '\\') : (ch == ' ' && keep_space)) {
            ok = sb_append(out, s + i, 1);
        } else {
            char e[4] = {'\\', 'x', hex[ch >> 4], hex[ch & 15]};
            ok = sb_append(out, e, 4);
        }
    }
    return ok;
}

/* hexval - one hex digit, or -1. */
static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* unesc - undo esc_append over len octets into a new string; NULL when an
 * escape is malformed or memory runs out. */
static char *unesc(const char *s, size_t len)
{
    char *d = malloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; d && i < len; i++) {
        if (s[i] != '\\') {
            d[o++] = s[i];
            continue;
        }
        if (i + 3 >= len || s[i + 1] != 'x' || hexval(s[i + 2]) < 0 || hexval(s[i + 3]) < 0) {
            free(d);
            return NULL;
        }
        d[o++] = (char)(hexval(s[i + 2]) * 16 + hexval(s[i + 3]));
        i += 3;
    }
    if (d)
        d[o] = 0;
    return d;
}

/* st_field - the next blank-separated field of a rcpt line. */
static bool st_field(const char **p, const char *end, const char **f, size_t *fl)
{
    const char *sp = memchr(*p, ' ', (size_t)(end - *p));
    *f = *p;
    *fl = (size_t)((sp ? sp : end) - *p);
    *p = sp ? sp + 1 : end;
    return *fl > 0;
}

/* st_rcpt - "rcpt <addr> <state> <attempts> <next> <last>" (after "rcpt "). */
static bool st_rcpt(struct qstate *st, const char *p, const char *end, unsigned line, char *err,
                    size_t errlen)
{
    const char *f[4];
    size_t fl[4];
    uint64_t attempts, next;
    for (int i = 0; i < 4; i++)
        if (!st_field(&p, end, &f[i], &fl[i]))
            return line_err(err, errlen, line, "rcpt: needs addr, state, attempts, next attempt");
    struct qstate_rcpt r = {0};
    unsigned s;
    for (s = 0; s < MX_ARRAY_LEN(rcpt_state_names); s++)
        if (strlen(rcpt_state_names[s]) == fl[1] && memcmp(f[1], rcpt_state_names[s], fl[1]) == 0)
            break;
    if (s == MX_ARRAY_LEN(rcpt_state_names))
        return line_err(err, errlen, line, "rcpt: state is not pending, sent or bounced");
    if (!parse_u64(f[2], fl[2], &attempts) || attempts > UINT32_MAX)
        return line_err(err, errlen, line, "rcpt: bad attempt count");
    if (!parse_u64(f[3], fl[3], &next) || next > INT64_MAX)
        return line_err(err, errlen, line, "rcpt: bad next attempt time");
    r.state = (enum qstate_rcpt_state)s;
    r.attempts = (unsigned)attempts;
    r.next = (int64_t)next;
    r.addr = unesc(f[0], fl[0]);
    r.last = unesc(p, (size_t)(end - p));
    struct qstate_rcpt *g =
        r.addr && r.last ? realloc(st->rcpts, (st->nrcpt + 1) * sizeof *g) : NULL;
    if (!g) {
        free(r.addr);
        free(r.last);
        return line_err(err, errlen, line, "rcpt: bad escape in the address or reply");
    }
    st->rcpts = g;
    st->rcpts[st->nrcpt++] = r;
    return true;
}

/* st_yes_no - "yes" / "no" into *b. */
static bool st_yes_no(const char *v, size_t vl, bool *b)
{
    if (vl == 3 && memcmp(v, "yes", 3) == 0)
        return *b = true, true;
    if (vl == 2 && memcmp(v, "no", 2) == 0)
        return *b = false, true;
    return false;
}

/* st_line - one state-file line after the magic. */
static bool st_line(struct qstate *st, unsigned *seen, const char *s, size_t len, unsigned line,
                    char *err, size_t errlen)
{
    static const char *const keys[] = {"arrival", "held", "bounce_sent", "delay_warned", "rcpt"};
    const char *sp = memchr(s, ' ', len);
    size_t kl = sp ? (size_t)(sp - s) : len, vl = sp ? len - kl - 1 : 0;
    const char *v = sp ? sp + 1 : s + len;
    uint64_t u;
    if (memchr(s, 0, len) || memchr(s, '\r', len))
        return line_err(err, errlen, line, "NUL or CR byte");
    for (unsigned k = 0; k < MX_ARRAY_LEN(keys); k++) {
        if (strlen(keys[k]) != kl || memcmp(s, keys[k], kl) != 0)
            continue;
        if (k < 4 && seen[k]++)
            return line_err(err, errlen, line, "%s: given twice", keys[k]);
        if (k == 0 && (!parse_u64(v, vl, &u) || u > INT64_MAX))
            return line_err(err, errlen, line, "arrival: not a Unix time");
        if (k == 0)
            st->arrival = (int64_t)u;
        if ((k == 1 && !st_yes_no(v, vl, &st->held)) ||
            (k == 2 && !st_yes_no(v, vl, &st->bounce_sent)) ||
            (k == 3 && !st_yes_no(v, vl, &st->delay_warned)))
            return line_err(err, errlen, line, "%s: not yes or no", keys[k]);
        return k == 4 ? st_rcpt(st, v, v + vl, line, err, errlen) : true;
    }
    return line_err(err, errlen, line, "unknown key \"%.*s\"", (int)(kl > 32 ? 32 : kl), s);
}

bool qstate_parse(const char *buf, size_t len, struct qstate *st, char *err, size_t errlen)
{
    size_t mlen = strlen(QSTATE_MAGIC), pos = 0;
    unsigned seen[4] = {0};
    memset(st, 0, sizeof *st);
    snprintf(err, errlen, "%s", "");
    if (len < mlen + 1 || memcmp(buf, QSTATE_MAGIC, mlen) != 0 || buf[mlen] != '\n')
        return line_err(err, errlen, 1, "not a state file (no \"%s\" line)", QSTATE_MAGIC);
    if (buf[len - 1] != '\n')
        return line_err(err, errlen, 1, "truncated (no final line end)");
    pos = mlen + 1;
    bool ok = true;
    for (unsigned line = 2; ok && pos < len; line++) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t ll = (size_t)(nl - (buf + pos));
        ok = ll <= QF_LINE_MAX + QSTATE_LAST_MAX * 4
                 ? st_line(st, seen, buf + pos, ll, line, err, errlen)
                 : line_err(err, errlen, line, "line too long");
        pos += ll + 1;
    }
    if (ok && !seen[0])
        ok = line_err(err, errlen, 1, "no arrival line");
    if (!ok)
        qstate_free(st);
    return ok;
}

bool qstate_format(const struct qstate *st, struct sb *out)
{
    size_t mark = out->len;
    bool ok = sb_printf(out, "%s\narrival %" PRId64 "\nheld %s\nbounce_sent %s\n", QSTATE_MAGIC,
                        st->arrival, st->held ? "yes" : "no", st->bounce_sent ? "yes" : "no");
    if (ok && st->delay_warned)
        ok = sb_appends(out, "delay_warned yes\n");
    for (size_t i = 0; ok && i < st->nrcpt; i++) {
        const struct qstate_rcpt *r = &st->rcpts[i];
        const char *last = r->last ? r->last : "";
        ok = sb_appends(out, "rcpt ") && esc_append(out, r->addr, strlen(r->addr), false) &&
             sb_printf(out, " %s %u %" PRId64 " ", qstate_state_name(r->state), r->attempts,
                       r->next < 0 ? 0 : r->next) &&
             esc_append(out, last, strlen(last), true) && sb_appends(out, "\n");
    }
    if (!ok)
        out->len = mark;
    return ok;
}

bool qstate_from_env(const struct qfile_env *env, struct qstate *st)
{
    memset(st, 0, sizeof *st);
    st->arrival = env->arrival;
    st->rcpts = calloc(env->nrcpt ? env->nrcpt : 1, sizeof *st->rcpts);
    if (!st->rcpts)
        return false;
    for (size_t i = 0; i < env->nrcpt; i++, st->nrcpt++) {
        st->rcpts[i].addr = strdup(env->rcpts[i]);
        st->rcpts[i].last = strdup("");
        if (!st->rcpts[i].addr || !st->rcpts[i].last) {
            st->nrcpt++;
            qstate_free(st);
            return false;
        }
    }
    return true;
}

bool qstate_matches_env(const struct qstate *st, const struct qfile_env *env)
{
    if (st->nrcpt != env->nrcpt)
        return false;
    for (size_t i = 0; i < st->nrcpt; i++)
        if (strcmp(st->rcpts[i].addr, env->rcpts[i]) != 0)
            return false;
    return true;
}

bool qstate_set_last(struct qstate_rcpt *r, const char *text, size_t len)
{
    char *d = dup_n(text, len < QSTATE_LAST_MAX ? len : QSTATE_LAST_MAX);
    if (!d)
        return false;
    free(r->last);
    r->last = d;
    return true;
}

bool qstate_done(const struct qstate *st)
{
    for (size_t i = 0; i < st->nrcpt; i++)
        if (st->rcpts[i].state == QST_PENDING)
            return false;
    return true;
}

int64_t qstate_next_attempt(const struct qstate *st)
{
    int64_t best = INT64_MAX;
    for (size_t i = 0; i < st->nrcpt; i++)
        if (st->rcpts[i].state == QST_PENDING && st->rcpts[i].next < best)
            best = st->rcpts[i].next;
    return best;
}

void qstate_free(struct qstate *st)
{
    for (size_t i = 0; i < st->nrcpt; i++) {
        free(st->rcpts[i].addr);
        free(st->rcpts[i].last);
    }
    free(st->rcpts);
    memset(st, 0, sizeof *st);
}

const char *qstate_state_name(enum qstate_rcpt_state s)
{
    return (unsigned)s < MX_ARRAY_LEN(rcpt_state_names) ? rcpt_state_names[s] : "?";
}
