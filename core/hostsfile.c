/* hostsfile.c - the hosts(5) parser of hostsfile.h: one pass over the text,
 * line by line, comparing every name field with the wanted name, parsing
 * the line's address only when one matches. Pure; any thread may call it
 * (the delivery thread does, on the text net/dlv_dns.c keeps). */
#include "hostsfile.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#define HOSTS_ADDR_TEXT_MAX 64 /* longer first fields are no address */

/* A field of a line: [b, e). */
struct span {
    const char *b, *e;
};

/* blank - a field separator (CR too, for files written on Windows). */
static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* lower - ASCII lower case. */
static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

/* next_field - the next field of the line [*p, end) into *f; false at the
 * end of the line. */
static bool next_field(const char **p, const char *end, struct span *f)
{
    const char *s = *p;
    while (s < end && blank(*s))
        s++;
    if (s == end)
        return false;
    f->b = s;
    while (s < end && !blank(*s))
        s++;
    f->e = s;
    *p = s;
    return true;
}

/* name_eq - the field equals name[0..nlen), ignoring ASCII case. */
static bool name_eq(const struct span *f, const char *name, size_t nlen)
{
    if ((size_t)(f->e - f->b) != nlen)
        return false;
    for (size_t i = 0; i < nlen; i++)
        if (lower(f->b[i]) != lower(name[i]))
            return false;
    return true;
}

/* addr_parse - the address field f into *a; false if it is none. */
static bool addr_parse(const struct span *f, struct hosts_addr *a)
{
    char buf[HOSTS_ADDR_TEXT_MAX];
    size_t n = (size_t)(f->e - f->b);
    if (n >= sizeof(buf))
        return false;
    memcpy(buf, f->b, n);
    buf[n] = 0;
    memset(a, 0, sizeof(*a));
    if (inet_pton(AF_INET, buf, a->addr) == 1)
        a->family = AF_INET;
    else if (inet_pton(AF_INET6, buf, a->addr) == 1)
        a->family = AF_INET6;
    return a->family != 0;
}

/* add_once - append a to out[0..*n) unless it is there or out is full. */
static void add_once(const struct hosts_addr *a, struct hosts_addr *out, size_t *n, size_t max)
{
    for (size_t i = 0; i < *n; i++)
        if (out[i].family == a->family && memcmp(out[i].addr, a->addr, sizeof(a->addr)) == 0)
            return;
    if (*n < max)
        out[(*n)++] = *a;
}

/* line_lookup - the line [b, e) (comment already cut): its address when
 * one of its names is name[0..nlen). */
static bool line_lookup(const char *b, const char *e, const char *name, size_t nlen,
                        struct hosts_addr *a)
{
    struct span addr, f;
    if (!next_field(&b, e, &addr))
        return false;
    while (next_field(&b, e, &f))
        if (name_eq(&f, name, nlen))
            return addr_parse(&addr, a);
    return false;
}

/* hosts_lookup - see hostsfile.h. */
size_t hosts_lookup(const char *text, size_t len, const char *name, struct hosts_addr *out,
                    size_t max)
{
    size_t nlen = strlen(name), n = 0;
    if (nlen > 0 && name[nlen - 1] == '.')
        nlen--;
    if (nlen == 0 || !text)
        return 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *hash = memchr(p, '#', (size_t)(le - p));
        struct hosts_addr a;
        if (line_lookup(p, hash ? hash : le, name, nlen, &a))
            add_once(&a, out, &n, max);
        p = nl ? nl + 1 : end;
    }
    return n;
}
