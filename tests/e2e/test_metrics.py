"""test_metrics.py - the Prometheus endpoint (issue 18) against the real
mxringd: a real Prometheus (Debian's prometheus, private configuration on
loopback, 1 s scrape interval) scrapes it and its HTTP API must report the
counts of a known number of test messages; promtool check metrics finds no
problem in the exposition; metrics_allow (403 and a log line, reloadable);
strict HTTP refusals (400, 405, 404, 431, 408 on a silent client). The
journal histograms, queue gauges, TLS handshakes, AUTH outcomes, filter
verdicts, DNS lookups and deliveries against known traffic."""
import base64
import crypt
import json
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from harness import Server, free_port, make_certs
from dlv_peers import ScriptHop, wait_for
from milter_peer import MilterPeer

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
NMSG = 5


def http_get(port, path="/metrics", timeout=5):
    """(status, body) of GET path on 127.0.0.1:port."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def raw(port, data, timeout=10):
    """Send raw bytes, read until the server closes; the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        if data:
            s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out.decode(errors="replace")
            out += chunk


def samples(text):
    """{'name{labels}': value} of an exposition."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, val = line.rpartition(" ")
            out[key] = float(val)
    return out


def settled(port, key, want=None, timeout=5):
    """The samples once key has want (or is above 0 when want is None):
    the session close and the receivelog flush trail the client's QUIT."""
    deadline = time.time() + timeout
    while True:
        status, body = http_get(port)
        m = samples(body)
        v = m.get(key, 0)
        if (v == want if want is not None else v > 0) or time.time() > deadline:
            return status, body, m
        time.sleep(0.05)


class MetricsServer(Server):
    def __init__(self, allow=None, extra=None):
        self.mport = free_port()
        conf = {"metrics_listen": "127.0.0.1:%d" % self.mport, "trusted_networks": ""}
        if allow is not None:
            conf["metrics_allow"] = allow
        conf.update(extra or {})
        super().__init__(conf=conf, receivelog=True)


def promtool_clean(test, body):
    """promtool check metrics reports nothing about body."""
    if PROMTOOL:
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=body.encode(),
                           capture_output=True, timeout=30)
        test.assertEqual((p.returncode, p.stdout + p.stderr), (0, b""))


def send_messages(srv, n):
    """n messages, each with one refused (relay) recipient."""
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
        for i in range(n):
            c.ehlo("client.test")
            c.mail("a@example.test")
            c.rcpt("b@example.test")
            code, _ = c.rcpt("x@elsewhere.invalid")
            assert code == 550, code
            c.data("Subject: m%d\r\n\r\nbody\r\n" % i)


class MetricsEndpointTest(unittest.TestCase):
    def test_metrics_promtool_and_counts(self):
        """The exposition passes promtool and counts the messages sent."""
        with MetricsServer() as srv:
            send_messages(srv, NMSG)
            settled(srv.mport, 'mxring_sessions_closed_total{reason="QUIT"}', 1)
            status, body, m = settled(srv.mport, "mxring_receivelog_lines_written_total")
            self.assertEqual(status, 200)
            self.assertEqual(m['mxring_messages_queued_total'], NMSG)
            self.assertEqual(m['mxring_transactions_total{result="queued"}'], NMSG)
            self.assertEqual(m['mxring_commands_total{verb="MAIL"}'], NMSG)
            self.assertEqual(m['mxring_commands_total{verb="RCPT"}'], 2 * NMSG)
            self.assertEqual(m['mxring_recipients_refused_total{reason="relaying denied"}'], NMSG)
            self.assertEqual(m['mxring_connections_total{listener="smtp"}'], 1)
            self.assertEqual(m['mxring_sessions_closed_total{reason="QUIT"}'], 1)
            self.assertGreater(m['mxring_received_bytes_total'], 100)
            self.assertGreater(m['mxring_receivelog_lines_written_total'], 0)
            self.assertEqual(m['mxring_sessions_open'], 0)
            promtool_clean(self, body)

    def test_metrics_journal_and_queue_series(self):
        """NMSG messages: the group-commit histogram counts every fdatasync
        (as many as the fdatasync counter, read live, not only at exit) and
        sums to NMSG commits; the fdatasync latency histogram has one
        observation per fdatasync; the transaction histogram one per
        message; with no delivery the messages wait in new/, the oldest for
        at least the time waited; one journal segment is in use."""
        with MetricsServer() as srv:
            send_messages(srv, NMSG)
            time.sleep(0.3)
            _, body, m = settled(srv.mport, "mxring_transaction_duration_seconds_count", NMSG)
            syncs = m["mxring_journal_fdatasyncs_total"]
            self.assertGreater(syncs, 0)
            self.assertGreater(m["mxring_journal_writes_total"], 0)
            self.assertEqual(m["mxring_journal_batch_commits_count"], syncs)
            self.assertEqual(m['mxring_journal_batch_commits_bucket{le="+Inf"}'], syncs)
            self.assertEqual(m["mxring_journal_batch_commits_sum"], NMSG)
            self.assertEqual(m["mxring_journal_fdatasync_duration_seconds_count"], syncs)
            self.assertGreater(m["mxring_journal_fdatasync_duration_seconds_sum"], 0)
            self.assertEqual(m["mxring_transaction_duration_seconds_count"], NMSG)
            self.assertEqual(m['mxring_transaction_duration_seconds_bucket{le="+Inf"}'], NMSG)
            self.assertGreater(m["mxring_transaction_duration_seconds_sum"], 0)
            self.assertEqual(m['mxring_queue_messages{state="new"}'], NMSG)
            self.assertEqual(m['mxring_queue_messages{state="active"}'], 0)
            self.assertEqual(m["mxring_queue_new_scan_complete"], 1)
            self.assertGreaterEqual(m["mxring_queue_oldest_message_age_seconds"], 0.3)
            self.assertLess(m["mxring_queue_oldest_message_age_seconds"], 60)
            self.assertGreaterEqual(m["mxring_journal_segments"], 1)
            promtool_clean(self, body)

    def test_metrics_http_refusals(self):
        """Strict HTTP: bare LF 400, POST 405 with Allow, other path 404,
        an oversized request 431, a silent client 408 within the timeout;
        every answer closes the connection."""
        with MetricsServer() as srv:
            a = raw(srv.mport, b"GET /metrics HTTP/1.1\nHost: x\n\n")
            self.assertTrue(a.startswith("HTTP/1.1 400 Bad Request\r\n"), a)
            a = raw(srv.mport, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(a.startswith("HTTP/1.1 405 "), a)
            self.assertIn("\r\nAllow: GET\r\n", a)
            self.assertIn("\r\nConnection: close\r\n", a)
            self.assertTrue(raw(srv.mport, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                            .startswith("HTTP/1.1 404 "))
            big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX: " + b"v" * 5000
            self.assertTrue(raw(srv.mport, big).startswith("HTTP/1.1 431 "))
            t0 = time.monotonic()
            a = raw(srv.mport, b"GET /metr", timeout=15)
            self.assertTrue(a.startswith("HTTP/1.1 408 "), a)
            self.assertLess(time.monotonic() - t0, 8)
            m = samples(http_get(srv.mport)[1])
            self.assertEqual(m["mxring_metrics_bad_requests_total"], 5)

    def test_metrics_allow_403_logged_and_reloadable(self):
        """A client outside metrics_allow gets 403 and a log line; after a
        SIGHUP that allows it, 200."""
        with MetricsServer(allow="192.0.2.0/24") as srv:
            status, _ = http_get(srv.mport)
            self.assertEqual(status, 403)
            time.sleep(0.1)
            self.assertIn("metrics: 403 for [127.0.0.1]: not in metrics_allow", srv.stderr())
            srv.conf["metrics_allow"] = "192.0.2.0/24, 127.0.0.1"
            srv.write_conf()
            srv.signal(signal.SIGHUP)
            deadline = time.time() + 5
            while "reloaded" not in srv.stderr() and time.time() < deadline:
                time.sleep(0.05)
            status, body = http_get(srv.mport)
            self.assertEqual(status, 200)
            self.assertEqual(samples(body)["mxring_metrics_forbidden_total"], 1)

    def test_metrics_listen_in_use_fails_start(self):
        """metrics_listen on a port already served: mxringd refuses to start
        and names the key."""
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            srv = Server(conf={"metrics_listen": "127.0.0.1:%d" % busy.getsockname()[1]})
            self.addCleanup(srv.close)
            srv.start(wait=False)
            self.assertEqual(srv.proc.wait(10), 2)
            self.assertIn("metrics_listen 127.0.0.1:%d: Address already in use"
                          % busy.getsockname()[1], srv.stderr())


PASSWORD = "s3cret-Pa55"


class MetricsTlsAuthTest(unittest.TestCase):
    def setUp(self):
        self.certs = make_certs()
        self.addCleanup(shutil.rmtree, self.certs, True)

    def test_metrics_tls_and_auth(self):
        """One STARTTLS session: one TLSv1.3 handshake; in it a wrong AUTH
        PLAIN (failure), a cancelled AUTH LOGIN and a good AUTH LOGIN
        (success); an unknown mechanism; garbage on the smtps port: one
        failed handshake."""
        sport = free_port()
        srv = MetricsServer(extra={
            "tls_cert": os.path.join(self.certs, "cert.pem"),
            "tls_key": os.path.join(self.certs, "key.pem"),
            "smtps_listen": "127.0.0.1:%d" % sport})
        self.addCleanup(srv.close)
        users = srv.path("users")
        with open(users, "w") as f:
            f.write("alice@example.test:%s\n" % crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_SHA512)))
        srv.conf["users_file"] = users
        srv.write_conf()
        srv.start()
        ctx = ssl.create_default_context(cafile=os.path.join(self.certs, "ca.pem"))
        s = smtplib.SMTP("127.0.0.1", srv.port, timeout=10)
        s.starttls(context=ctx)
        s.ehlo("client.test")
        bad = base64.b64encode(b"\0alice@example.test\0wrong").decode()
        self.assertEqual(s.docmd("AUTH PLAIN " + bad)[0], 535)
        self.assertEqual(s.docmd("AUTH LOGIN")[0], 334)
        self.assertEqual(s.docmd("*")[0], 501)
        self.assertEqual(s.docmd("AUTH CRAM-MD5")[0], 504)
        s.user, s.password = "alice@example.test", PASSWORD
        self.assertEqual(s.auth("LOGIN", s.auth_login, initial_response_ok=False)[0], 235)
        s.quit()
        with socket.create_connection(("127.0.0.1", sport), timeout=10) as c:
            c.sendall(b"EHLO not-a-tls-client\r\n" * 4)
            try:
                while c.recv(4096):
                    pass
            except OSError:
                pass
        _, body, m = settled(srv.mport, "mxring_tls_handshake_failures_total", 1)
        self.assertEqual(m["mxring_tls_handshake_failures_total"], 1)
        self.assertEqual(m['mxring_tls_handshakes_total{version="TLSv1.3"}'], 1)
        self.assertEqual(m['mxring_tls_handshakes_total{version="TLSv1.2"}'], 0)
        self.assertEqual(m['mxring_auth_total{mechanism="PLAIN",outcome="failure"}'], 1)
        self.assertEqual(m['mxring_auth_total{mechanism="LOGIN",outcome="cancelled"}'], 1)
        self.assertEqual(m['mxring_auth_total{mechanism="LOGIN",outcome="success"}'], 1)
        self.assertEqual(m['mxring_auth_total{mechanism="unknown",outcome="failure"}'], 1)
        self.assertEqual(m['mxring_auth_total{mechanism="PLAIN",outcome="success"}'], 0)
        promtool_clean(self, body)


class MetricsFilterDeliveryTest(unittest.TestCase):
    def test_metrics_filter_verdicts_and_dns(self):
        """A SURBL zone and a DNSBL site whose DNS server never answers
        (dns_failure = pass): per check one lookup sent and one failure;
        one pass verdict."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mute:
            mute.bind(("127.0.0.1", 0))
            srv = MetricsServer(extra={
                "surbl_zones": "multi.surbl.test:reject", "dns_failure": "pass",
                "dns_servers": "127.0.0.1:%d" % mute.getsockname()[1], "dns_timeout_ms": "300",
                "dnsbl_sites": "bl.test", "dnsbl_timeout_ms": "300"})
            with srv:
                with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
                    c.sendmail("a@example.test", ["b@example.test"],
                               "Subject: u\r\n\r\nsee http://bad.example/\r\n")
                _, body, m = settled(srv.mport, 'mxring_filter_verdicts_total{verdict="pass"}', 1)
                self.assertEqual(m['mxring_filter_verdicts_total{verdict="pass"}'], 1)
                self.assertEqual(m['mxring_filter_verdicts_total{verdict="spam"}'], 0)
                self.assertEqual(m['mxring_dns_queries_total{check="surbl"}'], 1)
                self.assertEqual(m['mxring_dns_failures_total{check="surbl"}'], 1)
                self.assertEqual(m['mxring_dns_queries_total{check="dnsbl"}'], 1)
                self.assertEqual(m['mxring_dns_failures_total{check="dnsbl"}'], 1)
                promtool_clean(self, body)

    def test_metrics_milter_verdicts(self):
        """A milter that rejects at end of message, then
        one that accepts (the script changed): one reject, one accept."""
        p = MilterPeer(script={"E": [("y", b"550 5.7.1 Spam message rejected\0")]})
        self.addCleanup(p.close)
        srv = MetricsServer(extra={"milters": "py=" + p.spec(),
                                   "milter_command_timeout_ms": "1000",
                                   "milter_content_timeout_ms": "1000",
                                   "milter_connect_timeout_ms": "1000"})
        with srv:
            msg = "Subject: m\r\n\r\nbody\r\n"
            with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
                c.ehlo("client.test")
                c.mail("a@example.test")
                c.rcpt("b@example.test")
                self.assertEqual(c.data(msg)[0], 550)
                p.script = {}
                c.mail("a@example.test")
                c.rcpt("b@example.test")
                self.assertEqual(c.data(msg)[0], 250)
            _, body, m = settled(srv.mport, 'mxring_milter_verdicts_total{verdict="accept"}', 1)
            self.assertEqual(m['mxring_milter_verdicts_total{verdict="reject"}'], 1)
            self.assertEqual(m['mxring_milter_verdicts_total{verdict="accept"}'], 1)
            self.assertEqual(m['mxring_milter_verdicts_total{verdict="tempfail"}'], 0)
            promtool_clean(self, body)

    def test_metrics_deliveries_by_hop_and_outcome(self):
        """Three messages from the null sender to a scripted hop: the first
        transaction is deferred (451), one recipient is refused (550,
        bounced, no bounce owed); while the deferral waits the census shows
        a deferred message; at the end 2 sent, 1 bounced, 1 deferred at
        that hop, the delivery histogram holds the 3 final outcomes and the
        queue delay histogram the 2 sent."""
        hop = ScriptHop()
        self.addCleanup(hop.close)
        hop.tempfail_first = 1
        hop.reject = {"no@example.test"}
        srv = MetricsServer(extra={
            "default_route": "smtp:[127.0.0.1]:%d tls=none" % hop.port,
            "relay_retry_min": "3s", "relay_retry_max": "3s", "queue_min_free_space": "0"})
        with srv:
            for rcpt in ("a@example.test", "b@example.test", "no@example.test"):
                with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
                    c.sendmail("", [rcpt], "Subject: d\r\n\r\nhello\r\n")
            key = 'mxring_deliveries_total{hop="smtp:[127.0.0.1]:%d",outcome="%%s"}' % hop.port
            _, _, m = settled(srv.mport, 'mxring_queue_messages{state="deferred"}', 1, timeout=5)
            self.assertEqual(m['mxring_queue_messages{state="deferred"}'], 1)
            self.assertGreater(m["mxring_queue_oldest_message_age_seconds"], 0)
            _, body, m = settled(srv.mport, key % "sent", 2, timeout=20)
            _, body, m = settled(srv.mport, "mxring_delivery_duration_seconds_count", 3)
            self.assertEqual(m[key % "sent"], 2)
            self.assertEqual(m[key % "bounced"], 1)
            self.assertEqual(m[key % "deferred"], 1)
            self.assertEqual(m["mxring_delivery_duration_seconds_count"], 3)
            self.assertGreater(m["mxring_delivery_duration_seconds_sum"], 0)
            self.assertEqual(m["mxring_delivery_queue_delay_seconds_count"], 2)  # sent only
            self.assertTrue(wait_for(lambda: samples(http_get(srv.mport)[1])
                                     ['mxring_queue_messages{state="active"}'] == 0, 5))
            promtool_clean(self, body)


@unittest.skipUnless(PROMETHEUS, "prometheus is not installed (scripts/deps.sh test)")
class PrometheusScrapeTest(unittest.TestCase):
    def query(self, expr):
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (
            self.pport, urllib.parse.urlencode({"query": expr}))
        with urllib.request.urlopen(url, timeout=5) as r:
            data = json.loads(r.read())
        self.assertEqual(data["status"], "success")
        res = data["data"]["result"]
        return float(res[0]["value"][1]) if res else None

    def wait_value(self, expr, want, timeout=30):
        deadline = time.time() + timeout
        got = None
        while time.time() < deadline:
            try:
                got = self.query(expr)
            except (urllib.error.URLError, ConnectionError):
                got = None
            if got == want:
                return got
            time.sleep(0.3)
        self.fail("%s: %r, want %r; prometheus log:\n%s" % (expr, got, want, self.plog()[-2000:]))

    def plog(self):
        with open(self.plog_path, errors="replace") as f:
            return f.read()

    def test_metrics_prometheus_scrape_matches_messages(self):
        """Prometheus scrapes mxringd every second; its API reports up = 1
        and the counters of NMSG messages."""
        srv = MetricsServer()
        srv.start()
        self.addCleanup(srv.close)
        d = tempfile.mkdtemp(prefix="mxring-prom-")
        self.addCleanup(shutil.rmtree, d, True)
        with open(os.path.join(d, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: mxring\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % srv.mport)
        self.pport = free_port()
        self.plog_path = os.path.join(d, "prometheus.log")
        plog = open(self.plog_path, "wb")
        self.addCleanup(plog.close)
        prom = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + os.path.join(d, "prometheus.yml"),
             "--storage.tsdb.path=" + os.path.join(d, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.pport], stdout=plog, stderr=plog)

        def stop_prom():
            prom.terminate()
            try:
                prom.wait(10)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait()
        self.addCleanup(stop_prom)
        send_messages(srv, NMSG)
        self.wait_value('up{job="mxring"}', 1.0)
        self.wait_value("mxring_messages_queued_total", float(NMSG))
        self.assertEqual(self.query('mxring_transactions_total{result="queued"}'), NMSG)
        self.assertEqual(self.query('mxring_commands_total{verb="DATA"}'), NMSG)
        self.assertEqual(self.query(
            'mxring_recipients_refused_total{reason="relaying denied"}'), NMSG)
        self.assertEqual(self.query("mxring_sessions_open"), 0)
        self.assertGreaterEqual(self.query("mxring_metrics_scrapes_total"), 1)


if __name__ == "__main__":
    unittest.main()
