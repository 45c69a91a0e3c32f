#!/bin/sh
# soak.sh MINUTES - steady load on a private mxringd with the receivelog on:
# mxbench for MINUTES one-minute rounds (20 connections, 4 KiB messages,
# connection per message); after each minute the server's resident memory,
# the round's errors and the queue size. Fails if any round had errors or if
# memory at the end is more than 10% (and 4 MiB) above the first minute's.
# The queue is emptied between rounds (a delivery agent would take it).
# Not part of make test. Loopback only.
set -eu
minutes=${1:?usage: scripts/soak.sh MINUTES}
top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/build/mxringd
bench=$top/build/mxbench
[ -x "$bin" ] && [ -x "$bench" ] || { echo "soak: run make bench-build first" >&2; exit 2; }
dir=$(mktemp -d /tmp/mxring-soak-XXXXXX)
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
mkdir -p "$dir/var/receivelog"
cat >"$dir/mxringd.conf" <<CONF
hostname = soak.test
listen = 127.0.0.1:$port
workdir = $dir/var
local_domains = example.test
max_sessions_per_ip = 0
CONF
"$bin" -c "$dir/mxringd.conf" 2>"$dir/stderr" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
sleep 1
rss() { awk '/^VmRSS/ {print $2}' /proc/$pid/status; }
first="" total_err=0
printf '%-6s %10s %10s %8s %10s\n' minute msgs/s rss_kib errors log_bytes
i=1
while [ "$i" -le "$minutes" ]; do
    out=$("$bench" --server "127.0.0.1:$port" --connections 20 --messages 100000000 \
        --size 4096 --duration 60 --json | tail -n 1)
    rate=$(echo "$out" | python3 -c 'import json,sys;print(json.load(sys.stdin)["msgs_per_s"])')
    errs=$(echo "$out" | python3 -c 'import json,sys;print(json.load(sys.stdin)["errors"])')
    find "$dir/var/queue/new" -type f -delete
    r=$(rss)
    logb=$(du -sb "$dir/var/receivelog" | cut -f1)
    [ -n "$first" ] || first=$r
    printf '%-6s %10s %10s %8s %10s\n' "$i" "$rate" "$r" "$errs" "$logb"
    total_err=$((total_err + errs))
    i=$((i + 1))
done
last=$(rss)
if [ "$total_err" -ne 0 ]; then echo "soak: FAILED: $total_err errors"; exit 1; fi
if [ "$last" -gt $((first + first / 10)) ] && [ "$last" -gt $((first + 4096)) ]; then
    echo "soak: FAILED: memory grew from $first KiB to $last KiB"; exit 1
fi
echo "soak: OK: $minutes minutes, zero errors, RSS $first KiB -> $last KiB"
