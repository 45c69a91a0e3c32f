/* milter.h - the Sendmail milter protocol (version 6, as libmilter speaks
 * it) without I/O: the packets the MTA sends (framing, SMFIC_* commands,
 * option negotiation, macros) written into growable buffers, an
 * incremental reader of the milter's SMFIR_* replies that accepts the
 * stream split anywhere, the decoding and validation of every reply, and
 * the check of a milter's own SMTP reply text. Pure: no I/O, no globals;
 * a reader belongs to one thread at a time.
 *
 * Wire format: every packet is a 4-octet big-endian length (covering the
 * command octet and the data), one command octet, then the data. */
#ifndef MXRING_MILTER_H
#define MXRING_MILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define MILTER_VERSION 6u
#define MILTER_LEN_PREFIX 4u
#define MILTER_CHUNK_MAX 65535u    /* body octets per SMFIC_BODY (no SMFIP_MDS_*) */
#define MILTER_REPLY_MAX 65536u    /* longest reply packet accepted (length field) */
#define MILTER_HDR_NAME_MAX 128u   /* longest header name a milter may add */
#define MILTER_REPLY_LINE_MAX 510u /* one SMTP reply line without CRLF (RFC 5321) */
#define MILTER_REPLY_LINES 16u     /* lines of a multi-line replycode */

/* Commands, MTA to milter (SMFIC_*). */
enum milter_cmd {
    MILTER_C_ABORT = 'A',
    MILTER_C_BODY = 'B',
    MILTER_C_CONNECT = 'C',
    MILTER_C_MACRO = 'D',
    MILTER_C_EOB = 'E',
    MILTER_C_HELO = 'H',
    MILTER_C_QUIT_NC = 'K',
    MILTER_C_HEADER = 'L',
    MILTER_C_MAIL = 'M',
    MILTER_C_EOH = 'N',
    MILTER_C_OPTNEG = 'O',
    MILTER_C_QUIT = 'Q',
    MILTER_C_RCPT = 'R',
    MILTER_C_DATA = 'T',
    MILTER_C_UNKNOWN = 'U',
};

/* Replies, milter to MTA (SMFIR_*). */
enum milter_rcmd {
    MILTER_R_ADDRCPT = '+',
    MILTER_R_DELRCPT = '-',
    MILTER_R_ADDRCPT_PAR = '2',
    MILTER_R_SHUTDOWN = '4',
    MILTER_R_ACCEPT = 'a',
    MILTER_R_REPLBODY = 'b',
    MILTER_R_CONTINUE = 'c',
    MILTER_R_DISCARD = 'd',
    MILTER_R_CHGFROM = 'e',
    MILTER_R_CONN_FAIL = 'f',
    MILTER_R_ADDHEADER = 'h',
    MILTER_R_INSHEADER = 'i',
    MILTER_R_SETSYMLIST = 'l',
    MILTER_R_CHGHEADER = 'm',
    MILTER_R_PROGRESS = 'p',
    MILTER_R_QUARANTINE = 'q',
    MILTER_R_REJECT = 'r',
    MILTER_R_SKIP = 's',
    MILTER_R_TEMPFAIL = 't',
    MILTER_R_REPLYCODE = 'y',
    MILTER_R_OPTNEG = 'O',
};

/* Actions a milter may take (SMFIF_*), offered in SMFIC_OPTNEG. */
enum milter_action_flag {
    MILTER_F_ADDHDRS = 0x01,
    MILTER_F_CHGBODY = 0x02,
    MILTER_F_ADDRCPT = 0x04,
    MILTER_F_DELRCPT = 0x08,
    MILTER_F_CHGHDRS = 0x10,
    MILTER_F_QUARANTINE = 0x20,
    MILTER_F_CHGFROM = 0x40,
    MILTER_F_ADDRCPT_PAR = 0x80,
    MILTER_F_SETSYMLIST = 0x100,
};
/* What mxringd lets a milter do: no body replacement, no new recipients,
 * no sender change. */
#define MILTER_ACTIONS_OFFERED \
    (MILTER_F_ADDHDRS | MILTER_F_DELRCPT | MILTER_F_CHGHDRS | MILTER_F_QUARANTINE)

/* Protocol steps (SMFIP_*): NO* = the milter does not want that stage,
 * NR_* = it sends no reply to it. */
enum milter_proto_flag {
    MILTER_P_NOCONNECT = 0x1,
    MILTER_P_NOHELO = 0x2,
    MILTER_P_NOMAIL = 0x4,
    MILTER_P_NORCPT = 0x8,
    MILTER_P_NOBODY = 0x10,
    MILTER_P_NOHDRS = 0x20,
    MILTER_P_NOEOH = 0x40,
    MILTER_P_NR_HDR = 0x80,
    MILTER_P_NOUNKNOWN = 0x100,
    MILTER_P_NODATA = 0x200,
    MILTER_P_SKIP = 0x400,
    MILTER_P_RCPT_REJ = 0x800,
    MILTER_P_NR_CONN = 0x1000,
    MILTER_P_NR_HELO = 0x2000,
    MILTER_P_NR_MAIL = 0x4000,
    MILTER_P_NR_RCPT = 0x8000,
    MILTER_P_NR_DATA = 0x10000,
    MILTER_P_NR_UNKN = 0x20000,
    MILTER_P_NR_EOH = 0x40000,
    MILTER_P_NR_BODY = 0x80000,
    MILTER_P_HDR_LEADSPC = 0x100000,
};
/* The steps mxringd can honour: every NO* and NR_* and SKIP (not
 * RCPT_REJ, HDR_LEADSPC or the larger data sizes). */
#define MILTER_PROTO_OFFERED 0xFF7FFu

/* Macro stages of SMFIC_MACRO, named by the command they precede. */
enum milter_stage {
    MILTER_S_CONNECT = 0,
    MILTER_S_HELO,
    MILTER_S_MAIL,
    MILTER_S_RCPT,
    MILTER_S_DATA,
    MILTER_S_HEADER,
    MILTER_S_EOH,
    MILTER_S_BODY,
    MILTER_S_EOM,
    MILTER_S_COUNT
};

/* milter_stage_cmd - the SMFIC_* command of a stage. */
char milter_stage_cmd(enum milter_stage st);
/* milter_stage_name - "connect", "HELO", ..., "end of message" (for the log). */
const char *milter_stage_name(enum milter_stage st);
/* milter_stage_skipped - does a milter that negotiated proto skip st? */
bool milter_stage_skipped(enum milter_stage st, uint32_t proto);
/* milter_stage_noreply - does it send no reply to st (NR_*)? EOM always
 * has one. */
bool milter_stage_noreply(enum milter_stage st, uint32_t proto);

/* ---- packets to the milter (each false on ENOMEM; out keeps what it had) */

/* milter_put - one packet: cmd and data[0..len) (len < MILTER_REPLY_MAX). */
bool milter_put(struct sb *out, char cmd, const void *data, size_t len);
/* milter_put_optneg - SMFIC_OPTNEG: version 6, actions and proto offered. */
bool milter_put_optneg(struct sb *out, uint32_t actions, uint32_t proto);
/* milter_put_connect - SMFIC_CONNECT: hostname, family ('4', '6', 'U' or
 * 'L' = unknown), port and address text (omitted for 'U'). */
bool milter_put_connect(struct sb *out, const char *hostname, char family, uint16_t port,
                        const char *addr);
/* milter_put_strings - one packet of n NUL-terminated strings (HELO, MAIL
 * with its ESMTP arguments, RCPT). */
bool milter_put_strings(struct sb *out, char cmd, const char *const *v, size_t n);
/* milter_put_macros - SMFIC_MACRO for the command cmd: names[i] = values[i]
 * for each i whose value is not NULL (names as "j" or "{daemon_name}"). */
bool milter_put_macros(struct sb *out, char cmd, const char *const *names,
                       const char *const *values, size_t n);
/* milter_put_header - SMFIC_HEADER: name, value (without the leading space
 * and the final CRLF; folded lines keep their CRLF). */
bool milter_put_header(struct sb *out, const char *name, size_t nlen, const char *value,
                       size_t vlen);

/* ---- replies from the milter --------------------------------------------- */

/* A decoded reply; strings point into the reader's buffer (valid until the
 * next milter_rd_feed) and are NUL-terminated. */
struct milter_reply {
    char cmd;                         /* enum milter_rcmd */
    uint32_t index;                   /* INSHEADER, CHGHEADER: 1-based header index */
    const char *name;                 /* ADDHEADER/INSHEADER/CHGHEADER: header name */
    const char *value;                /* the header value ("" in CHGHEADER: delete) */
    const char *text;                 /* REPLYCODE: the reply; QUARANTINE: the reason;
                              ADDRCPT/DELRCPT/CHGFROM: the address */
    const uint8_t *data;              /* the raw data (REPLBODY, unparsed others) */
    size_t len;                       /* octets of data */
    uint32_t version, actions, proto; /* OPTNEG */
};

/* Why a reply stream is broken. */
enum milter_rd_status {
    MILTER_RD_MORE = 0,  /* everything consumed, no complete reply yet */
    MILTER_RD_REPLY,     /* one reply decoded (maybe input left) */
    MILTER_RD_TOO_LONG,  /* length field 0 or over MILTER_REPLY_MAX */
    MILTER_RD_UNKNOWN,   /* a command octet that is no SMFIR_* */
    MILTER_RD_MALFORMED, /* data that does not fit the command */
    MILTER_RD_NOMEM,
};

/* The reader: zero-initialise; free with milter_rd_free. */
struct milter_rd {
    uint8_t hdr[MILTER_LEN_PREFIX + 1];
    size_t have_hdr; /* octets of hdr read */
    uint32_t len;    /* data octets of the current packet */
    size_t have;     /* data octets read */
    uint8_t *buf;    /* len + 1 octets (a NUL after the data) */
    size_t cap;
    bool failed; /* sticky: every later feed returns the error */
    enum milter_rd_status err;
};

/* milter_rd_feed - read from p[0..n): returns MORE with *used = n, REPLY
 * with *used = the octets that completed it (call again with the rest),
 * or an error (sticky). Whatever the splits of a stream, the same replies
 * come out in the same order. */
enum milter_rd_status milter_rd_feed(struct milter_rd *rd, const uint8_t *p, size_t n, size_t *used,
                                     struct milter_reply *r);
/* milter_rd_free - release the reader's buffer; it is empty afterwards. */
void milter_rd_free(struct milter_rd *rd);
/* milter_rd_status_name - a short name for the log. */
const char *milter_rd_status_name(enum milter_rd_status st);

/* milter_decode - decode one packet's data (cmd, data[0..len), with
 * data[len] == 0) into r. false when it does not fit the command. */
bool milter_decode(char cmd, const uint8_t *data, size_t len, struct milter_reply *r);

/* milter_header_name_ok - 1..MILTER_HDR_NAME_MAX printable octets, no ':'. */
bool milter_header_name_ok(const char *name);
/* milter_header_value_ok - no NUL (by length), no bare CR, and every line
 * break (LF or CRLF) followed by SP or HT (a folded value), no trailing
 * line break; at most 998 octets a line. */
bool milter_header_value_ok(const char *value);
/* milter_header_format - "Name: value" CRLF into out, line breaks of the
 * value as CRLF. false on ENOMEM. */
bool milter_header_format(struct sb *out, const char *name, const char *value);

/* One SMFIR_CHGHEADER: the index-th (1-based) header called name gets
 * value; an empty value deletes it. */
struct milter_hdr_edit {
    char *name;
    char *value;
    uint32_t index;
};

/* milter_hdr_edit_apply - the header section hdr[0..len) (its header
 * lines, maybe the empty line after them) with the edits e[0..ne) applied
 * in order into out: a changed header keeps the message's spelling of its
 * name and becomes "Name: value" CRLF; every octet not edited is copied as
 * it is. An edit whose index is past the last header of that name (or 0)
 * adds the header: "Name: value" CRLF into added (none for an empty
 * value). Names match ASCII case-insensitively. false on ENOMEM. */
bool milter_hdr_edit_apply(const char *hdr, size_t len, const struct milter_hdr_edit *e, size_t ne,
                           struct sb *out, struct sb *added);

/* A milter's SMTP reply split for the log and the client. */
struct milter_code {
    unsigned code;    /* 400..599 */
    char ext[16];     /* enhanced code "5.7.1" ("" when absent) */
    const char *text; /* text of the first line (after the codes) */
    size_t text_len;
    unsigned lines;
};

/* milter_replycode_parse - is s a valid reply for a client: one or more
 * lines "ddd[-| ][x.y.z ]text" joined by CRLF (or LF), the same 4xx or 5xx
 * code on each, '-' on all but the last, an enhanced code of the same
 * class, printable text, at most MILTER_REPLY_LINES lines of
 * MILTER_REPLY_LINE_MAX octets. Fills c when valid. */
bool milter_replycode_parse(const char *s, struct milter_code *c);

#endif
