"""test_defects_io.py - end-to-end tests of issue 14's I/O defects: a
half-closed client (shutdown(SHUT_WR) after pipelined commands) gets every
command it sent answered and every finished message queued; the TLS 1.2
cipher policy as sslscan sees it; close_notify at the end of a TLS session;
the system public-suffix list named at start-up."""
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import unittest

from harness import ROOT, Server, free_port, wait_log, log_text, make_certs

QUIT_OK = "221 2.0.0 mx.test closing connection."
ROUNDS = 20
CERTS = None


def setUpModule():
    global CERTS
    # RSA: only an RSA certificate can offer static-RSA key exchange at all
    CERTS = make_certs("rsa")


def tearDownModule():
    shutil.rmtree(CERTS, ignore_errors=True)


def txn(n):
    """One complete pipelined transaction (MAIL, RCPT, DATA, body, end)."""
    return ("MAIL FROM:<a%d@client.example>\r\nRCPT TO:<u@example.test>\r\nDATA\r\n"
            "Subject: half-close %d\r\n\r\nbody %d\r\n.\r\n" % (n, n, n))


def send_half_closed(srv, wire, timeout=10):
    """Write wire in one send, shut the sending side, read until EOF.
    Returns the reply lines."""
    s = srv.connect(timeout)
    try:
        s.sendall(wire.encode())
        s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    return data.decode(errors="replace").split("\r\n")[:-1]


def codes(lines):
    """Reply codes of the final line of every reply."""
    return [int(l[:3]) for l in lines if len(l) >= 4 and l[3] == " "]


def close_reasons(srv):
    return re.findall(r"CloseClient Started\. \(([^)]*)\)", log_text(srv))


class HalfCloseTest(unittest.TestCase):

    def setUp(self):
        self.srv = Server(receivelog=True).start()
        self.addCleanup(self.srv.close)

    def test_half_close_two_transactions_and_quit(self):
        wire = "EHLO client.example\r\n" + txn(1) + txn(2) + "QUIT\r\n"
        for i in range(ROUNDS):
            lines = send_half_closed(self.srv, wire)
            self.assertEqual(codes(lines), [220, 250, 250, 250, 354, 250, 250, 250, 354, 250, 221],
                             "round %d: %r" % (i, lines))
            self.assertEqual(lines[-1], QUIT_OK)
            self.assertEqual(sum("Message received ok." in l for l in lines), 2, lines)
        files = self.srv.queue_files()
        self.assertEqual(len(files), 2 * ROUNDS)
        subjects = sorted(self.srv.read_queue(q)["message"].split(b"Subject: ")[1][:12]
                          for q in files)
        self.assertEqual(subjects, sorted([b"half-close 1", b"half-close 2"] * ROUNDS))
        self.assertTrue(wait_log(self.srv, "CloseClient Started. (QUIT)"))
        for _ in range(50):
            if len(close_reasons(self.srv)) == ROUNDS:
                break
            wait_log(self.srv, "never-there", timeout=0.1)
        self.assertEqual(close_reasons(self.srv), ["QUIT"] * ROUNDS)
        log = log_text(self.srv)
        self.assertEqual(log.count("Message accepted: queue id"), 2 * ROUNDS)
        self.assertEqual(log.count("221 2.0.0 mx.test closing connection."), ROUNDS)

    def test_half_close_pipelined_quit_after_data(self):
        lines = send_half_closed(self.srv, "HELO client.example\r\n" + txn(1) + "QUIT\r\n")
        self.assertEqual(codes(lines), [220, 250, 250, 250, 354, 250, 221], lines)
        self.assertEqual(len(self.srv.queue_files()), 1)

    def test_half_close_inside_data_is_client_gone(self):
        wire = "EHLO client.example\r\n" + txn(1) + txn(2)[:-5]  # no end of data
        lines = send_half_closed(self.srv, wire)
        self.assertEqual(codes(lines), [220, 250, 250, 250, 354, 250, 250, 250, 354], lines)
        self.assertEqual(len(self.srv.queue_files()), 1)  # only the finished message
        self.assertTrue(wait_log(self.srv, "CloseClient Started. (client gone)"))
        self.assertIn("end of input inside DATA", log_text(self.srv))

    def test_half_close_incomplete_line_is_client_gone(self):
        lines = send_half_closed(self.srv, "EHLO client.example\r\nNOOP\r\nNOOP")
        self.assertEqual(codes(lines), [220, 250, 250], lines)
        self.assertTrue(wait_log(self.srv, "CloseClient Started. (client gone)"))
        self.assertIn("end of input inside a command line", log_text(self.srv))

    def test_half_close_without_input(self):
        lines = send_half_closed(self.srv, "")
        self.assertEqual(codes(lines), [220], lines)
        self.assertTrue(wait_log(self.srv, "CloseClient Started. (client gone)"))


def tls_server(extra=None):
    srv = Server(receivelog=True)
    srv.smtps_port = free_port()
    srv.conf.update({
        "tls_cert": os.path.join(CERTS, "cert.pem"),
        "tls_key": os.path.join(CERTS, "key.pem"),
        "smtps_listen": "127.0.0.1:%d" % srv.smtps_port,
    })
    srv.conf.update(extra or {})
    srv.write_conf()
    return srv.start()


def sslscan(port, starttls=True):
    """sslscan's XML report of 127.0.0.1:port (STARTTLS or implicit TLS)."""
    cmd = ["sslscan", "--no-colour", "--xml=-", "--no-heartbleed", "--no-renegotiation",
           "--no-compression", "--no-fallback", "--no-check-certificate", "--no-groups"]
    if starttls:
        cmd.append("--starttls-smtp")
    cmd.append("127.0.0.1:%d" % port)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    return p.stdout.decode(errors="replace")


def accepted_suites(xml):
    """(sslversion, cipher) of every suite the server accepted."""
    return re.findall(r'<cipher status="(?:preferred|accepted)" sslversion="([^"]+)"[^>]*'
                      r'cipher="([^"]+)"', xml)


class TlsPolicyTest(unittest.TestCase):

    def check_policy(self, xml):
        suites = accepted_suites(xml)
        self.assertTrue(suites, xml)
        tls12 = [c for v, c in suites if v == "TLSv1.2"]
        self.assertTrue(tls12, suites)
        for name in tls12:
            self.assertTrue(name.startswith("ECDHE-"), "no forward secrecy: %s" % name)
            self.assertTrue("GCM" in name or "CHACHA20-POLY1305" in name,
                            "not an AEAD suite (CBC?): %s" % name)
        for v, name in suites:
            self.assertNotIn("DES", name)
            self.assertNotIn("RC4", name)
            self.assertNotIn("CBC", name)
            self.assertNotIn("SHA1", name)
        for v, _ in suites:
            self.assertIn(v, ("TLSv1.2", "TLSv1.3"))
        # server order: the first TLS 1.2 suite is the policy's first (AES-128-GCM)
        first = re.search(r'<cipher status="preferred" sslversion="TLSv1.2"[^>]*cipher="([^"]+)"',
                          xml)
        self.assertIsNotNone(first, xml)
        self.assertEqual(first.group(1), "ECDHE-RSA-AES128-GCM-SHA256")

    def test_tls_policy_sslscan_starttls(self):
        srv = tls_server()
        self.addCleanup(srv.close)
        self.check_policy(sslscan(srv.port))

    def test_tls_policy_sslscan_smtps(self):
        srv = tls_server()
        self.addCleanup(srv.close)
        self.check_policy(sslscan(srv.smtps_port, starttls=False))

    def test_tls_ciphers_override(self):
        srv = tls_server({"tls_ciphers": "ECDHE-RSA-CHACHA20-POLY1305"})
        self.addCleanup(srv.close)
        suites = accepted_suites(sslscan(srv.smtps_port, starttls=False))
        self.assertEqual([c for v, c in suites if v == "TLSv1.2"], ["ECDHE-RSA-CHACHA20-POLY1305"])

    def test_tls_ciphers_bad_value_is_a_config_error(self):
        srv = Server()
        self.addCleanup(srv.close)
        srv.conf.update({"tls_cert": os.path.join(CERTS, "cert.pem"),
                         "tls_key": os.path.join(CERTS, "key.pem"),
                         "tls_ciphers": "NO-SUCH-CIPHER"})
        srv.write_conf()
        from harness import BINARY
        p = subprocess.run([BINARY, "-t", "-c", srv.conf_path], capture_output=True, timeout=10)
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"tls_ciphers NO-SUCH-CIPHER: not a usable cipher list", p.stderr)


class CloseNotifyTest(unittest.TestCase):

    def client_ctx(self):
        return ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))

    def read_reply(self, tls):
        data = b""
        while not re.search(rb"(^|\r\n)\d{3} [^\r\n]*\r\n$", data):
            chunk = tls.recv(4096)
            if not chunk:
                raise ConnectionError("closed after %r" % data)
            data += chunk
        return data.decode()

    def check_close_notify(self, tls):
        self.assertTrue(self.read_reply(tls).startswith("220 "))
        tls.sendall(b"EHLO client.example\r\n")
        self.read_reply(tls)
        tls.sendall(b"QUIT\r\n")
        self.assertEqual(self.read_reply(tls), QUIT_OK + "\r\n")
        # suppress_ragged_eofs=False: a TCP close without close_notify raises
        # SSLEOFError here; a close_notify reads as a clean end (b"")
        self.assertEqual(tls.recv(4096), b"")

    def test_close_notify_after_quit_smtps(self):
        srv = tls_server()
        self.addCleanup(srv.close)
        raw = socket.create_connection(("127.0.0.1", srv.smtps_port), timeout=10)
        tls = self.client_ctx().wrap_socket(raw, server_hostname="mx.test",
                                            suppress_ragged_eofs=False)
        try:
            self.check_close_notify(tls)
        finally:
            tls.close()

    def test_close_notify_after_quit_tls12(self):
        srv = tls_server()
        self.addCleanup(srv.close)
        c = self.client_ctx()
        c.maximum_version = ssl.TLSVersion.TLSv1_2
        raw = socket.create_connection(("127.0.0.1", srv.smtps_port), timeout=10)
        tls = c.wrap_socket(raw, server_hostname="mx.test", suppress_ragged_eofs=False)
        try:
            self.check_close_notify(tls)
            self.assertEqual(tls.version(), "TLSv1.2")
        finally:
            tls.close()


class TlsHalfCloseTest(unittest.TestCase):
    """A TLS client pipelines two transactions and QUIT, then sends its
    close_notify before reading anything (SSLObject over memory BIOs, so
    the client can keep reading after its own close_notify)."""

    def test_tls_close_notify_after_pipelined_commands(self):
        srv = tls_server()
        self.addCleanup(srv.close)
        c = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = c.wrap_bio(inc, out, server_hostname="mx.test")
        raw = socket.create_connection(("127.0.0.1", srv.smtps_port), timeout=10)
        self.addCleanup(raw.close)

        def flush():
            data = out.read()
            if data:
                raw.sendall(data)

        def pull():
            data = raw.recv(65536)
            if data:
                inc.write(data)
            else:
                inc.write_eof()
            return data

        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                flush()
                pull()
        flush()
        wire = "EHLO client.example\r\n" + txn(1) + txn(2) + "QUIT\r\n"
        obj.write(wire.encode())
        try:
            obj.unwrap()  # queues our close_notify; the server's comes later
        except ssl.SSLWantReadError:
            pass
        flush()
        plain = b""
        while True:
            try:
                chunk = obj.read(65536)
                if not chunk:
                    break  # the server's close_notify
                plain += chunk
            except ssl.SSLWantReadError:
                if not pull():
                    break
            except ssl.SSLZeroReturnError:
                break
        lines = plain.decode().split("\r\n")[:-1]
        self.assertEqual(codes(lines), [220, 250, 250, 250, 354, 250, 250, 250, 354, 250, 221],
                         lines)
        self.assertEqual(len(srv.queue_files()), 2)


class PublicSuffixListTest(unittest.TestCase):

    def test_startup_names_the_system_list(self):
        srv = Server().start()
        self.addCleanup(srv.close)
        err = srv.stderr()
        self.assertIn("mxringd: public suffix list: /usr/share/publicsuffix/public_suffix_list.",
                      err)
        self.assertEqual(err.count("public suffix list"), 1, err)


if __name__ == "__main__":
    unittest.main()
