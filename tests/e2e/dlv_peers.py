"""dlv_peers.py - next hops for the delivery tests, all on loopback and
started by the tests: Postfix smtp-sink, a scripted Python SMTP hop (tempfail,
5xx per recipient, STARTTLS with a given certificate, slow replies), a
private Postfix instance and a private Dovecot LMTP server. Plus helpers to
read the delivery log and to wait for the queue to drain."""
import glob
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import harness


def dlog_text(srv):
    """All deliverylog day files of srv, concatenated."""
    out = ""
    for path in sorted(glob.glob(os.path.join(srv.workdir, "deliverylog", "*", "*.log"))):
        with open(path, errors="replace") as f:
            out += f.read()
    return out


def wait_for(pred, timeout=15, step=0.05):
    """Poll pred() until true or timeout; returns its last value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def wait_dlog(srv, needle, timeout=15):
    return wait_for(lambda: needle in dlog_text(srv), timeout)


def queue_empty(srv):
    """No message in new/ or active/ (state/ keeps finished messages' final
    states for a few seconds as tombstones)."""
    q = os.path.join(srv.workdir, "queue")
    return all(not os.listdir(os.path.join(q, d)) for d in ("new", "active")
               if os.path.isdir(os.path.join(q, d)))


def delivery_server(route, conf=None, files=None, deliverylog=True, receivelog=True):
    """An mxringd delivering everything to route (default_route) with short
    retries; the deliverylog folder made so the log is on."""
    c = {"default_route": route, "relay_retry_min": "1s", "relay_retry_max": "2s",
         "queue_min_free_space": "0"}
    c.update(conf or {})
    srv = harness.Server(conf=c, files=files, receivelog=receivelog)
    if deliverylog:
        os.makedirs(os.path.join(srv.workdir, "deliverylog"))
    return srv


class SmtpSink:
    """Postfix's smtp-sink on a free port, dumping each transaction into a
    file (X-Mail-Args / X-Rcpt-Args headers, then the message)."""

    def __init__(self, extra=None, lmtp=False):
        self.dir = tempfile.mkdtemp(prefix="mxring-sink-")
        os.chmod(self.dir, 0o777)
        self.port = harness.free_port()
        args = ["smtp-sink", "-m", "1000", "-d", os.path.join(self.dir, "%M.")]
        if os.geteuid() == 0:
            args += ["-u", "postfix"]
        if lmtp:
            args.append("-L")
        args += list(extra or []) + ["127.0.0.1:%d" % self.port, "1024"]
        self.log = open(os.path.join(self.dir, "..sink.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)
        if not wait_for(lambda: _accepts(self.port), 5):
            raise RuntimeError("smtp-sink did not start")

    def messages(self):
        """[(mail_args, [rcpts], message bytes)] of the dump files."""
        out = []
        for path in glob.glob(os.path.join(self.dir, "*")):
            if os.path.basename(path).startswith(".."):
                continue
            with open(path, "rb") as f:
                data = f.read()
            rcpts, mail, body, lines = [], "", b"", data.split(b"\n")
            for i, line in enumerate(lines):
                if line.startswith(b"X-Rcpt-Args: "):
                    rcpts.append(line[13:].decode().strip("<> \r"))
                elif line.startswith(b"X-Mail-Args: "):
                    mail = line[13:].decode()
                elif not line.startswith(b"X-"):
                    body = b"\n".join(lines[i:])
                    break
            out.append((mail, rcpts, body))
        return out

    def rcpt_count(self):
        return sum(len(m[1]) for m in self.messages())

    def close(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


class ScriptHop:
    """A scripted SMTP hop. Behaviour (attributes, may change while running):
      tempfail_first  the first N transactions get 451 4.3.0 at RCPT
      reject          recipients answered 550 5.1.1
      tls             an ssl.SSLContext: STARTTLS offered and done with it
      delay           seconds to wait before the reply to the final dot
      dsn             offer DSN (RFC 3461) in EHLO
    Received transactions are in .messages as dicts (mail, rcpts, data, tls,
    and the command lines as sent: mail_cmd, rcpt_cmds)."""

    def __init__(self, port=None, tls=None, pipelining=True, addr="127.0.0.1"):
        self.port = port or harness.free_port()
        self.tls = tls
        self.pipelining = pipelining
        self.tempfail_first = 0
        self.reject = set()
        self.delay = 0.0
        self.dsn = False
        self.transactions = 0
        self.connections = 0
        self.messages = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET,
                                  socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, self.port))
        self.sock.listen(128)
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        sess = _HopSession(self, c)
        try:
            sess.run()
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            for s in (sess.sock, c):
                try:
                    s.close()
                except OSError:
                    pass

    def rcpts(self):
        with self.lock:
            return [r for m in self.messages for r in m["rcpts"]]

    def close(self):
        self.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class _HopSession:
    """One connection of a ScriptHop."""

    def __init__(self, hop, sock):
        self.hop, self.sock, self.buf = hop, sock, b""
        self.is_tls = False

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ValueError("eof")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode(errors="replace")

    def say(self, text):
        self.sock.sendall((text + "\r\n").encode())

    def data(self):
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ValueError("eof in data")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            if line == b".":
                return out
            out += (line[1:] if line.startswith(b".") else line) + b"\r\n"

    def ehlo(self):
        ext = ["8BITMIME", "SMTPUTF8", "SIZE 100000000"]
        if self.hop.pipelining:
            ext.insert(0, "PIPELINING")
        if self.hop.tls and not self.is_tls:
            ext.append("STARTTLS")
        if self.hop.dsn:
            ext.append("DSN")
        lines = ["hop.test"] + ext
        for i, t in enumerate(lines):
            self.say("250%s%s" % ("-" if i < len(lines) - 1 else " ", t))

    def run(self):
        self.say("220 hop.test ESMTP script")
        mail, rcpts, failing, cmds = None, [], False, []
        while True:
            cmd = self.line()
            verb = cmd[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.ehlo()
            elif cmd.upper() == "STARTTLS" and self.hop.tls and not self.is_tls:
                self.say("220 2.0.0 go ahead")
                self.sock = self.hop.tls.wrap_socket(self.sock, server_side=True)
                self.is_tls, self.buf = True, b""
            elif verb == "MAIL":
                mail, rcpts, cmds = cmd[10:].split(">")[0].lstrip("<"), [], [cmd]
                with self.hop.lock:
                    self.hop.transactions += 1
                    failing = self.hop.transactions <= self.hop.tempfail_first
                self.say("250 2.1.0 ok")
            elif verb == "RCPT":
                addr = cmd[8:].split(">")[0].lstrip("<")
                if failing:
                    self.say("451 4.3.0 try again later")
                elif addr in self.hop.reject:
                    self.say("550 5.1.1 <%s>: no such user" % addr)
                else:
                    rcpts.append(addr)
                    cmds.append(cmd)
                    self.say("250 2.1.5 ok")
            elif verb == "DATA":
                if not rcpts:
                    self.say("554 5.5.1 no valid recipients")
                    continue
                self.say("354 go")
                body = self.data()
                if self.hop.delay:
                    time.sleep(self.hop.delay)
                with self.hop.lock:
                    self.hop.messages.append({"mail": mail, "rcpts": rcpts, "data": body,
                                              "tls": self.is_tls, "mail_cmd": cmds[0],
                                              "rcpt_cmds": cmds[1:]})
                self.say("250 2.0.0 queued")
            elif verb == "RSET":
                mail, rcpts = None, []
                self.say("250 2.0.0 ok")
            elif verb == "QUIT":
                self.say("221 2.0.0 bye")
                return
            else:
                self.say("502 5.5.1 unknown")


def tls_context(certdir, cert="cert.pem", key="key.pem"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(certdir, cert), os.path.join(certdir, key))
    return ctx


class PrivatePostfix:
    """A private Postfix instance (scripts/compare.sh's recipe): smtpd on a
    free loopback port, relaying everything to 127.0.0.1:relay_port. Needs
    root (the master runs as root and drops to the postfix user)."""

    DIR = "/tmp/mxring-e2e-postfix"   # fixed: main.cf names its etc/ once

    def __init__(self, relay_port):
        self.dir = self.DIR
        if os.path.exists(os.path.join(self.dir, "etc", "main.cf")):
            subprocess.run(["postfix", "-c", os.path.join(self.dir, "etc"), "stop"],
                           capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir, 0o755)
        self.port = harness.free_port()
        etc, data, q = (os.path.join(self.dir, d) for d in ("etc", "data", "queue"))
        for d in (etc, data, q):
            os.makedirs(d)
        shutil.chown(data, "postfix")
        with open(os.path.join(etc, "main.cf"), "w") as f:
            f.write(_PF_MAIN % {"q": q, "data": data, "dir": self.dir, "relay": relay_port})
        with open(os.path.join(etc, "master.cf"), "w") as f:
            f.write("127.0.0.1:%d inet n - n - - smtpd\n" % self.port + _PF_MASTER)
        self.etc = etc
        _allow_alternate(etc)
        r = subprocess.run(["postfix", "-c", etc, "start"], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("postfix did not start: " + r.stdout + r.stderr)
        if not wait_for(lambda: _accepts(self.port), 10):
            raise RuntimeError("postfix smtpd does not accept")

    def maillog(self):
        try:
            with open(os.path.join(self.dir, "maillog"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def close(self):
        subprocess.run(["postfix", "-c", self.etc, "stop"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def _allow_alternate(etc):
    """The default main.cf must name the alternate configuration folder."""
    if not os.path.exists("/etc/postfix/main.cf"):
        open("/etc/postfix/main.cf", "a").close()
    alt = subprocess.run(["postconf", "-c", "/etc/postfix", "-h", "alternate_config_directories"],
                         capture_output=True, text=True).stdout.strip()
    if etc not in alt:
        subprocess.run(["postconf", "-c", "/etc/postfix", "-e",
                        "alternate_config_directories = %s%s" % (alt + ", " if alt else "", etc)],
                       check=True)


_PF_MAIN = """compatibility_level = 3.6
queue_directory = %(q)s
data_directory = %(data)s
maillog_file = %(dir)s/maillog
maillog_file_prefixes = /tmp, /var
myhostname = postfix.test
mydomain = test
myorigin = postfix.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
local_recipient_maps =
relay_domains = example.test, b.example
relay_recipient_maps =
relay_transport = smtp:[127.0.0.1]:%(relay)d
default_transport = smtp:[127.0.0.1]:%(relay)d
smtp_tls_security_level = none
alias_maps =
alias_database =
biff = no
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
in_flow_delay = 0s
"""

_PF_MASTER = """pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Dovecot:
    """A private Dovecot serving only LMTP, on a loopback port and a unix
    socket, delivering into maildirs under its own folder (static userdb:
    every local part is a user, uid/gid of the dovecot user)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mxring-dovecot-")
        os.chmod(self.dir, 0o755)
        self.port = harness.free_port()
        self.sock = os.path.join(self.dir, "lmtp.sock")
        self.mail = os.path.join(self.dir, "mail")
        os.makedirs(self.mail)
        shutil.chown(self.mail, "dovecot", "dovecot")
        conf = os.path.join(self.dir, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(_DOVECOT_CONF % {"dir": self.dir, "port": self.port, "sock": self.sock,
                                     "mail": self.mail})
        self.log = open(os.path.join(self.dir, "stderr.txt"), "wb")
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", conf], stdout=self.log,
                                     stderr=self.log)
        if not wait_for(lambda: _accepts(self.port) and os.path.exists(self.sock), 10):
            raise RuntimeError("dovecot did not start: " + self.logs())

    def logs(self):
        out = ""
        for name in ("stderr.txt", "dovecot.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out += f.read()
            except OSError:
                pass
        return out

    def mailbox(self, user):
        """Contents of every message file in user's maildir INBOX."""
        out = []
        for sub in ("new", "cur"):
            for path in sorted(glob.glob(os.path.join(self.mail, user, "Maildir", sub, "*"))):
                with open(path, "rb") as f:
                    out.append(f.read())
        return out

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


_DOVECOT_CONF = """base_dir = %(dir)s/run
state_dir = %(dir)s/state
log_path = %(dir)s/dovecot.log
protocols = lmtp
ssl = no
listen = 127.0.0.1
mail_location = maildir:%(mail)s/%%n/Maildir
mail_uid = dovecot
mail_gid = dovecot
first_valid_uid = 1
lmtp_add_received_header = no
lmtp_hdr_delivery_address = none
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=%(mail)s/%%n
}
passdb {
  driver = static
  args = nopassword=y
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = %(port)d
  }
  unix_listener %(sock)s {
    mode = 0666
  }
}
service anvil {
  chroot =
}
service stats {
  chroot =
}
"""
