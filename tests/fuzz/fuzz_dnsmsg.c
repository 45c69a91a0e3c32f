/* fuzz_dnsmsg.c - libFuzzer target for core/dnsmsg.c. The input is a reply
 * to the query (its own first two octets as id, a fixed name), parsed as
 * the reply to the A and to the AAAA query under ASan with an exact-size
 * copy; its first 300 octets are also tried as a name to build both
 * queries from, which must then round-trip. Single-threaded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_QNAME "bad.example.multi.surbl.test"
#define FZ_NAME_MAX 300

#define FZ_CHECK(c)                                                                     \
    do {                                                                                \
        if (!(c)) {                                                                     \
            fprintf(stderr, "fuzz_dnsmsg: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* fuzz_reply - parse data as the reply to (id, FZ_QNAME). */
static void fuzz_reply(const uint8_t *data, size_t size)
{
    struct dnsmsg_result r;
    uint16_t id = size >= 2 ? (uint16_t)((data[0] << 8) | data[1]) : 0;
    uint8_t *copy = malloc(size ? size : 1);
    FZ_CHECK(copy != NULL);
    memcpy(copy, data, size);
    static const uint16_t types[] = {DNSMSG_TYPE_A, DNSMSG_TYPE_AAAA};
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        enum dnsmsg_status st = dnsmsg_parse(copy, size, id, FZ_QNAME, types[t], &r);
        FZ_CHECK(st == r.status && st <= DNSMSG_MALFORMED);
        FZ_CHECK(st != DNSMSG_ANSWER || r.ttl <= 0x7fffffffu);
        FZ_CHECK((st == DNSMSG_ANSWER) == (r.naddr > 0) && r.naddr <= DNSMSG_ADDRS_MAX);
    }
    free(copy);
}

/* fuzz_name - build a query for data as a name; a valid one round-trips. */
static void fuzz_name(const uint8_t *data, size_t size)
{
    char name[FZ_NAME_MAX + 1];
    uint8_t q[DNSMSG_QUERY_MAX];
    struct dnsmsg_result r;
    size_t n = size < FZ_NAME_MAX ? size : FZ_NAME_MAX;
    memcpy(name, data, n);
    name[n] = 0;
    size_t ql = dnsmsg_build_a(7, name, q, sizeof(q));
    FZ_CHECK((ql != 0) == dnsmsg_name_ok(name));
    if (!ql)
        return;
    FZ_CHECK(ql <= DNSMSG_QUERY_MAX);
    FZ_CHECK(dnsmsg_parse_a(q, ql, 7, name, &r) == DNSMSG_MISMATCH); /* QR clear */
    q[2] |= 0x80;                                                    /* make it a reply */
    FZ_CHECK(dnsmsg_parse_a(q, ql, 7, name, &r) == DNSMSG_NODATA);
    FZ_CHECK(dnsmsg_parse(q, ql, 7, name, DNSMSG_TYPE_AAAA, &r) == DNSMSG_MISMATCH);
    FZ_CHECK(dnsmsg_build(7, name, DNSMSG_TYPE_AAAA, q, sizeof(q)) == ql);
    q[2] |= 0x80;
    FZ_CHECK(dnsmsg_parse(q, ql, 7, name, DNSMSG_TYPE_AAAA, &r) == DNSMSG_NODATA);
    FZ_CHECK(dnsmsg_parse_a(q, ql, 7, name, &r) == DNSMSG_MISMATCH);
}

/* LLVMFuzzerTestOneInput - one packet. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reply(data, size);
    fuzz_name(data, size);
    return 0;
}
