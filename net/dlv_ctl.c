/* dlv_ctl.c - the control socket <workdir>/control.sock (unix stream, mode
 * 0600, root or mxringd's own uid only, checked with SO_PEERCRED), served
 * on the delivery ring: one command line in, one reply line out, close.
 * Commands: retry ID | retry --all | hold ID | release ID | delete ID |
 * ping. Replies start with "ok" or "error". Delivery thread only (open
 * and close at start/stop on the main thread before/after the thread). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "dlv_int.h"

#define CTL_LINE_MAX 512
#define CTL_BACKLOG 64

struct dlv_ctl {
    struct uring_cb cb_accept;
    struct dlv *d;
    int fd;
    bool armed;
    bool closed;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct ctl_client {
    struct uring_cb cb_recv, cb_send;
    struct dlv *d;
    int fd;
    unsigned uid;
    size_t len;
    char line[CTL_LINE_MAX + 1];
    struct sb reply;
};

static void accept_arm(struct dlv_ctl *c);

/* client_close - done with one client. */
static void client_close(struct ctl_client *cl)
{
    close(cl->fd);
    sb_free(&cl->reply);
    free(cl);
}

/* on_sent - the reply went out: close. */
static void on_sent(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    (void)cqe;
    client_close((struct ctl_client *)((char *)cb - offsetof(struct ctl_client, cb_send)));
}

/* one_msg - apply op to the message named by arg. */
static void one_msg(struct ctl_client *cl, const char *op, const char *arg)
{
    struct dlv *d = cl->d;
    struct dlv_msg *m = qfile_id_valid(arg, strlen(arg)) ? dlv_msg_find(d, arg) : NULL;
    if (!m || m->deleted) {
        sb_printf(&cl->reply, "error %s: no such message in the queue\n", arg);
        return;
    }
    if (strcmp(op, "hold") == 0)
        dlv_msg_hold(d, m, true);
    else if (strcmp(op, "release") == 0)
        dlv_msg_hold(d, m, false);
    else if (strcmp(op, "retry") == 0)
        dlv_msg_retry(d, m);
    else
        dlv_msg_delete(d, m, cl->uid);
    sb_printf(&cl->reply, "ok %s %s\n", op, arg);
}

/* retry_all - every message that is not held is due now (a held message
 * keeps its schedule for its release, as postqueue -f leaves held mail). */
static void retry_all(struct ctl_client *cl)
{
    struct dlv *d = cl->d;
    size_t n = 0, held = 0;
    for (size_t i = 0; i < d->hcap; i++)
        for (struct dlv_msg *m = d->hash[i]; m; m = m->hnext) {
            if (m->st.held) {
                held++;
                continue;
            }
            dlv_msg_retry(d, m);
            n++;
        }
    sb_printf(&cl->reply, "ok retry --all %zu messages (%zu held left alone)\n", n, held);
}

/* execute - one command line into cl->reply. */
static void execute(struct ctl_client *cl)
{
    char op[16] = "", arg[64] = "";
    int n = sscanf(cl->line, "%15s %63s", op, arg);
    if (n == 1 && strcmp(op, "ping") == 0) {
        sb_printf(&cl->reply, "ok pong\n");
    } else if (n == 2 && strcmp(op, "retry") == 0 && strcmp(arg, "--all") == 0) {
        retry_all(cl);
    } else if (n == 2 && (strcmp(op, "retry") == 0 || strcmp(op, "hold") == 0 ||
                          strcmp(op, "release") == 0 || strcmp(op, "delete") == 0)) {
        one_msg(cl, op, arg);
    } else {
        sb_printf(&cl->reply, "error unknown command (retry ID|--all, hold ID, release ID, "
                              "delete ID, ping)\n");
    }
    dlv_queue_run_due(cl->d);
}

/* reply_send - queue the reply line. */
static void reply_send(struct ctl_client *cl)
{
    struct io_uring_sqe *sqe = dlv_sqe(cl->d);
    io_uring_prep_send(sqe, cl->fd, cl->reply.data, cl->reply.len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, uring_cb_data(&cl->cb_send));
}

/* recv_arm - read (more of) the command line. */
static void recv_arm(struct ctl_client *cl)
{
    struct io_uring_sqe *sqe = dlv_sqe(cl->d);
    io_uring_prep_recv(sqe, cl->fd, cl->line + cl->len, CTL_LINE_MAX - cl->len, 0);
    io_uring_sqe_set_data64(sqe, uring_cb_data(&cl->cb_recv));
}

/* on_recv - bytes of the command: run it once the line is complete. */
static void on_recv(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    struct ctl_client *cl =
        (struct ctl_client *)((char *)cb - offsetof(struct ctl_client, cb_recv));
    if (cqe->res <= 0 || cl->d->stopping) {
        client_close(cl);
        return;
    }
    cl->len += (size_t)cqe->res;
    cl->line[cl->len] = 0;
    char *eol = strchr(cl->line, '\n');
    if (!eol && cl->len < CTL_LINE_MAX) {
        recv_arm(cl);
        return;
    }
    if (eol)
        *eol = 0;
    if (!eol)
        sb_printf(&cl->reply, "error command line too long\n");
    else
        execute(cl);
    reply_send(cl);
}

/* on_accept - a client: check its uid, read its command. */
static void on_accept(struct uring_cb *cb, struct io_uring_cqe *cqe)
{
    struct dlv_ctl *c = (struct dlv_ctl *)((char *)cb - offsetof(struct dlv_ctl, cb_accept));
    c->armed = false;
    if (c->closed) {
        if (cqe->res >= 0)
            close(cqe->res);
        c->d->ctl = NULL;
        free(c);
        return;
    }
    if (cqe->res >= 0) {
        struct ctl_client *cl = calloc(1, sizeof(*cl));
        struct ucred uc;
        socklen_t ul = sizeof(uc);
        if (!cl || getsockopt(cqe->res, SOL_SOCKET, SO_PEERCRED, &uc, &ul) < 0) {
            free(cl);
            close(cqe->res);
        } else {
            *cl = (struct ctl_client){.cb_recv.fn = on_recv,
                                      .cb_send.fn = on_sent,
                                      .d = c->d,
                                      .fd = cqe->res,
                                      .uid = uc.uid};
            if (uc.uid != 0 && uc.uid != geteuid()) {
                sb_printf(&cl->reply, "error permission denied (uid %u)\n", (unsigned)uc.uid);
                reply_send(cl);
            } else {
                recv_arm(cl);
            }
        }
    }
    accept_arm(c);
}

/* accept_arm - one accept in flight. */
static void accept_arm(struct dlv_ctl *c)
{
    struct io_uring_sqe *sqe = dlv_sqe(c->d);
    io_uring_prep_accept(sqe, c->fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, uring_cb_data(&c->cb_accept));
    c->armed = true;
}

/* dlv_ctl_open - bind <workdir>/control.sock (mode 0600) and arm the
 * accept. 0 or -1 with errno. */
int dlv_ctl_open(struct dlv *d)
{
    struct dlv_ctl *c = calloc(1, sizeof(*c));
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!c)
        return -1;
    int n = snprintf(c->path, sizeof(c->path), "%s/control.sock", d->workdir);
    if (n < 0 || (size_t)n >= sizeof(c->path)) {
        free(c);
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, c->path, (size_t)n + 1);
    unlink(c->path); /* a previous run's */
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    mode_t old = umask(0177);
    int rc = c->fd < 0 ? -1 : bind(c->fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || chmod(c->path, 0600) < 0 || listen(c->fd, CTL_BACKLOG) < 0) {
        int e = errno;
        if (c->fd >= 0)
            close(c->fd);
        free(c);
        errno = e;
        return -1;
    }
    c->d = d;
    c->cb_accept.fn = on_accept;
    d->ctl = c;
    accept_arm(c);
    return 0;
}

/* dlv_ctl_close - at stop: no more commands; the socket file goes away. */
void dlv_ctl_close(struct dlv *d)
{
    struct dlv_ctl *c = d->ctl;
    if (!c || c->closed)
        return;
    unlink(c->path);
    shutdown(c->fd, SHUT_RDWR); /* completes the accept in flight */
    close(c->fd);
    c->closed = true;
    if (!c->armed) {
        d->ctl = NULL;
        free(c);
    }
}

/* dlv_ctl_free - after the ring is gone: free what is left. */
void dlv_ctl_free(struct dlv *d)
{
    dlv_ctl_close(d);
    free(d->ctl);
    d->ctl = NULL;
}
