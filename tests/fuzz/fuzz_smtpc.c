/* fuzz_smtpc.c - libFuzzer target for core/smtpc.c. The first octet picks
 * the mode, TLS policy and message flags, the second seeds the split; the
 * rest is the hop's reply stream. The machine is driven to the end once
 * with the stream in one piece and once in pseudo-random pieces (the body
 * in pieces too): no crash, and the bytes sent, the per-recipient results
 * and the close reason must be the same (split invariance; runs that
 * reached STARTTLS are exempt: bytes before the handshake are refused on
 * purpose). Single-threaded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_STEPS 4000

static const char fz_body[] = "Subject: x\r\n\r\n.line\r\n..two\r\nlast";

/* fz_trace - a run's observable outcome. */
struct fz_trace {
    struct sb out;
    bool tls;
};

/* fz_results - results and close reason appended to the trace. */
static void fz_results(struct smtpc *c, struct sb *t)
{
    struct smtpc_result r;
    for (size_t i = 0; i < smtpc_nrcpt(c); i++)
        if (smtpc_rcpt_result(c, i, &r))
            sb_printf(t, "R%zu %u %s %s %d\n", i, r.code, r.enh, r.text, (int)r.stage);
    smtpc_error(c, &r);
    sb_printf(t, "X %u %s %s %d\n", r.code, r.enh, r.text, (int)r.stage);
}

/* fz_run - drive one machine; piece sizes come from seed (0 = whole). */
static void fz_run(uint8_t flags, unsigned seed, const uint8_t *in, size_t len, struct fz_trace *t)
{
    static const char *const rcpts[] = {"a@x.test", "b@x.test", "c@x.test"};
    static const char *const rcpt_dsn[] = {" NOTIFY=SUCCESS ORCPT=rfc822;a+40x.test", "",
                                           " NOTIFY=NEVER"};
    struct smtpc_opts o = {(flags & 1) ? SMTPC_LMTP : SMTPC_SMTP, "gw.test",
                           (enum smtpc_tls)((flags >> 1) % 3), false};
    struct smtpc_msg m = {(flags & 8) ? "" : "s@y.test",
                          rcpts,
                          1 + (flags >> 6) % 3,
                          sizeof fz_body - 1,
                          (flags & 16) != 0,
                          (flags & 32) != 0,
                          " RET=HDRS ENVID=QQ+2B1",
                          rcpt_dsn};
    struct smtpc *c = smtpc_new(&o, &m);
    size_t pos = 0, bpos = 0;
    bool again = true;
    for (int step = 0; c && step < FZ_STEPS; step++) {
        struct sb *out = smtpc_output(c);
        sb_append(&t->out, out->data, out->len);
        sb_consume(out, out->len);
        seed = seed * 1103515245u + 12345u;
        size_t piece = seed ? 1 + (seed >> 16) % 17 : (size_t)-1;
        enum smtpc_want w = smtpc_want(c);
        if (w == SMTPC_NEED_INPUT) {
            if (pos >= len)
                break;
            size_t n = len - pos < piece ? len - pos : piece;
            smtpc_input(c, in + pos, n);
            pos += n;
        } else if (w == SMTPC_SEND_BODY) {
            size_t n = sizeof fz_body - 1 - bpos < piece ? sizeof fz_body - 1 - bpos : piece;
            smtpc_body(c, fz_body + bpos, n, bpos + n == sizeof fz_body - 1);
            bpos += n;
        } else if (w == SMTPC_START_TLS) {
            t->tls = true;
            smtpc_tls_done(c, (flags & 4) != 0);
        } else if (w == SMTPC_MSG_DONE) {
            fz_results(c, &t->out);
            bpos = 0;
            if (again && smtpc_next(c, &m))
                again = false;
            else
                smtpc_quit(c);
        } else if (w == SMTPC_IDLE) {
            smtpc_quit(c);
        } else {
            break;
        }
    }
    if (c && smtpc_want(c) != SMTPC_CLOSED)
        smtpc_abort(c, "EOF");
    if (c)
        fz_results(c, &t->out);
    smtpc_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct fz_trace whole = {0}, split = {0};
    fz_run(data[0], 0, data + 2, size - 2, &whole);
    fz_run(data[0], data[1] | 1u, data + 2, size - 2, &split);
    bool same = whole.out.len == split.out.len &&
                (whole.out.len == 0 || memcmp(whole.out.data, split.out.data, whole.out.len) == 0);
    if (!same && !whole.tls && !split.tls) {
        fprintf(stderr,
                "fuzz_smtpc: split changed the outcome\n--- whole:\n%.*s\n--- split:\n%.*s\n",
                (int)whole.out.len, whole.out.data, (int)split.out.len, split.out.data);
        abort();
    }
    sb_free(&whole.out);
    sb_free(&split.out);
    return 0;
}
