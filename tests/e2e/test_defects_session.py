"""End-to-end tests of the session defects of issue 14 against the real
mxringd on loopback: AUTH secrets never reach the receivelog (item 2),
postmaster is always deliverable (6), bare-LF command lines are refused (7),
EXPN/TURN/ETRN get 502 and HELP lists only what is offered (8), and the
directory-harvest defence: a per-address budget of unknown recipients ending
in 421, and a tarpit delaying each unknown-recipient reply (11). Raw sockets
(harness.Client), smtplib and swaks."""
import base64
import crypt
import os
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest

from harness import log_text, wait_log, ROOT, Client, Server, make_certs

PASSWORD = "Sup3rSecretPw"
USER = "alice@example.test"
PLAIN_B64 = base64.b64encode(("\0%s\0%s" % (USER, PASSWORD)).encode()).decode()
PASS_B64 = base64.b64encode(PASSWORD.encode()).decode()
SECRETS = (PASSWORD, PLAIN_B64, PASS_B64)
SWAKS = "/usr/bin/swaks"
CERTS = None


def setUpModule():
    global CERTS
    CERTS = make_certs()


def tearDownModule():
    shutil.rmtree(CERTS, ignore_errors=True)


def server(case, conf=None, tls=False):
    """A started server with a users file (alice), 127.0.0.1 untrusted, the
    receivelog on; closed after the test."""
    srv = Server(receivelog=True)
    users = srv.path("users")
    with open(users, "w") as f:
        f.write("%s:%s\n" % (USER, crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_SHA512))))
    srv.conf.update({"users_file": users, "trusted_networks": "10.0.0.0/8"})
    if tls:
        srv.conf.update({"tls_cert": os.path.join(CERTS, "cert.pem"),
                         "tls_key": os.path.join(CERTS, "key.pem")})
    srv.conf.update(conf or {})
    srv.write_conf()
    srv.start()
    case.addCleanup(srv.close)
    return srv


def open_client(srv, ehlo=True):
    c = Client(srv)
    code, _ = c.reply()
    assert code == 220
    if ehlo:
        code, lines = c.cmd("EHLO client.example")
        assert code == 250, lines
    return c


def closed_log(srv, sessions=1):
    """The receivelog once `sessions` sessions have logged their close."""
    deadline = time.time() + 10
    while time.time() < deadline:
        text = log_text(srv)
        if text.count("closesocket()") >= sessions:
            return text
        time.sleep(0.05)
    return log_text(srv)


class AuthSecretsTest(unittest.TestCase):
    """Item 2: no AUTH secret in the receivelog, whatever the reply was."""

    def assert_no_secret(self, text):
        for s in SECRETS:
            self.assertNotIn(s, text)

    def test_defects_auth_secret_after_538_not_logged(self):
        """auth_require_tls = yes and no TLS: a client ignoring the 538 sends
        a real user's password; PLAIN and LOGIN."""
        srv = server(self)
        c = open_client(srv)
        self.assertEqual(c.cmd("AUTH PLAIN")[0], 538)
        self.assertEqual(c.cmd(PLAIN_B64)[0], 500)
        self.assertEqual(c.cmd("AUTH LOGIN")[0], 538)
        self.assertEqual(c.cmd(base64.b64encode(USER.encode()).decode())[0], 500)
        self.assertEqual(c.cmd(PASS_B64)[0], 500)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        text = closed_log(srv)
        self.assertIn("AUTH PLAIN\n", text)
        self.assertIn("****\n", text)
        self.assert_no_secret(text)

    def test_defects_auth_tab_504_503_not_logged(self):
        srv = server(self, {"auth_require_tls": "no"})
        c = open_client(srv)
        # AUTH<TAB>PLAIN: the parser does not know it (500), the log masks it
        self.assertEqual(c.cmd("AUTH\tPLAIN " + PLAIN_B64)[0], 500)
        # unknown mechanism, then the response anyway
        self.assertEqual(c.cmd("AUTH CRAM-MD5")[0], 504)
        self.assertEqual(c.cmd(PLAIN_B64)[0], 500)
        # a real login, then AUTH again (503) and a response anyway
        self.assertEqual(c.cmd("AUTH PLAIN " + PLAIN_B64)[0], 235)
        self.assertEqual(c.cmd("AUTH PLAIN")[0], 503)
        self.assertEqual(c.cmd(PLAIN_B64)[0], 500)
        # the command after that is logged as it is
        self.assertEqual(c.cmd("NOOP")[0], 250)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        text = closed_log(srv)
        self.assertIn("AUTH PLAIN ****\n", text)
        self.assertIn("AUTH CRAM-MD5\n", text)
        self.assertIn("AUTH success: user alice@example.test", text)
        self.assertIn(", NOOP\n", text)
        self.assert_no_secret(text)


class PostmasterTest(unittest.TestCase):
    """Item 6: postmaster@<local domain>, any case, and <postmaster>."""

    def test_defects_postmaster_always_accepted(self):
        srv = server(self)
        s = smtplib.SMTP("127.0.0.1", srv.port, timeout=10)
        s.ehlo("client.example")
        self.assertEqual(s.mail("a@b.example")[0], 250)
        self.assertEqual(s.rcpt("Postmaster@Example.TEST"),
                         (250, b"2.1.5 <Postmaster@Example.TEST>... Recipient ok."))
        self.assertEqual(s.rcpt("POSTMASTER@example.org")[0], 250)
        self.assertEqual(s.rcpt("postmaster")[0], 250)
        self.assertEqual(s.rcpt("nobody@example.test")[0], 550)
        self.assertEqual(s.data("Subject: pm\r\n\r\nhi\r\n")[0], 250)
        s.quit()
        env = srv.read_queue(srv.queue_files()[0])
        self.assertEqual(env["rcpt"], ["Postmaster@Example.TEST", "POSTMASTER@example.org",
                                       "postmaster"])


class CommandLineTest(unittest.TestCase):
    """Items 7 and 8."""

    def test_defects_bare_lf_command_refused(self):
        srv = server(self)
        c = open_client(srv)
        c.send(b"NOOP\n")
        self.assertEqual(c.reply(), (500, ["500 5.5.2 Bare LF in command line, use CRLF"]))
        c.send(b"MAIL FROM:<a@b.example>\n")
        self.assertEqual(c.reply()[0], 500)
        # the MAIL never ran: RCPT is out of sequence
        self.assertEqual(c.cmd("RCPT TO:<alice@example.test>")[0], 503)
        self.assertEqual(c.cmd("NOOP"), (250, ["250 2.0.0 OK"]))
        self.assertEqual(c.cmd("QUIT")[0], 221)
        self.assertIn("command line refused: ended by a bare LF", closed_log(srv))

    def test_defects_bare_lf_counts_as_error(self):
        srv = server(self, {"max_errors": "2"})
        c = open_client(srv)
        c.send(b"NOOP\nNOOP\nNOOP\nNOOP\r\n")
        for _ in range(3):
            self.assertEqual(c.reply()[0], 500)
        code, lines = c.reply()
        self.assertEqual(code, 421, lines)
        self.assertTrue(c.closed())

    def test_defects_expn_turn_etrn_502(self):
        srv = server(self)
        c = open_client(srv)
        for cmd in ("EXPN staff", "TURN", "ETRN example.test"):
            self.assertEqual(c.cmd(cmd), (502, ["502 5.5.1 Error: command not implemented"]))

    def test_defects_help_lists_only_offered(self):
        """TLS and users configured, auth_require_tls = yes: before TLS HELP
        names STARTTLS and not AUTH; inside TLS AUTH and not STARTTLS."""
        srv = server(self, tls=True)
        s = smtplib.SMTP("127.0.0.1", srv.port, timeout=10)
        s.ehlo("client.example")
        code, text = s.docmd("HELP")
        self.assertEqual(code, 214)
        self.assertIn(b" STARTTLS", text)
        self.assertNotIn(b"AUTH", text)
        self.assertNotIn(b"EXPN", text)
        import ssl
        s.starttls(context=ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem")))
        s.ehlo("client.example")
        code, text = s.docmd("HELP")
        self.assertEqual(code, 214)
        self.assertIn(b" AUTH", text)
        self.assertNotIn(b"STARTTLS", text)
        s.quit()


def wait_window_safe():
    """The unknown-recipient budget counts in fixed 10-minute windows of the
    monotonic clock: do not start a budget test in a window's last seconds."""
    left = 600 - time.clock_gettime(time.CLOCK_MONOTONIC) % 600
    if left < 20:
        time.sleep(left + 1)


class HarvestTest(unittest.TestCase):
    """Item 11: budget per client address (421) and tarpit (delayed 550)."""

    STEP_MS = 150
    BUDGET = 4

    def harvest_server(self):
        return server(self, {"max_unknown_recipients_per_ip": str(self.BUDGET),
                             "unknown_recipient_delay_ms": str(self.STEP_MS),
                             "max_errors": "100"})

    def test_defects_harvest_budget_and_tarpit(self):
        wait_window_safe()
        srv = self.harvest_server()
        c = open_client(srv)
        self.assertEqual(c.cmd("MAIL FROM:<a@b.example>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<alice@example.test>")[0], 250)
        for k in range(1, self.BUDGET + 1):
            t0 = time.monotonic()
            code, lines = c.cmd("RCPT TO:<nobody%d@example.test>" % k)
            took = time.monotonic() - t0
            self.assertEqual(code, 550, lines)
            # the k-th unknown recipient waits k * STEP_MS (generous bounds)
            self.assertGreaterEqual(took, 0.8 * k * self.STEP_MS / 1000, (k, took))
            self.assertLess(took, k * self.STEP_MS / 1000 + 3, (k, took))
        code, lines = c.cmd("RCPT TO:<nobody@example.test>")
        self.assertEqual((code, lines), (421, ["421 4.7.0 mx.test Error: too many unknown "
                                               "recipients from your address, try again later"]))
        self.assertTrue(c.closed())
        # the budget is the address's: a new session is cut at its first unknown
        c = open_client(srv)
        self.assertEqual(c.cmd("MAIL FROM:<a@b.example>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<alice@example.test>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<other@example.test>")[0], 421)
        self.assertTrue(c.closed())
        text = closed_log(srv, 2)
        self.assertIn("tarpit: reply to unknown recipient 4 of this session delayed 600 ms", text)
        self.assertIn("max_unknown_recipients_per_ip (4 per 10 minutes) exceeded by [127.0.0.1]",
                      text)
        self.assertIn("CloseClient Started. (unknown recipient limit)", text)

    def test_defects_harvest_swaks_pipelined(self):
        """A real client (swaks, PIPELINING) is cut off with 421 and no
        message is taken."""
        wait_window_safe()
        srv = self.harvest_server()
        rcpts = ",".join(["alice@example.test"] + ["n%d@example.test" % i for i in range(6)])
        p = subprocess.run([SWAKS, "--server", "127.0.0.1", "--port", str(srv.port),
                            "--from", "a@b.example", "--to", rcpts, "--pipeline",
                            "--timeout", "20"], capture_output=True, text=True, timeout=60)
        self.assertIn("421 4.7.0", p.stdout)
        self.assertNotIn("250 2.0.0 Message received ok", p.stdout)
        self.assertEqual(srv.queue_files(), [])

    def test_defects_harvest_trusted_exempt(self):
        wait_window_safe()
        srv = server(self, {"max_unknown_recipients_per_ip": "2",
                            "unknown_recipient_delay_ms": "1000",
                            "trusted_networks": "127.0.0.0/8"})
        c = open_client(srv)
        self.assertEqual(c.cmd("MAIL FROM:<a@b.example>")[0], 250)
        t0 = time.monotonic()
        for k in range(4):
            self.assertEqual(c.cmd("RCPT TO:<nobody%d@example.test>" % k)[0], 550)
        self.assertLess(time.monotonic() - t0, 2.0)


if __name__ == "__main__":
    unittest.main()
