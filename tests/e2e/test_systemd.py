"""test_systemd.py - the service manager protocol (issue 18) without
systemd: the test binds a datagram socket, starts the real mxringd with
NOTIFY_SOCKET (and WATCHDOG_USEC) pointing at it, and checks the state
messages and their order across start, SIGHUP and SIGTERM, and that the
WATCHDOG=1 pings stop when the test hook stalls a worker. Socket activation
the way systemd does it: the test binds the listening socket and passes it
as descriptor 3 with LISTEN_FDS and LISTEN_PID (set by a shell to its own
pid right before it execs mxringd)."""
import contextlib
import os
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
import unittest

from harness import BINARY, Server, free_port


@contextlib.contextmanager
def environ(**kv):
    """Set environment variables for the child started inside the block."""
    old = {k: os.environ.get(k) for k in kv}
    os.environ.update(kv)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Notify:
    """A NOTIFY_SOCKET: an AF_UNIX datagram socket collecting messages."""

    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            self.name = "@mxring-test-%d-%d" % (os.getpid(), time.monotonic_ns())
            self.sock.bind("\0" + self.name[1:])
        else:
            self.dir = tempfile.mkdtemp(prefix="mxring-notify-")
            self.name = os.path.join(self.dir, "notify")
            self.sock.bind(self.name)
        self.msgs = []  # (monotonic time, message text)

    def drain(self, timeout=0.0):
        """Collect whatever arrives within timeout seconds."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            self.sock.settimeout(max(left, 0.001))
            try:
                data = self.sock.recv(4096)
            except (socket.timeout, BlockingIOError):
                if time.monotonic() >= end:
                    return
                continue
            self.msgs.append((time.monotonic(), data.decode()))

    def wait_for(self, needle, timeout=10):
        """Wait until a message holding needle arrived; returns it."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for _, m in self.msgs:
                if needle in m.split("\n"):
                    return m
            self.drain(0.05)
        raise AssertionError("no %r in %r" % (needle, [m for _, m in self.msgs]))

    def states(self):
        """The state assignments in arrival order (STATUS and pings left out)."""
        out = []
        for _, m in self.msgs:
            for a in m.split("\n"):
                if a.split("=")[0] in ("READY", "RELOADING", "STOPPING"):
                    out.append(a)
        return out

    def pings(self):
        return [t for t, m in self.msgs if m == "WATCHDOG=1"]

    def close(self):
        if self.sock.fileno() < 0:
            return
        self.sock.close()
        if not self.name.startswith("@"):
            os.unlink(self.name)
            os.rmdir(self.dir)


class SystemdNotifyTest(unittest.TestCase):
    def setUp(self):
        self.n = Notify()
        self.addCleanup(self.n.close)

    def start(self, **env):
        srv = Server()
        with environ(NOTIFY_SOCKET=self.n.name, **env):
            srv.start()
        self.addCleanup(srv.close)
        return srv

    def test_systemd_states_in_order_start_reload_stop(self):
        """READY=1 after the listeners work; RELOADING=1 then READY=1 for
        SIGHUP; STOPPING=1 for SIGTERM; STATUS= names the sessions."""
        srv = self.start()
        ready = self.n.wait_for("READY=1")
        self.assertIn("STATUS=ready", ready)
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
            c.sendmail("a@example.test", ["b@example.test"], "Subject: x\r\n\r\nhi\r\n")
        end = time.monotonic() + 5
        while not any(m.endswith(", 1 messages queued") for _, m in self.n.msgs) \
                and time.monotonic() < end:
            self.n.drain(0.05)
        srv.signal(signal.SIGHUP)
        self.n.wait_for("RELOADING=1")
        time.sleep(0.3)
        self.n.drain(0.2)
        srv.signal(signal.SIGTERM)
        self.n.wait_for("STOPPING=1")
        srv.proc.wait(10)
        self.n.drain(0.1)
        self.assertEqual(self.n.states(), ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"])
        reloading = [m for _, m in self.n.msgs if "RELOADING=1" in m][0]
        self.assertRegex(reloading, r"\nMONOTONIC_USEC=\d+$")
        statuses = [m for _, m in self.n.msgs if m.startswith("STATUS=")]
        self.assertTrue(statuses, self.n.msgs)
        self.assertRegex(statuses[-1], r"^STATUS=\d+ sessions, [0-9.]+ messages/s, 1 messages queued$")
        self.assertIn("configuration reloaded", [m for _, m in self.n.msgs if "RELOADING" not in m
                                                 and "READY=1" in m][1])

    def test_systemd_failed_reload_still_ready(self):
        """A bad configuration on SIGHUP: READY=1 again, STATUS says it failed."""
        srv = self.start()
        self.n.wait_for("READY=1")
        with open(srv.conf_path, "a") as f:
            f.write("no_such_key = 1\n")
        srv.signal(signal.SIGHUP)
        self.n.wait_for("RELOADING=1")
        end = time.monotonic() + 5
        while self.n.states().count("READY=1") < 2 and time.monotonic() < end:
            self.n.drain(0.05)
        again = [m for _, m in self.n.msgs if m.startswith("READY=1")]
        self.assertEqual(len(again), 2, self.n.msgs)
        self.assertIn("reload failed", again[1])

    def test_systemd_abstract_socket(self):
        """NOTIFY_SOCKET=@name is the abstract namespace."""
        self.n.close()
        self.n = Notify(abstract=True)
        self.addCleanup(self.n.close)
        self.start()
        self.n.wait_for("READY=1")

    def test_systemd_no_notify_socket_runs(self):
        """Without NOTIFY_SOCKET nothing is sent and the server still runs."""
        srv = Server()
        with environ(NOTIFY_SOCKET=""):
            srv.start()
        self.addCleanup(srv.close)
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
            self.assertEqual(c.noop()[0], 250)
        self.n.drain(0.5)
        self.assertEqual(self.n.msgs, [])


class SystemdWatchdogTest(unittest.TestCase):
    def test_systemd_watchdog_pings_stop_when_a_worker_stalls(self):
        """WATCHDOG_USEC=2 s: pings about every second while all threads
        move; after SIGUSR2 (test hook) stalls worker 0 no ping arrives for
        3 s, and the log names the stuck worker."""
        n = Notify()
        self.addCleanup(n.close)
        srv = Server()
        with environ(NOTIFY_SOCKET=n.name, WATCHDOG_USEC="2000000", MXRINGD_TEST_HOOKS="1"):
            srv.start()
        self.addCleanup(srv.close)
        n.wait_for("READY=1")
        n.drain(3.5)
        self.assertGreaterEqual(len(n.pings()), 2, n.msgs)
        srv.signal(signal.SIGUSR2)
        time.sleep(1.2)  # a ping already earned may still go out
        n.drain(0.0)
        before = len(n.pings())
        n.drain(3.0)
        self.assertEqual(len(n.pings()), before, "pings went on with worker 0 stalled")
        self.assertIn("watchdog: worker 0 made no progress", srv.stderr())
        self.assertEqual(srv.stop(), 0)  # the stalled worker still shuts down

    def test_systemd_watchdog_pid_other_process_no_pings(self):
        """WATCHDOG_PID naming another process: the watchdog is not ours."""
        n = Notify()
        self.addCleanup(n.close)
        srv = Server()
        with environ(NOTIFY_SOCKET=n.name, WATCHDOG_USEC="400000", WATCHDOG_PID="1"):
            srv.start()
        self.addCleanup(srv.close)
        n.wait_for("READY=1")
        n.drain(2.5)
        self.assertEqual(n.pings(), [])


def start_activated(srv, sock, pid="$$"):
    """Start srv's mxringd with sock passed as descriptor 3 (LISTEN_FDS=1,
    LISTEN_PID=pid: by default the shell's own pid, which exec keeps)."""
    script = ('exec 3<&%d; export LISTEN_PID=%s LISTEN_FDS=1; exec "$0" -c "$1"'
              % (sock.fileno(), pid))
    srv.err = open(srv.stderr_path, "wb")
    # bash, not sh: dash's `exec 3<&N` takes only one-digit descriptors, and
    # the socket's number is 10 or more when the test process holds many
    srv.proc = subprocess.Popen(["/bin/bash", "-c", script, BINARY, srv.conf_path],
                                stdout=srv.err, stderr=srv.err, cwd=srv.dir,
                                pass_fds=(sock.fileno(),))
    return srv


def listening(port):
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.listen(16)
    return s


class SocketActivationTest(unittest.TestCase):
    def test_systemd_socket_activation_serves_passed_socket(self):
        """The passed socket serves the listen address (both workers accept
        on their dups of it); mxringd binds nothing itself (the port is
        held without SO_REUSEPORT, so binding it would fail) and stops
        cleanly."""
        srv = Server(receivelog=True)
        self.addCleanup(srv.close)
        sock = listening(srv.port)
        self.addCleanup(sock.close)
        start_activated(srv, sock).wait_ready()
        self.assertIn("listen 127.0.0.1:%d: the socket passed by systemd (LISTEN_FDS)" % srv.port,
                      srv.stderr())
        sock.close()  # only mxringd's dups are left
        for i in range(4):
            with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
                c.sendmail("a@example.test", ["b@example.test"], "Subject: s%d\r\n\r\nx\r\n" % i)
        self.assertEqual(len(srv.queue_files()), 4)
        self.assertEqual(srv.stop(), 0)

    def test_systemd_socket_activation_other_pid_ignored(self):
        """LISTEN_PID of another process: the sockets are not ours, so
        mxringd binds the address itself, which the test's socket holds."""
        srv = Server()
        self.addCleanup(srv.close)
        sock = listening(srv.port)
        self.addCleanup(sock.close)
        start_activated(srv, sock, pid="1")
        self.assertEqual(srv.proc.wait(10), 2)
        self.assertIn("listen 127.0.0.1:%d: Address already in use" % srv.port, srv.stderr())

    def test_systemd_socket_activation_unmatched_socket_refused(self):
        """A passed socket that no listen address names: exit 2, naming it."""
        srv = Server()
        self.addCleanup(srv.close)
        other = free_port()
        sock = listening(other)
        self.addCleanup(sock.close)
        start_activated(srv, sock)
        self.assertEqual(srv.proc.wait(10), 2)
        self.assertIn("LISTEN_FDS: the socket passed as descriptor 3 ([127.0.0.1]:%d) matches no "
                      "listen address" % other, srv.stderr())


if __name__ == "__main__":
    unittest.main()
