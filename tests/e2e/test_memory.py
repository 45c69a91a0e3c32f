"""test_memory.py - many large messages at once in bounded memory (issue 11).

COUNT sessions (asyncio, raw sockets on loopback) all reach DATA first, then
send their 20 MiB messages in 64 KiB pieces in lock step, so every one of them
is inside DATA at the same time. While they run, mxringd's VmRSS is sampled;
at the end its VmHWM is read. Every message must then be complete in
queue/new (waited for, bounded: a queue file may be written after
its 250): the `size` line matches, and the message part ends with exactly
the bytes that were sent (SHA-256 of what each client sent).

Two modes:
- default (MXRING_EXPECT_STREAMING unset): 20 messages; asserts completeness
  only and prints the peak resident memory. Today's server holds each
  message whole in memory (about 20 MiB per session), so the memory bound
  cannot hold yet.
- MXRING_EXPECT_STREAMING=1: the issue's real test, 200 concurrent 20 MiB
  messages (4 GiB through the queue, on /var/tmp), and peak RSS < 200 MB is
  asserted too (not under a sanitizer build, whose shadow memory and
  quarantine are not the server's own). scripts/run-tests.py (make test)
  switches it on for the normal build; about 40 s.
Env: MXRING_MEMORY_COUNT=N overrides the number of messages."""
import asyncio
import hashlib
import os
import re
import shutil
import threading
import time
import unittest

from harness import BINARY, Server, is_sanitized, parse_queue_file, status_kib

STREAMING = bool(os.environ.get("MXRING_EXPECT_STREAMING"))
COUNT = int(os.environ.get("MXRING_MEMORY_COUNT", "200" if STREAMING else "20"))
CHUNK = 64 << 10
CHUNKS = 320                    # 20 MiB of body per message
PEAK_LIMIT = 200 * 10**6        # bytes of resident memory
TIMEOUT = 900 if STREAMING else 300   # seconds for the whole exchange
ID_RE = re.compile(rb"^250 .*id=([0-9A-F]{20})\r\n", re.M)


def base_block():
    """CHUNK - 14 octets of complete CRLF lines, no line starting with '.'."""
    size, out, n = CHUNK - 14, [], 0
    while size - n >= 78:
        line = hashlib.sha256(b"%d" % n).hexdigest().encode() + b"0123456789"
        out.append(line + b"\r\n")
        n += len(line) + 2
    out.append(b"y" * (size - n - 2) + b"\r\n")
    block = b"".join(out)
    assert len(block) == size
    return block


BASE = base_block()


def chunk(i, j):
    """Piece j of message i: a 14-octet line naming it, then the base block."""
    return b"m%04d c%05d\r\n" % (i, j) + BASE


def header(i):
    return (b"From: big@client.test\r\nTo: u@example.test\r\n"
            b"Message-ID: <big-%d@memory.test>\r\nSubject: big %d\r\n\r\n" % (i, i))


class RssSampler(threading.Thread):
    """Samples VmRSS of a pid every 50 ms until stopped; keeps the maximum."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, threading.Event()

    def run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, status_kib(self.pid, "VmRSS") << 10)
            self.done.wait(0.05)


class Session:
    """One raw SMTP session over asyncio streams."""

    def __init__(self, i, reader, writer):
        self.i, self.r, self.w = i, reader, writer
        self.sha = hashlib.sha256()
        self.length = 0
        self.qid = None

    async def reply(self):
        """One whole reply (all its lines) as bytes."""
        out = b""
        while True:
            line = await self.r.readline()
            if not line:
                raise ConnectionError("session %d: closed after %r" % (self.i, out))
            out += line
            if len(line) < 4 or line[3:4] != b"-":
                return out

    async def expect(self, line, code):
        if line:
            self.w.write(line)
        text = await self.reply()
        if not text.startswith(code):
            raise AssertionError("session %d: %r answered %r" % (self.i, line, text))
        return text

    def send(self, data):
        """Queue data on the socket and count it into the checksum."""
        self.w.write(data)
        self.sha.update(data)
        self.length += len(data)


async def exchange(port, sessions):
    """Open COUNT sessions into DATA, send all messages in lock step, read
    the 250s; fills sessions with the finished Session objects."""
    async def open_one(i):
        r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 16)
        s = Session(i, r, w)
        await s.expect(None, b"220")
        await s.expect(b"EHLO client.test\r\n", b"250")
        await s.expect(b"MAIL FROM:<big@client.test> SIZE=%d\r\n" % (CHUNKS * CHUNK + 200), b"250")
        await s.expect(b"RCPT TO:<u@example.test>\r\n", b"250")
        await s.expect(b"DATA\r\n", b"354")
        return s
    sessions.extend(await asyncio.gather(*(open_one(i) for i in range(COUNT))))
    for s in sessions:
        s.send(header(s.i))
    for j in range(CHUNKS):
        for s in sessions:
            s.send(chunk(s.i, j))
        await asyncio.gather(*(s.w.drain() for s in sessions))
    for s in sessions:
        s.w.write(b".\r\n")

    async def finish(s):
        text = await s.reply()
        m = ID_RE.search(text)
        if not m:
            raise AssertionError("session %d: end of data answered %r" % (s.i, text))
        s.qid = m.group(1).decode()
        s.w.write(b"QUIT\r\n")
        await s.w.drain()
        s.w.close()
    await asyncio.gather(*(finish(s) for s in sessions))


class MemoryTest(unittest.TestCase):

    def test_concurrent_large_messages_bounded_memory(self):
        need = COUNT * (CHUNKS * CHUNK + 4096) * 1.1
        free = shutil.disk_usage("/var/tmp").free
        if free < need:
            self.skipTest("needs %.1f GB free on /var/tmp, has %.1f" % (need / 1e9, free / 1e9))
        srv = Server({"max_message_size": "25M", "max_sessions_per_ip": "0",
                      "timeout_data": "900", "timeout_command": "300"}, base="/var/tmp")
        self.addCleanup(srv.close)
        srv.start()
        rss0 = status_kib(srv.proc.pid, "VmRSS") << 10
        sampler = RssSampler(srv.proc.pid)
        sampler.start()
        sessions = []
        t0 = time.time()
        try:
            asyncio.run(asyncio.wait_for(exchange(srv.port, sessions), TIMEOUT))
            elapsed = time.time() - t0
            # the queue files may be materialised after the 250 (off the reply path)
            qids = set(s.qid for s in sessions)
            deadline = time.time() + 60
            while not qids <= set(srv.queue_files()) and time.time() < deadline:
                time.sleep(0.1)
            hwm = status_kib(srv.proc.pid, "VmHWM") << 10
        finally:
            sampler.done.set()
            sampler.join()
        peak = max(hwm, sampler.peak)
        print("\nmemory: %d x %.1f MiB concurrent in %.1f s: mxringd RSS %.1f MB at start, "
              "peak %.1f MB (VmHWM %.1f MB, max sampled VmRSS %.1f MB)%s" % (
                  COUNT, CHUNKS * CHUNK / 2**20, elapsed, rss0 / 1e6, peak / 1e6, hwm / 1e6,
                  sampler.peak / 1e6, "" if STREAMING else
                  " [bound not asserted: set MXRING_EXPECT_STREAMING=1]"), flush=True)
        self.assertEqual(srv.stop(), 0)

        qids = [s.qid for s in sessions]
        self.assertEqual(len(set(qids)), COUNT, "queue ids not distinct")
        self.assertEqual(sorted(srv.queue_files()), sorted(qids))
        for s in sessions:
            path = os.path.join(srv.workdir, "queue", "new", s.qid)
            env = parse_queue_file(path)   # raises unless `size` matches the file
            msg = env["message"]
            self.assertEqual(env["id"], s.qid)
            self.assertGreaterEqual(len(msg), s.length, "%s: shorter than sent" % s.qid)
            self.assertTrue(msg.startswith(b"Received: "), s.qid)
            self.assertEqual(hashlib.sha256(msg[len(msg) - s.length:]).hexdigest(),
                             s.sha.hexdigest(), "%s (session %d): content differs" % (s.qid, s.i))
            del msg, env
            os.unlink(path)   # free the disk as we go
        if STREAMING and not is_sanitized(BINARY):
            self.assertLess(peak, PEAK_LIMIT, "peak RSS %.1f MB with %d concurrent 20 MiB "
                            "messages" % (peak / 1e6, COUNT))


if __name__ == "__main__":
    unittest.main()
