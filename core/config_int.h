/* config_int.h - private to config.c and config_types.c: the key table's
 * row type, the value types and their operations, and the small helpers
 * both files use. Nothing else includes it. */
#ifndef MXRING_CONFIG_INT_H
#define MXRING_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "util.h"

#define CFG_LINE_MAX 4096  /* longest accepted line, newline excluded */
#define CFG_WHY_MAX 512    /* one error reason */
#define CFG_QUOTE_MAX 64   /* bytes of a bad value echoed in an error */
#define CFG_DOMAIN_MAX 253 /* RFC 1035 name length without the root dot */
#define CFG_LABEL_MAX 63
#define CFG_PORT_MAX 65535u
#define CFG_KIB 1024ull
#define CFG_MIB (1024ull * CFG_KIB)
#define CFG_GIB (1024ull * CFG_MIB)

enum cfg_type {
    T_HOST,
    T_PATH,
    T_TEXT,
    T_SOCKET,
    T_UINT,
    T_SIZE,
    T_ENUM,
    T_DOMAINS,
    T_LISTEN,
    T_CIDRS,
    T_ZONES,
    T_DURATION,
    T_ROUTE,
    T_CERTS,
    T_DNSBL,
    T_MILTERS
};

/* One configuration key. min/max: value bounds for uint and size; for a path
 * min 1 means "required" (empty rejected); for a list, the least number of
 * items. def is the default text (NULL = empty); def_fn computes it instead. */
struct cfg_key {
    const char *name;
    enum cfg_type type;
    size_t off;  /* the field in struct config */
    size_t noff; /* lists: the size_t item count */
    const char *def;
    bool (*def_fn)(char *buf, size_t len);
    uint64_t min, max;
    const char *const *names;  /* enum: value names, index = stored value */
    uint64_t (*auto_fn)(void); /* uint: what a 0 resolves to */
    bool reload;               /* may change on reload without a restart */
    const char *desc;
};

struct cfg_type_ops {
    const char *name; /* for the README table */
    bool (*parse)(const struct cfg_key *k, const char *v, struct config *c, char *why, size_t n);
    void (*format)(const struct cfg_key *k, const struct config *c, struct sb *out);
    void (*release)(const struct cfg_key *k, struct config *c);
};

/* cfg_types - the operations of each enum cfg_type (config_types.c). */
extern const struct cfg_type_ops cfg_types[];

/* cfg_field - address of a key's field inside c. */
void *cfg_field(const struct cfg_key *k, const struct config *c);
/* cfg_quote - escape up to CFG_QUOTE_MAX bytes of s into out so that an
 * error stays one printable line; longer values end in "...". */
void cfg_quote(const char *s, char *out, size_t outlen);
/* cfg_parse_dec - strict decimal: at least one digit, no sign, no
 * overflow; *end gets the first byte after the digits. */
bool cfg_parse_dec(const char *s, const char **end, uint64_t *out);
/* cfg_fmt_bytes - a byte count in the shortest exact K/M/G form ("25M"). */
void cfg_fmt_bytes(uint64_t v, struct sb *out);
/* cfg_fmt_secs - a duration in its largest exact unit. */
void cfg_fmt_secs(uint64_t v, struct sb *out);
/* cfg_fmt_names - an enum key's names joined by sep. */
void cfg_fmt_names(const struct cfg_key *k, const char *sep, struct sb *out);
/* cfg_trim - strip blanks in place at both ends; returns the new start. */
char *cfg_trim(char *s);

#endif
