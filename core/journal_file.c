/* journal_file.c - the journal's files (see journal_file.h): names, listing,
 * start-up recovery and --check-queue. Blocking syscalls, main thread.
 * STUB: the API compiles; the implementation follows. */
#include "journal_file.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

void jrn_seg_name(char out[JRN_NAME_MAX], unsigned worker, uint64_t segno)
{
    snprintf(out, JRN_NAME_MAX, "w%02x-%016" PRIx64 ".jrn", worker & 0xFFu, segno);
}

void jrn_spare_name(char out[JRN_NAME_MAX], uint64_t segno)
{
    snprintf(out, JRN_NAME_MAX, "spare-%016" PRIx64 ".jrn", segno);
}

bool jrn_parse_name(const char *name, bool *spare, unsigned *worker, uint64_t *segno)
{
    (void)name, (void)spare, (void)worker, (void)segno;
    return false;
}

int jrn_dir_scan(const char *journal_dir, struct jrn_dirlist *out)
{
    (void)journal_dir;
    memset(out, 0, sizeof(*out));
    out->next_segno = 1;
    return 0;
}

void jrn_dirlist_free(struct jrn_dirlist *l)
{
    (void)l;
}

int jrn_put_file(int basefd, const char *qid, const struct iovec *iov, size_t niov)
{
    (void)basefd, (void)qid, (void)iov, (void)niov;
    return -ENOSYS;
}

int jrn_recover_workdir(const char *workdir, FILE *report, struct jrn_recover_stats *st)
{
    (void)workdir, (void)report;
    if (st) {
        memset(st, 0, sizeof(*st));
        st->next_segno = 1;
    }
    return 0;
}

int jrn_check(const char *workdir, FILE *out)
{
    (void)workdir, (void)out;
    return 0;
}
