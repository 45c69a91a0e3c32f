"""test_materialize.py - the materializer's tmp/ + rename path (issue 11)
against the real server. Queue files are written unnamed (O_TMPFILE) and
linked into new/ once complete; where that cannot be done (no O_TMPFILE on
the file system, or an unnamed file that cannot be given a name) the
materializer writes tmp/<qid> and renames it. This machine's file systems
all have O_TMPFILE, so an LD_PRELOAD shim (tests/e2e/shim_notmpfile.c,
built next to the server as tests/shim_notmpfile.so) makes those calls
fail the way such a file system does. Every acknowledged message must then
still be complete in new/, once, with nothing left in tmp/, and the server
must say once on stderr why it writes tmp/ files. A new/ folder that is
taken away for a moment is retried, never a reason to fall back."""
import hashlib
import os
import re
import smtplib
import subprocess
import time
import unittest

import harness
from harness import BINARY, Server, parse_queue_file

SHIM = os.path.join(os.path.dirname(BINARY), "tests", "shim_notmpfile.so")
FALLBACK = "mxringd: materializer: no O_TMPFILE files here"
# bodies below, at and above the materializer's 64 KiB copy buffer
SIZES = [300, 5000, 65536 - 200, 70000, 300000]


def preload():
    """LD_PRELOAD for the shim; an ASan build needs its runtime first."""
    if not harness.is_sanitized(BINARY):
        return SHIM
    out = subprocess.run(["ldd", BINARY], capture_output=True, text=True).stdout
    m = re.search(r"(\S*libasan\.so\S*) => (\S+)", out)
    return (m.group(2) + " " + SHIM) if m else SHIM


def body(i, size):
    """Message i: a header naming it and size octets of text lines."""
    line = ("message %d " % i).encode() + b"x" * 60 + b"\r\n"
    text = (line * (size // len(line) + 1))[:size]
    return b"Subject: m%d\r\nX-Seq: %d\r\n\r\n" % (i, i) + text.rstrip(b"\r\n") + b"\r\n"


class TestMaterializeFallback(unittest.TestCase):

    def run_mode(self, mode):
        """Send SIZES x 3 messages with the shim in mode; returns the server
        (stopped) and the digests of the bodies sent, by X-Seq."""
        self.assertTrue(os.path.exists(SHIM), "%s missing: build it with make unit" % SHIM)
        env = {"LD_PRELOAD": preload(), "MXRING_SHIM": mode} if mode else None
        srv = Server(env=env)
        self.addCleanup(srv.close)
        srv.start()
        sent = {}
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as c:
            c.ehlo("client.example")
            for i in range(3 * len(SIZES)):
                data = body(i, SIZES[i % len(SIZES)])
                c.mail("s@b.example")
                c.rcpt("r%d@example.test" % i)
                code, text = c.data(data)
                self.assertEqual(code, 250, text)
                sent[str(i)] = hashlib.sha256(data).hexdigest()
        files = srv.queue_files(expect=len(sent))
        self.assertEqual(srv.stop(), 0, srv.stderr())
        got = {}
        for name in srv.queue_files():
            env_ = parse_queue_file(os.path.join(srv.workdir, "queue", "new", name))
            m = re.search(rb"\r\nX-Seq: (\d+)\r\n", env_["message"])
            self.assertIsNotNone(m, name)
            seq = m.group(1).decode()
            self.assertNotIn(seq, got, "message %s twice in new/" % seq)
            # what was sent is the tail of the stored message (after Received:)
            tail = env_["message"][env_["message"].index(b"Subject: m%s\r\n" % m.group(1)):]
            got[seq] = hashlib.sha256(tail).hexdigest()
        self.assertEqual(len(files), len(sent))
        self.assertEqual(got, sent)
        tmp = os.path.join(srv.workdir, "queue", "tmp")
        self.assertEqual(os.listdir(tmp) if os.path.isdir(tmp) else [], [])
        return srv

    def test_materialize_without_o_tmpfile_writes_tmp_and_renames(self):
        srv = self.run_mode("no-tmpfile")
        err = srv.stderr()
        self.assertEqual(err.count(FALLBACK), 1, err)
        self.assertIn(FALLBACK + " (Operation not supported): writing tmp/ files", err)

    def test_materialize_unnamed_file_that_cannot_be_linked_falls_back(self):
        srv = self.run_mode("no-link")
        err = srv.stderr()
        self.assertEqual(err.count(FALLBACK), 1, err)
        self.assertIn(FALLBACK + " (Operation not permitted): writing tmp/ files", err)

    def test_materialize_unnamed_files_without_the_shim(self):
        srv = self.run_mode(None)
        self.assertNotIn(FALLBACK, srv.stderr())

    def test_materialize_new_folder_taken_away_is_retried_not_a_fallback(self):
        """new/ renamed away between an unnamed file's creation and its
        linkat (the shim does it once, as a consumer or an admin might): the
        real linkat fails with ENOENT, the file is written once new/ is back,
        and the materializer keeps writing unnamed files (it used to take
        that ENOENT for "cannot link here" and write tmp/ files for good)."""
        self.assertTrue(os.path.exists(SHIM), "%s missing: build it with make unit" % SHIM)
        srv = Server(env={"LD_PRELOAD": preload(), "MXRING_SHIM": "take-new-away"})
        self.addCleanup(srv.close)
        srv.start()
        q = os.path.join(srv.workdir, "queue")

        def send(i):
            with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as c:
                self.assertEqual(c.sendmail("s@b.example", ["r%d@example.test" % i],
                                            body(i, 5000)), {})

        send(0)   # 250 from the journal; its queue file cannot be named yet
        self.assertTrue(self.wait_stderr(srv, ": No such file or directory (retrying)"),
                        srv.stderr())
        self.assertTrue(os.path.isdir(os.path.join(q, "new.away")))
        os.mkdir(os.path.join(q, "new"), 0o750)
        for i in range(1, 5):
            send(i)
        self.assertEqual(len(srv.queue_files(expect=5)), 5)
        self.assertEqual(srv.stop(), 0, srv.stderr())
        self.assertNotIn(FALLBACK, srv.stderr())
        self.assertEqual(os.listdir(os.path.join(q, "new.away")), [])
        seqs = sorted(int(re.search(rb"\r\nX-Seq: (\d+)\r\n",
                                    parse_queue_file(os.path.join(q, "new", n))["message"]).group(1))
                      for n in os.listdir(os.path.join(q, "new")))
        self.assertEqual(seqs, [0, 1, 2, 3, 4])
        tmp = os.path.join(q, "tmp")
        self.assertEqual(os.listdir(tmp) if os.path.isdir(tmp) else [], [])

    def wait_stderr(self, srv, needle, timeout=10):
        deadline = time.time() + timeout
        while needle not in srv.stderr():
            if time.time() > deadline:
                return False
            time.sleep(0.02)
        return True


if __name__ == "__main__":
    unittest.main()
