/* dlv_queue.c - the delivery engine's messages: pick-up (rename new/ ->
 * active/), loading a queue file and its state file, the in-memory index
 * (hash by id) and schedule (min-heap by next attempt) rebuilt from
 * active/ + state/ at start, state file writes, splitting due messages into
 * per-route jobs and removing finished messages. Delivery thread only.
 *
 * Durability argument: files leave the queue only after dlv_msg_finish
 * (removed at the end of that loop turn, net/dlv_done.c), after every
 * recipient is sent or bounced (and the bounce itself is durable in new/).
 * The state file is written after every attempt that leaves something
 * pending (tmp + rename; a message sent at its first attempt never has
 * one) but not fsynced: losing it, or finding it torn after a power cut, only means
 * "every recipient pending" again - duplicates, never a lost recipient. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "dlv_int.h"
#include "snap.h"

#define HASH_MIN 1024u

/* ---- index and schedule ------------------------------------------------- */

/* dlv_id_hash - FNV-1a of a queue id (the message index and the done set). */
size_t dlv_id_hash(const char *id)
{
    uint64_t h = 1469598103934665603ull;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ull;
    return (size_t)h;
}

/* hash_grow - double the bucket array when it is half full. */
static bool hash_grow(struct dlv *d)
{
    if (d->hcap && d->nmsg < d->hcap / 2)
        return true;
    size_t ncap = d->hcap ? d->hcap * 2 : HASH_MIN;
    struct dlv_msg **nh = calloc(ncap, sizeof(*nh));
    if (!nh)
        return false;
    for (size_t i = 0; i < d->hcap; i++)
        for (struct dlv_msg *m = d->hash[i], *nx; m; m = nx) {
            nx = m->hnext;
            size_t b = dlv_id_hash(m->id) & (ncap - 1);
            m->hnext = nh[b];
            nh[b] = m;
        }
    free(d->hash);
    d->hash = nh;
    d->hcap = ncap;
    return true;
}

/* dlv_msg_find - the message with queue id id, or NULL. */
struct dlv_msg *dlv_msg_find(struct dlv *d, const char *id)
{
    if (!d->hcap)
        return NULL;
    for (struct dlv_msg *m = d->hash[dlv_id_hash(id) & (d->hcap - 1)]; m; m = m->hnext)
        if (strcmp(m->id, id) == 0)
            return m;
    return NULL;
}

/* hash_remove - unlink m from its bucket. */
static void hash_remove(struct dlv *d, struct dlv_msg *m)
{
    struct dlv_msg **pp = &d->hash[dlv_id_hash(m->id) & (d->hcap - 1)];
    while (*pp && *pp != m)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = m->hnext;
    d->nmsg--;
}

/* heap_swap - exchange two heap slots, keeping back-indices right. */
static void heap_swap(struct dlv *d, size_t a, size_t b)
{
    struct dlv_msg *t = d->heap[a];
    d->heap[a] = d->heap[b];
    d->heap[b] = t;
    d->heap[a]->heap = a;
    d->heap[b]->heap = b;
}

/* heap_fix - restore heap order around slot i. */
static void heap_fix(struct dlv *d, size_t i)
{
    while (i > 0 && d->heap[(i - 1) / 2]->due > d->heap[i]->due) {
        heap_swap(d, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < d->nheap && d->heap[l]->due < d->heap[m]->due)
            m = l;
        if (r < d->nheap && d->heap[r]->due < d->heap[m]->due)
            m = r;
        if (m == i)
            return;
        heap_swap(d, i, m);
        i = m;
    }
}

/* heap_remove - take m out of the schedule (if it is in it). */
static void heap_remove(struct dlv *d, struct dlv_msg *m)
{
    size_t i = m->heap;
    if (i == SIZE_MAX)
        return;
    heap_swap(d, i, d->nheap - 1);
    d->nheap--;
    m->heap = SIZE_MAX;
    if (i < d->nheap)
        heap_fix(d, i);
}

/* msg_due - the next attempt of m: the earliest pending recipient that is
 * not in a job; INT64_MAX when held, deleted or nothing is waiting. */
static int64_t msg_due(const struct dlv_msg *m)
{
    if (m->st.held || m->deleted)
        return INT64_MAX;
    int64_t due = INT64_MAX;
    for (size_t i = 0; i < m->st.nrcpt; i++)
        if (m->st.rcpts[i].state == QST_PENDING && !m->busy[i] && m->st.rcpts[i].next < due)
            due = m->st.rcpts[i].next;
    if (due == INT64_MAX && m->jobs == 0 && qstate_done(&m->st))
        due = 0; /* finished but not removed yet (bounce to retry) */
    return due;
}

/* dlv_msg_schedule - put m in the schedule at its next attempt (or take it
 * out when nothing is waiting). */
void dlv_msg_schedule(struct dlv *d, struct dlv_msg *m, int64_t not_before)
{
    int64_t due = msg_due(m), warn = dlv_delay_warn_at(d, m);
    if (warn > d->now && warn < due)
        due = warn; /* the delay DSN is due before the next attempt */
    if (due != INT64_MAX && due < not_before)
        due = not_before;
    if (due == INT64_MAX) {
        heap_remove(d, m);
        return;
    }
    m->due = due;
    if (m->heap != SIZE_MAX) {
        heap_fix(d, m->heap);
        return;
    }
    if (d->nheap == d->heapcap) {
        size_t n = d->heapcap ? d->heapcap * 2 : HASH_MIN;
        struct dlv_msg **h = realloc(d->heap, n * sizeof(*h));
        if (!h)
            die("delivery: out of memory");
        d->heap = h;
        d->heapcap = n;
    }
    m->heap = d->nheap;
    d->heap[d->nheap++] = m;
    heap_fix(d, m->heap);
}

/* ---- files -------------------------------------------------------------- */

/* Files up to this size are read into the heap rather than mapped: an
 * mmap + munmap per message (twice: pick-up and delivery) cost the delivery
 * thread about 15% of its time in the relay benchmark (page-table work and
 * the TLB shoot-down of munmap); a read of a few KiB into malloc'd memory
 * costs a copy only. Larger files are mapped so memory stays bounded. */
#define DLV_READ_MAX (256u << 10)

/* read_all - len octets of fd into a new heap buffer (NULL, errno set). */
static char *read_all(int fd, size_t len)
{
    char *buf = malloc(len);
    for (size_t off = 0; buf && off < len;) {
        ssize_t r = pread(fd, buf + off, len - off, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO; /* shorter than fstat said */
            free(buf);
            errno = e;
            return NULL;
        }
        off += (size_t)r;
    }
    return buf;
}

/* dlv_msg_map - bring the queue file into memory while jobs use it (read
 * when small, mapped when large). 0 or -errno. */
int dlv_msg_map(struct dlv *d, struct dlv_msg *m)
{
    if (m->map)
        return 0;
    int fd = openat(d->active_fd, m->id, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0) {
        int e = fd < 0 ? errno : EIO;
        if (fd >= 0)
            close(fd);
        return -e;
    }
    size_t len = (size_t)st.st_size;
    bool big = len > DLV_READ_MAX;
    void *p = big ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : read_all(fd, len);
    int e = errno;
    close(fd);
    if (p == (big ? MAP_FAILED : NULL))
        return -e;
    m->map = p;
    m->maplen = len;
    m->mapped = big;
    return 0;
}

/* dlv_msg_unmap - drop the mapping (no job left). */
void dlv_msg_unmap(struct dlv_msg *m)
{
    if (m->map && m->mapped)
        munmap((void *)m->map, m->maplen);
    else
        free((void *)m->map);
    m->map = NULL;
    m->maplen = 0;
}

/* read_small - a whole small file of folder dfd into *out; -errno. */
static int read_small(int dfd, const char *name, struct sb *out)
{
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[8192];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        if (!sb_append(out, buf, (size_t)n)) {
            close(fd);
            return -ENOMEM;
        }
    int e = n < 0 ? -errno : 0;
    close(fd);
    return e;
}

/* dlv_msg_write_state - state/<id>.tmp, then rename over state/<id>. */
int dlv_msg_write_state(struct dlv *d, struct dlv_msg *m)
{
    struct sb b = {0};
    char tmp[QFILE_ID_LEN + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", m->id);
    int rc = -ENOMEM;
    if (qstate_format(&m->st, &b)) {
        int fd = openat(d->state_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        rc = fd < 0 ? -errno : 0;
        if (fd >= 0) {
            if (write(fd, b.data, b.len) != (ssize_t)b.len)
                rc = -EIO;
            close(fd);
        }
        if (rc == 0 && renameat(d->state_fd, tmp, d->state_fd, m->id) < 0)
            rc = -errno;
        m->has_state |= rc == 0;
    }
    sb_free(&b);
    if (rc < 0)
        dlv_logf(d, 0, "queue id %s: cannot write its state file: %s", m->id, strerror(-rc));
    return rc;
}

/* new_state - every recipient pending (a file of new/: no state file). */
static bool new_state(struct dlv_msg *m)
{
    if (!qstate_from_env(&m->env, &m->st))
        return false;
    m->st.arrival = m->env.arrival;
    return true;
}

/* load_state - state/<id> into m->st, or "all pending" when missing,
 * unreadable or not matching the envelope (said in the log). */
static bool load_state(struct dlv *d, struct dlv_msg *m)
{
    struct sb b = {0};
    char err[160];
    int rc = read_small(d->state_fd, m->id, &b);
    bool ok = false;
    m->has_state = rc == 0;
    if (rc == 0 && qstate_parse(b.data ? b.data : "", b.len, &m->st, err, sizeof(err))) {
        ok = qstate_matches_env(&m->st, &m->env);
        if (!ok) {
            dlv_logf(d, 0, "queue id %s: state file does not match the envelope: rebuilt", m->id);
            qstate_free(&m->st);
        }
    } else if (rc == 0) {
        dlv_logf(d, 0, "queue id %s: state file unreadable (%s): every recipient pending", m->id,
                 err);
    }
    sb_free(&b);
    if (!ok && !qstate_from_env(&m->env, &m->st))
        return false;
    m->st.arrival = m->env.arrival;
    return true;
}

/* Files up to this size stay in memory from the pick-up to the dispatch
 * that follows at once (the second read cost 4 system calls a message);
 * larger ones are read again then. */
#define DLV_KEEP_MAX (16u << 10)

/* parse_file - map active/<id>, parse and check its envelope. */
static int parse_file(struct dlv *d, struct dlv_msg *m)
{
    int rc = dlv_msg_map(d, m);
    if (rc < 0)
        return rc;
    char err[160] = "";
    enum qfile_status s = qfile_parse_envelope(m->map, m->maplen, &m->env, err, sizeof(err));
    if (s != QFILE_OK || !qfile_complete(&m->env, m->maplen)) {
        dlv_logf(d, 0, "queue id %s: unusable queue file (%s): left in queue/active", m->id,
                 s == QFILE_OK     ? "incomplete"
                 : s == QFILE_MORE ? "no end of envelope"
                                   : err);
        if (s == QFILE_OK)
            qfile_env_free(&m->env);
        rc = -EINVAL;
    }
    if (rc < 0 || m->mapped || m->maplen > DLV_KEEP_MAX)
        dlv_msg_unmap(m);
    return rc;
}

/* Tombstones (see net/dlv_done.c): a finished message's id is remembered
 * for DLV_TOMB_S, and a file that turns up in new/ with such an id is
 * dropped as already delivered. State files with every recipient done
 * (the tombstones of earlier versions) are read once at start. */

/* is_tombstone - does state/<id> say every recipient is done? */
static bool is_tombstone(struct dlv *d, const char *id)
{
    struct sb b = {0};
    struct qstate st = {0};
    char err[64];
    bool done = read_small(d->state_fd, id, &b) == 0 &&
                qstate_parse(b.data ? b.data : "", b.len, &st, err, sizeof(err)) &&
                qstate_done(&st);
    qstate_free(&st);
    sb_free(&b);
    return done;
}

/* msg_free - release a message's memory. */
static void msg_free(struct dlv_msg *m)
{
    dlv_msg_unmap(m);
    qfile_env_free(&m->env);
    qstate_free(&m->st);
    free(m->busy);
    free(m);
}

/* take - make id, now in active/, a message of the schedule: its envelope
 * from bytes (the materializer's copy, ours now; NULL: read the file),
 * its state from state/ (when has_state) or all pending. 0 or -errno. */
static int take(struct dlv *d, const char *id, bool has_state, char *bytes, size_t len, bool picked)
{
    if (dlv_msg_find(d, id)) {
        free(bytes);
        return -EEXIST;
    }
    struct dlv_msg *m = calloc(1, sizeof(*m));
    if (!m) {
        free(bytes);
        return -ENOMEM;
    }
    memcpy(m->id, id, QFILE_ID_LEN + 1);
    m->heap = SIZE_MAX;
    if (bytes) {
        m->map = bytes;
        m->maplen = len;
    }
    int rc = parse_file(d, m);
    if (rc == 0 && (!(has_state ? load_state(d, m) : new_state(m)) ||
                    !(m->busy = calloc(m->env.nrcpt, sizeof(bool)))))
        rc = -ENOMEM;
    if (rc == 0 && m->jobs == 0 && msg_due(m) > d->now)
        dlv_msg_unmap(m); /* not dispatched now: do not hold its bytes */
    if (rc < 0 || !hash_grow(d)) {
        msg_free(m);
        return rc < 0 ? rc : -ENOMEM;
    }
    size_t b = dlv_id_hash(id) & (d->hcap - 1);
    m->hnext = d->hash[b];
    d->hash[b] = m;
    d->nmsg++;
    if (picked)
        dlv_logf(d, 0, "queue id %s: picked up: from=<%s> rcpts=%zu size=%llu", id, m->env.sender,
                 m->env.nrcpt, (unsigned long long)m->env.size);
    dlv_msg_schedule(d, m, 0);
    return 0;
}

/* dlv_queue_load - see dlv_int.h: take id (from new/: rename it into
 * active/ first). */
int dlv_queue_load(struct dlv *d, const char *id, bool from_new)
{
    if (from_new && dlv_done_has(d, id)) {
        unlinkat(d->new_fd, id, 0);
        dlv_logf(d, 0,
                 "queue id %s: already delivered: the copy in queue/new (written again "
                 "by journal recovery) removed",
                 id);
        return -EALREADY;
    }
    if (from_new && renameat2(d->new_fd, id, d->active_fd, id, RENAME_NOREPLACE) < 0) {
        int e = errno;
        if (e == EEXIST) {
            /* the queue journal's recovery wrote again a message that was
             * already being delivered: active/ + state/ are the truth */
            unlinkat(d->new_fd, id, 0);
            dlv_logf(d, 0,
                     "queue id %s: already in queue/active: the copy in queue/new "
                     "(written again by journal recovery) removed",
                     id);
        } else if (e != ENOENT) {
            dlv_logf(d, 0, "queue id %s: cannot move it to queue/active: %s", id, strerror(e));
        }
        return -e;
    }
    /* a file of new/ has no state file, but for mxringctl's while we were
     * stopped (d->new_has_state, until the first full read of new/) */
    return take(d, id, !from_new || d->new_has_state, NULL, 0, from_new);
}

/* dlv_queue_adopt - see dlv_int.h: the materializer put id straight into
 * active/ (no state file) and handed over its bytes (or NULL). */
int dlv_queue_adopt(struct dlv *d, const char *id, char *bytes, size_t len)
{
    if (dlv_done_has(d, id)) {
        /* materialized again after a failed syncfs, once delivered */
        free(bytes);
        unlinkat(d->active_fd, id, 0);
        dlv_logf(d, 0, "queue id %s: already delivered: the copy written again removed", id);
        return -EALREADY;
    }
    return take(d, id, false, bytes, len, true);
}

/* scan_names - the valid queue ids of folder fd, sorted. */
static char **scan_names(int fd, size_t *n)
{
    int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
    char **v = NULL;
    size_t cap = 0;
    *n = 0;
    if (!dir) {
        if (dfd >= 0)
            close(dfd);
        return NULL;
    }
    rewinddir(dir);
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (!qfile_id_valid(e->d_name, strlen(e->d_name)))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            char **nv = realloc(v, cap * sizeof(*v));
            if (!nv)
                break;
            v = nv;
        }
        if (!(v[*n] = strdup(e->d_name)))
            break;
        (*n)++;
    }
    closedir(dir);
    return v;
}

/* cmp_str - qsort of char *. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* drop_orphans - state files whose message is gone and stale *.tmp files;
 * tombstones (every recipient done) are kept for DLV_TOMB_S more. */
static void drop_orphans(struct dlv *d)
{
    int dfd = openat(d->state_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!dir) {
        if (dfd >= 0)
            close(dfd);
        return;
    }
    rewinddir(dir);
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        bool id = qfile_id_valid(e->d_name, strlen(e->d_name));
        if ((id && dlv_msg_find(d, e->d_name)) || dlv_done_is_log(e->d_name))
            continue;
        if (id && faccessat(d->new_fd, e->d_name, F_OK, 0) == 0) {
            d->new_has_state = true; /* mxringctl hold/release while we were stopped */
            continue;
        }
        /* an old tombstone goes into the log; everything else is an orphan */
        if (!id || !is_tombstone(d, e->d_name) || dlv_done_add(d, e->d_name, true, false, true) < 0)
            unlinkat(d->state_fd, e->d_name, 0);
    }
    closedir(dir);
}

/* dlv_queue_scan_active - at start: every message of active/ (a previous
 * run's, in arrival order) with its state. */
void dlv_queue_scan_active(struct dlv *d)
{
    dlv_done_load(d);
    size_t n;
    char **v = scan_names(d->active_fd, &n);
    if (v)
        qsort(v, n, sizeof(*v), cmp_str);
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        ok += dlv_queue_load(d, v[i], false) == 0;
        free(v[i]);
    }
    free(v);
    drop_orphans(d);
    if (n)
        dlv_logf(d, 0, "restart: %zu messages in queue/active, %zu scheduled", n, ok);
}

/* dlv_msg_finish - every recipient is sent or bounced (or the message was
 * deleted): m is forgotten now; its id is remembered for DLV_TOMB_S (not
 * for a deletion with recipients left) and active/<id> and its state file
 * are removed at the end of this loop turn, after the done log's write
 * (dlv_done_flush): one write for every message finished in the turn
 * instead of a final state file each. */
void dlv_msg_finish(struct dlv *d, struct dlv_msg *m)
{
    bool tomb = !m->deleted || qstate_done(&m->st);
    if (dlv_done_add(d, m->id, tomb, true, m->has_state) < 0) {
        if (unlinkat(d->active_fd, m->id, 0) < 0 && errno != ENOENT) {
            dlv_logf(d, 0, "queue id %s: cannot remove it: %s", m->id, strerror(errno));
            return;
        }
        unlinkat(d->state_fd, m->id, 0);
    }
    heap_remove(d, m);
    hash_remove(d, m);
    msg_free(m);
}

/* dlv_queue_free_all - at stop: forget every message (files stay). */
void dlv_queue_free_all(struct dlv *d)
{
    for (size_t i = 0; i < d->hcap; i++)
        for (struct dlv_msg *m = d->hash[i], *nx; m; m = nx) {
            nx = m->hnext;
            msg_free(m);
        }
    free(d->hash);
    free(d->heap);
    d->hash = NULL;
    d->heap = NULL;
    d->hcap = d->nmsg = d->nheap = d->heapcap = 0;
}

/* dlv_queue_run_due - start every message whose next attempt has come. */
void dlv_queue_run_due(struct dlv *d)
{
    while (d->nheap && d->heap[0]->due <= d->now) {
        struct dlv_msg *m = d->heap[0];
        heap_remove(d, m);
        dlv_msg_dispatch(d, m);
    }
}
