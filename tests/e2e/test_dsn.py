"""test_dsn.py - RFC 3461 DSN end to end, against real next hops on
loopback: EHLO offers DSN and bad parameters get 501 5.5.4; NOTIFY=NEVER
means no bounce; NOTIFY=FAILURE bounces carry Original-Recipient (ORCPT)
and Original-Envelope-Id (ENVID); RET=HDRS returns headers only, RET=FULL
the message; a hop offering DSN (smtp-sink, a real Postfix smtpd) receives
RET/ENVID/NOTIFY/ORCPT, one that does not gets none and NOTIFY=SUCCESS
yields a "relayed" DSN; NOTIFY=DELAY yields one delay DSN after
delay_warning_time while the hop tempfails; the parameters survive kill -9
after the 250 and the journal's recovery."""
import os
import re
import shutil
import smtplib
import subprocess
import time
import unittest

import harness
from dlv_peers import (PrivatePostfix, ScriptHop, SmtpSink, delivery_server, dlog_text,
                       queue_empty, wait_dlog, wait_for)

MSG = "Subject: dsn test\r\nFrom: <s@b.example>\r\n\r\nTHE BODY LINE\r\n"


def send(srv, rcpts, mail_opts=(), sender="s@b.example", body=MSG):
    """One message; rcpts is a list of (address, [RCPT options]). Returns the
    queue id from the 250."""
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
        c.ehlo("client.example")
        code, text = c.mail(sender, list(mail_opts))
        assert code == 250, (code, text)
        for addr, opts in rcpts:
            code, text = c.rcpt(addr, list(opts))
            assert code == 250, (addr, code, text)
        code, text = c.data(body.encode())
    assert code == 250, (code, text)
    return re.search(r"id=([0-9A-F]{20})", text.decode()).group(1)


def to_sender(hop):
    """Messages the hop got for the original sender (the DSNs)."""
    return [m for m in hop.messages if m["rcpts"] == ["s@b.example"]]


class DsnCommandsTest(unittest.TestCase):
    def test_ehlo_offers_dsn_and_bad_parameters_get_501(self):
        with harness.Server() as srv:
            with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
                code, _ = c.ehlo("client.example")
                self.assertEqual(code, 250)
                self.assertTrue(c.has_extn("dsn"))
                code, text = c.mail("s@b.example", ["RET=BODY"])
                self.assertEqual((code, text), (501, b"5.5.4 Bad RET parameter syntax (RFC 3461)"))
                code, text = c.mail("s@b.example", ["ENVID=" + "x" * 101])
                self.assertEqual((code, text), (501, b"5.5.4 Bad ENVID parameter syntax (RFC 3461)"))
                code, text = c.mail("s@b.example", ["RET=FULL", "RET=HDRS"])
                self.assertEqual((code, text), (501, b"5.5.4 Duplicate RET parameter"))
                self.assertEqual(c.mail("s@b.example", ["RET=FULL", "ENVID=E+2B1"])[0], 250)
                code, text = c.rcpt("u@example.test", ["NOTIFY=NEVER,SUCCESS"])
                self.assertEqual((code, text),
                                 (501, b"5.5.4 Bad NOTIFY parameter syntax (RFC 3461)"))
                code, text = c.rcpt("u@example.test", ["ORCPT=rfc822;u+4"])
                self.assertEqual((code, text), (501, b"5.5.4 Bad ORCPT parameter syntax (RFC 3461)"))
                code, text = c.rcpt("u@example.test", ["NOTIFY=DELAY", "NOTIFY=DELAY"])
                self.assertEqual((code, text), (501, b"5.5.4 Duplicate NOTIFY parameter"))
                self.assertEqual(c.rcpt("u@example.test", ["NOTIFY=SUCCESS,DELAY",
                                                           "ORCPT=rfc822;U+40example.test"])[0],
                                 250)
                self.assertEqual(c.rcpt("v@example.test")[0], 250)
                code, text = c.data(MSG.encode())
                self.assertEqual(code, 250)
            qid = re.search(r"id=([0-9A-F]{20})", text.decode()).group(1)
            env = srv.read_queue(qid)
            self.assertEqual(env["magic"], "MXRING-QUEUE 2")
            self.assertEqual(env["ret"], "FULL")
            self.assertEqual(env["envid"], "E+2B1")
            self.assertEqual(env["dsn"], {"u@example.test": {"notify": "SUCCESS,DELAY",
                                                            "orcpt": "rfc822;U+40example.test"}})
            self.assertEqual(env["rcpt"], ["u@example.test", "v@example.test"])
            # mxringctl show names them
            ctl = os.path.join(os.path.dirname(harness.BINARY), "mxringctl")
            show = subprocess.run([ctl, "-c", srv.conf_path, "show", qid], capture_output=True,
                                  text=True, timeout=10).stdout
            self.assertIn("sender <s@b.example> ret=FULL envid=E+2B1\n", show)
            self.assertRegex(show, r"rcpt <u@example.test> pending .* notify=SUCCESS,DELAY "
                             r"orcpt=rfc822;U\+40example.test\n")
            self.assertRegex(show, r"rcpt <v@example.test> pending .*last=\"\"\n")


class DsnBounceTest(unittest.TestCase):
    def setUp(self):
        self.hop = ScriptHop()
        self.addCleanup(self.hop.close)
        self.hop.reject = {"bad@example.test"}
        self.srv = delivery_server("smtp:[127.0.0.1]:%d tls=none" % self.hop.port)
        self.addCleanup(self.srv.close)
        self.srv.start()

    def test_notify_never_rejected_gives_no_bounce(self):
        qid = send(self.srv, [("bad@example.test", ["NOTIFY=NEVER"]), ("ok@example.test", [])])
        self.assertTrue(wait_dlog(self.srv, "queue id %s: done: sent=1 bounced=1" % qid),
                        dlog_text(self.srv))
        self.assertTrue(wait_for(lambda: queue_empty(self.srv)))
        time.sleep(0.5)   # a bounce would be in new/ before the message is removed
        self.assertTrue(queue_empty(self.srv))
        self.assertNotIn("bounce queued", dlog_text(self.srv))
        self.assertEqual(to_sender(self.hop), [])
        self.assertEqual(self.hop.rcpts(), ["ok@example.test"])

    def test_notify_success_only_rejected_gives_no_bounce(self):
        qid = send(self.srv, [("bad@example.test", ["NOTIFY=SUCCESS"])])
        self.assertTrue(wait_dlog(self.srv, "queue id %s: done: sent=0 bounced=1" % qid))
        time.sleep(0.5)
        self.assertNotIn("bounce queued", dlog_text(self.srv))
        self.assertEqual(to_sender(self.hop), [])

    def test_notify_failure_bounce_with_orcpt_envid_ret_hdrs(self):
        qid = send(self.srv, [("bad@example.test",
                               ["NOTIFY=FAILURE", "ORCPT=rfc822;Bad+2Balias@example.test"])],
                   mail_opts=["RET=HDRS", "ENVID=QQ+2B42"])
        self.assertTrue(wait_for(lambda: to_sender(self.hop), 15), dlog_text(self.srv))
        self.assertTrue(wait_dlog(self.srv, "queue id %s: bounce queued as" % qid))
        d = to_sender(self.hop)[0]["data"].decode()
        self.assertEqual(to_sender(self.hop)[0]["mail"], "")
        self.assertIn("\r\nOriginal-Envelope-Id: QQ+42\r\nReporting-MTA: dns; mx.test\r\n", d)
        self.assertIn("\r\nOriginal-Recipient: rfc822; Bad+alias@example.test\r\n"
                      "Final-Recipient: rfc822; bad@example.test\r\nAction: failed\r\n"
                      "Status: 5.1.1\r\n", d)
        self.assertIn("Content-Type: text/rfc822-headers", d)
        self.assertIn("Subject: dsn test", d)
        self.assertNotIn("THE BODY LINE", d)   # RET=HDRS: no body

    def test_ret_full_bounce_returns_the_message(self):
        qid = send(self.srv, [("bad@example.test", [])], mail_opts=["RET=FULL"])
        self.assertTrue(wait_for(lambda: to_sender(self.hop), 15), dlog_text(self.srv))
        d = to_sender(self.hop)[0]["data"].decode()
        self.assertIn("Content-Type: message/rfc822", d)
        self.assertIn("THE BODY LINE", d)
        self.assertIn("Final-Recipient: rfc822; bad@example.test", d)
        self.assertNotIn("Original-Envelope-Id", d)
        self.assertNotIn("Original-Recipient", d)
        self.assertIn(qid, d)

    def test_success_via_hop_without_dsn_gives_relayed_dsn(self):
        qid = send(self.srv, [("ok@example.test", ["NOTIFY=SUCCESS,FAILURE",
                                                   "ORCPT=rfc822;ok@example.test"]),
                              ("quiet@example.test", [])],
                   mail_opts=["ENVID=R1"])
        self.assertTrue(wait_for(lambda: to_sender(self.hop), 15), dlog_text(self.srv))
        self.assertTrue(wait_dlog(self.srv, "queue id %s: relayed DSN queued as" % qid))
        # the hop does not offer DSN: nothing of it on the wire
        first = [m for m in self.hop.messages if "ok@example.test" in m["rcpts"]][0]
        self.assertEqual(first["mail_cmd"], "MAIL FROM:<s@b.example> SIZE=%d"
                         % int(re.search(r"SIZE=(\d+)", first["mail_cmd"]).group(1)))
        self.assertEqual(first["rcpt_cmds"], ["RCPT TO:<ok@example.test>",
                                              "RCPT TO:<quiet@example.test>"])
        d = to_sender(self.hop)[0]["data"].decode()
        self.assertIn("Subject: Successful Mail Delivery Report", d)
        self.assertIn("Original-Envelope-Id: R1", d)
        self.assertIn("Original-Recipient: rfc822; ok@example.test\r\n"
                      "Final-Recipient: rfc822; ok@example.test\r\nAction: relayed\r\n", d)
        self.assertNotIn("quiet@example.test", d.split("message/delivery-status")[1]
                         .split("text/rfc822-headers")[0])
        time.sleep(0.5)
        self.assertEqual(len(to_sender(self.hop)), 1)


class DsnPassThroughTest(unittest.TestCase):
    def test_smtp_sink_offering_dsn_receives_the_parameters(self):
        sink = SmtpSink()
        self.addCleanup(sink.close)
        with delivery_server("smtp:[127.0.0.1]:%d tls=none" % sink.port) as srv:
            qid = send(srv, [("a@example.test", ["NOTIFY=SUCCESS,DELAY",
                                                 "ORCPT=rfc822;A+2Bx@example.test"]),
                             ("b@example.test", ["NOTIFY=NEVER"]),
                             ("c@example.test", [])],
                       mail_opts=["RET=HDRS", "ENVID=ID+2B7"])
            self.assertTrue(wait_for(lambda: sink.rcpt_count() == 3), sink.messages())
            self.assertTrue(wait_dlog(srv, "queue id %s: done: sent=3" % qid))
            raw = ""
            for f in os.listdir(sink.dir):
                if not f.startswith(".."):
                    with open(os.path.join(sink.dir, f), "rb") as fh:
                        raw += fh.read().decode(errors="replace")
            self.assertRegex(raw, r"X-Mail-Args: <s@b.example>( SIZE=\d+)? RET=HDRS ENVID=ID\+2B7\r?\n")
            self.assertRegex(raw, r"X-Rcpt-Args: <a@example.test> NOTIFY=SUCCESS,DELAY "
                             r"ORCPT=rfc822;A\+2Bx@example.test\r?\n")
            self.assertRegex(raw, r"X-Rcpt-Args: <b@example.test> NOTIFY=NEVER\r?\n")
            self.assertRegex(raw, r"X-Rcpt-Args: <c@example.test>\r?\n")
            time.sleep(0.5)  # the hop offers DSN: no relayed DSN from us
            self.assertNotIn("relayed DSN", dlog_text(srv))
            self.assertEqual(sink.rcpt_count(), 3)

    def test_real_postfix_smtpd_receives_and_passes_the_parameters(self):
        if os.geteuid() != 0 or shutil.which("postfix") is None:
            self.skipTest("needs root and postfix for a private instance")
        hop = ScriptHop()
        hop.dsn = True
        self.addCleanup(hop.close)
        pf = PrivatePostfix(hop.port)
        self.addCleanup(pf.close)
        with delivery_server("smtp:[127.0.0.1]:%d tls=none" % pf.port) as srv:
            qid = send(srv, [("p1@example.test", ["NOTIFY=SUCCESS", "ORCPT=rfc822;P1+40x.test"])],
                       mail_opts=["RET=HDRS", "ENVID=PF+2B1"])
            self.assertTrue(wait_for(lambda: hop.rcpts() == ["p1@example.test"], 30),
                            pf.maillog()[-2000:])
            self.assertTrue(wait_dlog(srv, "queue id %s: done: sent=1" % qid))
        m = hop.messages[0]
        # Postfix smtpd took them from mxringd (it offers DSN), decoded the
        # xtext, and its smtp client passed them on to the next hop (which
        # offers DSN too), re-encoded as it likes ('@' needs no encoding)
        self.assertIn(" RET=HDRS", m["mail_cmd"])
        self.assertIn(" ENVID=PF+2B1", m["mail_cmd"])
        self.assertIn(" NOTIFY=SUCCESS", m["rcpt_cmds"][0])
        self.assertIn(" ORCPT=rfc822;P1@x.test", m["rcpt_cmds"][0])


class DsnDelayTest(unittest.TestCase):
    def test_delay_dsn_once_while_the_hop_tempfails(self):
        slow = ScriptHop()
        slow.tempfail_first = 1000
        self.addCleanup(slow.close)
        home = ScriptHop()
        self.addCleanup(home.close)
        routes = "example.test smtp:[127.0.0.1]:%d tls=none\n" \
                 "b.example smtp:[127.0.0.1]:%d tls=none\n" % (slow.port, home.port)
        # retries far apart: the warning must come from the schedule at
        # arrival + delay_warning_time, not wait for the next attempt
        srv = delivery_server("smtp:[127.0.0.1]:%d tls=none" % home.port,
                              conf={"delay_warning_time": "2s", "relay_retry_min": "1h",
                                    "relay_retry_max": "1h"},
                              files={"relay.routes": routes})
        with srv:
            t0 = time.time()
            qid = send(srv, [("late@example.test", ["NOTIFY=DELAY,FAILURE"]),
                             ("plain@example.test", [])], mail_opts=["ENVID=D1"])
            self.assertTrue(wait_for(lambda: home.messages, 20), dlog_text(srv))
            self.assertLess(time.time() - t0, 10)
            self.assertEqual(slow.transactions, 1)        # one attempt so far
            self.assertTrue(wait_dlog(srv, "queue id %s: delay DSN queued as" % qid))
            d = home.messages[0]["data"].decode()
            self.assertEqual(home.messages[0]["mail"], "")
            self.assertIn("Subject: Delayed Mail (still being retried)", d)
            self.assertIn("Original-Envelope-Id: D1", d)
            self.assertIn("Final-Recipient: rfc822; late@example.test\r\nAction: delayed\r\n"
                          "Status: 4.3.0\r\n", d)
            # no NOTIFY: no delay warning (RFC 3461 default: failures only)
            self.assertNotIn("plain@example.test", d.split("message/delivery-status")[1]
                             .split("text/rfc822-headers")[0])
            # more attempts (mxringctl retry): still one warning
            ctl = os.path.join(os.path.dirname(harness.BINARY), "mxringctl")
            for _ in range(2):
                n = dlog_text(srv).count("to=<late@example.test>")
                subprocess.run([ctl, "-c", srv.conf_path, "retry", qid], capture_output=True,
                               timeout=10, check=True)
                self.assertTrue(wait_for(lambda: dlog_text(srv).count("to=<late@example.test>")
                                         > n, 10), dlog_text(srv))
            time.sleep(0.5)
            self.assertEqual(len(home.messages), 1)
            self.assertEqual(dlog_text(srv).count("delay DSN queued"), 1)
            self.assertFalse(queue_empty(srv))            # still being retried
            with open(os.path.join(srv.workdir, "queue", "state", qid)) as f:
                self.assertIn("\ndelay_warned yes\n", f.read())


class DsnRecoveryTest(unittest.TestCase):
    def test_dsn_parameters_survive_kill9_and_recovery(self):
        first = harness.Server()
        self.addCleanup(first.close)     # owns the workdir
        wd, srv = first.workdir, first.start()
        for attempt in range(8):
            qid = send(srv, [("r@example.test", ["NOTIFY=SUCCESS,FAILURE",
                                                 "ORCPT=rfc822;R+40example.test"])],
                       mail_opts=["RET=HDRS", "ENVID=K9+2B%d" % attempt])
            srv.kill9()                       # right after the 250
            path = os.path.join(wd, "queue", "new", qid)
            if os.path.exists(path):
                os.unlink(path)              # as if the materializer had not run yet
            srv = harness.Server({"workdir": wd})   # a fresh port: the old may linger
            self.addCleanup(srv.close)
            srv.start()
            if os.path.exists(path):
                break                         # recovery wrote it from the journal
        else:
            self.skipTest("a checkpoint covered the message every time: recovery "
                          "had nothing to replay")
        self.assertRegex(srv.stderr(), r"journal: .* committed messages after the checkpoints "
                         r"\([1-9]\d* written to new/")
        env = harness.parse_queue_file(path)
        self.assertEqual(env["magic"], "MXRING-QUEUE 2")
        self.assertEqual(env["ret"], "HDRS")
        self.assertEqual(env["envid"], "K9+2B%d" % attempt)
        self.assertEqual(env["dsn"], {"r@example.test": {"notify": "SUCCESS,FAILURE",
                                                        "orcpt": "rfc822;R+40example.test"}})
        self.assertIn(b"THE BODY LINE", env["message"])


if __name__ == "__main__":
    unittest.main()
