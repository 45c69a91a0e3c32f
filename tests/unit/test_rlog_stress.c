/* test_rlog_stress.c - the receivelog under load: 4 producer threads x 200k
 * numbered lines through tiny rings (constant wraps and full-ring stalls)
 * with the real flusher thread; afterwards every line is in the file
 * exactly once, each producer's lines in order, time stamps non-decreasing.
 * Description: run under ThreadSanitizer by make test. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "rlog.h"
#include "test_rlog_util.h"

#define HOST "mx.test"
#define PRODUCERS 4
#define LINES 200000u
#define RING_BYTES 8192u
#define SID_BASE 0x5e550000u

struct producer {
    struct rlog_ring *ring;
    uint32_t sid;
};

/* produce - LINES numbered lines of one session. */
static void *produce(void *arg)
{
    struct producer *p = arg;
    char line[64];
    memcpy(line, "stress seq ", 11);
    for (uint32_t i = 0; i < LINES; i++) {
        int n = snprintf(line + 11, sizeof(line) - 11, "%u", i);
        rlog_put(p->ring, p->sid, (i & 1) ? RLOG_INTERNAL : RLOG_DIALOG, line, 11 + (size_t)n);
    }
    return NULL;
}

/* read_all_days - the host folder's day files concatenated in date order. */
static char *read_all_days(const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    assert_true(n > 2);
    size_t total = 0;
    char *all = calloc(1, 1);
    for (int i = 0; i < n; i++) {
        if (strstr(names[i]->d_name, ".log")) {
            char *p = t_path("%s/%s", dir, names[i]->d_name);
            size_t len = 0;
            char *s = t_read(p, &len);
            assert_non_null(s);
            all = realloc(all, total + len + 1);
            memcpy(all + total, s, len + 1);
            total += len;
            free(s);
            free(p);
        }
        free(names[i]);
    }
    free(names);
    return all;
}

/* line_time - seconds of " [dd/Mon/yyyy:HH:MM:SS]" (TZ=UTC). */
static time_t line_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *e = strptime(s + 2, "%d/%b/%Y:%H:%M:%S", &tm);
    assert_non_null(e);
    assert_int_equal(*e, ']');
    return timegm(&tm);
}

/* check_file - exactly once, in order per producer, time non-decreasing. */
static void check_file(char *all)
{
    uint32_t next[PRODUCERS] = {0};
    time_t prev = 0;
    char prev_stamp[24] = "";
    size_t lines = 0;
    for (char *s = all, *nl; *s; s = nl + 1) {
        nl = strchr(s, '\n');
        assert_non_null(nl);
        *nl = 0;
        if (memcmp(prev_stamp, s, sizeof(prev_stamp) - 1) != 0) {
            time_t t = line_time(s);
            assert_true(t >= prev);
            prev = t;
            memcpy(prev_stamp, s, sizeof(prev_stamp) - 1);
        }
        unsigned sid, seq;
        assert_int_equal(sscanf(s + 25, "%8X, stress seq %u", &sid, &seq), 2);
        assert_true(sid >= SID_BASE && sid < SID_BASE + PRODUCERS);
        assert_int_equal(seq, next[sid - SID_BASE]);
        next[sid - SID_BASE]++;
        lines++;
    }
    for (int k = 0; k < PRODUCERS; k++)
        assert_int_equal(next[k], LINES);
    assert_int_equal(lines, (size_t)PRODUCERS * LINES);
}

/* test_rlog_stress_producers - see the file comment. */
static void test_rlog_stress_producers(void **state)
{
    (void)state;
    char *wd = t_mkdtemp();
    char *top = t_path("%s/%s", wd, "receivelog");
    char *dir = t_path("%s/%s", top, HOST);
    assert_int_equal(mkdir(top, 0755), 0);
    struct rlog_opts o = {
        .workdir = wd, .host = HOST, .nrings = PRODUCERS, .ring_bytes = RING_BYTES};
    struct rlog *l = rlog_create(&o);
    assert_non_null(l);
    assert_int_equal(rlog_start(l), 0);
    pthread_t th[PRODUCERS];
    struct producer p[PRODUCERS];
    for (int k = 0; k < PRODUCERS; k++) {
        p[k].ring = rlog_ring(l, (unsigned)k);
        p[k].sid = SID_BASE + (uint32_t)k;
        assert_true(rlog_on(p[k].ring));
        assert_int_equal(pthread_create(&th[k], NULL, produce, &p[k]), 0);
    }
    for (int k = 0; k < PRODUCERS; k++)
        pthread_join(th[k], NULL);
    rlog_stop(l);
    struct rlog_stats st;
    rlog_get_stats(l, &st);
    assert_int_equal(st.lines_written, (uint64_t)PRODUCERS * LINES);
    assert_int_equal(st.lines_dropped, 0);
    fprintf(stderr, "stress: %llu lines, %llu stalls\n", (unsigned long long)st.lines_written,
            (unsigned long long)st.stalls);
    rlog_destroy(l);
    char *all = read_all_days(dir);
    check_file(all);
    free(all);
    t_rmrf(wd);
    free(dir);
    free(top);
    free(wd);
}

int main(void)
{
    t_use_utc();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rlog_stress_producers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
