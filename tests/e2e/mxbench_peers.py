"""mxbench_peers.py - what the mxbench end-to-end tests share: running
build/mxbench (or $MXBENCH) and reading its --json line and --json-series
file, Postfix's smtp-sink on a loopback port, and small SMTP peers written
here: a responder that stalls every reply for 300 ms once a second, and
servers that reset, stay silent or refuse. All on 127.0.0.1, bounded."""
import asyncio
import json
import os
import shutil
import socket
import struct
import subprocess
import threading
import time

from harness import ROOT, free_port

MXBENCH = os.environ.get("MXBENCH", os.path.join(ROOT, "build", "mxbench"))
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
RUN_TIMEOUT = 120


def have_mxbench():
    return os.access(MXBENCH, os.X_OK)


def run_mxbench(port, *args, timeout=RUN_TIMEOUT):
    """Run mxbench against 127.0.0.1:port with --json; (exit status, the
    parsed JSON line or None, the whole output)."""
    if not have_mxbench():
        raise AssertionError("%s is missing: build it with `make mxbench`" % MXBENCH)
    cmd = [MXBENCH, "--server", "127.0.0.1:%d" % port, "--json"] + [str(a) for a in args]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    out = p.stdout.decode(errors="replace")
    lines = out.strip().splitlines()
    res = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    return p.returncode, res, out


def read_series(path):
    """The per-second lines and the summary line of a --json-series file."""
    secs, summary = [], None
    with open(path) as f:
        for line in f:
            obj = json.loads(line)
            if obj["type"] == "second":
                secs.append(obj)
            elif obj["type"] == "summary":
                summary = obj
    return secs, summary


class SmtpSink:
    """Postfix's smtp-sink on a free loopback port (stores nothing)."""

    def __init__(self, backlog=1000):
        self.port = free_port()
        cmd = [SMTP_SINK]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]     # smtp-sink refuses to run as root without it
        cmd += ["127.0.0.1:%d" % self.port, str(backlog)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError("smtp-sink ended: %r" % self.proc.stderr.read())
                time.sleep(0.05)
        raise AssertionError("smtp-sink did not start")

    def cpu_ticks(self):
        """utime + stime of the sink from /proc/PID/stat."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()


class AsyncPeer(threading.Thread):
    """An asyncio SMTP server in a background thread on a free port;
    subclasses give handle(reader, writer)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.t0 = time.monotonic()
        self.start()
        if not self.ready.wait(10):
            raise AssertionError("peer did not start")

    def run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self.guard, "127.0.0.1", self.port, backlog=512))
        self.ready.set()
        self.loop.run_forever()

    async def guard(self, reader, writer):
        try:
            await self.handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def close(self):
        def stop():
            self.server.close()
            self.loop.stop()
        self.loop.call_soon_threadsafe(stop)
        self.join(10)


class StallResponder(AsyncPeer):
    """Answers SMTP (PIPELINING offered, messages discarded) but holds every
    reply during the first STALL seconds of each second since it started:
    stalled 30 % of the time, as in issue 19."""
    STALL = 0.3

    async def reply(self, writer, text):
        phase = (time.monotonic() - self.t0) % 1.0
        if phase < self.STALL:
            await asyncio.sleep(self.STALL - phase)
        writer.write(text)
        await writer.drain()

    async def handle(self, reader, writer):
        await self.reply(writer, b"220 stall.test ESMTP\r\n")
        while True:
            line = await reader.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb == b"EHLO":
                await self.reply(writer, b"250-stall.test\r\n250 PIPELINING\r\n")
            elif verb == b"DATA":
                await self.reply(writer, b"354 go on\r\n")
                await reader.readuntil(b"\r\n.\r\n")
                await self.reply(writer, b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                await self.reply(writer, b"221 2.0.0 bye\r\n")
                return
            else:
                await self.reply(writer, b"250 2.1.0 ok\r\n")


class BadPeer(AsyncPeer):
    """Misbehaves by mode: "reset" (RST right after accepting), "silent"
    (never greets), "busy" (421 4.3.2 greeting)."""

    def __init__(self, mode):
        self.mode = mode
        super().__init__()

    async def handle(self, reader, writer):
        if self.mode == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif self.mode == "silent":
            await reader.read()     # until the client gives up
        else:
            writer.write(b"421 4.3.2 too busy, try later\r\n")
            await writer.drain()
