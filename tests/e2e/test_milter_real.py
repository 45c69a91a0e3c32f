"""test_milter_real.py - end-to-end tests of the milter client (issue 17)
against real milters: Rspamd (proxy worker in milter mode, self-scan) and
OpenDKIM (verify mode) chained after it, both with private configurations
and both, with the dnsmasq that publishes this test's DKIM key and DMARC
policies, inside a new network namespace that has only loopback
(milter_real_peers.py); mxringd reaches them over UNIX sockets in the test's
folder. The namespace is checked (only lo, no route off it) before any
daemon starts; where unshare --net is not permitted the tests skip. The
messages are DKIM-signed here (relaxed/relaxed rsa-sha256) with a key made
here. A missing rspamd, opendkim or dnsmasq is a failure (scripts/deps.sh
installs them)."""
import os
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest

from harness import ROOT, Server, log_text
import milter_real_peers as peers

MXLOG = os.path.join(os.path.dirname(os.path.abspath(os.environ.get(
    "MXRINGD", os.path.join(ROOT, "build", "mxringd")))), "mxlog")

MSG = ("From: Alice <a@{dom}>\r\nTo: u@example.test\r\nSubject: real milters\r\n"
       "Date: Wed, 02 Dec 2026 00:00:00 +0000\r\nMessage-ID: <{tag}@{dom}>\r\n"
       "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
       "Hello  there, \r\nsigned in the test.\r\n\r\n")


def message(dom="example.test", tag="1"):
    return MSG.format(dom=dom, tag=tag)


class RealMilterCase(unittest.TestCase):
    """One namespace with dnsmasq, Rspamd and OpenDKIM for the class; a
    fresh mxringd per test."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mxring-milter-real-")
        cls.ns = None
        try:
            cls.ns = peers.Netns()
            cls.ns.assert_loopback_only()  # before any daemon starts
            cls.key = peers.DkimKey("example.test")
            cls.dns = peers.Dnsmasq(cls.ns, cls.dir, {
                cls.key.record_name(): cls.key.txt(),
                "_dmarc.example.test": "v=DMARC1; p=none",
                "_dmarc.reject.test": "v=DMARC1; p=reject",
            })
            cls.rspamd = peers.Rspamd(cls.ns, cls.dir)
            cls.opendkim = peers.OpenDkim(cls.ns, cls.dir)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.ns:
            cls.ns.close()
        if os.environ.get("KEEP_E2E_DIRS") is None:
            shutil.rmtree(cls.dir, ignore_errors=True)

    def server(self, milters):
        srv = Server(conf={"milters": milters, "milter_connect_timeout_ms": "5000",
                           "milter_command_timeout_ms": "10000",
                           "milter_content_timeout_ms": "15000"}, receivelog=True).start()
        self.addCleanup(srv.close)
        return srv

    def rspamd_only(self):
        return self.server("rspamd=unix:" + self.rspamd.sock)

    def send(self, srv, msg, sender="a@example.test"):
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=60) as c:
            c.ehlo("client.example")
            c.mail(sender)
            c.rcpt("u@example.test")
            try:
                code, text = c.data(msg)
            except smtplib.SMTPDataError as e:
                code, text = e.smtp_code, e.smtp_error
            c.noop()
            return code, text.decode()

    def queued_head(self, srv):
        """The header lines of the one queued message (folds joined)."""
        files = srv.queue_files(expect=1)
        self.assertEqual(len(files), 1, files)
        msg = srv.read_queue(files[0])["message"].decode()
        head = msg.partition("\r\n\r\n")[0]
        return [(n, v.strip()) for n, v in peers.split_fields(head)]

    def auth_results(self, head):
        return [v for n, v in head if n.lower() == "authentication-results"]

    def wait_log(self, srv, needles, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline and not all(n in log_text(srv) for n in needles):
            time.sleep(0.05)
        text = log_text(srv)
        self.assertEqual([n for n in needles if n not in text], [], text[-4000:])
        return text

    def test_namespace_is_loopback_only_and_dns_is_the_private_one(self):
        self.ns.assert_loopback_only()
        for p in (self.dns.proc, self.rspamd.proc, self.opendkim.proc):
            self.assertEqual(os.readlink("/proc/%d/ns/net" % p.pid),
                             os.readlink("/proc/%d/ns/net" % self.ns.pid))
            self.assertNotEqual(os.readlink("/proc/%d/ns/net" % p.pid),
                                os.readlink("/proc/self/ns/net"))

    def test_rspamd_signed_message_gets_dkim_pass(self):
        srv = self.rspamd_only()
        code, text = self.send(srv, self.key.sign(message()))
        self.assertEqual(code, 250, text)
        ar = self.auth_results(self.queued_head(srv))
        self.assertEqual(len(ar), 1, ar)
        # Rspamd names itself after the {daemon_name} macro.
        self.assertTrue(ar[0].startswith("mxringd;"), ar)
        self.assertIn("dkim=pass header.d=example.test header.s=sel", ar[0])
        self.assertIn("dmarc=pass", ar[0])
        self.wait_log(srv, ["milter rspamd: insheader Authentication-Results",
                            "milter rspamd: accept at end of message"])
        # The key really came from the namespace's dnsmasq.
        self.assertIn("query[TXT] sel._domainkey.example.test", self.dns.output().decode())

    def test_rspamd_broken_signature_gets_dkim_fail(self):
        srv = self.rspamd_only()
        broken = self.key.sign(message(tag="2")).replace("signed in", "changed in")
        code, text = self.send(srv, broken)
        self.assertEqual(code, 250, text)
        ar = self.auth_results(self.queued_head(srv))
        self.assertEqual(len(ar), 1, ar)
        self.assertIn("dkim=fail", ar[0])
        self.assertIn("header.d=example.test", ar[0])
        self.assertNotIn("dkim=pass", ar[0])

    def test_rspamd_dmarc_reject_refuses_with_its_reply_and_logs_it(self):
        srv = self.rspamd_only()
        msg = message(dom="reject.test", tag="3")  # unsigned, no SPF: DMARC fails
        code, text = self.send(srv, msg, sender="a@reject.test")
        self.assertEqual((code, text), (554, "5.7.1 Action set by DMARC"))
        self.assertEqual(srv.queue_files(), [])
        self.wait_log(srv, ['milter rspamd: reject 554 5.7.1 "Action set by DMARC" at end of '
                            'message', "result=refused reason=\"milter rspamd: reject 554 "
                            "5.7.1 'Action set by DMARC' at end of message\""])
        p = subprocess.run([MXLOG, "--dir", srv.workdir, "why", "a@reject.test"],
                           capture_output=True, text=True, timeout=60)
        self.assertIn("milter rspamd", p.stdout, p.stdout + p.stderr)
        self.assertIn("Action set by DMARC", p.stdout)

    def test_opendkim_after_rspamd_both_headers_in_order(self):
        srv = self.server("rspamd=unix:%s, opendkim=unix:%s" % (self.rspamd.sock,
                                                               self.opendkim.sock))
        code, text = self.send(srv, self.key.sign(message(tag="4")))
        self.assertEqual(code, 250, text)
        head = self.queued_head(srv)
        ar = self.auth_results(head)
        self.assertEqual(len(ar), 2, ar)
        # Both insert at index 1, as they would under Postfix or Sendmail:
        # the milter that ran later (OpenDKIM, AuthservID mx.test) ends up
        # above the earlier one (Rspamd), newest first like trace headers,
        # and both above our Received:.
        self.assertTrue(ar[0].startswith("mx.test;"), ar)
        self.assertIn("dkim=pass", ar[0])
        self.assertIn("header.d=example.test", ar[0])
        self.assertTrue(ar[1].startswith("mxringd;"), ar)
        self.assertIn("dkim=pass header.d=example.test", ar[1])
        names = [n.lower() for n, _ in head]
        self.assertEqual(names[:3], ["authentication-results", "authentication-results",
                                     "received"])
        text = self.wait_log(srv, ["milter opendkim: accept at end of message"])
        self.assertLess(text.index("milter rspamd: accept at end of message"),
                        text.index("milter opendkim: accept at end of message"))


if __name__ == "__main__":
    unittest.main()
