/* test_dnsmsg.c - unit tests of core/dnsmsg.c: query bytes and name
 * validation; reply parsing (A and AAAA answers, several addresses,
 * compression, CNAME chains, rcodes, mismatches) and hostile replies (pointer loops, truncation at every
 * length, bad lengths, random mutations). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dnsmsg.h"

#define QNAME "bad.example.multi.surbl.test"
#define QID 0xabcd

/* A packet under construction. */
struct pkt {
    uint8_t b[1024];
    size_t n;
};

/* put - append n octets. */
static void put(struct pkt *p, const void *v, size_t n)
{
    assert_true(p->n + n <= sizeof(p->b));
    memcpy(p->b + p->n, v, n);
    p->n += n;
}

/* put16 - append a big-endian 16-bit value. */
static void put16(struct pkt *p, unsigned v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(p, b, 2);
}

/* put32 - append a big-endian 32-bit value. */
static void put32(struct pkt *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p, v & 0xffff);
}

/* put_name - append a text name in uncompressed wire form. */
static void put_name(struct pkt *p, const char *name)
{
    while (*name) {
        size_t l = strcspn(name, ".");
        uint8_t lb = (uint8_t)l;
        put(p, &lb, 1);
        put(p, name, l);
        name += l + (name[l] == '.');
    }
    put(p, "", 1);
}

/* reply_head - header and question of a reply; counts an/ns/ar given. */
static void reply_head(struct pkt *p, unsigned flags, unsigned an, const char *qname)
{
    p->n = 0;
    put16(p, QID);
    put16(p, flags);
    put16(p, 1);
    put16(p, an);
    put16(p, 0);
    put16(p, 0);
    put_name(p, qname);
    put16(p, 1);
    put16(p, 1);
}

/* rr_a - an A record whose owner is a pointer to offset ptr. */
static void rr_a(struct pkt *p, unsigned ptr, uint32_t ttl, const uint8_t a[4])
{
    put16(p, 0xc000 | ptr);
    put16(p, 1);
    put16(p, 1);
    put32(p, ttl);
    put16(p, 4);
    put(p, a, 4);
}

static const uint8_t A2[4] = {127, 0, 0, 2};

/* answer_pkt - the usual listed reply: NOERROR, one A via pointer to the question. */
static void answer_pkt(struct pkt *p)
{
    reply_head(p, 0x8180, 1, QNAME);
    rr_a(p, DNSMSG_HDR_LEN, 300, A2);
}

static void test_dnsmsg_build_bytes(void **state)
{
    (void)state;
    uint8_t q[DNSMSG_QUERY_MAX], q2[DNSMSG_QUERY_MAX];
    struct pkt want = {.n = 0};
    put16(&want, QID);
    put16(&want, 0x0100);
    put16(&want, 1);
    put16(&want, 0);
    put16(&want, 0);
    put16(&want, 0);
    put_name(&want, QNAME);
    put16(&want, 1);
    put16(&want, 1);
    size_t n = dnsmsg_build_a(QID, QNAME, q, sizeof(q));
    assert_int_equal(n, want.n);
    assert_memory_equal(q, want.b, n);
    /* a trailing dot and upper case give the same query (names go lower-case) */
    assert_int_equal(dnsmsg_build_a(QID, "BAD.Example.multi.surbl.test.", q2, sizeof(q2)), n);
    assert_memory_equal(q, q2, n);
    /* exact room is enough, one octet less is not */
    assert_int_equal(dnsmsg_build_a(QID, QNAME, q2, n), n);
    assert_int_equal(dnsmsg_build_a(QID, QNAME, q2, n - 1), 0);
}

static void test_dnsmsg_name_validation(void **state)
{
    (void)state;
    char name[300];
    uint8_t q[DNSMSG_QUERY_MAX];
    assert_true(dnsmsg_name_ok("a.b"));
    assert_true(dnsmsg_name_ok("4.3.2.1.zen.example."));
    assert_true(dnsmsg_name_ok("_x-1.example"));
    assert_false(dnsmsg_name_ok(""));
    assert_false(dnsmsg_name_ok("."));
    assert_false(dnsmsg_name_ok("a..b"));
    assert_false(dnsmsg_name_ok(".a"));
    assert_false(dnsmsg_name_ok("a.b.."));
    assert_false(dnsmsg_name_ok("a b.c"));
    assert_false(dnsmsg_name_ok("a\\.b"));
    assert_false(dnsmsg_name_ok("ex\xc3\xa4mple.com"));
    memset(name, 'a', 63);
    strcpy(name + 63, ".com");
    assert_true(dnsmsg_name_ok(name));
    memset(name, 'a', 64);
    strcpy(name + 64, ".com");
    assert_false(dnsmsg_name_ok(name));
    /* 253 octets: the longest name; its query fits DNSMSG_QUERY_MAX */
    memset(name, 'a', 253);
    for (int i = 63; i < 253; i += 64)
        name[i] = '.';
    name[253] = 0;
    assert_true(dnsmsg_name_ok(name));
    assert_int_equal(dnsmsg_build_a(1, name, q, sizeof(q)), DNSMSG_QUERY_MAX);
    name[253] = '.';
    name[254] = 0;
    assert_true(dnsmsg_name_ok(name));
    name[253] = 'a';
    assert_false(dnsmsg_name_ok(name)); /* 254 octets */
    assert_int_equal(dnsmsg_build_a(1, name, q, sizeof(q)), 0);
}

static void test_dnsmsg_parse_answer(void **state)
{
    (void)state;
    struct pkt p;
    struct dnsmsg_result r;
    answer_pkt(&p);
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_ANSWER);
    assert_int_equal(r.status, DNSMSG_ANSWER);
    assert_memory_equal(r.addr, A2, 4);
    assert_int_equal(r.ttl, 300);
    assert_int_equal(r.rcode, 0);
    /* 0x20 case randomisation in the echoed question still matches */
    reply_head(&p, 0x8180, 1, "BaD.eXample.MULTI.surbl.test");
    rr_a(&p, DNSMSG_HDR_LEN, 0x80000000u, A2);
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME ".", &r), DNSMSG_ANSWER);
    assert_int_equal(r.ttl, 0); /* RFC 2181 8 */
}

static void test_dnsmsg_parse_first_a_after_others(void **state)
{
    (void)state;
    struct pkt p;
    struct dnsmsg_result r;
    static const uint8_t a3[4] = {127, 0, 0, 3}, a9[4] = {10, 9, 9, 9};
    reply_head(&p, 0x8180, 4, QNAME);
    put_name(&p, "other.example"); /* an A of another name */
    put16(&p, 1);
    put16(&p, 1);
    put32(&p, 5);
    put16(&p, 4);
    put(&p, a9, 4);
    put16(&p, 0xc000 | DNSMSG_HDR_LEN); /* a TXT of the name */
    put16(&p, 16);
    put16(&p, 1);
    put32(&p, 5);
    put16(&p, 3);
    put(&p, "\002hi", 3);
    rr_a(&p, DNSMSG_HDR_LEN, 60, a3);
    rr_a(&p, DNSMSG_HDR_LEN, 60, A2);
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_ANSWER);
    assert_memory_equal(r.addr, a3, 4);
}

static void test_dnsmsg_parse_cname_chain(void **state)
{
    (void)state;
    struct pkt p;
    struct dnsmsg_result r;
    reply_head(&p, 0x8180, 3, QNAME);
    put16(&p, 0xc000 | DNSMSG_HDR_LEN); /* QNAME CNAME t.example */
    put16(&p, 5);
    put16(&p, 1);
    put32(&p, 5);
    size_t target = p.n + 2;
    put16(&p, 11);
    put_name(&p, "t.example");
    rr_a(&p, DNSMSG_HDR_LEN, 7, (const uint8_t[4]){10, 0, 0, 1}); /* stale A of QNAME: ignored */
    rr_a(&p, (unsigned)target, 9, A2);
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_ANSWER);
    assert_memory_equal(r.addr, A2, 4);
    assert_int_equal(r.ttl, 9);
    /* a CNAME whose target does not fill its RDATA exactly is malformed */
    reply_head(&p, 0x8180, 1, QNAME);
    put16(&p, 0xc000 | DNSMSG_HDR_LEN);
    put16(&p, 5);
    put16(&p, 1);
    put32(&p, 5);
    put16(&p, 12);
    put_name(&p, "t.example");
    put(&p, "x", 1);
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_MALFORMED);
}

static void test_dnsmsg_parse_rcodes(void **state)
{
    (void)state;
    struct pkt p;
    struct dnsmsg_result r;
    reply_head(&p, 0x8183, 0, QNAME);
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_NXDOMAIN);
    assert_int_equal(r.rcode, 3);
    reply_head(&p, 0x8182, 0, QNAME);
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_SERVFAIL);
    reply_head(&p, 0x8185, 0, QNAME);
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_RCODE_OTHER);
    assert_int_equal(r.rcode, 5);
    reply_head(&p, 0x8180, 0, QNAME);
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_NODATA);
    reply_head(&p, 0x8380, 0, QNAME); /* TC */
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_TRUNCATED);
    reply_head(&p, 0x8380, 1, QNAME); /* TC, cut inside the answer */
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_TRUNCATED);
    answer_pkt(&p);
    p.b[2] |= 0x02; /* TC with a complete A */
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_ANSWER);
    assert_string_equal(dnsmsg_status_name(DNSMSG_NXDOMAIN), "nxdomain");
    assert_string_equal(dnsmsg_status_name((enum dnsmsg_status)99), "unknown");
}

static void test_dnsmsg_parse_mismatch(void **state)
{
    (void)state;
    struct pkt p;
    struct dnsmsg_result r;
    answer_pkt(&p);
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID + 1, QNAME, &r), DNSMSG_MISMATCH);
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, "good.example.multi.surbl.test", &r),
                     DNSMSG_MISMATCH);
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, "bad.example.multi.surbl", &r), DNSMSG_MISMATCH);
    answer_pkt(&p);
    p.b[2] &= 0x7f; /* a query, not a response */
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_MISMATCH);
    answer_pkt(&p);
    p.b[2] |= 0x10; /* opcode 2 */
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_MISMATCH);
    answer_pkt(&p);
    p.b[5] = 2; /* QDCOUNT 2 */
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_MISMATCH);
    answer_pkt(&p);
    p.b[5] = 0;
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_MISMATCH);
    answer_pkt(&p);
    p.b[DNSMSG_HDR_LEN + strlen(QNAME) + 3] = 16; /* QTYPE TXT */
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_MISMATCH);
    answer_pkt(&p);
    p.b[DNSMSG_HDR_LEN + strlen(QNAME) + 5] = 3; /* QCLASS CH */
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_MISMATCH);
    /* an invalid query name can match nothing */
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, "a..b", &r), DNSMSG_MALFORMED);
}

static void test_dnsmsg_parse_truncated_everywhere(void **state)
{
    (void)state;
    struct pkt p;
    struct dnsmsg_result r;
    answer_pkt(&p);
    size_t qend = DNSMSG_HDR_LEN + strlen(QNAME) + 2 + 4;
    for (size_t n = 0; n < p.n; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan sees any overread */
        assert_non_null(copy);
        memcpy(copy, p.b, n);
        enum dnsmsg_status st = dnsmsg_parse_a(copy, n, QID, QNAME, &r);
        if (n < DNSMSG_HDR_LEN)
            assert_int_equal(st, DNSMSG_MALFORMED);
        else if (n < qend)
            assert_int_equal(st, DNSMSG_MISMATCH);
        else
            assert_int_equal(st, DNSMSG_MALFORMED);
        free(copy);
    }
}

static void test_dnsmsg_parse_pointer_loops(void **state)
{
    (void)state;
    struct pkt p;
    struct dnsmsg_result r;
    /* an answer owner pointing at itself */
    reply_head(&p, 0x8180, 1, QNAME);
    unsigned self = (unsigned)p.n;
    rr_a(&p, self, 1, A2);
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_MALFORMED);
    /* two pointers pointing at each other */
    reply_head(&p, 0x8180, 1, QNAME);
    unsigned at = (unsigned)p.n;
    put16(&p, 0xc000 | (at + 2));
    put16(&p, 0xc000 | at);
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_MALFORMED);
    /* a label then a pointer back to that label: grows past 255 octets */
    reply_head(&p, 0x8180, 1, QNAME);
    at = (unsigned)p.n;
    put(&p, "\003abc", 4);
    put16(&p, 0xc000 | at);
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_MALFORMED);
    /* pointers beyond the packet, and in the question */
    reply_head(&p, 0x8180, 1, QNAME);
    put16(&p, 0xffff);
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_MALFORMED);
    p.n = DNSMSG_HDR_LEN;
    put16(&p, 0xc000 | DNSMSG_HDR_LEN);
    put16(&p, 1);
    put16(&p, 1);
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_MISMATCH);
    /* a pointer cut in half at the end of the packet */
    reply_head(&p, 0x8180, 1, QNAME);
    put(&p, "\xc0", 1);
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_MALFORMED);
    /* reserved label types 0x40 and 0x80 */
    reply_head(&p, 0x8180, 1, QNAME);
    put(&p, "\x41x\0", 3);
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_MALFORMED);
}

static void test_dnsmsg_parse_bad_lengths(void **state)
{
    (void)state;
    struct pkt p;
    struct dnsmsg_result r;
    answer_pkt(&p);
    p.b[p.n - 5] = 5; /* RDLENGTH 5 with 4 octets left */
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_MALFORMED);
    answer_pkt(&p);
    put(&p, "x", 1);
    p.b[p.n - 6] = 5; /* an A of 5 octets */
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_MALFORMED);
    answer_pkt(&p);
    p.b[6] = 0xff;
    p.b[7] = 0xff; /* ANCOUNT 65535: the first record already answers */
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_ANSWER);
    reply_head(&p, 0x8180, 0xffff, QNAME); /* 65535 records promised, none there */
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_MALFORMED);
}

/* rng - xorshift64 for reproducible mutations. */
static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_dnsmsg_parse_random_mutations(void **state)
{
    (void)state;
    struct pkt base;
    struct dnsmsg_result r;
    uint64_t seed = 42;
    reply_head(&base, 0x8180, 2, QNAME);
    put16(&base, 0xc000 | DNSMSG_HDR_LEN);
    put16(&base, 5);
    put16(&base, 1);
    put32(&base, 5);
    put16(&base, 4);
    put(&base, "\001t\300\024", 4); /* t.<"example.multi.surbl.test"> */
    rr_a(&base, (unsigned)base.n - 4, 9, A2);
    for (int i = 0; i < 20000; i++) {
        size_t n = base.n - (size_t)(rng(&seed) % 8);
        uint8_t *m = malloc(n);
        assert_non_null(m);
        memcpy(m, base.b, n);
        for (int k = (int)(rng(&seed) % 4); k >= 0; k--)
            m[rng(&seed) % n] = (uint8_t)rng(&seed);
        enum dnsmsg_status st = dnsmsg_parse_a(m, n, QID, QNAME, &r);
        assert_true(st <= DNSMSG_MALFORMED);
        assert_int_equal(st, r.status);
        free(m);
    }
}

/* rr_aaaa - an AAAA record (rdlen octets of a, 16 for a good one) whose
 * owner is a pointer to offset ptr. */
static void rr_aaaa(struct pkt *p, unsigned ptr, uint32_t ttl, const uint8_t *a, unsigned rdlen)
{
    put16(p, 0xc000 | ptr);
    put16(p, DNSMSG_TYPE_AAAA);
    put16(p, 1);
    put32(p, ttl);
    put16(p, rdlen);
    put(p, a, rdlen);
}

/* question_type - make the question of a reply_head packet ask for type. */
static void question_type(struct pkt *p, const char *qname, unsigned type)
{
    size_t at = DNSMSG_HDR_LEN + strlen(qname) + 2; /* QTYPE after the name */
    p->b[at] = (uint8_t)(type >> 8);
    p->b[at + 1] = (uint8_t)type;
}

static const uint8_t V6_1[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
static const uint8_t V6_LO[16] = {[15] = 1};

static void test_dnsmsg_build_aaaa_bytes(void **state)
{
    (void)state;
    uint8_t qa[DNSMSG_QUERY_MAX], q6[DNSMSG_QUERY_MAX];
    size_t n = dnsmsg_build_a(QID, QNAME, qa, sizeof(qa));
    assert_int_equal(dnsmsg_build(QID, QNAME, DNSMSG_TYPE_AAAA, q6, sizeof(q6)), n);
    assert_memory_equal(q6, qa, n - 4); /* header and name alike */
    assert_int_equal(q6[n - 4], 0);     /* QTYPE 28 */
    assert_int_equal(q6[n - 3], 28);
    assert_memory_equal(q6 + n - 2, "\0\1", 2); /* QCLASS IN */
    /* only A and AAAA are asked for */
    assert_int_equal(dnsmsg_build(QID, QNAME, 16, q6, sizeof(q6)), 0);
    assert_int_equal(dnsmsg_build(QID, QNAME, 0, q6, sizeof(q6)), 0);
}

static void test_dnsmsg_parse_aaaa_answers(void **state)
{
    (void)state;
    struct pkt p;
    struct dnsmsg_result r;
    reply_head(&p, 0x8180, 3, QNAME);
    question_type(&p, QNAME, DNSMSG_TYPE_AAAA);
    rr_aaaa(&p, DNSMSG_HDR_LEN, 300, V6_1, 16);
    rr_a(&p, DNSMSG_HDR_LEN, 5, A2); /* an A in an AAAA answer: not ours */
    rr_aaaa(&p, DNSMSG_HDR_LEN, 60, V6_LO, 16);
    assert_int_equal(dnsmsg_parse(p.b, p.n, QID, QNAME, DNSMSG_TYPE_AAAA, &r), DNSMSG_ANSWER);
    assert_int_equal(r.naddr, 2);
    assert_memory_equal(dnsmsg_addr(&r, 0), V6_1, 16);
    assert_memory_equal(dnsmsg_addr(&r, 1), V6_LO, 16);
    assert_int_equal(r.ttl, 60); /* the smallest */
    /* the AAAA reply is no answer to the A query of the same name (and id) */
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_MISMATCH);
    /* an AAAA of 4 octets is malformed */
    reply_head(&p, 0x8180, 1, QNAME);
    question_type(&p, QNAME, DNSMSG_TYPE_AAAA);
    rr_aaaa(&p, DNSMSG_HDR_LEN, 60, V6_LO, 4);
    assert_int_equal(dnsmsg_parse(p.b, p.n, QID, QNAME, DNSMSG_TYPE_AAAA, &r), DNSMSG_MALFORMED);
    /* NOERROR without an AAAA (an A only): no data */
    reply_head(&p, 0x8180, 1, QNAME);
    question_type(&p, QNAME, DNSMSG_TYPE_AAAA);
    rr_a(&p, DNSMSG_HDR_LEN, 5, A2);
    assert_int_equal(dnsmsg_parse(p.b, p.n, QID, QNAME, DNSMSG_TYPE_AAAA, &r), DNSMSG_NODATA);
    assert_int_equal(r.naddr, 0);
}

static void test_dnsmsg_parse_several_a(void **state)
{
    (void)state;
    struct pkt p;
    struct dnsmsg_result r;
    reply_head(&p, 0x8180, DNSMSG_ADDRS_MAX + 1, QNAME);
    for (unsigned i = 0; i <= DNSMSG_ADDRS_MAX; i++)
        rr_a(&p, DNSMSG_HDR_LEN, 100 - i, (const uint8_t[4]){10, 0, 0, (uint8_t)(i + 1)});
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_ANSWER);
    assert_int_equal(r.naddr, DNSMSG_ADDRS_MAX); /* the rest are not kept */
    for (unsigned i = 0; i < DNSMSG_ADDRS_MAX; i++)
        assert_memory_equal(dnsmsg_addr(&r, i), ((const uint8_t[4]){10, 0, 0, (uint8_t)(i + 1)}),
                            4);
    assert_int_equal(r.ttl, 100 - (DNSMSG_ADDRS_MAX - 1));
    /* a broken record after a good one ends the walk with what was found */
    reply_head(&p, 0x8180, 2, QNAME);
    rr_a(&p, DNSMSG_HDR_LEN, 30, A2);
    put16(&p, 0xc000 | DNSMSG_HDR_LEN);
    put16(&p, 1);
    put16(&p, 1);
    put32(&p, 30);
    put16(&p, 5); /* an A of 5 octets */
    put(&p, "12345", 5);
    assert_int_equal(dnsmsg_parse_a(p.b, p.n, QID, QNAME, &r), DNSMSG_ANSWER);
    assert_int_equal(r.naddr, 1);
    assert_memory_equal(dnsmsg_addr(&r, 0), A2, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dnsmsg_build_bytes),
        cmocka_unit_test(test_dnsmsg_name_validation),
        cmocka_unit_test(test_dnsmsg_parse_answer),
        cmocka_unit_test(test_dnsmsg_parse_first_a_after_others),
        cmocka_unit_test(test_dnsmsg_parse_cname_chain),
        cmocka_unit_test(test_dnsmsg_parse_rcodes),
        cmocka_unit_test(test_dnsmsg_parse_mismatch),
        cmocka_unit_test(test_dnsmsg_parse_truncated_everywhere),
        cmocka_unit_test(test_dnsmsg_parse_pointer_loops),
        cmocka_unit_test(test_dnsmsg_parse_bad_lengths),
        cmocka_unit_test(test_dnsmsg_parse_random_mutations),
        cmocka_unit_test(test_dnsmsg_build_aaaa_bytes),
        cmocka_unit_test(test_dnsmsg_parse_aaaa_answers),
        cmocka_unit_test(test_dnsmsg_parse_several_a),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
