"""End-to-end tests of the receivelog with the real server: switched by the
folder, byte-exact line format, one id per session, ordering, escaping,
masking, zero mode, rename away and back, flush at SIGTERM."""
import datetime
import glob
import os
import re
import signal
import smtplib
import socket
import threading
import time
import unittest

from harness import Client, Server

LINE = re.compile(r"^ \[(\d\d)/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/(\d{4}):"
                  r"(\d\d):(\d\d):(\d\d)\], ([0-9A-F]{8}), (.*)$")
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def log_dir(srv):
    return os.path.join(srv.workdir, "receivelog", socket.gethostname())


def read_lines(srv):
    """Every line of every day file, in file order."""
    out = []
    for path in sorted(glob.glob(os.path.join(log_dir(srv), "*.log"))):
        with open(path, "rb") as f:
            data = f.read()
        assert data.endswith(b"\n") or not data, "partial last line in %s" % path
        out.extend(data.decode("ascii").split("\n")[:-1])
    return out


def parse(line):
    m = LINE.match(line)
    if not m:
        raise AssertionError("bad line format: %r" % line)
    d, mon, y, hh, mm, ss, sid, text = m.groups()
    ts = datetime.datetime(int(y), MONTHS.index(mon) + 1, int(d), int(hh), int(mm), int(ss))
    return ts, sid, text


def wait_for(pred, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def send_one(srv, rcpt="u@example.test"):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail("a@b.example", [rcpt], "Subject: t\r\n\r\nbody\r\n")


def sessions(lines):
    """Lines by session id (the process's own 00000000 lines left out)."""
    by = {}
    for line in lines:
        ts, sid, text = parse(line)
        if sid == "00000000" and text.startswith("mxringd "):
            continue
        by.setdefault(sid, []).append((ts, text))
    return by


class ReceivelogTest(unittest.TestCase):

    def test_folder_absent_nothing_written(self):
        with Server() as srv:
            send_one(srv)
            time.sleep(1.5)
            self.assertFalse(os.path.exists(os.path.join(srv.workdir, "receivelog")))
            self.assertEqual(glob.glob(os.path.join(srv.workdir, "**", "*.log"), recursive=True), [])

    def test_session_lines_format_and_order(self):
        with Server(receivelog=True) as srv:
            send_one(srv)
            self.assertTrue(wait_for(lambda: any("closesocket()" in l for l in read_lines(srv))))
            lines = read_lines(srv)
            today = datetime.date.today().strftime("%Y%m%d")
            self.assertTrue(os.path.exists(os.path.join(log_dir(srv), today + ".log")))
            by = sessions(lines)
            self.assertEqual(len(by), 1)
            sid, entries = next(iter(by.items()))
            self.assertNotEqual(sid, "00000000")
            texts = [t for _, t in entries]
            # smtplib sends lower-case verbs; compare commands case-insensitively
            texts = [t[:4].upper() + t[4:] if t[:4].lower() in ("mail", "rcpt", "data", "quit")
                     else t for t in texts]
            self.assertTrue(texts[0].startswith("Connection accepted: client [127.0.0.1]:"))
            self.assertIn("worker", texts[0])
            self.assertEqual(texts[1], "220 mx.test ESMTP mxring Receiver")
            for want in ["MAIL FROM:<a@b.example> size=20", "Check MAIL FROM address = <a@b.example>",
                         "250 2.1.0 <a@b.example>... Sender ok.", "RCPT TO:<u@example.test>",
                         "Check RCPT TO address = <u@example.test>",
                         "user check status(1) = found local group (0)", "match!!",
                         "250 2.1.5 <u@example.test>... Recipient ok.", "DATA", "QUIT",
                         "221 2.0.0 mx.test closing connection."]:
                self.assertIn(want, texts)
            self.assertTrue(any(t.startswith("250 2.0.0 Message received ok. id=") for t in texts))
            qid = [t for t in texts if t.startswith("250 2.0.0")][0].split("id=")[1]
            self.assertTrue(any(qid in t and "queue id" in t for t in texts))
            self.assertEqual(srv.queue_files(), [qid])
            self.assertNotIn("body", texts)  # the message body is never logged
            self.assertEqual(texts[-2], "CloseClient Started. (QUIT)")
            self.assertEqual(texts[-1], "closesocket()")
            # order of the dialogue: command before its checks before its reply
            i = texts.index("RCPT TO:<u@example.test>")
            self.assertLess(i, texts.index("Check RCPT TO address = <u@example.test>"))
            self.assertLess(texts.index("Check RCPT TO address = <u@example.test>"),
                            texts.index("250 2.1.5 <u@example.test>... Recipient ok."))

    def test_sixty_concurrent_sessions(self):
        with Server(receivelog=True) as srv:
            errors = []

            def client(i):
                try:
                    with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as s:
                        s.ehlo("client%d.example" % i)
                        s.sendmail("s%d@b.example" % i, ["u%d@example.test" % i], "x: y\r\n\r\nz\r\n")
                except Exception as e:  # noqa: BLE001 - report any failure
                    errors.append(repr(e))

            threads = [threading.Thread(target=client, args=(i,)) for i in range(60)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            self.assertEqual(errors, [])
            self.assertTrue(wait_for(lambda: sum("closesocket()" in l for l in read_lines(srv)) == 60))
            lines = read_lines(srv)
            stamps = [parse(l)[0] for l in lines]
            self.assertEqual(stamps, sorted(stamps), "time stamps go backwards in the file")
            by = sessions(lines)
            self.assertEqual(len(by), 60)
            seen_clients = set()
            for sid, entries in by.items():
                texts = [t for _, t in entries]
                self.assertTrue(texts[0].startswith("Connection accepted"), texts[:2])
                self.assertEqual(texts[1], "220 mx.test ESMTP mxring Receiver")
                self.assertEqual(texts[-1], "closesocket()")
                self.assertTrue(texts[-2].startswith("CloseClient Started."))
                ehlo = [t for t in texts if t.startswith("ehlo ") or t.startswith("EHLO ")]
                self.assertEqual(len(ehlo), 1)
                n = ehlo[0].split("client")[1].split(".")[0]
                seen_clients.add(n)
                # the session's own addresses only: one id is one session
                self.assertIn("MAIL FROM:<s%s@b.example>" % n, " ".join(texts).replace("mail FROM", "MAIL FROM"))
                self.assertTrue(any("u%s@example.test" % n in t for t in texts))
            self.assertEqual(len(seen_clients), 60)

    def test_escaping_cannot_forge_lines(self):
        with Server(receivelog=True) as srv:
            c = Client(srv)
            c.reply()
            c.send(b"NOOP \x1b[31m\xff\\x41 fake\r\n")
            c.reply()
            c.send(b"NOOP a\rb\r\n")
            c.reply()
            c.cmd("QUIT")
            c.close()
            self.assertTrue(wait_for(lambda: any("closesocket()" in l for l in read_lines(srv))))
            texts = [parse(l)[2] for l in read_lines(srv)]
            self.assertIn("NOOP \\x1B[31m\\xFF\\x5Cx41 fake", texts)
            self.assertIn("NOOP a\\x0Db", texts)

    def test_auth_payload_masked(self):
        with Server(receivelog=True) as srv:
            c = Client(srv)
            c.reply()
            c.cmd("EHLO x.example")
            c.cmd("AUTH PLAIN AHVzZXIAc2VjcmV0cGFzc3dvcmQ=")
            c.cmd("QUIT")
            c.close()
            self.assertTrue(wait_for(lambda: any("closesocket()" in l for l in read_lines(srv))))
            text = "\n".join(read_lines(srv))
            self.assertIn("AUTH PLAIN ****", text)
            self.assertNotIn("AHVzZXIAc2VjcmV0cGFzc3dvcmQ=", text)

    def test_zero_mode(self):
        with Server(conf={"receivelog_internal_id": "zero"}, receivelog=True) as srv:
            send_one(srv)
            self.assertTrue(wait_for(lambda: any("closesocket()" in l for l in read_lines(srv))))
            rows = [parse(l) for l in read_lines(srv)]
            checks = [sid for _, sid, t in rows if t.startswith("Check ") or t.startswith("user check")]
            self.assertTrue(checks)
            self.assertEqual(set(checks), {"00000000"})
            dialog = [sid for _, sid, t in rows if t.startswith("220 ")]
            self.assertNotEqual(dialog[0], "00000000")

    def test_rename_away_and_back(self):
        with Server(receivelog=True) as srv:
            send_one(srv)
            self.assertTrue(wait_for(lambda: len(read_lines(srv)) > 0))
            folder = os.path.join(srv.workdir, "receivelog")
            away = os.path.join(srv.workdir, "receivelog.off")
            os.rename(folder, away)
            time.sleep(2.5)  # the switch takes effect within 2 s
            send_one(srv, "off@example.test")
            time.sleep(1.5)
            self.assertFalse(os.path.exists(folder))
            with open(glob.glob(os.path.join(away, "*", "*.log"))[0]) as f:
                self.assertNotIn("off@example.test", f.read())
            os.rename(away, folder)
            time.sleep(2.5)
            send_one(srv, "back@example.test")
            self.assertTrue(wait_for(lambda: any("back@example.test" in l for l in read_lines(srv))))
            self.assertFalse(any("off@example.test" in l for l in read_lines(srv)))

    def test_start_line_before_every_session(self):
        """Clients already knocking while mxringd starts: the process's
        'mxringd started' line is the first line of the log, ahead of every
        session, even a session accepted within the same clock tick (the
        merge orders by a coarse clock; mxlog reads a start line as the end
        of every session open before it)."""
        srv = Server(receivelog=True)
        self.addCleanup(srv.close)
        stop = threading.Event()
        done = []

        def knock():
            while not stop.is_set():
                try:
                    c = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                except OSError:
                    time.sleep(0.001)
                    continue
                try:
                    c.recv(512)
                    c.sendall(b"EHLO early.example\r\nQUIT\r\n")
                    while c.recv(4096):
                        pass
                except OSError:
                    pass
                c.close()
                done.append(1)
                return

        threads = [threading.Thread(target=knock) for _ in range(8)]
        for t in threads:
            t.start()
        srv.start()
        for t in threads:
            t.join(15)
        stop.set()
        self.assertEqual(len(done), 8)
        self.assertTrue(wait_for(lambda: sum("closesocket()" in l for l in read_lines(srv)) == 8))
        lines = read_lines(srv)
        first = parse(lines[0])
        self.assertEqual(first[1], "00000000", lines[:12])
        self.assertTrue(first[2].startswith("mxringd started ("), lines[:12])

    def test_sigterm_flushes_everything(self):
        srv = Server(receivelog=True).start()
        try:
            for i in range(20):
                send_one(srv, "u%d@example.test" % i)
            self.assertEqual(srv.stop(), 0)
            lines = read_lines(srv)
            self.assertEqual(sum("closesocket()" in l for l in lines), 20)
            for i in range(20):
                self.assertTrue(any("<u%d@example.test>... Recipient ok." % i in l for l in lines))
        finally:
            srv.close()


if __name__ == "__main__":
    unittest.main()
