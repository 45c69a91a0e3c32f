/* addr.h - the client address, normalised once where it enters (at accept;
 * later also from a PROXY header) and then only read: an IPv4 client that
 * arrives as IPv4-mapped IPv6 (::ffff:a.b.c.d) is an IPv4 address here, so
 * no other module looks at sockaddr families again. Pure; any thread. */
#ifndef MXRING_ADDR_H
#define MXRING_ADDR_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#define MX_ADDR_TEXT_MAX INET6_ADDRSTRLEN

struct mx_addr {
    int family;                  /* AF_INET, AF_INET6, or AF_UNSPEC: unknown */
    uint16_t port;               /* host order; 0 when unknown */
    uint8_t bytes[16];           /* AF_INET: the first 4 octets; AF_INET6: all 16 */
    char text[MX_ADDR_TEXT_MAX]; /* printable address, "unknown" for AF_UNSPEC */
};

/* mx_addr_from_sockaddr - fill a from sa; IPv4-mapped IPv6 becomes IPv4.
 * NULL or another family gives the unknown address. */
void mx_addr_from_sockaddr(struct mx_addr *a, const struct sockaddr *sa);

/* mx_addr_key16 - the address as 16 octets, IPv4 in its mapped form, for
 * hashing; all zero for the unknown address. */
void mx_addr_key16(const struct mx_addr *a, uint8_t out[16]);

#endif
