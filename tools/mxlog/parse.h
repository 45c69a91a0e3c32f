/* parse.h - one receivelog line -> time, session id, text and kind; the
 * argument helpers the reconstruction needs (addresses, summary fields).
 * Pure functions over bytes, no I/O, no allocation; any thread. */
#ifndef MXLOG_PARSE_H
#define MXLOG_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MXL_PREFIX_LEN 35u /* " [dd/Mon/yyyy:HH:MM:SS], XXXXXXXX, " */
#define MXL_SID_OFF 25u    /* offset of the 8 hex digits of the id */

/* What a line says, from its text alone (dialogue and check lines look the
 * same in the file). */
enum mxl_kind {
    MXL_K_BAD = 0,       /* not in the format */
    MXL_K_OTHER,         /* any other check or dialogue line */
    MXL_K_START,         /* mxringd started (...) */
    MXL_K_STOP,          /* mxringd stopped (...) */
    MXL_K_LOST,          /* receivelog: N lines lost (...) */
    MXL_K_CONNECT,       /* Connection accepted: client [IP]:PORT, ... */
    MXL_K_REPLY,         /* NNN text / NNN-text */
    MXL_K_HELO,          /* HELO/EHLO name */
    MXL_K_MAIL,          /* MAIL FROM:<...> */
    MXL_K_RCPT,          /* RCPT TO:<...> */
    MXL_K_DATA,          /* DATA */
    MXL_K_RSET,          /* RSET */
    MXL_K_DOT,           /* . (end of data) */
    MXL_K_SUMMARY,       /* Transaction summary: ... */
    MXL_K_CLOSE,         /* CloseClient Started. (reason) */
    MXL_K_CLOSESOCKET,   /* closesocket() */
    MXL_K_RCPT_REFUSED,  /* RCPT refused: <a> User unknown / Relaying denied */
    MXL_K_MAIL_REFUSED,  /* MAIL refused: why */
    MXL_K_AUTH_OK,       /* AUTH success: user U (MECH) */
    MXL_K_AUTH_FAILED,   /* AUTH failed (n of m): why */
    MXL_K_TLS_OK,        /* TLS established: VERSION, cipher C */
    MXL_K_TLS_FAILED,    /* TLS failed: why */
    MXL_K_MSG_ACCEPTED,  /* Message accepted: queue id X, ... */
    MXL_K_MSG_REFUSED,   /* Message refused (N octets): reason */
    MXL_K_MSG_NOTQUEUED, /* Message not queued: why */
    MXL_K_SURBL,         /* SURBL verdict: ... */
    MXL_K_VIRUS,         /* Antivirus: stream: NAME FOUND: action */
    MXL_K_TIMEOUT,       /* timeout_command|timeout_data timeout */
    MXL_K_PER_IP,        /* max_sessions_per_ip (...) reached ... */
    MXL_K_RATE,          /* max_connect_rate_per_ip (...) exceeded ... */
    MXL_K_LIMIT,         /* max_sessions (...) reached ... */
    MXL_K_PREGREET,      /* client talked before the greeting ... */
    MXL_K_EOF_DATA,      /* end of input inside DATA ... */
    MXL_K_DNSBL,         /* DNSBL verdict: score S (threshold T): blocked using Z | pass */
    MXL_K_PROXY_REFUSED, /* PROXY header refused: why */
    MXL_K_COUNT
};

struct mxl_line {
    int64_t t;    /* local civil time: seconds since 1970-01-01 00:00 */
    uint32_t sid; /* session id (0 = the process's own lines) */
    enum mxl_kind kind;
    const char *text; /* after the prefix, not NUL-terminated */
    size_t len;
};

/* mxl_parse_line - parse one line (without its '\n'; a trailing '\r' is
 * kept in the text). Returns the kind; MXL_K_BAD leaves *out unspecified
 * except kind. */
enum mxl_kind mxl_parse_line(const char *p, size_t n, struct mxl_line *out);
/* The time stamp of the previous line: consecutive lines mostly share
 * their second, so their prefix is parsed once (zero it to start). */
struct mxl_tcache {
    char stamp[24];
    int64_t t;
    bool valid;
};

/* mxl_parse_line_c - mxl_parse_line with a time-stamp cache. */
enum mxl_kind mxl_parse_line_c(const char *p, size_t n, struct mxl_line *out, struct mxl_tcache *c);
/* mxl_classify - the kind of a line's text (prefix stripped). */
enum mxl_kind mxl_classify(const char *t, size_t n);
/* mxl_parse_time - " [dd/Mon/yyyy:HH:MM:SS]" at p (>= 23 bytes) -> civil
 * seconds; false if malformed. */
bool mxl_parse_time(const char *p, int64_t *out);
/* mxl_parse_hex8 - 8 hex digits -> value; false if any is not hex. */
bool mxl_parse_hex8(const char *p, uint32_t *out);

/* A slice of a line. */
struct mxl_str {
    const char *p;
    size_t n;
};

/* mxl_angle_addr - the address inside the first <...> of t (empty for <>);
 * false when there is none. */
bool mxl_angle_addr(const char *t, size_t n, struct mxl_str *addr);
/* mxl_summary_fields - the fields of a "Transaction summary:" line by its
 * fixed layout (core/session_log.c): client helo tls auth from=<...>, then
 * rcpts rcpts_refused size result [id] [reason="..."]. The server's tail
 * is taken from the right and the sender between "from=<" and the '>'
 * before it, so client text (HELO name, a quoted local part holding '>',
 * '"', " result=...") never becomes a field of its own. Returns how many
 * fields went into kv (in line order); 0 when the layout does not match. */
struct mxl_kv;
size_t mxl_summary_fields(const char *t, size_t n, struct mxl_kv *kv, size_t max);
/* mxl_field - value of key=value in a summary line ("key=" must start the
 * text or follow a space); a value is up to the next space, or a "..."
 * quoted string, or <...>. False when absent. */
bool mxl_field(const char *t, size_t n, const char *key, struct mxl_str *val);
/* One key=value of a summary line (value without its quotes or <>). */
struct mxl_kv {
    struct mxl_str key, val;
};

/* mxl_fields - every key=value of t, left to right, into kv (at most
 * max); returns how many. */
size_t mxl_fields(const char *t, size_t n, struct mxl_kv *kv, size_t max);
/* mxl_after - the text after prefix lit (case-sensitive), or false. */
bool mxl_after(const char *t, size_t n, const char *lit, struct mxl_str *rest);
/* mxl_u64 - decimal digits at the start of s (stops at the first other). */
uint64_t mxl_u64(struct mxl_str s);
/* mxl_ieq - case-insensitive equality of two slices (ASCII). */
bool mxl_ieq(struct mxl_str a, const char *b, size_t bn);

/* mxl_civil_from - split civil seconds into y, m, d, H, M, S. */
void mxl_civil_from(int64_t t, int *y, int *mo, int *d, int *h, int *mi, int *s);
/* mxl_civil_to - civil seconds of a date and time (no time zone). */
int64_t mxl_civil_to(int y, int mo, int d, int h, int mi, int s);

#endif
