"""test_check_queue.py - end-to-end tests of `mxringd --check-queue -c FILE`
(issue 11): a journal written here record by record (the format of
core/journal.h, CRC32C computed in Python) is summarised per worker; the
exit code is 0 when sound, 1 with a torn tail, 2 on a configuration error."""
import os
import shutil
import struct
import subprocess
import tempfile
import unittest

from harness import BINARY

MAGIC = 0x314A584D
SEG, CHUNK, COMMIT = 1, 2, 3


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli, reflected), bitwise: slow but plain."""
    c = crc ^ 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 & -(c & 1))
    return c ^ 0xFFFFFFFF


def record(rtype, segno, qid=b"\0" * 20, payload=b"", flags=0, worker=0):
    """One journal record: 48-octet header + payload."""
    hdr = struct.pack("<IBBHII", MAGIC, rtype, flags, worker, len(payload), 0)
    hdr += struct.pack("<Q", segno) + qid + b"\0" * 4
    crc = crc32c(payload, crc32c(hdr))
    return hdr[:12] + struct.pack("<I", crc) + hdr[16:] + payload


def commit(segno, qid, head, body):
    fixed = struct.pack("<QII", len(body), crc32c(body), len(head))
    return record(COMMIT, segno, qid, fixed + head)


class TestCheckQueue(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mxring-e2e-jrn-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.workdir = os.path.join(self.dir, "var")
        self.jdir = os.path.join(self.workdir, "queue", "journal")
        os.makedirs(self.jdir)
        os.makedirs(os.path.join(self.workdir, "queue", "new"))
        os.makedirs(os.path.join(self.workdir, "quarantine", "new"))
        self.conf = os.path.join(self.dir, "mxringd.conf")
        with open(self.conf, "w") as f:
            f.write("hostname = mx.test\nworkdir = %s\nlisten = 127.0.0.1:2525\n"
                    "local_domains = example.test\n" % self.workdir)

    def segment(self, name, data, size=4096):
        with open(os.path.join(self.jdir, name), "wb") as f:
            f.write(data + b"\0" * (size - len(data)))

    def check(self, conf=None):
        p = subprocess.run([BINARY, "--check-queue", "-c", conf or self.conf],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    def journal(self):
        qa, qb = b"0" * 19 + b"A", b"0" * 19 + b"B"
        body = b"Subject: t\r\n\r\nhello\r\n"
        s1 = record(SEG, 1) + record(CHUNK, 1, qa, body) + commit(1, qa, b"HEAD\n\n", body)
        s1 += record(CHUNK, 1, qb, b"open")
        self.segment("w00-0000000000000001.jrn", s1)
        return s1

    def test_check_queue_sound(self):
        self.journal()
        rc, out, err = self.check()
        self.assertEqual(rc, 0, out + err)
        self.assertIn("worker 00: 1 segments (1..1), 4 records, 1 committed messages after "
                      "the checkpoint (1 missing from new/)", out)
        self.assertIn("1 uncommitted", out)
        self.assertIn("0 torn tails", out)
        self.assertTrue(out.rstrip().endswith("sound"), out)
        # read-only: nothing materialised, the segment still there
        self.assertEqual(os.listdir(os.path.join(self.workdir, "queue", "new")), [])
        self.assertIn("w00-0000000000000001.jrn", os.listdir(self.jdir))

    def test_check_queue_torn_tail(self):
        s1 = self.journal()
        torn = record(CHUNK, 1, b"0" * 19 + b"C", b"x" * 100)[:70]
        self.segment("w00-0000000000000001.jrn", s1 + torn)
        self.segment("w01-0000000000000003.jrn", record(SEG, 3))
        rc, out, err = self.check()
        self.assertEqual(rc, 1, out + err)
        self.assertIn("torn tail in w00-0000000000000001.jrn at offset %d: 70 octets cut"
                      % len(s1), out)
        self.assertIn("worker 01: 1 segments (3..3), 1 records", out)
        self.assertIn("damaged", out)

    def test_check_queue_empty_and_config_error(self):
        shutil.rmtree(self.jdir)
        rc, out, err = self.check()
        self.assertEqual(rc, 0, out + err)
        self.assertIn("0 segments, 0 spares", out)
        rc, out, err = self.check(os.path.join(self.dir, "missing.conf"))
        self.assertEqual(rc, 2)
        self.assertIn("missing.conf", err)


if __name__ == "__main__":
    unittest.main()
