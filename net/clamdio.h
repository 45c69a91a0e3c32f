/* clamdio.h - antivirus scans on a worker's io_uring ring: a message, read
 * piece by piece through its source, streamed to clamd with INSTREAM (the
 * framing of core/clamd.h) over the unix or TCP socket of the clamd key,
 * and clamd's reply read back. One scan per message; the filter job
 * (filter.c) runs it as one of its parts. Worker thread only. */
#ifndef MXRING_CLAMDIO_H
#define MXRING_CLAMDIO_H

#include "filter.h"

#define CLAMDIO_PIECE (64u * 1024u) /* message octets read and sent at a time */

struct io_uring;
struct config;

/* clamdio_scan - scan the message of src with cfg's clamd, bounded by
 * clamd_timeout_ms; messages over clamd_max_size are not scanned (that is
 * logged). At most CLAMDIO_PIECE octets of the message are held at a time.
 * Logs one "Antivirus:" line through log, then calls done exactly once
 * (maybe before returning) with PASS, REJECT_VIRUS or QUARANTINE (by
 * virus_action), or TEMPFAIL when the scan failed and scanner_failure says
 * so (a failed read of the message is a failed scan). *src is copied;
 * src->arg, what it reads and cfg stay valid until done. */
void clamdio_scan(struct io_uring *ring, const struct config *cfg, const struct filter_src *src,
                  filter_log_fn log, filter_done_fn done, void *arg);

#endif
