/* smtp_bdat.h - CHUNKING (RFC 3030) without I/O: the BDAT argument parser
 * ("BDAT <count> [LAST]") and the byte counter that tells, for every read,
 * which octets belong to the current chunk and where the next command line
 * begins. Pure: no allocation, no global state; one struct bdat_rx belongs
 * to one session (one thread) at a time. */
#ifndef MXRING_SMTP_BDAT_H
#define MXRING_SMTP_BDAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest chunk size accepted by the parser: 19 digits always fit in 63
 * bits, so the arithmetic below can never overflow (RFC 3030 sets no
 * limit; max_message_size refuses anything near it long before). */
#define BDAT_SIZE_DIGITS_MAX 19

enum bdat_perr {
    BDAT_P_OK = 0,
    BDAT_P_SYNTAX,   /* no count, a non-digit, or something other than LAST after it */
    BDAT_P_OVERFLOW, /* the count (digits only) has more than BDAT_SIZE_DIGITS_MAX of them */
};

/* bdat_parse - parse the argument of BDAT (the text after "BDAT ", without
 * CRLF): 1*DIGIT, optionally followed by one or more SP and "LAST" (any
 * case), optionally followed by SP. Leading zeros are allowed. */
enum bdat_perr bdat_parse(const char *arg, size_t len, uint64_t *size, bool *last);

/* The receiving side of one session: the chunk being read (if any) and the
 * totals of the transaction's chunks. Zero-initialised = nothing read. */
struct bdat_rx {
    uint64_t size;      /* octets of the current (or just completed) chunk */
    uint64_t remaining; /* octets of the current chunk still to come */
    uint64_t total;     /* octets announced by this transaction's accepted chunks */
    uint64_t discarded; /* octets announced by its refused chunks */
    unsigned chunks;    /* BDAT commands accepted in this transaction */
    bool last;          /* the current (or just completed) chunk is the LAST */
    bool discard;       /* the current chunk's octets are thrown away */
};

/* bdat_reset - a new transaction: forget totals (a chunk being discarded
 * keeps being discarded: the session must stay in sync). */
void bdat_reset(struct bdat_rx *b);

/* bdat_fits - would a chunk of size octets keep this transaction's total
 * within limit octets? (0 = no limit.) */
bool bdat_fits(const struct bdat_rx *b, uint64_t size, uint64_t limit);

/* bdat_begin - a BDAT command was answered or accepted: its size octets
 * follow. discard: they are skipped (a refused chunk), otherwise they are
 * message content and count toward total and chunks. */
void bdat_begin(struct bdat_rx *b, uint64_t size, bool last, bool discard);

/* bdat_reading - is a chunk's content still expected? */
bool bdat_reading(const struct bdat_rx *b);

/* bdat_take - of avail octets just received, how many belong to the current
 * chunk (the rest starts the next command line). */
size_t bdat_take(const struct bdat_rx *b, size_t avail);

/* bdat_consume - n octets of the chunk (n <= bdat_take) were handled;
 * true when that completed the chunk. */
bool bdat_consume(struct bdat_rx *b, size_t n);

#endif
