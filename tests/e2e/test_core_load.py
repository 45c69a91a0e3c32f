"""test_core_load.py - end-to-end tests of the core receiver under load and
signals (issue 2): 100 concurrent clients, SIGTERM with idle and in-DATA
sessions, and the kill -9 durability of acknowledged messages."""
import os
import signal
import smtplib
import socket
import threading
import time
import unittest

from harness import Client, Server, parse_queue_file
import test_core as tc

SHUTDOWN = "421 4.3.2 mx.test Service shutting down, closing connection"


def body_for(tag):
    """A distinct, multi-line message for one sender thread."""
    return (b"Subject: %s\r\nMessage-Id: <%s@client.example>\r\n\r\n" % (tag, tag)
            + b"".join(b"%s line %d .\r\n" % (tag, i) for i in range(20))
            + b".starts with a dot\r\n")


def banner_after_stop(port):
    """True when a new connection to port gets any reply (it must not)."""
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=2)
    except ConnectionRefusedError:
        return False
    try:
        return c.recv(100) != b""
    except ConnectionResetError:
        return False
    finally:
        c.close()


class TestConcurrency(tc.ServerCase):

    def test_core_100_concurrent_clients(self):
        srv = self.start({"workers": "2", "max_sessions": "500"})
        nclients, per_client = 100, 2
        results = {}        # queue id -> (sender, rcpt, body)
        errors = []
        lock = threading.Lock()
        barrier = threading.Barrier(nclients, timeout=30)

        def run(i):
            try:
                s = smtplib.SMTP("127.0.0.1", srv.port, local_hostname="c%d.example" % i,
                                 timeout=30)
                barrier.wait()  # all 100 sessions open at once
                s.ehlo()
                for k in range(per_client):
                    tag = b"c%dm%d" % (i, k)
                    sender, rcpt = "s%d@b.example" % i, "u%d.%d@example.test" % (i, k)
                    self_check(s.mail(sender), 250)
                    self_check(s.rcpt(rcpt), 250)
                    code, msg = s.data(body_for(tag))
                    qid = tc.queue_id("%d %s" % (code, msg.decode()))
                    if qid is None:
                        raise AssertionError("client %d: %d %r" % (i, code, msg))
                    with lock:
                        if qid in results:
                            errors.append("duplicate queue id %s" % qid)
                        results[qid] = (sender, rcpt, body_for(tag))
                s.quit()
            except Exception as e:  # reported by the main thread
                with lock:
                    errors.append("client %d: %r" % (i, e))

        def self_check(reply, code):
            if reply[0] != code:
                raise AssertionError("expected %d, got %r" % (code, reply))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(nclients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertFalse(any(t.is_alive() for t in threads), "clients hung")
        self.assertEqual(errors, [])
        self.assertEqual(len(results), nclients * per_client)
        files = srv.queue_files()
        self.assertEqual(sorted(files), sorted(results))
        for qid, (sender, rcpt, body) in results.items():
            self.assert_stored(srv, qid, sender, [rcpt], body)


class TestSigterm(tc.ServerCase):

    def test_core_sigterm_idle_and_in_data(self):
        srv = self.start()
        idle = self.client(srv)
        tc.greet(idle)
        busy = self.client(srv)
        tc.greet(busy)
        self.assertEqual(busy.cmd("MAIL FROM:<a@b.example>")[0], 250)
        self.assertEqual(busy.cmd("RCPT TO:<u@example.test>")[0], 250)
        self.assertEqual(busy.cmd("DATA")[0], 354)
        body = b"Subject: grace\r\n\r\nfirst half\r\n" + b"second half\r\n"
        part = tc.stuff(body)
        busy.send(part[:30])
        t0 = time.time()
        srv.signal(signal.SIGTERM)
        idle.sock.settimeout(3)
        self.assertEqual(idle.reply(), (421, [SHUTDOWN]))
        self.assertTrue(idle.closed(3), "idle client not closed")
        self.assertLess(time.time() - t0, 3)
        # the transaction in progress may finish, then the session ends
        busy.send(part[30:])
        qid = tc.queue_id(busy.reply()[1][-1])
        self.assertIsNotNone(qid)
        self.assertEqual(busy.reply(), (421, [SHUTDOWN]))
        self.assertTrue(busy.closed(3))
        # no new connections are taken
        self.assertFalse(banner_after_stop(srv.port), "a new connection got a banner")
        self.assertEqual(srv.proc.wait(10), 0)
        self.assertLess(time.time() - t0, 10)
        self.assert_stored(srv, qid, "a@b.example", ["u@example.test"], body)

    def test_core_sigterm_grace_expires(self):
        """A transaction that does not finish within the grace period is cut
        off with 421 4.3.2, and nothing of it is queued."""
        srv = self.start()
        c = self.client(srv)
        tc.greet(c)
        self.assertEqual(c.cmd("MAIL FROM:<a@b.example>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<u@example.test>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(b"Subject: never ends\r\n\r\npart")
        t0 = time.time()
        srv.signal(signal.SIGTERM)
        c.sock.settimeout(9)
        self.assertEqual(c.reply(), (421, [SHUTDOWN]))
        self.assertTrue(c.closed(3))
        self.assertEqual(srv.proc.wait(10), 0)
        self.assertLess(time.time() - t0, 10)
        self.assertEqual(srv.queue_files(), [])

    def test_core_sigterm_no_clients(self):
        srv = self.start()
        t0 = time.time()
        srv.signal(signal.SIGTERM)
        self.assertEqual(srv.proc.wait(10), 0)
        self.assertLess(time.time() - t0, 5)


class TestKill9(unittest.TestCase):

    def test_core_kill9_durability(self):
        srv = tc.start()
        self.addCleanup(srv.close)
        acked = {}              # queue id -> body
        lock = threading.Lock()
        stop = threading.Event()
        counts = [0] * 20

        def run(i):
            n = 0
            while not stop.is_set():
                c = None
                try:
                    c = Client(srv, timeout=5)
                    tc.greet(c, name="k%d.example" % i)
                    while not stop.is_set():
                        body = b"Subject: k%dm%d\r\n\r\n" % (i, n) + b"payload %d\r\n" % n * 30
                        n += 1
                        last = tc.send_one(c, "k%d@b.example" % i, ["u@example.test"], body)
                        qid = tc.queue_id(last)
                        if qid:
                            with lock:
                                acked[qid] = body
                                counts[i] += 1
                except (OSError, ConnectionError, AssertionError, ValueError):
                    if not stop.is_set():
                        time.sleep(0.01)
                finally:
                    if c is not None:
                        c.close()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        time.sleep(2)
        srv.kill9()             # while every thread is still sending
        stop.set()
        for t in threads:
            t.join(15)
        self.assertFalse(any(t.is_alive() for t in threads))
        self.assertGreater(len(acked), 20, "too few messages to make the test meaningful")
        new = os.path.join(srv.workdir, "queue", "new")
        tmp = os.path.join(srv.workdir, "queue", "tmp")
        # a file the materializer was writing at the kill stays in tmp/
        with open(os.path.join(tmp, "PARTIALLEFTOVER"), "wb") as f:
            f.write(b"MXRING-QUEUE 1\nid PARTIAL")
        # an acknowledged message may still be only in the journal: the
        # restart recovers it into new/ before accepting anyone
        again = Server({"workdir": srv.workdir})
        self.addCleanup(again.close)
        again.start()
        self.assertEqual(os.listdir(tmp), [])
        present = set(os.listdir(new))
        missing = sorted(set(acked) - present)
        self.assertEqual(missing, [], "acknowledged but not in queue/new after recovery")
        for name in present:   # every file in new/ is complete, acknowledged or not
            env = parse_queue_file(os.path.join(new, name))
            self.assertEqual(env["id"], name)
            if name in acked:
                _, rest = tc.split_received(env["message"])
                self.assertEqual(rest, acked[name])
        c = Client(again)
        self.addCleanup(c.close)
        tc.greet(c)
        self.assertIsNotNone(tc.queue_id(tc.send_one(c, "a@b.example", ["u@example.test"],
                                                     b"Subject: again\r\n\r\nx\r\n")))


if __name__ == "__main__":
    unittest.main()
