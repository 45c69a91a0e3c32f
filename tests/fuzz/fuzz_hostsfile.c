/* fuzz_hostsfile.c - libFuzzer target for core/hostsfile.c. The input's
 * first line is the name, the rest the hosts text (an exact-size copy, so
 * ASan sees any read past it); hosts_lookup is checked against a slow
 * reference model (strtok_r over NUL-terminated line copies, strcasecmp)
 * whenever the input holds no NUL. Single-threaded. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "hostsfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_MAX 4
#define FZ_NAME_MAX 300

#define FZ_CHECK(c)                                                                        \
    do {                                                                                   \
        if (!(c)) {                                                                        \
            fprintf(stderr, "fuzz_hostsfile: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* ref_add - the model's "each address once, at most FZ_MAX". */
static void ref_add(const struct hosts_addr *a, struct hosts_addr *out, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        if (out[i].family == a->family && memcmp(out[i].addr, a->addr, 16) == 0)
            return;
    if (*n < FZ_MAX)
        out[(*n)++] = *a;
}

/* ref_line - the model for one line (NUL-terminated, modified). */
static void ref_line(char *line, const char *name, struct hosts_addr *out, size_t *n)
{
    char *hash = strchr(line, '#'), *save = NULL;
    if (hash)
        *hash = 0;
    const char *sep = " \t\r\v\f";
    char *addr = strtok_r(line, sep, &save);
    if (!addr)
        return;
    for (char *f = strtok_r(NULL, sep, &save); f; f = strtok_r(NULL, sep, &save)) {
        if (strcasecmp(f, name) != 0)
            continue;
        struct hosts_addr a = {0};
        if (inet_pton(AF_INET, addr, a.addr) == 1)
            a.family = AF_INET;
        else if (inet_pton(AF_INET6, addr, a.addr) == 1)
            a.family = AF_INET6;
        if (a.family)
            ref_add(&a, out, n);
        return;
    }
}

/* ref_lookup - the slow model of hosts_lookup over a NUL-free text. */
static size_t ref_lookup(const char *text, size_t len, const char *qname, struct hosts_addr *out)
{
    char name[FZ_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%s", qname);
    size_t nl = strlen(name), n = 0;
    if (nl && name[nl - 1] == '.')
        name[--nl] = 0;
    if (nl == 0 || strpbrk(name, " \t\r\v\f#"))
        return 0; /* strtok fields never hold these */
    char *copy = malloc(len + 1);
    FZ_CHECK(copy != NULL);
    memcpy(copy, text, len);
    copy[len] = 0;
    for (char *line = copy, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        ref_line(line, name, out, &n);
    }
    free(copy);
    return n;
}

/* LLVMFuzzerTestOneInput - "name\ntext". */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t nlen = nl ? (size_t)(nl - data) : size;
    if (nlen > FZ_NAME_MAX)
        return 0;
    char name[FZ_NAME_MAX + 1];
    memcpy(name, data, nlen);
    name[nlen] = 0;
    size_t tlen = nl ? size - nlen - 1 : 0;
    char *text = malloc(tlen ? tlen : 1);
    FZ_CHECK(text != NULL);
    memcpy(text, nl ? (const char *)nl + 1 : "", tlen);
    struct hosts_addr got[FZ_MAX], want[FZ_MAX];
    memset(got, 0, sizeof(got));
    memset(want, 0, sizeof(want));
    size_t n = hosts_lookup(text, tlen, name, got, FZ_MAX);
    FZ_CHECK(n <= FZ_MAX);
    if (!memchr(data, 0, size)) {
        size_t m = ref_lookup(text, tlen, name, want);
        FZ_CHECK(n == m);
        FZ_CHECK(memcmp(got, want, n * sizeof(got[0])) == 0);
    }
    free(text);
    return 0;
}
