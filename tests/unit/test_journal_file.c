/* test_journal_file.c - unit tests of the journal's file side
 * (core/journal_file.c) on a temporary workdir: names, jrn_put_file,
 * start-up recovery (files byte for byte, quarantine, no duplicates, files
 * already there, torn tails reported, segments freed as spares) and
 * jrn_check. Single-threaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal_file.h"
#include "spool.h"
#include "test_journal_util.h"

#define QA "0000000000000000000A"
#define QB "0000000000000000000B"
#define QC "0000000000000000000C"
#define QD "0000000000000000000D"
#define SEG_BYTES 8192

static char workdir[64];

/* path_of - workdir/sub (one of four rotating buffers). */
static const char *path_of(const char *sub)
{
    static char p[4][256];
    static unsigned next;
    char *s = p[next++ % 4];
    snprintf(s, sizeof(p[0]), "%s/%s", workdir, sub);
    return s;
}

/* rm_tree - remove path and everything below it. */
static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char sub[512];
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            rm_tree(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* setup - a fresh workdir with the queue folders. */
static int setup(void **state)
{
    (void)state;
    strcpy(workdir, "/tmp/test_journal_file.XXXXXX");
    if (!mkdtemp(workdir))
        return -1;
    char err[256];
    if (spool_prepare(workdir, err, sizeof(err)) < 0)
        return -1;
    return mkdir(path_of(JRN_DIR), 0750);
}

/* teardown - remove the workdir. */
static int teardown(void **state)
{
    (void)state;
    rm_tree(workdir);
    return 0;
}

/* read_file - the whole file at path (static buffer); NULL when absent. */
static const char *read_file(const char *path, size_t *len)
{
    static char buf[SEG_BYTES];
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    *len = fread(buf, 1, sizeof(buf) - 1, f);
    buf[*len] = 0;
    fclose(f);
    return buf;
}

/* write_file - create path with len octets of p. */
static void write_file(const char *path, const void *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* put_segment - write builder b as its segment file (SEG_BYTES, zero tail). */
static void put_segment(const struct tb *b, size_t len)
{
    char name[JRN_NAME_MAX], sub[128];
    jrn_seg_name(name, b->worker, b->segno);
    snprintf(sub, sizeof(sub), JRN_DIR "/%s", name);
    write_file(path_of(sub), b->buf, len);
}

/* count_dir - entries in workdir/sub (without . and ..). */
static int count_dir(const char *sub)
{
    DIR *d = opendir(path_of(sub));
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* file_is - workdir/sub holds exactly the string want. */
static void file_is(const char *sub, const char *want)
{
    size_t len = 0;
    const char *got = read_file(path_of(sub), &len);
    assert_non_null(got);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(got, want, len);
}

/* journal_two_workers - worker 0: two segments with A (over both), B
 * (quarantine), an open D; worker 1: one segment with C. */
static void journal_two_workers(struct tb *s1, struct tb *s2, struct tb *s3)
{
    tb_init(s1, 0, 1, SEG_BYTES);
    tb_init(s2, 0, 2, SEG_BYTES);
    tb_init(s3, 1, 5, SEG_BYTES);
    tb_seg(s1);
    tb_chunk(s1, QA, "Subject: a\r\n\r\nfirst half, ");
    tb_chunk(s1, QB, "quarantined body\r\n");
    tb_commit_body(s1, QB, JRN_F_QUARANTINE, "HEAD-B\n\n", "quarantined body\r\n");
    tb_seg(s2);
    tb_chunk(s2, QA, "second half\r\n");
    tb_chunk(s2, QD, "never committed");
    tb_commit_body(s2, QA, 0, "HEAD-A\n\n", "Subject: a\r\n\r\nfirst half, second half\r\n");
    tb_seg(s3);
    tb_chunk(s3, QC, "c body\r\n");
    tb_commit_body(s3, QC, 0, "HEAD-C\n\n", "c body\r\n");
    put_segment(s1, SEG_BYTES);
    put_segment(s2, SEG_BYTES);
    put_segment(s3, SEG_BYTES);
}

/* recover - jrn_recover_workdir with its report captured (static). */
static const char *recover(struct jrn_recover_stats *st, int want_rc)
{
    static char *text;
    size_t len;
    free(text);
    FILE *f = open_memstream(&text, &len);
    assert_int_equal(jrn_recover_workdir(workdir, f, st), want_rc);
    fclose(f);
    return text;
}

static void test_journal_file_names(void **state)
{
    (void)state;
    char name[JRN_NAME_MAX];
    bool spare;
    unsigned w;
    uint64_t segno;
    jrn_seg_name(name, 0x1f, 0x123456789abcdef0ull);
    assert_string_equal(name, "w1f-123456789abcdef0.jrn");
    assert_true(jrn_parse_name(name, &spare, &w, &segno));
    assert_false(spare);
    assert_int_equal(w, 0x1f);
    assert_int_equal(segno, 0x123456789abcdef0ull);
    jrn_spare_name(name, 7);
    assert_string_equal(name, "spare-0000000000000007.jrn");
    assert_true(jrn_parse_name(name, &spare, &w, &segno));
    assert_true(spare);
    assert_int_equal(segno, 7);
    assert_false(jrn_parse_name("w1F-123456789abcdef0.jrn", &spare, &w, &segno));
    assert_false(jrn_parse_name("w1f-123456789abcdef0.jr", &spare, &w, &segno));
    assert_false(jrn_parse_name("w1f-123456789abcdef0.jrnx", &spare, &w, &segno));
    assert_false(jrn_parse_name("spare-7.jrn", &spare, &w, &segno));
    assert_false(jrn_parse_name(".", &spare, &w, &segno));
}

static void test_journal_file_put_many_iovecs(void **state)
{
    (void)state;
    char want[300 * 3 + 1] = "";
    struct iovec iov[300];
    static const char *const parts[] = {"ab", "", "cde", "f"};
    size_t n = 0;
    for (int i = 0; i < 300; i++) {
        const char *p = parts[i % 4];
        iov[i] = (struct iovec){(void *)p, strlen(p)};
        memcpy(want + n, p, strlen(p));
        n += strlen(p);
    }
    want[n] = 0;
    int qfd = open(path_of("queue"), O_RDONLY | O_DIRECTORY);
    assert_true(qfd >= 0);
    assert_int_equal(jrn_put_file(qfd, QA, iov, 300), JRN_PUT_WRITTEN);
    file_is("queue/new/" QA, want);
    assert_int_equal(count_dir("queue/tmp"), 0);
    assert_int_equal(jrn_put_file(qfd, QA, iov, 300), JRN_PUT_PRESENT);
    assert_int_equal(jrn_put_file(qfd, QA, iov, 2), JRN_PUT_CONFLICT);
    file_is("queue/new/" QA, want);
    close(qfd);
}

static void test_journal_file_recover_materializes(void **state)
{
    (void)state;
    struct tb s1, s2, s3;
    journal_two_workers(&s1, &s2, &s3);
    struct jrn_recover_stats st;
    recover(&st, 0);
    file_is("queue/new/" QA, "HEAD-A\n\nSubject: a\r\n\r\nfirst half, second half\r\n");
    file_is("quarantine/new/" QB, "HEAD-B\n\nquarantined body\r\n");
    file_is("queue/new/" QC, "HEAD-C\n\nc body\r\n");
    assert_int_equal(count_dir("queue/new"), 2);
    assert_int_equal(count_dir("quarantine/new"), 1);
    assert_int_equal(count_dir("queue/tmp"), 0);
    assert_int_equal(st.workers, 2);
    assert_int_equal(st.segments, 3);
    assert_int_equal(st.committed, 3);
    assert_int_equal(st.written, 3);
    assert_int_equal(st.present, 0);
    assert_int_equal(st.uncommitted, 1);
    assert_int_equal(st.torn, 0);
    /* the segments are spares now, numbered past every old segno */
    struct jrn_dirlist l;
    assert_int_equal(jrn_dir_scan(path_of(JRN_DIR), &l), 0);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.nspare, 3);
    assert_string_equal(l.v[0].name, "spare-0000000000000006.jrn");
    assert_int_equal(l.v[0].size, SEG_BYTES);
    assert_int_equal(st.next_segno, 9);
    assert_int_equal(l.next_segno, 9);
    jrn_dirlist_free(&l);
    /* a second start: nothing to replay, no duplicates */
    recover(&st, 0);
    assert_int_equal(st.segments, 0);
    assert_int_equal(st.written, 0);
    assert_int_equal(st.next_segno, 9);
    assert_int_equal(count_dir("queue/new"), 2);
    /* a crash before the renames: the same segments again */
    put_segment(&s1, SEG_BYTES);
    put_segment(&s2, SEG_BYTES);
    put_segment(&s3, SEG_BYTES);
    recover(&st, 0);
    assert_int_equal(st.written, 0);
    assert_int_equal(st.present, 3);
    assert_int_equal(count_dir("queue/new"), 2);
    assert_int_equal(count_dir("quarantine/new"), 1);
    assert_int_equal(st.next_segno, 12);
    tb_free(&s1);
    tb_free(&s2);
    tb_free(&s3);
}

/* test_journal_file_existing_files_checked_by_content - recovery keeps a
 * new/ file only when it is the message byte for byte: one of the right size
 * but other content (data lost in a power cut after its rename) and a short
 * one are both rewritten from the journal. */
static void test_journal_file_existing_files_checked_by_content(void **state)
{
    (void)state;
    struct tb s1, s2, s3;
    journal_two_workers(&s1, &s2, &s3);
    const char *a = "HEAD-A\n\nSubject: a\r\n\r\nfirst half, second half\r\n";
    char same_size[128];
    memset(same_size, 0, sizeof(same_size)); /* zeros, as after a cut */
    write_file(path_of("queue/new/" QA), same_size, strlen(a));
    write_file(path_of("queue/new/" QC), "short", 5);
    write_file(path_of("quarantine/new/" QB), "HEAD-B\n\nquarantined body\r\n",
               strlen("HEAD-B\n\nquarantined body\r\n")); /* intact: kept */
    struct jrn_recover_stats st;
    const char *rep = recover(&st, 0);
    file_is("queue/new/" QA, a);
    file_is("queue/new/" QC, "HEAD-C\n\nc body\r\n");
    file_is("quarantine/new/" QB, "HEAD-B\n\nquarantined body\r\n");
    assert_int_equal(st.present, 1);
    assert_int_equal(st.repaired, 2);
    assert_int_equal(st.written, 0);
    assert_non_null(strstr(rep, "queue/new/" QC " was incomplete"));
    tb_free(&s1);
    tb_free(&s2);
    tb_free(&s3);
}

/* test_journal_file_active_counts_as_present - a message the delivery
 * engine has already moved to queue/active/ is not written to new/ again;
 * a damaged copy there is rewritten in place. */
static void test_journal_file_active_counts_as_present(void **state)
{
    (void)state;
    struct tb s1, s2, s3;
    journal_two_workers(&s1, &s2, &s3);
    const char *a = "HEAD-A\n\nSubject: a\r\n\r\nfirst half, second half\r\n";
    assert_int_equal(mkdir(path_of("queue/active"), 0750), 0);
    write_file(path_of("queue/active/" QA), a, strlen(a));
    write_file(path_of("queue/active/" QC), "zzzz", 4);
    struct jrn_recover_stats st;
    recover(&st, 0);
    assert_int_equal(access(path_of("queue/new/" QA), F_OK), -1);
    assert_int_equal(access(path_of("queue/new/" QC), F_OK), -1);
    file_is("queue/active/" QA, a);
    file_is("queue/active/" QC, "HEAD-C\n\nc body\r\n");
    assert_int_equal(st.present, 1);
    assert_int_equal(st.repaired, 1);
    tb_free(&s1);
    tb_free(&s2);
    tb_free(&s3);
}

static void test_journal_file_torn_tail_reported_and_checked(void **state)
{
    (void)state;
    struct tb s1, s2, s3;
    journal_two_workers(&s1, &s2, &s3);
    /* segment 2 cut in the middle of A's commit: A is lost, B and C stay */
    uint8_t *cut = calloc(1, SEG_BYTES);
    size_t torn_at = s2.rec_off[3];
    memcpy(cut, s2.buf, torn_at + 30);
    struct tb t = s2;
    t.buf = cut;
    put_segment(&t, SEG_BYTES);
    char *text;
    size_t len;
    FILE *f = open_memstream(&text, &len);
    assert_int_equal(jrn_check(workdir, f), 1);
    fclose(f);
    assert_non_null(strstr(text, "worker 00: 2 segments (1..2)"));
    assert_non_null(
        strstr(text, "1 committed messages after the checkpoint (1 missing from new/)"));
    assert_non_null(strstr(text, "2 uncommitted"));
    char want[128];
    snprintf(want, sizeof(want), "torn tail in w00-0000000000000002.jrn at offset %zu: 30 octets",
             torn_at);
    assert_non_null(strstr(text, want));
    assert_non_null(strstr(text, "worker 01: 1 segments"));
    assert_non_null(strstr(text, "damaged"));
    free(text);
    assert_int_equal(count_dir("queue/new"), 0); /* the check writes nothing */
    struct jrn_recover_stats st;
    const char *rep = recover(&st, 0);
    assert_non_null(strstr(rep, want));
    assert_int_equal(st.torn, 1);
    assert_int_equal(st.written, 2);
    assert_null(read_file(path_of("queue/new/" QA), &len));
    /* after recovery the journal is empty and sound */
    f = open_memstream(&text, &len);
    assert_int_equal(jrn_check(workdir, f), 0);
    fclose(f);
    assert_non_null(strstr(text, "0 segments, 3 spares"));
    assert_non_null(strstr(text, "sound"));
    free(text);
    free(cut);
    tb_free(&s1);
    tb_free(&s2);
    tb_free(&s3);
}

static void test_journal_file_missing_folder_is_empty(void **state)
{
    (void)state;
    rmdir(path_of(JRN_DIR));
    struct jrn_dirlist l;
    assert_int_equal(jrn_dir_scan(path_of(JRN_DIR), &l), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(l.next_segno, 1);
    char *text;
    size_t len;
    FILE *f = open_memstream(&text, &len);
    assert_int_equal(jrn_check(workdir, f), 0);
    fclose(f);
    free(text);
    struct jrn_recover_stats st;
    recover(&st, 0);
    assert_int_equal(st.next_segno, 1);
    struct stat sb;
    assert_int_equal(stat(path_of(JRN_DIR), &sb), 0); /* created for the writer */
}

static void test_journal_file_failure_keeps_segments(void **state)
{
    (void)state;
    struct tb s1, s2, s3;
    journal_two_workers(&s1, &s2, &s3);
    rm_tree(path_of("queue/new"));
    const char *rep = recover(NULL, -ENOENT);
    assert_non_null(strstr(rep, "cannot write queue/new/"));
    struct jrn_dirlist l;
    assert_int_equal(jrn_dir_scan(path_of(JRN_DIR), &l), 0);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.nspare, 0); /* nothing freed: the next start tries again */
    jrn_dirlist_free(&l);
    assert_int_equal(count_dir("queue/tmp"), 0);
    tb_free(&s1);
    tb_free(&s2);
    tb_free(&s3);
}

/* commit_skip - a JRN_F_SKIP commit of qid: body (its length, CRC), the
 * head string head, skip octets of the body left out of the file. */
static void commit_skip(struct tb *b, const char *qid, const char *head, const char *body,
                        uint64_t skip)
{
    uint8_t fixed[JRN_COMMIT_FIXED], tail[256];
    size_t hl = strlen(head);
    assert_true(hl + 8 <= sizeof tail);
    jrn_commit_fixed(fixed, strlen(body), crc32c(0, body, strlen(body)), (uint32_t)hl);
    memcpy(tail, head, hl);
    for (int i = 0; i < 8; i++)
        tail[hl + i] = (uint8_t)(skip >> (8 * i));
    tb_rec(b, JRN_COMMIT, JRN_F_SKIP, qid, fixed, sizeof fixed, tail, hl + 8);
}

/* test_journal_file_recover_skips_edited_headers - a commit with JRN_F_SKIP
 * (a milter's chgheader: the head ends with the rewritten header section)
 * is recovered as head + the body after the skipped octets, even when the
 * skip ends inside a chunk; found present the second time; a skip past the
 * body is a malformed commit. */
static void test_journal_file_recover_skips_edited_headers(void **state)
{
    (void)state;
    struct tb s1;
    tb_init(&s1, 0, 1, SEG_BYTES);
    tb_seg(&s1);
    tb_chunk(&s1, QA, "Subject: a\r\n");
    tb_chunk(&s1, QA, "X: 1\r\n\r\nbody\r\n");
    commit_skip(&s1, QA, "HEAD-A\n\nSubject: b\r\n\r\n", "Subject: a\r\nX: 1\r\n\r\nbody\r\n", 20);
    tb_chunk(&s1, QB, "short");
    commit_skip(&s1, QB, "HEAD-B\n\n", "short", 6);
    put_segment(&s1, SEG_BYTES);
    struct jrn_recover_stats st;
    recover(&st, 0);
    file_is("queue/new/" QA, "HEAD-A\n\nSubject: b\r\n\r\nbody\r\n");
    assert_int_equal(count_dir("queue/new"), 1);
    assert_int_equal(st.written, 1);
    put_segment(&s1, SEG_BYTES);
    recover(&st, 0);
    assert_int_equal(st.written, 0);
    assert_int_equal(st.present, 1);
    tb_free(&s1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_journal_file_names),
        cmocka_unit_test_setup_teardown(test_journal_file_put_many_iovecs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_file_recover_materializes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_file_existing_files_checked_by_content, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_journal_file_active_counts_as_present, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_journal_file_torn_tail_reported_and_checked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_journal_file_missing_folder_is_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_file_failure_keeps_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_file_recover_skips_edited_headers, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
