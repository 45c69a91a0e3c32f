"""milter_real_peers.py - real milters for the end-to-end tests (issue 17):
a private network namespace that has only loopback (Netns), and inside it
dnsmasq answering the test's DKIM keys and DMARC policies from its own
configuration (no upstream), Rspamd (proxy worker in milter mode, a minimal
private configuration: DKIM, SPF, DMARC, milter_headers; no Redis, fuzzy,
RBL or URL checks) and OpenDKIM in verify mode. The milters listen on UNIX
sockets in the test's folder, which mxringd (in the host namespace) reaches
across the namespace boundary; no daemon here can send a packet off the
machine, whatever its configuration says. Also a DKIM signer (relaxed/
relaxed rsa-sha256, with python3-cryptography) so the test signs its own
messages with a key it made."""
import base64
import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
import unittest

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

RSPAMD = shutil.which("rspamd") or "/usr/bin/rspamd"
OPENDKIM = shutil.which("opendkim") or "/usr/sbin/opendkim"
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"
NSENTER = shutil.which("nsenter") or "/usr/bin/nsenter"
IP = shutil.which("ip") or "/usr/sbin/ip"


def need(*paths):
    """Fail (not skip) when a package the tests need is missing."""
    missing = [p for p in paths if not os.access(p, os.X_OK)]
    if missing:
        raise AssertionError("not installed: %s (scripts/deps.sh installs rspamd, opendkim, "
                             "opendkim-tools, dnsmasq-base, iproute2, util-linux)" % missing)


def wait_for(pred, what, timeout=20, proc=None, output=None):
    """Poll pred until it is true; fail with the daemon's output."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError("%s: %s" % (what, output() if output else "timed out"))


class Netns:
    """A new network namespace with only lo (up), held by a small process;
    daemons are started in it with nsenter. Skips the test when the kernel
    or the sandbox does not allow unshare --net (never falls back to the
    host namespace)."""

    def __init__(self):
        need(UNSHARE, NSENTER, IP)
        self.holder = subprocess.Popen(
            [UNSHARE, "--net", "sh", "-c", IP + " link set lo up && echo up && exec cat"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.holder.stdout.readline()
        if line.strip() != b"up":
            err = self.holder.stderr.read().decode(errors="replace")
            self.holder.wait(5)
            raise unittest.SkipTest("unshare --net is not permitted here (%s); these tests "
                                    "run the milters only in a loopback-only namespace" %
                                    err.strip())
        self.pid = self.holder.pid
        self.procs = []

    def argv(self, argv):
        return [NSENTER, "-t", str(self.pid), "-n", "--"] + list(argv)

    def check(self, argv):
        """Run argv inside the namespace; its stdout."""
        return subprocess.run(self.argv(argv), check=True, capture_output=True,
                              timeout=20).stdout.decode()

    def assert_loopback_only(self):
        """Inside: a namespace other than ours, no interface but lo, no
        default route and no route through anything but lo. Raises
        AssertionError otherwise (the caller then starts no daemon)."""
        mine = os.readlink("/proc/self/ns/net")
        theirs = os.readlink("/proc/%d/ns/net" % self.pid)
        if mine == theirs:
            raise AssertionError("the namespace is the host's: %s" % mine)
        links = [l.split(":")[1].strip() for l in self.check([IP, "-o", "link"]).splitlines()]
        if links != ["lo"]:
            raise AssertionError("interfaces other than lo in the namespace: %s" % links)
        if self.check([IP, "route"]).strip():
            raise AssertionError("main table not empty: " + self.check([IP, "route"]))
        for family in ("-4", "-6"):
            for r in self.check([IP, family, "route", "show", "table", "all"]).splitlines():
                if r.startswith("default") or " dev lo" not in r:
                    raise AssertionError("route off loopback in the namespace: " + r)

    def popen(self, argv, log, **kw):
        """Start a daemon inside (nsenter execs it: the pid is the daemon's)."""
        p = subprocess.Popen(self.argv(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def close(self):
        for p in reversed(self.procs):
            stop(p, group=True)
        self.holder.stdin.close()
        stop(self.holder)


def stop(p, group=False):
    """SIGTERM, then SIGKILL, a process we started; with group, then also
    what is left of its process group (a daemon's workers: each daemon is
    started in a session of its own)."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if group:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def txt_strings(text, size=250):
    """A TXT value split into character-strings of at most size octets."""
    return [text[i:i + size] for i in range(0, len(text), size)]


class Dnsmasq:
    """dnsmasq on 127.0.0.1:53 inside the namespace: TXT records from its
    command line, NXDOMAIN for anything else under the local zones, nothing
    forwarded (--no-resolv --no-hosts, no server=)."""

    def __init__(self, ns, folder, txt, zones=("test", "example", "arpa")):
        need(DNSMASQ)
        self.ns, self.folder = ns, folder
        self.log_path = os.path.join(folder, "dnsmasq.log")
        argv = [DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--port=53",
                "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                "--user=root", "--group=root", "--pid-file=", "--log-queries",
                "--log-facility=-"]
        argv += ["--local=/%s/" % z for z in zones]
        for name, value in txt.items():
            # On the command line quotes would be part of the data: the
            # strings go bare, split at commas (the values have none).
            assert "," not in value, value
            argv.append("--txt-record=%s,%s" % (name, ",".join(txt_strings(value))))
        self.log = open(self.log_path, "wb")
        self.proc = ns.popen(argv, self.log)
        wait_for(lambda: b"started, version" in self.output(b""), "dnsmasq did not start",
                 proc=self.proc, output=lambda: self.output(b"").decode(errors="replace"))

    def output(self, default=""):
        with open(self.log_path, "rb") as f:
            return f.read()


RSPAMD_CONF = """# A private Rspamd for the mxring e2e tests: proxy worker in milter mode
# scanning by itself, DKIM/SPF/DMARC checks and the Authentication-Results
# header; nothing that needs Redis or the Internet.
options {
  pidfile = "%(dir)s/rspamd.pid";
  filters = "dkim";
  explicit_modules = [];
  check_local = true;
  check_authed = true;
  local_addrs = [];
  dns {
    nameserver = ["127.0.0.1:53"];
    timeout = 1s;
    retransmits = 2;
  }
  hs_cache_dir = "%(dir)s/";
  cache_file = "%(dir)s/symbols.cache";
  dynamic_conf = "%(dir)s/rspamd_dynamic";
  history_file = "%(dir)s/rspamd.history";
  stats_file = "%(dir)s/stats.ucl";
  control_socket = "%(dir)s/rspamd.ctl mode=0600";
  tempdir = "%(dir)s";
  url_tld = "%(dir)s/tld.dat";
  task_timeout = 8s;
}
logging {
  type = "file";
  filename = "%(dir)s/rspamd.log";
  level = "info";
}
modules {
  path = "${PLUGINSDIR}";
}
actions {
  reject = 150;
  add_header = 60;
}
dkim {
  check_local = true;
  check_authed = true;
}
spf {
  check_local = true;
  check_authed = true;
}
dmarc {
  check_local = true;
  check_authed = true;
  actions {
    reject = "reject";
  }
}
milter_headers {
  skip_local = false;
  skip_authenticated = false;
  use = ["authentication-results"];
  authenticated_headers = ["authentication-results"];
}
worker "rspamd_proxy" {
  bind_socket = "%(sock)s mode=0666";
  milter = yes;
  timeout = 120s;
  upstream "local" {
    default = yes;
    self_scan = yes;
  }
  count = 1;
  reject_message = "Spam message rejected";
}
"""


class Rspamd:
    """Rspamd with RSPAMD_CONF in folder, foreground (-f), as root with -i,
    inside the namespace; its milter socket is <folder>/rspamd.sock."""

    def __init__(self, ns, folder):
        need(RSPAMD)
        self.dir = os.path.join(folder, "rspamd")
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, "rspamd.sock")
        conf = os.path.join(self.dir, "rspamd.conf")
        with open(conf, "w") as f:
            f.write(RSPAMD_CONF % {"dir": self.dir, "sock": self.sock})
        # The public suffixes the test domains need (DMARC's organizational
        # domain); the packaged list of 9,600 takes Rspamd 13 s to compile.
        with open(os.path.join(self.dir, "tld.dat"), "w") as f:
            f.write("test\nexample\norg\ncom\n")
        self.out = open(os.path.join(self.dir, "stdout.log"), "wb")
        argv = [RSPAMD, "-f", "-i", "-c", conf]
        for var in ("DBDIR", "RUNDIR", "LOGDIR", "LOCAL_CONFDIR"):
            argv += ["--var", "%s=%s" % (var, self.dir)]
        self.proc = ns.popen(argv, self.out)
        wait_for(lambda: os.path.exists(self.sock) and "rspamd_proxy" in self.log(),
                 "rspamd did not start", timeout=60, proc=self.proc, output=self.output)

    def log(self):
        try:
            with open(os.path.join(self.dir, "rspamd.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def output(self):
        with open(self.out.name, errors="replace") as f:
            return f.read() + self.log()


OPENDKIM_CONF = """# A private OpenDKIM for the mxring e2e tests: verify only.
Mode v
Background no
Socket local:%(sock)s
PidFile %(dir)s/opendkim.pid
Nameservers 127.0.0.1
ResolverConfiguration %(dir)s/unbound.conf
AuthservID mx.test
InternalHosts csl:192.0.2.1
Syslog no
LogResults yes
"""


# OpenDKIM resolves through libunbound, which by default never queries a
# loopback address, answers NXDOMAIN itself for the special-use zone test.
# and validates DNSSEC: forward everything to dnsmasq instead.
UNBOUND_CONF = """server:
  do-not-query-localhost: no
  module-config: "iterator"
  local-zone: "test." nodefault
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@53
"""


class OpenDkim:
    """OpenDKIM in verify mode inside the namespace, on <folder>/opendkim.sock."""

    def __init__(self, ns, folder):
        need(OPENDKIM)
        self.dir = os.path.join(folder, "opendkim")
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, "opendkim.sock")
        conf = os.path.join(self.dir, "opendkim.conf")
        with open(os.path.join(self.dir, "unbound.conf"), "w") as f:
            f.write(UNBOUND_CONF)
        with open(conf, "w") as f:
            f.write(OPENDKIM_CONF % {"dir": self.dir, "sock": self.sock})
        self.out = open(os.path.join(self.dir, "stdout.log"), "wb")
        self.proc = ns.popen([OPENDKIM, "-f", "-x", conf], self.out)
        wait_for(lambda: os.path.exists(self.sock), "opendkim did not start", proc=self.proc,
                 output=self.output)

    def output(self):
        with open(self.out.name, errors="replace") as f:
            return f.read()


class DkimKey:
    """An RSA key the test made; sign() adds a relaxed/relaxed rsa-sha256
    DKIM-Signature (RFC 6376), txt() is the selector's TXT record."""

    def __init__(self, domain, selector="sel", bits=2048):
        self.domain, self.selector = domain, selector
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=bits)

    def record_name(self):
        return "%s._domainkey.%s" % (self.selector, self.domain)

    def txt(self):
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()

    def sign(self, msg, names=("from", "to", "subject", "date", "message-id")):
        head, _, body = msg.partition("\r\n\r\n")
        fields = split_fields(head)
        bh = base64.b64encode(hashlib.sha256(relaxed_body(body.encode())).digest()).decode()
        present = [n for n in names if any(f[0].lower() == n for f in fields)]
        sig = ("v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=%s; t=%d; h=%s; bh=%s; b=" %
               (self.domain, self.selector, int(time.time()), ":".join(present), bh))
        data = b"".join(relaxed_header(n, v) for n, v in pick_fields(fields, present))
        data += relaxed_header("DKIM-Signature", sig)[:-2]
        b = self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        b64 = base64.b64encode(b).decode()
        # Folded only between tags and inside b= (FWS is not allowed in t=).
        folded = sig.replace("; ", ";\r\n\t") + "\r\n\t".join(
            b64[i:i + 64] for i in range(0, len(b64), 64))
        return "DKIM-Signature: " + folded + "\r\n" + msg


def split_fields(head):
    """(name, raw value after the colon) per header field, folds kept."""
    fields = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + "\r\n" + line)
        else:
            name, _, value = line.partition(":")
            fields.append((name, value))
    return fields


def pick_fields(fields, names):
    """The instances h= selects: per name, the last one not yet used."""
    used, out = set(), []
    for n in names:
        for i in range(len(fields) - 1, -1, -1):
            if fields[i][0].lower() == n and i not in used:
                used.add(i)
                out.append(fields[i])
                break
    return out


def relaxed_header(name, value):
    """RFC 6376 3.4.2: lower-case name, unfolded, whitespace runs to one SP."""
    value = re.sub(r"[ \t]+", " ", value.replace("\r\n", "")).strip(" ")
    return ("%s:%s\r\n" % (name.strip().lower(), value)).encode()


def relaxed_body(body):
    """RFC 6376 3.4.4: whitespace runs to one SP, none at line ends, no
    empty lines at the end."""
    lines = [re.sub(rb"[ \t]+", b" ", l).rstrip(b" ") for l in body.split(b"\r\n")]
    while lines and lines[-1] == b"":
        lines.pop()
    return b"".join(l + b"\r\n" for l in lines)
