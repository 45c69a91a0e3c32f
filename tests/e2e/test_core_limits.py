"""test_core_limits.py - end-to-end tests of the core receiver's limits
(issue 2): max_recipients, line lengths, max_message_size, max_errors,
max_sessions and the command and data timeouts."""
import select
import socket
import threading
import time
import unittest

from harness import Client
import test_core as tc

LINE_TOO_LONG = "500 5.5.6 Line too long"
DATA_LINE_LONG = "550 5.5.6 Message refused: a line is longer than 998 characters"
SIZE_DATA = "552 5.3.4 Message size exceeds fixed maximum message size"
TIMEOUT = "421 4.4.2 mx.test Error: timeout exceeded, closing connection"


class TestLimits(tc.ServerCase):

    def test_core_max_recipients(self):
        srv = self.start({"max_recipients": "3"})
        c = self.client(srv)
        tc.greet(c)
        self.assertEqual(c.cmd("MAIL FROM:<a@b.example>")[0], 250)
        rc = ["r1@example.test", "r2@example.test", "r3@example.org"]
        for r in rc:
            self.assertEqual(c.cmd("RCPT TO:<%s>" % r), (250, [tc.rcpt_ok(r)]))
        self.assertEqual(c.cmd("RCPT TO:<r4@example.test>"),
                         (452, ["452 4.5.3 Too many recipients"]))
        self.assertEqual(c.cmd("RCPT TO:<r5@example.test>")[0], 452)
        self.assertEqual(c.cmd("DATA")[0], 354)
        body = b"Subject: many\r\n\r\nx\r\n"
        c.send(tc.stuff(body))
        qid = tc.queue_id(c.reply()[1][-1])
        self.assertIsNotNone(qid)
        self.assert_stored(srv, qid, "a@b.example", rc, body)
        # the limit is per message: the next transaction gets 3 again
        last = tc.send_one(c, "a@b.example", rc, body)
        self.assertIsNotNone(tc.queue_id(last), last)

    def test_core_command_line_length(self):
        srv = self.start()
        c = self.client(srv)
        tc.greet(c)
        # exactly 512 octets with the CRLF is allowed (RFC 5321 4.5.3.1.4)
        self.assertEqual(c.cmd("NOOP " + "a" * 505), (250, [tc.NOOP_OK]))
        self.assertEqual(c.cmd("NOOP " + "a" * 506), (500, [LINE_TOO_LONG]))
        self.assertEqual(c.cmd("NOOP"), (250, [tc.NOOP_OK]))
        # a very long line, sent in pieces: one reply, then business as usual
        c.send("MAIL FROM:<" + "x" * 3000)
        c.send("y" * 20000)
        c.send("@b.example>\r\nNOOP\r\n")
        self.assertEqual(c.reply(), (500, [LINE_TOO_LONG]))
        self.assertEqual(c.reply(), (250, [tc.NOOP_OK]))
        # the overlong MAIL did not open a transaction
        last = tc.send_one(c, "a@b.example", ["u@example.test"], b"Subject: l\r\n\r\nx\r\n")
        self.assertIsNotNone(tc.queue_id(last), last)

    def test_core_data_line_length(self):
        srv = self.start()
        c = self.client(srv)
        tc.greet(c)
        ok_body = b"Subject: 998\r\n\r\n" + b"a" * 998 + b"\r\n"
        last = tc.send_one(c, "a@b.example", ["u@example.test"], ok_body)
        qid = tc.queue_id(last)
        self.assertIsNotNone(qid, last)
        self.assert_stored(srv, qid, "a@b.example", ["u@example.test"], ok_body)
        # 999 + CRLF = 1001 octets: refused at the end of data
        bad_body = b"Subject: 999\r\n\r\n" + b"a" * 999 + b"\r\nmore\r\n"
        last = tc.send_one(c, "a@b.example", ["u@example.test"], bad_body)
        self.assertEqual(last, DATA_LINE_LONG)
        self.assertEqual(srv.queue_files(), [qid])
        # session still usable, the transaction is gone
        self.assertEqual(c.cmd("RCPT TO:<u@example.test>")[0], 503)
        body = b"Subject: after\r\n\r\nok\r\n"
        qid2 = tc.queue_id(tc.send_one(c, "b@b.example", ["v@example.test"], body))
        self.assertIsNotNone(qid2)
        self.assert_stored(srv, qid2, "b@b.example", ["v@example.test"], body)

    def test_core_max_message_size_at_end_of_data(self):
        srv = self.start({"max_message_size": "2000"})
        c = self.client(srv)
        tc.greet(c)
        head = b"Subject: size\r\n\r\n" + (b"z" * 98 + b"\r\n") * 18
        fill = 2000 - len(head) - 2
        exact = head + b"x" * fill + b"\r\n"
        self.assertEqual(len(exact), 2000)
        qid = tc.queue_id(tc.send_one(c, "a@b.example", ["u@example.test"], exact))
        self.assertIsNotNone(qid)
        self.assert_stored(srv, qid, "a@b.example", ["u@example.test"], exact)
        over = head + b"x" * (fill + 1) + b"\r\n"
        self.assertEqual(tc.send_one(c, "a@b.example", ["u@example.test"], over), SIZE_DATA)
        # much larger, in many lines
        big = head + (b"y" * 70 + b"\r\n") * 2000
        self.assertEqual(tc.send_one(c, "a@b.example", ["u@example.test"], big), SIZE_DATA)
        self.assertEqual(srv.queue_files(), [qid])
        self.assertEqual(c.cmd("NOOP"), (250, [tc.NOOP_OK]))
        small = head + b"ok\r\n"
        qid2 = tc.queue_id(tc.send_one(c, "a@b.example", ["u@example.test"], small))
        self.assertIsNotNone(qid2)
        self.assertEqual(sorted(srv.queue_files()), sorted([qid, qid2]))

    def test_core_max_errors(self):
        srv = self.start({"max_errors": "3"})
        c = self.client(srv)
        tc.greet(c)
        self.assertEqual(c.cmd("FROB")[0], 500)
        self.assertEqual(c.cmd("RCPT TO:<u@example.test>")[0], 503)
        self.assertEqual(c.cmd("NOOP")[0], 250)  # good commands do not reset the count
        self.assertEqual(c.cmd("MAIL FROM:<a b>")[0], 501)
        # the 4th error: its own reply, then 421 and the close
        c.send("FROB\r\n")
        self.assertEqual(c.reply()[0], 500)
        code, lines = c.reply()
        self.assertEqual(code, 421)
        self.assertTrue(lines[0].startswith("421 4.7.0 mx.test "), lines)
        self.assertTrue(c.closed(5), "connection not closed after 421")

    def test_core_max_sessions(self):
        srv = self.start({"max_sessions": "2", "workers": "1"})
        held = []
        deadline = time.time() + 10
        # the harness's readiness probe may still hold a slot for a moment
        while len(held) < 2 and time.time() < deadline:
            c = Client(srv)
            self.addCleanup(c.close)
            code, lines = c.reply()
            if code == 220:
                held.append(c)
            else:
                self.assertEqual(code, 421)
                time.sleep(0.05)
        self.assertEqual(len(held), 2)
        third = self.client(srv)
        code, lines = third.reply()
        self.assertEqual(code, 421)
        self.assertEqual(lines, ["421 4.7.0 mx.test exceeds an accepting limit, try again later"])
        self.assertTrue(third.closed(5))
        # the two admitted sessions work; once one leaves, a new one is admitted
        self.assertEqual(held[0].cmd("EHLO a.example")[0], 250)
        self.assertEqual(held[1].cmd("QUIT")[0], 221)
        self.assertTrue(held[1].closed(5))
        deadline = time.time() + 5
        while True:
            c = self.client(srv)
            code, _ = c.reply()
            if code == 220 or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(code, 220)

    def test_core_timeout_command(self):
        srv = self.start({"timeout_command": "2"})
        c = self.client(srv)
        tc.greet(c)
        # activity restarts the clock
        for _ in range(6):
            time.sleep(0.5)
            self.assertEqual(c.cmd("NOOP"), (250, [tc.NOOP_OK]))
        t0 = time.time()
        c.sock.settimeout(6)
        self.assertEqual(c.reply(), (421, [TIMEOUT]))
        elapsed = time.time() - t0
        self.assertTrue(c.closed(2), "no EOF after the timeout reply")
        self.assertLess(elapsed, 4.0)
        self.assertGreaterEqual(elapsed, 1.0)

    def test_core_timeout_data_whole_phase(self):
        srv = self.start({"timeout_command": "30", "timeout_data": "2"})
        c = self.client(srv)
        tc.greet(c)
        self.assertEqual(c.cmd("MAIL FROM:<a@b.example>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<u@example.test>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        t0 = time.time()
        cut = None
        while time.time() - t0 < 8:
            try:
                c.send(b"x")
            except OSError:
                break  # the server closed: its reply is already in our buffer
            r, _, _ = select.select([c.sock], [], [], 0.5)
            if r:
                cut = time.time() - t0
                break
        self.assertIsNotNone(cut, "a trickling client was never cut off")
        c.sock.settimeout(3)
        self.assertEqual(c.reply(), (421, [TIMEOUT]))
        self.assertLess(cut, 4.5)
        self.assertTrue(c.closed(2))
        self.assertEqual(srv.queue_files(), [])

    def pipelined_second_data_phase(self, first_ending):
        """timeout_data bounds each DATA phase: a second DATA pipelined behind
        the end of the first one gets its own full bound. Phase one lasts 4 s,
        phase two 4 s, timeout_data is 6 s (the server's clock has 1 s steps,
        so a bound fires 5..7 s after its phase began): a server that carries
        phase one's deadline over cuts phase two off; one that does not, never
        does. first_ending is what ends phase one (a refused or a good body)."""
        srv = self.start({"timeout_command": "30", "timeout_data": "6"})
        c = self.client(srv)
        tc.greet(c)
        self.assertEqual(c.cmd("MAIL FROM:<a@b.example>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<u@example.test>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        t0 = time.time()
        self.trickle(c, t0, b"Subject: one\r\n\r\n", 8)
        c.send(first_ending + b"MAIL FROM:<b@b.example>\r\nRCPT TO:<v@example.test>\r\n"
               b"DATA\r\n")
        first = c.reply()[1][-1]
        self.assertEqual(c.reply()[1], [tc.sender_ok("b@b.example")])
        self.assertEqual(c.reply()[1], [tc.rcpt_ok("v@example.test")])
        self.assertEqual(c.reply()[1], [tc.DATA_GO])
        t1 = time.time()
        self.trickle(c, t0, b"Subject: two\r\n\r\n", 8)
        c.send(b".\r\n")
        last = c.reply()[1][-1]
        self.assertIsNotNone(tc.queue_id(last), "second DATA phase (%.1f s long) ended with %r"
                             % (time.time() - t1, last))
        return srv, first, tc.queue_id(last)

    def trickle(self, c, t0, head, lines):
        """Send head, then one line every 0.5 s; fail on any reply meanwhile."""
        c.send(head)
        for i in range(lines):
            r, _, _ = select.select([c.sock], [], [], 0.5)
            if r:
                self.fail("DATA phase cut off %.1f s after the first DATA: %r"
                          % (time.time() - t0, c.reply()))
            c.send(b"line %d\r\n" % i)

    def test_core_timeout_data_per_phase_after_accepted(self):
        srv, first, qid2 = self.pipelined_second_data_phase(b".\r\n")
        qid1 = tc.queue_id(first)
        self.assertIsNotNone(qid1, first)
        self.assertEqual(sorted(srv.queue_files()), sorted([qid1, qid2]))

    def test_core_timeout_data_per_phase_after_refused(self):
        srv, first, qid2 = self.pipelined_second_data_phase(b"x" * 1200 + b"\r\n.\r\n")
        self.assertEqual(first, DATA_LINE_LONG)
        self.assertEqual(srv.queue_files(), [qid2])

    def test_core_unread_replies_keep_memory_bounded(self):
        """A client that pipelines commands but never reads the replies must
        not make the server buffer replies without bound (issue 2: "per-session
        memory is small and bounded"); the server has to stop reading."""
        srv = self.start({"workers": "1", "max_junk_commands": "100000000"})
        c = self.client(srv)
        tc.greet(c)
        base = rss_mib(srv.proc.pid)
        unit = b"NOOP\r\n"
        chunk = unit * 10000
        limit = 32 * 1024 * 1024          # 32 MiB of commands = 5.6 M replies
        sent = 0
        c.sock.settimeout(2)
        t0 = time.time()
        while sent < limit and time.time() - t0 < 20:
            try:
                sent += c.sock.send(chunk[sent % len(unit):])
            except socket.timeout:
                break                     # the server stopped reading: good
        grown = rss_mib(srv.proc.pid) - base
        # the server stopped reading: kernel socket buffers (a few MiB) filled
        self.assertLess(sent, limit, "server kept reading %d MiB of commands whose replies "
                                     "were never read (grew by %d MiB)" % (sent >> 20, grown))
        if not sanitized(srv.proc.pid):  # ASan's quarantine inflates RSS
            self.assertLess(grown, 20, "server grew by %d MiB buffering replies to %d MiB of "
                                       "unread commands" % (grown, sent >> 20))
        # the session is intact: read while completing the last command and
        # quitting; every reply comes, in order
        want = (sent + len(unit) - 1) // len(unit)
        expect = (tc.NOOP_OK + "\r\n").encode() * want + (tc.QUIT_OK + "\r\n").encode()
        data = bytearray()
        c.sock.settimeout(20)

        def drain():
            while not data.endswith(expect[-40:]):
                got = c.sock.recv(1 << 20)
                if not got:
                    return
                data.extend(got)

        reader = threading.Thread(target=drain)
        reader.start()
        if sent % len(unit):
            c.send(unit[sent % len(unit):])
        c.send("QUIT\r\n")
        reader.join(30)
        self.assertFalse(reader.is_alive())
        self.assertEqual(len(data), len(expect))
        self.assertEqual(bytes(data), expect)

def rss_mib(pid):
    """Resident set size of process pid in MiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    raise AssertionError("no VmRSS for %d" % pid)


def sanitized(pid):
    """True when process pid runs with a sanitizer runtime (ASan, TSan)."""
    with open("/proc/%d/maps" % pid) as f:
        return any(("libasan" in l or "libtsan" in l) for l in f)


if __name__ == "__main__":
    unittest.main()
