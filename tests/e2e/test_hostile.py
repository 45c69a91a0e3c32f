"""Hardening end-to-end tests with the real server: pre-greeting talkers,
per-address limits, slow clients, many connections, a full disk for the
queue and for the receivelog, privilege drop. Clients come from 127.0.0.1;
tests that need an untrusted client set trusted_networks to 10.0.0.0/8."""
import multiprocessing
import os
import resource
import smtplib
import socket
import subprocess
import time
import unittest

from harness import log_text, wait_log, BINARY, Client, Server, parse_queue_file

UNTRUSTED = {"trusted_networks": "10.0.0.0/8"}


def wait_stderr(srv, needle, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if needle in srv.stderr():
            return True
        time.sleep(0.05)
    return False


def mount_tmpfs(path, size):
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", path], check=True)


def umount(path):
    subprocess.run(["umount", "-l", path], check=False)


def can_mount():
    if os.geteuid() != 0:
        return False
    d = "/tmp/mxring-mount-probe"
    os.makedirs(d, exist_ok=True)
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d],
                        capture_output=True).returncode == 0
    if ok:
        umount(d)
    return ok


def send(srv, rcpt="u@example.test", body="Subject: x\r\n\r\nhello\r\n"):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail("a@b.example", [rcpt], body)


class PreGreetTest(unittest.TestCase):

    def test_talking_before_banner_is_refused(self):
        with Server(conf=dict(UNTRUSTED, greet_pause_ms="700"), receivelog=True) as srv:
            c = Client(srv)
            c.send("EHLO early.example\r\n")
            code, lines = c.reply()
            self.assertEqual(code, 554)
            self.assertIn("5.5.0", lines[0])
            self.assertTrue(c.closed(3))
            c.close()
            self.assertTrue(wait_log(srv, "client talked before the greeting"))
            self.assertTrue(wait_log(srv, "CloseClient Started. (talked before the greeting)"))
            # a client that waits gets the banner after the pause
            t0 = time.time()
            c = Client(srv)
            code, lines = c.reply()
            self.assertEqual(code, 220)
            self.assertGreaterEqual(time.time() - t0, 0.5)
            self.assertEqual(c.cmd("EHLO polite.example")[0], 250)
            c.close()

    def test_trusted_clients_skip_the_pause(self):
        with Server(conf={"greet_pause_ms": "3000"}) as srv:
            t0 = time.time()
            c = Client(srv)
            self.assertEqual(c.reply()[0], 220)
            self.assertLess(time.time() - t0, 2)
            c.close()


class PerAddressLimitTest(unittest.TestCase):

    def test_sessions_per_ip(self):
        with Server(conf=dict(UNTRUSTED, max_sessions_per_ip="3"), receivelog=True) as srv:
            held = [Client(srv) for _ in range(3)]
            for c in held:
                self.assertEqual(c.reply()[0], 220)
            extra = Client(srv)
            code, lines = extra.reply()
            self.assertEqual(code, 421)
            self.assertIn("4.7.0", lines[0])
            self.assertTrue(extra.closed(3))
            extra.close()
            held[0].cmd("QUIT")
            held[0].close()
            time.sleep(0.3)
            again = Client(srv)
            self.assertEqual(again.reply()[0], 220)
            for c in held[1:] + [again]:
                c.close()
            self.assertTrue(wait_log(srv, "max_sessions_per_ip (3) reached for [127.0.0.1]"))

    def test_trusted_network_is_exempt(self):
        with Server(conf={"max_sessions_per_ip": "2"}) as srv:
            held = [Client(srv) for _ in range(5)]
            for c in held:
                self.assertEqual(c.reply()[0], 220)
                c.close()

    def test_connect_rate_per_ip(self):
        with Server(conf=dict(UNTRUSTED, max_connect_rate_per_ip="5")) as srv:
            codes = []
            for _ in range(8):
                c = Client(srv)
                codes.append(c.reply()[0])
                c.close()
            self.assertEqual(codes[:5], [220] * 5)
            self.assertEqual(codes[5:], [421] * 3)


class SlowClientTest(unittest.TestCase):

    def test_trickled_command_cannot_hold_session(self):
        with Server(conf={"timeout_command": "2"}) as srv:
            c = Client(srv)
            c.reply()
            t0 = time.time()
            code = None
            for ch in b"NOOP and a long argument that never ends":
                try:
                    c.send(bytes([ch]))
                except OSError:
                    break
                time.sleep(0.25)
                c.sock.settimeout(0.01)
                try:
                    data = c.sock.recv(4096)
                    if data.startswith(b"421"):
                        code = 421
                        self.assertIn(b"4.4.2", data)
                        break
                except socket.timeout:
                    pass
            self.assertEqual(code, 421, "a client trickling bytes held the session")
            self.assertLess(time.time() - t0, 5)
            c.close()

    def test_trickled_data_bounded_by_timeout_data(self):
        with Server(conf={"timeout_data": "2", "timeout_command": "30"}) as srv:
            c = Client(srv)
            c.reply()
            c.cmd("HELO slow.example")
            c.cmd("MAIL FROM:<a@b.example>")
            c.cmd("RCPT TO:<u@example.test>")
            self.assertEqual(c.cmd("DATA")[0], 354)
            t0 = time.time()
            got = b""
            while time.time() - t0 < 8:
                try:
                    c.send(b"x")
                except OSError:
                    break
                time.sleep(0.2)
                c.sock.settimeout(0.01)
                try:
                    got += c.sock.recv(4096)
                except socket.timeout:
                    pass
                if b"421" in got:
                    break
            self.assertIn(b"421 4.4.2", got)
            self.assertLess(time.time() - t0, 5)
            self.assertEqual(srv.queue_files(), [])
            c.close()


def _hold_connections(port, n, ready, release):
    """Child process: open n idle connections, read each banner, wait."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (n + 64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        socks.append(s)
    for s in socks:
        s.settimeout(30)
        s.recv(128)
    ready.set()
    release.wait(120)
    for s in socks:
        s.close()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class ManyConnectionsTest(unittest.TestCase):

    def test_thousands_of_idle_sessions(self):
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        # The server needs one descriptor per session plus a few dozen; this
        # machine's hard limit bounds how many we can hold (20,000 here).
        total = min(19500, hard - 200)
        per_proc = 5000
        conf = {"max_sessions": str(min(20000, hard - 100)), "timeout_command": "120"}
        with Server(conf=conf) as srv:
            base = rss_kib(srv.proc.pid)
            procs, events = [], []
            release = multiprocessing.Event()
            left = total
            while left > 0:
                n = min(per_proc, left)
                ready = multiprocessing.Event()
                p = multiprocessing.Process(target=_hold_connections, args=(srv.port, n, ready, release))
                p.start()
                procs.append(p)
                events.append(ready)
                left -= n
            try:
                for e in events:
                    self.assertTrue(e.wait(120), "could not open all connections")
                held = rss_kib(srv.proc.pid)
                per_session = (held - base) * 1024 / total
                print("\n%d idle sessions: RSS %d KiB -> %d KiB, %.0f bytes per session"
                      % (total, base, held, per_session))
                # a new client is still served promptly
                t0 = time.time()
                c = Client(srv)
                self.assertEqual(c.reply()[0], 220)
                self.assertEqual(c.cmd("EHLO late.example")[0], 250)
                self.assertLess(time.time() - t0, 2)
                c.close()
                self.assertLess(per_session, 16 * 1024)
            finally:
                release.set()
                for p in procs:
                    p.join(60)


@unittest.skipUnless(can_mount(), "needs root and tmpfs mounts")
class DiskFullTest(unittest.TestCase):

    def test_queue_disk_full_then_recovers(self):
        srv = Server()
        mount_tmpfs(srv.workdir, "400k")
        try:
            srv.start()
            body = "Subject: fill\r\n\r\n" + ("y" * 76 + "\r\n") * 600  # ~47 KiB
            c = Client(srv)
            c.reply()
            c.cmd("EHLO filler.example")
            codes = []
            for _ in range(30):
                c.cmd("MAIL FROM:<a@b.example>")
                c.cmd("RCPT TO:<u@example.test>")
                c.cmd("DATA")
                c.send(body + ".\r\n")
                code, lines = c.reply()
                codes.append(code)
                if code == 451:
                    self.assertIn("4.3.0", lines[0])
                    break
            self.assertIn(451, codes, "the disk never filled: %r" % codes)
            self.assertEqual(c.cmd("NOOP")[0], 250)  # the session stays usable
            files = srv.queue_files()
            for qid in files:
                parse_queue_file(os.path.join(srv.workdir, "queue", "new", qid))
            self.assertEqual(os.listdir(os.path.join(srv.workdir, "queue", "tmp")), [])
            # space comes back: the server recovers by itself
            for qid in files:
                os.unlink(os.path.join(srv.workdir, "queue", "new", qid))
            # the journal gets its room back when the materializer retires the
            # failed segment (a checkpoint after the files are out): within a
            # few seconds, in the same session, without a restart
            deadline, code = time.monotonic() + 10, None
            while code != 250 and time.monotonic() < deadline:
                c.cmd("MAIL FROM:<a@b.example>")
                c.cmd("RCPT TO:<u@example.test>")
                c.cmd("DATA")
                c.send(body + ".\r\n")
                code = c.reply()[0]
                if code != 250:
                    self.assertEqual(code, 451)
                    time.sleep(0.5)
            self.assertEqual(code, 250)
            c.cmd("QUIT")
            c.close()
        finally:
            try:
                srv.stop()
            finally:
                umount(srv.workdir)
                srv.close()

    def test_receivelog_disk_full_mail_keeps_flowing(self):
        srv = Server(receivelog=True)
        logdir = os.path.join(srv.workdir, "receivelog")
        mount_tmpfs(logdir, "48k")
        try:
            srv.start()
            for i in range(60):
                send(srv, "u%d@example.test" % i)  # every message still gets its 250
            self.assertEqual(len(srv.queue_files()), 60)
            self.assertTrue(wait_stderr(srv, "receivelog", 5), srv.stderr())
            # space comes back: the flusher writes everything it kept, in order
            subprocess.run(["mount", "-o", "remount,size=8m", logdir], check=True)
            send(srv, "after@example.test")
            self.assertTrue(wait_log(srv, "after@example.test", 5))
            deadline = time.time() + 5  # the session's last lines may follow a moment later
            while log_text(srv).count("closesocket()") < 61 and time.time() < deadline:
                time.sleep(0.05)
            text = log_text(srv)
            self.assertEqual(text.count("closesocket()"), 61)
            for i in range(60):
                self.assertIn("<u%d@example.test>... Recipient ok." % i, text)
        finally:
            try:
                srv.stop()
            finally:
                umount(logdir)
                srv.close()


@unittest.skipUnless(os.geteuid() == 0, "privilege drop needs root")
class PrivilegeTest(unittest.TestCase):

    def test_drops_to_user(self):
        srv = Server(conf={"user": "nobody"}, receivelog=True)
        os.chmod(srv.dir, 0o755)  # the run user must reach its workdir
        with srv:
            send(srv)
            with open("/proc/%d/status" % srv.proc.pid) as f:
                uid_line = [l for l in f if l.startswith("Uid:")][0].split()[1:]
            nobody = int(subprocess.check_output(["id", "-u", "nobody"]))
            self.assertEqual({int(u) for u in uid_line}, {nobody})
            qid = srv.queue_files()[0]
            self.assertEqual(os.stat(os.path.join(srv.workdir, "queue", "new", qid)).st_uid, nobody)
            self.assertTrue(wait_log(srv, "closesocket()"))

    def test_unknown_user_refuses_to_start(self):
        srv = Server(conf={"user": "no-such-user-mxring"})
        try:
            p = subprocess.run([BINARY, "-c", srv.conf_path], capture_output=True, timeout=10)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(b"no-such-user-mxring", p.stderr)
        finally:
            srv.close()


class OpenRelayTest(unittest.TestCase):
    """Classic relay tricks from an untrusted, unauthenticated client, with no
    recipient directory: refused, or accepted only as a local mailbox."""

    TRICKS = ["user%remote.example@example.test", "remote.example!user@example.test",
              '"user@remote.example"@example.test', "@example.test:user@remote.example",
              "user@remote.example.", "user@[192.0.2.1]", "user@[IPv6:2001:db8::1]",
              "user@remote.example@example.test", "user@example.test.remote.example",
              "USER@REMOTE.EXAMPLE", "user@remote.example\\@example.test"]

    def test_relay_tricks(self):
        with Server(conf=UNTRUSTED) as srv:
            c = Client(srv)
            c.reply()
            c.cmd("EHLO relay.example")
            c.cmd("MAIL FROM:<spam@remote.example>")
            accepted = []
            for t in self.TRICKS:
                code, _ = c.cmd("RCPT TO:<%s>" % t)
                if code == 250:
                    accepted.append(t)
            for t in accepted:  # accepted ones must be local mailboxes of ours
                domain = t.rsplit("@", 1)[1].lower()
                self.assertIn(domain, ("example.test", "example.org"), t)
            if accepted:
                self.assertEqual(c.cmd("DATA")[0], 354)
                c.send("Subject: r\r\n\r\nx\r\n.\r\n")
                code, lines = c.reply()
                env = srv.read_queue(lines[0].split("id=")[1])
                for r in env["rcpt"]:
                    self.assertIn(r.rsplit("@", 1)[1].lower(), ("example.test", "example.org"))
            c.close()


if __name__ == "__main__":
    unittest.main()
