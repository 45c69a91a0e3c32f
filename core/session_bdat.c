/* session_bdat.c - the session's CHUNKING (RFC 3030): the BDAT command's
 * check and proceed steps, chunk octets into the message (binary-clean,
 * through the smtp_data scanner in raw mode, bounded like DATA) or
 * discarded by count, and the reply due at each chunk's end. The byte
 * counting itself is core/smtp_bdat.c. On the session's worker thread. */
#include "session.h"
#include "session_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "reply.h"
#include "smtp_bdat.h"
#include "smtp_data.h"
#include "snap.h"

_Static_assert(BDAT_SIZE_DIGITS_MAX == 19, "the log text says 19 digits");

/* protocol_close - after a BDAT line whose chunk size cannot be known, the
 * octets that follow cannot be told from commands: running them as
 * commands would let message content smuggle commands, so the session
 * ends (Postfix hangs up too). why goes to the log. */
static void protocol_close(struct sess *s, const char *why)
{
    sess_log_check(s,
                   "BDAT refused: %s; the chunk that follows cannot be told from commands, "
                   "closing",
                   why);
    s->errors++;
    s->reason = SESS_BY_PROTOCOL;
    sess_enter_state(s, ST_CLOSED, "BDAT out of sync");
}

/* discard - refuse a chunk whose size is known: its octets are skipped
 * by count (the session stays in sync), then reply is sent. */
static void discard(struct sess *s, uint64_t size, bool last, enum reply_id reply)
{
    if (size)
        sess_log_check(s, "BDAT chunk refused: its %llu octets are discarded",
                       (unsigned long long)size);
    s->bdat_reply = reply;
    bdat_begin(&s->bdat, size, last, true);
}

/* chunk_refusal - BDAT outside a transaction with recipients: the 503 (or
 * 554 after refused RCPTs), R_COUNT when the chunk may be taken. */
static enum reply_id chunk_refusal(const struct sess *s)
{
    switch (s->state) {
    case ST_INIT: return R_ERR_NEED_HELO;
    case ST_HELO: return R_ERR_BDAT_NEED_MAIL;
    case ST_MAIL: return s->txn->rcpt_tried ? R_ERR_NO_VALID_RCPT : R_ERR_BDAT_NEED_RCPT;
    default: return R_COUNT;
    }
}

/* sess_bdat_check - BDAT's check step: the count must parse (or the
 * session closes); out of sequence the chunk is discarded with its 503.
 * "BDAT 0" without LAST moves nothing: it counts as a junk command. */
int sess_bdat_check(struct sess *s, const char *arg, size_t len)
{
    uint64_t size;
    bool last;
    switch (bdat_parse(arg, len, &size, &last)) {
    case BDAT_P_OK: break;
    case BDAT_P_OVERFLOW:
        sess_reply(s, R_ERR_BDAT_SYNTAX);
        protocol_close(s, "chunk size too large (over 19 digits)");
        return 0;
    case BDAT_P_SYNTAX:
        sess_reply(s, R_ERR_BDAT_SYNTAX);
        protocol_close(s, "bad chunk size syntax");
        return 0;
    }
    if (size == 0 && !last && ++s->junk > s->snap->cfg->max_junk_commands) {
        sess_close_with(s, R_CLOSE_JUNK, SESS_BY_JUNK);
        return 0;
    }
    enum reply_id refuse = chunk_refusal(s);
    if (refuse != R_COUNT) {
        s->data_phases++; /* the discard has its own timeout_data bound */
        discard(s, size, last, refuse);
        if (size == 0)
            sess_bdat_feed(s, NULL, 0);
        return 0;
    }
    s->args.bdat.size = size;
    s->args.bdat.last = last;
    return 1;
}

/* over_limit - the chunk would take the message over max_message_size:
 * the message is refused, this chunk and the later ones are discarded. */
static void over_limit(struct sess *s, uint64_t size, bool last)
{
    struct sess_txn *t = s->txn;
    if (!t->bdat_over)
        sess_log_check(s,
                       "BDAT chunk of %llu octets refused: the message (%llu octets so far) would "
                       "be over max_message_size %llu",
                       (unsigned long long)size, (unsigned long long)s->bdat.total,
                       (unsigned long long)s->snap->cfg->max_message_size);
    t->bdat_over = true;
    sb_reset(&t->body);
    discard(s, size, last, R_ERR_BDAT_SIZE);
}

/* sess_bdat_proceed - BDAT's proceed step (recipients accepted): the first
 * chunk turns the transaction into a BDAT one; the chunk is read next. */
void sess_bdat_proceed(struct sess *s, const char *arg, size_t len)
{
    (void)arg;
    (void)len;
    uint64_t size = s->args.bdat.size;
    bool last = s->args.bdat.last;
    uint64_t limit = s->snap->cfg->max_message_size;
    if (s->state == ST_RCPT) {
        data_scan_init_raw(&s->txn->scan, limit);
        s->data_phases++;
        sess_enter_state(s, ST_BDAT, "BDAT");
    }
    if (s->txn->bdat_over || !bdat_fits(&s->bdat, size, limit)) {
        over_limit(s, size, last);
    } else {
        s->bdat_reply = R_COUNT;
        bdat_begin(&s->bdat, size, last, false);
    }
    if (size == 0)
        sess_bdat_feed(s, NULL, 0);
}

/* refuse_over - BDAT LAST of a message over max_message_size. */
static void refuse_over(struct sess *s)
{
    sess_txn_end(s, "refused", "over max_message_size %llu (BDAT, %llu octets announced)",
                 (unsigned long long)s->snap->cfg->max_message_size,
                 (unsigned long long)(s->bdat.total + s->bdat.discarded));
    sess_log_check(s, "Message refused (%llu octets): %s", (unsigned long long)s->txn->scan.size,
                   s->txn->reason);
    sess_enter_state(s, ST_HELO, "message refused");
    sess_reply(s, R_ERR_BDAT_SIZE);
}

/* sess_bdat_refuse - see session_int.h. */
void sess_bdat_refuse(struct sess *s, enum reply_id id, const char *text)
{
    uint64_t size = s->args.bdat.size; /* parsed by sess_bdat_check */
    free(s->bdat_text);
    s->bdat_text = text && *text ? strdup(text) : NULL; /* none: id's text */
    s->data_phases++; /* the discard has its own timeout_data bound */
    discard(s, size, s->args.bdat.last, s->bdat_text ? R_FILTER_TEXT : id);
    if (size == 0)
        sess_bdat_feed(s, NULL, 0);
}

/* sess_bdat_denied - see session_int.h. */
void sess_bdat_denied(struct sess *s, const char *arg, size_t len)
{
    uint64_t size;
    bool last;
    if (bdat_parse(arg, len, &size, &last) != BDAT_P_OK) {
        sess_reply(s, R_ERR_BDAT_SYNTAX);
        protocol_close(s, "bad chunk size in a session the milters denied");
        return;
    }
    s->data_phases++; /* the discard has its own timeout_data bound */
    discard(s, size, last, R_ERR_MILTER_DENIED);
    if (size == 0)
        sess_bdat_feed(s, NULL, 0);
}

/* milter_reply - a discarded chunk's end, refused by the milters: their
 * reply (not a client error). */
static void milter_reply(struct sess *s, enum reply_id r)
{
    if (r == R_FILTER_TEXT && s->bdat_text)
        sess_reply_lines(s, s->bdat_text);
    else
        sess_reply(s, r == R_ERR_MILTER_TEMP ? R_ERR_MILTER_TEMP : R_ERR_MILTER_REJECT);
    free(s->bdat_text);
    s->bdat_text = NULL;
}

/* chunk_end - the chunk's octets are all in: its reply, or the message's
 * end after BDAT LAST. */
static void chunk_end(struct sess *s)
{
    enum reply_id r = s->bdat_reply;
    if (r == R_FILTER_TEXT || r == R_ERR_MILTER_TEMP || r == R_ERR_MILTER_REJECT)
        milter_reply(s, r);
    else if (r == R_ERR_MILTER_DENIED)
        reply_error(s, r, s->client_ip);
    else if (r == R_ERR_BDAT_SIZE && s->bdat.last && s->state == ST_BDAT)
        refuse_over(s);
    else if (r == R_ERR_BDAT_SIZE)
        sess_reply(s, r);
    else if (r != R_COUNT)
        reply_error(s, r);
    else if (!s->bdat.last)
        sess_reply_u(s, R_BDAT_OK, (unsigned long long)s->bdat.size);
    else {
        data_scan_end_raw(&s->txn->scan);
        sess_message_end(s);
    }
}

/* take_content - chunk octets into the message's chunk buffer through the
 * scanner (raw: one octet in, one out), at most as many as it has room
 * for; those of a message that will be refused are not kept. */
static size_t take_content(struct sess *s, const char *p, size_t n)
{
    struct sess_txn *t = s->txn;
    size_t room = SESS_CHUNK_MAX - t->body.len;
    size_t take = n < room ? n : room;
    bool done;
    if (take && data_scan_feed(&t->scan, p, take, &t->body, &done) == (size_t)-1) {
        sess_log_check(s, "out of memory while receiving a message");
        sess_gone(s, SESS_BY_IOERR);
        return 0;
    }
    if (sess_data_refused(s))
        sb_reset(&t->body);
    return take;
}

/* sess_bdat_feed - see session_int.h. A full chunk buffer is offered as
 * SESS_CHUNK, as in DATA; chunks smaller than the buffer gather in it. */
size_t sess_bdat_feed(struct sess *s, const char *p, size_t n)
{
    size_t take = bdat_take(&s->bdat, n);
    if (!s->bdat.discard) {
        take = take_content(s, p, take);
        if (s->action == SESS_CLOSE)
            return n;
    }
    if (bdat_consume(&s->bdat, take))
        chunk_end(s);
    if (s->state == ST_BDAT && s->action == SESS_RUN && s->txn->body.len >= SESS_CHUNK_MAX)
        sess_set_action(s, SESS_CHUNK, "chunk full");
    return take;
}

/* sess_bdat_close_line - see session_int.h. */
void sess_bdat_close_line(struct sess *s, const char *line, size_t len, const char *why)
{
    size_t off;
    if (s->state != ST_CLOSED && smtp_parse_verb(line, len, &off) == SMTP_VERB_BDAT)
        protocol_close(s, why);
}
