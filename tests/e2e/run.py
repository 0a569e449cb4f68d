#!/usr/bin/env python3
"""End-to-end tests: the real pop3server against real mail clients
(curl, Python poplib, fetchmail, mpop, getmail), over 127.0.0.1 only.

    python3 tests/e2e/run.py                        # everything
    python3 tests/e2e/run.py test_fetchmail         # one client
    python3 tests/e2e/run.py test_curl.CurlTests.test_list_equals_LIST

Ends with one line "e2e: N passed, M failed" (tests/lib/suite_runner.py);
a missing client is a failure, never a skip.  Environment: POP3SERVER_BIN
(server binary), E2E_MAIL (fixture folder), E2E_VERBOSE (print client
transcripts).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from suite_runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("e2e", HERE, sys.argv[1:], needs=("pop3server",)))
