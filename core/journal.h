/* journal.h - the queue journal's on-disk format, pure (no I/O): record
 * layout, CRC32C, record encoding and decoding, and the recovery planner
 * that turns a worker's segments back into committed messages. The writer
 * (net/queue.c) appends records through io_uring; start-up recovery and
 * `mxringd --check-queue` read them back. Any thread may call these.
 *
 * Layout. Each worker appends to its own segment files
 * <workdir>/queue/journal/w<WW>-<SEGNO>.jrn (WW: worker, 2 hex digits;
 * SEGNO: 16 hex digits, increasing per worker). A segment is preallocated
 * and zero-filled (or recycled: renamed to a new SEGNO), so the writer's
 * fdatasync flushes data only. A segment is a sequence of records from
 * offset 0, the first one of type JRN_SEG; what follows the last record is
 * zeros (new file) or records of an older use of the file (other segno).
 *
 * Record = 48-octet header + payload, no padding, all integers little-endian:
 *   0  u32 magic    JRN_MAGIC
 *   4  u8  type     enum jrn_type
 *   5  u8  flags    JRN_F_*
 *   6  u16 worker   writer's worker index
 *   8  u32 len      payload octets
 *  12  u32 crc      CRC32C of the 48 header octets (crc field zero) + payload
 *  16  u64 segno    segment this record was written into (recycling guard)
 *  24  c20 qid      queue id, 20 ASCII hex digits (zeros for SEG/CHECKPOINT)
 *  44  u32 zero     reserved, 0
 *
 * Payloads:
 *   JRN_SEG         empty: the first record of every segment.
 *   JRN_CHUNK       1..JRN_CHUNK_MAX octets of the message (dot-unstuffed,
 *                   CRLF line ends), in order, for transaction qid.
 *   JRN_COMMIT      u64 body_len, u32 body_crc (CRC32C of all chunk payloads
 *                   of qid concatenated), u32 head_len, then head_len octets:
 *                   the queue file's prefix (envelope block, empty line,
 *                   trace headers) as it goes before the body in new/<qid>.
 *                   flags JRN_F_QUARANTINE: the file goes to quarantine/new.
 *                   flags JRN_F_SKIP: a u64 skip follows the head: the file
 *                   leaves out the body's first skip octets (skip <=
 *                   body_len), whose replacement ends the head (a milter's
 *                   header edits: the header section rewritten).
 *   JRN_ABORT       empty: qid will never be committed (optional marker).
 *   JRN_CHECKPOINT  u64 segno, u64 offset: the low-water mark. Every message
 *                   whose COMMIT lies before (segno, offset) in this
 *                   worker's journal is durable in new/ (or quarantine/new);
 *                   every record a message not yet durable there needs
 *                   lies at or after it.
 * A message is committed when its COMMIT record is durable; the 250 is sent
 * only then. */
#ifndef MXRING_JOURNAL_H
#define MXRING_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define JRN_MAGIC 0x314A584Du /* "MXJ1" as little-endian octets */
#define JRN_HDR_LEN 48
#define JRN_QID_LEN 20 /* = SPOOL_ID_LEN */
#define JRN_CHUNK_MAX (64 * 1024)
#define JRN_COMMIT_FIXED 16 /* body_len, body_crc, head_len */

enum jrn_type {
    JRN_SEG = 1,
    JRN_CHUNK = 2,
    JRN_COMMIT = 3,
    JRN_ABORT = 4,
    JRN_CHECKPOINT = 5,
};

enum jrn_flag {
    JRN_F_QUARANTINE = 1u << 0,
    JRN_F_SKIP = 1u << 1,
};

/* crc32c - CRC-32C (Castagnoli, reflected; the iSCSI/ext4 CRC) of buf,
 * continuing from crc: crc32c(0, ...) starts a new one, and
 * crc32c(crc32c(0, a), b) == crc32c(0, a || b). */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* jrn_encode - fill hdr[JRN_HDR_LEN] for a record whose payload is the
 * concatenation of iov[0..niov) and compute its CRC. qid may be NULL
 * (zeros). Returns the payload length (the record is JRN_HDR_LEN + that). */
uint32_t jrn_encode(uint8_t hdr[JRN_HDR_LEN], enum jrn_type type, unsigned flags, unsigned worker,
                    uint64_t segno, const char *qid, const struct iovec *iov, int niov);

/* jrn_commit_fixed - the first JRN_COMMIT_FIXED octets of a commit payload. */
void jrn_commit_fixed(uint8_t out[JRN_COMMIT_FIXED], uint64_t body_len, uint32_t body_crc,
                      uint32_t head_len);

/* One decoded record; payload points into the buffer given to jrn_decode. */
struct jrn_rec {
    enum jrn_type type;
    unsigned flags;
    unsigned worker;
    uint64_t segno;
    char qid[JRN_QID_LEN + 1];
    const uint8_t *payload;
    uint32_t len;
};

enum jrn_status {
    JRN_OK = 0, /* *rec filled; the record is JRN_HDR_LEN + rec->len octets */
    JRN_END,    /* clean end: zeros, a record of another segno, or no bytes */
    JRN_TORN,   /* a partial or corrupt record: the valid data ends here */
};

/* jrn_decode - the record at buf[0..avail) of segment segno. */
enum jrn_status jrn_decode(const uint8_t *buf, size_t avail, uint64_t segno, struct jrn_rec *rec);

#endif
