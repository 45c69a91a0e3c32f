"""test_delivery_dns.py - hop host names resolved on the delivery ring
(net/dlv_dns.c) against a real dnsmasq on loopback (dns_servers points at
it; never a non-loopback resolver): a name answered with 127.0.0.2 is
delivered to the hop listening there (and the answer is cached: one lookup
for two messages), a name dnsmasq does not know is deferred with "host not
found", a silent DNS server gives "DNS timeout", and while such a lookup
waits another route's message is delivered at once (the ring is not
blocked)."""
import os
import re
import smtplib
import socket
import subprocess
import tempfile
import time
import unittest

from dlv_peers import ScriptHop, delivery_server, dlog_text, wait_dlog, wait_for
from test_filters import DNSMASQ, dns_query, free_udp_port


def send(srv, rcpt):
    """One message to rcpt; returns its queue id."""
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
        c.ehlo("client.example")
        c.mail("s@b.example")
        c.rcpt(rcpt)
        code, text = c.data(b"Subject: dns\r\n\r\nhello\r\n")
    assert code == 250, (code, text)
    return re.search(r"id=([0-9A-F]{20})", text.decode()).group(1)


class HopDns:
    """dnsmasq answering relay.test with 127.0.0.2 (TTL 300); every other
    name under .test is NXDOMAIN."""

    def __init__(self):
        if not os.access(DNSMASQ, os.X_OK):
            raise AssertionError("dnsmasq is not installed (scripts/deps.sh installs it)")
        self.dir = tempfile.mkdtemp(prefix="mxring-dns-")
        for _ in range(5):
            self.port = free_udp_port()
            self.log = open(os.path.join(self.dir, "dnsmasq.txt"), "wb")
            self.proc = subprocess.Popen(
                [DNSMASQ, "--no-daemon", "--conf-file=/dev/null", "--port=%d" % self.port,
                 "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                 "--user=root", "--group=root", "--pid-file=", "--local=/test/",
                 "--local-ttl=300", "--address=/relay.test/127.0.0.2"],
                stdout=self.log, stderr=self.log)
            deadline = time.time() + 5
            while time.time() < deadline and self.proc.poll() is None:
                if dns_query(self.port, "relay.test"):
                    return
            self.close()
        raise AssertionError("dnsmasq did not start")

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.log.close()


class DeliveryDnsTest(unittest.TestCase):
    def hop(self, addr="127.0.0.1"):
        h = ScriptHop(addr=addr)
        self.addCleanup(h.close)
        return h

    def server(self, dns_port, routes, timeout_ms=2000):
        srv = delivery_server("smtp:[127.0.0.1]:1 tls=none",
                              conf={"dns_servers": "127.0.0.1:%d" % dns_port,
                                    "dns_timeout_ms": str(timeout_ms),
                                    "relay_routes": "relay.routes",
                                    "relay_retry_min": "60s", "relay_retry_max": "60s"},
                              files={"relay.routes": routes})
        self.addCleanup(srv.close)
        srv.start()
        return srv

    def test_name_resolved_delivered_and_cached(self):
        dns = HopDns()
        self.addCleanup(dns.close)
        hop = self.hop("127.0.0.2")  # only the DNS answer leads there
        srv = self.server(dns.port, "example.test smtp:relay.test:%d tls=none\n" % hop.port)
        ids = [send(srv, "a@example.test"), send(srv, "b@example.test")]
        self.assertTrue(wait_for(lambda: sorted(hop.rcpts()) == ["a@example.test",
                                                                  "b@example.test"]),
                        dlog_text(srv))
        for qid in ids:
            self.assertTrue(wait_dlog(srv, "queue id %s: done: sent=1" % qid))
        log = dlog_text(srv)
        self.assertRegex(log, r"hop=smtp:relay.test:%d reply=\"250 [^\"]*\" outcome=sent" %
                         hop.port)
        # one lookup for both messages: the answer is kept for its TTL
        self.assertEqual(len(re.findall(r"hop smtp:relay.test:%d: relay.test is 127.0.0.2 "
                                        r"\(ttl 300 s, kept 300 s\)" % hop.port, log)), 1, log)

    def test_unknown_name_deferred_host_not_found(self):
        dns = HopDns()
        self.addCleanup(dns.close)
        srv = self.server(dns.port, "example.test smtp:nowhere.test:25 tls=none\n")
        qid = send(srv, "x@example.test")
        self.assertTrue(wait_dlog(srv, "outcome=deferred"), dlog_text(srv))
        self.assertRegex(dlog_text(srv), r"queue id %s: to=<x@example.test> hop=smtp:nowhere.test:25"
                         r" reply=\"451 4.4.4 host not found: nowhere.test \(no A record\)\" "
                         r"outcome=deferred until" % qid)

    def test_silent_dns_times_out_without_blocking_other_hops(self):
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never answers
        silent.bind(("127.0.0.1", 0))
        self.addCleanup(silent.close)
        hop = self.hop()
        routes = ("slow.example smtp:hang.test:%d tls=none\n"
                  "example.test smtp:[127.0.0.1]:%d tls=none\n" % (hop.port, hop.port))
        srv = self.server(silent.getsockname()[1], routes, timeout_ms=3000)
        slow = send(srv, "w@slow.example")
        t0 = time.time()
        fast = send(srv, "f@example.test")
        self.assertTrue(wait_dlog(srv, "queue id %s: done: sent=1" % fast, timeout=10))
        self.assertLess(time.time() - t0, 2.0, "a pending lookup held up another route")
        self.assertNotIn("queue id %s: to=" % slow, dlog_text(srv))  # still resolving
        self.assertTrue(wait_dlog(srv, "DNS timeout resolving hang.test", timeout=10))
        self.assertRegex(dlog_text(srv), r"queue id %s: to=<w@slow.example> hop=smtp:hang.test:\d+ "
                         r"reply=\"451 4.4.3 DNS timeout resolving hang.test\" outcome=deferred"
                         % slow)
        self.assertEqual(hop.rcpts(), ["f@example.test"])


if __name__ == "__main__":
    unittest.main()
