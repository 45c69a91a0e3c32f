/* qstate.h - the delivery side of the queue's on-disk formats, pure over
 * bytes: parsing a queue file's envelope block (README "Queue file
 * format", written by core/spool.c), formatting one for generated messages
 * (bounces), and the per-message delivery state file queue/state/<qid>.
 * No I/O here; the engine reads and writes the files. Any thread.
 *
 * State file (text, LF line ends, written atomically by the engine: write
 * state/<qid>.tmp, fsync, rename):
 *
 *     MXRING-STATE 1
 *     arrival 1795995400
 *     held no
 *     bounce_sent no
 *     delay_warned yes                      (only once the delay DSN is queued)
 *     rcpt <addr> <pending|sent|bounced> <attempts> <next-attempt-unix> <last reply>
 *     ...                                   (one rcpt line per recipient, envelope order)
 *
 * <addr> is escaped (bytes <= 0x20, 0x7f and '\' as \xHH); <last reply> is
 * the rest of the line, escaped the same way except that spaces are kept;
 * it may be empty. Unknown keys are an error (the file is ours). A missing
 * state file means every recipient is pending with 0 attempts
 * (qstate_from_env). */
#ifndef MXRING_QSTATE_H
#define MXRING_QSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define QSTATE_MAGIC "MXRING-STATE 1"
#define QFILE_MAGIC "MXRING-QUEUE 1"
#define QFILE_MAGIC_DSN "MXRING-QUEUE 2" /* same format plus the DSN lines */
#define QFILE_ID_LEN 20
#define QSTATE_LAST_MAX 1024 /* last reply text kept (longer is cut) */

/* A queue file's envelope block. Strings are owned (qfile_env_free). */
struct qfile_env {
    char id[QFILE_ID_LEN + 1]; /* 20 upper-case hex digits */
    int64_t arrival;           /* Unix time */
    char *client;              /* "ip port", "" if absent */
    char *helo;                /* may be "" */
    char *protocol;            /* "SMTP" / "ESMTP", "" if absent */
    bool body8;                /* body 8BITMIME */
    bool smtputf8;
    char *sender; /* "" = null sender */
    char **rcpts;
    size_t nrcpt;     /* >= 1 */
    uint64_t size;    /* octets after the empty line */
    size_t msg_off;   /* offset of the message (after the empty line) */
    char *quarantine; /* NULL unless the file carries a quarantine reason */
    /* RFC 3461 DSN parameters (version 2 files; absent in version 1) */
    unsigned ret;     /* enum smtp_ret: 0 none, 1 FULL, 2 HDRS */
    char *envid;      /* ENVID xtext, NULL = none */
    unsigned *notify; /* nrcpt NOTIFY masks (enum smtp_notify), 0 = none */
    char **orcpts;    /* nrcpt ORCPT values "type;xtext", NULL = none */
};

enum qfile_status { QFILE_OK = 0, QFILE_MORE, QFILE_BAD };

/* qfile_parse_envelope - parse the envelope block at the start of buf (len
 * octets: the file, or a prefix of it; magic "MXRING-QUEUE 1" or 2). The
 * DSN lines "ret FULL|HDRS", "envid <xtext>" and, after the rcpt line they
 * belong to, "notify <list>" and "orcpt <type;xtext>" (each at most once)
 * fill ret/envid/notify/orcpts. QFILE_OK: *env filled (free it
 * with qfile_env_free), env->msg_off is where the message starts.
 * QFILE_MORE: the empty line ending the block is not within buf yet (read
 * more and call again; *env untouched). QFILE_BAD: err says "line N:
 * what" (wrong magic, unknown or repeated key, bad id/arrival/size/body/
 * smtputf8 value, no recipient, a NUL or CR byte). Unknown keys are
 * skipped (the writer may add some); each known key but rcpt at most once;
 * id, arrival, sender, size and one rcpt are required. */
enum qfile_status qfile_parse_envelope(const char *buf, size_t len, struct qfile_env *env,
                                       char *err, size_t errlen);

/* qfile_complete - does a file of file_len octets hold the whole message
 * (exactly env->size octets after the envelope block)? */
bool qfile_complete(const struct qfile_env *env, uint64_t file_len);

/* qfile_env_free - release what parsing allocated (the struct itself is
 * the caller's); safe on a zeroed struct and twice. */
void qfile_env_free(struct qfile_env *env);

/* qfile_id_valid - 20 upper-case hex digits (a name in queue folders)? */
bool qfile_id_valid(const char *s, size_t len);

/* qfile_format_envelope - the envelope block for a generated message
 * (bounce): magic, id, arrival, "client 127.0.0.1 0"... as given in env
 * (empty client/helo/protocol fields are written as "-" / "" / "LOCAL"),
 * sender, rcpt lines, size, the empty line; appended to out. The caller
 * appends exactly env->size message octets. false on ENOMEM or a field
 * containing CR/LF/NUL. */
bool qfile_format_envelope(const struct qfile_env *env, struct sb *out);

/* ---- the state file ---------------------------------------------------- */

enum qstate_rcpt_state { QST_PENDING = 0, QST_SENT, QST_BOUNCED };

struct qstate_rcpt {
    char *addr;
    enum qstate_rcpt_state state;
    unsigned attempts;
    int64_t next; /* Unix time of the next attempt (0 = now) */
    char *last;   /* last reply / error text, "" if none */
};

struct qstate {
    int64_t arrival;
    bool held;
    bool bounce_sent;
    bool delay_warned; /* the delay DSN (delay_warning_time) was queued */
    struct qstate_rcpt *rcpts;
    size_t nrcpt;
};

/* qstate_parse - a state file's bytes into *st (free with qstate_free).
 * false with "line N: what" in err when malformed (*st is then empty). */
bool qstate_parse(const char *buf, size_t len, struct qstate *st, char *err, size_t errlen);

/* qstate_format - *st as a state file, appended to out; false on ENOMEM.
 * qstate_parse(qstate_format(st)) gives st back. */
bool qstate_format(const struct qstate *st, struct sb *out);

/* qstate_from_env - the state of a message never attempted: every
 * recipient pending, 0 attempts, next 0, held no. false on ENOMEM. */
bool qstate_from_env(const struct qfile_env *env, struct qstate *st);

/* qstate_matches_env - same recipients in the same order as the envelope?
 * (a state file that does not match is reported and rebuilt). */
bool qstate_matches_env(const struct qstate *st, const struct qfile_env *env);

/* qstate_set_last - replace a recipient's last reply with text (len octets,
 * cut at QSTATE_LAST_MAX); false on ENOMEM. */
bool qstate_set_last(struct qstate_rcpt *r, const char *text, size_t len);

/* qstate_done - is every recipient sent or bounced? */
bool qstate_done(const struct qstate *st);

/* qstate_next_attempt - the earliest next attempt among pending
 * recipients; INT64_MAX when none is pending. */
int64_t qstate_next_attempt(const struct qstate *st);

/* qstate_free - release (the struct itself is the caller's). */
void qstate_free(struct qstate *st);

/* qstate_state_name - "pending", "sent", "bounced". */
const char *qstate_state_name(enum qstate_rcpt_state s);

#endif
