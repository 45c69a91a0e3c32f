#!/bin/bash
# compare-tls.sh - STARTTLS side by side, in one run on loopback (issue 5):
# a private Postfix instance (real smtpd with smtpd_tls_security_level = may,
# durable queue, discard transport) and mxringd (tls_cert/tls_key, durable
# queue), both with the same throwaway EC P-256 certificate from
# scripts/gen-test-cert.sh, driven by mxbench --starttls (BoringSSL client,
# no session resumption: every connection is a full handshake):
#   (a) handshakes/s: one connection per message, 20 and 200 sessions;
#   (b) msgs/s over STARTTLS on reused connections, 20 sessions.
# Prints the tables and writes them as the "TLS" section of bench/RESULTS.md
# (the other sections are kept). Reuses the functions of compare.sh.
#
# Usage: scripts/compare-tls.sh, or scripts/compare.sh --tls / --tls-only
#        (as root; env: BUILD=build, COMPARE_TLS_SECONDS=10,
#        RESULTS=bench/RESULTS.md). About 2 minutes.
set -euo pipefail

COMPARE_SOURCED=1
# shellcheck source=scripts/compare.sh
. "$(dirname "$0")/compare.sh"

SECS=${COMPARE_TLS_SECONDS:-10}
TLS_SESSIONS="20 200"
REUSE_SESSIONS=20
PORT_PF=12635
PORT_SINK=12636     # unused here (no smtp-sink: it has no TLS)
PORT_MX=12637
PORT_MXMEM=12638    # unused here
WORK=/tmp/mxring-compare-tls
PF_DIR=$WORK/postfix
TSV=$WORK/tls.tsv
CERTS=$WORK/certs

# say - progress on stderr.
say() { echo "compare-tls: $*" >&2; }

# tls_certs - a fresh test CA and server certificate (EC P-256).
tls_certs() {
    scripts/gen-test-cert.sh "$CERTS" ec
}

# postfix_tls_conf - the private Postfix of compare.sh plus STARTTLS (and
# its tlsmgr service); no session cache, as for mxringd.
postfix_tls_conf() {
    postfix_conf
    cat >>"$PF_DIR/etc/main.cf" <<EOF
smtpd_tls_cert_file = $CERTS/cert.pem
smtpd_tls_key_file = $CERTS/key.pem
smtpd_tls_security_level = may
smtpd_tls_loglevel = 0
smtpd_tls_session_cache_database =
EOF
    echo "tlsmgr    unix  -       -       n       1000?   1       tlsmgr" >>"$PF_DIR/etc/master.cf"
}

# run_tls TARGET PORT MODE N - one mxbench --starttls run for SECS seconds;
# appends a row to the TSV.
run_tls() {
    local target=$1 port=$2 mode=$3 n=$4 flags=""
    [ "$mode" = reuse ] && flags="--reuse"
    local out line spid t0=0
    spid=$(server_pid "$target")
    [ -n "$spid" ] && t0=$(proc_ticks "$spid")
    out=$(timed "$WORK/cpu" "$MXB" --server "127.0.0.1:$port" --connections "$n" --size $SIZE \
        --duration "$SECS" --starttls --json $flags 2>&1) || true
    line=$(printf '%s\n' "$out" | tail -n 1)
    case $line in
    '{'*) ;;
    *) printf '%s\n' "$out" >&2; die "mxbench gave no result against $target" ;;
    esac
    # One TSV row: target mode n, the JSON fields, client CPU us per
    # handshake, server CPU %.
    python3 - "$line" "$target" "$mode" "$n" "$(cat "$WORK/cpu")" "$(busy_pct "$spid" "$t0")" \
        >>"$TSV" <<'EOF'
import json, sys
j = json.loads(sys.argv[1])
cpu = float(sys.argv[5].split()[0])
keys = ("messages", "msgs_per_s", "p99_us", "handshakes", "handshakes_per_s",
        "handshake_p50_us", "handshake_p99_us", "errors", "tls")
cpu_hs = "%.0f" % (cpu * 1e6 / j["handshakes"]) if j["handshakes"] else ""
print("\t".join(sys.argv[2:5] + [str(j[k]) for k in keys] + [cpu_hs, sys.argv[6]]))
EOF
    say "$(tail -n 1 "$TSV" | awk -F'\t' -v t=$SECONDS '{printf "%-8s %-11s %3s sessions: %8s msgs/s %8s handshakes/s p99 %s us errors %s (at %s s)", $1, $2, $3, $5, $8, $6, $11, t}')"
}

# tls_runs - (a) per-message at TLS_SESSIONS, (b) reuse at REUSE_SESSIONS;
# Postfix and mxringd alternately, each with the same load.
tls_runs() {
    local n target
    for n in $TLS_SESSIONS; do
        for target in postfix mxringd; do
            between
            run_tls $target "$([ $target = postfix ] && echo $PORT_PF || echo $PORT_MX)" per-message "$n"
        done
    done
    for target in postfix mxringd; do
        between
        run_tls $target "$([ $target = postfix ] && echo $PORT_PF || echo $PORT_MX)" reuse $REUSE_SESSIONS
    done
}

# tls_report - the TLS section from the TSV, onto stdout and into RESULTS
# (replacing its previous TLS section, keeping the rest).
tls_report() {
    python3 - "$TSV" "$SECS" "$SIZE" "$(machine)" "$LOAD0" "$(cut -d' ' -f1-3 /proc/loadavg)" \
        >"$WORK/TLS.md" <<'EOF'
import sys
tsv, secs, size, mach, load0, load = sys.argv[1:7]
date, cores, kernel, cpu, commit, pfver = mach.split("\t")
rows = {}
for line in open(tsv):
    f = line.rstrip("\n").split("\t")
    rows[(f[0], f[1], int(f[2]))] = dict(
        msgs=int(f[3]), rate=float(f[4]), p99=float(f[5]), hs=int(f[6]), hs_rate=float(f[7]),
        hs_p50=float(f[8]), hs_p99=float(f[9]), err=f[10], tls=f[11], cpu=f[12], busy=f[13])

def num(r, k, fmt="%.0f", scale=1.0):
    if r is None:
        return "missing"
    s = fmt % (r[k] / scale)
    if r["err"] != "0":
        s += " (errors: %s)" % r["err"]
    return s

def ratio(a, b, k):
    return "%.2f" % (a[k] / b[k]) if a and b and b[k] else "n/a"

out = []
w = out.append
w("## TLS (STARTTLS, issue 5)")
w("")
w("Written by `scripts/compare-tls.sh` (`scripts/compare.sh --tls`); every figure below comes "
  "from one run of it, which may be a different run from the sections above.")
w("")
w("| | |")
w("|---|---|")
w("| date | %s |" % date)
w("| machine | %s cores, %s |" % (cores, cpu))
w("| kernel | %s |" % kernel)
w("| commit | %s |" % commit)
w("| Postfix | %s (OpenSSL) |" % pfver)
w("| load average at the start / end | %s / %s |" % (load0, load))
tls = sorted({r["tls"] for r in rows.values() if r["tls"]})
w("| negotiated | %s |" % (", ".join(tls) or "nothing"))
w("")
w("Same loopback setup as above: the private Postfix (`smtpd_tls_security_level = may`, no "
  "TLS session cache, `tlsmgr` running) and mxringd (`tls_cert`/`tls_key`, one worker per "
  "core), both with the same EC P-256 certificate from `scripts/gen-test-cert.sh`, both "
  "writing durably before `250`. The client is mxbench `--starttls` (BoringSSL over memory "
  "BIOs in its io_uring loop): EHLO, STARTTLS, a full handshake (no session cache, no "
  "tickets: no resumption), EHLO again, then the messages of %s octets; it does not verify "
  "the certificate. Each run lasts %s s. Handshake latency: ClientHello sent to handshake "
  "done at the client; p99: MAIL sent to `250` after the data. Other work on the machine "
  "(see the load average) moves the absolute figures from run to run: compare the two "
  "servers within one run." % (size, secs))
w("")
w("### (a) Handshakes per second: one connection (one full handshake) per message")
w("")
w("| sessions | Postfix handshakes/s | Postfix handshake p50 / p99 ms | Postfix msg p99 ms "
  "| mxringd handshakes/s | mxringd handshake p50 / p99 ms | mxringd msg p99 ms "
  "| mxringd / Postfix | mxbench CPU us/handshake (Postfix / mxringd) | mxringd CPU % |")
w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for n in sorted({k[2] for k in rows if k[1] == "per-message"}):
    pf, mx = rows.get(("postfix", "per-message", n)), rows.get(("mxringd", "per-message", n))
    hs = lambda r: ("%.1f / %.1f" % (r["hs_p50"] / 1000, r["hs_p99"] / 1000)) if r else "n/a"
    w("| %d | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s |" % (
        n, num(pf, "hs_rate"), hs(pf), num(pf, "p99", "%.1f", 1000), num(mx, "hs_rate"), hs(mx),
        num(mx, "p99", "%.1f", 1000), ratio(mx, pf, "hs_rate"), pf["cpu"] if pf else "n/a",
        mx["cpu"] if mx else "n/a", mx["busy"] if mx else "n/a"))
w("")
w("### (b) Messages per second over STARTTLS on reused connections")
w("")
w("| sessions | Postfix msgs/s | Postfix p99 ms | mxringd msgs/s | mxringd p99 ms "
  "| mxringd / Postfix | p99 mxringd / Postfix |")
w("|---:|---:|---:|---:|---:|---:|---:|")
for n in sorted({k[2] for k in rows if k[1] == "reuse"}):
    pf, mx = rows.get(("postfix", "reuse", n)), rows.get(("mxringd", "reuse", n))
    w("| %d | %s | %s | %s | %s | %s | %s |" % (
        n, num(pf, "rate"), num(pf, "p99", "%.1f", 1000), num(mx, "rate"),
        num(mx, "p99", "%.1f", 1000), ratio(mx, pf, "rate"), ratio(mx, pf, "p99")))
print("\n".join(out))
EOF
    cat "$WORK/TLS.md"
    section_merge "$RESULTS" "$WORK/TLS.md" "## TLS" >"$WORK/RESULTS.merged"
    cp "$WORK/RESULTS.merged" "$RESULTS"
    say "TLS section written to $RESULTS"
}

# tls_main - set up both servers with TLS, measure, report.
tls_main() {
    local t0=$SECONDS
    LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
    setup
    tls_certs
    postfix_tls_conf
    postfix_start
    MX_EXTRA_CONF="tls_cert = $CERTS/cert.pem
tls_key = $CERTS/key.pem"
    mxringd_start $PORT_MX "$WORK/mxringd" 5000
    tls_runs
    tls_report
    say "done in $((SECONDS - t0)) s"
}

tls_main "$@"
