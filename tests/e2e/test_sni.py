"""End-to-end tests of SNI certificates (tls_certs) with openssl s_client
-servername: two names served with their own certificates, RSA and ECDSA
for the same name chosen by what the client supports, a *.domain name,
the fallback to tls_cert for an unknown name and for no SNI at all, over
implicit TLS and STARTTLS, and SIGHUP re-reading a renewed certificate.
Certificates come from scripts/gen-test-cert.sh at run time."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import ROOT, Server, free_port, make_certs

CERTS = None


def gen(sub, kind, name):
    """A certificate set for name (kind ec or rsa) in CERTS/sub."""
    d = os.path.join(CERTS, sub)
    shutil.rmtree(d, ignore_errors=True)
    shutil.move(make_certs(kind, name), d)
    return d


def setUpModule():
    global CERTS
    CERTS = tempfile.mkdtemp(prefix="mxring-sni-")
    gen("default", "ec", "mx.test")
    gen("alt-ec", "ec", "alt.example")
    gen("alt-rsa", "rsa", "alt.example")
    gen("other", "rsa", "other.example")
    gen("wild", "ec", "*.wild.example")


def tearDownModule():
    shutil.rmtree(CERTS, ignore_errors=True)


def item(name, sub):
    d = os.path.join(CERTS, sub)
    return "%s:%s:%s" % (name, os.path.join(d, "cert.pem"), os.path.join(d, "key.pem"))


def sni_server():
    srv = Server()
    srv.smtps_port = free_port()
    srv.conf.update({
        "tls_cert": os.path.join(CERTS, "default", "cert.pem"),
        "tls_key": os.path.join(CERTS, "default", "key.pem"),
        "smtps_listen": "127.0.0.1:%d" % srv.smtps_port,
        "tls_certs": ", ".join([item("alt.example", "alt-ec"), item("ALT.example", "alt-rsa"),
                                item("other.example", "other"), item("*.wild.example", "wild")]),
    })
    srv.write_conf()
    return srv.start()


def served(port, *args, starttls=False):
    """(subject CN, key kind 'EC'/'RSA', leaf PEM) of the certificate
    openssl s_client gets with the given extra arguments."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + list(args)
    if starttls:
        cmd += ["-starttls", "smtp"]
    out = subprocess.run(cmd, input=b"", capture_output=True, timeout=20).stdout.decode()
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
    if not m:
        return None, None, None
    text = subprocess.run(["openssl", "x509", "-noout", "-subject", "-text"], input=m.group(0).encode(),
                          capture_output=True).stdout.decode()
    cn = re.search(r"subject=.*CN\s*=\s*([^\s,/]+)", text).group(1)
    kind = "EC" if "id-ecPublicKey" in text else "RSA" if "rsaEncryption" in text else "?"
    return cn, kind, m.group(0)


class SniTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = sni_server()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_two_names_and_fallback(self):
        p = self.srv.smtps_port
        self.assertEqual(served(p, "-servername", "alt.example")[:2], ("alt.example", "EC"))
        self.assertEqual(served(p, "-servername", "other.example")[:2], ("other.example", "RSA"))
        self.assertEqual(served(p, "-servername", "Other.Example")[0], "other.example")
        self.assertEqual(served(p, "-servername", "unknown.example")[:2], ("mx.test", "EC"))
        self.assertEqual(served(p, "-noservername")[0], "mx.test")

    def test_wildcard_one_label(self):
        p = self.srv.smtps_port
        self.assertEqual(served(p, "-servername", "a.wild.example")[0], "*.wild.example")
        self.assertEqual(served(p, "-servername", "b.a.wild.example")[0], "mx.test")
        self.assertEqual(served(p, "-servername", "wild.example")[0], "mx.test")

    def test_rsa_and_ecdsa_by_client_support(self):
        """alt.example has both: ECDSA for a client that takes it, RSA for a
        TLS 1.3 client with only RSA signature schemes and for a TLS 1.2
        client with only ECDHE-RSA suites."""
        p = self.srv.smtps_port
        self.assertEqual(served(p, "-servername", "alt.example")[1], "EC")
        self.assertEqual(served(p, "-servername", "alt.example", "-sigalgs",
                                "rsa_pss_rsae_sha256:rsa_pkcs1_sha256")[:2], ("alt.example", "RSA"))
        self.assertEqual(served(p, "-servername", "alt.example", "-tls1_2", "-cipher",
                                "ECDHE-RSA-AES128-GCM-SHA256")[:2], ("alt.example", "RSA"))
        self.assertEqual(served(p, "-servername", "alt.example", "-tls1_2", "-cipher",
                                "ECDHE-ECDSA-AES128-GCM-SHA256")[:2], ("alt.example", "EC"))

    def test_starttls_uses_sni_too(self):
        self.assertEqual(served(self.srv.port, "-servername", "other.example", starttls=True)[0],
                         "other.example")
        self.assertEqual(served(self.srv.port, starttls=True)[0], "mx.test")

    def test_sighup_rereads_certificates(self):
        """A renewed other.example certificate is served after SIGHUP."""
        before = served(self.srv.smtps_port, "-servername", "other.example")[2]
        gen("other", "rsa", "other.example")  # a new key and certificate in place
        with open(os.path.join(CERTS, "other", "cert.pem")) as f:
            renewed = f.read().strip()
        self.assertNotEqual(before.strip(), renewed)
        self.srv.signal(signal.SIGHUP)
        deadline = time.time() + 10
        got = None
        while time.time() < deadline:
            got = served(self.srv.smtps_port, "-servername", "other.example")[2]
            if got and got.strip() == renewed:
                break
            time.sleep(0.2)
        self.assertEqual(got.strip(), renewed)


class SniConfigTest(unittest.TestCase):

    def test_bad_sni_certificate_refused_at_start(self):
        srv = Server()
        srv.conf.update({
            "tls_cert": os.path.join(CERTS, "default", "cert.pem"),
            "tls_key": os.path.join(CERTS, "default", "key.pem"),
            "tls_certs": "alt.example:%s:%s" % (os.path.join(CERTS, "alt-ec", "cert.pem"),
                                                os.path.join(CERTS, "alt-ec", "other.key")),
        })
        srv.write_conf()
        r = subprocess.run([os.environ.get("MXRINGD", os.path.join(ROOT, "build", "mxringd")),
                            "-t", "-c", srv.conf_path], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("tls_certs alt.example: tls_key", r.stderr)
        self.assertIn("private key does not match", r.stderr)
        srv.conf["tls_certs"] = ", ".join([item("alt.example", "alt-ec"), item("alt.example", "wild")])
        srv.write_conf()
        r = subprocess.run([os.environ.get("MXRINGD", os.path.join(ROOT, "build", "mxringd")),
                            "-t", "-c", srv.conf_path], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("a second ECDSA certificate for this name", r.stderr)
        shutil.rmtree(srv.dir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
