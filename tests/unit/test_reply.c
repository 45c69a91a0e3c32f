/* test_reply.c - unit tests of core/reply.c, the reply table: every entry
 * declares the kinds of its arguments, and the declaration matches the
 * conversions of its text, so a sender passing other arguments fails here
 * or at compile time (the session's typed senders assert reply_takes).
 * Description: reply table argument declarations against their texts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "reply.h"

/* conversions - the argument kinds fmt's conversions take, in order, into
 * out ('s' for %s, 'u' for %llu); false on any other conversion. */
static bool conversions(const char *fmt, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = fmt; *p; p++) {
        if (*p != '%')
            continue;
        if (p[1] == '%') {
            p++;
            continue;
        }
        char kind;
        if (p[1] == 's') {
            kind = 's';
            p += 1;
        } else if (strncmp(p + 1, "llu", 3) == 0) {
            kind = 'u';
            p += 3;
        } else {
            return false;
        }
        if (n + 1 >= cap)
            return false;
        out[n++] = kind;
    }
    out[n] = 0;
    return true;
}

/* format - reply id formatted with markers for its declared arguments
 * ("<A0>", "<A1>" for strings, 4242 and 4343 for numbers) into out;
 * returns snprintf's count, or -1 for an argument list the table may not
 * declare. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral" /* the table's texts are the subject */
#pragma GCC diagnostic ignored "-Wformat-security"
static int format(enum reply_id id, char *out, size_t cap)
{
    const char *a = reply_table[id].args, *f = reply_table[id].fmt;
    if (strcmp(a, "") == 0)
        return snprintf(out, cap, f);
    if (strcmp(a, "s") == 0)
        return snprintf(out, cap, f, "<A0>");
    if (strcmp(a, "ss") == 0)
        return snprintf(out, cap, f, "<A0>", "<A1>");
    if (strcmp(a, "u") == 0)
        return snprintf(out, cap, f, 4242ull);
    if (strcmp(a, "uu") == 0)
        return snprintf(out, cap, f, 4242ull, 4343ull);
    return -1;
}
#pragma GCC diagnostic pop

/* Every entry has a text and an argument declaration, and the declaration
 * is exactly the conversions of the text. */
static void test_reply_args_match_text(void **state)
{
    (void)state;
    for (int id = 0; id < R_COUNT; id++) {
        char kinds[8];
        const struct reply_def *d = &reply_table[id];
        if (!d->fmt || !d->args)
            fail_msg("reply %d: no text or no argument declaration", id);
        if (!conversions(d->fmt, kinds, sizeof(kinds)))
            fail_msg("reply %d \"%s\": a conversion other than %%s or %%llu", id, d->fmt);
        if (strcmp(kinds, d->args) != 0)
            fail_msg("reply %d \"%s\": declares \"%s\", its text takes \"%s\"", id, d->fmt, d->args,
                     kinds);
    }
}

/* Formatted with its declared arguments, every reply uses each of them
 * once and leaves no conversion behind; it is one line. */
static void test_reply_formats_with_declared_args(void **state)
{
    (void)state;
    for (int id = 0; id < R_COUNT; id++) {
        char line[1024];
        int n = format((enum reply_id)id, line, sizeof(line));
        if (n < 0 || (size_t)n >= sizeof(line))
            fail_msg("reply %d: cannot be formatted with \"%s\"", id, reply_table[id].args);
        const char *a = reply_table[id].args;
        size_t s = strspn(a, "s"), u = strlen(a) - s;
        assert_int_equal(strstr(line, "<A0>") != NULL, s >= 1);
        assert_int_equal(strstr(line, "<A1>") != NULL, s >= 2);
        assert_int_equal(strstr(line, "4242") != NULL, u >= 1);
        assert_null(strchr(line, '\n'));
        if (id == R_FILTER_TEXT) /* a milter's own line, checked by milter_replycode_parse */
            continue;
        assert_true(n >= 4 && line[0] >= '2' && line[0] <= '5');
        assert_true(line[3] == ' ' || line[3] == '-');
    }
}

/* reply_takes answers for the exact declaration only. */
static void test_reply_takes(void **state)
{
    (void)state;
    assert_true(reply_takes(R_OK, ""));
    assert_false(reply_takes(R_OK, "s"));
    assert_true(reply_takes(R_HELO, "ss"));
    assert_false(reply_takes(R_HELO, "s"));
    assert_true(reply_takes(R_EHLO_SIZE, "u"));
    assert_false(reply_takes(R_EHLO_SIZE, "s"));
    assert_false(reply_takes(R_COUNT, ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_args_match_text),
        cmocka_unit_test(test_reply_formats_with_declared_args),
        cmocka_unit_test(test_reply_takes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
