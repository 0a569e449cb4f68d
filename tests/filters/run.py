#!/usr/bin/env python3
"""Runs the message filter integration suite: every tests/filters/test_*.py.

    python3 tests/filters/run.py                   # everything
    python3 tests/filters/run.py test_failures     # one file
    python3 tests/filters/run.py test_failures.Failures.test_exit_1_at_once

Prints one line per test, the tracebacks of the failures, and ends with
exactly one line "filters: N passed, M failed".  Skips, expected
failures and unexpected successes count as failures: a test that did not
run did not pass.  Exit status 0 only when M == 0.  The server under test
is bin/pop3server, or $POP3SERVER_BIN.
"""
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)


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


def main(argv):
    out = sys.stdout
    loader = unittest.TestLoader()
    if argv:
        suite = loader.loadTestsFromNames(argv)
    else:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    server = os.environ.get("POP3SERVER_BIN",
                            os.path.join(HERE, "..", "..", "bin",
                                         "pop3server"))
    if not os.access(server, os.X_OK):
        out.write("warning: %s is not an executable; tests will fail\n"
                  % server)
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
    out.write("filters: %d passed, %d failed\n" % (passed, failed))
    out.flush()
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
