/* mxbench_stats.h - what mxbench counts: error kinds (transport failures
 * and unexpected replies per stage), session kinds of a --mix, refusals by
 * reply code and enhanced status code, the cumulative counters of a thread
 * and one second's worth of them. Each thread counts into its own; the
 * main thread (or the series writer, under its lock) merges. */
#ifndef MXBENCH_STATS_H
#define MXBENCH_STATS_H

#include <stdint.h>

#include "mxbench_hist.h"

#define MXB_TLS_DESC 96     /* "<version> <cipher>" */
#define MXB_REFUSALS_MAX 32 /* distinct (code, enhanced code) pairs kept */

/* Error kinds, counted separately: transport failures first, then an
 * unexpected reply per stage. */
enum mxb_err {
    MXB_E_CONNECT,  /* socket() or connect() failed (not ECONNREFUSED) */
    MXB_E_REFUSED,  /* connect: ECONNREFUSED */
    MXB_E_TIMEOUT,  /* an operation took longer than --timeout */
    MXB_E_RESET,    /* send/receive failed (reset, broken pipe) */
    MXB_E_EOF,      /* the server closed while a reply was due */
    MXB_E_TLS,      /* TLS handshake failed, or a TLS error after it */
    MXB_E_PROTOCOL, /* a reply that is not SMTP, or too long */
    MXB_E_BANNER,   /* unexpected reply code, per stage ... */
    MXB_E_EHLO,
    MXB_E_MAIL,
    MXB_E_RCPT,
    MXB_E_DATA,
    MXB_E_BODY, /* ... reply to the end of data */
    MXB_E_QUIT,
    MXB_E_STARTTLS, /* ... reply to STARTTLS ... */
    MXB_E_AUTH,     /* ... and to AUTH */
    MXB_E_COUNT
};

/* mxb_err_names - the JSON/summary name of each error kind. */
extern const char *const mxb_err_names[MXB_E_COUNT];

/* Session kinds of --mix, as flags: bit 0 STARTTLS, bit 1 AUTH. */
enum mxb_kind {
    MXB_K_PLAIN = 0,
    MXB_K_STARTTLS = 1,
    MXB_K_AUTH = 2,
    MXB_K_TLS_AUTH = 3,
    MXB_K_COUNT
};

/* mxb_kind_names - "plain", "starttls", "auth", "starttls-auth". */
extern const char *const mxb_kind_names[MXB_K_COUNT];

/* One kind of refusal: a reply code (4xx/5xx) with its enhanced code. */
struct mxb_refusal {
    unsigned code;
    unsigned enh; /* MXB_ENH() packed, 0: none */
    uint64_t count;
};

/* Cumulative counters; one second's are the difference of two snapshots. */
struct mxb_counts {
    uint64_t sent;               /* transactions started (MAIL sent) */
    uint64_t messages;           /* accepted with 250 */
    uint64_t failed;             /* claimed but not accepted */
    uint64_t late;               /* open loop: waited for a free connection */
    uint64_t unsent;             /* open loop: scheduled, never started by the end */
    uint64_t slipped;            /* open loop: started over 1 ms late, not for the cap */
    uint64_t aborted;            /* in flight at Ctrl-C */
    uint64_t refused4, refused5; /* replies by class that ended a message */
    uint64_t connections;        /* connects that succeeded */
    uint64_t bytes;              /* octets sent on the wire (ciphertext after STARTTLS) */
    uint64_t errors[MXB_E_COUNT];
};

/* One thread's (or the run's) statistics. */
struct mxb_stats {
    struct mxb_counts c;
    struct mxb_hist lat_ns;           /* see mxbench.h: from MAIL or from the schedule */
    uint64_t handshakes;              /* TLS handshakes completed */
    struct mxb_hist hs_ns;            /* ClientHello sent .. handshake done */
    uint64_t kind_conns[MXB_K_COUNT]; /* connections per session kind */
    uint64_t kind_msgs[MXB_K_COUNT];  /* accepted messages per session kind */
    uint64_t max_lag_ns;              /* open loop: worst start delay not due to the cap */
    struct mxb_refusal refusals[MXB_REFUSALS_MAX];
    unsigned nrefusals;
    uint64_t refusals_other;     /* past MXB_REFUSALS_MAX distinct pairs */
    char tls_desc[MXB_TLS_DESC]; /* version and cipher of the first handshake */
    const char *tls_err;         /* reason of the first TLS failure (static text) */
};

/* One second of one thread (or of all, merged). */
struct mxb_sec {
    struct mxb_counts c;    /* what happened in the second */
    uint64_t open;          /* connections open at its end */
    struct mxb_hist lat_ns; /* latencies of the messages accepted in it */
};

/* mxb_stats_init - empty statistics. */
void mxb_stats_init(struct mxb_stats *s);

/* mxb_stats_merge - add src into dst (refusal pairs matched by value). */
void mxb_stats_merge(struct mxb_stats *dst, const struct mxb_stats *src);

/* mxb_refusal_count - count one refusal with reply code and enhanced code
 * enh; also into refused4/refused5 by class. */
void mxb_refusal_count(struct mxb_stats *s, unsigned code, unsigned enh);

/* mxb_counts_add - dst += src, field by field. */
void mxb_counts_add(struct mxb_counts *dst, const struct mxb_counts *src);

/* mxb_counts_sub - out = a - b, field by field (b a previous snapshot of a). */
void mxb_counts_sub(struct mxb_counts *out, const struct mxb_counts *a, const struct mxb_counts *b);

/* mxb_counts_errors - the sum of every error kind. */
uint64_t mxb_counts_errors(const struct mxb_counts *c);

#endif
