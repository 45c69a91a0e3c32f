"""test_bench_smoke.py - short smoke runs of the mxbench load generator
(issue 7) against the real mxringd: a few hundred messages over 10
sessions, one connection per message and reused (pipelined) connections;
every message must be accepted without an error and be complete in
queue/new. Also: refused recipients are counted as errors, and --starttls /
--auth are refused as not supported yet. No timing assertions.
mxbench is $MXBENCH or build/mxbench (built by `make bench-build`)."""
import json
import os
import subprocess
import unittest

from harness import ROOT, Server

MXBENCH = os.environ.get("MXBENCH", os.path.join(ROOT, "build", "mxbench"))
MESSAGES = 300
SESSIONS = 10
SIZE = 4096
RUN_TIMEOUT = 300


def run_bench(srv, *args):
    """Run mxbench against srv; (exit status, parsed --json line, output)."""
    if not os.access(MXBENCH, os.X_OK):
        raise AssertionError("%s is missing: build it with `make bench-build`" % MXBENCH)
    cmd = [MXBENCH, "--server", "127.0.0.1:%d" % srv.port, "--json"] + [str(a) for a in args]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=RUN_TIMEOUT)
    out = p.stdout.decode(errors="replace")
    lines = out.strip().splitlines()
    result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    return p.returncode, result, out


class BenchSmoke(unittest.TestCase):
    def setUp(self):
        self.srv = Server({"max_sessions": "100"}).start()
        self.addCleanup(self.srv.close)

    def check_queue(self, rcpts):
        """Every file in queue/new is complete and carries the bench message."""
        files = self.srv.queue_files()
        self.assertEqual(len(files), MESSAGES)
        for qid in files:
            env = self.srv.read_queue(qid)
            self.assertEqual(env["sender"], "bench@mxbench.test")
            self.assertEqual(env["rcpt"], rcpts)
            self.assertIn(b"\r\nSubject: mxbench load test message", env["message"])
            self.assertTrue(env["message"].endswith(b"\r\n"))

    def test_bench_smoke_connection_per_message(self):
        """Description: 300 messages, 10 sessions, one connection each."""
        rc, res, out = run_bench(self.srv, "--connections", SESSIONS, "--messages", MESSAGES,
                                 "--size", SIZE)
        self.assertIsNotNone(res, out)
        self.assertEqual((rc, res["errors"], res["messages"]), (0, 0, MESSAGES), out)
        self.assertEqual(res["connections"], MESSAGES, out)
        self.check_queue(["rcpt1@example.test"])

    def test_bench_smoke_reuse_pipelining(self):
        """Description: 300 messages over 10 reused, pipelined connections, 2 rcpts, 2 rings."""
        rc, res, out = run_bench(self.srv, "--connections", SESSIONS, "--messages", MESSAGES,
                                 "--size", SIZE, "--reuse", "--pipelining", "--rcpts", 2,
                                 "--threads", 2)
        self.assertIsNotNone(res, out)
        self.assertEqual((rc, res["errors"], res["messages"]), (0, 0, MESSAGES), out)
        self.assertLessEqual(res["connections"], SESSIONS, out)
        self.check_queue(["rcpt1@example.test", "rcpt2@example.test"])

    def test_bench_counts_refused_recipients(self):
        """Description: 550 to RCPT is counted per stage, nothing is queued, exit 1."""
        srv = Server({"trusted_networks": ""}).start()
        self.addCleanup(srv.close)
        rc, res, out = run_bench(srv, "--connections", 2, "--messages", 20, "--size", 1000,
                                 "--domain", "remote.example")
        self.assertIsNotNone(res, out)
        self.assertEqual(rc, 1, out)
        self.assertEqual((res["messages"], res["errors"]), (0, 20), out)
        self.assertEqual(res["error_kinds"]["rcpt"], 20, out)
        self.assertEqual(srv.queue_files(), [])

    def test_bench_refuses_tls_and_auth(self):
        """Description: --starttls and --auth exit 2 saying not supported yet."""
        for extra in (["--starttls"], ["--auth", "user:secret"]):
            rc, res, out = run_bench(self.srv, "--connections", 1, "--messages", 1,
                                     "--size", 100, *extra)
            self.assertEqual(rc, 2, out)
            self.assertIsNone(res, out)
            self.assertIn("not supported yet", out)
        self.assertEqual(self.srv.queue_files(), [])


if __name__ == "__main__":
    unittest.main()
