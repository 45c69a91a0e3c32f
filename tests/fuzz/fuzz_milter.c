/* fuzz_milter.c - libFuzzer target for core/milter.c's reply reader. The
 * first octet seeds the split sizes; the rest is a stream of milter
 * replies. It is read whole and in input-chosen pieces: the same replies
 * (command, fields, raw data) and the same final status must come out, the
 * raw packets re-framed must equal the consumed prefix of the stream (a
 * round trip of the framing), and every decoded reply must satisfy the
 * checks the engine relies on. The same bytes as a header section go
 * through milter_hdr_edit_apply: no edit gives them back byte for byte;
 * edits picked by the input (a change, a delete, an add) never crash, and
 * an edit of a name the section lacks only adds it. Single-threaded. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "milter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_MAX_REPLIES 256

#define FZ_CHECK(c)                                                                     \
    do {                                                                                \
        if (!(c)) {                                                                     \
            fprintf(stderr, "fuzz_milter: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* One reply, flattened so two runs can be compared. */
struct fz_out {
    struct sb flat; /* every reply's fields, framed again */
    struct sb raw;  /* cmd + raw data of every reply, packet-framed */
    unsigned n;
    enum milter_rd_status end;
};

/* flat_str - s (may be NULL) into b, with a marker. */
static void flat_str(struct sb *b, const char *s)
{
    FZ_CHECK(sb_append(b, s ? "S" : "N", 1));
    if (s)
        FZ_CHECK(sb_append(b, s, strlen(s) + 1));
}

/* check_reply - the invariants of one decoded reply. */
static void check_reply(const struct milter_reply *r)
{
    struct milter_code c;
    switch (r->cmd) {
    case MILTER_R_ADDHEADER:
    case MILTER_R_INSHEADER:
    case MILTER_R_CHGHEADER:
        FZ_CHECK(r->name && r->value && milter_header_name_ok(r->name));
        FZ_CHECK(milter_header_value_ok(r->value));
        break;
    case MILTER_R_REPLYCODE:
        FZ_CHECK(r->text && milter_replycode_parse(r->text, &c));
        FZ_CHECK(c.code >= 400 && c.code <= 559 && c.lines >= 1);
        FZ_CHECK(c.text >= r->text && c.text + c.text_len <= r->text + strlen(r->text));
        break;
    case MILTER_R_QUARANTINE:
    case MILTER_R_DELRCPT: FZ_CHECK(r->text && r->text[0]); break;
    default: break;
    }
    FZ_CHECK(r->len < MILTER_REPLY_MAX);
}

/* record - one reply into out. */
static void record(struct fz_out *out, const struct milter_reply *r)
{
    check_reply(r);
    struct sb *b = &out->flat;
    FZ_CHECK(sb_append(b, &r->cmd, 1) && sb_append(b, &r->index, sizeof r->index));
    FZ_CHECK(sb_append(b, &r->version, 4) && sb_append(b, &r->actions, 4) &&
             sb_append(b, &r->proto, 4));
    flat_str(b, r->name);
    flat_str(b, r->value);
    flat_str(b, r->text);
    FZ_CHECK(milter_put(&out->raw, r->cmd, r->data, r->len));
    out->n++;
}

/* run - read data[0..size) in pieces drawn from seed (0: whole). */
static void run(const uint8_t *data, size_t size, uint32_t seed, struct fz_out *out)
{
    struct milter_rd rd = {0};
    size_t off = 0;
    out->end = MILTER_RD_MORE;
    while (off < size && out->n < FZ_MAX_REPLIES) {
        size_t n = size - off;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            size_t k = 1 + (seed >> 16) % 9;
            n = n < k ? n : k;
        }
        struct milter_reply r;
        size_t used;
        enum milter_rd_status st = milter_rd_feed(&rd, data + off, n, &used, &r);
        FZ_CHECK(used <= n);
        off += used;
        if (st == MILTER_RD_REPLY) {
            record(out, &r);
            continue;
        }
        FZ_CHECK(st == MILTER_RD_MORE ? used == n : used <= n);
        if (st != MILTER_RD_MORE) {
            out->end = st;
            break;
        }
    }
    milter_rd_free(&rd);
}

/* check_edits - milter_hdr_edit_apply's properties over p[0..n). */
static void check_edits(const uint8_t *p, size_t n, uint32_t seed)
{
    const char *hdr = (const char *)p;
    struct sb out = {0}, added = {0};
    FZ_CHECK(milter_hdr_edit_apply(hdr, n, NULL, 0, &out, &added));
    FZ_CHECK(out.len == n && added.len == 0 && (n == 0 || memcmp(out.data, hdr, n) == 0));
    sb_reset(&out);
    struct milter_hdr_edit e[3] = {{"Subject", "new value", 1 + (seed & 3)},
                                   {"X-Fuzz", "", 1 + (seed >> 2 & 1)},
                                   {"to", seed & 16 ? "" : "a\n\tb", 1 + (seed >> 5 & 7)}};
    FZ_CHECK(milter_hdr_edit_apply(hdr, n, e, 3, &out, &added));
    sb_free(&out);
    sb_free(&added);
    static const char absent[] = "X-Not-In-Input";
    bool there = false; /* names match case-insensitively */
    for (size_t i = 0; !there && i + sizeof absent - 1 <= n; i++)
        there = strncasecmp(hdr + i, absent, sizeof absent - 1) == 0;
    struct milter_hdr_edit none = {(char *)absent, "v", 1};
    FZ_CHECK(milter_hdr_edit_apply(hdr, n, &none, 1, &out, &added));
    FZ_CHECK(there || (out.len == n && (n == 0 || memcmp(out.data, hdr, n) == 0)));
    FZ_CHECK(there || added.len == strlen("X-Not-In-Input: v\r\n"));
    sb_free(&out);
    sb_free(&added);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t seed = data[0] | 1u;
    check_edits(data + 1, size - 1, data[0]);
    data++, size--;
    struct fz_out a = {0}, b = {0};
    run(data, size, 0, &a);
    run(data, size, seed, &b);
    FZ_CHECK(a.n == b.n && a.end == b.end);
    FZ_CHECK(a.flat.len == b.flat.len &&
             (a.flat.len == 0 || memcmp(a.flat.data, b.flat.data, a.flat.len) == 0));
    FZ_CHECK(a.raw.len <= size && (a.raw.len == 0 || memcmp(a.raw.data, data, a.raw.len) == 0));
    sb_free(&a.flat);
    sb_free(&a.raw);
    sb_free(&b.flat);
    sb_free(&b.raw);
    return 0;
}
