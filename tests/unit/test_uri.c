/* test_uri.c - unit tests of core/uri.c: URL forms, host normalisation and
 * validation, MIME walking, quoted-printable/base64/HTML decoding, caps,
 * and hostile inputs (huge lines, broken encodings, deep nesting, millions
 * of boundaries, unterminated parts). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "uri.h"
#include "util.h"

#define MAXH 64

/* hosts_of - extract from msg[0..len) with cap max; return "h1 h2 ..."
 * (IP hosts marked "ip:") in a static buffer, flags into *fl. */
static const char *hosts_of_n(const char *msg, size_t len, size_t max, unsigned *fl)
{
    static char buf[MAXH * (URI_HOST_MAX + 4)];
    struct uri_host h[MAXH];
    unsigned f = 0xdead;
    assert_true(max <= MAXH);
    size_t n = uri_extract(msg, len, h, max, &f);
    assert_true(n <= max);
    assert_int_not_equal(f, 0xdead);
    buf[0] = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(strlen(h[i].name), h[i].len);
        strcat(buf, i ? " " : "");
        strcat(buf, h[i].is_ip ? "ip:" : "");
        strcat(buf, h[i].name);
    }
    if (fl)
        *fl = f;
    return buf;
}

/* hosts - hosts_of_n over a C string with cap MAXH. */
static const char *hosts(const char *msg, unsigned *fl)
{
    return hosts_of_n(msg, strlen(msg), MAXH, fl);
}

/* body - a text/plain message with the given body, built in a static buffer. */
static const char *body(const char *b)
{
    static char buf[8192];
    snprintf(buf, sizeof(buf), "From: a@b.example\r\nSubject: t\r\n\r\n%s", b);
    return buf;
}

static void test_uri_plain_urls(void **state)
{
    (void)state;
    unsigned fl;
    assert_string_equal(
        hosts(body("see http://Example.COM/x and https://www.test.org:8443/?q\r\n"), &fl),
        "example.com www.test.org");
    assert_int_equal(fl, 0);
    assert_string_equal(hosts(body("HTTP://USER:pw@Evil.Example.Net./path\r\n"), NULL),
                        "evil.example.net");
    assert_string_equal(
        hosts(body("a http://long.userinfo.com@real.example.org@x.example.com/"), NULL),
        "x.example.com");
}

static void test_uri_headers_not_scanned(void **state)
{
    (void)state;
    assert_string_equal(hosts("X-Url: http://in.header.com\r\nSubject: www.hdr.com\r\n\r\n"
                              "body http://in.body.com\r\n",
                              NULL),
                        "in.body.com");
}

static void test_uri_dedup_and_order(void **state)
{
    (void)state;
    assert_string_equal(hosts(body("http://b.com http://a.com http://B.COM/x www.a.com "
                                   "https://a.com:1/ http://c.com\r\n"),
                              NULL),
                        "b.com a.com www.a.com c.com");
}

static void test_uri_bare_www(void **state)
{
    (void)state;
    assert_string_equal(
        hosts(body("Visit www.foo.co.uk. or (WWW.Bar.Org), <www.baz.net>!\r\n"), NULL),
        "www.foo.co.uk www.bar.org www.baz.net");
    /* part of another word or an e-mail address: not a host start */
    assert_string_equal(hosts(body("xwww.no.com me@www.no2.com a.www.no3.com -www.no4.com"), NULL),
                        "");
    assert_string_equal(hosts(body("www.\r\nwww.x\r\n"), NULL), "");
}

static void test_uri_trailing_punctuation(void **state)
{
    (void)state;
    assert_string_equal(hosts(body("(http://a.com) http://b.com! \"http://c.com\" "
                                   "<http://d.com> http://e.com, http://f.com; http://g.com.\r\n"),
                              NULL),
                        "a.com b.com c.com d.com e.com f.com g.com");
}

static void test_uri_embedded_urls(void **state)
{
    (void)state;
    assert_string_equal(hosts(body("http://http://b.com/ http://r.com/go?u=http://t.com/x "
                                   "http:\\\\back.com\\ https:/\\mixed.com/\r\n"),
                              NULL),
                        "b.com r.com t.com back.com mixed.com");
    /* one slash or none is not a URL */
    assert_string_equal(hosts(body("http:/one.com http:none.com httpx://no.com\r\n"), NULL), "");
}

static void test_uri_ip_literals(void **state)
{
    (void)state;
    assert_string_equal(
        hosts(body("http://1.2.3.4/ http://3232235777/ http://0x7f.0.0.1/ "
                   "http://010.0.0.1 http://10.1/ http://001.002.003.005/ http://01.2.3.4/\r\n"),
              NULL),
        "ip:1.2.3.4 ip:192.168.1.1 ip:127.0.0.1 ip:8.0.0.1 ip:10.0.0.1 ip:1.2.3.5");
    assert_string_equal(
        hosts(body("http://256.1.1.1/ http://1.2.3.4.5/ http://4294967296/ "
                   "http://1.2.3.09/ http://a.1.2.3/ http://[::1]/ http://[1:2::3]:80/"),
              NULL),
        "");
}

static void test_uri_percent_host(void **state)
{
    (void)state;
    assert_string_equal(
        hosts(body("http://%65%56il.com/ http://ex%2Eorg/ http://%31.2.3.4/\r\n"), NULL),
        "evil.com ex.org ip:1.2.3.4");
    assert_string_equal(
        hosts(body("http://%zz.com/ http://a%2.com http://a.com%/ http://%40x.com\r\n"), NULL), "");
}

static void test_uri_invalid_hosts(void **state)
{
    (void)state;
    char lbl[80], big[400], msg[600];
    memset(lbl, 'a', 64);
    lbl[64] = 0;
    assert_string_equal(hosts(body("http://localhost/ http://a.123/ http://a.c/ http://-a.com/ "
                                   "http://a-.com/ http://a..com/ http://.a.com/ http://a.c0m/ "
                                   "http://a.co_m/ http:// http://@/ http://:80/\r\n"),
                              NULL),
                        "");
    snprintf(msg, sizeof(msg), "http://%s.com/ http://%.63s.com/", lbl, lbl);
    assert_string_equal(hosts(body(msg), NULL),
                        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com");
    /* 254 octets is one too many, 253 fits: x{63}.x{63}.x{63}.x{58}.com */
    memset(big, 'x', 254);
    big[63] = big[127] = big[191] = big[250] = '.';
    memcpy(big + 251, "com", 4);
    struct uri_host h;
    assert_int_equal(strlen(big), 254);
    assert_false(uri_host_parse(big, 254, &h));
    assert_true(uri_host_parse(big + 1, 253, &h));
    assert_int_equal(h.len, 253);
    assert_false(uri_host_parse(big + 63, 191, &h)); /* ".xxx...": empty label */
    /* xn-- top-level labels pass, digits elsewhere too */
    assert_string_equal(hosts(body("http://bar.xn--p1ai/ http://123.example.com/ "
                                   "http://x_y.example.com/\r\n"),
                              NULL),
                        "bar.xn--p1ai 123.example.com x_y.example.com");
}

static void test_uri_host_parse_direct(void **state)
{
    (void)state;
    struct uri_host h;
    assert_true(uri_host_parse("u:p@WWW.Example.COM...:8080", 27, &h));
    assert_string_equal(h.name, "www.example.com");
    assert_false(h.is_ip);
    assert_true(uri_host_parse("0300.0250.1.1", 13, &h));
    assert_string_equal(h.name, "192.168.1.1");
    assert_true(h.is_ip);
    assert_false(uri_host_parse("", 0, &h));
    assert_false(uri_host_parse("@", 1, &h));
    assert_false(uri_host_parse("exa mple.com", 12, &h));
    assert_false(uri_host_parse("ex\xc3\xa4mple.com", 13, &h));
}

static void test_uri_non_ascii_ends_host(void **state)
{
    (void)state;
    assert_string_equal(hosts(body("http://a.com\xc2\xbb x http://b\xc3\xbc"
                                   "cher.com/\r\n"),
                              NULL),
                        "a.com");
}

static void test_uri_href(void **state)
{
    (void)state;
    const char *m = "Content-Type: text/html\r\n\r\n"
                    "<a href=\"//rel.example.com/x\">a</a><a HREF = 'www.q.org'>b</a>"
                    "<a href=//unq.example.net/>c</a><a href=\"/local/path\">d</a>"
                    "<a\nhref=\n\"https://nl.example.org\">e</a><a href=\"mailto:x@mail.com\">f</a>"
                    "<img src=\"http://img.example.com/p.gif\"><a xhref=\"//no.com/\">\r\n";
    assert_string_equal(hosts(m, NULL),
                        "rel.example.com www.q.org unq.example.net nl.example.org img.example.com");
}

static void test_uri_html_entities(void **state)
{
    (void)state;
    const char *m = "Content-Type: text/html; charset=utf-8\r\n\r\n"
                    "<a href=\"http&#58;&#x2F;&#X2f;ent.example.com\">x</a> "
                    "http&colon;&sol;&sol;named.com/ "
                    "<a href=\"http://a.com/?x=1&amp;u=http://b.com/\">y</a> "
                    "&#119;&#119;&#119;&period;dec.com &unknown; &#99999999; &#; & amp "
                    "http://&#x65;vil.org/ http://x&#233;y.com/\r\n";
    assert_string_equal(hosts(m, NULL),
                        "ent.example.com named.com a.com b.com www.dec.com evil.org");
    /* text/plain keeps references as they are */
    assert_string_equal(hosts(body("http&#58;//plain.com/ www&period;p.com\r\n"), NULL), "");
}

static void test_uri_qp(void **state)
{
    (void)state;
    unsigned fl;
    const char *m =
        "Content-Type: text/plain\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\n"
        "go to http://qp=\r\n.exa=6Dple.com/ now  \r\n"
        "=68ttp=3A=2F=2Fhex.example.org=\r\n"
        "/\r\n";
    assert_string_equal(hosts(m, &fl), "qp.example.com hex.example.org");
    assert_int_equal(fl, 0);
    /* broken: bad escapes are kept, a final lone '=' joins, nothing fails */
    m = "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        "=ZZ http://a.com/=4 =\r\n"
        "http://b.com/ =3\r\n"
        "http://c.c=\r\nom =";
    assert_string_equal(hosts(m, &fl), "a.com b.com c.com");
    assert_int_equal(fl, URI_F_BAD_ENC);
}

static void test_uri_base64(void **state)
{
    (void)state;
    unsigned fl;
    /* "visit http://b64.example.net/ now" */
    const char *m = "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                    "dmlzaXQgaHR0cDovL2I2\r\nNC5leGFtcGxlLm5ldC8g\r\nbm93\r\n";
    assert_string_equal(hosts(m, &fl), "b64.example.net");
    assert_int_equal(fl, 0);
    /* junk octets skipped, '=' inside, missing padding, two encodings glued */
    m = "Content-Transfer-Encoding: base64\r\n\r\n"
        "aHR0cDov!L2Eu*Y29t\r\nIA==aHR0cDovL2IuY29tIA=\r\n=aHR0cDovL2MuY29t";
    assert_string_equal(hosts(m, &fl), "a.com b.com c.com");
    assert_int_equal(fl, URI_F_BAD_ENC);
    /* a lone sextet at the end */
    m = "Content-Transfer-Encoding: base64\r\n\r\naHR0cDovL2QuY29tIA==Q";
    assert_string_equal(hosts(m, &fl), "d.com");
    assert_int_equal(fl, URI_F_BAD_ENC);
}

static void test_uri_multipart(void **state)
{
    (void)state;
    unsigned fl;
    const char *m =
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n boundary=\"=_outer (x)\"\r\n\r\n"
        "preamble http://pre.com\r\n"
        "--=_outer (x)\r\n"
        "Content-Type: multipart/alternative; BOUNDARY=inner\r\n\r\n"
        "--inner\r\nContent-Type: text/plain\r\n\r\nhttp://alt-plain.com\r\n"
        "--inner\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        "PGEgaHJlZj0iaHR0cDovL2FsdC1odG1sLmNvbSI+\r\n"
        "--inner--\r\nepilogue http://inner-epi.com\r\n"
        "--=_outer (x)\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        "aHR0cDovL2ltYWdlLmNvbQ==\r\n"
        "--=_outer (x)\r\nContent-Type: application/octet-stream\r\n\r\nhttp://app.com\r\n"
        "--=_outer (x)\r\n\r\nno headers: text/plain http://default.com\r\n"
        "--=_outer (x)--\r\nepilogue http://epi.com\r\n";
    assert_string_equal(hosts(m, &fl), "alt-plain.com alt-html.com default.com");
    assert_int_equal(fl, 0);
}

static void test_uri_multipart_boundary_quirks(void **state)
{
    (void)state;
    unsigned fl;
    /* boundary with trailing text on the delimiter line, bare LF line ends,
     * a part whose header block is cut by the next delimiter */
    const char *m = "Content-Type: multipart/mixed; charset=\"a;b\"; boundary=b1\n\n"
                    "--b1 trailing junk\nContent-Type: text/plain\n\nhttp://lf.com\n"
                    "--b1\nContent-Type: text/plain\n"
                    "--b1\nContent-Type: text/plain\n\nhttp://after-cut.com\n--b1--\n";
    assert_string_equal(hosts(m, &fl), "lf.com after-cut.com");
    assert_int_equal(fl, 0);
    /* multipart without a usable boundary is scanned as plain text */
    m = "Content-Type: multipart/mixed\r\n\r\nhttp://nob.com\r\n";
    assert_string_equal(hosts(m, NULL), "nob.com");
    m = "Content-Type: multipart/mixed; boundary=\"\"\r\n\r\nhttp://empty-b.com\r\n";
    assert_string_equal(hosts(m, NULL), "empty-b.com");
}

static void test_uri_message_rfc822(void **state)
{
    (void)state;
    const char *m =
        "Content-Type: multipart/mixed; boundary=X\r\n\r\n"
        "--X\r\nContent-Type: message/rfc822\r\n\r\n"
        "Subject: inner http://inner-header.com\r\n"
        "Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        "http://inner=2Ebody.com\r\n"
        "--X--\r\n";
    assert_string_equal(hosts(m, NULL), "inner.body.com");
}

static void test_uri_unknown_cte_scanned_raw(void **state)
{
    (void)state;
    const char *m = "Content-Type: text/plain\r\nContent-Transfer-Encoding: x-weird\r\n"
                    "Content-Transfer-Encoding: base64\r\n\r\nhttp://raw.com\r\n";
    assert_string_equal(hosts(m, NULL), "raw.com");
}

/* nested - a multipart nested depth levels deep with a URL innermost. */
static char *nested(int depth, bool close)
{
    struct sb b = {0};
    for (int i = 0; i < depth; i++) {
        assert_true(sb_printf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n", i));
        assert_true(sb_printf(&b, "--b%d\r\n", i));
    }
    assert_true(sb_appends(&b, "Content-Type: text/plain\r\n\r\nhttp://deep.example.com/\r\n"));
    for (int i = depth - 1; close && i >= 0; i--)
        assert_true(sb_printf(&b, "--b%d--\r\n", i));
    assert_true(sb_appends(&b, "http://after.example.com/\r\n"));
    return b.data;
}

static void test_uri_deep_nesting(void **state)
{
    (void)state;
    unsigned fl;
    char *m = nested(URI_MIME_DEPTH, true);
    assert_string_equal(hosts(m, &fl), "deep.example.com");
    assert_int_equal(fl, 0);
    free(m);
    /* deeper than the limit: the rest is scanned raw, and flagged */
    m = nested(URI_MIME_DEPTH + 10, true);
    assert_string_equal(hosts(m, &fl), "deep.example.com");
    assert_int_equal(fl, URI_F_DEEP);
    free(m);
    m = nested(3, false);
    assert_string_equal(hosts(m, &fl), "deep.example.com after.example.com");
    assert_int_equal(fl, URI_F_UNCLOSED);
    free(m);
}

static void test_uri_many_boundaries(void **state)
{
    (void)state;
    struct sb b = {0};
    unsigned fl;
    assert_true(sb_appends(&b, "Content-Type: multipart/mixed; boundary=z\r\n\r\n"));
    for (int i = 0; i < 1000000; i++)
        assert_true(sb_appends(&b, "--z\r\n\r\n"));
    assert_true(sb_appends(&b, "--z\r\n\r\nhttp://last.com/\r\n--z--\r\n"));
    assert_string_equal(hosts_of_n(b.data, b.len, MAXH, &fl), "last.com");
    assert_int_equal(fl, 0);
    sb_free(&b);
}

static void test_uri_huge_lines(void **state)
{
    (void)state;
    const size_t big = 8u << 20;
    char *m = malloc(big + 256);
    assert_non_null(m);
    /* one 8 MiB body line, URL at its end */
    size_t k = (size_t)sprintf(m, "Subject: x\r\n\r\n");
    memset(m + k, 'a', big);
    k += big;
    k += (size_t)sprintf(m + k, " http://end.com/");
    assert_string_equal(hosts_of_n(m, k, MAXH, NULL), "end.com");
    /* an 8 MiB authority is dropped; the next URL is found */
    k = (size_t)sprintf(m, "\r\nhttp://");
    memset(m + k, 'b', big);
    k += big;
    k += (size_t)sprintf(m + k, ".com/ http://next.com/");
    assert_string_equal(hosts_of_n(m, k, MAXH, NULL), "next.com");
    /* an 8 MiB userinfo is dropped at '@' */
    k = (size_t)sprintf(m, "\r\nhttp://");
    memset(m + k, 'c', big);
    k += big;
    k += (size_t)sprintf(m + k, "@host.com/");
    assert_string_equal(hosts_of_n(m, k, MAXH, NULL), "host.com");
    /* an 8 MiB Content-Type header line */
    k = (size_t)sprintf(m, "Content-Type: text/plain; x=");
    memset(m + k, 'd', big);
    k += big;
    k += (size_t)sprintf(m + k, "; boundary=q\r\n\r\nhttp://ct.com/");
    assert_string_equal(hosts_of_n(m, k, MAXH, NULL), "ct.com");
    /* an 8 MiB base64 line of one host repeated */
    k = (size_t)sprintf(m, "Content-Transfer-Encoding: base64\r\n\r\n");
    for (; k + 20 < big; k += 20)
        memcpy(m + k, "aHR0cDovL3IuY29tIA==", 20); /* "http://r.com " */
    assert_string_equal(hosts_of_n(m, k, MAXH, NULL), "r.com");
    free(m);
}

static void test_uri_cap(void **state)
{
    (void)state;
    unsigned fl;
    const char *m = body("http://a.com http://b.com http://a.com http://c.com http://d.com");
    assert_string_equal(hosts_of_n(m, strlen(m), 3, &fl), "a.com b.com c.com");
    assert_int_equal(fl, URI_F_TRUNCATED);
    assert_string_equal(hosts_of_n(m, strlen(m), 4, &fl), "a.com b.com c.com d.com");
    assert_int_equal(fl, 0);
    assert_string_equal(hosts_of_n(m, strlen(m), 0, &fl), "");
    assert_int_equal(fl, URI_F_TRUNCATED);
    /* repeats of known hosts do not count against the cap */
    m = body("http://a.com http://a.com http://a.com http://b.com");
    assert_string_equal(hosts_of_n(m, strlen(m), 2, &fl), "a.com b.com");
    assert_int_equal(fl, 0);
}

static void test_uri_empty_and_tiny(void **state)
{
    (void)state;
    unsigned fl;
    assert_string_equal(hosts_of_n("", 0, MAXH, &fl), "");
    assert_int_equal(fl, 0);
    assert_string_equal(hosts("\r\n", NULL), "");
    assert_string_equal(hosts("\nhttp://x.org", NULL), "x.org");
    assert_string_equal(hosts("\r\nwww.y.org", NULL), "www.y.org");
    assert_int_equal(uri_extract("\r\nhttp://a.com", 13, NULL, 0, NULL), 0);
}

/* rng - xorshift64 for reproducible random inputs. */
static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_uri_random_structure(void **state)
{
    (void)state;
    static const char *const atoms[] = {
        "--b\r\n",
        "--b--\r\n",
        "--c\r\n",
        "\r\n",
        "Content-Type: multipart/mixed; boundary=c\r\n",
        "Content-Type: text/html\r\n",
        "Content-Transfer-Encoding: base64\r\n",
        "Content-Transfer-Encoding: quoted-printable\r\n",
        "http://",
        "www.",
        "href=",
        "&#x2F;",
        "=\r\n",
        "=3D",
        "aHR0cDovL2EuY29t",
        "x.example.com",
        "@",
        ":80",
        "%41",
        "\n",
        "=",
    };
    uint64_t seed = 0x1234567;
    struct uri_host h[8];
    for (int round = 0; round < 3000; round++) {
        struct sb b = {0};
        assert_true(sb_appends(&b, "Content-Type: multipart/mixed; boundary=b\r\n\r\n"));
        int n = (int)(rng(&seed) % 60);
        for (int i = 0; i < n; i++)
            assert_true(sb_appends(&b, atoms[rng(&seed) % MX_ARRAY_LEN(atoms)]));
        unsigned fl;
        size_t got = uri_extract(b.data, b.len, h, MX_ARRAY_LEN(h), &fl);
        assert_true(got <= MX_ARRAY_LEN(h));
        for (size_t i = 0; i < got; i++) {
            struct uri_host again; /* an extracted host is a fixed point */
            assert_true(h[i].len > 0 && h[i].len <= URI_HOST_MAX);
            assert_true(uri_host_parse(h[i].name, h[i].len, &again));
            assert_string_equal(again.name, h[i].name);
            assert_int_equal(again.is_ip, h[i].is_ip);
        }
        sb_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri_plain_urls),
        cmocka_unit_test(test_uri_headers_not_scanned),
        cmocka_unit_test(test_uri_dedup_and_order),
        cmocka_unit_test(test_uri_bare_www),
        cmocka_unit_test(test_uri_trailing_punctuation),
        cmocka_unit_test(test_uri_embedded_urls),
        cmocka_unit_test(test_uri_ip_literals),
        cmocka_unit_test(test_uri_percent_host),
        cmocka_unit_test(test_uri_invalid_hosts),
        cmocka_unit_test(test_uri_host_parse_direct),
        cmocka_unit_test(test_uri_non_ascii_ends_host),
        cmocka_unit_test(test_uri_href),
        cmocka_unit_test(test_uri_html_entities),
        cmocka_unit_test(test_uri_qp),
        cmocka_unit_test(test_uri_base64),
        cmocka_unit_test(test_uri_multipart),
        cmocka_unit_test(test_uri_multipart_boundary_quirks),
        cmocka_unit_test(test_uri_message_rfc822),
        cmocka_unit_test(test_uri_unknown_cte_scanned_raw),
        cmocka_unit_test(test_uri_deep_nesting),
        cmocka_unit_test(test_uri_many_boundaries),
        cmocka_unit_test(test_uri_huge_lines),
        cmocka_unit_test(test_uri_cap),
        cmocka_unit_test(test_uri_empty_and_tiny),
        cmocka_unit_test(test_uri_random_structure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
