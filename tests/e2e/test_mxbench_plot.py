"""test_mxbench_plot.py - `mxbench plot SERIES.json --html FILE` (issue
19): a real --json-series from a run against smtp-sink becomes one HTML
page that headless Chromium renders with two charts carrying the expected
series, no console message at all (the page has no script: any console
line is an error such as a malformed SVG attribute), and no network
request (no external asset). A deliberately broken page shows that the
console check can fail. Set MXBENCH_PLOT_SHOT=FILE to keep a screenshot."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from mxbench_peers import MXBENCH, SmtpSink, have_mxbench, run_mxbench

CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]
CHROME_TIMEOUT = 60


def chromium(tmp, page, *extra):
    """Render page headless; (stdout, console lines of stderr)."""
    profile = tempfile.mkdtemp(prefix="profile-", dir=tmp)
    p = subprocess.run([CHROMIUM] + FLAGS + ["--user-data-dir=" + profile] + list(extra) +
                       ["file://" + page], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=CHROME_TIMEOUT)
    err = p.stderr.decode(errors="replace")
    return p.stdout.decode(errors="replace"), [l for l in err.splitlines() if ":CONSOLE" in l]


@unittest.skipUnless(have_mxbench(), "mxbench not built (make mxbench)")
@unittest.skipUnless(CHROMIUM, "chromium missing (scripts/deps.sh test)")
class MxbenchPlot(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mxbench-plot-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_mxbench_plot_renders_in_chromium(self):
        """Description: two SVG charts with target/sent/accepted, p50/p99/p999 and the percentile line."""
        sink = SmtpSink()
        series = os.path.join(self.tmp, "series.json")
        try:
            rc, res, out = run_mxbench(sink.port, "--ramp", "100:2,300:2", "--size", 500,
                                       "--json-series", series)
        finally:
            sink.close()
        self.assertEqual(rc, 0, out)
        page = os.path.join(self.tmp, "plot.html")
        p = subprocess.run([MXBENCH, "plot", series, "--html", page], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout)
        with open(page) as f:
            html = f.read()
        self.assertNotIn("<script", html)
        self.assertIsNone(re.search(r"""(src|href)=["']?(https?:|//)""", html))
        dom, console = chromium(self.tmp, page, "--dump-dom")
        self.assertEqual(console, [])
        charts = re.findall(r'<svg id="(\w+)" class="chart"', dom)
        self.assertEqual(charts, ["timeline", "percentiles"], dom[:2000])
        timeline, pct = dom.split('<svg id="percentiles"')
        for name in ("target", "sent", "accepted", "p50", "p99", "p999"):
            m = re.search(r'data-series="%s"[^>]*points="([^"]*)"' % name, timeline)
            self.assertIsNotNone(m, name)
            self.assertGreaterEqual(len(m.group(1).split()), 4, name)   # one point per second
        m = re.search(r'data-series="latency"[^>]*points="([^"]*)"', pct)
        self.assertIsNotNone(m)
        self.assertGreater(len(m.group(1).split()), 10)
        self.assertIn("%d messages accepted" % res["messages"], dom)
        shot = os.environ.get("MXBENCH_PLOT_SHOT")
        if shot:
            chromium(self.tmp, page, "--screenshot=" + os.path.abspath(shot),
                     "--window-size=1000,1300", "--hide-scrollbars")

    def test_mxbench_plot_console_check_can_fail(self):
        """Description: a page with a malformed polyline is caught by the console check."""
        page = os.path.join(self.tmp, "bad.html")
        with open(page, "w") as f:
            f.write('<!DOCTYPE html><html><body><svg width="10" height="10">'
                    '<polyline points="1,2 nan,3"/></svg></body></html>')
        _, console = chromium(self.tmp, page, "--dump-dom")
        self.assertEqual(len(console), 1, console)
        self.assertIn("Expected number", console[0])


if __name__ == "__main__":
    unittest.main()
