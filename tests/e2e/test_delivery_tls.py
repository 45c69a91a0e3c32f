"""test_delivery_tls.py - relay_tls against a Python ssl hop on loopback:
verify with the right CA delivers (certificate checked), verify against a
certificate from another CA or for another name defers with the reason in
the delivery log, encrypt accepts any certificate but needs STARTTLS, may
falls back to plain text when STARTTLS is not offered. Certificates come
from scripts/gen-test-cert.sh at run time."""
import os
import shutil
import subprocess
import tempfile
import unittest

from dlv_peers import ScriptHop, delivery_server, dlog_text, tls_context, wait_dlog, wait_for
from test_delivery import send

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOOD = BAD = None


def setUpModule():
    global GOOD, BAD
    GOOD = tempfile.mkdtemp(prefix="mxring-dtls-good-")
    BAD = tempfile.mkdtemp(prefix="mxring-dtls-bad-")
    for d in (GOOD, BAD):   # two unrelated CAs
        subprocess.run([os.path.join(ROOT, "scripts", "gen-test-cert.sh"), d], check=True,
                       stdout=subprocess.DEVNULL)


def tearDownModule():
    shutil.rmtree(GOOD, ignore_errors=True)
    shutil.rmtree(BAD, ignore_errors=True)


class RelayTlsTest(unittest.TestCase):
    def run_hop(self, certdir, mode, host="127.0.0.1", starttls=True):
        """One message through a hop with certdir's certificate (or none);
        returns (hop, srv log, delivered?)."""
        hop = ScriptHop(tls=tls_context(certdir) if starttls else None, addr=host)
        try:
            route = "smtp:[%s]:%d tls=%s" % (host, hop.port, mode)
            conf = {"relay_ca_file": os.path.join(GOOD, "ca.pem")}
            with delivery_server(route, conf=conf) as srv:
                qid = send(srv, ["t@example.test"])
                ok = wait_for(lambda: hop.rcpts() == ["t@example.test"], 6)
                wait_dlog(srv, "queue id %s: to=<t@example.test>" % qid)
                return hop, dlog_text(srv), ok
        finally:
            hop.close()

    def test_verify_good_certificate(self):
        hop, log, ok = self.run_hop(GOOD, "verify")
        self.assertTrue(ok, log)
        self.assertTrue(hop.messages[0]["tls"])
        self.assertRegex(log, r"hop smtp:\[127.0.0.1\]:\d+: TLS TLSv1\.[23] \S+ "
                              r"\(certificate verified\)")

    def test_verify_bad_certificate_defers(self):
        hop, log, ok = self.run_hop(BAD, "verify")
        self.assertFalse(ok)
        self.assertEqual(hop.messages, [])
        self.assertIn("certificate verify failed", log)
        self.assertRegex(log, r"to=<t@example.test> hop=\S+ reply=\"4\d\d [^\"]*\" "
                              r"outcome=deferred until")

    def test_verify_wrong_name_defers(self):
        # the good CA, but the certificate names mx.test and 127.0.0.1, not
        # 127.0.0.2 (an address, so no /etc/hosts is needed for the name)
        hop, log, ok = self.run_hop(GOOD, "verify", host="127.0.0.2")
        self.assertFalse(ok)
        self.assertIn("certificate verify failed", log)

    def test_encrypt_accepts_any_certificate(self):
        hop, log, ok = self.run_hop(BAD, "encrypt")
        self.assertTrue(ok, log)
        self.assertTrue(hop.messages[0]["tls"])
        self.assertNotIn("certificate verified", log)

    def test_encrypt_needs_starttls(self):
        hop, log, ok = self.run_hop(GOOD, "encrypt", starttls=False)
        self.assertFalse(ok)
        self.assertRegex(log, r"reply=\"451 4\.7\.4 [^\"]*STARTTLS[^\"]*\" outcome=deferred")

    def test_may_falls_back_to_plain(self):
        hop, log, ok = self.run_hop(GOOD, "may", starttls=False)
        self.assertTrue(ok, log)
        self.assertFalse(hop.messages[0]["tls"])


if __name__ == "__main__":
    unittest.main()
