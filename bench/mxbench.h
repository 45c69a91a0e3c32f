/* mxbench.h - what the parts of mxbench share: the options, the read-only
 * plan every thread works from (address, commands, message, message
 * budget), and the per-thread counters the main thread merges at the end. */
#ifndef MXBENCH_H
#define MXBENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mxbench_hist.h"
#include "mxbench_proto.h"

#define MXB_TLS_DESC 96         /* "<version> <cipher>" */

struct mxb_tls_ctx;

struct mxb_opts {
    const char *server;         /* HOST:PORT or [V6]:PORT */
    const char *from;           /* envelope sender */
    const char *domain;         /* recipients are rcptN@domain */
    const char *auth;           /* USER:PASS for AUTH PLAIN, or NULL */
    const char *cafile;         /* verify the server against it; NULL: no check */
    unsigned connections;       /* concurrent sessions */
    unsigned rcpts;             /* recipients per message */
    unsigned threads;           /* rings / threads */
    unsigned timeout_s;         /* per operation */
    uint64_t messages;          /* 0: until --duration */
    uint64_t size;              /* message octets */
    double duration;            /* seconds; 0: until --messages */
    bool reuse, pipelining, json, starttls;
};

/* Error kinds, counted separately. */
enum mxb_err {
    MXB_E_CONNECT,      /* socket() or connect() failed */
    MXB_E_TIMEOUT,      /* an operation took longer than --timeout */
    MXB_E_RESET,        /* send/receive failed (reset, broken pipe) */
    MXB_E_EOF,          /* the server closed while a reply was due */
    MXB_E_BANNER,       /* unexpected reply code, per stage ... */
    MXB_E_EHLO,
    MXB_E_MAIL,
    MXB_E_RCPT,
    MXB_E_DATA,
    MXB_E_BODY,         /* ... reply to the end of data */
    MXB_E_QUIT,
    MXB_E_STARTTLS,     /* ... reply to STARTTLS ... */
    MXB_E_AUTH,         /* ... and to AUTH */
    MXB_E_TLS,          /* TLS handshake failed, or a TLS error after it */
    MXB_E_PROTOCOL,     /* a reply that is not SMTP, or too long */
    MXB_E_COUNT
};

struct mxb_stats {
    uint64_t messages;          /* accepted with 250 */
    uint64_t failed;            /* claimed but not accepted */
    uint64_t connections;       /* connects that succeeded */
    uint64_t bytes;             /* octets sent on the wire (ciphertext after STARTTLS) */
    uint64_t errors[MXB_E_COUNT];
    struct mxb_hist lat_ns;     /* MAIL sent .. 250 for the data received */
    uint64_t handshakes;        /* TLS handshakes completed */
    struct mxb_hist hs_ns;      /* ClientHello sent .. handshake done */
    char tls_desc[MXB_TLS_DESC];    /* version and cipher of the first handshake */
    const char *tls_err;        /* reason of the first TLS failure (static text) */
};

/* The read-only plan plus the shared message budget. */
struct mxb_plan {
    const struct mxb_opts *o;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct mxb_cmds cmds;
    const char *msg;            /* message and end of data */
    size_t msg_len;
    struct mxb_tls_ctx *tls;    /* with --starttls, else NULL */
    const char *auth_cmd;       /* AUTH PLAIN command with --auth, else NULL */
    size_t auth_len;
    uint64_t stop_ns;           /* monotonic deadline for new messages; 0: none */
    _Atomic uint64_t claimed;   /* messages handed out so far */
};

#endif
