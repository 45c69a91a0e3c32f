/* config.h - the configuration: one table of keys (type, default, bounds,
 * reloadable), a parser for "key = value" files and the immutable snapshot
 * the server runs with. Loaded by the main thread; a loaded struct config
 * is read-only and may be shared by every thread. */
#ifndef MXRING_CONFIG_H
#define MXRING_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define CFG_HOSTNAME_MAX 255

/* A listen address "addr:port", "[v6]:port". */
struct mx_addr;

struct cfg_listen {
    struct sockaddr_storage ss;
    socklen_t len;
    char text[64]; /* as written in the file, normalised "1.2.3.4:25" / "[::1]:25" */
};

/* A network in CIDR form: 10.0.0.0/8, ::1/128, a bare address = host route. */
struct cfg_cidr {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network address, host bits cleared */
    unsigned prefix;  /* 0..32 or 0..128 */
};

/* A stream socket to connect to, parsed at load: "unix:/path" or
 * "tcp:addr:port" ("tcp:[v6addr]:port"). */
#define CFG_SOCKET_TEXT_MAX 120 /* "unix:" + the longest sun_path, and then some */
struct cfg_socket {
    struct sockaddr_storage ss;     /* AF_UNIX (sun_path), AF_INET or AF_INET6 (port set) */
    socklen_t len;                  /* octets of ss to pass to connect(); 0 = unset */
    char text[CFG_SOCKET_TEXT_MAX]; /* normalised: "unix:/run/c.sock", "tcp:[::1]:3310" */
};

/* One SNI certificate of tls_certs: "name:cert:key"; name is a host name
 * (lower-cased) or "*.domain" (one label under domain). */
struct cfg_cert {
    char *name;
    char *cert; /* PEM chain */
    char *key;  /* PEM private key */
};

enum cfg_internal_id { CFG_ID_SESSION = 0, CFG_ID_ZERO };

/* A SURBL/URIBL zone and what a listing in it means (ordered by strength). */
enum cfg_zone_action { CFG_ZONE_PASS = 0, CFG_ZONE_QUARANTINE, CFG_ZONE_REJECT };
struct cfg_zone {
    char zone[254];  /* lower-cased */
    unsigned action; /* enum cfg_zone_action */
};
/* A milter of the milters key: "[name=]unix:/path" or "[name=]inet:addr:port". */
#define CFG_MILTER_NAME_MAX 31
struct cfg_milter {
    char name[CFG_SOCKET_TEXT_MAX]; /* for the log; default: the socket text */
    struct cfg_socket sock;
};
struct dnsbl_site;
enum cfg_dnsbl_action { CFG_DNSBL_BANNER = 0, CFG_DNSBL_GREET_PAUSE };
enum cfg_milter_default { CFG_MILTER_TEMPFAIL = 0, CFG_MILTER_ACCEPT, CFG_MILTER_REJECT };
enum cfg_dns_failure { CFG_DNS_PASS = 0, CFG_DNS_TEMPFAIL };
enum cfg_virus_action { CFG_VIRUS_REJECT = 0, CFG_VIRUS_QUARANTINE };
enum cfg_scanner_failure { CFG_SCAN_TEMPFAIL = 0, CFG_SCAN_ACCEPT };
enum cfg_nul_bytes { CFG_NUL_REJECT = 0, CFG_NUL_ALLOW };

/* The snapshot. Strings are owned by the struct; lists are arrays + counts. */
struct config {
    char *path; /* file it was loaded from ("" for defaults) */
    char hostname[CFG_HOSTNAME_MAX + 1];
    char *workdir;
    struct cfg_listen *listen;
    size_t nlisten;
    unsigned workers; /* resolved: never 0 after cfg_load (0 in file = CPUs) */
    unsigned max_sessions;
    uint64_t max_message_size;
    unsigned nul_bytes;            /* enum cfg_nul_bytes */
    uint64_t journal_segment_size; /* octets per queue journal segment */
    unsigned max_recipients;
    unsigned max_errors;
    unsigned timeout_command; /* seconds */
    unsigned timeout_data;    /* seconds */
    char **local_domains;     /* lower-cased */
    size_t nlocal_domains;
    struct cfg_cidr *trusted_networks;
    size_t ntrusted_networks;
    enum cfg_internal_id receivelog_internal_id;
    unsigned receivelog_keep_days;
    unsigned receivelog_compress_after_days;
    char *users_file; /* NULL when not set */
    char *groups_file;
    char *aliases_file;
    char *lists_file;
    char *tls_cert; /* NULL = no TLS */
    char *tls_key;
    unsigned tls_min_version; /* 0 = TLS 1.2, 1 = TLS 1.3 */
    char *tls_ciphers;        /* TLS 1.2 cipher list, OpenSSL syntax (always set) */
    struct cfg_listen *smtps_listen;
    size_t nsmtps_listen;
    struct cfg_listen *submission_listen;
    size_t nsubmission_listen;
    struct cfg_cert *tls_certs; /* SNI certificates; tls_cert/tls_key is the default */
    size_t ntls_certs;
    /* Behind a load balancer: listeners that read a PROXY header first. */
    struct cfg_listen *proxy_listen; /* header, then SMTP (STARTTLS offered) */
    size_t nproxy_listen;
    struct cfg_listen *proxy_smtps_listen; /* header, then implicit TLS */
    size_t nproxy_smtps_listen;
    struct cfg_cidr *proxy_trusted_networks; /* who may send a header */
    size_t nproxy_trusted_networks;
    unsigned proxy_timeout_ms; /* the whole header must arrive within this */
    unsigned auth_require_tls; /* 0 no, 1 yes */
    unsigned auth_max_failures;
    unsigned max_sessions_per_ip;     /* 0 = off */
    unsigned max_connect_rate_per_ip; /* per minute, 0 = off */
    unsigned greet_pause_ms;
    char *user; /* NULL = do not change user */
    char *group;
    unsigned max_junk_commands;
    struct cfg_zone *surbl_zones;
    size_t nsurbl_zones;
    unsigned surbl_max_lookups;
    struct cfg_listen *dns_servers; /* resolved addresses (port set) */
    size_t ndns_servers;
    unsigned dns_timeout_ms;
    char *hosts_file;        /* hosts(5) for hop names before DNS (net/dlv_dns.c) */
    unsigned dns_failure;    /* enum cfg_dns_failure */
    struct cfg_socket clamd; /* clamd.len 0 = no antivirus */
    unsigned clamd_timeout_ms;
    uint64_t clamd_max_size;
    unsigned virus_action;          /* enum cfg_virus_action */
    unsigned scanner_failure;       /* enum cfg_scanner_failure */
    struct dnsbl_site *dnsbl_sites; /* core/dnsbl_site.h */
    size_t ndnsbl_sites;
    unsigned dnsbl_threshold;
    unsigned dnsbl_timeout_ms;
    unsigned dnsbl_action;      /* enum cfg_dnsbl_action */
    struct cfg_milter *milters; /* applied in this order */
    size_t nmilters;
    unsigned milter_connect_timeout_ms;
    unsigned milter_command_timeout_ms;
    unsigned milter_content_timeout_ms;
    unsigned milter_default_action;         /* enum cfg_milter_default */
    unsigned max_unknown_recipients_per_ip; /* per 10 minutes, 0 = off */
    unsigned unknown_recipient_delay_ms;    /* tarpit step, 0 = off */
    /* Onward delivery (routes.h builds the routes from the first two). */
    char *default_route;               /* "hop[,hop...] [tls=mode]"; NULL = none */
    char *relay_routes;                /* route file; NULL = none */
    unsigned relay_tls;                /* enum route_tls: default for routes without tls= */
    char *relay_ca_file;               /* PEM CAs for tls=verify; NULL = unset */
    unsigned relay_max_connections;    /* per hop */
    unsigned relay_retry_min;          /* seconds: first retry delay (doubles) */
    unsigned relay_retry_max;          /* seconds: cap of the retry delay */
    unsigned queue_lifetime;           /* seconds a message may wait before it bounces */
    unsigned delay_warning_time;       /* seconds before a delay DSN (NOTIFY=DELAY); 0 = off */
    unsigned queue_max_messages;       /* 0 = off: past it receiving answers 452 4.3.1 */
    uint64_t queue_min_free_space;     /* bytes; 0 = off: below it receiving answers 452 */
    struct cfg_listen *metrics_listen; /* Prometheus endpoint; none = off */
    size_t nmetrics_listen;
    struct cfg_cidr *metrics_allow; /* who may scrape it */
    size_t nmetrics_allow;
};

/* cfg_load - read path into a new snapshot. Every key not in the file gets
 * its default. On error returns NULL and writes one line to err:
 * "<file>:<line>: <key>: <what is wrong>" (or "<file>: <errno text>"). */
struct config *cfg_load(const char *path, char *err, size_t errlen);

/* cfg_load_string - the same over an in-memory text; name is used in
 * messages. For tests and fuzzing. */
struct config *cfg_load_string(const char *name, const char *text, size_t len, char *err,
                               size_t errlen);

/* cfg_free - release a snapshot (NULL is fine). */
void cfg_free(struct config *c);

/* cfg_dump - write every key with its effective value, one "key = value" per
 * line, in table order (used by "mxringd -t -v" and tests). */
void cfg_dump(const struct config *c, FILE *out);

/* cfg_cidr_match - is the address a inside any network of list? (A mapped
 * client is IPv4 in struct mx_addr, so it matches IPv4 networks.) */
bool cfg_cidr_match(const struct cfg_cidr *list, size_t n, const struct mx_addr *a);

/* cfg_parse_cidr - parse one CIDR text into *out; false if malformed. */
bool cfg_parse_cidr(const char *s, struct cfg_cidr *out);

/* cfg_local_domain_index - 0-based index of domain (len octets, ASCII case
 * insensitive) in local_domains, or -1. */
int cfg_local_domain_index(const struct config *c, const char *domain, size_t len);

/* cfg_zone_action_name - the configuration word of a zone action ("pass",
 * "quarantine", "reject"); "?" for a value outside the enum. */
const char *cfg_zone_action_name(unsigned action);

/* cfg_key_reloadable - may key change on reload without a restart? false
 * for unknown keys. */
bool cfg_key_reloadable(const char *key);

/* cfg_reload_check - may a running server switch from old to nw? false, and
 * one line in err naming the first key, when a key that is not reloadable
 * has a different effective value. */
bool cfg_reload_check(const struct config *old, const struct config *nw, char *err, size_t errlen);

/* cfg_keys_markdown - write the README table of every key (key, type,
 * default, bounds, reload, meaning) from the key table. */
void cfg_keys_markdown(FILE *out);

/* cfg_keys_man - write mxringd.conf(5) in roff (the syntax rules and every
 * key with type, default, bounds, reload and meaning) from the key table;
 * version goes into the page header. */
void cfg_keys_man(FILE *out, const char *version);

#endif
