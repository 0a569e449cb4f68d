#!/usr/bin/env python3
"""End-to-end tests: the real pop3server against real mail clients
(curl, Python poplib, fetchmail, mpop, getmail), over 127.0.0.1 only.

Usage: tests/e2e/run.py [-v] [PATTERN ...]
  PATTERN selects tests whose id contains it (e.g. "fetchmail", "test_uidl").

The last line printed is always "e2e: N passed, M failed"; the exit status
is 0 only when M == 0.  Errors and skips count as failures (a missing
client is a failure, never a skip), and so does a run that found no test.
Environment: POP3SERVER_BIN (server binary, default bin/pop3server),
E2E_MAIL (fixture folder), E2E_VERBOSE (print client transcripts).
"""
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

MODULES = ["test_curl", "test_poplib", "test_fetchmail", "test_mpop",
           "test_getmail"]


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


class CountingResult(unittest.TextTestResult):
    """Remembers which tests ran and which failed in any way."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.ran, self.bad = [], []

    def startTest(self, test):
        self.ran.append(test.id())
        super().startTest(test)

    def _mark(self, test):
        self.bad.append(getattr(test, "test_case", test).id())

    def addFailure(self, test, err):
        self._mark(test)
        super().addFailure(test, err)

    def addError(self, test, err):
        self._mark(test)
        super().addError(test, err)

    def addSkip(self, test, reason):
        self._mark(test)
        super().addSkip(test, reason)

    def addUnexpectedSuccess(self, test):
        self._mark(test)
        super().addUnexpectedSuccess(test)

    def addSubTest(self, test, subtest, err):
        if err is not None:
            self._mark(test)
        super().addSubTest(test, subtest, err)


def main(argv):
    verbose = "-v" in argv
    patterns = [a for a in argv if not a.startswith("-")]
    loader = unittest.TestLoader()
    tests = []
    load_failures = 0
    for name in MODULES:
        try:
            mod = __import__(name)
        except Exception as e:  # a broken test module is a failure
            print("e2e: cannot load %s: %r" % (name, e))
            load_failures += 1
            continue
        tests += list(iter_tests(loader.loadTestsFromModule(mod)))
    if patterns:
        tests = [t for t in tests if any(p in t.id() for p in patterns)]
    suite = unittest.TestSuite(tests)
    t0 = time.monotonic()
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2 if verbose else 1,
                                     buffer=False, resultclass=CountingResult).run(suite)
    sys.stdout.flush()
    sys.stderr.flush()
    for t, why in result.skipped:
        print("e2e: %s was skipped (%s): counted as failed" % (t.id(), why))
    # Counted per test method: a method with failing subtests is one failure;
    # an error outside any test (e.g. setUpClass) is one failure too.
    bad = set(result.bad)
    ran = set(result.ran)
    failed = len(bad) + load_failures
    passed = len(ran - bad)
    if result.testsRun == 0:
        print("e2e: no test ran")
        failed += 1
    print("e2e took %.1fs" % (time.monotonic() - t0))
    print("e2e: %d passed, %d failed" % (passed, failed))
    sys.stdout.flush()
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
