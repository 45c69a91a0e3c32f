"""End-to-end tests behind a real HAProxy (Debian haproxy, a private
instance on loopback started by the test, mode tcp): send-proxy (v1) and
send-proxy-v2 in front of two mxringd backends with check-send-proxy SMTP
health checks; clients connect from distinct loopback source addresses
(127.0.0.2, 127.0.0.3, ...) and every backend logs the right one; the
per-IP limit applies per real client; one backend killed: the messages go
to the other and nothing acknowledged is lost; a backend that gets no
header (HAProxy without send-proxy) or a header from an untrusted address
closes without a banner; smtps behind HAProxy (TLS passed through after a
v2 header); PP2_TYPE_SSL logged when HAProxy terminates TLS."""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import log_text, make_certs, wait_log, ROOT, Server, free_port
from test_proxy import reply, send_mail, closed_without_reply

CERTS = None
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def setUpModule():
    global CERTS
    if not os.path.exists(HAPROXY):
        raise unittest.SkipTest("haproxy is not installed (scripts/deps.sh test)")
    CERTS = make_certs()
    with open(os.path.join(CERTS, "haproxy.pem"), "w") as out:
        for name in ("cert.pem", "key.pem"):
            with open(os.path.join(CERTS, name)) as f:
                out.write(f.read())


def tearDownModule():
    shutil.rmtree(CERTS, ignore_errors=True)


def backend(extra=None):
    """One mxringd behind the balancer: proxy listeners, 127.0.0.x clients
    untrusted (so per-IP limits apply), the balancer 127.0.0.1 trusted to
    send headers."""
    srv = Server(receivelog=True)
    srv.proxy_port, srv.proxy_smtps_port = free_port(), free_port()
    srv.conf.update({
        "proxy_listen": "127.0.0.1:%d" % srv.proxy_port,
        "proxy_smtps_listen": "127.0.0.1:%d" % srv.proxy_smtps_port,
        "proxy_trusted_networks": "127.0.0.1",
        "trusted_networks": "192.0.2.1",
        "max_sessions_per_ip": "2",
        "proxy_timeout_ms": "1000",
        "tls_cert": os.path.join(CERTS, "cert.pem"),
        "tls_key": os.path.join(CERTS, "key.pem"),
    })
    srv.conf.update(extra or {})
    srv.write_conf()
    return srv.start()


class HAProxy:
    """A private haproxy in the foreground with frontends named by ports."""

    def __init__(self, a, b, untrusted):
        self.dir = tempfile.mkdtemp(prefix="mxring-haproxy-")
        self.port = {k: free_port() for k in ("v1", "v2", "one", "smtps", "ssl", "noproxy",
                                              "untrusted")}
        chk = "check check-send-proxy inter 200ms fall 1 rise 1"
        cfg = """global
    maxconn 2000
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout check 2s
    retries 3
    option redispatch 1
frontend fe_v1
    bind 127.0.0.1:{p[v1]}
    default_backend be_v1
backend be_v1
    option smtpchk EHLO haproxy.test
    server a 127.0.0.1:{a} send-proxy {chk}
    server b 127.0.0.1:{b} send-proxy {chk}
frontend fe_v2
    bind 127.0.0.1:{p[v2]}
    default_backend be_v2
backend be_v2
    option smtpchk EHLO haproxy.test
    server a 127.0.0.1:{a} send-proxy-v2 {chk}
    server b 127.0.0.1:{b} send-proxy-v2 {chk}
frontend fe_one
    bind 127.0.0.1:{p[one]}
    default_backend be_one
backend be_one
    server a 127.0.0.1:{a} send-proxy-v2
frontend fe_smtps
    bind 127.0.0.1:{p[smtps]}
    default_backend be_smtps
backend be_smtps
    server a 127.0.0.1:{a_tls} send-proxy-v2
frontend fe_ssl
    bind 127.0.0.1:{p[ssl]} ssl crt {crt}
    default_backend be_ssl
backend be_ssl
    server a 127.0.0.1:{a} send-proxy-v2-ssl
frontend fe_noproxy
    bind 127.0.0.1:{p[noproxy]}
    default_backend be_noproxy
backend be_noproxy
    server a 127.0.0.1:{a}
frontend fe_untrusted
    bind 127.0.0.1:{p[untrusted]}
    default_backend be_untrusted
backend be_untrusted
    server u 127.0.0.1:{u} send-proxy-v2
""".format(p=self.port, a=a.proxy_port, b=b.proxy_port, a_tls=a.proxy_smtps_port,
           u=untrusted.proxy_port, chk=chk, crt=os.path.join(CERTS, "haproxy.pem"))
        self.cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(self.cfg, "w") as f:
            f.write(cfg)
        self.err = open(os.path.join(self.dir, "stderr.txt"), "wb")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.cfg], stdout=self.err,
                                     stderr=self.err)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port["one"]), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.err.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def connect_from(source, port, timeout=10):
    """A client socket bound to the loopback source address source."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


class HAProxyTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.a = backend()
        cls.b = backend()
        cls.u = backend({"proxy_trusted_networks": "10.9.9.9"})
        cls.hap = HAProxy(cls.a, cls.b, cls.u)
        # both backends up: the SMTP health checks (check-send-proxy) reached them
        assert wait_log(cls.a, "EHLO haproxy.test") and wait_log(cls.b, "EHLO haproxy.test")

    @classmethod
    def tearDownClass(cls):
        cls.hap.close()
        for srv in (cls.a, cls.b, cls.u):
            srv.close()

    def mail_from(self, source, front, rcpt="user@example.test"):
        s = connect_from(source, self.hap.port[front])
        code, text, _ = reply(s)
        self.assertEqual(code, 220, text)
        code, text = send_mail(s, rcpt=rcpt)
        s.close()
        return code, text

    def test_1_v1_and_v2_real_clients_on_both_backends(self):
        """Clients from 127.0.0.2..5 through send-proxy and send-proxy-v2:
        every message's envelope and Received: name the real client, each
        backend's log names the client addresses it served."""
        ids = {}
        for front in ("v1", "v2"):
            for i in range(2, 6):
                src = "127.0.0.%d" % i
                code, text = self.mail_from(src, front)
                self.assertEqual(code, 250, text)
                ids[text.split("id=")[1].strip()] = src
        seen = {self.a: 0, self.b: 0}
        for qid, src in ids.items():
            for srv in (self.a, self.b):
                path = srv.wait_queue_file(qid, timeout=0.5)
                if os.path.exists(path):
                    env = srv.read_queue(qid)
                    self.assertEqual(env["client"].split()[0], src)
                    self.assertIn(("[%s]" % src).encode(), env["message"])
                    seen[srv] += 1
        self.assertEqual(sum(seen.values()), len(ids))
        self.assertTrue(seen[self.a] and seen[self.b], "round robin reached both backends")
        for srv in (self.a, self.b):
            log = log_text(srv)
            self.assertIn("(PROXY v1)", log)
            self.assertIn("(PROXY v2)", log)
            self.assertRegex(log, r"Connection accepted: client \[127\.0\.0\.[2-5]\]:\d+, "
                                  r"local port \d+, worker \d, via \[127\.0\.0\.1\]")
            self.assertNotIn("PROXY header refused", log)
        # the v2 health checks are LOCAL sessions
        self.assertIn("PROXY v2 LOCAL: balancer health check", log_text(self.a))

    def test_2_per_ip_limit_per_real_client(self):
        """max_sessions_per_ip = 2 on the one-backend frontend: a third
        session from 127.0.0.6 is refused, 127.0.0.7 still gets in."""
        held = [connect_from("127.0.0.6", self.hap.port["one"]) for _ in range(2)]
        for s in held:
            self.assertEqual(reply(s)[0], 220)
        s = connect_from("127.0.0.6", self.hap.port["one"])
        self.assertEqual(reply(s)[0], 421)
        s.close()
        other = connect_from("127.0.0.7", self.hap.port["one"])
        self.assertEqual(reply(other)[0], 220)
        for s in held + [other]:
            s.close()
        self.assertTrue(wait_log(self.a, "max_sessions_per_ip (2) reached for [127.0.0.6]"))

    def test_3_no_header_and_untrusted_closed_without_banner(self):
        """HAProxy without send-proxy in front of a proxy listener: no
        banner, closed after proxy_timeout_ms; a header from a balancer
        outside proxy_trusted_networks: closed at once."""
        s = connect_from("127.0.0.8", self.hap.port["noproxy"])
        self.assertTrue(closed_without_reply(s, timeout=5))
        s.close()
        self.assertTrue(wait_log(self.a, "PROXY header refused: no complete PROXY header "
                                         "within 1000 ms"))
        s = connect_from("127.0.0.8", self.hap.port["untrusted"])
        t0 = time.time()
        self.assertTrue(closed_without_reply(s, timeout=5))
        self.assertLess(time.time() - t0, 1.0)
        s.close()
        self.assertTrue(wait_log(self.u, "PROXY header refused: sender not in "
                                         "proxy_trusted_networks (from [127.0.0.1]"))

    def test_4_smtps_through_haproxy(self):
        """TCP mode, send-proxy-v2, TLS passed through to proxy_smtps_listen."""
        ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))
        raw = connect_from("127.0.0.9", self.hap.port["smtps"])
        t = ctx.wrap_socket(raw, server_hostname="mx.test")
        code, text, buf = reply(t)
        self.assertEqual(code, 220)
        code, text = send_mail(t)
        self.assertEqual(code, 250, text)
        t.close()
        env = self.a.read_queue(text.split("id=")[1].strip())
        self.assertEqual(env["client"].split()[0], "127.0.0.9")
        self.assertIn(b"(using TLSv1.3", env["message"])

    def test_5_haproxy_terminates_tls(self):
        """ssl on the bind + send-proxy-v2-ssl: the backend sees plain SMTP
        and logs PP2_TYPE_SSL (the TLS the client used with HAProxy)."""
        ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))
        raw = connect_from("127.0.0.10", self.hap.port["ssl"])
        t = ctx.wrap_socket(raw, server_hostname="mx.test")
        self.assertEqual(reply(t)[0], 220)
        code, text = send_mail(t)
        self.assertEqual(code, 250, text)
        t.close()
        self.assertTrue(wait_log(self.a, "TLS at the balancer: TLSv1.3"))
        self.assertRegex(log_text(self.a), r"client \[127\.0\.0\.10\]:\d+, local port \d+, "
                                           r"worker \d, via \[127\.0\.0\.1\]:\d+ \(PROXY v2, TLS "
                                           r"at the balancer: TLSv1\.3")

    def test_9_backend_killed_nothing_acknowledged_lost(self):
        """Messages through send-proxy-v2 while backend a is killed -9 (and
        then restarted to recover its journal): every acknowledged message
        is in one backend's queue, later ones went to b."""
        acked = []
        for i in range(40):
            if i == 12:
                self.a.kill9()
            try:
                code, text = self.mail_from("127.0.0.%d" % (11 + i % 5), "v2")
            except (ConnectionError, OSError):
                continue  # a connection cut by the kill: never acknowledged
            if code == 250:
                acked.append(text.split("id=")[1].strip())
        self.assertGreaterEqual(len(acked), 30)
        self.a.start()  # recovery writes what a acknowledged into new/
        found = 0
        for qid in acked:
            for srv in (self.a, self.b):
                if os.path.exists(srv.wait_queue_file(qid, timeout=0.3)):
                    found += 1
                    break
        self.assertEqual(found, len(acked))
        self.assertTrue(wait_log(self.b, "client [127.0.0.15]") or
                        wait_log(self.b, "client [127.0.0.11]"))


if __name__ == "__main__":
    unittest.main()
