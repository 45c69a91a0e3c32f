/* regdom.h - registered-domain reduction for SURBL/URIBL lookups: a host
 * name becomes the domain its owner registered (a.b.example.co.uk ->
 * example.co.uk) by the Public Suffix List through libpsl; an IPv4 literal
 * becomes its reversed-octet DNSBL form (1.2.3.4 -> 4.3.2.1).
 * Link with -lpsl. After regdom_init() (or without it) every thread may call
 * regdom_reduce(); regdom_init()/regdom_shutdown() run single-threaded. */
#ifndef MXRING_REGDOM_H
#define MXRING_REGDOM_H

#include <stdbool.h>
#include <stddef.h>

#define REGDOM_MAX 253 /* longest result, without the NUL */

enum regdom_kind {
    REGDOM_NONE = 0, /* not reducible: invalid, a public suffix itself, too long */
    REGDOM_NAME,     /* out holds the registered domain */
    REGDOM_IP,       /* out holds the reversed octets of an IPv4 literal */
};

/* The Debian publicsuffix package's lists, tried in this order. */
#define REGDOM_SYSTEM_DAFSA "/usr/share/publicsuffix/public_suffix_list.dafsa"
#define REGDOM_SYSTEM_DAT "/usr/share/publicsuffix/public_suffix_list.dat"

/* regdom_init - load the list in path (DAFSA or the text format), or with
 * path NULL the system list (REGDOM_SYSTEM_DAFSA, else REGDOM_SYSTEM_DAT).
 * It replaces the list in use. Without any call libpsl's compiled-in list
 * is used. Returns false, and keeps the list in use, when nothing loads. */
bool regdom_init(const char *path);

/* regdom_shutdown - release the list loaded by regdom_init(). */
void regdom_shutdown(void);

/* regdom_list - the list in use, for the log: the file it was loaded from,
 * or "libpsl built-in". */
const char *regdom_list(void);

/* regdom_reduce - reduce host (NUL-terminated; ASCII case and one trailing
 * dot are ignored) into out[0..cap), NUL-terminated. The rule "*" applies
 * to unknown top-level labels (bad.example -> bad.example). A host that is
 * a dotted-quad IPv4 address (four canonical decimal octets) gives REGDOM_IP; other
 * names with an all-numeric last label give REGDOM_NONE. On
 * REGDOM_NONE out is the empty string (when cap > 0). */
enum regdom_kind regdom_reduce(const char *host, char *out, size_t cap);

#endif
