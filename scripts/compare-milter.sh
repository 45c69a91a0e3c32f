#!/bin/bash
# compare-milter.sh - the cost of a milter and of DNSBL checks (issue 17),
# in one short run on loopback: mxbench (one connection per message)
# against two private mxringd instances, one plain and one with the test
# milter (tests/e2e/milter_peer.py: answers continue to every stage), then
# against one plain and one with dnsbl_sites looked up in a private
# dnsmasq (the cache warm after the first connection). Per run: msgs/s,
# p99 and mxringd's own CPU per message (utime+stime from /proc/PID/stat);
# the milter's CPU is its own process's (Python: it dominates).
# The Rspamd row: the same plain mxringd's workload through one with a real
# Rspamd as its milter (tests/e2e/milter_real_peers.py: proxy worker in
# milter mode, self-scan, DKIM/SPF/DMARC and Authentication-Results; a
# private configuration), which runs with its dnsmasq in a new network
# namespace that has only lo (checked before they start; no route off the
# machine), reached over a UNIX socket; its CPU is all of its processes'.
# Where unshare --net is refused the Rspamd row is skipped, never run in
# the host's namespace.
#
# Usage: scripts/compare-milter.sh (after make mxbench; env BUILD=build,
# MILTER_SECONDS=5, CONNECTIONS=20). Under a minute. Needs dnsmasq, rspamd.
set -euo pipefail

BUILD=${BUILD:-build}
SECS=${MILTER_SECONDS:-5}
CONNS=${CONNECTIONS:-20}
WORK=$(mktemp -d /tmp/mxring-compare-milter.XXXXXX)
PIDS=()

say() { echo "compare-milter: $*" >&2; }

# cleanup - stop what this script started (by pid) and remove the folder.
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# cpu_ticks PID... - utime + stime of the PIDs in clock ticks.
cpu_ticks() { for p in "$@"; do cat "/proc/$p/stat"; done | awk '{ t += $14 + $15 } END { print t + 0 }'; }

# tree PID - PID and its children (Rspamd's main process and workers).
tree() { echo "$1" $(pgrep -P "$1" || true); }

# free_port - a free loopback TCP port.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_mxringd NAME EXTRA - a server with extra config lines; sets PORT, MXPID.
start_mxringd() {
    local name=$1 extra=$2
    PORT=$(free_port)
    mkdir -p "$WORK/$name/var"
    printf 'hostname = mx.test\nworkdir = %s\nlisten = 127.0.0.1:%s\nlocal_domains = example.test\nmax_sessions_per_ip = 0\nworkers = 1\n%b' \
        "$WORK/$name/var" "$PORT" "$extra" >"$WORK/$name/mxringd.conf"
    "$BUILD/mxringd" -c "$WORK/$name/mxringd.conf" 2>"$WORK/$name/err" &
    MXPID=$!
    PIDS+=("$MXPID")
    for _ in $(seq 100); do
        grep -q " ready, " "$WORK/$name/err" 2>/dev/null && return 0
        sleep 0.05
    done
    say "mxringd $name did not start: $(cat "$WORK/$name/err")"
    exit 1
}

# json_field FILE NAME - a number from mxbench's --json line.
json_field() {
    python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print(d.get(sys.argv[2], 0))' "$1" "$2"
}

# run NAME PORT PID [PEERPID] [RATE] - one mxbench run (closed loop, or
# open loop at RATE msgs/s); prints one table row, keeps its rate in
# $WORK/last.rate.
run() {
    local name=$1 port=$2 pid=$3 peer=${4:-} rate=${5:-} out="$WORK/run.json" hz m0 m1 p0=0 p1=0
    local mode=(--messages 100000000)
    [ -n "$rate" ] && mode=(--rate "$rate")
    hz=$(getconf CLK_TCK)
    # shellcheck disable=SC2086
    m0=$(cpu_ticks "$pid"); [ -n "$peer" ] && p0=$(cpu_ticks $(tree "$peer"))
    "$BUILD/mxbench" --server "127.0.0.1:$port" --connections "$CONNS" "${mode[@]}" \
        --size 4096 --duration "$SECS" --json >"$out" 2>"$WORK/bench.err" || true
    json_field "$out" msgs_per_s >"$WORK/last.rate"
    # shellcheck disable=SC2086
    m1=$(cpu_ticks "$pid"); [ -n "$peer" ] && p1=$(cpu_ticks $(tree "$peer"))
    python3 - "$name" "$(json_field "$out" messages)" "$(json_field "$out" msgs_per_s)" \
        "$(json_field "$out" p99_us)" "$((m1 - m0))" "$((p1 - p0))" "$hz" \
        "$(json_field "$out" errors)" <<'PY'
import sys
name, msgs, rate, p99, mx, peer, hz, errors = sys.argv[1:]
msgs = max(int(float(msgs)), 1)
us = lambda ticks: int(ticks) * 1e6 / int(hz) / msgs
print("| %-20s | %8d | %9.1f | %8.2f | %12.1f | %11.1f | %6s |" %
      (name, msgs, float(rate), float(p99) / 1000, us(mx), us(peer), errors))
PY
}

MPORT=$(free_port)
python3 -c "
import sys, time
sys.path.insert(0, 'tests/e2e')
import milter_peer
p = milter_peer.MilterPeer()
open('$WORK/milter.port', 'w').write(str(p.port))
time.sleep(3600)" &
MILTERPID=$!
PIDS+=("$MILTERPID")
for _ in $(seq 100); do [ -s "$WORK/milter.port" ] && break; sleep 0.05; done
# Rspamd (and the dnsmasq it resolves through) in a loopback-only
# namespace; the helper writes "<socket> <rspamd pid>" or "skip <why>" and
# stops both on SIGTERM.
python3 - "$WORK/rspamd" "$WORK/rspamd.ready" <<'PY' 2>"$WORK/rspamd.err" &
import os, signal, sys, time, unittest
sys.path.insert(0, "tests/e2e")
import milter_real_peers as peers
folder, ready = sys.argv[1:]
os.makedirs(folder)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
ns = None
try:
    ns = peers.Netns()
    ns.assert_loopback_only()
    peers.Dnsmasq(ns, folder, {})
    r = peers.Rspamd(ns, folder)
    open(ready + ".tmp", "w").write("%s %d\n" % (r.sock, r.proc.pid))
    os.rename(ready + ".tmp", ready)
    time.sleep(3600)
except unittest.SkipTest as e:
    open(ready, "w").write("skip %s\n" % e)
finally:
    if ns:
        ns.close()
PY
RSPAMD_HELPER=$!
PIDS+=("$RSPAMD_HELPER")
DNSPORT=$(free_port)
dnsmasq --no-daemon --conf-file=/dev/null --port="$DNSPORT" --listen-address=127.0.0.1 \
    --bind-interfaces --no-resolv --no-hosts --user=root --group=root --pid-file= \
    --local=/bl.test/ --local=/wl.test/ 2>"$WORK/dnsmasq.err" &
PIDS+=("$!")

start_mxringd plain ""; PLAIN_PORT=$PORT; PLAIN_PID=$MXPID
start_mxringd milter "milters = py=inet:127.0.0.1:$(cat "$WORK/milter.port")\n"
MILTER_PORT=$PORT; MILTER_PID=$MXPID
start_mxringd dnsbl "dnsbl_sites = bl.test*3, wl.test*-2\ndns_servers = 127.0.0.1:$DNSPORT\ntrusted_networks = 192.0.2.1/32\n"
DNSBL_PORT=$PORT; DNSBL_PID=$MXPID
for _ in $(seq 600); do [ -s "$WORK/rspamd.ready" ] && break; sleep 0.1; done
read -r RSPAMD_SOCK RSPAMD_PID <"$WORK/rspamd.ready" || {
    say "rspamd did not start: $(cat "$WORK/rspamd.err")"; exit 1; }
if [ "$RSPAMD_SOCK" != skip ]; then
    start_mxringd rspamd "milters = rspamd=unix:$RSPAMD_SOCK\n"
    RSPAMD_MX_PORT=$PORT; RSPAMD_MX_PID=$MXPID
fi

echo "| run                  | messages |   msgs/s |  p99 ms | mxringd us/msg | peer us/msg | errors |"
echo "|---|---:|---:|---:|---:|---:|---:|"
run "plain" "$PLAIN_PORT" "$PLAIN_PID"
run "milter (python)" "$MILTER_PORT" "$MILTER_PID" "$MILTERPID"
PY_RATE=$(python3 -c "print(max(1, int(float('$(cat "$WORK/last.rate")'))))")
run "plain @ python rate" "$PLAIN_PORT" "$PLAIN_PID" "" "$PY_RATE"
if [ "$RSPAMD_SOCK" = skip ]; then
    say "Rspamd row skipped: $RSPAMD_PID"
else
    run "milter (rspamd)" "$RSPAMD_MX_PORT" "$RSPAMD_MX_PID" "$RSPAMD_PID"
    # the same rate without the milter: mxringd's CPU per message at equal
    # load (a slower closed loop batches less, which alone costs CPU)
    RSPAMD_RATE=$(python3 -c "print(max(1, int(float('$(cat "$WORK/last.rate")'))))")
    run "plain @ rspamd rate" "$PLAIN_PORT" "$PLAIN_PID" "" "$RSPAMD_RATE"
fi
run "plain" "$PLAIN_PORT" "$PLAIN_PID"
run "dnsbl (cache warm)" "$DNSBL_PORT" "$DNSBL_PID"
