"""test_delivery.py - onward delivery against real next hops started here on
loopback: Postfix smtp-sink, a private Postfix instance, a private Dovecot
LMTP (TCP and unix socket, the mailbox checked byte for byte), a scripted
hop that tempfails then recovers, one that rejects one recipient (DSN to
the sender through the same routes), a hop down for the whole (short)
queue_lifetime (bounce), failover to a second hop, the delivery log and
back-pressure (452 4.3.1 at queue_max_messages)."""
import os
import re
import shutil
import smtplib
import unittest
import urllib.request

import harness
from dlv_peers import (Dovecot, PrivatePostfix, ScriptHop, SmtpSink, delivery_server, dlog_text,
                       queue_empty, wait_dlog, wait_for)


def send(srv, rcpts, sender="s@b.example", body=None, subject="t"):
    """One message through smtplib; returns the queue id from the 250."""
    msg = body or ("Subject: %s\r\nFrom: <%s>\r\n\r\nhello\r\n" % (subject, sender))
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
        c.ehlo("client.example")
        c.mail(sender)
        for r in rcpts:
            c.rcpt(r)
        code, text = c.data(msg.encode() if isinstance(msg, str) else msg)
    assert code == 250, (code, text)
    return re.search(r"id=([0-9A-F]{20})", text.decode()).group(1)


class SmtpSinkTest(unittest.TestCase):
    def setUp(self):
        self.sink = SmtpSink()
        self.addCleanup(self.sink.close)     # also when the server does not start
        self.srv = delivery_server("smtp:[127.0.0.1]:%d tls=none" % self.sink.port)
        self.addCleanup(self.srv.close)
        self.srv.start()

    def test_delivered_to_smtp_sink_and_logged(self):
        ids = [send(self.srv, ["a%d@example.test" % i, "b%d@example.test" % i]) for i in range(5)]
        self.assertTrue(wait_for(lambda: self.sink.rcpt_count() == 10), self.sink.messages())
        self.assertTrue(wait_for(lambda: queue_empty(self.srv)))
        got = sorted(r for m in self.sink.messages() for r in m[1])
        self.assertEqual(got, sorted(["a%d@example.test" % i for i in range(5)] +
                                     ["b%d@example.test" % i for i in range(5)]))
        for mail, _, body in self.sink.messages():
            self.assertIn("<s@b.example>", mail)
            self.assertIn(b"by mx.test (mxring)", body)
            self.assertIn(b"hello", body)
        self.assertTrue(wait_dlog(self.srv, "queue id %s: done: sent=2 bounced=0" % ids[-1]))
        dlog = dlog_text(self.srv)
        rlog = harness.log_text(self.srv)
        for qid in ids:
            # one id follows the message from the Internet to the next hop
            self.assertIn(qid, rlog)
            self.assertRegex(dlog, r" \[\d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d\], [0-9A-F]{8}, queue id "
                             + qid + r": to=<a\d@example.test> hop=smtp:\[127.0.0.1\]:%d "
                             r"reply=\"250 [^\"]*\" outcome=sent delay=\d+\.\d{3}\n" % self.sink.port)


    def test_handed_over_by_the_materializer(self):
        """With a route, committed messages go straight from the materializer
        to queue/active/ and the delivery thread (their bytes handed over
        when they fit its 64 KiB buffer, read from the file when larger):
        the exit line counts them all as handed over, and a large body
        arrives intact."""
        big = "Subject: big\r\n\r\n" + "".join("line %06d of a large body\r\n" % i
                                                   for i in range(4000))
        send(self.srv, ["big@example.test"], body=big)
        for i in range(5):
            send(self.srv, ["h%d@example.test" % i])
        self.assertTrue(wait_for(lambda: self.sink.rcpt_count() == 6), self.sink.messages())
        self.assertTrue(wait_for(lambda: queue_empty(self.srv)))
        bodies = [b for _, r, b in self.sink.messages() if r == ["big@example.test"]]
        self.assertEqual(len(bodies), 1)
        self.assertGreater(len(big), 64 * 1024)
        want = big.split("\r\n\r\n", 1)[1].replace("\r\n", "\n").encode()  # the sink's dump has LF
        self.assertTrue(want in bodies[0].replace(b"\r\n", b"\n"), "large body not intact")
        self.srv.stop()
        self.assertRegex(self.srv.stderr(), r"mxringd: delivery: 6 messages taken \(6 handed over "
                         r"by the materializer\), 6 recipients sent")


class QueueDelayTest(unittest.TestCase):
    """The queue delay (queue id time to the hop's 2xx) of one message to
    smtp-sink: the metrics histogram counts one recipient, the deliverylog's
    sent line carries delay= (seconds, 3 decimals), the exit line prints
    p50/p99/max."""

    def test_queue_delay_metric_log_and_exit_line(self):
        sink = SmtpSink()
        self.addCleanup(sink.close)
        mport = harness.free_port()
        srv = delivery_server("smtp:[127.0.0.1]:%d tls=none" % sink.port,
                              conf={"metrics_listen": "127.0.0.1:%d" % mport})
        self.addCleanup(srv.close)
        srv.start()
        qid = send(srv, ["one@example.test"])
        self.assertTrue(wait_for(lambda: sink.rcpt_count() == 1))
        self.assertTrue(wait_dlog(srv, "queue id %s: done: sent=1" % qid))
        m = re.search(r"queue id %s: to=<one@example.test> \S+ reply=\"250 [^\"]*\" outcome=sent "
                      r"delay=(\d+\.\d{3})\n" % qid, dlog_text(srv))
        self.assertIsNotNone(m, dlog_text(srv))
        self.assertLess(float(m.group(1)), 15)

        def metric():
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=5) as r:
                body = r.read().decode()
            return {k: float(v) for k, _, v in (line.rpartition(" ") for line in body.splitlines()
                                                if line.startswith("mxring_delivery_queue_"))}
        got = wait_for(lambda: metric().get("mxring_delivery_queue_delay_seconds_count") == 1 and
                       metric(), 5)
        self.assertTrue(got, metric())
        self.assertEqual(got['mxring_delivery_queue_delay_seconds_bucket{le="+Inf"}'], 1)
        self.assertGreater(got["mxring_delivery_queue_delay_seconds_sum"], 0)
        self.assertLess(got["mxring_delivery_queue_delay_seconds_sum"], 15)
        srv.stop()
        self.assertRegex(srv.stderr(), r"mxringd: delivery: queue delay \(queue id to 2xx\) 1 "
                         r"recipients, p50 [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms\n")


class DoneLogTest(unittest.TestCase):
    """A finished message's id is remembered for 10 s in memory and in
    queue/state/done.<epoch> (no state file left per message): a copy of
    its queue file turning up in new/ (what the journal's recovery writes
    after a crash) is dropped, while running and after a restart."""

    def test_copy_of_delivered_message_dropped_running_and_after_restart(self):
        hop = ScriptHop()
        self.addCleanup(hop.close)
        hop.tempfail_first = 1                       # deferred once: a state file exists
        srv = delivery_server("smtp:[127.0.0.1]:%d tls=none" % hop.port)
        self.addCleanup(srv.close)
        srv.start()
        qid = send(srv, ["d@example.test"])
        q = os.path.join(srv.workdir, "queue")
        self.assertTrue(wait_dlog(srv, "queue id %s: to=<d@example.test>" % qid))
        self.assertTrue(wait_for(lambda: os.path.exists(os.path.join(q, "state", qid))))
        with open(os.path.join(q, "active", qid), "rb") as f:
            copy = f.read()
        self.assertTrue(wait_dlog(srv, "queue id %s: done: sent=1" % qid))
        self.assertTrue(wait_for(lambda: not os.path.exists(os.path.join(q, "state", qid))))
        logs = [n for n in os.listdir(os.path.join(q, "state")) if n.startswith("done.")]
        self.assertTrue(logs)
        self.assertIn(qid, "".join(open(os.path.join(q, "state", n)).read() for n in logs))

        def again():
            with open(os.path.join(q, "tmp", qid), "wb") as f:
                f.write(copy)
            os.rename(os.path.join(q, "tmp", qid), os.path.join(q, "new", qid))
        dropped = "queue id %s: already delivered" % qid
        again()                                      # while running (inotify)
        self.assertTrue(wait_for(lambda: dlog_text(srv).count(dropped) == 1))
        srv.stop()
        again()                                      # across a restart (the log read back)
        srv.start()
        self.assertTrue(wait_for(lambda: dlog_text(srv).count(dropped) == 2))
        self.assertTrue(wait_for(lambda: queue_empty(srv)))
        self.assertEqual(hop.rcpts(), ["d@example.test"])


class DovecotLmtpTest(unittest.TestCase):
    def setUp(self):
        if shutil.which("dovecot") is None:
            self.skipTest("dovecot-lmtpd is not installed (scripts/deps.sh test)")
        self.dc = Dovecot()
        self.addCleanup(self.dc.close)

    def check_mailbox(self, route, user):
        # dot-stuffing, a line of dots, 8-bit UTF-8, a long line: all must
        # arrive as sent
        body = ("Subject: lmtp\r\nFrom: <s@b.example>\r\n\r\n.leading dot\r\n..\r\n.\r\n"
                "j\u00f6rg \u2603\r\n" + "x" * 900 + "\r\nend\r\n").encode()
        with delivery_server(route) as srv:
            qid = send(srv, [user + "@example.test"], body=body)
            self.assertTrue(wait_for(lambda: self.dc.mailbox(user), 15), self.dc.logs())
            self.assertTrue(wait_dlog(srv, "queue id %s: to=<%s@example.test>" % (qid, user)))
        box = self.dc.mailbox(user)
        self.assertEqual(len(box), 1)
        got = box[0]
        head = b"Return-Path: <s@b.example>\n"
        self.assertTrue(got.startswith(head), got[:200])
        rest = got[len(head):]
        # mxringd's Received: header (folded lines), then the message as sent;
        # the maildir stores LF line ends
        m = re.match(rb"Received: from client\.example \(\[127\.0\.0\.1\]\)\n(\t[^\n]*\n)+", rest)
        self.assertIsNotNone(m, rest[:300])
        self.assertIn(b"id " + qid.encode(), m.group(0))
        self.assertEqual(rest[m.end():], body.replace(b"\r\n", b"\n"))

    def test_lmtp_tcp_mailbox_byte_for_byte(self):
        self.check_mailbox("lmtp:[127.0.0.1]:%d tls=none" % self.dc.port, "alice")

    def test_lmtp_unix_socket(self):
        self.check_mailbox("lmtp:unix:%s tls=none" % self.dc.sock, "bob")


class PostfixHopTest(unittest.TestCase):
    def test_through_a_real_postfix(self):
        if os.geteuid() != 0 or shutil.which("postfix") is None:
            self.skipTest("needs root and postfix for a private instance")
        hop = ScriptHop()
        pf = PrivatePostfix(hop.port)
        try:
            with delivery_server("smtp:[127.0.0.1]:%d tls=none" % pf.port) as srv:
                qid = send(srv, ["p1@example.test", "p2@example.test"])
                self.assertTrue(wait_for(lambda: sorted(hop.rcpts()) ==
                                         ["p1@example.test", "p2@example.test"], 30),
                                pf.maillog()[-2000:])
                self.assertTrue(wait_dlog(srv, "queue id %s: done" % qid))
                data = hop.messages[0]["data"]
                self.assertIn(b"by mx.test (mxring) with ESMTP id " + qid.encode(), data)
                self.assertIn(b"by postfix.test (Postfix)", data)
                self.assertRegex(dlog_text(srv), r"queue id %s: to=<p1@example.test> hop="
                                 r"smtp:\[127.0.0.1\]:%d reply=\"250 2.0.0 Ok: queued as "
                                 % (qid, pf.port))
        finally:
            pf.close()
            hop.close()


class FailureTest(unittest.TestCase):
    def test_connection_reused_across_messages(self):
        hop = ScriptHop()
        try:
            with delivery_server("smtp:[127.0.0.1]:%d tls=none" % hop.port) as srv:
                for i in range(6):
                    send(srv, ["r%d@example.test" % i])
                    wait_for(lambda: len(hop.rcpts()) == i + 1, 5)
                self.assertTrue(wait_for(lambda: len(hop.rcpts()) == 6))
                self.assertEqual(hop.connections, 1)  # one EHLO'd connection, RSET between
                self.assertEqual(len(hop.messages), 6)
        finally:
            hop.close()

    def test_tempfail_then_recover(self):
        hop = ScriptHop()
        hop.tempfail_first = 1
        try:
            with delivery_server("smtp:[127.0.0.1]:%d tls=none" % hop.port) as srv:
                qid = send(srv, ["t@example.test"])
                self.assertTrue(wait_for(lambda: hop.rcpts() == ["t@example.test"], 15))
                self.assertTrue(wait_dlog(srv, "queue id %s: done" % qid))
                log = dlog_text(srv)
                self.assertRegex(log, r"queue id %s: to=<t@example.test> hop=\S+ reply=\"451 4.3.0 "
                                 r"try again later\" outcome=deferred until \d\d/\w\w\w/\d{4}:" % qid)
                self.assertIn("queue id %s: to=<t@example.test>" % qid, log.split("deferred")[1])
                self.assertGreaterEqual(hop.transactions, 2)
        finally:
            hop.close()

    def test_5xx_one_recipient_dsn_delivered(self):
        hop = ScriptHop()
        hop.reject = {"bad@example.test"}
        try:
            with delivery_server("smtp:[127.0.0.1]:%d tls=none" % hop.port) as srv:
                qid = send(srv, ["ok1@example.test", "bad@example.test", "ok2@example.test"])
                # the good ones, then the DSN to the sender (same route)
                self.assertTrue(wait_for(lambda: "s@b.example" in hop.rcpts(), 15), hop.rcpts())
                self.assertTrue(wait_for(lambda: queue_empty(srv)))
                self.assertTrue(wait_dlog(srv, "queue id %s: done" % qid))
                self.assertEqual(sorted(hop.rcpts()),
                                 ["ok1@example.test", "ok2@example.test", "s@b.example"])
                dsn = [m for m in hop.messages if m["rcpts"] == ["s@b.example"]][0]
                self.assertEqual(dsn["mail"], "")
                d = dsn["data"].decode()
                self.assertIn("multipart/report; report-type=delivery-status", d)
                self.assertIn("Final-Recipient: rfc822; bad@example.test", d)
                self.assertIn("Action: failed", d)
                self.assertIn("Status: 5.1.1", d)
                self.assertIn("text/rfc822-headers", d)
                self.assertNotIn("ok1@example.test", d.split("message/delivery-status")[1]
                                 .split("text/rfc822-headers")[0])
                log = dlog_text(srv)
                self.assertIn("queue id %s: to=<bad@example.test>" % qid, log)
                self.assertRegex(log, r"to=<bad@example.test> hop=\S+ reply=\"550 5.1.1 [^\"]*\" "
                                 r"outcome=bounced")
                self.assertRegex(log, r"queue id %s: bounce queued as queue id [0-9A-F]{20} "
                                 r"to=<s@b.example>" % qid)
        finally:
            hop.close()

    def test_null_sender_never_bounced(self):
        hop = ScriptHop()
        hop.reject = {"bad@example.test"}
        try:
            with delivery_server("smtp:[127.0.0.1]:%d tls=none" % hop.port) as srv:
                qid = send(srv, ["bad@example.test"], sender="")
                self.assertTrue(wait_dlog(srv, "queue id %s: done: sent=0 bounced=1" % qid))
                self.assertTrue(wait_for(lambda: queue_empty(srv)))
                self.assertNotIn("bounce queued", dlog_text(srv))
                self.assertEqual(hop.messages, [])
        finally:
            hop.close()

    def test_hop_down_for_the_lifetime_bounces(self):
        live = ScriptHop()
        dead = harness.free_port()   # nothing listens there
        routes = "example.test smtp:[127.0.0.1]:%d tls=none\n" \
                 "b.example smtp:[127.0.0.1]:%d tls=none\n" % (dead, live.port)
        try:
            srv = delivery_server("smtp:[127.0.0.1]:%d tls=none" % live.port,
                                  conf={"queue_lifetime": "3s"},
                                  files={"relay.routes": routes})
            with srv:
                qid = send(srv, ["gone@example.test"])
                self.assertTrue(wait_for(lambda: "s@b.example" in live.rcpts(), 20),
                                dlog_text(srv))
                self.assertTrue(wait_for(lambda: queue_empty(srv)))
                self.assertTrue(wait_dlog(srv, "queue id %s: done" % qid))
                log = dlog_text(srv)
                self.assertRegex(log, r"queue id %s: to=<gone@example.test> hop=\S+ reply=\"[^\"]*"
                                 r"Connection refused[^\"]*\" outcome=deferred" % qid)
                self.assertRegex(log, r"queue id %s: to=<gone@example.test> .* outcome=bounced "
                                 r"\(queue_lifetime exceeded\)" % qid)
                d = live.messages[0]["data"].decode()
                self.assertIn("Final-Recipient: rfc822; gone@example.test", d)
                self.assertEqual(live.messages[0]["mail"], "")
        finally:
            live.close()

    def test_failover_to_second_hop(self):
        hop = ScriptHop()
        dead = harness.free_port()
        try:
            with delivery_server("smtp:[127.0.0.1]:%d,smtp:[127.0.0.1]:%d tls=none"
                                 % (dead, hop.port)) as srv:
                qid = send(srv, ["f@example.test"])
                self.assertTrue(wait_for(lambda: hop.rcpts() == ["f@example.test"], 10))
                self.assertTrue(wait_dlog(srv, "queue id %s: done" % qid))
                log = dlog_text(srv)
                self.assertIn("queue id %s: hop smtp:[127.0.0.1]:%d failed" % (qid, dead), log)
                self.assertRegex(log, r"queue id %s: to=<f@example.test> hop=smtp:\[127.0.0.1\]:%d "
                                 r"reply=\"250 [^\"]*\" outcome=sent" % (qid, hop.port))
        finally:
            hop.close()


class BackPressureTest(unittest.TestCase):
    def test_queue_max_messages_answers_452(self):
        dead = harness.free_port()
        with delivery_server("smtp:[127.0.0.1]:%d tls=none" % dead,
                             conf={"queue_max_messages": "2", "relay_retry_min": "1h",
                                   "relay_retry_max": "1h"}) as srv:
            send(srv, ["q1@example.test"])
            send(srv, ["q2@example.test"])
            self.assertTrue(wait_dlog(srv, "queue full (2 messages)"))
            with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
                c.ehlo("client.example")
                code, text = c.mail("s@b.example")
            self.assertEqual(code, 452)
            self.assertIn(b"4.3.1", text)
            self.assertTrue(harness.wait_log(srv, "MAIL refused: queue full"))


if __name__ == "__main__":
    unittest.main()
