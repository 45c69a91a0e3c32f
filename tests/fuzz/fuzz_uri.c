/* fuzz_uri.c - libFuzzer target for core/uri.c. The first octet chooses the
 * host cap (1..64), the rest is the message. Checks: the count is within
 * the cap, hosts are distinct, each is a fixed point of uri_host_parse(),
 * only known flag bits are set. Single-threaded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_MAX_HOSTS 64
#define FZ_FLAGS_KNOWN (URI_F_TRUNCATED | URI_F_DEEP | URI_F_BAD_ENC | URI_F_UNCLOSED)

#define FZ_CHECK(c)                                                                  \
    do {                                                                             \
        if (!(c)) {                                                                  \
            fprintf(stderr, "fuzz_uri: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

/* LLVMFuzzerTestOneInput - one message. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct uri_host h[FZ_MAX_HOSTS];
    unsigned flags;
    if (size < 1)
        return 0;
    size_t max = 1 + data[0] % FZ_MAX_HOSTS;
    size_t n = uri_extract((const char *)data + 1, size - 1, h, max, &flags);
    FZ_CHECK(n <= max);
    FZ_CHECK((flags & ~FZ_FLAGS_KNOWN) == 0);
    FZ_CHECK(!(flags & URI_F_TRUNCATED) || n == max);
    for (size_t i = 0; i < n; i++) {
        struct uri_host again;
        FZ_CHECK(h[i].len > 0 && h[i].len <= URI_HOST_MAX && strlen(h[i].name) == h[i].len);
        FZ_CHECK(uri_host_parse(h[i].name, h[i].len, &again));
        FZ_CHECK(strcmp(again.name, h[i].name) == 0 && again.is_ip == h[i].is_ip);
        for (size_t j = 0; j < i; j++)
            FZ_CHECK(strcmp(h[i].name, h[j].name) != 0);
    }
    return 0;
}
