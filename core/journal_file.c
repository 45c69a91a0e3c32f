/* journal_file.c - the journal's files (see journal_file.h): segment and
 * spare names, listing <workdir>/queue/journal, materializing a message
 * into a queue folder, start-up recovery and the --check-queue report.
 * Blocking syscalls; the main thread at start-up (jrn_put_file: any). */
#include "journal_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal_recover.h"
#include "util.h"

void jrn_seg_name(char out[JRN_NAME_MAX], unsigned worker, uint64_t segno)
{
    snprintf(out, JRN_NAME_MAX, "w%02x-%016" PRIx64 ".jrn", worker & 0xFFu, segno);
}

void jrn_spare_name(char out[JRN_NAME_MAX], uint64_t segno)
{
    snprintf(out, JRN_NAME_MAX, "spare-%016" PRIx64 ".jrn", segno);
}

/* hex_field - n lower-case hex digits at s as a number; false otherwise. */
static bool hex_field(const char *s, int n, uint64_t *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return false;
        *v = *v << 4 | d;
    }
    return true;
}

bool jrn_parse_name(const char *name, bool *spare, unsigned *worker, uint64_t *segno)
{
    uint64_t w = 0;
    size_t len = strlen(name);
    if (len == 24 && name[0] == 'w' && name[3] == '-' && !strcmp(name + 20, ".jrn") &&
        hex_field(name + 1, 2, &w) && hex_field(name + 4, 16, segno)) {
        *spare = false;
        *worker = (unsigned)w;
        return true;
    }
    if (len == 26 && !strncmp(name, "spare-", 6) && !strcmp(name + 22, ".jrn") &&
        hex_field(name + 6, 16, segno)) {
        *spare = true;
        *worker = 0;
        return true;
    }
    return false;
}

/* file_cmp - qsort order of a listing: segments by (worker, segno), then
 * spares by segno. */
static int file_cmp(const void *a, const void *b)
{
    const struct jrn_file *x = a, *y = b;
    if (x->spare != y->spare)
        return x->spare ? 1 : -1;
    if (x->worker != y->worker)
        return x->worker < y->worker ? -1 : 1;
    return x->segno < y->segno ? -1 : x->segno > y->segno;
}

/* scan_entry - add entry name of d (folder fd dfd) to l when it is ours. */
static int scan_entry(int dfd, const char *name, struct jrn_dirlist *l, size_t *cap)
{
    struct jrn_file f = {0};
    struct stat sb;
    if (!jrn_parse_name(name, &f.spare, &f.worker, &f.segno))
        return 0;
    if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode))
        return 0;
    if (l->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct jrn_file *v = realloc(l->v, nc * sizeof(*v));
        if (!v)
            return -ENOMEM;
        l->v = v;
        *cap = nc;
    }
    memcpy(f.name, name, strlen(name) + 1); /* parsed: at most 26 octets */
    f.size = (uint64_t)sb.st_size;
    l->v[l->n++] = f;
    if (f.segno >= l->next_segno)
        l->next_segno = f.segno == UINT64_MAX ? UINT64_MAX : f.segno + 1;
    l->nspare += f.spare;
    return 0;
}

int jrn_dir_scan(const char *journal_dir, struct jrn_dirlist *out)
{
    memset(out, 0, sizeof(*out));
    out->next_segno = 1;
    DIR *d = opendir(journal_dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    size_t cap = 0;
    int rc = 0;
    struct dirent *e;
    errno = 0;
    while (rc == 0 && (e = readdir(d)) != NULL)
        rc = scan_entry(dirfd(d), e->d_name, out, &cap);
    if (rc == 0 && errno)
        rc = -errno;
    closedir(d);
    if (rc < 0) {
        jrn_dirlist_free(out);
        return rc;
    }
    if (out->n)
        qsort(out->v, out->n, sizeof(*out->v), file_cmp);
    return 0;
}

void jrn_dirlist_free(struct jrn_dirlist *l)
{
    free(l->v);
    memset(l, 0, sizeof(*l));
    l->next_segno = 1;
}

/* new_state - is <basefd>/new/<qid> there: PRESENT (size want), CONFLICT
 * (other size), -ENOENT, or another -errno. */
static int new_state(int basefd, const char *qid, uint64_t want)
{
    char path[64];
    struct stat sb;
    snprintf(path, sizeof(path), "new/%s", qid);
    if (fstatat(basefd, path, &sb, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    return (uint64_t)sb.st_size == want ? JRN_PUT_PRESENT : JRN_PUT_CONFLICT;
}

/* write_all - write iov[0..niov) to fd completely (IOV_MAX at a time). */
static int write_all(int fd, const struct iovec *iov, size_t niov)
{
    size_t i = 0, done = 0; /* done: octets of iov[i] already written */
    while (i < niov) {
        struct iovec part[64];
        int k = 0;
        for (size_t j = i; j < niov && k < 64; j++, k++)
            part[k] = iov[j];
        part[0].iov_base = (char *)part[0].iov_base + done;
        part[0].iov_len -= done;
        ssize_t w = writev(fd, part, k);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        size_t left = (size_t)w;
        while (i < niov && left >= iov[i].iov_len - done) {
            left -= iov[i].iov_len - done;
            done = 0;
            i++;
        }
        done += left;
    }
    return 0;
}

/* put_tmp - write tmp/<qid> = iov[0..niov) and rename it to <dir>/<qid>;
 * replace: over an existing file, else RENAME_NOREPLACE. 0 or -errno
 * (tmp/<qid> removed again). */
static int put_tmp(int basefd, const char *dir, const char *qid, const struct iovec *iov,
                   size_t niov, bool replace)
{
    char tmp[64], nw[64];
    snprintf(tmp, sizeof(tmp), "tmp/%s", qid);
    snprintf(nw, sizeof(nw), "%s/%s", dir, qid);
    int fd = openat(basefd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    int rc = write_all(fd, iov, niov);
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && renameat2(basefd, tmp, basefd, nw, replace ? 0 : RENAME_NOREPLACE) < 0)
        rc = -errno;
    if (rc < 0)
        unlinkat(basefd, tmp, 0);
    return rc;
}

int jrn_put_file(int basefd, const char *qid, const struct iovec *iov, size_t niov)
{
    uint64_t want = 0;
    for (size_t i = 0; i < niov; i++)
        want += iov[i].iov_len;
    int st = new_state(basefd, qid, want);
    if (st != -ENOENT)
        return st;
    int rc = put_tmp(basefd, "new", qid, iov, niov, false);
    if (rc == 0)
        return JRN_PUT_WRITTEN;
    if (rc == -EEXIST) /* appeared meanwhile */
        return new_state(basefd, qid, want);
    return rc;
}

/* same_content - does <dir>/<qid> hold exactly iov[0..niov)? 1 yes, 0 no,
 * -errno (-ENOENT: absent). Reads it in pieces. */
static int same_content(int basefd, const char *dir, const char *qid, const struct iovec *iov,
                        size_t niov)
{
    char path[64], buf[65536];
    snprintf(path, sizeof(path), "%s/%s", dir, qid);
    int fd = openat(basefd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    int same = 1;
    off_t off = 0;
    for (size_t i = 0; same == 1 && i < niov; i++) {
        const char *p = iov[i].iov_base;
        for (size_t done = 0; same == 1 && done < iov[i].iov_len;) {
            size_t want = iov[i].iov_len - done < sizeof(buf) ? iov[i].iov_len - done : sizeof(buf);
            ssize_t r = pread(fd, buf, want, off);
            if (r < 0)
                same = errno == EINTR ? 1 : -errno;
            else if (r == 0 || memcmp(buf, p + done, (size_t)r) != 0)
                same = 0;
            else
                done += (size_t)r, off += r;
        }
    }
    if (same == 1 && pread(fd, buf, 1, off) != 0)
        same = 0; /* longer than the message */
    close(fd);
    return same;
}

int jrn_recover_put(int basefd, const char *qid, const struct iovec *iov, size_t niov)
{
    /* a message the delivery engine has taken (new/ -> active/) is there,
     * not missing; it is checked like a file in new/ */
    static const char *const dirs[] = {"active", "new"};
    for (size_t i = 0; i < MX_ARRAY_LEN(dirs); i++) {
        int same = same_content(basefd, dirs[i], qid, iov, niov);
        if (same == -ENOENT || same == -ENOTDIR)
            continue;
        if (same < 0)
            return same;
        if (same == 1)
            return JRN_PUT_PRESENT;
        int rc = put_tmp(basefd, dirs[i], qid, iov, niov, true);
        return rc < 0 ? rc : JRN_PUT_REPAIRED;
    }
    return jrn_put_file(basefd, qid, iov, niov);
}

/* One worker's segments, mapped and planned. */
struct plan {
    unsigned worker;
    const struct jrn_file *files;
    size_t n;
    void **map; /* n mappings (NULL for empty files) */
    struct jrn_recovery *r;
    const struct jrn_msg *msgs;
    size_t nmsgs;
    struct jrn_stats st;
};

/* plan_release - unmap and free what plan_worker made. */
static void plan_release(struct plan *p)
{
    for (size_t i = 0; p->map && i < p->n; i++)
        if (p->map[i])
            munmap(p->map[i], p->files[i].size);
    free(p->map);
    jrn_recovery_free(p->r);
    memset(p, 0, sizeof(*p));
}

/* map_file - mmap segment f of folder jfd read-only (*out NULL when empty). */
static int map_file(int jfd, const struct jrn_file *f, void **out)
{
    *out = NULL;
    if (f->size == 0)
        return 0;
    if (f->size > UINT32_MAX)
        return -EFBIG;
    int fd = openat(jfd, f->name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED)
        return -e;
    *out = m;
    return 0;
}

/* plan_worker - map files[0..n) (one worker's segments, segno order) and
 * run the planner over them. 0, or -errno with the failing file in *bad. */
static int plan_worker(int jfd, const struct jrn_file *files, size_t n, struct plan *p,
                       const char **bad)
{
    memset(p, 0, sizeof(*p));
    p->worker = files[0].worker;
    p->files = files;
    p->n = n;
    p->map = calloc(n, sizeof(*p->map));
    p->r = jrn_recovery_new(p->worker);
    if (!p->map || !p->r)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        *bad = files[i].name;
        int rc = map_file(jfd, &files[i], &p->map[i]);
        if (rc == 0)
            rc = jrn_recovery_segment(p->r, files[i].segno, p->map[i], files[i].size);
        if (rc < 0)
            return rc;
    }
    *bad = "planner";
    return jrn_recovery_finish(p->r, &p->msgs, &p->nmsgs, &p->st);
}

/* group_len - how many entries from l->v[i] on are segments of its worker. */
static size_t group_len(const struct jrn_dirlist *l, size_t i)
{
    size_t j = i;
    while (j < l->n - l->nspare && l->v[j].worker == l->v[i].worker)
        j++;
    return j - i;
}

/* report_torn - one line per torn tail of p on f (NULL: silent). */
static void report_torn(const struct plan *p, FILE *f, const char *prefix)
{
    for (size_t i = 0; f && i < p->st.ntorn; i++) {
        char name[JRN_NAME_MAX];
        jrn_seg_name(name, p->worker, p->st.torn[i].segno);
        fprintf(f, "%storn tail in %s at offset %" PRIu64 ": %" PRIu64 " octets cut\n", prefix,
                name, p->st.torn[i].off, p->st.torn[i].cut);
    }
}

/* msg_iov - the iovecs of m's queue file (head, then the body's extents
 * from body_skip on) into a new array of *n <= 1 + m->next entries; NULL
 * on ENOMEM. */
static struct iovec *msg_iov(const struct jrn_recovery *r, const struct jrn_msg *m, size_t *n)
{
    struct iovec *iov = malloc((1 + m->next) * sizeof(*iov));
    if (!iov)
        return NULL;
    iov[0] = (struct iovec){(void *)m->head, m->head_len};
    *n = 1;
    uint64_t skip = m->body_skip;
    for (size_t i = 0; i < m->next; i++) {
        const uint8_t *p = jrn_recovery_bytes(r, &m->ext[i]);
        size_t len = m->ext[i].len;
        size_t cut = skip < len ? (size_t)skip : len;
        skip -= cut;
        if (len > cut)
            iov[(*n)++] = (struct iovec){(void *)(p + cut), len - cut};
    }
    return iov;
}

#define REPORT "mxringd: journal: "

/* Start-up recovery state. */
struct rctx {
    int jfd, qfd, xfd; /* journal, queue, quarantine folders */
    FILE *rep;
    struct jrn_recover_stats st;
};

/* put_msgs - materialize every message of p that new/ lacks. */
static int put_msgs(struct rctx *c, const struct plan *p)
{
    for (size_t i = 0; i < p->nmsgs; i++) {
        const struct jrn_msg *m = &p->msgs[i];
        bool q = m->flags & JRN_F_QUARANTINE;
        size_t niov = 0;
        struct iovec *iov = msg_iov(p->r, m, &niov);
        int rc = iov ? jrn_recover_put(q ? c->xfd : c->qfd, m->qid, iov, niov) : -ENOMEM;
        free(iov);
        if (rc < 0) {
            if (c->rep)
                fprintf(c->rep, REPORT "cannot write %s/new/%s: %s\n", q ? "quarantine" : "queue",
                        m->qid, strerror(-rc));
            return rc;
        }
        c->st.written += rc == JRN_PUT_WRITTEN;
        c->st.present += rc == JRN_PUT_PRESENT;
        c->st.repaired += rc == JRN_PUT_REPAIRED;
        if (rc == JRN_PUT_REPAIRED && c->rep)
            fprintf(c->rep,
                    REPORT "%s/new/%s was incomplete (lost in a crash): rewritten "
                           "from the journal\n",
                    q ? "quarantine" : "queue", m->qid);
    }
    return 0;
}

/* add_stats - fold one worker's planner statistics into s. */
static void add_stats(struct jrn_recover_stats *s, const struct jrn_stats *w)
{
    s->workers++;
    s->segments += w->segments;
    s->records += w->records;
    s->committed += w->committed;
    s->skipped += w->skipped;
    s->uncommitted += w->uncommitted;
    s->aborted += w->aborted;
    s->bad_body += w->bad_body;
    s->malformed += w->malformed;
    s->torn += w->ntorn;
}

/* recover_all - plan and materialize every worker's segments of l. */
static int recover_all(struct rctx *c, const struct jrn_dirlist *l)
{
    for (size_t i = 0; i < l->n - l->nspare;) {
        size_t n = group_len(l, i);
        struct plan p;
        const char *bad = l->v[i].name;
        int rc = plan_worker(c->jfd, &l->v[i], n, &p, &bad);
        if (rc < 0 && c->rep)
            fprintf(c->rep, REPORT "cannot read %s: %s\n", bad, strerror(-rc));
        if (rc == 0) {
            report_torn(&p, c->rep, REPORT);
            add_stats(&c->st, &p.st);
            rc = put_msgs(c, &p);
        }
        plan_release(&p);
        if (rc < 0)
            return rc;
        i += n;
    }
    return 0;
}

/* make_durable - one syncfs per file system holding the queue folders. */
static int make_durable(const struct rctx *c)
{
    struct stat a, b;
    if (syncfs(c->qfd) < 0)
        return -errno;
    if (fstat(c->qfd, &a) == 0 && fstat(c->xfd, &b) == 0 && a.st_dev != b.st_dev &&
        syncfs(c->xfd) < 0)
        return -errno;
    return 0;
}

/* free_segments - rename every segment of l to a spare numbered from
 * *next up, then fsync the journal folder. */
static int free_segments(const struct rctx *c, const struct jrn_dirlist *l, uint64_t *next)
{
    for (size_t i = 0; i < l->n - l->nspare; i++) {
        char spare[JRN_NAME_MAX];
        jrn_spare_name(spare, (*next)++);
        if (renameat2(c->jfd, l->v[i].name, c->jfd, spare, RENAME_NOREPLACE) < 0)
            return -errno;
    }
    return fsync(c->jfd) < 0 ? -errno : 0;
}

/* open_dirs - the three folders of a workdir; -errno (reported) on failure. */
static int open_dirs(struct rctx *c, const char *workdir)
{
    char path[4200];
    const char *sub[3] = {"/" JRN_DIR, "/queue", "/quarantine"};
    int *fd[3] = {&c->jfd, &c->qfd, &c->xfd};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s%s", workdir, sub[i]);
        if (i == 0 && mkdir(path, 0750) < 0 && errno != EEXIST)
            goto fail;
        *fd[i] = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (*fd[i] < 0)
            goto fail;
    }
    return 0;
fail:;
    int e = errno;
    if (c->rep)
        fprintf(c->rep, REPORT "%s: %s\n", path, strerror(e));
    return -e;
}

/* close_dirs - close what open_dirs opened. */
static void close_dirs(struct rctx *c)
{
    int *fd[3] = {&c->jfd, &c->qfd, &c->xfd};
    for (int i = 0; i < 3; i++)
        if (*fd[i] >= 0)
            close(*fd[i]);
}

/* report_summary - the one line saying what recovery did. */
static void report_summary(const struct rctx *c)
{
    const struct jrn_recover_stats *s = &c->st;
    if (!c->rep || s->segments == 0)
        return;
    fprintf(c->rep,
            REPORT "%u segments of %u workers: %" PRIu64 " committed messages after the "
                   "checkpoints (%" PRIu64 " written to new/, %" PRIu64 " already there, %" PRIu64
                   " rewritten), %" PRIu64 " uncommitted and %" PRIu64 " aborted transactions "
                   "dropped, %" PRIu64 " torn tails cut, %" PRIu64 " bad bodies, %" PRIu64
                   " malformed records\n",
            s->segments, s->workers, s->committed, s->written, s->present, s->repaired,
            s->uncommitted, s->aborted, s->torn, s->bad_body, s->malformed);
}

int jrn_recover_workdir(const char *workdir, FILE *report, struct jrn_recover_stats *st)
{
    struct rctx c = {.jfd = -1, .qfd = -1, .xfd = -1, .rep = report};
    struct jrn_dirlist l = {0};
    int rc = open_dirs(&c, workdir);
    char jdir[4200];
    snprintf(jdir, sizeof(jdir), "%s/" JRN_DIR, workdir);
    if (rc == 0 && (rc = jrn_dir_scan(jdir, &l)) < 0 && report)
        fprintf(report, REPORT "cannot list %s: %s\n", jdir, strerror(-rc));
    uint64_t next = l.next_segno;
    if (rc == 0)
        rc = recover_all(&c, &l);
    if (rc == 0 && l.n > l.nspare && (rc = make_durable(&c)) < 0 && report)
        fprintf(report, REPORT "syncfs %s: %s\n", workdir, strerror(-rc));
    if (rc == 0 && l.n > l.nspare && (rc = free_segments(&c, &l, &next)) < 0 && report)
        fprintf(report, REPORT "cannot free the segments of %s: %s\n", jdir, strerror(-rc));
    c.st.next_segno = next;
    if (rc == 0)
        report_summary(&c);
    if (st)
        *st = c.st;
    jrn_dirlist_free(&l);
    close_dirs(&c);
    return rc;
}

/* count_missing - how many of p's messages new/ lacks (or holds with
 * another size). */
static uint64_t count_missing(const struct rctx *c, const struct plan *p)
{
    uint64_t n = 0;
    for (size_t i = 0; i < p->nmsgs; i++) {
        const struct jrn_msg *m = &p->msgs[i];
        int fd = m->flags & JRN_F_QUARANTINE ? c->xfd : c->qfd;
        n += new_state(fd, m->qid, (uint64_t)m->head_len + m->body_len - m->body_skip) !=
             JRN_PUT_PRESENT;
    }
    return n;
}

/* check_worker - print one worker's summary line and its torn tails. */
static void check_worker(const struct rctx *c, const struct plan *p, FILE *out, bool *damaged)
{
    const struct jrn_stats *s = &p->st;
    fprintf(out,
            "worker %02x: %u segments (%" PRIu64 "..%" PRIu64 "), %" PRIu64 " records, %" PRIu64
            " committed messages after the checkpoint (%" PRIu64 " missing from new/), %" PRIu64
            " before it, %" PRIu64 " uncommitted, %" PRIu64 " aborted, %" PRIu64
            " bad bodies, %" PRIu64 " malformed, %zu torn tails\n",
            p->worker, s->segments, p->files[0].segno, s->last_segno, s->records, s->committed,
            count_missing(c, p), s->skipped, s->uncommitted, s->aborted, s->bad_body, s->malformed,
            s->ntorn);
    report_torn(p, out, "  ");
    if (s->ntorn || s->bad_body || s->malformed)
        *damaged = true;
}

int jrn_check(const char *workdir, FILE *out)
{
    struct rctx c = {.jfd = -1, .qfd = -1, .xfd = -1, .rep = out};
    struct jrn_dirlist l = {0};
    char jdir[4200];
    snprintf(jdir, sizeof(jdir), "%s/" JRN_DIR, workdir);
    int rc = jrn_dir_scan(jdir, &l);
    if (rc < 0)
        fprintf(out, "%s: %s\n", jdir, strerror(-rc));
    else
        fprintf(out, "journal %s: %zu segments, %zu spares, next segment number %" PRIu64 "\n",
                jdir, l.n - l.nspare, l.nspare, l.next_segno);
    if (rc == 0 && l.n > l.nspare)
        rc = open_dirs(&c, workdir);
    bool damaged = false;
    for (size_t i = 0; rc == 0 && i < l.n - l.nspare;) {
        size_t n = group_len(&l, i);
        struct plan p;
        const char *bad = l.v[i].name;
        rc = plan_worker(c.jfd, &l.v[i], n, &p, &bad);
        if (rc < 0)
            fprintf(out, "cannot read %s: %s\n", bad, strerror(-rc));
        else
            check_worker(&c, &p, out, &damaged);
        plan_release(&p);
        i += n;
    }
    if (rc == 0)
        fprintf(out, "%s\n",
                damaged ? "damaged: torn tails or bad records (recovery cuts them)" : "sound");
    jrn_dirlist_free(&l);
    close_dirs(&c);
    return rc < 0 ? rc : damaged;
}
