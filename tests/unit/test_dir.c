/* test_dir.c - unit tests of the recipient directory (core/dir.c): file
 * syntax and its error texts, every lookup kind, precedence, case folding,
 * password checks and a 100k-entry file. Single-threaded. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dir.h"

#define ERRLEN 512
#define BIG_N 100000

static char tmpdir[] = "/tmp/test_dir.XXXXXX";

/* path_of - the path of file name inside the test directory. */
static const char *path_of(const char *name)
{
    static char path[4][256];
    static unsigned next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", tmpdir, name);
    return p;
}

/* put - write text to name in the test directory; returns its path. */
static const char *put(const char *name, const char *text)
{
    const char *p = path_of(name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    return p;
}

/* kind - dir_lookup on a C string. */
static enum dir_kind kind(const struct dir *d, const char *a)
{
    return dir_lookup(d, a, strlen(a));
}

/* load_one - load text as the file of kind k (others not configured). */
static struct dir *load_one(enum dir_kind k, const char *text, char *err)
{
    const char *p = put("f", text);
    err[0] = 0;
    return dir_load(k == DIR_USER ? p : NULL, k == DIR_GROUP ? p : NULL, k == DIR_ALIAS ? p : NULL,
                    k == DIR_LIST ? p : NULL, err, ERRLEN);
}

/* expect_error - text as a file of kind k fails with "<path>:<why>". */
static void expect_error(enum dir_kind k, const char *text, const char *why)
{
    char err[ERRLEN], want[ERRLEN];
    struct dir *d = load_one(k, text, err);
    snprintf(want, sizeof want, "%s/f:%s", tmpdir, why);
    if (d || strcmp(err, want) != 0)
        print_error("kind %d text [%s]: got %s [%s], want [%s]\n", (int)k, text,
                    d ? "a directory" : "NULL", err, want);
    assert_null(d);
    assert_string_equal(err, want);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    const char *names[] = {"f", "u", "g", "a", "l", "big"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(path_of(names[i]));
    return rmdir(tmpdir);
}

static void test_dir_not_configured(void **state)
{
    (void)state;
    char err[ERRLEN] = "";
    struct dir *d = dir_load(NULL, NULL, NULL, NULL, err, sizeof err);
    assert_non_null(d);
    assert_false(dir_configured(d));
    assert_int_equal(dir_count(d), 0);
    assert_int_equal(kind(d, "anyone@example.org"), DIR_NOT_FOUND);
    assert_null(dir_user_hash(d, "a@b", 3));
    dir_free(d);
    assert_false(dir_configured(NULL));
    assert_int_equal(dir_lookup(NULL, "a@b", 3), DIR_NOT_FOUND);
    dir_free(NULL);
}

static void test_dir_empty_file_is_configured(void **state)
{
    (void)state;
    char err[ERRLEN];
    struct dir *d = load_one(DIR_ALIAS, "# nothing here\n\n   \n", err);
    assert_non_null(d);
    assert_true(dir_configured(d));
    assert_int_equal(dir_count(d), 0);
    assert_int_equal(kind(d, "a@b"), DIR_NOT_FOUND);
    dir_free(d);
}

static void test_dir_users_good_lines(void **state)
{
    (void)state;
    char err[ERRLEN];
    struct dir *d =
        load_one(DIR_USER,
                 "# users\n"
                 "\n"
                 "alice@example.org:$6$salt$abcdefghijklmnopqrstuvwxyzABCDEFGH./0123456789\n"
                 "  bob@example.org :  "
                 "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7  \r\n"
                 "\t# indented comment\n"
                 "des@example.org:abJnggxhB/yW.\n"
                 "rounds@example.org:$6$rounds=5000$salt$hash\n"
                 "last@example.org:$1$x$y",
                 err);
    assert_non_null(d);
    assert_string_equal(err, "");
    assert_int_equal(dir_count(d), 5);
    assert_int_equal(kind(d, "alice@example.org"), DIR_USER);
    assert_string_equal(
        dir_user_hash(d, "bob@example.org", 15),
        "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7");
    assert_string_equal(dir_user_hash(d, "des@example.org", 15), "abJnggxhB/yW.");
    assert_string_equal(dir_user_hash(d, "last@example.org", 16), "$1$x$y");
    assert_int_equal(kind(d, "rounds@example.org"), DIR_USER);
    assert_false(dir_user_locked(d, "alice@example.org", 17));
    size_t n = 99;
    assert_null(dir_targets(d, "alice@example.org", 17, &n));
    assert_int_equal(n, 0);
    dir_free(d);
}

static void test_dir_users_bad_lines(void **state)
{
    (void)state;
    const char *ok = "# c\nok@x:$6$s$h\n";
    struct {
        const char *line, *why;
    } cases[] = {
        {"nocolon@x $6$s$h", "missing ':'"},
        {":$6$s$h", "bad address: empty"},
        {"nobody:$6$s$h", "bad address: no '@'"},
        {"@x:$6$s$h", "bad address: empty local part"},
        {"a@:$6$s$h", "bad address: empty domain"},
        {"a b@x:$6$s$h", "bad address: space or control character"},
        {"a\x01@x:$6$s$h", "bad address: space or control character"},
        {"a\x7f@x:$6$s$h", "bad address: space or control character"},
        {"a@x:", "empty password hash"},
        {"a@x:secret", "bad password hash"},
        {"a@x:$6", "bad password hash"},
        {"a@x:$6$s$h h", "bad password hash"},
        {"a@x:$6$s$h:extra", "bad password hash"},
        {"a@x:abJnggxhB/yW", "bad password hash"},
        {"a@x:abJnggxhB/yW.!", "bad password hash"},
        {"a@x:!bad hash", "bad password hash"},
        {"a@x:*x:y", "bad password hash"},
        {"a@x:$6$s$h\xc3\xa9", "bad password hash"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[ERRLEN], why[ERRLEN];
        snprintf(text, sizeof text, "%s%s\nlater@x:$6$s$h\n", ok, cases[i].line);
        snprintf(why, sizeof why, "3: %s", cases[i].why);
        expect_error(DIR_USER, text, why);
    }
}

static void test_dir_address_length_limit(void **state)
{
    (void)state;
    char addr[DIR_ADDR_MAX + 2], text[DIR_ADDR_MAX + 64], err[ERRLEN];
    memset(addr, 'a', sizeof addr);
    memcpy(addr + DIR_ADDR_MAX - 2, "@x", 3); /* exactly 256 octets */
    snprintf(text, sizeof text, "%s:$6$s$h\n", addr);
    struct dir *d = load_one(DIR_USER, text, err);
    assert_non_null(d);
    assert_int_equal(dir_lookup(d, addr, DIR_ADDR_MAX), DIR_USER);
    dir_free(d);
    memset(addr, 'a', sizeof addr);
    memcpy(addr + DIR_ADDR_MAX - 1, "@x", 3); /* 257 octets */
    snprintf(text, sizeof text, "%s:$6$s$h\n", addr);
    expect_error(DIR_USER, text, "1: bad address: longer than 256 octets");
    snprintf(text, sizeof text, "g@x: %s\n", addr);
    expect_error(DIR_GROUP, text, "1: bad target: longer than 256 octets");
}

static void test_dir_target_files_bad_lines(void **state)
{
    (void)state;
    struct {
        const char *line, *why;
    } cases[] = {
        {"g@x t@y", "missing ':'"},
        {"g@x:", "no targets"},
        {"g@x:   ", "no targets"},
        {"g@x: t@y,", "bad target: empty"},
        {"g@x: t@y, , u@y", "bad target: empty"},
        {"g@x: ,t@y", "bad target: empty"},
        {"g@x: t@y u@y", "bad target: space or control character"},
        {"g@x: tony", "bad target: no '@'"},
        {"g@x: @y", "bad target: empty local part"},
        {"g@x: t@", "bad target: empty domain"},
        {"g@x: t\x1b@y", "bad target: space or control character"},
        {"g: t@y", "bad address: no '@'"},
        {"g @x: t@y", "bad address: space or control character"},
    };
    enum dir_kind kinds[] = {DIR_GROUP, DIR_ALIAS, DIR_LIST};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char text[ERRLEN], why[ERRLEN];
            snprintf(text, sizeof text, "ok@x: t@y\n\n%s\n", cases[i].line);
            snprintf(why, sizeof why, "3: %s", cases[i].why);
            expect_error(kinds[k], text, why);
        }
}

static void test_dir_target_files_good_lines(void **state)
{
    (void)state;
    char err[ERRLEN];
    struct dir *d =
        load_one(DIR_LIST,
                 "# lists\n"
                 "staff@Example.org: Alice@example.org,bob@example.org ,  Carol@Remote.NET\r\n"
                 "   one@example.org:only@elsewhere.com\n"
                 "self@example.org: self@example.org",
                 err);
    assert_non_null(d);
    assert_int_equal(dir_count(d), 3);
    size_t n = 0;
    const char *const *t = dir_targets(d, "STAFF@example.ORG", 17, &n);
    assert_int_equal(n, 3);
    assert_string_equal(t[0], "Alice@example.org"); /* kept as written */
    assert_string_equal(t[1], "bob@example.org");
    assert_string_equal(t[2], "Carol@Remote.NET");
    t = dir_targets(d, "one@example.org", 15, &n);
    assert_int_equal(n, 1);
    assert_string_equal(t[0], "only@elsewhere.com");
    assert_int_equal(kind(d, "self@example.org"), DIR_LIST);
    assert_null(dir_targets(d, "nobody@example.org", 18, &n));
    assert_int_equal(n, 0);
    assert_null(dir_user_hash(d, "one@example.org", 15));
    dir_free(d);
}

static void test_dir_missing_file(void **state)
{
    (void)state;
    char err[ERRLEN], want[ERRLEN];
    const char *p = path_of("does-not-exist");
    assert_null(dir_load(NULL, p, NULL, NULL, err, sizeof err));
    snprintf(want, sizeof want, "%s: No such file or directory", p);
    assert_string_equal(err, want);
    assert_null(dir_load(NULL, NULL, NULL, tmpdir, err, sizeof err));
    snprintf(want, sizeof want, "%s: Is a directory", tmpdir);
    assert_string_equal(err, want);
}

static void test_dir_duplicate_entries(void **state)
{
    (void)state;
    expect_error(DIR_USER, "a@x:$6$s$h\nb@x:$6$s$h\nA@X:*\n", "3: duplicate address 'A@X'");
    expect_error(DIR_ALIAS, "a@x: t@y\n# c\na@x: u@y\n", "3: duplicate address 'a@x'");
    expect_error(DIR_GROUP, "Grp@x: t@y\ngrp@X: t@y\n", "2: duplicate address 'grp@X'");
}

static void test_dir_lookup_kinds_and_precedence(void **state)
{
    (void)state;
    char err[ERRLEN];
    const char *u = put("u", "all@x:$6$s$h\nuser@x:$6$s$u\nua@x:$6$s$ua\n");
    const char *g = put("g", "all@x: g1@y\ngrp@x: g2@y, g3@y\ngal@x: from-groups@y\n");
    const char *a = put("a", "all@x: a1@y\ngal@x: from-aliases@y\nali@x: a2@y\n"
                             "al@x: from-aliases@y\nua@x: ua-target@y\n");
    const char *l = put("l", "all@x: l1@y\ngal@x: l2@y\nal@x: from-lists@y\nlst@x: l3@y\n");
    struct dir *d = dir_load(u, g, a, l, err, sizeof err);
    assert_non_null(d);
    assert_int_equal(dir_count(d), 8);
    assert_int_equal(kind(d, "user@x"), DIR_USER);
    assert_int_equal(kind(d, "grp@x"), DIR_GROUP);
    assert_int_equal(kind(d, "ali@x"), DIR_ALIAS);
    assert_int_equal(kind(d, "lst@x"), DIR_LIST);
    assert_int_equal(kind(d, "nobody@x"), DIR_NOT_FOUND);
    assert_int_equal(kind(d, "all@x"), DIR_USER);
    assert_string_equal(dir_user_hash(d, "all@x", 5), "$6$s$h");
    size_t n;
    assert_string_equal(dir_targets(d, "all@x", 5, &n)[0], "g1@y");
    assert_int_equal(kind(d, "gal@x"), DIR_GROUP);
    assert_string_equal(dir_targets(d, "gal@x", 5, &n)[0], "from-groups@y");
    assert_int_equal(n, 1);
    assert_int_equal(kind(d, "al@x"), DIR_ALIAS);
    assert_string_equal(dir_targets(d, "al@x", 4, &n)[0], "from-aliases@y");
    assert_int_equal(kind(d, "ua@x"), DIR_USER);
    assert_string_equal(dir_user_hash(d, "ua@x", 4), "$6$s$ua");
    assert_string_equal(dir_targets(d, "ua@x", 4, &n)[0], "ua-target@y");
    assert_string_equal(dir_targets(d, "grp@x", 5, &n)[1], "g3@y");
    assert_int_equal(n, 2);
    assert_null(dir_user_hash(d, "grp@x", 5));
    dir_free(d);
}

static void test_dir_kind_names(void **state)
{
    (void)state;
    assert_string_equal(dir_kind_name(DIR_USER), "Users");
    assert_string_equal(dir_kind_name(DIR_GROUP), "Groups");
    assert_string_equal(dir_kind_name(DIR_ALIAS), "Aliases");
    assert_string_equal(dir_kind_name(DIR_LIST), "Lists");
    assert_string_equal(dir_kind_name(DIR_NOT_FOUND), "");
    assert_string_equal(dir_kind_name((enum dir_kind)42), "");
}

static void test_dir_case_folding(void **state)
{
    (void)state;
    char err[ERRLEN];
    struct dir *d = load_one(DIR_ALIAS,
                             "Very.Long.Local.Part+Tag@Sub.Example.ORG: t@y\n"
                             "j\xc3\xb6rg@ex.de: t@y\n" /* jörg, UTF-8 */
                             "\xe1\xfa@ex.de: t@y\n"    /* high bytes ≠ 'A'|0x80 folded */
                             "AbCdEfG@Z: t@y\n"
                             "p`q@ex.de: t@y\n"
                             "p{q@ex.de: t@y\n",
                             err);
    assert_non_null(d);
    assert_int_equal(kind(d, "very.long.local.part+tag@sub.example.org"), DIR_ALIAS);
    assert_int_equal(kind(d, "VERY.LONG.LOCAL.PART+TAG@SUB.EXAMPLE.ORG"), DIR_ALIAS);
    assert_int_equal(kind(d, "vERY.lONG.lOCAL.pART+tAG@sUB.eXAMPLE.oRg"), DIR_ALIAS);
    assert_int_equal(kind(d, "very.long.local.part+tag@sub.example.orh"), DIR_NOT_FOUND);
    assert_int_equal(kind(d, "very.long.local.part+tag@sub.example.or"), DIR_NOT_FOUND);
    assert_int_equal(kind(d, "abcdefg@z"), DIR_ALIAS);
    assert_int_equal(kind(d, "ABCDEFG@Z"), DIR_ALIAS);
    assert_int_equal(kind(d, "J\xc3\xb6RG@EX.DE"), DIR_ALIAS);
    assert_int_equal(kind(d, "j\xc3\x96rg@ex.de"), DIR_NOT_FOUND); /* Ö is not ö */
    assert_int_equal(kind(d, "\xe1\xfa@ex.de"), DIR_ALIAS);
    assert_int_equal(kind(d, "\xc1\xda@ex.de"), DIR_NOT_FOUND);
    assert_int_equal(kind(d, "\xe1\xda@EX.DE"), DIR_NOT_FOUND);
    /* only letters fold: '@' (0x40) and '[' (0x5b) are not 'A'..'Z' */
    assert_int_equal(kind(d, "p`q@ex.de"), DIR_ALIAS);
    assert_int_equal(kind(d, "p@q@ex.de"), DIR_NOT_FOUND);
    assert_int_equal(kind(d, "p[q@ex.de"), DIR_NOT_FOUND);
    dir_free(d);
}

static void test_dir_lookup_edge_lengths(void **state)
{
    (void)state;
    char err[ERRLEN];
    struct dir *d = load_one(DIR_USER, "abcdefgh@example.org:*\n", err);
    assert_non_null(d);
    const char *a = "abcdefgh@example.orgXYZ";
    assert_int_equal(dir_lookup(d, a, 20), DIR_USER);
    assert_int_equal(dir_lookup(d, a, 19), DIR_NOT_FOUND);
    assert_int_equal(dir_lookup(d, a, 21), DIR_NOT_FOUND);
    assert_int_equal(dir_lookup(d, a, 0), DIR_NOT_FOUND);
    assert_int_equal(dir_lookup(d, NULL, 0), DIR_NOT_FOUND);
    assert_int_equal(dir_lookup(d, "abcdefgh@example.org\0", 21), DIR_NOT_FOUND);
    dir_free(d);
}

static void test_dir_locked_users_and_passwords(void **state)
{
    (void)state;
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    char h6[CRYPT_OUTPUT_SIZE], hy[CRYPT_OUTPUT_SIZE], text[4 * CRYPT_OUTPUT_SIZE];
    snprintf(h6, sizeof h6, "%s", crypt_r("s3cret", "$6$saltsaltsalt$", &cd));
    char *setting = crypt_gensalt_ra("$y$", 0, NULL, 0);
    assert_non_null(setting);
    snprintf(hy, sizeof hy, "%s", crypt_r("yes", setting, &cd));
    free(setting);
    assert_int_equal(hy[1], 'y');
    snprintf(text, sizeof text, "sha@x:%s\nyes@x:%s\nbang@x:!%s\nstar@x:*\nlk@x:*LK*\n", h6, hy,
             h6);
    char err[ERRLEN];
    struct dir *d = load_one(DIR_USER, text, err);
    assert_non_null(d);
    assert_true(dir_user_verify(d, "SHA@x", 5, "s3cret"));
    assert_false(dir_user_verify(d, "sha@x", 5, "s3cret!"));
    assert_false(dir_user_verify(d, "sha@x", 5, ""));
    assert_true(dir_user_verify(d, "yes@x", 5, "yes"));
    assert_false(dir_user_verify(d, "yes@x", 5, "no"));
    assert_false(dir_user_verify(d, "nobody@x", 8, "s3cret"));
    const char *locked[] = {"bang@x", "star@x", "lk@x"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(kind(d, locked[i]), DIR_USER);
        assert_true(dir_user_locked(d, locked[i], strlen(locked[i])));
    }
    assert_false(dir_user_verify(d, "bang@x", 6, "s3cret"));
    assert_string_equal(dir_user_hash(d, "bang@x", 6) + 1, h6);
    assert_false(dir_user_locked(d, "sha@x", 5));
    assert_false(dir_user_locked(d, "nobody@x", 8));
    dir_free(d);
}

static void test_dir_load_mem_matches_files(void **state)
{
    (void)state;
    const char users[] = "u@x:*"; /* no final newline */
    const char lists[] = "l@x: a@y, b@y\n";
    struct dir_source src[DIR_FILES] = {
        {"users", users, sizeof users - 1},
        {NULL, NULL, 0},
        {"aliases", "", 0},
        {"lists", lists, sizeof lists - 1},
    };
    char err[ERRLEN];
    struct dir *d = dir_load_mem(src, err, sizeof err);
    assert_non_null(d);
    assert_true(dir_configured(d));
    assert_int_equal(dir_count(d), 2);
    assert_int_equal(kind(d, "U@X"), DIR_USER);
    assert_int_equal(kind(d, "l@x"), DIR_LIST);
    dir_free(d);
    const char bad[] = "ok@x: a@y\nbad\0@x: a@y\n";
    src[3] = (struct dir_source){"lists", bad, sizeof bad - 1};
    assert_null(dir_load_mem(src, err, sizeof err));
    assert_string_equal(err, "lists:2: bad address: space or control character");
}

/* big_addr - the i-th generated address, upper-cased when upper. */
static void big_addr(char *buf, size_t len, unsigned i, bool upper, bool absent)
{
    snprintf(buf, len, upper ? "%sUSER%u.%x@DOMAIN%u.EXAMPLE" : "%suser%u.%x@domain%u.example",
             absent ? "no-" : "", i, i * 2654435761u, i % 97);
}

static void test_dir_100k_entries_found_and_absent_not(void **state)
{
    (void)state;
    const char *p = path_of("big");
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    char a[128];
    for (unsigned i = 0; i < BIG_N; i++) {
        big_addr(a, sizeof a, i, i % 2, false);
        fprintf(f, "%s:$6$%08x$abcdefghijklmnopqrstuvwxyz0123456789\n", a, i);
    }
    assert_int_equal(fclose(f), 0);
    char err[ERRLEN];
    struct dir *d = dir_load(p, NULL, NULL, NULL, err, sizeof err);
    assert_non_null(d);
    assert_int_equal(dir_count(d), BIG_N);
    for (unsigned i = 0; i < BIG_N; i++) {
        big_addr(a, sizeof a, i, !(i % 2), false);
        if (dir_lookup(d, a, strlen(a)) != DIR_USER)
            fail_msg("entry %u (%s) not found", i, a);
        char want[64];
        snprintf(want, sizeof want, "$6$%08x$", i);
        assert_memory_equal(dir_user_hash(d, a, strlen(a)), want, strlen(want));
        big_addr(a, sizeof a, i, i % 2, true);
        if (dir_lookup(d, a, strlen(a)) != DIR_NOT_FOUND)
            fail_msg("absent %u (%s) found", i, a);
    }
    dir_free(d);
}

static void test_dir_sample_hash_skips_locked(void **state)
{
    (void)state;
    static const char users[] = "a@x.test:!$6$locked$hash\nb@x.test:$6$salt$realhash\n";
    struct dir_source src[DIR_FILES] = {{"users", users, sizeof(users) - 1}};
    char err[256];
    struct dir *d = dir_load_mem(src, err, sizeof(err));
    assert_non_null(d);
    assert_string_equal(dir_sample_hash(d), "$6$salt$realhash");
    dir_free(d);
    static const char locked[] = "a@x.test:*$6$x$y\n";
    struct dir_source only[DIR_FILES] = {{"users", locked, sizeof(locked) - 1}};
    d = dir_load_mem(only, err, sizeof(err));
    assert_null(dir_sample_hash(d));
    dir_free(d);
    assert_null(dir_sample_hash(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dir_sample_hash_skips_locked),
        cmocka_unit_test(test_dir_not_configured),
        cmocka_unit_test(test_dir_empty_file_is_configured),
        cmocka_unit_test(test_dir_users_good_lines),
        cmocka_unit_test(test_dir_users_bad_lines),
        cmocka_unit_test(test_dir_address_length_limit),
        cmocka_unit_test(test_dir_target_files_bad_lines),
        cmocka_unit_test(test_dir_target_files_good_lines),
        cmocka_unit_test(test_dir_missing_file),
        cmocka_unit_test(test_dir_duplicate_entries),
        cmocka_unit_test(test_dir_lookup_kinds_and_precedence),
        cmocka_unit_test(test_dir_kind_names),
        cmocka_unit_test(test_dir_case_folding),
        cmocka_unit_test(test_dir_lookup_edge_lengths),
        cmocka_unit_test(test_dir_locked_users_and_passwords),
        cmocka_unit_test(test_dir_load_mem_matches_files),
        cmocka_unit_test(test_dir_100k_entries_found_and_absent_not),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
