/* dlv_dsn.c - the delivery engine's notifications (RFC 3464 DSNs queued
 * durably in new/ to the original sender): the failure bounce of a finished
 * message, the "relayed" DSN for NOTIFY=SUCCESS recipients accepted by a
 * hop without DSN, and the one delay warning after delay_warning_time
 * (NOTIFY=DELAY); NOTIFY, RET, ENVID and ORCPT honoured. Delivery thread. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dlv_int.h"
#include "dsn.h"
#include "smtp_parse.h"
#include "spool.h"

#define BOUNCE_WORKER 0xffu /* worker digits of bounce queue ids */

/* parse_last - code and enhanced code of a recorded "code enh text". */
static unsigned parse_last(const char *last, char *enh, size_t len, const char **text)
{
    unsigned code = 0;
    int n = 0;
    enh[0] = 0;
    *text = last;
    if (sscanf(last, "%3u%n", &code, &n) != 1)
        return 0;
    const char *p = last + n;
    while (*p == ' ')
        p++;
    size_t e = strspn(p, "0123456789.");
    if (e > 0 && e < len && p[0] >= '2' && p[0] <= '5' && p[1] == '.') {
        memcpy(enh, p, e);
        enh[e] = 0;
        p += e;
        while (*p == ' ')
            p++;
    }
    *text = last;
    return code;
}

/* write_queue_file - header + body as tmp/<id>, fdatasync, rename into
 * new/ (no replace), fsync new/. 0 or -errno (nothing left behind). */
static int write_queue_file(struct dlv *d, const char *id, const struct sb *hdr,
                            const struct sb *body)
{
    int fd = openat(d->tmp_fd, id, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (write(fd, hdr->data, hdr->len) != (ssize_t)hdr->len ||
        write(fd, body->data, body->len) != (ssize_t)body->len || fdatasync(fd) < 0)
        rc = errno ? -errno : -EIO;
    if (close(fd) < 0 && !rc)
        rc = -errno;
    if (!rc && renameat2(d->tmp_fd, id, d->new_fd, id, RENAME_NOREPLACE) < 0)
        rc = -errno;
    if (rc) {
        unlinkat(d->tmp_fd, id, 0);
        return rc;
    }
    return fsync(d->new_fd) < 0 ? -errno : 0;
}

/* dlv_notify_wants - does recipient i of m want a DSN of this kind
 * (enum smtp_notify bit)? Without NOTIFY= (RFC 3461 4.1 default, as
 * Postfix): failures only. NEVER: nothing. */
bool dlv_notify_wants(const struct dlv_msg *m, size_t i, unsigned kind)
{
    unsigned n = m->env.notify ? m->env.notify[i] : 0;
    return n ? (n & kind) != 0 : kind == SMTP_NOTIFY_FAILURE;
}

/* dsn_entry - the DSN entry of recipient i with its last reply. */
static struct dsn_rcpt dsn_entry(const struct dlv_msg *m, size_t i, enum dsn_action action,
                                 char enh[16])
{
    const struct qstate_rcpt *r = &m->st.rcpts[i];
    const char *text;
    unsigned code = parse_last(r->last ? r->last : "", enh, 16, &text);
    return (struct dsn_rcpt){.addr = r->addr,
                             .action = action,
                             .status = enh,
                             .code = code >= 200 ? code : 0,
                             .diag = text,
                             .orcpt = m->env.orcpts ? m->env.orcpts[i] : NULL};
}

/* bounce_rcpts - the DSN entries of m's bounced recipients that want one. */
static size_t bounce_rcpts(struct dlv_msg *m, struct dsn_rcpt *out, char (*enh)[16])
{
    size_t n = 0;
    for (size_t i = 0; i < m->st.nrcpt; i++) {
        const struct qstate_rcpt *r = &m->st.rcpts[i];
        if (r->state != QST_BOUNCED || !dlv_notify_wants(m, i, SMTP_NOTIFY_FAILURE))
            continue;
        out[n] = dsn_entry(m, i, DSN_FAILED, enh[n]);
        n++;
    }
    return n;
}

/* queue_dsn - build a notification about m's recipients dr[0..n) (RFC
 * 3464, RET/ENVID honoured) and queue it durably in new/ to the original
 * sender, from the null sender; what names it in the log ("bounce").
 * 0 or -errno. */
static int queue_dsn(struct dlv *d, struct dlv_msg *m, const struct dsn_rcpt *dr, size_t n,
                     const char *what)
{
    int rc = dlv_msg_map(d, m);
    if (rc < 0)
        return rc;
    struct sb body = {0}, hdr = {0};
    bool e8 = false, u8 = false;
    struct dsn_in in = {.reporting_mta = dlv_cfg(d)->hostname,
                        .qid = m->id,
                        .orig_sender = m->env.sender,
                        .arrival = m->env.arrival,
                        .now = d->now,
                        .rcpts = dr,
                        .nrcpt = n,
                        .msg = m->map + m->env.msg_off,
                        .msg_len = m->env.size,
                        .ret_full = m->env.ret == SMTP_RET_FULL,
                        .envid = m->env.envid};
    rc = dsn_build(&in, &body, &e8, &u8) ? 0 : -ENOMEM;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char id[SPOOL_ID_LEN + 1];
    char *rcpt[1] = {m->env.sender};
    for (int tries = 0; rc == 0 && tries < 8; tries++) {
        spool_make_id(id, &now, BOUNCE_WORKER, ++d->bounce_seq);
        struct qfile_env env = {.arrival = now.tv_sec,
                                .client = "",
                                .helo = "",
                                .protocol = "",
                                .body8 = e8,
                                .smtputf8 = u8,
                                .sender = "",
                                .rcpts = rcpt,
                                .nrcpt = 1,
                                .size = body.len};
        memcpy(env.id, id, sizeof(env.id));
        sb_reset(&hdr);
        rc = qfile_format_envelope(&env, &hdr) ? write_queue_file(d, id, &hdr, &body) : -ENOMEM;
        if (rc != -EEXIST)
            break;
        rc = 0;
    }
    if (rc == 0) {
        dlv_stat_add(DLV_ST_BOUNCES, 1);
        dlv_logf(d, 0, "queue id %s: %s queued as queue id %s to=<%s>", m->id, what, id,
                 m->env.sender);
    }
    sb_free(&body);
    sb_free(&hdr);
    return rc;
}

/* dlv_queue_bounce - m's failure DSN for its bounced recipients. 0 or -errno. */
int dlv_queue_bounce(struct dlv *d, struct dlv_msg *m)
{
    struct dsn_rcpt *dr = calloc(m->st.nrcpt, sizeof(*dr));
    char(*enh)[16] = calloc(m->st.nrcpt, sizeof(*enh));
    int rc = dr && enh ? queue_dsn(d, m, dr, bounce_rcpts(m, dr, enh), "bounce") : -ENOMEM;
    free(dr);
    free(enh);
    return rc;
}

/* dlv_job_relayed - RFC 3461 6.2.1: recipients of j accepted by a hop that
 * does not offer DSN get the success DSN they asked for (NOTIFY=SUCCESS):
 * "relayed" over SMTP, "delivered" over LMTP (the hop is the mailbox).
 * Queued before the state records them sent: a crash in between sends it
 * again (at least once). */
void dlv_job_relayed(struct dlv *d, struct dlv_job *j, const struct smtpc *c)
{
    struct dlv_msg *m = j->m;
    if (smtpc_caps(c)->dsn || !dsn_wanted(m->env.sender))
        return;
    struct dsn_rcpt *dr = calloc(j->n, sizeof(*dr));
    char(*enh)[16] = calloc(j->n, sizeof(*enh));
    size_t n = 0;
    for (size_t k = 0; dr && enh && k < j->n; k++) {
        size_t i = j->idx[k];
        const struct route_hop *h = &j->rt->hops[j->hop];
        if (m->st.rcpts[i].state == QST_SENT && dlv_notify_wants(m, i, SMTP_NOTIFY_SUCCESS)) {
            /* LMTP is the final delivery (RFC 3461 6.2.1 "delivered") */
            dr[n] = dsn_entry(m, i, h->proto == ROUTE_LMTP ? DSN_DELIVERED : DSN_RELAYED, enh[n]);
            dr[n].remote_mta = h->is_unix ? NULL : h->host;
            n++;
        }
    }
    bool lmtp = j->rt->hops[j->hop].proto == ROUTE_LMTP;
    int rc = n ? queue_dsn(d, m, dr, n, lmtp ? "delivered DSN" : "relayed DSN") : 0;
    if (rc < 0)
        dlv_logf(d, 0, "queue id %s: cannot queue its success DSN: %s", m->id, strerror(-rc));
    free(dr);
    free(enh);
}

/* dlv_delay_warn_at - when m's delay DSN is due (see dlv_int.h). */
int64_t dlv_delay_warn_at(const struct dlv *d, const struct dlv_msg *m)
{
    unsigned after = dlv_cfg(d)->delay_warning_time;
    if (!after || m->st.delay_warned || m->deleted || m->st.held)
        return INT64_MAX;
    for (size_t i = 0; i < m->st.nrcpt; i++)
        if (m->st.rcpts[i].state == QST_PENDING && dlv_notify_wants(m, i, SMTP_NOTIFY_DELAY))
            return m->env.arrival + (int64_t)after;
    return INT64_MAX;
}

/* dlv_delay_warn - delay_warning_time after arrival, once per message: the
 * still deferred recipients that asked for it (NOTIFY=DELAY) get a
 * "delayed" DSN. delay_warned is set when it is queued (or not owed);
 * true when it changed (the caller records the state). */
bool dlv_delay_warn(struct dlv *d, struct dlv_msg *m)
{
    if (d->now < dlv_delay_warn_at(d, m))
        return false;
    struct dsn_rcpt *dr = calloc(m->st.nrcpt, sizeof(*dr));
    char(*enh)[16] = calloc(m->st.nrcpt, sizeof(*enh));
    size_t n = 0;
    for (size_t i = 0; dr && enh && i < m->st.nrcpt; i++)
        if (m->st.rcpts[i].state == QST_PENDING && m->st.rcpts[i].attempts &&
            dlv_notify_wants(m, i, SMTP_NOTIFY_DELAY))
            dr[n] = dsn_entry(m, i, DSN_DELAYED, enh[n]), n++;
    int rc = !dr || !enh                      ? -ENOMEM
             : n && dsn_wanted(m->env.sender) ? queue_dsn(d, m, dr, n, "delay DSN")
                                              : 0;
    if (rc < 0)
        dlv_logf(d, 0, "queue id %s: cannot queue its delay DSN: %s (retrying)", m->id,
                 strerror(-rc));
    m->st.delay_warned = rc == 0;
    free(dr);
    free(enh);
    return rc == 0;
}
