"""milter_peer.py - a small milter for the e2e tests, speaking the milter
protocol (version 6) on a loopback TCP port from a thread: it negotiates
the steps it is given, answers every command per its script, and records
what it was sent (commands, macros, headers, body) for the test to check.
Written from the protocol description, for testing only."""
import socket
import struct
import threading


class MilterPeer:
    """script: dict stage-command -> list of (cmd, data) replies, or a
    function of the command's data returning that list; every command
    defaults to continue. hang: a command letter after which the milter
    stops answering. quit_nc: answer SMFIC_QUIT_NC by waiting for a new
    negotiation on the same connection (as libmilter does); else it
    closes. connections counts the connections accepted."""

    def __init__(self, script=None, actions=0x3F, proto=0, hang=None, progress_at=None,
                 quit_nc=True):
        self.script = script or {}
        self.quit_nc = quit_nc
        self.connections = 0
        self.actions, self.proto = actions, proto
        self.hang, self.progress_at = hang, progress_at
        self.seen = []          # (cmd, data) of every packet received
        self.headers = []       # (name, value)
        self.body = b""
        self.macros = {}
        self.macros_at = {}     # stage command letter -> the macros sent with it
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def spec(self):
        return "inet:127.0.0.1:%d" % self.port

    def serve(self):
        self.sock.settimeout(0.2)
        while not self.stop_ev.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    @staticmethod
    def recv_exact(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    @staticmethod
    def send(conn, cmd, data=b""):
        conn.sendall(struct.pack(">I", len(data) + 1) + cmd.encode() + data)

    def session(self, conn):
        conn.settimeout(30)
        try:
            while True:
                n = struct.unpack(">I", self.recv_exact(conn, 4))[0]
                pkt = self.recv_exact(conn, n)
                cmd, data = chr(pkt[0]), pkt[1:]
                self.seen.append((cmd, data))
                if not self.answer(conn, cmd, data):
                    return
        except (EOFError, OSError):
            pass
        finally:
            conn.close()

    def answer(self, conn, cmd, data):
        if cmd == "O":
            self.send(conn, "O", struct.pack(">III", 6, self.actions, self.proto))
            return True
        if cmd == "D":
            parts = data[1:].split(b"\0")
            at = self.macros_at.setdefault(chr(data[0]), {})
            for k, v in zip(parts[0::2], parts[1::2]):
                self.macros[k.decode()] = at[k.decode()] = v.decode()
            return True
        if cmd == "K":
            return self.quit_nc
        if cmd == "Q":
            return False
        if cmd == "A":
            return True
        if cmd == "L":
            name, value = data.split(b"\0")[:2]
            self.headers.append((name.decode(), value.decode()))
        if cmd == "B":
            self.body += data
        if self.hang == cmd:
            self.stop_ev.wait(60)
            return False
        if self.progress_at == cmd:
            for _ in range(3):
                self.stop_ev.wait(0.4)
                self.send(conn, "p")
        replies = self.script.get(cmd, [("c", b"")])
        if callable(replies):
            replies = replies(data)
        for rcmd, rdata in replies:
            self.send(conn, rcmd, rdata)
        return True

    def close(self):
        self.stop_ev.set()
        self.sock.close()
