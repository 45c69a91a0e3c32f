"""test_filters.py - end-to-end tests of the content filters (issue 6)
against the real mxringd and real peers it talks to on loopback: dnsmasq
answering the SURBL test zones and clamd with a signature database this
file generates (the EICAR test string's MD5 in an .hdb file, and its bytes
in an .ndb body signature so EICAR pasted into a text body is found too; no
signature download; the body signature is limited to mail files, so the
decoded attachment can only be found by the MD5). Both peers are started here in the foreground and
stopped at the end; a missing dnsmasq or clamd is a failure, not a skip
(scripts/deps.sh installs dnsmasq-base, clamav-daemon and clamav)."""
import base64
import glob
import hashlib
import os
import shutil
import smtplib
import socket
import struct
import subprocess
import tempfile
import time
import unittest

from harness import Server

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
CLAMD = shutil.which("clamd") or "/usr/sbin/clamd"
EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")
ZONES = "multi.surbl.test:reject, q.surbl.test:quarantine"
REJECT_SPAM = "554 5.7.1 Requested mail action aborted: caught by the filter setting."
TEMPFAIL = "451 4.7.1"
RCPT = "u@example.test"


def free_udp_port():
    """A loopback port free for both UDP and TCP (dnsmasq binds both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            try:
                t.bind(("127.0.0.1", port))
            except OSError:
                continue  # e.g. a TCP socket of another test holds it
        return port
    raise RuntimeError("no loopback port free for both UDP and TCP")


def dns_query(port, name, timeout=0.2):
    """rcode and answer octets of an A query, or None on silence."""
    qid = os.getpid() & 0xFFFF
    pkt = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    pkt += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    pkt += struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(pkt, ("127.0.0.1", port))
        try:
            r = s.recv(512)
        except socket.timeout:
            return None
    return r[3] & 15, r[-4:]


class Dnsmasq:
    """A real dnsmasq answering the test zones on 127.0.0.1:<port>."""

    def __init__(self, folder):
        if not os.access(DNSMASQ, os.X_OK):
            raise AssertionError("dnsmasq is not installed (apt-get install dnsmasq-base; "
                                 "scripts/deps.sh installs it)")
        self.folder = folder
        self.proc = None

    def start(self):
        for _ in range(5):  # the free port may be taken in between: try another
            self.port = free_udp_port()
            self.log = open(os.path.join(self.folder, "dnsmasq.%d.txt" % self.port), "wb")
            self.proc = subprocess.Popen([
                DNSMASQ, "--no-daemon", "--conf-file=/dev/null", "--port=%d" % self.port,
                "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                "--user=root", "--group=root", "--pid-file=",
                "--local=/multi.surbl.test/", "--local=/q.surbl.test/",
                "--address=/bad.example.multi.surbl.test/127.0.0.2",
                "--address=/quar.example.q.surbl.test/127.0.0.3",
                "--address=/blocked.example.multi.surbl.test/127.0.0.1"],
                stdout=self.log, stderr=self.log)
            deadline = time.time() + 5
            while time.time() < deadline and self.proc.poll() is None:
                if dns_query(self.port, "bad.example.multi.surbl.test"):
                    return self
            self.stop()
        raise AssertionError("dnsmasq did not start: " + self.output())

    def output(self):
        with open(self.log.name, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        if self.proc:
            self.log.close()


class Clamd:
    """A real clamd in the foreground on a unix socket, with a generated
    database: EICAR's MD5 (.hdb) and its bytes (.ndb)."""

    def __init__(self, folder):
        if not os.access(CLAMD, os.X_OK):
            raise AssertionError("clamd is not installed (apt-get install clamav-daemon clamav; "
                                 "scripts/deps.sh installs them)")
        self.folder = folder
        self.sock = os.path.join(folder, "clamd.sock")
        db = os.path.join(folder, "db")
        os.makedirs(db, exist_ok=True)
        with open(os.path.join(db, "test.hdb"), "w") as f:
            f.write("%s:%d:Eicar-Test-Signature\n" % (hashlib.md5(EICAR).hexdigest(), len(EICAR)))
        with open(os.path.join(db, "test.ndb"), "w") as f:
            f.write("Eicar-Test-Signature-Body:4:*:%s\n" % EICAR.hex())
        self.conf = os.path.join(folder, "clamd.conf")
        with open(self.conf, "w") as f:
            f.write("Foreground yes\nLocalSocket %s\nDatabaseDirectory %s\nTemporaryDirectory %s\n"
                    "LogFile %s\nLogTime yes\n"
                    % (self.sock, db, folder, os.path.join(folder, "clamd.log")))
        self.proc = None

    def start(self):
        self.out = open(os.path.join(self.folder, "clamd.out"), "wb")
        self.proc = subprocess.Popen([CLAMD, "-c", self.conf], stdout=self.out, stderr=self.out)
        deadline = time.time() + 30
        while time.time() < deadline and self.proc.poll() is None:
            if self.ping():
                return self
            time.sleep(0.05)
        raise AssertionError("clamd did not start: " + open(self.out.name).read())

    def ping(self):
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(1)
                s.connect(self.sock)
                s.sendall(b"zPING\0")
                return s.recv(16).startswith(b"PONG")
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.out.close()


def mime(parts, boundary="b1"):
    """A multipart/mixed message from (headers, body) parts."""
    out = ("From: a@b.example\r\nTo: %s\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\nPreamble.\r\n" % (RCPT, boundary))
    for headers, body in parts:
        out += "--%s\r\n%s\r\n\r\n%s\r\n" % (boundary, headers, body)
    return out + "--%s--\r\n" % boundary


def plain(body):
    return "From: a@b.example\r\nTo: %s\r\nSubject: t\r\n\r\n%s\r\n" % (RCPT, body)


def b64lines(data):
    return base64.encodebytes(data).decode().replace("\n", "\r\n").rstrip("\r\n")


def smtp_send(case, srv, msg):
    """Send msg; returns (code, text) of the reply to the end of data."""
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as s:
        s.ehlo("client.example")
        s.mail("a@b.example")
        code, _ = s.rcpt(RCPT)
        case.assertEqual(code, 250)
        return s.data(msg.encode() if isinstance(msg, str) else msg)


def wait_log(case, srv, want, timeout=5.0):
    """The receivelog text, once it holds every string of want."""
    folder = os.path.join(srv.workdir, "receivelog", socket.gethostname())
    deadline = time.time() + timeout
    while True:
        text = ""
        for path in sorted(glob.glob(os.path.join(folder, "*.log"))):
            with open(path, "rb") as f:
                text += f.read().decode(errors="replace")
        missing = [w for w in want if w not in text]
        if not missing or time.time() > deadline:
            break
        time.sleep(0.05)
    case.assertEqual(missing, [], "receivelog lacks these lines; it holds:\n" + text)
    return text


class FilterCase(unittest.TestCase):
    """One dnsmasq and one clamd for the whole class; a server per test."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mxring-filters-")
        cls.dns = cls.clamd = None
        try:
            cls.dns = Dnsmasq(cls.dir).start()
            cls.clamd = Clamd(cls.dir).start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for peer in (cls.dns, cls.clamd):
            if peer:
                peer.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def server(self, **conf):
        base = {"surbl_zones": ZONES, "dns_servers": "127.0.0.1:%d" % self.dns.port,
                "dns_timeout_ms": "3000", "clamd": "unix:" + self.clamd.sock,
                "clamd_timeout_ms": "20000"}
        base.update(conf)
        for k in [k for k, v in base.items() if v is None]:
            del base[k]
        srv = Server(conf=base, receivelog=True).start()
        self.addCleanup(srv.close)
        return srv

    def send(self, srv, msg):
        return smtp_send(self, srv, msg)

    def log(self, srv, want, timeout=5.0):
        return wait_log(self, srv, want, timeout)

    def quarantined(self, srv):
        return srv.queue_files(sub="quarantine")  # written by the materializer

    def assertRejectedSpam(self, srv, msg):
        code, text = self.send(srv, msg)
        self.assertEqual("%d %s" % (code, text.decode()), REJECT_SPAM)
        self.assertEqual(srv.queue_files(), [])


class TestSurbl(FilterCase):

    def test_clean_mail_passes(self):
        srv = self.server()
        code, text = self.send(srv, plain("Hello, see http://good.example/page and "
                                          "www.blocked.example"))
        self.assertEqual(code, 250, text)
        self.assertEqual(len(srv.queue_files()), 1)
        self.log(srv, ["Query_FILTER_RBL(good.example.multi.surbl.test ,1)=not found list",
                       "Query_FILTER_RBL(good.example.q.surbl.test ,2)=not found list",
                       "Query_FILTER_RBL(blocked.example.multi.surbl.test 127.0.0.1,3)"
                       "=not found list",
                       "SURBL verdict: not listed (2 domains): pass",
                       "Antivirus: clean"])

    def test_listed_in_plain_text(self):
        srv = self.server()
        self.assertRejectedSpam(srv, plain("Cheap stuff at http://www.bad.example/buy now"))
        self.log(srv, ["Query_FILTER_RBL(bad.example.multi.surbl.test 127.0.0.2,1)=found list",
                       "SURBL verdict: bad.example listed in multi.surbl.test: reject"])

    def test_listed_in_html_href(self):
        srv = self.server()
        html = ('<html><body><p>Hi</p><a href="https://login.bad.example/x?a=1">click'
                '</a></body></html>')
        self.assertRejectedSpam(srv, mime([("Content-Type: text/plain", "Nothing here."),
                                           ("Content-Type: text/html; charset=utf-8", html)]))
        self.log(srv, ["SURBL verdict: bad.example listed in multi.surbl.test: reject"])

    def test_listed_in_quoted_printable_part(self):
        srv = self.server()
        qp = "Visit http://www.bad.exa=\r\nmple/=3Fid=3D1 soon=20\r\nbye"
        self.assertRejectedSpam(srv, mime([("Content-Type: text/plain\r\n"
                                            "Content-Transfer-Encoding: quoted-printable", qp)]))
        self.log(srv, ["Query_FILTER_RBL(bad.example.multi.surbl.test 127.0.0.2,1)=found list"])

    def test_listed_in_base64_part(self):
        srv = self.server()
        body = b64lines(b"Please go to http://bad.example/offer today.\r\n")
        self.assertNotIn("bad.example", body)
        self.assertRejectedSpam(srv, mime([("Content-Type: text/plain; charset=us-ascii\r\n"
                                            "Content-Transfer-Encoding: base64", body)]))
        self.log(srv, ["SURBL verdict: bad.example listed in multi.surbl.test: reject"])

    def test_quarantine_stores_into_quarantine(self):
        srv = self.server()
        code, text = self.send(srv, plain("See http://www.quar.example/ please"))
        self.assertEqual(code, 250, text)
        self.assertEqual(srv.queue_files(), [])
        files = self.quarantined(srv)
        self.assertEqual(len(files), 1)
        with open(os.path.join(srv.workdir, "quarantine", "new", files[0]), "rb") as f:
            data = f.read()
        self.assertIn(b"\nquarantine surbl quar.example q.surbl.test\n", data)
        self.assertIn(b"X-Mxring-Quarantine: surbl quar.example q.surbl.test\r\n", data)
        self.assertIn(b"See http://www.quar.example/ please", data)
        self.log(srv, ["Query_FILTER_RBL(quar.example.q.surbl.test 127.0.0.3,2)=found list",
                       "SURBL verdict: quar.example listed in q.surbl.test: quarantine"])

    def test_strongest_verdict_wins(self):
        srv = self.server()
        self.assertRejectedSpam(srv, plain("http://quar.example/ and http://bad.example/"))
        self.assertEqual(self.quarantined(srv), [])
        self.log(srv, ["SURBL verdict: bad.example listed in multi.surbl.test: reject"])


class TestAntivirus(FilterCase):

    def assertVirus(self, srv, msg, name):
        code, text = self.send(srv, msg)
        self.assertEqual("%d %s" % (code, text.decode()),
                         "554 5.7.1 Requested mail action aborted: virus %s found." % name)
        self.assertEqual(srv.queue_files(), [])
        self.log(srv, ["Antivirus: stream: %s FOUND: reject" % name])

    def test_eicar_in_body_rejected(self):
        srv = self.server(surbl_zones=None)
        self.assertVirus(srv, plain(EICAR.decode()), "Eicar-Test-Signature-Body.UNOFFICIAL")

    def test_eicar_base64_attachment_rejected(self):
        srv = self.server(surbl_zones=None)
        self.assertVirus(srv, mime([("Content-Type: text/plain", "See the attachment."),
                                    ("Content-Type: application/octet-stream; name=\"e.com\"\r\n"
                                     "Content-Transfer-Encoding: base64\r\n"
                                     "Content-Disposition: attachment; filename=\"e.com\"",
                                     b64lines(EICAR))]),
                         "Eicar-Test-Signature.UNOFFICIAL")  # the MD5 of the decoded file

    def test_eicar_after_many_journal_chunks_rejected(self):
        # clamd reads the message back from the journal: the virus sits
        # past five 64 KiB chunk records
        srv = self.server(surbl_zones=None)
        filler = ("filler line of a long message, nothing to see here\r\n" * 6500)
        self.assertVirus(srv, plain(filler + EICAR.decode()),
                         "Eicar-Test-Signature-Body.UNOFFICIAL")

    def test_virus_quarantine_action(self):
        srv = self.server(surbl_zones=None, virus_action="quarantine")
        code, text = self.send(srv, plain(EICAR.decode()))
        self.assertEqual(code, 250, text)
        self.assertEqual(srv.queue_files(), [])
        self.assertEqual(len(self.quarantined(srv)), 1)
        self.log(srv, ["FOUND: quarantine"])

    def test_size_cap_not_scanned(self):
        srv = self.server(surbl_zones=None, clamd_max_size="1K")
        code, text = self.send(srv, plain(EICAR.decode() + ("\r\n" + "x" * 70) * 30))
        self.assertEqual(code, 250, text)
        self.log(srv, ["Antivirus: not scanned: ", " octets over clamd_max_size"])


class TestPeersDown(unittest.TestCase):
    """Peers of its own, stopped in the middle of the test."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mxring-filters-down-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_clamd_stopped_tempfails(self):
        clamd = Clamd(self.dir).start()
        self.addCleanup(clamd.stop)
        srv = Server(conf={"clamd": "unix:" + clamd.sock}, receivelog=True).start()
        self.addCleanup(srv.close)
        self.assertEqual(smtp_send(self, srv, plain("hello"))[0], 250)
        clamd.stop()
        code, text = smtp_send(self, srv, plain("hello again"))
        self.assertEqual(code, 451, text)
        self.assertTrue(("%d %s" % (code, text.decode())).startswith(TEMPFAIL))
        self.assertEqual(len(srv.queue_files()), 1)
        wait_log(self, srv, ["Antivirus: clean", "Antivirus: scan failed: connect to unix:",
                                   ": tempfail"])

    def test_clamd_stopped_accept(self):
        srv = Server(conf={"clamd": "unix:" + os.path.join(self.dir, "none.sock"),
                           "scanner_failure": "accept"}, receivelog=True).start()
        self.addCleanup(srv.close)
        self.assertEqual(smtp_send(self, srv, plain("hello"))[0], 250)
        wait_log(self, srv, ["Antivirus: scan failed: connect to unix:",
                                   "accepted unscanned (scanner_failure = accept)"])

    def test_dns_stopped_per_dns_failure(self):
        dns = Dnsmasq(self.dir).start()
        self.addCleanup(dns.stop)
        srvs = {}
        for policy in ("pass", "tempfail"):
            srvs[policy] = Server(conf={"surbl_zones": ZONES, "dns_failure": policy,
                                        "dns_servers": "127.0.0.1:%d" % dns.port,
                                        "dns_timeout_ms": "300"}, receivelog=True).start()
            self.addCleanup(srvs[policy].close)
            code, text = smtp_send(self, srvs[policy], plain("http://bad.example/"))
            self.assertEqual(code, 554, text)
        dns.stop()
        code, text = smtp_send(self, srvs["pass"], plain("http://bad.example/"))
        self.assertEqual(code, 250, text)
        wait_log(self, srvs["pass"], [
            "Query_FILTER_RBL(bad.example.multi.surbl.test ,1)=lookup failed (timeout)",
            "SURBL verdict: not listed (1 domain), 2 of 2 lookups failed (timeout): pass"])
        code, text = smtp_send(self, srvs["tempfail"], plain("http://bad.example/"))
        self.assertEqual(code, 451, text)
        wait_log(self, srvs["tempfail"], [
            "SURBL verdict: not listed (1 domain), 2 of 2 lookups failed (timeout): tempfail"])


if __name__ == "__main__":
    unittest.main()
