#!/usr/bin/env python3
"""run-tests.py - run every test suite of mxring and print one summary.

Unit tests (cmocka) from the normal, ASan+UBSan and TSan builds (TSan: the
threaded ones: receivelog, authpool, snapshot swap, per-address limits), the
fuzz smoke run when the fuzzers are built, and the end-to-end suite against
the normal and the ASan+UBSan server (the normal one with test_memory.py's
200 x 20 MiB peak-RSS bound switched on). Exits non-zero when anything failed. The last line is
"N passed, N failed"."""
import glob
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(ROOT)
PY = os.environ.get("PYTHON", "python3")
passed = failed = 0
failures = []


def run(name, cmd, env=None, timeout=900):
    """Run one command, echo its output, return (rc, output)."""
    t0 = time.time()
    full_env = dict(os.environ, **(env or {}))
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=full_env, timeout=timeout)
        out, rc = p.stdout.decode(errors="replace"), p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") + "\nTIMEOUT after %ds\n" % timeout
        rc = 124
    sys.stdout.write(out)
    print("== %s: rc=%d (%.1fs)" % (name, rc, time.time() - t0), flush=True)
    return rc, out


def count(name, ok_n, fail_n, rc):
    global passed, failed
    if rc != 0 and fail_n == 0:
        fail_n = 1  # crashed or timed out without reporting a failure
    passed += ok_n
    failed += fail_n
    if fail_n:
        failures.append(name)


def cmocka(build, pattern="test_*"):
    for binary in sorted(glob.glob(os.path.join(build, "tests", pattern))):
        if binary.endswith(".d") or not os.access(binary, os.X_OK):
            continue
        name = "%s/%s" % (build, os.path.basename(binary))
        rc, out = run(name, [binary], env={"TSAN_OPTIONS": "halt_on_error=1",
                                           "UBSAN_OPTIONS": "print_stacktrace=1"})
        ok = sum(int(m) for m in re.findall(r"\[  PASSED  \] (\d+) test", out))
        bad = sum(int(m) for m in re.findall(r"\[  FAILED  \] (\d+) test", out))
        count(name, ok, bad, rc)


def e2e(binary, label, extra=None):
    if not os.access(binary, os.X_OK):
        count("e2e %s (missing %s)" % (label, binary), 0, 1, 1)
        return
    env = {"MXRINGD": os.path.abspath(binary),
           "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
    env.update(extra or {})
    rc, out = run("e2e " + label, [PY, "-m", "unittest", "discover", "-s", "tests/e2e",
                                   "-p", "test_*.py", "-v"], env=env, timeout=2400)
    total = sum(int(m) for m in re.findall(r"^Ran (\d+) tests?", out, re.M))
    bad = 0
    for key in ("failures", "errors"):
        bad += sum(int(m) for m in re.findall(key + r"=(\d+)", out))
    skipped = sum(int(m) for m in re.findall(r"skipped=(\d+)", out))
    count("e2e " + label, total - bad - skipped, bad, rc)


def format_check():
    """Every C file in the layout of .clang-format (`make format` fixes it)."""
    files = sorted(glob.glob("**/*.[ch]", recursive=True))
    files = [f for f in files if not f.startswith("build")]
    rc, out = run("format check", ["clang-format", "--dry-run", "-Werror"] + files)
    drift = sorted(set(re.findall(r"^([^\s:]+\.[ch]):\d+:\d+: error", out, re.M)))
    name = "format check" + (" (run make format: %s)" % " ".join(drift) if drift else "")
    count(name, 1 if rc == 0 else 0, 0 if rc == 0 else 1, rc)


def main():
    format_check()
    cmocka("build")
    cmocka("build-address-undefined")
    cmocka("build-thread", "test_rlog*")
    cmocka("build-thread", "test_authpool")
    cmocka("build-thread", "test_inbox")
    cmocka("build-thread", "test_filter")
    cmocka("build-thread", "test_snap")
    cmocka("build-thread", "test_iplimit")
    if os.path.exists("tests/fuzz/fuzz.mk") and os.environ.get("SKIP_FUZZ") is None:
        rc, out = run("fuzz smoke", ["make", "--no-print-directory", "fuzz-smoke"], timeout=900)
        runs = len(re.findall(r"^Done \d+ runs", out, re.M))
        count("fuzz smoke", max(runs, 1) if rc == 0 else 0, 0 if rc == 0 else 1, rc)
    # the normal build runs test_memory.py's real bound (200 concurrent
    # 20 MiB messages, peak RSS < 200 MB, about 40 s and 4 GB through
    # /var/tmp); the ASan build keeps its small mode (its RSS is not ours)
    e2e("build/mxringd", "normal build", {"MXRING_EXPECT_STREAMING": "1"})
    e2e("build-address-undefined/mxringd", "ASan+UBSan build")
    if failures:
        print("FAILED suites: " + ", ".join(failures))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
