"""test_core.py - end-to-end tests of the core receiver (issue 2): the
dialogue with smtplib and swaks, error replies, PIPELINING and SMTP
smuggling, against the real mxringd on loopback. The shared helpers at the
top are also used by the other test_core_*.py files."""
import os
import re
import smtplib
import socket
import subprocess
import unittest

from harness import Client, Server

HOST = "mx.test"
BANNER = "220 mx.test ESMTP mxring Receiver"
EHLO_FIRST = "250-mx.test Hello [127.0.0.1], pleased to meet you"
HELO_REPLY = "250 mx.test Hello [127.0.0.1], pleased to meet you"
DATA_GO = '354 Enter mail, end with "." on a line by itself'
RSET_OK = "250 2.0.0 Reset state"
NOOP_OK = "250 2.0.0 OK"
QUIT_OK = "221 2.0.0 mx.test closing connection."
QID_RE = re.compile(r"^250 2\.0\.0 Message received ok\. id=([0-9A-Za-z]+)$")
SWAKS = "/usr/bin/swaks"


def sender_ok(addr):
    return "250 2.1.0 <%s>... Sender ok." % addr


def rcpt_ok(addr):
    return "250 2.1.5 <%s>... Recipient ok." % addr


def queue_id(line):
    """The queue id in a '250 ... Message received ok.' reply line, or None."""
    m = QID_RE.match(line)
    return m.group(1) if m else None


def split_received(msg):
    """(Received header incl. its folded lines, the rest) of stored message bytes."""
    if not msg.startswith(b"Received: "):
        raise AssertionError("message does not start with Received: %r" % msg[:80])
    pos = msg.index(b"\r\n") + 2
    while msg[pos:pos + 1] in (b"\t", b" "):
        pos = msg.index(b"\r\n", pos) + 2
    return msg[:pos], msg[pos:]


def stuff(body):
    """Dot-stuff message bytes (CRLF lines) and append the end of data."""
    lines = body.split(b"\r\n")
    out = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)
    if not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out + b".\r\n"


def start(conf=None, case=None):
    """A started Server; closed by case's cleanup when case is given."""
    srv = Server(conf)
    try:
        srv.start()
    except BaseException:
        srv.close()
        raise
    if case is not None:
        case.addCleanup(srv.close)
    return srv


def client_on(sock):
    """A harness Client over an already connected socket (e.g. IPv6)."""
    c = Client.__new__(Client)
    c.sock, c.buf = sock, b""
    return c


def greet(c, ehlo=True, name="client.example"):
    """Read the banner and say EHLO/HELO; returns the greeting reply lines."""
    code, lines = c.reply()
    assert (code, lines) == (220, [BANNER]), (code, lines)
    code, lines = c.cmd("%s %s" % ("EHLO" if ehlo else "HELO", name))
    assert code == 250, lines
    return lines


def send_one(c, sender, rcpts, body):
    """One whole transaction on a greeted Client; returns the final reply line."""
    code, lines = c.cmd("MAIL FROM:<%s>" % sender)
    assert lines == [sender_ok(sender)], lines
    for r in rcpts:
        code, lines = c.cmd("RCPT TO:<%s>" % r)
        assert lines == [rcpt_ok(r)], lines
    code, lines = c.cmd("DATA")
    assert lines == [DATA_GO], lines
    c.send(stuff(body))
    return c.reply()[1][-1]


def stored_message(srv, qid):
    """(envelope dict, message bytes without the Received header) of qid."""
    env = srv.read_queue(qid)
    _, rest = split_received(env["message"])
    return env, rest


class ServerCase(unittest.TestCase):
    """Base: self.start(conf) gives a running server closed after the test."""

    def start(self, conf=None):
        return start(conf, self)

    def client(self, srv, timeout=10):
        c = Client(srv, timeout)
        self.addCleanup(c.close)
        return c

    def assert_stored(self, srv, qid, sender, rcpts, body):
        self.assertIn(qid, srv.queue_files())
        env, rest = stored_message(srv, qid)
        self.assertEqual(env["id"], qid)
        self.assertEqual(env["sender"], sender)
        self.assertEqual(env["rcpt"], rcpts)
        self.assertEqual(rest, body)
        return env


BODY_8BIT = (b"From: a@b.example\r\nTo: u@example.test\r\nSubject: dialogue\r\n\r\n"
             b"line one\r\n.leading dot\r\n..two dots\r\n.\r\n"
             b"8-bit: \xc3\xa9t\xc3\xa9 \xff\x80\x01\r\n"
             b"last line\r\n")


class TestDialogue(ServerCase):
    """The ordinary dialogue, driven by Python's smtplib."""

    def smtp(self, srv):
        s = smtplib.SMTP(local_hostname="client.example", timeout=10)
        self.addCleanup(s.close)
        code, msg = s.connect("127.0.0.1", srv.port)
        self.assertEqual((code, msg.decode()), (220, BANNER[4:]))
        return s

    def test_core_ehlo_keywords(self):
        srv = self.start({"max_message_size": "3M"})
        s = self.smtp(srv)
        code, msg = s.ehlo()
        self.assertEqual(code, 250)
        lines = msg.decode().split("\n")
        self.assertEqual(lines[0], EHLO_FIRST[4:])
        for kw in ("PIPELINING", "SIZE 3145728", "8BITMIME", "ENHANCEDSTATUSCODES"):
            self.assertIn(kw, lines[1:])
        self.assertEqual(s.esmtp_features["size"], "3145728")
        s.quit()

    def test_core_helo_reply_and_smtp_protocol(self):
        srv = self.start()
        s = self.smtp(srv)
        code, msg = s.helo()
        self.assertEqual((code, msg.decode()), (250, HELO_REPLY[4:]))
        # ESMTP parameters are not for a HELO session
        code, msg = s.docmd("MAIL", "FROM:<a@b.example> BODY=8BITMIME")
        self.assertEqual(code, 555)
        self.assertEqual(s.mail("a@b.example"), (250, sender_ok("a@b.example")[4:].encode()))
        self.assertEqual(s.rcpt("u@example.test")[0], 250)
        code, msg = s.data(b"Subject: helo\r\n\r\nhi\r\n")
        qid = queue_id("%d %s" % (code, msg.decode()))
        self.assertIsNotNone(qid, msg)
        env = self.assert_stored(srv, qid, "a@b.example", ["u@example.test"],
                                 b"Subject: helo\r\n\r\nhi\r\n")
        self.assertEqual(env["protocol"], "SMTP")
        self.assertEqual(env["helo"], "client.example")
        s.quit()

    def test_core_transaction_exact_replies_and_queue_file(self):
        srv = self.start()
        s = self.smtp(srv)
        self.assertEqual(s.ehlo()[0], 250)
        code, msg = s.mail("a@b.example", ["BODY=8BITMIME"])
        self.assertEqual("%d %s" % (code, msg.decode()), sender_ok("a@b.example"))
        for r in ("u@example.test", "v@example.org", "w@EXAMPLE.test"):
            code, msg = s.rcpt(r)
            self.assertEqual("%d %s" % (code, msg.decode()), rcpt_ok(r))
        code, msg = s.docmd("DATA")
        self.assertEqual("%d %s" % (code, msg.decode()), DATA_GO)
        s.send(stuff(BODY_8BIT))
        code, msg = s.getreply()
        line = "%d %s" % (code, msg.decode())
        qid = queue_id(line)
        self.assertIsNotNone(qid, line)
        self.assertEqual(srv.queue_files(), [qid])
        env = self.assert_stored(srv, qid, "a@b.example",
                                 ["u@example.test", "v@example.org", "w@EXAMPLE.test"],
                                 BODY_8BIT)
        self.assertEqual(env["helo"], "client.example")
        self.assertEqual(env["client"], "127.0.0.1 %d" % s.sock.getsockname()[1])
        self.assertEqual(env["protocol"], "ESMTP")
        self.assertEqual(env["body"], "8BITMIME")
        received, _ = split_received(env["message"])
        unfolded = re.sub(rb"\r\n[ \t]+", b" ", received).decode()
        self.assertRegex(unfolded, r"^Received: from client\.example \(\[127\.0\.0\.1\]\) "
                                   r"by mx\.test \(mxring\) with ESMTP id %s\b.*; "
                                   r"\w{3}, \d{2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n$" % qid)
        self.assertEqual(s.quit()[0], 221)

    def test_core_smtplib_sendmail_single_recipient(self):
        srv = self.start()
        s = self.smtp(srv)
        body = b"Subject: sendmail\r\n\r\n" + b"x" * 70 + b"\r\n"
        self.assertEqual(s.sendmail("a@b.example", ["u@example.test"], body), {})
        files = srv.queue_files()
        self.assertEqual(len(files), 1)
        env = self.assert_stored(srv, files[0], "a@b.example", ["u@example.test"], body)
        self.assertIn(b"for <u@example.test>", split_received(env["message"])[0])
        s.quit()

    def test_core_rset_noop_vrfy_help_quit(self):
        srv = self.start()
        c = self.client(srv)
        greet(c)
        self.assertEqual(c.cmd("NOOP"), (250, [NOOP_OK]))
        self.assertEqual(c.cmd("MAIL FROM:<a@b.example>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<gone@example.test>")[0], 250)
        self.assertEqual(c.cmd("RSET"), (250, [RSET_OK]))
        # the transaction is gone: RCPT needs a new MAIL
        self.assertEqual(c.cmd("RCPT TO:<u@example.test>")[0], 503)
        code, lines = c.cmd("VRFY u@example.test")
        self.assertEqual(code, 252)
        self.assertTrue(lines[0].startswith("252 2.5.2 "), lines)
        code, lines = c.cmd("HELP")
        self.assertEqual(code, 214)
        self.assertTrue(lines[-1].startswith("214 2.0.0 "), lines)
        for verb in ("EHLO", "HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT"):
            self.assertIn(verb, lines[-1])
        # a new transaction after RSET holds only its own recipient
        last = send_one(c, "a@b.example", ["u@example.test"], b"Subject: r\r\n\r\nx\r\n")
        qid = queue_id(last)
        self.assertIsNotNone(qid, last)
        self.assert_stored(srv, qid, "a@b.example", ["u@example.test"],
                           b"Subject: r\r\n\r\nx\r\n")
        self.assertEqual(c.cmd("QUIT"), (221, [QUIT_OK]))
        self.assertTrue(c.closed(5), "no EOF after 221")

    def test_core_null_sender_and_lowercase_verbs(self):
        srv = self.start()
        c = self.client(srv)
        c.reply()
        self.assertEqual(c.cmd("ehlo client.example")[0], 250)
        self.assertEqual(c.cmd("mail from:<>"), (250, [sender_ok("")]))
        self.assertEqual(c.cmd("rcpt to:<u@example.test>")[0], 250)
        self.assertEqual(c.cmd("data")[0], 354)
        c.send(stuff(b"Subject: bounce\r\n\r\nx\r\n"))
        qid = queue_id(c.reply()[1][-1])
        self.assertIsNotNone(qid)
        env = self.assert_stored(srv, qid, "", ["u@example.test"], b"Subject: bounce\r\n\r\nx\r\n")
        self.assertEqual(env["sender"], "")

    def test_core_byte_at_a_time(self):
        """Commands and data split into one-octet sends (CRLF, the dot and
        the end of data cut everywhere) still make one exact message."""
        srv = self.start()
        c = self.client(srv)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        greet(c)
        body = b"Subject: bytes\r\n\r\n.dot\r\n..\r\nend\r\n"
        wire = (b"MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\nDATA\r\n"
                + stuff(body))
        for i in range(len(wire)):
            c.send(wire[i:i + 1])
        self.assertEqual(c.reply()[1], [sender_ok("a@b.example")])
        self.assertEqual(c.reply()[1], [rcpt_ok("u@example.test")])
        self.assertEqual(c.reply()[1], [DATA_GO])
        qid = queue_id(c.reply()[1][-1])
        self.assertIsNotNone(qid)
        self.assert_stored(srv, qid, "a@b.example", ["u@example.test"], body)

    def test_core_empty_message(self):
        srv = self.start()
        c = self.client(srv)
        greet(c)
        self.assertEqual(c.cmd("MAIL FROM:<a@b.example>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<u@example.test>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        qid = queue_id(c.cmd(".")[1][-1])
        self.assertIsNotNone(qid)
        self.assert_stored(srv, qid, "a@b.example", ["u@example.test"], b"")

    def test_core_ipv6_listener(self):
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
            port6 = probe.getsockname()[1]
        srv = Server()
        self.addCleanup(srv.close)
        srv.conf["listen"] = "127.0.0.1:%d, [::1]:%d" % (srv.port, port6)
        srv.write_conf()
        srv.start()
        sock = socket.create_connection(("::1", port6), timeout=10)
        self.addCleanup(sock.close)
        c = client_on(sock)
        self.assertEqual(c.reply(), (220, [BANNER]))
        self.assertEqual(c.cmd("EHLO client.example")[1][0],
                         "250-mx.test Hello [::1], pleased to meet you")
        qid = queue_id(send_one(c, "a@b.example", ["u@example.test"], b"Subject: 6\r\n\r\nx\r\n"))
        self.assertIsNotNone(qid)
        env = self.assert_stored(srv, qid, "a@b.example", ["u@example.test"],
                                 b"Subject: 6\r\n\r\nx\r\n")
        self.assertEqual(env["client"], "::1 %d" % sock.getsockname()[1])
        self.assertIn(b"([::1])", split_received(env["message"])[0])


class TestSwaks(ServerCase):
    """A real third-party client."""

    def swaks(self, srv, *extra):
        cmd = [SWAKS, "--server", "127.0.0.1:%d" % srv.port, "--helo", "swaks.example",
               "--to", "u@example.test", "--from", "a@b.example",
               "--body", "swaks body line\nsecond line", "--timeout", "10"] + list(extra)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        out = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 0, out)
        ids = re.findall(r"<-\s+250 2\.0\.0 Message received ok\. id=(\w+)", out)
        self.assertEqual(len(ids), 1, out)
        env, rest = stored_message(srv, ids[0])
        self.assertEqual(env["sender"], "a@b.example")
        self.assertEqual(env["rcpt"], ["u@example.test"])
        self.assertEqual(env["helo"], "swaks.example")
        self.assertIn(b"\r\n\r\nswaks body line\r\nsecond line\r\n", rest)
        return out

    def test_core_swaks_plain(self):
        srv = self.start()
        self.swaks(srv)
        self.assertEqual(len(srv.queue_files()), 1)

    def test_core_swaks_pipeline(self):
        srv = self.start()
        out = self.swaks(srv, "--pipeline")
        self.assertIn("PIPELINING", out)
        self.assertEqual(len(srv.queue_files()), 1)


class TestErrors(ServerCase):
    """Error replies: exact codes, and the session goes on after each."""

    def test_core_unknown_command(self):
        srv = self.start()
        c = self.client(srv)
        c.reply()
        self.assertEqual(c.cmd("FROB x"), (500, ["500 5.5.2 Syntax error, command unrecognized"]))
        self.assertEqual(c.cmd("STARTTLSX")[0], 500)
        self.assertEqual(c.cmd("NOOP"), (250, [NOOP_OK]))

    def test_core_bad_sequence(self):
        srv = self.start()
        c = self.client(srv)
        c.reply()
        need_helo = "503 5.5.1 Bad sequence of commands: send HELO/EHLO first"
        self.assertEqual(c.cmd("MAIL FROM:<a@b.example>"), (503, [need_helo]))
        self.assertEqual(c.cmd("RCPT TO:<u@example.test>"), (503, [need_helo]))
        self.assertEqual(c.cmd("DATA"), (503, [need_helo]))
        self.assertEqual(c.cmd("EHLO client.example")[0], 250)
        code, lines = c.cmd("RCPT TO:<u@example.test>")
        self.assertEqual(code, 503)
        self.assertTrue(lines[0].startswith("503 5.5.1 "), lines)
        self.assertEqual(c.cmd("DATA")[0], 503)
        self.assertEqual(c.cmd("MAIL FROM:<a@b.example>")[0], 250)
        self.assertEqual(c.cmd("DATA"),
                         (503, ["503 5.5.1 Bad sequence of commands: need RCPT before DATA"]))
        self.assertEqual(c.cmd("MAIL FROM:<c@d.example>"),
                         (503, ["503 5.5.1 Bad sequence of commands: sender already specified"]))
        self.assertEqual(c.cmd("RCPT TO:<u@example.test>")[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<c@d.example>")[0], 503)
        # the first sender is still the one used
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(stuff(b"Subject: s\r\n\r\nx\r\n"))
        qid = queue_id(c.reply()[1][-1])
        self.assertIsNotNone(qid)
        self.assert_stored(srv, qid, "a@b.example", ["u@example.test"], b"Subject: s\r\n\r\nx\r\n")

    def test_core_bad_address_and_param(self):
        srv = self.start()
        c = self.client(srv)
        greet(c)
        self.assertEqual(c.cmd("MAIL FROM:<a b@c>"), (501, ["501 5.1.7 Bad sender address syntax"]))
        self.assertEqual(c.cmd("MAIL FROM:<a@b.example> FOO=bar"),
                         (555, ["555 5.5.4 MAIL FROM/RCPT TO parameters not recognized or "
                                "not implemented"]))
        self.assertEqual(c.cmd("MAIL FROM:<a@b.example>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<bad address>"),
                         (501, ["501 5.1.3 Bad recipient address syntax"]))
        self.assertEqual(c.cmd("RCPT TO:<u@example.test> FOO=1")[0], 555)
        self.assertEqual(c.cmd("RCPT TO:<u@example.test>")[0], 250)
        self.assertEqual(c.cmd("EHLO")[0], 501)

    def test_core_size_param_over_max(self):
        srv = self.start({"max_message_size": "2000"})
        c = self.client(srv)
        self.assertIn("250-SIZE 2000", greet(c))
        self.assertEqual(c.cmd("MAIL FROM:<a@b.example> SIZE=2001"),
                         (552, ["552 5.3.4 Message size exceeds fixed maximum message size"]))
        self.assertEqual(c.cmd("MAIL FROM:<a@b.example> SIZE=99999999999999999999999")[0], 552)
        self.assertEqual(c.cmd("MAIL FROM:<a@b.example> SIZE=2000"),
                         (250, [sender_ok("a@b.example")]))

    def test_core_relay_denied_untrusted(self):
        srv = self.start({"trusted_networks": "10.0.0.0/8"})
        c = self.client(srv)
        greet(c)
        self.assertEqual(c.cmd("MAIL FROM:<a@b.example>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<x@remote.example>"),
                         (550, ["550 5.7.1 <x@remote.example>... Relaying denied."]))
        self.assertEqual(c.cmd("DATA"), (554, ["554 5.5.1 No valid recipients"]))
        # local domains are still fine for an untrusted client
        self.assertEqual(c.cmd("RCPT TO:<u@example.test>"), (250, [rcpt_ok("u@example.test")]))
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(stuff(b"Subject: l\r\n\r\nx\r\n"))
        qid = queue_id(c.reply()[1][-1])
        self.assertIsNotNone(qid)
        self.assert_stored(srv, qid, "a@b.example", ["u@example.test"], b"Subject: l\r\n\r\nx\r\n")

    def test_core_relay_allowed_trusted(self):
        srv = self.start()  # default trusted_networks holds 127.0.0.0/8
        c = self.client(srv)
        greet(c)
        last = send_one(c, "a@b.example", ["x@remote.example"], b"Subject: r\r\n\r\nx\r\n")
        qid = queue_id(last)
        self.assertIsNotNone(qid, last)
        self.assert_stored(srv, qid, "a@b.example", ["x@remote.example"], b"Subject: r\r\n\r\nx\r\n")


class TestPipelining(ServerCase):
    """RFC 2920: many commands in one packet, replies in order."""

    def test_core_pipelined_transactions(self):
        srv = self.start()
        c = self.client(srv)
        self.assertEqual(c.reply(), (220, [BANNER]))
        rc = ["p1@example.test", "p2@example.test", "p3@example.org"]
        c.send("EHLO client.example\r\nMAIL FROM:<a@b.example>\r\n"
               + "".join("RCPT TO:<%s>\r\n" % r for r in rc) + "DATA\r\n")
        code, lines = c.reply()
        self.assertEqual((code, lines[0]), (250, EHLO_FIRST))
        self.assertEqual(c.reply()[1], [sender_ok("a@b.example")])
        for r in rc:
            self.assertEqual(c.reply()[1], [rcpt_ok(r)])
        self.assertEqual(c.reply()[1], [DATA_GO])
        body1 = b"Subject: one\r\n\r\nfirst\r\n"
        c.send(stuff(body1) + b"MAIL FROM:<b@b.example>\r\nRCPT TO:<q@example.test>\r\nDATA\r\n")
        qid1 = queue_id(c.reply()[1][-1])
        self.assertIsNotNone(qid1)
        self.assertEqual(c.reply()[1], [sender_ok("b@b.example")])
        self.assertEqual(c.reply()[1], [rcpt_ok("q@example.test")])
        self.assertEqual(c.reply()[1], [DATA_GO])
        body2 = b"Subject: two\r\n\r\nsecond\r\n"
        c.send(stuff(body2) + b"QUIT\r\n")
        qid2 = queue_id(c.reply()[1][-1])
        self.assertIsNotNone(qid2)
        self.assertEqual(c.reply(), (221, [QUIT_OK]))
        self.assertTrue(c.closed(5))
        self.assertNotEqual(qid1, qid2)
        self.assertEqual(sorted(srv.queue_files()), sorted([qid1, qid2]))
        self.assert_stored(srv, qid1, "a@b.example", rc, body1)
        self.assert_stored(srv, qid2, "b@b.example", ["q@example.test"], body2)

    def test_core_pipelined_noops(self):
        srv = self.start()
        c = self.client(srv)
        greet(c)
        c.send("NOOP\r\n" * 20)
        for _ in range(20):
            self.assertEqual(c.reply(), (250, [NOOP_OK]))
        # a pipelined mix: every reply in order, errors included
        c.send("NOOP\r\nFROB\r\nRCPT TO:<u@example.test>\r\nVRFY x\r\nNOOP\r\n")
        self.assertEqual([c.reply()[0] for _ in range(5)], [250, 500, 503, 252, 250])
        # nothing extra was sent
        self.assertEqual(c.cmd("RSET"), (250, [RSET_OK]))

    def test_core_pipelined_many_commands(self):
        srv = self.start({"max_junk_commands": "100000000"})
        c = self.client(srv, timeout=20)
        greet(c)
        n = 5000
        c.send("NOOP\r\n" * n + "QUIT\r\n")
        for i in range(n):
            self.assertEqual(c.reply(), (250, [NOOP_OK]), i)
        self.assertEqual(c.reply(), (221, [QUIT_OK]))
        self.assertTrue(c.closed(5))


class TestSmuggling(ServerCase):
    """Only <CR><LF>.<CR><LF> ends DATA; bare CR/LF refuse the message."""

    SMUGGLED = (b"MAIL FROM:<evil@x>\r\nRCPT TO:<u@example.test>\r\nDATA\r\n"
                b"Subject: smuggled\r\n\r\nevil\r\n.\r\n")

    def smuggle(self, variant):
        srv = self.start()
        c = self.client(srv)
        greet(c)
        self.assertEqual(c.cmd("MAIL FROM:<good@b.example>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<u@example.test>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(b"Subject: carrier\r\n\r\nhello" + variant + self.SMUGGLED)
        self.assertEqual(c.reply(), (550, ["550 5.5.2 Message refused: bare CR or LF in data "
                                           "is not allowed"]))
        # exactly one reply for the whole DATA: the next reply is the NOOP's
        self.assertEqual(c.cmd("NOOP"), (250, [NOOP_OK]))
        # no transaction is open (neither the refused one nor a smuggled one)
        self.assertEqual(c.cmd("RCPT TO:<u@example.test>")[0], 503)
        self.assertEqual(srv.queue_files(), [])
        # the session is still usable
        last = send_one(c, "a@b.example", ["u@example.test"], b"Subject: after\r\n\r\nok\r\n")
        qid = queue_id(last)
        self.assertIsNotNone(qid, last)
        self.assertEqual(srv.queue_files(), [qid])
        self.assert_stored(srv, qid, "a@b.example", ["u@example.test"],
                           b"Subject: after\r\n\r\nok\r\n")

    def test_core_smuggling_lf_dot_crlf(self):
        self.smuggle(b"\n.\r\n")

    def test_core_smuggling_crlf_dot_lf(self):
        self.smuggle(b"\r\n.\n")

    def test_core_smuggling_cr_dot_cr(self):
        self.smuggle(b"\r.\r")

    def test_core_smuggling_split_over_packets(self):
        """The same attack with the end marker cut across several sends."""
        srv = self.start()
        c = self.client(srv)
        greet(c)
        self.assertEqual(c.cmd("MAIL FROM:<good@b.example>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<u@example.test>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        for part in (b"Subject: c\r\n\r\nhello\r\n", b".", b"\n", self.SMUGGLED):
            c.send(part)
        self.assertEqual(c.reply()[0], 550)
        self.assertEqual(c.cmd("NOOP"), (250, [NOOP_OK]))
        self.assertEqual(srv.queue_files(), [])


if __name__ == "__main__":
    unittest.main()
