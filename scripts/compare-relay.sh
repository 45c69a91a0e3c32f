#!/bin/bash
# compare-relay.sh - end-to-end relay throughput, side by side in one run:
#   mxbench -> mxringd  -> smtp-sink     (delivery engine, issue 12)
#   mxbench -> Postfix (smtpd -> cleanup -> qmgr -> smtp) -> the same smtp-sink
# Same messages (4 KiB, reused connections), 20 and 200 sessions. Rate =
# messages / (first MAIL sent .. the sink holding the last one); the sink
# dumps every message into a tmpfs folder that is counted. Both queues live
# on tmpfs (/dev/shm), so neither is bound by the disk's fsync rate.
# Usage: scripts/compare-relay.sh [MESSAGES]   (default 3000 per row)
#   ONLY=mxringd|postfix   measure one side only
#   PERF=FILE              perf record -g mxringd during its rows (perf report -i FILE)
# Needs: build/mxringd, build/mxbench (make bench-build), postfix; root.
# Never leaves a Postfix or an smtp-sink running.
set -eu
N=${1:-3000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=/dev/shm/mxring-relay
PF=$WORK/postfix
PORT_SINK=27025 PORT_MX=27026 PORT_PF=27027
SINK_PID= MX_PID=

say() { echo "compare-relay: $*" >&2; }
die() { say "$*"; exit 1; }
# shellcheck source=lib/postfix-private.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/postfix-private.sh"

# cleanup - stop what this script started, keeping its exit code: set -e
# is off here, or the first failed wait (a killed child's 143) would end
# the shell before Postfix is stopped.
cleanup() {
    local rc=$?
    set +e
    [ -n "$MX_PID" ] && kill "$MX_PID" 2>/dev/null && wait "$MX_PID" 2>/dev/null
    [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null
    pfp_stop "$PF"
    rm -rf "$WORK"
    exit $rc
}
# A signal becomes an exit with the shell's code for it, so cleanup (the
# EXIT trap) runs on Ctrl-C and kill too.
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ "$(id -u)" = 0 ] || die "run as root (private Postfix instance)"
for b in mxringd mxbench; do
    [ -x "$ROOT/build/$b" ] || die "build/$b missing (make bench-build)"
done
command -v smtp-sink >/dev/null || die "postfix is not installed (scripts/deps.sh bench)"
rm -rf "$WORK"
mkdir -p "$WORK/sink" "$WORK/mx/var"
chmod 777 "$WORK/sink"

# wait_port - until something accepts on 127.0.0.1:$1 (10 s).
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    die "nothing listens on port $1"
}

# sink_count - messages the sink holds.
sink_count() { find "$WORK/sink" -type f | wc -l; }

smtp-sink -u postfix -m 1000 -d "$WORK/sink/%M." "127.0.0.1:$PORT_SINK" 1024 \
    >"$WORK/sink.log" 2>&1 &
SINK_PID=$!
wait_port $PORT_SINK

cat >"$WORK/mx/mxringd.conf" <<EOF
hostname = mx.test
listen = 127.0.0.1:$PORT_MX
workdir = $WORK/mx/var
local_domains = example.test
max_sessions = 2000
max_sessions_per_ip = 0
default_route = smtp:[127.0.0.1]:$PORT_SINK tls=none
relay_max_connections = 20
queue_min_free_space = 0
EOF
"$ROOT/build/mxringd" -c "$WORK/mx/mxringd.conf" >"$WORK/mx/stderr" 2>&1 &
MX_PID=$!
wait_port $PORT_MX

pfp_conf "$PF" $PORT_PF <<EOF
relay_transport = smtp:[127.0.0.1]:$PORT_SINK
default_transport = smtp:[127.0.0.1]:$PORT_SINK
smtp_tls_security_level = none
default_destination_concurrency_limit = 20
EOF
pfp_start "$PF" $PORT_PF "$WORK/postfix-start.log"

# row TARGET PORT SESSIONS - one measurement; prints "target sessions msgs/s".
row() {
    local before t0 t1 want
    before=$(sink_count)
    want=$((before + N))
    t0=$(date +%s.%N)
    "$ROOT/build/mxbench" --server "127.0.0.1:$2" --connections "$3" --messages "$N" \
        --size 4096 --reuse --pipelining >"$WORK/mxbench-$1-$3.txt" 2>&1 ||
        say "mxbench reported errors for $1 ($3 sessions): see $WORK/mxbench-$1-$3.txt"
    for _ in $(seq 1200); do
        [ "$(sink_count)" -ge "$want" ] && break
        sleep 0.05
    done
    t1=$(date +%s.%N)
    awk -v t="$1" -v s="$3" -v n="$N" -v a="$t0" -v b="$t1" -v got="$(( $(sink_count) - before ))" \
        'BEGIN { printf "%-8s %4d sessions  %6d delivered  %8.0f msgs/s end to end\n", t, s, got, got / (b - a) }'
}

echo "relay: $N messages of 4 KiB per row, reused connections, queues on tmpfs"
ONLY=${ONLY:-}
for s in 20 200; do
    [ "$ONLY" = mxringd ] || row postfix $PORT_PF $s
    if [ "$ONLY" != postfix ]; then
        PERF_PID=
        if [ -n "${PERF:-}" ]; then
            perf record -q -g -p "$MX_PID" -o "$PERF.$s" >/dev/null 2>&1 &
            PERF_PID=$!
            sleep 0.3
        fi
        row mxringd $PORT_MX $s
        if [ -n "$PERF_PID" ]; then kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null || true; fi
    fi
done
[ -z "${KEEP_STDERR:-}" ] || cp "$WORK/mx/stderr" "$KEEP_STDERR"
