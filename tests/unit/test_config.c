/* test_config.c - unit tests of the configuration module: defaults, every
 * value type good and bad at its bounds, the one-line error format, file
 * syntax, listen and CIDR parsing, CIDR matching, dump and reload check.
 * Single-threaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "addr.h"
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#define ERRLEN 512

static char err[ERRLEN];

/* load - cfg_load_string over a C string, named "t.conf". */
static struct config *load(const char *text)
{
    memset(err, 'X', sizeof err);
    err[ERRLEN - 1] = 0;
    return cfg_load_string("t.conf", text, strlen(text), err, sizeof err);
}

/* load_ok - load and fail the test (printing the error) when it fails. */
static struct config *load_ok(const char *text)
{
    struct config *c = load(text);
    if (!c)
        fail_msg("unexpected error: %s", err);
    return c;
}

/* expect_err - loading text fails with exactly want. */
static void expect_err(const char *text, const char *want)
{
    struct config *c = load(text);
    if (c) {
        cfg_free(c);
        fail_msg("expected error \"%s\" for: %s", want, text);
    }
    assert_string_equal(err, want);
}

/* expect_err_has - loading text fails; the error starts with prefix. */
static void expect_err_has(const char *text, const char *prefix)
{
    struct config *c = load(text);
    if (c) {
        cfg_free(c);
        fail_msg("expected an error for: %s", text);
    }
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("error \"%s\" does not start with \"%s\"", err, prefix);
    assert_null(strchr(err, '\n'));
}

/* dump_str - cfg_dump into a malloc'd string. */
static char *dump_str(const struct config *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    cfg_dump(c, f);
    fclose(f);
    return buf;
}

/* kv - "key = value" for one-key tests. */
static struct config *load_kv(const char *key, const char *value)
{
    char text[8192];
    snprintf(text, sizeof text, "%s = %s\n", key, value);
    return load(text);
}

static void test_config_defaults(void **state)
{
    (void)state;
    struct config *c = load_ok("hostname = mx.example.org\n");
    assert_string_equal(c->path, "t.conf");
    assert_string_equal(c->hostname, "mx.example.org");
    assert_string_equal(c->workdir, "/var/spool/mxring");
    assert_int_equal(c->nlisten, 1);
    assert_string_equal(c->listen[0].text, "0.0.0.0:25");
    assert_int_equal(c->listen[0].ss.ss_family, AF_INET);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(c->workers, cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
    assert_int_equal(c->max_sessions, 20000);
    assert_int_equal(c->max_message_size, 25ull * 1024 * 1024);
    assert_int_equal(c->max_recipients, 1000);
    assert_int_equal(c->max_errors, 20);
    assert_int_equal(c->timeout_command, 300);
    assert_int_equal(c->timeout_data, 600);
    assert_int_equal(c->nlocal_domains, 0);
    assert_int_equal(c->ntrusted_networks, 2);
    assert_int_equal(c->trusted_networks[0].family, AF_INET);
    assert_int_equal(c->trusted_networks[0].prefix, 8);
    assert_int_equal(c->trusted_networks[1].family, AF_INET6);
    assert_int_equal(c->trusted_networks[1].prefix, 128);
    assert_int_equal(c->receivelog_internal_id, CFG_ID_SESSION);
    assert_int_equal(c->receivelog_keep_days, 0);
    assert_int_equal(c->receivelog_compress_after_days, 0);
    assert_null(c->users_file);
    assert_null(c->groups_file);
    assert_null(c->aliases_file);
    assert_null(c->lists_file);
    cfg_free(c);
}

static void test_config_default_hostname_is_system_name(void **state)
{
    (void)state;
    char host[256] = "";
    assert_int_equal(gethostname(host, sizeof host), 0);
    struct config *c = load("");
    if (c) {
        assert_string_equal(c->hostname, host);
        cfg_free(c);
    } else { /* a system name that is not a domain name is reported */
        assert_non_null(strstr(err, "t.conf: hostname: default \""));
    }
}

static void test_config_dump_defaults(void **state)
{
    (void)state;
    /* dns_servers is given: its default comes from this machine's resolv.conf */
    struct config *c = load_ok("hostname = mx.example.org\nworkers = 3\n"
                               "dns_servers = 192.0.2.53:53\n");
    char *d = dump_str(c);
    assert_string_equal(d,
                        "hostname = mx.example.org\n"
                        "workdir = /var/spool/mxring\n"
                        "listen = 0.0.0.0:25\n"
                        "workers = 3\n"
                        "max_sessions = 20000\n"
                        "journal_segment_size = 32M\n"
                        "max_message_size = 25M\n"
                        "max_recipients = 1000\n"
                        "max_junk_commands = 100\n"
                        "max_errors = 20\n"
                        "timeout_command = 300\n"
                        "timeout_data = 600\n"
                        "nul_bytes = reject\n"
                        "local_domains =\n"
                        "trusted_networks = 127.0.0.0/8, ::1/128\n"
                        "receivelog_internal_id = session\n"
                        "receivelog_keep_days = 0\n"
                        "receivelog_compress_after_days = 0\n"
                        "users_file =\n"
                        "groups_file =\n"
                        "aliases_file =\n"
                        "lists_file =\n"
                        "tls_cert =\n"
                        "tls_key =\n"
                        "tls_min_version = 1.2\n"
                        "tls_ciphers = ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305\n"
                        "smtps_listen =\n"
                        "submission_listen =\n"
                        "tls_certs =\n"
                        "proxy_listen =\n"
                        "proxy_smtps_listen =\n"
                        "proxy_trusted_networks =\n"
                        "proxy_timeout_ms = 3000\n"
                        "auth_require_tls = yes\n"
                        "auth_max_failures = 3\n"
                        "max_sessions_per_ip = 20\n"
                        "max_connect_rate_per_ip = 0\n"
                        "greet_pause_ms = 0\n"
                        "max_unknown_recipients_per_ip = 20\n"
                        "unknown_recipient_delay_ms = 250\n"
                        "surbl_zones =\n"
                        "surbl_max_lookups = 20\n"
                        "dns_servers = 192.0.2.53:53\n"
                        "dns_timeout_ms = 2000\n"
                        "hosts_file = /etc/hosts\n"
                        "dns_failure = pass\n"
                        "dnsbl_sites =\n"
                        "dnsbl_threshold = 3\n"
                        "dnsbl_timeout_ms = 1000\n"
                        "dnsbl_action = banner\n"
                        "milters =\n"
                        "milter_connect_timeout_ms = 5000\n"
                        "milter_command_timeout_ms = 10000\n"
                        "milter_content_timeout_ms = 60000\n"
                        "milter_default_action = tempfail\n"
                        "clamd =\n"
                        "clamd_timeout_ms = 10000\n"
                        "clamd_max_size = 25M\n"
                        "virus_action = reject\n"
                        "scanner_failure = tempfail\n"
                        "default_route =\n"
                        "relay_routes =\n"
                        "relay_tls = may\n"
                        "relay_ca_file =\n"
                        "relay_max_connections = 10\n"
                        "relay_retry_min = 1m\n"
                        "relay_retry_max = 1h\n"
                        "queue_lifetime = 5d\n"
                        "delay_warning_time = 4h\n"
                        "queue_max_messages = 0\n"
                        "queue_min_free_space = 100M\n"
                        "metrics_listen =\n"
                        "metrics_allow = 127.0.0.0/8, ::1/128\n"
                        "user =\n"
                        "group =\n");
    free(d);
    cfg_free(c);
}

static void test_config_filter_keys(void **state)
{
    (void)state;
    struct config *c = load_ok("surbl_zones = multi.surbl.test:reject, Uribl.Test:quarantine,"
                               " x.test:pass\nclamd = tcp:127.0.0.1:3310\n"
                               "dns_servers = 127.0.0.1:5353, [::1]:53\n");
    assert_int_equal(c->nsurbl_zones, 3);
    assert_string_equal(c->surbl_zones[1].zone, "uribl.test");
    assert_int_equal(c->surbl_zones[0].action, CFG_ZONE_REJECT);
    assert_int_equal(c->surbl_zones[1].action, CFG_ZONE_QUARANTINE);
    assert_int_equal(c->surbl_zones[2].action, CFG_ZONE_PASS);
    assert_string_equal(c->clamd.text, "tcp:127.0.0.1:3310");
    assert_int_equal(c->ndns_servers, 2);
    cfg_free(c);
    char why[256];
    static const char *bad[] = {"surbl_zones = multi.surbl.test\n",
                                "surbl_zones = multi.surbl.test:drop\n", "clamd = 127.0.0.1:3310\n",
                                "clamd = tcp:localhost\n", "dns_failure = maybe\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct config *b = cfg_load_string("f.conf", bad[i], strlen(bad[i]), why, sizeof(why));
        assert_null(b);
        assert_non_null(strstr(why, "f.conf:1: "));
    }
}

/* test_config_clamd_address - the clamd key is parsed once at load into a
 * connectable address (unix path or IPv4/IPv6 with port), dumped in its
 * normalised form; unset means no antivirus. */
static void test_config_clamd_address(void **state)
{
    (void)state;
    struct config *c = load_ok("clamd = unix:/run/clamav/clamd.ctl\n");
    const struct sockaddr_un *un = (const struct sockaddr_un *)&c->clamd.ss;
    assert_int_equal(un->sun_family, AF_UNIX);
    assert_string_equal(un->sun_path, "/run/clamav/clamd.ctl");
    assert_int_equal(c->clamd.len, offsetof(struct sockaddr_un, sun_path) + 22);
    assert_string_equal(c->clamd.text, "unix:/run/clamav/clamd.ctl");
    char *d = dump_str(c);
    assert_non_null(strstr(d, "\nclamd = unix:/run/clamav/clamd.ctl\n"));
    free(d);
    cfg_free(c);
    c = load_ok("clamd = tcp:127.0.0.1:03310\n");
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&c->clamd.ss;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohs(sin->sin_port), 3310);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
    assert_int_equal(c->clamd.len, sizeof(struct sockaddr_in));
    assert_string_equal(c->clamd.text, "tcp:127.0.0.1:3310");
    cfg_free(c);
    c = load_ok("clamd = tcp:[::1]:3310\n");
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&c->clamd.ss;
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(sin6->sin6_port), 3310);
    assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
    assert_int_equal(c->clamd.len, sizeof(struct sockaddr_in6));
    assert_string_equal(c->clamd.text, "tcp:[::1]:3310");
    cfg_free(c);
    c = load_ok("clamd =\n");
    assert_int_equal(c->clamd.len, 0);
    cfg_free(c);
}

/* test_config_clamd_address_errors - a bad clamd address is refused at
 * load with file:line: key: and what is wrong. */
static void test_config_clamd_address_errors(void **state)
{
    (void)state;
    char path[200];
    memset(path, 'p', sizeof path);
    memcpy(path, "clamd = unix:/", 14);
    snprintf(path + 14 + 107, sizeof path - 14 - 107, "\n"); /* a 108-octet path */
    expect_err("workers = 1\nclamd = 127.0.0.1:3310\n",
               "t.conf:2: clamd: \"127.0.0.1:3310\" is not unix:/path or tcp:addr:port");
    expect_err("clamd = unix:run/clamd.sock\n",
               "t.conf:1: clamd: \"unix:run/clamd.sock\" is not an absolute socket path "
               "(use unix:/path)");
    expect_err_has(path, "t.conf:1: clamd: \"unix:/ppp");
    assert_non_null(strstr(err, "is a socket path longer than 107 bytes"));
    expect_err("clamd = tcp:localhost\n",
               "t.conf:1: clamd: \"localhost\" has no :port (use addr:port or [v6addr]:port)");
    expect_err("clamd = tcp:clamd.example:3310\n",
               "t.conf:1: clamd: \"clamd.example:3310\" has no valid IPv4 address "
               "(use addr:port or [v6addr]:port)");
    expect_err("clamd = tcp:127.0.0.1:0\n",
               "t.conf:1: clamd: \"127.0.0.1:0\" has a bad port (allowed 1..65535)");
    expect_err("clamd = tcp:::1:3310\n", "t.conf:1: clamd: \"::1:3310\" needs brackets "
                                         "around the IPv6 address: [v6addr]:port");
}

static void test_config_dump_round_trips(void **state)
{
    (void)state;
    struct config *c = load_ok(
        "hostname = MX.Example.org\nworkdir = ./var\n"
        "listen = 127.0.0.1:2525, [::1]:2525\nworkers = 7\nmax_message_size = 1536K\n"
        "local_domains = Example.TEST, localhost\ntrusted_networks = 10.1.2.3/8, 2001:db8::1/32\n"
        "receivelog_internal_id = zero\nreceivelog_keep_days = 30\nusers_file = /etc/u,x#y\n");
    char *d1 = dump_str(c);
    assert_non_null(strstr(d1, "max_message_size = 1536K\n"));
    assert_non_null(strstr(d1, "local_domains = example.test, localhost\n"));
    assert_non_null(strstr(d1, "trusted_networks = 10.0.0.0/8, 2001:db8::/32\n"));
    assert_non_null(strstr(d1, "users_file = /etc/u,x#y\n"));
    struct config *c2 = load_ok(d1);
    char *d2 = dump_str(c2);
    assert_string_equal(d1, d2);
    free(d1);
    free(d2);
    cfg_free(c);
    cfg_free(c2);
}

/* The integer keys with their bounds, to test both edges of each. */
static const struct {
    const char *key;
    unsigned min, max;
} uint_keys[] = {
    {"workers", 0, 256},
    {"max_sessions", 1, 1000000},
    {"max_recipients", 1, 100000},
    {"max_errors", 1, 1000},
    {"timeout_command", 1, 3600},
    {"timeout_data", 1, 7200},
    {"receivelog_keep_days", 0, 36500},
    {"receivelog_compress_after_days", 0, 36500},
};

static void test_config_uint_bounds(void **state)
{
    (void)state;
    char v[32], want[256];
    for (size_t i = 0; i < sizeof uint_keys / sizeof uint_keys[0]; i++) {
        const char *key = uint_keys[i].key;
        unsigned lo = uint_keys[i].min, hi = uint_keys[i].max;
        snprintf(v, sizeof v, "%u", hi);
        struct config *c = load_kv(key, v);
        assert_non_null(c);
        cfg_free(c);
        snprintf(v, sizeof v, "%u", lo);
        assert_non_null(c = load_kv(key, v));
        cfg_free(c);
        snprintf(v, sizeof v, "%u", hi + 1);
        assert_null(load_kv(key, v));
        snprintf(want, sizeof want, "t.conf:1: %s: \"%u\" is out of range %u..%u", key, hi + 1, lo,
                 hi);
        assert_string_equal(err, want);
        if (lo > 0) {
            snprintf(v, sizeof v, "%u", lo - 1);
            assert_null(load_kv(key, v));
            snprintf(want, sizeof want, "t.conf:1: %s: \"%u\" is out of range %u..%u", key, lo - 1,
                     lo, hi);
            assert_string_equal(err, want);
        }
    }
}

static void test_config_uint_values_stored(void **state)
{
    (void)state;
    struct config *c =
        load_ok("workers = 5\nmax_sessions = 7\nmax_recipients = 9\nmax_errors = 11\n"
                "timeout_command = 13\ntimeout_data = 15\nreceivelog_keep_days = 17\n"
                "receivelog_compress_after_days = 0019\n");
    assert_int_equal(c->workers, 5);
    assert_int_equal(c->max_sessions, 7);
    assert_int_equal(c->max_recipients, 9);
    assert_int_equal(c->max_errors, 11);
    assert_int_equal(c->timeout_command, 13);
    assert_int_equal(c->timeout_data, 15);
    assert_int_equal(c->receivelog_keep_days, 17);
    assert_int_equal(c->receivelog_compress_after_days, 19);
    cfg_free(c);
}

static void test_config_uint_rejects_junk(void **state)
{
    (void)state;
    static const char *const junk[] = {
        "",
        "+5",
        "-1",
        "5x",
        "5 5",
        "0x10",
        "5.0",
        "1e3",
        "5K",
        "99999999999999999999999",
        "18446744073709551616",
        "4294967297",
    };
    char want[256];
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        assert_null(load_kv("max_sessions", junk[i]));
        snprintf(want, sizeof want,
                 "t.conf:1: max_sessions: \"%s\" is not a decimal number "
                 "(allowed 1..1000000)",
                 junk[i]);
        if (i >= 9) /* digits only, but too large for 64 bits or the bound */
            assert_true(strstr(err, "t.conf:1: max_sessions: \"") == err);
        else
            assert_string_equal(err, want);
    }
}

static void test_config_size_values(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t bytes;
    } good[] = {
        {"1K", 1024},           {"1k", 1024},
        {"1024", 1024},         {"2G", 2ull << 30},
        {"2048M", 2ull << 30},  {"25m", 25ull << 20},
        {"26214400", 26214400}, {"2147483648", 2ull << 30},
        {"1025", 1025},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct config *c = load_kv("max_message_size", good[i].text);
        if (!c)
            fail_msg("%s: %s", good[i].text, err);
        assert_int_equal(c->max_message_size, good[i].bytes);
        cfg_free(c);
    }
}

static void test_config_size_rejects(void **state)
{
    (void)state;
    expect_err("max_message_size = 1023\n",
               "t.conf:1: max_message_size: \"1023\" is out of range 1K..2G");
    expect_err("max_message_size = 2049M\n",
               "t.conf:1: max_message_size: \"2049M\" is out of range 1K..2G");
    expect_err("max_message_size = 2147483649\n",
               "t.conf:1: max_message_size: \"2147483649\" is out of range 1K..2G");
    expect_err("max_message_size = 17179869184G\n",
               "t.conf:1: max_message_size: \"17179869184G\" is out of range 1K..2G");
    static const char *const junk[] = {"1KB", "K", "1T", "1 K", "-1K", "+1K", "1.5M", ""};
    char want[256];
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        snprintf(want, sizeof want,
                 "t.conf:1: max_message_size: \"%s\" is not a decimal size "
                 "with optional K, M or G suffix (allowed 1K..2G)",
                 junk[i]);
        assert_null(load_kv("max_message_size", junk[i]));
        assert_string_equal(err, want);
    }
}

static void test_config_delivery_keys(void **state)
{
    (void)state;
    struct config *c = load_ok("relay_retry_min = 30\nrelay_retry_max = 2h\n"
                               "queue_lifetime = 3d\nrelay_tls = verify\n"
                               "relay_ca_file = /etc/ca.pem\nrelay_max_connections = 4\n"
                               "queue_max_messages = 5000\nqueue_min_free_space = 0\n"
                               "default_route = smtp:[10.0.0.1]:25, lmtp:unix:/run/l tls=none\n");
    assert_int_equal(c->relay_retry_min, 30);
    assert_int_equal(c->relay_retry_max, 7200);
    assert_int_equal(c->queue_lifetime, 3 * 86400);
    assert_int_equal(c->relay_tls, 3);
    assert_string_equal(c->relay_ca_file, "/etc/ca.pem");
    assert_int_equal(c->relay_max_connections, 4);
    assert_int_equal(c->queue_max_messages, 5000);
    assert_int_equal(c->queue_min_free_space, 0);
    assert_string_equal(c->default_route, "smtp:[10.0.0.1]:25, lmtp:unix:/run/l tls=none");
    assert_null(c->relay_routes);
    char *d = dump_str(c);
    assert_non_null(
        strstr(d, "relay_retry_min = 30s\nrelay_retry_max = 2h\nqueue_lifetime = 3d\n"));
    free(d);
    assert_int_equal(c->delay_warning_time, 4 * 3600); /* the default */
    cfg_free(c);
    c = load_ok("relay_retry_min = 90s\nqueue_lifetime = 1m\ndelay_warning_time = 0\n");
    assert_int_equal(c->relay_retry_min, 90);
    assert_int_equal(c->queue_lifetime, 60);
    assert_int_equal(c->delay_warning_time, 0);
    cfg_free(c);
}

static void test_config_delivery_keys_reject(void **state)
{
    (void)state;
    expect_err("relay_retry_min = 0\n", "t.conf:1: relay_retry_min: \"0\" is out of range 1s..1d");
    expect_err("relay_retry_min = 2d\n",
               "t.conf:1: relay_retry_min: \"2d\" is out of range 1s..1d");
    expect_err("queue_lifetime = 5w\n",
               "t.conf:1: queue_lifetime: \"5w\" is not a duration (seconds, or a number with s, "
               "m, h or d; allowed 1s..365d)");
    expect_err("queue_lifetime = 1hh\n",
               "t.conf:1: queue_lifetime: \"1hh\" is not a duration (seconds, or a number with s, "
               "m, h or d; allowed 1s..365d)");
    expect_err("queue_lifetime = 99999999999999999999d\n",
               "t.conf:1: queue_lifetime: \"99999999999999999999d\" is not a duration (seconds, "
               "or a number with s, m, h or d; allowed 1s..365d)");
    expect_err("relay_tls = always\n",
               "t.conf:1: relay_tls: \"always\" is not one of: none, may, encrypt, verify");
    expect_err("default_route = smtp:[10.0.0.1]:0\n",
               "t.conf:1: default_route: \"smtp:[10.0.0.1]:0\" hop 1: bad port (allowed 1..65535)");
    expect_err("default_route = tls=none\n",
               "t.conf:1: default_route: \"tls=none\" no hop (use smtp:[host]:port, "
               "lmtp:[host]:port or lmtp:unix:/path)");
    expect_err("relay_max_connections = 0\n",
               "t.conf:1: relay_max_connections: \"0\" is out of range 1..10000");
    expect_err("hostname = mx.test\nrelay_retry_max = 30s\n",
               "t.conf:2: relay_retry_max: is below relay_retry_min (30s < 60s)");
    expect_err("relay_retry_min = 2h\n\n",
               "t.conf:1: relay_retry_max: is below relay_retry_min (3600s < 7200s)");
}

static void test_config_enum_values(void **state)
{
    (void)state;
    struct config *c = load_ok("receivelog_internal_id = zero\n");
    assert_int_equal(c->receivelog_internal_id, CFG_ID_ZERO);
    cfg_free(c);
    c = load_ok("receivelog_internal_id = session\n");
    assert_int_equal(c->receivelog_internal_id, CFG_ID_SESSION);
    cfg_free(c);
    expect_err("receivelog_internal_id = Zero\n",
               "t.conf:1: receivelog_internal_id: \"Zero\" is not one of: session, zero");
    expect_err("receivelog_internal_id =\n",
               "t.conf:1: receivelog_internal_id: \"\" is not one of: session, zero");
}

static void test_config_hostname_values(void **state)
{
    (void)state;
    char label63[64], long_name[300];
    memset(label63, 'a', 63);
    label63[63] = 0;
    static const char *const good[] = {
        "a", "mx.example.com", "MX-1.Example.COM", "xn--bcher-kva.example", "1.2.3.com", "123",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct config *c = load_kv("hostname", good[i]);
        if (!c)
            fail_msg("%s: %s", good[i], err);
        assert_string_equal(c->hostname, good[i]);
        cfg_free(c);
    }
    snprintf(long_name, sizeof long_name, "%s.%s.%s.%.61s", label63, label63, label63, label63);
    assert_int_equal(strlen(long_name), 253);
    struct config *c = load_kv("hostname", long_name);
    assert_non_null(c);
    assert_string_equal(c->hostname, long_name);
    cfg_free(c);
    strcat(long_name, "a");
    assert_null(load_kv("hostname", long_name));
    snprintf(long_name, sizeof long_name, "%sa.example", label63);
    assert_null(load_kv("hostname", long_name));
    assert_non_null(strstr(err, "label longer than 63 octets"));
    static const char *const bad[] = {
        "",        "-a.com", "a-.com",  "a..b", "a.com.",    ".a.com",
        "a_b.com", "a b",    "1.2.3.4", "a.b-", "[1.2.3.4]", "m\xc3\xa9.com",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_null(load_kv("hostname", bad[i]));
        assert_true(strncmp(err, "t.conf:1: hostname: \"", 21) == 0);
        assert_non_null(strstr(err, "is not a valid domain name"));
    }
}

static void test_config_paths(void **state)
{
    (void)state;
    struct config *c = load_ok("workdir = ./var\nusers_file = /etc/mx/users\n"
                               "groups_file = g\naliases_file = a b\nlists_file =\n");
    assert_string_equal(c->workdir, "./var");
    assert_string_equal(c->users_file, "/etc/mx/users");
    assert_string_equal(c->groups_file, "g");
    assert_string_equal(c->aliases_file, "a b");
    assert_null(c->lists_file);
    cfg_free(c);
    expect_err("workdir =   \n", "t.conf:1: workdir: \"\" is empty; a path is required");
}

static void test_config_error_format_names_file_line_key(void **state)
{
    (void)state;
    expect_err("# comment\n\nhostname = mx.example\nmax_sessions = 0\n",
               "t.conf:4: max_sessions: \"0\" is out of range 1..1000000");
    expect_err("workers = 1\nbogus_key = 3\n", "t.conf:2: bogus_key: unknown key");
    expect_err("workers 3\n", "t.conf:1: \"workers 3\": missing '=' (expected key = value)");
    expect_err(" = 3\n", "t.conf:1: (empty): unknown key");
    expect_err("Workers = 3\n", "t.conf:1: Workers: unknown key");
    expect_err("bad\x01key = 3\n", "t.conf:1: bad\\x01key: unknown key");
    /* err is optional */
    assert_null(cfg_load_string("t.conf", "x\n", 2, NULL, 0));
}

static void test_config_duplicate_key(void **state)
{
    (void)state;
    expect_err("workers = 1\n#\nmax_errors = 3\nworkers = 1\n",
               "t.conf:4: workers: given twice (first on line 1)");
}

static void test_config_comments_and_blanks(void **state)
{
    (void)state;
    struct config *c = load_ok("# a comment = with equals\n   \t# indented comment\n\n"
                               "\t \n  workers   =\t4  \r\n"
                               "users_file = /a#b\r\n# max_errors = oops\nmax_errors = 3");
    assert_int_equal(c->workers, 4);
    assert_string_equal(c->users_file, "/a#b");
    assert_int_equal(c->max_errors, 3);
    cfg_free(c);
    expect_err("max_errors = 3 # trailing comment\n",
               "t.conf:1: max_errors: \"3 # trailing comment\" is not a decimal number "
               "(allowed 1..1000)");
    /* value split at the first '=' */
    c = load_ok("users_file = a=b\n");
    assert_string_equal(c->users_file, "a=b");
    cfg_free(c);
}

static void test_config_line_length_and_nul(void **state)
{
    (void)state;
    char *text = malloc(8200);
    assert_non_null(text);
    /* exactly 4096 bytes before the newline is accepted */
    memset(text, ' ', 4096);
    memcpy(text, "users_file = ", 13);
    memset(text + 13, 'p', 4000);
    memcpy(text + 4096, "\nworkers = 1\n", 14);
    struct config *c = load(text);
    assert_non_null(c);
    assert_int_equal(strlen(c->users_file), 4000);
    cfg_free(c);
    /* 4097 is not, also when it is a comment */
    memset(text, '#', 4097);
    memcpy(text + 4097, "\n", 2);
    expect_err(text, "t.conf:1: line is longer than 4096 bytes");
    snprintf(text, 8200, "workers = 1\n#%4096s", "x");
    expect_err(text, "t.conf:2: line is longer than 4096 bytes");
    free(text);
    static const char nul[] = "workers = 1\nmax_errors = 3\0\n";
    assert_null(cfg_load_string("t.conf", nul, sizeof nul - 1, err, sizeof err));
    assert_string_equal(err, "t.conf:2: line contains a NUL byte");
}

static void test_config_local_domains(void **state)
{
    (void)state;
    struct config *c = load_ok("local_domains =  Example.COM ,b.example,\tlocalhost\n");
    assert_int_equal(c->nlocal_domains, 3);
    assert_string_equal(c->local_domains[0], "example.com");
    assert_string_equal(c->local_domains[1], "b.example");
    assert_string_equal(c->local_domains[2], "localhost");
    assert_int_equal(cfg_local_domain_index(c, "EXAMPLE.com", 11), 0);
    assert_int_equal(cfg_local_domain_index(c, "b.example", 9), 1);
    assert_int_equal(cfg_local_domain_index(c, "LocalHost", 9), 2);
    assert_int_equal(cfg_local_domain_index(c, "example.com.", 12), -1);
    assert_int_equal(cfg_local_domain_index(c, "example.co", 10), -1);
    assert_int_equal(cfg_local_domain_index(c, "xexample.com", 12), -1);
    assert_int_equal(cfg_local_domain_index(c, "example.comX", 11), 0); /* len bounds it */
    assert_int_equal(cfg_local_domain_index(c, "", 0), -1);
    cfg_free(c);
    expect_err("local_domains = a.example,,b.example\n",
               "t.conf:1: local_domains: item 2 is empty (items are separated by single commas)");
    expect_err("local_domains = a.example,\n",
               "t.conf:1: local_domains: item 2 is empty (items are separated by single commas)");
    expect_err("local_domains = a.example, A.Example\n",
               "t.conf:1: local_domains: \"A.Example\" is listed twice");
    expect_err_has("local_domains = a.example, bad_domain\n",
                   "t.conf:1: local_domains: item 2: \"bad_domain\" is not a valid domain name");
}

static void test_config_listen_values(void **state)
{
    (void)state;
    struct config *c = load_ok("listen = 127.0.0.1:2525 , [::1]:1,[0:0::FFFF:10.0.0.1]:65535,"
                               "[2001:DB8::0001]:25\n");
    assert_int_equal(c->nlisten, 4);
    assert_string_equal(c->listen[0].text, "127.0.0.1:2525");
    assert_string_equal(c->listen[1].text, "[::1]:1");
    assert_string_equal(c->listen[2].text, "[::ffff:10.0.0.1]:65535");
    assert_string_equal(c->listen[3].text, "[2001:db8::1]:25");
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&c->listen[0].ss;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohs(sin->sin_port), 2525);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000001);
    assert_int_equal(c->listen[0].len, sizeof(struct sockaddr_in));
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&c->listen[1].ss;
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(sin6->sin6_port), 1);
    assert_memory_equal(&sin6->sin6_addr, &in6addr_loopback, 16);
    assert_int_equal(c->listen[1].len, sizeof(struct sockaddr_in6));
    cfg_free(c);
}

static void test_config_listen_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *v, *why;
    } bad[] = {
        {"127.0.0.1:0", "has a bad port (allowed 1..65535)"},
        {"127.0.0.1:65536", "has a bad port (allowed 1..65535)"},
        {"127.0.0.1:+25", "has a bad port (allowed 1..65535)"},
        {"127.0.0.1:", "has a bad port (allowed 1..65535)"},
        {"127.0.0.1:25x", "has a bad port (allowed 1..65535)"},
        {"127.0.0.1", "has no :port (use addr:port or [v6addr]:port)"},
        {"::1:25", "needs brackets around the IPv6 address: [v6addr]:port"},
        {"[::1]25", "is not [v6addr]:port"},
        {"[::1", "is not [v6addr]:port"},
        {"[]:25", "has no valid address (use addr:port or [v6addr]:port)"},
        {":25", "has no valid address (use addr:port or [v6addr]:port)"},
        {"1.2.3:25", "has no valid IPv4 address (use addr:port or [v6addr]:port)"},
        {"localhost:25", "has no valid IPv4 address (use addr:port or [v6addr]:port)"},
        {"[1.2.3.4]:25", "has no valid IPv6 address (use addr:port or [v6addr]:port)"},
        {"[fe80::1%eth0]:25", "has no valid IPv6 address (use addr:port or [v6addr]:port)"},
    };
    char want[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(want, sizeof want, "t.conf:1: listen: item 1: \"%s\" %s", bad[i].v, bad[i].why);
        assert_null(load_kv("listen", bad[i].v));
        assert_string_equal(err, want);
    }
    expect_err("listen =\n", "t.conf:1: listen: needs at least 1 item(s)");
    expect_err("listen = 0.0.0.0:25, [::]:25, 0.0.0.0:025\n",
               "t.conf:1: listen: \"0.0.0.0:025\" is listed twice");
}

static void test_config_trusted_networks(void **state)
{
    (void)state;
    struct config *c = load_ok("trusted_networks =\n");
    assert_int_equal(c->ntrusted_networks, 0);
    cfg_free(c);
    c = load_ok("trusted_networks = 192.168.1.77/24, 2001:db8::/32, 10.0.0.1\n");
    assert_int_equal(c->ntrusted_networks, 3);
    assert_int_equal(c->trusted_networks[0].prefix, 24);
    assert_int_equal(c->trusted_networks[2].prefix, 32);
    cfg_free(c);
    expect_err("trusted_networks = 10.0.0.0/8, 10.0.0.0/33\n",
               "t.conf:1: trusted_networks: item 2: \"10.0.0.0/33\" is not a network "
               "(a.b.c.d/0-32, v6addr/0-128 or a bare address)");
    expect_err("trusted_networks = 10.0.0.0/8, 10.9.9.9/8\n",
               "t.conf:1: trusted_networks: \"10.9.9.9/8\" is listed twice");
}

/* cidr - parse or fail the test. */
static struct cfg_cidr cidr(const char *s)
{
    struct cfg_cidr n;
    if (!cfg_parse_cidr(s, &n))
        fail_msg("cfg_parse_cidr(%s) failed", s);
    return n;
}

static void test_config_parse_cidr(void **state)
{
    (void)state;
    struct cfg_cidr n = cidr("10.1.2.3");
    static const uint8_t a10123[4] = {10, 1, 2, 3};
    assert_int_equal(n.family, AF_INET);
    assert_int_equal(n.prefix, 32);
    assert_memory_equal(n.addr, a10123, 4);
    n = cidr("10.255.2.3/9");
    static const uint8_t a10128[4] = {10, 128, 0, 0};
    assert_int_equal(n.prefix, 9);
    assert_memory_equal(n.addr, a10128, 4);
    n = cidr("255.255.255.255/0");
    static const uint8_t zero[16] = {0};
    assert_int_equal(n.prefix, 0);
    assert_memory_equal(n.addr, zero, 16);
    n = cidr("::1");
    assert_int_equal(n.family, AF_INET6);
    assert_int_equal(n.prefix, 128);
    assert_int_equal(n.addr[15], 1);
    n = cidr("2001:db8:ffff::ffff/33");
    static const uint8_t a6[16] = {0x20, 0x01, 0x0d, 0xb8, 0x80};
    assert_int_equal(n.prefix, 33);
    assert_memory_equal(n.addr, a6, 16);
    n = cidr("::ffff:192.168.7.9/120"); /* mapped networks become IPv4 */
    static const uint8_t a192[4] = {192, 168, 7, 0};
    assert_int_equal(n.family, AF_INET);
    assert_int_equal(n.prefix, 24);
    assert_memory_equal(n.addr, a192, 4);
    static const char *const bad[] = {
        "",
        "/8",
        "10.0.0.0/",
        "10.0.0.0/33",
        "::/129",
        "10.0.0.0/8x",
        "10.0.0.0/-1",
        "10.0.0.0/+8",
        "10.0.0.0/ 8",
        " 10.0.0.0",
        "10.0.0/8",
        "garbage",
        "10.0.0.0/8/8",
        "[::1]",
        "::1/99999999999999999999999",
        "1:2:3:4:5:6:7:8:9",
        "10.0.0.256",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (cfg_parse_cidr(bad[i], &n))
            fail_msg("cfg_parse_cidr accepted \"%s\"", bad[i]);
}

/* sa4 - a sockaddr_in for a dotted quad. */
static struct sockaddr_storage sa4(const char *ip)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    memset(&ss, 0, sizeof ss);
    sin->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
    return ss;
}

/* sa6 - a sockaddr_in6 for an IPv6 text. */
static struct sockaddr_storage sa6(const char *ip)
{
    struct sockaddr_storage ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    memset(&ss, 0, sizeof ss);
    sin6->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
    return ss;
}

/* ma - ss as the client address type the matcher takes. */
static struct mx_addr ma(const void *ss)
{
    struct mx_addr a;
    mx_addr_from_sockaddr(&a, ss);
    return a;
}

/* match_ss - cfg_cidr_match over a socket address. */
static bool match_ss(const struct cfg_cidr *list, size_t n, const void *ss)
{
    struct mx_addr a = ma(ss);
    return cfg_cidr_match(list, n, &a);
}

/* match1 - does the address match the one network net? */
static bool match1(const char *net, struct sockaddr_storage ss)
{
    struct cfg_cidr n = cidr(net);
    struct mx_addr a = ma(&ss);
    return cfg_cidr_match(&n, 1, &a);
}

static void test_config_cidr_match_edges(void **state)
{
    (void)state;
    assert_true(match1("0.0.0.0/0", sa4("1.2.3.4")));
    assert_true(match1("9.9.9.9/0", sa4("255.255.255.255")));
    assert_false(match1("0.0.0.0/0", sa6("::1")));
    assert_true(match1("0.0.0.0/1", sa4("127.255.255.255")));
    assert_false(match1("0.0.0.0/1", sa4("128.0.0.0")));
    assert_true(match1("128.0.0.0/1", sa4("255.0.0.1")));
    assert_true(match1("10.0.0.2/31", sa4("10.0.0.3")));
    assert_true(match1("10.0.0.3/31", sa4("10.0.0.2")));
    assert_false(match1("10.0.0.2/31", sa4("10.0.0.4")));
    assert_false(match1("10.0.0.2/31", sa4("10.0.0.1")));
    assert_true(match1("10.0.0.2/32", sa4("10.0.0.2")));
    assert_false(match1("10.0.0.2/32", sa4("10.0.0.3")));
    assert_true(match1("::/0", sa6("ffff::1")));
    assert_false(match1("::/0", sa4("1.2.3.4")));
    assert_true(match1("::/1", sa6("7fff::")));
    assert_false(match1("::/1", sa6("8000::")));
    assert_true(match1("2001:db8::2/127", sa6("2001:db8::3")));
    assert_false(match1("2001:db8::2/127", sa6("2001:db8::4")));
    assert_false(match1("2001:db8::2/127", sa6("2001:db8::1")));
    assert_true(match1("::1", sa6("::1")));
    assert_false(match1("::1", sa6("::2")));
}

static void test_config_cidr_match_mapped(void **state)
{
    (void)state;
    assert_true(match1("127.0.0.0/8", sa6("::ffff:127.0.0.1")));
    assert_false(match1("127.0.0.0/8", sa6("::ffff:128.0.0.1")));
    assert_true(match1("0.0.0.0/0", sa6("::ffff:1.2.3.4")));
    assert_true(match1("10.1.2.3", sa6("::ffff:10.1.2.3")));
    assert_true(match1("::ffff:10.0.0.0/104", sa4("10.9.8.7"))); /* normalised to v4 */
    /* a mapped client is an IPv4 client: v6 networks do not catch it */
    assert_false(match1("::/0", sa6("::ffff:1.2.3.4")));
    assert_false(match1("::ffff:0.0.0.0/95", sa6("::ffff:1.2.3.4")));
    /* the default trusted networks */
    struct config *c = load_ok("hostname = a\n");
    struct sockaddr_storage ss = sa6("::ffff:127.9.9.9");
    assert_true(match_ss(c->trusted_networks, c->ntrusted_networks, &ss));
    ss = sa6("::1");
    assert_true(match_ss(c->trusted_networks, c->ntrusted_networks, &ss));
    ss = sa6("::2");
    assert_false(match_ss(c->trusted_networks, c->ntrusted_networks, &ss));
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    assert_false(match_ss(c->trusted_networks, c->ntrusted_networks, &sun));
    assert_false(cfg_cidr_match(c->trusted_networks, c->ntrusted_networks, NULL));
    assert_false(match_ss(NULL, 0, &ss));
    cfg_free(c);
}

/* ref_match - bit-by-bit reference: do a and net share the first p bits? */
static bool ref_match(const uint8_t *a, const uint8_t *net, unsigned p)
{
    for (unsigned b = 0; b < p; b++) {
        unsigned m = 0x80u >> (b % 8);
        if ((a[b / 8] & m) != (net[b / 8] & m))
            return false;
    }
    return true;
}

static void test_config_cidr_every_prefix_length(void **state)
{
    (void)state;
    uint32_t seed = 12345;
    char text[80], host[INET6_ADDRSTRLEN];
    for (int fam = 0; fam < 2; fam++) {
        unsigned bits = fam ? 128 : 32, bytes = bits / 8;
        for (unsigned p = 0; p <= bits; p++) {
            for (int round = 0; round < 40; round++) {
                uint8_t net[16], a[16];
                for (unsigned i = 0; i < bytes; i++) {
                    seed = seed * 1103515245u + 12345u;
                    net[i] = (uint8_t)(seed >> 16);
                    a[i] = net[i];
                }
                if (round & 1) { /* flip one bit somewhere */
                    seed = seed * 1103515245u + 12345u;
                    unsigned b = (seed >> 8) % bits;
                    a[b / 8] ^= (uint8_t)(0x80u >> (b % 8));
                }
                if (fam && net[0] == 0)
                    net[0] = 0x20; /* keep clear of ::ffff:0:0/96 */
                if (fam && a[0] == 0)
                    a[0] = 0x20;
                inet_ntop(fam ? AF_INET6 : AF_INET, net, host, sizeof host);
                snprintf(text, sizeof text, "%s/%u", host, p);
                struct cfg_cidr n = cidr(text);
                assert_int_equal(n.prefix, p);
                assert_true(ref_match(n.addr, net, p)); /* network bits kept */
                assert_true(p == bits || !(n.addr[p / 8] & (0xffu >> (p % 8))));
                inet_ntop(fam ? AF_INET6 : AF_INET, a, host, sizeof host);
                struct sockaddr_storage ss = fam ? sa6(host) : sa4(host);
                if (match_ss(&n, 1, &ss) != ref_match(a, net, p))
                    fail_msg("%s vs %s: wrong answer", text, host);
            }
        }
    }
}

static void test_config_missing_file(void **state)
{
    (void)state;
    assert_null(cfg_load("/nonexistent/mxring.conf", err, sizeof err));
    assert_string_equal(err, "/nonexistent/mxring.conf: No such file or directory");
    assert_null(cfg_load("/", err, sizeof err));
    assert_string_equal(err, "/: Is a directory");
}

static void test_config_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char text[] = "hostname = file.example\nmax_errors = 0\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    char want[256];
    assert_null(cfg_load(path, err, sizeof err));
    snprintf(want, sizeof want, "%s:2: max_errors: \"0\" is out of range 1..1000", path);
    assert_string_equal(err, want);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("hostname = file.example\n", f);
    fclose(f);
    struct config *c = cfg_load(path, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(c->path, path);
    assert_string_equal(c->hostname, "file.example");
    cfg_free(c);
    unlink(path);
}

static void test_config_error_is_one_line(void **state)
{
    (void)state;
    expect_err("hostname = a\tb\"c\\d\n",
               "t.conf:1: hostname: \"a\\x09b\\x22c\\x5cd\" is not a valid domain name "
               "(use letters, digits, '-' and '.')");
    char text[400];
    snprintf(text, sizeof text, "hostname = %0200d\n", 7);
    struct config *c = load(text);
    assert_null(c);
    assert_true(strlen(err) < 200); /* long values are cut with "..." */
    assert_non_null(strstr(err, "...\" is not a valid domain name"));
    char small[16];
    assert_null(cfg_load_string("t.conf", "bogus = 1", 9, small, sizeof small));
    assert_string_equal(small, "t.conf:1: bogus");
}

static void test_config_reload_check(void **state)
{
    (void)state;
    struct config *a = load_ok("hostname = a\nworkers = 2\nusers_file = /u1\n");
    struct config *b = load_ok("hostname = a\nworkers = 2\nusers_file = /u2\n"
                               "receivelog_keep_days = 9\nlists_file = /l\n");
    struct config *w = load_ok("hostname = a\nworkers = 3\n");
    struct config *l = load_ok("hostname = a\nworkers = 2\nlisten = 0.0.0.0:26\n");
    assert_true(cfg_reload_check(a, b, err, sizeof err));
    assert_string_equal(err, "");
    assert_false(cfg_reload_check(a, w, err, sizeof err));
    assert_string_equal(err, "t.conf: workers: changed; it is not reloadable, restart mxringd");
    assert_false(cfg_reload_check(a, l, err, sizeof err));
    assert_string_equal(err, "t.conf: listen: changed; it is not reloadable, restart mxringd");
    assert_true(cfg_key_reloadable("users_file"));
    assert_true(cfg_key_reloadable("receivelog_keep_days"));
    assert_true(cfg_key_reloadable("receivelog_compress_after_days"));
    assert_false(cfg_key_reloadable("listen"));
    assert_false(cfg_key_reloadable("workers"));
    assert_false(cfg_key_reloadable("workdir"));
    assert_false(cfg_key_reloadable("nope"));
    cfg_free(a);
    cfg_free(b);
    cfg_free(w);
    cfg_free(l);
}

static void test_config_markdown_lists_every_key(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    cfg_keys_markdown(f);
    fclose(f);
    struct config *c = load_ok("hostname = a\n");
    char *d = dump_str(c);
    size_t rows = 0, keys = 0;
    for (char *p = buf; (p = strstr(p, "\n| `")); p++)
        rows++;
    for (char *p = d; *p; p++)
        keys += *p == '\n';
    assert_int_equal(rows, keys);
    assert_non_null(strstr(buf, "| `max_message_size` | size | `25M` | 1K..2G | yes |"));
    assert_non_null(strstr(buf, "| `users_file` | path | unset | optional | yes |"));
    free(buf);
    free(d);
    cfg_free(c);
}

/* test_config_tls_certs - name:cert:key items: names lower-cased, a
 * wildcard name, the same name twice (RSA and ECDSA), bad shapes refused. */
static void test_config_tls_certs(void **state)
{
    (void)state;
    struct config *c =
        load_ok("tls_certs = MX.Example.test:/c/ec.pem:/c/ec.key, "
                "mx.example.test:/c/rsa.pem:/c/rsa.key, *.example.org:/c/w.pem:/k\n");
    assert_int_equal(c->ntls_certs, 3);
    assert_string_equal(c->tls_certs[0].name, "mx.example.test");
    assert_string_equal(c->tls_certs[0].cert, "/c/ec.pem");
    assert_string_equal(c->tls_certs[0].key, "/c/ec.key");
    assert_string_equal(c->tls_certs[2].name, "*.example.org");
    cfg_free(c);
    expect_err_has("tls_certs = mx.test:/c.pem\n", "t.conf:1: tls_certs: item 1:");
    expect_err_has("tls_certs = :/c.pem:/k.pem\n", "t.conf:1: tls_certs: item 1:");
    expect_err_has("tls_certs = bad_name!:/c.pem:/k.pem\n", "t.conf:1: tls_certs: item 1:");
    expect_err_has("tls_certs = mx.test:/c.pem:\n", "t.conf:1: tls_certs: item 1:");
}

/* test_config_proxy_keys - proxy listeners need proxy_trusted_networks;
 * proxy_timeout_ms is bounded. */
static void test_config_proxy_keys(void **state)
{
    (void)state;
    struct config *c = load_ok("proxy_listen = 127.0.0.1:2600\n"
                               "proxy_smtps_listen = 127.0.0.1:2601\n"
                               "proxy_trusted_networks = 10.0.0.0/8, 127.0.0.1\n"
                               "proxy_timeout_ms = 500\n");
    assert_int_equal(c->nproxy_listen, 1);
    assert_int_equal(c->nproxy_smtps_listen, 1);
    assert_int_equal(c->nproxy_trusted_networks, 2);
    assert_int_equal(c->proxy_timeout_ms, 500);
    cfg_free(c);
    c = load_ok("");
    assert_int_equal(c->proxy_timeout_ms, 3000);
    assert_int_equal(c->nproxy_trusted_networks, 0);
    cfg_free(c);
    expect_err_has("\nproxy_listen = 127.0.0.1:2600\n",
                   "t.conf:2: proxy_listen: needs proxy_trusted_networks");
    expect_err_has("proxy_smtps_listen = 127.0.0.1:2601\n",
                   "t.conf:1: proxy_smtps_listen: needs proxy_trusted_networks");
    expect_err_has("proxy_timeout_ms = 99\n", "t.conf:1: proxy_timeout_ms:");
    expect_err_has("proxy_timeout_ms = 60001\n", "t.conf:1: proxy_timeout_ms:");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_default_hostname_is_system_name),
        cmocka_unit_test(test_config_dump_defaults),
        cmocka_unit_test(test_config_dump_round_trips),
        cmocka_unit_test(test_config_filter_keys),
        cmocka_unit_test(test_config_clamd_address),
        cmocka_unit_test(test_config_clamd_address_errors),
        cmocka_unit_test(test_config_uint_bounds),
        cmocka_unit_test(test_config_uint_values_stored),
        cmocka_unit_test(test_config_uint_rejects_junk),
        cmocka_unit_test(test_config_size_values),
        cmocka_unit_test(test_config_size_rejects),
        cmocka_unit_test(test_config_delivery_keys),
        cmocka_unit_test(test_config_delivery_keys_reject),
        cmocka_unit_test(test_config_enum_values),
        cmocka_unit_test(test_config_hostname_values),
        cmocka_unit_test(test_config_paths),
        cmocka_unit_test(test_config_error_format_names_file_line_key),
        cmocka_unit_test(test_config_duplicate_key),
        cmocka_unit_test(test_config_comments_and_blanks),
        cmocka_unit_test(test_config_line_length_and_nul),
        cmocka_unit_test(test_config_local_domains),
        cmocka_unit_test(test_config_listen_values),
        cmocka_unit_test(test_config_listen_rejects),
        cmocka_unit_test(test_config_trusted_networks),
        cmocka_unit_test(test_config_parse_cidr),
        cmocka_unit_test(test_config_cidr_match_edges),
        cmocka_unit_test(test_config_cidr_match_mapped),
        cmocka_unit_test(test_config_cidr_every_prefix_length),
        cmocka_unit_test(test_config_missing_file),
        cmocka_unit_test(test_config_load_file),
        cmocka_unit_test(test_config_error_is_one_line),
        cmocka_unit_test(test_config_reload_check),
        cmocka_unit_test(test_config_markdown_lists_every_key),
        cmocka_unit_test(test_config_tls_certs),
        cmocka_unit_test(test_config_proxy_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
