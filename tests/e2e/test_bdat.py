"""test_bdat.py - CHUNKING / BDAT (RFC 3030) end to end against the real
mxringd over loopback sockets (issue 16).

smtplib has no BDAT, so the sessions are raw sockets: pipelined BDAT and
commands in one send, content that looks like commands and like an end of
data (binary-clean), byte-identical checks of queue/new, the size limit with
the rest of the chunk discarded by count (the session stays in sync), BDAT
mixed with DATA, BDAT out of sequence, bare LF inside a chunk, RSET and a
client gone mid-chunk (never committed), and a 64 MiB message in 1 MiB
chunks with the server's peak RSS (VmHWM) bounded. A real third-party client
too: Perl's Net::SMTP (libnet, part of perl) sending BDAT (its own BDAT
command and reply handling; the test switches it on once CHUNKING is seen,
since Net::SMTP does that by itself only for BODY=BINARYMIME). And a private Postfix relaying through mxringd while
CHUNKING is offered (Postfix's smtp client has no BDAT: it must keep working
with DATA)."""
import hashlib
import os
import shutil
import subprocess
import time
import unittest

from dlv_peers import PrivatePostfix, wait_for
from harness import BINARY, Client, Server, is_sanitized, log_text, status_kib, wait_log
from test_filters import EICAR, FilterCase, plain

ID_PREFIX = "250 2.0.0 Message received ok. id="


def body_of(srv, qid):
    """The message part of queue/new/<qid> after mxringd's Received: header."""
    msg = srv.read_queue(qid)["message"]
    assert msg.startswith(b"Received: "), msg[:80]
    i = msg.index(b"\r\n", msg.index(b"; ")) + 2   # the header's last line ends "; <date>"
    return msg[i:]


def greet(c):
    """Banner and EHLO; the EHLO reply must offer CHUNKING."""
    assert c.reply()[0] == 220
    code, lines = c.cmd("EHLO client.example")
    assert code == 250 and "250-CHUNKING" in lines, lines


def qid_of(reply):
    code, lines = reply
    assert code == 250 and lines[-1].startswith(ID_PREFIX), lines
    return lines[-1][len(ID_PREFIX):]


class BdatRaw(unittest.TestCase):
    """Raw-socket BDAT sessions."""

    def setUp(self):
        self.srv = Server(conf={"max_message_size": "1M"}, receivelog=True)
        self.srv.start()
        self.c = Client(self.srv)
        greet(self.c)

    def tearDown(self):
        self.c.close()
        self.srv.close()

    def test_bdat_pipelined_binary_clean_byte_identical(self):
        """Description: three chunks and the commands around them in one send; content
        holding '.', '\\r\\n.\\r\\n' and command lines is stored as sent, not unstuffed."""
        parts = [b"Subject: bdat\r\n\r\n.leading dot\r\n", b".\r\nMAIL FROM:<evil@x>\r\nDA",
                 b"TA\r\n..\r\nend\r\n"]
        wire = b"MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\n"
        for i, p in enumerate(parts):
            wire += b"BDAT %d%s\r\n" % (len(p), b" LAST" if i == len(parts) - 1 else b"") + p
        wire += b"NOOP\r\nQUIT\r\n"
        self.c.send(wire)
        self.assertEqual(self.c.reply()[0], 250)
        self.assertEqual(self.c.reply()[0], 250)
        for p in parts[:-1]:
            self.assertEqual(self.c.reply(), (250, ["250 2.0.0 %d octets received" % len(p)]))
        qid = qid_of(self.c.reply())
        self.assertEqual(self.c.reply(), (250, ["250 2.0.0 OK"]))
        self.assertEqual(self.c.reply()[0], 221)
        self.assertEqual(body_of(self.srv, qid), b"".join(parts))
        env = self.srv.read_queue(qid)
        self.assertEqual(env["protocol"], "ESMTP")
        self.assertIn(b"with ESMTP id " + qid.encode(), env["message"])
        self.assertTrue(wait_log(self.srv, "Message accepted: queue id %s, %d octets, 1 "
                                 "recipient(s), BDAT 3 chunk(s)" % (qid, len(b"".join(parts)))))

    def test_bdat_zero_last_and_chunks_split_across_sends(self):
        """Description: BDAT 0 LAST ends a message; a chunk arriving in pieces, its
        command in the same send as its first octets."""
        self.c.send(b"MAIL FROM:<>\r\nRCPT TO:<u@example.test>\r\nBDAT 0 LAST\r\n")
        self.c.reply(), self.c.reply()
        self.assertEqual(body_of(self.srv, qid_of(self.c.reply())), b"")
        self.c.send(b"MAIL FROM:<>\r\nRCPT TO:<u@example.test>\r\nBDAT 12 LAST\r\nhel")
        self.c.reply(), self.c.reply()
        time.sleep(0.05)
        self.c.send(b"lo\r\nwo")
        time.sleep(0.05)
        self.c.send(b"r\r\nNOOP\r\n")
        qid = qid_of(self.c.reply())
        self.assertEqual(self.c.reply()[0], 250)
        self.assertEqual(body_of(self.srv, qid), b"hello\r\nwor\r\n")

    def test_bdat_oversize_552_discarded_in_sync(self):
        """Description: a chunk taking the message over max_message_size gets 552 after
        its octets are skipped by count; the session is in sync and nothing is queued."""
        self.c.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\n")
        self.c.reply(), self.c.reply()
        big = (b"QUIT\r\n" * 400000)[:2000000]     # commands inside it must not run
        self.c.send(b"BDAT 2000000 LAST\r\n" + big + b"NOOP\r\n")
        self.assertEqual(self.c.reply(), (552, ["552 5.3.4 BDAT chunk exceeds fixed maximum "
                                                "message size"]))
        self.assertEqual(self.c.reply(), (250, ["250 2.0.0 OK"]))
        self.assertEqual(self.srv.queue_files(), [])
        self.assertTrue(wait_log(self.srv, 'result=refused reason="over max_message_size 1048576 '
                                 '(BDAT, 2000000 octets announced)"'))
        # the next message in the same session is fine
        self.c.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\nBDAT 4 LAST\r\nok\r\n")
        self.c.reply(), self.c.reply()
        self.assertEqual(body_of(self.srv, qid_of(self.c.reply())), b"ok\r\n")

    def test_bdat_sequence_errors_keep_sync(self):
        """Description: BDAT before MAIL: 503 and its chunk discarded (a QUIT inside it
        is not run); DATA after BDAT: 503; RSET mid-BDAT: nothing is queued."""
        self.c.send(b"BDAT 6\r\nQUIT\r\nNOOP\r\n")
        self.assertEqual(self.c.reply(), (503, ["503 5.5.1 Bad sequence of commands: need MAIL "
                                                "before BDAT"]))
        self.assertEqual(self.c.reply()[0], 250)
        self.c.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\nBDAT 3\r\nabcDATA\r\n"
                    b"RSET\r\n")
        self.c.reply(), self.c.reply()
        self.assertEqual(self.c.reply()[0], 250)
        self.assertEqual(self.c.reply(), (503, ["503 5.5.1 Bad sequence of commands: DATA after "
                                                "BDAT"]))
        self.assertEqual(self.c.reply()[0], 250)
        self.assertEqual(self.c.cmd("NOOP")[0], 250)
        self.assertEqual(self.srv.queue_files(), [])
        self.assertTrue(wait_log(self.srv, 'result=aborted reason="RSET"'))

    def test_bdat_bare_lf_in_chunk_refused(self):
        """Description: the bare-LF rule of DATA holds inside chunks; reply and log say BDAT."""
        self.c.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\n"
                    b"BDAT 20 LAST\r\nhi\nRCPT TO:<x@y.z>\r\n\r\n")
        self.c.reply(), self.c.reply()
        self.assertEqual(self.c.reply(), (550, ["550 5.5.2 Message refused: bare CR or LF in "
                                                "BDAT data is not allowed"]))
        self.assertEqual(self.srv.queue_files(), [])
        self.assertTrue(wait_log(self.srv, "bare LF at BDAT data offset 2, an SMTP command "
                                 "follows it (smuggling attempt)"))

    def test_bdat_bad_count_501_closes(self):
        """Description: a count that cannot be read: 501, and the session closes (the
        octets after it cannot be told from commands)."""
        self.c.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\nBDAT 12x\r\n"
                    b"MAIL FROM:<evil@x>\r\n")
        self.c.reply(), self.c.reply()
        self.assertEqual(self.c.reply(), (501, ["501 5.5.4 Syntax: BDAT count [LAST]"]))
        self.assertTrue(self.c.closed())
        self.assertTrue(wait_log(self.srv, "CloseClient Started. (protocol error)"))
        self.assertNotIn("evil@x", log_text(self.srv))

    def test_bdat_quit_mid_transaction_not_committed(self):
        """Description: QUIT after a non-LAST chunk large enough to reach the journal
        (over one 64 KiB chunk record): 221, the transaction is aborted, nothing queued."""
        chunk = b"x" * 78 + b"\r\n"
        body = chunk * 2000   # 160 000 octets
        self.c.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\nBDAT %d\r\n"
                    % len(body) + body + b"QUIT\r\n")
        self.c.reply(), self.c.reply()
        self.assertEqual(self.c.reply(), (250, ["250 2.0.0 %d octets received" % len(body)]))
        self.assertEqual(self.c.reply()[0], 221)
        self.assertTrue(wait_log(self.srv, 'size=%d result=aborted reason="QUIT"' % len(body)))
        self.assertEqual(self.srv.queue_files(), [])

    def test_bdat_client_gone_mid_chunk_not_committed(self):
        """Description: the client leaves inside a chunk: nothing is queued, the log says so."""
        self.c.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\nBDAT 4\r\nabcd"
                    b"BDAT 1000 LAST\r\n" + b"x" * 300)
        self.c.reply(), self.c.reply(), self.c.reply()
        self.c.close()
        self.assertTrue(wait_log(self.srv, "end of input inside BDAT (2 chunk(s), 1004 octets "
                                 "announced, 700 missing): message not accepted"))
        self.assertTrue(wait_log(self.srv, 'result=aborted reason="client gone"'))
        self.assertEqual(self.srv.queue_files(), [])


class BdatBig(unittest.TestCase):
    """A 64 MiB message in 1 MiB chunks: streamed, never held."""

    def test_bdat_64mib_streamed_rss_bounded(self):
        """Description: 64 MiB in 64 BDAT chunks of 1 MiB, pipelined; byte-identical in
        queue/new; mxringd's VmHWM grows by far less than the message."""
        size_mib, chunk = 64, 1 << 20
        line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxy\r\n"
        block = (line * (chunk // len(line) + 1))[:chunk - 2] + b"\r\n"
        with Server(conf={"max_message_size": "100M"}, receivelog=True, base="/var/tmp") as srv:
            c = Client(srv, timeout=60)
            greet(c)
            before = status_kib(srv.proc.pid, "VmHWM")
            c.send(b"MAIL FROM:<big@b.example>\r\nRCPT TO:<u@example.test>\r\n")
            c.reply(), c.reply()
            digest = hashlib.sha256()
            t0 = time.time()
            for i in range(size_mib):
                piece = b"%08d" % i + block[8:]
                digest.update(piece)
                last = b" LAST" if i == size_mib - 1 else b""
                c.send(b"BDAT %d%s\r\n" % (len(piece), last) + piece)
                if i < size_mib - 1:
                    self.assertEqual(c.reply(), (250, ["250 2.0.0 %d octets received" % chunk]))
            qid = qid_of(c.reply())
            elapsed = time.time() - t0
            after = status_kib(srv.proc.pid, "VmHWM")
            c.close()
            got = body_of(srv, qid)
            self.assertEqual(len(got), size_mib * chunk)
            self.assertEqual(hashlib.sha256(got).hexdigest(), digest.hexdigest())
            print("\n  64 MiB by BDAT in %.2f s; VmHWM %d kB -> %d kB" % (elapsed, before, after))
            self.assertTrue(wait_log(srv, "BDAT 64 chunk(s)"))
            if not is_sanitized(BINARY):
                self.assertLess((after - before) << 10, 16 << 20,
                                "VmHWM grew by %d kB for a 64 MiB message" % (after - before))


PERL_CLIENT = r"""
use strict; use warnings; use Net::SMTP;
my ($port, $file) = @ARGV;
open(my $fh, '<:raw', $file) or die "open: $!"; local $/; my $msg = <$fh>; close $fh;
my $smtp = Net::SMTP->new('127.0.0.1', Port => $port, Hello => 'perl.example', Timeout => 20)
    or die "connect: $@";
defined $smtp->supports('CHUNKING') or die "no CHUNKING in the EHLO reply";
# Net::SMTP turns BDAT on by itself only with BODY=BINARYMIME (not offered by
# mxringd): CHUNKING alone allows BDAT for 7BIT/8BITMIME content (RFC 3030 2)
${*$smtp}{'net_smtp_chunking'} = 1;
$smtp->mail('perl@b.example') or die "MAIL: " . $smtp->message;
$smtp->to('u@example.test') or die "RCPT: " . $smtp->message;
my $half = int(length($msg) / 2);
$smtp->bdat(substr($msg, 0, $half)) or die "BDAT: " . $smtp->message;
$smtp->bdatlast(substr($msg, $half)) or die "BDAT LAST: " . $smtp->message;
print $smtp->message;
$smtp->quit;
"""


class BdatRealClients(unittest.TestCase):
    """Real SMTP client implementations against mxringd's CHUNKING."""

    def test_bdat_perl_net_smtp_client(self):
        """Description: Perl's Net::SMTP sees CHUNKING and sends BDAT + BDAT LAST; the
        receivelog shows BDAT and the queued message is byte-identical."""
        if subprocess.run(["perl", "-MNet::SMTP", "-e", "exit(Net::SMTP->can('bdat') ? 0 : 1)"],
                          capture_output=True).returncode != 0:
            self.skipTest("perl Net::SMTP with bdat() not available")
        msg = (b"From: perl@b.example\r\nTo: u@example.test\r\nSubject: net-smtp bdat\r\n\r\n"
               b"line one\r\n.\r\n..two dots\r\nMAIL FROM:<not-a-command@x>\r\n" * 200)
        with Server(receivelog=True) as srv:
            path = srv.path("msg.eml")
            with open(path, "wb") as f:
                f.write(msg)
            script = srv.path("client.pl")
            with open(script, "w") as f:
                f.write(PERL_CLIENT)
            r = subprocess.run(["perl", script, str(srv.port), path], capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("id=", r.stdout, r.stdout + r.stderr)
            qid = r.stdout.strip().rsplit("id=", 1)[1]
            self.assertEqual(body_of(srv, qid), msg)
            log = log_text(srv)
            self.assertIn("BDAT %d\n" % (len(msg) // 2), log)
            self.assertIn("BDAT %d LAST\n" % (len(msg) - len(msg) // 2), log)
            self.assertTrue(wait_log(srv, "1 recipient(s), BDAT 2 chunk(s)"))


class BdatFilters(FilterCase):
    """The content filters see a BDAT message as they see a DATA one: read back
    from the journal (real clamd, started by test_filters' FilterCase)."""

    def test_bdat_eicar_across_chunks_rejected(self):
        """Description: EICAR past five 64 KiB journal chunks, sent in 10 BDAT chunks:
        clamd finds it, 554, nothing queued; a clean BDAT message passes the filters."""
        srv = self.server(surbl_zones=None)
        msg = plain("filler line of a long message, nothing to see here\r\n" * 6500 +
                    EICAR.decode()).encode()
        c = Client(srv, timeout=30)
        greet(c)
        step = len(msg) // 10 + 1
        pieces = [msg[i:i + step] for i in range(0, len(msg), step)]
        c.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\n")
        c.reply(), c.reply()
        for i, p in enumerate(pieces):
            c.send(b"BDAT %d%s\r\n" % (len(p), b" LAST" if i == len(pieces) - 1 else b"") + p)
        for p in pieces[:-1]:
            self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply(), (554, ["554 5.7.1 Requested mail action aborted: virus "
                                           "Eicar-Test-Signature-Body.UNOFFICIAL found."]))
        self.assertEqual(srv.queue_files(), [])
        clean = plain("nothing to see\r\n" * 10).encode()
        c.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.test>\r\nBDAT %d LAST\r\n"
               % len(clean) + clean)
        c.reply(), c.reply()
        self.assertEqual(body_of(srv, qid_of(c.reply())), clean)
        c.close()


class BdatPostfix(PrivatePostfix):
    """The private Postfix of dlv_peers.py in a folder of its own (test_delivery
    uses the default one)."""
    DIR = "/tmp/mxring-e2e-postfix-bdat"


def strip_received(data):
    """data without its first header if that is a (folded) Received: header."""
    assert data.startswith(b"Received: "), data[:80]
    i = data.index(b"\r\n") + 2
    while data[i:i + 1] in (b" ", b"\t"):
        i = data.index(b"\r\n", i) + 2
    return data[i:]


class BdatPostfixRelay(unittest.TestCase):
    def test_bdat_offered_postfix_relays_through(self):
        """Description: a private Postfix relays a message through mxringd, which offers
        CHUNKING. Postfix's smtp client (3.7 here; none up to 3.12) has no BDAT, so it
        must go on with DATA: the message arrives byte-identical below the Received:
        headers of Postfix and mxringd, and the receivelog shows DATA, not BDAT."""
        if os.geteuid() != 0 or shutil.which("postfix") is None:
            self.skipTest("needs root and postfix for a private instance")
        import smtplib
        msg = (b"From: a@b.example\r\nTo: u@example.test\r\nSubject: via postfix\r\n"
               b"Date: Wed, 02 Dec 2026 00:00:00 +0000\r\nMessage-ID: <pf-bdat@b.example>\r\n"
               b"\r\n.dot line\r\nbody\r\n")
        with Server(receivelog=True) as srv:
            pf = BdatPostfix(srv.port)
            try:
                with smtplib.SMTP("127.0.0.1", pf.port, timeout=20) as c:
                    c.sendmail("a@b.example", ["u@example.test"], msg)
                self.assertTrue(wait_for(lambda: srv.queue_files(settle=0.05), 60),
                                pf.maillog()[-2000:])
                qid = srv.queue_files()[0]
                got = strip_received(body_of(srv, qid))
                self.assertIn(b"by postfix.test (Postfix)", body_of(srv, qid))
                self.assertEqual(got, msg)
                log = log_text(srv)
                self.assertIn("250-CHUNKING", log)
                self.assertIn("354 ", log)
                self.assertIn("Message accepted: queue id %s" % qid, log)
                self.assertNotIn("BDAT", log)
            finally:
                pf.close()


if __name__ == "__main__":
    unittest.main()
