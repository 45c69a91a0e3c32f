/* regdom.c - registered-domain reduction over libpsl and the reversed-octet
 * form of IPv4 hosts. Owns the one PSL context of the process (a static
 * pointer set by regdom_init() before threads start); lookups only read it,
 * so any thread may call regdom_reduce(). */
#include "regdom.h"

#include <libpsl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define IPV4_OCTETS 4
#define IPV4_OCTET_DIGITS 3
#define IPV4_OCTET_MAX 255
#define DNS_LABEL_MAX 63

static psl_ctx_t *regdom_loaded; /* from regdom_init(); NULL: built-in list */
static char regdom_path[512];    /* the file regdom_loaded came from */

/* regdom_ctx - the list in use. */
static const psl_ctx_t *regdom_ctx(void)
{
    return regdom_loaded ? regdom_loaded : psl_builtin();
}

/* regdom_load - replace the list in use by the one in path; false if it
 * does not load. */
static bool regdom_load(const char *path)
{
    psl_ctx_t *p = psl_load_file(path);
    if (!p)
        return false;
    psl_free(regdom_loaded);
    regdom_loaded = p;
    snprintf(regdom_path, sizeof(regdom_path), "%s", path);
    return true;
}

/* regdom_init - see regdom.h. */
bool regdom_init(const char *path)
{
    if (path)
        return regdom_load(path);
    return regdom_load(REGDOM_SYSTEM_DAFSA) || regdom_load(REGDOM_SYSTEM_DAT);
}

/* regdom_shutdown - see regdom.h. */
void regdom_shutdown(void)
{
    psl_free(regdom_loaded);
    regdom_loaded = NULL;
}

/* regdom_list - see regdom.h. */
const char *regdom_list(void)
{
    return regdom_loaded ? regdom_path : "libpsl built-in";
}

/* ipv4_octets - parse exactly "a.b.c.d", canonical decimal octets 0..255
 * (no leading zeros), into o[]. */
static bool ipv4_octets(const char *s, size_t n, uint8_t o[IPV4_OCTETS])
{
    size_t k = 0, i = 0;
    while (k < IPV4_OCTETS) {
        unsigned v = 0, digits = 0;
        bool zero = i < n && s[i] == '0';
        while (i < n && s[i] >= '0' && s[i] <= '9' && digits < IPV4_OCTET_DIGITS + 1)
            v = v * 10 + (unsigned)(s[i++] - '0'), digits++;
        if (digits == 0 || digits > IPV4_OCTET_DIGITS || v > IPV4_OCTET_MAX || (zero && digits > 1))
            return false;
        o[k++] = (uint8_t)v;
        if (k < IPV4_OCTETS && (i >= n || s[i++] != '.'))
            return false;
    }
    return i == n;
}

/* name_lower - copy host[0..n) lower-cased into buf; false on an empty or
 * over-long label, an octet that cannot be in a host name, or a numeric
 * top-level label. */
static bool name_lower(const char *host, size_t n, char *buf)
{
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + ('a' - 'A'));
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
            if (++label > DNS_LABEL_MAX)
                return false;
        } else {
            return false;
        }
        buf[i] = (char)c;
    }
    buf[n] = 0;
    if (n == 0 || label == 0)
        return false;
    for (size_t i = n - label; i < n; i++)
        if (buf[i] < '0' || buf[i] > '9')
            return true;
    return false; /* an all-numeric top-level label (RFC 3696 2) */
}

/* regdom_reduce - see regdom.h. */
enum regdom_kind regdom_reduce(const char *host, char *out, size_t cap)
{
    char buf[REGDOM_MAX + 1];
    size_t n = strnlen(host, REGDOM_MAX + 2);
    uint8_t o[IPV4_OCTETS];
    if (n > 0 && host[n - 1] == '.')
        n--;
    if (cap == 0)
        return REGDOM_NONE;
    out[0] = 0;
    if (n == 0 || n > REGDOM_MAX)
        return REGDOM_NONE;
    if (ipv4_octets(host, n, o)) {
        int len = snprintf(buf, sizeof(buf), "%u.%u.%u.%u", o[3], o[2], o[1], o[0]);
        if ((size_t)len >= cap)
            return REGDOM_NONE;
        memcpy(out, buf, (size_t)len + 1);
        return REGDOM_IP;
    }
    if (!name_lower(host, n, buf))
        return REGDOM_NONE;
    const char *rd = psl_registrable_domain(regdom_ctx(), buf);
    if (!rd || strlen(rd) >= cap)
        return REGDOM_NONE;
    memcpy(out, rd, strlen(rd) + 1);
    return REGDOM_NAME;
}
