/* dsn.c - builds RFC 3464 delivery status notifications: the top headers,
 * a human-readable part, the message/delivery-status part and the original
 * message's headers, with long fields folded and every line kept under
 * 998 octets. Pure formatting; any thread. Structure: dsn.h. */
#include "dsn.h"

#include "smtp_parse.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define DSN_FOLD 78       /* fold long fields and text here where a blank allows */
#define DSN_HARD 990      /* cut a blank-free run here (RFC 5322 2.1.1: 998) */
#define DSN_TEXT_MAX 2048 /* octets of one diagnostic kept */

/* ---- small helpers ---------------------------------------------------- */

void dsn_date(int64_t t, char *buf, size_t len)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    time_t tt = (time_t)t;
    if (!gmtime_r(&tt, &tm)) {
        snprintf(buf, len, "Thu, 01 Jan 1970 00:00:00 +0000");
        return;
    }
    snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

bool dsn_wanted(const char *sender)
{
    return sender && *sender;
}

/* is_ascii - no octet above 127? */
static bool is_ascii(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s > 127)
            return false;
    return true;
}

/* clean_text - s with line breaks, tabs and other controls made blanks,
 * cut at DSN_TEXT_MAX, into buf. */
static void clean_text(const char *s, char *buf, size_t cap)
{
    size_t o = 0;
    for (; s && *s && o + 1 < cap && o < DSN_TEXT_MAX; s++) {
        unsigned char ch = (unsigned char)*s;
        buf[o++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    buf[o] = 0;
}

/* fold - one logical line (no line breaks) as physical lines of at most
 * DSN_FOLD octets where a blank allows, DSN_HARD otherwise; continuation
 * lines start with cont (a blank for header fields). Runs of blanks
 * between words become one. */
static bool fold(struct sb *out, const char *text, const char *cont)
{
    size_t len = strlen(text), col = 0, i = 0, cl = strlen(cont);
    bool ok = true, fresh = true; /* fresh: nothing on this line yet */
    while (ok && i < len) {
        while (i < len && text[i] == ' ')
            i++;
        size_t w = i;
        while (w < len && text[w] != ' ')
            w++;
        size_t wl = w - i;
        if (wl == 0)
            break;
        if (!fresh && col + 1 + wl > DSN_FOLD) {
            ok = sb_appends(out, "\r\n") && sb_appends(out, cont);
            col = cl, fresh = true;
        } else if (!fresh) {
            ok = sb_append(out, " ", 1);
            col++;
        }
        while (ok && wl) {
            if (col >= DSN_HARD) {
                ok = sb_appends(out, "\r\n") && sb_appends(out, cont);
                col = cl;
            }
            size_t take = wl < DSN_HARD - col ? wl : DSN_HARD - col;
            ok = ok && sb_append(out, text + i, take);
            col += take, i += take, wl -= take;
        }
        fresh = false;
    }
    return ok && sb_appends(out, "\r\n");
}

/* fold_fmt - fold a printf-formatted logical line. */
static bool fold_fmt(struct sb *out, const char *cont, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fold_fmt(struct sb *out, const char *cont, const char *fmt, ...)
{
    char line[DSN_TEXT_MAX + 1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    return n >= 0 && fold(out, line, cont);
}

/* status_of - the Status: value for r: its enhanced code when well formed,
 * else derived from the reply class. */
static void status_of(const struct dsn_rcpt *r, char *buf, size_t cap)
{
    const char *s = r->status;
    bool good = s && (s[0] == '2' || s[0] == '4' || s[0] == '5') && s[1] == '.';
    for (size_t i = 0; good && s[i]; i++)
        good = (s[i] >= '0' && s[i] <= '9') || s[i] == '.';
    if (good && strlen(s) < cap) {
        snprintf(buf, cap, "%s", s);
        return;
    }
    unsigned cls = r->code ? r->code / 100 : r->action == DSN_DELAYED ? 4 : 5;
    snprintf(buf, cap, "%s", r->action >= DSN_RELAYED ? "2.0.0" : cls == 4 ? "4.0.0" : "5.0.0");
}

/* The words of one kind of notification, by enum dsn_action. */
static const struct {
    const char *action, *subject, *text;
} dsn_kind[] = {
    [DSN_FAILED] = {"failed", "Undelivered Mail Returned to Sender",
                    "I'm sorry to have to inform you that your message could not be delivered "
                    "to one or more recipients. Its headers are attached below."},
    [DSN_DELAYED] = {"delayed", "Delayed Mail (still being retried)",
                     "Your message could not be delivered yet to the recipients below. Delivery "
                     "will be tried again; you do not need to do anything now."},
    [DSN_RELAYED] = {"relayed", "Successful Mail Delivery Report",
                     "Your message was relayed to the recipients below. The next mail system "
                     "does not offer delivery notifications, so you will not be told about "
                     "its delivery."},
    [DSN_DELIVERED] = {"delivered", "Successful Mail Delivery Report",
                       "Your message was delivered to the mailboxes of the recipients below."},
};

/* xtext_field - the decoded value of an xtext (printable ASCII, checked at
 * receipt) into buf; "" when it does not decode. */
static const char *xtext_field(const char *x, char *buf, size_t cap)
{
    if (smtp_xtext_decode(x, strlen(x), buf, cap) < 0)
        buf[0] = 0;
    return buf;
}

/* full_wanted - is the whole message returned (RET=FULL and small enough)? */
static bool full_wanted(const struct dsn_in *in)
{
    return in->ret_full && in->msg && in->msg_len <= DSN_FULL_MAX;
}

/* ---- the parts -------------------------------------------------------- */

/* top_headers - the bounce's own header block. */
static bool top_headers(const struct dsn_in *in, const char *boundary, enum dsn_action kind,
                        bool utf8, struct sb *out)
{
    char date[48];
    dsn_date(in->now, date, sizeof date);
    return sb_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", in->reporting_mta) &&
           fold_fmt(out, " ", "To: <%s>", in->orig_sender) &&
           sb_printf(out, "Subject: %s\r\nDate: %s\r\n", dsn_kind[kind].subject, date) &&
           sb_printf(out, "Message-ID: <%s.%" PRId64 ".dsn@%s>\r\n", in->qid, in->now,
                     in->reporting_mta) &&
           sb_printf(out,
                     "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
                     "Content-Type: multipart/report; report-type=%s;\r\n"
                     "\tboundary=\"%s\"\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n",
                     utf8 ? "global-delivery-status" : "delivery-status", boundary);
}

/* human_part - the explanation for people. */
static bool human_part(const struct dsn_in *in, const char *boundary, enum dsn_action kind,
                       struct sb *out)
{
    char text[DSN_TEXT_MAX + 1];
    bool ok = sb_printf(out,
                        "--%s\r\nContent-Description: Notification\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\n\r\n",
                        boundary) &&
              sb_printf(out, "This is the mail system at host %s.\r\n\r\n", in->reporting_mta) &&
              fold(out, dsn_kind[kind].text, "") && sb_appends(out, "\r\n");
    if (ok && in->ret_full && !full_wanted(in))
        ok = sb_printf(out,
                       "The message is larger than %u octets: only its headers are "
                       "returned.\r\n\r\n",
                       (unsigned)DSN_FULL_MAX);
    for (size_t i = 0; ok && i < in->nrcpt; i++) {
        const struct dsn_rcpt *r = &in->rcpts[i];
        clean_text(r->diag ? r->diag : "no reason given", text, sizeof text);
        bool enh = r->status && *r->status;
        if (r->remote_mta && r->code)
            ok = fold_fmt(out, "    ", "<%s>: host %s said: %u %s%s%s", r->addr, r->remote_mta,
                          r->code, enh ? r->status : "", enh ? " " : "", text);
        else
            ok = fold_fmt(out, "    ", "<%s>: %s", r->addr, text);
        ok = ok && sb_appends(out, "\r\n");
    }
    return ok;
}

/* rcpt_fields - the per-recipient block of the delivery-status part. */
static bool rcpt_fields(const struct dsn_in *in, const struct dsn_rcpt *r, struct sb *out)
{
    char status[16], date[48], text[DSN_TEXT_MAX + 1];
    status_of(r, status, sizeof status);
    dsn_date(in->now, date, sizeof date);
    bool ok = sb_appends(out, "\r\n");
    const char *semi = r->orcpt ? strchr(r->orcpt, ';') : NULL;
    if (ok && semi)
        ok = fold_fmt(out, " ", "Original-Recipient: %.*s; %s", (int)(semi - r->orcpt), r->orcpt,
                      xtext_field(semi + 1, text, sizeof text));
    ok = ok &&
         fold_fmt(out, " ", "Final-Recipient: %s; %s", is_ascii(r->addr) ? "rfc822" : "utf-8",
                  r->addr) &&
         sb_printf(out, "Action: %s\r\nStatus: %s\r\n", dsn_kind[r->action].action, status);
    if (ok && r->remote_mta)
        ok = fold_fmt(out, " ", "Remote-MTA: dns; %s", r->remote_mta);
    if (ok && r->diag) {
        clean_text(r->diag, text, sizeof text);
        bool enh = r->status && *r->status;
        ok = r->code ? fold_fmt(out, " ", "Diagnostic-Code: smtp; %u %s%s%s", r->code,
                                enh ? r->status : "", enh ? " " : "", text)
                     : fold_fmt(out, " ", "Diagnostic-Code: X-mxring; %s", text);
    }
    return ok && sb_printf(out, "Last-Attempt-Date: %s\r\n", date);
}

/* status_part - message/delivery-status (global- when addresses are UTF-8). */
static bool status_part(const struct dsn_in *in, const char *boundary, bool utf8, struct sb *out)
{
    char date[48], envid[SMTP_ENVID_MAX + 1];
    dsn_date(in->arrival, date, sizeof date);
    bool ok = sb_printf(out,
                        "\r\n--%s\r\nContent-Description: Delivery report\r\n"
                        "Content-Type: message/%sdelivery-status\r\n\r\n",
                        boundary, utf8 ? "global-" : "");
    if (ok && in->envid && in->envid[0])
        ok = fold_fmt(out, " ", "Original-Envelope-Id: %s",
                      xtext_field(in->envid, envid, sizeof envid));
    ok = ok && sb_printf(out,
                         "Reporting-MTA: dns; %s\r\nX-Mxring-Queue-ID: %s\r\n"
                         "Arrival-Date: %s\r\n",
                         in->reporting_mta, in->qid, date);
    for (size_t i = 0; ok && i < in->nrcpt; i++)
        ok = rcpt_fields(in, &in->rcpts[i], out);
    return ok;
}

/* header_len - octets of msg's header block (through the line end before
 * the first empty line; all of msg if there is none), at most
 * DSN_HEADERS_MAX and ending at a line end. */
static size_t header_len(const char *msg, size_t len)
{
    size_t end = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(msg + i, '\n', len - i);
        size_t next = nl ? (size_t)(nl - msg) + 1 : len;
        size_t ll = next - i;
        if (ll <= 2 && (msg[i] == '\n' || (msg[i] == '\r' && ll == 2)))
            break; /* the empty line */
        if (next > DSN_HEADERS_MAX)
            break;
        end = next;
        i = next;
    }
    return end;
}

/* headers_part - the original header lines, CRLF, each cut at DSN_HARD. */
static bool headers_part(const struct dsn_in *in, const char *boundary, bool utf8, struct sb *out)
{
    size_t hl = header_len(in->msg ? in->msg : "", in->msg ? in->msg_len : 0);
    bool ok = sb_printf(out,
                        "\r\n--%s\r\nContent-Description: Undelivered Message Headers\r\n"
                        "Content-Type: %s\r\n\r\n",
                        boundary, utf8 ? "message/global-headers" : "text/rfc822-headers");
    for (size_t i = 0; ok && i < hl;) {
        const char *l = in->msg + i, *nl = memchr(l, '\n', hl - i);
        size_t ll = nl ? (size_t)(nl - l) : hl - i;
        i += ll + (nl != NULL);
        if (ll && l[ll - 1] == '\r')
            ll--;
        ok = sb_append(out, l, ll < DSN_HARD ? ll : DSN_HARD) && sb_appends(out, "\r\n");
    }
    return ok && sb_printf(out, "\r\n--%s--\r\n", boundary);
}

/* full_part - the whole original message as message/rfc822 (RET=FULL),
 * CRLF line ends, each line cut at DSN_HARD. */
static bool full_part(const struct dsn_in *in, const char *boundary, bool utf8, struct sb *out)
{
    bool ok = sb_printf(out,
                        "\r\n--%s\r\nContent-Description: Undelivered Message\r\n"
                        "Content-Type: %s\r\n\r\n",
                        boundary, utf8 ? "message/global" : "message/rfc822");
    for (size_t i = 0; ok && i < in->msg_len;) {
        const char *l = in->msg + i, *nl = memchr(l, '\n', in->msg_len - i);
        size_t ll = nl ? (size_t)(nl - l) : in->msg_len - i;
        i += ll + (nl != NULL);
        if (ll && l[ll - 1] == '\r')
            ll--;
        ok = sb_append(out, l, ll < DSN_HARD ? ll : DSN_HARD) && sb_appends(out, "\r\n");
    }
    return ok && sb_printf(out, "\r\n--%s--\r\n", boundary);
}

/* pick_boundary - "=_mxring_<qid>_<now>" made unique against the headers. */
static void pick_boundary(const struct dsn_in *in, char *b, size_t cap)
{
    size_t hl = full_wanted(in) ? in->msg_len
                                : header_len(in->msg ? in->msg : "", in->msg ? in->msg_len : 0);
    for (unsigned n = 0;; n++) {
        snprintf(b, cap, "=_mxring_%.20s_%" PRId64 "_%u", in->qid, in->now, n);
        if (!hl || !memmem(in->msg, hl, b, strlen(b)))
            return;
    }
}

bool dsn_build(const struct dsn_in *in, struct sb *out, bool *eightbit, bool *utf8)
{
    if (!in->nrcpt || !in->rcpts || !dsn_wanted(in->orig_sender) || !in->reporting_mta || !in->qid)
        return false;
    enum dsn_action kind = in->rcpts[0].action;
    bool u8 = !is_ascii(in->orig_sender);
    for (size_t i = 0; i < in->nrcpt; i++) {
        if ((unsigned)in->rcpts[i].action >= MX_ARRAY_LEN(dsn_kind))
            return false;
        kind = in->rcpts[i].action == kind ? kind : DSN_FAILED; /* mixed: a failure report */
        u8 = u8 || !is_ascii(in->rcpts[i].addr);
    }
    char boundary[96];
    pick_boundary(in, boundary, sizeof boundary);
    size_t mark = out->len;
    bool ok =
        top_headers(in, boundary, kind, u8, out) && human_part(in, boundary, kind, out) &&
        status_part(in, boundary, u8, out) &&
        (full_wanted(in) ? full_part(in, boundary, u8, out) : headers_part(in, boundary, u8, out));
    if (!ok) {
        out->len = mark;
        return false;
    }
    bool high = false;
    for (size_t i = mark; i < out->len && !high; i++)
        high = (unsigned char)out->data[i] > 127;
    if (eightbit)
        *eightbit = high;
    if (utf8)
        *utf8 = u8;
    return true;
}
