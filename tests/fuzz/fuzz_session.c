/* fuzz_session.c - session-level libFuzzer target: arbitrary client bytes,
 * split at arbitrary points, through a whole session with a fake I/O layer.
 * Invariants: every reply line is well-formed ("DDD" + ' ' or '-' + text +
 * CRLF, no bare CR/LF inside), there is never more than one message per
 * 354 reply, a spool request always carries a transaction, and nothing is
 * processed after the session asked to close. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "config.h"
#include "dir.h"
#include "session.h"
#include "snap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct snap *fuzz_snap;

/* setup - one snapshot for all runs (small limits, to reach them). */
static void setup(void)
{
    static const char conf[] = "hostname = mx.fuzz\nworkdir = /tmp\nlisten = 127.0.0.1:25\n"
                               "local_domains = example.test\nmax_recipients = 4\n"
                               "max_errors = 50\nmax_message_size = 2048\n"
                               "users_file = /dev/null\nauth_require_tls = no\n";
    char err[256];
    struct config *c = cfg_load_string("fuzz.conf", conf, sizeof(conf) - 1, err, sizeof(err));
    struct dir *d = dir_load(NULL, NULL, NULL, NULL, err, sizeof(err));
    if (!c || !d)
        abort();
    fuzz_snap = snap_new(c, d, 1);
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_snap)
        setup();
    struct sess_env env = {0};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(1)};
    sa.sin_addr.s_addr = htonl(size & 1 ? 0x7f000001 : 0xc0000201);
    struct sess *s = sess_new(&env, fuzz_snap, 1, (struct sockaddr *)&sa, 25);
    if (!s)
        return 0;
    sess_set_mode(s, size > 1 ? data[1] & 7u : 0);
    sess_start(s);
    unsigned n354 = 0, spools = 0;
    size_t off = 0, step = size ? (size_t)data[0] % 61 + 1 : 1;
    while (off < size && sess_action(s) != SESS_CLOSE) {
        size_t n = size - off < step ? size - off : step;
        sess_input(s, (const char *)data + off, n);
        off += n;
        step = (size_t)data[off % size] % 97 + 1;
        check_replies(sess_out(s), &n354);
        for (;;) {
            enum sess_action a = sess_action(s);
            if (a == SESS_SPOOL) {
                if (!sess_in_transaction(s) || !sess_msg(s) || ++spools > n354)
                    abort(); /* a message without its own DATA */
                sess_spool_done(s, spools % 5 == 0 ? 28 : 0, "FUZZQID");
            } else if (a == SESS_AUTH) {
                const char *u, *p;
                size_t ul, pl;
                sess_auth_creds(s, &u, &ul, &p, &pl);
                if (ul == 0 || pl == 0)
                    abort(); /* the decoders refuse empty credentials */
                sess_auth_done(s, (enum sess_auth_result)(off % 3), "fuzz");
            } else if (a == SESS_STARTTLS) {
                sess_tls_started(s, "TLSv1.3", "FUZZ");
            } else {
                break;
            }
            sess_input(s, NULL, 0);
            check_replies(sess_out(s), &n354);
        }
    }
    if (off % 3 == 0)
        sess_timeout(s);
    else
        sess_shutdown(s);
    check_replies(sess_out(s), &n354);
    sess_free(s);
    return 0;
}
