"""End-to-end tests of the PROXY protocol listeners (proxy_listen,
proxy_smtps_listen) with headers written by the test itself over real
sockets: v1 and v2, the real client address used everywhere (receivelog,
Received:, the queue envelope, trusted_networks, per-IP limits), bytes
pipelined after the header, LOCAL health checks, and every refusal (an
untrusted sender, no header, garbage, an oversized or slow header): no
banner, closed, logged with the reason and the per-address count. Plain
listeners never take a header. The HAProxy tests are in test_haproxy.py."""
import os
import shutil
import socket
import ssl
import struct
import time
import unittest

from harness import log_text, make_certs, wait_log, ROOT, Client, Server, free_port

CERTS = None
SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def setUpModule():
    global CERTS
    CERTS = make_certs()


def tearDownModule():
    shutil.rmtree(CERTS, ignore_errors=True)


def v1(src, sport=40000, dst="192.0.2.25", dport=25):
    fam = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport, dport)).encode()


def v2(src=None, sport=40000, dst="192.0.2.25", dport=25, tlvs=b"", local=False):
    if local:
        return SIG + b"\x20\x00" + struct.pack("!H", 0)
    if ":" in src:
        body = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
        fam = b"\x21"
    else:
        body = socket.inet_aton(src) + socket.inet_aton(dst)
        fam = b"\x11"
    body += struct.pack("!HH", sport, dport) + tlvs
    return SIG + b"\x21" + fam + struct.pack("!H", len(body)) + body


def tlv(t, v):
    return struct.pack("!BH", t, len(v)) + v


def proxy_server(extra=None, tls=False):
    srv = Server(receivelog=True)
    srv.proxy_port = free_port()
    srv.conf.update({
        "proxy_listen": "127.0.0.1:%d" % srv.proxy_port,
        "proxy_trusted_networks": "127.0.0.1",     # the "balancer" is the test itself
        "trusted_networks": "198.51.100.0/24",     # real clients may be trusted, by their own address
        "proxy_timeout_ms": "700",
        "max_sessions_per_ip": "2",
    })
    if tls:
        srv.proxy_smtps_port = free_port()
        srv.conf.update({
            "tls_cert": os.path.join(CERTS, "cert.pem"),
            "tls_key": os.path.join(CERTS, "key.pem"),
            "proxy_smtps_listen": "127.0.0.1:%d" % srv.proxy_smtps_port,
        })
    srv.conf.update(extra or {})
    srv.write_conf()
    return srv.start()


def pconnect(srv, port=None, source="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port or srv.proxy_port))
    return s


def reply(sock, buf=b""):
    """One complete reply as (code, all its lines joined, rest of the buffer)."""
    lines = []
    while True:
        while b"\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed after %r" % buf)
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        lines.append(line.decode(errors="replace"))
        if line[3:4] != b"-":
            return int(line[:3]), "\n".join(lines), buf


def closed_without_reply(sock, timeout=5):
    """True when the server closes without sending a byte."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    return data == b""


def send_mail(sock, rcpt="user@example.test", helo="client.example"):
    """EHLO, MAIL, RCPT, DATA over sock (banner already read); the queue id."""
    buf = b""
    for line in ("EHLO " + helo, "MAIL FROM:<a@b.example>", "RCPT TO:<%s>" % rcpt, "DATA"):
        sock.sendall(line.encode() + b"\r\n")
        code, text, buf = reply(sock, buf)
        if line.startswith("RCPT") and code != 250:
            return code, text
    sock.sendall(b"Subject: t\r\n\r\nbody\r\n.\r\n")
    code, text, buf = reply(sock, buf)
    return code, text


class ProxyHeaderTest(unittest.TestCase):

    def test_v1_real_client_everywhere(self):
        """The v1 client address is the session's: log line (naming the
        balancer), Received:, envelope, relay decision, summary."""
        srv = proxy_server()
        try:
            s = pconnect(srv)
            s.sendall(v1("203.0.113.9", 51000))
            code, text, _ = reply(s)
            self.assertEqual(code, 220)
            code, text = send_mail(s)
            self.assertEqual(code, 250, text)
            qid = text.split("id=")[1].strip()
            env = srv.read_queue(qid)
            self.assertEqual(env["client"], "203.0.113.9 51000")
            self.assertIn(b"([203.0.113.9])", env["message"].split(b"\r\n\r\n")[0])
            s.sendall(b"RSET\r\n")
            reply(s)
            # relaying is decided on the real client (not trusted): denied
            code, text = send_mail(s, rcpt="x@remote.example")
            self.assertEqual(code, 550, text)
            s.close()
            self.assertTrue(wait_log(srv, "Transaction summary: client=203.0.113.9 "))
            log = log_text(srv)
            self.assertRegex(log, r"Connection accepted: client \[203\.0\.113\.9\]:51000, "
                                  r"local port %d, worker \d, via \[127\.0\.0\.1\]:\d+ "
                                  r"\(PROXY v1\)" % srv.proxy_port)
            self.assertNotIn("client [127.0.0.1]", log)
        finally:
            srv.close()

    def test_v2_trusted_real_client_may_relay(self):
        """v2 TCP4: a real client inside trusted_networks may relay; the
        balancer itself is not trusted."""
        srv = proxy_server()
        try:
            s = pconnect(srv)
            s.sendall(v2("198.51.100.7", 1234))
            self.assertEqual(reply(s)[0], 220)
            code, text = send_mail(s, rcpt="x@remote.example")
            self.assertEqual(code, 250, text)
            s.close()
            self.assertTrue(wait_log(srv, "Connection accepted: client [198.51.100.7]:1234"))
            self.assertIn("trusted network, via [127.0.0.1]", log_text(srv))
        finally:
            srv.close()

    def test_v2_tcp6_and_ssl_tlv_logged(self):
        """v2 TCP6 with PP2_TYPE_SSL (version, cipher) and AUTHORITY: the
        balancer terminated TLS, and the connection line says so."""
        srv = proxy_server()
        try:
            ssl_tlv = tlv(0x20, b"\x01" + b"\x00\x00\x00\x00" + tlv(0x21, b"TLSv1.3") +
                          tlv(0x23, b"TLS_AES_128_GCM_SHA256"))
            s = pconnect(srv)
            s.sendall(v2("2001:db8::5", 2525, dst="2001:db8::1", tlvs=tlv(0x02, b"mx.test") + ssl_tlv))
            self.assertEqual(reply(s)[0], 220)
            code, text = send_mail(s)
            self.assertEqual(code, 250)
            env = srv.read_queue(text.split("id=")[1].strip())
            self.assertEqual(env["client"], "2001:db8::5 2525")
            s.close()
            self.assertTrue(wait_log(srv, "TLS at the balancer: TLSv1.3 TLS_AES_128_GCM_SHA256, "
                                          "authority mx.test)"))
            self.assertIn("client [2001:db8::5]:2525", log_text(srv))
        finally:
            srv.close()

    def test_pipelined_after_header_is_smtp(self):
        """Bytes in the same segment as the header belong to SMTP."""
        srv = proxy_server()
        try:
            for hdr in (v1("203.0.113.20"), v2("203.0.113.21")):
                s = pconnect(srv)
                s.sendall(hdr + b"EHLO pipelined.example\r\nQUIT\r\n")
                code, _, buf = reply(s)
                self.assertEqual(code, 220)
                code, text, buf = reply(s, buf)
                self.assertEqual(code, 250)
                self.assertIn("Hello [203.0.113.2", text)
                self.assertEqual(reply(s, buf)[0], 221)
                s.close()
        finally:
            srv.close()

    def test_split_header_bytewise(self):
        """A header trickled one octet at a time (within the timeout) works."""
        srv = proxy_server()
        try:
            s = pconnect(srv)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for b in v2("203.0.113.30"):
                s.send(bytes([b]))
                time.sleep(0.002)
            self.assertEqual(reply(s)[0], 220)
            s.close()
        finally:
            srv.close()

    def test_per_ip_limit_is_per_real_client(self):
        """max_sessions_per_ip = 2 counts real clients, not the balancer:
        two from one client, a third refused; others still get in."""
        srv = proxy_server()
        try:
            socks = []
            for i in range(2):
                s = pconnect(srv)
                s.sendall(v1("203.0.113.40", 1000 + i))
                self.assertEqual(reply(s)[0], 220)
                socks.append(s)
            s = pconnect(srv)
            s.sendall(v1("203.0.113.40", 1002))
            self.assertEqual(reply(s)[0], 421)
            s.close()
            for i in range(3):
                s = pconnect(srv)
                s.sendall(v1("203.0.113.%d" % (41 + i)))
                self.assertEqual(reply(s)[0], 220)
                socks.append(s)
            for s in socks:
                s.close()
            self.assertTrue(wait_log(srv, "max_sessions_per_ip (2) reached for [203.0.113.40]"))
        finally:
            srv.close()

    def test_v2_local_health_check(self):
        """LOCAL: a session with the balancer's address, not counted towards
        the per-IP limit (three at once with max_sessions_per_ip = 2)."""
        srv = proxy_server()
        try:
            socks = []
            for _ in range(3):
                s = pconnect(srv)
                s.sendall(v2(local=True))
                self.assertEqual(reply(s)[0], 220)
                socks.append(s)
            socks[0].sendall(b"QUIT\r\n")
            self.assertEqual(reply(socks[0])[0], 221)
            for s in socks:
                s.close()
            self.assertTrue(wait_log(srv, "client [127.0.0.1]"))
            self.assertIn("(PROXY v2 LOCAL: balancer health check)", log_text(srv))
        finally:
            srv.close()

    def assert_refused(self, srv, data, reason, wait=0.0, source="127.0.0.1"):
        s = pconnect(srv, source=source)
        if data:
            s.sendall(data)
        t0 = time.time()
        self.assertTrue(closed_without_reply(s), "no banner, closed")
        s.close()
        self.assertTrue(wait_log(srv, "PROXY header refused: " + reason), log_text(srv))
        return time.time() - t0

    def test_refusals_no_banner_logged_and_counted(self):
        srv = proxy_server()
        try:
            self.assert_refused(srv, b"EHLO direct.example\r\n", "not a PROXY header (from "
                                "[127.0.0.1], 1 refused in this 10-minute window)")
            self.assert_refused(srv, b"\x16\x03\x01\x00\xa5\x01", "not a PROXY header (from "
                                "[127.0.0.1], 2 refused")
            self.assert_refused(srv, b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
                                "v1: not 'TCP4|TCP6 src dst sport dport'")
            self.assert_refused(srv, b"PROXY UNKNOWN " + b"x" * 120, "v1: line longer than 107")
            self.assert_refused(srv, SIG + b"\x21\x11\xff\xff", "v2: header longer than")
            took = self.assert_refused(srv, b"PROXY TCP4 ", "no complete PROXY header within 700 ms")
            self.assertGreater(took, 0.5)
            took = self.assert_refused(srv, b"", "no complete PROXY header within 700 ms")
            self.assertLess(took, 4)
            s = pconnect(srv)
            s.sendall(b"PROXY TCP4 1.2.3.4")
            s.shutdown(socket.SHUT_WR)
            self.assertTrue(closed_without_reply(s))
            s.close()
            self.assertTrue(wait_log(srv, "PROXY header refused: connection closed before the "
                                          "PROXY header"))
            self.assertTrue(wait_log(srv, "CloseClient Started. (PROXY header)"))
        finally:
            srv.close()

    def test_untrusted_sender_refused_at_once(self):
        """A header from outside proxy_trusted_networks: closed at once,
        nothing read, without waiting for the timeout."""
        srv = proxy_server({"proxy_trusted_networks": "127.0.0.1",
                            "proxy_timeout_ms": "5000"})
        try:
            took = self.assert_refused(srv, v1("203.0.113.50"), "sender not in "
                                       "proxy_trusted_networks (from [127.0.0.2]",
                                       source="127.0.0.2")
            self.assertLess(took, 2)
            self.assertIn("client [127.0.0.2]", log_text(srv))
            self.assertNotIn("203.0.113.50", log_text(srv))
        finally:
            srv.close()

    def test_plain_listener_takes_no_header(self):
        """On a plain listener a PROXY line is an unknown command, and the
        session keeps the connection's own address."""
        srv = proxy_server()
        try:
            c = Client(srv)
            self.assertEqual(c.reply()[0], 220)
            code, _ = c.cmd("PROXY TCP4 203.0.113.60 192.0.2.1 1 25")
            self.assertEqual(code, 500)
            code, lines = c.cmd("EHLO x")
            self.assertIn("[127.0.0.1]", lines[0])
            c.close()
            self.assertNotIn("203.0.113.60]:", log_text(srv))
        finally:
            srv.close()

    def test_smtps_behind_proxy(self):
        """proxy_smtps_listen: the header, then the TLS handshake (sent in
        one segment with the ClientHello too), then the banner in TLS."""
        srv = proxy_server(tls=True)
        try:
            ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))
            for hdr in (v1("203.0.113.70"), v2("203.0.113.71")):
                raw = pconnect(srv, srv.proxy_smtps_port)
                raw.sendall(hdr)
                t = ctx.wrap_socket(raw, server_hostname="mx.test")
                code, _, buf = reply(t)
                self.assertEqual(code, 220)
                t.sendall(b"EHLO tls.example\r\n")
                code, text, _ = reply(t, buf)
                self.assertIn("Hello [203.0.113.7", text)
                t.close()
                raw.close()
            # header and ClientHello in one write: the rest is TLS input
            inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
            obj = ctx.wrap_bio(inc, out, server_hostname="mx.test")
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                pass
            raw = pconnect(srv, srv.proxy_smtps_port)
            raw.sendall(v2("203.0.113.72") + out.read())
            while True:
                data = raw.recv(65536)
                self.assertTrue(data, "closed during the handshake")
                inc.write(data)
                try:
                    obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    pass
            raw.sendall(out.read())
            got = b""
            while b"\r\n" not in got:
                try:
                    got += obj.read(4096)
                except ssl.SSLWantReadError:
                    inc.write(raw.recv(65536))
            self.assertTrue(got.startswith(b"220 "), got)
            raw.close()
            self.assertTrue(wait_log(srv, "client [203.0.113.72]"))
            # no header on the proxy smtps port: closed, no TLS alert, no banner
            raw = pconnect(srv, srv.proxy_smtps_port)
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                ctx.wrap_socket(raw, server_hostname="mx.test")
            raw.close()
            self.assertTrue(wait_log(srv, "PROXY header refused: not a PROXY header"))
        finally:
            srv.close()


if __name__ == "__main__":
    unittest.main()
