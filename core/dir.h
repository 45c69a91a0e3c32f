/* dir.h - the recipient directory: users, groups, aliases and lists loaded
 * from flat files into an immutable, read-only snapshot shared by all
 * workers (swapped whole on reload). Lookups are ASCII case-insensitive,
 * lock-free and allocation-free. Load from the main thread; look up from any. */
#ifndef MXRING_DIR_H
#define MXRING_DIR_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct dir;

enum dir_kind {
    DIR_NOT_FOUND = 0,
    DIR_USER,  /* "found Users"   */
    DIR_GROUP, /* "found Groups"  */
    DIR_ALIAS, /* "found Aliases" */
    DIR_LIST,  /* "found Lists"   */
};

/* dir_load - load the four files (any may be NULL = not configured). A
 * malformed line gives NULL and one line in err: "<file>:<line>: <why>". */
struct dir *dir_load(const char *users_file, const char *groups_file, const char *aliases_file,
                     const char *lists_file, char *err, size_t errlen);
/* dir_free - release a snapshot (NULL is fine). */
void dir_free(struct dir *d);
/* dir_configured - was at least one file configured? When not, every
 * local part of a local domain is accepted. */
bool dir_configured(const struct dir *d);
/* dir_lookup - classify the full address "local@domain" (len octets).
 * Users win over groups over aliases over lists when an address is in
 * several files. */
enum dir_kind dir_lookup(const struct dir *d, const char *addr, size_t len);
/* dir_kind_name - "Users", "Groups", "Aliases", "Lists", or "" */
const char *dir_kind_name(enum dir_kind k);
/* dir_user_hash - the crypt(3) hash of a user, or NULL if not a user. */
const char *dir_user_hash(const struct dir *d, const char *addr, size_t len);
/* dir_sample_hash - the hash of some unlocked user (NULL if none): the
 * AUTH verifier checks unknown users against a hash of the same scheme, so
 * their timing matches a real user's. O(table size): for load time only. */
const char *dir_sample_hash(const struct dir *d);
/* dir_targets - targets of a group/alias/list entry: *n set, array owned by d. */
const char *const *dir_targets(const struct dir *d, const char *addr, size_t len, size_t *n);
/* dir_count - number of entries loaded (all kinds). */
size_t dir_count(const struct dir *d);

/* Additions (directory helper): */

/* DIR_FILES - how many directory files there are (users, groups, aliases,
 * lists); DIR_ADDR_MAX - longest entry or target address, in octets. */
#define DIR_FILES 4
#define DIR_ADDR_MAX 256

/* dir_source - one directory file already in memory: name (used in error
 * messages) and its bytes. data == NULL means "not configured". */
struct dir_source {
    const char *name;
    const char *data;
    size_t len;
};

/* dir_load_mem - dir_load over in-memory contents, src[k - DIR_USER] for
 * each kind k (users, groups, aliases, lists). Pure: no I/O. Same errors. */
struct dir *dir_load_mem(const struct dir_source src[DIR_FILES], char *err, size_t errlen);
/* dir_user_locked - is addr a user whose hash starts with '*' or '!'? A
 * locked user is still a valid recipient but never authenticates. */
bool dir_user_locked(const struct dir *d, const char *addr, size_t len);
/* dir_user_verify - does password match the user's crypt(3) hash? False
 * for unknown and locked users. Thread-safe; allocates (not for RCPT). */
bool dir_user_verify(const struct dir *d, const char *addr, size_t len, const char *password);

#ifdef __cplusplus
}
#endif

#endif
