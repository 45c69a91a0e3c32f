"""test_powerloss.py - nothing acknowledged is lost when the power goes (issue 11).

The workdir is an ext4 file system on a loop device. Several smtplib clients
send unique messages and record every queue id the server acknowledges; at a
random moment the file system is cut without flushing its log
(`xfs_io -x -c shutdown`, FS_IOC_SHUTDOWN as xfstests simulates a power cut:
whatever was not durable is lost), mxringd is killed with -9, the file
system is unmounted and mounted again, and mxringd is started on the same
workdir to run its recovery. Then every acknowledged message must be in
queue/new, byte for byte what the client sent, no file may be partial and
no message may be there twice. Several rounds at different moments on the
same file system, and one round of kill -9 alone (no cut). Skipped only where
loop devices cannot be made or mounted, or xfs_io / mkfs.ext4 is missing
(scripts/deps.sh test installs xfsprogs and e2fsprogs).

The delivery round (issue 12) does the same while mxringd relays everything
to a Postfix smtp-sink on loopback: after the cut and the restart every
acknowledged message reaches the sink at least once (counted by Message-ID),
and the duplicates (redeliveries of messages whose "sent" was not durable
yet) stay bounded; their number is printed.

Env: POWERLOSS_SEED=N repeats the moments of a failed run."""
import hashlib
import os
import random
import re
import shutil
import smtplib
import subprocess
import tempfile
import threading
import time
import unittest

from dlv_peers import SmtpSink, queue_empty, wait_for
from harness import Server, parse_queue_file

IMAGE_MB = 1024     # sparse: only what is written takes space
CLIENTS = 8
RECOVERY_WAIT = 10   # seconds for queue/new to show every acknowledged message
DELIVERY_WAIT = 90   # seconds for the sink to hold every acknowledged message
ID_RE = re.compile(rb"id=([0-9A-F]{20})")
MSGID_RE = re.compile(rb"^Message-ID: <([^>\r\n]+)>\r$", re.M | re.I)
SINK_MSGID_RE = re.compile(rb"^Message-ID: <([^>\r\n]+)>\r?$", re.M | re.I)


def run(*cmd, check=True):
    """Run a command; its stripped stdout. Raises with stderr on failure."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if check and p.returncode != 0:
        raise RuntimeError("%s: rc %d: %s" % (" ".join(cmd), p.returncode,
                                               p.stderr.decode(errors="replace").strip()))
    return p.stdout.decode().strip()


class LoopFs:
    """A fresh ext4 file system in a sparse file under /var/tmp, on a loop
    device, mounted at a temporary folder. close() undoes everything that
    was done, whatever state it is in."""

    def __init__(self):
        self.image = self.dev = self.mnt = None
        self.mounted = False

    def make(self):
        """Create, attach, format and mount; raises unittest.SkipTest where
        the machine cannot (no root, no loop devices, no mount)."""
        for tool in ("losetup", "mkfs.ext4", "xfs_io", "mount", "umount"):
            if shutil.which(tool) is None:
                raise unittest.SkipTest("%s is missing (scripts/deps.sh test)" % tool)
        if os.geteuid() != 0:
            raise unittest.SkipTest("loop devices need root")
        fd, self.image = tempfile.mkstemp(prefix="mxring-powerloss-", suffix=".img",
                                          dir="/var/tmp")
        os.ftruncate(fd, IMAGE_MB << 20)
        os.close(fd)
        try:
            self.dev = run("losetup", "-f", "--show", self.image)
        except RuntimeError as e:
            raise unittest.SkipTest("cannot make a loop device: %s" % e)
        run("mkfs.ext4", "-q", "-F", self.dev)
        self.mnt = tempfile.mkdtemp(prefix="mxring-powerloss-mnt-", dir="/var/tmp")
        try:
            self.mount()
        except RuntimeError as e:
            raise unittest.SkipTest("cannot mount a loop device: %s" % e)

    def mount(self):
        run("mount", "-t", "ext4", self.dev, self.mnt)
        self.mounted = True

    def umount(self):
        """Unmount; retried briefly while something still holds a file."""
        for _ in range(50):
            if subprocess.run(["umount", self.mnt], stderr=subprocess.DEVNULL).returncode == 0:
                self.mounted = False
                return
            time.sleep(0.1)
        run("umount", self.mnt)
        self.mounted = False

    def cut(self):
        """FS_IOC_SHUTDOWN without the log flush: a power cut for this file system."""
        run("xfs_io", "-x", "-c", "shutdown", self.mnt)

    def close(self):
        if self.mounted:
            if subprocess.run(["umount", self.mnt], stderr=subprocess.DEVNULL).returncode:
                subprocess.run(["umount", "-l", self.mnt], stderr=subprocess.DEVNULL)
            self.mounted = False
        if self.dev:
            subprocess.run(["losetup", "-d", self.dev], stderr=subprocess.DEVNULL)
            self.dev = None
        if self.mnt:
            try:
                os.rmdir(self.mnt)
            except OSError:
                pass
        if self.image:
            try:
                os.unlink(self.image)
            except OSError:
                pass


class Ledger:
    """What the clients sent and what the server acknowledged, over all rounds."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent = {}     # Message-ID -> (length, sha256 of the stored message part)
        self.acked = {}    # queue id -> Message-ID
        self.after_cut = 0

    def add_sent(self, msgid, data):
        with self.lock:
            self.sent[msgid] = (len(data), hashlib.sha256(data).digest())

    def add_ack(self, qid, msgid, cut_done):
        with self.lock:
            if qid in self.acked:
                raise AssertionError("queue id %s acknowledged twice" % qid)
            self.acked[qid] = msgid
            if cut_done:
                self.after_cut += 1


def make_message(rng, msgid):
    """A message with CRLF lines, some starting with '.' (dot-stuffing),
    mostly small and now and then large."""
    size = rng.choice([300, 1500, 4000, 4000, 4000, 16000, 60000, 250000])
    lines = [b"From: load@client.test", b"To: u@example.test",
             b"Message-ID: <%s>" % msgid.encode(), b"Subject: powerloss " + msgid.encode(), b""]
    total = 0
    while total < size:
        n = rng.randint(1, 76)
        line = rng.randbytes(n).hex().encode()[:n]
        if rng.random() < 0.05:
            line = b"." + line
        lines.append(line)
        total += len(line) + 2
    return b"\r\n".join(lines) + b"\r\n"


class Load:
    """CLIENTS threads, each on its own reused connection, sending until
    stop(); every 250 goes into the ledger with its queue id."""

    def __init__(self, port, ledger, tag, seed):
        self.port, self.ledger, self.tag = port, ledger, tag
        self.stopping = threading.Event()
        self.cut_done = threading.Event()
        self.errors = []
        self.threads = [threading.Thread(target=self.client, args=(i, seed + i), daemon=True)
                        for i in range(CLIENTS)]

    def start(self):
        for t in self.threads:
            t.start()

    def client(self, n, seed):
        rng = random.Random(seed)
        seq = 0
        while not self.stopping.is_set():
            try:
                smtp = smtplib.SMTP("127.0.0.1", self.port, timeout=5)
            except OSError:
                time.sleep(0.05)
                continue
            try:
                smtp.ehlo("client.test")
                while not self.stopping.is_set():
                    seq += 1
                    msgid = "%s-c%d-%d@powerloss.test" % (self.tag, n, seq)
                    data = make_message(rng, msgid)
                    self.ledger.add_sent(msgid, data)
                    smtp.mail("load@client.test")
                    smtp.rcpt("u@example.test")
                    code, text = smtp.data(data)
                    if code == 250:
                        m = ID_RE.search(text)
                        if not m:
                            self.errors.append("250 without a queue id: %r" % text)
                            return
                        self.ledger.add_ack(m.group(1).decode(), msgid, self.cut_done.is_set())
            except (OSError, smtplib.SMTPException):
                pass   # the server is gone or answers 4xx: reconnect or stop
            finally:
                try:
                    smtp.close()
                except OSError:
                    pass

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(15)
            if t.is_alive():
                self.errors.append("a client thread did not stop")


class PowerLossTest(unittest.TestCase):

    def setUp(self):
        self.fs = LoopFs()
        self.addCleanup(self.fs.close)
        self.fs.make()
        self.workdir = os.path.join(self.fs.mnt, "var")
        os.mkdir(self.workdir)
        run("sync", "-f", self.workdir)
        self.srv = Server({"max_sessions_per_ip": "0"}, base="/var/tmp", workdir=self.workdir)
        self.addCleanup(self.srv.close)
        self.ledger = Ledger()
        self.logs = []
        seed = os.environ.get("POWERLOSS_SEED")
        self.seed = int(seed) if seed else random.SystemRandom().randrange(1 << 30)
        print("\npowerloss: POWERLOSS_SEED=%d" % self.seed, flush=True)

    def start_server(self):
        self.srv.start()
        self.logs.append(self.srv.stderr)

    def stderr_all(self):
        return "\n--- restart ---\n".join(f() if callable(f) else f for f in self.logs)

    def keep_stderr(self):
        """Freeze the stderr of the run that just ended (start() truncates it)."""
        if self.logs and callable(self.logs[-1]):
            self.logs[-1] = self.logs[-1]()

    def load_then(self, tag, delay, crash):
        """Run the load for delay seconds, then crash(load); returns the load."""
        load = Load(self.srv.port, self.ledger, tag, self.seed * 100 + len(self.logs))
        load.start()
        time.sleep(delay)
        crash(load)
        load.stop()
        self.assertEqual(load.errors, [], "client errors")
        return load

    def recover_and_check(self, label):
        """Start mxringd again, let it recover until queue/new holds every
        acknowledged message (bounded), stop it cleanly, check queue/new."""
        self.start_server()
        new = os.path.join(self.workdir, "queue", "new")
        deadline = time.time() + RECOVERY_WAIT
        while time.time() < deadline:
            have = set(os.listdir(new)) if os.path.isdir(new) else set()
            if all(q in have for q in self.ledger.acked):
                break
            time.sleep(0.1)
        self.assertEqual(self.srv.stop(), 0, "mxringd did not stop cleanly after recovery: "
                         + self.srv.stderr()[-2000:])
        self.keep_stderr()
        self.check_queue(label)

    def check_queue(self, label):
        """Every file in new/ complete, known, byte-exact and unique; every
        acknowledged queue id there with its own message."""
        new = os.path.join(self.workdir, "queue", "new")
        names = sorted(os.listdir(new)) if os.path.isdir(new) else []
        seen = {}
        problems = []
        for qid in names:
            try:
                env = parse_queue_file(os.path.join(new, qid))
            except (ValueError, KeyError, UnicodeDecodeError) as e:
                problems.append("%s: partial or malformed: %s" % (qid, e))
                continue
            if env.get("id") != qid:
                problems.append("%s: id line says %r" % (qid, env.get("id")))
            msg = env["message"]
            m = MSGID_RE.search(msg)
            if not m or m.group(1).decode() not in self.ledger.sent:
                problems.append("%s: a message nobody sent (Message-ID %r)" % (
                    qid, m.group(1) if m else None))
                continue
            msgid = m.group(1).decode()
            if msgid in seen:
                problems.append("%s: duplicate of %s (Message-ID %s)" % (qid, seen[msgid], msgid))
            seen[msgid] = qid
            length, digest = self.ledger.sent[msgid]
            body, prefix = msg[len(msg) - length:], msg[:len(msg) - length]
            if len(msg) < length or hashlib.sha256(body).digest() != digest:
                problems.append("%s: content differs from what was sent (%s)" % (qid, msgid))
            elif not prefix.startswith(b"Received: ") or any(
                    line[:1] not in (b" ", b"\t") for line in prefix.split(b"\r\n")[1:-1]):
                problems.append("%s: unexpected bytes before the message: %r" % (qid, prefix[:200]))
        for qid, msgid in self.ledger.acked.items():
            if seen.get(msgid) != qid:
                problems.append("acknowledged %s (%s) lost: in new/ as %r" % (
                    qid, msgid, seen.get(msgid)))
        print("powerloss: %s: %d acknowledged so far (%d answered after a cut), %d in new/" % (
            label, len(self.ledger.acked), self.ledger.after_cut, len(names)), flush=True)
        if problems:
            self.fail("%s: %d problems:\n%s\n\nmxringd stderr:\n%s" % (
                label, len(problems), "\n".join(problems[:30]), self.stderr_all()[-4000:]))

    def test_power_cut_under_load(self):
        """Rounds at different moments: cut, kill -9, remount, recover, check;
        then one round of kill -9 alone on the same file system."""
        t0 = time.time()
        rng = random.Random(self.seed)
        moments = [rng.uniform(0.2, 0.6), rng.uniform(0.6, 1.2), rng.uniform(1.2, 2.2)]
        for r, delay in enumerate(moments):
            label = "round %d (cut after %.2f s)" % (r + 1, delay)
            self.start_server()

            def crash(load):
                self.fs.cut()
                load.cut_done.set()
                time.sleep(0.1)   # answers to in-flight messages (451s) come back
                self.srv.kill9()
            self.load_then("r%d" % (r + 1), delay, crash)
            self.keep_stderr()
            self.fs.umount()
            self.fs.mount()
            self.recover_and_check(label)
        self.assertGreater(len(self.ledger.acked), 0, "no message was ever acknowledged")

        delay = rng.uniform(0.3, 1.5)
        self.start_server()
        self.load_then("k9", delay, lambda load: self.srv.kill9())
        self.keep_stderr()
        self.recover_and_check("kill -9 only (after %.2f s)" % delay)
        print("powerloss: %.1f s in all" % (time.time() - t0), flush=True)


class PowerLossDeliveryTest(PowerLossTest):
    """The same cut while mxringd also delivers to a smtp-sink on loopback."""

    def setUp(self):
        self.sink = SmtpSink()
        self.addCleanup(self.sink.close)
        super().setUp()
        self.srv.conf.update({"default_route": "smtp:[127.0.0.1]:%d tls=none" % self.sink.port,
                              "relay_retry_min": "1s", "relay_retry_max": "2s",
                              "queue_min_free_space": "0"})
        self.srv.write_conf()

    def sink_counts(self):
        """Message-ID -> how many times the sink received it."""
        counts = {}
        for _, _, body in self.sink.messages():
            m = SINK_MSGID_RE.search(body)
            if m:
                counts[m.group(1).decode()] = counts.get(m.group(1).decode(), 0) + 1
        return counts

    # the inherited rounds run once, in PowerLossTest (unittest collects
    # only callable test_* attributes)
    test_power_cut_under_load = None

    def test_power_cut_while_delivering(self):
        """Load + delivery, cut, kill -9, remount, restart: every acknowledged
        message delivered at least once, duplicates bounded."""
        rng = random.Random(self.seed)
        delay = rng.uniform(0.8, 2.0)
        self.start_server()

        def crash(load):
            self.fs.cut()
            load.cut_done.set()
            time.sleep(0.1)
            self.srv.kill9()
        self.load_then("d1", delay, crash)
        self.keep_stderr()
        before = self.sink_counts()
        self.fs.umount()
        self.fs.mount()
        self.start_server()
        want = set(self.ledger.acked.values())
        self.assertTrue(want, "no message was acknowledged before the cut")
        wait_for(lambda: want <= set(self.sink_counts()), DELIVERY_WAIT, 0.2)
        wait_for(lambda: queue_empty(self.srv), 10, 0.2)
        counts = self.sink_counts()
        self.assertEqual(self.srv.stop(), 0, self.srv.stderr()[-2000:])
        self.keep_stderr()
        missing = sorted(want - set(counts))
        unknown = sorted(set(counts) - set(self.ledger.sent))
        dups = sum(n - 1 for n in counts.values())
        print("powerloss delivery: cut after %.2f s: %d acknowledged, %d delivered before the "
              "cut, %d distinct delivered in all, %d duplicates (%d messages twice or more)" % (
                  delay, len(want), len(before), len(counts), dups,
                  sum(1 for n in counts.values() if n > 1)), flush=True)
        self.assertEqual(missing, [], "acknowledged but never delivered (%d):\n%s" % (
            len(missing), self.stderr_all()[-3000:]))
        self.assertEqual(unknown, [], "delivered messages nobody sent")
        # a message delivered again is one whose "sent" (or the removal of
        # its files) was not durable at the cut: at most those delivered
        # before it, never more than once each
        self.assertLessEqual(dups, len(before))
        self.assertTrue(all(n <= 2 for n in counts.values()), "a message delivered 3+ times")


if __name__ == "__main__":
    unittest.main()
