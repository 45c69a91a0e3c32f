/* test_rlog_retain.c - receivelog retention with a fake clock: day files
 * older than keep_days are deleted, .log files older than compress_after
 * days become .log.gz (content checked with zlib, an existing .gz gains a
 * member), other files are left alone, and the scan runs again on a new day.
 * Description: single-threaded, TZ=UTC, temp folders under /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>
#include <cmocka.h>

#include "rlog.h"
#include "test_rlog_util.h"

#define HOST "mx.test"
#define BIG (600u << 10) /* more than one compression slice */

/* put_file - create dir/name with len bytes of s (repeated). */
static void put_file(const char *dir, const char *name, const char *s, size_t len)
{
    char *p = t_path("%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    size_t k = strlen(s);
    for (size_t i = 0; i < len; i += k)
        fwrite(s, 1, len - i < k ? len - i : k, f);
    fclose(f);
    free(p);
}

/* put_gz - create dir/name as gzip of s. */
static void put_gz(const char *dir, const char *name, const char *s)
{
    char *p = t_path("%s/%s", dir, name);
    gzFile g = gzopen(p, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, s, (unsigned)strlen(s)), (int)strlen(s));
    assert_int_equal(gzclose(g), Z_OK);
    free(p);
}

/* gunzip - whole decompressed content of dir/name, or NULL. */
static char *gunzip(const char *dir, const char *name, size_t *len)
{
    char *p = t_path("%s/%s", dir, name);
    gzFile g = gzopen(p, "rb");
    free(p);
    if (!g)
        return NULL;
    size_t cap = BIG * 2, n = 0;
    char *b = malloc(cap + 1);
    int k;
    while ((k = gzread(g, b + n, (unsigned)(cap - n))) > 0)
        n += (size_t)k;
    assert_int_equal(gzclose(g), Z_OK);
    b[n] = 0;
    *len = n;
    return b;
}

/* has - does dir/name exist? */
static bool has(const char *dir, const char *name)
{
    char *p = t_path("%s/%s", dir, name);
    bool r = t_exists(p);
    free(p);
    return r;
}

/* check_gz - dir/name decompresses to want (len bytes of the pattern). */
static void check_gz(const char *dir, const char *name, const char *head, const char *pat,
                     size_t len)
{
    size_t n;
    char *s = gunzip(dir, name, &n);
    assert_non_null(s);
    size_t h = strlen(head), k = strlen(pat);
    assert_int_equal(n, h + len);
    assert_memory_equal(s, head, h);
    for (size_t i = 0; i < len; i += k)
        assert_memory_equal(s + h + i, pat, len - i < k ? len - i : k);
    free(s);
}

/* test_rlog_retain_delete_compress - the rules on a folder of day files. */
static void test_rlog_retain_delete_compress(void **state)
{
    (void)state;
    char *wd = t_mkdtemp();
    char *top = t_path("%s/%s", wd, "receivelog");
    char *dir = t_path("%s/%s", top, HOST);
    assert_int_equal(mkdir(top, 0755), 0);
    assert_int_equal(mkdir(dir, 0755), 0);
    put_file(dir, "20240101.log", "old1\n", 5);
    put_gz(dir, "20231231.log.gz", "older\n");
    put_file(dir, "20240105.log", "day5\n", 5);
    put_file(dir, "20240106.log", "big line of day six\n", BIG);
    put_file(dir, "20240107.log", "day7\n", 5);
    put_gz(dir, "20240107.log.gz", "earlier\n");
    put_file(dir, "20240108.log", "day8\n", 5);
    put_file(dir, "20240110.log", "today\n", 6);
    put_file(dir, "notes.txt", "keep me\n", 8);
    put_file(dir, "20241399.log", "not a date\n", 11);

    struct fake_clock clk;
    fake_clock_set(&clk, t_utc(2024, 1, 10, 12, 0, 0));
    struct rlog_opts o = {.workdir = wd,
                          .host = HOST,
                          .nrings = 1,
                          .ring_bytes = 1u << 16,
                          .keep_days = 5,
                          .compress_after_days = 2,
                          .clock = fake_clock_read,
                          .clock_arg = &clk};
    struct rlog *l = rlog_create(&o);
    assert_non_null(l);
    for (int i = 0; i < 10; i++)
        rlog_flush_now(l);

    assert_false(has(dir, "20240101.log"));
    assert_false(has(dir, "20231231.log.gz"));
    assert_false(has(dir, "20240105.log"));
    check_gz(dir, "20240105.log.gz", "", "day5\n", 5);
    assert_false(has(dir, "20240106.log"));
    check_gz(dir, "20240106.log.gz", "", "big line of day six\n", BIG);
    assert_false(has(dir, "20240107.log"));
    check_gz(dir, "20240107.log.gz", "earlier\n", "day7\n", 5);
    assert_true(has(dir, "20240108.log"));
    assert_false(has(dir, "20240108.log.gz"));
    assert_true(has(dir, "20240110.log"));
    assert_true(has(dir, "notes.txt"));
    assert_true(has(dir, "20241399.log"));
    assert_false(has(dir, "20240106.log.gz.tmp"));

    /* next day: day 8 is now 3 days old, day 5 is 6 days old */
    fake_clock_set(&clk, t_utc(2024, 1, 11, 12, 0, 0));
    rlog_flush_now(l);
    assert_false(has(dir, "20240108.log"));
    check_gz(dir, "20240108.log.gz", "", "day8\n", 5);
    assert_false(has(dir, "20240105.log.gz"));
    assert_true(has(dir, "20240106.log.gz"));
    assert_true(has(dir, "20240110.log"));

    rlog_stop(l);
    rlog_destroy(l);
    t_rmrf(wd);
    free(dir);
    free(top);
    free(wd);
}

/* test_rlog_retain_off_by_default - with 0/0 nothing is touched. */
static void test_rlog_retain_off_by_default(void **state)
{
    (void)state;
    char *wd = t_mkdtemp();
    char *top = t_path("%s/%s", wd, "receivelog");
    char *dir = t_path("%s/%s", top, HOST);
    assert_int_equal(mkdir(top, 0755), 0);
    assert_int_equal(mkdir(dir, 0755), 0);
    put_file(dir, "20000101.log", "ancient\n", 8);
    struct fake_clock clk;
    fake_clock_set(&clk, t_utc(2024, 1, 10, 12, 0, 0));
    struct rlog_opts o = {
        .workdir = wd, .host = HOST, .nrings = 1, .clock = fake_clock_read, .clock_arg = &clk};
    struct rlog *l = rlog_create(&o);
    rlog_flush_now(l);
    assert_true(has(dir, "20000101.log"));
    assert_false(has(dir, "20000101.log.gz"));
    rlog_stop(l);
    rlog_destroy(l);
    t_rmrf(wd);
    free(dir);
    free(top);
    free(wd);
}

int main(void)
{
    t_use_utc();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rlog_retain_delete_compress),
        cmocka_unit_test(test_rlog_retain_off_by_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
