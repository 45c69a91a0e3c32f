/* hostsfile.h - look a host name up in the text of a hosts(5) file, the
 * "files" step of glibc's default "hosts: files dns": one line per address
 * ("IP canonical_name [aliases...]"), fields separated by blanks, '#' to
 * the end of the line a comment. Pure: no I/O, no allocation, no global
 * state; any thread may call it; never reads outside text[0..len). */
#ifndef MXRING_HOSTSFILE_H
#define MXRING_HOSTSFILE_H

#include <stddef.h>
#include <stdint.h>

/* One address of a name: family AF_INET (addr[0..4)) or AF_INET6. */
struct hosts_addr {
    int family;
    uint8_t addr[16]; /* network order */
};

/* hosts_lookup - the addresses of name (ASCII case-insensitive, one
 * trailing dot ignored) in text[0..len), in file order, each address once,
 * at most max of them into out[]. A line whose first field is not an IPv4
 * dotted quad or an IPv6 address (inet_pton; a scope "%if" is not
 * accepted) is ignored. Returns how many were stored. */
size_t hosts_lookup(const char *text, size_t len, const char *name, struct hosts_addr *out,
                    size_t max);

#endif
