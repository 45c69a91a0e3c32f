/* config.c - owns the table of configuration keys and everything driven by
 * it: parsing "key = value" text, defaults, dump, reload check, the README
 * key table; plus the CIDR and local-domain look-ups. Loading runs on the
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
#include "addr.h"
#include "routes.h"
#include "util.h"

#include <arpa/inet.h>
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

#define CFG_LINE_MAX   4096   /* longest accepted line, newline excluded */
#define CFG_WHY_MAX    512    /* one error reason */
#define CFG_QUOTE_MAX  64     /* bytes of a bad value echoed in an error */
#define CFG_DOMAIN_MAX 253    /* RFC 1035 name length without the root dot */
#define CFG_LABEL_MAX  63
#define CFG_PORT_MAX   65535u
#define CFG_KIB        1024ull
#define CFG_MIB        (1024ull * CFG_KIB)
#define CFG_GIB        (1024ull * CFG_MIB)

_Static_assert(sizeof(enum cfg_internal_id) == sizeof(unsigned),
               "enum keys are stored as unsigned");

enum cfg_type { T_HOST, T_PATH, T_TEXT, T_SOCKET, T_UINT, T_SIZE, T_ENUM, T_DOMAINS, T_LISTEN,
                T_CIDRS, T_ZONES, T_DURATION, T_ROUTE, T_CERTS };

/* One configuration key. min/max: value bounds for uint and size; for a path
 * min 1 means "required" (empty rejected); for a list, the least number of
 * items. def is the default text (NULL = empty); def_fn computes it instead. */
struct cfg_key {
    const char *name;
    enum cfg_type type;
    size_t off;                 /* the field in struct config */
    size_t noff;                /* lists: the size_t item count */
    const char *def;
    bool (*def_fn)(char *buf, size_t len);
    uint64_t min, max;
    const char *const *names;   /* enum: value names, index = stored value */
    uint64_t (*auto_fn)(void);  /* uint: what a 0 resolves to */
    bool reload;                /* may change on reload without a restart */
    const char *desc;
};

static bool system_hostname(char *buf, size_t len);
static bool resolv_nameservers(char *buf, size_t len);
static uint64_t online_cpus(void);

static const char *const internal_id_names[] = { "session", "zero", NULL };
static const char *const tls_version_names[] = { "1.2", "1.3", NULL };
static const char *const yes_no_names[] = { "no", "yes", NULL };
static const char *const dns_failure_names[] = { "pass", "tempfail", NULL };
static const char *const virus_action_names[] = { "reject", "quarantine", NULL };
static const char *const scanner_failure_names[] = { "tempfail", "accept", NULL };
static const char *const nul_bytes_names[] = { "reject", "allow", NULL };
/* The zone actions of surbl_zones: the one table (index = enum cfg_zone_action). */
static const char *const zone_action_names[] = {
    [CFG_ZONE_PASS] = "pass", [CFG_ZONE_QUARANTINE] = "quarantine",
    [CFG_ZONE_REJECT] = "reject", NULL };
static const char *const relay_tls_names[] = { "none", "may", "encrypt", "verify", NULL };

#define F(field) offsetof(struct config, field)
#define N(field) offsetof(struct config, n##field)

/* THE table: order = dump order = README order. */
static const struct cfg_key cfg_keys[] = {
    { "hostname", T_HOST, F(hostname), 0, NULL, system_hostname, 0, 0, NULL, NULL,
      true, "name used in the greeting, EHLO reply and Received: lines" },
    { "workdir", T_PATH, F(workdir), 0, "/var/spool/mxring", NULL, 1, 0, NULL, NULL,
      false, "folder for the spool and the receive log" },
    { "listen", T_LISTEN, F(listen), N(listen), "0.0.0.0:25", NULL, 1, 0, NULL, NULL,
      false, "addresses to accept SMTP on: addr:port or [v6addr]:port" },
    { "workers", T_UINT, F(workers), 0, "0", NULL, 0, 256, NULL, online_cpus,
      false, "worker threads; 0 = one per online CPU" },
    { "max_sessions", T_UINT, F(max_sessions), 0, "20000", NULL, 1, 1000000, NULL, NULL,
      true, "concurrent SMTP sessions; more are refused with 421" },
    { "journal_segment_size", T_SIZE, F(journal_segment_size), 0, "32M", NULL, CFG_MIB,
      CFG_GIB, NULL, NULL, false, "size of each queue journal segment file (per worker)" },
    { "max_message_size", T_SIZE, F(max_message_size), 0, "25M", NULL, CFG_KIB,
      2 * CFG_GIB, NULL, NULL, true, "largest message accepted (SIZE), in bytes" },
    { "max_recipients", T_UINT, F(max_recipients), 0, "1000", NULL, 1, 100000, NULL, NULL,
      true, "RCPT TO commands accepted per message" },
    { "max_junk_commands", T_UINT, F(max_junk_commands), 0, "100", NULL, 1, 100000000, NULL,
      NULL, true, "NOOP, RSET, VRFY and HELP commands per session before 421" },
    { "max_errors", T_UINT, F(max_errors), 0, "20", NULL, 1, 1000, NULL, NULL,
      true, "bad commands before the session is closed with 421" },
    { "timeout_command", T_UINT, F(timeout_command), 0, "300", NULL, 1, 3600, NULL, NULL,
      true, "seconds a session may stay idle between commands" },
    { "timeout_data", T_UINT, F(timeout_data), 0, "600", NULL, 1, 7200, NULL, NULL,
      true, "seconds the whole DATA phase may take (also bounds idle gaps in it)" },
    { "nul_bytes", T_ENUM, F(nul_bytes), 0, "reject", NULL, 0, 0, nul_bytes_names, NULL,
      true, "a message with a NUL octet: reject it (550 5.6.0) or allow it (logged)" },
    { "local_domains", T_DOMAINS, F(local_domains), N(local_domains), "", NULL, 0, 0,
      NULL, NULL, true, "domains we accept mail for (matched case-insensitively)" },
    { "trusted_networks", T_CIDRS, F(trusted_networks), N(trusted_networks),
      "127.0.0.0/8, ::1", NULL, 0, 0, NULL, NULL, true,
      "client networks trusted (CIDR; a bare address is one host)" },
    { "receivelog_internal_id", T_ENUM, F(receivelog_internal_id), 0, "session", NULL,
      0, 0, internal_id_names, NULL, false,
      "internal id written to the receive log: the session's, or zero" },
    { "receivelog_keep_days", T_UINT, F(receivelog_keep_days), 0, "0", NULL, 0, 36500,
      NULL, NULL, true, "days to keep receive log files; 0 = forever" },
    { "receivelog_compress_after_days", T_UINT, F(receivelog_compress_after_days), 0,
      "0", NULL, 0, 36500, NULL, NULL, true,
      "compress receive log files older than this; 0 = never" },
    { "users_file", T_PATH, F(users_file), 0, NULL, NULL, 0, 0, NULL, NULL, true,
      "directory file of users (unset = no users)" },
    { "groups_file", T_PATH, F(groups_file), 0, NULL, NULL, 0, 0, NULL, NULL, true,
      "directory file of groups" },
    { "aliases_file", T_PATH, F(aliases_file), 0, NULL, NULL, 0, 0, NULL, NULL, true,
      "directory file of aliases" },
    { "lists_file", T_PATH, F(lists_file), 0, NULL, NULL, 0, 0, NULL, NULL, true,
      "directory file of mailing lists" },
    { "tls_cert", T_PATH, F(tls_cert), 0, NULL, NULL, 0, 0, NULL, NULL, true,
      "PEM certificate (chain) for STARTTLS and implicit TLS; unset = no TLS" },
    { "tls_key", T_PATH, F(tls_key), 0, NULL, NULL, 0, 0, NULL, NULL, true,
      "PEM private key of tls_cert" },
    { "tls_min_version", T_ENUM, F(tls_min_version), 0, "1.2", NULL, 0, 0,
      tls_version_names, NULL, true, "lowest TLS version accepted" },
    /* Mozilla "intermediate" for TLS 1.2 without DHE (BoringSSL has none):
     * ECDHE only (forward secrecy), AEAD only (no CBC, no 3DES, no RC4) */
    { "tls_ciphers", T_TEXT, F(tls_ciphers), 0,
      "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
      "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
      "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305", NULL, 1, 0, NULL, NULL, true,
      "TLS 1.2 cipher suites in server order (OpenSSL syntax); TLS 1.3 uses its fixed AEAD set" },
    { "smtps_listen", T_LISTEN, F(smtps_listen), N(smtps_listen), "", NULL, 0, 0, NULL,
      NULL, false, "addresses for implicit TLS (port 465 style); needs tls_cert" },
    { "submission_listen", T_LISTEN, F(submission_listen), N(submission_listen), "", NULL,
      0, 0, NULL, NULL, false, "addresses for submission (port 587 style): MAIL needs AUTH" },
    { "tls_certs", T_CERTS, F(tls_certs), N(tls_certs), "", NULL, 0, 0, NULL, NULL, true,
      "more certificates chosen by SNI: name:cert:key (name a host or *.domain; several per "
      "name, e.g. RSA and ECDSA); tls_cert/tls_key is the default" },
    { "proxy_listen", T_LISTEN, F(proxy_listen), N(proxy_listen), "", NULL, 0, 0, NULL, NULL,
      false, "addresses behind a load balancer: each connection starts with a PROXY v1/v2 "
      "header (README Behind a load balancer), then SMTP" },
    { "proxy_smtps_listen", T_LISTEN, F(proxy_smtps_listen), N(proxy_smtps_listen), "", NULL,
      0, 0, NULL, NULL, false,
      "the same for implicit TLS: a PROXY header, then the TLS handshake; needs tls_cert" },
    { "proxy_trusted_networks", T_CIDRS, F(proxy_trusted_networks), N(proxy_trusted_networks),
      "", NULL, 0, 0, NULL, NULL, true,
      "the balancers allowed to send a PROXY header (CIDRs); needed with proxy listeners" },
    { "proxy_timeout_ms", T_UINT, F(proxy_timeout_ms), 0, "3000", NULL, 100, 60000, NULL, NULL,
      true, "how long a proxy listener waits for the whole PROXY header before closing" },
    { "auth_require_tls", T_ENUM, F(auth_require_tls), 0, "yes", NULL, 0, 0, yes_no_names,
      NULL, true, "offer and accept AUTH only inside TLS" },
    { "auth_max_failures", T_UINT, F(auth_max_failures), 0, "3", NULL, 1, 100, NULL, NULL,
      true, "failed AUTH attempts before the session is closed with 421" },
    { "max_sessions_per_ip", T_UINT, F(max_sessions_per_ip), 0, "20", NULL, 0, 1000000,
      NULL, NULL, true, "concurrent sessions from one client address; 0 = no limit" },
    { "max_connect_rate_per_ip", T_UINT, F(max_connect_rate_per_ip), 0, "0", NULL, 0,
      1000000, NULL, NULL, true, "connections per minute from one client address; 0 = no limit" },
    { "greet_pause_ms", T_UINT, F(greet_pause_ms), 0, "0", NULL, 0, 30000, NULL, NULL, true,
      "wait this long before the banner; a client talking first gets 554 5.5.0" },
    { "max_unknown_recipients_per_ip", T_UINT, F(max_unknown_recipients_per_ip), 0, "20",
      NULL, 0, 1000000, NULL, NULL, true,
      "unknown recipients per 10 minutes from one untrusted client address before 421; 0 = no limit" },
    { "unknown_recipient_delay_ms", T_UINT, F(unknown_recipient_delay_ms), 0, "250", NULL, 0,
      5000, NULL, NULL, true,
      "tarpit: each 550 User unknown waits this times the session's unknown recipients (at most 5 s; untrusted clients)" },
    { "surbl_zones", T_ZONES, F(surbl_zones), N(surbl_zones), "", NULL, 0, 0, NULL, NULL,
      true, "SURBL/URIBL zones as zone:action (reject, quarantine or pass = log only)" },
    { "surbl_max_lookups", T_UINT, F(surbl_max_lookups), 0, "20", NULL, 1, 1000, NULL, NULL,
      true, "distinct domains looked up per message" },
    { "dns_servers", T_LISTEN, F(dns_servers), N(dns_servers),
      "the nameservers of /etc/resolv.conf", resolv_nameservers, 0, 0, NULL, NULL, true,
      "DNS servers for SURBL lookups, addr:port" },
    { "dns_timeout_ms", T_UINT, F(dns_timeout_ms), 0, "2000", NULL, 50, 60000, NULL, NULL,
      true, "how long to wait for DNS answers of one message" },
    { "dns_failure", T_ENUM, F(dns_failure), 0, "pass", NULL, 0, 0, dns_failure_names, NULL,
      true, "DNS timeout or error: pass the message, or tempfail it (451)" },
    { "clamd", T_SOCKET, F(clamd), 0, NULL, NULL, 0, 0, NULL, NULL, true,
      "clamd to scan messages with: unix:/path or tcp:addr:port; unset = no antivirus" },
    { "clamd_timeout_ms", T_UINT, F(clamd_timeout_ms), 0, "10000", NULL, 100, 600000, NULL,
      NULL, true, "how long one scan may take" },
    { "clamd_max_size", T_SIZE, F(clamd_max_size), 0, "25M", NULL, CFG_KIB, 2 * CFG_GIB,
      NULL, NULL, true, "larger messages are not scanned (and that is logged)" },
    { "virus_action", T_ENUM, F(virus_action), 0, "reject", NULL, 0, 0, virus_action_names,
      NULL, true, "what a virus found means: reject (554) or quarantine" },
    { "scanner_failure", T_ENUM, F(scanner_failure), 0, "tempfail", NULL, 0, 0,
      scanner_failure_names, NULL, true,
      "clamd unreachable or timed out: tempfail (451) or accept" },
    { "default_route", T_ROUTE, F(default_route), 0, NULL, NULL, 0, 0, NULL, NULL, true,
      "next hop(s) for domains relay_routes does not list: hop[,hop...] [tls=mode]; "
      "unset with no relay_routes = no onward delivery" },
    { "relay_routes", T_PATH, F(relay_routes), 0, NULL, NULL, 0, 0, NULL, NULL, true,
      "route file: domain-or-.suffix hop[,hop...] [tls=mode] per line (README Onward delivery)" },
    { "relay_tls", T_ENUM, F(relay_tls), 0, "may", NULL, 0, 0, relay_tls_names, NULL, true,
      "TLS towards next hops without tls=: none, may (when offered), encrypt, verify (CA checked)" },
    { "relay_ca_file", T_PATH, F(relay_ca_file), 0, NULL, NULL, 0, 0, NULL, NULL, true,
      "PEM CA certificates that tls=verify checks next hops against" },
    { "relay_max_connections", T_UINT, F(relay_max_connections), 0, "10", NULL, 1, 10000,
      NULL, NULL, true, "concurrent connections to one next hop" },
    { "relay_retry_min", T_DURATION, F(relay_retry_min), 0, "60s", NULL, 1, 86400, NULL, NULL,
      true, "delay before the first retry of a deferred recipient (doubles each time)" },
    { "relay_retry_max", T_DURATION, F(relay_retry_max), 0, "1h", NULL, 1, 7 * 86400, NULL,
      NULL, true, "longest delay between retries (at least relay_retry_min)" },
    { "queue_lifetime", T_DURATION, F(queue_lifetime), 0, "5d", NULL, 1, 365 * 86400, NULL,
      NULL, true, "how long a message may stay undelivered before it bounces" },
    { "queue_max_messages", T_UINT, F(queue_max_messages), 0, "0", NULL, 0, 100000000, NULL,
      NULL, true, "messages in the queue past which receiving answers 452 4.3.1; 0 = no limit" },
    { "queue_min_free_space", T_SIZE, F(queue_min_free_space), 0, "100M", NULL, 0,
      1024 * CFG_GIB, NULL, NULL, true,
      "free space on the workdir's file system below which receiving answers 452 4.3.1; 0 = off" },
    { "metrics_listen", T_LISTEN, F(metrics_listen), N(metrics_listen), "", NULL, 0, 0, NULL,
      NULL, false, "addr:port serving GET /metrics (Prometheus text format) on its own "
      "thread; empty = off" },
    { "metrics_allow", T_CIDRS, F(metrics_allow), N(metrics_allow), "127.0.0.0/8, ::1", NULL,
      0, 0, NULL, NULL, true, "networks allowed to scrape metrics_listen (CIDR); others get 403" },
    { "user", T_TEXT, F(user), 0, NULL, NULL, 0, 0, NULL, NULL, false,
      "when started as root: drop to this user after binding the listeners" },
    { "group", T_TEXT, F(group), 0, NULL, NULL, 0, 0, NULL, NULL, false,
      "group to drop to (default: the user's primary group)" },
};

#undef F
#undef N

#define CFG_NKEYS MX_ARRAY_LEN(cfg_keys)

/* ---- small helpers ---------------------------------------------------- */

/* field - address of a key's field inside c. */
static void *field(const struct cfg_key *k, const struct config *c)
{
    return (char *)(uintptr_t)c + k->off;
}

/* count - address of a list key's item count inside c. */
static size_t *count(const struct cfg_key *k, const struct config *c)
{
    return (size_t *)(void *)((char *)(uintptr_t)c + k->noff);
}

/* quote - escape up to CFG_QUOTE_MAX bytes of s into out so that an error
 * stays one printable line; longer values end in "...". */
static void quote(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i;
    for (i = 0; s[i] && i < CFG_QUOTE_MAX && o + 5 < outlen; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    if (s[i] && o + 4 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = 0;
}

/* bad - write "\"<value>\" <reason>" into why; always returns false. */
static bool __attribute__((format(printf, 4, 5)))
bad(char *why, size_t n, const char *value, const char *fmt, ...)
{
    char q[CFG_QUOTE_MAX * 4 + 8];
    va_list ap;
    quote(value, q, sizeof q);
    int w = snprintf(why, n, "\"%s\" ", q);
    if (w < 0 || (size_t)w >= n)
        return false;
    va_start(ap, fmt);
    vsnprintf(why + w, n - (size_t)w, fmt, ap);
    va_end(ap);
    return false;
}

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

/* parse_dec - strict decimal: at least one digit, no sign, no overflow.
 * *end gets the first byte after the digits. */
static bool parse_dec(const char *s, const char **end, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++)
        if (__builtin_mul_overflow(v, 10, &v)
            || __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
            return false;
    *end = p;
    *out = v;
    return p != s;
}

/* fmt_bytes - a byte count in the shortest exact K/M/G form ("25M"). */
static void fmt_bytes(uint64_t v, struct sb *out)
{
    static const struct { uint64_t mult; char suffix; } units[] = {
        { CFG_GIB, 'G' }, { CFG_MIB, 'M' }, { CFG_KIB, 'K' },
    };
    for (size_t i = 0; i < MX_ARRAY_LEN(units); i++)
        if (v && v % units[i].mult == 0) {
            sb_printf(out, "%" PRIu64 "%c", v / units[i].mult, units[i].suffix);
            return;
        }
    sb_printf(out, "%" PRIu64, v);
}

/* is_blank - the blanks trimmed around keys, values and list items. */
static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

/* trim - strip blanks in place at both ends; returns the new start. */
static char *trim(char *s)
{
    while (is_blank(*s))
        s++;
    size_t n = strlen(s);
    while (n && is_blank(s[n - 1]))
        s[--n] = 0;
    return s;
}

/* ---- scalar types ------------------------------------------------------ */

/* domain_check - RFC 1035 letters-digits-hyphen labels, 1..63 octets each,
 * at most 253 in all, no trailing dot, top label not all digits. */
static bool domain_check(const char *s, char *why, size_t n)
{
    size_t len = strlen(s), label = 0;
    bool digits = true, dotted = false;
    if (len == 0 || len > CFG_DOMAIN_MAX)
        return bad(why, n, s, "is not a valid domain name (1 to %d octets)", CFG_DOMAIN_MAX);
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '.') {
            if (label == 0 || s[i - 1] == '-')
                return bad(why, n, s, "is not a valid domain name "
                           "(empty label or label ending in '-')");
            label = 0, digits = true, dotted = true;
            continue;
        }
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
                     || (ch >= '0' && ch <= '9');
        if (!alnum && ch != '-')
            return bad(why, n, s, "is not a valid domain name (use letters, digits, '-' and '.')");
        if (ch == '-' && label == 0)
            return bad(why, n, s, "is not a valid domain name (label starting with '-')");
        if (++label > CFG_LABEL_MAX)
            return bad(why, n, s, "is not a valid domain name (label longer than %d octets)",
                       CFG_LABEL_MAX);
        digits = digits && ch >= '0' && ch <= '9';
    }
    if (label == 0 || s[len - 1] == '-')
        return bad(why, n, s, "is not a valid domain name (trailing '.' or '-')");
    if (dotted && digits)
        return bad(why, n, s, "is not a valid domain name (top-level label is all digits)");
    return true;
}

/* parse_host - a domain name into the fixed hostname buffer. */
static bool parse_host(const struct cfg_key *k, const char *v, struct config *c,
                       char *why, size_t n)
{
    if (!domain_check(v, why, n))
        return false;
    memcpy(field(k, c), v, strlen(v) + 1);
    return true;
}

/* fmt_host - the host name as stored. */
static void fmt_host(const struct cfg_key *k, const struct config *c, struct sb *out)
{
    sb_appends(out, field(k, c));
}

/* parse_path - any non-empty text up to PATH_MAX; empty = unset (only when
 * the key is optional, min 0). */
static bool parse_path(const struct cfg_key *k, const char *v, struct config *c,
                       char *why, size_t n)
{
    char **dst = field(k, c);
    size_t len = strlen(v);
    if (len == 0 && k->min)
        return bad(why, n, v, "is empty; a path is required");
    if (len >= PATH_MAX)
        return bad(why, n, v, "is longer than %d bytes", PATH_MAX - 1);
    if (len == 0)
        return true;
    *dst = strdup(v);
    if (!*dst)
        return bad(why, n, v, "could not be stored: out of memory");
    return true;
}

/* fmt_path - the path, or nothing when unset. */
static void fmt_path(const struct cfg_key *k, const struct config *c, struct sb *out)
{
    char *const *p = field(k, c);
    if (*p)
        sb_appends(out, *p);
}

/* free_path - release a path. */
static void free_path(const struct cfg_key *k, struct config *c)
{
    char **p = field(k, c);
    free(*p);
    *p = NULL;
}

static bool listen_parse(const char *s, void *elem, char *why, size_t n);

_Static_assert(sizeof(struct sockaddr_un) <= sizeof(struct sockaddr_storage),
               "a unix socket address fits the socket key");

/* socket_unix - the "unix:" part of a socket key: an absolute path that
 * fits sun_path. */
static bool socket_unix(const char *v, struct cfg_socket *s, char *why, size_t n)
{
    struct sockaddr_un *un = (struct sockaddr_un *)&s->ss;
    const char *path = v + 5;
    size_t len = strlen(path);
    if (path[0] != '/')
        return bad(why, n, v, "is not an absolute socket path (use unix:/path)");
    if (len >= sizeof un->sun_path)
        return bad(why, n, v, "is a socket path longer than %zu bytes",
                   sizeof un->sun_path - 1);
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, len + 1);
    s->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    snprintf(s->text, sizeof s->text, "unix:%s", path);
    return true;
}

/* parse_socket - "unix:/absolute/path" or "tcp:addr:port" (addr IPv4 or
 * [IPv6]) into a connectable address; empty = unset (len 0). */
static bool parse_socket(const struct cfg_key *k, const char *v, struct config *c,
                         char *why, size_t n)
{
    struct cfg_socket *s = field(k, c);
    memset(s, 0, sizeof *s);
    if (*v == 0)
        return true;
    if (strncmp(v, "unix:", 5) == 0)
        return socket_unix(v, s, why, n);
    if (strncmp(v, "tcp:", 4) != 0)
        return bad(why, n, v, "is not unix:/path or tcp:addr:port");
    struct cfg_listen l;
    if (!listen_parse(v + 4, &l, why, n))
        return false;
    s->ss = l.ss;
    s->len = l.len;
    snprintf(s->text, sizeof s->text, "tcp:%s", l.text);
    return true;
}

/* fmt_socket - the normalised text, or nothing when unset. */
static void fmt_socket(const struct cfg_key *k, const struct config *c, struct sb *out)
{
    const struct cfg_socket *s = field(k, c);
    if (s->len)
        sb_appends(out, s->text);
}

/* parse_number - decimal with an optional K/M/G suffix when sized; checks
 * the key's bounds. */
static bool parse_number(const struct cfg_key *k, const char *v, bool sized,
                         uint64_t *out, char *why, size_t n)
{
    static const char suffixes[] = "KkMmGg";
    static const uint64_t mult[] = { CFG_KIB, CFG_KIB, CFG_MIB, CFG_MIB, CFG_GIB, CFG_GIB };
    struct sb lo = { 0 }, hi = { 0 };
    const char *end;
    uint64_t x;
    bool ok = parse_dec(v, &end, &x);
    const char *suf = (ok && sized && *end) ? strchr(suffixes, *end) : NULL;
    if (suf && end[1] == 0 && __builtin_mul_overflow(x, mult[suf - suffixes], &x))
        x = UINT64_MAX;
    if (suf)
        end++;
    if (ok && *end == 0 && x >= k->min && x <= k->max) {
        *out = x;
        return true;
    }
    sized ? fmt_bytes(k->min, &lo) : (void)sb_printf(&lo, "%" PRIu64, k->min);
    sized ? fmt_bytes(k->max, &hi) : (void)sb_printf(&hi, "%" PRIu64, k->max);
    if (ok && *end == 0)
        bad(why, n, v, "is out of range %s..%s", lo.data, hi.data);
    else
        bad(why, n, v, "is not a %s (allowed %s..%s)",
            sized ? "decimal size with optional K, M or G suffix" : "decimal number",
            lo.data, hi.data);
    sb_free(&lo);
    sb_free(&hi);
    return false;
}

/* parse_uint - an unsigned int within bounds. */
static bool parse_uint(const struct cfg_key *k, const char *v, struct config *c,
                       char *why, size_t n)
{
    uint64_t x;
    if (!parse_number(k, v, false, &x, why, n))
        return false;
    unsigned u = (unsigned)x;
    memcpy(field(k, c), &u, sizeof u);
    return true;
}

/* fmt_uint - decimal. */
static void fmt_uint(const struct cfg_key *k, const struct config *c, struct sb *out)
{
    unsigned u;
    memcpy(&u, field(k, c), sizeof u);
    sb_printf(out, "%u", u);
}

/* parse_size - a byte count within bounds. */
static bool parse_size(const struct cfg_key *k, const char *v, struct config *c,
                       char *why, size_t n)
{
    uint64_t x;
    if (!parse_number(k, v, true, &x, why, n))
        return false;
    memcpy(field(k, c), &x, sizeof x);
    return true;
}

/* fmt_size - shortest exact K/M/G form. */
static void fmt_size(const struct cfg_key *k, const struct config *c, struct sb *out)
{
    uint64_t x;
    memcpy(&x, field(k, c), sizeof x);
    fmt_bytes(x, out);
}

/* Duration units, largest first: the shortest exact form is printed. */
static const struct { char suffix; unsigned secs; } cfg_units[] = {
    { 'd', 86400 }, { 'h', 3600 }, { 'm', 60 }, { 's', 1 },
};

/* fmt_secs - seconds as "5d", "1h", "90s" (largest unit that divides). */
static void fmt_secs(uint64_t v, struct sb *out)
{
    for (size_t i = 0; i < MX_ARRAY_LEN(cfg_units); i++)
        if ((v && v % cfg_units[i].secs == 0) || cfg_units[i].secs == 1) {
            sb_printf(out, "%" PRIu64 "%c", v / cfg_units[i].secs, cfg_units[i].suffix);
            return;
        }
}

/* parse_duration - decimal seconds with an optional s, m, h or d suffix,
 * within the key's bounds (in seconds). */
static bool parse_duration(const struct cfg_key *k, const char *v, struct config *c,
                           char *why, size_t n)
{
    const char *end;
    uint64_t x, mult = 1;
    bool ok = parse_dec(v, &end, &x);
    for (size_t i = 0; ok && *end && i < MX_ARRAY_LEN(cfg_units); i++)
        if (*end == cfg_units[i].suffix && end[1] == 0)
            mult = cfg_units[i].secs, end++;
    if (ok && __builtin_mul_overflow(x, mult, &x))
        x = UINT64_MAX;
    if (ok && *end == 0 && x >= k->min && x <= k->max) {
        unsigned u = (unsigned)x;
        memcpy(field(k, c), &u, sizeof u);
        return true;
    }
    struct sb lo = { 0 }, hi = { 0 };
    fmt_secs(k->min, &lo);
    fmt_secs(k->max, &hi);
    if (ok && *end == 0)
        bad(why, n, v, "is out of range %s..%s", lo.data, hi.data);
    else
        bad(why, n, v, "is not a duration (seconds, or a number with s, m, h or d; "
            "allowed %s..%s)", lo.data, hi.data);
    sb_free(&lo);
    sb_free(&hi);
    return false;
}

/* fmt_duration - shortest exact unit form. */
static void fmt_duration(const struct cfg_key *k, const struct config *c, struct sb *out)
{
    unsigned u;
    memcpy(&u, field(k, c), sizeof u);
    fmt_secs(u, out);
}

/* parse_route - a route spec "hop[,hop...] [tls=mode]" checked by
 * routes_parse_spec, stored as text (empty = unset). */
static bool parse_route(const struct cfg_key *k, const char *v, struct config *c,
                        char *why, size_t n)
{
    struct route rt;
    char sub[CFG_WHY_MAX];
    if (*v) {
        if (!routes_parse_spec(v, strlen(v), ROUTE_TLS_MAY, &rt, sub, sizeof sub))
            return bad(why, n, v, "%s", sub);
        routes_route_release(&rt);
    }
    return parse_path(k, v, c, why, n);
}

/* fmt_names - the enum's names joined by sep. */
static void fmt_names(const struct cfg_key *k, const char *sep, struct sb *out)
{
    for (size_t i = 0; k->names[i]; i++)
        sb_printf(out, "%s%s", i ? sep : "", k->names[i]);
}

/* parse_enum - one of the key's names (exact, lower case). */
static bool parse_enum(const struct cfg_key *k, const char *v, struct config *c,
                       char *why, size_t n)
{
    for (unsigned i = 0; k->names[i]; i++)
        if (strcmp(v, k->names[i]) == 0) {
            memcpy(field(k, c), &i, sizeof i);
            return true;
        }
    struct sb names = { 0 };
    fmt_names(k, ", ", &names);
    bad(why, n, v, "is not one of: %s", names.data ? names.data : "");
    sb_free(&names);
    return false;
}

/* fmt_enum - the name of the stored value. */
static void fmt_enum(const struct cfg_key *k, const struct config *c, struct sb *out)
{
    unsigned i;
    memcpy(&i, field(k, c), sizeof i);
    sb_appends(out, k->names[i]);
}

/* ---- list items -------------------------------------------------------- */

/* The per-item half of a list type. */
struct cfg_item_ops {
    size_t size;
    bool (*parse)(const char *s, void *elem, char *why, size_t n);
    void (*format)(const void *elem, struct sb *out);
    void (*release)(void *elem);
};

/* domain_parse - a domain name, stored lower-cased. */
static bool domain_parse(const char *s, void *elem, char *why, size_t n)
{
    char *d;
    if (!domain_check(s, why, n))
        return false;
    if (!(d = strdup(s)))
        return bad(why, n, s, "could not be stored: out of memory");
    for (char *p = d; *p; p++)
        *p = (char)mx_ascii_lower((unsigned char)*p);
    memcpy(elem, &d, sizeof d);
    return true;
}

/* domain_format - the stored name. */
static void domain_format(const void *elem, struct sb *out)
{
    sb_appends(out, *(char *const *)elem);
}

/* domain_release - free the name. */
static void domain_release(void *elem)
{
    free(*(char **)elem);
}

/* listen_addr - the address part of a listen item into l (port not set). */
static bool listen_addr(const char *s, const char *colon, struct cfg_listen *l,
                        char *why, size_t n)
{
    char host[INET6_ADDRSTRLEN + 1];
    bool v6 = s[0] == '[';
    size_t hlen = (size_t)(colon - s) - (v6 ? 2 : 0);
    if (hlen == 0 || hlen >= sizeof host)
        return bad(why, n, s, "has no valid address (use addr:port or [v6addr]:port)");
    memcpy(host, s + v6, hlen);
    host[hlen] = 0;
    struct sockaddr_in *sin = (struct sockaddr_in *)&l->ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l->ss;
    if (v6 ? inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1
           : inet_pton(AF_INET, host, &sin->sin_addr) != 1)
        return bad(why, n, s, "has no valid IPv%c address (use addr:port or [v6addr]:port)",
                   v6 ? '6' : '4');
    l->ss.ss_family = v6 ? AF_INET6 : AF_INET;
    l->len = v6 ? sizeof *sin6 : sizeof *sin;
    return true;
}

/* listen_parse - "a.b.c.d:port" or "[v6]:port", port 1..65535; the text
 * is normalised through inet_ntop. */
static bool listen_parse(const char *s, void *elem, char *why, size_t n)
{
    struct cfg_listen *l = elem;
    const char *colon, *end;
    uint64_t port;
    memset(l, 0, sizeof *l);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return bad(why, n, s, "is not [v6addr]:port");
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return bad(why, n, s, "has no :port (use addr:port or [v6addr]:port)");
        if (memchr(s, ':', (size_t)(colon - s)))
            return bad(why, n, s, "needs brackets around the IPv6 address: [v6addr]:port");
    }
    if (!listen_addr(s, colon, l, why, n))
        return false;
    if (!parse_dec(colon + 1, &end, &port) || *end || port < 1 || port > CFG_PORT_MAX)
        return bad(why, n, s, "has a bad port (allowed 1..%u)", CFG_PORT_MAX);
    char host[INET6_ADDRSTRLEN];
    if (l->ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l->ss;
        sin6->sin6_port = htons((uint16_t)port);
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        snprintf(l->text, sizeof l->text, "[%s]:%u", host, (unsigned)port);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&l->ss;
        sin->sin_port = htons((uint16_t)port);
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        snprintf(l->text, sizeof l->text, "%s:%u", host, (unsigned)port);
    }
    return true;
}

/* listen_format - the normalised text. */
static void listen_format(const void *elem, struct sb *out)
{
    sb_appends(out, ((const struct cfg_listen *)elem)->text);
}

/* cidr_parse - one network via cfg_parse_cidr. */
static bool cidr_parse(const char *s, void *elem, char *why, size_t n)
{
    if (cfg_parse_cidr(s, elem))
        return true;
    return bad(why, n, s, "is not a network (a.b.c.d/0-32, v6addr/0-128 or a bare address)");
}

/* cidr_format - "addr/prefix" with the host bits cleared. */
static void cidr_format(const void *elem, struct sb *out)
{
    const struct cfg_cidr *net = elem;
    char host[INET6_ADDRSTRLEN];
    inet_ntop(net->family, net->addr, host, sizeof host);
    sb_printf(out, "%s/%u", host, net->prefix);
}

/* zone_parse - "zone:action" with action reject, quarantine or pass. */
static bool zone_parse(const char *s, void *elem, char *why, size_t n)
{
    struct cfg_zone *z = elem;
    const char *colon = strrchr(s, ':');
    size_t zlen = colon ? (size_t)(colon - s) : 0;
    if (!colon || zlen == 0 || zlen > CFG_DOMAIN_MAX)
        return bad(why, n, s, "is not zone:action (action reject, quarantine or pass)");
    memcpy(z->zone, s, zlen);
    z->zone[zlen] = 0;
    if (!domain_check(z->zone, why, n))
        return false;
    for (char *p = z->zone; *p; p++)
        *p = (char)mx_ascii_lower((unsigned char)*p);
    for (unsigned i = 0; zone_action_names[i]; i++)
        if (strcmp(colon + 1, zone_action_names[i]) == 0) {
            z->action = i;
            return true;
        }
    return bad(why, n, s, "has an unknown action (use reject, quarantine or pass)");
}

/* zone_format - "zone:action". */
static void zone_format(const void *elem, struct sb *out)
{
    const struct cfg_zone *z = elem;
    sb_printf(out, "%s:%s", z->zone, cfg_zone_action_name(z->action));
}

/* cert_name_ok - a tls_certs name: a host name or "*." and a domain. */
static bool cert_name_ok(const char *name, char *why, size_t n)
{
    const char *dom = strncmp(name, "*.", 2) == 0 ? name + 2 : name;
    return domain_check(dom, why, n);
}

/* cert_parse - "name:cert:key": name up to the first ':', the key path
 * after the last one, the certificate path between them. */
static bool cert_parse(const char *s, void *elem, char *why, size_t n)
{
    struct cfg_cert *c = elem;
    memset(c, 0, sizeof *c);
    const char *c1 = strchr(s, ':'), *c2 = strrchr(s, ':');
    if (!c1 || c1 == c2 || c1 == s || c2 == c1 + 1 || !c2[1])
        return bad(why, n, s, "is not name:cert:key");
    char *name = strndup(s, (size_t)(c1 - s));
    if (!name)
        return bad(why, n, s, "could not be stored: out of memory");
    for (char *p = name; *p; p++)
        *p = (char)mx_ascii_lower((unsigned char)*p);
    if (!cert_name_ok(name, why, n)) {
        free(name);
        return false;
    }
    c->name = name;
    c->cert = strndup(c1 + 1, (size_t)(c2 - c1 - 1));
    c->key = strdup(c2 + 1);
    if (!c->cert || !c->key) {
        free(c->cert);
        free(c->key);
        free(name);
        return bad(why, n, s, "could not be stored: out of memory");
    }
    return true;
}

/* cert_format - "name:cert:key". */
static void cert_format(const void *elem, struct sb *out)
{
    const struct cfg_cert *c = elem;
    sb_printf(out, "%s:%s:%s", c->name, c->cert, c->key);
}

/* cert_release - free the three strings. */
static void cert_release(void *elem)
{
    struct cfg_cert *c = elem;
    free(c->name);
    free(c->cert);
    free(c->key);
}

static const struct cfg_item_ops domain_items = {
    sizeof(char *), domain_parse, domain_format, domain_release };
static const struct cfg_item_ops listen_items = {
    sizeof(struct cfg_listen), listen_parse, listen_format, NULL };
static const struct cfg_item_ops cidr_items = {
    sizeof(struct cfg_cidr), cidr_parse, cidr_format, NULL };
static const struct cfg_item_ops zone_items = {
    sizeof(struct cfg_zone), zone_parse, zone_format, NULL };
static const struct cfg_item_ops cert_items = {
    sizeof(struct cfg_cert), cert_parse, cert_format, cert_release };

/* ---- list types -------------------------------------------------------- */

/* list_items - the item ops of a list key. */
static const struct cfg_item_ops *list_items(const struct cfg_key *k)
{
    return k->type == T_DOMAINS ? &domain_items
         : k->type == T_LISTEN  ? &listen_items
         : k->type == T_ZONES   ? &zone_items
         : k->type == T_CERTS   ? &cert_items : &cidr_items;
}

/* list_elem - address of item i of a list key. */
static void *list_elem(const struct cfg_key *k, const struct config *c, size_t i)
{
    char *base;
    memcpy(&base, field(k, c), sizeof base);
    return base + i * list_items(k)->size;
}

/* list_find_dup - is the normalised text of the last item already present? */
static bool list_find_dup(const struct cfg_key *k, const struct config *c)
{
    const struct cfg_item_ops *ops = list_items(k);
    size_t last = *count(k, c) - 1;
    struct sb a = { 0 }, b = { 0 };
    bool dup = false;
    ops->format(list_elem(k, c, last), &a);
    for (size_t i = 0; i < last && !dup; i++) {
        sb_reset(&b);
        ops->format(list_elem(k, c, i), &b);
        dup = a.data && b.data && strcmp(a.data, b.data) == 0;
    }
    sb_free(&a);
    sb_free(&b);
    return dup;
}

/* list_push - parse one trimmed item and append it. */
static bool list_push(const struct cfg_key *k, const char *item, size_t idx,
                      struct config *c, char *why, size_t n)
{
    const struct cfg_item_ops *ops = list_items(k);
    char sub[CFG_WHY_MAX];
    if (!*item) {
        snprintf(why, n, "item %zu is empty (items are separated by single commas)", idx);
        return false;
    }
    char *base;
    memcpy(&base, field(k, c), sizeof base);
    char *grown = realloc(base, (*count(k, c) + 1) * ops->size);
    if (!grown)
        return bad(why, n, item, "could not be stored: out of memory");
    memcpy(field(k, c), &grown, sizeof grown);
    if (!ops->parse(item, grown + *count(k, c) * ops->size, sub, sizeof sub)) {
        snprintf(why, n, "item %zu: %s", idx, sub);
        return false;
    }
    ++*count(k, c);
    if (list_find_dup(k, c))
        return bad(why, n, item, "is listed twice");
    return true;
}

/* free_list - release every item and the array. */
static void free_list(const struct cfg_key *k, struct config *c)
{
    const struct cfg_item_ops *ops = list_items(k);
    for (size_t i = 0; ops->release && i < *count(k, c); i++)
        ops->release(list_elem(k, c, i));
    char *base;
    memcpy(&base, field(k, c), sizeof base);
    free(base);
    base = NULL;
    memcpy(field(k, c), &base, sizeof base);
    *count(k, c) = 0;
}

/* parse_list - comma-separated items; at least k->min of them. */
static bool parse_list(const struct cfg_key *k, const char *v, struct config *c,
                       char *why, size_t n)
{
    char *copy = strdup(v), *p = copy;
    bool ok = copy != NULL;
    if (!ok)
        return bad(why, n, v, "could not be stored: out of memory");
    for (size_t idx = 1; ok && *v; idx++) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = 0;
        ok = list_push(k, trim(p), idx, c, why, n);
        if (!comma)
            break;
        p = comma + 1;
    }
    free(copy);
    if (ok && *count(k, c) < k->min) {
        snprintf(why, n, "needs at least %" PRIu64 " item(s)", k->min);
        return false;
    }
    return ok;
}

/* fmt_list - items joined by ", ". */
static void fmt_list(const struct cfg_key *k, const struct config *c, struct sb *out)
{
    for (size_t i = 0; i < *count(k, c); i++) {
        if (i)
            sb_appends(out, ", ");
        list_items(k)->format(list_elem(k, c, i), out);
    }
}

/* ---- the type table ---------------------------------------------------- */

struct cfg_type_ops {
    const char *name;   /* for the README table */
    bool (*parse)(const struct cfg_key *k, const char *v, struct config *c, char *why, size_t n);
    void (*format)(const struct cfg_key *k, const struct config *c, struct sb *out);
    void (*release)(const struct cfg_key *k, struct config *c);
};

static const struct cfg_type_ops cfg_types[] = {
    [T_HOST]    = { "host name", parse_host, fmt_host, NULL },
    [T_PATH]    = { "path", parse_path, fmt_path, free_path },
    [T_TEXT]    = { "text", parse_path, fmt_path, free_path },
    [T_SOCKET]  = { "socket", parse_socket, fmt_socket, NULL },
    [T_UINT]    = { "integer", parse_uint, fmt_uint, NULL },
    [T_SIZE]    = { "size", parse_size, fmt_size, NULL },
    [T_ENUM]    = { "enum", parse_enum, fmt_enum, NULL },
    [T_DOMAINS] = { "list of domains", parse_list, fmt_list, free_list },
    [T_LISTEN]  = { "list of addr:port", parse_list, fmt_list, free_list },
    [T_CIDRS]   = { "list of CIDRs", parse_list, fmt_list, free_list },
    [T_ZONES]   = { "list of zone:action", parse_list, fmt_list, free_list },
    [T_DURATION] = { "duration", parse_duration, fmt_duration, NULL },
    [T_ROUTE]   = { "route", parse_route, fmt_path, free_path },
    [T_CERTS]   = { "list of name:cert:key", parse_list, fmt_list, free_list },
};

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
        int w = snprintf(buf + off, len - off, v6 ? "%s[%s]:53" : "%s%s:53", off ? ", " : "",
                         addr);
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
    unsigned seen[CFG_NKEYS];   /* line that set each key; 0 = not yet */
    char *err;
    size_t errlen;
};

/* load_line - one NUL-terminated line (line number lineno). */
static bool load_line(struct cfg_loader *ld, char *line, unsigned lineno)
{
    char why[CFG_WHY_MAX], q[CFG_QUOTE_MAX * 4 + 8];
    char *s = trim(line);
    if (*s == 0 || *s == '#')
        return true;
    char *eq = strchr(s, '=');
    quote(s, q, sizeof q);
    if (!eq) {
        seterr(ld->err, ld->errlen, "%s:%u: \"%s\": missing '=' (expected key = value)",
               ld->name, lineno, q);
        return false;
    }
    *eq = 0;
    char *key = trim(s), *val = trim(eq + 1);
    const struct cfg_key *k = find_key(key);
    quote(key, q, sizeof q);
    if (!k) {
        seterr(ld->err, ld->errlen, "%s:%u: %s: unknown key", ld->name, lineno,
               *key ? q : "(empty)");
        return false;
    }
    size_t i = (size_t)(k - cfg_keys);
    if (ld->seen[i]) {
        seterr(ld->err, ld->errlen, "%s:%u: %s: given twice (first on line %u)",
               ld->name, lineno, k->name, ld->seen[i]);
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
            seterr(ld->err, ld->errlen, "%s:%u: line is longer than %d bytes",
                   ld->name, lineno, CFG_LINE_MAX);
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
            seterr(ld->err, ld->errlen, "%s: %s: no default (%s); set it in the file",
                   ld->name, k->name, strerror(errno));
            return false;
        }
        if (k->def_fn)
            def = buf;
        if (!cfg_types[k->type].parse(k, def, ld->c, why, sizeof why)) {
            seterr(ld->err, ld->errlen, "%s: %s: default %s; set it in the file",
                   ld->name, k->name, why);
            return false;
        }
    }
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        const struct cfg_key *k = &cfg_keys[i];
        unsigned u;
        if (!k->auto_fn)
            continue;
        memcpy(&u, field(k, ld->c), sizeof u);
        if (u == 0) {
            uint64_t a = k->auto_fn();
            u = (unsigned)(a < 1 ? 1 : a > k->max ? k->max : a);
            memcpy(field(k, ld->c), &u, sizeof u);
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
    seterr(ld->err, ld->errlen, "%s:%u: %s: needs proxy_trusted_networks (the balancers' "
           "addresses that may send a PROXY header)", ld->name, ld->seen[k - cfg_keys], k->name);
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

struct config *cfg_load_string(const char *name, const char *text, size_t len,
                               char *err, size_t errlen)
{
    struct cfg_loader ld = { .name = name ? name : "", .err = err, .errlen = errlen };
    seterr(err, errlen, "%s", "");
    ld.c = calloc(1, sizeof *ld.c);
    if (ld.c)
        ld.c->path = strdup(ld.name);
    if (!ld.c || !ld.c->path) {
        seterr(err, errlen, "%s: %s", ld.name, strerror(ENOMEM));
        cfg_free(ld.c);
        return NULL;
    }
    if (!load_text(&ld, text ? text : "", text ? len : 0) || !load_defaults(&ld)
        || !check_relations(&ld)) {
        cfg_free(ld.c);
        return NULL;
    }
    return ld.c;
}

struct config *cfg_load(const char *path, char *err, size_t errlen)
{
    struct sb text = { 0 };
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
    struct sb v = { 0 };
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

bool cfg_reload_check(const struct config *old, const struct config *nw,
                      char *err, size_t errlen)
{
    struct sb a = { 0 }, b = { 0 };
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
            seterr(err, errlen, "%s: %s: changed; it is not reloadable, restart mxringd",
                   nw->path, k->name);
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
        k->type == T_SIZE ? fmt_bytes(k->min, out) : (void)sb_printf(out, "%" PRIu64, k->min);
        sb_appends(out, "..");
        k->type == T_SIZE ? fmt_bytes(k->max, out) : (void)sb_printf(out, "%" PRIu64, k->max);
    } else if (k->type == T_DURATION) {
        fmt_secs(k->min, out);
        sb_appends(out, "..");
        fmt_secs(k->max, out);
    } else if (k->type == T_ENUM) {
        fmt_names(k, sep, out);
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
    struct sb b = { 0 };
    fputs("| key | type | default | bounds | reload | meaning |\n", out);
    fputs("|---|---|---|---|---|---|\n", out);
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        const struct cfg_key *k = &cfg_keys[i];
        bool text = !k->def_fn && k->def && *k->def;   /* a literal default */
        const char *def = text ? k->def : k->def_fn ? (k->def ? k->def : "system host name")
                        : is_textual(k) ? "unset" : "empty";
        sb_reset(&b);
        key_bounds(k, " \\| ", &b);
        fprintf(out, "| `%s` | %s | %s%s%s | %s | %s | %s |\n", k->name,
                cfg_types[k->type].name, text ? "`" : "", def, text ? "`" : "",
                b.data ? b.data : "", k->reload ? "yes" : "no", k->desc);
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
            fputs(":\\:", out);   /* a break point in long cipher lists */
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
    struct sb b = { 0 };
    fprintf(out, ".\\\" Generated by mxringd -M from the key table in core/config.c.\n"
                 ".TH MXRINGD.CONF 5 \"\" \"mxring %s\" \"File Formats Manual\"\n"
                 ".ad l\n.nh\n.SH NAME\nmxringd.conf \\- configuration file of the mxring SMTP gateway\n"
                 ".SH SYNOPSIS\n/etc/mxring/mxringd.conf\n.SH DESCRIPTION\n", version);
    for (size_t i = 0; i < MX_ARRAY_LEN(man_syntax); i++) {
        fputs(i ? ".PP\n" : "", out);
        man_text(out, man_syntax[i]);
        fputc('\n', out);
    }
    fputs(".SH KEYS\n", out);
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        const struct cfg_key *k = &cfg_keys[i];
        bool text = !k->def_fn && k->def && *k->def;
        const char *def = text ? k->def : k->def_fn ? (k->def ? k->def : "system host name")
                        : k->type == T_PATH || k->type == T_TEXT ? "unset" : "empty";
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

/* cfg_zone_action_name - see config.h. */
const char *cfg_zone_action_name(unsigned action)
{
    return action < MX_ARRAY_LEN(zone_action_names) - 1 ? zone_action_names[action] : "?";
}

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
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
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
    if (slash && (!parse_dec(slash + 1, &end, &prefix) || *end || prefix > bits))
        return false;
    out->prefix = (unsigned)prefix;
    clear_host_bits(out->addr, bits / 8, out->prefix);
    if (out->family == AF_INET6 && out->prefix >= 96 && memcmp(out->addr, mapped, 12) == 0) {
        memmove(out->addr, out->addr + 12, 4);   /* ::ffff:a.b.c.d/p is a.b.c.d/(p-96) */
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
