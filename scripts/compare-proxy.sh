#!/bin/bash
# compare-proxy.sh - the cost of running behind a load balancer (issue 16),
# in one run on loopback: one private mxringd with a plain listener and a
# proxy listener, a private HAProxy (mode tcp, send-proxy-v2) in front of
# the proxy listener, and mxbench (one connection per message, so every
# message pays for one PROXY header) alternately straight to mxringd and
# through HAProxy, twice each. Per run: msgs/s, p99, mxringd CPU per
# message (utime+stime from /proc/PID/stat) and HAProxy's own CPU per
# message. Then proxy_parse() alone (a v2 header with PP2_TYPE_SSL, timed
# in a loop) against mxringd's CPU per message: the parser's share.
#
# Usage: scripts/compare-proxy.sh (after make mxbench; env BUILD=build,
# PROXY_SECONDS=7, CONNECTIONS=20). Under a minute. Needs haproxy.
set -euo pipefail

BUILD=${BUILD:-build}
SECS=${PROXY_SECONDS:-7}
CONNS=${CONNECTIONS:-20}
WORK=$(mktemp -d /tmp/mxring-compare-proxy.XXXXXX)
PORT_MX=12651
PORT_PX=12652
PORT_HA=12653
MXPID=""
HAPID=""

say() { echo "compare-proxy: $*" >&2; }

# cleanup - stop what this script started (by pid) and remove the folder.
cleanup() {
    [ -n "$HAPID" ] && kill "$HAPID" 2>/dev/null && wait "$HAPID" 2>/dev/null || true
    [ -n "$MXPID" ] && kill "$MXPID" 2>/dev/null && wait "$MXPID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# cpu_ticks PID - utime + stime of PID in clock ticks.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# start_mxringd - the server under test (durable queue in $WORK).
start_mxringd() {
    mkdir -p "$WORK/var"
    cat >"$WORK/mxringd.conf" <<EOF
hostname = mx.test
workdir = $WORK/var
listen = 127.0.0.1:$PORT_MX
proxy_listen = 127.0.0.1:$PORT_PX
proxy_trusted_networks = 127.0.0.1
local_domains = example.test
max_sessions_per_ip = 0
workers = 1
EOF
    "$BUILD/mxringd" -c "$WORK/mxringd.conf" 2>"$WORK/mxringd.err" &
    MXPID=$!
    for _ in $(seq 100); do
        grep -q " ready, " "$WORK/mxringd.err" 2>/dev/null && return 0
        sleep 0.05
    done
    say "mxringd did not start: $(cat "$WORK/mxringd.err")"
    exit 1
}

# start_haproxy - mode tcp, send-proxy-v2 to the proxy listener.
start_haproxy() {
    cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn 4000
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:$PORT_HA
    default_backend be
backend be
    server mx 127.0.0.1:$PORT_PX send-proxy-v2
EOF
    haproxy -db -f "$WORK/haproxy.cfg" 2>"$WORK/haproxy.err" &
    HAPID=$!
    sleep 0.5
}

# json_field FILE NAME - a number from mxbench's --json line.
json_field() {
    python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print(d.get(sys.argv[2], 0))' "$1" "$2"
}

# run PATHNAME PORT - one mxbench run; prints one table row.
run() {
    local name=$1 port=$2 out="$WORK/run.json"
    local mx0 ha0 mx1 ha1 hz msgs
    hz=$(getconf CLK_TCK)
    mx0=$(cpu_ticks "$MXPID")
    ha0=$(cpu_ticks "$HAPID")
    "$BUILD/mxbench" --server "127.0.0.1:$port" --connections "$CONNS" --messages 100000000 \
        --size 4096 --duration "$SECS" --json >"$out" 2>"$WORK/bench.err" || true
    mx1=$(cpu_ticks "$MXPID")
    ha1=$(cpu_ticks "$HAPID")
    msgs=$(json_field "$out" messages)
    python3 - "$name" "$msgs" "$(json_field "$out" msgs_per_s)" "$(json_field "$out" p99_us)" \
        "$((mx1 - mx0))" "$((ha1 - ha0))" "$hz" "$(json_field "$out" errors)" <<'EOF'
import sys
name, msgs, rate, p99, mx, ha, hz, errors = sys.argv[1:]
msgs = max(int(float(msgs)), 1)
us = lambda ticks: int(ticks) * 1e6 / int(hz) / msgs
print("| %-22s | %8d | %9.1f | %8.2f | %12.1f | %13.1f | %6s |" %
      (name, msgs, float(rate), float(p99) / 1000, us(mx), us(ha), errors))
EOF
}

# parse_cost - proxy_parse() of a v2 header with PP2_TYPE_SSL, ns per call.
parse_cost() {
    cat >"$WORK/pp.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "proxy.h"
int main(void)
{
    static const unsigned char h[] =
        "\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x41\x7f\x00\x00\x02\x7f\x00\x00\x01\x9c\x40\x00\x19"
        "\x20\x00\x28\x01\x00\x00\x00\x00\x21\x00\x07TLSv1.3\x23\x00\x16TLS_AES_256_GCM_SHA384"
        "\x02\x00\x07mx.test";
    struct proxy_hdr hdr;
    const char *why;
    struct timespec a, b;
    unsigned long n = 2000000, ok = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (unsigned long i = 0; i < n; i++)
        ok += proxy_parse(h, sizeof(h) - 1, &hdr, &why) == PROXY_DONE;
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n;
    printf("%.1f %lu\n", ns, ok);
    return ok != n;
}
EOF
    cc -O2 -D_GNU_SOURCE -Icore -o "$WORK/pp" "$WORK/pp.c" core/proxy.c core/addr.c core/journal.c
    "$WORK/pp" | awk '{ print $1 }'
}

[ -x "$BUILD/mxbench" ] || { say "build $BUILD/mxbench first (make mxbench)"; exit 2; }
command -v haproxy >/dev/null || { say "haproxy is missing (scripts/deps.sh test)"; exit 2; }
start_mxringd
start_haproxy
say "mxbench, $CONNS connections, one connection per message, 4 KiB, $SECS s per run"
echo "| path                   |     msgs |    msgs/s |  p99 ms | mxringd µs/msg | HAProxy µs/msg | errors |"
echo "|---|---:|---:|---:|---:|---:|---:|"
rows=$WORK/rows
for round in 1 2; do
    run "direct ($round)" "$PORT_MX" | tee -a "$rows"
    run "HAProxy v2 ($round)" "$PORT_HA" | tee -a "$rows"
done
ns=$(parse_cost)
python3 - "$rows" "$ns" <<'EOF'
import sys
rows = [l.split("|") for l in open(sys.argv[1])]
def mean(prefix, col):
    v = [float(r[col]) for r in rows if r[1].strip().startswith(prefix)]
    return sum(v) / len(v)
d_cpu, p_cpu = mean("direct", 5), mean("HAProxy", 5)
d_rate, p_rate = mean("direct", 3), mean("HAProxy", 3)
ns = float(sys.argv[2])
print()
print("mxringd CPU per message: direct %.1f µs, behind HAProxy %.1f µs (%+.1f%%, whole process, "
      "noisy)" % (d_cpu, p_cpu, (p_cpu / d_cpu - 1) * 100))
print("msgs/s behind HAProxy / direct: %.2f" % (p_rate / d_rate))
print("proxy_parse of a v2 header with PP2_TYPE_SSL: %.0f ns = %.3f%% of mxringd's CPU per "
      "message (goal < 2%%)" % (ns, ns / 1000 / p_cpu * 100))
EOF
