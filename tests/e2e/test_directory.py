"""End-to-end tests of the recipient directory: users, groups, aliases and
lists, User unknown, relay control from trusted and untrusted clients, the
seed's status lines in receivelog, and SIGHUP reloads with clients connected."""
import os
import signal
import socket
import subprocess
import time
import unittest

from harness import log_text, wait_log, BINARY, Client, Server

USERS = ("alice@example.test:$6$saltsalt$K2Zq2eWkGvpaX0i0wHn3fY3Zp4oJ6u2Jx5cQ1eq7jN3iJQ6rE7uH0zTqH9D1sBq2pV3l0w8bA9tE5yR1cG6dK/\n"
         "Bob@Example.ORG:$y$j9T$abcdefghijklmnopqrstu.$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP\n")
GROUPS = "staff@example.test: alice@example.test, Bob@example.org\n"
ALIASES = "# the postmaster goes to alice\npostmaster@example.test: alice@example.test\n"
LISTS = "news@example.test: alice@example.test, someone@remote.example\n"
FILES = {"users.file": USERS, "groups.file": GROUPS, "aliases.file": ALIASES,
         "lists.file": LISTS}


def dir_server(**kw):
    conf = kw.pop("conf", {})
    conf.update({"users_file": None, "groups_file": None, "aliases_file": None,
                 "lists_file": None})
    srv = Server(receivelog=kw.pop("receivelog", True), conf={})
    for name, text in FILES.items():
        path = srv.path(name)
        with open(path, "w") as f:
            f.write(text)
        srv.conf[name.replace(".file", "_file")] = path
    srv.conf.update({k: v for k, v in conf.items() if v is not None})
    srv.write_conf()
    return srv


def rcpt(c, addr):
    return c.cmd("RCPT TO:<%s>" % addr)


class DirectoryTest(unittest.TestCase):

    def open(self, srv):
        c = Client(srv)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO client.example")[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<sender@remote.example>")[0], 250)
        return c

    def test_every_kind_and_user_unknown(self):
        srv = dir_server().start()
        try:
            c = self.open(srv)
            self.assertEqual(rcpt(c, "alice@example.test"),
                             (250, ["250 2.1.5 <alice@example.test>... Recipient ok."]))
            self.assertEqual(rcpt(c, "BOB@example.org")[0], 250)       # case-insensitive
            self.assertEqual(rcpt(c, "staff@EXAMPLE.test")[0], 250)    # group
            self.assertEqual(rcpt(c, "postmaster@example.test")[0], 250)  # alias
            self.assertEqual(rcpt(c, "news@example.test")[0], 250)     # list
            self.assertEqual(rcpt(c, "nobody@example.test"),
                             (550, ["550 5.1.1 <nobody@example.test>... User unknown."]))
            self.assertEqual(c.cmd("DATA")[0], 354)
            c.send("Subject: dir\r\n\r\nhello\r\n.\r\n")
            code, lines = c.reply()
            self.assertEqual(code, 250)
            qid = lines[0].split("id=")[1]
            env = srv.read_queue(qid)
            self.assertEqual(env["rcpt"], ["alice@example.test", "BOB@example.org",
                                           "staff@EXAMPLE.test", "postmaster@example.test",
                                           "news@example.test"])
            c.cmd("QUIT")
            c.close()
            self.assertTrue(wait_log(srv, "closesocket()"))
            log = log_text(srv)
            for kind in ("Users", "Groups", "Aliases", "Lists"):
                self.assertIn("user check status(2) = found %s\n" % kind, log)
            self.assertIn("user check status(1) = found local group (0)\n", log)
            self.assertIn("user check status(1) = found local group (1)\n", log)
            self.assertIn("match!!\n", log)
            self.assertIn("user check status(2) = not found\n", log)
            self.assertIn("RCPT refused: <nobody@example.test> User unknown", log)
        finally:
            srv.close()

    def test_only_refused_recipients_then_data(self):
        srv = dir_server().start()
        try:
            c = self.open(srv)
            self.assertEqual(rcpt(c, "ghost@example.test")[0], 550)
            self.assertEqual(c.cmd("DATA")[0], 554)
            c.close()
        finally:
            srv.close()

    def test_relay_untrusted_denied_trusted_allowed(self):
        srv = dir_server(conf={"trusted_networks": "10.0.0.0/8"}).start()
        try:
            c = self.open(srv)
            self.assertEqual(rcpt(c, "x@remote.example"),
                             (550, ["550 5.7.1 <x@remote.example>... Relaying denied."]))
            c.close()
            self.assertTrue(wait_log(srv, "relay check = denied: client [127.0.0.1] not in "
                                          "trusted_networks, not authenticated"))
        finally:
            srv.close()
        srv = dir_server().start()  # default trusted_networks has 127.0.0.0/8
        try:
            c = self.open(srv)
            self.assertEqual(rcpt(c, "x@remote.example")[0], 250)
            c.close()
            self.assertTrue(wait_log(srv, "relay check = allowed: client [127.0.0.1] in "
                                          "trusted_networks"))
        finally:
            srv.close()

    def test_relay_tricks_from_untrusted_client(self):
        srv = dir_server(conf={"trusted_networks": "10.0.0.0/8"}).start()
        try:
            c = self.open(srv)
            tricks = ["user%remote.example@example.test", "remote.example!user@example.test",
                      '"user@remote.example"@example.test', "@example.test:user@remote.example",
                      "user@remote.example.", "user@[192.0.2.1]", "user@remote.example@example.test"]
            for t in tricks:
                code, _ = rcpt(c, t)
                self.assertNotEqual(code, 250, "relay trick accepted: " + t)
            c.close()
        finally:
            srv.close()

    def test_no_directory_accepts_any_local_part(self):
        with Server(receivelog=True) as srv:
            c = Client(srv)
            c.reply()
            c.cmd("HELO x")
            c.cmd("MAIL FROM:<>")
            self.assertEqual(rcpt(c, "anything-at-all@example.test")[0], 250)
            c.close()

    def test_bad_directory_file_refused_at_start(self):
        srv = dir_server()
        with open(srv.conf["aliases_file"], "a") as f:
            f.write("broken line without colon\n")
        try:
            p = subprocess.run([BINARY, "-t", "-c", srv.conf_path], capture_output=True, timeout=10)
            self.assertEqual(p.returncode, 2)
            self.assertIn(b"aliases.file:3:", p.stderr)
            self.assertEqual(len(p.stderr.strip().split(b"\n")), 1)
        finally:
            srv.close()

    def test_sighup_adds_user_while_connected(self):
        srv = dir_server().start()
        try:
            c = self.open(srv)
            self.assertEqual(rcpt(c, "carol@example.test")[0], 550)
            with open(srv.conf["users_file"], "a") as f:
                f.write("carol@example.test:$6$x$y\n")
            srv.signal(signal.SIGHUP)
            deadline = time.time() + 5
            while "reloaded" not in srv.stderr() and time.time() < deadline:
                time.sleep(0.05)
            self.assertIn("reloaded", srv.stderr())
            # the transaction in progress keeps its snapshot ...
            self.assertEqual(rcpt(c, "carol@example.test")[0], 550)
            # ... the next one uses the new directory, on the same connection
            self.assertEqual(c.cmd("RSET")[0], 250)
            self.assertEqual(c.cmd("MAIL FROM:<s@remote.example>")[0], 250)
            self.assertEqual(rcpt(c, "carol@example.test")[0], 250)
            self.assertEqual(c.cmd("NOOP")[0], 250)
            # a broken file on reload keeps the old directory
            with open(srv.conf["users_file"], "a") as f:
                f.write("no colon here\n")
            srv.signal(signal.SIGHUP)
            deadline = time.time() + 5
            while "reload failed" not in srv.stderr() and time.time() < deadline:
                time.sleep(0.05)
            self.assertIn("reload failed", srv.stderr())
            c.cmd("RSET")
            c.cmd("MAIL FROM:<s@remote.example>")
            self.assertEqual(rcpt(c, "carol@example.test")[0], 250)
            c.cmd("QUIT")
            c.close()
        finally:
            srv.close()


if __name__ == "__main__":
    unittest.main()
