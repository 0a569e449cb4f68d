"""The runner every black-box suite shares (tests/<family>/run.py).

Prints one line per test, the tracebacks of the failures, and ends with
exactly one line "<family>: N passed, M failed".  Skips, expected
failures and unexpected successes count as failures: a test that did not
run did not pass.  main() returns 0 only when M == 0.  The server under
test is bin/pop3server, or $POP3SERVER_BIN.
"""
import os
import sys
import time
import unittest

LIB = os.path.dirname(os.path.abspath(__file__))


class Result(unittest.TestResult):
    """Counts passes explicitly; everything else is a failure."""

    def __init__(self, stream):
        super().__init__(stream, True, 2)
        self.out = stream
        self.passed = 0
        self.failed = 0
        self.problems = []      # (label, test id, text)
        self._t0 = 0.0
        self._bad = False

    def _say(self, label, test, extra=""):
        dt = time.monotonic() - self._t0
        self.out.write("%-5s %s (%.2fs)%s\n" % (label, test.id(), dt, extra))
        self.out.flush()

    def startTest(self, test):
        super().startTest(test)
        self._t0 = time.monotonic()
        self._bad = False

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1
        self._say("PASS", test)

    def _fail(self, label, test, text):
        self.failed += 1
        self._bad = True
        self.problems.append((label, test.id(), text))
        self._say(label, test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._fail("FAIL", test, self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._fail("ERROR", test, self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._fail("SKIP", test, "skipped (counts as a failure): %s\n"
                   % reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._fail("XFAIL", test, self._exc_info_to_string(err, test))

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._fail("XPASS", test, "unexpected success\n")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            label = "FAIL" if issubclass(err[0], test.failureException) \
                else "ERROR"
            self._fail(label, subtest, self._exc_info_to_string(err, test))


def main(family, here, argv, needs=("pop3server",)):
    """Runs the test_*.py of `here` (or the names in argv) as `family`;
    `needs` are the binaries beside the server the suite runs."""
    sys.path.insert(0, here)
    out = sys.stdout
    loader = unittest.TestLoader()
    if argv:
        suite = loader.loadTestsFromNames(argv)
    else:
        suite = loader.discover(here, pattern="test_*.py", top_level_dir=here)
    server = os.environ.get("POP3SERVER_BIN",
                            os.path.join(LIB, "..", "..", "bin",
                                         "pop3server"))
    for name in needs:
        exe = os.path.join(os.path.dirname(server), name)
        if not os.access(exe, os.X_OK):
            out.write("warning: %s is not an executable; tests will fail\n"
                      % exe)
    result = Result(out)
    t0 = time.monotonic()
    try:
        suite.run(result)
    except BaseException:       # the summary line is printed whatever
        import traceback
        result.failed += 1
        result.problems.append(("ERROR", "runner", traceback.format_exc()))
    if result.problems:
        out.write("\n")
        for label, tid, text in result.problems:
            out.write("=" * 70 + "\n%s: %s\n" % (label, tid) + "-" * 70
                      + "\n" + text + "\n")
    passed, failed = result.passed, result.failed
    if passed + failed == 0:
        out.write("no test ran\n")
        failed = 1
    out.write("(%.1fs)\n" % (time.monotonic() - t0))
    out.write("%s: %d passed, %d failed\n" % (family, passed, failed))
    out.flush()
    return 0 if failed == 0 else 1


