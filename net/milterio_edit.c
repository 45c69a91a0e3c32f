/* milterio_edit.c - the milters' chgheader edits applied when the message
 * is committed (milterio.h): the header section is read back from the
 * queue journal (bounded: never the body), rewritten by the pure
 * milter_hdr_edit_apply, and goes into the commit record's head, which
 * tells the materializer and recovery to skip the original section
 * (JRN_F_SKIP). Worker thread only. */
#include "milterio.h"

#include <stdlib.h>
#include <string.h>

#include "milter.h"

/* section_len - the header section of p[0..n) with its empty line, or 0
 * when it does not end within n (more = the message goes on). */
static size_t section_len(const char *p, size_t n, bool more)
{
    if (n >= 2 && p[0] == '\r' && p[1] == '\n')
        return 2; /* no header at all */
    const char *e = memmem(p, n, "\r\n\r\n", 4);
    if (e)
        return (size_t)(e - p) + 4;
    return more ? 0 : n; /* a message of headers only */
}

/* milterio_edit_head - see milterio.h. */
bool milterio_edit_head(const struct milterio_result *r, const struct filter_src *src,
                        struct sb *section, struct sb *added, uint64_t *skip, filter_log_fn log,
                        void *arg)
{
    if (!r || !r->nedits)
        return false;
    size_t n = src->len < MILTERIO_EDIT_MAX ? src->len : MILTERIO_EDIT_MAX;
    char *buf = malloc(n ? n : 1);
    bool ok = buf && filter_src_fill(src, 0, buf, n) >= 0;
    size_t len = ok ? section_len(buf, n, src->len > n) : 0;
    if (!len) {
        filter_logf(log, arg, "milters: %zu chgheader edit(s) not applied: %s", r->nedits,
                    ok ? "header section over 256 KiB" : "message read failed");
        free(buf);
        return false;
    }
    ok = milter_hdr_edit_apply(buf, len, r->edits, r->nedits, section, added);
    free(buf);
    if (!ok) {
        filter_logf(log, arg, "milters: chgheader edits not applied: out of memory");
        return false;
    }
    *skip = len;
    filter_logf(log, arg,
                "milters: %zu chgheader edit(s) applied: header section %zu -> %zu octets",
                r->nedits, len, section->len);
    return true;
}
