#!/bin/bash
# compare.sh - side by side, in one run on loopback (issues 7 and 11): a
# private Postfix instance (real smtpd, durable queue, discard transport),
# Postfix's smtp-sink (writes nothing: the protocol ceiling), mxringd (durable
# queue on this machine's disk) and the same mxringd binary with its workdir
# on tmpfs (/dev/shm: no disk cost, the ceiling of our own code), each driven
# with the same load by Postfix's smtp-source and by mxbench: one connection
# per message, reused connections and pipelining, 4 KiB messages, 20 and 200
# concurrent sessions; then 100 KiB and 1 MiB messages (mxbench, reuse, 20
# sessions). For every run also the servers' CPU time per message
# (/proc/PID/stat) and the block device's flushes per message for the
# durable targets (/proc/diskstats "flushes completed": a proxy for
# fdatasyncs that also sees the ones io_uring submits). Then the resident
# memory of mxringd holding 10,000 idle sessions next to Postfix's cost per
# session. Prints the tables and writes them to bench/RESULTS.md, keeping
# every section it does not write itself (the "TLS" section, which
# scripts/compare-tls.sh writes, "Milters" from scripts/compare-milter.sh,
# and the hand-written ones such as "Where the time goes"). Also the group-commit batch-size and latency
# histograms from mxringd's exit lines.
#
# Usage: scripts/compare.sh [--tls | --tls-only | --quick]
#        (as root; env: BUILD=build, COMPARE_SECONDS=5, COMPARE_IDLE=10000,
#        COMPARE_PF_IDLE=200, RESULTS=bench/RESULTS.md)
#        --tls: afterwards the STARTTLS comparison (scripts/compare-tls.sh);
#        --tls-only: only that;
#        --quick: a check that the script works, in about a minute: one mode
#        (reuse, 20 sessions) with 2,000 messages per run, the size rows
#        with 200, no memory runs; prints the tables and writes them to
#        /tmp/mxring-compare/RESULTS.md only (bench/RESULTS.md is left alone).
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
MODES="per-message reuse pipelined"
BIG_SIZES="102400 1048576"   # the size rows: mxbench, reuse, 20 sessions
QUICK=""                     # --quick: messages per run instead of SECS
# Ports below the ephemeral range, so that no client socket can hold them.
PORT_PF=12625
PORT_SINK=12626
PORT_MX=12627
PORT_MXMEM=12628
PORT_MXT=12629
WORK=/tmp/mxring-compare
SHM_WORK=/dev/shm/mxring-compare
PF_DIR=$WORK/postfix
MXB=$BUILD/mxbench
MXD=$BUILD/mxringd
TSV=$WORK/results.tsv
PIDS=()

# shellcheck source=lib/postfix-private.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/postfix-private.sh"

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
    pfp_stop "$PF_DIR"
    stop_system_postfix
    if [ -d "$WORK/consumed" ]; then
        say "deleting the runs' queue files; on a file system like this one (ext4 without a" \
            "journal) new files are slower for the next 6 minutes: wait that long before" \
            "another run"
    fi
    rm -rf "$SHM_WORK" "$WORK/consumed"
}
# A signal becomes an exit with the shell's code for it, so cleanup (the
# EXIT trap) runs on Ctrl-C and kill too.
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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
    for p in $PORT_PF $PORT_SINK $PORT_MX $PORT_MXMEM $PORT_MXT; do
        ! ss -Hltn "sport = :$p" | grep -q . || die "port $p is in use"
    done
    [ "$(stat -f -c %T /dev/shm)" = tmpfs ] || die "/dev/shm is not a tmpfs"
    rm -rf "$WORK" "$SHM_WORK"
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

# postfix_conf - main.cf and master.cf of the private instance
# (scripts/lib/postfix-private.sh): everything is discarded after cleanup.
postfix_conf() {
    pfp_conf "$PF_DIR" $PORT_PF <<EOF
default_transport = discard:benchmark
relay_transport = discard:benchmark
local_transport = discard:benchmark
EOF
}

# postfix_start - (re)start the private instance and wait for its smtpd.
postfix_start() {
    pfp_start "$PF_DIR" $PORT_PF "$WORK/postfix-start.log"
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

# clear_queues - take away what the last run left in mxringd's queue/new
# (the files a delivery agent would take), outside the timed runs. On tmpfs
# they are deleted. On the disk the folder is renamed aside (a fresh new/ in
# its place) and deleted only at the end: this machine's root file system is
# ext4 without a journal, whose inode allocator skips every inode freed in
# the last 60-360 s (fs/ext4/ialloc.c recently_deleted), so deleting the
# tens of thousands of files of one run made each file creation of the next
# runs scan them (measured on a fresh no-journal ext4: 20 us CPU per create,
# 57 us after 10,000 deletes; 110-150 us on this root file system), which
# is the benchmark harness's cost, not the server's. The folder is taken
# once the materializer has written the run's backlog (the count of files
# steady for half a second, at most 30 s), so that the next run starts
# without it.
clear_queues() {
    find "$SHM_WORK/var/queue/new" -type f -delete 2>/dev/null || true
    local q=$WORK/mxringd/var/queue n=-1 was i
    for i in $(seq 60); do
        was=$n
        n=$(find "$q/new" -maxdepth 1 -type f 2>/dev/null | wc -l)
        [ "$n" = "$was" ] && break
        sleep 0.5
    done
    if [ -d "$q/new" ] && [ -n "$(find "$q/new" -type f -print -quit)" ]; then
        mkdir -p "$WORK/consumed"
        mv "$q/new" "$WORK/consumed/new.$SECONDS.$RANDOM"
        mkdir -m 0750 "$q/new"
    fi
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
    mxringd-tmpfs) echo "$MXT_PID" ;;
    esac
}

# target_port TARGET - the port a target listens on.
target_port() {
    case $1 in
    postfix) echo $PORT_PF ;;
    smtp-sink) echo $PORT_SINK ;;
    mxringd) echo $PORT_MX ;;
    mxringd-tmpfs) echo $PORT_MXT ;;
    esac
}

# target_dev TARGET - "major minor" of the block device under a durable
# target's queue; empty for the others and for file systems without one
# (tmpfs, overlay: anonymous device numbers have major 0).
target_dev() {
    local dir
    case $1 in
    postfix) dir=$PF_DIR/queue ;;
    mxringd) dir=$WORK/mxringd/var ;;
    *) return 0 ;;
    esac
    python3 -c 'import os, sys
d = os.stat(sys.argv[1]).st_dev
if os.major(d): print(os.major(d), os.minor(d))' "$dir"
}

# dev_flushes DEV - flush requests the device "major minor" completed
# (/proc/diskstats field 16 after the name, kernel >= 5.5); empty if unknown.
dev_flushes() {
    [ -n "$1" ] || return 0
    awk -v M="${1% *}" -v m="${1#* }" '$1 == M && $2 == m && NF >= 19 {print $19}' /proc/diskstats
}

# per_msg DELTA N - DELTA / N with two decimals; empty without a DELTA.
per_msg() {
    [ -n "$1" ] || return 0
    python3 -c "import sys; n = int(sys.argv[2]); print('%.2f' % (float(sys.argv[1]) / n) if n else '')" "$1" "$2"
}

# server_cpu_us PID TICKS0 N - CPU microseconds (user + system, all
# threads) the server spent per message since TICKS0; empty without a pid.
server_cpu_us() {
    [ -n "$1" ] || return 0
    python3 -c "import sys; n = int(sys.argv[1]); print('%.0f' % (($(proc_ticks "$1") - $2) * 1e6 / $(getconf CLK_TCK) / n) if n else '')" "$3"
}

# background_flushes - flushes per second on mxringd's device with nothing
# of ours running (other work on the machine), over 3 s; in BG_FLUSHES.
background_flushes() {
    local dev f0
    dev=$(target_dev mxringd)
    f0=$(dev_flushes "$dev")
    sleep 3
    BG_FLUSHES=""
    [ -n "$f0" ] && BG_FLUSHES=$(per_msg $(($(dev_flushes "$dev") - f0)) 3)
    say "background: ${BG_FLUSHES:-n/a} device flushes/s"
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

# run_mxbench TARGET PORT MODE N [SIZE [COUNT]] - one mxbench run for SECS
# seconds (COUNT messages when given, or with --quick); appends a row to the
# TSV and sets LAST_RATE.
run_mxbench() {
    local target=$1 port=$2 mode=$3 n=$4 size=${5:-$SIZE} count=${6:-$QUICK} flags=""
    case $mode in
    reuse) flags="--reuse" ;;
    pipelined) flags="--reuse --pipelining" ;;
    esac
    local length="--duration $SECS"
    [ -n "$count" ] && length="--messages $count"
    local out line spid t0=0 dev f0
    spid=$(server_pid "$target")
    dev=$(target_dev "$target")
    f0=$(dev_flushes "$dev")
    [ -n "$spid" ] && t0=$(proc_ticks "$spid")
    # shellcheck disable=SC2086
    out=$(timed "$WORK/cpu" "$MXB" --server "127.0.0.1:$port" --connections "$n" --size "$size" \
        $length --json $flags 2>&1) || true
    line=$(printf '%s\n' "$out" | tail -n 1)
    case $line in
    '{'*) ;;
    *) printf '%s\n' "$out" >&2; die "mxbench gave no result against $target" ;;
    esac
    LAST_RATE=$(json_field "$line" msgs_per_s)
    local msgs flushes="" scpu
    msgs=$(json_field "$line" messages)
    [ -n "$f0" ] && flushes=$(per_msg $(($(dev_flushes "$dev") - f0)) "$msgs")
    scpu=$(server_cpu_us "$spid" "$t0" "$msgs")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" mxbench "$mode" "$n" \
        "$msgs" "$LAST_RATE" "$(json_field "$line" p99_us)" \
        "$(json_field "$line" errors)" "$(cpu_per_msg "$WORK/cpu" "$msgs")" \
        "$(busy_pct "$spid" "$t0")" "$size" "$scpu" "$flushes" >>"$TSV"
    say "$(printf '%-13s mxbench     %-9s %3s sessions %7s B: %8s msgs/s p99 %s us errors %s, server %s us/msg, %s flushes/msg' \
        "$target" "$mode" "$n" "$size" "$LAST_RATE" "$(json_field "$line" p99_us)" \
        "$(json_field "$line" errors)" "${scpu:-n/a}" "${flushes:-n/a}")"
}

# run_source TARGET PORT MODE N RATE - smtp-source with a message count
# that takes about SECS seconds at the rate mxbench saw; no latency figures.
run_source() {
    local target=$1 port=$2 mode=$3 n=$4 rate=$5 flags=""
    [ "$mode" = reuse ] && flags="-d"
    local m rc=0 spid t0=0 dev f0
    spid=$(server_pid "$target")
    dev=$(target_dev "$target")
    f0=$(dev_flushes "$dev")
    [ -n "$spid" ] && t0=$(proc_ticks "$spid")
    m=$(python3 -c "print(max(500, min(200000, int(float('$rate') * $SECS))))")
    [ -n "$QUICK" ] && m=$QUICK
    timed "$WORK/cpu" timeout $((SECS * 20 + 60)) smtp-source -s "$n" -m "$m" -l $SIZE $flags \
        -f bench@mxbench.test -t rcpt1@example.test -M client.test \
        "127.0.0.1:$port" >"$WORK/smtp-source.log" 2>&1 || rc=$?
    local r
    r=$(python3 -c "import sys; print('%.1f' % ($m / float(open(sys.argv[1]).read().split()[1])))" "$WORK/cpu")
    local flushes="" scpu
    [ -n "$f0" ] && flushes=$(per_msg $(($(dev_flushes "$dev") - f0)) "$m")
    scpu=$(server_cpu_us "$spid" "$t0" "$m")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" smtp-source "$mode" "$n" "$m" "$r" "" \
        "$([ $rc -eq 0 ] && echo 0 || echo "rc=$rc")" "$(cpu_per_msg "$WORK/cpu" "$m")" \
        "$(busy_pct "$spid" "$t0")" "$SIZE" "$scpu" "$flushes" >>"$TSV"
    say "$(printf '%-13s smtp-source %-9s %3s sessions: %8s msgs/s (rc %s), server %s us/msg, %s flushes/msg' \
        "$target" "$mode" "$n" "$r" "$rc" "${scpu:-n/a}" "${flushes:-n/a}")"
}

# between - settle the targets before the next run.
between() {
    postfix_drain
    clear_queues
    sleep 1
}

TARGETS="postfix smtp-sink mxringd mxringd-tmpfs"

# load_runs - the whole load matrix, each target with the same load.
load_runs() {
    local n mode target port
    for n in $SESSIONS; do
        for mode in $MODES; do
            for target in $TARGETS; do
                port=$(target_port "$target")
                between
                run_mxbench "$target" "$port" "$mode" "$n"
                [ "$mode" = pipelined ] && continue  # smtp-source cannot pipeline
                between
                run_source "$target" "$port" "$mode" "$n" "$LAST_RATE"
            done
        done
    done
}

# size_runs - larger messages: mxbench, reused connections, 20 sessions.
size_runs() {
    local size target
    for size in $BIG_SIZES; do
        for target in $TARGETS; do
            between
            run_mxbench "$target" "$(target_port "$target")" reuse 20 "$size" "${QUICK:+200}"
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

# report - the Markdown tables from the TSV, onto stdout and into RESULTS
# (with --quick: into $WORK/RESULTS.md only).
report() {
    python3 - "$TSV" "$SECS" "$SIZE" "${MEM_MX:-}" "${MEM_PF:-}" "$(machine)" \
        "$(cut -d' ' -f1-3 /proc/loadavg)" "${BG_FLUSHES:-}" "$QUICK" "${LOAD0:-}" \
        "$WORK/mxringd/stderr.txt" "$SHM_WORK/stderr.txt" >"$WORK/RESULTS.md" <<'EOF'
import re, sys
tsv, secs, size, mem_mx, mem_pf, mach, load, bg_flushes, quick, load0, err_mx, err_mt = sys.argv[1:13]
size = int(size)
date, cores, kernel, cpu, commit, pfver = mach.split("\t")
TARGETS = ("postfix", "smtp-sink", "mxringd", "mxringd-tmpfs")
rows = {}
order = []
for line in open(tsv):
    (target, client, mode, n, msgs, rate, p99, err, cpu_us, busy, msize, scpu,
     flushes) = line.rstrip("\n").split("\t")
    key = (client, mode, int(n), int(msize))
    if key not in rows:
        rows[key] = {}
        order.append(key)
    rows[key][target] = {"rate": float(rate), "p99": float(p99) if p99 else None, "err": err,
                         "msgs": int(msgs), "cpu": int(cpu_us) if cpu_us else None,
                         "busy": busy or None, "scpu": scpu or None, "flushes": flushes or None}
main_rows = [k for k in order if k[3] == size]
size_rows = sorted((k for k in order if k[0] == "mxbench" and k[1] == "reuse" and k[2] == 20),
                   key=lambda k: k[3])

def cell(v):
    if v is None:
        return "missing"
    s = "%.0f" % v["rate"]
    if v["err"] not in ("0", ""):
        s += " (errors: %s)" % v["err"]
    return s

def ms(v):
    return "%.1f" % (v["p99"] / 1000) if v and v["p99"] is not None else "n/a"

def ratio(a, b, f="rate"):
    if not a or not b or not b[f] or a[f] is None:
        return "n/a"
    return "%.2f" % (a[f] / b[f])

def field(v, f):
    return v[f] if v and v.get(f) is not None else "n/a"

def octets(n):
    return "%d KiB" % (n >> 10) if n < 1 << 20 else "%d MiB" % (n >> 20)

out = []
w = out.append
w("# mxring benchmark results")
w("")
w("Written by `scripts/compare.sh` (issues 7 and 11); every figure below comes from one run of it%s." % (
  " (`--quick`: %s messages per run, one mode: a check of the script, not a measurement)" % quick
  if quick else ""))
w("")
w("| | |")
w("|---|---|")
w("| date | %s |" % date)
w("| machine | %s cores, %s |" % (cores, cpu))
w("| kernel | %s |" % kernel)
w("| commit | %s |" % commit)
w("| Postfix | %s |" % pfver)
w("| load average at the start | %s |" % (load0 or "n/a"))
w("| load average at the end | %s |" % load)
w("")
w("Everything on loopback (127.0.0.1), client and servers on the same %s cores. Messages of "
  "%s octets (mxbench: headers + body; smtp-source `-l %s`: body, plus its few headers), one "
  "recipient. %s; smtp-source is timed from the outside (it reports no latency). p99 is "
  "mxbench's whole-transaction latency, MAIL sent to 250 after the data." % (
      cores, size, size, "Each mxbench and smtp-source run sends %s messages" % quick if quick
      else "Each mxbench run lasts %s s (`--duration`); smtp-source sends the number of "
      "messages mxbench managed in that time against the same target" % secs))
w("")
w("- **Postfix**: a private instance (own config and queue under /tmp), real `smtpd`, `cleanup` "
  "writes and fsyncs the queue file before `250`; `discard` transport for all mail; "
  "`in_flow_delay = 0`, no per-client connection limits, `default_process_limit = 1000`.")
w("- **smtp-sink**: Postfix's test server, which stores nothing: the protocol ceiling.")
w("- **mxringd**: workers = one per core, durable queue on this machine's disk (everything "
  "acknowledged is on disk before `250`: the per-worker journal, group commit); queue/new taken "
  "away between runs (renamed aside and deleted at the end: see clear_queues in the script).")
w("- **mxringd tmpfs**: the same binary and configuration with its workdir on /dev/shm: the "
  "same work without the disk's cost, the ceiling of our own code.")
w("- Modes: `per-message` = one connection per message (QUIT, new connection); `reuse` = many "
  "messages per connection; `pipelined` = reuse plus MAIL/RCPT/DATA in one write (mxbench only: "
  "smtp-source cannot pipeline).")
w("")
w("## Throughput (msgs/s) and p99 latency (ms)")
w("")
w("| client | mode | sessions | Postfix msgs/s | Postfix p99 | smtp-sink msgs/s | smtp-sink p99 "
  "| mxringd msgs/s | mxringd p99 | mxringd tmpfs msgs/s | mxringd tmpfs p99 | mxringd / Postfix "
  "| mxringd / smtp-sink | mxringd / tmpfs | p99 mxringd / Postfix |")
w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for key in main_rows:
    client, mode, n, _ = key
    pf, sk, mx, mt = (rows[key].get(t) for t in TARGETS)
    w("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        client, mode, n, cell(pf), ms(pf), cell(sk), ms(sk), cell(mx), ms(mx), cell(mt), ms(mt),
        ratio(mx, pf), ratio(mx, sk), ratio(mx, mt), ratio(mx, pf, "p99")))
w("")
if size_rows:
    w("## Message size (mxbench, reused connections, 20 sessions)")
    w("")
    w("| size | Postfix msgs/s | smtp-sink msgs/s | mxringd msgs/s | mxringd MiB/s | mxringd p99 "
      "| mxringd tmpfs msgs/s | mxringd tmpfs p99 | mxringd / Postfix | mxringd / tmpfs |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key in size_rows:
        pf, sk, mx, mt = (rows[key].get(t) for t in TARGETS)
        w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            octets(key[3]), cell(pf), cell(sk), cell(mx),
            "%.1f" % (mx["rate"] * key[3] / 2**20) if mx else "n/a", ms(mx), cell(mt), ms(mt),
            ratio(mx, pf), ratio(mx, mt)))
    w("")
w("## Cost per message: server CPU and device flushes")
w("")
w("Server CPU: user + system time of the server process, all threads (/proc/PID/stat, clock "
  "ticks of %s ms), over the run, divided by its messages; none for the many-process Postfix. "
  "Device flushes: the \"flushes completed\" count of the block device under the queue "
  "(/proc/diskstats, kernel >= 5.5) over the run, divided by its messages: a proxy for "
  "fdatasyncs and journal commits that also sees the ones io_uring submits (strace and perf's "
  "syscall events do not). The device is shared with everything else on the machine, which "
  "flushed %s times per second with none of our servers running, at the start." % (
      "10", bg_flushes or "n/a"))
w("")
w("| client | mode | sessions | size | mxringd CPU us/msg | mxringd tmpfs CPU us/msg "
  "| smtp-sink CPU us/msg | mxringd flushes/msg | Postfix flushes/msg |")
w("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for key in order:
    client, mode, n, msize = key
    pf, sk, mx, mt = (rows[key].get(t) for t in TARGETS)
    w("| %s | %s | %d | %s | %s | %s | %s | %s | %s |" % (
        client, mode, n, octets(msize), field(mx, "scpu"), field(mt, "scpu"), field(sk, "scpu"),
        field(mx, "flushes"), field(pf, "flushes")))
w("")
w("Generator check (issue 7: against smtp-sink, mxbench must beat smtp-source). smtp-sink is "
  "one single-threaded process: when it is busy near 100 % of a core, the rate is its ceiling, "
  "whichever client drives it, and the rates differ by the noise of the machine. The client's "
  "own CPU time per message (user + system, getrusage) says which generator is cheaper:")
w("")
w("| mode | sessions | smtp-source msgs/s | mxbench msgs/s | mxbench / smtp-source "
  "| smtp-sink CPU % (smtp-source / mxbench) | smtp-source CPU us/msg | mxbench CPU us/msg |")
w("|---|---:|---:|---:|---:|---:|---:|---:|")
for key in main_rows:
    client, mode, n, msize = key
    if client != "mxbench" or mode == "pipelined":
        continue
    a = rows[key].get("smtp-sink")
    b = rows.get(("smtp-source", mode, n, msize), {}).get("smtp-sink")
    w("| %s | %d | %s | %s | %s | %s / %s | %s | %s |" % (mode, n, cell(b), cell(a), ratio(a, b),
        field(b, "busy"), field(a, "busy"), field(b, "cpu"), field(a, "cpu")))
w("")
def journal_lines(path):
    """mxringd's exit lines about its journal (counters over all its runs)."""
    try:
        return [ln.strip() for ln in open(path) if ln.startswith("mxringd: journal:")]
    except OSError:
        return []

def hist_table(label, lines):
    """A row for the batch-size and latency histograms from the exit lines."""
    text = " ".join(lines)
    m = re.search(r"(\d+) writes, (\d+) fdatasyncs; commits per fdatasync ((?:\S+:\d+ ?)+)", text)
    lat = re.search(r"synced write latency mean (\d+) us;((?: \S+:\d+)*)", text)
    if not m:
        return
    buckets = [kv.split(":") for kv in m.group(3).split()]
    mid = {"0": 0, "1": 1, "2-3": 2.5, "4-7": 5.5, "8-15": 11.5, "16-31": 23.5,
           "32-63": 47.5, "64+": 64}
    syncs = int(m.group(2))
    commits = sum(int(v) * mid[k] for k, v in buckets)
    w("| %s | %s | %s | %s | %s | %s |" % (
        label, syncs, " ".join("%s:%s" % (k, v) for k, v in buckets),
        "%.1f" % (commits / syncs) if syncs else "n/a",
        lat.group(1) if lat else "n/a", lat.group(2).strip() if lat else "n/a"))

jl_mx, jl_mt = journal_lines(err_mx), journal_lines(err_mt)
if jl_mx or jl_mt:
    w("## Group commit: batch sizes and latency")
    w("")
    w("From each mxringd instance's exit lines, summed over all the runs it served (all modes and "
      "sizes above). A batch is one synced journal write (a write and a linked fdatasync on "
      "the worker's journal ring); its latency is submission to completion as the worker sees "
      "it. The mean commits per batch uses each bucket's middle.")
    w("")
    w("| instance | synced batches | commits per batch (histogram) | mean commits per batch "
      "| mean latency us | latency histogram (bucket upper bound: batches) |")
    w("|---|---:|---|---:|---:|---|")
    hist_table("mxringd (disk)", jl_mx)
    hist_table("mxringd tmpfs", jl_mt)
    w("")
per_mx = None
if mem_mx and mem_pf:
    n_mx, rb, ra = mem_mx.split("\t")
    n_pf, prb, pra, ppb, ppa, nsmtpd = mem_pf.split("\t")
    per_mx = (int(ra) - int(rb)) * 1024 / int(n_mx)
    per_pf_rss = (int(pra) - int(prb)) * 1024 / int(n_pf)
    per_pf_pss = (int(ppa) - int(ppb)) * 1024 / int(n_pf)
    w("## Memory per idle session")
    w("")
    w("Idle = connected, banner read, nothing sent. RSS/PSS from /proc/PID/smaps_rollup, before "
      "and after opening the sessions, divided by the number of sessions.")
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
w("## Goals (issues 7 and 11) and where we stand")
w("")
w("Over the %s-octet rows of the throughput table (both clients unless said)." % size)
w("")

def goal(name, keys, num, den, f="rate", need=None, below=False):
    """One line: the ratio num/den over keys, met when every one reaches need
    (or, with below, when num's figure is below den's in every row)."""
    vals = []
    for k in keys:
        a, b = rows[k].get(num), rows[k].get(den)
        if a and b and a[f] is not None and b[f]:
            vals.append(a[f] / b[f])
    if not vals:
        return
    if below:
        ok = sum(1 for v in vals if v < 1)
        w("| %s | in %d of %d rows | %s |" % (name, ok, len(vals), "yes" if ok == len(vals) else "no"))
    else:
        w("| %s | %.2fx .. %.2fx | %s |" % (name, min(vals), max(vals),
                                           "yes" if min(vals) >= need else "no"))

w("| goal | measured | met |")
w("|---|---|---|")
goal("durable msgs/s at least 10x Postfix smtpd, every row", main_rows, "mxringd", "postfix",
     need=10)
goal("durable at least 0.8x the tmpfs row, every row (issue 11)", main_rows, "mxringd",
     "mxringd-tmpfs", need=0.8)
goal("msgs/s at least equal to smtp-sink, reuse and pipelined (issue 11)",
     [k for k in main_rows if k[1] in ("reuse", "pipelined")], "mxringd", "smtp-sink", need=1)
goal("msgs/s at least equal to smtp-sink, every mxbench row (issue 7)",
     [k for k in main_rows if k[0] == "mxbench"], "mxringd", "smtp-sink", need=1)
goal("p99 below Postfix's (mxbench rows)", [k for k in main_rows if k[0] == "mxbench"],
     "mxringd", "postfix", f="p99", below=True)
if per_mx is not None:
    w("| under 16 KiB per idle session | %.0f bytes | %s |" % (per_mx,
        "yes" if per_mx < 16384 else "no"))
print("\n".join(out))
EOF
    cat "$WORK/RESULTS.md"
    if [ -n "$QUICK" ]; then
        say "--quick: written to $WORK/RESULTS.md only"
        return 0
    fi
    sections_keep "$WORK/RESULTS.md" "$RESULTS" >"$WORK/RESULTS.merged"
    cp "$WORK/RESULTS.merged" "$RESULTS"
    say "written to $RESULTS"
}

# sections_keep DOC OLD - DOC followed by every "## " section of OLD whose
# heading DOC does not have, in OLD's order: the sections written by hand
# ("Where the time goes", an A/B) or by the other compare scripts (TLS,
# Milters, HAProxy, relay) survive a new run; the generated ones are
# replaced.
sections_keep() {
    python3 - "$@" <<'EOF'
import os, sys
doc, old = sys.argv[1:3]

def sections(lines):
    """[(heading or None for the preamble, lines)]."""
    out = [(None, [])]
    for ln in lines:
        if ln.startswith("## "):
            out.append((ln, []))
        out[-1][1].append(ln)
    return out

def strip(lines):
    while lines and not lines[-1].strip():
        lines.pop()
    return lines

new = sections(open(doc).read().splitlines())
have = {h for h, _ in new}
keep = [] if not os.path.exists(old) else \
    [sec for h, sec in sections(open(old).read().splitlines()) if h and h not in have]
parts = [strip(list(sec)) for _, sec in new] + [strip(list(sec)) for sec in keep]
print("\n\n".join("\n".join(p) for p in parts if p))
EOF
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
    --quick)
        QUICK=2000
        SESSIONS=20
        MODES=reuse
        ;;
    '') ;;
    *) die "usage: scripts/compare.sh [--tls | --tls-only | --quick]" ;;
    esac
    LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
    setup
    postfix_conf
    postfix_start
    smtp-sink -u postfix -m 1000 "127.0.0.1:$PORT_SINK" 1024 >"$WORK/smtp-sink.log" 2>&1 &
    SINK_PID=$!
    PIDS+=("$SINK_PID")
    wait_port $PORT_SINK
    mxringd_start $PORT_MXT "$SHM_WORK" 5000
    MXT_PID=$MX_PID
    mxringd_start $PORT_MX "$WORK/mxringd" 5000
    background_flushes
    load_runs
    size_runs
    kill "$MX_PID" "$MXT_PID"
    wait "$MX_PID" "$MXT_PID" 2>/dev/null || true
    [ -n "$QUICK" ] || memory_runs
    report
    say "done in $((SECONDS - t0)) s"
    if [ $tls = yes ]; then
        cleanup
        PIDS=()
        "$ROOT/scripts/compare-tls.sh"
    fi
}

[ -n "${COMPARE_SOURCED:-}" ] || main "$@"
