/* fuzz_smtp_parse.c - libFuzzer target for core/smtp_parse.c: the input is
 * one command line; every parser runs on it, and every accepted address must
 * be well formed and re-parse to itself. Single-threaded. */
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

/* fuzz_path - run MAIL or RCPT parsing on arg and check the outcome. */
static void fuzz_path(const char *arg, size_t len, bool rcpt)
{
    struct smtp_addr a;
    struct smtp_params p;
    enum smtp_perr e = rcpt ? smtp_parse_rcpt(arg, len, &a, &p) : smtp_parse_mail(arg, len, &a, &p);
    FZ_CHECK(e >= SMTP_P_OK && e <= SMTP_P_NULL_RCPT);
    FZ_CHECK(e != SMTP_P_NULL_RCPT || rcpt);
    if (e == SMTP_P_OK) {
        check_addr(&a, rcpt);
        check_roundtrip(&a, rcpt);
        FZ_CHECK(p.has_size || p.size == 0);
        FZ_CHECK(!rcpt || (!p.has_size && !p.smtputf8 && !p.has_auth && p.body == SMTP_BODY_NONE));
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
