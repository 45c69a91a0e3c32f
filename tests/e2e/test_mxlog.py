"""test_mxlog.py - end-to-end tests of build/mxlog (issue 13) against a real
mxringd with the receivelog on: sessions of every verdict kind made on
loopback with smtplib, raw sockets, ssl, dnsmasq and clamd; `mxlog why`
names the verdict of each (text and --json field by field); 60 concurrent
sessions are reconstructed with the right client and verdict; a restart
and a kill -9 in the middle of a day do not mix sessions; `mxlog follow`
survives the folder renamed away and back and the switch to the next
day's file; the HTML report is rendered by a real headless Chromium
(bars counted in the DOM, no console errors, a screenshot)."""
import base64
import crypt
import datetime
import glob
import json
import os
import re
import select
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from harness import BINARY, ROOT, Client, Server, free_port, log_text, make_certs

MXLOG = os.environ.get("MXLOG", os.path.join(os.path.dirname(BINARY), "mxlog"))
PASSWORD = "s3cret-Pa55"
USERS = ("alice", "bob", "carol", "dave")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CERTS = None


def setUpModule():
    global CERTS
    CERTS = make_certs()


def tearDownModule():
    shutil.rmtree(CERTS, ignore_errors=True)


def mx_server(extra=None):
    """A server with users, TLS, an untrusted loopback and small limits."""
    srv = Server(receivelog=True)
    users = srv.path("users")
    with open(users, "w") as f:
        for u in USERS:
            f.write("%s@example.test:%s\n"
                    % (u, crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_SHA512))))
    srv.conf.update({
        "users_file": users,
        "tls_cert": os.path.join(CERTS, "cert.pem"),
        "tls_key": os.path.join(CERTS, "key.pem"),
        "trusted_networks": "10.0.0.0/8",
        "max_recipients": "3",
        "max_message_size": "2000",
        "max_sessions_per_ip": "4",
        "auth_require_tls": "yes",
    })
    srv.conf.update(extra or {})
    srv.write_conf()
    return srv


def mxlog(srv, *args, check=True):
    """Run mxlog on srv's workdir; (rc, stdout, stderr)."""
    p = subprocess.run([MXLOG, "--dir", srv.workdir] + list(args), capture_output=True,
                       text=True, timeout=60)
    if check and p.returncode not in (0, 1):
        raise AssertionError("mxlog %s: rc %d: %s" % (args, p.returncode, p.stderr))
    return p.returncode, p.stdout, p.stderr


def why_json(srv, query):
    rc, out, _ = mxlog(srv, "why", query, "--json")
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def sid_of_port(srv, port, timeout=5):
    """The session id of the connection from local port, once closed."""
    deadline = time.time() + timeout
    pat = re.compile(r", ([0-9A-F]{8}), Connection accepted: client \[127\.0\.0\.1\]:%d," % port)
    while time.time() < deadline:
        text = log_text(srv)
        m = pat.search(text)
        if m and (", %s, closesocket()" % m.group(1)) in text:
            return m.group(1)
        time.sleep(0.05)
    raise AssertionError("no closed session from port %d in:\n%s" % (port, log_text(srv)[-3000:]))


def greet(c, name="client.example"):
    assert c.reply()[0] == 220
    assert c.cmd("EHLO " + name)[0] == 250


def port_of(c):
    return c.sock.getsockname()[1]


def data_raw(c, body):
    """DATA, then body bytes as they are (no dot handling), then the reply."""
    assert c.cmd("DATA")[0] == 354
    c.send(body)
    return c.reply()


class VerdictsTest(unittest.TestCase):
    """One server, a session of each verdict kind, `mxlog why` on each."""

    @classmethod
    def setUpClass(cls):
        cls.srv = mx_server().start()
        cls.sessions = {}           # kind -> session id
        try:
            cls.make_sessions()
        except Exception:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    @classmethod
    def session(cls, kind, fn):
        c = Client(cls.srv)
        port = port_of(c)
        try:
            fn(c)
        finally:
            c.sock.close()
        cls.sessions[kind] = sid_of_port(cls.srv, port)

    @classmethod
    def make_sessions(cls):
        def accepted(c):
            greet(c)
            assert c.cmd("MAIL FROM:<Sender1@Remote.Example>")[0] == 250
            assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
            assert data_raw(c, b"Subject: ok\r\n\r\nhello\r\n.\r\n")[0] == 250
            c.cmd("QUIT")

        def unknown(c):
            greet(c)
            c.cmd("MAIL FROM:<s2@remote.example>")
            assert c.cmd("RCPT TO:<nobody@example.test>")[0] == 550
            c.cmd("QUIT")

        def relay(c):
            greet(c)
            c.cmd("MAIL FROM:<s3@remote.example>")
            assert c.cmd("RCPT TO:<someone@far.example>")[0] == 550
            c.cmd("QUIT")

        def too_big(c):
            greet(c)
            c.cmd("MAIL FROM:<s4@remote.example>")
            c.cmd("RCPT TO:<alice@example.test>")
            assert data_raw(c, b"Subject: big\r\n\r\n" + b"x" * 70 + (b"\r\n" + b"y" * 70) * 40
                            + b"\r\n.\r\n")[0] == 552
            c.cmd("QUIT")

        def bare_lf(c):
            greet(c)
            c.cmd("MAIL FROM:<s5@remote.example>")
            c.cmd("RCPT TO:<alice@example.test>")
            assert data_raw(c, b"Subject: x\r\n\r\nab\n.\nMAIL FROM:<x@y>\r\n.\r\n")[0] == 550
            c.cmd("QUIT")

        def nul(c):
            greet(c)
            c.cmd("MAIL FROM:<s6@remote.example>")
            c.cmd("RCPT TO:<alice@example.test>")
            assert data_raw(c, b"Subject: x\r\n\r\nab\0cd\r\n.\r\n")[0] == 550
            c.cmd("QUIT")

        def too_many(c):
            greet(c)
            c.cmd("MAIL FROM:<s7@remote.example>")
            for u in USERS[:3]:
                assert c.cmd("RCPT TO:<%s@example.test>" % u)[0] == 250
            assert c.cmd("RCPT TO:<dave@example.test>")[0] == 452
            c.cmd("QUIT")

        def gone_mid_data(c):
            greet(c)
            c.cmd("MAIL FROM:<s8@remote.example>")
            c.cmd("RCPT TO:<alice@example.test>")
            assert c.cmd("DATA")[0] == 354
            c.send(b"Subject: half\r\n\r\nhalf a mess")

        def auth_fail(c):
            greet(c)
            assert c.cmd("STARTTLS")[0] == 220
            tls = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))
            c.sock = tls.wrap_socket(c.sock, server_hostname="mx.test")
            assert c.cmd("EHLO client.example")[0] == 250
            bad = base64.b64encode(b"\0alice@example.test\0wrong").decode()
            assert c.cmd("AUTH PLAIN " + bad)[0] == 535
            assert c.cmd("AUTH PLAIN " + bad)[0] == 535
            assert c.cmd("AUTH PLAIN " + bad)[0] in (535, 421)
            c.closed(5)

        def tls_fail(c):
            greet(c)
            assert c.cmd("STARTTLS")[0] == 220
            c.send(b"this is not a TLS client hello\r\n" * 4)
            c.closed(5)

        for kind, fn in [("accepted", accepted), ("user_unknown", unknown),
                         ("relay_denied", relay), ("too_big", too_big), ("bare_eol", bare_lf),
                         ("nul", nul), ("too_many_recipients", too_many),
                         ("client_gone_mid_data", gone_mid_data), ("auth_failed", auth_fail),
                         ("tls_failed", tls_fail)]:
            cls.session(kind, fn)
        # per-IP limit: four idle sessions, the fifth is refused
        idle = [Client(cls.srv) for _ in range(4)]
        for c in idle:
            assert c.reply()[0] == 220
        c = Client(cls.srv)
        port = port_of(c)
        assert c.reply()[0] == 421
        c.sock.close()
        cls.sessions["per_ip_limit"] = sid_of_port(cls.srv, port)
        for c in idle:
            c.cmd("QUIT")
            c.sock.close()
        deadline = time.time() + 5
        while log_text(cls.srv).count("closesocket()") < 15 and time.time() < deadline:
            time.sleep(0.05)

    def verdicts(self, kind):
        sid = self.sessions[kind]
        objs = why_json(self.srv, sid)
        self.assertTrue(objs, "mxlog why %s (%s) printed nothing" % (sid, kind))
        for o in objs:
            self.assertEqual(o["session"], sid)
            self.assertEqual(o["client"], "127.0.0.1")
            self.assertEqual(o["host"], socket.gethostname())
        return objs

    def test_mxlog_why_accepted_text_and_json(self):
        sid = self.sessions["accepted"]
        qid = [f for f in self.srv.queue_files()]
        rc, out, _ = mxlog(self.srv, "why", "sender1@remote.example")   # case-insensitive
        self.assertEqual(rc, 0)
        lines = out.splitlines()
        self.assertEqual(len(lines), 1, out)
        self.assertIn(" %s 127.0.0.1:" % sid, lines[0])
        self.assertIn("helo=client.example tls=- auth=- from=<Sender1@Remote.Example> "
                      "to=<alice@example.test>", lines[0])
        m = re.search(r"accepted \(queue id ([0-9A-F]{20})\)$", lines[0])
        self.assertIsNotNone(m, lines[0])
        self.assertIn(m.group(1), qid)
        o, = why_json(self.srv, "SENDER1@remote.example")
        self.assertEqual(o["type"], "transaction")
        self.assertEqual(o["session"], sid)
        self.assertEqual(o["client"], "127.0.0.1")
        self.assertIsInstance(o["port"], int)
        self.assertGreater(o["port"], 0)
        self.assertEqual(o["helo"], "client.example")
        self.assertIsNone(o["tls"])
        self.assertIsNone(o["auth"])
        self.assertEqual(o["from"], "Sender1@Remote.Example")
        self.assertEqual(o["rcpts"], [{"addr": "alice@example.test", "status": "accepted"}])
        self.assertEqual(o["rcpts_accepted"], 1)
        self.assertEqual(o["rcpts_refused"], 0)
        self.assertEqual(o["size"], len(b"Subject: ok\r\n\r\nhello\r\n"))
        self.assertEqual(o["result"], "queued")
        self.assertEqual(o["verdict"], "accepted")
        self.assertEqual(o["queue_id"], m.group(1))
        self.assertIsNone(o["reason"])
        self.assertTrue(o["summary"])
        self.assertRegex(o["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")
        # the queue id finds the same transaction; -v adds the raw lines
        o2, = why_json(self.srv, m.group(1))
        self.assertEqual(o2["session"], sid)
        rc, out, _ = mxlog(self.srv, "why", m.group(1), "-v")
        self.assertIn(", %s, Connection accepted: client [127.0.0.1]:" % sid, out)
        self.assertIn(", %s, closesocket()" % sid, out)

    def test_mxlog_why_user_unknown(self):
        o, = self.verdicts("user_unknown")
        self.assertEqual(o["verdict"], "user_unknown")
        self.assertEqual(o["rcpts"], [{"addr": "nobody@example.test", "status": "user_unknown"}])
        self.assertEqual(o["rcpts_refused"], 1)
        self.assertEqual(o["words"], "refused at RCPT: <nobody@example.test> User unknown")
        p, = why_json(self.srv, "Nobody@Example.Test")
        self.assertEqual(p["verdict"], "user_unknown")

    def test_mxlog_why_relay_denied(self):
        o, = self.verdicts("relay_denied")
        self.assertEqual(o["verdict"], "relay_denied")
        self.assertIn("relaying denied for <someone@far.example>", o["words"])
        self.assertEqual(o["rcpts"][0]["status"], "relay_denied")

    def test_mxlog_why_too_big(self):
        o, = self.verdicts("too_big")
        self.assertEqual(o["verdict"], "too_big")
        self.assertEqual(o["result"], "refused")
        self.assertIn("max_message_size 2000", o["reason"])

    def test_mxlog_why_bare_lf(self):
        o, = self.verdicts("bare_eol")
        self.assertEqual(o["verdict"], "bare_eol")
        self.assertIn("bare LF at data offset", o["words"])
        self.assertIn("smuggling", o["words"])

    def test_mxlog_why_nul(self):
        o, = self.verdicts("nul")
        self.assertEqual(o["verdict"], "nul")
        self.assertIn("NUL octet at data offset", o["words"])

    def test_mxlog_why_too_many_recipients(self):
        o, = self.verdicts("too_many_recipients")
        self.assertEqual(o["rcpts_accepted"], 3)
        self.assertEqual(o["rcpts_refused"], 1)
        self.assertEqual(o["rcpts"][3], {"addr": "dave@example.test",
                                         "status": "too_many_recipients"})
        d = [x for x in why_json(self.srv, "dave@example.test")
             if x["session"] == self.sessions["too_many_recipients"]]
        self.assertEqual(d[0]["verdict"], "too_many_recipients")

    def test_mxlog_why_client_gone_mid_data(self):
        o, = self.verdicts("client_gone_mid_data")
        self.assertEqual(o["verdict"], "client_gone_mid_data")
        self.assertEqual(o["reason"], "client gone")

    def test_mxlog_why_auth_failed(self):
        objs = self.verdicts("auth_failed")
        s = [o for o in objs if o["type"] == "session"]
        self.assertEqual(len(s), 1, objs)
        self.assertEqual(s[0]["verdict"], "auth_failed")
        self.assertEqual(s[0]["tls"], "TLSv1.3")
        self.assertEqual(s[0]["auth_failures"], 3)
        self.assertEqual(s[0]["auth_failed_user"], "alice@example.test")
        self.assertEqual(s[0]["words"],
                         "AUTH failed for user alice@example.test (3rd attempt, cut off)")
        # asked by the user's address, the same session answers
        a = [o for o in why_json(self.srv, "alice@example.test") if o["type"] == "session"]
        self.assertEqual([o["session"] for o in a], [self.sessions["auth_failed"]])

    def test_mxlog_why_tls_failed(self):
        s, = self.verdicts("tls_failed")
        self.assertEqual(s["verdict"], "tls_failed")
        self.assertTrue(s["words"].startswith("TLS handshake failure: "), s["words"])

    def test_mxlog_why_per_ip_limit(self):
        s, = self.verdicts("per_ip_limit")
        self.assertEqual(s["verdict"], "per_ip_limit")
        self.assertIn("max_sessions_per_ip", s["words"])

    def test_mxlog_why_unknown_query_and_errors(self):
        rc, out, err = mxlog(self.srv, "why", "never@example.test")
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("nothing in the receivelog involves never@example.test", err)
        p = subprocess.run([MXLOG, "--dir", self.srv.dir + "/nope", "why", "x@y"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("receivelog: No such file or directory", p.stderr)

    def test_mxlog_stats_counts(self):
        rc, out, _ = mxlog(self.srv, "stats", "--by", "reason", "--json")
        got = {o["key"]: o["count"] for o in map(json.loads, out.splitlines())}
        for kind in ("accepted", "user_unknown", "relay_denied", "too_big", "bare_eol", "nul",
                     "client_gone_mid_data", "auth_failed", "tls_failed", "per_ip_limit"):
            self.assertEqual(got.get(kind), 1, (kind, got))
        rc, out, _ = mxlog(self.srv, "stats", "--json")
        tot = json.loads(out.splitlines()[0])
        self.assertEqual(tot["table"], "totals")
        self.assertEqual(tot["accepted"], 1)
        self.assertEqual(tot["auth_failures"], 3)
        self.assertEqual(tot["bad_lines"], 0)
        self.assertEqual(tot["connections"], 11 + 4)

    def test_mxlog_report_in_chromium(self):
        html = os.path.join(self.srv.dir, "report.html")
        rc, _, err = mxlog(self.srv, "report", "--html", html)
        self.assertEqual(rc, 0, err)
        with open(html) as f:
            page = f.read()
        for bad in ("<script", "http://", "https://", "src="):
            self.assertNotIn(bad, page)
        # the bars drawn: one per (hour, verdict) with messages
        want = check_in_chromium(self, html, self.srv.dir)
        self.assertEqual(want["bars"], count_expected_bars(self.srv), want)


def count_expected_bars(srv):
    """Bars the chart must have: one per hour and verdict with a count
    (every refusal counts, and accepted; 'no mail' sessions do not)."""
    rc, out, _ = mxlog(srv, "stats", "--by", "reason", "--json")
    kinds = [o["key"] for o in map(json.loads, out.splitlines())
             if o["key"] not in ("no_mail", "aborted")]
    rc, out, _ = mxlog(srv, "stats", "--by", "hour", "--json")
    hours = [o for o in map(json.loads, out.splitlines())]
    assert len(hours) == 1, hours   # the sessions of one test run share an hour
    return len(kinds)


def check_in_chromium(case, html, folder):
    """Render html with headless Chromium: the DOM's bars, console errors
    (none allowed) and a screenshot (kept next to the page)."""
    prof = tempfile.mkdtemp(prefix="mxlog-chromium-", dir=folder)
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--user-data-dir=" + prof, "--enable-logging=stderr", "--v=0"]
    url = "file://" + html
    dom = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True, timeout=90)
    case.assertEqual(dom.returncode, 0, dom.stderr[-2000:])
    console = [l for l in dom.stderr.splitlines() if "CONSOLE" in l or "Uncaught" in l]
    case.assertEqual(console, [], "console messages from the page")
    shot = os.path.join(folder, "report.png")
    ss = subprocess.run(flags + ["--screenshot=" + shot, "--window-size=1100,1400", url],
                        capture_output=True, text=True, timeout=90)
    case.assertEqual(ss.returncode, 0, ss.stderr[-2000:])
    case.assertGreater(os.path.getsize(shot), 10000)
    if os.environ.get("MXLOG_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["MXLOG_KEEP_SCREENSHOT"])
    bars = len(re.findall(r'<rect class="bar"', dom.stdout))
    case.assertIn("<svg", dom.stdout)
    case.assertIn('id="worst"', dom.stdout)
    return {"bars": bars}


class FilterVerdictsTest(unittest.TestCase):
    """Spam (rejected and quarantined) and virus verdicts with the real
    dnsmasq and clamd of test_filters.py."""

    def test_mxlog_why_spam_and_virus(self):
        import test_filters as tf
        folder = tempfile.mkdtemp(prefix="mxlog-filters-")
        self.addCleanup(shutil.rmtree, folder, True)
        dns = tf.Dnsmasq(folder).start()
        self.addCleanup(dns.stop)
        clam = tf.Clamd(folder).start()
        self.addCleanup(clam.stop)
        srv = Server(receivelog=True, conf={
            "surbl_zones": tf.ZONES, "dns_servers": "127.0.0.1:%d" % dns.port,
            "dns_timeout_ms": "3000", "clamd": "unix:" + clam.sock}).start()
        self.addCleanup(srv.close)
        cases = [("spam@remote.example", "see http://bad.example/x now", 554),
                 ("quar@remote.example", "see http://quar.example/x now", 250),
                 ("virus@remote.example", tf.EICAR.decode(), 554)]
        for sender, body, code in cases:
            with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as s:
                s.ehlo("client.example")
                s.mail(sender)
                s.rcpt("u@example.test")
                got, _ = s.data(("Subject: t\r\n\r\n%s\r\n" % body).encode())
                self.assertEqual(got, code, sender)
        deadline = time.time() + 5
        while log_text(srv).count("closesocket()") < 3 and time.time() < deadline:
            time.sleep(0.05)
        o, = why_json(srv, "spam@remote.example")
        self.assertEqual(o["verdict"], "spam")
        self.assertEqual(o["spam_domain"], "bad.example")
        self.assertEqual(o["spam_zone"], "multi.surbl.test")
        self.assertEqual(o["words"], "spam (domain bad.example listed in zone multi.surbl.test): "
                                     "rejected")
        o, = why_json(srv, "quar@remote.example")
        self.assertEqual(o["verdict"], "quarantined")
        self.assertEqual(o["result"], "quarantined")
        self.assertRegex(o["queue_id"], r"^[0-9A-F]{20}$")
        self.assertIn("spam (domain quar.example listed in zone q.surbl.test)", o["words"])
        o, = why_json(srv, "virus@remote.example")
        self.assertEqual(o["verdict"], "virus")
        self.assertTrue(o["virus"].startswith("Eicar-Test-Signature"), o)
        self.assertEqual(o["words"], "virus %s: rejected" % o["virus"])


class SessionEndsTest(unittest.TestCase):
    """Timeout, early talker, shutdown, a restart and a kill -9 mid-day."""

    def test_mxlog_why_timeout(self):
        srv = mx_server({"timeout_command": "1"}).start()
        self.addCleanup(srv.close)
        c = Client(srv)
        self.addCleanup(c.sock.close)
        greet(c)
        c.cmd("MAIL FROM:<slow@remote.example>")
        c.cmd("RCPT TO:<alice@example.test>")
        self.assertTrue(c.closed(5))
        sid = sid_of_port(srv, port_of(c))
        o, = why_json(srv, "slow@remote.example")
        self.assertEqual((o["session"], o["verdict"]), (sid, "timeout"))
        self.assertIn("timeout_command", o["words"])

    def test_mxlog_why_early_talker(self):
        srv = mx_server({"greet_pause_ms": "700"}).start()
        self.addCleanup(srv.close)
        c = Client(srv)
        self.addCleanup(c.sock.close)
        c.send("EHLO impatient.example\r\n")
        self.assertEqual(c.reply()[0], 554)
        sid = sid_of_port(srv, port_of(c))
        s, = why_json(srv, sid)
        self.assertEqual(s["verdict"], "early_talker")

    def test_mxlog_restart_and_crash_do_not_mix_sessions(self):
        srv = mx_server()
        self.addCleanup(srv.close)
        srv.start()
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("before@remote.example", ["alice@example.test"], "Subject: 1\r\n\r\nx\r\n")
        # shutdown with a transaction open
        c = Client(srv)
        greet(c)
        c.cmd("MAIL FROM:<shut@remote.example>")
        c.cmd("RCPT TO:<alice@example.test>")
        srv.stop()
        c.sock.close()
        restart(srv)
        # a crash (kill -9) with a transaction open
        c = Client(srv)
        greet(c)
        c.cmd("MAIL FROM:<crash@remote.example>")
        c.cmd("RCPT TO:<alice@example.test>")
        time.sleep(1.2)          # the flusher writes the lines so far
        srv.kill9()
        c.sock.close()
        restart(srv)
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("after@remote.example", ["alice@example.test"], "Subject: 2\r\n\r\nx\r\n")
        srv.stop()
        text = log_text(srv)
        self.assertEqual(text.count("mxringd started ("), 3)
        b, = why_json(srv, "before@remote.example")
        a, = why_json(srv, "after@remote.example")
        sh, = why_json(srv, "shut@remote.example")
        cr, = why_json(srv, "crash@remote.example")
        self.assertEqual(b["verdict"], "accepted")
        self.assertEqual(a["verdict"], "accepted")
        self.assertEqual(sh["verdict"], "shutdown")
        self.assertEqual(cr["verdict"], "cut_off")
        self.assertIn("restart", cr["words"])
        ids = {b["session"], a["session"], sh["session"], cr["session"]}
        self.assertEqual(len(ids), 4, ids)
        # every id is used by one connection only, across the three processes
        conns = re.findall(r", ([0-9A-F]{8}), Connection accepted", text)
        self.assertEqual(len(conns), len(set(conns)))
        # the 'after' session's lines are its own: one MAIL, from 'after'
        rc, out, _ = mxlog(srv, "why", a["session"], "-v")
        self.assertEqual(out.lower().count("mail from:<"), 1, out)

    def test_mxlog_sixty_concurrent_sessions(self):
        srv = mx_server({"max_sessions_per_ip": "100"}).start()
        self.addCleanup(srv.close)
        n = 60
        barrier = threading.Barrier(n)
        ports, errors = {}, []

        def one(i):
            try:
                c = Client(srv, timeout=30)
                ports[i] = port_of(c)
                greet(c, "h%d.example" % i)
                barrier.wait(20)
                c.cmd("MAIL FROM:<c%d@remote.example>" % i)
                barrier.wait(20)
                c.cmd("RCPT TO:<%s@example.test>" % ("alice" if i % 3 else "nobody%d" % i))
                barrier.wait(20)
                if i % 3:
                    assert data_raw(c, b"Subject: %d\r\n\r\nbody\r\n.\r\n" % i)[0] == 250
                c.cmd("QUIT")
                c.sock.close()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        deadline = time.time() + 5
        while log_text(srv).count("closesocket()") < n and time.time() < deadline:
            time.sleep(0.05)
        objs = why_json(srv, "127.0.0.1")
        by_from = {o["from"]: o for o in objs if o["type"] == "transaction"}
        self.assertEqual(len(by_from), n)
        for i in range(n):
            o = by_from["c%d@remote.example" % i]
            self.assertEqual(o["port"], ports[i])
            self.assertEqual(o["helo"], "h%d.example" % i)
            if i % 3:
                self.assertEqual(o["verdict"], "accepted", o)
                self.assertEqual(o["rcpts"], [{"addr": "alice@example.test", "status": "accepted"}])
            else:
                self.assertEqual(o["verdict"], "user_unknown", o)
                self.assertEqual(o["rcpts"][0]["addr"], "nobody%d@example.test" % i)


def restart(srv):
    """Start srv again on the same workdir (a new port: the old may linger)."""
    srv.port = free_port()
    srv.conf["listen"] = "127.0.0.1:%d" % srv.port
    srv.write_conf()
    srv.start()


class FollowTest(unittest.TestCase):
    """`mxlog follow`: live verdicts, the folder renamed away and back, and
    the switch to the next day's file."""

    def read_json(self, proc, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r, _, _ = select.select([proc.stdout], [], [], 0.2)
            if r:
                line = proc.stdout.readline()
                if line:
                    return json.loads(line)
        self.fail("mxlog follow printed nothing within %ds" % timeout)

    def send(self, srv, sender):
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail(sender, ["alice@example.test"], "Subject: f\r\n\r\nx\r\n")

    def test_mxlog_follow_rename_and_midnight(self):
        srv = mx_server().start()
        self.addCleanup(srv.close)
        self.send(srv, "first@remote.example")      # the day file exists
        time.sleep(1.2)
        env = dict(os.environ, MXLOG_POLL_MS="50")
        proc = subprocess.Popen([MXLOG, "--dir", srv.workdir, "follow", "--json"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        time.sleep(0.5)
        self.send(srv, "live@remote.example")
        o = self.read_json(proc)
        self.assertEqual((o["from"], o["verdict"]), ("live@remote.example", "accepted"))
        # the folder renamed away (logging off) and back (on again)
        top = os.path.join(srv.workdir, "receivelog")
        os.rename(top, top + ".off")
        time.sleep(1.5)
        self.send(srv, "unlogged@remote.example")
        os.rename(top + ".off", top)
        time.sleep(1.5)
        self.send(srv, "back@remote.example")
        o = self.read_json(proc)
        self.assertEqual(o["from"], "back@remote.example")
        # midnight: the next day's file appears; follow moves to it
        folder = os.path.join(top, socket.gethostname())
        today = max(f for f in os.listdir(folder) if f.endswith(".log"))
        day = datetime.datetime.strptime(today[:8], "%Y%m%d") + datetime.timedelta(days=1)
        stamp = day.strftime(" [%d/%b/%Y:00:00:01], ")
        sid = "7FFFFF01"
        lines = ["Connection accepted: client [192.0.2.9]:4242, local port 25, worker 0",
                 "MAIL FROM:<midnight@remote.example>", "250 2.1.0 ok",
                 "RCPT TO:<nobody@example.test>",
                 "RCPT refused: <nobody@example.test> User unknown (not in the recipient "
                 "directory)", "550 5.1.1 <nobody@example.test>... User unknown.",
                 "Transaction summary: client=192.0.2.9 helo=- tls=- auth=- "
                 "from=<midnight@remote.example> rcpts=0 rcpts_refused=1 size=0 "
                 "result=aborted reason=\"QUIT\"",
                 "CloseClient Started. (QUIT)", "closesocket()"]
        with open(os.path.join(folder, day.strftime("%Y%m%d.log")), "w") as f:
            for l in lines:
                f.write("%s%s, %s\n" % (stamp, sid, l))
        o = self.read_json(proc)
        self.assertEqual((o["session"], o["verdict"], o["client"]),
                         (sid, "user_unknown", "192.0.2.9"))
        self.assertTrue(o["time"].startswith(day.strftime("%Y-%m-%d")))


class ProxyDnsblTest(unittest.TestCase):
    """A client refused by a DNSBL (real dnsmasq zone) and PROXY headers
    refused (none, untrusted balancer, malformed): `mxlog why` names each
    and `mxlog stats` counts them under their own reason."""

    def refuse_proxy(self, srv, data, source="127.0.0.1"):
        s = socket.create_connection(("127.0.0.1", srv.proxy_port), timeout=10,
                                     source_address=(source, 0))
        port = s.getsockname()[1]
        if data:
            s.sendall(data)
        s.settimeout(5)
        try:
            while s.recv(4096):
                pass
        except (ConnectionResetError, socket.timeout):
            pass
        s.close()
        pat = re.compile(r", ([0-9A-F]{8}), Connection accepted: client \[%s\]:%d,"
                         % (re.escape(source), port))
        deadline = time.time() + 5
        while time.time() < deadline:
            m = pat.search(log_text(srv))
            if m and (", %s, closesocket()" % m.group(1)) in log_text(srv):
                return m.group(1)
            time.sleep(0.05)
        raise AssertionError("no closed session from port %d:\n%s" % (port, log_text(srv)))

    def test_mxlog_proxy_refusals(self):
        srv = mx_server()
        srv.proxy_port = free_port()
        srv.conf.update({"proxy_listen": "127.0.0.1:%d" % srv.proxy_port,
                         "proxy_trusted_networks": "127.0.0.1", "proxy_timeout_ms": "500"})
        srv.write_conf()
        srv.start()
        self.addCleanup(srv.close)
        want = [(self.refuse_proxy(srv, b"EHLO direct.example\r\n"),
                 "PROXY header refused: no PROXY header (not a PROXY header"),
                (self.refuse_proxy(srv, b"PROXY TCP4 203.0.113.5 192.0.2.25 40000 25\r\n",
                                   source="127.0.0.2"),
                 "PROXY header refused: untrusted balancer (sender not in "
                 "proxy_trusted_networks"),
                (self.refuse_proxy(srv, b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"),
                 "PROXY header refused: malformed header (v1: "),
                (self.refuse_proxy(srv, b""),
                 "PROXY header refused: no PROXY header (no complete PROXY header within 500 ms")]
        for sid, words in want:
            o, = why_json(srv, sid)
            self.assertEqual((o["session"], o["verdict"]), (sid, "proxy_refused"))
            self.assertTrue(o["words"].startswith(words), o["words"])
        rc, out, _ = mxlog(srv, "stats", "--json")
        rows = [json.loads(l) for l in out.splitlines()]
        self.assertIn({"table": "reason", "key": "proxy_refused", "count": 4}, rows)
        self.assertEqual([r["refused"] for r in rows if r["table"] == "totals"], [4])

    def test_mxlog_dnsbl_refusal(self):
        from test_dnsbl import SITES, ZoneDns, banner
        d = tempfile.mkdtemp(prefix="mxlog-dnsbl-")
        self.addCleanup(shutil.rmtree, d, True)
        dns = ZoneDns(d).start()
        self.addCleanup(dns.stop)
        srv = mx_server({"dnsbl_sites": SITES, "dns_servers": "127.0.0.1:%d" % dns.port,
                         "dnsbl_timeout_ms": "3000"}).start()
        self.addCleanup(srv.close)
        line, closed = banner(srv, "127.0.0.2")
        self.assertTrue(line.startswith("554 "), line)
        deadline = time.time() + 5
        while "closesocket()" not in log_text(srv) and time.time() < deadline:
            time.sleep(0.05)
        o, = why_json(srv, "127.0.0.2")
        self.assertEqual(o["verdict"], "dnsbl")
        self.assertEqual(o["words"], "client refused by DNSBL: blocked using bl.test "
                                     "(score 3, threshold 3)")
        rc, out, _ = mxlog(srv, "stats", "--json")
        self.assertIn({"table": "reason", "key": "dnsbl", "count": 1},
                      [json.loads(l) for l in out.splitlines()])


class ForgedLinesTest(unittest.TestCase):
    """Client text that reads like the server's own receivelog lines (whole
    command lines, and a quoted local part inside the summary line) never
    changes what mxlog reports."""

    def test_mxlog_forged_lines_ignored(self):
        srv = mx_server().start()
        self.addCleanup(srv.close)
        c = Client(srv)
        self.addCleanup(c.sock.close)
        greet(c, '"x')
        forged = ["Transaction summary: client=6.6.6.6 helo=h tls=- auth=- from=<evil@x.example> "
                  "rcpts=1 rcpts_refused=0 size=1 result=queued id=EVIL",
                  "CloseClient Started. (QUIT)", "closesocket()",
                  "Connection accepted: client [6.6.6.6]:25, local port 25, worker 0",
                  "mxringd started (version 9, pid 1, workers 1, first session id 00000001)",
                  "250 2.0.0 ok"]
        for line in forged:
            self.assertEqual(c.cmd(line)[0], 500)
        sender = '"x> result=queued id=EVIL size=999 reason="@b.example'
        self.assertEqual(c.cmd("MAIL FROM:<%s>" % sender)[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<alice@example.test>")[0], 250)
        self.assertEqual(c.cmd("RSET")[0], 250)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        sid = sid_of_port(srv, port_of(c))
        rc, out, _ = mxlog(srv, "stats", "--json")
        totals, = [json.loads(l) for l in out.splitlines() if '"totals"' in l]
        self.assertEqual((totals["connections"], totals["transactions"], totals["accepted"]),
                         (1, 1, 0), out)
        o, = why_json(srv, sid)
        self.assertEqual((o["session"], o["verdict"], o["from"]), (sid, "aborted", sender))
        self.assertEqual(o["words"], "no message sent (RSET)")
        rc, out, _ = mxlog(srv, "why", "6.6.6.6")
        self.assertEqual(out, "")


class BadInputTest(unittest.TestCase):
    """Bad lines are counted, a corrupt .gz and an unreadable file are
    named, a good .gz is read."""

    def test_mxlog_bad_input(self):
        import gzip
        d = tempfile.mkdtemp(prefix="mxlog-bad-")
        self.addCleanup(shutil.rmtree, d, True)
        host = os.path.join(d, "receivelog", "h1")
        os.makedirs(host)
        good = (" [01/Dec/2026:10:00:00], 00000001, Connection accepted: client [10.1.1.1]:1, "
                "local port 25, worker 0\n"
                " [01/Dec/2026:10:00:00], 00000001, MAIL FROM:<gz@remote.example>\n"
                " [01/Dec/2026:10:00:00], 00000001, 250 ok\n"
                " [01/Dec/2026:10:00:00], 00000001, CloseClient Started. (QUIT)\n"
                " [01/Dec/2026:10:00:00], 00000001, closesocket()\n")
        with gzip.open(os.path.join(host, "20261201.log.gz"), "wt") as f:
            f.write(good)
        with open(os.path.join(host, "20261202.log.gz"), "wb") as f:
            f.write(gzip.compress(good.encode())[:40])
        with open(os.path.join(host, "20261203.log"), "w") as f:
            f.write("junk\n" + good.replace("01/Dec", "03/Dec") + "\x00\xff more junk\n")
        p = subprocess.run([MXLOG, "--dir", d, "stats", "--json"], capture_output=True,
                           text=True, timeout=30)
        rc, out, err = p.returncode, p.stdout, p.stderr
        self.assertEqual(rc, 2)
        self.assertIn("20261202.log.gz: corrupt or truncated gzip data", err)
        self.assertIn("2 line(s) not in the receivelog format", err)
        tot = json.loads(out.splitlines()[0])
        self.assertEqual(tot["bad_lines"], 2)
        self.assertEqual(tot["transactions"], 2)      # one from the .gz, one from the .log
        p = subprocess.run([MXLOG, "--dir", d, "--date", "20261201", "why", "GZ@remote.example",
                            "--json"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        o, = [json.loads(l) for l in p.stdout.splitlines()]
        self.assertEqual((o["host"], o["client"], o["verdict"], o["words"]),
                         ("h1", "10.1.1.1", "aborted", "no message sent (QUIT)"))
        if os.geteuid() != 0:
            os.chmod(os.path.join(host, "20261203.log"), 0)
            p = subprocess.run([MXLOG, "--dir", d, "stats"], capture_output=True, text=True)
            self.assertIn("20261203.log: cannot read", p.stderr)


if __name__ == "__main__":
    unittest.main()
