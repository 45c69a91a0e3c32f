#!/usr/bin/env python3
"""mxbench_cpu.py - the generator's own cost (issue 19), against Postfix's
smtp-sink on loopback: CPU time per message of mxbench and of Postfix's
smtp-source at the same rate, and the highest constant rate one mxbench
thread holds at most 80 % of a core. CPU is utime + stime from
/proc/PID/stat, read when the process has exited but is not reaped yet.
Runs about a minute. Usage: bench/mxbench_cpu.py [build/mxbench]"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from mxbench_peers import SmtpSink  # noqa: E402

MXB = sys.argv[1] if len(sys.argv) > 1 else "build/mxbench"
TICK = os.sysconf("SC_CLK_TCK")
SIZE = 4096


def run_cpu(cmd):
    """Run cmd; (wall seconds, CPU seconds, stdout)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.read()
    os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)
    wall = time.monotonic() - t0
    with open("/proc/%d/stat" % p.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    p.wait()
    return wall, (int(fields[11]) + int(fields[12])) / TICK, out.decode(errors="replace")


def smtp_source(port, n, reuse, sessions):
    cmd = ["smtp-source", "-s", str(sessions), "-m", str(n), "-l", str(SIZE), "-f", "bench@mxbench.test",
           "-t", "rcpt1@example.test", "-M", "client.test"] + (["-d"] if reuse else [])
    return run_cpu(cmd + ["127.0.0.1:%d" % port])


def mxbench(port, rate, secs, reuse, extra=()):
    cmd = [MXB, "--server", "127.0.0.1:%d" % port, "--rate", str(rate), "--duration", str(secs),
           "--size", str(SIZE), "--connections", "200", "--threads", "1"]
    cmd += ["--reuse"] if reuse else []
    wall, cpu, out = run_cpu(cmd + list(extra) + ["--json"])
    import json
    return wall, cpu, json.loads(out.strip().splitlines()[-1])


def compare(port, reuse, n, sessions):
    """smtp-source with that many sessions as fast as it goes, then mxbench
    open loop at the rate smtp-source reached."""
    wall, cpu, _ = smtp_source(port, n, reuse, sessions)
    rate = n / wall
    mwall, mcpu, res = mxbench(port, int(rate), n / rate, reuse)
    print("%-11s s=%-2d smtp-source %6d msgs %6.0f/s %6.1f us/msg | mxbench --rate %d: %6d msgs "
          "%6.0f/s %6.1f us/msg p99 %.0f us | ratio %.2f" % (
              "reuse" if reuse else "per-message", sessions, n, rate, cpu / n * 1e6, int(rate),
              res["messages"], res["msgs_per_s"], mcpu / max(res["messages"], 1) * 1e6,
              res["p99_us"], (mcpu / max(res["messages"], 1)) / (cpu / n)), flush=True)


def ceiling(port):
    for rate in (2000, 4000, 8000, 12000, 16000, 20000, 25000, 30000):
        wall, cpu, res = mxbench(port, rate, 3, True, ["--pipelining"])
        held = abs(res["msgs_per_s"] - rate) <= 0.03 * rate and res["late"] == 0
        print("ceiling     --rate %5d reuse+pipelining: %6.0f msgs/s, mxbench CPU %3.0f %% of a "
              "core, %4.1f us/msg, slipped %d, max lag %.1f ms, %s" % (
                  rate, res["msgs_per_s"], 100 * cpu / wall, cpu / max(res["messages"], 1) * 1e6,
                  res["slipped"], res["max_lag_us"] / 1000, "held" if held else "NOT held"),
              flush=True)
        if not held or cpu / wall > 0.8:
            break


def main():
    sink = SmtpSink()
    try:
        compare(sink.port, False, 4000, 1)
        compare(sink.port, True, 10000, 1)
        compare(sink.port, False, 8000, 20)
        compare(sink.port, True, 20000, 20)
        ceiling(sink.port)
    finally:
        sink.close()


if __name__ == "__main__":
    main()
