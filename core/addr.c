/* addr.c - the one normalisation of client addresses (struct mx_addr):
 * IPv4-mapped IPv6 is IPv4, the printable text is made once. Pure
 * functions over their arguments; any thread. */
#include "addr.h"

#include <arpa/inet.h>
#include <string.h>

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* set_v4 - a as the IPv4 address of the 4 octets b. */
static void set_v4(struct mx_addr *a, const void *b, uint16_t port)
{
    a->family = AF_INET;
    a->port = port;
    memcpy(a->bytes, b, 4);
    inet_ntop(AF_INET, a->bytes, a->text, sizeof(a->text));
}

/* mx_addr_from_sockaddr - see addr.h. */
void mx_addr_from_sockaddr(struct mx_addr *a, const struct sockaddr *sa)
{
    memset(a, 0, sizeof(*a));
    if (sa && sa->sa_family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof(in));
        set_v4(a, &in.sin_addr, ntohs(in.sin_port));
    } else if (sa && sa->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof(in6));
        if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
            set_v4(a, &in6.sin6_addr.s6_addr[12], ntohs(in6.sin6_port));
            return;
        }
        a->family = AF_INET6;
        a->port = ntohs(in6.sin6_port);
        memcpy(a->bytes, &in6.sin6_addr, 16);
        inet_ntop(AF_INET6, a->bytes, a->text, sizeof(a->text));
    } else {
        a->family = AF_UNSPEC;
        strcpy(a->text, "unknown");
    }
}

/* mx_addr_key16 - see addr.h. */
void mx_addr_key16(const struct mx_addr *a, uint8_t out[16])
{
    memset(out, 0, 16);
    if (a->family == AF_INET) {
        memcpy(out, v4mapped_prefix, sizeof(v4mapped_prefix));
        memcpy(out + 12, a->bytes, 4);
    } else if (a->family == AF_INET6) {
        memcpy(out, a->bytes, 16);
    }
}
