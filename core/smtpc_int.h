/* smtpc_int.h - private to the client machine's files (smtpc.c,
 * smtpc_reply.c): the result record kept per recipient and the reply and
 * capability helpers the state machine calls. Nothing outside core/smtpc*.c
 * includes it; the delivery engine, tests and fuzzers use smtpc.h. */
#ifndef MXRING_SMTPC_INT_H
#define MXRING_SMTPC_INT_H

#include <stdbool.h>

#include "reply.h"
#include "smtpc.h"
#include "util.h"

/* A result kept per recipient (and for the connection). */
struct smtpc_res {
    unsigned code;
    char enh[16];
    char *text;
    enum smtpc_stage stage;
    bool local;
};

/* smtpc_res_clear - forget a result (free its text, zero it). */
void smtpc_res_clear(struct smtpc_res *r);

/* smtpc_res_reply - r from a hop's reply (enhanced code split off, lines
 * joined by " ", cut at SMTPC_TEXT_MAX). */
void smtpc_res_reply(struct smtpc_res *r, const struct smtpc_reply *rp, enum smtpc_stage stage);

/* smtpc_res_local - r from reply table entry id with its printf arguments;
 * flagged local. */
void smtpc_res_local(struct smtpc_res *r, enum smtpc_stage stage, enum reply_id id, ...);

/* smtpc_res_export - a kept result as the public struct (text borrowed). */
void smtpc_res_export(const struct smtpc_res *r, struct smtpc_result *out);

/* smtpc_res_copy - dst = a copy of src. */
void smtpc_res_copy(struct smtpc_res *dst, const struct smtpc_res *src);

/* smtpc_caps_parse - caps from an EHLO/LHLO reply text (keywords on the
 * lines after the first, case-insensitive; SIZE n saturates). Sets esmtp;
 * the caller clears caps first. */
void smtpc_caps_parse(struct smtpc_caps *caps, const struct sb *text);

#endif
