/* smtpc.c - the SMTP/LMTP client state machine (pure over bytes). Owned by
 * the thread driving the connection. (stub: being implemented) */
#include "smtpc.h"

#include <stdlib.h>
#include <string.h>

struct smtpc {
    struct sb out;
    struct smtpc_caps caps;
};

struct smtpc *smtpc_new(const struct smtpc_opts *opts, const struct smtpc_msg *msg)
{ (void)opts, (void)msg; return calloc(1, sizeof(struct smtpc)); }
void smtpc_free(struct smtpc *c) { if (c) sb_free(&c->out); free(c); }
enum smtpc_want smtpc_want(const struct smtpc *c) { (void)c; return SMTPC_CLOSED; }
struct sb *smtpc_output(struct smtpc *c) { return &c->out; }
void smtpc_input(struct smtpc *c, const void *bytes, size_t len) { (void)c, (void)bytes, (void)len; }
void smtpc_body(struct smtpc *c, const void *buf, size_t len, bool last)
{ (void)c, (void)buf, (void)len, (void)last; }
void smtpc_tls_done(struct smtpc *c, bool ok) { (void)c, (void)ok; }
void smtpc_abort(struct smtpc *c, const char *why) { (void)c, (void)why; }
bool smtpc_next(struct smtpc *c, const struct smtpc_msg *msg) { (void)c, (void)msg; return false; }
void smtpc_quit(struct smtpc *c) { (void)c; }
bool smtpc_rcpt_result(const struct smtpc *c, size_t i, struct smtpc_result *res)
{ (void)c, (void)i, (void)res; return false; }
size_t smtpc_nrcpt(const struct smtpc *c) { (void)c; return 0; }
void smtpc_error(const struct smtpc *c, struct smtpc_result *res) { (void)c; memset(res, 0, sizeof *res); }
const struct smtpc_caps *smtpc_caps(const struct smtpc *c) { return &c->caps; }
bool smtpc_tls_active(const struct smtpc *c) { (void)c; return false; }
const char *smtpc_stage_name(enum smtpc_stage st) { (void)st; return "?"; }
enum smtpc_rp_status smtpc_rp_feed(struct smtpc_rparse *p, const char *in, size_t len,
                                   size_t *pos, const struct smtpc_reply **out,
                                   const char **why)
{ (void)p, (void)in, (void)out, (void)why; *pos = len; return SMTPC_RP_MORE; }
void smtpc_rp_free(struct smtpc_rparse *p) { sb_free(&p->line); sb_free(&p->cur.text); }
