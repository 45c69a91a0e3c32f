/* mxbench.h - what the parts of mxbench share: the options, the read-only
 * plan every thread works from (address, envelope lines, messages, session
 * kinds, schedule, message budget). The counters are in mxbench_stats.h, the
 * entry points of a thread's loop in mxbench_loop.h. */
#ifndef MXBENCH_H
#define MXBENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mxbench_corpus.h"
#include "mxbench_hist.h"
#include "mxbench_proto.h"
#include "mxbench_sched.h"
#include "mxbench_stats.h"

struct mxb_tls_ctx;
struct mxb_series;

struct mxb_opts {
    const char *server;       /* HOST:PORT or [V6]:PORT */
    const char *from;         /* envelope sender */
    const char *domain;       /* recipients are rcptN@domain */
    const char *auth;         /* USER:PASS for AUTH PLAIN, or NULL */
    const char *cafile;       /* verify the server against it; NULL: no check */
    const char *corpus;       /* folder of .eml files, or NULL: --size */
    const char *corpus_mix;   /* "SIZE:WEIGHT,...", or NULL */
    const char *senders_file; /* one sender a line, or NULL: --from */
    const char *rcpts_file;   /* one recipient a line, or NULL: rcptN@domain */
    const char *mix;          /* "KIND:WEIGHT,...", or NULL */
    const char *ramp;         /* "RATE:SECONDS,...", or NULL */
    const char *json_series;  /* per-second JSON lines to this file, or NULL */
    unsigned connections;     /* concurrent sessions (open loop: the cap) */
    unsigned rcpts;           /* recipients per message */
    unsigned threads;         /* rings / threads */
    unsigned timeout_s;       /* per operation */
    unsigned per_conn;        /* messages per connection; 0: no limit */
    uint64_t messages;        /* 0: until --duration */
    uint64_t size;            /* message octets */
    uint64_t seed;            /* Poisson arrivals */
    double duration;          /* seconds; 0: until --messages */
    double rate;              /* open loop: messages per second; 0: closed loop */
    enum mxb_arrival arrival;
    bool open; /* --rate or --ramp */
    bool pipelining, json, starttls;
};

/* The read-only plan plus the shared message budget and stop flag. */
struct mxb_plan {
    const struct mxb_opts *o;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct mxb_lines mail;                   /* MAIL FROM lines, one per sender */
    struct mxb_lines rcpt;                   /* RCPT TO lines, one per recipient */
    struct mxb_corpus corpus;                /* the messages (one generated with --size) */
    unsigned kind_w[MXB_K_COUNT];            /* --mix weights by session kind */
    struct mxb_phase phases[MXB_PHASES_MAX]; /* open loop */
    size_t nphases;
    struct mxb_tls_ctx *tls; /* when a kind uses STARTTLS, else NULL */
    const char *auth_cmd;    /* AUTH PLAIN command with --auth, else NULL */
    size_t auth_len;
    struct mxb_series *series; /* --json-series, else NULL */
    unsigned nthreads;
    uint64_t t0_ns;           /* monotonic start of the run (the schedule's zero) */
    uint64_t stop_ns;         /* monotonic deadline for new messages; 0: none */
    _Atomic uint64_t claimed; /* closed loop: messages handed out so far */
    atomic_bool stop;         /* Ctrl-C: end every session now */
};

#endif
