"""End-to-end tests of STARTTLS, implicit TLS, submission and SMTP AUTH with
real clients: Python's smtplib + ssl, openssl s_client and swaks. The test
certificate is generated at run time by scripts/gen-test-cert.sh."""
import base64
import crypt
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import log_text, wait_log, ROOT, Client, Server, free_port, make_certs

PASSWORD = "s3cret-Pa55"
CERTS = None


def setUpModule():
    global CERTS
    CERTS = make_certs()


def tearDownModule():
    shutil.rmtree(CERTS, ignore_errors=True)


def tls_server(extra=None, receivelog=True):
    srv = Server(receivelog=receivelog)
    users = srv.path("users")
    with open(users, "w") as f:
        f.write("alice@example.test:%s\n" % crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_SHA512)))
        f.write("locked@example.test:!%s\n" % crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_SHA512)))
    srv.smtps_port = free_port()
    srv.sub_port = free_port()
    srv.conf.update({
        "users_file": users,
        "tls_cert": os.path.join(CERTS, "cert.pem"),
        "tls_key": os.path.join(CERTS, "key.pem"),
        "smtps_listen": "127.0.0.1:%d" % srv.smtps_port,
        "submission_listen": "127.0.0.1:%d" % srv.sub_port,
        "trusted_networks": "10.0.0.0/8",  # 127.0.0.1 is an untrusted client here
    })
    srv.conf.update(extra or {})
    srv.write_conf()
    return srv.start()


def ctx():
    c = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))
    return c


class StartTlsTest(unittest.TestCase):

    def test_starttls_then_auth_plain_and_login_then_relay(self):
        srv = tls_server()
        try:
            s = smtplib.SMTP("127.0.0.1", srv.port, timeout=10)
            s.ehlo("client.example")
            self.assertIn("starttls", s.esmtp_features)
            self.assertNotIn("auth", s.esmtp_features)  # not before TLS
            code, msg = s.starttls(context=ctx())
            self.assertEqual((code, msg), (220, b"2.0.0 Ready to start TLS"))
            s.ehlo("client.example")
            self.assertNotIn("starttls", s.esmtp_features)
            self.assertIn("PLAIN", s.esmtp_features["auth"])
            self.assertIn("LOGIN", s.esmtp_features["auth"])
            s.user, s.password = "alice@example.test", PASSWORD
            self.assertEqual(s.auth("PLAIN", s.auth_plain)[0], 235)
            # authenticated: relaying to a remote domain is allowed
            self.assertEqual(s.sendmail("alice@example.test", ["bob@remote.example"],
                                        "Subject: relay\r\n\r\nhi\r\n"), {})
            s.quit()
            s = smtplib.SMTP("127.0.0.1", srv.port, timeout=10)
            s.starttls(context=ctx())
            s.ehlo("client.example")
            s.user, s.password = "alice@example.test", PASSWORD
            self.assertEqual(s.auth("LOGIN", s.auth_login, initial_response_ok=False)[0], 235)
            s.quit()
            self.assertTrue(wait_log(srv, "AUTH success: user alice@example.test (LOGIN)"))
            log = log_text(srv)
            self.assertIn("TLS established: TLSv1.3", log)
            self.assertIn("AUTH PLAIN ****", log)
            self.assertIn("relay check = allowed: authenticated as alice@example.test", log)
        finally:
            srv.close()

    def test_unauthenticated_relay_denied_inside_tls(self):
        srv = tls_server()
        try:
            s = smtplib.SMTP("127.0.0.1", srv.port, timeout=10)
            s.starttls(context=ctx())
            s.ehlo("x.example")
            s.mail("a@b.example")
            self.assertEqual(s.rcpt("bob@remote.example")[0], 550)
            s.quit()
        finally:
            srv.close()

    def test_wrong_password_and_failure_cutoff(self):
        srv = tls_server({"auth_max_failures": "3"})
        try:
            c = Client(srv)
            c.reply()
            c.cmd("EHLO x.example")
            self.assertEqual(c.cmd("STARTTLS")[0], 220)
            tls = ctx().wrap_socket(c.sock, server_hostname="mx.test")
            c.sock = tls
            c.cmd("EHLO x.example")
            bad = base64.b64encode(b"\0alice@example.test\0wrong").decode()
            for i in range(2):
                self.assertEqual(c.cmd("AUTH PLAIN " + bad),
                                 (535, ["535 5.7.8 Authentication credentials invalid"]))
            code, lines = c.cmd("AUTH PLAIN " + bad)
            self.assertEqual(code, 535)
            code, lines = c.reply()
            self.assertEqual(code, 421)
            self.assertIn("4.7.0", lines[0])
            self.assertTrue(c.closed(3))
            c.close()
            self.assertTrue(wait_log(srv, "AUTH failed (3 of 3)"))
            self.assertIn("CloseClient Started. (authentication failures)", log_text(srv))
        finally:
            srv.close()

    def test_unknown_and_locked_users_fail_alike(self):
        srv = tls_server()
        try:
            for user in ("nobody@example.test", "locked@example.test"):
                s = smtplib.SMTP("127.0.0.1", srv.port, timeout=10)
                s.starttls(context=ctx())
                s.ehlo("x.example")
                with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
                    s.login(user, PASSWORD)
                self.assertEqual(cm.exception.smtp_code, 535)
                s.close()
            self.assertTrue(wait_log(srv, "no such user"))
        finally:
            srv.close()

    def test_auth_before_tls_is_538(self):
        srv = tls_server()
        try:
            c = Client(srv)
            c.reply()
            c.cmd("EHLO x.example")
            code, lines = c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice@example.test\0" +
                                                                PASSWORD.encode()).decode())
            self.assertEqual(code, 538)
            self.assertIn("5.7.11", lines[0])
            c.close()
        finally:
            srv.close()

    def test_auth_allowed_without_tls_when_configured(self):
        srv = tls_server({"auth_require_tls": "no"})
        try:
            s = smtplib.SMTP("127.0.0.1", srv.port, timeout=10)
            s.ehlo("x.example")
            self.assertIn("auth", s.esmtp_features)
            self.assertEqual(s.login("alice@example.test", PASSWORD)[0], 235)
            s.quit()
        finally:
            srv.close()

    def test_auth_cancel(self):
        srv = tls_server({"auth_require_tls": "no"})
        try:
            c = Client(srv)
            c.reply()
            c.cmd("EHLO x.example")
            self.assertEqual(c.cmd("AUTH LOGIN"), (334, ["334 VXNlcm5hbWU6"]))
            self.assertEqual(c.cmd("*")[0], 501)
            self.assertEqual(c.cmd("NOOP")[0], 250)
            c.close()
        finally:
            srv.close()

    def test_starttls_injection_is_discarded(self):
        """STARTTLS and RSET in one packet: the RSET must never be answered,
        neither in the clear nor inside TLS (CVE-2011-0411 class)."""
        srv = tls_server()
        try:
            c = Client(srv)
            c.reply()
            c.cmd("EHLO x.example")
            c.send("STARTTLS\r\nRSET\r\n")
            code, lines = c.reply()
            self.assertEqual(code, 220)
            self.assertEqual(c.buf, b"")  # nothing more in the clear
            tls = ctx().wrap_socket(c.sock, server_hostname="mx.test")
            c.sock = tls
            c.sock.settimeout(1.0)
            try:
                extra = c.sock.recv(4096)
            except socket.timeout:
                extra = b""
            self.assertEqual(extra, b"", "a reply to the injected RSET came through TLS")
            c.sock.settimeout(10)
            self.assertEqual(c.cmd("EHLO x.example")[0], 250)
            c.close()
            self.assertTrue(wait_log(srv, "discarded 6 octets sent after STARTTLS"))
        finally:
            srv.close()

    def test_starttls_resets_session(self):
        srv = tls_server()
        try:
            c = Client(srv)
            c.reply()
            c.cmd("EHLO x.example")
            c.cmd("STARTTLS")
            c.sock = ctx().wrap_socket(c.sock, server_hostname="mx.test")
            # RFC 3207: the client must say EHLO again
            self.assertEqual(c.cmd("MAIL FROM:<a@b.example>")[0], 503)
            c.cmd("EHLO x.example")
            self.assertEqual(c.cmd("STARTTLS"), (554, ["554 5.5.1 Error: TLS already active"]))
            c.close()
        finally:
            srv.close()

    def test_handshake_failure_logged(self):
        srv = tls_server({"tls_min_version": "1.3"})
        try:
            c = Client(srv)
            c.reply()
            c.cmd("EHLO x.example")
            c.cmd("STARTTLS")
            old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            old.check_hostname = False
            old.verify_mode = ssl.CERT_NONE
            old.maximum_version = ssl.TLSVersion.TLSv1_2
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                old.wrap_socket(c.sock, server_hostname="mx.test")
            c.close()
            self.assertTrue(wait_log(srv, "TLS failed:"))
            self.assertTrue(wait_log(srv, "CloseClient Started. (TLS failure)"))
        finally:
            srv.close()


class ImplicitTlsAndSubmissionTest(unittest.TestCase):

    def test_smtps(self):
        srv = tls_server()
        try:
            s = smtplib.SMTP_SSL("127.0.0.1", srv.smtps_port, timeout=10, context=ctx())
            code, _ = s.ehlo("x.example")
            self.assertEqual(code, 250)
            self.assertNotIn("starttls", s.esmtp_features)
            self.assertIn("auth", s.esmtp_features)
            self.assertEqual(s.sendmail("a@b.example", ["alice@example.test"],
                                        "Subject: smtps\r\n\r\nx\r\n"), {})
            s.quit()
            self.assertEqual(len(srv.queue_files()), 1)
        finally:
            srv.close()

    def test_submission_requires_auth(self):
        srv = tls_server()
        try:
            s = smtplib.SMTP("127.0.0.1", srv.sub_port, timeout=10)
            s.starttls(context=ctx())
            s.ehlo("x.example")
            code, msg = s.mail("alice@example.test")
            self.assertEqual(code, 530)
            self.assertIn(b"5.7.0", msg)
            s.login("alice@example.test", PASSWORD)
            self.assertEqual(s.mail("alice@example.test")[0], 250)
            self.assertEqual(s.rcpt("someone@remote.example")[0], 250)
            s.quit()
        finally:
            srv.close()


class RealClientsTest(unittest.TestCase):

    def test_openssl_s_client_starttls(self):
        srv = tls_server()
        try:
            p = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect",
                                "127.0.0.1:%d" % srv.port, "-CAfile",
                                os.path.join(CERTS, "ca.pem"), "-verify_return_error", "-quiet"],
                               input=b"EHLO s-client.example\r\nQUIT\r\n", capture_output=True,
                               timeout=20)
            out = p.stdout.decode(errors="replace")
            self.assertIn("250-mx.test Hello", out)
            self.assertIn("AUTH PLAIN LOGIN", out)
            self.assertIn("221 2.0.0", out)
        finally:
            srv.close()

    def test_swaks_tls_auth(self):
        srv = tls_server()
        try:
            p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % srv.port, "--tls",
                                "--tls-verify", "--tls-ca-path", os.path.join(CERTS, "ca.pem"),
                                "--auth", "LOGIN", "--auth-user", "alice@example.test",
                                "--auth-password", PASSWORD, "--from", "alice@example.test",
                                "--to", "far@remote.example", "--helo", "swaks.example"],
                               capture_output=True, timeout=30)
            out = p.stdout.decode(errors="replace")
            self.assertEqual(p.returncode, 0, out + p.stderr.decode(errors="replace"))
            self.assertIn("235 2.7.0 Authentication successful.", out)
            self.assertIn("250 2.0.0 Message received ok.", out)
            p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % srv.port, "--tls",
                                "--auth", "PLAIN", "--auth-user", "alice@example.test",
                                "--auth-password", "nope", "--to", "x@example.test"],
                               capture_output=True, timeout=30)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("535 5.7.8", p.stdout.decode(errors="replace"))
        finally:
            srv.close()

    def test_no_secret_in_receivelog(self):
        srv = tls_server({"auth_require_tls": "no"})
        try:
            secrets = [PASSWORD, base64.b64encode(b"\0alice@example.test\0" + PASSWORD.encode()).decode(),
                       base64.b64encode(PASSWORD.encode()).decode(),
                       base64.b64encode(b"alice@example.test").decode()]
            s = smtplib.SMTP("127.0.0.1", srv.port, timeout=10)
            s.ehlo("x.example")
            s.user, s.password = "alice@example.test", PASSWORD
            s.auth("PLAIN", s.auth_plain)
            s.quit()
            s = smtplib.SMTP("127.0.0.1", srv.port, timeout=10)
            s.ehlo("x.example")
            s.user, s.password = "alice@example.test", PASSWORD
            s.auth("LOGIN", s.auth_login, initial_response_ok=False)
            s.quit()
            c = Client(srv)
            c.reply()
            c.cmd("EHLO x.example")
            c.cmd("AUTH LOGIN " + secrets[3])
            c.cmd(secrets[2] + "x")  # a broken response: still never logged
            c.close()
            self.assertTrue(wait_log(srv, "AUTH success: user alice@example.test (LOGIN)"))
            time.sleep(1.2)
            log = log_text(srv)
            for secret in secrets:
                self.assertNotIn(secret, log)
            self.assertIn("AUTH LOGIN ****", log)
        finally:
            srv.close()


if __name__ == "__main__":
    unittest.main()
