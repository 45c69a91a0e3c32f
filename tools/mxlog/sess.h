/* sess.h - session reconstruction of mxlog: lines of interleaved sessions
 * are fed in file order and grouped by session id; each transaction and
 * each session is handed to a callback when it ends (or is cut off).
 * One engine per thread; no locking. */
#ifndef MXLOG_SESS_H
#define MXLOG_SESS_H

#include "parse.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MXL_IP_MAX 48
#define MXL_NAME_MAX 256
#define MXL_ADDR_MAX 320
#define MXL_WHY_MAX 256
#define MXL_QID_MAX 24

/* Recipient status. */
enum mxl_rcpt_st {
    MXL_RCPT_OK = 0,
    MXL_RCPT_UNKNOWN,
    MXL_RCPT_RELAY,
    MXL_RCPT_TOO_MANY,
    MXL_RCPT_OTHER
};

/* A growable byte buffer (kept across sessions: no per-line allocation). */
struct mxl_buf {
    char *p;
    size_t len, cap;
};

/* One transaction (MAIL .. its outcome). Recipients are packed in rcpts as
 * <status byte><address>\0 entries. The fields every line touches come
 * first (one cache line with the session's), the strings after them. */
struct mxl_txn {
    int64_t t_start, t_end;
    unsigned nrcpt_ok, nrcpt_refused;
    uint64_t size;
    enum mxl_kind last_cmd; /* MAIL/RCPT/DATA awaiting its reply */
    bool have_summary;
    bool in_data, data_done, open;
    bool mail_refused;
    char pending_why[MXL_WHY_MAX]; /* a refusal line waiting for its reply */
    struct mxl_buf rcpts;
    char result[16]; /* queued quarantined refused tempfail aborted ("" = none yet) */
    char from[MXL_ADDR_MAX];
    char reason[MXL_WHY_MAX];
    char qid[MXL_QID_MAX];
    char spam_domain[MXL_NAME_MAX], spam_zone[MXL_NAME_MAX];
    char virus[MXL_NAME_MAX];
    char pending_rcpt[MXL_ADDR_MAX];
    char rcpt_why[MXL_WHY_MAX]; /* the first RCPT refused for another reason (a milter) */
};

/* How a session ended. */
enum mxl_end { MXL_END_CLOSED = 0, MXL_END_RESTART, MXL_END_EOF };

/* One session. The scalars come first, then the transaction's, so a line
 * of the dialogue touches one or two cache lines of a 5 KB slot. */
struct mxl_sess {
    uint32_t sid;
    unsigned nlines;
    int64_t t_start, t_end;
    unsigned ntxn;
    unsigned port, local_port;
    unsigned auth_failures, auth_max;
    unsigned mark;       /* free for the sink (0 when the session opens) */
    enum mxl_kind limit; /* PER_IP, RATE, LIMIT or 0 */
    enum mxl_end end;
    bool trusted;
    bool pregreet, timeout_data, eof_data;
    bool cut_txn; /* the cut also ended an open transaction */
    struct mxl_txn txn;
    struct mxl_buf raw;      /* raw lines, '\n'-separated (when keep_raw) */
    char host[MXL_NAME_MAX]; /* receivelog host folder */
    char ip[MXL_IP_MAX];
    char helo[MXL_NAME_MAX];
    char tls[32];
    char tls_why[MXL_WHY_MAX];
    char proxy_why[MXL_WHY_MAX]; /* PROXY header refused: why */
    char dnsbl[MXL_WHY_MAX];     /* "Z (score S, threshold T)" when blocked */
    char auth[MXL_NAME_MAX];
    char auth_fail_user[MXL_NAME_MAX];
    char close_reason[64];
    char note[512]; /* free for the sink ("" when the session opens) */
};

/* Callbacks: a transaction ended (s->txn is it), a session ended. */
struct mxl_sink {
    void (*txn)(void *arg, struct mxl_sess *s, const struct mxl_txn *t);
    void (*sess)(void *arg, struct mxl_sess *s);
    void *arg;
};

struct mxl_engine;

/* mxl_engine_new - an engine calling sink; keep_raw keeps every session's
 * raw lines for -v. NULL when out of memory. */
struct mxl_engine *mxl_engine_new(const struct mxl_sink *sink, bool keep_raw);
void mxl_engine_free(struct mxl_engine *e);
/* mxl_engine_host - the host folder name of the lines that follow. */
void mxl_engine_host(struct mxl_engine *e, const char *host);
/* mxl_engine_feed - one parsed line (kind != BAD); raw is the whole line
 * (for keep_raw). Returns false when out of memory. */
bool mxl_engine_feed(struct mxl_engine *e, const struct mxl_line *l, const char *raw,
                     size_t rawlen);
/* mxl_engine_end_all - every open session ends as how (a restart or the
 * end of the input). */
void mxl_engine_end_all(struct mxl_engine *e, enum mxl_end how, int64_t t);
/* mxl_engine_adopt - move every open session of from into e (the two
 * halves of a file walked by two threads): a session of the same id still
 * open in e ends first, cut off. from is left empty (free it); its sink
 * has had every line of those sessions so far, e's gets their end. False
 * when out of memory. */
bool mxl_engine_adopt(struct mxl_engine *e, struct mxl_engine *from);
/* mxl_engine_open - sessions currently open. */
size_t mxl_engine_open(const struct mxl_engine *e);
/* mxl_engine_is_open - is session sid open? */
bool mxl_engine_is_open(const struct mxl_engine *e, uint32_t sid);

/* mxl_rcpt_next - iterate the packed recipients: *pos starts at 0; false at
 * the end. */
bool mxl_rcpt_next(const struct mxl_txn *t, size_t *pos, enum mxl_rcpt_st *st, const char **addr);

/* mxl_buf_add - append n bytes (+ optional NUL); false when out of memory. */
bool mxl_buf_add(struct mxl_buf *b, const void *p, size_t n);

#endif
