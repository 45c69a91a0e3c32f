/* fuzz_smtp_parse.c - libFuzzer target for core/smtp_parse.c: the input is
 * one command line; every parser runs on it, and every accepted address must
 * be well formed and re-parse to itself; accepted DSN parameters (RET,
 * ENVID, NOTIFY, ORCPT) are valid xtext within their limits and re-parse to
 * themselves. Single-threaded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(c)                                                                         \
    do {                                                                                    \
        if (!(c)) {                                                                         \
            fprintf(stderr, "fuzz_smtp_parse: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

/* check_addr - invariants of an address the parser accepted. */
static void check_addr(const struct smtp_addr *a, bool rcpt)
{
    FZ_CHECK(a->len == strlen(a->addr));
    FZ_CHECK(a->at <= a->len);
    FZ_CHECK(a->len + 2 <= SMTP_PATH_MAX);
    if (a->is_null) {
        FZ_CHECK(!rcpt && a->len == 0);
        return;
    }
    FZ_CHECK(a->at > 0 && a->at <= SMTP_LOCAL_MAX);
    FZ_CHECK(a->at < a->len ? a->addr[a->at] == '@' : rcpt);
    FZ_CHECK(a->at == a->len || a->len - a->at - 1 <= SMTP_DOMAIN_MAX);
    FZ_CHECK(!a->addr_literal || a->addr[a->at + 1] == '[');
    FZ_CHECK(a->quoted == (a->addr[0] == '"'));
    for (size_t i = 0; i < a->len; i++) {
        unsigned char ch = (unsigned char)a->addr[i];
        FZ_CHECK(ch >= ' ' && ch != 0x7f);
        FZ_CHECK(ch < 0x80 || a->utf8);
        FZ_CHECK(ch != ' ' || a->quoted);
    }
}

/* check_roundtrip - "<addr>" must parse back to exactly the same address. */
static void check_roundtrip(const struct smtp_addr *a, bool rcpt)
{
    char line[SMTP_PATH_MAX + 16];
    struct smtp_addr b;
    struct smtp_params p;
    if (a->is_null)
        return;
    int n = snprintf(line, sizeof(line), "%s<%s>", rcpt ? "TO:" : "FROM:", a->addr);
    FZ_CHECK(n > 0 && (size_t)n < sizeof(line));
    enum smtp_perr e =
        rcpt ? smtp_parse_rcpt(line, (size_t)n, &b, &p) : smtp_parse_mail(line, (size_t)n, &b, &p);
    FZ_CHECK(e == SMTP_P_OK);
    FZ_CHECK(b.len == a->len && memcmp(b.addr, a->addr, a->len + 1) == 0);
    FZ_CHECK(b.at == a->at && b.utf8 == a->utf8 && b.quoted == a->quoted);
    FZ_CHECK(b.addr_literal == a->addr_literal && !b.is_null);
}

/* check_dsn - invariants of accepted RFC 3461 parameters, and a round
 * trip: the values written back as parameters parse to the same values. */
static void check_dsn(const struct smtp_params *p, bool rcpt)
{
    char buf[SMTP_ORCPT_MAX + 1], nt[32], line[SMTP_ORCPT_MAX + 128];
    struct smtp_addr b;
    struct smtp_params q;
    FZ_CHECK(p->bad == NULL);
    FZ_CHECK(strlen(p->envid) <= SMTP_ENVID_MAX && strlen(p->orcpt) <= SMTP_ORCPT_MAX);
    FZ_CHECK(!p->envid[0] || smtp_xtext_decode(p->envid, strlen(p->envid), buf, sizeof buf) >= 0);
    const char *semi = strchr(p->orcpt, ';');
    FZ_CHECK(!p->orcpt[0] || (semi && semi > p->orcpt &&
                              smtp_xtext_decode(semi + 1, strlen(semi + 1), buf, sizeof buf) >= 0));
    FZ_CHECK(p->notify < 16 &&
             (!(p->notify & SMTP_NOTIFY_NEVER) || p->notify == SMTP_NOTIFY_NEVER));
    FZ_CHECK(!rcpt || (p->ret == SMTP_RET_NONE && !p->envid[0]));
    FZ_CHECK(rcpt || (p->notify == 0 && !p->orcpt[0]));
    smtp_notify_format(p->notify, nt, sizeof nt);
    int n = rcpt ? snprintf(line, sizeof line, "TO:<a@b>%s%s%s%s", p->notify ? " NOTIFY=" : "", nt,
                            p->orcpt[0] ? " ORCPT=" : "", p->orcpt)
                 : snprintf(line, sizeof line, "FROM:<a@b>%s%s%s",
                            p->ret == SMTP_RET_HDRS   ? " RET=HDRS"
                            : p->ret == SMTP_RET_FULL ? " RET=FULL"
                                                      : "",
                            p->envid[0] ? " ENVID=" : "", p->envid);
    FZ_CHECK(n > 0 && (size_t)n < sizeof line);
    enum smtp_perr e =
        rcpt ? smtp_parse_rcpt(line, (size_t)n, &b, &q) : smtp_parse_mail(line, (size_t)n, &b, &q);
    FZ_CHECK(e == SMTP_P_OK);
    FZ_CHECK(q.ret == p->ret && q.notify == p->notify);
    FZ_CHECK(strcmp(q.envid, p->envid) == 0 && strcmp(q.orcpt, p->orcpt) == 0);
}

/* fuzz_path - run MAIL or RCPT parsing on arg and check the outcome. */
static void fuzz_path(const char *arg, size_t len, bool rcpt)
{
    struct smtp_addr a;
    struct smtp_params p;
    enum smtp_perr e = rcpt ? smtp_parse_rcpt(arg, len, &a, &p) : smtp_parse_mail(arg, len, &a, &p);
    FZ_CHECK(e >= SMTP_P_OK && e <= SMTP_P_DUP_DSN);
    FZ_CHECK(e != SMTP_P_NULL_RCPT || rcpt);
    FZ_CHECK((e == SMTP_P_BAD_DSN || e == SMTP_P_DUP_DSN) == (p.bad != NULL) || e != SMTP_P_OK);
    if (e == SMTP_P_BAD_DSN || e == SMTP_P_DUP_DSN)
        FZ_CHECK(p.bad && (strcmp(p.bad, "RET") == 0 || strcmp(p.bad, "ENVID") == 0 ||
                           strcmp(p.bad, "NOTIFY") == 0 || strcmp(p.bad, "ORCPT") == 0));
    if (e == SMTP_P_OK) {
        check_addr(&a, rcpt);
        check_roundtrip(&a, rcpt);
        FZ_CHECK(p.has_size || p.size == 0);
        FZ_CHECK(!rcpt || (!p.has_size && !p.smtputf8 && !p.has_auth && p.body == SMTP_BODY_NONE));
        check_dsn(&p, rcpt);
    }
}

/* fuzz_helo - run HELO parsing on arg and check the domain length. */
static void fuzz_helo(const char *arg, size_t len)
{
    size_t dlen = 12345;
    enum smtp_perr e = smtp_parse_helo(arg, len, &dlen);
    FZ_CHECK(e == SMTP_P_OK || e == SMTP_P_SYNTAX);
    if (e != SMTP_P_OK) {
        FZ_CHECK(dlen == 0);
        return;
    }
    FZ_CHECK(dlen > 0 && dlen <= len && dlen <= SMTP_DOMAIN_MAX);
    FZ_CHECK(dlen == len || arg[dlen] == ' ');
    for (size_t i = 0; i < dlen; i++)
        FZ_CHECK((unsigned char)arg[i] > ' ' && arg[i] != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    size_t off = (size_t)-1;
    enum smtp_verb v = smtp_parse_verb(s, size, &off);
    FZ_CHECK(v >= SMTP_VERB_UNKNOWN && v < SMTP_VERB_COUNT);
    FZ_CHECK(off <= size);
    if (v != SMTP_VERB_UNKNOWN) {
        size_t vl = strlen(smtp_verb_name(v));
        FZ_CHECK(vl <= off && (vl == size || s[vl] == ' '));
        FZ_CHECK(off == size || s[off] != ' ');
    }
    fuzz_path(s + off, size - off, false);
    fuzz_path(s + off, size - off, true);
    fuzz_helo(s + off, size - off);
    fuzz_helo(s, size);
    return 0;
}
