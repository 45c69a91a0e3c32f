#!/bin/bash
# compare-relay.sh - end-to-end relay throughput, side by side in one run:
#   mxbench -> mxringd  -> smtp-sink     (delivery engine, issue 12)
#   mxbench -> Postfix (smtpd -> cleanup -> qmgr -> smtp) -> the same smtp-sink
# Same messages (4 KiB, reused connections), 20 and 200 sessions. Rate =
# messages / (first MAIL sent .. the sink holding the last one); the sink
# dumps every message into a tmpfs folder that is counted. Both queues live
# on tmpfs (/dev/shm), so neither is bound by the disk's fsync rate.
# Then one open-loop row per side at half its measured peak (mxbench --rate,
# HALF_S seconds of it, default 5) with the queue delay p50/p99/max, accept -> at the
# sink: mxringd's from its own exit line (a fresh mxringd for that row, so
# the line covers it alone; queue id time = first byte of DATA, to the
# sink's 2xx), Postfix's from the delay= of its maillog's status=sent lines
# of that row (arrival = cleanup's queue file, at MAIL; logged to 1 ms).
# Usage: scripts/compare-relay.sh [MESSAGES]   (default 3000 per row)
#   ONLY=mxringd|postfix   measure one side only
#   PERF=FILE              perf record -g mxringd during its rows (perf report -i FILE)
#   HALF_S=S               length of the half-rate rows (default 5 s)
#   MXRINGD=PATH           the mxringd to measure (default build/mxringd)
# Needs: build/mxringd, build/mxbench (make bench-build), postfix; root.
# Never leaves a Postfix or an smtp-sink running.
set -eu
N=${1:-3000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MXRINGD=${MXRINGD:-$ROOT/build/mxringd}
WORK=
SINK_PID= MX_PID=

say() { echo "compare-relay: $*" >&2; }
die() { say "$*"; exit 1; }
# shellcheck source=lib/postfix-private.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/postfix-private.sh"

# port_free P - nothing accepts on 127.0.0.1:P.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# cleanup - stop what this script started, keeping its exit code: set -e
# is off here, or the first failed wait (a killed child's 143) would end
# the shell before Postfix is stopped and the folder removed.
cleanup() {
    local rc=$?
    set +e
    [ -n "$MX_PID" ] && kill "$MX_PID" 2>/dev/null && wait "$MX_PID" 2>/dev/null
    [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null
    [ -n "$WORK" ] && pfp_stop "$PF"
    [ -z "$WORK" ] || rm -rf "$WORK"
    exit $rc
}
# A signal becomes an exit with the shell's code for it, so cleanup (the
# EXIT trap) runs on Ctrl-C and kill too.
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ "$(id -u)" = 0 ] || die "run as root (private Postfix instance)"
[ -x "$MXRINGD" ] || die "$MXRINGD missing (make)"
[ -x "$ROOT/build/mxbench" ] || die "build/mxbench missing (make bench-build)"
command -v smtp-sink >/dev/null || die "postfix is not installed (scripts/deps.sh bench)"
# three ports and a folder of this run alone (another run may be going on:
# mkdir takes the folder atomically; a fixed name per base keeps Postfix's
# alternate_config_directories list short)
for base in $(seq 27025 100 29925); do
    PORT_SINK=$base PORT_MX=$((base + 1)) PORT_PF=$((base + 2))
    port_free $PORT_SINK && port_free $PORT_MX && port_free $PORT_PF &&
        mkdir "/dev/shm/mxring-relay-$base" 2>/dev/null && WORK=/dev/shm/mxring-relay-$base && break
done
[ -n "$WORK" ] || die "no free ports/folder /dev/shm/mxring-relay-27025..29925"
PF=$WORK/postfix
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
# mx_start NAME - mxringd in the background, stderr in $WORK/mx/stderr.NAME.
mx_start() {
    "$MXRINGD" -c "$WORK/mx/mxringd.conf" >"$WORK/mx/stderr.$1" 2>&1 &
    MX_PID=$!
    wait_port $PORT_MX
}

# mx_stop - SIGTERM and wait: its exit lines are in its stderr file then.
mx_stop() {
    kill -TERM "$MX_PID" 2>/dev/null || true
    wait "$MX_PID" 2>/dev/null || true
    MX_PID=
}
mx_start peak

pfp_conf "$PF" $PORT_PF <<EOF
relay_transport = smtp:[127.0.0.1]:$PORT_SINK
default_transport = smtp:[127.0.0.1]:$PORT_SINK
smtp_tls_security_level = none
default_destination_concurrency_limit = 20
delay_logging_resolution_limit = 3
EOF
pfp_start "$PF" $PORT_PF "$WORK/postfix-start.log"

# wait_sink WANT - until the sink holds WANT messages (60 s at most).
wait_sink() {
    for _ in $(seq 1200); do
        [ "$(sink_count)" -ge "$1" ] && break
        sleep 0.05
    done
}

declare -A PEAK=([postfix]=0 [mxringd]=0)

# row TARGET PORT SESSIONS - one closed-loop measurement; prints "target
# sessions msgs/s" and keeps the best rate of TARGET in PEAK.
row() {
    local before t0 t1 rate
    before=$(sink_count)
    t0=$(date +%s.%N)
    "$ROOT/build/mxbench" --server "127.0.0.1:$2" --connections "$3" --messages "$N" \
        --size 4096 --reuse --pipelining >"$WORK/mxbench-$1-$3.txt" 2>&1 ||
        say "mxbench reported errors for $1 ($3 sessions): see $WORK/mxbench-$1-$3.txt"
    wait_sink $((before + N))
    t1=$(date +%s.%N)
    rate=$(awk -v n="$(($(sink_count) - before))" -v a="$t0" -v b="$t1" \
        'BEGIN { printf "%.0f", n / (b - a) }')
    printf "%-8s %4d sessions  %6d delivered  %8d msgs/s end to end\n" "$1" "$3" \
        "$(($(sink_count) - before))" "$rate"
    [ "$rate" -le "${PEAK[$1]}" ] || PEAK[$1]=$rate
}

# pct P - the P-th percentile (0 < P <= 100) of the numbers on stdin, by
# rank ceil(P * n / 100) like mxringd's exit line; "-" when none.
pct() {
    sort -g | awk -v p="$1" '{ v[NR] = $1 }
        END { if (!NR) { print "-"; exit } r = int((p * NR + 99) / 100); if (r < 1) r = 1;
              print v[r] }'
}

# pf_delays FROM WANT - the delay= (seconds) of Postfix's status=sent lines
# past byte FROM of its maillog, once WANT of them are there (10 s at most:
# postlogd trails the delivery).
pf_delays() {
    for _ in $(seq 200); do
        [ "$(tail -c +$(($1 + 1)) "$PF/maillog" | grep -c ' status=sent ')" -ge "$2" ] && break
        sleep 0.05
    done
    tail -c +$(($1 + 1)) "$PF/maillog" | grep ' status=sent ' |
        sed -n 's/.* delay=\([0-9.]*\),.*/\1/p'
}

# ms - seconds on stdin as milliseconds ("-" stays).
ms() { awk '{ if ($1 == "-") print "-"; else printf "%.1f\n", $1 * 1000 }'; }

# half TARGET PORT - open loop at half TARGET's peak for HALF_S seconds:
# the rate reached and the queue delay p50/p99/max in ms.
half() {
    local rate=$((PEAK[$1] / 2)) n before off t0 t1 got p50 p99 max line
    n=$((rate * ${HALF_S:-5}))
    [ "$rate" -gt 0 ] && [ "$n" -gt 0 ] || { say "no peak for $1: half-rate row skipped"; return; }
    before=$(sink_count)
    off=$(stat -c %s "$PF/maillog" 2>/dev/null || echo 0)
    [ "$1" = postfix ] || { mx_stop; mx_start half; }
    t0=$(date +%s.%N)
    "$ROOT/build/mxbench" --server "127.0.0.1:$2" --rate "$rate" --messages "$n" \
        --connections 100 --size 4096 --reuse --pipelining >"$WORK/mxbench-$1-half.txt" 2>&1 ||
        say "mxbench reported errors for $1 (half rate): see $WORK/mxbench-$1-half.txt"
    wait_sink $((before + n))
    t1=$(date +%s.%N)
    got=$(($(sink_count) - before))
    if [ "$1" = postfix ]; then
        pf_delays "$off" "$n" >"$WORK/pf-delays.txt"
        p50=$(pct 50 <"$WORK/pf-delays.txt" | ms)
        p99=$(pct 99 <"$WORK/pf-delays.txt" | ms)
        max=$(pct 100 <"$WORK/pf-delays.txt" | ms)
    else
        mx_stop
        line=$(grep 'queue delay (queue id to 2xx)' "$WORK/mx/stderr.half" || true)
        p50=$(sed -n 's/.* p50 \([0-9.]*\) ms.*/\1/p' <<<"$line")
        p99=$(sed -n 's/.* p99 \([0-9.]*\) ms.*/\1/p' <<<"$line")
        max=$(sed -n 's/.* max \([0-9.]*\) ms.*/\1/p' <<<"$line")
    fi
    printf "%-8s half rate %6d/s  %6d delivered  %8.0f msgs/s  queue delay p50 %s ms  p99 %s ms  max %s ms\n" \
        "$1" "$rate" "$got" "$(awk -v n="$got" -v a="$t0" -v b="$t1" 'BEGIN { print n / (b - a) }')" \
        "${p50:--}" "${p99:--}" "${max:--}"
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
[ -z "${KEEP_STDERR:-}" ] || cp "$WORK/mx/stderr.peak" "$KEEP_STDERR"
[ "$ONLY" = mxringd ] || half postfix $PORT_PF
[ "$ONLY" = postfix ] || half mxringd $PORT_MX
