"""harness.py - start the real mxringd on loopback for end-to-end tests.

Server(conf={...}) writes a configuration into a fresh temporary folder
(workdir inside it), starts the binary named by $MXRINGD (default
build/mxringd) on a free loopback port, waits until it accepts, and stops it
(SIGTERM, then SIGKILL) on exit. Every test gets its own server.

base= puts that temporary folder under another parent (e.g. /var/tmp for
tests that need a real disk rather than tmpfs); workdir= uses a folder made
by the test (e.g. a mounted file system) as the workdir, which close() then
leaves alone. A Server can be started again after stop() or kill9() on the
same workdir (restart and recovery tests). env= adds variables to the
server's environment (e.g. an LD_PRELOAD shim)."""
import os
import signal
import socket
import subprocess
import tempfile
import time
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.path.abspath(os.environ.get("MXRINGD", os.path.join(ROOT, "build", "mxringd")))


def free_port():
    """A loopback TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One mxringd process with its own workdir and port."""

    def __init__(self, conf=None, receivelog=False, files=None, base=None, workdir=None, env=None):
        self.env = dict(os.environ, **env) if env else None
        self.dir = tempfile.mkdtemp(prefix="mxring-e2e-", dir=base)
        if workdir is None:
            self.workdir = os.path.join(self.dir, "var")
            os.makedirs(self.workdir)
        else:
            self.workdir = workdir
        if receivelog:
            os.makedirs(os.path.join(self.workdir, "receivelog"))
        self.port = free_port()
        self.conf = {
            "hostname": "mx.test",
            "listen": "127.0.0.1:%d" % self.port,
            "workdir": self.workdir,
            "workers": "2",
            "local_domains": "example.test, example.org",
            "max_sessions": "500",
            "timeout_command": "30",
            "timeout_data": "60",
            "journal_segment_size": "1M",
        }
        for name, text in (files or {}).items():
            path = os.path.join(self.dir, name)
            with open(path, "w") as f:
                f.write(text)
            self.conf[name.replace(".", "_")] = path
        self.conf.update(conf or {})
        self.conf_path = os.path.join(self.dir, "mxringd.conf")
        self.write_conf()
        self.proc = None
        self.err = None
        self.stderr_path = os.path.join(self.dir, "stderr.txt")

    def path(self, name):
        return os.path.join(self.dir, name)

    def write_conf(self):
        with open(self.conf_path, "w") as f:
            for k, v in self.conf.items():
                f.write("%s = %s\n" % (k, v))

    def start(self, wait=True):
        """Start mxringd; with wait, until it is ready. A restart on the same
        port may find it still taken for a moment: the kernel releases the
        listeners an exited process's io_uring rings held asynchronously, so
        a start that fails with the listen address in use is tried again for
        up to 3 s (only when waiting: the tests of that error do not wait)."""
        deadline = time.time() + 3
        while True:
            if self.err:
                self.err.close()
            self.err = open(self.stderr_path, "wb")
            self.proc = subprocess.Popen([BINARY, "-c", self.conf_path], stdout=self.err,
                                         stderr=self.err, cwd=self.dir, env=self.env)
            if not wait:
                return self
            try:
                self.wait_ready()
                return self
            except RuntimeError:
                in_use = "listen 127.0.0.1:%d: Address already in use" % self.port
                if self.proc.poll() is None or in_use not in self.stderr() or \
                        time.time() > deadline:
                    raise
                time.sleep(0.2)

    def wait_ready(self, timeout=10):
        """Wait for the "ready" line on stderr (no probe connection, so the
        first session a test sees is its own)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mxringd exited %d: %s" % (self.proc.returncode, self.stderr()))
            if " ready, " in self.stderr():
                return
            time.sleep(0.02)
        raise RuntimeError("mxringd did not start: " + self.stderr())

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=15):
        """SIGTERM and wait; returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("mxringd did not stop within %ds after SIGTERM" % timeout)

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def queue_files(self, sub="queue", settle=0.15, timeout=5, expect=0):
        """The files in <sub>/new once the listing has settled. The 250 goes
        out when the message is durable in the journal; the materializer
        writes its new/ file a moment later (off the reply path), so wait
        until the listing has stopped changing for `settle` seconds, and
        (expect) until at least that many files are there, up to 30 s."""
        d = os.path.join(self.workdir, sub, "new")
        deadline = time.time() + (max(timeout, 30) if expect else timeout)
        last, since = None, time.time()
        while True:
            now = sorted(os.listdir(d)) if os.path.isdir(d) else []
            if now != last:
                last, since = now, time.time()
            elif ((time.time() - since >= settle and len(now) >= expect)
                  or time.time() > deadline):
                return now
            time.sleep(0.01)

    def wait_queue_file(self, qid, sub="queue", timeout=5):
        """The path of <sub>/new/<qid> once the materializer has written it."""
        path = os.path.join(self.workdir, sub, "new", qid)
        deadline = time.time() + timeout
        while not os.path.exists(path) and time.time() < deadline:
            time.sleep(0.005)
        return path

    def read_queue(self, qid):
        return parse_queue_file(self.wait_queue_file(qid))

    def connect(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return s

    def sanitizer_report(self):
        """The first sanitizer report in stderr, or None."""
        text = self.stderr()
        for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer"):
            i = text.find(mark)
            if i >= 0:
                return text[max(0, i - 200):i + 3000]
        return None

    def close(self):
        try:
            self.stop()
            report = self.sanitizer_report()
            if report:
                raise AssertionError("sanitizer report from mxringd:\n" + report)
        finally:
            if self.err:
                self.err.close()
            if os.environ.get("KEEP_E2E_DIRS") is None:
                shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


def log_text(srv):
    """All receivelog day files of srv, concatenated in date order."""
    import glob
    out = ""
    for path in sorted(glob.glob(os.path.join(srv.workdir, "receivelog", "*", "*.log"))):
        with open(path, errors="replace") as f:
            out += f.read()
    return out


def wait_log(srv, needle, timeout=5):
    """Wait until needle appears in srv's receivelog; True if it did."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if needle in log_text(srv):
            return True
        time.sleep(0.05)
    return needle in log_text(srv)


def is_sanitized(path):
    """True when the binary carries AddressSanitizer (its RSS is not ours)."""
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


def status_kib(pid, field):
    """One kB field of /proc/PID/status, 0 when it cannot be read."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def parse_queue_file(path):
    """Parse a queue file; raises ValueError when it is incomplete."""
    with open(path, "rb") as f:
        data = f.read()
    head, sep, msg = data.partition(b"\n\n")
    if not sep:
        raise ValueError("no end of envelope block")
    lines = head.decode().split("\n")
    if lines[0] not in ("MXRING-QUEUE 1", "MXRING-QUEUE 2"):   # 2: with DSN lines
        raise ValueError("bad magic")
    env = {"rcpt": [], "magic": lines[0], "dsn": {}}
    for line in lines[1:]:
        key, _, val = line.partition(" ")
        if key == "rcpt":
            env["rcpt"].append(val)
        elif key in ("notify", "orcpt"):   # of the rcpt line above
            env["dsn"].setdefault(env["rcpt"][-1], {})[key] = val
        else:
            env[key] = val
    if int(env["size"]) != len(msg):
        raise ValueError("size %s but %d octets" % (env["size"], len(msg)))
    env["message"] = msg
    return env


class Client:
    """A raw SMTP client over a socket: send bytes, read whole replies."""

    def __init__(self, server, timeout=10):
        self.sock = server.connect(timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def reply(self):
        """One complete (possibly multi-line) reply as (code, [lines])."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed; partial %r lines %r" % (self.buf, lines))
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            line = line.decode(errors="replace")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), lines

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def closed(self, timeout=5):
        """True when the server has closed the connection (EOF)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def make_certs(*kinds):
    """A fresh folder with a test CA and server certificate from
    scripts/gen-test-cert.sh (kinds, e.g. "rsa", are passed on); the caller
    removes it with shutil.rmtree."""
    folder = tempfile.mkdtemp(prefix="mxring-certs-")
    subprocess.run([os.path.join(ROOT, "scripts", "gen-test-cert.sh"), folder] + list(kinds),
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return folder
