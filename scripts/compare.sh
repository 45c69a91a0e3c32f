#!/bin/bash
# compare.sh - side by side, in one run on loopback (issue 7): a private
# Postfix instance (real smtpd, durable queue, discard transport), Postfix's
# smtp-sink (writes nothing: the protocol ceiling) and mxringd (durable
# queue), each driven with the same load by Postfix's smtp-source and by
# mxbench: one connection per message and reused connections, 4 KiB
# messages, 20 and 200 concurrent sessions. Then the resident memory of
# mxringd holding 10,000 idle sessions next to Postfix's cost per session.
# Prints the tables and writes them to bench/RESULTS.md (keeping its "TLS"
# section, which scripts/compare-tls.sh writes).
#
# Usage: scripts/compare.sh [--tls | --tls-only]
#        (as root; env: BUILD=build, COMPARE_SECONDS=5, COMPARE_IDLE=10000,
#        COMPARE_PF_IDLE=200, RESULTS=bench/RESULTS.md)
#        --tls: afterwards the STARTTLS comparison (scripts/compare-tls.sh);
#        --tls-only: only that.
# compare-tls.sh sources this file (COMPARE_SOURCED=1) for its functions.
# Needs postfix (scripts/deps.sh bench). Never leaves a Postfix listening
# on port 25: a system instance found running is stopped first.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
SECS=${COMPARE_SECONDS:-5}
IDLE=${COMPARE_IDLE:-10000}
PF_IDLE=${COMPARE_PF_IDLE:-200}
RESULTS=${RESULTS:-bench/RESULTS.md}
SIZE=4096
SESSIONS="20 200"
# Ports below the ephemeral range, so that no client socket can hold them.
PORT_PF=12625
PORT_SINK=12626
PORT_MX=12627
PORT_MXMEM=12628
WORK=/tmp/mxring-compare
PF_DIR=$WORK/postfix
MXB=$BUILD/mxbench
MXD=$BUILD/mxringd
TSV=$WORK/results.tsv
PIDS=()

# say - progress on stderr.
say() { echo "compare: $*" >&2; }

# die - stop with a reason.
die() { say "error: $*"; exit 1; }

# cleanup - stop everything this script started (by pid), and the private
# Postfix instance.
cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    [ -f "$PF_DIR/etc/main.cf" ] && postfix -c "$PF_DIR/etc" stop >/dev/null 2>&1
    stop_system_postfix
}
trap cleanup EXIT

# stop_system_postfix - a Postfix started by the package (default config)
# must not run, let alone listen on port 25.
stop_system_postfix() {
    if postfix -c /etc/postfix status >/dev/null 2>&1; then
        say "stopping the system Postfix (started by the package)"
        postfix -c /etc/postfix stop >/dev/null 2>&1 || true
    fi
}

# setup - tools, binaries, limits, a fresh work folder.
setup() {
    [ "$(id -u)" -eq 0 ] || die "run as root (Postfix needs it)"
    command -v smtp-source >/dev/null || scripts/deps.sh bench
    command -v smtp-source >/dev/null || die "postfix is not installed (scripts/deps.sh bench)"
    stop_system_postfix
    make --no-print-directory BUILD="$BUILD" "$MXD" "$MXB" >&2
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    [ "$(ulimit -n)" -gt $((IDLE + 100)) ] || die "ulimit -n $(ulimit -n) is too low for $IDLE sessions"
    for p in $PORT_PF $PORT_SINK $PORT_MX $PORT_MXMEM; do
        ! ss -Hltn "sport = :$p" | grep -q . || die "port $p is in use"
    done
    rm -rf "$WORK"
    mkdir -p "$WORK"
    : >"$TSV"
}

# wait_port - until something accepts on 127.0.0.1:$1 (10 s).
wait_port() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    die "nothing listens on port $1"
}

# postfix_conf - main.cf and master.cf of the private instance.
postfix_conf() {
    mkdir -p "$PF_DIR/etc" "$PF_DIR/data" "$PF_DIR/queue"
    chown postfix "$PF_DIR/data"
    cat >"$PF_DIR/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF_DIR/queue
data_directory = $PF_DIR/data
maillog_file = $PF_DIR/maillog
maillog_file_prefixes = /var, /dev/stdout, $WORK
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
default_transport = discard:benchmark
relay_transport = discard:benchmark
local_transport = discard:benchmark
alias_maps =
alias_database =
biff = no
default_process_limit = 1000
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
in_flow_delay = 0s
EOF
    cat >"$PF_DIR/etc/master.cf" <<EOF
127.0.0.1:$PORT_PF inet n - n - - smtpd
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
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    # The default main.cf must name the alternate directory and log prefix.
    touch /etc/postfix/main.cf
    local alt
    alt=$(postconf -c /etc/postfix -h alternate_config_directories)
    case " $alt " in
    *"$PF_DIR/etc"*) ;;
    *) postconf -c /etc/postfix -e "alternate_config_directories = ${alt:+$alt, }$PF_DIR/etc" ;;
    esac
}

# postfix_start - (re)start the private instance and wait for its smtpd.
postfix_start() {
    postfix -c "$PF_DIR/etc" stop >/dev/null 2>&1 || true
    postfix -c "$PF_DIR/etc" start >"$WORK/postfix-start.log" 2>&1 ||
        { cat "$WORK/postfix-start.log" >&2; die "postfix did not start"; }
    wait_port $PORT_PF
}

# postfix_drain - wait (at most 120 s) until the queue manager has
# discarded what the last run queued, so runs do not overlap.
postfix_drain() {
    local q=$PF_DIR/queue
    for _ in $(seq 240); do
        [ -z "$(find "$q/incoming" "$q/active" "$q/deferred" "$q/maildrop" -type f -print -quit 2>/dev/null)" ] && return 0
        sleep 0.5
    done
    say "warning: the Postfix queue did not drain within 120 s"
}

# mxringd_start PORT DIR MAX - an mxringd with its own workdir; pid in
# MX_PID. Lines in MX_EXTRA_CONF are added to its configuration.
mxringd_start() {
    mkdir -p "$2/var"
    cat >"$2/mxringd.conf" <<EOF
hostname = mx.test
listen = 127.0.0.1:$1
workdir = $2/var
workers = 0
local_domains = example.test
max_sessions = $3
${MX_EXTRA_CONF:-}
EOF
    "$MXD" -c "$2/mxringd.conf" >"$2/stderr.txt" 2>&1 &
    MX_PID=$!
    PIDS+=("$MX_PID")
    wait_port "$1"
}

# clear_queues - remove what the last run left in mxringd's queue/new (the
# files a delivery agent would take away), outside the timed runs.
clear_queues() {
    find "$WORK/mxringd/var/queue/new" -type f -delete 2>/dev/null || true
}

# timed OUT CMD... - run CMD; write its CPU seconds (user + system, from
# getrusage of the child) and wall seconds to OUT; exit status of CMD.
timed() {
    local out=$1
    shift
    python3 -c '
import resource, subprocess, sys, time
t = time.monotonic()
rc = subprocess.call(sys.argv[2:])
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write("%.3f %.3f\n" % (r.ru_utime + r.ru_stime, time.monotonic() - t))
sys.exit(rc)' "$out" "$@"
}

# cpu_per_msg FILE N - client CPU microseconds per message from timed's file.
cpu_per_msg() {
    python3 -c "import sys; c = float(open(sys.argv[1]).read().split()[0]); n = int(sys.argv[2]); print('%.0f' % (c * 1e6 / n) if n else '')" "$1" "$2"
}

# server_pid TARGET - the pid whose CPU time is the target's (none for the
# many-process Postfix).
server_pid() {
    case $1 in
    smtp-sink) echo "$SINK_PID" ;;
    mxringd) echo "$MX_PID" ;;
    esac
}

# proc_ticks PID - user + system clock ticks a process (all threads) used.
proc_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}

# busy_pct PID TICKS0 - CPU % of PID since TICKS0 over the wall time in
# $WORK/cpu (100 = one core); empty without a pid.
busy_pct() {
    [ -n "$1" ] || return 0
    python3 -c "import sys; t = float(open(sys.argv[1]).read().split()[1]); print('%.0f' % (($(proc_ticks "$1") - $2) / $(getconf CLK_TCK) / t * 100))" "$WORK/cpu"
}

# json_field LINE KEY - one number from the mxbench --json line.
json_field() {
    python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}

# run_mxbench TARGET PORT MODE N - one mxbench run for SECS seconds; appends
# a row to the TSV and sets LAST_RATE.
run_mxbench() {
    local target=$1 port=$2 mode=$3 n=$4 flags=""
    case $mode in
    reuse) flags="--reuse" ;;
    pipelined) flags="--reuse --pipelining" ;;
    esac
    local out line spid t0=0
    spid=$(server_pid "$target")
    [ -n "$spid" ] && t0=$(proc_ticks "$spid")
    out=$(timed "$WORK/cpu" "$MXB" --server "127.0.0.1:$port" --connections "$n" --size $SIZE \
        --duration "$SECS" --json $flags 2>&1) || true
    line=$(printf '%s\n' "$out" | tail -n 1)
    case $line in
    '{'*) ;;
    *) printf '%s\n' "$out" >&2; die "mxbench gave no result against $target" ;;
    esac
    LAST_RATE=$(json_field "$line" msgs_per_s)
    local msgs
    msgs=$(json_field "$line" messages)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" mxbench "$mode" "$n" \
        "$msgs" "$LAST_RATE" "$(json_field "$line" p99_us)" \
        "$(json_field "$line" errors)" "$(cpu_per_msg "$WORK/cpu" "$msgs")" \
        "$(busy_pct "$spid" "$t0")" >>"$TSV"
    say "$(printf '%-9s mxbench     %-9s %3s sessions: %8s msgs/s p99 %s us errors %s' \
        "$target" "$mode" "$n" "$LAST_RATE" "$(json_field "$line" p99_us)" "$(json_field "$line" errors)")"
}

# run_source TARGET PORT MODE N RATE - smtp-source with a message count
# that takes about SECS seconds at the rate mxbench saw; no latency figures.
run_source() {
    local target=$1 port=$2 mode=$3 n=$4 rate=$5 flags=""
    [ "$mode" = reuse ] && flags="-d"
    local m rc=0 spid t0=0
    spid=$(server_pid "$target")
    [ -n "$spid" ] && t0=$(proc_ticks "$spid")
    m=$(python3 -c "print(max(500, min(200000, int(float('$rate') * $SECS))))")
    timed "$WORK/cpu" timeout $((SECS * 20 + 60)) smtp-source -s "$n" -m "$m" -l $SIZE $flags \
        -f bench@mxbench.test -t rcpt1@example.test -M client.test \
        "127.0.0.1:$port" >"$WORK/smtp-source.log" 2>&1 || rc=$?
    local r
    r=$(python3 -c "import sys; print('%.1f' % ($m / float(open(sys.argv[1]).read().split()[1])))" "$WORK/cpu")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" smtp-source "$mode" "$n" "$m" "$r" "" \
        "$([ $rc -eq 0 ] && echo 0 || echo "rc=$rc")" "$(cpu_per_msg "$WORK/cpu" "$m")" \
        "$(busy_pct "$spid" "$t0")" >>"$TSV"
    say "$(printf '%-9s smtp-source %-9s %3s sessions: %8s msgs/s (rc %s)' "$target" "$mode" "$n" "$r" "$rc")"
}

# between - settle the targets before the next run.
between() {
    postfix_drain
    clear_queues
    sleep 1
}

# load_runs - the whole load matrix, each target with the same load.
load_runs() {
    local n mode target port
    for n in $SESSIONS; do
        for mode in per-message reuse pipelined; do
            for target in postfix smtp-sink mxringd; do
                case $target in
                postfix) port=$PORT_PF ;;
                smtp-sink) port=$PORT_SINK ;;
                mxringd) port=$PORT_MX ;;
                esac
                between
                run_mxbench "$target" "$port" "$mode" "$n"
                [ "$mode" = pipelined ] && continue  # smtp-source cannot pipeline
                between
                run_source "$target" "$port" "$mode" "$n" "$LAST_RATE"
            done
        done
    done
}

# holder PORT N OUT - a background client holding N idle sessions (banner
# read, then silent) until killed; writes "ready N" to OUT. Pid in HOLDER_PID.
holder() {
    python3 - "$1" "$2" >"$3" 2>&1 <<'EOF' &
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    socks.append(s)
for s in socks:
    if not s.recv(512).startswith(b"220"):
        sys.exit("no banner")
print("ready", len(socks), flush=True)
time.sleep(3600)
EOF
    HOLDER_PID=$!
    PIDS+=("$HOLDER_PID")
    for _ in $(seq 1200); do
        grep -q ready "$3" 2>/dev/null && return 0
        kill -0 "$HOLDER_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$3" >&2
    die "could not hold $2 idle sessions on port $1"
}

# mem_kib PID FIELD - Rss or Pss of a process in KiB (smaps_rollup).
mem_kib() {
    awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0
}

# tree_kib FIELD - Rss or Pss summed over the private Postfix's processes.
tree_kib() {
    local master sum=0 pid
    master=$(head -n 1 "$PF_DIR/queue/pid/master.pid" 2>/dev/null | tr -d ' ')
    for pid in $master $(pgrep -P "$master"); do
        sum=$((sum + $(mem_kib "$pid" "$1")))
    done
    echo $sum
}

# memory_runs - bytes per idle session: mxringd (fresh instance, RSS) and
# Postfix (whole instance, RSS and PSS; one smtpd per session).
memory_runs() {
    local d=$WORK/mxringd-mem before after
    mxringd_start $PORT_MXMEM "$d" $((IDLE + 1000))
    sleep 1
    before=$(mem_kib "$MX_PID" Rss)
    holder $PORT_MXMEM "$IDLE" "$WORK/holder-mx.txt"
    sleep 2
    after=$(mem_kib "$MX_PID" Rss)
    kill "$HOLDER_PID"
    MEM_MX="$IDLE	$before	$after"
    say "mxringd: RSS ${before} KiB -> ${after} KiB with $IDLE idle sessions"
    kill "$MX_PID"

    postfix_start
    sleep 2
    local rb pb ra pa nsmtpd
    rb=$(tree_kib Rss)
    pb=$(tree_kib Pss)
    holder $PORT_PF "$PF_IDLE" "$WORK/holder-pf.txt"
    sleep 2
    ra=$(tree_kib Rss)
    pa=$(tree_kib Pss)
    nsmtpd=$(pgrep -P "$(head -n 1 "$PF_DIR/queue/pid/master.pid" | tr -d ' ')" -x smtpd | wc -l)
    kill "$HOLDER_PID"
    MEM_PF="$PF_IDLE	$rb	$ra	$pb	$pa	$nsmtpd"
    say "postfix: RSS ${rb} -> ${ra} KiB, PSS ${pb} -> ${pa} KiB with $PF_IDLE idle sessions ($nsmtpd smtpd)"
}

# machine - one line describing where this ran.
machine() {
    local cpu commit
    cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
    commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && commit="$commit (with local changes)"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)" \
        "$(uname -r)" "$cpu" "$commit" "$(postconf -h mail_version)"
}

# report - the Markdown tables from the TSV, onto stdout and into RESULTS.
report() {
    python3 - "$TSV" "$SECS" "$SIZE" "$MEM_MX" "$MEM_PF" "$(machine)" \
        "$(cut -d' ' -f1-3 /proc/loadavg)" >"$WORK/RESULTS.md" <<'EOF'
import sys
tsv, secs, size, mem_mx, mem_pf, mach, load = sys.argv[1:8]
date, cores, kernel, cpu, commit, pfver = mach.split("\t")
rows = {}
order = []
for line in open(tsv):
    target, client, mode, n, msgs, rate, p99, err, cpu_us, busy = line.rstrip("\n").split("\t")
    key = (client, mode, int(n))
    if key not in rows:
        rows[key] = {}
        order.append(key)
    rows[key][target] = (float(rate), float(p99) if p99 else None, err, int(msgs),
                         int(cpu_us) if cpu_us else None, busy or None)

def cell(v):
    if v is None:
        return "missing"
    rate, p99, err, msgs, _, _ = v
    s = "%.0f" % rate
    if err not in ("0", ""):
        s += " (errors: %s)" % err
    return s

def ms(v):
    return "%.1f" % (v[1] / 1000) if v and v[1] is not None else "n/a"

def ratio(a, b, key=0):
    if not a or not b or not b[key] or a[key] is None:
        return "n/a"
    return "%.2f" % (a[key] / b[key])

out = []
w = out.append
w("# mxring benchmark results")
w("")
w("Written by `scripts/compare.sh` (issue 7); every figure below comes from one run of it.")
w("")
w("| | |")
w("|---|---|")
w("| date | %s |" % date)
w("| machine | %s cores, %s |" % (cores, cpu))
w("| kernel | %s |" % kernel)
w("| commit | %s |" % commit)
w("| Postfix | %s |" % pfver)
w("| load average at the end | %s |" % load)
w("")
w("Everything on loopback (127.0.0.1), client and servers on the same %s cores. Messages of "
  "%s octets (mxbench: headers + body; smtp-source `-l %s`: body, plus its few headers), one "
  "recipient. Each mxbench run lasts %s s (`--duration`); smtp-source sends the number of "
  "messages mxbench managed in that time against the same target and is timed from the outside "
  "(it reports no latency). p99 is mxbench's whole-transaction latency, MAIL sent to 250 after "
  "the data." % (cores, size, size, secs))
w("")
w("- **Postfix**: a private instance (own config and queue under /tmp), real `smtpd`, `cleanup` "
  "writes and fsyncs the queue file before `250`; `discard` transport for all mail; "
  "`in_flow_delay = 0`, no per-client connection limits, `default_process_limit = 1000`.")
w("- **smtp-sink**: Postfix's test server, which stores nothing: the protocol ceiling.")
w("- **mxringd**: workers = one per core, durable queue (fdatasync + rename + directory fsync "
  "before `250`); queue/new emptied between runs.")
w("- Modes: `per-message` = one connection per message (QUIT, new connection); `reuse` = many "
  "messages per connection; `pipelined` = reuse plus MAIL/RCPT/DATA in one write (mxbench only: "
  "smtp-source cannot pipeline).")
w("")
w("## Throughput (msgs/s) and p99 latency (ms)")
w("")
w("| client | mode | sessions | Postfix msgs/s | Postfix p99 | smtp-sink msgs/s | smtp-sink p99 "
  "| mxringd msgs/s | mxringd p99 | mxringd / Postfix | mxringd / smtp-sink | p99 mxringd / Postfix |")
w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for key in order:
    client, mode, n = key
    r = rows[key]
    pf, sk, mx = r.get("postfix"), r.get("smtp-sink"), r.get("mxringd")
    w("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        client, mode, n, cell(pf), ms(pf), cell(sk), ms(sk), cell(mx), ms(mx),
        ratio(mx, pf), ratio(mx, sk), ratio(mx, pf, 1)))
w("")
w("Generator check (issue 7: against smtp-sink, mxbench must beat smtp-source). smtp-sink is "
  "one single-threaded process: when it is busy near 100 % of a core, the rate is its ceiling, "
  "whichever client drives it, and the rates differ by the noise of the machine. The client's "
  "own CPU time per message (user + system, getrusage) says which generator is cheaper:")
w("")
w("| mode | sessions | smtp-source msgs/s | mxbench msgs/s | mxbench / smtp-source "
  "| smtp-sink CPU % (smtp-source / mxbench) | smtp-source CPU us/msg | mxbench CPU us/msg |")
w("|---|---:|---:|---:|---:|---:|---:|---:|")
for key in order:
    client, mode, n = key
    if client != "mxbench" or mode == "pipelined":
        continue
    a = rows[key].get("smtp-sink")
    b = rows.get(("smtp-source", mode, n), {}).get("smtp-sink")
    w("| %s | %d | %s | %s | %s | %s / %s | %s | %s |" % (mode, n, cell(b), cell(a), ratio(a, b),
        b[5] if b else "n/a", a[5] if a else "n/a", b[4] if b else "n/a", a[4] if a else "n/a"))
w("")
n_mx, rb, ra = mem_mx.split("\t")
n_pf, prb, pra, ppb, ppa, nsmtpd = mem_pf.split("\t")
per_mx = (int(ra) - int(rb)) * 1024 / int(n_mx)
per_pf_rss = (int(pra) - int(prb)) * 1024 / int(n_pf)
per_pf_pss = (int(ppa) - int(ppb)) * 1024 / int(n_pf)
w("## Memory per idle session")
w("")
w("Idle = connected, banner read, nothing sent. RSS/PSS from /proc/PID/smaps_rollup, before and "
  "after opening the sessions, divided by the number of sessions.")
w("")
w("| server | idle sessions | before | after | bytes per session |")
w("|---|---:|---:|---:|---:|")
w("| mxringd (one process, RSS) | %s | %s KiB | %s KiB | %.0f |" % (n_mx, rb, ra, per_mx))
w("| Postfix, whole instance, RSS (%s smtpd processes) | %s | %s KiB | %s KiB | %.0f |" % (
    nsmtpd, n_pf, prb, pra, per_pf_rss))
w("| Postfix, whole instance, PSS (shared pages split) | %s | %s KiB | %s KiB | %.0f |" % (
    n_pf, ppb, ppa, per_pf_pss))
w("")
w("Kernel socket buffers are not counted on either side.")
w("")
w("## Goals (issue 7) and where we stand")
w("")
g = []
for key in order:
    r = rows[key]
    if key[0] != "mxbench" or "postfix" not in r or "mxringd" not in r:
        continue
    g.append((key, r["mxringd"][0] / r["postfix"][0] if r["postfix"][0] else 0,
              r["mxringd"][0] / r["smtp-sink"][0] if r.get("smtp-sink") and r["smtp-sink"][0] else 0,
              r["mxringd"][1] is not None and r["postfix"][1] is not None and r["mxringd"][1] < r["postfix"][1]))
if g:
    lo_pf = min(x[1] for x in g); hi_pf = max(x[1] for x in g)
    lo_sk = min(x[2] for x in g); hi_sk = max(x[2] for x in g)
    p99_ok = sum(1 for x in g if x[3])
    w("| goal | measured (mxbench rows) | met |")
    w("|---|---|---|")
    w("| durable msgs/s at least 10x Postfix smtpd | %.2fx .. %.2fx | %s |" % (
        lo_pf, hi_pf, "yes" if lo_pf >= 10 else "no"))
    w("| msgs/s at least equal to smtp-sink | %.2fx .. %.2fx | %s |" % (
        lo_sk, hi_sk, "yes" if lo_sk >= 1 else "no"))
    w("| p99 below Postfix's | in %d of %d rows | %s |" % (p99_ok, len(g),
        "yes" if p99_ok == len(g) else "no"))
    w("| under 16 KiB per idle session | %.0f bytes | %s |" % (per_mx,
        "yes" if per_mx < 16384 else "no"))
print("\n".join(out))
EOF
    cat "$WORK/RESULTS.md"
    section_merge "$WORK/RESULTS.md" "$RESULTS" "## TLS" >"$WORK/RESULTS.merged"
    cp "$WORK/RESULTS.merged" "$RESULTS"
    say "written to $RESULTS"
}

# section_merge DOC SRC HEADING - DOC with its section HEADING (from that
# line to the next "## " heading) replaced by the one found in SRC, which is
# a whole results file or just the section; dropped when SRC has none.
section_merge() {
    python3 - "$@" <<'EOF'
import os, sys
doc, src, head = sys.argv[1:4]

def split(lines):
    """(lines outside the section, the section's lines)."""
    out, sec, inside = [], [], False
    for ln in lines:
        if ln.startswith("## "):
            inside = ln.startswith(head)
        (sec if inside else out).append(ln)
    return out, sec

base, _ = split(open(doc).read().splitlines() if os.path.exists(doc) else [])
_, sec = split(open(src).read().splitlines() if os.path.exists(src) else [])
while base and not base[-1].strip():
    base.pop()
while sec and not sec[-1].strip():
    sec.pop()
print("\n".join(base + ([""] + sec if sec and base else sec)))
EOF
}

main() {
    local t0=$SECONDS tls=no
    case ${1:-} in
    --tls) tls=yes ;;
    --tls-only) exec "$ROOT/scripts/compare-tls.sh" ;;
    '') ;;
    *) die "usage: scripts/compare.sh [--tls | --tls-only]" ;;
    esac
    setup
    postfix_conf
    postfix_start
    smtp-sink -u postfix -m 1000 "127.0.0.1:$PORT_SINK" 1024 >"$WORK/smtp-sink.log" 2>&1 &
    SINK_PID=$!
    PIDS+=("$SINK_PID")
    wait_port $PORT_SINK
    mxringd_start $PORT_MX "$WORK/mxringd" 5000
    load_runs
    kill "$MX_PID"
    memory_runs
    report
    say "done in $((SECONDS - t0)) s"
    if [ $tls = yes ]; then
        cleanup
        PIDS=()
        "$ROOT/scripts/compare-tls.sh"
    fi
}

[ -n "${COMPARE_SOURCED:-}" ] || main "$@"
