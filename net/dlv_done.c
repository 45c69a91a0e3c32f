/* dlv_done.c - finished messages, remembered for DLV_TOMB_S so that a copy
 * the queue journal's recovery writes again into new/ is dropped instead of
 * delivered twice (recovery rewrites every message committed after its last
 * checkpoint, at most 1 s old, that new/ lacks). A finished id goes into an
 * in-memory set and into an append-only log, state/done.<epoch> (one id a
 * line, epoch = time / DLV_TOMB_S), instead of a state file per message:
 * one write per loop turn for every message finished in it, then the
 * removal of their queue files (dlv_done_flush). The log is not fsynced,
 * like the state files: losing it only means duplicates. At start the logs
 * of this and the previous epoch are read back. Delivery thread only. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlv_int.h"

#define DONE_PREFIX "done."
#define DONE_HASH_MIN 1024u

/* A finished message. */
struct dlv_tomb {
    char id[QFILE_ID_LEN + 1];
    int64_t expire;
    struct dlv_tomb *fnext; /* oldest first */
    struct dlv_tomb *hnext; /* hash chain */
};

/* A queue file (and maybe its state file) to remove at the next flush. */
struct dlv_gone {
    char id[QFILE_ID_LEN + 1];
    bool queue_file, state_file;
};

/* set_grow - double the buckets when half full. */
static bool set_grow(struct dlv *d)
{
    if (d->tomb_hcap && d->ntomb < d->tomb_hcap / 2)
        return true;
    size_t ncap = d->tomb_hcap ? d->tomb_hcap * 2 : DONE_HASH_MIN;
    struct dlv_tomb **nh = calloc(ncap, sizeof(*nh));
    if (!nh)
        return false;
    for (struct dlv_tomb *t = d->tomb_head; t; t = t->fnext) {
        size_t b = dlv_id_hash(t->id) & (ncap - 1);
        t->hnext = nh[b];
        nh[b] = t;
    }
    free(d->tomb_hash);
    d->tomb_hash = nh;
    d->tomb_hcap = ncap;
    return true;
}

/* set_add - remember id until expire (kept in expiry order: expire is
 * never earlier than the tail's). */
static bool set_add(struct dlv *d, const char *id, int64_t expire)
{
    struct dlv_tomb *t = calloc(1, sizeof(*t));
    if (!t || !set_grow(d)) {
        free(t);
        return false;
    }
    memcpy(t->id, id, sizeof(t->id));
    t->expire = d->tomb_tail && d->tomb_tail->expire > expire ? d->tomb_tail->expire : expire;
    size_t b = dlv_id_hash(id) & (d->tomb_hcap - 1);
    t->hnext = d->tomb_hash[b];
    d->tomb_hash[b] = t;
    if (d->tomb_tail)
        d->tomb_tail->fnext = t;
    else
        d->tomb_head = t;
    d->tomb_tail = t;
    d->ntomb++;
    return true;
}

/* dlv_done_has - was id finished in the last DLV_TOMB_S? */
bool dlv_done_has(const struct dlv *d, const char *id)
{
    if (!d->tomb_hcap)
        return false;
    for (const struct dlv_tomb *t = d->tomb_hash[dlv_id_hash(id) & (d->tomb_hcap - 1)]; t;
         t = t->hnext)
        if (strcmp(t->id, id) == 0)
            return true;
    return false;
}

/* gone_push - one more file to remove at the next flush. */
static bool gone_push(struct dlv *d, const char *id, bool queue_file, bool state_file)
{
    if (d->ngone == d->gonecap) {
        size_t n = d->gonecap ? d->gonecap * 2 : 256;
        struct dlv_gone *g = realloc(d->gone, n * sizeof(*g));
        if (!g)
            return false;
        d->gone = g;
        d->gonecap = n;
    }
    struct dlv_gone *g = &d->gone[d->ngone++];
    memcpy(g->id, id, sizeof(g->id));
    g->queue_file = queue_file;
    g->state_file = state_file;
    return true;
}

/* dlv_done_add - see dlv_int.h. */
int dlv_done_add(struct dlv *d, const char *id, bool tomb, bool queue_file, bool state_file)
{
    if (!gone_push(d, id, queue_file, state_file))
        return -ENOMEM;
    if (tomb && (!sb_printf(&d->done_buf, "%s\n", id) || !set_add(d, id, d->now + DLV_TOMB_S))) {
        d->ngone--;
        return -ENOMEM;
    }
    return 0;
}

/* done_open - the log of the current epoch, opened for appending; the one
 * two epochs back is removed (every id in it has expired). */
static int done_open(struct dlv *d)
{
    int64_t e = d->now / DLV_TOMB_S;
    if (d->done_fd >= 0 && e == d->done_epoch)
        return d->done_fd;
    char name[48];
    if (d->done_fd >= 0) {
        close(d->done_fd);
        if (d->done_prev >= 0 && d->done_prev != e) {
            snprintf(name, sizeof(name), DONE_PREFIX "%lld", (long long)d->done_prev);
            unlinkat(d->state_fd, name, 0);
        }
        d->done_prev = d->done_epoch;
    }
    snprintf(name, sizeof(name), DONE_PREFIX "%lld", (long long)e);
    d->done_fd = openat(d->state_fd, name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    d->done_epoch = e;
    return d->done_fd;
}

/* dlv_done_flush - see dlv_int.h. */
void dlv_done_flush(struct dlv *d)
{
    if (!d->ngone && !d->done_buf.len)
        return;
    bool logged = d->done_buf.len == 0;
    if (!logged) {
        int fd = done_open(d);
        logged =
            fd >= 0 && write(fd, d->done_buf.data, d->done_buf.len) == (ssize_t)d->done_buf.len;
        if (!logged)
            dlv_logf(d, 0, "cannot append to queue/state/" DONE_PREFIX "%lld: %s",
                     (long long)d->done_epoch, strerror(errno));
        d->done_buf.len = 0;
    }
    for (size_t i = 0; i < d->ngone; i++) {
        const struct dlv_gone *g = &d->gone[i];
        if (g->queue_file && unlinkat(d->active_fd, g->id, 0) < 0 && errno != ENOENT)
            dlv_logf(d, 0, "queue id %s: cannot remove it: %s", g->id, strerror(errno));
        if (g->state_file)
            unlinkat(d->state_fd, g->id, 0);
    }
    d->ngone = 0;
    (void)logged; /* without the log a crash now may deliver these again: allowed */
}

/* dlv_done_expire - forget the ids whose DLV_TOMB_S is over. */
void dlv_done_expire(struct dlv *d)
{
    while (d->tomb_head && d->tomb_head->expire <= d->now) {
        struct dlv_tomb *t = d->tomb_head;
        struct dlv_tomb **pp = &d->tomb_hash[dlv_id_hash(t->id) & (d->tomb_hcap - 1)];
        while (*pp && *pp != t)
            pp = &(*pp)->hnext;
        if (*pp)
            *pp = t->hnext;
        d->tomb_head = t->fnext;
        if (!d->tomb_head)
            d->tomb_tail = NULL;
        d->ntomb--;
        free(t);
    }
}

/* load_log - the ids of one log into the set (kept DLV_TOMB_S from now). */
static void load_log(struct dlv *d, const char *name)
{
    int fd = openat(d->state_fd, name, O_RDONLY | O_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return;
    }
    char line[64];
    while (fgets(line, sizeof(line), f)) {
        size_t n = strcspn(line, "\n");
        line[n] = '\0';
        if (qfile_id_valid(line, n) && !dlv_done_has(d, line))
            set_add(d, line, d->now + DLV_TOMB_S);
    }
    fclose(f);
}

/* dlv_done_is_log - is name one of the logs (not a state file)? */
bool dlv_done_is_log(const char *name)
{
    return strncmp(name, DONE_PREFIX, sizeof(DONE_PREFIX) - 1) == 0;
}

/* dlv_done_load - at start: the logs of this and the previous epoch into
 * the set; older ones (and any from a clock that stepped back) removed. */
void dlv_done_load(struct dlv *d)
{
    int dfd = openat(d->state_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!dir) {
        if (dfd >= 0)
            close(dfd);
        return;
    }
    int64_t cur = d->now / DLV_TOMB_S;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (!dlv_done_is_log(e->d_name))
            continue;
        char *end;
        long long ep = strtoll(e->d_name + sizeof(DONE_PREFIX) - 1, &end, 10);
        if (*end || ep < cur - 1 || ep > cur) {
            if (!*end && ep > cur)
                load_log(d, e->d_name);
            unlinkat(d->state_fd, e->d_name, 0);
            continue;
        }
        load_log(d, e->d_name);
        if (ep == cur - 1)
            d->done_prev = ep;
    }
    closedir(dir);
}

/* dlv_done_free - at stop (after the last flush). */
void dlv_done_free(struct dlv *d)
{
    while (d->tomb_head) {
        struct dlv_tomb *t = d->tomb_head;
        d->tomb_head = t->fnext;
        free(t);
    }
    d->tomb_tail = NULL;
    d->ntomb = 0;
    free(d->tomb_hash);
    d->tomb_hash = NULL;
    d->tomb_hcap = 0;
    free(d->gone);
    d->gone = NULL;
    d->ngone = d->gonecap = 0;
    sb_free(&d->done_buf);
    if (d->done_fd >= 0)
        close(d->done_fd);
    d->done_fd = -1;
}
