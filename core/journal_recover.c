/* journal_recover.c - the journal recovery planner (rules in
 * journal_recover.h): reads one worker's segments record by record, keeps
 * the open transactions in a small hash by qid, and turns verified commits
 * into messages. Pure (no I/O); a planner belongs to one thread. */
#include "journal_recover.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TXN_BUCKETS_MIN 64

struct seg {
    uint64_t segno;
    const uint8_t *buf;
    size_t len;
};

/* One open transaction: chunks seen so far, in order. */
struct txn {
    struct txn *next; /* hash chain */
    char qid[JRN_QID_LEN];
    struct jrn_pos first;
    struct jrn_extent *ext;
    size_t next_ext, cap;
    uint64_t body_len;
    uint32_t crc;
};

struct jrn_recovery {
    unsigned worker;
    bool finished, broken;
    struct seg *segs;
    size_t nsegs, capsegs;
    struct txn **bucket;
    size_t nbuckets, ntxn;
    struct jrn_msg *msgs;
    size_t nmsgs, capmsgs;
    struct jrn_torn *torn;
    size_t ntorn, captorn;
    struct jrn_stats st;
};

/* grow - make room for one more element of size sz in *v (count n, *cap). */
static bool grow(void *v, size_t n, size_t *cap, size_t sz)
{
    if (n < *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 8;
    void *p = realloc(*(void **)v, nc * sz);
    if (!p)
        return false;
    *(void **)v = p;
    *cap = nc;
    return true;
}

/* get32/get64 - little-endian integers at p. */
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p)
{
    return get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* pos_less - does a lie before b in the journal? */
static bool pos_less(struct jrn_pos a, struct jrn_pos b)
{
    return a.segno < b.segno || (a.segno == b.segno && a.off < b.off);
}

/* qid_hash - FNV-1a over the 20 octets of a qid. */
static size_t qid_hash(const char *qid)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < JRN_QID_LEN; i++)
        h = (h ^ (uint8_t)qid[i]) * 1099511628211ull;
    return (size_t)h;
}

/* qid_ok - 20 hex digits (a safe file name)? */
static bool qid_ok(const char *qid)
{
    for (int i = 0; i < JRN_QID_LEN; i++) {
        char c = qid[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

/* txn_slot - the chain link that holds qid's transaction (or the NULL at
 * the end of its chain). */
static struct txn **txn_slot(struct jrn_recovery *r, const char *qid)
{
    struct txn **pp = &r->bucket[qid_hash(qid) & (r->nbuckets - 1)];
    while (*pp && memcmp((*pp)->qid, qid, JRN_QID_LEN) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* txn_rehash - double the bucket array when chains get long. */
static bool txn_rehash(struct jrn_recovery *r)
{
    size_t nb = r->nbuckets * 2;
    struct txn **b = calloc(nb, sizeof(*b));
    if (!b)
        return false;
    for (size_t i = 0; i < r->nbuckets; i++) {
        for (struct txn *t = r->bucket[i], *nx; t; t = nx) {
            nx = t->next;
            size_t h = qid_hash(t->qid) & (nb - 1);
            t->next = b[h];
            b[h] = t;
        }
    }
    free(r->bucket);
    r->bucket = b;
    r->nbuckets = nb;
    return true;
}

/* txn_open - qid's open transaction, created at pos when there is none. */
static struct txn *txn_open(struct jrn_recovery *r, const char *qid, struct jrn_pos pos)
{
    struct txn **pp = txn_slot(r, qid);
    if (*pp)
        return *pp;
    if (r->ntxn >= 2 * r->nbuckets) {
        if (!txn_rehash(r))
            return NULL;
        pp = txn_slot(r, qid);
    }
    struct txn *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    memcpy(t->qid, qid, JRN_QID_LEN);
    t->first = pos;
    *pp = t;
    r->ntxn++;
    return t;
}

/* txn_take - unlink qid's transaction and hand it to the caller (or NULL). */
static struct txn *txn_take(struct jrn_recovery *r, const char *qid)
{
    struct txn **pp = txn_slot(r, qid);
    struct txn *t = *pp;
    if (t) {
        *pp = t->next;
        r->ntxn--;
    }
    return t;
}

/* txn_free - a transaction and its extents. */
static void txn_free(struct txn *t)
{
    if (t)
        free(t->ext);
    free(t);
}

struct jrn_recovery *jrn_recovery_new(unsigned worker)
{
    struct jrn_recovery *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->worker = worker;
    r->nbuckets = TXN_BUCKETS_MIN;
    r->bucket = calloc(r->nbuckets, sizeof(*r->bucket));
    if (!r->bucket) {
        free(r);
        return NULL;
    }
    return r;
}

/* on_chunk - append a chunk payload to its transaction. */
static int on_chunk(struct jrn_recovery *r, const struct jrn_rec *rec, struct jrn_pos pos)
{
    struct txn *t = txn_open(r, rec->qid, pos);
    if (!t || !grow(&t->ext, t->next_ext, &t->cap, sizeof(*t->ext)))
        return -ENOMEM;
    t->ext[t->next_ext++] = (struct jrn_extent){
        .segno = pos.segno, .off = (uint32_t)pos.off + JRN_HDR_LEN, .len = rec->len};
    t->body_len += rec->len;
    t->crc = crc32c(t->crc, rec->payload, rec->len);
    return 0;
}

/* on_commit - a verified commit becomes a message; anything else is
 * counted and dropped. */
static int on_commit(struct jrn_recovery *r, const struct jrn_rec *rec, struct jrn_pos pos)
{
    struct txn *t = txn_take(r, rec->qid);
    uint64_t body_len = rec->len >= JRN_COMMIT_FIXED ? get64(rec->payload) : 0;
    uint32_t body_crc = rec->len >= JRN_COMMIT_FIXED ? get32(rec->payload + 8) : 0;
    uint32_t tail = rec->flags & JRN_F_SKIP ? 8 : 0; /* the u64 skip after the head */
    uint64_t skip = 0;
    if (rec->len >= JRN_COMMIT_FIXED + tail && tail)
        skip = get64(rec->payload + rec->len - tail);
    if (rec->len < JRN_COMMIT_FIXED + tail ||
        get32(rec->payload + 12) != rec->len - JRN_COMMIT_FIXED - tail || skip > body_len ||
        !qid_ok(rec->qid)) {
        r->st.malformed++;
    } else if (body_len != (t ? t->body_len : 0) || body_crc != (t ? t->crc : 0)) {
        r->st.bad_body++;
    } else if (!grow(&r->msgs, r->nmsgs, &r->capmsgs, sizeof(*r->msgs))) {
        txn_free(t);
        return -ENOMEM;
    } else {
        struct jrn_msg *m = &r->msgs[r->nmsgs++];
        memset(m, 0, sizeof(*m));
        memcpy(m->qid, rec->qid, JRN_QID_LEN + 1);
        m->flags = rec->flags;
        m->head = rec->payload + JRN_COMMIT_FIXED;
        m->head_len = rec->len - JRN_COMMIT_FIXED - tail;
        m->body_len = body_len;
        m->body_skip = skip;
        m->body_crc = body_crc;
        m->first = t ? t->first : pos;
        m->commit = pos;
        if (t) {
            m->ext = t->ext;
            m->next = t->next_ext;
            t->ext = NULL;
        }
    }
    txn_free(t);
    return 0;
}

/* on_checkpoint - the latest low-water mark wins. */
static void on_checkpoint(struct jrn_recovery *r, const struct jrn_rec *rec)
{
    if (rec->len != 16) {
        r->st.malformed++;
        return;
    }
    struct jrn_pos mark = {get64(rec->payload), get64(rec->payload + 8)};
    if (!r->st.has_checkpoint || pos_less(r->st.checkpoint, mark))
        r->st.checkpoint = mark;
    r->st.has_checkpoint = true;
}

/* apply - one decoded record at pos. 0 or -ENOMEM. */
static int apply(struct jrn_recovery *r, const struct jrn_rec *rec, struct jrn_pos pos)
{
    r->st.records++;
    switch (rec->type) {
    case JRN_CHUNK: return on_chunk(r, rec, pos);
    case JRN_COMMIT: return on_commit(r, rec, pos);
    case JRN_ABORT:
        r->st.aborted++;
        txn_free(txn_take(r, rec->qid));
        return 0;
    case JRN_CHECKPOINT: on_checkpoint(r, rec); return 0;
    case JRN_SEG: return 0;
    }
    return 0;
}

/* header_ours - could the octets at p[0..avail) (avail > 0) be a record
 * header of segment segno, complete or partly written? Every octet of its
 * magic and segno fields that is there must be the expected one or zero
 * (not yet written), and at least one of them non-zero. Left-over bytes of
 * a recycled segment fail this; a header of an older segno fails it. */
static bool header_ours(const uint8_t *p, size_t avail, uint64_t segno)
{
    uint8_t want[24] = {0};
    for (int i = 0; i < 4; i++)
        want[i] = (uint8_t)(JRN_MAGIC >> (8 * i));
    for (int i = 0; i < 8; i++)
        want[16 + i] = (uint8_t)(segno >> (8 * i));
    bool any = false;
    for (size_t i = 0; i < avail && i < sizeof(want); i++) {
        if (i >= 4 && i < 16)
            continue;
        if (p[i] && p[i] != want[i])
            return false;
        any |= p[i] != 0;
    }
    return any;
}

/* older_record - is p[0..avail) a complete, valid record of another
 * segno (a left-over of an older use of a recycled segment)? */
static bool older_record(const uint8_t *p, size_t avail, uint64_t segno)
{
    struct jrn_rec rec;
    if (avail < JRN_HDR_LEN || get32(p) != JRN_MAGIC || get64(p + 16) == segno)
        return false;
    return jrn_decode(p, avail, get64(p + 16), &rec) == JRN_OK;
}

/* later_record_end - the end of the last valid record of segno that starts
 * after off (0 when there is none): evidence that the data stopping at off
 * was damaged rather than ended. */
static size_t later_record_end(const struct seg *s, size_t off)
{
    static const uint8_t magic[4] = {JRN_MAGIC & 0xFF, (JRN_MAGIC >> 8) & 0xFF,
                                     (JRN_MAGIC >> 16) & 0xFF, JRN_MAGIC >> 24};
    size_t end = 0, p = off + 1;
    while (p + JRN_HDR_LEN <= s->len) {
        const uint8_t *hit = memmem(s->buf + p, s->len - p, magic, sizeof(magic));
        if (!hit)
            break;
        p = (size_t)(hit - s->buf);
        struct jrn_rec rec;
        if (jrn_decode(hit, s->len - p, s->segno, &rec) == JRN_OK) {
            p += JRN_HDR_LEN + rec.len;
            end = p;
        } else {
            p++;
        }
    }
    return end;
}

/* segment_end - classify where segment s stopped decoding (at off: JRN_END
 * or JRN_TORN, which alone cannot tell a partly written header of ours from
 * left-overs) and record a torn tail when it is one. 0 or -ENOMEM. */
static int segment_end(struct jrn_recovery *r, const struct seg *s, size_t off)
{
    size_t avail = s->len - off, end = off;
    if (avail && !older_record(s->buf + off, avail, s->segno) &&
        header_ours(s->buf + off, avail, s->segno)) {
        uint64_t want = avail >= 12 ? (uint64_t)JRN_HDR_LEN + get32(s->buf + off + 8) : avail;
        end = off + (want < avail ? want : avail);
    }
    size_t later = avail > JRN_HDR_LEN ? later_record_end(s, off) : 0;
    if (later > end)
        end = later;
    while (end > off && s->buf[end - 1] == 0)
        end--;
    if (end == off)
        return 0; /* a clean end */
    if (!grow(&r->torn, r->ntorn, &r->captorn, sizeof(*r->torn)))
        return -ENOMEM;
    r->torn[r->ntorn++] = (struct jrn_torn){s->segno, off, end - off};
    return 0;
}

/* read_segment - apply every record of s up to its end. */
static int read_segment(struct jrn_recovery *r, const struct seg *s)
{
    size_t off = 0;
    for (;;) {
        struct jrn_rec rec;
        enum jrn_status st = jrn_decode(s->buf + off, s->len - off, s->segno, &rec);
        if (st != JRN_OK)
            return segment_end(r, s, off);
        int rc = apply(r, &rec, (struct jrn_pos){s->segno, off});
        if (rc < 0)
            return rc;
        off += JRN_HDR_LEN + (size_t)rec.len;
    }
}

int jrn_recovery_segment(struct jrn_recovery *r, uint64_t segno, const uint8_t *buf, size_t len)
{
    if (r->finished || r->broken || len > UINT32_MAX ||
        (r->nsegs && segno <= r->segs[r->nsegs - 1].segno))
        return -EINVAL;
    if (!grow(&r->segs, r->nsegs, &r->capsegs, sizeof(*r->segs))) {
        r->broken = true;
        return -ENOMEM;
    }
    struct seg *s = &r->segs[r->nsegs++];
    *s = (struct seg){segno, buf, len};
    r->st.segments++;
    r->st.last_segno = segno;
    int rc = read_segment(r, s);
    if (rc < 0)
        r->broken = true;
    return rc;
}

/* drop_open - count and free the transactions still open. */
static void drop_open(struct jrn_recovery *r)
{
    for (size_t i = 0; i < r->nbuckets; i++) {
        while (r->bucket[i]) {
            struct txn *t = r->bucket[i];
            r->bucket[i] = t->next;
            txn_free(t);
            r->st.uncommitted++;
        }
    }
    r->ntxn = 0;
}

int jrn_recovery_finish(struct jrn_recovery *r, const struct jrn_msg **msgs, size_t *n,
                        struct jrn_stats *st)
{
    *msgs = NULL;
    *n = 0;
    if (r->finished || r->broken)
        return r->broken ? -ENOMEM : -EINVAL;
    r->finished = true;
    drop_open(r);
    size_t keep = 0;
    for (size_t i = 0; i < r->nmsgs; i++) {
        if (r->st.has_checkpoint && pos_less(r->msgs[i].commit, r->st.checkpoint)) {
            free((void *)r->msgs[i].ext);
            r->st.skipped++;
        } else {
            r->msgs[keep++] = r->msgs[i];
        }
    }
    r->nmsgs = keep;
    r->st.committed = keep;
    r->st.ntorn = r->ntorn;
    r->st.torn = r->torn;
    *msgs = r->msgs;
    *n = r->nmsgs;
    if (st)
        *st = r->st;
    return 0;
}

const uint8_t *jrn_recovery_bytes(const struct jrn_recovery *r, const struct jrn_extent *e)
{
    size_t lo = 0, hi = r->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->segs[mid].segno < e->segno)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == r->nsegs || r->segs[lo].segno != e->segno ||
        (uint64_t)e->off + e->len > r->segs[lo].len)
        return NULL;
    return r->segs[lo].buf + e->off;
}

void jrn_recovery_free(struct jrn_recovery *r)
{
    if (!r)
        return;
    drop_open(r);
    for (size_t i = 0; i < r->nmsgs; i++)
        free((void *)r->msgs[i].ext);
    free(r->msgs);
    free(r->bucket);
    free(r->segs);
    free(r->torn);
    free(r);
}
