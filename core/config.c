/* config.c - owns the table of configuration keys and everything driven by
 * it: parsing "key = value" text, defaults, dump, reload check, the README
 * key table; plus the CIDR and local-domain look-ups. The value types the
 * table names (parse, format, release) live in config_types.c. Loading runs on the
 * main thread only; a loaded struct config is never written again, so the
 * look-ups (cfg_cidr_match, cfg_local_domain_index) may run on any thread.
 *
 * File syntax: one "key = value" per line, split at the first '='; blanks
 * (space, tab, a trailing CR) around key and value are trimmed. A line whose
 * first non-blank byte is '#' is a comment, blank lines are skipped; there
 * are no trailing comments ('#' inside a value is part of the value). Lists
 * are comma-separated, blanks around items trimmed, no empty items; an empty
 * value is an empty list (or "unset" for an optional path). A key given
 * twice, an unknown key, a bad value, a missing '=', a NUL byte or a line
 * longer than CFG_LINE_MAX bytes is an error. Integers are plain decimal
 * (no sign, no 0x); sizes take an optional K, M or G suffix (1024 based).
 * Every default is a text parsed by the same code as the file. */
#include "config.h"
#include "config_int.h"
#include "addr.h"
#include "routes.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/un.h>
#include <unistd.h>

_Static_assert(sizeof(enum cfg_internal_id) == sizeof(unsigned),
               "enum keys are stored as unsigned");

static bool system_hostname(char *buf, size_t len);
static bool resolv_nameservers(char *buf, size_t len);
static uint64_t online_cpus(void);

static const char *const internal_id_names[] = {"session", "zero", NULL};
static const char *const tls_version_names[] = {"1.2", "1.3", NULL};
static const char *const yes_no_names[] = {"no", "yes", NULL};
static const char *const dns_failure_names[] = {"pass", "tempfail", NULL};
static const char *const virus_action_names[] = {"reject", "quarantine", NULL};
static const char *const scanner_failure_names[] = {"tempfail", "accept", NULL};
static const char *const nul_bytes_names[] = {"reject", "allow", NULL};
static const char *const relay_tls_names[] = {"none", "may", "encrypt", "verify", NULL};
static const char *const dnsbl_action_names[] = {"banner", "greet_pause", NULL};
static const char *const milter_default_names[] = {"tempfail", "accept", "reject", NULL};

#define F(field) offsetof(struct config, field)
#define N(field) offsetof(struct config, n##field)

/* THE table: order = dump order = README order. */
static const struct cfg_key cfg_keys[] = {
    {"hostname", T_HOST, F(hostname), 0, NULL, system_hostname, 0, 0, NULL, NULL, true,
     "name used in the greeting, EHLO reply and Received: lines"},
    {"workdir", T_PATH, F(workdir), 0, "/var/spool/mxring", NULL, 1, 0, NULL, NULL, false,
     "folder for the spool and the receive log"},
    {"listen", T_LISTEN, F(listen), N(listen), "0.0.0.0:25", NULL, 1, 0, NULL, NULL, false,
     "addresses to accept SMTP on: addr:port or [v6addr]:port"},
    {"workers", T_UINT, F(workers), 0, "0", NULL, 0, 256, NULL, online_cpus, false,
     "worker threads; 0 = one per online CPU"},
    {"max_sessions", T_UINT, F(max_sessions), 0, "20000", NULL, 1, 1000000, NULL, NULL, true,
     "concurrent SMTP sessions; more are refused with 421"},
    {"journal_segment_size", T_SIZE, F(journal_segment_size), 0, "32M", NULL, CFG_MIB, CFG_GIB,
     NULL, NULL, false, "size of each queue journal segment file (per worker)"},
    {"max_message_size", T_SIZE, F(max_message_size), 0, "25M", NULL, CFG_KIB, 2 * CFG_GIB, NULL,
     NULL, true, "largest message accepted (SIZE), in bytes"},
    {"max_recipients", T_UINT, F(max_recipients), 0, "1000", NULL, 1, 100000, NULL, NULL, true,
     "RCPT TO commands accepted per message"},
    {"max_junk_commands", T_UINT, F(max_junk_commands), 0, "100", NULL, 1, 100000000, NULL, NULL,
     true, "NOOP, RSET, VRFY and HELP commands per session before 421"},
    {"max_errors", T_UINT, F(max_errors), 0, "20", NULL, 1, 1000, NULL, NULL, true,
     "bad commands before the session is closed with 421"},
    {"timeout_command", T_UINT, F(timeout_command), 0, "300", NULL, 1, 3600, NULL, NULL, true,
     "seconds a session may stay idle between commands"},
    {"timeout_data", T_UINT, F(timeout_data), 0, "600", NULL, 1, 7200, NULL, NULL, true,
     "seconds the whole DATA phase may take (also bounds idle gaps in it)"},
    {"nul_bytes", T_ENUM, F(nul_bytes), 0, "reject", NULL, 0, 0, nul_bytes_names, NULL, true,
     "a message with a NUL octet: reject it (550 5.6.0) or allow it (logged)"},
    {"local_domains", T_DOMAINS, F(local_domains), N(local_domains), "", NULL, 0, 0, NULL, NULL,
     true, "domains we accept mail for (matched case-insensitively)"},
    {"trusted_networks", T_CIDRS, F(trusted_networks), N(trusted_networks), "127.0.0.0/8, ::1",
     NULL, 0, 0, NULL, NULL, true, "client networks trusted (CIDR; a bare address is one host)"},
    {"receivelog_internal_id", T_ENUM, F(receivelog_internal_id), 0, "session", NULL, 0, 0,
     internal_id_names, NULL, false,
     "internal id written to the receive log: the session's, or zero"},
    {"receivelog_keep_days", T_UINT, F(receivelog_keep_days), 0, "0", NULL, 0, 36500, NULL, NULL,
     true, "days to keep receive log files; 0 = forever"},
    {"receivelog_compress_after_days", T_UINT, F(receivelog_compress_after_days), 0, "0", NULL, 0,
     36500, NULL, NULL, true, "compress receive log files older than this; 0 = never"},
    {"users_file", T_PATH, F(users_file), 0, NULL, NULL, 0, 0, NULL, NULL, true,
     "directory file of users (unset = no users)"},
    {"groups_file", T_PATH, F(groups_file), 0, NULL, NULL, 0, 0, NULL, NULL, true,
     "directory file of groups"},
    {"aliases_file", T_PATH, F(aliases_file), 0, NULL, NULL, 0, 0, NULL, NULL, true,
     "directory file of aliases"},
    {"lists_file", T_PATH, F(lists_file), 0, NULL, NULL, 0, 0, NULL, NULL, true,
     "directory file of mailing lists"},
    {"tls_cert", T_PATH, F(tls_cert), 0, NULL, NULL, 0, 0, NULL, NULL, true,
     "PEM certificate (chain) for STARTTLS and implicit TLS; unset = no TLS"},
    {"tls_key", T_PATH, F(tls_key), 0, NULL, NULL, 0, 0, NULL, NULL, true,
     "PEM private key of tls_cert"},
    {"tls_min_version", T_ENUM, F(tls_min_version), 0, "1.2", NULL, 0, 0, tls_version_names, NULL,
     true, "lowest TLS version accepted"},
    /* Mozilla "intermediate" for TLS 1.2 without DHE (BoringSSL has none):
     * ECDHE only (forward secrecy), AEAD only (no CBC, no 3DES, no RC4) */
    {"tls_ciphers", T_TEXT, F(tls_ciphers), 0,
     "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
     "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
     "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
     NULL, 1, 0, NULL, NULL, true,
     "TLS 1.2 cipher suites in server order (OpenSSL syntax); TLS 1.3 uses its fixed AEAD set"},
    {"smtps_listen", T_LISTEN, F(smtps_listen), N(smtps_listen), "", NULL, 0, 0, NULL, NULL, false,
     "addresses for implicit TLS (port 465 style); needs tls_cert"},
    {"submission_listen", T_LISTEN, F(submission_listen), N(submission_listen), "", NULL, 0, 0,
     NULL, NULL, false, "addresses for submission (port 587 style): MAIL needs AUTH"},
    {"tls_certs", T_CERTS, F(tls_certs), N(tls_certs), "", NULL, 0, 0, NULL, NULL, true,
     "more certificates chosen by SNI: name:cert:key (name a host or *.domain; several per "
     "name, e.g. RSA and ECDSA); tls_cert/tls_key is the default"},
    {"proxy_listen", T_LISTEN, F(proxy_listen), N(proxy_listen), "", NULL, 0, 0, NULL, NULL, false,
     "addresses behind a load balancer: each connection starts with a PROXY v1/v2 "
     "header (README Behind a load balancer), then SMTP"},
    {"proxy_smtps_listen", T_LISTEN, F(proxy_smtps_listen), N(proxy_smtps_listen), "", NULL, 0, 0,
     NULL, NULL, false,
     "the same for implicit TLS: a PROXY header, then the TLS handshake; needs tls_cert"},
    {"proxy_trusted_networks", T_CIDRS, F(proxy_trusted_networks), N(proxy_trusted_networks), "",
     NULL, 0, 0, NULL, NULL, true,
     "the balancers allowed to send a PROXY header (CIDRs); needed with proxy listeners"},
    {"proxy_timeout_ms", T_UINT, F(proxy_timeout_ms), 0, "3000", NULL, 100, 60000, NULL, NULL, true,
     "how long a proxy listener waits for the whole PROXY header before closing"},
    {"auth_require_tls", T_ENUM, F(auth_require_tls), 0, "yes", NULL, 0, 0, yes_no_names, NULL,
     true, "offer and accept AUTH only inside TLS"},
    {"auth_max_failures", T_UINT, F(auth_max_failures), 0, "3", NULL, 1, 100, NULL, NULL, true,
     "failed AUTH attempts before the session is closed with 421"},
    {"max_sessions_per_ip", T_UINT, F(max_sessions_per_ip), 0, "20", NULL, 0, 1000000, NULL, NULL,
     true, "concurrent sessions from one client address; 0 = no limit"},
    {"max_connect_rate_per_ip", T_UINT, F(max_connect_rate_per_ip), 0, "0", NULL, 0, 1000000, NULL,
     NULL, true, "connections per minute from one client address; 0 = no limit"},
    {"greet_pause_ms", T_UINT, F(greet_pause_ms), 0, "0", NULL, 0, 30000, NULL, NULL, true,
     "wait this long before the banner; a client talking first gets 554 5.5.0"},
    {"max_unknown_recipients_per_ip", T_UINT, F(max_unknown_recipients_per_ip), 0, "20", NULL, 0,
     1000000, NULL, NULL, true,
     "unknown recipients per 10 minutes from one untrusted client address before 421; 0 = no "
     "limit"},
    {"unknown_recipient_delay_ms", T_UINT, F(unknown_recipient_delay_ms), 0, "250", NULL, 0, 5000,
     NULL, NULL, true,
     "tarpit: each 550 User unknown waits this times the session's unknown recipients (at most 5 "
     "s; untrusted clients)"},
    {"surbl_zones", T_ZONES, F(surbl_zones), N(surbl_zones), "", NULL, 0, 0, NULL, NULL, true,
     "SURBL/URIBL zones as zone:action (reject, quarantine or pass = log only)"},
    {"surbl_max_lookups", T_UINT, F(surbl_max_lookups), 0, "20", NULL, 1, 1000, NULL, NULL, true,
     "distinct domains looked up per message"},
    {"dns_servers", T_LISTEN, F(dns_servers), N(dns_servers), "the nameservers of /etc/resolv.conf",
     resolv_nameservers, 0, 0, NULL, NULL, true,
     "DNS servers (SURBL, DNSBL, relay hop names), addr:port"},
    {"dns_timeout_ms", T_UINT, F(dns_timeout_ms), 0, "2000", NULL, 50, 60000, NULL, NULL, true,
     "how long to wait for DNS answers of one message"},
    {"hosts_file", T_PATH, F(hosts_file), 0, "/etc/hosts", NULL, 0, 0, NULL, NULL, true,
     "hosts(5) file consulted before DNS for relay hop names (re-read when it changes)"},
    {"dns_failure", T_ENUM, F(dns_failure), 0, "pass", NULL, 0, 0, dns_failure_names, NULL, true,
     "DNS timeout or error: pass the message, or tempfail it (451)"},
    {"dnsbl_sites", T_DNSBL, F(dnsbl_sites), N(dnsbl_sites), "", NULL, 0, 0, NULL, NULL, true,
     "connect-time DNSBL/DNSWL sites as zone[=a.b.c.d filter][*weight]; filter octets N, "
     "[a..b] or [a;b]; negative weights allowlist; looked up in dns_servers"},
    {"dnsbl_threshold", T_UINT, F(dnsbl_threshold), 0, "3", NULL, 1, 100000, NULL, NULL, true,
     "a client whose dnsbl_sites weights add up to this is refused (554 5.7.1)"},
    {"dnsbl_timeout_ms", T_UINT, F(dnsbl_timeout_ms), 0, "1000", NULL, 50, 30000, NULL, NULL, true,
     "how long the banner waits for DNSBL answers (a timeout counts as not listed)"},
    {"dnsbl_action", T_ENUM, F(dnsbl_action), 0, "banner", NULL, 0, 0, dnsbl_action_names, NULL,
     true,
     "when a blocked client gets its 554: at once (banner), or after greet_pause_ms "
     "(greet_pause)"},
    {"milters", T_MILTERS, F(milters), N(milters), "", NULL, 0, 0, NULL, NULL, true,
     "milters applied in order: [name=]unix:/path or [name=]inet:addr:port"},
    {"milter_connect_timeout_ms", T_UINT, F(milter_connect_timeout_ms), 0, "5000", NULL, 10, 600000,
     NULL, NULL, true, "connecting to a milter and negotiating options"},
    {"milter_command_timeout_ms", T_UINT, F(milter_command_timeout_ms), 0, "10000", NULL, 10,
     600000, NULL, NULL, true, "a milter's reply to one command (connect, HELO, MAIL, RCPT, ...)"},
    {"milter_content_timeout_ms", T_UINT, F(milter_content_timeout_ms), 0, "60000", NULL, 10,
     3600000, NULL, NULL, true, "a milter's reply to body chunks and end of message"},
    {"milter_default_action", T_ENUM, F(milter_default_action), 0, "tempfail", NULL, 0, 0,
     milter_default_names, NULL, true,
     "a milter down, timed out or broken: tempfail (451), accept (skip it) or reject (550)"},
    {"clamd", T_SOCKET, F(clamd), 0, NULL, NULL, 0, 0, NULL, NULL, true,
     "clamd to scan messages with: unix:/path or tcp:addr:port; unset = no antivirus"},
    {"clamd_timeout_ms", T_UINT, F(clamd_timeout_ms), 0, "10000", NULL, 100, 600000, NULL, NULL,
     true, "how long one scan may take"},
    {"clamd_max_size", T_SIZE, F(clamd_max_size), 0, "25M", NULL, CFG_KIB, 2 * CFG_GIB, NULL, NULL,
     true, "larger messages are not scanned (and that is logged)"},
    {"virus_action", T_ENUM, F(virus_action), 0, "reject", NULL, 0, 0, virus_action_names, NULL,
     true, "what a virus found means: reject (554) or quarantine"},
    {"scanner_failure", T_ENUM, F(scanner_failure), 0, "tempfail", NULL, 0, 0,
     scanner_failure_names, NULL, true, "clamd unreachable or timed out: tempfail (451) or accept"},
    {"default_route", T_ROUTE, F(default_route), 0, NULL, NULL, 0, 0, NULL, NULL, true,
     "next hop(s) for domains relay_routes does not list: hop[,hop...] [tls=mode]; "
     "unset with no relay_routes = no onward delivery"},
    {"relay_routes", T_PATH, F(relay_routes), 0, NULL, NULL, 0, 0, NULL, NULL, true,
     "route file: domain-or-.suffix hop[,hop...] [tls=mode] per line (README Onward delivery)"},
    {"relay_tls", T_ENUM, F(relay_tls), 0, "may", NULL, 0, 0, relay_tls_names, NULL, true,
     "TLS towards next hops without tls=: none, may (when offered), encrypt, verify (CA checked)"},
    {"relay_ca_file", T_PATH, F(relay_ca_file), 0, NULL, NULL, 0, 0, NULL, NULL, true,
     "PEM CA certificates that tls=verify checks next hops against"},
    {"relay_max_connections", T_UINT, F(relay_max_connections), 0, "10", NULL, 1, 10000, NULL, NULL,
     true, "concurrent connections to one next hop"},
    {"relay_retry_min", T_DURATION, F(relay_retry_min), 0, "60s", NULL, 1, 86400, NULL, NULL, true,
     "delay before the first retry of a deferred recipient (doubles each time)"},
    {"relay_retry_max", T_DURATION, F(relay_retry_max), 0, "1h", NULL, 1, 7 * 86400, NULL, NULL,
     true, "longest delay between retries (at least relay_retry_min)"},
    {"queue_lifetime", T_DURATION, F(queue_lifetime), 0, "5d", NULL, 1, 365 * 86400, NULL, NULL,
     true, "how long a message may stay undelivered before it bounces"},
    {"delay_warning_time", T_DURATION, F(delay_warning_time), 0, "4h", NULL, 0, 365 * 86400, NULL,
     NULL, true,
     "after this a still deferred recipient with NOTIFY=DELAY gets one delay DSN; 0 = never"},
    {"queue_max_messages", T_UINT, F(queue_max_messages), 0, "0", NULL, 0, 100000000, NULL, NULL,
     true, "messages in the queue past which receiving answers 452 4.3.1; 0 = no limit"},
    {"queue_min_free_space", T_SIZE, F(queue_min_free_space), 0, "100M", NULL, 0, 1024 * CFG_GIB,
     NULL, NULL, true,
     "free space on the workdir's file system below which receiving answers 452 4.3.1; 0 = off"},
    {"metrics_listen", T_LISTEN, F(metrics_listen), N(metrics_listen), "", NULL, 0, 0, NULL, NULL,
     false,
     "addr:port serving GET /metrics (Prometheus text format) on its own "
     "thread; empty = off"},
    {"metrics_allow", T_CIDRS, F(metrics_allow), N(metrics_allow), "127.0.0.0/8, ::1", NULL, 0, 0,
     NULL, NULL, true, "networks allowed to scrape metrics_listen (CIDR); others get 403"},
    {"user", T_TEXT, F(user), 0, NULL, NULL, 0, 0, NULL, NULL, false,
     "when started as root: drop to this user after binding the listeners"},
    {"group", T_TEXT, F(group), 0, NULL, NULL, 0, 0, NULL, NULL, false,
     "group to drop to (default: the user's primary group)"},
};

#undef F
#undef N

#define CFG_NKEYS MX_ARRAY_LEN(cfg_keys)

/* seterr - format the one-line error into err (err may be NULL). */
static void __attribute__((format(printf, 3, 4)))
seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- defaults ---------------------------------------------------------- */

/* resolv_nameservers - the default DNS servers: "nameserver" lines of
 * /etc/resolv.conf as "addr:53" (none is fine: an empty list). */
static bool resolv_nameservers(char *buf, size_t len)
{
    FILE *f = fopen("/etc/resolv.conf", "re");
    size_t off = 0;
    buf[0] = 0;
    if (!f)
        return true;
    char line[512], addr[INET6_ADDRSTRLEN + 1];
    while (fgets(line, sizeof line, f)) {
        struct in6_addr a6;
        struct in_addr a4;
        if (sscanf(line, " nameserver %46s", addr) != 1)
            continue;
        bool v6 = inet_pton(AF_INET6, addr, &a6) == 1;
        if (!v6 && inet_pton(AF_INET, addr, &a4) != 1)
            continue;
        int w = snprintf(buf + off, len - off, v6 ? "%s[%s]:53" : "%s%s:53", off ? ", " : "", addr);
        if (w < 0 || (size_t)w >= len - off)
            break;
        off += (size_t)w;
    }
    fclose(f);
    return true;
}

/* system_hostname - the default host name: gethostname(). */
static bool system_hostname(char *buf, size_t len)
{
    if (gethostname(buf, len) != 0)
        return false;
    buf[len - 1] = 0;
    return true;
}

/* online_cpus - what workers = 0 means. */
static uint64_t online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (uint64_t)n : 1;
}

/* ---- loading ----------------------------------------------------------- */

/* find_key - the table entry named name, or NULL. */
static const struct cfg_key *find_key(const char *name)
{
    for (size_t i = 0; i < CFG_NKEYS; i++)
        if (strcmp(cfg_keys[i].name, name) == 0)
            return &cfg_keys[i];
    return NULL;
}

/* The state of one load. */
struct cfg_loader {
    struct config *c;
    const char *name;
    unsigned seen[CFG_NKEYS]; /* line that set each key; 0 = not yet */
    char *err;
    size_t errlen;
};

/* load_line - one NUL-terminated line (line number lineno). */
static bool load_line(struct cfg_loader *ld, char *line, unsigned lineno)
{
    char why[CFG_WHY_MAX], q[CFG_QUOTE_MAX * 4 + 8];
    char *s = cfg_trim(line);
    if (*s == 0 || *s == '#')
        return true;
    char *eq = strchr(s, '=');
    cfg_quote(s, q, sizeof q);
    if (!eq) {
        seterr(ld->err, ld->errlen, "%s:%u: \"%s\": missing '=' (expected key = value)", ld->name,
               lineno, q);
        return false;
    }
    *eq = 0;
    char *key = cfg_trim(s), *val = cfg_trim(eq + 1);
    const struct cfg_key *k = find_key(key);
    cfg_quote(key, q, sizeof q);
    if (!k) {
        seterr(ld->err, ld->errlen, "%s:%u: %s: unknown key", ld->name, lineno,
               *key ? q : "(empty)");
        return false;
    }
    size_t i = (size_t)(k - cfg_keys);
    if (ld->seen[i]) {
        seterr(ld->err, ld->errlen, "%s:%u: %s: given twice (first on line %u)", ld->name, lineno,
               k->name, ld->seen[i]);
        return false;
    }
    ld->seen[i] = lineno;
    if (!cfg_types[k->type].parse(k, val, ld->c, why, sizeof why)) {
        seterr(ld->err, ld->errlen, "%s:%u: %s: %s", ld->name, lineno, k->name, why);
        return false;
    }
    return true;
}

/* load_text - every line of text; stops at the first error. */
static bool load_text(struct cfg_loader *ld, const char *text, size_t len)
{
    char line[CFG_LINE_MAX + 1];
    size_t pos = 0;
    for (unsigned lineno = 1; pos < len; lineno++) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = (nl ? (size_t)(nl - text) : len) - pos;
        if (n > CFG_LINE_MAX) {
            seterr(ld->err, ld->errlen, "%s:%u: line is longer than %d bytes", ld->name, lineno,
                   CFG_LINE_MAX);
            return false;
        }
        if (memchr(text + pos, 0, n)) {
            seterr(ld->err, ld->errlen, "%s:%u: line contains a NUL byte", ld->name, lineno);
            return false;
        }
        memcpy(line, text + pos, n);
        line[n] = 0;
        if (!load_line(ld, line, lineno))
            return false;
        pos += n + 1;
    }
    return true;
}

/* load_defaults - parse the default text of every key the file left out,
 * then resolve "0 = auto" integers. */
static bool load_defaults(struct cfg_loader *ld)
{
    char why[CFG_WHY_MAX], buf[CFG_HOSTNAME_MAX + 1];
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        const struct cfg_key *k = &cfg_keys[i];
        const char *def = k->def ? k->def : "";
        if (ld->seen[i])
            continue;
        if (k->def_fn && !k->def_fn(buf, sizeof buf)) {
            seterr(ld->err, ld->errlen, "%s: %s: no default (%s); set it in the file", ld->name,
                   k->name, strerror(errno));
            return false;
        }
        if (k->def_fn)
            def = buf;
        if (!cfg_types[k->type].parse(k, def, ld->c, why, sizeof why)) {
            seterr(ld->err, ld->errlen, "%s: %s: default %s; set it in the file", ld->name, k->name,
                   why);
            return false;
        }
    }
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        const struct cfg_key *k = &cfg_keys[i];
        unsigned u;
        if (!k->auto_fn)
            continue;
        memcpy(&u, cfg_field(k, ld->c), sizeof u);
        if (u == 0) {
            uint64_t a = k->auto_fn();
            u = (unsigned)(a < 1 ? 1 : a > k->max ? k->max : a);
            memcpy(cfg_field(k, ld->c), &u, sizeof u);
        }
    }
    return true;
}

/* check_proxy - proxy listeners need proxy_trusted_networks: a header is
 * believed only from a balancer named there. */
static bool check_proxy(struct cfg_loader *ld)
{
    const struct config *c = ld->c;
    if (!c->nproxy_listen && !c->nproxy_smtps_listen)
        return true;
    if (c->nproxy_trusted_networks)
        return true;
    const struct cfg_key *k = find_key(c->nproxy_listen ? "proxy_listen" : "proxy_smtps_listen");
    seterr(ld->err, ld->errlen,
           "%s:%u: %s: needs proxy_trusted_networks (the balancers' "
           "addresses that may send a PROXY header)",
           ld->name, ld->seen[k - cfg_keys], k->name);
    return false;
}

/* check_relations - constraints between keys, after every key is set. The
 * line named is the later key's (0 = both defaults: no line). */
static bool check_proxy(struct cfg_loader *ld);

static bool check_relations(struct cfg_loader *ld)
{
    const struct config *c = ld->c;
    if (!check_proxy(ld))
        return false;
    if (c->relay_retry_min <= c->relay_retry_max)
        return true;
    const struct cfg_key *k = find_key("relay_retry_max");
    unsigned line = ld->seen[k - cfg_keys];
    const struct cfg_key *kmin = find_key("relay_retry_min");
    if (ld->seen[kmin - cfg_keys] > line)
        line = ld->seen[kmin - cfg_keys];
    seterr(ld->err, ld->errlen, "%s:%u: relay_retry_max: is below relay_retry_min (%us < %us)",
           ld->name, line, c->relay_retry_max, c->relay_retry_min);
    return false;
}

struct config *cfg_load_string(const char *name, const char *text, size_t len, char *err,
                               size_t errlen)
{
    struct cfg_loader ld = {.name = name ? name : "", .err = err, .errlen = errlen};
    seterr(err, errlen, "%s", "");
    ld.c = calloc(1, sizeof *ld.c);
    if (ld.c)
        ld.c->path = strdup(ld.name);
    if (!ld.c || !ld.c->path) {
        seterr(err, errlen, "%s: %s", ld.name, strerror(ENOMEM));
        cfg_free(ld.c);
        return NULL;
    }
    if (!load_text(&ld, text ? text : "", text ? len : 0) || !load_defaults(&ld) ||
        !check_relations(&ld)) {
        cfg_free(ld.c);
        return NULL;
    }
    return ld.c;
}

struct config *cfg_load(const char *path, char *err, size_t errlen)
{
    struct sb text = {0};
    char chunk[CFG_LINE_MAX];
    FILE *f = fopen(path, "r");
    size_t n;
    if (!f) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    int failed = 0;
    errno = 0;
    while (!failed && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (!sb_append(&text, chunk, n))
            failed = ENOMEM;
    if (!failed && ferror(f))
        failed = errno ? errno : EIO;
    fclose(f);
    if (failed) {
        seterr(err, errlen, "%s: %s", path, strerror(failed));
        sb_free(&text);
        return NULL;
    }
    struct config *c = cfg_load_string(path, text.data, text.len, err, errlen);
    sb_free(&text);
    return c;
}

void cfg_free(struct config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < CFG_NKEYS; i++)
        if (cfg_types[cfg_keys[i].type].release)
            cfg_types[cfg_keys[i].type].release(&cfg_keys[i], c);
    free(c->path);
    free(c);
}

/* ---- output ------------------------------------------------------------ */

/* format_key - the effective value of key k in c as text into out. */
static void format_key(const struct cfg_key *k, const struct config *c, struct sb *out)
{
    sb_reset(out);
    cfg_types[k->type].format(k, c, out);
}

void cfg_dump(const struct config *c, FILE *out)
{
    struct sb v = {0};
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        format_key(&cfg_keys[i], c, &v);
        if (v.len)
            fprintf(out, "%s = %s\n", cfg_keys[i].name, v.data);
        else
            fprintf(out, "%s =\n", cfg_keys[i].name);
    }
    sb_free(&v);
}

bool cfg_key_reloadable(const char *key)
{
    const struct cfg_key *k = find_key(key);
    return k && k->reload;
}

bool cfg_reload_check(const struct config *old, const struct config *nw, char *err, size_t errlen)
{
    struct sb a = {0}, b = {0};
    bool ok = true;
    seterr(err, errlen, "%s", "");
    for (size_t i = 0; i < CFG_NKEYS && ok; i++) {
        const struct cfg_key *k = &cfg_keys[i];
        if (k->reload)
            continue;
        format_key(k, old, &a);
        format_key(k, nw, &b);
        ok = strcmp(a.data ? a.data : "", b.data ? b.data : "") == 0;
        if (!ok)
            seterr(err, errlen, "%s: %s: changed; it is not reloadable, restart mxringd", nw->path,
                   k->name);
    }
    sb_free(&a);
    sb_free(&b);
    return ok;
}

/* is_textual - a key whose value is free text (unset when empty). */
static bool is_textual(const struct cfg_key *k)
{
    return k->type == T_PATH || k->type == T_TEXT || k->type == T_ROUTE;
}

/* key_bounds - the README's bounds column for one key. */
static void key_bounds(const struct cfg_key *k, const char *sep, struct sb *out)
{
    if (k->type == T_UINT || k->type == T_SIZE) {
        k->type == T_SIZE ? cfg_fmt_bytes(k->min, out) : (void)sb_printf(out, "%" PRIu64, k->min);
        sb_appends(out, "..");
        k->type == T_SIZE ? cfg_fmt_bytes(k->max, out) : (void)sb_printf(out, "%" PRIu64, k->max);
    } else if (k->type == T_DURATION) {
        cfg_fmt_secs(k->min, out);
        sb_appends(out, "..");
        cfg_fmt_secs(k->max, out);
    } else if (k->type == T_ENUM) {
        cfg_fmt_names(k, sep, out);
    } else if (k->type == T_HOST) {
        sb_appends(out, "domain name");
    } else if (k->min) {
        sb_appends(out, is_textual(k) ? "required" : "at least one");
    } else {
        sb_appends(out, is_textual(k) ? "optional" : "may be empty");
    }
}

void cfg_keys_markdown(FILE *out)
{
    struct sb b = {0};
    fputs("| key | type | default | bounds | reload | meaning |\n", out);
    fputs("|---|---|---|---|---|---|\n", out);
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        const struct cfg_key *k = &cfg_keys[i];
        bool text = !k->def_fn && k->def && *k->def; /* a literal default */
        const char *def = text            ? k->def
                          : k->def_fn     ? (k->def ? k->def : "system host name")
                          : is_textual(k) ? "unset"
                                          : "empty";
        sb_reset(&b);
        key_bounds(k, " \\| ", &b);
        fprintf(out, "| `%s` | %s | %s%s%s | %s | %s | %s |\n", k->name, cfg_types[k->type].name,
                text ? "`" : "", def, text ? "`" : "", b.data ? b.data : "",
                k->reload ? "yes" : "no", k->desc);
    }
    sb_free(&b);
}

/* man_text - s as roff text: backslash and minus escaped, so no line of
 * it can start a request (callers start every line with a fixed word). */
static void man_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", out);
        else if (*s == '-')
            fputs("\\-", out);
        else if (*s == ':')
            fputs(":\\:", out); /* a break point in long cipher lists */
        else
            fputc(*s, out);
    }
}

/* The DESCRIPTION of mxringd.conf(5): the syntax rules at the top of this file. */
static const char *const man_syntax[] = {
    "One key = value per line, split at the first '='; blanks around key and value "
    "are trimmed.",
    "A line whose first non-blank character is '#' is a comment; blank lines are skipped. "
    "There are no trailing comments: a '#' inside a value is part of the value.",
    "Lists are comma-separated; blanks around items are trimmed and empty items are "
    "errors. An empty value is an empty list, or unset for an optional path.",
    "Integers are plain decimal; sizes take an optional K, M or G suffix (1024 based).",
    "A key given twice, an unknown key, a bad value, a missing '=', a NUL byte or a line "
    "longer than 4096 bytes is an error: mxringd refuses to start (or to reload) and "
    "names the file, line and key.",
    "Keys marked reload: yes take effect on SIGHUP; changing another key needs a restart "
    "(a reload that changes one is refused and the running configuration kept).",
};

void cfg_keys_man(FILE *out, const char *version)
{
    struct sb b = {0};
    fprintf(out,
            ".\\\" Generated by mxringd -M from the key table in core/config.c.\n"
            ".TH MXRINGD.CONF 5 \"\" \"mxring %s\" \"File Formats Manual\"\n"
            ".ad l\n.nh\n.SH NAME\nmxringd.conf \\- configuration file of the mxring SMTP gateway\n"
            ".SH SYNOPSIS\n/etc/mxring/mxringd.conf\n.SH DESCRIPTION\n",
            version);
    for (size_t i = 0; i < MX_ARRAY_LEN(man_syntax); i++) {
        fputs(i ? ".PP\n" : "", out);
        man_text(out, man_syntax[i]);
        fputc('\n', out);
    }
    fputs(".SH KEYS\n", out);
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        const struct cfg_key *k = &cfg_keys[i];
        bool text = !k->def_fn && k->def && *k->def;
        const char *def = text        ? k->def
                          : k->def_fn ? (k->def ? k->def : "system host name")
                          : k->type == T_PATH || k->type == T_TEXT ? "unset"
                                                                   : "empty";
        sb_reset(&b);
        key_bounds(k, " | ", &b);
        fputs(".TP\n.B ", out);
        man_text(out, k->name);
        fputs("\nType ", out);
        man_text(out, cfg_types[k->type].name);
        fputs("; default ", out);
        man_text(out, def);
        fputs("; ", out);
        man_text(out, b.data ? b.data : "");
        fprintf(out, "; reload: %s.\n.br\n", k->reload ? "yes" : "no");
        man_text(out, k->desc);
        fputs(".\n", out);
    }
    fputs(".SH FILES\n/etc/mxring/mxringd.conf\n.SH SEE ALSO\n.BR mxringd (8)\n", out);
    sb_free(&b);
}

/* ---- look-ups (any thread) --------------------------------------------- */

/* clear_host_bits - zero every bit of addr (bytes octets) past prefix. */
static void clear_host_bits(uint8_t *addr, size_t bytes, unsigned prefix)
{
    for (size_t i = 0; i < bytes; i++) {
        unsigned first = (unsigned)i * 8;
        if (first >= prefix)
            addr[i] = 0;
        else if (prefix - first < 8)
            addr[i] &= (uint8_t)(0xFFu << (8 - (prefix - first)));
    }
}

bool cfg_parse_cidr(const char *s, struct cfg_cidr *out)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/'), *end;
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    uint64_t prefix;
    if (alen == 0 || alen >= sizeof addr)
        return false;
    memcpy(addr, s, alen);
    addr[alen] = 0;
    memset(out, 0, sizeof *out);
    out->family = memchr(addr, ':', alen) ? AF_INET6 : AF_INET;
    unsigned bits = out->family == AF_INET6 ? 128 : 32;
    if (inet_pton(out->family, addr, out->addr) != 1)
        return false;
    prefix = bits;
    if (slash && (!cfg_parse_dec(slash + 1, &end, &prefix) || *end || prefix > bits))
        return false;
    out->prefix = (unsigned)prefix;
    clear_host_bits(out->addr, bits / 8, out->prefix);
    if (out->family == AF_INET6 && out->prefix >= 96 && memcmp(out->addr, mapped, 12) == 0) {
        memmove(out->addr, out->addr + 12, 4); /* ::ffff:a.b.c.d/p is a.b.c.d/(p-96) */
        memset(out->addr + 4, 0, 12);
        out->family = AF_INET;
        out->prefix -= 96;
    }
    return true;
}

/* prefix_eq - do the first prefix bits of a and net agree? */
static bool prefix_eq(const uint8_t *a, const uint8_t *net, unsigned prefix)
{
    unsigned full = prefix / 8, rem = prefix % 8;
    if (memcmp(a, net, full) != 0)
        return false;
    if (rem == 0)
        return true;
    uint8_t mask = (uint8_t)(0xFFu << (8 - rem));
    return (a[full] & mask) == net[full];
}

bool cfg_cidr_match(const struct cfg_cidr *list, size_t n, const struct mx_addr *a)
{
    if (!a || (a->family != AF_INET && a->family != AF_INET6))
        return false;
    for (size_t i = 0; i < n; i++)
        if (list[i].family == a->family && prefix_eq(a->bytes, list[i].addr, list[i].prefix))
            return true;
    return false;
}

int cfg_local_domain_index(const struct config *c, const char *domain, size_t len)
{
    for (size_t i = 0; i < c->nlocal_domains && i < INT_MAX; i++) {
        const char *d = c->local_domains[i];
        if (strlen(d) == len && mx_memcaseeq(d, domain, len))
            return (int)i;
    }
    return -1;
}
