/* qstate.c - queue file envelope parsing and the delivery state file
 * (pure over bytes). Any thread. (stub: being implemented) */
#include "qstate.h"

#include <stdlib.h>
#include <string.h>

enum qfile_status qfile_parse_envelope(const char *buf, size_t len, struct qfile_env *env,
                                       char *err, size_t errlen)
{ (void)buf, (void)len, (void)env, (void)err, (void)errlen; return QFILE_BAD; }
bool qfile_complete(const struct qfile_env *env, uint64_t file_len)
{ return file_len >= env->msg_off && file_len - env->msg_off == env->size; }
void qfile_env_free(struct qfile_env *env) { (void)env; }
bool qfile_id_valid(const char *s, size_t len) { (void)s; return len == QFILE_ID_LEN; }
bool qfile_format_envelope(const struct qfile_env *env, struct sb *out)
{ (void)env, (void)out; return false; }
bool qstate_parse(const char *buf, size_t len, struct qstate *st, char *err, size_t errlen)
{ (void)buf, (void)len, (void)err, (void)errlen; memset(st, 0, sizeof *st); return false; }
bool qstate_format(const struct qstate *st, struct sb *out) { (void)st, (void)out; return false; }
bool qstate_from_env(const struct qfile_env *env, struct qstate *st)
{ (void)env; memset(st, 0, sizeof *st); return false; }
bool qstate_matches_env(const struct qstate *st, const struct qfile_env *env)
{ (void)st, (void)env; return false; }
bool qstate_set_last(struct qstate_rcpt *r, const char *text, size_t len)
{ (void)r, (void)text, (void)len; return false; }
bool qstate_done(const struct qstate *st) { (void)st; return false; }
int64_t qstate_next_attempt(const struct qstate *st) { (void)st; return INT64_MAX; }
void qstate_free(struct qstate *st) { (void)st; }
const char *qstate_state_name(enum qstate_rcpt_state s) { (void)s; return "pending"; }
