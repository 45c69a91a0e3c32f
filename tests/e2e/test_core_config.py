"""test_core_config.py - end-to-end tests of mxringd's command line (issue 2):
-t checks a configuration file (exit 0 or 2 with a one-line error naming
file, line and key), -V prints the version."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import BINARY


class TestConfig(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mxring-e2e-conf-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_bin(self, *args):
        p = subprocess.run([BINARY] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10, cwd=self.dir)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    GOOD = ("# a comment\n"
            "hostname = mx.test\n"
            "workdir = %s\n"
            "listen = 127.0.0.1:2525, [::1]:2525\n"
            "workers = 2\n"
            "max_sessions = 100\n"
            "max_message_size = 10M\n"
            "max_recipients = 50\n"
            "timeout_command = 30\n"
            "timeout_data = 60\n"
            "local_domains = example.test, example.org\n"
            "trusted_networks = 127.0.0.0/8, ::1, 10.0.0.0/8\n")

    def assert_one_line_error(self, err, *parts):
        lines = err.rstrip("\n").split("\n")
        self.assertEqual(len(lines), 1, err)
        for p in parts:
            self.assertIn(p, lines[0])

    def test_core_config_check_good(self):
        path = self.write("good.conf", self.GOOD % os.path.join(self.dir, "var"))
        rc, out, err = self.run_bin("-t", "-c", path)
        self.assertEqual(rc, 0, err)
        # -t checks only: it does not start serving or create the workdir
        self.assertFalse(os.path.exists(os.path.join(self.dir, "var", "queue")))

    def test_core_config_unknown_key(self):
        path = self.write("unknown.conf", "hostname = mx.test\n# c\nbogus_key = 1\n")
        rc, out, err = self.run_bin("-t", "-c", path)
        self.assertEqual(rc, 2)
        self.assert_one_line_error(err, "unknown.conf", ":3", "bogus_key")

    def test_core_config_bad_value(self):
        path = self.write("bad.conf", "hostname = mx.test\nmax_sessions = many\n")
        rc, out, err = self.run_bin("-t", "-c", path)
        self.assertEqual(rc, 2)
        self.assert_one_line_error(err, "bad.conf", ":2", "max_sessions")
        path = self.write("range.conf", "max_message_size = 100\n")
        rc, out, err = self.run_bin("-t", "-c", path)
        self.assertEqual(rc, 2)
        self.assert_one_line_error(err, "range.conf", ":1", "max_message_size")

    def test_core_config_missing_file(self):
        path = os.path.join(self.dir, "absent.conf")
        rc, out, err = self.run_bin("-t", "-c", path)
        self.assertEqual(rc, 2)
        self.assert_one_line_error(err, "absent.conf")

    def test_core_config_bad_file_refuses_to_start(self):
        path = self.write("start.conf", "hostname = mx.test\nbogus_key = 1\n")
        rc, out, err = self.run_bin("-c", path)
        self.assertEqual(rc, 2)
        self.assert_one_line_error(err, "start.conf", ":2", "bogus_key")

    def test_core_version(self):
        rc, out, err = self.run_bin("-V")
        self.assertEqual(rc, 0)
        self.assertRegex(out + err, r"mxringd \d+\.\d+\.\d+")


if __name__ == "__main__":
    unittest.main()
