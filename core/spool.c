/* spool.c - queue file naming and format (envelope block + Received:
 * header) and queue folder preparation. Pure formatting is callable from any
 * thread; spool_prepare runs once at start-up on the main thread. */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "session.h"
#include "smtp_parse.h"

/* spool_make_id - time, worker and sequence as 20 hex digits (spool.h). */
void spool_make_id(char out[SPOOL_ID_LEN + 1], const struct timespec *now, unsigned worker,
                   uint32_t seq)
{
    snprintf(out, SPOOL_ID_LEN + 1, "%08llX%05lX%02X%05X",
             (unsigned long long)now->tv_sec & 0xFFFFFFFFull,
             (unsigned long)(now->tv_nsec / 1000) & 0xFFFFFul, worker & 0xFFu,
             (unsigned)seq & 0xFFFFFu);
}

/* hexval - value of n hex digits at p, -1 when one is not a hex digit. */
static int64_t hexval(const char *p, unsigned n)
{
    int64_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

int64_t spool_id_time_us(const char *id)
{
    int64_t sec = hexval(id, 8), us = sec < 0 ? -1 : hexval(id + 8, 5);
    return us < 0 || us > 999999 ? -1 : sec * 1000000 + us;
}

/* rfc5322_date - "Sun, 29 Nov 2026 23:40:00 +0000" in local time. */
static void rfc5322_date(char *buf, size_t cap, time_t t)
{
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, cap, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* spool_has_dsn - does m carry any RFC 3461 parameter (so the envelope
 * gets DSN lines and the version 2 magic)? */
static bool spool_has_dsn(const struct sess_msg *m)
{
    bool any = m->dsn_ret || (m->envid && m->envid[0]);
    const char *o = m->orcpts;
    for (size_t i = 0; !any && i < m->nrcpt; i++) {
        any = (m->notify && m->notify[i]) || (o && o[0]);
        o = o ? o + strlen(o) + 1 : NULL;
    }
    return any;
}

/* spool_format_header - envelope block, then the Received: header (with the
 * TLS version and cipher in a comment, the RFC 3848 protocol name after
 * "with"), then the size line inserted before the header (see spool.h). */
bool spool_format_header(struct sb *out, const struct sess_msg *m, const char *queue_id,
                         const char *hostname, const struct timespec *now)
{
    char date[64];
    rfc5322_date(date, sizeof(date), now->tv_sec);
    bool dsn = spool_has_dsn(m);
    bool ok = sb_printf(out,
                        "%s\nid %s\narrival %lld\nclient %s %u\nhelo %s\nprotocol %s\n"
                        "body %s\nsmtputf8 %s\nsender %s\n",
                        dsn ? SPOOL_MAGIC_DSN : SPOOL_MAGIC, queue_id, (long long)now->tv_sec,
                        m->client_ip, m->client_port, m->helo, m->proto,
                        m->eightbit ? "8BITMIME" : "7BIT", m->smtputf8 ? "yes" : "no", m->sender);
    if (ok && m->dsn_ret)
        ok = sb_printf(out, "ret %s\n", m->dsn_ret == SMTP_RET_HDRS ? "HDRS" : "FULL");
    if (ok && m->envid && m->envid[0])
        ok = sb_printf(out, "envid %s\n", m->envid);
    const char *r = m->rcpts, *o = m->orcpts;
    for (size_t i = 0; ok && i < m->nrcpt; i++) {
        ok = sb_printf(out, "rcpt %s\n", r);
        r += strlen(r) + 1;
        if (ok && m->notify && m->notify[i]) {
            char nt[32];
            smtp_notify_format(m->notify[i], nt, sizeof nt);
            ok = sb_printf(out, "notify %s\n", nt);
        }
        if (ok && o && o[0])
            ok = sb_printf(out, "orcpt %s\n", o);
        o = o ? o + strlen(o) + 1 : NULL;
    }
    if (ok && m->quarantine)
        ok = sb_printf(out, "quarantine %s\n", m->quarantine);
    size_t hdr_mark = out->len;
    if (ok && m->add_headers)
        ok = sb_appends(out, m->add_headers);
    if (ok && m->quarantine)
        ok = sb_printf(out, "X-Mxring-Quarantine: %s\r\n", m->quarantine);
    ok = ok && sb_printf(out, "Received: from %s ([%s])\r\n", m->helo[0] ? m->helo : "unknown",
                         m->client_ip);
    if (ok && m->tls_version) /* Postfix style; RFC 8314 7.4 asks for the TLS details */
        ok = sb_printf(out, "\t(using %s with cipher %s)\r\n", m->tls_version,
                       m->tls_cipher ? m->tls_cipher : "unknown");
    ok = ok && sb_printf(out, "\tby %s (mxring) with %s id %s", hostname, m->proto, queue_id);
    if (ok && m->nrcpt == 1)
        ok = sb_printf(out, "\r\n\tfor <%s>", m->rcpts);
    ok = ok && sb_printf(out, "; %s\r\n", date);
    if (!ok)
        return false;
    /* The size line tells a reader where the message ends: a complete file
     * is header block + exactly `size` octets. Insert it before Received. */
    size_t msg_size = (out->len - hdr_mark) + m->body_len;
    char line[48];
    int n = snprintf(line, sizeof(line), "size %zu\n\n", msg_size);
    if (!sb_reserve(out, (size_t)n))
        return false;
    memmove(out->data + hdr_mark + n, out->data + hdr_mark, out->len - hdr_mark);
    memcpy(out->data + hdr_mark, line, (size_t)n);
    out->len += (size_t)n;
    out->data[out->len] = 0;
    return true;
}

/* mkdir_p1 - mkdir one level, fine if it exists. */
static int mkdir_ok(const char *path)
{
    if (mkdir(path, 0750) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

/* clean_tmp - remove leftovers of writes that never got their 250. */
static void clean_tmp(const char *tmp)
{
    DIR *d = opendir(tmp);
    if (!d)
        return;
    int fd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            unlinkat(fd, e->d_name, 0);
    closedir(d);
}

/* spool_prepare - create the queue and quarantine folders, clean tmp/. */
int spool_prepare(const char *workdir, char *err, size_t errlen)
{
    char q[4096], tmp[4200], nw[4200], qq[4096], qtmp[4200], qnw[4200];
    snprintf(q, sizeof(q), "%s/queue", workdir);
    snprintf(tmp, sizeof(tmp), "%s/tmp", q);
    snprintf(nw, sizeof(nw), "%s/new", q);
    snprintf(qq, sizeof(qq), "%s/quarantine", workdir);
    snprintf(qtmp, sizeof(qtmp), "%s/tmp", qq);
    snprintf(qnw, sizeof(qnw), "%s/new", qq);
    const char *dirs[] = {workdir, q, tmp, nw, qq, qtmp, qnw};
    for (size_t i = 0; i < MX_ARRAY_LEN(dirs); i++) {
        if (mkdir_ok(dirs[i]) < 0) {
            snprintf(err, errlen, "cannot create or reach %s: %s", dirs[i], strerror(errno));
            return -1;
        }
        if (access(dirs[i], W_OK | X_OK) < 0) {
            snprintf(err, errlen, "%s is not writable: %s", dirs[i], strerror(errno));
            return -1;
        }
    }
    clean_tmp(tmp);
    clean_tmp(qtmp);
    return 0;
}
