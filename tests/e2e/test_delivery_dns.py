"""test_delivery_dns.py - hop host names resolved on the delivery ring
(net/dlv_dns.c) against a real dnsmasq on loopback (dns_servers points at
it; never a non-loopback resolver): a name answered with 127.0.0.2 is
delivered to the hop listening there (and the answer is cached: one lookup
for two messages), a name dnsmasq does not know is deferred with "host not
found", a silent DNS server gives "DNS timeout", and while such a lookup
waits another route's message is delivered at once (the ring is not
blocked). A name answered only by AAAA ::1 is delivered to a hop on [::1];
a name in hosts_file is delivered without DNS (the silent server is never
waited for), an edit of the file is seen without a reload, and `localhost`
resolves through the default /etc/hosts (skipped where it lacks the line);
a name with an IPv6 and an IPv4 address (in hosts_file, or A + AAAA from
dnsmasq) whose IPv6 one refuses is delivered over IPv4: the next address
is tried before the hop counts as down."""
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


def ipv6_loopback():
    """Can a TCP socket be bound on ::1 here?"""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class HopDns:
    """dnsmasq answering relay.test with 127.0.0.2 (TTL 300) and v6only.test
    with the AAAA ::1 only; every other name under .test is NXDOMAIN."""

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
                 "--local-ttl=300", "--address=/relay.test/127.0.0.2",
                 "--address=/v6only.test/::1", "--address=/dual.test/::1",
                 "--address=/dual.test/127.0.0.2"],
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

    def server(self, dns_port, routes, timeout_ms=2000, hosts_file=None):
        conf = {"dns_servers": "127.0.0.1:%d" % dns_port, "dns_timeout_ms": str(timeout_ms),
                "relay_routes": "relay.routes",
                "relay_retry_min": "60s", "relay_retry_max": "60s"}
        if hosts_file:
            conf["hosts_file"] = hosts_file
        srv = delivery_server("smtp:[127.0.0.1]:1 tls=none", conf=conf,
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
                         r" reply=\"451 4.4.4 host not found: nowhere.test "
                         r"\(no A or AAAA record\)\" outcome=deferred until" % qid)

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

    def silent_dns(self):
        """A bound UDP socket that never answers: its port."""
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        self.addCleanup(silent.close)
        return silent.getsockname()[1]

    def hosts_file(self, text):
        """A private hosts(5) file holding text: its path."""
        d = tempfile.mkdtemp(prefix="mxring-hosts-")
        path = os.path.join(d, "hosts")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_aaaa_only_name_delivered_over_ipv6(self):
        if not ipv6_loopback():
            self.skipTest("::1 is not available here")
        dns = HopDns()
        self.addCleanup(dns.close)
        hop = self.hop("::1")  # only the AAAA answer leads there
        srv = self.server(dns.port, "example.test smtp:v6only.test:%d tls=none\n" % hop.port)
        qid = send(srv, "six@example.test")
        self.assertTrue(wait_for(lambda: hop.rcpts() == ["six@example.test"]), dlog_text(srv))
        self.assertTrue(wait_dlog(srv, "queue id %s: done: sent=1" % qid))
        log = dlog_text(srv)
        self.assertIn("hop smtp:v6only.test:%d: v6only.test is ::1 (ttl 300 s, kept 300 s)"
                      % hop.port, log)
        self.assertRegex(log, r"queue id %s: to=<six@example.test> hop=smtp:v6only.test:%d "
                         r"reply=\"250 [^\"]*\" outcome=sent" % (qid, hop.port))

    def test_hosts_file_name_delivered_without_dns(self):
        hop = self.hop("127.0.0.3")
        path = self.hosts_file("# private hosts\n127.0.0.1 localhost\n"
                               "127.0.0.3   gw MX.Internal   # the relay\n")
        routes = ("example.test smtp:[mx.internal]:%d tls=none\n"
                  "late.example smtp:[late.internal]:%d tls=none\n" % (hop.port, hop.port))
        srv = self.server(self.silent_dns(), routes, timeout_ms=5000, hosts_file=path)
        t0 = time.time()
        qid = send(srv, "h@example.test")
        self.assertTrue(wait_dlog(srv, "queue id %s: done: sent=1" % qid, timeout=10),
                        dlog_text(srv))
        self.assertLess(time.time() - t0, 4.0, "waited for DNS although hosts_file has the name")
        self.assertEqual(hop.rcpts(), ["h@example.test"])
        log = dlog_text(srv)
        self.assertIn("hop smtp:mx.internal:%d: mx.internal is 127.0.0.3 (hosts_file %s)"
                      % (hop.port, path), log)
        self.assertNotIn("DNS timeout", log)
        # a name added to the file later is found without SIGHUP (re-read when it changed)
        hop2 = ScriptHop(port=hop.port, addr="127.0.0.4")
        self.addCleanup(hop2.close)
        with open(path + ".new", "w") as f:
            f.write("127.0.0.3 mx.internal\n127.0.0.4 late.internal\n")
        os.rename(path + ".new", path)
        time.sleep(1.2)  # the file is checked at most once a second
        t0 = time.time()
        late = send(srv, "l@late.example")
        self.assertTrue(wait_dlog(srv, "queue id %s: done: sent=1" % late, timeout=10),
                        dlog_text(srv))
        self.assertLess(time.time() - t0, 4.0, "the edited hosts_file was not read again")
        self.assertEqual(hop2.rcpts(), ["l@late.example"])
        self.assertIn("late.internal is 127.0.0.4 (hosts_file %s)" % path, dlog_text(srv))

    def test_next_address_tried_before_the_hop_is_down(self):
        hop = self.hop("127.0.0.5")  # nothing listens on [::1]:port: refused (or unreachable)
        path = self.hosts_file("127.0.0.5 both.internal\n::1 both.internal\n")
        srv = self.server(self.silent_dns(), "example.test smtp:both.internal:%d tls=none\n"
                          % hop.port, hosts_file=path)
        qid = send(srv, "b@example.test")
        self.assertTrue(wait_dlog(srv, "queue id %s: done: sent=1" % qid, timeout=10),
                        dlog_text(srv))
        self.assertEqual(hop.rcpts(), ["b@example.test"])
        log = dlog_text(srv)
        # IPv6 first (as getaddrinfo's RFC 6724 defaults), then IPv4
        self.assertIn("both.internal is ::1, 127.0.0.5 (hosts_file %s)" % path, log)
        self.assertRegex(log, r"hop smtp:both.internal:%d: ::1: 451 4.4.0 (connect|socket): "
                         r"[^;]+; trying 127.0.0.5" % hop.port)
        self.assertNotIn("outcome=deferred", log)

    def test_dns_aaaa_refused_then_a_delivered(self):
        dns = HopDns()
        self.addCleanup(dns.close)
        hop = self.hop("127.0.0.2")  # nothing on [::1]:port
        srv = self.server(dns.port, "example.test smtp:dual.test:%d tls=none\n" % hop.port)
        qid = send(srv, "d@example.test")
        self.assertTrue(wait_dlog(srv, "queue id %s: done: sent=1" % qid, timeout=10),
                        dlog_text(srv))
        self.assertEqual(hop.rcpts(), ["d@example.test"])
        log = dlog_text(srv)
        self.assertIn("hop smtp:dual.test:%d: dual.test is ::1, 127.0.0.2 (ttl 300 s, kept 300 s)"
                      % hop.port, log)
        self.assertRegex(log, r"dual.test:%d: ::1: 451 4.4.0 (connect|socket): [^;]+; trying "
                         r"127.0.0.2" % hop.port)
        self.assertNotIn("outcome=deferred", log)

    def test_localhost_from_the_default_hosts_file(self):
        try:
            with open("/etc/hosts") as f:
                lines = [l.split("#")[0].split() for l in f]
        except OSError:
            self.skipTest("no /etc/hosts here")
        if not any(l[:1] == ["127.0.0.1"] and "localhost" in l[1:] for l in lines):
            self.skipTest("/etc/hosts does not map localhost to 127.0.0.1")
        hop = self.hop("127.0.0.1")
        srv = self.server(self.silent_dns(), "example.test smtp:localhost:%d tls=none\n"
                          % hop.port, timeout_ms=5000)  # hosts_file left at its default
        qid = send(srv, "lh@example.test")
        self.assertTrue(wait_dlog(srv, "queue id %s: done: sent=1" % qid, timeout=4),
                        dlog_text(srv))
        self.assertEqual(hop.rcpts(), ["lh@example.test"])
        self.assertRegex(dlog_text(srv), r"hop smtp:localhost:%d: localhost is [^(]*127\.0\.0\.1"
                         r"[^(]* \(hosts_file /etc/hosts\)" % hop.port)


if __name__ == "__main__":
    unittest.main()
