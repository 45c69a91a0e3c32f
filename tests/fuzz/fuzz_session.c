/* fuzz_session.c - session-level libFuzzer target: arbitrary client bytes,
 * split at arbitrary points, through a whole session with a fake I/O layer.
 * Invariants: every reply line is well-formed ("DDD" + ' ' or '-' + text +
 * CRLF, no bare CR/LF inside), there is never more than one message per
 * 354 reply or BDAT command, a spool request always carries a transaction, nothing is
 * processed after the session asked to close, and no AUTH secret ever
 * reaches a log line.
 *
 * Secrets: the byte 0xFF followed by two selector bytes is replaced by an
 * AUTH exchange carrying a known password ("Sup3rSecretPw", as PLAIN and
 * LOGIN base64 and raw) in one of many shapes (refused or accepted AUTH,
 * LOGIN and PLAIN, initial response or not, odd separators and case, CRLF
 * or bare LF), always starting at a line start. Every line the session
 * logs (seen through sess_env.log_tap) is searched for the secret; when
 * the fuzzer's own bytes already hold it, that run is not checked, nor
 * are the exchanges after a BDAT (see bdat_unchecked).
 *
 * Milters: with bit 1 of the input's size, the session has a milter
 * configured; every HELO/EHLO, MAIL and RCPT then waits in SESS_MILTER and
 * gets a verdict picked by the stream position (continue, reject or
 * tempfail, with or without the milter's text, session-wide or not). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "addr.h"
#include "config.h"
#include "dir.h"
#include "session.h"
#include "snap.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET_PASS "Sup3rSecretPw"
#define SECRET_B64 "AHVzZXIAU3VwM3JTZWNyZXRQdw==" /* PLAIN "\0user\0Sup3rSecretPw" */
#define SECRET_PASS_B64 "U3VwM3JTZWNyZXRQdw=="
#define USER_B64 "dXNlcg==" /* "user": not a secret */
#define SECRET_MARK 0xFF
#define MAX_TEMPLATES 256

static const char *const needles[] = {SECRET_PASS, SECRET_B64, SECRET_PASS_B64};

/* The AUTH exchanges: V is the verb ("AUTH" in some case), S a separator,
 * E the line end. Each starts at a line start. */
#define V "\x01"
#define S "\x02"
#define E "\x03"
static const char *const shapes[] = {
    V S "PLAIN" S SECRET_B64 E,
    V S "PLAIN" E SECRET_B64 E,
    V S "LOGIN" E USER_B64 E SECRET_PASS_B64 E,
    V S "login" S USER_B64 E SECRET_PASS_B64 E,
    V S "CRAM-MD5" E SECRET_B64 E,
    V E SECRET_B64 E,
    V S "PLAIN" E SECRET_PASS E,
    V S "LOGIN" E USER_B64 E SECRET_PASS E,
    V S "PLAIN" S SECRET_B64 S "extra" E,
    " " V S "PLAIN" S SECRET_PASS E,
    V S "X-UNKNOWN" S SECRET_PASS_B64 E,
    V S "PLAIN" E "*" E,
};
#undef V
#undef S
#undef E
static const char *const verbs[] = {"AUTH", "auth", "Auth"};
static const char *const seps[] = {" ", "\t", "  ", "\v", " \t", "\f"};
static const char *const ends[] = {"\r\n", "\n"};

static struct snap *fuzz_snap;
static struct snap *fuzz_msnap; /* the same with a milter configured */

/* The current run: the client's byte stream and where the secrets are. */
struct run {
    struct sb stream;
    size_t tpl_start[MAX_TEMPLATES], tpl_end[MAX_TEMPLATES];
    unsigned ntpl;
    bool check_secret; /* the fuzzer's own bytes do not hold it */
    unsigned unknowns; /* the fake per-address unknown-recipient count */
    unsigned nbdat;    /* BDAT command lines logged: each may end a message */
};

/* setup - one snapshot for all runs (small limits, to reach them). */
static void setup(void)
{
    static const char conf[] = "hostname = mx.fuzz\nworkdir = /tmp\nlisten = 127.0.0.1:25\n"
                               "local_domains = example.test\nmax_recipients = 4\n"
                               "max_errors = 50\nmax_message_size = 2048\n"
                               "users_file = /dev/null\nauth_require_tls = no\n"
                               "max_unknown_recipients_per_ip = 6\n";
    static const char users[] = "alice@example.test:*\n";
    char err[256];
    struct config *c = cfg_load_string("fuzz.conf", conf, sizeof(conf) - 1, err, sizeof(err));
    struct dir_source src[DIR_FILES] = {{"users", users, sizeof(users) - 1}};
    struct dir *d = dir_load_mem(src, err, sizeof(err));
    if (!c || !d)
        abort();
    fuzz_snap = snap_new(c, d, 1);
    static const char mconf[] = "hostname = mx.fuzz\nworkdir = /tmp\nlisten = 127.0.0.1:25\n"
                                "local_domains = example.test\nmax_recipients = 4\n"
                                "max_errors = 50\nmilters = m=inet:127.0.0.1:1\n";
    struct config *mc = cfg_load_string("fuzzm.conf", mconf, sizeof(mconf) - 1, err, sizeof(err));
    struct dir *md = dir_load_mem(src, err, sizeof(err));
    if (!mc || !md)
        abort();
    fuzz_msnap = snap_new(mc, md, 1);
}

/* log_tap - every logged line: the secret must never be in one. */
static void log_tap(void *arg, uint32_t sid, const char *line, size_t len)
{
    (void)sid;
    const struct run *r = arg;
    static int trace = -1; /* FUZZ_SESSION_TRACE=1: print the log (to debug a finding) */
    if (trace < 0)
        trace = getenv("FUZZ_SESSION_TRACE") != NULL;
    if (trace)
        fprintf(stderr, "log| %.*s\n", (int)len, line);
    if (len > 5 && mx_memcaseeq(line, "BDAT ", 5))
        ((struct run *)arg)->nbdat++;
    if (!r->check_secret)
        return;
    for (size_t i = 0; i < sizeof(needles) / sizeof(needles[0]); i++)
        if (memmem(line, len, needles[i], strlen(needles[i])))
            abort(); /* an AUTH secret reached the receivelog */
}

/* unknown_rcpt - the budget hook: one counter per run. */
static unsigned unknown_rcpt(void *arg, const struct mx_addr *peer)
{
    (void)peer;
    return ++((struct run *)arg)->unknowns;
}

/* add_template - append AUTH exchange sel (selector bytes a, b) at a line
 * start of the stream. */
static void add_template(struct run *r, uint8_t a, uint8_t b)
{
    if (r->stream.len && r->stream.data[r->stream.len - 1] != '\n')
        sb_append(&r->stream, "\r\n", 2);
    if (r->ntpl == MAX_TEMPLATES)
        return;
    const char *shape = shapes[a % (sizeof(shapes) / sizeof(shapes[0]))];
    const char *v = verbs[b % 3], *sep = seps[(b / 3) % 6], *end = ends[(b / 18) % 2];
    r->tpl_start[r->ntpl] = r->stream.len;
    for (const char *p = shape; *p; p++) {
        const char *t = *p == 1 ? v : *p == 2 ? sep : *p == 3 ? end : NULL;
        if (t)
            sb_append(&r->stream, t, strlen(t));
        else
            sb_append(&r->stream, p, 1);
    }
    r->tpl_end[r->ntpl++] = r->stream.len;
}

/* bdat_unchecked - a BDAT chunk is counted in octets, not lines: a count
 * that ends inside an AUTH exchange makes the rest of the exchange (its
 * secret line) commands, as if the client had sent its password as a
 * command. Templates after the first "BDAT" in the stream are therefore
 * not checked (those before it still are). */
static void bdat_unchecked(struct run *r)
{
    for (size_t i = 0; i + 4 <= r->stream.len; i++) {
        if (!mx_memcaseeq(r->stream.data + i, "BDAT", 4))
            continue;
        for (unsigned t = 0; t < r->ntpl; t++)
            if (r->tpl_end[t] > i)
                r->check_secret = false;
        return;
    }
}

/* build - the client stream: the fuzzer's bytes with each SECRET_MARK and
 * its two selector bytes replaced by an AUTH exchange. */
static void build(struct run *r, const uint8_t *data, size_t size)
{
    r->check_secret = true;
    for (size_t i = 0; i < sizeof(needles) / sizeof(needles[0]); i++)
        if (memmem(data, size, needles[i], strlen(needles[i])))
            r->check_secret = false;
    size_t i = 2 < size ? 2 : size; /* data[0], data[1]: step and mode */
    while (i < size) {
        if (data[i] == SECRET_MARK && i + 2 < size) {
            add_template(r, data[i + 1], data[i + 2]);
            i += 3;
            continue;
        }
        const uint8_t *mark = memchr(data + i, SECRET_MARK, size - i);
        size_t n = mark ? (size_t)(mark - (data + i)) : size - i;
        sb_append(&r->stream, (const char *)data + i, n ? n : 1);
        i += n ? n : 1;
    }
    bdat_unchecked(r);
}

/* skip_template - after STARTTLS the session drops the rest of the chunk
 * (a real client waits for the 220): never feed the tail of a template
 * whose head was dropped, its secret line would look like a command. */
static size_t skip_template(const struct run *r, size_t off)
{
    for (unsigned t = 0; t < r->ntpl; t++)
        if (r->tpl_start[t] < off && off < r->tpl_end[t])
            return r->tpl_end[t];
    return off;
}

/* check_replies - validate and count what the session sent. */
static void check_replies(struct sb *out, unsigned *n354)
{
    size_t off = 0;
    while (off < out->len) {
        const char *line = out->data + off;
        const char *end = memchr(line, '\n', out->len - off);
        if (!end || end == line || end[-1] != '\r')
            abort(); /* reply without CRLF */
        size_t len = (size_t)(end - line) - 1;
        if (len < 4 || line[0] < '2' || line[0] > '5' || (line[3] != ' ' && line[3] != '-'))
            abort();
        for (size_t i = 0; i < len; i++)
            if (line[i] == '\r' || line[i] == '\n' || line[i] == 0)
                abort();
        if (memcmp(line, "354 ", 4) == 0)
            (*n354)++;
        off += len + 2;
    }
    sb_reset(out);
}

/* drive - run the actions the session asks for; returns the new offset
 * into the stream (STARTTLS may skip a template's tail). */
static size_t drive(struct sess *s, struct run *r, size_t off, unsigned *n354, unsigned *spools)
{
    for (;;) {
        enum sess_action a = sess_action(s);
        if (a == SESS_CHUNK) {
            size_t len;
            if (!sess_chunk(s, &len) || len == 0 || len > SESS_CHUNK_MAX)
                abort(); /* chunks are bounded and never empty */
            sess_chunk_done(s);
        } else if (a == SESS_SPOOL) {
            if (sess_msg(s)->tail_len > SESS_CHUNK_MAX)
                abort();
            if (!sess_in_transaction(s) || !sess_msg(s) || ++*spools > *n354 + r->nbdat)
                abort(); /* a message without its own DATA or BDAT LAST */
            sess_spool_done(s, *spools % 5 == 0 ? 28 : 0, "FUZZQID");
        } else if (a == SESS_AUTH) {
            const char *u, *p;
            size_t ul, pl;
            sess_auth_creds(s, &u, &ul, &p, &pl);
            if (ul == 0 || pl == 0)
                abort(); /* the decoders refuse empty credentials */
            sess_auth_done(s, (enum sess_auth_result)(off % 3), "fuzz");
        } else if (a == SESS_MILTER) {
            struct sess_msg m;
            enum sess_mstage st = sess_milter_cmd(s, &m);
            if (!m.client_ip || (st == SESS_MS_RCPT && (m.nrcpt != 1 || !m.rcpts)) ||
                (st == SESS_MS_DATA && (m.nrcpt == 0 || !m.rcpts)) ||
                (st == SESS_MS_HELO && !m.helo))
                abort(); /* the milters are told what the command is about */
            static const char *const texts[] = {NULL, "550 5.7.1 fuzz", "451-4.7.1 a\r\n451 b"};
            unsigned k = (unsigned)(off % 11);
            enum sess_mverdict v = k < 6   ? SESS_MV_CONTINUE
                                   : k < 9 ? SESS_MV_REJECT
                                           : SESS_MV_TEMPFAIL;
            const char *t =
                v == SESS_MV_CONTINUE ? NULL : texts[v == SESS_MV_TEMPFAIL ? 2 * (k & 1) : k & 1];
            sess_milter_done(s, v, t, st == SESS_MS_HELO && k == 8, "fuzz");
        } else if (a == SESS_STARTTLS) {
            sess_tls_started(s, "TLSv1.3", "FUZZ");
            off = skip_template(r, off);
        } else {
            break;
        }
        sess_input(s, NULL, 0);
        check_replies(sess_out(s), n354);
    }
    (void)sess_reply_delay_ms(s);
    return off;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_snap)
        setup();
    struct run r = {0};
    build(&r, data, size);
    struct sess_env env = {.arg = &r, .log_tap = log_tap, .unknown_rcpt = unknown_rcpt};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(1)};
    sa.sin_addr.s_addr = htonl(size & 1 ? 0x7f000001 : 0xc0000201);
    struct mx_addr peer;
    mx_addr_from_sockaddr(&peer, (struct sockaddr *)&sa);
    struct sess *s = sess_new(&env, size & 2 ? fuzz_msnap : fuzz_snap, 1, &peer, 25);
    if (!s) {
        sb_free(&r.stream);
        return 0;
    }
    sess_set_mode(s, size > 1 ? data[1] & 7u : 0);
    sess_start(s);
    unsigned n354 = 0, spools = 0;
    const char *in = r.stream.data;
    size_t len = r.stream.len, off = 0, step = size ? (size_t)data[0] % 61 + 1 : 1;
    while (off < len && sess_action(s) != SESS_CLOSE) {
        size_t n = len - off < step ? len - off : step;
        sess_input(s, in + off, n);
        off += n;
        step = (size_t)(uint8_t)in[off % len] % 97 + 1;
        check_replies(sess_out(s), &n354);
        off = drive(s, &r, off, &n354, &spools);
    }
    if (off % 3 == 0)
        sess_timeout(s);
    else
        sess_shutdown(s);
    check_replies(sess_out(s), &n354);
    sess_log_close(s);
    sess_free(s);
    sb_free(&r.stream);
    return 0;
}
