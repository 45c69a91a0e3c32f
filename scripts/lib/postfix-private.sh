# postfix-private.sh - a private Postfix instance for the comparison scripts
# (compare.sh, compare-relay.sh source it): its own main.cf/master.cf, queue
# and data folders under DIR, registered as an alternate config directory of
# the system instance, started, waited for and stopped. Callers define
# die and wait_port. The Python twin is tests/e2e/dlv_peers.py (Postfix).

# pfp_conf DIR PORT - write DIR/etc/main.cf and master.cf for an smtpd on
# 127.0.0.1:PORT; main.cf lines read from stdin come last (transports and
# other per-script settings; a later line wins in Postfix).
pfp_conf() {
    local dir=$1 port=$2
    mkdir -p "$dir/etc" "$dir/data" "$dir/queue"
    chown postfix "$dir/data"
    {
        cat <<EOF2
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
maillog_file = $dir/maillog
maillog_file_prefixes = /var, $dir
myhostname = postfix.test
mydomain = test
myorigin = postfix.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
local_recipient_maps =
relay_domains = example.test
relay_recipient_maps =
alias_maps =
alias_database =
biff = no
default_process_limit = 1000
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
in_flow_delay = 0s
EOF2
        cat
    } >"$dir/etc/main.cf"
    cat >"$dir/etc/master.cf" <<EOF2
127.0.0.1:$port inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF2
    # The default main.cf must name the alternate directory.
    touch /etc/postfix/main.cf
    local alt
    alt=$(postconf -c /etc/postfix -h alternate_config_directories)
    case " $alt " in
    *"$dir/etc"*) ;;
    *) postconf -c /etc/postfix -e "alternate_config_directories = ${alt:+$alt, }$dir/etc" ;;
    esac
}

# pfp_start DIR PORT LOG - (re)start the instance, wait for its smtpd.
pfp_start() {
    postfix -c "$1/etc" stop >/dev/null 2>&1 || true
    postfix -c "$1/etc" start >"$3" 2>&1 || { cat "$3" >&2; die "postfix did not start"; }
    wait_port "$2"
}

# pfp_stop DIR - stop the instance if it was configured (quiet, never fails).
pfp_stop() {
    if [ -f "$1/etc/main.cf" ]; then
        postfix -c "$1/etc" stop >/dev/null 2>&1 || true
    fi
}
