/* follow.c - `mxlog follow`: tails the newest day file of a host folder,
 * reconstructs sessions as lines arrive and prints each verdict when its
 * transaction or session ends. It switches to a newer day file when one
 * appears (midnight; no clock needed), finishing the old one first, and
 * keeps reading its open file while the receivelog folder is renamed
 * away; when the path is back it continues (same file) or starts the new
 * file from its beginning. Main thread. */
#include "follow.h"

#include "input.h"
#include "out.h"
#include "verdict.h"
#include "why.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FOLLOW_BUF (1u << 20)

struct follow {
    struct mxl_opts *o;
    struct mxl_query q;
    bool filtered;
    struct mxl_out out;
    char folder[4096];
    uint32_t day; /* of the open file */
    int fd;
    dev_t dev;
    ino_t ino;
    char *buf;
    size_t len; /* bytes held (a partial last line) */
    struct mxl_engine *e;
};

/* on_txn - print a matching transaction as soon as it ends. */
static void on_txn(void *arg, struct mxl_sess *s, const struct mxl_txn *x)
{
    struct follow *f = arg;
    if (f->filtered && !mxl_txn_matches(&f->q, s, x))
        return;
    mxl_out_txn(&f->out, s, x);
    s->mark = 1;
    fflush(stdout);
}

/* on_sess - a notable session ends. */
static void on_sess(void *arg, struct mxl_sess *s)
{
    struct follow *f = arg;
    if (!mxl_sess_notable(s) || (f->filtered && !mxl_sess_matches(&f->q, s) && !s->mark))
        return;
    mxl_out_sess(&f->out, s, true);
    fflush(stdout);
}

/* newest_day - the newest YYYYMMDD.log in the folder (0 when none). */
static uint32_t newest_day(const char *folder)
{
    DIR *d = opendir(folder);
    if (!d)
        return 0;
    uint32_t best = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        bool gz;
        uint32_t day = mxl_day_of_name(de->d_name, &gz);
        if (day && !gz && day > best)
            best = day;
    }
    closedir(d);
    return best;
}

/* day_path - <folder>/<day>.log */
static void day_path(const struct follow *f, uint32_t day, char *out, size_t cap)
{
    if (snprintf(out, cap, "%s/%08u.log", f->folder, (unsigned)day) < 0)
        out[0] = 0;
}

/* open_day - open a day file, at its end (at_end) or its start. */
static bool open_day(struct follow *f, uint32_t day, bool at_end)
{
    char path[4200];
    day_path(f, day, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    if (at_end)
        lseek(fd, 0, SEEK_END);
    if (f->fd >= 0)
        close(f->fd);
    f->fd = fd;
    f->day = day;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->len = 0;
    return true;
}

/* drain - read and process everything the open file has now. */
static bool drain(struct follow *f)
{
    for (;;) {
        ssize_t r = read(f->fd, f->buf + f->len, FOLLOW_BUF - f->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "mxlog: follow: read: %s\n", strerror(errno));
            return false;
        }
        if (r == 0)
            return true;
        f->len += (size_t)r;
        const char *last = memrchr(f->buf, '\n', f->len);
        size_t whole = last ? (size_t)(last - f->buf) + 1 : 0;
        if (!whole && f->len == FOLLOW_BUF)
            whole = f->len; /* a line longer than the buffer: cut it */
        if (!mxl_walk_buf(f->o, f->e, f->buf, whole ? whole - (last != NULL) : 0))
            return false;
        memmove(f->buf, f->buf + whole, f->len - whole);
        f->len -= whole;
    }
}

/* check_switch - a newer day file, or the path now names another file
 * (the folder came back with a new file): finish the old, open the new. */
static void check_switch(struct follow *f)
{
    uint32_t newest = newest_day(f->folder);
    if (f->fd < 0) {
        if (newest)
            open_day(f, newest, false);
        return;
    }
    if (newest > f->day) {
        drain(f);
        open_day(f, newest, false);
        return;
    }
    char path[4200];
    struct stat st;
    day_path(f, f->day, path, sizeof(path));
    if (stat(path, &st) == 0 && (st.st_dev != f->dev || st.st_ino != f->ino)) {
        drain(f);
        open_day(f, f->day, false);
    }
}

/* pick_host - the host folder to follow. */
static bool pick_host(struct follow *f, const char *host)
{
    char name[256] = "";
    if (host)
        snprintf(name, sizeof(name), "%s", host);
    else if (gethostname(name, sizeof(name) - 1) < 0)
        name[0] = 0;
    if (snprintf(f->folder, sizeof(f->folder), "%s/receivelog/%s", f->o->workdir, name) < 0)
        return false;
    struct stat st;
    if (host || stat(f->folder, &st) == 0)
        return true;
    struct mxl_file *files = NULL;
    size_t n = 0;
    char err[8192];
    struct mxl_sel sel = {f->o->workdir, 0, UINT32_MAX};
    if (mxl_list_files(&sel, &files, &n, err, sizeof(err)) == 0 && n &&
        snprintf(f->folder, sizeof(f->folder), "%s/receivelog/%s", f->o->workdir,
                 files[n - 1].host) < 0)
        f->folder[0] = 0;
    free(files);
    return true;
}

/* poll_ms - MXLOG_POLL_MS (tests), else 200 ms. */
static unsigned poll_ms(void)
{
    const char *s = getenv("MXLOG_POLL_MS");
    unsigned v = s ? (unsigned)strtoul(s, NULL, 10) : 0;
    return v ? v : 200;
}

/* mxl_follow - see follow.h. */
int mxl_follow(struct mxl_opts *o, const char *host, const char *filter)
{
    struct follow f = {
        .o = o, .fd = -1, .out = {.f = stdout, .json = o->json, .verbose = o->verbose}};
    if (filter && !(f.filtered = mxl_query_parse(filter, &f.q))) {
        fprintf(stderr, "mxlog: follow: bad filter\n");
        return 2;
    }
    if (f.filtered && f.q.type == MXL_Q_ADDR)
        f.out.focus = f.q.text;
    struct mxl_sink sink = {on_txn, on_sess, &f};
    f.buf = malloc(FOLLOW_BUF);
    f.e = mxl_engine_new(&sink, o->verbose);
    if (!f.buf || !f.e || !pick_host(&f, host)) {
        fprintf(stderr, "mxlog: out of memory\n");
        return 2;
    }
    uint32_t start = newest_day(f.folder);
    if (!start || !open_day(&f, start, true))
        fprintf(stderr, "mxlog: follow: waiting for a day file in %s\n", f.folder);
    mxl_engine_host(f.e, strrchr(f.folder, '/') + 1);
    struct timespec nap = {0, (long)poll_ms() * 1000000L};
    for (;;) {
        if (f.fd >= 0 && !drain(&f))
            return 2;
        check_switch(&f);
        nanosleep(&nap, NULL);
    }
}
