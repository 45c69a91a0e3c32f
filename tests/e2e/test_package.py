"""test_package.py - the Debian package (issue 18): `make deb` builds
build/mxring_<version>_amd64.deb; lintian reports no error; dpkg -i
installs it; the installed mxringd passes -t with the installed
configuration and runs as the mxring user on its spool; man -l renders each
page (the conf page names every key of mxringd -K); the user and the spool
exist with the documented modes; dpkg --purge removes it all again. Needs
root and dpkg; skipped for sanitizer builds (the package holds build/)."""
import glob
import grp
import os
import pwd
import re
import shutil
import smtplib
import stat
import subprocess
import tempfile
import time
import unittest

from harness import BINARY, ROOT, free_port

SPOOL = "/var/spool/mxring"
CONF = "/etc/mxring/mxringd.conf"
PAGES = ["/usr/share/man/man8/mxringd.8.gz", "/usr/share/man/man5/mxringd.conf.5.gz",
         "/usr/share/man/man1/mxlog.1.gz", "/usr/share/man/man1/mxringctl.1.gz",
         "/usr/share/man/man1/mxbench.1.gz"]
PROGRAMS = ["/usr/bin/mxlog", "/usr/bin/mxringctl", "/usr/bin/mxbench"]
# words each page must render (its commands and main options)
PAGE_WORDS = {
    "mxlog.1": ["why", "stats", "follow", "report --html", "--json", "--since", "EXIT STATUS"],
    "mxringctl.1": ["list", "show", "retry --all", "hold", "release", "delete", "control.sock"],
    "mxbench.1": ["--server", "--rate", "--json-series", "mxbench plot", "EXIT STATUS"],
}


def run(cmd, timeout=120, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def installed():
    p = run(["dpkg-query", "-W", "-f=${db:Status-Status}", "mxring"])
    return p.returncode == 0 and p.stdout == "installed"


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("dpkg"), "needs root and dpkg")
@unittest.skipIf("/build-" in BINARY, "the package holds the normal build")
class PackageTest(unittest.TestCase):
    def setUp(self):
        if installed():
            self.skipTest("mxring is already installed on this machine")
        p = run(["make", "-s", "--no-print-directory", "deb"], cwd=ROOT, timeout=600)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        debs = glob.glob(os.path.join(ROOT, "build", "mxring_*_amd64.deb"))
        self.assertEqual(len(debs), 1, debs)
        self.deb = debs[0]

    def purge(self):
        p = run(["dpkg", "--purge", "mxring"])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_package_lintian_no_errors(self):
        if not shutil.which("lintian"):
            self.skipTest("lintian is not installed (scripts/deps.sh test)")
        p = run(["lintian", "--tag-display-limit", "0", self.deb])
        errors = [l for l in p.stdout.splitlines() if l.startswith("E:")]
        self.assertEqual(errors, [], p.stdout)
        # every program in the package has its page (mxlog, mxringctl, mxbench)
        self.assertNotIn("no-manual-page", p.stdout)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_package_install_check_run_purge(self):
        p = run(["dpkg", "-i", self.deb])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.addCleanup(lambda: installed() and self.purge())
        self.check_files()
        self.check_user_and_spool()
        self.check_config()
        self.check_man()
        self.check_runs_as_mxring()
        self.purge()
        self.assertFalse(os.path.exists("/usr/sbin/mxringd"))
        self.assertFalse(os.path.exists(CONF))
        self.assertFalse(os.path.exists(SPOOL))
        self.assertRaises(KeyError, pwd.getpwnam, "mxring")

    def check_files(self):
        for path in ["/usr/sbin/mxringd", CONF, "/lib/systemd/system/mxringd.service"] + \
                PAGES + PROGRAMS:
            self.assertTrue(os.path.isfile(path), path)
        p = run(["/usr/bin/mxlog", "--help"])
        self.assertIn("usage: mxlog", p.stdout + p.stderr)
        p = run(["dpkg-query", "-W", "-f=${Conffiles}", "mxring"])
        self.assertIn(CONF, p.stdout)

    def check_user_and_spool(self):
        u = pwd.getpwnam("mxring")
        self.assertLess(u.pw_uid, 1000)          # a system user
        self.assertEqual(u.pw_shell, "/usr/sbin/nologin")
        self.assertEqual(grp.getgrgid(u.pw_gid).gr_name, "mxring")
        st = os.stat(SPOOL)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o750)
        self.assertEqual((st.st_uid, st.st_gid), (u.pw_uid, u.pw_gid))

    def check_config(self):
        p = run(["/usr/sbin/mxringd", "-t", "-c", CONF])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("configuration OK", p.stderr)
        p = run(["runuser", "-u", "mxring", "--", "/usr/sbin/mxringd", "-t", "-v", "-c", CONF])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("workdir = /var/spool/mxring\n", p.stdout)

    def check_man(self):
        keys = [l.split("`")[1] for l in run(["/usr/sbin/mxringd", "-K"]).stdout.splitlines()
                if l.startswith("| `")]
        self.assertGreater(len(keys), 40)
        for page in PAGES:
            p = run(["man", "-l", page], env=dict(os.environ, MANWIDTH="80"))
            self.assertEqual(p.returncode, 0, p.stderr)
            text = re.sub(".\b", "", p.stdout).replace("\u2010", "-")  # overstrike, hyphens
            self.assertIn("\nNAME\n", text)
            self.assertIn("SEE ALSO", text)
            if "mxringd.conf" in page:
                for k in keys:
                    self.assertIn(k, text)
            for word in PAGE_WORDS.get(os.path.basename(page)[:-3], []):
                self.assertIn(word, text, page)

    def check_runs_as_mxring(self):
        """The installed server, as mxring, on the packaged spool (loopback port)."""
        d = tempfile.mkdtemp(prefix="mxring-pkg-")
        self.addCleanup(shutil.rmtree, d, True)
        port = free_port()
        conf = os.path.join(d, "c.conf")
        with open(conf, "w") as f:
            f.write("hostname = mx.test\nlisten = 127.0.0.1:%d\nworkdir = %s\nworkers = 1\n"
                    "local_domains = example.test\nmax_sessions = 100\n" % (port, SPOOL))
        os.chmod(d, 0o755)
        os.chmod(conf, 0o644)
        err = open(os.path.join(d, "err"), "w+")
        self.addCleanup(err.close)
        proc = subprocess.Popen(["/usr/sbin/mxringd", "-c", conf], stdout=err, stderr=err,
                                user="mxring", group="mxring", extra_groups=[])
        try:
            deadline = time.time() + 10
            while time.time() < deadline:
                err.seek(0)
                if " ready, " in err.read():
                    break
                time.sleep(0.05)
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
                c.sendmail("a@example.test", ["b@example.test"], "Subject: p\r\n\r\nx\r\n")
        finally:
            proc.terminate()
            proc.wait(15)
        err.seek(0)
        self.assertEqual(proc.returncode, 0, err.read())
        new = os.listdir(os.path.join(SPOOL, "queue", "new"))
        self.assertEqual(len(new), 1)
        st = os.stat(os.path.join(SPOOL, "queue", "new", new[0]))
        self.assertEqual(st.st_uid, pwd.getpwnam("mxring").pw_uid)


if __name__ == "__main__":
    unittest.main()
