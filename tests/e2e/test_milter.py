"""test_milter.py - end-to-end tests of the milter client (issue 17)
against the real mxringd and a small Python milter (milter_peer.py) on
loopback: stages and macros it is sent, headers added above Received:,
reject with the milter's own reply (and its receivelog line), tempfail,
discard, delrcpt, quarantine, a milter that is down (each
milter_default_action), a milter that hangs (the timeout applies and the
session goes on), progress extending the timeout, and two milters in
order; verdicts answered at the command they answer (RCPT, MAIL, DATA,
the first BDAT, connect), SMFIP_NODATA and SMFIP_NR_DATA honoured, ABORT
between transactions, one conversation per session."""
import json
import os
import smtplib
import subprocess
import time
import unittest

from harness import BINARY, Client, Server, log_text, parse_queue_file
from milter_peer import MilterPeer

MSG = ("From: a@example.org\r\nTo: u@example.test\r\nSubject: hello\r\n"
       "X-Folded: one\r\n two\r\n\r\nBody line\r\n")


def hdr(name, value):
    return name.encode() + b"\0" + value.encode() + b"\0"


class MilterCase(unittest.TestCase):

    def peer(self, **kw):
        p = MilterPeer(**kw)
        self.addCleanup(p.close)
        return p

    def server(self, milters, **conf):
        base = {"milters": milters, "milter_command_timeout_ms": "1000",
                "milter_content_timeout_ms": "1000", "milter_connect_timeout_ms": "1000"}
        base.update(conf)
        srv = Server(conf=base, receivelog=True).start()
        self.addCleanup(srv.close)
        return srv

    def send(self, srv, rcpts=("u@example.test",), msg=MSG):
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as c:
            c.ehlo("client.example")
            c.mail("a@example.org")
            for r in rcpts:
                c.rcpt(r)
            code, text = c.data(msg)
            c.noop()  # the session goes on after the verdict
            return code, text.decode()

    def wait_log(self, srv, needles, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = log_text(srv)
            if all(n in text for n in needles):
                return text
            time.sleep(0.05)
        text = log_text(srv)
        self.assertEqual([n for n in needles if n not in text], [], text)

    def wait_seen(self, p, cmd, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline and cmd not in [c for c, _ in p.seen]:
            time.sleep(0.02)
        return "".join(c for c, _ in p.seen if c != "D")

    def queued(self, srv):
        files = srv.queue_files()
        self.assertEqual(len(files), 1, files)
        return srv.read_queue(files[0])

    def test_stages_macros_and_added_headers(self):
        p = self.peer(script={"E": [("h", hdr("X-Milter", "checked")),
                                    ("i", b"\0\0\0\0" + hdr("Authentication-Results",
                                                            "mx.test;\n\tdkim=none")),
                                    ("a", b"")]})
        srv = self.server("py=" + p.spec())
        code, _ = self.send(srv)
        self.assertEqual(code, 250)
        self.assertEqual(self.wait_seen(p, "Q"), "OCHMRTLLLLNBEQ")
        self.assertEqual(p.macros["{mail_addr}"], "a@example.org")
        self.assertEqual(p.macros["{rcpt_addr}"], "u@example.test")
        self.assertEqual(p.macros["{daemon_name}"], "mxringd")
        self.assertEqual(p.macros["{client_addr}"], "127.0.0.1")
        self.assertEqual(p.macros["j"], "mx.test")
        self.assertEqual(len(p.macros["i"]), 20)
        self.assertIn(("Subject", "hello"), p.headers)
        self.assertIn(("X-Folded", "one\r\n two"), p.headers)
        self.assertEqual(p.body, b"Body line\r\n")
        msg = self.queued(srv)["message"]
        self.assertTrue(msg.startswith(b"Authentication-Results: mx.test;\r\n\tdkim=none\r\n"
                                       b"X-Milter: checked\r\nReceived: from client.example"), msg)
        self.wait_log(srv, ["milter py: insheader Authentication-Results",
                            "milter py: accept at end of message"])

    def test_reject_with_the_milters_reply(self):
        p = self.peer(script={"E": [("y", b"550 5.7.1 Spam message rejected\0")]})
        srv = self.server("rspamd=" + p.spec())
        code, text = self.send(srv)
        self.assertEqual((code, text), (550, "5.7.1 Spam message rejected"))
        self.assertEqual(srv.queue_files(), [])
        self.wait_log(srv, ['milter rspamd: reject 550 5.7.1 "Spam message rejected" at end '
                            'of message'])

    def test_tempfail_and_discard(self):
        p = self.peer(script={"E": [("t", b"")]})
        srv = self.server(p.spec())
        code, text = self.send(srv)
        self.assertEqual(code, 451, text)
        p2 = self.peer(script={"E": [("d", b"")]})
        srv2 = self.server(p2.spec())
        self.assertEqual(self.send(srv2)[0], 250)
        self.assertEqual(srv2.queue_files(), [])
        self.wait_log(srv2, ["discard at end of message", "Message discarded"])

    def test_delrcpt_and_quarantine(self):
        p = self.peer(script={"E": [("-", b"<v@example.test>\0"), ("q", b"suspicious\0"),
                                    ("c", b"")]})
        srv = self.server(p.spec())
        self.assertEqual(self.send(srv, rcpts=("u@example.test", "v@example.test"))[0], 250)
        files = srv.queue_files(sub="quarantine")
        self.assertEqual(len(files), 1)
        env = parse_queue_file(srv.wait_queue_file(files[0], sub="quarantine"))
        self.assertEqual(env["rcpt"], ["u@example.test"])
        self.wait_log(srv, ["delrcpt <v@example.test>", 'quarantine "suspicious"'])

    def test_milter_down_each_default_action(self):
        """Down at the session's first EHLO: the default action answers it;
        tempfail or reject deny the rest of the session (503 5.7.0)."""
        down = "inet:127.0.0.1:1"
        for action, want in (("tempfail", 451), ("reject", 550)):
            srv = self.server(down, milter_default_action=action)
            with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as c:
                self.assertEqual(c.ehlo("client.example")[0], want, action)
                self.assertEqual(c.mail("a@example.org")[0], 503, action)
            self.wait_log(srv, ["failed at negotiation: connect to inet:127.0.0.1:1",
                                "%s (milter_default_action)" % action])
        srv = self.server(down, milter_default_action="accept")
        self.assertEqual(self.send(srv)[0], 250)
        self.wait_log(srv, ["failed at negotiation: connect to inet:127.0.0.1:1",
                            "accept (milter_default_action)"])

    def test_hanging_milter_times_out_and_session_goes_on(self):
        p = self.peer(hang="E")
        srv = self.server(p.spec(), milter_default_action="accept",
                          milter_content_timeout_ms="500")
        t0 = time.time()
        self.assertEqual(self.send(srv)[0], 250)
        self.assertLess(time.time() - t0, 5)
        self.wait_log(srv, ["failed at end of message: timeout after 500 ms: accept"])

    def test_progress_extends_the_timeout(self):
        p = self.peer(progress_at="E", script={"E": [("a", b"")]})
        srv = self.server(p.spec(), milter_content_timeout_ms="700")
        self.assertEqual(self.send(srv)[0], 250)  # 1.2 s in all, no gap over 0.7 s
        self.wait_log(srv, ["milter ", "accept at end of message"])

    def test_two_milters_in_order_and_skipped_stages(self):
        a = self.peer(script={"E": [("i", b"\0\0\0\0" + hdr("X-First", "1")), ("c", b"")]},
                      proto=0x10 | 0x20 | 0x2)  # NOBODY, NOHDRS, NOHELO
        b = self.peer(script={"E": [("i", b"\0\0\0\0" + hdr("X-Second", "2")), ("c", b"")]})
        srv = self.server("a=%s, b=%s" % (a.spec(), b.spec()))
        self.assertEqual(self.send(srv)[0], 250)
        self.assertEqual(self.wait_seen(a, "K"), "OCMRTNEK")
        msg = self.queued(srv)["message"]
        self.assertTrue(msg.startswith(b"X-Second: 2\r\nX-First: 1\r\nReceived:"), msg)


    def test_rcpt_reject_one_of_two_recipients(self):
        """A milter's reject at RCPT answers that RCPT with its reply; the
        other recipient goes on and is queued alone."""
        def rcpt(data):
            if b"bad@example.test" in data:
                return [("y", b"550 5.7.1 Recipient blocked by policy\0")]
            return [("c", b"")]
        p = self.peer(script={"R": rcpt})
        srv = self.server("rspamd=" + p.spec())
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as c:
            c.ehlo("client.example")
            self.assertEqual(c.mail("a@example.org")[0], 250)
            self.assertEqual(c.rcpt("bad@example.test"),
                             (550, b"5.7.1 Recipient blocked by policy"))
            self.assertEqual(c.rcpt("u@example.test")[0], 250)
            self.assertEqual(c.data(MSG)[0], 250)
        env = self.queued(srv)
        self.assertEqual(env["rcpt"], ["u@example.test"])
        self.wait_log(srv, ['milter rspamd: reject 550 5.7.1 "Recipient blocked by policy" at RCPT',
                            "RCPT refused: <bad@example.test> milter rspamd: reject"])
        self.wait_log(srv, ["closesocket()"])  # the session is over
        mxlog = os.environ.get("MXLOG", os.path.join(os.path.dirname(BINARY), "mxlog"))
        out = subprocess.run([mxlog, "--dir", srv.workdir, "why", "bad@example.test", "--json"],
                             capture_output=True, text=True, timeout=60).stdout
        o, = [json.loads(line) for line in out.splitlines() if line.strip()]
        self.assertEqual(o["words"], 'refused at RCPT: <bad@example.test> milter rspamd: reject '
                         '550 5.7.1 "Recipient blocked by policy" at RCPT TO')

    def test_mail_tempfail_then_abort_between_transactions(self):
        """tempfail at MAIL answers the MAIL (451); after RSET the next
        transaction starts with SMFIC_ABORT on the same conversation."""
        mails = []

        def mail(data):
            mails.append(data)
            return [("t", b"")] if len(mails) == 1 else [("c", b"")]
        p = self.peer(script={"M": mail})
        srv = self.server(p.spec())
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as c:
            c.ehlo("client.example")
            self.assertEqual(c.mail("a@example.org")[0], 451)
            self.assertEqual(c.mail("a@example.org")[0], 250)
            self.assertEqual(c.rcpt("u@example.test")[0], 250)
            self.assertEqual(c.rset()[0], 250)
            self.assertEqual(c.mail("b@example.org")[0], 250)
            self.assertEqual(c.rcpt("u@example.test")[0], 250)
            self.assertEqual(c.data(MSG)[0], 250)
        self.assertEqual(self.wait_seen(p, "K"), "OCHMMRAMRTLLLLNBEK")
        self.assertEqual(p.connections, 1)
        self.assertEqual(len(self.queued(srv)["rcpt"]), 1)

    def test_connect_reject_denies_the_session(self):
        """A reject at connect: the first EHLO gets it, every later command
        but QUIT 503 5.7.0 (Postfix's access denied); nothing is queued."""
        p = self.peer(script={"C": [("y", b"554 5.7.1 Go away\0")]})
        srv = self.server("conn=" + p.spec())
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as c:
            self.assertEqual(c.ehlo("client.example"), (554, b"5.7.1 Go away"))
            self.assertEqual(c.mail("a@example.org"),
                             (503, b"5.7.0 Error: access denied for [127.0.0.1]"))
            self.assertEqual(c.rcpt("u@example.test")[0], 503)
            self.assertEqual(c.noop()[0], 503)
        self.assertEqual(srv.queue_files(), [])
        self.assertEqual(self.wait_seen(p, "Q"), "OCQ")
        self.wait_log(srv, ['milter conn: reject 554 5.7.1 "Go away" at connect'])

    def test_hung_milter_at_rcpt_times_out_default_action(self):
        """A milter that stops answering at RCPT: after
        milter_command_timeout_ms the default action (accept) answers the
        RCPT, the milter is left out, the message is queued."""
        p = self.peer(hang="R")
        srv = self.server(p.spec(), milter_default_action="accept",
                          milter_command_timeout_ms="400")
        t0 = time.time()
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as c:
            c.ehlo("client.example")
            c.mail("a@example.org")
            self.assertEqual(c.rcpt("u@example.test")[0], 250)
            self.assertGreater(time.time() - t0, 0.35)
            self.assertEqual(c.rcpt("v@example.test")[0], 250)
            self.assertEqual(c.data(MSG)[0], 250)
        self.assertLess(time.time() - t0, 5)
        self.assertEqual(len(self.queued(srv)["rcpt"]), 2)
        self.wait_log(srv, ["failed at RCPT TO: timeout after 400 ms: accept"])

    def test_hung_milter_at_rcpt_tempfail_session_goes_on(self):
        p = self.peer(hang="R")
        srv = self.server(p.spec(), milter_command_timeout_ms="300")
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as c:
            c.ehlo("client.example")
            c.mail("a@example.org")
            self.assertEqual(c.rcpt("u@example.test")[0], 451)
            self.assertEqual(c.rcpt("v@example.test")[0], 451)  # not asked again
            self.assertEqual(c.rset()[0], 250)
            self.assertEqual(c.noop()[0], 250)
        self.wait_log(srv, ["failed at RCPT TO: timeout after 300 ms: tempfail",
                            "unavailable at RCPT TO (failed earlier): tempfail"])

    def data_session(self, srv):
        """A raw session up to its accepted recipient; the client."""
        c = Client(srv)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO client.example")[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<u@example.test>")[0], 250)
        return c

    def test_reject_at_data_answers_data(self):
        """Description: a milter rejecting at its DATA stage answers the DATA
        command with its own reply, no 354; the message never reaches it,
        the session goes on."""
        p = self.peer(script={"T": [("y", b"550 5.7.1 No data today\0")]})
        srv = self.server("py=" + p.spec())
        c = self.data_session(srv)
        self.assertEqual(c.cmd("DATA"), (550, ["550 5.7.1 No data today"]))
        self.assertEqual(c.cmd("NOOP"), (250, ["250 2.0.0 OK"]))  # no late 354
        self.assertEqual(c.cmd("RCPT TO:<u@example.test>")[0], 503)  # the transaction is over
        c.cmd("QUIT")
        self.assertEqual(self.wait_seen(p, "Q"), "OCHMRTQ")
        self.assertEqual(srv.queue_files(), [])
        self.wait_log(srv, ['milter py: reject 550 5.7.1 "No data today" at DATA',
                            'result=refused'])

    def test_tempfail_at_first_bdat_skips_its_chunk(self):
        """Description: a tempfail at the first BDAT: its chunk (a QUIT inside
        it) is skipped by count, then answered with the milter's reply; the
        pipelined next chunk is outside a transaction (503); the session
        stays open."""
        p = self.peer(script={"T": [("y", b"451 4.7.1 Greylisted\0")]})
        srv = self.server("py=" + p.spec())
        c = self.data_session(srv)
        c.send(b"BDAT 6\r\nQUIT\r\nBDAT 2 LAST\r\nab")
        self.assertEqual(c.reply(), (451, ["451 4.7.1 Greylisted"]))
        self.assertEqual(c.reply(), (503, ["503 5.5.1 Bad sequence of commands: need MAIL "
                                           "before BDAT"]))
        self.assertEqual(c.cmd("NOOP")[0], 250)
        self.assertEqual(srv.queue_files(), [])

    def test_first_bdat_waits_then_chunks_are_the_message(self):
        """Description: the first BDAT waits for the DATA stage with its chunk
        held; then the chunks are the message (sent to the milter once, no
        second DATA at end of message); i is sent with end of headers and
        end of message, not at DATA (no queue id yet)."""
        p = self.peer()
        srv = self.server("py=" + p.spec())
        c = self.data_session(srv)
        body = MSG.encode()
        c.send(b"BDAT %d\r\n%sBDAT 0 LAST\r\n" % (len(body), body))
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        self.assertEqual(self.wait_seen(p, "K"), "OCHMRTLLLLNBEK")  # K: to the pool
        self.assertEqual(p.body, b"Body line\r\n")
        self.assertNotIn("i", p.macros_at.get("T", {}))
        self.assertEqual(len(p.macros_at["N"]["i"]), 20)
        self.assertEqual(p.macros_at["E"]["i"], p.macros_at["N"]["i"])
        self.assertIn(b"Body line", self.queued(srv)["message"])

    def test_hung_milter_at_data_tempfail_answers_data(self):
        """Description: a milter that stops answering at DATA: after
        milter_command_timeout_ms the default action (tempfail) answers the
        DATA command (451, no 354); the session goes on."""
        p = self.peer(hang="T")
        srv = self.server(p.spec(), milter_command_timeout_ms="300")
        c = self.data_session(srv)
        t0 = time.time()
        code, lines = c.cmd("DATA")
        self.assertEqual(code, 451, lines)
        self.assertGreater(time.time() - t0, 0.25)
        self.assertEqual(c.cmd("NOOP")[0], 250)
        self.wait_log(srv, ["failed at DATA: timeout after 300 ms: tempfail"])

    def test_nodata_skips_the_data_stage(self):
        """Description: a milter that negotiated SMFIP_NODATA is not asked at
        DATA (its script would reject there); the message is queued."""
        p = self.peer(script={"T": [("r", b"")]}, proto=0x200)
        srv = self.server(p.spec())
        self.assertEqual(self.send(srv)[0], 250)
        self.assertNotIn("T", self.wait_seen(p, "Q"))
        self.assertEqual(len(srv.queue_files()), 1)

    def test_nr_data_no_reply_awaited(self):
        """Description: a milter that negotiated SMFIP_NR_DATA is sent DATA but
        sends no reply to it: DATA goes on at once (waiting would time out
        into milter_default_action = tempfail)."""
        p = self.peer(script={"T": []}, proto=0x10000)
        srv = self.server(p.spec(), milter_command_timeout_ms="3000")
        t0 = time.time()
        self.assertEqual(self.send(srv)[0], 250)
        self.assertLess(time.time() - t0, 2.5)
        self.assertIn("T", self.wait_seen(p, "Q"))

    def test_discard_at_rcpt_discards_the_message(self):
        p = self.peer(script={"R": [("d", b"")]})
        srv = self.server(p.spec())
        self.assertEqual(self.send(srv)[0], 250)
        self.assertEqual(srv.queue_files(), [])
        self.assertNotIn("T", self.wait_seen(p, "Q"))
        self.wait_log(srv, ["discard at RCPT", "Message discarded: milter"])


    def test_connection_reused_across_sessions(self):
        """Five sessions one after the other on one worker: the milter
        accepts one connection; each session after the first starts at
        SMFIC_CONNECT (no new negotiation) after the last one's QUIT_NC."""
        p = self.peer()
        srv = self.server(p.spec(), workers="1")
        for _ in range(5):
            self.assertEqual(self.send(srv)[0], 250)
            self.wait_seen(p, "K")
            deadline = time.time() + 5
            while time.time() < deadline and p.seen[-1][0] != "K":
                time.sleep(0.02)
        self.assertEqual(p.connections, 1)
        cmds = self.wait_seen(p, "K")
        one = "CHMRTLLLLNBEK"
        self.assertEqual(cmds, "O" + one * 5)
        self.assertEqual(len(srv.queue_files(expect=5)), 5)

    def test_no_reuse_after_accept_at_end_of_message(self):
        """A milter that answered accept at end of message is past libmilter's
        end-of-message state (QUIT_NC would be ignored): QUIT, and the next
        session connects anew."""
        p = self.peer(script={"E": [("a", b"")]})
        srv = self.server(p.spec(), workers="1")
        for _ in range(2):
            self.assertEqual(self.send(srv)[0], 250)
            deadline = time.time() + 5
            while time.time() < deadline and p.seen[-1][0] != "Q":
                time.sleep(0.02)
        self.assertEqual(p.connections, 2)
        self.assertNotIn("K", self.wait_seen(p, "Q"))

    def test_idle_connection_closed_by_the_milter(self):
        """The milter closes the idle connection after QUIT_NC: the next
        session finds it unusable and connects anew, no verdict lost."""
        p = self.peer(quit_nc=False)
        srv = self.server(p.spec(), workers="1")
        self.assertEqual(self.send(srv)[0], 250)
        deadline = time.time() + 5
        while time.time() < deadline and p.seen[-1][0] != "K":
            time.sleep(0.02)
        time.sleep(0.1)
        self.assertEqual(self.send(srv)[0], 250)
        self.assertEqual(p.connections, 2)
        self.wait_log(srv, ["idle connection unusable"])
        self.assertEqual(len(srv.queue_files(expect=2)), 2)


    def test_chgheader_changes_and_deletes_byte_exactly(self):
        """chgheader: Subject changed, the folded X-Folded deleted, a 2nd
        To (there is one) added; the queue file holds the rewritten header
        section and the body, byte-exact, with the right size line."""
        idx = lambda i: i.to_bytes(4, "big")
        p = self.peer(script={"E": [("m", idx(1) + hdr("subject", "new subject")),
                                    ("m", idx(1) + hdr("X-Folded", "")),
                                    ("m", idx(2) + hdr("To", "v@example.test")),
                                    ("c", b"")]})
        srv = self.server("py=" + p.spec())
        self.assertEqual(self.send(srv)[0], 250)
        msg = self.queued(srv)["message"]
        i = msg.index(b"Received: ")
        j = msg.index(b"\r\nFrom: ") + 2
        self.assertTrue(msg[i:j].startswith(b"Received: from client.example") and
                        msg[i:j].count(b"\r\n") == 3, msg[i:j])
        self.assertEqual(msg[:i], b"To: v@example.test\r\n")
        self.assertEqual(msg[j:], b"From: a@example.org\r\nTo: u@example.test\r\n"
                                  b"Subject: new subject\r\n\r\nBody line\r\n")
        self.wait_log(srv, ["milter py: chgheader subject[1]", "chgheader X-Folded[1] deleted",
                            "milters: 3 chgheader edit(s) applied"])


    def test_chgheader_header_section_over_two_chunks(self):
        """A header section of ~90 KiB (over the 64 KiB journal chunk):
        the edited file skips the whole first chunk and part of the next."""
        pad = "".join("X-Pad-%04d: %s\r\n" % (i, "p" * 60) for i in range(1200))
        msg = "From: a@example.org\r\n" + pad + "Subject: old\r\n\r\n" + "body\r\n" * 2000
        idx = (1).to_bytes(4, "big")
        p = self.peer(script={"E": [("m", idx + hdr("Subject", "new")), ("c", b"")]})
        srv = self.server(p.spec())
        self.assertEqual(self.send(srv, msg=msg)[0], 250)
        got = self.queued(srv)["message"]
        want = msg.replace("Subject: old", "Subject: new").encode()
        self.assertTrue(got.endswith(want), len(got))
        self.assertEqual(got[got.index(b"\r\nFrom: ") + 2:], want)


if __name__ == "__main__":
    unittest.main()
