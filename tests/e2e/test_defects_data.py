"""End-to-end tests of issue 14's data and receivelog items against the real
mxringd over loopback sockets: NUL octets in DATA (550 5.6.0, nul_bytes),
RFC 3848 protocol names and the TLS comment of the Received: header
(smtplib + STARTTLS, AUTH), 8-bit data without BODY=8BITMIME, specific
refusal reasons (bare CR/LF offset and smuggling, SIZE=), UTF-8 in the
receivelog, and the one summary line per transaction."""
import crypt
import glob
import os
import re
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import ROOT, Client, Server, free_port, wait_log, make_certs

PASSWORD = "s3cret-Pa55"
CERTS = None


def setUpModule():
    global CERTS
    CERTS = make_certs()


def tearDownModule():
    shutil.rmtree(CERTS, ignore_errors=True)


def log_bytes(srv):
    """The receivelog as raw bytes (UTF-8 must arrive as UTF-8)."""
    out = b""
    for path in sorted(glob.glob(os.path.join(srv.workdir, "receivelog", "*", "*.log"))):
        with open(path, "rb") as f:
            out += f.read()
    return out


def log_str(srv):
    return log_bytes(srv).decode("utf-8")


def open_data(c, mail="MAIL FROM:<a@b.example>"):
    """Greeting, EHLO, MAIL, one RCPT and DATA on a raw client."""
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.example")[0] == 250
    assert c.cmd(mail)[0] == 250
    assert c.cmd("RCPT TO:<u@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354


def summaries(srv, ip="127.0.0.1"):
    """The summary lines of client ip (one grep by IP)."""
    return [l for l in log_str(srv).splitlines()
            if "Transaction summary: client=%s " % ip in l]


def wait_closed(srv, n, timeout=5):
    """Wait until n sessions have logged their last line."""
    deadline = time.time() + timeout
    while time.time() < deadline and log_str(srv).count("closesocket()") < n:
        time.sleep(0.05)
    return log_str(srv).count("closesocket()") >= n


class NulTest(unittest.TestCase):

    def test_nul_refused_at_the_real_end_of_data(self):
        with Server(receivelog=True) as srv:
            c = Client(srv)
            open_data(c)
            # "\r\n\0.\r\n" would end the data at a next hop that strips NULs
            c.send(b"Subject: x\r\n\r\n\x00.\r\nMAIL FROM:<evil@x.example>\r\n.\r\n")
            code, lines = c.reply()
            self.assertEqual(code, 550)
            self.assertTrue(lines[0].startswith("550 5.6.0 "), lines)
            self.assertEqual(c.cmd("NOOP")[0], 250)  # the session goes on
            c.cmd("QUIT")
            c.close()
            self.assertTrue(wait_log(srv, "closesocket()"))
            self.assertEqual(srv.queue_files(), [])
            text = log_str(srv)
            self.assertIn("NUL octet at data offset 14", text)
            self.assertIn('result=refused reason="NUL octet at data offset 14"', text)

    def test_nul_allowed_by_option(self):
        with Server(conf={"nul_bytes": "allow"}, receivelog=True) as srv:
            c = Client(srv)
            open_data(c)
            c.send(b"a\x00b\r\n.\r\n")
            code, lines = c.reply()
            self.assertEqual(code, 250, lines)
            c.cmd("QUIT")
            c.close()
            self.assertTrue(wait_log(srv, "closesocket()"))
            (qid,) = srv.queue_files()
            self.assertTrue(srv.read_queue(qid)["message"].endswith(b"a\x00b\r\n"))
            self.assertIn("accepted (nul_bytes = allow)", log_str(srv))


def tls_server(receivelog=True):
    srv = Server(receivelog=receivelog)
    users = srv.path("users")
    with open(users, "w") as f:
        f.write("alice@example.test:%s\n" % crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_SHA512)))
    srv.conf.update({
        "users_file": users,
        "tls_cert": os.path.join(CERTS, "cert.pem"),
        "tls_key": os.path.join(CERTS, "key.pem"),
        "trusted_networks": "10.0.0.0/8",
    })
    srv.write_conf()
    return srv.start()


class ProtocolNameTest(unittest.TestCase):

    def send_one(self, srv, tls, auth):
        s = smtplib.SMTP("127.0.0.1", srv.port, timeout=10)
        s.ehlo("client.example")
        if tls:
            s.starttls(context=ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem")))
            s.ehlo("client.example")
        if auth:
            s.login("alice@example.test", PASSWORD)
        s.sendmail("a@b.example", ["alice@example.test"], "Subject: p\r\n\r\nhi\r\n")
        s.quit()

    def test_rfc3848_names_and_tls_comment(self):
        srv = tls_server()
        try:
            self.send_one(srv, tls=False, auth=False)
            self.send_one(srv, tls=True, auth=False)
            self.send_one(srv, tls=True, auth=True)
            self.assertTrue(wait_closed(srv, 3))
            envs = [srv.read_queue(q) for q in srv.queue_files()]
            self.assertEqual(sorted(e["protocol"] for e in envs), ["ESMTP", "ESMTPS", "ESMTPSA"])
            for e in envs:
                rec = e["message"].split(b"\r\n\tfor ")[0].decode()
                if e["protocol"] == "ESMTP":
                    self.assertNotIn("using", rec)
                    continue
                self.assertRegex(rec, r"^Received: from client\.example \(\[127\.0\.0\.1\]\)\r\n"
                                      r"\t\(using TLSv1\.[23] with cipher [A-Z0-9_-]+\)\r\n"
                                      r"\tby mx\.test \(mxring\) with %s id " % e["protocol"])
            sums = summaries(srv)
            self.assertEqual(len(sums), 3)
            self.assertTrue(any(re.search(r" tls=TLSv1\.[23] auth=alice@example\.test ", l)
                                for l in sums), sums)
        finally:
            srv.close()


class EightBitTest(unittest.TestCase):

    def test_8bit_data_without_8bitmime(self):
        with Server(receivelog=True) as srv:
            for mail in ("MAIL FROM:<a@b.example>", "MAIL FROM:<a@b.example> BODY=7BIT"):
                c = Client(srv)
                open_data(c, mail)
                c.send("Subject: caf\u00e9\r\n\r\nd\u00e9j\u00e0 vu\r\n.\r\n".encode())
                self.assertEqual(c.reply()[0], 250)  # still accepted
                c.cmd("QUIT")
                c.close()
            c = Client(srv)
            open_data(c)
            c.send(b"plain\r\n.\r\n")
            self.assertEqual(c.reply()[0], 250)
            c.cmd("QUIT")
            c.close()
            self.assertTrue(wait_closed(srv, 3))
            bodies = sorted(srv.read_queue(q)["body"] for q in srv.queue_files())
            self.assertEqual(bodies, ["7BIT", "8BITMIME", "8BITMIME"])
            text = log_str(srv)
            self.assertIn("8-bit data without BODY=8BITMIME (declared no BODY)", text)
            self.assertIn("8-bit data without BODY=8BITMIME (declared BODY=7BIT)", text)


class RefusalReasonTest(unittest.TestCase):

    def test_bare_lf_smuggling_reads_differently_from_sloppy(self):
        with Server(receivelog=True) as srv:
            c = Client(srv)
            open_data(c)
            c.send(b"hello\n.\r\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<u@example.test>\r\n"
                   b"DATA\r\nsmuggled\r\n.\r\n")
            self.assertEqual(c.reply()[0], 550)
            c.cmd("QUIT")
            c.close()
            c = Client(srv)
            open_data(c)
            c.send(b"line one\r\nline\rtwo\r\n.\r\n")
            self.assertEqual(c.reply()[0], 550)
            c.cmd("QUIT")
            c.close()
            self.assertTrue(wait_closed(srv, 2))
            text = log_str(srv)
            self.assertIn("bare LF at data offset 5, an SMTP command follows it "
                          "(smuggling attempt)", text)
            self.assertIn("bare CR at data offset 14, no SMTP command follows it", text)
            self.assertEqual(srv.queue_files(), [])

    def test_size_refusal_has_its_reason_line(self):
        with Server(conf={"max_message_size": "10K"}, receivelog=True) as srv:
            c = Client(srv)
            c.reply()
            c.cmd("EHLO client.example")
            self.assertEqual(c.cmd("MAIL FROM:<big@b.example> SIZE=20000")[0], 552)
            c.cmd("QUIT")
            c.close()
            self.assertTrue(wait_log(srv, "closesocket()"))
            text = log_str(srv)
            self.assertIn("MAIL refused: declared SIZE=20000 over max_message_size 10240", text)
            self.assertEqual(len(summaries(srv)), 1)
            self.assertIn("from=<big@b.example>", summaries(srv)[0])


class Utf8LogTest(unittest.TestCase):

    def test_utf8_addresses_logged_as_utf8(self):
        with Server(receivelog=True) as srv:
            c = Client(srv)
            c.reply()
            c.cmd("EHLO client.example")
            c.send("MAIL FROM:<j\u00f6rg@m\u00fcller.example> SMTPUTF8\r\n".encode())
            self.assertEqual(c.reply()[0], 250)
            c.send("RCPT TO:<\u65e5\u672c@example.test>\r\n".encode())
            self.assertEqual(c.reply()[0], 250)
            c.send(b"NOOP \xc3\x28 \xed\xa0\x80 \xc0\xaf \\\r\n")  # invalid UTF-8 and '\'
            c.reply()
            c.cmd("QUIT")
            c.close()
            self.assertTrue(wait_log(srv, "closesocket()"))
            raw = log_bytes(srv)
            text = raw.decode("utf-8")  # the whole log is valid UTF-8
            self.assertIn("MAIL FROM:<j\u00f6rg@m\u00fcller.example> SMTPUTF8", text)
            self.assertIn("Check RCPT TO address = <\u65e5\u672c@example.test>", text)
            self.assertIn("NOOP \\xC3( \\xED\\xA0\\x80 \\xC0\\xAF \\x5C", text)
            # grep jörg (a real grep over the file, as an administrator would)
            files = glob.glob(os.path.join(srv.workdir, "receivelog", "*", "*.log"))
            p = subprocess.run(["grep", "-c", "j\u00f6rg"] + files, capture_output=True)
            self.assertGreaterEqual(int(p.stdout.split(b":")[-1]), 2)
            summary = summaries(srv)[0]
            self.assertIn("from=<j\u00f6rg@m\u00fcller.example>", summary)
            self.assertIn("result=aborted reason=\"QUIT\"", summary)


class SummaryTest(unittest.TestCase):

    def test_one_summary_per_transaction_found_by_ip(self):
        with Server(conf={"trusted_networks": "10.0.0.0/8"}, receivelog=True) as srv:
            c = Client(srv)
            open_data(c)
            c.send(b"hi\r\n.\r\n")
            code, lines = c.reply()
            self.assertEqual(code, 250)
            qid = lines[0].rsplit("id=", 1)[1]
            c.cmd("MAIL FROM:<r@b.example>")
            self.assertEqual(c.cmd("RCPT TO:<far@remote.example>")[0], 550)
            self.assertEqual(c.cmd("RCPT TO:<u@example.test>")[0], 250)
            c.cmd("RSET")
            c.cmd("MAIL FROM:<t@b.example>")
            c.cmd("RCPT TO:<u@example.test>")
            c.cmd("DATA")
            c.send(b"unfinished\r\n")
            c.close()  # the client goes away in the middle of the data
            self.assertTrue(wait_log(srv, "closesocket()"))
            sums = summaries(srv)
            self.assertEqual(len(sums), 3, sums)
            self.assertRegex(sums[0], r"Transaction summary: client=127\.0\.0\.1 "
                                      r"helo=client\.example tls=- auth=- from=<a@b\.example> "
                                      r"rcpts=1 rcpts_refused=0 size=4 result=queued id=%s$" % qid)
            self.assertRegex(sums[1], r"from=<r@b\.example> rcpts=1 rcpts_refused=1 size=0 "
                                      r'result=aborted reason="RSET"$')
            self.assertRegex(sums[2], r"from=<t@b\.example> rcpts=1 rcpts_refused=0 size=12 "
                                      r'result=aborted reason="client gone"$')


if __name__ == "__main__":
    unittest.main()
