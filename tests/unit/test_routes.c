/* test_routes.c - unit tests of core/routes: hop syntax, route files (errors
 * name file:line), look-up order (exact, longest .suffix, default), the
 * local_domains check and snap_load_routes over a real file. Single-threaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "config.h"
#include "routes.h"
#include "snap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

static char err[512];

/* parse - routes_parse over a C string named "r.map". */
static struct routes *parse(const char *text, const char *def)
{
    err[0] = 0;
    return routes_parse("r.map", text, text ? strlen(text) : 0, def, ROUTE_TLS_MAY, err,
                        sizeof err);
}

/* expect_err - parsing fails with exactly want. */
static void expect_err(const char *text, const char *def, const char *want)
{
    struct routes *r = parse(text, def);
    if (r) {
        routes_free(r);
        fail_msg("expected \"%s\" for: %s", want, text);
    }
    assert_string_equal(err, want);
}

/* hop_text - the normalised text of a hop, or "ERR: why". */
static const char *hop_text(const char *s)
{
    static char buf[600];
    struct route_hop h;
    char why[256];
    if (!routes_parse_hop(s, strlen(s), &h, why, sizeof why))
        snprintf(buf, sizeof buf, "ERR: %s", why);
    else
        snprintf(buf, sizeof buf, "%s", h.text);
    return buf;
}

static void test_routes_hop_forms(void **state)
{
    (void)state;
    assert_string_equal(hop_text("smtp:[10.0.0.1]:2525"), "smtp:[10.0.0.1]:2525");
    assert_string_equal(hop_text("smtp:10.0.0.1:2525"), "smtp:[10.0.0.1]:2525");
    assert_string_equal(hop_text("smtp:[10.0.0.1]"), "smtp:[10.0.0.1]:25");
    assert_string_equal(hop_text("lmtp:[127.0.0.1]"), "lmtp:[127.0.0.1]:24");
    assert_string_equal(hop_text("smtp:[::1]:25"), "smtp:[::1]:25");
    assert_string_equal(hop_text("smtp:[0:0::1]:25"), "smtp:[::1]:25");
    assert_string_equal(hop_text("smtp:Mail.Example.COM:587"), "smtp:mail.example.com:587");
    assert_string_equal(hop_text("lmtp:unix:/run/dovecot/lmtp"), "lmtp:unix:/run/dovecot/lmtp");
    struct route_hop h;
    char why[256];
    assert_true(routes_parse_hop("smtp:[192.0.2.7]:26", 19, &h, why, sizeof why));
    assert_true(h.has_addr);
    assert_int_equal(h.port, 26);
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&h.addr;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohs(sin->sin_port), 26);
    assert_int_equal(sin->sin_addr.s_addr, inet_addr("192.0.2.7"));
    assert_true(routes_parse_hop("smtp:mx.example:25", 18, &h, why, sizeof why));
    assert_false(h.has_addr);
    assert_string_equal(h.host, "mx.example");
    assert_true(routes_parse_hop("lmtp:unix:/x/s", 14, &h, why, sizeof why));
    assert_true(h.is_unix);
    assert_string_equal(((const struct sockaddr_un *)&h.addr)->sun_path, "/x/s");
}

static void test_routes_hop_rejects(void **state)
{
    (void)state;
    assert_string_equal(hop_text("esmtp:[1.2.3.4]:25"),
                        "ERR: \"esmtp:[1.2.3.4]:25\" is not smtp:host:port, lmtp:host:port "
                        "or lmtp:unix:/path");
    assert_string_equal(hop_text("smtp:[1.2.3.4]:0"), "ERR: bad port (allowed 1..65535)");
    assert_string_equal(hop_text("smtp:[1.2.3.4]:65536"), "ERR: bad port (allowed 1..65535)");
    assert_string_equal(hop_text("smtp:[1.2.3.4]:2x"), "ERR: bad port (allowed 1..65535)");
    assert_string_equal(hop_text("smtp:::1:25"),
                        "ERR: an IPv6 address needs brackets: [v6addr]:port");
    assert_string_equal(hop_text("smtp:[1.2.3.4"), "ERR: '[' without ']'");
    assert_string_equal(hop_text("smtp:[1.2.3.4]x"), "ERR: junk after ']' (use [host]:port)");
    assert_string_equal(hop_text("smtp::25"), "ERR: no host (use smtp:[host]:port)");
    assert_string_equal(hop_text("smtp:bad_host:25"),
                        "ERR: \"bad_host\" is neither an IP address nor a host name");
    assert_string_equal(hop_text("smtp:unix:/x"), "ERR: unix sockets are for lmtp: hops only");
    assert_string_equal(hop_text("lmtp:unix"),
                        "ERR: a host named unix is ambiguous (lmtp:unix:/path is a socket)");
    assert_string_equal(hop_text("smtp:09.0.0.1:25"),
                        "ERR: \"09.0.0.1\" is neither an IP address nor a host name");
    /* only len octets are read: "smtp:" out of "smtp:[1.2.3.4]" has no host */
    struct route_hop h;
    char why[256];
    assert_false(routes_parse_hop("smtp:[1.2.3.4]", 5, &h, why, sizeof why));
    assert_string_equal(why, "no host (use smtp:[host]:port)");
    assert_string_equal(hop_text("lmtp:unix:rel"), "ERR: lmtp:unix: needs an absolute path");
    char longp[200] = "lmtp:unix:/";
    memset(longp + 11, 'a', 150);
    longp[161] = 0;
    assert_string_equal(hop_text(longp), "ERR: socket path longer than 107 octets");
}

static void test_routes_file_and_lookup(void **state)
{
    (void)state;
    struct routes *r = parse("# routes\n"
                             "\n"
                             "example.com      smtp:[10.0.0.1]:25,smtp:[10.0.0.2]:25 tls=verify\n"
                             "  .example.com   lmtp:unix:/run/lmtp\r\n"
                             ".a.example.com\tsmtp:[10.0.0.3]:2525\n"
                             "Other.TEST smtp:[10.0.0.4]\n",
                             "smtp:[192.0.2.1]:25 tls=none");
    if (!r)
        fail_msg("%s", err);
    assert_true(routes_on(r));
    assert_int_equal(routes_count(r), 5);
    const struct route *rt = routes_lookup(r, "example.com", 11);
    assert_non_null(rt);
    assert_int_equal(rt->line, 3);
    assert_int_equal(rt->nhops, 2);
    assert_string_equal(rt->hops[1].text, "smtp:[10.0.0.2]:25");
    assert_int_equal(rt->tls, ROUTE_TLS_VERIFY);
    rt = routes_lookup(r, "EXAMPLE.com.", 12); /* case, trailing dot */
    assert_int_equal(rt->line, 3);
    rt = routes_lookup(r, "b.example.com", 13);
    assert_int_equal(rt->line, 4);
    assert_int_equal(rt->tls, ROUTE_TLS_MAY);     /* the default given to routes_parse */
    rt = routes_lookup(r, "x.a.example.com", 15); /* the longer suffix wins */
    assert_int_equal(rt->line, 5);
    rt = routes_lookup(r, "a.example.com", 13); /* .a.example.com is not a.example.com */
    assert_int_equal(rt->line, 4);
    rt = routes_lookup_addr(r, "\"x@y\"@other.test");
    assert_int_equal(rt->line, 6);
    rt = routes_lookup(r, "elsewhere.org", 13);
    assert_int_equal(rt->line, 0);
    assert_string_equal(rt->pattern, "");
    assert_int_equal(rt->tls, ROUTE_TLS_NONE);
    assert_ptr_equal(routes_at(r, 4), rt); /* the default is last */
    assert_null(routes_lookup_addr(r, "no-at-sign"));
    struct sb b = {0};
    assert_true(routes_format(routes_at(r, 0), &b));
    assert_string_equal(b.data, "example.com smtp:[10.0.0.1]:25,smtp:[10.0.0.2]:25 tls=verify");
    sb_reset(&b);
    assert_true(routes_format(rt, &b));
    assert_string_equal(b.data, "* smtp:[192.0.2.1]:25 tls=none");
    sb_free(&b);
    assert_true(routes_uses_tls(r, ROUTE_TLS_VERIFY));
    assert_false(routes_uses_tls(r, ROUTE_TLS_ENCRYPT));
    routes_free(r);
}

static void test_routes_no_default(void **state)
{
    (void)state;
    struct routes *r = parse("example.com smtp:[10.0.0.1]\n", NULL);
    assert_non_null(r);
    assert_null(routes_lookup(r, "example.org", 11));
    assert_null(routes_lookup(r, "", 0));
    routes_free(r);
    r = parse(NULL, "");
    assert_non_null(r);
    assert_false(routes_on(r));
    routes_free(r);
    assert_false(routes_on(NULL));
    assert_null(routes_lookup(NULL, "a.b", 3));
}

static void test_routes_errors_name_file_line(void **state)
{
    (void)state;
    expect_err("a.example smtp:[1.2.3.4]\nb.example\n", NULL,
               "r.map:2: no hop (use smtp:[host]:port, lmtp:[host]:port or lmtp:unix:/path)");
    expect_err("\n\nbad_dom smtp:[1.2.3.4]\n", NULL,
               "r.map:3: \"bad_dom\" is not a domain or .suffix");
    expect_err("a.example smtp:[1.2.3.4] tls=maybe\n", NULL,
               "r.map:1: tls=maybe: use none, may, encrypt or verify");
    expect_err("a.example smtp:[1.2.3.4] tls=none tls=may\n", NULL, "r.map:1: tls= given twice");
    expect_err("a.example smtp:[1.2.3.4] tls=none smtp:[1.2.3.5]\n", NULL,
               "r.map:1: hops go before tls=");
    expect_err("a.example smtp:[1.2.3.4] port=2\n", NULL,
               "r.map:1: unknown option \"port=2\" (only tls=)");
    expect_err("a.example smtp:[1.2.3.4],smtp:1.2.3.4:25\n", NULL,
               "r.map:1: hop smtp:[1.2.3.4]:25 listed twice");
    expect_err("a.example smtp:[1.2.3.4]:99999\n", NULL,
               "r.map:1: hop 1: bad port (allowed 1..65535)");
    expect_err("a.example smtp:[1.2.3.4]\n#\nA.EXAMPLE smtp:[1.2.3.5]\n", NULL,
               "r.map:3: a.example: given twice (first on line 1)");
    expect_err("", "smtp:[1.2.3.4]:0", "default_route: hop 1: bad port (allowed 1..65535)");
    static const char nul[] = "a.example smtp:[1.2.3.4]\nb\0x smtp:[1.2.3.4]\n";
    assert_null(routes_parse("r.map", nul, sizeof nul - 1, NULL, ROUTE_TLS_MAY, err, sizeof err));
    assert_string_equal(err, "r.map:2: line contains a NUL byte");
    char many[2048] = "a.example ";
    for (int i = 0; i < 17; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "smtp:[10.0.0.%d],", i + 1);
    expect_err(many, NULL, "r.map:1: more than 16 hops");
}

static void test_routes_spec_blanks_after_commas(void **state)
{
    (void)state;
    struct route rt;
    char why[256];
    const char *s = "smtp:[10.0.0.1]:25, smtp:[10.0.0.2]:25   tls=encrypt";
    assert_true(routes_parse_spec(s, strlen(s), ROUTE_TLS_NONE, &rt, why, sizeof why));
    assert_int_equal(rt.nhops, 2);
    assert_int_equal(rt.tls, ROUTE_TLS_ENCRYPT);
    routes_route_release(&rt);
}

static void test_routes_check_domains(void **state)
{
    (void)state;
    struct routes *r = parse("a.example smtp:[10.0.0.1]\n.b.example smtp:[10.0.0.1]\n", NULL);
    char *ok[] = {"a.example", "x.b.example"};
    char *bad[] = {"a.example", "b.example"};
    assert_true(routes_check_domains(r, ok, 2, err, sizeof err));
    assert_false(routes_check_domains(r, bad, 2, err, sizeof err));
    assert_string_equal(err, "local_domains: b.example has no route (add it to relay_routes "
                             "or set default_route)");
    routes_free(r);
}

/* snap_with - a snapshot of a configuration text (no directory). */
static struct snap *snap_with(const char *conf)
{
    struct config *c = cfg_load_string("t.conf", conf, strlen(conf), err, sizeof err);
    if (!c)
        fail_msg("config: %s", err);
    return snap_new(c, NULL, 1);
}

static void test_routes_snapshot_checks(void **state)
{
    (void)state;
    char path[] = "/tmp/test_routes_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *map = "a.example smtp:[127.0.0.1]:2525\n";
    assert_int_equal(write(fd, map, strlen(map)), (ssize_t)strlen(map));
    close(fd);
    char conf[512];
    /* delivery off: nothing is checked, routes stay NULL */
    struct snap *s = snap_with("local_domains = a.example, b.example\n");
    assert_true(snap_load_routes(s, err, sizeof err));
    assert_null(s->routes);
    snap_unref(s);
    /* on: b.example lacks a route */
    snprintf(conf, sizeof conf, "local_domains = a.example, b.example\nrelay_routes = %s\n", path);
    s = snap_with(conf);
    assert_false(snap_load_routes(s, err, sizeof err));
    assert_string_equal(err, "local_domains: b.example has no route (add it to relay_routes "
                             "or set default_route)");
    snap_unref(s);
    /* a default route covers it */
    snprintf(conf, sizeof conf,
             "local_domains = a.example, b.example\nrelay_routes = %s\n"
             "default_route = lmtp:unix:/run/lmtp\n",
             path);
    s = snap_with(conf);
    assert_true(snap_load_routes(s, err, sizeof err));
    assert_non_null(s->routes);
    assert_int_equal(routes_lookup(s->routes, "b.example", 9)->hops[0].is_unix, true);
    snap_unref(s);
    /* verify needs a CA file */
    s = snap_with("default_route = smtp:[127.0.0.1] tls=verify\n");
    assert_false(snap_load_routes(s, err, sizeof err));
    assert_string_equal(err, "t.conf: relay_ca_file: unset, but a route uses tls=verify "
                             "(set relay_ca_file to the PEM CA certificates of the next hops)");
    snap_unref(s);
    /* errors in the file name it */
    FILE *f = fopen(path, "w");
    fputs("a.example smtp:[127.0.0.1]\nb.example\n", f);
    fclose(f);
    snprintf(conf, sizeof conf, "relay_routes = %s\n", path);
    s = snap_with(conf);
    assert_false(snap_load_routes(s, err, sizeof err));
    char want[300];
    snprintf(want, sizeof want,
             "%s:2: no hop (use smtp:[host]:port, lmtp:[host]:port or "
             "lmtp:unix:/path)",
             path);
    assert_string_equal(err, want);
    snap_unref(s);
    unlink(path);
    snprintf(conf, sizeof conf, "relay_routes = %s\n", path);
    s = snap_with(conf);
    assert_false(snap_load_routes(s, err, sizeof err));
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    assert_string_equal(err, want);
    snap_unref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_hop_forms),
        cmocka_unit_test(test_routes_hop_rejects),
        cmocka_unit_test(test_routes_file_and_lookup),
        cmocka_unit_test(test_routes_no_default),
        cmocka_unit_test(test_routes_errors_name_file_line),
        cmocka_unit_test(test_routes_spec_blanks_after_commas),
        cmocka_unit_test(test_routes_check_domains),
        cmocka_unit_test(test_routes_snapshot_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
