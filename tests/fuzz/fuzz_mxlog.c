/* fuzz_mxlog.c - libFuzzer target for mxlog's line parser and session
 * reconstruction: any bytes, split into lines, through mxl_parse_line
 * (round-trip property: a line that parses has a prefix that re-formats
 * from its parsed time and id to the same bytes, ignoring hex case) and
 * the engine with verdicts for every transaction and session. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>

#include "../../tools/mxlog/parse.h"
#include "../../tools/mxlog/sess.h"
#include "../../tools/mxlog/verdict.h"
#include "../../tools/mxlog/walk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char mon[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* check_prefix - the round trip of one parsed line. */
static void check_prefix(const char *p, const struct mxl_line *l)
{
    int y, mo, d, h, mi, s;
    mxl_civil_from(l->t, &y, &mo, &d, &h, &mi, &s);
    char want[64];
    snprintf(want, sizeof(want), " [%02d/%s/%04d:%02d:%02d:%02d], %08X, ", d, mon[mo - 1], y, h, mi,
             s, l->sid);
    /* a leap second and day 31 of a 30-day month normalise to the next
     * minute or month: the property holds for canonical stamps only */
    if (memcmp(p + 20, "60", 2) == 0 || memcmp(want + 5, p + 5, 3) != 0)
        return;
    if (strncasecmp(want, p, MXL_PREFIX_LEN) != 0)
        abort();
}

static void on_txn(void *arg, struct mxl_sess *s, const struct mxl_txn *x)
{
    char w[1024];
    (void)arg;
    mxl_txn_verdict(s, x, "a@b", w, sizeof(w));
    mxl_txn_verdict(s, x, NULL, w, sizeof(w));
    size_t pos = 0;
    enum mxl_rcpt_st st;
    const char *a;
    while (mxl_rcpt_next(x, &pos, &st, &a))
        if (st > MXL_RCPT_OTHER)
            abort();
}

static void on_sess(void *arg, struct mxl_sess *s)
{
    char w[1024];
    (void)arg;
    mxl_sess_verdict(s, w, sizeof(w));
    mxl_sess_notable(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    for (size_t i = 0; i < size;) {
        const char *nl = memchr(p + i, '\n', size - i);
        size_t end = nl ? (size_t)(nl - p) : size;
        struct mxl_line l;
        if (mxl_parse_line(p + i, end - i, &l) != MXL_K_BAD) {
            if (l.text != p + i + MXL_PREFIX_LEN || l.len != end - i - MXL_PREFIX_LEN)
                abort();
            check_prefix(p + i, &l);
        }
        i = end + 1;
    }
    struct mxl_opts o = {.since = INT64_MIN, .until = INT64_MAX};
    struct mxl_sink sink = {on_txn, on_sess, NULL};
    struct mxl_engine *e = mxl_engine_new(&sink, size % 2);
    if (!e)
        return 0;
    mxl_walk_buf(&o, e, p, size);
    mxl_engine_end_all(e, MXL_END_EOF, 0);
    mxl_engine_free(e);
    return 0;
}
