/* test_mxlog_split.c - the two-thread walk of `mxlog stats`: the counts
 * of a file walked in two halves equal those of one walk, whatever line
 * the split falls on: sessions open across the split, with and without
 * summary lines, ids reused while open, a stray line after a close, an
 * mxringd restart in the second half, bad lines.
 * Description: a generated interleaved log, mxl_walk_buf against
 * mxl_walk_split, compared table by table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agg.h"
#include "walk.h"

#define NSESS 600
#define LIVE 8

struct gen {
    char *buf;
    size_t n, cap;
    unsigned line, rnd;
};

/* put - one line of session sid at the generator's clock (1 s per 20 lines). */
static void put(struct gen *g, uint32_t sid, const char *text)
{
    unsigned sec = 59 * 60 + g->line++ / 20;
    if (g->n + 600 > g->cap) {
        g->cap = g->cap ? g->cap * 2 : 1 << 16;
        g->buf = realloc(g->buf, g->cap);
        assert_non_null(g->buf);
    }
    g->n +=
        (size_t)snprintf(g->buf + g->n, g->cap - g->n, " [01/Dec/2026:%02u:%02u:%02u], %08X, %s\n",
                         10 + sec / 3600, sec / 60 % 60, sec % 60, sid, text);
}

/* sub - tmpl with its '#' replaced by val (no '#': tmpl itself). */
static const char *sub(char *b, size_t cap, const char *tmpl, const char *val)
{
    const char *h = strchr(tmpl, '#');
    if (!h)
        return tmpl;
    snprintf(b, cap, "%.*s%s%s", (int)(h - tmpl), tmpl, val, h + 1);
    return b;
}

static const char *const acc[] = {
    "Connection accepted: client [#]:4000, local port 25, worker 0",
    "220 mx.test ESMTP",
    "EHLO #",
    "250-mx.test Hello",
    "250 ENHANCEDSTATUSCODES",
    "MAIL FROM:<#>",
    "Check MAIL FROM address = <x>",
    "250 2.1.0 ok",
    "RCPT TO:<u@example.test>",
    "user check status(2) = found Users",
    "250 2.1.5 ok",
    "DATA",
    "354 go",
    ".",
    "Message accepted: queue id #, 900 octets, 1 recipient(s)",
    "Transaction summary: client=10.1.0.0 helo=h tls=- auth=- from=<#> rcpts=1 "
    "rcpts_refused=0 size=900 result=queued id=6B0F",
    "250 2.0.0 ok",
    "QUIT",
    "221 bye",
    "CloseClient Started. (QUIT)",
    "closesocket()"};
static const char *const unk[] = {
    "Connection accepted: client [#]:4000, local port 25, worker 0",
    "220 mx.test ESMTP",
    "EHLO #",
    "250 mx.test Hello",
    "MAIL FROM:<#>",
    "250 2.1.0 ok",
    "RCPT TO:<nobody@example.test>",
    "RCPT refused: <nobody@example.test> User unknown (not in the recipient directory)",
    "550 5.1.1 User unknown.",
    "QUIT",
    "Transaction summary: client=10.1.0.0 helo=h tls=- auth=- from=<#> rcpts=0 "
    "rcpts_refused=1 size=0 result=aborted reason=\"QUIT\"",
    "221 bye",
    "CloseClient Started. (QUIT)",
    "closesocket()"};
static const char *const cut[] = {"Connection accepted: client [#]:4000, local port 25, worker 0",
                                  "220 mx.test ESMTP",
                                  "EHLO #",
                                  "250 mx.test Hello",
                                  "MAIL FROM:<#>",
                                  "250 2.1.0 ok"};
static const char *const none[] = {"Connection accepted: client [#]:4000, local port 25, worker 0",
                                   "220 mx.test ESMTP",
                                   "QUIT",
                                   "221 bye",
                                   "CloseClient Started. (QUIT)",
                                   "closesocket()",
                                   "250 a stray line after the close"};
#define N(a) (unsigned)(sizeof(a) / sizeof(a[0]))

/* script - line k of session i (kind i % 5: accepted with and without a
 * summary, user unknown, cut off after MAIL, no mail), or NULL after its
 * last. */
static const char *script(unsigned i, unsigned k, char *b, size_t cap)
{
    const char *const *s;
    unsigned n, kind = i % 5;
    if (kind <= 1)
        s = acc, n = N(acc);
    else if (kind == 2)
        s = unk, n = N(unk);
    else if (kind == 3)
        s = cut, n = N(cut);
    else
        s = none, n = N(none) - (i % 10 != 4);
    if (kind == 1 && k >= 15)
        k++; /* no summary line (acc[15]): the dialogue alone */
    if (k >= n)
        return NULL;
    char v[64];
    if (k == 0)
        snprintf(v, sizeof(v), "10.1.%u.%u", i >> 8 & 255, i & 255);
    else if (strncmp(s[k], "EHLO", 4) == 0)
        snprintf(v, sizeof(v), "c%u.example", i % 7);
    else if (strncmp(s[k], "Message", 7) == 0)
        snprintf(v, sizeof(v), "6B0F%016X", i);
    else
        snprintf(v, sizeof(v), "s%u@d%u.example", i, i % 13);
    return sub(b, cap, s[k], v);
}

/* make_log - NSESS sessions, LIVE at a time, interleaved pseudo-randomly;
 * ids are reused (mod 40, so cut-off sessions get a new connect); an
 * mxringd restart at 3/4 of the sessions; pad bad lines first. */
static struct gen make_log(unsigned pad)
{
    struct gen g = {0};
    unsigned live[LIVE], pos[LIVE], started = 0, done = 0, nlive = 0;
    char b[600];
    g.rnd = 12345;
    for (unsigned k = 0; k < pad; k++) {
        put(&g, 0, "x");
        g.buf[g.n - 6] = 'z'; /* not a hex digit in the id: a bad line */
    }
    while (done < NSESS) {
        while (nlive < LIVE && started < NSESS) {
            live[nlive] = started++;
            pos[nlive++] = 0;
            if (started == NSESS * 3 / 4)
                put(&g, 0, "mxringd started (version 1, test)");
        }
        g.rnd = g.rnd * 1103515245u + 12345u;
        unsigned j = (g.rnd >> 16) % nlive, i = live[j];
        const char *t = script(i, pos[j]++, b, sizeof(b));
        if (t) {
            put(&g, 0x5000 + i % 40, t);
            continue;
        }
        live[j] = live[--nlive];
        pos[j] = pos[nlive];
        done++;
    }
    return g;
}

/* dump - every table of g as text (tallies sorted, so order-free). */
static char *dump(const struct mxl_agg *g, const struct mxl_opts *o)
{
    size_t cap = 1 << 20, n = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    n += (size_t)snprintf(
        s + n, cap - n, "%lu %lu %lu %lu %lu %lu %lu %lu | %lu %lu %lu\n",
        (unsigned long)g->sessions, (unsigned long)g->txns, (unsigned long)g->accepted,
        (unsigned long)g->refused, (unsigned long)g->bytes, (unsigned long)g->rcpts_ok,
        (unsigned long)g->rcpts_refused, (unsigned long)g->auth_failures, (unsigned long)o->lines,
        (unsigned long)o->bad_lines, (unsigned long)o->bytes);
    for (int v = 0; v < MXL_V_COUNT; v++)
        n += (size_t)snprintf(s + n, cap - n, "v%d=%lu ", v, (unsigned long)g->by_verdict[v]);
    for (size_t h = 0; h < g->nhours; h++)
        for (int v = 0; v < MXL_V_COUNT; v++)
            n += (size_t)snprintf(s + n, cap - n, "h%ld.%d=%u ", (long)g->hours[h].hour, v,
                                  g->hours[h].n[v]);
    const struct mxl_tally *t[] = {&g->clients, &g->sender_dom, &g->rcpt_dom, &g->refused_rcpts};
    for (size_t k = 0; k < 4; k++) {
        struct mxl_tent **v = mxl_tally_sorted(t[k], 0);
        n += (size_t)snprintf(s + n, cap - n, "\ntally %zu:", k);
        for (size_t i = 0; i < t[k]->n && n + 200 < cap; i++)
            n += (size_t)snprintf(s + n, cap - n, " %s=%lu/%lu", v[i]->key, (unsigned long)v[i]->a,
                                  (unsigned long)v[i]->b);
        free(v);
    }
    return s;
}

/* walk - count buf with one thread or two; the tables as text. */
static char *walk(const struct gen *g, bool two)
{
    struct mxl_opts o = {.since = INT64_MIN, .until = INT64_MAX};
    struct mxl_agg a = {.o = &o};
    struct mxl_sink sink = mxl_agg_sink(&a);
    struct mxl_split split = mxl_agg_split(&a, 0);
    struct mxl_engine *e = mxl_engine_new(&sink, false);
    assert_non_null(e);
    mxl_engine_host(e, "h");
    assert_true(two ? mxl_walk_split(&o, e, "h", &split, g->buf, g->n)
                    : mxl_walk_buf(&o, e, g->buf, g->n));
    mxl_engine_end_all(e, MXL_END_EOF, INT64_MIN);
    mxl_engine_free(e);
    char *s = dump(&a, &o);
    mxl_agg_free(&a);
    return s;
}

/* test_mxlog_split_matches_one_thread - at 40 split points: the same
 * tables as one walk, and the log exercises what the split must handle. */
static void test_mxlog_split_matches_one_thread(void **state)
{
    (void)state;
    for (unsigned pad = 0; pad < 40 * 37; pad += 37) {
        struct gen g = make_log(pad);
        char *one = walk(&g, false), *two = walk(&g, true);
        if (strcmp(one, two) != 0)
            fail_msg("pad %u:\none: %.600s\ntwo: %.600s", pad, one, two);
        if (pad == 0) { /* the log has what it claims: refusals, cut-offs, two hours */
            char uu[16], cutoff[16];
            snprintf(uu, sizeof uu, "v%d=0 ", MXL_V_USER_UNKNOWN);
            snprintf(cutoff, sizeof cutoff, "v%d=0 ", MXL_V_CUT_OFF);
            assert_null(strstr(one, uu));
            assert_null(strstr(one, cutoff));
            assert_non_null(strstr(one, "h498923.0=")); /* 11:00 */
        }
        free(one);
        free(two);
        free(g.buf);
    }
}

/* test_mxlog_split_tiny_buffer - no line boundary past the middle: one walk. */
static void test_mxlog_split_tiny_buffer(void **state)
{
    (void)state;
    struct gen g = {0};
    put(&g, 0x42, "Connection accepted: client [10.0.0.9]:1, local port 25, worker 0");
    g.n--; /* no final newline: nothing to split at */
    char *one = walk(&g, false), *two = walk(&g, true);
    assert_string_equal(one, two);
    assert_non_null(strstr(one, "1 0 0 1 0 0 0 0 | 1 0")); /* one session, cut off */
    free(one);
    free(two);
    free(g.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mxlog_split_matches_one_thread),
        cmocka_unit_test(test_mxlog_split_tiny_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
