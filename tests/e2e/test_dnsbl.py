"""test_dnsbl.py - end-to-end tests of connect-time DNSBL/DNSWL scoring
(issue 17) against the real mxringd and a real dnsmasq answering
DNSBL-style zones on loopback. Clients connect from distinct loopback
source addresses (127.0.0.2, 127.0.0.3, ...), whose reversed names the
zones list or not; trusted_networks is moved off loopback so the checks
apply. A missing dnsmasq is a failure (scripts/deps.sh installs it)."""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import Server, log_text
from test_filters import DNSMASQ, dns_query, free_udp_port

BLOCKED = "554 5.7.1 Service unavailable; client [%s] blocked using bl.test"
SITES = "bl.test*3, wl.test=127.0.[0..255].[2..3]*-4"


class ZoneDns:
    """dnsmasq answering bl.test and wl.test (everything else NXDOMAIN)."""

    ANSWERS = {
        "2.0.0.127.bl.test": "127.0.0.2",    # 127.0.0.2: listed -> blocked
        "3.0.0.127.bl.test": "127.0.0.2",    # 127.0.0.3: listed, but allowlisted
        "3.0.0.127.wl.test": "127.0.10.2",
        "4.0.0.127.bl.test": "127.0.0.2",    # 127.0.0.4: the allowlist answer fails
        "4.0.0.127.wl.test": "127.0.0.9",    # its filter: still blocked
    }

    def __init__(self, folder):
        self.folder = folder
        self.proc = None

    def start(self):
        if not os.access(DNSMASQ, os.X_OK):
            raise AssertionError("dnsmasq is not installed (scripts/deps.sh installs it)")
        for _ in range(5):
            self.port = free_udp_port()
            self.log = open(os.path.join(self.folder, "dnsmasq.%d.txt" % self.port), "wb")
            args = [DNSMASQ, "--no-daemon", "--conf-file=/dev/null", "--port=%d" % self.port,
                    "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
                    "--no-hosts", "--user=root", "--group=root", "--pid-file=",
                    "--local=/bl.test/", "--local=/wl.test/", "--local-ttl=300"]
            args += ["--address=/%s/%s" % kv for kv in self.ANSWERS.items()]
            self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)
            deadline = time.time() + 5
            while time.time() < deadline and self.proc.poll() is None:
                if dns_query(self.port, "2.0.0.127.bl.test"):
                    return self
            self.stop()
        raise AssertionError("dnsmasq did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        if self.proc:
            self.log.close()
            self.proc = None


def banner(srv, source, timeout=10):
    """The first reply line a client from source gets, and whether the
    server then closed the connection."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout,
                                 source_address=(source, 0))
    try:
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        line = buf.split(b"\r\n", 1)[0].decode()
        if line.startswith("220"):
            s.sendall(b"QUIT\r\n")
        s.settimeout(5)
        closed = False
        try:
            while True:
                if not s.recv(4096):
                    closed = True
                    break
        except (ConnectionResetError, socket.timeout):
            closed = True
        return line, closed
    finally:
        s.close()


class DnsblCase(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mxring-dnsbl-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.dns = ZoneDns(self.dir).start()
        self.addCleanup(self.dns.stop)

    def server(self, **conf):
        base = {"dnsbl_sites": SITES, "dns_servers": "127.0.0.1:%d" % self.dns.port,
                "dnsbl_timeout_ms": "3000", "trusted_networks": "192.0.2.1/32",
                "workers": "1"}
        base.update(conf)
        srv = Server(conf=base, receivelog=True).start()
        self.addCleanup(srv.close)
        return srv

    def wait_log(self, srv, needles, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = log_text(srv)
            if all(n in text for n in needles):
                return text
            time.sleep(0.05)
        text = log_text(srv)
        self.assertEqual([n for n in needles if n not in text], [],
                         "receivelog lacks these lines; it holds:\n" + text)

    def test_listed_client_refused(self):
        srv = self.server()
        line, closed = banner(srv, "127.0.0.2")
        self.assertEqual(line, BLOCKED % "127.0.0.2")
        self.assertTrue(closed)
        self.wait_log(srv, ["DNSBL bl.test: 2.0.0.127.bl.test listed (127.0.0.2), weight 3",
                            "DNSBL verdict: score 3 (threshold 3): blocked using bl.test"])

    def test_unlisted_client_greeted(self):
        srv = self.server()
        line, _ = banner(srv, "127.0.0.9")
        self.assertTrue(line.startswith("220 mx.test"), line)
        self.wait_log(srv, ["DNSBL verdict: score 0 (threshold 3): pass"])

    def test_allowlisted_client_passes_despite_listing(self):
        srv = self.server()
        line, _ = banner(srv, "127.0.0.3")
        self.assertTrue(line.startswith("220 mx.test"), line)
        self.wait_log(srv, ["DNSBL bl.test: 3.0.0.127.bl.test listed (127.0.0.2), weight 3",
                            "DNSBL wl.test: 3.0.0.127.wl.test listed (127.0.10.2), weight -4",
                            "DNSBL verdict: score -1 (threshold 3): pass"])

    def test_allowlist_filter_applies(self):
        srv = self.server()
        line, _ = banner(srv, "127.0.0.4")
        self.assertEqual(line, BLOCKED % "127.0.0.4")
        text = self.wait_log(srv, ["DNSBL verdict: score 3 (threshold 3): blocked using bl.test"])
        self.assertNotIn("DNSBL wl.test:", text)

    def test_dns_timeout_passes(self):
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))  # never answers
        self.addCleanup(silent.close)
        srv = self.server(dns_servers="127.0.0.1:%d" % silent.getsockname()[1],
                          dnsbl_timeout_ms="300")
        t0 = time.time()
        line, _ = banner(srv, "127.0.0.2")
        self.assertTrue(line.startswith("220 mx.test"), line)
        self.assertLess(time.time() - t0, 3.0)
        self.wait_log(srv, ["DNSBL bl.test: lookup of 2.0.0.127.bl.test failed (timeout): "
                            "not listed",
                            "DNSBL verdict: score 0 (threshold 3): pass"])

    def test_cache_hit_on_second_connection(self):
        srv = self.server()
        self.assertEqual(banner(srv, "127.0.0.2")[0], BLOCKED % "127.0.0.2")
        self.dns.stop()  # the second verdict can only come from the cache
        self.assertEqual(banner(srv, "127.0.0.2")[0], BLOCKED % "127.0.0.2")
        self.wait_log(srv, ["DNSBL bl.test: 2.0.0.127.bl.test listed (127.0.0.2), weight 3 "
                            "(cached)"])

    def test_greet_pause_action_waits_for_the_pause(self):
        srv = self.server(dnsbl_action="greet_pause", greet_pause_ms="700")
        t0 = time.time()
        line, _ = banner(srv, "127.0.0.2")
        self.assertEqual(line, BLOCKED % "127.0.0.2")
        self.assertGreaterEqual(time.time() - t0, 0.65)
        srv2 = self.server(greet_pause_ms="2000")  # banner: the 554 does not wait
        t0 = time.time()
        self.assertEqual(banner(srv2, "127.0.0.2")[0], BLOCKED % "127.0.0.2")
        self.assertLess(time.time() - t0, 1.5)


if __name__ == "__main__":
    unittest.main()
