"""test_mxbench_corpus.py - mxbench against the real mxringd (issue 19):
a --corpus of .eml files (dot lines, a 998-octet line, 8-bit content, a
file with bare LF line ends) arrives byte for byte in queue/new; a line
over 998 octets is refused and classified by reply and enhanced code;
--corpus-mix picks by size class; --senders-file / --rcpts-file go round
in turn; --mix gives the exact fractions of session kinds (STARTTLS and
AUTH PLAIN against a TLS-configured mxringd)."""
import collections
import crypt
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import ROOT, Server
from mxbench_peers import have_mxbench, run_mxbench

QUEUE_WAIT = 10     # seconds: files may appear shortly after the 250

CORPUS = {
    "a-dots.eml": b"From: a@example.test\r\nSubject: dots\r\n\r\n.leading dot\r\n..two dots\r\n"
                  b".\r\nmiddle . dot\r\n. \r\nend\r\n",
    "b-long.eml": b"From: b@example.test\r\nSubject: long\r\n\r\n" + b"x" * 998 + b"\r\n" +
                  b"y" * 997 + b"\r\nshort\r\n",
    "c-8bit.eml": b"From: c@example.test\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n"
                  b"Content-Type: text/plain; charset=utf-8\r\n\r\ncaf\xc3\xa9 \xe2\x82\xac\r\n"
                  b"latin-1 \xe9\xe8\r\n\x80\xff\xfe\r\n",
    "d-lf.eml": b"From: d@example.test\nSubject: lf\n\n.dot after lf\nlast line without end",
}


def stored(raw):
    """What a server stores for a corpus file: line ends CRLF, a final CRLF."""
    text = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return text if text.endswith(b"\r\n") else text + b"\r\n"


def without_received(msg):
    """The message after mxringd's Received: header and its folded lines."""
    assert msg.startswith(b"Received: "), msg[:80]
    pos = msg.index(b"\r\n") + 2
    while msg[pos:pos + 1] in (b"\t", b" "):
        pos = msg.index(b"\r\n", pos) + 2
    return msg[pos:]


@unittest.skipUnless(have_mxbench(), "mxbench not built (make mxbench)")
class MxbenchCorpus(unittest.TestCase):
    def setUp(self):
        self.srv = Server({"max_sessions": "100", "max_sessions_per_ip": "0"}).start()
        self.addCleanup(self.srv.close)
        self.dir = tempfile.mkdtemp(prefix="mxbench-corpus-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, files):
        for name, data in files.items():
            with open(os.path.join(self.dir, name), "wb") as f:
                f.write(data)

    def queued(self, n):
        """The n queue files' envelopes, waiting a bounded time for them."""
        deadline = time.monotonic() + QUEUE_WAIT
        while len(self.srv.queue_files()) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        files = self.srv.queue_files()
        self.assertEqual(len(files), n)
        return [self.srv.read_queue(q) for q in files]

    def test_mxbench_corpus_byte_exact(self):
        """Description: every corpus file arrives in queue/new exactly as stored, twice each."""
        self.write(CORPUS)
        self.write({"ignored.txt": b"not a message\r\n"})
        rc, res, out = run_mxbench(self.srv.port, "--corpus", self.dir, "--messages", 8,
                                   "--connections", 2, "--threads", 1)
        self.assertEqual((rc, res["messages"], res["errors"]), (0, 8, 0), out)
        got = collections.Counter(without_received(e["message"]) for e in self.queued(8))
        want = collections.Counter({stored(raw): 2 for raw in CORPUS.values()})
        self.assertEqual(got, want)
        self.assertEqual(stored(CORPUS["a-dots.eml"]), CORPUS["a-dots.eml"])  # CRLF: untouched

    def test_mxbench_corpus_overlong_line_refused_and_classified(self):
        """Description: a 999-octet line is refused by mxringd; counted as a body refusal by code."""
        self.write({"long.eml": b"Subject: x\r\n\r\n" + b"z" * 999 + b"\r\n"})
        rc, res, out = run_mxbench(self.srv.port, "--corpus", self.dir, "--messages", 3,
                                   "--connections", 1)
        self.assertEqual((rc, res["messages"], res["error_kinds"]["body"]), (1, 0, 3), out)
        self.assertEqual(res["refused_5xx"], 3, out)
        self.assertEqual(len(res["refusals"]), 1, out)
        r = res["refusals"][0]
        self.assertEqual((r["code"] // 100, r["count"]), (5, 3), out)
        self.assertRegex(r["enhanced"], r"^5\.\d{1,3}\.\d{1,3}$", out)
        self.assertIn("%d %s x3" % (r["code"], r["enhanced"]), out)
        self.assertEqual(self.srv.queue_files(), [])

    def test_mxbench_corpus_mix_and_envelope_lists(self):
        """Description: --corpus-mix 1k:3,100k:1 sends 3 small per large; senders and rcpts in turn."""
        small = b"Subject: small\r\n\r\nhi\r\n"
        large = b"Subject: large\r\n\r\n" + (b"L" * 76 + b"\r\n") * 600
        self.write({"s.eml": small, "l.eml": large})
        senders = os.path.join(self.dir, "senders")
        rcpts = os.path.join(self.dir, "rcpts")
        with open(senders, "w") as f:
            f.write("# senders\none@example.org\n\n  two@example.org  \n")
        with open(rcpts, "w") as f:
            f.write("r1@example.test\nr2@example.test\nr3@example.test\n")
        rc, res, out = run_mxbench(self.srv.port, "--corpus", self.dir, "--corpus-mix",
                                   "1k:3,100k:1", "--messages", 12, "--connections", 2,
                                   "--threads", 1, "--senders-file", senders, "--rcpts-file",
                                   rcpts, "--rcpts", 2)
        self.assertEqual((rc, res["messages"]), (0, 12), out)
        envs = self.queued(12)
        sizes = collections.Counter(without_received(e["message"]) for e in envs)
        self.assertEqual(sizes, collections.Counter({small: 9, large: 3}))
        self.assertEqual(collections.Counter(e["sender"] for e in envs),
                         {"one@example.org": 6, "two@example.org": 6})
        rc_count = collections.Counter(r for e in envs for r in e["rcpt"])
        self.assertEqual(rc_count, {"r1@example.test": 8, "r2@example.test": 8,
                                    "r3@example.test": 8})
        for e in envs:
            self.assertEqual(len(set(e["rcpt"])), 2, e["rcpt"])


PASSWORD = "bench-Pa55word"


@unittest.skipUnless(have_mxbench(), "mxbench not built (make mxbench)")
class MxbenchMix(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="mxbench-certs-")
        subprocess.run([os.path.join(ROOT, "scripts", "gen-test-cert.sh"), cls.certs],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certs, ignore_errors=True)

    def test_mxbench_mix_fractions(self):
        """Description: --mix plain:70,starttls:20,starttls-auth:10 over 100 connections, exactly."""
        h = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_SHA512))
        srv = Server({"max_sessions": "100", "max_sessions_per_ip": "0",
                      "tls_cert": os.path.join(self.certs, "cert.pem"),
                      "tls_key": os.path.join(self.certs, "key.pem")},
                     files={"users_file": "bench@example.test:%s\nrcpt1@example.test:%s\n" % (h, h)}).start()
        self.addCleanup(srv.close)
        rc, res, out = run_mxbench(srv.port, "--mix", "plain:70,starttls:20,starttls-auth:10",
                                   "--auth", "bench@example.test:" + PASSWORD, "--messages", 100,
                                   "--connections", 5, "--threads", 1, "--size", 1000)
        self.assertEqual((rc, res["messages"], res["errors"]), (0, 100, 0), out)
        kinds = res["kinds"]
        self.assertEqual([kinds[k]["connections"] for k in ("plain", "starttls", "starttls-auth")],
                         [70, 20, 10], out)
        self.assertEqual(kinds["auth"]["connections"], 0, out)
        self.assertEqual(res["handshakes"], 30, out)
        self.assertEqual(len(srv.queue_files()), 100)


if __name__ == "__main__":
    unittest.main()
